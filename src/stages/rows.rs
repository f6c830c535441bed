//! Steps that remove train rows: `drop_missing_rows` (feature-engine's `DropMissingData`) and `trim`
//! (`OutlierTrimmer`, with caps learned as `cap` learns them). Rows are removed from the train split
//! only; test rows and new rows at predict time follow the step's `at_predict` policy, because a
//! fitted pipeline must answer for every row it is given:
//! - `drop_missing_rows`: `"error"` (default; names column and line) or `"keep"` (a later imputer
//!   fills them);
//! - `trim`: `"cap"` (default; values beyond the caps are set to them), `"keep"` or `"error"`.

use serde::{Deserialize, Serialize};

use super::cap;
use crate::error::{Error, Result};
use crate::frame::{ColumnData, Frame};
use crate::vocab::reader::TableReader;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AtPredict {
    Error,
    Keep,
    Cap,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MissingParams {
    pub at_predict: AtPredict,
}

impl MissingParams {
    pub fn parse(t: &mut TableReader<'_, '_>) -> Result<MissingParams> {
        let at_predict = match t.choice("at_predict", &["error", "keep"])?.map(|v| v.value) {
            Some(v) if v == "keep" => AtPredict::Keep,
            _ => AtPredict::Error,
        };
        Ok(MissingParams { at_predict })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrimParams {
    pub caps: cap::Params,
    pub at_predict: AtPredict,
}

impl TrimParams {
    pub const NAMES: [&'static str; 4] = ["method", "tail", "fold", "at_predict"];

    pub fn parse(t: &mut TableReader<'_, '_>) -> Result<TrimParams> {
        let caps = cap::Params::parse(t)?;
        let at_predict = match t.choice("at_predict", &["cap", "keep", "error"])?.map(|v| v.value) {
            Some(v) if v == "keep" => AtPredict::Keep,
            Some(v) if v == "error" => AtPredict::Error,
            _ => AtPredict::Cap,
        };
        Ok(TrimParams { caps, at_predict })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "filter", rename_all = "snake_case")]
pub enum Fitted {
    Missing {
        columns: Vec<String>,
        at_predict: AtPredict,
        train_rows_removed: usize,
    },
    Trim {
        caps: cap::Fitted,
        at_predict: AtPredict,
        train_rows_removed: usize,
    },
}

fn rows_to_keep(frame: &Frame, bad: impl Fn(usize) -> bool) -> Vec<u32> {
    (0..frame.n_rows())
        .filter(|&r| !bad(r))
        .map(|r| u32::try_from(r).unwrap_or(u32::MAX))
        .collect()
}

fn missing_rows(frame: &Frame, columns: &[String]) -> Result<Vec<bool>> {
    let mut bad = vec![false; frame.n_rows()];
    for c in columns {
        let col = frame.column(c).ok_or_else(|| frame.missing_column(c))?;
        match &col.data {
            ColumnData::Numeric(v) => v.iter().zip(bad.iter_mut()).for_each(|(x, b)| *b |= x.is_nan()),
            ColumnData::Categorical(v) => v.iter().zip(bad.iter_mut()).for_each(|(x, b)| *b |= x.is_none()),
        }
    }
    Ok(bad)
}

fn outside(caps: &cap::Fitted, frame: &Frame) -> Result<Vec<bool>> {
    let mut bad = vec![false; frame.n_rows()];
    for c in &caps.columns {
        for (x, b) in frame.numeric(&c.column)?.iter().zip(bad.iter_mut()) {
            *b |= c.high.is_some_and(|h| *x > h) || c.low.is_some_and(|l| *x < l);
        }
    }
    Ok(bad)
}

pub fn fit_missing(p: &MissingParams, train: &Frame, columns: &[String]) -> Result<Fitted> {
    let removed = missing_rows(train, columns)?.iter().filter(|b| **b).count();
    if removed == train.n_rows() {
        return Err(Error::data("every train row has a missing value in these columns").with_hint("impute instead"));
    }
    Ok(Fitted::Missing {
        columns: columns.to_vec(),
        at_predict: p.at_predict,
        train_rows_removed: removed,
    })
}

pub fn fit_trim(p: &TrimParams, train: &Frame, columns: &[String]) -> Result<Fitted> {
    let caps = cap::fit(&p.caps, train, columns)?;
    let removed = outside(&caps, train)?.iter().filter(|b| **b).count();
    if removed == train.n_rows() {
        return Err(Error::data("trimming would remove every train row").with_hint("raise `fold`"));
    }
    Ok(Fitted::Trim {
        caps,
        at_predict: p.at_predict,
        train_rows_removed: removed,
    })
}

impl Fitted {
    /// On the train split: remove the rows.
    #[allow(clippy::needless_pass_by_value)] // same shape as every other apply: frame in, frame out
    pub fn apply_train(&self, frame: Frame) -> Result<Frame> {
        let bad = match self {
            Fitted::Missing { columns, .. } => missing_rows(&frame, columns)?,
            Fitted::Trim { caps, .. } => outside(caps, &frame)?,
        };
        Ok(frame.take(&rows_to_keep(&frame, |r| bad[r])))
    }

    /// On test rows and new rows: the `at_predict` policy.
    pub fn apply(&self, frame: Frame) -> Result<Frame> {
        match self {
            Fitted::Missing {
                columns, at_predict, ..
            } => {
                if *at_predict == AtPredict::Error {
                    let bad = missing_rows(&frame, columns)?;
                    if let Some(r) = bad.iter().position(|b| *b) {
                        let column = columns
                            .iter()
                            .find(|c| {
                                frame.column(c).is_some_and(|col| match &col.data {
                                    ColumnData::Numeric(v) => v[r].is_nan(),
                                    ColumnData::Categorical(v) => v.is_missing(r),
                                })
                            })
                            .cloned()
                            .unwrap_or_default();
                        return Err(Error::data(format!(
                            "column \"{column}\" is missing at line {} of {}; drop_missing_rows only removes train rows",
                            frame.lines[r], frame.source
                        ))
                        .with_hint("set at_predict = \"keep\" and impute after this step, or fill the value")
                        .for_column(&column));
                    }
                }
                Ok(frame)
            }
            Fitted::Trim { caps, at_predict, .. } => match at_predict {
                AtPredict::Cap => caps.apply(frame),
                AtPredict::Keep => Ok(frame),
                AtPredict::Error => {
                    let bad = outside(caps, &frame)?;
                    if let Some(r) = bad.iter().position(|b| *b) {
                        return Err(Error::data(format!(
                            "line {} of {} lies beyond the caps learned on train",
                            frame.lines[r], frame.source
                        ))
                        .with_hint("set at_predict = \"cap\" to clip such values instead"));
                    }
                    Ok(frame)
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{ReadOptions, read_csv};

    #[test]
    fn train_rows_go_and_predict_rows_follow_the_policy() {
        let o = ReadOptions {
            na_values: vec!["NA".into()],
            ..ReadOptions::default()
        };
        let train = read_csv(b"a,b\n1,x\nNA,y\n3,NA\n", &o, "t.csv").unwrap();
        let f = fit_missing(
            &MissingParams {
                at_predict: AtPredict::Error,
            },
            &train,
            &["a".into()],
        )
        .unwrap();
        assert_eq!(f.apply_train(train.clone()).unwrap().lines, [2, 4]);
        let err = f.apply(train.clone()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("column \"a\" is missing at line 3 of t.csv"),
            "{err}"
        );
        let keep = fit_missing(
            &MissingParams {
                at_predict: AtPredict::Keep,
            },
            &train,
            &["a".into()],
        )
        .unwrap();
        assert_eq!(keep.apply(train).unwrap().n_rows(), 3);
    }
}
