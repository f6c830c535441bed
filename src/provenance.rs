//! Where a run came from: the code (git commit, dirty state and a hash of the uncommitted diff), the
//! tool (mlpipe version, target triple, numeric crate versions), and the records written for runs and
//! predictions.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::digest::Id;
use crate::error::{Error, Result};

pub const MLPIPE_VERSION: &str = env!("CARGO_PKG_VERSION");
pub const TARGET: &str = env!("MLPIPE_TARGET");

/// Versions of the crates that decide numbers (from Cargo.lock at build time).
pub fn crate_versions() -> BTreeMap<String, String> {
    env!("MLPIPE_CRATE_VERSIONS")
        .split(';')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tool {
    pub mlpipe: String,
    pub target: String,
    pub crates: BTreeMap<String, String>,
}

impl Tool {
    pub fn current() -> Tool {
        Tool {
            mlpipe: MLPIPE_VERSION.to_string(),
            target: TARGET.to_string(),
            crates: crate_versions(),
        }
    }
}

/// The state of the code that holds the pipeline file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeState {
    /// The repository's working folder, or `None` outside any git repository.
    pub repository: Option<String>,
    pub commit: Option<String>,
    /// Whether tracked files differ from the commit.
    pub dirty: bool,
    /// blake3 of the patch from the commit to the working tree (tracked files), when dirty.
    pub diff: Option<Id>,
}

impl CodeState {
    pub fn outside_repository() -> CodeState {
        CodeState {
            repository: None,
            commit: None,
            dirty: false,
            diff: None,
        }
    }

    pub fn describe(&self) -> String {
        match (&self.commit, self.dirty) {
            (None, _) if self.repository.is_none() => "not in a git repository".to_string(),
            (None, _) => "repository without commits".to_string(),
            (Some(c), false) => c[..12.min(c.len())].to_string(),
            (Some(c), true) => format!("{} + uncommitted changes", &c[..12.min(c.len())]),
        }
    }
}

/// Reads the git state of the repository that contains `path` (a file or folder).
pub fn code_state(path: &Path) -> Result<CodeState> {
    let dir = if path.is_dir() {
        path
    } else {
        path.parent().unwrap_or(Path::new("."))
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let repo = match git2::Repository::discover(dir) {
        Ok(r) => r,
        Err(e) if e.code() == git2::ErrorCode::NotFound => {
            return Ok(CodeState::outside_repository());
        }
        Err(e) => {
            return Err(Error::internal(format!(
                "cannot open the git repository around {}: {e}",
                dir.display()
            )));
        }
    };
    let git_err = |e: git2::Error| Error::internal(format!("reading git state failed: {e}"));
    let repository = repo.workdir().map(|p| p.display().to_string());
    let head_tree = match repo.head() {
        Ok(head) => Some(head.peel_to_commit().map_err(git_err)?),
        Err(e) if matches!(e.code(), git2::ErrorCode::UnbornBranch | git2::ErrorCode::NotFound) => None,
        Err(e) => return Err(git_err(e)),
    };
    let Some(commit) = head_tree else {
        return Ok(CodeState {
            repository,
            commit: None,
            dirty: true,
            diff: None,
        });
    };
    let tree = commit.tree().map_err(git_err)?;
    let mut opts = git2::DiffOptions::new();
    opts.include_untracked(false).include_ignored(false);
    let diff = repo
        .diff_tree_to_workdir_with_index(Some(&tree), Some(&mut opts))
        .map_err(git_err)?;
    let mut hasher = blake3::Hasher::new();
    let mut changed = false;
    diff.print(git2::DiffFormat::Patch, |_, _, line| {
        changed = true;
        hasher.update(&[line.origin() as u8]);
        hasher.update(line.content());
        true
    })
    .map_err(git_err)?;
    Ok(CodeState {
        repository,
        commit: Some(commit.id().to_string()),
        dirty: changed,
        diff: changed.then(|| Id(*hasher.finalize().as_bytes())),
    })
}

/// One stage of a run, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageRecord {
    pub name: String,
    pub kind: String,
    pub key: Id,
    pub output: Id,
}

/// Everything about a run: what went in (pipeline, snapshot, code, seeds, tool) and what came out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub kind: String,
    pub format: u32,
    pub run: Id,
    pub pipeline_name: String,
    /// Object holding the pipeline's canonical JSON.
    pub pipeline: Id,
    /// Object holding the data file's bytes.
    pub snapshot: Id,
    /// The data file (or database, password removed) as it was named when the run was made.
    pub source: String,
    /// For a database source: the object recording the query, `as_of`, rows and schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_record: Option<Id>,
    pub seed: u64,
    /// Derived per-stage seeds, hex.
    pub stage_seeds: BTreeMap<String, String>,
    pub code: CodeState,
    pub tool: Tool,
    pub stages: Vec<StageRecord>,
    /// Test-split metrics.
    pub metrics: BTreeMap<String, f64>,
    pub train_metrics: BTreeMap<String, f64>,
    /// When the run was first made (RFC 3339, UTC). Not part of the run id.
    pub created: String,
}

/// A batch of predictions: which fitted pipeline, which input, which output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PredictionRecord {
    pub kind: String,
    pub format: u32,
    pub prediction: Id,
    pub run: Id,
    /// The train stage's output (the fitted model).
    pub model: Id,
    /// Object holding the input file's bytes.
    pub input: Id,
    /// How the input is encoded: "csv", "ndjson" or "parquet".
    #[serde(default = "csv_format")]
    pub input_format: String,
    /// Object holding the predictions' IEEE-754 bits (little-endian f64, in row order).
    pub output: Id,
    pub rows: usize,
    pub source: String,
    pub created: String,
}

fn csv_format() -> String {
    "csv".into()
}

#[allow(clippy::disallowed_methods)] // ledger entries carry the time a prediction was made; no key does
pub fn now_rfc3339_micros() -> String {
    humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string()
}

#[allow(clippy::disallowed_methods)] // records carry the time they were made; no key does
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// The id of a prediction: what was predicted (input) by what (run and model).
pub fn prediction_id(run: &Id, model: &Id, input: &Id) -> Id {
    crate::digest::KeyBuilder::new(crate::digest::context::PREDICTION_ID)
        .id(run)
        .id(model)
        .id(input)
        .finish()
}
