//! Opening a store: the layout file (version, small slips, damage), the folders of layout 1 made real
//! folders (never links), and the layout file written again by `verify --repair`.

use std::fs;
use std::path::Path;

use super::files::{FolderError, PlainError, ensure_folder, read_plain_limited, write_atomic};
use super::repair::folder_error;
use super::{Damaged, LocalStore, Remedy, io, preview};
use crate::error::{Error, Result};

pub const LAYOUT_VERSION: u32 = 1;
const LAYOUT_LINE: &str = "mlpipe-store 1\n";

/// The folders of layout 1, relative to `v1/`, parents first ("" is `v1` itself).
const FOLDERS: [&str; 8] = [
    "",
    "objects",
    "refs",
    "refs/keys",
    "refs/runs",
    "refs/predictions",
    "refs/snapshots",
    "tmp",
];

/// What the `layout` file says.
enum LayoutState {
    Good,
    /// "mlpipe-store 1" with a small slip (no final newline, CRLF, spaces, a byte-order mark).
    Slip,
    /// Another layout version ("mlpipe-store 2").
    Other(String),
    /// Unreadable: what is wrong with it.
    Damaged(String),
    Missing,
}

fn read_layout(path: &Path) -> Result<LayoutState> {
    let (bytes, size) = match read_plain_limited(path, 256) {
        Ok(Some(found)) => found,
        Ok(None) => return Ok(LayoutState::Missing),
        Err(PlainError::Not(what)) => return Ok(LayoutState::Damaged(format!("is {what}"))),
        Err(PlainError::Io(e)) => return Err(Error::io("read", path, e)),
    };
    if bytes == LAYOUT_LINE.as_bytes() {
        return Ok(LayoutState::Good);
    }
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return Ok(LayoutState::Damaged(format!("holds {} (not text)", preview(&bytes))));
    };
    let words: Vec<&str> = text.trim_start_matches('\u{feff}').split_whitespace().collect();
    match words.as_slice() {
        ["mlpipe-store", "1"] if size <= 256 => Ok(LayoutState::Slip),
        ["mlpipe-store", v] if v.bytes().all(|b| b.is_ascii_digit()) => Ok(LayoutState::Other(words.join(" "))),
        [] => Ok(LayoutState::Damaged("is empty".into())),
        _ => Ok(LayoutState::Damaged(format!("holds {}", preview(&bytes)))),
    }
}

/// Whether opening a store may tolerate a damaged layout (for `verify`, which reports it).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Strict,
    Inspect,
}

impl LocalStore {
    /// Opens (creating if needed) a store folder. Refuses a store whose folders are links or files, and a
    /// layout file it cannot read (naming the command that writes it again); accepts a layout file with a
    /// small slip (no final newline, CRLF, extra spaces) and writes it again cleanly when it can.
    pub fn open(root: &Path) -> Result<LocalStore> {
        Ok(Self::open_with(root, Mode::Strict)?.0)
    }

    /// Opens a store for `verify`: a damaged layout file (in a folder that holds layout 1's folders) and
    /// store folders that are links or files are returned for reporting instead of refused. Nothing is
    /// created through a link.
    pub fn open_for_verify(root: &Path) -> Result<(LocalStore, Vec<Damaged>)> {
        Self::open_with(root, Mode::Inspect)
    }

