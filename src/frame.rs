//! The in-memory table: typed columns, CSV reading with explicit missing-value markers, canonical digest.
//!
//! Numeric columns hold `f64` with NaN as "missing"; categorical columns hold interned strings with
//! `None` as "missing". Nothing here depends on thread count or hash-map order, so the digest of a
//! frame is a pure function of the file bytes and the read options.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rayon::prelude::*;
use zerocopy::IntoBytes;

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
    /// Position of this frame's first row in the batch it was cut from (0 unless it is a later chunk of
    /// one), so that row-keyed steps (random-sample imputation) do not depend on how a batch is chunked.
    pub first_row: u64,
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

    /// Two frames of the given rows, moving text values rather than sharing them (no reference
    /// count touched for each cell). Rows listed twice, in one list or both, are copied instead.
    #[must_use]
    pub fn into_two(self, first: &[u32], second: &[u32]) -> (Frame, Frame) {
        let mut seen = vec![false; self.n_rows()];
        let disjoint = first
            .iter()
            .chain(second)
            .all(|&r| !std::mem::replace(&mut seen[r as usize], true));
        if !disjoint {
            return (self.take(first), self.take(second));
        }
        let Frame {
            columns, lines, source, ..
        } = self;
        let frame_of = |columns: Vec<Column>, rows: &[u32]| Frame {
            columns,
            lines: rows.iter().map(|&r| lines[r as usize]).collect(),
            source: source.clone(),
            first_row: 0,
        };
        let (a, b): (Vec<Column>, Vec<Column>) = columns
            .into_par_iter()
            .map(|c| {
                let (x, y) = match c.data {
                    ColumnData::Numeric(v) => (
                        ColumnData::Numeric(first.iter().map(|&r| v[r as usize]).collect()),
                        ColumnData::Numeric(second.iter().map(|&r| v[r as usize]).collect()),
                    ),
                    ColumnData::Categorical(mut v) => (
                        ColumnData::Categorical(first.iter().map(|&r| v[r as usize].take()).collect()),
                        ColumnData::Categorical(second.iter().map(|&r| v[r as usize].take()).collect()),
                    ),
                };
                (
                    Column {
                        name: c.name.clone(),
                        data: x,
                    },
                    Column { name: c.name, data: y },
                )
            })
            .unzip();
        (frame_of(a, first), frame_of(b, second))
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
                        ColumnData::Numeric(v) => ColumnData::Numeric(v.split_off(start)),
                        ColumnData::Categorical(v) => ColumnData::Categorical(v.split_off(start)),
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
            Some(ColumnData::Numeric(v)) => Ok(v),
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

    /// The values of a numeric column, to change in place; an error if the column is missing or holds
    /// text (the state being applied was fitted on numbers).
    pub fn numeric_mut(&mut self, name: &str) -> Result<&mut Vec<f64>> {
        let idx = self.index_of(name).ok_or_else(|| self.missing_column(name))?;
        match &mut self.columns[idx].data {
            ColumnData::Numeric(v) => Ok(v),
            ColumnData::Categorical(_) => Err(Error::data(format!(
                "column \"{name}\" is text here but was numeric when fitted"
            ))),
        }
    }

    /// A text column with every train value present, as encoders need it.
    pub fn complete_categorical(&self, name: &str, step: &str) -> Result<&[Option<Arc<str>>]> {
        match self.column(name).map(|c| &c.data) {
            Some(ColumnData::Categorical(v)) => {
                if let Some(r) = v.iter().position(Option::is_none) {
                    return Err(Error::data(format!(
                        "column \"{name}\" has missing values in train (first at line {} of {}); {step} needs every value present",
                        self.lines[r], self.source
                    ))
                    .with_hint("impute it first, e.g. [[impute]] operator = \"constant\" with fill_value = \"Missing\""));
                }
                Ok(v)
            }
            Some(ColumnData::Numeric(_)) => Err(Error::internal(format!("{step} got the numeric column {name}"))),
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
        // Columns are encoded a few at a time on all cores, then hashed one after another in column
        // order: the digest is the same as a sequential encoding's.
        for group in self.columns.chunks(DIGEST_GROUP) {
            let encoded: Vec<(u64, Cow<'_, [u8]>)> = group.par_iter().map(encode_column).collect();
            for (col, (tag, bytes)) in group.iter().zip(encoded) {
                key = key.str(&col.name).u64(tag).u64(col.data.len() as u64).bytes(&bytes);
            }
        }
        key.finish()
    }
}

/// The one NaN a missing number is digested as.
const CANONICAL_NAN: u64 = 0x7ff8_0000_0000_0000;

/// Columns encoded at once while digesting (bounds the memory the encodings take).
const DIGEST_GROUP: usize = 8;

/// A column's type tag and value encoding for the frame digest (see docs/hashing.md). A numeric
/// column whose memory already is its encoding (little-endian, every NaN the canonical one) is
/// hashed in place, borrowed.
fn encode_column(col: &Column) -> (u64, Cow<'_, [u8]>) {
    match &col.data {
        ColumnData::Numeric(v) => {
            let canonical = |x: &f64| !x.is_nan() || x.to_bits() == CANONICAL_NAN;
            if cfg!(target_endian = "little") && v.iter().all(canonical) {
                return (0, Cow::Borrowed(v.as_bytes()));
            }
            let mut buf = Vec::with_capacity(v.len() * 8);
            for x in v {
                let bits = if x.is_nan() { CANONICAL_NAN } else { x.to_bits() };
                buf.extend_from_slice(&bits.to_le_bytes());
            }
            (0, Cow::Owned(buf))
        }
        ColumnData::Categorical(v) => {
            // Sized exactly first: growing a buffer of hundreds of megabytes copies it again and again.
            let size: usize = v.iter().map(|x| x.as_ref().map_or(1, |s| 9 + s.len())).sum();
            let mut buf = Vec::with_capacity(size);
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
            (1, Cow::Owned(buf))
        }
    }
}

/// A fast hasher for in-memory lookup tables (interning, pointer memos). Which order such a table
/// iterates in never reaches an output: they are only probed, or drained into ordered maps.
///
/// Its keys include text straight from a data file, so it must not let crafted values collide: it starts
/// from a per-process random seed and mixes every word in fully (murmur3's 64-bit finaliser, which
/// spreads each input bit over the whole word), so which values share a bucket depends on the secret
/// seed. (Unkeyed multiply-and-rotate hashing let 400,000 cells that differ only in their last bytes,
/// 3.6 MB of CSV, take 195 s to intern instead of 0.35 s.)
#[derive(Clone, Copy)]
pub struct FastHasher(u64);

impl std::hash::Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = mix64(self.0 ^ v);
    }

    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }
}

