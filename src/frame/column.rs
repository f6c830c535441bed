//! A column's values in polars' Arrow memory (`polars-arrow`): numbers as a `Float64` array, text as
//! dictionary codes (`UInt32`) into a sorted category list this module owns. A missing value is a null
//! in the validity bitmap; a missing number's slot also holds NaN, so the fixed-order kernels read
//! the contiguous values as they are (`NaN` = missing) without consulting the bitmap.
//!
//! Cloning either kind shares its buffers (a reference count), so a stage hands on the columns it did
//! not change without copying them.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use polars_arrow::array::PrimitiveArray;
use polars_arrow::bitmap::Bitmap;
use rayon::prelude::*;

use super::FastMap;
use crate::digest::Id;

/// Rows gathered at once per core when selecting rows of a column (keeps a fixed output order).
const TAKE_BLOCK: usize = 1 << 16;

/// A column's digest, computed at most once for the values it belongs to. Every change to the values
/// makes a new column, with an empty cache: a stage digests only the columns it produced, and the
/// columns it hands on unchanged carry their digest with them.
pub(super) type DigestCache = Arc<OnceLock<Id>>;

/// A numeric column: one `Float64` array; a missing value is null and its slot holds NaN. A column of
/// 0/1 indicators (one-hot's dummies) is held as one bit a row instead, and widened to `Float64` only
/// when something reads it as numbers (once, then shared by its clones): the estimators and digests that
/// know indicators read the bits directly.
#[derive(Clone)]
pub struct Numbers(Repr, DigestCache);

#[derive(Clone)]
enum Repr {
    Dense(PrimitiveArray<f64>),
    /// Set bit = 1.0, unset = 0.0; never missing.
    Indicator(Bitmap, Arc<OnceLock<PrimitiveArray<f64>>>),
}

impl Numbers {
    /// The values as they are (NaN = missing), the validity bitmap set from them.
    pub fn from_vec(values: Vec<f64>) -> Numbers {
        let missing = values.iter().filter(|x| x.is_nan()).count();
        let validity = (missing > 0).then(|| values.iter().map(|x| !x.is_nan()).collect::<Bitmap>());
        Numbers(
            Repr::Dense(PrimitiveArray::from_vec(values).with_validity(validity)),
            DigestCache::default(),
        )
    }

    /// A 0/1 column, one bit a row (set = 1.0).
    pub fn indicator(bits: Bitmap) -> Numbers {
        Numbers(Repr::Indicator(bits, Arc::default()), DigestCache::default())
    }

    /// The bits of an indicator column; `None` for other columns.
    #[inline]
    pub fn bits(&self) -> Option<&Bitmap> {
        match &self.0 {
            Repr::Indicator(bits, _) => Some(bits),
            Repr::Dense(_) => None,
        }
    }

    /// Rows in the column (without widening an indicator).
    #[inline]
    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::Dense(a) => a.len(),
            Repr::Indicator(bits, _) => bits.len(),
        }
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Row `r`'s value (NaN = missing), without widening an indicator.
    #[inline]
    pub fn value(&self, r: usize) -> f64 {
        match &self.0 {
            Repr::Dense(a) => a.values()[r],
            Repr::Indicator(bits, _) => indicator_value(bits.get_bit(r)),
        }
    }

    /// The values, in row order; a missing value reads as NaN. An indicator column is widened here
    /// (once): readers that can take the bits ask [`Numbers::bits`] first.
    #[inline]
    pub fn values(&self) -> &[f64] {
        self.array().values().as_slice()
    }

    /// The first missing row, searched for only when the column has one.
    pub fn first_missing(&self) -> Option<usize> {
        (self.missing_count() > 0)
            .then(|| self.values().iter().position(|x| x.is_nan()))
            .flatten()
    }

    /// How many values are missing (counted once, when the column was made).
    pub fn missing_count(&self) -> usize {
        match &self.0 {
            Repr::Dense(a) => a.validity().map_or(0, Bitmap::unset_bits),
            Repr::Indicator(..) => 0,
        }
    }

    /// The values, to change: moved out when this column holds the only reference, copied otherwise.
    pub fn into_vec(self) -> Vec<f64> {
        match self.0 {
            Repr::Dense(a) => {
                let (_, values, _) = a.into_inner();
                values.to_vec()
            }
            Repr::Indicator(bits, _) => bits.iter().map(indicator_value).collect(),
        }
    }

    /// Changes the values in place (NaN = missing), moved out when unshared; the validity follows.
    pub fn update<T>(&mut self, change: impl FnOnce(&mut [f64]) -> T) -> T {
        let mut values = std::mem::replace(self, Numbers::from_vec(Vec::new())).into_vec();
        let out = change(&mut values);
        *self = Numbers::from_vec(values);
        out
    }

    pub(super) fn digest_cache(&self) -> &OnceLock<Id> {
        &self.1
    }

    /// The Arrow array (values and validity), for polars; an indicator column is widened (once).
    pub fn array(&self) -> &PrimitiveArray<f64> {
        match &self.0 {
            Repr::Dense(a) => a,
            Repr::Indicator(bits, wide) => {
                wide.get_or_init(|| PrimitiveArray::from_vec(bits.iter().map(indicator_value).collect()))
            }
        }
    }

    fn take(&self, rows: &[u32]) -> Numbers {
        if let Some(bits) = self.bits() {
            return Numbers::indicator(rows.iter().map(|&r| bits.get_bit(r as usize)).collect());
        }
        let v = self.values();
        Numbers::from_vec(gather(rows, |r| v[r]))
    }

    /// Rows `at..` as their own column (values moved when unshared), keeping `..at` here.
    fn split_off(&mut self, at: usize) -> Numbers {
        if let Some(bits) = self.bits() {
            let (head, tail) = (bits.clone().sliced(0, at), bits.clone().sliced(at, bits.len() - at));
            *self = Numbers::indicator(head);
            return Numbers::indicator(tail);
        }
        let mut head = std::mem::replace(self, Numbers::from_vec(Vec::new())).into_vec();
        let tail = head.split_off(at);
        *self = Numbers::from_vec(head);
        Numbers::from_vec(tail)
    }
}

