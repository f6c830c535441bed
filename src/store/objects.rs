//! Objects: stored (from bytes or a file, atomically), read back without following links, listed with
//! every entry under `v1/objects` that is not an object.

use std::fs::{self, File};
use std::io::Read;
use std::path::Path;

use super::files::{Plain, PlainError, describe, is_plain_file, open_plain, read_plain_limited, temp_file_for};
use super::{Damaged, LocalStore, Remedy, io, is_hex, write_atomic};
use crate::digest::Id;
use crate::error::{Error, Result};

/// Every object id, and every entry under `v1/objects` that is not an object.
#[derive(Debug, Default)]
pub struct ObjectScan {
    pub ids: Vec<Id>,
    pub damaged: Vec<Damaged>,
}

impl LocalStore {
    /// Whether the object is present and its bytes still hash to its id, read in pieces (a large
    /// snapshot need not be held in memory) and hashed on all cores; never through a link.
    pub fn object_is_intact(&self, id: &Id) -> Result<bool> {
        let path = self.object_path(id);
        let mut file = match open_plain(&path).map_err(io("open", &path))? {
            Plain::File(f) => f,
            Plain::Missing | Plain::Not(_) => return Ok(false),
        };
        let mut hasher = blake3::Hasher::new();
        let mut piece = vec![0u8; 8 << 20];
        loop {
            let n = file.read(&mut piece).map_err(io("read", &path))?;
            if n == 0 {
                break;
            }
            hasher.update_rayon(&piece[..n]);
        }
        Ok(Id(*hasher.finalize().as_bytes()) == *id)
    }

    /// Stores bytes whose id the caller already computed (large snapshots are hashed once).
    pub fn put_with_id(&self, id: &Id, bytes: &[u8]) -> Result<()> {
        let path = self.object_path(id);
        if let Ok(Some(existing)) = Self::read_object(&path)
            && Id::of_bytes(&existing) == *id
        {
            return Ok(());
        }
        // Missing, damaged, or not a plain file: replace it with the good bytes we hold (a link is replaced
        // by the rename, never written through).
        self.ensure_prefix_folder(&path)?;
        write_atomic(&self.tmp(), &path, bytes)
    }

    /// An object file's bytes; `Ok(None)` when missing; an error when it is not a plain file.
    pub(super) fn read_object(path: &Path) -> Result<Option<Vec<u8>>> {
        let not_plain = |what: String| Error::Lookup {
            message: format!("store object {} is {what}, not a plain file", path.display()),
            hint: Some(
                "`mlpipe verify --repair` moves it aside; `mlpipe run` recomputes stage outputs and `mlpipe \
                 reproduce` restores a run's objects"
                    .into(),
            ),
        };
        if let Some(dir) = path.parent()
            && let Ok(m) = fs::symlink_metadata(dir)
            && !m.file_type().is_dir()
        {
            return Err(not_plain(format!("inside {}", describe(dir, m.file_type()))));
        }
        match open_plain(path).map_err(io("read", path))? {
            Plain::Missing => Ok(None),
            Plain::Not(what) => Err(not_plain(what)),
            Plain::File(mut f) => {
                let mut bytes = Vec::new();
                f.read_to_end(&mut bytes).map_err(io("read", path))?;
                Ok(Some(bytes))
            }
        }
    }

    /// Stores a file without reading it into memory: copy into a temp file in `tmp/`, hash the copy
    /// (memory-mapped, on all cores; the digest does not depend on the thread count), fsync, rename. The id
    /// is computed from the bytes that were stored, so a file changing underneath cannot produce a lying
    /// object.
    pub fn put_file(&self, source: &Path) -> Result<(Id, u64)> {
        let mut tmp = temp_file_for(&self.tmp(), Path::new("file"))?;
        let mut from = File::open(source).map_err(io("open", source))?;
        let size = std::io::copy(&mut from, tmp.as_file_mut()).map_err(io("copy", source))?;
        let tmp_path = tmp.path().to_path_buf();
        tmp.as_file().sync_all().map_err(io("sync", &tmp_path))?;
        let id = hash_file(&tmp_path)?;
        let dest = self.object_path(&id);
        if is_plain_file(&dest) && hash_file(&dest)? == id {
            return Ok((id, size)); // the temp file removes itself
        }
        self.ensure_prefix_folder(&dest)?;
        let parent = dest.parent().unwrap_or(Path::new("."));
        tmp.persist(&dest)
            .map_err(|e| Error::io("rename into", &dest, e.error))?;
        File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(io("sync folder", parent))?;
        Ok((id, size))
    }

