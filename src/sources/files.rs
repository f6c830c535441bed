//! Gathering from data files that carry types: Parquet, Arrow IPC and NDJSON, turned into the same
//! canonical CSV a database result becomes (the parent module's rules), so that the snapshot is a
//! function of the rows alone — not of row groups, batches, dictionary pages, compression or the writer.
//!
//! Rows keep the file's order (a file has one, unlike a table in a database). Only the `[gather]
//! columns` are read (Parquet and IPC skip the others' pages), in file order. Values are written as
//! for a database: integers in decimal, floats in their shortest round-trip form (a `Float32` through its
//! exact `f64` value), NaN and null as the missing-value marker, booleans as `true`/`false`, dates as
//! `YYYY-MM-DD`, timestamps as RFC 3339 in UTC with microseconds (finer units floored), decimals in
//! their scale's digits, dictionary-coded text as its text. Types a row cannot hold (lists, structs,
//! binary, durations, …) are refused by column name. A CSV file of the same rows written in this form
//! has the same snapshot id.

use std::fmt::Write as _;
use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Date64Type, Decimal128Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type,
    UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, Schema, TimeUnit};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::push_field;
use crate::error::{Error, Result};

/// How a data file is written; `[gather] format`, or named by the file's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    #[default]
    Csv,
    Parquet,
    /// Arrow IPC, file (Feather v2) or stream format.
    Ipc,
    /// One JSON object per line.
    Ndjson,
}

impl FileFormat {
    pub const NAMES: [&'static str; 4] = ["csv", "parquet", "ipc", "ndjson"];

    pub fn name(self) -> &'static str {
        match self {
            FileFormat::Csv => "csv",
            FileFormat::Parquet => "parquet",
            FileFormat::Ipc => "ipc",
            FileFormat::Ndjson => "ndjson",
        }
    }

    pub fn from_name(name: &str) -> Option<FileFormat> {
        match name {
            "csv" => Some(FileFormat::Csv),
            "parquet" => Some(FileFormat::Parquet),
            "ipc" => Some(FileFormat::Ipc),
            "ndjson" => Some(FileFormat::Ndjson),
            _ => None,
        }
    }

    pub fn is_csv(&self) -> bool {
        *self == FileFormat::Csv
    }

    /// The format a file's extension names: `.parquet`/`.pq`, `.arrow`/`.ipc`/`.feather`/`.arrows`,
    /// `.ndjson`/`.jsonl`; every other file is read as CSV (`.csv`, `.tsv`, `.txt`, …). A `.json` file is
    /// refused: mlpipe cannot tell one object per line from one document.
    pub fn of_path(path: &Path) -> std::result::Result<FileFormat, String> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        Ok(match ext.as_str() {
            "parquet" | "pq" => FileFormat::Parquet,
            "arrow" | "ipc" | "feather" | "arrows" => FileFormat::Ipc,
            "ndjson" | "jsonl" => FileFormat::Ndjson,
            "json" => {
                return Err(format!(
                    "{} ends in .json; mlpipe reads JSON as NDJSON, one object per line",
                    path.display()
                ));
            }
            _ => FileFormat::Csv,
        })
    }
}

/// The canonical CSV of a Parquet, Arrow IPC or NDJSON file's rows: only `columns` (all when empty), a
/// missing value written as `na`. `source` names the file in messages.
pub fn canonical_csv(
    bytes: Vec<u8>,
    format: FileFormat,
    columns: &[String],
    na: &str,
    source: &str,
) -> Result<Vec<u8>> {
    if na.contains([',', '"', '\n', '\r']) {
        return Err(Error::data(format!(
            "the missing-value marker {na:?} cannot be written into a CSV snapshot: it holds a comma, quote or line break"
        ))
        .with_hint("choose a marker such as NA (the first of [gather] na_values, or --na)"));
    }
    // Compressed files expand: the snapshot may take no more memory than a CSV file that passes the
    // memory check would.
    let mut out = CsvOut {
        text: String::with_capacity(bytes.len()),
        na,
        source,
        rows: 0,
        limit: crate::resources::decoded_limit(),
    };
    check_magic(&bytes, format, source)?;
    match format {
        FileFormat::Csv => return Err(Error::internal("canonical_csv of a CSV file")),
        FileFormat::Parquet => decoding(source, "Parquet", || read_parquet(bytes, columns, &mut out))?,
        FileFormat::Ipc => decoding(source, "Arrow IPC", || read_ipc(&bytes, columns, &mut out))?,
        FileFormat::Ndjson => read_ndjson(&bytes, columns, &mut out)?,
    }
    Ok(out.text.into_bytes())
}

