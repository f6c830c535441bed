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
        "[[impute]]\nname = \"numeric\"",
        "[[impute]]\noperator = \"random_sample\"\ncolumns = [\"LotFrontage\"]\n\n[[impute]]\nname = \"numeric\"",
    );
    let run = p.run(&[])["run"].as_str().unwrap().to_string();
    let (code, err) = p.fail(&["export", &run, "-o", "refused.onnx"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("step impute.random_sample cannot be exported to ONNX: its draws are blake3"),
        "{err}"
    );
    assert!(!p.path("refused.onnx").exists(), "nothing is written on refusal");
}

/// Verified export of each estimator in `trains` on a project: the file gives mlpipe's numbers.
fn assert_estimators_export(p: &Project, trains: &[&str]) {
    for (i, train) in trains.iter().enumerate() {
        p.set_train(train);
        let run = p.run(&[])["run"].as_str().unwrap().to_string();
        let report = export(p, &run, &p.path(&format!("model-{i}.onnx")));
        let v = &report["verification"];
        assert!(v["max_rel"].as_f64().unwrap() <= 1e-9, "{train}: {report}");
        assert_eq!(v["label_mismatches"], 0, "{train}: {report}");
        assert_eq!(v["nan_mismatches"], 0, "{train}: {report}");
    }
}

#[test]
fn trees_forests_and_boosting_export_as_tree_ensembles_with_the_same_numbers() {
    // Regression (log target), three classes, and two classes (one boosting score column).
    assert_estimators_export(
        &Project::new(),
        &[
            "estimator = \"decision_tree\"\nmax_depth = 6\ntarget_transform = \"log\"",
            "estimator = \"random_forest\"\nn_estimators = 15\nmax_depth = 8\nmax_features = 0.5",
            "estimator = \"gradient_boosting\"\nn_estimators = 40\nmax_depth = 3\ntarget_transform = \"log\"",
        ],
    );
    let classes = [
        "estimator = \"decision_tree\"\nmax_depth = 4",
        "estimator = \"random_forest\"\nn_estimators = 25",
        "estimator = \"gradient_boosting\"\nn_estimators = 30\nmax_depth = 2",
    ];
    assert_estimators_export(&Project::penguins(), &classes);
    let binary = Project::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(
        root.join("tests/peer/houses-classify.toml"),
        binary.path("pipeline.toml"),
    )
    .unwrap();
    std::fs::create_dir_all(binary.path("data")).unwrap();
    std::fs::copy(
        root.join("tests/peer/data/houses-binary.csv"),
        binary.path("data/houses-binary.csv"),
    )
    .unwrap();
    assert_estimators_export(&binary, &["estimator = \"logistic_regression\"\nC = 1.0", classes[2]]);
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
    run_and_verify(
        &p,
        &[
            "encode.count_frequency",
            "encode.mean_target",
            "transform.cap",
            "transform.log",
            "transform.power",
            "transform.reciprocal",
        ],
    );
}

/// Runs the project's pipeline, checks it has `steps`, and verifies its export.
fn run_and_verify(p: &Project, steps: &[&str]) {
    let run = p.run(&[]);
    let stages: Vec<&str> = run["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    for step in steps {
        assert!(stages.contains(step), "{step} not in {stages:?}");
    }
    let report = export(p, run["run"].as_str().unwrap(), &p.path("steps.onnx"));
    let v = &report["verification"];
    assert!(v["max_rel"].as_f64().unwrap() <= 1e-9, "{report}");
    assert_eq!(v["label_mismatches"], 0, "{report}");
    assert_eq!(v["nan_mismatches"], 0, "{report}");
}

#[test]
fn trims_bins_power_transforms_and_relative_features_export_with_the_same_numbers() {
    let p = Project::new();
    p.edit(
        "pipeline.toml",
        "[train]",
        "[[transform]]\noperator = \"trim\"\nmethod = \"quantiles\"\nfold = 0.01\ntail = \"both\"\ncolumns = [\"LotArea\"]\n\n\
         [[transform]]\noperator = \"box_cox\"\ncolumns = [\"GrLivArea\"]\n\n\
         [[transform]]\noperator = \"yeo_johnson\"\ncolumns = [\"MasVnrArea\", \"BsmtFinSF1\"]\n\n\
         [[transform]]\noperator = \"discretise\"\nmethod = \"equal_frequency\"\nq = 5\ncolumns = [\"YearBuilt\"]\n\n\
         [[transform]]\noperator = \"relative\"\nreference = \"LotArea\"\nfunctions = [\"div\", \"sub\"]\ncolumns = [\"GarageArea\"]\n\n\
         [[transform]]\noperator = \"combine\"\nfunction = \"std\"\ncolumns = [\"1stFlrSF\", \"2ndFlrSF\", \"TotalBsmtSF\"]\n\n\
         [[transform]]\noperator = \"combine\"\nname = \"total\"\nfunction = \"sum\"\nnew_name = \"TotalSF\"\ncolumns = [\"1stFlrSF\", \"2ndFlrSF\", \"TotalBsmtSF\"]\n\n[train]",
    );
    run_and_verify(
        &p,
        &[
            "transform.trim",
            "transform.box_cox",
            "transform.yeo_johnson",
            "transform.discretise",
            "transform.relative",
            "transform.combine",
            "transform.total",
        ],
    );
}

