//! Gathering from databases — a table or query in SQLite or PostgreSQL, as of a point in time — and from
//! typed data files (Parquet, Arrow IPC, NDJSON: `files`), turned into a deterministic snapshot.
//!
//! The snapshot is the canonical CSV of the result: a header, one line per row, `\n` line ends, quotes
//! only where a field needs them, NULL written as the pipeline's first missing-value marker (empty when
//! it has none), integers in decimal, floats in their shortest round-trip form (`65`, `0.1`), booleans as
//! `true`/`false`, dates as `YYYY-MM-DD`, timestamps as RFC 3339 (UTC, microseconds). Rows are sorted in
//! mlpipe — by `order_by` (typed: numbers by value, text by bytes), then by the whole line — never by the
//! database, so the physical order of rows and the server's collation cannot change the snapshot. Its id
//! is the blake3 of those bytes, exactly as for a data file; a CSV file written in the same form (the
//! shipped house-price file is) has the same id.
//!
//! Point-in-time shapes (the time columns describe history and are left out of the snapshot):
//! - `updated_at = "col"`: rows whose `col` ≤ `as_of`. With `key = [...]`, the table holds versions and
//!   the latest version of each key at `as_of` is taken (two versions of a key at the same time are an
//!   error). Without `key`, rows must never be updated in place — an overwritten row's past is gone.
//! - `valid_from = "a"`, `valid_to = "b"`: rows with `a` ≤ `as_of` and (`b` is NULL or `b` > `as_of`).
//!
//! SQLite time columns hold ISO 8601 text or Unix seconds; PostgreSQL ones are `date`, `timestamp` or
//! `timestamptz` (compared in UTC).

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::database::{self, Database};
use crate::digest::Id;
use crate::error::{Error, Result};
use crate::vocab::reader::TableReader;

mod files;
mod typed_frame;
pub use files::{FileFormat, Rows, canonical_csv, column_texts, decode_batches, decoding};
pub use typed_frame::read_frame;

/// What to read from a database source, as written in `[gather]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    pub table: Option<String>,
    pub query: Option<String>,
    /// `"now"` or an RFC 3339 time (normalised to UTC with microseconds); `None` without a time shape.
    pub as_of: Option<String>,
    pub history: History,
    pub order_by: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "shape", rename_all = "snake_case")]
pub enum History {
    Current,
    UpdatedAt { column: String, key: Vec<String> },
    Valid { from: String, to: String },
}

impl Selection {
    pub const KEYS: [&'static str; 8] = [
        "table",
        "query",
        "as_of",
        "updated_at",
        "key",
        "valid_from",
        "valid_to",
        "order_by",
    ];

