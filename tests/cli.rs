#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::float_cmp,
    clippy::many_single_char_names
)]

//! The `mlpipe` binary end to end, on the shipped house-price data, in throwaway folders.

use std::path::PathBuf;

use serde_json::Value;

mod common;
use common::{PIPELINE, Project, stage_outputs, stderr, stdout};

fn stage<'a>(run: &'a Value, name: &str) -> &'a Value {
    run["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap()
}

fn ran(run: &Value) -> Vec<String> {
    run["stages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["cached"] == false)
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn second_run_executes_nothing_and_prints_the_same_id() {
    let p = Project::new();
    let first = p.run(&[]);
    assert_eq!(first["run"].as_str().unwrap().len(), 64);
    assert_eq!(ran(&first).len(), 10);
    for m in ["rmse", "mae", "r2"] {
        assert!(first["metrics"][m].is_f64(), "metric {m}");
    }
    let second = p.run(&[]);
    assert_eq!(second["run"], first["run"]);
    assert!(ran(&second).is_empty(), "re-ran {:?}", ran(&second));
    assert_eq!(stage_outputs(&second), stage_outputs(&first));
}

#[test]
fn changing_one_step_reruns_that_stage_and_those_after_it() {
    let p = Project::new();
    let first = p.run(&[]);
    p.edit("pipeline.toml", "alpha = 10.0", "alpha = 3.0");
    let second = p.run(&[]);
    assert_eq!(ran(&second), ["train", "evaluate"]);
    assert_ne!(second["run"], first["run"]);
    p.edit("pipeline.toml", "tolerance = 0.01", "tolerance = 0.02");
    let third = p.run(&[]);
    assert_eq!(ran(&third), ["encode.rare", "encode.onehot", "train", "evaluate"]);
    assert_eq!(
        stage(&third, "encode.quality")["output"],
        stage(&first, "encode.quality")["output"]
    );
}

#[test]
fn run_until_a_stage_stores_the_stages_before_it_for_the_full_run() {
    let p = Project::new();
    let partial = p.run(&["--until", "encode.rare"]);
    assert_eq!(
        ran(&partial),
        [
            "gather",
            "split",
            "analyse",
            "impute.numeric",
            "impute.categorical",
            "encode.quality",
            "encode.rare"
        ]
    );
    assert!(
        partial.get("run").is_none() && partial.get("metrics").is_none(),
        "{partial}"
    );
    let log: Value = serde_json::from_slice(&p.mlpipe(&["log", "--json"]).stdout).unwrap();
    assert_eq!(log["runs"], serde_json::json!([]), "no run is recorded: {log}");
    let full = p.run(&[]);
    assert_eq!(ran(&full), ["encode.onehot", "train", "evaluate"]);
    assert_eq!(stage_outputs(&full)[..7], stage_outputs(&partial)[..]);
    let (code, err) = p.fail(&["run", "pipeline.toml", "--until", "encode.one_hot"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("has no stage named \"encode.one_hot\"")
            && err.contains("did you mean \"encode.onehot\"? (the stages: gather, split")
            && err.contains("encode.onehot, train, evaluate"),
        "{err}"
    );
}

#[test]
fn ids_are_identical_across_stores_and_thread_counts() {
    // The shipped pipeline in place, so the ids also cover this repository's commit.
    let p = Project::new();
    let one = p.mlpipe_env(
        &["run", PIPELINE, "--json", "--store", p.path("one").to_str().unwrap()],
        &[("POLARS_MAX_THREADS", "1"), ("RAYON_NUM_THREADS", "1")],
    );
    let many = p.mlpipe_env(
        &["run", PIPELINE, "--json", "--store", p.path("many").to_str().unwrap()],
        &[],
    );
    assert!(
        one.status.success() && many.status.success(),
        "{}{}",
        stderr(&one),
        stderr(&many)
    );
    let (a, b): (Value, Value) = (
        serde_json::from_slice(&one.stdout).unwrap(),
        serde_json::from_slice(&many.stdout).unwrap(),
    );
    assert_eq!(a["run"], b["run"]);
    assert_eq!(stage_outputs(&a), stage_outputs(&b));
    assert_eq!(a["metrics"], b["metrics"]);
    // And with a seeded random split, where the stage's ChaCha stream decides the rows.
    p.use_random_split();
    let one = p.mlpipe_env(
        &[
            "run",
            "pipeline.toml",
            "--json",
            "--store",
            p.path("r1").to_str().unwrap(),
        ],
        &[("POLARS_MAX_THREADS", "1"), ("RAYON_NUM_THREADS", "1")],
    );
    let many = p.mlpipe_env(
        &[
            "run",
            "pipeline.toml",
            "--json",
            "--store",
            p.path("r2").to_str().unwrap(),
        ],
        &[],
    );
    let (c, d): (Value, Value) = (
        serde_json::from_slice(&one.stdout).unwrap(),
        serde_json::from_slice(&many.stdout).unwrap(),
    );
    assert_eq!(c["run"], d["run"]);
    assert_eq!(stage_outputs(&c), stage_outputs(&d));
    assert_ne!(stage(&c, "split")["output"], stage(&a, "split")["output"]);
}

#[test]
fn reproduce_proves_a_run_after_its_data_file_is_gone() {
    let p = Project::new();
    let run = p.run(&[]);
    std::fs::remove_file(p.path("train.csv")).unwrap();
    let id = run["run"].as_str().unwrap();
    let out = p.mlpipe(&["reproduce", &id[..10]]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!("reproduced bit-for-bit: 10 artifacts (run {id})\n")
    );
}

#[test]
fn reproduce_names_the_first_stage_that_diverges() {
    let p = Project::new();
    let run = p.run(&[]);
    let id = run["run"].as_str().unwrap();
    // Forge the record: claim the rare-label stage produced other bytes.
    let shown: Value = serde_json::from_slice(&p.mlpipe(&["show", id, "--json"]).stdout).unwrap();
    let mut record = shown["content"].clone();
    let fake = "ab".repeat(32);
    let stages = record["stages"].as_array_mut().unwrap();
    let rare = stages.iter_mut().find(|s| s["name"] == "encode.rare").unwrap();
    let real = rare["output"].as_str().unwrap().to_string();
    rare["output"] = Value::String(fake.clone());
    let bytes = serde_json::to_vec(&record).unwrap();
    let rec_id = blake3::hash(&bytes).to_hex().to_string();
    let objects = p.store().join("v1/objects").join(&rec_id[..2]);
    std::fs::create_dir_all(&objects).unwrap();
    std::fs::write(objects.join(&rec_id[2..]), &bytes).unwrap();
    std::fs::write(p.store().join("v1/refs/runs").join(id), format!("{rec_id}\n")).unwrap();

    let out = p.mlpipe(&["reproduce", id]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        stdout(&out),
        format!(
            "NOT reproduced: run {id} first diverges at stage encode.rare\n  recorded   {fake}\n  reproduced {real}\n  6 earlier artifacts matched; recorded code: not in a git repository\n"
        )
    );
}

#[test]
fn seed_change_shows_in_diff_with_the_stages_it_changed() {
    let p = Project::new();
    p.use_random_split();
    let a = p.run(&[]);
    let b = p.run(&["--seed", "7"]);
    let out = p.mlpipe(&["diff", a["run"].as_str().unwrap(), b["run"].as_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "differences exit 1");
    let text = stdout(&out);
    assert!(text.contains("config\n  seed: 42 → 7\n"), "{text}");
    assert!(text.contains("seed     42 → 7\n"), "{text}");
    assert!(text.contains("data     same snapshot\n"), "{text}");
    assert!(text.contains("  gather                       same\n"), "{text}");
    assert!(text.contains("  split                        different\n"), "{text}");
    assert!(text.contains("  evaluate                     different\n"), "{text}");
    let json: Value = serde_json::from_slice(
        &p.mlpipe(&[
            "diff",
            "--json",
            &a["run"].as_str().unwrap()[..8],
            &b["run"].as_str().unwrap()[..8],
        ])
        .stdout,
    )
    .unwrap();
    assert_eq!(json["seed"]["old"], 42);
    assert_eq!(json["seed"]["new"], 7);
    let same = p.mlpipe(&["diff", a["run"].as_str().unwrap(), a["run"].as_str().unwrap()]);
    assert_eq!(same.status.code(), Some(0));
}

#[test]
fn diff_names_rows_and_cells_that_changed_in_the_data() {
    let p = Project::new();
    let a = p.run(&[]);
    // Id 2: LotArea 9600 → 9601; drop the row with Id 3.
    p.edit("train.csv", "2,20,RL,80,9600,", "2,20,RL,80,9601,");
    let text = std::fs::read_to_string(p.path("train.csv")).unwrap();
    let kept: Vec<&str> = text.lines().filter(|l| !l.starts_with("3,")).collect();
    std::fs::write(p.path("train.csv"), kept.join("\n") + "\n").unwrap();
    let b = p.run(&[]);
    let out = p.mlpipe(&["diff", "--json", a["run"].as_str().unwrap(), b["run"].as_str().unwrap()]);
    let d: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d["data"]["rows_matched_by"], "id column \"Id\"");
    assert_eq!(d["data"]["rows_removed"], 1);
    assert_eq!(d["data"]["rows_added"], 0);
    assert_eq!(d["data"]["cells_changed"], 1);
    assert_eq!(
        d["data"]["examples"][0],
        serde_json::json!({"row": "2", "column": "LotArea", "old": "9600", "new": "9601"})
    );
}

#[test]
fn predictions_are_byte_identical_and_replay_bit_for_bit() {
    let p = Project::new();
    let run = p.run(&[]);
    let id = run["run"].as_str().unwrap();
    let first = p.mlpipe(&["predict", id, "--input", "test.csv", "--output", "a.csv"]);
    assert!(first.status.success(), "{}", stderr(&first));
    let second = p.mlpipe(&["predict", id, "--input", "test.csv"]);
    assert!(second.status.success());
    let a = std::fs::read(p.path("a.csv")).unwrap();
    assert_eq!(a, second.stdout, "file and stdout output differ");
    let text = String::from_utf8(a).unwrap();
    assert!(
        text.starts_with("Id,prediction,model,prediction_id\n1461,"),
        "{}",
        &text[..40]
    );
    assert_eq!(text.lines().count(), 1460);
    let pred_id = stderr(&second)
        .lines()
        .find_map(|l| l.strip_prefix("prediction "))
        .unwrap()
        .to_string();
    assert!(
        text.contains(&format!(",{pred_id}/1458\n")),
        "rows carry <prediction>/<row>"
    );
    assert!(stdout(&first).contains(&pred_id), "same input, same prediction id");
    let replay = p.mlpipe(&["reproduce", &pred_id[..12]]);
    assert!(replay.status.success(), "{}", stderr(&replay));
    assert_eq!(
        stdout(&replay),
        format!("reproduced bit-for-bit: 1 artifact (prediction {pred_id})\n")
    );
}

#[test]
fn predict_rejects_bad_rows_with_column_and_line() {
    let p = Project::new();
    let id = p.run(&[])["run"].as_str().unwrap().to_string();
    p.edit("test.csv", "1461,20,RH,80,11622,", "1461,20,RH,80,big,");
    let (code, err) = p.fail(&["predict", &id, "--input", "test.csv"]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "error: column \"LotArea\" must be numeric, but line 2 of test.csv holds \"big\"\nhint: fix the value, or mark it missing with one of the pipeline's na_values\n"
    );
    std::fs::write(p.path("few.csv"), "Id,MSSubClass\n1,20\n").unwrap();
    let (_, err) = p.fail(&["predict", &id, "--input", "few.csv"]);
    assert!(
        err.starts_with("error: column \"MSZoning\" is missing from few.csv; the fitted pipeline needs it\n"),
        "{err}"
    );
}

#[test]
fn unseen_category_error_names_column_value_and_line() {
    let p = Project::new();
    let id = p.run(&[])["run"].as_str().unwrap().to_string();
    // KitchenQual goes through an explicit ordinal scale that does not know "Superb".
    let text = std::fs::read_to_string(p.path("test.csv")).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    let col = header.iter().position(|h| *h == "KitchenQual").unwrap();
    let mut fields: Vec<String> = lines[1].split(',').map(str::to_string).collect();
    fields[col] = "Superb".into();
    lines[1] = fields.join(",");
    std::fs::write(p.path("test.csv"), lines.join("\n") + "\n").unwrap();
    let (_, err) = p.fail(&["predict", &id, "--input", "test.csv"]);
    assert!(
        err.starts_with("error: unseen category \"Superb\" in column \"KitchenQual\" (line 2 of test.csv); ordinal learned 6 categories on train\n"),
        "{err}"
    );
}

fn assert_store_clean(p: &Project) {
    let tmp = p.store().join("v1/tmp");
    if tmp.exists() {
        assert_eq!(
            std::fs::read_dir(&tmp).unwrap().count(),
            0,
            "half-written files left in the store"
        );
    }
    if p.store().exists() {
        let out = p.mlpipe(&["verify"]);
        assert!(out.status.success(), "{}", stdout(&out));
    }
}

#[test]
fn malformed_toml_is_located() {
    let p = Project::new();
    p.edit("pipeline.toml", "seed = 42", "seed = 42 43");
    let (code, err) = p.fail(&["run", "pipeline.toml"]);
    assert_eq!(code, 1);
    assert!(err.starts_with("error: pipeline.toml is not valid TOML: "), "{err}");
    assert!(
        err.contains("\n --> pipeline.toml:6:8\n  |\n6 | seed = 42 43\n  |        ^^^^^\n"),
        "{err}"
    );
    assert_store_clean(&p);
}

#[test]
fn unknown_key_gets_a_suggestion() {
    let p = Project::new();
    p.edit("pipeline.toml", "alpha = 10.0", "alpah = 10.0");
    let (_, err) = p.fail(&["run", "pipeline.toml"]);
    assert_eq!(
        err,
        "error: unknown key `alpah` in [train] (expected one of: estimator, target_transform, alpha, fit_intercept)\n  --> pipeline.toml:63:1\n   |\n63 | alpah = 10.0\n   | ^^^^^\nhint: did you mean \"alpha\"?\n"
    );
}

#[test]
fn unknown_operator_is_located() {
    let p = Project::new();
    p.edit("pipeline.toml", "operator = \"median\"", "operator = \"medain\"");
    let (_, err) = p.fail(&["run", "pipeline.toml"]);
    assert!(
        err.starts_with("error: unknown operator \"medain\" in [[impute]]"),
        "{err}"
    );
    assert!(err.contains("--> pipeline.toml:30:12"), "{err}");
    assert!(err.ends_with("hint: did you mean \"median\"?\n"), "{err}");
}

#[test]
fn unknown_column_points_at_its_name_in_the_pipeline() {
    let p = Project::new();
    p.edit(
        "pipeline.toml",
        "columns = [\"ExterQual\",",
        "columns = [\"ExterQaul\",",
    );
    let (code, err) = p.fail(&["run", "pipeline.toml"]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "error: column \"ExterQaul\" is not in train.csv (stage encode.quality)\n  --> pipeline.toml:44:12\n   |\n44 | columns = [\"ExterQaul\", \"ExterCond\", \"BsmtQual\", \"BsmtCond\", \"HeatingQC\", \"KitchenQual\",\n   |            ^^^^^^^^^^^\nhint: did you mean \"ExterQual\"?\n"
    );
    assert_store_clean(&p);
}

#[test]
fn missing_target_column_is_located() {
    let p = Project::new();
    p.edit("pipeline.toml", "target = \"SalePrice\"", "target = \"Price\"");
    let (_, err) = p.fail(&["run", "pipeline.toml"]);
    assert!(
        err.starts_with("error: column \"Price\" is not in train.csv (stage gather)\n --> pipeline.toml:7:10\n"),
        "{err}"
    );
}

#[test]
fn text_column_in_a_numeric_step_is_explained() {
    let p = Project::new();
    p.edit(
        "pipeline.toml",
        "columns = \"numeric\"\nadd_indicator",
        "columns = [\"LotFrontage\", \"MSZoning\"]\nadd_indicator",
    );
    let (_, err) = p.fail(&["run", "pipeline.toml"]);
    assert!(
        err.starts_with("error: column \"MSZoning\" is text (categorical), but the median operator in step impute.numeric needs numeric columns (stage impute.numeric)\n  --> pipeline.toml:31:27\n"),
        "{err}"
    );
    assert!(
        err.contains("hint: use most_frequent or constant for text columns"),
        "{err}"
    );
}

#[test]
fn empty_train_split_is_an_error() {
    let p = Project::new();
    p.edit("pipeline.toml", "test_from = 2010", "test_from = 2000");
    let (_, err) = p.fail(&["run", "pipeline.toml"]);
    assert!(
        err.starts_with("error: the split leaves no train rows (of 1460) (stage split)\n  --> pipeline.toml:22:10\n"),
        "{err}"
    );
    assert_store_clean(&p);
}

#[test]
fn missing_data_file_is_named() {
    let p = Project::new();
    std::fs::remove_file(p.path("train.csv")).unwrap();
    let (_, err) = p.fail(&["run", "pipeline.toml"]);
    assert_eq!(
        err,
        "error: cannot read the data file train.csv named by [gather] source: No such file or directory (os error 2)\nhint: fix `source` in [gather]; relative paths start at the pipeline file's folder\n"
    );
}

fn object_path(p: &Project, id: &str) -> PathBuf {
    p.store().join("v1/objects").join(&id[..2]).join(&id[2..])
}

#[test]
fn corrupted_object_is_found_by_verify_and_recomputed_by_run() {
    let p = Project::new();
    let run = p.run(&[]);
    let train = stage(&run, "train")["output"].as_str().unwrap().to_string();
    let path = object_path(&p, &train);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[10] ^= 1;
    std::fs::write(&path, &bytes).unwrap();

    let out = p.mlpipe(&["verify"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains(&format!("  {train}: corrupt: its bytes hash to ")),
        "{}",
        stdout(&out)
    );

    let (_, err) = p.fail(&["show", &train]);
    assert!(
        err.starts_with(&format!("error: store object {train} is corrupt")),
        "{err}"
    );
    assert!(err.contains("hint: run `mlpipe verify`"), "{err}");

    let again = p.mlpipe(&["run", "pipeline.toml", "--json"]);
    assert!(again.status.success());
    assert!(
        stderr(&again).contains("warning: cached output of train is unusable"),
        "{}",
        stderr(&again)
    );
    let again: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(again["run"], run["run"]);
    assert_eq!(ran(&again), ["train"]);
    assert!(p.mlpipe(&["verify"]).status.success(), "run repaired the object");
}

#[test]
fn truncated_snapshot_is_detected_and_reproduce_refuses_it() {
    let p = Project::new();
    let run = p.run(&[]);
    let snapshot = run_snapshot(&p, run["run"].as_str().unwrap());
    let path = object_path(&p, &snapshot);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let out = p.mlpipe(&["verify"]);
    assert_eq!(out.status.code(), Some(1));
    let (code, err) = p.fail(&["reproduce", run["run"].as_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with(&format!("error: store object {snapshot} is corrupt")),
        "{err}"
    );
}

fn run_snapshot(p: &Project, run: &str) -> String {
    let shown: Value = serde_json::from_slice(&p.mlpipe(&["show", run, "--json"]).stdout).unwrap();
    shown["content"]["snapshot"].as_str().unwrap().to_string()
}

#[test]
fn unknown_and_ambiguous_prefixes_are_explained() {
    let p = Project::new();
    p.run(&[]);
    let (code, err) = p.fail(&["show", "ffffffffff"]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "error: no run, prediction or object in [ROOT]/artifacts starts with \"ffffffffff\"\nhint: list runs with `mlpipe log`; check --store / MLPIPE_STORE\n"
    );
    let (_, err) = p.fail(&["show", "xyz!"]);
    assert!(err.starts_with("error: \"xyz!\" is not a hash or hash prefix"), "{err}");
    // Among ~30 objects, some pair shares its first character: a one-character prefix is refused,
    // and a 4-character prefix shared by two ids is ambiguous.
    let mut ids: Vec<String> = Vec::new();
    for d in std::fs::read_dir(p.store().join("v1/objects")).unwrap() {
        let d = d.unwrap();
        for f in std::fs::read_dir(d.path()).unwrap() {
            ids.push(format!(
                "{}{}",
                d.file_name().to_string_lossy(),
                f.unwrap().file_name().to_string_lossy()
            ));
        }
    }
    // Make an ambiguity for sure: two objects whose ids share 4 characters.
    let target = &ids[0][..4];
    let mut n = 0u64;
    loop {
        let body = format!("filler {n}");
        let id = blake3::hash(body.as_bytes()).to_hex().to_string();
        if id.starts_with(&target[..2]) && id[..4] == *target {
            std::fs::write(object_path(&p, &id), body).unwrap();
            break;
        }
        n += 1;
    }
    let (_, err) = p.fail(&["show", target]);
    assert!(
        err.starts_with(&format!("error: \"{target}\" is ambiguous: 2 ids start with it")),
        "{err}"
    );
    assert!(err.ends_with("hint: give more characters of the hash\n"), "{err}");
}

#[test]
fn gc_keeps_what_runs_reference_and_removes_the_rest() {
    let p = Project::new();
    let run = p.run(&[]);
    let orphan = blake3::hash(b"orphan").to_hex().to_string();
    std::fs::create_dir_all(object_path(&p, &orphan).parent().unwrap()).unwrap();
    std::fs::write(object_path(&p, &orphan), b"orphan").unwrap();
    let out = p.mlpipe(&["gc", "--json"]);
    assert!(out.status.success());
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["removed"], 1);
    assert!(!object_path(&p, &orphan).exists());
    let again = p.run(&[]);
    assert!(ran(&again).is_empty(), "gc removed something the run needs");
    assert_eq!(again["run"], run["run"]);
    let reproduce = p.mlpipe(&["reproduce", run["run"].as_str().unwrap()]);
    assert!(reproduce.status.success());
}

#[test]
fn log_and_show_describe_runs_and_objects() {
    let p = Project::new();
    let a = p.run(&[]);
    let b = p.run(&["--seed", "1"]);
    let log = stdout(&p.mlpipe(&["log"]));
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 2);
    for l in &lines {
        assert!(l.contains("house-prices") && l.contains("rmse "), "{l}");
    }
    let ids: Vec<&str> = lines.iter().map(|l| &l[..12]).collect();
    assert!(ids.contains(&&a["run"].as_str().unwrap()[..12]) && ids.contains(&&b["run"].as_str().unwrap()[..12]));

    let snapshot = run_snapshot(&p, a["run"].as_str().unwrap());
    let shown = stdout(&p.mlpipe(&["show", &snapshot[..12]]));
    assert!(
        shown.starts_with(&format!(
            "data {snapshot}\n460676 bytes; first lines:\n  Id,MSSubClass,"
        )),
        "{shown}"
    );
    let imp = stage(&a, "impute.numeric")["output"].as_str().unwrap();
    let shown: Value = serde_json::from_slice(&p.mlpipe(&["show", imp, "--json"]).stdout).unwrap();
    assert_eq!(shown["kind"], "stage-output");
    assert_eq!(shown["content"]["state"]["operator"], "impute");
    assert_eq!(shown["content"]["state"]["fills"][0]["column"], "LotFrontage");
}

#[test]
fn predict_reads_new_rows_without_the_target_when_gather_lists_columns() {
    // Regression: a [gather] columns list that names the target made predict demand it.
    let p = Project::new();
    p.edit(
        "pipeline.toml",
        "id_column = \"Id\"",
        "id_column = \"Id\"\ncolumns = [\"Id\", \"SalePrice\", \"LotArea\", \"OverallQual\", \"YrSold\"]",
    );
    // A type for a column left unread is refused (at its key), so it goes too.
    p.edit("pipeline.toml", "dtypes = { MSSubClass = \"categorical\" }\n", "");
    let text = std::fs::read_to_string(p.path("pipeline.toml")).unwrap();
    let start = text.find("[[impute]]").unwrap();
    let end = text.find("[train]").unwrap();
    std::fs::write(p.path("pipeline.toml"), format!("{}{}", &text[..start], &text[end..])).unwrap();
    let id = p.run(&[])["run"].as_str().unwrap().to_string();
    let out = p.mlpipe(&["predict", &id, "--input", "test.csv"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), 1460);
}

#[test]
fn grid_search_is_recorded_shown_and_diffed() {
    let p = Project::new();
    p.edit(
        "pipeline.toml",
        "[evaluate]",
        "[grid]\nalpha = [0.5, 10.0]\n\n[cv]\nfolds = 3\nmetric = \"rmse\"\n\n[evaluate]",
    );
    let first = p.run(&[]);
    let train = stage(&first, "train")["output"].as_str().unwrap().to_string();
    let shown = stdout(&p.mlpipe(&["show", &train]));
    assert!(
        shown.contains("3-fold cross-validation on the train rows, rmse"),
        "{shown}"
    );
    assert_eq!(shown.matches("← chosen").count(), 1, "{shown}");
    p.edit("pipeline.toml", "alpha = [0.5, 10.0]", "alpha = [0.5]");
    let second = p.run(&[]);
    let diff = p.mlpipe(&["diff", first["run"].as_str().unwrap(), second["run"].as_str().unwrap()]);
    let text = stdout(&diff);
    assert!(text.contains("chosen   alpha = 10.0 → alpha = 0.5"), "{text}");
    // A grid without [cv] cannot choose: an error that says what to add.
    p.edit("pipeline.toml", "[cv]\nfolds = 3\nmetric = \"rmse\"\n", "");
    let (code, err) = p.fail(&["run", "pipeline.toml"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no [cv] to score the candidates"), "{err}");
    // A parameter the estimator does not take is located.
    p.edit("pipeline.toml", "[grid]\nalpha", "[grid]\nalhpa");
    let (_, err) = p.fail(&["run", "pipeline.toml"]);
    assert!(
        err.contains("[grid] varies `alhpa`") && err.contains("pipeline.toml:"),
        "{err}"
    );
}

/// The first `n` lines of the project's test.csv (its header and `n - 1` rows), `\n`-terminated.
fn test_csv_head(p: &Project, n: usize) -> String {
    let text = std::fs::read_to_string(p.path("test.csv")).unwrap();
    text.lines().take(n).flat_map(|l| [l, "\n"]).collect()
}

/// The `prediction` column of a CSV written by predict.
fn prediction_column(csv: &str) -> Vec<String> {
    csv.lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().to_string())
        .collect()
}

#[test]
fn predict_from_the_first_rows_of_the_shipped_test_csv_succeeds() {
    // Regression (#23): in `head -3 test.csv` "Alley" is NA in both rows, so the reader took it for a
    // numeric column although the fitted schema says categorical, and predict exited 101.
    let p = Project::new();
    let id = p.run(&[])["run"].as_str().unwrap().to_string();
    std::fs::write(p.path("head3.csv"), test_csv_head(&p, 3)).unwrap();
    let out = p.mlpipe(&["predict", &id, "--input", "head3.csv"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let full = p.mlpipe(&["predict", &id, "--input", "test.csv"]);
    assert!(full.status.success(), "{}", stderr(&full));
    let (head, all) = (prediction_column(&stdout(&out)), prediction_column(&stdout(&full)));
    assert_eq!(head, all[..2], "the same rows predict the same values in a small batch");
}

#[test]
fn csv_errors_in_a_crlf_file_name_the_line_an_editor_shows() {
    let p = Project::new();
    let id = p.run(&[])["run"].as_str().unwrap().to_string();
    let crlf = test_csv_head(&p, 4).replace('\n', "\r\n");
    std::fs::write(p.path("crlf.csv"), &crlf).unwrap();
    let out = p.mlpipe(&["predict", &id, "--input", "crlf.csv"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        prediction_column(&stdout(&out)),
        prediction_column(&stdout(&p.mlpipe(&["predict", &id, "--input", "test.csv"])))[..3]
    );
    // Row 3 (file line 4) gets a word where LotArea needs a number.
    let lines: Vec<&str> = crlf.split("\r\n").collect();
    let bad = lines[3].replacen(",13830,", ",big,", 1);
    assert_ne!(bad, lines[3], "line 4 of test.csv has LotArea 13830");
    std::fs::write(p.path("crlf.csv"), crlf.replace(lines[3], &bad)).unwrap();
    let (code, err) = p.fail(&["predict", &id, "--input", "crlf.csv"]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "error: column \"LotArea\" must be numeric, but line 4 of crlf.csv holds \"big\"\nhint: fix the value, or mark it missing with one of the pipeline's na_values\n"
    );
}

#[test]
fn predict_refuses_an_output_inside_the_store_and_the_ledger_keeps_its_rows() {
    // Regression (#23): `-o artifacts/ledger.sqlite --output-format csv` replaced the ledger.
    let p = Project::new();
    let id = p.run(&[])["run"].as_str().unwrap().to_string();
    let ok = p.mlpipe(&["predict", &id, "--input", "test.csv", "-o", "a.csv"]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    let ledger_before = std::fs::read(p.store().join("ledger.sqlite")).unwrap();
    let hint = "hint: write it outside [ROOT]/artifacts, the store's folder (e.g. in the project folder)\n";
    let (code, err) = p.fail(&[
        "predict",
        &id,
        "--input",
        "test.csv",
        "-o",
        "artifacts/ledger.sqlite",
        "--output-format",
        "csv",
    ]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        format!(
            "error: --output artifacts/ledger.sqlite lies inside the store [ROOT]/artifacts; mlpipe never writes an output there, as it would replace the store's own files\n{hint}"
        )
    );
    // Through a link to the store folder, into the ledger as a SQLite table, and the other outputs.
    std::os::unix::fs::symlink(p.store(), p.path("out")).unwrap();
    let (_, err) = p.fail(&["predict", &id, "--input", "test.csv", "-o", "out/x.csv"]);
    assert_eq!(
        err,
        format!(
            "error: --output out/x.csv lies inside the store [ROOT]/artifacts (through links it is [ROOT]/artifacts/x.csv); mlpipe never writes an output there, as it would replace the store's own files\n{hint}"
        )
    );
    let (_, err) = p.fail(&[
        "predict",
        &id,
        "--input",
        "test.csv",
        "-o",
        "sqlite:artifacts/ledger.sqlite",
        "--table",
        "scores",
    ]);
    assert!(
        err.starts_with("error: the SQLite output artifacts/ledger.sqlite lies inside the store"),
        "{err}"
    );
    let (_, err) = p.fail(&["report", &id, "-o", "artifacts/report.html"]);
    assert!(
        err.starts_with("error: the report artifacts/report.html lies inside the store"),
        "{err}"
    );
    let (_, err) = p.fail(&["export", &id, "-o", "out/v1/model.onnx"]);
    assert!(
        err.starts_with("error: the exported file out/v1/model.onnx lies inside the store"),
        "{err}"
    );
    let (_, err) = p.fail(&["snapshot", "train.csv", "--export", "artifacts/v1/lock"]);
    assert!(
        err.starts_with("error: --export artifacts/v1/lock lies inside the store"),
        "{err}"
    );
    // Nothing in the store was touched: the ledger is byte for byte what it was, with its one batch.
    assert_eq!(std::fs::read(p.store().join("ledger.sqlite")).unwrap(), ledger_before);
    let entries: Value = serde_json::from_slice(&p.mlpipe(&["ledger", "--json"]).stdout).unwrap();
    assert_eq!(entries.as_array().unwrap().len(), 1);
    assert!(!p.store().join("x.csv").exists() && !p.store().join("report.html").exists());
}

#[test]
fn a_temp_file_left_by_a_killed_predict_is_removed_by_the_next_write() {
    // A predict killed while writing its output (here by SIGXFSZ: a file-size limit below the output's
    // size) leaves a temp file beside the output; the next write into that folder removes it.
    let p = Project::new();
    let id = p.run(&[])["run"].as_str().unwrap().to_string();
    // Once first, so the store already holds the input, output and record (they are larger than the limit).
    let first = p.mlpipe(&["predict", &id, "--input", "test.csv", "-o", "first.csv"]);
    assert!(first.status.success(), "{}", stderr(&first));
    let size = std::fs::metadata(p.path("first.csv")).unwrap().len();
    std::fs::create_dir(p.path("out")).unwrap();
    let killed = std::process::Command::new("prlimit")
        .arg(format!("--fsize={}", size / 2))
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_mlpipe"))
        .args(["predict", &id, "--input", "test.csv", "-o", "out/predictions.csv"])
        .current_dir(p.dir.path())
        .env("MLPIPE_STORE", p.store())
        .status()
        .unwrap();
    assert!(!killed.success(), "the size limit should have stopped the write");
    let left = || -> Vec<String> {
        std::fs::read_dir(p.path("out"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    let temps = left();
    assert_eq!(temps.len(), 1, "{temps:?}");
    assert!(temps[0].starts_with(".mlpipe-tmp-predictions.csv."), "{temps:?}");
    let out = p.mlpipe(&["predict", &id, "--input", "test.csv", "-o", "out/predictions.csv"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(left(), ["predictions.csv"]);
    assert_eq!(std::fs::metadata(p.path("out/predictions.csv")).unwrap().len(), size);
}

#[test]
fn an_output_over_the_ledger_in_use_or_through_a_sqlite_uri_is_refused_and_no_password_is_echoed() {
    let p = Project::new();
    let run = p.run(&[]);
    let id = run["run"].as_str().unwrap();
    // An external ledger: a predict fills it, a second one may not write its output over it.
    let ledger = ["--ledger", "sqlite:ext/l.sqlite"];
    let out = p.mlpipe(&[&["predict", id, "--input", "test.csv", "-o", "p.csv"][..], &ledger[..]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let before = std::fs::read(p.path("ext/l.sqlite")).unwrap();
    let args = [
        "predict",
        id,
        "--input",
        "test.csv",
        "-o",
        "ext/l.sqlite",
        "--output-format",
        "csv",
    ];
    let (code, err) = p.fail(&[&args[..], &ledger[..]].concat());
    assert_eq!(code, 1, "{err}");
    assert!(
        err.starts_with(
            "error: --output ext/l.sqlite is the ledger ext/l.sqlite; mlpipe never writes an output over the \
             ledger it records in, as that would destroy its entries"
        ),
        "{err}"
    );
    assert_eq!(std::fs::read(p.path("ext/l.sqlite")).unwrap(), before);
    // `sqlite:file:…` is a plain path (a folder named `file:artifacts`), never a URI into the store.
    let out = p.mlpipe(&[
        "predict",
        id,
        "--input",
        "test.csv",
        "-o",
        "sqlite:file:artifacts/ledger.sqlite",
        "--table",
        "preds",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(p.path("file:artifacts/ledger.sqlite").is_file());
    let tables: Vec<String> = rusqlite::Connection::open(p.store().join("ledger.sqlite"))
        .unwrap()
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(!tables.contains(&"preds".to_string()), "{tables:?}");
    // A password given where a file or a hash belongs is never printed.
    let url = "postgres://etl:S3cretPW@127.0.0.1:1/db";
    for args in [
        &["predict", id, "--input", url, "-o", "q.csv"][..],
        &["show", url][..],
        &["diff", url, id][..],
    ] {
        let (_, err) = p.fail(args);
        assert!(!err.contains("S3cretPW"), "{err}");
        assert!(err.contains("postgres://etl:***@127.0.0.1:1/db"), "{err}");
    }
}

#[test]
fn usage_slips_in_predict_serve_and_run_are_refused_before_any_work() {
    let p = Project::new();
    let (code, err) = p.fail(&["predict", "abcd", "--max-line", "100"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.starts_with("error: --max-line needs --stream (it limits a stream's lines)"),
        "{err}"
    );
    std::fs::write(p.path("tok"), "t0ken\n").unwrap();
    let (code, err) = p.fail(&["serve", "abcd", "--token-file", "tok", "--token", "x"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("give one of --token, --token-file"), "{err}");
    let (code, err) = p.fail(&["serve", "abcd", "--allow-anonymous"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.starts_with("error: --allow-anonymous is only for --public"),
        "{err}"
    );
    let (code, err) = p.fail(&["serve", "abcd", "--public", "--allow-anonymous", "--token-file", "tok"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.starts_with("error: --allow-anonymous serves without a token, but a token is given"),
        "{err}"
    );
    // A CI report inside the store is refused before a single stage runs.
    let (code, err) = p.fail(&["run", "pipeline.toml", "--junit", "artifacts/j.xml"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.starts_with("error: the CI report artifacts/j.xml lies inside the store"),
        "{err}"
    );
    let runs = p.store().join("v1/refs/runs");
    assert!(!runs.exists() || std::fs::read_dir(&runs).unwrap().next().is_none());
}

/// The expression step of docs/pipeline-format.md, before `[train]`.
const EXPRESSIONS: &str = "[[transform]]\nname = \"derived\"\noperator = \"expression\"\nfeatures = [\n    \
    \"GrLivArea / TotRmsAbvGrd AS area_per_room\",\n    \"YrSold - YearBuilt AS age\",\n    \
    \"CASE WHEN PoolArea > 0 THEN 1 ELSE 0 END AS has_pool\",\n    \
    \"COALESCE(LotFrontage, 0) * 2 AS frontage2\",\n    \
    \"GREATEST(TotalBsmtSF, 1stFlrSF) >= 1000 AND OverallQual NOT BETWEEN 1 AND 3 AS big_good\",\n]\n\n[train]";

#[test]
fn expression_features_give_the_same_bits_on_1_2_and_8_threads_and_replay() {
    let p = Project::new();
    p.use_random_split();
    p.edit("pipeline.toml", "[train]", EXPRESSIONS);
    same_bits_on_1_2_and_8_threads(&p);
    // The new columns reach the model, and new rows get them too: predict, then replay it.
    let run = p.run(&[]);
    assert!(ran(&run).contains(&"transform.derived".to_string()), "{run}");
    let out = p.mlpipe(&[
        "predict",
        run["run"].as_str().unwrap(),
        "--input",
        "test.csv",
        "-o",
        "out.csv",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let prediction: Value = serde_json::from_slice(&out.stdout).unwrap();
    let out = p.mlpipe(&["reproduce", prediction["prediction"].as_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Changing a feature's text reruns the step (its text is in the stage key).
    p.edit(
        "pipeline.toml",
        "YrSold - YearBuilt AS age",
        "YrSold - YearRemodAdd AS age",
    );
    assert!(ran(&p.run(&[])).contains(&"transform.derived".to_string()));
}

#[test]
fn expression_errors_point_into_the_feature() {
    let p = Project::new();
    p.edit(
        "pipeline.toml",
        "[train]",
        "[[transform]]\noperator = \"expression\"\nfeatures = [\"LotArea / AVG(LotArea) AS share\"]\n\n[train]",
    );
    let (code, err) = p.fail(&["run", "pipeline.toml"]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("error: in \"LotArea / AVG(LotArea) AS share\": AVG looks at other rows"),
        "{err}"
    );
    // The caret stands under AVG.
    let caret = err
        .lines()
        .find(|l| l.trim_start().starts_with('|') && l.contains('^'))
        .unwrap();
    let line = err.lines().find(|l| l.contains("features = [")).unwrap();
    let col = caret.find('^').unwrap();
    assert_eq!(&line[col..col + 3], "AVG", "{err}");
    assert!(
        err.contains("hint: statistics learned on train come from fitted steps"),
        "{err}"
    );
    // Types are checked on train, naming the feature, at its line.
    p.edit(
        "pipeline.toml",
        "LotArea / AVG(LotArea) AS share",
        "SalePrice * 2 AS leak",
    );
    let (_, err) = p.fail(&["run", "pipeline.toml"]);
    assert!(
        err.contains("\"SalePrice\", which is the target"),
        "the target cannot feed a feature: {err}"
    );
    assert!(err.contains("hint: features are computed from features only"), "{err}");
    p.edit(
        "pipeline.toml",
        "SalePrice * 2 AS leak",
        "LotArea + YearBuilt AS LotArea",
    );
    let (_, err) = p.fail(&["run", "pipeline.toml"]);
    assert!(
        err.contains("the new column \"LotArea\" already exists") && err.contains("pipeline.toml:"),
        "{err}"
    );
    assert_store_clean(&p);
}

#[test]
fn changing_the_id_column_or_target_reruns_every_step_it_decides() {
    // The id column is never a feature: dropping it from [gather] puts it into `columns = "numeric"`,
    // so the imputer and everything after it must be fitted again, not taken from the cache.
    let p = Project::new();
    p.run(&[]);
    p.edit("pipeline.toml", "id_column = \"Id\"\n", "");
    let again = p.run(&[]);
    for stage in ["impute.numeric", "encode.onehot", "train"] {
        assert!(ran(&again).contains(&stage.to_string()), "{stage} was reused: {again}");
    }
    // And that run reproduces.
    let out = p.mlpipe(&["reproduce", again["run"].as_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_large_table_gives_the_same_bits_on_1_2_and_8_threads() {
    // 50 copies of the house rows (73,000 rows): the CSV is read in pieces, rows are taken in blocks and
    // columns digested a few at a time on every core, so thread scheduling has room to show.
    let p = Project::new();
    p.use_random_split();
    let text = std::fs::read_to_string(p.path("train.csv")).unwrap();
    let (header, body) = text.split_once('\n').unwrap();
    let mut big = format!("{header}\n");
    for _ in 0..50 {
        big.push_str(body);
    }
    std::fs::write(p.path("train.csv"), big).unwrap();
    same_bits_on_1_2_and_8_threads(&p);
}

#[test]
fn data_with_no_rows_is_refused_by_gather_naming_the_file() {
    let p = Project::new();
    let header = std::fs::read_to_string(p.path("train.csv"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    std::fs::write(p.path("train.csv"), format!("{header}\n")).unwrap();
    let (code, err) = p.fail(&["run", "pipeline.toml"]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("error: train.csv has no rows to train on (only its columns) (stage gather)"),
        "{err}"
    );
}

#[test]
fn a_stray_marker_in_a_numeric_column_is_warned_about_with_its_line() {
    let p = Project::new();
    let text = std::fs::read_to_string(p.path("train.csv")).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let at = lines[0].split(',').position(|c| c == "LotArea").unwrap();
    for line in [6, 40] {
        let mut cells: Vec<&str> = lines[line - 1].split(',').collect();
        cells[at] = "?";
        lines[line - 1] = cells.join(",");
    }
    std::fs::write(p.path("train.csv"), lines.join("\n") + "\n").unwrap();
    let out = p.mlpipe(&["run", "pipeline.toml"]);
    // A second run (every stage cached) says it again, and --json lists it.
    let again = p.run(&[]);
    let warnings = again["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{again}");
    assert!(
        warnings[0].as_str().unwrap().contains("\"?\" on line 6 and 1 more row"),
        "{again}"
    );
    let out2 = p.mlpipe(&["run", "pipeline.toml"]);
    assert!(
        stderr(&out2).contains("warning: column \"LotArea\""),
        "{}",
        stderr(&out2)
    );
    let err = stderr(&out);
    assert!(
        err.contains("warning: column \"LotArea\" of train.csv is read as text because of \"?\" on line 6 and 1 more row, though its other 1458 values are numbers;"),
        "{err}"
    );
}

#[test]
fn a_file_read_in_pieces_with_text_in_its_last_piece_reads_as_one_read_would() {
    // ~9 MB: read in several pieces, the last read first and its bytes let go; the stray text in its
    // last row makes a column text whose earlier pieces were typed numeric, so gather reads the snapshot
    // again from the store. `reproduce` reads it whole, without letting anything go: same artifacts.
    let p = Project::new();
    let text = std::fs::read_to_string(p.path("train.csv")).unwrap();
    let (header, rows) = text.split_once('\n').unwrap();
    let at = header.split(',').position(|c| c == "LotArea").unwrap();
    let mut lines = vec![header.to_string()];
    for _ in 0..20 {
        lines.extend(rows.lines().map(str::to_string));
    }
    let last = lines.len() - 1;
    let mut cells: Vec<&str> = lines[last].split(',').collect();
    cells[at] = "?";
    lines[last] = cells.join(",");
    std::fs::write(p.path("train.csv"), lines.join("\n") + "\n").unwrap();
    let out = p.mlpipe(&["run", "pipeline.toml", "--json"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains(&format!("\"?\" on line {}", last + 1)), "{err}");
    let run: Value = serde_json::from_slice(&out.stdout).unwrap();
    let reproduced = p.mlpipe(&["reproduce", run["run"].as_str().unwrap()]);
    assert!(
        stdout(&reproduced).starts_with("reproduced bit-for-bit: 10 artifacts"),
        "{}{}",
        stdout(&reproduced),
        stderr(&reproduced)
    );
}

#[test]
fn linear_regression_on_a_design_with_a_total_beside_its_parts_names_the_total() {
    let p = Project::new();
    p.set_train("estimator = \"linear_regression\"\ntarget_transform = \"log\"");
    let (code, err) = p.fail(&["run", "pipeline.toml"]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("error: linear_regression cannot be fitted: in the train rows, feature `TotalBsmtSF` = 1·BsmtFinSF1 + 1·BsmtFinSF2 + 1·BsmtUnfSF + a constant (to rounding)"),
        "{err}"
    );
    // Nothing half-written: no run was recorded.
    assert!(std::fs::read_dir(p.store().join("v1/refs/runs")).map_or(0, Iterator::count) == 0);
}

#[test]
fn a_column_that_gather_columns_leaves_unread_is_named_as_such() {
    let p = Project::new();
    let header = std::fs::read_to_string(p.path("train.csv"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    let kept: Vec<String> = header
        .split(',')
        .filter(|c| *c != "ExterQual")
        .map(|c| format!("\"{c}\""))
        .collect();
    p.edit(
        "pipeline.toml",
        "id_column = \"Id\"",
        &format!("id_column = \"Id\"\ncolumns = [{}]", kept.join(", ")),
    );
    let (code, err) = p.fail(&["run", "pipeline.toml"]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("error: column \"ExterQual\" is not in train.csv (stage encode.quality)"),
        "{err}"
    );
    assert!(
        err.contains("hint: `[gather] columns` does not read \"ExterQual\": add it there"),
        "{err}"
    );
}

#[test]
fn a_tree_whose_node_variances_overflow_is_refused_not_stored_unreadable() {
    let p = Project::new();
    let rows: Vec<String> = (0..60).map(|i| format!("{i},{:e}", 1e200 * f64::from(i))).collect();
    let csv = format!("x,y\n{}\n", rows.join("\n"));
    std::fs::write(p.path("big.csv"), csv).unwrap();
    std::fs::write(
        p.path("big.toml"),
        "[pipeline]\nname = \"big\"\nseed = 1\ntarget = \"y\"\ntask = \"regression\"\n\n[gather]\nsource = \"big.csv\"\n\n\
         [split]\nmethod = \"random\"\ntest_fraction = 0.25\n\n[train]\nestimator = \"decision_tree\"\n\n\
         [evaluate]\nmetrics = [\"mae\"]\n",
    )
    .unwrap();
    let (code, err) = p.fail(&["run", "big.toml"]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("error: what this stage learned holds a number that is not finite")
            && err.contains("(stage train)"),
        "{err}"
    );
    // The stages before it are stored; no run is recorded, and the store verifies clean.
    assert!(std::fs::read_dir(p.store().join("v1/refs/runs")).map_or(0, Iterator::count) == 0);
    let out = p.mlpipe(&["verify"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// Runs the project's pipeline on 1, 2 and 8 threads (a store each) and checks the run id, every stage
/// output and the metrics agree.
fn same_bits_on_1_2_and_8_threads(p: &Project) {
    let runs: Vec<Value> = ["1", "2", "8"]
        .iter()
        .map(|threads| {
            let store = p.path(&format!("store-{threads}"));
            let out = p.mlpipe_env(
                &["run", "pipeline.toml", "--json", "--store", store.to_str().unwrap()],
                &[("POLARS_MAX_THREADS", threads), ("RAYON_NUM_THREADS", threads)],
            );
            assert!(out.status.success(), "{}", stderr(&out));
            serde_json::from_slice(&out.stdout).unwrap()
        })
        .collect();
    for r in &runs[1..] {
        assert_eq!(r["run"], runs[0]["run"]);
        assert_eq!(stage_outputs(r), stage_outputs(&runs[0]));
        assert_eq!(r["metrics"], runs[0]["metrics"]);
    }
}
