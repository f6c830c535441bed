//! `verify`'s ledger half: every entry's run, model, input and prediction record present and agreeing, and
//! the hash chain intact from its anchor. A ledger that cannot be opened or read, and a row that cannot be
//! read, are findings like any other: the rest of the store and of the ledger is still checked.

use std::collections::{BTreeMap, BTreeSet};

use super::{Checked, Fix, Index, RunState, missing_run};
use crate::digest::Id;
use crate::error::{Error, Result};
use crate::fitted::runs::run_model;
use crate::ledger;
use crate::store::{LocalStore, Store};

/// At most this many problems name ledger entries for one missing run, model or input; one more line
/// counts the rest.
const ENTRIES_NAMED: usize = 100;

/// The ledger (`url`, else the store's own when there is one), checked entry by entry and along its chain.
/// A ledger mlpipe cannot check (written before the chain, or unreadable) is one finding; a ledger that is
/// not there at all (a mistyped `--ledger`) is still an error.
pub(super) fn check_ledger_all(
    store: &LocalStore,
    url: Option<&str>,
    c: &mut Checked,
    index: &mut Index<'_>,
    runs: &BTreeMap<Id, RunState>,
    predictions: &BTreeMap<Id, bool>,
) -> Result<()> {
    if url.is_none() && std::fs::symlink_metadata(ledger::default_path(store.root())).is_err() {
        return Ok(());
    }
    let mut backend = match ledger::open_existing(store.root(), url) {
        Ok(backend) => backend,
        Err(e @ Error::Lookup { .. }) => return Err(e),
        Err(e) => {
            cannot_check(c, &e);
            return Ok(());
        }
    };
    let unreadable = check_ledger(store, backend.as_mut(), c, index, runs, predictions)?;
    c.ledger_chain = check_ledger_chain(store, backend.as_mut(), c);
    if c.ledger_chain.is_none() {
        // The chain walk names unreadable rows; without it, they are named here.
        for (seq, why) in unreadable {
            c.ledger_problem(
                format!("ledger row {seq}"),
                format!("ledger row {seq} cannot be read: {why}; {RESTORE}"),
            );
        }
    }
    Ok(())
}

/// What to do about a ledger edited outside mlpipe.
const RESTORE: &str = "the ledger was edited outside mlpipe: compare `mlpipe ledger head --at N` with a head anchored \
                       earlier, and restore the ledger from a backup";

/// A ledger that cannot be checked (from here on): one finding, with what to do.
fn cannot_check(c: &mut Checked, e: &Error) {
    let todo = e.hint().unwrap_or_else(|| {
        "its entries were not checked: make the database readable again (or restore it from a backup) and run \
         `mlpipe verify` again"
            .into()
    });
    c.problem("ledger", format!("the ledger cannot be checked: {e}; {todo}"));
}

