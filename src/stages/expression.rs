//! `expression`: new columns from row-wise SQL expressions — `GrLivArea / TotRmsAbvGrd AS area_per_room`,
//! `CASE WHEN PoolArea > 0 THEN 1 ELSE 0 END AS has_pool`, `Neighborhood LIKE 'North%' AS north`,
//! `DATE_DIFF('day', listed, sold) AS days_listed`.
//!
//! Each row is computed from that row alone, so fitting learns nothing but the types of the columns an
//! expression reads (checked on train, then required when applying); anything that looks at other rows
//! (AVG, SUM, MIN/MAX of a column, RANK, window functions) is refused when the pipeline is read. SQL's
//! rules for missing values hold: an operation on a missing value is missing, a comparison with one is
//! unknown (`CASE` treats unknown as false, `AND`/`OR` as three-valued logic), `COALESCE` picks the first
//! present value. A result that is not a finite number (division by zero, `LN(0)`, overflow) is
//! missing. Booleans become 1 / 0, text stays categorical.

pub mod parse;

use std::borrow::Cow;
use std::sync::Arc;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use parse::{BinOp, Expr, Func};

use crate::error::{Error, Location, Result};
use crate::frame::{Column, ColumnData, ColumnType, Frame};
use crate::vocab::reader::{At, TableReader};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Params {
    /// The features as written (`expression AS name`): their text is what the stage key hashes.
    pub features: Vec<String>,
    /// Columns the features read that go once the features are made (a text column tested with LIKE,
    /// which no model could take).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drop: Vec<String>,
    /// Where each feature is written, by its new column's name, and where each column it reads is named.
    #[serde(skip)]
    pub locations: Vec<(String, Location)>,
}

/// Two steps are the same when their features are (where they are written is not part of them).
impl PartialEq for Params {
    fn eq(&self, other: &Params) -> bool {
        self.features == other.features && self.drop == other.drop
    }
}

impl Params {
    pub const NAMES: [&'static str; 2] = ["features", "drop"];

    pub fn parse(t: &mut TableReader<'_, '_>) -> Result<Params> {
        let list = t
            .str_list("features")?
            .ok_or_else(|| t.missing("features", "a list of \"expression AS name\" strings"))?;
        if list.is_empty() {
            return Err(Error::spec("`features` is an empty list", Some(t.location())));
        }
        let mut names: Vec<String> = Vec::new();
        let mut locations = Vec::new();
        for item in &list {
            let feature = parse::parse_feature(&item.value).map_err(|e| {
                let err = Error::spec(
                    format!("in \"{}\": {}", item.value, e.message),
                    Some(point_into(item, e.at)),
                );
                match e.hint {
                    Some(h) => err.with_hint(h),
                    None => err,
                }
            })?;
            if names.contains(&feature.name) {
                return Err(Error::spec(
                    format!("two features are named \"{}\"", feature.name),
                    Some(item.location.clone()),
                ));
            }
            let mut read = Vec::new();
            parse::columns_of(&feature.expr, &mut read);
            for c in read {
                locations.push((c, item.location.clone()));
            }
            locations.push((feature.name.clone(), item.location.clone()));
            names.push(feature.name);
        }
        let mut drop = Vec::new();
        for d in t.str_list("drop")?.unwrap_or_default() {
            if !locations.iter().any(|(n, _)| *n == d.value) || names.contains(&d.value) {
                return Err(Error::spec(
                    format!("`drop` names \"{}\", which no feature of this step reads", d.value),
                    Some(d.location),
                )
                .with_hint("drop lists columns the features read, to remove once the features are made"));
            }
            if drop.contains(&d.value) {
                return Err(Error::spec(
                    format!("\"{}\" is listed twice", d.value),
                    Some(d.location),
                ));
            }
            drop.push(d.value);
        }
        Ok(Params {
            features: list.into_iter().map(|i| i.value).collect(),
            drop,
            locations,
        })
    }

    /// The parsed features (their text was checked when the pipeline was read).
    pub fn parsed(&self) -> Result<Vec<parse::Feature>> {
        self.features
            .iter()
            .map(|f| parse::parse_feature(f).map_err(|e| Error::internal(format!("feature \"{f}\": {}", e.message))))
            .collect()
    }

    /// Every column the features read, in order of first mention.
    pub fn inputs(&self) -> Vec<String> {
        let mut out = Vec::new();
        for f in self.parsed().unwrap_or_default() {
            parse::columns_of(&f.expr, &mut out);
        }
        out
    }
}

/// A caret at byte `at` of a TOML string's value, when the string is written plainly on one line (no
/// escapes before that point); else the whole string.
fn point_into(item: &At<String>, at: usize) -> Location {
    let loc = &item.location;
    let mut out = loc.clone();
    let written: String = loc.line_text.chars().skip(loc.col).collect();
    let before = item.value.get(..at).unwrap_or(&item.value);
    if written.starts_with(before) && !before.contains(['\\', '"']) {
        out.col = loc.col + 1 + before.chars().count();
        out.width = 1;
    }
    out
}

/// What an expression gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Number,
    Text,
    Bool,
    /// A bare NULL: takes the type its neighbours need.
    Null,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Number => "a number",
            Kind::Text => "text",
            Kind::Bool => "a condition",
            Kind::Null => "NULL",
        }
    }
}

