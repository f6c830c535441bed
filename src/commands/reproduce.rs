//! `mlpipe reproduce HASH`: re-execute a run (or a prediction) from its recorded snapshot and pipeline,
//! with every cache bypassed, in memory, and compare every artifact with the record.

use std::path::PathBuf;

use serde::Serialize;

use crate::digest::Id;
use crate::error::Result;
use crate::executor::{Executor, Progress, Snapshot};
use crate::provenance::{self, CodeState};
use crate::spec::Pipeline;
use crate::store::{LocalStore, MemoryStore, Resolved, Store};

pub struct ReproduceArgs {
    pub hash: String,
    pub store: PathBuf,
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

#[derive(Debug, Serialize)]
pub struct ReproduceReport {
    /// "run" or "prediction".
    pub what: String,
    pub id: Id,
    pub run: Id,
    pub checked: Vec<ArtifactCheck>,
    pub diverged: Option<Divergence>,
    /// Objects that were missing or damaged in the store and were restored from the verified re-run.
    pub restored: usize,
    pub recorded_code: CodeState,
    pub recorded_version: String,
    pub current_version: String,
}

pub fn run(args: &ReproduceArgs, progress: &dyn Progress) -> Result<ReproduceReport> {
    let store = LocalStore::open(&args.store)?;
    let _lock = store.lock(false)?;
    if let Resolved::Prediction(id) = store.resolve(&args.hash)? {
        reproduce_prediction(&store, &id)
    } else {
        let record = super::resolve_run(&store, &args.hash)?;
        reproduce_run(&store, &record, progress)
    }
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
    let mut restored = 0;
    if diverged.is_none() {
        for (id, bytes) in scratch.objects() {
            if store.get(&id).is_err() {
                store.put_with_id(&id, &bytes)?;
                restored += 1;
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
    })
}

fn reproduce_prediction(store: &LocalStore, id: &Id) -> Result<ReproduceReport> {
    let rec = super::load_prediction(store, id)?;
    let run = super::load_run(store, &rec.run)?;
    let (pipeline, outputs) = super::load_fitted(store, &run)?;
    let input = store.get(&rec.input)?;
    let (csv, _) = super::predict::predict_csv(&pipeline, &outputs, &input, &rec.source)?;
    let reproduced = Id::of_bytes(&csv);
    let diverged = (reproduced != rec.output).then(|| Divergence {
        stage: "predict".into(),
        recorded: Some(rec.output),
        reproduced: Some(reproduced),
    });
    Ok(ReproduceReport {
        what: "prediction".into(),
        id: *id,
        run: rec.run,
        checked: vec![ArtifactCheck {
            name: "predictions".into(),
            recorded: rec.output,
            reproduced,
        }],
        diverged,
        restored: 0,
        recorded_code: run.code,
        recorded_version: run.tool.mlpipe,
        current_version: provenance::MLPIPE_VERSION.to_string(),
    })
}