/// A Parquet file read as IPC, or the other way round (a renamed file): said plainly, not as a corrupt
/// footer.
pub(super) fn check_magic(bytes: &[u8], format: FileFormat, source: &str) -> Result<()> {
    let actual = if bytes.starts_with(b"PAR1") {
        FileFormat::Parquet
    } else if bytes.starts_with(b"ARROW1") || bytes.starts_with(&[0xff; 4]) {
        FileFormat::Ipc
    } else {
        return Ok(());
    };
    if actual == format {
        return Ok(());
    }
    Err(Error::data(format!(
        "{source} is read as {}, but it is an {} file",
        format.name(),
        if actual == FileFormat::Parquet {
            "Apache Parquet"
        } else {
            "Arrow IPC"
        }
    ))
    .with_hint(format!(
        "set format = \"{}\" in [gather] (or --format {0}), or give the file the extension of what it holds",
        actual.name()
    )))
}

/// Runs a decoder of a foreign file format: a damaged file that makes the decoder panic (the parquet and
/// arrow crates assert on some corruptions) is an error naming the file, not a crash.
pub fn decoding<T>(source: &str, format: &str, decode: impl FnOnce() -> Result<T>) -> Result<T> {
    // The panic hook is process-wide: two decodes at once (threads of a library user) must not swap it
    // in an order that leaves the silent one installed.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(decode));
    std::panic::set_hook(previous);
    result.unwrap_or_else(|_| {
        Err(Error::data(format!(
            "{source} is not a readable {format} file: its decoder failed on damaged data"
        ))
        .with_hint("write the file again from its source and check it is complete"))
    })
}

/// Decodes every column of a Parquet or Arrow IPC file into `out`, batch by batch (a fitted pipeline's
/// reader keeps the columns it was trained on). A file of the other format is refused by name.
pub fn decode_batches(bytes: Vec<u8>, format: FileFormat, out: &mut dyn Rows) -> Result<()> {
    let source = out.source().to_string();
    check_magic(&bytes, format, &source)?;
    match format {
        FileFormat::Parquet => decoding(&source, "Parquet", || read_parquet(bytes, &[], out)),
        FileFormat::Ipc => decoding(&source, "Arrow IPC", || read_ipc(&bytes, &[], out)),
        other => Err(Error::internal(format!("decode_batches on {}", other.name()))),
    }
}

/// Where decoded rows go: the canonical CSV text, or (for a run that already knows the snapshot id)
/// straight into a frame.
pub trait Rows {
    fn source(&self) -> &str;
    /// The most bytes the result may take.
    fn limit(&self) -> usize;
    fn header(&mut self, names: &[&str]);
    fn batch(&mut self, batch: &RecordBatch) -> Result<()>;
    /// Whether Parquet text columns should arrive dictionary-coded (as the file stores them) rather
    /// than as one string per row.
    fn dictionary_text(&self) -> bool {
        false
    }
}

struct CsvOut<'a> {
    text: String,
    na: &'a str,
    source: &'a str,
    /// Rows written so far (for "row N" in messages, 1-based there).
    rows: u64,
    /// The most bytes the snapshot may take.
    limit: usize,
}

impl CsvOut<'_> {
    fn check_size(&self) -> Result<()> {
        if self.text.len() <= self.limit {
            return Ok(());
        }
        Err(too_big(self.source))
    }
}

