//! The in-memory table: typed columns, CSV reading with explicit missing-value markers, canonical digest.
//!
//! Numeric columns hold `f64` with NaN as "missing"; categorical columns hold interned strings with
//! `None` as "missing". Nothing here depends on thread count or hash-map order, so the digest of a
//! frame is a pure function of the file bytes and the read options.
//!
//! The files by concern: this one holds the column and frame types and their accessors; `csv_read`
//! turns CSV bytes into a frame (options, header checks, schema inference or a fitted schema) and
//! `csv_pieces` parses, types and merges the line-aligned pieces it reads on all cores; `digest` is
//! the frame's canonical encoding and digest; `lookup` the seeded hasher and text lookup tables;
//! `conform` fits new rows to a training schema (predict input).

mod column;
mod conform;
mod csv_pieces;
mod csv_read;
mod digest;
mod lookup;

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

use column::SplitOff;
pub use column::{Numbers, Texts, indicator_value};
pub use conform::{conform_to_schema, json_number};
pub use csv_read::{
    Expected, MAX_COLUMNS, ReadOptions, Released, parse_number, read_csv, read_csv_expecting, read_csv_releasing,
};
pub use lookup::{FastHasher, FastMap, FastState, category_counts, lookup_categories};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    Numeric,
    Categorical,
}

