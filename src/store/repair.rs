//! Damaged entries — refs, links, files where folders belong, links at the store's ledger — described
//! without following links, and moved aside to `v1/quarantine/` by `verify --repair` (never deleted).

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use super::files::{FolderError, describe, ensure_folder};
use super::{LocalStore, RefKind, io};
use crate::digest::Id;
use crate::error::{Error, Result};

/// The store's SQLite ledger and the files SQLite keeps beside it, in the store's root: never links.
pub const LEDGER_FILES: [&str; 4] = [
    "ledger.sqlite",
    "ledger.sqlite-wal",
    "ledger.sqlite-shm",
    "ledger.sqlite-journal",
];

/// The store ledger's files (see [`LEDGER_FILES`]) that are symbolic links.
pub fn ledger_links(root: &Path) -> Vec<PathBuf> {
    LEDGER_FILES
        .iter()
        .map(|name| root.join(name))
        .filter(|p| fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink()))
        .collect()
}

/// Refuses to open the store's ledger when it, or a file SQLite keeps beside it, is a link: opening it
/// would read and write whatever the link points at.
pub fn refuse_ledger_links(root: &Path) -> Result<()> {
    let Some(link) = ledger_links(root).into_iter().next() else {
        return Ok(());
    };
    let what =
        fs::symlink_metadata(&link).map_or_else(|_| "a symbolic link".into(), |m| describe(&link, m.file_type()));
    Err(Error::Lookup {
        message: format!(
            "{} is {what}: mlpipe never opens the store's ledger through a link",
            link.display()
        ),
        hint: Some(format!(
            "`mlpipe verify --repair --store {}` moves the link aside to v1/quarantine/ (what it points at is left \
             untouched); put the ledger file itself there if it was moved",
            root.display()
        )),
    })
}

/// Something in the store's layout that is not what the layout says: a damaged ref, a link, a file where
/// a folder belongs, a name that is no id. Found without following links; never read through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damaged {
    /// The entry, relative to the store root (`v1/refs/runs/…`), for messages.
    pub rel: String,
    pub path: PathBuf,
    /// What is wrong, as a phrase that follows the entry's name ("holds \"…\" instead of an object id").
    pub what: String,
    /// The ref this entry is (kind and key), when its name is a valid key.
    pub key: Option<(RefKind, Id)>,
    pub remedy: Remedy,
}

/// How `verify --repair` mends a [`Damaged`] entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remedy {
    /// Move it aside to `v1/quarantine/`.
    MoveAside,
    /// Move it aside and put a real, empty folder in its place (a store folder that is a link or a file).
    MoveAsideAndMakeFolder,
    /// Write the layout file again (its folders are those of layout 1).
    RewriteLayout,
    /// Only by hand (`v1` itself is a link or a file).
    ByHand,
}

impl Damaged {
    /// The error a command gives when it needs this entry.
    pub fn error(&self) -> Error {
        let (label, hint) = match self.key {
            Some((kind, _)) => (kind.label(), kind.repair_hint()),
            None => (
                "store entry",
                "`mlpipe verify` lists every damaged entry; `mlpipe verify --repair` moves them aside to v1/quarantine/",
            ),
        };
        Error::Lookup {
            message: format!("the {label} {} {}", self.path.display(), self.what),
            hint: Some(hint.into()),
        }
    }
}

/// The error a command gives for a store folder that is not a real folder.
pub(super) fn folder_error(d: &Damaged) -> Error {
    let hint = if d.remedy == Remedy::ByHand {
        "put the folder itself at this path (for a link: `mv` the folder it points at here), or point --store \
         at the folder that holds v1"
    } else {
        "`mlpipe verify` lists every link and misplaced entry in the store; `mlpipe verify --repair` moves them \
         aside to v1/quarantine/ and puts real folders in their place (what a link points at is left untouched)"
    };
    Error::Lookup {
        message: format!(
            "store folder {} {}; the store's folders must be real folders inside it",
            d.path.display(),
            d.what
        ),
        hint: Some(hint.into()),
    }
}

