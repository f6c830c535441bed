//! Batch input and output formats for `predict`: CSV, NDJSON and Parquet in; CSV, NDJSON, Parquet, a
//! SQLite table or a PostgreSQL table out. Each output row carries the input's id, the prediction, the
//! model id and the row's prediction id.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use serde_json::Value;

use crate::database::{self, Database};
use crate::error::{Error, Result};
use crate::frame::{Column, ColumnData, ColumnType, Frame};
use crate::scoring::{IdValue, Scorer};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Ndjson,
    Parquet,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Ndjson => "ndjson",
            Format::Parquet => "parquet",
        }
    }

    pub fn parse(name: &str) -> Result<Format> {
        match name {
            "csv" => Ok(Format::Csv),
            "ndjson" | "jsonl" => Ok(Format::Ndjson),
            "parquet" => Ok(Format::Parquet),
            other => Err(Error::data(format!("unknown format \"{other}\"")).with_hint("use csv, ndjson or parquet")),
        }
    }

    /// The format a file name implies, if any.
    pub fn of_path(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" | "txt" => Some(Format::Csv),
            "ndjson" | "jsonl" => Some(Format::Ndjson),
            "parquet" | "pq" => Some(Format::Parquet),
            _ => None,
        }
    }
}

/// Reads a batch input in `format` into a frame of the training schema's columns.
pub fn read_input(scorer: &Scorer, bytes: &[u8], format: Format, source: &str) -> Result<Frame> {
    match format {
        Format::Csv => scorer.read_csv(bytes, source),
        Format::Ndjson => read_ndjson(scorer, bytes, source),
        Format::Parquet => read_parquet(scorer, bytes, source),
    }
}

fn read_ndjson(scorer: &Scorer, bytes: &[u8], source: &str) -> Result<Frame> {
    let mut maps = Vec::new();
    let mut lines = Vec::new();
    for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
        let line = line.trim_ascii();
        if line.is_empty() {
            continue;
        }
        let number = i as u64 + 1;
        match serde_json::from_slice::<Value>(line) {
            Ok(Value::Object(map)) => maps.push(map),
            Ok(_) => {
                return Err(Error::data(format!("line {number} of {source} is not a JSON object"))
                    .with_hint("write one record per line, as {\"column\": value, …}"));
            }
            Err(e) => {
                return Err(Error::data(format!("line {number} of {source} is not valid JSON: {e}"))
                    .with_hint("write one JSON record per line"));
            }
        }
        lines.push(number);
    }
    let refs: Vec<_> = maps.iter().collect();
    let mut records = scorer.decode_records(&refs, source).map_err(|e| {
        let line = lines.get(e.record).copied().unwrap_or(0);
        let message = format!("line {line} of {source}: {}", e.error);
        let hint = e.error.hint();
        let mut err = Error::data(message);
        if let Some(h) = hint {
            err = err.with_hint(h);
        }
        match e.field() {
            Some(f) => err.for_column(f),
            None => err,
        }
    })?;
    records.frame.lines = lines;
    Ok(records.frame)
}

fn read_parquet(scorer: &Scorer, bytes: &[u8], source: &str) -> Result<Frame> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let bad = |e: &dyn std::fmt::Display| {
        Error::data(format!("{source} is not a readable Parquet file: {e}"))
            .with_hint("write it with a Parquet writer (pandas.to_parquet, polars, arrow)")
    };
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::copy_from_slice(bytes))
        .map_err(|e| bad(&e))?
        .with_batch_size(64 * 1024)
        .build()
        .map_err(|e| bad(&e))?;
    let wanted: Vec<&(String, ColumnType)> = scorer.schema.iter().collect();
    let mut columns: Vec<Column> = Vec::new();
    let mut rows = 0usize;
    for batch in reader {
        let batch = batch.map_err(|e| bad(&e))?;
        for (name, ty) in &wanted {
            let Some(array) = batch.column_by_name(name) else {
                continue;
            };
            let data = arrow_column(array.as_ref(), name, *ty, source, rows)?;
            match columns.iter_mut().find(|c| &c.name == name) {
                Some(col) => match (&mut col.data, data) {
                    (ColumnData::Numeric(a), ColumnData::Numeric(b)) => a.extend(b),
                    (ColumnData::Categorical(a), ColumnData::Categorical(b)) => a.extend(b),
                    _ => return Err(Error::internal("parquet column changed type between batches")),
                },
                None if rows == 0 => columns.push(Column {
                    name: name.clone(),
                    data,
                }),
                None => return Err(Error::internal("parquet column appeared mid-file")),
            }
        }
        rows += batch.num_rows();
    }
    Ok(Frame {
        columns,
        lines: (1..=rows as u64).collect(),
        source: source.to_string(),
        first_row: 0,
    })
}

