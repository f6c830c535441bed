//! Centred cross-products for least squares, computed on all cores with a result that does not depend
//! on the number of threads or on the CPU's vector extensions.
//!
//! Rows are cut into fixed blocks ([`BLOCK`] rows); each block's partial sums are computed with a fixed
//! accumulation order (four interleaved accumulators, combined as `(a0 + a1) + (a2 + a3)`), and block
//! results are added in block order. Rust never contracts `a * b + c` into an FMA on its own, and no
//! kernel is chosen at run time, so every `x86_64` machine computes the same bits.

use rayon::prelude::*;

use crate::frame::{Numbers, indicator_value};

/// Rows per block: the unit of work and of summation order.
pub const BLOCK: usize = 4096;

/// Dot product with a fixed summation order.
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let chunks = a.len() / 4;
    for k in 0..chunks {
        let i = 4 * k;
        acc[0] += a[i] * b[i];
        acc[1] += a[i + 1] * b[i + 1];
        acc[2] += a[i + 2] * b[i + 2];
        acc[3] += a[i + 3] * b[i + 3];
    }
    let mut tail = 0.0;
    for i in 4 * chunks..a.len() {
        tail += a[i] * b[i];
    }
    ((acc[0] + acc[1]) + (acc[2] + acc[3])) + tail
}

/// A design column as the kernels read it: a slice of numbers, or a frame's column, whose indicator
/// bits are read a block at a time instead of being widened whole (0/1 as exactly 0.0/1.0, so the
/// results are the same bits either way).
#[derive(Clone, Copy)]
pub enum Col<'a> {
    Slice(&'a [f64]),
    Column(&'a Numbers),
}

impl<'a> Col<'a> {
    pub fn len(self) -> usize {
        match self {
            Col::Slice(s) => s.len(),
            Col::Column(c) => c.len(),
        }
    }

    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    /// The values; an indicator column is widened (once).
    pub fn values(self) -> &'a [f64] {
        match self {
            Col::Slice(s) => s,
            Col::Column(c) => c.values(),
        }
    }

    /// The bits of an indicator column; `None` for other columns.
    pub fn bits(self) -> Option<&'a polars_arrow::bitmap::Bitmap> {
        match self {
            Col::Slice(_) => None,
            Col::Column(c) => c.bits(),
        }
    }

    /// `f(value)` for rows `start..end`, in order.
    #[inline]
    pub fn map_rows<T>(self, start: usize, end: usize, f: impl FnMut(f64) -> T) -> Vec<T> {
        match self.bits() {
            Some(bits) => (start..end).map(|r| indicator_value(bits.get_bit(r))).map(f).collect(),
            None => self.values()[start..end].iter().copied().map(f).collect(),
        }
    }

    /// The sum of the values in row order.
    fn sum(self) -> f64 {
        match self.bits() {
            // A sum of zeros and ones is exact in any order (below 2^53 rows).
            Some(bits) => (bits.len() - bits.unset_bits()) as f64,
            None => self.values().iter().sum::<f64>(),
        }
    }

    /// The first missing row (NaN), looked for only when the column says it has one.
    pub fn first_missing(self) -> Option<usize> {
        match self {
            Col::Column(c) => c.first_missing(),
            Col::Slice(s) => s.iter().position(|x| x.is_nan()),
        }
    }
}

