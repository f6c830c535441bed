//! Fitting: an [`Estimator`] and the train design (feature columns and target) become a [`Model`];
//! ensembles fit their members (and stacking its final estimator on out-of-fold predictions).

use super::estimator::Estimator;
use super::gram::Col;
use super::model::{
    ClassScores, ClassifierModel, ClusterModel, EnsembleModel, LinearModel, Model, Output, TreeModel, meta_features,
};
use super::{ensemble, folds, kmeans, linear, logistic, tree};
use crate::error::{Error, Result};
use crate::frame::{ColumnData, Frame};

/// The feature columns of a frame (everything but the protected columns), all numeric and complete.
pub fn design_columns<'f>(frame: &'f Frame, protected: &[&str]) -> Result<Vec<(&'f str, Col<'f>)>> {
    let mut out = Vec::new();
    for col in frame.columns.iter().filter(|c| !protected.contains(&c.name.as_str())) {
        match &col.data {
            ColumnData::Numeric(v) => {
                if let Some(r) = v.first_missing() {
                    return Err(Error::data(format!(
                        "feature \"{}\" is missing at line {} of {}; estimators need complete numeric data",
                        col.name, frame.lines[r], frame.source
                    ))
                    .with_hint("add an [[impute]] step that covers this column; for a column a transform step made (an expression dividing by zero), give its missing rows a value in that step, e.g. COALESCE(…, 0)"));
                }
                out.push((col.name.as_str(), Col::Column(v)));
            }
            ColumnData::Categorical(v) => {
                let example = crate::frame::text_example(v);
                return Err(Error::data(format!(
                    "feature \"{}\" is text{example}; estimators need numbers",
                    col.name
                ))
                .with_hint("encode it with an [[encode]] step (one_hot or ordinal)"));
            }
        }
    }
    if out.is_empty() {
        return Err(Error::data("no feature columns are left for the estimator"));
    }
    Ok(out)
}

/// The train target as an estimator takes it.
pub enum FitTarget<'a> {
    /// Clustering: no target; `rows` train rows.
    Unsupervised {
        rows: usize,
    },
    Values(&'a [f64]),
    /// Class indices into `labels` (sorted), and whether the labels are numbers.
    Classes {
        y: &'a [u32],
        labels: &'a [String],
        numeric: bool,
    },
}

