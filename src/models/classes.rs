//! The classes of a classification target: labels read from a column, ordered as scikit-learn orders
//! `classes_`. Here, below the stages and the fitted contract, because encoders, selectors, estimators and
//! the stored train state all need the same order.

use crate::error::{Error, Result};
use crate::frame::Frame;

/// Column `target` of `frame` as class labels, one per row; a missing label is an error.
pub fn labels_of(frame: &Frame, target: &str) -> Result<Vec<String>> {
    let column = frame.column(target).ok_or_else(|| frame.missing_column(target))?;
    let missing = |r: usize| {
        Error::data(format!(
            "target \"{target}\" is missing at line {} of {}",
            frame.lines[r], frame.source
        ))
        .with_hint("rows without a class cannot be trained or scored; remove them from the data")
    };
    match &column.data {
        crate::frame::ColumnData::Numeric(v) => v
            .iter()
            .enumerate()
            .map(|(r, x)| {
                if x.is_nan() {
                    Err(missing(r))
                } else {
                    Ok(crate::frame::json_number(*x).to_string())
                }
            })
            .collect(),
        crate::frame::ColumnData::Categorical(v) => v
            .iter()
            .enumerate()
            .map(|(r, x)| x.as_ref().map(ToString::to_string).ok_or_else(|| missing(r)))
            .collect(),
    }
}

/// The classes of a train target, ordered as scikit-learn's `classes_`: numbers by value, text by its
/// bytes.
pub struct Classes {
    pub labels: Vec<String>,
    pub numeric: bool,
}

impl Classes {
    pub fn of(labels: &[String]) -> Classes {
        let distinct: std::collections::BTreeSet<&String> = labels.iter().collect();
        let numbers: Option<Vec<(f64, &String)>> = distinct
            .iter()
            .map(|l| l.parse::<f64>().ok().map(|x| (x, *l)))
            .collect();
        match numbers {
            Some(mut n) => {
                n.sort_by(|a, b| a.0.total_cmp(&b.0));
                Classes {
                    labels: n.into_iter().map(|(_, l)| l.clone()).collect(),
                    numeric: true,
                }
            }
            None => Classes {
                labels: distinct.into_iter().cloned().collect(),
                numeric: false,
            },
        }
    }

    /// The index of `label` among the classes, or `None` for a label the classes do not hold.
    #[allow(clippy::cast_possible_truncation)] // classes are far fewer than 2^32
    pub fn index(&self, label: &str) -> Option<u32> {
        self.labels.iter().position(|l| l == label).map(|i| i as u32)
    }

    /// Each label's index among the classes; a label they do not hold is an error naming it and the
    /// classes (never a silent class 0).
    pub fn codes(&self, labels: &[String]) -> Result<Vec<u32>> {
        labels
            .iter()
            .map(|l| self.index(l).ok_or_else(|| self.unknown(l)))
            .collect()
    }

    fn unknown(&self, label: &str) -> Error {
        const SHOWN: usize = 10;
        let mut known: Vec<String> = self.labels.iter().take(SHOWN).map(|l| format!("\"{l}\"")).collect();
        if self.labels.len() > SHOWN {
            known.push(format!("… ({} in all)", self.labels.len()));
        }
        Error::data(format!(
            "class label \"{label}\" is not one of the known classes: {}",
            known.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_string()).collect()
    }

    #[test]
    fn an_unknown_label_is_an_error_naming_it_and_the_classes_not_class_0() {
        let classes = Classes::of(&strings(&["b", "a", "b"]));
        assert_eq!(classes.index("a"), Some(0));
        assert_eq!(classes.index("b"), Some(1));
        assert_eq!(classes.index("z"), None);
        assert_eq!(classes.codes(&strings(&["b", "a"])).unwrap(), vec![1, 0]);
        let err = classes.codes(&strings(&["a", "z"])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "class label \"z\" is not one of the known classes: \"a\", \"b\""
        );
        let many = Classes::of(&(0..12).map(|i| i.to_string()).collect::<Vec<_>>());
        assert_eq!(
            many.codes(&strings(&["12"])).unwrap_err().to_string(),
            "class label \"12\" is not one of the known classes: \"0\", \"1\", \"2\", \"3\", \"4\", \"5\", \"6\", \"7\", \"8\", \"9\", … (12 in all)"
        );
    }
}
