//! Each fitted pipeline step as standard ONNX operators in float64 (text lookups as ai.onnx.ml
//! `LabelEncoder`), as its `apply` computes it; what ONNX cannot express the same way is refused,
//! naming the step and why.

use std::collections::BTreeMap;

use super::graph::{Builder, dim, expm1, int_attr, log1p};
use crate::error::{Error, Result};
use crate::stages::{
    self, cap, combine, count_frequency, discretise, impute, one_hot, ordinal, power_transform, rare_label, rows,
    scale, transform,
};

/// Why a step cannot be exported.
fn refuse(step: &str, why: &str) -> Error {
    Error::data(format!("step {step} cannot be exported to ONNX: {why}"))
        .with_hint("docs/deployment.md lists what exports; the rest is not written yet")
}

pub(super) fn addstep(b: &mut Builder, step: &stages::Fitted, name: &str) -> Result<()> {
    use stages::Fitted as F;
    match step {
        F::Impute(f) => add_impute(b, f, name),
        F::RareLabel(f) => add_rare(b, f, name),
        F::OneHot(f) => add_one_hot(b, f, name),
        F::Ordinal(f) => add_ordinal(b, f, name),
        F::Scale(f) => add_scale(b, f, name),
        F::Select(f) => {
            for d in &f.dropped {
                b.columns.remove(&d.column);
            }
            Ok(())
        }
        F::Transform(f) => add_transform(b, f, name),
        F::Expression(f) => super::expression::add_expression(b, f, name),
        F::Cap(f) => add_cap(b, f, name),
        F::CountFrequency(f) => add_maps(
            b,
            &f.columns,
            f.rare_label.as_deref(),
            f.unseen_zero.then_some(0.0),
            name,
        ),
        F::MeanTarget(f) => add_maps(
            b,
            &f.columns,
            f.rare_label.as_deref(),
            f.unseen_prior.then_some(f.prior),
            name,
        ),
        F::Woe(f) => add_maps(
            b,
            &f.columns,
            f.rare_label.as_deref(),
            f.unseen_zero.then_some(0.0),
            name,
        ),
        F::Discretise(f) => add_bins(b, f, name),
        F::Power(f) => add_power(b, f, name),
        F::Rows(rows::Fitted::Trim { caps, at_predict, .. }) => match at_predict {
            rows::AtPredict::Cap => add_cap(b, caps, name),
            rows::AtPredict::Keep => Ok(()),
            rows::AtPredict::Error => add_poison_outside(b, caps, name),
        },
        F::Rows(rows::Fitted::Missing { at_predict, .. }) => match at_predict {
            rows::AtPredict::Keep => Ok(()),
            _ => Err(refuse(
                name,
                "at_predict = \"error\" refuses a row with a missing value, which a graph cannot; use at_predict = \"keep\" with an imputer after it",
            )),
        },
        F::Combine(combine::Fitted::Relative {
            reference,
            functions,
            inputs,
        }) => add_relative(b, reference, functions, inputs, name),
        F::Combine(combine::Fitted::Combine {
            function,
            inputs,
            output,
        }) => add_combine(b, function, inputs, output, name),
        F::RandomSample(_) => Err(refuse(
            name,
            "its draws are blake3 of the stage seed and the row, which ONNX has no operator for",
        )),
        F::Datetime(_) => Err(refuse(
            name,
            "date parts are not exported yet (they need the text split into numbers and calendar arithmetic in the graph)",
        )),
    }
}

