//! The pipeline file: TOML schema with spans → a checked [`Pipeline`] with a canonical JSON form.
//!
//! The canonical form (serde JSON of [`Pipeline`], fields in declaration order, maps sorted, floats in
//! shortest round-trip form) is what is hashed and stored; locations are kept beside it for errors only.

mod sections;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::de::DeValue;

use crate::error::{Error, Location, Result};
use crate::frame::ReadOptions;
use crate::models::Estimator;
use crate::sources::FileFormat;
use crate::stages::{Group, Operator};
pub use crate::stages::{Step, StepLocations};
pub use crate::vocab::reader::At;
use crate::vocab::reader::{Source, TableReader, parse_document};
pub use crate::vocab::{Analyse, ColumnKind, Columns, Metric, Split, SplitValue, TargetTransform, Task};
use sections::{check_name, parse_cv, parse_gates, parse_gather, parse_grid, parse_split};

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
    /// How the data file is written (CSV unless `format` or the file's extension says otherwise); a
    /// Parquet, IPC or NDJSON file's snapshot is its canonical CSV. Left out of the pipeline's JSON for
    /// CSV, so that older pipelines keep their hash.
    #[serde(default, skip_serializing_if = "FileFormat::is_csv")]
    pub format: FileFormat,
    pub read: ReadOptions,
    pub id_column: Option<String>,
    /// What to read when the source is a database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<crate::sources::Selection>,
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

    /// The bytes that enter the run id: the canonical JSON without the data file's path and format, so
    /// that a moved file, or a Parquet copy of a CSV file, with the same rows gives the same run.
    pub fn hashed_bytes(&self) -> Vec<u8> {
        let mut copy = self.clone();
        copy.gather.source = String::new();
        copy.gather.format = FileFormat::Csv;
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
        Error::spec(format!("{} has no [train] table", src.path().display()), None).with_hint(format!(
            "add [train] with an estimator for {} (estimator = one of {})",
            task.name(),
            crate::vocab::reader::quoted(&Estimator::names_for(task))
        ))
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
    let columns = match (t.raw("columns"), &operator) {
        // An expression reads the columns its features name.
        (None, Operator::Expression(p)) => {
            for (name, at) in &p.locations {
                locations.columns.entry(name.clone()).or_insert_with(|| at.clone());
            }
            Columns::Names(p.inputs())
        }
        (Some(v), Operator::Expression(_)) => {
            return Err(t
                .source()
                .error(
                    v.span(),
                    "`columns` is not used by expression: it reads the columns its features name",
                )
                .with_hint("remove `columns`"));
        }
        (v, _) => match v {
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
        },
    };
    let exclude = t.str_list("exclude")?.unwrap_or_default();
    let exclude: Vec<String> = exclude
        .into_iter()
        .map(|e| {
            locations.columns.insert(e.value.clone(), e.location);
            e.value
        })
        .collect();
    if matches!(operator, Operator::Expression(_)) && !exclude.is_empty() {
        return Err(Error::spec(
            "`exclude` is not used by expression: it reads the columns its features name",
            t.raw("exclude").map(|v| t.source().location(v.span())),
        )
        .with_hint("remove `exclude`"));
    }
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
