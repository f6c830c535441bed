#![allow(clippy::unwrap_used, clippy::expect_used, clippy::float_cmp)]

//! Our numbers against the peers': tests/peer/generate.py ran pandas, feature-engine and scikit-learn
//! on the same data and steps and wrote tests/peer/expected.json.

use std::collections::BTreeMap;
use std::path::Path;

use mlpipe::commands::read_snapshot;
use mlpipe::executor::{Executor, NoProgress, Snapshot};
use mlpipe::fitted::{Predictions, StageOutput, StageState};
use mlpipe::spec::Pipeline;
use mlpipe::stages::Fitted;
use mlpipe::stages::impute::Value as Fill;
use mlpipe::store::MemoryStore;
use serde_json::Value;

fn expected() -> Value {
    serde_json::from_str(include_str!("peer/expected.json")).expect("expected.json parses")
}

fn run(file: &str) -> Vec<(String, StageOutput)> {
    run_pipeline(&Pipeline::load(Path::new(file)).expect("pipeline loads"))
}

/// `file` with its `[train]` table replaced by `train` (a case's estimator, from expected.json).
fn with_train(file: &str, train: &str) -> Pipeline {
    let text = std::fs::read_to_string(file).unwrap();
    let start = text.find("\n[train]\n").expect("a [train] table") + 1;
    let end = start + text[start + 1..].find("\n[").expect("a table after [train]") + 2;
    let text = format!("{}[train]\n{train}\n\n{}", &text[..start], &text[end..]);
    Pipeline::parse(Path::new(file), &text).unwrap_or_else(|e| panic!("{file} with [train] {train}: {e}"))
}

fn run_pipeline(pipeline: &Pipeline) -> Vec<(String, StageOutput)> {
    let (id, bytes) = read_snapshot(&pipeline.source_path()).expect("data reads");
    let store = MemoryStore::default();
    let snapshot = Snapshot::new(id, bytes, "train.csv".into(), None);
    let executed = Executor::new(pipeline, &store, true, &NoProgress)
        .run(&snapshot)
        .expect("pipeline runs");
    executed
        .stages
        .into_iter()
        .map(|s| s.name)
        .zip(executed.outputs)
        .collect()
}

fn state<'a>(outputs: &'a [(String, StageOutput)], name: &str) -> &'a StageState {
    &outputs
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no stage {name}"))
        .1
        .state
}

fn rel(a: f64, b: f64) -> f64 {
    if a == b {
        0.0
    } else {
        (a - b).abs() / a.abs().max(b.abs())
    }
}

fn assert_close(what: &str, ours: f64, peer: f64, tol: f64) {
    assert!(
        rel(ours, peer) <= tol,
        "{what}: ours {ours} vs peer {peer} (relative {:e} > {tol:e})",
        rel(ours, peer)
    );
}

/// Per-column category maps (category → number) against the peer's, value by value.
fn assert_maps_close(what: &str, ours: &[(String, BTreeMap<String, f64>)], peer: &Value, tol: f64) {
    for (column, map) in ours {
        let peer = peer[column].as_object().unwrap();
        assert_eq!(map.len(), peer.len(), "{column} categories");
        for (k, v) in map {
            assert_close(&format!("{what} of {column}={k}"), *v, peer[k].as_f64().unwrap(), tol);
        }
    }
}

/// Our test metrics against the peer's, metric by metric.
/// The columns a selection step keeps: those it examined and did not drop, in order.
fn kept(sel: &mlpipe::stages::select::Fitted) -> Vec<&String> {
    sel.examined
        .iter()
        .filter(|c| !sel.dropped.iter().any(|d| &d.column == *c))
        .collect()
}

/// Every test prediction within `tol` (relative) of the peer's `test_predictions`.
fn assert_test_predictions(case: &str, ours: &[f64], exp: &Value, tol: f64) {
    let peer: Vec<f64> = serde_json::from_value(exp["test_predictions"].clone()).unwrap();
    assert_eq!(ours.len(), peer.len(), "{case}: test rows");
    for (row, (a, b)) in ours.iter().zip(&peer).enumerate() {
        assert_close(&format!("{case}: test row {row}"), *a, *b, tol);
    }
}

fn assert_test_metrics(out: &[(String, StageOutput)], exp: &Value, tol: f64) {
    let (test, _) = metrics(out);
    for (name, v) in exp["test_metrics"].as_object().unwrap() {
        assert_close(&format!("test {name}"), test[name], v.as_f64().unwrap(), tol);
    }
}

fn metrics(outputs: &[(String, StageOutput)]) -> (&BTreeMap<String, f64>, &BTreeMap<String, f64>) {
    match state(outputs, "evaluate") {
        StageState::Evaluate(e) => (&e.test, &e.train),
        other => panic!("evaluate state is {other:?}"),
    }
}

