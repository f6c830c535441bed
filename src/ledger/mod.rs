//! The prediction ledger: one entry per prediction made by `predict` (batch or stream) or `serve`:
//! which run and model, which input (stored content-addressed), which output (digest of the
//! predictions' bits), when, through which channel. `mlpipe reproduce <prediction-id>` replays an entry
//! from the stored model and input and checks the output bit for bit.
//!
//! SQLite (`<store>/ledger.sqlite`, WAL) by default; PostgreSQL when given a URL. Record inputs (REST
//! bodies, stream lines) are kept in the ledger's `ledger_inputs` table, keyed by the blake3 of their
//! canonical JSON; batch inputs are store objects (they are large and already content-addressed there).
//! Entries are written by one [`LedgerWriter`] thread that commits whatever is queued in one
//! transaction (group commit) and only then releases the callers, so an answered prediction is
//! always in the ledger.
//!
//! The ledger is a hash chain, as Certificate Transparency logs and git are: every entry carries its
//! position and a digest of its content and of the entry before it ([`entry_digest`], encoding in
//! `docs/hashing.md`). An entry changed, removed or inserted behind mlpipe's back no longer matches
//! its digest, and the head (`mlpipe ledger head`), kept somewhere else, pins every entry before it.
//! Appends take the database's write lock before reading the chain's tail (SQLite: `BEGIN IMMEDIATE`;
//! PostgreSQL: `LOCK TABLE ledger IN SHARE ROW EXCLUSIVE MODE`), so concurrent writers, in one process
//! or many, extend one chain in commit order.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use serde::Serialize;

use crate::database::Database;
use crate::digest::Id;
use crate::error::{Error, Result};

mod chain;
mod postgres;
mod sqlite;

pub use self::chain::{
    Anchor, ChainCheck, ChainProblem, ChainSummary, GENESIS, Head, Link, Pruned, Visit, all_rows, check_chain,
    entry_digest, entry_label, head, plural, stored_value, walk,
};
pub use self::postgres::PostgresLedger;
pub use self::sqlite::SqliteLedger;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Batch,
    Serve,
    Stream,
}

impl Channel {
    pub fn name(self) -> &'static str {
        match self {
            Channel::Batch => "batch",
            Channel::Serve => "serve",
            Channel::Stream => "stream",
        }
    }

    pub fn parse(s: &str) -> Result<Channel> {
        match s {
            "batch" => Ok(Channel::Batch),
            "serve" => Ok(Channel::Serve),
            "stream" => Ok(Channel::Stream),
            other => Err(Error::data(format!("unknown channel \"{other}\"")).with_hint("use batch, serve or stream")),
        }
    }
}

/// Input encodings: a canonical JSON record kept in the ledger, or a batch file kept in the store.
pub const RECORD_FORMAT: &str = "record";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    pub seq: i64,
    /// The prediction id: blake3 key of (run, model, input).
    pub prediction: Id,
    pub run: Id,
    pub model: Id,
    pub input: Id,
    /// "record" (canonical JSON in the ledger) or a batch file format ("csv", "ndjson", "parquet").
    pub input_format: String,
    /// blake3 of the predictions' IEEE-754 bits (little-endian, row order).
    pub output: Id,
    pub rows: u64,
    /// The prediction itself, for single-record entries.
    pub value: Option<f64>,
    pub channel: Channel,
    /// "champion" or "shadow".
    pub role: String,
    /// For a shadow entry, the champion's prediction id for the same input.
    pub pair: Option<Id>,
    pub time: String,
    /// Where the input came from (file name, client address, "stdin").
    pub source: String,
}

/// A record input to keep: its id is the blake3 of `body`.
pub struct Input {
    pub id: Id,
    pub body: Vec<u8>,
}

#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub prediction: Option<String>,
    pub run: Option<String>,
    pub channel: Option<Channel>,
    pub role: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub limit: Option<usize>,
}

/// An entry as stored, with its chain fields as text, read without judging them: `verify` reports what
/// is wrong with a row instead of failing on it.
#[derive(Debug, Clone)]
pub struct Chained {
    pub seq: i64,
    pub entry: std::result::Result<Entry, String>,
    pub position: Option<String>,
    pub digest: Option<String>,
}

