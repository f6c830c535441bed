//! Estimators' checked hyperparameters: the [`Estimator`] enum (serialised into the train stage's key) and
//! its registration — each estimator's name, the tasks it fits and how it is read from TOML (`parse.rs`).

use serde::{Deserialize, Serialize};

use super::parse;
use super::tree;
use crate::error::Result;
use crate::vocab::Task;
use crate::vocab::reader::TableReader;

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

/// One registered estimator: its name (`estimator = "…"` and its serde tag), the tasks it fits and the
/// function that reads its hyperparameters.
pub struct Registration {
    pub name: &'static str,
    pub tasks: &'static [Task],
    pub parse: fn(&mut TableReader<'_, '_>, Task) -> Result<Estimator>,
}

/// `estimators! { Variant = "name", [Task, …], parse_function; … }`: [`Estimator::REGISTERED`] and
/// [`Estimator::name`] (an exhaustive match, so a variant without its line does not compile).
macro_rules! estimators {
    ($( $variant:ident = $name:literal, [$( $task:ident ),+], $parse:path; )*) => {
        impl Estimator {
            /// Every registered estimator, in the order error messages list them.
            pub const REGISTERED: &[Registration] = &[
                $( Registration { name: $name, tasks: &[$( Task::$task ),+], parse: $parse }, )*
            ];

            /// The registered name: `estimator = "…"`.
            pub fn name(&self) -> &'static str {
                match self {
                    $( Estimator::$variant { .. } => $name, )*
                }
            }
        }
    };
}

// The estimator registry. Adding an estimator: its variant in [`Estimator`] (its hyperparameters), its
// reader in `parse.rs`, its fit in `fit.rs`, and one line here. `tests` in `parse.rs` check that every
// line's reader makes that line's variant.
estimators! {
    LinearRegression = "linear_regression", [Regression], parse::linear_regression;
    Ridge = "ridge", [Regression], parse::ridge;
    Lasso = "lasso", [Regression], parse::lasso;
    ElasticNet = "elastic_net", [Regression], parse::elastic_net;
    LogisticRegression = "logistic_regression", [Classification], parse::logistic_regression;
    DecisionTree = "decision_tree", [Regression, Classification], parse::decision_tree;
    RandomForest = "random_forest", [Regression, Classification], parse::random_forest;
    GradientBoosting = "gradient_boosting", [Regression, Classification], parse::gradient_boosting;
    Stacking = "stacking", [Regression, Classification], parse::stacking;
    Voting = "voting", [Regression, Classification], parse::voting;
    KMeans = "k_means", [Clustering], parse::k_means;
}

impl Estimator {
    /// The estimators a task may name, in registration order.
    pub fn names_for(task: Task) -> Vec<&'static str> {
        Estimator::REGISTERED
            .iter()
            .filter(|r| r.tasks.contains(&task))
            .map(|r| r.name)
            .collect()
    }

    /// Ensembles combine other estimators.
    pub fn is_ensemble(&self) -> bool {
        matches!(self, Estimator::Stacking { .. } | Estimator::Voting { .. })
    }

    /// How a tree estimator grows its trees, on `n_features` features (a forest's `max_features`
    /// resolved against them). Boosting always grows regression trees with squared error (scikit-learn
    /// since 1.9; `friedman_mse` ranks splits the same but rounds differently).
    pub(super) fn tree_params(&self, n_features: usize) -> Option<tree::TreeParams> {
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
