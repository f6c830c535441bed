//! Reading a stored run back: its record through its ref, checked against the run id it claims (the
//! pipeline, snapshot, code and version must give that id and its stage keys), a prediction record, a
//! hash prefix resolved to a run, and a run's fitted stage outputs. What serve, predict, export, report
//! and reproduce start from.

use std::collections::BTreeMap;

use crate::digest::Id;
use crate::error::{Error, Result};
use crate::fitted::StageOutput;
use crate::plan::{Plan, run_id, stage_key};
use crate::provenance::{PredictionRecord, RunRecord};
use crate::spec::Pipeline;
use crate::store::{LocalStore, RefKind, Resolved, Store};

pub fn load_json<T: serde::de::DeserializeOwned>(store: &dyn Store, id: &Id, what: &str) -> Result<T> {
    let bytes = store.get(id)?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Lookup {
        message: format!("object {id} is not a {what}: {e}"),
        hint: Some(format!("pass the id of a {what}")),
    })
}

/// A run's record, through its ref, checked: the ref must point at the record of that run, and the record's
/// content (pipeline, snapshot, code, mlpipe version) must give that run id and its stage keys.
pub fn load_run(store: &LocalStore, run: &Id) -> Result<RunRecord> {
    let record = store.get_ref(RefKind::Run, run)?.ok_or_else(|| Error::Lookup {
        message: format!("run {run} is not in {}", store.root().display()),
        hint: Some("list runs with `mlpipe log`".into()),
    })?;
    load_run_record(store, run, &record)
}

/// The record a run ref (`run` → `record`) points at, checked as [`load_run`] does.
pub fn load_run_record(store: &LocalStore, run: &Id, record: &Id) -> Result<RunRecord> {
    let r: RunRecord = load_json(store, record, "run record")?;
    if r.run != *run {
        return Err(Error::Lookup {
            message: format!(
                "the run ref {} points at object {record}, which is the record of run {}, not of run {run}",
                store.ref_file(RefKind::Run, run).display(),
                r.run
            ),
            hint: Some(wrong_ref_hint(run)),
        });
    }
    checked_run(store, record, r)
}

fn wrong_ref_hint(key: &Id) -> String {
    format!(
        "the ref was edited or copied from another; `mlpipe verify --repair` points it back at {}'s own record when \
         the store holds it, and moves it aside to v1/quarantine/ otherwise",
        key.short()
    )
}

/// Why a record cannot be trusted.
#[derive(Debug)]
pub enum Fault {
    /// Its content does not give the id it carries (it was edited or forged): what differs.
    Mismatch(String),
    /// It cannot be checked: an object it needs (its pipeline) is missing or damaged.
    Unreadable(Error),
}

/// Recomputes a run's id from its record — the stored pipeline, the snapshot id, the code state and the
/// mlpipe version, as `mlpipe run` computes it ([`crate::plan::run_id`]) — and every stage key from the
/// pipeline and the recorded outputs that feed each stage (with the recorded mlpipe version and target).
pub fn check_run_record(store: &dyn Store, record: &RunRecord) -> std::result::Result<(), Fault> {
    let pipeline = check_run_id(store, record)?;
    check_stage_keys(&pipeline, record)
}

/// The first half of [`check_run_record`]: the run id (and the seed and name beside it), not the stage
/// keys. Returns the record's pipeline.
pub fn check_run_id(store: &dyn Store, record: &RunRecord) -> std::result::Result<Pipeline, Fault> {
    let bytes = store.get(&record.pipeline).map_err(Fault::Unreadable)?;
    let pipeline = Pipeline::from_canonical_json(&bytes).map_err(Fault::Unreadable)?;
    let id = run_id(&pipeline, &record.snapshot, &record.code, &record.tool.mlpipe);
    if id != record.run {
        return Err(Fault::Mismatch(format!(
            "its pipeline, snapshot, code and mlpipe version give run id {id}"
        )));
    }
    if pipeline.seed != record.seed || pipeline.name != record.pipeline_name {
        return Err(Fault::Mismatch(format!(
            "it names pipeline \"{}\" with seed {}, but its pipeline object is \"{}\" with seed {}",
            record.pipeline_name, record.seed, pipeline.name, pipeline.seed
        )));
    }
    Ok(pipeline)
}

