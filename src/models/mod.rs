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
pub mod folds;
pub mod gram;
pub mod kmeans;
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

/// A fitted k-means model: the cluster centres; a row's prediction is its nearest centre's index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterModel {
    pub estimator: String,
    pub features: Vec<String>,
    pub centres: Vec<Vec<f64>>,
    /// The train rows' inertia.
    pub inertia: f64,
}

impl ClusterModel {
    /// Each row's cluster (the nearest centre, the first of equals).
    pub fn assign(&self, frame: &Frame) -> Result<Vec<usize>> {
        let columns = model_columns(frame, &self.features)?;
        let points = kmeans::Points::from_columns(&columns);
        Ok((0..points.n())
            .map(|i| kmeans::nearest(&self.centres, points.row(i)).0)
            .collect())
    }
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
    /// scikit-learn's `StackingRegressor` / `StackingClassifier`: the final estimator learns from the
    /// base estimators' out-of-fold predictions (`folds`-fold, not shuffled, stratified for classes).
    Stacking {
        base: Vec<Member>,
        #[serde(rename = "final")]
        final_estimator: Box<Estimator>,
        folds: u64,
    },
    /// `VotingRegressor` / `VotingClassifier(voting="soft")`: the weighted mean of the base estimators'
    /// predictions (or probabilities).
    Voting {
        base: Vec<Member>,
        weights: Vec<f64>,
    },
    /// scikit-learn's `KMeans` (Lloyd), seeded by k-means++ (`plus_plus`) or random rows.
    KMeans {
        n_clusters: u64,
        plus_plus: bool,
        n_init: u64,
        max_iter: u64,
        tol: f64,
    },
}

/// A named base estimator of an ensemble; its predictions are the final estimator's feature `name`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub name: String,
    #[serde(flatten)]
    pub estimator: Estimator,
}

pub const REGRESSORS: [&str; 9] = [
    "linear_regression",
    "ridge",
    "lasso",
    "elastic_net",
    "decision_tree",
    "random_forest",
    "gradient_boosting",
    "stacking",
    "voting",
];

pub const CLUSTERERS: [&str; 1] = ["k_means"];

pub const CLASSIFIERS: [&str; 6] = [
    "logistic_regression",
    "decision_tree",
    "random_forest",
    "gradient_boosting",
    "stacking",
    "voting",
];

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
            Estimator::Stacking { .. } => "stacking",
            Estimator::Voting { .. } => "voting",
            Estimator::KMeans { .. } => "k_means",
        }
    }

    /// Ensembles combine other estimators.
    pub fn is_ensemble(&self) -> bool {
        matches!(self, Estimator::Stacking { .. } | Estimator::Voting { .. })
    }

    /// How a tree estimator grows its trees, on `n_features` features (a forest's `max_features`
    /// resolved against them). Boosting always grows regression trees with squared error (scikit-learn
    /// since 1.9; `friedman_mse` ranks splits the same but rounds differently).
    fn tree_params(&self, n_features: usize) -> Option<tree::TreeParams> {
        let criterion = |c: Option<ClassCriterion>| match c {
            Some(ClassCriterion::Gini) => tree::Criterion::Gini,
            Some(ClassCriterion::Entropy) => tree::Criterion::Entropy,
            None => tree::Criterion::SquaredError,
        };
        match *self {
            Estimator::DecisionTree {
                max_depth,
                min_samples_split,
                min_samples_leaf,
                criterion: c,
            } => Some(tree::TreeParams {
                max_depth,
                min_samples_split,
                min_samples_leaf,
                criterion: criterion(c),
                max_features: None,
            }),
            Estimator::RandomForest {
                max_depth,
                min_samples_split,
                min_samples_leaf,
                max_features,
                criterion: c,
                ..
            } => {
                let draw = max_features.resolve(n_features);
                Some(tree::TreeParams {
                    max_depth,
                    min_samples_split,
                    min_samples_leaf,
                    criterion: criterion(c),
                    max_features: (draw < n_features).then_some(draw),
                })
            }
            Estimator::GradientBoosting {
                max_depth,
                min_samples_split,
                min_samples_leaf,
                ..
            } => Some(tree::TreeParams {
                max_depth: Some(max_depth),
                min_samples_split,
                min_samples_leaf,
                criterion: tree::Criterion::SquaredError,
                max_features: None,
            }),
            _ => None,
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
            Estimator::Stacking { .. } => vec!["base", "final", "folds"],
            Estimator::Voting { .. } => vec!["base", "weights"],
            Estimator::KMeans { .. } => vec!["n_clusters", "init", "n_init", "max_iter", "tol"],
        }
    }
}

