#![allow(clippy::unwrap_used, clippy::expect_used, clippy::float_cmp)]

//! Deployment end to end with the real binary: batch files and SQLite tables, streaming through a real
//! pipe, the REST server on loopback with a real HTTP client, and replay of every channel's predictions.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::serving::{Server, get, new_agent, post, replay, test_records};
use common::{Project, stderr, stdout};
use serde_json::{Value, json};

fn run_id(p: &Project) -> String {
    p.run(&[])["run"].as_str().unwrap().to_string()
}

fn csv_predictions(bytes: &[u8]) -> Vec<(String, f64, String)> {
    let mut rdr = csv::Reader::from_reader(bytes);
    rdr.records()
        .map(|r| {
            let r = r.unwrap();
            (r[0].to_string(), r[1].parse().unwrap(), r[3].to_string())
        })
        .collect()
}

#[test]
fn batch_formats_agree_and_every_row_replays() {
    let p = Project::new();
    let run = run_id(&p);
    let records = test_records(&p);
    let ndjson: String = records.iter().fold(String::new(), |acc, r| acc + &r.to_string() + "\n");
    std::fs::write(p.path("test.ndjson"), ndjson).unwrap();

    let a = p.mlpipe(&["predict", &run, "--input", "test.csv", "-o", "a.csv"]);
    assert!(a.status.success(), "{}", stderr(&a));
    // NDJSON in, Parquet out, then that Parquet file's ids fed back is not needed: check the values.
    let b = p.mlpipe(&["predict", &run, "--input", "test.ndjson", "-o", "b.parquet"]);
    assert!(b.status.success(), "{}", stderr(&b));
    let c = p.mlpipe(&[
        "predict",
        &run,
        "--input",
        "-",
        "--input-format",
        "ndjson",
        "-o",
        "c.ndjson",
    ]);
    assert!(!c.status.success(), "standard input was empty");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mlpipe"))
        .current_dir(p.dir.path())
        .env("MLPIPE_STORE", p.store())
        .args([
            "predict",
            &run,
            "--input",
            "-",
            "--input-format",
            "ndjson",
            "-o",
            "c.ndjson",
            "--json",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&std::fs::read(p.path("test.ndjson")).unwrap())
        .unwrap();
    let c = child.wait_with_output().unwrap();
    assert!(c.status.success(), "{}", stderr(&c));
    let c_report: Value = serde_json::from_slice(&c.stdout).unwrap();

    let from_csv = csv_predictions(&std::fs::read(p.path("a.csv")).unwrap());
    assert_eq!(from_csv.len(), 1459);
    let from_ndjson: Vec<Value> = std::fs::read_to_string(p.path("c.ndjson"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(from_ndjson.len(), from_csv.len());
    for ((id, pred, pid), rec) in from_csv.iter().zip(&from_ndjson) {
        assert_eq!(rec["Id"].to_string(), *id);
        // Bit for bit: the same row gives the same double whatever the input format.
        assert_eq!(rec["prediction"].as_f64().unwrap().to_bits(), pred.to_bits());
        let batch = c_report["prediction"].as_str().unwrap();
        assert!(rec["prediction_id"].as_str().unwrap().starts_with(batch));
        assert!(pid.contains('/'));
    }
    // The Parquet output holds the same doubles: read it back through predict's own Parquet reader by
    // checking its size and magic, then replay the batch it came from.
    let parquet = std::fs::read(p.path("b.parquet")).unwrap();
    assert_eq!(&parquet[..4], b"PAR1");
    let b_pred = stdout(&b)
        .lines()
        .find_map(|l| l.strip_prefix("prediction ").map(str::to_string))
        .unwrap();
    replay(&p, &b_pred);
    replay(&p, &from_csv[17].2);
    replay(&p, c_report["prediction"].as_str().unwrap());
    let (code, err) = p.fail(&["reproduce", &format!("{b_pred}/5000")]);
    assert_eq!(code, 1);
    assert!(err.contains("has 1459 rows; there is no row 5000"), "{err}");

    // Every batch is in the ledger with its channel, rows and input.
    let ledger = p.mlpipe(&["ledger", "--channel", "batch", "--json"]);
    let entries: Value = serde_json::from_slice(&ledger.stdout).unwrap();
    assert_eq!(entries.as_array().unwrap().len(), 3);
    assert!(entries.as_array().unwrap().iter().all(|e| e["rows"] == 1459));
}

#[test]
fn parquet_input_gives_the_same_predictions_as_csv() {
    // Parquet written by mlpipe itself (its output has Id, prediction, …): not a feature table. Build a
    // feature table with Arrow here, as a user's tool would write it.
    use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
    use std::sync::Arc;
    let p = Project::new();
    let run = run_id(&p);
    let mut records = test_records(&p);
    let write = |records: &[Value], file: &str| {
        let names: Vec<String> = records[0].as_object().unwrap().keys().cloned().collect();
        let mut arrays: Vec<(String, ArrayRef)> = Vec::new();
        for name in &names {
            let col: Vec<&Value> = records.iter().map(|r| &r[name]).collect();
            let array: ArrayRef = if col.iter().any(|v| v.is_string()) {
                Arc::new(StringArray::from(col.iter().map(|v| v.as_str()).collect::<Vec<_>>()))
            } else if col.iter().all(|v| v.is_null() || v.is_i64()) {
                Arc::new(Int64Array::from(col.iter().map(|v| v.as_i64()).collect::<Vec<_>>()))
            } else {
                Arc::new(Float64Array::from(col.iter().map(|v| v.as_f64()).collect::<Vec<_>>()))
            };
            arrays.push((name.clone(), array));
        }
        let batch = RecordBatch::try_from_iter(arrays).unwrap();
        let mut bytes = Vec::new();
        let mut w = parquet::arrow::ArrowWriter::try_new(&mut bytes, batch.schema(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        std::fs::write(p.path(file), bytes).unwrap();
    };
    write(&records, "test.parquet");
    let a = p.mlpipe(&["predict", &run, "--input", "test.csv", "-o", "a.csv"]);
    assert!(a.status.success(), "{}", stderr(&a));
    let b = p.mlpipe(&["predict", &run, "--input", "test.parquet", "-o", "b.csv"]);
    assert!(b.status.success(), "{}", stderr(&b));
    let (a, b) = (
        csv_predictions(&std::fs::read(p.path("a.csv")).unwrap()),
        csv_predictions(&std::fs::read(p.path("b.csv")).unwrap()),
    );
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!((&x.0, x.1.to_bits()), (&y.0, y.1.to_bits()));
    }
    // A Parquet column of the wrong type is named.
    for r in &mut records {
        r["LotArea"] = json!("large");
    }
    write(&records, "bad.parquet");
    let (_, err) = p.fail(&["predict", &run, "--input", "bad.parquet"]);
    assert!(
        err.contains("column \"LotArea\" must be numeric, but line 1 of bad.parquet holds \"large\""),
        "{err}"
    );
    std::fs::write(p.path("junk.parquet"), b"not parquet at all").unwrap();
    let (_, err) = p.fail(&["predict", &run, "--input", "junk.parquet"]);
    assert!(err.contains("junk.parquet is not a readable Parquet file"), "{err}");
}

#[test]
fn sqlite_table_writes_are_atomic_and_idempotent() {
    let p = Project::new();
    let run = run_id(&p);
    let db = p.path("out.db");
    let target = format!("sqlite:{}", db.display());
    let write = |table: &str| p.mlpipe(&["predict", &run, "--input", "test.csv", "-o", &target, "--table", table]);
    let first = write("predictions");
    assert!(first.status.success(), "{}", stderr(&first));
    let second = write("predictions");
    assert!(second.status.success(), "{}", stderr(&second));
    assert!(
        stdout(&second).contains("(0 new; the rest were already there)"),
        "{}",
        stdout(&second)
    );
    let conn = rusqlite::Connection::open(&db).unwrap();
    let count = |t: &str| -> i64 {
        conn.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(count("predictions"), 1459);
    let (id, pred, model): (i64, f64, String) = conn
        .query_row(
            "SELECT Id, prediction, model FROM predictions ORDER BY Id LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    let csv = csv_predictions(&p.mlpipe(&["predict", &run, "--input", "test.csv"]).stdout);
    assert_eq!((id.to_string(), pred.to_bits()), (csv[0].0.clone(), csv[0].1.to_bits()));
    assert_eq!(model.len(), 64);

    // A row that violates a constraint midway: the whole batch is rolled back, the table is as it was.
    conn.execute_batch(
        "CREATE TABLE guarded (Id INTEGER, prediction REAL NOT NULL CHECK (prediction < 300000), \
         model TEXT NOT NULL, prediction_id TEXT PRIMARY KEY);
         INSERT INTO guarded VALUES (1, 1.0, 'm', 'existing');",
    )
    .unwrap();
    let (code, err) = p.fail(&[
        "predict", &run, "--input", "test.csv", "-o", &target, "--table", "guarded",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("CHECK constraint failed"), "{err}");
    assert_eq!(count("guarded"), 1);

    // A table of another shape is named, not written into.
    conn.execute_batch("CREATE TABLE other (a TEXT)").unwrap();
    let (_, err) = p.fail(&[
        "predict", &run, "--input", "test.csv", "-o", &target, "--table", "other",
    ]);
    assert!(
        err.contains(
            "table other exists with columns (a), but predictions need (Id, prediction, model, prediction_id)"
        ),
        "{err}"
    );
    let (_, err) = p.fail(&[
        "predict",
        &run,
        "--input",
        "test.csv",
        "-o",
        &target,
        "--table",
        "x; drop table predictions",
    ]);
    assert!(err.contains("is not a usable table name"), "{err}");
    let (_, err) = p.fail(&["predict", &run, "--input", "test.csv", "-o", &target]);
    assert!(err.contains("name the table with --table"), "{err}");
    assert_eq!(count("predictions"), 1459);
}

#[test]
fn stream_answers_line_by_line_through_a_pipe_and_replays() {
    let p = Project::new();
    let run = run_id(&p);
    let records = test_records(&p);
    let mut child = Command::new(env!("CARGO_BIN_EXE_mlpipe"))
        .current_dir(p.dir.path())
        .env("MLPIPE_STORE", p.store())
        .args(["predict", &run, "--stream"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let mut output = BufReader::new(child.stdout.take().unwrap());
    let mut answers = Vec::new();
    let mut bad = records[2].clone();
    bad["LotArea"] = json!("large");
    let mut unseen = records[3].clone();
    unseen["ExterQual"] = json!("Superb");
    let lines = vec![
        records[0].to_string(),
        "{not json".to_string(),
        records[1].to_string(),
        bad.to_string(),
        unseen.to_string(),
        "[1, 2]".to_string(),
        records[0].to_string(),
    ];
    // One line in, one line out, before the next line is written: the stream flushes per line.
    for line in &lines {
        writeln!(input, "{line}").unwrap();
        input.flush().unwrap();
        let mut answer = String::new();
        output.read_line(&mut answer).unwrap();
        answers.push(serde_json::from_str::<Value>(&answer).unwrap());
    }
    drop(input);
    let status = child.wait().unwrap();
    assert!(status.success());
    assert_eq!(answers[0]["Id"], 1461);
    assert!(
        answers[1]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON")
    );
    assert_eq!(answers[1]["line"], 2);
    assert_eq!(answers[3]["error"]["field"], "LotArea");
    assert_eq!(answers[4]["error"]["field"], "ExterQual");
    assert!(
        answers[4]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unseen category \"Superb\"")
    );
    assert!(
        answers[5]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not a JSON object")
    );
    // The same record, the same prediction id and value.
    assert_eq!(answers[0], answers[6]);
    let csv = csv_predictions(&p.mlpipe(&["predict", &run, "--input", "test.csv"]).stdout);
    assert_eq!(answers[2]["prediction"].as_f64().unwrap().to_bits(), csv[1].1.to_bits());
    for a in [&answers[0], &answers[2]] {
        replay(&p, a["prediction_id"].as_str().unwrap());
    }
    let ledger: Value = serde_json::from_slice(&p.mlpipe(&["ledger", "--channel", "stream", "--json"]).stdout).unwrap();
    assert_eq!(
        ledger.as_array().unwrap().len(),
        3,
        "three predictions, errors are not entries"
    );

    // A stored input changed behind mlpipe's back is found by verify and refused by reproduce.
    let verify = p.mlpipe(&["verify"]);
    assert!(verify.status.success(), "{}", stdout(&verify));
    assert!(
        stdout(&verify).contains("checked 4 ledger entries and 2 record inputs"),
        "{}",
        stdout(&verify)
    );
    let input = ledger[0]["input"].as_str().unwrap();
    let conn = rusqlite::Connection::open(p.store().join("ledger.sqlite")).unwrap();
    let changed = conn
        .execute(
            "UPDATE ledger_inputs SET body = CAST('{}' AS BLOB) WHERE id = ?1",
            [input],
        )
        .unwrap();
    assert_eq!(changed, 1);
    drop(conn);
    let verify = p.mlpipe(&["verify"]);
    assert_eq!(verify.status.code(), Some(1));
    assert!(
        stdout(&verify).contains(&format!("{input}: ledger input is corrupt")),
        "{}",
        stdout(&verify)
    );
    let (code, err) = p.fail(&["reproduce", ledger[0]["prediction"].as_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("is corrupt"), "{err}");
}

#[test]
fn rest_serves_predictions_rejects_bad_input_and_replays() {
    let p = Project::new();
    let run = run_id(&p);
    let records = test_records(&p);
    let server = Server::start(&p, &[&run]);
    let agent = new_agent();
    let url = format!("{}/v1/predict", server.base);
    let csv = csv_predictions(&p.mlpipe(&["predict", &run, "--input", "test.csv"]).stdout);

    // One record: the same double as batch.
    let (status, one) = post(&agent, &url, "application/json", &records[0].to_string());
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["prediction"].as_f64().unwrap().to_bits(), csv[0].1.to_bits());
    assert_eq!(one["Id"], 1461);
    assert_eq!(one["run"], run.as_str());
    // An array: one prediction per record, in order.
    let body = Value::Array(records[..20].to_vec()).to_string();
    let (status, many) = post(&agent, &url, "application/json; charset=utf-8", &body);
    assert_eq!(status, 200, "{many}");
    let preds = many["predictions"].as_array().unwrap();
    assert_eq!(preds.len(), 20);
    for (r, pr) in preds.iter().enumerate() {
        assert_eq!(pr["prediction"].as_f64().unwrap().to_bits(), csv[r].1.to_bits());
    }

    // Every kind of bad input: a 4xx naming what is wrong, never a 5xx.
    let mut missing = records[0].clone();
    missing.as_object_mut().unwrap().remove("GrLivArea");
    let mut wrong = records[0].clone();
    wrong["OverallQual"] = json!("seven");
    let mut unseen = records[0].clone();
    unseen["KitchenQual"] = json!("Superb");
    let mut typo = records[0].clone();
    typo["GrLivAera"] = json!(1);
    let cases: Vec<(&str, String, u16, &str, Option<&str>)> = vec![
        ("application/json", "{\"a\": ".into(), 400, "invalid_json", None),
        ("application/json", "42".into(), 400, "invalid_body", None),
        ("application/json", "[]".into(), 400, "invalid_body", None),
        ("application/json", "[1]".into(), 400, "invalid_body", None),
        (
            "text/plain",
            records[0].to_string(),
            415,
            "unsupported_media_type",
            None,
        ),
        (
            "application/json",
            missing.to_string(),
            422,
            "invalid_record",
            Some("GrLivArea"),
        ),
        (
            "application/json",
            wrong.to_string(),
            422,
            "invalid_record",
            Some("OverallQual"),
        ),
        (
            "application/json",
            unseen.to_string(),
            422,
            "invalid_record",
            Some("KitchenQual"),
        ),
        (
            "application/json",
            typo.to_string(),
            422,
            "invalid_record",
            Some("GrLivAera"),
        ),
        ("application/json", "[".repeat(100_000), 400, "invalid_json", None),
    ];
    for (ct, body, want, kind, field) in &cases {
        let (status, answer) = post(&agent, &url, ct, body);
        assert_eq!(status, *want, "{kind}: {answer}");
        assert_eq!(answer["error"]["kind"], *kind, "{answer}");
        if let Some(f) = field {
            assert_eq!(answer["error"]["field"], *f, "{answer}");
        }
        assert!(!answer["error"]["message"].as_str().unwrap().is_empty());
    }
    // A body announced larger than the limit is refused before it is read (a raw client that sends
    // only the headers: the server must answer without waiting for the body).
    {
        use std::io::Read;
        let addr = server.base.strip_prefix("http://").unwrap();
        let mut tcp = std::net::TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            tcp,
            "POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 3000000\r\n\r\n"
        )
        .unwrap();
        let mut answer = Vec::new();
        let _ = tcp.read_to_end(&mut answer);
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        assert!(answer.contains("\"kind\":\"payload_too_large\""), "{answer}");
    }
    let (status, answer) = post(&agent, &format!("{}/v2/predict", server.base), "application/json", "{}");
    assert_eq!((status, answer["error"]["kind"].as_str()), (404, Some("not_found")));

    // Concurrency: 8 clients at once, every answer right.
    std::thread::scope(|s| {
        for t in 0..8 {
            let (url, records, csv) = (&url, &records, &csv);
            s.spawn(move || {
                let agent = new_agent();
                for i in 0..25 {
                    let r = (t * 25 + i) % records.len();
                    let (status, answer) = post(&agent, url, "application/json", &records[r].to_string());
                    assert_eq!(status, 200);
                    assert_eq!(answer["prediction"].as_f64().unwrap().to_bits(), csv[r].1.to_bits());
                }
            });
        }
    });

    let (status, model) = get(&agent, &format!("{}/v1/model", server.base));
    assert_eq!(status, 200);
    let model: Value = serde_json::from_str(&model).unwrap();
    assert_eq!(model["run"], run.as_str());
    assert!(model["metrics"]["r2"].as_f64().unwrap() > 0.85);
    let kitchen = model["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "KitchenQual")
        .unwrap();
    assert_eq!(kitchen["type"], "categorical");
    let (status, openapi) = get(&agent, &format!("{}/openapi.json", server.base));
    assert_eq!(status, 200);
    let openapi: Value = serde_json::from_str(&openapi).unwrap();
    assert_eq!(openapi["openapi"], "3.1.0");
    assert!(
        openapi["components"]["schemas"]["Record"]["required"]
            .as_array()
            .unwrap()
            .contains(&json!("GrLivArea"))
    );
    let (status, health) = get(&agent, &format!("{}/healthz", server.base));
    assert_eq!((status, health.contains("\"ok\"")), (200, true));
    let (_, metrics) = get(&agent, &format!("{}/metrics", server.base));
    assert!(
        metrics.contains("mlpipe_requests_total{route=\"/v1/predict\",status=\"200\"} 202"),
        "{metrics}"
    );
    assert!(
        metrics.contains("mlpipe_requests_total{route=\"/v1/predict\",status=\"422\"} 4"),
        "{metrics}"
    );
    assert!(
        metrics.contains("mlpipe_predict_duration_seconds_count 213"),
        "{metrics}"
    );
    assert!(
        metrics.contains("mlpipe_errors_total{kind=\"invalid_json\"} 2"),
        "{metrics}"
    );

    // SIGTERM: a clean exit, and every answered prediction is in the ledger.
    let (clean, last) = server.stop();
    assert!(clean);
    assert!(last.contains("\"predictions\":221"), "{last}");
    let ledger: Value = serde_json::from_slice(
        &p.mlpipe(&["ledger", "--channel", "serve", "--limit", "1000", "--json"])
            .stdout,
    )
    .unwrap();
    assert_eq!(ledger.as_array().unwrap().len(), 221);
    replay(&p, one["prediction_id"].as_str().unwrap());
    replay(&p, preds[19]["prediction_id"].as_str().unwrap());
}

#[test]
fn rest_token_loopback_and_shadow() {
    let p = Project::new();
    let champion = run_id(&p);
    p.edit("pipeline.toml", "alpha = 10.0", "alpha = 30.0");
    let challenger = run_id(&p);
    let records = test_records(&p);
    std::fs::write(p.path("token"), "s3cr3t-token\n").unwrap();

    let out = p.mlpipe(&["serve", &champion, "--addr", "0.0.0.0:0"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("is not a loopback address"), "{}", stderr(&out));

    let server = Server::start(&p, &[&champion, "--shadow", &challenger, "--token-file", "token"]);
    let agent = new_agent();
    let url = format!("{}/v1/predict", server.base);
    let (status, answer) = post(&agent, &url, "application/json", &records[0].to_string());
    assert_eq!((status, answer["error"]["kind"].as_str()), (401, Some("unauthorized")));
    let send = |body: &str, token: &str| {
        let mut resp = agent
            .post(&url)
            .header("Content-Type", "application/json")
            .header("Authorization", &format!("Bearer {token}"))
            .send(body)
            .unwrap();
        (resp.status().as_u16(), resp.body_mut().read_to_string().unwrap())
    };
    assert_eq!(send(&records[0].to_string(), "wrong").0, 401);
    let body = Value::Array(records[..50].to_vec()).to_string();
    let (status, text) = send(&body, "s3cr3t-token");
    assert_eq!(status, 200, "{text}");
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(answer["run"], champion.as_str(), "the champion answers");
    let (clean, _) = server.stop();
    assert!(clean);

    let compare = p.mlpipe(&["ledger", "compare", "--json"]);
    assert!(compare.status.success(), "{}", stderr(&compare));
    let rows: Value = serde_json::from_slice(&compare.stdout).unwrap();
    let row = &rows[0];
    assert_eq!(row["champion"], champion.as_str());
    assert_eq!(row["shadow"], challenger.as_str());
    assert_eq!(row["pairs"], 50);
    assert!(
        row["mean_abs_difference"].as_f64().unwrap() > 0.0,
        "a different alpha predicts differently"
    );
    let shadow_entries: Value =
        serde_json::from_slice(&p.mlpipe(&["ledger", "--role", "shadow", "--json"]).stdout).unwrap();
    let shadow_id = shadow_entries[0]["prediction"].as_str().unwrap();
    replay(&p, shadow_id);

    // Pruning removes old entries and the inputs no entry needs; replay then says the input is gone.
    let prune = p.mlpipe(&["ledger", "prune", "--before", "2999-01-01T00:00:00Z"]);
    assert!(prune.status.success(), "{}", stderr(&prune));
    assert!(stdout(&prune).contains("removed 100 entries"), "{}", stdout(&prune));
    let (_, err) = p.fail(&["reproduce", shadow_id]);
    assert!(err.contains("no run, prediction or object"), "{err}");
}

#[test]
fn a_large_batch_scored_in_chunks_matches_row_by_row() {
    // Above 32,768 rows the batch is scored in chunks on all cores; every row must come out as it does
    // in a small batch.
    let p = Project::new();
    let run = run_id(&p);
    let text = std::fs::read_to_string(p.path("test.csv")).unwrap();
    let (header, body) = text.split_once('\n').unwrap();
    let mut big = format!("{header}\n");
    for _ in 0..25 {
        big.push_str(body);
    }
    std::fs::write(p.path("big.csv"), big).unwrap();
    let small = csv_predictions(&p.mlpipe(&["predict", &run, "--input", "test.csv"]).stdout);
    let out = p.mlpipe(&["predict", &run, "--input", "big.csv", "-o", "big-out.csv"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let large = csv_predictions(&std::fs::read(p.path("big-out.csv")).unwrap());
    assert_eq!(large.len(), small.len() * 25);
    for (r, (id, pred, _)) in large.iter().enumerate() {
        let (sid, spred, _) = &small[r % small.len()];
        assert_eq!((id, pred.to_bits()), (sid, spred.to_bits()), "row {r}");
    }
}
