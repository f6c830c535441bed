//! The predict path: a run's fitted pipeline loaded once ([`Scorer`]), applied to frames that may come
//! from a file, a request body or a stream line. Nothing here knows where records come from or where
//! predictions go; batch, REST and streaming all call [`Scorer::score`].
//!
//! Records (JSON objects) are decoded strictly against the training schema and re-encoded canonically
//! (keys sorted, numbers as the shortest text that parses back to the same `f64`), so that the same
//! record always has the same content id whatever its spacing, key order or number spelling.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::digest::Id;
use crate::error::{Error, Result};
use crate::fitted::{Predictions, StageState, TrainState, predict};
use crate::frame::json_number;
use crate::frame::{Column, ColumnData, ColumnType, Expected, Frame, Texts, conform_to_schema};
use crate::ledger::{self, Channel, Entry};
use crate::provenance::RunRecord;
use crate::stages::{self, analyse::Profile};
use crate::store::Store;
use crate::tables::{IdValue, PredictionColumn};

/// Rows per chunk when scoring a large batch: small enough that each step's columns stay in cache-sized
/// allocations the allocator reuses, large enough that per-chunk overhead does not show.
const SCORE_CHUNK: usize = 32 * 1024;

/// A run's fitted pipeline, ready to apply.
pub mod input;

pub struct Scorer {
    pub run: Id,
    pub model: Id,
    pub pipeline_name: String,
    pub target: String,
    pub id_column: Option<String>,
    /// The training data's columns and types, target included (it is optional at predict time).
    pub schema: Vec<(String, ColumnType)>,
    pub na_values: Vec<String>,
    pub metrics: BTreeMap<String, f64>,
    pub profile: Option<Profile>,
    pub created: String,
    read: crate::frame::ReadOptions,
    steps: Vec<stages::Fitted>,
    /// Each step's stage name (`encode.onehot`), beside `steps`.
    step_names: Vec<String>,
    train: TrainState,
}

/// A record that cannot be scored: which record (0-based) and, when known, which field.
#[derive(Debug)]
pub struct RecordError {
    pub record: usize,
    pub error: Error,
}

impl RecordError {
    pub fn field(&self) -> Option<&str> {
        self.error.column()
    }
}

impl Scorer {
    pub fn load(store: &dyn Store, record: &RunRecord) -> Result<Scorer> {
        let (pipeline, outputs) = crate::fitted::runs::load_fitted(store, record)?;
        let model = record
            .stages
            .iter()
            .find(|s| s.kind == "train")
            .map(|s| s.output)
            .ok_or_else(|| Error::internal("run record has no train stage"))?;
        let (mut schema, mut profile, mut train, mut steps) = (None, None, None, Vec::new());
        for out in outputs {
            match out.state {
                StageState::Gather { schema: s, .. } => schema = Some(s),
                StageState::Analyse(p) => profile = Some(p),
                StageState::Step(f) => steps.push(f),
                StageState::Train(t) => train = Some(t),
                StageState::Split(_) | StageState::Evaluate(_) => {}
            }
        }
        let step_names = record
            .stages
            .iter()
            .filter(|s| stages::Group::ALL.iter().any(|g| g.name() == s.kind))
            .map(|s| s.name.clone())
            .collect();
        let mut read = pipeline.gather.read.clone();
        // New rows need not carry the target: do not ask for it by name.
        read.columns.retain(|c| c != &pipeline.target);
        read.dtypes.remove(&pipeline.target);
        Ok(Scorer {
            run: record.run,
            model,
            pipeline_name: record.pipeline_name.clone(),
            target: pipeline.target.clone(),
            id_column: pipeline.gather.id_column.clone(),
            schema: schema.ok_or_else(|| Error::internal("run has no gather output"))?,
            na_values: pipeline.gather.read.na_values.clone(),
            metrics: record.metrics.clone(),
            profile,
            created: record.created.clone(),
            read,
            steps,
            step_names,
            train: train.ok_or_else(|| Error::internal("run has no trained model"))?,
        })
    }

    /// The fitted steps, in pipeline order.
    pub fn steps(&self) -> &[stages::Fitted] {
        &self.steps
    }

