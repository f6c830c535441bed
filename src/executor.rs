//! Brings plan, stages and store together: walks the stages, reuses cached outputs by key, and only
//! loads and transforms data when some stage actually has to run.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde::Serialize;

use crate::digest::Id;
use crate::error::{Error, Result};
use crate::fitted::{
    CandidateScore, Classes, Confusion, CvReport, EvaluateState, FrameDigest, Predictions, StageOutput, StageState,
    TrainState, labels_of, predict,
};
use crate::frame::{ColumnType, Frame, Released, read_csv, read_csv_releasing};
use crate::metrics;
use crate::models::{self, FitTarget, Model};
use crate::plan::{Plan, StageKind};
use crate::spec::{Pipeline, TargetTransform, Task};
use crate::stages::{self, FitContext, analyse, power_transform, split};
use crate::store::{RefKind, RefRead, Store};

/// How one stage went, for people and for `--json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageResult {
    pub name: String,
    pub kind: String,
    pub key: Id,
    pub output: Id,
    pub cached: bool,
    pub seconds: f64,
}

/// Reports progress; the CLI draws it, the library never prints.
pub trait Progress {
    fn stage_started(&self, _name: &str, _index: usize, _total: usize) {}
    fn stage_finished(&self, _result: &StageResult) {}
    /// Something the user should know that is not an error (a damaged cache entry recomputed, …).
    fn warn(&self, _message: &str) {}
}

pub struct NoProgress;
impl Progress for NoProgress {}

/// The data snapshot a run reads: its content id and bytes.
pub struct Snapshot {
    pub id: Id,
    /// The canonical CSV, until the gather stage has read it into a frame: then released, unless
    /// cross-validation will read the train rows again (a million rows are 300 MB of CSV).
    bytes: Mutex<Vec<u8>>,
    /// How to name the data in messages.
    pub name: String,
    /// The snapshot already read into a frame (a typed file read straight in, checked against the digest
    /// its gather stage recorded); `bytes` is then empty. Handed to the gather stage as `bytes` are.
    frame: Mutex<Option<Frame>>,
    /// Whether the executor's store holds the snapshot, so its bytes can be let go while they are parsed
    /// and read again in the rare case that needs them again.
    stored: bool,
}

impl Snapshot {
    pub fn new(id: Id, bytes: Vec<u8>, name: String, frame: Option<Frame>) -> Snapshot {
        Snapshot {
            id,
            bytes: Mutex::new(bytes),
            name,
            frame: Mutex::new(frame),
            stored: false,
        }
    }

    /// The executor's store holds this snapshot (under its id): its bytes may be let go while parsed.
    #[must_use]
    pub fn stored(mut self) -> Snapshot {
        self.stored = true;
        self
    }
}

pub struct Executed {
    pub stages: Vec<StageResult>,
    pub outputs: Vec<StageOutput>,
}

/// The data flowing between stages, once loaded.
enum Data {
    All(Frame),
    Split { train: Frame, test: Frame },
}

impl Data {
    fn digests(&self) -> BTreeMap<String, FrameDigest> {
        match self {
            Data::All(f) => BTreeMap::from([("all".to_string(), FrameDigest::of(f))]),
            Data::Split { train, test } => BTreeMap::from([
                ("train".to_string(), FrameDigest::of(train)),
                ("test".to_string(), FrameDigest::of(test)),
            ]),
        }
    }

    fn split(&self, stage: &str) -> Result<(&Frame, &Frame)> {
        match self {
            Data::Split { train, test } => Ok((train, test)),
            Data::All(_) => Err(Error::internal(format!("stage {stage} ran before the split"))),
        }
    }
}

pub struct Executor<'a> {
    pub pipeline: &'a Pipeline,
    pub plan: Plan,
    pub store: &'a dyn Store,
    pub use_cache: bool,
    pub progress: &'a dyn Progress,
}

impl<'a> Executor<'a> {
    pub fn new(pipeline: &'a Pipeline, store: &'a dyn Store, use_cache: bool, progress: &'a dyn Progress) -> Self {
        Executor {
            pipeline,
            plan: Plan::new(pipeline),
            store,
            use_cache,
            progress,
        }
    }

