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

use crate::database::{self, Database};
use crate::digest::{Id, KeyBuilder, context};
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

/// The digest the first entry of a chain is chained to (and the head of an empty chain): 32 zero bytes.
pub const GENESIS: Id = Id([0; 32]);

/// The value a ledger stores, so that the digest covers exactly what is read back: SQLite cannot store a
/// NaN (it is kept as no value) nor the sign of a zero (-0.0 is kept as 0.0). The output digest still
/// covers the prediction's exact bits.
pub fn stored_value(value: Option<f64>) -> Option<f64> {
    value.filter(|v| !v.is_nan()).map(|v| if v == 0.0 { 0.0 } else { v })
}

/// The digest of the entry at `position` (from 1) whose predecessor's digest is `previous`
/// ([`GENESIS`] for position 1): blake3 derive-key over the fields in `docs/hashing.md`. The storage
/// row number (`seq`) is not part of it; the position is.
pub fn entry_digest(previous: &Id, position: u64, e: &Entry) -> Id {
    let value = stored_value(e.value).map_or_else(Vec::new, |v| v.to_bits().to_le_bytes().to_vec());
    let pair = e.pair.map_or_else(Vec::new, |p| p.0.to_vec());
    KeyBuilder::new(context::LEDGER_ENTRY)
        .id(previous)
        .u64(position)
        .id(&e.prediction)
        .id(&e.run)
        .id(&e.model)
        .id(&e.input)
        .str(&e.input_format)
        .id(&e.output)
        .u64(e.rows)
        .bytes(&value)
        .str(e.channel.name())
        .str(&e.role)
        .bytes(&pair)
        .str(&e.time)
        .str(&e.source)
        .finish()
}

/// One entry's place in the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Link {
    pub position: u64,
    pub digest: Id,
}

impl Link {
    /// Before the first entry.
    pub const START: Link = Link {
        position: 0,
        digest: GENESIS,
    };

    /// The link of `entry` appended after this one.
    #[must_use]
    pub fn next(&self, entry: &Entry) -> Link {
        let position = self.position + 1;
        Link {
            position,
            digest: entry_digest(&self.digest, position, entry),
        }
    }
}

/// Where the remaining chain starts after `ledger prune`: the position and digest of the last entry
/// removed (checked before it was removed), when, and with which `--before`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Anchor {
    pub position: u64,
    pub digest: Id,
    pub pruned_before: String,
    pub time: String,
}

impl Anchor {
    pub fn link(&self) -> Link {
        Link {
            position: self.position,
            digest: self.digest,
        }
    }
}

/// The chain's head, to be anchored elsewhere (a CI log, a database row): the digest of its last entry
/// and how many entries the chain has had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Head {
    pub ledger: String,
    /// The digest of the entry at position `entries` ([`GENESIS`] for an empty chain).
    pub digest: Id,
    /// Entries appended since the chain began, pruned ones included: the position of the head.
    pub entries: u64,
    /// Of those, how many the ledger still holds.
    pub kept: u64,
    /// The head of the pruned prefix the remaining chain starts from.
    pub anchor: Option<Anchor>,
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