    fn open_with(root: &Path, mode: Mode) -> Result<(LocalStore, Vec<Damaged>)> {
        let layout = root.join("layout");
        let base = root.join("v1");
        let mut found = Vec::new();
        let mut write_layout = false;
        let mut slip = false;
        match read_layout(&layout)? {
            LayoutState::Good => {}
            LayoutState::Slip => slip = true,
            LayoutState::Other(text) => {
                return Err(Error::Lookup {
                    message: format!(
                        "{} is a store of layout \"{text}\", which this mlpipe (layout {LAYOUT_VERSION}) cannot read",
                        root.display(),
                    ),
                    hint: Some("use the mlpipe version that wrote it, or point --store at another folder".into()),
                });
            }
            LayoutState::Damaged(what) => {
                let is_store = fs::symlink_metadata(&base).is_ok_and(|m| m.file_type().is_dir());
                let what = format!("{what}, not \"mlpipe-store 1\"");
                if mode == Mode::Strict || !is_store {
                    let hint = if is_store {
                        format!(
                            "the folder holds a v1 store: `mlpipe verify --repair --store {}` writes its layout file again",
                            root.display()
                        )
                    } else {
                        "point --store (or MLPIPE_STORE) at an mlpipe store".into()
                    };
                    return Err(Error::Lookup {
                        message: format!(
                            "the store {} cannot be read: its layout file {} {what}",
                            root.display(),
                            layout.display()
                        ),
                        hint: Some(hint),
                    });
                }
                found.push(Damaged {
                    rel: "layout".into(),
                    path: layout.clone(),
                    what,
                    key: None,
                    remedy: Remedy::RewriteLayout,
                });
            }
            LayoutState::Missing => {
                // Another process may be creating the store right now: only our own entries are allowed.
                let foreign = root.exists()
                    && fs::read_dir(root)
                        .map_err(io("read", root))?
                        .filter_map(std::result::Result::ok)
                        .any(|e| e.file_name() != "v1" && e.file_name() != "layout");
                if foreign {
                    return Err(Error::Lookup {
                        message: format!("{} exists, is not empty and is not an mlpipe store", root.display()),
                        hint: Some("point --store (or MLPIPE_STORE) at an empty or mlpipe-created folder".into()),
                    });
                }
                fs::create_dir_all(root).map_err(io("create store", root))?;
                write_layout = true;
            }
        }
        for rel in FOLDERS {
            let path = if rel.is_empty() { base.clone() } else { base.join(rel) };
            match ensure_folder(&path) {
                Ok(()) => {}
                Err(FolderError::Io(e)) => return Err(Error::io("create store folder", path, e)),
                Err(FolderError::Not(what)) => {
                    let d = Damaged {
                        rel: if rel.is_empty() {
                            "v1".into()
                        } else {
                            format!("v1/{rel}")
                        },
                        path,
                        what: format!("is {what}, not a folder"),
                        key: None,
                        remedy: if rel.is_empty() {
                            Remedy::ByHand
                        } else {
                            Remedy::MoveAsideAndMakeFolder
                        },
                    };
                    // Without a real v1 there is nothing to inspect.
                    if mode == Mode::Strict || rel.is_empty() {
                        return Err(folder_error(&d));
                    }
                    found.push(d);
                }
            }
        }
        let store = LocalStore {
            root: root.to_path_buf(),
            base,
        };
        let tmp_ok = !found.iter().any(|d| d.rel == "v1/tmp");
        if write_layout {
            write_atomic(&store.tmp(), &layout, LAYOUT_LINE.as_bytes())?;
        } else if slip && tmp_ok {
            // A repair, not a need: a read-only store is still read.
            let _ = write_atomic(&store.tmp(), &layout, LAYOUT_LINE.as_bytes());
        }
        Ok((store, found))
    }

    /// Makes sure the two-character folder an object or stage-key ref goes in is a real folder (creating
    /// it when missing), so nothing is written or removed through a link.
    pub(super) fn ensure_prefix_folder(&self, file: &Path) -> Result<()> {
        let Some(dir) = file.parent() else {
            return Err(Error::internal(format!("{} has no folder", file.display())));
        };
        match ensure_folder(dir) {
            Ok(()) => Ok(()),
            Err(FolderError::Io(e)) => Err(Error::io("create folder", dir, e)),
            Err(FolderError::Not(what)) => Err(folder_error(&Damaged {
                rel: self.rel(dir),
                path: dir.to_path_buf(),
                what: format!("is {what}, not a folder"),
                key: None,
                remedy: Remedy::MoveAside,
            })),
        }
    }

