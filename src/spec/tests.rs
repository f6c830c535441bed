use std::path::Path;

use super::*;

const BASE: &str = r#"
[pipeline]
name = "p"
seed = 1
target = "y"
task = "regression"

[gather]
source = "d.csv"

[train]
estimator = "ridge"
"#;

/// Parses text; on error returns "message @ line:col | hint".
fn check(text: &str) -> std::result::Result<Pipeline, String> {
    Pipeline::parse(Path::new("x.toml"), text).map_err(|e| {
        let loc = e
            .location()
            .map(|l| format!(" @ {}:{}", l.line, l.col))
            .unwrap_or_default();
        let hint = e.hint().map(|h| format!(" | {h}")).unwrap_or_default();
        format!("{e}{loc}{hint}")
    })
}

fn with(extra: &str) -> String {
    format!("{BASE}{extra}")
}

#[test]
fn minimal_pipeline_gets_documented_defaults() {
    let p = check(BASE).unwrap();
    assert_eq!(
        p.split,
        Split::Random {
            test_fraction: 0.25,
            stratify: None
        }
    );
    assert_eq!(p.evaluate.metrics, vec![Metric::Rmse, Metric::Mae, Metric::R2]);
    assert_eq!(
        p.train.estimator,
        Estimator::Ridge {
            alpha: 1.0,
            fit_intercept: true
        }
    );
    assert!(p.steps.is_empty());
}

#[test]
fn canonical_json_round_trips_and_ignores_the_source_path_for_hashing() {
    let p = check(&with("[[impute]]\noperator = \"median\"\ncolumns = [\"a\"]\n")).unwrap();
    let back = Pipeline::from_canonical_json(&p.to_canonical_json()).unwrap();
    assert_eq!(back.to_canonical_json(), p.to_canonical_json());
    let mut moved = p.clone();
    moved.gather.source = "elsewhere/d.csv".into();
    assert_eq!(moved.hashed_bytes(), p.hashed_bytes());
    assert_ne!(moved.to_canonical_json(), p.to_canonical_json());
}

#[test]
fn malformed_toml_points_at_the_line() {
    let err = check("[pipeline]\nname = \"p\nseed = 1\n").unwrap_err();
    assert!(err.starts_with("x.toml is not valid TOML: "), "{err}");
    assert!(err.contains(" @ 2:"), "{err}");
}

#[test]
fn unknown_key_suggests_the_known_one() {
    let err = check(&BASE.replace("estimator = \"ridge\"", "estimator = \"ridge\"\nalpah = 2.0")).unwrap_err();
    assert_eq!(
        err,
        "unknown key `alpah` in [train] (expected one of: estimator, target_transform, alpha, fit_intercept) @ 13:1 | did you mean \"alpha\"?"
    );
}

#[test]
fn wrong_type_names_expected_and_found() {
    let err = check(&BASE.replace("seed = 1", "seed = \"one\"")).unwrap_err();
    assert_eq!(
        err,
        "`seed` in [pipeline] must be a non-negative integer, found a string @ 4:8"
    );
}

#[test]
fn unknown_operator_lists_the_known_ones() {
    let err = check(&with("[[impute]]\noperator = \"medain\"\ncolumns = \"numeric\"\n")).unwrap_err();
    assert_eq!(
        err,
        "unknown operator \"medain\" in [[impute]] (known: \"median\", \"mean\", \"most_frequent\", \"constant\", \"end_tail\", \"random_sample\", \"missing_indicator\", \"drop_missing_rows\") @ 14:12 | did you mean \"median\"?"
    );
}

#[test]
fn operator_in_the_wrong_group_says_where_it_belongs() {
    let err = check(&with("[[impute]]\noperator = \"one_hot\"\ncolumns = \"categorical\"\n")).unwrap_err();
    assert!(err.ends_with("@ 14:12 | \"one_hot\" belongs in [[encode]]"), "{err}");
}

#[test]
fn missing_target_key_is_reported_on_the_table() {
    let err = check(&BASE.replace("target = \"y\"\n", "")).unwrap_err();
    assert_eq!(
        err,
        "[pipeline] needs `target` (the column to predict) @ 2:1 | add `target = …` to [pipeline]"
    );
}

#[test]
fn negative_tolerance_is_rejected() {
    let err = check(&with(
        "[[encode]]\noperator = \"rare_label\"\ncolumns = \"categorical\"\ntolerance = -0.1\n",
    ))
    .unwrap_err();
    assert_eq!(
        err,
        "`tolerance` must be between 0 and 1 (a fraction of train rows), found -0.1 @ 16:13"
    );
}

