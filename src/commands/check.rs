//! `mlpipe check PIPELINE`: recompute the pipeline (reusing the cache) and compare its results with the
//! committed lock file; when they differ, say which stage changed first and why.

use std::path::PathBuf;

use serde::Serialize;

use crate::ci::{Lock, lock_path, read_lock};
use crate::error::{Error, Result};
use crate::executor::Progress;

use super::run::{RunArgs, RunReport};

pub struct CheckArgs {
    pub pipeline: PathBuf,
    pub store: PathBuf,
    pub baseline: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Difference {
    pub key: String,
    pub locked: Option<String>,
    pub now: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct CheckReport {
    pub lock: PathBuf,
    pub matches: bool,
    /// The first thing that changed, in pipeline order, and why.
    pub first_change: Option<String>,
    pub reason: Option<String>,
    pub differences: Vec<Difference>,
    pub run: RunReport,
}

pub fn run(args: &CheckArgs, progress: &dyn Progress) -> Result<CheckReport> {
    let path = lock_path(&args.pipeline);
    let locked = read_lock(&args.pipeline)?.ok_or_else(|| {
        Error::data(format!(
            "{} has no lock file ({} is missing)",
            args.pipeline.display(),
            path.display()
        ))
        .with_hint("create it with `mlpipe lock PIPELINE` and commit it")
    })?;
    let report = super::run::run(
        &RunArgs {
            pipeline: args.pipeline.clone(),
            store: args.store.clone(),
            seed: None,
            baseline: args.baseline.clone(),
            update_lock: false,
        },
        progress,
    )?;
    let now = &report.lock_entries;
    let mut differences = Vec::new();
    let keys: std::collections::BTreeSet<&String> = locked.entries.keys().chain(now.entries.keys()).collect();
    for k in keys {
        let (a, b) = (locked.entries.get(k), now.entries.get(k));
        if a != b {
            differences.push(Difference {
                key: k.clone(),
                locked: a.cloned(),
                now: b.cloned(),
            });
        }
    }
    let (first_change, reason) = explain(&locked, now, &report);
    Ok(CheckReport {
        lock: path,
        matches: differences.is_empty(),
        first_change,
        reason,
        differences,
        run: report,
    })
}

/// Names the first change in pipeline order and its most likely cause.
fn explain(locked: &Lock, now: &Lock, report: &RunReport) -> (Option<String>, Option<String>) {
    let snapshot = (locked.entries.get("snapshot"), now.entries.get("snapshot"));
    if snapshot.0 != snapshot.1 {
        return (
            Some("snapshot".into()),
            Some(format!(
                "data: the snapshot changed from {} to {} (compare the data with `mlpipe diff` against a run of the locked commit)",
                short(snapshot.0),
                short(snapshot.1)
            )),
        );
    }
    for stage in &report.stages {
        let (was, is) = (locked.stage_output(&stage.name), now.stage_output(&stage.name));
        if was == is {
            continue;
        }
        let name = stage.name.clone();
        let reason = if was.is_none() {
            format!("config: stage {name} is new (not in the lock)")
        } else if locked.stage_config(&name) != now.stage_config(&name) {
            format!("config: the parameters of stage {name} changed")
        } else if locked.entries.get("mlpipe") != now.entries.get("mlpipe") {
            format!(
                "version: same config and input, different output of stage {name}, and mlpipe changed from {} to {}",
                short(locked.entries.get("mlpipe")),
                short(now.entries.get("mlpipe"))
            )
        } else {
            format!(
                "code: same config, input and mlpipe version, yet stage {name} gives {} instead of {} — the code changed ({})",
                short(is.map(str::to_string).as_ref()),
                short(was.map(str::to_string).as_ref()),
                report.code.describe()
            )
        };
        return (Some(name), Some(reason));
    }
    let removed: Vec<&str> = locked
        .entries
        .keys()
        .filter_map(|k| k.strip_prefix("stage.")?.strip_suffix(".output"))
        .filter(|s| now.stage_output(s).is_none())
        .collect();
    if let Some(s) = removed.first() {
        return (
            Some((*s).to_string()),
            Some(format!("config: stage {s} was removed from the pipeline")),
        );
    }
    if locked.metrics() != now.metrics() {
        return (
            Some("metrics".into()),
            Some("metrics differ while every stage output matches (lock edited by hand?)".into()),
        );
    }
    if locked.entries != now.entries {
        return (
            Some("lock".into()),
            Some("the lock differs only in bookkeeping entries; re-lock with `mlpipe lock`".into()),
        );
    }
    (None, None)
}

fn short(s: Option<&String>) -> String {
    s.map_or_else(|| "(none)".to_string(), |v| v.chars().take(12).collect())
}
