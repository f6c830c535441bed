//! Reading `estimator = "…"` and its hyperparameters from a TOML table, every value checked before any
//! fit. Which estimators a task may name, and which function here reads each, is the registration in
//! `estimator.rs`.

use super::estimator::{ClassCriterion, Estimator, MaxFeatures, Member};
use crate::error::{Error, Result};
use crate::vocab::Task;
use crate::vocab::reader::TableReader;

/// Reads `estimator = "…"` and its hyperparameters for a task, checking every value before any fit.
pub fn parse_estimator(t: &mut TableReader<'_, '_>, task: Task) -> Result<Estimator> {
    let known = Estimator::names_for(task);
    let name = t.req_str(
        "estimator",
        &format!(
            "one of {}",
            known.iter().map(|k| format!("\"{k}\"")).collect::<Vec<_>>().join(", ")
        ),
    )?;
    let Some(registered) = Estimator::REGISTERED
        .iter()
        .find(|r| r.name == name.value && r.tasks.contains(&task))
    else {
        let other = name.value.as_str();
        let (message, hint) = if Estimator::REGISTERED.iter().any(|r| r.name == other) {
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
    };
    (registered.parse)(t, task)
}

pub(super) fn k_means(t: &mut TableReader<'_, '_>, _task: Task) -> Result<Estimator> {
    let plus_plus = t
        .choice("init", &["k-means++", "random"])?
        .is_none_or(|i| i.value == "k-means++");
    let tol = match t.f64("tol")? {
        Some(v) if v.value < 0.0 => return Err(Error::spec("`tol` must be ≥ 0", Some(v.location))),
        other => other.map_or(1e-4, |v| v.value),
    };
    Ok(Estimator::KMeans {
        n_clusters: at_least(t, "n_clusters", 1, 8)?,
        // scikit-learn's n_init = "auto": one k-means++ seeding, or ten random ones.
        n_init: at_least(t, "n_init", 1, if plus_plus { 1 } else { 10 })?,
        plus_plus,
        max_iter: at_least(t, "max_iter", 1, 300)?,
        tol,
    })
}

/// `fit_intercept`, read first by every linear estimator.
fn fit_intercept(t: &mut TableReader<'_, '_>) -> Result<bool> {
    Ok(t.bool("fit_intercept")?.unwrap_or(true))
}

fn alpha(t: &mut TableReader<'_, '_>) -> Result<f64> {
    match t.f64("alpha")? {
        None => Ok(1.0),
        Some(a) if a.value >= 0.0 => Ok(a.value),
        Some(a) => Err(Error::spec(
            format!("`alpha` must be ≥ 0, found {}", a.value),
            Some(a.location),
        )),
    }
}

/// `max_iter` and `tol` of an iterative solver.
fn solver(t: &mut TableReader<'_, '_>, default_iter: u64) -> Result<(u64, f64)> {
    let max_iter = match t.u64("max_iter")? {
        Some(m) if m.value == 0 => return Err(Error::spec("`max_iter` must be at least 1", Some(m.location))),
        other => other.map_or(default_iter, |m| m.value),
    };
    let tol = match t.f64("tol")? {
        Some(v) if v.value <= 0.0 => return Err(Error::spec("`tol` must be above 0", Some(v.location))),
        other => other.map_or(1e-4, |v| v.value),
    };
    Ok((max_iter, tol))
}

fn l1_ratio(t: &mut TableReader<'_, '_>, default: f64) -> Result<f64> {
    match t.f64("l1_ratio")? {
        None => Ok(default),
        Some(r) if (0.0..=1.0).contains(&r.value) => Ok(r.value),
        Some(r) => Err(Error::spec(
            format!("`l1_ratio` must be between 0 and 1, found {}", r.value),
            Some(r.location),
        )),
    }
}

pub(super) fn linear_regression(t: &mut TableReader<'_, '_>, _task: Task) -> Result<Estimator> {
    let fit_intercept = fit_intercept(t)?;
    Ok(Estimator::LinearRegression { fit_intercept })
}

pub(super) fn ridge(t: &mut TableReader<'_, '_>, _task: Task) -> Result<Estimator> {
    let fit_intercept = fit_intercept(t)?;
    Ok(Estimator::Ridge {
        alpha: alpha(t)?,
        fit_intercept,
    })
}

pub(super) fn lasso(t: &mut TableReader<'_, '_>, _task: Task) -> Result<Estimator> {
    let fit_intercept = fit_intercept(t)?;
    let alpha = alpha(t)?;
    let (max_iter, tol) = solver(t, 1000)?;
    Ok(Estimator::Lasso {
        alpha,
        fit_intercept,
        max_iter,
        tol,
    })
}

pub(super) fn elastic_net(t: &mut TableReader<'_, '_>, _task: Task) -> Result<Estimator> {
    let fit_intercept = fit_intercept(t)?;
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

pub(super) fn logistic_regression(t: &mut TableReader<'_, '_>, _task: Task) -> Result<Estimator> {
    let fit_intercept = fit_intercept(t)?;
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

pub(super) fn voting(t: &mut TableReader<'_, '_>, task: Task) -> Result<Estimator> {
    let base = parse_base(t, "voting", task)?;
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
    Ok(Estimator::Voting { base, weights })
}

pub(super) fn stacking(t: &mut TableReader<'_, '_>, task: Task) -> Result<Estimator> {
    let base = parse_base(t, "stacking", task)?;
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

/// `stacking` / `voting`: the `[[train.base]]` tables (each a `name` and an estimator), at least two; then
/// `[train.final]` and `folds` (stacking) or `weights` (voting).
fn parse_base(t: &mut TableReader<'_, '_>, name: &str, task: Task) -> Result<Vec<Member>> {
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
    Ok(base)
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

/// `min_samples_split` and `min_samples_leaf`, read first by every tree estimator.
fn min_samples(t: &mut TableReader<'_, '_>) -> Result<(u64, u64)> {
    let min_samples_split = at_least(t, "min_samples_split", 2, 2)?;
    let min_samples_leaf = at_least(t, "min_samples_leaf", 1, 1)?;
    Ok((min_samples_split, min_samples_leaf))
}

/// A classification tree's `criterion`; none for regression (boosting grows regression trees and reads
/// none).
fn criterion(t: &mut TableReader<'_, '_>, task: Task) -> Result<Option<ClassCriterion>> {
    Ok(match task {
        Task::Regression | Task::Clustering => None,
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
    })
}

fn optional_depth(t: &mut TableReader<'_, '_>) -> Result<Option<u64>> {
    if t.has("max_depth") {
        Ok(Some(at_least(t, "max_depth", 1, 1)?))
    } else {
        Ok(None)
    }
}

pub(super) fn decision_tree(t: &mut TableReader<'_, '_>, task: Task) -> Result<Estimator> {
    let (min_samples_split, min_samples_leaf) = min_samples(t)?;
    let criterion = criterion(t, task)?;
    Ok(Estimator::DecisionTree {
        max_depth: optional_depth(t)?,
        min_samples_split,
        min_samples_leaf,
        criterion,
    })
}

pub(super) fn random_forest(t: &mut TableReader<'_, '_>, task: Task) -> Result<Estimator> {
    let (min_samples_split, min_samples_leaf) = min_samples(t)?;
    let criterion = criterion(t, task)?;
    Ok(Estimator::RandomForest {
        n_estimators: at_least(t, "n_estimators", 1, 100)?,
        max_depth: optional_depth(t)?,
        min_samples_split,
        min_samples_leaf,
        max_features: parse_max_features(t, task)?,
        bootstrap: t.bool("bootstrap")?.unwrap_or(true),
        criterion,
    })
}

pub(super) fn gradient_boosting(t: &mut TableReader<'_, '_>, _task: Task) -> Result<Estimator> {
    let (min_samples_split, min_samples_leaf) = min_samples(t)?;
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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::vocab::reader::{Source, parse_document};

    /// Parses `text` as a `[train]` table for `task`.
    fn parse(text: &str, task: Task) -> Result<Estimator> {
        let src = Source {
            path: PathBuf::from("x.toml"),
            text,
        };
        let doc = parse_document(&src)?;
        let mut t = TableReader::new(&src, doc.get_ref(), doc.span(), "[train]");
        let estimator = parse_estimator(&mut t, task)?;
        let mut known = vec!["estimator"];
        known.extend(estimator.param_names());
        t.finish(&known)?;
        Ok(estimator)
    }

    /// A table naming `name` with defaults: an ensemble gets two bases (and a final estimator) of the
    /// task's first single estimator.
    fn minimal(name: &str, task: Task) -> String {
        let single = Estimator::REGISTERED
            .iter()
            .find(|r| r.tasks.contains(&task) && !matches!(r.name, "stacking" | "voting"))
            .map(|r| r.name)
            .unwrap();
        let mut text = format!("estimator = \"{name}\"\n");
        if matches!(name, "stacking" | "voting") {
            for base in ["a", "b"] {
                text.push_str(&format!("[[base]]\nname = \"{base}\"\nestimator = \"{single}\"\n"));
            }
        }
        if name == "stacking" {
            text.push_str(&format!("[final]\nestimator = \"{single}\"\n"));
        }
        text
    }

    const TASKS: [Task; 3] = [Task::Regression, Task::Classification, Task::Clustering];

    /// Every registered estimator parses, for each task it is registered for, to its own variant (whose
    /// serde tag is the registered name), and is refused for every other task; no name is registered twice.
    #[test]
    fn every_registered_estimator_parses_to_its_own_variant_for_its_tasks_only() {
        let mut seen = std::collections::BTreeSet::new();
        for r in Estimator::REGISTERED {
            assert!(seen.insert(r.name), "\"{}\" is registered twice", r.name);
            for task in TASKS {
                let parsed = parse(&minimal(r.name, task), task);
                if r.tasks.contains(&task) {
                    let e = parsed.unwrap_or_else(|e| panic!("{} for {task:?}: {e}", r.name));
                    assert_eq!(e.name(), r.name, "\"{}\" parsed as another estimator", r.name);
                    let json = serde_json::to_value(&e).unwrap();
                    assert_eq!(json["estimator"], r.name, "the serde tag of {}", r.name);
                    assert_eq!(serde_json::from_value::<Estimator>(json).unwrap(), e);
                } else {
                    let err = parsed.unwrap_err().to_string();
                    assert!(
                        err.starts_with(&format!("estimator \"{}\" does not fit task", r.name)),
                        "{} for {task:?}: {err}",
                        r.name
                    );
                }
            }
        }
        for task in TASKS {
            assert!(!Estimator::names_for(task).is_empty());
        }
    }

    #[test]
    fn an_unregistered_estimator_is_an_error_with_a_hint() {
        let err = parse("estimator = \"ridgee\"\n", Task::Regression).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("unknown estimator \"ridgee\" (known for task \"regression\": linear_regression, ridge,"),
            "{err}"
        );
        assert_eq!(err.hint().as_deref(), Some("did you mean \"ridge\"?"));
    }
}