/// One feature as fitted: the expression, its new column, its kind, and the columns it reads with
/// their train types. The expression is stored as its text and parsed again when loaded (a tree would
/// nest as deep as the expression in the stored JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "StoredFeature", into = "StoredFeature")]
pub struct FittedFeature {
    pub text: String,
    pub expr: Expr,
    pub name: String,
    pub kind: Kind,
    pub inputs: Vec<(String, ColumnType)>,
}

#[derive(Serialize, Deserialize)]
struct StoredFeature {
    text: String,
    name: String,
    kind: Kind,
    inputs: Vec<(String, ColumnType)>,
}

impl From<FittedFeature> for StoredFeature {
    fn from(f: FittedFeature) -> StoredFeature {
        StoredFeature {
            text: f.text,
            name: f.name,
            kind: f.kind,
            inputs: f.inputs,
        }
    }
}

impl TryFrom<StoredFeature> for FittedFeature {
    type Error = String;
    fn try_from(s: StoredFeature) -> std::result::Result<FittedFeature, String> {
        let parsed = parse::parse_feature(&s.text).map_err(|e| e.message)?;
        Ok(FittedFeature {
            text: s.text,
            expr: parsed.expr,
            name: s.name,
            kind: s.kind,
            inputs: s.inputs,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fitted {
    pub features: Vec<FittedFeature>,
    /// Read columns removed after the features are made.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drop: Vec<String>,
}

/// Checks every feature against the train columns (types, new names) and computes it on train, so that
/// an impossible value (a text that is not a date) is reported now.
pub fn fit(p: &Params, train: &Frame) -> Result<Fitted> {
    let mut features = Vec::new();
    for (text, f) in p.features.iter().zip(p.parsed()?) {
        let fail = |message: String| {
            let loc = p.locations.iter().find(|(n, _)| *n == f.name).map(|(_, l)| l.clone());
            Error::data(format!("in \"{text}\": {message}")).at(loc.as_ref())
        };
        if train.column(&f.name).is_some() {
            return Err(
                fail(format!("the new column \"{}\" already exists", f.name)).with_hint("choose another name after AS")
            );
        }
        let mut read = Vec::new();
        parse::columns_of(&f.expr, &mut read);
        let mut inputs = Vec::new();
        for c in read {
            let ty = train
                .column(&c)
                .map(|col| col.data.column_type())
                .ok_or_else(|| train.missing_column(&c))?;
            inputs.push((c, ty));
        }
        let type_of = |name: &str| inputs.iter().find(|(n, _)| n == name).map(|(_, t)| *t);
        let kind = check(&f.expr, &type_of).map_err(fail)?;
        if kind == Kind::Null {
            return Err(fail("the expression is always NULL".into()).with_hint("give it a value or a column"));
        }
        features.push(FittedFeature {
            text: text.clone(),
            expr: f.expr,
            name: f.name,
            kind,
            inputs,
        });
    }
    let fitted = Fitted {
        features,
        drop: p.drop.clone(),
    };
    fitted.apply(train.clone())?;
    Ok(fitted)
}

/// The kind an expression gives, or what is wrong with its types.
fn check(e: &Expr, type_of: &dyn Fn(&str) -> Option<ColumnType>) -> std::result::Result<Kind, String> {
    let k = |x: &Expr| check(x, type_of);
    let want = |x: &Expr, kind: Kind, what: &str| -> std::result::Result<(), String> {
        match k(x)? {
            got if got == kind || got == Kind::Null => Ok(()),
            got => Err(format!(
                "{what} takes {}, but {} is {}",
                kind.name(),
                describe(x),
                got.name()
            )),
        }
    };
    let same = |a: &Expr, b: &Expr, what: &str| -> std::result::Result<Kind, String> {
        let (ka, kb) = (k(a)?, k(b)?);
        match (ka, kb) {
            (Kind::Null, x) | (x, Kind::Null) => Ok(x),
            (x, y) if x == y => Ok(x),
            _ => Err(format!(
                "{what} compares {} ({}) with {} ({})",
                describe(a),
                ka.name(),
                describe(b),
                kb.name()
            )),
        }
    };
    Ok(match e {
        Expr::Number(_) => Kind::Number,
        Expr::Text(_) => Kind::Text,
        Expr::Null => Kind::Null,
        Expr::Bool(_) => Kind::Bool,
        Expr::Column(c) => match type_of(c) {
            Some(ColumnType::Numeric) => Kind::Number,
            Some(ColumnType::Categorical) => Kind::Text,
            None => return Err(format!("column \"{c}\" is not in the data")),
        },
        Expr::Neg(x) => {
            want(x, Kind::Number, "-")?;
            Kind::Number
        }
        Expr::Not(x) => {
            want(x, Kind::Bool, "NOT")?;
            Kind::Bool
        }
        Expr::Binary(op, a, b) => match op {
            BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Rem => {
                let what = format!("'{}'", op.symbol());
                want(a, Kind::Number, &what).map_err(|m| text_hint(m, *op))?;
                want(b, Kind::Number, &what).map_err(|m| text_hint(m, *op))?;
                Kind::Number
            }
            BinOp::Concat => {
                want(a, Kind::Text, "'||'")?;
                want(b, Kind::Text, "'||'")?;
                Kind::Text
            }
            BinOp::And | BinOp::Or => {
                want(a, Kind::Bool, op.symbol())?;
                want(b, Kind::Bool, op.symbol())?;
                Kind::Bool
            }
            _ => {
                if matches!(**a, Expr::Null) || matches!(**b, Expr::Null) {
                    return Err(format!(
                        "'{}' with NULL is never true (a comparison with a missing value is unknown): write IS NULL or IS NOT NULL",
                        op.symbol()
                    ));
                }
                same(a, b, &format!("'{}'", op.symbol()))?;
                Kind::Bool
            }
        },
        Expr::IsNull { expr, .. } => {
            k(expr)?;
            Kind::Bool
        }
        Expr::Like { expr, .. } => {
            want(expr, Kind::Text, "LIKE")?;
            Kind::Bool
        }
        Expr::In { expr, list, .. } => {
            for x in list {
                same(expr, x, "IN")?;
            }
            Kind::Bool
        }
        Expr::Between { expr, low, high, .. } => {
            same(expr, low, "BETWEEN")?;
            same(expr, high, "BETWEEN")?;
            Kind::Bool
        }
        Expr::Case { branches, otherwise } => {
            let mut kind = Kind::Null;
            for (cond, value) in branches {
                want(cond, Kind::Bool, "WHEN")?;
                kind = merge(kind, k(value)?, value)?;
            }
            if let Some(o) = otherwise {
                kind = merge(kind, k(o)?, o)?;
            }
            kind
        }
        Expr::Call(f, args) => {
            let name = f.name().to_uppercase();
            match f {
                Func::Abs
                | Func::Sqrt
                | Func::Exp
                | Func::Ln
                | Func::Log10
                | Func::Power
                | Func::Floor
                | Func::Ceil => {
                    for a in args {
                        want(a, Kind::Number, &name)?;
                    }
                    Kind::Number
                }
                Func::Least | Func::Greatest | Func::Coalesce => {
                    let mut kind = Kind::Null;
                    for a in args {
                        kind = merge(kind, k(a)?, a)?;
                    }
                    if matches!(kind, Kind::Text | Kind::Bool) && *f != Func::Coalesce {
                        return Err(format!("{name} takes numbers"));
                    }
                    kind
                }
                Func::Lower | Func::Upper => {
                    want(&args[0], Kind::Text, &name)?;
                    Kind::Text
                }
                Func::Length => {
                    want(&args[0], Kind::Text, &name)?;
                    Kind::Number
                }
                Func::DateDiff => {
                    match &args[0] {
                        Expr::Text(unit) if seconds_per(unit).is_some() => {}
                        _ => {
                            return Err(
                                "DATE_DIFF's first argument is the unit: 'second', 'minute', 'hour', 'day' or 'week'"
                                    .into(),
                            );
                        }
                    }
                    want(&args[1], Kind::Text, "DATE_DIFF")?;
                    want(&args[2], Kind::Text, "DATE_DIFF")?;
                    Kind::Number
                }
            }
        }
    })
}

fn merge(kind: Kind, next: Kind, at: &Expr) -> std::result::Result<Kind, String> {
    match (kind, next) {
        (Kind::Null, x) | (x, Kind::Null) => Ok(x),
        (x, y) if x == y => Ok(x),
        _ => Err(format!(
            "the values must all be of one type, but {} is {} and an earlier one {}",
            describe(at),
            next.name(),
            kind.name()
        )),
    }
}

fn text_hint(message: String, op: BinOp) -> String {
    if op == BinOp::Add && message.contains("is text") {
        format!("{message} (join texts with ||)")
    } else {
        message
    }
}

/// How an expression is named in messages.
fn describe(e: &Expr) -> String {
    match e {
        Expr::Column(c) => format!("\"{c}\""),
        Expr::Number(x) => format!("{x}"),
        Expr::Text(s) => format!("'{s}'"),
        _ => "the expression".into(),
    }
}

fn seconds_per(unit: &str) -> Option<f64> {
    Some(match unit.to_ascii_lowercase().as_str() {
        "second" | "seconds" => 1.0,
        "minute" | "minutes" => 60.0,
        "hour" | "hours" => 3600.0,
        "day" | "days" => 86_400.0,
        "week" | "weeks" => 604_800.0,
        _ => return None,
    })
}

/// A value of one row.
#[derive(Debug, Clone, PartialEq)]
enum V<'a> {
    Null,
    Num(f64),
    Text(Cow<'a, str>),
    Bool(bool),
}

/// A finite number, or missing.
fn num(x: f64) -> V<'static> {
    if x.is_finite() { V::Num(x) } else { V::Null }
}

struct Row<'a> {
    names: &'a [(String, ColumnType)],
    columns: &'a [&'a ColumnData],
    index: usize,
}

impl<'a> Row<'a> {
    fn column(&self, name: &str) -> V<'a> {
        let Some(i) = self.names.iter().position(|(n, _)| n == name) else {
            return V::Null;
        };
        match self.columns[i] {
            ColumnData::Numeric(v) => num(v[self.index]),
            ColumnData::Categorical(v) => v.get(self.index).map_or(V::Null, |s| V::Text(Cow::Borrowed(s))),
        }
    }
}