/// Where the ledger lives.
pub trait Backend: Send {
    /// Appends entries and inputs in one transaction, each entry chained onto the one before it.
    fn append(&mut self, entries: &[Entry], inputs: &[Input]) -> Result<()>;
    /// Entries matching the filter, newest first.
    fn entries(&mut self, filter: &Filter) -> Result<Vec<Entry>>;
    /// A record input's bytes, checked against its id.
    fn input(&mut self, id: &Id) -> Result<Option<Vec<u8>>>;
    /// Up to `limit` entries with their chain fields, in chain order, starting after row `after`.
    fn chained(&mut self, after: i64, limit: usize) -> Result<Vec<Chained>>;
    /// The anchor the remaining chain starts from, when a prefix was pruned.
    fn anchor(&mut self) -> Result<Option<Anchor>>;
    /// The recorded digest of the entry at `position`, when the ledger still holds it.
    fn digest_at(&mut self, position: u64) -> Result<Option<Id>>;
    /// Deletes the longest prefix of the chain made before `before` (after checking that it verifies)
    /// and the inputs no remaining entry uses; records the prefix's head as the new anchor, made at `now`.
    fn prune(&mut self, before: &str, now: &str) -> Result<Pruned>;
    fn describe(&self) -> String;
    /// Starts whatever background upkeep a long-lived writer needs (SQLite: WAL checkpoints).
    fn start_upkeep(&mut self) {}
}

/// The default ledger location inside a store.
pub fn default_path(store_root: &Path) -> PathBuf {
    store_root.join("ledger.sqlite")
}

/// Opens the ledger to write to it: `url` (sqlite:PATH or postgres://…) when given, else the store's
/// SQLite file, created when absent. A ledger written before the chain existed gets its chain columns,
/// and its entries are chained in the order they were committed, in the one transaction that adds the
/// columns; after that, a row without its link is never chained again (`verify` reports it).
pub fn open(store_root: &Path, url: Option<&str>) -> Result<Box<dyn Backend>> {
    open_as(store_root, url, true)
}

/// Opens an existing ledger to read it (`verify`, `ledger`, `ledger head`, `reproduce`): nothing is
/// created, migrated or chained, and a ledger that is not there is an error ("no ledger at …").
pub fn open_existing(store_root: &Path, url: Option<&str>) -> Result<Box<dyn Backend>> {
    open_as(store_root, url, false)
}

fn open_as(store_root: &Path, url: Option<&str>, write: bool) -> Result<Box<dyn Backend>> {
    match url {
        // The store's own ledger is never opened through a link (it, or its -wal/-shm/-journal).
        None => {
            crate::store::refuse_ledger_links(store_root)?;
            let path = default_path(store_root);
            Ok(Box::new(if write {
                SqliteLedger::open_with(&path, rusqlite::OpenFlags::SQLITE_OPEN_NOFOLLOW)?
            } else {
                SqliteLedger::open_existing(&path)?
            }))
        }
        Some(url) => match Database::parse(url)? {
            Some(Database::Sqlite(path)) if write => Ok(Box::new(SqliteLedger::open(&path)?)),
            Some(Database::Sqlite(path)) => Ok(Box::new(SqliteLedger::open_existing(&path)?)),
            Some(Database::Postgres(url)) => Ok(Box::new(PostgresLedger::open_as(&url, write)?)),
            // Not repeated: a URL with its scheme left out may still hold a password.
            None => Err(
                Error::data("--ledger is not a database URL (it is not shown: it may hold a password)")
                    .with_hint("use sqlite:PATH or postgres://user@host/db"),
            ),
        },
    }
}

const COLUMNS: &str =
    "seq, prediction, run, model, input, input_format, output, rows, value, channel, role, pair, time, source";

/// Rows per read when walking the whole chain (bounds memory on large ledgers).
pub const CHUNK: usize = 4096;

const EDITED_HINT: &str = "the ledger was edited outside mlpipe: run `mlpipe verify` to list what changed, \
                           compare `mlpipe ledger head` with a head anchored earlier, and restore the ledger \
                           from a backup";

fn check_input(id: &Id, body: Vec<u8>, where_: &str) -> Result<Vec<u8>> {
    let actual = Id::of_bytes(&body);
    if &actual == id {
        Ok(body)
    } else {
        Err(Error::Corrupt {
            id: id.hex(),
            actual: actual.hex(),
            path: PathBuf::from(where_),
        })
    }
}

