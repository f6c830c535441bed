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
            let data = arrow_column(array.as_ref(), name, *ty, source)?;
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

/// One Arrow column as frame data of the training type. Integers become text for a categorical column
/// (as a CSV file would spell them); anything else that does not fit is an error naming the column.
fn arrow_column(array: &dyn Array, name: &str, ty: ColumnType, source: &str) -> Result<ColumnData> {
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
    macro_rules! numbers {
        ($t:ty) => {{
            let a = array.as_primitive::<$t>();
            (0..n)
                .map(|i| if a.is_null(i) { f64::NAN } else { a.value(i) as f64 })
                .collect::<Vec<f64>>()
        }};
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
    let integral = matches!(
        array.data_type(),
        DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
    );
    match (ty, numeric) {
        (ColumnType::Numeric, Some(v)) => Ok(ColumnData::Numeric(v)),
        (ColumnType::Categorical, Some(v)) if integral => Ok(ColumnData::Categorical(
            v.iter()
                .map(|x| (!x.is_nan()).then(|| Arc::from(format!("{x}").as_str())))
                .collect(),
        )),
        (_, Some(_)) => Err(unsupported()),
        (_, None) => {
            let strings = arrow_cast_to_strings(array).ok_or_else(unsupported)?;
            // A numeric training column may arrive as text; conform_to_schema parses it like CSV text.
            Ok(ColumnData::Categorical(strings))
        }
    }
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
            crate::store::write_atomic(dir, path, &bytes)?;
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

fn encode(rows: &OutputRows<'_>, format: Format) -> Result<Vec<u8>> {
    match format {
        Format::Csv => rows.to_csv(),
        Format::Ndjson => rows.to_ndjson(),
        Format::Parquet => rows.to_parquet(),
    }
}
