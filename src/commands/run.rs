//! `mlpipe run PIPELINE`: execute a pipeline, reusing every stage whose key is already in the store.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::ci::{Baseline, GateResult, Lock, evaluate_gates, lock_path, read_lock};
use crate::digest::Id;
use crate::error::{Error, Result};
use crate::executor::{Executor, Progress, Snapshot, StageResult};
use crate::fitted::StageState;
use crate::plan::{Plan, run_id};
use crate::provenance::{self, CodeState, RunRecord, StageRecord, Tool};
use crate::sources::FileFormat;
use crate::spec::Pipeline;
use crate::store::{LocalStore, RefKind, RefRead, Store, write_atomic};

pub struct RunArgs {
    pub pipeline: PathBuf,
    pub store: PathBuf,
    /// Overrides the pipeline's master seed.
    pub seed: Option<u64>,
    /// Compare gates against this run (hash prefix) instead of the pipeline's lock file.
    pub baseline: Option<String>,
    /// Write the pipeline's lock file from this run.
    pub update_lock: bool,
}

#[derive(Debug, Serialize)]
pub struct RunReport {
    pub run: Id,
    pub pipeline: String,
    pub record: Id,
    pub snapshot: Id,
    pub code: CodeState,
    pub stages: Vec<StageResult>,
    pub metrics: BTreeMap<String, f64>,
    pub train_metrics: BTreeMap<String, f64>,
    pub baseline: Option<Baseline>,
    pub gates: Vec<GateResult>,
    /// What the data looked like it got wrong (a numeric column read as text), also printed as warnings.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The lock file written (with `update_lock`).
    pub lock: Option<PathBuf>,
    /// The lock this run's results amount to.
    #[serde(skip)]
    pub lock_entries: Lock,
    #[serde(skip)]
    pub pipeline_file: PathBuf,
}

impl RunReport {
    pub fn gates_passed(&self) -> bool {
        self.gates.iter().all(|g| g.passed)
    }
}

/// What a run reads before any stage: the pipeline and its data snapshot.
struct Inputs {
    pipeline: Pipeline,
    snapshot_id: Id,
    /// The snapshot's bytes; empty when a typed file was read straight into `frame` (its snapshot is
    /// already in the store).
    bytes: Vec<u8>,
    frame: Option<crate::frame::Frame>,
    source_record: Option<crate::sources::SourceRecord>,
    source_name: String,
}

fn read_inputs(args: &RunArgs, progress: &dyn Progress, store: &LocalStore) -> Result<Inputs> {
    let mut pipeline = Pipeline::load(&args.pipeline)?;
    if let Some(seed) = args.seed {
        pipeline.seed = seed;
    }
    let mut frame = None;
    let (snapshot_id, bytes, source_record, source_name) = if let Some(db) = pipeline.source_database()? {
        let fetched = fetch_database(&pipeline, &db)?;
        let name = db.without_password();
        (fetched.record.snapshot, fetched.csv, Some(fetched.record), name)
    } else {
        let source = pipeline.source_path();
        if let Some(warning) = crate::resources::memory_warning(&source) {
            progress.warn(&warning);
        }
        let (id, bytes) = read_data_file(&source)?;
        let name = source.display().to_string();
        let gather = &pipeline.gather;
        if gather.format.is_csv() {
            (id, bytes, None, name)
        } else {
            let (snapshot, csv, read) = typed_snapshot(store, &pipeline, id, bytes, progress)?;
            frame = read;
            (snapshot, csv, None, name)
        }
    };
    Ok(Inputs {
        pipeline,
        snapshot_id,
        bytes,
        frame,
        source_record,
        source_name,
    })
}