/// The centred values of rows `start..end` of every column, one contiguous slice per column.
fn centred_block(columns: &[Col<'_>], means: &[f64], start: usize, end: usize) -> Vec<Vec<f64>> {
    columns
        .iter()
        .zip(means)
        .map(|(col, m)| col.map_rows(start, end, |v| v - m))
        .collect()
}

fn blocks(n: usize) -> Vec<(usize, usize)> {
    (0..n.div_ceil(BLOCK))
        .map(|b| (b * BLOCK, ((b + 1) * BLOCK).min(n)))
        .collect()
}

/// `XcᵀXc` (row-major p × p) and `Xcᵀyc` for X centred by `means` and y centred by `y_mean`.
pub fn normal_equations(columns: &[Col<'_>], means: &[f64], y: &[f64], y_mean: f64) -> (Vec<f64>, Vec<f64>) {
    let p = columns.len();
    let partials: Vec<(Vec<f64>, Vec<f64>)> = blocks(y.len())
        .into_par_iter()
        .map(|(start, end)| {
            let block = centred_block(columns, means, start, end);
            let yc: Vec<f64> = y[start..end].iter().map(|v| v - y_mean).collect();
            let mut a = vec![0.0; p * p];
            for i in 0..p {
                for j in 0..=i {
                    a[i * p + j] = dot(&block[i], &block[j]);
                }
            }
            let b = block.iter().map(|col| dot(col, &yc)).collect();
            (a, b)
        })
        .collect();
    let mut a = vec![0.0; p * p];
    let mut b = vec![0.0; p];
    for (pa, pb) in &partials {
        for (x, v) in a.iter_mut().zip(pa) {
            *x += v;
        }
        for (x, v) in b.iter_mut().zip(pb) {
            *x += v;
        }
    }
    for i in 0..p {
        for j in 0..i {
            a[j * p + i] = a[i * p + j];
        }
    }
    (a, b)
}

/// `Xcᵀ(yc − Xc·w)`: the gradient direction used to refine a solution.
pub fn residual_correlation(columns: &[Col<'_>], means: &[f64], y: &[f64], y_mean: f64, w: &[f64]) -> Vec<f64> {
    let p = columns.len();
    let partials: Vec<Vec<f64>> = blocks(y.len())
        .into_par_iter()
        .map(|(start, end)| {
            let block = centred_block(columns, means, start, end);
            let mut resid: Vec<f64> = y[start..end].iter().map(|v| v - y_mean).collect();
            for (col, wj) in block.iter().zip(w) {
                for (r, x) in resid.iter_mut().zip(col) {
                    *r -= wj * x;
                }
            }
            block.iter().map(|col| dot(col, &resid)).collect()
        })
        .collect();
    let mut g = vec![0.0; p];
    for part in &partials {
        for (x, v) in g.iter_mut().zip(part) {
            *x += v;
        }
    }
    g
}

/// Column means, each summed in row order.
pub fn means(columns: &[Col<'_>]) -> Vec<f64> {
    columns.par_iter().map(|c| c.sum() / c.len() as f64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::many_single_char_names)]
    fn normal_equations_match_a_direct_computation() {
        let n = 3 * BLOCK + 17;
        let x1: Vec<f64> = (0..n).map(|i| (i % 7) as f64).collect();
        let x2: Vec<f64> = (0..n).map(|i| ((i * 31) % 11) as f64 - 5.0).collect();
        let y: Vec<f64> = (0..n).map(|i| (i % 5) as f64).collect();
        let cols = [Col::Slice(&x1), Col::Slice(&x2)];
        let m = means(&cols);
        let ym = y.iter().sum::<f64>() / n as f64;
        let (a, b) = normal_equations(&cols, &m, &y, ym);
        let direct =
            |u: &[f64], mu: f64, v: &[f64], mv: f64| u.iter().zip(v).map(|(p, q)| (p - mu) * (q - mv)).sum::<f64>();
        for (got, want) in [
            (a[0], direct(&x1, m[0], &x1, m[0])),
            (a[1], direct(&x1, m[0], &x2, m[1])),
            (a[2], direct(&x2, m[1], &x1, m[0])),
            (a[3], direct(&x2, m[1], &x2, m[1])),
            (b[0], direct(&x1, m[0], &y, ym)),
            (b[1], direct(&x2, m[1], &y, ym)),
        ] {
            assert!((got - want).abs() <= 1e-9 * want.abs().max(1.0), "{got} vs {want}");
        }
    }

    #[test]
    fn indicator_columns_give_the_same_bits_as_their_widened_values() {
        let n = 3 * BLOCK + 101;
        let bits: Vec<bool> = (0..n).map(|i| (i * 7919) % 13 < 4).collect();
        let wide: Vec<f64> = bits.iter().map(|&b| f64::from(u8::from(b))).collect();
        let indicator = Numbers::indicator(bits.iter().copied().collect());
        let x: Vec<f64> = (0..n).map(|i| ((i * 31) % 17) as f64 / 3.0).collect();
        let y: Vec<f64> = (0..n).map(|i| ((i * 104_729) % 997) as f64).collect();
        let as_bits = [Col::Column(&indicator), Col::Slice(&x)];
        let as_numbers = [Col::Slice(&wide), Col::Slice(&x)];
        let (m1, m2) = (means(&as_bits), means(&as_numbers));
        let bits_of = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits_of(&m1), bits_of(&m2));
        let (a1, b1) = normal_equations(&as_bits, &m1, &y, 2.5);
        let (a2, b2) = normal_equations(&as_numbers, &m2, &y, 2.5);
        assert_eq!((bits_of(&a1), bits_of(&b1)), (bits_of(&a2), bits_of(&b2)));
        let w = [0.75, -1.5];
        assert_eq!(
            bits_of(&residual_correlation(&as_bits, &m1, &y, 2.5, &w)),
            bits_of(&residual_correlation(&as_numbers, &m2, &y, 2.5, &w))
        );
        assert!(
            indicator.bits().is_some(),
            "the kernels read the bits without widening the column"
        );
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        let n = 5 * BLOCK + 3;
        let x: Vec<f64> = (0..n).map(|i| ((i * 7919) % 1000) as f64 / 7.0).collect();
        let y: Vec<f64> = (0..n).map(|i| ((i * 104_729) % 997) as f64).collect();
        let cols = [Col::Slice(&x), Col::Slice(&y)];
        let run = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| {
                    let m = means(&cols);
                    normal_equations(&cols, &m, &y, 3.0)
                })
        };
        let (one, many) = (run(1), run(4));
        assert_eq!(
            one.0.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            many.0.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
        assert_eq!(
            one.1.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            many.1.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
    }
}
