//! Logistic regression as scikit-learn's `LogisticRegression` defines it: binary (one coefficient row,
//! the second class positive) or multinomial (one row per class, softmax), minimising
//!
//! ```text
//! Σᵢ log-loss(yᵢ, xᵢ) + (1/C)·((1 − l1_ratio)/2·‖W‖² + l1_ratio·‖W‖₁)
//! ```
//!
//! with the intercepts left out of the penalty. The L2 problem (`l1_ratio = 0`) is solved by Newton's
//! method (Cholesky of the full Hessian, backtracking line search); a problem with an L1 part by proximal
//! Newton: coordinate descent on the penalised quadratic model, then a line search on the true objective.
//! Both converge quadratically, so a few iterations reach the optimum to the last digits; `tol` is
//! scikit-learn's stopping rule (largest gradient component of the mean objective, the minimum-norm
//! subgradient with an L1 part).
//!
//! Sums over rows run in fixed chunks joined in order: the result does not depend on the thread count.

use rayon::prelude::*;

use crate::error::{Error, Result};

/// Rows per chunk of the parallel sums (fixed, so that the order of additions is too).
const CHUNK: usize = 4096;

#[derive(Debug, Clone, Copy)]
pub struct Params {
    pub c: f64,
    pub l1_ratio: f64,
    pub fit_intercept: bool,
    pub max_iter: u64,
    pub tol: f64,
}

/// A fitted logistic model: `rows` coefficient rows (1 for two classes, else one per class).
#[derive(Debug, Clone, PartialEq)]
pub struct Fit {
    pub coefficients: Vec<Vec<f64>>,
    pub intercepts: Vec<f64>,
    pub objective: f64,
    pub iterations: u64,
}

/// The problem: a row-major design with a trailing 1 per row when there is an intercept.
struct Problem<'a> {
    x: Vec<f64>,
    width: usize,
    p: usize,
    y: &'a [u32],
    /// Coefficient rows: 1 (binary) or K.
    rows: usize,
    params: Params,
}