#[test]
fn duplicate_step_names_are_rejected() {
    let step = "[[impute]]\noperator = \"median\"\ncolumns = \"numeric\"\n";
    let err = check(&with(&format!("{step}{step}"))).unwrap_err();
    assert!(
        err.starts_with("two steps are named \"impute.median\" (first at x.toml:14:12) @ 17:12"),
        "{err}"
    );
}

#[test]
fn unsafe_step_names_are_rejected() {
    let err = check(&with(
        "[[impute]]\nname = \"../x\"\noperator = \"median\"\ncolumns = \"numeric\"\n",
    ))
    .unwrap_err();
    assert!(
        err.starts_with("step name \"../x\" may hold only letters, digits, '-' and '_'"),
        "{err}"
    );
}

#[test]
fn an_estimator_of_another_task_is_a_clear_error() {
    let err = check(&BASE.replace("\"regression\"", "\"clustering\"")).unwrap_err();
    assert!(err.contains("does not fit task \"clustering\""), "{err}");
    let err = check(&BASE.replace("\"regression\"", "\"forecasting\"")).unwrap_err();
    assert!(err.contains("forecasting"), "{err}");
}

#[test]
fn constant_imputer_needs_a_fill_value() {
    let err = check(&with(
        "[[impute]]\noperator = \"constant\"\ncolumns = \"categorical\"\n",
    ))
    .unwrap_err();
    assert!(err.starts_with("[[impute]] #1 needs `fill_value`"), "{err}");
}

#[test]
fn column_selection_remembers_where_each_name_was_written() {
    let p = check(&with("[[impute]]\noperator = \"median\"\ncolumns = [\"a\", \"bb\"]\n")).unwrap();
    let loc = &p.steps[0].locations.columns["bb"];
    assert_eq!((loc.line, loc.col), (15, 17));
}

#[test]
fn gates_parse_and_are_left_out_of_the_run_hash() {
    let p = check(&with(
        "[[gate]]\nmetric = \"r2\"\nmin = 0.8\n[[gate]]\nmetric = \"rmse\"\nmax_regression = 0.02\n",
    ))
    .unwrap();
    assert_eq!(p.gates.len(), 2);
    assert_eq!(p.gates[1].rule, GateRule::MaxRegression(0.02));
    let mut without = p.clone();
    without.gates.clear();
    assert_eq!(without.hashed_bytes(), p.hashed_bytes());
}

#[test]
fn a_gate_needs_exactly_one_rule() {
    let err = check(&with("[[gate]]\nmetric = \"r2\"\nmin = 0.8\nmax = 0.9\n")).unwrap_err();
    assert_eq!(
        err,
        "[[gate]] #1 needs exactly one of `max`, `min`, `max_regression` @ 13:1 | write one rule per [[gate]]; add another [[gate]] for another rule"
    );
}

#[test]
fn a_gate_on_a_metric_that_is_not_computed_is_refused() {
    let err = check(&with(
        "[evaluate]\nmetrics = [\"rmse\"]\n[[gate]]\nmetric = \"r2\"\nmin = 0.8\n",
    ))
    .unwrap_err();
    assert_eq!(
        err,
        "gate on r2 but [evaluate] does not compute it @ 16:10 | add \"r2\" to [evaluate] metrics"
    );
}

#[test]
fn transform_parameters_are_checked() {
    let err = check(&with(
        "[[transform]]\noperator = \"cap\"\nmethod = \"quantiles\"\nfold = 0.3\ncolumns = \"numeric\"\n",
    ))
    .unwrap_err();
    assert_eq!(
        err,
        "`fold` for quantiles is the tail fraction: above 0 and at most 0.2 @ 16:8"
    );
    let err = check(&with(
        "[[transform]]\noperator = \"min_max_scaler\"\nfeature_range = [1, 0]\ncolumns = \"numeric\"\n",
    ))
    .unwrap_err();
    assert_eq!(
        err,
        "`feature_range` must be two numbers [low, high] with low < high @ 15:17"
    );
    let err = check(&with(
        "[[transform]]\noperator = \"standard_scaler\"\nfeature_range = [0, 1]\ncolumns = \"numeric\"\n",
    ))
    .unwrap_err();
    assert_eq!(err, "`feature_range` is only used by min_max_scaler @ 15:17");
}