    /// The fitted steps' stage names, beside `steps()`.
    pub fn step_names(&self) -> &[String] {
        &self.step_names
    }

    /// The fitted model and the target transform it was trained under.
    pub fn train_state(&self) -> &TrainState {
        &self.train
    }

    /// The columns a caller must send (the training columns without the target and the id).
    pub fn feature_columns(&self) -> impl Iterator<Item = &(String, ColumnType)> {
        self.schema
            .iter()
            .filter(|(n, _)| n != &self.target && Some(n) != self.id_column.as_ref())
    }

    /// Applies every fitted step, then the model (and the inverse target transform). Large batches are
    /// scored in chunks of rows on all cores: every fitted step works row by row (row-keyed draws use the
    /// row's position in the whole batch), so chunking changes no bit of the result, and the chunks'
    /// predictions are joined in row order. A row whose prediction is not a finite number (an input far
    /// outside the training range, such as `LotArea = 1e308`, can drive a model to ±∞ or NaN) is an
    /// error naming its line: such a value is never answered, written or recorded.
    pub fn score(&self, frame: Frame) -> Result<Predictions> {
        self.score_rows(frame).map_err(|f| f.error)
    }

    /// [`Scorer::score`], telling which row (0-based, in `frame`) made it fail when one row did.
    pub fn score_rows(&self, frame: Frame) -> Result<Predictions, ScoreFailure> {
        use rayon::prelude::*;
        let mut optional = vec![self.target.as_str()];
        optional.extend(self.id_column.as_deref());
        let base = frame.first_row;
        let frame = conform_to_schema(frame, &self.schema, &optional).map_err(ScoreFailure::whole)?;
        if frame.n_rows() <= SCORE_CHUNK {
            return self.score_chunk(frame, base);
        }
        let parts: Vec<Result<Predictions, ScoreFailure>> = frame
            .into_chunks(SCORE_CHUNK)
            .into_par_iter()
            .map(|chunk| self.score_chunk(chunk, base))
            .collect();
        let mut out: Option<Predictions> = None;
        for part in parts {
            // The first error in row order is the one reported, whatever finished first.
            let part = part?;
            match &mut out {
                Some(o) => o.extend(part).map_err(ScoreFailure::whole)?,
                None => out = Some(part),
            }
        }
        out.ok_or_else(|| ScoreFailure::whole(Error::internal("no rows were scored")))
    }

    /// A classifier's labels (its classes in order) and whether they are numbers.
    pub fn classes(&self) -> Option<(&[String], bool)> {
        self.train.model.classes()
    }

    /// Row `i`'s prediction as JSON: a number, or a classifier's label (a number when its labels are).
    pub fn prediction_json(&self, predictions: &Predictions, i: usize) -> Value {
        match predictions {
            Predictions::Values(v) => crate::tables::json_number_exact(v[i]),
            Predictions::Classes { predicted, .. } => self.label_json(predicted[i]),
        }
    }

    /// A class index as its label in JSON.
    pub fn label_json(&self, class: usize) -> Value {
        match self.classes() {
            Some((labels, true)) => labels[class]
                .parse::<f64>()
                .map_or_else(|_| Value::String(labels[class].clone()), json_number),
            Some((labels, false)) => Value::String(labels[class].clone()),
            None => Value::Null,
        }
    }

    /// A batch's `prediction` column and (a classifier's) probability columns, `proba_<label>`.
    pub fn output_columns(&self, predictions: &Predictions) -> (PredictionColumn, Vec<(String, Vec<f64>)>) {
        match (predictions, self.classes()) {
            (
                Predictions::Classes {
                    predicted,
                    proba,
                    n_classes,
                },
                Some((labels, numeric)),
            ) => {
                let column = if numeric {
                    PredictionColumn::Numbers(
                        predicted
                            .iter()
                            .map(|c| labels[*c].parse::<f64>().unwrap_or(f64::NAN))
                            .collect(),
                    )
                } else {
                    PredictionColumn::Text(predicted.iter().map(|c| labels[*c].clone()).collect())
                };
                let extra = labels
                    .iter()
                    .enumerate()
                    .map(|(k, l)| {
                        (
                            format!("proba_{l}"),
                            proba.chunks(*n_classes).map(|row| row[k]).collect(),
                        )
                    })
                    .collect();
                (column, extra)
            }
            (Predictions::Values(v), _) => (PredictionColumn::Numbers(v.clone()), Vec::new()),
            (Predictions::Classes { predicted, .. }, None) => (
                PredictionColumn::Numbers(predicted.iter().map(|c| *c as f64).collect()),
                Vec::new(),
            ),
        }
    }

