//! What each fuzz target checks, shared with `cargo test` (tests/reliability.rs replays the seeds through
//! these same functions). Each returns normally for any input; a panic is a finding.
#![allow(dead_code)] // each target uses one function

use std::path::Path;

use mlpipe::plan::Plan;
use mlpipe::predictor::Scorer;
use mlpipe::predictor::input::read_input;
use mlpipe::server::{parse_body, records_of};
use mlpipe::spec::Pipeline;
use mlpipe::tables::Format;

/// The pipeline parser and validator: any text gives a pipeline or an error; a pipeline that parses
/// plans, and survives its canonical JSON round trip unchanged.
pub fn pipeline(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(pipeline) = Pipeline::parse(Path::new("fuzz/pipeline.toml"), text) else {
        return;
    };
    let _ = Plan::new(&pipeline);
    let json = pipeline.to_canonical_json();
    let back = Pipeline::from_canonical_json(&json).expect("canonical JSON of a parsed pipeline reads back");
    assert_eq!(
        back.to_canonical_json(),
        json,
        "canonical JSON round trip changed the pipeline"
    );
}

/// The batch row reader of `predict` (CSV or NDJSON, chosen by the first byte) and the scoring after it.
pub fn rows(scorer: &Scorer, data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let format = if selector % 2 == 0 { Format::Csv } else { Format::Ndjson };
    match read_input(scorer, body, format, "fuzz input") {
        Ok(frame) => {
            let rows = frame.n_rows();
            match scorer.score(frame) {
                Ok(predictions) => {
                    assert_eq!(predictions.len(), rows, "one prediction per row");
                    assert_finite(&predictions);
                }
                Err(e) => assert_not_internal(&e),
            }
        }
        Err(e) => assert_not_internal(&e),
    }
}

/// Bad input is the user's error (exit 1), never an internal one (exit 101).
fn assert_not_internal(e: &mlpipe::Error) {
    assert_ne!(
        e.kind(),
        mlpipe::ErrorKind::Internal,
        "input reached an internal error: {e}"
    );
}

/// A prediction handed out is a finite number: ±∞ and NaN are refused, never answered.
fn assert_finite(predictions: &mlpipe::fitted::Predictions) {
    let bytes = predictions.to_bytes();
    for chunk in bytes.chunks_exact(8) {
        let x = f64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        assert!(x.is_finite(), "a prediction is {x}");
    }
}

/// The REST request decoder of `serve` (body → records → the training schema) and the scoring after it.
pub fn rest(scorer: &Scorer, data: &[u8]) {
    let Ok(value) = parse_body(data) else { return };
    let Ok((maps, _single)) = records_of(&value, 10_000) else {
        return;
    };
    let Ok(records) = scorer.decode_records(&maps, "the request") else {
        return;
    };
    assert_eq!(records.canonical.len(), maps.len(), "one canonical encoding per record");
    match scorer.score(records.frame) {
        Ok(predictions) => {
            assert_eq!(predictions.len(), maps.len(), "one prediction per record");
            assert_finite(&predictions);
        }
        Err(e) => assert_not_internal(&e),
    }
}
