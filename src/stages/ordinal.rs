//! Ordinal encoding: each category becomes an integer code.
//!
//! `method = "lexical"` numbers the sorted train categories 0..k-1 (scikit-learn `OrdinalEncoder`);
//! `"frequency"` numbers them by train count, most frequent first (ties by text); `"target_mean"` by
//! ascending mean target (feature-engine's `encoding_method="ordered"`); `"explicit"` uses the
//! order given in `categories` for every selected column (e.g. a quality scale). Unseen categories and
//! missing values at apply time follow `unseen`: `"error"` (default) or `"encode"`, which writes
//! `unknown_value` (default -1, as `handle_unknown="use_encoded_value"`).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::frame::{ColumnData, Frame};
use crate::vocab::reader::TableReader;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Lexical,
    Frequency,
    /// Ascending mean target of the category's train rows (feature-engine's "ordered"); ties by text.
    TargetMean,
    Explicit(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unseen {
    Error,
    Encode,
    /// Encode as the rare label's code.
    Rare,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Params {
    pub method: Method,
    pub unseen: Unseen,
    pub unknown_value: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rare_label: Option<String>,
}

impl Params {
    pub const NAMES: [&'static str; 5] = ["method", "categories", "unseen", "unknown_value", "rare_label"];

    pub fn parse(t: &mut TableReader<'_, '_>) -> Result<Params> {
        let method = t.choice("method", &["lexical", "frequency", "target_mean", "explicit"])?;
        let categories = t.str_list("categories")?;
        let method = match (method.as_ref().map(|m| m.value.as_str()), categories) {
            (Some("explicit"), Some(list)) => {
                let mut seen = BTreeSet::new();
                for c in &list {
                    if !seen.insert(c.value.clone()) {
                        return Err(Error::spec(
                            format!("category \"{}\" is listed twice", c.value),
                            Some(c.location.clone()),
                        ));
                    }
                }
                if list.is_empty() {
                    return Err(t.missing("categories", "the categories in order, lowest first"));
                }
                Method::Explicit(list.into_iter().map(|c| c.value).collect())
            }
            (Some("explicit"), None) => {
                return Err(t.missing("categories", "the categories in order, lowest first"));
            }
            (_, Some(list)) => {
                return Err(Error::spec(
                    "`categories` is only used with method = \"explicit\"",
                    list.first().map(|c| c.location.clone()).or_else(|| Some(t.location())),
                )
                .with_hint("add method = \"explicit\" or remove `categories`"));
            }
            (Some("frequency"), None) => Method::Frequency,
            (Some("target_mean"), None) => Method::TargetMean,
            _ => Method::Lexical,
        };
        let unseen = match t.choice("unseen", &["error", "encode", "rare"])?.map(|v| v.value) {
            Some(v) if v == "encode" => Unseen::Encode,
            Some(v) if v == "rare" => Unseen::Rare,
            _ => Unseen::Error,
        };
        let unknown_value = t.f64("unknown_value")?.map_or(-1.0, |v| v.value);
        let rare_label = super::parse_rare_label(t, unseen == Unseen::Rare)?;
        Ok(Params {
            method,
            unseen,
            unknown_value,
            rare_label,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mapping {
    pub column: String,
    /// Categories in code order: the first is 0.
    pub categories: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fitted {
    pub unseen: Unseen,
    pub unknown_value: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rare_label: Option<String>,
    pub columns: Vec<Mapping>,
}

pub fn fit(params: &Params, train: &Frame, columns: &[String], y: Option<&[f64]>) -> Result<Fitted> {
    let mut out = Vec::with_capacity(columns.len());
    for name in columns {
        let values = train.complete_categorical(name, "ordinal encoding")?;
        let counts = crate::frame::category_counts(values);
        let categories = match &params.method {
            Method::Lexical => counts.keys().map(|s| (*s).to_string()).collect(),
            Method::TargetMean => {
                let y = y.ok_or_else(|| Error::internal("target_mean ordering without a target"))?;
                let mut sums: BTreeMap<&str, (f64, usize)> = BTreeMap::new();
                for (v, t) in values.iter().zip(y) {
                    if let Some(s) = v {
                        let e = sums.entry(s).or_insert((0.0, 0));
                        e.0 += t;
                        e.1 += 1;
                    }
                }
                let mut ranked: Vec<(&str, f64)> = sums.into_iter().map(|(k, (s, n))| (k, s / n as f64)).collect();
                ranked.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(b.0)));
                ranked.into_iter().map(|(s, _)| s.to_string()).collect()
            }
            Method::Frequency => {
                let mut ranked: Vec<(&str, usize)> = counts.into_iter().collect();
                ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
                ranked.into_iter().map(|(s, _)| s.to_string()).collect()
            }
            Method::Explicit(order) => {
                if let Some(extra) = counts.keys().find(|c| !order.iter().any(|o| o == *c)) {
                    return Err(Error::data(format!(
                        "column \"{name}\" holds \"{extra}\" in train, which is not in the step's `categories`"
                    ))
                    .with_hint("add it to `categories` in its place, or group it with rare_label first")
                    .for_column(name));
                }
                order.clone()
            }
        };
        super::check_rare_label(
            params.rare_label.as_deref(),
            name,
            categories.iter().map(String::as_str),
        )?;
        out.push(Mapping {
            column: name.clone(),
            categories,
        });
    }
    Ok(Fitted {
        unseen: params.unseen,
        unknown_value: params.unknown_value,
        rare_label: params.rare_label.clone(),
        columns: out,
    })
}

impl Fitted {
    pub fn apply(&self, mut frame: Frame) -> Result<Frame> {
        for m in &self.columns {
            let idx = frame
                .index_of(&m.column)
                .ok_or_else(|| frame.missing_column(&m.column))?;
            let ColumnData::Categorical(values) = &frame.columns[idx].data else {
                return Err(Error::data(format!(
                    "column \"{}\" is numeric here but was categorical when the ordinal encoding was learned",
                    m.column
                )));
            };
            let code: BTreeMap<&str, f64> = m
                .categories
                .iter()
                .enumerate()
                .map(|(i, c)| (c.as_str(), i as f64))
                .collect();
            let per_category = crate::frame::lookup_categories(&code, values);
            let mut out = Vec::with_capacity(values.len());
            for r in 0..values.len() {
                match values.code(r).and_then(|c| per_category[c as usize]) {
                    Some(&x) => out.push(x),
                    None if self.unseen == Unseen::Encode => out.push(self.unknown_value),
                    None if self.unseen == Unseen::Rare => {
                        let rare = self.rare_label.as_deref().unwrap_or("Rare");
                        out.push(code.get(rare).copied().unwrap_or(self.unknown_value));
                    }
                    None => {
                        return Err(super::unseen_error(
                            "ordinal",
                            &m.column,
                            values.get(r).unwrap_or("(missing)"),
                            frame.lines[r],
                            &frame.source,
                            m.categories.len(),
                        ));
                    }
                }
            }
            frame.columns[idx].data = ColumnData::Numeric(out.into());
        }
        Ok(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{ReadOptions, read_csv};

    #[test]
    fn explicit_order_and_unknown_value() {
        let train = read_csv(b"q\nGd\nTA\nEx\n", &ReadOptions::default(), "t.csv").unwrap();
        let p = Params {
            method: Method::Explicit(vec!["Po".into(), "Fa".into(), "TA".into(), "Gd".into(), "Ex".into()]),
            unseen: Unseen::Encode,
            unknown_value: -1.0,
            rare_label: None,
        };
        let f = fit(&p, &train, &["q".into()], None).unwrap();
        let new = read_csv(b"q\nEx\nPo\nXX\n", &ReadOptions::default(), "n.csv").unwrap();
        assert_eq!(f.apply(new).unwrap().numeric("q").unwrap(), &[4.0, 0.0, -1.0]);
    }

    #[test]
    fn lexical_and_frequency_orders() {
        let train = read_csv(b"c\nb\nb\na\nc\nc\nc\n", &ReadOptions::default(), "t.csv").unwrap();
        let lex = Params {
            method: Method::Lexical,
            unseen: Unseen::Error,
            unknown_value: -1.0,
            rare_label: None,
        };
        assert_eq!(
            fit(&lex, &train, &["c".into()], None).unwrap().columns[0].categories,
            ["a", "b", "c"]
        );
        let freq = Params {
            method: Method::Frequency,
            ..lex
        };
        assert_eq!(
            fit(&freq, &train, &["c".into()], None).unwrap().columns[0].categories,
            ["c", "b", "a"]
        );
    }
}
