//! Rare-label grouping: categories rarer than `tolerance` in train become `replace_with`.
//!
//! Follows feature-engine's `RareLabelEncoder` (with `missing_values="ignore"`): a column is grouped only
//! when it has more than `n_categories` distinct values in train (missing counts as one value, as in
//! `Series.unique()`); frequencies are fractions of the non-missing train rows; with
//! `max_n_categories`, only that many of the frequent labels are kept (ties by count broken by the
//! label's text, where feature-engine leaves the order to pandas' sort). Missing values stay missing;
//! any label not kept — including one never seen in train — becomes `replace_with`.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::frame::{ColumnData, Frame, category_counts};
use crate::vocab::reader::TableReader;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Params {
    pub tolerance: f64,
    pub n_categories: u64,
    pub max_n_categories: Option<u64>,
    pub replace_with: String,
}

impl Params {
    pub const NAMES: [&'static str; 4] = ["tolerance", "n_categories", "max_n_categories", "replace_with"];

    pub fn parse(t: &mut TableReader<'_, '_>) -> Result<Params> {
        let tolerance = match t.f64("tolerance")? {
            None => 0.05,
            Some(v) if (0.0..=1.0).contains(&v.value) => v.value,
            Some(v) => {
                return Err(Error::spec(
                    format!(
                        "`tolerance` must be between 0 and 1 (a fraction of train rows), found {}",
                        v.value
                    ),
                    Some(v.location),
                ));
            }
        };
        let n_categories = t.u64("n_categories")?.map_or(10, |v| v.value);
        let max_n_categories = match t.u64("max_n_categories")? {
            Some(v) if v.value == 0 => {
                return Err(Error::spec("`max_n_categories` must be at least 1", Some(v.location)));
            }
            other => other.map(|v| v.value),
        };
        let replace_with = t.str("replace_with")?.map_or_else(|| "Rare".to_string(), |v| v.value);
        Ok(Params {
            tolerance,
            n_categories,
            max_n_categories,
            replace_with,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grouping {
    pub column: String,
    /// Labels kept as they are, most frequent first.
    pub frequent: Vec<String>,
    /// Whether the column had more than `n_categories` values (if not, every train label is kept).
    pub grouped: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fitted {
    pub replace_with: String,
    pub columns: Vec<Grouping>,
}

pub fn fit(params: &Params, train: &Frame, columns: &[String]) -> Result<Fitted> {
    let mut out = Vec::with_capacity(columns.len());
    for name in columns {
        let Some(ColumnData::Categorical(values)) = train.column(name).map(|c| &c.data) else {
            return Err(Error::internal(format!("rare_label got non-categorical column {name}")));
        };
        let counts = category_counts(values);
        let present: usize = counts.values().sum();
        let has_missing = present < values.len();
        let distinct = counts.len() + usize::from(has_missing);
        let mut ranked: Vec<(&str, usize)> = counts.into_iter().collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        let grouped = distinct as u64 > params.n_categories;
        let mut frequent: Vec<String> = if grouped {
            ranked
                .iter()
                .filter(|(_, n)| present > 0 && (*n as f64 / present as f64) >= params.tolerance)
                .map(|(s, _)| (*s).to_string())
                .collect()
        } else {
            ranked.iter().map(|(s, _)| (*s).to_string()).collect()
        };
        if let (true, Some(max)) = (grouped, params.max_n_categories) {
            frequent.truncate(usize::try_from(max).unwrap_or(usize::MAX));
        }
        out.push(Grouping {
            column: name.clone(),
            frequent,
            grouped,
        });
    }
    Ok(Fitted {
        replace_with: params.replace_with.clone(),
        columns: out,
    })
}

impl Fitted {
    pub fn apply(&self, mut frame: Frame) -> Result<Frame> {
        let rare: Arc<str> = Arc::from(self.replace_with.as_str());
        for g in &self.columns {
            let idx = frame
                .index_of(&g.column)
                .ok_or_else(|| frame.missing_column(&g.column))?;
            let ColumnData::Categorical(values) = &mut frame.columns[idx].data else {
                return Err(Error::data(format!(
                    "column \"{}\" is numeric here but was categorical when rare labels were learned",
                    g.column
                )));
            };
            // Decided once per category, not once per row.
            let keep: BTreeSet<&str> = g.frequent.iter().map(String::as_str).collect();
            *values = values.recode(
                |s| {
                    if keep.contains(s) {
                        Arc::from(s)
                    } else {
                        Arc::clone(&rare)
                    }
                },
                None,
            );
        }
        Ok(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{ReadOptions, read_csv};

    #[test]
    fn groups_below_tolerance_and_maps_unseen_to_rare() {
        let train = read_csv(b"c\na\na\na\nb\nb\nc\n", &ReadOptions::default(), "t.csv").unwrap();
        let p = Params {
            tolerance: 0.2,
            n_categories: 2,
            max_n_categories: None,
            replace_with: "Rare".into(),
        };
        let f = fit(&p, &train, &["c".into()]).unwrap();
        assert_eq!(f.columns[0].frequent, ["a", "b"]);
        let new = read_csv(b"c\nc\nzzz\na\n", &ReadOptions::default(), "n.csv").unwrap();
        let out = f.apply(new).unwrap();
        let ColumnData::Categorical(v) = &out.columns[0].data else {
            panic!()
        };
        let v: Vec<&str> = v.iter().map(|x| x.unwrap()).collect();
        assert_eq!(v, ["Rare", "Rare", "a"]);
    }

    #[test]
    fn columns_with_few_labels_are_left_alone() {
        let train = read_csv(b"c\na\na\na\na\nb\n", &ReadOptions::default(), "t.csv").unwrap();
        let p = Params {
            tolerance: 0.5,
            n_categories: 10,
            max_n_categories: None,
            replace_with: "Rare".into(),
        };
        let f = fit(&p, &train, &["c".into()]).unwrap();
        assert!(!f.columns[0].grouped);
        assert_eq!(f.columns[0].frequent, ["a", "b"]);
    }
}