impl Rows for CsvOut<'_> {
    fn source(&self) -> &str {
        self.source
    }

    fn limit(&self) -> usize {
        self.limit
    }

    fn header(&mut self, names: &[&str]) {
        for (i, name) in names.iter().enumerate() {
            if i > 0 {
                self.text.push(',');
            }
            push_field(&mut self.text, name);
        }
        self.text.push('\n');
    }

    fn batch(&mut self, batch: &RecordBatch) -> Result<()> {
        let schema = batch.schema();
        let columns: Vec<Renderer<'_>> = batch
            .columns()
            .iter()
            .zip(schema.fields())
            .map(|(array, field)| Renderer::new(array.as_ref(), field.name(), self.source))
            .collect::<Result<_>>()?;
        for i in 0..batch.num_rows() {
            for (c, column) in columns.iter().enumerate() {
                if c > 0 {
                    self.text.push(',');
                }
                column.render(i, &mut self.text, self.na).map_err(|problem| {
                    Error::data(format!(
                        "column \"{}\" of {}: row {} {problem}",
                        column.name,
                        self.source,
                        self.rows + i as u64 + 1
                    ))
                    .with_hint("write a finite number, a date between years 0 and 9999, or null for a missing value")
                    .for_column(column.name)
                })?;
            }
            self.text.push('\n');
            if self.text.len() > self.limit {
                return self.check_size();
            }
        }
        self.rows += batch.num_rows() as u64;
        Ok(())
    }
}

fn too_big(source: &str) -> Error {
    Error::data(format!(
        "{source} expands to more rows than mlpipe can hold in the memory available"
    ))
    .with_hint("keep only the columns the pipeline needs ([gather] columns), use fewer rows, or run with more memory")
}

/// The columns to read, by index into the file's columns, in file order; every name checked.
fn projection(names: &[&str], columns: &[String], source: &str) -> Result<Vec<usize>> {
    let mut seen = std::collections::BTreeSet::new();
    for name in names {
        if name.is_empty() {
            return Err(Error::data(format!("{source} has a column without a name"))
                .with_hint("name every column when writing the file"));
        }
        if !seen.insert(*name) && (columns.is_empty() || columns.iter().any(|c| c == name)) {
            return Err(Error::data(format!("{source} has two columns named \"{name}\""))
                .with_hint("rename one when writing the file")
                .for_column(name));
        }
    }
    for wanted in columns {
        if !names.contains(&wanted.as_str()) {
            let mut err =
                Error::data(format!("column \"{wanted}\" of [gather] columns is not in {source}")).for_column(wanted);
            if let Some(h) = crate::error::did_you_mean(wanted, names.iter().copied()) {
                err = err.with_hint(h);
            }
            return Err(err);
        }
    }
    let keep: Vec<usize> = (0..names.len())
        .filter(|&i| columns.is_empty() || columns.iter().any(|c| c == names[i]))
        .collect();
    if keep.len() > crate::frame::MAX_COLUMNS {
        return Err(Error::data(format!(
            "{source} has {} columns; mlpipe reads at most {}",
            keep.len(),
            crate::frame::MAX_COLUMNS
        ))
        .with_hint("name the columns the pipeline needs in [gather] columns"));
    }
    if keep.is_empty() {
        return Err(Error::data(format!("{source} has no columns")).with_hint("gather a file that holds the data"));
    }
    Ok(keep)
}

fn field_names(schema: &Schema) -> Vec<&str> {
    schema.fields().iter().map(|f| f.name().as_str()).collect()
}

