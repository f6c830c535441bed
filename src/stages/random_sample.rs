//! Random-sample imputation: each missing value is replaced by a value drawn from the present train
//! values of its column, as feature-engine's `RandomSampleImputer` does — but every draw is a pure
//! function of the step's seed, the column and the row, so applying the fitted step is as
//! deterministic as any other (train, test, predict, replay).
//!
//! The row is identified by the values of the `seed_by` columns when given (feature-engine's
//! `seed="observation"`: the same row content gets the same draw in any file), else by its position
//! in the frame being imputed. The draw is blake3 (keyed by the stage seed) of column, row key, taken
//! modulo the number of train values. The numbers differ from feature-engine's, which come from
//! pandas' generator; the distribution is the same.

use serde::{Deserialize, Serialize};

use crate::digest::Id;
use crate::error::{Error, Result};
use crate::frame::{ColumnData, Frame};
use crate::vocab::reader::TableReader;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Params {
    pub seed_by: Vec<String>,
}

impl Params {
    pub fn parse(t: &mut TableReader<'_, '_>) -> Result<Params> {
        Ok(Params {
            seed_by: t
                .str_list("seed_by")?
                .unwrap_or_default()
                .into_iter()
                .map(|c| c.value)
                .collect(),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Pool {
    Numbers(Vec<f64>),
    Texts(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fitted {
    /// The stage seed, hex: the key of every draw.
    pub seed: Id,
    pub seed_by: Vec<String>,
    /// Per column, the present train values in train order.
    pub columns: Vec<(String, Pool)>,
}

pub fn fit(params: &Params, train: &Frame, columns: &[String], seed: [u8; 32]) -> Result<Fitted> {
    for c in &params.seed_by {
        if train.column(c).is_none() {
            return Err(train.missing_column(c));
        }
    }
    let mut out = Vec::with_capacity(columns.len());
    for name in columns {
        let col = train.column(name).ok_or_else(|| train.missing_column(name))?;
        let pool = match &col.data {
            ColumnData::Numeric(v) => Pool::Numbers(v.iter().copied().filter(|x| !x.is_nan()).collect()),
            ColumnData::Categorical(v) => {
                Pool::Texts(v.iter().flatten().map(std::string::ToString::to_string).collect())
            }
        };
        let empty = match &pool {
            Pool::Numbers(p) => p.is_empty(),
            Pool::Texts(p) => p.is_empty(),
        };
        if empty {
            return Err(Error::data(format!(
                "column \"{name}\" has no values in the train split to sample from"
            )));
        }
        out.push((name.clone(), pool));
    }
    Ok(Fitted {
        seed: Id(seed),
        seed_by: params.seed_by.clone(),
        columns: out,
    })
}

fn row_key(frame: &Frame, seed_by: &[String], r: usize) -> Result<Vec<u8>> {
    if seed_by.is_empty() {
        return Ok((frame.first_row + r as u64).to_le_bytes().to_vec());
    }
    let mut key = Vec::new();
    for c in seed_by {
        let col = frame.column(c).ok_or_else(|| frame.missing_column(c))?;
        match &col.data {
            ColumnData::Numeric(v) => key.extend_from_slice(&v[r].to_bits().to_le_bytes()),
            ColumnData::Categorical(v) => {
                let s = v.get(r).unwrap_or("");
                key.extend_from_slice(&(s.len() as u64).to_le_bytes());
                key.extend_from_slice(s.as_bytes());
            }
        }
    }
    Ok(key)
}

fn draw(seed: &Id, column: &str, key: &[u8], len: usize) -> usize {
    let mut h = blake3::Hasher::new_keyed(&seed.0);
    h.update(&(column.len() as u64).to_le_bytes());
    h.update(column.as_bytes());
    h.update(key);
    let mut word = [0u8; 8];
    word.copy_from_slice(&h.finalize().as_bytes()[..8]);
    usize::try_from(u64::from_le_bytes(word) % len as u64).unwrap_or(0)
}

impl Fitted {
    pub fn apply(&self, mut frame: Frame) -> Result<Frame> {
        for (column, pool) in &self.columns {
            let idx = frame.index_of(column).ok_or_else(|| frame.missing_column(column))?;
            let missing: Vec<usize> = match &frame.columns[idx].data {
                ColumnData::Numeric(v) => (0..v.len()).filter(|&r| v[r].is_nan()).collect(),
                ColumnData::Categorical(v) => (0..v.len()).filter(|&r| v.is_missing(r)).collect(),
            };
            let keys = missing
                .iter()
                .map(|&r| row_key(&frame, &self.seed_by, r))
                .collect::<Result<Vec<_>>>()?;
            match (&mut frame.columns[idx].data, pool) {
                (ColumnData::Numeric(v), Pool::Numbers(p)) => v.update(|values| {
                    for (&r, k) in missing.iter().zip(&keys) {
                        values[r] = p[draw(&self.seed, column, k, p.len())];
                    }
                }),
                (ColumnData::Categorical(v), Pool::Texts(p)) => {
                    let mut drawn: Vec<Option<&str>> = v.iter().collect();
                    for (&r, k) in missing.iter().zip(&keys) {
                        drawn[r] = Some(p[draw(&self.seed, column, k, p.len())].as_str());
                    }
                    *v = crate::frame::Texts::from_values(drawn);
                }
                _ => {
                    return Err(Error::data(format!(
                        "column \"{column}\" changed type since the imputer was fitted"
                    )));
                }
            }
        }
        Ok(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{ReadOptions, read_csv};

    #[test]
    fn draws_follow_the_train_distribution_and_repeat_exactly() {
        let o = ReadOptions {
            na_values: vec!["NA".into()],
            ..ReadOptions::default()
        };
        let mut csv = String::from("k,x\n");
        for i in 0..4000 {
            let x = if i % 2 == 0 {
                "NA".to_string()
            } else if i % 8 == 1 {
                "1".to_string()
            } else {
                "2".to_string()
            };
            csv += &format!("{i},{x}\n");
        }
        let f = read_csv(csv.as_bytes(), &o, "t.csv").unwrap();
        let fitted = fit(
            &Params {
                seed_by: vec!["k".into()],
            },
            &f,
            &["x".into()],
            [7; 32],
        )
        .unwrap();
        let a = fitted.apply(f.clone()).unwrap();
        let b = fitted.apply(f).unwrap();
        assert_eq!(a.digest(), b.digest());
        let x = a.numeric("x").unwrap();
        assert!(x.iter().all(|v| *v == 1.0 || *v == 2.0));
        // A quarter of the train values are 1: the imputed half should hold about a quarter ones.
        let ones = (0..4000).step_by(2).filter(|&r| x[r] == 1.0).count();
        assert!((400..600).contains(&ones), "{ones} ones among 2000 draws");
    }

    #[test]
    fn positional_draws_do_not_depend_on_how_a_batch_is_chunked() {
        let o = ReadOptions {
            na_values: vec!["NA".into()],
            ..ReadOptions::default()
        };
        let mut csv = String::from("x,c\n");
        for i in 0..1000 {
            csv += &(if i % 3 == 0 {
                "NA,NA\n".to_string()
            } else {
                format!("{},v{}\n", i % 17, i % 5)
            });
        }
        let f = read_csv(csv.as_bytes(), &o, "t.csv").unwrap();
        let fitted = fit(&Params { seed_by: vec![] }, &f, &["x".into(), "c".into()], [3; 32]).unwrap();
        let whole = fitted.apply(f.clone()).unwrap();
        for size in [1, 7, 64, 999] {
            let mut x = Vec::new();
            let mut c = Vec::new();
            for chunk in f.clone().into_chunks(size) {
                let out = fitted.apply(chunk).unwrap();
                x.extend_from_slice(out.numeric("x").unwrap());
                c.extend(
                    out.complete_categorical("c", "t")
                        .unwrap()
                        .iter()
                        .map(|s| s.map(str::to_string)),
                );
            }
            let same_x = x
                .iter()
                .zip(whole.numeric("x").unwrap())
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same_x, "chunks of {size}");
            let whole_c: Vec<Option<String>> = whole
                .complete_categorical("c", "t")
                .unwrap()
                .iter()
                .map(|s| s.map(str::to_string))
                .collect();
            assert_eq!(c, whole_c, "chunks of {size}");
        }
    }
}
