//! Batch input and output formats for `predict`: CSV, NDJSON and Parquet in; CSV, NDJSON, Parquet, a
//! SQLite table or a PostgreSQL table out. Each output row carries the input's id, the prediction, the
//! model id and the row's prediction id.

mod sink;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use serde_json::Value;

use crate::database::{self, Database};
use crate::error::{Error, Result};
use crate::frame::json_number;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Ndjson,
    Parquet,
    /// Arrow IPC (Feather v2), file or stream format.
    Ipc,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Ndjson => "ndjson",
            Format::Parquet => "parquet",
            Format::Ipc => "ipc",
        }
    }

    pub fn parse(name: &str) -> Result<Format> {
        match name {
            "csv" => Ok(Format::Csv),
            "ndjson" | "jsonl" => Ok(Format::Ndjson),
            "parquet" => Ok(Format::Parquet),
            "ipc" | "arrow" | "feather" => Ok(Format::Ipc),
            other => {
                Err(Error::data(format!("unknown format \"{other}\"")).with_hint("use csv, ndjson, parquet or ipc"))
            }
        }
    }

    /// The format a file name implies, if any.
    pub fn of_path(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" | "txt" => Some(Format::Csv),
            "ndjson" | "jsonl" => Some(Format::Ndjson),
            "parquet" | "pq" => Some(Format::Parquet),
            "arrow" | "ipc" | "feather" => Some(Format::Ipc),
            _ => None,
        }
    }
}

/// Where batch predictions go.
#[derive(Debug, Clone)]
pub enum Target {
    File { path: PathBuf, format: Format },
    Stdout { format: Format },
    Table { database: Database, table: String },
}

impl Target {
    /// `-` is standard output; `sqlite:PATH` and `postgres://…` need `table`; files take their format from
    /// the extension unless `format` is given.
    pub fn parse(output: &str, table: Option<&str>, format: Option<Format>) -> Result<Target> {
        if let Some(db) = Database::parse(output)? {
            let table = table.ok_or_else(|| {
                Error::data(format!(
                    "--output {} is a database; name the table with --table",
                    db.redacted()
                ))
            })?;
            database::check_table_name(table)?;
            return Ok(Target::Table {
                database: db,
                table: table.to_string(),
            });
        }
        if table.is_some() {
            return Err(Error::data(
                "--table is only for database outputs (sqlite:PATH or postgres://…)",
            ));
        }
        if output == "-" {
            return Ok(Target::Stdout {
                format: format.unwrap_or(Format::Csv),
            });
        }
        let path = PathBuf::from(output);
        let Some(format) = format.or_else(|| Format::of_path(&path)) else {
            return Err(Error::data(format!("cannot tell the format of {output} from its name"))
                .with_hint("end it in .csv, .ndjson or .parquet, or pass --output-format"));
        };
        Ok(Target::File { path, format })
    }

    pub fn describe(&self) -> String {
        match self {
            Target::File { path, .. } => path.display().to_string(),
            Target::Stdout { .. } => "standard output".into(),
            Target::Table { database, table } => format!("{} table {table}", database.redacted()),
        }
    }
}

/// The absolute path `path` names once every symlink is followed (the final component too, when it is
/// a link) and `.`/`..` are folded: the nearest existing ancestor is canonicalised and the components
/// that do not exist yet (which hold no link) are appended lexically. A dangling link is followed to
/// where it points (that is where a write through it would land); a loop of links is an error.
fn resolve(path: &Path) -> Result<PathBuf> {
    resolve_within(path, 0)
}

fn resolve_within(path: &Path, depth: usize) -> Result<PathBuf> {
    if depth > 40 {
        return Err(
            Error::data(format!("{} goes through more than 40 symbolic links", path.display()))
                .with_hint("check the links on the path for a loop"),
        );
    }
    let absolute = absolute(path)?;
    let mut existing = absolute.as_path();
    let mut rest: Vec<&std::ffi::OsStr> = Vec::new();
    let base = loop {
        if let Ok(real) = std::fs::canonicalize(existing) {
            break real;
        }
        if let Ok(target) = std::fs::read_link(existing) {
            let target = existing.parent().map_or_else(|| target.clone(), |p| p.join(&target));
            break resolve_within(&target, depth + 1)?;
        }
        // The last component, `..` included (which `file_name` does not give).
        match (existing.parent(), existing.components().next_back()) {
            (Some(parent), Some(last)) => {
                rest.push(last.as_os_str());
                existing = parent;
            }
            _ => break existing.to_path_buf(),
        }
    };
    Ok(fold(base, rest.iter().rev()))
}

