//! The in-memory table: typed columns, CSV reading with explicit missing-value markers, canonical digest.
//!
//! Numeric columns hold `f64` with NaN as "missing"; categorical columns hold interned strings with
//! `None` as "missing". Nothing here depends on thread count or hash-map order, so the digest of a
//! frame is a pure function of the file bytes and the read options.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::digest::{Id, KeyBuilder, context};
use crate::error::{Error, Result};

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
    Numeric(Vec<f64>),
    Categorical(Vec<Option<Arc<str>>>),
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
            ColumnData::Numeric(v) => v.iter().filter(|x| x.is_nan()).count(),
            ColumnData::Categorical(v) => v.iter().filter(|x| x.is_none()).count(),
        }
    }

    fn take(&self, rows: &[u32]) -> ColumnData {
        match self {
            ColumnData::Numeric(v) => ColumnData::Numeric(rows.iter().map(|&r| v[r as usize]).collect()),
            ColumnData::Categorical(v) => {
                ColumnData::Categorical(rows.iter().map(|&r| v[r as usize].clone()).collect())
            }
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
}

impl Frame {
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
            columns: self
                .columns
                .iter()
                .map(|c| Column {
                    name: c.name.clone(),
                    data: c.data.take(rows),
                })
                .collect(),
            lines: rows.iter().map(|&r| self.lines[r as usize]).collect(),
            source: self.source.clone(),
        }
    }

    /// The numeric values of a column, or an error that says what the column holds instead.
    pub fn numeric(&self, name: &str) -> Result<&[f64]> {
        match self.column(name).map(|c| &c.data) {
            Some(ColumnData::Numeric(v)) => Ok(v),
            Some(ColumnData::Categorical(v)) => {
                let example = v
                    .iter()
                    .flatten()
                    .next()
                    .map(|s| format!(" (e.g. \"{s}\")"))
                    .unwrap_or_default();
                Err(Error::data(format!("column \"{name}\" holds text{example}, but a number is needed here"))
                    .with_hint(format!(
                        "encode \"{name}\" first (one_hot or ordinal), or declare it numeric in [gather] dtypes if the text is a data error"
                    )))
            }
            None => Err(self.missing_column(name)),
        }
    }

    pub fn missing_column(&self, name: &str) -> Error {
        let mut err = Error::data(format!("column \"{name}\" is not in {}", self.describe_source()));
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

    /// Canonical digest of the values (see `docs/hashing.md`): column count; per column its name, type
    /// and rows; numeric values as IEEE-754 bits (every missing value as the one NaN 0x7ff8000000000000);
    /// text values as a presence byte, length and UTF-8 bytes.
    pub fn digest(&self) -> Id {
        let mut key = KeyBuilder::new(context::DATA_DIGEST).u64(self.columns.len() as u64);
        let mut buf = Vec::new();
        for col in &self.columns {
            buf.clear();
            let tag = match &col.data {
                ColumnData::Numeric(v) => {
                    buf.reserve(v.len() * 8);
                    for x in v {
                        let bits = if x.is_nan() {
                            0x7ff8_0000_0000_0000u64
                        } else {
                            x.to_bits()
                        };
                        buf.extend_from_slice(&bits.to_le_bytes());
                    }
                    0
                }
                ColumnData::Categorical(v) => {
                    for x in v {
                        match x {
                            None => buf.push(0),
                            Some(s) => {
                                buf.push(1);
                                buf.extend_from_slice(&(s.len() as u64).to_le_bytes());
                                buf.extend_from_slice(s.as_bytes());
                            }
                        }
                    }
                    1
                }
            };
            key = key.str(&col.name).u64(tag).u64(col.data.len() as u64).bytes(&buf);
        }
        key.finish()
    }
}

/// How to turn CSV bytes into a frame. Missing-value markers are explicit: an empty field is always
/// missing, and so is any field equal to one of `na_values`; nothing else is guessed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadOptions {
    pub delimiter: u8,
    pub na_values: Vec<String>,
    /// Column types forced by the pipeline; other columns are numeric when every present value parses
    /// as a finite number, categorical otherwise.
    pub dtypes: BTreeMap<String, ColumnType>,
    /// Keep only these columns (in file order); all columns when empty.
    #[serde(default)]
    pub columns: Vec<String>,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            delimiter: b',',
            na_values: Vec::new(),
            dtypes: BTreeMap::new(),
            columns: Vec::new(),
        }
    }
}

fn parse_number(field: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(field).ok()?.trim();
    // Rust's parser is correctly rounded; it also accepts "inf"/"nan", which are text here.
    let first = text.bytes().next()?;
    if !(first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.')) {
        return None;
    }
    text.parse::<f64>().ok().filter(|x| x.is_finite())
}