/// Every readable entry's run, model, input and prediction record. Sets the counts; gives the rows that
/// cannot be read (seq, why), which the chain check reports.
fn check_ledger(
    store: &LocalStore,
    backend: &mut dyn ledger::Backend,
    c: &mut Checked,
    index: &mut Index<'_>,
    runs: &BTreeMap<Id, RunState>,
    predictions: &BTreeMap<Id, bool>,
) -> Result<Vec<(i64, String)>> {
    let rows = match ledger::all_rows(backend) {
        Ok(rows) => rows,
        Err(e) => {
            cannot_check(c, &e);
            return Ok(Vec::new());
        }
    };
    // Newest first, as `mlpipe ledger` lists them (the first entries named are the newest).
    let entries: Vec<&ledger::Entry> = rows.iter().rev().filter_map(|r| r.entry.as_ref().ok()).collect();
    let unreadable: Vec<(i64, String)> = rows
        .iter()
        .filter_map(|r| r.entry.as_ref().err().map(|why| (r.seq, why.clone())))
        .collect();
    let mut inputs = BTreeSet::new();
    // Per missing thing: how many entries name it, so that a server's many entries give one line each.
    let mut named: BTreeMap<(String, Id), usize> = BTreeMap::new();
    let mut missing_runs: BTreeMap<Id, (Option<Fix>, String)> = BTreeMap::new();
    for e in &entries {
        let mut report = |c: &mut Checked, what: &str, id: Id, text: String, fix: Option<Fix>| {
            let n = named.entry((what.to_string(), id)).or_default();
            *n += 1;
            if *n <= ENTRIES_NAMED {
                c.fixable(e.prediction.hex(), text, fix);
            }
        };
        match runs.get(&e.run) {
            Some(RunState::Good(run)) => {
                if let Some(model) = run_model(run).filter(|m| *m != e.model) {
                    report(
                        c,
                        "model",
                        e.model,
                        format!(
                            "ledger entry names model {}, but run {} holds model {model}",
                            e.model.short(),
                            e.run.short()
                        ),
                        None,
                    );
                }
            }
            state => {
                let (fix, why) = if let Some(found) = missing_runs.get(&e.run) {
                    found.clone()
                } else {
                    let found = missing_run(index, &e.run, state)?;
                    missing_runs.insert(e.run, found.clone());
                    found
                };
                report(c, "run", e.run, format!("ledger entry names run {}, {why}", e.run), fix);
            }
        }
        if !store.contains(&e.model)? {
            report(
                c,
                "model object",
                e.model,
                format!(
                    "ledger entry names model {}, which is missing from the store; `mlpipe reproduce {}` restores it",
                    e.model.short(),
                    e.run.short()
                ),
                None,
            );
        }
        // A batch is replayed through its prediction record.
        if e.input_format != ledger::RECORD_FORMAT && predictions.get(&e.prediction) != Some(&true) {
            let (fix, why) = match predictions.get(&e.prediction) {
                Some(_) => (None, "whose ref is damaged (reported above)".to_string()),
                None => match index.prediction_fix(&e.prediction)? {
                    Some((fix, todo)) => (Some(fix), format!("whose ref is missing (deleted?); {todo}")),
                    None => (
                        None,
                        "whose record is gone from the store; predicting the same input file again records it".into(),
                    ),
                },
            };
            report(
                c,
                "batch prediction",
                e.prediction,
                format!("ledger entry names batch prediction {}, {why}", e.prediction.short()),
                fix,
            );
        }
        if e.input_format == ledger::RECORD_FORMAT {
            if !inputs.insert(e.input) {
                continue;
            }
            match backend.input(&e.input) {
                Ok(Some(_)) => {}
                Ok(None) => c.problem(
                    e.prediction.hex(),
                    format!("ledger entry's input {} is missing from the ledger", e.input.short()),
                ),
                Err(Error::Corrupt { actual, .. }) => c.problem(
                    e.input.hex(),
                    format!("ledger input is corrupt: its bytes hash to {actual}"),
                ),
                Err(err) => c.problem(e.input.hex(), err.to_string()),
            }
        } else if !store.contains(&e.input)? {
            report(
                c,
                "input",
                e.input,
                format!(
                    "batch input {} is not in the store (removed by gc?); predicting the same input file again stores it",
                    e.input.short()
                ),
                None,
            );
        }
    }
    for ((what, id), n) in named {
        if n > ENTRIES_NAMED {
            c.problem(
                id.hex(),
                format!("and {} more ledger entries name this {what}", n - ENTRIES_NAMED),
            );
        }
    }
    c.ledger_entries = rows.len();
    c.ledger_inputs = inputs.len();
    Ok(unreadable)
}

/// The ledger's hash chain, entry by entry from its anchor (`docs/hashing.md`), and every entry's
/// recorded output, rows and value against its replay where that is cheap (`reproduce::Replayer`).
/// A chain that cannot be walked (a malformed anchor, a database that fails midway) is a finding, and
/// gives no summary.
fn check_ledger_chain(
    store: &LocalStore,
    backend: &mut dyn ledger::Backend,
    c: &mut Checked,
) -> Option<ledger::ChainSummary> {
    let anchor = match backend.anchor() {
        Ok(anchor) => anchor,
        Err(e) => {
            cannot_check(c, &e);
            return None;
        }
    };
    let mut chain = ledger::ChainCheck::new(anchor.as_ref());
    let mut replayer = crate::commands::reproduce::Replayer::new(store);
    let walked = ledger::walk(backend, &mut |backend, rows| {
        let entries: Vec<&ledger::Entry> = rows.iter().filter_map(|r| r.entry.as_ref().ok()).collect();
        replayer.prepare(backend, &entries);
        for row in rows {
            let before = chain.problems.len();
            chain.visit(row);
            for p in &chain.problems[before..] {
                let label = ledger::entry_label(p.position, p.seq);
                c.ledger_problem(
                    p.prediction.map_or_else(|| format!("ledger {label}"), |id| id.hex()),
                    format!("ledger {label} {}; {RESTORE}", p.what),
                );
            }
            if let Ok(entry) = &row.entry {
                let position = row.position.as_deref().and_then(|p| p.parse::<u64>().ok());
                for m in replayer.check(backend, entry) {
                    let label =
                        position.map_or_else(|| format!("entry (row {})", m.seq), |p| ledger::entry_label(p, m.seq));
                    c.ledger_problem(
                        m.prediction.hex(),
                        format!(
                            "ledger {label} ({} prediction made {}) records {} {}, but its replay gives {}; \
                             `mlpipe reproduce {}` shows it",
                            ledger::shown(&m.channel),
                            ledger::shown(&m.time),
                            m.field,
                            ledger::shown(&m.recorded),
                            m.reproduced,
                            m.prediction
                        ),
                    );
                }
            }
        }
        Ok(())
    });
    if let Err(e) = walked {
        cannot_check(c, &e);
        return None;
    }
    Some(ledger::ChainSummary {
        head: chain.tail(),
        checked: chain.checked,
        replayed: replayer.compared,
    })
}
