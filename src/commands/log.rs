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
    let scan = store.scan_refs(RefKind::Run)?;
    for d in &scan.damaged {
        unreadable.push(format!("{}: {}", d.rel, d.error()));
    }
    for (run, record) in scan.refs {
        match super::load_run_record(&store, &run, &record) {
            // A record an older mlpipe wrote may hold a password in its source: never show it.
            Ok(mut r) => {
                r.source = crate::database::redact_url(&r.source);
                runs.push(r);
            }
            Err(e) => unreadable.push(format!("{}: {e}", run.short())),
        }
    }
    runs.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.run.cmp(&b.run)));
    Ok(LogReport { runs, unreadable })
}