fn to_i64(position: u64) -> Result<i64> {
    i64::try_from(position).map_err(|_| Error::internal(format!("ledger position {position} is out of range")))
}

/// Longest text of a ledger cell shown in a message.
const SHOWN_CHARS: usize = 80;

/// A ledger cell's text as a message shows it (between quotes the message supplies): control characters,
/// quotes and backslashes escaped as the store's previews escape them (`\u{1b}`, `\0`), at most
/// [`SHOWN_CHARS`] characters. A cell edited outside mlpipe must not reach a terminal raw.
pub fn shown(text: &str) -> String {
    let short: String = text.chars().take(SHOWN_CHARS).collect();
    let more = if text.chars().count() > SHOWN_CHARS { "…" } else { "" };
    format!("{}{more}", short.escape_debug())
}

/// An entry from its 14 stored fields (as text, in [`COLUMNS`] order).
fn entry_from_fields(f: &[Option<String>]) -> Result<Entry> {
    let text = |i: usize| f.get(i).cloned().flatten().unwrap_or_default();
    let seq = text(0);
    let malformed = |column: &str, value: &str| {
        Error::data(format!(
            "ledger entry {}: column {column} holds a malformed value \"{}\"",
            shown(&seq),
            shown(value)
        ))
        .with_hint(EDITED_HINT)
    };
    let id = |i: usize, column: &str| -> Result<Id> {
        let t = text(i);
        Id::from_hex(&t).ok_or_else(|| malformed(column, &t))
    };
    let num = |i: usize, column: &str| -> Result<i64> {
        let t = text(i);
        t.parse().map_err(|_| malformed(column, &t))
    };
    let value = match f.get(8).cloned().flatten() {
        None => None,
        Some(v) => Some(v.parse::<f64>().map_err(|_| malformed("value", &v))?),
    };
    let pair = match f.get(11).cloned().flatten() {
        None => None,
        Some(p) => Some(Id::from_hex(&p).ok_or_else(|| malformed("pair", &p))?),
    };
    Ok(Entry {
        seq: num(0, "seq")?,
        prediction: id(1, "prediction")?,
        run: id(2, "run")?,
        model: id(3, "model")?,
        input: id(4, "input")?,
        input_format: text(5),
        output: id(6, "output")?,
        rows: u64::try_from(num(7, "rows")?).map_err(|_| malformed("rows", &text(7)))?,
        value,
        channel: Channel::parse(&text(9)).map_err(|_| malformed("channel", &text(9)))?,
        role: text(10),
        pair,
        time: text(12),
        source: text(13),
    })
}

/// A row of [`COLUMNS`] followed by `position, digest`.
fn chained_from_fields(f: &[Option<String>]) -> Chained {
    Chained {
        seq: f
            .first()
            .cloned()
            .flatten()
            .and_then(|s| s.parse().ok())
            .unwrap_or_default(),
        entry: entry_from_fields(f).map_err(|e| e.to_string()),
        position: f.get(14).cloned().flatten(),
        digest: f.get(15).cloned().flatten(),
    }
}

/// A stored link: `None` for an entry not chained yet (both fields empty), an error for a damaged one.
fn parse_link(ledger: &str, seq: i64, position: Option<&str>, digest: Option<&str>) -> Result<Option<Link>> {
    match (position, digest) {
        (None, None) => Ok(None),
        (Some(p), Some(d)) => match (p.parse::<u64>(), Id::from_hex(d)) {
            (Ok(position), Some(digest)) => Ok(Some(Link { position, digest })),
            _ => Err(damaged_link(ledger, seq)),
        },
        _ => Err(damaged_link(ledger, seq)),
    }
}

/// A read command met a ledger from before the chain: reading never migrates it.
fn not_chained_yet(ledger: &str) -> Error {
    Error::data(format!(
        "the ledger {ledger} was written before the hash chain existed, so it cannot be checked yet"
    ))
    .with_hint(
        "the next `mlpipe predict` or `mlpipe serve` with this ledger adds the chain, linking its entries in the \
         order they were recorded",
    )
}

