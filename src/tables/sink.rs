//! The prediction sink for database tables: batch predictions appended to a SQLite or PostgreSQL table
//! in one transaction, with the table's columns checked against what is written.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use rusqlite::types::Value as Sql;

use super::{IdValue, OutputRows, PredictionColumn};
use crate::database::{Database, connect_postgres, open_sqlite, postgres_error, quote_ident, redact_url, sqlite_error};
use crate::error::{Error, Result};

#[derive(Clone, Copy, PartialEq, Eq)]
enum IdKind {
    Integer,
    Real,
    Text,
}

fn id_kind(ids: &[IdValue]) -> IdKind {
    if ids.iter().any(|v| matches!(v, IdValue::Text(_))) {
        IdKind::Text
    } else if ids.iter().all(|v| match v {
        IdValue::Number(x) => x.fract() == 0.0 && x.abs() < 9.0e15,
        _ => true,
    }) {
        IdKind::Integer
    } else {
        IdKind::Real
    }
}

/// Writes predictions into a table in one transaction, creating it when absent. Rows whose
/// `prediction_id` is already there are skipped, so writing the same batch twice adds nothing.
/// Returns the number of rows added.
pub fn write_predictions(db: &Database, table: &str, rows: &OutputRows<'_>) -> Result<usize> {
    match db {
        Database::Sqlite(path) => write_sqlite(path, table, rows),
        Database::Postgres(url) => write_postgres(url, table, rows),
    }
}

fn expected_columns(rows: &OutputRows<'_>) -> Vec<String> {
    rows.column_names()
}

/// Column definitions after the id: the prediction (a number or a label), the probabilities, the
/// model and the prediction id.
fn value_columns(rows: &OutputRows<'_>, real: &str, text: &str) -> Vec<String> {
    let prediction = match rows.prediction {
        PredictionColumn::Numbers(_) => real,
        PredictionColumn::Text(_) => text,
    };
    let mut defs = vec![format!("prediction {prediction} NOT NULL")];
    defs.extend(
        rows.extra
            .iter()
            .map(|(n, _)| format!("{} {real} NOT NULL", quote_ident(n))),
    );
    defs.extend([
        format!("model {text} NOT NULL"),
        format!("prediction_id {text} PRIMARY KEY"),
    ]);
    defs
}

fn column_mismatch(db: &str, table: &str, have: &[String], want: &[String]) -> Error {
    Error::data(format!(
        "{db} table {table} exists with columns ({}), but predictions need ({})",
        have.join(", "),
        want.join(", ")
    ))
    .with_hint("write into a new table, or drop the old one")
}

fn write_sqlite(path: &Path, table: &str, rows: &OutputRows<'_>) -> Result<usize> {
    let mut conn = open_sqlite(path)?;
    let e = |e: rusqlite::Error| sqlite_error(path, &e);
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(e)?;
    let qt = quote_ident(table);
    let kind = rows.ids.as_deref().map(id_kind);
    let mut defs = Vec::new();
    if let Some(id) = rows.id_name {
        let ty = match kind {
            Some(IdKind::Integer) => "INTEGER",
            Some(IdKind::Real) => "REAL",
            _ => "TEXT",
        };
        defs.push(format!("{} {ty}", quote_ident(id)));
    }
    defs.extend(value_columns(rows, "REAL", "TEXT"));
    tx.execute(&format!("CREATE TABLE IF NOT EXISTS {qt} ({})", defs.join(", ")), [])
        .map_err(e)?;
    let have: Vec<String> = {
        let mut stmt = tx
            .prepare(&format!(
                "SELECT name FROM pragma_table_info('{}')",
                table.replace('\'', "''")
            ))
            .map_err(e)?;
        stmt.query_map([], |r| r.get::<_, String>(0))
            .map_err(e)?
            .collect::<std::result::Result<_, _>>()
            .map_err(e)?
    };
    let want = expected_columns(rows);
    if have != want {
        return Err(column_mismatch(
            &format!("sqlite:{}", path.display()),
            table,
            &have,
            &want,
        ));
    }
    let placeholders = vec!["?"; want.len()].join(", ");
    let cols = want.iter().map(|c| quote_ident(c)).collect::<Vec<_>>().join(", ");
    let mut added = 0;
    {
        let mut stmt = tx
            .prepare(&format!(
                "INSERT INTO {qt} ({cols}) VALUES ({placeholders}) ON CONFLICT(prediction_id) DO NOTHING"
            ))
            .map_err(|err| {
                sqlite_error(path, &err).with_hint(format!(
                    "table {table} needs a PRIMARY KEY or UNIQUE constraint on prediction_id; write into a new table"
                ))
            })?;
        let mut values: Vec<Sql> = Vec::with_capacity(want.len());
        for r in 0..rows.len() {
            values.clear();
            if rows.id_name.is_some() {
                values.push(match rows.ids.as_ref().map(|v| &v[r]) {
                    #[allow(clippy::cast_possible_truncation)]
                    Some(IdValue::Number(x)) if kind == Some(IdKind::Integer) => Sql::Integer(*x as i64),
                    Some(IdValue::Number(x)) => Sql::Real(*x),
                    Some(IdValue::Text(s)) => Sql::Text(s.to_string()),
                    Some(IdValue::Missing) | None => Sql::Null,
                });
            }
            values.push(match &rows.prediction {
                PredictionColumn::Numbers(v) => Sql::Real(v[r]),
                PredictionColumn::Text(v) => Sql::Text(v[r].clone()),
            });
            values.extend(rows.extra.iter().map(|(_, column)| Sql::Real(column[r])));
            values.push(Sql::Text(rows.model.clone()));
            values.push(Sql::Text(rows.prediction_id(r)));
            added += stmt.execute(rusqlite::params_from_iter(values.iter())).map_err(e)?;
        }
    }
    tx.commit().map_err(e)?;
    Ok(added)
}

