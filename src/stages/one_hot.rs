//! One-hot encoding: one 0/1 column `<column>_<category>` per train category, sorted as scikit-learn's
//! `OneHotEncoder` sorts them; the dummies replace the column and are appended at the end, in column
//! order (as feature-engine does). `drop_first` drops each column's first category (scikit-learn
//! `drop="first"`). Unseen categories and missing values at apply time follow `unseen`:
//! `"error"` (default) or `"ignore"` (all zeros, as `handle_unknown="ignore"`).

use std::collections::{BTreeMap, BTreeSet};

use rayon::prelude::*;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use polars_arrow::bitmap::MutableBitmap;

use crate::frame::{Column, ColumnData, Frame, Numbers, Texts, category_counts, lookup_categories};
use crate::vocab::reader::TableReader;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unseen {
    Error,
    Ignore,
    /// Encode as the rare label's column.
    Rare,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Params {
    pub drop_first: bool,
    pub unseen: Unseen,
    /// Only the k most frequent train categories get a column (ties by text); the others are zeros.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rare_label: Option<String>,
}

impl Params {
    pub const NAMES: [&'static str; 4] = ["drop_first", "unseen", "top_k", "rare_label"];

    pub fn parse(t: &mut TableReader<'_, '_>) -> Result<Params> {
        let drop_first = t.bool("drop_first")?.unwrap_or(false);
        let unseen = match t.choice("unseen", &["error", "ignore", "rare"])?.map(|v| v.value) {
            Some(v) if v == "ignore" => Unseen::Ignore,
            Some(v) if v == "rare" => Unseen::Rare,
            _ => Unseen::Error,
        };
        let top_k = match t.u64("top_k")? {
            Some(k) if k.value == 0 => return Err(Error::spec("`top_k` must be at least 1", Some(k.location))),
            Some(k) if drop_first => {
                return Err(
                    Error::spec("`top_k` and `drop_first` do not go together", Some(k.location))
                        .with_hint("with top_k every other category is already all zeros"),
                );
            }
            other => other.map(|k| k.value),
        };
        let rare_label = super::parse_rare_label(t, unseen == Unseen::Rare)?;
        Ok(Params {
            drop_first,
            unseen,
            top_k,
            rare_label,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Encoding {
    pub column: String,
    /// The categories that get a dummy column, in output order.
    pub categories: Vec<String>,
    /// The category dropped by `drop_first` (encoded as all zeros).
    pub dropped: Option<String>,
    /// With `top_k`: the train categories left out (encoded as all zeros, not as unseen).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub others: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fitted {
    pub unseen: Unseen,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rare_label: Option<String>,
    pub columns: Vec<Encoding>,
}

pub fn fit(params: &Params, train: &Frame, columns: &[String]) -> Result<Fitted> {
    let mut out = Vec::with_capacity(columns.len());
    let mut new_names = BTreeSet::new();
    for name in columns {
        let values = train.complete_categorical(name, "one-hot encoding")?;
        let counts = category_counts(values);
        let mut categories: Vec<String> = counts.keys().map(|s| (*s).to_string()).collect();
        let mut others = Vec::new();
        if let Some(k) = params.top_k {
            // feature-engine's order: most frequent first (ties by text here).
            let mut ranked: Vec<(&str, usize)> = counts.iter().map(|(s, n)| (*s, *n)).collect();
            ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
            let k = usize::try_from(k).unwrap_or(usize::MAX);
            categories = ranked.iter().take(k).map(|(s, _)| (*s).to_string()).collect();
            others = ranked.iter().skip(k).map(|(s, _)| (*s).to_string()).collect();
        }
        let dropped = if params.drop_first && !categories.is_empty() {
            Some(categories.remove(0))
        } else {
            None
        };
        for c in &categories {
            let new = format!("{name}_{c}");
            if !new_names.insert(new.clone()) || (train.column(&new).is_some() && !columns.contains(&new)) {
                return Err(
                    Error::data(format!("one-hot column \"{new}\" would clash with another column"))
                        .with_hint("rename the column or the category"),
                );
            }
        }
        super::check_rare_label(
            params.rare_label.as_deref(),
            name,
            categories.iter().map(String::as_str),
        )?;
        out.push(Encoding {
            column: name.clone(),
            categories,
            dropped,
            others,
        });
    }
    Ok(Fitted {
        unseen: params.unseen,
        rare_label: params.rare_label.clone(),
        columns: out,
    })
}

impl Fitted {
    pub fn apply(&self, mut frame: Frame) -> Result<Frame> {
        let mut taken = Vec::with_capacity(self.columns.len());
        for enc in &self.columns {
            let idx = frame
                .index_of(&enc.column)
                .ok_or_else(|| frame.missing_column(&enc.column))?;
            let col = frame.columns.remove(idx);
            let ColumnData::Categorical(values) = col.data else {
                return Err(Error::data(format!(
                    "column \"{}\" is numeric here but was categorical when the one-hot encoding was learned",
                    enc.column
                )));
            };
            taken.push((enc, values));
        }
        // Columns are encoded on all cores; results (and the first error) are taken in column order.
        let encoded: Vec<Result<Vec<Column>>> = taken
            .par_iter()
            .map(|(enc, values)| self.dummies(enc, values, &frame))
            .collect();
        for dummies in encoded {
            frame.columns.extend(dummies?);
        }
        Ok(frame)
    }

    /// One column's indicator columns, in category order.
    fn dummies(&self, enc: &Encoding, values: &Texts, frame: &Frame) -> Result<Vec<Column>> {
        let position: BTreeMap<&str, usize> = enc
            .categories
            .iter()
            .enumerate()
            .map(|(i, c)| (c.as_str(), i))
            .collect();
        let per_category = lookup_categories(&position, values);
        // One bit a row per dummy (an indicator column): 181 dummies of a million rows take 23 MB, not 1.4 GB.
        let mut cols: Vec<MutableBitmap> = (0..enc.categories.len())
            .map(|_| MutableBitmap::from_len_zeroed(values.len()))
            .collect();
        #[allow(clippy::needless_range_loop)] // `r` indexes the row of one of many columns
        for r in 0..values.len() {
            match values
                .code(r)
                .map(|c| (&*values.categories()[c as usize], per_category[c as usize]))
            {
                Some((_, Some(&i))) => cols[i].set(r, true),
                Some((s, None)) if enc.dropped.as_deref() == Some(s) || enc.others.iter().any(|o| o == s) => {}
                _ if self.unseen == Unseen::Rare => {
                    let rare = self.rare_label.as_deref().unwrap_or("Rare");
                    if let Some(&i) = position.get(rare) {
                        cols[i].set(r, true);
                    }
                }
                other => {
                    if self.unseen == Unseen::Error {
                        let value = other.map_or("(missing)", |(s, _)| s);
                        return Err(super::unseen_error(
                            "one_hot",
                            &enc.column,
                            value,
                            frame.lines[r],
                            &frame.source,
                            enc.categories.len() + usize::from(enc.dropped.is_some()),
                        ));
                    }
                }
            }
        }
        Ok(enc
            .categories
            .iter()
            .zip(cols)
            .map(|(c, data)| Column {
                name: format!("{}_{c}", enc.column),
                data: ColumnData::Numeric(Numbers::indicator(data.into())),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{ReadOptions, read_csv};

    #[test]
    fn sorted_dummies_appended_and_unseen_policy() {
        let train = read_csv(b"x,c\n1,b\n2,a\n3,b\n", &ReadOptions::default(), "t.csv").unwrap();
        let p = Params {
            drop_first: false,
            unseen: Unseen::Error,
            top_k: None,
            rare_label: None,
        };
        let f = fit(&p, &train, &["c".into()]).unwrap();
        let out = f.apply(train.clone()).unwrap();
        assert_eq!(out.names().collect::<Vec<_>>(), ["x", "c_a", "c_b"]);
        // Dummies are indicator columns: one bit a row.
        let Some(ColumnData::Numeric(dummy)) = out.column("c_b").map(|c| &c.data) else {
            panic!("c_b is not numeric")
        };
        assert_eq!(
            dummy.bits().map(|b| b.iter().collect::<Vec<_>>()),
            Some(vec![true, false, true])
        );
        assert_eq!(out.numeric("c_b").unwrap(), &[1.0, 0.0, 1.0]);

        let new = read_csv(b"x,c\n1,zz\n", &ReadOptions::default(), "new.csv").unwrap();
        let err = f.apply(new.clone()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unseen category \"zz\" in column \"c\" (line 2 of new.csv); one_hot learned 2 categories on train"
        );
        let lenient = Fitted {
            unseen: Unseen::Ignore,
            ..f
        };
        let out = lenient.apply(new).unwrap();
        assert_eq!(out.numeric("c_a").unwrap(), &[0.0]);
        assert_eq!(out.numeric("c_b").unwrap(), &[0.0]);
    }

    #[test]
    fn unseen_values_can_join_the_rare_label() {
        let train = read_csv(b"c\nRare\na\na\n", &ReadOptions::default(), "t.csv").unwrap();
        let p = Params {
            drop_first: false,
            unseen: Unseen::Rare,
            top_k: None,
            rare_label: Some("Rare".into()),
        };
        let f = fit(&p, &train, &["c".into()]).unwrap();
        let new = read_csv(b"c\nzzz\na\n", &ReadOptions::default(), "n.csv").unwrap();
        let out = f.apply(new).unwrap();
        assert_eq!(out.numeric("c_Rare").unwrap(), &[1.0, 0.0]);
        let no_rare = read_csv(b"c\na\nb\n", &ReadOptions::default(), "t.csv").unwrap();
        let err = fit(&p, &no_rare, &["c".into()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unseen = \"rare\" maps new values of \"c\" to \"Rare\", but train has no such category"
        );
    }

    #[test]
    fn top_k_keeps_the_most_frequent_and_zeros_the_rest() {
        let train = read_csv(b"c\nb\na\nb\nc\nb\nc\n", &ReadOptions::default(), "t.csv").unwrap();
        let p = Params {
            drop_first: false,
            unseen: Unseen::Error,
            top_k: Some(2),
            rare_label: None,
        };
        let f = fit(&p, &train, &["c".into()]).unwrap();
        assert_eq!(f.columns[0].categories, ["b", "c"]);
        let out = f.apply(train).unwrap();
        assert_eq!(out.names().collect::<Vec<_>>(), ["c_b", "c_c"]);
        assert_eq!(out.numeric("c_b").unwrap(), &[1.0, 0.0, 1.0, 0.0, 1.0, 0.0]);
    }

    #[test]
    fn drop_first_drops_the_smallest_category() {
        let train = read_csv(b"c\nb\na\nc\n", &ReadOptions::default(), "t.csv").unwrap();
        let p = Params {
            drop_first: true,
            unseen: Unseen::Error,
            top_k: None,
            rare_label: None,
        };
        let f = fit(&p, &train, &["c".into()]).unwrap();
        let out = f.apply(train).unwrap();
        assert_eq!(out.names().collect::<Vec<_>>(), ["c_b", "c_c"]);
        assert_eq!(out.numeric("c_b").unwrap(), &[1.0, 0.0, 0.0]);
    }
}