#[allow(clippy::too_many_lines)]
fn eval<'a>(e: &'a Expr, row: &Row<'a>) -> std::result::Result<V<'a>, String> {
    Ok(match e {
        Expr::Number(x) => V::Num(*x),
        Expr::Text(s) => V::Text(Cow::Borrowed(s)),
        Expr::Null => V::Null,
        Expr::Bool(b) => V::Bool(*b),
        Expr::Column(c) => row.column(c),
        Expr::Neg(x) => match eval(x, row)? {
            V::Num(x) => V::Num(-x),
            _ => V::Null,
        },
        Expr::Not(x) => match eval(x, row)? {
            V::Bool(b) => V::Bool(!b),
            _ => V::Null,
        },
        Expr::Binary(BinOp::And, a, b) => match (eval(a, row)?, eval(b, row)?) {
            (V::Bool(false), _) | (_, V::Bool(false)) => V::Bool(false),
            (V::Bool(true), V::Bool(true)) => V::Bool(true),
            _ => V::Null,
        },
        Expr::Binary(BinOp::Or, a, b) => match (eval(a, row)?, eval(b, row)?) {
            (V::Bool(true), _) | (_, V::Bool(true)) => V::Bool(true),
            (V::Bool(false), V::Bool(false)) => V::Bool(false),
            _ => V::Null,
        },
        Expr::Binary(op, a, b) => {
            let (a, b) = (eval(a, row)?, eval(b, row)?);
            match (op, a, b) {
                (_, V::Null, _) | (_, _, V::Null) => V::Null,
                (BinOp::Add, V::Num(a), V::Num(b)) => num(a + b),
                (BinOp::Sub, V::Num(a), V::Num(b)) => num(a - b),
                (BinOp::Mul, V::Num(a), V::Num(b)) => num(a * b),
                (BinOp::Div, V::Num(a), V::Num(b)) => num(a / b),
                (BinOp::Rem, V::Num(a), V::Num(b)) => num(a % b),
                (BinOp::Concat, V::Text(a), V::Text(b)) => V::Text(Cow::Owned(format!("{a}{b}"))),
                (op, a, b) => match compare(&a, &b) {
                    Some(ord) => V::Bool(match op {
                        BinOp::Eq => ord.is_eq(),
                        BinOp::NotEq => ord.is_ne(),
                        BinOp::Lt => ord.is_lt(),
                        BinOp::LtEq => ord.is_le(),
                        BinOp::Gt => ord.is_gt(),
                        _ => ord.is_ge(),
                    }),
                    None => V::Null,
                },
            }
        }
        Expr::IsNull { expr, negated } => V::Bool((eval(expr, row)? == V::Null) != *negated),
        Expr::Like {
            expr,
            pattern,
            negated,
            case_insensitive,
        } => match eval(expr, row)? {
            V::Text(s) => {
                let hit = if *case_insensitive {
                    like(&s.to_lowercase(), &pattern.to_lowercase())
                } else {
                    like(&s, pattern)
                };
                V::Bool(hit != *negated)
            }
            _ => V::Null,
        },
        Expr::In { expr, list, negated } => {
            let x = eval(expr, row)?;
            if x == V::Null {
                V::Null
            } else {
                let mut hit = false;
                for item in list {
                    hit |= compare(&x, &eval(item, row)?).is_some_and(std::cmp::Ordering::is_eq);
                }
                V::Bool(hit != *negated)
            }
        }
        Expr::Between {
            expr,
            low,
            high,
            negated,
        } => {
            let (x, lo, hi) = (eval(expr, row)?, eval(low, row)?, eval(high, row)?);
            match (compare(&x, &lo), compare(&x, &hi)) {
                (Some(a), Some(b)) => V::Bool((a.is_ge() && b.is_le()) != *negated),
                _ => V::Null,
            }
        }
        Expr::Case { branches, otherwise } => {
            for (cond, value) in branches {
                if eval(cond, row)? == V::Bool(true) {
                    return eval(value, row);
                }
            }
            match otherwise {
                Some(o) => eval(o, row)?,
                None => V::Null,
            }
        }
        Expr::Call(f, args) => call(*f, args, row)?,
    })
}

