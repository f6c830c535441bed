//! The run report: one self-contained HTML page (inline CSS and SVG, no network resource) with the
//! plots a user reads a run by — missing values, the target, predictions against the truth, ROC curves
//! and the confusion matrix, cross-validation folds, coefficients or importances — and the run's
//! provenance. The same run always gives the same bytes.

use std::fmt::Write;

use crate::fitted::{CvReport, EvaluateState, Predictions};
use crate::metrics::auc;
use crate::models::{ClassScores, Model};
use crate::provenance::RunRecord;
use crate::stages::analyse::Profile;

/// What the page is drawn from.
pub struct ReportData<'a> {
    pub record: &'a RunRecord,
    pub task: &'a str,
    pub target: &'a str,
    pub profile: Option<&'a Profile>,
    /// The train target: numbers (regression) or labels (classification).
    pub train_target: Target,
    /// The test rows' truth and the model's predictions for them.
    pub test_truth: Target,
    pub test_predictions: &'a Predictions,
    pub model: &'a Model,
    pub evaluation: Option<&'a EvaluateState>,
    pub cv: Option<&'a CvReport>,
}

pub enum Target {
    Numbers(Vec<f64>),
    Labels(Vec<String>),
    None,
}

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 320.0;
const MARGIN: f64 = 72.0;
const BLUE: &str = "#2f6db5";
const ORANGE: &str = "#d9792b";

pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A number for a label: short, and the same text on every run.
fn num(x: f64) -> String {
    if x == 0.0 {
        return "0".into();
    }
    let a = x.abs();
    if (1e-3..1e6).contains(&a) {
        let s = format!("{x:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        format!("{x:.3e}")
    }
}

fn svg_open(out: &mut String, title: &str, height: f64) {
    let _ = write!(
        out,
        r#"<figure><figcaption>{}</figcaption><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img" aria-label="{}">"#,
        escape(title),
        escape(title)
    );
}

fn svg_close(out: &mut String) {
    out.push_str("</svg></figure>\n");
}

/// Horizontal bars, one per label, from zero (negative values to the left).
fn bars(out: &mut String, title: &str, items: &[(String, f64)]) {
    if items.is_empty() {
        return;
    }
    let row = 18.0;
    let height = MARGIN + row * items.len() as f64 + 16.0;
    svg_open(out, title, height);
    let label_w = 200.0;
    let lo = items.iter().map(|i| i.1).fold(0.0, f64::min);
    let hi = items.iter().map(|i| i.1).fold(0.0, f64::max);
    let span = if hi - lo > 0.0 { hi - lo } else { 1.0 };
    let plot_w = WIDTH - label_w - 80.0;
    let x = |v: f64| label_w + (v - lo) / span * plot_w;
    for (i, (label, v)) in items.iter().enumerate() {
        let y = 24.0 + row * i as f64;
        let (a, b) = (x(0.0).min(x(*v)), x(0.0).max(x(*v)));
        let colour = if *v < 0.0 { ORANGE } else { BLUE };
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end" class="l">{}</text><rect x="{a:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{colour}"/><text x="{:.1}" y="{:.1}" class="l">{}</text>"#,
            label_w - 6.0,
            y + 12.0,
            escape(label),
            y + 2.0,
            (b - a).max(0.5),
            row - 5.0,
            b + 4.0,
            y + 12.0,
            num(*v)
        );
    }
    let _ = write!(
        out,
        r##"<line x1="{0:.1}" x2="{0:.1}" y1="20" y2="{1:.1}" stroke="#333"/>"##,
        x(0.0),
        height - 16.0
    );
    svg_close(out);
}

/// A histogram of `values` in `bins` equal-width bins.
fn histogram(out: &mut String, title: &str, values: &[f64], bins: usize) {
    let present: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if present.is_empty() {
        return;
    }
    let lo = present.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = present.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let width = if hi > lo { (hi - lo) / bins as f64 } else { 1.0 };
    let mut counts = vec![0usize; bins];
    for v in &present {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let b = (((v - lo) / width) as usize).min(bins - 1);
        counts[b] += 1;
    }
    let top = counts.iter().copied().max().unwrap_or(1).max(1) as f64;
    svg_open(out, title, HEIGHT);
    let plot_w = WIDTH - 2.0 * MARGIN;
    let plot_h = HEIGHT - 2.0 * MARGIN;
    let bar_w = plot_w / bins as f64;
    for (i, c) in counts.iter().enumerate() {
        let h = *c as f64 / top * plot_h;
        let _ = write!(
            out,
            r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" fill="{BLUE}"><title>{}–{}: {c}</title></rect>"#,
            MARGIN + bar_w * i as f64,
            MARGIN + plot_h - h,
            (bar_w - 1.0).max(0.5),
            num(lo + width * i as f64),
            num(lo + width * (i + 1) as f64)
        );
    }
    axes(out, (lo, hi), (0.0, top), "", "rows");
    svg_close(out);
}

/// Axis lines with their end values.
#[allow(clippy::many_single_char_names)] // l, r, t, b: the plot's edges
fn axes(out: &mut String, x: (f64, f64), y: (f64, f64), x_label: &str, y_label: &str) {
    let (l, r, t, b) = (MARGIN, WIDTH - MARGIN, MARGIN, HEIGHT - MARGIN);
    let _ = write!(
        out,
        r##"<line x1="{l}" y1="{b}" x2="{r}" y2="{b}" stroke="#333"/><line x1="{l}" y1="{t}" x2="{l}" y2="{b}" stroke="#333"/><text x="{l}" y="{:.1}" class="l">{}</text><text x="{r}" y="{:.1}" text-anchor="end" class="l">{}</text><text x="{:.1}" y="{b}" text-anchor="end" class="l">{}</text><text x="{:.1}" y="{:.1}" text-anchor="end" class="l">{}</text><text x="{:.1}" y="{:.1}" text-anchor="middle" class="l">{}</text><text x="12" y="{:.1}" class="l">{}</text>"##,
        b + 16.0,
        num(x.0),
        b + 16.0,
        num(x.1),
        l - 4.0,
        num(y.0),
        l - 4.0,
        t + 10.0,
        num(y.1),
        f64::midpoint(l, r),
        b + 32.0,
        escape(x_label),
        t - 12.0,
        escape(y_label)
    );
}

/// Points `(x, y)`; with `diagonal`, the line y = x.
#[allow(clippy::many_single_char_names)] // x, y and their pixel maps
fn scatter(
    out: &mut String,
    title: &str,
    points: &[(f64, f64)],
    labels: (&str, &str),
    diagonal: bool,
    zero_line: bool,
) {
    if points.is_empty() {
        return;
    }
    let (mut x0, mut x1, mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
    for (x, y) in points {
        x0 = x0.min(*x);
        x1 = x1.max(*x);
        y0 = y0.min(*y);
        y1 = y1.max(*y);
    }
    if diagonal {
        (x0, x1) = (x0.min(y0), x1.max(y1));
        (y0, y1) = (x0, x1);
    }
    let (sx, sy) = ((x1 - x0).max(f64::MIN_POSITIVE), (y1 - y0).max(f64::MIN_POSITIVE));
    let px = |x: f64| MARGIN + (x - x0) / sx * (WIDTH - 2.0 * MARGIN);
    let py = |y: f64| HEIGHT - MARGIN - (y - y0) / sy * (HEIGHT - 2.0 * MARGIN);
    svg_open(out, title, HEIGHT);
    if diagonal {
        let _ = write!(
            out,
            r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#999" stroke-dasharray="4 3"/>"##,
            px(x0),
            py(y0),
            px(x1),
            py(y1)
        );
    }
    if zero_line && y0 < 0.0 && y1 > 0.0 {
        let _ = write!(
            out,
            r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#999" stroke-dasharray="4 3"/>"##,
            px(x0),
            py(0.0),
            px(x1),
            py(0.0)
        );
    }
    for (x, y) in points {
        let _ = write!(
            out,
            r#"<circle cx="{:.1}" cy="{:.1}" r="2.2" fill="{BLUE}" fill-opacity="0.6"/>"#,
            px(*x),
            py(*y)
        );
    }
    axes(out, (x0, x1), (y0, y1), labels.0, labels.1);
    svg_close(out);
}

/// ROC curves, one per (name, positive flags, scores), with their AUC in the legend.
fn roc(out: &mut String, curves: &[(String, Vec<bool>, Vec<f64>)]) {
    svg_open(out, "ROC curve (test rows)", HEIGHT);
    let px = |x: f64| MARGIN + x * (WIDTH - 2.0 * MARGIN);
    let py = |y: f64| HEIGHT - MARGIN - y * (HEIGHT - 2.0 * MARGIN);
    let _ = write!(
        out,
        r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#999" stroke-dasharray="4 3"/>"##,
        px(0.0),
        py(0.0),
        px(1.0),
        py(1.0)
    );
    let palette = [BLUE, ORANGE, "#3a9a5b", "#8e5bb5", "#b5473a", "#5b8e9a"];
    for (i, (name, positive, score)) in curves.iter().enumerate() {
        let mut order: Vec<usize> = (0..score.len()).collect();
        order.sort_by(|a, b| score[*b].total_cmp(&score[*a]).then(a.cmp(b)));
        let p = positive.iter().filter(|x| **x).count() as f64;
        let n = positive.len() as f64 - p;
        if p == 0.0 || n == 0.0 {
            continue;
        }
        let (mut tp, mut fp) = (0.0, 0.0);
        let mut path = format!("M{:.1} {:.1}", px(0.0), py(0.0));
        let mut k = 0;
        while k < order.len() {
            // Rows with equal scores move together (one diagonal step).
            let mut j = k;
            #[allow(clippy::float_cmp)]
            while j + 1 < order.len() && score[order[j + 1]] == score[order[k]] {
                j += 1;
            }
            for &r in &order[k..=j] {
                if positive[r] {
                    tp += 1.0;
                } else {
                    fp += 1.0;
                }
            }
            let _ = write!(path, " L{:.1} {:.1}", px(fp / n), py(tp / p));
            k = j + 1;
        }
        let colour = palette[i % palette.len()];
        let area = auc(positive, score).unwrap_or(f64::NAN);
        let _ = write!(
            out,
            r#"<path d="{path}" fill="none" stroke="{colour}" stroke-width="1.8"/><text x="{:.1}" y="{:.1}" class="l" style="fill:{colour}">{} (AUC {})</text>"#,
            WIDTH - MARGIN - 200.0,
            HEIGHT - MARGIN - 14.0 * (curves.len() - i) as f64,
            escape(name),
            num(area)
        );
    }
    axes(out, (0.0, 1.0), (0.0, 1.0), "false positive rate", "true positive rate");
    svg_close(out);
}

/// The confusion matrix as shaded cells.
fn confusion(out: &mut String, labels: &[String], matrix: &[Vec<u64>]) {
    let k = labels.len();
    let cell = (260.0 / k as f64).clamp(28.0, 64.0);
    let left = 160.0;
    let height = MARGIN + cell * k as f64 + 40.0;
    svg_open(
        out,
        "Confusion matrix (test rows; rows: true class, columns: predicted)",
        height,
    );
    let top = matrix.iter().flatten().copied().max().unwrap_or(1).max(1) as f64;
    for (i, label) in labels.iter().enumerate() {
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end" class="l">{}</text><text x="{:.1}" y="{:.1}" text-anchor="middle" class="l">{}</text>"#,
            left - 6.0,
            MARGIN + cell * i as f64 + cell / 2.0 + 4.0,
            escape(label),
            left + cell * i as f64 + cell / 2.0,
            MARGIN - 8.0,
            escape(label)
        );
        for (j, v) in matrix[i].iter().enumerate() {
            let shade = *v as f64 / top;
            let text = if shade > 0.5 { "#fff" } else { "#000" };
            let _ = write!(
                out,
                r##"<rect x="{:.1}" y="{:.1}" width="{cell:.1}" height="{cell:.1}" fill="{BLUE}" fill-opacity="{:.3}" stroke="#ccc"/><text x="{:.1}" y="{:.1}" text-anchor="middle" class="l" style="fill:{text}">{v}</text>"##,
                left + cell * j as f64,
                MARGIN + cell * i as f64,
                0.08 + 0.92 * shade,
                left + cell * j as f64 + cell / 2.0,
                MARGIN + cell * i as f64 + cell / 2.0 + 4.0
            );
        }
    }
    svg_close(out);
}

/// The model's coefficients or importances, largest in size first (at most 30).
fn model_weights(model: &Model) -> Option<(String, Vec<(String, f64)>)> {
    let features = model.features();
    let (title, values): (String, Vec<(String, f64)>) = match model {
        Model::Linear(m) => (
            format!("Coefficients of {} (largest 30 in size)", m.estimator),
            features.iter().cloned().zip(m.coefficients.iter().copied()).collect(),
        ),
        Model::Classifier(m) => match &m.scores {
            ClassScores::Linear { coefficients, .. } => {
                let classes: Vec<&String> = if coefficients.len() == 1 {
                    m.classes.iter().skip(1).collect()
                } else {
                    m.classes.iter().collect()
                };
                (
                    format!("Coefficients of {} by class (largest 30 in size)", m.estimator),
                    classes
                        .iter()
                        .zip(coefficients)
                        .flat_map(|(c, w)| features.iter().zip(w).map(move |(f, v)| (format!("{c}: {f}"), *v)))
                        .collect(),
                )
            }
            _ => (
                format!("Feature importances of {} (largest 30)", m.estimator),
                features.iter().cloned().zip(m.importances.iter().copied()).collect(),
            ),
        },
        Model::Trees(m) => (
            format!("Feature importances of {} (largest 30)", m.estimator),
            features.iter().cloned().zip(m.importances.iter().copied()).collect(),
        ),
        Model::Clusters(_) | Model::Ensemble(_) => return None,
    };
    let mut values = values;
    values.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()).then_with(|| a.0.cmp(&b.0)));
    values.truncate(30);
    Some((title, values))
}