/// An indicator bit as the number it stands for.
#[inline]
pub fn indicator_value(bit: bool) -> f64 {
    if bit { 1.0 } else { 0.0 }
}

impl std::ops::Deref for Numbers {
    type Target = [f64];
    #[inline]
    fn deref(&self) -> &[f64] {
        self.values()
    }
}

impl From<Vec<f64>> for Numbers {
    fn from(values: Vec<f64>) -> Numbers {
        Numbers::from_vec(values)
    }
}

impl FromIterator<f64> for Numbers {
    fn from_iter<I: IntoIterator<Item = f64>>(values: I) -> Numbers {
        Numbers::from_vec(values.into_iter().collect())
    }
}

impl<'a> IntoIterator for &'a Numbers {
    type Item = &'a f64;
    type IntoIter = std::slice::Iter<'a, f64>;
    fn into_iter(self) -> Self::IntoIter {
        self.values().iter()
    }
}

impl PartialEq for Numbers {
    /// Equal when every value has the same bits, or both are missing.
    fn eq(&self, other: &Numbers) -> bool {
        self.len() == other.len()
            && (0..self.len()).all(|r| {
                let (a, b) = (self.value(r), other.value(r));
                a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
            })
    }
}

impl std::fmt::Debug for Numbers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.values()).finish()
    }
}

/// A text column, dictionary-coded: each row a `UInt32` code into `categories` (sorted by their
/// UTF-8 bytes, each once), or null when missing. The category list depends only on the values
/// present, never on the order they were met in or on threads.
#[derive(Clone)]
pub struct Texts {
    codes: PrimitiveArray<u32>,
    categories: Arc<[Arc<str>]>,
    digest: DigestCache,
}

impl Texts {
    /// Codes the values: the sorted list of the distinct present ones, and each row's place in it.
    pub fn from_values<S: AsRef<str>>(values: impl IntoIterator<Item = Option<S>>) -> Texts {
        let mut first_seen: FastMap<Box<str>, u32> = FastMap::default();
        let mut met: Vec<Arc<str>> = Vec::new();
        let mut codes: Vec<Option<u32>> = Vec::new();
        for v in values {
            codes.push(v.map(|s| {
                let s = s.as_ref();
                if let Some(&code) = first_seen.get(s) {
                    return code;
                }
                let code = u32::try_from(met.len()).unwrap_or(u32::MAX);
                first_seen.insert(s.into(), code);
                met.push(Arc::from(s));
                code
            }));
        }
        Texts::from_met(codes, &met)
    }

    /// A column from codes into `met`, the distinct values in the order they were met: the values are
    /// sorted and the codes renumbered to match.
    pub fn from_met(mut codes: Vec<Option<u32>>, met: &[Arc<str>]) -> Texts {
        let mut order: Vec<u32> = (0..u32::try_from(met.len()).unwrap_or(u32::MAX)).collect();
        order.sort_unstable_by(|&a, &b| met[a as usize].cmp(&met[b as usize]));
        let mut remap = vec![0u32; met.len()];
        for (sorted, &code) in order.iter().enumerate() {
            remap[code as usize] = u32::try_from(sorted).unwrap_or(u32::MAX);
        }
        for c in codes.iter_mut().flatten() {
            *c = remap[*c as usize];
        }
        let categories: Arc<[Arc<str>]> = order.iter().map(|&c| Arc::clone(&met[c as usize])).collect();
        Texts::from_codes(codes, categories)
    }

