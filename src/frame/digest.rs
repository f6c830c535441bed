//! The frame's canonical encoding and digest (docs/hashing.md): a pure function of the values, the
//! same on any thread count; golden digests in tests/golden pin it.

use std::borrow::Cow;

use rayon::prelude::*;
use zerocopy::IntoBytes;

use super::{ColumnData, Frame, Numbers, Texts};
use crate::digest::{Id, KeyBuilder, context};

impl Frame {
    /// Canonical digest of the values (see `docs/hashing.md`): column count, then per column its name
    /// and its column digest. Columns not digested yet are digested a few at a time on all cores; the
    /// others carry the digest they were made with.
    pub fn digest(&self) -> Id {
        for group in self.columns.chunks(DIGEST_GROUP) {
            group.par_iter().for_each(|c| {
                c.data.digest();
            });
        }
        let mut key = KeyBuilder::new(context::DATA_DIGEST).u64(self.columns.len() as u64);
        for col in &self.columns {
            key = key.str(&col.name).id(&col.data.digest());
        }
        key.finish()
    }
}

impl ColumnData {
    /// The column's digest (docs/hashing.md): its type, row count and values; not its name. Computed
    /// once for the values it belongs to.
    pub fn digest(&self) -> Id {
        let cache = match self {
            ColumnData::Numeric(v) => v.digest_cache(),
            ColumnData::Categorical(v) => v.digest_cache(),
        };
        *cache.get_or_init(|| match self {
            ColumnData::Numeric(v) => {
                let key = KeyBuilder::new(context::COLUMN_DIGEST).u64(0).u64(self.len() as u64);
                match v.bits() {
                    // The same bytes as the widened column's, written from the bits a piece at a time.
                    Some(bits) => key
                        .bytes_in_pieces(8 * bits.len() as u64, |feed| {
                            const PIECE: usize = 1 << 13;
                            let mut buf = Vec::with_capacity(8 * PIECE);
                            for bit in bits {
                                buf.extend_from_slice(&super::column::indicator_value(bit).to_bits().to_le_bytes());
                                if buf.len() >= 8 * PIECE {
                                    feed(&buf);
                                    buf.clear();
                                }
                            }
                            feed(&buf);
                        })
                        .finish(),
                    None => key.bytes(&numeric_encoding(v)).finish(),
                }
            }
            ColumnData::Categorical(v) => text_digest(v),
        })
    }
}

/// A text column's digest (docs/hashing.md): the categories some row holds, in byte order, then each
/// row's place among them as a u32 (0xFFFFFFFF when missing) — four bytes a row, fed to the hasher in
/// pieces. Categories no row holds (left by a row selection) are not part of it.
fn text_digest(v: &Texts) -> Id {
    let categories = v.categories();
    let mut used = vec![false; categories.len()];
    for c in v.codes().flatten() {
        used[c as usize] = true;
    }
    let mut place = vec![MISSING_CODE; categories.len()];
    let mut key = KeyBuilder::new(context::COLUMN_DIGEST).u64(1).u64(v.len() as u64);
    let held: Vec<&str> = categories
        .iter()
        .zip(&used)
        .filter(|(_, used)| **used)
        .map(|(c, _)| &**c)
        .collect();
    key = key.u64(held.len() as u64);
    for c in held {
        key = key.str(c);
    }
    for (next, (p, _)) in (0u32..).zip(place.iter_mut().zip(&used).filter(|(_, used)| **used)) {
        *p = next;
    }
    key.bytes_in_pieces(4 * v.len() as u64, |feed| {
        const PIECE: usize = 1 << 16;
        let mut buf = Vec::with_capacity(PIECE + 4);
        for c in v.codes() {
            let code = c.map_or(MISSING_CODE, |c| place[c as usize]);
            buf.extend_from_slice(&code.to_le_bytes());
            if buf.len() >= PIECE {
                feed(&buf);
                buf.clear();
            }
        }
        feed(&buf);
    })
    .finish()
}

/// A missing text value's place in a text column's digest.
const MISSING_CODE: u32 = u32::MAX;

impl ColumnData {
    /// Whether the column's digest is already known (carried with its values).
    pub fn digest_is_known(&self) -> bool {
        match self {
            ColumnData::Numeric(v) => v.digest_cache().get().is_some(),
            ColumnData::Categorical(v) => v.digest_cache().get().is_some(),
        }
    }
}

/// The one NaN a missing number is digested as.
const CANONICAL_NAN: u64 = 0x7ff8_0000_0000_0000;

/// Columns digested at once (bounds the memory their encodings take).
const DIGEST_GROUP: usize = 8;