    pub fn parse(g: &mut TableReader<'_, '_>) -> Result<Selection> {
        let table = g.str("table")?;
        let query = g.str("query")?;
        match (&table, &query) {
            (Some(_), Some(q)) => {
                return Err(Error::spec(
                    "give `table` or `query`, not both",
                    Some(q.location.clone()),
                ));
            }
            (None, None) => return Err(g.missing("table", "the table to read, or `query` with a SELECT")),
            (Some(t), None) => {
                database::check_table_name(&t.value)
                    .map_err(|e| Error::spec(e.to_string(), Some(t.location.clone())))?;
            }
            (None, Some(_)) => {}
        }
        let updated_at = g.str("updated_at")?;
        let key = g.str_list("key")?;
        let valid_from = g.str("valid_from")?;
        let valid_to = g.str("valid_to")?;
        let history = match (updated_at, valid_from, valid_to) {
            (Some(u), None, None) => History::UpdatedAt {
                column: u.value,
                key: key.unwrap_or_default().into_iter().map(|k| k.value).collect(),
            },
            (None, Some(f), Some(t)) => History::Valid {
                from: f.value,
                to: t.value,
            },
            (None, None, None) => History::Current,
            (Some(u), _, _) => {
                return Err(Error::spec(
                    "`updated_at` and `valid_from`/`valid_to` are two ways to read history; choose one",
                    Some(u.location),
                ));
            }
            (None, Some(x), None) | (None, None, Some(x)) => {
                return Err(Error::spec("`valid_from` and `valid_to` go together", Some(x.location)));
            }
        };
        if !matches!(history, History::UpdatedAt { .. })
            && let Some(v) = g.raw("key")
        {
            return Err(g.source().error(
                v.span(),
                "`key` picks the latest version by `updated_at`; add `updated_at`",
            ));
        }
        let as_of = match g.str("as_of")? {
            None if history == History::Current => None,
            None => {
                return Err(g
                    .missing("as_of", "the point in time to read: an RFC 3339 time, or \"now\"")
                    .with_hint("`as_of = \"now\"` reads the present and records the time it resolved to"));
            }
            Some(a) if history == History::Current => {
                return Err(Error::spec(
                    "`as_of` needs the time columns to apply it to: `updated_at`, or `valid_from` and `valid_to`",
                    Some(a.location),
                ));
            }
            Some(a) if a.value == "now" => Some("now".to_string()),
            Some(a) => Some(normalise_time(&a.value).map_err(|e| Error::spec(e.to_string(), Some(a.location)))?),
        };
        let order_by = g
            .str_list("order_by")?
            .unwrap_or_default()
            .into_iter()
            .map(|c| c.value)
            .collect();
        Ok(Selection {
            table: table.map(|t| t.value),
            query: query.map(|q| q.value),
            as_of,
            history,
            order_by,
        })
    }

    /// The time columns, left out of the snapshot.
    fn time_columns(&self) -> Vec<&str> {
        match &self.history {
            History::Current => vec![],
            History::UpdatedAt { column, .. } => vec![column.as_str()],
            History::Valid { from, to } => vec![from.as_str(), to.as_str()],
        }
    }
}

/// An RFC 3339 time, normalised to UTC with microseconds (so texts compare like times).
pub fn normalise_time(text: &str) -> Result<String> {
    let t = humantime::parse_rfc3339_weak(text).map_err(|e| {
        Error::data(format!("\"{text}\" is not an RFC 3339 time: {e}")).with_hint("write it as 2026-11-26T10:00:00Z")
    })?;
    Ok(humantime::format_rfc3339_micros(t).to_string())
}

fn epoch_seconds(time: &str) -> Result<f64> {
    let t = humantime::parse_rfc3339_weak(time).map_err(|e| Error::data(format!("bad time {time}: {e}")))?;
    let d = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| Error::data(format!("{time} is before 1970")))?;
    Ok(d.as_secs_f64())
}

/// What a database snapshot came from; stored beside the snapshot, referenced by the run record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceRecord {
    pub kind: String,
    pub format: u32,
    /// The database, password removed ([`Database::without_password`]). Read through
    /// [`database::strip_password`] too, so a record written by an older mlpipe never hands one on.
    #[serde(deserialize_with = "database::deserialize_stored_source")]
    pub source: String,
    /// The SQL that was run (the time is a bound parameter: `as_of`).
    pub query: String,
    pub as_of: Option<String>,
    /// `as_of` as written ("now", or a time).
    pub as_of_written: Option<String>,
    pub rows: usize,
    /// Snapshot columns with their database types.
    pub columns: Vec<(String, String)>,
    /// How the rows were sorted (by `order_by`, or by all columns when none was given).
    pub order: String,
    pub snapshot: Id,
    pub missing_marker: String,
    pub fetched: String,
}

pub struct Fetched {
    pub csv: Vec<u8>,
    pub record: SourceRecord,
}

/// A value as read from the database (text borrowed from the driver's row buffer).
#[derive(Debug, Clone, Copy, PartialEq)]
enum CellRef<'a> {
    Null,
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(&'a str),
}

/// An owned value, kept only for the columns rows are sorted or grouped by.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Null,
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(String),
}

