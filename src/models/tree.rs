//! Regression trees as scikit-learn grows them (CART, depth first, best split), and gradient boosting of
//! them with squared error, as `GradientBoostingRegressor` does.
//!
//! A split is the threshold halfway between two neighbouring distinct values of a feature (values
//! closer than 1e-7 count as equal, as in scikit-learn) that most reduces the squared error; rows with
//! `x <= threshold` go left. A node stays a leaf when it is at `max_depth`, has fewer than
//! `min_samples_split` rows, cannot give both children `min_samples_leaf` rows, or is pure. Its value is
//! the mean of its targets.
//!
//! Trees see every feature rounded to single precision, as scikit-learn's do (its trees store X as
//! `float32`): thresholds are midpoints of rounded values, and rows are rounded before they are
//! compared with them.
//!
//! Ties: scikit-learn visits the features in an order drawn from `random_state` and keeps the first of
//! equally good splits, so which of two tied features it picks depends on that draw. Here features are
//! visited in column order and the first best split is kept: the same tree on every run, and the same
//! tree as scikit-learn's wherever no two splits tie (docs/models.md).

use serde::{Deserialize, Serialize};

/// Values closer than this are one value (scikit-learn's `FEATURE_THRESHOLD`).
const FEATURE_THRESHOLD: f64 = 1e-7;

/// How a split is scored. Each is computed as scikit-learn computes its `proxy_impurity_improvement`,
/// so that near-ties fall the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Criterion {
    /// `squared_error`: `sum_l²/n_l + sum_r²/n_r`.
    SquaredError,
    /// `friedman_mse` (gradient boosting): `(n_r·sum_l − n_l·sum_r)² / (n_l·n_r)`.
    FriedmanMse,
    /// `gini`: `−n_r·gini_r − n_l·gini_l`, gini = 1 − Σ p².
    Gini,
    /// `entropy` (= `log_loss`): `−n_r·H_r − n_l·H_l`, H = −Σ p·log₂ p.
    Entropy,
}

impl Criterion {
    pub fn is_classification(self) -> bool {
        matches!(self, Criterion::Gini | Criterion::Entropy)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeParams {
    pub max_depth: Option<u64>,
    pub min_samples_split: u64,
    pub min_samples_leaf: u64,
    pub criterion: Criterion,
    /// Features drawn at each split (a forest); `None`: every feature, in column order.
    pub max_features: Option<usize>,
}

/// What a tree learns to predict: a number per row, or a class index per row.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    Values(&'a [f64]),
    Classes { y: &'a [u32], n_classes: usize },
}

impl Target<'_> {
    fn len(&self) -> usize {
        match self {
            Target::Values(y) => y.len(),
            Target::Classes { y, .. } => y.len(),
        }
    }

    /// Accumulator slots: one sum for values, one count per class.
    fn slots(&self) -> usize {
        match self {
            Target::Values(_) => 1,
            Target::Classes { n_classes, .. } => *n_classes,
        }
    }

    /// Row `r`'s slot and what it adds there.
    fn entry(&self, r: usize) -> (usize, f64) {
        match self {
            Target::Values(y) => (0, y[r]),
            Target::Classes { y, .. } => (y[r] as usize, 1.0),
        }
    }
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
    /// Regression: mean target of the node's train rows (the prediction at a leaf). Empty for a
    /// classification tree.
    pub value: Vec<f64>,
    /// Classification: per node, the fraction of its train rows in each class (node-major).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub distribution: Vec<f64>,
    /// Train rows in the node (a bootstrap sample counts a row as often as it was drawn).
    pub samples: Vec<usize>,
    /// The node's impurity: squared error per row, gini or entropy (for feature importances).
    pub impurity: Vec<f64>,
}

impl Tree {
    /// The leaf one row falls into, `x(f)` being feature `f` (seen in single precision, as the tree
    /// was grown).
    pub fn leaf(&self, x: impl Fn(usize) -> f64) -> usize {
        let mut node = 0;
        while let Some(f) = self.feature[node] {
            node = if single(x(f)) <= self.threshold[node] {
                self.left[node]
            } else {
                self.right[node]
            };
        }
        node
    }

