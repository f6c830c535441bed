//! Wrapper selection: features chosen by fitting an estimator, as scikit-learn's `RFE` and
//! `SequentialFeatureSelector` (forward) do it.
//!
//! - `rfe`: fit the estimator on the remaining columns, drop the `step` columns with the smallest
//!   |coefficient|, repeat until `n_features` remain (ties: the earlier column goes first).
//! - `forward_selection`: start from nothing; at each round add the column whose k-fold
//!   cross-validated score (mean over `cv` folds) is best, until `n_features` are chosen (ties: the
//!   earlier column). Folds are contiguous, as scikit-learn's `KFold` without shuffling; with
//!   `shuffle = true` rows are shuffled first by the step's own seeded stream.
//!
//! Both learn from the raw target (not `target_transform`). The estimator is given in the step, as in
//! `[train]`: `estimator = "ridge"` with `alpha`, or `"linear_regression"`.

use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::select::{Dropped, Fitted};
use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::models::{self, Estimator};
use crate::stages::FitContext;
use crate::vocab::Metric;
use crate::vocab::reader::TableReader;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Params {
    #[serde(flatten)]
    pub estimator: Estimator,
    pub n_features: u64,
    /// RFE: columns removed per round.
    pub step: u64,
    /// Forward selection: folds, scoring and shuffling.
    pub cv: u64,
    pub scoring: Metric,
    pub shuffle: bool,
}

/// Selection here ranks or scores by coefficients: the step's estimator must be linear.
fn linear_estimator(t: &mut TableReader<'_, '_>) -> Result<Estimator> {
    let estimator = models::parse_estimator(t, crate::vocab::Task::Regression)?;
    if estimator.is_linear() {
        return Ok(estimator);
    }
    Err(Error::spec(
        format!("{} selects by coefficients, and {} has none", t.name, estimator.name()),
        Some(t.location()),
    )
    .with_hint("use linear_regression, ridge, lasso or elastic_net in a selection step"))
}

impl Params {
    pub fn parse(t: &mut TableReader<'_, '_>, forward: bool) -> Result<Params> {
        let estimator = linear_estimator(t)?;
        let n_features = t
            .u64("n_features")?
            .ok_or_else(|| t.missing("n_features", "how many columns to keep"))?;
        if n_features.value == 0 {
            return Err(Error::spec(
                "`n_features` must be at least 1",
                Some(n_features.location),
            ));
        }
        let step = if forward {
            1
        } else {
            t.u64("step")?.map_or(1, |s| s.value).max(1)
        };
        let (cv, scoring, shuffle) = if forward {
            let cv = match t.u64("cv")? {
                None => 5,
                Some(c) if c.value >= 2 => c.value,
                Some(c) => return Err(Error::spec("`cv` must be at least 2 folds", Some(c.location))),
            };
            let scoring = match t.str("scoring")? {
                None => Metric::R2,
                Some(s) => Metric::parse(&s, crate::vocab::Task::Regression)?,
            };
            (cv, scoring, t.bool("shuffle")?.unwrap_or(false))
        } else {
            (5, Metric::R2, false)
        };
        Ok(Params {
            estimator,
            n_features: n_features.value,
            step,
            cv,
            scoring,
            shuffle,
        })
    }

    pub fn param_names(&self, forward: bool) -> Vec<&'static str> {
        let mut names = vec!["estimator", "n_features"];
        names.extend(self.estimator.param_names());
        if forward {
            names.extend(["cv", "scoring", "shuffle"]);
        } else {
            names.push("step");
        }
        names
    }
}

fn columns_of<'f>(train: &'f Frame, names: &'f [String]) -> Result<Vec<(&'f str, &'f [f64])>> {
    names
        .iter()
        .map(|n| {
            let v = train.numeric(n)?;
            if let Some(r) = v.iter().position(|x| x.is_nan()) {
                return Err(Error::data(format!(
                    "column \"{n}\" is missing at line {} of {}; impute before wrapper selection",
                    train.lines[r], train.source
                )));
            }
            Ok((n.as_str(), v))
        })
        .collect()
}