/// murmur3's `fmix64`: a bijection of `u64` in which every input bit changes every output bit with
/// probability about one half.
fn mix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

/// Builds [`FastHasher`]s from the process's random seed.
#[derive(Clone, Copy)]
pub struct FastState(u64);

impl Default for FastState {
    fn default() -> Self {
        static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
        // std's `RandomState` is keyed from the operating system's randomness; its hash of a constant is
        // a random word. (It decides only where values sit in a lookup table, never an output.)
        FastState(*SEED.get_or_init(|| {
            std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), "mlpipe")
        }))
    }
}

impl std::hash::BuildHasher for FastState {
    type Hasher = FastHasher;

    fn build_hasher(&self) -> FastHasher {
        FastHasher(self.0)
    }
}

pub type FastMap<K, V> = HashMap<K, V, FastState>;

/// Counts of each present text value, ordered by text. Equal texts in a column usually share one
/// allocation, so values are counted by pointer first and compared as text once per allocation.
pub fn category_counts(values: &[Option<Arc<str>>]) -> BTreeMap<&str, usize> {
    let mut by_pointer: FastMap<usize, (&str, usize)> = FastMap::default();
    for s in values.iter().flatten() {
        by_pointer
            .entry(Arc::as_ptr(s).cast::<u8>() as usize)
            .or_insert((&**s, 0))
            .1 += 1;
    }
    let mut counts = BTreeMap::new();
    for (text, n) in by_pointer.into_values() {
        *counts.entry(text).or_default() += n;
    }
    counts
}

/// Looks text values up in a table, once per distinct allocation.
pub struct Lookup<'t, T> {
    table: &'t BTreeMap<&'t str, T>,
    memo: FastMap<usize, Option<&'t T>>,
}

impl<'t, T> Lookup<'t, T> {
    pub fn new(table: &'t BTreeMap<&'t str, T>) -> Self {
        Lookup {
            table,
            memo: FastMap::default(),
        }
    }

    pub fn get(&mut self, value: &Arc<str>) -> Option<&'t T> {
        let table = self.table;
        *self
            .memo
            .entry(Arc::as_ptr(value).cast::<u8>() as usize)
            .or_insert_with(|| table.get(&**value))
    }
}

/// ` (e.g. "RL")`: the first present value of a text column, for messages.
pub fn text_example(values: &[Option<Arc<str>>]) -> String {
    values
        .iter()
        .flatten()
        .next()
        .map(|s| format!(" (e.g. \"{s}\")"))
        .unwrap_or_default()
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
    let field = field.trim_ascii();
    // Rust's parser is correctly rounded; it also accepts "inf"/"nan", which are text here.
    let first = *field.first()?;
    if !(first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.')) || !field.is_ascii() {
        return None;
    }
    std::str::from_utf8(field)
        .ok()?
        .parse::<f64>()
        .ok()
        .filter(|x| x.is_finite())
}

/// The most columns a CSV header may name. Reading is linear in the header's width, but every column
/// costs memory and time in each stage after it; a header wider than this is refused before any row is
/// read, with a message naming the count (docs/reliability.md, "Wide headers").
pub const MAX_COLUMNS: usize = 100_000;

/// The columns and types a fitted pipeline expects, for reading new rows (`predict`): the reader takes
/// each column's type from here instead of guessing it from the rows at hand, and reads only these.
pub struct Expected<'a> {
    pub schema: &'a [(String, ColumnType)],
    /// Schema columns that may be absent (the target, the id column).
    pub optional: &'a [&'a str],
}