/// The snapshot of a Parquet, Arrow IPC or NDJSON file: its rows' canonical CSV, whatever the file's
/// layout. Writing that CSV costs more than reading the file, so the store keeps a memo from the file's
/// content id (and the read: format, columns, missing-value marker) to the snapshot id. The memo is a
/// shortcut, never trusted alone: the file is read straight into a frame and that frame's digest must be
/// the one the gather stage recorded for the snapshot; otherwise the CSV is written again. Returns the
/// snapshot id, its bytes (empty on the shortcut) and the frame read on the shortcut.
fn typed_snapshot(
    store: &LocalStore,
    pipeline: &Pipeline,
    file: Id,
    bytes: Vec<u8>,
    progress: &dyn Progress,
) -> Result<(Id, Vec<u8>, Option<crate::frame::Frame>)> {
    let gather = &pipeline.gather;
    let name = pipeline.source_name();
    let na = gather.read.na_values.first().map_or("", String::as_str);
    let mut memo = crate::digest::KeyBuilder::new(crate::digest::context::SNAPSHOT_MEMO)
        .id(&file)
        .str(gather.format.name())
        .str(na)
        .u64(gather.read.columns.len() as u64);
    for c in &gather.read.columns {
        memo = memo.str(c);
    }
    let memo = memo.finish();
    let straight = matches!(gather.format, FileFormat::Parquet | FileFormat::Ipc);
    let memo_read = if straight {
        store.read_ref(RefKind::Snapshot, &memo)?
    } else {
        RefRead::Missing
    };
    if let RefRead::Target(snapshot) = memo_read
        && store.object_is_intact(&snapshot)?
        && let Some(recorded) = gathered_digest(store, pipeline, &snapshot)
        && let Some(frame) = crate::sources::read_frame(bytes.clone(), gather.format, &gather.read, &name)
            .map_err(|e| e.in_stage("gather"))?
        && frame.n_rows() == recorded.rows
        && frame.digest() == recorded.digest
    {
        return Ok((snapshot, Vec::new(), Some(frame)));
    }
    let csv = crate::sources::canonical_csv(bytes, gather.format, &gather.read.columns, na, &name)
        .map_err(|e| e.in_stage("gather"))?;
    let snapshot = Id::of_bytes(&csv);
    store.put_with_id(&snapshot, &csv)?;
    if straight {
        // Only a shortcut: a damaged memo is moved aside, and one that cannot be written costs the next
        // run its shortcut, not this run.
        if let RefRead::Damaged(d) = memo_read {
            move_aside(store, progress, "snapshot", &d)?;
        }
        if let Err(e) = store.set_ref(RefKind::Snapshot, &memo, &snapshot) {
            progress.warn(&format!(
                "the snapshot memo of {name} was not written ({e}); the next run writes its CSV again"
            ));
        }
    }
    Ok((snapshot, csv, None))
}

/// Moves a damaged ref aside (never deleting it) and says so; the caller writes it again.
fn move_aside(store: &LocalStore, progress: &dyn Progress, kind: &str, d: &crate::store::Damaged) -> Result<()> {
    let moved = store.quarantine(&d.path)?;
    progress.warn(&format!(
        "the {kind} ref {} {}; moved it aside to {} and writing it again",
        d.path.display(),
        d.what,
        moved.display()
    ));
    Ok(())
}

/// The digest of the frame the gather stage recorded for `snapshot` under this pipeline's read options,
/// when that stage is in the store.
fn gathered_digest(store: &LocalStore, pipeline: &Pipeline, snapshot: &Id) -> Option<crate::fitted::FrameDigest> {
    let key = Plan::new(pipeline).key(0, snapshot);
    let output = store.get_ref(RefKind::StageKey, &key).ok()??;
    let bytes = store.get(&output).ok()?;
    let out = crate::fitted::StageOutput::from_bytes(&bytes, &output).ok()?;
    match out.state {
        StageState::Gather { .. } => out.data.get("all").cloned(),
        _ => None,
    }
}

/// What `run --until STAGE` did: the stages through STAGE, stored and reusable; no run is recorded.
#[derive(Debug, Serialize)]
pub struct PartialRun {
    pub pipeline: String,
    pub snapshot: Id,
    pub until: String,
    pub stages: Vec<StageResult>,
}