/// A read command given a ledger that does not exist.
fn no_ledger(ledger: &str) -> Error {
    Error::Lookup {
        message: format!("no ledger at {ledger}"),
        hint: Some(
            "check --ledger, MLPIPE_LEDGER and --store: read commands never create a ledger; `mlpipe predict` and \
             `mlpipe serve` make one"
                .into(),
        ),
    }
}

fn unlinked_tail(ledger: &str, seq: i64) -> Error {
    Error::data(format!(
        "ledger {ledger}: entry {seq} has no chain position or digest (its link was removed outside mlpipe), so \
         nothing can be chained after it"
    ))
    .with_hint(EDITED_HINT)
}

fn damaged_link(ledger: &str, seq: i64) -> Error {
    Error::data(format!(
        "ledger {ledger}: entry {seq} has a malformed chain position or digest, so nothing can be chained after it"
    ))
    .with_hint(EDITED_HINT)
}

fn to_usize(n: i64) -> usize {
    usize::try_from(n).unwrap_or(0)
}

fn anchor_from_fields(ledger: &str, f: &[Option<String>; 4]) -> Result<Anchor> {
    let text = |i: usize| f[i].clone().unwrap_or_default();
    match (text(0).parse::<u64>(), Id::from_hex(&text(1))) {
        (Ok(position), Some(digest)) => Ok(Anchor {
            position,
            digest,
            pruned_before: text(2),
            time: text(3),
        }),
        _ => Err(Error::data(format!(
            "ledger {ledger}: the anchor the chain starts from (ledger_anchor) is malformed: position \"{}\", digest \"{}\"",
            shown(&text(0)),
            shown(&text(1))
        ))
        .with_hint(EDITED_HINT)),
    }
}

/// SQL for a filter, with `?` placeholders (SQLite) or `$n` (PostgreSQL), and the bound values.
fn filter_sql(filter: &Filter, dollar: bool) -> (String, Vec<String>) {
    let mut clauses = Vec::new();
    let mut values = Vec::new();
    let mut add = |clause: &str, value: String| {
        values.push(value);
        let mark = if dollar {
            format!("${}", values.len())
        } else {
            "?".into()
        };
        clauses.push(clause.replace('?', &mark));
    };
    if let Some(p) = &filter.prediction {
        add("prediction LIKE ?", format!("{}%", p.to_ascii_lowercase()));
    }
    if let Some(r) = &filter.run {
        add("run LIKE ?", format!("{}%", r.to_ascii_lowercase()));
    }
    if let Some(c) = filter.channel {
        add("channel = ?", c.name().into());
    }
    if let Some(r) = &filter.role {
        add("role = ?", r.clone());
    }
    if let Some(s) = &filter.since {
        add("time >= ?", s.clone());
    }
    if let Some(u) = &filter.until {
        add("time < ?", u.clone());
    }
    let mut sql = format!("SELECT {COLUMNS} FROM ledger");
    if !clauses.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&clauses.join(" AND "));
    }
    // Qualified: PostgreSQL reads `seq` as text (`seq::text AS seq`), and a bare name orders by that.
    sql.push_str(" ORDER BY ledger.seq DESC");
    if let Some(n) = filter.limit {
        let _ = write!(sql, " LIMIT {n}");
    }
    (sql, values)
}

/// One batch of work for the writer thread, and where to say it is durable.
struct Job {
    entries: Vec<Entry>,
    inputs: Vec<Input>,
    done: tokio::sync::oneshot::Sender<std::result::Result<(), Failure>>,
}

/// Why an append failed, as the writer thread hands it to every waiter of the transaction: the
/// backend's message and hint (an [`Error`] itself cannot be cloned).
#[derive(Debug, Clone)]
struct Failure {
    message: String,
    hint: Option<String>,
}

impl Failure {
    fn stopped() -> Failure {
        Failure {
            message: "the ledger writer stopped".into(),
            hint: None,
        }
    }
}

/// The ledger's single writer: callers queue entries and wait until the transaction holding them has
/// committed. Whatever is queued while one transaction commits goes into the next (group commit), so
/// many concurrent requests cost one commit.
pub struct LedgerWriter {
    queue: Option<mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
    describe: String,
}

/// A pending append; wait on it (async or blocking) to know the entries are durable.
pub struct Pending(tokio::sync::oneshot::Receiver<std::result::Result<(), Failure>>);

