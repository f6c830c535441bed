//! Refs (stage key → output, run id → run record, prediction id → prediction record): their kinds, where
//! their files are, how a ref file is read without following links, and every ref listed with every
//! damaged one.

use std::fs;
use std::path::{Path, PathBuf};

use super::files::{PlainError, describe, read_plain_limited};
use super::{Damaged, LocalStore, Remedy, io, is_hex, preview};
use crate::digest::Id;
use crate::error::Result;

/// A ref file holds 64 hex characters and a newline; anything much longer is not a ref.
const REF_READ_LIMIT: u64 = 256;

/// The namespaces of refs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RefKind {
    StageKey,
    Run,
    Prediction,
    /// A Parquet or Arrow IPC file's snapshot, by the file's content id and the read that made it: a
    /// memo that spares writing the canonical CSV again; never trusted alone (`commands::run`).
    Snapshot,
}

impl RefKind {
    pub(super) fn dir(self) -> &'static str {
        match self {
            RefKind::StageKey => "keys",
            RefKind::Run => "runs",
            RefKind::Prediction => "predictions",
            RefKind::Snapshot => "snapshots",
        }
    }

    /// How messages name a ref of this kind.
    pub fn label(self) -> &'static str {
        match self {
            RefKind::StageKey => "stage-key ref",
            RefKind::Run => "run ref",
            RefKind::Prediction => "prediction ref",
            RefKind::Snapshot => "snapshot ref",
        }
    }

    /// What to do about a damaged ref of this kind.
    pub(super) fn repair_hint(self) -> &'static str {
        match self {
            RefKind::StageKey => {
                "`mlpipe run` recomputes the stage and writes its ref again; `mlpipe verify --repair` moves \
                 damaged refs aside to v1/quarantine/"
            }
            RefKind::Snapshot => {
                "`mlpipe run` writes it again the next time the file is gathered; `mlpipe verify --repair` moves \
                 damaged refs aside to v1/quarantine/"
            }
            RefKind::Run | RefKind::Prediction => {
                "`mlpipe verify --repair` moves damaged refs aside to v1/quarantine/ and writes each again from \
                 its record when the store still holds it"
            }
        }
    }
}

/// What reading a ref found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefRead {
    Missing,
    Target(Id),
    /// The entry is not a ref file holding an id: bad bytes, a folder, a symbolic link, ….
    Damaged(Damaged),
}

/// Parses a ref file's bytes: 64 lowercase hex characters; surrounding whitespace (a missing or CRLF
/// newline) is a slip that is accepted.
fn parse_ref(bytes: &[u8], size: u64) -> std::result::Result<Id, String> {
    if size > REF_READ_LIMIT {
        return Err(format!("holds {size} bytes instead of an object id"));
    }
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|t| t.trim().parse::<Id>().ok())
        .ok_or_else(|| {
            if bytes.is_empty() {
                "is empty instead of holding an object id".into()
            } else {
                format!("holds {} instead of an object id", preview(bytes))
            }
        })
}

/// Ref and store entries found by [`LocalStore::scan_refs`]: good refs (key, target), sorted by key, and
/// every entry that is not a good ref.
#[derive(Debug, Default)]
pub struct RefScan {
    pub refs: Vec<(Id, Id)>,
    pub damaged: Vec<Damaged>,
}

impl LocalStore {
    /// Where a ref's file is (it may be missing).
    pub fn ref_file(&self, kind: RefKind, key: &Id) -> PathBuf {
        self.ref_path(kind, key)
    }

    pub(super) fn ref_path(&self, kind: RefKind, key: &Id) -> PathBuf {
        let hex = key.hex();
        let dir = self.base.join("refs").join(kind.dir());
        if kind == RefKind::StageKey {
            dir.join(&hex[..2]).join(&hex[2..])
        } else {
            dir.join(hex)
        }
    }

    /// Every good ref of a kind, as (key, target), sorted by key. Damaged refs are left out: see
    /// [`LocalStore::scan_refs`].
    pub fn refs(&self, kind: RefKind) -> Result<Vec<(Id, Id)>> {
        Ok(self.scan_refs(kind)?.refs)
    }

