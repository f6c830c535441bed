//! Batch input read through the fitted schema: CSV, NDJSON, Parquet and Arrow IPC into a frame of the training
//! columns, each converted to the type it was fitted with.

use std::sync::Arc;

use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use serde_json::Value;

use super::Scorer;
use crate::error::{Error, Result};
use crate::frame::{Column, ColumnData, ColumnType, Frame, Texts};
use crate::sources::{FileFormat, Rows};
use crate::tables::Format;

/// Reads a batch input in `format` into a frame of the training schema's columns.
pub fn read_input(scorer: &Scorer, bytes: &[u8], format: Format, source: &str) -> Result<Frame> {
    match format {
        Format::Csv => scorer.read_csv(bytes, source),
        Format::Ndjson => read_ndjson(scorer, bytes, source),
        Format::Parquet => read_typed(scorer, bytes, FileFormat::Parquet, source),
        Format::Ipc => read_typed(scorer, bytes, FileFormat::Ipc, source),
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

/// A Parquet or Arrow IPC batch, read as gathering reads such a file (same decoder, same checks), each
/// column the fitted pipeline needs converted to the type it was trained on.
fn read_typed(scorer: &Scorer, bytes: &[u8], format: FileFormat, source: &str) -> Result<Frame> {
    let mut sink = FittedColumns {
        scorer,
        source,
        limit: crate::resources::decoded_limit(),
        pieces: Vec::new(),
        rows: 0,
    };
    crate::sources::decode_batches(bytes.to_vec(), format, &mut sink)?;
    let columns = sink
        .pieces
        .into_iter()
        .map(|(name, parts)| {
            Ok(Column {
                name,
                data: ColumnData::concat(parts)?,
            })
        })
        .collect::<Result<Vec<Column>>>()?;
    Ok(Frame {
        columns,
        lines: (1..=sink.rows as u64).collect(),
        source: source.to_string(),
        first_row: 0,
    })
}

/// Decoded batches collected column by column, in the fitted schema's types.
struct FittedColumns<'a> {
    scorer: &'a Scorer,
    source: &'a str,
    limit: usize,
    /// Each wanted column's pieces, batch by batch, joined at the end.
    pieces: Vec<(String, Vec<ColumnData>)>,
    rows: usize,
}

impl Rows for FittedColumns<'_> {
    fn source(&self) -> &str {
        self.source
    }

    fn limit(&self) -> usize {
        self.limit
    }

    fn header(&mut self, _names: &[&str]) {}

    fn batch(&mut self, batch: &RecordBatch) -> Result<()> {
        let scorer = self.scorer;
        for (name, ty) in &scorer.schema {
            let Some(array) = batch.column_by_name(name) else {
                continue;
            };
            let data = arrow_column(array.as_ref(), name, *ty, self.source, self.rows)?;
            match self.pieces.iter_mut().find(|c| &c.0 == name) {
                Some((_, parts)) if parts[0].column_type() == data.column_type() => parts.push(data),
                Some(_) => return Err(Error::internal("a column changed type between batches")),
                None if self.rows == 0 => self.pieces.push((name.clone(), vec![data])),
                None => return Err(Error::internal("a column appeared mid-file")),
            }
        }
        self.rows += batch.num_rows();
        Ok(())
    }
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
            "column \"{name}\" of {source} has type {}, but the model was trained on a {} column",
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
            ColumnType::Numeric if !textual => ColumnData::Numeric(vec![f64::NAN; n].into()),
            ColumnType::Numeric | ColumnType::Categorical => {
                ColumnData::Categorical(Texts::from_values(vec![None::<&str>; n]))
            }
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
            _ => match arrow_cast_to_strings(array) {
                Some(texts) => texts,
                // Booleans, dates, timestamps, decimals: the text gathering writes for them.
                None => match crate::sources::column_texts(array).ok_or_else(unsupported)? {
                    Ok(texts) => texts.into_iter().map(|t| t.map(|t| Arc::from(t.as_str()))).collect(),
                    Err((row, problem)) => {
                        return Err(Error::data(format!(
                            "column \"{name}\" of {source}: row {} {problem}",
                            first_row + row + 1
                        ))
                        .with_hint("write a date between years 0 and 9999, or null for a missing value")
                        .for_column(name));
                    }
                },
            },
        };
        return Ok(ColumnData::Categorical(Texts::from_values(texts)));
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
        return Ok(ColumnData::Categorical(Texts::from_values(strings)));
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
    Ok(ColumnData::Numeric(v.into()))
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

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Int64Array;

    #[test]
    fn parquet_columns_take_the_fitted_type_whatever_their_arrow_type() {
        use arrow_array::{Float64Array, NullArray};
        let text = |v: &[Option<&str>]| ColumnData::Categorical(Texts::from_values(v.iter().copied()));
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
        // Booleans and dates of a categorical column read as gathering writes them.
        let flags = arrow_array::BooleanArray::from(vec![Some(true), None, Some(false)]);
        assert_eq!(
            arrow_column(&flags, "CentralAir", ColumnType::Categorical, "t.parquet", 0).unwrap(),
            text(&[Some("true"), None, Some("false")])
        );
        let days = arrow_array::Date32Array::from(vec![Some(0), Some(-719_529)]);
        let err = arrow_column(&days, "sold", ColumnType::Categorical, "t.parquet", 0).unwrap_err();
        assert!(err.to_string().contains("row 2 holds a date in the year -1"), "{err}");
    }
}