impl ColumnType {
    pub fn name(self) -> &'static str {
        match self {
            ColumnType::Numeric => "numeric",
            ColumnType::Categorical => "categorical",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ColumnData {
    Numeric(Numbers),
    Categorical(Texts),
}

impl ColumnData {
    pub fn len(&self) -> usize {
        match self {
            ColumnData::Numeric(v) => v.len(),
            ColumnData::Categorical(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn column_type(&self) -> ColumnType {
        match self {
            ColumnData::Numeric(_) => ColumnType::Numeric,
            ColumnData::Categorical(_) => ColumnType::Categorical,
        }
    }

    pub fn missing_count(&self) -> usize {
        match self {
            ColumnData::Numeric(v) => v.missing_count(),
            ColumnData::Categorical(v) => v.missing_count(),
        }
    }

    /// Whether row `r` is missing.
    pub fn is_missing(&self, r: usize) -> bool {
        match self {
            ColumnData::Numeric(v) => v[r].is_nan(),
            ColumnData::Categorical(v) => v.is_missing(r),
        }
    }

    /// Pieces of one column joined end to end; an error if they differ in type.
    pub fn concat(pieces: Vec<ColumnData>) -> Result<ColumnData> {
        if let Some(ColumnData::Categorical(_)) = pieces.first() {
            let mut texts = Vec::with_capacity(pieces.len());
            for p in pieces {
                let ColumnData::Categorical(t) = p else {
                    return Err(Error::internal("a column's pieces differ in type"));
                };
                texts.push(t);
            }
            return Ok(ColumnData::Categorical(Texts::concat(&texts)));
        }
        let mut values = Vec::with_capacity(pieces.iter().map(ColumnData::len).sum());
        for p in pieces {
            let ColumnData::Numeric(v) = p else {
                return Err(Error::internal("a column's pieces differ in type"));
            };
            values.extend_from_slice(&v);
        }
        Ok(ColumnData::Numeric(values.into()))
    }

    fn take(&self, rows: &[u32]) -> ColumnData {
        match self {
            ColumnData::Numeric(v) => ColumnData::Numeric(v.take_rows(rows)),
            ColumnData::Categorical(v) => ColumnData::Categorical(v.take_rows(rows)),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub data: ColumnData,
}

/// A table. `lines` holds, for every row, its line number in the source file (for error messages only;
/// it is not part of the digest).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Frame {
    pub columns: Vec<Column>,
    pub lines: Vec<u64>,
    /// Where the rows came from, for error messages ("data/train.csv").
    pub source: String,
    /// Position of this frame's first row in the batch it was cut from (0 unless it is a later chunk of
    /// one), so that row-keyed steps (random-sample imputation) do not depend on how a batch is chunked.
    pub first_row: u64,
}

/// A text column whose present values are numbers but for a few: most likely a numeric column that one
/// stray marker ("?", "n/a", "12,5") turned into text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StrayText {
    pub column: String,
    /// Present values that are numbers.
    pub numbers: usize,
    /// The values that are not, with how many rows hold each and the snapshot line of the first.
    pub strays: Vec<(String, usize, u64)>,
}

impl StrayText {
    /// The warning a user sees, naming `source` (the data file).
    pub fn warning(&self, source: &str) -> String {
        let strays: Vec<String> = self
            .strays
            .iter()
            .map(|(value, rows, line)| {
                let more = match rows - 1 {
                    0 => String::new(),
                    1 => " and 1 more row".to_string(),
                    n => format!(" and {n} more rows"),
                };
                format!("{value:?} on line {line}{more}")
            })
            .collect();
        let key = if !self.column.is_empty()
            && self
                .column
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            self.column.clone()
        } else {
            format!("{:?}", self.column)
        };
        format!(
            "column \"{}\" of {source} is read as text because of {}, though its other {} values are numbers; \
             if it is numeric, list the marker in [gather] na_values, or declare it in [gather] dtypes \
             (`{key} = \"numeric\"`) to be stopped at the first value that is not a number",
            self.column,
            strays.join(", "),
            self.numbers,
        )
    }
}

/// At most this many distinct values that are not numbers make a text column look like a numeric one.
const MAX_STRAYS: usize = 3;

impl Frame {
    /// Text columns that would be numeric but for at most [`MAX_STRAYS`] distinct values holding at most
    /// one row in ten (columns in `declared` are left out: their type was asked for).
    pub fn numbers_read_as_text(&self, declared: &BTreeMap<String, ColumnType>) -> Vec<StrayText> {
        let mut found = Vec::new();
        for column in &self.columns {
            let ColumnData::Categorical(texts) = &column.data else {
                continue;
            };
            if declared.contains_key(&column.name) {
                continue;
            }
            let stray: Vec<bool> = texts
                .categories()
                .iter()
                .map(|c| parse_number(c.as_bytes()).is_none())
                .collect();
            if stray.iter().filter(|s| **s).count() > MAX_STRAYS || stray.iter().all(|s| *s) {
                continue;
            }
            let (mut numbers, mut counts, mut first) = (0, vec![0usize; stray.len()], vec![None; stray.len()]);
            for (row, code) in texts.codes().enumerate() {
                let Some(code) = code.map(|c| c as usize) else { continue };
                if stray[code] {
                    counts[code] += 1;
                    first[code].get_or_insert(self.lines[row]);
                } else {
                    numbers += 1;
                }
            }
            let strays: Vec<(String, usize, u64)> = (0..stray.len())
                .filter_map(|c| Some((texts.categories()[c].to_string(), counts[c], first[c]?)))
                .collect();
            let stray_rows: usize = strays.iter().map(|s| s.1).sum();
            if !strays.is_empty() && stray_rows * 10 <= numbers + stray_rows {
                found.push(StrayText {
                    column: column.name.clone(),
                    numbers,
                    strays,
                });
            }
        }
        found
    }

    pub fn n_rows(&self) -> usize {
        self.lines.len()
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.columns.iter().map(|c| c.name.as_str())
    }

    pub fn schema(&self) -> Vec<(String, ColumnType)> {
        self.columns
            .iter()
            .map(|c| (c.name.clone(), c.data.column_type()))
            .collect()
    }

    /// The rows at `rows` (indices into this frame), in that order.
    #[must_use]
    pub fn take(&self, rows: &[u32]) -> Frame {
        Frame {
            // Columns are copied on all cores; collect keeps their order.
            columns: self
                .columns
                .par_iter()
                .map(|c| Column {
                    name: c.name.clone(),
                    data: c.data.take(rows),
                })
                .collect(),
            lines: rows.iter().map(|&r| self.lines[r as usize]).collect(),
            source: self.source.clone(),
            first_row: 0,
        }
    }

    /// Two frames of the given rows (indices into this frame), in those orders.
    #[must_use]
    pub fn into_two(self, first: &[u32], second: &[u32]) -> (Frame, Frame) {
        let Frame {
            columns, lines, source, ..
        } = self;
        // Each column is cut into its two parts and then dropped, so the table is never held twice.
        let (a, b): (Vec<Column>, Vec<Column>) = columns
            .into_par_iter()
            .map(|c| {
                let a = c.data.take(first);
                let b = c.data.take(second);
                (
                    Column {
                        name: c.name.clone(),
                        data: a,
                    },
                    Column { name: c.name, data: b },
                )
            })
            .unzip();
        let part = |columns, rows: &[u32]| Frame {
            columns,
            lines: rows.iter().map(|&r| lines[r as usize]).collect(),
            source: source.clone(),
            first_row: 0,
        };
        (part(a, first), part(b, second))
    }

    /// Cuts the frame into consecutive chunks of at most `rows` rows, moving (not copying) values.
    #[must_use]
    pub fn into_chunks(mut self, rows: usize) -> Vec<Frame> {
        let n = self.n_rows();
        let rows = rows.max(1);
        let mut chunks = Vec::with_capacity(n.div_ceil(rows));
        let mut start = n.saturating_sub(1) / rows * rows;
        loop {
            let columns = self
                .columns
                .iter_mut()
                .map(|c| Column {
                    name: c.name.clone(),
                    data: match &mut c.data {
                        ColumnData::Numeric(v) => ColumnData::Numeric(v.split_off_rows(start)),
                        ColumnData::Categorical(v) => ColumnData::Categorical(v.split_off_rows(start)),
                    },
                })
                .collect();
            chunks.push(Frame {
                columns,
                lines: self.lines.split_off(start),
                source: self.source.clone(),
                first_row: self.first_row + start as u64,
            });
            if start == 0 {
                break;
            }
            start -= rows;
        }
        chunks.reverse();
        chunks
    }

    /// The numeric values of a column, or an error that says what the column holds instead.
    pub fn numeric(&self, name: &str) -> Result<&[f64]> {
        match self.column(name).map(|c| &c.data) {
            Some(ColumnData::Numeric(v)) => Ok(v.values()),
            Some(ColumnData::Categorical(v)) => {
                let example = text_example(v);
                Err(Error::data(format!("column \"{name}\" holds text{example}, but a number is needed here"))
                    .with_hint(format!(
                        "encode \"{name}\" first (one_hot or ordinal), or declare it numeric in [gather] dtypes if the text is a data error"
                    )))
            }
            None => Err(self.missing_column(name)),
        }
    }

    /// Changes the values of a numeric column (NaN = missing) with `change`; an error if the column is
    /// missing or holds text (the state being applied was fitted on numbers). The values are moved out,
    /// not copied, when no other frame shares them.
    pub fn update_numeric<T>(&mut self, name: &str, change: impl FnOnce(&mut [f64]) -> Result<T>) -> Result<T> {
        let idx = self.index_of(name).ok_or_else(|| self.missing_column(name))?;
        let data = &mut self.columns[idx].data;
        let ColumnData::Numeric(v) = data else {
            return Err(Error::data(format!(
                "column \"{name}\" is text here but was numeric when fitted"
            )));
        };
        v.update(change)
    }

    /// A text column with every train value present, as encoders need it.
    pub fn complete_categorical(&self, name: &str, step: &str) -> Result<&Texts> {
        match self.column(name).map(|c| &c.data) {
            Some(ColumnData::Categorical(v)) => {
                if let Some(r) = (0..v.len()).find(|&r| v.is_missing(r)) {
                    return Err(Error::data(format!(
                        "column \"{name}\" has missing values in train (first at line {} of {}); {step} needs every value present",
                        self.lines[r], self.source
                    ))
                    .with_hint("impute it first, e.g. [[impute]] operator = \"constant\" with fill_value = \"Missing\"")
                    .for_column(name));
                }
                Ok(v)
            }
            Some(ColumnData::Numeric(_)) => Err(Error::internal(format!("{step} got the numeric column {name}"))),
            None => Err(self.missing_column(name)),
        }
    }

    pub fn missing_column(&self, name: &str) -> Error {
        let mut err = Error::data(format!("column \"{name}\" is not in {}", self.describe_source())).for_column(name);
        if let Some(h) = crate::error::did_you_mean(name, self.names()) {
            err = err.with_hint(h);
        }
        err
    }

    fn describe_source(&self) -> String {
        if self.source.is_empty() {
            "the data".to_string()
        } else {
            self.source.clone()
        }
    }
}

/// ` (e.g. "RL")`: the first present value of a text column, for messages.
pub fn text_example(values: &Texts) -> String {
    values
        .iter()
        .flatten()
        .next()
        .map(|s| format!(" (e.g. \"{s}\")"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn opts(na: &[&str]) -> ReadOptions {
        ReadOptions {
            na_values: na.iter().map(|s| (*s).to_string()).collect(),
            ..ReadOptions::default()
        }
    }

    #[test]
    fn a_numeric_column_with_a_stray_marker_is_found_but_a_text_column_is_not() {
        let mut csv = String::from("area,name,code\n");
        for i in 0..20 {
            let area = if i == 4 || i == 11 {
                "?".to_string()
            } else {
                format!("{}.5", i * 10)
            };
            csv.push_str(&format!("{area},n{i},{}\n", if i % 2 == 0 { "x" } else { "7" }));
        }
        let f = read_csv(csv.as_bytes(), &opts(&[]), "t.csv").unwrap();
        let found = f.numbers_read_as_text(&BTreeMap::new());
        // `code` is half numbers: text on purpose. `name` has no numbers at all.
        assert_eq!(
            found,
            vec![StrayText {
                column: "area".to_string(),
                numbers: 18,
                strays: vec![("?".to_string(), 2, 6)]
            }]
        );
        let declared = BTreeMap::from([("area".to_string(), ColumnType::Categorical)]);
        assert!(f.numbers_read_as_text(&declared).is_empty());
    }

    #[test]
    fn splitting_in_two_moves_the_same_values_take_copies() {
        let f = read_csv(b"a,b\n1,x\n2,y\n3,\n4,x\n", &opts(&[]), "t.csv").unwrap();
        let (train, test) = f.clone().into_two(&[3, 0], &[2]);
        assert_eq!(train, f.take(&[3, 0]));
        assert_eq!(test, f.take(&[2]));
        // A row in both lists is copied, not moved out twice.
        let (a, b) = f.clone().into_two(&[1, 2], &[2]);
        assert_eq!((a, b), (f.take(&[1, 2]), f.take(&[2])));
    }
}
