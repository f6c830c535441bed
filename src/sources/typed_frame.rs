//! A Parquet or Arrow IPC file read straight into a frame, without writing its canonical CSV and parsing
//! that back: for a run that already knows the file's snapshot id (the memo in `commands::run`).
//!
//! The frame must be the one `read_csv(canonical_csv(file))` gives, bit for bit. Numbers (integers,
//! floats) go straight into numeric columns, as the CSV text of an integer or a shortest round-trip
//! float parses back to the same `f64`; everything else takes the text the snapshot would hold for the
//! cell and the CSV reader's rules (an empty cell or one of `na_values` is missing; a column is numeric
//! when every present value parses as a number, unless `dtypes` says otherwise). Where the two could
//! part — a cell the snapshot refuses, text with a line break (the CSV's line numbers shift), a
//! `dtypes` entry for a column the file lacks, a number that is also a missing-value marker — this
//! reader gives up (`None`) and the caller takes the CSV way, which also says what is wrong. The caller
//! checks the result against the digest the gather stage recorded for the snapshot, so a difference can
//! cost time but never change a result.

use std::sync::Arc;

use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use rayon::prelude::*;

use super::files::{FileFormat, Rows, check_magic, column_texts, decoding, read_ipc, read_parquet};
use crate::error::Result;
use crate::frame::{Column, ColumnData, ColumnType, FastMap, Frame, Numbers, ReadOptions, Texts, parse_number};

/// One column as its batches arrive: numbers, or text coded into the distinct values met so far.
enum Building {
    Empty,
    Numbers(Vec<f64>),
    Texts {
        codes: Vec<Option<u32>>,
        met: Vec<Arc<str>>,
        index: FastMap<Arc<str>, u32>,
    },
    /// Only the CSV way can promise this column's values.
    GiveUp,
}

struct FrameOut<'a> {
    source: &'a str,
    limit: usize,
    opts: &'a ReadOptions,
    /// A missing-value marker that reads as a number: integers and floats must then go through text.
    numeric_marker: bool,
    names: Vec<String>,
    columns: Vec<Building>,
    rows: usize,
}

/// A text cell's code for the frame (`None` when missing: empty, or a marker), or `Err` when only the
/// CSV way can promise it (a line break moves the CSV's line numbers).
fn text_code(
    t: &str,
    opts: &ReadOptions,
    code_of: &mut dyn FnMut(&str) -> u32,
) -> std::result::Result<Option<u32>, ()> {
    if t.contains(['\n', '\r']) {
        Err(())
    } else if t.is_empty() || opts.na_values.iter().any(|na| na == t) {
        Ok(None)
    } else {
        Ok(Some(code_of(t)))
    }
}

impl Building {
    /// Appends a batch's values of this column.
    fn append(&mut self, array: &dyn Array, numeric: bool, opts: &ReadOptions, rows: usize) {
        if matches!(self, Building::GiveUp) {
            return;
        }
        if numeric && let Some(values) = numbers(array) {
            match self {
                Building::Empty => *self = Building::Numbers(values),
                Building::Numbers(v) => v.extend_from_slice(&values),
                _ => *self = Building::GiveUp,
            }
            return;
        }
        if matches!(self, Building::Empty) {
            *self = Building::Texts {
                codes: Vec::with_capacity(rows),
                met: Vec::new(),
                index: FastMap::default(),
            };
        }
        let Building::Texts { codes, met, index } = self else {
            *self = Building::GiveUp;
            return;
        };
        let mut code_of = |t: &str| -> u32 {
            if let Some(&c) = index.get(t) {
                return c;
            }
            let c = u32::try_from(met.len()).unwrap_or(u32::MAX);
            let s: Arc<str> = Arc::from(t);
            met.push(Arc::clone(&s));
            index.insert(s, c);
            c
        };
        let ok = match array.data_type() {
            DataType::Dictionary(_, value)
                if matches!(**value, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) =>
            {
                dictionary_codes(array, opts, &mut code_of, codes)
            }
            _ => match strings(array) {
                Some(cells) => cells.into_iter().all(|v| match v {
                    None => {
                        codes.push(None);
                        true
                    }
                    Some(t) => text_code(t, opts, &mut code_of).map(|c| codes.push(c)).is_ok(),
                }),
                // Other types through the text the snapshot holds for each cell.
                None => match column_texts(array) {
                    Some(Ok(cells)) => cells.iter().all(|v| match v {
                        None => {
                            codes.push(None);
                            true
                        }
                        Some(t) => text_code(t, opts, &mut code_of).map(|c| codes.push(c)).is_ok(),
                    }),
                    _ => false,
                },
            },
        };
        if !ok {
            *self = Building::GiveUp;
        }
    }

