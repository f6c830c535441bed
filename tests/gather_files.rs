#![allow(clippy::unwrap_used, clippy::expect_used)]

//! Gathering from Parquet, Arrow IPC and NDJSON: the snapshot is the canonical CSV of the rows, so every
//! writer, compression and row-group layout of the same rows gives one id (the CSV file's), a pipeline
//! gathered from a typed copy reuses the CSV run's stages, only the named columns are read, and bad files
//! are refused by name.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{
    ArrayRef, BooleanArray, Date32Array, Decimal128Array, DictionaryArray, Float32Array, Float64Array, Int64Array,
    ListArray, RecordBatch, StringArray, TimestampNanosecondArray, types::Int8Type,
};
use common::{DATA, Project, stage_outputs, stderr};
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/typed")
        .join(name)
}

fn b3(path: &Path) -> String {
    blake3::hash(&std::fs::read(path).unwrap()).to_hex().to_string()
}

fn snapshot_id(p: &Project, args: &[&str]) -> String {
    let mut all = vec!["snapshot", "--hash-only", "--json"];
    all.extend(args);
    let out = p.mlpipe(&all);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["snapshot"].as_str().unwrap().to_string()
}

/// Writes `batches` as one Parquet file, `rows_per_group` rows to a row group.
fn write_parquet(path: &Path, batches: &[RecordBatch], rows_per_group: usize) {
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(rows_per_group))
        .build();
    let file = std::fs::File::create(path).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batches[0].schema(), Some(props)).unwrap();
    for b in batches {
        w.write(b).unwrap();
    }
    w.close().unwrap();
}

fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    RecordBatch::try_from_iter(columns).unwrap()
}

#[test]
fn every_writer_and_layout_of_the_same_rows_gives_the_csv_files_snapshot() {
    let p = Project::new();
    let houses = b3(&Path::new(DATA).join("train.csv"));
    let penguins = b3(&Path::new(env!("CARGO_MANIFEST_DIR")).join("data-snapshots/penguins/penguins.csv"));
    let cases = [
        ("houses-pandas.parquet", &houses),
        ("houses-polars.parquet", &houses),
        ("penguins-groups.parquet", &penguins),
        ("penguins-dictionary.parquet", &penguins),
        ("penguins-pyarrow.feather", &penguins),
        ("penguins-polars.arrows", &penguins),
        ("penguins-polars.ndjson", &penguins),
    ];
    for (file, want) in cases {
        let path = fixture(file);
        let got = snapshot_id(&p, &[path.to_str().unwrap(), "--na", "NA"]);
        assert_eq!(&got, want, "{file}");
    }
    // The marker is part of the canonical form: another marker is another snapshot.
    let other = snapshot_id(&p, &[fixture("houses-pandas.parquet").to_str().unwrap()]);
    assert_ne!(other, houses);
}

