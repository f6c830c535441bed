//! Mutual information between each column and the target, in nats, as scikit-learn's
//! `mutual_info_regression` / `mutual_info_classif` estimate it:
//!
//! - continuous column, continuous target: Kraskov, Stögbauer and Grassberger's k-nearest-neighbour
//!   estimator (max-norm in the joint space, strict radius in the marginals);
//! - continuous column, class target (or discrete column, continuous target): Ross's estimator, the
//!   k-th neighbour within the same class;
//! - discrete column, class target: the contingency-table mutual information (`mutual_info_score`).
//!
//! As scikit-learn does, continuous columns and a continuous target are divided by their population
//! standard deviation and get noise of 1e-10 × max(1, mean |x|) × N(0, 1), so that repeated values do
//! not tie. The noise comes from the step's seeded stream: estimates are reproducible, but on columns
//! with repeated values they differ from scikit-learn's by as much as its own estimates differ between
//! two `random_state`s. On columns without repeated values the noise moves no neighbour and the
//! estimate is scikit-learn's to rounding.

use std::collections::BTreeMap;

use rand::Rng;
use rand_chacha::ChaCha20Rng;
use rayon::prelude::*;

/// The target the columns are scored against.
pub enum Target<'a> {
    Values(&'a [f64]),
    Classes(&'a [u32]),
}

/// The target after scikit-learn's preparation.
enum Prepared<'a> {
    Values(Vec<f64>),
    Classes(&'a [u32]),
}

/// The digamma function ψ for x > 0 (the estimators call it on counts): the recurrence
/// ψ(x) = ψ(x + 1) − 1/x up to 10, then the asymptotic series, accurate to ~1e-15 there.
pub fn digamma(x: f64) -> f64 {
    let mut x = x;
    let mut shift = 0.0;
    while x < 10.0 {
        shift -= 1.0 / x;
        x += 1.0;
    }
    let f = 1.0 / (x * x);
    let series = f * (1.0 / 12.0 - f * (1.0 / 120.0 - f * (1.0 / 252.0 - f * (1.0 / 240.0 - f * (1.0 / 132.0)))));
    shift + x.ln() - 0.5 / x - series
}

/// The largest float below `r` (`np.nextafter(r, 0)`): "closer than the k-th neighbour".
fn just_below(r: f64) -> f64 {
    if r > 0.0 { f64::from_bits(r.to_bits() - 1) } else { 0.0 }
}

/// A standard normal draw (Box–Muller on two uniform draws of the stream).
fn normal(rng: &mut ChaCha20Rng) -> f64 {
    let u1: f64 = 1.0 - rng.r#gen::<f64>();
    let u2: f64 = rng.r#gen::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// `scale(x, with_mean=False)`: divided by the population standard deviation (a zero one counts as 1).
fn scaled(x: &[f64]) -> Vec<f64> {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    let sd = var.sqrt();
    let sd = if sd < 10.0 * f64::EPSILON { 1.0 } else { sd };
    x.iter().map(|v| v / sd).collect()
}

fn noise_scale(x: &[f64]) -> f64 {
    1e-10 * (x.iter().map(|v| v.abs()).sum::<f64>() / x.len() as f64).max(1.0)
}

/// Mutual information of every column with the target. `discrete[i]` says column i holds discrete
/// values; the noise is drawn row by row over the continuous columns, then for a continuous target.
pub fn scores(columns: &[&[f64]], discrete: &[bool], target: &Target<'_>, k: usize, rng: &mut ChaCha20Rng) -> Vec<f64> {
    let n = columns.first().map_or(0, |c| c.len());
    let mut prepared: Vec<Vec<f64>> = columns
        .iter()
        .zip(discrete)
        .map(|(c, d)| if *d { c.to_vec() } else { scaled(c) })
        .collect();
    let continuous: Vec<usize> = (0..columns.len()).filter(|i| !discrete[*i]).collect();
    let scales: Vec<f64> = continuous.iter().map(|&i| noise_scale(&prepared[i])).collect();
    // Row by row, as scikit-learn draws its (rows × columns) noise matrix.
    for row in 0..n {
        for (&i, s) in continuous.iter().zip(&scales) {
            let column: &mut Vec<f64> = &mut prepared[i];
            column[row] += s * normal(rng);
        }
    }
    // A continuous target is scaled and jittered like the columns; classes are used as they are.
    let target = match target {
        Target::Values(y) => {
            let mut y = scaled(y);
            let s = noise_scale(&y);
            for v in &mut y {
                *v += s * normal(rng);
            }
            Prepared::Values(y)
        }
        Target::Classes(y) => Prepared::Classes(y),
    };
    // Columns are independent: computed in parallel, collected in column order.
    prepared
        .par_iter()
        .zip(discrete.par_iter())
        .map(|(x, d)| match (&target, *d) {
            (Prepared::Classes(y), true) => mi_discrete(&labels_of(x), y),
            (Prepared::Classes(y), false) => mi_continuous_discrete(x, y, k),
            (Prepared::Values(y), true) => mi_continuous_discrete(y, &labels_of(x), k),
            (Prepared::Values(y), false) => mi_continuous(x, y, k),
        })
        .collect()
}

/// A discrete column's values as label numbers (equal values, −0 and 0 included, share one).
fn labels_of(x: &[f64]) -> Vec<u32> {
    let key = |v: f64| if v == 0.0 { 0 } else { v.to_bits() };
    let mut ids: BTreeMap<u64, u32> = BTreeMap::new();
    x.iter()
        .map(|v| {
            let next = u32::try_from(ids.len()).unwrap_or(u32::MAX);
            *ids.entry(key(*v)).or_insert(next)
        })
        .collect()
}

/// `mutual_info_score`: the contingency table's mutual information.
fn mi_discrete(x: &[u32], y: &[u32]) -> f64 {
    let n = x.len() as f64;
    let mut cells: BTreeMap<(u32, u32), u64> = BTreeMap::new();
    let mut rows: BTreeMap<u32, u64> = BTreeMap::new();
    let mut cols: BTreeMap<u32, u64> = BTreeMap::new();
    for (a, b) in x.iter().zip(y) {
        *cells.entry((*a, *b)).or_default() += 1;
        *rows.entry(*a).or_default() += 1;
        *cols.entry(*b).or_default() += 1;
    }
    if rows.len() == 1 || cols.len() == 1 {
        return 0.0;
    }
    let mut mi = 0.0;
    for ((a, b), c) in &cells {
        let c = *c as f64;
        let share = c / n;
        let outer = (rows[a] * cols[b]) as f64;
        let term = share * (c.ln() - n.ln()) + share * (-outer.ln() + n.ln() + n.ln());
        if term.abs() >= f64::EPSILON {
            mi += term;
        }
    }
    mi.max(0.0)
}

/// Ross's estimator: each row's k-th neighbour among rows of its class sets a radius; `m` counts
/// all rows within it. Rows alone in their class are left out.
fn mi_continuous_discrete(c: &[f64], d: &[u32], k: usize) -> f64 {
    let mut by_class: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (i, label) in d.iter().enumerate() {
        by_class.entry(*label).or_default().push(i);
    }
    let mut radius = vec![0.0; c.len()];
    let mut kept: Vec<usize> = Vec::with_capacity(c.len());
    let (mut sum_k, mut sum_count) = (0.0, 0.0);
    for rows in by_class.values() {
        let count = rows.len();
        if count < 2 {
            continue;
        }
        let kk = k.min(count - 1);
        let values: Vec<f64> = rows.iter().map(|&i| c[i]).collect();
        let mut order: Vec<usize> = (0..count).collect();
        order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
        let sorted: Vec<f64> = order.iter().map(|&j| values[j]).collect();
        for (pos, &j) in order.iter().enumerate() {
            radius[rows[j]] = just_below(kth_gap(&sorted, pos, kk));
        }
        kept.extend(rows);
        sum_k += digamma(kk as f64) * count as f64;
        sum_count += digamma(count as f64) * count as f64;
    }
    let n = kept.len();
    if n == 0 {
        return 0.0;
    }
    kept.sort_unstable();
    let mut all: Vec<f64> = kept.iter().map(|&i| c[i]).collect();
    all.sort_by(f64::total_cmp);
    let sum_m: f64 = kept
        .iter()
        .map(|&i| digamma(count_within(&all, c[i], radius[i]) as f64))
        .sum();
    let nf = n as f64;
    (digamma(nf) + sum_k / nf - sum_count / nf - sum_m / nf).max(0.0)
}

/// The distance from `sorted[pos]` to its k-th nearest other value in the sorted slice.
fn kth_gap(sorted: &[f64], pos: usize, k: usize) -> f64 {
    let x = sorted[pos];
    let (mut left, mut right) = (pos, pos + 1);
    let mut gap = 0.0;
    for _ in 0..k {
        let l = (left > 0).then(|| x - sorted[left - 1]);
        let r = (right < sorted.len()).then(|| sorted[right] - x);
        gap = match (l, r) {
            (Some(l), Some(r)) if l <= r => {
                left -= 1;
                l
            }
            (_, Some(r)) => {
                right += 1;
                r
            }
            (Some(l), None) => {
                left -= 1;
                l
            }
            (None, None) => break,
        };
    }
    gap
}

/// How many values of the sorted slice lie within `r` of `x` (|v − x| ≤ r), `x` itself included.
fn count_within(sorted: &[f64], x: f64, r: f64) -> usize {
    let lo = sorted.partition_point(|&v| v < x && x - v > r);
    let hi = sorted.partition_point(|&v| v <= x || v - x <= r);
    hi - lo
}

/// Kraskov's estimator (KSG, first form): the k-th neighbour in (x, y) under the max-norm sets each
/// row's radius; `nx` and `ny` count the other rows strictly closer in x and in y.
fn mi_continuous(x: &[f64], y: &[f64], k: usize) -> f64 {
    let rows = x.len();
    let tree = KdTree::new(x, y);
    let mut sx = x.to_vec();
    sx.sort_by(f64::total_cmp);
    let mut sy = y.to_vec();
    sy.sort_by(f64::total_cmp);
    let mut best = Vec::with_capacity(k + 1);
    let (mut sum_x, mut sum_y) = (0.0, 0.0);
    for i in 0..rows {
        best.clear();
        tree.nearest(0, tree.points.len(), 0, [x[i], y[i]], i, k, &mut best);
        let r = just_below(best.last().copied().unwrap_or(0.0));
        // nx + 1 with nx the count minus the row itself.
        sum_x += digamma(count_within(&sx, x[i], r) as f64);
        sum_y += digamma(count_within(&sy, y[i], r) as f64);
    }
    let nf = rows as f64;
    (digamma(nf) + digamma(k as f64) - sum_x / nf - sum_y / nf).max(0.0)
}

/// A two-dimensional k-d tree stored in place: each slice's middle point splits it, on x at even
/// depths and on y at odd ones.
struct KdTree {
    points: Vec<([f64; 2], usize)>,
}

impl KdTree {
    fn new(x: &[f64], y: &[f64]) -> KdTree {
        let mut points: Vec<([f64; 2], usize)> = x.iter().zip(y).enumerate().map(|(i, (a, b))| ([*a, *b], i)).collect();
        Self::build(&mut points, 0);
        KdTree { points }
    }

    fn build(points: &mut [([f64; 2], usize)], depth: usize) {
        if points.len() < 2 {
            return;
        }
        let dim = depth % 2;
        let mid = points.len() / 2;
        points.select_nth_unstable_by(mid, |a, b| a.0[dim].total_cmp(&b.0[dim]));
        let (left, right) = points.split_at_mut(mid);
        Self::build(left, depth + 1);
        Self::build(&mut right[1..], depth + 1);
    }

    /// The `k` smallest max-norm distances from `q` to points other than `skip`, ascending, in `best`.
    #[allow(clippy::too_many_arguments)]
    fn nearest(&self, lo: usize, hi: usize, depth: usize, q: [f64; 2], skip: usize, k: usize, best: &mut Vec<f64>) {
        if lo >= hi {
            return;
        }
        let mid = lo + (hi - lo) / 2;
        let (p, id) = self.points[mid];
        if id != skip {
            let d = (p[0] - q[0]).abs().max((p[1] - q[1]).abs());
            if best.len() < k || d < best[k - 1] {
                let at = best.partition_point(|b| *b <= d);
                best.insert(at, d);
                best.truncate(k);
            }
        }
        let dim = depth % 2;
        let diff = q[dim] - p[dim];
        let (near, far) = if diff < 0.0 {
            ((lo, mid), (mid + 1, hi))
        } else {
            ((mid + 1, hi), (lo, mid))
        };
        self.nearest(near.0, near.1, depth + 1, q, skip, k, best);
        if best.len() < k || diff.abs() < best[k - 1] {
            self.nearest(far.0, far.1, depth + 1, q, skip, k, best);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digamma_matches_the_harmonic_numbers_at_integers() {
        let gamma = 0.577_215_664_901_532_9;
        let mut harmonic = 0.0;
        for n in 1..200 {
            let expected = harmonic - gamma;
            assert!((digamma(f64::from(n)) - expected).abs() < 1e-13, "ψ({n})");
            harmonic += 1.0 / f64::from(n);
        }
    }

    #[test]
    fn the_tree_finds_the_same_neighbours_as_a_full_scan() {
        use rand::SeedableRng;
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let x: Vec<f64> = (0..400).map(|_| f64::from(rng.gen_range(0..20_u32))).collect();
        let y: Vec<f64> = (0..400).map(|_| rng.r#gen::<f64>()).collect();
        let tree = KdTree::new(&x, &y);
        for i in 0..x.len() {
            let mut best = Vec::new();
            tree.nearest(0, x.len(), 0, [x[i], y[i]], i, 3, &mut best);
            let mut all: Vec<f64> = (0..x.len())
                .filter(|j| *j != i)
                .map(|j| (x[j] - x[i]).abs().max((y[j] - y[i]).abs()))
                .collect();
            all.sort_by(f64::total_cmp);
            assert_eq!(best, all[..3].to_vec(), "row {i}");
        }
    }

    #[test]
    fn counts_within_a_radius_include_the_row_and_exclude_the_edge() {
        let sorted = [1.0, 2.0, 2.0, 3.0, 5.0];
        assert_eq!(count_within(&sorted, 2.0, 1.0), 4);
        assert_eq!(count_within(&sorted, 2.0, just_below(1.0)), 2);
        assert_eq!(count_within(&sorted, 5.0, 0.0), 1);
        assert_eq!(kth_gap(&sorted, 0, 2), 1.0);
        assert_eq!(kth_gap(&sorted, 4, 1), 2.0);
    }

    #[test]
    fn scores_are_the_same_bits_on_one_thread_and_many() {
        use rand::SeedableRng;
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let columns: Vec<Vec<f64>> = (0..6)
            .map(|_| (0..300).map(|_| f64::from(rng.gen_range(0..12_u32))).collect())
            .collect();
        let y: Vec<f64> = columns[0].iter().zip(&columns[1]).map(|(a, b)| a * 2.0 + b).collect();
        let views: Vec<&[f64]> = columns.iter().map(Vec::as_slice).collect();
        let discrete = [false, true, false, false, true, false];
        let on = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                let mut rng = ChaCha20Rng::seed_from_u64(9);
                scores(&views, &discrete, &Target::Values(&y), 3, &mut rng)
            })
        };
        let bits = |v: Vec<f64>| v.into_iter().map(f64::to_bits).collect::<Vec<_>>();
        let one = bits(on(1));
        assert_eq!(one, bits(on(4)));
        assert_eq!(one, bits(on(1)));
    }

    #[test]
    fn a_copy_of_the_target_carries_more_information_than_noise() {
        use rand::SeedableRng;
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let y: Vec<f64> = (0..500).map(|_| rng.r#gen::<f64>()).collect();
        let noise: Vec<f64> = (0..500).map(|_| rng.r#gen::<f64>()).collect();
        let s = scores(&[&y, &noise], &[false, false], &Target::Values(&y), 3, &mut rng);
        assert!(s[0] > 2.0 && s[1] < 0.05, "{s:?}");
        let classes: Vec<u32> = y.iter().map(|v| u32::from(*v > 0.5)).collect();
        let s = scores(&[&y, &noise], &[false, false], &Target::Classes(&classes), 3, &mut rng);
        assert!((s[0] - std::f64::consts::LN_2).abs() < 0.05 && s[1] < 0.05, "{s:?}");
    }
}