fn check_count(params: &Params, columns: &[String]) -> Result<usize> {
    let keep = usize::try_from(params.n_features).unwrap_or(usize::MAX);
    if keep > columns.len() {
        return Err(Error::data(format!(
            "n_features = {keep} but the step selects only {} columns",
            columns.len()
        )));
    }
    Ok(keep)
}

pub fn fit_rfe(params: &Params, train: &Frame, columns: &[String], y: &[f64]) -> Result<Fitted> {
    let keep = check_count(params, columns)?;
    let data = columns_of(train, columns)?;
    let mut remaining: Vec<usize> = (0..columns.len()).collect();
    let mut dropped = Vec::new();
    let mut round = 1;
    while remaining.len() > keep {
        let features: Vec<(&str, &[f64])> = remaining.iter().map(|&i| data[i]).collect();
        let model = models::fit_linear(&params.estimator, &features, y)?;
        let mut order: Vec<usize> = (0..remaining.len()).collect();
        order.sort_by(|&a, &b| model.coefficients[a].abs().total_cmp(&model.coefficients[b].abs()));
        let n = usize::try_from(params.step)
            .unwrap_or(usize::MAX)
            .min(remaining.len() - keep);
        let mut out: Vec<usize> = order[..n].iter().map(|&k| remaining[k]).collect();
        out.sort_unstable();
        for i in &out {
            dropped.push(Dropped {
                column: columns[*i].clone(),
                reason: format!("eliminated by RFE in round {round}"),
            });
        }
        remaining.retain(|i| !out.contains(i));
        round += 1;
    }
    Ok(Fitted {
        examined: columns.to_vec(),
        dropped,
        scores: Vec::new(),
    })
}

/// Contiguous folds as scikit-learn's `KFold`: the first n % k folds hold one row more.
pub fn k_folds(order: &[usize], k: usize) -> Vec<Vec<usize>> {
    let n = order.len();
    let mut folds = Vec::with_capacity(k);
    let mut start = 0;
    for f in 0..k {
        let size = n / k + usize::from(f < n % k);
        folds.push(order[start..start + size].to_vec());
        start += size;
    }
    folds
}

/// A fold's score, larger is better (errors negated, as scikit-learn's `neg_…` scorers).
fn score(metric: Metric, y: &[f64], p: &[f64]) -> f64 {
    let value = crate::metrics::regression(metric, y, p);
    if metric.higher_is_better() { value } else { -value }
}

/// Mean score over the folds of a model using the given columns.
fn cv_score(
    params: &Params,
    data: &[(&str, &[f64])],
    chosen: &[usize],
    y: &[f64],
    folds: &[Vec<usize>],
) -> Result<f64> {
    let mut total = 0.0;
    for test in folds {
        let mut is_test = vec![false; y.len()];
        for &r in test {
            is_test[r] = true;
        }
        let train_rows: Vec<usize> = (0..y.len()).filter(|r| !is_test[*r]).collect();
        let cols: Vec<Vec<f64>> = chosen
            .iter()
            .map(|&c| train_rows.iter().map(|&r| data[c].1[r]).collect())
            .collect();
        let features: Vec<(&str, &[f64])> = chosen
            .iter()
            .zip(&cols)
            .map(|(&c, v)| (data[c].0, v.as_slice()))
            .collect();
        let ty: Vec<f64> = train_rows.iter().map(|&r| y[r]).collect();
        let model = models::fit_linear(&params.estimator, &features, &ty)?;
        let pred: Vec<f64> = test
            .iter()
            .map(|&r| {
                chosen
                    .iter()
                    .zip(&model.coefficients)
                    .fold(model.intercept, |acc, (&c, w)| acc + w * data[c].1[r])
            })
            .collect();
        let actual: Vec<f64> = test.iter().map(|&r| y[r]).collect();
        total += score(params.scoring, &actual, &pred);
    }
    Ok(total / folds.len() as f64)
}

