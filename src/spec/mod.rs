//! The pipeline file: TOML schema with spans → a checked [`Pipeline`] with a canonical JSON form.
//!
//! The canonical form (serde JSON of [`Pipeline`], fields in declaration order, maps sorted, floats in
//! shortest round-trip form) is what is hashed and stored; locations are kept beside it for errors only.

pub mod reader;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::de::DeValue;

use crate::error::{Error, Location, Result};
use crate::frame::{ColumnType, ReadOptions};
use crate::models::Estimator;
use crate::stages::{Group, Operator};
pub use reader::At;
use reader::{Source, TableReader, parse_document};

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
pub struct Pipeline {
    pub name: String,
    pub seed: u64,
    pub target: String,
    pub task: Task,
    pub gather: Gather,
    pub split: Split,
    pub analyse: Option<Analyse>,
    pub steps: Vec<Step>,
    pub train: Train,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cv: Option<CrossValidation>,
    pub evaluate: Evaluate,
    /// Checks on the metrics of a run. They judge a run; they are not an input of it, so they are
    /// stored with the pipeline but left out of the run id.
    #[serde(default)]
    pub gates: Vec<Gate>,
    /// Where the pipeline was read from and where each name was written; not hashed, not stored.
    #[serde(skip)]
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Origin {
    pub file: Option<PathBuf>,
    pub target: Option<Location>,
    pub id_column: Option<Location>,
    pub split_column: Option<Location>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gather {
    /// The data file as written in the pipeline (relative to the pipeline file), or a database
    /// (`sqlite:PATH`, `postgres://…`, password removed). Not part of any key: the snapshot's content id is.
    pub source: String,
    pub read: ReadOptions,
    pub id_column: Option<String>,
    /// What to read when the source is a database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<crate::sources::Selection>,
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub name: String,
    pub group: Group,
    pub columns: Columns,
    pub exclude: Vec<String>,
    #[serde(flatten)]
    pub operator: Operator,
    #[serde(skip)]
    pub locations: StepLocations,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct StepLocations {
    pub step: Option<Location>,
    pub columns: BTreeMap<String, Location>,
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Train {
    #[serde(flatten)]
    pub estimator: Estimator,
    pub target_transform: TargetTransform,
    /// A grid search over the estimator's parameters (`[grid]`), scored by `[cv]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<Search>,
}

/// Every combination of a `[grid]`'s values, as estimators, in scikit-learn's `ParameterGrid` order
/// (parameters sorted by name, the last varying fastest).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Search {
    pub params: Vec<String>,
    pub candidates: Vec<Estimator>,
}

/// `[cv]`: k-fold cross-validation on the train rows. Each fold refits every step and the estimator on
/// the other folds and scores the held-out one, as scikit-learn's `cross_val_score` does with a
/// `Pipeline`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrossValidation {
    pub folds: u64,
    pub shuffle: bool,
    pub stratify: bool,
    pub metric: Metric,
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

/// A check on one test metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gate {
    pub metric: Metric,
    pub rule: GateRule,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateRule {
    /// The metric must be at most this.
    Max(f64),
    /// The metric must be at least this.
    Min(f64),
    /// The metric may be worse than the baseline's by at most this fraction of the baseline.
    MaxRegression(f64),
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluate {
    pub metrics: Vec<Metric>,
}

impl Pipeline {
    /// Reads and checks a pipeline file.
    pub fn load(path: &Path) -> Result<Pipeline> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("read pipeline file", path, e))?;
        Pipeline::parse(path, &text)
    }

    /// Checks pipeline text; `path` is used for messages and to resolve the data source.
    pub fn parse(path: &Path, text: &str) -> Result<Pipeline> {
        let src = Source {
            path: path.to_path_buf(),
            text,
        };
        let doc = parse_document(&src)?;
        let mut root = TableReader::new(&src, doc.get_ref(), 0..0, "");
        let p = parse_root(&mut root)?;
        root.finish(&[
            "pipeline",
            "gather",
            "split",
            "analyse",
            "impute",
            "encode",
            "transform",
            "select",
            "train",
            "grid",
            "cv",
            "evaluate",
            "gate",
        ])?;
        Ok(p)
    }

    /// The canonical JSON that is stored with a run (includes the source path).
    pub fn to_canonical_json(&self) -> Vec<u8> {
        // The pipeline is stored; a password written into a database URL must not be.
        let mut copy = self.clone();
        copy.gather.source = self.source_name();
        // infallible: the pipeline holds only strings, finite floats and integers.
        serde_json::to_vec(&copy).unwrap_or_default()
    }

    /// The source as it may be shown and stored: a database URL without its password.
    pub fn source_name(&self) -> String {
        if self.gather.database.is_some() {
            crate::database::strip_password(&self.gather.source)
        } else {
            self.gather.source.clone()
        }
    }

    /// The database to read, with a relative SQLite path resolved against the pipeline file's folder.
    pub fn source_database(&self) -> Result<Option<crate::database::Database>> {
        if self.gather.database.is_none() {
            return Ok(None);
        }
        Ok(match crate::database::Database::parse(&self.gather.source)? {
            Some(crate::database::Database::Sqlite(p)) if p.is_relative() => {
                Some(crate::database::Database::Sqlite(self.folder().join(p)))
            }
            other => other,
        })
    }

    /// The bytes that enter the run id: the canonical JSON without the data file's path, so that a moved
    /// file with the same content gives the same run.
    pub fn hashed_bytes(&self) -> Vec<u8> {
        let mut copy = self.clone();
        copy.gather.source = String::new();
        copy.gates = Vec::new();
        copy.to_canonical_json()
    }

    pub fn from_canonical_json(bytes: &[u8]) -> Result<Pipeline> {
        serde_json::from_slice(bytes).map_err(|e| Error::internal(format!("stored pipeline does not parse: {e}")))
    }

    /// The data file, resolved against the pipeline file's folder.
    pub fn source_path(&self) -> PathBuf {
        self.folder().join(&self.gather.source)
    }

    /// The pipeline file's folder: relative paths in it start there.
    fn folder(&self) -> &Path {
        self.origin
            .file
            .as_deref()
            .and_then(Path::parent)
            .unwrap_or_else(|| Path::new("."))
    }

    /// Columns that no step may select: the target and the id column.
    pub fn protected_columns(&self) -> Vec<&str> {
        let mut out = vec![self.target.as_str()];
        if let Some(id) = &self.gather.id_column {
            out.push(id);
        }
        out
    }
}

fn parse_root(root: &mut TableReader<'_, '_>) -> Result<Pipeline> {
    let src = root.source();
    let mut head = root.table("pipeline")?.ok_or_else(|| {
        Error::spec(format!("{} has no [pipeline] table", src.path().display()), None)
            .with_hint("start the file with [pipeline] and name, seed, target, task")
    })?;
    let name = head.req_str("name", "the pipeline's name")?;
    check_name(&name, "pipeline name")?;
    let seed = head
        .u64("seed")?
        .ok_or_else(|| head.missing("seed", "the master seed, a non-negative integer"))?;
    let target = head.str("target")?;
    let task = match head
        .choice("task", &["regression", "classification", "clustering"])?
        .map(|t| t.value)
        .as_deref()
    {
        Some("regression") => Task::Regression,
        Some("classification") => Task::Classification,
        Some(_) => Task::Clustering,
        None => return Err(head.missing("task", "\"regression\", \"classification\" or \"clustering\"")),
    };
    // Clustering learns without a target; a `target` there names a label column kept out of the features.
    let (target, target_location) = match target {
        Some(t) => (t.value, Some(t.location)),
        None if task == Task::Clustering => (String::new(), None),
        None => return Err(head.missing("target", "the column to predict")),
    };
    head.finish(&["name", "seed", "target", "task"])?;

    let mut g = root.table("gather")?.ok_or_else(|| {
        Error::spec(format!("{} has no [gather] table", src.path().display()), None)
            .with_hint("add [gather] with source = \"path/to/data.csv\"")
    })?;
    let (gather, id_loc) = parse_gather(&mut g)?;
    let mut known = vec![
        "source",
        "format",
        "delimiter",
        "na_values",
        "id_column",
        "dtypes",
        "columns",
    ];
    known.extend(crate::sources::Selection::KEYS);
    g.finish(&known)?;

    let (split, split_loc) = match root.table("split")? {
        Some(mut s) => {
            let out = parse_split(&mut s)?;
            s.finish(&[
                "method",
                "test_fraction",
                "stratify",
                "column",
                "test_values",
                "test_from",
            ])?;
            out
        }
        None => (
            Split::Random {
                test_fraction: 0.25,
                stratify: None,
            },
            None,
        ),
    };

    let analyse = match root.table("analyse")? {
        Some(mut a) => {
            let top = a
                .u64("top_categories")?
                .map_or(5, |v| usize::try_from(v.value).unwrap_or(usize::MAX));
            let fraction = |a: &mut TableReader<'_, '_>, key: &str, default: f64| -> Result<f64> {
                match a.f64(key)? {
                    None => Ok(default),
                    Some(v) if (0.0..=1.0).contains(&v.value) => Ok(v.value),
                    Some(v) => Err(Error::spec(
                        format!("`{key}` must be between 0 and 1"),
                        Some(v.location),
                    )),
                }
            };
            let rare_tolerance = fraction(&mut a, "rare_tolerance", 0.01)?;
            let correlation_threshold = fraction(&mut a, "correlation_threshold", 0.8)?;
            a.finish(&["top_categories", "rare_tolerance", "correlation_threshold"])?;
            Some(Analyse {
                top_categories: top,
                rare_tolerance,
                correlation_threshold,
            })
        }
        None => None,
    };

    let mut steps = Vec::new();
    for group in Group::ALL {
        for mut t in root.table_list(group.name())? {
            steps.push(parse_step(&mut t, group, task)?);
        }
    }
    let mut seen: BTreeMap<String, Option<Location>> = BTreeMap::new();
    for s in &steps {
        if let Some(first) = seen.insert(s.name.clone(), s.locations.step.clone()) {
            let first = first.map(|l| format!(" (first at {l})")).unwrap_or_default();
            return Err(Error::spec(
                format!("two steps are named \"{}\"{first}", s.name),
                s.locations.step.clone(),
            )
            .with_hint("give each step a unique `name = \"…\"`"));
        }
    }

    let mut t = root.table("train")?.ok_or_else(|| {
        Error::spec(format!("{} has no [train] table", src.path().display()), None)
            .with_hint("add [train] with estimator = \"ridge\" (or \"linear_regression\")")
    })?;
    let estimator = crate::models::parse_estimator(&mut t, task)?;
    let transform = t.choice("target_transform", &["none", "log", "log1p", "box_cox", "yeo_johnson"])?;
    if let Some(v) = transform
        .as_ref()
        .filter(|v| v.value != "none" && task != Task::Regression)
    {
        let why = if task == Task::Classification {
            "a classifier's target is its classes"
        } else {
            "a clustering has no target to predict"
        };
        return Err(Error::spec(
            format!("target_transform = \"{}\" transforms a numeric target; {why}", v.value),
            Some(v.location.clone()),
        )
        .with_hint("remove target_transform from [train]"));
    }
    let target_transform = match transform.map(|v| v.value) {
        Some(v) if v == "log" => TargetTransform::Log,
        Some(v) if v == "log1p" => TargetTransform::Log1p,
        Some(v) if v == "box_cox" => TargetTransform::BoxCox,
        Some(v) if v == "yeo_johnson" => TargetTransform::YeoJohnson,
        _ => TargetTransform::None,
    };
    let mut known = vec!["estimator", "target_transform"];
    known.extend(estimator.param_names());
    t.finish(&known)?;
    let search = parse_grid(root, &mut t, &estimator, task)?;

    let metrics = match root.table("evaluate")? {
        Some(mut e) => {
            let list = e.str_list("metrics")?.unwrap_or_default();
            let mut metrics = Vec::new();
            for m in list {
                let metric = Metric::parse(&m, task)?;
                if !metrics.contains(&metric) {
                    metrics.push(metric);
                }
            }
            e.finish(&["metrics"])?;
            if metrics.is_empty() {
                Metric::defaults(task)
            } else {
                metrics
            }
        }
        None => Metric::defaults(task),
    };
    let cv = parse_cv(root, task, &metrics)?;
    if let (Some(search), None) = (&search, &cv) {
        return Err(Error::spec(
            format!(
                "[grid] varies {} but there is no [cv] to score the candidates",
                search.params.join(", ")
            ),
            None,
        )
        .with_hint("add [cv] with folds = 5 (and metric = \"…\" to choose by)"));
    }

    Ok(Pipeline {
        name: name.value,
        seed: seed.value,
        target,
        task,
        gather,
        split,
        analyse,
        steps,
        train: Train {
            estimator,
            target_transform,
            search,
        },
        cv,
        gates: parse_gates(root, &metrics, task)?,
        evaluate: Evaluate { metrics },
        origin: Origin {
            file: Some(src.path().to_path_buf()),
            target: target_location,
            id_column: id_loc,
            split_column: split_loc,
        },
    })
}

/// Grid searches stop here: each candidate is a full cross-validation.
const MAX_CANDIDATES: usize = 1000;

fn parse_grid(
    root: &mut TableReader<'_, '_>,
    train: &mut TableReader<'_, '_>,
    base: &Estimator,
    task: Task,
) -> Result<Option<Search>> {
    let Some(mut grid) = root.table("grid")? else {
        return Ok(None);
    };
    if base.is_ensemble() {
        return Err(Error::spec(
            format!(
                "[grid] searches one estimator's parameters; {} combines several",
                base.name()
            ),
            Some(grid.location()),
        )
        .with_hint("search each base estimator on its own, then fix their parameters in the ensemble"));
    }
    let mut entries = grid.entries();
    entries.sort_by(|a, b| a.0.value.cmp(&b.0.value));
    let known = base.param_names();
    let mut axes = Vec::new();
    for (key, value) in &entries {
        if !known.contains(&key.value.as_str()) {
            let mut err = Error::spec(
                format!(
                    "[grid] varies `{}`, which {} does not take (it takes: {})",
                    key.value,
                    base.name(),
                    known.join(", ")
                ),
                Some(key.location.clone()),
            );
            if let Some(h) = crate::error::did_you_mean(&key.value, known.iter().copied()) {
                err = err.with_hint(h);
            }
            return Err(err);
        }
        let DeValue::Array(items) = value.get_ref() else {
            return Err(Error::spec(
                format!("[grid] `{}` must be an array of the values to try", key.value),
                Some(key.location.clone()),
            ));
        };
        if items.is_empty() {
            return Err(Error::spec(
                format!("[grid] `{}` has no values to try", key.value),
                Some(key.location.clone()),
            ));
        }
        axes.push((key.value.as_str(), items));
    }
    if axes.is_empty() {
        return Err(Error::spec("[grid] names no parameter to vary", Some(grid.location())));
    }
    let total: usize = axes.iter().map(|(_, items)| items.len()).product();
    if total > MAX_CANDIDATES {
        return Err(Error::spec(
            format!("[grid] makes {total} candidates; at most {MAX_CANDIDATES} are searched"),
            Some(grid.location()),
        )
        .with_hint("search fewer values, or search in stages"));
    }
    let mut candidates = Vec::with_capacity(total);
    for index in 0..total {
        // Mixed radix, the last axis fastest.
        let mut rest = index;
        let mut picks = vec![(axes[0].0, &axes[0].1[0]); axes.len()];
        for (slot, (name, items)) in axes.iter().enumerate().rev() {
            picks[slot] = (name, &items[rest % items.len()]);
            rest /= items.len();
        }
        let table = train.with_values(&picks);
        let mut reader = train.over(&table);
        candidates.push(crate::models::parse_estimator(&mut reader, task)?);
    }
    Ok(Some(Search {
        params: axes.iter().map(|(n, _)| (*n).to_string()).collect(),
        candidates,
    }))
}

fn parse_cv(root: &mut TableReader<'_, '_>, task: Task, metrics: &[Metric]) -> Result<Option<CrossValidation>> {
    let Some(mut t) = root.table("cv")? else {
        return Ok(None);
    };
    let folds = match t.u64("folds")? {
        None => 5,
        Some(k) if k.value >= 2 && k.value <= 100 => k.value,
        Some(k) => return Err(Error::spec("`folds` must be between 2 and 100", Some(k.location))),
    };
    let metric = match t.str("metric")? {
        Some(m) => Metric::parse(&m, task)?,
        None => metrics[0],
    };
    let stratify = t.bool("stratify")?.unwrap_or(task == Task::Classification);
    if stratify && task != Task::Classification {
        return Err(Error::spec(
            "`stratify` keeps class proportions; it needs task = \"classification\"",
            Some(t.location()),
        ));
    }
    let cv = CrossValidation {
        folds,
        shuffle: t.bool("shuffle")?.unwrap_or(true),
        stratify,
        metric,
    };
    t.finish(&["folds", "metric", "stratify", "shuffle"])?;
    Ok(Some(cv))
}

fn parse_gates(root: &mut TableReader<'_, '_>, computed: &[Metric], task: Task) -> Result<Vec<Gate>> {
    let mut gates = Vec::new();
    for mut t in root.table_list("gate")? {
        let name = t.req_str("metric", "the test metric to check, one that [evaluate] computes")?;
        let metric = Metric::parse(&name, task)?;
        if !computed.contains(&metric) {
            return Err(Error::spec(
                format!("gate on {} but [evaluate] does not compute it", metric.name()),
                Some(name.location),
            )
            .with_hint(format!("add \"{}\" to [evaluate] metrics", metric.name())));
        }
        let rules = [
            ("max", t.f64("max")?),
            ("min", t.f64("min")?),
            ("max_regression", t.f64("max_regression")?),
        ];
        let given: Vec<_> = rules.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))).collect();
        let rule = match given.as_slice() {
            [("max", v)] => GateRule::Max(v.value),
            [("min", v)] => GateRule::Min(v.value),
            [("max_regression", v)] if v.value >= 0.0 => GateRule::MaxRegression(v.value),
            [("max_regression", v)] => {
                return Err(Error::spec(
                    "`max_regression` is a fraction of the baseline and must be ≥ 0 (0.02 = 2 % worse at most)",
                    Some(v.location.clone()),
                ));
            }
            _ => {
                return Err(Error::spec(
                    format!("{} needs exactly one of `max`, `min`, `max_regression`", t.name),
                    Some(t.location()),
                )
                .with_hint("write one rule per [[gate]]; add another [[gate]] for another rule"));
            }
        };
        t.finish(&["metric", "max", "min", "max_regression"])?;
        gates.push(Gate { metric, rule });
    }
    Ok(gates)
}

