//! `mlpipe verify`: look at the store's layout without following links, re-hash every object, check every
//! ref against what it points at (a run ref's record must give that run id, a prediction ref's record
//! that prediction id, a stage-key ref must point at what the runs that name the key recorded), report
//! every damaged ref (all of them), and check the prediction ledger: every record input re-hashed, every
//! entry's run, model and input present. With `--repair`, damaged and misplaced entries are moved aside
//! to `v1/quarantine/` (never deleted), refs are written again from the records the store still holds,
//! and the store is checked again.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{Fault, RecordIndex, check_prediction_record, check_run_record, run_model};
use crate::digest::Id;
use crate::error::{Error, Result};
use crate::fitted::{StageOutput, StageState};
use crate::ledger;
use crate::provenance::{PredictionRecord, RunRecord};
use crate::store::{Damaged, LocalStore, RefKind, Remedy, Store};

mod ledger_checks;
use ledger_checks::check_ledger_all;

pub struct VerifyArgs {
    pub store: PathBuf,
    /// Ledger database URL; the store's SQLite ledger (when there is one) otherwise.
    pub ledger: Option<String>,
    /// Mend what can be mended (see the module comment), then check again.
    pub repair: bool,
}

#[derive(Debug, Serialize)]
pub struct Problem {
    pub id: String,
    pub what: String,
    /// A problem of the ledger's content (an edited, removed or unlinked entry), which `--repair`
    /// cannot mend: the ledger is restored from a backup.
    #[serde(skip)]
    pub ledger: bool,
}

#[derive(Debug, Serialize)]
pub struct VerifyReport {
    pub objects: usize,
    pub bytes: u64,
    pub refs: usize,
    /// Ledger entries and distinct record inputs checked (none when there is no ledger).
    pub ledger_entries: usize,
    pub ledger_inputs: usize,
    /// The ledger's hash chain, as walked (engineer B's check; none when there is no ledger).
    pub ledger_chain: Option<ledger::ChainSummary>,
    /// What is wrong (after `--repair`: what is still wrong).
    pub problems: Vec<Problem>,
    /// What `--repair` did, one entry per problem it mended.
    pub repaired: Vec<Problem>,
}

/// How `--repair` mends a problem.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Fix {
    MoveAside(PathBuf),
    MoveAsideAndMakeFolder(PathBuf),
    RewriteLayout,
    /// Points a ref at `target`, moving whatever stands at the ref's name aside first.
    PointRef {
        kind: RefKind,
        key: Id,
        target: Id,
    },
}

struct Finding {
    problem: Problem,
    fix: Option<Fix>,
}

/// What one pass of checks found.
#[derive(Default)]
struct Checked {
    objects: usize,
    bytes: u64,
    refs: usize,
    ledger_entries: usize,
    ledger_inputs: usize,
    ledger_chain: Option<ledger::ChainSummary>,
    findings: Vec<Finding>,
}

impl Checked {
    fn problem(&mut self, id: impl Into<String>, what: impl Into<String>) {
        self.findings.push(Finding {
            problem: Problem {
                id: id.into(),
                what: what.into(),
                ledger: false,
            },
            fix: None,
        });
    }

    /// A problem only restoring the ledger from a backup mends.
    fn ledger_problem(&mut self, id: impl Into<String>, what: impl Into<String>) {
        self.findings.push(Finding {
            problem: Problem {
                id: id.into(),
                what: what.into(),
                ledger: true,
            },
            fix: None,
        });
    }

    fn fixable(&mut self, id: impl Into<String>, what: impl Into<String>, fix: Option<Fix>) {
        self.findings.push(Finding {
            problem: Problem {
                id: id.into(),
                what: what.into(),
                ledger: false,
            },
            fix,
        });
    }