fn call<'a>(f: Func, args: &'a [Expr], row: &Row<'a>) -> std::result::Result<V<'a>, String> {
    let values = args
        .iter()
        .map(|a| eval(a, row))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let n = |i: usize| match values[i] {
        V::Num(x) => Some(x),
        _ => None,
    };
    Ok(match f {
        Func::Coalesce => values.into_iter().find(|v| *v != V::Null).unwrap_or(V::Null),
        Func::Least | Func::Greatest => {
            let mut best: Option<f64> = None;
            for v in &values {
                let V::Num(x) = v else { return Ok(V::Null) };
                best = Some(match best {
                    None => *x,
                    Some(b) if f == Func::Least => b.min(*x),
                    Some(b) => b.max(*x),
                });
            }
            best.map_or(V::Null, num)
        }
        Func::Lower | Func::Upper | Func::Length => match &values[0] {
            V::Text(s) => match f {
                Func::Lower => V::Text(Cow::Owned(s.to_lowercase())),
                Func::Upper => V::Text(Cow::Owned(s.to_uppercase())),
                _ => V::Num(s.chars().count() as f64),
            },
            _ => V::Null,
        },
        Func::DateDiff => {
            let (V::Text(unit), V::Text(a), V::Text(b)) = (&values[0], &values[1], &values[2]) else {
                return Ok(V::Null);
            };
            let per = seconds_per(unit).unwrap_or(f64::NAN);
            num((epoch_seconds(b)? - epoch_seconds(a)?) / per)
        }
        _ => {
            let Some(x) = n(0) else { return Ok(V::Null) };
            match f {
                Func::Abs => num(x.abs()),
                Func::Sqrt => num(x.sqrt()),
                Func::Exp => num(x.exp()),
                Func::Ln => num(x.ln()),
                Func::Log10 => num(x.log10()),
                Func::Floor => num(x.floor()),
                Func::Ceil => num(x.ceil()),
                _ => match n(1) {
                    Some(y) => num(x.powf(y)),
                    None => V::Null,
                },
            }
        }
    })
}

