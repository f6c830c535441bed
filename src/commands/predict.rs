//! `mlpipe predict HASH`: apply a run's fitted pipeline (every fitted step, then the model) to new rows.
//! Loads fitted state only; never fits.
//!
//! Batch: a CSV, NDJSON or Parquet file (or standard input) in; a file, standard output, a SQLite or a
//! PostgreSQL table out. Stream (`--stream`): NDJSON records on standard input, one NDJSON prediction per
//! line on standard output, flushed per line; a bad line yields an error record and the stream goes on.
//! Every prediction is recorded in the ledger before it is handed out.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::PathBuf;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::digest::Id;
use crate::error::{Error, Result};
use crate::ledger::{self, Channel, Entry, Input, LedgerWriter};
use crate::predictor::{Made, Scorer, prediction_record, single_value};
use crate::provenance::{self, PredictionRecord};
use crate::store::{LocalStore, RefKind, Store};
use crate::tables::{self, Format, OutputRows, Target};

pub struct PredictArgs {
    pub run: String,
    /// A file, or `-` for standard input.
    pub input: PathBuf,
    pub input_format: Option<Format>,
    /// A file, `-`, `sqlite:PATH` or `postgres://…`; standard output (CSV) when absent.
    pub output: Option<String>,
    pub output_format: Option<Format>,
    pub table: Option<String>,
    /// Ledger database URL; the store's SQLite ledger when absent.
    pub ledger: Option<String>,
    pub store: PathBuf,
    /// `--stream`: the longest line taken, in bytes (its line break not counted); a longer line is
    /// answered with an error record, read past without being held in memory, and the stream goes on.
    pub max_line: usize,
}

/// The default of `--max-line`: as large as the REST server's default body limit (`--max-body`).
pub const DEFAULT_MAX_LINE: usize = 1 << 20;

#[derive(Debug, Serialize)]
pub struct PredictReport {
    pub prediction: Id,
    pub run: Id,
    pub model: Id,
    pub input: Id,
    pub output: Id,
    pub rows: usize,
    /// Rows new to the target (a database skips prediction ids it already holds).
    pub written: usize,
    pub target: String,
    /// Where the time went, in seconds: read (and parse) the input, score, store, write, ledger.
    pub seconds: BTreeMap<&'static str, f64>,
    /// True when the predictions went to standard output (nothing else may be printed there).
    #[serde(skip)]
    pub to_stdout: bool,
}

/// The process's standard input and output, handed in by the CLI: the library never opens them itself,
/// so a caller (a test, a notebook binding) can give any reader and writer.
pub struct Stdio<'a> {
    pub input: &'a mut dyn BufRead,
    pub output: &'a mut dyn Write,
}

fn read_input(path: &std::path::Path, stdin: &mut dyn BufRead) -> Result<(Id, Vec<u8>, String)> {
    if path.as_os_str() == "-" {
        let mut bytes = Vec::new();
        stdin
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io("read", "standard input", e))?;
        Ok((Id::of_bytes(&bytes), bytes, "standard input".into()))
    } else {
        let (id, bytes) = super::read_snapshot(path)?;
        Ok((id, bytes, path.display().to_string()))
    }
}

/// Wall-clock phases of a batch, for the report only (never part of an artifact).
struct Phases {
    last: std::time::Instant,
    seconds: BTreeMap<&'static str, f64>,
}

impl Phases {
    #[allow(clippy::disallowed_methods)] // timing for the report; no artifact sees it
    fn start() -> Phases {
        Phases {
            last: std::time::Instant::now(),
            seconds: BTreeMap::new(),
        }
    }

    #[allow(clippy::disallowed_methods)] // timing for the report; no artifact sees it
    fn done(&mut self, phase: &'static str) {
        let now = std::time::Instant::now();
        *self.seconds.entry(phase).or_default() += (now - self.last).as_secs_f64();
        self.last = now;
    }
}