    /// A damaged or misplaced entry of the layout, with what `--repair` does about it.
    fn damaged(&mut self, d: &Damaged, fix_ref: Option<(Fix, String)>) {
        let label = d.key.map_or("", |(kind, _)| kind.label());
        let (fix, todo) = match (fix_ref, d.remedy) {
            (Some((fix, todo)), _) => (Some(fix), todo),
            (None, Remedy::MoveAside) => (
                Some(Fix::MoveAside(d.path.clone())),
                match d.key {
                    Some((RefKind::StageKey, _)) => {
                        "`mlpipe verify --repair` moves it aside to v1/quarantine/; the next `mlpipe run` recomputes \
                         the stage"
                            .to_string()
                    }
                    _ => "`mlpipe verify --repair` moves it aside to v1/quarantine/".to_string(),
                },
            ),
            (None, Remedy::MoveAsideAndMakeFolder) => (
                Some(Fix::MoveAsideAndMakeFolder(d.path.clone())),
                "the store's folders must be real folders inside it: `mlpipe verify --repair` moves it aside to \
                 v1/quarantine/ (what a link points at is left untouched) and makes a real folder in its place"
                    .to_string(),
            ),
            (None, Remedy::RewriteLayout) => (
                Some(Fix::RewriteLayout),
                "`mlpipe verify --repair` writes it again (the store's folders are those of layout 1)".to_string(),
            ),
            (None, Remedy::ByHand) => (
                None,
                "put the folder itself at this path (for a link: `mv` the folder it points at here)".to_string(),
            ),
        };
        let what = if label.is_empty() {
            format!("{}; {todo}", d.what)
        } else {
            format!("damaged {label}: it {}; {todo}", d.what)
        };
        self.fixable(d.rel.clone(), what, fix);
    }
}

pub fn run(args: &VerifyArgs) -> Result<VerifyReport> {
    let (store, layout) = LocalStore::open_for_verify(&args.store)?;
    if !args.repair {
        return Ok(check(&store, args, &layout)?.report(Vec::new()));
    }
    // Repairs change refs: no writer may run meanwhile (as for gc). A lock file that is not a plain file is
    // moved aside first, so that the lock can be taken at all.
    // A quarantine folder that is a link or a file is mended first too (everything else is moved into it).
    let mut repaired = Vec::new();
    for d in store.scan_layout()? {
        if d.rel == "v1/lock" {
            store.quarantine(&d.path)?;
        } else if d.rel == "v1/quarantine" {
            let to = store.quarantine(&d.path)?;
            repaired.push(Problem {
                id: d.rel.clone(),
                what: format!(
                    "moved aside to {}; made a real folder in its place",
                    to.strip_prefix(store.root()).unwrap_or(&to).display()
                ),
                ledger: false,
            });
        }
    }
    let lock = store.lock(true)?;
    let first = check(&store, args, &layout)?;
    let mut failed = Vec::new();
    let mut done: BTreeSet<Fix> = BTreeSet::new();
    for finding in first.findings {
        let Some(fix) = finding.fix else { continue };
        if !done.insert(fix.clone()) {
            continue;
        }
        match apply(&store, &fix) {
            Ok(what) => repaired.push(Problem {
                id: finding.problem.id,
                what,
                ledger: false,
            }),
            Err(e) => failed.push(Problem {
                id: finding.problem.id,
                what: format!("could not be repaired: {e}"),
                ledger: false,
            }),
        }
    }
    drop(lock);
    let (store, layout) = LocalStore::open_for_verify(&args.store)?;
    let mut report = check(&store, args, &layout)?.report(repaired);
    report.problems.extend(failed);
    Ok(report)
}

impl Checked {
    fn report(self, repaired: Vec<Problem>) -> VerifyReport {
        VerifyReport {
            objects: self.objects,
            bytes: self.bytes,
            refs: self.refs,
            ledger_entries: self.ledger_entries,
            ledger_inputs: self.ledger_inputs,
            ledger_chain: self.ledger_chain,
            problems: self.findings.into_iter().map(|f| f.problem).collect(),
            repaired,
        }
    }
}

/// Carries out one repair; says what it did.
fn apply(store: &LocalStore, fix: &Fix) -> Result<String> {
    let rel = |p: &Path| p.strip_prefix(store.root()).unwrap_or(p).display().to_string();
    match fix {
        Fix::MoveAside(path) => {
            let to = store.quarantine(path)?;
            Ok(format!("moved aside to {}", rel(&to)))
        }
        Fix::MoveAsideAndMakeFolder(path) => {
            let to = store.quarantine(path)?;
            store.make_folder(path)?;
            Ok(format!("moved aside to {}; made a real folder in its place", rel(&to)))
        }
        Fix::RewriteLayout => {
            store.rewrite_layout()?;
            Ok("wrote the layout file again (\"mlpipe-store 1\")".into())
        }
        Fix::PointRef { kind, key, target } => {
            let path = store.ref_file(*kind, key);
            let moved = if std::fs::symlink_metadata(&path).is_ok() {
                format!(" (the old one moved aside to {})", rel(&store.quarantine(&path)?))
            } else {
                String::new()
            };
            store.set_ref(*kind, key, target)?;
            Ok(format!(
                "wrote the {} {} again, pointing at {target}{moved}",
                kind.label(),
                key.short()
            ))
        }
    }
}

