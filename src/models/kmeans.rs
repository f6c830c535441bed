//! k-means as scikit-learn's `KMeans` (Lloyd's algorithm): centres seeded by greedy k-means++ (or
//! `n_clusters` distinct random rows), then assign each row to its nearest centre and move each centre to
//! its rows' mean until the centres move less than `tol` × the mean feature variance (summed squared
//! shifts), or `max_iter` rounds. With `n_init` > 1 the run with the lowest inertia wins (the first of
//! equals). A row's cluster is its nearest centre, the first of equally near ones.
//!
//! Draws come from the train stage's ChaCha20 stream, not numpy's: seeds differ from scikit-learn's, the
//! iterations from a given start do not (`tests/peer.rs`).

use rand::Rng;
use rand_chacha::ChaCha20Rng;

/// Row-major points: `n × d`.
pub struct Points {
    pub data: Vec<f64>,
    pub d: usize,
}

impl Points {
    pub fn from_columns(columns: &[&[f64]]) -> Points {
        let d = columns.len();
        let n = columns.first().map_or(0, |c| c.len());
        let mut data = vec![0.0; n * d];
        for (j, c) in columns.iter().enumerate() {
            for (i, v) in c.iter().enumerate() {
                data[i * d + j] = *v;
            }
        }
        Points { data, d }
    }

    pub fn n(&self) -> usize {
        self.data.len().checked_div(self.d).unwrap_or(0)
    }

    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.d..(i + 1) * self.d]
    }
}

pub fn squared_distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// The nearest centre of `x` and its squared distance.
pub fn nearest(centres: &[Vec<f64>], x: &[f64]) -> (usize, f64) {
    let mut best = (0, f64::INFINITY);
    for (c, centre) in centres.iter().enumerate() {
        let d = squared_distance(centre, x);
        if d < best.1 {
            best = (c, d);
        }
    }
    best
}

#[derive(Debug, Clone, Copy)]
pub struct Params {
    pub n_clusters: usize,
    pub plus_plus: bool,
    pub n_init: u64,
    pub max_iter: u64,
    pub tol: f64,
}

/// The fitted centres and their inertia (summed squared distance of every row to its centre).
pub struct Fit {
    pub centres: Vec<Vec<f64>>,
    pub inertia: f64,
    pub iterations: u64,
}

/// k-means++ as scikit-learn seeds it: the first centre a uniform draw; each next one the best (lowest
/// resulting potential) of `2 + ⌊ln k⌋` candidates drawn in proportion to the squared distance to the
/// nearest centre so far.
fn plus_plus(points: &Points, k: usize, rng: &mut ChaCha20Rng) -> Vec<Vec<f64>> {
    let n = points.n();
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let trials = 2 + (k as f64).ln() as usize;
    let first = rng.gen_range(0..n);
    let mut centres = vec![points.row(first).to_vec()];
    let mut closest: Vec<f64> = (0..n).map(|i| squared_distance(points.row(i), &centres[0])).collect();
    let mut potential: f64 = closest.iter().sum();
    while centres.len() < k {
        let mut best: Option<(usize, f64, Vec<f64>)> = None;
        for _ in 0..trials {
            let target = rng.r#gen::<f64>() * potential;
            // The first row whose cumulative distance exceeds the draw (numpy's searchsorted, right).
            let mut cumulative = 0.0;
            let mut pick = n - 1;
            for (i, d) in closest.iter().enumerate() {
                cumulative += d;
                if cumulative > target {
                    pick = i;
                    break;
                }
            }
            let candidate: Vec<f64> = (0..n)
                .map(|i| closest[i].min(squared_distance(points.row(i), points.row(pick))))
                .collect();
            let total: f64 = candidate.iter().sum();
            if best.as_ref().is_none_or(|b| total < b.1) {
                best = Some((pick, total, candidate));
            }
        }
        let Some((pick, total, distances)) = best else { break };
        centres.push(points.row(pick).to_vec());
        closest = distances;
        potential = total;
    }
    centres
}

/// `k` distinct rows drawn uniformly (scikit-learn's `init="random"`).
fn random_rows(points: &Points, k: usize, rng: &mut ChaCha20Rng) -> Vec<Vec<f64>> {
    let n = points.n();
    let mut order: Vec<usize> = (0..n).collect();
    for i in 0..k {
        let j = rng.gen_range(i..n);
        order.swap(i, j);
    }
    order[..k].iter().map(|&i| points.row(i).to_vec()).collect()
}

