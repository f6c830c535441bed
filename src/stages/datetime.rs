//! Date and time features from text columns holding ISO-8601 dates (`2010-06-01`) or date-times
//! (`2010-06-01T12:30:00`, `2010-06-01 12:30:00.25`), as feature-engine's `DatetimeFeatures` and
//! `DatetimeSubtraction`. Time zones are not accepted (a value with one is an error naming the line),
//! so no local-time rule can change a number.
//!
//! `datetime_features`: new numeric columns `<column>_<feature>` for each of `features` (the list in
//! [`FEATURES`]; by default month, year, day of week, day of month, hour, minute, second); the text
//! column is dropped unless `drop_original = false`.
//! `datetime_difference`: `<column>_sub_<reference>` = column − reference in `unit` (`"D"` default,
//! `"h"`, `"m"`, `"s"`). Missing text gives missing numbers.

#![allow(clippy::many_single_char_names)] // y, m, d, h: the calendar's own names

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::frame::{Column, ColumnData, Frame};
use crate::vocab::reader::TableReader;

pub const FEATURES: [&str; 20] = [
    "month",
    "quarter",
    "semester",
    "year",
    "week",
    "day_of_week",
    "day_of_month",
    "day_of_year",
    "weekend",
    "month_start",
    "month_end",
    "quarter_start",
    "quarter_end",
    "year_start",
    "year_end",
    "leap_year",
    "days_in_month",
    "hour",
    "minute",
    "second",
];
const DEFAULT: [&str; 7] = [
    "month",
    "year",
    "day_of_week",
    "day_of_month",
    "hour",
    "minute",
    "second",
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureParams {
    pub features: Vec<String>,
    pub drop_original: bool,
}

impl FeatureParams {
    pub const NAMES: [&'static str; 2] = ["features", "drop_original"];

    pub fn parse(t: &mut TableReader<'_, '_>) -> Result<FeatureParams> {
        let features = match t.str_list("features")? {
            None => DEFAULT.iter().map(|s| (*s).to_string()).collect(),
            Some(list) => {
                let mut out = Vec::new();
                for f in list {
                    if !FEATURES.contains(&f.value.as_str()) {
                        let mut err = Error::spec(format!("unknown date feature \"{}\"", f.value), Some(f.location));
                        if let Some(h) = crate::error::did_you_mean(&f.value, FEATURES) {
                            err = err.with_hint(h);
                        }
                        return Err(err);
                    }
                    out.push(f.value);
                }
                out
            }
        };
        Ok(FeatureParams {
            features,
            drop_original: t.bool("drop_original")?.unwrap_or(true),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DifferenceParams {
    pub reference: String,
    pub unit: String,
}

impl DifferenceParams {
    pub const NAMES: [&'static str; 2] = ["reference", "unit"];

    pub fn parse(t: &mut TableReader<'_, '_>) -> Result<DifferenceParams> {
        let reference = t
            .req_str("reference", "the date column subtracted from the others")?
            .value;
        let unit = t
            .choice("unit", &["D", "h", "m", "s"])?
            .map_or_else(|| "D".to_string(), |u| u.value);
        Ok(DifferenceParams { reference, unit })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fitted {
    Features {
        columns: Vec<String>,
        features: Vec<String>,
        drop_original: bool,
    },
    Difference {
        columns: Vec<String>,
        reference: String,
        unit: String,
    },
}

/// A calendar date and time of day, without a zone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DateTime {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub seconds: f64,
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 (Howard Hinnant's `days_from_civil`).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn digits(s: &str) -> Option<i64> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// Parses `YYYY-MM-DD`, optionally followed by `T` or a space and `HH:MM[:SS[.fff]]`, and `Z` after a
/// time (UTC, as database and Parquet timestamps are written in snapshots).
pub fn parse(text: &str) -> Option<DateTime> {
    let text = text.trim();
    let text = match text.strip_suffix('Z') {
        Some(t) if t.contains(['T', ' ']) => t,
        _ => text,
    };
    let (date, time) = match text.find(['T', ' ']) {
        Some(i) => (&text[..i], Some(&text[i + 1..])),
        None => (text, None),
    };
    let mut parts = date.split('-');
    let (y, m, d) = (digits(parts.next()?)?, digits(parts.next()?)?, digits(parts.next()?)?);
    if parts.next().is_some() || !(1..=12).contains(&m) {
        return None;
    }
    let (m, d) = (u32::try_from(m).ok()?, u32::try_from(d).ok()?);
    if d == 0 || d > days_in_month(y, m) {
        return None;
    }
    let seconds = match time {
        None => 0.0,
        Some(t) => {
            let mut parts = t.split(':');
            let h = digits(parts.next()?)?;
            let mi = digits(parts.next()?)?;
            let s: f64 = match parts.next() {
                None => 0.0,
                Some(s) if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') && !s.is_empty() => s.parse().ok()?,
                Some(_) => return None,
            };
            if parts.next().is_some() || h > 23 || mi > 59 || !(0.0..60.0).contains(&s) {
                return None;
            }
            (h * 3600 + mi * 60) as f64 + s
        }
    };
    Some(DateTime {
        year: y,
        month: m,
        day: d,
        seconds,
    })
}

impl DateTime {
    fn days(&self) -> i64 {
        days_from_civil(self.year, self.month, self.day)
    }

    /// Monday = 0, as pandas' `dayofweek`.
    fn weekday(&self) -> i64 {
        (self.days() + 3).rem_euclid(7)
    }

    fn day_of_year(&self) -> i64 {
        self.days() - days_from_civil(self.year, 1, 1) + 1
    }

    /// ISO-8601 week number.
    fn iso_week(&self) -> i64 {
        let wd = self.weekday();
        let thursday = self.days() - wd + 3;
        let year_of_thursday = {
            let mut y = self.year;
            if thursday < days_from_civil(y, 1, 1) {
                y -= 1;
            } else if thursday >= days_from_civil(y + 1, 1, 1) {
                y += 1;
            }
            y
        };
        (thursday - days_from_civil(year_of_thursday, 1, 1)) / 7 + 1
    }

    pub fn feature(&self, name: &str) -> f64 {
        let flag = |b: bool| f64::from(u8::from(b));
        let q_start = matches!(self.month, 1 | 4 | 7 | 10);
        let q_end = matches!(self.month, 3 | 6 | 9 | 12);
        let last = days_in_month(self.year, self.month);
        match name {
            "month" => f64::from(self.month),
            "quarter" => f64::from((self.month - 1) / 3 + 1),
            "semester" => {
                if self.month <= 6 {
                    1.0
                } else {
                    2.0
                }
            }
            "year" => self.year as f64,
            "week" => self.iso_week() as f64,
            "day_of_week" => self.weekday() as f64,
            "day_of_month" => f64::from(self.day),
            "day_of_year" => self.day_of_year() as f64,
            "weekend" => flag(self.weekday() >= 5),
            "month_start" => flag(self.day == 1),
            "month_end" => flag(self.day == last),
            "quarter_start" => flag(q_start && self.day == 1),
            "quarter_end" => flag(q_end && self.day == last),
            "year_start" => flag(self.month == 1 && self.day == 1),
            "year_end" => flag(self.month == 12 && self.day == 31),
            "leap_year" => flag(is_leap(self.year)),
            "days_in_month" => f64::from(last),
            "hour" => (self.seconds / 3600.0).floor(),
            "minute" => ((self.seconds / 60.0).floor()).rem_euclid(60.0),
            _ => self.seconds.rem_euclid(60.0).floor(),
        }
    }

    pub fn timestamp(&self) -> f64 {
        self.days() as f64 * 86_400.0 + self.seconds
    }
}

/// The parsed values of a text column, or an error naming the first value that is not a date.
fn parse_column(frame: &Frame, column: &str) -> Result<Vec<Option<DateTime>>> {
    let col = frame.column(column).ok_or_else(|| frame.missing_column(column))?;
    let ColumnData::Categorical(values) = &col.data else {
        return Err(Error::data(format!("column \"{column}\" holds numbers, not dates"))
            .with_hint("date steps read ISO-8601 text such as 2010-06-01 or 2010-06-01T12:30:00"));
    };
    values
        .iter()
        .enumerate()
        .map(|(r, v)| match v {
            None => Ok(None),
            Some(s) => parse(s).map(Some).ok_or_else(|| {
                Error::data(format!(
                    "column \"{column}\" holds \"{s}\" at line {} of {}, which is not an ISO-8601 date without a time zone",
                    frame.lines[r], frame.source
                ))
                .with_hint("write dates as YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS, or mark the value missing")
            }),
        })
        .collect()
}

pub fn fit_features(p: &FeatureParams, train: &Frame, columns: &[String]) -> Result<Fitted> {
    for c in columns {
        parse_column(train, c)?;
    }
    Ok(Fitted::Features {
        columns: columns.to_vec(),
        features: p.features.clone(),
        drop_original: p.drop_original,
    })
}

pub fn fit_difference(p: &DifferenceParams, train: &Frame, columns: &[String]) -> Result<Fitted> {
    parse_column(train, &p.reference)?;
    let columns: Vec<String> = columns.iter().filter(|c| **c != p.reference).cloned().collect();
    for c in &columns {
        parse_column(train, c)?;
    }
    Ok(Fitted::Difference {
        columns,
        reference: p.reference.clone(),
        unit: p.unit.clone(),
    })
}

impl Fitted {
    pub fn apply(&self, mut frame: Frame) -> Result<Frame> {
        match self {
            Fitted::Features {
                columns,
                features,
                drop_original,
            } => {
                let mut new = Vec::new();
                for c in columns {
                    let parsed = parse_column(&frame, c)?;
                    for f in features {
                        let values = parsed.iter().map(|d| d.map_or(f64::NAN, |d| d.feature(f))).collect();
                        new.push(Column {
                            name: format!("{c}_{f}"),
                            data: ColumnData::Numeric(values),
                        });
                    }
                }
                if *drop_original {
                    frame.columns.retain(|col| !columns.contains(&col.name));
                }
                frame.columns.extend(new);
            }
            Fitted::Difference {
                columns,
                reference,
                unit,
            } => {
                let divisor = match unit.as_str() {
                    "h" => 3600.0,
                    "m" => 60.0,
                    "s" => 1.0,
                    _ => 86_400.0,
                };
                let refs = parse_column(&frame, reference)?;
                let mut new = Vec::new();
                for c in columns {
                    let values = parse_column(&frame, c)?
                        .iter()
                        .zip(&refs)
                        .map(|(a, b)| match (a, b) {
                            (Some(a), Some(b)) => (a.timestamp() - b.timestamp()) / divisor,
                            _ => f64::NAN,
                        })
                        .collect();
                    new.push(Column {
                        name: format!("{c}_sub_{reference}"),
                        data: ColumnData::Numeric(values),
                    });
                }
                frame.columns.extend(new);
            }
        }
        Ok(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_arithmetic() {
        // Values against pandas are checked in tests/peer.rs; here, the calendar's own relations.
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1) - days_from_civil(2000, 2, 28), 2); // 2000 is a leap year
        assert_eq!(days_from_civil(1900, 3, 1) - days_from_civil(1900, 2, 28), 1); // 1900 is not
        let t = parse("2024-02-29 13:45:30.5").unwrap();
        assert_eq!(
            (t.feature("leap_year"), t.feature("month_end"), t.feature("hour")),
            (1.0, 1.0, 13.0)
        );
        assert_eq!(
            (t.feature("minute"), t.feature("second"), t.feature("day_of_year")),
            (45.0, 30.0, 31.0 + 29.0)
        );
        assert!(parse("2023-02-29").is_none());
        assert!(parse("2023-01-01T10:00:00+02:00").is_none());
        // UTC as snapshots write database and Parquet timestamps; a bare date takes no `Z`.
        assert_eq!(parse("2024-02-29T13:45:30.500000Z"), Some(t));
        assert!(parse("2024-02-29Z").is_none());
    }
}