    /// The finished column, typed as the CSV reader types it; `None` where it would refuse.
    fn finish(self, typing: Option<ColumnType>) -> Option<ColumnData> {
        match self {
            Building::Numbers(v) if typing != Some(ColumnType::Categorical) => {
                Some(ColumnData::Numeric(Numbers::from_vec(v)))
            }
            Building::Empty | Building::GiveUp | Building::Numbers(_) => None,
            Building::Texts { codes, met, .. } => {
                if typing != Some(ColumnType::Categorical) {
                    // Each distinct text parsed once: numeric when every present value is a number.
                    let numbers: Option<Vec<f64>> = met.iter().map(|s| parse_number(s.as_bytes())).collect();
                    if let Some(numbers) = numbers {
                        let values = codes
                            .iter()
                            .map(|c| c.map_or(f64::NAN, |c| numbers[c as usize]))
                            .collect();
                        return Some(ColumnData::Numeric(Numbers::from_vec(values)));
                    }
                    if typing == Some(ColumnType::Numeric) {
                        return None;
                    }
                }
                Some(ColumnData::Categorical(Texts::from_met(codes, &met)))
            }
        }
    }
}

/// An integer or float array's values as numbers (null → NaN), or `None` for another type or an
/// infinite value (which the snapshot refuses: the CSV way says so).
fn numbers(array: &dyn Array) -> Option<Vec<f64>> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{
        Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type, UInt32Type,
        UInt64Type,
    };
    macro_rules! numbers {
        ($t:ty) => {{
            let a = array.as_primitive::<$t>();
            #[allow(clippy::cast_lossless, clippy::cast_precision_loss)]
            let values: Vec<f64> = (0..a.len())
                .map(|i| if a.is_null(i) { f64::NAN } else { a.value(i) as f64 })
                .collect();
            values
        }};
    }
    let values = match array.data_type() {
        DataType::Int8 => numbers!(Int8Type),
        DataType::Int16 => numbers!(Int16Type),
        DataType::Int32 => numbers!(Int32Type),
        DataType::Int64 => numbers!(Int64Type),
        DataType::UInt8 => numbers!(UInt8Type),
        DataType::UInt16 => numbers!(UInt16Type),
        DataType::UInt32 => numbers!(UInt32Type),
        DataType::UInt64 => numbers!(UInt64Type),
        DataType::Float32 => numbers!(Float32Type),
        DataType::Float64 => numbers!(Float64Type),
        _ => return None,
    };
    values.iter().all(|x| !x.is_infinite()).then_some(values)
}

/// A text array's cells, borrowed; `None` for another type.
fn strings(array: &dyn Array) -> Option<Vec<Option<&str>>> {
    use arrow_array::cast::AsArray;
    Some(match array.data_type() {
        DataType::Utf8 => array.as_string::<i32>().iter().collect(),
        DataType::LargeUtf8 => array.as_string::<i64>().iter().collect(),
        DataType::Utf8View => array.as_string_view().iter().collect(),
        _ => return None,
    })
}

