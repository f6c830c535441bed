//! The pipeline file's sections read one by one: `[gather]`, `[split]`, `[grid]`, `[cv]` and `[gates]`,
//! each checked where it is written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use toml::de::DeValue;

use super::{CrossValidation, Gate, GateRule, Gather, Search};
use crate::error::{Error, Location, Result};
use crate::frame::{ColumnType, ReadOptions};
use crate::models::Estimator;
use crate::sources::FileFormat;
use crate::vocab::reader::{At, Source, TableReader};
use crate::vocab::{Metric, Split, SplitValue, Task};

/// Grid searches stop here: each candidate is a full cross-validation.
const MAX_CANDIDATES: usize = 1000;

pub(super) fn parse_grid(
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

pub(super) fn parse_cv(
    root: &mut TableReader<'_, '_>,
    task: Task,
    metrics: &[Metric],
) -> Result<Option<CrossValidation>> {
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

pub(super) fn parse_gates(root: &mut TableReader<'_, '_>, computed: &[Metric], task: Task) -> Result<Vec<Gate>> {
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
pub(super) fn check_name(name: &At<String>, what: &str) -> Result<()> {
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

pub(super) fn parse_gather(g: &mut TableReader<'_, '_>) -> Result<(Gather, Option<Location>)> {
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
    let format = match g.choice("format", &FileFormat::NAMES).map_err(|e| match g.raw("format") {
        // Other names for the formats users have.
        Some(v) if matches!(v.get_ref(), DeValue::String(s) if ["feather", "arrow", "arrows"].contains(&s.as_ref())) => {
            e.with_hint("Arrow IPC (Feather v2) is format = \"ipc\"")
        }
        Some(v) if matches!(v.get_ref(), DeValue::String(s) if ["json", "jsonl"].contains(&s.as_ref())) => {
            e.with_hint("one JSON object per line is format = \"ndjson\"")
        }
        _ => e,
    })? {
        Some(f) if database.is_some() && f.value != "csv" => {
            return Err(Error::spec(
                format!(
                    "`format = \"{}\"` is for data files; `source` names a database",
                    f.value
                ),
                Some(f.location),
            )
            .with_hint("leave `format` out for a database source"));
        }
        Some(f) => FileFormat::from_name(&f.value).unwrap_or_default(),
        None if database.is_some() => FileFormat::Csv,
        None => FileFormat::of_path(Path::new(&source.value)).map_err(|message| {
            Error::spec(message, Some(source.location.clone())).with_hint(
                "set format = \"ndjson\" in [gather] (one object per line), or convert the file to CSV or Parquet",
            )
        })?,
    };
    let delimiter = match g.str("delimiter")? {
        None => b',',
        Some(d) if !format.is_csv() => {
            return Err(Error::spec(
                format!("`delimiter` is for CSV files; this source is read as {}", format.name()),
                Some(d.location),
            )
            .with_hint("leave `delimiter` out"));
        }
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
    let mut dtype_places = Vec::new();
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
            dtype_places.push((key.value.clone(), key.location));
            dtypes.insert(key.value, ty);
        }
    }
    let columns = g.str_list("columns")?;
    if let Some(list) = &columns
        && list.is_empty()
    {
        return Err(Error::spec(
            "`columns` is an empty list: no column would be read",
            g.raw("columns").map(|v| g.source().location(v.span())),
        )
        .with_hint("name the columns to keep, or leave `columns` out to read them all"));
    }
    let columns: Vec<String> = columns.unwrap_or_default().into_iter().map(|c| c.value).collect();
    // A type for a column that is not read would be ignored by one reader and refused by another.
    if let Some((name, place)) = dtype_places
        .into_iter()
        .find(|(name, _)| !columns.is_empty() && !columns.contains(name))
    {
        return Err(Error::spec(
            format!("dtypes gives a type to \"{name}\", which `columns` does not read"),
            Some(place),
        )
        .with_hint(format!("add \"{name}\" to `columns`, or remove its dtype")));
    }
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
            format,
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
pub(super) fn check_inside_project(pipeline: &Path, written: &Path) -> std::result::Result<(), String> {
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
pub(super) fn fold_dots(path: &Path) -> PathBuf {
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

pub(super) fn split_value(r: &mut TableReader<'_, '_>, key: &str) -> Result<Option<SplitValue>> {
    let src = r.source();
    let name = r.name.clone();
    let Some(v) = r.raw(key) else { return Ok(None) };
    one_split_value(src, &name, key, v).map(Some)
}

pub(super) fn one_split_value(
    src: &Source<'_>,
    table: &str,
    key: &str,
    v: &toml::Spanned<DeValue<'_>>,
) -> Result<SplitValue> {
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

pub(super) fn parse_split(s: &mut TableReader<'_, '_>) -> Result<(Split, Option<Location>)> {
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
