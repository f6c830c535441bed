//! Estimators: checked hyperparameters, `fit` on the train design matrix, pure `predict`.
//!
//! - `linear_regression`: ordinary least squares through linfa-linear (QR least squares, pure Rust).
//! - `ridge`: scikit-learn's `Ridge` objective ‖y − Xw − b‖² + α‖w‖² (penalty not divided by n, intercept
//!   not penalised), solved in closed form: centre X and y, Cholesky-factor `XᵀX` + αI. linfa's only ridge
//!   is elastic net with `l1_ratio` = 0, solved by coordinate descent to tol 1e-4 — too loose to match
//!   scikit-learn's closed form, so this one is ours (`docs/models.md`).
//!
//! Coefficients are stored under the feature names they belong to.

pub mod gram;
mod linear;
pub mod tree;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::frame::{ColumnData, Frame};
use crate::spec::reader::TableReader;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "estimator", rename_all = "snake_case")]
pub enum Estimator {
    LinearRegression {
        fit_intercept: bool,
    },
    Ridge {
        alpha: f64,
        fit_intercept: bool,
    },
    /// scikit-learn's `Lasso` (an elastic net with `l1_ratio = 1`).
    Lasso {
        alpha: f64,
        fit_intercept: bool,
        max_iter: u64,
        tol: f64,
    },
    ElasticNet {
        alpha: f64,
        l1_ratio: f64,
        fit_intercept: bool,
        max_iter: u64,
        tol: f64,
    },
    /// scikit-learn's `DecisionTreeRegressor` (squared error, best splits, depth first).
    DecisionTree {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_depth: Option<u64>,
        min_samples_split: u64,
        min_samples_leaf: u64,
    },
    /// scikit-learn's `GradientBoostingRegressor` with squared error and `subsample = 1`.
    GradientBoosting {
        n_estimators: u64,
        learning_rate: f64,
        max_depth: u64,
        min_samples_split: u64,
        min_samples_leaf: u64,
    },
}

pub const ESTIMATORS: [&str; 6] = [
    "linear_regression",
    "ridge",
    "lasso",
    "elastic_net",
    "decision_tree",
    "gradient_boosting",
];

impl Estimator {
    pub fn name(&self) -> &'static str {
        match self {
            Estimator::LinearRegression { .. } => "linear_regression",
            Estimator::Ridge { .. } => "ridge",
            Estimator::Lasso { .. } => "lasso",
            Estimator::ElasticNet { .. } => "elastic_net",
            Estimator::DecisionTree { .. } => "decision_tree",
            Estimator::GradientBoosting { .. } => "gradient_boosting",
        }
    }

    /// Linear estimators have coefficients (what recursive elimination and L1 selection rank by).
    pub fn is_linear(&self) -> bool {
        !matches!(
            self,
            Estimator::DecisionTree { .. } | Estimator::GradientBoosting { .. }
        )
    }

    pub fn param_names(&self) -> Vec<&'static str> {
        match self {
            Estimator::LinearRegression { .. } => vec!["fit_intercept"],
            Estimator::Ridge { .. } => vec!["alpha", "fit_intercept"],
            Estimator::Lasso { .. } => vec!["alpha", "fit_intercept", "max_iter", "tol"],
            Estimator::ElasticNet { .. } => vec!["alpha", "l1_ratio", "fit_intercept", "max_iter", "tol"],
            Estimator::DecisionTree { .. } => vec!["max_depth", "min_samples_split", "min_samples_leaf"],
            Estimator::GradientBoosting { .. } => vec![
                "n_estimators",
                "learning_rate",
                "max_depth",
                "min_samples_split",
                "min_samples_leaf",
            ],
        }
    }
}

