//! `mlpipe diff A B`: what changed between two runs — config, data, code, seeds, version, stage
//! outputs and metrics.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::Serialize;
use serde_json::Value;

use crate::digest::Id;
use crate::error::Result;
use crate::frame::{ColumnData, Frame, read_csv};
use crate::provenance::RunRecord;
use crate::spec::Pipeline;
use crate::store::{LocalStore, Store};

pub struct DiffArgs {
    pub a: String,
    pub b: String,
    pub store: PathBuf,
    /// For snapshots: the key column that matches rows.
    pub key: Option<String>,
    /// For snapshots: missing-value markers.
    pub na: Vec<String>,
}

pub enum AnyDiff {
    Runs(Box<DiffReport>),
    Snapshots(DataDiff),
}

#[derive(Debug, Serialize)]
pub struct Change<T> {
    pub old: T,
    pub new: T,
}

#[derive(Debug, Serialize)]
pub struct ConfigChange {
    pub path: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct CellChange {
    pub row: String,
    pub column: String,
    pub old: String,
    pub new: String,
}

#[derive(Debug, Serialize)]
pub struct DataDiff {
    pub old: Id,
    pub new: Id,
    pub columns_added: Vec<String>,
    pub columns_removed: Vec<String>,
    /// How rows were matched: by the id column, or by position.
    pub rows_matched_by: String,
    pub rows_added: usize,
    pub rows_removed: usize,
    /// Rows present on both sides with at least one changed cell.
    pub rows_changed: usize,
    pub cells_changed: usize,
    pub examples: Vec<CellChange>,
}

#[derive(Debug, Serialize)]
pub struct StageDiff {
    pub name: String,
    /// "same", "different", "only in a", "only in b".
    pub status: String,
    pub a: Option<Id>,
    pub b: Option<Id>,
}

#[derive(Debug, Serialize)]
pub struct MetricDelta {
    pub name: String,
    pub a: Option<f64>,
    pub b: Option<f64>,
    pub delta: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct DiffReport {
    pub a: Id,
    pub b: Id,
    pub config: Vec<ConfigChange>,
    pub data: Option<DataDiff>,
    pub code: Option<Change<String>>,
    pub seed: Option<Change<u64>>,
    pub version: Option<Change<String>>,
    pub stages: Vec<StageDiff>,
    /// The parameters a grid search chose, when either run searched and they differ.
    pub chosen: Option<Change<String>>,
    pub metrics: Vec<MetricDelta>,
}

impl DiffReport {
    /// Whether anything at all differs (the exit code says so).
    pub fn differs(&self) -> bool {
        !self.config.is_empty()
            || self.data.is_some()
            || self.code.is_some()
            || self.seed.is_some()
            || self.version.is_some()
            || self.stages.iter().any(|s| s.status != "same")
    }
}

/// The parameters a run's grid search chose ("alpha = 10.0"), if it searched.
fn chosen(store: &dyn Store, run: &RunRecord) -> Result<Option<String>> {
    let Some(stage) = run.stages.iter().find(|s| s.kind == "train") else {
        return Ok(None);
    };
    let out = crate::fitted::StageOutput::from_bytes(&store.get(&stage.output)?, &stage.output)?;
    let crate::fitted::StageState::Train(train) = out.state else {
        return Ok(None);
    };
    Ok(train.cv.and_then(|cv| {
        let params = &cv.candidates.get(cv.chosen)?.params;
        (!params.is_empty()).then(|| {
            params
                .iter()
                .map(|(k, v)| format!("{k} = {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        })
    }))
}

/// Flattens JSON into `path = value` lines; arrays of objects with a "name" are keyed by that name.
fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&p, v, out);
            }
        }
        Value::Array(items)
            if items.iter().all(|i| i.get("name").and_then(Value::as_str).is_some()) && !items.is_empty() =>
        {
            for item in items {
                let name = item.get("name").and_then(Value::as_str).unwrap_or_default();
                flatten(&format!("{prefix}[{name}]"), item, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

fn config_changes(a: &Pipeline, b: &Pipeline) -> Vec<ConfigChange> {
    let mut fa = BTreeMap::new();
    let mut fb = BTreeMap::new();
    flatten("", &serde_json::to_value(a).unwrap_or(Value::Null), &mut fa);
    flatten("", &serde_json::to_value(b).unwrap_or(Value::Null), &mut fb);
    let keys: BTreeSet<&String> = fa.keys().chain(fb.keys()).collect();
    keys.into_iter()
        .filter(|k| fa.get(*k) != fb.get(*k))
        .map(|k| ConfigChange {
            path: k.clone(),
            old: fa.get(k).cloned(),
            new: fb.get(k).cloned(),
        })
        .collect()
}

fn cell(data: &ColumnData, r: usize) -> String {
    match data {
        ColumnData::Numeric(v) if v[r].is_nan() => "(missing)".into(),
        ColumnData::Numeric(v) => v[r].to_string(),
        ColumnData::Categorical(v) => v.get(r).map_or_else(|| "(missing)".into(), str::to_string),
    }
}

fn row_keys(frame: &Frame, id: Option<&str>) -> Vec<String> {
    match id.and_then(|c| frame.column(c)) {
        Some(col) => (0..frame.n_rows()).map(|r| cell(&col.data, r)).collect(),
        None => (0..frame.n_rows()).map(|r| format!("#{}", r + 1)).collect(),
    }
}

pub fn data_diff(old: (&Id, &Frame), new: (&Id, &Frame), id_column: Option<&str>) -> DataDiff {
    let (a, b) = (old.1, new.1);
    let names_a: BTreeSet<&str> = a.names().collect();
    let names_b: BTreeSet<&str> = b.names().collect();
    let by_id = id_column.filter(|c| names_a.contains(c) && names_b.contains(c));
    let ka = row_keys(a, by_id);
    let kb = row_keys(b, by_id);
    let index_b: BTreeMap<&str, usize> = kb.iter().enumerate().map(|(i, k)| (k.as_str(), i)).collect();
    let set_a: BTreeSet<&str> = ka.iter().map(String::as_str).collect();
    let mut cells_changed = 0;
    let mut changed_rows = BTreeSet::new();
    let mut examples = Vec::new();
    for col in a.columns.iter().filter(|c| names_b.contains(c.name.as_str())) {
        let Some(col_b) = b.column(&col.name) else {
            continue;
        };
        for (ra, key) in ka.iter().enumerate() {
            let Some(&rb) = index_b.get(key.as_str()) else {
                continue;
            };
            let (va, vb) = (cell(&col.data, ra), cell(&col_b.data, rb));
            if va != vb {
                cells_changed += 1;
                changed_rows.insert(ra);
                if examples.len() < 5 {
                    examples.push(CellChange {
                        row: key.clone(),
                        column: col.name.clone(),
                        old: va,
                        new: vb,
                    });
                }
            }
        }
    }
    DataDiff {
        old: *old.0,
        new: *new.0,
        columns_added: names_b.difference(&names_a).map(|s| (*s).to_string()).collect(),
        columns_removed: names_a.difference(&names_b).map(|s| (*s).to_string()).collect(),
        rows_matched_by: by_id.map_or_else(|| "position".to_string(), |c| format!("id column \"{c}\"")),
        rows_added: kb.iter().filter(|k| !set_a.contains(k.as_str())).count(),
        rows_removed: ka.iter().filter(|k| !index_b.contains_key(k.as_str())).count(),
        rows_changed: changed_rows.len(),
        cells_changed,
        examples,
    }
}

impl DataDiff {
    pub fn differs(&self) -> bool {
        self.rows_added + self.rows_removed + self.cells_changed > 0
            || !self.columns_added.is_empty()
            || !self.columns_removed.is_empty()
    }
}

/// Two runs, or two data snapshots (store objects holding CSV): whichever the ids name.
pub fn run_any(args: &DiffArgs) -> Result<AnyDiff> {
    let store = LocalStore::open(&args.store)?;
    let is_run = |h: &str| super::resolve_run(&store, h).is_ok();
    if is_run(&args.a) && is_run(&args.b) {
        return run(args).map(|r| AnyDiff::Runs(Box::new(r)));
    }
    let object = |h: &str| -> Result<(Id, Frame)> {
        let crate::store::Resolved::Object(id) = store.resolve(h)? else {
            return Err(crate::Error::Lookup {
                message: format!("{h} is a run or prediction; diff two runs, or two snapshots"),
                hint: None,
            });
        };
        let opts = crate::frame::ReadOptions {
            na_values: args.na.clone(),
            ..crate::frame::ReadOptions::default()
        };
        let frame = read_csv(&store.get(&id)?, &opts, &format!("snapshot {}", id.short())).map_err(|e| {
            crate::Error::Lookup {
                message: format!("object {} is not a data snapshot: {e}", id.short()),
                hint: Some("diff two runs, or two snapshots (`mlpipe snapshot` prints their ids)".into()),
            }
        })?;
        Ok((id, frame))
    };
    let (ia, fa) = object(&args.a)?;
    let (ib, fb) = object(&args.b)?;
    if let Some(k) = &args.key
        && (fa.column(k).is_none() || fb.column(k).is_none())
    {
        return Err(crate::Error::data(format!("key column \"{k}\" is not in both snapshots")).for_column(k));
    }
    Ok(AnyDiff::Snapshots(data_diff(
        (&ia, &fa),
        (&ib, &fb),
        args.key.as_deref(),
    )))
}

pub fn run(args: &DiffArgs) -> Result<DiffReport> {
    let store = LocalStore::open(&args.store)?;
    let a = super::resolve_run(&store, &args.a)?;
    let b = super::resolve_run(&store, &args.b)?;
    diff_records(&store, &a, &b)
}

pub fn diff_records(store: &dyn Store, a: &RunRecord, b: &RunRecord) -> Result<DiffReport> {
    let pa = Pipeline::from_canonical_json(&store.get(&a.pipeline)?)?;
    let pb = Pipeline::from_canonical_json(&store.get(&b.pipeline)?)?;
    let data = if a.snapshot == b.snapshot {
        None
    } else {
        let fa = read_csv(&store.get(&a.snapshot)?, &pa.gather.read, &a.source)?;
        let fb = read_csv(&store.get(&b.snapshot)?, &pb.gather.read, &b.source)?;
        let id = pb
            .gather
            .id_column
            .as_deref()
            .filter(|_| pa.gather.id_column == pb.gather.id_column);
        Some(data_diff((&a.snapshot, &fa), (&b.snapshot, &fb), id))
    };
    let code = (a.code != b.code).then(|| Change {
        old: a.code.describe(),
        new: b.code.describe(),
    });
    let seed = (a.seed != b.seed).then_some(Change {
        old: a.seed,
        new: b.seed,
    });
    let version = (a.tool != b.tool).then(|| Change {
        old: format!("mlpipe {} ({})", a.tool.mlpipe, a.tool.target),
        new: format!("mlpipe {} ({})", b.tool.mlpipe, b.tool.target),
    });
    let mut stages = Vec::new();
    let outputs_b: BTreeMap<&str, Id> = b.stages.iter().map(|s| (s.name.as_str(), s.output)).collect();
    for s in &a.stages {
        let other = outputs_b.get(s.name.as_str()).copied();
        let status = match other {
            Some(o) if o == s.output => "same",
            Some(_) => "different",
            None => "only in a",
        };
        stages.push(StageDiff {
            name: s.name.clone(),
            status: status.into(),
            a: Some(s.output),
            b: other,
        });
    }
    for s in b.stages.iter().filter(|s| !a.stages.iter().any(|x| x.name == s.name)) {
        stages.push(StageDiff {
            name: s.name.clone(),
            status: "only in b".into(),
            a: None,
            b: Some(s.output),
        });
    }
    let names: BTreeSet<&String> = a.metrics.keys().chain(b.metrics.keys()).collect();
    let metrics = names
        .into_iter()
        .map(|n| {
            let (x, y) = (a.metrics.get(n).copied(), b.metrics.get(n).copied());
            MetricDelta {
                name: n.clone(),
                a: x,
                b: y,
                delta: x.zip(y).map(|(x, y)| y - x),
            }
        })
        .collect();
    let (ca, cb) = (chosen(store, a)?, chosen(store, b)?);
    let chosen = (ca != cb && (ca.is_some() || cb.is_some())).then(|| Change {
        old: ca.unwrap_or_else(|| "(no grid search)".into()),
        new: cb.unwrap_or_else(|| "(no grid search)".into()),
    });
    Ok(DiffReport {
        a: a.run,
        b: b.run,
        config: config_changes(&pa, &pb),
        data,
        code,
        seed,
        version,
        stages,
        chosen,
        metrics,
    })
}
