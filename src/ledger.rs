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

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use serde::Serialize;

use crate::database::{self, Database};
use crate::digest::Id;
use crate::error::{Error, Result};

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

/// Where the ledger lives.
pub trait Backend: Send {
    /// Appends entries and inputs in one transaction.
    fn append(&mut self, entries: &[Entry], inputs: &[Input]) -> Result<()>;
    /// Entries matching the filter, newest first.
    fn entries(&mut self, filter: &Filter) -> Result<Vec<Entry>>;
    /// A record input's bytes, checked against its id.
    fn input(&mut self, id: &Id) -> Result<Option<Vec<u8>>>;
    /// Deletes entries made before `time` and inputs no entry uses; returns (entries, inputs) removed.
    fn prune(&mut self, before: &str) -> Result<(usize, usize)>;
    fn describe(&self) -> String;
    /// Starts whatever background upkeep a long-lived writer needs (SQLite: WAL checkpoints).
    fn start_upkeep(&mut self) {}
}

/// The default ledger location inside a store.
pub fn default_path(store_root: &Path) -> PathBuf {
    store_root.join("ledger.sqlite")
}

/// Opens the ledger: `url` (sqlite:PATH or postgres://…) when given, else the store's SQLite file.
pub fn open(store_root: &Path, url: Option<&str>) -> Result<Box<dyn Backend>> {
    match url {
        None => Ok(Box::new(SqliteLedger::open(&default_path(store_root))?)),
        Some(url) => match Database::parse(url)? {
            Some(Database::Sqlite(path)) => Ok(Box::new(SqliteLedger::open(&path)?)),
            Some(Database::Postgres(url)) => Ok(Box::new(PostgresLedger::open(&url)?)),
            None => Err(Error::data(format!("--ledger {url} is not a database URL"))
                .with_hint("use sqlite:PATH or postgres://user@host/db")),
        },
    }
}

const COLUMNS: &str =
    "seq, prediction, run, model, input, input_format, output, rows, value, channel, role, pair, time, source";

fn parse_id(text: &str) -> Result<Id> {
    Id::from_hex(text).ok_or_else(|| Error::internal(format!("ledger holds a malformed id \"{text}\"")))
}

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

pub struct SqliteLedger {
    path: PathBuf,
    conn: rusqlite::Connection,
    checkpointer: Option<Checkpointer>,
}

/// Copies the WAL back into the database file from its own thread and connection, so that a commit
/// never waits for a checkpoint's fsync (that wait was the whole p99 of `serve`). Passive checkpoints
/// never block writers; the last one, on close, truncates the WAL.
struct Checkpointer {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    fn start(path: &Path) -> Option<Checkpointer> {
        let conn = database::open_sqlite(path).ok()?;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("mlpipe-ledger-checkpoint".into())
            .spawn(move || {
                while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::park_timeout(std::time::Duration::from_millis(250));
                    let _ = conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE)");
                }
                let _ = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)");
            })
            .ok()?;
        Some(Checkpointer {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

impl SqliteLedger {
    pub fn open(path: &Path) -> Result<SqliteLedger> {
        let conn = database::open_sqlite(path)?;
        // Checkpoints run on their own thread (see Checkpointer), never inside a commit.
        conn.pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(|e| database::sqlite_error(path, &e))?;
        conn.execute_batch(
            // Every index is one more page per commit in the WAL: only the lookups `reproduce` and the
            // time filters need are indexed, and inputs are one b-tree (WITHOUT ROWID). `seq` is the rowid:
            // pruning removes the oldest entries, so new ones still get higher numbers.
            "CREATE TABLE IF NOT EXISTS ledger (
                seq INTEGER PRIMARY KEY,
                prediction TEXT NOT NULL, run TEXT NOT NULL, model TEXT NOT NULL,
                input TEXT NOT NULL, input_format TEXT NOT NULL, output TEXT NOT NULL,
                rows INTEGER NOT NULL, value REAL, channel TEXT NOT NULL, role TEXT NOT NULL,
                pair TEXT, time TEXT NOT NULL, source TEXT NOT NULL);
             CREATE INDEX IF NOT EXISTS ledger_prediction ON ledger(prediction);
             CREATE INDEX IF NOT EXISTS ledger_time ON ledger(time);
             CREATE TABLE IF NOT EXISTS ledger_inputs (id TEXT PRIMARY KEY, body BLOB NOT NULL) WITHOUT ROWID;",
        )
        .map_err(|e| database::sqlite_error(path, &e))?;
        Ok(SqliteLedger {
            path: path.to_path_buf(),
            conn,
            checkpointer: None,
        })
    }

    fn err(&self, e: &rusqlite::Error) -> Error {
        database::sqlite_error(&self.path, e)
    }
}

fn entry_from_sqlite(r: &rusqlite::Row<'_>) -> rusqlite::Result<[Option<String>; 14]> {
    let mut out: [Option<String>; 14] = Default::default();
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = match r.get_ref(i)? {
            rusqlite::types::ValueRef::Null => None,
            rusqlite::types::ValueRef::Integer(v) => Some(v.to_string()),
            // Exact: `{:?}` prints the shortest text that parses back to the same f64.
            rusqlite::types::ValueRef::Real(v) => Some(format!("{v:?}")),
            rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                Some(String::from_utf8_lossy(t).into_owned())
            }
        };
    }
    Ok(out)
}