pub(super) fn read_parquet(bytes: Vec<u8>, columns: &[String], out: &mut dyn Rows) -> Result<()> {
    use parquet::arrow::ProjectionMask;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let source = out.source().to_string();
    let source = source.as_str();
    let bad = |e: &dyn std::fmt::Display| {
        Error::data(format!("{source} is not a readable Parquet file: {e}")).with_hint(
            "write it with a Parquet writer (pandas.to_parquet, polars, pyarrow, Spark) and check it is complete",
        )
    };
    let bytes = bytes::Bytes::from(bytes);
    let mut builder = ParquetRecordBatchReaderBuilder::try_new(bytes.clone()).map_err(|e| bad(&e))?;
    if out.dictionary_text() {
        let fields: Vec<arrow_schema::Field> = builder
            .schema()
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => f.as_ref().clone().with_data_type(
                    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
                ),
                _ => f.as_ref().clone(),
            })
            .collect();
        let options = parquet::arrow::arrow_reader::ArrowReaderOptions::new()
            .with_schema(std::sync::Arc::new(Schema::new(fields)));
        builder = ParquetRecordBatchReaderBuilder::try_new_with_options(bytes, options).map_err(|e| bad(&e))?;
    }
    let schema = builder.schema().clone();
    let names = field_names(&schema);
    let keep = projection(&names, columns, source)?;
    // Every cell takes at least its separator: a file whose rows cannot fit is refused before decoding.
    let rows = u64::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0);
    if rows.saturating_mul(keep.len() as u64) > out.limit() as u64 {
        return Err(too_big(source));
    }
    let kept: Vec<&str> = keep.iter().map(|&i| names[i]).collect();
    let mask = ProjectionMask::roots(builder.parquet_schema(), keep.iter().copied());
    let reader = builder
        .with_projection(mask)
        .with_batch_size(64 * 1024)
        .build()
        .map_err(|e| bad(&e))?;
    out.header(&kept);
    for batch in reader {
        out.batch(&batch.map_err(|e| bad(&e))?)?;
    }
    Ok(())
}

pub(super) fn read_ipc(bytes: &[u8], columns: &[String], out: &mut dyn Rows) -> Result<()> {
    use arrow_ipc::reader::{FileReader, StreamReader};
    use std::io::Cursor;
    let source = out.source().to_string();
    let source = source.as_str();
    let bad = |e: &dyn std::fmt::Display| {
        Error::data(format!("{source} is not a readable Arrow IPC file: {e}"))
            .with_hint("write it with an Arrow IPC writer (pyarrow.feather, polars write_ipc) and check it is complete")
    };
    // arrow-ipc allocates what a compressed buffer declares before decompressing it (an abort, not an
    // error, when that is absurd): look at every declaration first.
    check_ipc_declarations(bytes, out.limit()).map_err(|what| {
        Error::data(format!("{source} is not a readable Arrow IPC file: {what}"))
            .with_hint("write it again with an Arrow IPC writer and check it is complete")
    })?;
    // The file format opens with "ARROW1"; anything else is tried as the stream format.
    if bytes.starts_with(b"ARROW1") {
        let schema = FileReader::try_new(Cursor::new(bytes), None)
            .map_err(|e| bad(&e))?
            .schema();
        let names = field_names(&schema);
        let keep = projection(&names, columns, source)?;
        out.header(&keep.iter().map(|&i| names[i]).collect::<Vec<_>>());
        for batch in FileReader::try_new(Cursor::new(bytes), Some(keep)).map_err(|e| bad(&e))? {
            out.batch(&batch.map_err(|e| bad(&e))?)?;
        }
    } else {
        let schema = StreamReader::try_new(Cursor::new(bytes), None)
            .map_err(|e| bad(&e))?
            .schema();
        let names = field_names(&schema);
        let keep = projection(&names, columns, source)?;
        out.header(&keep.iter().map(|&i| names[i]).collect::<Vec<_>>());
        for batch in StreamReader::try_new(Cursor::new(bytes), Some(keep)).map_err(|e| bad(&e))? {
            out.batch(&batch.map_err(|e| bad(&e))?)?;
        }
    }
    Ok(())
}

/// A value a snapshot cannot hold: its row (0-based) and what is wrong ("holds a date in the year -1").
pub type BadCell = (usize, String);

/// Every cell of a column as a snapshot writes it (`None` when missing), for reading typed input the
/// way gathering reads it; `None` for a type a snapshot cannot hold, `Err` with the row (0-based) and
/// what is wrong for a value it cannot write.
pub fn column_texts(array: &dyn Array) -> Option<std::result::Result<Vec<Option<String>>, BadCell>> {
    let write = writer(array, false)?;
    let mut texts = Vec::with_capacity(array.len());
    for i in 0..array.len() {
        let mut text = String::new();
        let present = !array.is_null(i)
            && match write(i, &mut text) {
                Ok(present) => present,
                Err(problem) => return Some(Err((i, problem))),
            };
        // An empty text is missing, as an empty CSV field is.
        texts.push((present && !text.is_empty()).then_some(text));
    }
    Some(Ok(texts))
}

