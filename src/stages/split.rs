//! Train/test split: seeded random (optionally stratified), by a column's values, or by time.
//!
//! The random split draws its own permutation (Fisher–Yates with unbiased bounded draws from the
//! stage's `ChaCha20` stream), so it never changes with a `rand` upgrade. Both sides keep file order.
//!
//! Row indices are `u32`: `read_csv` refuses files with more rows than that.
#![allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]

use std::collections::BTreeMap;

use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Location, Result};
use crate::frame::{ColumnData, Frame};
use crate::vocab::{Split, SplitValue};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fitted {
    pub train: Vec<u32>,
    pub test: Vec<u32>,
}

/// A uniform integer in `0..bound` (Lemire's method with rejection: no modulo bias).
fn below(rng: &mut impl RngCore, bound: u64) -> u64 {
    let threshold = bound.wrapping_neg() % bound;
    loop {
        let m = u128::from(rng.next_u64()) * u128::from(bound);
        if (m as u64) >= threshold {
            return (m >> 64) as u64;
        }
    }
}

fn shuffle(rows: &mut [u32], rng: &mut impl RngCore) {
    for i in (1..rows.len()).rev() {
        let j = below(rng, i as u64 + 1) as usize;
        rows.swap(i, j);
    }
}

fn value_key(data: &ColumnData, r: usize) -> Option<String> {
    match data {
        ColumnData::Numeric(v) => (!v[r].is_nan()).then(|| format!("{:020}", v[r].to_bits())),
        ColumnData::Categorical(v) => v.get(r).map(str::to_string),
    }
}