impl LocalStore {
    /// Entries directly in `v1/`, `v1/refs/` and `v1/tmp/` that are links, or stand where the lock file
    /// belongs without being a plain file. The store folders themselves are checked by
    /// [`LocalStore::open_for_verify`] (and never listed through when they are links); objects and refs by
    /// [`LocalStore::scan_objects`] and [`LocalStore::scan_refs`]; `v1/quarantine/` holds what was moved
    /// aside and is not looked into.
    pub fn scan_layout(&self) -> Result<Vec<Damaged>> {
        let mut out = Vec::new();
        let folders: [(PathBuf, &[&str]); 3] = [
            (self.base.clone(), &["objects", "refs", "tmp"]),
            (self.base.join("refs"), &["keys", "runs", "predictions", "snapshots"]),
            (self.tmp(), &[]),
        ];
        for (dir, store_folders) in folders {
            if !fs::symlink_metadata(&dir).is_ok_and(|m| m.file_type().is_dir()) {
                continue;
            }
            for e in fs::read_dir(&dir).map_err(io("list", &dir))? {
                let e = e.map_err(io("list", &dir))?;
                let path = e.path();
                let file_type = e.file_type().map_err(io("look at", &path))?;
                let name = e.file_name();
                if store_folders.iter().any(|f| name == *f) {
                    continue;
                }
                let is_lock = dir == self.base && name == "lock";
                if file_type.is_symlink() || (is_lock && !file_type.is_file()) {
                    out.push(Damaged {
                        rel: self.rel(&path),
                        what: if is_lock {
                            format!("is {}, not the store's lock file", describe(&path, file_type))
                        } else {
                            format!("is {}", describe(&path, file_type))
                        },
                        path,
                        key: None,
                        remedy: Remedy::MoveAside,
                    });
                }
            }
        }
        for path in ledger_links(&self.root) {
            let what = fs::symlink_metadata(&path)
                .map_or_else(|_| "a symbolic link".into(), |m| describe(&path, m.file_type()));
            out.push(Damaged {
                rel: self.rel(&path),
                what: format!("is {what}; the store's ledger is never opened through a link"),
                path,
                key: None,
                remedy: Remedy::MoveAside,
            });
        }
        out.sort_by(|a, b| a.rel.cmp(&b.rel));
        Ok(out)
    }

    /// `v1/quarantine` itself is a link or a file: it is renamed beside itself (`v1/quarantine.moving-<n>`),
    /// a real folder is made in its place, and it is moved into that folder. What a link points at is left
    /// untouched. Returns where it went.
    fn heal_quarantine(&self, own: &Path) -> Result<PathBuf> {
        let mut aside = None;
        for n in 0..1000u32 {
            let candidate = self.base.join(format!("quarantine.moving-{n}"));
            if fs::symlink_metadata(&candidate).is_ok() {
                continue;
            }
            match fs::hard_link(own, &candidate).and_then(|()| fs::remove_file(own)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(_) => fs::rename(own, &candidate).map_err(io("move aside", own))?,
            }
            aside = Some(candidate);
            break;
        }
        let aside = aside
            .ok_or_else(|| Error::internal(format!("{} could not be moved aside: remove it by hand", own.display())))?;
        self.make_folder(own)?;
        self.quarantine(&aside)
    }

    /// Moves an entry of the store aside to `v1/quarantine/` (same relative path; `.1`, `.2`, … when that
    /// name is taken), returning where it went. A link is moved as a link: what it points at is not touched.
    pub fn quarantine(&self, path: &Path) -> Result<PathBuf> {
        // Nothing can be moved into a quarantine folder that is a link or a file: that is mended first.
        let own = self.base.join("quarantine");
        if fs::symlink_metadata(&own).is_ok_and(|m| !m.file_type().is_dir()) {
            let moved = self.heal_quarantine(&own)?;
            if path == own {
                return Ok(moved);
            }
        }
        let rel = path
            .strip_prefix(&self.base)
            .or_else(|_| path.strip_prefix(&self.root))
            .map_err(|_| Error::internal(format!("{} is not inside the store", path.display())))?;
        let target = self.base.join("quarantine").join(rel);
        let mut dir = self.base.clone();
        let folders = Path::new("quarantine").join(rel);
        for part in folders.parent().into_iter().flat_map(Path::components) {
            dir.push(part);
            match ensure_folder(&dir) {
                Ok(()) => {}
                Err(FolderError::Io(e)) => return Err(Error::io("create folder", &dir, e)),
                Err(FolderError::Not(what)) => {
                    return Err(folder_error(&Damaged {
                        rel: self.rel(&dir),
                        path: dir.clone(),
                        what: format!("is {what}, not a folder"),
                        key: None,
                        remedy: Remedy::MoveAside,
                    }));
                }
            }
        }
        // Never reach into a linked folder: the entry itself is moved, from a real folder of the store.
        if let Some(parent) = path.parent()
            && !fs::symlink_metadata(parent).is_ok_and(|m| m.file_type().is_dir())
        {
            return Err(Error::Lookup {
                message: format!("{} is not in a real folder of the store", path.display()),
                hint: Some("move the linked folder aside first (`mlpipe verify --repair` does)".into()),
            });
        }
        let is_dir = fs::symlink_metadata(path)
            .map_err(io("look at", path))?
            .file_type()
            .is_dir();
        for n in 0..1000u32 {
            let dest = if n == 0 {
                target.clone()
            } else {
                let mut name = target.file_name().unwrap_or_default().to_os_string();
                name.push(format!(".{n}"));
                target.with_file_name(name)
            };
            // Claim the name first (a hard link or an empty folder cannot replace anything), then move.
            let claimed = if is_dir {
                fs::create_dir(&dest).and_then(|()| fs::rename(path, &dest))
            } else {
                fs::hard_link(path, &dest).and_then(|()| fs::remove_file(path))
            };
            match claimed {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                // A file system without hard links: rename onto a name that is free.
                Err(_) if !is_dir && fs::symlink_metadata(&dest).is_err() => {
                    fs::rename(path, &dest).map_err(io("move aside", path))?;
                }
                Err(e) => return Err(Error::io("move aside", path, e)),
            }
            if let Some(parent) = dest.parent() {
                let _ = File::open(parent).and_then(|d| d.sync_all());
            }
            return Ok(dest);
        }
        Err(Error::internal(format!(
            "{} has been moved aside 1000 times; empty v1/quarantine/",
            path.display()
        )))
    }