fn provenance(out: &mut String, r: &RunRecord) {
    let rows: Vec<(&str, String)> = vec![
        ("run", r.run.hex()),
        ("pipeline", format!("{} (object {})", r.pipeline_name, r.pipeline.hex())),
        (
            "data snapshot",
            format!("{} ({})", r.snapshot.hex(), crate::database::redact_url(&r.source)),
        ),
        ("code", r.code.describe()),
        ("master seed", r.seed.to_string()),
        ("mlpipe", format!("{} ({})", r.tool.mlpipe, r.tool.target)),
        ("created", r.created.clone()),
    ];
    out.push_str("<h2>Provenance</h2><table class=\"kv\">");
    for (k, v) in rows {
        let _ = write!(out, "<tr><th>{k}</th><td><code>{}</code></td></tr>", escape(&v));
    }
    out.push_str("</table><h3>Stages</h3><table class=\"grid\"><tr><th>stage</th><th>output</th><th>seed</th></tr>");
    for s in &r.stages {
        let seed = r.stage_seeds.get(&s.name).map_or("", String::as_str);
        let _ = write!(
            out,
            "<tr><td>{}</td><td><code>{}</code></td><td><code>{}</code></td></tr>",
            escape(&s.name),
            s.output.hex(),
            escape(seed)
        );
    }
    out.push_str("</table>\n");
}

