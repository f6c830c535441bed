//! Shared by the integration tests: a throwaway project with the house-price pipeline and data, and
//! helpers to run the real binary in it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::struct_field_names)]

pub mod chromium;
pub mod onnxruntime;
pub mod postgres;
pub mod serving;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data-snapshots/house-prices");
pub const PIPELINE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/pipelines/house-prices.toml");

/// A folder with a copy of the house-price pipeline and data, and a store.
pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    pub fn new() -> Project {
        let dir = tempfile::tempdir().unwrap();
        let text = std::fs::read_to_string(PIPELINE).unwrap();
        let text = text.replace("../data-snapshots/house-prices/train.csv", "train.csv");
        // Gates judge the shipped pipeline against its lock; tests that need gates add their own.
        let text = text.split("\n# Checked by every").next().unwrap().to_string() + "\n";
        std::fs::write(dir.path().join("pipeline.toml"), text).unwrap();
        for f in ["train.csv", "test.csv"] {
            std::fs::copy(Path::new(DATA).join(f), dir.path().join(f)).unwrap();
        }
        Project { dir }
    }

    /// The shipped penguins pipeline (classification) with its data, in a fresh folder.
    pub fn penguins() -> Project {
        Project::penguins_from("pipelines/penguins.toml")
    }

    /// A shipped penguins pipeline as `pipeline.toml`, with its data, gates left out.
    pub fn penguins_from(pipeline: &str) -> Project {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = tempfile::tempdir().unwrap();
        let text = std::fs::read_to_string(root.join(pipeline)).unwrap();
        let text = text.replace("../data-snapshots/penguins/penguins.csv", "penguins.csv");
        let text = text.split("\n[[gate]]").next().unwrap().to_string() + "\n";
        std::fs::write(dir.path().join("pipeline.toml"), text).unwrap();
        std::fs::copy(
            root.join("data-snapshots/penguins/penguins.csv"),
            dir.path().join("penguins.csv"),
        )
        .unwrap();
        Project { dir }
    }

    /// Replaces the pipeline's `[train]` table.
    pub fn set_train(&self, train: &str) {
        let text = std::fs::read_to_string(self.path("pipeline.toml")).unwrap();
        let start = text.find("\n[train]\n").unwrap() + 1;
        let end = start + text[start + 1..].find("\n[").unwrap() + 2;
        std::fs::write(
            self.path("pipeline.toml"),
            format!("{}[train]\n{train}\n\n{}", &text[..start], &text[end..]),
        )
        .unwrap();
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn store(&self) -> PathBuf {
        self.path("artifacts")
    }

    pub fn edit(&self, file: &str, from: &str, to: &str) {
        let text = std::fs::read_to_string(self.path(file)).unwrap();
        assert!(text.contains(from), "{file} does not contain {from:?}");
        std::fs::write(self.path(file), text.replacen(from, to, 1)).unwrap();
    }

    /// The shipped pipeline splits by time; a random split makes the seed matter.
    pub fn use_random_split(&self) {
        self.edit(
            "pipeline.toml",
            "method = \"time\"\ncolumn = \"YrSold\"\ntest_from = 2010",
            "method = \"random\"\ntest_fraction = 0.25",
        );
    }

    pub fn mlpipe(&self, args: &[&str]) -> Output {
        self.mlpipe_env(args, &[])
    }

    pub fn mlpipe_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mlpipe"));
        cmd.current_dir(self.dir.path())
            .env("MLPIPE_STORE", self.store())
            .env("CI", "true")
            .args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    /// `mlpipe run pipeline.toml --json`, which must succeed.
    pub fn run(&self, extra: &[&str]) -> Value {
        let mut args = vec!["run", "pipeline.toml", "--json"];
        args.extend(extra);
        let out = self.mlpipe(&args);
        assert!(out.status.success(), "run failed: {}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// A failing command's exit code and standard error, with the project folder masked as [ROOT].
    pub fn fail(&self, args: &[&str]) -> (i32, String) {
        let out = self.mlpipe(args);
        assert!(!out.status.success(), "expected failure, got: {}", stdout(&out));
        // Progress lines come first; the error starts at "error:".
        let err = stderr(&out);
        let err = err.find("error:").map_or(err.as_str(), |i| &err[i..]).to_string();
        (
            out.status.code().unwrap(),
            err.replace(&self.dir.path().display().to_string(), "[ROOT]"),
        )
    }
}

/// The output id of every stage of a `run --json` report, in order.
pub fn stage_outputs(run: &Value) -> Vec<String> {
    run["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["output"].as_str().unwrap().to_string())
        .collect()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}