    /// Scores one chunk (`base`: the first row of the frame it was cut from) and refuses a prediction
    /// that is not a finite number, naming the row's line.
    fn score_chunk(&self, mut frame: Frame, base: u64) -> Result<Predictions, ScoreFailure> {
        let lines = frame.lines.clone();
        let offset = usize::try_from(frame.first_row.saturating_sub(base)).unwrap_or(usize::MAX);
        for step in &self.steps {
            frame = step.apply(frame).map_err(ScoreFailure::whole)?;
        }
        let predictions = predict(&self.train, &frame).map_err(ScoreFailure::whole)?;
        if let Some((r, what)) = non_finite(&predictions) {
            let line = lines.get(r).copied().unwrap_or(r as u64 + 1);
            return Err(ScoreFailure {
                row: Some(offset.saturating_add(r)),
                error: Error::data(format!(
                    "line {line} of {}: the model's {what}, not a finite number; it is neither answered nor recorded",
                    frame.source
                ))
                .with_hint(
                    "a value in this row lies far outside the training data (e.g. a number near 1e308); check the row's numbers",
                ),
            });
        }
        Ok(predictions)
    }

    /// Reads CSV bytes with the training data's read options, taking each column's type from the fitted
    /// schema (never from the rows at hand) and reading only the schema's columns.
    pub fn read_csv(&self, bytes: &[u8], source: &str) -> Result<Frame> {
        let mut optional = vec![self.target.as_str()];
        optional.extend(self.id_column.as_deref());
        let expected = Expected {
            schema: &self.schema,
            optional: &optional,
        };
        crate::frame::read_csv_expecting(bytes, &self.read, &expected, source)
    }

    /// The id column's values as they should be written beside predictions.
    pub fn ids(&self, frame: &Frame) -> Option<Vec<IdValue>> {
        let col = frame.column(self.id_column.as_deref()?)?;
        Some(match &col.data {
            ColumnData::Numeric(v) => v
                .iter()
                .map(|x| {
                    if x.is_nan() {
                        IdValue::Missing
                    } else {
                        IdValue::Number(*x)
                    }
                })
                .collect(),
            ColumnData::Categorical(v) => v
                .iter()
                .map(|x| x.map_or(IdValue::Missing, |s| IdValue::Text(Arc::from(s))))
                .collect(),
        })
    }

    /// Decodes JSON records into a frame (one row per record, in order) and their canonical encodings.
    /// Every training column except the target and the id must be present (`null` = missing); numeric
    /// columns take numbers, categorical columns take strings (or integers, written as in a CSV file);
    /// a string equal to one of the pipeline's `na_values`, or empty, is missing, as in a CSV file.
    pub fn decode_records(&self, records: &[&Map<String, Value>], source: &str) -> Result<Records, RecordError> {
        let known = |name: &str| self.schema.iter().any(|(n, _)| n == name);
        for (i, rec) in records.iter().enumerate() {
            if let Some(extra) = rec.keys().find(|k| !known(k)) {
                let mut error = Error::data(format!(
                    "record {} has a field \"{extra}\" that the model was not trained with",
                    i + 1
                ))
                .for_column(extra);
                if let Some(h) = crate::error::did_you_mean(extra, self.schema.iter().map(|(n, _)| n.as_str())) {
                    error = error.with_hint(h);
                } else {
                    error = error.with_hint("send only the training columns (GET /v1/model lists them)");
                }
                return Err(RecordError { record: i, error });
            }
        }
        let mut columns = Vec::with_capacity(self.schema.len());
        for (name, ty) in &self.schema {
            let optional = name == &self.target || Some(name) == self.id_column.as_ref();
            if optional && !records.iter().any(|r| r.contains_key(name)) {
                continue;
            }
            let data = match ty {
                ColumnType::Numeric => {
                    let mut values = Vec::with_capacity(records.len());
                    for (i, rec) in records.iter().enumerate() {
                        values.push(self.numeric_field(rec, name, optional).map_err(|error| RecordError {
                            record: i,
                            error: error.for_column(name),
                        })?);
                    }
                    ColumnData::Numeric(values.into())
                }
                ColumnType::Categorical => {
                    let mut values = Vec::with_capacity(records.len());
                    for (i, rec) in records.iter().enumerate() {
                        values.push(self.text_field(rec, name, optional).map_err(|error| RecordError {
                            record: i,
                            error: error.for_column(name),
                        })?);
                    }
                    ColumnData::Categorical(Texts::from_values(values))
                }
            };
            columns.push(Column {
                name: name.clone(),
                data,
            });
        }
        let canonical = (0..records.len())
            .map(|r| canonical_record(&columns, r))
            .collect::<Result<Vec<_>>>()
            .map_err(|error| RecordError { record: 0, error })?;
        Ok(Records {
            frame: Frame {
                columns,
                lines: (1..=records.len() as u64).collect(),
                source: source.to_string(),
                first_row: 0,
            },
            canonical,
        })
    }

