#![allow(clippy::unwrap_used, clippy::expect_used)]

//! `mlpipe export --format onnx`: every shipped pipeline's run exports, passes `onnx.checker` (full),
//! and gives mlpipe's predictions in onnxruntime (from `PyPI`) on the run's test rows.

use std::path::Path;

use mlpipe::export::proto::ModelProto;
use prost::Message;
use serde_json::Value;

mod common;
use common::{Project, stderr};

fn export(p: &Project, run: &str, file: &Path) -> Value {
    let python = common::onnxruntime::python();
    let out = p.mlpipe_env(
        &[
            "export",
            run,
            "--format",
            "onnx",
            "-o",
            file.to_str().unwrap(),
            "--verify",
            "--json",
        ],
        &[("MLPIPE_PYTHON", python.to_str().unwrap())],
    );
    assert!(out.status.success(), "export failed: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn every_shipped_pipeline_exports_and_runs_in_onnxruntime_as_in_mlpipe() {
    let p = Project::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut pipelines: Vec<_> = std::fs::read_dir(root.join("pipelines"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|f| f.extension().is_some_and(|e| e == "toml"))
        .collect();
    pipelines.sort();
    assert!(pipelines.len() >= 4, "{pipelines:?}");
    for pipeline in pipelines {
        let out = p.mlpipe(&["run", pipeline.to_str().unwrap(), "--json"]);
        assert!(out.status.success(), "{}: {}", pipeline.display(), stderr(&out));
        let run: Value = serde_json::from_slice(&out.stdout).unwrap();
        let run = run["run"].as_str().unwrap().to_string();
        let file = p.path(&format!("{}.onnx", pipeline.file_stem().unwrap().to_str().unwrap()));
        let report = export(&p, &run, &file);
        let v = &report["verification"];
        assert!(v["rows"].as_u64().unwrap() > 50, "{report}");
        assert!(
            v["max_rel"].as_f64().unwrap() <= 1e-9,
            "{}: {report}",
            pipeline.display()
        );
        assert_eq!(v["label_mismatches"], 0, "{report}");
        assert_eq!(v["nan_mismatches"], 0, "{report}");
        // The file names its run, model, snapshot and version, so a device's prediction traces back.
        let model = ModelProto::decode(std::fs::read(&file).unwrap().as_slice()).unwrap();
        let meta: std::collections::BTreeMap<_, _> = model
            .metadata_props
            .iter()
            .map(|e| (e.key().to_string(), e.value().to_string()))
            .collect();
        assert_eq!(meta["mlpipe.run"], run);
        assert_eq!(meta["mlpipe.version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(meta["mlpipe.snapshot"].len(), 64);
        assert_eq!(meta["mlpipe.model"].len(), 64);
        let features: Vec<String> = serde_json::from_str(&meta["mlpipe.features"]).unwrap();
        let inputs: Vec<&str> = model
            .graph
            .as_ref()
            .unwrap()
            .input
            .iter()
            .map(mlpipe::export::proto::ValueInfoProto::name)
            .collect();
        assert_eq!(features, inputs);
    }
}

#[test]
fn a_step_or_model_without_an_onnx_form_is_refused_by_name() {
    let p = Project::new();
    p.edit(
        "pipeline.toml",
        "estimator = \"ridge\"\nalpha = 10.0",
        "estimator = \"decision_tree\"\nmax_depth = 3",
    );
    let run = p.run(&[])["run"].as_str().unwrap().to_string();
    let (code, err) = p.fail(&["export", &run, "-o", "tree.onnx"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(
            "step train cannot be exported to ONNX: tree, forest, boosting and ensemble models are not exported yet"
        ),
        "{err}"
    );
    assert!(!p.path("tree.onnx").exists(), "nothing is written on refusal");
}

#[test]
fn count_target_mean_caps_and_transforms_export_with_the_same_numbers() {
    let p = Project::new();
    p.edit(
        "pipeline.toml",
        "[[encode]]\nname = \"onehot\"",
        "[[encode]]\noperator = \"count_frequency\"\nmethod = \"frequency\"\nunseen = \"zero\"\ncolumns = [\"Neighborhood\"]\n\n\
         [[encode]]\noperator = \"mean_target\"\nsmoothing = \"auto\"\nunseen = \"prior\"\ncolumns = [\"Exterior1st\"]\n\n\
         [[encode]]\nname = \"onehot\"",
    );
    p.edit(
        "pipeline.toml",
        "[train]",
        "[[transform]]\noperator = \"cap\"\nmethod = \"iqr\"\ntail = \"both\"\ncolumns = [\"LotArea\", \"GrLivArea\"]\n\n\
         [[transform]]\noperator = \"log\"\nbase = \"10\"\noffset = 1.0\ncolumns = [\"LotArea\"]\n\n\
         [[transform]]\noperator = \"power\"\nexp = 0.5\ncolumns = [\"GarageArea\"]\n\n\
         [[transform]]\noperator = \"reciprocal\"\ncolumns = [\"TotRmsAbvGrd\"]\n\n[train]",
    );
    let run = p.run(&[]);
    let stages: Vec<&str> = run["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    for step in [
        "encode.count_frequency",
        "encode.mean_target",
        "transform.cap",
        "transform.log",
        "transform.power",
        "transform.reciprocal",
    ] {
        assert!(stages.contains(&step), "{stages:?}");
    }
    let report = export(&p, run["run"].as_str().unwrap(), &p.path("steps.onnx"));
    let v = &report["verification"];
    assert!(v["max_rel"].as_f64().unwrap() <= 1e-9, "{report}");
    assert_eq!(v["nan_mismatches"], 0, "{report}");
}
