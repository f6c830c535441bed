//! The `expression` step in ONNX: its numeric subset — arithmetic, comparisons, AND / OR / NOT, CASE,
//! BETWEEN, IN, IS NULL, COALESCE, LEAST / GREATEST and the numeric functions but LOG10 — as float64 tensors in
//! which a missing value is NaN and a condition is 1 / 0 / NaN (SQL's unknown), computed as mlpipe
//! computes it: a result that is not a finite number becomes NaN. Text results, LIKE, ||, LOWER, UPPER,
//! LENGTH, `DATE_DIFF` and text ordering are refused by name.

use super::graph::{Builder, int_attr};
use crate::error::{Error, Result};
use crate::export::proto::tensor_proto::DataType;
use crate::stages::expression::{BinOp, Expr, Fitted, Func, Kind};

fn refuse(step: &str, feature: &str, what: &str) -> Error {
    Error::data(format!(
        "step {step} cannot be exported to ONNX: the feature \"{feature}\" uses {what}"
    ))
    .with_hint("ONNX export covers numeric expressions (arithmetic, comparisons, CASE, COALESCE, LEAST/GREATEST, ABS, SQRT, EXP, LN, POWER, FLOOR, CEIL) and text compared with = or IN to a non-empty text")
}

pub(super) fn add_expression(b: &mut Builder, f: &Fitted, step: &str) -> Result<()> {
    let mut new = Vec::new();
    for feature in &f.features {
        if feature.kind == Kind::Text {
            return Err(refuse(step, &feature.name, "a text result"));
        }
        if feature.inputs.is_empty() {
            return Err(refuse(step, &feature.name, "no column (a constant)"));
        }
        let mut g = Graph {
            b: &mut *b,
            step,
            feature: &feature.name,
        };
        let out = g.number(&feature.expr)?;
        new.push((feature.name.clone(), out));
    }
    // Every feature reads the columns as they were before the step.
    for (name, tensor) in new {
        b.set(&name, tensor, false);
    }
    for gone in &f.drop {
        b.columns.remove(gone);
    }
    Ok(())
}

struct Graph<'b, 's> {
    b: &'b mut Builder,
    step: &'s str,
    feature: &'s str,
}

/// A value in the graph: a float64 tensor (missing = NaN) or a text tensor (missing = "").
enum T {
    Number(String),
    Text(String),
}

impl Graph<'_, '_> {
    fn refuse(&self, what: &str) -> Error {
        refuse(self.step, self.feature, what)
    }

    fn c(&mut self, x: f64) -> String {
        self.b.constant_doubles("c", &[1], &[x])
    }

    fn node(&mut self, op: &str, inputs: &[&str]) -> String {
        self.b.node(op, inputs, self.feature, vec![])
    }

    /// NaN where `x` is not finite: `x + (x − x)`, since `x − x` is 0 for a finite x and NaN otherwise.
    fn finite(&mut self, x: &str) -> String {
        let zero_or_nan = self.node("Sub", &[x, x]);
        self.node("Add", &[x, &zero_or_nan])
    }

    /// NaN where `of` is NaN, else `x` (SQL: an operation on a missing value is missing).
    fn missing_with(&mut self, x: &str, of: &str) -> String {
        let zero_or_nan = self.node("Sub", &[of, of]);
        self.node("Add", &[x, &zero_or_nan])
    }

    fn flag(&mut self, boolean: &str) -> String {
        self.b.node(
            "Cast",
            &[boolean],
            self.feature,
            vec![int_attr("to", DataType::Double as i64)],
        )
    }

    /// Where a number is 1 (a condition that holds; NaN and 0 do not).
    fn holds(&mut self, x: &str) -> String {
        let one = self.c(1.0);
        self.node("Equal", &[x, &one])
    }

    fn number(&mut self, e: &Expr) -> Result<String> {
        match self.value(e)? {
            T::Number(t) => Ok(t),
            T::Text(_) => Err(self.refuse("text where a number is needed")),
        }
    }