/// Names become parts of stage names and messages: keep them to a safe alphabet (no `/`, no `..`).
fn check_name(name: &At<String>, what: &str) -> Result<()> {
    let ok = !name.value.is_empty()
        && name.value.len() <= 64
        && name
            .value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(Error::spec(
            format!(
                "{what} \"{}\" may hold only letters, digits, '-' and '_' (1 to 64 characters)",
                name.value
            ),
            Some(name.location.clone()),
        ))
    }
}

fn parse_gather(g: &mut TableReader<'_, '_>) -> Result<(Gather, Option<Location>)> {
    let source = g.req_str("source", "the data file, relative to the pipeline file")?;
    let parsed = crate::database::Database::parse(&source.value).map_err(|e| {
        let err = Error::spec(e.to_string(), Some(source.location.clone()));
        match e.hint() {
            Some(hint) => err.with_hint(hint),
            None => err,
        }
    })?;
    let file = match &parsed {
        None => Some(Path::new(&source.value)),
        Some(crate::database::Database::Sqlite(p)) => Some(p.as_path()),
        Some(_) => None,
    };
    if let Some(file) = file {
        check_inside_project(g.source().path(), file).map_err(|message| {
            Error::spec(message, Some(source.location.clone())).with_hint(
                "move or link the data into the project (e.g. data-snapshots/) and name it relative to the pipeline file",
            )
        })?;
    }
    let database = if parsed.is_some() {
        Some(crate::sources::Selection::parse(g)?)
    } else {
        for key in crate::sources::Selection::KEYS {
            if let Some(v) = g.raw(key) {
                let src = g.source();
                return Err(src.error(
                    v.span(),
                    format!("`{key}` is for database sources; `source` names a file"),
                ))
                .map_err(|e| e.with_hint("use source = \"sqlite:PATH\" or \"postgres://…\" to read a database"));
            }
        }
        None
    };
    if let Some(f) = g.choice("format", &["csv"])? {
        debug_assert_eq!(f.value, "csv");
    }
    let delimiter = match g.str("delimiter")? {
        None => b',',
        Some(d) if d.value.len() == 1 && d.value.is_ascii() => d.value.as_bytes()[0],
        Some(d) => {
            return Err(Error::spec(
                "`delimiter` must be a single ASCII character",
                Some(d.location),
            ));
        }
    };
    let na_values = g
        .str_list("na_values")?
        .unwrap_or_default()
        .into_iter()
        .map(|v| v.value)
        .collect();
    let id = g.str("id_column")?;
    let mut dtypes = BTreeMap::new();
    if let Some(mut t) = g.table("dtypes")? {
        let src = t.source();
        for (key, value) in t.entries() {
            let ty = match value.get_ref() {
                DeValue::String(s) if s == "numeric" => ColumnType::Numeric,
                DeValue::String(s) if s == "categorical" => ColumnType::Categorical,
                _ => {
                    return Err(src.error(
                        value.span(),
                        format!("dtype of \"{}\" must be \"numeric\" or \"categorical\"", key.value),
                    ));
                }
            };
            dtypes.insert(key.value, ty);
        }
    }
    let columns: Vec<String> = g
        .str_list("columns")?
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.value)
        .collect();
    let read = ReadOptions {
        delimiter,
        na_values,
        dtypes,
        columns,
    };
    let id_loc = id.as_ref().map(|i| i.location.clone());
    Ok((
        Gather {
            source: source.value,
            read,
            id_column: id.map(|i| i.value),
            database,
        },
        id_loc,
    ))
}