    /// Puts a real, empty store folder where [`LocalStore::quarantine`] moved a link or file away.
    pub fn make_folder(&self, path: &Path) -> Result<()> {
        match ensure_folder(path) {
            Ok(()) => Ok(()),
            Err(FolderError::Io(e)) => Err(Error::io("create folder", path, e)),
            Err(FolderError::Not(what)) => Err(Error::Lookup {
                message: format!("{} is {what} again, not a folder", path.display()),
                hint: Some("something else is writing in the store; run `mlpipe verify --repair` again".into()),
            }),
        }
    }

    /// An entry under `v1/objects` or `v1/refs/keys` that is not a real folder named by two hex characters
    /// (a folder with another name, or a link, file or special file, looked at without following links),
    /// to be moved aside; `holds` says what such a folder holds ("objects", "stage-key refs").
    pub(super) fn misplaced_prefix_folder(&self, path: PathBuf, file_type: fs::FileType, holds: &str) -> Damaged {
        let what = if file_type.is_dir() {
            "is a folder whose name is not two hex characters".to_string()
        } else {
            format!("is {}, not a folder of {holds}", describe(&path, file_type))
        };
        Damaged {
            rel: self.rel(&path),
            path,
            what,
            key: None,
            remedy: Remedy::MoveAside,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_symlinked_quarantine_folder_is_repaired_not_moved_into_itself() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(&dir.path().join("s")).unwrap();
        let outside = dir.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("keep"), b"x").unwrap();
        let q = dir.path().join("s/v1/quarantine");
        std::os::unix::fs::symlink(&outside, &q).unwrap();
        assert!(store.scan_layout().unwrap().iter().any(|d| d.rel == "v1/quarantine"));
        let to = store.quarantine(&q).unwrap();
        assert!(fs::symlink_metadata(&q).unwrap().file_type().is_dir());
        assert_eq!(to, q.join("quarantine.moving-0"));
        assert!(fs::symlink_metadata(&to).unwrap().file_type().is_symlink());
        assert_eq!(fs::read(outside.join("keep")).unwrap(), b"x");
        assert!(store.scan_layout().unwrap().is_empty());
    }

    #[test]
    fn a_link_at_the_store_ledger_or_its_wal_is_reported_never_followed_and_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("s");
        let store = LocalStore::open(&root).unwrap();
        let notes = dir.path().join("notes.txt");
        fs::write(&notes, b"my notes\n").unwrap();
        std::os::unix::fs::symlink(&notes, root.join("ledger.sqlite")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("elsewhere"), root.join("ledger.sqlite-wal")).unwrap();
        let rels: Vec<String> = store.scan_layout().unwrap().into_iter().map(|d| d.rel).collect();
        assert_eq!(rels, ["ledger.sqlite", "ledger.sqlite-wal"]);
        let err = crate::ledger::open(&root, None).err().unwrap();
        assert_eq!(
            err.to_string(),
            format!(
                "{} is a symbolic link to {}: mlpipe never opens the store's ledger through a link",
                root.join("ledger.sqlite").display(),
                notes.display()
            )
        );
        // Even past the check (a link planted meanwhile), SQLite does not follow it.
        let link = root.join("ledger.sqlite");
        let empty = dir.path().join("empty.db");
        fs::write(&empty, b"").unwrap();
        let planted = dir.path().join("planted.sqlite");
        std::os::unix::fs::symlink(&empty, &planted).unwrap();
        let nofollow = rusqlite::OpenFlags::SQLITE_OPEN_NOFOLLOW;
        assert!(crate::ledger::SqliteLedger::open_with(&planted, nofollow).is_err());
        assert_eq!(fs::read(&empty).unwrap(), b"");
        assert_eq!(fs::read(&notes).unwrap(), b"my notes\n");
        store.quarantine(&link).unwrap();
        store.quarantine(&root.join("ledger.sqlite-wal")).unwrap();
        assert!(store.scan_layout().unwrap().is_empty());
        assert_eq!(fs::read(&notes).unwrap(), b"my notes\n");
        assert!(
            fs::symlink_metadata(root.join("v1/quarantine/ledger.sqlite"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }
}
