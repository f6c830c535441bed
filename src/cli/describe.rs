//! Human renderings of stored objects for `mlpipe show`: fitted states as tables, not JSON.

use std::fmt::Write as _;

use mlpipe::fitted::{StageOutput, StageState};
use mlpipe::provenance::RunRecord;
use mlpipe::stages::Fitted;
use mlpipe::stages::impute::Value;

fn list(items: &[String], max: usize) -> String {
    let mut out = items.iter().take(max).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > max {
        let _ = write!(out, ", … ({} more)", items.len() - max);
    }
    out
}

fn num(v: f64) -> String {
    if v != 0.0 && (v.abs() >= 1e6 || v.abs() < 1e-3) {
        format!("{v:.6e}")
    } else {
        format!("{v:.6}")
    }
}

pub fn run(r: &RunRecord) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "  pipeline  {} (object {})", r.pipeline_name, r.pipeline.short());
    let _ = writeln!(s, "  created   {}", r.created);
    let _ = writeln!(s, "  snapshot  {}  {}", r.snapshot, r.source);
    if let Some(rec) = &r.source_record {
        let _ = writeln!(
            s,
            "  source    record {rec} (query, as_of, rows, schema: mlpipe show {})",
            rec.short()
        );
    }
    let _ = writeln!(s, "  code      {}", r.code.describe());
    let _ = writeln!(s, "  tool      mlpipe {} ({})", r.tool.mlpipe, r.tool.target);
    let crates: Vec<String> = r.tool.crates.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let _ = writeln!(s, "  crates    {}", crates.join(", "));
    let _ = writeln!(s, "  seed      {}", r.seed);
    s.push_str("  stages\n");
    for st in &r.stages {
        let seed = r.stage_seeds.get(&st.name).map_or("", |x| &x[..12]);
        let _ = writeln!(
            s,
            "    {:<28} output {}  key {}  seed {seed}",
            st.name,
            st.output.short(),
            st.key.short()
        );
    }
    for (label, m) in [("test", &r.metrics), ("train", &r.train_metrics)] {
        let line: Vec<String> = m.iter().map(|(k, v)| format!("{k} {}", num(*v))).collect();
        let _ = writeln!(s, "  {label:<9} {}", line.join("  "));
    }
    s
}

