//! The content-addressed store: objects named by the blake3 of their bytes, and refs (stage key → output,
//! run id → run record, prediction id → prediction record).
//!
//! Local layout (version 1), under the store root (default `./artifacts`):
//! ```text
//! layout                   "mlpipe-store 1"
//! v1/objects/ab/cdef…      object bytes; file name = hex id (first two characters as folder)
//! v1/refs/keys/ab/cdef…    a stage key's output id (hex + newline)
//! v1/refs/runs/<id>        a run's record object id
//! v1/refs/predictions/<id> a prediction's record object id
//! v1/tmp/                  files being written; never read
//! v1/quarantine/           damaged or misplaced entries moved aside (by `verify --repair`, or by `run`
//!                          for a damaged stage-key ref); never read, never deleted by mlpipe
//! v1/lock                  shared by writers, exclusive for gc
//! ```
//! Every write goes to a temp file with an unpredictable name, created exclusively (`O_CREAT|O_EXCL`,
//! which never follows a link planted at its name), is fsynced, then renamed into place (and the folder
//! fsynced), so a reader sees a whole object or none; the same content always lands at the same name, so
//! concurrent writers cannot conflict. Every read re-hashes the bytes.
//!
//! The store's own folders and files must be real folders and plain files inside it (the root itself may
//! be a link): nothing here reads, writes or deletes through a symbolic link. Reads look at an entry
//! without following links, then check that the file opened is that very entry.
//!
//! The code, one concern a file: this file holds the [`Store`] trait, [`LocalStore`] with its paths and
//! its [`Store`] implementation, and [`LocalStore::resolve`] (hash prefixes); `layout` opens a store and
//! checks its layout file and folders; `files` writes atomically through temp files and opens without
//! following links; `objects` stores, reads and lists objects; `refs` reads, writes and lists refs;
//! `repair` describes damaged entries and moves them aside; `gc` holds the store lock and removes
//! entries; `memory` is the in-memory store `reproduce` uses as scratch space.

mod files;
mod gc;
mod layout;
mod memory;
mod objects;
mod refs;
mod repair;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::digest::Id;
use crate::error::{Error, Result};

pub use files::{TEMP_PREFIX, temp_prefix_for, write_atomic};
pub use layout::LAYOUT_VERSION;
pub use memory::MemoryStore;
pub use objects::{ObjectScan, hash_file};
pub use refs::{RefKind, RefRead, RefScan};
pub use repair::{Damaged, LEDGER_FILES, Remedy, ledger_links, refuse_ledger_links};

use files::{describe, is_plain_file};
use refs::read_ref_at;

/// What the executor needs from a store. A shared backend (S3-compatible) implements the same trait.
pub trait Store: Sync {
    /// Stores bytes and returns their content id. Idempotent.
    fn put(&self, bytes: &[u8]) -> Result<Id>;
    /// Reads an object and checks that it still hashes to `id`.
    fn get(&self, id: &Id) -> Result<Vec<u8>>;
    fn contains(&self, id: &Id) -> Result<bool>;
    /// Reads a ref, telling a damaged one apart from a missing one.
    fn read_ref(&self, kind: RefKind, key: &Id) -> Result<RefRead>;
    fn set_ref(&self, kind: RefKind, key: &Id, target: &Id) -> Result<()>;

    /// A ref's target; a damaged ref is an error that names it and says what to do.
    fn get_ref(&self, kind: RefKind, key: &Id) -> Result<Option<Id>> {
        match self.read_ref(kind, key)? {
            RefRead::Missing => Ok(None),
            RefRead::Target(id) => Ok(Some(id)),
            RefRead::Damaged(d) => Err(d.error()),
        }
    }

    /// Moves a damaged ref aside (it is never deleted), returning where it went; `None` when the ref is
    /// no longer damaged (another writer mended it) or the store keeps no quarantine.
    fn quarantine_ref(&self, _kind: RefKind, _key: &Id) -> Result<Option<PathBuf>> {
        Ok(None)
    }
}

/// A store in a local folder.
pub struct LocalStore {
    root: PathBuf,
    base: PathBuf,
}

fn io<'p>(action: &'static str, path: &'p Path) -> impl FnOnce(std::io::Error) -> Error + 'p {
    move |e| Error::io(action, path, e)
}

/// Text shown for bytes that should have been an id or a layout line: escaped, at most 40 characters.
fn preview(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let short: String = text.chars().take(40).collect();
    let more = if text.chars().count() > 40 { "…" } else { "" };
    format!("{short:?}{more}")
}

