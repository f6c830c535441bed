//! Estimators: checked hyperparameters, `fit` on the train design matrix, pure `predict`.
//!
//! - `linear_regression`: ordinary least squares through linfa-linear (QR least squares, pure Rust).
//! - `ridge`: scikit-learn's `Ridge` objective ‖y − Xw − b‖² + α‖w‖² (penalty not divided by n, intercept
//!   not penalised), solved in closed form: centre X and y, Cholesky-factor `XᵀX` + αI. linfa's only ridge
//!   is elastic net with `l1_ratio` = 0, solved by coordinate descent to tol 1e-4 — too loose to match
//!   scikit-learn's closed form, so this one is ours (`docs/models.md`).
//!
//! Coefficients are stored under the feature names they belong to.

pub mod ensemble;
pub mod gram;
mod linear;
pub mod logistic;
pub mod tree;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::frame::{ColumnData, Frame};
use crate::spec::Task;
use crate::spec::reader::TableReader;

/// The split criterion of a classification tree (regression trees use squared error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClassCriterion {
    Gini,
    /// scikit-learn's `entropy` and `log_loss` (the same criterion).
    Entropy,
}

/// Features a forest draws at each split, as scikit-learn's `max_features`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaxFeatures {
    All,
    Sqrt,
    Log2,
    Count(u64),
    Fraction(f64),
}

impl MaxFeatures {
    /// How many of `n` features: at least 1, at most `n` (scikit-learn's rounding down).
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    pub fn resolve(self, n: usize) -> usize {
        let k = match self {
            MaxFeatures::All => n,
            MaxFeatures::Sqrt => (n as f64).sqrt() as usize,
            MaxFeatures::Log2 => (n as f64).log2() as usize,
            MaxFeatures::Count(c) => usize::try_from(c).unwrap_or(usize::MAX),
            MaxFeatures::Fraction(f) => (f * n as f64) as usize,
        };
        k.clamp(1, n.max(1))
    }
}

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
    /// scikit-learn's `LogisticRegression`: `C` is the inverse penalty strength, `l1_ratio` mixes
    /// L1 (1) and L2 (0).
    LogisticRegression {
        #[serde(rename = "C")]
        c: f64,
        l1_ratio: f64,
        fit_intercept: bool,
        max_iter: u64,
        tol: f64,
    },
    /// scikit-learn's `DecisionTreeRegressor` (squared error) or `DecisionTreeClassifier` (`criterion`),
    /// best splits, depth first.
    DecisionTree {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_depth: Option<u64>,
        min_samples_split: u64,
        min_samples_leaf: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        criterion: Option<ClassCriterion>,
    },
    /// scikit-learn's `RandomForestRegressor` / `RandomForestClassifier`.
    RandomForest {
        n_estimators: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_depth: Option<u64>,
        min_samples_split: u64,
        min_samples_leaf: u64,
        max_features: MaxFeatures,
        bootstrap: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        criterion: Option<ClassCriterion>,
    },
    /// scikit-learn's `GradientBoostingRegressor` (squared error) or `GradientBoostingClassifier` (log
    /// loss), `subsample = 1`.
    GradientBoosting {
        n_estimators: u64,
        learning_rate: f64,
        max_depth: u64,
        min_samples_split: u64,
        min_samples_leaf: u64,
    },
}

pub const REGRESSORS: [&str; 7] = [
    "linear_regression",
    "ridge",
    "lasso",
    "elastic_net",
    "decision_tree",
    "random_forest",
    "gradient_boosting",
];

pub const CLASSIFIERS: [&str; 4] = ["logistic_regression", "decision_tree", "random_forest", "gradient_boosting"];