/// How one column is typed while it is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Typing {
    /// Numeric when every present value parses as a finite number, categorical otherwise.
    Infer,
    /// Declared in the pipeline's `dtypes`.
    Declared(ColumnType),
    /// The type the fitted pipeline was trained on (`predict`).
    Fitted(ColumnType),
}

impl Typing {
    fn forced(self) -> Option<ColumnType> {
        match self {
            Typing::Infer => None,
            Typing::Declared(t) | Typing::Fitted(t) => Some(t),
        }
    }
}

/// Reads CSV bytes (training data: column types from `opts.dtypes`, else guessed from the values).
/// `source` names the file in errors.
pub fn read_csv(bytes: &[u8], opts: &ReadOptions, source: &str) -> Result<Frame> {
    read_csv_as(bytes, opts, None, source)
}

/// Reads new rows for a fitted pipeline: only the schema's columns, each with its fitted type, so a
/// batch whose categorical column happens to hold only numbers (or nothing) reads as the model expects.
/// A required column that is absent is an error naming it (with a did-you-mean over the header).
pub fn read_csv_expecting(bytes: &[u8], opts: &ReadOptions, expected: &Expected<'_>, source: &str) -> Result<Frame> {
    read_csv_as(bytes, opts, Some(expected), source)
}

/// The header's column names, checked: UTF-8, named, at most [`MAX_COLUMNS`], no name twice (found
/// with a hash set, so a wide header takes linear time).
fn header_names(header: &csv::ByteRecord, source: &str) -> Result<Vec<String>> {
    if header.len() > MAX_COLUMNS {
        return Err(Error::data(format!(
            "{source} has {} columns; mlpipe reads at most {MAX_COLUMNS}",
            header.len()
        ))
        .with_hint("keep the columns the pipeline needs (e.g. with `cut` or `xsv select`) and read that file"));
    }
    let mut names = Vec::with_capacity(header.len());
    // Keyed hashing (std's `RandomState`): crafted names cannot make the lookups collide.
    let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::with_capacity(header.len());
    for field in header {
        let name = std::str::from_utf8(field)
            .map_err(|_| Error::data(format!("{source}: the header is not UTF-8")))?
            .trim_start_matches('\u{feff}');
        if name.is_empty() {
            return Err(Error::data(format!(
                "{source}: column {} of the header has no name",
                names.len() + 1
            )));
        }
        if !seen.insert(name) {
            return Err(Error::data(format!(
                "{source}: column \"{name}\" appears twice in the header"
            )));
        }
        names.push(name.to_string());
    }
    if names.is_empty() {
        return Err(
            Error::data(format!("{source} has no header row")).with_hint("the first line must name the columns")
        );
    }
    Ok(names)
}

/// Which of the header's columns to read, in file order, and how to type each.
fn plan_columns<'n>(
    names: &'n [String],
    opts: &ReadOptions,
    expected: Option<&Expected<'_>>,
    source: &str,
) -> Result<Vec<(usize, &'n String, Typing)>> {
    let index: std::collections::HashMap<&str, usize> =
        names.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
    if let Some(expected) = expected {
        for (name, _) in expected.schema {
            if !index.contains_key(name.as_str()) && !expected.optional.contains(&name.as_str()) {
                let mut err = Error::data(format!(
                    "column \"{name}\" is missing from {source}; the fitted pipeline needs it"
                ));
                if let Some(h) = crate::error::did_you_mean(name, names.iter().map(String::as_str)) {
                    err = err.with_hint(h);
                }
                return Err(err.for_column(name));
            }
        }
        let types: std::collections::HashMap<&str, ColumnType> =
            expected.schema.iter().map(|(n, t)| (n.as_str(), *t)).collect();
        return Ok(names
            .iter()
            .enumerate()
            .filter_map(|(c, n)| types.get(n.as_str()).map(|t| (c, n, Typing::Fitted(*t))))
            .collect());
    }
    for (what, name) in opts
        .dtypes
        .keys()
        .map(|n| ("dtypes", n))
        .chain(opts.columns.iter().map(|n| ("columns", n)))
    {
        if !index.contains_key(name.as_str()) {
            let mut err = Error::data(format!("{what} names column \"{name}\", which is not in {source}"));
            if let Some(h) = crate::error::did_you_mean(name, names.iter().map(String::as_str)) {
                err = err.with_hint(h);
            }
            return Err(err);
        }
    }
    let keep: std::collections::HashSet<&str> = opts.columns.iter().map(String::as_str).collect();
    Ok(names
        .iter()
        .enumerate()
        .filter(|(_, n)| keep.is_empty() || keep.contains(n.as_str()))
        .map(|(c, n)| {
            let typing = opts.dtypes.get(n).map_or(Typing::Infer, |t| Typing::Declared(*t));
            (c, n, typing)
        })
        .collect())
}

