//! Fuzz target: the batch row reader of `predict` and the scoring after it (see checks.rs).
#![no_main]

mod checks;
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::rows(common::scorer(), data));
