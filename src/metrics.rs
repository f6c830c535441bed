//! Metrics as scikit-learn defines them, summed in row order.
//!
//! Classification metrics take class indices: `0..K` are the model's classes (sorted labels), and
//! indices from `K` on are labels met only in the evaluated rows (the model cannot predict them; they
//! count as misses, as in scikit-learn's label union).

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::vocab::Metric;

pub fn rmse(y: &[f64], p: &[f64]) -> f64 {
    (y.iter().zip(p).map(|(a, b)| (a - b) * (a - b)).sum::<f64>() / y.len() as f64).sqrt()
}

pub fn mae(y: &[f64], p: &[f64]) -> f64 {
    y.iter().zip(p).map(|(a, b)| (a - b).abs()).sum::<f64>() / y.len() as f64
}

/// R², with scikit-learn's convention for a constant target: 1 for a perfect fit, else 0.
pub fn r2(y: &[f64], p: &[f64]) -> f64 {
    let mean = y.iter().sum::<f64>() / y.len() as f64;
    let ss_res: f64 = y.iter().zip(p).map(|(a, b)| (a - b) * (a - b)).sum();
    let ss_tot: f64 = y.iter().map(|a| (a - mean) * (a - mean)).sum();
    if ss_tot == 0.0 {
        return if ss_res == 0.0 { 1.0 } else { 0.0 };
    }
    1.0 - ss_res / ss_tot
}

/// Mean absolute percentage error as a fraction (scikit-learn's: |y − p| / max(|y|, ε)).
pub fn mape(y: &[f64], p: &[f64]) -> f64 {
    y.iter()
        .zip(p)
        .map(|(a, b)| (a - b).abs() / a.abs().max(f64::EPSILON))
        .sum::<f64>()
        / y.len() as f64
}

/// Root mean squared log error; undefined (an error) for values ≤ −1.
pub fn rmsle(y: &[f64], p: &[f64]) -> Result<f64> {
    if let Some(v) = y.iter().chain(p).find(|v| **v <= -1.0) {
        return Err(
            Error::data(format!("rmsle needs targets and predictions above -1, but one is {v}"))
                .with_hint("use rmse or mae for targets that can be ≤ -1"),
        );
    }
    let sum: f64 = y
        .iter()
        .zip(p)
        .map(|(a, b)| {
            let d = a.ln_1p() - b.ln_1p();
            d * d
        })
        .sum();
    Ok((sum / y.len() as f64).sqrt())
}

/// One regression metric.
pub fn regression(metric: Metric, y: &[f64], p: &[f64]) -> f64 {
    match metric {
        Metric::Rmse => rmse(y, p),
        Metric::Mae => mae(y, p),
        Metric::R2 => r2(y, p),
        Metric::Mape => mape(y, p),
        Metric::Rmsle => rmsle(y, p).unwrap_or(f64::NAN),
        _ => f64::NAN,
    }
}

/// The regression metrics of predictions `p` for targets `y`.
pub fn compute(metrics: &[Metric], y: &[f64], p: &[f64]) -> Result<BTreeMap<String, f64>> {
    metrics
        .iter()
        .map(|m| {
            let v = match m {
                Metric::Rmsle => rmsle(y, p)?,
                _ => regression(*m, y, p),
            };
            Ok((m.name().to_string(), v))
        })
        .collect()
}

/// A classifier's predictions on some rows, with the truth.
pub struct Classified<'a> {
    /// True class index per row (≥ `n_classes` for a label the model never saw).
    pub truth: &'a [usize],
    /// Predicted class index per row.
    pub predicted: &'a [usize],
    /// Row-major probabilities, `n_classes` per row.
    pub proba: &'a [f64],
    pub n_classes: usize,
    /// Labels by index (the model's classes, then labels only seen here), for messages.
    pub labels: &'a [String],
}

/// `confusion[t][p]`: rows with true index t predicted as p, over every label index.
pub fn confusion(truth: &[usize], predicted: &[usize], n_labels: usize) -> Vec<Vec<u64>> {
    let mut m = vec![vec![0; n_labels]; n_labels];
    for (t, p) in truth.iter().zip(predicted) {
        m[*t][*p] += 1;
    }
    m
}

