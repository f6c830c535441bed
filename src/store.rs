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

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::digest::Id;
use crate::error::{Error, Result};

pub const LAYOUT_VERSION: u32 = 1;
const LAYOUT_LINE: &str = "mlpipe-store 1\n";

/// Temp files (in `v1/tmp`, and beside an output written through [`write_atomic`]) are named
/// `<TEMP_PREFIX><file name>.<random>`; see [`temp_prefix_for`].
pub const TEMP_PREFIX: &str = ".mlpipe-tmp-";

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

/// The folders of layout 1, relative to `v1/`, parents first ("" is `v1` itself).
const FOLDERS: [&str; 7] = [
    "",
    "objects",
    "refs",
    "refs/keys",
    "refs/runs",
    "refs/predictions",
    "tmp",
];

/// A ref file holds 64 hex characters and a newline; anything much longer is not a ref.
const REF_READ_LIMIT: u64 = 256;

/// The namespaces of refs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RefKind {
    StageKey,
    Run,
    Prediction,
}

impl RefKind {
    fn dir(self) -> &'static str {
        match self {
            RefKind::StageKey => "keys",
            RefKind::Run => "runs",
            RefKind::Prediction => "predictions",
        }
    }

    /// How messages name a ref of this kind.
    pub fn label(self) -> &'static str {
        match self {
            RefKind::StageKey => "stage-key ref",
            RefKind::Run => "run ref",
            RefKind::Prediction => "prediction ref",
        }
    }

    /// What to do about a damaged ref of this kind.
    fn repair_hint(self) -> &'static str {
        match self {
            RefKind::StageKey => {
                "`mlpipe run` recomputes the stage and writes its ref again; `mlpipe verify --repair` moves \
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

/// The start of the name of every temp file written for `dest`: [`TEMP_PREFIX`], then `dest`'s file name
/// (at most 64 characters of it), then a dot; a random suffix follows.
pub fn temp_prefix_for(dest: &Path) -> String {
    let name = dest.file_name().map_or_else(|| "x".into(), |f| f.to_string_lossy());
    let short: String = name.chars().take(64).collect();
    format!("{TEMP_PREFIX}{short}.")
}

/// Creates a temp file in `dir` for `dest`: an unpredictable name, created exclusively (`O_CREAT|O_EXCL`:
/// a file or link already at that name makes it pick another, and no link is ever followed), readable as
/// a file created by `File::create` would be. It removes itself unless persisted.
fn temp_file_for(dir: &Path, dest: &Path) -> Result<tempfile::NamedTempFile> {
    let prefix = temp_prefix_for(dest);
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).rand_bytes(12);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // Subject to the umask, as `File::create` is (tempfile's default is owner-only).
        builder.permissions(fs::Permissions::from_mode(0o666));
    }
    let tmp = builder.tempfile_in(dir).map_err(io("create a temp file in", dir))?;
    // Held until the file is renamed or removed (best effort: a file system without locks still
    // writes). A sweep (`tables::sweep_stale_temps`) tells a live writer's temp file from the one a
    // killed writer left by whether it can take this lock.
    let _ = tmp.as_file().lock();
    Ok(tmp)
}

/// Writes `bytes` to `dest` atomically: a temp file in `tmp_dir` (unpredictable name, created
/// exclusively), fsync, rename over `dest` (a link at `dest` is replaced, never followed), fsync the folder.
pub fn write_atomic(tmp_dir: &Path, dest: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = temp_file_for(tmp_dir, dest)?;
    let path = tmp.path().to_path_buf();
    tmp.write_all(bytes).map_err(io("write", &path))?;
    tmp.as_file().sync_all().map_err(io("sync", &path))?;
    let parent = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(io("create folder", parent))?;
    // On failure the temp file comes back inside the error and is removed when it drops.
    tmp.persist(dest).map_err(|e| Error::io("rename into", dest, e.error))?;
    // Make the rename itself durable.
    File::open(parent)
        .and_then(|d| d.sync_all())
        .map_err(io("sync folder", parent))?;
    Ok(())
}

/// An entry looked at without following links.
enum Plain {
    Missing,
    File(File),
    /// Not a plain file: what it is ("a folder", "a symbolic link to …").
    Not(String),
}

