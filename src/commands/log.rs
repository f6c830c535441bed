//! `mlpipe log`: the runs in a store, newest first.

use std::path::PathBuf;

use serde::Serialize;

use crate::error::Result;
use crate::provenance::RunRecord;
use crate::store::{LocalStore, RefKind};

pub struct LogArgs {
    pub store: PathBuf,
}

#[derive(Debug, Serialize)]
pub struct LogReport {
    pub runs: Vec<RunRecord>,
    /// Runs whose record could not be read (damaged or missing), by run id.
    pub unreadable: Vec<String>,
}

pub fn run(args: &LogArgs) -> Result<LogReport> {
    let store = LocalStore::open(&args.store)?;
    let mut runs = Vec::new();
    let mut unreadable = Vec::new();
    for (run, record) in store.refs(RefKind::Run)? {
        match super::load_json::<RunRecord>(&store, &record, "run record") {
            Ok(r) => runs.push(r),
            Err(e) => unreadable.push(format!("{}: {e}", run.short())),
        }
    }
    runs.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.run.cmp(&b.run)));
    Ok(LogReport { runs, unreadable })
}
