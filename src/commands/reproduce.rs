//! `mlpipe reproduce HASH`: re-execute a run (or a prediction) from its recorded snapshot and pipeline,
//! with every cache bypassed, in memory, and compare every artifact with the record.

use std::path::PathBuf;

use serde::Serialize;

use crate::digest::Id;
use crate::error::{Error, Result};
use crate::executor::{Executor, Progress, Snapshot};
use crate::ledger;
use crate::provenance::{self, CodeState};
use crate::scoring::{Scorer, output_digest};
use crate::spec::Pipeline;
use crate::store::{LocalStore, MemoryStore, Resolved, Store};
use crate::tables::{self, Format};

pub struct ReproduceArgs {
    /// A run id, a prediction id (batch, REST or stream; a batch row as `<id>/<row>`), or a prefix.
    pub hash: String,
    pub store: PathBuf,
    /// Ledger database URL; the store's SQLite ledger when absent.
    pub ledger: Option<String>,
    /// For a run gathered from a database: query it again as of the recorded time.
    pub refetch: bool,
}

/// What querying a run's database again gave.
#[derive(Debug, Serialize)]
pub struct Refetch {
    pub source: String,
    pub as_of: Option<String>,
    pub recorded: Id,
    pub refetched: Id,
    pub recorded_rows: usize,
    pub refetched_rows: usize,
}

impl Refetch {
    pub fn same(&self) -> bool {
        self.recorded == self.refetched
    }
}

#[derive(Debug, Serialize)]
pub struct ArtifactCheck {
    pub name: String,
    pub recorded: Id,
    pub reproduced: Id,
}

#[derive(Debug, Serialize)]
pub struct Divergence {
    pub stage: String,
    /// `None` when this version of mlpipe plans a stage the record does not have, or the reverse.
    pub recorded: Option<Id>,
    pub reproduced: Option<Id>,
}

/// A stage output the store had lost or damaged, written again from the verified re-run.
#[derive(Debug, Serialize)]
pub struct Restored {
    pub id: Id,
    pub stage: String,
    /// "missing" or "corrupt".
    pub was: &'static str,
}

#[derive(Debug, Serialize)]
pub struct ReproduceReport {
    /// "run" or "prediction".
    pub what: String,
    pub id: Id,
    pub run: Id,
    pub checked: Vec<ArtifactCheck>,
    pub diverged: Option<Divergence>,
    /// Objects that were missing or damaged in the store and were restored from the verified re-run.
    pub restored: Vec<Restored>,
    pub recorded_code: CodeState,
    pub recorded_version: String,
    pub current_version: String,
    /// With `--refetch`: the database queried again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refetch: Option<Refetch>,
}

pub fn run(args: &ReproduceArgs, progress: &dyn Progress) -> Result<ReproduceReport> {
    let store = LocalStore::open(&args.store)?;
    let _lock = store.lock(false)?;
    let (hash, row) = match args.hash.split_once('/') {
        Some((h, r)) => {
            let row = r.parse::<usize>().map_err(|_| Error::Lookup {
                message: format!(
                    "\"{}\" is not a prediction id: the part after / must be a row number",
                    args.hash
                ),
                hint: Some("batch rows are named <prediction-id>/<row>, as in the prediction_id column".into()),
            })?;
            (h, Some(row))
        }
        None => (args.hash.as_str(), None),
    };
    match store.resolve(hash) {
        Ok(Resolved::Prediction(id)) => reproduce_prediction(&store, &id, row),
        Ok(_) if row.is_some() => Err(Error::Lookup {
            message: format!("{hash} is not a batch prediction, so it has no rows"),
            hint: None,
        }),
        Ok(_) => {
            let record = super::resolve_run(&store, hash)?;
            let mut report = reproduce_run(&store, &record, progress)?;
            if args.refetch {
                report.refetch = Some(refetch(&store, &record)?);
            }
            Ok(report)
        }
        Err(not_in_store @ Error::Lookup { .. }) => {
            // Not a run or batch: perhaps a REST or stream prediction, which only the ledger holds.
            let ledger_path = ledger::default_path(store.root());
            if args.ledger.is_none() && !ledger_path.exists() {
                return Err(not_in_store);
            }
            let mut backend = ledger::open(store.root(), args.ledger.as_deref())?;
            match find_entry(backend.as_mut(), hash)? {
                Some(entry) => reproduce_entry(&store, backend.as_mut(), &entry),
                None => Err(not_in_store),
            }
        }
        Err(other) => Err(other),
    }
}