/// The second half of [`check_run_record`]: every stage key, recomputed from the pipeline and the recorded
/// output that feeds the stage, and the stage seeds.
fn check_stage_keys(pipeline: &Pipeline, record: &RunRecord) -> std::result::Result<(), Fault> {
    let plan = Plan::new(pipeline);
    let seeds: BTreeMap<String, String> = plan.stages.iter().map(|s| (s.name.clone(), Id(s.seed).hex())).collect();
    if seeds != record.stage_seeds {
        return Err(Fault::Mismatch(
            "its stage seeds are not those its pipeline's seed derives".into(),
        ));
    }
    if plan.stages.len() != record.stages.len() {
        return Err(Fault::Mismatch(format!(
            "it lists {} stages, but its pipeline has {}",
            record.stages.len(),
            plan.stages.len()
        )));
    }
    let mut input = record.snapshot;
    for (planned, stage) in plan.stages.iter().zip(&record.stages) {
        if planned.name != stage.name || planned.kind_name != stage.kind {
            return Err(Fault::Mismatch(format!(
                "it lists stage {} ({}) where its pipeline has {} ({})",
                stage.name, stage.kind, planned.name, planned.kind_name
            )));
        }
        let key = stage_key(planned, &input, &record.tool.mlpipe, &record.tool.target);
        if key != stage.key {
            return Err(Fault::Mismatch(format!(
                "it gives stage {} the key {}, but the pipeline and the stage's input {} give {key}",
                stage.name, stage.key, input
            )));
        }
        input = stage.output;
    }
    Ok(())
}

/// A run record that passed [`check_run_record`], or the error that says why not.
fn checked_run(store: &LocalStore, record_id: &Id, record: RunRecord) -> Result<RunRecord> {
    match check_run_record(store, &record) {
        Ok(()) => Ok(record),
        Err(Fault::Unreadable(e)) => Err(e),
        Err(Fault::Mismatch(why)) => Err(mismatch_error(record_id, &record, &why)),
    }
}

fn mismatch_error(record_id: &Id, record: &RunRecord, why: &str) -> Error {
    Error::Lookup {
        message: format!(
            "the record {record_id} of run {} does not match its content: {why}",
            record.run
        ),
        hint: Some(format!(
            "the record was edited or forged; `mlpipe verify --repair` moves the ref to it aside, and re-running the \
             pipeline writes a true record of run {}",
            record.run.short()
        )),
    }
}

/// The fitted model of a run (its train stage's output).
pub fn run_model(record: &RunRecord) -> Option<Id> {
    record.stages.iter().find(|s| s.kind == "train").map(|s| s.output)
}

/// A prediction's record, through its ref, checked: the ref must point at the record of that prediction,
/// the record's run, model and input must give that prediction id, and (when its run is in the store)
/// the model must be that run's.
pub fn load_prediction(store: &LocalStore, id: &Id) -> Result<PredictionRecord> {
    let record = store.get_ref(RefKind::Prediction, id)?.ok_or_else(|| Error::Lookup {
        message: format!("prediction {id} is not in {}", store.root().display()),
        hint: None,
    })?;
    let rec: PredictionRecord = load_json(store, &record, "prediction record")?;
    if let Err(why) = check_prediction_record(id, &rec) {
        return Err(Error::Lookup {
            message: format!(
                "the prediction ref {} points at object {record}, {why}",
                store.ref_file(RefKind::Prediction, id).display()
            ),
            hint: Some(wrong_ref_hint(id)),
        });
    }
    if store.get_ref(RefKind::Run, &rec.run).ok().flatten().is_some() {
        let run = load_run(store, &rec.run)?;
        if let Some(model) = run_model(&run).filter(|m| *m != rec.model) {
            return Err(Error::Lookup {
                message: format!(
                    "the record {record} of prediction {id} names model {}, but run {} holds model {model}",
                    rec.model,
                    rec.run.short()
                ),
                hint: Some(
                    "the record was forged; `mlpipe verify --repair` moves its ref aside, and predicting again \
                     writes a true one"
                        .into(),
                ),
            });
        }
    }
    Ok(rec)
}

/// Whether a prediction record is the record of prediction `id`: it says so, and its run, model and input
/// give that id ([`crate::provenance::prediction_id`]). `Err` says what it is instead.
pub fn check_prediction_record(id: &Id, rec: &PredictionRecord) -> std::result::Result<(), String> {
    if rec.prediction != *id {
        return Err(format!(
            "which is the record of prediction {}, not of prediction {id}",
            rec.prediction
        ));
    }
    let computed = crate::provenance::prediction_id(&rec.run, &rec.model, &rec.input);
    if computed != *id {
        return Err(format!(
            "whose run, model and input give prediction id {computed}: the record was edited or forged"
        ));
    }
    Ok(())
}