/// What the run refs say about a run id, for the checks that need the run.
enum RunState {
    /// Its ref points at its record, and the record gives that run id.
    Good(Box<RunRecord>),
    /// Its ref is damaged, points at something else, or its record does not check (reported already).
    Bad,
}

/// Run and prediction records found by content, built once when a repair or a message needs them.
struct Index<'s> {
    store: &'s LocalStore,
    built: Option<RecordIndex>,
}

impl Index<'_> {
    fn get(&mut self) -> Result<&RecordIndex> {
        if self.built.is_none() {
            self.built = Some(RecordIndex::build(self.store)?);
        }
        self.built
            .as_ref()
            .ok_or_else(|| Error::internal("record index not built"))
    }

    /// The checked record of `run` the store holds, as a fix for its ref and a phrase saying so.
    fn run_fix(&mut self, run: &Id) -> Result<Option<(Fix, String)>> {
        let store = self.store;
        Ok(self.get()?.run_record(store, run).map(|(record, _)| {
            (
                Fix::PointRef {
                    kind: RefKind::Run,
                    key: *run,
                    target: record,
                },
                format!(
                    "the store still holds run {}'s record {}: `mlpipe verify --repair` points the ref at it",
                    run.short(),
                    record.short()
                ),
            )
        }))
    }

    fn prediction_fix(&mut self, prediction: &Id) -> Result<Option<(Fix, String)>> {
        Ok(self.get()?.prediction_record(prediction).map(|(record, _)| {
            (
                Fix::PointRef {
                    kind: RefKind::Prediction,
                    key: *prediction,
                    target: record,
                },
                format!(
                    "the store still holds prediction {}'s record {}: `mlpipe verify --repair` points the ref at it",
                    prediction.short(),
                    record.short()
                ),
            )
        }))
    }
}

/// The fix for a ref that points at the wrong thing: its own record when the store holds one, else moving
/// it aside.
fn fix_or_move_aside(found: Option<(Fix, String)>, path: &Path, after: &str) -> (Option<Fix>, String) {
    match found {
        Some((fix, todo)) => (Some(fix), todo),
        None => (
            Some(Fix::MoveAside(path.to_path_buf())),
            format!("`mlpipe verify --repair` moves the ref aside to v1/quarantine/; {after}"),
        ),
    }
}

fn check(store: &LocalStore, args: &VerifyArgs, layout: &[Damaged]) -> Result<Checked> {
    let mut c = Checked::default();
    for d in layout.iter().chain(&store.scan_layout()?) {
        c.damaged(d, None);
    }
    let objects = store.scan_objects()?;
    for d in &objects.damaged {
        c.damaged(d, None);
    }
    for id in &objects.ids {
        match store.get(id) {
            Ok(b) => c.bytes += b.len() as u64,
            Err(Error::Corrupt { actual, .. }) => {
                c.problem(id.hex(), format!("corrupt: its bytes hash to {actual}"));
            }
            Err(e) => c.problem(id.hex(), e.to_string()),
        }
    }
    c.objects = objects.ids.len();
    let mut index = Index { store, built: None };
    let runs = check_runs(store, &mut c, &mut index)?;
    let predictions = check_predictions(store, &mut c, &mut index, &runs)?;
    check_stage_keys(store, &mut c, &runs)?;
    check_snapshot_memos(store, &mut c)?;
    // A store ledger reached through a link is reported by the layout scan above and never opened.
    if args.ledger.is_some() || crate::store::ledger_links(store.root()).is_empty() {
        check_ledger_all(store, args.ledger.as_deref(), &mut c, &mut index, &runs, &predictions)?;
    }
    Ok(c)
}