pub fn run(args: &PredictArgs, stdio: &mut Stdio<'_>) -> Result<PredictReport> {
    let mut phases = Phases::start();
    let store = LocalStore::open(&args.store)?;
    let _lock = store.lock(false)?;
    let record = super::resolve_run(&store, &args.run)?;
    let scorer = Scorer::load(&store, &record)?;
    let target = Target::parse(
        args.output.as_deref().unwrap_or("-"),
        args.table.as_deref(),
        args.output_format,
    )?;
    // An output in the store (`-o artifacts/ledger.sqlite`) would replace the store's own files.
    target.refuse_inside_store(store.root())?;
    target.refuse_over_ledger(store.root(), args.ledger.as_deref())?;
    let ledger = LedgerWriter::start(ledger::open(store.root(), args.ledger.as_deref())?);
    phases.done("load");
    let (input_id, input, name) = read_input(&args.input, stdio.input)?;
    let format = args
        .input_format
        .or_else(|| Format::of_path(&args.input))
        .unwrap_or(Format::Csv);
    let frame = crate::predictor::input::read_input(&scorer, &input, format, &name)?;
    if frame.n_rows() == 0 {
        return Err(
            Error::data(format!("{name} holds no rows to predict")).with_hint(format!(
                "pass a {} file with a header and at least one row",
                format.name()
            )),
        );
    }
    phases.done("read");
    let ids = scorer.ids(&frame);
    let predictions = scorer.score(frame)?;
    phases.done("score");
    let prediction = scorer.prediction_id(&input_id);
    // The order hands nothing out unrecorded and leaves a store `verify` finds clean at every point a
    // kill can land: the objects and the prediction ref first (a ref the ledger does not name yet is
    // consistent; a ledger entry whose ref is missing is not), then the ledger entry, committed; only then
    // are the predictions written. A ledger that refuses the append takes the ref back out: it leaves no
    // output, no table rows and no prediction ref (only unreferenced objects, which `gc` removes).
    store.put_with_id(&input_id, &input)?;
    let bits = predictions.to_bytes();
    let output = store.put(&bits)?;
    // A record is written once (it carries the time it was first made); again only if it was lost or
    // damaged, and then the damaged one is removed.
    let existing = match store.read_ref(RefKind::Prediction, &prediction)? {
        crate::store::RefRead::Target(rec) => Some(rec),
        crate::store::RefRead::Missing => None,
        // A damaged ref is moved aside (never deleted); the record is written again below.
        crate::store::RefRead::Damaged(d) => {
            store.quarantine(&d.path)?;
            None
        }
    };
    // A ref to another prediction's record (copied over) counts as damaged too; only a corrupt object is
    // removed below, never another prediction's record.
    let damaged = existing.filter(|rec| {
        !matches!(
            super::load_json::<PredictionRecord>(&store, rec, "prediction record"),
            Ok(p) if super::check_prediction_record(&prediction, &p).is_ok()
        )
    });
    let new_record = if existing.is_none() || damaged.is_some() {
        let rec = PredictionRecord {
            kind: "prediction".into(),
            format: 2,
            prediction,
            run: record.run,
            model: scorer.model,
            input: input_id,
            input_format: format.name().into(),
            output,
            rows: predictions.len(),
            source: name.clone(),
            created: provenance::now_rfc3339(),
        };
        let rec_id = store.put(&serde_json::to_vec(&rec).map_err(|e| Error::internal(e.to_string()))?)?;
        store.set_ref(RefKind::Prediction, &prediction, &rec_id)?;
        Some(rec_id)
    } else {
        None
    };
    phases.done("store");
    let entry = Entry {
        seq: 0,
        prediction,
        run: record.run,
        model: scorer.model,
        input: input_id,
        input_format: format.name().into(),
        output,
        rows: predictions.len() as u64,
        value: single_value(&predictions),
        channel: Channel::Batch,
        role: "champion".into(),
        pair: None,
        time: provenance::now_rfc3339_micros(),
        source: name,
    };
    let appended = ledger.append(vec![entry], Vec::new()).wait();
    ledger.close();
    phases.done("ledger");
    if let Err(refused) = appended {
        if new_record.is_some() {
            store.remove_ref(RefKind::Prediction, &prediction)?;
        }
        return Err(refused);
    }
    if let Some(rec_id) = new_record
        && let Some(old) = damaged.filter(|old| *old != rec_id && matches!(store.get(old), Err(Error::Corrupt { .. })))
    {
        store.remove_object(&old)?;
    }
    let (prediction_column, extra) = scorer.output_columns(&predictions);
    let rows = OutputRows {
        id_name: scorer.id_column.as_deref(),
        ids,
        prediction: prediction_column,
        extra,
        model: scorer.model.hex(),
        batch: prediction.hex(),
    };
    let written = tables::write_output(&target, &rows, stdio.output)?;
    phases.done("write");
    Ok(PredictReport {
        prediction,
        run: record.run,
        model: scorer.model,
        input: input_id,
        output,
        rows: predictions.len(),
        written,
        target: target.describe(),
        seconds: phases.seconds,
        to_stdout: matches!(target, Target::Stdout { .. }),
    })
}

