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
pub use crate::fitted::runs::{
    Fault, RecordIndex, check_prediction_record, check_run_id, check_run_record, load_fitted, load_json,
    load_prediction, load_run, load_run_record, resolve_run, resolve_run_to_reproduce, run_model,
};

/// Reads a data file and computes its content id (blake3; multi-threaded for large files, which gives
/// the same digest as one thread).
pub fn read_snapshot(path: &Path) -> Result<(Id, Vec<u8>)> {
    // A FIFO would block the run forever, a device (a link to /dev/zero) never ends.
    if let Ok(meta) = std::fs::metadata(path)
        && !meta.is_file()
    {
        return Err(Error::data(format!(
            "{} is not a regular file (a folder, FIFO or device)",
            path.display()
        ))
        .with_hint("name a data file; copy streamed data into a file first"));
    }
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