    /// Writes the layout file again (after `verify` found it damaged), moving a folder or link at its name
    /// aside first.
    pub fn rewrite_layout(&self) -> Result<()> {
        let layout = self.root.join("layout");
        if let Ok(m) = fs::symlink_metadata(&layout)
            && m.file_type().is_dir()
        {
            self.quarantine(&layout)?;
        }
        write_atomic(&self.tmp(), &layout, LAYOUT_LINE.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::link;

    #[test]
    fn refuses_a_folder_that_is_not_a_store() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("precious.txt"), "data").unwrap();
        assert!(LocalStore::open(dir.path()).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn a_linked_store_folder_is_refused_by_open_and_reported_by_open_for_verify() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("s");
        LocalStore::open(&root).unwrap();
        let outside = dir.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::remove_dir(root.join("v1/tmp")).unwrap();
        link(&outside, &root.join("v1/tmp"));
        let Err(err) = LocalStore::open(&root) else {
            panic!("a linked v1/tmp was accepted")
        };
        assert_eq!(
            err.to_string(),
            format!(
                "store folder {} is a symbolic link to {}, not a folder; the store's folders must be real folders inside it",
                root.join("v1/tmp").display(),
                outside.display()
            )
        );
        assert_eq!(
            err.hint().unwrap(),
            "`mlpipe verify` lists every link and misplaced entry in the store; `mlpipe verify --repair` moves them \
             aside to v1/quarantine/ and puts real folders in their place (what a link points at is left untouched)"
        );
        let (store, found) = LocalStore::open_for_verify(&root).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(
            (found[0].rel.as_str(), found[0].remedy),
            ("v1/tmp", Remedy::MoveAsideAndMakeFolder)
        );
        let moved = store.quarantine(&found[0].path).unwrap();
        store.make_folder(&found[0].path).unwrap();
        assert_eq!(moved, root.join("v1/quarantine/tmp"));
        assert_eq!(fs::read_link(&moved).unwrap(), outside);
        LocalStore::open(&root).unwrap();
    }

    #[test]
    fn a_layout_file_with_a_small_slip_is_accepted_and_written_again() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("s");
        LocalStore::open(&root).unwrap();
        for slip in [
            "mlpipe-store 1",
            "mlpipe-store 1\r\n",
            "mlpipe-store 1  \n\n",
            "\u{feff}mlpipe-store  1\n",
        ] {
            fs::write(root.join("layout"), slip).unwrap();
            LocalStore::open(&root).unwrap();
            assert_eq!(
                fs::read_to_string(root.join("layout")).unwrap(),
                LAYOUT_LINE,
                "{slip:?}"
            );
        }
    }

    #[test]
    fn an_unreadable_layout_file_names_the_command_that_repairs_it() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("s");
        LocalStore::open(&root).unwrap();
        fs::write(root.join("layout"), "mlpipe-st\u{1}re 1\n").unwrap();
        let Err(err) = LocalStore::open(&root) else {
            panic!("a damaged layout file was accepted")
        };
        assert_eq!(
            err.to_string(),
            format!(
                "the store {} cannot be read: its layout file {} holds \"mlpipe-st\\u{{1}}re 1\\n\", not \"mlpipe-store 1\"",
                root.display(),
                root.join("layout").display()
            )
        );
        assert_eq!(
            err.hint().unwrap(),
            format!(
                "the folder holds a v1 store: `mlpipe verify --repair --store {}` writes its layout file again",
                root.display()
            )
        );
        let (store, found) = LocalStore::open_for_verify(&root).unwrap();
        assert_eq!(found[0].remedy, Remedy::RewriteLayout);
        store.rewrite_layout().unwrap();
        LocalStore::open(&root).unwrap();
        // Another version is not a slip.
        fs::write(root.join("layout"), "mlpipe-store 2\n").unwrap();
        assert!(LocalStore::open_for_verify(&root).is_err());
    }
}
