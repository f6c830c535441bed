//! The data profile: per column type, missing count and fraction, distinct count, min/max/mean/std/skew
//! (numeric) and the most frequent categories, computed on the train split (what every fit sees).
//!
//! Statistics follow pandas: `std` with ddof = 1, `skew` is the adjusted Fisher–Pearson coefficient
//! (`Series.skew()`); sums run in row order so results never depend on threads.

use serde::{Deserialize, Serialize};

use crate::frame::{ColumnData, ColumnType, Frame};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumericSummary {
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    pub std: Option<f64>,
    pub skew: Option<f64>,
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
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub rows: usize,
    pub columns: Vec<ColumnProfile>,
}

pub fn summarise(values: &[f64]) -> Option<NumericSummary> {
    let present: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    let n = present.len();
    if n == 0 {
        return None;
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
    let skew = (n > 2).then(|| {
        if m2 == 0.0 {
            0.0
        } else {
            (nf * (nf - 1.0).sqrt() / (nf - 2.0)) * (m3 / m2.powf(1.5))
        }
    });
    Some(NumericSummary {
        min: present.iter().copied().fold(f64::INFINITY, f64::min),
        max: present.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        mean,
        std,
        skew,
    })
}

pub fn profile(frame: &Frame, top_categories: usize) -> Profile {
    let rows = frame.n_rows();
    let columns = frame
        .columns
        .iter()
        .map(|c| {
            let missing = c.data.missing_count();
            let (distinct, numeric, top) = match &c.data {
                ColumnData::Numeric(v) => {
                    let mut bits: Vec<u64> = v
                        .iter()
                        .filter(|x| !x.is_nan())
                        .map(|x| if *x == 0.0 { 0 } else { x.to_bits() })
                        .collect();
                    bits.sort_unstable();
                    bits.dedup();
                    (bits.len(), summarise(v), Vec::new())
                }
                ColumnData::Categorical(v) => {
                    let counts = crate::frame::category_counts(v);
                    let distinct = counts.len();
                    let mut ranked: Vec<(String, usize)> =
                        counts.into_iter().map(|(s, n)| (s.to_string(), n)).collect();
                    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                    ranked.truncate(top_categories);
                    (distinct, None, ranked)
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
            }
        })
        .collect();
    Profile { rows, columns }
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