#[test]
fn ridge_pipeline_matches_feature_engine_and_scikit_learn() {
    let exp = &expected()["ridge"];
    let out = run("tests/peer/house-prices-ridge.toml");

    let StageState::Split(split) = state(&out, "split") else {
        panic!()
    };
    assert_eq!(split.train.len() as u64, exp["train_rows"].as_u64().unwrap());
    assert_eq!(split.test.len() as u64, exp["test_rows"].as_u64().unwrap());

    // analyse: pandas' profile of the train split.
    let StageState::Analyse(profile) = state(&out, "analyse") else {
        panic!()
    };
    let peer_profile = exp["profile"].as_object().unwrap();
    assert_eq!(
        profile.columns.len() - 2,
        peer_profile.len(),
        "profiled columns (ours include Id and SalePrice)"
    );
    for col in profile.columns.iter().filter(|c| peer_profile.contains_key(&c.name)) {
        let p = &peer_profile[&col.name];
        assert_eq!(
            col.missing as u64,
            p["missing"].as_u64().unwrap(),
            "{} missing",
            col.name
        );
        assert_eq!(
            col.distinct as u64,
            p["distinct"].as_u64().unwrap(),
            "{} distinct",
            col.name
        );
        if let Some(n) = &col.numeric {
            assert_eq!(n.min, p["min"].as_f64().unwrap(), "{} min", col.name);
            assert_eq!(n.max, p["max"].as_f64().unwrap(), "{} max", col.name);
            assert_close(&format!("{} mean", col.name), n.mean, p["mean"].as_f64().unwrap(), 1e-9);
            assert_close(
                &format!("{} std", col.name),
                n.std.unwrap(),
                p["std"].as_f64().unwrap(),
                1e-9,
            );
            assert_close(
                &format!("{} skew", col.name),
                n.skew.unwrap(),
                p["skew"].as_f64().unwrap(),
                1e-9,
            );
        }
    }

    // impute: medians exactly, indicators for the columns that had missing values.
    let StageState::Step(Fitted::Impute(imp)) = state(&out, "impute.numeric") else {
        panic!()
    };
    let medians = exp["medians"].as_object().unwrap();
    assert_eq!(imp.fills.len(), medians.len());
    for f in &imp.fills {
        assert_eq!(
            f.value,
            Fill::Number(medians[&f.column].as_f64().unwrap()),
            "median of {}",
            f.column
        );
    }
    let indicators: Vec<String> = imp.indicators.iter().map(|c| format!("{c}_na")).collect();
    let peer_ind: Vec<String> = serde_json::from_value(exp["indicators"].clone()).unwrap();
    assert_eq!(indicators, peer_ind);

    // rare labels: the same frequent labels per column.
    let StageState::Step(Fitted::RareLabel(rare)) = state(&out, "encode.rare") else {
        panic!()
    };
    let peer_rare = exp["rare_frequent"].as_object().unwrap();
    assert_eq!(rare.columns.len(), peer_rare.len());
    for g in &rare.columns {
        let mut ours = g.frequent.clone();
        ours.sort();
        let peer: Vec<String> = serde_json::from_value(peer_rare[&g.column].clone()).unwrap();
        assert_eq!(ours, peer, "frequent labels of {}", g.column);
    }

    // one-hot: the same dummy columns, in the same order.
    let StageState::Step(Fitted::OneHot(oh)) = state(&out, "encode.onehot") else {
        panic!()
    };
    let ours: Vec<String> = oh
        .columns
        .iter()
        .flat_map(|e| e.categories.iter().map(move |c| format!("{}_{c}", e.column)))
        .collect();
    let peer: Vec<String> = serde_json::from_value(exp["one_hot_columns"].clone()).unwrap();
    assert_eq!(ours, peer);

    // ridge: coefficients by feature name. The design is ill-conditioned (condition number ~1e10, with
    // two exact collinearities: GrLivArea and TotalBsmtSF are sums of other columns), so the split of
    // weight inside a collinear group is decided by alpha alone and moves by ~1e-8 relative when the
    // float64 data are centred with different rounding. The peer script therefore also solves the
    // problem in extended precision. We must be within 1e-10 of that reference normwise (relative to
    // the largest coefficient), within 1e-7 for every coefficient (scikit-learn's own cholesky solver is
    // off by 1.4e-7 there), and no farther from scikit-learn than scikit-learn is from the reference.
    let StageState::Train(train) = state(&out, "train") else {
        panic!()
    };
    let model = train.model.linear().expect("a linear model");
    let features: Vec<String> = serde_json::from_value(exp["features"].clone()).unwrap();
    assert_eq!(model.features, features);
    let reference = exp["coefficients_reference"].as_object().unwrap();
    let sklearn = exp["coefficients"].as_object().unwrap();
    let norm = reference
        .values()
        .map(|v| v.as_f64().unwrap().abs())
        .fold(0.0, f64::max);
    for (name, w) in model.features.iter().zip(&model.coefficients) {
        let exact = reference[name].as_f64().unwrap();
        let peer = sklearn[name].as_f64().unwrap();
        assert!(
            (w - exact).abs() <= 1e-10 * norm,
            "coefficient {name}: ours {w} vs reference {exact} (normwise)"
        );
        assert_close(&format!("coefficient {name} vs reference"), *w, exact, 1e-7);
        let peer_error = (peer - exact).abs();
        assert!(
            (w - peer).abs() <= (1e-10 * norm).max(2.0 * peer_error),
            "coefficient {name}: ours {w}, scikit-learn {peer}, reference {exact}"
        );
    }
    assert_close(
        "intercept vs reference",
        model.intercept,
        exp["intercept_reference"].as_f64().unwrap(),
        1e-8,
    );
    assert_close("intercept", model.intercept, exp["intercept"].as_f64().unwrap(), 1e-8);

    let (test, train_m) = metrics(&out);
    for (name, v) in exp["test_metrics"].as_object().unwrap() {
        assert_close(&format!("test {name}"), test[name], v.as_f64().unwrap(), 1e-9);
    }
    for (name, v) in exp["train_metrics"].as_object().unwrap() {
        assert_close(&format!("train {name}"), train_m[name], v.as_f64().unwrap(), 1e-9);
    }
}

#[test]
fn linear_regression_matches_scikit_learn() {
    let exp = &expected()["ols"];
    let out = run("tests/peer/house-prices-ols.toml");
    let StageState::Step(Fitted::Impute(imp)) = state(&out, "impute.mean") else {
        panic!()
    };
    let means = exp["means"].as_object().unwrap();
    for f in &imp.fills {
        let Fill::Number(x) = f.value else { panic!() };
        assert_close(
            &format!("mean of {}", f.column),
            x,
            means[&f.column].as_f64().unwrap(),
            1e-12,
        );
    }
    let StageState::Train(train) = state(&out, "train") else {
        panic!()
    };
    let model = train.model.linear().expect("a linear model");
    let features: Vec<String> = serde_json::from_value(exp["features"].clone()).unwrap();
    assert_eq!(model.features, features);
    let coefs = exp["coefficients"].as_object().unwrap();
    for (name, w) in model.features.iter().zip(&model.coefficients) {
        assert_close(&format!("coefficient {name}"), *w, coefs[name].as_f64().unwrap(), 1e-8);
    }
    assert_close("intercept", model.intercept, exp["intercept"].as_f64().unwrap(), 1e-8);
    assert_test_metrics(&out, exp, 1e-9);
}