fn is_hex(name: &str, len: usize) -> bool {
    name.len() == len && name.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

impl LocalStore {
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn tmp(&self) -> PathBuf {
        self.base.join("tmp")
    }

    pub fn object_path(&self, id: &Id) -> PathBuf {
        let hex = id.hex();
        self.base.join("objects").join(&hex[..2]).join(&hex[2..])
    }

    /// Where a store path is, relative to the root, for messages.
    fn rel(&self, path: &Path) -> String {
        path.strip_prefix(&self.root).unwrap_or(path).display().to_string()
    }

    /// Finds what a full id or a unique prefix names: a run, a prediction or an object.
    pub fn resolve(&self, text: &str) -> Result<Resolved> {
        let prefix = text.trim().to_ascii_lowercase();
        if prefix.len() < 4 || prefix.len() > 64 || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::Lookup {
                message: format!(
                    "\"{}\" is not a hash or hash prefix",
                    crate::dburl::mask_passwords(text)
                ),
                hint: Some("give at least 4 hex characters of an id shown by `mlpipe log` or `mlpipe run`".into()),
            });
        }
        let mut found: BTreeSet<Resolved> = BTreeSet::new();
        for (kind, wrap) in [
            (RefKind::Run, Resolved::Run as fn(Id) -> Resolved),
            (RefKind::Prediction, Resolved::Prediction),
        ] {
            let dir = self.base.join("refs").join(kind.dir());
            for e in fs::read_dir(&dir).map_err(io("list", &dir))? {
                let name = e.map_err(io("list", &dir))?.file_name().to_string_lossy().to_string();
                if name.starts_with(&prefix)
                    && let Ok(id) = name.parse()
                {
                    found.insert(wrap(id));
                }
            }
        }
        if found.is_empty() {
            let dir = self.base.join("objects").join(&prefix[..2]);
            if dir.is_dir() {
                for e in fs::read_dir(&dir).map_err(io("list", &dir))? {
                    let name = format!(
                        "{}{}",
                        &prefix[..2],
                        e.map_err(io("list", &dir))?.file_name().to_string_lossy()
                    );
                    if name.starts_with(&prefix)
                        && let Ok(id) = name.parse()
                    {
                        found.insert(Resolved::Object(id));
                    }
                }
            }
        }
        match found.len() {
            1 => Ok(found.into_iter().next().ok_or_else(|| Error::internal("empty set"))?),
            0 => Err(Error::Lookup {
                message: format!(
                    "no run, prediction or object in {} starts with \"{prefix}\"",
                    self.root.display()
                ),
                hint: Some("list runs with `mlpipe log`; check --store / MLPIPE_STORE".into()),
            }),
            n => Err(Error::Lookup {
                message: format!(
                    "\"{prefix}\" is ambiguous: {n} ids start with it ({})",
                    found
                        .iter()
                        .take(4)
                        .map(Resolved::describe)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                hint: Some("give more characters of the hash".into()),
            }),
        }
    }
}

/// What a hash names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Resolved {
    Run(Id),
    Prediction(Id),
    Object(Id),
}

impl Resolved {
    fn describe(&self) -> String {
        match self {
            Resolved::Run(id) => format!("run {}", id.short()),
            Resolved::Prediction(id) => format!("prediction {}", id.short()),
            Resolved::Object(id) => format!("object {}", id.short()),
        }
    }
}

impl Store for LocalStore {
    fn put(&self, bytes: &[u8]) -> Result<Id> {
        let id = Id::of_bytes(bytes);
        self.put_with_id(&id, bytes)?;
        Ok(id)
    }

    fn get(&self, id: &Id) -> Result<Vec<u8>> {
        let path = self.object_path(id);
        let Some(bytes) = Self::read_object(&path)? else {
            return Err(Error::Lookup {
                message: format!("object {id} is missing from {}", self.root.display()),
                hint: Some("it was removed or never written; `mlpipe run` recomputes stage outputs and `mlpipe reproduce` restores a run's objects".into()),
            });
        };
        let actual = Id::of_bytes(&bytes);
        if actual != *id {
            return Err(Error::Corrupt {
                id: id.hex(),
                actual: actual.hex(),
                path,
            });
        }
        Ok(bytes)
    }

    fn contains(&self, id: &Id) -> Result<bool> {
        Ok(is_plain_file(&self.object_path(id)))
    }

