//! Regression trees as scikit-learn grows them (CART, depth first, best split), and gradient boosting of
//! them with squared error, as `GradientBoostingRegressor` does.
//!
//! A split is the threshold halfway between two neighbouring distinct values of a feature (values
//! closer than 1e-7 count as equal, as in scikit-learn) that most reduces the squared error; rows with
//! `x <= threshold` go left. A node stays a leaf when it is at `max_depth`, has fewer than
//! `min_samples_split` rows, cannot give both children `min_samples_leaf` rows, or is pure. Its value is
//! the mean of its targets.
//!
//! Ties: scikit-learn visits the features in an order drawn from `random_state` and keeps the first of
//! equally good splits, so which of two tied features it picks depends on that draw. Here features are
//! visited in column order and the first best split is kept: the same tree on every run, and the same
//! tree as scikit-learn's wherever no two splits tie (docs/models.md).

use serde::{Deserialize, Serialize};

/// Values closer than this are one value (scikit-learn's `FEATURE_THRESHOLD`).
const FEATURE_THRESHOLD: f64 = 1e-7;

/// How a split is scored. Both rank splits by the same reduction in squared error; they are computed
/// as scikit-learn computes them so that near-ties fall the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Criterion {
    /// `squared_error`: `sum_l²/n_l + sum_r²/n_r`.
    SquaredError,
    /// `friedman_mse` (gradient boosting): `(n_r·sum_l − n_l·sum_r)² / (n_l·n_r)`.
    FriedmanMse,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeParams {
    pub max_depth: Option<u64>,
    pub min_samples_split: u64,
    pub min_samples_leaf: u64,
    pub criterion: Criterion,
}

/// A fitted tree, nodes in pre-order (root first, then the left subtree, then the right).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    /// Per node: the feature index it splits on, or `None` for a leaf.
    pub feature: Vec<Option<usize>>,
    /// Per node: rows with `x <= threshold` go left (0 at a leaf).
    pub threshold: Vec<f64>,
    pub left: Vec<usize>,
    pub right: Vec<usize>,
    /// Mean target of the node's train rows (the prediction at a leaf).
    pub value: Vec<f64>,
    /// Train rows in the node.
    pub samples: Vec<usize>,
    /// Squared error per row in the node (for feature importances).
    pub impurity: Vec<f64>,
}

impl Tree {
    /// The leaf value for one row, `x[f]` being feature `f`.
    pub fn predict_row(&self, x: impl Fn(usize) -> f64) -> f64 {
        let mut node = 0;
        while let Some(f) = self.feature[node] {
            node = if x(f) <= self.threshold[node] {
                self.left[node]
            } else {
                self.right[node]
            };
        }
        self.value[node]
    }

    /// Weighted impurity decrease per feature, not normalised (scikit-learn's
    /// `compute_feature_importances` before its division by the total).
    pub fn impurity_decrease(&self, n_features: usize) -> Vec<f64> {
        let mut out = vec![0.0; n_features];
        for node in 0..self.feature.len() {
            if let Some(f) = self.feature[node] {
                let (l, r) = (self.left[node], self.right[node]);
                out[f] += self.samples[node] as f64 * self.impurity[node]
                    - self.samples[l] as f64 * self.impurity[l]
                    - self.samples[r] as f64 * self.impurity[r];
            }
        }
        let root = self.samples[0] as f64;
        for v in &mut out {
            *v /= root;
        }
        out
    }
}

/// Grows a tree on `columns` (one slice per feature, all of `y`'s length).
pub fn grow(columns: &[&[f64]], y: &[f64], params: &TreeParams) -> Tree {
    let mut tree = Tree {
        feature: Vec::new(),
        threshold: Vec::new(),
        left: Vec::new(),
        right: Vec::new(),
        value: Vec::new(),
        samples: Vec::new(),
        impurity: Vec::new(),
    };
    let mut rows: Vec<usize> = (0..y.len()).collect();
    let mut scratch = Vec::with_capacity(y.len());
    grow_node(&mut tree, columns, y, params, &mut rows, 0, &mut scratch);
    tree
}

struct Split {
    feature: usize,
    threshold: f64,
    proxy: f64,
}