pub fn stage_output(o: &StageOutput) -> String {
    let mut s = String::new();
    match &o.state {
        StageState::Gather { schema, suspect_text } => {
            let numeric = schema.iter().filter(|(_, t)| t.name() == "numeric").count();
            let _ = writeln!(
                s,
                "  gather: {} columns ({numeric} numeric, {} categorical)",
                schema.len(),
                schema.len() - numeric
            );
            for (name, ty) in schema {
                let _ = writeln!(s, "    {name:<24} {}", ty.name());
            }
            for t in suspect_text {
                let _ = writeln!(s, "  warning: {}", t.warning("the data"));
            }
        }
        StageState::Split(f) => {
            let show = |v: &[u32]| list(&v.iter().map(|r| (r + 1).to_string()).collect::<Vec<_>>(), 12);
            let _ = writeln!(
                s,
                "  split: {} train rows, {} test rows (data rows, 1-based)",
                f.train.len(),
                f.test.len()
            );
            let _ = writeln!(s, "    train  {}", show(&f.train));
            let _ = writeln!(s, "    test   {}", show(&f.test));
        }
        StageState::Analyse(p) => {
            let _ = writeln!(s, "  profile of {} train rows", p.rows);
            let _ = writeln!(
                s,
                "    {:<16} {:<11} {:>7} {:>7} {:>9} {:>13} {:>13} {:>13} {:>13} {:>8} {:>8} {:>5}  top",
                "column",
                "type",
                "missing",
                "miss%",
                "distinct",
                "min",
                "max",
                "mean",
                "std",
                "skew",
                "outliers",
                "rare"
            );
            for c in &p.columns {
                let (min, max, mean, std, skew) = c.numeric.as_ref().map_or_else(Default::default, |n| {
                    let o = |v: Option<f64>| v.map_or_else(|| "-".into(), num);
                    (
                        num(n.min),
                        num(n.max),
                        num(n.mean),
                        o(n.std),
                        n.skew.map_or_else(|| "-".into(), |k| format!("{k:.3}")),
                    )
                });
                let top: Vec<String> = c.top.iter().map(|(v, n)| format!("{v} ({n})")).collect();
                let outliers = c.numeric.as_ref().map_or_else(String::new, |n| n.outliers.to_string());
                let rare = if c.numeric.is_none() {
                    c.rare_labels.to_string()
                } else {
                    String::new()
                };
                let _ = writeln!(
                    s,
                    "    {:<16} {:<11} {:>7} {:>6.1}% {:>9} {min:>13} {max:>13} {mean:>13} {std:>13} {skew:>8} {outliers:>8} {rare:>5}  {}",
                    c.name,
                    c.column_type.name(),
                    c.missing,
                    c.missing_fraction * 100.0,
                    c.distinct,
                    list(&top, 5)
                );
            }
            if !p.correlations.is_empty() {
                let _ = writeln!(s, "  correlated pairs (|r| above the threshold):");
                for c in &p.correlations {
                    let _ = writeln!(s, "    {:<16} {:<16} r = {:+.4}", c.a, c.b, c.r);
                }
            }
        }
        StageState::Step(Fitted::Impute(f)) => {
            let _ = writeln!(s, "  impute ({}): {} columns", f.strategy, f.fills.len());
            for fill in &f.fills {
                let v = match &fill.value {
                    Value::Number(x) => x.to_string(),
                    Value::Text(t) => format!("\"{t}\""),
                };
                let _ = writeln!(s, "    {:<24} ← {v}", fill.column);
            }
            if !f.indicators.is_empty() {
                let names: Vec<String> = f.indicators.iter().map(|c| format!("{c}_na")).collect();
                let _ = writeln!(s, "  missing indicators added: {}", list(&names, 50));
            }
        }
        StageState::Step(Fitted::RareLabel(f)) => {
            let _ = writeln!(s, "  rare_label: other labels become \"{}\"", f.replace_with);
            for g in &f.columns {
                let note = if g.grouped { "" } else { " (not grouped: few labels)" };
                let _ = writeln!(
                    s,
                    "    {:<16} keeps {}{note}: {}",
                    g.column,
                    g.frequent.len(),
                    list(&g.frequent, 12)
                );
            }
        }
        StageState::Step(Fitted::OneHot(f)) => {
            let total: usize = f.columns.iter().map(|e| e.categories.len()).sum();
            let _ = writeln!(
                s,
                "  one_hot: {} columns → {total} dummies (unseen: {:?})",
                f.columns.len(),
                f.unseen
            );
            for e in &f.columns {
                let dropped = e
                    .dropped
                    .as_ref()
                    .map(|d| format!(" (dropped \"{d}\")"))
                    .unwrap_or_default();
                let _ = writeln!(s, "    {:<16} {}{dropped}", e.column, list(&e.categories, 12));
            }
        }
        StageState::Step(Fitted::Ordinal(f)) => {
            let _ = writeln!(
                s,
                "  ordinal (unseen: {:?}, unknown value {})",
                f.unseen, f.unknown_value
            );
            for m in &f.columns {
                let coded: Vec<String> = m
                    .categories
                    .iter()
                    .enumerate()
                    .map(|(i, c)| format!("{c}={i}"))
                    .collect();
                let _ = writeln!(s, "    {:<16} {}", m.column, list(&coded, 12));
            }
        }
        StageState::Step(Fitted::Scale(f)) => {
            let _ = writeln!(s, "  {:?} scaler: x ↦ (x − center) / scale", f.kind);
            if f.kind == mlpipe::stages::scale::Kind::MinMax {
                let _ = writeln!(
                    s,
                    "  then onto [{}, {}] (center = train min, scale = train range)",
                    f.feature_range.0, f.feature_range.1
                );
            }
            for c in &f.columns {
                let _ = writeln!(
                    s,
                    "    {:<24} center {:<14} scale {}",
                    c.column,
                    num(c.center),
                    num(c.scale)
                );
            }
        }
        StageState::Step(Fitted::Transform(f)) => {
            let what = match &f.function {
                mlpipe::stages::transform::Function::Log { base10, offset } => {
                    format!("{}(x + {offset})", if *base10 { "log10" } else { "ln" })
                }
                mlpipe::stages::transform::Function::Power { exp } => format!("x^{exp}"),
                mlpipe::stages::transform::Function::Reciprocal => "1 / x".to_string(),
            };
            let _ = writeln!(s, "  {what} on {}", list(&f.columns, 20));
        }
        StageState::Step(Fitted::Cap(f)) => {
            for c in &f.columns {
                let o = |v: Option<f64>| v.map_or_else(|| "—".to_string(), num);
                let _ = writeln!(s, "    {:<24} low {:<16} high {}", c.column, o(c.low), o(c.high));
            }
        }
        StageState::Step(Fitted::CountFrequency(f)) => {
            let _ = writeln!(
                s,
                "  count_frequency (unseen → {})",
                if f.unseen_zero { "0" } else { "error" }
            );
            for (c, map) in &f.columns {
                let pairs: Vec<String> = map.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let _ = writeln!(s, "    {c:<16} {}", list(&pairs, 10));
            }
        }
        StageState::Step(Fitted::Woe(f)) => {
            let _ = writeln!(
                s,
                "  weight of evidence (unseen → {})",
                if f.unseen_zero { "0" } else { "error" }
            );
            for (c, map) in &f.columns {
                let pairs: Vec<String> = map.iter().map(|(k, v)| format!("{k}={}", num(*v))).collect();
                let _ = writeln!(s, "    {c:<16} {}", list(&pairs, 8));
            }
        }
        StageState::Step(Fitted::MeanTarget(f)) => {
            let _ = writeln!(s, "  mean_target: prior (train mean) {}", num(f.prior));
            for (c, map) in &f.columns {
                let pairs: Vec<String> = map.iter().map(|(k, v)| format!("{k}={}", num(*v))).collect();
                let _ = writeln!(s, "    {c:<16} {}", list(&pairs, 8));
            }
        }
        StageState::Step(Fitted::Select(f)) => {
            let _ = writeln!(
                s,
                "  examined {} columns, dropped {}",
                f.examined.len(),
                f.dropped.len()
            );
            for (i, c) in f.examined.iter().enumerate() {
                if let Some(score) = f.scores.get(i).filter(|_| !f.dropped.iter().any(|d| &d.column == c)) {
                    let _ = writeln!(s, "    keep {c:<24} score {}", num(*score));
                }
            }
            for d in &f.dropped {
                let _ = writeln!(s, "    drop {:<24} {}", d.column, d.reason);
            }
        }
        StageState::Step(Fitted::Discretise(f)) => {
            for (c, edges) in &f.columns {
                let e: Vec<String> = edges.iter().map(|x| num(*x)).collect();
                let _ = writeln!(s, "    {c:<24} {} bins; inner edges {}", edges.len() + 1, list(&e, 12));
            }
        }
        StageState::Step(Fitted::Expression(f)) => {
            for feature in &f.features {
                let _ = writeln!(s, "  {}", feature.text);
            }
            if !f.drop.is_empty() {
                let _ = writeln!(s, "  then drops {}", list(&f.drop, 20));
            }
        }
        StageState::Step(Fitted::Combine(mlpipe::stages::combine::Fitted::Combine {
            function,
            inputs,
            output,
        })) => {
            let _ = writeln!(s, "  {output} = {function} of {}", list(inputs, 20));
        }
        StageState::Step(Fitted::Combine(mlpipe::stages::combine::Fitted::Relative {
            reference,
            functions,
            inputs,
        })) => {
            let _ = writeln!(
                s,
                "  {} of {} against {reference}",
                functions.join(", "),
                list(inputs, 20)
            );
        }
        StageState::Step(Fitted::Power(f)) => {
            let _ = writeln!(s, "  {:?} with λ fitted by maximum likelihood", f.kind);
            for (c, l) in &f.columns {
                let _ = writeln!(s, "    {c:<24} λ = {l}");
            }
        }
        StageState::Step(Fitted::Rows(mlpipe::stages::rows::Fitted::Missing {
            columns,
            at_predict,
            train_rows_removed,
        })) => {
            let _ = writeln!(
                s,
                "  removed {train_rows_removed} train rows with a missing value in {}",
                list(columns, 20)
            );
            let _ = writeln!(s, "  at predict time: {at_predict:?}");
        }
        StageState::Step(Fitted::Rows(mlpipe::stages::rows::Fitted::Trim {
            caps,
            at_predict,
            train_rows_removed,
        })) => {
            let _ = writeln!(
                s,
                "  removed {train_rows_removed} train rows beyond the caps; at predict time: {at_predict:?}"
            );
            for c in &caps.columns {
                let o = |v: Option<f64>| v.map_or_else(|| "—".to_string(), num);
                let _ = writeln!(s, "    {:<24} low {:<16} high {}", c.column, o(c.low), o(c.high));
            }
        }
        StageState::Step(Fitted::RandomSample(f)) => {
            let by = if f.seed_by.is_empty() {
                "row position".to_string()
            } else {
                f.seed_by.join(", ")
            };
            let _ = writeln!(
                s,
                "  random sample from train values, seeded by {} and {by}",
                f.seed.short()
            );
            for (c, pool) in &f.columns {
                let n = match pool {
                    mlpipe::stages::random_sample::Pool::Numbers(p) => p.len(),
                    mlpipe::stages::random_sample::Pool::Texts(p) => p.len(),
                };
                let _ = writeln!(s, "    {c:<24} {n} train values");
            }
        }
        StageState::Step(Fitted::Datetime(mlpipe::stages::datetime::Fitted::Features {
            columns,
            features,
            drop_original,
        })) => {
            let _ = writeln!(
                s,
                "  {} from {}{}",
                features.join(", "),
                list(columns, 20),
                if *drop_original { " (originals dropped)" } else { "" }
            );
        }
        StageState::Step(Fitted::Datetime(mlpipe::stages::datetime::Fitted::Difference {
            columns,
            reference,
            unit,
        })) => {
            let _ = writeln!(s, "  {} minus {reference}, in {unit}", list(columns, 20));
        }
        StageState::Train(t) => {
            model_lines(&mut s, &t.model, &format!("{:?}", t.target_transform));
            if let Some(cv) = &t.cv {
                cv_lines(&mut s, cv);
            }
        }
        StageState::Evaluate(e) => {
            for (label, m) in [("test", &e.test), ("train", &e.train)] {
                let line: Vec<String> = m.iter().map(|(k, v)| format!("{k} {}", num(*v))).collect();
                let _ = writeln!(s, "  {label:<6} {}", line.join("  "));
            }
            let _ = writeln!(s, "  test predictions digest {}", e.test_predictions);
            if let Some(c) = &e.confusion {
                let width = c.labels.iter().map(String::len).max().unwrap_or(0).max(6);
                let _ = writeln!(s, "  confusion matrix (rows: true class, columns: predicted):");
                let header: Vec<String> = c.labels.iter().map(|l| format!("{l:>width$}")).collect();
                let _ = writeln!(s, "    {:<width$} {}", "", header.join(" "));
                for (label, row) in c.labels.iter().zip(&c.matrix) {
                    let cells: Vec<String> = row.iter().map(|v| format!("{v:>width$}")).collect();
                    let _ = writeln!(s, "    {label:<width$} {}", cells.join(" "));
                }
            }
        }
    }
    for (part, d) in &o.data {
        let _ = writeln!(
            s,
            "  data {part:<5} {} rows × {} columns, digest {}",
            d.rows,
            d.columns,
            d.digest.short()
        );
    }
    s
}

