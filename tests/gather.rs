#![allow(clippy::unwrap_used, clippy::expect_used)]

//! Gathering from SQLite: point-in-time snapshots that do not move when rows are added or updated later,
//! do not depend on the physical order of rows, equal the file snapshot when they hold the same rows,
//! and runs that reproduce without touching the database.

mod common;

use std::path::Path;

use common::{DATA, Project, stderr, stdout};
use serde_json::Value;

const HISTORY_DB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data-snapshots/house-prices/houses.sqlite");
const SQLITE_PIPELINE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/pipelines/house-prices-sqlite.toml");

fn b3(path: &Path) -> String {
    blake3::hash(&std::fs::read(path).unwrap()).to_hex().to_string()
}

/// The shipped SQLite pipeline, copied next to a copy of the database.
fn sqlite_project() -> Project {
    let p = Project::new();
    std::fs::copy(HISTORY_DB, p.path("houses.sqlite")).unwrap();
    let text = std::fs::read_to_string(SQLITE_PIPELINE).unwrap().replace(
        "sqlite:../data-snapshots/house-prices/houses.sqlite",
        "sqlite:houses.sqlite",
    );
    std::fs::write(p.path("db.toml"), text).unwrap();
    p
}

fn run_json(p: &Project, pipeline: &str) -> Value {
    let out = p.mlpipe(&["run", pipeline, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn snapshot(p: &Project, args: &[&str]) -> Value {
    let mut all = vec!["snapshot"];
    all.extend(args);
    all.push("--json");
    let out = p.mlpipe(&all);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_database_as_of_now_is_the_csv_file_and_the_past_is_kept() {
    let p = sqlite_project();
    let from_db = run_json(&p, "db.toml");
    let from_csv = p.run(&[]);
    // Same rows → the same snapshot id as the file's blake3, and the same fitted stages.
    assert_eq!(from_db["snapshot"], b3(&Path::new(DATA).join("train.csv")));
    assert_eq!(from_db["snapshot"], from_csv["snapshot"]);
    let outputs = |r: &Value| -> Vec<String> {
        r["stages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["output"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(outputs(&from_db), outputs(&from_csv));

    // As of before the corrections: the older table (1360 houses, 30 wrong prices), exactly again.
    p.edit(
        "db.toml",
        "as_of = \"2026-03-01T00:00:00Z\"",
        "as_of = \"2026-02-01T00:00:00Z\"",
    );
    let past = run_json(&p, "db.toml");
    assert_ne!(past["snapshot"], from_db["snapshot"]);
    assert_eq!(run_json(&p, "db.toml")["snapshot"], past["snapshot"]);
    let diff = p.mlpipe(&[
        "diff",
        past["snapshot"].as_str().unwrap(),
        from_db["snapshot"].as_str().unwrap(),
        "--key",
        "Id",
        "--na",
        "NA",
        "--json",
    ]);
    assert_eq!(diff.status.code(), Some(1), "{}", stderr(&diff));
    let d: Value = serde_json::from_slice(&diff.stdout).unwrap();
    assert_eq!(
        (d["rows_added"].as_u64(), d["rows_removed"].as_u64()),
        (Some(100), Some(0))
    );
    assert_eq!(
        (d["rows_changed"].as_u64(), d["cells_changed"].as_u64()),
        (Some(30), Some(30))
    );
    assert_eq!(d["examples"][0]["column"], "SalePrice");

    // reproduce never touches the database: it is gone and the run still reproduces.
    std::fs::remove_file(p.path("houses.sqlite")).unwrap();
    let run = past["run"].as_str().unwrap();
    let out = p.mlpipe(&["reproduce", run]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (code, err) = p.fail(&["reproduce", run, "--refetch"]);
    assert_eq!(code, 1);
    assert!(err.contains("houses.sqlite does not exist"), "{err}");
    // Back, with a row updated after the as_of time: refetching still gives the recorded snapshot.
    std::fs::copy(HISTORY_DB, p.path("houses.sqlite")).unwrap();
    let conn = rusqlite::Connection::open(p.path("houses.sqlite")).unwrap();
    conn.execute_batch(
        "INSERT INTO houses SELECT * FROM houses WHERE Id = 7 AND updated_at = '2026-01-05T09:00:00Z';
         UPDATE houses SET SalePrice = 1, updated_at = '2026-06-01T00:00:00Z' WHERE rowid = last_insert_rowid();",
    )
    .unwrap();
    drop(conn);
    let out = p.mlpipe(&["reproduce", run, "--refetch"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("same snapshot"), "{}", stdout(&out));
    // A change inside the as_of window is reported.
    let conn = rusqlite::Connection::open(p.path("houses.sqlite")).unwrap();
    conn.execute("UPDATE houses SET LotArea = LotArea + 1 WHERE Id = 3", [])
        .unwrap();
    drop(conn);
    let out = p.mlpipe(&["reproduce", run, "--refetch"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("DIFFERENT snapshot"), "{}", stdout(&out));
}

fn write_history(path: &Path, rows: &[(i64, &str, f64, &str)]) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch("CREATE TABLE items (id INTEGER, name TEXT, price REAL, changed TEXT)")
        .unwrap();
    for (id, name, price, changed) in rows {
        conn.execute(
            "INSERT INTO items VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![id, name, price, changed],
        )
        .unwrap();
    }
}

#[test]
fn snapshots_as_of_a_time_ignore_later_writes_and_row_order() {
    let p = Project::new();
    let history = [
        (1, "apple", 1.5, "2026-01-01T00:00:00Z"),
        (2, "pear, green", 2.25, "2026-01-01T00:00:00Z"),
        (3, "plum \"red\"", 0.1, "2026-01-02T00:00:00Z"),
    ];
    write_history(&p.path("a.db"), &history);
    let args = |db: &str, at: &str| {
        vec![
            format!("sqlite:{}", p.path(db).display()),
            "--table".into(),
            "items".into(),
            "--updated-at".into(),
            "changed".into(),
            "--key".into(),
            "id".into(),
            "--order-by".into(),
            "id".into(),
            "--as-of".into(),
            at.into(),
        ]
    };
    let snap = |db: &str, at: &str| {
        let a = args(db, at);
        snapshot(&p, &a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let t1 = snap("a.db", "2026-01-10T00:00:00Z");
    assert_eq!(t1["source"]["rows"], 3);
    // Later: one price updated (a new version) and one row inserted.
    let conn = rusqlite::Connection::open(p.path("a.db")).unwrap();
    conn.execute_batch(
        "INSERT INTO items VALUES (2, 'pear, green', 2.5, '2026-02-01T00:00:00Z');
         INSERT INTO items VALUES (4, 'fig', 3.0, '2026-02-01T00:00:00Z');",
    )
    .unwrap();
    drop(conn);
    assert_eq!(
        snap("a.db", "2026-01-10T00:00:00Z")["snapshot"],
        t1["snapshot"],
        "as of T1 again: the same"
    );
    let t2 = snap("a.db", "2026-03-01T00:00:00Z");
    assert_ne!(t2["snapshot"], t1["snapshot"]);
    let out = p.mlpipe(&[
        "diff",
        t1["snapshot"].as_str().unwrap(),
        t2["snapshot"].as_str().unwrap(),
        "--key",
        "id",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("rows +1 -0 ~1 changed"), "{text}");
    assert!(text.contains("row 2 column price: 2.25 → 2.5"), "{text}");

    // The same rows inserted in another order: the same snapshot.
    let mut reversed = history;
    reversed.reverse();
    write_history(&p.path("b.db"), &reversed);
    assert_eq!(snap("b.db", "2026-01-10T00:00:00Z")["snapshot"], t1["snapshot"]);

    // The canonical CSV: quotes only where needed, shortest floats, time column left out.
    let exported = p.path("export/items.csv");
    let mut a = args("a.db", "2026-01-10T00:00:00Z");
    a.extend(["--export".into(), exported.display().to_string()]);
    snapshot(&p, &a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(
        std::fs::read_to_string(&exported).unwrap(),
        "id,name,price\n1,apple,1.5\n2,\"pear, green\",2.25\n3,\"plum \"\"red\"\"\",0.1\n"
    );
    let record: Value =
        serde_json::from_str(&std::fs::read_to_string(p.path("export/items.csv.source.json")).unwrap()).unwrap();
    assert_eq!(record["as_of"], "2026-01-10T00:00:00.000000Z");
    assert_eq!(record["snapshot"], t1["snapshot"]);
    assert_eq!(b3(&exported), t1["snapshot"].as_str().unwrap());

    // Without order_by the rows are still sorted (by all columns), and the record says so.
    let unordered = snapshot(
        &p,
        &[&format!("sqlite:{}", p.path("b.db").display()), "--table", "items"],
    );
    assert_eq!(unordered["source"]["order"], "all columns (no order_by given)");
    assert_eq!(unordered["source"]["rows"], 3);
}

#[test]
fn validity_intervals_select_the_rows_valid_at_the_time() {
    let p = Project::new();
    let conn = rusqlite::Connection::open(p.path("h.db")).unwrap();
    conn.execute_batch(
        "CREATE TABLE prices (sku TEXT, price INTEGER, valid_from TEXT, valid_to TEXT);
         INSERT INTO prices VALUES ('a', 10, '2026-01-01T00:00:00Z', '2026-02-01T00:00:00Z');
         INSERT INTO prices VALUES ('a', 12, '2026-02-01T00:00:00Z', NULL);
         INSERT INTO prices VALUES ('b', 5, '2026-01-15T00:00:00Z', NULL);",
    )
    .unwrap();
    drop(conn);
    let db = format!("sqlite:{}", p.path("h.db").display());
    let at = |t: &str| {
        let s = snapshot(
            &p,
            &[
                &db,
                "--table",
                "prices",
                "--valid-from",
                "valid_from",
                "--valid-to",
                "valid_to",
                "--as-of",
                t,
                "--export",
                "x.csv",
            ],
        );
        assert!(s["exported"].is_string());
        std::fs::read_to_string(p.path("x.csv")).unwrap()
    };
    assert_eq!(at("2026-01-10T00:00:00Z"), "sku,price\na,10\n");
    assert_eq!(at("2026-01-20T00:00:00Z"), "sku,price\na,10\nb,5\n");
    assert_eq!(at("2026-02-01T00:00:00Z"), "sku,price\na,12\nb,5\n");
}

#[test]
fn database_mistakes_are_named() {
    let p = sqlite_project();
    // A time column that is not there, in the pipeline.
    p.edit("db.toml", "updated_at = \"updated_at\"", "updated_at = \"updatd_at\"");
    let (code, err) = p.fail(&["run", "db.toml"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("the time column \"updatd_at\" is not in the result"),
        "{err}"
    );
    assert!(err.contains("did you mean \"updated_at\"?"), "{err}");
    p.edit("db.toml", "updated_at = \"updatd_at\"", "updated_at = \"updated_at\"");
    // A bad query.
    p.edit("db.toml", "table = \"houses\"", "query = \"SELEC * FROM houses\"");
    let (_, err) = p.fail(&["run", "db.toml"]);
    assert!(err.contains("the query does not run"), "{err}");
    p.edit("db.toml", "query = \"SELEC * FROM houses\"", "table = \"houses\"");
    // as_of without time columns, and both shapes at once: refused where they are written.
    p.edit(
        "db.toml",
        "key = [\"Id\"]\n",
        "key = [\"Id\"]\nvalid_from = \"a\"\nvalid_to = \"b\"\n",
    );
    let (_, err) = p.fail(&["run", "db.toml"]);
    assert!(err.contains("choose one") && err.contains("db.toml:"), "{err}");
    p.edit(
        "db.toml",
        "key = [\"Id\"]\nvalid_from = \"a\"\nvalid_to = \"b\"\n",
        "key = [\"Id\"]\n",
    );
    // A database that is not there.
    let (_, err) = p.fail(&["snapshot", "sqlite:nowhere.db", "--table", "t"]);
    assert!(err.contains("nowhere.db does not exist"), "{err}");
    // Text in a time column that is not a time.
    let conn = rusqlite::Connection::open(p.path("houses.sqlite")).unwrap();
    conn.execute("UPDATE houses SET updated_at = 'yesterday' WHERE Id = 5", [])
        .unwrap();
    conn.execute_batch("CREATE TABLE blobs (id INTEGER, data BLOB); INSERT INTO blobs VALUES (1, x'00ff');")
        .unwrap();
    drop(conn);
    let (_, err) = p.fail(&["run", "db.toml"]);
    assert!(
        err.contains("column \"updated_at\" holds \"yesterday\", which is not a time"),
        "{err}"
    );
    let db = format!("sqlite:{}", p.path("houses.sqlite").display());
    let (_, err) = p.fail(&["snapshot", &db, "--table", "blobs"]);
    assert!(err.contains("column \"data\" holds binary data (BLOB)"), "{err}");
    let (_, err) = p.fail(&["snapshot", &db, "--table", "houses; DROP TABLE houses"]);
    assert!(err.contains("is not a usable table name"), "{err}");
}

#[test]
fn a_sqlite_source_spelled_as_a_file_uri_reads_the_project_file_not_the_uri_target() {
    // `sqlite:file:/elsewhere/h.db` with a `file:/elsewhere/h.db` inside the project: the check sees the
    // project's file, so the open must read that file too, never the URI's target outside the project.
    let p = sqlite_project();
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("h.db");
    std::fs::copy(HISTORY_DB, &secret).unwrap();
    let local = p.path(&format!("file:{}", secret.display()));
    std::fs::create_dir_all(local.parent().unwrap()).unwrap();
    std::fs::write(&local, b"").unwrap();
    p.edit(
        "db.toml",
        "sqlite:houses.sqlite",
        &format!("sqlite:file:{}", secret.display()),
    );
    let out = p.mlpipe(&["run", "db.toml", "--json"]);
    assert!(
        !out.status.success(),
        "read the database outside the project: {}",
        stdout(&out)
    );
    assert!(stderr(&out).contains("the query does not run"), "{}", stderr(&out));
}
