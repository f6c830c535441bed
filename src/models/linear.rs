//! Least squares solvers behind `linear_regression` and `ridge`.
#![allow(clippy::many_single_char_names)] // x, y, w, b, a, p, n: the textbook names

use linfa::Dataset;
use linfa::traits::Fit;
use ndarray::{Array1, Array2};

use super::gram::{self, Col};
use crate::error::{Error, Result};

fn matrix(features: &[(&str, &[f64])], n: usize) -> Array2<f64> {
    let p = features.len();
    Array2::from_shape_fn((n, p), |(r, c)| features[c].1[r])
}

/// Ordinary least squares through linfa-linear.
pub fn ols(features: &[(&str, &[f64])], y: &[f64], fit_intercept: bool) -> Result<(Vec<f64>, f64)> {
    let n = y.len();
    if n < features.len() + usize::from(fit_intercept) {
        return Err(Error::data(format!(
            "linear_regression needs at least as many train rows as coefficients ({n} rows, {} features)",
            features.len()
        ))
        .with_hint("use ridge, or select fewer features"));
    }
    if let Some((k, problem)) = first_dependent_feature(features, fit_intercept) {
        let name = features[k].0;
        let on = if fit_intercept { " + a constant" } else { "" };
        let what = match problem {
            Dependence::Constant if fit_intercept => format!("feature `{name}` is constant in the train rows"),
            Dependence::Constant => format!("feature `{name}` is 0 in every train row"),
            Dependence::TooLarge => format!("feature `{name}` has values too large to square (near ±1.8e308)"),
            Dependence::Combination(terms) => {
                let sum: Vec<String> = terms
                    .iter()
                    .map(|(j, c)| format!("{}·{}", shown(*c), features[*j].0))
                    .collect();
                format!(
                    "in the train rows, feature `{name}` = {}{on} (to rounding)",
                    if sum.is_empty() {
                        "0".to_string()
                    } else {
                        sum.join(" + ").replace("+ -", "- ")
                    }
                )
            }
        };
        return Err(Error::data(format!(
            "linear_regression cannot be fitted: {what}, so the coefficients are not determined"
        ))
        .with_hint(
            "drop one of these features (an `expression` step's `drop`), use ridge with alpha > 0, or — for \
             one-hot columns — one_hot with drop_first = true",
        ));
    }
    let x = matrix(features, n);
    let dataset = Dataset::new(x, Array1::from(y.to_vec()));
    let model = linfa_linear::LinearRegression::new()
        .with_intercept(fit_intercept)
        .fit(&dataset)
        .map_err(|e| {
            Error::data(format!("linear_regression could not be fitted: {e}"))
                .with_hint("the design matrix may be singular: use one_hot with drop_first = true, or ridge")
        })?;
    Ok((model.params().to_vec(), model.intercept()))
}

/// Why a feature adds nothing to the ones before it.
#[derive(Debug, PartialEq)]
enum Dependence {
    /// Constant (with an intercept), or 0 (without).
    Constant,
    /// Its squares overflow: nothing can be said.
    TooLarge,
    /// It is this sum of earlier features (index, coefficient), largest contributions first (at most 6).
    Combination(Vec<(usize, f64)>),
}

