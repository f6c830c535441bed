//! `mlpipe gc`: remove objects that nothing references (with the stage-key refs that pointed at them) and
//! temp files of interrupted writers. Roots are run refs, prediction refs and the prediction ledger's
//! entries: a prediction or a ledger entry keeps its run (record and every object the record names), its
//! model and its input, even when the run's ref was deleted or damaged (its record is then found by
//! content). Holds the store's exclusive lock, so it never runs beside a `run`, `predict` or `reproduce`;
//! refuses a store with a link in its layout, and never touches `v1/quarantine/`.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::Serialize;

use super::RecordIndex;
use crate::digest::Id;
use crate::error::{Error, Result};
use crate::ledger;
use crate::provenance::{PredictionRecord, RunRecord};
use crate::store::{LocalStore, RefKind, Store};

pub struct GcArgs {
    pub store: PathBuf,
    pub dry_run: bool,
    /// Ledger database URL; the store's SQLite ledger (when there is one) otherwise.
    pub ledger: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct GcReport {
    pub kept: usize,
    pub removed: usize,
    pub bytes_removed: u64,
    pub stage_keys_removed: usize,
    pub temp_files_removed: usize,
    /// Damaged refs and misplaced entries gc left in place (`verify --repair` moves them aside).
    pub damaged_left: usize,
    pub dry_run: bool,
}

/// What gc keeps: objects, and the runs whose records (and everything they name) it keeps.
#[derive(Default)]
struct Live {
    objects: BTreeSet<Id>,
    runs: BTreeSet<Id>,
}

impl Live {
    fn keep_run(&mut self, record_id: Id, r: &RunRecord) {
        self.objects.insert(record_id);
        self.objects.insert(r.pipeline);
        self.objects.insert(r.snapshot);
        self.objects.extend(r.source_record);
        self.objects.extend(r.stages.iter().map(|s| s.output));
        self.runs.insert(r.run);
    }

