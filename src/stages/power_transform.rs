//! Box-Cox and Yeo-Johnson transforms with λ fitted by maximum likelihood on train, as
//! feature-engine's `BoxCoxTransformer` / `YeoJohnsonTransformer` (scipy's `stats.boxcox` /
//! `stats.yeojohnson`, without standardising).
//!
//! scipy maximises the log-likelihood with Brent's method on function values, which pins λ down to
//! about 1e-8 relative (a maximum is flat). Here λ is the root of the likelihood's derivative, found
//! by bracketing and bisection-secant steps, which pins it down to about 1e-13: the same optimum,
//! more digits (`tests/peer.rs` checks both against scipy and against a 50-digit mpmath solution).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::frame::Frame;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    BoxCox,
    YeoJohnson,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fitted {
    pub kind: Kind,
    /// Per column, its λ.
    pub columns: Vec<(String, f64)>,
}

/// scipy.special.boxcox: expm1(λ·ln x)/λ, ln x at λ = 0.
pub fn box_cox(x: f64, lambda: f64) -> f64 {
    if lambda.abs() < 1e-19 {
        x.ln()
    } else {
        (lambda * x.ln()).exp_m1() / lambda
    }
}

/// scipy's Yeo-Johnson transform.
pub fn yeo_johnson(x: f64, lambda: f64) -> f64 {
    if x >= 0.0 {
        if lambda.abs() < f64::EPSILON {
            x.ln_1p()
        } else {
            (lambda * x.ln_1p()).exp_m1() / lambda
        }
    } else if (lambda - 2.0).abs() > f64::EPSILON {
        -((2.0 - lambda) * (-x).ln_1p()).exp_m1() / (2.0 - lambda)
    } else {
        -(-x).ln_1p()
    }
}

/// `n · Σ(y − ȳ)(y′ − ȳ′) / Σ(y − ȳ)²`: the derivative of `n/2 · ln var(y)` given y and ∂y/∂λ,
/// with both centred first so no large terms cancel.
fn log_var_slope(y: &[f64], dy: &[f64]) -> f64 {
    let n = y.len() as f64;
    let (my, md) = (y.iter().sum::<f64>() / n, dy.iter().sum::<f64>() / n);
    let (mut v, mut d) = (0.0, 0.0);
    for (a, b) in y.iter().zip(dy) {
        v += (a - my) * (a - my);
        d += (a - my) * (b - md);
    }
    n * d / v
}

/// ∂/∂μ of expm1(μ·b)/μ, written as (b·(μ·φ + 1) − φ)/μ with φ = expm1(μ·b)/μ (b²/2 as μ → 0).
fn d_expm1_ratio(b: f64, mu: f64, phi: f64) -> f64 {
    if mu.abs() < 1e-10 {
        b * b / 2.0
    } else {
        (b * (mu * phi + 1.0) - phi) / mu
    }
}

/// d/dλ of the Box-Cox log-likelihood (scipy's `boxcox_llf`): Σ ln x − n·Cov(y, y′)/Var(y).
fn box_cox_slope(logs: &[f64], sum_logs: f64, lambda: f64) -> f64 {
    let y: Vec<f64> = logs
        .iter()
        .map(|&l| {
            if lambda.abs() < 1e-10 {
                l
            } else {
                (lambda * l).exp_m1() / lambda
            }
        })
        .collect();
    let dy: Vec<f64> = logs
        .iter()
        .zip(&y)
        .map(|(&l, &phi)| d_expm1_ratio(l, lambda, phi))
        .collect();
    sum_logs - log_var_slope(&y, &dy)
}

/// d/dλ of the Yeo-Johnson log-likelihood: Σ sign(x)·ln(1 + |x|) − n·Cov(ψ, ψ′)/Var(ψ).
fn yeo_johnson_slope(x: &[f64], signed_logs: f64, lambda: f64) -> f64 {
    let psi: Vec<f64> = x.iter().map(|&v| yeo_johnson(v, lambda)).collect();
    let dpsi: Vec<f64> = x
        .iter()
        .zip(&psi)
        .map(|(&v, &p)| {
            if v >= 0.0 {
                d_expm1_ratio(v.ln_1p(), lambda, p)
            } else {
                // ψ = −expm1(μ·b)/μ with μ = 2 − λ, so ∂ψ/∂λ = ∂φ/∂μ at φ = −ψ.
                d_expm1_ratio((-v).ln_1p(), 2.0 - lambda, -p)
            }
        })
        .collect();
    signed_logs - log_var_slope(&psi, &dpsi)
}

/// The root of a decreasing slope: bracket it around [-2, 2] (widening up to ±64), then bisection
/// with secant steps until the bracket stops shrinking.
fn root(slope: impl Fn(f64) -> f64) -> Option<f64> {
    let (mut lo, mut hi) = (-2.0f64, 2.0f64);
    let (mut flo, mut fhi) = (slope(lo), slope(hi));
    while flo.is_finite() && fhi.is_finite() && flo.signum() == fhi.signum() && hi < 64.0 {
        if flo < 0.0 {
            hi = lo;
            fhi = flo;
            lo *= 2.0;
            flo = slope(lo);
        } else {
            lo = hi;
            flo = fhi;
            hi *= 2.0;
            fhi = slope(hi);
        }
    }
    if !(flo.is_finite() && fhi.is_finite()) || flo.signum() == fhi.signum() {
        return None;
    }
    for step in 0..200 {
        // Secant guess, kept inside the bracket; every other step a plain bisection.
        let secant = hi - fhi * (hi - lo) / (fhi - flo);
        let mid = if step % 2 == 0 && secant > lo && secant < hi {
            secant
        } else {
            0.5 * (lo + hi)
        };
        if mid <= lo || mid >= hi {
            break;
        }
        let fm = slope(mid);
        if fm == 0.0 {
            return Some(mid);
        }
        if fm.signum() == flo.signum() {
            lo = mid;
            flo = fm;
        } else {
            hi = mid;
            fhi = fm;
        }
        if hi - lo <= 4.0 * f64::EPSILON * lo.abs().max(hi.abs()) {
            break;
        }
    }
    Some(if flo.abs() < fhi.abs() { lo } else { hi })
}

