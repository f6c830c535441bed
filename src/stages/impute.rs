//! Imputers: median, mean, most frequent, constant — each with an optional missing indicator.
//!
//! Matches scikit-learn's `SimpleImputer` and feature-engine's `MeanMedianImputer` / `CategoricalImputer`
//! / `ArbitraryNumberImputer`: statistics come from non-missing train values; ties of most-frequent
//! go to the smallest value (as `pandas.Series.mode()[0]`); indicators `<column>_na` are added, at the
//! end, only for columns that had missing values in train (as `missing_only=True`).

use std::collections::BTreeMap;
use std::sync::Arc;

use polars_arrow::bitmap::Bitmap;
use serde::{Deserialize, Serialize};
use toml::de::DeValue;

use crate::error::{Error, Result};
use crate::frame::{Column, ColumnData, ColumnType, Frame, Numbers};
use crate::vocab::reader::TableReader;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    Median,
    Mean,
    MostFrequent,
    Constant,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Params {
    pub add_indicator: bool,
    pub fill_value: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    Number(f64),
    Text(String),
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Number(x) => write!(f, "{x}"),
            Value::Text(s) => write!(f, "\"{s}\""),
        }
    }
}

impl Params {
    pub fn parse(t: &mut TableReader<'_, '_>, strategy: Strategy) -> Result<Params> {
        let add_indicator = t.bool("add_indicator")?.unwrap_or(false);
        let fill_value = if strategy == Strategy::Constant {
            let src = t.source();
            let Some(v) = t.raw("fill_value") else {
                return Err(t.missing(
                    "fill_value",
                    "the value that replaces missing ones: a number or a string",
                ));
            };
            Some(match v.get_ref() {
                DeValue::String(s) => Value::Text(s.to_string()),
                DeValue::Integer(i) => Value::Number(
                    i64::from_str_radix(&i.as_str().replace('_', ""), i.radix())
                        .map_err(|_| src.error(v.span(), "`fill_value` is out of range"))? as f64,
                ),
                DeValue::Float(f) => Value::Number(
                    f.as_str()
                        .replace('_', "")
                        .parse::<f64>()
                        .ok()
                        .filter(|x| x.is_finite())
                        .ok_or_else(|| src.error(v.span(), "`fill_value` must be a finite number or a string"))?,
                ),
                _ => return Err(src.error(v.span(), "`fill_value` must be a number or a string")),
            })
        } else {
            None
        };
        Ok(Params {
            add_indicator,
            fill_value,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fill {
    pub column: String,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fitted {
    pub strategy: String,
    pub fills: Vec<Fill>,
    /// Columns that get a `<column>_na` indicator.
    pub indicators: Vec<String>,
}

/// Median as pandas computes it: the middle value, or the mean of the two middle values.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    // (a + b) / 2 as pandas computes it, not f64::midpoint: the peer's rounding is the yardstick.
    #[allow(clippy::manual_midpoint)]
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        f64::midpoint(v[n / 2 - 1], v[n / 2])
    })
}

/// Mean of the non-missing values, summed in row order.
pub fn mean(values: &[f64]) -> Option<f64> {
    let (sum, n) = values
        .iter()
        .filter(|x| !x.is_nan())
        .fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    (n > 0).then(|| sum / n as f64)
}

/// Key that orders f64 like `total_cmp`, for ordered maps of numbers (a bit-level reinterpretation).
#[allow(clippy::cast_possible_wrap, clippy::cast_sign_loss)]
fn order_key(x: f64) -> i64 {
    let bits = x.to_bits() as i64;
    bits ^ ((((bits >> 63) as u64) >> 1) as i64)
}

fn most_frequent(data: &ColumnData) -> Option<Value> {
    match data {
        ColumnData::Numeric(v) => {
            let mut counts: BTreeMap<i64, (usize, f64)> = BTreeMap::new();
            for &x in v.iter().filter(|x| !x.is_nan()) {
                // -0.0 and 0.0 are one value, as in pandas.
                let x = if x == 0.0 { 0.0 } else { x };
                counts.entry(order_key(x)).or_insert((0, x)).0 += 1;
            }
            // Ascending order + strict ">" keeps the smallest value among ties.
            let mut best: Option<(usize, f64)> = None;
            for (n, x) in counts.into_values() {
                if best.is_none_or(|(bn, _)| n > bn) {
                    best = Some((n, x));
                }
            }
            best.map(|(_, x)| Value::Number(x))
        }
        ColumnData::Categorical(v) => {
            let counts = crate::frame::category_counts(v);
            let mut best: Option<(usize, &str)> = None;
            for (s, n) in counts {
                if best.is_none_or(|(bn, _)| n > bn) {
                    best = Some((n, s));
                }
            }
            best.map(|(_, s)| Value::Text(s.to_string()))
        }
    }
}

pub fn fit(strategy: Strategy, params: &Params, train: &Frame, columns: &[String]) -> Result<Fitted> {
    let mut fills = Vec::with_capacity(columns.len());
    let mut indicators = Vec::new();
    for name in columns {
        let Some(col) = train.column(name) else {
            return Err(train.missing_column(name));
        };
        let no_values = || {
            Error::data(format!(
                "column \"{name}\" has no values in the train split, so its {strategy:?} is undefined"
            ))
            .with_hint("drop the column, or impute it with `constant`")
        };
        let value = match (strategy, &col.data) {
            (Strategy::Median, ColumnData::Numeric(v)) => Value::Number(median(v).ok_or_else(no_values)?),
            (Strategy::Mean, ColumnData::Numeric(v)) => Value::Number(mean(v).ok_or_else(no_values)?),
            (Strategy::MostFrequent, data) => most_frequent(data).ok_or_else(no_values)?,
            (Strategy::Constant, data) => {
                let Some(v) = params.fill_value.clone() else {
                    return Err(Error::internal("constant imputer without fill_value"));
                };
                match (&v, data.column_type()) {
                    (Value::Number(_), ColumnType::Numeric) | (Value::Text(_), ColumnType::Categorical) => v,
                    (_, ty) => {
                        return Err(Error::data(format!(
                            "fill_value {v} does not fit column \"{name}\", which is {}",
                            ty.name()
                        ))
                        .with_hint(
                            "use a number for numeric columns and a string for categorical ones, in separate steps",
                        ));
                    }
                }
            }
            (_, ColumnData::Categorical(_)) => {
                return Err(Error::data(format!(
                    "column \"{name}\" is categorical; {strategy:?} needs numbers"
                )));
            }
        };
        if params.add_indicator && col.data.missing_count() > 0 {
            indicators.push(name.clone());
        }
        fills.push(Fill {
            column: name.clone(),
            value,
        });
    }
    for ind in &indicators {
        let new = format!("{ind}_na");
        if train.column(&new).is_some() {
            return Err(Error::data(format!(
                "the missing indicator for \"{ind}\" would be \"{new}\", which already exists"
            ))
            .with_hint("rename the existing column or turn add_indicator off"));
        }
    }
    let strategy = match strategy {
        Strategy::Median => "median",
        Strategy::Mean => "mean",
        Strategy::MostFrequent => "most_frequent",
        Strategy::Constant => "constant",
    };
    Ok(Fitted {
        strategy: strategy.to_string(),
        fills,
        indicators,
    })
}

/// A standalone missing indicator (feature-engine's `AddMissingIndicator`): `<column>_na` for every
/// selected column that has missing values in train; nothing is filled.
pub fn indicators_only(train: &Frame, columns: &[String]) -> Result<Fitted> {
    let mut indicators = Vec::new();
    for name in columns {
        let col = train.column(name).ok_or_else(|| train.missing_column(name))?;
        if col.data.missing_count() > 0 {
            if train.column(&format!("{name}_na")).is_some() {
                return Err(Error::data(format!(
                    "the missing indicator \"{name}_na\" already exists"
                )));
            }
            indicators.push(name.clone());
        }
    }
    Ok(Fitted {
        strategy: "missing_indicator".into(),
        fills: Vec::new(),
        indicators,
    })
}

impl Fitted {
    pub fn apply(&self, mut frame: Frame) -> Result<Frame> {
        let mut indicator_columns = Vec::with_capacity(self.indicators.len());
        for ind in &self.indicators {
            let col = frame.column(ind).ok_or_else(|| frame.missing_column(ind))?;
            // One bit a row (an indicator column).
            let flags: Bitmap = match &col.data {
                ColumnData::Numeric(v) => (0..v.len()).map(|r| v.value(r).is_nan()).collect(),
                ColumnData::Categorical(v) => (0..v.len()).map(|r| v.is_missing(r)).collect(),
            };
            indicator_columns.push(Column {
                name: format!("{ind}_na"),
                data: ColumnData::Numeric(Numbers::indicator(flags)),
            });
        }
        for fill in &self.fills {
            let idx = frame
                .index_of(&fill.column)
                .ok_or_else(|| frame.missing_column(&fill.column))?;
            match (&mut frame.columns[idx].data, &fill.value) {
                (ColumnData::Numeric(v), Value::Number(x)) => v.update(|values| {
                    for cell in values.iter_mut().filter(|c| c.is_nan()) {
                        *cell = *x;
                    }
                }),
                (ColumnData::Categorical(v), Value::Text(s)) => {
                    if v.missing_count() > 0 {
                        *v = v.recode(|c| Arc::from(c), Some(s));
                    }
                }
                (data, _) => {
                    return Err(Error::data(format!(
                        "column \"{}\" is {} here but was {} when the imputer was fitted",
                        fill.column,
                        data.column_type().name(),
                        if matches!(fill.value, Value::Number(_)) {
                            "numeric"
                        } else {
                            "categorical"
                        }
                    )));
                }
            }
        }
        frame.columns.extend(indicator_columns);
        Ok(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{ReadOptions, read_csv};

    fn frame(csv: &str) -> Frame {
        read_csv(csv.as_bytes(), &ReadOptions::default(), "t.csv").unwrap()
    }

    #[test]
    fn median_of_even_count_averages_the_middle_pair() {
        assert_eq!(median(&[4.0, f64::NAN, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[f64::NAN]), None);
    }

    #[test]
    fn most_frequent_tie_goes_to_smallest() {
        let f = frame("a,b\n3,y\n1,x\n3,x\n1,y\n,\n");
        let p = Params {
            add_indicator: true,
            fill_value: None,
        };
        let fitted = fit(Strategy::MostFrequent, &p, &f, &["a".into(), "b".into()]).unwrap();
        assert_eq!(fitted.fills[0].value, Value::Number(1.0));
        assert_eq!(fitted.fills[1].value, Value::Text("x".into()));
        let out = fitted.apply(f).unwrap();
        assert_eq!(out.names().collect::<Vec<_>>(), ["a", "b", "a_na", "b_na"]);
        assert_eq!(out.numeric("a_na").unwrap(), &[0.0, 0.0, 0.0, 0.0, 1.0]);
        assert_eq!(out.numeric("a").unwrap()[4..], [1.0]);
    }

    #[test]
    fn constant_with_wrong_type_is_an_error() {
        let f = frame("a\nx\n\n");
        let p = Params {
            add_indicator: false,
            fill_value: Some(Value::Number(0.0)),
        };
        let err = fit(Strategy::Constant, &p, &f, &["a".into()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "fill_value 0 does not fit column \"a\", which is categorical"
        );
    }

    #[test]
    fn all_missing_column_cannot_be_median_imputed() {
        let f = frame("a,b\n,1\n,2\n");
        let p = Params {
            add_indicator: false,
            fill_value: None,
        };
        assert!(fit(Strategy::Median, &p, &f, &["a".into()]).is_err());
    }
}
