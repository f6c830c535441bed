#![allow(clippy::unwrap_used, clippy::expect_used, clippy::float_cmp)]
// Wall-clock time here only picks kill moments and sizes; it never reaches an artifact.
#![allow(clippy::disallowed_methods, clippy::cast_possible_truncation, clippy::cast_sign_loss)]

//! Reliability under faults and hostile input, with the real binary: SIGKILL at seeded random moments
//! (run, predict into SQLite, serve under load), eight processes and gc on one store, every object
//! flipped, truncated and deleted, a flood of hostile requests, paths that try to leave the project, a
//! full disk, a data file larger than the memory allowed.
//!
//! `cargo test` runs the quick versions; `MLPIPE_CRASH_KILLS=100 cargo test --release --test
//! reliability -- --nocapture` the full ones (docs/reliability.md). Each test prints its figures.

mod common;
#[path = "../fuzz/fuzz_targets/checks.rs"]
mod fuzz_checks;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::serving::{Server, new_agent, post, replay, test_records};
use common::{Project, stage_outputs, stderr, stdout};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

/// Kills per crash loop: `MLPIPE_CRASH_KILLS` (default 10).
fn kills() -> u64 {
    std::env::var("MLPIPE_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10)
}

/// A stream of kill moments: `MLPIPE_CRASH_SEED` (default 1) and the loop's name.
fn rng(name: &str) -> ChaCha8Rng {
    let seed: u64 = std::env::var("MLPIPE_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let key = blake3::hash(format!("{seed}/{name}").as_bytes());
    ChaCha8Rng::from_seed(*key.as_bytes())
}

fn spawn(p: &Project, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_mlpipe"))
        .current_dir(p.dir.path())
        .env("MLPIPE_STORE", p.store())
        .env("CI", "true")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Sleeps `delay`, then SIGKILLs the child unless it already finished; true when it was killed mid-work.
fn kill_after(mut child: Child, delay: Duration) -> bool {
    std::thread::sleep(delay);
    let running = child.try_wait().unwrap().is_none();
    let _ = child.kill(); // SIGKILL: no chance to clean up
    let _ = child.wait();
    running
}

fn verify_clean(p: &Project, after: &str) {
    let out = p.mlpipe(&["verify", "--json"]);
    assert!(out.status.success(), "verify after {after}: {}", stdout(&out));
}

fn json_out(out: &std::process::Output, what: &str) -> Value {
    assert!(out.status.success(), "{what}: {}", stderr(out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let started = Instant::now();
    let out = f();
    (out, started.elapsed())
}

#[test]
fn runs_killed_at_random_moments_resume_to_the_uninterrupted_id() {
    let p = Project::new();
    let clean = p.path("clean");
    let clean = clean.to_str().unwrap();
    // How long a cold run takes once the data is in the store: kill moments are drawn across it. The
    // faster of two, so that a busy moment while measuring does not push kills past the runs' end.
    p.run(&["--store", clean, "--seed", "100000"]);
    let (_, first) = timed(|| p.run(&["--store", clean, "--seed", "100001"]));
    let (_, second) = timed(|| p.run(&["--store", clean, "--seed", "100002"]));
    let cold = first.min(second);
    let mut rng = rng("run");
    let (mut mid_run, n) = (0, kills());
    for i in 0..n {
        let seed = i.to_string();
        let delay = Duration::from_micros(rng.gen_range(0..cold.as_micros() as u64));
        mid_run += u64::from(kill_after(spawn(&p, &["run", "pipeline.toml", "--seed", &seed]), delay));
        verify_clean(&p, &format!("kill {i} at {delay:?}"));
        let resumed = p.run(&["--seed", &seed]);
        let uninterrupted = p.run(&["--store", clean, "--seed", &seed]);
        assert_eq!(resumed["run"], uninterrupted["run"], "kill {i} at {delay:?}");
        assert_eq!(stage_outputs(&resumed), stage_outputs(&uninterrupted), "kill {i}");
    }
    eprintln!(
        "run: {n} SIGKILLs ({mid_run} mid-run) across a {cold:?} cold run; verify clean after each, every re-run gave the uninterrupted id"
    );
    assert!(
        mid_run * 2 >= n,
        "only {mid_run} of {n} kills landed while the run was working"
    );
    assert!(p.mlpipe(&["gc"]).status.success());
    verify_clean(&p, "gc");
}

/// Rows of test.csv without row `skip`: a batch of its own for every kill.
fn batch_without(p: &Project, skip: usize) -> (PathBuf, usize) {
    let text = std::fs::read_to_string(p.path("test.csv")).unwrap();
    let mut lines = text.lines();
    let mut out = String::from(lines.next().unwrap());
    out.push('\n');
    let mut rows = 0;
    for (i, line) in lines.enumerate() {
        if i != skip {
            out.push_str(line);
            out.push('\n');
            rows += 1;
        }
    }
    let path = p.path(&format!("batch-{skip}.csv"));
    std::fs::write(&path, out).unwrap();
    (path, rows)
}

/// Rows per batch in the predictions table.
fn rows_per_batch(db: &Path) -> BTreeMap<String, usize> {
    if !db.exists() {
        return BTreeMap::new();
    }
    let conn = rusqlite::Connection::open(db).unwrap();
    let exists: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'predictions'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    if exists == 0 {
        return BTreeMap::new();
    }
    let mut stmt = conn
        .prepare("SELECT substr(prediction_id, 1, instr(prediction_id, '/') - 1), count(*) FROM predictions GROUP BY 1")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as usize)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn table_predictions(db: &Path, batch: &str) -> Vec<f64> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT prediction FROM predictions WHERE prediction_id LIKE ?1 || '/%' ORDER BY CAST(substr(prediction_id, 66) AS INTEGER)")
        .unwrap();
    stmt.query_map([batch], |r| r.get::<_, f64>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn predictions_into_sqlite_killed_at_random_moments_are_whole_or_absent() {
    let p = Project::new();
    let run = p.run(&[])["run"].as_str().unwrap().to_string();
    let clean = p.path("clean");
    let clean = clean.to_str().unwrap();
    p.run(&["--store", clean]);
    let db = p.path("scores.db");
    let target = format!("sqlite:{}", db.display());
    let (probe, _) = batch_without(&p, 100_000);
    let ((), cold) = timed(|| {
        let out = p.mlpipe(&[
            "predict",
            &run,
            "--input",
            probe.to_str().unwrap(),
            "-o",
            &format!("sqlite:{}", p.path("probe.db").display()),
            "--table",
            "predictions",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
    });
    let mut rng = rng("predict");
    let (mut mid_run, n) = (0, kills());
    for i in 0..n {
        let (input, rows) = batch_without(&p, i as usize);
        let input = input.to_str().unwrap();
        let args = [
            "predict",
            &run,
            "--input",
            input,
            "-o",
            &target,
            "--table",
            "predictions",
            "--json",
        ];
        let delay = Duration::from_micros(rng.gen_range(0..cold.as_micros() as u64));
        mid_run += u64::from(kill_after(spawn(&p, &args), delay));
        verify_clean(&p, &format!("kill {i} at {delay:?}"));
        for (batch, count) in rows_per_batch(&db) {
            assert_eq!(
                count, rows,
                "kill {i}: batch {batch} is in the table with {count} of {rows} rows"
            );
        }
        let resumed = json_out(&p.mlpipe(&args), "predict after the kill");
        let uninterrupted = p.mlpipe(&["predict", &run, "--input", input, "--store", clean]);
        assert!(uninterrupted.status.success());
        let batch = resumed["prediction"].as_str().unwrap();
        assert_eq!(rows_per_batch(&db)[batch], rows);
        let expected: Vec<f64> = csv::Reader::from_reader(uninterrupted.stdout.as_slice())
            .records()
            .map(|r| r.unwrap()[1].parse().unwrap())
            .collect();
        let got = table_predictions(&db, batch);
        assert_eq!(got.len(), expected.len());
        for (g, e) in got.iter().zip(&expected) {
            assert_eq!(
                g.to_bits(),
                e.to_bits(),
                "kill {i}: table and uninterrupted predictions differ"
            );
        }
    }
    eprintln!(
        "predict → SQLite: {n} SIGKILLs ({mid_run} mid-batch) across a {cold:?} batch; every batch whole or absent, every re-run bit-identical"
    );
    assert!(
        mid_run * 2 >= n,
        "only {mid_run} of {n} kills landed while predict was working"
    );
}

/// Prediction ids in the ledger for the serve channel.
fn ledger_predictions(p: &Project) -> BTreeSet<String> {
    let out = p.mlpipe(&["ledger", "--channel", "serve", "--limit", "100000000", "--json"]);
    json_out(&out, "ledger")
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["prediction"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn servers_killed_under_load_have_recorded_every_prediction_they_answered() {
    // The ledger commit comes before the answer: SIGKILL under load loses no answered prediction.
    let p = Project::new();
    let run = p.run(&[])["run"].as_str().unwrap().to_string();
    let records = test_records(&p);
    let mut rng = rng("serve");
    let n = kills();
    let mut answered_total = Vec::new();
    for k in 0..n {
        let server = Server::start(&p, &[&run]);
        let url = format!("{}/v1/predict", server.base);
        let pid = server.child.id();
        let delay = Duration::from_millis(rng.gen_range(50..800));
        let answered = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for t in 0..4 {
                let (url, records, answered) = (&url, &records, &answered);
                s.spawn(move || {
                    let agent = new_agent();
                    for i in 0.. {
                        // Single records and small arrays.
                        let body = if i % 3 == 2 {
                            json!([
                                records[(t * 7 + i) % records.len()],
                                records[(t * 11 + i) % records.len()]
                            ])
                        } else {
                            records[(t * 1000 + i + k as usize) % records.len()].clone()
                        };
                        let Ok(mut resp) = agent
                            .post(url)
                            .header("Content-Type", "application/json")
                            .send(&body.to_string())
                        else {
                            break; // the server is gone
                        };
                        if resp.status().as_u16() != 200 {
                            break;
                        }
                        let Ok(text) = resp.body_mut().read_to_string() else {
                            break;
                        };
                        let v: Value = serde_json::from_str(&text).unwrap();
                        let mut got = answered.lock().unwrap();
                        match v.get("predictions") {
                            Some(list) => got.extend(
                                list.as_array()
                                    .unwrap()
                                    .iter()
                                    .map(|p| p["prediction_id"].as_str().unwrap().to_string()),
                            ),
                            None => got.push(v["prediction_id"].as_str().unwrap().to_string()),
                        }
                    }
                });
            }
            s.spawn(move || {
                std::thread::sleep(delay);
                Command::new("kill").args(["-KILL", &pid.to_string()]).status().unwrap();
            });
        });
        drop(server);
        let answered = answered.into_inner().unwrap();
        let recorded = ledger_predictions(&p);
        for id in &answered {
            assert!(
                recorded.contains(id),
                "kill {k} at {delay:?}: answered {id} is not in the ledger"
            );
        }
        verify_clean(&p, &format!("serve kill {k}"));
        answered_total.extend(answered);
    }
    assert!(
        answered_total.len() as u64 > 10 * n,
        "only {} answers over {n} kills",
        answered_total.len()
    );
    // The ledger still replays: the first and the last answer.
    replay(&p, &answered_total[0]);
    replay(&p, answered_total.last().unwrap());
    eprintln!(
        "serve: {n} SIGKILLs under load from 4 clients; {} answered predictions, every one in the ledger; verify clean after each",
        answered_total.len()
    );
}

#[test]
fn eight_processes_and_gc_share_one_store() {
    let p = Project::new();
    // A second pipeline: random split, another name.
    let text = std::fs::read_to_string(p.path("pipeline.toml")).unwrap();
    let other = text
        .replacen("name = \"house-prices\"", "name = \"house-prices-random\"", 1)
        .replacen(
            "method = \"time\"\ncolumn = \"YrSold\"\ntest_from = 2010",
            "method = \"random\"\ntest_fraction = 0.25",
            1,
        );
    assert_ne!(other, text);
    std::fs::write(p.path("other.toml"), other).unwrap();
    let jobs: [(&str, &str); 8] = [
        ("pipeline.toml", "1"),
        ("pipeline.toml", "1"),
        ("pipeline.toml", "2"),
        ("pipeline.toml", "2"),
        ("other.toml", "1"),
        ("other.toml", "1"),
        ("other.toml", "3"),
        ("other.toml", "3"),
    ];
    let rounds = (kills() / 5).max(2);
    let mut gcs = 0;
    for round in 0..rounds {
        let offset = (round * 10).to_string();
        let children: Vec<Child> = jobs
            .iter()
            .map(|(file, seed)| {
                let seed = format!("{seed}{offset}");
                spawn(&p, &["run", file, "--seed", &seed, "--json"])
            })
            .collect();
        // gc beside the runs, over and over, until every run is done.
        let done = std::sync::atomic::AtomicBool::new(false);
        let results: Vec<Value> = std::thread::scope(|s| {
            let gc = s.spawn(|| {
                let mut n = 0;
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    let out = p.mlpipe(&["gc", "--json"]);
                    assert!(out.status.success(), "gc beside runs: {}", stderr(&out));
                    n += 1;
                }
                n
            });
            // Every run is waited for and gc stopped before any is judged: a failed run fails the test
            // (naming its error) instead of leaving gc looping beside a panicked scope.
            let outputs: Vec<std::process::Output> =
                children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            gcs += gc.join().unwrap();
            outputs.iter().map(|o| json_out(o, "concurrent run")).collect()
        });
        for pair in [(0, 1), (2, 3), (4, 5), (6, 7)] {
            assert_eq!(results[pair.0]["run"], results[pair.1]["run"], "round {round}");
            assert_eq!(stage_outputs(&results[pair.0]), stage_outputs(&results[pair.1]));
        }
        let distinct: BTreeSet<&str> = results.iter().map(|r| r["run"].as_str().unwrap()).collect();
        assert_eq!(distinct.len(), 4, "round {round}: four different pieces of work");
        verify_clean(&p, &format!("round {round}"));
        // gc removed nothing a run needs: each run again executes nothing and gives the same id.
        assert!(p.mlpipe(&["gc"]).status.success());
        for (job, before) in jobs.iter().zip(&results) {
            let seed = format!("{}{offset}", job.1);
            let again = json_out(&p.mlpipe(&["run", job.0, "--seed", &seed, "--json"]), "re-run");
            assert_eq!(again["run"], before["run"]);
            assert!(
                again["stages"].as_array().unwrap().iter().all(|s| s["cached"] == true),
                "gc removed a stage output"
            );
        }
    }
    eprintln!(
        "concurrency: {rounds} rounds of 8 processes (2 pipelines × 2 seeds × 2 copies) with {gcs} gc runs beside them; verify clean"
    );
}

/// Every object file in the store, with its id.
fn objects(store: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir(store.join("v1/objects")) else {
        return out;
    };
    for prefix in dir {
        let prefix = prefix.unwrap();
        for e in std::fs::read_dir(prefix.path()).unwrap() {
            let e = e.unwrap();
            out.push((
                format!(
                    "{}{}",
                    prefix.file_name().to_string_lossy(),
                    e.file_name().to_string_lossy()
                ),
                e.path(),
            ));
        }
    }
    out.sort();
    out
}

#[derive(Clone, Copy, Debug)]
enum Damage {
    FlipByte,
    Truncate,
    Delete,
}

#[test]
fn every_object_flipped_truncated_or_deleted_is_detected_and_repaired() {
    let p = Project::new();
    let run = p.run(&[])["run"].as_str().unwrap().to_string();
    let prediction = json_out(
        &p.mlpipe(&["predict", &run, "--input", "test.csv", "-o", "out.csv", "--json"]),
        "predict",
    );
    let prediction = prediction["prediction"].as_str().unwrap().to_string();
    // Which objects belong to the prediction (input, output, record); the rest belong to the run.
    let shown = json_out(&p.mlpipe(&["show", &prediction, "--json"]), "show prediction");
    let prediction_objects: BTreeSet<String> = [
        shown["content"]["input"].as_str().unwrap().to_string(),
        shown["content"]["output"].as_str().unwrap().to_string(),
    ]
    .into();
    let store = p.store();
    let ref_target = |kind: &str, key: &str| {
        std::fs::read_to_string(store.join("v1/refs").join(kind).join(key))
            .unwrap()
            .trim()
            .to_string()
    };
    let (run_record, prediction_record) = (ref_target("runs", &run), ref_target("predictions", &prediction));
    let mut rng = rng("tamper");
    let (mut cases, mut bytes_damaged, mut restored, mut refused) = (0, 0u64, 0, 0);
    for (listed, _) in objects(&store) {
        for damage in [Damage::FlipByte, Damage::Truncate, Damage::Delete] {
            // A damaged record is written again with a new time (a new id): follow the ref to it.
            let is_record = listed == run_record || listed == prediction_record;
            let (id, owner) = if listed == run_record {
                (ref_target("runs", &run), &run)
            } else if listed == prediction_record {
                (ref_target("predictions", &prediction), &prediction)
            } else if prediction_objects.contains(&listed) {
                (listed.clone(), &prediction)
            } else {
                (listed.clone(), &run)
            };
            let path = store.join("v1/objects").join(&id[..2]).join(&id[2..]);
            let original = std::fs::read(&path).unwrap();
            match damage {
                Damage::FlipByte => {
                    let mut bytes = original.clone();
                    let at = rng.gen_range(0..bytes.len());
                    bytes[at] ^= 1 << rng.gen_range(0..8);
                    std::fs::write(&path, bytes).unwrap();
                    bytes_damaged += 1;
                }
                Damage::Truncate => {
                    std::fs::write(&path, &original[..original.len() / 2]).unwrap();
                    bytes_damaged += (original.len() - original.len() / 2) as u64;
                }
                Damage::Delete => {
                    std::fs::remove_file(&path).unwrap();
                    bytes_damaged += original.len() as u64;
                }
            }
            let case = format!("{damage:?} of object {id}");
            // verify names the object and says what to do.
            let verify = p.mlpipe(&["verify"]);
            assert_eq!(verify.status.code(), Some(1), "{case}: {}", stdout(&verify));
            let report = stdout(&verify);
            assert!(report.contains(&id), "{case}: verify does not name it:\n{report}");
            // reproduce reads it: an output it can prove again is restored and named; anything else
            // (record, pipeline, snapshot, input) stops it, named, with what to do.
            let reproduce = p.mlpipe(&["reproduce", owner]);
            if reproduce.status.success() {
                let report = stdout(&reproduce);
                assert!(
                    report.contains(&format!("restored {id} ")),
                    "{case}: reproduce passed without naming it:\n{report}"
                );
                restored += 1;
            } else {
                let err = stderr(&reproduce);
                assert!(err.contains(&id), "{case}: reproduce does not name it:\n{err}");
                assert!(err.contains("hint:"), "{case}: reproduce says nothing to do:\n{err}");
                refused += 1;
            }
            // Recompute what can be recomputed: the run, or the prediction, writes the object again.
            if owner == &prediction {
                let again = json_out(
                    &p.mlpipe(&["predict", &run, "--input", "test.csv", "-o", "out.csv", "--json"]),
                    &case,
                );
                assert_eq!(again["prediction"].as_str().unwrap(), prediction, "{case}");
            } else {
                assert_eq!(p.run(&[])["run"].as_str().unwrap(), run, "{case}");
            }
            if is_record {
                // A record carries the time it was first made: a new one is written and the damaged one
                // removed (verify below finds neither a dangling ref nor the damaged object).
                assert!(
                    !path.exists() || std::fs::read(&path).unwrap() == original,
                    "{case}: damaged record left"
                );
            } else {
                assert_eq!(
                    std::fs::read(&path).unwrap(),
                    original,
                    "{case}: not restored by recomputing"
                );
            }
            verify_clean(&p, &case);
            cases += 1;
        }
    }
    assert!(
        cases >= 3 * 15,
        "only {cases} cases: the store holds fewer objects than a run makes"
    );
    eprintln!(
        "tamper: {cases} damaged objects ({bytes_damaged} bytes), every one named by verify and by reproduce ({restored} restored by it, {refused} refused), every one rewritten by run or predict"
    );
}

fn raw_request(addr: &str, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let _ = s.write_all(request);
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn status_of(response: &str) -> u16 {
    response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

#[test]
fn a_flood_of_hostile_requests_leaves_good_ones_answered() {
    let p = Project::new();
    let run = p.run(&[])["run"].as_str().unwrap().to_string();
    let records = test_records(&p);
    // What batch prediction gives for every test row, by Id.
    let batch = p.mlpipe(&["predict", &run, "--input", "test.csv"]);
    let expected: BTreeMap<String, f64> = csv::Reader::from_reader(batch.stdout.as_slice())
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[0].to_string(), r[1].parse().unwrap())
        })
        .collect();
    let server = Server::start(&p, &[&run, "--body-timeout", "1"]);
    let base = server.base.clone();
    let addr = base.trim_start_matches("http://").to_string();
    let url = format!("{base}/v1/predict");
    // Idle connections that never finish their headers sit beside the flood.
    let idle: Vec<TcpStream> = (0..64)
        .map(|_| {
            let mut s = TcpStream::connect(&addr).unwrap();
            s.write_all(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Ty")
                .unwrap();
            s
        })
        .collect();
    let mut deep = "[".repeat(100_000);
    deep.push_str(&"]".repeat(100_000));
    let mut unknown = records[0].clone();
    unknown["LotAreaa"] = json!(1);
    let mut wrong_type = records[0].clone();
    wrong_type["LotArea"] = json!("big");
    let mut missing = records[0].clone();
    missing.as_object_mut().unwrap().remove("LotArea");
    let bad: Vec<(&str, String, u16)> = vec![
        ("application/json", "{not json".into(), 400),
        ("application/json", deep, 400),
        ("text/csv", records[0].to_string(), 415),
        ("application/json", unknown.to_string(), 422),
        ("application/json", wrong_type.to_string(), 422),
        ("application/json", missing.to_string(), 422),
        ("application/json", "[]".into(), 400),
        ("application/json", "[1, 2]".into(), 400),
    ];
    let rounds = (kills() * 20) as usize;
    let (good, bad_served) = (Mutex::new(0usize), Mutex::new(BTreeMap::<u16, usize>::new()));
    std::thread::scope(|s| {
        for t in 0..3 {
            let (url, records, expected, good) = (&url, &records, &expected, &good);
            s.spawn(move || {
                let agent = new_agent();
                for i in 0..rounds {
                    let record = &records[(t * 331 + i * 7) % records.len()];
                    let (status, v) = post(&agent, url, "application/json", &record.to_string());
                    assert_eq!(status, 200, "{v}");
                    let id = record["Id"].to_string();
                    assert_eq!(
                        v["prediction"].as_f64().unwrap().to_bits(),
                        expected[&id].to_bits(),
                        "row {id}"
                    );
                    *good.lock().unwrap() += 1;
                }
            });
        }
        for t in 0..3 {
            let (url, bad, bad_served, addr) = (&url, &bad, &bad_served, &addr);
            s.spawn(move || {
                for i in 0..rounds {
                    let (status, what) = match (i + t) % (bad.len() + 3) {
                        k if k < bad.len() => {
                            let (ct, body, want) = &bad[k];
                            // A fresh connection each time: between these requests the thread stalls
                            // longer than the server's deadline, which closes idle kept-alive connections.
                            let (status, v) = post(&new_agent(), url, ct, body);
                            assert_eq!(status, *want, "{}: {v}", &body[..body.len().min(60)]);
                            (status, v.to_string())
                        }
                        k if k == bad.len() => {
                            // Not HTTP at all.
                            let r = raw_request(addr, b"\x16\x03\x01\x02\x00garbage\r\n\r\n");
                            assert_eq!(status_of(&r), 400, "{r}");
                            (400, r)
                        }
                        k if k == bad.len() + 1 => {
                            // A body that stops arriving: 408 after --body-timeout.
                            let r = raw_request(
                                addr,
                                b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"Id\": ",
                            );
                            assert_eq!(status_of(&r), 408, "{r}");
                            (408, r)
                        }
                        _ => {
                            // A declared length above the limit: refused before the body is read.
                            let r = raw_request(
                                addr,
                                b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 999999999\r\nConnection: close\r\n\r\n",
                            );
                            assert_eq!(status_of(&r), 413, "{r}");
                            (413, r)
                        }
                    };
                    assert!(status >= 400, "{what}");
                    *bad_served.lock().unwrap().entry(status).or_default() += 1;
                }
            });
        }
    });
    // The half-open connections were cut off at the deadline (EOF), not held.
    for mut s in idle {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(
            s.read(&mut buf).unwrap(),
            0,
            "a connection with unfinished headers is still open"
        );
    }
    let (status, health) = common::serving::get(&new_agent(), &format!("{base}/healthz"));
    assert_eq!(status, 200, "{health}");
    let bad_served = bad_served.into_inner().unwrap();
    let (stopped, _) = server.stop();
    assert!(stopped, "the server did not stop cleanly");
    eprintln!(
        "hostile: {} good requests answered correctly beside {} bad ones (by status {bad_served:?}) and 64 half-open connections (closed at the 1 s deadline); the server stayed up",
        good.into_inner().unwrap(),
        bad_served.values().sum::<usize>()
    );
}

#[test]
fn names_and_hashes_cannot_leave_the_project_or_the_store() {
    let p = Project::new();
    std::fs::create_dir(p.path("project")).unwrap();
    let text = std::fs::read_to_string(p.path("pipeline.toml")).unwrap();
    for (source, line) in [
        ("../train.csv", "source = \"../train.csv\""),
        ("/etc/passwd", "source = \"/etc/passwd\""),
        ("sqlite:../houses.sqlite", "source = \"sqlite:../houses.sqlite\""),
        ("data/../../train.csv", "source = \"data/../../train.csv\""),
    ] {
        std::fs::write(
            p.path("project/pipeline.toml"),
            text.replacen("source = \"train.csv\"", line, 1),
        )
        .unwrap();
        // Run from inside the folder: outside git, the project is the current folder.
        let out = Command::new(env!("CARGO_BIN_EXE_mlpipe"))
            .current_dir(p.path("project"))
            .env("MLPIPE_STORE", p.store())
            .args(["run", "pipeline.toml"])
            .output()
            .unwrap();
        let err = stderr(&out).replace(&p.dir.path().display().to_string(), "[ROOT]");
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains(&format!(
                "\"{}\" is outside the project [ROOT]/project",
                source.trim_start_matches("sqlite:")
            )),
            "{err}"
        );
        assert!(err.contains("--> pipeline.toml:"), "not located: {err}");
        assert!(err.contains("hint: move or link the data into the project"), "{err}");
    }
    // Run from the folder above, the project is that folder: `../train.csv` is inside it.
    std::fs::write(
        p.path("project/pipeline.toml"),
        text.replacen("source = \"train.csv\"", "source = \"../train.csv\"", 1),
    )
    .unwrap();
    let above = p.mlpipe(&["run", "project/pipeline.toml"]);
    assert!(above.status.success(), "{}", stderr(&above));
    // Inside the project, `..` that stays inside is fine.
    std::fs::create_dir(p.path("project/data")).unwrap();
    std::fs::copy(p.path("train.csv"), p.path("project/data/train.csv")).unwrap();
    std::fs::create_dir(p.path("project/pipelines")).unwrap();
    std::fs::write(
        p.path("project/pipelines/p.toml"),
        text.replacen("source = \"train.csv\"", "source = \"../data/train.csv\"", 1),
    )
    .unwrap();
    std::fs::create_dir(p.path("project/.git")).unwrap(); // the project is its work tree
    let inside = p.mlpipe(&["run", "project/pipelines/p.toml", "--json"]);
    assert!(inside.status.success(), "{}", stderr(&inside));

    // A pipeline name and stage names are never paths: nothing is written outside the store.
    std::fs::write(
        p.path("evil.toml"),
        text.replacen("name = \"house-prices\"", "name = \"../../../../tmp/evil\"", 1),
    )
    .unwrap();
    let before = tree(p.dir.path());
    let before_len = before.len();
    let out = p.mlpipe(&["run", "evil.toml"]);
    let after: Vec<PathBuf> = tree(p.dir.path())
        .into_iter()
        .filter(|f| !f.starts_with(p.store()) && !before.contains(f))
        .collect();
    assert!(
        after.is_empty() || !out.status.success(),
        "wrote outside the store: {after:?}"
    );
    assert!(after.is_empty(), "wrote outside the store: {after:?}");
    assert!(before_len > 0);

    // Hash arguments are hex prefixes only.
    let mut messages = 0;
    for arg in ["../../etc/passwd", "..", "v1/objects", "/etc/passwd", "abc/../../x"] {
        for verb in ["show", "reproduce", "predict", "diff", "serve"] {
            let args: Vec<&str> = match verb {
                "predict" => vec![verb, arg, "--input", "test.csv"],
                "diff" => vec![verb, arg, arg],
                _ => vec![verb, arg],
            };
            let out = p.mlpipe(&args);
            assert!(!out.status.success(), "{verb} {arg} succeeded");
            let err = stderr(&out);
            assert!(
                err.starts_with("error: ") && err.contains("hint: "),
                "{verb} {arg}: {err}"
            );
            assert!(!err.contains("panicked"), "{err}");
            messages += 1;
        }
    }
    assert_eq!(messages, 25);
}

fn tree(dir: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.insert(path);
            }
        }
    }
    out
}

/// A small tmpfs, mounted for the test's lifetime (needs root, as the test command runs).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: PathBuf, size: &str) -> Tmpfs {
        std::fs::create_dir_all(&dir).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "mounting a tmpfs needs root (the test command runs as root in CI)"
        );
        Tmpfs(dir)
    }

    fn resize(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_mid_run_leaves_the_store_consistent() {
    let p = Project::new();
    let clean_store = p.path("clean");
    let clean = p.run(&["--store", clean_store.to_str().unwrap()]);
    // What a run takes on disk, in blocks (tmpfs counts pages the same way).
    let du = Command::new("du").arg("-sk").arg(&clean_store).output().unwrap();
    let needed_kib: u64 = stdout(&du).split_whitespace().next().unwrap().parse().unwrap();
    let mut stopped_after = Vec::new();
    for percent in [50, 70, 75, 80, 85] {
        let size_kib = needed_kib * percent / 100;
        let disk = Tmpfs::mount(p.path(&format!("disk-{percent}")), &format!("{size_kib}k"));
        let store = disk.0.join("store");
        let store_arg = store.to_str().unwrap();
        let out = p.mlpipe(&["run", "pipeline.toml", "--store", store_arg]);
        if out.status.success() {
            stopped_after.push((percent, None));
        } else {
            assert_eq!(out.status.code(), Some(1), "{percent}%: {}", stderr(&out));
            let err = stderr(&out);
            assert!(err.contains("No space left on device"), "{percent}%: {err}");
            assert!(
                err.contains(store_arg),
                "{percent}%: the error does not name the store: {err}"
            );
            let verify = p.mlpipe(&["verify", "--store", store_arg]);
            assert!(
                verify.status.success(),
                "{percent}%: after a full disk: {}",
                stdout(&verify)
            );
            let tmp_left = std::fs::read_dir(store.join("v1/tmp")).unwrap().count();
            assert_eq!(tmp_left, 0, "{percent}%: a failed write left a temp file behind");
            stopped_after.push((percent, Some(objects(&store).len())));
        }
        if percent == 50 {
            // A prediction file on the full disk fails whole: no partial file.
            let filler = disk.0.join("filler");
            let _ = std::fs::write(&filler, vec![0u8; 64 << 20]); // fills whatever is left
            let target = disk.0.join("predictions.csv");
            let out = p.mlpipe(&[
                "predict",
                clean["run"].as_str().unwrap(),
                "--input",
                "test.csv",
                "-o",
                target.to_str().unwrap(),
                "--store",
                clean_store.to_str().unwrap(),
            ]);
            assert!(!out.status.success());
            assert!(stderr(&out).contains("No space left on device"), "{}", stderr(&out));
            assert!(!target.exists(), "a partial prediction file was left");
            std::fs::remove_file(&filler).unwrap();
        }
        // With room again, the same run id as on a roomy disk.
        disk.resize(&format!("{}k", needed_kib * 3));
        let again = p.run(&["--store", store_arg]);
        assert_eq!(again["run"], clean["run"]);
        assert_eq!(stage_outputs(&again), stage_outputs(&clean));
        let verify = p.mlpipe(&["verify", "--store", store_arg]);
        assert!(verify.status.success(), "{}", stdout(&verify));
    }
    let objects_in_run = objects(&clean_store).len();
    assert!(
        stopped_after.iter().any(|(_, n)| n.is_some_and(|n| n > 2)),
        "no size stopped the run after its snapshot: {stopped_after:?}"
    );
    eprintln!(
        "disk full: tmpfs at 50-85 % of the {needed_kib} KiB a run takes; objects stored before the disk filled \
         (of {objects_in_run}, by size %): {stopped_after:?}; verify clean each time, every re-run with room gave the same id"
    );
}

/// `mlpipe run pipeline.toml` under an address-space limit (`prlimit --as`).
fn run_with_address_space(p: &Project, bytes: u64) -> std::process::Output {
    Command::new("prlimit")
        .arg(format!("--as={bytes}"))
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_mlpipe"))
        .args(["run", "pipeline.toml"])
        .current_dir(p.dir.path())
        .env("MLPIPE_STORE", p.store())
        .output()
        .unwrap()
}

#[test]
fn a_data_file_larger_than_the_memory_allowed_fails_before_reading() {
    let p = Project::new();
    // ~140 MB: train.csv's rows repeated, under an address-space limit of 256 MiB.
    let text = std::fs::read_to_string(p.path("train.csv")).unwrap();
    let (header, rows) = text.split_once('\n').unwrap();
    let mut big = String::with_capacity(rows.len() * 150 + header.len());
    big.push_str(header);
    big.push('\n');
    for _ in 0..300 {
        big.push_str(rows);
    }
    std::fs::write(p.path("train.csv"), big).unwrap();
    let out = run_with_address_space(&p, 256 << 20);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("train.csv") && err.contains("memory"), "{err}");
    assert!(err.contains("hint:"), "{err}");
    // Nothing was stored: the check comes before the snapshot is copied.
    assert!(
        objects(&p.store()).is_empty(),
        "objects were stored before the memory check"
    );
    eprintln!(
        "memory: {}",
        err.lines().find(|l| l.starts_with("error:")).unwrap_or("")
    );

    // Room for the least a run takes, not for what this pipeline takes: a warning, then the run dies on
    // a failed allocation partway — and the store is still consistent, and a run with room finishes.
    let out = run_with_address_space(&p, 448 << 20);
    let err = stderr(&out);
    assert!(err.contains("warning: train.csv is 131.6 MiB"), "{err}");
    assert!(err.contains("may run out of memory"), "{err}");
    assert!(
        !out.status.success(),
        "this pipeline cannot fit in 448 MiB of address space: {err}"
    );
    verify_clean(&p, "a run that ran out of memory");
    let finished = p.run(&[]);
    eprintln!(
        "memory: under a 448 MiB limit the run warned, ran out of memory ({:?}), left the store consistent; with room it finished as run {}",
        out.status,
        &finished["run"].as_str().unwrap()[..12]
    );
}

/// Every file under a fuzz folder, sorted.
fn fuzz_inputs(folder: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join(folder);
    let mut out: Vec<PathBuf> =
        std::fs::read_dir(&dir).map_or_else(|_| Vec::new(), |d| d.map(|e| e.unwrap().path()).collect());
    out.sort();
    out
}

#[test]
fn fuzz_seeds_replay_through_the_fuzz_checks() {
    // The seed corpus of each fuzz target (and any local corpus or findings) through the same checks the
    // targets run: the inputs libFuzzer starts from must pass, and a committed finding stays fixed.
    let p = Project::new();
    let run = p.run(&[])["run"].as_str().unwrap().to_string();
    let store = mlpipe::store::LocalStore::open(&p.store()).unwrap();
    let record = mlpipe::commands::resolve_run(&store, &run).unwrap();
    let scorer = mlpipe::predictor::Scorer::load(&store, &record).unwrap();
    let mut replayed = BTreeMap::new();
    for target in ["pipeline", "rows", "rest"] {
        let mut files = fuzz_inputs(&format!("seeds/{target}"));
        assert!(files.len() >= 4, "fuzz/seeds/{target} holds {} seeds", files.len());
        files.extend(fuzz_inputs(&format!("regressions/{target}")));
        for file in &files {
            let data = std::fs::read(file).unwrap();
            match target {
                "pipeline" => fuzz_checks::pipeline(&data),
                "rows" => fuzz_checks::rows(&scorer, &data),
                _ => fuzz_checks::rest(&scorer, &data),
            }
        }
        replayed.insert(target, files.len());
    }
    // The shipped pipelines are among the seeds and must parse.
    for name in ["house-prices.toml", "house-prices-sqlite.toml"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/seeds/pipeline")
            .join(name);
        let text = std::fs::read_to_string(path).unwrap();
        assert!(
            mlpipe::spec::Pipeline::parse(Path::new("pipelines/x.toml"), &text).is_ok(),
            "{name}"
        );
    }
    eprintln!("fuzz seeds replayed: {replayed:?}");
}

#[test]
fn gc_removes_nothing_while_a_record_is_unreadable() {
    // What a damaged record references is unknown: guessing "nothing" would delete a run's outputs.
    let p = Project::new();
    let run = p.run(&[])["run"].as_str().unwrap().to_string();
    let record = std::fs::read_to_string(p.store().join("v1/refs/runs").join(&run)).unwrap();
    let record = record.trim();
    let before = objects(&p.store());
    let path = p.store().join("v1/objects").join(&record[..2]).join(&record[2..]);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[10] ^= 0x20;
    std::fs::write(&path, bytes).unwrap();
    let (code, err) = p.fail(&["gc"]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with(&format!(
            "error: gc removed nothing: the record of run {run} cannot be read: store object {record} is corrupt"
        )),
        "{err}"
    );
    assert!(
        err.contains("hint: run `mlpipe verify`; re-running the pipeline"),
        "{err}"
    );
    assert_eq!(objects(&p.store()), before);
    // Re-running writes a good record (and removes the damaged one); gc works again.
    assert_eq!(p.run(&[])["run"].as_str().unwrap(), run);
    assert!(p.mlpipe(&["gc"]).status.success());
    verify_clean(&p, "gc after the record was rewritten");
}

// ---- Store integrity (issue #23: links, tampered and damaged refs, gc roots) ----

/// The file of a ref: `runs`, `predictions`, or `keys` (two-character folder).
fn ref_file(p: &Project, kind: &str, key: &str) -> PathBuf {
    let refs = p.store().join("v1/refs").join(kind);
    if kind == "keys" {
        refs.join(&key[..2]).join(&key[2..])
    } else {
        refs.join(key)
    }
}

fn ref_target(p: &Project, kind: &str, key: &str) -> String {
    std::fs::read_to_string(ref_file(p, kind, key))
        .unwrap()
        .trim()
        .to_string()
}

/// `predict RUN --input FILE --json`: the prediction id.
fn predict_batch(p: &Project, run: &str, input: &str) -> String {
    let out = p.mlpipe(&[
        "predict",
        run,
        "--input",
        input,
        "-o",
        &format!("{input}.out.csv"),
        "--json",
    ]);
    json_out(&out, "predict")["prediction"].as_str().unwrap().to_string()
}

fn stage_of<'a>(run: &'a Value, name: &str) -> &'a Value {
    run["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap()
}