/// One Arrow column as frame data of the training type (the fitted schema's, never guessed from the
/// values). A categorical column takes strings, integers (as a CSV file spells them) and floats that are
/// whole numbers (pandas writes an integer column with a missing value as floats); an all-null column is
/// all missing whatever its Arrow type. Anything else that does not fit is an error naming the column.
/// `first_row` is the batch's first row in the file (0-based), for messages.
fn arrow_column(array: &dyn Array, name: &str, ty: ColumnType, source: &str, first_row: usize) -> Result<ColumnData> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type};
    use arrow_array::types::{UInt8Type, UInt16Type, UInt32Type, UInt64Type};
    let n = array.len();
    let unsupported = || {
        Error::data(format!(
            "column \"{name}\" of {source} has Parquet type {}, but the model was trained on a {} column",
            array.data_type(),
            ty.name()
        ))
        .with_hint("write numbers as integers or floats and categories as strings")
        .for_column(name)
    };
    if array.null_count() == n || *array.data_type() == DataType::Null {
        // Text stays text for a numeric column (conform_to_schema parses it), so that every batch of
        // a file gives the same kind of data.
        let textual = matches!(
            array.data_type(),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(..)
        );
        return Ok(match ty {
            ColumnType::Numeric if !textual => ColumnData::Numeric(vec![f64::NAN; n]),
            ColumnType::Numeric | ColumnType::Categorical => ColumnData::Categorical(vec![None; n]),
        });
    }
    macro_rules! numbers {
        ($t:ty) => {{
            let a = array.as_primitive::<$t>();
            (0..n)
                .map(|i| if a.is_null(i) { f64::NAN } else { a.value(i) as f64 })
                .collect::<Vec<f64>>()
        }};
    }
    // Integers as text, exactly (not through f64, which rounds beyond 2^53).
    macro_rules! integer_texts {
        ($t:ty) => {{
            let a = array.as_primitive::<$t>();
            (0..n)
                .map(|i| (!a.is_null(i)).then(|| Arc::from(a.value(i).to_string().as_str())))
                .collect::<Vec<Option<Arc<str>>>>()
        }};
    }
    if ty == ColumnType::Categorical {
        let texts = match array.data_type() {
            DataType::Int8 => integer_texts!(Int8Type),
            DataType::Int16 => integer_texts!(Int16Type),
            DataType::Int32 => integer_texts!(Int32Type),
            DataType::Int64 => integer_texts!(Int64Type),
            DataType::UInt8 => integer_texts!(UInt8Type),
            DataType::UInt16 => integer_texts!(UInt16Type),
            DataType::UInt32 => integer_texts!(UInt32Type),
            DataType::UInt64 => integer_texts!(UInt64Type),
            #[allow(clippy::cast_lossless)]
            DataType::Float32 | DataType::Float64 => {
                let values = if *array.data_type() == DataType::Float32 {
                    numbers!(Float32Type)
                } else {
                    numbers!(Float64Type)
                };
                let mut texts = Vec::with_capacity(n);
                for (i, x) in values.iter().enumerate() {
                    if x.is_nan() {
                        texts.push(None);
                    } else if x.is_finite() && x.fract() == 0.0 && x.abs() < 9.0e15 {
                        #[allow(clippy::cast_possible_truncation)]
                        texts.push(Some(Arc::from((*x as i64).to_string().as_str())));
                    } else {
                        return Err(Error::data(format!(
                            "column \"{name}\" of {source} is categorical, but row {} holds the number {x}",
                            first_row + i + 1
                        ))
                        .with_hint("write categories as strings (or whole numbers), exactly as in the training data")
                        .for_column(name));
                    }
                }
                texts
            }
            _ => arrow_cast_to_strings(array).ok_or_else(unsupported)?,
        };
        return Ok(ColumnData::Categorical(texts));
    }
    #[allow(clippy::cast_lossless, clippy::cast_possible_truncation)]
    let numeric: Option<Vec<f64>> = match array.data_type() {
        DataType::Float64 => Some(numbers!(Float64Type)),
        DataType::Float32 => Some(numbers!(Float32Type)),
        DataType::Int8 => Some(numbers!(Int8Type)),
        DataType::Int16 => Some(numbers!(Int16Type)),
        DataType::Int32 => Some(numbers!(Int32Type)),
        DataType::Int64 => Some(numbers!(Int64Type)),
        DataType::UInt8 => Some(numbers!(UInt8Type)),
        DataType::UInt16 => Some(numbers!(UInt16Type)),
        DataType::UInt32 => Some(numbers!(UInt32Type)),
        DataType::UInt64 => Some(numbers!(UInt64Type)),
        DataType::Boolean => {
            let a = array.as_boolean();
            Some(
                (0..n)
                    .map(|i| {
                        if a.is_null(i) {
                            f64::NAN
                        } else {
                            f64::from(u8::from(a.value(i)))
                        }
                    })
                    .collect(),
            )
        }
        _ => None,
    };
    let Some(mut v) = numeric else {
        let strings = arrow_cast_to_strings(array).ok_or_else(unsupported)?;
        // A numeric training column may arrive as text; conform_to_schema parses it like CSV text.
        return Ok(ColumnData::Categorical(strings));
    };
    // An infinite float is not a number a model can take (CSV and JSON refuse it too).
    if let Some(i) = v.iter().position(|x| x.is_infinite()) {
        return Err(Error::data(format!(
            "column \"{name}\" of {source}: row {} holds {}, which is not a finite number",
            first_row + i + 1,
            v[i]
        ))
        .with_hint("write a finite number, or null for a missing value")
        .for_column(name));
    }
    // Every NaN is a missing value, as in a CSV file.
    for x in &mut v {
        if x.is_nan() {
            *x = f64::NAN;
        }
    }
    Ok(ColumnData::Numeric(v))
}