/// Refuses an IPC file whose record or dictionary batches declare more rows, or compressed buffers more
/// bytes, than `limit`. Messages are found through the footer (file format) and one after another (both
/// formats); what cannot be parsed here is left to the reader, which reports it.
fn check_ipc_declarations(bytes: &[u8], limit: usize) -> std::result::Result<(), String> {
    let i32_at = |at: usize| -> Option<usize> {
        let b: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
        usize::try_from(i32::from_le_bytes(b)).ok()
    };
    // A message at `at`: (flatbuffer, where its body starts).
    let message_at = |at: usize| -> Option<(arrow_ipc::Message<'_>, usize)> {
        let (len, start) = if bytes.get(at..at + 4)? == [0xff; 4] {
            (i32_at(at + 4)?, at + 8)
        } else {
            (i32_at(at)?, at + 4)
        };
        let end = start.checked_add(len)?;
        let message = arrow_ipc::root_as_message(bytes.get(start..end)?).ok()?;
        Some((message, end))
    };
    let check = |message: &arrow_ipc::Message<'_>, body: usize| -> std::result::Result<(), String> {
        let batch = message
            .header_as_record_batch()
            .or_else(|| message.header_as_dictionary_batch().and_then(|d| d.data()));
        let Some(batch) = batch else { return Ok(()) };
        if usize::try_from(batch.length()).map_or(true, |rows| rows > limit) {
            return Err(format!("a batch declares {} rows", batch.length()));
        }
        if batch.compression().is_none() {
            return Ok(());
        }
        for buffer in batch.buffers().into_iter().flatten() {
            let Some(at) = usize::try_from(buffer.offset()).ok().and_then(|o| o.checked_add(body)) else {
                continue;
            };
            let Some(prefix) = bytes
                .get(at..at.saturating_add(8))
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
            else {
                continue;
            };
            // -1 marks a buffer stored uncompressed.
            let declared = i64::from_le_bytes(prefix);
            if declared > 0 && usize::try_from(declared).map_or(true, |n| n > limit) {
                return Err(format!("a compressed buffer declares {declared} bytes"));
            }
        }
        Ok(())
    };
    let mut seen = std::collections::BTreeSet::new();
    let footer = (bytes.starts_with(b"ARROW1") && bytes.len() >= 16)
        .then(|| {
            let end = bytes.len() - 10;
            let start = end.checked_sub(i32_at(end)?)?;
            arrow_ipc::root_as_footer(bytes.get(start..end)?).ok()
        })
        .flatten();
    if let Some(footer) = footer {
        let blocks = footer.recordBatches().into_iter().flatten();
        for block in blocks.chain(footer.dictionaries().into_iter().flatten()) {
            let (Ok(at), Ok(meta)) = (usize::try_from(block.offset()), usize::try_from(block.metaDataLength())) else {
                continue;
            };
            if let Some((message, _)) = message_at(at) {
                check(&message, at.saturating_add(meta))?;
                seen.insert(at);
            }
        }
    }
    // Messages one after another: from byte 8 in the file format, byte 0 in the stream format.
    let mut at = if bytes.starts_with(b"ARROW1") { 8 } else { 0 };
    while let Some((message, body)) = message_at(at) {
        if !seen.contains(&at) {
            check(&message, body)?;
        }
        let Some(next) = usize::try_from(message.bodyLength())
            .ok()
            .and_then(|n| body.checked_add(n))
        else {
            break;
        };
        at = next;
    }
    Ok(())
}

/// One column of a batch, ready to write cell by cell (its type looked at once).
struct Renderer<'a> {
    name: &'a str,
    array: &'a dyn Array,
    write: Write<'a>,
}