#[test]
fn a_pipeline_gathered_from_parquet_reuses_the_csv_runs_stages_and_metrics() {
    let p = Project::new();
    let csv = p.run(&[]);
    std::fs::copy(fixture("houses-polars.parquet"), p.path("train.parquet")).unwrap();
    p.edit("pipeline.toml", "source = \"train.csv\"", "source = \"train.parquet\"");
    let parquet = p.run(&[]);
    assert_eq!(parquet["snapshot"], csv["snapshot"]);
    assert_eq!(stage_outputs(&parquet), stage_outputs(&csv));
    assert!(
        parquet["stages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["cached"] == true),
        "the Parquet run recomputed a stage the CSV run stored: {parquet}"
    );
    assert_eq!(parquet["metrics"], csv["metrics"]);
    // The same rows under another format are the same run (as a moved file is), reproduced from the store.
    assert_eq!(parquet["run"], csv["run"]);
    std::fs::remove_file(p.path("train.parquet")).unwrap();
    let out = p.mlpipe(&["reproduce", parquet["run"].as_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn only_the_named_columns_are_read_and_a_type_a_row_cannot_hold_is_named() {
    let p = Project::penguins();
    let text = std::fs::read_to_string(p.path("penguins.csv")).unwrap();
    // A file with a list column next to the data: fine while `columns` leaves it out.
    let ids: Vec<i64> = (0..i64::try_from(text.lines().count() - 1).unwrap()).collect();
    let lists = ListArray::from_iter_primitive::<arrow_array::types::Int32Type, _, _>(
        ids.iter().map(|i| Some(vec![Some(i32::try_from(*i).unwrap())])),
    );
    write_parquet(
        &p.path("tags.parquet"),
        &[batch(vec![
            ("row", Arc::new(Int64Array::from(ids.clone())) as ArrayRef),
            ("tags", Arc::new(lists) as ArrayRef),
        ])],
        1000,
    );
    let tags = p.path("tags.parquet");
    let tags = tags.to_str().unwrap();
    let exported = p.path("rows.csv");
    let out = p.mlpipe(&[
        "snapshot",
        tags,
        "--column",
        "row",
        "--export",
        exported.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let want: String = std::iter::once("row".to_string())
        .chain(ids.iter().map(ToString::to_string))
        .map(|l| l + "\n")
        .collect();
    assert_eq!(std::fs::read_to_string(&exported).unwrap(), want);
    let (code, err) = p.fail(&["snapshot", tags, "--hash-only"]);
    assert_eq!(code, 1);
    assert!(err.contains("column \"tags\"") && err.contains("List"), "{err}");
    assert!(err.contains("columns"), "the hint names the way out: {err}");
    let (_, err) = p.fail(&["snapshot", tags, "--column", "rows", "--hash-only"]);
    assert!(
        err.contains("\"rows\"") && err.contains("\"row\""),
        "a misspelt column gets a suggestion: {err}"
    );

    // In a pipeline: the projected snapshot holds the named columns in file order.
    std::fs::copy(fixture("penguins-groups.parquet"), p.path("penguins.parquet")).unwrap();
    p.edit(
        "pipeline.toml",
        "source = \"penguins.csv\"",
        "source = \"penguins.parquet\"",
    );
    let columns =
        "species\", \"bill_length_mm\", \"bill_depth_mm\", \"flipper_length_mm\", \"body_mass_g\", \"sex\", \"year";
    p.edit(
        "pipeline.toml",
        "na_values = [\"NA\"]",
        &format!("na_values = [\"NA\"]\ncolumns = [\"{columns}\"]"),
    );
    let run = p.run(&[]);
    let wanted: Vec<&str> = columns.split("\", \"").collect();
    let mut args = vec![
        p.path("penguins.parquet").to_str().unwrap().to_string(),
        "--na".into(),
        "NA".into(),
    ];
    for c in &wanted {
        args.extend(["--column".to_string(), (*c).to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(run["snapshot"].as_str().unwrap(), snapshot_id(&p, &args));
    let out = p.mlpipe(&["show", run["snapshot"].as_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        shown["content"][0],
        wanted.join(","),
        "the stored snapshot is the projected canonical CSV"
    );
}

#[test]
fn typed_values_are_written_in_canonical_form() {
    let p = Project::new();
    let dict: DictionaryArray<Int8Type> = vec![Some("b"), None, Some("a, \"quoted\"")].into_iter().collect();
    let day = 11_016; // 2000-02-29
    let instant = i64::from(day) * 86_400_000_000_000 + 3_723_000_007_999; // 01:02:03.000007999
    let columns: Vec<(&str, ArrayRef)> = vec![
        (
            "int",
            Arc::new(Int64Array::from(vec![Some(-3), None, Some(9_007_199_254_740_993)])),
        ),
        (
            "float",
            Arc::new(Float64Array::from(vec![Some(0.1), Some(f64::NAN), Some(65.0)])),
        ),
        (
            "single",
            Arc::new(Float32Array::from(vec![Some(0.1_f32), None, Some(1.5)])),
        ),
        (
            "flag",
            Arc::new(BooleanArray::from(vec![Some(true), Some(false), None])),
        ),
        ("day", Arc::new(Date32Array::from(vec![Some(day), Some(-1), None]))),
        (
            "at",
            Arc::new(TimestampNanosecondArray::from(vec![Some(instant), None, Some(-1)]).with_timezone("+02:00")),
        ),
        (
            "price",
            Arc::new(
                Decimal128Array::from(vec![Some(1250), Some(-5), None])
                    .with_precision_and_scale(9, 2)
                    .unwrap(),
            ),
        ),
        ("kind", Arc::new(dict)),
        ("text", Arc::new(StringArray::from(vec![Some("x"), Some(""), None]))),
    ];
    // One row per row group: the layout must not matter.
    let b = batch(columns);
    write_parquet(&p.path("typed.parquet"), std::slice::from_ref(&b), 1);
    write_parquet(&p.path("typed-one-group.parquet"), &[b.slice(0, 2), b.slice(2, 1)], 100);
    let export = p.path("typed.csv");
    let out = p.mlpipe(&[
        "snapshot",
        p.path("typed.parquet").to_str().unwrap(),
        "--na",
        "NA",
        "--export",
        export.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(&export).unwrap(),
        "int,float,single,flag,day,at,price,kind,text\n\
         -3,0.1,0.10000000149011612,true,2000-02-29,2000-02-29T01:02:03.000007Z,12.50,b,x\n\
         NA,NA,NA,false,1969-12-31,NA,-0.05,NA,\n\
         9007199254740993,65,1.5,NA,NA,1969-12-31T23:59:59.999999Z,NA,\"a, \"\"quoted\"\"\",NA\n"
    );
    let one = snapshot_id(&p, &[p.path("typed.parquet").to_str().unwrap()]);
    let two = snapshot_id(&p, &[p.path("typed-one-group.parquet").to_str().unwrap()]);
    assert_eq!(one, two);
}

#[test]
fn bad_typed_files_are_refused_with_the_file_line_or_column_named() {
    let p = Project::new();
    // A truncated Parquet file.
    let bytes = std::fs::read(fixture("houses-pandas.parquet")).unwrap();
    std::fs::write(p.path("cut.parquet"), &bytes[..bytes.len() / 2]).unwrap();
    p.edit("pipeline.toml", "source = \"train.csv\"", "source = \"cut.parquet\"");
    let (code, err) = p.fail(&["run", "pipeline.toml"]);
    assert_eq!(code, 1);
    assert!(err.contains("cut.parquet is not a readable Parquet file"), "{err}");

    // A Feather file named .parquet is named for what it is.
    std::fs::copy(fixture("penguins-pyarrow.feather"), p.path("renamed.parquet")).unwrap();
    let (_, err) = p.fail(&["snapshot", p.path("renamed.parquet").to_str().unwrap(), "--hash-only"]);
    assert!(
        err.contains("is read as parquet, but it is an Arrow IPC file") && err.contains("format = \"ipc\""),
        "{err}"
    );

    // An infinite float: the column and the row.
    let b = batch(vec![(
        "x",
        Arc::new(Float64Array::from(vec![1.0, 2.0, f64::INFINITY])) as ArrayRef,
    )]);
    write_parquet(&p.path("inf.parquet"), &[b], 100);
    let (_, err) = p.fail(&["snapshot", p.path("inf.parquet").to_str().unwrap(), "--hash-only"]);
    assert!(
        err.contains("column \"x\"") && err.contains("row 3") && err.contains("inf"),
        "{err}"
    );

    // A column name holding a terminal escape is shown escaped.
    let b = batch(vec![(
        "\u{1b}]0;pwned\u{7}x",
        Arc::new(Float64Array::from(vec![f64::NEG_INFINITY])) as ArrayRef,
    )]);
    write_parquet(&p.path("escape.parquet"), &[b], 100);
    let (_, err) = p.fail(&["snapshot", p.path("escape.parquet").to_str().unwrap(), "--hash-only"]);
    assert!(
        !err.contains('\u{1b}') && err.contains("\\u{1b}]0;pwned\\u{7}x"),
        "{err:?}"
    );

    // Damaged decoder input is an error naming the file, never a crash; a FIFO is refused unread.
    let mut bytes = std::fs::read(fixture("penguins-pyarrow.feather")).unwrap();
    let mut crashed = Vec::new();
    for (i, at) in (600..bytes.len().min(2600)).step_by(7).enumerate() {
        let keep = bytes[at];
        bytes[at] = keep.wrapping_add(u8::try_from(i % 251).unwrap() + 1);
        std::fs::write(p.path("damaged.feather"), &bytes).unwrap();
        bytes[at] = keep;
        let out = p.mlpipe(&["snapshot", p.path("damaged.feather").to_str().unwrap(), "--hash-only"]);
        // 0 (the damage hit nothing that matters) or 1 (refused); never a panic (101) or an abort.
        if !matches!(out.status.code(), Some(0 | 1)) {
            crashed.push((at, out.status.code()));
        }
    }
    assert!(crashed.is_empty(), "damaged at {crashed:?}");

    // A byte-order mark before the first record is not part of it.
    std::fs::write(p.path("bom.ndjson"), b"\xef\xbb\xbf{\"a\":1}\n{\"a\":2}\n").unwrap();
    assert_eq!(
        snapshot_id(&p, &[p.path("bom.ndjson").to_str().unwrap()]),
        blake3::hash(b"a\n1\n2\n").to_hex().to_string()
    );
    for (body, want) in [
        ("{\"a\":1}\n{\"a\":2,\"a\":3}\n", "line 2"),
        ("{\"a\":1}\n\n{\"a\":[1]}\n", "line 3"),
        ("{\"a\":1}\n[1,2]\n", "line 2"),
    ] {
        std::fs::write(p.path("bad.ndjson"), body).unwrap();
        let (code, err) = p.fail(&["snapshot", p.path("bad.ndjson").to_str().unwrap(), "--hash-only"]);
        assert_eq!(code, 1, "{body}");
        assert!(err.contains(want) && err.contains("bad.ndjson"), "{body}: {err}");
    }

    // In the pipeline file: a .json source, a delimiter for Parquet, an unknown format, each at its line.
    std::fs::copy(fixture("houses-pandas.parquet"), p.path("train.parquet")).unwrap();
    p.edit("pipeline.toml", "source = \"cut.parquet\"", "source = \"train.json\"");
    let (_, err) = p.fail(&["run", "pipeline.toml"]);
    assert!(err.contains("pipeline.toml:") && err.contains("ndjson"), "{err}");
    p.edit(
        "pipeline.toml",
        "source = \"train.json\"",
        "source = \"train.parquet\"\ndelimiter = \";\"",
    );
    let (_, err) = p.fail(&["run", "pipeline.toml"]);
    assert!(
        err.contains("`delimiter` is for CSV files") && err.contains("pipeline.toml:"),
        "{err}"
    );
    p.edit("pipeline.toml", "delimiter = \";\"", "format = \"parket\"");
    let (_, err) = p.fail(&["run", "pipeline.toml"]);
    assert!(
        err.contains("\"parquet\""),
        "a misspelt format gets a suggestion: {err}"
    );
}

/// The frame a typed file gives when read straight in, or `None` when only the CSV way can promise it;
/// whenever it is given, it is the frame of the file's canonical CSV, digest and all.
fn straight_equals_csv(path: &Path, opts: &mlpipe::frame::ReadOptions) -> bool {
    let format = mlpipe::sources::FileFormat::of_path(path).unwrap();
    let bytes = std::fs::read(path).unwrap();
    let na = opts.na_values.first().map_or("", String::as_str);
    let csv = mlpipe::sources::canonical_csv(bytes.clone(), format, &opts.columns, na, "f").unwrap();
    let straight = mlpipe::sources::read_frame(bytes, format, opts, "f").unwrap();
    let Ok(via_csv) = mlpipe::frame::read_csv(&csv, opts, "f") else {
        assert!(
            straight.is_none(),
            "{}: a frame where the CSV way refuses",
            path.display()
        );
        return false;
    };
    match straight {
        Some(straight) => {
            assert_eq!(straight, via_csv, "{}", path.display());
            assert_eq!(straight.lines, via_csv.lines, "{}", path.display());
            assert_eq!(straight.schema(), via_csv.schema(), "{}", path.display());
            assert_eq!(straight.digest(), via_csv.digest(), "{}", path.display());
            true
        }
        None => false,
    }
}

#[test]
fn a_typed_file_read_straight_into_a_frame_gives_its_snapshots_frame_or_nothing() {
    use mlpipe::frame::{ColumnType, ReadOptions};
    let na = |markers: &[&str]| ReadOptions {
        na_values: markers.iter().map(|s| (*s).to_string()).collect(),
        ..ReadOptions::default()
    };
    for file in [
        "houses-pandas.parquet",
        "houses-polars.parquet",
        "penguins-groups.parquet",
        "penguins-dictionary.parquet",
        "penguins-pyarrow.feather",
        "penguins-polars.arrows",
    ] {
        assert!(
            straight_equals_csv(&fixture(file), &na(&["NA"])),
            "{file} was not read straight"
        );
        assert!(straight_equals_csv(&fixture(file), &na(&[])), "{file} without markers");
    }
    // Declared types, a projection, and a marker that is also a number (numbers then go through text).
    let mut declared = na(&["NA"]);
    declared.dtypes.insert("MSSubClass".into(), ColumnType::Categorical);
    declared.dtypes.insert("Alley".into(), ColumnType::Categorical);
    declared.columns = vec!["Id".into(), "MSSubClass".into(), "Alley".into(), "SalePrice".into()];
    assert!(straight_equals_csv(&fixture("houses-polars.parquet"), &declared));
    assert!(straight_equals_csv(
        &fixture("houses-pandas.parquet"),
        &na(&["NA", "0"])
    ));
    let mut forced = na(&["NA"]);
    forced.dtypes.insert("species".into(), ColumnType::Numeric);
    assert!(
        !straight_equals_csv(&fixture("penguins-polars.arrows"), &forced),
        "text declared numeric is the CSV way's error to report"
    );

    // Every kind of value a snapshot holds, one row per row group.
    let p = Project::new();
    let dict: DictionaryArray<Int8Type> = vec![Some("b"), None, Some("a, \"quoted\"")].into_iter().collect();
    let columns: Vec<(&str, ArrayRef)> = vec![
        (
            "int",
            Arc::new(Int64Array::from(vec![Some(-3), None, Some(9_007_199_254_740_993)])),
        ),
        (
            "float",
            Arc::new(Float64Array::from(vec![Some(-0.0), Some(f64::NAN), Some(0.1)])),
        ),
        (
            "single",
            Arc::new(Float32Array::from(vec![Some(0.1_f32), None, Some(1.5)])),
        ),
        (
            "flag",
            Arc::new(BooleanArray::from(vec![Some(true), Some(false), None])),
        ),
        ("day", Arc::new(Date32Array::from(vec![Some(11_016), Some(-1), None]))),
        (
            "price",
            Arc::new(
                Decimal128Array::from(vec![Some(1250), Some(-5), None])
                    .with_precision_and_scale(9, 2)
                    .unwrap(),
            ),
        ),
        ("kind", Arc::new(dict)),
        (
            "text",
            Arc::new(StringArray::from(vec![Some(" 12 "), Some(""), Some("NA")])),
        ),
        (
            "digits",
            Arc::new(StringArray::from(vec![Some("1"), Some("2.5"), None])),
        ),
    ];
    let b = batch(columns);
    write_parquet(&p.path("typed.parquet"), std::slice::from_ref(&b), 1);
    assert!(straight_equals_csv(&p.path("typed.parquet"), &na(&["NA"])));
    // A line break in a cell moves the CSV's line numbers: only the CSV way gives its frame.
    let broken = batch(vec![(
        "text",
        Arc::new(StringArray::from(vec![Some("a\nb"), Some("c")])) as ArrayRef,
    )]);
    write_parquet(&p.path("broken.parquet"), std::slice::from_ref(&broken), 10);
    assert!(!straight_equals_csv(&p.path("broken.parquet"), &na(&["NA"])));
}

#[test]
fn a_parquet_runs_snapshot_memo_is_a_shortcut_checked_against_the_rows_never_trusted() {
    let p = Project::new();
    std::fs::copy(fixture("houses-polars.parquet"), p.path("train.parquet")).unwrap();
    p.edit("pipeline.toml", "source = \"train.csv\"", "source = \"train.parquet\"");
    let first = p.run(&[]);
    let memos = p.store().join("v1/refs/snapshots");
    let memo = std::fs::read_dir(&memos).unwrap().next().unwrap().unwrap().path();
    assert_eq!(
        std::fs::read_to_string(&memo).unwrap().trim(),
        first["snapshot"].as_str().unwrap()
    );
    // A later stage changed: the file is read straight in (the memo's shortcut) and gives the stages the
    // CSV file gives.
    p.edit("pipeline.toml", "alpha = 10.0", "alpha = 3.0");
    let shortcut = p.run(&[]);
    assert_eq!(shortcut["snapshot"], first["snapshot"]);
    let csv = Project::new();
    csv.edit("pipeline.toml", "alpha = 10.0", "alpha = 3.0");
    let via_csv = csv.run(&[]);
    assert_eq!(stage_outputs(&shortcut), stage_outputs(&via_csv));
    assert_eq!(shortcut["metrics"], via_csv["metrics"]);
    // A memo edited to name another snapshot in the store is caught by the rows' digest: the run writes
    // the CSV again, keeps the true snapshot and mends the memo.
    let other = p.mlpipe(&[
        "snapshot",
        DATA_PENGUINS,
        "--json",
        "--store",
        p.store().to_str().unwrap(),
    ]);
    assert!(other.status.success(), "{}", stderr(&other));
    let other: Value = serde_json::from_slice(&other.stdout).unwrap();
    std::fs::write(&memo, format!("{}\n", other["snapshot"].as_str().unwrap())).unwrap();
    let again = p.run(&[]);
    assert_eq!(again["snapshot"], first["snapshot"]);
    assert_eq!(stage_outputs(&again), stage_outputs(&shortcut));
    assert_eq!(
        std::fs::read_to_string(&memo).unwrap().trim(),
        first["snapshot"].as_str().unwrap()
    );
    let out = p.mlpipe(&["verify", "--store", p.store().to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    // The snapshot object behind the memo damaged: not used; the run writes the CSV again, mending it.
    let snapshot = first["snapshot"].as_str().unwrap();
    let object = p.store().join("v1/objects").join(&snapshot[..2]).join(&snapshot[2..]);
    let mut bytes = std::fs::read(&object).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&object, bytes).unwrap();
    let mended = p.run(&[]);
    assert_eq!(mended["snapshot"], first["snapshot"]);
    let out = p.mlpipe(&["verify", "--store", p.store().to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    // A folder where the memo belongs: moved aside with a warning, the run goes on and writes it again.
    std::fs::remove_file(&memo).unwrap();
    std::fs::create_dir(&memo).unwrap();
    let out = p.mlpipe(&["run", "pipeline.toml", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("moved it aside"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&memo).unwrap().trim(), snapshot);
}

const DATA_PENGUINS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data-snapshots/penguins/penguins.csv");