/// `path` made absolute against the current folder (nothing resolved).
fn absolute(path: &Path) -> Result<PathBuf> {
    if path.is_absolute() {
        Ok(path.to_path_buf())
    } else {
        Ok(std::env::current_dir()
            .map_err(|e| Error::io("read", "the current folder", e))?
            .join(path))
    }
}

/// `base` with `parts` appended, `.` and `..` folded lexically.
fn fold<'a>(base: PathBuf, parts: impl Iterator<Item = &'a &'a std::ffi::OsStr>) -> PathBuf {
    let mut out = base;
    for part in parts {
        if *part == ".." {
            out.pop();
        } else if *part != "." {
            out.push(part);
        }
    }
    out
}

/// Refuses an output that would land in the store folder or inside it (the ledger, an object, a ref),
/// comparing both paths with every symlink resolved: writing there would replace the store's own files.
/// `what` names the output, for the message (`--output`).
pub fn refuse_inside_store(store_root: &Path, output: &Path, what: &str) -> Result<()> {
    let store = resolve(store_root)?;
    let resolved = resolve(output)?;
    if resolved.starts_with(&store) {
        let written = absolute(output)?;
        let lexical = fold(PathBuf::new(), written.iter().collect::<Vec<_>>().iter());
        let through = if resolved == lexical {
            String::new()
        } else {
            format!(" (through links it is {})", resolved.display())
        };
        return Err(Error::data(format!(
            "{what} {} lies inside the store {}{through}; mlpipe never writes an output there, as it would replace the store's own files",
            output.display(),
            store_root.display(),
        ))
        .with_hint(format!(
            "write it outside {}, the store's folder (e.g. in the project folder)",
            store_root.display()
        )));
    }
    Ok(())
}

/// Refuses an output that resolves (through links) to the ledger in use or a file SQLite keeps beside it
/// (`-wal`, `-shm`, `-journal`): `ledger` is the `--ledger` / `MLPIPE_LEDGER` URL, the store's own
/// ledger when absent. Writing there would destroy the ledger's entries.
pub fn refuse_over_ledger(store_root: &Path, ledger: Option<&str>, output: &Path, what: &str) -> Result<()> {
    let ledger_path = match ledger {
        None => crate::ledger::default_path(store_root),
        Some(url) => match Database::parse(url)? {
            Some(Database::Sqlite(path)) => path,
            _ => return Ok(()),
        },
    };
    let resolved = resolve(output)?;
    // The same file by another name (a hard link) is the same file: compare device and inode too.
    let output_meta = std::fs::metadata(output).ok();
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = ledger_path.as_os_str().to_os_string();
        name.push(suffix);
        let same_inode = match (&output_meta, std::fs::metadata(&name)) {
            (Some(a), Ok(b)) => same_file(a, &b),
            _ => false,
        };
        if same_inode || resolve(Path::new(&name))? == resolved {
            return Err(Error::data(format!(
                "{what} {} is the ledger {}{}; mlpipe never writes an output over the ledger it records in, as \
                 that would destroy its entries",
                output.display(),
                ledger_path.display(),
                if suffix.is_empty() {
                    String::new()
                } else {
                    format!(" (its {suffix} file)")
                },
            ))
            .with_hint("write the output to another file"));
        }
    }
    Ok(())
}