pub fn parse_estimator(t: &mut TableReader<'_, '_>) -> Result<Estimator> {
    let name = t.req_str(
        "estimator",
        "one of \"linear_regression\", \"ridge\", \"lasso\", \"elastic_net\", \"decision_tree\", \"gradient_boosting\"",
    )?;
    if matches!(name.value.as_str(), "decision_tree" | "gradient_boosting") {
        return parse_tree_estimator(t, &name.value);
    }
    let fit_intercept = t.bool("fit_intercept")?.unwrap_or(true);
    let alpha = |t: &mut TableReader<'_, '_>| -> Result<f64> {
        match t.f64("alpha")? {
            None => Ok(1.0),
            Some(a) if a.value >= 0.0 => Ok(a.value),
            Some(a) => Err(Error::spec(
                format!("`alpha` must be ≥ 0, found {}", a.value),
                Some(a.location),
            )),
        }
    };
    let solver = |t: &mut TableReader<'_, '_>| -> Result<(u64, f64)> {
        let max_iter = match t.u64("max_iter")? {
            Some(m) if m.value == 0 => return Err(Error::spec("`max_iter` must be at least 1", Some(m.location))),
            other => other.map_or(1000, |m| m.value),
        };
        let tol = match t.f64("tol")? {
            Some(v) if v.value <= 0.0 => return Err(Error::spec("`tol` must be above 0", Some(v.location))),
            other => other.map_or(1e-4, |v| v.value),
        };
        Ok((max_iter, tol))
    };
    match name.value.as_str() {
        "linear_regression" => Ok(Estimator::LinearRegression { fit_intercept }),
        "ridge" => Ok(Estimator::Ridge {
            alpha: alpha(t)?,
            fit_intercept,
        }),
        "lasso" => {
            let alpha = alpha(t)?;
            let (max_iter, tol) = solver(t)?;
            Ok(Estimator::Lasso {
                alpha,
                fit_intercept,
                max_iter,
                tol,
            })
        }
        "elastic_net" => {
            let alpha = alpha(t)?;
            let l1_ratio = match t.f64("l1_ratio")? {
                None => 0.5,
                Some(r) if (0.0..=1.0).contains(&r.value) => r.value,
                Some(r) => return Err(Error::spec("`l1_ratio` must be between 0 and 1", Some(r.location))),
            };
            let (max_iter, tol) = solver(t)?;
            Ok(Estimator::ElasticNet {
                alpha,
                l1_ratio,
                fit_intercept,
                max_iter,
                tol,
            })
        }
        other => {
            let mut err = Error::spec(
                format!("unknown estimator \"{other}\" (known: {})", ESTIMATORS.join(", ")),
                Some(name.location),
            );
            if let Some(h) = crate::error::did_you_mean(other, ESTIMATORS) {
                err = err.with_hint(h);
            }
            Err(err)
        }
    }
}

/// An integer parameter with a default and a least value.
fn at_least(t: &mut TableReader<'_, '_>, key: &str, least: u64, default: u64) -> Result<u64> {
    match t.u64(key)? {
        None => Ok(default),
        Some(v) if v.value >= least => Ok(v.value),
        Some(v) => Err(Error::spec(
            format!("`{key}` must be at least {least}, found {}", v.value),
            Some(v.location),
        )),
    }
}

fn parse_tree_estimator(t: &mut TableReader<'_, '_>, name: &str) -> Result<Estimator> {
    let min_samples_split = at_least(t, "min_samples_split", 2, 2)?;
    let min_samples_leaf = at_least(t, "min_samples_leaf", 1, 1)?;
    if name == "decision_tree" {
        let max_depth = if t.has("max_depth") {
            Some(at_least(t, "max_depth", 1, 1)?)
        } else {
            None
        };
        return Ok(Estimator::DecisionTree {
            max_depth,
            min_samples_split,
            min_samples_leaf,
        });
    }
    let n_estimators = at_least(t, "n_estimators", 1, 100)?;
    let learning_rate = match t.f64("learning_rate")? {
        None => 0.1,
        Some(v) if v.value > 0.0 => v.value,
        Some(v) => {
            return Err(Error::spec(
                format!("`learning_rate` must be above 0, found {}", v.value),
                Some(v.location),
            ));
        }
    };
    Ok(Estimator::GradientBoosting {
        n_estimators,
        learning_rate,
        max_depth: at_least(t, "max_depth", 1, 3)?,
        min_samples_split,
        min_samples_leaf,
    })
}

/// A fitted model: linear (coefficients) or trees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Model {
    Linear(LinearModel),
    Trees(TreeModel),
}

impl Model {
    pub fn estimator(&self) -> &str {
        match self {
            Model::Linear(m) => &m.estimator,
            Model::Trees(m) => &m.estimator,
        }
    }

    pub fn features(&self) -> &[String] {
        match self {
            Model::Linear(m) => &m.features,
            Model::Trees(m) => &m.features,
        }
    }

    /// The linear model, when it is one.
    pub fn linear(&self) -> Option<&LinearModel> {
        match self {
            Model::Linear(m) => Some(m),
            Model::Trees(_) => None,
        }
    }

    pub fn predict(&self, frame: &Frame) -> Result<Vec<f64>> {
        match self {
            Model::Linear(m) => m.predict(frame),
            Model::Trees(m) => m.predict(frame),
        }
    }
}

/// A fitted tree model: `init + Σ learning_rate × tree(x)` (a single tree: init 0, rate 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TreeModel {
    pub estimator: String,
    pub features: Vec<String>,
    pub init: f64,
    pub learning_rate: f64,
    pub trees: Vec<tree::Tree>,
    /// scikit-learn's `feature_importances_`, under `features`.
    pub importances: Vec<f64>,
}

impl TreeModel {
    pub fn predict(&self, frame: &Frame) -> Result<Vec<f64>> {
        let columns = model_columns(frame, &self.features)?;
        Ok((0..frame.n_rows())
            .map(|i| {
                let mut f = self.init;
                for t in &self.trees {
                    f += self.learning_rate * t.predict_row(|c| columns[c][i]);
                }
                f
            })
            .collect())
    }
}