    fn numeric_field(&self, rec: &Map<String, Value>, name: &str, optional: bool) -> Result<f64> {
        match rec.get(name) {
            None if optional => Ok(f64::NAN),
            None => Err(missing_field(name)),
            Some(Value::Null) => Ok(f64::NAN),
            Some(Value::Number(n)) => n
                .as_f64()
                .filter(|x| x.is_finite())
                .ok_or_else(|| Error::data(format!("field \"{name}\" holds {n}, which is not a finite number"))),
            Some(Value::String(s)) if s.is_empty() || self.na_values.contains(s) => Ok(f64::NAN),
            Some(other) => Err(Error::data(format!(
                "field \"{name}\" must be a number or null, but it is {}",
                describe_json(other)
            ))
            .with_hint("send numbers without quotes; send null for a missing value")),
        }
    }

    fn text_field(&self, rec: &Map<String, Value>, name: &str, optional: bool) -> Result<Option<Arc<str>>> {
        match rec.get(name) {
            None if optional => Ok(None),
            None => Err(missing_field(name)),
            Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() || self.na_values.contains(s) => Ok(None),
            Some(Value::String(s)) => Ok(Some(Arc::from(s.as_str()))),
            Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(Some(Arc::from(n.to_string().as_str()))),
            // As gathering writes a boolean (NDJSON, Parquet, a database) into the training data.
            Some(Value::Bool(b)) => Ok(Some(Arc::from(if *b { "true" } else { "false" }))),
            Some(other) => Err(Error::data(format!(
                "field \"{name}\" is categorical and must be a string or null, but it is {}",
                describe_json(other)
            ))
            .with_hint("send the category as text, exactly as it appears in the training data")),
        }
    }

    /// Scores one canonical record (as stored in the ledger).
    pub fn score_canonical(&self, bytes: &[u8]) -> Result<Predictions> {
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| Error::internal(format!("stored input is not a JSON record: {e}")))?;
        let map = value
            .as_object()
            .ok_or_else(|| Error::internal("stored input is not a JSON object"))?;
        let records = self.decode_records(&[map], "stored input").map_err(|e| e.error)?;
        self.score(records.frame)
    }

    /// The id of one prediction: this run and model applied to this input.
    pub fn prediction_id(&self, input: &Id) -> Id {
        crate::provenance::prediction_id(&self.run, &self.model, input)
    }

    /// The ledger entry of one record's prediction (`pair`: the champion's prediction, for a shadow).
    pub fn record_entry(
        &self,
        input: Id,
        predictions: &Predictions,
        channel: Channel,
        when: Made<'_>,
        pair: Option<Id>,
    ) -> Entry {
        Entry {
            seq: 0,
            prediction: self.prediction_id(&input),
            run: self.run,
            model: self.model,
            input,
            input_format: ledger::RECORD_FORMAT.into(),
            output: output_digest(predictions),
            rows: 1,
            value: single_value(predictions),
            channel,
            role: if pair.is_some() { "shadow" } else { "champion" }.into(),
            pair,
            time: when.time.to_string(),
            source: when.source.to_string(),
        }
    }
}