/// What `ledger prune` removed, and the anchor the remaining chain now starts from.
#[derive(Debug, Clone, Serialize)]
pub struct Pruned {
    pub entries: usize,
    pub inputs: usize,
    /// The new anchor (none when nothing was removed).
    pub anchor: Option<Anchor>,
    /// Entries made before the cut-off that were kept because a newer entry precedes them in the chain
    /// (only a prefix of the chain can be removed).
    pub kept_older: usize,
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

/// An entry from its 14 stored fields (as text, in [`COLUMNS`] order).
fn entry_from_fields(f: &[Option<String>]) -> Result<Entry> {
    let text = |i: usize| f.get(i).cloned().flatten().unwrap_or_default();
    let seq = text(0);
    let malformed = |column: &str, value: &str| {
        Error::data(format!(
            "ledger entry {seq}: column {column} holds a malformed value \"{value}\""
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

/// A read command given a ledger that does not exist.
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

/// A problem `verify` reports about one stored entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainProblem {
    pub seq: i64,
    /// The entry's chain position: the one it records, or the one it should have when that is unreadable.
    pub position: u64,
    pub prediction: Option<Id>,
    pub what: String,
}

/// Checks the chain entry by entry, in chain order: each entry at the position after its predecessor's,
/// its recorded digest equal to [`entry_digest`] of its content and its predecessor's recorded digest.
/// It goes on from what each entry records, so one changed entry is reported once.
#[derive(Debug, Clone)]
pub struct ChainCheck {
    position: u64,
    /// `None` after an entry whose digest cannot be read: the next entry cannot be checked against it.
    digest: Option<Id>,
    pub checked: u64,
    pub problems: Vec<ChainProblem>,
}

impl ChainCheck {
    /// A check starting from the anchor the ledger records, or from the genesis.
    pub fn new(anchor: Option<&Anchor>) -> ChainCheck {
        let start = anchor.map_or(Link::START, Anchor::link);
        ChainCheck {
            position: start.position,
            digest: Some(start.digest),
            checked: 0,
            problems: Vec::new(),
        }
    }

    pub fn visit(&mut self, row: &Chained) {
        self.checked += 1;
        let expected = self.position + 1;
        let position = row.position.as_deref().and_then(|p| p.parse::<u64>().ok());
        let digest = row.digest.as_deref().and_then(Id::from_hex);
        let what = match (&row.entry, position, digest) {
            _ if row.position.is_none() && row.digest.is_none() => Some(
                "has no chain position or digest: its link was removed outside mlpipe (mlpipe chains every entry \
                 it writes)"
                    .to_string(),
            ),
            (_, None, _) | (_, _, None) => Some(format!(
                "has a malformed chain position or digest ({}, {})",
                row.position.as_deref().unwrap_or("none"),
                row.digest.as_deref().unwrap_or("none")
            )),
            (_, Some(p), _) if p == expected + 1 => Some(format!(
                "is at chain position {p}, but the entry before it is at {}: the entry at position {expected} was removed",
                expected - 1
            )),
            (_, Some(p), _) if p > expected => Some(format!(
                "is at chain position {p}, but the entry before it is at {}: the entries at positions {expected} to {} \
                 were removed",
                expected - 1,
                p - 1
            )),
            (_, Some(p), _) if p < expected => Some(format!(
                "is at chain position {p}, but the entry before it is at {}: entries were inserted or reordered",
                expected - 1
            )),
            (Err(why), _, _) => Some(format!("cannot be read: {why}")),
            (Ok(entry), Some(p), Some(d)) => match self.digest {
                Some(previous) if entry_digest(&previous, p, entry) != d => Some(
                    "does not match its chain digest: it, or the digest of the entry before it, was changed after \
                     it was recorded"
                        .to_string(),
                ),
                _ => None,
            },
        };
        if let Some(what) = what {
            self.problems.push(ChainProblem {
                seq: row.seq,
                position: position.unwrap_or(expected),
                prediction: row.entry.as_ref().ok().map(|e| e.prediction),
                what,
            });
        }
        self.position = position.unwrap_or(expected);
        self.digest = digest;
    }

    /// The last link seen (the head, once every entry was visited), when its digest is readable.
    pub fn tail(&self) -> Option<Link> {
        self.digest.map(|digest| Link {
            position: self.position,
            digest,
        })
    }
}

/// What `mlpipe verify` found walking the chain.
#[derive(Debug, Clone, Serialize)]
pub struct ChainSummary {
    /// Where the walk ended: the head, when the last entry's digest is readable.
    pub head: Option<Link>,
    /// Entries checked.
    pub checked: u64,
    /// Entries whose output and value were compared with a replay.
    pub replayed: usize,
}

/// What [`walk`] calls with each chunk of entries (and the backend, to read their inputs).
pub type Visit<'a> = dyn FnMut(&mut dyn Backend, &[Chained]) -> Result<()> + 'a;

/// Visits every entry in chain order, [`CHUNK`] rows at a time.
pub fn walk(backend: &mut dyn Backend, visit: &mut Visit<'_>) -> Result<()> {
    let mut after = i64::MIN;
    loop {
        let rows = backend.chained(after, CHUNK)?;
        visit(backend, &rows)?;
        match rows.last() {
            Some(last) if rows.len() == CHUNK => after = last.seq,
            _ => return Ok(()),
        }
    }
}

/// Checks the whole chain from its anchor.
pub fn check_chain(backend: &mut dyn Backend) -> Result<ChainCheck> {
    let anchor = backend.anchor()?;
    let mut check = ChainCheck::new(anchor.as_ref());
    walk(backend, &mut |_, rows| {
        for row in rows {
            check.visit(row);
        }
        Ok(())
    })?;
    Ok(check)
}

/// An entry's name in messages: its chain position, and its row in the database.
pub fn entry_label(position: u64, seq: i64) -> String {
    format!("entry {position} (row {seq})")
}

/// The chain's head, recomputed: every entry from the anchor up to position `at` (the last entry when
/// `None`) is checked against its digest before the head is given, so an edited, removed or unlinked
/// entry makes it an error naming the first such entry. Reads only.
pub fn head(backend: &mut dyn Backend, at: Option<u64>) -> Result<Head> {
    let ledger = backend.describe();
    let anchor = backend.anchor()?;
    let start = anchor.as_ref().map_or(Link::START, Anchor::link);
    if let Some(position) = at
        && position < start.position
    {
        return Err(Error::Lookup {
            message: format!(
                "position {position} of the ledger {ledger} was pruned: the chain now starts after position {} \
                 (digest {})",
                start.position, start.digest
            ),
            hint: Some(format!(
                "compare a head anchored at position {} or later",
                start.position
            )),
        });
    }
    let mut check = ChainCheck::new(anchor.as_ref());
    let mut reached = (at == Some(start.position)).then_some(start);
    let mut after = i64::MIN;
    'walk: while reached.is_none() {
        let rows = backend.chained(after, CHUNK)?;
        for row in &rows {
            check.visit(row);
            if let Some(p) = check.problems.first() {
                return Err(Error::data(format!(
                    "ledger {ledger}: {} {}, so the chain's head cannot be vouched for",
                    entry_label(p.position, p.seq),
                    p.what
                ))
                .with_hint(EDITED_HINT));
            }
            if at.is_some_and(|position| check.position >= position) {
                reached = check.tail();
                break 'walk;
            }
        }
        match rows.last() {
            Some(last) if rows.len() == CHUNK => after = last.seq,
            _ => break,
        }
    }
    let tail = check.tail().unwrap_or(start);
    let head = match (at, reached) {
        (None, _) => tail,
        (Some(position), Some(link)) if link.position == position => link,
        (Some(position), _) => {
            return Err(Error::Lookup {
                message: format!(
                    "the ledger {ledger} has had {} {}; there is no position {position}",
                    tail.position,
                    plural(tail.position, "entry", "entries")
                ),
                hint: Some(
                    "a head anchored with more entries than the ledger has now means entries were removed".into(),
                ),
            });
        }
    };
    Ok(Head {
        ledger,
        digest: head.digest,
        entries: head.position,
        kept: head.position - start.position,
        anchor,
    })
}

/// `n` followed by the singular or the plural noun.
pub fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 { one.to_string() } else { many.to_string() }
}

/// What the chain logic needs from a backend inside one write transaction that holds the ledger's
/// write lock.
trait ChainTx {
    fn ledger(&self) -> String;
    /// The newest chained entry's link, and the oldest row after it that has no link yet.
    fn last_links(&mut self) -> Result<(Option<Link>, Option<i64>)>;
    fn rows_after(&mut self, after: i64, limit: usize) -> Result<Vec<Chained>>;
    fn set_links(&mut self, links: &[(i64, Link)]) -> Result<()>;
    fn anchor(&mut self) -> Result<Option<Anchor>>;
    /// The first row made at or after `time`.
    fn first_at_or_after(&mut self, time: &str) -> Result<Option<i64>>;
    /// The last row before `seq` (the last row, without it).
    fn last_before(&mut self, seq: Option<i64>) -> Result<Option<i64>>;
    fn delete_through(&mut self, seq: i64) -> Result<usize>;
    fn add_anchor(&mut self, anchor: &Anchor) -> Result<()>;
    fn count_before(&mut self, time: &str) -> Result<usize>;
    fn delete_unused_inputs(&mut self) -> Result<usize>;
}

/// The chain's tail, to append after: the newest entry's link, or the anchor (the genesis) when the
/// ledger holds no entry. A newest entry without its link is an error: only the migration that adds the
/// chain columns chains entries after the fact ([`chain_all`]), so a missing link means an edit.
fn tail<T: ChainTx + ?Sized>(tx: &mut T) -> Result<Link> {
    match tx.last_links()? {
        (_, Some(seq)) => Err(unlinked_tail(&tx.ledger(), seq)),
        (Some(link), None) => Ok(link),
        (None, None) => Ok(tx.anchor()?.as_ref().map_or(Link::START, Anchor::link)),
    }
}

/// Chains every entry of a ledger written before the chain existed, in row order, which is commit
/// order (SQLite hands out row numbers under its write lock; PostgreSQL appenders held the table
/// lock). Called only in the transaction that adds the chain columns.
fn chain_all<T: ChainTx + ?Sized>(tx: &mut T) -> Result<()> {
    let mut tail = Link::START;
    let mut after = i64::MIN;
    loop {
        let rows = tx.rows_after(after, CHUNK)?;
        let Some(last) = rows.last() else { break };
        after = last.seq;
        let mut links = Vec::with_capacity(rows.len());
        for row in &rows {
            let entry = row.entry.as_ref().map_err(|why| {
                Error::data(format!("ledger {}: cannot chain entry {}: {why}", tx.ledger(), row.seq))
                    .with_hint("correct or delete that row; mlpipe never writes one like it")
            })?;
            tail = tail.next(entry);
            links.push((row.seq, tail));
        }
        tx.set_links(&links)?;
    }
    Ok(())
}

/// Removes the longest prefix of the chain made before `before`, once it verifies from the current
/// anchor, and records its head as the new anchor.
fn prune_in<T: ChainTx + ?Sized>(tx: &mut T, before: &str, now: &str) -> Result<Pruned> {
    tail(tx)?;
    let cut = tx.first_at_or_after(before)?;
    let mut pruned = Pruned {
        entries: 0,
        inputs: 0,
        anchor: None,
        kept_older: 0,
    };
    if let Some(last) = tx.last_before(cut)? {
        let anchor = tx.anchor()?;
        let mut check = ChainCheck::new(anchor.as_ref());
        let mut after = i64::MIN;
        'walk: loop {
            let rows = tx.rows_after(after, CHUNK)?;
            let Some(end) = rows.last() else { break };
            after = end.seq;
            for row in &rows {
                if row.seq > last {
                    break 'walk;
                }
                check.visit(row);
            }
        }
        if let Some(first) = check.problems.first() {
            return Err(Error::data(format!(
                "cannot prune the ledger {}: {} of the entries to remove do not verify (entry {} {})",
                tx.ledger(),
                check.problems.len(),
                first.seq,
                first.what
            ))
            .with_hint(
                "pruning would discard the evidence: run `mlpipe verify`, and restore the ledger from a backup",
            ));
        }
        let Some(head) = check.tail() else {
            return Err(damaged_link(&tx.ledger(), last));
        };
        let anchor = Anchor {
            position: head.position,
            digest: head.digest,
            pruned_before: before.to_string(),
            time: now.to_string(),
        };
        pruned.entries = tx.delete_through(last)?;
        tx.add_anchor(&anchor)?;
        pruned.anchor = Some(anchor);
    }
    pruned.kept_older = tx.count_before(before)?;
    pruned.inputs = tx.delete_unused_inputs()?;
    Ok(pruned)
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

const SQLITE_SCHEMA: &str =
    // Every index is one more page per commit in the WAL: only the lookups `reproduce` and the time
    // filters need are indexed, and inputs are one b-tree (WITHOUT ROWID). `seq` is the rowid: new rows
    // get the highest number plus one, under the write lock, so row order is commit order.
    "CREATE TABLE IF NOT EXISTS ledger (
        seq INTEGER PRIMARY KEY,
        prediction TEXT NOT NULL, run TEXT NOT NULL, model TEXT NOT NULL,
        input TEXT NOT NULL, input_format TEXT NOT NULL, output TEXT NOT NULL,
        rows INTEGER NOT NULL, value REAL, channel TEXT NOT NULL, role TEXT NOT NULL,
        pair TEXT, time TEXT NOT NULL, source TEXT NOT NULL,
        position INTEGER, digest TEXT);
     CREATE INDEX IF NOT EXISTS ledger_prediction ON ledger(prediction);
     CREATE INDEX IF NOT EXISTS ledger_time ON ledger(time);
     CREATE TABLE IF NOT EXISTS ledger_inputs (id TEXT PRIMARY KEY, body BLOB NOT NULL) WITHOUT ROWID;
     CREATE TABLE IF NOT EXISTS ledger_anchor (
        position INTEGER PRIMARY KEY, digest TEXT NOT NULL, pruned_before TEXT NOT NULL, time TEXT NOT NULL);";

/// The fields of a row as text (integers in decimal, reals in shortest round-trip form), whatever
/// their stored type.
fn sqlite_fields<const N: usize>(r: &rusqlite::Row<'_>) -> rusqlite::Result<[Option<String>; N]> {
    let mut out: [Option<String>; N] = std::array::from_fn(|_| None);
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

/// Whether the ledger table has its chain columns (a ledger made before the chain has not).
fn sqlite_has_chain(conn: &rusqlite::Connection) -> rusqlite::Result<bool> {
    let n: i64 = conn.query_row(
        "SELECT count(*) FROM pragma_table_info('ledger') WHERE name IN ('position', 'digest')",
        [],
        |r| r.get(0),
    )?;
    Ok(n == 2)
}

/// Whether the database holds a table of that name.
fn sqlite_has_table(conn: &rusqlite::Connection, table: &str) -> rusqlite::Result<bool> {
    let n: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?",
        [table],
        |r| r.get(0),
    )?;
    Ok(n > 0)
}

impl SqliteLedger {
    pub fn open(path: &Path) -> Result<SqliteLedger> {
        Self::open_with(path, rusqlite::OpenFlags::empty())
    }