    fn read_ref(&self, kind: RefKind, key: &Id) -> Result<RefRead> {
        let path = self.ref_path(kind, key);
        if kind == RefKind::StageKey
            && let Some(dir) = path.parent()
            && let Ok(m) = fs::symlink_metadata(dir)
            && !m.file_type().is_dir()
        {
            return Ok(RefRead::Damaged(Damaged {
                rel: self.rel(&path),
                what: format!("is inside {}, not a folder", describe(dir, m.file_type())),
                path,
                key: Some((kind, *key)),
                remedy: Remedy::MoveAside,
            }));
        }
        Ok(match read_ref_at(&path) {
            Ok(None) => RefRead::Missing,
            Ok(Some(target)) => RefRead::Target(target),
            Err(what) => RefRead::Damaged(Damaged {
                rel: self.rel(&path),
                path,
                what,
                key: Some((kind, *key)),
                remedy: Remedy::MoveAside,
            }),
        })
    }

    fn set_ref(&self, kind: RefKind, key: &Id, target: &Id) -> Result<()> {
        let path = self.ref_path(kind, key);
        if kind == RefKind::StageKey {
            self.ensure_prefix_folder(&path)?;
        }
        write_atomic(&self.tmp(), &path, format!("{target}\n").as_bytes())
    }

    fn quarantine_ref(&self, kind: RefKind, key: &Id) -> Result<Option<PathBuf>> {
        match self.read_ref(kind, key)? {
            RefRead::Damaged(d) if fs::symlink_metadata(&d.path).is_ok() => self.quarantine(&d.path).map(Some),
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_and_detect_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(&dir.path().join("s")).unwrap();
        let id = store.put(b"hello").unwrap();
        assert_eq!(store.get(&id).unwrap(), b"hello");
        fs::write(store.object_path(&id), b"hellp").unwrap();
        let err = store.get(&id).unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "{err}");
        // Putting the good bytes again repairs the object.
        store.put(b"hello").unwrap();
        assert_eq!(store.get(&id).unwrap(), b"hello");
    }

    #[test]
    fn prefixes_resolve_uniquely_or_say_why_not() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(&dir.path().join("s")).unwrap();
        let id = store.put(b"x").unwrap();
        assert_eq!(store.resolve(&id.hex()[..8]).unwrap(), Resolved::Object(id));
        assert!(store.resolve("zz").is_err());
        let err = store.resolve("0000000").unwrap_err();
        assert!(err.to_string().starts_with("no run, prediction or object"), "{err}");
    }

    #[cfg(unix)]
    pub(super) fn link(target: &Path, at: &Path) {
        std::os::unix::fs::symlink(target, at).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn an_object_or_ref_that_is_a_symlink_is_not_read_through() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(&dir.path().join("s")).unwrap();
        let id = store.put(b"hello").unwrap();
        // A link to a file outside with the very same bytes is still not an object of the store.
        let outside = dir.path().join("hello.txt");
        fs::write(&outside, b"hello").unwrap();
        let path = store.object_path(&id);
        fs::remove_file(&path).unwrap();
        link(&outside, &path);
        let err = store.get(&id).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "store object {} is a symbolic link to {}, not a plain file",
                path.display(),
                outside.display()
            )
        );
        assert!(!store.contains(&id).unwrap());
        // Storing the bytes again replaces the link (not what it points at).
        store.put(b"hello").unwrap();
        assert!(!fs::symlink_metadata(&path).unwrap().file_type().is_symlink());
        assert_eq!(store.get(&id).unwrap(), b"hello");
        // A ref that is a link.
        let key = Id::of_bytes(b"k");
        let ref_file = dir.path().join("ref");
        fs::write(&ref_file, format!("{id}\n")).unwrap();
        link(&ref_file, &store.ref_file(RefKind::Run, &key));
        let err = store.get_ref(RefKind::Run, &key).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "the run ref {} is a symbolic link to {}, not a ref file",
                store.ref_file(RefKind::Run, &key).display(),
                ref_file.display()
            )
        );
    }

    #[test]
    fn a_password_given_as_a_hash_argument_is_not_echoed() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(&dir.path().join("s")).unwrap();
        let err = store.resolve("postgres://etl:S3cretPW@127.0.0.1:1/db").unwrap_err();
        assert_eq!(
            err.to_string(),
            "\"postgres://etl:***@127.0.0.1:1/db\" is not a hash or hash prefix"
        );
        let err = Error::io(
            "read data file",
            "postgres://etl:S3cretPW@127.0.0.1:1/db",
            std::io::Error::from(std::io::ErrorKind::NotFound),
        );
        assert!(!err.to_string().contains("S3cretPW"), "{err}");
    }
}