/// Fits `estimator` on the train design; `seed` feeds the estimators that draw (forests).
pub fn fit(
    estimator: &Estimator,
    features: &[(&str, &[f64])],
    target: &FitTarget<'_>,
    seed: [u8; 32],
) -> Result<Model> {
    let n = match target {
        FitTarget::Values(y) => y.len(),
        FitTarget::Classes { y, .. } => y.len(),
        FitTarget::Unsupervised { rows } => *rows,
    };
    if n == 0 {
        return Err(Error::data("the train split is empty"));
    }
    if let Estimator::KMeans {
        n_clusters,
        plus_plus,
        n_init,
        max_iter,
        tol,
    } = *estimator
    {
        let k = usize::try_from(n_clusters).unwrap_or(usize::MAX);
        if k > n {
            return Err(
                Error::data(format!("n_clusters = {k} but the train split has {n} rows"))
                    .with_hint("ask for fewer clusters"),
            );
        }
        let columns: Vec<&[f64]> = features.iter().map(|(_, c)| *c).collect();
        let points = kmeans::Points::from_columns(&columns);
        let mut rng = <rand_chacha::ChaCha20Rng as rand::SeedableRng>::from_seed(seed);
        let params = kmeans::Params {
            n_clusters: k,
            plus_plus,
            n_init,
            max_iter,
            tol,
        };
        let fit = kmeans::fit(&points, params, &mut rng);
        return Ok(Model::Clusters(ClusterModel {
            estimator: estimator.name().into(),
            features: features.iter().map(|(n, _)| (*n).to_string()).collect(),
            centres: fit.centres,
            inertia: fit.inertia,
        }));
    }
    let names: Vec<String> = features.iter().map(|(n, _)| (*n).to_string()).collect();
    let columns: Vec<&[f64]> = features.iter().map(|(_, c)| *c).collect();
    let rounded = if matches!(estimator, Estimator::LogisticRegression { .. }) || estimator.is_linear() {
        Vec::new()
    } else {
        tree::single_columns(&names, &columns)?
    };
    let tree_columns: Vec<&[f64]> = rounded.iter().map(Vec::as_slice).collect();
    if estimator.is_ensemble() {
        return fit_ensemble(estimator, features, target, seed);
    }
    let (y, labels, numeric) = match *target {
        FitTarget::Values(y) => {
            if estimator.is_linear() {
                return fit_linear(estimator, features, y).map(Model::Linear);
            }
            return fit_tree_regressor(estimator, names, &tree_columns, y, seed);
        }
        FitTarget::Classes { y, labels, numeric } => (y, labels, numeric),
        FitTarget::Unsupervised { .. } => {
            return Err(Error::internal(format!("{} needs a target", estimator.name())));
        }
    };
    if labels.len() < 2 {
        return Err(Error::data(format!(
            "the train split holds a single class ({}); a classifier needs at least two",
            labels.first().map_or("none", String::as_str)
        ))
        .with_hint(
            "check the target column, or split so that train holds every class (method = \"random\", stratify)",
        ));
    }
    let n_classes = labels.len();
    // A classification tree splits by gini unless told otherwise; boosting grows regression trees.
    let params = estimator.tree_params(columns.len()).map(|mut p| {
        if !p.criterion.is_classification() && !matches!(estimator, Estimator::GradientBoosting { .. }) {
            p.criterion = tree::Criterion::Gini;
        }
        p
    });
    let params = params.as_ref();
    let classes = tree::Target::Classes { y, n_classes };
    let (scores, importances) = match *estimator {
        Estimator::LogisticRegression {
            c,
            l1_ratio,
            fit_intercept,
            max_iter,
            tol,
        } => {
            let fit = logistic::fit(
                &columns,
                y,
                n_classes,
                logistic::Params {
                    c,
                    l1_ratio,
                    fit_intercept,
                    max_iter,
                    tol,
                },
            )?;
            (
                ClassScores::Linear {
                    coefficients: fit.coefficients,
                    intercepts: fit.intercepts,
                },
                Vec::new(),
            )
        }
        Estimator::DecisionTree { .. } => {
            let params = params.ok_or_else(|| Error::internal("a tree without tree parameters"))?;
            let trees = vec![tree::grow(&tree_columns, classes, params)];
            let importances = tree::importances(&trees, columns.len());
            (ClassScores::Trees { trees }, importances)
        }
        Estimator::RandomForest {
            n_estimators,
            bootstrap,
            ..
        } => {
            let params = params.ok_or_else(|| Error::internal("a forest without tree parameters"))?;
            let trees = ensemble::forest(&tree_columns, classes, params, n_estimators, bootstrap, seed);
            let importances = tree::importances(&trees, columns.len());
            (ClassScores::Trees { trees }, importances)
        }
        Estimator::GradientBoosting {
            n_estimators,
            learning_rate,
            ..
        } => {
            let params = params.ok_or_else(|| Error::internal("boosting without tree parameters"))?;
            let (init, rounds) =
                ensemble::boost_classes(&tree_columns, y, n_classes, n_estimators, learning_rate, params);
            let all: Vec<tree::Tree> = rounds.iter().flatten().cloned().collect();
            let importances = tree::importances(&all, columns.len());
            (
                ClassScores::Boosted {
                    init,
                    learning_rate,
                    rounds,
                },
                importances,
            )
        }
        _ => {
            return Err(Error::internal(format!(
                "estimator {} reached the classifier fit",
                estimator.name()
            )));
        }
    };
    Ok(Model::Classifier(ClassifierModel {
        estimator: estimator.name().to_string(),
        features: names,
        classes: labels.to_vec(),
        numeric_labels: numeric,
        scores,
        importances,
    }))
}

/// A member's own seed: the stage's, keyed by the member's name.
fn member_seed(seed: [u8; 32], name: &str) -> [u8; 32] {
    *blake3::keyed_hash(&seed, name.as_bytes()).as_bytes()
}

