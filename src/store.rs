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
//! v1/lock                  shared by writers, exclusive for gc
//! ```
//! Every write goes to `tmp/`, is fsynced, then renamed into place (and the folder fsynced), so a reader
//! sees a whole object or none; the same content always lands at the same name, so concurrent writers
//! cannot conflict. Every read re-hashes the bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::digest::Id;
use crate::error::{Error, Result};

pub const LAYOUT_VERSION: u32 = 1;
const LAYOUT_LINE: &str = "mlpipe-store 1\n";

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
}

/// What the executor needs from a store. A shared backend (S3-compatible) implements the same trait.
pub trait Store: Sync {
    /// Stores bytes and returns their content id. Idempotent.
    fn put(&self, bytes: &[u8]) -> Result<Id>;
    /// Reads an object and checks that it still hashes to `id`.
    fn get(&self, id: &Id) -> Result<Vec<u8>>;
    fn contains(&self, id: &Id) -> Result<bool>;
    fn get_ref(&self, kind: RefKind, key: &Id) -> Result<Option<Id>>;
    fn set_ref(&self, kind: RefKind, key: &Id, target: &Id) -> Result<()>;
}

/// A store in a local folder.
pub struct LocalStore {
    root: PathBuf,
    base: PathBuf,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn io<'p>(action: &'static str, path: &'p Path) -> impl FnOnce(std::io::Error) -> Error + 'p {
    move |e| Error::io(action, path, e)
}

/// Writes `bytes` to `dest` atomically: temp file in `tmp`, fsync, rename, fsync the folder.
pub fn write_atomic(tmp_dir: &Path, dest: &Path, bytes: &[u8]) -> Result<()> {
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = tmp_dir.join(format!(
        "{}-{n}-{}",
        std::process::id(),
        dest.file_name().and_then(|f| f.to_str()).unwrap_or("x")
    ));
    let result = (|| {
        let mut f = File::create(&tmp).map_err(io("create", &tmp))?;
        f.write_all(bytes).map_err(io("write", &tmp))?;
        f.sync_all().map_err(io("sync", &tmp))?;
        drop(f);
        let parent = dest
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        fs::create_dir_all(parent).map_err(io("create folder", parent))?;
        fs::rename(&tmp, dest).map_err(io("rename into", dest))?;
        // Make the rename itself durable.
        File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(io("sync folder", parent))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

impl LocalStore {
    /// Opens (creating if needed) a store folder.
    pub fn open(root: &Path) -> Result<LocalStore> {
        let layout = root.join("layout");
        match fs::read_to_string(&layout) {
            Ok(text) if text == LAYOUT_LINE => {}
            Ok(text) => {
                return Err(Error::Lookup {
                    message: format!(
                        "{} is a store of layout \"{}\", which this mlpipe (layout {LAYOUT_VERSION}) cannot read",
                        root.display(),
                        text.trim()
                    ),
                    hint: Some("use the mlpipe version that wrote it, or point --store at another folder".into()),
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
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
                let base = root.join("v1");
                fs::create_dir_all(base.join("tmp")).map_err(io("create store", root))?;
                write_atomic(&base.join("tmp"), &layout, LAYOUT_LINE.as_bytes())?;
            }
            Err(e) => return Err(Error::io("read", layout, e)),
        }
        let base = root.join("v1");
        for d in ["objects", "refs/keys", "refs/runs", "refs/predictions", "tmp"] {
            fs::create_dir_all(base.join(d)).map_err(io("create store folder", root))?;
        }
        Ok(LocalStore {
            root: root.to_path_buf(),
            base,
        })
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

    fn ref_path(&self, kind: RefKind, key: &Id) -> PathBuf {
        let hex = key.hex();
        let dir = self.base.join("refs").join(kind.dir());
        if kind == RefKind::StageKey {
            dir.join(&hex[..2]).join(&hex[2..])
        } else {
            dir.join(hex)
        }
    }

    /// Takes the store lock: shared for anything that writes objects, exclusive for gc. Held until dropped.
    pub fn lock(&self, exclusive: bool) -> Result<File> {
        let path = self.base.join("lock");
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io("open", &path))?;
        if exclusive { f.lock() } else { f.lock_shared() }.map_err(io("lock", &path))?;
        Ok(f)
    }

    /// Stores bytes whose id the caller already computed (large snapshots are hashed once).
    pub fn put_with_id(&self, id: &Id, bytes: &[u8]) -> Result<()> {
        let path = self.object_path(id);
        if let Ok(existing) = fs::read(&path)
            && Id::of_bytes(&existing) == *id
        {
            return Ok(());
        }
        // A damaged copy: replace it with the good bytes we hold.
        write_atomic(&self.tmp(), &path, bytes)
    }

    /// Stores a file without reading it into memory: copy into `tmp/`, hash the copy (memory-mapped, on
    /// all cores; the digest does not depend on the thread count), fsync, rename. The id is computed
    /// from the bytes that were stored, so a file changing underneath cannot produce a lying object.
    pub fn put_file(&self, source: &Path) -> Result<(Id, u64)> {
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = self.tmp().join(format!("{}-{n}-file", std::process::id()));
        let result = (|| {
            let size = fs::copy(source, &tmp).map_err(io("copy", source))?;
            let id = hash_file(&tmp)?;
            File::open(&tmp).and_then(|f| f.sync_all()).map_err(io("sync", &tmp))?;
            let dest = self.object_path(&id);
            if dest.is_file() && hash_file(&dest)? == id {
                let _ = fs::remove_file(&tmp);
                return Ok((id, size));
            }
            let parent = dest.parent().unwrap_or(Path::new("."));
            fs::create_dir_all(parent).map_err(io("create folder", parent))?;
            fs::rename(&tmp, &dest).map_err(io("rename into", &dest))?;
            File::open(parent)
                .and_then(|d| d.sync_all())
                .map_err(io("sync folder", parent))?;
            Ok((id, size))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Every object id in the store, sorted.
    pub fn object_ids(&self) -> Result<Vec<Id>> {
        let mut out = Vec::new();
        let dir = self.base.join("objects");
        for prefix in fs::read_dir(&dir).map_err(io("list", &dir))? {
            let prefix = prefix.map_err(io("list", &dir))?;
            let p = prefix.file_name().to_string_lossy().to_string();
            for entry in fs::read_dir(prefix.path()).map_err(io("list", &dir))? {
                let entry = entry.map_err(io("list", &dir))?;
                if let Ok(id) = format!("{p}{}", entry.file_name().to_string_lossy()).parse::<Id>() {
                    out.push(id);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Every ref of a kind, as (key, target), sorted by key.
    pub fn refs(&self, kind: RefKind) -> Result<Vec<(Id, Id)>> {
        let dir = self.base.join("refs").join(kind.dir());
        let mut names = Vec::new();
        let read = |d: &Path, prefix: &str, names: &mut Vec<(String, PathBuf)>| -> Result<()> {
            for e in fs::read_dir(d).map_err(io("list", d))? {
                let e = e.map_err(io("list", d))?;
                names.push((format!("{prefix}{}", e.file_name().to_string_lossy()), e.path()));
            }
            Ok(())
        };
        if kind == RefKind::StageKey {
            for e in fs::read_dir(&dir).map_err(io("list", &dir))? {
                let e = e.map_err(io("list", &dir))?;
                read(&e.path(), &e.file_name().to_string_lossy(), &mut names)?;
            }
        } else {
            read(&dir, "", &mut names)?;
        }
        let mut out = Vec::new();
        for (name, path) in names {
            let Ok(key) = name.parse::<Id>() else {
                continue;
            };
            if let Some(target) = read_ref_file(&path)? {
                out.push((key, target));
            }
        }
        out.sort();
        Ok(out)
    }

    pub fn remove_ref(&self, kind: RefKind, key: &Id) -> Result<()> {
        let p = self.ref_path(kind, key);
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("remove", p, e)),
        }
    }

    pub fn remove_object(&self, id: &Id) -> Result<u64> {
        let p = self.object_path(id);
        let size = fs::metadata(&p).map_or(0, |m| m.len());
        match fs::remove_file(&p) {
            Ok(()) => Ok(size),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(Error::io("remove", p, e)),
        }
    }

    /// Temp files left by interrupted writers (only safe to remove under the exclusive lock).
    pub fn clear_tmp(&self) -> Result<usize> {
        let dir = self.tmp();
        let mut n = 0;
        for e in fs::read_dir(&dir).map_err(io("list", &dir))? {
            let e = e.map_err(io("list", &dir))?;
            if fs::remove_file(e.path()).is_ok() {
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
                message: format!("\"{text}\" is not a hash or hash prefix"),
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

fn read_ref_file(path: &Path) -> Result<Option<Id>> {
    match fs::read_to_string(path) {
        Ok(text) => text.trim().parse::<Id>().map(Some).map_err(|_| Error::Corrupt {
            id: path
                .file_name()
                .map(|f| f.to_string_lossy().to_string())
                .unwrap_or_default(),
            actual: format!("a ref holding \"{}\"", text.trim()),
            path: path.to_path_buf(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", path, e)),
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
        let bytes = fs::read(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::Lookup {
                    message: format!("object {id} is missing from {}", self.root.display()),
                    hint: Some("it was removed or never written; `mlpipe run` recomputes stage outputs and `mlpipe reproduce` restores a run's objects".into()),
                }
            } else {
                Error::io("read", &path, e)
            }
        })?;
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
        Ok(self.object_path(id).is_file())
    }

    fn get_ref(&self, kind: RefKind, key: &Id) -> Result<Option<Id>> {
        read_ref_file(&self.ref_path(kind, key))
    }

    fn set_ref(&self, kind: RefKind, key: &Id, target: &Id) -> Result<()> {
        write_atomic(&self.tmp(), &self.ref_path(kind, key), format!("{target}\n").as_bytes())
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

    fn get_ref(&self, kind: RefKind, key: &Id) -> Result<Option<Id>> {
        Ok(self
            .refs
            .lock()
            .map_err(|_| Error::internal("memory store poisoned"))?
            .get(&(kind, *key))
            .copied())
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
}