/// A pipeline reads only inside its project: the git work tree that holds the pipeline file; outside
/// git, the current folder when the pipeline lies in it (`mlpipe run pipelines/x.toml` from the
/// project's top), else the pipeline's folder. Checked on the written path with `.` and `..` folded (no
/// symlink is followed, so a link the project's owner made is theirs to make).
fn check_inside_project(pipeline: &Path, written: &Path) -> std::result::Result<(), String> {
    let folder = pipeline
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let folder = std::path::absolute(folder).map_err(|e| format!("cannot resolve {}: {e}", folder.display()))?;
    let folder = fold_dots(&folder);
    let current = std::path::absolute(".").map(|c| fold_dots(&c)).ok();
    let project = match folder.ancestors().find(|a| a.join(".git").exists()) {
        Some(work_tree) => work_tree.to_path_buf(),
        None => current
            .filter(|c| folder.starts_with(c))
            .unwrap_or_else(|| folder.clone()),
    };
    let target = fold_dots(&folder.join(written));
    if target.starts_with(&project) {
        Ok(())
    } else {
        Err(format!(
            "\"{}\" is outside the project {}: a pipeline may only read data inside the project that holds it",
            written.display(),
            project.display()
        ))
    }
}

/// `a/./b/../c` → `a/c`, without touching the file system.
fn fold_dots(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn split_value(r: &mut TableReader<'_, '_>, key: &str) -> Result<Option<SplitValue>> {
    let src = r.source();
    let name = r.name.clone();
    let Some(v) = r.raw(key) else { return Ok(None) };
    one_split_value(src, &name, key, v).map(Some)
}

fn one_split_value(src: &Source<'_>, table: &str, key: &str, v: &toml::Spanned<DeValue<'_>>) -> Result<SplitValue> {
    match v.get_ref() {
        DeValue::String(s) => Ok(SplitValue::Text(s.to_string())),
        DeValue::Integer(i) => i64::from_str_radix(&i.as_str().replace('_', ""), i.radix())
            .map(|x| SplitValue::Number(x as f64))
            .map_err(|_| src.error(v.span(), format!("`{key}` in {table} is out of range"))),
        DeValue::Float(f) => f
            .as_str()
            .replace('_', "")
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .map(SplitValue::Number)
            .ok_or_else(|| src.error(v.span(), format!("`{key}` in {table} must be a finite number"))),
        _ => Err(src.error(v.span(), format!("`{key}` in {table} must be a number or a string"))),
    }
}

fn parse_split(s: &mut TableReader<'_, '_>) -> Result<(Split, Option<Location>)> {
    let method = s.choice("method", &["random", "column", "time"])?;
    let method = method.map_or_else(|| "random".to_string(), |m| m.value);
    match method.as_str() {
        "random" => {
            let frac = s.f64("test_fraction")?;
            let test_fraction = match frac {
                None => 0.25,
                Some(f) if f.value > 0.0 && f.value < 1.0 => f.value,
                Some(f) => {
                    return Err(Error::spec(
                        "`test_fraction` must be between 0 and 1 (exclusive)",
                        Some(f.location),
                    ));
                }
            };
            let stratify = s.str("stratify")?;
            let loc = stratify.as_ref().map(|v| v.location.clone());
            Ok((
                Split::Random {
                    test_fraction,
                    stratify: stratify.map(|v| v.value),
                },
                loc,
            ))
        }
        "column" => {
            let column = s.req_str("column", "the column whose values choose the test rows")?;
            let src = s.source();
            let name = s.name.clone();
            let Some(raw) = s.raw("test_values") else {
                return Err(s.missing("test_values", "the values that mark test rows, e.g. [2010]"));
            };
            let DeValue::Array(items) = raw.get_ref() else {
                return Err(src.error(raw.span(), "`test_values` must be an array, e.g. [2010]"));
            };
            let values = items
                .iter()
                .map(|v| one_split_value(src, &name, "test_values", v))
                .collect::<Result<Vec<_>>>()?;
            if values.is_empty() {
                return Err(src.error(raw.span(), "`test_values` is empty: no row would be in the test split"));
            }
            Ok((
                Split::Column {
                    column: column.value,
                    test_values: values,
                },
                Some(column.location),
            ))
        }
        _ => {
            let column = s.req_str("column", "the time column")?;
            let from = split_value(s, "test_from")?
                .ok_or_else(|| s.missing("test_from", "the first time that belongs to the test split"))?;
            Ok((
                Split::Time {
                    column: column.value,
                    test_from: from,
                },
                Some(column.location),
            ))
        }
    }
}

fn parse_step(t: &mut TableReader<'_, '_>, group: Group, task: Task) -> Result<Step> {
    let op = t.req_str("operator", "which operator this step runs")?;
    let operator = Operator::parse(group, &op, t, task)?;
    let name = match t.str("name")? {
        Some(n) => {
            check_name(&n, "step name")?;
            format!("{}.{}", group.name(), n.value)
        }
        None => format!("{}.{}", group.name(), op.value),
    };
    let mut locations = StepLocations {
        step: Some(op.location.clone()),
        columns: BTreeMap::new(),
    };
    let columns = match t.raw("columns") {
        None => {
            return Err(t.missing("columns", "\"numeric\", \"categorical\", \"all\" or a list of names"));
        }
        Some(v) => match v.get_ref() {
            DeValue::String(s) => match s.as_ref() {
                "numeric" => Columns::Kind(ColumnKind::Numeric),
                "categorical" => Columns::Kind(ColumnKind::Categorical),
                "all" => Columns::Kind(ColumnKind::All),
                other => {
                    return Err(t.source().error(
                        v.span(),
                        format!("`columns` must be \"numeric\", \"categorical\", \"all\" or a list of names, found \"{other}\""),
                    )
                    .with_hint(format!("to select one column write columns = [\"{other}\"]")));
                }
            },
            DeValue::Array(_) => {
                let names = t.str_list("columns")?.unwrap_or_default();
                if names.is_empty() {
                    return Err(Error::spec("`columns` is an empty list", Some(t.location())));
                }
                let mut out = Vec::new();
                for n in names {
                    if out.contains(&n.value) {
                        return Err(Error::spec(
                            format!("column \"{}\" is listed twice", n.value),
                            Some(n.location),
                        ));
                    }
                    locations.columns.insert(n.value.clone(), n.location);
                    out.push(n.value);
                }
                Columns::Names(out)
            }
            _ => {
                return Err(t
                    .source()
                    .error(v.span(), "`columns` must be a string or a list of column names"));
            }
        },
    };
    let exclude = t.str_list("exclude")?.unwrap_or_default();
    let exclude = exclude
        .into_iter()
        .map(|e| {
            locations.columns.insert(e.value.clone(), e.location);
            e.value
        })
        .collect();
    let mut known = vec!["name", "operator", "columns", "exclude"];
    known.extend(operator.param_names());
    t.finish(&known)?;
    Ok(Step {
        name,
        group,
        columns,
        exclude,
        operator,
        locations,
    })
}

#[cfg(test)]
mod tests;