/// Reads CSV bytes. `source` names the file in errors. When `schema` is given (predicting with a fitted
/// pipeline), its columns must be present with the same types; extra columns are kept as they are.
pub fn read_csv(bytes: &[u8], opts: &ReadOptions, source: &str) -> Result<Frame> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(opts.delimiter)
        .has_headers(true)
        .flexible(false)
        .from_reader(bytes);
    let csv_error = |e: csv::Error| {
        let line = e
            .position()
            .map(|p| format!(" at line {}", p.line()))
            .unwrap_or_default();
        Error::data(format!("{source} is not valid CSV{line}: {e}"))
            .with_hint("check the delimiter and quoting; every row needs as many fields as the header")
    };
    let header = reader.byte_headers().map_err(csv_error)?.clone();
    let mut names = Vec::with_capacity(header.len());
    for field in &header {
        let name = std::str::from_utf8(field)
            .map_err(|_| Error::data(format!("{source}: the header is not UTF-8")))?
            .trim_start_matches('\u{feff}')
            .to_string();
        if name.is_empty() {
            return Err(Error::data(format!(
                "{source}: column {} of the header has no name",
                names.len() + 1
            )));
        }
        if names.contains(&name) {
            return Err(Error::data(format!(
                "{source}: column \"{name}\" appears twice in the header"
            )));
        }
        names.push(name);
    }
    if names.is_empty() {
        return Err(
            Error::data(format!("{source} has no header row")).with_hint("the first line must name the columns")
        );
    }
    for (what, name) in opts
        .dtypes
        .keys()
        .map(|n| ("dtypes", n))
        .chain(opts.columns.iter().map(|n| ("columns", n)))
    {
        if !names.contains(name) {
            let mut err = Error::data(format!("{what} names column \"{name}\", which is not in {source}"));
            if let Some(h) = crate::error::did_you_mean(name, names.iter().map(String::as_str)) {
                err = err.with_hint(h);
            }
            return Err(err);
        }
    }

    let mut records = Vec::new();
    let mut lines = Vec::new();
    let mut record = csv::ByteRecord::new();
    while reader.read_byte_record(&mut record).map_err(csv_error)? {
        lines.push(record.position().map_or(0, csv::Position::line));
        records.push(record.clone());
    }

    if records.len() > u32::MAX as usize {
        return Err(Error::data(format!(
            "{source} has more than {} rows, which mlpipe does not support",
            u32::MAX
        )));
    }
    let is_missing = |field: &[u8]| field.is_empty() || opts.na_values.iter().any(|na| na.as_bytes() == field);
    let mut columns = Vec::with_capacity(names.len());
    for (c, name) in names.iter().enumerate() {
        if !opts.columns.is_empty() && !opts.columns.contains(name) {
            continue;
        }
        let forced = opts.dtypes.get(name).copied();
        let numeric = match forced {
            Some(t) => t == ColumnType::Numeric,
            None => records
                .iter()
                .all(|r| is_missing(&r[c]) || parse_number(&r[c]).is_some()),
        };
        let data = if numeric {
            let mut values = Vec::with_capacity(records.len());
            for (r, rec) in records.iter().enumerate() {
                let field = &rec[c];
                if is_missing(field) {
                    values.push(f64::NAN);
                } else if let Some(x) = parse_number(field) {
                    values.push(x);
                } else {
                    return Err(Error::data(format!(
                        "column \"{name}\" is declared numeric, but line {} of {source} holds \"{}\"",
                        lines[r],
                        String::from_utf8_lossy(field)
                    ))
                    .with_hint("fix the value, add it to na_values if it marks a missing value, or declare the column categorical"));
                }
            }
            ColumnData::Numeric(values)
        } else {
            let mut interned: HashMap<&[u8], Arc<str>> = HashMap::new();
            let mut values = Vec::with_capacity(records.len());
            for (r, rec) in records.iter().enumerate() {
                let field = &rec[c];
                if is_missing(field) {
                    values.push(None);
                    continue;
                }
                if let Some(s) = interned.get(field) {
                    values.push(Some(Arc::clone(s)));
                    continue;
                }
                let text = std::str::from_utf8(field).map_err(|_| {
                    Error::data(format!(
                        "line {} of {source}: column \"{name}\" is not valid UTF-8",
                        lines[r]
                    ))
                })?;
                let s: Arc<str> = Arc::from(text);
                interned.insert(field, Arc::clone(&s));
                values.push(Some(s));
            }
            ColumnData::Categorical(values)
        };
        columns.push(Column {
            name: name.clone(),
            data,
        });
    }
    Ok(Frame {
        columns,
        lines,
        source: source.to_string(),
    })
}

