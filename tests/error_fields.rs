//! Errors carry their stage and column as fields: the caret under a step's column and the ` (stage …)`
//! after a message come from those fields, never from searching the message's text (#24).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::process::Command;

/// A regression pipeline whose explicit ordinal scale lists "low" and "high" for the columns `kind` and
/// `grade`, on data where `grade` also holds `extra`.
fn fails_with_extra_grade(extra: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("y,kind,grade\n");
    for i in 0..40 {
        let grade = ["low", "high", extra][i % 3];
        let kind = ["low", "high"][i % 2];
        writeln!(csv, "{},{kind},\"{grade}\"", i * 2 + i % 5).unwrap();
    }
    std::fs::write(dir.path().join("data.csv"), csv).unwrap();
    std::fs::write(
        dir.path().join("pipeline.toml"),
        r#"[pipeline]
name = "fields"
seed = 1
target = "y"
task = "regression"

[gather]
source = "data.csv"

[split]
method = "random"
test_fraction = 0.25

[[encode]]
name = "ordinal"
operator = "ordinal"
columns = ["kind", "grade"]
method = "explicit"
categories = ["low", "high"]

[train]
estimator = "linear_regression"
"#,
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mlpipe"))
        .current_dir(dir.path())
        .args(["--store", "artifacts", "run", "pipeline.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    stderr[stderr.find("error: ").unwrap()..].to_string()
}

#[test]
fn a_value_named_like_another_column_does_not_move_the_caret_to_that_column() {
    // The message quotes the value "kind", the name of the step's first column: the caret stays under
    // `grade`, the column the error is about.
    assert_eq!(
        fails_with_extra_grade("kind"),
        "error: column \"grade\" holds \"kind\" in train, which is not in the step's `categories` (stage encode.ordinal)\n\
         \x20 --> pipeline.toml:17:20\n\
         \x20  |\n\
         17 | columns = [\"kind\", \"grade\"]\n\
         \x20  |                    ^^^^^^^\n\
         hint: add it to `categories` in its place, or group it with rare_label first\n"
    );
}

#[test]
fn a_value_that_reads_like_a_stage_does_not_hide_the_stage() {
    assert_eq!(
        fails_with_extra_grade("mid (stage x)"),
        "error: column \"grade\" holds \"mid (stage x)\" in train, which is not in the step's `categories` (stage encode.ordinal)\n\
         \x20 --> pipeline.toml:17:20\n\
         \x20  |\n\
         17 | columns = [\"kind\", \"grade\"]\n\
         \x20  |                    ^^^^^^^\n\
         hint: add it to `categories` in its place, or group it with rare_label first\n"
    );
}