#[test]
fn transforms_match_feature_engine_and_scikit_learn() {
    use mlpipe::stages::cap;
    let exp = &expected()["transform"];
    let file = "tests/peer/house-prices-transform.toml";
    let out = run(file);

    // Caps learned by feature-engine's Winsorizer, per method.
    for (stage, column) in [
        ("transform.cap-lot", "LotArea"),
        ("transform.cap-living", "GrLivArea"),
        ("transform.cap-basement", "TotalBsmtSF"),
        ("transform.cap-garage", "GarageArea"),
    ] {
        let StageState::Step(Fitted::Cap(cap::Fitted { columns })) = state(&out, stage) else {
            panic!()
        };
        let peer = &exp["caps"][column];
        for (ours, theirs, side) in [
            (columns[0].low, &peer["low"], "low"),
            (columns[0].high, &peer["high"], "high"),
        ] {
            match (ours, theirs.as_f64()) {
                (Some(a), Some(b)) => assert_close(&format!("{column} {side} cap"), a, b, 1e-12),
                (None, None) => {}
                other => panic!("{column} {side} cap: {other:?}"),
            }
        }
    }

    // Scaler statistics, against scikit-learn's mean_/scale_, center_/scale_, data_min_/data_range_.
    for (stage, kind) in [
        ("transform.standard_scaler", "standard"),
        ("transform.robust_scaler", "robust"),
        ("transform.min_max_scaler", "min_max"),
    ] {
        let StageState::Step(Fitted::Scale(f)) = state(&out, stage) else {
            panic!()
        };
        for c in &f.columns {
            let peer = &exp["scalers"][kind][&c.column];
            assert_close(
                &format!("{kind} center of {}", c.column),
                c.center,
                peer["center"].as_f64().unwrap(),
                1e-12,
            );
            assert_close(
                &format!("{kind} scale of {}", c.column),
                c.scale,
                peer["scale"].as_f64().unwrap(),
                1e-12,
            );
        }
    }

    // The transformed train values themselves: re-apply every fitted step to the train rows.
    let pipeline = Pipeline::load(Path::new(file)).unwrap();
    let (_, bytes) = read_snapshot(&pipeline.source_path()).unwrap();
    let all = mlpipe::frame::read_csv(&bytes, &pipeline.gather.read, "train.csv").unwrap();
    let StageState::Split(split) = state(&out, "split") else {
        panic!()
    };
    let mut train = all.take(&split.train);
    for (_, o) in &out {
        if let StageState::Step(f) = &o.state {
            train = f.apply(train).unwrap();
        }
    }
    for (column, values) in exp["train_values"].as_object().unwrap() {
        let ours = train.numeric(column).unwrap();
        for (i, v) in values.as_array().unwrap().iter().enumerate() {
            assert_close(&format!("{column} row {i}"), ours[i], v.as_f64().unwrap(), 1e-12);
        }
    }

    assert_test_metrics(&out, exp, 1e-9);
}

#[test]
fn encoders_and_selectors_match_feature_engine() {
    let exp = &expected()["encode_select"];
    let out = run("tests/peer/house-prices-encode-select.toml");

    for (stage, column) in [
        ("impute.tail-frontage", "LotFrontage"),
        ("impute.tail-veneer", "MasVnrArea"),
    ] {
        let StageState::Step(Fitted::Impute(f)) = state(&out, stage) else {
            panic!()
        };
        let Fill::Number(x) = f.fills[0].value else { panic!() };
        assert_close(
            &format!("end of tail of {column}"),
            x,
            exp["end_tail"][column].as_f64().unwrap(),
            1e-12,
        );
    }

    let StageState::Step(Fitted::CountFrequency(freq)) = state(&out, "encode.count_frequency") else {
        panic!()
    };
    assert_maps_close("frequency", &freq.columns, &exp["frequency"], 1e-15);

    let StageState::Step(Fitted::MeanTarget(mean)) = state(&out, "encode.mean_target") else {
        panic!()
    };
    assert_maps_close("target mean", &mean.columns, &exp["mean_target"], 1e-12);

    let StageState::Step(Fitted::Ordinal(ord)) = state(&out, "encode.ordinal") else {
        panic!()
    };
    for m in &ord.columns {
        let peer: Vec<String> = serde_json::from_value(exp["ordinal_target"][&m.column].clone()).unwrap();
        assert_eq!(m.categories, peer, "target-mean order of {}", m.column);
    }

    for (stage, kind) in [
        ("select.drop_constant", "constant"),
        ("select.drop_duplicates", "duplicates"),
        ("select.drop_correlated", "correlated"),
    ] {
        let StageState::Step(Fitted::Select(sel)) = state(&out, stage) else {
            panic!()
        };
        let mut ours: Vec<&str> = sel.dropped.iter().map(|d| d.column.as_str()).collect();
        if kind == "duplicates" {
            ours.sort_unstable(); // the peer reports a set
        }
        let peer: Vec<String> = serde_json::from_value(exp["dropped"][kind].clone()).unwrap();
        assert_eq!(ours, peer, "{kind} features dropped");
    }

    let StageState::Train(train) = state(&out, "train") else {
        panic!()
    };
    let model = train.model.linear().expect("a linear model");
    let features: Vec<String> = serde_json::from_value(exp["features"].clone()).unwrap();
    assert_eq!(model.features, features);
    assert_test_metrics(&out, exp, 1e-9);
}

#[test]
fn creation_discretisation_and_univariate_selection_match_the_peers() {
    let exp = &expected()["create_select"];
    let file = "tests/peer/house-prices-create-select.toml";
    let out = run(file);

    for (stage, column) in [
        ("transform.years", "YearBuilt"),
        ("transform.living", "GrLivArea"),
        ("transform.quality", "OverallQual"),
    ] {
        let StageState::Step(Fitted::Discretise(d)) = state(&out, stage) else {
            panic!()
        };
        let peer: Vec<f64> = serde_json::from_value(exp["edges"][column].clone()).unwrap();
        assert_eq!(d.columns[0].1.len(), peer.len(), "{column} edges");
        for (a, b) in d.columns[0].1.iter().zip(&peer) {
            assert_close(&format!("{column} edge"), *a, *b, 1e-12);
        }
    }

    let StageState::Step(Fitted::Select(sel)) = state(&out, "select.select_k_best") else {
        panic!()
    };
    let created: Vec<String> = serde_json::from_value(exp["columns_after_creation"].clone()).unwrap();
    assert_eq!(sel.examined, created, "columns after creation, in order");
    let kept = kept(sel);
    let peer_kept: Vec<String> = serde_json::from_value(exp["kept"].clone()).unwrap();
    assert_eq!(kept, peer_kept.iter().collect::<Vec<_>>());

    // Values after every fitted step, against the peer's frame.
    let pipeline = Pipeline::load(Path::new(file)).unwrap();
    let (_, bytes) = read_snapshot(&pipeline.source_path()).unwrap();
    let all = mlpipe::frame::read_csv(&bytes, &pipeline.gather.read, "train.csv").unwrap();
    let StageState::Split(split) = state(&out, "split") else {
        panic!()
    };
    let mut train = all.take(&split.train);
    for (name, o) in &out {
        if let (StageState::Step(f), false) = (&o.state, name.starts_with("select.")) {
            train = f.apply(train).unwrap();
        }
    }
    for (column, values) in exp["train_values"].as_object().unwrap() {
        let ours = train.numeric(column).unwrap();
        for (i, v) in values.as_array().unwrap().iter().enumerate() {
            assert_close(&format!("{column} row {i}"), ours[i], v.as_f64().unwrap(), 1e-12);
        }
    }
    assert_test_metrics(&out, exp, 1e-9);
}