/// Runs the stages up to and including `until` (a stage name as `mlpipe show` lists them). Their
/// outputs go to the store as in a full run, so a later run reuses them; without the later stages
/// there are no metrics, so no run record, gates or lock.
pub fn run_until(args: &RunArgs, until: &str, progress: &dyn Progress) -> Result<PartialRun> {
    let store = LocalStore::open(&args.store)?;
    let _lock = store.lock(false)?;
    let inputs = read_inputs(args, progress, &store)?;
    let plan = Plan::new(&inputs.pipeline);
    let last = plan.stages.iter().position(|s| s.name == until).ok_or_else(|| {
        let names: Vec<&str> = plan.stages.iter().map(|s| s.name.as_str()).collect();
        Error::Lookup {
            message: format!("{} has no stage named \"{until}\"", args.pipeline.display()),
            hint: Some(match crate::error::did_you_mean(until, names.iter().copied()) {
                Some(guess) => format!("{guess} (the stages: {})", names.join(", ")),
                None => format!("name one of: {}", names.join(", ")),
            }),
        }
    })?;
    if inputs.frame.is_none() {
        store.put_with_id(&inputs.snapshot_id, &inputs.bytes)?;
    }
    let snapshot = Snapshot::new(
        inputs.snapshot_id,
        inputs.bytes,
        inputs.pipeline.source_name(),
        inputs.frame,
    )
    .stored();
    let executed = Executor::new(&inputs.pipeline, &store, true, progress).run_through(&snapshot, last)?;
    Ok(PartialRun {
        pipeline: inputs.pipeline.name.clone(),
        snapshot: inputs.snapshot_id,
        until: until.to_string(),
        stages: executed.stages,
    })
}

