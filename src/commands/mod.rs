//! The CLI's verbs, one file each: an args struct and one function that returns a report. Nothing here
//! prints; the binary decides how reports look.

pub mod check;
pub mod diff;
pub mod export;
pub mod gc;
pub mod ledger;
pub mod log;
pub mod predict;
pub mod report;
pub mod reproduce;
pub mod run;
pub mod serve;
pub mod show;
pub mod snapshot;
pub mod verify;

use std::path::Path;

use crate::digest::Id;
use crate::error::{Error, Result};
use crate::executor::StageOutput;
use crate::provenance::{PredictionRecord, RunRecord};
use crate::spec::Pipeline;
use crate::store::{LocalStore, RefKind, Resolved, Store};

/// Reads a data file and computes its content id (blake3; multi-threaded for large files, which gives
/// the same digest as one thread).
pub fn read_snapshot(path: &Path) -> Result<(Id, Vec<u8>)> {
    crate::resources::check_fits(path, "data file")?;
    let bytes = std::fs::read(path).map_err(|e| Error::io("read data file", path, e))?;
    let mut hasher = blake3::Hasher::new();
    if bytes.len() > 1 << 20 {
        hasher.update_rayon(&bytes);
    } else {
        hasher.update(&bytes);
    }
    Ok((Id(*hasher.finalize().as_bytes()), bytes))
}

pub fn load_json<T: serde::de::DeserializeOwned>(store: &dyn Store, id: &Id, what: &str) -> Result<T> {
    let bytes = store.get(id)?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Lookup {
        message: format!("object {id} is not a {what}: {e}"),
        hint: Some(format!("pass the id of a {what}")),
    })
}

pub fn load_run(store: &LocalStore, run: &Id) -> Result<RunRecord> {
    let record = store.get_ref(RefKind::Run, run)?.ok_or_else(|| Error::Lookup {
        message: format!("run {run} is not in {}", store.root().display()),
        hint: Some("list runs with `mlpipe log`".into()),
    })?;
    load_json(store, &record, "run record")
}

pub fn load_prediction(store: &LocalStore, id: &Id) -> Result<PredictionRecord> {
    let record = store.get_ref(RefKind::Prediction, id)?.ok_or_else(|| Error::Lookup {
        message: format!("prediction {id} is not in {}", store.root().display()),
        hint: None,
    })?;
    load_json(store, &record, "prediction record")
}

/// A run named by a hash prefix (a run id, or a run record's object id).
pub fn resolve_run(store: &LocalStore, hash: &str) -> Result<RunRecord> {
    match store.resolve(hash)? {
        Resolved::Run(id) => load_run(store, &id),
        Resolved::Object(id) => {
            let record: RunRecord = load_json(store, &id, "run record")?;
            Ok(record)
        }
        Resolved::Prediction(id) => Err(Error::Lookup {
            message: format!("{} is a prediction, not a run", id.short()),
            hint: Some("`mlpipe show` it to see its run".into()),
        }),
    }
}

/// The recorded pipeline and stage outputs of a run.
pub fn load_fitted(store: &dyn Store, record: &RunRecord) -> Result<(Pipeline, Vec<StageOutput>)> {
    let pipeline = Pipeline::from_canonical_json(&store.get(&record.pipeline)?)?;
    let outputs = record
        .stages
        .iter()
        .map(|s| StageOutput::from_bytes(&store.get(&s.output)?, &s.output))
        .collect::<Result<Vec<_>>>()?;
    Ok((pipeline, outputs))
}
