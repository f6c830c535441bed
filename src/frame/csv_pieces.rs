//! The body of a CSV file in pieces: cut at line ends, each piece parsed and typed on its own core
//! (with line numbers as an editor counts them), then each column's pieces merged in file order.

use std::sync::Arc;

use super::csv_read::{ReadOptions, Typing, parse_number};
use super::{Column, ColumnData, ColumnType, FastMap, Numbers, Texts};
use crate::error::{Error, Result};

fn is_missing(field: &[u8], opts: &ReadOptions) -> bool {
    field.is_empty() || opts.na_values.iter().any(|na| na.as_bytes() == field)
}

/// The line breaks in `bytes[range]`, as an editor counts them: `\n`, `\r\n` (one break) and a lone
/// `\r`. A `\r` at the end of the range whose `\n` lies just past it is counted with that `\n`, not here.
#[allow(clippy::naive_bytecount)] // fast enough: auto-vectorised, and not worth a dependency
pub(super) fn line_breaks(bytes: &[u8], range: std::ops::Range<usize>) -> u64 {
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

pub(super) fn memchr_quote(body: &[u8]) -> bool {
    body.contains(&b'"')
}

/// Cuts `body` into pieces of about `target` bytes that end at line ends.
pub(super) fn line_chunks(body: &[u8], target: usize) -> Vec<(usize, usize)> {
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
pub(super) struct Chunk {
    records: Vec<csv::ByteRecord>,
    pub(super) lines: Vec<u64>,
}

pub(super) fn parse_chunk(
    piece: &[u8],
    first_line: u64,
    n_fields: usize,
    delimiter: u8,
    source: &str,
) -> Result<Chunk> {
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
pub(super) enum Partial {
    Numeric(Vec<f64>),
    Text(Texts),
    /// A column declared numeric holds this text at this row of the chunk.
    NotNumeric(usize, String),
    /// A text value that is not UTF-8, at this row of the chunk.
    BadUtf8(usize),
}

/// Text values of a chunk's column, dictionary-coded; `Err(row)` at invalid UTF-8. Each distinct
/// value is checked and copied once, when first met.
fn text_values(chunk: &Chunk, c: usize, opts: &ReadOptions) -> std::result::Result<Texts, usize> {
    let mut first_seen: FastMap<&[u8], u32> = FastMap::default();
    let mut met: Vec<Arc<str>> = Vec::new();
    let mut codes: Vec<Option<u32>> = Vec::with_capacity(chunk.records.len());
    for (r, rec) in chunk.records.iter().enumerate() {
        let field = &rec[c];
        if is_missing(field, opts) {
            codes.push(None);
            continue;
        }
        if let Some(&code) = first_seen.get(field) {
            codes.push(Some(code));
            continue;
        }
        let text = std::str::from_utf8(field).map_err(|_| r)?;
        let code = u32::try_from(met.len()).unwrap_or(u32::MAX);
        first_seen.insert(field, code);
        met.push(Arc::from(text));
        codes.push(Some(code));
    }
    Ok(Texts::from_met(codes, &met))
}

fn text_partial(chunk: &Chunk, c: usize, opts: &ReadOptions) -> Partial {
    match text_values(chunk, c, opts) {
        Ok(v) => Partial::Text(v),
        Err(r) => Partial::BadUtf8(r),
    }
}

pub(super) fn build_partial(chunk: &Chunk, c: usize, typing: Typing, opts: &ReadOptions) -> Partial {
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
pub(super) struct Merge<'a> {
    pub(super) chunk_lines: &'a [Vec<u64>],
    pub(super) reparse: &'a (dyn Fn(usize) -> Result<Chunk> + Sync),
    pub(super) rows: usize,
    pub(super) c: usize,
    pub(super) name: &'a str,
    pub(super) typing: Typing,
    pub(super) opts: &'a ReadOptions,
    pub(super) source: &'a str,
}

impl Merge<'_> {
    /// Joins the pieces: numeric only if every piece is (a numeric piece of a text column is parsed
    /// again as text); invalid UTF-8, or text in a column forced numeric, is an error naming the line.
    pub(super) fn merge(&self, pieces: Vec<Partial>) -> Result<Column> {
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
            ColumnData::Numeric(Numbers::from_vec(values))
        } else {
            let mut values = Vec::with_capacity(pieces.len());
            for (i, piece) in pieces.into_iter().enumerate() {
                let piece = match piece {
                    // Every field missing: the same as text, without reading the piece again (a column
                    // that starts partway through a file is all missing in its early pieces).
                    Partial::Numeric(v) if v.iter().all(|x| x.is_nan()) => {
                        Partial::Text(Texts::from_values(std::iter::repeat_n(None::<&str>, v.len())))
                    }
                    Partial::Numeric(_) => text_partial(&(self.reparse)(i)?, self.c, self.opts),
                    other => other,
                };
                match piece {
                    Partial::Text(v) => values.push(v),
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
            ColumnData::Categorical(Texts::concat(&values))
        };
        Ok(Column {
            name: name.to_string(),
            data,
        })
    }
}
