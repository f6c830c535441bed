//! Discretisation: numbers become bin indices 0..k−1, as feature-engine's discretisers.
//!
//! `method = "equal_width"` (`bins`, default 10): edges at equal steps between the train min and max
//! (`EqualWidthDiscretiser`, numpy's `linspace`); `"equal_frequency"` (`q`, default 10): edges at the
//! train quantiles, repeated edges dropped (`EqualFrequencyDiscretiser`, pandas' `qcut`);
//! `"explicit"` (`edges`, increasing). Intervals are closed on the right; the outer edges are −∞ and
//! +∞, so every value — also a new one beyond the train range — falls in a bin. Missing values stay
//! missing.

use serde::{Deserialize, Serialize};

use super::scale::{present_sorted, quantile};
use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::vocab::reader::TableReader;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Params {
    EqualWidth { bins: u64 },
    EqualFrequency { q: u64 },
    Explicit { edges: Vec<f64> },
}

impl Params {
    pub const NAMES: [&'static str; 4] = ["method", "bins", "q", "edges"];

    pub fn parse(t: &mut TableReader<'_, '_>) -> Result<Params> {
        let method = t.choice("method", &["equal_width", "equal_frequency", "explicit"])?;
        let count = |t: &mut TableReader<'_, '_>, key: &str| -> Result<u64> {
            match t.u64(key)? {
                None => Ok(10),
                Some(v) if v.value >= 2 => Ok(v.value),
                Some(v) => Err(Error::spec(format!("`{key}` must be at least 2"), Some(v.location))),
            }
        };
        match method.as_ref().map(|m| m.value.as_str()) {
            Some("equal_frequency") => Ok(Params::EqualFrequency { q: count(t, "q")? }),
            Some("explicit") => {
                let src = t.source();
                let Some(raw) = t.raw("edges") else {
                    return Err(t.missing("edges", "the inner bin edges, increasing, e.g. [1000, 5000, 10000]"));
                };
                let bad = || src.error(raw.span(), "`edges` must be an increasing list of numbers");
                let toml::de::DeValue::Array(items) = raw.get_ref() else {
                    return Err(bad());
                };
                let edges: Vec<f64> = items
                    .iter()
                    .map(|i| match i.get_ref() {
                        toml::de::DeValue::Float(f) => f.as_str().replace('_', "").parse().ok(),
                        toml::de::DeValue::Integer(n) => {
                            n.as_str().replace('_', "").parse::<i64>().ok().map(|x| x as f64)
                        }
                        _ => None,
                    })
                    .collect::<Option<Vec<f64>>>()
                    .ok_or_else(bad)?;
                if edges.is_empty() || edges.windows(2).any(|w| w[0] >= w[1]) || edges.iter().any(|e| !e.is_finite()) {
                    return Err(bad());
                }
                Ok(Params::Explicit { edges })
            }
            _ => Ok(Params::EqualWidth {
                bins: count(t, "bins")?,
            }),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fitted {
    /// Per column, the inner edges (the outer ones are −∞ and +∞).
    pub columns: Vec<(String, Vec<f64>)>,
}

pub fn fit(params: &Params, train: &Frame, columns: &[String]) -> Result<Fitted> {
    let mut out = Vec::with_capacity(columns.len());
    for name in columns {
        let sorted = present_sorted(train.numeric(name)?);
        if sorted.is_empty() {
            return Err(Error::data(format!(
                "column \"{name}\" has no values in the train split to cut into bins"
            )));
        }
        let edges = match params {
            Params::EqualWidth { bins } => {
                let (lo, hi) = (sorted[0], sorted[sorted.len() - 1]);
                let step = (hi - lo) / *bins as f64;
                let mut e: Vec<f64> = (1..*bins).map(|i| i as f64 * step + lo).collect();
                e.dedup(); // a constant column has one bin
                e
            }
            Params::EqualFrequency { q } => {
                let mut e: Vec<f64> = (0..=*q)
                    .map(|i| quantile(&sorted, i as f64 * (1.0 / *q as f64)))
                    .collect();
                e.dedup();
                // The first and last become −∞ and +∞.
                e[1..e.len().saturating_sub(1).max(1)].to_vec()
            }
            Params::Explicit { edges } => edges.clone(),
        };
        out.push((name.clone(), edges));
    }
    Ok(Fitted { columns: out })
}

impl Fitted {
    pub fn apply(&self, mut frame: Frame) -> Result<Frame> {
        for (column, edges) in &self.columns {
            frame.update_numeric(column, |values| {
                for v in values.iter_mut().filter(|v| !v.is_nan()) {
                    // Right-closed bins: the index is the number of edges strictly below the value.
                    *v = edges.partition_point(|e| e < v) as f64;
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
    use crate::frame::{ReadOptions, read_csv};

    #[test]
    fn bins_are_closed_on_the_right_and_open_ended() {
        let f = read_csv(b"x\n0\n10\n", &ReadOptions::default(), "t.csv").unwrap();
        let fitted = fit(&Params::EqualWidth { bins: 2 }, &f, &["x".into()]).unwrap();
        assert_eq!(fitted.columns[0].1, [5.0]);
        let new = read_csv(
            b"x\n-100\n5\n5.5\n1000\nNA\n",
            &ReadOptions {
                na_values: vec!["NA".into()],
                ..ReadOptions::default()
            },
            "n.csv",
        )
        .unwrap();
        let out = fitted.apply(new).unwrap();
        let v = out.numeric("x").unwrap();
        assert_eq!(&v[..4], &[0.0, 0.0, 1.0, 1.0]);
        assert!(v[4].is_nan());
    }
}
