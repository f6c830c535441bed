//! Filter selection: steps that learn which columns to drop on train and drop them everywhere.
//!
//! - `drop_constant` (feature-engine `DropConstantFeatures`): with `tol = 1` (default) columns with a
//!   single present value; otherwise columns whose most frequent value covers at least `tol` of the
//!   train rows.
//! - `drop_duplicates` (`DropDuplicateFeatures`): columns equal to an earlier one (missing equals
//!   missing); the first is kept.
//! - `drop_correlated` (`DropCorrelatedFeatures`): numeric columns, taken in sorted name order; each
//!   column not yet dropped keeps itself and drops every later one whose |Pearson| (or Spearman)
//!   correlation with it exceeds `threshold` (default 0.8).
//! - `drop_missing`: columns whose fraction of missing train values exceeds `threshold` (default 0.5).
//! - `select_k_best`: keeps the `k` numeric columns (or the top `percentile` %) with the highest
//!   univariate F statistic against the target, as scikit-learn's `SelectKBest` / `SelectPercentile`
//!   with `f_regression` (regression) or `f_classif` (classification: one-way ANOVA over the classes),
//!   ties as scikit-learn breaks them.
//!
//! The fitted state lists every dropped column with the reason.

// Equal means exactly equal here: duplicate columns and tied ranks.
#![allow(clippy::float_cmp)]

use serde::{Deserialize, Serialize};

use rand_chacha::ChaCha20Rng;

use super::mutual_info;
use crate::error::{Error, Result};
use crate::frame::{ColumnData, Frame, category_counts};
use crate::vocab::reader::TableReader;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum Rule {
    Constant {
        tol: f64,
    },
    Duplicates,
    Correlated {
        spearman: bool,
        threshold: f64,
    },
    Missing {
        threshold: f64,
    },
    KBest {
        k: Option<u64>,
        percentile: Option<f64>,
        #[serde(default, skip_serializing_if = "Score::is_f_test")]
        score: Score,
    },
}

/// What `select_k_best` ranks columns by.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "score", rename_all = "snake_case")]
pub enum Score {
    /// `f_regression` / `f_classif`.
    #[default]
    FTest,
    /// `mutual_info_regression` / `mutual_info_classif` with `n_neighbors`; `discrete` names the
    /// columns taken as discrete (scikit-learn's `discrete_features`).
    MutualInfo { n_neighbors: u64, discrete: Discrete },
}

impl Score {
    fn is_f_test(&self) -> bool {
        *self == Score::FTest
    }
}

/// `discrete_features`: all columns, none, or the named ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Discrete {
    All(bool),
    Columns(Vec<String>),
}

impl Discrete {
    fn mask(&self, columns: &[String]) -> Result<Vec<bool>> {
        match self {
            Discrete::All(all) => Ok(vec![*all; columns.len()]),
            Discrete::Columns(named) => {
                if let Some(stray) = named.iter().find(|n| !columns.contains(n)) {
                    return Err(Error::data(format!(
                        "`discrete_features` names \"{stray}\", which is not among the columns this step scores"
                    ))
                    .with_hint(format!("name some of: {}", columns.join(", "))));
                }
                Ok(columns.iter().map(|c| named.contains(c)).collect())
            }
        }
    }
}

impl Rule {
    pub fn parse(t: &mut TableReader<'_, '_>, op: &str) -> Result<Rule> {
        let fraction = |t: &mut TableReader<'_, '_>, key: &str, default: f64| -> Result<f64> {
            match t.f64(key)? {
                None => Ok(default),
                Some(v) if (0.0..=1.0).contains(&v.value) => Ok(v.value),
                Some(v) => Err(Error::spec(
                    format!("`{key}` must be between 0 and 1, found {}", v.value),
                    Some(v.location),
                )),
            }
        };
        Ok(match op {
            "drop_constant" => Rule::Constant {
                tol: fraction(t, "tol", 1.0)?,
            },
            "drop_duplicates" => Rule::Duplicates,
            "drop_correlated" => Rule::Correlated {
                spearman: t
                    .choice("method", &["pearson", "spearman"])?
                    .is_some_and(|m| m.value == "spearman"),
                threshold: fraction(t, "threshold", 0.8)?,
            },
            "select_k_best" => {
                let k = t.u64("k")?;
                let percentile = t.f64("percentile")?;
                let score = Self::parse_score(t)?;
                match (&k, &percentile) {
                    (Some(k), None) if k.value >= 1 => Rule::KBest {
                        k: Some(k.value),
                        percentile: None,
                        score,
                    },
                    (None, Some(p)) if p.value > 0.0 && p.value <= 100.0 => Rule::KBest {
                        k: None,
                        percentile: Some(p.value),
                        score,
                    },
                    _ => {
                        return Err(Error::spec(
                            format!(
                                "{} needs exactly one of `k` (≥ 1) or `percentile` (0 < p ≤ 100)",
                                t.name
                            ),
                            Some(t.location()),
                        ));
                    }
                }
            }
            "drop_missing" => Rule::Missing {
                threshold: fraction(t, "threshold", 0.5)?,
            },
            // The registry calls this with its own names only; any other is refused, never guessed.
            other => {
                return Err(Error::spec(format!("\"{other}\" is not a selection rule"), None)
                    .with_hint("use drop_constant, drop_duplicates, drop_correlated, drop_missing or select_k_best"));
            }
        })
    }

