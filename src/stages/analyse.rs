//! The data profile: per column type, missing count and fraction, distinct count, min/max/mean/std/skew
//! and the count of outliers beyond the 1.5·IQR fences (numeric), the most frequent categories and the
//! number of rare labels (categorical), and the pairs of numeric columns correlated above a threshold —
//! computed on the train split (what every fit sees). These are what choosing imputers, encoders,
//! rare-label grouping, transforms, capping and selection needs.
//!
//! Statistics follow pandas: `std` with ddof = 1, `skew` is the adjusted Fisher–Pearson coefficient
//! (`Series.skew()`); sums run in row order so results never depend on threads.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::frame::{ColumnData, ColumnType, Frame};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumericSummary {
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    pub std: Option<f64>,
    pub skew: Option<f64>,
    /// Values below Q1 − 1.5·IQR or above Q3 + 1.5·IQR (numpy's linear quantiles).
    pub outliers: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnProfile {
    pub name: String,
    #[serde(rename = "type")]
    pub column_type: ColumnType,
    pub missing: usize,
    pub missing_fraction: f64,
    pub distinct: usize,
    pub numeric: Option<NumericSummary>,
    /// Most frequent values with their counts (categorical columns), most frequent first, ties by text.
    pub top: Vec<(String, usize)>,
    /// Labels whose share of present train values is below the rare tolerance (categorical columns).
    pub rare_labels: usize,
}

/// Two numeric columns whose Pearson correlation (over rows where both are present) is above the
/// threshold in absolute value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Correlation {
    pub a: String,
    pub b: String,
    pub r: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub rows: usize,
    pub columns: Vec<ColumnProfile>,
    pub correlations: Vec<Correlation>,
}

pub fn summarise(values: &[f64]) -> Option<NumericSummary> {
    summarise_counting(values).0
}

/// The summary and the number of distinct present values (−0 and 0 are one value), from one sort.
fn summarise_counting(values: &[f64]) -> (Option<NumericSummary>, usize) {
    let present: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    let n = present.len();
    if n == 0 {
        return (None, 0);
    }
    let mean = present.iter().sum::<f64>() / n as f64;
    let (mut m2, mut m3) = (0.0, 0.0);
    for x in &present {
        let d = x - mean;
        m2 += d * d;
        m3 += d * d * d;
    }
    let nf = n as f64;
    let std = (n > 1).then(|| (m2 / (nf - 1.0)).sqrt());
    let mut sorted = present.clone();
    sorted.sort_unstable_by(f64::total_cmp);
    // Sorted by total order, equal values are adjacent (−0 just before 0, and equal to it).
    #[allow(clippy::float_cmp)]
    let distinct = 1 + sorted.windows(2).filter(|w| w[0] != w[1]).count();
    let (q1, q3) = (
        super::scale::quantile(&sorted, 0.25),
        super::scale::quantile(&sorted, 0.75),
    );
    let (lo, hi) = (q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1));
    let outliers = present.iter().filter(|x| **x < lo || **x > hi).count();
    let skew = (n > 2).then(|| {
        if m2 == 0.0 {
            0.0
        } else {
            (nf * (nf - 1.0).sqrt() / (nf - 2.0)) * (m3 / m2.powf(1.5))
        }
    });
    let summary = NumericSummary {
        min: present.iter().copied().fold(f64::INFINITY, f64::min),
        max: present.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        mean,
        std,
        skew,
        outliers,
    };
    (Some(summary), distinct)
}