/// How a column's present values are written: `Ok(false)` when the value is missing after all (a float
/// NaN), `Err` saying what is wrong with it ("holds inf").
type Write<'a> = Box<dyn Fn(usize, &mut String) -> std::result::Result<bool, String> + 'a>;

impl<'a> Renderer<'a> {
    fn new(array: &'a dyn Array, name: &'a str, source: &str) -> Result<Renderer<'a>> {
        let write = writer(array, true).ok_or_else(|| {
            Error::data(format!(
                "column \"{name}\" of {source} has type {}, which a snapshot cannot hold",
                array.data_type()
            ))
            .with_hint(
                "leave it out with [gather] columns = [...], or write it as numbers, text, booleans, dates or timestamps",
            )
            .for_column(name)
        })?;
        Ok(Renderer { name, array, write })
    }

    fn render(&self, i: usize, out: &mut String, na: &str) -> std::result::Result<(), String> {
        if self.array.is_null(i) {
            out.push_str(na);
            return Ok(());
        }
        if !(self.write)(i, out)? {
            out.push_str(na);
        }
        Ok(())
    }
}

/// The writer of a column's present values, or `None` for a type a snapshot cannot hold. `quote`: text
/// as a CSV field (quoted where needed) rather than as is.
#[allow(clippy::too_many_lines)]
fn writer(array: &dyn Array, quote: bool) -> Option<Write<'_>> {
    let text = move |out: &mut String, value: &str| {
        if quote {
            push_field(out, value);
        } else {
            out.push_str(value);
        }
    };
    macro_rules! integers {
        ($t:ty) => {{
            let a = array.as_primitive::<$t>();
            Box::new(move |i, out: &mut String| {
                let _ = write!(out, "{}", a.value(i));
                Ok(true)
            })
        }};
    }
    Some(match array.data_type() {
        DataType::Null => Box::new(|_, _| Ok(false)),
        DataType::Boolean => {
            let a = array.as_boolean();
            Box::new(move |i, out| {
                out.push_str(if a.value(i) { "true" } else { "false" });
                Ok(true)
            })
        }
        DataType::Int8 => integers!(Int8Type),
        DataType::Int16 => integers!(Int16Type),
        DataType::Int32 => integers!(Int32Type),
        DataType::Int64 => integers!(Int64Type),
        DataType::UInt8 => integers!(UInt8Type),
        DataType::UInt16 => integers!(UInt16Type),
        DataType::UInt32 => integers!(UInt32Type),
        DataType::UInt64 => integers!(UInt64Type),
        DataType::Float32 => {
            let a = array.as_primitive::<Float32Type>();
            Box::new(move |i, out| float(f64::from(a.value(i)), out))
        }
        DataType::Float64 => {
            let a = array.as_primitive::<Float64Type>();
            Box::new(move |i, out| float(a.value(i), out))
        }
        DataType::Utf8 => {
            let a = array.as_string::<i32>();
            Box::new(move |i, out| {
                text(out, a.value(i));
                Ok(true)
            })
        }
        DataType::LargeUtf8 => {
            let a = array.as_string::<i64>();
            Box::new(move |i, out| {
                text(out, a.value(i));
                Ok(true)
            })
        }
        DataType::Utf8View => {
            let a = array.as_string_view();
            Box::new(move |i, out| {
                text(out, a.value(i));
                Ok(true)
            })
        }
        DataType::Dictionary(..) => {
            let dict = array.as_any_dictionary_opt()?;
            let values = dict.values().as_ref();
            let inner = writer(values, quote)?;
            let keys = dict.normalized_keys();
            Box::new(move |i, out| {
                let k = keys[i];
                if values.is_null(k) {
                    return Ok(false);
                }
                inner(k, out)
            })
        }
        DataType::Date32 => {
            let a = array.as_primitive::<Date32Type>();
            Box::new(move |i, out| date(i64::from(a.value(i)), out))
        }
        DataType::Date64 => {
            let a = array.as_primitive::<Date64Type>();
            Box::new(move |i, out| date(a.value(i).div_euclid(86_400_000), out))
        }
        DataType::Timestamp(unit, _) => {
            let per_micro: i64 = match unit {
                TimeUnit::Second => -1_000_000,
                TimeUnit::Millisecond => -1_000,
                TimeUnit::Microsecond => 1,
                TimeUnit::Nanosecond => 1_000,
            };
            let raw = timestamp_values(array)?;
            Box::new(move |i, out| {
                let v = raw[i];
                let micros = if per_micro < 0 {
                    v.checked_mul(-per_micro).ok_or("holds a timestamp out of range")?
                } else {
                    v.div_euclid(per_micro)
                };
                timestamp(micros, out)
            })
        }
        DataType::Decimal128(_, scale) => {
            let a = array.as_primitive::<Decimal128Type>();
            let scale = *scale;
            Box::new(move |i, out| {
                decimal(a.value(i), scale, out);
                Ok(true)
            })
        }
        _ => return None,
    })
}