    /// A column of codes into `categories` (sorted, distinct; codes within range).
    fn from_codes(codes: Vec<Option<u32>>, categories: Arc<[Arc<str>]>) -> Texts {
        let missing = codes.iter().filter(|c| c.is_none()).count();
        let validity = (missing > 0).then(|| codes.iter().map(Option::is_some).collect::<Bitmap>());
        let values: Vec<u32> = codes.into_iter().map(|c| c.unwrap_or(0)).collect();
        Texts {
            codes: PrimitiveArray::from_vec(values).with_validity(validity),
            categories,
            digest: DigestCache::default(),
        }
    }

    /// Joins columns end to end (one dictionary for all of them).
    pub fn concat(parts: &[Texts]) -> Texts {
        let mut all: Vec<Arc<str>> = parts.iter().flat_map(|p| p.categories.iter().cloned()).collect();
        all.sort_unstable();
        all.dedup();
        let categories: Arc<[Arc<str>]> = all.into();
        let mut codes = Vec::with_capacity(parts.iter().map(Texts::len).sum());
        for p in parts {
            let remap: Vec<u32> = p
                .categories
                .iter()
                .map(|c| u32::try_from(categories.binary_search(c).unwrap_or(0)).unwrap_or(u32::MAX))
                .collect();
            codes.extend(p.codes().map(|c| c.map(|c| remap[c as usize])));
        }
        Texts::from_codes(codes, categories)
    }

    pub fn len(&self) -> usize {
        self.codes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Row `r`'s text, `None` when missing.
    #[inline]
    pub fn get(&self, r: usize) -> Option<&str> {
        self.code(r).map(|c| &*self.categories[c as usize])
    }

    /// Row `r`'s code into [`Texts::categories`], `None` when missing.
    #[inline]
    pub fn code(&self, r: usize) -> Option<u32> {
        if self.is_missing(r) {
            None
        } else {
            Some(self.codes.values()[r])
        }
    }

    #[inline]
    pub fn is_missing(&self, r: usize) -> bool {
        self.codes.validity().is_some_and(|v| !v.get_bit(r))
    }

    /// The rows' texts in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Option<&str>> + '_ {
        self.codes().map(|c| c.map(|c| &*self.categories[c as usize]))
    }

    /// The rows' codes in order.
    pub fn codes(&self) -> impl ExactSizeIterator<Item = Option<u32>> + '_ {
        self.codes.iter().map(Option::<&u32>::copied)
    }

    /// The distinct present values, sorted; a code is a place in this list. (A category may have no
    /// row left after a row selection.)
    pub fn categories(&self) -> &[Arc<str>] {
        &self.categories
    }

    pub fn missing_count(&self) -> usize {
        self.codes.validity().map_or(0, Bitmap::unset_bits)
    }

    pub(super) fn digest_cache(&self) -> &OnceLock<Id> {
        &self.digest
    }

    /// How many rows hold each present value, ordered by value (values without rows left out).
    pub fn counts(&self) -> BTreeMap<&str, usize> {
        let mut per_code = vec![0usize; self.categories.len()];
        for c in self.codes().flatten() {
            per_code[c as usize] += 1;
        }
        self.categories
            .iter()
            .zip(per_code)
            .filter(|(_, n)| *n > 0)
            .map(|(s, n)| (&**s, n))
            .collect()
    }

    /// One value per category (in category order) applied to every row: `None` rows stay missing.
    /// The work per distinct value is done once, not once per row.
    pub fn map_categories<T: Copy>(&self, per_category: &[T], missing: T) -> Vec<T> {
        self.codes()
            .map(|c| c.map_or(missing, |c| per_category[c as usize]))
            .collect()
    }

    /// Replaces the text of whole categories (and fills missing rows with `fill`, when given): the new
    /// column's dictionary is sorted again.
    #[must_use]
    pub fn recode(&self, rename: impl Fn(&str) -> Arc<str>, fill: Option<&str>) -> Texts {
        let renamed: Vec<Arc<str>> = self.categories.iter().map(|c| rename(c)).collect();
        let mut all: Vec<Arc<str>> = renamed.clone();
        if let Some(f) = fill {
            all.push(Arc::from(f));
        }
        all.sort_unstable();
        all.dedup();
        let categories: Arc<[Arc<str>]> = all.into();
        let place = |s: &Arc<str>| u32::try_from(categories.binary_search(s).unwrap_or(0)).unwrap_or(u32::MAX);
        let remap: Vec<u32> = renamed.iter().map(place).collect();
        let fill_code = fill.map(|f| place(&Arc::from(f)));
        let codes = self
            .codes()
            .map(|c| c.map(|c| remap[c as usize]).or(fill_code))
            .collect();
        Texts::from_codes(codes, categories)
    }

    fn take(&self, rows: &[u32]) -> Texts {
        Texts::from_codes(gather(rows, |r| self.code(r)), Arc::clone(&self.categories))
    }

    fn split_off(&mut self, at: usize) -> Texts {
        let head: Vec<Option<u32>> = self.codes().take(at).collect();
        let tail: Vec<Option<u32>> = self.codes().skip(at).collect();
        let categories = Arc::clone(&self.categories);
        *self = Texts::from_codes(head, Arc::clone(&categories));
        Texts::from_codes(tail, categories)
    }
}

