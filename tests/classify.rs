#![allow(clippy::unwrap_used, clippy::expect_used)]

//! Classification end to end: the shipped penguins pipeline and its variants through run, show,
//! predict (file, database, stream), serve and reproduce; thread-count independence; bad input.

mod common;

use common::serving::{Server, new_agent, post};
use common::{Project, stage_outputs, stderr, stdout};
use serde_json::Value;

const ESTIMATORS: [&str; 4] = [
    "estimator = \"logistic_regression\"\nC = 1.0",
    "estimator = \"decision_tree\"\nmax_depth = 4",
    "estimator = \"random_forest\"\nn_estimators = 40\nmin_samples_leaf = 2",
    "estimator = \"gradient_boosting\"\nn_estimators = 20\nmax_depth = 2",
];

/// `pipeline.toml` run on one thread and on all, each into a fresh store: both runs' reports, which
/// must agree on the run id and every stage output.
fn one_thread_and_many(p: &Project, what: &str) -> Vec<Value> {
    let runs: Vec<Value> = [vec![("POLARS_MAX_THREADS", "1"), ("RAYON_NUM_THREADS", "1")], vec![]]
        .iter()
        .enumerate()
        .map(|(i, env)| {
            let store = p.path(&format!("store{i}"));
            let out = p.mlpipe_env(
                &["run", "pipeline.toml", "--json", "--store", store.to_str().unwrap()],
                env,
            );
            assert!(out.status.success(), "{what}: {}", stderr(&out));
            serde_json::from_slice(&out.stdout).unwrap()
        })
        .collect();
    assert_eq!(runs[0]["run"], runs[1]["run"], "{what}");
    assert_eq!(stage_outputs(&runs[0]), stage_outputs(&runs[1]), "{what}");
    runs
}

#[test]
fn every_classifier_gives_the_same_ids_on_one_thread_and_many_and_reruns_nothing() {
    let p = Project::penguins();
    for train in ESTIMATORS {
        p.set_train(train);
        let runs = one_thread_and_many(&p, train);
        let accuracy = runs[0]["metrics"]["accuracy"].as_f64().unwrap();
        assert!(accuracy > 0.9, "{train}: test accuracy {accuracy}");
        let again = p.run(&[]);
        let cached = p.run(&[]);
        assert_eq!(again["run"], cached["run"]);
        assert!(cached["stages"].as_array().unwrap().iter().all(|s| s["cached"] == true));
    }
}

/// The penguins as records without the species.
fn records(p: &Project) -> Vec<Value> {
    common::serving::csv_records(&p.path("penguins.csv"), &[], &["species"])
}