#[test]
fn box_cox_and_yeo_johnson_find_the_maximum_likelihood_lambda() {
    let exp = &expected()["power"];
    let out = run("tests/peer/house-prices-power.toml");
    for stage in ["transform.box_cox", "transform.yeo_johnson"] {
        let StageState::Step(Fitted::Power(p)) = state(&out, stage) else {
            panic!()
        };
        for (column, lambda) in &p.columns {
            let exact = exp["lambdas"][column]["exact"].as_f64().unwrap();
            let scipy = exp["lambdas"][column]["scipy"].as_f64().unwrap();
            // The 50-digit root of the likelihood's derivative: ours agrees to 1e-10 …
            assert_close(&format!("λ of {column} vs the exact optimum"), *lambda, exact, 1e-10);
            // … and is never farther from scipy's λ than scipy's own Brent tolerance puts it.
            assert!(
                rel(*lambda, scipy) <= 1e-9f64.max(2.0 * rel(scipy, exact)),
                "λ of {column}: ours {lambda}, scipy {scipy}"
            );
        }
    }
    // scipy's λ differ from the optimum by up to 1e-6 relative, which moves predictions a little.
    assert_test_metrics(&out, exp, 1e-6);
}

#[test]
fn train_row_filters_match_feature_engine() {
    use mlpipe::stages::rows;
    let exp = &expected()["rows"];
    let out = run("tests/peer/house-prices-rows.toml");
    let rows_after = |stage: &str| out.iter().find(|(n, _)| n == stage).unwrap().1.data["train"].rows as u64;
    assert_eq!(
        rows_after("impute.drop_missing_rows"),
        exp["train_rows_after_drop"].as_u64().unwrap()
    );
    assert_eq!(
        rows_after("transform.trim"),
        exp["train_rows_after_trim"].as_u64().unwrap()
    );
    let StageState::Step(Fitted::Impute(imp)) = state(&out, "impute.median") else {
        panic!()
    };
    for f in &imp.fills {
        assert_eq!(
            f.value,
            Fill::Number(exp["medians"][&f.column].as_f64().unwrap()),
            "median of {}",
            f.column
        );
    }
    let StageState::Step(Fitted::Rows(rows::Fitted::Trim { caps, .. })) = state(&out, "transform.trim") else {
        panic!()
    };
    for c in &caps.columns {
        let peer = exp["caps"][&c.column].as_array().unwrap();
        assert_close(
            &format!("{} low", c.column),
            c.low.unwrap(),
            peer[0].as_f64().unwrap(),
            1e-12,
        );
        assert_close(
            &format!("{} high", c.column),
            c.high.unwrap(),
            peer[1].as_f64().unwrap(),
            1e-12,
        );
    }
    let StageState::Train(train) = state(&out, "train") else {
        panic!()
    };
    let model = train.model.linear().expect("a linear model");
    let features: Vec<String> = serde_json::from_value(exp["features"].clone()).unwrap();
    assert_eq!(model.features, features);
    assert_test_metrics(&out, exp, 1e-9);
}

#[test]
fn a_box_cox_target_is_fitted_on_train_and_inverted_for_predictions() {
    let exp = &expected()["target"];
    let out = run("tests/peer/house-prices-target.toml");
    let StageState::Train(train) = state(&out, "train") else {
        panic!()
    };
    let lambda = train.target_lambda.expect("a fitted λ");
    let (exact, scipy) = (
        exp["lambda"]["exact"].as_f64().unwrap(),
        exp["lambda"]["scipy"].as_f64().unwrap(),
    );
    assert_close("target λ vs the exact optimum", lambda, exact, 1e-10);
    assert!(
        rel(lambda, scipy) <= 1e-9f64.max(2.0 * rel(scipy, exact)),
        "ours {lambda}, scipy {scipy}"
    );
    // scikit-learn's λ is 1.4e-7 away from the optimum, which moves predictions by about that much.
    assert_test_metrics(&out, exp, 1e-6);
}

#[test]
fn rfe_and_forward_selection_choose_what_scikit_learn_chooses() {
    let exp = &expected()["wrapper"];
    let out = run("tests/peer/house-prices-wrapper.toml");
    let kept = |stage: &str| -> Vec<String> {
        let StageState::Step(Fitted::Select(sel)) = state(&out, stage) else {
            panic!()
        };
        kept(sel).into_iter().cloned().collect()
    };
    let after_rfe: Vec<String> = serde_json::from_value(exp["after_rfe"].clone()).unwrap();
    assert_eq!(kept("select.rfe"), after_rfe);
    let chosen: Vec<String> = serde_json::from_value(exp["chosen"].clone()).unwrap();
    assert_eq!(kept("select.forward_selection"), chosen);
    assert_test_metrics(&out, exp, 1e-9);
}

#[test]
fn date_features_match_feature_engine() {
    let exp = &expected()["dates"];
    let file = "tests/peer/dates.toml";
    let out = run(file);
    let pipeline = Pipeline::load(Path::new(file)).unwrap();
    let (_, bytes) = read_snapshot(&pipeline.source_path()).unwrap();
    let all = mlpipe::frame::read_csv(&bytes, &pipeline.gather.read, "dates.csv").unwrap();
    let StageState::Split(split) = state(&out, "split") else {
        panic!()
    };
    let mut train = all.take(&split.train);
    for (_, o) in &out {
        if let StageState::Step(f) = &o.state {
            train = f.apply(train).unwrap();
        }
    }
    let features: Vec<String> = serde_json::from_value(exp["features"].clone()).unwrap();
    let ours: Vec<&str> = train.names().filter(|n| *n != "id" && *n != "price").collect();
    assert_eq!(ours, features.iter().map(String::as_str).collect::<Vec<_>>());
    for (column, values) in exp["train_values"].as_object().unwrap() {
        let got = train.numeric(column).unwrap();
        for (i, v) in values.as_array().unwrap().iter().enumerate() {
            assert_eq!(got[i], v.as_f64().unwrap(), "{column} row {i}");
        }
    }
    assert_test_metrics(&out, exp, 1e-9);
}

