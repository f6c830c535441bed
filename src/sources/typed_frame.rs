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

/// One column's decoded batches.
enum Piece {
    Numbers(Vec<f64>),
    /// Cells as the snapshot writes them, missing ones (markers applied) missing.
    Texts(Texts),
}

struct FrameOut<'a> {
    source: &'a str,
    limit: usize,
    opts: &'a ReadOptions,
    /// A missing-value marker that reads as a number: integers and floats must then go through text.
    numeric_marker: bool,
    names: Vec<String>,
    pieces: Vec<Vec<Piece>>,
    rows: usize,
    /// Set when this reader cannot promise the CSV way's frame.
    give_up: bool,
}

impl FrameOut<'_> {
    fn typing(&self, c: usize) -> Option<ColumnType> {
        self.opts.dtypes.get(&self.names[c]).copied()
    }

    fn piece(&self, array: &dyn Array, c: usize) -> Option<Piece> {
        use arrow_array::cast::AsArray;
        use arrow_array::types::{
            Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type, UInt32Type,
            UInt64Type,
        };
        let numeric = !self.numeric_marker && self.typing(c) != Some(ColumnType::Categorical);
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
        if numeric {
            let values = match array.data_type() {
                DataType::Int8 => Some(numbers!(Int8Type)),
                DataType::Int16 => Some(numbers!(Int16Type)),
                DataType::Int32 => Some(numbers!(Int32Type)),
                DataType::Int64 => Some(numbers!(Int64Type)),
                DataType::UInt8 => Some(numbers!(UInt8Type)),
                DataType::UInt16 => Some(numbers!(UInt16Type)),
                DataType::UInt32 => Some(numbers!(UInt32Type)),
                DataType::UInt64 => Some(numbers!(UInt64Type)),
                DataType::Float32 => Some(numbers!(Float32Type)),
                DataType::Float64 => Some(numbers!(Float64Type)),
                _ => None,
            };
            if let Some(values) = values {
                // An infinite value is refused by the snapshot: the CSV way says so.
                return values
                    .iter()
                    .all(|x| !x.is_infinite())
                    .then_some(Piece::Numbers(values));
            }
        }
        // Text arrays are coded straight from their values; other types through the text the snapshot
        // writes for each cell.
        let cell = |t: &str| -> Option<Option<String>> {
            if t.contains(['\n', '\r']) {
                None
            } else if t.is_empty() || self.opts.na_values.iter().any(|na| na == t) {
                Some(None)
            } else {
                Some(Some(t.to_string()))
            }
        };
        let borrowed = |values: &mut dyn Iterator<Item = Option<&str>>| -> Option<Texts> {
            let mut cells: Vec<Option<&str>> = Vec::with_capacity(array.len());
            for v in values {
                cells.push(match v {
                    None => None,
                    Some(t) if t.contains(['\n', '\r']) => return None,
                    Some(t) if t.is_empty() || self.opts.na_values.iter().any(|na| na == t) => None,
                    Some(t) => Some(t),
                });
            }
            Some(Texts::from_values(cells))
        };
        let texts = match array.data_type() {
            DataType::Dictionary(_, value)
                if matches!(**value, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) =>
            {
                self.dictionary_texts(array)?
            }
            DataType::Utf8 => borrowed(&mut array.as_string::<i32>().iter())?,
            DataType::LargeUtf8 => borrowed(&mut array.as_string::<i64>().iter())?,
            DataType::Utf8View => borrowed(&mut array.as_string_view().iter())?,
            _ => {
                let mut cells = Vec::with_capacity(array.len());
                for t in column_texts(array)?.ok()? {
                    cells.push(match t {
                        None => None,
                        Some(t) => cell(&t)?,
                    });
                }
                Texts::from_values(cells)
            }
        };
        Some(Piece::Texts(texts))
    }

    /// A dictionary-coded text array coded from its dictionary: each dictionary value checked once.
    fn dictionary_texts(&self, array: &dyn Array) -> Option<Texts> {
        use arrow_array::cast::AsArray;
        let dict = array.as_any_dictionary();
        let values = dict.values();
        let strings: Vec<Option<&str>> = match values.data_type() {
            DataType::Utf8 => values.as_string::<i32>().iter().collect(),
            DataType::LargeUtf8 => values.as_string::<i64>().iter().collect(),
            DataType::Utf8View => values.as_string_view().iter().collect(),
            _ => return None,
        };
        let mut first_seen: FastMap<&str, u32> = FastMap::default();
        let mut met: Vec<Arc<str>> = Vec::new();
        let mut per_value: Vec<Option<u32>> = Vec::with_capacity(strings.len());
        for s in strings {
            per_value.push(match s {
                None => None,
                Some(t) if t.contains(['\n', '\r']) => return None,
                Some(t) if t.is_empty() || self.opts.na_values.iter().any(|na| na == t) => None,
                Some(t) => Some(*first_seen.entry(t).or_insert_with(|| {
                    met.push(Arc::from(t));
                    u32::try_from(met.len() - 1).unwrap_or(u32::MAX)
                })),
            });
        }
        // (Keys of an empty dictionary can only be null.)
        let keys = if per_value.is_empty() {
            Vec::new()
        } else {
            dict.normalized_keys()
        };
        let codes = (0..array.len())
            .map(|i| if array.is_null(i) { None } else { per_value[keys[i]] })
            .collect();
        Some(Texts::from_met(codes, &met))
    }

    /// The column made of its pieces, typed as the CSV reader types it; `None` where it would refuse.
    fn column(&self, c: usize, pieces: Vec<Piece>) -> Option<ColumnData> {
        let typing = self.typing(c);
        let texts = |pieces: Vec<Piece>| -> Option<ColumnData> {
            let mut parts = Vec::with_capacity(pieces.len());
            for p in pieces {
                match p {
                    Piece::Texts(t) => parts.push(t),
                    Piece::Numbers(_) => return None,
                }
            }
            Some(ColumnData::Categorical(Texts::concat(&parts)))
        };
        if typing == Some(ColumnType::Categorical) {
            return texts(pieces);
        }
        // Each distinct text parsed once: a column is numeric when every present value is a number.
        let parsed: Vec<Option<Vec<Option<f64>>>> = pieces
            .iter()
            .map(|p| match p {
                Piece::Numbers(_) => None,
                Piece::Texts(t) => Some(t.categories().iter().map(|s| parse_number(s.as_bytes())).collect()),
            })
            .collect();
        let parses = parsed
            .iter()
            .flatten()
            .all(|numbers| numbers.iter().all(Option::is_some));
        if parses {
            let mut values = Vec::with_capacity(self.rows);
            for (p, numbers) in pieces.into_iter().zip(parsed) {
                match (p, numbers) {
                    (Piece::Numbers(v), _) => values.extend(v),
                    (Piece::Texts(t), Some(numbers)) => {
                        values.extend(
                            t.codes()
                                .map(|c| c.and_then(|c| numbers[c as usize]).unwrap_or(f64::NAN)),
                        );
                    }
                    (Piece::Texts(_), None) => return None,
                }
            }
            return Some(ColumnData::Numeric(Numbers::from_vec(values)));
        }
        if typing == Some(ColumnType::Numeric) {
            return None;
        }
        texts(pieces)
    }
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
        self.pieces = names.iter().map(|_| Vec::new()).collect();
        if names.iter().any(|n| n.contains(['\n', '\r'])) {
            self.give_up = true;
        }
    }

    fn batch(&mut self, batch: &RecordBatch) -> Result<()> {
        if self.give_up {
            return Ok(());
        }
        // Columns are converted on all cores; their pieces are kept in column order.
        let pieces: Vec<Option<Piece>> = (0..batch.num_columns())
            .into_par_iter()
            .map(|c| self.piece(batch.column(c).as_ref(), c))
            .collect();
        for (c, p) in pieces.into_iter().enumerate() {
            let Some(p) = p else {
                self.give_up = true;
                return Ok(());
            };
            self.pieces[c].push(p);
        }
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
    let limit =
        crate::resources::memory_budget().map_or(u64::MAX, |b| b.bytes / crate::resources::MIN_BYTES_PER_FILE_BYTE);
    let mut out = FrameOut {
        source,
        limit: usize::try_from(limit).unwrap_or(usize::MAX),
        opts,
        numeric_marker: opts.na_values.iter().any(|na| parse_number(na.as_bytes()).is_some()),
        names: Vec::new(),
        pieces: Vec::new(),
        rows: 0,
        give_up: false,
    };
    match format {
        FileFormat::Parquet => decoding(source, "Parquet", || read_parquet(bytes, &opts.columns, &mut out))?,
        _ => decoding(source, "Arrow IPC", || read_ipc(&bytes, &opts.columns, &mut out))?,
    }
    let unknown_dtype = opts.dtypes.keys().any(|k| !out.names.contains(k));
    if out.give_up || out.rows == 0 || unknown_dtype {
        return Ok(None);
    }
    let pieces = std::mem::take(&mut out.pieces);
    let out = &out;
    let columns: Option<Vec<Column>> = pieces
        .into_par_iter()
        .enumerate()
        .map(|(c, column_pieces)| {
            Some(Column {
                name: out.names[c].clone(),
                data: out.column(c, column_pieces)?,
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
