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
    let write = |records: &[Value], file: &str, ipc: bool| {
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
        if ipc {
            let mut w = arrow_ipc::writer::FileWriter::try_new(&mut bytes, &batch.schema()).unwrap();
            w.write(&batch).unwrap();
            w.finish().unwrap();
        } else {
            let mut w = parquet::arrow::ArrowWriter::try_new(&mut bytes, batch.schema(), None).unwrap();
            w.write(&batch).unwrap();
            w.close().unwrap();
        }
        std::fs::write(p.path(file), bytes).unwrap();
    };
    write(&records, "test.parquet", false);
    write(&records, "test.arrow", true);
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
    // Arrow IPC in and out: the same rows, the same predictions and ids.
    let c = p.mlpipe(&["predict", &run, "--input", "test.arrow", "-o", "c.arrow"]);
    assert!(c.status.success(), "{}", stderr(&c));
    let bytes = std::fs::read(p.path("c.arrow")).unwrap();
    let reader = arrow_ipc::reader::FileReader::try_new(std::io::Cursor::new(bytes), None).unwrap();
    let mut from_ipc = Vec::new();
    for batch in reader {
        use arrow_array::cast::AsArray;
        let batch = batch.unwrap();
        let ids = batch
            .column_by_name("prediction_id")
            .unwrap()
            .as_string::<i32>()
            .clone();
        let values = batch
            .column_by_name("prediction")
            .unwrap()
            .as_primitive::<arrow_array::types::Float64Type>()
            .clone();
        from_ipc.extend((0..batch.num_rows()).map(|r| (ids.value(r).to_string(), values.value(r).to_bits())));
    }
    let from_parquet: Vec<(String, u64)> = b.iter().map(|x| (x.2.clone(), x.1.to_bits())).collect();
    assert_eq!(from_ipc.len(), from_parquet.len());
    assert_eq!(
        from_ipc.iter().map(|x| x.1).collect::<Vec<_>>(),
        from_parquet.iter().map(|x| x.1).collect::<Vec<_>>()
    );
    // A CSV file named .arrow is refused as what it is not.
    std::fs::copy(p.path("test.csv"), p.path("renamed.arrow")).unwrap();
    let (_, err) = p.fail(&["predict", &run, "--input", "renamed.arrow"]);
    assert!(err.contains("renamed.arrow is not a readable Arrow IPC file"), "{err}");
    // A Parquet column of the wrong type is named.
    for r in &mut records {
        r["LotArea"] = json!("large");
    }
    write(&records, "bad.parquet", false);
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