impl Estimator {
    pub fn name(&self) -> &'static str {
        match self {
            Estimator::LinearRegression { .. } => "linear_regression",
            Estimator::Ridge { .. } => "ridge",
            Estimator::Lasso { .. } => "lasso",
            Estimator::ElasticNet { .. } => "elastic_net",
            Estimator::LogisticRegression { .. } => "logistic_regression",
            Estimator::DecisionTree { .. } => "decision_tree",
            Estimator::RandomForest { .. } => "random_forest",
            Estimator::GradientBoosting { .. } => "gradient_boosting",
        }
    }

    /// Linear regressors have coefficients (what recursive elimination and L1 selection rank by).
    pub fn is_linear(&self) -> bool {
        matches!(
            self,
            Estimator::LinearRegression { .. }
                | Estimator::Ridge { .. }
                | Estimator::Lasso { .. }
                | Estimator::ElasticNet { .. }
        )
    }

    pub fn param_names(&self) -> Vec<&'static str> {
        let classify = |criterion: &Option<ClassCriterion>| criterion.is_some();
        match self {
            Estimator::LinearRegression { .. } => vec!["fit_intercept"],
            Estimator::Ridge { .. } => vec!["alpha", "fit_intercept"],
            Estimator::Lasso { .. } => vec!["alpha", "fit_intercept", "max_iter", "tol"],
            Estimator::ElasticNet { .. } => vec!["alpha", "l1_ratio", "fit_intercept", "max_iter", "tol"],
            Estimator::LogisticRegression { .. } => vec!["C", "l1_ratio", "fit_intercept", "max_iter", "tol"],
            Estimator::DecisionTree { criterion, .. } => {
                let mut v = vec!["max_depth", "min_samples_split", "min_samples_leaf"];
                v.extend(classify(criterion).then_some("criterion"));
                v
            }
            Estimator::RandomForest { criterion, .. } => {
                let mut v = vec![
                    "n_estimators",
                    "max_depth",
                    "min_samples_split",
                    "min_samples_leaf",
                    "max_features",
                    "bootstrap",
                ];
                v.extend(classify(criterion).then_some("criterion"));
                v
            }
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

/// Reads `estimator = "…"` and its hyperparameters for a task, checking every value before any fit.
pub fn parse_estimator(t: &mut TableReader<'_, '_>, task: Task) -> Result<Estimator> {
    let known: &[&str] = match task {
        Task::Regression => &REGRESSORS,
        Task::Classification => &CLASSIFIERS,
    };
    let name = t.req_str(
        "estimator",
        &format!(
            "one of {}",
            known.iter().map(|k| format!("\"{k}\"")).collect::<Vec<_>>().join(", ")
        ),
    )?;
    if !known.contains(&name.value.as_str()) {
        let other = name.value.as_str();
        let (message, hint) = if REGRESSORS.contains(&other) || CLASSIFIERS.contains(&other) {
            (
                format!("estimator \"{other}\" does not fit task \"{}\"", task.name()),
                format!("for task \"{}\" use one of: {}", task.name(), known.join(", ")),
            )
        } else {
            (
                format!("unknown estimator \"{other}\" (known for task \"{}\": {})", task.name(), known.join(", ")),
                crate::error::did_you_mean(other, known.iter().copied()).unwrap_or_default(),
            )
        };
        let mut err = Error::spec(message, Some(name.location));
        if !hint.is_empty() {
            err = err.with_hint(hint);
        }
        return Err(err);
    }
    if matches!(name.value.as_str(), "decision_tree" | "gradient_boosting" | "random_forest") {
        return parse_tree_estimator(t, &name.value, task);
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
    let solver = |t: &mut TableReader<'_, '_>, default_iter: u64| -> Result<(u64, f64)> {
        let max_iter = match t.u64("max_iter")? {
            Some(m) if m.value == 0 => return Err(Error::spec("`max_iter` must be at least 1", Some(m.location))),
            other => other.map_or(default_iter, |m| m.value),
        };
        let tol = match t.f64("tol")? {
            Some(v) if v.value <= 0.0 => return Err(Error::spec("`tol` must be above 0", Some(v.location))),
            other => other.map_or(1e-4, |v| v.value),
        };
        Ok((max_iter, tol))
    };
    let l1_ratio = |t: &mut TableReader<'_, '_>, default: f64| -> Result<f64> {
        match t.f64("l1_ratio")? {
            None => Ok(default),
            Some(r) if (0.0..=1.0).contains(&r.value) => Ok(r.value),
            Some(r) => Err(Error::spec(
                format!("`l1_ratio` must be between 0 and 1, found {}", r.value),
                Some(r.location),
            )),
        }
    };
    match name.value.as_str() {
        "linear_regression" => Ok(Estimator::LinearRegression { fit_intercept }),
        "ridge" => Ok(Estimator::Ridge {
            alpha: alpha(t)?,
            fit_intercept,
        }),
        "lasso" => {
            let alpha = alpha(t)?;
            let (max_iter, tol) = solver(t, 1000)?;
            Ok(Estimator::Lasso {
                alpha,
                fit_intercept,
                max_iter,
                tol,
            })
        }
        "elastic_net" => {
            let alpha = alpha(t)?;
            let l1_ratio = l1_ratio(t, 0.5)?;
            let (max_iter, tol) = solver(t, 1000)?;
            Ok(Estimator::ElasticNet {
                alpha,
                l1_ratio,
                fit_intercept,
                max_iter,
                tol,
            })
        }
        _ => {
            let c = match t.f64("C")? {
                None => 1.0,
                Some(c) if c.value > 0.0 && c.value.is_finite() => c.value,
                Some(c) => {
                    return Err(Error::spec(
                        format!("`C` must be a finite number above 0, found {}", c.value),
                        Some(c.location),
                    )
                    .with_hint("C is the inverse of the penalty strength: larger C, weaker penalty"));
                }
            };
            let l1_ratio = l1_ratio(t, 0.0)?;
            let (max_iter, tol) = solver(t, 100)?;
            Ok(Estimator::LogisticRegression {
                c,
                l1_ratio,
                fit_intercept,
                max_iter,
                tol,
            })
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

fn parse_tree_estimator(t: &mut TableReader<'_, '_>, name: &str, task: Task) -> Result<Estimator> {
    let min_samples_split = at_least(t, "min_samples_split", 2, 2)?;
    let min_samples_leaf = at_least(t, "min_samples_leaf", 1, 1)?;
    let criterion = match task {
        Task::Regression => None,
        Task::Classification if name == "gradient_boosting" => None,
        Task::Classification => Some(
            match t
                .choice("criterion", &["gini", "entropy", "log_loss"])?
                .map(|c| c.value)
                .as_deref()
            {
                Some("entropy" | "log_loss") => ClassCriterion::Entropy,
                _ => ClassCriterion::Gini,
            },
        ),
    };
    let optional_depth = |t: &mut TableReader<'_, '_>| -> Result<Option<u64>> {
        if t.has("max_depth") {
            Ok(Some(at_least(t, "max_depth", 1, 1)?))
        } else {
            Ok(None)
        }
    };
    match name {
        "decision_tree" => Ok(Estimator::DecisionTree {
            max_depth: optional_depth(t)?,
            min_samples_split,
            min_samples_leaf,
            criterion,
        }),
        "random_forest" => Ok(Estimator::RandomForest {
            n_estimators: at_least(t, "n_estimators", 1, 100)?,
            max_depth: optional_depth(t)?,
            min_samples_split,
            min_samples_leaf,
            max_features: parse_max_features(t, task)?,
            bootstrap: t.bool("bootstrap")?.unwrap_or(true),
            criterion,
        }),
        _ => {
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
    }
}

/// `max_features`: "sqrt", "log2", "all", a count (integer ≥ 1) or a fraction in (0, 1]. Defaults as
/// scikit-learn's: "sqrt" for classification, all features for regression.
fn parse_max_features(t: &mut TableReader<'_, '_>, task: Task) -> Result<MaxFeatures> {
    let default = match task {
        Task::Classification => MaxFeatures::Sqrt,
        Task::Regression => MaxFeatures::All,
    };
    let hint = "use \"sqrt\", \"log2\", \"all\", a whole number of features ≥ 1, or a fraction in (0, 1]";
    match t.kind("max_features") {
        None => Ok(default),
        Some("a string") => match t.choice("max_features", &["sqrt", "log2", "all"])?.map(|v| v.value).as_deref() {
            Some("log2") => Ok(MaxFeatures::Log2),
            Some("all") => Ok(MaxFeatures::All),
            _ => Ok(MaxFeatures::Sqrt),
        },
        Some("an integer") => Ok(MaxFeatures::Count(at_least(t, "max_features", 1, 1)?)),
        _ => match t.f64("max_features")? {
            Some(f) if f.value > 0.0 && f.value <= 1.0 => Ok(MaxFeatures::Fraction(f.value)),
            Some(f) => Err(Error::spec(
                format!("`max_features` must be a fraction in (0, 1], found {}", f.value),
                Some(f.location),
            )
            .with_hint(hint)),
            None => Ok(default),
        },
    }
}

/// A fitted model: a classifier, or a regressor that is linear (coefficients) or trees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Model {
    /// First: it denies unknown fields and needs `classes`, so a regressor's JSON never reads as one.
    Classifier(ClassifierModel),
    Linear(LinearModel),
    Trees(TreeModel),
}

impl Model {
    pub fn estimator(&self) -> &str {
        match self {
            Model::Classifier(m) => &m.estimator,
            Model::Linear(m) => &m.estimator,
            Model::Trees(m) => &m.estimator,
        }
    }

    pub fn features(&self) -> &[String] {
        match self {
            Model::Classifier(m) => &m.features,
            Model::Linear(m) => &m.features,
            Model::Trees(m) => &m.features,
        }
    }

    /// The linear regressor, when it is one.
    pub fn linear(&self) -> Option<&LinearModel> {
        match self {
            Model::Linear(m) => Some(m),
            Model::Trees(_) | Model::Classifier(_) => None,
        }
    }

    /// The classes, for a classifier.
    pub fn classifier(&self) -> Option<&ClassifierModel> {
        match self {
            Model::Classifier(m) => Some(m),
            Model::Linear(_) | Model::Trees(_) => None,
        }
    }

    /// Feature importances of a tree model, under `features()`.
    pub fn importances(&self) -> Option<&[f64]> {
        match self {
            Model::Trees(m) => Some(&m.importances),
            Model::Classifier(m) if !m.importances.is_empty() => Some(&m.importances),
            _ => None,
        }
    }

    /// A regressor's predictions (a classifier predicts through `predict_proba`).
    pub fn predict(&self, frame: &Frame) -> Result<Vec<f64>> {
        match self {
            Model::Linear(m) => m.predict(frame),
            Model::Trees(m) => m.predict(frame),
            Model::Classifier(_) => Err(Error::internal("a classifier has no numeric prediction")),
        }
    }
}

/// A fitted tree model: `init + Σ learning_rate × tree(x)` (a single tree: init 0, rate 1), or the mean
/// of the trees (a forest).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TreeModel {
    pub estimator: String,
    pub features: Vec<String>,
    pub init: f64,
    pub learning_rate: f64,
    pub trees: Vec<tree::Tree>,
    /// scikit-learn's `feature_importances_`, under `features`.
    pub importances: Vec<f64>,
    /// A forest: the prediction is the trees' sum divided by their number (as scikit-learn sums them).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub average: bool,
}

impl TreeModel {
    pub fn predict(&self, frame: &Frame) -> Result<Vec<f64>> {
        let columns = model_columns(frame, &self.features)?;
        Ok((0..frame.n_rows())
            .map(|i| {
                if self.average {
                    let sum: f64 = self.trees.iter().map(|t| t.predict_row(|c| columns[c][i])).sum();
                    return sum / self.trees.len() as f64;
                }
                let mut f = self.init;
                for t in &self.trees {
                    f += self.learning_rate * t.predict_row(|c| columns[c][i]);
                }
                f
            })
            .collect())
    }
}

/// How a classifier turns a row into class scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClassScores {
    /// Logistic: one coefficient row for two classes (the second is positive), else one per class.
    Linear {
        coefficients: Vec<Vec<f64>>,
        intercepts: Vec<f64>,
    },
    /// A tree or a forest: the mean of the leaves' class fractions.
    Trees { trees: Vec<tree::Tree> },
    /// Gradient boosting: raw scores `init + Σ learning_rate × tree(x)` per tree slot, then the
    /// logistic link (one slot for two classes, else one per class).
    Boosted {
        init: Vec<f64>,
        learning_rate: f64,
        rounds: Vec<Vec<tree::Tree>>,
    },
}

/// A fitted classifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifierModel {
    pub estimator: String,
    pub features: Vec<String>,
    /// The class labels in order (scikit-learn's `classes_`): numbers sorted as numbers, text as text.
    pub classes: Vec<String>,
    /// Whether the labels are numbers (written back as numbers) or text.
    pub numeric_labels: bool,
    pub scores: ClassScores,
    /// Tree models: scikit-learn's `feature_importances_`, under `features`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub importances: Vec<f64>,
}

impl ClassifierModel {
    /// Class probabilities, row-major: row i's are `[i·K, (i + 1)·K)`.
    pub fn predict_proba(&self, frame: &Frame) -> Result<Vec<f64>> {
        let columns = model_columns(frame, &self.features)?;
        let k = self.classes.len();
        let n = frame.n_rows();
        let mut out = vec![0.0; n * k];
        match &self.scores {
            ClassScores::Linear {
                coefficients,
                intercepts,
            } => {
                let mut z = vec![0.0; coefficients.len()];
                for (i, row) in out.chunks_mut(k).enumerate() {
                    for (zk, (w, b)) in z.iter_mut().zip(coefficients.iter().zip(intercepts)) {
                        *zk = w.iter().zip(&columns).map(|(w, x)| w * x[i]).sum::<f64>() + b;
                    }
                    logistic::probabilities(&z, row);
                }
            }
            ClassScores::Trees { trees } => {
                for (i, row) in out.chunks_mut(k).enumerate() {
                    for t in trees {
                        let leaf = t.leaf(|c| columns[c][i]);
                        for (o, p) in row.iter_mut().zip(t.leaf_distribution(leaf, k)) {
                            *o += p;
                        }
                    }
                    for o in row.iter_mut() {
                        *o /= trees.len() as f64;
                    }
                }
            }
            ClassScores::Boosted {
                init,
                learning_rate,
                rounds,
            } => {
                let mut z = init.clone();
                for (i, row) in out.chunks_mut(k).enumerate() {
                    z.copy_from_slice(init);
                    for trees in rounds {
                        for (zk, t) in z.iter_mut().zip(trees) {
                            *zk += learning_rate * t.predict_row(|c| columns[c][i]);
                        }
                    }
                    logistic::probabilities(&z, row);
                }
            }
        }
        Ok(out)
    }
}

/// The index of the largest probability in each row of `proba` (the first of equals, as numpy's
/// `argmax`).
pub fn argmax_rows(proba: &[f64], k: usize) -> Vec<usize> {
    proba
        .chunks(k)
        .map(|row| {
            let mut best = 0;
            for (c, p) in row.iter().enumerate() {
                if *p > row[best] {
                    best = c;
                }
            }
            best
        })
        .collect()
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

/// The train target as an estimator takes it.
pub enum FitTarget<'a> {
    Values(&'a [f64]),
    /// Class indices into `labels` (sorted), and whether the labels are numbers.
    Classes {
        y: &'a [u32],
        labels: &'a [String],
        numeric: bool,
    },
}

/// Fits `estimator` on the train design; `seed` feeds the estimators that draw (forests).
pub fn fit(estimator: &Estimator, features: &[(&str, &[f64])], target: &FitTarget<'_>, seed: [u8; 32]) -> Result<Model> {
    let n = match target {
        FitTarget::Values(y) => y.len(),
        FitTarget::Classes { y, .. } => y.len(),
    };
    if n == 0 {
        return Err(Error::data("the train split is empty"));
    }
    let names: Vec<String> = features.iter().map(|(n, _)| (*n).to_string()).collect();
    let columns: Vec<&[f64]> = features.iter().map(|(_, c)| *c).collect();
    let rounded = if matches!(estimator, Estimator::LogisticRegression { .. }) || estimator.is_linear() {
        Vec::new()
    } else {
        tree::single_columns(&names, &columns)?
    };
    let tree_columns: Vec<&[f64]> = rounded.iter().map(Vec::as_slice).collect();
    let (y, labels, numeric) = match *target {
        FitTarget::Values(y) => {
            if estimator.is_linear() {
                return fit_linear(estimator, features, y).map(Model::Linear);
            }
            return fit_tree_regressor(estimator, names, &tree_columns, y, seed);
        }
        FitTarget::Classes { y, labels, numeric } => (y, labels, numeric),
    };
    if labels.len() < 2 {
        return Err(Error::data(format!(
            "the train split holds a single class ({}); a classifier needs at least two",
            labels.first().map_or("none", String::as_str)
        ))
        .with_hint("check the target column, or split so that train holds every class (method = \"random\", stratify)"));
    }
    let n_classes = labels.len();
    let tree_params = |max_depth, min_samples_split, min_samples_leaf, criterion, max_features| tree::TreeParams {
        max_depth,
        min_samples_split,
        min_samples_leaf,
        criterion: match criterion {
            Some(ClassCriterion::Entropy) => tree::Criterion::Entropy,
            _ => tree::Criterion::Gini,
        },
        max_features,
    };
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
        Estimator::DecisionTree {
            max_depth,
            min_samples_split,
            min_samples_leaf,
            criterion,
        } => {
            let params = tree_params(max_depth, min_samples_split, min_samples_leaf, criterion, None);
            let trees = vec![tree::grow(&tree_columns, classes, &params)];
            let importances = tree::importances(&trees, columns.len());
            (ClassScores::Trees { trees }, importances)
        }
        Estimator::RandomForest {
            n_estimators,
            max_depth,
            min_samples_split,
            min_samples_leaf,
            max_features,
            bootstrap,
            criterion,
        } => {
            let draw = max_features.resolve(columns.len());
            let params = tree_params(
                max_depth,
                min_samples_split,
                min_samples_leaf,
                criterion,
                (draw < columns.len()).then_some(draw),
            );
            let trees = ensemble::forest(&tree_columns, classes, &params, n_estimators, bootstrap, seed);
            let importances = tree::importances(&trees, columns.len());
            (ClassScores::Trees { trees }, importances)
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
                criterion: tree::Criterion::SquaredError,
                max_features: None,
            };
            let (init, rounds) =
                ensemble::boost_classes(&tree_columns, y, n_classes, n_estimators, learning_rate, &params);
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

fn fit_tree_regressor(
    estimator: &Estimator,
    features: Vec<String>,
    columns: &[&[f64]],
    y: &[f64],
    seed: [u8; 32],
) -> Result<Model> {
    let values = tree::Target::Values(y);
    let (init, learning_rate, trees, average) = match *estimator {
        Estimator::DecisionTree {
            max_depth,
            min_samples_split,
            min_samples_leaf,
            ..
        } => {
            let params = tree::TreeParams {
                max_depth,
                min_samples_split,
                min_samples_leaf,
                criterion: tree::Criterion::SquaredError,
                max_features: None,
            };
            (0.0, 1.0, vec![tree::grow(columns, values, &params)], false)
        }
        Estimator::RandomForest {
            n_estimators,
            max_depth,
            min_samples_split,
            min_samples_leaf,
            max_features,
            bootstrap,
            ..
        } => {
            let draw = max_features.resolve(columns.len());
            let params = tree::TreeParams {
                max_depth,
                min_samples_split,
                min_samples_leaf,
                criterion: tree::Criterion::SquaredError,
                max_features: (draw < columns.len()).then_some(draw),
            };
            let trees = ensemble::forest(columns, values, &params, n_estimators, bootstrap, seed);
            (0.0, 1.0, trees, true)
        }
        Estimator::GradientBoosting {
            n_estimators,
            learning_rate,
            max_depth,
            min_samples_split,
            min_samples_leaf,
        } => {
            // scikit-learn (since 1.9) grows boosting trees with squared error; friedman_mse ranks
            // splits the same way but rounds differently.
            let params = tree::TreeParams {
                max_depth: Some(max_depth),
                min_samples_split,
                min_samples_leaf,
                criterion: tree::Criterion::SquaredError,
                max_features: None,
            };
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
