//! How the store touches files: atomic writes through temp files with unpredictable names, created
//! exclusively, and opens that look at an entry without following links and refuse anything but the plain
//! file looked at.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::Path;

use super::io;
use crate::error::{Error, Result};

/// Temp files (in `v1/tmp`, and beside an output written through [`write_atomic`]) are named
/// `<TEMP_PREFIX><file name>.<random>`; see [`temp_prefix_for`].
pub const TEMP_PREFIX: &str = ".mlpipe-tmp-";

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
pub(super) fn temp_file_for(dir: &Path, dest: &Path) -> Result<tempfile::NamedTempFile> {
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
    refuse_special_destination(dest)?;
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

/// Refuses to replace anything but a regular file (or a link to one): renaming over a device such as
/// `/dev/null`, a FIFO, a socket or a folder — or over a link to one, such as `/dev/stdout` — would break
/// what other programs rely on.
fn refuse_special_destination(dest: &Path) -> Result<()> {
    let Ok(entry) = fs::symlink_metadata(dest) else {
        return Ok(());
    };
    let target = if entry.file_type().is_symlink() {
        match fs::metadata(dest) {
            Ok(m) => m,
            // A dangling link is replaced like a missing file.
            Err(_) => return Ok(()),
        }
    } else {
        entry
    };
    if target.is_file() {
        return Ok(());
    }
    Err(Error::data(format!(
        "{} is {}, not a regular file; mlpipe writes an output as a new file renamed into place, which would \
         replace it",
        dest.display(),
        describe(dest, target.file_type())
    ))
    .with_hint("choose a file path for the output (`-o -` writes a batch's predictions to standard output)"))
}

/// An entry looked at without following links.
pub(super) enum Plain {
    Missing,
    File(File),
    /// Not a plain file: what it is ("a folder", "a symbolic link to …").
    Not(String),
}

/// Describes an entry that is not what the layout expects.
pub(super) fn describe(path: &Path, file_type: fs::FileType) -> String {
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
pub(super) fn open_plain(path: &Path) -> std::io::Result<Plain> {
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
pub(super) fn is_plain_file(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_file())
}

/// Reads at most `limit` bytes of a plain file; `Ok(None)` when it is missing.
pub(super) fn read_plain_limited(path: &Path, limit: u64) -> std::result::Result<Option<(Vec<u8>, u64)>, PlainError> {
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

pub(super) enum PlainError {
    Io(std::io::Error),
    Not(String),
}

/// Makes sure `path` is a real folder, creating it when missing; `Err(Some(what))` when something else
/// (a link, a file) stands there.
pub(super) fn ensure_folder(path: &Path) -> std::result::Result<(), FolderError> {
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

pub(super) enum FolderError {
    Io(std::io::Error),
    Not(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Id;
    use crate::store::tests::link;
    use crate::store::{LocalStore, RefKind, Store};

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
    #[cfg(unix)]
    fn an_output_never_replaces_a_device_a_fifo_a_folder_or_a_link_to_one() {
        use std::os::unix::fs::FileTypeExt;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let fifo = d.join("fifo");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        std::os::unix::fs::symlink("/dev/null", d.join("null")).unwrap();
        std::fs::create_dir(d.join("folder")).unwrap();
        for (name, what) in [
            ("fifo", "a special file (FIFO, socket or device)"),
            ("null", "a special file (FIFO, socket or device)"),
            ("folder", "a folder"),
        ] {
            let dest = d.join(name);
            let err = write_atomic(d, &dest, b"x").unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "{} is {what}, not a regular file; mlpipe writes an output as a new file renamed into place, \
                     which would replace it",
                    dest.display()
                )
            );
        }
        assert!(
            std::fs::symlink_metadata(d.join("null"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
        // A regular file, a link to one, and a dangling link are replaced as before.
        std::fs::write(d.join("plain"), b"old").unwrap();
        std::os::unix::fs::symlink(d.join("plain"), d.join("to-plain")).unwrap();
        std::os::unix::fs::symlink(d.join("nowhere"), d.join("dangling")).unwrap();
        for name in ["plain", "to-plain", "dangling"] {
            write_atomic(d, &d.join(name), b"new").unwrap();
            assert_eq!(std::fs::read(d.join(name)).unwrap(), b"new");
        }
    }
}