/// Codes of a dictionary-coded text array: each dictionary value checked and coded once, each row a
/// lookup by its key. `false` when only the CSV way can promise the values.
fn dictionary_codes(
    array: &dyn Array,
    opts: &ReadOptions,
    code_of: &mut dyn FnMut(&str) -> u32,
    codes: &mut Vec<Option<u32>>,
) -> bool {
    use arrow_array::cast::AsArray;
    let dict = array.as_any_dictionary();
    let Some(values) = strings(dict.values().as_ref()) else {
        return false;
    };
    let mut per_value: Vec<Option<u32>> = Vec::with_capacity(values.len());
    for v in values {
        per_value.push(match v {
            None => None,
            Some(t) => match text_code(t, opts, code_of) {
                Ok(code) => code,
                Err(()) => return false,
            },
        });
    }
    // (Keys of an empty dictionary can only be null.)
    let keys = if per_value.is_empty() {
        Vec::new()
    } else {
        dict.normalized_keys()
    };
    codes.extend((0..array.len()).map(|i| if array.is_null(i) { None } else { per_value[keys[i]] }));
    true
}

impl Rows for FrameOut<'_> {
    fn source(&self) -> &str {
        self.source
    }

    fn limit(&self) -> usize {
        self.limit
    }

    fn dictionary_text(&self) -> bool {
        true
    }

    fn header(&mut self, names: &[&str]) {
        self.names = names.iter().map(|n| (*n).to_string()).collect();
        self.columns = names
            .iter()
            .map(|n| {
                if n.contains(['\n', '\r']) {
                    Building::GiveUp
                } else {
                    Building::Empty
                }
            })
            .collect();
    }

    fn batch(&mut self, batch: &RecordBatch) -> Result<()> {
        let (opts, numeric_marker) = (self.opts, self.numeric_marker);
        let names = &self.names;
        // Columns are appended to on all cores, each by one thread in batch order.
        self.columns.par_iter_mut().enumerate().for_each(|(c, column)| {
            let numeric = !numeric_marker && opts.dtypes.get(&names[c]) != Some(&ColumnType::Categorical);
            column.append(batch.column(c).as_ref(), numeric, opts, batch.num_rows());
        });
        self.rows += batch.num_rows();
        Ok(())
    }
}

/// The frame of a Parquet or Arrow IPC file as the pipeline reads its snapshot (`opts`: the pipeline's
/// `[gather]` read options), or `None` when only the CSV way can promise that frame (see the module
/// text). Errors are the decoder's.
pub fn read_frame(bytes: Vec<u8>, format: FileFormat, opts: &ReadOptions, source: &str) -> Result<Option<Frame>> {
    if !matches!(format, FileFormat::Parquet | FileFormat::Ipc) {
        return Ok(None);
    }
    check_magic(&bytes, format, source)?;
    let mut out = FrameOut {
        source,
        limit: crate::resources::decoded_limit(),
        opts,
        numeric_marker: opts.na_values.iter().any(|na| parse_number(na.as_bytes()).is_some()),
        names: Vec::new(),
        columns: Vec::new(),
        rows: 0,
    };
    match format {
        FileFormat::Parquet => decoding(source, "Parquet", || read_parquet(bytes, &opts.columns, &mut out))?,
        _ => decoding(source, "Arrow IPC", || read_ipc(&bytes, &opts.columns, &mut out))?,
    }
    let unknown_dtype = opts.dtypes.keys().any(|k| !out.names.contains(k));
    if out.rows == 0 || unknown_dtype {
        return Ok(None);
    }
    let columns: Option<Vec<Column>> = std::mem::take(&mut out.columns)
        .into_par_iter()
        .zip(out.names.par_iter())
        .map(|(column, name)| {
            Some(Column {
                name: name.clone(),
                data: column.finish(opts.dtypes.get(name).copied())?,
            })
        })
        .collect();
    let Some(columns) = columns else {
        return Ok(None);
    };
    Ok(Some(Frame {
        columns,
        // Row r is line r + 2 of the snapshot: the header is line 1 and no cell holds a line break.
        lines: (2..).take(out.rows).collect(),
        source: source.to_string(),
        first_row: 0,
    }))
}