impl Target {
    /// Refuses a target that is the ledger in use, or one of its files (see [`refuse_over_ledger`]).
    pub fn refuse_over_ledger(&self, store_root: &Path, ledger: Option<&str>) -> Result<()> {
        match self {
            Target::File { path, .. } => refuse_over_ledger(store_root, ledger, path, "--output"),
            Target::Table {
                database: Database::Sqlite(path),
                ..
            } => refuse_over_ledger(store_root, ledger, path, "the SQLite output"),
            Target::Table { .. } | Target::Stdout { .. } => Ok(()),
        }
    }

    /// Refuses a target in the store folder (see [`refuse_inside_store`]): a file, or a SQLite database.
    pub fn refuse_inside_store(&self, store_root: &Path) -> Result<()> {
        match self {
            Target::File { path, .. } => refuse_inside_store(store_root, path, "--output"),
            Target::Table {
                database: Database::Sqlite(path),
                ..
            } => refuse_inside_store(store_root, path, "the SQLite output"),
            Target::Table { .. } | Target::Stdout { .. } => Ok(()),
        }
    }
}

/// The `prediction` column of a batch: a regressor's values, or a classifier's labels (numbers when
/// its labels are numbers).
pub enum PredictionColumn {
    Numbers(Vec<f64>),
    Text(Vec<String>),
}

/// The rows written for a batch.
pub struct OutputRows<'a> {
    pub id_name: Option<&'a str>,
    pub ids: Option<Vec<IdValue>>,
    pub prediction: PredictionColumn,
    /// A classifier's probabilities: (`proba_<label>`, one value per row), in class order.
    pub extra: Vec<(String, Vec<f64>)>,
    pub model: String,
    /// The batch's prediction id (hex); row `r`'s prediction id is `<batch>/<r>`.
    pub batch: String,
}

