//! Lookup tables for text from data files: a fast hasher seeded per process (so crafted values cannot
//! collide), category counts and lookups once per category. Their order never reaches an output.

use std::collections::{BTreeMap, HashMap};

use super::Texts;

/// A fast hasher for in-memory lookup tables (interning, pointer memos). Which order such a table
/// iterates in never reaches an output: they are only probed, or drained into ordered maps.
///
/// Its keys include text straight from a data file, so it must not let crafted values collide: it starts
/// from a per-process random seed and mixes every word in fully (murmur3's 64-bit finaliser, which
/// spreads each input bit over the whole word), so which values share a bucket depends on the secret
/// seed. (Unkeyed multiply-and-rotate hashing let 400,000 cells that differ only in their last bytes,
/// 3.6 MB of CSV, take 195 s to intern instead of 0.35 s.)
#[derive(Clone, Copy)]
pub struct FastHasher(u64);

impl std::hash::Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = mix64(self.0 ^ v);
    }

    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }
}

/// murmur3's `fmix64`: a bijection of `u64` in which every input bit changes every output bit with
/// probability about one half.
fn mix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

/// Builds [`FastHasher`]s from the process's random seed.
#[derive(Clone, Copy)]
pub struct FastState(u64);

impl Default for FastState {
    fn default() -> Self {
        static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
        // std's `RandomState` is keyed from the operating system's randomness; its hash of a constant is
        // a random word. (It decides only where values sit in a lookup table, never an output.)
        FastState(*SEED.get_or_init(|| {
            std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), "mlpipe")
        }))
    }
}

impl std::hash::BuildHasher for FastState {
    type Hasher = FastHasher;

    fn build_hasher(&self) -> FastHasher {
        FastHasher(self.0)
    }
}

pub type FastMap<K, V> = HashMap<K, V, FastState>;

/// Counts of each present text value, ordered by text.
pub fn category_counts(values: &Texts) -> BTreeMap<&str, usize> {
    values.counts()
}

/// A table's entry for each category of a text column, by code: looked up once per distinct value,
/// not once per row.
pub fn lookup_categories<'t, T>(table: &'t BTreeMap<&'t str, T>, values: &Texts) -> Vec<Option<&'t T>> {
    values.categories().iter().map(|c| table.get(&**c)).collect()
}

#[cfg(test)]
mod tests {
    use crate::frame::read_csv;
    use crate::frame::tests::opts;

    #[test]
    fn text_cells_crafted_to_collide_in_the_interning_table_are_read_in_linear_time() {
        // 400,000 distinct 8-byte cells that differ only in their last bytes: with the unkeyed hasher they
        // all fell into one bucket run and took 195 s to read (0.35 s for as many ordinary cells).
        let mut csv = String::from("c\n");
        let digits = (0x30u8..0x7b).map(char::from).collect::<Vec<_>>();
        'fill: for a in &digits {
            for b in &digits {
                for c in &digits {
                    for d in &digits[..5] {
                        csv.extend(['a', 'b', 'c', 'd', *a, *b, *c, *d, '\n']);
                        if csv.len() >= 9 * 400_000 {
                            break 'fill;
                        }
                    }
                }
            }
        }
        #[allow(clippy::disallowed_methods)]
        let started = std::time::Instant::now();
        let f = read_csv(csv.as_bytes(), &opts(&[]), "flood.csv").unwrap();
        let elapsed = started.elapsed();
        assert_eq!(f.n_rows(), 400_000);
        assert!(elapsed.as_secs_f64() < 10.0, "reading took {elapsed:?}");
    }
}