    /// Looks a stage key up in the store; a damaged or unreadable cached output counts as a miss.
    fn cached(&self, key: &Id, name: &str, kind: StageKind) -> Result<Option<(Id, StageOutput)>> {
        if !self.use_cache {
            return Ok(None);
        }
        let out_id = match self.store.read_ref(RefKind::StageKey, key)? {
            RefRead::Missing => return Ok(None),
            RefRead::Target(id) => id,
            // Moved aside (never deleted); recomputing the stage writes the ref again.
            RefRead::Damaged(d) => {
                let moved = match self.store.quarantine_ref(RefKind::StageKey, key) {
                    Ok(Some(to)) => format!("; moved it aside to {}", to.display()),
                    Ok(None) => String::new(),
                    Err(e) => format!("; it could not be moved aside ({e}) and is overwritten"),
                };
                self.progress.warn(&format!(
                    "the stage-key ref of {name} ({}) {}{moved}; recomputing {name}",
                    d.path.display(),
                    d.what
                ));
                return Ok(None);
            }
        };
        let parsed = self
            .store
            .get(&out_id)
            .and_then(|bytes| StageOutput::from_bytes(&bytes, &out_id));
        match parsed {
            Ok(out) if !state_fits(&out.state, kind) => {
                self.progress.warn(&format!(
                    "the stage-key ref of {name} points at {out_id}, which is not the output of a {name} stage; recomputing it"
                ));
                Ok(None)
            }
            Ok(out) => Ok(Some((out_id, out))),
            Err(e @ (Error::Corrupt { .. } | Error::Lookup { .. } | Error::Internal { .. })) => {
                self.progress
                    .warn(&format!("cached output of {name} is unusable ({e}); recomputing it"));
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    pub fn run(&self, snapshot: &Snapshot) -> Result<Executed> {
        self.run_through(snapshot, self.plan.stages.len() - 1)
    }

    /// Runs the stages `0..=last` (fitting or reusing each), and stops there.
    pub fn run_through(&self, snapshot: &Snapshot, last: usize) -> Result<Executed> {
        let total = self.plan.stages.len();
        let mut results = Vec::with_capacity(total);
        let mut outputs: Vec<StageOutput> = Vec::with_capacity(total);
        let mut input = snapshot.id;
        let mut data: Option<Data> = None;
        for index in 0..=last.min(total - 1) {
            let stage = &self.plan.stages[index];
            self.progress.stage_started(&stage.name, index, total);
            #[allow(clippy::disallowed_methods)] // timing only reaches the progress report
            let started = Instant::now();
            let key = self.plan.key(index, &input);
            let (output_id, output, cached) = if let Some((id, out)) = self.cached(&key, &stage.name, stage.kind)? {
                if let StageState::Gather { suspect_text, .. } = &out.state {
                    for t in suspect_text {
                        self.progress.warn(&t.warning(&snapshot.name));
                    }
                }
                if let Some(d) = data.take() {
                    data = Some(self.apply(index, &out, Some(d), snapshot)?);
                }
                (id, out, true)
            } else {
                let current = match data.take() {
                    Some(d) => Some(d),
                    None if index == 0 => None,
                    None => Some(self.materialise(index, &outputs, snapshot)?),
                };
                let (out, next) = self.fit(index, current, snapshot, &outputs)?;
                let id = self.store.put(&storable(&out, &stage.name)?)?;
                self.store.set_ref(RefKind::StageKey, &key, &id)?;
                data = Some(next);
                (id, out, false)
            };
            let result = StageResult {
                name: stage.name.clone(),
                kind: stage.kind_name.clone(),
                key,
                output: output_id,
                cached,
                seconds: started.elapsed().as_secs_f64(),
            };
            self.progress.stage_finished(&result);
            results.push(result);
            outputs.push(output);
            input = output_id;
        }
        Ok(Executed {
            stages: results,
            outputs,
        })
    }

    /// Rebuilds the data that stage `index` takes in, from the snapshot and the earlier stages' states,
    /// and checks it against the digest the previous stage recorded.
    fn materialise(&self, index: usize, outputs: &[StageOutput], snapshot: &Snapshot) -> Result<Data> {
        let mut data = None;
        for (i, out) in outputs.iter().enumerate().take(index) {
            data = Some(self.apply(i, out, data, snapshot)?);
        }
        let data = data.ok_or_else(|| Error::internal("nothing to materialise"))?;
        let expected = &outputs[index - 1].data;
        if &data.digests() != expected {
            return Err(Error::Mismatch {
                message: format!(
                    "re-applying the cached states before stage {} does not give the data they were recorded with; the store holds results this mlpipe does not reproduce",
                    self.plan.stages[index].name
                ),
            });
        }
        Ok(data)
    }

    fn parse_snapshot(&self, snapshot: &Snapshot) -> Result<Frame> {
        // Nothing after the first read parses the snapshot again, except cross-validation: otherwise
        // the bytes (or the frame read straight in) are let go, so the split can free each column.
        let keep = self.pipeline.cv.is_some();
        let mut read_in = snapshot.frame.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(frame) = if keep { read_in.clone() } else { read_in.take() } {
            return Ok(frame);
        }
        let mut bytes = snapshot.bytes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let read = &self.pipeline.gather.read;
        if keep || !snapshot.stored {
            let frame = read_csv(&bytes, read, &snapshot.name)?;
            if !keep {
                *bytes = Vec::new();
            }
            return Ok(frame);
        }
        match read_csv_releasing(std::mem::take(&mut *bytes), read, &snapshot.name)? {
            Released::Frame(frame) => Ok(frame),
            // Read again from the store (checked against its id).
            Released::NeedsBytesAgain => {
                let bytes = self.store.get(&snapshot.id).map_err(|e| {
                    Error::data(format!(
                        "gather had to read the snapshot of {} again, and the store no longer gives it back intact: {e}",
                        snapshot.name
                    ))
                    .with_hint(
                        "something changed the store while this run read it; run again (the data file is stored anew) and `mlpipe verify` to check the store",
                    )
                    .in_stage("gather")
                })?;
                read_csv(&bytes, read, &snapshot.name)
            }
        }
    }

    /// Applies a stage's recorded state to the data (no fitting).
    fn apply(&self, index: usize, out: &StageOutput, data: Option<Data>, snapshot: &Snapshot) -> Result<Data> {
        let name = &self.plan.stages[index].name;
        match (&out.state, data) {
            (StageState::Gather { .. }, _) => Ok(Data::All(self.parse_snapshot(snapshot)?)),
            (StageState::Split(s), Some(Data::All(all))) => {
                let (train, test) = all.into_two(&s.train, &s.test);
                Ok(Data::Split { train, test })
            }
            (StageState::Step(f), Some(Data::Split { train, test })) => Ok(Data::Split {
                train: f.apply_train(train).map_err(|e| e.in_stage(name))?,
                test: f.apply(test).map_err(|e| e.in_stage(name))?,
            }),
            (StageState::Analyse(_) | StageState::Train(_) | StageState::Evaluate(_), Some(d)) => Ok(d),
            _ => Err(Error::internal(format!(
                "stage {name}: recorded state does not fit the data it follows"
            ))),
        }
    }

    /// Runs stage `index` for real: fits its state on the train rows and applies it.
    fn fit(
        &self,
        index: usize,
        data: Option<Data>,
        snapshot: &Snapshot,
        earlier: &[StageOutput],
    ) -> Result<(StageOutput, Data)> {
        let stage = &self.plan.stages[index];
        let p = self.pipeline;
        let mut ctx = FitContext {
            task: p.task,
            rng: ChaCha20Rng::from_seed(stage.seed),
            target: p.target.clone(),
            seed: stage.seed,
        };
        let protected = p.protected_columns();
        match stage.kind {
            StageKind::Gather => {
                let frame = self.parse_snapshot(snapshot)?;
                if frame.n_rows() == 0 {
                    return Err(
                        Error::data(format!("{} has no rows to train on (only its columns)", snapshot.name))
                            .with_hint("check [gather] source (and a database query's filter or point in time)")
                            .in_stage("gather"),
                    );
                }
                check_target(p, &frame)?;
                // Kept in the stage's state (values and lines only, no path), so a cached run warns too.
                let suspect_text = frame.numbers_read_as_text(&p.gather.read.dtypes);
                for t in &suspect_text {
                    self.progress.warn(&t.warning(&snapshot.name));
                }
                let data = BTreeMap::from([("all".to_string(), FrameDigest::of(&frame))]);
                let out = StageOutput::new(
                    StageState::Gather {
                        schema: frame.schema(),
                        suspect_text,
                    },
                    data,
                );
                Ok((out, Data::All(frame)))
            }
            StageKind::Split => {
                let Some(Data::All(all)) = data else {
                    return Err(Error::internal("split without data"));
                };
                let fitted = split::fit(&p.split, &all, &mut ctx.rng, p.origin.split_column.as_ref())
                    .map_err(|e| e.in_stage("split"))?;
                let (train, test) = all.into_two(&fitted.train, &fitted.test);
                let d = Data::Split { train, test };
                Ok((StageOutput::new(StageState::Split(fitted), d.digests()), d))
            }
            StageKind::Analyse => {
                let d = data.ok_or_else(|| Error::internal("analyse without data"))?;
                let (train, _) = d.split("analyse")?;
                let defaults = crate::spec::Analyse {
                    top_categories: 5,
                    rare_tolerance: 0.01,
                    correlation_threshold: 0.8,
                };
                let profile = analyse::profile(train, p.analyse.as_ref().unwrap_or(&defaults));
                Ok((StageOutput::new(StageState::Analyse(profile), d.digests()), d))
            }
            StageKind::Step(i) => {
                let step = &p.steps[i];
                let Some(Data::Split { train, test }) = data else {
                    return Err(Error::internal("step before split"));
                };
                // A column `[gather] columns` left unread is in the file but not here: say so.
                let unread = |e: Error| match e.column() {
                    Some(c)
                        if !p.gather.read.columns.is_empty()
                            && !p.gather.read.columns.iter().any(|k| k == c)
                            && train.column(c).is_none() =>
                    {
                        let hint = format!("`[gather] columns` does not read \"{c}\": add it there");
                        e.with_hint(hint).in_stage(&step.name)
                    }
                    _ => e.in_stage(&step.name),
                };
                let fitted = stages::fit_step(step, &train, &protected, &mut ctx).map_err(unread)?;
                let d = Data::Split {
                    train: fitted.apply_train(train).map_err(|e| e.in_stage(&step.name))?,
                    test: fitted.apply(test).map_err(|e| e.in_stage(&step.name))?,
                };
                Ok((StageOutput::new(StageState::Step(fitted), d.digests()), d))
            }
            StageKind::Train => {
                let d = data.ok_or_else(|| Error::internal("train without data"))?;
                let (train, _) = d.split("train")?;
                let (estimator, cv) = match &p.cv {
                    None => (&p.train.estimator, None),
                    Some(cv) => {
                        let candidates: Vec<&models::Estimator> = p
                            .train
                            .search
                            .as_ref()
                            .map_or_else(|| vec![&p.train.estimator], |s| s.candidates.iter().collect());
                        let raw = self.raw_train(snapshot, earlier)?;
                        let report = self
                            .cross_validate(cv, &candidates, &raw, stage.seed)
                            .map_err(|e| e.in_stage("train"))?;
                        (candidates[report.chosen], Some(report))
                    }
                };
                let mut state = fit_train_state(p, estimator, train, &protected, stage.seed)?;
                state.cv = cv;
                Ok((StageOutput::new(StageState::Train(state), d.digests()), d))
            }
            StageKind::Evaluate => {
                let d = data.ok_or_else(|| Error::internal("evaluate without data"))?;
                let (train, test) = d.split("evaluate")?;
                let Some(model) = earlier.iter().rev().find_map(|o| match &o.state {
                    StageState::Train(t) => Some(t),
                    _ => None,
                }) else {
                    return Err(Error::internal("evaluate needs the train stage's output"));
                };
                let (test_pred, test_metrics, confusion) = score(p, model, test).map_err(|e| e.in_stage("evaluate"))?;
                let (train_pred, train_metrics, _) = score(p, model, train).map_err(|e| e.in_stage("evaluate"))?;
                refuse_non_finite("train", &train_pred, &train_metrics).map_err(|e| e.in_stage("evaluate"))?;
                refuse_non_finite("test", &test_pred, &test_metrics).map_err(|e| e.in_stage("evaluate"))?;
                let state = EvaluateState {
                    test: test_metrics,
                    train: train_metrics,
                    test_predictions: Id::of_bytes(&test_pred.to_bytes()),
                    confusion,
                };
                Ok((StageOutput::new(StageState::Evaluate(state), d.digests()), d))
            }
        }
    }
}

/// A stage output's bytes, refused when they would not read back: JSON has no `inf` or `NaN`, so a state
/// that learned one (a variance of values above 1e154 overflows) would be stored as `null` and every later
/// load of the run would fail.
fn storable(out: &StageOutput, stage: &str) -> Result<Vec<u8>> {
    let bytes = out.to_bytes()?;
    if serde_json::from_slice::<StageOutput>(&bytes).is_err() {
        return Err(Error::data(
            "what this stage learned holds a number that is not finite (an overflow: values or squares of values \
             beyond ±1.8e308), which cannot be stored",
        )
        .with_hint("scale the large columns or the target down (a scale step, or target_transform = \"log\")")
        .in_stage(stage));
    }
    Ok(bytes)
}

/// Refuses a model whose predictions or metrics on a split are not finite numbers: a regressor whose
/// values overflow (a `log` target transform turning large scores into `inf`) scores nothing, and a run
/// record cannot hold a metric that is not a number.
fn refuse_non_finite(split: &str, predictions: &Predictions, metrics: &BTreeMap<String, f64>) -> Result<()> {
    if let Predictions::Values(values) = predictions
        && let Some((row, value)) = values.iter().enumerate().find(|(_, v)| !v.is_finite())
    {
        return Err(Error::data(format!(
            "the model predicts {value} for {split} row {} (of {}): it cannot be scored",
            row + 1,
            values.len()
        ))
        .with_hint(
            "the fit is unstable: look for collinear or unscaled features, a target_transform that overflows \
             (`log` turns large scores into inf), or use ridge with a larger alpha",
        ));
    }
    if let Some((name, value)) = metrics.iter().find(|(_, v)| !v.is_finite()) {
        return Err(Error::data(format!(
            "the {split} {name} is {value}, not a number that can be recorded"
        ))
        .with_hint(
            "check the metric suits the target (rmsle needs values above -1; auc needs both classes) and that \
                 no value is near ±1.8e308",
        ));
    }
    Ok(())
}

/// Whether a stored state is of the kind a stage produces (a stage-key ref copied from another kind of
/// stage points at one that is not).
fn state_fits(state: &StageState, kind: StageKind) -> bool {
    matches!(
        (state, kind),
        (StageState::Gather { .. }, StageKind::Gather)
            | (StageState::Split(_), StageKind::Split)
            | (StageState::Analyse(_), StageKind::Analyse)
            | (StageState::Step(_), StageKind::Step(_))
            | (StageState::Train(_), StageKind::Train)
            | (StageState::Evaluate(_), StageKind::Evaluate)
    )
}

/// Fits `estimator` on the (transformed) train rows: the target transformed or turned into classes.
fn fit_train_state(
    p: &Pipeline,
    estimator: &models::Estimator,
    train: &Frame,
    protected: &[&str],
    seed: [u8; 32],
) -> Result<TrainState> {
    let features = models::design_columns(train, protected).map_err(|e| e.in_stage("train"))?;
    let (model, target_lambda) = match p.task {
        Task::Clustering => (
            models::fit_design(
                estimator,
                &features,
                &FitTarget::Unsupervised { rows: train.n_rows() },
                seed,
            ),
            None,
        ),
        Task::Regression => {
            let y = target_values(p, train)?;
            let (y, lambda) = transform_target(p.train.target_transform, &y, train, &p.target)?;
            (
                models::fit_design(estimator, &features, &FitTarget::Values(&y), seed),
                lambda,
            )
        }
        Task::Classification => {
            let labels = target_labels(p, train)?;
            let classes = Classes::of(&labels);
            let y: Vec<u32> = classes.codes(&labels)?;
            let target = FitTarget::Classes {
                y: &y,
                labels: &classes.labels,
                numeric: classes.numeric,
            };
            (models::fit_design(estimator, &features, &target, seed), None)
        }
    };
    Ok(TrainState {
        target_transform: p.train.target_transform,
        target_lambda,
        model: model.map_err(|e| e.in_stage("train"))?,
        cv: None,
    })
}

impl Executor<'_> {
    /// The train rows as the split left them, before any step.
    fn raw_train(&self, snapshot: &Snapshot, earlier: &[StageOutput]) -> Result<Frame> {
        let split = earlier
            .iter()
            .find_map(|o| match &o.state {
                StageState::Split(s) => Some(s),
                _ => None,
            })
            .ok_or_else(|| Error::internal("cross-validation needs the split"))?;
        Ok(self.parse_snapshot(snapshot)?.take(&split.train))
    }

    /// k-fold cross-validation of each candidate. Each fold refits every step on the other folds (the
    /// steps' own seeds), then each candidate, and scores the held-out fold with `cv.metric`.
    fn cross_validate(
        &self,
        cv: &crate::spec::CrossValidation,
        candidates: &[&models::Estimator],
        raw: &Frame,
        train_seed: [u8; 32],
    ) -> Result<CvReport> {
        use rayon::prelude::*;
        let p = self.pipeline;
        let protected = p.protected_columns();
        let k = usize::try_from(cv.folds).unwrap_or(usize::MAX);
        let mut rng = ChaCha20Rng::from_seed(crate::digest::stage_seed(p.seed, "train.cv"));
        let shuffle = cv.shuffle.then_some(&mut rng);
        let fold = if cv.stratify {
            let labels = target_labels(p, raw)?;
            let classes = Classes::of(&labels);
            let y: Vec<u32> = classes.codes(&labels)?;
            models::folds::stratified(&y, k, shuffle)?
        } else {
            models::folds::kfold(raw.n_rows(), k, shuffle)?
        };
        let step_seeds: Vec<[u8; 32]> = self
            .plan
            .stages
            .iter()
            .filter(|s| matches!(s.kind, StageKind::Step(_)))
            .map(|s| s.seed)
            .collect();
        let mut scores = vec![vec![0.0; k]; candidates.len()];
        #[allow(clippy::needless_range_loop)] // f is the fold's number, held out and reported
        for f in 0..k {
            #[allow(clippy::cast_possible_truncation)] // row indices fit in u32, as the split's do
            let (fit_rows, held): (Vec<u32>, Vec<u32>) = (0..raw.n_rows() as u32).partition(|r| fold[*r as usize] != f);
            let (mut train, mut valid) = (raw.take(&fit_rows), raw.take(&held));
            for (step, seed) in p.steps.iter().zip(&step_seeds) {
                let mut ctx = FitContext {
                    task: p.task,
                    rng: ChaCha20Rng::from_seed(*seed),
                    target: p.target.clone(),
                    seed: *seed,
                };
                let place = |e: Error| e.in_stage(&format!("{} in cross-validation fold {}", step.name, f + 1));
                let fitted = stages::fit_step(step, &train, &protected, &mut ctx).map_err(place)?;
                train = fitted.apply_train(train).map_err(place)?;
                valid = fitted.apply(valid).map_err(place)?;
            }
            let fold_scores: Vec<Result<f64>> = candidates
                .par_iter()
                .map(|estimator| {
                    let state = fit_train_state(p, estimator, &train, &protected, train_seed)?;
                    let (_, m, _) = score_with(p, &[cv.metric], &state, &valid)?;
                    m.get(cv.metric.name())
                        .copied()
                        .ok_or_else(|| Error::internal("the cross-validation metric was not computed"))
                })
                .collect();
            for (c, score) in fold_scores.into_iter().enumerate() {
                let score = score.map_err(|e| e.with_context(format!("cross-validation fold {}", f + 1)))?;
                if !score.is_finite() {
                    return Err(Error::data(format!(
                        "candidate {} of the search scores {} {score} in cross-validation fold {}",
                        c + 1,
                        cv.metric.name(),
                        f + 1
                    ))
                    .with_hint("narrow the search to stable settings (a larger alpha, fewer features), or drop target_transform"));
                }
                scores[c][f] = score;
            }
        }
        let params = |e: &models::Estimator| -> BTreeMap<String, serde_json::Value> {
            let Some(search) = &p.train.search else {
                return BTreeMap::new();
            };
            let json = serde_json::to_value(e).unwrap_or_default();
            search
                .params
                .iter()
                .map(|name| (name.clone(), json.get(name).cloned().unwrap_or(serde_json::Value::Null)))
                .collect()
        };
        let report: Vec<CandidateScore> = candidates
            .iter()
            .zip(scores)
            .map(|(e, scores)| {
                let mean = scores.iter().sum::<f64>() / k as f64;
                let var = scores.iter().map(|s| (s - mean) * (s - mean)).sum::<f64>() / k as f64;
                CandidateScore {
                    params: params(e),
                    scores,
                    mean,
                    std: var.sqrt(),
                }
            })
            .collect();
        let better = |a: f64, b: f64| if cv.metric.higher_is_better() { a > b } else { a < b };
        let mut chosen = 0;
        for (c, candidate) in report.iter().enumerate() {
            if better(candidate.mean, report[chosen].mean) {
                chosen = c;
            }
        }
        Ok(CvReport {
            metric: cv.metric.name().to_string(),
            folds: cv.folds,
            candidates: report,
            chosen,
        })
    }
}

/// A model's predictions for some rows, their metrics and (a classifier's) confusion matrix.
pub fn score(
    p: &Pipeline,
    state: &TrainState,
    frame: &Frame,
) -> Result<(Predictions, BTreeMap<String, f64>, Option<Confusion>)> {
    score_with(p, &p.evaluate.metrics, state, frame)
}

/// As [`score`], with these metrics.
pub fn score_with(
    p: &Pipeline,
    metrics: &[crate::spec::Metric],
    state: &TrainState,
    frame: &Frame,
) -> Result<(Predictions, BTreeMap<String, f64>, Option<Confusion>)> {
    let pred = predict(state, frame)?;
    if let Model::Clusters(model) = &state.model {
        return Ok((pred, cluster_metrics(metrics, model, frame)?, None));
    }
    match &pred {
        Predictions::Values(values) => {
            let y = target_values(p, frame)?;
            let m = metrics::compute(metrics, &y, values)?;
            Ok((pred, m, None))
        }
        Predictions::Classes {
            predicted,
            proba,
            n_classes,
        } => {
            let (classes, _) = state
                .model
                .classes()
                .ok_or_else(|| Error::internal("class predictions from a regressor"))?;
            let mut labels = classes.to_vec();
            let truth: Vec<usize> = target_labels(p, frame)?
                .iter()
                .map(|l| {
                    labels.iter().position(|c| c == l).unwrap_or_else(|| {
                        labels.push(l.clone());
                        labels.len() - 1
                    })
                })
                .collect();
            let classified = metrics::Classified {
                truth: &truth,
                predicted,
                proba,
                n_classes: *n_classes,
                labels: &labels,
            };
            let m = metrics::compute_classes(metrics, &classified)?;
            let confusion = Confusion {
                matrix: metrics::confusion(&truth, predicted, labels.len()),
                labels,
            };
            Ok((pred, m, Some(confusion)))
        }
    }
}

/// Rows above which the silhouette (a distance between every two rows) is refused.
const SILHOUETTE_ROWS: usize = 20_000;

/// Inertia and silhouette of a clustering of `frame`'s rows.
fn cluster_metrics(
    metrics: &[crate::spec::Metric],
    model: &models::ClusterModel,
    frame: &Frame,
) -> Result<BTreeMap<String, f64>> {
    use crate::spec::Metric;
    let columns = model
        .features
        .iter()
        .map(|f| frame.numeric(f))
        .collect::<Result<Vec<&[f64]>>>()?;
    let points = models::kmeans::Points::from_columns(&columns);
    let labels = model.assign(frame)?;
    metrics
        .iter()
        .map(|m| {
            let value = match m {
                Metric::Inertia => (0..points.n())
                    .map(|i| models::kmeans::squared_distance(points.row(i), &model.centres[labels[i]]))
                    .sum(),
                Metric::Silhouette => {
                    if points.n() > SILHOUETTE_ROWS {
                        return Err(Error::data(format!(
                            "silhouette compares every two rows; {} rows are more than {SILHOUETTE_ROWS}",
                            points.n()
                        ))
                        .with_hint("use inertia for large data"));
                    }
                    models::kmeans::silhouette(&points, &labels, model.centres.len()).ok_or_else(|| {
                        Error::data(
                            "silhouette needs at least two clusters among the rows, and fewer clusters than rows",
                        )
                        .with_hint("ask for more clusters, or use inertia")
                    })?
                }
                other => return Err(Error::internal(format!("{} is not a clustering metric", other.name()))),
            };
            Ok((m.name().to_string(), value))
        })
        .collect()
}

fn check_target(p: &Pipeline, frame: &Frame) -> Result<()> {
    match frame.column(&p.target).map(|c| c.data.column_type()) {
        None if p.task == Task::Clustering && p.target.is_empty() => {}
        Some(_) if p.task == Task::Clustering => {}
        Some(ColumnType::Numeric) => {}
        Some(ColumnType::Categorical) if p.task == Task::Classification => {}
        Some(ColumnType::Categorical) => {
            return Err(Error::data(format!(
                "target \"{}\" holds text, but task \"regression\" needs numbers",
                p.target
            ))
            .at(p.origin.target.as_ref())
            .with_hint("check na_values (a missing-value marker read as text?) or the target column"));
        }
        None => {
            return Err(frame
                .missing_column(&p.target)
                .at(p.origin.target.as_ref())
                .in_stage("gather"));
        }
    }
    if let Some(id) = &p.gather.id_column
        && frame.column(id).is_none()
    {
        return Err(frame
            .missing_column(id)
            .at(p.origin.id_column.as_ref())
            .in_stage("gather"));
    }
    Ok(())
}

fn target_values(p: &Pipeline, frame: &Frame) -> Result<Vec<f64>> {
    let y = frame.numeric(&p.target)?;
    if let Some(r) = y.iter().position(|v| v.is_nan()) {
        return Err(Error::data(format!(
            "target \"{}\" is missing at line {} of {}",
            p.target, frame.lines[r], frame.source
        ))
        .at(p.origin.target.as_ref())
        .with_hint("rows without a target cannot be trained or scored; remove them from the data"));
    }
    Ok(y.to_vec())
}

/// A classifier's target as text labels, one per row (numbers written as in JSON: 1, not 1.0).
fn target_labels(p: &Pipeline, frame: &Frame) -> Result<Vec<String>> {
    labels_of(frame, &p.target).map_err(|e| e.at(p.origin.target.as_ref()))
}

/// The transformed target, and the λ fitted for it (Box-Cox, Yeo-Johnson).
fn transform_target(t: TargetTransform, y: &[f64], frame: &Frame, name: &str) -> Result<(Vec<f64>, Option<f64>)> {
    type Transform = (fn(f64) -> f64, fn(f64) -> bool, &'static str);
    let (f, ok, what): Transform = match t {
        TargetTransform::None => return Ok((y.to_vec(), None)),
        TargetTransform::Log => (f64::ln, |v| v > 0.0, "> 0"),
        TargetTransform::Log1p => (f64::ln_1p, |v| v > -1.0, "> -1"),
        TargetTransform::BoxCox | TargetTransform::YeoJohnson => {
            let kind = if t == TargetTransform::BoxCox {
                power_transform::Kind::BoxCox
            } else {
                power_transform::Kind::YeoJohnson
            };
            if kind == power_transform::Kind::BoxCox
                && let Some(r) = y.iter().position(|&v| v <= 0.0)
            {
                return Err(Error::data(format!(
                    "target_transform = \"box_cox\" needs target \"{name}\" > 0, but line {} of {} holds {}",
                    frame.lines[r], frame.source, y[r]
                ))
                .with_hint("use target_transform = \"yeo_johnson\", which accepts any value"));
            }
            let lambda = power_transform::fit_lambda(kind, y).ok_or_else(|| {
                Error::data(format!(
                    "no maximum-likelihood λ for target \"{name}\" within [-64, 64]"
                ))
            })?;
            let out = y
                .iter()
                .map(|&v| match kind {
                    power_transform::Kind::BoxCox => power_transform::box_cox(v, lambda),
                    power_transform::Kind::YeoJohnson => power_transform::yeo_johnson(v, lambda),
                })
                .collect();
            return Ok((out, Some(lambda)));
        }
    };
    if let Some(r) = y.iter().position(|&v| !ok(v)) {
        return Err(Error::data(format!(
            "target_transform needs target \"{name}\" {what}, but line {} of {} holds {}",
            frame.lines[r], frame.source, y[r]
        ))
        .with_hint("use target_transform = \"log1p\" or \"none\""));
    }
    Ok((y.iter().map(|&v| f(v)).collect(), None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prediction_or_metric_that_is_not_a_number_is_refused_with_its_row_or_name() {
        let metrics = BTreeMap::from([("rmse".to_string(), 3.0)]);
        assert!(refuse_non_finite("test", &Predictions::Values(vec![1.0, 2.0]), &metrics).is_ok());
        let err = refuse_non_finite("test", &Predictions::Values(vec![1.0, f64::INFINITY]), &metrics)
            .unwrap_err()
            .to_string();
        assert!(err.contains("predicts inf for test row 2 (of 2)"), "{err}");
        let nan = BTreeMap::from([("r2".to_string(), f64::NAN)]);
        let err = refuse_non_finite("train", &Predictions::Values(vec![1.0]), &nan)
            .unwrap_err()
            .to_string();
        assert!(err.contains("the train r2 is NaN"), "{err}");
    }

    #[test]
    fn a_stage_state_holding_an_overflow_is_refused_before_it_is_stored() {
        let state = |metric: f64| {
            StageOutput::new(
                StageState::Evaluate(EvaluateState {
                    test: BTreeMap::from([("rmse".to_string(), metric)]),
                    train: BTreeMap::new(),
                    test_predictions: Id::of_bytes(b""),
                    confusion: None,
                }),
                BTreeMap::new(),
            )
        };
        assert!(storable(&state(1.5), "evaluate").is_ok());
        let err = storable(&state(f64::INFINITY), "evaluate").unwrap_err().to_string();
        assert!(err.contains("not finite") && err.contains("(stage evaluate)"), "{err}");
    }
}
