//! What `gc` needs of a local store: the store lock (shared by writers, exclusive for gc), removing refs
//! and objects (never through a linked folder), and clearing temp files left by killed writers.

use std::fs::{self, File};

use super::files::{Plain, open_plain};
use super::{LocalStore, RefKind, io};
use crate::digest::Id;
use crate::error::{Error, Result};

impl LocalStore {
    /// Takes the store lock: shared for anything that writes objects, exclusive for gc. Held until dropped.
    pub fn lock(&self, exclusive: bool) -> Result<File> {
        let path = self.base.join("lock");
        let f = match fs::OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => match open_plain(&path) {
                Ok(Plain::File(f)) => f,
                Ok(Plain::Missing) => return Err(Error::io("open", &path, std::io::ErrorKind::NotFound.into())),
                Ok(Plain::Not(what)) => {
                    return Err(Error::Lookup {
                        message: format!("the store lock {} is {what}, not a plain file", path.display()),
                        hint: Some("`mlpipe verify --repair` moves it aside; the next command makes a new lock".into()),
                    });
                }
                Err(e) => return Err(Error::io("open", &path, e)),
            },
            Err(e) => return Err(Error::io("open", &path, e)),
        };
        if exclusive { f.lock() } else { f.lock_shared() }.map_err(io("lock", &path))?;
        Ok(f)
    }

    pub fn remove_ref(&self, kind: RefKind, key: &Id) -> Result<()> {
        let p = self.ref_path(kind, key);
        if kind == RefKind::StageKey {
            self.ensure_prefix_folder(&p)?;
        }
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("remove", p, e)),
        }
    }

    pub fn remove_object(&self, id: &Id) -> Result<u64> {
        let p = self.object_path(id);
        // Never remove through a linked folder (that would delete a file outside the store).
        self.ensure_prefix_folder(&p)?;
        let size = fs::symlink_metadata(&p).map_or(0, |m| m.len());
        match fs::remove_file(&p) {
            Ok(()) => Ok(size),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(Error::io("remove", p, e)),
        }
    }

    /// Temp files left by interrupted writers (only safe to remove under the exclusive lock). A link in
    /// `tmp/` is removed as a link; folders are left alone.
    pub fn clear_tmp(&self) -> Result<usize> {
        let dir = self.tmp();
        let mut n = 0;
        for e in fs::read_dir(&dir).map_err(io("list", &dir))? {
            let e = e.map_err(io("list", &dir))?;
            if e.file_type().is_ok_and(|t| !t.is_dir()) && fs::remove_file(e.path()).is_ok() {
                n += 1;
            }
        }
        Ok(n)
    }
}