/// Every run ref: damaged ones (all of them), refs to missing objects, refs to another run's record, and
/// records whose content does not give their run id; then every object a good record names.
fn check_runs(store: &LocalStore, c: &mut Checked, index: &mut Index<'_>) -> Result<BTreeMap<Id, RunState>> {
    let scan = store.scan_refs(RefKind::Run)?;
    let mut states = BTreeMap::new();
    c.refs += scan.refs.len() + scan.damaged.len();
    for d in &scan.damaged {
        let found = match d.key {
            Some((_, run)) => {
                states.insert(run, RunState::Bad);
                index.run_fix(&run)?
            }
            None => None,
        };
        c.damaged(d, found);
    }
    for (run, rec_id) in &scan.refs {
        let path = store.ref_file(RefKind::Run, run);
        let name = format!("run {}", run.short());
        if !store.contains(rec_id)? {
            let (fix, todo) = match index.run_fix(run)? {
                Some((fix, todo)) => (Some(fix), todo),
                None => (None, "re-running the pipeline writes the record again".into()),
            };
            c.fixable(run.hex(), format!("run points at missing object {rec_id}; {todo}"), fix);
            states.insert(*run, RunState::Bad);
            continue;
        }
        let record = match super::load_json::<RunRecord>(store, rec_id, "run record") {
            Ok(r) => r,
            Err(Error::Corrupt { .. }) => {
                // Reported with the objects; `run` writes a new record.
                states.insert(*run, RunState::Bad);
                continue;
            }
            Err(e) => {
                let (fix, todo) =
                    fix_or_move_aside(index.run_fix(run)?, &path, "re-running the pipeline writes a new one");
                c.fixable(run.hex(), format!("the run ref points at {rec_id}: {e}; {todo}"), fix);
                states.insert(*run, RunState::Bad);
                continue;
            }
        };
        let fault = if record.run == *run {
            match check_run_record(store, &record) {
                Ok(()) => None,
                Err(Fault::Mismatch(why)) => Some(format!("its record {rec_id} does not match its content: {why}")),
                Err(Fault::Unreadable(e)) => {
                    // A missing or corrupt pipeline object is reported on its own; anything else here.
                    if !matches!(e, Error::Corrupt { .. }) && store.contains(&record.pipeline)? {
                        c.problem(
                            record.pipeline.hex(),
                            format!("{name} needs it as its pipeline, but it cannot be read: {e}"),
                        );
                    }
                    None
                }
            }
        } else {
            Some(format!(
                "the ref points at {rec_id}, which is the record of run {} (copied from another run's ref?)",
                record.run
            ))
        };
        if let Some(fault) = fault {
            let (fix, todo) = fix_or_move_aside(
                index.run_fix(run)?,
                &path,
                "re-running the pipeline writes a true record",
            );
            c.fixable(run.hex(), format!("{name}: {fault}; {todo}"), fix);
            states.insert(*run, RunState::Bad);
            continue;
        }
        check_run_objects(store, c, run, &record)?;
        states.insert(*run, RunState::Good(Box::new(record)));
    }
    Ok(states)
}

/// Every object a run record names must exist, and its metrics must be those its evaluate stage computed.
fn check_run_objects(store: &LocalStore, c: &mut Checked, run: &Id, r: &RunRecord) -> Result<()> {
    let owner = format!("run {}", run.short());
    let rerun = "run the pipeline again to recompute it";
    let mut needs = vec![
        ("its pipeline".to_string(), r.pipeline, rerun),
        (
            "its data snapshot".to_string(),
            r.snapshot,
            "run the pipeline again on the same data to store it",
        ),
    ];
    if let Some(s) = r.source_record {
        needs.push(("its source record".into(), s, rerun));
    }
    for st in &r.stages {
        needs.push((
            format!("the output of stage {}", st.name),
            st.output,
            "`mlpipe reproduce` of the run restores it, as does running the pipeline again",
        ));
    }
    for (what, id, fix) in needs {
        if !store.contains(&id)? {
            c.problem(id.hex(), format!("missing: {owner} needs it as {what}; {fix}"));
        }
    }
    let evaluate = r.stages.iter().rev().find(|s| s.kind == "evaluate");
    if let Some(st) = evaluate
        && let Ok(bytes) = store.get(&st.output)
        && let Ok(out) = StageOutput::from_bytes(&bytes, &st.output)
        && let StageState::Evaluate(e) = out.state
        && (e.test != r.metrics || e.train != r.train_metrics)
    {
        c.problem(
            run.hex(),
            format!(
                "{owner}: its record's metrics are not those its evaluate output {} holds (the record was edited); \
                 `mlpipe reproduce {}` re-executes the run and shows the true ones",
                st.output.short(),
                run.short()
            ),
        );
    }
    Ok(())
}