/// Reads `estimator = "…"` and its hyperparameters for a task, checking every value before any fit.
pub fn parse_estimator(t: &mut TableReader<'_, '_>, task: Task) -> Result<Estimator> {
    let known: &[&str] = match task {
        Task::Regression => &REGRESSORS,
        Task::Classification => &CLASSIFIERS,
        Task::Clustering => &CLUSTERERS,
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
        let (message, hint) =
            if REGRESSORS.contains(&other) || CLASSIFIERS.contains(&other) || CLUSTERERS.contains(&other) {
                (
                    format!("estimator \"{other}\" does not fit task \"{}\"", task.name()),
                    format!("for task \"{}\" use one of: {}", task.name(), known.join(", ")),
                )
            } else {
                (
                    format!(
                        "unknown estimator \"{other}\" (known for task \"{}\": {})",
                        task.name(),
                        known.join(", ")
                    ),
                    crate::error::did_you_mean(other, known.iter().copied()).unwrap_or_default(),
                )
            };
        let mut err = Error::spec(message, Some(name.location));
        if !hint.is_empty() {
            err = err.with_hint(hint);
        }
        return Err(err);
    }
    if matches!(
        name.value.as_str(),
        "decision_tree" | "gradient_boosting" | "random_forest"
    ) {
        return parse_tree_estimator(t, &name.value, task);
    }
    if matches!(name.value.as_str(), "stacking" | "voting") {
        return parse_ensemble(t, &name.value, task);
    }
    if name.value == "k_means" {
        let plus_plus = t
            .choice("init", &["k-means++", "random"])?
            .is_none_or(|i| i.value == "k-means++");
        let tol = match t.f64("tol")? {
            Some(v) if v.value < 0.0 => return Err(Error::spec("`tol` must be ≥ 0", Some(v.location))),
            other => other.map_or(1e-4, |v| v.value),
        };
        return Ok(Estimator::KMeans {
            n_clusters: at_least(t, "n_clusters", 1, 8)?,
            // scikit-learn's n_init = "auto": one k-means++ seeding, or ten random ones.
            n_init: at_least(t, "n_init", 1, if plus_plus { 1 } else { 10 })?,
            plus_plus,
            max_iter: at_least(t, "max_iter", 1, 300)?,
            tol,
        });
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

/// `stacking` / `voting`: `[[train.base]]` tables (each a `name` and an estimator), then `[train.final]`
/// and `folds` (stacking) or `weights` (voting).
fn parse_ensemble(t: &mut TableReader<'_, '_>, name: &str, task: Task) -> Result<Estimator> {
    let mut base: Vec<Member> = Vec::new();
    for mut b in t.table_list("base")? {
        let member = b.req_str("name", "a name for this estimator's predictions")?;
        let ok = !member.value.is_empty()
            && member.value.len() <= 64
            && member
                .value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !ok {
            return Err(Error::spec(
                format!(
                    "base name \"{}\" must be 1-64 letters, digits, '_' or '-'",
                    member.value
                ),
                Some(member.location),
            ));
        }
        if base.iter().any(|m| m.name == member.value) {
            return Err(Error::spec(
                format!("two base estimators are named \"{}\"", member.value),
                Some(member.location),
            )
            .with_hint("give each [[train.base]] a unique name"));
        }
        let estimator = parse_estimator(&mut b, task)?;
        if estimator.is_ensemble() {
            return Err(Error::spec(
                format!(
                    "base estimator \"{}\" is itself an ensemble; ensembles do not nest",
                    member.value
                ),
                Some(member.location),
            ));
        }
        let mut known = vec!["name", "estimator"];
        known.extend(estimator.param_names());
        b.finish(&known)?;
        base.push(Member {
            name: member.value,
            estimator,
        });
    }
    if base.len() < 2 {
        return Err(Error::spec(
            format!("{name} needs at least two [[train.base]] estimators"),
            Some(t.location()),
        )
        .with_hint("add [[train.base]] tables, each with name = \"…\" and estimator = \"…\""));
    }
    if name == "voting" {
        let weights = match t.kind("weights") {
            None => vec![1.0; base.len()],
            Some("an array") => {
                let Some(list) = t.raw("weights") else {
                    return Err(Error::internal("weights vanished"));
                };
                let toml::de::DeValue::Array(items) = list.get_ref() else {
                    return Err(Error::internal("weights is not an array"));
                };
                let location = t.source().location(list.span());
                let weights: Vec<f64> = items
                    .iter()
                    .map(|v| match v.get_ref() {
                        toml::de::DeValue::Float(f) => f.as_str().replace('_', "").parse::<f64>().ok(),
                        toml::de::DeValue::Integer(i) => i.as_str().replace('_', "").parse::<f64>().ok(),
                        _ => None,
                    })
                    .collect::<Option<Vec<f64>>>()
                    .filter(|w| w.iter().all(|x| x.is_finite() && *x >= 0.0) && w.iter().any(|x| *x > 0.0))
                    .ok_or_else(|| Error::spec("`weights` must be numbers ≥ 0, not all 0", Some(location.clone())))?;
                if weights.len() != base.len() {
                    return Err(Error::spec(
                        format!(
                            "`weights` has {} numbers for {} base estimators",
                            weights.len(),
                            base.len()
                        ),
                        Some(location),
                    ));
                }
                weights
            }
            Some(other) => {
                return Err(Error::spec(
                    format!("`weights` must be an array of numbers, found {other}"),
                    Some(t.location()),
                ));
            }
        };
        return Ok(Estimator::Voting { base, weights });
    }
    let mut f = t.table("final")?.ok_or_else(|| {
        t.missing(
            "final",
            "the estimator that learns from the base estimators' predictions",
        )
    })?;
    let final_estimator = parse_estimator(&mut f, task)?;
    if final_estimator.is_ensemble() {
        return Err(Error::spec(
            "the final estimator cannot be an ensemble",
            Some(f.location()),
        ));
    }
    let mut known = vec!["estimator"];
    known.extend(final_estimator.param_names());
    f.finish(&known)?;
    let folds = at_least(t, "folds", 2, 5)?;
    Ok(Estimator::Stacking {
        base,
        final_estimator: Box::new(final_estimator),
        folds,
    })
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
        Task::Regression | Task::Clustering => None,
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
        Task::Regression | Task::Clustering => MaxFeatures::All,
    };
    let hint = "use \"sqrt\", \"log2\", \"all\", a whole number of features ≥ 1, or a fraction in (0, 1]";
    match t.kind("max_features") {
        None => Ok(default),
        Some("a string") => match t
            .choice("max_features", &["sqrt", "log2", "all"])?
            .map(|v| v.value)
            .as_deref()
        {
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
    /// First: it denies unknown fields and needs `members`.
    Ensemble(EnsembleModel),
    /// Denies unknown fields and needs `centres`.
    Clusters(ClusterModel),
    /// Next: it denies unknown fields and needs `classes`, so a regressor's JSON never reads as one.
    Classifier(ClassifierModel),
    Linear(LinearModel),
    Trees(TreeModel),
}

/// What a model computes for some rows: values (a regressor, before any inverse target transform) or
/// row-major class probabilities (a classifier).
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    Values(Vec<f64>),
    Proba(Vec<f64>),
}

impl Model {
    pub fn estimator(&self) -> &str {
        match self {
            Model::Ensemble(m) => &m.estimator,
            Model::Clusters(m) => &m.estimator,
            Model::Classifier(m) => &m.estimator,
            Model::Linear(m) => &m.estimator,
            Model::Trees(m) => &m.estimator,
        }
    }

    pub fn features(&self) -> &[String] {
        match self {
            Model::Ensemble(m) => &m.features,
            Model::Clusters(m) => &m.features,
            Model::Classifier(m) => &m.features,
            Model::Linear(m) => &m.features,
            Model::Trees(m) => &m.features,
        }
    }

    /// The linear regressor, when it is one.
    pub fn linear(&self) -> Option<&LinearModel> {
        match self {
            Model::Linear(m) => Some(m),
            _ => None,
        }
    }

    /// The single classifier, when it is one (an ensemble of classifiers is not).
    pub fn classifier(&self) -> Option<&ClassifierModel> {
        match self {
            Model::Classifier(m) => Some(m),
            _ => None,
        }
    }

    /// A classifier's classes (in order) and whether they are numbers.
    pub fn classes(&self) -> Option<(&[String], bool)> {
        match self {
            Model::Classifier(m) => Some((&m.classes, m.numeric_labels)),
            Model::Ensemble(m) => m.classes.as_deref().map(|c| (c, m.numeric_labels)),
            _ => None,
        }
    }

    /// Values or class probabilities for every row of `frame`.
    pub fn output(&self, frame: &Frame) -> Result<Output> {
        match self {
            Model::Classifier(m) => m.predict_proba(frame).map(Output::Proba),
            Model::Ensemble(m) => m.output(frame),
            Model::Clusters(m) => Ok(Output::Values(m.assign(frame)?.into_iter().map(|c| c as f64).collect())),
            Model::Linear(m) => m.predict(frame).map(Output::Values),
            Model::Trees(m) => m.predict(frame).map(Output::Values),
        }
    }

    /// A regressor's predictions (a classifier predicts through `output`).
    pub fn predict(&self, frame: &Frame) -> Result<Vec<f64>> {
        match self.output(frame)? {
            Output::Values(v) => Ok(v),
            Output::Proba(_) => Err(Error::internal("a classifier has no numeric prediction")),
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
}

/// A fitted stacking or voting ensemble.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnsembleModel {
    pub estimator: String,
    pub features: Vec<String>,
    /// The base models, fitted on every train row, by name.
    pub members: Vec<(String, Model)>,
    /// Stacking: the model fitted on the members' out-of-fold predictions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_model: Option<Box<Model>>,
    /// Voting: each member's weight.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weights: Vec<f64>,
    /// A classifier ensemble's classes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<Vec<String>>,
    #[serde(default)]
    pub numeric_labels: bool,
}

impl EnsembleModel {
    fn output(&self, frame: &Frame) -> Result<Output> {
        let outputs = self
            .members
            .iter()
            .map(|(_, m)| m.output(frame))
            .collect::<Result<Vec<Output>>>()?;
        let n_classes = self.classes.as_ref().map_or(0, Vec::len);
        if let Some(final_model) = &self.final_model {
            let meta = meta_features(&self.members, &outputs, n_classes);
            let frame = frame_of(meta, frame.n_rows(), frame);
            return final_model.output(&frame);
        }
        // Voting: the weighted mean, summed in member order, divided by the weights' sum (numpy's
        // `average`).
        let total: f64 = self.weights.iter().sum();
        let mut mean: Option<Vec<f64>> = None;
        for (out, w) in outputs.iter().zip(&self.weights) {
            let values = match out {
                Output::Values(v) | Output::Proba(v) => v,
            };
            match &mut mean {
                None => mean = Some(values.iter().map(|v| v * w).collect()),
                Some(m) => {
                    for (a, v) in m.iter_mut().zip(values) {
                        *a += v * w;
                    }
                }
            }
        }
        let mean: Vec<f64> = mean.unwrap_or_default().into_iter().map(|v| v / total).collect();
        Ok(if self.classes.is_some() {
            Output::Proba(mean)
        } else {
            Output::Values(mean)
        })
    }
}

/// The final estimator's features: each member's prediction (`name`), or for classes its
/// probabilities (`name`: the positive class's, for two; `name_class` per class, for more), as
/// scikit-learn's stacking passes them on.
fn meta_features(members: &[(String, Model)], outputs: &[Output], n_classes: usize) -> Vec<(String, Vec<f64>)> {
    let mut meta = Vec::new();
    for ((name, model), out) in members.iter().zip(outputs) {
        match out {
            Output::Values(v) => meta.push((name.clone(), v.clone())),
            Output::Proba(p) if n_classes == 2 => meta.push((name.clone(), p.chunks(2).map(|r| r[1]).collect())),
            Output::Proba(p) => {
                let labels = model.classes().map(|(l, _)| l.to_vec()).unwrap_or_default();
                for (k, label) in labels.iter().enumerate() {
                    meta.push((format!("{name}_{label}"), p.chunks(n_classes).map(|r| r[k]).collect()));
                }
            }
        }
    }
    meta
}

/// A frame of numeric columns, its rows numbered as `like`'s.
fn frame_of(columns: Vec<(String, Vec<f64>)>, rows: usize, like: &Frame) -> Frame {
    Frame {
        columns: columns
            .into_iter()
            .map(|(name, v)| crate::frame::Column {
                name,
                data: ColumnData::Numeric(v),
            })
            .collect(),
        lines: like.lines.iter().copied().take(rows).collect(),
        source: like.source.clone(),
        first_row: like.first_row,
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
                    data: ColumnData::Numeric(pick(&held, c)),
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
