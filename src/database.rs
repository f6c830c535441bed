//! Database connections (SQLite embedded, PostgreSQL over the network or a Unix socket) and the
//! prediction-table writer.
//!
//! Credentials come from the URL, the environment (`PGPASSWORD`, `PGUSER`, `PGHOST`, `PGPORT`,
//! `PGDATABASE`) or the password file (`passfile=`, `PGPASSFILE`, else `~/.pgpass`), as libpq does. A
//! PostgreSQL URL is parsed ([`crate::dburl::PgUrl`]) and the password is cut out where the parse puts it: what is
//! stored is [`Database::without_password`], what is shown is [`Database::redacted`]; a URL readers
//! would split differently is refused before anything connects.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::error::{Error, Result};

use crate::dburl as url;
pub use crate::dburl::{PgUrl, mask_passwords, redact_url, strip_password};

#[derive(Clone)]
pub enum Database {
    Sqlite(PathBuf),
    /// A `postgres://` / `postgresql://` URL as written, checked by [`Database::parse`] to parse.
    Postgres(String),
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Database {
    /// `sqlite:PATH`, `postgres://…` / `postgresql://…`; anything else is not a database (`None`). A
    /// PostgreSQL URL that does not parse, a URL of another scheme and a libpq key/value string are
    /// errors that never repeat the text (it may hold a password).
    pub fn parse(text: &str) -> Result<Option<Database>> {
        if let Some(path) = text.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(Error::data("sqlite: needs a file path, as sqlite:predictions.db"));
            }
            return Ok(Some(Database::Sqlite(PathBuf::from(path))));
        }
        if url::is_postgres_url(text) {
            PgUrl::parse(text)?;
            return Ok(Some(Database::Postgres(text.to_string())));
        }
        if let Some(scheme) = url::url_scheme(text) {
            return Err(Error::data(format!(
                "a {scheme}:// URL names no database mlpipe can use (the rest of it is not shown: it may hold \
                 a password)"
            ))
            .with_hint("name a database as sqlite:PATH or postgres://user@host:5432/dbname, or a file by its path"));
        }
        if url::looks_like_keyword_value(text) {
            return Err(Error::data(
                "a libpq key/value connection string (host=… dbname=…) is not accepted here (it is not shown: \
                 it may hold a password)",
            )
            .with_hint(
                "write it as a URL: postgres://user@host:5432/dbname?sslmode=disable, with the password \
                 percent-encoded or, better, in PGPASSWORD or ~/.pgpass",
            ));
        }
        Ok(None)
    }

    /// The database named without its password (`***` where it was): for messages and the terminal.
    pub fn redacted(&self) -> String {
        match self {
            Database::Sqlite(p) => format!("sqlite:{}", p.display()),
            Database::Postgres(url) => redact_url(url),
        }
    }

    /// The database as written, its password left out: what may be stored. Unchanged when it has none.
    pub fn without_password(&self) -> String {
        match self {
            Database::Sqlite(p) => format!("sqlite:{}", p.display()),
            Database::Postgres(url) => strip_password(url),
        }
    }
}

/// Deserialises a stored source text through [`strip_password`]: a record written before passwords were
/// cut out by parsing never hands one on.
pub fn deserialize_stored_source<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    let text = <String as serde::Deserialize>::deserialize(d)?;
    Ok(strip_password(&text))
}

