//! `mlpipe snapshot FILE`: put a data file into the store (or only compute its id) without running a
//! pipeline. The id is the file's blake3, the same as `b3sum FILE`.

use std::path::PathBuf;

use serde::Serialize;

use crate::digest::Id;
use crate::error::Result;
use crate::store::{LocalStore, hash_file};

pub struct SnapshotArgs {
    pub file: PathBuf,
    pub store: PathBuf,
    /// Compute the id only; store nothing.
    pub hash_only: bool,
}

#[derive(Debug, Serialize)]
pub struct SnapshotReport {
    pub snapshot: Id,
    pub bytes: u64,
    pub stored: bool,
}

pub fn run(args: &SnapshotArgs) -> Result<SnapshotReport> {
    if args.hash_only {
        let bytes = std::fs::metadata(&args.file)
            .map_err(|e| crate::Error::io("read", &args.file, e))?
            .len();
        return Ok(SnapshotReport {
            snapshot: hash_file(&args.file)?,
            bytes,
            stored: false,
        });
    }
    let store = LocalStore::open(&args.store)?;
    let _lock = store.lock(false)?;
    let (snapshot, bytes) = store.put_file(&args.file)?;
    Ok(SnapshotReport {
        snapshot,
        bytes,
        stored: true,
    })
}