    /// Every ref of a kind: the good ones (key, target) sorted by key, and every entry that is not a good
    /// ref (bad bytes, a folder, a link, a name that is no key), all of them, each named.
    pub fn scan_refs(&self, kind: RefKind) -> Result<RefScan> {
        let dir = self.base.join("refs").join(kind.dir());
        let mut out = RefScan::default();
        let mut files: Vec<(String, PathBuf, fs::FileType)> = Vec::new();
        let list = |d: &Path, prefix: &str, files: &mut Vec<(String, PathBuf, fs::FileType)>| -> Result<()> {
            for e in fs::read_dir(d).map_err(io("list", d))? {
                let e = e.map_err(io("list", d))?;
                let path = e.path();
                let file_type = e.file_type().map_err(io("look at", &path))?;
                files.push((format!("{prefix}{}", e.file_name().to_string_lossy()), path, file_type));
            }
            Ok(())
        };
        if kind == RefKind::StageKey {
            for e in fs::read_dir(&dir).map_err(io("list", &dir))? {
                let e = e.map_err(io("list", &dir))?;
                let name = e.file_name().to_string_lossy().to_string();
                let path = e.path();
                let file_type = e.file_type().map_err(io("look at", &path))?;
                if file_type.is_dir() && is_hex(&name, 2) {
                    list(&path, &name, &mut files)?;
                } else {
                    out.damaged
                        .push(self.misplaced_prefix_folder(path, file_type, "stage-key refs"));
                }
            }
        } else {
            list(&dir, "", &mut files)?;
        }
        for (name, path, file_type) in files {
            let key = name.parse::<Id>().ok();
            let damaged = |what: String| Damaged {
                rel: self.rel(&path),
                path: path.clone(),
                what,
                key: key.map(|k| (kind, k)),
                remedy: Remedy::MoveAside,
            };
            let Some(k) = key else {
                let what = if file_type.is_file() {
                    format!("is a file whose name is not a {} key", kind.label())
                } else {
                    format!("is {}, not a ref file", describe(&path, file_type))
                };
                out.damaged.push(damaged(what));
                continue;
            };
            match read_ref_at(&path) {
                Ok(None) => {} // removed meanwhile
                Ok(Some(target)) => out.refs.push((k, target)),
                Err(what) => out.damaged.push(damaged(what)),
            }
        }
        out.refs.sort();
        out.damaged.sort_by(|a, b| a.rel.cmp(&b.rel));
        Ok(out)
    }
}

/// Reads a ref file without following links: `Ok(None)` when missing, `Err(what is wrong)` when it is not a
/// plain file holding an id.
pub(super) fn read_ref_at(path: &Path) -> std::result::Result<Option<Id>, String> {
    match read_plain_limited(path, REF_READ_LIMIT + 1) {
        Ok(None) => Ok(None),
        Ok(Some((bytes, size))) => parse_ref(&bytes, size).map(Some),
        Err(PlainError::Not(what)) => Err(format!("is {what}, not a ref file")),
        Err(PlainError::Io(e)) => Err(format!("cannot be read: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn every_damaged_ref_is_listed_not_only_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(&dir.path().join("s")).unwrap();
        let target = store.put(b"record").unwrap();
        let keys: Vec<Id> = (0u8..5).map(|i| Id::of_bytes(&[i])).collect();
        for k in &keys {
            store.set_ref(RefKind::Run, k, &target).unwrap();
        }
        let path = |k: &Id| store.ref_file(RefKind::Run, k);
        // One bad byte, an empty file, a folder, a stray name; keys[4] stays good.
        let mut bytes = fs::read(path(&keys[0])).unwrap();
        bytes[5] = 0x01;
        fs::write(path(&keys[0]), &bytes).unwrap();
        fs::write(path(&keys[1]), "").unwrap();
        fs::remove_file(path(&keys[2])).unwrap();
        fs::create_dir(path(&keys[2])).unwrap();
        fs::write(store.root().join("v1/refs/runs/notes.txt"), "hello").unwrap();
        let scan = store.scan_refs(RefKind::Run).unwrap();
        let mut good = vec![(keys[3], target), (keys[4], target)];
        good.sort();
        assert_eq!(scan.refs, good);
        let mut expected = vec![
            (
                format!("v1/refs/runs/{}", keys[0]),
                format!(
                    "holds \"{}\\u{{1}}{}\"… instead of an object id",
                    &target.hex()[..5],
                    &target.hex()[6..40]
                ),
            ),
            (
                format!("v1/refs/runs/{}", keys[1]),
                "is empty instead of holding an object id".into(),
            ),
            (
                format!("v1/refs/runs/{}", keys[2]),
                "is a folder, not a ref file".into(),
            ),
            (
                "v1/refs/runs/notes.txt".into(),
                "is a file whose name is not a run ref key".into(),
            ),
        ];
        expected.sort();
        let found: Vec<(String, String)> = scan.damaged.iter().map(|d| (d.rel.clone(), d.what.clone())).collect();
        assert_eq!(found, expected);
        // A damaged ref is an error naming it, with what to do; quarantine keeps its bytes.
        let err = store.get_ref(RefKind::Run, &keys[1]).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "the run ref {} is empty instead of holding an object id",
                path(&keys[1]).display()
            )
        );
        let moved = store.quarantine_ref(RefKind::Run, &keys[0]).unwrap().unwrap();
        assert_eq!(fs::read(&moved).unwrap(), bytes);
        assert_eq!(store.read_ref(RefKind::Run, &keys[0]).unwrap(), RefRead::Missing);
        // Moving aside never replaces what was moved aside before.
        fs::write(path(&keys[0]), "again").unwrap();
        let again = store.quarantine_ref(RefKind::Run, &keys[0]).unwrap().unwrap();
        assert_eq!(again.file_name().unwrap().to_string_lossy(), format!("{}.1", keys[0]));
        assert_eq!(fs::read(&moved).unwrap(), bytes);
        assert_eq!(store.quarantine_ref(RefKind::Run, &keys[4]).unwrap(), None);
    }
}