impl Problem<'_> {
    fn n(&self) -> usize {
        self.y.len()
    }

    fn dim(&self) -> usize {
        self.rows * self.width
    }

    /// Index of coefficient `j` (or the intercept, `j == p`) of row `k` in the parameter vector.
    fn at(&self, k: usize, j: usize) -> usize {
        k * self.width + j
    }

    fn penalised(&self, j: usize) -> bool {
        j < self.p
    }

    /// Linear scores of row `i` for each coefficient row.
    fn scores(&self, theta: &[f64], i: usize, out: &mut [f64]) {
        let xi = &self.x[i * self.width..(i + 1) * self.width];
        for (k, o) in out.iter_mut().enumerate() {
            let w = &theta[k * self.width..(k + 1) * self.width];
            *o = xi.iter().zip(w).map(|(a, b)| a * b).sum();
        }
    }

    /// Σ log-loss, and the per-row probabilities' residuals when asked: binary `σ(z) − y`,
    /// multinomial `pₖ − 1[y = k]`.
    fn loss(&self, theta: &[f64]) -> f64 {
        let chunks: Vec<f64> = (0..self.n().div_ceil(CHUNK))
            .into_par_iter()
            .map(|c| {
                let mut z = vec![0.0; self.rows];
                let mut sum = 0.0;
                for i in c * CHUNK..((c + 1) * CHUNK).min(self.n()) {
                    self.scores(theta, i, &mut z);
                    sum += row_loss(&z, self.y[i]);
                }
                sum
            })
            .collect();
        chunks.iter().sum()
    }

    fn penalty(&self, theta: &[f64]) -> f64 {
        let (l2, l1) = self.strengths();
        let mut sum = 0.0;
        for k in 0..self.rows {
            for j in 0..self.p {
                let w = theta[self.at(k, j)];
                sum += 0.5 * l2 * w * w + l1 * w.abs();
            }
        }
        sum
    }

    /// (L2 strength, L1 strength) on the summed objective.
    fn strengths(&self) -> (f64, f64) {
        let Params { c, l1_ratio, .. } = self.params;
        ((1.0 - l1_ratio) / c, l1_ratio / c)
    }

    fn objective(&self, theta: &[f64]) -> f64 {
        self.loss(theta) + self.penalty(theta)
    }

    /// Gradient and Hessian of the summed log-loss (no penalty).
    #[allow(clippy::many_single_char_names)] // c, d, g, h, z as in the algorithm's description
    fn gradient_hessian(&self, theta: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let d = self.dim();
        let parts: Vec<(Vec<f64>, Vec<f64>)> = (0..self.n().div_ceil(CHUNK))
            .into_par_iter()
            .map(|c| {
                let mut g = vec![0.0; d];
                let mut h = vec![0.0; d * d];
                let mut z = vec![0.0; self.rows];
                let mut prob = vec![0.0; self.rows.max(2)];
                let mut curvature = vec![0.0; self.rows * self.rows];
                for i in c * CHUNK..((c + 1) * CHUNK).min(self.n()) {
                    self.scores(theta, i, &mut z);
                    let xi = &self.x[i * self.width..(i + 1) * self.width];
                    let y = self.y[i] as usize;
                    if self.rows == 1 {
                        let s = sigmoid(z[0]);
                        prob[0] = s - if y == 1 { 1.0 } else { 0.0 };
                        curvature[0] = s * (1.0 - s);
                    } else {
                        softmax(&z, &mut prob);
                        for k in 0..self.rows {
                            for l in 0..self.rows {
                                let delta = if k == l { prob[k] } else { 0.0 };
                                curvature[k * self.rows + l] = delta - prob[k] * prob[l];
                            }
                        }
                        prob[y] -= 1.0;
                    }
                    for k in 0..self.rows {
                        for (j, xj) in xi.iter().enumerate() {
                            g[k * self.width + j] += prob[k] * xj;
                        }
                        for l in k..self.rows {
                            let c = curvature[k * self.rows + l];
                            if c == 0.0 {
                                continue;
                            }
                            for (a, xa) in xi.iter().enumerate() {
                                let row = (k * self.width + a) * d + l * self.width;
                                let cx = c * xa;
                                let start = if k == l { a } else { 0 };
                                for (b, xb) in xi.iter().enumerate().skip(start) {
                                    h[row + b] += cx * xb;
                                }
                            }
                        }
                    }
                }
                (g, h)
            })
            .collect();
        let mut g = vec![0.0; d];
        let mut h = vec![0.0; d * d];
        for (pg, ph) in parts {
            for (a, b) in g.iter_mut().zip(&pg) {
                *a += b;
            }
            for (a, b) in h.iter_mut().zip(&ph) {
                *a += b;
            }
        }
        // Only the upper triangle was summed: mirror it.
        for r in 0..d {
            for c in 0..r {
                h[r * d + c] = h[c * d + r];
            }
        }
        (g, h)
    }
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

fn softmax(z: &[f64], out: &mut [f64]) {
    let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for (o, v) in out.iter_mut().zip(z) {
        *o = (v - max).exp();
        sum += *o;
    }
    for o in out.iter_mut().take(z.len()) {
        *o /= sum;
    }
}

/// log(1 + eᶻ) without overflow.
fn log1p_exp(z: f64) -> f64 {
    if z > 0.0 {
        z + (-z).exp().ln_1p()
    } else {
        z.exp().ln_1p()
    }
}

fn row_loss(z: &[f64], y: u32) -> f64 {
    if z.len() == 1 {
        log1p_exp(z[0]) - if y == 1 { z[0] } else { 0.0 }
    } else {
        let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let lse = max + z.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
        lse - z[y as usize]
    }
}

/// Class probabilities (`n_classes` of them) from one row's linear scores.
pub fn probabilities(z: &[f64], out: &mut [f64]) {
    if z.len() == 1 {
        let p = sigmoid(z[0]);
        out[0] = 1.0 - p;
        out[1] = p;
    } else {
        softmax(z, out);
    }
}

