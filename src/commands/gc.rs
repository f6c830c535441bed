//! `mlpipe gc`: remove objects that no run or prediction references (with the stage-key refs that
//! pointed at them) and temp files of interrupted writers. Holds the store's exclusive lock, so it
//! never runs beside a `run`, `predict` or `reproduce`.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::Serialize;

use crate::digest::Id;
use crate::error::Result;
use crate::provenance::{PredictionRecord, RunRecord};
use crate::store::{LocalStore, RefKind};

pub struct GcArgs {
    pub store: PathBuf,
    pub dry_run: bool,
}

#[derive(Debug, Serialize)]
pub struct GcReport {
    pub kept: usize,
    pub removed: usize,
    pub bytes_removed: u64,
    pub stage_keys_removed: usize,
    pub temp_files_removed: usize,
    pub dry_run: bool,
}

pub fn run(args: &GcArgs) -> Result<GcReport> {
    let store = LocalStore::open(&args.store)?;
    let _lock = store.lock(true)?;
    let mut live: BTreeSet<Id> = BTreeSet::new();
    // A record that cannot be read stops gc before anything is removed: what it references is
    // unknown, and guessing "nothing" would delete a run's outputs.
    let unreadable = |what: &str, key: &Id, e: crate::Error| crate::Error::Lookup {
        message: format!("gc removed nothing: the record of {what} {key} cannot be read: {e}"),
        hint: Some(format!(
            "run `mlpipe verify`; re-running the pipeline (or `mlpipe reproduce {}`) rewrites a damaged record",
            key.short()
        )),
    };
    for (run, rec_id) in store.refs(RefKind::Run)? {
        live.insert(rec_id);
        let r = super::load_json::<RunRecord>(&store, &rec_id, "run record").map_err(|e| unreadable("run", &run, e))?;
        live.insert(r.pipeline);
        live.insert(r.snapshot);
        live.extend(r.source_record);
        live.extend(r.stages.iter().map(|s| s.output));
    }
    for (prediction, rec_id) in store.refs(RefKind::Prediction)? {
        live.insert(rec_id);
        let p = super::load_json::<PredictionRecord>(&store, &rec_id, "prediction record")
            .map_err(|e| unreadable("prediction", &prediction, e))?;
        live.extend([p.input, p.output, p.model]);
    }
    let all = store.object_ids()?;
    let dead: Vec<Id> = all.iter().filter(|id| !live.contains(id)).copied().collect();
    let mut report = GcReport {
        kept: all.len() - dead.len(),
        removed: dead.len(),
        bytes_removed: 0,
        stage_keys_removed: 0,
        temp_files_removed: 0,
        dry_run: args.dry_run,
    };
    let dead_set: BTreeSet<Id> = dead.iter().copied().collect();
    for (key, target) in store.refs(RefKind::StageKey)? {
        if dead_set.contains(&target) || !store.object_path(&target).exists() {
            report.stage_keys_removed += 1;
            if !args.dry_run {
                store.remove_ref(RefKind::StageKey, &key)?;
            }
        }
    }
    for id in &dead {
        report.bytes_removed += if args.dry_run {
            std::fs::metadata(store.object_path(id)).map_or(0, |m| m.len())
        } else {
            store.remove_object(id)?
        };
    }
    if !args.dry_run {
        report.temp_files_removed = store.clear_tmp()?;
    }
    Ok(report)
}