    fn parse_score(t: &mut TableReader<'_, '_>) -> Result<Score> {
        let mutual_info = t
            .choice("score", &["f_test", "mutual_info"])?
            .is_some_and(|s| s.value == "mutual_info");
        if !mutual_info {
            for key in ["n_neighbors", "discrete_features"] {
                if let Some(v) = t.raw(key) {
                    return Err(Error::spec(
                        format!("`{key}` applies to `score = \"mutual_info\"` only"),
                        Some(t.source().location(v.span())),
                    )
                    .with_hint("add `score = \"mutual_info\"` or remove the key"));
                }
            }
            return Ok(Score::FTest);
        }
        let n_neighbors = match t.u64("n_neighbors")? {
            None => 3,
            Some(k) if k.value >= 1 => k.value,
            Some(k) => return Err(Error::spec("`n_neighbors` must be at least 1", Some(k.location))),
        };
        let discrete = if t.kind("discrete_features") == Some("a boolean") {
            Discrete::All(t.bool("discrete_features")?.unwrap_or(false))
        } else {
            match t.str_list("discrete_features")? {
                None => Discrete::All(false),
                Some(names) => Discrete::Columns(names.into_iter().map(|n| n.value).collect()),
            }
        };
        Ok(Score::MutualInfo { n_neighbors, discrete })
    }