impl CellRef<'_> {
    fn to_owned(self) -> Cell {
        match self {
            CellRef::Null => Cell::Null,
            CellRef::Int(v) => Cell::Int(v),
            CellRef::Float(v) => Cell::Float(v),
            CellRef::Bool(v) => Cell::Bool(v),
            CellRef::Text(v) => Cell::Text(v.to_string()),
        }
    }

    /// Appends the canonical CSV text of the value.
    fn render(self, out: &mut String, na: &str, column: &str) -> Result<()> {
        match self {
            CellRef::Null => out.push_str(na),
            CellRef::Int(v) => {
                let _ = write!(out, "{v}");
            }
            CellRef::Float(v) if v.is_nan() => out.push_str(na),
            CellRef::Float(v) if v.is_infinite() => {
                return Err(Error::data(format!("column \"{column}\" holds an infinite value"))
                    .with_hint("filter or cast it in `query`")
                    .for_column(column));
            }
            CellRef::Float(v) => {
                let _ = write!(out, "{v}");
            }
            CellRef::Bool(b) => out.push_str(if b { "true" } else { "false" }),
            CellRef::Text(s) => push_field(out, s),
        }
        Ok(())
    }
}

impl Cell {
    fn rank(&self) -> u8 {
        match self {
            Cell::Null => 0,
            Cell::Int(_) | Cell::Float(_) => 1,
            Cell::Bool(_) => 2,
            Cell::Text(_) => 3,
        }
    }