fn arrow_cast_to_strings(array: &dyn Array) -> Option<Vec<Option<Arc<str>>>> {
    use arrow_array::cast::AsArray;
    let n = array.len();
    match array.data_type() {
        DataType::Utf8 => {
            let a = array.as_string::<i32>();
            Some((0..n).map(|i| (!a.is_null(i)).then(|| Arc::from(a.value(i)))).collect())
        }
        DataType::LargeUtf8 => {
            let a = array.as_string::<i64>();
            Some((0..n).map(|i| (!a.is_null(i)).then(|| Arc::from(a.value(i)))).collect())
        }
        DataType::Utf8View => {
            let a = array.as_string_view();
            Some((0..n).map(|i| (!a.is_null(i)).then(|| Arc::from(a.value(i)))).collect())
        }
        DataType::Dictionary(_, value) if value.as_ref() == &DataType::Utf8 => {
            let cast = arrow_select_take_dictionary(array)?;
            Some(cast)
        }
        _ => None,
    }
}

fn arrow_select_take_dictionary(array: &dyn Array) -> Option<Vec<Option<Arc<str>>>> {
    use arrow_array::cast::AsArray;
    let dict = array.as_any_dictionary_opt()?;
    let values = dict.values().as_string_opt::<i32>()?;
    let keys = dict.normalized_keys();
    Some(
        keys.iter()
            .enumerate()
            .map(|(i, k)| (!array.is_null(i)).then(|| Arc::from(values.value(*k))))
            .collect(),
    )
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
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = ledger_path.as_os_str().to_os_string();
        name.push(suffix);
        if resolve(Path::new(&name))? == resolved {
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

    pub fn to_parquet(&self) -> Result<Vec<u8>> {
        use parquet::arrow::ArrowWriter;
        use parquet::basic::Compression;
        use parquet::file::properties::WriterProperties;
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
        let batch = RecordBatch::try_new(schema.clone(), arrays).map_err(|e| Error::internal(e.to_string()))?;
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
pub fn write_output(target: &Target, rows: &OutputRows<'_>) -> Result<usize> {
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
            use std::io::Write;
            let bytes = encode(rows, *format)?;
            let mut out = std::io::stdout().lock();
            out.write_all(&bytes)
                .and_then(|()| out.flush())
                .map_err(|e| Error::io("write to", "standard output", e))?;
            Ok(rows.len())
        }
        Target::Table { database, table } => database::write_predictions(database, table, rows),
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
    fn parquet_columns_take_the_fitted_type_whatever_their_arrow_type() {
        use arrow_array::{Float64Array, NullArray};
        let text = |v: &[Option<&str>]| ColumnData::Categorical(v.iter().map(|x| x.map(Arc::from)).collect());
        // All missing: a null-typed column, or floats that are all null, is all missing for either type.
        let nulls = NullArray::new(2);
        assert_eq!(
            arrow_column(&nulls, "Alley", ColumnType::Categorical, "t.parquet", 0).unwrap(),
            text(&[None, None])
        );
        let floats = Float64Array::from(vec![None, None]);
        assert_eq!(
            arrow_column(&floats, "Alley", ColumnType::Categorical, "t.parquet", 0).unwrap(),
            text(&[None, None])
        );
        assert!(matches!(
            arrow_column(&nulls, "x", ColumnType::Numeric, "t.parquet", 0).unwrap(),
            ColumnData::Numeric(v) if v.iter().all(|x| x.is_nan())
        ));
        // Whole floats are category codes; integers are written exactly, beyond 2^53 too.
        let codes = Float64Array::from(vec![Some(20.0), None, Some(-3.0)]);
        assert_eq!(
            arrow_column(&codes, "MSSubClass", ColumnType::Categorical, "t.parquet", 0).unwrap(),
            text(&[Some("20"), None, Some("-3")])
        );
        let big = Int64Array::from(vec![9_007_199_254_740_993]);
        assert_eq!(
            arrow_column(&big, "code", ColumnType::Categorical, "t.parquet", 0).unwrap(),
            text(&[Some("9007199254740993")])
        );
        // An infinite number is refused, naming the row (counted across batches).
        let inf = Float64Array::from(vec![1.0, f64::INFINITY]);
        let err = arrow_column(&inf, "LotArea", ColumnType::Numeric, "t.parquet", 10).unwrap_err();
        assert_eq!(
            err.to_string(),
            "column \"LotArea\" of t.parquet: row 12 holds inf, which is not a finite number"
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
}