fn fs_is_link(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

fn object_files(p: &Project) -> BTreeSet<String> {
    objects(&p.store()).into_iter().map(|(id, _)| id).collect()
}

#[test]
fn gc_through_a_linked_tmp_folder_removes_nothing_outside_the_store() {
    let p = Project::new();
    p.run(&[]);
    let outside = p.path("precious");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("thesis.tex"), "years of work").unwrap();
    let tmp = p.store().join("v1/tmp");
    std::fs::remove_dir(&tmp).unwrap();
    std::os::unix::fs::symlink(&outside, &tmp).unwrap();
    let verify = p.mlpipe(&["verify"]);
    assert_eq!(verify.status.code(), Some(1), "{}", stdout(&verify));
    assert!(
        stdout(&verify).contains(&format!(
            "  v1/tmp: is a symbolic link to {}, not a folder; the store's folders must be real folders inside it: \
             `mlpipe verify --repair` moves it aside to v1/quarantine/ (what a link points at is left untouched) and \
             makes a real folder in its place\n",
            outside.display()
        )),
        "{}",
        stdout(&verify)
    );
    let refused = "error: store folder [ROOT]/artifacts/v1/tmp is a symbolic link to [ROOT]/precious, not a folder; the \
                   store's folders must be real folders inside it\nhint: `mlpipe verify` lists every link and misplaced \
                   entry in the store; `mlpipe verify --repair` moves them aside to v1/quarantine/ and puts real folders \
                   in their place (what a link points at is left untouched)\n";
    for args in [vec!["gc"], vec!["run", "pipeline.toml"], vec!["log"]] {
        assert_eq!(p.fail(&args), (1, refused.to_string()), "{args:?}");
    }
    assert_eq!(
        std::fs::read_to_string(outside.join("thesis.tex")).unwrap(),
        "years of work"
    );
    let repair = p.mlpipe(&["verify", "--repair"]);
    assert!(repair.status.success(), "{}", stdout(&repair));
    assert!(
        stdout(&repair)
            .contains("  repaired v1/tmp: moved aside to v1/quarantine/tmp; made a real folder in its place\n"),
        "{}",
        stdout(&repair)
    );
    assert!(p.mlpipe(&["gc"]).status.success());
    assert_eq!(
        std::fs::read_to_string(outside.join("thesis.tex")).unwrap(),
        "years of work"
    );
    assert_eq!(
        std::fs::read_link(p.store().join("v1/quarantine/tmp")).unwrap(),
        outside
    );

    // A two-character object folder that is a link: gc touches nothing, not even what the link shows.
    let (id, _) = objects(&p.store()).into_iter().next().unwrap();
    let prefix = p.store().join("v1/objects").join(&id[..2]);
    let elsewhere = p.path("elsewhere");
    std::fs::rename(&prefix, &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &prefix).unwrap();
    let before: Vec<_> = std::fs::read_dir(&elsewhere)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let (code, err) = p.fail(&["gc"]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        format!(
            "error: gc removed nothing: [ROOT]/artifacts/v1/objects/{} is a symbolic link to [ROOT]/elsewhere, not a \
             folder of objects; the store's folders and files must be real ones inside it\nhint: `mlpipe verify` lists \
             every link in the store; `mlpipe verify --repair` moves them aside to v1/quarantine/ (what they point at \
             is left untouched)\n",
            &id[..2]
        )
    );
    let after: Vec<_> = std::fs::read_dir(&elsewhere)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(before, after);
    // Moved aside, its objects are missing: the run writes them again.
    p.mlpipe(&["verify", "--repair"]);
    assert!(fs_is_link(&p.store().join("v1/quarantine/objects").join(&id[..2])));
    p.run(&[]);
    verify_clean(&p, "a linked object folder moved aside and the run repeated");
}