    /// The leaf value for one row (regression trees).
    pub fn predict_row(&self, x: impl Fn(usize) -> f64) -> f64 {
        self.value[self.leaf(x)]
    }

    /// Class fractions at a leaf (classification trees).
    pub fn leaf_distribution(&self, leaf: usize, n_classes: usize) -> &[f64] {
        &self.distribution[leaf * n_classes..(leaf + 1) * n_classes]
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

/// A value as scikit-learn's trees see it: rounded to `f32` (they store X in single precision), then
/// compared in double precision with thresholds that are midpoints of such values.
#[allow(clippy::cast_possible_truncation)] // the rounding is the point
pub fn single(x: f64) -> f64 {
    f64::from(x as f32)
}

/// Feature columns rounded as the trees see them; an error names a value beyond single precision's
/// range (scikit-learn refuses those too).
pub fn single_columns(names: &[String], columns: &[&[f64]]) -> crate::error::Result<Vec<Vec<f64>>> {
    names
        .iter()
        .zip(columns)
        .map(|(name, c)| {
            if let Some(v) = c.iter().find(|v| v.abs() > f64::from(f32::MAX)) {
                return Err(crate::error::Error::data(format!(
                    "feature \"{name}\" holds {v}, beyond the range trees work in (single precision, ±3.4e38)"
                ))
                .with_hint("scale the feature (a [[transform]] step) or leave it out"));
            }
            Ok(c.iter().map(|v| single(*v)).collect())
        })
        .collect()
}

/// Grows a tree on `columns` (one slice per feature, all of the target's length) from every row once.
pub fn grow(columns: &[&[f64]], target: Target<'_>, params: &TreeParams) -> Tree {
    let rows: Vec<usize> = (0..target.len()).collect();
    grow_from(columns, target, params, rows, None)
}

/// Every row of each feature, sorted by (value, row): computed once for trees grown on the same rows
/// (the rounds of boosting).
pub fn presort(columns: &[&[f64]], rows: &[usize]) -> Vec<Vec<usize>> {
    columns
        .iter()
        .map(|x| {
            let mut order: Vec<(f64, usize)> = rows.iter().map(|&r| (x[r], r)).collect();
            order.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            order.into_iter().map(|(_, r)| r).collect()
        })
        .collect()
}

/// Grows a tree on all rows once from their presorted orders (see `presort`).
pub fn grow_presorted(columns: &[&[f64]], target: Target<'_>, params: &TreeParams, sorted: Vec<Vec<usize>>) -> Tree {
    let rows: Vec<usize> = (0..target.len()).collect();
    grow_with(columns, target, params, rows, None, Some(sorted))
}

/// Grows a tree from `rows`, which may repeat a row (a bootstrap sample: a row drawn twice weighs
/// twice, as scikit-learn's sample weights make it). `rng` draws the features tried at each split
/// when `params.max_features` is set.
pub fn grow_from(
    columns: &[&[f64]],
    target: Target<'_>,
    params: &TreeParams,
    rows: Vec<usize>,
    rng: Option<&mut rand_chacha::ChaCha20Rng>,
) -> Tree {
    grow_with(columns, target, params, rows, rng, None)
}

fn grow_with(
    columns: &[&[f64]],
    target: Target<'_>,
    params: &TreeParams,
    mut rows: Vec<usize>,
    rng: Option<&mut rand_chacha::ChaCha20Rng>,
    presorted: Option<Vec<Vec<usize>>>,
) -> Tree {
    let mut tree = Tree {
        feature: Vec::new(),
        threshold: Vec::new(),
        left: Vec::new(),
        right: Vec::new(),
        value: Vec::new(),
        distribution: Vec::new(),
        samples: Vec::new(),
        impurity: Vec::new(),
    };
    // Repeated rows sit side by side, so a side's distinct rows can be counted while scanning.
    rows.sort_unstable();
    // Each feature's rows sorted once by (value, row); a split keeps every list sorted by partitioning
    // it stably, so no node sorts again.
    // With features drawn per split (a forest), most lists would be partitioned at every node without
    // ever being read: there, each node sorts the features it draws instead.
    let sorted: Vec<Vec<usize>> = match presorted {
        Some(sorted) => sorted,
        None if params.max_features.is_some_and(|m| m < columns.len()) => Vec::new(),
        None => presort(columns, &rows),
    };
    let width = rows.iter().max().map_or(0, |m| m + 1);
    let mut grower = Grower {
        columns,
        target,
        params,
        rng,
        order: (0..columns.len()).collect(),
        sorted,
        goes_left: vec![false; width],
        buffer: Vec::with_capacity(rows.len()),
        pairs: Vec::new(),
    };
    let n = rows.len();
    let constant = vec![false; columns.len()];
    grower.node(&mut tree, &mut rows, 0, 0..n, &constant);
    tree
}

struct Split {
    feature: usize,
    threshold: f64,
    proxy: f64,
}

struct Grower<'a, 'r> {
    columns: &'a [&'a [f64]],
    target: Target<'a>,
    params: &'a TreeParams,
    rng: Option<&'r mut rand_chacha::ChaCha20Rng>,
    order: Vec<usize>,
    /// Per feature, every node's rows sorted by (value, row); a node owns the same range in each.
    sorted: Vec<Vec<usize>>,
    /// A node's (value, row) sort keys, when there are no presorted lists.
    pairs: Vec<u128>,
    /// Per row, the side of the split being applied.
    goes_left: Vec<bool>,
    buffer: Vec<usize>,
}

/// A classification node's impurity from its class counts, as scikit-learn computes it.
fn class_impurity(criterion: Criterion, sums: &[f64], n: f64) -> f64 {
    match criterion {
        Criterion::SquaredError | Criterion::FriedmanMse => 0.0,
        Criterion::Gini => {
            let sq: f64 = sums.iter().map(|c| c * c).sum();
            1.0 - sq / (n * n)
        }
        Criterion::Entropy => {
            let mut h = 0.0;
            for &c in sums {
                if c > 0.0 {
                    let p = c / n;
                    h -= p * (p.ln() / std::f64::consts::LN_2);
                }
            }
            h
        }
    }
}

fn proxy(criterion: Criterion, left: &[f64], right: &[f64], nl: f64, nr: f64) -> f64 {
    match criterion {
        Criterion::SquaredError => left[0] * left[0] / nl + right[0] * right[0] / nr,
        Criterion::FriedmanMse => {
            let diff = nr * left[0] - nl * right[0];
            diff * diff / (nl * nr)
        }
        Criterion::Gini | Criterion::Entropy => {
            -nr * class_impurity(criterion, right, nr) - nl * class_impurity(criterion, left, nl)
        }
    }
}

/// The bits of `x` as an unsigned number in `total_cmp`'s order.
fn ordered_bits(x: f64) -> u128 {
    let bits = x.to_bits();
    u128::from(if bits >> 63 == 1 { !bits } else { bits | (1 << 63) })
}

/// Moves the entries of `list` that go left to its front, keeping both sides' order.
fn stable_partition(list: &mut [usize], goes_left: &[bool], buffer: &mut Vec<usize>) {
    buffer.clear();
    let mut write = 0;
    for i in 0..list.len() {
        let r = list[i];
        if goes_left[r] {
            list[write] = r;
            write += 1;
        } else {
            buffer.push(r);
        }
    }
    list[write..].copy_from_slice(buffer);
}

impl Grower<'_, '_> {
    /// Grows the node of `rows` (sorted by row), which owns `range` of every feature's sorted list.
    #[allow(clippy::many_single_char_names)] // x, y, n as in the algorithm's description
    /// `constant`: features already found constant in an ancestor (so in this node too).
    fn node(
        &mut self,
        tree: &mut Tree,
        rows: &mut [usize],
        depth: u64,
        range: std::ops::Range<usize>,
        constant: &[bool],
    ) -> usize {
        let n = rows.len();
        let slots = self.target.slots();
        let mut sums = vec![0.0; slots];
        for &r in rows.iter() {
            let (k, v) = self.target.entry(r);
            sums[k] += v;
        }
        let impurity = match self.target {
            // Two passes: a node whose targets are all equal has impurity 0 exactly (one pass,
            // Σy²/n − mean², leaves rounding noise that can pass for a split worth making).
            Target::Values(y) => {
                let mean = sums[0] / n as f64;
                rows.iter().map(|&r| (y[r] - mean) * (y[r] - mean)).sum::<f64>() / n as f64
            }
            Target::Classes { .. } => class_impurity(self.params.criterion, &sums, n as f64),
        };
        let id = tree.feature.len();
        tree.feature.push(None);
        tree.threshold.push(0.0);
        tree.left.push(0);
        tree.right.push(0);
        match self.target {
            Target::Values(_) => tree.value.push(sums[0] / n as f64),
            Target::Classes { .. } => tree.distribution.extend(sums.iter().map(|c| c / n as f64)),
        }
        tree.samples.push(n);
        tree.impurity.push(impurity);

        let distinct = 1 + rows.windows(2).filter(|w| w[0] != w[1]).count();
        let leaf = self.params.max_depth.is_some_and(|d| depth >= d)
            || (distinct as u64) < self.params.min_samples_split
            || (distinct as u64) < 2 * self.params.min_samples_leaf
            || impurity <= f64::EPSILON;
        if leaf {
            return id;
        }
        let mut constant = constant.to_vec();
        let Some(split) = self.best_split(rows, range.clone(), distinct, &sums, &mut constant) else {
            return id;
        };
        // Every list of the node is partitioned stably: each side stays sorted.
        let x = self.columns[split.feature];
        for &r in rows.iter() {
            self.goes_left[r] = x[r] <= split.threshold;
        }
        for list in &mut self.sorted {
            stable_partition(&mut list[range.clone()], &self.goes_left, &mut self.buffer);
        }
        stable_partition(rows, &self.goes_left, &mut self.buffer);
        let n_left = rows.iter().filter(|r| self.goes_left[**r]).count();
        let (left_rows, right_rows) = rows.split_at_mut(n_left);
        let middle = range.start + n_left;
        let l = self.node(tree, left_rows, depth + 1, range.start..middle, &constant);
        let r = self.node(tree, right_rows, depth + 1, middle..range.end, &constant);
        tree.feature[id] = Some(split.feature);
        tree.threshold[id] = split.threshold;
        tree.left[id] = l;
        tree.right[id] = r;
        id
    }

