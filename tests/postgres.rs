#![allow(clippy::unwrap_used, clippy::expect_used)]

//! Against a real PostgreSQL server (started here in a temporary folder): batch predictions into a
//! table (one transaction, no duplicates on a second write), the ledger in PostgreSQL with replay from
//! it, and credentials that never reach the output or the store.

mod common;

use common::postgres::Postgres;
use common::{Project, stderr, stdout};
use serde_json::Value;

#[test]
fn predictions_and_ledger_in_postgres() {
    let pg = Postgres::start();
    let p = Project::new();
    let run = p.run(&[])["run"].as_str().unwrap().to_string();
    // trust authentication ignores the password; it must still never be printed or stored.
    let url = pg.url.replacen('@', ":hunter2-secret@", 1);
    let predict = |table: &str| {
        p.mlpipe(&[
            "predict", &run, "--input", "test.csv", "-o", &url, "--table", table, "--ledger", &url,
        ])
    };
    let first = predict("predictions");
    assert!(first.status.success(), "{}", stderr(&first));
    assert_eq!(pg.psql("SELECT count(*) FROM predictions"), "1459");
    let second = predict("predictions");
    assert!(second.status.success(), "{}", stderr(&second));
    assert!(stdout(&second).contains("0 new"), "{}", stdout(&second));
    assert_eq!(pg.psql("SELECT count(*) FROM predictions"), "1459");
    for out in [&first, &second] {
        assert!(!stdout(out).contains("hunter2") && !stderr(out).contains("hunter2"));
        assert!(stdout(out).contains(":***@"), "{}", stdout(out));
    }

    // The same doubles as the CSV output, bit for bit (COPY of shortest round-trip text).
    let csv = p.mlpipe(&["predict", &run, "--input", "test.csv"]).stdout;
    let mut rdr = csv::Reader::from_reader(csv.as_slice());
    let rows: Vec<(String, f64)> = rdr
        .records()
        .map(|r| r.unwrap())
        .map(|r| (r[0].to_string(), r[1].parse().unwrap()))
        .collect();
    let from_pg = pg.psql("SELECT \"Id\" || ',' || prediction::text FROM predictions ORDER BY \"Id\"");
    for ((id, pred), line) in rows.iter().zip(from_pg.lines()) {
        let (pid, ppred) = line.split_once(',').unwrap();
        assert_eq!(pid, id);
        assert_eq!(ppred.parse::<f64>().unwrap().to_bits(), pred.to_bits(), "row {id}");
    }

    // A constraint violated midway rolls the whole batch back.
    pg.psql(
        "CREATE TABLE guarded (\"Id\" bigint, prediction double precision NOT NULL CHECK (prediction < 300000), \
         model text NOT NULL, prediction_id text PRIMARY KEY); INSERT INTO guarded VALUES (1, 1, 'm', 'old')",
    );
    let (code, err) = p.fail(&["predict", &run, "--input", "test.csv", "-o", &url, "--table", "guarded"]);
    assert_eq!(code, 1);
    assert!(err.contains("guarded_prediction_check"), "{err}");
    assert!(!err.contains("hunter2"));
    assert_eq!(pg.psql("SELECT count(*) FROM guarded"), "1");

    // The ledger lives in PostgreSQL: list it and replay a batch row from it.
    let ledger = p.mlpipe(&["ledger", "--ledger", &url, "--json"]);
    assert!(ledger.status.success(), "{}", stderr(&ledger));
    let entries: Value = serde_json::from_slice(&ledger.stdout).unwrap();
    assert_eq!(entries.as_array().unwrap().len(), 2);
    assert_eq!(pg.psql("SELECT count(*) FROM ledger WHERE channel = 'batch'"), "2");
    let prediction = entries[0]["prediction"].as_str().unwrap();
    let replay = p.mlpipe(&["reproduce", &format!("{prediction}/7"), "--ledger", &url]);
    assert!(replay.status.success(), "{}", stderr(&replay));

    // A stream into the PostgreSQL ledger, replayed from the input kept there.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mlpipe"))
        .current_dir(p.dir.path())
        .env("MLPIPE_STORE", p.store())
        .args(["predict", &run, "--stream", "--ledger", &url])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Feed the test rows themselves (as JSON) through the stream.
    let text = std::fs::read_to_string(p.path("test.csv")).unwrap();
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let headers = rdr.headers().unwrap().clone();
    let record = rdr.records().next().unwrap().unwrap();
    let mut map = serde_json::Map::new();
    for (h, v) in headers.iter().zip(record.iter()) {
        let value = match (h, v.parse::<f64>()) {
            (_, _) if v == "NA" => Value::Null,
            ("MSSubClass", _) | (_, Err(_)) => Value::String(v.into()),
            (_, Ok(x)) => serde_json::json!(x),
        };
        map.insert(h.into(), value);
    }
    std::io::Write::write_all(
        child.stdin.as_mut().unwrap(),
        format!("{}\n", Value::Object(map)).as_bytes(),
    )
    .unwrap();
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = answer["prediction_id"].as_str().unwrap();
    assert_eq!(
        pg.psql(&format!(
            "SELECT count(*) FROM ledger_inputs i JOIN ledger l ON l.input = i.id WHERE l.prediction = '{id}'"
        )),
        "1"
    );
    let replay = p.mlpipe(&["reproduce", id, "--ledger", &url]);
    assert!(replay.status.success(), "{}", stderr(&replay));
    assert!(stdout(&replay).starts_with("reproduced bit-for-bit"));

    // Nothing in the store holds the password.
    for entry in walk(&p.store()) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains("hunter2"),
            "{}",
            entry.display()
        );
    }

    // An unreachable server is a clear error that still hides the password.
    let dead = url.replace(&pg.socket_dir().display().to_string(), "/nonexistent");
    let (_, err) = p.fail(&["predict", &run, "--input", "test.csv", "-o", &dead, "--table", "t"]);
    assert!(err.contains("cannot connect to PostgreSQL at postgres://"), "{err}");
    assert!(!err.contains("hunter2"));
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