/// The maximum-likelihood λ of present values (Box-Cox needs them above 0; the caller checks).
pub fn fit_lambda(kind: Kind, values: &[f64]) -> Option<f64> {
    let x: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    match kind {
        Kind::BoxCox => {
            let logs: Vec<f64> = x.iter().map(|v| v.ln()).collect();
            let sum_logs: f64 = logs.iter().sum();
            root(|l| box_cox_slope(&logs, sum_logs, l))
        }
        Kind::YeoJohnson => {
            let signed: f64 = x.iter().map(|v| v.signum() * v.abs().ln_1p()).sum();
            root(|l| yeo_johnson_slope(&x, signed, l))
        }
    }
}

/// scipy's `inv_boxcox`.
pub fn inverse_box_cox(y: f64, lambda: f64) -> f64 {
    if lambda == 0.0 {
        y.exp()
    } else {
        ((lambda * y).ln_1p() / lambda).exp()
    }
}

/// scikit-learn's inverse Yeo-Johnson transform.
pub fn inverse_yeo_johnson(y: f64, lambda: f64) -> f64 {
    if y >= 0.0 {
        if lambda.abs() < f64::EPSILON {
            y.exp_m1()
        } else {
            ((lambda * y).ln_1p() / lambda).exp_m1()
        }
    } else if (lambda - 2.0).abs() > f64::EPSILON {
        -((-(2.0 - lambda) * y).ln_1p() / (2.0 - lambda)).exp_m1()
    } else {
        -(-y).exp_m1()
    }
}

pub fn fit(kind: Kind, train: &Frame, columns: &[String]) -> Result<Fitted> {
    let mut out = Vec::with_capacity(columns.len());
    for name in columns {
        let x: Vec<f64> = train.numeric(name)?.iter().copied().filter(|v| !v.is_nan()).collect();
        if x.len() < 2 || x.iter().all(|v| v.to_bits() == x[0].to_bits()) {
            return Err(Error::data(format!(
                "column \"{name}\" needs at least two different train values to fit λ"
            )));
        }
        if kind == Kind::BoxCox
            && let Some((r, v)) = train.numeric(name)?.iter().enumerate().find(|(_, v)| **v <= 0.0)
        {
            return Err(Error::data(format!(
                "Box-Cox needs values above 0, but column \"{name}\" holds {v} at line {} of {}",
                train.lines[r], train.source
            ))
            .with_hint("use yeo_johnson, which accepts any value, or log with an offset"));
        }
        let lambda = fit_lambda(kind, &x).ok_or_else(|| {
            Error::data(format!(
                "no maximum-likelihood λ within [-64, 64] for column \"{name}\""
            ))
            .with_hint("the column may be nearly constant; leave it out of this step")
        })?;
        out.push((name.clone(), lambda));
    }
    Ok(Fitted { kind, columns: out })
}

impl Fitted {
    pub fn apply(&self, mut frame: Frame) -> Result<Frame> {
        for (column, lambda) in &self.columns {
            if self.kind == Kind::BoxCox
                && let Some((r, v)) = frame.numeric(column)?.iter().enumerate().find(|(_, v)| **v <= 0.0)
            {
                return Err(Error::data(format!(
                    "Box-Cox needs values above 0, but column \"{column}\" holds {v} at line {} of {}",
                    frame.lines[r], frame.source
                )));
            }
            frame.update_numeric(column, |values| {
                for v in values.iter_mut().filter(|v| !v.is_nan()) {
                    *v = match self.kind {
                        Kind::BoxCox => box_cox(*v, *lambda),
                        Kind::YeoJohnson => yeo_johnson(*v, *lambda),
                    };
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
    fn box_cox_refuses_non_positive_values_and_names_the_line() {
        let f = read_csv(b"x\n1\n2\n0\n", &ReadOptions::default(), "t.csv").unwrap();
        let err = fit(Kind::BoxCox, &f, &["x".into()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Box-Cox needs values above 0, but column \"x\" holds 0 at line 4 of t.csv"
        );
    }

    #[test]
    fn inverses_undo_the_transforms() {
        for &(x, l) in &[(3.5, 0.3), (0.2, -1.1), (100.0, 0.0)] {
            assert!((inverse_box_cox(box_cox(x, l), l) - x).abs() < 1e-12 * x);
        }
        for &(x, l) in &[(3.5, 0.3), (-2.0, 1.4), (-0.5, 2.0), (7.0, 0.0)] {
            assert!((inverse_yeo_johnson(yeo_johnson(x, l), l) - x).abs() < 1e-12 * x.abs().max(1.0));
        }
    }

    #[test]
    fn transforms_match_their_limits() {
        assert_eq!(box_cox(std::f64::consts::E, 0.0), 1.0);
        assert!((box_cox(4.0, 0.5) - 2.0).abs() < 1e-15);
        assert!((yeo_johnson(-3.0, 2.0) + 4f64.ln()).abs() < 1e-15);
        assert!((yeo_johnson(3.0, 0.0) - 4f64.ln()).abs() < 1e-15);
    }
}