/// Lloyd's iterations from `centres`.
pub fn lloyd(points: &Points, mut centres: Vec<Vec<f64>>, max_iter: u64, tol: f64) -> Fit {
    let n = points.n();
    let d = points.d;
    // scikit-learn's tolerance: relative to the mean variance of the features.
    let mut variance = 0.0;
    for j in 0..d {
        let mean = (0..n).map(|i| points.row(i)[j]).sum::<f64>() / n as f64;
        variance += (0..n).map(|i| (points.row(i)[j] - mean).powi(2)).sum::<f64>() / n as f64;
    }
    let threshold = variance / d as f64 * tol;
    let mut labels = vec![0usize; n];
    let mut iterations = 0;
    let mut strict = false;
    for iteration in 0..max_iter {
        iterations = iteration + 1;
        let previous = labels.clone();
        for (i, label) in labels.iter_mut().enumerate() {
            *label = nearest(&centres, points.row(i)).0;
        }
        let mut sums = vec![vec![0.0; d]; centres.len()];
        let mut counts = vec![0usize; centres.len()];
        for (i, &l) in labels.iter().enumerate() {
            counts[l] += 1;
            for (s, x) in sums[l].iter_mut().zip(points.row(i)) {
                *s += x;
            }
        }
        relocate_empty(points, &centres, &labels, &mut sums, &mut counts);
        let mut shift = 0.0;
        for (c, centre) in centres.iter_mut().enumerate() {
            if counts[c] == 0 {
                continue;
            }
            let new: Vec<f64> = sums[c].iter().map(|s| s / counts[c] as f64).collect();
            shift += squared_distance(centre, &new);
            *centre = new;
        }
        if iteration > 0 && labels == previous {
            strict = true;
            break;
        }
        if shift <= threshold {
            break;
        }
    }
    if !strict {
        for (i, label) in labels.iter_mut().enumerate() {
            *label = nearest(&centres, points.row(i)).0;
        }
    }
    let inertia = (0..n)
        .map(|i| squared_distance(points.row(i), &centres[labels[i]]))
        .sum();
    Fit {
        centres,
        inertia,
        iterations,
    }
}

/// An empty cluster takes the row farthest from its centre (the next farthest for the next empty
/// one), which leaves its old cluster, as scikit-learn's `_relocate_empty_clusters` does.
fn relocate_empty(
    points: &Points,
    centres: &[Vec<f64>],
    labels: &[usize],
    sums: &mut [Vec<f64>],
    counts: &mut [usize],
) {
    let empty: Vec<usize> = (0..centres.len()).filter(|c| counts[*c] == 0).collect();
    if empty.is_empty() {
        return;
    }
    let mut far: Vec<(f64, usize)> = (0..points.n())
        .map(|i| (squared_distance(points.row(i), &centres[labels[i]]), i))
        .collect();
    far.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    for (c, (_, i)) in empty.into_iter().zip(far) {
        let old = labels[i];
        if counts[old] <= 1 {
            continue;
        }
        for (j, x) in points.row(i).iter().enumerate() {
            sums[old][j] -= x;
            sums[c][j] = *x;
        }
        counts[old] -= 1;
        counts[c] = 1;
    }
}

/// Fits k-means: `n_init` seedings from `rng`, the lowest inertia kept.
pub fn fit(points: &Points, params: Params, rng: &mut ChaCha20Rng) -> Fit {
    let mut best: Option<Fit> = None;
    for _ in 0..params.n_init {
        let start = if params.plus_plus {
            plus_plus(points, params.n_clusters, rng)
        } else {
            random_rows(points, params.n_clusters, rng)
        };
        let fit = lloyd(points, start, params.max_iter, params.tol);
        if best.as_ref().is_none_or(|b| fit.inertia < b.inertia) {
            best = Some(fit);
        }
    }
    best.unwrap_or(Fit {
        centres: Vec::new(),
        inertia: f64::NAN,
        iterations: 0,
    })
}

/// Mean silhouette coefficient of a labelling (Euclidean distances), as scikit-learn's
/// `silhouette_score`: for each row, (b − a) / max(a, b) with a its mean distance to its own cluster's
/// other rows and b the least mean distance to another cluster; 0 for a row alone in its cluster.
pub fn silhouette(points: &Points, labels: &[usize], k: usize) -> Option<f64> {
    use rayon::prelude::*;
    let n = points.n();
    let mut sizes = vec![0usize; k];
    for &l in labels {
        sizes[l] += 1;
    }
    let present = sizes.iter().filter(|s| **s > 0).count();
    if present < 2 || present >= n {
        return None;
    }
    let per_row: Vec<f64> = (0..n)
        .into_par_iter()
        .map(|i| {
            let mut sums = vec![0.0; k];
            for j in 0..n {
                sums[labels[j]] += squared_distance(points.row(i), points.row(j)).sqrt();
            }
            let own = labels[i];
            if sizes[own] <= 1 {
                return 0.0;
            }
            let a = sums[own] / (sizes[own] - 1) as f64;
            let b = (0..k)
                .filter(|c| *c != own && sizes[*c] > 0)
                .map(|c| sums[c] / sizes[c] as f64)
                .fold(f64::INFINITY, f64::min);
            (b - a) / a.max(b)
        })
        .collect();
    Some(per_row.iter().sum::<f64>() / n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn two_blobs_are_found_whatever_the_seed() {
        let xs = [0.0, 0.1, 0.2, 10.0, 10.1, 10.2];
        let ys = [0.0, 0.2, 0.1, 5.0, 5.1, 5.2];
        let points = Points::from_columns(&[&xs, &ys]);
        for seed in 0..5u8 {
            let mut rng = ChaCha20Rng::from_seed([seed; 32]);
            let params = Params {
                n_clusters: 2,
                plus_plus: true,
                n_init: 1,
                max_iter: 300,
                tol: 1e-4,
            };
            let fit = fit(&points, params, &mut rng);
            let a = nearest(&fit.centres, &[0.1, 0.1]).0;
            let b = nearest(&fit.centres, &[10.1, 5.1]).0;
            assert_ne!(a, b);
            assert!(fit.inertia < 0.2, "{}", fit.inertia);
        }
        let labels = [0, 0, 0, 1, 1, 1];
        assert!(silhouette(&points, &labels, 2).unwrap() > 0.95);
    }
}