/// Per-label (tp, fp, fn) for labels that occur in the truth or the predictions (scikit-learn's
/// `unique_labels`), with their support.
fn label_counts(c: &Classified<'_>) -> Vec<(usize, f64, f64, f64, f64)> {
    let n_labels = c.labels.len();
    let m = confusion(c.truth, c.predicted, n_labels);
    (0..n_labels)
        .filter_map(|l| {
            let tp = m[l][l] as f64;
            let support: u64 = m[l].iter().sum();
            let predicted: u64 = (0..n_labels).map(|t| m[t][l]).sum();
            if support == 0 && predicted == 0 {
                return None;
            }
            Some((l, tp, predicted as f64 - tp, support as f64 - tp, support as f64))
        })
        .collect()
}

fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 { 0.0 } else { a / b }
}

#[derive(Clone, Copy)]
enum Score {
    Precision,
    Recall,
    F1,
}

fn per_label(score: Score, tp: f64, fp: f64, fn_: f64) -> f64 {
    match score {
        Score::Precision => ratio(tp, tp + fp),
        Score::Recall => ratio(tp, tp + fn_),
        Score::F1 => ratio(2.0 * tp, 2.0 * tp + fp + fn_),
    }
}

fn averaged(c: &Classified<'_>, score: Score, weighted: bool) -> f64 {
    let counts = label_counts(c);
    let (mut sum, mut weights) = (0.0, 0.0);
    for (_, tp, fp, fn_, support) in &counts {
        let w = if weighted { *support } else { 1.0 };
        sum += w * per_label(score, *tp, *fp, *fn_);
        weights += w;
    }
    ratio(sum, weights)
}

fn binary(c: &Classified<'_>, score: Score, metric: Metric) -> Result<f64> {
    two_classes(c, metric)?;
    let (mut tp, mut fp, mut fn_) = (0.0, 0.0, 0.0);
    for (t, p) in c.truth.iter().zip(c.predicted) {
        match (*t == 1, *p == 1) {
            (true, true) => tp += 1.0,
            (false, true) => fp += 1.0,
            (true, false) => fn_ += 1.0,
            (false, false) => {}
        }
    }
    Ok(per_label(score, tp, fp, fn_))
}

fn two_classes(c: &Classified<'_>, metric: Metric) -> Result<()> {
    if c.n_classes == 2 {
        return Ok(());
    }
    let alternative = match metric {
        Metric::RocAuc => "roc_auc_ovr",
        Metric::Precision => "precision_macro",
        Metric::Recall => "recall_macro",
        _ => "f1_macro",
    };
    Err(Error::spec(
        format!(
            "metric {} is defined for two classes (the second, \"{}\", positive), but the model has {}",
            metric.name(),
            c.labels.get(1).map_or("", String::as_str),
            c.n_classes
        ),
        None,
    )
    .with_hint(format!(
        "use {alternative} (or its _weighted form) in [evaluate] metrics"
    )))
}

/// Area under the ROC curve of `score` for rows where `positive` holds: the probability that a positive
/// scores above a negative, ties counting half (the trapezoids of scikit-learn's curve).
pub fn auc(positive: &[bool], score: &[f64]) -> Option<f64> {
    let mut order: Vec<usize> = (0..score.len()).collect();
    order.sort_by(|a, b| score[*a].total_cmp(&score[*b]));
    let (mut rank_sum, mut n_pos) = (0.0, 0.0);
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        #[allow(clippy::float_cmp)] // only equal scores tie
        while j + 1 < order.len() && score[order[j + 1]] == score[order[i]] {
            j += 1;
        }
        let mean_rank = (i + j) as f64 / 2.0 + 1.0;
        for &r in &order[i..=j] {
            if positive[r] {
                rank_sum += mean_rank;
                n_pos += 1.0;
            }
        }
        i = j + 1;
    }
    let n_neg = score.len() as f64 - n_pos;
    if n_pos == 0.0 || n_neg == 0.0 {
        return None;
    }
    Some((rank_sum - n_pos * (n_pos + 1.0) / 2.0) / (n_pos * n_neg))
}

fn column(c: &Classified<'_>, class: usize) -> Vec<f64> {
    c.proba.chunks(c.n_classes).map(|row| row[class]).collect()
}

fn one_vs_rest(c: &Classified<'_>, metric: Metric) -> Result<f64> {
    if let Some(t) = c.truth.iter().find(|t| **t >= c.n_classes) {
        return Err(unseen(c, *t, metric));
    }
    let (mut sum, mut weights) = (0.0, 0.0);
    for class in 0..c.n_classes {
        let positive: Vec<bool> = c.truth.iter().map(|t| *t == class).collect();
        let support = positive.iter().filter(|p| **p).count() as f64;
        let Some(a) = auc(&positive, &column(c, class)) else {
            return Err(Error::data(format!(
                "{} needs every class among the evaluated rows, but class \"{}\" {}",
                metric.name(),
                c.labels[class],
                if support == 0.0 { "has none" } else { "is all of them" }
            ))
            .with_hint("use a stratified split (method = \"random\", stratify = the target), or another metric"));
        };
        let w = if metric == Metric::RocAucOvrWeighted {
            support
        } else {
            1.0
        };
        sum += w * a;
        weights += w;
    }
    Ok(sum / weights)
}

