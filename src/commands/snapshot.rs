//! `mlpipe snapshot SOURCE`: put data into the store (or only compute its id) without running a pipeline.
//! A CSV file's id is its blake3, the same as `b3sum FILE`. A Parquet, Arrow IPC or NDJSON file is
//! turned into its rows' canonical CSV (see [`crate::sources`]; `--column` keeps only some, as `[gather]
//! columns` does), whose blake3 is the id — the id `run` gives the same file. A database (`sqlite:PATH`, `postgres://…`) is
//! read as of a time into its canonical CSV (see [`crate::sources`]), whose blake3 is the id; the
//! query, `as_of`, rows and schema are recorded beside it. `--export` also writes the snapshot to a file
//! (with the record as `FILE.source.json` for a database), e.g. into `data-snapshots/`.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::database::Database;
use crate::digest::Id;
use crate::error::{Error, Result};
use crate::sources::{self, FileFormat, History, Selection, SourceRecord};
use crate::store::{LocalStore, Store, hash_file};

pub struct SnapshotArgs {
    /// A data file, or a database URL.
    pub source: String,
    pub store: PathBuf,
    /// Compute the id only; store nothing.
    pub hash_only: bool,
    pub database: DatabaseArgs,
    pub export: Option<PathBuf>,
    /// How the file is written (`csv`, `parquet`, `ipc`, `ndjson`); by its extension when absent.
    pub format: Option<String>,
    /// A typed file's columns to keep (all when empty).
    pub columns: Vec<String>,
}

/// What to read from a database, as the `[gather]` keys of a pipeline.
#[derive(Default)]
pub struct DatabaseArgs {
    pub table: Option<String>,
    pub query: Option<String>,
    pub as_of: Option<String>,
    pub updated_at: Option<String>,
    pub key: Vec<String>,
    pub valid_from: Option<String>,
    pub valid_to: Option<String>,
    pub order_by: Vec<String>,
    /// Written for NULL (a pipeline's first `na_values`); empty by default.
    pub na: String,
}

impl DatabaseArgs {
    fn any(&self) -> bool {
        self.table.is_some()
            || self.query.is_some()
            || self.as_of.is_some()
            || self.updated_at.is_some()
            || !self.key.is_empty()
            || self.valid_from.is_some()
            || self.valid_to.is_some()
            || !self.order_by.is_empty()
    }

    fn selection(&self) -> Result<Selection> {
        let history = match (&self.updated_at, &self.valid_from, &self.valid_to) {
            (Some(c), None, None) => History::UpdatedAt {
                column: c.clone(),
                key: self.key.clone(),
            },
            (None, Some(f), Some(t)) => History::Valid {
                from: f.clone(),
                to: t.clone(),
            },
            (None, None, None) if self.key.is_empty() => History::Current,
            _ => {
                return Err(Error::data(
                    "give --updated-at (optionally with --key), or --valid-from with --valid-to",
                ));
            }
        };
        if self.table.is_some() == self.query.is_some() {
            return Err(Error::data("give --table or --query (one of them)"));
        }
        if let Some(t) = &self.table {
            crate::database::check_table_name(t)?;
        }
        let as_of = match (&self.as_of, &history) {
            (None, History::Current) => None,
            (None, _) => return Err(Error::data("--as-of is needed with time columns (a time, or now)")),
            (Some(_), History::Current) => {
                return Err(Error::data(
                    "--as-of needs --updated-at, or --valid-from and --valid-to",
                ));
            }
            (Some(a), _) if a == "now" => Some("now".to_string()),
            (Some(a), _) => Some(sources::normalise_time(a)?),
        };
        Ok(Selection {
            table: self.table.clone(),
            query: self.query.clone(),
            as_of,
            history,
            order_by: self.order_by.clone(),
        })
    }
}

#[derive(Debug, Serialize)]
pub struct SnapshotReport {
    pub snapshot: Id,
    pub bytes: u64,
    pub stored: bool,
    /// For a database: what was read.
    pub source: Option<SourceRecord>,
    pub exported: Option<PathBuf>,
}

fn export(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
    crate::tables::write_file(dir, path, bytes)
}

