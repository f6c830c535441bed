//! Headless Chromium for the report test: Debian's `chromium`, installed when missing and we are root
//! on Debian (as `cargo test` does for PostgreSQL), so the test runs against a real browser.

use std::path::{Path, PathBuf};
use std::process::Command;

fn find() -> Option<PathBuf> {
    [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

/// The browser binary, installing Debian's package first when it is missing.
pub fn binary() -> PathBuf {
    if let Some(found) = find() {
        return found;
    }
    assert!(
        super::postgres::is_root() && Path::new("/usr/bin/apt-get").exists(),
        "Chromium is missing: apt-get install chromium"
    );
    super::postgres::apt_install("chromium");
    find().expect("chromium installed")
}

/// Loads `page` in headless Chromium: the DOM after its scripts ran, and every console message.
pub fn load(page: &Path) -> (String, Vec<String>) {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(binary())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--enable-logging=stderr",
            "--log-level=0",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.canonicalize().unwrap().display()))
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let console = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_string)
        .collect();
    (String::from_utf8_lossy(&out.stdout).to_string(), console)
}
