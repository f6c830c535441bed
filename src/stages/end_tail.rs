//! End-of-tail imputation, as feature-engine's `EndTailImputer`: missing values are replaced by a value
//! at the end of the train distribution — `method = "gaussian"`: mean ± fold · std (sample std),
//! `"iqr"`: Q3 + fold · IQR (or Q1 − fold · IQR for the left tail), `"max"`: fold · max — on the
//! `tail` chosen (`"right"` default or `"left"`); `fold` defaults to 3. An optional missing indicator
//! works as for the other imputers.

use serde::{Deserialize, Serialize};

use super::impute::{Fill, Fitted, Value};
use super::scale::TrainStats;
use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::vocab::reader::TableReader;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Gaussian,
    Iqr,
    Max,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Params {
    pub method: Method,
    pub left: bool,
    pub fold: f64,
    pub add_indicator: bool,
}

impl Params {
    pub const NAMES: [&'static str; 4] = ["method", "tail", "fold", "add_indicator"];

    pub fn parse(t: &mut TableReader<'_, '_>) -> Result<Params> {
        let method = match t.choice("method", &["gaussian", "iqr", "max"])?.map(|m| m.value) {
            Some(m) if m == "iqr" => Method::Iqr,
            Some(m) if m == "max" => Method::Max,
            _ => Method::Gaussian,
        };
        let left = t.choice("tail", &["right", "left"])?.is_some_and(|v| v.value == "left");
        if left && method == Method::Max {
            return Err(
                Error::spec("method \"max\" has no left tail", Some(t.location())).with_hint("use tail = \"right\"")
            );
        }
        let fold = match t.f64("fold")? {
            None => 3.0,
            Some(f) if f.value > 0.0 => f.value,
            Some(f) => return Err(Error::spec("`fold` must be above 0", Some(f.location))),
        };
        let add_indicator = t.bool("add_indicator")?.unwrap_or(false);
        Ok(Params {
            method,
            left,
            fold,
            add_indicator,
        })
    }
}

pub fn fit(params: &Params, train: &Frame, columns: &[String]) -> Result<Fitted> {
    let mut fills = Vec::with_capacity(columns.len());
    let mut indicators = Vec::new();
    for name in columns {
        let stats = TrainStats::of(train, name, "so its tail is undefined")?;
        let f = params.fold;
        let value = match params.method {
            Method::Gaussian => {
                let std = stats.sample_std();
                if params.left {
                    stats.mean - f * std
                } else {
                    stats.mean + f * std
                }
            }
            Method::Iqr => {
                let (q1, q3) = (stats.quantile(0.25), stats.quantile(0.75));
                if params.left {
                    q1 - (q3 - q1) * f
                } else {
                    q3 + (q3 - q1) * f
                }
            }
            Method::Max => stats.sorted[stats.sorted.len() - 1] * f,
        };
        if !value.is_finite() {
            return Err(Error::data(format!(
                "column \"{name}\" needs at least two train values for a gaussian tail"
            )));
        }
        if params.add_indicator && train.numeric(name)?.iter().any(|x| x.is_nan()) {
            indicators.push(name.clone());
        }
        fills.push(Fill {
            column: name.clone(),
            value: Value::Number(value),
        });
    }
    Ok(Fitted {
        strategy: "end_tail".into(),
        fills,
        indicators,
    })
}