pub fn fit(split: &Split, frame: &Frame, rng: &mut impl RngCore, loc: Option<&Location>) -> Result<Fitted> {
    let n = frame.n_rows();
    let mut is_test = vec![false; n];
    match split {
        Split::Random {
            test_fraction,
            stratify,
        } => {
            let groups: BTreeMap<String, Vec<u32>> = match stratify {
                None => BTreeMap::from([(String::new(), (0..n as u32).collect())]),
                Some(col) => {
                    let data = &frame.column(col).ok_or_else(|| frame.missing_column(col).at(loc))?.data;
                    let mut groups: BTreeMap<String, Vec<u32>> = BTreeMap::new();
                    for r in 0..n {
                        let key = value_key(data, r).ok_or_else(|| {
                            Error::data(format!(
                                "stratify column \"{col}\" is missing at line {} of {}",
                                frame.lines[r], frame.source
                            ))
                            .at(loc)
                        })?;
                        groups.entry(key).or_default().push(r as u32);
                    }
                    groups
                }
            };
            // Proportional allocation: floor per group, then the remaining test rows go to the groups
            // with the largest remainders (ties: group order).
            let total_test = (test_fraction * n as f64).ceil() as usize;
            let mut quotas: Vec<(usize, f64)> = groups
                .values()
                .map(|g| {
                    let exact = test_fraction * g.len() as f64;
                    (exact.floor() as usize, exact - exact.floor())
                })
                .collect();
            let assigned: usize = quotas.iter().map(|q| q.0).sum();
            let mut order: Vec<usize> = (0..quotas.len()).collect();
            order.sort_by(|&a, &b| quotas[b].1.total_cmp(&quotas[a].1).then(a.cmp(&b)));
            for &g in order.iter().take(total_test.saturating_sub(assigned)) {
                quotas[g].0 += 1;
            }
            for (mut rows, (quota, _)) in groups.into_values().zip(quotas) {
                shuffle(&mut rows, rng);
                for &r in rows.iter().take(quota) {
                    is_test[r as usize] = true;
                }
            }
        }
        Split::Column { column, test_values } => {
            let data = &frame
                .column(column)
                .ok_or_else(|| frame.missing_column(column).at(loc))?
                .data;
            for (r, t) in is_test.iter_mut().enumerate() {
                *t = test_values.iter().any(|v| match (v, data) {
                    #[allow(clippy::float_cmp)] // test values are matched exactly, as written
                    (SplitValue::Number(x), ColumnData::Numeric(col)) => col[r] == *x,
                    (SplitValue::Text(s), ColumnData::Categorical(col)) => col.get(r) == Some(s.as_str()),
                    _ => false,
                });
            }
            if let Some(bad) = test_values.iter().find(|v| {
                matches!(
                    (v, data),
                    (SplitValue::Number(_), ColumnData::Categorical(_)) | (SplitValue::Text(_), ColumnData::Numeric(_))
                )
            }) {
                return Err(Error::data(format!(
                    "test value {bad:?} does not have the type of column \"{column}\" ({})",
                    data.column_type().name()
                ))
                .at(loc));
            }
        }
        Split::Time { column, test_from } => {
            let data = &frame
                .column(column)
                .ok_or_else(|| frame.missing_column(column).at(loc))?
                .data;
            for (r, t) in is_test.iter_mut().enumerate() {
                let missing = || {
                    Error::data(format!(
                        "time column \"{column}\" is missing at line {} of {}, so the row has no side",
                        frame.lines[r], frame.source
                    ))
                    .at(loc)
                    .with_hint("impute or drop those rows before splitting by time")
                };
                *t = match (test_from, data) {
                    (SplitValue::Number(from), ColumnData::Numeric(col)) => {
                        if col[r].is_nan() {
                            return Err(missing());
                        }
                        col[r] >= *from
                    }
                    (SplitValue::Text(from), ColumnData::Categorical(col)) => {
                        col.get(r).ok_or_else(missing)? >= from.as_str()
                    }
                    _ => {
                        return Err(Error::data(format!(
                            "`test_from` does not have the type of column \"{column}\" ({})",
                            data.column_type().name()
                        ))
                        .at(loc)
                        .with_hint("use a number for a numeric column, an ISO-8601 string for a text one"));
                    }
                };
            }
        }
    }
    let (test, train): (Vec<u32>, Vec<u32>) = (0..n as u32).partition(|&r| is_test[r as usize]);
    if train.is_empty() {
        return Err(Error::data(format!("the split leaves no train rows (of {n})"))
            .at(loc)
            .with_hint("lower test_fraction, or choose test values that leave rows for training"));
    }
    if test.is_empty() {
        return Err(Error::data(format!("the split leaves no test rows (of {n})"))
            .at(loc)
            .with_hint("raise test_fraction, or choose test values that occur in the data"));
    }
    Ok(Fitted { train, test })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{ReadOptions, read_csv};
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn frame() -> Frame {
        let rows: Vec<String> = (0..100)
            .map(|i| format!("{i},{}\n", if i % 4 == 0 { "a" } else { "b" }))
            .collect();
        let csv = format!("k,g\n{}", rows.concat());
        read_csv(csv.as_bytes(), &ReadOptions::default(), "t.csv").unwrap()
    }

    #[test]
    fn random_split_is_seeded_and_sized() {
        let s = Split::Random {
            test_fraction: 0.25,
            stratify: None,
        };
        let a = fit(&s, &frame(), &mut ChaCha20Rng::from_seed([1; 32]), None).unwrap();
        let b = fit(&s, &frame(), &mut ChaCha20Rng::from_seed([1; 32]), None).unwrap();
        let c = fit(&s, &frame(), &mut ChaCha20Rng::from_seed([2; 32]), None).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.test.len(), 25);
        assert!(a.train.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn stratified_split_keeps_proportions() {
        let s = Split::Random {
            test_fraction: 0.2,
            stratify: Some("g".into()),
        };
        let f = frame();
        let out = fit(&s, &f, &mut ChaCha20Rng::from_seed([3; 32]), None).unwrap();
        let a_in_test = out.test.iter().filter(|&&r| r % 4 == 0).count();
        assert_eq!(out.test.len(), 20);
        assert_eq!(a_in_test, 5);
    }

    #[test]
    fn column_split_with_no_train_rows_is_an_error() {
        let s = Split::Time {
            column: "k".into(),
            test_from: SplitValue::Number(-1.0),
        };
        let err = fit(&s, &frame(), &mut ChaCha20Rng::from_seed([0; 32]), None).unwrap_err();
        assert_eq!(err.to_string(), "the split leaves no train rows (of 100)");
    }
}