fn metrics_table(out: &mut String, r: &RunRecord) {
    out.push_str("<h2>Metrics</h2><table class=\"grid\"><tr><th>metric</th><th>test</th><th>train</th></tr>");
    for (name, v) in &r.metrics {
        let train = r.train_metrics.get(name).map_or_else(String::new, |t| format!("{t}"));
        let _ = write!(out, "<tr><td>{}</td><td>{v}</td><td>{train}</td></tr>", escape(name));
    }
    out.push_str("</table>\n");
}

fn cv_section(out: &mut String, cv: &CvReport) {
    let _ = write!(
        out,
        "<h2>Cross-validation</h2><p>{}-fold on the train rows, scored by {}; every step refitted on each fold's other folds.</p>",
        cv.folds,
        escape(&cv.metric)
    );
    for (i, c) in cv.candidates.iter().enumerate() {
        let params: Vec<String> = c.params.iter().map(|(k, v)| format!("{k} = {v}")).collect();
        let name = if params.is_empty() {
            "the estimator".to_string()
        } else {
            params.join(", ")
        };
        let chosen = if i == cv.chosen && cv.candidates.len() > 1 {
            " (chosen)"
        } else {
            ""
        };
        let items: Vec<(String, f64)> = c
            .scores
            .iter()
            .enumerate()
            .map(|(f, s)| (format!("fold {}", f + 1), *s))
            .collect();
        bars(
            out,
            &format!("{name}{chosen}: mean {} ± {}", num(c.mean), num(c.std)),
            &items,
        );
    }
}