#[allow(clippy::many_single_char_names)] // x, y, n as in the algorithm's description
fn grow_node(
    tree: &mut Tree,
    columns: &[&[f64]],
    y: &[f64],
    params: &TreeParams,
    rows: &mut [usize],
    depth: u64,
    scratch: &mut Vec<(f64, f64)>,
) -> usize {
    let n = rows.len();
    let (mut sum, mut sum_sq) = (0.0, 0.0);
    for &r in rows.iter() {
        sum += y[r];
        sum_sq += y[r] * y[r];
    }
    let mean = sum / n as f64;
    let impurity = sum_sq / n as f64 - mean * mean;
    let id = tree.feature.len();
    tree.feature.push(None);
    tree.threshold.push(0.0);
    tree.left.push(0);
    tree.right.push(0);
    tree.value.push(mean);
    tree.samples.push(n);
    tree.impurity.push(impurity);

    let leaf = params.max_depth.is_some_and(|d| depth >= d)
        || (n as u64) < params.min_samples_split
        || (n as u64) < 2 * params.min_samples_leaf
        || impurity <= f64::EPSILON;
    if leaf {
        return id;
    }
    let Some(split) = best_split(columns, y, params, rows, sum, scratch) else {
        return id;
    };
    // Partition in place, keeping each side's rows in their order (a stable partition).
    let x = columns[split.feature];
    let (left, right): (Vec<usize>, Vec<usize>) = rows.iter().partition(|&&r| x[r] <= split.threshold);
    let n_left = left.len();
    rows[..n_left].copy_from_slice(&left);
    rows[n_left..].copy_from_slice(&right);
    let (left_rows, right_rows) = rows.split_at_mut(n_left);
    let l = grow_node(tree, columns, y, params, left_rows, depth + 1, scratch);
    let r = grow_node(tree, columns, y, params, right_rows, depth + 1, scratch);
    tree.feature[id] = Some(split.feature);
    tree.threshold[id] = split.threshold;
    tree.left[id] = l;
    tree.right[id] = r;
    id
}

/// The best split of the node's rows over all features, features in column order, the first of equals
/// kept. `None` when no feature has two distinct values with enough rows on each side.
fn best_split(
    columns: &[&[f64]],
    y: &[f64],
    params: &TreeParams,
    rows: &[usize],
    sum: f64,
    sorted: &mut Vec<(f64, f64)>,
) -> Option<Split> {
    let n = rows.len();
    let min_leaf = usize::try_from(params.min_samples_leaf).unwrap_or(usize::MAX);
    let mut best: Option<Split> = None;
    for (f, x) in columns.iter().enumerate() {
        sorted.clear();
        sorted.extend(rows.iter().map(|&r| (x[r], y[r])));
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        if sorted[n - 1].0 <= sorted[0].0 + FEATURE_THRESHOLD {
            continue; // constant in this node
        }
        let mut sum_left = 0.0;
        for p in 1..n {
            sum_left += sorted[p - 1].1;
            // A split between positions p-1 and p exists only where the value changes.
            if sorted[p].0 <= sorted[p - 1].0 + FEATURE_THRESHOLD {
                continue;
            }
            let (n_left, n_right) = (p, n - p);
            if n_left < min_leaf || n_right < min_leaf {
                continue;
            }
            let sum_right = sum - sum_left;
            let (nl, nr) = (n_left as f64, n_right as f64);
            let proxy = match params.criterion {
                Criterion::SquaredError => sum_left * sum_left / nl + sum_right * sum_right / nr,
                Criterion::FriedmanMse => {
                    let diff = nr * sum_left - nl * sum_right;
                    diff * diff / (nl * nr)
                }
            };
            if best.as_ref().is_none_or(|b| proxy > b.proxy) {
                let (lo, hi) = (sorted[p - 1].0, sorted[p].0);
                let mut threshold = lo / 2.0 + hi / 2.0;
                // scikit-learn's guard: rounding may land the midpoint on the upper value.
                #[allow(clippy::float_cmp)]
                if threshold == hi || !threshold.is_finite() {
                    threshold = lo;
                }
                best = Some(Split {
                    feature: f,
                    threshold,
                    proxy,
                });
            }
        }
    }
    best
}

