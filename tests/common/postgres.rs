//! A throwaway PostgreSQL server for the tests: a fresh cluster (`initdb`) in a temporary folder,
//! listening only on a Unix socket in that folder, stopped when dropped. When the server binaries are
//! missing and we are root on Debian, they are installed from Debian's `postgresql` package first, so
//! `cargo test` brings up what it needs on a fresh machine.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    as_postgres: bool,
    /// Connection URL for the `postgres` database as the superuser (no password: trust over the socket).
    pub url: String,
}

fn find_bin() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists() && p.join("pg_ctl").exists())
        .collect();
    found.sort();
    found.pop()
}

pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Installs a Debian package (refreshing the package lists once if the first try fails).
pub fn apt_install(package: &str) {
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    if !apt(&["install", "-y", "-q", "--no-install-recommends", package]) {
        assert!(apt(&["update", "-q"]), "apt-get update failed");
        assert!(
            apt(&["install", "-y", "-q", "--no-install-recommends", package]),
            "apt-get install {package} failed"
        );
    }
}

fn install() {
    apt_install("postgresql");
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Postgres {
    pub fn start() -> Postgres {
        let root = is_root();
        let bin = find_bin().unwrap_or_else(|| {
            assert!(
                root,
                "PostgreSQL server binaries are missing: install Debian's `postgresql` package (the tests install it when run as root)"
            );
            install();
            find_bin().expect("postgresql installed, but no /usr/lib/postgresql/*/bin/initdb")
        });
        let dir = tempfile::Builder::new().prefix("mlpipe-pg").tempdir().unwrap();
        let user = if root {
            "root".to_string()
        } else {
            std::env::var("USER").unwrap_or_else(|_| "postgres".into())
        };
        // initdb refuses to run as root: the cluster belongs to the `postgres` user.
        if root {
            run(
                Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir.path()),
                "chown the cluster folder",
            );
        }
        let pg = Postgres {
            url: format!("postgres://{user}@/postgres?host={}", dir.path().display()),
            dir,
            bin,
            as_postgres: root,
        };
        let data = pg.data();
        run(
            &mut pg.command("initdb", &["-D", &data, "-A", "trust", "-U", &user, "--no-sync"]),
            "initdb",
        );
        let opts = format!("-k {} -c listen_addresses='' -c fsync=off", pg.dir.path().display());
        let log = pg.dir.path().join("log").display().to_string();
        run(
            &mut pg.command("pg_ctl", &["-D", &data, "-o", &opts, "-l", &log, "-w", "start"]),
            "pg_ctl start",
        );
        pg
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    fn command(&self, tool: &str, args: &[&str]) -> Command {
        let exe = self.bin.join(tool);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe).args(args);
            c
        } else {
            let mut c = Command::new(exe);
            c.args(args);
            c
        }
    }

    /// Creates a login role that must give its password (scram-sha-256) over the socket, and returns
    /// a URL for it without the password.
    pub fn password_user(&self, user: &str, password: &str) -> String {
        self.psql(&format!(
            "CREATE ROLE {user} LOGIN PASSWORD '{password}'; GRANT pg_read_all_data TO {user}"
        ));
        let hba = self.dir.path().join("data").join("pg_hba.conf");
        let old = std::fs::read_to_string(&hba).unwrap();
        std::fs::write(&hba, format!("local all {user} scram-sha-256\n{old}")).unwrap();
        let data = self.data();
        run(&mut self.command("pg_ctl", &["-D", &data, "reload"]), "pg_ctl reload");
        // The reload is asynchronous: wait until the server asks this user for a password.
        for _ in 0..50 {
            let out = Command::new(self.bin.join("psql"))
                .args([
                    "-X",
                    "-w",
                    "-d",
                    &self.url.replacen("root@", &format!("{user}@"), 1),
                    "-c",
                    "select 1",
                ])
                .env_remove("PGPASSWORD")
                .output()
                .unwrap();
            if !out.status.success() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        self.url.replacen("root@", &format!("{user}@"), 1)
    }

    /// Runs SQL through `psql` and returns its unaligned output.
    pub fn psql(&self, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", &self.url, "-c", sql])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self
            .command("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"])
            .output();
    }
}
