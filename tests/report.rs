#![allow(clippy::unwrap_used, clippy::expect_used)]

//! `mlpipe report`: for a regression, a classification, a clustering and a grid search, the page is
//! self-contained, opens in headless Chromium with no console message, and every plot draws.

mod common;

use common::{Project, stderr, stdout};

/// Runs the pipeline in `p`, writes its report and loads it in Chromium; returns the page.
fn report(p: &Project, plots: usize, expect: &[&str]) -> String {
    let run = p.run(&[]);
    let id = run["run"].as_str().unwrap();
    let out = p.mlpipe(&["report", &id[..12], "-o", "report.html"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("report.html"), "{}", stdout(&out));
    let html = std::fs::read_to_string(p.path("report.html")).unwrap();
    // Self-contained: nothing is fetched.
    for outside in ["src=", "href=", "<link", "@import", "url("] {
        assert!(
            !html.contains(outside),
            "the report refers to something outside it: {outside}"
        );
    }
    for text in expect {
        assert!(html.contains(text), "the report lacks {text:?}");
    }
    assert!(html.contains(id), "the report names its run");
    // The same run gives the same page.
    let again = p.mlpipe(&["report", id, "-o", "again.html"]);
    assert!(again.status.success());
    assert_eq!(std::fs::read(p.path("again.html")).unwrap(), html.as_bytes());
    let (dom, console) = common::chromium::load(&p.path("report.html"));
    assert!(console.is_empty(), "console messages: {console:?}");
    let marker = format!("data-plots=\"{plots}\" data-drawn=\"{plots}\"");
    assert!(
        dom.contains(&marker),
        "expected {marker} in the rendered page: {}",
        &dom[dom.find("<body").unwrap_or(0)..][..200]
    );
    html
}

#[test]
fn reports_render_in_chromium_for_every_task() {
    // Regression: missing values, target, predicted vs actual, residuals, coefficients.
    let p = Project::new();
    let html = report(
        &p,
        5,
        &[
            "Predicted against actual",
            "Residuals",
            "Coefficients of ridge",
            "Provenance",
        ],
    );
    assert!(html.contains("LotFrontage"), "missing values per column");

    // Classification: ROC curves one-vs-rest and the confusion matrix.
    let p = Project::penguins();
    report(
        &p,
        5,
        &[
            "ROC curve",
            "Adelie vs rest",
            "Confusion matrix",
            "Coefficients of logistic_regression",
        ],
    );

    // A grid search: one plot of fold scores per candidate, the chosen one named.
    p.edit(
        "pipeline.toml",
        "[evaluate]",
        "[grid]\nC = [0.1, 1.0]\n\n[cv]\nfolds = 4\nmetric = \"log_loss\"\n\n[evaluate]",
    );
    report(&p, 7, &["Cross-validation", "4-fold", "(chosen)"]);

    // Clustering: rows per cluster.
    let p = Project::penguins_from("pipelines/penguins-clusters.toml");
    report(&p, 3, &["Test rows per cluster"]);
}