fn read_csv_as(bytes: &[u8], opts: &ReadOptions, expected: Option<&Expected<'_>>, source: &str) -> Result<Frame> {
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
    let names = header_names(&header, source)?;
    drop(header);
    let wanted = plan_columns(&names, opts, expected, source)?;

    // Where the data starts, and on which line.
    let offset = usize::try_from(reader.position().byte())
        .unwrap_or(bytes.len())
        .min(bytes.len());
    let body = &bytes[offset..];
    let first_line = line_breaks(bytes, 0..offset) + 1;
    drop(reader);

    // Without quotes a record never spans lines, so the body can be cut at line ends and parsed on all
    // cores; with quotes it is parsed in one piece. Either way the frame is the same.
    let chunks = if memchr_quote(body) {
        vec![(0, body.len())]
    } else {
        line_chunks(body, 4 << 20)
    };
    let mut starts = Vec::with_capacity(chunks.len());
    let mut line = first_line;
    let mut prev = 0;
    for &(start, _) in &chunks {
        line += line_breaks(body, prev..start);
        starts.push(line);
        prev = start;
    }
    let n_fields = names.len();
    // Each piece is parsed and typed on its own (its records are dropped right after), then columns
    // are merged in file order. The first error in column order, then line order, is reported, as a
    // sequential reader would.
    let pieces = chunks
        .par_iter()
        .zip(starts.par_iter())
        .map(|(&(start, end), &first)| {
            let chunk = parse_chunk(&body[start..end], first, n_fields, opts.delimiter, source)?;
            let typed = wanted
                .iter()
                .map(|&(c, _, typing)| build_partial(&chunk, c, typing, opts))
                .collect::<Vec<_>>();
            Ok((chunk.lines, typed))
        })
        .collect::<Vec<Result<(Vec<u64>, Vec<Partial>)>>>()
        .into_iter()
        .collect::<Result<Vec<_>>>()?;
    let rows: usize = pieces.iter().map(|p| p.0.len()).sum();
    if rows > u32::MAX as usize {
        return Err(Error::data(format!(
            "{source} has more than {} rows, which mlpipe does not support",
            u32::MAX
        )));
    }
    let mut chunk_lines = Vec::with_capacity(pieces.len());
    // Transpose (moving, not copying) to one list of pieces per column.
    let mut by_column: Vec<Vec<Partial>> = (0..wanted.len()).map(|_| Vec::with_capacity(pieces.len())).collect();
    for (lines, typed) in pieces {
        chunk_lines.push(lines);
        for (k, piece) in typed.into_iter().enumerate() {
            by_column[k].push(piece);
        }
    }
    let reparse = |i: usize| {
        let (start, end) = chunks[i];
        parse_chunk(&body[start..end], starts[i], n_fields, opts.delimiter, source)
    };
    let columns = by_column
        .into_par_iter()
        .zip(wanted.par_iter())
        .map(|(pieces, &(c, name, typing))| {
            let column = Merge {
                chunk_lines: &chunk_lines,
                reparse: &reparse,
                rows,
                c,
                name,
                typing,
                opts,
                source,
            };
            column.merge(pieces)
        })
        .collect::<Vec<Result<Column>>>()
        .into_iter()
        .collect::<Result<Vec<Column>>>()?;
    let lines: Vec<u64> = chunk_lines.concat();
    Ok(Frame {
        columns,
        lines,
        source: source.to_string(),
        first_row: 0,
    })
}

fn is_missing(field: &[u8], opts: &ReadOptions) -> bool {
    field.is_empty() || opts.na_values.iter().any(|na| na.as_bytes() == field)
}

/// The line breaks in `bytes[range]`, as an editor counts them: `\n`, `\r\n` (one break) and a lone
/// `\r`. A `\r` at the end of the range whose `\n` lies just past it is counted with that `\n`, not here.
#[allow(clippy::naive_bytecount)] // fast enough: auto-vectorised, and not worth a dependency
fn line_breaks(bytes: &[u8], range: std::ops::Range<usize>) -> u64 {
    let slice = &bytes[range.clone()];
    let newlines = slice.iter().filter(|&&b| b == b'\n').count() as u64;
    if !slice.contains(&b'\r') {
        return newlines;
    }
    let next = |i: usize| bytes.get(range.start + i + 1).copied();
    let lone_cr = slice
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\r' && next(i) != Some(b'\n'))
        .count() as u64;
    newlines + lone_cr
}

fn memchr_quote(body: &[u8]) -> bool {
    body.contains(&b'"')
}

