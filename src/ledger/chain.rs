//! The ledger's hash chain: the link encoding, checking the chain and its head, and chaining and pruning.

use serde::Serialize;

use super::{Backend, CHUNK, Chained, EDITED_HINT, Entry, damaged_link, shown, unlinked_tail};
use crate::digest::{Id, KeyBuilder, context};
use crate::error::{Error, Result};

/// The digest the first entry of a chain is chained to (and the head of an empty chain): 32 zero bytes.
pub const GENESIS: Id = Id([0; 32]);

/// The value a ledger stores, so that the digest covers exactly what is read back: SQLite cannot store a
/// NaN (it is kept as no value) nor the sign of a zero (-0.0 is kept as 0.0). The output digest still
/// covers the prediction's exact bits.
pub fn stored_value(value: Option<f64>) -> Option<f64> {
    value.filter(|v| !v.is_nan()).map(|v| if v == 0.0 { 0.0 } else { v })
}

/// The digest of the entry at `position` (from 1) whose predecessor's digest is `previous`
/// ([`GENESIS`] for position 1): blake3 derive-key over the fields in `docs/hashing.md`. The storage
/// row number (`seq`) is not part of it; the position is.
pub fn entry_digest(previous: &Id, position: u64, e: &Entry) -> Id {
    let value = stored_value(e.value).map_or_else(Vec::new, |v| v.to_bits().to_le_bytes().to_vec());
    let pair = e.pair.map_or_else(Vec::new, |p| p.0.to_vec());
    KeyBuilder::new(context::LEDGER_ENTRY)
        .id(previous)
        .u64(position)
        .id(&e.prediction)
        .id(&e.run)
        .id(&e.model)
        .id(&e.input)
        .str(&e.input_format)
        .id(&e.output)
        .u64(e.rows)
        .bytes(&value)
        .str(e.channel.name())
        .str(&e.role)
        .bytes(&pair)
        .str(&e.time)
        .str(&e.source)
        .finish()
}

/// One entry's place in the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Link {
    pub position: u64,
    pub digest: Id,
}

impl Link {
    /// Before the first entry.
    pub const START: Link = Link {
        position: 0,
        digest: GENESIS,
    };

    /// The link of `entry` appended after this one.
    #[must_use]
    pub fn next(&self, entry: &Entry) -> Link {
        let position = self.position + 1;
        Link {
            position,
            digest: entry_digest(&self.digest, position, entry),
        }
    }
}

/// Where the remaining chain starts after `ledger prune`: the position and digest of the last entry
/// removed (checked before it was removed), when, and with which `--before`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Anchor {
    pub position: u64,
    pub digest: Id,
    pub pruned_before: String,
    pub time: String,
}

impl Anchor {
    pub fn link(&self) -> Link {
        Link {
            position: self.position,
            digest: self.digest,
        }
    }
}

/// The chain's head, to be anchored elsewhere (a CI log, a database row): the digest of its last entry
/// and how many entries the chain has had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Head {
    pub ledger: String,
    /// The digest of the entry at position `entries` ([`GENESIS`] for an empty chain).
    pub digest: Id,
    /// Entries appended since the chain began, pruned ones included: the position of the head.
    pub entries: u64,
    /// Of those, how many the ledger still holds.
    pub kept: u64,
    /// The head of the pruned prefix the remaining chain starts from.
    pub anchor: Option<Anchor>,
}

/// What `ledger prune` removed, and the anchor the remaining chain now starts from.
#[derive(Debug, Clone, Serialize)]
pub struct Pruned {
    pub entries: usize,
    pub inputs: usize,
    /// The new anchor (none when nothing was removed).
    pub anchor: Option<Anchor>,
    /// Entries made before the cut-off that were kept because a newer entry precedes them in the chain
    /// (only a prefix of the chain can be removed).
    pub kept_older: usize,
}