    /// The best split of the node's rows. Without `max_features`, every feature in column order; with
    /// it, features in a drawn order until that many non-constant ones were tried (as scikit-learn).
    /// The first of equally good splits is kept. `None` when no feature has two distinct values with
    /// enough rows on each side.
    #[allow(clippy::many_single_char_names)] // f, i, j, k, n, p as in the algorithm's description
    fn best_split(
        &mut self,
        rows: &[usize],
        range: std::ops::Range<usize>,
        distinct_total: usize,
        total: &[f64],
        constant: &mut [bool],
    ) -> Option<Split> {
        use rand::Rng;
        let n = range.len();
        let min_leaf = usize::try_from(self.params.min_samples_leaf).unwrap_or(usize::MAX);
        let n_features = self.columns.len();
        let wanted = self.params.max_features.unwrap_or(n_features).min(n_features);
        let mut best: Option<Split> = None;
        let mut left = vec![0.0; total.len()];
        let mut right = vec![0.0; total.len()];
        let mut tried = 0;
        for i in 0..n_features {
            if tried >= wanted {
                break;
            }
            let f = match self.rng.as_deref_mut() {
                Some(rng) if self.params.max_features.is_some() => {
                    // One step of a Fisher-Yates shuffle: the next feature, drawn from those left.
                    let j = rng.gen_range(i..n_features);
                    self.order.swap(i, j);
                    self.order[i]
                }
                _ => i,
            };
            if constant[f] {
                continue; // constant in an ancestor, so here too
            }
            let x = self.columns[f];
            let sorted: &[usize] = if self.sorted.is_empty() {
                // Constant here (a one-hot column deep in a tree, often): skip it before sorting.
                let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
                for &r in rows {
                    // Plain comparisons: design values are never NaN.
                    if x[r] < lo {
                        lo = x[r];
                    }
                    if x[r] > hi {
                        hi = x[r];
                    }
                }
                if hi <= lo + FEATURE_THRESHOLD {
                    constant[f] = true;
                    continue;
                }
                self.pairs.clear();
                // One integer key per row, ordered as (value, row): the value's bits made monotone
                // (as `total_cmp` orders them), then the row.
                self.pairs
                    .extend(rows.iter().map(|&r| (ordered_bits(x[r]) << 64) | r as u128));
                self.pairs.sort_unstable();
                self.buffer.clear();
                #[allow(clippy::cast_possible_truncation)] // the low 64 bits hold the row
                self.buffer.extend(self.pairs.iter().map(|k| *k as u64 as usize));
                &self.buffer
            } else {
                &self.sorted[f][range.clone()]
            };
            if x[sorted[n - 1]] <= x[sorted[0]] + FEATURE_THRESHOLD {
                constant[f] = true;
                continue; // constant in this node
            }
            tried += 1;
            left.fill(0.0);
            let mut distinct_left = 0;
            // A regression target's running sum stays in a register (not `left[0]` in memory).
            let values = match self.target {
                Target::Values(y) => Some(y),
                Target::Classes { .. } => None,
            };
            let mut sum_left = 0.0;
            for p in 1..n {
                let r = sorted[p - 1];
                if let Some(y) = values {
                    sum_left += y[r];
                } else {
                    let (k, v) = self.target.entry(r);
                    left[k] += v;
                }
                if p == 1 || sorted[p - 2] != r {
                    distinct_left += 1;
                }
                // A split between positions p-1 and p exists only where the value changes.
                let (lo, hi) = (x[r], x[sorted[p]]);
                if hi <= lo + FEATURE_THRESHOLD {
                    continue;
                }
                if distinct_left < min_leaf || distinct_total - distinct_left < min_leaf {
                    continue;
                }
                if values.is_some() {
                    left[0] = sum_left;
                }
                for ((rk, t), l) in right.iter_mut().zip(total).zip(&left) {
                    *rk = t - l;
                }
                let proxy = proxy(self.params.criterion, &left, &right, p as f64, (n - p) as f64);
                if best.as_ref().is_none_or(|b| proxy > b.proxy) {
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
    let all: Vec<usize> = (0..y.len()).collect();
    let sorted = presort(columns, &all);
    for _ in 0..n_estimators {
        for ((r, yi), f) in residual.iter_mut().zip(y).zip(&raw) {
            *r = yi - f;
        }
        let tree = grow_presorted(columns, Target::Values(&residual), params, sorted.clone());
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
        max_features: None,
    };

    #[test]
    fn splits_halfway_between_values_and_fits_means() {
        let x = [1.0, 2.0, 3.0, 10.0, 11.0, 12.0];
        let y = [1.0, 1.0, 1.0, 5.0, 5.0, 7.0];
        let tree = grow(&[&x], Target::Values(&y), &PARAMS);
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
        let tree = grow(&[&a, &b], Target::Values(&y), &PARAMS);
        assert_eq!(tree.feature[0], Some(0));
        let stump = grow(
            &[&[1.0, 2.0, 3.0, 4.0]],
            Target::Values(&[1.0, 2.0, 3.0, 4.0]),
            &TreeParams {
                max_depth: Some(1),
                ..PARAMS
            },
        );
        assert_eq!(stump.feature.len(), 3);
        let wide_leaves = grow(
            &[&[1.0, 2.0, 3.0, 4.0]],
            Target::Values(&[1.0, 2.0, 3.0, 40.0]),
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
            average: false,
        });
        let json = serde_json::to_vec(&model).unwrap();
        let back: crate::models::Model = serde_json::from_slice(&json).unwrap();
        assert_eq!(back, model);
    }
}