/// The objective at given coefficients (rows as in [`Fit`]): how a fit is judged against another.
pub fn objective(
    columns: &[&[f64]],
    y: &[u32],
    n_classes: usize,
    params: Params,
    coefficients: &[Vec<f64>],
    intercepts: &[f64],
) -> f64 {
    let problem = problem(columns, y, n_classes, params);
    let mut theta = vec![0.0; problem.dim()];
    for (k, (w, b)) in coefficients.iter().zip(intercepts).enumerate() {
        theta[problem.at(k, 0)..problem.at(k, problem.p)].copy_from_slice(w);
        if params.fit_intercept {
            theta[problem.at(k, problem.p)] = *b;
        }
    }
    problem.objective(&theta)
}

fn problem<'a>(columns: &[&[f64]], y: &'a [u32], n_classes: usize, params: Params) -> Problem<'a> {
    let n = y.len();
    let p = columns.len();
    let width = p + usize::from(params.fit_intercept);
    let mut x = vec![0.0; n * width];
    for (j, col) in columns.iter().enumerate() {
        for (i, v) in col.iter().enumerate() {
            x[i * width + j] = *v;
        }
    }
    if params.fit_intercept {
        for i in 0..n {
            x[i * width + p] = 1.0;
        }
    }
    Problem {
        x,
        width,
        p,
        y,
        rows: if n_classes == 2 { 1 } else { n_classes },
        params,
    }
}

/// Fits on feature columns and class indices `y` (`0..n_classes`).
pub fn fit(columns: &[&[f64]], y: &[u32], n_classes: usize, params: Params) -> Result<Fit> {
    let problem = problem(columns, y, n_classes, params);
    let (p, rows) = (problem.p, problem.rows);
    let mut theta = vec![0.0; problem.dim()];
    let iterations = if params.l1_ratio > 0.0 {
        proximal_newton(&problem, &mut theta)
    } else {
        newton(&problem, &mut theta)?
    };
    if params.fit_intercept && rows > 1 {
        // Only differences of the intercepts matter to a softmax; centre them as scikit-learn's
        // L-BFGS leaves them (its gradients sum to zero over classes).
        let mean = (0..rows).map(|k| theta[problem.at(k, p)]).sum::<f64>() / rows as f64;
        for k in 0..rows {
            theta[problem.at(k, p)] -= mean;
        }
    }
    let objective = problem.objective(&theta);
    if !objective.is_finite() || theta.iter().any(|t| !t.is_finite()) {
        return Err(Error::data(
            "logistic regression diverged: the classes are perfectly separated or the features are too large",
        )
        .with_hint("lower C (stronger penalty), or scale the features with a [[transform]] step"));
    }
    Ok(Fit {
        coefficients: (0..rows)
            .map(|k| theta[problem.at(k, 0)..problem.at(k, p)].to_vec())
            .collect(),
        intercepts: (0..rows)
            .map(|k| {
                if params.fit_intercept {
                    theta[problem.at(k, p)]
                } else {
                    0.0
                }
            })
            .collect(),
        objective,
        iterations,
    })
}

/// Newton's method for the L2 problem.
#[allow(clippy::many_single_char_names)] // d, g, h, n as in the algorithm's description
fn newton(problem: &Problem<'_>, theta: &mut [f64]) -> Result<u64> {
    let d = problem.dim();
    let (l2, _) = problem.strengths();
    let n = problem.n() as f64;
    let mut f = problem.objective(theta);
    for iteration in 0..problem.params.max_iter {
        let (mut g, mut h) = problem.gradient_hessian(theta);
        for k in 0..problem.rows {
            for j in 0..problem.p {
                let a = problem.at(k, j);
                g[a] += l2 * theta[a];
                h[a * d + a] += l2;
            }
        }
        if g.iter().fold(0.0_f64, |m, v| m.max(v.abs())) / n <= problem.params.tol {
            return Ok(iteration);
        }
        if problem.rows > 1 && problem.params.fit_intercept {
            // The intercepts move the softmax only through their differences: remove that flat
            // direction (the gradient has no part along it).
            let scale = (0..d).map(|a| h[a * d + a]).fold(0.0, f64::max).max(1.0);
            for k in 0..problem.rows {
                for l in 0..problem.rows {
                    h[problem.at(k, problem.p) * d + problem.at(l, problem.p)] += scale;
                }
            }
        }
        let step = cholesky_solve(&mut h, &g, d).ok_or_else(|| {
            Error::data("the logistic regression Hessian is singular")
                .with_hint("drop constant or duplicated features, or lower C (stronger penalty)")
        })?;
        let slope: f64 = g.iter().zip(&step).map(|(a, b)| a * b).sum();
        let Some((next, f_next)) = line_search(theta, &step, f, -slope, |t| problem.objective(t)) else {
            return Ok(iteration); // no step lowers the objective: it is at its optimum to rounding
        };
        theta.copy_from_slice(&next);
        f = f_next;
    }
    Ok(problem.params.max_iter)
}

