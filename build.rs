//! Records, at build time, what decides numbers besides our own code: the target triple and the
//! versions of the numeric crates (read from Cargo.lock), for run records and stage keys. Compiles
//! the vendored ONNX schema (vendor/onnx/onnx-ml.proto) into Rust types, in Rust (no `protoc`).

use std::fmt::Write;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=vendor/onnx/onnx-ml.proto");
    let schema = protox::compile(["onnx-ml.proto"], ["vendor/onnx"])?;
    prost_build::Config::new().compile_fds(schema)?;
    println!("cargo:rerun-if-changed=Cargo.lock");
    println!("cargo:rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".into());
    println!("cargo:rustc-env=MLPIPE_TARGET={target}");
    let lock = std::fs::read_to_string("Cargo.lock").unwrap_or_default();
    let mut versions = String::new();
    for krate in [
        "blake3",
        "csv",
        "linfa",
        "linfa-linear",
        "matrixmultiply",
        "ndarray",
        "rand_chacha",
        "serde_json",
    ] {
        let needle = format!("name = \"{krate}\"\nversion = \"");
        if let Some(pos) = lock.find(&needle) {
            let rest = &lock[pos + needle.len()..];
            let version = rest.split('"').next().unwrap_or("?");
            let _ = write!(versions, "{krate}={version};");
        }
    }
    println!("cargo:rustc-env=MLPIPE_CRATE_VERSIONS={versions}");
    Ok(())
}