/// A problem `verify` reports about one stored entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainProblem {
    pub seq: i64,
    /// The entry's chain position: the one it records, or the one it should have when that is unreadable.
    pub position: u64,
    pub prediction: Option<Id>,
    pub what: String,
}

/// Checks the chain entry by entry, in chain order: each entry at the position after its predecessor's,
/// its recorded digest equal to [`entry_digest`] of its content and its predecessor's recorded digest.
/// It goes on from what each entry records, so one changed entry is reported once.
#[derive(Debug, Clone)]
pub struct ChainCheck {
    position: u64,
    /// `None` after an entry whose digest cannot be read: the next entry cannot be checked against it.
    digest: Option<Id>,
    pub checked: u64,
    pub problems: Vec<ChainProblem>,
}

impl ChainCheck {
    /// A check starting from the anchor the ledger records, or from the genesis.
    pub fn new(anchor: Option<&Anchor>) -> ChainCheck {
        let start = anchor.map_or(Link::START, Anchor::link);
        ChainCheck {
            position: start.position,
            digest: Some(start.digest),
            checked: 0,
            problems: Vec::new(),
        }
    }

    pub fn visit(&mut self, row: &Chained) {
        self.checked += 1;
        let expected = self.position + 1;
        let position = row.position.as_deref().and_then(|p| p.parse::<u64>().ok());
        let digest = row.digest.as_deref().and_then(Id::from_hex);
        let what = match (&row.entry, position, digest) {
            _ if row.position.is_none() && row.digest.is_none() => Some(
                "has no chain position or digest: its link was removed outside mlpipe (mlpipe chains every entry \
                 it writes)"
                    .to_string(),
            ),
            (_, None, _) | (_, _, None) => Some(format!(
                "has a malformed chain position or digest ({}, {})",
                row.position.as_deref().map_or_else(|| "none".into(), shown),
                row.digest.as_deref().map_or_else(|| "none".into(), shown)
            )),
            (_, Some(p), _) if p == expected + 1 => Some(format!(
                "is at chain position {p}, but the entry before it is at {}: the entry at position {expected} was removed",
                expected - 1
            )),
            (_, Some(p), _) if p > expected => Some(format!(
                "is at chain position {p}, but the entry before it is at {}: the entries at positions {expected} to {} \
                 were removed",
                expected - 1,
                p - 1
            )),
            (_, Some(p), _) if p < expected => Some(format!(
                "is at chain position {p}, but the entry before it is at {}: entries were inserted or reordered",
                expected - 1
            )),
            (Err(why), _, _) => Some(format!("cannot be read: {why}")),
            (Ok(entry), Some(p), Some(d)) => match self.digest {
                Some(previous) if entry_digest(&previous, p, entry) != d => Some(
                    "does not match its chain digest: it, or the digest of the entry before it, was changed after \
                     it was recorded"
                        .to_string(),
                ),
                _ => None,
            },
        };
        if let Some(what) = what {
            self.problems.push(ChainProblem {
                seq: row.seq,
                position: position.unwrap_or(expected),
                prediction: row.entry.as_ref().ok().map(|e| e.prediction),
                what,
            });
        }
        self.position = position.unwrap_or(expected);
        self.digest = digest;
    }

    /// The last link seen (the head, once every entry was visited), when its digest is readable.
    pub fn tail(&self) -> Option<Link> {
        self.digest.map(|digest| Link {
            position: self.position,
            digest,
        })
    }
}

/// What `mlpipe verify` found walking the chain.
#[derive(Debug, Clone, Serialize)]
pub struct ChainSummary {
    /// Where the walk ended: the head, when the last entry's digest is readable.
    pub head: Option<Link>,
    /// Entries checked.
    pub checked: u64,
    /// Entries whose output and value were compared with a replay.
    pub replayed: usize,
}

/// What [`walk`] calls with each chunk of entries (and the backend, to read their inputs).
pub type Visit<'a> = dyn FnMut(&mut dyn Backend, &[Chained]) -> Result<()> + 'a;

