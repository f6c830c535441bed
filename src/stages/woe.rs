//! Weight of evidence, as feature-engine's `WoEEncoder`, for a binary (0/1) target: each category
//! becomes ln(p₁ / p₀), where p₁ is its share of the train rows with target 1 and p₀ its share of the
//! rows with target 0. A category absent from one class has no finite weight: an error naming it,
//! unless `fill_value` replaces the zero share (feature-engine's `fill_value`). Unseen categories at
//! apply time follow `unseen`: `"error"` (default) or `"zero"` (no evidence either way).

// The target's classes are the exact values 0 and 1.
#![allow(clippy::float_cmp)]

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::count_frequency::apply_maps;
use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::vocab::reader::TableReader;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Params {
    pub fill_value: Option<f64>,
    pub unseen_zero: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rare_label: Option<String>,
}

impl Params {
    pub const NAMES: [&'static str; 3] = ["fill_value", "unseen", "rare_label"];

    pub fn parse(t: &mut TableReader<'_, '_>) -> Result<Params> {
        let fill_value = match t.f64("fill_value")? {
            Some(v) if v.value <= 0.0 => {
                return Err(Error::spec(
                    "`fill_value` replaces a zero share: it must be above 0",
                    Some(v.location),
                ));
            }
            other => other.map(|v| v.value),
        };
        let unseen = t.choice("unseen", &["error", "zero", "rare"])?.map(|u| u.value);
        let rare_label = super::parse_rare_label(t, unseen.as_deref() == Some("rare"))?;
        Ok(Params {
            fill_value,
            unseen_zero: unseen.as_deref() == Some("zero"),
            rare_label,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fitted {
    pub unseen_zero: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rare_label: Option<String>,
    pub columns: Vec<(String, BTreeMap<String, f64>)>,
}

pub fn fit(params: &Params, train: &Frame, columns: &[String], y: &[f64]) -> Result<Fitted> {
    if let Some(r) = y.iter().position(|v| *v != 0.0 && *v != 1.0) {
        return Err(Error::data(format!(
            "weight of evidence needs a binary target of 0 and 1, but line {} of {} holds {}",
            train.lines[r], train.source, y[r]
        )));
    }
    let total_pos: f64 = y.iter().sum();
    let total_neg = y.len() as f64 - total_pos;
    if total_pos == 0.0 || total_neg == 0.0 {
        return Err(Error::data(
            "weight of evidence needs both target classes in the train split",
        ));
    }
    let mut out = Vec::with_capacity(columns.len());
    for name in columns {
        let values = train.complete_categorical(name, "woe")?;
        let mut counts: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
        for (v, t) in values.iter().zip(y) {
            let e = counts.entry(v.unwrap_or_default()).or_insert((0.0, 0.0));
            if *t == 1.0 {
                e.0 += 1.0;
            } else {
                e.1 += 1.0;
            }
        }
        let mut map = BTreeMap::new();
        for (category, (pos, neg)) in counts {
            let (mut p, mut q) = (pos / total_pos, neg / total_neg);
            if p == 0.0 || q == 0.0 {
                let Some(fill) = params.fill_value else {
                    return Err(Error::data(format!(
                        "category \"{category}\" of column \"{name}\" occurs only with target {} in train, so its weight of evidence is infinite",
                        u8::from(p != 0.0)
                    ))
                    .with_hint("group rare labels first, or set fill_value"));
                };
                if p == 0.0 {
                    p = fill;
                }
                if q == 0.0 {
                    q = fill;
                }
            }
            map.insert(category.to_string(), (p / q).ln());
        }
        super::check_rare_label(params.rare_label.as_deref(), name, map.keys().map(String::as_str))?;
        out.push((name.clone(), map));
    }
    Ok(Fitted {
        unseen_zero: params.unseen_zero,
        rare_label: params.rare_label.clone(),
        columns: out,
    })
}

impl Fitted {
    pub fn apply(&self, frame: Frame) -> Result<Frame> {
        apply_maps(
            frame,
            "woe",
            &self.columns,
            self.rare_label.as_deref(),
            self.unseen_zero.then_some(0.0),
        )
    }
}
