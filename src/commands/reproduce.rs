//! `mlpipe reproduce HASH`: re-execute a run (or a prediction) from its recorded snapshot and pipeline,
//! with every cache bypassed, in memory, and compare every artifact with the record. A prediction's
//! replay is also compared with every ledger entry that records it (output, rows and value).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::digest::Id;
use crate::error::{Error, Result};
use crate::executor::{Executor, Progress, Snapshot};
use crate::fitted::Predictions;
use crate::ledger;
use crate::predictor::{Scorer, output_digest, single_value};
use crate::provenance::{self, CodeState};
use crate::spec::Pipeline;
use crate::store::{LocalStore, MemoryStore, Resolved, Store};
use crate::tables::Format;

pub struct ReproduceArgs {
    /// A run id, a prediction id (batch, REST or stream; a batch row as `<id>/<row>`), or a prefix.
    pub hash: String,
    pub store: PathBuf,
    /// Ledger database URL; the store's SQLite ledger when absent.
    pub ledger: Option<String>,
    /// For a run gathered from a database: query it again as of the recorded time.
    pub refetch: bool,
}

/// What querying a run's database again gave.
#[derive(Debug, Serialize)]
pub struct Refetch {
    pub source: String,
    pub as_of: Option<String>,
    pub recorded: Id,
    pub refetched: Id,
    pub recorded_rows: usize,
    pub refetched_rows: usize,
}

impl Refetch {
    pub fn same(&self) -> bool {
        self.recorded == self.refetched
    }
}

#[derive(Debug, Serialize)]
pub struct ArtifactCheck {
    pub name: String,
    pub recorded: Id,
    pub reproduced: Id,
}

#[derive(Debug, Serialize)]
pub struct Divergence {
    pub stage: String,
    /// `None` when this version of mlpipe plans a stage the record does not have, or the reverse.
    pub recorded: Option<Id>,
    pub reproduced: Option<Id>,
}

/// A stage output the store had lost or damaged, written again from the verified re-run.
#[derive(Debug, Serialize)]
pub struct Restored {
    pub id: Id,
    pub stage: String,
    /// "missing" or "corrupt".
    pub was: &'static str,
}

#[derive(Debug, Serialize)]
pub struct ReproduceReport {
    /// Whether the re-execution gave exactly what was recorded (the store's artifacts and every ledger
    /// entry): false exactly when the exit code is 3.
    pub reproduced: bool,
    /// "run" or "prediction".
    pub what: String,
    pub id: Id,
    pub run: Id,
    pub checked: Vec<ArtifactCheck>,
    pub diverged: Option<Divergence>,
    /// Objects that were missing or damaged in the store and were restored from the verified re-run.
    pub restored: Vec<Restored>,
    pub recorded_code: CodeState,
    pub recorded_version: String,
    pub current_version: String,
    /// With `--refetch`: the database queried again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refetch: Option<Refetch>,
    /// For a prediction: the ledger entries that record it, compared with the replay.
    pub ledger_entries: usize,
    /// Ledger entries whose recorded output, rows or value differ from the replay.
    pub ledger_mismatches: Vec<LedgerMismatch>,
}

impl ReproduceReport {
    /// Whether the re-execution gave anything other than what was recorded (the store's artifacts or
    /// the ledger's entries): exit code 3.
    pub fn mismatch(&self) -> bool {
        self.diverged.is_some() || !self.ledger_mismatches.is_empty()
    }
}

/// A ledger entry that records something other than what its replay gives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedgerMismatch {
    /// The entry's row number in the ledger.
    pub seq: i64,
    pub prediction: Id,
    pub channel: String,
    pub time: String,
    /// "output", "rows" or "value".
    pub field: String,
    pub recorded: String,
    pub reproduced: String,
}

/// What a prediction's replay gave, in the terms a ledger entry records.
#[derive(Debug, Clone, PartialEq)]
pub struct Replayed {
    pub output: Id,
    pub rows: u64,
    /// The single value, for a one-row prediction, as the ledger stores it (`ledger::stored_value`).
    pub value: Option<f64>,
}