#[test]
fn tree_estimators_are_checked_and_kept_out_of_coefficient_selectors() {
    let p = check(&BASE.replace(
        "estimator = \"ridge\"",
        "estimator = \"gradient_boosting\"\nn_estimators = 50\nmax_depth = 2",
    ))
    .unwrap();
    assert_eq!(
        p.train.estimator,
        crate::models::Estimator::GradientBoosting {
            n_estimators: 50,
            learning_rate: 0.1,
            max_depth: 2,
            min_samples_split: 2,
            min_samples_leaf: 1,
        }
    );
    let err = check(&BASE.replace(
        "estimator = \"ridge\"",
        "estimator = \"decision_tree\"\nmin_samples_leaf = 0",
    ))
    .unwrap_err();
    assert!(
        err.starts_with("`min_samples_leaf` must be at least 1, found 0 @ 13:"),
        "{err}"
    );
    let err = check(&BASE.replace(
        "estimator = \"ridge\"",
        "estimator = \"gradient_boosting\"\nlearning_rate = 0",
    ))
    .unwrap_err();
    assert!(
        err.starts_with("`learning_rate` must be above 0, found 0 @ 13:"),
        "{err}"
    );
    let err = check(&with(
        "[[select]]\noperator = \"rfe\"\nestimator = \"decision_tree\"\nn_features = 2\n",
    ))
    .unwrap_err();
    assert!(
        err.starts_with("[[select]] #1 selects by coefficients, and decision_tree has none"),
        "{err}"
    );
}

#[test]
fn mutual_information_parameters_are_checked() {
    let step = |extra: &str| format!("[[select]]\noperator = \"select_k_best\"\ncolumns = \"numeric\"\nk = 2\n{extra}");
    let p = check(&with(&step("score = \"mutual_info\"\ndiscrete_features = [\"a\"]\n"))).unwrap();
    assert_eq!(
        p.steps[0].operator,
        crate::stages::Operator::SelectKBest(crate::stages::select::Rule::KBest {
            k: Some(2),
            percentile: None,
            score: crate::stages::select::Score::MutualInfo {
                n_neighbors: 3,
                discrete: crate::stages::select::Discrete::Columns(vec!["a".into()]),
            },
        })
    );
    assert_eq!(
        check(&with(&step("score = \"mutual_info\"\nn_neighbors = 0\n"))).unwrap_err(),
        "`n_neighbors` must be at least 1 @ 18:15"
    );
    assert_eq!(
        check(&with(&step("n_neighbors = 5\n"))).unwrap_err(),
        "`n_neighbors` applies to `score = \"mutual_info\"` only @ 17:15 | add `score = \"mutual_info\"` or remove the key"
    );
    assert!(
        check(&with(&step("score = \"chi2\"\n")))
            .unwrap_err()
            .contains("\"f_test\", \"mutual_info\""),
    );
}

/// Every step example in docs/pipeline-format.md parses, and every operator has one.
#[test]
fn every_operator_has_a_documented_example_that_parses() {
    use crate::stages::Group;
    let doc = include_str!("../../docs/pipeline-format.md");
    let mut shown = std::collections::BTreeSet::new();
    for block in doc.split("```toml\n").skip(1) {
        let block = &block[..block.find("```").unwrap()];
        let headers: Vec<&str> = block.lines().filter(|l| l.starts_with('[')).collect();
        let steps_only = !headers.is_empty()
            && headers
                .iter()
                .all(|h| Group::ALL.iter().any(|g| h.trim() == format!("[[{}]]", g.name())));
        if !steps_only {
            continue;
        }
        let p = check(&with(block)).unwrap_or_else(|e| panic!("{e}\nin the example:\n{block}"));
        shown.extend(p.steps.iter().map(|s| s.operator.name().to_string()));
    }
    for group in Group::ALL {
        for op in group.operators() {
            assert!(shown.contains(*op), "no example of `{op}` in docs/pipeline-format.md");
        }
    }
}

#[test]
fn max_features_with_a_forest_in_select_from_model_is_refused_as_ambiguous() {
    let err = check(&with(
        "[[select]]\noperator = \"select_from_model\"\nestimator = \"random_forest\"\nmax_features = 4\ncolumns = \"numeric\"\n",
    ))
    .unwrap_err();
    assert!(
        err.starts_with("`max_features` is ambiguous with random_forest")
            && err.contains("@ 16:16 | leave the forest's default"),
        "{err}"
    );
}

fn database_source(url: &str) -> String {
    BASE.replace("source = \"d.csv\"", &format!("source = \"{url}\"\ntable = \"houses\""))
}