pub fn run(args: &SnapshotArgs) -> Result<SnapshotReport> {
    if let Some(path) = &args.export {
        // An export in the store would replace the store's own files (its `.source.json` beside it too).
        let mut side = path.clone().into_os_string();
        side.push(".source.json");
        crate::tables::refuse_inside_store(&args.store, path, "--export")?;
        crate::tables::refuse_inside_store(&args.store, Path::new(&side), "--export")?;
    }
    match Database::parse(&args.source)? {
        Some(db) => snapshot_database(args, &db),
        None if args.database.any() => Err(Error::data(format!(
            "{} is a file; --table, --query, --as-of and the time options are for databases",
            args.source
        ))
        .with_hint("name a database as sqlite:PATH or postgres://user@host/db")),
        None => snapshot_file(args),
    }
}

fn snapshot_file(args: &SnapshotArgs) -> Result<SnapshotReport> {
    let file = PathBuf::from(&args.source);
    let format = match &args.format {
        Some(name) => FileFormat::from_name(name).ok_or_else(|| {
            Error::data(format!(
                "--format must be one of csv, parquet, ipc, ndjson, not \"{name}\""
            ))
        })?,
        None => FileFormat::of_path(&file)
            .map_err(|message| Error::data(message).with_hint("give --format ndjson for one object per line"))?,
    };
    if !format.is_csv() {
        return snapshot_typed_file(args, &file, format);
    }
    if !args.columns.is_empty() || !args.database.na.is_empty() {
        return Err(Error::data(format!(
            "{} is read as CSV, whose snapshot is its bytes; --column and --na are for databases and Parquet, IPC or NDJSON files",
            file.display()
        ))
        .with_hint("leave them out, or give --format for a file whose extension does not say what it is"));
    }
    if args.hash_only {
        let bytes = std::fs::metadata(&file).map_err(|e| Error::io("read", &file, e))?.len();
        return Ok(SnapshotReport {
            snapshot: hash_file(&file)?,
            bytes,
            stored: false,
            source: None,
            exported: None,
        });
    }
    let store = LocalStore::open(&args.store)?;
    let _lock = store.lock(false)?;
    let (snapshot, bytes) = store.put_file(&file)?;
    let exported = match &args.export {
        Some(path) => {
            export(path, &store.get(&snapshot)?)?;
            Some(path.clone())
        }
        None => None,
    };
    Ok(SnapshotReport {
        snapshot,
        bytes,
        stored: true,
        source: None,
        exported,
    })
}

/// A Parquet, IPC or NDJSON file: its canonical CSV is the snapshot.
fn snapshot_typed_file(args: &SnapshotArgs, file: &Path, format: FileFormat) -> Result<SnapshotReport> {
    let (_, bytes) = super::read_snapshot(file)?;
    let name = file.display().to_string();
    let csv = sources::canonical_csv(bytes, format, &args.columns, &args.database.na, &name)?;
    let snapshot = Id::of_bytes(&csv);
    let stored = !args.hash_only;
    if stored {
        let store = LocalStore::open(&args.store)?;
        let _lock = store.lock(false)?;
        store.put_with_id(&snapshot, &csv)?;
    }
    let exported = match &args.export {
        Some(path) => {
            export(path, &csv)?;
            Some(path.clone())
        }
        None => None,
    };
    Ok(SnapshotReport {
        snapshot,
        bytes: csv.len() as u64,
        stored,
        source: None,
        exported,
    })
}

fn snapshot_database(args: &SnapshotArgs, db: &Database) -> Result<SnapshotReport> {
    let selection = args.database.selection()?;
    let as_of = match selection.as_of.as_deref() {
        Some("now") => Some(crate::provenance::now_rfc3339_micros()),
        other => other.map(str::to_string),
    };
    let fetched = sources::fetch(db, &selection, as_of.as_deref(), &args.database.na)?;
    let snapshot = fetched.record.snapshot;
    let bytes = fetched.csv.len() as u64;
    let record_json = serde_json::to_vec_pretty(&fetched.record).map_err(|e| Error::internal(e.to_string()))?;
    let stored = !args.hash_only;
    if stored {
        let store = LocalStore::open(&args.store)?;
        let _lock = store.lock(false)?;
        store.put_with_id(&snapshot, &fetched.csv)?;
        store.put(&record_json)?;
    }
    let exported = match &args.export {
        Some(path) => {
            export(path, &fetched.csv)?;
            let mut side = path.clone().into_os_string();
            side.push(".source.json");
            export(Path::new(&side), &record_json)?;
            Some(path.clone())
        }
        None => None,
    };
    Ok(SnapshotReport {
        snapshot,
        bytes,
        stored,
        source: Some(fetched.record),
        exported,
    })
}