/// A numeric column's value encoding for its digest (see docs/hashing.md): a column whose memory
/// already is its encoding (little-endian, every NaN the canonical one) is hashed in place, borrowed.
fn numeric_encoding(v: &Numbers) -> Cow<'_, [u8]> {
    let canonical = |x: &f64| !x.is_nan() || x.to_bits() == CANONICAL_NAN;
    if cfg!(target_endian = "little") && v.iter().all(canonical) {
        return Cow::Borrowed(v.values().as_bytes());
    }
    let mut buf = Vec::with_capacity(v.len() * 8);
    for x in v {
        let bits = if x.is_nan() { CANONICAL_NAN } else { x.to_bits() };
        buf.extend_from_slice(&bits.to_le_bytes());
    }
    Cow::Owned(buf)
}

#[cfg(test)]
mod tests {
    use crate::frame::read_csv;
    use crate::frame::tests::opts;

    #[test]
    fn digest_depends_on_values_not_on_row_labels() {
        let a = read_csv(b"a,b\n1,x\n2,y\n", &opts(&[]), "a.csv").unwrap();
        let mut b = a.clone();
        b.lines = vec![10, 11];
        b.source = "b.csv".into();
        assert_eq!(a.digest(), b.digest());
        let c = read_csv(b"a,b\n1,x\n2,z\n", &opts(&[]), "a.csv").unwrap();
        assert_ne!(a.digest(), c.digest());
    }

    #[test]
    fn columns_handed_on_unchanged_keep_their_digest_and_changed_ones_are_digested_again() {
        let f = read_csv(b"a,b,c\n1,x,p\n2,y,q\n3,,p\n", &opts(&[]), "a.csv").unwrap();
        let before = f.digest();
        assert!(f.columns.iter().all(|c| c.data.digest_is_known()));
        let mut g = f.clone();
        g.update_numeric("a", |v| {
            v[0] = 10.0;
            Ok(())
        })
        .unwrap();
        assert!(!g.columns[0].data.digest_is_known());
        assert!(g.columns[1].data.digest_is_known() && g.columns[2].data.digest_is_known());
        assert_ne!(g.digest(), before);
        // Taking rows makes new columns: digested from their values, equal to a fresh read's.
        let rows = f.take(&[2, 0]);
        assert!(!rows.columns[1].data.digest_is_known());
        let fresh = read_csv(b"a,b,c\n3,,p\n1,x,p\n", &opts(&[]), "b.csv").unwrap();
        assert_eq!(rows.digest(), fresh.digest());
    }

    #[test]
    fn an_indicator_column_digests_as_its_widened_values_and_stays_bits() {
        use crate::frame::{ColumnData, Numbers};
        // Long enough for several pieces of the piecewise encoding.
        let bits: Vec<bool> = (0..20_000).map(|i| i % 3 == 0 || i % 7 == 0).collect();
        let wide: Vec<f64> = bits.iter().map(|&b| f64::from(u8::from(b))).collect();
        let indicator = ColumnData::Numeric(Numbers::indicator(bits.iter().copied().collect()));
        let dense = ColumnData::Numeric(Numbers::from_vec(wide));
        assert_eq!(indicator.digest(), dense.digest());
        let ColumnData::Numeric(n) = &indicator else {
            unreachable!()
        };
        assert!(n.bits().is_some(), "digesting must not widen the column");
        assert_eq!(n.len(), 20_000);
        assert_eq!(n.missing_count(), 0);
        // Rows taken or split off stay indicators, with the values of the dense column.
        let ColumnData::Numeric(d) = &dense else { unreachable!() };
        let rows = [19_999, 3, 0, 7, 5];
        let (taken, taken_dense) = (indicator.take(&rows), dense.take(&rows));
        assert_eq!(taken.digest(), taken_dense.digest());
        let ColumnData::Numeric(t) = &taken else { unreachable!() };
        assert!(t.bits().is_some());
        assert_eq!(t, &Numbers::from_vec(vec![1.0, 1.0, 1.0, 1.0, 0.0]));
        let (mut head, mut head_dense) = (n.clone(), d.clone());
        let (tail, tail_dense) = (
            crate::frame::column::SplitOff::split_off_rows(&mut head, 12_345),
            crate::frame::column::SplitOff::split_off_rows(&mut head_dense, 12_345),
        );
        assert!(head.bits().is_some() && tail.bits().is_some());
        assert_eq!((&head, &tail), (&head_dense, &tail_dense));
        // Widened on demand, to the same values.
        assert_eq!(n.values(), d.values());
    }

    #[test]
    fn golden_frame_digest() {
        let f = read_csv(b"a,b\n1.5,x\nNA,NA\n", &opts(&["NA"]), "g.csv").unwrap();
        assert_eq!(f.digest().hex(), crate::digest::tests::golden("frame"));
    }

    #[test]
    fn missing_and_empty_string_digest_differently() {
        let a = read_csv(b"a,b\n1,\"\"\n", &opts(&[]), "a.csv").unwrap();
        let b = read_csv(b"a,b\n1,NA\n", &opts(&[]), "a.csv").unwrap();
        // Both are missing: empty is always missing, and NA is not a marker here, so b holds "NA".
        assert_ne!(a.digest(), b.digest());
    }
}
