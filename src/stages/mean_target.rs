//! Target mean encoding with smoothing, as feature-engine's `MeanEncoder`: each category becomes
//! λ · (mean target of its train rows) + (1 − λ) · (mean target of all train rows), with
//! λ = n / (n + smoothing) for a category of n rows (`smoothing = 0`: plain means), or with
//! `smoothing = "auto"` the category's target variance over the target's (population variances).
//! The raw target is used (not `target_transform`). Unseen categories follow `unseen`: `"error"`
//! (default) or `"prior"` (the overall train mean, as `unseen="encode"`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::count_frequency::apply_maps;
use crate::error::Result;
use crate::frame::Frame;
use crate::vocab::reader::TableReader;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Smoothing {
    Fixed(f64),
    Auto,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Params {
    pub smoothing: Smoothing,
    pub unseen_prior: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rare_label: Option<String>,
}

impl Params {
    pub const NAMES: [&'static str; 3] = ["smoothing", "unseen", "rare_label"];

    pub fn parse(t: &mut TableReader<'_, '_>) -> Result<Params> {
        let src = t.source();
        let smoothing = match t.raw("smoothing") {
            None => Smoothing::Fixed(0.0),
            Some(v) => match v.get_ref() {
                toml::de::DeValue::String(s) if s == "auto" => Smoothing::Auto,
                _ => {
                    let x = t
                        .f64("smoothing")
                        .map_err(|_| src.error(v.span(), "`smoothing` must be a number ≥ 0 or \"auto\""))?;
                    match x {
                        Some(x) if x.value >= 0.0 => Smoothing::Fixed(x.value),
                        _ => return Err(src.error(v.span(), "`smoothing` must be a number ≥ 0 or \"auto\"")),
                    }
                }
            },
        };
        let unseen = t.choice("unseen", &["error", "prior", "rare"])?.map(|u| u.value);
        let unseen_prior = unseen.as_deref() == Some("prior");
        let rare_label = super::parse_rare_label(t, unseen.as_deref() == Some("rare"))?;
        Ok(Params {
            smoothing,
            unseen_prior,
            rare_label,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fitted {
    pub prior: f64,
    pub unseen_prior: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rare_label: Option<String>,
    pub columns: Vec<(String, BTreeMap<String, f64>)>,
}

/// Per category: (rows, sum, sum of squares around the category mean is computed later).
fn groups<'a>(values: &'a crate::frame::Texts, y: &[f64]) -> BTreeMap<&'a str, Vec<f64>> {
    let mut out: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for (v, t) in values.iter().zip(y) {
        if let Some(s) = v {
            out.entry(s).or_default().push(*t);
        }
    }
    out
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn population_variance(v: &[f64]) -> f64 {
    let m = mean(v);
    v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / v.len() as f64
}

pub fn fit(params: &Params, train: &Frame, columns: &[String], y: &[f64]) -> Result<Fitted> {
    let prior = mean(y);
    let y_var = population_variance(y);
    let mut out = Vec::with_capacity(columns.len());
    for name in columns {
        let values = train.complete_categorical(name, "mean_target")?;
        let map = groups(values, y)
            .into_iter()
            .map(|(k, ys)| {
                let n = ys.len() as f64;
                let damping = match params.smoothing {
                    Smoothing::Fixed(s) => s,
                    Smoothing::Auto => population_variance(&ys) / y_var,
                };
                let lambda = n / (n + damping);
                (k.to_string(), lambda * mean(&ys) + (1.0 - lambda) * prior)
            })
            .collect::<BTreeMap<String, f64>>();
        super::check_rare_label(params.rare_label.as_deref(), name, map.keys().map(String::as_str))?;
        out.push((name.clone(), map));
    }
    Ok(Fitted {
        prior,
        unseen_prior: params.unseen_prior,
        rare_label: params.rare_label.clone(),
        columns: out,
    })
}

impl Fitted {
    pub fn apply(&self, frame: Frame) -> Result<Frame> {
        let prior = self.unseen_prior.then_some(self.prior);
        apply_maps(frame, "mean_target", &self.columns, self.rare_label.as_deref(), prior)
    }
}