#[test]
fn a_ref_copied_over_another_is_refused_by_verify_and_every_load() {
    let p = Project::new();
    let a = p.run(&[]);
    let b = p.run(&["--seed", "7"]);
    let (ra, rb) = (a["run"].as_str().unwrap(), b["run"].as_str().unwrap());
    let (rec_a, rec_b) = (ref_target(&p, "runs", ra), ref_target(&p, "runs", rb));

    // A run ref copied over another's: verify, and every command that loads the run, refuse it.
    std::fs::copy(ref_file(&p, "runs", ra), ref_file(&p, "runs", rb)).unwrap();
    let verify = p.mlpipe(&["verify"]);
    assert_eq!(verify.status.code(), Some(1));
    assert!(
        stdout(&verify).contains(&format!(
            "  {rb}: run {}: the ref points at {rec_a}, which is the record of run {ra} (copied from another run's \
             ref?); the store still holds run {}'s record {}: `mlpipe verify --repair` points the ref at it\n",
            &rb[..12],
            &rb[..12],
            &rec_b[..12]
        )),
        "{}",
        stdout(&verify)
    );
    let refused = format!(
        "error: the run ref [ROOT]/artifacts/v1/refs/runs/{rb} points at object {rec_a}, which is the record of run \
         {ra}, not of run {rb}\nhint: the ref was edited or copied from another; `mlpipe verify --repair` points it \
         back at {}'s own record when the store holds it, and moves it aside to v1/quarantine/ otherwise\n",
        &rb[..12]
    );
    for args in [
        vec!["reproduce", rb],
        vec!["predict", rb, "--input", "test.csv", "-o", "wrong.csv"],
        vec!["show", rb],
        vec!["export", rb, "--format", "onnx", "-o", "wrong.onnx"],
    ] {
        assert_eq!(p.fail(&args), (1, refused.clone()), "{args:?}");
    }
    assert!(!p.path("wrong.csv").exists());
    let repair = p.mlpipe(&["verify", "--repair"]);
    assert!(repair.status.success(), "{}", stdout(&repair));
    assert!(
        stdout(&repair).contains(&format!(
            "  repaired {rb}: wrote the run ref {} again, pointing at {rec_b} (the old one moved aside to \
             v1/quarantine/refs/runs/{rb})\n",
            &rb[..12]
        )),
        "{}",
        stdout(&repair)
    );
    replay(&p, rb);

    // A prediction ref copied over another's.
    std::fs::write(
        p.path("few.csv"),
        std::fs::read_to_string(p.path("test.csv"))
            .unwrap()
            .lines()
            .take(20)
            .collect::<Vec<_>>()
            .join("\n")
            + "\n",
    )
    .unwrap();
    let (pa, pb) = (predict_batch(&p, ra, "test.csv"), predict_batch(&p, ra, "few.csv"));
    let (prec_a, prec_b) = (ref_target(&p, "predictions", &pa), ref_target(&p, "predictions", &pb));
    std::fs::copy(ref_file(&p, "predictions", &pa), ref_file(&p, "predictions", &pb)).unwrap();
    let verify = p.mlpipe(&["verify"]);
    assert_eq!(verify.status.code(), Some(1));
    assert!(
        stdout(&verify).contains(&format!(
            "  {pb}: prediction {}: the ref points at {prec_a}, which is the record of prediction {pa}, not of \
             prediction {pb}; the store still holds prediction {}'s record {}: `mlpipe verify --repair` points the \
             ref at it\n",
            &pb[..12],
            &pb[..12],
            &prec_b[..12]
        )),
        "{}",
        stdout(&verify)
    );
    assert_eq!(
        p.fail(&["reproduce", &pb]),
        (
            1,
            format!(
                "error: the prediction ref [ROOT]/artifacts/v1/refs/predictions/{pb} points at object {prec_a}, which is \
                 the record of prediction {pa}, not of prediction {pb}\nhint: the ref was edited or copied from another; \
                 `mlpipe verify --repair` points it back at {}'s own record when the store holds it, and moves it aside \
                 to v1/quarantine/ otherwise\n",
                &pb[..12]
            )
        )
    );
    assert!(p.mlpipe(&["verify", "--repair"]).status.success());
    replay(&p, &pb);

    // A stage-key ref copied over another stage's of the same kind: verify names it; the next run of that
    // run points it back before any stage sees it (the run's record names the key with its output).
    let (numeric, categorical) = (stage_of(&a, "impute.numeric"), stage_of(&a, "impute.categorical"));
    let key = categorical["key"].as_str().unwrap();
    std::fs::copy(
        ref_file(&p, "keys", numeric["key"].as_str().unwrap()),
        ref_file(&p, "keys", key),
    )
    .unwrap();
    let verify = p.mlpipe(&["verify"]);
    assert_eq!(verify.status.code(), Some(1));
    assert!(
        stdout(&verify).contains(&format!(
            "  {key}: the stage-key ref of stage impute.categorical of run {} points at {}, but the run recorded {} for \
             that key (copied from another ref?); `mlpipe verify --repair` points it back at the recorded output\n",
            &ra[..12],
            numeric["output"].as_str().unwrap(),
            categorical["output"].as_str().unwrap()
        )),
        "{}",
        stdout(&verify)
    );
    let again = p.mlpipe(&["run", "pipeline.toml", "--json"]);
    let report = json_out(&again, "run after a stage-key ref was copied");
    assert!(
        stderr(&again).contains(&format!(
            "warning: the stage-key ref of impute.categorical points at {}, not at the output {} that run {} recorded \
             for that key; pointing it back\n",
            numeric["output"].as_str().unwrap(),
            categorical["output"].as_str().unwrap(),
            &ra[..12]
        )),
        "{}",
        stderr(&again)
    );
    assert_eq!(report["run"], a["run"]);
    assert_eq!(stage_outputs(&report), stage_outputs(&a));
    verify_clean(&p, "the run pointed the stage-key ref back");

    // Copied from another kind of stage, with no record naming the key (the run's ref is gone): the run
    // sees a state of the wrong kind and recomputes the stage.
    std::fs::remove_file(ref_file(&p, "runs", rb)).unwrap();
    let split = stage_of(&b, "split")["key"].as_str().unwrap();
    std::fs::copy(
        ref_file(&p, "keys", stage_of(&b, "gather")["key"].as_str().unwrap()),
        ref_file(&p, "keys", split),
    )
    .unwrap();
    let again = p.mlpipe(&["run", "pipeline.toml", "--seed", "7", "--json"]);
    let report = json_out(
        &again,
        "run after a stage-key ref was copied from another kind of stage",
    );
    assert!(
        stderr(&again).contains(&format!(
            "warning: the stage-key ref of split points at {}, which is not the output of a split stage; recomputing it\n",
            stage_of(&b, "gather")["output"].as_str().unwrap()
        )),
        "{}",
        stderr(&again)
    );
    assert_eq!(report["run"], b["run"]);
    assert_eq!(stage_outputs(&report), stage_outputs(&b));
    verify_clean(
        &p,
        "the run recomputed a stage whose ref pointed at another kind of output",
    );
}