#[derive(Debug, Default, Serialize)]
pub struct StreamReport {
    pub lines: u64,
    pub predictions: u64,
    pub errors: u64,
}

/// An error record for a line (or request) that could not be scored.
pub fn error_record(error: &Error, field: Option<&str>, kind: &str) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("kind".into(), Value::String(kind.into()));
    body.insert("message".into(), Value::String(error.to_string()));
    if let Some(f) = field {
        body.insert("field".into(), Value::String(f.into()));
    }
    if let Some(h) = error.hint() {
        body.insert("hint".into(), Value::String(h));
    }
    body
}

/// A record that could not be scored, and the field at fault when known.
pub type RecordFailure = (Error, Option<String>);

/// Scores one JSON record: returns the ledger entry, its input and the output record.
/// `line`: the record's line on standard input, for messages; `source` is what the ledger records.
pub fn score_record(
    scorer: &Scorer,
    map: &Map<String, Value>,
    channel: Channel,
    source: &str,
    line: u64,
) -> std::result::Result<(Entry, Input, Map<String, Value>), RecordFailure> {
    let mut records = scorer.decode_records(&[map], source).map_err(|e| {
        let field = e.field().map(str::to_string);
        (e.error, field)
    })?;
    records.frame.lines = vec![line];
    records.frame.source = "standard input".into();
    let body = records.canonical.into_iter().next().unwrap_or_default();
    let id_value = scorer.id_column.as_deref().and_then(|c| map.get(c)).cloned();
    let predictions = scorer.score(records.frame).map_err(|e| {
        let field = e.column().map(str::to_string);
        (e, field)
    })?;
    let input = Id::of_bytes(&body);
    let time = provenance::now_rfc3339_micros();
    let entry = scorer.record_entry(input, &predictions, channel, Made { time: &time, source }, None);
    let out = prediction_record(scorer, id_value, &predictions, &entry.prediction);
    Ok((entry, Input { id: input, body }, out))
}

/// `predict --stream`: NDJSON in, NDJSON out, one line per line, until end of input.
pub fn stream(args: &PredictArgs, stdio: &mut Stdio<'_>) -> Result<StreamReport> {
    let store = LocalStore::open(&args.store)?;
    let record = {
        let _lock = store.lock(false)?;
        super::resolve_run(&store, &args.run)?
    };
    let scorer = Scorer::load(&store, &record)?;
    let ledger = LedgerWriter::start(ledger::open(store.root(), args.ledger.as_deref())?);
    let Stdio { input, output: out } = stdio;
    let (input, out) = (&mut **input, &mut **out);
    let mut report = StreamReport::default();
    let mut line = Vec::new();
    loop {
        let read =
            read_line_bounded(input, &mut line, args.max_line).map_err(|e| Error::io("read", "standard input", e))?;
        let mut kind = "invalid_record";
        let result = match read {
            LineRead::End => break,
            LineRead::Line => {
                report.lines += 1;
                let text = line.trim_ascii();
                if text.is_empty() {
                    continue;
                }
                Ok(text)
            }
            LineRead::TooLong(length) => {
                report.lines += 1;
                kind = "line_too_long";
                Err((
                    Error::data(format!(
                        "line {} is {length} bytes long, over the limit of {} bytes; it was skipped",
                        report.lines, args.max_line
                    ))
                    .with_hint("send one record per line, smaller; or raise the limit with --max-line BYTES"),
                    None,
                ))
            }
        };
        let source = format!("stdin line {}", report.lines);
        let result = match result.map(serde_json::from_slice::<Value>) {
            Err(failure) => Err(failure),
            Ok(Ok(Value::Object(map))) => score_record(&scorer, &map, Channel::Stream, &source, report.lines),
            Ok(Ok(_)) => Err((
                Error::data("the line is not a JSON object")
                    .with_hint("write one record per line, as {\"column\": value, …}"),
                None,
            )),
            Ok(Err(e)) => Err((
                Error::data(format!("the line is not valid JSON: {e}")).with_hint("write one JSON record per line"),
                None,
            )),
        };
        let record = match result {
            Ok((entry, input, record)) => {
                ledger.append(vec![entry], vec![input]).wait()?;
                report.predictions += 1;
                record
            }
            Err((error, field)) => {
                report.errors += 1;
                let mut rec = Map::new();
                rec.insert("line".into(), Value::from(report.lines));
                rec.insert(
                    "error".into(),
                    Value::Object(error_record(&error, field.as_deref(), kind)),
                );
                rec
            }
        };
        let mut encoded = serde_json::to_vec(&record).map_err(|e| Error::internal(e.to_string()))?;
        encoded.push(b'\n');
        match out.write_all(&encoded).and_then(|()| out.flush()) {
            Ok(()) => {}
            // The reader went away (`| head`): the stream is over, not broken.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => break,
            Err(e) => return Err(Error::io("write to", "standard output", e)),
        }
    }
    ledger.close();
    Ok(report)
}

