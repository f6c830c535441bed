//! `mlpipe verify`: re-hash every object and check that every ref points at an object that exists; then
//! the prediction ledger: every record input re-hashed, every entry's input present.

use std::path::PathBuf;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::ledger;
use crate::provenance::{PredictionRecord, RunRecord};
use crate::store::{LocalStore, RefKind, Store};

pub struct VerifyArgs {
    pub store: PathBuf,
    /// Ledger database URL; the store's SQLite ledger (when there is one) otherwise.
    pub ledger: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Problem {
    pub id: String,
    pub what: String,
}

#[derive(Debug, Serialize)]
pub struct VerifyReport {
    pub objects: usize,
    pub bytes: u64,
    pub refs: usize,
    /// Ledger entries and distinct record inputs checked (none when there is no ledger).
    pub ledger_entries: usize,
    pub ledger_inputs: usize,
    pub problems: Vec<Problem>,
}

pub fn run(args: &VerifyArgs) -> Result<VerifyReport> {
    let store = LocalStore::open(&args.store)?;
    let mut problems = Vec::new();
    let mut bytes = 0u64;
    let ids = store.object_ids()?;
    for id in &ids {
        match store.get(id) {
            Ok(b) => bytes += b.len() as u64,
            Err(Error::Corrupt { actual, .. }) => {
                problems.push(Problem {
                    id: id.hex(),
                    what: format!("corrupt: its bytes hash to {actual}"),
                });
            }
            Err(e) => problems.push(Problem {
                id: id.hex(),
                what: e.to_string(),
            }),
        }
    }
    let mut refs = 0;
    for (kind, label) in [
        (RefKind::Run, "run"),
        (RefKind::Prediction, "prediction"),
        (RefKind::StageKey, "stage key"),
    ] {
        match store.refs(kind) {
            Ok(list) => {
                for (key, target) in list {
                    refs += 1;
                    if !store.contains(&target)? {
                        problems.push(Problem {
                            id: key.hex(),
                            what: format!("{label} points at missing object {target}"),
                        });
                    }
                }
            }
            Err(e) => problems.push(Problem {
                id: label.to_string(),
                what: e.to_string(),
            }),
        }
    }
    check_records(&store, &mut problems)?;
    let (ledger_entries, ledger_inputs) = check_ledger(&store, args.ledger.as_deref(), &mut problems)?;
    Ok(VerifyReport {
        objects: ids.len(),
        bytes,
        refs,
        ledger_entries,
        ledger_inputs,
        problems,
    })
}

/// Every object a run or prediction record names must exist (a damaged record is already reported above).
fn check_records(store: &LocalStore, problems: &mut Vec<Problem>) -> Result<()> {
    let mut missing = |owner: String, what: String, id: &crate::digest::Id, fix: &str| -> Result<()> {
        if !store.contains(id)? {
            problems.push(Problem {
                id: id.hex(),
                what: format!("missing: {owner} needs it as {what}; {fix}"),
            });
        }
        Ok(())
    };
    for (run, rec_id) in store.refs(RefKind::Run)? {
        let Ok(r) = super::load_json::<RunRecord>(store, &rec_id, "run record") else {
            continue;
        };
        let owner = format!("run {}", run.short());
        let rerun = "run the pipeline again to recompute it";
        missing(owner.clone(), "its pipeline".into(), &r.pipeline, rerun)?;
        missing(
            owner.clone(),
            "its data snapshot".into(),
            &r.snapshot,
            "run the pipeline again on the same data to store it",
        )?;
        if let Some(s) = &r.source_record {
            missing(owner.clone(), "its source record".into(), s, rerun)?;
        }
        for st in &r.stages {
            missing(
                owner.clone(),
                format!("the output of stage {}", st.name),
                &st.output,
                rerun,
            )?;
        }
    }
    for (prediction, rec_id) in store.refs(RefKind::Prediction)? {
        let Ok(p) = super::load_json::<PredictionRecord>(store, &rec_id, "prediction record") else {
            continue;
        };
        let owner = format!("prediction {}", prediction.short());
        missing(
            owner.clone(),
            "its input".into(),
            &p.input,
            "predict the same input file again to store it",
        )?;
        missing(
            owner.clone(),
            "its output".into(),
            &p.output,
            "predict the same input again to recompute it",
        )?;
        missing(
            owner,
            "its model".into(),
            &p.model,
            "run the pipeline again to recompute it",
        )?;
    }
    Ok(())
}

fn check_ledger(store: &LocalStore, url: Option<&str>, problems: &mut Vec<Problem>) -> Result<(usize, usize)> {
    if url.is_none() && !ledger::default_path(store.root()).exists() {
        return Ok((0, 0));
    }
    let mut backend = ledger::open(store.root(), url)?;
    let entries = backend.entries(&ledger::Filter::default())?;
    let mut inputs = std::collections::BTreeSet::new();
    for e in &entries {
        if e.input_format == ledger::RECORD_FORMAT {
            if !inputs.insert(e.input) {
                continue;
            }
            match backend.input(&e.input) {
                Ok(Some(_)) => {}
                Ok(None) => problems.push(Problem {
                    id: e.prediction.hex(),
                    what: format!("ledger entry's input {} is missing from the ledger", e.input.short()),
                }),
                Err(Error::Corrupt { actual, .. }) => problems.push(Problem {
                    id: e.input.hex(),
                    what: format!("ledger input is corrupt: its bytes hash to {actual}"),
                }),
                Err(err) => problems.push(Problem {
                    id: e.input.hex(),
                    what: err.to_string(),
                }),
            }
        } else if !store.contains(&e.input)? {
            problems.push(Problem {
                id: e.prediction.hex(),
                what: format!("batch input {} is not in the store (removed by gc?)", e.input.short()),
            });
        }
    }
    Ok((entries.len(), inputs.len()))
}
