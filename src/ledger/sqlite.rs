//! The SQLite ledger (a store's default, WAL): its schema, migration, write transactions and checkpoint thread.

use std::path::{Path, PathBuf};

use super::chain::{Anchor, ChainTx, Link, Pruned, chain_all, prune_in, stored_value, tail};
use super::{
    Backend, COLUMNS, Chained, Entry, Filter, Input, anchor_from_fields, chained_from_fields, check_input,
    entry_from_fields, filter_sql, no_ledger, not_chained_yet, parse_link, to_i64, to_usize,
};
use crate::database;
use crate::digest::Id;
use crate::error::{Error, Result};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::head;
    use crate::ledger::tests::{entry, filled, fresh, problems, sql};

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
}
