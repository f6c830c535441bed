//! Which rows each cross-validation fold holds out, as scikit-learn's `KFold` and `StratifiedKFold`
//! assign them. Without shuffling the folds are scikit-learn's exactly; shuffled, they come from the
//! caller's `ChaCha` stream (not numpy's).

use rand::Rng;
use rand_chacha::ChaCha20Rng;

use crate::error::{Error, Result};

fn check(n: usize, k: usize) -> Result<()> {
    if k < 2 || n < k {
        return Err(Error::data(format!(
            "{k}-fold cross-validation needs at least {k} train rows; there are {n}"
        ))
        .with_hint("use fewer folds"));
    }
    Ok(())
}

/// The fold of each of `n` rows: contiguous blocks (after a shuffle when `rng` is given), the first
/// `n % k` folds one row larger.
pub fn kfold(n: usize, k: usize, rng: Option<&mut ChaCha20Rng>) -> Result<Vec<usize>> {
    check(n, k)?;
    let mut order: Vec<usize> = (0..n).collect();
    if let Some(rng) = rng {
        for i in (1..n).rev() {
            order.swap(i, rng.gen_range(0..=i));
        }
    }
    let mut fold = vec![0; n];
    let mut start = 0;
    for f in 0..k {
        let size = n / k + usize::from(f < n % k);
        for &row in &order[start..start + size] {
            fold[row] = f;
        }
        start += size;
    }
    Ok(fold)
}

/// Stratified folds for class indices `y`: scikit-learn's allocation (classes numbered by first
/// appearance, the sorted labels dealt to folds in turn), each class's fold labels then laid on its
/// rows in order (shuffled first when `rng` is given).
pub fn stratified(y: &[u32], k: usize, mut rng: Option<&mut ChaCha20Rng>) -> Result<Vec<usize>> {
    check(y.len(), k)?;
    let mut first_seen: Vec<u32> = Vec::new();
    for c in y {
        if !first_seen.contains(c) {
            first_seen.push(*c);
        }
    }
    let encoded: Vec<usize> = y
        .iter()
        .map(|c| first_seen.iter().position(|f| f == c).unwrap_or(0))
        .collect();
    let n_classes = first_seen.len();
    let mut sorted = encoded.clone();
    sorted.sort_unstable();
    // allocation[f][c]: rows of class c held out by fold f.
    let mut allocation = vec![vec![0usize; n_classes]; k];
    for (i, c) in sorted.iter().enumerate() {
        allocation[i % k][*c] += 1;
    }
    let mut fold = vec![0; y.len()];
    #[allow(clippy::needless_range_loop)] // c indexes the allocation's columns and names the class
    for c in 0..n_classes {
        let mut labels: Vec<usize> = (0..k).flat_map(|f| std::iter::repeat_n(f, allocation[f][c])).collect();
        if let Some(rng) = rng.as_deref_mut() {
            for i in (1..labels.len()).rev() {
                labels.swap(i, rng.gen_range(0..=i));
            }
        }
        let rows = encoded.iter().enumerate().filter(|(_, e)| **e == c).map(|(r, _)| r);
        for (row, label) in rows.zip(labels) {
            fold[row] = label;
        }
    }
    Ok(fold)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unshuffled_folds_are_scikit_learns() {
        // KFold(3).split(range(7)): test folds [0,1,2], [3,4], [5,6].
        assert_eq!(kfold(7, 3, None).unwrap(), [0, 0, 0, 1, 1, 2, 2]);
        // StratifiedKFold(2).split(X, [1,1,0,0,1,0,1]): test folds [0, 1, 2, 3] and [4, 5, 6].
        let y = [1, 1, 0, 0, 1, 0, 1];
        assert_eq!(stratified(&y, 2, None).unwrap(), [0, 0, 0, 0, 1, 1, 1]);
        assert!(kfold(2, 3, None).is_err());
    }
}