/// Visits every entry in chain order, [`CHUNK`] rows at a time.
pub fn walk(backend: &mut dyn Backend, visit: &mut Visit<'_>) -> Result<()> {
    let mut after = i64::MIN;
    loop {
        let rows = backend.chained(after, CHUNK)?;
        visit(backend, &rows)?;
        match rows.last() {
            Some(last) if rows.len() == CHUNK => after = last.seq,
            _ => return Ok(()),
        }
    }
}

/// Every row, in chain order, each entry read on its own: a malformed row is the `Err` of its
/// [`Chained::entry`] (naming its seq, column and value), and the rows after it are still read. Only a
/// failure of the database itself is an error.
pub fn all_rows(backend: &mut dyn Backend) -> Result<Vec<Chained>> {
    let mut all = Vec::new();
    walk(backend, &mut |_, rows| {
        all.extend_from_slice(rows);
        Ok(())
    })?;
    Ok(all)
}

/// Checks the whole chain from its anchor.
pub fn check_chain(backend: &mut dyn Backend) -> Result<ChainCheck> {
    let anchor = backend.anchor()?;
    let mut check = ChainCheck::new(anchor.as_ref());
    walk(backend, &mut |_, rows| {
        for row in rows {
            check.visit(row);
        }
        Ok(())
    })?;
    Ok(check)
}

/// An entry's name in messages: its chain position, and its row in the database.
pub fn entry_label(position: u64, seq: i64) -> String {
    format!("entry {position} (row {seq})")
}

/// The chain's head, recomputed: every entry from the anchor up to position `at` (the last entry when
/// `None`) is checked against its digest before the head is given, so an edited, removed or unlinked
/// entry makes it an error naming the first such entry. Reads only.
pub fn head(backend: &mut dyn Backend, at: Option<u64>) -> Result<Head> {
    let ledger = backend.describe();
    let anchor = backend.anchor()?;
    let start = anchor.as_ref().map_or(Link::START, Anchor::link);
    if let Some(position) = at
        && position < start.position
    {
        return Err(Error::Lookup {
            message: format!(
                "position {position} of the ledger {ledger} was pruned: the chain now starts after position {} \
                 (digest {})",
                start.position, start.digest
            ),
            hint: Some(format!(
                "compare a head anchored at position {} or later",
                start.position
            )),
        });
    }
    let mut check = ChainCheck::new(anchor.as_ref());
    let mut reached = (at == Some(start.position)).then_some(start);
    let mut after = i64::MIN;
    'walk: while reached.is_none() {
        let rows = backend.chained(after, CHUNK)?;
        for row in &rows {
            check.visit(row);
            if let Some(p) = check.problems.first() {
                return Err(Error::data(format!(
                    "ledger {ledger}: {} {}, so the chain's head cannot be vouched for",
                    entry_label(p.position, p.seq),
                    p.what
                ))
                .with_hint(EDITED_HINT));
            }
            if at.is_some_and(|position| check.position >= position) {
                reached = check.tail();
                break 'walk;
            }
        }
        match rows.last() {
            Some(last) if rows.len() == CHUNK => after = last.seq,
            _ => break,
        }
    }
    let tail = check.tail().unwrap_or(start);
    let head = match (at, reached) {
        (None, _) => tail,
        (Some(position), Some(link)) if link.position == position => link,
        (Some(position), _) => {
            return Err(Error::Lookup {
                message: format!(
                    "the ledger {ledger} has had {} {}; there is no position {position}",
                    tail.position,
                    plural(tail.position, "entry", "entries")
                ),
                hint: Some(
                    "a head anchored with more entries than the ledger has now means entries were removed".into(),
                ),
            });
        }
    };
    Ok(Head {
        ledger,
        digest: head.digest,
        entries: head.position,
        kept: head.position - start.position,
        anchor,
    })
}