/// Backtracking along `theta − t·step` until the objective falls by a fraction of `decrease`; `None`
/// when no step lowers it.
fn line_search(
    theta: &[f64],
    step: &[f64],
    f: f64,
    decrease: f64,
    objective: impl Fn(&[f64]) -> f64,
) -> Option<(Vec<f64>, f64)> {
    let mut t = 1.0;
    let mut next = vec![0.0; theta.len()];
    for _ in 0..60 {
        for ((o, a), s) in next.iter_mut().zip(theta).zip(step) {
            *o = a - t * s;
        }
        let f_next = objective(&next);
        if f_next <= f - 1e-4 * t * decrease.max(0.0) && f_next < f {
            return Some((next, f_next));
        }
        t *= 0.5;
    }
    None
}

/// Solves `H·s = g` for symmetric positive definite `H` (overwritten by its factor).
fn cholesky_solve(h: &mut [f64], g: &[f64], d: usize) -> Option<Vec<f64>> {
    for j in 0..d {
        let mut diag = h[j * d + j];
        for k in 0..j {
            diag -= h[j * d + k] * h[j * d + k];
        }
        if diag <= 0.0 || !diag.is_finite() {
            return None;
        }
        let diag = diag.sqrt();
        h[j * d + j] = diag;
        for i in j + 1..d {
            let mut v = h[i * d + j];
            for k in 0..j {
                v -= h[i * d + k] * h[j * d + k];
            }
            h[i * d + j] = v / diag;
        }
    }
    let mut s = g.to_vec();
    for i in 0..d {
        for k in 0..i {
            s[i] -= h[i * d + k] * s[k];
        }
        s[i] /= h[i * d + i];
    }
    for i in (0..d).rev() {
        for k in i + 1..d {
            s[i] -= h[k * d + i] * s[k];
        }
        s[i] /= h[i * d + i];
    }
    Some(s)
}

fn soft_threshold(v: f64, t: f64) -> f64 {
    if v > t {
        v - t
    } else if v < -t {
        v + t
    } else {
        0.0
    }
}

/// Largest entry of the minimum-norm subgradient of the objective (0 at the optimum).
fn subgradient_norm(problem: &Problem<'_>, theta: &[f64], g: &[f64]) -> f64 {
    let (l2, l1) = problem.strengths();
    let mut worst = 0.0_f64;
    for k in 0..problem.rows {
        for j in 0..problem.width {
            let a = problem.at(k, j);
            let v = if problem.penalised(j) {
                let smooth = g[a] + l2 * theta[a];
                if theta[a] == 0.0 {
                    (smooth.abs() - l1).max(0.0)
                } else {
                    (smooth + l1 * theta[a].signum()).abs()
                }
            } else {
                g[a].abs()
            };
            worst = worst.max(v);
        }
    }
    worst
}