/// Pearson r over the rows where both values are present (pandas' pairwise `corr`). Two passes over the
/// columns in row order — the same sums, in the same order, as `select::pearson` over the complete pairs
/// — without copying them out (at 5M rows the copies made `analyse` the slowest stage).
fn pairwise_pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    let both = || x.iter().zip(y).filter(|(p, q)| !p.is_nan() && !q.is_nan());
    let (mut n, mut sx, mut sy) = (0usize, -0.0f64, -0.0f64);
    for (a, b) in both() {
        n += 1;
        sx += a;
        sy += b;
    }
    if n < 2 {
        return None;
    }
    let (mx, my) = (sx / n as f64, sy / n as f64);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in both() {
        let (dx, dy) = (a - mx, b - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    Some(sxy / (sxx * syy).sqrt()).filter(|r| r.is_finite())
}

/// A column without missing values: its mean and Σ(x − mean)², summed in row order exactly as
/// `pairwise_pearson` sums them, so both paths give the same bits.
struct Moments {
    mean: f64,
    squares: f64,
}

impl Moments {
    fn of(x: &[f64]) -> Option<Moments> {
        if x.len() < 2 || x.iter().any(|v| v.is_nan()) {
            return None;
        }
        let sum = x.iter().fold(-0.0f64, |s, v| s + v);
        let mean = sum / x.len() as f64;
        let squares = x.iter().fold(0.0f64, |s, v| s + (v - mean) * (v - mean));
        Some(Moments { mean, squares })
    }

    fn pearson(&self, x: &[f64], other: &Moments, y: &[f64]) -> Option<f64> {
        let sxy = x
            .iter()
            .zip(y)
            .fold(0.0f64, |s, (a, b)| s + (a - self.mean) * (b - other.mean));
        Some(sxy / (self.squares * other.squares).sqrt()).filter(|r| r.is_finite())
    }
}

pub fn profile(frame: &Frame, settings: &crate::vocab::Analyse) -> Profile {
    let rows = frame.n_rows();
    let columns = frame
        .columns
        .par_iter()
        .map(|c| {
            let missing = c.data.missing_count();
            let (distinct, numeric, top, rare_labels) = match &c.data {
                ColumnData::Numeric(v) => {
                    let (summary, distinct) = summarise_counting(v);
                    (distinct, summary, Vec::new(), 0)
                }
                ColumnData::Categorical(v) => {
                    let counts = crate::frame::category_counts(v);
                    let distinct = counts.len();
                    let present: usize = counts.values().sum();
                    let rare = counts
                        .values()
                        .filter(|n| (**n as f64) < settings.rare_tolerance * present as f64)
                        .count();
                    let mut ranked: Vec<(String, usize)> =
                        counts.into_iter().map(|(s, n)| (s.to_string(), n)).collect();
                    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                    ranked.truncate(settings.top_categories);
                    (distinct, None, ranked, rare)
                }
            };
            ColumnProfile {
                name: c.name.clone(),
                column_type: c.data.column_type(),
                missing,
                missing_fraction: if rows == 0 { 0.0 } else { missing as f64 / rows as f64 },
                distinct,
                numeric,
                top,
                rare_labels,
            }
        })
        .collect();
    let numeric: Vec<(&str, &[f64])> = frame
        .columns
        .iter()
        .filter_map(|c| match &c.data {
            ColumnData::Numeric(v) => Some((c.name.as_str(), v.values())),
            ColumnData::Categorical(_) => None,
        })
        .collect();
    // Every pair on all cores; collected in pair order, so the result does not depend on scheduling.
    let pairs: Vec<(usize, usize)> = (0..numeric.len())
        .flat_map(|i| (i + 1..numeric.len()).map(move |j| (i, j)))
        .collect();
    // Complete columns' means and squared deviations are the same in every pair: computed once.
    let complete: Vec<Option<Moments>> = numeric.par_iter().map(|(_, x)| Moments::of(x)).collect();
    let correlations: Vec<Correlation> = {
        pairs
            .par_iter()
            .map(|&(i, j)| {
                let ((a, x), (b, y)) = (&numeric[i], &numeric[j]);
                let corr = match (&complete[i], &complete[j]) {
                    (Some(mx), Some(my)) => mx.pearson(x, my, y),
                    _ => pairwise_pearson(x, y),
                };
                corr.filter(|r| r.abs() > settings.correlation_threshold)
                    .map(|r| Correlation {
                        a: (*a).to_string(),
                        b: (*b).to_string(),
                        r,
                    })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .flatten()
            .collect()
    };
    Profile {
        rows,
        columns,
        correlations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_data_has_no_skew_and_constant_data_no_spread() {
        let s = summarise(&[1.0, 2.0, 3.0, f64::NAN]).unwrap();
        assert_eq!(s.skew, Some(0.0));
        assert_eq!((s.min, s.max, s.mean, s.std), (1.0, 3.0, 2.0, Some(1.0)));
        let c = summarise(&[5.0, 5.0, 5.0]).unwrap();
        assert_eq!((c.std, c.skew), (Some(0.0), Some(0.0)));
        assert_eq!(summarise(&[f64::NAN]), None);
    }
}
