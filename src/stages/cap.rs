//! Outlier capping, as feature-engine's `Winsorizer`: caps learned on train per column, then values
//! beyond them are set to the cap. `method` = `"gaussian"` (mean ± fold · population std),
//! `"iqr"` (Q1 − fold · IQR, Q3 + fold · IQR), `"quantiles"` (the fold and 1 − fold quantiles) or
//! `"mad"` (median ± fold · MAD / 0.67449); `tail` = `"right"`, `"left"` or `"both"`; `fold` defaults
//! to 3, 1.5, 0.05 and 3.29 respectively. Missing values stay missing.

use serde::{Deserialize, Serialize};

use super::scale::{TrainStats, present_sorted, quantile};
use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::vocab::reader::TableReader;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Gaussian,
    Iqr,
    Quantiles,
    Mad,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tail {
    Right,
    Left,
    Both,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Params {
    pub method: Method,
    pub tail: Tail,
    pub fold: f64,
}

impl Params {
    pub const NAMES: [&'static str; 3] = ["method", "tail", "fold"];

    pub fn parse(t: &mut TableReader<'_, '_>) -> Result<Params> {
        let method = match t
            .choice("method", &["gaussian", "iqr", "quantiles", "mad"])?
            .map(|v| v.value)
        {
            Some(m) if m == "iqr" => Method::Iqr,
            Some(m) if m == "quantiles" => Method::Quantiles,
            Some(m) if m == "mad" => Method::Mad,
            _ => Method::Gaussian,
        };
        let tail = match t.choice("tail", &["right", "left", "both"])?.map(|v| v.value) {
            Some(m) if m == "left" => Tail::Left,
            Some(m) if m == "both" => Tail::Both,
            _ => Tail::Right,
        };
        let fold = match t.f64("fold")? {
            None => match method {
                Method::Gaussian => 3.0,
                Method::Iqr => 1.5,
                Method::Quantiles => 0.05,
                Method::Mad => 3.29,
            },
            Some(f) if method == Method::Quantiles && !(f.value > 0.0 && f.value <= 0.2) => {
                return Err(Error::spec(
                    "`fold` for quantiles is the tail fraction: above 0 and at most 0.2",
                    Some(f.location),
                ));
            }
            Some(f) if f.value <= 0.0 => {
                return Err(Error::spec("`fold` must be above 0", Some(f.location)));
            }
            Some(f) => f.value,
        };
        Ok(Params { method, tail, fold })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Caps {
    pub column: String,
    pub low: Option<f64>,
    pub high: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fitted {
    pub columns: Vec<Caps>,
}

pub fn fit(params: &Params, train: &Frame, columns: &[String]) -> Result<Fitted> {
    let mut out = Vec::with_capacity(columns.len());
    for name in columns {
        let stats = TrainStats::of(train, name, "to learn caps from")?;
        let f = params.fold;
        let (low, high, spread) = match params.method {
            Method::Gaussian => {
                let std = stats.population_std();
                (stats.mean - f * std, stats.mean + f * std, std)
            }
            Method::Iqr => {
                let (q1, q3) = (stats.quantile(0.25), stats.quantile(0.75));
                let iqr = q3 - q1;
                (q1 - f * iqr, q3 + f * iqr, iqr)
            }
            Method::Quantiles => {
                let (lo, hi) = (stats.quantile(f), stats.quantile(1.0 - f));
                (lo, hi, hi - lo)
            }
            Method::Mad => {
                let median = stats.quantile(0.5);
                let deviations = present_sorted(&stats.sorted.iter().map(|x| (x - median).abs()).collect::<Vec<_>>());
                let mad = quantile(&deviations, 0.5) / 0.67449;
                (median - f * mad, median + f * mad, mad)
            }
        };
        if spread == 0.0 {
            return Err(Error::data(format!(
                "column \"{name}\" does not vary enough in train for {:?} capping (its spread is 0)",
                params.method
            ))
            .with_hint("use another method, or leave the column out of this step"));
        }
        let (low, high) = match params.tail {
            Tail::Right => (None, Some(high)),
            Tail::Left => (Some(low), None),
            Tail::Both => (Some(low), Some(high)),
        };
        out.push(Caps {
            column: name.clone(),
            low,
            high,
        });
    }
    Ok(Fitted { columns: out })
}

impl Fitted {
    pub fn apply(&self, mut frame: Frame) -> Result<Frame> {
        for c in &self.columns {
            frame.update_numeric(&c.column, |values| {
                for v in values.iter_mut().filter(|v| !v.is_nan()) {
                    if let Some(high) = c.high.filter(|h| *v > *h) {
                        *v = high;
                    }
                    if let Some(low) = c.low.filter(|l| *v < *l) {
                        *v = low;
                    }
                }
                Ok(())
            })?;
        }
        Ok(frame)
    }
}
