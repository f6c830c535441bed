//! Fuzz target: the REST request decoder of `serve` and the scoring after it (see checks.rs).
#![no_main]

mod checks;
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::rest(common::scorer(), data));