#[test]
fn one_bad_byte_in_any_ref_is_reported_quarantined_and_recomputed() {
    let p = Project::new();
    let run = p.run(&[]);
    let r = run["run"].as_str().unwrap().to_string();
    let prediction = predict_batch(&p, &r, "test.csv");
    let record = run["record"].as_str().unwrap().to_string();
    let prediction_record = ref_target(&p, "predictions", &prediction);
    let before = object_files(&p);
    // One bad byte (a control character) in a run ref, a prediction ref and two stage-key refs; a
    // third stage-key ref made a folder.
    let damage = |file: &Path| {
        let mut bytes = std::fs::read(file).unwrap();
        bytes[5] = 0x01;
        std::fs::write(file, &bytes).unwrap();
        bytes
    };
    let key = |name: &str| stage_of(&run, name)["key"].as_str().unwrap().to_string();
    let mut damaged = vec![
        (ref_file(&p, "runs", &r), damage(&ref_file(&p, "runs", &r))),
        (
            ref_file(&p, "predictions", &prediction),
            damage(&ref_file(&p, "predictions", &prediction)),
        ),
    ];
    for name in ["analyse", "train"] {
        let file = ref_file(&p, "keys", &key(name));
        damaged.push((file.clone(), damage(&file)));
    }
    let folder = ref_file(&p, "keys", &key("evaluate"));
    std::fs::remove_file(&folder).unwrap();
    std::fs::create_dir(&folder).unwrap();
    let held = |id: &str| format!("\"{}\\u{{1}}{}\"…", &id[..5], &id[6..40]);

    let verify = p.mlpipe(&["verify"]);
    assert_eq!(verify.status.code(), Some(1));
    let report = stdout(&verify);
    assert!(!report.contains('\u{1}'), "a raw control character in: {report}");
    let mut expected = vec![
        format!(
            "  v1/refs/runs/{r}: damaged run ref: it holds {} instead of an object id; the store still holds run {}'s \
             record {}: `mlpipe verify --repair` points the ref at it\n",
            held(&record),
            &r[..12],
            &record[..12]
        ),
        format!(
            "  v1/refs/predictions/{prediction}: damaged prediction ref: it holds {} instead of an object id; the store \
             still holds prediction {}'s record {}: `mlpipe verify --repair` points the ref at it\n",
            held(&prediction_record),
            &prediction[..12],
            &prediction_record[..12]
        ),
        format!(
            "  v1/refs/keys/{}/{}: damaged stage-key ref: it is a folder, not a ref file; `mlpipe verify --repair` moves \
             it aside to v1/quarantine/; the next `mlpipe run` recomputes the stage\n",
            &key("evaluate")[..2],
            &key("evaluate")[2..]
        ),
        format!(
            "  {prediction}: ledger entry names run {r}, whose ref or record is damaged (reported above): it cannot be \
             replayed until that is repaired\n"
        ),
    ];
    expected.push(format!(
        "  {prediction}: ledger entry names batch prediction {}, whose ref is damaged (reported above)\n",
        &prediction[..12]
    ));
    for name in ["analyse", "train"] {
        expected.push(format!(
            "  v1/refs/keys/{}/{}: damaged stage-key ref: it holds {} instead of an object id; `mlpipe verify --repair` \
             moves it aside to v1/quarantine/; the next `mlpipe run` recomputes the stage\n",
            &key(name)[..2],
            &key(name)[2..],
            held(stage_of(&run, name)["output"].as_str().unwrap())
        ));
    }
    for line in &expected {
        assert!(report.contains(line.as_str()), "missing {line}in:\n{report}");
    }
    assert!(report.contains(&format!("{} problems;", expected.len())), "{report}");

    // gc does not fail, and keeps the run and the prediction whole.
    let gc = json_out(&p.mlpipe(&["gc", "--json"]), "gc with damaged refs");
    assert_eq!(
        (gc["removed"].as_u64(), gc["damaged_left"].as_u64()),
        (Some(0), Some(5))
    );
    assert_eq!(object_files(&p), before);

    // run recomputes through the damaged stage-key refs (moving them aside) and finds its record again.
    let again = p.mlpipe(&["run", "pipeline.toml", "--json"]);
    let rerun = json_out(&again, "run through damaged refs");
    assert_eq!((&rerun["run"], &rerun["record"]), (&run["run"], &run["record"]));
    assert_eq!(stage_outputs(&rerun), stage_outputs(&run));
    for name in ["analyse", "train", "evaluate"] {
        assert!(
            stderr(&again).contains(&format!("warning: the stage-key ref of {name} (")),
            "{}",
            stderr(&again)
        );
    }
    // verify --repair does the rest: the prediction ref is written again from its record.
    let repair = p.mlpipe(&["verify", "--repair"]);
    assert!(repair.status.success(), "{}", stdout(&repair));
    assert!(
        stdout(&repair).contains(&format!(
            "  repaired v1/refs/predictions/{prediction}: wrote the prediction ref {} again, pointing at \
             {prediction_record} (the old one moved aside to v1/quarantine/refs/predictions/{prediction})\n",
            &prediction[..12]
        )),
        "{}",
        stdout(&repair)
    );
    verify_clean(&p, "repair");
    replay(&p, &prediction);
    // Nothing was deleted: every damaged ref is in the quarantine, byte for byte.
    let quarantine = p.store().join("v1/quarantine");
    for (file, bytes) in &damaged {
        let moved = quarantine.join(file.strip_prefix(p.store().join("v1")).unwrap());
        assert_eq!(&std::fs::read(&moved).unwrap(), bytes, "{}", moved.display());
    }
    assert!(
        quarantine
            .join(folder.strip_prefix(p.store().join("v1")).unwrap())
            .is_dir()
    );
}