/// The model's feature columns in its order, numeric and complete. One pass indexes the frame's columns
/// by name: a design has hundreds of features, and a search per feature would dominate single-record
/// scoring.
fn model_columns<'f>(frame: &'f Frame, features: &[String]) -> Result<Vec<&'f [f64]>> {
    let index: crate::frame::FastMap<&str, usize> = frame
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.as_str(), i))
        .collect();
    features
        .iter()
        .map(|name| {
            let x = match index.get(name.as_str()) {
                Some(&i) => match &frame.columns[i].data {
                    crate::frame::ColumnData::Numeric(v) => v.as_slice(),
                    crate::frame::ColumnData::Categorical(_) => frame.numeric(name)?,
                },
                None => frame.numeric(name)?,
            };
            if let Some(r) = x.iter().position(|v| v.is_nan()) {
                return Err(Error::data(format!(
                    "feature \"{name}\" is missing at line {} of {}; the fitted pipeline has no imputer for it",
                    frame.lines[r], frame.source
                ))
                .with_hint("add an [[impute]] step covering this column and re-run the pipeline"));
            }
            Ok(x)
        })
        .collect()
}

/// A fitted linear model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearModel {
    pub estimator: String,
    pub features: Vec<String>,
    pub coefficients: Vec<f64>,
    pub intercept: f64,
}

/// The feature columns of a frame (everything but the protected columns), all numeric and complete.
pub fn design_columns<'f>(frame: &'f Frame, protected: &[&str]) -> Result<Vec<(&'f str, &'f [f64])>> {
    let mut out = Vec::new();
    for col in frame.columns.iter().filter(|c| !protected.contains(&c.name.as_str())) {
        match &col.data {
            ColumnData::Numeric(v) => {
                if let Some(r) = v.iter().position(|x| x.is_nan()) {
                    return Err(Error::data(format!(
                        "feature \"{}\" is missing at line {} of {}; estimators need complete numeric data",
                        col.name, frame.lines[r], frame.source
                    ))
                    .with_hint("add an [[impute]] step that covers this column"));
                }
                out.push((col.name.as_str(), v.as_slice()));
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

pub fn fit(estimator: &Estimator, features: &[(&str, &[f64])], y: &[f64]) -> Result<Model> {
    if estimator.is_linear() {
        return fit_linear(estimator, features, y).map(Model::Linear);
    }
    if y.is_empty() {
        return Err(Error::data("the train split is empty"));
    }
    let columns: Vec<&[f64]> = features.iter().map(|(_, c)| *c).collect();
    let (init, learning_rate, trees) = match *estimator {
        Estimator::DecisionTree {
            max_depth,
            min_samples_split,
            min_samples_leaf,
        } => {
            let params = tree::TreeParams {
                max_depth,
                min_samples_split,
                min_samples_leaf,
                criterion: tree::Criterion::SquaredError,
            };
            (0.0, 1.0, vec![tree::grow(&columns, y, &params)])
        }
        Estimator::GradientBoosting {
            n_estimators,
            learning_rate,
            max_depth,
            min_samples_split,
            min_samples_leaf,
        } => {
            let params = tree::TreeParams {
                max_depth: Some(max_depth),
                min_samples_split,
                min_samples_leaf,
                criterion: tree::Criterion::FriedmanMse,
            };
            let (init, trees) = tree::boost(&columns, y, n_estimators, learning_rate, &params);
            (init, learning_rate, trees)
        }
        _ => return Err(Error::internal("a linear estimator reached the tree fit")),
    };
    Ok(Model::Trees(TreeModel {
        estimator: estimator.name().to_string(),
        features: features.iter().map(|(n, _)| (*n).to_string()).collect(),
        init,
        learning_rate,
        importances: tree::importances(&trees, columns.len()),
        trees,
    }))
}

/// Fits a linear estimator: the ones with coefficients.
pub fn fit_linear(estimator: &Estimator, features: &[(&str, &[f64])], y: &[f64]) -> Result<LinearModel> {
    let n = y.len();
    if n == 0 {
        return Err(Error::data("the train split is empty"));
    }
    let (coefficients, intercept) = match estimator {
        Estimator::LinearRegression { fit_intercept } => linear::ols(features, y, *fit_intercept)?,
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
        Estimator::DecisionTree { .. } | Estimator::GradientBoosting { .. } => {
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

impl LinearModel {
    /// Predictions for every row: intercept, then each feature's term added in feature order.
    pub fn predict(&self, frame: &Frame) -> Result<Vec<f64>> {
        let columns = model_columns(frame, &self.features)?;
        let mut out = vec![self.intercept; frame.n_rows()];
        for (x, w) in columns.iter().zip(&self.coefficients) {
            for (o, v) in out.iter_mut().zip(*x) {
                *o += w * v;
            }
        }
        Ok(out)
    }
}