/// Table names are plain identifiers (optionally `schema.table`), so they can be quoted safely.
pub fn check_table_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.split('.').count() <= 2
        && name.split('.').all(|part| {
            !part.is_empty()
                && part.len() <= 63
                && part.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
    if ok {
        Ok(())
    } else {
        // A URL pasted in the wrong field may hold a password: shown masked.
        let shown = if name.contains("://") {
            crate::dburl::redact_url(name)
        } else {
            name.to_string()
        };
        Err(Error::data(format!("\"{shown}\" is not a usable table name"))
            .with_hint("use letters, digits and underscores (optionally schema.table), starting with a letter"))
    }
}

pub fn quote_ident(name: &str) -> String {
    name.split('.')
        .map(|p| format!("\"{}\"", p.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(".")
}

pub fn open_sqlite(path: &Path) -> Result<rusqlite::Connection> {
    open_sqlite_with(path, rusqlite::OpenFlags::empty())
}

/// The name SQLite is given for a database at `path`: always a plain file name, never a URI. The bundled
/// SQLite is built with `SQLITE_USE_URI`, so a name starting with `file:` would be read as a URI
/// (`sqlite:file:artifacts/ledger.sqlite` would open the store's ledger) whatever the open flags say;
/// such a relative name is given as `./file:…`, which SQLite reads as the path it is.
pub fn plain_sqlite_path(path: &Path) -> std::borrow::Cow<'_, Path> {
    if path.as_os_str().as_encoded_bytes().starts_with(b"file:") {
        std::borrow::Cow::Owned(Path::new(".").join(path))
    } else {
        std::borrow::Cow::Borrowed(path)
    }
}

/// Opens (creating if needed) the SQLite database at `path` as a plain path (never a URI, see
/// [`plain_sqlite_path`]), with `extra` open flags (`SQLITE_OPEN_NOFOLLOW` for the store's ledger).
pub fn open_sqlite_with(path: &Path, extra: rusqlite::OpenFlags) -> Result<rusqlite::Connection> {
    use rusqlite::OpenFlags;
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create the folder of", dir, e))?;
    }
    let flags =
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX | extra;
    let conn =
        rusqlite::Connection::open_with_flags(plain_sqlite_path(path), flags).map_err(|e| sqlite_error(path, &e))?;
    conn.busy_timeout(std::time::Duration::from_secs(30))
        .map_err(|e| sqlite_error(path, &e))?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(|e| sqlite_error(path, &e))?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(|e| sqlite_error(path, &e))?;
    Ok(conn)
}

pub fn sqlite_error(path: &Path, e: &rusqlite::Error) -> Error {
    Error::data(format!("SQLite database {}: {e}", path.display()))
        .with_hint("check that the path is a writable SQLite file and not locked by another program")
}

/// Connects to PostgreSQL, filling what the URL leaves out from the environment and the password file.
/// The URL is parsed here (as libpq does), never by the driver's own, looser URL reader.
pub fn connect_postgres(url: &str) -> Result<postgres::Client> {
    let parsed = PgUrl::parse(url)?;
    let redacted = parsed.redacted();
    let mut config = postgres::Config::from_str(&parsed.keyword_value_string()).map_err(|e| {
        // The driver names the option at fault, never its value.
        Error::data(format!("{redacted} is not a usable PostgreSQL connection: {e}"))
            .with_hint("write it as postgres://user@host:port/database (password from PGPASSWORD or ~/.pgpass)")
    })?;
    if config.get_hosts().is_empty() {
        let host = std::env::var("PGHOST").unwrap_or_else(|_| "/var/run/postgresql".into());
        config.host(&host);
    }
    if config.get_ports().is_empty()
        && let Some(port) = std::env::var("PGPORT").ok().and_then(|p| p.parse().ok())
    {
        config.port(port);
    }
    if config.get_user().is_none() {
        let user = std::env::var("PGUSER")
            .or_else(|_| std::env::var("USER"))
            .unwrap_or_else(|_| "postgres".into());
        config.user(&user);
    }
    if config.get_dbname().is_none()
        && let Ok(db) = std::env::var("PGDATABASE")
    {
        config.dbname(&db);
    }
    if config.get_password().is_none() {
        if let Ok(pw) = std::env::var("PGPASSWORD") {
            config.password(pw);
        } else if let Some(pw) = pgpass_password(&config, parsed.get("passfile")) {
            config.password(pw);
        }
    }
    config.connect_timeout(std::time::Duration::from_secs(10));
    config.connect(postgres::NoTls).map_err(|e| {
        // The driver's message never contains the password; the URL is shown redacted. Its Display is
        // only "db error" for what the server said: show the server's words, or the I/O cause.
        let detail = match (e.as_db_error(), std::error::Error::source(&e)) {
            (Some(db), _) => db.message().to_string(),
            (None, Some(cause)) => format!("{e}: {cause}"),
            (None, None) => e.to_string(),
        };
        Error::data(format!("cannot connect to PostgreSQL at {redacted}: {detail}"))
            .with_hint("check that the server is running and reachable, and the user, database and password")
    })
}

/// The password for this connection from the libpq password file (`host:port:db:user:password`).
fn pgpass_password(config: &postgres::Config, passfile: Option<&str>) -> Option<String> {
    let path = passfile
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("PGPASSFILE").map(PathBuf::from))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pgpass")))?;
    let text = std::fs::read_to_string(path).ok()?;
    let host = match config.get_hosts().first()? {
        postgres::config::Host::Tcp(h) => h.clone(),
        postgres::config::Host::Unix(_) => "localhost".to_string(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432).to_string();
    let db = config.get_dbname().unwrap_or(config.get_user().unwrap_or_default());
    let user = config.get_user().unwrap_or_default();
    let want = [host.as_str(), port.as_str(), db, user];
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields = split_pgpass(line);
        if fields.len() != 5 {
            continue;
        }
        if fields[..4].iter().zip(want).all(|(f, w)| f == "*" || f == w) {
            return Some(fields[4].clone());
        }
    }
    None
}

fn split_pgpass(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next()
                    && let Some(last) = fields.last_mut()
                {
                    last.push(n);
                }
            }
            ':' => fields.push(String::new()),
            c => {
                if let Some(last) = fields.last_mut() {
                    last.push(c);
                }
            }
        }
    }
    fields
}

