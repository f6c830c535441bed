//! CSV bytes to a frame: read options, header checks, which columns to read and how each is typed
//! (inferred from the values, declared in the pipeline, or a fitted pipeline's schema for `predict`).

use std::collections::BTreeMap;

use rayon::prelude::*;

use serde::{Deserialize, Serialize};

use super::csv_pieces::{Chunk, Merge, Partial, build_partial, line_breaks, line_chunks, memchr_quote, parse_chunk};
use super::{Column, ColumnType, Frame};
use crate::error::{Error, Result};

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

/// A CSV field as a number: a finite decimal number (surrounding ASCII spaces allowed); `None` otherwise.
pub fn parse_number(field: &[u8]) -> Option<f64> {
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
pub(super) enum Typing {
    /// Numeric when every present value parses as a finite number, categorical otherwise.
    Infer,
    /// Declared in the pipeline's `dtypes`.
    Declared(ColumnType),
    /// The type the fitted pipeline was trained on (`predict`).
    Fitted(ColumnType),
}

impl Typing {
    pub(super) fn forced(self) -> Option<ColumnType> {
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

/// Where the rows of a CSV file are: its columns (checked), the ones to read, and the body cut into
/// pieces at line ends (byte ranges of the whole file) with the line each piece starts on.
struct Layout {
    n_fields: usize,
    wanted: Vec<(usize, String, Typing)>,
    chunks: Vec<(usize, usize)>,
    starts: Vec<u64>,
}

/// Bytes a piece of the body holds, about.
const PIECE_BYTES: usize = 4 << 20;

fn layout(
    bytes: &[u8],
    opts: &ReadOptions,
    expected: Option<&Expected<'_>>,
    source: &str,
    piece_bytes: usize,
) -> Result<Layout> {
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
    let wanted = plan_columns(&names, opts, expected, source)?
        .into_iter()
        .map(|(c, name, typing)| (c, name.clone(), typing))
        .collect();

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
        line_chunks(body, piece_bytes)
    };
    let mut starts = Vec::with_capacity(chunks.len());
    let mut line = first_line;
    let mut prev = 0;
    for &(start, _) in &chunks {
        line += line_breaks(body, prev..start);
        starts.push(line);
        prev = start;
    }
    Ok(Layout {
        n_fields: names.len(),
        wanted,
        chunks: chunks.into_iter().map(|(a, b)| (a + offset, b + offset)).collect(),
        starts,
    })
}

impl Layout {
    /// Piece `i` of `bytes` as records.
    fn chunk(&self, bytes: &[u8], i: usize, opts: &ReadOptions, source: &str) -> Result<Chunk> {
        let (start, end) = self.chunks[i];
        parse_chunk(
            &bytes[start..end],
            self.starts[i],
            self.n_fields,
            opts.delimiter,
            source,
        )
    }

    /// Piece `i` parsed and typed column by column (its records are dropped right after).
    fn piece(&self, bytes: &[u8], i: usize, opts: &ReadOptions, source: &str) -> Result<(Vec<u64>, Vec<Partial>)> {
        let chunk = self.chunk(bytes, i, opts, source)?;
        let typed = self
            .wanted
            .iter()
            .map(|&(c, _, typing)| build_partial(&chunk, c, typing, opts))
            .collect::<Vec<_>>();
        Ok((chunk.lines, typed))
    }

    /// The frame from every piece, in file order: columns merged on all cores. `reparse(i)` gives piece
    /// `i`'s records again (for a column that turned out to be text after some pieces typed it numeric).
    fn assemble(
        &self,
        pieces: Vec<(Vec<u64>, Vec<Partial>)>,
        reparse: &(dyn Fn(usize) -> Result<Chunk> + Sync),
        opts: &ReadOptions,
        source: &str,
    ) -> Result<Frame> {
        let rows: usize = pieces.iter().map(|p| p.0.len()).sum();
        if rows > u32::MAX as usize {
            return Err(Error::data(format!(
                "{source} has more than {} rows, which mlpipe does not support",
                u32::MAX
            )));
        }
        let mut chunk_lines = Vec::with_capacity(pieces.len());
        // Transpose (moving, not copying) to one list of pieces per column.
        let mut by_column: Vec<Vec<Partial>> = (0..self.wanted.len())
            .map(|_| Vec::with_capacity(pieces.len()))
            .collect();
        for (lines, typed) in pieces {
            chunk_lines.push(lines);
            for (k, piece) in typed.into_iter().enumerate() {
                by_column[k].push(piece);
            }
        }
        let columns = by_column
            .into_par_iter()
            .zip(self.wanted.par_iter())
            .map(|(pieces, (c, name, typing))| {
                let column = Merge {
                    chunk_lines: &chunk_lines,
                    reparse,
                    rows,
                    c: *c,
                    name,
                    typing: *typing,
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
}

fn read_csv_as(bytes: &[u8], opts: &ReadOptions, expected: Option<&Expected<'_>>, source: &str) -> Result<Frame> {
    let layout = layout(bytes, opts, expected, source, PIECE_BYTES)?;
    // The first error in column order, then line order, is reported, as a sequential reader would.
    let pieces = (0..layout.chunks.len())
        .into_par_iter()
        .map(|i| layout.piece(bytes, i, opts, source))
        .collect::<Vec<Result<_>>>()
        .into_iter()
        .collect::<Result<Vec<_>>>()?;
    layout.assemble(pieces, &|i| layout.chunk(bytes, i, opts, source), opts, source)
}

/// What [`read_csv_releasing`] gives.
pub enum Released {
    Frame(Frame),
    /// The bytes are needed again, whole: a column typed numeric in pieces already let go turned out
    /// to be text, or a piece is not valid CSV (the first error in file order is found by [`read_csv`]).
    NeedsBytesAgain,
}

/// Pieces parsed per wave, per core: the bytes behind a wave are let go when it ends, so a wave is kept
/// small (a few pieces a core, to even out their parse times).
const PIECES_PER_WAVE: usize = 2;

/// As [`read_csv`], letting the bytes go as it reads: the pieces are parsed from the end of the file
/// backwards, a wave at a time, and the bytes behind each wave are given back to the system, so the
/// file's bytes and its parsed columns are never held in full at once (at a million rows: 0.3 GB less).
/// The frame is the one [`read_csv`] gives.
pub fn read_csv_releasing(bytes: Vec<u8>, opts: &ReadOptions, source: &str) -> Result<Released> {
    read_releasing(
        bytes,
        opts,
        source,
        PIECE_BYTES,
        PIECES_PER_WAVE * rayon::current_num_threads().max(1),
    )
}

fn read_releasing(
    mut bytes: Vec<u8>,
    opts: &ReadOptions,
    source: &str,
    piece_bytes: usize,
    per_wave: usize,
) -> Result<Released> {
    let layout = layout(&bytes, opts, None, source, piece_bytes)?;
    let mut waves = Vec::new();
    let mut end = layout.chunks.len();
    while end > 0 {
        let begin = end.saturating_sub(per_wave.max(1));
        let wave = (begin..end)
            .into_par_iter()
            .map(|i| layout.piece(&bytes, i, opts, source))
            .collect::<Vec<Result<_>>>();
        let Ok(wave) = wave.into_iter().collect::<Result<Vec<_>>>() else {
            return Ok(Released::NeedsBytesAgain);
        };
        waves.push(wave);
        bytes.truncate(layout.chunks[begin].0);
        bytes.shrink_to_fit();
        end = begin;
    }
    drop(bytes);
    let pieces: Vec<_> = waves.into_iter().rev().flatten().collect();
    let needed_again = std::sync::atomic::AtomicBool::new(false);
    let gone = |_| {
        needed_again.store(true, std::sync::atomic::Ordering::Relaxed);
        Err(Error::internal("piece let go"))
    };
    match layout.assemble(pieces, &gone, opts, source) {
        _ if needed_again.load(std::sync::atomic::Ordering::Relaxed) => Ok(Released::NeedsBytesAgain),
        Ok(frame) => Ok(Released::Frame(frame)),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::frame::tests::opts;
    use crate::frame::{ColumnData, Texts, conform_to_schema};

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
        assert_eq!((b.get(0), b.get(599_999)), (Some("0"), Some("oops")));
        assert_eq!(late_text, read_csv(&big_csv(true, "oops"), &o, "t.csv").unwrap());
    }

    #[test]
    fn a_read_that_lets_its_bytes_go_gives_the_same_frame_or_asks_for_them_again() {
        let o = opts(&["NA"]);
        let releasing = |bytes: Vec<u8>| read_releasing(bytes, &o, "t.csv", 64 << 10, 3).unwrap();
        // Many pieces, several waves: the frame of the whole read.
        let Released::Frame(f) = releasing(big_csv(false, "5")) else {
            panic!("a clean file reads in one go")
        };
        assert_eq!(f, read_csv(&big_csv(false, "5"), &o, "t.csv").unwrap());
        assert_eq!(f.lines[599_999], 600_001);
        // A column whose pieces were typed numeric before text turned up needs the bytes again
        // (whether the text is in the first piece read or the last), and so does a malformed row
        // (the first error in file order is found by reading the whole file).
        assert!(matches!(releasing(big_csv(false, "oops")), Released::NeedsBytesAgain));
        let mut early_text = big_csv(false, "5");
        early_text.splice(6..7, *b"z");
        assert!(read_csv(&early_text, &o, "t.csv").unwrap().schema()[0].1 == ColumnType::Categorical);
        assert!(matches!(releasing(early_text), Released::NeedsBytesAgain));
        // A text column all missing in its early pieces (one added partway through a file's history) is
        // not mixed: no second read.
        let late_column: Vec<u8> = String::from_utf8(big_csv(false, "5"))
            .unwrap()
            .lines()
            .enumerate()
            .map(|(i, l)| match l.rsplit_once(',') {
                Some((head, _)) if i > 0 && i < 590_000 => format!("{head},\n"),
                _ => format!("{l}\n"),
            })
            .collect::<String>()
            .into_bytes();
        let whole = read_csv(&late_column, &o, "t.csv").unwrap();
        assert_eq!(whole.schema()[2].1, ColumnType::Categorical);
        let Released::Frame(f) = releasing(late_column) else {
            panic!("a column missing in its early pieces needs no second read")
        };
        assert_eq!(f, whole);
        let mut short_row = big_csv(false, "5");
        let at = short_row.len() / 2;
        let line_end = at + short_row[at..].iter().position(|&b| b == b'\n').unwrap();
        short_row.insert(line_end, b',');
        assert!(read_csv(&short_row, &o, "t.csv").is_err());
        assert!(matches!(releasing(short_row), Released::NeedsBytesAgain));
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
            ColumnData::Categorical(Texts::from_values([None::<&str>, None]))
        );
        // Numbers in a categorical column are kept as written ("030" stays "030").
        assert_eq!(
            f.column("Code").unwrap().data,
            ColumnData::Categorical(Texts::from_values([Some("20"), Some("030")]))
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
}