/// `n` followed by the singular or the plural noun.
pub fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 { one.to_string() } else { many.to_string() }
}

/// What the chain logic needs from a backend inside one write transaction that holds the ledger's
/// write lock.
pub(super) trait ChainTx {
    fn ledger(&self) -> String;
    /// The newest chained entry's link, and the oldest row after it that has no link yet.
    fn last_links(&mut self) -> Result<(Option<Link>, Option<i64>)>;
    fn rows_after(&mut self, after: i64, limit: usize) -> Result<Vec<Chained>>;
    fn set_links(&mut self, links: &[(i64, Link)]) -> Result<()>;
    fn anchor(&mut self) -> Result<Option<Anchor>>;
    /// The first row made at or after `time`.
    fn first_at_or_after(&mut self, time: &str) -> Result<Option<i64>>;
    /// The last row before `seq` (the last row, without it).
    fn last_before(&mut self, seq: Option<i64>) -> Result<Option<i64>>;
    fn delete_through(&mut self, seq: i64) -> Result<usize>;
    fn add_anchor(&mut self, anchor: &Anchor) -> Result<()>;
    fn count_before(&mut self, time: &str) -> Result<usize>;
    fn delete_unused_inputs(&mut self) -> Result<usize>;
}

/// The chain's tail, to append after: the newest entry's link, or the anchor (the genesis) when the
/// ledger holds no entry. A newest entry without its link is an error: only the migration that adds the
/// chain columns chains entries after the fact ([`chain_all`]), so a missing link means an edit.
pub(super) fn tail<T: ChainTx + ?Sized>(tx: &mut T) -> Result<Link> {
    match tx.last_links()? {
        (_, Some(seq)) => Err(unlinked_tail(&tx.ledger(), seq)),
        (Some(link), None) => Ok(link),
        (None, None) => Ok(tx.anchor()?.as_ref().map_or(Link::START, Anchor::link)),
    }
}

/// Chains every entry of a ledger written before the chain existed, in row order, which is commit
/// order (SQLite hands out row numbers under its write lock; PostgreSQL appenders held the table
/// lock). Called only in the transaction that adds the chain columns.
pub(super) fn chain_all<T: ChainTx + ?Sized>(tx: &mut T) -> Result<()> {
    let mut tail = Link::START;
    let mut after = i64::MIN;
    loop {
        let rows = tx.rows_after(after, CHUNK)?;
        let Some(last) = rows.last() else { break };
        after = last.seq;
        let mut links = Vec::with_capacity(rows.len());
        for row in &rows {
            let entry = row.entry.as_ref().map_err(|why| {
                Error::data(format!("ledger {}: cannot chain entry {}: {why}", tx.ledger(), row.seq))
                    .with_hint("correct or delete that row; mlpipe never writes one like it")
            })?;
            tail = tail.next(entry);
            links.push((row.seq, tail));
        }
        tx.set_links(&links)?;
    }
    Ok(())
}

