//! The frame's canonical encoding and digest (docs/hashing.md): a pure function of the values, the
//! same on any thread count; golden digests in tests/golden pin it.

use std::borrow::Cow;

use rayon::prelude::*;
use zerocopy::IntoBytes;

use super::{Column, ColumnData, Frame};
use crate::digest::{Id, KeyBuilder, context};

impl Frame {
    /// Canonical digest of the values (see `docs/hashing.md`): column count; per column its name, type
    /// and rows; numeric values as IEEE-754 bits (every missing value as the one NaN 0x7ff8000000000000);
    /// text values as a presence byte, length and UTF-8 bytes.
    pub fn digest(&self) -> Id {
        let mut key = KeyBuilder::new(context::DATA_DIGEST).u64(self.columns.len() as u64);
        // Columns are encoded a few at a time on all cores, then hashed one after another in column
        // order: the digest is the same as a sequential encoding's.
        for group in self.columns.chunks(DIGEST_GROUP) {
            let encoded: Vec<(u64, Cow<'_, [u8]>)> = group.par_iter().map(encode_column).collect();
            for (col, (tag, bytes)) in group.iter().zip(encoded) {
                key = key.str(&col.name).u64(tag).u64(col.data.len() as u64).bytes(&bytes);
            }
        }
        key.finish()
    }
}

/// The one NaN a missing number is digested as.
const CANONICAL_NAN: u64 = 0x7ff8_0000_0000_0000;

/// Columns encoded at once while digesting (bounds the memory the encodings take).
const DIGEST_GROUP: usize = 8;

/// A column's type tag and value encoding for the frame digest (see docs/hashing.md). A numeric
/// column whose memory already is its encoding (little-endian, every NaN the canonical one) is
/// hashed in place, borrowed.
fn encode_column(col: &Column) -> (u64, Cow<'_, [u8]>) {
    match &col.data {
        ColumnData::Numeric(v) => {
            let canonical = |x: &f64| !x.is_nan() || x.to_bits() == CANONICAL_NAN;
            if cfg!(target_endian = "little") && v.iter().all(canonical) {
                return (0, Cow::Borrowed(v.as_bytes()));
            }
            let mut buf = Vec::with_capacity(v.len() * 8);
            for x in v {
                let bits = if x.is_nan() { CANONICAL_NAN } else { x.to_bits() };
                buf.extend_from_slice(&bits.to_le_bytes());
            }
            (0, Cow::Owned(buf))
        }
        ColumnData::Categorical(v) => {
            // Sized exactly first: growing a buffer of hundreds of megabytes copies it again and again.
            let size: usize = v.iter().map(|x| x.as_ref().map_or(1, |s| 9 + s.len())).sum();
            let mut buf = Vec::with_capacity(size);
            for x in v {
                match x {
                    None => buf.push(0),
                    Some(s) => {
                        buf.push(1);
                        buf.extend_from_slice(&(s.len() as u64).to_le_bytes());
                        buf.extend_from_slice(s.as_bytes());
                    }
                }
            }
            (1, Cow::Owned(buf))
        }
    }
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