/// Stacking or voting: every member fitted on all train rows; for stacking, the final estimator fitted on
/// the members' out-of-fold predictions (unshuffled k-fold, stratified for classes, as scikit-learn's
/// default `cv`).
fn fit_ensemble(
    estimator: &Estimator,
    features: &[(&str, &[f64])],
    target: &FitTarget<'_>,
    seed: [u8; 32],
) -> Result<Model> {
    let (base, stacking) = match estimator {
        Estimator::Stacking {
            base,
            final_estimator,
            folds,
        } => (base, Some((final_estimator, *folds))),
        Estimator::Voting { base, .. } => (base, None),
        _ => return Err(Error::internal("not an ensemble")),
    };
    let (classes, numeric) = match target {
        FitTarget::Classes { labels, numeric, .. } => (Some(labels.to_vec()), *numeric),
        FitTarget::Values(_) => (None, false),
        FitTarget::Unsupervised { .. } => return Err(Error::internal("an ensemble needs a target")),
    };
    let n_classes = classes.as_ref().map_or(0, Vec::len);
    let members = base
        .iter()
        .map(|m| {
            let model = fit(&m.estimator, features, target, member_seed(seed, &m.name))
                .map_err(|e| e.with_context(format!("base estimator \"{}\"", m.name)))?;
            Ok((m.name.clone(), model))
        })
        .collect::<Result<Vec<_>>>()?;
    let names: Vec<String> = features.iter().map(|(n, _)| (*n).to_string()).collect();
    let Some((final_estimator, k)) = stacking else {
        let Estimator::Voting { weights, .. } = estimator else {
            return Err(Error::internal("not voting"));
        };
        return Ok(Model::Ensemble(EnsembleModel {
            estimator: estimator.name().into(),
            features: names,
            members,
            final_model: None,
            weights: weights.clone(),
            classes,
            numeric_labels: numeric,
        }));
    };
    let k = usize::try_from(k).unwrap_or(usize::MAX);
    let n = match target {
        FitTarget::Values(y) => y.len(),
        FitTarget::Classes { y, .. } => y.len(),
        FitTarget::Unsupervised { rows } => *rows,
    };
    let fold = match target {
        FitTarget::Classes { y, .. } => folds::stratified(y, k, None)?,
        _ => folds::kfold(n, k, None)?,
    };
    let width = if n_classes > 0 { n_classes } else { 1 };
    let mut oof: Vec<Vec<f64>> = vec![vec![0.0; n * width]; base.len()];
    for f in 0..k {
        let (fit_rows, held): (Vec<usize>, Vec<usize>) = (0..n).partition(|r| fold[*r] != f);
        let pick = |rows: &[usize], c: &[f64]| -> Vec<f64> { rows.iter().map(|r| c[*r]).collect() };
        let fit_columns: Vec<Vec<f64>> = features.iter().map(|(_, c)| pick(&fit_rows, c)).collect();
        let fit_features: Vec<(&str, &[f64])> = names
            .iter()
            .map(String::as_str)
            .zip(fit_columns.iter().map(Vec::as_slice))
            .collect();
        let held_frame = Frame {
            columns: names
                .iter()
                .zip(features)
                .map(|(name, (_, c))| crate::frame::Column {
                    name: name.clone(),
                    data: ColumnData::Numeric(pick(&held, c).into()),
                })
                .collect(),
            lines: held.iter().map(|r| *r as u64 + 1).collect(),
            source: "the train rows".into(),
            first_row: 0,
        };
        let fit_values;
        let fit_classes;
        let fold_target = match target {
            FitTarget::Unsupervised { .. } => FitTarget::Unsupervised { rows: fit_rows.len() },
            FitTarget::Values(y) => {
                fit_values = pick(&fit_rows, y);
                FitTarget::Values(&fit_values)
            }
            FitTarget::Classes { y, labels, numeric } => {
                fit_classes = fit_rows.iter().map(|r| y[*r]).collect::<Vec<u32>>();
                FitTarget::Classes {
                    y: &fit_classes,
                    labels,
                    numeric: *numeric,
                }
            }
        };
        for (m, member) in base.iter().enumerate() {
            let model = fit(
                &member.estimator,
                &fit_features,
                &fold_target,
                member_seed(seed, &member.name),
            )
            .map_err(|e| e.with_context(format!("base estimator \"{}\", fold {}", member.name, f + 1)))?;
            let values = match model.output(&held_frame)? {
                Output::Values(v) | Output::Proba(v) => v,
            };
            for (i, r) in held.iter().enumerate() {
                oof[m][r * width..(r + 1) * width].copy_from_slice(&values[i * width..(i + 1) * width]);
            }
        }
    }
    let outputs: Vec<Output> = oof
        .into_iter()
        .map(|v| {
            if n_classes > 0 {
                Output::Proba(v)
            } else {
                Output::Values(v)
            }
        })
        .collect();
    let meta = meta_features(&members, &outputs, n_classes);
    let meta_features: Vec<(&str, &[f64])> = meta.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect();
    let final_model = fit(final_estimator, &meta_features, target, member_seed(seed, "final"))
        .map_err(|e| e.with_context("the final estimator".to_string()))?;
    Ok(Model::Ensemble(EnsembleModel {
        estimator: estimator.name().into(),
        features: names,
        members,
        final_model: Some(Box::new(final_model)),
        weights: Vec::new(),
        classes,
        numeric_labels: numeric,
    }))
}