/// Cuts `body` into pieces of about `target` bytes that end at line ends.
fn line_chunks(body: &[u8], target: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < body.len() {
        let mut end = (start + target).min(body.len());
        if end < body.len() {
            end = body[end..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(body.len(), |p| end + p + 1);
        }
        out.push((start, end));
        start = end;
    }
    out
}

/// The records of one piece of the body, with their line numbers.
struct Chunk {
    records: Vec<csv::ByteRecord>,
    lines: Vec<u64>,
}

fn parse_chunk(piece: &[u8], first_line: u64, n_fields: usize, delimiter: u8, source: &str) -> Result<Chunk> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(piece);
    let mut records = Vec::new();
    let mut lines = Vec::new();
    let mut record = csv::ByteRecord::new();
    // Line numbers are counted here from byte offsets, as an editor counts lines: the csv crate counts
    // only `\n` and starts a record at the `\n` of a `\r\n` that ended the one before, so in a CRLF
    // file its line numbers name the line before.
    let mut lines_to = (0usize, first_line);
    let mut line_at = |byte: u64| {
        let mut start = usize::try_from(byte).unwrap_or(piece.len()).min(piece.len());
        // A record starts after the line breaks (and blank lines) the reader skipped.
        while start < piece.len() && matches!(piece[start], b'\r' | b'\n') {
            start += 1;
        }
        let (counted, line) = lines_to;
        let line = line + line_breaks(piece, counted.min(start)..start);
        lines_to = (start.max(counted), line);
        line
    };
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = line_at(e.position().map_or(0, csv::Position::byte));
                return Err(Error::data(format!("{source} is not valid CSV at line {line}: {e}"))
                    .with_hint("check the delimiter and quoting; every row needs as many fields as the header"));
            }
        }
        let line = line_at(record.position().map_or(0, csv::Position::byte));
        if record.len() != n_fields {
            return Err(Error::data(format!(
                "{source} is not valid CSV at line {line}: the row has {} fields, the header {n_fields}",
                record.len()
            ))
            .with_hint("check the delimiter and quoting; every row needs as many fields as the header"));
        }
        lines.push(line);
        records.push(record.clone());
    }
    Ok(Chunk { records, lines })
}

/// A column of one chunk: numbers while every value parses, else text; or where it failed.
enum Partial {
    Numeric(Vec<f64>),
    Text(Vec<Option<Arc<str>>>),
    /// A column declared numeric holds this text at this row of the chunk.
    NotNumeric(usize, String),
    /// A text value that is not UTF-8, at this row of the chunk.
    BadUtf8(usize),
}

/// Text values of a chunk's column, equal texts sharing one allocation; `Err(row)` at invalid UTF-8.
fn text_values(chunk: &Chunk, c: usize, opts: &ReadOptions) -> std::result::Result<Vec<Option<Arc<str>>>, usize> {
    let mut interned: FastMap<&[u8], Arc<str>> = FastMap::default();
    let mut out = Vec::with_capacity(chunk.records.len());
    for (r, rec) in chunk.records.iter().enumerate() {
        let field = &rec[c];
        if is_missing(field, opts) {
            out.push(None);
            continue;
        }
        if let Some(s) = interned.get(field) {
            out.push(Some(Arc::clone(s)));
            continue;
        }
        let text = std::str::from_utf8(field).map_err(|_| r)?;
        let s: Arc<str> = Arc::from(text);
        interned.insert(field, Arc::clone(&s));
        out.push(Some(s));
    }
    Ok(out)
}

fn text_partial(chunk: &Chunk, c: usize, opts: &ReadOptions) -> Partial {
    match text_values(chunk, c, opts) {
        Ok(v) => Partial::Text(v),
        Err(r) => Partial::BadUtf8(r),
    }
}

fn build_partial(chunk: &Chunk, c: usize, typing: Typing, opts: &ReadOptions) -> Partial {
    let forced = typing.forced();
    if forced != Some(ColumnType::Categorical) {
        let mut values = Vec::with_capacity(chunk.records.len());
        for (r, rec) in chunk.records.iter().enumerate() {
            let field = &rec[c];
            if is_missing(field, opts) {
                values.push(f64::NAN);
            } else if let Some(x) = parse_number(field) {
                values.push(x);
            } else if forced == Some(ColumnType::Numeric) {
                return Partial::NotNumeric(r, String::from_utf8_lossy(field).into_owned());
            } else {
                return text_partial(chunk, c, opts);
            }
        }
        return Partial::Numeric(values);
    }
    text_partial(chunk, c, opts)
}

/// One column's pieces and what is needed to join them.
struct Merge<'a> {
    chunk_lines: &'a [Vec<u64>],
    reparse: &'a (dyn Fn(usize) -> Result<Chunk> + Sync),
    rows: usize,
    c: usize,
    name: &'a str,
    typing: Typing,
    opts: &'a ReadOptions,
    source: &'a str,
}