/// Importances, largest first (ties by name), those above zero.
fn importances(s: &mut String, features: &[String], values: &[f64]) {
    let mut ranked: Vec<(&String, f64)> = features.iter().zip(values.iter().copied()).collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let _ = writeln!(s, "    importance (impurity decrease, sums to 1):");
    for (name, w) in ranked.iter().filter(|(_, w)| *w > 0.0) {
        let _ = writeln!(s, "    {name:<28} {w:.6}");
    }
}

/// A fitted model's description (an ensemble's members indented under it).
fn model_lines(s: &mut String, model: &mlpipe::models::Model, target_transform: &str) {
    match model {
        mlpipe::models::Model::Clusters(m) => {
            let _ = writeln!(
                s,
                "  {} on {} features: {} clusters, train inertia {}",
                m.estimator,
                m.features.len(),
                m.centres.len(),
                m.inertia
            );
            for (c, centre) in m.centres.iter().enumerate() {
                let coords: Vec<String> = m
                    .features
                    .iter()
                    .zip(centre)
                    .map(|(f, v)| format!("{f} {v:.6}"))
                    .collect();
                let _ = writeln!(s, "    cluster {c}: {}", coords.join(", "));
            }
        }
        mlpipe::models::Model::Ensemble(m) => {
            let _ = writeln!(
                s,
                "  {} of {} on {} features",
                m.estimator,
                m.members.len(),
                m.features.len()
            );
            for (i, (name, member)) in m.members.iter().enumerate() {
                let weight = m.weights.get(i).map(|w| format!(", weight {w}")).unwrap_or_default();
                let _ = writeln!(s, "  base {name}{weight}:");
                let mut inner = String::new();
                model_lines(&mut inner, member, "None");
                for line in inner.lines() {
                    let _ = writeln!(s, "    {line}");
                }
            }
            if let Some(f) = &m.final_model {
                let _ = writeln!(s, "  final (on the bases' out-of-fold predictions):");
                let mut inner = String::new();
                model_lines(&mut inner, f, "None");
                for line in inner.lines() {
                    let _ = writeln!(s, "    {line}");
                }
            }
        }
        mlpipe::models::Model::Linear(m) => {
            let _ = writeln!(
                s,
                "  {} on {} features, target transform {}; intercept {}",
                m.estimator,
                m.features.len(),
                target_transform,
                m.intercept
            );
            for (name, w) in m.features.iter().zip(&m.coefficients) {
                let _ = writeln!(s, "    {name:<28} {w:>+.9e}");
            }
        }
        mlpipe::models::Model::Trees(m) => {
            let nodes: usize = m.trees.iter().map(|t| t.feature.len()).sum();
            let _ = writeln!(
                s,
                "  {} on {} features, target transform {}; {} trees, {nodes} nodes, start {}, learning rate {}",
                m.estimator,
                m.features.len(),
                target_transform,
                m.trees.len(),
                m.init,
                m.learning_rate
            );
            importances(s, &m.features, &m.importances);
        }
        mlpipe::models::Model::Classifier(m) => {
            let _ = writeln!(
                s,
                "  {} on {} features; classes {}",
                m.estimator,
                m.features.len(),
                m.classes.join(", ")
            );
            match &m.scores {
                mlpipe::models::ClassScores::Linear {
                    coefficients,
                    intercepts,
                } => {
                    // Two classes: one row, for the second (positive) class.
                    let rows: Vec<&String> = if coefficients.len() == 1 {
                        m.classes.iter().skip(1).collect()
                    } else {
                        m.classes.iter().collect()
                    };
                    for ((class, w), b) in rows.iter().zip(coefficients).zip(intercepts) {
                        let _ = writeln!(s, "    class {class}: intercept {b}");
                        for (name, c) in m.features.iter().zip(w) {
                            let _ = writeln!(s, "      {name:<26} {c:>+.9e}");
                        }
                    }
                }
                mlpipe::models::ClassScores::Trees { trees } => {
                    let nodes: usize = trees.iter().map(|t| t.feature.len()).sum();
                    let _ = writeln!(s, "    {} trees, {nodes} nodes", trees.len());
                }
                mlpipe::models::ClassScores::Boosted {
                    init,
                    learning_rate,
                    rounds,
                } => {
                    let _ = writeln!(
                        s,
                        "    {} rounds of {} trees, start {init:?}, learning rate {learning_rate}",
                        rounds.len(),
                        init.len()
                    );
                }
            }
            if !m.importances.is_empty() {
                importances(s, &m.features, &m.importances);
            }
        }
    }
}

/// Cross-validation scores: one line per candidate, the chosen one marked.
fn cv_lines(s: &mut String, cv: &mlpipe::fitted::CvReport) {
    let _ = writeln!(
        s,
        "  {}-fold cross-validation on the train rows, {}:",
        cv.folds, cv.metric
    );
    for (i, c) in cv.candidates.iter().enumerate() {
        let params: Vec<String> = c.params.iter().map(|(k, v)| format!("{k} = {v}")).collect();
        let mark = if i == cv.chosen && cv.candidates.len() > 1 {
            "  ← chosen"
        } else {
            ""
        };
        let folds: Vec<String> = c.scores.iter().map(|v| format!("{v:.6}")).collect();
        let _ = writeln!(
            s,
            "    {}mean {:.6} ± {:.6}  folds {}{mark}",
            if params.is_empty() {
                String::new()
            } else {
                format!("{}: ", params.join(", "))
            },
            c.mean,
            c.std,
            folds.join(" ")
        );
    }
}
