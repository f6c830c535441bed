//! Scalers, as scikit-learn defines them: `standard_scaler` ((x − mean) / std, population std),
//! `min_max_scaler` (x · scale + min onto `feature_range`), `robust_scaler` ((x − median) / IQR).
//! Statistics come from present train values; missing values stay missing. A zero spread scales by 1
//! (scikit-learn's `_handle_zeros_in_scale`).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::vocab::reader::TableReader;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Standard,
    MinMax,
    Robust,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Params {
    pub kind: Kind,
    /// `min_max_scaler` only: the target range.
    pub feature_range: (f64, f64),
}

impl Params {
    pub const NAMES: [&'static str; 1] = ["feature_range"];

    pub fn parse(t: &mut TableReader<'_, '_>, kind: Kind) -> Result<Params> {
        let src = t.source();
        let mut feature_range = (0.0, 1.0);
        if let Some(v) = t.raw("feature_range") {
            if kind != Kind::MinMax {
                return Err(src.error(v.span(), "`feature_range` is only used by min_max_scaler"));
            }
            let bad = || {
                src.error(
                    v.span(),
                    "`feature_range` must be two numbers [low, high] with low < high",
                )
            };
            let toml::de::DeValue::Array(items) = v.get_ref() else {
                return Err(bad());
            };
            let nums: Vec<f64> = items
                .iter()
                .filter_map(|i| match i.get_ref() {
                    toml::de::DeValue::Float(f) => f.as_str().replace('_', "").parse().ok(),
                    toml::de::DeValue::Integer(n) => n.as_str().replace('_', "").parse::<i64>().ok().map(|x| x as f64),
                    _ => None,
                })
                .collect();
            match nums.as_slice() {
                [lo, hi] if lo < hi && lo.is_finite() && hi.is_finite() => feature_range = (*lo, *hi),
                _ => return Err(bad()),
            }
        }
        Ok(Params { kind, feature_range })
    }
}

/// Per column: x ↦ (x − offset) · factor … written as scikit-learn writes each scaler.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnScale {
    pub column: String,
    /// mean (standard), data min (min-max), median (robust).
    pub center: f64,
    /// std (standard), data range (min-max), IQR (robust); 1 where the spread is 0.
    pub scale: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fitted {
    pub kind: Kind,
    pub feature_range: (f64, f64),
    pub columns: Vec<ColumnScale>,
}

/// The `q` quantile of sorted values, interpolated as numpy's default ("linear") does it, including
/// numpy's two-sided lerp, so the bits agree.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // 0 ≤ q·(n − 1) < n
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    let virtual_index = q * (n - 1) as f64;
    let lo = virtual_index.floor();
    let gamma = virtual_index - lo;
    let lo = lo as usize;
    let hi = (lo + 1).min(n - 1);
    let (a, b) = (sorted[lo], sorted[hi]);
    let diff = b - a;
    if gamma >= 0.5 {
        b - diff * (1.0 - gamma)
    } else {
        a + diff * gamma
    }
}

/// A numeric train column's present values, sorted, and its mean and sum of squared deviations (summed
/// in row order) — the statistics the scalers, cappers and tail imputers learn from. `purpose` ends
/// the message when the column has no value ("to scale by", …).
pub struct TrainStats {
    pub sorted: Vec<f64>,
    pub mean: f64,
    pub sum_sq_dev: f64,
}

impl TrainStats {
    pub fn of(train: &Frame, name: &str, purpose: &str) -> Result<TrainStats> {
        let values = train.numeric(name)?;
        let sorted = present_sorted(values);
        if sorted.is_empty() {
            return Err(Error::data(format!(
                "column \"{name}\" has no values in the train split {purpose}"
            )));
        }
        let n = sorted.len() as f64;
        let mean = values.iter().filter(|x| !x.is_nan()).sum::<f64>() / n;
        let sum_sq_dev = values
            .iter()
            .filter(|x| !x.is_nan())
            .map(|x| (x - mean) * (x - mean))
            .sum::<f64>();
        Ok(TrainStats {
            sorted,
            mean,
            sum_sq_dev,
        })
    }

    pub fn n(&self) -> f64 {
        self.sorted.len() as f64
    }

    /// Population (ddof = 0) standard deviation.
    pub fn population_std(&self) -> f64 {
        (self.sum_sq_dev / self.n()).sqrt()
    }

    /// Sample (ddof = 1) standard deviation.
    pub fn sample_std(&self) -> f64 {
        (self.sum_sq_dev / (self.n() - 1.0)).sqrt()
    }

    pub fn quantile(&self, q: f64) -> f64 {
        quantile(&self.sorted, q)
    }
}

pub fn present_sorted(values: &[f64]) -> Vec<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    v.sort_by(f64::total_cmp);
    v
}

pub fn fit(params: &Params, train: &Frame, columns: &[String]) -> Result<Fitted> {
    let mut out = Vec::with_capacity(columns.len());
    for name in columns {
        let stats = TrainStats::of(train, name, "to scale by")?;
        let (center, spread) = match params.kind {
            Kind::Standard => (stats.mean, stats.population_std()),
            Kind::MinMax => (stats.sorted[0], stats.sorted[stats.sorted.len() - 1] - stats.sorted[0]),
            Kind::Robust => (stats.quantile(0.5), stats.quantile(0.75) - stats.quantile(0.25)),
        };
        let scale = if spread == 0.0 { 1.0 } else { spread };
        out.push(ColumnScale {
            column: name.clone(),
            center,
            scale,
        });
    }
    Ok(Fitted {
        kind: params.kind,
        feature_range: params.feature_range,
        columns: out,
    })
}

impl Fitted {
    pub fn apply(&self, mut frame: Frame) -> Result<Frame> {
        for c in &self.columns {
            frame.update_numeric(&c.column, |values| {
                match self.kind {
                    Kind::Standard | Kind::Robust => {
                        for v in values.iter_mut() {
                            *v = (*v - c.center) / c.scale;
                        }
                    }
                    Kind::MinMax => {
                        // scikit-learn: scale_ = (b − a) / range, min_ = a − data_min · scale_, x · scale_ + min_.
                        let (a, b) = self.feature_range;
                        let scale = (b - a) / c.scale;
                        let min = a - c.center * scale;
                        for v in values.iter_mut() {
                            *v = *v * scale + min;
                        }
                    }
                }
                Ok(())
            })?;
        }
        Ok(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_linearly() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&v, 0.5), 2.5);
        assert_eq!(quantile(&v, 0.0), 1.0);
        assert_eq!(quantile(&v, 1.0), 4.0);
        assert_eq!(quantile(&v, 0.25), 1.75);
    }
}