pub fn fit_forward(
    params: &Params,
    train: &Frame,
    columns: &[String],
    y: &[f64],
    rng: &mut impl RngCore,
) -> Result<Fitted> {
    let keep = check_count(params, columns)?;
    let data = columns_of(train, columns)?;
    let k = usize::try_from(params.cv).unwrap_or(usize::MAX);
    if k > y.len() {
        return Err(Error::data(format!(
            "cv = {k} folds but the train split has {} rows",
            y.len()
        )));
    }
    let mut order: Vec<usize> = (0..y.len()).collect();
    if params.shuffle {
        for i in (1..order.len()).rev() {
            let j = usize::try_from(rng.next_u64() % (i as u64 + 1)).unwrap_or(0);
            order.swap(i, j);
        }
    }
    let folds = k_folds(&order, k);
    let mut chosen: Vec<usize> = Vec::new();
    while chosen.len() < keep {
        let mut best: Option<(f64, usize)> = None;
        for c in (0..columns.len()).filter(|c| !chosen.contains(c)) {
            let mut trial = chosen.clone();
            trial.push(c);
            let s = cv_score(params, &data, &trial, y, &folds)?;
            if best.is_none_or(|(b, _)| s > b) {
                best = Some((s, c));
            }
        }
        let Some((_, c)) = best else { break };
        chosen.push(c);
    }
    let dropped = (0..columns.len())
        .filter(|c| !chosen.contains(c))
        .map(|c| Dropped {
            column: columns[c].clone(),
            reason: "not chosen by forward selection".into(),
        })
        .collect();
    Ok(Fitted {
        examined: columns.to_vec(),
        dropped,
        scores: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::k_folds;

    #[test]
    fn folds_are_contiguous_and_the_first_ones_larger() {
        let order: Vec<usize> = (0..11).collect();
        let folds = k_folds(&order, 3);
        assert_eq!(folds, vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7], vec![8, 9, 10]]);
    }
}

/// `select_from_model`: scikit-learn's `SelectFromModel`. One fit of the estimator ranks the columns by
/// importance — |coefficient| (summed over a multinomial model's classes), or a tree model's
/// importances — and keeps those at or above `threshold` (default 1e-5 for L1 models: lasso, elastic net
/// or logistic regression with `l1_ratio` = 1; the mean importance otherwise), and only the
/// `max_features` most important when that is set (ties: the earlier column).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelParams {
    #[serde(flatten)]
    pub estimator: Estimator,
    pub threshold: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_features: Option<u64>,
}

impl ModelParams {
    pub fn parse(t: &mut TableReader<'_, '_>, task: crate::vocab::Task) -> Result<ModelParams> {
        // One key cannot mean both a forest's columns per split and the number of columns kept.
        if let (Some(v), Some("random_forest")) = (
            t.raw("max_features"),
            t.raw("estimator").and_then(|e| e.get_ref().as_str()),
        ) {
            return Err(t
                .source()
                .error(
                    v.span(),
                    "`max_features` is ambiguous with random_forest: the forest's columns per split, or the columns select_from_model keeps",
                )
                .with_hint(
                    "leave the forest's default; to keep the k most important columns use decision_tree or gradient_boosting with max_features = k, or rfe with n_features = k",
                ));
        }
        let estimator = models::parse_estimator(t, task)?;
        if estimator.is_ensemble() || matches!(estimator, Estimator::KMeans { .. }) {
            return Err(Error::spec(
                format!("{} has no coefficients or importances to select by", estimator.name()),
                Some(t.location()),
            )
            .with_hint("use a linear model, logistic_regression, decision_tree, random_forest or gradient_boosting"));
        }
        let threshold = match t.f64("threshold")? {
            Some(v) if v.value < 0.0 => return Err(Error::spec("`threshold` must be ≥ 0", Some(v.location))),
            other => other.map(|v| v.value),
        };
        let max_features = match t.u64("max_features")? {
            Some(k) if k.value == 0 => return Err(Error::spec("`max_features` must be at least 1", Some(k.location))),
            other => other.map(|k| k.value),
        };
        Ok(ModelParams {
            estimator,
            threshold,
            max_features,
        })
    }