#[test]
fn lasso_selection_and_elastic_net_reach_scikit_learns_optimum() {
    let exp = &expected()["l1"];
    let out = run("tests/peer/house-prices-l1.toml");
    let StageState::Step(Fitted::Select(sel)) = state(&out, "select.select_from_model") else {
        panic!()
    };
    let kept = kept(sel);
    let peer_kept: Vec<String> = serde_json::from_value(exp["kept"].clone()).unwrap();
    assert_eq!(kept, peer_kept.iter().collect::<Vec<_>>());

    let StageState::Train(train) = state(&out, "train") else {
        panic!()
    };
    let m = train.model.linear().unwrap();
    // Objective on the train rows, as the peer script computes it.
    let pipeline = Pipeline::load(Path::new("tests/peer/house-prices-l1.toml")).unwrap();
    let (_, bytes) = read_snapshot(&pipeline.source_path()).unwrap();
    let all = mlpipe::frame::read_csv(&bytes, &pipeline.gather.read, "train.csv").unwrap();
    let StageState::Split(split) = state(&out, "split") else {
        panic!()
    };
    let mut frame = all.take(&split.train);
    for (_, o) in &out {
        if let StageState::Step(f) = &o.state {
            frame = f.apply(frame).unwrap();
        }
    }
    let y: Vec<f64> = frame.numeric("SalePrice").unwrap().iter().map(|v| v.ln()).collect();
    let pred = m.predict(&frame).unwrap();
    let n = y.len() as f64;
    let rss: f64 = y.iter().zip(&pred).map(|(a, b)| (a - b) * (a - b)).sum();
    let l1: f64 = m.coefficients.iter().map(|c| c.abs()).sum();
    let l2: f64 = m.coefficients.iter().map(|c| c * c).sum();
    let objective = rss / (2.0 * n) + 0.01 * (0.5 * l1 + 0.25 * l2);
    // At least as good as scikit-learn's default fit, and within 1e-7 of the tight optimum.
    assert_close(
        "objective vs the tight optimum",
        objective,
        exp["objective_tight"].as_f64().unwrap(),
        1e-7,
    );
    assert!(objective <= exp["objective"].as_f64().unwrap() * (1.0 + 1e-12));
    for (name, w) in m.features.iter().zip(&m.coefficients) {
        let peer = exp["coefficients"][name].as_f64().unwrap();
        assert!(
            (w - peer).abs() <= 1e-4 * peer.abs().max(1.0),
            "coefficient {name}: ours {w}, scikit-learn {peer}"
        );
    }
    assert_test_metrics(&out, exp, 1e-3);
}

#[test]
fn weight_of_evidence_matches_feature_engine() {
    let exp = &expected()["woe"];
    let out = run("tests/peer/houses-binary.toml");
    let StageState::Step(Fitted::Woe(woe)) = state(&out, "encode.woe") else {
        panic!()
    };
    assert_maps_close("woe", &woe.columns, &exp["woe"], 1e-12);
    assert_test_metrics(&out, exp, 1e-9);
}

/// Our test-split predictions: the data re-read, the recorded split taken, every fitted step applied,
/// the fitted model asked — the path `predict` takes.
fn test_predictions(file: &str, out: &[(String, StageOutput)]) -> Vec<f64> {
    let pipeline = Pipeline::load(Path::new(file)).unwrap();
    match predictions_of(&pipeline, out, false) {
        Predictions::Values(v) => v,
        Predictions::Classes { .. } => panic!("{file} is a classifier"),
    }
}

/// The rows of one side of the split (train or test) after every fitted step.
fn side(pipeline: &Pipeline, out: &[(String, StageOutput)], train: bool) -> mlpipe::frame::Frame {
    let (_, bytes) = read_snapshot(&pipeline.source_path()).unwrap();
    let mut frame = mlpipe::frame::read_csv(&bytes, &pipeline.gather.read, "data.csv").unwrap();
    for (_, o) in out {
        match &o.state {
            StageState::Split(s) => frame = frame.take(if train { &s.train } else { &s.test }),
            StageState::Step(f) if train => frame = f.apply_train(frame).unwrap(),
            StageState::Step(f) => frame = f.apply(frame).unwrap(),
            _ => {}
        }
    }
    frame
}

fn trained(out: &[(String, StageOutput)]) -> &mlpipe::fitted::TrainState {
    match state(out, "train") {
        StageState::Train(t) => t,
        _ => panic!("no train stage"),
    }
}

fn predictions_of(pipeline: &Pipeline, out: &[(String, StageOutput)], train: bool) -> Predictions {
    mlpipe::fitted::predict(trained(out), &side(pipeline, out, train)).unwrap()
}

#[test]
fn regression_trees_and_gradient_boosting_grow_scikit_learns_trees() {
    for (case, file) in [
        ("tree", "tests/peer/house-prices-tree.toml"),
        ("gbr", "tests/peer/house-prices-gbr.toml"),
    ] {
        let exp = &expected()["trees"][case];
        let out = run(file);
        let StageState::Train(train) = state(&out, "train") else {
            panic!()
        };
        let mlpipe::models::Model::Trees(model) = &train.model else {
            panic!("{case}: not a tree model")
        };
        let features: Vec<String> = serde_json::from_value(exp["features"].clone()).unwrap();
        assert_eq!(model.features, features, "{case}");
        // The first tree node by node: the same splits exactly, the same leaf means to rounding.
        let first = &model.trees[0];
        let peer = &exp["first_tree"];
        let peer_features: Vec<Option<String>> = serde_json::from_value(peer["feature"].clone()).unwrap();
        let ours: Vec<Option<String>> = first.feature.iter().map(|f| f.map(|i| features[i].clone())).collect();
        assert_eq!(ours, peer_features, "{case}: split features");
        let samples: Vec<usize> = serde_json::from_value(peer["samples"].clone()).unwrap();
        assert_eq!(first.samples, samples, "{case}: rows per node");
        for (node, t) in peer["threshold"].as_array().unwrap().iter().enumerate() {
            if let Some(t) = t.as_f64() {
                assert_eq!(first.threshold[node], t, "{case}: threshold of node {node}");
            }
        }
        for (node, v) in peer["value"].as_array().unwrap().iter().enumerate() {
            assert_close(
                &format!("{case}: value of node {node}"),
                first.value[node],
                v.as_f64().unwrap(),
                1e-12,
            );
        }
        assert_close(
            &format!("{case}: init"),
            model.init,
            exp["init"].as_f64().unwrap(),
            1e-14,
        );
        let importances = exp["importances"].as_object().unwrap();
        for (name, w) in model.features.iter().zip(&model.importances) {
            assert_close(
                &format!("{case}: importance of {name}"),
                *w,
                importances[name].as_f64().unwrap(),
                1e-9,
            );
        }
        assert_test_predictions(case, &test_predictions(file, &out), exp, 1e-12);
        assert_test_metrics(&out, exp, 1e-9);
    }
}

