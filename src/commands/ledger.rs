//! `mlpipe ledger`: list and filter prediction entries, compare a shadow model with its champion, print
//! the chain's head, and prune old entries.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::digest::Id;
use crate::error::{Error, Result};
use crate::ledger::{self, Entry, Filter};
use crate::provenance;

pub struct LedgerArgs {
    pub store: PathBuf,
    pub ledger: Option<String>,
}

/// The ledger as it is: every `mlpipe ledger` action needs one to exist, and none creates one.
/// The store is not opened (that would create it): a mistyped `--store` is "no ledger at …".
fn open(args: &LedgerArgs) -> Result<Box<dyn ledger::Backend>> {
    ledger::open_existing(&args.store, args.ledger.as_deref())
}

/// Checks an RFC 3339 time given on the command line and writes it the way the ledger records times
/// (UTC, `Z`, microseconds), because entries compare as text. It needs a date, a time and an offset
/// (`Z` or `±HH:MM`); a fraction finer than microseconds is rounded up, which compares exactly against
/// times recorded to the microsecond.
pub fn check_time(text: &str, flag: &str) -> Result<String> {
    rfc3339_utc(text).map_err(|why| {
        Error::data(format!("{flag} {text} is not an RFC 3339 time: {why}"))
            .with_hint("write a date, a time and an offset, as 2026-12-01T10:00:00Z or 2026-12-01T10:00:00+01:00")
    })
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day counted from 1970-01-01 (`civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` (`t`, `z` and a space for `T` allowed, as RFC 3339 does)
/// as `YYYY-MM-DDTHH:MM:SS.ffffffZ` in UTC.
fn rfc3339_utc(text: &str) -> std::result::Result<String, String> {
    const SHAPE: &str = "expected YYYY-MM-DDTHH:MM:SS with an optional fraction, then Z or an offset such as +01:00";
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> std::result::Result<i64, String> {
        let part = b.get(range).ok_or(SHAPE)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return Err(SHAPE.to_string());
        }
        Ok(part.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let at = |i: usize, allowed: &[u8]| b.get(i).is_some_and(|c| allowed.contains(c));
    if !(at(4, b"-") && at(7, b"-") && at(10, b"Tt ") && at(13, b":") && at(16, b":")) {
        return Err(SHAPE.into());
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    if !(1..=12).contains(&month) {
        return Err(format!("month {month:02} does not exist"));
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err(format!("day {day:02} does not exist in {year:04}-{month:02}"));
    }
    if hour > 23 || minute > 59 {
        return Err(format!("{hour:02}:{minute:02} is not a time of day"));
    }
    if second > 59 {
        return Err("leap seconds (:60) are not supported".into());
    }
    // The fraction, rounded up to microseconds.
    let mut i = 19;
    let mut micros = 0;
    if at(i, b".") {
        let start = i + 1;
        let end = start + b[start..].iter().take_while(|c| c.is_ascii_digit()).count();
        if end == start {
            return Err("a decimal point must be followed by digits".into());
        }
        let fraction = &b[start..end];
        for k in 0..6 {
            micros = micros * 10 + fraction.get(k).map_or(0, |d| i64::from(d - b'0'));
        }
        if fraction.iter().skip(6).any(|&d| d != b'0') {
            micros += 1;
        }
        i = end;
    }
    let offset_minutes = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if i + 6 == b.len() && at(i + 3, b":") => {
            let (h, m) = (digits(i + 1..i + 3)?, digits(i + 4..i + 6)?);
            if h > 23 || m > 59 {
                return Err(format!("offset {} is out of range", &text[i..]));
            }
            if *sign == b'-' { -(h * 60 + m) } else { h * 60 + m }
        }
        None => return Err("it has no offset: add Z for UTC, or the offset from UTC such as +01:00".into()),
        Some(_) => return Err(format!("\"{}\" is not Z or an offset such as +01:00", &text[i..])),
    };
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    let total = seconds * 1_000_000 + micros;
    let (days, rest) = (total.div_euclid(86_400_000_000), total.rem_euclid(86_400_000_000));
    let (year, month, day) = civil_from_days(days);
    if !(0..=9999).contains(&year) {
        return Err("it falls outside the years 0000 to 9999 in UTC".into());
    }
    let (secs, micros) = (rest / 1_000_000, rest % 1_000_000);
    Ok(format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    ))
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
    /// The head of the removed prefix, which the remaining chain starts from (none if nothing was removed).
    pub anchor: Option<ledger::Anchor>,
    /// Entries made before `before` that were kept because a newer entry precedes them in the chain.
    pub kept_older: usize,
}

/// Deletes the longest prefix of the chain made before `before`, and the record inputs no remaining
/// entry uses, once that prefix verifies; its head becomes the anchor the remaining chain starts from.
/// Batch inputs are store objects: `mlpipe gc` removes them once no prediction record references them.
pub fn prune(args: &LedgerArgs, before: &str) -> Result<PruneReport> {
    let before = check_time(before, "--before")?;
    let pruned = open(args)?.prune(&before, &provenance::now_rfc3339_micros())?;
    Ok(PruneReport {
        before,
        entries: pruned.entries,
        inputs: pruned.inputs,
        anchor: pruned.anchor,
        kept_older: pruned.kept_older,
    })
}

/// The chain's head (digest and entry count) to anchor elsewhere, or with `at`, the head as it was
/// when the chain had that many entries; recomputed entry by entry, so an edited chain is an error.
pub fn head(args: &LedgerArgs, at: Option<u64>) -> Result<ledger::Head> {
    ledger::head(open(args)?.as_mut(), at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prune_before_accepts_rfc3339_offsets_and_z_normalising_to_utc() {
        for (given, utc) in [
            ("2026-12-01T10:00:00+01:00", "2026-12-01T09:00:00.000000Z"),
            ("2026-12-01T10:00:00Z", "2026-12-01T10:00:00.000000Z"),
            ("2026-12-01t10:00:00z", "2026-12-01T10:00:00.000000Z"),
            ("2026-12-01 10:00:00-05:30", "2026-12-01T15:30:00.000000Z"),
            ("2026-12-01T00:30:00+01:00", "2026-11-30T23:30:00.000000Z"),
            ("2024-02-29T23:59:59.5-00:30", "2024-03-01T00:29:59.500000Z"),
            ("2026-12-31T23:00:00-01:00", "2027-01-01T00:00:00.000000Z"),
            ("2026-12-01T10:00:00.123456Z", "2026-12-01T10:00:00.123456Z"),
            // Finer than a microsecond rounds up: `time < before` stays exact for recorded times.
            ("2026-12-01T10:00:00.1234561Z", "2026-12-01T10:00:00.123457Z"),
            ("2026-12-01T10:00:00.9999999Z", "2026-12-01T10:00:01.000000Z"),
            ("2026-12-01T10:00:00.1234560000Z", "2026-12-01T10:00:00.123456Z"),
        ] {
            assert_eq!(check_time(given, "--before").unwrap(), utc, "{given}");
        }
    }

    #[test]
    fn prune_before_refuses_what_is_not_rfc3339_with_an_offset() {
        for (given, why) in [
            (
                "2026-12-01T10:00:00",
                "it has no offset: add Z for UTC, or the offset from UTC such as +01:00",
            ),
            (
                "2026-12-01",
                "expected YYYY-MM-DDTHH:MM:SS with an optional fraction, then Z or an offset such as +01:00",
            ),
            (
                "yesterday",
                "expected YYYY-MM-DDTHH:MM:SS with an optional fraction, then Z or an offset such as +01:00",
            ),
            (
                "2026-12-01T10:00:00+0100",
                "\"+0100\" is not Z or an offset such as +01:00",
            ),
            (
                "2026-12-01T10:00:00 UTC",
                "\" UTC\" is not Z or an offset such as +01:00",
            ),
            (
                "2026-12-01T10:00:00Z junk",
                "\"Z junk\" is not Z or an offset such as +01:00",
            ),
            ("2026-12-01T10:00:00.Z", "a decimal point must be followed by digits"),
            ("2026-13-01T10:00:00Z", "month 13 does not exist"),
            ("2026-02-29T10:00:00Z", "day 29 does not exist in 2026-02"),
            ("2026-12-01T24:00:00Z", "24:00 is not a time of day"),
            ("2026-12-31T23:59:60Z", "leap seconds (:60) are not supported"),
            ("2026-12-01T10:00:00+24:00", "offset +24:00 is out of range"),
            (
                "0000-01-01T00:00:00+01:00",
                "it falls outside the years 0000 to 9999 in UTC",
            ),
            (
                "２０２６-12-01T10:00:00Z",
                "expected YYYY-MM-DDTHH:MM:SS with an optional fraction, then Z or an offset such as +01:00",
            ),
        ] {
            let err = check_time(given, "--before").unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("--before {given} is not an RFC 3339 time: {why}")
            );
            assert_eq!(
                err.hint().as_deref(),
                Some("write a date, a time and an offset, as 2026-12-01T10:00:00Z or 2026-12-01T10:00:00+01:00")
            );
        }
    }

    #[test]
    fn dates_convert_both_ways_across_the_calendar() {
        for days in (-800_000..3_000_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
            assert!((1..=days_in_month(y, m)).contains(&d));
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(20_788), (2026, 12, 1));
    }
}