pub fn postgres_error(db: &str, what: &str, e: &postgres::Error) -> Error {
    let detail = e
        .as_db_error()
        .map_or_else(|| e.to_string(), |d| d.message().to_string());
    Error::data(format!("PostgreSQL {db}: {what}: {detail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_survive_redaction() {
        assert_eq!(
            redact_url("postgres://ann:s3cret@db:5432/x"),
            "postgres://ann:***@db:5432/x"
        );
        assert_eq!(redact_url("postgres://ann@db/x"), "postgres://ann@db/x");
        assert_eq!(
            redact_url("postgres://db/x?user=ann&password=s3cret&sslmode=disable"),
            "postgres://db/x?user=ann&password=***&sslmode=disable"
        );
    }

    #[test]
    fn stored_urls_carry_no_password() {
        assert_eq!(
            strip_password("postgres://ann:s3cret@db:5432/x"),
            "postgres://ann@db:5432/x"
        );
        assert_eq!(
            strip_password("postgres://db/x?password=s3cret&user=ann"),
            "postgres://db/x?user=ann"
        );
        assert_eq!(
            strip_password("postgres://db/x?user=ann&password=s3cret"),
            "postgres://db/x?user=ann"
        );
        assert_eq!(strip_password("sqlite:a.db"), "sqlite:a.db");
    }

    #[test]
    fn another_scheme_or_a_key_value_string_is_refused_without_being_shown() {
        for (text, message) in [
            (
                "mysql://etl:S3cret@h/db",
                "a mysql:// URL names no database mlpipe can use (the rest of it is not shown: it may hold a password)",
            ),
            (
                "postgress://etl:S3cret@h/db",
                "a postgress:// URL names no database mlpipe can use (the rest of it is not shown: it may hold a password)",
            ),
            (
                "host=db user=etl password=S3cret",
                "a libpq key/value connection string (host=… dbname=…) is not accepted here (it is not shown: it may \
                 hold a password)",
            ),
        ] {
            let e = Database::parse(text).err().unwrap_or_else(|| panic!("{text} parsed"));
            assert_eq!(e.to_string(), message);
        }
        assert!(matches!(Database::parse("data/train.csv"), Ok(None)));
        assert!(matches!(
            Database::parse("sqlite://a.db"),
            Ok(Some(Database::Sqlite(_)))
        ));
        let db = Database::parse("postgres://etl:S3c%2Fret%3Fx@127.0.0.1:5432/db")
            .unwrap()
            .unwrap();
        assert_eq!(db.redacted(), "postgres://etl:***@127.0.0.1:5432/db");
        assert_eq!(db.without_password(), "postgres://etl@127.0.0.1:5432/db");
        assert_eq!(format!("{db:?}"), "postgres://etl:***@127.0.0.1:5432/db");
        let e = Database::parse("postgres://etl:S3c/ret?x@127.0.0.1:5432/db")
            .err()
            .unwrap();
        assert!(e.to_string().starts_with("the PostgreSQL URL is ambiguous"), "{e}");
        assert!(e.hint().unwrap().contains("'/' as %2F, '?' as %3F"), "{e}");
    }

    #[test]
    fn stored_source_texts_never_keep_a_password() {
        // A record written before the URL was parsed may hold a password the old masking missed.
        for (stored, read) in [
            (
                "postgres://etl:S3c/ret?x@127.0.0.1:5432/db",
                "postgres://(not shown: the URL does not parse)",
            ),
            (
                "postgres://etl:***@127.0.0.1:5432/db",
                "postgres://etl@127.0.0.1:5432/db",
            ),
            ("data/train.csv", "data/train.csv"),
            ("", ""),
        ] {
            let json = serde_json::to_string(stored).unwrap();
            let mut d = serde_json::Deserializer::from_str(&json);
            assert_eq!(deserialize_stored_source(&mut d).unwrap(), read);
        }
    }

    #[test]
    fn table_names_are_identifiers() {
        assert!(check_table_name("predictions").is_ok());
        assert!(check_table_name("ml.predictions_2026").is_ok());
        for bad in ["", "1x", "a;drop table b", "a.b.c", "a b", "x\""] {
            assert!(check_table_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pgpass_fields_unescape() {
        assert_eq!(split_pgpass(r"h:5432:*:u:pa\:ss"), vec!["h", "5432", "*", "u", "pa:ss"]);
    }

    #[test]
    fn a_sqlite_path_starting_with_file_colon_is_a_plain_path_not_a_uri() {
        assert_eq!(
            plain_sqlite_path(Path::new("file:artifacts/ledger.sqlite")).as_ref(),
            Path::new("./file:artifacts/ledger.sqlite")
        );
        assert_eq!(plain_sqlite_path(Path::new("out.db")).as_ref(), Path::new("out.db"));
        // Opened for real: the database lands at the plain path, in a folder named `file:…`.
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("file:a").join("x.db");
        let conn = open_sqlite(&plain).unwrap();
        conn.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
        drop(conn);
        assert!(plain.is_file());
    }
}