impl Replayed {
    pub fn of(predictions: &Predictions) -> Replayed {
        Replayed {
            output: output_digest(predictions),
            rows: predictions.len() as u64,
            value: ledger::stored_value(single_value(predictions)),
        }
    }
}

fn show_value(v: Option<f64>) -> String {
    // `{:?}` is the shortest text that reads back as the same double.
    v.map_or_else(|| "none".into(), |v| format!("{v:?}"))
}

/// How a ledger entry differs from its prediction's replay (nothing when it records the replay exactly).
pub fn compare_entry(entry: &ledger::Entry, replay: &Replayed) -> Vec<LedgerMismatch> {
    let mut out = Vec::new();
    let mut add = |field: &str, recorded: String, reproduced: String| {
        out.push(LedgerMismatch {
            seq: entry.seq,
            prediction: entry.prediction,
            channel: entry.channel.name().into(),
            time: entry.time.clone(),
            field: field.into(),
            recorded,
            reproduced,
        });
    };
    if entry.output != replay.output {
        add("output", entry.output.hex(), replay.output.hex());
    }
    if entry.rows != replay.rows {
        add("rows", entry.rows.to_string(), replay.rows.to_string());
    }
    if entry.value.map(f64::to_bits) != replay.value.map(f64::to_bits) {
        add("value", show_value(entry.value), show_value(replay.value));
    }
    out
}

/// Every ledger entry recording prediction `id`, compared with its replay: (entries, mismatches).
fn check_ledger_entries(
    backend: &mut dyn ledger::Backend,
    id: &Id,
    replay: &Replayed,
) -> Result<(usize, Vec<LedgerMismatch>)> {
    let entries = backend.entries(&ledger::Filter {
        prediction: Some(id.hex()),
        ..ledger::Filter::default()
    })?;
    let mut mismatches: Vec<LedgerMismatch> = entries.iter().flat_map(|e| compare_entry(e, replay)).collect();
    mismatches.sort_by_key(|m| m.seq);
    Ok((entries.len(), mismatches))
}

/// Replays ledger entries where that is cheap, for `mlpipe verify`: a single record (its input kept in
/// the ledger) or a one-row batch is scored again; a larger batch is compared with its prediction
/// record in the store (`reproduce <prediction-id>` replays it in full). Models are loaded once per
/// run; the records of a chunk of entries are scored together, one frame per run and set of fields
/// (as a REST array would be), and each prediction id once per chunk.
pub struct Replayer<'a> {
    store: &'a LocalStore,
    scorers: BTreeMap<Id, Option<Scorer>>,
    /// Replays of the current chunk's prediction ids (`None`: cannot be replayed).
    done: BTreeMap<Id, Option<Replayed>>,
    /// Entries compared with a replay (or with their prediction record).
    pub compared: usize,
}

/// Record inputs of one run with the same fields, to score as one frame: (prediction id, record).
type RecordGroup = Vec<(Id, serde_json::Map<String, serde_json::Value>)>;