fn epoch_seconds(text: &str) -> std::result::Result<f64, String> {
    let t = super::datetime::parse(text).ok_or_else(|| format!("\"{text}\" is not a date (YYYY-MM-DD[THH:MM:SS])"))?;
    Ok(super::datetime::days_from_civil(t.year, t.month, t.day) as f64 * 86_400.0 + t.seconds)
}

/// Numbers by value, texts by their bytes, conditions false before true; `None` across kinds.
fn compare(a: &V<'_>, b: &V<'_>) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (V::Num(a), V::Num(b)) => a.partial_cmp(b),
        (V::Text(a), V::Text(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
        (V::Bool(a), V::Bool(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

/// SQL LIKE: `%` any run of characters, `_` one character, everything else itself.
fn like(text: &str, pattern: &str) -> bool {
    let t: Vec<char> = text.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    // Greedy matching with one backtrack point per `%`: linear in practice, no recursion.
    let (mut ti, mut pi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '_' || (p[pi] != '%' && p[pi] == t[ti])) {
            ti += 1;
            pi += 1;
        } else if pi < p.len() && p[pi] == '%' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '%')
}

/// Rows computed at once on each core; the order of the output never depends on the threads.
const CHUNK: usize = 16 * 1024;

impl Fitted {
    pub fn apply(&self, mut frame: Frame) -> Result<Frame> {
        let mut new = Vec::new();
        for f in &self.features {
            let mut columns = Vec::new();
            for (name, ty) in &f.inputs {
                let col = frame.column(name).ok_or_else(|| frame.missing_column(name))?;
                if col.data.column_type() != *ty {
                    return Err(Error::data(format!(
                        "column \"{name}\" is {} here but was {} when the feature \"{}\" was fitted",
                        col.data.column_type().name(),
                        ty.name(),
                        f.name
                    ))
                    .for_column(name));
                }
                columns.push(&col.data);
            }
            if frame.column(&f.name).is_some() {
                return Err(Error::data(format!("the new column \"{}\" already exists", f.name)));
            }
            let n = frame.n_rows();
            let chunks: Vec<std::result::Result<Vec<V<'_>>, (usize, String)>> = (0..n.div_ceil(CHUNK))
                .into_par_iter()
                .map(|c| {
                    (c * CHUNK..((c + 1) * CHUNK).min(n))
                        .map(|r| {
                            let row = Row {
                                names: &f.inputs,
                                columns: &columns,
                                index: r,
                            };
                            eval(&f.expr, &row).map_err(|m| (r, m))
                        })
                        .collect()
                })
                .collect();
            let mut values = Vec::with_capacity(n);
            for chunk in chunks {
                values.extend(chunk.map_err(|(r, m)| {
                    Error::data(format!(
                        "feature \"{}\": {m} (line {} of {})",
                        f.name,
                        frame.lines.get(r).copied().unwrap_or(0),
                        if frame.source.is_empty() {
                            "the data"
                        } else {
                            &frame.source
                        }
                    ))
                })?);
            }
            let data = match f.kind {
                Kind::Text => ColumnData::Categorical(
                    values
                        .into_iter()
                        .map(|v| match v {
                            V::Text(s) => Some(Arc::from(s.as_ref())),
                            _ => None,
                        })
                        .collect(),
                ),
                _ => ColumnData::Numeric(
                    values
                        .into_iter()
                        .map(|v| match v {
                            V::Num(x) => x,
                            V::Bool(b) => f64::from(u8::from(b)),
                            _ => f64::NAN,
                        })
                        .collect(),
                ),
            };
            new.push(Column {
                name: f.name.clone(),
                data,
            });
        }
        frame.columns.extend(new);
        frame.columns.retain(|c| !self.drop.contains(&c.name));
        Ok(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{ReadOptions, read_csv};

    fn frame() -> Frame {
        let opts = ReadOptions::default();
        read_csv(
            b"a,b,town,day\n1,2,North Ames,2024-01-01\n3,0,Edwards,2024-03-01\n,5,,\n",
            &opts,
            "t.csv",
        )
        .unwrap()
    }

    fn params(features: &[&str]) -> Params {
        Params {
            features: features.iter().map(|s| (*s).to_string()).collect(),
            drop: Vec::new(),
            locations: Vec::new(),
        }
    }

    fn numbers(f: &Frame, name: &str) -> Vec<String> {
        f.numeric(name).unwrap().iter().map(|x| format!("{x}")).collect()
    }

    #[test]
    fn rows_are_computed_with_sqls_missing_value_rules() {
        let p = params(&[
            "a / b AS ratio",
            "CASE WHEN a > 1 THEN 'big' WHEN a IS NULL THEN 'none' ELSE 'small' END AS size",
            "a > 1 AS big",
            "town LIKE 'North%' OR a = 3 AS north_or_three",
            "COALESCE(a, b * 10) AS filled",
            "DATE_DIFF('day', '2024-01-01', day) AS days",
            "LEAST(a, b) + LENGTH(UPPER(town)) AS mixed",
        ]);
        let f = fit(&p, &frame()).unwrap().apply(frame()).unwrap();
        // 3 / 0 is not a finite number: missing, as is anything computed from a missing value.
        assert_eq!(numbers(&f, "ratio"), ["0.5", "NaN", "NaN"]);
        let size: Vec<Option<&str>> = match &f.column("size").unwrap().data {
            ColumnData::Categorical(v) => v.iter().collect(),
            ColumnData::Numeric(_) => panic!("size is text"),
        };
        assert_eq!(size, [Some("small"), Some("big"), Some("none")]);
        assert_eq!(numbers(&f, "big"), ["0", "1", "NaN"]);
        // Unknown OR true is true; unknown OR false is unknown.
        assert_eq!(numbers(&f, "north_or_three"), ["1", "1", "NaN"]);
        assert_eq!(numbers(&f, "filled"), ["1", "3", "50"]);
        assert_eq!(numbers(&f, "days"), ["0", "60", "NaN"]);
        assert_eq!(numbers(&f, "mixed"), ["11", "7", "NaN"]);
        // `drop` removes read columns once the features are made.
        let mut p = params(&["town LIKE 'North%' AS north"]);
        p.drop = vec!["town".into()];
        let f = fit(&p, &frame()).unwrap().apply(frame()).unwrap();
        assert!(f.column("town").is_none());
        assert_eq!(numbers(&f, "north"), ["1", "0", "NaN"]);
    }

    #[test]
    fn types_are_checked_against_the_train_columns() {
        let err = |features: &[&str]| fit(&params(features), &frame()).unwrap_err().to_string();
        assert!(err(&["town + 1 AS x"]).contains("'+' takes a number, but \"town\" is text (join texts with ||)"));
        assert!(err(&["a = 'x' AS x"]).contains("compares \"a\" (a number) with 'x' (text)"));
        assert!(err(&["a AS b"]).contains("the new column \"b\" already exists"));
        assert!(err(&["NULL AS x"]).contains("always NULL"));
        assert!(err(&["a = NULL AS x"]).contains("write IS NULL"));
        assert!(err(&["GREATEST(a > 1, b > 1) AS x"]).contains("GREATEST takes numbers"));
        assert!(err(&["DATE_DIFF('fortnight', day, day) AS x"]).contains("'day'"));
        assert!(err(&["DATE_DIFF('day', town, day) AS x"]).contains("\"North Ames\" is not a date"));
        assert!(err(&["nope * 2 AS x"]).contains("\"nope\""));
        // Applying to data whose column changed type is refused.
        let fitted = fit(&params(&["a * 2 AS twice"]), &frame()).unwrap();
        let mut other = frame();
        other.columns[0].data = ColumnData::Categorical(crate::frame::Texts::from_values([None::<&str>; 3]));
        assert!(fitted.apply(other).unwrap_err().to_string().contains("was numeric"));
    }

    #[test]
    fn like_matches_sqls_wildcards() {
        for (text, pattern, want) in [
            ("North Ames", "North%", true),
            ("North Ames", "%Ames", true),
            ("North Ames", "N_rth%s", true),
            ("North", "North_", false),
            ("", "%", true),
            ("abcabc", "%abc", true),
            ("abcab", "%abc", false),
        ] {
            assert_eq!(like(text, pattern), want, "{text} LIKE {pattern}");
        }
    }
}