#[test]
fn a_classifier_predicts_classes_and_probabilities_everywhere_and_they_replay() {
    let p = Project::penguins();
    let run = p.run(&[]);
    let id = run["run"].as_str().unwrap().to_string();
    let classes = ["Adelie", "Chinstrap", "Gentoo"];

    // show: the coefficients per class and the confusion matrix.
    let shown = p.mlpipe(&["show", &id]);
    assert!(shown.status.success(), "{}", stderr(&shown));
    let train_output = run["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "train")
        .unwrap()["output"]
        .as_str()
        .unwrap()
        .to_string();
    let evaluate_output = run["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "evaluate")
        .unwrap()["output"]
        .as_str()
        .unwrap()
        .to_string();
    let model = stdout(&p.mlpipe(&["show", &train_output]));
    assert!(model.contains("classes Adelie, Chinstrap, Gentoo"), "{model}");
    assert!(model.contains("class Gentoo: intercept"), "{model}");
    let evaluation = stdout(&p.mlpipe(&["show", &evaluate_output]));
    assert!(evaluation.contains("confusion matrix"), "{evaluation}");

    // Batch to CSV: the class, then one probability per class, summing to 1.
    std::fs::write(
        p.path("new.csv"),
        std::fs::read_to_string(p.path("penguins.csv")).unwrap(),
    )
    .unwrap();
    let out = p.mlpipe(&["predict", &id, "--input", "new.csv", "--output", "out.csv"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(p.path("out.csv")).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "prediction,proba_Adelie,proba_Chinstrap,proba_Gentoo,model,prediction_id"
    );
    let truth: Vec<String> = std::fs::read_to_string(p.path("penguins.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().to_string())
        .collect();
    let mut right = 0;
    let mut rows = Vec::new();
    for (line, truth) in lines.zip(&truth) {
        let cells: Vec<&str> = line.split(',').collect();
        assert!(classes.contains(&cells[0]), "{line}");
        let proba: Vec<f64> = cells[1..4].iter().map(|c| c.parse().unwrap()).collect();
        assert!((proba.iter().sum::<f64>() - 1.0).abs() < 1e-12, "{line}");
        let best = (0..3).fold(0, |b, k| if proba[k] > proba[b] { k } else { b });
        assert_eq!(cells[0], classes[best], "the class is the most probable one");
        right += usize::from(cells[0] == truth);
        rows.push((cells[0].to_string(), proba));
    }
    assert_eq!(rows.len(), 344);
    assert!(right > 330, "{right} of 344 right");
    let batch = out_line(&out, "prediction ");

    // The same batch into SQLite: a text class and real probabilities.
    let out = p.mlpipe(&[
        "predict",
        &id,
        "--input",
        "new.csv",
        "--output",
        "sqlite:preds.db",
        "--table",
        "penguins",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let db = rusqlite_rows(&p.path("preds.db"));
    assert_eq!(db.len(), 344);
    assert_eq!(db[0].0, rows[0].0);
    assert_eq!(db[0].1.to_bits(), rows[0].1[0].to_bits());

    // A stream line and a REST answer: the class and a probabilities object, bit-identical to batch.
    let recs = records(&p);
    let line = format!("{}\n", recs[5]);
    let streamed = {
        use std::io::Write;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mlpipe"))
            .current_dir(p.dir.path())
            .env("MLPIPE_STORE", p.store())
            .args(["predict", &id, "--stream"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(line.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    assert_eq!(streamed["prediction"], rows[5].0.as_str());
    assert_eq!(
        streamed["probabilities"]["Gentoo"].as_f64().unwrap().to_bits(),
        rows[5].1[2].to_bits()
    );
    let server = Server::start(&p, &[&id]);
    let agent = new_agent();
    let (status, answer) = post(
        &agent,
        &format!("{}/v1/predict", server.base),
        "application/json",
        &recs[200].to_string(),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["prediction"], rows[200].0.as_str());
    for (k, class) in classes.iter().enumerate() {
        assert_eq!(
            answer["probabilities"][class].as_f64().unwrap().to_bits(),
            rows[200].1[k].to_bits()
        );
    }
    let (status, model_doc) = common::serving::get(&agent, &format!("{}/v1/model", server.base));
    assert_eq!(status, 200);
    assert!(
        model_doc.contains("\"classes\":[\"Adelie\",\"Chinstrap\",\"Gentoo\"]"),
        "{model_doc}"
    );
    let (stopped, _) = server.stop();
    assert!(stopped);

    // Every one of them replays bit for bit: the batch, one of its rows, the stream and the REST answer.
    for prediction in [
        batch.clone(),
        format!("{batch}/17"),
        streamed["prediction_id"].as_str().unwrap().to_string(),
        answer["prediction_id"].as_str().unwrap().to_string(),
    ] {
        let replay = p.mlpipe(&["reproduce", &prediction]);
        assert!(replay.status.success(), "{prediction}: {}", stderr(&replay));
        assert!(
            stdout(&replay).starts_with("reproduced bit-for-bit"),
            "{}",
            stdout(&replay)
        );
    }
}

fn out_line(out: &std::process::Output, prefix: &str) -> String {
    stdout(out)
        .lines()
        .chain(stderr(out).lines())
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} in {}{}", stdout(out), stderr(out)))
        .trim()
        .to_string()
}

fn rusqlite_rows(path: &std::path::Path) -> Vec<(String, f64)> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT prediction, proba_Adelie FROM penguins ORDER BY rowid")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, f64>(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn classification_mistakes_are_clear_errors() {
    let p = Project::penguins();
    let cases: [(&str, &str, &str); 7] = [
        (
            "[evaluate]\nmetrics = [",
            "[evaluate]\nmetrics = [\"rmse\", ",
            "metric \"rmse\" is a regression metric, but the task is classification",
        ),
        (
            "estimator = \"logistic_regression\"",
            "estimator = \"ridge\"",
            "estimator \"ridge\" does not fit task \"classification\"",
        ),
        ("C = 1.0", "C = 0.0", "`C` must be a finite number above 0"),
        (
            "C = 1.0",
            "C = 1.0\ntarget_transform = \"log\"",
            "a classifier's target is its classes",
        ),
        (
            "estimator = \"logistic_regression\"\nC = 1.0",
            "estimator = \"random_forest\"\nmax_features = 1.5",
            "`max_features` must be a fraction in (0, 1]",
        ),
        (
            "estimator = \"logistic_regression\"\nC = 1.0",
            "estimator = \"random_forest\"\nmax_features = \"half\"",
            "max_features",
        ),
        (
            "metrics = [",
            "metrics = [\"f1\", ",
            "metric f1 is defined for two classes",
        ),
    ];
    for (from, to, message) in cases {
        let original = std::fs::read_to_string(p.path("pipeline.toml")).unwrap();
        p.edit("pipeline.toml", from, to);
        let (code, err) = p.fail(&["run", "pipeline.toml"]);
        assert!(code != 0 && err.contains(message), "{to}: {err}");
        assert!(
            err.contains("hint:") || err.contains("pipeline.toml:"),
            "{to}: no place or hint: {err}"
        );
        std::fs::write(p.path("pipeline.toml"), original).unwrap();
    }
    // Nothing half-written: the failed runs left no run record.
    let log = p.mlpipe(&["log"]);
    assert!(!stdout(&log).contains("penguins"), "{}", stdout(&log));
}

#[test]
fn the_clustering_pipeline_is_the_same_on_any_thread_count_and_predicts_clusters_that_replay() {
    let p = Project::penguins_from("pipelines/penguins-clusters.toml");
    let runs = one_thread_and_many(&p, "the clustering");
    let silhouette = runs[0]["metrics"]["silhouette"].as_f64().unwrap();
    assert!(silhouette > 0.3, "test silhouette {silhouette}");
    let run = p.run(&[]);
    let id = run["run"].as_str().unwrap();
    let out = p.mlpipe(&["predict", id, "--input", "penguins.csv", "--output", "clusters.csv"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(p.path("clusters.csv")).unwrap();
    let clusters: std::collections::BTreeSet<&str> =
        text.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
    assert_eq!(clusters.into_iter().collect::<Vec<_>>(), ["0", "1", "2"]);
    let batch = out_line(&out, "prediction ");
    let replay = p.mlpipe(&["reproduce", &batch]);
    assert!(
        stdout(&replay).starts_with("reproduced bit-for-bit"),
        "{}",
        stderr(&replay)
    );
    // A target transform has nothing to transform in a clustering.
    p.edit(
        "pipeline.toml",
        "n_init = 10",
        "n_init = 10\ntarget_transform = \"log\"",
    );
    let (_, err) = p.fail(&["run", "pipeline.toml"]);
    assert!(err.contains("a clustering has no target to predict"), "{err}");
    p.edit("pipeline.toml", "\ntarget_transform = \"log\"", "");
    // A classification metric on a clustering is refused where it is written.
    p.edit(
        "pipeline.toml",
        "metrics = [\"inertia\"",
        "metrics = [\"accuracy\", \"inertia\"",
    );
    let (_, err) = p.fail(&["run", "pipeline.toml"]);
    assert!(
        err.contains("metric \"accuracy\" is a classification metric, but the task is clustering"),
        "{err}"
    );
}