/// Proximal Newton for a penalty with an L1 part.
#[allow(clippy::many_single_char_names)] // d, g, h, n, u as in the algorithm's description
fn proximal_newton(problem: &Problem<'_>, theta: &mut [f64]) -> u64 {
    let d = problem.dim();
    let (l2, l1) = problem.strengths();
    let n = problem.n() as f64;
    let mut f = problem.objective(theta);
    for iteration in 0..problem.params.max_iter {
        let (g, h) = problem.gradient_hessian(theta);
        if subgradient_norm(problem, theta, &g) / n <= problem.params.tol {
            return iteration;
        }
        // Coordinate descent on q(u) = gᵀ(u − θ) + ½(u − θ)ᵀH(u − θ) + penalty(u), from u = θ.
        let mut u = theta.to_vec();
        let mut hd = vec![0.0; d]; // H·(u − θ)
        for _sweep in 0..10_000 {
            let mut largest = 0.0_f64;
            let mut scale = 0.0_f64;
            for a in 0..d {
                let j = a % problem.width;
                let haa = h[a * d + a];
                let (mu, lambda) = if problem.penalised(j) { (l2, l1) } else { (0.0, 0.0) };
                let denom = haa + mu;
                if denom <= 0.0 {
                    continue;
                }
                let linear = g[a] + hd[a] - haa * (u[a] - theta[a]) - haa * theta[a];
                let new = soft_threshold(-linear, lambda) / denom;
                let change = new - u[a];
                if change != 0.0 {
                    for (b, v) in hd.iter_mut().enumerate() {
                        *v += h[b * d + a] * change;
                    }
                    u[a] = new;
                }
                largest = largest.max(change.abs() * denom.sqrt());
                scale = scale.max(new.abs() * denom.sqrt());
            }
            if largest <= 1e-13 * scale.max(1e-300) {
                break;
            }
        }
        let step: Vec<f64> = theta.iter().zip(&u).map(|(t, v)| t - v).collect();
        // Predicted decrease of the model (Tseng and Yun's Δ, negated).
        let smooth: f64 = g.iter().zip(&step).map(|(a, b)| a * b).sum();
        let decrease = smooth + problem.penalty(theta) - problem.penalty(&u);
        let Some((next, f_next)) = line_search(theta, &step, f, decrease, |t| problem.objective(t)) else {
            return iteration;
        };
        theta.copy_from_slice(&next);
        f = f_next;
    }
    problem.params.max_iter
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(c: f64, l1_ratio: f64) -> Params {
        Params {
            c,
            l1_ratio,
            fit_intercept: true,
            max_iter: 100,
            tol: 1e-10,
        }
    }

    #[test]
    fn the_gradient_vanishes_at_the_fit() {
        let x = [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0];
        let y = [0, 0, 1, 0, 1, 0, 1, 1];
        let fit = fit(&[&x], &y, 2, params(1.0, 0.0)).unwrap();
        // ∂/∂b: Σ (σ(z) − y) = 0;  ∂/∂w: Σ (σ(z) − y)·x + w/C = 0.
        let (w, b) = (fit.coefficients[0][0], fit.intercepts[0]);
        let r: Vec<f64> = x
            .iter()
            .zip(&y)
            .map(|(xi, yi)| sigmoid(w * xi + b) - f64::from(*yi))
            .collect();
        assert!(r.iter().sum::<f64>().abs() < 1e-12);
        let gw: f64 = r.iter().zip(&x).map(|(a, b)| a * b).sum::<f64>() + w;
        assert!(gw.abs() < 1e-12, "{gw}");
    }

    #[test]
    fn a_strong_l1_penalty_zeroes_a_useless_feature() {
        let signal = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0];
        let noise = [1.0, -1.0, 1.0, -1.0, -1.0, 1.0, -1.0, 1.0];
        let y = [0, 0, 1, 0, 1, 1, 1, 1];
        let fit = fit(&[&signal, &noise], &y, 2, params(0.5, 1.0)).unwrap();
        assert_eq!(fit.coefficients[0][1], 0.0);
        assert!(fit.coefficients[0][0] > 0.0);
    }

    #[test]
    fn multinomial_probabilities_sum_to_one_and_intercepts_are_centred() {
        let x = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
        let y = [0, 0, 1, 0, 1, 2, 1, 2, 2];
        let fit = fit(&[&x], &y, 3, params(10.0, 0.0)).unwrap();
        assert!(fit.intercepts.iter().sum::<f64>().abs() < 1e-12);
        let mut p = [0.0; 3];
        let z: Vec<f64> = (0..3)
            .map(|k| fit.coefficients[k][0] * 4.0 + fit.intercepts[k])
            .collect();
        probabilities(&z, &mut p);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-15);
    }
}