/// What [`read_line_bounded`] read.
#[derive(Debug, PartialEq, Eq)]
enum LineRead {
    /// A line (without its `\n`) is in the buffer.
    Line,
    /// A line longer than the limit, of this many bytes (without its `\n`), was read past; the buffer
    /// is empty.
    TooLong(u64),
    /// The input is over.
    End,
}

/// Reads one line into `line` (cleared first), holding at most `max` bytes of it: a longer line is
/// consumed to its end in the reader's buffer-sized steps and reported with its length, so memory
/// stays bounded whatever a line's size. The last line may lack its `\n`.
fn read_line_bounded(input: &mut (impl BufRead + ?Sized), line: &mut Vec<u8>, max: usize) -> std::io::Result<LineRead> {
    line.clear();
    let mut length: u64 = 0;
    let mut over = false;
    loop {
        let available = match input.fill_buf() {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(match (length, over) {
                (0, _) => LineRead::End,
                (n, true) => LineRead::TooLong(n),
                (_, false) => LineRead::Line,
            });
        }
        let (take, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (i, true),
            None => (available.len(), false),
        };
        length += take as u64;
        if !over {
            if line.len() + take > max {
                over = true;
                line.clear();
                // Give back what an over-long line made the buffer grow to.
                line.shrink_to(max.min(64 * 1024));
            } else {
                line.extend_from_slice(&available[..take]);
            }
        }
        input.consume(take + usize::from(done));
        if done {
            return Ok(if over {
                LineRead::TooLong(length)
            } else {
                LineRead::Line
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn an_over_long_stream_line_is_skipped_without_being_held_in_memory() {
        // 300 MB on one line took 304 MB of memory; now the line buffer never grows past the limit.
        let long = std::io::repeat(b'x').take(300 << 20);
        let rest = std::io::Cursor::new(b"\n{\"a\": 1}\r\nlast".to_vec());
        let mut input = std::io::BufReader::new(long.chain(rest));
        let mut line = Vec::new();
        assert_eq!(
            read_line_bounded(&mut input, &mut line, 1 << 20).unwrap(),
            LineRead::TooLong(300 << 20)
        );
        assert!(line.is_empty());
        assert!(
            line.capacity() <= 1 << 20,
            "the buffer grew to {} bytes",
            line.capacity()
        );
        assert_eq!(
            read_line_bounded(&mut input, &mut line, 1 << 20).unwrap(),
            LineRead::Line
        );
        assert_eq!(line, b"{\"a\": 1}\r");
        // The last line may lack its line break.
        assert_eq!(
            read_line_bounded(&mut input, &mut line, 1 << 20).unwrap(),
            LineRead::Line
        );
        assert_eq!(line, b"last");
        assert_eq!(
            read_line_bounded(&mut input, &mut line, 1 << 20).unwrap(),
            LineRead::End
        );
    }

    #[test]
    fn a_stream_line_of_exactly_the_limit_is_taken_and_one_byte_more_is_not() {
        let mut input = std::io::Cursor::new(b"12345\n123456\n\n".to_vec());
        let mut line = Vec::new();
        assert_eq!(read_line_bounded(&mut input, &mut line, 5).unwrap(), LineRead::Line);
        assert_eq!(line, b"12345");
        assert_eq!(
            read_line_bounded(&mut input, &mut line, 5).unwrap(),
            LineRead::TooLong(6)
        );
        assert_eq!(read_line_bounded(&mut input, &mut line, 5).unwrap(), LineRead::Line);
        assert!(line.is_empty());
        assert_eq!(read_line_bounded(&mut input, &mut line, 5).unwrap(), LineRead::End);
    }
}