/// The first feature that is (to rounding) a linear combination of the ones before it — and of the
/// intercept, when there is one.
///
/// Classical Gram–Schmidt with reorthogonalisation over the (centred) columns in their order: a column
/// whose residual is at most `max(n, p) · ε` of its norm (`NumPy`'s rank tolerance, per column so that
/// units do not matter) adds nothing to the span. Least squares on such a design has no unique solution;
/// a QR solver then returns huge, meaningless coefficients rather than failing. The combination is read
/// back from the triangular factor. Sequential loops in a fixed order: the answer does not depend on
/// threads.
fn first_dependent_feature(features: &[(&str, &[f64])], fit_intercept: bool) -> Option<(usize, Dependence)> {
    let n = features.first().map_or(0, |(_, c)| c.len());
    let tolerance = n.max(features.len()) as f64 * f64::EPSILON;
    let mut basis: Vec<Vec<f64>> = Vec::with_capacity(features.len());
    // Column k of R: the projections of feature k on the basis vectors before it, then its own norm.
    let mut r_columns: Vec<Vec<f64>> = Vec::with_capacity(features.len());
    let mut norms: Vec<f64> = Vec::with_capacity(features.len());
    for (k, (_, column)) in features.iter().enumerate() {
        let mut v = column.to_vec();
        if fit_intercept {
            let mean = v.iter().sum::<f64>() / n as f64;
            for x in &mut v {
                *x -= mean;
            }
        }
        let norm = dot(&v, &v).sqrt();
        if !norm.is_finite() {
            return Some((k, Dependence::TooLarge));
        }
        if norm == 0.0 {
            return Some((k, Dependence::Constant));
        }
        let mut r = vec![0.0; basis.len()];
        for _ in 0..2 {
            for (q, rq) in basis.iter().zip(&mut r) {
                let p = dot(q, &v);
                *rq += p;
                for (x, qi) in v.iter_mut().zip(q) {
                    *x -= p * qi;
                }
            }
        }
        let left = dot(&v, &v).sqrt();
        if left <= tolerance * norm {
            // x_k = Σ r_j q_j and x_j = Σ_{i≤j} R_ij q_i: solve R c = r by back substitution.
            let mut c = r;
            for j in (0..c.len()).rev() {
                c[j] /= r_columns[j][j];
                for i in 0..j {
                    c[i] -= r_columns[j][i] * c[j];
                }
            }
            let mut terms: Vec<(usize, f64)> = c
                .into_iter()
                .enumerate()
                .filter(|(j, cj)| (cj * norms[*j]).abs() > 1e-9 * norm)
                .collect();
            terms.sort_by(|a, b| {
                (b.1 * norms[b.0])
                    .abs()
                    .total_cmp(&(a.1 * norms[a.0]).abs())
                    .then(a.0.cmp(&b.0))
            });
            terms.truncate(6);
            terms.sort_by_key(|t| t.0);
            return Some((k, Dependence::Combination(terms)));
        }
        for x in &mut v {
            *x /= left;
        }
        r.push(left);
        r_columns.push(r);
        norms.push(norm);
        basis.push(v);
    }
    None
}

