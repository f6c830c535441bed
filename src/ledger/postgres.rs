//! The PostgreSQL ledger: its schema, the setup and chain locks, and its write transactions.

use super::chain::{Anchor, ChainTx, Link, Pruned, chain_all, prune_in, stored_value, tail};
use super::{
    Backend, COLUMNS, Chained, Entry, Filter, Input, anchor_from_fields, chained_from_fields, check_input,
    entry_from_fields, filter_sql, no_ledger, not_chained_yet, parse_link, to_i64, to_usize,
};
use crate::database;
use crate::digest::Id;
use crate::error::Result;

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

    pub(super) fn open_as(url: &str, write: bool) -> Result<PostgresLedger> {
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