#[test]
fn a_deleted_run_ref_keeps_what_predictions_and_the_ledger_name() {
    let p = Project::new();
    let run = p.run(&[]);
    let r = run["run"].as_str().unwrap().to_string();
    let record = run["record"].as_str().unwrap().to_string();
    let batch = predict_batch(&p, &r, "test.csv");
    // Two stream predictions: the ledger alone holds them.
    let records = test_records(&p);
    let mut child = spawn_stream(&p, &r);
    let mut input = child.stdin.take().unwrap();
    for rec in &records[..2] {
        writeln!(input, "{rec}").unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let streamed: Vec<String> = stdout(&out)
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["prediction_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let before = object_files(&p);

    // The run's ref deleted: verify names every prediction and ledger entry that needs the run.
    std::fs::remove_file(ref_file(&p, "runs", &r)).unwrap();
    let verify = p.mlpipe(&["verify"]);
    assert_eq!(verify.status.code(), Some(1));
    let report = stdout(&verify);
    let todo = format!(
        "whose ref is missing (deleted?), so it cannot be replayed; the store still holds run {}'s record {}: `mlpipe \
         verify --repair` points the ref at it\n",
        &r[..12],
        &record[..12]
    );
    assert!(
        report.contains(&format!("  {batch}: prediction {} names run {r}, {todo}", &batch[..12])),
        "{report}"
    );
    for id in streamed.iter().chain([&batch]) {
        assert!(
            report.contains(&format!("  {id}: ledger entry names run {r}, {todo}")),
            "{id}: {report}"
        );
    }
    assert!(report.contains("4 problems;"), "{report}");
    // gc keeps all of it: the record, the stage outputs, the prediction.
    let gc = json_out(&p.mlpipe(&["gc", "--json"]), "gc without the run's ref");
    assert_eq!(gc["removed"], 0);
    assert_eq!(object_files(&p), before);
    let repair = p.mlpipe(&["verify", "--repair"]);
    assert!(repair.status.success(), "{}", stdout(&repair));
    for id in streamed.iter().chain([&batch]) {
        replay(&p, id);
    }

    // With the prediction's ref gone as well, the ledger alone keeps the run and the batch's record.
    std::fs::remove_file(ref_file(&p, "runs", &r)).unwrap();
    std::fs::remove_file(ref_file(&p, "predictions", &batch)).unwrap();
    let gc = json_out(&p.mlpipe(&["gc", "--json"]), "gc with only the ledger naming the run");
    assert_eq!(gc["removed"], 0);
    assert_eq!(object_files(&p), before);
    let repair = p.mlpipe(&["verify", "--repair"]);
    assert!(repair.status.success(), "{}", stdout(&repair));
    replay(&p, &batch);

    // Record and ref both gone: nothing can bring the run back but running it again.
    std::fs::remove_file(ref_file(&p, "runs", &r)).unwrap();
    std::fs::remove_file(p.store().join("v1/objects").join(&record[..2]).join(&record[2..])).unwrap();
    let verify = p.mlpipe(&["verify"]);
    assert_eq!(verify.status.code(), Some(1));
    assert!(
        stdout(&verify).contains(&format!(
            "  {}: ledger entry names run {r}, which is gone from the store (no ref, no record), so it can no longer be \
             replayed; running its pipeline again on the same data and code records run {} again\n",
            streamed[0],
            &r[..12]
        )),
        "{}",
        stdout(&verify)
    );
    assert_eq!(p.run(&[])["run"].as_str().unwrap(), r);
    verify_clean(&p, "the run was recorded again");
    replay(&p, &streamed[0]);
}

/// Runs `statement` on the store's ledger (as an edit behind mlpipe's back would).
fn edit_ledger(p: &Project, statement: &str) {
    rusqlite::Connection::open(p.store().join("ledger.sqlite"))
        .unwrap()
        .execute_batch(statement)
        .unwrap();
}

#[test]
fn verify_reports_a_malformed_ledger_row_and_a_corrupt_object_together() {
    let p = Project::new();
    let r = p.run(&[])["run"].as_str().unwrap().to_string();
    predict_batch(&p, &r, "test.csv");
    predict_batch(&p, &r, "test.csv");
    verify_clean(&p, "two predictions");
    // One flipped byte in the first object, one malformed cell in the ledger's second row.
    let (flipped, path) = objects(&p.store()).into_iter().next().unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[0] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    edit_ledger(&p, "UPDATE ledger SET value = 'abc' WHERE seq = 2");
    let verify = p.mlpipe(&["verify"]);
    assert_eq!(verify.status.code(), Some(1), "{}", stderr(&verify));
    assert_eq!(stderr(&verify), "");
    let report = stdout(&verify);
    assert!(
        report.contains(&format!("  {flipped}: corrupt: its bytes hash to ")),
        "{report}"
    );
    assert!(
        report.contains(
            "ledger entry 2 (row 2) cannot be read: ledger entry 2: column value holds a malformed value \"abc\"; \
             the ledger was edited outside mlpipe: compare `mlpipe ledger head --at N` with a head anchored \
             earlier, and restore the ledger from a backup\n"
        ),
        "{report}"
    );
    assert!(report.contains("checked 2 ledger entries"), "{report}");
    assert!(report.contains("checked the ledger's chain: 2 entries"), "{report}");
    assert!(report.contains("1 problem in the ledger"), "{report}");

    // A ledger from before the chain cannot be checked: one finding, and the store is still checked.
    edit_ledger(
        &p,
        "ALTER TABLE ledger DROP COLUMN position; ALTER TABLE ledger DROP COLUMN digest",
    );
    let verify = p.mlpipe(&["verify"]);
    assert_eq!(verify.status.code(), Some(1), "{}", stderr(&verify));
    assert_eq!(stderr(&verify), "");
    let report = stdout(&verify);
    assert!(
        report.contains(&format!("  {flipped}: corrupt: its bytes hash to ")),
        "{report}"
    );
    assert!(
        report.contains(&format!(
            "  ledger: the ledger cannot be checked: the ledger sqlite:{} was written before the hash chain existed, \
             so it cannot be checked yet; the next `mlpipe predict` or `mlpipe serve` with this ledger adds the \
             chain, linking its entries in the order they were recorded\n",
            p.store().join("ledger.sqlite").display()
        )),
        "{report}"
    );
    // The flipped object may be a record others name (its id follows a time), so count what is listed.
    let listed = report.lines().filter(|l| l.starts_with("  ")).count();
    assert!(listed >= 2, "{report}");
    assert!(report.contains(&format!("\n{listed} problems;")), "{report}");
    let json = p.mlpipe(&["verify", "--json"]);
    assert_eq!(json.status.code(), Some(1));
    let json: Value = serde_json::from_slice(&json.stdout).unwrap();
    let ids: Vec<&str> = json["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), listed, "{ids:?}");
    assert_eq!(ids.first(), Some(&flipped.as_str()), "{ids:?}");
    assert_eq!(ids.last(), Some(&"ledger"), "{ids:?}");
}

#[test]
fn ledger_cells_with_control_bytes_are_shown_escaped() {
    let p = Project::new();
    let r = p.run(&[])["run"].as_str().unwrap().to_string();
    predict_batch(&p, &r, "test.csv");
    predict_batch(&p, &r, "test.csv");
    // NUL, a byte that is not UTF-8, and a terminal escape (red text).
    edit_ledger(&p, "UPDATE ledger SET value = x'00ff1b5b33316d' WHERE seq = 2");
    let shown = "column value holds a malformed value \"\\0\u{fffd}\\u{1b}[31m\"";
    let verify = p.mlpipe(&["verify"]);
    assert_eq!(verify.status.code(), Some(1));
    let head = p.mlpipe(&["ledger", "head"]);
    assert_eq!(head.status.code(), Some(1));
    let listed = p.mlpipe(&["ledger"]);
    assert_eq!(listed.status.code(), Some(1));
    for (what, out, text) in [
        ("verify", &verify, stdout(&verify)),
        ("ledger head", &head, stderr(&head)),
        ("ledger", &listed, stderr(&listed)),
    ] {
        assert!(text.contains(shown), "{what}: {text}");
        for raw in [&out.stdout, &out.stderr] {
            assert!(
                !raw.iter().any(|&b| b == 0 || b == 0x1b || b == 0xff),
                "{what}: {raw:?}"
            );
        }
    }
    // A malformed chain digest is shown escaped as well.
    edit_ledger(&p, "UPDATE ledger SET digest = 'd' || char(27) || '[2J' WHERE seq = 1");
    let verify = p.mlpipe(&["verify"]);
    assert_eq!(verify.status.code(), Some(1));
    assert!(
        stdout(&verify).contains("has a malformed chain position or digest (1, d\\u{1b}[2J)"),
        "{}",
        stdout(&verify)
    );
    assert!(!verify.stdout.contains(&0x1b));
}

/// Takes entry 1's chain link out of the store's ledger (as an edit outside mlpipe would): nothing can
/// be chained after it, so every append is refused. Gives back what it took, to put it back.
fn unlink_first_ledger_entry(p: &Project) -> (i64, String) {
    let conn = rusqlite::Connection::open(p.store().join("ledger.sqlite")).unwrap();
    let link = conn
        .query_row("SELECT position, digest FROM ledger WHERE seq = 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    conn.execute("UPDATE ledger SET digest = NULL, position = NULL WHERE seq = 1", [])
        .unwrap();
    link
}

fn prediction_refs(p: &Project) -> BTreeSet<String> {
    std::fs::read_dir(p.store().join("v1/refs/predictions"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect()
}

fn assert_ledger_refusal(code: i32, err: &str, what: &str) {
    assert_eq!(code, 1, "{what}: exit {code}, not 1: {err}");
    assert!(
        err.starts_with("error: cannot record predictions in the ledger: ledger sqlite:")
            && err.contains("entry 1 has no chain position or digest")
            && err.contains("hint: the predictions were not recorded, so none was handed out;")
            && err.contains("run `mlpipe verify`"),
        "{what}: {err}"
    );
}

#[test]
fn a_ledger_that_refuses_the_append_leaves_no_output_no_table_rows_and_no_prediction_ref() {
    // The output and the prediction ref used to be written before the ledger append, which then failed
    // with exit 101: predictions handed out that the ledger never recorded.
    let p = Project::new();
    let run = p.run(&[])["run"].as_str().unwrap().to_string();
    let first = p.mlpipe(&["predict", &run, "--input", "test.csv", "-o", "first.csv"]);
    assert!(first.status.success(), "{}", stderr(&first));
    let refs = prediction_refs(&p);
    assert_eq!(refs.len(), 1);
    let link = unlink_first_ledger_entry(&p);
    let (input, rows) = batch_without(&p, 0);
    let input = input.to_str().unwrap();
    let db = p.path("scores.db");
    let table = format!("sqlite:{}", db.display());
    let (code, err) = p.fail(&["predict", &run, "--input", input, "-o", "out.csv"]);
    assert_ledger_refusal(code, &err, "file output");
    assert!(!p.path("out.csv").exists(), "the output was written");
    let (code, err) = p.fail(&[
        "predict",
        &run,
        "--input",
        input,
        "-o",
        &table,
        "--table",
        "predictions",
    ]);
    assert_ledger_refusal(code, &err, "table output");
    assert!(rows_per_batch(&db).is_empty(), "{:?}", rows_per_batch(&db));
    let out = p.mlpipe(&["predict", &run, "--input", input]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(out.stdout.is_empty(), "standard output: {}", stdout(&out));
    assert_eq!(prediction_refs(&p), refs, "a prediction ref was stored");
    let entries = json_out(&p.mlpipe(&["ledger", "--json"]), "ledger");
    assert_eq!(entries.as_array().unwrap().len(), 1);

    // The link put back, the same commands succeed, each recorded.
    let conn = rusqlite::Connection::open(p.store().join("ledger.sqlite")).unwrap();
    conn.execute(
        "UPDATE ledger SET position = ?1, digest = ?2 WHERE seq = 1",
        rusqlite::params![link.0, link.1],
    )
    .unwrap();
    let out = p.mlpipe(&["predict", &run, "--input", input, "-o", "out.csv"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(p.path("out.csv")).unwrap().lines().count(),
        rows + 1
    );
    let out = json_out(
        &p.mlpipe(&[
            "predict",
            &run,
            "--input",
            input,
            "-o",
            &table,
            "--table",
            "predictions",
            "--json",
        ]),
        "predict into the table",
    );
    assert_eq!(rows_per_batch(&db)[out["prediction"].as_str().unwrap()], rows);
    assert_eq!(prediction_refs(&p).len(), 2);
    let entries = json_out(&p.mlpipe(&["ledger", "--json"]), "ledger");
    assert_eq!(entries.as_array().unwrap().len(), 3);
    verify_clean(&p, "the ledger's link was put back");
}

#[test]
fn a_stream_whose_ledger_refuses_the_append_exits_1_not_101() {
    let p = Project::new();
    let run = p.run(&[])["run"].as_str().unwrap().to_string();
    let first = p.mlpipe(&["predict", &run, "--input", "test.csv", "-o", "first.csv"]);
    assert!(first.status.success(), "{}", stderr(&first));
    unlink_first_ledger_entry(&p);
    let mut child = spawn_stream(&p, &run);
    let mut input = child.stdin.take().unwrap();
    for rec in &test_records(&p)[..2] {
        // The stream may refuse (and exit) before it reads: a closed pipe is not this test's failure.
        let _ = writeln!(input, "{rec}");
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_ledger_refusal(
        out.status.code().unwrap(),
        &err[err.find("error:").unwrap()..],
        "stream",
    );
    assert!(out.stdout.is_empty(), "a prediction was handed out: {}", stdout(&out));
    let entries = json_out(&p.mlpipe(&["ledger", "--json"]), "ledger");
    assert_eq!(entries.as_array().unwrap().len(), 1);
}

#[test]
fn the_ledger_listing_shows_a_text_cell_with_a_terminal_escape_escaped() {
    let p = Project::new();
    let r = p.run(&[])["run"].as_str().unwrap().to_string();
    predict_batch(&p, &r, "test.csv");
    // `source` is free text (a file name, a client address): well formed, but written by anyone.
    edit_ledger(
        &p,
        "UPDATE ledger SET source = 'test' || char(27) || '[2J.csv' WHERE seq = 1",
    );
    let listed = p.mlpipe(&["ledger"]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    assert!(!listed.stdout.contains(&0x1b), "a raw escape reached the terminal");
    assert!(stdout(&listed).contains("test\\u{1b}[2J.csv"), "{}", stdout(&listed));
}

/// `mlpipe predict RUN --stream` in the project, its three streams piped.
fn spawn_stream(p: &Project, run: &str) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_mlpipe"))
        .current_dir(p.dir.path())
        .env("MLPIPE_STORE", p.store())
        .args(["predict", run, "--stream"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn a_row_of_a_stream_prediction_is_refused_not_reported_as_reproduced() {
    let p = Project::new();
    let r = p.run(&[])["run"].as_str().unwrap().to_string();
    let mut child = spawn_stream(&p, &r);
    let mut input = child.stdin.take().unwrap();
    writeln!(input, "{}", test_records(&p)[0]).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let line: Value = serde_json::from_str(stdout(&out).lines().next().unwrap()).unwrap();
    let id = line["prediction_id"].as_str().unwrap().to_string();
    assert!(p.mlpipe(&["reproduce", &id]).status.success());
    let (code, err) = p.fail(&["reproduce", &format!("{id}/1")]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        format!(
            "error: {id} is a stream prediction of one record, not a batch, so it has no rows\n\
             hint: reproduce it as {id}, without /1\n"
        )
    );
}