pub fn run(args: &RunArgs, progress: &dyn Progress) -> Result<RunReport> {
    let store = LocalStore::open(&args.store)?;
    let _lock = store.lock(false)?;
    // The baseline is resolved before anything runs: a mistyped `--baseline` or a damaged lock fails now,
    // not after the whole pipeline has been fitted.
    let mut baseline_pipeline = None;
    let baseline = match &args.baseline {
        Some(hash) => {
            let rec = super::resolve_run(&store, hash)?;
            baseline_pipeline = Some(rec.pipeline_name.clone());
            Some(Baseline {
                source: format!("run {}", rec.run.short()),
                metrics: rec.metrics,
            })
        }
        None => read_lock(&args.pipeline)?.map(|lock| Baseline {
            source: format!("lock {}", lock_path(&args.pipeline).display()),
            metrics: lock.metrics(),
        }),
    };
    let Inputs {
        pipeline,
        snapshot_id,
        bytes,
        frame,
        source_record,
        source_name,
    } = read_inputs(args, progress, &store)?;
    if let (Some(b), Some(of)) = (&baseline, &baseline_pipeline)
        && let Some(metric) = pipeline
            .gates
            .iter()
            .filter(|g| matches!(g.rule, crate::spec::GateRule::MaxRegression(_)))
            .map(|g| g.metric.name())
            .find(|m| !b.metrics.contains_key(*m))
    {
        return Err(Error::data(format!(
            "--baseline {} is a run of pipeline \"{of}\" that records no {metric}, which a gate of {} compares",
            b.source.trim_start_matches("run "),
            pipeline.name
        ))
        .with_hint("pass a run of this pipeline (`mlpipe log` lists them)"));
    }
    let code = provenance::code_state(&args.pipeline)?;
    let tool = Tool::current();
    let run = run_id(&pipeline, &snapshot_id, &code, &tool.mlpipe);

    if frame.is_none() {
        store.put_with_id(&snapshot_id, &bytes)?;
    }
    let source_record = match &source_record {
        Some(r) => Some(store.put(&serde_json::to_vec(r).map_err(|e| Error::internal(e.to_string()))?)?),
        None => None,
    };
    let pipeline_object = store.put(&pipeline.to_canonical_json())?;

    let snapshot = Snapshot::new(snapshot_id, bytes, pipeline.source_name(), frame).stored();
    point_stage_refs_back(&store, &run, progress)?;
    let executed = Executor::new(&pipeline, &store, true, progress).run(&snapshot)?;

    let (metrics, train_metrics) = executed
        .outputs
        .iter()
        .rev()
        .find_map(|o| match &o.state {
            StageState::Evaluate(e) => Some((e.test.clone(), e.train.clone())),
            _ => None,
        })
        .unwrap_or_default();
    let plan = Plan::new(&pipeline);
    let stage_seeds = plan.stages.iter().map(|s| (s.name.clone(), Id(s.seed).hex())).collect();
    let stages: Vec<StageRecord> = executed
        .stages
        .iter()
        .map(|s| StageRecord {
            name: s.name.clone(),
            kind: s.kind.clone(),
            key: s.key,
            output: s.output,
        })
        .collect();

    // A run id names its inputs; if it was recorded before, the outputs must be the same.
    let mut damaged_record = None;
    let previous = match store.read_ref(RefKind::Run, &run)? {
        RefRead::Target(rec_id) => match super::load_run_record(&store, &run, &rec_id) {
            Ok(rec) => Some((rec_id, rec)),
            Err(e) => {
                progress.warn(&format!(
                    "the earlier record of run {} is unreadable ({e}); writing it again",
                    run.short()
                ));
                // Only a damaged object is removed: a ref to another run's record is moved aside instead.
                if matches!(e, Error::Corrupt { .. }) {
                    damaged_record = Some(rec_id);
                    None
                } else {
                    store.quarantine_ref(RefKind::Run, &run)?;
                    own_record(&store, &run)?
                }
            }
        },
        RefRead::Damaged(d) => {
            move_aside(&store, progress, "run", &d)?;
            own_record(&store, &run)?
        }
        RefRead::Missing => None,
    };
    let record_id = match previous {
        Some((rec_id, rec)) if rec.stages == stages => rec_id,
        Some((_, rec)) => {
            let first = rec.stages.iter().zip(&stages).find(|(a, b)| a != b);
            let detail = first.map_or_else(
                || "the stage lists differ".to_string(),
                |(a, b)| {
                    format!(
                        "stage {} gave {} before and {} now",
                        a.name,
                        a.output.short(),
                        b.output.short()
                    )
                },
            );
            return Err(Error::Mismatch {
                message: format!(
                    "run {} was recorded before with different results: {detail}",
                    run.short()
                ),
            });
        }
        None => {
            let record = RunRecord {
                kind: "run".into(),
                format: 1,
                run,
                pipeline_name: pipeline.name.clone(),
                pipeline: pipeline_object,
                snapshot: snapshot_id,
                source: source_name,
                source_record,
                seed: pipeline.seed,
                stage_seeds,
                code: code.clone(),
                tool,
                stages,
                metrics: metrics.clone(),
                train_metrics: train_metrics.clone(),
                created: provenance::now_rfc3339(),
            };
            let bytes = serde_json::to_vec(&record).map_err(|e| Error::internal(e.to_string()))?;
            let id = store.put(&bytes)?;
            store.set_ref(RefKind::Run, &run, &id)?;
            // The damaged record is unreachable now; removing it keeps `verify` meaningful.
            if let Some(old) = damaged_record.filter(|old| *old != id) {
                store.remove_object(&old)?;
            }
            id
        }
    };
    let no_baseline = format!(
        "no lock at {} (a lock sits beside its pipeline file, named after it): write it with `mlpipe lock {}`, or pass --baseline RUN",
        lock_path(&args.pipeline).display(),
        args.pipeline.display()
    );
    let gates = evaluate_gates(&pipeline.gates, &metrics, baseline.as_ref(), &no_baseline);
    let lock_entries = Lock::from_run(&pipeline, &snapshot_id, &executed.stages, &metrics, &tool_version());
    let lock = if args.update_lock {
        let path = lock_path(&args.pipeline);
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        crate::tables::refuse_inside_store(&args.store, &path, "the lock file")?;
        write_atomic(dir, &path, lock_entries.render().as_bytes())?;
        Some(path)
    } else {
        None
    };
    let warnings = executed
        .outputs
        .iter()
        .flat_map(|o| match &o.state {
            StageState::Gather { suspect_text, .. } => suspect_text.as_slice(),
            _ => &[],
        })
        .map(|t| t.warning(&pipeline.source_name()))
        .collect();
    Ok(RunReport {
        baseline,
        gates,
        warnings,
        lock,
        lock_entries,
        pipeline_file: args.pipeline.clone(),
        run,
        pipeline: pipeline.name,
        record: record_id,
        snapshot: snapshot_id,
        code,
        stages: executed.stages,
        metrics,
        train_metrics,
    })
}

