//! mlpipe in CI: gates, the lock file, `check`, JUnit and Markdown reports, exit codes.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// A copy of the shipped pipeline with its gates and its committed lock.
struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn new() -> Project {
        let dir = tempfile::tempdir().unwrap();
        let text = std::fs::read_to_string(Path::new(ROOT).join("pipelines/house-prices.toml")).unwrap();
        let text = text.replace("../data-snapshots/house-prices/train.csv", "train.csv");
        std::fs::write(dir.path().join("pipeline.toml"), text).unwrap();
        std::fs::copy(
            Path::new(ROOT).join("pipelines/house-prices.lock"),
            dir.path().join("pipeline.lock"),
        )
        .unwrap();
        std::fs::copy(
            Path::new(ROOT).join("data-snapshots/house-prices/train.csv"),
            dir.path().join("train.csv"),
        )
        .unwrap();
        Project { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn edit(&self, file: &str, from: &str, to: &str) {
        let text = std::fs::read_to_string(self.path(file)).unwrap();
        assert!(text.contains(from), "{file} does not contain {from:?}");
        std::fs::write(self.path(file), text.replacen(from, to, 1)).unwrap();
    }

    fn mlpipe(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mlpipe"));
        cmd.current_dir(self.dir.path())
            .env("MLPIPE_STORE", self.path("artifacts"))
            .args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

#[test]
fn unchanged_tree_matches_the_lock_with_every_stage_cached() {
    let p = Project::new();
    assert!(p.mlpipe(&["run", "pipeline.toml", "--ci"], &[]).status.success());
    let out = p.mlpipe(&["check", "pipeline.toml", "--ci"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with("matches pipeline.lock (10 stages, 0 recomputed)\n"),
        "{text}"
    );
    assert!(text.contains("  gate     passed r2 ≥ 0.85: r2 = "), "{text}");
    assert!(
        text.contains("  gate     passed rmse at most 2% worse than the baseline"),
        "{text}"
    );
}

#[test]
fn the_committed_lock_is_what_a_fresh_run_writes_on_any_thread_count() {
    let p = Project::new();
    let committed = std::fs::read(p.path("pipeline.lock")).unwrap();
    for env in [vec![("POLARS_MAX_THREADS", "1"), ("RAYON_NUM_THREADS", "1")], vec![]] {
        std::fs::remove_dir_all(p.path("artifacts")).ok();
        std::fs::remove_file(p.path("pipeline.lock")).unwrap();
        let out = p.mlpipe(&["lock", "pipeline.toml", "--ci"], &env);
        assert!(out.status.success());
        assert_eq!(
            std::fs::read(p.path("pipeline.lock")).unwrap(),
            committed,
            "lock bytes differ ({env:?})"
        );
    }
}

#[test]
fn a_failing_gate_exits_1_and_is_a_junit_failure() {
    let p = Project::new();
    p.edit("pipeline.toml", "min = 0.85", "min = 0.95");
    let out = p.mlpipe(
        &[
            "run",
            "pipeline.toml",
            "--ci",
            "--junit",
            "junit.xml",
            "--summary",
            "summary.md",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("  gate     FAILED r2 ≥ 0.95: r2 = 0.898"),
        "{}",
        stdout(&out)
    );
    let junit = std::fs::read_to_string(p.path("junit.xml")).unwrap();
    assert!(
        junit.contains("<testsuites name=\"mlpipe\" tests=\"12\" failures=\"1\""),
        "{junit}"
    );
    assert!(junit.contains("<testcase classname=\"house-prices.gate\" name=\"r2 ≥ 0.95\" time=\"0\">\n      <failure message=\"gate failed: r2 ≥ 0.95\">r2 = 0.898"), "{junit}");
    assert_eq!(junit.matches("classname=\"house-prices.stage\"").count(), 10);
    let summary = std::fs::read_to_string(p.path("summary.md")).unwrap();
    assert!(summary.contains("| r2 ≥ 0.95 | ❌ failed |"), "{summary}");
    assert!(
        summary.contains("| metric | this run | lock pipeline.lock | change |"),
        "{summary}"
    );
}

#[test]
fn a_regression_beyond_the_allowed_fraction_fails_against_the_lock() {
    let p = Project::new();
    // A much stronger penalty makes the model worse than the locked one.
    p.edit("pipeline.toml", "alpha = 10.0", "alpha = 1000.0");
    let out = p.mlpipe(&["run", "pipeline.toml", "--ci"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("  gate     FAILED rmse at most 2% worse than the baseline: rmse = "),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_changed_parameter_makes_check_fail_naming_the_stage() {
    let p = Project::new();
    p.edit("pipeline.toml", "tolerance = 0.01", "tolerance = 0.015");
    let out = p.mlpipe(&["check", "pipeline.toml", "--ci"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.starts_with("DIFFERS from pipeline.lock\n  first change: encode.rare\n  why: config: the parameters of stage encode.rare changed\n"),
        "{text}"
    );
    assert!(text.contains("  stage.encode.rare.output: "), "{text}");
    assert!(
        !text.contains("stage.encode.quality.output"),
        "unchanged stages are not listed: {text}"
    );
}

#[test]
fn a_changed_data_file_makes_check_fail_naming_the_snapshot() {
    let p = Project::new();
    p.edit("train.csv", "2,20,RL,80,9600,", "2,20,RL,80,9601,");
    let out = p.mlpipe(&["check", "pipeline.toml", "--ci"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.starts_with("DIFFERS from pipeline.lock\n  first change: snapshot\n  why: data: the snapshot changed from f0a766c27b2d to "), "{text}");
}

#[test]
fn check_without_a_lock_says_how_to_make_one() {
    let p = Project::new();
    std::fs::remove_file(p.path("pipeline.lock")).unwrap();
    let out = p.mlpipe(&["check", "pipeline.toml", "--ci"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: pipeline.toml has no lock file (pipeline.lock is missing)\nhint: create it with `mlpipe lock PIPELINE` and commit it\n"
    );
}

#[test]
fn a_merge_conflict_in_the_lock_is_a_clear_error() {
    let p = Project::new();
    let text = std::fs::read_to_string(p.path("pipeline.lock")).unwrap();
    std::fs::write(
        p.path("pipeline.lock"),
        text.replacen("mlpipe = ", "<<<<<<< HEAD\nmlpipe = ", 1),
    )
    .unwrap();
    let out = p.mlpipe(&["check", "pipeline.toml", "--ci"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: pipeline.lock:5: expected `key = value`, found \"<<<<<<< HEAD\"\n"),
        "{err}"
    );
}

#[test]
fn an_unknown_baseline_fails_before_any_stage_runs() {
    let p = Project::new();
    let out = p.mlpipe(&["run", "pipeline.toml", "--ci", "--baseline", "0123abcd"], &[]);
    assert_ne!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("0123abcd"), "{stderr}");
    // Nothing was fitted: the store holds no stage refs and no run.
    let refs = p.path("artifacts/v1/refs");
    let stored = |kind: &str| std::fs::read_dir(refs.join(kind)).map_or(0, Iterator::count);
    assert_eq!((stored("keys"), stored("runs")), (0, 0), "{stderr}");
}