fn add_impute(b: &mut Builder, f: &impute::Fitted, step: &str) -> Result<()> {
    // Indicators read the values before any fill, as `apply` does.
    let mut flags = Vec::new();
    for col in &f.indicators {
        let v = b.column(col, step)?;
        let missing = if v.text {
            b.text_missing(&v.tensor, &format!("{col}_missing"))
        } else {
            b.is_nan_of(&v.tensor, &format!("{col}_missing"))
        };
        flags.push((format!("{col}_na"), b.flag(&missing, &format!("{col}_na"))));
    }
    for fill in &f.fills {
        match &fill.value {
            impute::Value::Number(x) => {
                let x_in = b.numeric(&fill.column, step)?;
                let missing = b.is_nan_of(&x_in, &format!("{}_missing", fill.column));
                let value = b.constant_doubles("fill", &[1], &[*x]);
                let out = b.node("Where", &[&missing, &value, &x_in], &fill.column, vec![]);
                b.set(&fill.column, out, false);
            }
            impute::Value::Text(s) => {
                let x_in = b.text(&fill.column, step)?;
                let missing = b.text_missing(&x_in, &format!("{}_missing", fill.column));
                let value = b.constant_strings("fill", &[s]);
                let out = b.node("Where", &[&missing, &value, &x_in], &fill.column, vec![]);
                b.set(&fill.column, out, true);
            }
        }
    }
    for (name, tensor) in flags {
        b.set(&name, tensor, false);
    }
    Ok(())
}

fn add_rare(b: &mut Builder, f: &rare_label::Fitted, step: &str) -> Result<()> {
    for g in &f.columns {
        if !g.grouped {
            continue;
        }
        let x = b.text(&g.column, step)?;
        // Frequent labels (and "" — missing stays missing) map to themselves, the rest to the rare label.
        let mut keys: Vec<&str> = g.frequent.iter().map(String::as_str).collect();
        keys.push("");
        let out = b.relabel(&x, &keys, &keys, &f.replace_with, &g.column);
        b.set(&g.column, out, true);
    }
    Ok(())
}

fn add_one_hot(b: &mut Builder, f: &one_hot::Fitted, step: &str) -> Result<()> {
    for enc in &f.columns {
        let x = b.text(&enc.column, step)?;
        // Every train category (with a dummy, dropped, or left out by top_k), missing excluded.
        let mut known: Vec<&str> = enc.categories.iter().map(String::as_str).collect();
        known.extend(enc.dropped.as_deref());
        known.extend(enc.others.iter().map(String::as_str));
        let (x, guard) = match f.unseen {
            one_hot::Unseen::Ignore => (x, None),
            // An unseen or missing value is the rare label's category.
            one_hot::Unseen::Rare => {
                let rare = f.rare_label.as_deref().unwrap_or("Rare");
                (b.relabel(&x, &known, &known, rare, &enc.column), None)
            }
            // mlpipe refuses such a row; a graph cannot, so its dummies (and its prediction) are NaN.
            one_hot::Unseen::Error => {
                let zeros = vec![0.0; known.len()];
                let guard = b.codes(&x, &known, &zeros, f64::NAN, &format!("{}_known", enc.column));
                (x, Some(guard))
            }
        };
        for c in &enc.categories {
            let value = b.constant_strings("category", &[c]);
            let eq = b.node("Equal", &[&x, &value], &format!("{}_{c}_eq", enc.column), vec![]);
            let mut out = b.flag(&eq, &format!("{}_{c}", enc.column));
            if let Some(g) = &guard {
                out = b.node("Add", &[&out, g], &format!("{}_{c}", enc.column), vec![]);
            }
            b.set(&format!("{}_{c}", enc.column), out, false);
        }
        b.columns.remove(&enc.column);
    }
    Ok(())
}

fn add_ordinal(b: &mut Builder, f: &ordinal::Fitted, step: &str) -> Result<()> {
    for m in &f.columns {
        let x = b.text(&m.column, step)?;
        let keys: Vec<&str> = m.categories.iter().map(String::as_str).collect();
        let codes: Vec<f64> = (0..keys.len()).map(|i| i as f64).collect();
        // Unseen (or missing) text: the unknown value, the rare label's code, or — where mlpipe refuses
        // the row — NaN, which carries through to the prediction.
        let unseen = match f.unseen {
            ordinal::Unseen::Encode => f.unknown_value,
            ordinal::Unseen::Error => f64::NAN,
            ordinal::Unseen::Rare => {
                let rare = f.rare_label.as_deref().unwrap_or("Rare");
                keys.iter().position(|k| *k == rare).map_or(f64::NAN, |i| i as f64)
            }
        };
        let out = b.codes(&x, &keys, &codes, unseen, &m.column);
        b.set(&m.column, out, false);
    }
    Ok(())
}