/// Streams NDJSON lines through `predict --stream` and returns the answers.
fn stream_answers(p: &Project, run: &str, records: &[Value]) -> Vec<Value> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mlpipe"))
        .current_dir(p.dir.path())
        .env("MLPIPE_STORE", p.store())
        .args(["predict", run, "--stream"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    for r in records {
        writeln!(input, "{r}").unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn ledger_head(p: &Project) -> Value {
    let out = p.mlpipe(&["ledger", "head", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn an_edited_ledger_value_is_reported_by_verify_and_refused_by_reproduce() {
    let p = Project::new();
    let run = run_id(&p);
    let batch = p.mlpipe(&["predict", &run, "--input", "test.csv", "-o", "out.csv", "--json"]);
    assert!(batch.status.success(), "{}", stderr(&batch));
    let batch: Value = serde_json::from_slice(&batch.stdout).unwrap();
    let batch_id = batch["prediction"].as_str().unwrap().to_string();
    let records = test_records(&p);
    let answers = stream_answers(&p, &run, &records[..2]);
    let id = answers[0]["prediction_id"].as_str().unwrap().to_string();
    let value = answers[0]["prediction"].as_f64().unwrap();
    let ledger: Value = serde_json::from_slice(&p.mlpipe(&["ledger", "--json"]).stdout).unwrap();
    let entry = ledger
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["prediction"] == id.as_str())
        .unwrap();
    let (seq, time) = (
        entry["seq"].as_i64().unwrap(),
        entry["time"].as_str().unwrap().to_string(),
    );
    assert_eq!(seq, 2);

    // Untouched: the chain holds and every entry replays to what it records.
    let verify = p.mlpipe(&["verify"]);
    assert!(verify.status.success(), "{}", stdout(&verify));
    let head = ledger_head(&p);
    assert_eq!((head["entries"].as_u64(), head["kept"].as_u64()), (Some(3), Some(3)));
    let digest = head["digest"].as_str().unwrap().to_string();
    assert!(
        stdout(&verify).contains(&format!(
            "checked the ledger's chain: 3 entries up to head {digest} (entry 3); 3 compared with their replay"
        )),
        "{}",
        stdout(&verify)
    );
    let text = stdout(&p.mlpipe(&["ledger", "head"]));
    assert!(
        text.starts_with(&format!("head     {digest}\nentries  3\nkept     3\n")),
        "{text}"
    );

    // One value changed behind mlpipe's back.
    let conn = rusqlite::Connection::open(p.store().join("ledger.sqlite")).unwrap();
    assert_eq!(
        conn.execute("UPDATE ledger SET value = 999 WHERE prediction = ?1", [&id])
            .unwrap(),
        1
    );
    let verify = p.mlpipe(&["verify"]);
    assert_eq!(verify.status.code(), Some(1), "{}", stdout(&verify));
    let report = stdout(&verify);
    assert!(
        report.contains(&format!(
            "  {id}: ledger entry 2 (row 2) does not match its chain digest: it, or the digest of the entry before it, \
             was changed after it was recorded; the ledger was edited outside mlpipe: compare `mlpipe ledger head --at \
             N` with a head anchored earlier, and restore the ledger from a backup\n"
        )),
        "{report}"
    );
    assert!(
        report.contains(&format!(
            "  {id}: ledger entry 2 (row 2) (stream prediction made {time}) records value 999.0, but its replay gives \
             {value:?}; `mlpipe reproduce {id}` shows it\n"
        )),
        "{report}"
    );
    let refused = p.mlpipe(&["reproduce", &id]);
    assert_eq!(refused.status.code(), Some(3), "{}", stderr(&refused));
    assert_eq!(
        stdout(&refused),
        format!(
            "NOT reproduced: stream prediction {id} replays to its stored artifacts (1 checked), but 1 of its 1 \
             ledger entry records something else\n  ledger entry at row 2 (stream prediction {id}, made {time}): value \
             recorded 999.0, replayed {value:?}\n  the ledger was changed after the prediction was recorded: \
             `mlpipe verify` checks its chain\n"
        )
    );
    let json: Value = serde_json::from_slice(&p.mlpipe(&["reproduce", &id, "--json"]).stdout).unwrap();
    assert_eq!(json["ledger_mismatches"][0]["recorded"], "999.0");
    assert_eq!(json["ledger_mismatches"][0]["field"], "value");
    assert_eq!(json["reproduced"], false);
    // The other stream prediction is untouched and still replays.
    replay(&p, answers[1]["prediction_id"].as_str().unwrap());

    // Every row, as the issue did it: the batch entry (which holds no single value) is refused too,
    // whole and by row.
    conn.execute("UPDATE ledger SET value = 999", []).unwrap();
    for target in [batch_id.clone(), format!("{batch_id}/7")] {
        let refused = p.mlpipe(&["reproduce", &target]);
        assert_eq!(refused.status.code(), Some(3), "{}", stderr(&refused));
        assert!(
            stdout(&refused).contains(&format!(
                "  ledger entry at row 1 (batch prediction {batch_id}, made {}): value recorded 999.0, replayed none\n",
                ledger.as_array().unwrap().last().unwrap()["time"].as_str().unwrap()
            )),
            "{}",
            stdout(&refused)
        );
    }
    let verify = p.mlpipe(&["verify", "--json"]);
    let report: Value = serde_json::from_slice(&verify.stdout).unwrap();
    let named: std::collections::BTreeSet<&str> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(named.len(), 3, "every entry is reported: {report}");
    // The head is recomputed: an edited chain has none, and the first edited entry is named.
    let (code, err) = p.fail(&["ledger", "head"]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with(
            "error: ledger sqlite:[ROOT]/artifacts/ledger.sqlite: entry 1 (row 1) does not match its chain digest"
        ),
        "{err}"
    );
}

#[test]
fn ledger_prune_takes_rfc3339_offsets_and_leaves_a_verifiable_chain() {
    let p = Project::new();
    let run = run_id(&p);
    let records = test_records(&p);
    stream_answers(&p, &run, &records[..3]);
    let head = ledger_head(&p);
    let digest = head["digest"].as_str().unwrap().to_string();

    // An offset is normalised to UTC (the ledger's times are UTC and compare as text).
    let prune = p.mlpipe(&["ledger", "prune", "--before", "2999-01-01T01:30:00+01:30"]);
    assert!(prune.status.success(), "{}", stderr(&prune));
    assert_eq!(
        stdout(&prune),
        format!(
            "removed 3 entries made before 2999-01-01T00:00:00.000000Z and 3 inputs no entry uses\nthe chain now \
             starts after position 3, from the removed entries' head {digest}\n"
        )
    );
    let verify = p.mlpipe(&["verify"]);
    assert!(verify.status.success(), "{}", stdout(&verify));
    let after = ledger_head(&p);
    assert_eq!(after["digest"], digest.as_str());
    assert_eq!((after["entries"].as_u64(), after["kept"].as_u64()), (Some(3), Some(0)));
    assert_eq!(after["anchor"]["position"], 3);
    assert_eq!(after["anchor"]["pruned_before"], "2999-01-01T00:00:00.000000Z");
    // The chain goes on from the anchor.
    stream_answers(&p, &run, &records[3..4]);
    let verify = p.mlpipe(&["verify"]);
    assert!(verify.status.success(), "{}", stdout(&verify));
    assert_eq!(ledger_head(&p)["entries"], 4);
    let at = p.mlpipe(&["ledger", "head", "--at", "3", "--json"]);
    assert_eq!(
        serde_json::from_slice::<Value>(&at.stdout).unwrap()["digest"],
        digest.as_str()
    );

    for (given, why) in [
        (
            "2026-12-01T10:00:00",
            "it has no offset: add Z for UTC, or the offset from UTC such as +01:00",
        ),
        (
            "2026-12-01T10:00:00+0100",
            "\"+0100\" is not Z or an offset such as +01:00",
        ),
        (
            "next tuesday",
            "expected YYYY-MM-DDTHH:MM:SS with an optional fraction, then Z or an offset such as +01:00",
        ),
    ] {
        let (code, err) = p.fail(&["ledger", "prune", "--before", given]);
        assert_eq!(code, 1);
        assert_eq!(
            err,
            format!(
                "error: --before {given} is not an RFC 3339 time: {why}\nhint: write a date, a time and an offset, \
                 as 2026-12-01T10:00:00Z or 2026-12-01T10:00:00+01:00\n"
            )
        );
    }
}

/// Writes records as a Parquet file the way pandas would for a few rows: text columns as strings,
/// other columns as float64 (an all-missing column too, all nulls), `MSSubClass` as float64 codes.
fn write_pandas_like_parquet(p: &Project, records: &[Value], file: &str) {
    use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray};
    use std::sync::Arc;
    let names: Vec<String> = records[0].as_object().unwrap().keys().cloned().collect();
    let mut arrays: Vec<(String, ArrayRef)> = Vec::new();
    for name in &names {
        let col: Vec<&Value> = records.iter().map(|r| &r[name]).collect();
        let array: ArrayRef = if col.iter().any(|v| v.is_string()) && name != "MSSubClass" {
            Arc::new(StringArray::from(col.iter().map(|v| v.as_str()).collect::<Vec<_>>()))
        } else {
            let floats = col
                .iter()
                .map(|v| v.as_f64().or_else(|| v.as_str().and_then(|s| s.parse().ok())))
                .collect::<Vec<_>>();
            Arc::new(Float64Array::from(floats))
        };
        arrays.push((name.clone(), array));
    }
    let batch = RecordBatch::try_from_iter(arrays).unwrap();
    let mut bytes = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut bytes, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    std::fs::write(p.path(file), bytes).unwrap();
}

#[test]
fn parquet_with_an_all_null_or_float_coded_categorical_column_predicts_like_csv() {
    // Regression (#23): batch reading must take its types from the fitted schema. In the first two test
    // rows "Alley" is all missing (a float64 column of nulls, as pandas writes it) and MSSubClass holds
    // float codes (20.0); both are categorical in the schema.
    let p = Project::new();
    let run = run_id(&p);
    let records = test_records(&p);
    write_pandas_like_parquet(&p, &records[..2], "head.parquet");
    let text = std::fs::read_to_string(p.path("test.csv")).unwrap();
    let head: String = text.lines().take(3).flat_map(|l| [l, "\n"]).collect();
    std::fs::write(p.path("head.csv"), head).unwrap();
    let a = p.mlpipe(&["predict", &run, "--input", "head.csv"]);
    assert!(a.status.success(), "{}", stderr(&a));
    let b = p.mlpipe(&["predict", &run, "--input", "head.parquet"]);
    assert!(b.status.success(), "{}", stderr(&b));
    let (a, b) = (csv_predictions(&a.stdout), csv_predictions(&b.stdout));
    assert_eq!(a.len(), 2);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!((&x.0, x.1.to_bits()), (&y.0, y.1.to_bits()));
    }
    // A float that is not a whole number is no category code: an error naming column and row.
    let mut odd = records[..2].to_vec();
    odd[1]["MSSubClass"] = json!(20.5);
    write_pandas_like_parquet(&p, &odd, "odd.parquet");
    let (code, err) = p.fail(&["predict", &run, "--input", "odd.parquet"]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "error: column \"MSSubClass\" of odd.parquet is categorical, but row 2 holds the number 20.5\nhint: write categories as strings (or whole numbers), exactly as in the training data\n"
    );
}

#[test]
fn a_prediction_driven_to_infinity_is_refused_on_every_channel_and_never_recorded() {
    // Regression (#23): `LotArea = 1e308` made the prediction +inf, answered as null over REST, `inf` in
    // CSV and `Inf` in SQLite, and recorded in the ledger.
    let p = Project::new();
    let run = run_id(&p);
    let records = test_records(&p);
    let text = std::fs::read_to_string(p.path("test.csv")).unwrap();
    let head: String = text.lines().take(3).flat_map(|l| [l, "\n"]).collect();
    let huge_line = text.lines().nth(2).unwrap().replacen(",14267,", ",1e308,", 1);
    std::fs::write(
        p.path("huge.csv"),
        head.replace(text.lines().nth(2).unwrap(), &huge_line),
    )
    .unwrap();
    let message =
        "line 3 of huge.csv: the model's prediction is inf, not a finite number; it is neither answered nor recorded";
    let hint = "hint: a value in this row lies far outside the training data (e.g. a number near 1e308); check the row's numbers\n";
    // Batch, to a file and to a SQLite table: the batch is refused, naming the row's line; nothing written.
    for target in [
        &["-o", "out.csv"][..],
        &["-o", "sqlite:scores.db", "--table", "scores"][..],
    ] {
        let mut args = vec!["predict", &run, "--input", "huge.csv"];
        args.extend_from_slice(target);
        let (code, err) = p.fail(&args);
        assert_eq!(code, 1);
        assert_eq!(err, format!("error: {message}\n{hint}"));
    }
    assert!(!p.path("out.csv").exists());
    if p.path("scores.db").exists() {
        let db = rusqlite::Connection::open(p.path("scores.db")).unwrap();
        let rows: i64 = db
            .query_row("select count(*) from sqlite_master where name = 'scores'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(rows, 0, "no table of predictions was written");
    }
    // Stream: a per-line error, and the stream goes on.
    let mut huge = records[1].clone();
    huge["LotArea"] = json!(1e308);
    let input = format!("{}\n{}\n{}\n", records[0], huge, records[1]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_mlpipe"))
        .current_dir(p.dir.path())
        .env("MLPIPE_STORE", p.store())
        .args(["predict", &run, "--stream"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let answers: Vec<Value> = stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(answers.len(), 3);
    assert!(answers[0]["prediction"].is_f64() && answers[2]["prediction"].is_f64());
    assert_eq!(
        answers[1],
        json!({"line": 2, "error": {
            "kind": "invalid_record",
            "message": "line 2 of standard input: the model's prediction is inf, not a finite number; it is neither answered nor recorded",
            "hint": "a value in this row lies far outside the training data (e.g. a number near 1e308); check the row's numbers",
        }})
    );
    // REST: 422 naming the record; an array with one such record is refused whole, as for any bad record.
    let server = Server::start(&p, &[&run]);
    let agent = new_agent();
    let url = format!("{}/v1/predict", server.base);
    let (status, body) = post(&agent, &url, "application/json", &huge.to_string());
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        body,
        json!({"error": {
            "kind": "invalid_record",
            "message": "line 1 of the request: the model's prediction is inf, not a finite number; it is neither answered nor recorded",
            "record": 0,
            "hint": "a value in this row lies far outside the training data (e.g. a number near 1e308); check the row's numbers",
        }})
    );
    let array = Value::Array(vec![records[0].clone(), huge.clone()]).to_string();
    let (status, body) = post(&agent, &url, "application/json", &array);
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["record"], 1);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("line 2 of the request: ")
    );
    drop(server);
    // The ledger holds the two good stream predictions only, each with a finite value.
    let ledger: Value = serde_json::from_slice(&p.mlpipe(&["ledger", "--json"]).stdout).unwrap();
    let entries = ledger.as_array().unwrap();
    assert_eq!(entries.len(), 2, "{ledger}");
    assert!(
        entries.iter().all(|e| e["channel"] == "stream" && e["value"].is_f64()),
        "{ledger}"
    );
}

#[test]
fn an_over_long_stream_line_gets_an_error_record_and_the_stream_goes_on() {
    // Regression (#23): one 300 MB line took 304 MB of memory. A line over --max-line (default 1 MiB,
    // as REST's --max-body) is answered with an error record and read past without being held.
    let p = Project::new();
    let run = run_id(&p);
    let records = test_records(&p);
    let long = format!("{{\"pad\": \"{}\"}}", "x".repeat(3 << 20));
    let input = format!("{}\n{long}\n{}\n", records[0], records[1]);
    let stream = |extra: &[&str]| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mlpipe"))
            .current_dir(p.dir.path())
            .env("MLPIPE_STORE", p.store())
            .args(["predict", &run, "--stream"])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let text = input.clone();
        let writer = std::thread::spawn(move || stdin.write_all(text.as_bytes()).unwrap());
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        assert!(out.status.success());
        stdout(&out)
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .collect::<Vec<_>>()
    };
    let answers = stream(&[]);
    assert_eq!(answers.len(), 3);
    assert_eq!(answers[0]["Id"], 1461);
    assert_eq!(answers[2]["Id"], 1462);
    assert_eq!(
        answers[1],
        json!({"line": 2, "error": {
            "kind": "line_too_long",
            "message": format!("line 2 is {} bytes long, over the limit of 1048576 bytes; it was skipped", long.len()),
            "hint": "send one record per line, smaller; or raise the limit with --max-line BYTES",
        }})
    );
    // With a higher limit the line is read, and refused for what it holds.
    let answers = stream(&["--max-line", "8000000"]);
    assert_eq!(answers[1]["error"]["kind"], "invalid_record");
    assert!(
        answers[1]["error"]["message"].as_str().unwrap().contains("\"pad\""),
        "{}",
        answers[1]
    );
    // --max-line is for --stream only.
    let (code, err) = p.fail(&["predict", &run, "--input", "test.csv", "--max-line", "10"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn serve_public_without_a_token_is_refused_unless_allow_anonymous_is_given() {
    let p = Project::new();
    let run = run_id(&p);
    // Refused, whatever the address, with the ways out named.
    for addr in ["0.0.0.0:0", "127.0.0.1:0"] {
        let (code, err) = p.fail(&["serve", &run, "--addr", addr, "--public"]);
        assert_eq!(code, 1);
        assert_eq!(
            err,
            "error: --public without a token would let anyone who can reach this address predict, read the model \
             and its metrics, and fill the ledger\nhint: give a bearer token with MLPIPE_TOKEN or --token-file FILE \
             (or --token, which other users of this machine can see in the process list), or pass \
             --allow-anonymous to serve without one\n"
        );
    }
    // An empty MLPIPE_TOKEN is no token: refused, and never shown.
    let out = p.mlpipe_env(&["serve", &run, "--public"], &[("MLPIPE_TOKEN", "")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("the token from --token or MLPIPE_TOKEN is empty"),
        "{}",
        stderr(&out)
    );
    let out = p.mlpipe_env(&["serve", &run, "--public"], &[("MLPIPE_TOKEN", "two words")]);
    assert!(stderr(&out).contains("holds a space") && !stderr(&out).contains("two words"));
    // --help never shows the token from the environment.
    let out = p.mlpipe_env(&["serve", "--help"], &[("MLPIPE_TOKEN", "t0ken-in-env")]);
    assert!(stdout(&out).contains("MLPIPE_TOKEN") && !stdout(&out).contains("t0ken-in-env"));

    // With MLPIPE_TOKEN: requests need it.
    let mut child = Command::new(env!("CARGO_BIN_EXE_mlpipe"))
        .current_dir(p.dir.path())
        .env("MLPIPE_STORE", p.store())
        .env("MLPIPE_TOKEN", "t0ken-in-env")
        .args(["serve", &run, "--addr", "127.0.0.1:0", "--public", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let ready: Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("not ready: {line:?}"));
    assert_eq!(ready["token"], true);
    let model = format!("http://{}/v1/model", ready["addr"].as_str().unwrap());
    let agent = new_agent();
    assert_eq!(get(&agent, &model).0, 401);
    let status = |auth: &str| {
        agent
            .get(&model)
            .header("Authorization", auth)
            .call()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(status("Bearer t0ken-in-env"), 200);
    assert_eq!(status("bearer t0ken-in-env"), 200);
    for wrong in [
        "Bearer t0ken-in-en",
        "Bearer t0ken-in-env2",
        "Bearer ",
        "Basic t0ken-in-env",
    ] {
        assert_eq!(status(wrong), 401, "{wrong}");
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());

    // --token on the command line, and --token with --token-file is one token too many.
    let server = Server::start(&p, &[&run, "--public", "--token", "t0ken-on-cli"]);
    let model = format!("{}/v1/model", server.base);
    assert_eq!(get(&agent, &model).0, 401);
    let (stopped, rest) = server.stop();
    assert!(stopped, "{rest}");
    std::fs::write(p.path("token"), "t0ken-in-file\n").unwrap();
    let (_, err) = p.fail(&["serve", &run, "--token", "a", "--token-file", "token"]);
    assert!(err.contains("a token is given twice"), "{err}");

    // --allow-anonymous serves without one, and says so.
    let server = Server::start(&p, &[&run, "--public", "--allow-anonymous"]);
    assert_eq!(get(&agent, &format!("{}/v1/model", server.base)).0, 200);
    let (stopped, rest) = server.stop();
    assert!(stopped, "{rest}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mlpipe"))
        .current_dir(p.dir.path())
        .env("MLPIPE_STORE", p.store())
        .args(["serve", &run, "--addr", "127.0.0.1:0", "--public", "--allow-anonymous"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut text = String::new();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    while !text.contains("no token") {
        assert!(reader.read_line(&mut text).unwrap() > 0, "{text}");
    }
    assert!(text.contains("no token: every request is answered"), "{text}");
    // Answering a request shows the server is past its start (its SIGTERM handler is set).
    let base = text.split("on http://").nth(1).unwrap().lines().next().unwrap();
    assert_eq!(get(&agent, &format!("http://{base}/healthz")).0, 200);
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
}

#[test]
fn a_reproduced_prediction_says_so_in_json() {
    let p = Project::new();
    let run = run_id(&p);
    let records = test_records(&p);
    let answers = stream_answers(&p, &run, &records[..1]);
    let id = answers[0]["prediction_id"].as_str().unwrap();
    let out = p.mlpipe(&["reproduce", id, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).unwrap()["reproduced"],
        true
    );
}