fn write_postgres(url: &str, table: &str, rows: &OutputRows<'_>) -> Result<usize> {
    let redacted = redact_url(url);
    let mut client = connect_postgres(url)?;
    let e = |what: &'static str| {
        let redacted = redacted.clone();
        move |err: postgres::Error| postgres_error(&redacted, what, &err)
    };
    let mut tx = client.transaction().map_err(e("begin"))?;
    let qt = quote_ident(table);
    let kind = rows.ids.as_deref().map(id_kind);
    let mut defs = Vec::new();
    if let Some(id) = rows.id_name {
        let ty = match kind {
            Some(IdKind::Integer) => "bigint",
            Some(IdKind::Real) => "double precision",
            _ => "text",
        };
        defs.push(format!("{} {ty}", quote_ident(id)));
    }
    defs.extend(value_columns(rows, "double precision", "text"));
    tx.batch_execute(&format!("CREATE TABLE IF NOT EXISTS {qt} ({})", defs.join(", ")))
        .map_err(e("create table"))?;
    let (schema, bare) = match table.split_once('.') {
        Some((s, t)) => (Some(s), t),
        None => (None, table),
    };
    let have: Vec<String> = tx
        .query(
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_name = $1 AND table_schema = coalesce($2, current_schema()) ORDER BY ordinal_position",
            &[&bare, &schema],
        )
        .map_err(e("read the table's columns"))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let want = expected_columns(rows);
    if have != want {
        return Err(column_mismatch(&redacted, table, &have, &want));
    }
    tx.batch_execute(&format!("CREATE TEMP TABLE mlpipe_incoming (LIKE {qt}) ON COMMIT DROP"))
        .map_err(e("create a staging table"))?;
    {
        let mut w = tx.copy_in("COPY mlpipe_incoming FROM STDIN").map_err(e("start COPY"))?;
        let mut line = String::new();
        for r in 0..rows.len() {
            line.clear();
            if rows.id_name.is_some() {
                match rows.ids.as_ref().map(|v| &v[r]) {
                    Some(IdValue::Number(x)) => line.push_str(&x.to_string()),
                    Some(IdValue::Text(s)) => line.push_str(&copy_escape(s)),
                    Some(IdValue::Missing) | None => line.push_str("\\N"),
                }
                line.push('\t');
            }
            // Shortest round-trip text: PostgreSQL parses it back to the same double.
            match &rows.prediction {
                PredictionColumn::Numbers(v) => {
                    let _ = write!(line, "{:?}", v[r]);
                }
                PredictionColumn::Text(v) => line.push_str(&copy_escape(&v[r])),
            }
            for (_, column) in &rows.extra {
                let _ = write!(line, "\t{:?}", column[r]);
            }
            let _ = writeln!(line, "\t{}\t{}", rows.model, rows.prediction_id(r));
            w.write_all(line.as_bytes())
                .map_err(|err| Error::data(format!("PostgreSQL {redacted}: COPY failed: {err}")))?;
        }
        w.finish().map_err(e("COPY predictions"))?;
    }
    let added = tx
        .execute(
            &format!("INSERT INTO {qt} SELECT * FROM mlpipe_incoming ON CONFLICT (prediction_id) DO NOTHING"),
            &[],
        )
        .map_err(e("insert predictions"))?;
    tx.commit().map_err(e("commit"))?;
    Ok(usize::try_from(added).unwrap_or(usize::MAX))
}

/// Escapes a value for COPY's text format.
fn copy_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}