    /// The first `n` bytes of an object (fewer when it is shorter), without checking its hash: enough to
    /// tell a record from a stage output. `Ok(None)` when it is missing or not a plain file.
    pub fn object_head(&self, id: &Id, n: u64) -> Result<Option<Vec<u8>>> {
        let path = self.object_path(id);
        match read_plain_limited(&path, n) {
            Ok(found) => Ok(found.map(|(bytes, _)| bytes)),
            Err(PlainError::Not(_)) => Ok(None),
            Err(PlainError::Io(e)) => Err(Error::io("read", path, e)),
        }
    }

    /// Every object id in the store, sorted.
    pub fn object_ids(&self) -> Result<Vec<Id>> {
        Ok(self.scan_objects()?.ids)
    }

    /// Every object id in the store (sorted), and every entry under `v1/objects` that is not an object
    /// file in a real two-character folder. Links are listed, never followed.
    pub fn scan_objects(&self) -> Result<ObjectScan> {
        let mut out = ObjectScan::default();
        let dir = self.base.join("objects");
        for prefix in fs::read_dir(&dir).map_err(io("list", &dir))? {
            let prefix = prefix.map_err(io("list", &dir))?;
            let p = prefix.file_name().to_string_lossy().to_string();
            let path = prefix.path();
            let file_type = prefix.file_type().map_err(io("look at", &path))?;
            if !file_type.is_dir() || !is_hex(&p, 2) {
                out.damaged
                    .push(self.misplaced_prefix_folder(path, file_type, "objects"));
                continue;
            }
            for entry in fs::read_dir(&path).map_err(io("list", &path))? {
                let entry = entry.map_err(io("list", &path))?;
                let file = entry.path();
                let file_type = entry.file_type().map_err(io("look at", &file))?;
                let id = format!("{p}{}", entry.file_name().to_string_lossy()).parse::<Id>();
                match id {
                    Ok(id) if file_type.is_file() => out.ids.push(id),
                    _ => {
                        let what = if file_type.is_file() {
                            "is a file whose name is not an object id".to_string()
                        } else {
                            format!("is {}, not an object file", describe(&file, file_type))
                        };
                        out.damaged.push(Damaged {
                            rel: self.rel(&file),
                            path: file,
                            what,
                            key: None,
                            remedy: Remedy::MoveAside,
                        });
                    }
                }
            }
        }
        out.ids.sort();
        Ok(out)
    }
}

/// blake3 of a file, memory-mapped and hashed on all cores for large files.
pub fn hash_file(path: &Path) -> Result<Id> {
    let mut hasher = blake3::Hasher::new();
    hasher.update_mmap_rayon(path).map_err(io("hash", path))?;
    Ok(Id(*hasher.finalize().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::tests::link;

    #[cfg(unix)]
    #[test]
    fn a_linked_object_folder_is_never_written_or_removed_through() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(&dir.path().join("s")).unwrap();
        let id = store.put(b"x").unwrap();
        let hex = id.hex();
        let prefix = store.root().join("v1/objects").join(&hex[..2]);
        fs::remove_dir_all(&prefix).unwrap();
        let outside = dir.path().join("elsewhere");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join(&hex[2..]), "precious").unwrap();
        link(&outside, &prefix);
        let message = format!(
            "store folder {} is a symbolic link to {}, not a folder; the store's folders must be real folders inside it",
            prefix.display(),
            outside.display()
        );
        assert_eq!(store.put(b"x").unwrap_err().to_string(), message);
        assert_eq!(store.remove_object(&id).unwrap_err().to_string(), message);
        assert_eq!(fs::read_to_string(outside.join(&hex[2..])).unwrap(), "precious");
        // Listing objects does not go through it; it is reported instead.
        let scan = store.scan_objects().unwrap();
        assert_eq!(scan.ids, Vec::<Id>::new());
        assert_eq!(scan.damaged.len(), 1);
        assert_eq!(
            scan.damaged[0].what,
            format!("is a symbolic link to {}, not a folder of objects", outside.display())
        );
    }
}