#[test]
fn ensembles_and_power_target_transforms_export_with_the_same_numbers() {
    let stacking = "estimator = \"stacking\"\nfolds = 3\ntarget_transform = \"log\"\n\n[train.final]\nestimator = \"ridge\"\nalpha = 1.0\n\n\
                    [[train.base]]\nname = \"ridge\"\nestimator = \"ridge\"\nalpha = 10.0\n\n\
                    [[train.base]]\nname = \"gbr\"\nestimator = \"gradient_boosting\"\nn_estimators = 20";
    let voting = "estimator = \"voting\"\nweights = [1.0, 3.0]\n\n\
                  [[train.base]]\nname = \"ridge\"\nestimator = \"ridge\"\nalpha = 10.0\n\n\
                  [[train.base]]\nname = \"forest\"\nestimator = \"random_forest\"\nn_estimators = 10";
    for train in [
        stacking.to_string(),
        voting.to_string(),
        "estimator = \"ridge\"\nalpha = 10.0\ntarget_transform = \"box_cox\"".to_string(),
        "estimator = \"ridge\"\nalpha = 10.0\ntarget_transform = \"yeo_johnson\"".to_string(),
        "estimator = \"ridge\"\nalpha = 10.0\ntarget_transform = \"log1p\"".to_string(),
    ] {
        assert_estimators_export(&Project::new(), &[train.as_str()]);
    }
    let classes_stacking = "estimator = \"stacking\"\nfolds = 3\n\n[train.final]\nestimator = \"logistic_regression\"\n\n\
                            [[train.base]]\nname = \"logistic\"\nestimator = \"logistic_regression\"\n\n\
                            [[train.base]]\nname = \"forest\"\nestimator = \"random_forest\"\nn_estimators = 10";
    let classes_voting = "estimator = \"voting\"\n\n\
                          [[train.base]]\nname = \"logistic\"\nestimator = \"logistic_regression\"\n\n\
                          [[train.base]]\nname = \"boost\"\nestimator = \"gradient_boosting\"\nn_estimators = 10";
    for train in [classes_stacking, classes_voting] {
        assert_estimators_export(&Project::penguins(), &[train]);
    }
}

/// Runs an exported graph in tract (pure Rust) on a CSV of numeric columns: its `prediction`.
fn tract_predictions(model: &Path, data: &Path) -> Vec<f64> {
    use tract_onnx::prelude::*;
    let text = std::fs::read_to_string(data).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let proto = ModelProto::decode(std::fs::read(model).unwrap().as_slice()).unwrap();
    let inputs: Vec<String> = proto
        .graph
        .unwrap()
        .input
        .iter()
        .map(|i| i.name().to_string())
        .collect();
    let n = rows.len();
    let mut onnx = tract_onnx::onnx().model_for_path(model).unwrap();
    let mut feed = TVec::new();
    for (i, name) in inputs.iter().enumerate() {
        let at = header.iter().position(|h| h == name).unwrap();
        let values: Vec<f64> = rows.iter().map(|r| r[at].parse().unwrap_or(f64::NAN)).collect();
        onnx = onnx.with_input_fact(i, f64::fact([n, 1]).into()).unwrap();
        feed.push(Tensor::from_shape(&[n, 1], &values).unwrap().into());
    }
    let plan = onnx.into_optimized().unwrap().into_runnable().unwrap();
    let out = plan.run(feed).unwrap();
    out[0].to_plain_array_view::<f64>().unwrap().iter().copied().collect()
}