    fn keep_prediction(&mut self, record_id: Id, p: &PredictionRecord) {
        self.objects.extend([record_id, p.input, p.output, p.model]);
    }
}

pub fn run(args: &GcArgs) -> Result<GcReport> {
    let store = LocalStore::open(&args.store)?;
    let _lock = store.lock(true)?;
    let objects = store.scan_objects()?;
    let scans = [
        store.scan_refs(RefKind::Run)?,
        store.scan_refs(RefKind::Prediction)?,
        store.scan_refs(RefKind::StageKey)?,
        store.scan_refs(RefKind::Snapshot)?,
    ];
    let layout = store.scan_layout()?;
    let mut damaged = objects
        .damaged
        .iter()
        .chain(scans.iter().flat_map(|s| &s.damaged))
        .chain(&layout);
    let damaged_left = damaged.clone().count();
    // A link in the store would let a removal reach outside it: touch nothing.
    if let Some(link) = damaged.find(|d| std::fs::symlink_metadata(&d.path).is_ok_and(|m| m.file_type().is_symlink())) {
        return Err(Error::Lookup {
            message: format!(
                "gc removed nothing: {} {}; the store's folders and files must be real ones inside it",
                link.path.display(),
                link.what
            ),
            hint: Some(
                "`mlpipe verify` lists every link in the store; `mlpipe verify --repair` moves them aside to \
                 v1/quarantine/ (what they point at is left untouched)"
                    .into(),
            ),
        });
    }
    let [runs, predictions, keys, snapshots] = scans;

    let mut live = Live::default();
    // A record that cannot be read stops gc before anything is removed: what it references is
    // unknown, and guessing "nothing" would delete a run's outputs.
    let unreadable = |what: &str, key: &Id, e: Error| Error::Lookup {
        message: format!("gc removed nothing: the record of {what} {key} cannot be read: {e}"),
        hint: Some(format!(
            "run `mlpipe verify`; re-running the pipeline (or `mlpipe reproduce {}`) rewrites a damaged record",
            key.short()
        )),
    };
    // Runs and predictions whose records are found by content: their refs are damaged, point elsewhere,
    // or are gone while something still names them.
    let mut lost_runs: BTreeSet<Id> = BTreeSet::new();
    let mut lost_predictions: BTreeSet<Id> = BTreeSet::new();
    let mut named_runs: BTreeSet<Id> = BTreeSet::new();
    for (run, rec_id) in &runs.refs {
        let r = super::load_json::<RunRecord>(&store, rec_id, "run record").map_err(|e| unreadable("run", run, e))?;
        live.keep_run(*rec_id, &r);
        if r.run != *run {
            lost_runs.insert(*run);
        }
    }
    for (prediction, rec_id) in &predictions.refs {
        let p = super::load_json::<PredictionRecord>(&store, rec_id, "prediction record")
            .map_err(|e| unreadable("prediction", prediction, e))?;
        live.keep_prediction(*rec_id, &p);
        named_runs.insert(p.run);
        if p.prediction != *prediction {
            lost_predictions.insert(*prediction);
        }
    }
    for d in runs.damaged.iter().chain(&predictions.damaged) {
        match d.key {
            Some((RefKind::Run, run)) => {
                lost_runs.insert(run);
            }
            Some((_, prediction)) => {
                lost_predictions.insert(prediction);
            }
            None => {}
        }
    }
    let good_predictions: BTreeSet<Id> = predictions.refs.iter().map(|(p, _)| *p).collect();
    ledger_roots(
        &store,
        args.ledger.as_deref(),
        &mut live,
        &mut named_runs,
        &mut lost_predictions,
        &good_predictions,
    )?;
    lost_runs.extend(named_runs.iter().filter(|r| !live.runs.contains(r)));
    if !lost_runs.is_empty() || !lost_predictions.is_empty() {
        let index = RecordIndex::build(&store)?;
        for prediction in &lost_predictions {
            for (rec_id, p) in index.predictions.get(prediction).into_iter().flatten() {
                live.keep_prediction(*rec_id, p);
                if !live.runs.contains(&p.run) {
                    lost_runs.insert(p.run);
                }
            }
        }
        for run in &lost_runs {
            for (rec_id, r) in index.runs.get(run).into_iter().flatten() {
                live.keep_run(*rec_id, r);
            }
        }
    }

    let all = objects.ids;
    let dead: Vec<Id> = all.iter().filter(|id| !live.objects.contains(id)).copied().collect();
    let mut report = GcReport {
        kept: all.len() - dead.len(),
        removed: dead.len(),
        bytes_removed: 0,
        stage_keys_removed: 0,
        temp_files_removed: 0,
        damaged_left,
        dry_run: args.dry_run,
    };
    let dead_set: BTreeSet<Id> = dead.iter().copied().collect();
    for (key, target) in &keys.refs {
        if dead_set.contains(target) || !store.contains(target)? {
            report.stage_keys_removed += 1;
            if !args.dry_run {
                store.remove_ref(RefKind::StageKey, key)?;
            }
        }
    }
    // A snapshot memo keeps nothing alive: it goes with its snapshot.
    for (key, target) in &snapshots.refs {
        if (dead_set.contains(target) || !store.contains(target)?) && !args.dry_run {
            store.remove_ref(RefKind::Snapshot, key)?;
        }
    }
    for id in &dead {
        report.bytes_removed += if args.dry_run {
            std::fs::symlink_metadata(store.object_path(id)).map_or(0, |m| m.len())
        } else {
            store.remove_object(id)?
        };
    }
    if !args.dry_run {
        report.temp_files_removed = store.clear_tmp()?;
    }
    Ok(report)
}

/// The ledger's entries are roots: each keeps its run, its model, and (for a batch) its input, output and
/// prediction record.
/// A ledger that cannot be read stops gc, as an unreadable record does.
fn ledger_roots(
    store: &LocalStore,
    url: Option<&str>,
    live: &mut Live,
    runs: &mut BTreeSet<Id>,
    lost_predictions: &mut BTreeSet<Id>,
    good_predictions: &BTreeSet<Id>,
) -> Result<()> {
    if url.is_none() && !ledger::default_path(store.root()).exists() {
        return Ok(());
    }
    let entries = ledger::open(store.root(), url)
        .and_then(|mut backend| backend.entries(&ledger::Filter::default()))
        .map_err(|e| Error::Lookup {
            message: format!("gc removed nothing: the prediction ledger cannot be read: {e}"),
            hint: Some(
                "its entries keep their runs, models and inputs; run `mlpipe verify` (pass --ledger for a \
                 PostgreSQL ledger)"
                    .into(),
            ),
        })?;
    for e in entries {
        runs.insert(e.run);
        live.objects.insert(e.model);
        if e.input_format != ledger::RECORD_FORMAT {
            live.objects.extend([e.input, e.output]);
            // A batch is replayed through its prediction record: keep it even when its ref is gone.
            if !good_predictions.contains(&e.prediction) {
                lost_predictions.insert(e.prediction);
            }
        }
    }
    Ok(())
}
