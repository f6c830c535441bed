//! Ensembles of trees: random forests (bootstrap rows and features drawn per split, as scikit-learn's
//! `RandomForestRegressor` / `RandomForestClassifier`) and gradient boosting for classes (scikit-learn's
//! `GradientBoostingClassifier` with log loss).
//!
//! A forest's trees are grown in parallel, each from its own ChaCha20 stream (the stage's seed, stream =
//! the tree's index) and collected in index order: the same forest whatever the thread count. The
//! streams are not numpy's, so a bootstrapped forest is not scikit-learn's forest tree for tree; it is
//! compared with scikit-learn by its scores (docs/models.md).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rayon::prelude::*;

use super::tree::{Target, Tree, TreeParams, grow_from, grow_presorted, presort};

/// Grows `n_trees` trees, each on a bootstrap sample of the rows (or all rows once) with features drawn
/// per split when `params.max_features` is set.
pub fn forest(
    columns: &[&[f64]],
    target: Target<'_>,
    params: &TreeParams,
    n_trees: u64,
    bootstrap: bool,
    seed: [u8; 32],
) -> Vec<Tree> {
    let n = match target {
        Target::Values(y) => y.len(),
        Target::Classes { y, .. } => y.len(),
    };
    (0..n_trees)
        .into_par_iter()
        .map(|t| {
            let mut rng = ChaCha20Rng::from_seed(seed);
            rng.set_stream(t);
            let rows: Vec<usize> = if bootstrap {
                (0..n).map(|_| rng.gen_range(0..n)).collect()
            } else {
                (0..n).collect()
            };
            grow_from(columns, target, params, rows, Some(&mut rng))
        })
        .collect()
}

/// Gradient boosting with log loss. Two classes: one tree per round on `y − σ(F)`, F starting at the
/// log-odds of the positive class. K classes: K trees per round, tree k on `1[y = k] − softmaxₖ(F)`
/// (all K from the round's start), F starting at the symmetric logit of the class priors. Each leaf
/// then takes one Newton step, `Σ residual / Σ p(1 − p)` (times (K − 1)/K for K classes), as
/// scikit-learn's `_update_terminal_regions`. Returns (the start F per tree slot, the rounds' trees).
pub fn boost_classes(
    columns: &[&[f64]],
    y: &[u32],
    n_classes: usize,
    n_rounds: u64,
    learning_rate: f64,
    params: &TreeParams,
) -> (Vec<f64>, Vec<Vec<Tree>>) {
    let n = y.len();
    let slots = if n_classes == 2 { 1 } else { n_classes };
    let mut counts = vec![0.0; n_classes];
    for &c in y {
        counts[c as usize] += 1.0;
    }
    let eps = f64::EPSILON;
    let prior: Vec<f64> = counts.iter().map(|c| (c / n as f64).clamp(eps, 1.0 - eps)).collect();
    let init: Vec<f64> = if slots == 1 {
        vec![(prior[1] / (1.0 - prior[1])).ln()]
    } else {
        let logs: Vec<f64> = prior.iter().map(|p| p.ln()).collect();
        let mean = logs.iter().sum::<f64>() / n_classes as f64;
        logs.iter().map(|l| l - mean).collect()
    };
    let mut raw: Vec<f64> = (0..n).flat_map(|_| init.iter().copied()).collect();
    let mut residual = vec![0.0; n * slots];
    let mut column = vec![0.0; n];
    let mut prob = vec![0.0; n_classes];
    let mut rounds = Vec::new();
    let all: Vec<usize> = (0..n).collect();
    let sorted = presort(columns, &all);
    for _ in 0..n_rounds {
        for i in 0..n {
            let f = &raw[i * slots..(i + 1) * slots];
            super::logistic::probabilities(f, &mut prob);
            for k in 0..slots {
                let class = if slots == 1 { 1 } else { k };
                let truth = if y[i] as usize == class { 1.0 } else { 0.0 };
                residual[i * slots + k] = truth - prob[class];
            }
        }
        let mut trees = Vec::with_capacity(slots);
        for k in 0..slots {
            for i in 0..n {
                column[i] = residual[i * slots + k];
            }
            let mut tree = grow_presorted(columns, Target::Values(&column), params, sorted.clone());
            let leaves: Vec<usize> = (0..n).map(|i| tree.leaf(|c| columns[c][i])).collect();
            let mut numerator = vec![0.0; tree.value.len()];
            let mut denominator = vec![0.0; tree.value.len()];
            for (i, &leaf) in leaves.iter().enumerate() {
                let class = if slots == 1 { 1 } else { k };
                let truth = if y[i] as usize == class { 1.0 } else { 0.0 };
                let g = column[i];
                let p = truth - g;
                numerator[leaf] += g;
                denominator[leaf] += p * (1.0 - p);
            }
            for leaf in 0..tree.value.len() {
                if tree.feature[leaf].is_some() {
                    continue;
                }
                let mut num = numerator[leaf];
                if slots > 1 {
                    num *= (n_classes as f64 - 1.0) / n_classes as f64;
                }
                tree.value[leaf] = if denominator[leaf].abs() < 1e-150 {
                    0.0
                } else {
                    num / denominator[leaf]
                };
            }
            for (i, &leaf) in leaves.iter().enumerate() {
                raw[i * slots + k] += learning_rate * tree.value[leaf];
            }
            trees.push(tree);
        }
        rounds.push(trees);
    }
    (init, rounds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::tree::{Criterion, grow};

    fn params(max_features: Option<usize>) -> TreeParams {
        TreeParams {
            max_depth: Some(3),
            min_samples_split: 2,
            min_samples_leaf: 1,
            criterion: Criterion::Gini,
            max_features,
        }
    }

    #[test]
    fn a_forest_is_the_same_on_one_thread_and_many() {
        let a: Vec<f64> = (0..200).map(|i| f64::from(i % 17)).collect();
        let b: Vec<f64> = (0..200).map(|i| f64::from((i * 7) % 23)).collect();
        let y: Vec<u32> = (0..200)
            .map(|i| u32::from((i % 17) > 8) + u32::from((i * 7) % 23 > 15))
            .collect();
        let target = Target::Classes { y: &y, n_classes: 3 };
        let grow_all = || forest(&[&a, &b], target, &params(Some(1)), 16, true, [7; 32]);
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(grow_all);
        let many = rayon::ThreadPoolBuilder::new()
            .num_threads(4)
            .build()
            .unwrap()
            .install(grow_all);
        assert_eq!(one, many);
        assert_ne!(one[0], one[1], "each tree draws its own sample");
    }

    #[test]
    fn without_bootstrap_or_feature_draws_every_tree_is_the_decision_tree() {
        let a: Vec<f64> = (0..50).map(|i| f64::from(i % 11)).collect();
        let y: Vec<u32> = (0..50).map(|i| u32::from(i % 11 > 4)).collect();
        let target = Target::Classes { y: &y, n_classes: 2 };
        let trees = forest(&[&a], target, &params(None), 3, false, [1; 32]);
        let single = grow(&[&a], target, &params(None));
        assert!(trees.iter().all(|t| *t == single));
    }
}
