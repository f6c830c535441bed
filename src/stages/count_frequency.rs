//! Count and frequency encoding, as feature-engine's `CountFrequencyEncoder`: each category becomes
//! its number of train rows (`method = "count"`) or that number divided by the train rows
//! (`"frequency"`). Unseen categories and missing values at apply time follow `unseen`: `"error"`
//! (default) or `"zero"` (encode as 0, as `unseen="encode"`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::frame::{ColumnData, Frame, category_counts, lookup_categories};
use crate::vocab::reader::TableReader;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Params {
    pub frequency: bool,
    pub unseen_zero: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rare_label: Option<String>,
}

impl Params {
    pub const NAMES: [&'static str; 3] = ["method", "unseen", "rare_label"];

    pub fn parse(t: &mut TableReader<'_, '_>) -> Result<Params> {
        let frequency = t
            .choice("method", &["count", "frequency"])?
            .is_some_and(|m| m.value == "frequency");
        let unseen = t.choice("unseen", &["error", "zero", "rare"])?.map(|u| u.value);
        let unseen_zero = unseen.as_deref() == Some("zero");
        let rare_label = super::parse_rare_label(t, unseen.as_deref() == Some("rare"))?;
        Ok(Params {
            frequency,
            unseen_zero,
            rare_label,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fitted {
    pub unseen_zero: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rare_label: Option<String>,
    /// Per column, the value of each train category.
    pub columns: Vec<(String, BTreeMap<String, f64>)>,
}

pub fn fit(params: &Params, train: &Frame, columns: &[String]) -> Result<Fitted> {
    let mut out = Vec::with_capacity(columns.len());
    for name in columns {
        let values = train.complete_categorical(name, "count_frequency")?;
        let n = values.len() as f64;
        let map: BTreeMap<String, f64> = category_counts(values)
            .into_iter()
            .map(|(k, c)| (k.to_string(), if params.frequency { c as f64 / n } else { c as f64 }))
            .collect();
        super::check_rare_label(params.rare_label.as_deref(), name, map.keys().map(String::as_str))?;
        out.push((name.clone(), map));
    }
    Ok(Fitted {
        unseen_zero: params.unseen_zero,
        rare_label: params.rare_label.clone(),
        columns: out,
    })
}

/// Applies per-column category maps (count, target mean, weight of evidence): unseen categories take
/// the rare label's value when there is one, else `fixed`, else are an error.
pub fn apply_maps(
    mut frame: Frame,
    step: &str,
    columns: &[(String, BTreeMap<String, f64>)],
    rare_label: Option<&str>,
    fixed: Option<f64>,
) -> Result<Frame> {
    for (column, map) in columns {
        apply_mapping(&mut frame, step, column, map, unseen_value(map, rare_label, fixed))?;
    }
    Ok(frame)
}

/// What an unseen category becomes: the rare label's value, a fixed number, or (None) an error.
pub fn unseen_value(map: &BTreeMap<String, f64>, rare_label: Option<&str>, fixed: Option<f64>) -> Option<f64> {
    match rare_label {
        Some(r) => map.get(r).copied(),
        None => fixed,
    }
}

/// Replaces each category by its mapped number (shared by the count and target-mean encoders).
pub fn apply_mapping(
    frame: &mut Frame,
    step: &str,
    column: &str,
    map: &BTreeMap<String, f64>,
    unseen: Option<f64>,
) -> Result<()> {
    let idx = frame.index_of(column).ok_or_else(|| frame.missing_column(column))?;
    let ColumnData::Categorical(values) = &frame.columns[idx].data else {
        return Err(Error::data(format!(
            "column \"{column}\" is numeric here but was categorical when {step} was fitted"
        )));
    };
    let table: BTreeMap<&str, f64> = map.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let per_category = lookup_categories(&table, values);
    let mut out = Vec::with_capacity(values.len());
    for r in 0..values.len() {
        match (values.code(r).and_then(|c| per_category[c as usize]), unseen) {
            (Some(x), _) => out.push(*x),
            (None, Some(x)) => out.push(x),
            (None, None) => {
                return Err(super::unseen_error(
                    step,
                    column,
                    values.get(r).unwrap_or("(missing)"),
                    frame.lines[r],
                    &frame.source,
                    map.len(),
                ));
            }
        }
    }
    frame.columns[idx].data = ColumnData::Numeric(out.into());
    Ok(())
}

impl Fitted {
    pub fn apply(&self, frame: Frame) -> Result<Frame> {
        apply_maps(
            frame,
            "count_frequency",
            &self.columns,
            self.rare_label.as_deref(),
            self.unseen_zero.then_some(0.0),
        )
    }
}