impl OutputRows<'_> {
    pub fn len(&self) -> usize {
        match &self.prediction {
            PredictionColumn::Numbers(v) => v.len(),
            PredictionColumn::Text(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The columns written, in order: the id (when the pipeline has one), `prediction`, the
    /// probabilities, `model`, `prediction_id`.
    pub fn column_names(&self) -> Vec<String> {
        let mut cols: Vec<String> = self.id_name.map(str::to_string).into_iter().collect();
        cols.push("prediction".into());
        cols.extend(self.extra.iter().map(|(n, _)| n.clone()));
        cols.extend(["model", "prediction_id"].map(String::from));
        cols
    }

    pub fn prediction_id(&self, row: usize) -> String {
        format!("{}/{row}", self.batch)
    }

    /// Row `r`'s prediction as JSON.
    pub fn prediction_json(&self, r: usize) -> Value {
        match &self.prediction {
            PredictionColumn::Numbers(v) => json_number_exact(v[r]),
            PredictionColumn::Text(v) => Value::String(v[r].clone()),
        }
    }

    fn id(&self, row: usize) -> Option<&IdValue> {
        self.ids.as_ref().map(|v| &v[row])
    }

    pub fn to_csv(&self) -> Result<Vec<u8>> {
        use std::io::Write;
        let mut out = Vec::with_capacity(self.len() * (self.batch.len() + self.model.len() + 40));
        let io = |e: std::io::Error| Error::internal(format!("writing predictions: {e}"));
        let header: Vec<Vec<u8>> = self.column_names().iter().map(|c| csv_field(c)).collect();
        out.extend_from_slice(&header.join(&b","[..]));
        out.push(b'\n');
        for r in 0..self.len() {
            if self.id_name.is_some() {
                match self.id(r) {
                    Some(IdValue::Text(s)) => out.extend_from_slice(&csv_field(s)),
                    Some(v) => write!(out, "{v}").map_err(io)?,
                    None => {}
                }
                out.push(b',');
            }
            // `{}` on f64 prints the shortest text that parses back to the same bits.
            match &self.prediction {
                PredictionColumn::Numbers(v) => write!(out, "{}", v[r]).map_err(io)?,
                PredictionColumn::Text(v) => out.extend_from_slice(&csv_field(&v[r])),
            }
            for (_, column) in &self.extra {
                write!(out, ",{}", column[r]).map_err(io)?;
            }
            writeln!(out, ",{},{}/{r}", self.model, self.batch).map_err(io)?;
        }
        Ok(out)
    }

    pub fn to_ndjson(&self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.len() * 160);
        for r in 0..self.len() {
            let mut map = serde_json::Map::new();
            if let Some(id) = self.id_name {
                map.insert(id.to_string(), self.id(r).map_or(Value::Null, IdValue::to_json));
            }
            map.insert("prediction".into(), self.prediction_json(r));
            for (name, column) in &self.extra {
                map.insert(name.clone(), json_number_exact(column[r]));
            }
            map.insert("model".into(), Value::String(self.model.clone()));
            map.insert("prediction_id".into(), Value::String(self.prediction_id(r)));
            serde_json::to_writer(&mut out, &map).map_err(|e| Error::internal(e.to_string()))?;
            out.push(b'\n');
        }
        Ok(out)
    }

    /// The rows as one Arrow record batch: the columns of the CSV output, typed.
    fn record_batch(&self) -> Result<RecordBatch> {
        let n = self.len();
        let mut fields = Vec::new();
        let mut arrays: Vec<ArrayRef> = Vec::new();
        if let (Some(name), Some(ids)) = (self.id_name, &self.ids) {
            let (field, array) = id_array(name, ids);
            fields.push(field);
            arrays.push(array);
        }
        match &self.prediction {
            PredictionColumn::Numbers(v) => {
                fields.push(Field::new("prediction", DataType::Float64, false));
                arrays.push(Arc::new(Float64Array::from(v.clone())));
            }
            PredictionColumn::Text(v) => {
                fields.push(Field::new("prediction", DataType::Utf8, false));
                arrays.push(Arc::new(StringArray::from(v.clone())));
            }
        }
        for (name, column) in &self.extra {
            fields.push(Field::new(name, DataType::Float64, false));
            arrays.push(Arc::new(Float64Array::from(column.clone())));
        }
        fields.push(Field::new("model", DataType::Utf8, false));
        arrays.push(Arc::new(StringArray::from(vec![self.model.as_str(); n])));
        fields.push(Field::new("prediction_id", DataType::Utf8, false));
        arrays.push(Arc::new(StringArray::from(
            (0..n).map(|r| self.prediction_id(r)).collect::<Vec<_>>(),
        )));
        let schema = Arc::new(Schema::new(fields));
        RecordBatch::try_new(schema, arrays).map_err(|e| Error::internal(e.to_string()))
    }

    /// The rows as an Arrow IPC file (uncompressed, as any Arrow reader takes it).
    pub fn to_ipc(&self) -> Result<Vec<u8>> {
        let batch = self.record_batch()?;
        let mut out = Vec::new();
        let mut w = arrow_ipc::writer::FileWriter::try_new(&mut out, &batch.schema())
            .map_err(|e| Error::internal(e.to_string()))?;
        w.write(&batch).map_err(|e| Error::internal(e.to_string()))?;
        w.finish().map_err(|e| Error::internal(e.to_string()))?;
        drop(w);
        Ok(out)
    }

    pub fn to_parquet(&self) -> Result<Vec<u8>> {
        use parquet::arrow::ArrowWriter;
        use parquet::basic::Compression;
        use parquet::file::properties::WriterProperties;
        let batch = self.record_batch()?;
        let schema = batch.schema();
        let props = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
        let mut out = Vec::new();
        let mut w = ArrowWriter::try_new(&mut out, schema, Some(props)).map_err(|e| Error::internal(e.to_string()))?;
        w.write(&batch).map_err(|e| Error::internal(e.to_string()))?;
        w.close().map_err(|e| Error::internal(e.to_string()))?;
        Ok(out)
    }
}

/// A CSV field, quoted when it holds a delimiter, a quote or a line break.
fn csv_field(text: &str) -> Vec<u8> {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\"")).into_bytes()
    } else {
        text.as_bytes().to_vec()
    }
}

/// A prediction as JSON, exactly (never shortened to an integer).
pub fn json_number_exact(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}