/// Gradient boosting with squared error, as scikit-learn's `GradientBoostingRegressor` with
/// `subsample = 1`: start from the mean target, then fit each tree (`friedman_mse`) to the residuals
/// `y − F` and add `learning_rate ×` its prediction to F. Returns (the start, the trees).
pub fn boost(
    columns: &[&[f64]],
    y: &[f64],
    n_estimators: u64,
    learning_rate: f64,
    params: &TreeParams,
) -> (f64, Vec<Tree>) {
    let init = y.iter().sum::<f64>() / y.len() as f64;
    let mut raw = vec![init; y.len()];
    let mut residual = vec![0.0; y.len()];
    let mut trees = Vec::new();
    for _ in 0..n_estimators {
        for ((r, yi), f) in residual.iter_mut().zip(y).zip(&raw) {
            *r = yi - f;
        }
        let tree = grow(columns, &residual, params);
        for (i, f) in raw.iter_mut().enumerate() {
            *f += learning_rate * tree.predict_row(|c| columns[c][i]);
        }
        trees.push(tree);
    }
    (init, trees)
}

/// scikit-learn's `feature_importances_`: each tree's impurity decrease per feature (trees of one node
/// left out), averaged over the trees, then scaled to sum to 1 (all zeros when nothing was split).
pub fn importances(trees: &[Tree], n_features: usize) -> Vec<f64> {
    let split: Vec<Vec<f64>> = trees
        .iter()
        .filter(|t| t.feature.len() > 1)
        .map(|t| t.impurity_decrease(n_features))
        .collect();
    let mut mean = vec![0.0; n_features];
    for t in &split {
        for (m, v) in mean.iter_mut().zip(t) {
            *m += v;
        }
    }
    for m in &mut mean {
        *m /= split.len().max(1) as f64;
    }
    let total: f64 = mean.iter().sum();
    if total > 0.0 {
        for m in &mut mean {
            *m /= total;
        }
    }
    mean
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARAMS: TreeParams = TreeParams {
        max_depth: None,
        min_samples_split: 2,
        min_samples_leaf: 1,
        criterion: Criterion::SquaredError,
    };

    #[test]
    fn splits_halfway_between_values_and_fits_means() {
        let x = [1.0, 2.0, 3.0, 10.0, 11.0, 12.0];
        let y = [1.0, 1.0, 1.0, 5.0, 5.0, 7.0];
        let tree = grow(&[&x], &y, &PARAMS);
        assert_eq!(tree.feature[0], Some(0));
        assert_eq!(tree.threshold[0], 6.5);
        assert_eq!(tree.predict_row(|_| 2.5), 1.0);
        assert_eq!(tree.predict_row(|_| 11.5), 5.0); // x <= threshold goes left
        assert_eq!(tree.predict_row(|_| 11.9), 7.0);
        assert_eq!(tree.predict_row(|_| 10.0), 5.0);
    }

    #[test]
    fn respects_depth_and_leaf_size_and_breaks_ties_by_column_order() {
        let a = [0.0, 0.0, 1.0, 1.0];
        let b = a; // the same split on two features: the first column wins
        let y = [0.0, 0.0, 1.0, 1.0];
        let tree = grow(&[&a, &b], &y, &PARAMS);
        assert_eq!(tree.feature[0], Some(0));
        let stump = grow(
            &[&[1.0, 2.0, 3.0, 4.0]],
            &[1.0, 2.0, 3.0, 4.0],
            &TreeParams {
                max_depth: Some(1),
                ..PARAMS
            },
        );
        assert_eq!(stump.feature.len(), 3);
        let wide_leaves = grow(
            &[&[1.0, 2.0, 3.0, 4.0]],
            &[1.0, 2.0, 3.0, 40.0],
            &TreeParams {
                min_samples_leaf: 2,
                ..PARAMS
            },
        );
        assert_eq!(wide_leaves.threshold[0], 2.5);
        assert_eq!(wide_leaves.samples, vec![4, 2, 2]);
    }

    #[test]
    fn a_fitted_model_reads_back_from_its_json() {
        let x = [1.0, 2.0, 3.0, 10.0, 11.0, 12.0];
        let y = [1.0, 1.5, 1.0, 5.0, 5.0, 7.0];
        let boosted = TreeParams {
            max_depth: Some(2),
            criterion: Criterion::FriedmanMse,
            ..PARAMS
        };
        let (init, trees) = boost(&[&x], &y, 3, 0.1, &boosted);
        let model = crate::models::Model::Trees(crate::models::TreeModel {
            estimator: "gradient_boosting".into(),
            features: vec!["x".into()],
            init,
            learning_rate: 0.1,
            importances: importances(&trees, 1),
            trees,
        });
        let json = serde_json::to_vec(&model).unwrap();
        let back: crate::models::Model = serde_json::from_slice(&json).unwrap();
        assert_eq!(back, model);
    }
}