/// The i64 counts of a timestamp column of any unit.
fn timestamp_values(array: &dyn Array) -> Option<&[i64]> {
    use arrow_array::types::{
        TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
    };
    if let Some(a) = array.as_primitive_opt::<TimestampSecondType>() {
        return Some(a.values());
    }
    if let Some(a) = array.as_primitive_opt::<TimestampMillisecondType>() {
        return Some(a.values());
    }
    if let Some(a) = array.as_primitive_opt::<TimestampMicrosecondType>() {
        return Some(a.values());
    }
    array
        .as_primitive_opt::<TimestampNanosecondType>()
        .map(|a| &a.values()[..])
}

/// A float in its shortest round-trip form; NaN is missing.
fn float(x: f64, out: &mut String) -> std::result::Result<bool, String> {
    if x.is_nan() {
        return Ok(false);
    }
    if x.is_infinite() {
        return Err(format!("holds {x}, which is not a finite number"));
    }
    let _ = write!(out, "{x}");
    Ok(true)
}

fn decimal(v: i128, scale: i8, out: &mut String) {
    if scale <= 0 {
        let _ = write!(out, "{v}");
        for _ in 0..scale.unsigned_abs() {
            out.push('0');
        }
        return;
    }
    let digits = v.unsigned_abs().to_string();
    let scale = usize::from(scale.unsigned_abs());
    if v < 0 {
        out.push('-');
    }
    if digits.len() <= scale {
        out.push_str("0.");
        for _ in digits.len()..scale {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        let (whole, fraction) = digits.split_at(digits.len() - scale);
        out.push_str(whole);
        out.push('.');
        out.push_str(fraction);
    }
}

/// Year, month and day of a day count since 1970-01-01 (the proleptic Gregorian calendar).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    (year, month as u32, day as u32)
}

fn date(days: i64, out: &mut String) -> std::result::Result<bool, String> {
    let (y, m, d) = civil(days);
    if !(0..=9999).contains(&y) {
        return Err(format!("holds a date in the year {y}"));
    }
    let _ = write!(out, "{y:04}-{m:02}-{d:02}");
    Ok(true)
}

fn timestamp(micros: i64, out: &mut String) -> std::result::Result<bool, String> {
    const DAY: i64 = 86_400_000_000;
    date(micros.div_euclid(DAY), out)?;
    let of_day = micros.rem_euclid(DAY);
    let (s, us) = (of_day / 1_000_000, of_day % 1_000_000);
    let _ = write!(out, "T{:02}:{:02}:{:02}.{us:06}Z", s / 3600, s / 60 % 60, s % 60);
    Ok(true)
}

/// One NDJSON record: its keys in written order (a repeated key is an error, not "last one wins").
struct Record(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Record {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Record, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Record;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(self, mut map: M) -> std::result::Result<Record, M::Error> {
                let mut entries: Vec<(String, Value)> = Vec::new();
                let mut seen = std::collections::BTreeSet::new();
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    if !seen.insert(k.clone()) {
                        return Err(serde::de::Error::custom(format!("the key \"{k}\" appears twice")));
                    }
                    entries.push((k, v));
                }
                Ok(Record(entries))
            }
        }
        d.deserialize_map(Visit)
    }
}