/// A run named by a hash prefix for `reproduce`, which re-executes every stage and compares each output
/// with the record: the ref must point at that run's record and the record must give that run id; its
/// stage outputs (and so the keys that chain on them) are what the re-execution proves or refutes.
pub fn resolve_run_to_reproduce(store: &LocalStore, hash: &str) -> Result<RunRecord> {
    let (record_id, record) = match store.resolve(hash)? {
        Resolved::Run(run) => {
            let record_id = store.get_ref(RefKind::Run, &run)?.ok_or_else(|| Error::Lookup {
                message: format!("run {run} is not in {}", store.root().display()),
                hint: Some("list runs with `mlpipe log`".into()),
            })?;
            let r: RunRecord = load_json(store, &record_id, "run record")?;
            if r.run != run {
                return Err(Error::Lookup {
                    message: format!(
                        "the run ref {} points at object {record_id}, which is the record of run {}, not of run {run}",
                        store.ref_file(RefKind::Run, &run).display(),
                        r.run
                    ),
                    hint: Some(wrong_ref_hint(&run)),
                });
            }
            (record_id, r)
        }
        _ => return resolve_run(store, hash),
    };
    match check_run_id(store, &record) {
        Ok(_) => Ok(record),
        Err(Fault::Unreadable(e)) => Err(e),
        Err(Fault::Mismatch(why)) => Err(mismatch_error(&record_id, &record, &why)),
    }
}

/// A run named by a hash prefix (a run id, or a run record's object id), checked as [`load_run`] does.
pub fn resolve_run(store: &LocalStore, hash: &str) -> Result<RunRecord> {
    match store.resolve(hash)? {
        Resolved::Run(id) => load_run(store, &id),
        Resolved::Object(id) => {
            let record: RunRecord = load_json(store, &id, "run record")?;
            checked_run(store, &id, record)
        }
        Resolved::Prediction(id) => Err(Error::Lookup {
            message: format!("{} is a prediction, not a run", id.short()),
            hint: Some("`mlpipe show` it to see its run".into()),
        }),
    }
}

/// Run and prediction records found by their content (not through refs): what a missing or damaged ref
/// pointed at. Objects are told apart by their first bytes (records are JSON objects that start with their
/// `kind`), so only records are read whole.
#[derive(Debug, Default)]
pub struct RecordIndex {
    pub runs: BTreeMap<Id, Vec<(Id, RunRecord)>>,
    pub predictions: BTreeMap<Id, Vec<(Id, PredictionRecord)>>,
}

impl RecordIndex {
    pub fn build(store: &LocalStore) -> Result<RecordIndex> {
        let mut index = RecordIndex::default();
        for id in store.object_ids()? {
            let Some(head) = store.object_head(&id, 32)? else {
                continue;
            };
            if head.starts_with(br#"{"kind":"run","#) {
                if let Ok(r) = load_json::<RunRecord>(store, &id, "run record") {
                    index.runs.entry(r.run).or_default().push((id, r));
                }
            } else if head.starts_with(br#"{"kind":"prediction","#)
                && let Ok(p) = load_json::<PredictionRecord>(store, &id, "prediction record")
            {
                index.predictions.entry(p.prediction).or_default().push((id, p));
            }
        }
        Ok(index)
    }

    /// The record of `run` that passes [`check_run_record`] (the first made, when there are several).
    pub fn run_record(&self, store: &LocalStore, run: &Id) -> Option<(Id, RunRecord)> {
        let mut found: Vec<&(Id, RunRecord)> = self
            .runs
            .get(run)?
            .iter()
            .filter(|(_, r)| check_run_record(store, r).is_ok())
            .collect();
        found.sort_by(|a, b| a.1.created.cmp(&b.1.created).then_with(|| a.0.cmp(&b.0)));
        found.first().map(|(id, r)| (*id, r.clone()))
    }

    /// The record of `prediction` that passes [`check_prediction_record`] (the first made).
    pub fn prediction_record(&self, prediction: &Id) -> Option<(Id, PredictionRecord)> {
        let mut found: Vec<&(Id, PredictionRecord)> = self
            .predictions
            .get(prediction)?
            .iter()
            .filter(|(_, p)| check_prediction_record(prediction, p).is_ok())
            .collect();
        found.sort_by(|a, b| a.1.created.cmp(&b.1.created).then_with(|| a.0.cmp(&b.0)));
        found.first().map(|(id, p)| (*id, p.clone()))
    }
}

/// The recorded pipeline and stage outputs of a run.
pub fn load_fitted(store: &dyn Store, record: &RunRecord) -> Result<(Pipeline, Vec<StageOutput>)> {
    let pipeline = Pipeline::from_canonical_json(&store.get(&record.pipeline)?)?;
    let outputs = record
        .stages
        .iter()
        .map(|s| StageOutput::from_bytes(&store.get(&s.output)?, &s.output))
        .collect::<Result<Vec<_>>>()?;
    Ok((pipeline, outputs))
}