impl Merge<'_> {
    /// Joins the pieces: numeric only if every piece is (a numeric piece of a text column is parsed
    /// again as text); invalid UTF-8, or text in a column forced numeric, is an error naming the line.
    fn merge(&self, pieces: Vec<Partial>) -> Result<Column> {
        let (name, source) = (self.name, self.source);
        for (lines, piece) in self.chunk_lines.iter().zip(&pieces) {
            if let Partial::NotNumeric(r, text) = piece {
                let line = lines[*r];
                return Err(if let Typing::Fitted(_) = self.typing {
                    Error::data(format!(
                        "column \"{name}\" must be numeric, but line {line} of {source} holds \"{text}\""
                    ))
                    .with_hint("fix the value, or mark it missing with one of the pipeline's na_values")
                    .for_column(name)
                } else {
                    Error::data(format!(
                        "column \"{name}\" is declared numeric, but line {line} of {source} holds \"{text}\""
                    ))
                    .with_hint(
                        "fix the value, add it to na_values if it marks a missing value, or declare the column categorical",
                    )
                });
            }
        }
        // (A file without rows has no pieces: its column is numeric unless forced to be text.)
        let numeric = self.typing.forced() != Some(ColumnType::Categorical)
            && pieces.iter().all(|p| matches!(p, Partial::Numeric(_)));
        let data = if numeric {
            let mut values = Vec::with_capacity(self.rows);
            for piece in &pieces {
                if let Partial::Numeric(v) = piece {
                    values.extend_from_slice(v);
                }
            }
            ColumnData::Numeric(values)
        } else {
            let mut values = Vec::with_capacity(self.rows);
            for (i, piece) in pieces.into_iter().enumerate() {
                let piece = if matches!(piece, Partial::Numeric(_)) {
                    text_partial(&(self.reparse)(i)?, self.c, self.opts)
                } else {
                    piece
                };
                match piece {
                    Partial::Text(v) => values.extend(v),
                    Partial::BadUtf8(r) => {
                        return Err(Error::data(format!(
                            "line {} of {source}: column \"{name}\" is not valid UTF-8",
                            self.chunk_lines[i][r]
                        ))
                        .with_hint("save the file as UTF-8")
                        .for_column(name));
                    }
                    Partial::Numeric(_) | Partial::NotNumeric(..) => {}
                }
            }
            ColumnData::Categorical(values)
        };
        Ok(Column {
            name: name.to_string(),
            data,
        })
    }
}

/// Makes `frame` fit a training schema: every schema column must be present; a numeric column that
/// arrived as text (because one value is not a number) is reported with the line and value.
pub fn conform_to_schema(frame: Frame, schema: &[(String, ColumnType)], optional: &[&str]) -> Result<Frame> {
    let mut out = Vec::with_capacity(schema.len());
    let Frame {
        columns,
        lines,
        source,
        first_row,
    } = frame;
    // Take columns out by name through an index (a record has ~100 columns; a search per column shows).
    let (names, mut slots): (Vec<String>, Vec<Option<ColumnData>>) =
        columns.into_iter().map(|c| (c.name, Some(c.data))).unzip();
    let mut index: FastMap<&str, usize> = FastMap::default();
    for (i, n) in names.iter().enumerate() {
        // The first of two equally named columns wins, as a search would find it.
        index.entry(n.as_str()).or_insert(i);
    }
    for (name, ty) in schema {
        let Some(data) = index.get(name.as_str()).and_then(|&i| slots[i].take()) else {
            if optional.contains(&name.as_str()) {
                continue;
            }
            let known: Vec<&str> = names
                .iter()
                .zip(&slots)
                .filter(|(_, s)| s.is_some())
                .map(|(n, _)| n.as_str())
                .collect();
            let mut err = Error::data(format!(
                "column \"{name}\" is missing from {source}; the fitted pipeline needs it"
            ));
            if let Some(h) = crate::error::did_you_mean(name, known) {
                err = err.with_hint(h);
            }
            return Err(err.for_column(name));
        };
        let data = match (data, ty) {
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
                                .with_hint("fix the value, or mark it missing with one of the pipeline's na_values")
                                .for_column(name));
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
        first_row,
    })
}