/// Queries a run's database again, as of the recorded time, and compares the snapshot. Never used by a
/// plain `reproduce`, which reads only the stored snapshot.
fn refetch(store: &LocalStore, record: &provenance::RunRecord) -> Result<Refetch> {
    let Some(source_id) = record.source_record else {
        return Err(Error::Lookup {
            message: format!(
                "run {} was gathered from a file, not a database: nothing to refetch",
                record.run.short()
            ),
            hint: Some("drop --refetch; reproduce already checks the stored snapshot".into()),
        });
    };
    let source: crate::sources::SourceRecord = super::load_json(store, &source_id, "source record")?;
    let pipeline = Pipeline::from_canonical_json(&store.get(&record.pipeline)?)?;
    let selection = pipeline
        .gather
        .database
        .as_ref()
        .ok_or_else(|| Error::internal("a database run's pipeline has no database selection"))?;
    // The record holds the database without its password: connecting takes it from the environment.
    let db = crate::database::Database::parse(&crate::database::strip_password(&source.source))?
        .ok_or_else(|| Error::internal(format!("recorded source {} is not a database", source.source)))?;
    let fetched = crate::sources::fetch(&db, selection, source.as_of.as_deref(), &source.missing_marker)?;
    Ok(Refetch {
        source: source.source,
        as_of: source.as_of,
        recorded: record.snapshot,
        refetched: fetched.record.snapshot,
        recorded_rows: source.rows,
        refetched_rows: fetched.record.rows,
    })
}

/// The ledger entry a prediction id (or unique prefix) names.
fn find_entry(backend: &mut dyn ledger::Backend, hash: &str) -> Result<Option<ledger::Entry>> {
    if hash.len() < 6 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let entries = backend.entries(&ledger::Filter {
        prediction: Some(hash.to_string()),
        limit: Some(1000),
        ..ledger::Filter::default()
    })?;
    let distinct: std::collections::BTreeSet<Id> = entries.iter().map(|e| e.prediction).collect();
    if distinct.len() > 1 {
        return Err(Error::Lookup {
            message: format!("prefix {hash} names {} predictions in the ledger", distinct.len()),
            hint: Some("give more characters of the id".into()),
        });
    }
    Ok(entries.into_iter().next())
}

/// Replays a single-record prediction (REST or stream) from the ledger's stored input.
fn reproduce_entry(
    store: &LocalStore,
    backend: &mut dyn ledger::Backend,
    entry: &ledger::Entry,
) -> Result<ReproduceReport> {
    let run = super::load_run(store, &entry.run)?;
    let scorer = Scorer::load(store, &run)?;
    if scorer.model != entry.model {
        return Err(Error::Mismatch {
            message: format!(
                "ledger entry {} names model {}, but run {} holds model {}",
                entry.prediction.short(),
                entry.model.short(),
                entry.run.short(),
                scorer.model.short()
            ),
        });
    }
    let checked_input = |bytes: Vec<u8>| bytes;
    let input = match backend.input(&entry.input)? {
        Some(b) => checked_input(b),
        None => {
            return Err(Error::Lookup {
                message: format!(
                    "the input of prediction {} is no longer in the ledger {} (pruned?)",
                    entry.prediction.short(),
                    backend.describe()
                ),
                hint: Some("inputs are kept until `mlpipe ledger prune` removes them".into()),
            });
        }
    };
    let value = scorer.score_canonical(&input)?;
    let reproduced = output_digest(&value);
    let diverged = (reproduced != entry.output).then(|| Divergence {
        stage: "predict".into(),
        recorded: Some(entry.output),
        reproduced: Some(reproduced),
    });
    Ok(ReproduceReport {
        what: format!("{} prediction", entry.channel.name()),
        id: entry.prediction,
        run: entry.run,
        checked: vec![ArtifactCheck {
            name: "prediction".into(),
            recorded: entry.output,
            reproduced,
        }],
        diverged,
        restored: Vec::new(),
        recorded_code: run.code,
        recorded_version: run.tool.mlpipe,
        current_version: provenance::MLPIPE_VERSION.to_string(),
        refetch: None,
    })
}