/// A coefficient for a message: 4 decimals at most, trailing zeros dropped.
fn shown(c: f64) -> String {
    let text = format!("{c:.4}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_string()
    } else {
        text.to_string()
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Ridge in closed form, as scikit-learn's `Ridge(solver="cholesky")`: centre, form `XᵀX + αI`, solve by
/// Cholesky, then refine (see the module docs of `models`).
pub fn ridge(features: &[(&str, Col<'_>)], y: &[f64], alpha: f64, fit_intercept: bool) -> Result<(Vec<f64>, f64)> {
    let n = y.len();
    let p = features.len();
    let columns: Vec<Col<'_>> = features.iter().map(|(_, c)| *c).collect();
    let x_offset = if fit_intercept {
        gram::means(&columns)
    } else {
        vec![0.0; p]
    };
    let y_offset = if fit_intercept {
        y.iter().sum::<f64>() / n as f64
    } else {
        0.0
    };
    let (mut a, b) = gram::normal_equations(&columns, &x_offset, y, y_offset);
    if let Some(i) = (0..p).find(|i| !a[i * p + i].is_finite()) {
        return Err(Error::data(format!(
            "ridge could not be fitted: feature `{}` has values too large to square (near ±1.8e308)",
            features[i].0
        ))
        .with_hint("scale it down first (a scale step)"));
    }
    for i in 0..p {
        a[i * p + i] += alpha;
    }
    let not_pd = || {
        Error::data("ridge could not be fitted: XᵀX + αI is not positive definite (alpha = 0 with collinear features?)")
            .with_hint("raise alpha above 0, or drop collinear features")
    };
    let factor =
        cholesky(Array2::from_shape_vec((p, p), a).map_err(|e| Error::internal(e.to_string()))?).ok_or_else(not_pd)?;
    let mut w = solve_factored(&factor, b);
    // Forming XᵀX squares the condition number. Two steps of refinement with the residual computed
    // through X itself (corrected semi-normal equations) recover the accuracy of a QR solve at the
    // cost of two passes over X.
    for _ in 0..2 {
        let mut r = gram::residual_correlation(&columns, &x_offset, y, y_offset, &w);
        for (ri, wi) in r.iter_mut().zip(&w) {
            *ri -= alpha * wi;
        }
        let delta = solve_factored(&factor, r);
        for (wi, d) in w.iter_mut().zip(delta) {
            *wi += d;
        }
    }
    let intercept = y_offset - x_offset.iter().zip(&w).map(|(o, c)| o * c).sum::<f64>();
    Ok((w, intercept))
}

/// Elastic net by cyclic coordinate descent, as scikit-learn's `ElasticNet` / `Lasso` solve it:
/// minimise `(1/2n)·‖y − Xw − b‖² + α·l1_ratio·‖w‖₁ + ½·α·(1 − l1_ratio)·‖w‖²` on centred data, visiting
/// features in order, and stop when the duality gap is below `tol`·‖y‖² (checked, as scikit-learn
/// does, whenever the largest update is small relative to the largest coefficient).
#[allow(clippy::too_many_arguments)]
pub fn elastic_net(
    features: &[(&str, Col<'_>)],
    y: &[f64],
    alpha: f64,
    l1_ratio: f64,
    fit_intercept: bool,
    max_iter: u64,
    tol: f64,
) -> Result<(Vec<f64>, f64)> {
    let n = y.len();
    let p = features.len();
    let nf = n as f64;
    let columns: Vec<Col<'_>> = features.iter().map(|(_, c)| *c).collect();
    let x_offset = if fit_intercept {
        gram::means(&columns)
    } else {
        vec![0.0; p]
    };
    let y_offset = if fit_intercept { y.iter().sum::<f64>() / nf } else { 0.0 };
    let x: Vec<Vec<f64>> = columns
        .iter()
        .zip(&x_offset)
        .map(|(c, m)| c.map_rows(0, c.len(), |v| v - m))
        .collect();
    let yc: Vec<f64> = y.iter().map(|v| v - y_offset).collect();
    let l1 = alpha * l1_ratio * nf;
    let l2 = alpha * (1.0 - l1_ratio) * nf;
    let norms: Vec<f64> = x.iter().map(|c| gram::dot(c, c)).collect();
    let mut w = vec![0.0; p];
    let mut r = yc.clone();
    let gap_tol = tol * gram::dot(&yc, &yc);
    let mut converged = false;
    for iteration in 0..max_iter {
        let (mut w_max, mut d_w_max) = (0.0f64, 0.0f64);
        for j in 0..p {
            if norms[j] == 0.0 {
                continue;
            }
            let old = w[j];
            if old != 0.0 {
                for (ri, xi) in r.iter_mut().zip(&x[j]) {
                    *ri += old * xi;
                }
            }
            let rho = gram::dot(&x[j], &r);
            w[j] = rho.signum() * (rho.abs() - l1).max(0.0) / (norms[j] + l2);
            if w[j] != 0.0 {
                for (ri, xi) in r.iter_mut().zip(&x[j]) {
                    *ri -= w[j] * xi;
                }
            }
            d_w_max = d_w_max.max((w[j] - old).abs());
            w_max = w_max.max(w[j].abs());
        }
        if w_max == 0.0 || d_w_max / w_max < tol || iteration + 1 == max_iter {
            // Duality gap of the current iterate.
            let xta: Vec<f64> = x.iter().zip(&w).map(|(c, wj)| gram::dot(c, &r) - l2 * wj).collect();
            let dual_norm = xta.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            let r_norm2 = gram::dot(&r, &r);
            let w_norm2 = gram::dot(&w, &w);
            let (constant, mut gap) = if dual_norm > l1 {
                let c = l1 / dual_norm;
                (c, 0.5 * (r_norm2 + r_norm2 * c * c))
            } else {
                (1.0, r_norm2)
            };
            let l1_norm: f64 = w.iter().map(|v| v.abs()).sum();
            gap += l1 * l1_norm - constant * gram::dot(&r, &yc) + 0.5 * l2 * (1.0 + constant * constant) * w_norm2;
            if gap < gap_tol {
                converged = true;
                break;
            }
        }
    }
    if !converged {
        return Err(Error::data(format!(
            "coordinate descent did not converge in {max_iter} iterations (duality gap above tol · ‖y‖²)"
        ))
        .with_hint("raise max_iter, raise alpha, or scale the features (standard_scaler)"));
    }
    let intercept = y_offset - x_offset.iter().zip(&w).map(|(o, c)| o * c).sum::<f64>();
    Ok((w, intercept))
}

/// Lower Cholesky factor of a symmetric positive definite matrix (None if it is not).
fn cholesky(mut a: Array2<f64>) -> Option<Array2<f64>> {
    let p = a.nrows();
    for j in 0..p {
        let mut d = a[[j, j]];
        for k in 0..j {
            d -= a[[j, k]] * a[[j, k]];
        }
        if d <= 0.0 || !d.is_finite() {
            return None;
        }
        let d = d.sqrt();
        a[[j, j]] = d;
        for i in j + 1..p {
            let mut s = a[[i, j]];
            for k in 0..j {
                s -= a[[i, k]] * a[[j, k]];
            }
            a[[i, j]] = s / d;
        }
    }
    Some(a)
}

/// Solves L Lᵀ x = b.
fn solve_factored(a: &Array2<f64>, mut b: Vec<f64>) -> Vec<f64> {
    let p = b.len();
    for i in 0..p {
        let mut s = b[i];
        for k in 0..i {
            s -= a[[i, k]] * b[k];
        }
        b[i] = s / a[[i, i]];
    }
    for i in (0..p).rev() {
        let mut s = b[i];
        for k in i + 1..p {
            s -= a[[k, i]] * b[k];
        }
        b[i] = s / a[[i, i]];
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ridge_with_zero_alpha_recovers_an_exact_line() {
        let x1 = [0.0, 1.0, 2.0, 3.0];
        let x2 = [1.0, 0.0, 1.0, 5.0];
        let y: Vec<f64> = x1.iter().zip(&x2).map(|(a, b)| 3.0 * a - 2.0 * b + 1.0).collect();
        let (w, b) = ridge(&[("a", Col::Slice(&x1)), ("b", Col::Slice(&x2))], &y, 0.0, true).unwrap();
        assert!((w[0] - 3.0).abs() < 1e-12 && (w[1] + 2.0).abs() < 1e-12 && (b - 1.0).abs() < 1e-12);
        let (w2, b2) = ols(&[("a", &x1), ("b", &x2)], &y, true).unwrap();
        assert!((w2[0] - 3.0).abs() < 1e-10 && (w2[1] + 2.0).abs() < 1e-10 && (b2 - 1.0).abs() < 1e-10);
    }

    #[test]
    fn ols_refuses_a_feature_that_is_a_sum_of_earlier_ones_and_names_it() {
        // The house-price design has TotalBsmtSF = BsmtFinSF1 + BsmtFinSF2 + BsmtUnfSF; a QR solver
        // returns coefficients of 1e15 for it instead of failing.
        let a = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0];
        let b = [2.0, 7.0, 1.0, 8.0, 2.0, 8.0, 1.0, 8.0];
        let c = [0.5, 0.25, 0.125, 7.0, 1.5, 2.5, 3.5, 0.75];
        let total: Vec<f64> = (0..8).map(|i| a[i] + b[i] + c[i]).collect();
        let y: Vec<f64> = (0..8).map(|i| a[i] - b[i] + 0.5 * c[i] + (i as f64).sin()).collect();
        let design = [("a", &a[..]), ("b", &b[..]), ("c", &c[..]), ("total", &total[..])];
        let err = ols(&design, &y, true).unwrap_err().to_string();
        assert!(
            err.contains("feature `total` = 1·a + 1·b + 1·c + a constant (to rounding)"),
            "{err}"
        );
        // Without the sum the design is full rank and fits.
        assert!(ols(&design[..3], &y, true).is_ok());
    }

    #[test]
    fn ols_refuses_a_constant_feature_beside_an_intercept_but_not_without_one() {
        let x = [1.0, 2.0, 3.0, 5.0];
        let one = [1.0; 4];
        let y = [2.0, 4.1, 5.9, 10.2];
        let err = ols(&[("x", &x[..]), ("one", &one[..])], &y, true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("feature `one` is constant"), "{err}");
        let big = [1e300, -1e300, 2e300, 0.0];
        let err = ols(&[("big", &big[..])], &y, true).unwrap_err().to_string();
        assert!(err.contains("feature `big` has values too large to square"), "{err}");
        // Without an intercept the constant column is the intercept.
        let (w, _) = ols(&[("x", &x[..]), ("one", &one[..])], &y, false).unwrap();
        assert!(w.iter().all(|v| v.is_finite() && v.abs() < 10.0), "{w:?}");
    }

    #[test]
    fn ridge_shrinks_towards_zero() {
        let x = [0.0, 1.0, 2.0, 3.0];
        let y = [0.0, 2.0, 4.0, 6.0];
        let (w, _) = ridge(&[("a", Col::Slice(&x))], &y, 5.0, true).unwrap();
        // Closed form for one centred feature: w = Σxy / (Σx² + α) = 10 / (5 + 5).
        assert!((w[0] - 1.0).abs() < 1e-15, "{}", w[0]);
    }
}
