//! The pipeline file's shared vocabulary: the words stages, models, metrics and sources are configured
//! with (task, metric, column selection, split and analyse settings, target transform) and the TOML
//! reader that reports a bad value at its line. A leaf below all of them, so no operator imports the
//! parser (`spec`), which assembles these into a pipeline.

pub mod reader;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use reader::At;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    Regression,
    Classification,
    Clustering,
}

impl Task {
    pub fn name(self) -> &'static str {
        match self {
            Task::Regression => "regression",
            Task::Classification => "classification",
            Task::Clustering => "clustering",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Split {
    /// A seeded shuffle; `test_fraction` of the rows (rounded up) go to test. With `stratify`, each value
    /// of that column is split on its own so both sides keep its proportions.
    Random {
        test_fraction: f64,
        stratify: Option<String>,
    },
    /// Rows whose `column` holds one of `test_values` are the test split.
    Column {
        column: String,
        test_values: Vec<SplitValue>,
    },
    /// Rows whose `column` is at or after `test_from` are the test split (numbers, or ISO-8601 text).
    Time { column: String, test_from: SplitValue },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SplitValue {
    Number(f64),
    Text(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analyse {
    pub top_categories: usize,
    /// A label rarer than this share of present train values counts as rare.
    pub rare_tolerance: f64,
    /// Pairs of numeric columns with |Pearson r| above this are listed.
    pub correlation_threshold: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Columns {
    /// `"numeric"`, `"categorical"` or `"all"`.
    Kind(ColumnKind),
    Names(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnKind {
    Numeric,
    Categorical,
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetTransform {
    None,
    Log,
    Log1p,
    /// λ fitted by maximum likelihood on the train target.
    BoxCox,
    YeoJohnson,
}

/// A scalar metric of predictions, named as scikit-learn's scorers name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    Rmse,
    Mae,
    R2,
    Mape,
    Rmsle,
    Accuracy,
    BalancedAccuracy,
    /// Binary (the second class is positive).
    Precision,
    Recall,
    F1,
    PrecisionMacro,
    RecallMacro,
    F1Macro,
    PrecisionWeighted,
    RecallWeighted,
    F1Weighted,
    /// Binary ROC AUC (the second class is positive).
    RocAuc,
    /// One-vs-rest ROC AUC, unweighted mean over classes.
    RocAucOvr,
    /// One-vs-rest ROC AUC, weighted by class prevalence.
    RocAucOvrWeighted,
    LogLoss,
    /// Summed squared distance of the rows to their cluster's centre.
    Inertia,
    /// Mean silhouette coefficient (Euclidean).
    Silhouette,
}

impl Metric {
    pub const REGRESSION: [Metric; 5] = [Metric::Rmse, Metric::Mae, Metric::R2, Metric::Mape, Metric::Rmsle];
    pub const CLASSIFICATION: [Metric; 15] = [
        Metric::Accuracy,
        Metric::BalancedAccuracy,
        Metric::Precision,
        Metric::Recall,
        Metric::F1,
        Metric::PrecisionMacro,
        Metric::RecallMacro,
        Metric::F1Macro,
        Metric::PrecisionWeighted,
        Metric::RecallWeighted,
        Metric::F1Weighted,
        Metric::RocAuc,
        Metric::RocAucOvr,
        Metric::RocAucOvrWeighted,
        Metric::LogLoss,
    ];

    pub const CLUSTERING: [Metric; 2] = [Metric::Inertia, Metric::Silhouette];

    /// Whether a larger value is better (R², accuracy, …) or worse (errors, log loss, inertia).
    pub fn higher_is_better(self) -> bool {
        !matches!(
            self,
            Metric::Rmse | Metric::Mae | Metric::Mape | Metric::Rmsle | Metric::LogLoss | Metric::Inertia
        )
    }

    pub fn task(self) -> Task {
        if Metric::REGRESSION.contains(&self) {
            Task::Regression
        } else if Metric::CLUSTERING.contains(&self) {
            Task::Clustering
        } else {
            Task::Classification
        }
    }

    /// Metrics defined for two classes only.
    pub fn binary_only(self) -> bool {
        matches!(self, Metric::Precision | Metric::Recall | Metric::F1 | Metric::RocAuc)
    }

    /// The metrics `[evaluate]` computes when it names none.
    pub fn defaults(task: Task) -> Vec<Metric> {
        match task {
            Task::Regression => vec![Metric::Rmse, Metric::Mae, Metric::R2],
            Task::Classification => vec![
                Metric::Accuracy,
                Metric::BalancedAccuracy,
                Metric::F1Macro,
                Metric::LogLoss,
            ],
            Task::Clustering => vec![Metric::Inertia, Metric::Silhouette],
        }
    }

    fn all() -> impl Iterator<Item = Metric> {
        Metric::REGRESSION
            .into_iter()
            .chain(Metric::CLASSIFICATION)
            .chain(Metric::CLUSTERING)
    }

    /// A metric's name, checked against the pipeline's task.
    pub fn parse(text: &At<String>, task: Task) -> Result<Metric> {
        let fits: Vec<&str> = Metric::all().filter(|m| m.task() == task).map(Metric::name).collect();
        match Metric::all().find(|m| m.name() == text.value) {
            Some(m) if m.task() == task => Ok(m),
            Some(m) => Err(Error::spec(
                format!(
                    "metric \"{}\" is a {} metric, but the task is {}",
                    m.name(),
                    m.task().name(),
                    task.name()
                ),
                Some(text.location.clone()),
            )
            .with_hint(format!("use one of: {}", fits.join(", ")))),
            None => {
                let mut err = Error::spec(
                    format!(
                        "unknown metric \"{}\" (known for {}: {})",
                        text.value,
                        task.name(),
                        fits.join(", ")
                    ),
                    Some(text.location.clone()),
                );
                if let Some(h) = crate::error::did_you_mean(&text.value, fits.iter().copied()) {
                    err = err.with_hint(h);
                }
                Err(err)
            }
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Metric::Rmse => "rmse",
            Metric::Mae => "mae",
            Metric::R2 => "r2",
            Metric::Mape => "mape",
            Metric::Rmsle => "rmsle",
            Metric::Accuracy => "accuracy",
            Metric::BalancedAccuracy => "balanced_accuracy",
            Metric::Precision => "precision",
            Metric::Recall => "recall",
            Metric::F1 => "f1",
            Metric::PrecisionMacro => "precision_macro",
            Metric::RecallMacro => "recall_macro",
            Metric::F1Macro => "f1_macro",
            Metric::PrecisionWeighted => "precision_weighted",
            Metric::RecallWeighted => "recall_weighted",
            Metric::F1Weighted => "f1_weighted",
            Metric::RocAuc => "roc_auc",
            Metric::RocAucOvr => "roc_auc_ovr",
            Metric::RocAucOvrWeighted => "roc_auc_ovr_weighted",
            Metric::LogLoss => "log_loss",
            Metric::Inertia => "inertia",
            Metric::Silhouette => "silhouette",
        }
    }
}