    pub fn param_names(&self) -> Vec<&'static str> {
        let mut names = vec!["estimator", "threshold", "max_features"];
        names.extend(self.estimator.param_names());
        names
    }

    /// scikit-learn's L1 models, whose default threshold is 1e-5 ("non-zero").
    fn l1(&self) -> bool {
        match self.estimator {
            Estimator::Lasso { .. } => true,
            Estimator::ElasticNet { l1_ratio, .. } | Estimator::LogisticRegression { l1_ratio, .. } => {
                (l1_ratio - 1.0).abs() <= 1e-8
            }
            _ => false,
        }
    }
}

/// Each column's importance in one fit of the step's estimator on the train rows.
fn importances(
    params: &ModelParams,
    data: &[(&str, &[f64])],
    train: &Frame,
    ctx: &FitContext,
    step: &str,
) -> Result<(Vec<f64>, &'static str)> {
    if params.estimator.is_linear() {
        let model = models::fit_linear(&params.estimator, data, ctx.target_values(train, step)?)?;
        return Ok((model.coefficients.iter().map(|c| c.abs()).collect(), "|coefficient|"));
    }
    let model = match ctx.task {
        crate::vocab::Task::Classification => {
            let labels = crate::models::classes::labels_of(train, &ctx.target)?;
            let classes = crate::models::classes::Classes::of(&labels);
            let y: Vec<u32> = classes.codes(&labels)?;
            let target = models::FitTarget::Classes {
                y: &y,
                labels: &classes.labels,
                numeric: classes.numeric,
            };
            models::fit(&params.estimator, data, &target, ctx.seed)?
        }
        _ => models::fit(
            &params.estimator,
            data,
            &models::FitTarget::Values(ctx.target_values(train, step)?),
            ctx.seed,
        )?,
    };
    match &model {
        models::Model::Classifier(m) => match &m.scores {
            models::ClassScores::Linear { coefficients, .. } => Ok((
                (0..data.len())
                    .map(|j| coefficients.iter().map(|row| row[j].abs()).sum())
                    .collect(),
                "|coefficient|",
            )),
            _ => Ok((m.importances.clone(), "importance")),
        },
        models::Model::Trees(m) => Ok((m.importances.clone(), "importance")),
        _ => Err(Error::internal("select_from_model fitted a model without importances")),
    }
}

pub fn fit_from_model(
    params: &ModelParams,
    train: &Frame,
    columns: &[String],
    ctx: &FitContext,
    step: &str,
) -> Result<Fitted> {
    let data = columns_of(train, columns)?;
    let (scores, what) = importances(params, &data, train, ctx, step)?;
    let threshold = params.threshold.unwrap_or_else(|| {
        if params.l1() {
            1e-5
        } else {
            scores.iter().sum::<f64>() / scores.len() as f64
        }
    });
    // The `max_features` most important (a stable sort: the earlier of equals first).
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|a, b| scores[*b].total_cmp(&scores[*a]));
    let mut rank = vec![0; scores.len()];
    for (r, i) in order.iter().enumerate() {
        rank[*i] = r;
    }
    let top = params
        .max_features
        .map_or(usize::MAX, |k| usize::try_from(k).unwrap_or(usize::MAX));
    let dropped = columns
        .iter()
        .enumerate()
        .filter_map(|(i, name)| {
            let reason = if scores[i] < threshold {
                format!("{what} {:.3e} below {threshold:.3e}", scores[i])
            } else if rank[i] >= top {
                format!("{what} {:.3e} not among the {top} largest", scores[i])
            } else {
                return None;
            };
            Some(Dropped {
                column: name.clone(),
                reason,
            })
        })
        .collect();
    Ok(Fitted {
        examined: columns.to_vec(),
        dropped,
        scores,
    })
}