/// Every prediction ref, as for runs: damaged refs, records of another prediction, records whose run,
/// model and input do not give their id, a model that is not their run's; and every object a prediction
/// needs, its run included.
fn check_predictions(
    store: &LocalStore,
    c: &mut Checked,
    index: &mut Index<'_>,
    runs: &BTreeMap<Id, RunState>,
) -> Result<BTreeMap<Id, bool>> {
    let scan = store.scan_refs(RefKind::Prediction)?;
    c.refs += scan.refs.len() + scan.damaged.len();
    // Prediction id → whether its ref points at its own, checked record (false: damaged, reported).
    let mut good = BTreeMap::new();
    for d in &scan.damaged {
        let found = match d.key {
            Some((_, p)) => {
                good.insert(p, false);
                index.prediction_fix(&p)?
            }
            None => None,
        };
        c.damaged(d, found);
    }
    for (prediction, rec_id) in &scan.refs {
        let path = store.ref_file(RefKind::Prediction, prediction);
        good.insert(*prediction, false);
        if !store.contains(rec_id)? {
            let (fix, todo) = match index.prediction_fix(prediction)? {
                Some((fix, todo)) => (Some(fix), todo),
                None => (None, "predicting the same input again writes the record again".into()),
            };
            c.fixable(
                prediction.hex(),
                format!("prediction points at missing object {rec_id}; {todo}"),
                fix,
            );
            continue;
        }
        let p = match super::load_json::<PredictionRecord>(store, rec_id, "prediction record") {
            Ok(p) => p,
            Err(Error::Corrupt { .. }) => continue, // reported with the objects
            Err(e) => {
                let (fix, todo) = fix_or_move_aside(
                    index.prediction_fix(prediction)?,
                    &path,
                    "predicting the same input again writes a new one",
                );
                c.fixable(
                    prediction.hex(),
                    format!("the prediction ref points at {rec_id}: {e}; {todo}"),
                    fix,
                );
                continue;
            }
        };
        let owner = format!("prediction {}", prediction.short());
        if let Err(why) = check_prediction_record(prediction, &p) {
            let (fix, todo) = fix_or_move_aside(
                index.prediction_fix(prediction)?,
                &path,
                "predicting the same input again writes a true record",
            );
            c.fixable(
                prediction.hex(),
                format!("{owner}: the ref points at {rec_id}, {why}; {todo}"),
                fix,
            );
            continue;
        }
        good.insert(*prediction, true);
        match runs.get(&p.run) {
            Some(RunState::Good(run)) => {
                if let Some(model) = run_model(run).filter(|m| *m != p.model) {
                    c.fixable(
                        prediction.hex(),
                        format!(
                            "{owner}: its record names model {}, but run {} holds model {model} (the record was forged); \
                             `mlpipe verify --repair` moves the ref aside to v1/quarantine/",
                            p.model,
                            p.run.short()
                        ),
                        Some(Fix::MoveAside(path.clone())),
                    );
                }
            }
            state => {
                let (fix, why) = missing_run(index, &p.run, state)?;
                c.fixable(prediction.hex(), format!("{owner} names run {}, {why}", p.run), fix);
            }
        }
        for (what, id, fix) in [
            ("its input", p.input, "predict the same input file again to store it"),
            ("its output", p.output, "predict the same input again to recompute it"),
            ("its model", p.model, "`mlpipe reproduce` of its run restores it"),
        ] {
            if !store.contains(&id)? {
                c.problem(id.hex(), format!("missing: {owner} needs it as {what}; {fix}"));
            }
        }
    }
    Ok(good)
}

