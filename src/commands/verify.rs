//! `mlpipe verify`: re-hash every object and check that every ref points at an object that exists.

use std::path::PathBuf;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::store::{LocalStore, RefKind, Store};

pub struct VerifyArgs {
    pub store: PathBuf,
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
    Ok(VerifyReport {
        objects: ids.len(),
        bytes,
        refs,
        problems,
    })
}
