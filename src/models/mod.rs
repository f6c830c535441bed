//! Estimators: checked hyperparameters, `fit` on the train design matrix, pure `predict`.
//!
//! - `linear_regression`: ordinary least squares through linfa-linear (QR least squares, pure Rust).
//! - `ridge`: scikit-learn's `Ridge` objective ‖y − Xw − b‖² + α‖w‖² (penalty not divided by n, intercept
//!   not penalised), solved in closed form: centre X and y, Cholesky-factor `XᵀX` + αI. linfa's only ridge
//!   is elastic net with `l1_ratio` = 0, solved by coordinate descent to tol 1e-4 — too loose to match
//!   scikit-learn's closed form, so this one is ours (`docs/models.md`).
//!
//! Coefficients are stored under the feature names they belong to.
//!
//! Files by concern: `estimator.rs` (hyperparameters and the estimator registry), `parse.rs` (reading
//! them from TOML), `fit.rs` (estimator + train design → model), `model.rs` (the stored fitted models and
//! their predictions); the algorithms in `linear`, `logistic`, `tree`, `ensemble`, `kmeans`, `gram`,
//! `folds`; `classes` for a classification target's labels.

pub mod classes;
pub mod ensemble;
mod estimator;
mod fit;
pub mod folds;
pub mod gram;
pub mod kmeans;
mod linear;
pub mod logistic;
mod model;
mod parse;
pub mod tree;

pub use estimator::{ClassCriterion, Estimator, MaxFeatures, Member, Registration};
pub use fit::{FitTarget, design_columns, fit, fit_design, fit_linear};
pub use model::{
    ClassScores, ClassifierModel, ClusterModel, EnsembleModel, LinearModel, Model, Output, TreeModel, argmax_rows,
};
pub use parse::parse_estimator;