fn id_array(name: &str, ids: &[IdValue]) -> (Field, ArrayRef) {
    let integral = ids.iter().all(|v| match v {
        IdValue::Number(x) => x.fract() == 0.0 && x.abs() < 9.0e15,
        IdValue::Missing => true,
        IdValue::Text(_) => false,
    });
    let numeric = ids.iter().all(|v| !matches!(v, IdValue::Text(_)));
    if numeric && integral {
        #[allow(clippy::cast_possible_truncation)]
        let values: Int64Array = ids
            .iter()
            .map(|v| match v {
                IdValue::Number(x) => Some(*x as i64),
                _ => None,
            })
            .collect();
        (Field::new(name, DataType::Int64, true), Arc::new(values))
    } else if numeric {
        let values: Float64Array = ids
            .iter()
            .map(|v| match v {
                IdValue::Number(x) => Some(*x),
                _ => None,
            })
            .collect();
        (Field::new(name, DataType::Float64, true), Arc::new(values))
    } else {
        let values: StringArray = ids
            .iter()
            .map(|v| match v {
                IdValue::Missing => None,
                other => Some(other.to_string()),
            })
            .collect();
        (Field::new(name, DataType::Utf8, true), Arc::new(values))
    }
}

/// Writes the rows to `target`; a file appears whole or not at all, a table write is one transaction.
/// Returns how many rows were new (a database skips prediction ids it already holds).
pub fn write_output(target: &Target, rows: &OutputRows<'_>, stdout: &mut dyn std::io::Write) -> Result<usize> {
    match target {
        Target::File { path, format } => {
            let bytes = encode(rows, *format)?;
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            write_file(dir, path, &bytes)?;
            Ok(rows.len())
        }
        Target::Stdout { format } => {
            let bytes = encode(rows, *format)?;
            stdout
                .write_all(&bytes)
                .and_then(|()| stdout.flush())
                .map_err(|e| Error::io("write to", "standard output", e))?;
            Ok(rows.len())
        }
        Target::Table { database, table } => sink::write_predictions(database, table, rows),
    }
}

/// Writes an output file atomically (`store::write_atomic`: a temp file beside it, renamed into place),
/// after removing the temp files killed writers left in that folder (see [`sweep_stale_temps`]).
pub fn write_file(dir: &Path, path: &Path, bytes: &[u8]) -> Result<()> {
    sweep_stale_temps(dir);
    crate::store::write_atomic(dir, path, bytes)
}

/// Removes, from `dir`, the temp files that `store::write_atomic` created and a killed process left
/// behind (a killed `predict -o` leaves one as large as its output). A file is removed only when all of
/// these hold: its name starts with our prefix ([`crate::store::TEMP_PREFIX`]); it is a regular file,
/// not a link; its lock can be taken (a live writer holds it from creation to rename, so a taken lock
/// means its writer is gone); and it has content or is over an hour old (a writer locks its file right
/// after creating it, before writing, so an empty new file may be one not locked yet). The file is
/// checked to be the one opened (same device and inode) before it is removed. Returns how many were
/// removed; a file that cannot be inspected or removed is left alone (this is housekeeping).
pub fn sweep_stale_temps(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(std::result::Result::ok)
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(crate::store::TEMP_PREFIX))
        })
        .filter(|e| remove_if_stale(&e.path()))
        .count()
}

fn remove_if_stale(path: &Path) -> bool {
    let Ok(before) = std::fs::symlink_metadata(path) else {
        return false;
    };
    if !before.file_type().is_file() {
        return false;
    }
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    if file.try_lock().is_err() {
        return false; // a live writer holds it
    }
    let Ok(opened) = file.metadata() else { return false };
    let old = opened
        .modified()
        .ok()
        .and_then(|m| m.elapsed().ok())
        .is_some_and(|age| age > std::time::Duration::from_secs(3600));
    if opened.len() == 0 && !old {
        return false;
    }
    // The name must still be the file we opened and locked (not something swapped in since).
    let Ok(now) = std::fs::symlink_metadata(path) else {
        return false;
    };
    if !now.file_type().is_file() || !same_file(&now, &opened) {
        return false;
    }
    std::fs::remove_file(path).is_ok()
}

#[cfg(unix)]
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    a.len() == b.len() && a.modified().ok() == b.modified().ok()
}