    #[allow(clippy::cast_precision_loss)]
    fn cmp(&self, other: &Cell) -> Ordering {
        match (self, other) {
            (Cell::Int(a), Cell::Int(b)) => a.cmp(b),
            (Cell::Int(a), Cell::Float(b)) => (*a as f64).total_cmp(b),
            (Cell::Float(a), Cell::Int(b)) => a.total_cmp(&(*b as f64)),
            (Cell::Float(a), Cell::Float(b)) => a.total_cmp(b),
            (Cell::Bool(a), Cell::Bool(b)) => a.cmp(b),
            (Cell::Text(a), Cell::Text(b)) => a.as_bytes().cmp(b.as_bytes()),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

fn push_field(out: &mut String, s: &str) {
    if s.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

/// Which columns go where, decided once the result's columns are known.
struct Layout {
    /// Columns written to the snapshot (all but the time columns), in result order.
    keep: Vec<usize>,
    /// `order_by` columns.
    order: Vec<usize>,
    /// `key` columns (latest version per key).
    key: Vec<usize>,
    na: String,
}

impl Layout {
    fn new(names: &[String], sel: &Selection, na: &str) -> Result<Layout> {
        let find = |c: &str, what: &str| {
            names
                .iter()
                .position(|n| n == c)
                .ok_or_else(|| missing_column(c, what, names))
        };
        let time = sel.time_columns();
        for c in &time {
            find(c, "time")?;
        }
        let order = sel
            .order_by
            .iter()
            .map(|c| find(c, "order_by"))
            .collect::<Result<_>>()?;
        let key = match &sel.history {
            History::UpdatedAt { key, .. } => key.iter().map(|c| find(c, "key")).collect::<Result<_>>()?,
            _ => Vec::new(),
        };
        Ok(Layout {
            keep: (0..names.len())
                .filter(|&i| !time.contains(&names[i].as_str()))
                .collect(),
            order,
            key,
            na: na.to_string(),
        })
    }

    /// Renders one row: `cell(i)` reads column `i`.
    fn row<'r>(
        &self,
        names: &[String],
        ts: Option<f64>,
        mut cell: impl FnMut(usize) -> Result<CellRef<'r>>,
    ) -> Result<Row> {
        let mut line = String::with_capacity(self.keep.len() * 6);
        for (j, &i) in self.keep.iter().enumerate() {
            if j > 0 {
                line.push(',');
            }
            cell(i)?.render(&mut line, &self.na, &names[i])?;
        }
        line.push('\n');
        Ok(Row {
            order: self
                .order
                .iter()
                .map(|&i| cell(i).map(CellRef::to_owned))
                .collect::<Result<_>>()?,
            key: self
                .key
                .iter()
                .map(|&i| cell(i).map(CellRef::to_owned))
                .collect::<Result<_>>()?,
            ts,
            line,
        })
    }
}

/// One fetched row: its canonical CSV line and what it is sorted and grouped by.
struct Row {
    line: String,
    order: Vec<Cell>,
    key: Vec<Cell>,
    ts: Option<f64>,
}

/// Rows as fetched, already rendered.
struct Fetch {
    names: Vec<String>,
    types: Vec<String>,
    rows: Vec<Row>,
    layout: Layout,
    sql: String,
}

fn missing_column(column: &str, what: &str, names: &[String]) -> Error {
    let mut e = Error::data(format!("the {what} column \"{column}\" is not in the result")).for_column(column);
    if let Some(h) = crate::error::did_you_mean(column, names.iter().map(String::as_str)) {
        e = e.with_hint(h);
    } else {
        e = e.with_hint(format!("the result has: {}", names.join(", ")));
    }
    e
}

fn base_sql(sel: &Selection) -> String {
    match (&sel.table, &sel.query) {
        (Some(t), _) => format!("SELECT * FROM {}", database::quote_ident(t)),
        (None, Some(q)) => format!("SELECT * FROM ({}) AS mlpipe_query", q.trim().trim_end_matches(';')),
        (None, None) => String::new(),
    }
}

/// Reads the selection from the database as of `as_of` (already resolved: never "now") and renders the
/// canonical CSV. `na` is the text written for NULL.
pub fn fetch(db: &Database, sel: &Selection, as_of: Option<&str>, na: &str) -> Result<Fetched> {
    let Fetch {
        names,
        types,
        mut rows,
        layout,
        sql,
    } = match db {
        Database::Sqlite(path) => fetch_sqlite(path, sel, as_of, na)?,
        Database::Postgres(url) => fetch_postgres(url, sel, as_of, na)?,
    };
    if !layout.key.is_empty() {
        rows = latest_versions(rows)?;
    }
    // Sort by the typed order_by cells, then by the rendered line: a total order of the rows.
    rows.sort_by(|a, b| {
        a.order
            .iter()
            .zip(&b.order)
            .map(|(x, y)| x.cmp(y))
            .find(|o| *o != Ordering::Equal)
            .unwrap_or(Ordering::Equal)
            .then_with(|| a.line.cmp(&b.line))
    });
    let mut csv = String::with_capacity(rows.iter().map(|r| r.line.len()).sum::<usize>() + 1024);
    for (j, &i) in layout.keep.iter().enumerate() {
        if j > 0 {
            csv.push(',');
        }
        push_field(&mut csv, &names[i]);
    }
    csv.push('\n');
    for r in &rows {
        csv.push_str(&r.line);
    }
    let csv = csv.into_bytes();
    let snapshot = Id::of_bytes(&csv);
    let record = SourceRecord {
        kind: "source-snapshot".into(),
        format: 1,
        source: db.without_password(),
        query: sql,
        as_of: as_of.map(str::to_string),
        as_of_written: sel.as_of.clone(),
        rows: rows.len(),
        columns: layout
            .keep
            .iter()
            .map(|&i| (names[i].clone(), types[i].clone()))
            .collect(),
        order: if sel.order_by.is_empty() {
            "all columns (no order_by given)".into()
        } else {
            format!("order_by {}, then all columns", sel.order_by.join(", "))
        },
        snapshot,
        missing_marker: na.to_string(),
        fetched: crate::provenance::now_rfc3339(),
    };
    Ok(Fetched { csv, record })
}

/// The latest version of each key: rows already hold `updated_at` ≤ `as_of`.
fn latest_versions(rows: Vec<Row>) -> Result<Vec<Row>> {
    let mut latest: BTreeMap<Vec<KeyCell>, Row> = BTreeMap::new();
    for row in rows {
        let k: Vec<KeyCell> = row.key.iter().map(KeyCell::of).collect();
        match latest.get(&k) {
            Some(old) if old.ts.map(f64::to_bits) == row.ts.map(f64::to_bits) && old.line != row.line => {
                return Err(Error::data(format!(
                    "key {} has two different versions at the same time; as_of cannot choose",
                    row.key.iter().map(|c| format!("{c:?}")).collect::<Vec<_>>().join(", ")
                ))
                .with_hint("make (key, updated_at) unique in the source"));
            }
            Some(old) if row.ts.unwrap_or(f64::NEG_INFINITY) <= old.ts.unwrap_or(f64::NEG_INFINITY) => {}
            _ => {
                latest.insert(k, row);
            }
        }
    }
    Ok(latest.into_values().collect())
}

/// A key value that can be ordered in a map (floats by their bits: equal keys are equal bits).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum KeyCell {
    Null,
    Int(i64),
    Float(u64),
    Bool(bool),
    Text(String),
}

impl KeyCell {
    fn of(c: &Cell) -> KeyCell {
        match c {
            Cell::Null => KeyCell::Null,
            Cell::Int(v) => KeyCell::Int(*v),
            Cell::Float(v) => KeyCell::Float(v.to_bits()),
            Cell::Bool(v) => KeyCell::Bool(*v),
            Cell::Text(v) => KeyCell::Text(v.clone()),
        }
    }
}

fn sqlite_fail(path: &Path, what: &str, e: &rusqlite::Error) -> Error {
    Error::data(format!("SQLite {}: {what}: {e}", path.display()))
}

fn fetch_sqlite(path: &Path, sel: &Selection, as_of: Option<&str>, na: &str) -> Result<Fetch> {
    use rusqlite::OpenFlags;
    if !path.exists() {
        return Err(
            Error::data(format!("the SQLite database {} does not exist", path.display()))
                .with_hint("check the path after sqlite: (relative paths start at the pipeline file's folder)"),
        );
    }
    // A plain path, never a URI: `sqlite:file:/elsewhere/x.db` must not escape the project check above.
    let conn = rusqlite::Connection::open_with_flags(
        database::plain_sqlite_path(path),
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| sqlite_fail(path, "open", &e))?;
    let base = base_sql(sel);
    let (names, types): (Vec<String>, Vec<String>) = {
        let stmt = conn.prepare(&base).map_err(|e| {
            sqlite_fail(path, "the query does not run", &e).with_hint("check `table` / `query` in [gather]")
        })?;
        stmt.columns()
            .map(|c| (c.name().to_string(), c.decl_type().unwrap_or("").to_string()))
            .unzip()
    };
    let q = |c: &str| format!("b.{}", database::quote_ident(c));
    let ts = |c: &str| {
        format!(
            "(CASE WHEN typeof({0}) IN ('integer', 'real') THEN {0} ELSE unixepoch({0}, 'subsec') END)",
            q(c)
        )
    };
    for c in sel.time_columns() {
        if !names.iter().any(|n| n == c) {
            return Err(missing_column(c, "time", &names));
        }
        // A time column whose text SQLite cannot read as a time would silently drop rows: refuse it.
        let bad: Option<String> = conn
            .query_row(
                &format!(
                    "SELECT CAST({} AS TEXT) FROM ({base}) AS b WHERE {} IS NOT NULL AND {} IS NULL LIMIT 1",
                    q(c),
                    q(c),
                    ts(c)
                ),
                [],
                |r| r.get(0),
            )
            .ok();
        if let Some(v) = bad {
            return Err(
                Error::data(format!("column \"{c}\" holds \"{v}\", which is not a time"))
                    .with_hint("store ISO 8601 text (2026-11-26T10:00:00Z) or Unix seconds")
                    .for_column(c),
            );
        }
    }
    let at = as_of.map(epoch_seconds).transpose()?;
    let (sql, with_ts) = match &sel.history {
        History::Current => (format!("SELECT b.* FROM ({base}) AS b"), false),
        History::UpdatedAt { column, .. } => (
            format!(
                "SELECT b.*, {0} AS mlpipe_ts FROM ({base}) AS b WHERE {0} <= ?1",
                ts(column)
            ),
            true,
        ),
        History::Valid { from, to } => (
            format!(
                "SELECT b.* FROM ({base}) AS b WHERE {} <= ?1 AND ({} IS NULL OR {} > ?1)",
                ts(from),
                q(to),
                ts(to)
            ),
            false,
        ),
    };
    let mut stmt = conn
        .prepare(&sql)
        .map_err(|e| sqlite_fail(path, "the query does not run", &e))?;
    let layout = Layout::new(&names, sel, na)?;
    let n = names.len();
    let params: Vec<f64> = at.into_iter().collect();
    let mut out = Vec::new();
    let mut rows = stmt
        .query(rusqlite::params_from_iter(params.iter()))
        .map_err(|e| sqlite_fail(path, "the query failed", &e))?;
    while let Some(r) = rows.next().map_err(|e| sqlite_fail(path, "reading rows", &e))? {
        use rusqlite::types::ValueRef;
        let t = if with_ts {
            r.get::<_, Option<f64>>(n).ok().flatten()
        } else {
            None
        };
        let row = layout.row(&names, t, |i| {
            let name = &names[i];
            Ok(
                match r.get_ref(i).map_err(|e| sqlite_fail(path, "reading a value", &e))? {
                    ValueRef::Null => CellRef::Null,
                    ValueRef::Integer(v) => CellRef::Int(v),
                    ValueRef::Real(v) => CellRef::Float(v),
                    ValueRef::Text(t) => CellRef::Text(std::str::from_utf8(t).map_err(|_| {
                        Error::data(format!("column \"{name}\" holds text that is not UTF-8")).for_column(name)
                    })?),
                    ValueRef::Blob(_) => {
                        return Err(Error::data(format!(
                            "column \"{name}\" holds binary data (BLOB), which a snapshot cannot hold"
                        ))
                        .with_hint("leave it out with `query`, or cast it to text there")
                        .for_column(name));
                    }
                },
            )
        })?;
        out.push(row);
    }
    Ok(Fetch {
        names,
        types,
        rows: out,
        layout,
        sql,
    })
}

fn fetch_postgres(url: &str, sel: &Selection, as_of: Option<&str>, na: &str) -> Result<Fetch> {
    use postgres::types::Type;
    let redacted = database::redact_url(url);
    let fail = |what: &str, e: &postgres::Error| database::postgres_error(&redacted, what, e);
    let mut client = database::connect_postgres(url)?;
    client
        .batch_execute("SET TIME ZONE 'UTC'")
        .map_err(|e| fail("set the time zone", &e))?;
    let mut tx = client
        .build_transaction()
        .read_only(true)
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .start()
        .map_err(|e| fail("begin", &e))?;
    let base = base_sql(sel);
    let probe = tx
        .prepare(&format!("SELECT * FROM ({base}) AS b LIMIT 0"))
        .map_err(|e| fail("the query does not run", &e).with_hint("check `table` / `query` in [gather]"))?;
    let names: Vec<String> = probe.columns().iter().map(|c| c.name().to_string()).collect();
    let types: Vec<Type> = probe.columns().iter().map(|c| c.type_().clone()).collect();
    for c in sel.time_columns() {
        if !names.iter().any(|n| n == c) {
            return Err(missing_column(c, "time", &names));
        }
    }
    let q = |c: &str| format!("b.{}", database::quote_ident(c));
    let mut select = Vec::with_capacity(names.len());
    for (name, ty) in names.iter().zip(&types) {
        let col = q(name);
        let expr = match *ty {
            Type::INT2
            | Type::INT4
            | Type::INT8
            | Type::FLOAT4
            | Type::FLOAT8
            | Type::BOOL
            | Type::TEXT
            | Type::VARCHAR
            | Type::BPCHAR
            | Type::NAME => col,
            Type::NUMERIC | Type::UUID | Type::JSON | Type::JSONB => format!("{col}::text"),
            Type::DATE => format!("to_char({col}, 'YYYY-MM-DD')"),
            Type::TIMESTAMP => format!("to_char({col}, 'YYYY-MM-DD\"T\"HH24:MI:SS.US')"),
            Type::TIMESTAMPTZ => format!("to_char({col} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"),
            ref other => {
                return Err(Error::data(format!(
                    "column \"{name}\" has type {other}, which mlpipe cannot put in a snapshot"
                ))
                .with_hint("cast it in `query` (to text, a number or a timestamp), or leave it out")
                .for_column(name));
            }
        };
        select.push(expr);
    }
    let time_ok = |c: &str, ty: &Type| -> Result<()> {
        if matches!(*ty, Type::DATE | Type::TIMESTAMP | Type::TIMESTAMPTZ) {
            Ok(())
        } else {
            Err(Error::data(format!(
                "time column \"{c}\" has type {ty}; it must be a date, timestamp or timestamptz"
            ))
            .for_column(c))
        }
    };
    let ty_of = |c: &str| names.iter().position(|n| n == c).map(|i| &types[i]);
    let (filter, with_ts) = match &sel.history {
        History::Current => (String::new(), false),
        History::UpdatedAt { column, .. } => {
            if let Some(t) = ty_of(column) {
                time_ok(column, t)?;
            }
            select.push(format!("extract(epoch from {})::float8", q(column)));
            (format!(" WHERE {} <= $1::text::timestamptz", q(column)), true)
        }
        History::Valid { from, to } => {
            for c in [from, to] {
                if let Some(t) = ty_of(c) {
                    time_ok(c, t)?;
                }
            }
            (
                format!(
                    " WHERE {} <= $1::text::timestamptz AND ({} IS NULL OR {} > $1::text::timestamptz)",
                    q(from),
                    q(to),
                    q(to)
                ),
                false,
            )
        }
    };
    let sql = format!("SELECT {} FROM ({base}) AS b{filter}", select.join(", "));
    let params: Vec<String> = as_of.map(str::to_string).into_iter().collect();
    let refs: Vec<&(dyn postgres::types::ToSql + Sync)> = params
        .iter()
        .map(|p| p as &(dyn postgres::types::ToSql + Sync))
        .collect();
    let layout = Layout::new(&names, sel, na)?;
    let n = names.len();
    let mut rows = Vec::new();
    {
        use postgres::fallible_iterator::FallibleIterator;
        let mut result = tx
            .query_raw(&sql, refs.iter().copied())
            .map_err(|e| fail("the query failed", &e))?;
        while let Some(r) = result.next().map_err(|e| fail("reading rows", &e))? {
            let t = if with_ts {
                r.try_get::<_, Option<f64>>(n).ok().flatten()
            } else {
                None
            };
            let row = layout.row(&names, t, |i| {
                let get_err = |e: postgres::Error| fail(&format!("reading column \"{}\"", names[i]), &e);
                let cell = match types[i] {
                    Type::INT2 => r
                        .try_get::<_, Option<i16>>(i)
                        .map_err(get_err)?
                        .map(|v| CellRef::Int(v.into())),
                    Type::INT4 => r
                        .try_get::<_, Option<i32>>(i)
                        .map_err(get_err)?
                        .map(|v| CellRef::Int(v.into())),
                    Type::INT8 => r.try_get::<_, Option<i64>>(i).map_err(get_err)?.map(CellRef::Int),
                    Type::FLOAT4 => r
                        .try_get::<_, Option<f32>>(i)
                        .map_err(get_err)?
                        .map(|v| CellRef::Float(v.into())),
                    Type::FLOAT8 => r.try_get::<_, Option<f64>>(i).map_err(get_err)?.map(CellRef::Float),
                    Type::BOOL => r.try_get::<_, Option<bool>>(i).map_err(get_err)?.map(CellRef::Bool),
                    _ => r.try_get::<_, Option<&str>>(i).map_err(get_err)?.map(CellRef::Text),
                };
                Ok(cell.unwrap_or(CellRef::Null))
            })?;
            rows.push(row);
        }
    }
    tx.commit().map_err(|e| fail("end the read", &e))?;
    Ok(Fetch {
        names,
        types: types.iter().map(ToString::to_string).collect(),
        rows,
        layout,
        sql,
    })
}