/// The whole page.
pub fn render(d: &ReportData<'_>) -> String {
    let r = d.record;
    let mut body = String::new();
    let _ = write!(
        body,
        "<h1>Run {} — {}</h1><p>Task: {}; target <code>{}</code>; estimator <code>{}</code>.</p>",
        r.run.short(),
        escape(&r.pipeline_name),
        escape(d.task),
        escape(d.target),
        escape(d.model.estimator())
    );
    metrics_table(&mut body, r);
    if let Some(profile) = d.profile {
        let mut missing: Vec<(String, f64)> = profile
            .columns
            .iter()
            .filter(|c| c.missing > 0)
            .map(|c| (c.name.clone(), c.missing_fraction))
            .collect();
        missing.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        body.push_str("<h2>Data</h2>");
        if missing.is_empty() {
            body.push_str("<p>No column has missing values in the train rows.</p>");
        } else {
            bars(
                &mut body,
                "Missing values per column (fraction of train rows)",
                &missing,
            );
        }
    }
    match &d.train_target {
        Target::Numbers(v) => histogram(&mut body, &format!("Target {} (train rows)", d.target), v, 30),
        Target::Labels(labels) => {
            let mut counts = std::collections::BTreeMap::new();
            for l in labels {
                *counts.entry(l.clone()).or_insert(0.0) += 1.0;
            }
            bars(
                &mut body,
                &format!("Target {} (train rows per class)", d.target),
                &counts.into_iter().collect::<Vec<_>>(),
            );
        }
        Target::None => {}
    }
    body.push_str("<h2>Predictions on the test rows</h2>");
    match (d.test_predictions, &d.test_truth) {
        (Predictions::Values(pred), Target::Numbers(truth)) if d.task == "regression" => {
            let pairs: Vec<(f64, f64)> = truth.iter().copied().zip(pred.iter().copied()).collect();
            scatter(
                &mut body,
                "Predicted against actual",
                &pairs,
                ("actual", "predicted"),
                true,
                false,
            );
            let residuals: Vec<(f64, f64)> = pairs.iter().map(|(y, p)| (*p, y - p)).collect();
            scatter(
                &mut body,
                "Residuals (actual − predicted) against predicted",
                &residuals,
                ("predicted", "residual"),
                false,
                true,
            );
        }
        (Predictions::Values(clusters), _) => {
            let mut counts = std::collections::BTreeMap::new();
            for c in clusters {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let c = *c as u64;
                *counts.entry(c).or_insert(0.0) += 1.0;
            }
            let items: Vec<(String, f64)> = counts.into_iter().map(|(c, n)| (format!("cluster {c}"), n)).collect();
            bars(&mut body, "Test rows per cluster", &items);
        }
        (Predictions::Classes { proba, n_classes, .. }, Target::Labels(truth)) => {
            if let Some((classes, _)) = d.model.classes() {
                let column = |k: usize| -> Vec<f64> { proba.chunks(*n_classes).map(|row| row[k]).collect() };
                let curves: Vec<(String, Vec<bool>, Vec<f64>)> = if *n_classes == 2 {
                    vec![(
                        format!("{} (positive)", classes[1]),
                        truth.iter().map(|t| t == &classes[1]).collect(),
                        column(1),
                    )]
                } else {
                    (0..*n_classes)
                        .map(|k| {
                            (
                                format!("{} vs rest", classes[k]),
                                truth.iter().map(|t| t == &classes[k]).collect(),
                                column(k),
                            )
                        })
                        .collect()
                };
                roc(&mut body, &curves);
            }
            if let Some(c) = d.evaluation.and_then(|e| e.confusion.as_ref()) {
                confusion(&mut body, &c.labels, &c.matrix);
            }
        }
        _ => {}
    }
    if let Some(cv) = d.cv {
        cv_section(&mut body, cv);
    }
    if let Some((title, weights)) = model_weights(d.model) {
        body.push_str("<h2>Model</h2>");
        bars(&mut body, &title, &weights);
    }
    provenance(&mut body, r);
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>mlpipe run {short}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 760px; color: #222; }}
h1 {{ font-size: 1.5em; }} h2 {{ margin-top: 2em; border-bottom: 1px solid #ddd; }}
figure {{ margin: 1.2em 0; }} figcaption {{ font-weight: 600; margin-bottom: .3em; }}
svg {{ max-width: 100%; height: auto; background: #fafafa; }} .l {{ font-size: 11px; fill: #333; }}
table {{ border-collapse: collapse; }} td, th {{ padding: 2px 8px; text-align: left; border-bottom: 1px solid #eee; }}
code {{ font-size: 12px; word-break: break-all; }}
</style></head>
<body>
{body}<script>
// Rendering check (the report test reads it): every plot must have drawn something.
(function () {{
  var figures = document.querySelectorAll("svg"), drawn = 0;
  for (var i = 0; i < figures.length; i++) {{
    var box = figures[i].getBBox();
    if (figures[i].childElementCount > 0 && box.width > 0 && box.height > 0) drawn++;
    else console.error("plot " + i + " drew nothing");
  }}
  document.body.setAttribute("data-plots", String(figures.length));
  document.body.setAttribute("data-drawn", String(drawn));
}})();
</script>
</body></html>
"#,
        short = r.run.short()
    )
}