    /// Opens an existing ledger to read it; creates, migrates and chains nothing.
    pub fn open_existing(path: &Path) -> Result<SqliteLedger> {
        Self::open_read(path)
    }

    /// [`SqliteLedger::open`] with extra SQLite open flags (`SQLITE_OPEN_NOFOLLOW` for the store's ledger).
    pub fn open_with(path: &Path, flags: rusqlite::OpenFlags) -> Result<SqliteLedger> {
        let conn = database::open_sqlite_with(path, flags)?;
        let e = |e: rusqlite::Error| database::sqlite_error(path, &e);
        // Checkpoints run on their own thread (see Checkpointer), never inside a commit.
        conn.pragma_update(None, "wal_autocheckpoint", 0).map_err(e)?;
        conn.execute_batch(SQLITE_SCHEMA).map_err(e)?;
        let mut ledger = SqliteLedger {
            path: path.to_path_buf(),
            conn,
            checkpointer: None,
        };
        ledger.migrate()?;
        Ok(ledger)
    }

    /// Opens without creating the file (no `SQLITE_OPEN_CREATE`) and without writing: a missing file, or
    /// one that holds no ledger table, is "no ledger at …".
    fn open_read(path: &Path) -> Result<SqliteLedger> {
        use rusqlite::OpenFlags;
        let e = |e: rusqlite::Error| database::sqlite_error(path, &e);
        let ledger = format!("sqlite:{}", path.display());
        if std::fs::symlink_metadata(path).is_err() {
            return Err(no_ledger(&ledger));
        }
        let conn = rusqlite::Connection::open_with_flags(
            database::plain_sqlite_path(path),
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_NOFOLLOW,
        )
        .map_err(e)?;
        conn.busy_timeout(std::time::Duration::from_secs(30)).map_err(e)?;
        if !sqlite_has_table(&conn, "ledger").map_err(e)? {
            return Err(no_ledger(&ledger));
        }
        if !sqlite_has_chain(&conn).map_err(e)? || !sqlite_has_table(&conn, "ledger_anchor").map_err(e)? {
            return Err(not_chained_yet(&ledger));
        }
        Ok(SqliteLedger {
            path: path.to_path_buf(),
            conn,
            checkpointer: None,
        })
    }

    /// Adds the chain columns to a ledger made before them and chains its entries, in one transaction
    /// under the write lock (another process may be doing the same). A ledger that has the columns is
    /// left alone: an entry without its link there was edited, and `verify` reports it.
    fn migrate(&mut self) -> Result<()> {
        let path = self.path.clone();
        let e = |e: rusqlite::Error| database::sqlite_error(&path, &e);
        if sqlite_has_chain(&self.conn).map_err(e)? {
            return Ok(());
        }
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(e)?;
        if !sqlite_has_chain(&tx).map_err(e)? {
            tx.execute_batch(
                "ALTER TABLE ledger ADD COLUMN position INTEGER; ALTER TABLE ledger ADD COLUMN digest TEXT;",
            )
            .map_err(e)?;
            chain_all(&mut SqliteTx { conn: &tx, path: &path })?;
        }
        tx.commit().map_err(e)
    }

    fn err(&self, e: &rusqlite::Error) -> Error {
        database::sqlite_error(&self.path, e)
    }

    /// Runs `f` in an IMMEDIATE transaction (the database's write lock, taken at BEGIN).
    fn write<T>(&mut self, f: impl FnOnce(&mut SqliteTx<'_>) -> Result<T>) -> Result<T> {
        let path = self.path.clone();
        let e = |e: rusqlite::Error| database::sqlite_error(&path, &e);
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(e)?;
        let out = f(&mut SqliteTx { conn: &tx, path: &path })?;
        tx.commit().map_err(e)?;
        Ok(out)
    }
}

struct SqliteTx<'a> {
    conn: &'a rusqlite::Connection,
    path: &'a Path,
}

impl SqliteTx<'_> {
    fn err(&self, e: &rusqlite::Error) -> Error {
        database::sqlite_error(self.path, e)
    }

    fn optional_i64(&self, sql: &str, params: impl rusqlite::Params) -> Result<Option<i64>> {
        self.conn
            .query_row(sql, params, |r| r.get::<_, Option<i64>>(0))
            .map_err(|e| self.err(&e))
    }
}

fn to_usize(n: i64) -> usize {
    usize::try_from(n).unwrap_or(0)
}