/// Every classifier case of `classify_case`: classes, features, test probabilities and metrics; a
/// logistic model by its objective and coefficients, a tree model by its importances.
#[test]
fn classifiers_match_scikit_learn() {
    let cases = expected()["classify"].as_object().unwrap().clone();
    let mut checked = 0;
    for (case, exp) in &cases {
        let Some(peer_proba) = exp["test_proba"].as_array() else {
            continue; // a forest judged by its spread, below
        };
        let file = format!("tests/peer/{}", exp["pipeline"].as_str().unwrap());
        let pipeline = with_train(&file, exp["train"].as_str().unwrap());
        let out = run_pipeline(&pipeline);
        let model = trained(&out)
            .model
            .classifier()
            .unwrap_or_else(|| panic!("{case}: not a classifier"));
        let classes: Vec<String> = serde_json::from_value(exp["classes"].clone()).unwrap();
        assert_eq!(model.classes, classes, "{case}: classes");
        let features: Vec<String> = serde_json::from_value(exp["features"].clone()).unwrap();
        assert_eq!(model.features, features, "{case}: features");
        let logistic = exp.get("objective").is_some();
        // Logistic fits are compared as optima (coefficients to 1e-4, so probabilities to about that);
        // trees must give the same leaves.
        let proba_tol = if logistic { 1e-4 } else { 1e-12 };
        let Predictions::Classes { proba, n_classes, .. } = predictions_of(&pipeline, &out, false) else {
            panic!("{case}: no class predictions")
        };
        assert_eq!(n_classes, classes.len());
        assert_eq!(proba.len(), peer_proba.len() * n_classes, "{case}: test rows");
        for (row, peer) in peer_proba.iter().enumerate() {
            for (k, p) in peer.as_array().unwrap().iter().enumerate() {
                let ours = proba[row * n_classes + k];
                let peer = p.as_f64().unwrap();
                assert!(
                    (ours - peer).abs() <= proba_tol,
                    "{case}: P(class {}) of test row {row}: ours {ours}, peer {peer}",
                    classes[k]
                );
            }
        }
        let (test, _) = metrics(&out);
        let peer_metrics = exp["test_metrics"].as_object().unwrap();
        for (name, value) in test {
            let peer = peer_metrics[name].as_f64().unwrap();
            assert_close(
                &format!("{case}: test {name}"),
                *value,
                peer,
                if logistic { 1e-5 } else { 1e-9 },
            );
        }
        if logistic {
            let mlpipe::models::ClassScores::Linear {
                coefficients,
                intercepts,
            } = &model.scores
            else {
                panic!("{case}: not linear")
            };
            let train = side(&pipeline, &out, true);
            let columns: Vec<&[f64]> = features.iter().map(|f| train.numeric(f).unwrap()).collect();
            let labels: Vec<String> = match &train.column(&pipeline.target).unwrap().data {
                mlpipe::frame::ColumnData::Numeric(v) => v.iter().map(|x| format!("{x}")).collect(),
                mlpipe::frame::ColumnData::Categorical(v) => v.iter().map(|x| x.unwrap().to_string()).collect(),
            };
            let y: Vec<u32> = labels
                .iter()
                .map(|l| u32::try_from(classes.iter().position(|c| c == l).unwrap()).unwrap())
                .collect();
            let penalty = &exp["penalty"];
            let params = mlpipe::models::logistic::Params {
                c: penalty["C"].as_f64().unwrap(),
                l1_ratio: penalty["l1_ratio"].as_f64().unwrap(),
                fit_intercept: true,
                max_iter: 100,
                tol: 1e-10,
            };
            let ours =
                mlpipe::models::logistic::objective(&columns, &y, classes.len(), params, coefficients, intercepts);
            let peer = exp["objective"].as_f64().unwrap();
            // The peer's objective is computed in extended precision from its solution; ours must be
            // as low to 1e-7 relative (lower is allowed: a tighter optimum).
            assert!(
                ours <= peer * (1.0 + 1e-7),
                "{case}: objective ours {ours}, peer {peer}"
            );
            assert!(
                ours >= peer * (1.0 - 1e-6),
                "{case}: objective ours {ours} far below peer {peer}?"
            );
            let peer_w: Vec<Vec<f64>> = serde_json::from_value(exp["coefficients"].clone()).unwrap();
            let peer_b: Vec<f64> = serde_json::from_value(exp["intercepts"].clone()).unwrap();
            for (k, (w, pw)) in coefficients.iter().zip(&peer_w).enumerate() {
                for (j, (a, b)) in w.iter().zip(pw).enumerate() {
                    assert!(
                        (a - b).abs() <= 1e-4 * b.abs().max(1.0),
                        "{case}: coefficient of {} in row {k}: ours {a}, peer {b}",
                        features[j]
                    );
                }
                assert!(
                    (intercepts[k] - peer_b[k]).abs() <= 1e-4 * peer_b[k].abs().max(1.0),
                    "{case}: intercept {k}: ours {}, peer {}",
                    intercepts[k],
                    peer_b[k]
                );
            }
        } else {
            let importances = exp["importances"].as_object().unwrap();
            for (name, w) in model.features.iter().zip(&model.importances) {
                assert_close(
                    &format!("{case}: importance of {name}"),
                    *w,
                    importances[name].as_f64().unwrap(),
                    1e-9,
                );
            }
        }
        checked += 1;
    }
    assert_eq!(
        checked,
        cases.len() - 1,
        "every case but the bootstrapped forest is compared"
    );
}