fn add_scale(b: &mut Builder, f: &scale::Fitted, step: &str) -> Result<()> {
    for c in &f.columns {
        let x = b.numeric(&c.column, step)?;
        let out = match f.kind {
            scale::Kind::Standard | scale::Kind::Robust => {
                let center = b.constant_doubles("center", &[1], &[c.center]);
                let spread = b.constant_doubles("scale", &[1], &[c.scale]);
                let d = b.node("Sub", &[&x, &center], &c.column, vec![]);
                b.node("Div", &[&d, &spread], &c.column, vec![])
            }
            scale::Kind::MinMax => {
                let (lo, hi) = f.feature_range;
                let factor = (hi - lo) / c.scale;
                let shift = lo - c.center * factor;
                let factor = b.constant_doubles("factor", &[1], &[factor]);
                let shift = b.constant_doubles("shift", &[1], &[shift]);
                let m = b.node("Mul", &[&x, &factor], &c.column, vec![]);
                b.node("Add", &[&m, &shift], &c.column, vec![])
            }
        };
        b.set(&c.column, out, false);
    }
    Ok(())
}

fn add_transform(b: &mut Builder, f: &transform::Fitted, step: &str) -> Result<()> {
    for c in &f.columns {
        let x = b.numeric(c, step)?;
        // A value outside the function's domain, which mlpipe refuses, gives NaN or ±inf here.
        let out = match f.function {
            transform::Function::Log { base10, offset } => {
                let shift = b.constant_doubles("offset", &[1], &[offset]);
                let shifted = b.node("Add", &[&x, &shift], c, vec![]);
                let ln = b.node("Log", &[&shifted], c, vec![]);
                if base10 {
                    let ln10 = b.constant_doubles("ln10", &[1], &[std::f64::consts::LN_10]);
                    b.node("Div", &[&ln, &ln10], c, vec![])
                } else {
                    ln
                }
            }
            transform::Function::Power { exp } => {
                let e = b.constant_doubles("exponent", &[1], &[exp]);
                b.node("Pow", &[&x, &e], c, vec![])
            }
            transform::Function::Reciprocal => {
                let one = b.constant_doubles("one", &[1], &[1.0]);
                b.node("Div", &[&one, &x], c, vec![])
            }
        };
        b.set(c, out, false);
    }
    Ok(())
}

fn add_cap(b: &mut Builder, f: &cap::Fitted, step: &str) -> Result<()> {
    for c in &f.columns {
        let mut x = b.numeric(&c.column, step)?;
        // As `apply`: the high cap, then the low one; NaN compares false and stays missing.
        if let Some(high) = c.high {
            let h = b.constant_doubles("high", &[1], &[high]);
            let above = b.node("Greater", &[&x, &h], &c.column, vec![]);
            x = b.node("Where", &[&above, &h, &x], &c.column, vec![]);
        }
        if let Some(low) = c.low {
            let l = b.constant_doubles("low", &[1], &[low]);
            let below = b.node("Less", &[&x, &l], &c.column, vec![]);
            x = b.node("Where", &[&below, &l, &x], &c.column, vec![]);
        }
        b.set(&c.column, x, false);
    }
    Ok(())
}