/// A number as JSON: integral values that fit exactly are written as integers ("1461", not "1461.0").
pub fn json_number(x: f64) -> serde_json::Value {
    #[allow(clippy::cast_possible_truncation)]
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        serde_json::Value::from(x as i64)
    } else {
        serde_json::Number::from_f64(x).map_or(serde_json::Value::Null, serde_json::Value::Number)
    }
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
    fn splitting_in_two_moves_the_same_values_take_copies() {
        let f = read_csv(b"a,b\n1,x\n2,y\n3,\n4,x\n", &opts(&[]), "t.csv").unwrap();
        let (train, test) = f.clone().into_two(&[3, 0], &[2]);
        assert_eq!(train, f.take(&[3, 0]));
        assert_eq!(test, f.take(&[2]));
        // A row in both lists is copied, not moved out twice.
        let (a, b) = f.clone().into_two(&[1, 2], &[2]);
        assert_eq!((a, b), (f.take(&[1, 2]), f.take(&[2])));
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

    /// A file large enough to be read in several pieces on several threads.
    fn big_csv(quoted_first: bool, last_b: &str) -> Vec<u8> {
        use std::fmt::Write as _;
        let mut s = String::from("a,b,c\n");
        for i in 0..600_000 {
            let a = if i == 0 && quoted_first {
                "\"0\"".to_string()
            } else {
                i.to_string()
            };
            let b = if i == 599_999 {
                last_b.to_string()
            } else {
                (i % 97).to_string()
            };
            let _ = writeln!(s, "{a},{b},{}", ["x", "y", "NA"][i % 3]);
        }
        s.into_bytes()
    }

    #[test]
    fn pieces_read_in_parallel_give_the_frame_of_one_sequential_read() {
        let o = opts(&["NA"]);
        let parallel = read_csv(&big_csv(false, "5"), &o, "t.csv").unwrap();
        let sequential = read_csv(&big_csv(true, "5"), &o, "t.csv").unwrap(); // quotes: one piece
        assert_eq!(parallel, sequential);
        assert_eq!(parallel.schema()[1].1, ColumnType::Numeric);
        assert_eq!(parallel.lines[599_999], 600_001);
        // Text in the last piece only makes the whole column text, earlier pieces included.
        let late_text = read_csv(&big_csv(false, "oops"), &o, "t.csv").unwrap();
        let ColumnData::Categorical(b) = &late_text.columns[1].data else {
            panic!("b should be text")
        };
        assert_eq!((b[0].as_deref(), b[599_999].as_deref()), (Some("0"), Some("oops")));
        assert_eq!(late_text, read_csv(&big_csv(true, "oops"), &o, "t.csv").unwrap());
    }

    #[test]
    fn a_forced_numeric_error_names_the_line_in_a_late_piece() {
        let mut o = opts(&["NA"]);
        o.dtypes.insert("b".into(), ColumnType::Numeric);
        let err = read_csv(&big_csv(false, "oops"), &o, "t.csv").unwrap_err();
        assert_eq!(
            err.to_string(),
            "column \"b\" is declared numeric, but line 600001 of t.csv holds \"oops\""
        );
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

    fn fitted(schema: &[(&str, ColumnType)]) -> Vec<(String, ColumnType)> {
        schema.iter().map(|(n, t)| ((*n).to_string(), *t)).collect()
    }

    #[test]
    fn a_batch_whose_categorical_column_is_all_missing_or_all_numbers_reads_as_categorical() {
        // `head -3 test.csv` of the shipped data: "Alley" is NA in both rows; the schema says text.
        let schema = fitted(&[
            ("Id", ColumnType::Numeric),
            ("Alley", ColumnType::Categorical),
            ("Code", ColumnType::Categorical),
            ("x", ColumnType::Numeric),
        ]);
        let expected = Expected {
            schema: &schema,
            optional: &["Id"],
        };
        let csv = b"Id,Alley,Code,x,extra\n1,NA,20,1.5,zzz\n2,NA,030,NA,yyy\n";
        let f = read_csv_expecting(csv, &opts(&["NA"]), &expected, "t.csv").unwrap();
        assert_eq!(
            f.column("Alley").unwrap().data,
            ColumnData::Categorical(vec![None, None])
        );
        // Numbers in a categorical column are kept as written ("030" stays "030").
        assert_eq!(
            f.column("Code").unwrap().data,
            ColumnData::Categorical(vec![Some(Arc::from("20")), Some(Arc::from("030"))])
        );
        assert_eq!(f.column("x").unwrap().data.column_type(), ColumnType::Numeric);
        // Only the schema's columns are read.
        assert!(f.column("extra").is_none());
        let conformed = conform_to_schema(f, &schema, &["Id"]).unwrap();
        assert_eq!(conformed.schema(), schema);
    }

    #[test]
    fn a_batch_missing_a_required_column_names_it_with_a_did_you_mean() {
        let schema = fitted(&[("Alley", ColumnType::Categorical), ("Id", ColumnType::Numeric)]);
        let expected = Expected {
            schema: &schema,
            optional: &["Id"],
        };
        let err = read_csv_expecting(b"alley\nx\n", &opts(&[]), &expected, "t.csv").unwrap_err();
        assert_eq!(
            err.to_string(),
            "column \"Alley\" is missing from t.csv; the fitted pipeline needs it"
        );
        assert_eq!(err.hint().as_deref(), Some("did you mean \"alley\"?"));
        assert_eq!(err.column(), Some("Alley"));
        // The optional id may be absent.
        read_csv_expecting(b"Alley\nx\n", &opts(&[]), &expected, "t.csv").unwrap();
    }

    #[test]
    fn text_in_a_fitted_numeric_column_names_the_line_and_value() {
        let schema = fitted(&[("a", ColumnType::Numeric)]);
        let expected = Expected {
            schema: &schema,
            optional: &[],
        };
        let err = read_csv_expecting(b"a\n1\nfoo\n", &opts(&[]), &expected, "new.csv").unwrap_err();
        assert_eq!(
            err.to_string(),
            "column \"a\" must be numeric, but line 3 of new.csv holds \"foo\""
        );
        assert_eq!(
            err.hint().as_deref(),
            Some("fix the value, or mark it missing with one of the pipeline's na_values")
        );
        assert_eq!(err.column(), Some("a"));
    }

    #[test]
    fn a_wide_header_is_checked_in_linear_time() {
        // 100,000 names took over 10 s with the quadratic duplicate check (30,000 took 1.7 s).
        let names: Vec<String> = (0..MAX_COLUMNS).map(|i| format!("c{i}")).collect();
        let header = names.join(",");
        let row = vec!["1"; MAX_COLUMNS].join(",");
        let csv = format!("{header}\n{row}\n");
        #[allow(clippy::disallowed_methods)]
        let started = std::time::Instant::now();
        let f = read_csv(csv.as_bytes(), &opts(&[]), "wide.csv").unwrap();
        assert_eq!(f.columns.len(), MAX_COLUMNS);
        let (header, row) = (&header[..header.rfind(',').unwrap()], &row[2..]);
        let dup = format!("{header},c5\n{row},1\n");
        let err = read_csv(dup.as_bytes(), &opts(&[]), "wide.csv").unwrap_err();
        let elapsed = started.elapsed();
        assert_eq!(err.to_string(), "wide.csv: column \"c5\" appears twice in the header");
        assert!(elapsed.as_secs_f64() < 5.0, "two wide headers took {elapsed:?}");
    }

    #[test]
    fn a_header_over_the_column_limit_is_refused_naming_the_count() {
        let header = (0..=MAX_COLUMNS).map(|i| format!("c{i}")).collect::<Vec<_>>().join(",");
        let err = read_csv(format!("{header}\n").as_bytes(), &opts(&[]), "wide.csv").unwrap_err();
        assert_eq!(
            err.to_string(),
            "wide.csv has 100001 columns; mlpipe reads at most 100000"
        );
    }

    #[test]
    fn crlf_rows_are_numbered_as_an_editor_numbers_them() {
        let f = read_csv(b"a,b\r\n1,x\r\n2,y\r\n", &opts(&[]), "t.csv").unwrap();
        assert_eq!(f.lines, vec![2, 3]);
        let err = read_csv(b"a,b\r\n1,2\r\n3\r\n", &opts(&[]), "t.csv").unwrap_err();
        assert_eq!(
            err.to_string(),
            "t.csv is not valid CSV at line 3: the row has 1 fields, the header 2"
        );
        let mut o = opts(&[]);
        o.dtypes.insert("a".into(), ColumnType::Numeric);
        let err = read_csv(b"a\r\n1\r\n\r\n2\r\nabc\r\n", &o, "t.csv").unwrap_err();
        assert_eq!(
            err.to_string(),
            "column \"a\" is declared numeric, but line 5 of t.csv holds \"abc\""
        );
        // A quoted field over two lines, blank lines, and lone CRs (old Mac files) count as an editor counts.
        let f = read_csv(b"a,b\r\n\"x\r\ny\",1\r\n\r\n\"z\",2\r\n", &opts(&[]), "t.csv").unwrap();
        assert_eq!(f.lines, vec![2, 5]);
        let f = read_csv(b"a,b\r1,x\r2,y\r", &opts(&[]), "t.csv").unwrap();
        assert_eq!(f.lines, vec![2, 3]);
        // LF files are numbered as before.
        let f = read_csv(b"a,b\n1,x\n\n2,y\n", &opts(&[]), "t.csv").unwrap();
        assert_eq!(f.lines, vec![2, 4]);
    }

    #[test]
    fn crlf_rows_in_a_late_parallel_piece_are_numbered_as_an_editor_numbers_them() {
        let lf = big_csv(false, "oops");
        let crlf = String::from_utf8(lf).unwrap().replace('\n', "\r\n").into_bytes();
        let mut o = opts(&["NA"]);
        o.dtypes.insert("b".into(), ColumnType::Numeric);
        let err = read_csv(&crlf, &o, "t.csv").unwrap_err();
        assert_eq!(
            err.to_string(),
            "column \"b\" is declared numeric, but line 600001 of t.csv holds \"oops\""
        );
        let f = read_csv(&crlf, &opts(&["NA"]), "t.csv").unwrap();
        assert_eq!((f.lines[0], f.lines[599_999]), (2, 600_001));
    }

    #[test]
    fn a_header_only_file_reads_categorical_columns_as_categorical() {
        let schema = fitted(&[("a", ColumnType::Numeric), ("c", ColumnType::Categorical)]);
        let expected = Expected {
            schema: &schema,
            optional: &[],
        };
        let f = read_csv_expecting(b"a,c\n", &opts(&[]), &expected, "t.csv").unwrap();
        assert_eq!(f.schema(), schema);
        let mut o = opts(&[]);
        o.dtypes.insert("c".into(), ColumnType::Categorical);
        assert_eq!(read_csv(b"a,c\n", &o, "t.csv").unwrap().schema(), schema);
    }

    #[test]
    fn text_cells_crafted_to_collide_in_the_interning_table_are_read_in_linear_time() {
        // 400,000 distinct 8-byte cells that differ only in their last bytes: with the unkeyed hasher they
        // all fell into one bucket run and took 195 s to read (0.35 s for as many ordinary cells).
        let mut csv = String::from("c\n");
        let digits = (0x30u8..0x7b).map(char::from).collect::<Vec<_>>();
        'fill: for a in &digits {
            for b in &digits {
                for c in &digits {
                    for d in &digits[..5] {
                        csv.extend(['a', 'b', 'c', 'd', *a, *b, *c, *d, '\n']);
                        if csv.len() >= 9 * 400_000 {
                            break 'fill;
                        }
                    }
                }
            }
        }
        #[allow(clippy::disallowed_methods)]
        let started = std::time::Instant::now();
        let f = read_csv(csv.as_bytes(), &opts(&[]), "flood.csv").unwrap();
        let elapsed = started.elapsed();
        assert_eq!(f.n_rows(), 400_000);
        assert!(elapsed.as_secs_f64() < 10.0, "reading took {elapsed:?}");
    }
}