/// Why a run that a prediction or ledger entry names cannot be loaded, and the fix when there is one.
fn missing_run(index: &mut Index<'_>, run: &Id, state: Option<&RunState>) -> Result<(Option<Fix>, String)> {
    Ok(match state {
        Some(RunState::Good(_)) => (None, "which is in the store".into()),
        Some(RunState::Bad) => (
            None,
            "whose ref or record is damaged (reported above): it cannot be replayed until that is repaired".into(),
        ),
        None => match index.run_fix(run)? {
            Some((fix, todo)) => (
                Some(fix),
                format!("whose ref is missing (deleted?), so it cannot be replayed; {todo}"),
            ),
            None => (
                None,
                format!(
                    "which is gone from the store (no ref, no record), so it can no longer be replayed; running its \
                     pipeline again on the same data and code records run {} again",
                    run.short()
                ),
            ),
        },
    })
}

/// Every snapshot memo (a Parquet or IPC file's snapshot id): damaged ones, and ones whose snapshot is
/// gone. A memo is only a shortcut — a run checks the file's rows against the snapshot's before using
/// it — so one pointing at another snapshot costs a run its shortcut, never its result.
fn check_snapshot_memos(store: &LocalStore, c: &mut Checked) -> Result<()> {
    let scan = store.scan_refs(RefKind::Snapshot)?;
    c.refs += scan.refs.len() + scan.damaged.len();
    for d in &scan.damaged {
        c.damaged(d, None);
    }
    for (key, target) in &scan.refs {
        if !store.contains(target)? {
            c.fixable(
                key.hex(),
                format!(
                    "the snapshot ref points at missing snapshot {target}; `mlpipe verify --repair` moves it aside to \
                     v1/quarantine/ and the next run of the file writes it again"
                ),
                Some(Fix::MoveAside(store.ref_file(RefKind::Snapshot, key))),
            );
        }
    }
    Ok(())
}

/// Every stage-key ref: damaged ones; refs to missing objects; refs whose key a checked run record names
/// with another output (the record's keys are recomputed, so the key is known to be that stage's); refs
/// no record names that point at something other than a stage output. A stage output does not record its
/// key's inputs, so a key no run names cannot be recomputed from its target (docs/reliability.md).
fn check_stage_keys(store: &LocalStore, c: &mut Checked, runs: &BTreeMap<Id, RunState>) -> Result<()> {
    let scan = store.scan_refs(RefKind::StageKey)?;
    c.refs += scan.refs.len() + scan.damaged.len();
    for d in &scan.damaged {
        c.damaged(d, None);
    }
    let mut recorded: BTreeMap<Id, (Id, &Id, &str)> = BTreeMap::new();
    for (run, state) in runs {
        if let RunState::Good(r) = state {
            for st in &r.stages {
                recorded.entry(st.key).or_insert((st.output, run, st.name.as_str()));
            }
        }
    }
    for (key, target) in &scan.refs {
        let path = store.ref_file(RefKind::StageKey, key);
        if !store.contains(target)? {
            c.problem(key.hex(), format!("stage key points at missing object {target}"));
            continue;
        }
        if let Some((output, run, stage)) = recorded.get(key) {
            if output != target {
                let (fix, todo) = if store.contains(output)? {
                    (
                        Fix::PointRef {
                            kind: RefKind::StageKey,
                            key: *key,
                            target: *output,
                        },
                        "`mlpipe verify --repair` points it back at the recorded output",
                    )
                } else {
                    (
                        Fix::MoveAside(path),
                        "`mlpipe verify --repair` moves it aside to v1/quarantine/; the next `mlpipe run` recomputes the stage",
                    )
                };
                c.fixable(
                    key.hex(),
                    format!(
                        "the stage-key ref of stage {stage} of run {} points at {target}, but the run recorded {output} \
                         for that key (copied from another ref?); {todo}",
                        run.short()
                    ),
                    Some(fix),
                );
            }
        } else if let Some(head) = store.object_head(target, 32)?
            && !head.starts_with(br#"{"kind":"stage-output","#)
        {
            c.fixable(
                key.hex(),
                format!(
                    "the stage-key ref points at {target}, which is not a stage output; `mlpipe verify --repair` moves \
                     it aside to v1/quarantine/ and the next `mlpipe run` recomputes the stage"
                ),
                Some(Fix::MoveAside(path)),
            );
        }
    }
    Ok(())
}
