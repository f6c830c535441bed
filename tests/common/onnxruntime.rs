//! A Python with `onnx` and `onnxruntime` from `PyPI` for the export tests: `MLPIPE_PYTHON` when it has
//! them, else a virtual environment made once under the target folder (`python3 -m venv`, then pip).

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

fn has_runtime(python: &str) -> bool {
    Command::new(python)
        .args(["-c", "import onnx, onnxruntime"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The Python to run exported files with.
pub fn python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            if let Ok(p) = std::env::var("MLPIPE_PYTHON")
                && has_runtime(&p)
            {
                return PathBuf::from(p);
            }
            let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("onnx-venv");
            let python = venv.join("bin").join("python");
            if !has_runtime(python.to_str().unwrap()) {
                if !python.exists() {
                    let made = Command::new("python3").args(["-m", "venv"]).arg(&venv).status();
                    if !made.is_ok_and(|s| s.success()) {
                        assert!(
                            super::postgres::is_root() && std::path::Path::new("/usr/bin/apt-get").exists(),
                            "python3 -m venv failed: install python3-venv"
                        );
                        super::postgres::apt_install("python3-venv");
                        let _ = std::fs::remove_dir_all(&venv);
                        assert!(
                            Command::new("python3")
                                .args(["-m", "venv"])
                                .arg(&venv)
                                .status()
                                .unwrap()
                                .success(),
                            "python3 -m venv failed"
                        );
                    }
                }
                let pip = Command::new(&python)
                    .args(["-m", "pip", "install", "--quiet", "onnx", "onnxruntime"])
                    .status()
                    .unwrap();
                assert!(pip.success(), "pip install onnx onnxruntime failed");
            }
            python
        })
        .clone()
}