impl ChainTx for SqliteTx<'_> {
    fn ledger(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }

    fn last_links(&mut self) -> Result<(Option<Link>, Option<i64>)> {
        let ledger = self.ledger();
        let e = |e: rusqlite::Error| database::sqlite_error(self.path, &e);
        let mut stmt = self
            .conn
            .prepare_cached("SELECT seq, position, digest FROM ledger ORDER BY seq DESC")
            .map_err(e)?;
        let mut rows = stmt.query([]).map_err(e)?;
        let mut unchained = None;
        // Newest first: normally the first row is linked and the walk stops there.
        while let Some(r) = rows.next().map_err(e)? {
            let f: [Option<String>; 3] = sqlite_fields(r).map_err(e)?;
            let seq = f[0].as_deref().and_then(|s| s.parse().ok()).unwrap_or_default();
            match parse_link(&ledger, seq, f[1].as_deref(), f[2].as_deref())? {
                Some(link) => return Ok((Some(link), unchained)),
                None => unchained = Some(seq),
            }
        }
        Ok((None, unchained))
    }

    fn rows_after(&mut self, after: i64, limit: usize) -> Result<Vec<Chained>> {
        sqlite_chained(self.conn, self.path, after, limit)
    }

    fn set_links(&mut self, links: &[(i64, Link)]) -> Result<()> {
        let e = |e: rusqlite::Error| database::sqlite_error(self.path, &e);
        let mut update = self
            .conn
            .prepare_cached("UPDATE ledger SET position = ?, digest = ? WHERE seq = ?")
            .map_err(e)?;
        for (seq, link) in links {
            update
                .execute(rusqlite::params![to_i64(link.position)?, link.digest.hex(), seq])
                .map_err(e)?;
        }
        Ok(())
    }

    fn anchor(&mut self) -> Result<Option<Anchor>> {
        sqlite_anchor(self.conn, self.path)
    }

    fn first_at_or_after(&mut self, time: &str) -> Result<Option<i64>> {
        self.optional_i64("SELECT min(seq) FROM ledger WHERE time >= ?", [time])
    }

    fn last_before(&mut self, seq: Option<i64>) -> Result<Option<i64>> {
        match seq {
            Some(s) => self.optional_i64("SELECT max(seq) FROM ledger WHERE seq < ?", [s]),
            None => self.optional_i64("SELECT max(seq) FROM ledger", []),
        }
    }

    fn delete_through(&mut self, seq: i64) -> Result<usize> {
        self.conn
            .execute("DELETE FROM ledger WHERE seq <= ?", [seq])
            .map_err(|e| self.err(&e))
    }

    fn add_anchor(&mut self, a: &Anchor) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO ledger_anchor (position, digest, pruned_before, time) VALUES (?, ?, ?, ?)",
                rusqlite::params![to_i64(a.position)?, a.digest.hex(), a.pruned_before, a.time],
            )
            .map_err(|e| self.err(&e))?;
        Ok(())
    }

    fn count_before(&mut self, time: &str) -> Result<usize> {
        Ok(to_usize(
            self.optional_i64("SELECT count(*) FROM ledger WHERE time < ?", [time])?
                .unwrap_or(0),
        ))
    }

    fn delete_unused_inputs(&mut self) -> Result<usize> {
        self.conn
            .execute(
                "DELETE FROM ledger_inputs WHERE id NOT IN (SELECT input FROM ledger)",
                [],
            )
            .map_err(|e| self.err(&e))
    }
}

fn sqlite_chained(conn: &rusqlite::Connection, path: &Path, after: i64, limit: usize) -> Result<Vec<Chained>> {
    let e = |e: rusqlite::Error| database::sqlite_error(path, &e);
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS}, position, digest FROM ledger WHERE seq > ? ORDER BY seq LIMIT ?"
        ))
        .map_err(e)?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = stmt
        .query_map(rusqlite::params![after, limit], sqlite_fields::<16>)
        .map_err(e)?;
    let mut out = Vec::new();
    for r in rows {
        out.push(chained_from_fields(&r.map_err(e)?));
    }
    Ok(out)
}