/// `trim` with `at_predict = "error"`: a value beyond a cap makes the row's prediction NaN.
fn add_poison_outside(b: &mut Builder, f: &cap::Fitted, step: &str) -> Result<()> {
    for c in &f.columns {
        let mut x = b.numeric(&c.column, step)?;
        let nan = b.constant_doubles("nan", &[1], &[f64::NAN]);
        for (bound, op) in [(c.high, "Greater"), (c.low, "Less")] {
            if let Some(v) = bound {
                let v = b.constant_doubles("cap", &[1], &[v]);
                let outside = b.node(op, &[&x, &v], &c.column, vec![]);
                x = b.node("Where", &[&outside, &nan, &x], &c.column, vec![]);
            }
        }
        b.set(&c.column, x, false);
    }
    Ok(())
}

/// Bin numbers: how many inner edges lie strictly below the value (right-closed bins).
fn add_bins(b: &mut Builder, f: &discretise::Fitted, step: &str) -> Result<()> {
    for (column, edges) in &f.columns {
        let x = b.numeric(column, step)?;
        let edges_t = b.constant_doubles("edges", &[1, dim(edges.len())], edges);
        let above = b.node("Greater", &[&x, &edges_t], column, vec![]);
        let flags = b.flag(&above, column);
        let axis = b.int64s("axis", &[1]);
        let count = b.node("ReduceSum", &[&flags, &axis], column, vec![int_attr("keepdims", 1)]);
        // A missing value stays missing.
        let missing = b.is_nan_of(&x, column);
        let out = b.node("Where", &[&missing, &x, &count], column, vec![]);
        b.set(column, out, false);
    }
    Ok(())
}

/// Box-Cox and Yeo-Johnson with each column's λ, as `power_transform::box_cox` / `yeo_johnson`
/// (exp(u) − 1 for their expm1(u): the same to a few units in the last place of the result's scale).
fn add_power(b: &mut Builder, f: &power_transform::Fitted, step: &str) -> Result<()> {
    for (column, lambda) in &f.columns {
        let x = b.numeric(column, step)?;
        let out = match f.kind {
            power_transform::Kind::BoxCox => {
                let ln = b.node("Log", &[&x], column, vec![]);
                if lambda.abs() < 1e-19 {
                    ln
                } else {
                    expm1_over(b, &ln, *lambda, column)
                }
            }
            power_transform::Kind::YeoJohnson => {
                let zero = b.constant_doubles("zero", &[1], &[0.0]);
                // x ≥ 0: ((1 + x)^λ − 1)/λ, or ln(1 + x) at λ = 0.
                let ln_up = log1p(b, &x, column);
                let pos = if lambda.abs() < f64::EPSILON {
                    ln_up
                } else {
                    expm1_over(b, &ln_up, *lambda, column)
                };
                // x < 0: −((1 − x)^(2 − λ) − 1)/(2 − λ), or −ln(1 − x) at λ = 2.
                let minus_x = b.node("Neg", &[&x], column, vec![]);
                let ln_down = log1p(b, &minus_x, column);
                let neg = if (lambda - 2.0).abs() > f64::EPSILON {
                    expm1_over(b, &ln_down, 2.0 - lambda, column)
                } else {
                    ln_down
                };
                let neg = b.node("Neg", &[&neg], column, vec![]);
                let nonneg = b.node("GreaterOrEqual", &[&x, &zero], column, vec![]);
                let picked = b.node("Where", &[&nonneg, &pos, &neg], column, vec![]);
                // NaN compares false: keep it missing rather than taking the negative branch's NaN.
                let missing = b.is_nan_of(&x, column);
                b.node("Where", &[&missing, &x, &picked], column, vec![])
            }
        };
        b.set(column, out, false);
    }
    Ok(())
}

/// (exp(λ·u) − 1) / λ, with an accurate expm1.
fn expm1_over(b: &mut Builder, u: &str, lambda: f64, hint: &str) -> String {
    let lam = b.constant_doubles("lambda", &[1], &[lambda]);
    let scaled = b.node("Mul", &[&lam, u], hint, vec![]);
    let less_one = expm1(b, &scaled, hint);
    b.node("Div", &[&less_one, &lam], hint, vec![])
}