fn reproduce_run(
    store: &LocalStore,
    record: &provenance::RunRecord,
    progress: &dyn Progress,
) -> Result<ReproduceReport> {
    let pipeline = Pipeline::from_canonical_json(&store.get(&record.pipeline)?)?;
    let bytes = store.get(&record.snapshot)?;
    let scratch = MemoryStore::default();
    let snapshot = Snapshot {
        id: record.snapshot,
        bytes: &bytes,
        name: pipeline.gather.source.clone(),
    };
    let executed = Executor::new(&pipeline, &scratch, false, progress).run(&snapshot)?;
    let mut checked = Vec::new();
    let mut diverged = None;
    let longest = record.stages.len().max(executed.stages.len());
    for i in 0..longest {
        let (rec, got) = (record.stages.get(i), executed.stages.get(i));
        if let (Some(rec), Some(got)) = (rec, got) {
            checked.push(ArtifactCheck {
                name: rec.name.clone(),
                recorded: rec.output,
                reproduced: got.output,
            });
        }
        let (recorded, reproduced) = (rec.map(|s| s.output), got.map(|s| s.output));
        if recorded != reproduced && diverged.is_none() {
            let stage = rec.map_or_else(|| got.map(|s| s.name.clone()).unwrap_or_default(), |s| s.name.clone());
            diverged = Some(Divergence {
                stage,
                recorded,
                reproduced,
            });
        }
    }
    // Verified: restore anything the store lost (deleted or damaged objects).
    let mut restored = Vec::new();
    if diverged.is_none() {
        let objects = scratch.objects();
        for stage in &executed.stages {
            let was = match store.get(&stage.output) {
                Ok(_) => continue,
                Err(Error::Corrupt { .. }) => "corrupt",
                Err(_) => "missing",
            };
            if let Some(bytes) = objects.get(&stage.output) {
                store.put_with_id(&stage.output, bytes)?;
                restored.push(Restored {
                    id: stage.output,
                    stage: stage.name.clone(),
                    was,
                });
            }
        }
    }
    Ok(ReproduceReport {
        what: "run".into(),
        id: record.run,
        run: record.run,
        checked,
        diverged,
        restored,
        recorded_code: record.code.clone(),
        recorded_version: record.tool.mlpipe.clone(),
        current_version: provenance::MLPIPE_VERSION.to_string(),
        refetch: None,
    })
}

fn reproduce_prediction(store: &LocalStore, id: &Id, row: Option<usize>) -> Result<ReproduceReport> {
    let rec = super::load_prediction(store, id)?;
    if rec.format != 2 {
        return Err(Error::Lookup {
            message: format!(
                "prediction {} was recorded by an older mlpipe (record format {}), which this version cannot replay",
                id.short(),
                rec.format
            ),
            hint: Some("predict again with this version".into()),
        });
    }
    let run = super::load_run(store, &rec.run)?;
    let scorer = Scorer::load(store, &run)?;
    let input = store.get(&rec.input)?;
    let frame = tables::read_input(&scorer, &input, Format::parse(&rec.input_format)?, &rec.source)?;
    let predictions = scorer.score(frame)?;
    let reproduced = output_digest(&predictions);
    let mut checked = vec![ArtifactCheck {
        name: "predictions".into(),
        recorded: rec.output,
        reproduced,
    }];
    if let Some(r) = row {
        let recorded = store.get(&rec.output)?;
        let width = 8 * predictions.floats_per_row();
        let now = predictions.to_bytes();
        let bits = |bytes: &[u8]| -> Option<Vec<u8>> { bytes.get(r * width..(r + 1) * width).map(<[u8]>::to_vec) };
        let (Some(was), Some(now)) = (bits(&recorded), bits(&now)) else {
            return Err(Error::Lookup {
                message: format!("prediction {} has {} rows; there is no row {r}", id.short(), rec.rows),
                hint: Some("rows are numbered from 0".into()),
            });
        };
        checked.push(ArtifactCheck {
            name: format!("row {r}"),
            recorded: Id::of_bytes(&was),
            reproduced: Id::of_bytes(&now),
        });
    }
    let diverged = checked.iter().find(|c| c.recorded != c.reproduced).map(|c| Divergence {
        stage: format!("predict ({})", c.name),
        recorded: Some(c.recorded),
        reproduced: Some(c.reproduced),
    });
    // Proved: the stored output object holds exactly these bits; restore it if the store lost it.
    let mut restored = Vec::new();
    if diverged.is_none() {
        let was = match store.get(&rec.output) {
            Ok(_) => None,
            Err(Error::Corrupt { .. }) => Some("corrupt"),
            Err(_) => Some("missing"),
        };
        if let Some(was) = was {
            store.put_with_id(&rec.output, &predictions.to_bytes())?;
            restored.push(Restored {
                id: rec.output,
                stage: "predict".into(),
                was,
            });
        }
    }
    Ok(ReproduceReport {
        what: "prediction".into(),
        id: *id,
        run: rec.run,
        checked,
        diverged,
        restored,
        recorded_code: run.code,
        recorded_version: run.tool.mlpipe,
        current_version: provenance::MLPIPE_VERSION.to_string(),
        refetch: None,
    })
}
