//! Regression metrics as scikit-learn defines them, summed in row order.

use std::collections::BTreeMap;

use crate::spec::Metric;

pub fn rmse(y: &[f64], p: &[f64]) -> f64 {
    (y.iter().zip(p).map(|(a, b)| (a - b) * (a - b)).sum::<f64>() / y.len() as f64).sqrt()
}

pub fn mae(y: &[f64], p: &[f64]) -> f64 {
    y.iter().zip(p).map(|(a, b)| (a - b).abs()).sum::<f64>() / y.len() as f64
}

/// R², with scikit-learn's convention for a constant target: 1 for a perfect fit, else 0.
pub fn r2(y: &[f64], p: &[f64]) -> f64 {
    let mean = y.iter().sum::<f64>() / y.len() as f64;
    let ss_res: f64 = y.iter().zip(p).map(|(a, b)| (a - b) * (a - b)).sum();
    let ss_tot: f64 = y.iter().map(|a| (a - mean) * (a - mean)).sum();
    if ss_tot == 0.0 {
        return if ss_res == 0.0 { 1.0 } else { 0.0 };
    }
    1.0 - ss_res / ss_tot
}

pub fn compute(metrics: &[Metric], y: &[f64], p: &[f64]) -> BTreeMap<String, f64> {
    metrics
        .iter()
        .map(|m| {
            let v = match m {
                Metric::Rmse => rmse(y, p),
                Metric::Mae => mae(y, p),
                Metric::R2 => r2(y, p),
            };
            (m.name().to_string(), v)
        })
        .collect()
}