/// `combine`: one column from several, row by row, as `combine::row_function` (sums in column order;
/// `std` is the sample standard deviation); a missing input gives a missing output.
fn add_combine(b: &mut Builder, function: &str, inputs: &[String], output: &str, step: &str) -> Result<()> {
    let xs = inputs
        .iter()
        .map(|c| b.numeric(c, step))
        .collect::<Result<Vec<String>>>()?;
    let fold = |b: &mut Builder, op: &str| -> String {
        let mut acc = xs[0].clone();
        for x in &xs[1..] {
            acc = b.node(op, &[&acc, x], output, vec![]);
        }
        acc
    };
    let n = b.constant_doubles("count", &[1], &[xs.len() as f64]);
    let sum = fold(b, "Add");
    let value = match function {
        "sum" => sum.clone(),
        "mean" => b.node("Div", &[&sum, &n], output, vec![]),
        "prod" => fold(b, "Mul"),
        "min" => fold(b, "Min"),
        "max" => fold(b, "Max"),
        _ => {
            let mean = b.node("Div", &[&sum, &n], output, vec![]);
            let mut squares: Option<String> = None;
            for x in &xs {
                let d = b.node("Sub", &[x, &mean], output, vec![]);
                let d2 = b.node("Mul", &[&d, &d], output, vec![]);
                squares = Some(match squares {
                    None => d2,
                    Some(acc) => b.node("Add", &[&acc, &d2], output, vec![]),
                });
            }
            let squares = squares.unwrap_or(sum.clone());
            let dof = b.constant_doubles("dof", &[1], &[xs.len() as f64 - 1.0]);
            let var = b.node("Div", &[&squares, &dof], output, vec![]);
            b.node("Sqrt", &[&var], output, vec![])
        }
    };
    // The sum is NaN exactly when an input is missing (or inputs are infinite of both signs).
    let missing = b.is_nan_of(&sum, output);
    let nan = b.constant_doubles("nan", &[1], &[f64::NAN]);
    let out = b.node("Where", &[&missing, &nan, &value], output, vec![]);
    b.set(output, out, false);
    Ok(())
}

/// `relative`: `<column>_<function>_<reference>` per function and column; division by zero, which
/// mlpipe refuses, gives ±inf or NaN here.
fn add_relative(b: &mut Builder, reference: &str, functions: &[String], inputs: &[String], step: &str) -> Result<()> {
    let r = b.numeric(reference, step)?;
    let mut new = Vec::new();
    for f in functions {
        let op = match f.as_str() {
            "sub" => "Sub",
            "add" => "Add",
            "mul" => "Mul",
            _ => "Div",
        };
        for c in inputs {
            let x = b.numeric(c, step)?;
            let name = format!("{c}_{f}_{reference}");
            new.push((name.clone(), b.node(op, &[&x, &r], &name, vec![])));
        }
    }
    for (name, t) in new {
        b.set(&name, t, false);
    }
    Ok(())
}

/// Count, frequency and target-mean encodings: each category's number; an unseen category gets the
/// rare label's number, the fixed one, or NaN where mlpipe refuses it.
fn add_maps(
    b: &mut Builder,
    columns: &[(String, BTreeMap<String, f64>)],
    rare_label: Option<&str>,
    fixed: Option<f64>,
    step: &str,
) -> Result<()> {
    for (column, map) in columns {
        let x = b.text(column, step)?;
        let keys: Vec<&str> = map.keys().map(String::as_str).collect();
        let values: Vec<f64> = map.values().copied().collect();
        let unseen = count_frequency::unseen_value(map, rare_label, fixed).unwrap_or(f64::NAN);
        let out = b.codes(&x, &keys, &values, unseen, column);
        b.set(column, out, false);
    }
    Ok(())
}