    #[allow(clippy::too_many_lines)]
    fn value(&mut self, e: &Expr) -> Result<T> {
        Ok(T::Number(match e {
            Expr::Number(x) => self.c(*x),
            Expr::Bool(v) => self.c(f64::from(u8::from(*v))),
            Expr::Null => self.c(f64::NAN),
            // The graph's missing text is "", so an empty text could not be told from a missing one.
            Expr::Text(s) if s.is_empty() => return Err(self.refuse("the empty text ''")),
            Expr::Text(s) => return Ok(T::Text(self.b.constant_strings("text", &[s]))),
            Expr::Column(c) => {
                let v = self.b.column(c, self.step)?;
                return Ok(if v.text { T::Text(v.tensor) } else { T::Number(v.tensor) });
            }
            Expr::Neg(x) => {
                let x = self.number(x)?;
                self.node("Neg", &[&x])
            }
            Expr::Not(x) => {
                let x = self.number(x)?;
                let one = self.c(1.0);
                self.node("Sub", &[&one, &x])
            }
            Expr::Binary(BinOp::And, a, b) => {
                // False when either is false; else the product (1, or NaN when one is unknown).
                let (a, b) = (self.number(a)?, self.number(b)?);
                let zero = self.c(0.0);
                let a0 = self.node("Equal", &[&a, &zero]);
                let b0 = self.node("Equal", &[&b, &zero]);
                let either = self.node("Or", &[&a0, &b0]);
                let product = self.node("Mul", &[&a, &b]);
                self.node("Where", &[&either, &zero, &product])
            }
            Expr::Binary(BinOp::Or, a, b) => {
                let (a, b) = (self.number(a)?, self.number(b)?);
                let one = self.c(1.0);
                let a1 = self.node("Equal", &[&a, &one]);
                let b1 = self.node("Equal", &[&b, &one]);
                let either = self.node("Or", &[&a1, &b1]);
                let sum = self.node("Add", &[&a, &b]);
                self.node("Where", &[&either, &one, &sum])
            }
            Expr::Binary(BinOp::Concat, ..) => return Err(self.refuse("||")),
            Expr::Binary(op, a, b) if op.is_comparison() => self.compare(*op, a, b)?,
            Expr::Binary(op, a, b) => {
                let (a, b) = (self.number(a)?, self.number(b)?);
                let v = match op {
                    BinOp::Add => self.node("Add", &[&a, &b]),
                    BinOp::Sub => self.node("Sub", &[&a, &b]),
                    BinOp::Mul => self.node("Mul", &[&a, &b]),
                    BinOp::Div => self.node("Div", &[&a, &b]),
                    _ => self.b.node("Mod", &[&a, &b], self.feature, vec![int_attr("fmod", 1)]),
                };
                self.finite(&v)
            }
            Expr::IsNull { expr, negated } => {
                let missing = match self.value(expr)? {
                    T::Number(x) => self.b.is_nan_of(&x, self.feature),
                    T::Text(x) => self.b.text_missing(&x, self.feature),
                };
                let v = self.flag(&missing);
                if *negated {
                    let one = self.c(1.0);
                    self.node("Sub", &[&one, &v])
                } else {
                    v
                }
            }
            Expr::Like { .. } => return Err(self.refuse("LIKE")),
            Expr::In { expr, list, negated } => {
                let mut any: Option<String> = None;
                for item in list {
                    let eq = self.compare(BinOp::Eq, expr, item)?;
                    any = Some(match any {
                        None => eq,
                        // Each comparison is 1, 0 or NaN (missing input): the largest is the answer.
                        Some(acc) => {
                            let m = self.node("Max", &[&acc, &eq]);
                            self.missing_with(&m, &eq)
                        }
                    });
                }
                let v = any.unwrap_or_else(|| self.c(0.0));
                if *negated {
                    let one = self.c(1.0);
                    self.node("Sub", &[&one, &v])
                } else {
                    v
                }
            }
            Expr::Between {
                expr,
                low,
                high,
                negated,
            } => {
                let ge = self.compare(BinOp::GtEq, expr, low)?;
                let le = self.compare(BinOp::LtEq, expr, high)?;
                let both = self.node("Mul", &[&ge, &le]);
                if *negated {
                    let one = self.c(1.0);
                    self.node("Sub", &[&one, &both])
                } else {
                    both
                }
            }
            Expr::Case { branches, otherwise } => {
                let mut acc = match otherwise {
                    Some(o) => self.number(o)?,
                    None => self.c(f64::NAN),
                };
                for (cond, value) in branches.iter().rev() {
                    let c = self.number(cond)?;
                    let taken = self.holds(&c);
                    let v = self.number(value)?;
                    acc = self.node("Where", &[&taken, &v, &acc]);
                }
                acc
            }
            Expr::Call(f, args) => self.call(*f, args)?,
        }))
    }