#[test]
fn a_password_in_the_source_url_never_reaches_the_stored_pipeline_or_its_hash() {
    let with_password = check(&database_source(
        "postgres://etl:S3c%2Fret%3Fx@db:5432/sales?password=S3c2",
    ))
    .unwrap();
    let without = check(&database_source("postgres://etl@db:5432/sales")).unwrap();
    let stored = String::from_utf8(with_password.to_canonical_json()).unwrap();
    assert!(!stored.contains("S3c"), "{stored}");
    assert!(
        stored.contains("\"source\":\"postgres://etl@db:5432/sales\""),
        "{stored}"
    );
    assert_eq!(with_password.to_canonical_json(), without.to_canonical_json());
    assert_eq!(with_password.hashed_bytes(), without.hashed_bytes());
    assert_eq!(with_password.source_name(), "postgres://etl@db:5432/sales");
    // Without a password the stored text is the written one, byte for byte.
    let plain = check(&database_source("postgres://etl@/sales?host=/tmp/pg&")).unwrap();
    assert!(
        String::from_utf8(plain.to_canonical_json())
            .unwrap()
            .contains("\"source\":\"postgres://etl@/sales?host=/tmp/pg&\"")
    );
}

#[test]
fn an_ambiguous_source_url_is_refused_at_its_line_without_showing_the_password() {
    let err = Pipeline::parse(
        Path::new("x.toml"),
        &database_source("postgres://etl:S3c/ret?x@127.0.0.1:5432/db"),
    )
    .err()
    .unwrap();
    assert_eq!(
        err.to_string(),
        "the PostgreSQL URL is ambiguous: an '@' comes after the first '/' (a raw '/' in the password, or a raw \
         '@' in the database name or a parameter?); readers of URLs would split it differently (the URL is not \
         shown: it may hold a password)"
    );
    assert!(
        err.hint()
            .unwrap()
            .starts_with("percent-encode these characters in the password")
    );
    let loc = err.location().unwrap();
    assert_eq!((loc.line, loc.col), (9, 10));
    assert_eq!(
        loc.line_text,
        "source = \"postgres://(not shown: the URL does not parse)\""
    );
    // A TOML error on that line shows it masked too.
    let err = Pipeline::parse(
        Path::new("x.toml"),
        &database_source("postgres://etl:S3cret@db/x").replace("/x\"", "/x"),
    )
    .err()
    .unwrap();
    let loc = err.location().unwrap();
    assert!(err.to_string().contains("is not valid TOML"), "{err}");
    assert_eq!(loc.line_text, "source = \"postgres://etl:***@db/x");
    // A quote inside the password ends the TOML string early: the rest of the line is masked too.
    for source in [
        "\"postgres://alice:ab\"S3CRETcd@127.0.0.1:1/db\"",
        "'postgres://alice:ab'S3CRETcd@127.0.0.1:1/db'",
    ] {
        let text = database_source("postgres://etl:S3cret@db/x").replace("\"postgres://etl:S3cret@db/x\"", source);
        let err = Pipeline::parse(Path::new("x.toml"), &text).err().unwrap();
        let loc = err.location().unwrap();
        assert!(!loc.line_text.contains("S3CRET"), "{}", loc.line_text);
        assert!(!err.to_string().contains("S3CRET"), "{err}");
    }
}

#[test]
fn the_missing_train_hint_names_estimators_of_the_pipelines_task() {
    for (task, fits, misfit) in [
        ("classification", "\"logistic_regression\"", "\"ridge\""),
        ("regression", "\"ridge\"", "\"logistic_regression\""),
        ("clustering", "\"k_means\"", "\"ridge\""),
    ] {
        let text = BASE
            .replace("task = \"regression\"", &format!("task = \"{task}\""))
            .replace("[train]\nestimator = \"ridge\"\n", "");
        let err = check(&text).unwrap_err();
        assert!(
            err.starts_with("x.toml has no [train] table | add [train] with an estimator for "),
            "{err}"
        );
        assert!(err.contains(fits) && !err.contains(misfit), "{task}: {err}");
    }
}

#[test]
fn a_dtype_for_a_column_that_is_not_read_is_refused_at_its_key() {
    let text = BASE.replace(
        "source = \"d.csv\"\n",
        "source = \"d.csv\"\ncolumns = [\"a\", \"y\"]\ndtypes = { a = \"numeric\", b = \"categorical\" }\n",
    );
    let err = check(&text).unwrap_err();
    assert_eq!(
        err,
        "dtypes gives a type to \"b\", which `columns` does not read @ 11:27 | add \"b\" to `columns`, or remove its dtype"
    );
    // Without `columns` every column is read, so any dtype may be given.
    assert!(
        check(&BASE.replace(
            "source = \"d.csv\"\n",
            "source = \"d.csv\"\ndtypes = { b = \"numeric\" }\n"
        ))
        .is_ok()
    );
}