fn entry_from_fields(f: &[Option<String>; 14]) -> Result<Entry> {
    let text = |i: usize| f[i].clone().unwrap_or_default();
    let num = |i: usize| -> Result<i64> {
        text(i)
            .parse()
            .map_err(|_| Error::internal(format!("ledger field {i} is not an integer")))
    };
    Ok(Entry {
        seq: num(0)?,
        prediction: parse_id(&text(1))?,
        run: parse_id(&text(2))?,
        model: parse_id(&text(3))?,
        input: parse_id(&text(4))?,
        input_format: text(5),
        output: parse_id(&text(6))?,
        rows: u64::try_from(num(7)?).unwrap_or(0),
        value: f[8].as_deref().and_then(|v| v.parse().ok()),
        channel: Channel::parse(&text(9))?,
        role: text(10),
        pair: f[11].as_deref().map(parse_id).transpose()?,
        time: text(12),
        source: text(13),
    })
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
    sql.push_str(" ORDER BY seq DESC");
    if let Some(n) = filter.limit {
        let _ = write!(sql, " LIMIT {n}");
    }
    (sql, values)
}

impl Backend for SqliteLedger {
    fn append(&mut self, entries: &[Entry], inputs: &[Input]) -> Result<()> {
        let path = self.path.clone();
        let e = |e: rusqlite::Error| database::sqlite_error(&path, &e);
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(e)?;
        {
            let mut put = tx
                .prepare_cached("INSERT INTO ledger_inputs (id, body) VALUES (?, ?) ON CONFLICT(id) DO NOTHING")
                .map_err(e)?;
            for input in inputs {
                put.execute(rusqlite::params![input.id.hex(), input.body]).map_err(e)?;
            }
            let mut add = tx
                .prepare_cached(
                    "INSERT INTO ledger (prediction, run, model, input, input_format, output, rows, value, \
                     channel, role, pair, time, source) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                )
                .map_err(e)?;
            for x in entries {
                add.execute(rusqlite::params![
                    x.prediction.hex(),
                    x.run.hex(),
                    x.model.hex(),
                    x.input.hex(),
                    x.input_format,
                    x.output.hex(),
                    i64::try_from(x.rows).unwrap_or(i64::MAX),
                    x.value,
                    x.channel.name(),
                    x.role,
                    x.pair.map(|p| p.hex()),
                    x.time,
                    x.source,
                ])
                .map_err(e)?;
            }
        }
        tx.commit().map_err(e)
    }

    fn entries(&mut self, filter: &Filter) -> Result<Vec<Entry>> {
        let (sql, values) = filter_sql(filter, false);
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(&e))?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(values.iter()), entry_from_sqlite)
            .map_err(|e| database::sqlite_error(&self.path, &e))?;
        let mut out = Vec::new();
        for r in rows {
            out.push(entry_from_fields(
                &r.map_err(|e| database::sqlite_error(&self.path, &e))?,
            )?);
        }
        Ok(out)
    }

    fn input(&mut self, id: &Id) -> Result<Option<Vec<u8>>> {
        use rusqlite::OptionalExtension;
        let body: Option<Vec<u8>> = self
            .conn
            .query_row("SELECT body FROM ledger_inputs WHERE id = ?", [id.hex()], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(&e))?;
        body.map(|b| check_input(id, b, &format!("{} (ledger_inputs)", self.path.display())))
            .transpose()
    }

    fn prune(&mut self, before: &str) -> Result<(usize, usize)> {
        let path = self.path.clone();
        let e = |e: rusqlite::Error| database::sqlite_error(&path, &e);
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(e)?;
        let entries = tx.execute("DELETE FROM ledger WHERE time < ?", [before]).map_err(e)?;
        let inputs = tx
            .execute(
                "DELETE FROM ledger_inputs WHERE id NOT IN (SELECT input FROM ledger)",
                [],
            )
            .map_err(e)?;
        tx.commit().map_err(e)?;
        Ok((entries, inputs))
    }

    fn describe(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }

    fn start_upkeep(&mut self) {
        if self.checkpointer.is_none() {
            self.checkpointer = Checkpointer::start(&self.path);
        }
    }
}