fn fit_tree_regressor(
    estimator: &Estimator,
    features: Vec<String>,
    columns: &[&[f64]],
    y: &[f64],
    seed: [u8; 32],
) -> Result<Model> {
    let values = tree::Target::Values(y);
    let params = estimator
        .tree_params(columns.len())
        .ok_or_else(|| Error::internal(format!("{} reached the tree fit", estimator.name())))?;
    let (init, learning_rate, trees, average) = match *estimator {
        Estimator::DecisionTree { .. } => (0.0, 1.0, vec![tree::grow(columns, values, &params)], false),
        Estimator::RandomForest {
            n_estimators,
            bootstrap,
            ..
        } => {
            let trees = ensemble::forest(columns, values, &params, n_estimators, bootstrap, seed);
            (0.0, 1.0, trees, true)
        }
        Estimator::GradientBoosting {
            n_estimators,
            learning_rate,
            ..
        } => {
            let (init, trees) = tree::boost(columns, y, n_estimators, learning_rate, &params);
            (init, learning_rate, trees, false)
        }
        _ => return Err(Error::internal(format!("{} reached the tree fit", estimator.name()))),
    };
    Ok(Model::Trees(TreeModel {
        estimator: estimator.name().to_string(),
        features,
        init,
        learning_rate,
        importances: tree::importances(&trees, columns.len()),
        trees,
        average,
    }))
}

/// Fits `estimator` on a frame's design columns ([`design_columns`]): ridge, lasso and elastic net read
/// indicator columns a block at a time; every other estimator reads them widened.
pub fn fit_design(
    estimator: &Estimator,
    design: &[(&str, Col<'_>)],
    target: &FitTarget<'_>,
    seed: [u8; 32],
) -> Result<Model> {
    if let FitTarget::Values(y) = target
        && estimator.is_linear()
    {
        return fit_linear_columns(estimator, design, y).map(Model::Linear);
    }
    let features: Vec<(&str, &[f64])> = design.iter().map(|(n, c)| (*n, c.values())).collect();
    fit(estimator, &features, target, seed)
}

/// Fits a linear estimator: the ones with coefficients.
pub fn fit_linear(estimator: &Estimator, features: &[(&str, &[f64])], y: &[f64]) -> Result<LinearModel> {
    let columns: Vec<(&str, Col<'_>)> = features.iter().map(|(n, c)| (*n, Col::Slice(c))).collect();
    fit_linear_columns(estimator, &columns, y)
}

fn fit_linear_columns(estimator: &Estimator, features: &[(&str, Col<'_>)], y: &[f64]) -> Result<LinearModel> {
    let n = y.len();
    if n == 0 {
        return Err(Error::data("the train split is empty"));
    }
    let (coefficients, intercept) = match estimator {
        Estimator::LinearRegression { fit_intercept } => {
            let dense: Vec<(&str, &[f64])> = features.iter().map(|(n, c)| (*n, c.values())).collect();
            linear::ols(&dense, y, *fit_intercept)?
        }
        Estimator::Ridge { alpha, fit_intercept } => linear::ridge(features, y, *alpha, *fit_intercept)?,
        Estimator::Lasso {
            alpha,
            fit_intercept,
            max_iter,
            tol,
        } => linear::elastic_net(features, y, *alpha, 1.0, *fit_intercept, *max_iter, *tol)?,
        Estimator::ElasticNet {
            alpha,
            l1_ratio,
            fit_intercept,
            max_iter,
            tol,
        } => linear::elastic_net(features, y, *alpha, *l1_ratio, *fit_intercept, *max_iter, *tol)?,
        _ => {
            return Err(Error::spec(
                format!("{} has no coefficients to rank or select features by", estimator.name()),
                None,
            )
            .with_hint("use a linear estimator here (linear_regression, ridge, lasso, elastic_net)"));
        }
    };
    if !intercept.is_finite() || coefficients.iter().any(|c| !c.is_finite()) {
        return Err(Error::data(format!(
            "{} produced non-finite coefficients: the design matrix is singular (collinear or constant features)",
            estimator.name()
        ))
        .with_hint("use one_hot with drop_first = true, drop duplicated columns, or use ridge with alpha > 0"));
    }
    Ok(LinearModel {
        estimator: estimator.name().to_string(),
        features: features.iter().map(|(n, _)| (*n).to_string()).collect(),
        coefficients,
        intercept,
    })
}