fn unseen(c: &Classified<'_>, index: usize, metric: Metric) -> Error {
    Error::data(format!(
        "{} cannot score class \"{}\": it is in the evaluated rows but not among the classes the model was trained on",
        metric.name(),
        c.labels[index]
    ))
    .with_hint("split so that train holds every class (stratify = the target), or drop the rare class")
}

/// One classification metric.
pub fn classification(metric: Metric, c: &Classified<'_>) -> Result<f64> {
    let n = c.truth.len() as f64;
    Ok(match metric {
        Metric::Accuracy => c.truth.iter().zip(c.predicted).filter(|(t, p)| t == p).count() as f64 / n,
        Metric::BalancedAccuracy => {
            let m = confusion(c.truth, c.predicted, c.labels.len());
            let recalls: Vec<f64> = m
                .iter()
                .enumerate()
                .filter_map(|(l, row)| {
                    let support: u64 = row.iter().sum();
                    (support > 0).then(|| row[l] as f64 / support as f64)
                })
                .collect();
            recalls.iter().sum::<f64>() / recalls.len() as f64
        }
        Metric::Precision => binary(c, Score::Precision, metric)?,
        Metric::Recall => binary(c, Score::Recall, metric)?,
        Metric::F1 => binary(c, Score::F1, metric)?,
        Metric::PrecisionMacro => averaged(c, Score::Precision, false),
        Metric::RecallMacro => averaged(c, Score::Recall, false),
        Metric::F1Macro => averaged(c, Score::F1, false),
        Metric::PrecisionWeighted => averaged(c, Score::Precision, true),
        Metric::RecallWeighted => averaged(c, Score::Recall, true),
        Metric::F1Weighted => averaged(c, Score::F1, true),
        Metric::RocAuc => {
            two_classes(c, metric)?;
            if let Some(t) = c.truth.iter().find(|t| **t >= c.n_classes) {
                return Err(unseen(c, *t, metric));
            }
            let positive: Vec<bool> = c.truth.iter().map(|t| *t == 1).collect();
            auc(&positive, &column(c, 1)).ok_or_else(|| {
                Error::data("roc_auc needs both classes among the evaluated rows")
                    .with_hint("use a stratified split (stratify = the target), or another metric")
            })?
        }
        Metric::RocAucOvr | Metric::RocAucOvrWeighted => one_vs_rest(c, metric)?,
        Metric::LogLoss => {
            let mut sum = 0.0;
            for (t, row) in c.truth.iter().zip(c.proba.chunks(c.n_classes)) {
                if *t >= c.n_classes {
                    return Err(unseen(c, *t, metric));
                }
                sum -= row[*t].clamp(f64::EPSILON, 1.0 - f64::EPSILON).ln();
            }
            sum / n
        }
        _ => f64::NAN,
    })
}

/// The classification metrics of some predictions.
pub fn compute_classes(metrics: &[Metric], c: &Classified<'_>) -> Result<BTreeMap<String, f64>> {
    metrics
        .iter()
        .map(|m| Ok((m.name().to_string(), classification(*m, c)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_counts_ties_as_half() {
        let positive = [false, true, false, true];
        assert_eq!(auc(&positive, &[0.1, 0.9, 0.5, 0.5]), Some(0.875));
        assert_eq!(auc(&[true, true], &[0.1, 0.2]), None);
    }

    #[test]
    fn macro_scores_skip_labels_that_never_occur() {
        let labels: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let c = Classified {
            truth: &[0, 0, 1, 1],
            predicted: &[0, 1, 1, 1],
            proba: &[0.0; 12],
            n_classes: 3,
            labels: &labels,
        };
        // Class c is neither true nor predicted: the mean is over a and b.
        let f1 = classification(Metric::F1Macro, &c).unwrap();
        assert!((f1 - f64::midpoint(2.0 / 3.0, 0.8)).abs() < 1e-15);
        assert_eq!(classification(Metric::BalancedAccuracy, &c).unwrap(), 0.75);
        assert!(classification(Metric::F1, &c).is_err());
    }
}
