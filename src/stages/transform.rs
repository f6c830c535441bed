//! Variable transforms, as feature-engine's `LogTransformer` / `LogCpTransformer` (`log`, with `base`
//! "e" or "10" and an optional constant `offset` added first), `PowerTransformer` (`power`, x^exp,
//! default exp 0.5) and `ReciprocalTransformer` (`reciprocal`, 1/x). They learn nothing but which
//! columns they apply to; a value outside the function's domain is an error naming column, line and
//! value, in train and at apply time alike. Missing values stay missing.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::frame::{ColumnData, Frame};
use crate::vocab::reader::TableReader;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "function", rename_all = "snake_case")]
pub enum Function {
    Log { base10: bool, offset: f64 },
    Power { exp: f64 },
    Reciprocal,
}

impl Function {
    pub fn parse_log(t: &mut TableReader<'_, '_>) -> Result<Function> {
        let base10 = t.choice("base", &["e", "10"])?.is_some_and(|b| b.value == "10");
        let offset = t.f64("offset")?.map_or(0.0, |o| o.value);
        Ok(Function::Log { base10, offset })
    }

    pub fn parse_power(t: &mut TableReader<'_, '_>) -> Result<Function> {
        Ok(Function::Power {
            exp: t.f64("exp")?.map_or(0.5, |e| e.value),
        })
    }

    fn domain_error(&self, x: f64) -> Option<&'static str> {
        match self {
            Function::Log { offset, .. } if x + offset <= 0.0 => Some("log needs values (plus offset) above 0"),
            Function::Power { exp } if x < 0.0 && exp.fract() != 0.0 => {
                Some("a fractional power needs values of at least 0")
            }
            Function::Reciprocal if x == 0.0 => Some("reciprocal needs values other than 0"),
            _ => None,
        }
    }

    fn eval(&self, x: f64) -> f64 {
        match self {
            Function::Log { base10: false, offset } => (x + offset).ln(),
            Function::Log { base10: true, offset } => (x + offset).log10(),
            Function::Power { exp } => x.powf(*exp),
            Function::Reciprocal => 1.0 / x,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fitted {
    pub function: Function,
    pub columns: Vec<String>,
}

fn check(function: &Function, frame: &Frame, column: &str) -> Result<()> {
    for (r, &x) in frame.numeric(column)?.iter().enumerate() {
        if let Some(why) = function.domain_error(x).filter(|_| !x.is_nan()) {
            return Err(Error::data(format!(
                "{why}, but column \"{column}\" holds {x} at line {} of {}",
                frame.lines[r], frame.source
            ))
            .with_hint("add an offset, cap or impute the column first, or leave it out of this step"));
        }
    }
    Ok(())
}

pub fn fit(function: &Function, train: &Frame, columns: &[String]) -> Result<Fitted> {
    for c in columns {
        check(function, train, c)?;
    }
    Ok(Fitted {
        function: function.clone(),
        columns: columns.to_vec(),
    })
}

impl Fitted {
    pub fn apply(&self, mut frame: Frame) -> Result<Frame> {
        for c in &self.columns {
            check(&self.function, &frame, c)?;
            let idx = frame.index_of(c).ok_or_else(|| frame.missing_column(c))?;
            if let ColumnData::Numeric(values) = &mut frame.columns[idx].data {
                values.update(|values| {
                    for v in values.iter_mut() {
                        *v = self.function.eval(*v);
                    }
                });
            }
        }
        Ok(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{ReadOptions, read_csv};

    #[test]
    fn values_outside_the_domain_are_named_with_their_line() {
        let f = read_csv(b"a\n1\n0\n", &ReadOptions::default(), "t.csv").unwrap();
        let err = fit(
            &Function::Log {
                base10: false,
                offset: 0.0,
            },
            &f,
            &["a".into()],
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "log needs values (plus offset) above 0, but column \"a\" holds 0 at line 3 of t.csv"
        );
        let shifted = fit(
            &Function::Log {
                base10: true,
                offset: 1.0,
            },
            &f,
            &["a".into()],
        )
        .unwrap();
        assert_eq!(shifted.apply(f).unwrap().numeric("a").unwrap(), &[2f64.log10(), 0.0]);
    }
}
