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
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    assert!(
        root && Path::new("/usr/bin/apt-get").exists(),
        "Chromium is missing: apt-get install chromium"
    );
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    if !apt(&["install", "-y", "-q", "--no-install-recommends", "chromium"]) {
        assert!(apt(&["update", "-q"]), "apt-get update failed");
        assert!(
            apt(&["install", "-y", "-q", "--no-install-recommends", "chromium"]),
            "apt-get install chromium failed"
        );
    }
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
