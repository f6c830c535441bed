//! Feature creation from numeric columns, as feature-engine's `MathFeatures` and `RelativeFeatures`.
//!
//! `combine`: one new column from the selected columns, row by row — `function` = `"sum"`, `"mean"`,
//! `"prod"`, `"min"`, `"max"` or `"std"` (sample std) — named `new_name` or `<function>_<a>_<b>…`.
//! `relative`: for each selected column and each of `functions` (`"sub"`, `"div"`, `"add"`, `"mul"`),
//! a new column `<column>_<function>_<reference>` against the `reference` column (all columns of the
//! first function, then of the next, as feature-engine orders them). New columns are appended; a missing input gives a missing output; division by zero is an error naming the line.

#![allow(clippy::float_cmp)] // exact zero is what division by zero means

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::frame::{Column, ColumnData, Frame};
use crate::vocab::reader::TableReader;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CombineParams {
    pub function: String,
    pub new_name: Option<String>,
}

pub const COMBINE: [&str; 6] = ["sum", "mean", "prod", "min", "max", "std"];
pub const RELATIVE: [&str; 4] = ["sub", "div", "add", "mul"];

impl CombineParams {
    pub const NAMES: [&'static str; 2] = ["function", "new_name"];

    pub fn parse(t: &mut TableReader<'_, '_>) -> Result<CombineParams> {
        let function = t
            .choice("function", &COMBINE)?
            .ok_or_else(|| t.missing("function", "sum, mean, prod, min, max or std"))?;
        Ok(CombineParams {
            function: function.value,
            new_name: t.str("new_name")?.map(|n| n.value),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelativeParams {
    pub reference: String,
    pub functions: Vec<String>,
}

impl RelativeParams {
    pub const NAMES: [&'static str; 2] = ["reference", "functions"];

    pub fn parse(t: &mut TableReader<'_, '_>) -> Result<RelativeParams> {
        let reference = t.req_str("reference", "the column the others are compared with")?.value;
        let list = t
            .str_list("functions")?
            .ok_or_else(|| t.missing("functions", "a list of sub, div, add, mul"))?;
        let mut functions = Vec::new();
        for f in list {
            if !RELATIVE.contains(&f.value.as_str()) {
                return Err(Error::spec(
                    format!("unknown function \"{}\" (known: {})", f.value, RELATIVE.join(", ")),
                    Some(f.location),
                ));
            }
            functions.push(f.value);
        }
        Ok(RelativeParams { reference, functions })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fitted {
    Combine {
        function: String,
        inputs: Vec<String>,
        output: String,
    },
    Relative {
        reference: String,
        functions: Vec<String>,
        inputs: Vec<String>,
    },
}

fn check_new(frame: &Frame, name: &str) -> Result<()> {
    if frame.column(name).is_some() {
        return Err(
            Error::data(format!("the new column \"{name}\" already exists")).with_hint("choose another new_name")
        );
    }
    Ok(())
}

pub fn fit_combine(p: &CombineParams, train: &Frame, columns: &[String]) -> Result<Fitted> {
    if columns.len() < 2 {
        return Err(Error::data(format!(
            "combine needs at least two columns, the step selects {}",
            columns.len()
        )));
    }
    let output = p
        .new_name
        .clone()
        .unwrap_or_else(|| format!("{}_{}", p.function, columns.join("_")));
    check_new(train, &output)?;
    Ok(Fitted::Combine {
        function: p.function.clone(),
        inputs: columns.to_vec(),
        output,
    })
}

pub fn fit_relative(p: &RelativeParams, train: &Frame, columns: &[String]) -> Result<Fitted> {
    train.numeric(&p.reference)?;
    let inputs: Vec<String> = columns.iter().filter(|c| **c != p.reference).cloned().collect();
    for c in &inputs {
        for f in &p.functions {
            check_new(train, &format!("{c}_{f}_{}", p.reference))?;
        }
    }
    let fitted = Fitted::Relative {
        reference: p.reference.clone(),
        functions: p.functions.clone(),
        inputs,
    };
    // Division by zero in train is reported now, not at the first apply.
    fitted.apply(train.clone())?;
    Ok(fitted)
}

fn row_function(function: &str, xs: &[f64]) -> f64 {
    let n = xs.len() as f64;
    match function {
        "sum" => xs.iter().sum(),
        "mean" => xs.iter().sum::<f64>() / n,
        "prod" => xs.iter().product(),
        "min" => xs.iter().copied().fold(f64::INFINITY, f64::min),
        "max" => xs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        _ => {
            let m = xs.iter().sum::<f64>() / n;
            (xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0)).sqrt()
        }
    }
}

impl Fitted {
    pub fn apply(&self, mut frame: Frame) -> Result<Frame> {
        match self {
            Fitted::Combine {
                function,
                inputs,
                output,
            } => {
                let cols = inputs.iter().map(|c| frame.numeric(c)).collect::<Result<Vec<_>>>()?;
                let mut row = vec![0.0; cols.len()];
                let values = (0..frame.n_rows())
                    .map(|r| {
                        for (x, c) in row.iter_mut().zip(&cols) {
                            *x = c[r];
                        }
                        if row.iter().any(|x| x.is_nan()) {
                            f64::NAN
                        } else {
                            row_function(function, &row)
                        }
                    })
                    .collect();
                frame.columns.push(Column {
                    name: output.clone(),
                    data: ColumnData::Numeric(values),
                });
            }
            Fitted::Relative {
                reference,
                functions,
                inputs,
            } => {
                let refs = frame.numeric(reference)?.to_vec();
                let mut new = Vec::new();
                // Function-major order, as feature-engine names and appends them.
                for f in functions {
                    for c in inputs {
                        let xs = frame.numeric(c)?;
                        let mut out = Vec::with_capacity(xs.len());
                        for (r, (x, y)) in xs.iter().zip(&refs).enumerate() {
                            out.push(match f.as_str() {
                                "sub" => x - y,
                                "add" => x + y,
                                "mul" => x * y,
                                _ if *y == 0.0 => {
                                    return Err(Error::data(format!(
                                        "division by zero: \"{reference}\" is 0 at line {} of {}",
                                        frame.lines[r], frame.source
                                    ))
                                    .with_hint("impute or shift the reference column, or leave \"div\" out"));
                                }
                                _ => x / y,
                            });
                        }
                        new.push(Column {
                            name: format!("{c}_{f}_{reference}"),
                            data: ColumnData::Numeric(out.into()),
                        });
                    }
                }
                frame.columns.extend(new);
            }
        }
        Ok(frame)
    }
}