impl<'a> Replayer<'a> {
    pub fn new(store: &'a LocalStore) -> Replayer<'a> {
        Replayer {
            store,
            scorers: BTreeMap::new(),
            done: BTreeMap::new(),
            compared: 0,
        }
    }

    fn scorer(&mut self, run: &Id) -> Option<&Scorer> {
        let store = self.store;
        self.scorers
            .entry(*run)
            .or_insert_with(|| {
                super::load_run(store, run)
                    .and_then(|record| Scorer::load(store, &record))
                    .ok()
            })
            .as_ref()
    }

    /// Replays the record entries among `entries` in batches (a chunk of the ledger, in chain order);
    /// [`Replayer::check`] then compares each entry.
    pub fn prepare(&mut self, backend: &mut dyn ledger::Backend, entries: &[&ledger::Entry]) {
        self.done.clear();
        let mut groups: BTreeMap<(Id, Vec<String>), RecordGroup> = BTreeMap::new();
        for e in entries {
            if e.input_format != ledger::RECORD_FORMAT || self.done.contains_key(&e.prediction) {
                continue;
            }
            let record = match self.scorer(&e.run) {
                Some(scorer) if scorer.model == e.model => backend
                    .input(&e.input)
                    .ok()
                    .flatten()
                    .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
                    .and_then(|v| match v {
                        serde_json::Value::Object(map) => Some(map),
                        _ => None,
                    }),
                _ => None,
            };
            // Queued or not replayable: either way, decided for this chunk.
            self.done.insert(e.prediction, None);
            if let Some(map) = record {
                let fields = map.keys().cloned().collect();
                groups.entry((e.run, fields)).or_default().push((e.prediction, map));
            }
        }
        for ((run, _), group) in groups {
            let Some(scorer) = self.scorer(&run) else { continue };
            let score = |records: &[&serde_json::Map<String, serde_json::Value>]| {
                let decoded = scorer.decode_records(records, "stored input").ok()?;
                scorer.score(decoded.frame).ok().filter(|p| p.len() == records.len())
            };
            let maps: Vec<_> = group.iter().map(|(_, m)| m).collect();
            let replays: Vec<Option<Replayed>> = match score(&maps) {
                Some(p) => (0..group.len()).map(|r| Some(Replayed::of(&p.row(r)))).collect(),
                // One bad record fails the frame: score them one by one.
                None => maps.iter().map(|m| score(&[*m]).map(|p| Replayed::of(&p))).collect(),
            };
            for ((prediction, _), replay) in group.iter().zip(replays) {
                self.done.insert(*prediction, replay);
            }
        }
    }

    /// How `entry` differs from its replay; nothing when it cannot be replayed (a missing or damaged
    /// run, model or input, which `verify` reports on its own).
    pub fn check(&mut self, backend: &mut dyn ledger::Backend, entry: &ledger::Entry) -> Vec<LedgerMismatch> {
        if !self.done.contains_key(&entry.prediction) {
            let replay = self.replay(backend, entry);
            self.done.insert(entry.prediction, replay);
        }
        match self.done.get(&entry.prediction) {
            Some(Some(replay)) => {
                self.compared += 1;
                compare_entry(entry, replay)
            }
            _ => Vec::new(),
        }
    }

    /// One entry alone: a record's input scored, a one-row batch read and scored, a larger batch
    /// taken from its prediction record.
    fn replay(&mut self, backend: &mut dyn ledger::Backend, entry: &ledger::Entry) -> Option<Replayed> {
        let cheap = entry.input_format == ledger::RECORD_FORMAT || entry.rows == 1;
        if !cheap {
            let rec = super::load_prediction(self.store, &entry.prediction).ok()?;
            return Some(Replayed {
                output: rec.output,
                rows: rec.rows as u64,
                value: None,
            });
        }
        let store = self.store;
        let scorer = self.scorer(&entry.run)?;
        if scorer.model != entry.model {
            return None;
        }
        let predictions = if entry.input_format == ledger::RECORD_FORMAT {
            let input = backend.input(&entry.input).ok()??;
            scorer.score_canonical(&input).ok()?
        } else {
            let input = store.get(&entry.input).ok()?;
            let format = Format::parse(&entry.input_format).ok()?;
            let frame = crate::predictor::input::read_input(scorer, &input, format, &entry.source).ok()?;
            scorer.score(frame).ok()?
        };
        Some(Replayed::of(&predictions))
    }
}

pub fn run(args: &ReproduceArgs, progress: &dyn Progress) -> Result<ReproduceReport> {
    let store = LocalStore::open(&args.store)?;
    let _lock = store.lock(false)?;
    let (hash, row) = match args.hash.split_once('/') {
        Some((h, r)) => {
            let row = r.parse::<usize>().map_err(|_| Error::Lookup {
                message: format!(
                    "\"{}\" is not a prediction id: the part after / must be a row number",
                    args.hash
                ),
                hint: Some("batch rows are named <prediction-id>/<row>, as in the prediction_id column".into()),
            })?;
            (h, Some(row))
        }
        None => (args.hash.as_str(), None),
    };
    let mut report = match store.resolve(hash) {
        Ok(Resolved::Prediction(id)) => reproduce_prediction(&store, &id, row, args.ledger.as_deref()),
        Ok(_) if row.is_some() => Err(Error::Lookup {
            message: format!("{hash} is not a batch prediction, so it has no rows"),
            hint: None,
        }),
        Ok(_) => {
            let record = super::resolve_run_to_reproduce(&store, hash)?;
            let mut report = reproduce_run(&store, &record, progress)?;
            if args.refetch {
                report.refetch = Some(refetch(&store, &record)?);
            }
            Ok(report)
        }
        Err(not_in_store @ Error::Lookup { .. }) => {
            // Not a run or batch: perhaps a REST or stream prediction, which only the ledger holds.
            let ledger_path = ledger::default_path(store.root());
            if args.ledger.is_none() && !ledger_path.exists() {
                return Err(not_in_store);
            }
            let mut backend = ledger::open_existing(store.root(), args.ledger.as_deref())?;
            match find_entry(backend.as_mut(), hash)? {
                // A REST or stream prediction scores one record: it has no rows to name.
                Some(entry) if row.is_some() => Err(Error::Lookup {
                    message: format!(
                        "{hash} is a {} prediction of one record, not a batch, so it has no rows",
                        entry.channel.name()
                    ),
                    hint: Some(format!("reproduce it as {hash}, without /{}", row.unwrap_or_default())),
                }),
                Some(entry) => reproduce_entry(&store, backend.as_mut(), &entry),
                None => Err(not_in_store),
            }
        }
        Err(other) => Err(other),
    }?;
    report.reproduced = !report.mismatch();
    Ok(report)
}

/// Queries a run's database again, as of the recorded time, and compares the snapshot. Never used by a
/// plain `reproduce`, which reads only the stored snapshot.
fn refetch(store: &LocalStore, record: &provenance::RunRecord) -> Result<Refetch> {
    let Some(source_id) = record.source_record else {
        return Err(Error::Lookup {
            message: format!(
                "run {} was gathered from a file, not a database: nothing to refetch",
                record.run.short()
            ),
            hint: Some("drop --refetch; reproduce already checks the stored snapshot".into()),
        });
    };
    let source: crate::sources::SourceRecord = super::load_json(store, &source_id, "source record")?;
    let pipeline = Pipeline::from_canonical_json(&store.get(&record.pipeline)?)?;
    let selection = pipeline
        .gather
        .database
        .as_ref()
        .ok_or_else(|| Error::internal("a database run's pipeline has no database selection"))?;
    // The record holds the database without its password: connecting takes it from the environment.
    let db = crate::database::Database::parse(&crate::database::strip_password(&source.source))?
        .ok_or_else(|| Error::internal(format!("recorded source {} is not a database", source.source)))?;
    let fetched = crate::sources::fetch(&db, selection, source.as_of.as_deref(), &source.missing_marker)?;
    Ok(Refetch {
        source: source.source,
        as_of: source.as_of,
        recorded: record.snapshot,
        refetched: fetched.record.snapshot,
        recorded_rows: source.rows,
        refetched_rows: fetched.record.rows,
    })
}

/// The ledger entry a prediction id (or unique prefix) names.
fn find_entry(backend: &mut dyn ledger::Backend, hash: &str) -> Result<Option<ledger::Entry>> {
    if hash.len() < 6 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let entries = backend.entries(&ledger::Filter {
        prediction: Some(hash.to_string()),
        limit: Some(1000),
        ..ledger::Filter::default()
    })?;
    let distinct: std::collections::BTreeSet<Id> = entries.iter().map(|e| e.prediction).collect();
    if distinct.len() > 1 {
        return Err(Error::Lookup {
            message: format!("prefix {hash} names {} predictions in the ledger", distinct.len()),
            hint: Some("give more characters of the id".into()),
        });
    }
    Ok(entries.into_iter().next())
}

/// Replays a single-record prediction (REST or stream) from the ledger's stored input.
fn reproduce_entry(
    store: &LocalStore,
    backend: &mut dyn ledger::Backend,
    entry: &ledger::Entry,
) -> Result<ReproduceReport> {
    let run = super::load_run(store, &entry.run)?;
    let scorer = Scorer::load(store, &run)?;
    if scorer.model != entry.model {
        return Err(Error::Mismatch {
            message: format!(
                "ledger entry {} names model {}, but run {} holds model {}",
                entry.prediction.short(),
                entry.model.short(),
                entry.run.short(),
                scorer.model.short()
            ),
        });
    }
    let checked_input = |bytes: Vec<u8>| bytes;
    let input = match backend.input(&entry.input)? {
        Some(b) => checked_input(b),
        None => {
            return Err(Error::Lookup {
                message: format!(
                    "the input of prediction {} is no longer in the ledger {} (pruned?)",
                    entry.prediction.short(),
                    backend.describe()
                ),
                hint: Some("inputs are kept until `mlpipe ledger prune` removes them".into()),
            });
        }
    };
    let value = scorer.score_canonical(&input)?;
    let reproduced = output_digest(&value);
    let diverged = (reproduced != entry.output).then(|| Divergence {
        stage: "predict".into(),
        recorded: Some(entry.output),
        reproduced: Some(reproduced),
    });
    let (ledger_entries, ledger_mismatches) = check_ledger_entries(backend, &entry.prediction, &Replayed::of(&value))?;
    Ok(ReproduceReport {
        reproduced: false,
        what: format!("{} prediction", entry.channel.name()),
        id: entry.prediction,
        run: entry.run,
        checked: vec![ArtifactCheck {
            name: "prediction".into(),
            recorded: entry.output,
            reproduced,
        }],
        diverged,
        restored: Vec::new(),
        recorded_code: run.code,
        recorded_version: run.tool.mlpipe,
        current_version: provenance::MLPIPE_VERSION.to_string(),
        refetch: None,
        ledger_entries,
        ledger_mismatches,
    })
}

fn reproduce_run(
    store: &LocalStore,
    record: &provenance::RunRecord,
    progress: &dyn Progress,
) -> Result<ReproduceReport> {
    let pipeline = Pipeline::from_canonical_json(&store.get(&record.pipeline)?)?;
    let bytes = store.get(&record.snapshot)?;
    let scratch = MemoryStore::default();
    let snapshot = Snapshot::new(record.snapshot, bytes, pipeline.gather.source.clone(), None);
    let executed = Executor::new(&pipeline, &scratch, false, progress).run(&snapshot)?;
    let mut checked = Vec::new();
    let mut diverged = None;
    let longest = record.stages.len().max(executed.stages.len());
    for i in 0..longest {
        let (rec, got) = (record.stages.get(i), executed.stages.get(i));
        if let (Some(rec), Some(got)) = (rec, got) {
            checked.push(ArtifactCheck {
                name: rec.name.clone(),
                recorded: rec.output,
                reproduced: got.output,
            });
        }
        let (recorded, reproduced) = (rec.map(|s| s.output), got.map(|s| s.output));
        if recorded != reproduced && diverged.is_none() {
            let stage = rec.map_or_else(|| got.map(|s| s.name.clone()).unwrap_or_default(), |s| s.name.clone());
            diverged = Some(Divergence {
                stage,
                recorded,
                reproduced,
            });
        }
    }
    // Verified: restore anything the store lost (deleted or damaged objects).
    let mut restored = Vec::new();
    if diverged.is_none() {
        let objects = scratch.objects();
        for stage in &executed.stages {
            let was = match store.get(&stage.output) {
                Ok(_) => continue,
                Err(Error::Corrupt { .. }) => "corrupt",
                Err(_) => "missing",
            };
            if let Some(bytes) = objects.get(&stage.output) {
                store.put_with_id(&stage.output, bytes)?;
                restored.push(Restored {
                    id: stage.output,
                    stage: stage.name.clone(),
                    was,
                });
            }
        }
    }
    Ok(ReproduceReport {
        reproduced: false,
        what: "run".into(),
        id: record.run,
        run: record.run,
        checked,
        diverged,
        restored,
        recorded_code: record.code.clone(),
        recorded_version: record.tool.mlpipe.clone(),
        current_version: provenance::MLPIPE_VERSION.to_string(),
        refetch: None,
        ledger_entries: 0,
        ledger_mismatches: Vec::new(),
    })
}

fn reproduce_prediction(
    store: &LocalStore,
    id: &Id,
    row: Option<usize>,
    ledger_url: Option<&str>,
) -> Result<ReproduceReport> {
    let rec = super::load_prediction(store, id)?;
    if rec.format != 2 {
        return Err(Error::Lookup {
            message: format!(
                "prediction {} was recorded by an older mlpipe (record format {}), which this version cannot replay",
                id.short(),
                rec.format
            ),
            hint: Some("predict again with this version".into()),
        });
    }
    let run = super::load_run(store, &rec.run)?;
    let scorer = Scorer::load(store, &run)?;
    let input = store.get(&rec.input)?;
    let frame = crate::predictor::input::read_input(&scorer, &input, Format::parse(&rec.input_format)?, &rec.source)?;
    let predictions = scorer.score(frame)?;
    let reproduced = output_digest(&predictions);
    let mut checked = vec![ArtifactCheck {
        name: "predictions".into(),
        recorded: rec.output,
        reproduced,
    }];
    if let Some(r) = row {
        let recorded = store.get(&rec.output)?;
        let width = 8 * predictions.floats_per_row();
        let now = predictions.to_bytes();
        let bits = |bytes: &[u8]| -> Option<Vec<u8>> { bytes.get(r * width..(r + 1) * width).map(<[u8]>::to_vec) };
        let (Some(was), Some(now)) = (bits(&recorded), bits(&now)) else {
            return Err(Error::Lookup {
                message: format!("prediction {} has {} rows; there is no row {r}", id.short(), rec.rows),
                hint: Some("rows are numbered from 0".into()),
            });
        };
        checked.push(ArtifactCheck {
            name: format!("row {r}"),
            recorded: Id::of_bytes(&was),
            reproduced: Id::of_bytes(&now),
        });
    }
    let diverged = checked.iter().find(|c| c.recorded != c.reproduced).map(|c| Divergence {
        stage: format!("predict ({})", c.name),
        recorded: Some(c.recorded),
        reproduced: Some(c.reproduced),
    });
    // The ledger entries recording this batch (the whole batch: a row's value is in the output object).
    let (ledger_entries, ledger_mismatches) = if ledger_url.is_some() || ledger::default_path(store.root()).exists() {
        let mut backend = ledger::open_existing(store.root(), ledger_url)?;
        check_ledger_entries(backend.as_mut(), id, &Replayed::of(&predictions))?
    } else {
        (0, Vec::new())
    };
    // Proved: the stored output object holds exactly these bits; restore it if the store lost it.
    let mut restored = Vec::new();
    if diverged.is_none() {
        let was = match store.get(&rec.output) {
            Ok(_) => None,
            Err(Error::Corrupt { .. }) => Some("corrupt"),
            Err(_) => Some("missing"),
        };
        if let Some(was) = was {
            store.put_with_id(&rec.output, &predictions.to_bytes())?;
            restored.push(Restored {
                id: rec.output,
                stage: "predict".into(),
                was,
            });
        }
    }
    Ok(ReproduceReport {
        reproduced: false,
        what: "prediction".into(),
        id: *id,
        run: rec.run,
        checked,
        diverged,
        restored,
        recorded_code: run.code,
        recorded_version: run.tool.mlpipe,
        current_version: provenance::MLPIPE_VERSION.to_string(),
        refetch: None,
        ledger_entries,
        ledger_mismatches,
    })
}
