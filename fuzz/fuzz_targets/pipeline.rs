//! Fuzz target: the pipeline parser and validator (see checks.rs).
#![no_main]

mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::pipeline(data));