pub struct PostgresLedger {
    redacted: String,
    client: postgres::Client,
}

impl PostgresLedger {
    pub fn open(url: &str) -> Result<PostgresLedger> {
        let redacted = database::redact_url(url);
        let mut client = database::connect_postgres(url)?;
        client
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS ledger (
                    seq bigserial PRIMARY KEY,
                    prediction text NOT NULL, run text NOT NULL, model text NOT NULL,
                    input text NOT NULL, input_format text NOT NULL, output text NOT NULL,
                    rows bigint NOT NULL, value double precision, channel text NOT NULL, role text NOT NULL,
                    pair text, time text NOT NULL, source text NOT NULL);
                 CREATE INDEX IF NOT EXISTS ledger_prediction ON ledger(prediction);
                 CREATE INDEX IF NOT EXISTS ledger_input ON ledger(input);
                 CREATE INDEX IF NOT EXISTS ledger_time ON ledger(time);
                 CREATE TABLE IF NOT EXISTS ledger_inputs (id text PRIMARY KEY, body bytea NOT NULL);",
            )
            .map_err(|e| database::postgres_error(&redacted, "create the ledger tables", &e))?;
        Ok(PostgresLedger { redacted, client })
    }
}

impl Backend for PostgresLedger {
    fn append(&mut self, entries: &[Entry], inputs: &[Input]) -> Result<()> {
        let r = self.redacted.clone();
        let e = move |what: &'static str| {
            let r = r.clone();
            move |err: postgres::Error| database::postgres_error(&r, what, &err)
        };
        let mut tx = self.client.transaction().map_err(e("begin"))?;
        let put = tx
            .prepare("INSERT INTO ledger_inputs (id, body) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING")
            .map_err(e("prepare"))?;
        for input in inputs {
            tx.execute(&put, &[&input.id.hex(), &input.body])
                .map_err(e("store an input"))?;
        }
        let add = tx
            .prepare(
                "INSERT INTO ledger (prediction, run, model, input, input_format, output, rows, value, \
                 channel, role, pair, time, source) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)",
            )
            .map_err(e("prepare"))?;
        for x in entries {
            let rows = i64::try_from(x.rows).unwrap_or(i64::MAX);
            tx.execute(
                &add,
                &[
                    &x.prediction.hex(),
                    &x.run.hex(),
                    &x.model.hex(),
                    &x.input.hex(),
                    &x.input_format,
                    &x.output.hex(),
                    &rows,
                    &x.value,
                    &x.channel.name(),
                    &x.role,
                    &x.pair.map(|p| p.hex()),
                    &x.time,
                    &x.source,
                ],
            )
            .map_err(e("append an entry"))?;
        }
        tx.commit().map_err(e("commit"))
    }

    fn entries(&mut self, filter: &Filter) -> Result<Vec<Entry>> {
        let (sql, values) = filter_sql(filter, true);
        let sql = sql.replacen(
            &format!("SELECT {COLUMNS}"),
            "SELECT seq::text, prediction, run, model, input, input_format, output, rows::text, value, channel, \
             role, pair, time, source",
            1,
        );
        let params: Vec<&(dyn postgres::types::ToSql + Sync)> = values
            .iter()
            .map(|v| v as &(dyn postgres::types::ToSql + Sync))
            .collect();
        let rows = self
            .client
            .query(&sql, &params)
            .map_err(|e| database::postgres_error(&self.redacted, "read the ledger", &e))?;
        rows.iter()
            .map(|r| {
                let mut f: [Option<String>; 14] = Default::default();
                for (i, slot) in f.iter_mut().enumerate() {
                    *slot = if i == 8 {
                        r.get::<_, Option<f64>>(i).map(|v| format!("{v:?}"))
                    } else {
                        r.get::<_, Option<String>>(i)
                    };
                }
                entry_from_fields(&f)
            })
            .collect()
    }

    fn input(&mut self, id: &Id) -> Result<Option<Vec<u8>>> {
        let row = self
            .client
            .query_opt("SELECT body FROM ledger_inputs WHERE id = $1", &[&id.hex()])
            .map_err(|e| database::postgres_error(&self.redacted, "read an input", &e))?;
        row.map(|r| check_input(id, r.get(0), &format!("{} (ledger_inputs)", self.redacted)))
            .transpose()
    }

    fn prune(&mut self, before: &str) -> Result<(usize, usize)> {
        let r = self.redacted.clone();
        let e = move |err: postgres::Error| database::postgres_error(&r, "prune", &err);
        let mut tx = self.client.transaction().map_err(e.clone())?;
        let entries = tx
            .execute("DELETE FROM ledger WHERE time < $1", &[&before])
            .map_err(e.clone())?;
        let inputs = tx
            .execute(
                "DELETE FROM ledger_inputs i WHERE NOT EXISTS (SELECT 1 FROM ledger l WHERE l.input = i.id)",
                &[],
            )
            .map_err(e.clone())?;
        tx.commit().map_err(e)?;
        Ok((
            usize::try_from(entries).unwrap_or(usize::MAX),
            usize::try_from(inputs).unwrap_or(usize::MAX),
        ))
    }

    fn describe(&self) -> String {
        self.redacted.clone()
    }
}

/// One batch of work for the writer thread, and where to say it is durable.
struct Job {
    entries: Vec<Entry>,
    inputs: Vec<Input>,
    done: tokio::sync::oneshot::Sender<std::result::Result<(), String>>,
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
pub struct Pending(tokio::sync::oneshot::Receiver<std::result::Result<(), String>>);

impl Pending {
    pub async fn committed(self) -> Result<()> {
        match self.0.await {
            Ok(r) => r.map_err(ledger_failed),
            Err(_) => Err(ledger_failed("the ledger writer stopped".into())),
        }
    }

    pub fn wait(self) -> Result<()> {
        match self.0.blocking_recv() {
            Ok(r) => r.map_err(ledger_failed),
            Err(_) => Err(ledger_failed("the ledger writer stopped".into())),
        }
    }
}

#[allow(clippy::needless_pass_by_value)] // used as map_err(ledger_failed)
fn ledger_failed(message: String) -> Error {
    Error::internal(format!("cannot record predictions in the ledger: {message}"))
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
                    let result = backend.append(&entries, &inputs).map_err(|e| e.to_string());
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
            let _ = job.done.send(Err("the ledger writer stopped".into()));
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