/// A bootstrapped forest draws from other streams than scikit-learn's, so its scores are held to the
/// spread of scikit-learn's over ten `random_state`s (widened by a small margin).
#[test]
fn bootstrapped_forests_score_within_scikit_learns_spread() {
    let classify = &expected()["classify"]["houses_forest"];
    let file = format!("tests/peer/{}", classify["pipeline"].as_str().unwrap());
    let out = run_pipeline(&with_train(&file, classify["train"].as_str().unwrap()));
    let regress = &expected()["trees"]["forest"];
    let out_r = run_pipeline(&with_train(
        "tests/peer/house-prices-tree.toml",
        regress["train"].as_str().unwrap(),
    ));
    for (what, exp, out, margins) in [
        (
            "classifier",
            classify,
            &out,
            &[("accuracy", 0.015), ("roc_auc", 0.005), ("log_loss", 0.01)][..],
        ),
        (
            "regressor",
            regress,
            &out_r,
            &[("r2", 0.01), ("rmse", 1000.0), ("mae", 500.0)][..],
        ),
    ] {
        let (test, _) = metrics(out);
        for (name, margin) in margins {
            let range = exp["range"][name].as_array().unwrap();
            let (lo, hi) = (range[0].as_f64().unwrap(), range[1].as_f64().unwrap());
            let ours = test[*name];
            assert!(
                ours >= lo - margin && ours <= hi + margin,
                "{what}: test {name} {ours} outside scikit-learn's [{lo}, {hi}] ± {margin}"
            );
        }
    }
}

/// A forest without bootstrap or feature draws is the decision tree, as in scikit-learn.
#[test]
fn an_unsampled_regression_forest_predicts_as_scikit_learns() {
    let exp = &expected()["trees"]["forest_unsampled"];
    let pipeline = with_train("tests/peer/house-prices-tree.toml", exp["train"].as_str().unwrap());
    let out = run_pipeline(&pipeline);
    let Predictions::Values(ours) = predictions_of(&pipeline, &out, false) else {
        panic!("not a regressor")
    };
    assert_test_predictions("forest", &ours, exp, 1e-12);
    assert_test_metrics(&out, exp, 1e-9);
}

/// A grid over ridge's alpha, scored by unshuffled 5-fold cross-validation of the whole pipeline: the
/// same fold scores as scikit-learn's `KFold` with feature-engine's steps refitted per fold, and the
/// same choice.
#[test]
fn grid_search_cross_validates_the_whole_pipeline_as_scikit_learn_does() {
    let exp = &expected()["cv"];
    let file = format!("tests/peer/{}", exp["pipeline"].as_str().unwrap());
    let text = std::fs::read_to_string(&file).unwrap();
    let at = text.find("\n[evaluate]").unwrap() + 1;
    let text = format!("{}{}\n{}", &text[..at], exp["extra"].as_str().unwrap(), &text[at..]);
    let pipeline = Pipeline::parse(Path::new(&file), &text).unwrap();
    let out = run_pipeline(&pipeline);
    let train = trained(&out);
    let cv = train.cv.as_ref().expect("the train stage records its cross-validation");
    assert_eq!(cv.metric, "rmse");
    let peer = exp["candidates"].as_array().unwrap();
    assert_eq!(cv.candidates.len(), peer.len());
    for (ours, peer) in cv.candidates.iter().zip(peer) {
        let alpha = peer["alpha"].as_f64().unwrap();
        assert_eq!(ours.params["alpha"].as_f64(), Some(alpha));
        for (fold, (a, b)) in ours.scores.iter().zip(peer["scores"].as_array().unwrap()).enumerate() {
            assert_close(&format!("alpha {alpha}, fold {fold}"), *a, b.as_f64().unwrap(), 1e-7);
        }
        assert_close(
            &format!("alpha {alpha}: mean"),
            ours.mean,
            peer["mean"].as_f64().unwrap(),
            1e-7,
        );
        assert_close(
            &format!("alpha {alpha}: std"),
            ours.std,
            peer["std"].as_f64().unwrap(),
            1e-6,
        );
    }
    let chosen = &cv.candidates[cv.chosen].params["alpha"];
    assert_eq!(chosen.as_f64(), exp["chosen_alpha"].as_f64(), "the chosen alpha");
    // The model trained on all train rows is the chosen candidate's.
    let linear = train.model.linear().unwrap();
    assert_eq!(linear.estimator, "ridge");
}

/// Stacking and voting, for values and for classes, against scikit-learn's ensembles of the same
/// base estimators.
#[test]
fn stacking_and_voting_match_scikit_learns_ensembles() {
    let cases = expected()["ensemble"].as_object().unwrap().clone();
    for (case, exp) in &cases {
        let file = format!("tests/peer/{}", exp["pipeline"].as_str().unwrap());
        let pipeline = with_train(&file, exp["train"].as_str().unwrap());
        let out = run_pipeline(&pipeline);
        match predictions_of(&pipeline, &out, false) {
            Predictions::Values(ours) => {
                assert_test_predictions(case, &ours, exp, 1e-9);
                assert_test_metrics(&out, exp, 1e-9);
            }
            Predictions::Classes { proba, n_classes, .. } => {
                let peer = exp["test_proba"].as_array().unwrap();
                assert_eq!(proba.len(), peer.len() * n_classes);
                for (row, p) in peer.iter().enumerate() {
                    for (k, v) in p.as_array().unwrap().iter().enumerate() {
                        let (a, b) = (proba[row * n_classes + k], v.as_f64().unwrap());
                        assert!(
                            (a - b).abs() <= 1e-6,
                            "{case}: test row {row} class {k}: ours {a}, peer {b}"
                        );
                    }
                }
                let (test, _) = metrics(&out);
                for (name, value) in test {
                    let peer = exp["test_metrics"][name].as_f64().unwrap();
                    assert_close(&format!("{case}: {name}"), *value, peer, 1e-5);
                }
            }
        }
    }
}