    pub fn param_names(&self) -> Vec<&'static str> {
        match self {
            Rule::Constant { .. } => vec!["tol"],
            Rule::Duplicates => vec![],
            Rule::Correlated { .. } => vec!["method", "threshold"],
            Rule::Missing { .. } => vec!["threshold"],
            Rule::KBest { .. } => vec!["k", "percentile", "score", "n_neighbors", "discrete_features"],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dropped {
    pub column: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fitted {
    pub examined: Vec<String>,
    pub dropped: Vec<Dropped>,
    /// Each examined column's score, for the steps that rank: `select_k_best` (F statistic or mutual
    /// information in nats) and `select_from_model` (importance).
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "nan_as_null")]
    pub scores: Vec<f64>,
}

/// Scores as JSON: an undefined score (scikit-learn's NaN F statistic of a constant column) is `null`,
/// read back as NaN, so that the stored output loads again.
mod nan_as_null {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[allow(clippy::ptr_arg)] // serde's `with` passes the field as it is
    pub fn serialize<S: Serializer>(scores: &Vec<f64>, s: S) -> Result<S::Ok, S::Error> {
        let present: Vec<Option<f64>> = scores.iter().map(|x| (!x.is_nan()).then_some(*x)).collect();
        present.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        let present = Vec::<Option<f64>>::deserialize(d)?;
        Ok(present.into_iter().map(|x| x.unwrap_or(f64::NAN)).collect())
    }
}

fn same(a: &ColumnData, b: &ColumnData) -> bool {
    match (a, b) {
        (ColumnData::Numeric(x), ColumnData::Numeric(y)) => x
            .iter()
            .zip(y)
            .all(|(p, q)| p.to_bits() == q.to_bits() || (p.is_nan() && q.is_nan()) || p == q),
        (ColumnData::Categorical(x), ColumnData::Categorical(y)) => x == y,
        _ => false,
    }
}

/// Average ranks (ties share the mean of their positions), as pandas ranks for Spearman.
fn ranks(v: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut out = vec![0.0; v.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && v[order[j + 1]] == v[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for k in i..=j {
            out[order[k]] = rank;
        }
        i = j + 1;
    }
    out
}

pub fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        let (dx, dy) = (a - mx, b - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    sxy / (sxx * syy).sqrt()
}

/// scikit-learn's `f_regression`: F = r² / (1 − r²) · (n − 2) for each column against y.
pub fn f_regression(x: &[f64], y: &[f64]) -> f64 {
    let r = pearson(x, y);
    r * r / (1.0 - r * r) * (x.len() as f64 - 2.0)
}

/// What `select_k_best` scores columns against: a numeric target, or class indices (`0..n_classes`).
pub enum ScoreTarget<'a> {
    Values(&'a [f64]),
    Classes { y: &'a [u32], n_classes: usize },
}

/// scikit-learn's `f_classif` (one-way ANOVA): between-class over within-class mean squares.
pub fn f_classif(x: &[f64], y: &[u32], n_classes: usize) -> f64 {
    let n = x.len() as f64;
    let mut sums = vec![0.0; n_classes];
    let mut counts = vec![0.0; n_classes];
    let (mut total, mut squares) = (0.0, 0.0);
    for (v, c) in x.iter().zip(y) {
        sums[*c as usize] += v;
        counts[*c as usize] += 1.0;
        total += v;
        squares += v * v;
    }
    let present = counts.iter().filter(|c| **c > 0.0).count() as f64;
    let correction = total * total / n;
    let between: f64 = sums
        .iter()
        .zip(&counts)
        .filter(|(_, c)| **c > 0.0)
        .map(|(s, c)| s * s / c)
        .sum::<f64>()
        - correction;
    let within = squares - correction - between;
    (between / (present - 1.0)) / (within / (n - present))
}

/// Which columns `select_k_best` keeps, from their scores (scikit-learn's rules, ties included).
fn k_best_mask(scores: &[f64], k: Option<u64>, percentile: Option<f64>) -> Vec<bool> {
    let n = scores.len();
    let mut mask = vec![false; n];
    if let Some(k) = k {
        // np.argsort(scores, kind="mergesort")[-k:]: a stable ascending sort, the last k kept.
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
        for &i in order.iter().rev().take(usize::try_from(k).unwrap_or(usize::MAX)) {
            mask[i] = true;
        }
    } else if let Some(p) = percentile {
        let mut sorted = scores.to_vec();
        sorted.sort_by(f64::total_cmp);
        let threshold = super::scale::quantile(&sorted, (100.0 - p) / 100.0);
        for (m, s) in mask.iter_mut().zip(scores) {
            *m = *s > threshold;
        }
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let max_feats = (n as f64 * p / 100.0) as usize;
        let mut room = max_feats.saturating_sub(mask.iter().filter(|m| **m).count());
        for (m, s) in mask.iter_mut().zip(scores) {
            if room > 0 && *s == threshold {
                *m = true;
                room -= 1;
            }
        }
    }
    mask
}

/// Learns which columns to drop; `rng` draws the noise of a mutual-information score.
pub fn fit(
    rule: &Rule,
    train: &Frame,
    columns: &[String],
    y: Option<ScoreTarget<'_>>,
    rng: &mut ChaCha20Rng,
) -> Result<Fitted> {
    let mut dropped: Vec<Dropped> = Vec::new();
    let mut kept_scores = Vec::new();
    let n = train.n_rows() as f64;
    match rule {
        Rule::Constant { tol } => {
            for name in columns {
                let data = &train.column(name).ok_or_else(|| train.missing_column(name))?.data;
                let (distinct, top) = match data {
                    ColumnData::Numeric(v) => {
                        let mut present: Vec<u64> = v
                            .iter()
                            .filter(|x| !x.is_nan())
                            .map(|x| if *x == 0.0 { 0 } else { x.to_bits() })
                            .collect();
                        present.sort_unstable();
                        let mut best = 0;
                        let mut run = 0;
                        for (i, b) in present.iter().enumerate() {
                            run = if i > 0 && present[i - 1] == *b { run + 1 } else { 1 };
                            best = best.max(run);
                        }
                        present.dedup();
                        (present.len(), best)
                    }
                    ColumnData::Categorical(v) => {
                        let counts = category_counts(v);
                        (counts.len(), counts.values().copied().max().unwrap_or(0))
                    }
                };
                let share = top as f64 / n;
                if (*tol >= 1.0 && distinct == 1) || (*tol < 1.0 && share >= *tol) {
                    let reason = if distinct == 1 {
                        "constant".to_string()
                    } else {
                        format!("quasi-constant: one value in {:.2}% of train rows", share * 100.0)
                    };
                    dropped.push(Dropped {
                        column: name.clone(),
                        reason,
                    });
                }
            }
        }
        Rule::Duplicates => {
            for (i, name) in columns.iter().enumerate() {
                let data = &train.column(name).ok_or_else(|| train.missing_column(name))?.data;
                if let Some(first) = columns[..i]
                    .iter()
                    .filter(|c| !dropped.iter().any(|d| &d.column == *c))
                    .find(|c| train.column(c).is_some_and(|col| same(&col.data, data)))
                {
                    dropped.push(Dropped {
                        column: name.clone(),
                        reason: format!("duplicate of {first}"),
                    });
                }
            }
        }
        Rule::Correlated { spearman, threshold } => {
            let mut sorted: Vec<&String> = columns.iter().collect();
            sorted.sort();
            let mut values = Vec::with_capacity(sorted.len());
            for name in &sorted {
                let v = train.numeric(name)?;
                if let Some(r) = v.iter().position(|x| x.is_nan()) {
                    return Err(Error::data(format!(
                        "column \"{name}\" is missing at line {} of {}; impute before dropping correlated features",
                        train.lines[r], train.source
                    )));
                }
                values.push(if *spearman { ranks(v) } else { v.to_vec() });
            }
            let mut examined = vec![false; sorted.len()];
            for i in 0..sorted.len() {
                if examined[i] {
                    continue;
                }
                examined[i] = true;
                for j in i + 1..sorted.len() {
                    if examined[j] {
                        continue;
                    }
                    let r = pearson(&values[i], &values[j]);
                    if r.abs() > *threshold {
                        examined[j] = true;
                        dropped.push(Dropped {
                            column: sorted[j].clone(),
                            reason: format!("correlated with {} (r = {r:.4})", sorted[i]),
                        });
                    }
                }
            }
        }
        Rule::KBest { k, percentile, score } => {
            let y = y.ok_or_else(|| Error::internal("select_k_best without a target"))?;
            let mut xs = Vec::with_capacity(columns.len());
            for name in columns {
                let x = train.numeric(name)?;
                if let Some(r) = x.iter().position(|v| v.is_nan()) {
                    return Err(Error::data(format!(
                        "column \"{name}\" is missing at line {} of {}; impute before selecting by score",
                        train.lines[r], train.source
                    )));
                }
                xs.push(x);
            }
            let (scores, label) = match score {
                Score::FTest => (
                    xs.iter()
                        .map(|x| match &y {
                            ScoreTarget::Values(y) => f_regression(x, y),
                            ScoreTarget::Classes { y, n_classes } => f_classif(x, y, *n_classes),
                        })
                        .collect::<Vec<f64>>(),
                    "F",
                ),
                Score::MutualInfo { n_neighbors, discrete } => {
                    let k = usize::try_from(*n_neighbors).unwrap_or(usize::MAX);
                    if train.n_rows() <= k {
                        return Err(Error::data(format!(
                            "mutual information with n_neighbors = {k} needs more than {k} train rows, found {}",
                            train.n_rows()
                        ))
                        .with_hint("lower `n_neighbors`"));
                    }
                    let target = match &y {
                        ScoreTarget::Values(y) => mutual_info::Target::Values(y),
                        ScoreTarget::Classes { y, .. } => mutual_info::Target::Classes(y),
                    };
                    let mask = discrete.mask(columns)?;
                    (mutual_info::scores(&xs, &mask, &target, k, rng), "mutual information")
                }
            };
            for ((name, keep), score) in columns.iter().zip(k_best_mask(&scores, *k, *percentile)).zip(&scores) {
                if !keep {
                    dropped.push(Dropped {
                        column: name.clone(),
                        reason: format!("{label} = {score:.4} is not among the best"),
                    });
                }
            }
            kept_scores = scores;
        }
        Rule::Missing { threshold } => {
            for name in columns {
                let data = &train.column(name).ok_or_else(|| train.missing_column(name))?.data;
                let share = data.missing_count() as f64 / n;
                if share > *threshold {
                    dropped.push(Dropped {
                        column: name.clone(),
                        reason: format!("{:.2}% missing in train", share * 100.0),
                    });
                }
            }
        }
    }
    if !columns.is_empty() && dropped.len() == train.columns.len() {
        return Err(Error::data("this step would drop every column").with_hint("loosen its threshold"));
    }
    Ok(Fitted {
        examined: columns.to_vec(),
        dropped,
        scores: kept_scores,
    })
}

impl Fitted {
    pub fn apply(&self, mut frame: Frame) -> Result<Frame> {
        for d in &self.dropped {
            let idx = frame
                .index_of(&d.column)
                .ok_or_else(|| frame.missing_column(&d.column))?;
            frame.columns.remove(idx);
        }
        Ok(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_undefined_score_is_stored_and_read_back() {
        // A constant column's F statistic is NaN; JSON has no NaN, so it is stored as null.
        let fitted = Fitted {
            examined: vec!["a".into(), "b".into()],
            dropped: Vec::new(),
            scores: vec![2.5, f64::NAN],
        };
        let json = serde_json::to_string(&fitted).unwrap();
        assert!(json.contains("[2.5,null]"), "{json}");
        let back: Fitted = serde_json::from_str(&json).unwrap();
        assert_eq!(back.scores[0], 2.5);
        assert!(back.scores[1].is_nan());
    }
    use crate::frame::{ReadOptions, read_csv};

    fn frame() -> Frame {
        let o = ReadOptions {
            na_values: vec!["NA".into()],
            ..ReadOptions::default()
        };
        read_csv(
            b"a,b,c,d,e\n1,x,NA,2,1\n1,y,NA,4,2\n1,x,3,6,3\n1,x,NA,8,5\n",
            &o,
            "t.csv",
        )
        .unwrap()
    }

    fn dropped(rule: &Rule, cols: &[&str]) -> Vec<String> {
        let cols: Vec<String> = cols.iter().map(|c| (*c).to_string()).collect();
        let mut rng = <ChaCha20Rng as rand::SeedableRng>::seed_from_u64(0);
        fit(rule, &frame(), &cols, None, &mut rng)
            .unwrap()
            .dropped
            .into_iter()
            .map(|d| format!("{}: {}", d.column, d.reason))
            .collect()
    }

    #[test]
    fn constant_quasi_constant_and_missing() {
        assert_eq!(dropped(&Rule::Constant { tol: 1.0 }, &["a", "b", "d"]), ["a: constant"]);
        assert_eq!(
            dropped(&Rule::Constant { tol: 0.75 }, &["a", "b", "d"]),
            ["a: constant", "b: quasi-constant: one value in 75.00% of train rows"]
        );
        assert_eq!(
            dropped(&Rule::Missing { threshold: 0.5 }, &["a", "c"]),
            ["c: 75.00% missing in train"]
        );
    }

    #[test]
    fn correlated_keeps_the_first_name_in_sorted_order() {
        // d = 2·(row) is perfectly correlated with a ranking of e; pearson(d, e) < 1, spearman = 1.
        assert_eq!(
            dropped(
                &Rule::Correlated {
                    spearman: true,
                    threshold: 0.99
                },
                &["e", "d"]
            ),
            ["e: correlated with d (r = 1.0000)"]
        );
        assert!(
            dropped(
                &Rule::Correlated {
                    spearman: false,
                    threshold: 0.995
                },
                &["e", "d"]
            )
            .is_empty()
        );
        assert_eq!(ranks(&[3.0, 1.0, 3.0, 2.0]), [3.5, 1.0, 3.5, 2.0]);
    }
}

#[cfg(test)]
mod k_best_tests {
    use super::k_best_mask;

    #[test]
    fn ties_are_broken_as_scikit_learn_does() {
        // Stable ascending sort, last k kept: among equal scores the later column wins.
        assert_eq!(
            k_best_mask(&[1.0, 3.0, 3.0, 0.5], Some(1), None),
            [false, false, true, false]
        );
        assert_eq!(
            k_best_mask(&[1.0, 3.0, 3.0, 0.5], Some(2), None),
            [false, true, true, false]
        );
        // Percentile 50 of four scores keeps two.
        assert_eq!(
            k_best_mask(&[1.0, 4.0, 3.0, 0.5], None, Some(50.0)),
            [false, true, true, false]
        );
    }
}