/// Describes an entry that is not what the layout expects.
fn describe(path: &Path, file_type: fs::FileType) -> String {
    if file_type.is_symlink() {
        match fs::read_link(path) {
            Ok(target) => format!("a symbolic link to {}", target.display()),
            Err(_) => "a symbolic link".into(),
        }
    } else if file_type.is_dir() {
        "a folder".into()
    } else if file_type.is_file() {
        "a file".into()
    } else {
        "a special file (FIFO, socket or device)".into()
    }
}

/// Opens `path` only if it is a plain file: a link, folder, FIFO or device is refused without being
/// opened (a FIFO would block), and the file opened must be the entry looked at (a link swapped in between
/// the look and the open is refused; an entry replaced by a rename is looked at again).
fn open_plain(path: &Path) -> std::io::Result<Plain> {
    for _ in 0..3 {
        let meta = match fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Plain::Missing),
            Err(e) => return Err(e),
        };
        if !meta.file_type().is_file() {
            return Ok(Plain::Not(describe(path, meta.file_type())));
        }
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Plain::Missing),
            Err(e) => return Err(e),
        };
        if same_entry(&meta, &file.metadata()?) {
            return Ok(Plain::File(file));
        }
    }
    Ok(Plain::Not("an entry that kept changing while it was read".into()))
}

#[cfg(unix)]
fn same_entry(looked: &fs::Metadata, opened: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    looked.dev() == opened.dev() && looked.ino() == opened.ino()
}

#[cfg(not(unix))]
fn same_entry(_looked: &fs::Metadata, opened: &fs::Metadata) -> bool {
    opened.is_file()
}

/// Whether `path` is a plain file (a link to one is not).
fn is_plain_file(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_file())
}

/// Reads at most `limit` bytes of a plain file; `Ok(None)` when it is missing.
fn read_plain_limited(path: &Path, limit: u64) -> std::result::Result<Option<(Vec<u8>, u64)>, PlainError> {
    match open_plain(path).map_err(PlainError::Io)? {
        Plain::Missing => Ok(None),
        Plain::Not(what) => Err(PlainError::Not(what)),
        Plain::File(f) => {
            let size = f.metadata().map_err(PlainError::Io)?.len();
            let mut bytes = Vec::new();
            f.take(limit).read_to_end(&mut bytes).map_err(PlainError::Io)?;
            Ok(Some((bytes, size)))
        }
    }
}

enum PlainError {
    Io(std::io::Error),
    Not(String),
}

/// Text shown for bytes that should have been an id or a layout line: escaped, at most 40 characters.
fn preview(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let short: String = text.chars().take(40).collect();
    let more = if text.chars().count() > 40 { "…" } else { "" };
    format!("{short:?}{more}")
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

/// Ref and store entries found by [`LocalStore::scan_refs`]: good refs (key, target), sorted by key, and
/// every entry that is not a good ref.
#[derive(Debug, Default)]
pub struct RefScan {
    pub refs: Vec<(Id, Id)>,
    pub damaged: Vec<Damaged>,
}

/// Every object id, and every entry under `v1/objects` that is not an object.
#[derive(Debug, Default)]
pub struct ObjectScan {
    pub ids: Vec<Id>,
    pub damaged: Vec<Damaged>,
}

/// Whether opening a store may tolerate a damaged layout (for `verify`, which reports it).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Strict,
    Inspect,
}