/// Makes `frame` fit a training schema: every schema column must be present; a numeric column that
/// arrived as text (because one value is not a number) is reported with the line and value.
pub fn conform_to_schema(frame: Frame, schema: &[(String, ColumnType)], optional: &[&str]) -> Result<Frame> {
    let mut out = Vec::with_capacity(schema.len());
    let Frame {
        mut columns,
        lines,
        source,
    } = frame;
    for (name, ty) in schema {
        let Some(pos) = columns.iter().position(|c| &c.name == name) else {
            if optional.contains(&name.as_str()) {
                continue;
            }
            let known: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
            let mut err = Error::data(format!(
                "column \"{name}\" is missing from {source}; the fitted pipeline needs it"
            ));
            if let Some(h) = crate::error::did_you_mean(name, known) {
                err = err.with_hint(h);
            }
            return Err(err);
        };
        let col = columns.swap_remove(pos);
        let data = match (col.data, ty) {
            (ColumnData::Categorical(v), ColumnType::Numeric) => {
                let mut values = Vec::with_capacity(v.len());
                for (r, x) in v.iter().enumerate() {
                    match x {
                        None => values.push(f64::NAN),
                        Some(s) => match parse_number(s.as_bytes()) {
                            Some(n) => values.push(n),
                            None => {
                                return Err(Error::data(format!(
                                    "column \"{name}\" must be numeric, but line {} of {source} holds \"{s}\"",
                                    lines[r]
                                ))
                                .with_hint("fix the value, or mark it missing with one of the pipeline's na_values"));
                            }
                        },
                    }
                }
                ColumnData::Numeric(values)
            }
            (ColumnData::Numeric(v), ColumnType::Categorical) => {
                return Err(Error::internal(format!(
                    "column \"{name}\" was read as numeric ({} rows) although the schema forces categorical",
                    v.len()
                )));
            }
            (data, _) => data,
        };
        out.push(Column {
            name: name.clone(),
            data,
        });
    }
    Ok(Frame {
        columns: out,
        lines,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(na: &[&str]) -> ReadOptions {
        ReadOptions {
            na_values: na.iter().map(|s| (*s).to_string()).collect(),
            ..ReadOptions::default()
        }
    }

    #[test]
    fn infers_types_and_missing_markers() {
        let f = read_csv(b"a,b,c\n1,x,NA\n2.5,,None\n,NA,3\n", &opts(&["NA"]), "t.csv").unwrap();
        assert_eq!(f.schema()[0].1, ColumnType::Numeric);
        assert_eq!(f.schema()[1].1, ColumnType::Categorical);
        // "None" is a real category: only NA and empty are missing.
        assert_eq!(f.schema()[2].1, ColumnType::Categorical);
        assert_eq!(f.column("c").unwrap().data.missing_count(), 1);
        assert_eq!(f.column("a").unwrap().data.missing_count(), 1);
        assert_eq!(f.lines, vec![2, 3, 4]);
    }

    #[test]
    fn forced_numeric_column_with_text_names_line_and_value() {
        let mut o = opts(&[]);
        o.dtypes.insert("a".into(), ColumnType::Numeric);
        let err = read_csv(b"a\n1\nabc\n", &o, "t.csv").unwrap_err();
        assert_eq!(
            err.to_string(),
            "column \"a\" is declared numeric, but line 3 of t.csv holds \"abc\""
        );
    }

    #[test]
    fn ragged_row_is_an_error_with_its_line() {
        let err = read_csv(b"a,b\n1,2\n3\n", &opts(&[]), "t.csv").unwrap_err();
        assert!(err.to_string().starts_with("t.csv is not valid CSV at line 3"), "{err}");
    }

    #[test]
    fn digest_depends_on_values_not_on_row_labels() {
        let a = read_csv(b"a,b\n1,x\n2,y\n", &opts(&[]), "a.csv").unwrap();
        let mut b = a.clone();
        b.lines = vec![10, 11];
        b.source = "b.csv".into();
        assert_eq!(a.digest(), b.digest());
        let c = read_csv(b"a,b\n1,x\n2,z\n", &opts(&[]), "a.csv").unwrap();
        assert_ne!(a.digest(), c.digest());
    }

    #[test]
    fn golden_frame_digest() {
        let f = read_csv(b"a,b\n1.5,x\nNA,NA\n", &opts(&["NA"]), "g.csv").unwrap();
        assert_eq!(f.digest().hex(), crate::digest::tests::golden("frame"));
    }

    #[test]
    fn missing_and_empty_string_digest_differently() {
        let a = read_csv(b"a,b\n1,\"\"\n", &opts(&[]), "a.csv").unwrap();
        let b = read_csv(b"a,b\n1,NA\n", &opts(&[]), "a.csv").unwrap();
        // Both are missing: empty is always missing, and NA is not a marker here, so b holds "NA".
        assert_ne!(a.digest(), b.digest());
    }

    #[test]
    fn conform_reports_text_in_numeric_column() {
        let f = read_csv(b"a\n1\nfoo\n", &opts(&[]), "new.csv").unwrap();
        let err = conform_to_schema(f, &[("a".into(), ColumnType::Numeric)], &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "column \"a\" must be numeric, but line 3 of new.csv holds \"foo\""
        );
    }
}