fn read_ndjson(bytes: &[u8], columns: &[String], out: &mut CsvOut<'_>) -> Result<()> {
    let source = out.source;
    let mut records: Vec<(usize, Record)> = Vec::new();
    // A byte-order mark (some Windows tools write one) is not part of the first record.
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
        let line = line.trim_ascii();
        if line.is_empty() {
            continue;
        }
        let record = serde_json::from_slice::<Record>(line).map_err(|e| {
            // serde's position is within the line: say the line of the file and the column in it.
            let text = e.to_string();
            let what = text.split(" at line ").next().unwrap_or(&text);
            Error::data(format!("line {} of {source}, column {}: {what}", i + 1, e.column()))
                .with_hint("write one JSON object per line, as {\"column\": value, …}, each key once")
        })?;
        records.push((i + 1, record));
    }
    // Columns in the order their keys first appear; a record without a key has it missing.
    let mut names: Vec<&str> = Vec::new();
    let mut index = std::collections::BTreeMap::new();
    for (_, Record(entries)) in &records {
        for (k, _) in entries {
            if !index.contains_key(k.as_str()) {
                index.insert(k.as_str(), names.len());
                names.push(k.as_str());
            }
        }
    }
    if records.is_empty() {
        return Err(Error::data(format!("{source} holds no records")).with_hint("write one JSON object per line"));
    }
    let keep = projection(&names, columns, source)?;
    out.header(&keep.iter().map(|&i| names[i]).collect::<Vec<_>>());
    let mut row: Vec<Option<&Value>> = vec![None; names.len()];
    for (line, Record(entries)) in &records {
        row.fill(None);
        for (k, v) in entries {
            row[index[k.as_str()]] = Some(v);
        }
        for (n, &c) in keep.iter().enumerate() {
            if n > 0 {
                out.text.push(',');
            }
            let text = &mut out.text;
            match row[c] {
                None | Some(Value::Null) => text.push_str(out.na),
                Some(Value::Bool(b)) => text.push_str(if *b { "true" } else { "false" }),
                Some(Value::Number(x)) => {
                    if let Some(i) = x.as_i64() {
                        let _ = write!(text, "{i}");
                    } else if let Some(u) = x.as_u64() {
                        let _ = write!(text, "{u}");
                    } else if let Some(f) = x.as_f64() {
                        let _ = write!(text, "{f}");
                    }
                }
                Some(Value::String(s)) => push_field(text, s),
                Some(Value::Array(_) | Value::Object(_)) => {
                    return Err(Error::data(format!(
                        "line {line} of {source}: \"{}\" holds a nested array or object, which a snapshot cannot hold",
                        names[c]
                    ))
                    .with_hint("flatten it into columns of numbers or text, or leave it out with [gather] columns")
                    .for_column(names[c]));
                }
            }
        }
        out.text.push('\n');
        out.rows += 1;
        out.check_size()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_timestamps_are_written_in_the_proleptic_calendar() {
        let mut s = String::new();
        date(0, &mut s).unwrap();
        s.push(' ');
        date(-1, &mut s).unwrap();
        s.push(' ');
        date(11_016, &mut s).unwrap();
        s.push(' ');
        timestamp(951_782_400_000_000 + 3_723_000_007, &mut s).unwrap();
        s.push(' ');
        timestamp(-1, &mut s).unwrap();
        assert_eq!(
            s,
            "1970-01-01 1969-12-31 2000-02-29 2000-02-29T01:02:03.000007Z 1969-12-31T23:59:59.999999Z"
        );
        assert!(date(-719_529, &mut String::new()).is_err(), "year -1 is refused");
    }

    #[test]
    fn decimals_keep_their_scale() {
        let cases = [
            (12345, 2, "123.45"),
            (-5, 3, "-0.005"),
            (7, 0, "7"),
            (7, -2, "700"),
            (-100, 2, "-1.00"),
        ];
        for (v, scale, want) in cases {
            let mut s = String::new();
            decimal(v, scale, &mut s);
            assert_eq!(s, want, "{v} at scale {scale}");
        }
    }
}