fn sqlite_anchor(conn: &rusqlite::Connection, path: &Path) -> Result<Option<Anchor>> {
    use rusqlite::OptionalExtension;
    let e = |e: rusqlite::Error| database::sqlite_error(path, &e);
    let row: Option<[Option<String>; 4]> = conn
        .query_row(
            "SELECT position, digest, pruned_before, time FROM ledger_anchor ORDER BY position DESC LIMIT 1",
            [],
            sqlite_fields::<4>,
        )
        .optional()
        .map_err(e)?;
    row.map(|f| anchor_from_fields(&format!("sqlite:{}", path.display()), &f))
        .transpose()
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
            text(0),
            text(1)
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

impl Backend for SqliteLedger {
    fn append(&mut self, entries: &[Entry], inputs: &[Input]) -> Result<()> {
        self.write(|tx| {
            let mut tail = tail(tx)?;
            let e = |e: rusqlite::Error| database::sqlite_error(tx.path, &e);
            let mut put = tx
                .conn
                .prepare_cached("INSERT INTO ledger_inputs (id, body) VALUES (?, ?) ON CONFLICT(id) DO NOTHING")
                .map_err(e)?;
            for input in inputs {
                put.execute(rusqlite::params![input.id.hex(), input.body]).map_err(e)?;
            }
            let mut add = tx
                .conn
                .prepare_cached(
                    "INSERT INTO ledger (prediction, run, model, input, input_format, output, rows, value, \
                     channel, role, pair, time, source, position, digest) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                )
                .map_err(e)?;
            for x in entries {
                tail = tail.next(x);
                add.execute(rusqlite::params![
                    x.prediction.hex(),
                    x.run.hex(),
                    x.model.hex(),
                    x.input.hex(),
                    x.input_format,
                    x.output.hex(),
                    i64::try_from(x.rows).unwrap_or(i64::MAX),
                    stored_value(x.value),
                    x.channel.name(),
                    x.role,
                    x.pair.map(|p| p.hex()),
                    x.time,
                    x.source,
                    to_i64(tail.position)?,
                    tail.digest.hex(),
                ])
                .map_err(e)?;
            }
            Ok(())
        })
    }

    fn entries(&mut self, filter: &Filter) -> Result<Vec<Entry>> {
        let (sql, values) = filter_sql(filter, false);
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(&e))?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(values.iter()), sqlite_fields::<14>)
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

    fn chained(&mut self, after: i64, limit: usize) -> Result<Vec<Chained>> {
        sqlite_chained(&self.conn, &self.path, after, limit)
    }

    fn anchor(&mut self) -> Result<Option<Anchor>> {
        sqlite_anchor(&self.conn, &self.path)
    }

    fn digest_at(&mut self, position: u64) -> Result<Option<Id>> {
        use rusqlite::OptionalExtension;
        let digest: Option<Option<String>> = self
            .conn
            .query_row(
                "SELECT digest FROM ledger WHERE position = ? ORDER BY seq LIMIT 1",
                [to_i64(position)?],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(&e))?;
        Ok(digest.flatten().as_deref().and_then(Id::from_hex))
    }

    fn prune(&mut self, before: &str, now: &str) -> Result<Pruned> {
        self.write(|tx| prune_in(tx, before, now))
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

/// Serialises the creation and migration of the ledger tables between processes opening the same
/// database at once (an advisory lock, released at commit). "mlpipe\0\x01" as a number.
const PG_SETUP_LOCK: i64 = 0x6d6c_7069_7065_0001;

const PG_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS ledger (
        seq bigserial PRIMARY KEY,
        prediction text NOT NULL, run text NOT NULL, model text NOT NULL,
        input text NOT NULL, input_format text NOT NULL, output text NOT NULL,
        rows bigint NOT NULL, value double precision, channel text NOT NULL, role text NOT NULL,
        pair text, time text NOT NULL, source text NOT NULL,
        position bigint, digest text);
     CREATE INDEX IF NOT EXISTS ledger_prediction ON ledger(prediction);
     CREATE INDEX IF NOT EXISTS ledger_input ON ledger(input);
     CREATE INDEX IF NOT EXISTS ledger_time ON ledger(time);
     CREATE TABLE IF NOT EXISTS ledger_inputs (id text PRIMARY KEY, body bytea NOT NULL);
     CREATE TABLE IF NOT EXISTS ledger_anchor (
        position bigint PRIMARY KEY, digest text NOT NULL, pruned_before text NOT NULL, time text NOT NULL);";

/// Appenders (and `prune`, `head`) hold this lock until they commit. It conflicts with itself and with
/// the lock every INSERT, UPDATE and DELETE takes, never with readers: one appender at a time reads the
/// chain's tail and extends it, after every insert begun before it has committed.
const PG_CHAIN_LOCK: &str = "LOCK TABLE ledger IN SHARE ROW EXCLUSIVE MODE";

const PG_CHAINED: &str = "SELECT seq::text, prediction, run, model, input, input_format, output, rows::text, value, \
                          channel, role, pair, time, source, position::text, digest FROM ledger";

/// A row of text columns, `value` (column 8) a double.
fn pg_fields<const N: usize>(r: &postgres::Row) -> [Option<String>; N] {
    std::array::from_fn(|i| {
        if i == 8 {
            r.get::<_, Option<f64>>(i).map(|v| format!("{v:?}"))
        } else {
            r.get::<_, Option<String>>(i)
        }
    })
}

impl PostgresLedger {
    /// Opens (creating its tables when absent) a ledger to write to.
    pub fn open(url: &str) -> Result<PostgresLedger> {
        Self::open_as(url, true)
    }

    fn open_as(url: &str, write: bool) -> Result<PostgresLedger> {
        let redacted = database::redact_url(url);
        let mut client = database::connect_postgres(url)?;
        let r = redacted.clone();
        let e = move |what: &'static str| {
            let r = r.clone();
            move |err: postgres::Error| database::postgres_error(&r, what, &err)
        };
        if !write {
            // Read commands create, migrate and chain nothing.
            let exists: bool = client
                .query_one("SELECT to_regclass('ledger') IS NOT NULL", &[])
                .map_err(e("look for the ledger"))?
                .get(0);
            if !exists {
                return Err(no_ledger(&redacted));
            }
            let chained: bool = client
                .query_one(
                    "SELECT to_regclass('ledger_anchor') IS NOT NULL AND (SELECT count(*) FROM pg_attribute \
                     WHERE attrelid = 'ledger'::regclass AND attname IN ('position', 'digest') \
                     AND NOT attisdropped) = 2",
                    &[],
                )
                .map_err(e("read the ledger's columns"))?
                .get(0);
            if !chained {
                return Err(not_chained_yet(&redacted));
            }
            return Ok(PostgresLedger { redacted, client });
        }
        let mut tx = client.transaction().map_err(e("begin"))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PG_SETUP_LOCK])
            .map_err(e("lock the ledger setup"))?;
        tx.batch_execute(PG_SCHEMA).map_err(e("create the ledger tables"))?;
        let columns: i64 = tx
            .query_one(
                "SELECT count(*) FROM pg_attribute WHERE attrelid = 'ledger'::regclass \
                 AND attname IN ('position', 'digest') AND NOT attisdropped",
                &[],
            )
            .map_err(e("read the ledger's columns"))?
            .get(0);
        if columns < 2 {
            // A ledger made before the chain: add its columns and chain its entries, in this transaction
            // only. Afterwards an entry without its link was edited: `verify` reports it.
            tx.batch_execute(
                "ALTER TABLE ledger ADD COLUMN IF NOT EXISTS position bigint, ADD COLUMN IF NOT EXISTS digest text",
            )
            .map_err(e("add the chain columns"))?;
            tx.batch_execute(PG_CHAIN_LOCK).map_err(e("lock the ledger"))?;
            chain_all(&mut PgTx {
                tx: &mut tx,
                redacted: &redacted,
            })?;
        }
        // One entry per position, even if something bypassed the lock.
        tx.batch_execute("CREATE UNIQUE INDEX IF NOT EXISTS ledger_position ON ledger(position)")
            .map_err(e("index the chain"))?;
        tx.commit().map_err(e("commit"))?;
        Ok(PostgresLedger { redacted, client })
    }

    /// Runs `f` in a transaction holding the chain lock.
    fn write<T>(&mut self, f: impl FnOnce(&mut PgTx<'_, '_>) -> Result<T>) -> Result<T> {
        let r = self.redacted.clone();
        let e = move |what: &'static str| {
            let r = r.clone();
            move |err: postgres::Error| database::postgres_error(&r, what, &err)
        };
        let mut tx = self.client.transaction().map_err(e("begin"))?;
        tx.batch_execute(PG_CHAIN_LOCK).map_err(e("lock the ledger"))?;
        let out = f(&mut PgTx {
            tx: &mut tx,
            redacted: &self.redacted,
        })?;
        tx.commit().map_err(e("commit"))?;
        Ok(out)
    }
}

struct PgTx<'a, 'b> {
    tx: &'a mut postgres::Transaction<'b>,
    redacted: &'a str,
}

impl PgTx<'_, '_> {
    fn optional_i64(&mut self, sql: &str, params: &[&(dyn postgres::types::ToSql + Sync)]) -> Result<Option<i64>> {
        let redacted = self.redacted;
        let row = self
            .tx
            .query_one(sql, params)
            .map_err(|e| database::postgres_error(redacted, "read the ledger", &e))?;
        Ok(row.get(0))
    }

    fn execute(
        &mut self,
        what: &'static str,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<usize> {
        let redacted = self.redacted;
        let n = self
            .tx
            .execute(sql, params)
            .map_err(|e| database::postgres_error(redacted, what, &e))?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }
}

impl ChainTx for PgTx<'_, '_> {
    fn ledger(&self) -> String {
        self.redacted.to_string()
    }

