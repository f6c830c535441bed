//! `mlpipe ledger`: list and filter prediction entries, compare a shadow model with its champion, and
//! prune old entries.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::digest::Id;
use crate::error::{Error, Result};
use crate::ledger::{self, Entry, Filter};
use crate::store::LocalStore;

pub struct LedgerArgs {
    pub store: PathBuf,
    pub ledger: Option<String>,
}

fn open(args: &LedgerArgs) -> Result<Box<dyn ledger::Backend>> {
    let store = LocalStore::open(&args.store)?;
    ledger::open(store.root(), args.ledger.as_deref())
}

/// Checks an RFC 3339 time given on the command line (entries compare as text, so the form must match).
pub fn check_time(text: &str, flag: &str) -> Result<String> {
    humantime::parse_rfc3339_weak(text).map_err(|e| {
        Error::data(format!("{flag} {text} is not an RFC 3339 time: {e}")).with_hint("write it as 2026-11-26T10:00:00Z")
    })?;
    let t = humantime::parse_rfc3339_weak(text).map_err(|e| Error::data(e.to_string()))?;
    Ok(humantime::format_rfc3339_micros(t).to_string())
}

pub fn list(args: &LedgerArgs, filter: &Filter) -> Result<Vec<Entry>> {
    open(args)?.entries(filter)
}

#[derive(Debug, Serialize)]
pub struct Comparison {
    pub champion: Id,
    pub shadow: Id,
    /// Requests both models scored.
    pub pairs: usize,
    /// Pairs with bit-identical predictions.
    pub identical: usize,
    pub mean_abs_difference: f64,
    pub max_abs_difference: f64,
    /// The champion's prediction id where the difference is largest.
    pub max_at: Option<Id>,
    pub mean_relative_difference: f64,
    /// Share of pairs whose relative difference exceeds the tolerance.
    pub beyond_tolerance: f64,
    pub tolerance: f64,
    /// Mean of shadow − champion: a sign of systematic bias.
    pub mean_signed_difference: f64,
}

/// Running sums for one (champion, shadow) pair of models.
#[derive(Default)]
struct Acc {
    pairs: usize,
    identical: usize,
    abs: f64,
    rel: f64,
    signed: f64,
    max: f64,
    max_at: Option<Id>,
    beyond: usize,
}

/// Pairs every shadow entry with its champion entry and summarises how they disagree, per model pair.
pub fn compare(args: &LedgerArgs, since: Option<String>, tolerance: f64) -> Result<Vec<Comparison>> {
    let mut backend = open(args)?;
    let champions = backend.entries(&Filter {
        role: Some("champion".into()),
        since: since.clone(),
        ..Filter::default()
    })?;
    let shadows = backend.entries(&Filter {
        role: Some("shadow".into()),
        since,
        ..Filter::default()
    })?;
    // The same prediction id always has the same value (that is what replay proves), so one is enough.
    let champion_value: BTreeMap<Id, (Id, f64)> = champions
        .iter()
        .filter_map(|e| e.value.map(|v| (e.prediction, (e.run, v))))
        .collect();
    let mut acc: BTreeMap<(Id, Id), Acc> = BTreeMap::new();
    // Oldest first, so sums run in a fixed order.
    for s in shadows.iter().rev() {
        let (Some(pair), Some(sv)) = (s.pair, s.value) else {
            continue;
        };
        let Some((crun, cv)) = champion_value.get(&pair) else {
            continue;
        };
        let a = acc.entry((*crun, s.run)).or_default();
        let d = sv - cv;
        a.pairs += 1;
        a.identical += usize::from(sv.to_bits() == cv.to_bits());
        a.abs += d.abs();
        a.signed += d;
        let rel = if *cv == 0.0 { d.abs() } else { (d / cv).abs() };
        a.rel += rel;
        a.beyond += usize::from(rel > tolerance);
        if d.abs() > a.max || a.max_at.is_none() {
            a.max = d.abs();
            a.max_at = Some(pair);
        }
    }
    Ok(acc
        .into_iter()
        .map(|((champion, shadow), a)| {
            let n = a.pairs.max(1) as f64;
            Comparison {
                champion,
                shadow,
                pairs: a.pairs,
                identical: a.identical,
                mean_abs_difference: a.abs / n,
                max_abs_difference: a.max,
                max_at: a.max_at,
                mean_relative_difference: a.rel / n,
                beyond_tolerance: a.beyond as f64 / n,
                tolerance,
                mean_signed_difference: a.signed / n,
            }
        })
        .collect())
}

#[derive(Debug, Serialize)]
pub struct PruneReport {
    pub before: String,
    pub entries: usize,
    pub inputs: usize,
}

/// Deletes entries made before `before` and the record inputs no remaining entry uses. Batch inputs are
/// store objects: `mlpipe gc` removes them once no prediction record references them.
pub fn prune(args: &LedgerArgs, before: &str) -> Result<PruneReport> {
    let before = check_time(before, "--before")?;
    let (entries, inputs) = open(args)?.prune(&before)?;
    Ok(PruneReport {
        before,
        entries,
        inputs,
    })
}
