//! `mlpipe verify`: re-hash every object and check that every ref points at an object that exists; then
//! the prediction ledger: every record input re-hashed, every entry's input present.

use std::path::PathBuf;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::ledger;
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