/// Why a frame could not be scored, and the row (0-based, in the frame) at fault when one row is.
#[derive(Debug)]
pub struct ScoreFailure {
    pub row: Option<usize>,
    pub error: Error,
}

impl ScoreFailure {
    fn whole(error: Error) -> ScoreFailure {
        ScoreFailure { row: None, error }
    }
}

/// The first row whose prediction is not a finite number, and what was not finite: a regressor's value,
/// or any of a classifier's probabilities (which decide its class).
fn non_finite(predictions: &Predictions) -> Option<(usize, String)> {
    match predictions {
        Predictions::Values(v) => v
            .iter()
            .position(|x| !x.is_finite())
            .map(|r| (r, format!("prediction is {}", v[r]))),
        Predictions::Classes { proba, n_classes, .. } => {
            let i = proba.iter().position(|p| !p.is_finite())?;
            let n = (*n_classes).max(1);
            Some((i / n, format!("class probabilities hold {}", proba[i])))
        }
    }
}

/// When and from where a prediction was asked for, as the ledger records it.
#[derive(Clone, Copy)]
pub struct Made<'a> {
    pub time: &'a str,
    pub source: &'a str,
}

/// Decoded records: the frame to score and each record's canonical bytes (its content id is their blake3).
pub struct Records {
    pub frame: Frame,
    pub canonical: Vec<Vec<u8>>,
}

/// The digest of predictions: blake3 of their IEEE-754 bits, little-endian, in row order.
pub fn output_digest(predictions: &Predictions) -> Id {
    Id::of_bytes(&predictions.to_bytes())
}

/// The value the ledger shows for a single prediction: a regressor's value, a classifier's class index.
pub fn single_value(predictions: &Predictions) -> Option<f64> {
    if predictions.len() != 1 {
        return None;
    }
    Some(match predictions {
        Predictions::Values(v) => v[0],
        Predictions::Classes { predicted, .. } => predicted[0] as f64,
    })
}

/// The canonical JSON of row `r`: keys sorted, `null` for missing, numbers in shortest round-trip form.
fn canonical_record(columns: &[Column], r: usize) -> Result<Vec<u8>> {
    let mut map = BTreeMap::new();
    for col in columns {
        let value = match &col.data {
            ColumnData::Numeric(v) if v[r].is_nan() => Value::Null,
            ColumnData::Numeric(v) => serde_json::Number::from_f64(v[r]).map_or(Value::Null, Value::Number),
            ColumnData::Categorical(v) => v.get(r).map_or(Value::Null, |s| Value::String(s.to_string())),
        };
        map.insert(col.name.as_str(), value);
    }
    serde_json::to_vec(&map).map_err(|e| Error::internal(format!("cannot encode a record: {e}")))
}

fn missing_field(name: &str) -> Error {
    Error::data(format!("field \"{name}\" is missing; the fitted pipeline needs it"))
        .with_hint("send every training column; use null for a missing value")
}

fn describe_json(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {}", Value::String(s.clone())),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// One scored record, as the stream and REST write it.
pub fn prediction_record(scorer: &Scorer, id: Option<Value>, row: &Predictions, prediction: &Id) -> Map<String, Value> {
    let mut out = Map::new();
    if let (Some(name), Some(id)) = (scorer.id_column.as_deref(), id) {
        out.insert(name.to_string(), id);
    }
    out.insert("prediction".into(), scorer.prediction_json(row, 0));
    if let (Some(proba), Some((labels, _))) = (row.row_proba(0), scorer.classes()) {
        let map: Map<String, Value> = labels
            .iter()
            .zip(proba)
            .map(|(l, p)| (l.clone(), crate::tables::json_number_exact(*p)))
            .collect();
        out.insert("probabilities".into(), Value::Object(map));
    }
    out.insert("model".into(), Value::String(scorer.model.hex()));
    out.insert("run".into(), Value::String(scorer.run.hex()));
    out.insert("prediction_id".into(), Value::String(prediction.hex()));
    out
}