/// k-means: Lloyd's iterations from the same start reach scikit-learn's centres; seeded by our
/// k-means++ (other streams than numpy's), the fit reaches the inertia and test silhouette that
/// scikit-learn reaches over ten `random_state`s.
#[test]
fn k_means_matches_scikit_learn() {
    let exp = &expected()["kmeans"];
    let file = format!("tests/peer/{}", exp["pipeline"].as_str().unwrap());
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("task = \"classification\"", "task = \"clustering\"");
    let text = text[..text.find("\n[evaluate]").unwrap()].to_string()
        + "\n[evaluate]\nmetrics = [\"inertia\", \"silhouette\"]\n";
    let pipeline = {
        let path = Path::new(&file);
        let start = text.find("\n[train]\n").unwrap() + 1;
        let end = start + text[start + 1..].find("\n[").unwrap() + 2;
        let text = format!(
            "{}[train]\n{}\n\n{}",
            &text[..start],
            exp["train"].as_str().unwrap(),
            &text[end..]
        );
        Pipeline::parse(path, &text).unwrap()
    };
    assert_eq!(pipeline.task, mlpipe::spec::Task::Clustering);
    let out = run_pipeline(&pipeline);
    let features: Vec<String> = serde_json::from_value(exp["features"].clone()).unwrap();
    let train = side(&pipeline, &out, true);
    let columns: Vec<&[f64]> = features.iter().map(|f| train.numeric(f).unwrap()).collect();
    let points = mlpipe::models::kmeans::Points::from_columns(&columns);
    let start: Vec<Vec<f64>> = (0..3).map(|i| points.row(i).to_vec()).collect();
    let fit = mlpipe::models::kmeans::lloyd(&points, start, 300, 1e-4);
    let lloyd = &exp["lloyd"];
    assert_eq!(fit.iterations, lloyd["iterations"].as_u64().unwrap());
    assert_close(
        "inertia from the same start",
        fit.inertia,
        lloyd["inertia"].as_f64().unwrap(),
        1e-12,
    );
    let peer: Vec<Vec<f64>> = serde_json::from_value(lloyd["centres"].clone()).unwrap();
    for (c, (ours, peer)) in fit.centres.iter().zip(&peer).enumerate() {
        for (j, (a, b)) in ours.iter().zip(peer).enumerate() {
            assert!(
                (a - b).abs() <= 1e-12,
                "centre {c}, {}: ours {a}, peer {b}",
                features[j]
            );
        }
    }
    let mlpipe::models::Model::Clusters(model) = &trained(&out).model else {
        panic!("not a clustering")
    };
    let (lo, hi) = (
        exp["inertia_range"][0].as_f64().unwrap(),
        exp["inertia_range"][1].as_f64().unwrap(),
    );
    assert!(
        model.inertia >= lo * (1.0 - 1e-9) && model.inertia <= hi * (1.0 + 1e-9),
        "train inertia {} outside [{lo}, {hi}]",
        model.inertia
    );
    let (test, _) = metrics(&out);
    let (lo, hi) = (
        exp["test_silhouette_range"][0].as_f64().unwrap(),
        exp["test_silhouette_range"][1].as_f64().unwrap(),
    );
    let ours = test["silhouette"];
    assert!(
        ours >= lo - 1e-9 && ours <= hi + 1e-9,
        "test silhouette {ours} outside [{lo}, {hi}]"
    );
}

/// The case's pipeline with its `[[select]]` step put before `[train]`.
fn with_select_step(case: &str, exp: &Value) -> Pipeline {
    let file = format!("tests/peer/{}", exp["pipeline"].as_str().unwrap());
    let text = std::fs::read_to_string(&file).unwrap();
    let at = text.find("\n[train]\n").unwrap() + 1;
    let text = format!(
        "{}[[select]]\n{}\n\n{}",
        &text[..at],
        exp["step"].as_str().unwrap(),
        &text[at..]
    );
    Pipeline::parse(Path::new(&file), &text).unwrap_or_else(|e| panic!("{case}: {e}"))
}

/// `select_k_best` with `score = "mutual_info"` against `mutual_info_regression` /
/// `mutual_info_classif`. Discrete columns against classes have no noise: equal to 1e-12. A score
/// scikit-learn gives differently for different `random_state`s (ties broken by noise) must lie
/// within 4 standard deviations of its 30 estimates; the kept columns include every column all 30
/// selections keep and only columns some selection keeps.
#[test]
fn mutual_information_scores_and_selections_match_scikit_learns() {
    let cases = expected()["mutual_info"].as_object().unwrap().clone();
    for (case, exp) in &cases {
        let out = run_pipeline(&with_select_step(case, exp));
        let StageState::Step(Fitted::Select(sel)) = state(&out, "select.select_k_best") else {
            panic!("{case}: no selection")
        };
        let features: Vec<String> = serde_json::from_value(exp["features"].clone()).unwrap();
        assert_eq!(sel.examined, features, "{case}: the columns examined");
        let peer: Vec<Vec<f64>> = serde_json::from_value(exp["scores"].clone()).unwrap();
        for (i, name) in features.iter().enumerate() {
            let runs: Vec<f64> = peer.iter().map(|s| s[i]).collect();
            let n = runs.len() as f64;
            let mean = runs.iter().sum::<f64>() / n;
            let sd = (runs.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n).sqrt();
            let ours = sel.scores[i];
            if runs.iter().all(|v| *v == runs[0]) {
                assert!(
                    (ours - runs[0]).abs() <= 1e-12 * runs[0].abs().max(1.0),
                    "{case}: {name}: {ours} vs scikit-learn's {}",
                    runs[0]
                );
            } else {
                assert!(
                    (ours - mean).abs() <= 4.0 * sd,
                    "{case}: {name}: {ours} vs scikit-learn's {mean} ± {sd} over 30 random states"
                );
            }
        }
        let kept = kept(sel);
        let always: Vec<String> = serde_json::from_value(exp["kept_always"].clone()).unwrap();
        let ever: Vec<String> = serde_json::from_value(exp["kept_ever"].clone()).unwrap();
        assert!(
            always.iter().all(|c| kept.contains(&c)),
            "{case}: kept {kept:?}, must keep {always:?}"
        );
        assert!(
            kept.iter().all(|c| ever.contains(c)),
            "{case}: kept {kept:?}, may keep only {ever:?}"
        );
    }
}

/// `select_from_model` with an L1 logistic regression, a regression tree (the top four importances)
/// and a boosted classifier (above the mean importance), and `select_k_best` on classes (`f_classif`):
/// the columns scikit-learn's `SelectFromModel`, `SelectKBest` and `SelectPercentile` keep.
#[test]
fn embedded_selection_by_logistic_and_tree_models_keeps_what_scikit_learn_keeps() {
    let cases = expected()["embedded"].as_object().unwrap().clone();
    for (case, exp) in &cases {
        let out = run_pipeline(&with_select_step(case, exp));
        let operator = if case.starts_with("f_classif") {
            "select_k_best"
        } else {
            "select_from_model"
        };
        let StageState::Step(Fitted::Select(sel)) = state(&out, &format!("select.{operator}")) else {
            panic!("{case}: no selection")
        };
        let features: Vec<String> = serde_json::from_value(exp["features"].clone()).unwrap();
        assert_eq!(sel.examined, features, "{case}: the columns examined");
        let kept = kept(sel);
        let peer: Vec<String> = serde_json::from_value(exp["kept"].clone()).unwrap();
        assert_eq!(kept, peer.iter().collect::<Vec<_>>(), "{case}: kept");
    }
}