/// Checks the stage-key refs of a run recorded before against its record (whose keys were recomputed by
/// `load_run_record`): a ref copied from another stage is pointed back at the output the run recorded, so
/// the stages are not fed another stage's state.
fn point_stage_refs_back(store: &LocalStore, run: &Id, progress: &dyn Progress) -> Result<()> {
    let Ok(Some(rec_id)) = store.get_ref(RefKind::Run, run) else {
        return Ok(());
    };
    let Ok(record) = super::load_run_record(store, run, &rec_id) else {
        return Ok(());
    };
    for st in &record.stages {
        if let RefRead::Target(target) = store.read_ref(RefKind::StageKey, &st.key)?
            && target != st.output
            && store.contains(&st.output)?
        {
            progress.warn(&format!(
                "the stage-key ref of {} points at {target}, not at the output {} that run {} recorded for that key; \
                 pointing it back",
                st.name,
                st.output,
                run.short()
            ));
            store.set_ref(RefKind::StageKey, &st.key, &st.output)?;
        }
    }
    Ok(())
}

/// The run's own record, found by content when its ref was damaged or pointed elsewhere; the ref is
/// pointed at it again, so the record keeps the time it was first made.
fn own_record(store: &LocalStore, run: &Id) -> Result<Option<(Id, RunRecord)>> {
    let found = super::RecordIndex::build(store)?.run_record(store, run);
    if let Some((rec_id, _)) = &found {
        store.set_ref(RefKind::Run, run, rec_id)?;
    }
    Ok(found)
}

/// Reads a data file named by `[gather] source`.
fn read_data_file(source: &std::path::Path) -> Result<(Id, Vec<u8>)> {
    super::read_snapshot(source).map_err(|e| match e {
        Error::Io { source: err, path, .. } => Error::data(format!(
            "cannot read the data file {} named by [gather] source: {err}",
            path.display()
        ))
        .with_hint("fix `source` in [gather]; relative paths start at the pipeline file's folder"),
        other => other,
    })
}

/// Snapshots a database source as of the pipeline's `as_of` ("now" is resolved here, once).
pub fn fetch_database(pipeline: &Pipeline, db: &crate::database::Database) -> Result<crate::sources::Fetched> {
    let Some(selection) = &pipeline.gather.database else {
        return Err(Error::internal("fetch_database on a file source"));
    };
    let as_of = match selection.as_of.as_deref() {
        Some("now") => Some(provenance::now_rfc3339_micros()),
        other => other.map(str::to_string),
    };
    let na = pipeline.gather.read.na_values.first().cloned().unwrap_or_default();
    crate::sources::fetch(db, selection, as_of.as_deref(), &na).map_err(|e| e.in_stage("gather"))
}

fn tool_version() -> String {
    provenance::MLPIPE_VERSION.to_string()
}