/// Makes sure `path` is a real folder, creating it when missing; `Err(Some(what))` when something else
/// (a link, a file) stands there.
fn ensure_folder(path: &Path) -> std::result::Result<(), FolderError> {
    for _ in 0..2 {
        match fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_dir() => return Ok(()),
            Ok(m) => return Err(FolderError::Not(describe(path, m.file_type()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => match fs::create_dir(path) {
                Ok(()) => return Ok(()),
                // Made by another process meanwhile: look again.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(FolderError::Io(e)),
            },
            Err(e) => return Err(FolderError::Io(e)),
        }
    }
    Err(FolderError::Io(std::io::Error::other("it keeps changing")))
}

enum FolderError {
    Io(std::io::Error),
    Not(String),
}

/// The error a command gives for a store folder that is not a real folder.
fn folder_error(d: &Damaged) -> Error {
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

fn is_hex(name: &str, len: usize) -> bool {
    name.len() == len && name.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
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

    /// Where a ref's file is (it may be missing).
    pub fn ref_file(&self, kind: RefKind, key: &Id) -> PathBuf {
        self.ref_path(kind, key)
    }

    fn ref_path(&self, kind: RefKind, key: &Id) -> PathBuf {
        let hex = key.hex();
        let dir = self.base.join("refs").join(kind.dir());
        if kind == RefKind::StageKey {
            dir.join(&hex[..2]).join(&hex[2..])
        } else {
            dir.join(hex)
        }
    }

    /// Where a store path is, relative to the root, for messages.
    fn rel(&self, path: &Path) -> String {
        path.strip_prefix(&self.root).unwrap_or(path).display().to_string()
    }

    /// Makes sure the two-character folder an object or stage-key ref goes in is a real folder (creating
    /// it when missing), so nothing is written or removed through a link.
    fn ensure_prefix_folder(&self, file: &Path) -> Result<()> {
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
    fn read_object(path: &Path) -> Result<Option<Vec<u8>>> {
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
                let what = if file_type.is_dir() {
                    "is a folder whose name is not two hex characters".to_string()
                } else {
                    format!("is {}, not a folder of objects", describe(&path, file_type))
                };
                out.damaged.push(Damaged {
                    rel: self.rel(&path),
                    path,
                    what,
                    key: None,
                    remedy: Remedy::MoveAside,
                });
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
                    let what = if file_type.is_dir() {
                        "is a folder whose name is not two hex characters".to_string()
                    } else {
                        format!("is {}, not a folder of stage-key refs", describe(&path, file_type))
                    };
                    out.damaged.push(Damaged {
                        rel: self.rel(&path),
                        path,
                        what,
                        key: None,
                        remedy: Remedy::MoveAside,
                    });
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

    /// Entries directly in `v1/`, `v1/refs/` and `v1/tmp/` that are links, or stand where the lock file
    /// belongs without being a plain file. The store folders themselves are checked by
    /// [`LocalStore::open_for_verify`] (and never listed through when they are links); objects and refs by
    /// [`LocalStore::scan_objects`] and [`LocalStore::scan_refs`]; `v1/quarantine/` holds what was moved
    /// aside and is not looked into.
    pub fn scan_layout(&self) -> Result<Vec<Damaged>> {
        let mut out = Vec::new();
        let folders: [(PathBuf, &[&str]); 3] = [
            (self.base.clone(), &["objects", "refs", "tmp"]),
            (self.base.join("refs"), &["keys", "runs", "predictions"]),
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

    /// Finds what a full id or a unique prefix names: a run, a prediction or an object.
    pub fn resolve(&self, text: &str) -> Result<Resolved> {
        let prefix = text.trim().to_ascii_lowercase();
        if prefix.len() < 4 || prefix.len() > 64 || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::Lookup {
                message: format!(
                    "\"{}\" is not a hash or hash prefix",
                    crate::database::mask_passwords(text)
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

/// blake3 of a file, memory-mapped and hashed on all cores for large files.
pub fn hash_file(path: &Path) -> Result<Id> {
    let mut hasher = blake3::Hasher::new();
    hasher.update_mmap_rayon(path).map_err(io("hash", path))?;
    Ok(Id(*hasher.finalize().as_bytes()))
}

/// Reads a ref file without following links: `Ok(None)` when missing, `Err(what is wrong)` when it is not a
/// plain file holding an id.
fn read_ref_at(path: &Path) -> std::result::Result<Option<Id>, String> {
    match read_plain_limited(path, REF_READ_LIMIT + 1) {
        Ok(None) => Ok(None),
        Ok(Some((bytes, size))) => parse_ref(&bytes, size).map(Some),
        Err(PlainError::Not(what)) => Err(format!("is {what}, not a ref file")),
        Err(PlainError::Io(e)) => Err(format!("cannot be read: {e}")),
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

/// A store in memory: scratch space for `reproduce`, so nothing reaches disk before it is verified.
#[derive(Default)]
pub struct MemoryStore {
    objects: Mutex<BTreeMap<Id, Vec<u8>>>,
    refs: Mutex<BTreeMap<(RefKind, Id), Id>>,
}

impl MemoryStore {
    pub fn objects(&self) -> BTreeMap<Id, Vec<u8>> {
        self.objects.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

impl Store for MemoryStore {
    fn put(&self, bytes: &[u8]) -> Result<Id> {
        let id = Id::of_bytes(bytes);
        self.objects
            .lock()
            .map_err(|_| Error::internal("memory store poisoned"))?
            .insert(id, bytes.to_vec());
        Ok(id)
    }

    fn get(&self, id: &Id) -> Result<Vec<u8>> {
        self.objects
            .lock()
            .map_err(|_| Error::internal("memory store poisoned"))?
            .get(id)
            .cloned()
            .ok_or_else(|| Error::internal(format!("object {id} not in scratch store")))
    }

    fn contains(&self, id: &Id) -> Result<bool> {
        Ok(self
            .objects
            .lock()
            .map_err(|_| Error::internal("memory store poisoned"))?
            .contains_key(id))
    }

    fn read_ref(&self, kind: RefKind, key: &Id) -> Result<RefRead> {
        Ok(self
            .refs
            .lock()
            .map_err(|_| Error::internal("memory store poisoned"))?
            .get(&(kind, *key))
            .copied()
            .map_or(RefRead::Missing, RefRead::Target))
    }

    fn set_ref(&self, kind: RefKind, key: &Id, target: &Id) -> Result<()> {
        self.refs
            .lock()
            .map_err(|_| Error::internal("memory store poisoned"))?
            .insert((kind, *key), *target);
        Ok(())
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

    #[test]
    fn refuses_a_folder_that_is_not_a_store() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("precious.txt"), "data").unwrap();
        assert!(LocalStore::open(dir.path()).is_err());
    }

    #[cfg(unix)]
    fn link(target: &Path, at: &Path) {
        std::os::unix::fs::symlink(target, at).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_planted_at_the_temp_name_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(&dir.path().join("s")).unwrap();
        let victim = dir.path().join("victim.txt");
        fs::write(&victim, "precious").unwrap();
        let tmp = store.root().join("v1/tmp");
        // Writers used to name temp files `<pid>-<n>-<file name>`: plant a link at every such name.
        let key = Id::of_bytes(b"run");
        let target = store.put(b"record").unwrap();
        let out = dir.path().join("out.csv");
        for n in 0..2_000 {
            for name in [key.hex(), "out.csv".to_string(), "file".to_string()] {
                link(&victim, &tmp.join(format!("{}-{n}-{name}", std::process::id())));
            }
        }
        store.set_ref(RefKind::Run, &key, &target).unwrap();
        write_atomic(&tmp, &out, b"rows\n").unwrap();
        let source = dir.path().join("data.csv");
        fs::write(&source, "a,b\n1,2\n").unwrap();
        let (id, size) = store.put_file(&source).unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(store.get_ref(RefKind::Run, &key).unwrap(), Some(target));
        assert_eq!(fs::read_to_string(&out).unwrap(), "rows\n");
        assert_eq!((store.get(&id).unwrap(), size), (b"a,b\n1,2\n".to_vec(), 8));
        // Temp files have unpredictable names with a known prefix, and none is left behind.
        let left: Vec<String> = fs::read_dir(&tmp)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .filter(|n| n.starts_with(TEMP_PREFIX))
            .collect();
        assert_eq!(left, Vec::<String>::new());
        assert_eq!(temp_prefix_for(&out), ".mlpipe-tmp-out.csv.");
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

    #[cfg(unix)]
    #[test]
    fn a_fifo_planted_as_a_ref_or_object_does_not_hang_a_reader() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(&dir.path().join("s")).unwrap();
        let id = store.put(b"hello").unwrap();
        let key = Id::of_bytes(b"k");
        for path in [store.object_path(&id), store.ref_file(RefKind::Run, &key)] {
            let _ = fs::remove_file(&path);
            let made = std::process::Command::new("mkfifo").arg(&path).status().unwrap();
            assert!(made.success());
        }
        // Opening a FIFO for reading would block until a writer comes: it is refused unopened.
        assert_eq!(
            store.get(&id).unwrap_err().to_string(),
            format!(
                "store object {} is a special file (FIFO, socket or device), not a plain file",
                store.object_path(&id).display()
            )
        );
        assert_eq!(
            store.get_ref(RefKind::Run, &key).unwrap_err().to_string(),
            format!(
                "the run ref {} is a special file (FIFO, socket or device), not a ref file",
                store.ref_file(RefKind::Run, &key).display()
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