impl Pending {
    pub async fn committed(self) -> Result<()> {
        match self.0.await {
            Ok(r) => r.map_err(ledger_failed),
            Err(_) => Err(ledger_failed(Failure::stopped())),
        }
    }

    pub fn wait(self) -> Result<()> {
        match self.0.blocking_recv() {
            Ok(r) => r.map_err(ledger_failed),
            Err(_) => Err(ledger_failed(Failure::stopped())),
        }
    }
}

/// A failed append is the user's to mend (a ledger edited outside mlpipe, a full disk, a database server
/// down), not a bug: a data error (exit 1) that says nothing was handed out, with the backend's hint or
/// what to check.
#[allow(clippy::needless_pass_by_value)] // used as map_err(ledger_failed)
fn ledger_failed(failure: Failure) -> Error {
    let todo = failure.hint.unwrap_or_else(|| {
        "check that the ledger can be written (its file or database server, disk space, permissions), then \
         run `mlpipe verify` to check it"
            .into()
    });
    Error::data(format!("cannot record predictions in the ledger: {}", failure.message)).with_hint(format!(
        "the predictions were not recorded, so none was handed out; {todo}"
    ))
}

/// Most jobs one transaction takes; bounds the latency one commit adds.
const GROUP_LIMIT: usize = 4096;