    fn last_links(&mut self) -> Result<(Option<Link>, Option<i64>)> {
        let ledger = self.ledger();
        let redacted = self.redacted;
        let read = |tx: &mut postgres::Transaction<'_>, sql: &str| {
            tx.query(sql, &[])
                .map_err(|e| database::postgres_error(redacted, "read the ledger's tail", &e))
        };
        // Normally the newest row is linked: one row read. Otherwise walk back to the newest linked one.
        let mut unchained = None;
        for sql in [
            "SELECT seq, position::text, digest FROM ledger ORDER BY seq DESC LIMIT 1",
            "SELECT seq, position::text, digest FROM ledger ORDER BY seq DESC",
        ] {
            for row in read(self.tx, sql)? {
                let seq: i64 = row.get(0);
                let position: Option<String> = row.get(1);
                let digest: Option<String> = row.get(2);
                match parse_link(&ledger, seq, position.as_deref(), digest.as_deref())? {
                    Some(link) => return Ok((Some(link), unchained)),
                    None => unchained = Some(seq),
                }
            }
            if unchained.is_none() {
                break;
            }
        }
        Ok((None, unchained))
    }

    fn rows_after(&mut self, after: i64, limit: usize) -> Result<Vec<Chained>> {
        pg_chained(self.tx, self.redacted, after, limit)
    }

    fn set_links(&mut self, links: &[(i64, Link)]) -> Result<()> {
        let seqs: Vec<i64> = links.iter().map(|(s, _)| *s).collect();
        let positions = links
            .iter()
            .map(|(_, l)| to_i64(l.position))
            .collect::<Result<Vec<i64>>>()?;
        let digests: Vec<String> = links.iter().map(|(_, l)| l.digest.hex()).collect();
        self.execute(
            "chain the ledger's entries",
            "UPDATE ledger AS l SET position = v.position, digest = v.digest \
             FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS v(seq, position, digest) WHERE l.seq = v.seq",
            &[&seqs, &positions, &digests],
        )?;
        Ok(())
    }

    fn anchor(&mut self) -> Result<Option<Anchor>> {
        pg_anchor(self.tx, self.redacted)
    }

    fn first_at_or_after(&mut self, time: &str) -> Result<Option<i64>> {
        self.optional_i64("SELECT min(seq) FROM ledger WHERE time >= $1", &[&time])
    }

    fn last_before(&mut self, seq: Option<i64>) -> Result<Option<i64>> {
        match seq {
            Some(s) => self.optional_i64("SELECT max(seq) FROM ledger WHERE seq < $1", &[&s]),
            None => self.optional_i64("SELECT max(seq) FROM ledger", &[]),
        }
    }

    fn delete_through(&mut self, seq: i64) -> Result<usize> {
        self.execute("prune", "DELETE FROM ledger WHERE seq <= $1", &[&seq])
    }

    fn add_anchor(&mut self, a: &Anchor) -> Result<()> {
        let position = to_i64(a.position)?;
        self.execute(
            "record the anchor",
            "INSERT INTO ledger_anchor (position, digest, pruned_before, time) VALUES ($1, $2, $3, $4)",
            &[&position, &a.digest.hex(), &a.pruned_before, &a.time],
        )?;
        Ok(())
    }

    fn count_before(&mut self, time: &str) -> Result<usize> {
        let n = self
            .optional_i64("SELECT count(*) FROM ledger WHERE time < $1", &[&time])?
            .unwrap_or(0);
        Ok(to_usize(n))
    }

    fn delete_unused_inputs(&mut self) -> Result<usize> {
        self.execute(
            "prune",
            "DELETE FROM ledger_inputs i WHERE NOT EXISTS (SELECT 1 FROM ledger l WHERE l.input = i.id)",
            &[],
        )
    }
}

fn pg_chained(
    client: &mut impl postgres::GenericClient,
    redacted: &str,
    after: i64,
    limit: usize,
) -> Result<Vec<Chained>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = client
        .query(
            // `ledger.seq`: a bare `seq` would order by the text column of that name.
            &format!("{PG_CHAINED} WHERE ledger.seq > $1 ORDER BY ledger.seq LIMIT $2"),
            &[&after, &limit],
        )
        .map_err(|e| database::postgres_error(redacted, "read the ledger", &e))?;
    Ok(rows.iter().map(|r| chained_from_fields(&pg_fields::<16>(r))).collect())
}

fn pg_anchor(client: &mut impl postgres::GenericClient, redacted: &str) -> Result<Option<Anchor>> {
    let row = client
        .query_opt(
            "SELECT position::text, digest, pruned_before, time FROM ledger_anchor \
             ORDER BY ledger_anchor.position DESC LIMIT 1",
            &[],
        )
        .map_err(|e| database::postgres_error(redacted, "read the ledger's anchor", &e))?;
    row.map(|r| {
        let f: [Option<String>; 4] = std::array::from_fn(|i| r.get::<_, Option<String>>(i));
        anchor_from_fields(redacted, &f)
    })
    .transpose()
}

impl Backend for PostgresLedger {
    fn append(&mut self, entries: &[Entry], inputs: &[Input]) -> Result<()> {
        self.write(|tx| {
            let mut tail = tail(tx)?;
            let redacted = tx.redacted;
            let e = |what: &'static str| move |err: postgres::Error| database::postgres_error(redacted, what, &err);
            let put = tx
                .tx
                .prepare("INSERT INTO ledger_inputs (id, body) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING")
                .map_err(e("prepare"))?;
            for input in inputs {
                tx.tx
                    .execute(&put, &[&input.id.hex(), &input.body])
                    .map_err(e("store an input"))?;
            }
            let add = tx
                .tx
                .prepare(
                    "INSERT INTO ledger (prediction, run, model, input, input_format, output, rows, value, \
                     channel, role, pair, time, source, position, digest) \
                     VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15)",
                )
                .map_err(e("prepare"))?;
            for x in entries {
                tail = tail.next(x);
                let rows = i64::try_from(x.rows).unwrap_or(i64::MAX);
                let position = to_i64(tail.position)?;
                tx.tx
                    .execute(
                        &add,
                        &[
                            &x.prediction.hex(),
                            &x.run.hex(),
                            &x.model.hex(),
                            &x.input.hex(),
                            &x.input_format,
                            &x.output.hex(),
                            &rows,
                            &stored_value(x.value),
                            &x.channel.name(),
                            &x.role,
                            &x.pair.map(|p| p.hex()),
                            &x.time,
                            &x.source,
                            &position,
                            &tail.digest.hex(),
                        ],
                    )
                    .map_err(e("append an entry"))?;
            }
            Ok(())
        })
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
        rows.iter().map(|r| entry_from_fields(&pg_fields::<14>(r))).collect()
    }

    fn input(&mut self, id: &Id) -> Result<Option<Vec<u8>>> {
        let row = self
            .client
            .query_opt("SELECT body FROM ledger_inputs WHERE id = $1", &[&id.hex()])
            .map_err(|e| database::postgres_error(&self.redacted, "read an input", &e))?;
        row.map(|r| check_input(id, r.get(0), &format!("{} (ledger_inputs)", self.redacted)))
            .transpose()
    }

    fn chained(&mut self, after: i64, limit: usize) -> Result<Vec<Chained>> {
        pg_chained(&mut self.client, &self.redacted, after, limit)
    }

    fn anchor(&mut self) -> Result<Option<Anchor>> {
        pg_anchor(&mut self.client, &self.redacted)
    }

    fn digest_at(&mut self, position: u64) -> Result<Option<Id>> {
        let position = to_i64(position)?;
        let row = self
            .client
            .query_opt("SELECT digest FROM ledger WHERE position = $1", &[&position])
            .map_err(|e| database::postgres_error(&self.redacted, "read the ledger", &e))?;
        Ok(row
            .and_then(|r| r.get::<_, Option<String>>(0))
            .as_deref()
            .and_then(Id::from_hex))
    }