    /// A comparison as 1 / 0, NaN when either side is missing. Text is compared for equality only.
    fn compare(&mut self, op: BinOp, left: &Expr, right: &Expr) -> Result<String> {
        match (self.value(left)?, self.value(right)?) {
            (T::Number(lhs), T::Number(rhs)) => {
                let (name, flip) = match op {
                    BinOp::Eq => ("Equal", false),
                    BinOp::NotEq => ("Equal", true),
                    BinOp::Lt => ("Less", false),
                    BinOp::Gt => ("Greater", false),
                    BinOp::LtEq => ("Greater", true),
                    _ => ("Less", true),
                };
                let raw = self.node(name, &[&lhs, &rhs]);
                let raw = if flip { self.node("Not", &[&raw]) } else { raw };
                let flag = self.flag(&raw);
                let flag = self.missing_with(&flag, &lhs);
                Ok(self.missing_with(&flag, &rhs))
            }
            (T::Text(lhs), T::Text(rhs)) if matches!(op, BinOp::Eq | BinOp::NotEq) => {
                let raw = self.node("Equal", &[&lhs, &rhs]);
                let raw = if op == BinOp::NotEq {
                    self.node("Not", &[&raw])
                } else {
                    raw
                };
                let flag = self.flag(&raw);
                let lhs_missing = self.b.text_missing(&lhs, self.feature);
                let rhs_missing = self.b.text_missing(&rhs, self.feature);
                let missing = self.node("Or", &[&lhs_missing, &rhs_missing]);
                let nan = self.c(f64::NAN);
                Ok(self.node("Where", &[&missing, &nan, &flag]))
            }
            _ => Err(self.refuse("text ordered with < or >")),
        }
    }

    fn call(&mut self, f: Func, args: &[Expr]) -> Result<String> {
        match f {
            // ONNX has no log10, and ln(x) / ln(10) is not log10 in the last bit (FLOOR would see it).
            Func::Lower | Func::Upper | Func::Length | Func::DateDiff | Func::Log10 => {
                Err(self.refuse(&format!("{}()", f.name().to_uppercase())))
            }
            Func::Coalesce => {
                let values = args.iter().map(|a| self.number(a)).collect::<Result<Vec<_>>>()?;
                let mut acc = values[values.len() - 1].clone();
                for v in values.iter().rev().skip(1) {
                    let missing = self.b.is_nan_of(v, self.feature);
                    acc = self.node("Where", &[&missing, &acc, v]);
                }
                Ok(acc)
            }
            Func::Least | Func::Greatest => {
                let values = args.iter().map(|a| self.number(a)).collect::<Result<Vec<_>>>()?;
                let op = if f == Func::Least { "Min" } else { "Max" };
                let refs: Vec<&str> = values.iter().map(String::as_str).collect();
                let mut out = self.node(op, &refs);
                for v in &values {
                    out = self.missing_with(&out, v);
                }
                Ok(out)
            }
            _ => {
                let x = self.number(&args[0])?;
                let v = match f {
                    Func::Abs => self.node("Abs", &[&x]),
                    Func::Sqrt => self.node("Sqrt", &[&x]),
                    Func::Exp => self.node("Exp", &[&x]),
                    Func::Ln => self.node("Log", &[&x]),
                    Func::Floor => self.node("Floor", &[&x]),
                    Func::Ceil => self.node("Ceil", &[&x]),
                    _ => {
                        let y = self.number(&args[1])?;
                        self.node("Pow", &[&x, &y])
                    }
                };
                Ok(self.finite(&v))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{ColumnType, ReadOptions, read_csv};
    use crate::stages::expression::{Params, fit};

    fn builder() -> Builder {
        let mut b = Builder {
            nodes: Vec::new(),
            initializers: Vec::new(),
            columns: std::collections::BTreeMap::new(),
            counter: 0,
        };
        b.set("n", "n".into(), false);
        b.set("town", "town".into(), true);
        b
    }

    fn fitted(feature: &str) -> Fitted {
        let frame = read_csv(b"n,town\n1,North\n2,South\n", &ReadOptions::default(), "t.csv").unwrap();
        assert_eq!(
            frame.column("town").unwrap().data.column_type(),
            ColumnType::Categorical
        );
        let params = Params {
            features: vec![feature.to_string()],
            drop: Vec::new(),
            locations: Vec::new(),
        };
        fit(&params, &frame).unwrap()
    }

    #[test]
    fn text_work_is_refused_by_name_and_text_equality_exports() {
        for (feature, what) in [
            ("town LIKE 'N%' AS north", "uses LIKE"),
            ("UPPER(town) AS loud", "uses a text result"),
            ("LENGTH(town) AS size", "uses LENGTH()"),
            ("town < 'M' AS early", "uses text ordered with < or >"),
            ("2 AS two", "uses no column"),
            ("LOG10(n) AS digits", "uses LOG10()"),
            ("town = '' AS blank", "uses the empty text ''"),
        ] {
            let err = add_expression(&mut builder(), &fitted(feature), "transform.x").unwrap_err();
            assert!(
                err.to_string()
                    .starts_with("step transform.x cannot be exported to ONNX")
                    && err.to_string().contains(what),
                "{feature}: {err}"
            );
        }
        let mut b = builder();
        add_expression(
            &mut b,
            &fitted("town IN ('North', 'East') OR n > 1 AS flag"),
            "transform.x",
        )
        .unwrap();
        assert!(b.columns.contains_key("flag") && !b.columns["flag"].text);
    }
}