/// Removes the longest prefix of the chain made before `before`, once it verifies from the current
/// anchor, and records its head as the new anchor.
pub(super) fn prune_in<T: ChainTx + ?Sized>(tx: &mut T, before: &str, now: &str) -> Result<Pruned> {
    tail(tx)?;
    let cut = tx.first_at_or_after(before)?;
    let mut pruned = Pruned {
        entries: 0,
        inputs: 0,
        anchor: None,
        kept_older: 0,
    };
    if let Some(last) = tx.last_before(cut)? {
        let anchor = tx.anchor()?;
        let mut check = ChainCheck::new(anchor.as_ref());
        let mut after = i64::MIN;
        'walk: loop {
            let rows = tx.rows_after(after, CHUNK)?;
            let Some(end) = rows.last() else { break };
            after = end.seq;
            for row in &rows {
                if row.seq > last {
                    break 'walk;
                }
                check.visit(row);
            }
        }
        if let Some(first) = check.problems.first() {
            return Err(Error::data(format!(
                "cannot prune the ledger {}: {} of the entries to remove do not verify (entry {} {})",
                tx.ledger(),
                check.problems.len(),
                first.seq,
                first.what
            ))
            .with_hint(
                "pruning would discard the evidence: run `mlpipe verify`, and restore the ledger from a backup",
            ));
        }
        let Some(head) = check.tail() else {
            return Err(damaged_link(&tx.ledger(), last));
        };
        let anchor = Anchor {
            position: head.position,
            digest: head.digest,
            pruned_before: before.to_string(),
            time: now.to_string(),
        };
        pruned.entries = tx.delete_through(last)?;
        tx.add_anchor(&anchor)?;
        pruned.anchor = Some(anchor);
    }
    pruned.kept_older = tx.count_before(before)?;
    pruned.inputs = tx.delete_unused_inputs()?;
    Ok(pruned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::tests::{CHANGED, entry, filled, fresh, id, problems, sql, time};
    use crate::ledger::{COLUMNS, Channel, Filter, SqliteLedger};

    #[test]
    fn golden_ledger_entry_digests() {
        // Changing these digests breaks every recorded chain: bump the context string instead.
        let first = Entry {
            seq: 7,
            prediction: id("prediction"),
            run: id("run"),
            model: id("model"),
            input: id("input"),
            input_format: "record".into(),
            output: id("output"),
            rows: 1,
            value: Some(181_234.5),
            channel: Channel::Serve,
            role: "champion".into(),
            pair: None,
            time: "2026-11-26T10:00:00.000000Z".into(),
            source: "127.0.0.1:5000".into(),
        };
        let second = Entry {
            seq: 8,
            prediction: id("prediction 2"),
            run: id("run 2"),
            model: id("model 2"),
            input: id("input 2"),
            input_format: "csv".into(),
            output: id("output 2"),
            rows: 2,
            value: None,
            channel: Channel::Batch,
            role: "shadow".into(),
            pair: Some(id("prediction")),
            time: "2026-11-26T10:00:01.000000Z".into(),
            source: "test.csv".into(),
        };
        let one = Link::START.next(&first);
        let two = one.next(&second);
        assert_eq!(one.digest.hex(), crate::digest::tests::golden("ledger_entry_1"));
        assert_eq!(two.digest.hex(), crate::digest::tests::golden("ledger_entry_2"));
        assert_eq!(two.position, 2);
        // The row number is storage, not content.
        assert_eq!(Link::START.next(&Entry { seq: 99, ..first }), one);
    }

    #[test]
    fn a_value_edited_in_the_database_breaks_the_chain_at_that_entry() {
        for edit in [
            "UPDATE ledger SET value = 999 WHERE seq = 3",
            "UPDATE ledger SET value = NULL WHERE seq = 3",
            "UPDATE ledger SET time = '2026-11-26T09:00:00.000000Z' WHERE seq = 3",
            "UPDATE ledger SET source = '10.0.0.1:1' WHERE seq = 3",
            "UPDATE ledger SET channel = 'stream' WHERE seq = 3",
            "UPDATE ledger SET rows = 2 WHERE seq = 3",
            "UPDATE ledger SET output = prediction WHERE seq = 3",
            "UPDATE ledger SET pair = prediction WHERE seq = 3",
        ] {
            let (_dir, path) = fresh();
            let mut ledger = filled(&path, 6);
            assert_eq!(problems(&mut ledger), Vec::new());
            sql(&path, edit);
            assert_eq!(problems(&mut ledger), vec![(3, CHANGED.to_string())], "{edit}");
            // The head is recomputed: an edited chain has none to vouch for.
            assert_eq!(
                head(&mut ledger, None).unwrap_err().to_string(),
                format!(
                    "ledger sqlite:{}: entry 3 (row 3) {CHANGED}, so the chain's head cannot be vouched for",
                    path.display()
                )
            );
        }
    }

    #[test]
    fn an_entry_edited_with_its_digest_recomputed_breaks_the_chain_at_the_next_entry() {
        let (_dir, path) = fresh();
        let mut ledger = filled(&path, 5);
        let entries = ledger.entries(&Filter::default()).unwrap();
        let mut edited = entries.iter().find(|e| e.seq == 3).unwrap().clone();
        edited.value = Some(999.0);
        let previous = ledger.digest_at(2).unwrap().unwrap();
        let forged = entry_digest(&previous, 3, &edited);
        sql(
            &path,
            &format!("UPDATE ledger SET value = 999, digest = '{forged}' WHERE seq = 3"),
        );
        assert_eq!(problems(&mut ledger), vec![(4, CHANGED.to_string())]);
    }

    #[test]
    fn removed_and_inserted_entries_are_reported_where_the_chain_breaks() {
        let (_dir, path) = fresh();
        let mut ledger = filled(&path, 7);
        let anchored = head(&mut ledger, None).unwrap();
        sql(&path, "DELETE FROM ledger WHERE seq = 3");
        sql(&path, "DELETE FROM ledger WHERE seq IN (5, 6)");
        assert_eq!(
            problems(&mut ledger),
            vec![
                (
                    4,
                    "is at chain position 4, but the entry before it is at 2: the entry at position 3 was removed"
                        .to_string()
                ),
                (
                    7,
                    "is at chain position 7, but the entry before it is at 4: the entries at positions 5 to 6 were \
                     removed"
                        .to_string()
                ),
            ]
        );
        // A copy of an entry appended at the end, link and all.
        let fields = &COLUMNS["seq, ".len()..];
        sql(
            &path,
            &format!(
                "INSERT INTO ledger ({fields}, position, digest) SELECT {fields}, position, digest FROM ledger WHERE seq = 2"
            ),
        );
        let found = problems(&mut ledger);
        assert_eq!(
            found.last().unwrap().1,
            "is at chain position 2, but the entry before it is at 7: entries were inserted or reordered"
        );
        // Removing the newest entries leaves a valid chain: a head anchored elsewhere shows the loss.
        let (_dir2, path2) = fresh();
        let mut ledger2 = filled(&path2, 7);
        let anchored2 = head(&mut ledger2, None).unwrap();
        sql(&path2, "DELETE FROM ledger WHERE seq >= 6");
        assert_eq!(problems(&mut ledger2), Vec::new());
        let err = head(&mut ledger2, Some(anchored2.entries)).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "the ledger sqlite:{} has had 5 entries; there is no position 7",
                path2.display()
            )
        );
        assert_eq!(anchored.entries, 7);
    }

    #[test]
    fn prune_keeps_the_remaining_chain_verifiable_from_the_pruned_head() {
        let (_dir, path) = fresh();
        let mut ledger = SqliteLedger::open(&path).unwrap();
        // Entry 3 was made late (t = 30); entry 4 early (t = 3).
        let all = [entry(1, 1), entry(2, 2), entry(3, 30), entry(4, 3), entry(5, 5)];
        ledger.append(&all, &[]).unwrap();
        let before = head(&mut ledger, None).unwrap();
        let at_two = ledger.digest_at(2).unwrap().unwrap();
        let pruned = ledger.prune(&time(4), "2026-11-27T00:00:00.000000Z").unwrap();
        // Only the chain's oldest part goes: entries 1 and 2; entry 4 stays although it is older.
        assert_eq!((pruned.entries, pruned.kept_older), (2, 1));
        let anchor = pruned.anchor.unwrap();
        assert_eq!((anchor.position, anchor.digest), (2, at_two));
        assert_eq!(anchor.pruned_before, time(4));
        assert_eq!(problems(&mut ledger), Vec::new());
        let now = head(&mut ledger, None).unwrap();
        assert_eq!((now.entries, now.digest, now.kept), (5, before.digest, 3));
        assert_eq!(head(&mut ledger, Some(2)).unwrap().digest, at_two);
        let err = head(&mut ledger, Some(1)).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "position 1 of the ledger sqlite:{} was pruned: the chain now starts after position 2 (digest {at_two})",
                path.display()
            )
        );
        // Everything: the chain goes on from the last head.
        let all_gone = ledger.prune(&time(3600), "2026-11-27T00:00:01.000000Z").unwrap();
        assert_eq!(all_gone.entries, 3);
        let empty = head(&mut ledger, None).unwrap();
        assert_eq!((empty.entries, empty.digest, empty.kept), (5, before.digest, 0));
        ledger.append(&[entry(6, 6)], &[]).unwrap();
        assert_eq!(
            head(&mut ledger, None).unwrap().digest,
            Link {
                position: 5,
                digest: before.digest
            }
            .next(&entry(6, 6))
            .digest
        );
        assert_eq!(problems(&mut ledger), Vec::new());
    }

    #[test]
    fn prune_refuses_to_remove_entries_that_do_not_verify() {
        let (_dir, path) = fresh();
        let mut ledger = filled(&path, 4);
        sql(&path, "UPDATE ledger SET value = 999 WHERE seq = 1");
        let err = ledger.prune(&time(3), "2026-11-27T00:00:00.000000Z").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "cannot prune the ledger sqlite:{}: 1 of the entries to remove do not verify (entry 1 {CHANGED})",
                path.display()
            )
        );
        assert_eq!(ledger.entries(&Filter::default()).unwrap().len(), 4);
    }

    #[test]
    fn every_row_is_read_past_a_malformed_one_and_its_cells_are_shown_escaped() {
        let (_dir, path) = fresh();
        let mut ledger = filled(&path, 4);
        sql(
            &path,
            "UPDATE ledger SET value = x'00ff1b5b33316d' WHERE seq = 2; UPDATE ledger SET position = 'a' || char(27) \
             WHERE seq = 3",
        );
        let rows = all_rows(&mut ledger).unwrap();
        assert_eq!(rows.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
        assert_eq!(
            rows[1].entry.as_ref().unwrap_err(),
            "ledger entry 2: column value holds a malformed value \"\\0\u{fffd}\\u{1b}[31m\""
        );
        assert!(rows.iter().filter(|r| r.seq != 2).all(|r| r.entry.is_ok()));
        let found = problems(&mut ledger);
        assert!(
            found[1]
                .1
                .starts_with("has a malformed chain position or digest (a\\u{1b}, "),
            "{found:?}"
        );
        assert!(found.iter().all(|(_, what)| !what.contains('\u{1b}')), "{found:?}");
        let err = head(&mut ledger, None).unwrap_err().to_string();
        assert!(
            !err.contains('\u{1b}') && err.contains("\\0\u{fffd}\\u{1b}[31m"),
            "{err}"
        );
    }

    #[test]
    fn ledger_head_at_recomputes_the_chain_up_to_that_position() {
        let (_dir, path) = fresh();
        let mut ledger = filled(&path, 8);
        let at_two = ledger.digest_at(2).unwrap().unwrap();
        let at_eight = head(&mut ledger, Some(8)).unwrap();
        assert_eq!(at_eight, head(&mut ledger, None).unwrap());
        sql(&path, "UPDATE ledger SET value = 1 WHERE position = 7");
        for at in [Some(7), Some(8), None] {
            assert_eq!(
                head(&mut ledger, at).unwrap_err().to_string(),
                format!(
                    "ledger sqlite:{}: entry 7 (row 7) {CHANGED}, so the chain's head cannot be vouched for",
                    path.display()
                ),
                "{at:?}"
            );
        }
        // Before the edit, the chain still vouches for its head.
        let two = head(&mut ledger, Some(2)).unwrap();
        assert_eq!((two.digest, two.entries, two.kept), (at_two, 2, 2));
    }
}