impl PartialEq for Texts {
    /// Equal when every row holds the same text (dictionaries may differ).
    fn eq(&self, other: &Texts) -> bool {
        self.len() == other.len() && self.iter().zip(other.iter()).all(|(a, b)| a == b)
    }
}

impl std::fmt::Debug for Texts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<S: AsRef<str>> FromIterator<Option<S>> for Texts {
    fn from_iter<I: IntoIterator<Item = Option<S>>>(values: I) -> Texts {
        Texts::from_values(values)
    }
}

/// `value(row)` for each of `rows`, in order, gathered in fixed blocks on all cores.
fn gather<T: Send>(rows: &[u32], value: impl Fn(usize) -> T + Sync) -> Vec<T> {
    if rows.len() < TAKE_BLOCK {
        return rows.iter().map(|&r| value(r as usize)).collect();
    }
    let blocks: Vec<Vec<T>> = rows
        .par_chunks(TAKE_BLOCK)
        .map(|block| block.iter().map(|&r| value(r as usize)).collect())
        .collect();
    blocks.into_iter().flatten().collect()
}

pub(super) trait SplitOff {
    fn split_off_rows(&mut self, at: usize) -> Self;
    fn take_rows(&self, rows: &[u32]) -> Self;
}

impl SplitOff for Numbers {
    fn split_off_rows(&mut self, at: usize) -> Numbers {
        self.split_off(at)
    }
    fn take_rows(&self, rows: &[u32]) -> Numbers {
        self.take(rows)
    }
}

impl SplitOff for Texts {
    fn split_off_rows(&mut self, at: usize) -> Texts {
        self.split_off(at)
    }
    fn take_rows(&self, rows: &[u32]) -> Texts {
        self.take(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_codes_follow_sorted_values_not_the_order_met() {
        let a = Texts::from_values([Some("b"), None, Some("a"), Some("b")]);
        let b = Texts::from_values([Some("a"), Some("b")]);
        assert_eq!(a.categories(), b.categories());
        assert_eq!(a.codes().collect::<Vec<_>>(), [Some(1), None, Some(0), Some(1)]);
        assert_eq!(a.missing_count(), 1);
        assert_eq!(a.counts(), BTreeMap::from([("a", 1), ("b", 2)]));
        let joined = Texts::concat(&[b, Texts::from_values([Some("0"), None])]);
        assert_eq!(
            joined.iter().collect::<Vec<_>>(),
            [Some("a"), Some("b"), Some("0"), None]
        );
        assert_eq!(&*joined.categories()[0], "0");
    }

    #[test]
    fn a_missing_number_is_null_and_nan() {
        let n = Numbers::from_vec(vec![1.0, f64::NAN, 3.0]);
        assert_eq!(n.missing_count(), 1);
        let validity = n.array().validity().unwrap();
        assert!(!validity.get_bit(1) && validity.get_bit(0));
        assert!(n.values()[1].is_nan());
        let big: Vec<f64> = (0..(TAKE_BLOCK * 2 + 5)).map(|i| i as f64).collect();
        let rows: Vec<u32> = (0..u32::try_from(big.len()).unwrap()).rev().collect();
        let taken = Numbers::from_vec(big.clone()).take(&rows);
        assert!(taken.values().iter().rev().eq(big.iter()));
    }

    #[test]
    fn recoding_merges_categories_and_fills_missing() {
        let t = Texts::from_values([Some("x"), None, Some("y"), Some("z")]);
        let r = t.recode(|s| Arc::from(if s == "x" { "x" } else { "Rare" }), Some("Missing"));
        assert_eq!(
            r.iter().collect::<Vec<_>>(),
            [Some("x"), Some("Missing"), Some("Rare"), Some("Rare")]
        );
        assert_eq!(r.categories().len(), 3);
    }
}
