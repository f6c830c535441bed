//! `mlpipe predict HASH --input FILE`: apply a run's fitted pipeline (every fitted step, then the model)
//! to new rows. Loads fitted state only; never fits.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::digest::{Id, KeyBuilder, context};
use crate::error::{Error, Result};
use crate::executor::{StageOutput, StageState, predict};
use crate::frame::{conform_to_schema, read_csv};
use crate::provenance::{self, PredictionRecord, RunRecord};
use crate::spec::Pipeline;
use crate::store::{LocalStore, RefKind, Store, write_atomic};

pub struct PredictArgs {
    pub run: String,
    pub input: PathBuf,
    pub output: Option<PathBuf>,
    pub store: PathBuf,
}

#[derive(Debug, Serialize)]
pub struct PredictReport {
    pub prediction: Id,
    pub run: Id,
    pub model: Id,
    pub input: Id,
    pub output: Id,
    pub rows: usize,
    /// The CSV, when no output file was given.
    #[serde(skip)]
    pub csv: Option<Vec<u8>>,
    pub output_path: Option<PathBuf>,
}

/// The prediction id: what was predicted (input) by what (run and model).
pub fn prediction_id(run: &Id, model: &Id, input: &Id) -> Id {
    KeyBuilder::new(context::PREDICTION_ID)
        .id(run)
        .id(model)
        .id(input)
        .finish()
}

/// Applies fitted stage outputs to input CSV bytes; returns the output CSV and its row count.
pub fn predict_csv(
    pipeline: &Pipeline,
    outputs: &[StageOutput],
    input: &[u8],
    input_name: &str,
) -> Result<(Vec<u8>, usize)> {
    let schema = outputs
        .iter()
        .find_map(|o| match &o.state {
            StageState::Gather { schema } => Some(schema.clone()),
            _ => None,
        })
        .ok_or_else(|| Error::internal("run has no gather output"))?;
    // New rows need not carry the target: do not ask for it by name.
    let mut read = pipeline.gather.read.clone();
    read.columns.retain(|c| c != &pipeline.target);
    read.dtypes.remove(&pipeline.target);
    let frame = read_csv(input, &read, input_name)?;
    let mut frame = conform_to_schema(frame, &schema, &[pipeline.target.as_str()])?;
    let mut model = None;
    for out in outputs {
        match &out.state {
            StageState::Step(f) => frame = f.apply(frame)?,
            StageState::Train(t) => model = Some(t),
            _ => {}
        }
    }
    let model = model.ok_or_else(|| Error::internal("run has no trained model"))?;
    let predictions = predict(model, &frame)?;
    let mut csv = Vec::with_capacity(predictions.len() * 24);
    let ids = match &pipeline.gather.id_column {
        Some(id) => Some((id, frame.column(id).ok_or_else(|| frame.missing_column(id))?)),
        None => None,
    };
    let mut writer = csv::Writer::from_writer(&mut csv);
    let io_err = |e: csv::Error| Error::internal(format!("writing predictions: {e}"));
    match &ids {
        Some((name, _)) => writer.write_record([name.as_str(), "prediction"]).map_err(io_err)?,
        None => writer.write_record(["prediction"]).map_err(io_err)?,
    }
    for (r, p) in predictions.iter().enumerate() {
        // `{}` on f64 prints the shortest text that parses back to the same bits.
        let value = p.to_string();
        match &ids {
            Some((_, col)) => {
                let id = match &col.data {
                    crate::frame::ColumnData::Numeric(v) => v[r].to_string(),
                    crate::frame::ColumnData::Categorical(v) => v[r].as_deref().unwrap_or("").to_string(),
                };
                writer.write_record([id.as_str(), value.as_str()]).map_err(io_err)?;
            }
            None => writer.write_record([value.as_str()]).map_err(io_err)?,
        }
    }
    writer
        .flush()
        .map_err(|e| Error::internal(format!("writing predictions: {e}")))?;
    drop(writer);
    Ok((csv, predictions.len()))
}

fn model_id(record: &RunRecord) -> Result<Id> {
    record
        .stages
        .iter()
        .find(|s| s.kind == "train")
        .map(|s| s.output)
        .ok_or_else(|| Error::internal("run record has no train stage"))
}

pub fn run(args: &PredictArgs) -> Result<PredictReport> {
    let store = LocalStore::open(&args.store)?;
    let _lock = store.lock(false)?;
    let record = super::resolve_run(&store, &args.run)?;
    let (pipeline, outputs) = super::load_fitted(&store, &record)?;
    let (input_id, input) = super::read_snapshot(&args.input)?;
    let name = args.input.display().to_string();
    let (csv, rows) = predict_csv(&pipeline, &outputs, &input, &name)?;
    let model = model_id(&record)?;
    let prediction = prediction_id(&record.run, &model, &input_id);
    store.put_with_id(&input_id, &input)?;
    let output = store.put(&csv)?;
    if store.get_ref(RefKind::Prediction, &prediction)?.is_none() {
        let rec = PredictionRecord {
            kind: "prediction".into(),
            format: 1,
            prediction,
            run: record.run,
            model,
            input: input_id,
            output,
            rows,
            source: name,
            created: provenance::now_rfc3339(),
        };
        let rec_id = store.put(&serde_json::to_vec(&rec).map_err(|e| Error::internal(e.to_string()))?)?;
        store.set_ref(RefKind::Prediction, &prediction, &rec_id)?;
    }
    let output_path = match &args.output {
        Some(path) => {
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            write_atomic(dir, path, &csv)?;
            Some(path.clone())
        }
        None => None,
    };
    Ok(PredictReport {
        prediction,
        run: record.run,
        model,
        input: input_id,
        output,
        rows,
        csv: if args.output.is_none() { Some(csv) } else { None },
        output_path,
    })
}