    fn prune(&mut self, before: &str, now: &str) -> Result<Pruned> {
        self.write(|tx| prune_in(tx, before, now))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn id(text: &str) -> Id {
        Id::of_bytes(text.as_bytes())
    }

    fn time(second: u64) -> String {
        format!("2026-11-26T10:{:02}:{:02}.000000Z", second / 60, second % 60)
    }

    /// A REST prediction `i`, made at `time(t)`.
    fn entry(i: u64, t: u64) -> Entry {
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

    fn fresh() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.sqlite");
        (dir, path)
    }

    /// Appends entries 1..=n, made one second apart, in transactions of up to three.
    fn filled(path: &Path, n: u64) -> SqliteLedger {
        let mut ledger = SqliteLedger::open(path).unwrap();
        let all: Vec<Entry> = (1..=n).map(|i| entry(i, i)).collect();
        for batch in all.chunks(3) {
            ledger.append(batch, &[]).unwrap();
        }
        ledger
    }

    fn sql(path: &Path, statement: &str) {
        rusqlite::Connection::open(path)
            .unwrap()
            .execute_batch(statement)
            .unwrap();
    }

    /// (seq, what) of every problem the chain check finds.
    fn problems(ledger: &mut dyn Backend) -> Vec<(i64, String)> {
        check_chain(ledger)
            .unwrap()
            .problems
            .into_iter()
            .map(|p| (p.seq, p.what))
            .collect()
    }

    const CHANGED: &str = "does not match its chain digest: it, or the digest of the entry before it, was changed after \
                           it was recorded";

    #[test]
    fn golden_ledger_entry_digests() {
        // Changing these digests breaks every recorded chain: bump the context string instead.
        let first = Entry {
            seq: 7,
            prediction: id("prediction"),
            run: id("run"),
            model: id("model"),
            input: id("input"),
            input_format: "record".into(),
            output: id("output"),
            rows: 1,
            value: Some(181_234.5),
            channel: Channel::Serve,
            role: "champion".into(),
            pair: None,
            time: "2026-11-26T10:00:00.000000Z".into(),
            source: "127.0.0.1:5000".into(),
        };
        let second = Entry {
            seq: 8,
            prediction: id("prediction 2"),
            run: id("run 2"),
            model: id("model 2"),
            input: id("input 2"),
            input_format: "csv".into(),
            output: id("output 2"),
            rows: 2,
            value: None,
            channel: Channel::Batch,
            role: "shadow".into(),
            pair: Some(id("prediction")),
            time: "2026-11-26T10:00:01.000000Z".into(),
            source: "test.csv".into(),
        };
        let one = Link::START.next(&first);
        let two = one.next(&second);
        assert_eq!(one.digest.hex(), crate::digest::tests::golden("ledger_entry_1"));
        assert_eq!(two.digest.hex(), crate::digest::tests::golden("ledger_entry_2"));
        assert_eq!(two.position, 2);
        // The row number is storage, not content.
        assert_eq!(Link::START.next(&Entry { seq: 99, ..first }), one);
    }

    #[test]
    fn a_value_edited_in_the_database_breaks_the_chain_at_that_entry() {
        for edit in [
            "UPDATE ledger SET value = 999 WHERE seq = 3",
            "UPDATE ledger SET value = NULL WHERE seq = 3",
            "UPDATE ledger SET time = '2026-11-26T09:00:00.000000Z' WHERE seq = 3",
            "UPDATE ledger SET source = '10.0.0.1:1' WHERE seq = 3",
            "UPDATE ledger SET channel = 'stream' WHERE seq = 3",
            "UPDATE ledger SET rows = 2 WHERE seq = 3",
            "UPDATE ledger SET output = prediction WHERE seq = 3",
            "UPDATE ledger SET pair = prediction WHERE seq = 3",
        ] {
            let (_dir, path) = fresh();
            let mut ledger = filled(&path, 6);
            assert_eq!(problems(&mut ledger), Vec::new());
            sql(&path, edit);
            assert_eq!(problems(&mut ledger), vec![(3, CHANGED.to_string())], "{edit}");
            // The head is recomputed: an edited chain has none to vouch for.
            assert_eq!(
                head(&mut ledger, None).unwrap_err().to_string(),
                format!(
                    "ledger sqlite:{}: entry 3 (row 3) {CHANGED}, so the chain's head cannot be vouched for",
                    path.display()
                )
            );
        }
    }

    #[test]
    fn an_entry_edited_with_its_digest_recomputed_breaks_the_chain_at_the_next_entry() {
        let (_dir, path) = fresh();
        let mut ledger = filled(&path, 5);
        let entries = ledger.entries(&Filter::default()).unwrap();
        let mut edited = entries.iter().find(|e| e.seq == 3).unwrap().clone();
        edited.value = Some(999.0);
        let previous = ledger.digest_at(2).unwrap().unwrap();
        let forged = entry_digest(&previous, 3, &edited);
        sql(
            &path,
            &format!("UPDATE ledger SET value = 999, digest = '{forged}' WHERE seq = 3"),
        );
        assert_eq!(problems(&mut ledger), vec![(4, CHANGED.to_string())]);
    }

    #[test]
    fn removed_and_inserted_entries_are_reported_where_the_chain_breaks() {
        let (_dir, path) = fresh();
        let mut ledger = filled(&path, 7);
        let anchored = head(&mut ledger, None).unwrap();
        sql(&path, "DELETE FROM ledger WHERE seq = 3");
        sql(&path, "DELETE FROM ledger WHERE seq IN (5, 6)");
        assert_eq!(
            problems(&mut ledger),
            vec![
                (
                    4,
                    "is at chain position 4, but the entry before it is at 2: the entry at position 3 was removed"
                        .to_string()
                ),
                (
                    7,
                    "is at chain position 7, but the entry before it is at 4: the entries at positions 5 to 6 were \
                     removed"
                        .to_string()
                ),
            ]
        );
        // A copy of an entry appended at the end, link and all.
        let fields = &COLUMNS["seq, ".len()..];
        sql(
            &path,
            &format!(
                "INSERT INTO ledger ({fields}, position, digest) SELECT {fields}, position, digest FROM ledger WHERE seq = 2"
            ),
        );
        let found = problems(&mut ledger);
        assert_eq!(
            found.last().unwrap().1,
            "is at chain position 2, but the entry before it is at 7: entries were inserted or reordered"
        );
        // Removing the newest entries leaves a valid chain: a head anchored elsewhere shows the loss.
        let (_dir2, path2) = fresh();
        let mut ledger2 = filled(&path2, 7);
        let anchored2 = head(&mut ledger2, None).unwrap();
        sql(&path2, "DELETE FROM ledger WHERE seq >= 6");
        assert_eq!(problems(&mut ledger2), Vec::new());
        let err = head(&mut ledger2, Some(anchored2.entries)).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "the ledger sqlite:{} has had 5 entries; there is no position 7",
                path2.display()
            )
        );
        assert_eq!(anchored.entries, 7);
    }

    /// The ledger table as mlpipe wrote it before the chain existed.
    const OLD_SCHEMA: &str = "CREATE TABLE ledger (
            seq INTEGER PRIMARY KEY,
            prediction TEXT NOT NULL, run TEXT NOT NULL, model TEXT NOT NULL,
            input TEXT NOT NULL, input_format TEXT NOT NULL, output TEXT NOT NULL,
            rows INTEGER NOT NULL, value REAL, channel TEXT NOT NULL, role TEXT NOT NULL,
            pair TEXT, time TEXT NOT NULL, source TEXT NOT NULL);
         CREATE INDEX ledger_prediction ON ledger(prediction);
         CREATE INDEX ledger_time ON ledger(time);
         CREATE TABLE ledger_inputs (id TEXT PRIMARY KEY, body BLOB NOT NULL) WITHOUT ROWID;";

    /// Inserts entries the way an mlpipe without the chain did.
    fn insert_unchained(path: &Path, entries: &[Entry]) {
        let conn = rusqlite::Connection::open(path).unwrap();
        for x in entries {
            conn.execute(
                "INSERT INTO ledger (prediction, run, model, input, input_format, output, rows, value, \
                 channel, role, pair, time, source) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                rusqlite::params![
                    x.prediction.hex(),
                    x.run.hex(),
                    x.model.hex(),
                    x.input.hex(),
                    x.input_format,
                    x.output.hex(),
                    i64::try_from(x.rows).unwrap(),
                    x.value,
                    x.channel.name(),
                    x.role,
                    x.pair.map(|p| p.hex()),
                    x.time,
                    x.source,
                ],
            )
            .unwrap();
        }
    }

    #[test]
    fn a_ledger_written_before_the_chain_is_chained_in_commit_order_on_open() {
        let (_dir, path) = fresh();
        sql(&path, OLD_SCHEMA);
        // Committed in this order; the times are not in order (a slow request).
        let old = [entry(1, 5), entry(2, 3), entry(3, 9)];
        insert_unchained(&path, &old);
        let mut ledger = SqliteLedger::open(&path).unwrap();
        let kept = ledger.entries(&Filter::default()).unwrap();
        assert_eq!(kept.len(), 3, "no row lost");
        let expected = old.iter().fold(Link::START, |link, e| link.next(e));
        let now = head(&mut ledger, None).unwrap();
        assert_eq!((now.entries, now.digest, now.kept), (3, expected.digest, 3));
        assert_eq!(problems(&mut ledger), Vec::new());
        ledger.append(&[entry(4, 10)], &[]).unwrap();
        let expected = expected.next(&entry(4, 10));
        assert_eq!(head(&mut ledger, None).unwrap().digest, expected.digest);
        assert_eq!(head(&mut ledger, None).unwrap().entries, 4);
        drop(ledger);
        // Only the migration chains: a row added without its link afterwards is reported, never chained.
        insert_unchained(&path, &[entry(5, 11)]);
        let mut ledger = SqliteLedger::open(&path).unwrap();
        assert_eq!(problems(&mut ledger).iter().map(|p| p.0).collect::<Vec<_>>(), vec![5]);
        assert!(ledger.append(&[entry(6, 12)], &[]).is_err());
    }

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
    fn prune_keeps_the_remaining_chain_verifiable_from_the_pruned_head() {
        let (_dir, path) = fresh();
        let mut ledger = SqliteLedger::open(&path).unwrap();
        // Entry 3 was made late (t = 30); entry 4 early (t = 3).
        let all = [entry(1, 1), entry(2, 2), entry(3, 30), entry(4, 3), entry(5, 5)];
        ledger.append(&all, &[]).unwrap();
        let before = head(&mut ledger, None).unwrap();
        let at_two = ledger.digest_at(2).unwrap().unwrap();
        let pruned = ledger.prune(&time(4), "2026-11-27T00:00:00.000000Z").unwrap();
        // Only the chain's oldest part goes: entries 1 and 2; entry 4 stays although it is older.
        assert_eq!((pruned.entries, pruned.kept_older), (2, 1));
        let anchor = pruned.anchor.unwrap();
        assert_eq!((anchor.position, anchor.digest), (2, at_two));
        assert_eq!(anchor.pruned_before, time(4));
        assert_eq!(problems(&mut ledger), Vec::new());
        let now = head(&mut ledger, None).unwrap();
        assert_eq!((now.entries, now.digest, now.kept), (5, before.digest, 3));
        assert_eq!(head(&mut ledger, Some(2)).unwrap().digest, at_two);
        let err = head(&mut ledger, Some(1)).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "position 1 of the ledger sqlite:{} was pruned: the chain now starts after position 2 (digest {at_two})",
                path.display()
            )
        );
        // Everything: the chain goes on from the last head.
        let all_gone = ledger.prune(&time(3600), "2026-11-27T00:00:01.000000Z").unwrap();
        assert_eq!(all_gone.entries, 3);
        let empty = head(&mut ledger, None).unwrap();
        assert_eq!((empty.entries, empty.digest, empty.kept), (5, before.digest, 0));
        ledger.append(&[entry(6, 6)], &[]).unwrap();
        assert_eq!(
            head(&mut ledger, None).unwrap().digest,
            Link {
                position: 5,
                digest: before.digest
            }
            .next(&entry(6, 6))
            .digest
        );
        assert_eq!(problems(&mut ledger), Vec::new());
    }

    #[test]
    fn prune_refuses_to_remove_entries_that_do_not_verify() {
        let (_dir, path) = fresh();
        let mut ledger = filled(&path, 4);
        sql(&path, "UPDATE ledger SET value = 999 WHERE seq = 1");
        let err = ledger.prune(&time(3), "2026-11-27T00:00:00.000000Z").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "cannot prune the ledger sqlite:{}: 1 of the entries to remove do not verify (entry 1 {CHANGED})",
                path.display()
            )
        );
        assert_eq!(ledger.entries(&Filter::default()).unwrap().len(), 4);
    }

    #[test]
    fn every_value_reads_back_with_the_bits_it_was_hashed_with() {
        let (_dir, path) = fresh();
        let mut ledger = SqliteLedger::open(&path).unwrap();
        let values = [
            -0.0,
            0.0,
            f64::MIN_POSITIVE,
            1e308,
            -1.5e-300,
            f64::INFINITY,
            f64::NAN,
            0.1 + 0.2,
        ];
        let entries: Vec<Entry> = values
            .iter()
            .enumerate()
            .map(|(i, v)| Entry {
                value: Some(*v),
                ..entry(i as u64, 1)
            })
            .collect();
        ledger.append(&entries, &[]).unwrap();
        assert_eq!(problems(&mut ledger), Vec::new());
        let back = ledger.entries(&Filter::default()).unwrap();
        for (e, v) in back.iter().rev().zip(values) {
            assert_eq!(e.value.map(f64::to_bits), stored_value(Some(v)).map(f64::to_bits));
        }
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
    fn blanked_chain_columns_are_reported_and_never_chained_again() {
        let (_dir, path) = fresh();
        drop(filled(&path, 4));
        sql(
            &path,
            "UPDATE ledger SET position = NULL, digest = NULL; \
             UPDATE ledger SET source = 'forged', time = '2001-01-01T00:00:00.000000Z' WHERE seq = 2",
        );
        // Neither a writer's open nor a reader's chains the rows again.
        let mut writer = SqliteLedger::open(&path).unwrap();
        let mut reader = SqliteLedger::open_existing(&path).unwrap();
        let unlinked = "has no chain position or digest: its link was removed outside mlpipe (mlpipe chains every \
                        entry it writes)";
        let expected: Vec<(i64, String)> = (1..=4).map(|seq| (seq, unlinked.to_string())).collect();
        assert_eq!(problems(&mut reader), expected);
        assert_eq!(
            head(&mut reader, None).unwrap_err().to_string(),
            format!(
                "ledger sqlite:{}: entry 1 (row 1) {unlinked}, so the chain's head cannot be vouched for",
                path.display()
            )
        );
        assert_eq!(
            writer.append(&[entry(5, 5)], &[]).unwrap_err().to_string(),
            format!(
                "ledger sqlite:{}: entry 1 has no chain position or digest (its link was removed outside mlpipe), so \
                 nothing can be chained after it",
                path.display()
            )
        );
        let linked: i64 = rusqlite::Connection::open(&path)
            .unwrap()
            .query_row("SELECT count(*) FROM ledger WHERE digest IS NOT NULL", [], |r| r.get(0))
            .unwrap();
        assert_eq!(linked, 0);
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

    #[test]
    fn ledger_head_at_recomputes_the_chain_up_to_that_position() {
        let (_dir, path) = fresh();
        let mut ledger = filled(&path, 8);
        let at_two = ledger.digest_at(2).unwrap().unwrap();
        let at_eight = head(&mut ledger, Some(8)).unwrap();
        assert_eq!(at_eight, head(&mut ledger, None).unwrap());
        sql(&path, "UPDATE ledger SET value = 1 WHERE position = 7");
        for at in [Some(7), Some(8), None] {
            assert_eq!(
                head(&mut ledger, at).unwrap_err().to_string(),
                format!(
                    "ledger sqlite:{}: entry 7 (row 7) {CHANGED}, so the chain's head cannot be vouched for",
                    path.display()
                ),
                "{at:?}"
            );
        }
        // Before the edit, the chain still vouches for its head.
        let two = head(&mut ledger, Some(2)).unwrap();
        assert_eq!((two.digest, two.entries, two.kept), (at_two, 2, 2));
    }
}
