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

const HISTORY_DB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data-snapshots/house-prices/houses.sqlite");
const SQLITE_PIPELINE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/pipelines/house-prices-sqlite.toml");

/// Copies the shipped house history (SQLite) into a PostgreSQL table `table`, rows in the given order.
fn load_history(pg: &Postgres, table: &str, reverse: bool) {
    let lite = rusqlite::Connection::open(HISTORY_DB).unwrap();
    let mut stmt = lite.prepare("SELECT * FROM houses ORDER BY rowid").unwrap();
    let cols: Vec<(String, String)> = stmt
        .columns()
        .map(|c| (c.name().to_string(), c.decl_type().unwrap_or("TEXT").to_string()))
        .collect();
    let n = cols.len();
    let mut rows: Vec<Vec<Option<String>>> = stmt
        .query_map([], |r| {
            (0..n)
                .map(|i| {
                    Ok(match r.get_ref(i)? {
                        rusqlite::types::ValueRef::Null | rusqlite::types::ValueRef::Blob(_) => None,
                        rusqlite::types::ValueRef::Integer(v) => Some(v.to_string()),
                        rusqlite::types::ValueRef::Real(v) => Some(v.to_string()),
                        rusqlite::types::ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
                    })
                })
                .collect()
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    if reverse {
        rows.reverse();
    }
    let pg_type = |name: &str, ty: &str| match (name, ty) {
        ("updated_at", _) => "timestamptz",
        (_, "INTEGER") => "bigint",
        _ => "text",
    };
    let ddl: Vec<String> = cols.iter().map(|(c, t)| format!("\"{c}\" {}", pg_type(c, t))).collect();
    let mut client = postgres::Client::connect(&pg.url, postgres::NoTls).unwrap();
    client
        .batch_execute(&format!("CREATE TABLE {table} ({})", ddl.join(", ")))
        .unwrap();
    let marks: Vec<String> = cols
        .iter()
        .enumerate()
        .map(|(i, (c, t))| format!("${}::text::{}", i + 1, pg_type(c, t)))
        .collect();
    let mut tx = client.transaction().unwrap();
    let insert = tx
        .prepare(&format!("INSERT INTO {table} VALUES ({})", marks.join(", ")))
        .unwrap();
    for row in &rows {
        let params: Vec<&(dyn postgres::types::ToSql + Sync)> =
            row.iter().map(|v| v as &(dyn postgres::types::ToSql + Sync)).collect();
        tx.execute(&insert, &params).unwrap();
    }
    tx.commit().unwrap();
}

#[test]
fn gathering_from_postgres_as_of_a_time() {
    let pg = Postgres::start();
    load_history(&pg, "houses", false);
    load_history(&pg, "houses_reversed", true);
    let p = Project::new();
    std::fs::copy(HISTORY_DB, p.path("houses.sqlite")).unwrap();
    let url = pg.url.replacen('@', ":hunter2-secret@", 1);
    let sqlite_text = std::fs::read_to_string(SQLITE_PIPELINE).unwrap().replace(
        "sqlite:../data-snapshots/house-prices/houses.sqlite",
        "sqlite:houses.sqlite",
    );
    std::fs::write(p.path("lite.toml"), &sqlite_text).unwrap();
    std::fs::write(p.path("pg.toml"), sqlite_text.replace("sqlite:houses.sqlite", &url)).unwrap();
    let run = |file: &str| -> Value {
        let out = p.mlpipe(&["run", file, "--json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(!stdout(&out).contains("hunter2") && !stderr(&out).contains("hunter2"));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    // As of after the last change: the CSV file's snapshot, from PostgreSQL as from SQLite.
    let now_pg = run("pg.toml");
    let train = std::fs::read(std::path::Path::new(common::DATA).join("train.csv")).unwrap();
    assert_eq!(now_pg["snapshot"], blake3::hash(&train).to_hex().as_str());
    let outputs = |r: &Value| -> Vec<Value> {
        r["stages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["output"].clone())
            .collect()
    };
    assert_eq!(outputs(&now_pg), outputs(&run("lite.toml")));
    // As of the past: the same older snapshot from both databases.
    for f in ["pg.toml", "lite.toml"] {
        p.edit(
            f,
            "as_of = \"2026-03-01T00:00:00Z\"",
            "as_of = \"2026-02-01T00:00:00Z\"",
        );
    }
    let past_pg = run("pg.toml");
    assert_ne!(past_pg["snapshot"], now_pg["snapshot"]);
    assert_eq!(past_pg["snapshot"], run("lite.toml")["snapshot"]);

    // Rows written later do not move a past snapshot; rows in another physical order do not either.
    pg.psql(
        "INSERT INTO houses SELECT * FROM houses WHERE \"Id\" = 9 AND updated_at < '2026-02-01'; \
         UPDATE houses SET \"SalePrice\" = 1, updated_at = '2026-05-01T00:00:00Z' \
         WHERE ctid = (SELECT max(ctid) FROM houses WHERE \"Id\" = 9)",
    );
    let snap = |table: &str, at: &str| -> Value {
        let out = p.mlpipe(&[
            "snapshot",
            &url,
            "--table",
            table,
            "--updated-at",
            "updated_at",
            "--key",
            "Id",
            "--order-by",
            "Id",
            "--as-of",
            at,
            "--na",
            "NA",
            "--json",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    assert_eq!(snap("houses", "2026-02-01T00:00:00Z")["snapshot"], past_pg["snapshot"]);
    assert_eq!(
        snap("houses_reversed", "2026-02-01T00:00:00Z")["snapshot"],
        past_pg["snapshot"]
    );
    assert_eq!(
        snap("houses_reversed", "2026-03-01T00:00:00Z")["snapshot"],
        now_pg["snapshot"]
    );
    let later = snap("houses", "2026-06-01T00:00:00Z");
    assert_ne!(later["snapshot"], now_pg["snapshot"]);
    assert_eq!(later["source"]["rows"], 1460);
    let out = p.mlpipe(&[
        "diff",
        now_pg["snapshot"].as_str().unwrap(),
        later["snapshot"].as_str().unwrap(),
        "--key",
        "Id",
        "--na",
        "NA",
    ]);
    assert!(stdout(&out).contains("row 9 column SalePrice"), "{}", stdout(&out));

    // reproduce leaves the database alone; --refetch asks it again and finds the same snapshot.
    let run_id = past_pg["run"].as_str().unwrap();
    let out = p.mlpipe(&["reproduce", run_id, "--refetch"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("same snapshot"), "{}", stdout(&out));

    // The password never reached the store.
    for entry in walk(&p.store()) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains("hunter2"),
            "{}",
            entry.display()
        );
    }

    // Mistakes are named: a missing time column, a bad query, an unreachable server, a type we cannot hold.
    let (_, err) = p.fail(&[
        "snapshot",
        &url,
        "--table",
        "houses",
        "--updated-at",
        "changed",
        "--as-of",
        "now",
    ]);
    assert!(
        err.contains("the time column \"changed\" is not in the result"),
        "{err}"
    );
    let (_, err) = p.fail(&["snapshot", &url, "--query", "SELECT nope FROM houses"]);
    assert!(err.contains("the query does not run") && err.contains("nope"), "{err}");
    let dead = url.replace(&pg.socket_dir().display().to_string(), "/nonexistent");
    let (_, err) = p.fail(&["snapshot", &dead, "--table", "houses"]);
    assert!(
        err.contains("cannot connect to PostgreSQL") && !err.contains("hunter2"),
        "{err}"
    );
    pg.psql("CREATE TABLE pts (id int, p point); INSERT INTO pts VALUES (1, point(1,2))");
    let (_, err) = p.fail(&["snapshot", &url, "--table", "pts"]);
    assert!(err.contains("column \"p\" has type point"), "{err}");
}

#[test]
fn credentials_from_the_url_the_environment_or_the_password_file() {
    let pg = Postgres::start();
    pg.psql("CREATE TABLE t (id int, v text); INSERT INTO t VALUES (1, 'a'), (2, 'b')");
    let url = pg.password_user("analyst", "s3cret-pw");
    let p = Project::new();
    let snap = |url: &str, env: &[(&str, &str)]| p.mlpipe_env(&["snapshot", url, "--table", "t", "--hash-only"], env);
    // Without a password the server refuses, and says so.
    let (code, err) = {
        let out = snap(&url, &[("PGPASSFILE", "/nonexistent")]);
        (out.status.code(), stderr(&out))
    };
    assert_eq!(code, Some(1));
    assert!(err.contains("cannot connect to PostgreSQL"), "{err}");
    // In the URL.
    let with = url.replacen("analyst@", "analyst:s3cret-pw@", 1);
    let out = snap(&with, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&out).contains("s3cret") && !stderr(&out).contains("s3cret"));
    let first = |o: &std::process::Output| stdout(o).split_whitespace().next().unwrap_or_default().to_string();
    let id = first(&out);
    assert_eq!(id.len(), 64);
    // From PGPASSWORD.
    let out = snap(&url, &[("PGPASSWORD", "s3cret-pw")]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(first(&out), id);
    // From the password file (libpq's format; a socket connection matches host "localhost").
    let pgpass = p.path("pgpass");
    std::fs::write(
        &pgpass,
        "# comment\notherhost:5432:*:analyst:wrong\nlocalhost:5432:postgres:analyst:s3cret-pw\n",
    )
    .unwrap();
    let out = snap(&url, &[("PGPASSFILE", pgpass.to_str().unwrap())]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(first(&out), id);
    // A wrong password is refused, and not shown.
    let wrong = url.replacen("analyst@", "analyst:not-it@", 1);
    let out = snap(&wrong, &[]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("password authentication failed") && !err.contains("not-it"),
        "{err}"
    );
}

/// Every file under the store, and the outputs given, hold no trace of the password.
fn assert_no_secret(secret: &str, what: &str, text: &str) {
    assert!(!text.contains(secret), "{what} shows the password: {text}");
}

#[test]
fn a_password_with_slash_and_question_mark_percent_encoded_connects_and_never_surfaces() {
    use common::serving::{Server, new_agent};
    let pg = Postgres::start();
    load_history(&pg, "houses", false);
    // Every character a URL reserves, in one password; "S3c" marks it, raw or percent-encoded.
    let password = "S3c/ret?x@y#z%:";
    let bare = pg.password_user("etl", password);
    pg.psql("GRANT CREATE ON SCHEMA public TO etl");
    let url = bare.replacen("etl@", "etl:S3c%2Fret%3Fx%40y%23z%25%3A@", 1);
    let p = Project::new();
    let clean = |what: &str, out: &std::process::Output| {
        assert!(out.status.success(), "{what}: {}", stderr(out));
        assert_no_secret("S3c", what, &stdout(out));
        assert_no_secret("S3c", what, &stderr(out));
    };

    // A snapshot straight from the database.
    let out = p.mlpipe(&[
        "snapshot",
        &url,
        "--table",
        "houses",
        "--updated-at",
        "updated_at",
        "--key",
        "Id",
        "--order-by",
        "Id",
        "--as-of",
        "2026-03-01T00:00:00Z",
        "--na",
        "NA",
        "--json",
    ]);
    clean("snapshot --json", &out);
    let snap: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(snap["source"]["source"], bare.as_str());

    // A pipeline gathering from it: the run, and the same run with the password from PGPASSWORD.
    let sqlite_text = std::fs::read_to_string(SQLITE_PIPELINE).unwrap();
    let with_url = |u: &str| sqlite_text.replace("sqlite:../data-snapshots/house-prices/houses.sqlite", u);
    std::fs::write(p.path("pg.toml"), with_url(&url)).unwrap();
    let out = p.mlpipe(&["run", "pg.toml", "--json"]);
    clean("run --json", &out);
    let first: Value = serde_json::from_slice(&out.stdout).unwrap();
    let run = first["run"].as_str().unwrap().to_string();
    std::fs::write(p.path("pg.toml"), with_url(&bare)).unwrap();
    let out = p.mlpipe_env(&["run", "pg.toml", "--json"], &[("PGPASSWORD", password)]);
    clean("run with PGPASSWORD", &out);
    let second: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        second["run"], first["run"],
        "the run id does not depend on where the password came from"
    );
    assert_eq!(
        second["record"], first["record"],
        "nor does the stored pipeline or run record"
    );
    assert_eq!(second["snapshot"], snap["snapshot"]);
    assert!(second["stages"].as_array().unwrap().iter().all(|s| s["cached"] == true));

    // Everything that shows a run or its objects.
    let shown: Value = serde_json::from_slice(&p.mlpipe(&["show", &run, "--json"]).stdout).unwrap();
    let pipeline_object = shown["content"]["pipeline"].as_str().unwrap().to_string();
    let source_record = shown["content"]["source_record"].as_str().unwrap().to_string();
    assert_eq!(shown["content"]["source"], bare.as_str());
    for args in [
        vec!["show", &run],
        vec!["show", &run, "--json"],
        vec!["show", &pipeline_object, "--json"],
        vec!["show", &source_record, "--json"],
        vec!["log"],
        vec!["log", "--json"],
        vec!["report", &run, "-o", "report.html"],
        vec!["reproduce", &run],
        vec!["verify"],
    ] {
        let out = p.mlpipe_env(&args, &[("PGPASSWORD", password)]);
        clean(&args.join(" "), &out);
    }
    assert_no_secret(
        "S3c",
        "report.html",
        &std::fs::read_to_string(p.path("report.html")).unwrap(),
    );
    let out = p.mlpipe_env(&["reproduce", &run, "--refetch"], &[("PGPASSWORD", password)]);
    clean("reproduce --refetch", &out);
    assert!(stdout(&out).contains("same snapshot"), "{}", stdout(&out));

    // Predictions into a table, the ledger in PostgreSQL, a replay from it, and a server writing to it.
    let scoring = p.run(&[])["run"].as_str().unwrap().to_string();
    let out = p.mlpipe(&[
        "predict", &scoring, "--input", "test.csv", "-o", &url, "--table", "preds", "--ledger", &url, "--json",
    ]);
    clean("predict --json into PostgreSQL", &out);
    assert!(stdout(&out).contains("etl:***@"), "{}", stdout(&out));
    assert_eq!(pg.psql("SELECT count(*) FROM preds"), "1459");
    let out = p.mlpipe(&["ledger", "--ledger", &url, "--json"]);
    clean("ledger --json", &out);
    let entries: Value = serde_json::from_slice(&out.stdout).unwrap();
    let prediction = entries[0]["prediction"].as_str().unwrap().to_string();
    clean(
        "reproduce from the ledger",
        &p.mlpipe(&["reproduce", &format!("{prediction}/3"), "--ledger", &url]),
    );
    let server = Server::start(&p, &[&scoring, "--ledger", &url]);
    let model = new_agent()
        .get(&format!("{}/v1/model", server.base))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert_no_secret("S3c", "/v1/model", &model);
    let (stopped, rest) = server.stop();
    assert!(stopped);
    assert_no_secret("S3c", "serve", &rest);
    // An environment variable holding the URL is never echoed by --help.
    let out = p.mlpipe_env(&["predict", "--help"], &[("MLPIPE_LEDGER", &url)]);
    clean("predict --help", &out);

    // The password file (passfile= in the URL) as libpq reads it.
    std::fs::write(
        p.path("pgpass"),
        format!("localhost:5432:postgres:etl:{}\n", password.replace(':', "\\:")),
    )
    .unwrap();
    let out = p.mlpipe(&[
        "snapshot",
        &format!("{bare}&passfile={}", p.path("pgpass").display()),
        "--table",
        "houses",
        "--hash-only",
    ]);
    clean("snapshot with passfile=", &out);

    // Failures: a wrong password, an unreachable server, the password written raw, a mistyped scheme.
    let wrong = bare.replacen("etl@", "etl:S3c-wrong%2F@", 1);
    let out = p.mlpipe(&["snapshot", &wrong, "--table", "houses"]);
    assert!(
        stderr(&out).contains("password authentication failed for user \"etl\""),
        "{}",
        stderr(&out)
    );
    assert_no_secret("S3c", "a refused login", &stderr(&out));
    let dead = url.replace(&pg.socket_dir().display().to_string(), "/nonexistent");
    let (_, err) = p.fail(&["snapshot", &dead, "--table", "houses"]);
    assert!(
        err.contains("cannot connect to PostgreSQL at postgres://etl:***@/postgres?host=/nonexistent"),
        "{err}"
    );
    assert_no_secret("S3c", "an unreachable server", &err);
    let raw = bare.replacen("etl@", &format!("etl:{password}@"), 1);
    for args in [
        vec!["snapshot", raw.as_str(), "--table", "houses"],
        vec![
            "predict", &scoring, "--input", "test.csv", "-o", &raw, "--table", "preds",
        ],
        vec!["ledger", "--ledger", &raw],
        vec!["snapshot", "postgress://etl:S3c@host/db", "--table", "houses"],
    ] {
        let (code, err) = p.fail(&args);
        assert_eq!(code, 1, "{err}");
        assert_no_secret("S3c", &format!("refusing {}", args[0]), &err);
    }
    let (_, err) = p.fail(&["snapshot", raw.as_str(), "--table", "houses"]);
    assert!(err.contains("the PostgreSQL URL is ambiguous"), "{err}");
    assert!(err.contains("'/' as %2F, '?' as %3F, '@' as %40, '#' as %23"), "{err}");
    std::fs::write(p.path("raw.toml"), with_url(&raw)).unwrap();
    let (_, err) = p.fail(&["run", "raw.toml"]);
    assert!(err.contains("raw.toml:16:10"), "{err}");
    assert!(
        err.contains("source = \"postgres://(not shown: the URL does not parse)\""),
        "{err}"
    );
    assert_no_secret("S3c", "a pipeline with the password raw", &err);

    // Nothing in the store holds the password, raw or encoded.
    for entry in walk(&p.store()) {
        let bytes = std::fs::read(&entry).unwrap();
        assert_no_secret("S3c", &entry.display().to_string(), &String::from_utf8_lossy(&bytes));
    }
}

/// The ledger table as mlpipe created it in PostgreSQL before the chain existed.
const OLD_PG_LEDGER: &str = "CREATE TABLE ledger (
        seq bigserial PRIMARY KEY,
        prediction text NOT NULL, run text NOT NULL, model text NOT NULL,
        input text NOT NULL, input_format text NOT NULL, output text NOT NULL,
        rows bigint NOT NULL, value double precision, channel text NOT NULL, role text NOT NULL,
        pair text, time text NOT NULL, source text NOT NULL);
     CREATE INDEX ledger_prediction ON ledger(prediction);
     CREATE INDEX ledger_input ON ledger(input);
     CREATE INDEX ledger_time ON ledger(time);
     CREATE TABLE ledger_inputs (id text PRIMARY KEY, body bytea NOT NULL);";

#[test]
fn a_postgres_ledger_from_before_the_chain_is_chained_when_opened_to_write_and_refused_by_readers() {
    use mlpipe::ledger::{self, Link};
    let pg = Postgres::start();
    pg.psql(OLD_PG_LEDGER);
    let hex = |text: &str| mlpipe::digest::Id::of_bytes(text.as_bytes()).hex();
    // Committed in seq order; their times are not in order.
    for (i, second) in [(1, 7), (2, 3), (3, 9)] {
        pg.psql(&format!(
            "INSERT INTO ledger (prediction, run, model, input, input_format, output, rows, value, channel, role, \
             pair, time, source) VALUES ('{}', '{}', '{}', '{}', 'record', '{}', 1, {i}.5, 'serve', 'champion', \
             NULL, '2026-11-26T10:00:0{second}.000000Z', '127.0.0.1:1')",
            hex(&format!("p{i}")),
            hex("run"),
            hex("model"),
            hex(&format!("i{i}")),
            hex(&format!("o{i}")),
        ));
    }
    let p = Project::new();
    // Reading never migrates: `ledger head` says what to do and leaves the table as it was.
    let before = p.mlpipe(&["ledger", "head", "--ledger", &pg.url]);
    assert!(!before.status.success());
    assert!(
        stderr(&before).contains("written before the hash chain existed"),
        "{}",
        stderr(&before)
    );
    assert!(stderr(&before).contains("mlpipe predict"), "{}", stderr(&before));
    assert_eq!(
        pg.psql("SELECT count(*) FROM pg_attribute WHERE attrelid = 'ledger'::regclass AND attname = 'position'"),
        "0"
    );
    // Opening it to write (what predict and serve do) chains it in place.
    drop(ledger::open(&p.store(), Some(&pg.url)).unwrap());
    let head = p.mlpipe(&["ledger", "head", "--ledger", &pg.url, "--json"]);
    assert!(head.status.success(), "{}", stderr(&head));
    let head: Value = serde_json::from_slice(&head.stdout).unwrap();
    assert_eq!((head["entries"].as_u64(), head["kept"].as_u64()), (Some(3), Some(3)));
    assert_eq!(
        pg.psql("SELECT string_agg(position::text, ',' ORDER BY seq) FROM ledger"),
        "1,2,3",
        "every row kept and chained in commit order"
    );
    // The digests are those of the documented encoding, in seq order.
    let mut backend = ledger::open(&p.store(), Some(&pg.url)).unwrap();
    let mut entries = backend.entries(&ledger::Filter::default()).unwrap();
    entries.reverse();
    let expected = entries.iter().fold(Link::START, |link, e| link.next(e));
    assert_eq!(head["digest"], expected.digest.hex().as_str());
    let check = ledger::check_chain(backend.as_mut()).unwrap();
    assert_eq!((check.checked, check.problems.len()), (3, 0));
    // Opening again changes nothing.
    drop(backend);
    let again = p.mlpipe(&["ledger", "head", "--ledger", &pg.url, "--json"]);
    assert_eq!(serde_json::from_slice::<Value>(&again.stdout).unwrap(), head);
}

#[test]
fn servers_appending_to_one_postgres_ledger_extend_one_verifiable_chain() {
    let pg = Postgres::start();
    let p = Project::new();
    let run = p.run(&[])["run"].as_str().unwrap().to_string();
    let url = pg.url.clone();
    let records = common::serving::test_records(&p);
    // Four writers at once (as four servers would be), each committing its own group of entries.
    let streams: Vec<_> = records
        .chunks(20)
        .take(4)
        .map(|chunk| {
            let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mlpipe"))
                .current_dir(p.dir.path())
                .env("MLPIPE_STORE", p.store())
                .args(["predict", &run, "--stream", "--ledger", &url])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let text: String = chunk.iter().flat_map(|r| [r.to_string(), "\n".into()]).collect();
            let mut stdin = child.stdin.take().unwrap();
            std::thread::spawn(move || std::io::Write::write_all(&mut stdin, text.as_bytes()).unwrap());
            child
        })
        .collect();
    let batch = p.mlpipe(&[
        "predict", &run, "--input", "test.csv", "-o", "out.csv", "--ledger", &url,
    ]);
    assert!(batch.status.success(), "{}", stderr(&batch));
    let mut answers = Vec::new();
    for child in streams {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        answers.extend(stdout(&out).lines().map(|l| serde_json::from_str::<Value>(l).unwrap()));
    }
    assert_eq!(answers.len(), 80);
    assert_eq!(
        pg.psql("SELECT count(*) || ' ' || count(DISTINCT position) || ' ' || min(position) || ' ' || max(position) FROM ledger"),
        "81 81 1 81"
    );
    let verify = p.mlpipe(&["verify", "--ledger", &url]);
    assert!(verify.status.success(), "{}", stdout(&verify));
    assert!(
        stdout(&verify).contains("checked the ledger's chain: 81 entries up to head "),
        "{}",
        stdout(&verify)
    );

    // Prune everything made before a time given with an offset: the chain goes on from the anchor.
    let head: Value =
        serde_json::from_slice(&p.mlpipe(&["ledger", "head", "--ledger", &url, "--json"]).stdout).unwrap();
    let prune = p.mlpipe(&[
        "ledger",
        "prune",
        "--before",
        "2999-01-01T00:00:00-02:00",
        "--ledger",
        &url,
    ]);
    assert!(prune.status.success(), "{}", stderr(&prune));
    assert!(
        stdout(&prune).starts_with("removed 81 entries made before 2999-01-01T02:00:00.000000Z"),
        "{}",
        stdout(&prune)
    );
    assert_eq!(
        pg.psql("SELECT position || ' ' || digest FROM ledger_anchor"),
        format!("81 {}", head["digest"].as_str().unwrap())
    );
    let more = p.mlpipe(&[
        "predict", &run, "--input", "test.csv", "-o", "out.csv", "--ledger", &url,
    ]);
    assert!(more.status.success(), "{}", stderr(&more));
    let streamed: Vec<Value> = {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mlpipe"))
            .current_dir(p.dir.path())
            .env("MLPIPE_STORE", p.store())
            .args(["predict", &run, "--stream", "--ledger", &url])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), format!("{}\n", records[100]).as_bytes()).unwrap();
        drop(child.stdin.take());
        let out = child.wait_with_output().unwrap();
        stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    };
    let verify = p.mlpipe(&["verify", "--ledger", &url]);
    assert!(verify.status.success(), "{}", stdout(&verify));
    assert_eq!(
        pg.psql("SELECT string_agg(position::text, ',' ORDER BY seq) FROM ledger"),
        "82,83"
    );
    // Newest first, by row number (not by its text: "83" before "100").
    let newest: Value =
        serde_json::from_slice(&p.mlpipe(&["ledger", "--ledger", &url, "--limit", "1", "--json"]).stdout).unwrap();
    assert_eq!(newest[0]["prediction"], streamed[0]["prediction_id"]);

    // A value changed in the database: verify names the entry, reproduce exits 3, prune refuses.
    let id = streamed[0]["prediction_id"].as_str().unwrap();
    pg.psql(&format!("UPDATE ledger SET value = 999 WHERE prediction = '{id}'"));
    let verify = p.mlpipe(&["verify", "--ledger", &url]);
    assert_eq!(verify.status.code(), Some(1), "{}", stdout(&verify));
    assert!(
        stdout(&verify).contains(&format!("  {id}: ledger entry ")),
        "{}",
        stdout(&verify)
    );
    assert!(
        stdout(&verify).contains("does not match its chain digest"),
        "{}",
        stdout(&verify)
    );
    let replay = p.mlpipe(&["reproduce", id, "--ledger", &url]);
    assert_eq!(replay.status.code(), Some(3), "{}", stderr(&replay));
    assert!(
        stdout(&replay).contains(&format!(
            "value recorded 999.0, replayed {:?}",
            streamed[0]["prediction"].as_f64().unwrap()
        )),
        "{}",
        stdout(&replay)
    );
    let (code, err) = p.fail(&["ledger", "prune", "--before", "2999-01-01T00:00:00Z", "--ledger", &url]);
    assert_eq!(code, 1);
    assert!(err.contains("of the entries to remove do not verify"), "{err}");
    assert_eq!(pg.psql("SELECT count(*) FROM ledger"), "2");
}
