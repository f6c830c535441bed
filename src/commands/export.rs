//! `mlpipe export RUN --format onnx -o FILE [--verify]`: the run's whole fitted pipeline as one ONNX
//! graph (src/export/onnx.rs); `--verify` runs the file in onnxruntime on the run's test split and
//! compares with mlpipe's own predictions.

use std::path::PathBuf;
use std::process::Command;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::export::onnx;
use crate::fitted::{Predictions, StageState};
use crate::frame::ColumnData;
use crate::predictor::Scorer;
use crate::store::{LocalStore, Store};

/// The largest relative deviation `--verify` accepts: the graph is float64 throughout.
pub const VERIFY_TOLERANCE: f64 = 1e-9;

pub struct ExportArgs {
    pub store: PathBuf,
    pub run: String,
    pub output: PathBuf,
    pub verify: bool,
}

#[derive(Debug, Serialize)]
pub struct ExportReport {
    pub run: String,
    pub file: PathBuf,
    pub bytes: usize,
    pub nodes: usize,
    pub inputs: Vec<(String, &'static str)>,
    pub outputs: Vec<String>,
    pub precision: &'static str,
    pub verification: Option<Verification>,
}

/// What onnxruntime gave on the test split against mlpipe's predictions.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Verification {
    pub rows: usize,
    pub max_abs: f64,
    pub max_rel: f64,
    pub label_mismatches: usize,
    pub nan_mismatches: usize,
    pub onnxruntime: String,
}

impl Verification {
    pub fn passed(&self) -> bool {
        self.max_rel <= VERIFY_TOLERANCE && self.label_mismatches == 0 && self.nan_mismatches == 0
    }
}

pub fn export(args: &ExportArgs) -> Result<ExportReport> {
    let store = LocalStore::open(&args.store)?;
    let record = super::resolve_run(&store, &args.run)?;
    let scorer = Scorer::load(&store, &record)?;
    let exported = onnx::export(&scorer, &record.snapshot.hex(), env!("CARGO_PKG_VERSION"))?;
    let dir = args
        .output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    crate::tables::refuse_inside_store(store.root(), &args.output, "the exported file")?;
    crate::tables::write_file(dir, &args.output, &exported.bytes)?;
    let verification = if args.verify {
        Some(verify(&store, &record, &scorer, &args.output)?)
    } else {
        None
    };
    Ok(ExportReport {
        run: record.run.hex(),
        file: args.output.clone(),
        bytes: exported.bytes.len(),
        nodes: exported.nodes,
        inputs: exported.inputs,
        outputs: exported.outputs,
        precision: "float64 throughout (standard operators; ai.onnx.ml LabelEncoder with float64 values)",
        verification,
    })
}

/// Scores the run's test rows with mlpipe, then runs the file on the same rows in onnxruntime (the
/// Python of `MLPIPE_PYTHON`, else `python3`).
fn verify(
    store: &LocalStore,
    record: &crate::provenance::RunRecord,
    scorer: &Scorer,
    file: &std::path::Path,
) -> Result<Verification> {
    let (_, outputs) = super::load_fitted(store, record)?;
    let test = outputs
        .iter()
        .find_map(|o| match &o.state {
            StageState::Split(s) => Some(s.test.clone()),
            _ => None,
        })
        .ok_or_else(|| Error::internal("run has no split"))?;
    let bytes = store.get(&record.snapshot)?;
    let frame = scorer.read_csv(&bytes, &record.source)?.take(&test);
    let predictions = scorer.score(frame.clone())?;
    let mut inputs = Map::new();
    for (name, _) in scorer.feature_columns() {
        let column = frame.column(name).ok_or_else(|| frame.missing_column(name))?;
        let (kind, values) = match &column.data {
            ColumnData::Numeric(v) => ("double", v.iter().map(|x| crate::frame::json_number(*x)).collect()),
            ColumnData::Categorical(v) => (
                "string",
                v.iter()
                    .map(|s| Value::String(s.unwrap_or("").to_string()))
                    .collect::<Vec<_>>(),
            ),
        };
        inputs.insert(name.clone(), json!({"type": kind, "values": values}));
    }
    let expected = match &predictions {
        Predictions::Values(v) => {
            json!({"prediction": v.iter().map(|x| crate::frame::json_number(*x)).collect::<Vec<_>>()})
        }
        Predictions::Classes {
            predicted,
            proba,
            n_classes,
        } => json!({
            "prediction": predicted.iter().map(|c| scorer.label_json(*c)).collect::<Vec<_>>(),
            "probabilities": proba.chunks(*n_classes).collect::<Vec<_>>(),
        }),
    };
    let work = tempfile::tempdir().map_err(|e| Error::io("create a temporary folder", std::env::temp_dir(), e))?;
    let case = work.path().join("case.json");
    let script = work.path().join("verify.py");
    let body = json!({"model": file.canonicalize().unwrap_or_else(|_| file.to_path_buf()), "inputs": inputs, "expected": expected});
    std::fs::write(&case, body.to_string()).map_err(|e| Error::io("write", &case, e))?;
    std::fs::write(&script, include_str!("../export/verify.py")).map_err(|e| Error::io("write", &script, e))?;
    let python = std::env::var("MLPIPE_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(&python).arg(&script).arg(&case).output().map_err(|e| {
        Error::data(format!(
            "--verify runs the file in onnxruntime, but `{python}` does not start: {e}"
        ))
        .with_hint("install Python 3 with `pip install onnx onnxruntime`, or set MLPIPE_PYTHON to such a Python")
    })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if out.status.code() == Some(3) {
        return Err(Error::data(format!(
            "--verify needs onnx and onnxruntime in `{python}`: {}",
            stdout.trim()
        ))
        .with_hint("pip install onnx onnxruntime, or set MLPIPE_PYTHON to a Python that has them"));
    }
    if !out.status.success() {
        return Err(Error::data(format!(
            "onnxruntime could not run {}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    serde_json::from_str(stdout.trim())
        .map_err(|e| Error::internal(format!("unreadable verification report ({e}): {stdout}")))
}