impl LedgerWriter {
    pub fn start(mut backend: Box<dyn Backend>) -> LedgerWriter {
        let describe = backend.describe();
        backend.start_upkeep();
        let (tx, rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("mlpipe-ledger".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut jobs = vec![first];
                    while jobs.len() < GROUP_LIMIT {
                        match rx.try_recv() {
                            Ok(j) => jobs.push(j),
                            Err(_) => break,
                        }
                    }
                    let (mut entries, mut inputs, mut waiters) = (Vec::new(), Vec::new(), Vec::new());
                    for j in jobs {
                        entries.extend(j.entries);
                        inputs.extend(j.inputs);
                        waiters.push(j.done);
                    }
                    let result = backend.append(&entries, &inputs).map_err(|e| Failure {
                        message: e.to_string(),
                        hint: e.hint(),
                    });
                    for w in waiters {
                        let _ = w.send(result.clone());
                    }
                }
            })
            .ok();
        LedgerWriter {
            queue: Some(tx),
            thread,
            describe,
        }
    }

    /// Queues entries; the returned [`Pending`] resolves once they are committed.
    pub fn append(&self, entries: Vec<Entry>, inputs: Vec<Input>) -> Pending {
        let (done, rx) = tokio::sync::oneshot::channel();
        let job = Job { entries, inputs, done };
        if let Some(q) = &self.queue
            && let Err(mpsc::SendError(job)) = q.send(job)
        {
            let _ = job.done.send(Err(Failure::stopped()));
        }
        Pending(rx)
    }

    pub fn describe(&self) -> &str {
        &self.describe
    }

    /// Commits everything queued, then stops the writer.
    pub fn close(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.queue.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for LedgerWriter {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn id(text: &str) -> Id {
        Id::of_bytes(text.as_bytes())
    }

    pub(super) fn time(second: u64) -> String {
        format!("2026-11-26T10:{:02}:{:02}.000000Z", second / 60, second % 60)
    }

    /// A REST prediction `i`, made at `time(t)`.
    pub(super) fn entry(i: u64, t: u64) -> Entry {
        Entry {
            seq: 0,
            prediction: id(&format!("prediction {i}")),
            run: id("run"),
            model: id("model"),
            input: id(&format!("input {i}")),
            input_format: RECORD_FORMAT.into(),
            output: id(&format!("output {i}")),
            rows: 1,
            value: Some(1000.0 + i as f64 / 8.0),
            channel: Channel::Serve,
            role: "champion".into(),
            pair: None,
            time: time(t),
            source: "127.0.0.1:5000".into(),
        }
    }

    pub(super) fn fresh() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.sqlite");
        (dir, path)
    }

    /// Appends entries 1..=n, made one second apart, in transactions of up to three.
    pub(super) fn filled(path: &Path, n: u64) -> SqliteLedger {
        let mut ledger = SqliteLedger::open(path).unwrap();
        let all: Vec<Entry> = (1..=n).map(|i| entry(i, i)).collect();
        for batch in all.chunks(3) {
            ledger.append(batch, &[]).unwrap();
        }
        ledger
    }

    pub(super) fn sql(path: &Path, statement: &str) {
        rusqlite::Connection::open(path)
            .unwrap()
            .execute_batch(statement)
            .unwrap();
    }

    /// (seq, what) of every problem the chain check finds.
    pub(super) fn problems(ledger: &mut dyn Backend) -> Vec<(i64, String)> {
        check_chain(ledger)
            .unwrap()
            .problems
            .into_iter()
            .map(|p| (p.seq, p.what))
            .collect()
    }

    pub(super) const CHANGED: &str = "does not match its chain digest: it, or the digest of the entry before it, was changed after \
                           it was recorded";

    #[test]
    fn concurrent_writers_extend_one_chain() {
        let (_dir, path) = fresh();
        drop(SqliteLedger::open(&path).unwrap());
        // Two writers (as two processes would have), each fed by three threads: group commits interleave.
        let writers: Vec<LedgerWriter> = (0..2)
            .map(|_| LedgerWriter::start(Box::new(SqliteLedger::open(&path).unwrap())))
            .collect();
        std::thread::scope(|scope| {
            for (w, writer) in writers.iter().enumerate() {
                for t in 0..3u64 {
                    scope.spawn(move || {
                        for i in 0..40u64 {
                            let n = (w as u64 * 3 + t) * 1000 + i;
                            writer
                                .append(vec![entry(n, i), entry(n + 500, i)], Vec::new())
                                .wait()
                                .unwrap();
                        }
                    });
                }
            }
        });
        for w in writers {
            w.close();
        }
        let mut ledger = SqliteLedger::open(&path).unwrap();
        let now = head(&mut ledger, None).unwrap();
        assert_eq!((now.entries, now.kept), (480, 480));
        let check = check_chain(&mut ledger).unwrap();
        assert_eq!(check.problems, Vec::new());
        assert_eq!(check.checked, 480);
        assert_eq!(
            check.tail(),
            Some(Link {
                position: 480,
                digest: now.digest
            })
        );
    }

    #[test]
    fn a_malformed_row_is_reported_not_fatal() {
        let (_dir, path) = fresh();
        let mut ledger = filled(&path, 3);
        sql(
            &path,
            "UPDATE ledger SET run = 'not an id' WHERE seq = 2; UPDATE ledger SET digest = 'x' WHERE seq = 3",
        );
        let found = problems(&mut ledger);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(
            found[0],
            (
                2,
                "cannot be read: ledger entry 2: column run holds a malformed value \"not an id\"".to_string()
            )
        );
        assert_eq!(
            found[1],
            (3, "has a malformed chain position or digest (3, x)".to_string())
        );
        // Listing names the row instead of failing as an internal error.
        let err = ledger.entries(&Filter::default()).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::User);
        // Nothing is chained onto a damaged tail.
        let err = ledger.append(&[entry(4, 4)], &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "ledger sqlite:{}: entry 3 has a malformed chain position or digest, so nothing can be chained after it",
                path.display()
            )
        );
    }

    #[test]
    fn read_commands_never_create_a_ledger() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none").join("x.db");
        let url = format!("sqlite:{}", missing.display());
        for (root, given) in [(dir.path(), Some(url.as_str())), (dir.path(), None)] {
            let err = open_existing(root, given).err().unwrap();
            let shown = given.map_or_else(|| format!("sqlite:{}", default_path(root).display()), str::to_string);
            assert_eq!(err.to_string(), format!("no ledger at {shown}"));
            assert_eq!(err.kind(), crate::ErrorKind::User);
        }
        assert!(!missing.parent().unwrap().exists());
        assert!(!default_path(dir.path()).exists());
        // A file that holds no ledger is not one, and is left as it was.
        std::fs::write(default_path(dir.path()), b"").unwrap();
        let err = open_existing(dir.path(), None).err().unwrap();
        assert_eq!(
            err.to_string(),
            format!("no ledger at sqlite:{}", default_path(dir.path()).display())
        );
        assert_eq!(std::fs::read(default_path(dir.path())).unwrap(), b"");
    }
}