fn encode(rows: &OutputRows<'_>, format: Format) -> Result<Vec<u8>> {
    match format {
        Format::Csv => rows.to_csv(),
        Format::Ndjson => rows.to_ndjson(),
        Format::Parquet => rows.to_parquet(),
        Format::Ipc => rows.to_ipc(),
    }
}

/// An id column's value, written beside a prediction.
#[derive(Debug, Clone, PartialEq)]
pub enum IdValue {
    Number(f64),
    Text(Arc<str>),
    Missing,
}

impl IdValue {
    pub fn to_json(&self) -> Value {
        match self {
            IdValue::Number(x) => json_number(*x),
            IdValue::Text(s) => Value::String(s.to_string()),
            IdValue::Missing => Value::Null,
        }
    }
}

impl std::fmt::Display for IdValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IdValue::Number(x) => write!(f, "{x}"),
            IdValue::Text(s) => f.write_str(s),
            IdValue::Missing => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_killed_writers_temp_file_is_removed_and_a_live_writers_or_a_foreign_file_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let name = |n: &str| d.join(format!("{}{n}", crate::store::TEMP_PREFIX));
        // What a killed `predict -o out.csv` leaves: a full temp file nobody holds.
        std::fs::write(name("out.csv.AbCdEf123456"), vec![b'x'; 1 << 20]).unwrap();
        // A live writer's temp file: locked for as long as it is being written.
        std::fs::write(name("other.csv.live00000000"), b"partial").unwrap();
        let live = std::fs::File::open(name("other.csv.live00000000")).unwrap();
        live.lock().unwrap();
        // Just created, not locked yet (its writer locks it next): empty and new, kept.
        std::fs::write(name("new.csv.fresh0000000"), b"").unwrap();
        // Not ours: other names, and a link carrying our prefix (its target is never touched).
        std::fs::write(d.join("out.csv"), b"the previous output").unwrap();
        std::fs::write(d.join(".tmp-out.csv"), b"someone else's").unwrap();
        std::fs::write(d.join("target.txt"), b"keep me").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(d.join("target.txt"), name("link.csv.000000000000")).unwrap();
        assert_eq!(sweep_stale_temps(d), 1);
        assert!(!name("out.csv.AbCdEf123456").exists());
        assert!(name("other.csv.live00000000").exists());
        assert!(name("new.csv.fresh0000000").exists());
        assert_eq!(std::fs::read(d.join("out.csv")).unwrap(), b"the previous output");
        assert!(d.join(".tmp-out.csv").exists());
        assert_eq!(std::fs::read(d.join("target.txt")).unwrap(), b"keep me");
        #[cfg(unix)]
        assert!(std::fs::symlink_metadata(name("link.csv.000000000000")).is_ok());
        // Once its writer is gone, the live one's file goes too.
        drop(live);
        assert_eq!(sweep_stale_temps(d), 1);
        assert!(!name("other.csv.live00000000").exists());
    }

    #[test]
    fn writing_an_output_removes_the_temp_file_a_killed_write_left_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("predictions.csv");
        let stale = dir
            .path()
            .join(format!("{}predictions.csv.k1ll3dk1ll3d", crate::store::TEMP_PREFIX));
        std::fs::write(&stale, vec![b'x'; 4096]).unwrap();
        write_file(dir.path(), &out, b"a\n1\n").unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"a\n1\n");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, ["predictions.csv"]);
    }

    #[test]
    fn an_output_inside_the_store_is_refused_through_links_and_dot_dots() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let store = d.join("artifacts");
        std::fs::create_dir_all(store.join("v1")).unwrap();
        std::fs::write(store.join("ledger.sqlite"), b"ledger").unwrap();
        let refused = |path: &Path| refuse_inside_store(&store, path, "--output").is_err();
        assert!(refused(&store.join("ledger.sqlite")));
        assert!(refused(&store));
        assert!(refused(&store.join("v1/new/deeper/out.csv")));
        assert!(refused(&d.join("elsewhere/../artifacts/out.csv")));
        assert!(!refused(&d.join("out.csv")));
        assert!(!refused(&d.join("artifacts-2/out.csv")));
        #[cfg(unix)]
        {
            use std::os::unix::fs::symlink;
            // A folder link into the store, a file link to the ledger, a dangling link into the store.
            symlink(&store, d.join("link")).unwrap();
            assert!(refused(&d.join("link/ledger.sqlite")));
            symlink(store.join("ledger.sqlite"), d.join("out.sqlite")).unwrap();
            assert!(refused(&d.join("out.sqlite")));
            symlink(store.join("v1/not-yet.csv"), d.join("dangling.csv")).unwrap();
            assert!(refused(&d.join("dangling.csv")));
            // A store reached through a link is the same store.
            symlink(&store, d.join("store-link")).unwrap();
            assert!(refuse_inside_store(&d.join("store-link"), &store.join("x.csv"), "--output").is_err());
            // A loop of links is an error, not a hang.
            symlink(d.join("loop-b"), d.join("loop-a")).unwrap();
            symlink(d.join("loop-a"), d.join("loop-b")).unwrap();
            let err = refuse_inside_store(&store, &d.join("loop-a"), "--output").unwrap_err();
            assert!(
                err.to_string().ends_with("goes through more than 40 symbolic links"),
                "{err}"
            );
        }
        let err = refuse_inside_store(&store, &store.join("ledger.sqlite"), "--output").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "--output {} lies inside the store {}; mlpipe never writes an output there, as it would replace the store's own files",
                store.join("ledger.sqlite").display(),
                store.display()
            )
        );
        assert_eq!(
            err.hint().as_deref(),
            Some(
                format!(
                    "write it outside {}, the store's folder (e.g. in the project folder)",
                    store.display()
                )
                .as_str()
            )
        );
    }

    #[test]
    fn an_output_over_an_external_ledger_or_its_wal_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let store = d.join("artifacts");
        let ledger = d.join("ext/l.sqlite");
        std::fs::create_dir_all(d.join("ext")).unwrap();
        std::fs::write(&ledger, b"").unwrap();
        let url = format!("sqlite:{}", ledger.display());
        let err = refuse_over_ledger(&store, Some(&url), &ledger, "--output").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "--output {0} is the ledger {0}; mlpipe never writes an output over the ledger it records in, as \
                 that would destroy its entries",
                ledger.display()
            )
        );
        let wal = d.join("ext/l.sqlite-wal");
        assert!(refuse_over_ledger(&store, Some(&url), &wal, "--output").is_err());
        // Through a link, and as a SQLite output.
        std::os::unix::fs::symlink(&ledger, d.join("alias.db")).unwrap();
        let target = Target::parse(&format!("sqlite:{}", d.join("alias.db").display()), Some("preds"), None).unwrap();
        assert!(target.refuse_over_ledger(&store, Some(&url)).is_err());
        // The store's own ledger when no --ledger is given; another file is fine.
        assert!(refuse_over_ledger(&store, None, &store.join("ledger.sqlite-shm"), "--output").is_err());
        assert!(refuse_over_ledger(&store, Some(&url), &d.join("p.csv"), "--output").is_ok());
    }

    #[test]
    fn a_hard_link_to_the_ledger_is_refused_as_an_output() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let store = d.join("artifacts");
        std::fs::create_dir_all(&store).unwrap();
        let ledger = store.join("ledger.sqlite");
        std::fs::write(&ledger, b"").unwrap();
        std::fs::hard_link(&ledger, d.join("hard.db")).unwrap();
        let target = Target::parse(&format!("sqlite:{}", d.join("hard.db").display()), Some("preds"), None).unwrap();
        let err = target.refuse_over_ledger(&store, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "the SQLite output {} is the ledger {}; mlpipe never writes an output over the ledger it records in, \
                 as that would destroy its entries",
                d.join("hard.db").display(),
                ledger.display()
            )
        );
        // A copy is another file.
        std::fs::copy(&ledger, d.join("copy.db")).unwrap();
        assert!(refuse_over_ledger(&store, None, &d.join("copy.db"), "--output").is_ok());
    }
}