/// The graphs of numeric pipelines use only standard operators, which tract runs: the same numbers
/// as `mlpipe predict` on every row of the house data.
#[test]
fn numeric_pipelines_run_in_tract_as_in_mlpipe() {
    let p = Project::new();
    std::fs::write(
        p.path("numeric.toml"),
        "[pipeline]\nname = \"numeric\"\nseed = 3\ntarget = \"SalePrice\"\ntask = \"regression\"\n\n\
         [gather]\nsource = \"train.csv\"\nna_values = [\"NA\"]\nid_column = \"Id\"\n\
         columns = [\"Id\", \"SalePrice\", \"LotFrontage\", \"LotArea\", \"OverallQual\", \"YearBuilt\", \"GrLivArea\", \"GarageArea\", \"YrSold\"]\n\n\
         [split]\nmethod = \"time\"\ncolumn = \"YrSold\"\ntest_from = 2010\n\n\
         [[impute]]\noperator = \"median\"\ncolumns = \"numeric\"\nadd_indicator = true\n\n\
         [[transform]]\noperator = \"standard_scaler\"\ncolumns = \"numeric\"\n\n\
         [train]\nestimator = \"ridge\"\nalpha = 3.0\ntarget_transform = \"log\"\n\n[evaluate]\nmetrics = [\"rmse\"]\n",
    )
    .unwrap();
    let out = p.mlpipe(&["run", "numeric.toml", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let run: Value = serde_json::from_slice(&out.stdout).unwrap();
    let run = run["run"].as_str().unwrap();
    let file = p.path("numeric.onnx");
    assert!(
        p.mlpipe(&["export", run, "-o", file.to_str().unwrap()])
            .status
            .success()
    );
    let predicted = p.mlpipe(&["predict", run, "--input", "train.csv", "--output", "ours.csv"]);
    assert!(predicted.status.success(), "{}", stderr(&predicted));
    let ours = std::fs::read_to_string(p.path("ours.csv")).unwrap();
    let mut lines = ours.lines();
    let at = lines
        .next()
        .unwrap()
        .split(',')
        .position(|h| h == "prediction")
        .unwrap();
    let ours: Vec<f64> = lines.map(|l| l.split(',').nth(at).unwrap().parse().unwrap()).collect();
    let theirs = tract_predictions(&file, &p.path("train.csv"));
    assert_eq!(ours.len(), theirs.len());
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        assert!((a - b).abs() <= 1e-9 * a.abs(), "row {i}: mlpipe {a}, tract {b}");
    }
}

#[test]
fn numeric_expression_features_export_with_the_same_numbers() {
    let p = Project::new();
    p.edit(
        "pipeline.toml",
        "[train]",
        "[[transform]]\nname = \"derived\"\noperator = \"expression\"\nfeatures = [\n\
         \"GrLivArea / TotRmsAbvGrd AS area_per_room\",\n\
         \"CASE WHEN BsmtUnfSF > 0 THEN BsmtFinSF1 / BsmtUnfSF WHEN PoolArea > 0 THEN -1 ELSE 0 END AS bsmt_ratio\",\n\
         \"LN(LotArea) + LN(GrLivArea) / LN(10) - SQRT(ABS(MasVnrArea - 100)) AS logs\",\n\
         \"POWER(OverallQual, 2) % 7 + FLOOR(LotFrontage / 10) - CEIL(GarageCars / 3) AS mixed\",\n\
         \"LEAST(YearBuilt, YearRemodAdd) - GREATEST(GarageYrBlt, 1950) AS years\",\n\
         \"COALESCE(NULL, LotFrontage) * EXP(-OverallCond) AS decayed\",\n\
         \"(OverallQual >= 7 AND NOT Fireplaces = 0) OR KitchenAbvGr IN (2, 3) AS good\",\n\
         \"OverallCond BETWEEN 4 AND 6 AS middling\",\n\
         \"LotFrontage IS NOT NULL AS has_frontage\",\n]\n\n[train]",
    );
    run_and_verify(&p, &["transform.derived"]);
}

#[test]
fn text_tested_for_equality_in_an_expression_exports_and_is_dropped() {
    let p = Project::new();
    p.edit(
        "pipeline.toml",
        "operator = \"one_hot\"\ncolumns = \"categorical\"",
        "operator = \"one_hot\"\ncolumns = \"categorical\"\nexclude = [\"Neighborhood\"]",
    );
    p.edit(
        "pipeline.toml",
        "[train]",
        "[[transform]]\nname = \"town\"\noperator = \"expression\"\nfeatures = [\n\
         \"Neighborhood IN ('NoRidge', 'NridgHt') OR Neighborhood = 'StoneBr' AS north\",\n\
         \"CASE WHEN Neighborhood <> 'OldTown' THEN OverallQual ELSE 0 END AS not_old\",\n]\n\
         drop = [\"Neighborhood\"]\n\n[train]",
    );
    run_and_verify(&p, &["transform.town"]);
}
