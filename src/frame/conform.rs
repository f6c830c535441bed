//! New rows made to fit a fitted pipeline's schema (predict input), and numbers written back as JSON.

use super::csv_read::parse_number;
use super::{Column, ColumnData, ColumnType, FastMap, Frame};
use crate::error::{Error, Result};

/// Makes `frame` fit a training schema: every schema column must be present; a numeric column that
/// arrived as text (because one value is not a number) is reported with the line and value.
pub fn conform_to_schema(frame: Frame, schema: &[(String, ColumnType)], optional: &[&str]) -> Result<Frame> {
    let mut out = Vec::with_capacity(schema.len());
    let Frame {
        columns,
        lines,
        source,
        first_row,
    } = frame;
    // Take columns out by name through an index (a record has ~100 columns; a search per column shows).
    let (names, mut slots): (Vec<String>, Vec<Option<ColumnData>>) =
        columns.into_iter().map(|c| (c.name, Some(c.data))).unzip();
    let mut index: FastMap<&str, usize> = FastMap::default();
    for (i, n) in names.iter().enumerate() {
        // The first of two equally named columns wins, as a search would find it.
        index.entry(n.as_str()).or_insert(i);
    }
    for (name, ty) in schema {
        let Some(data) = index.get(name.as_str()).and_then(|&i| slots[i].take()) else {
            if optional.contains(&name.as_str()) {
                continue;
            }
            let known: Vec<&str> = names
                .iter()
                .zip(&slots)
                .filter(|(_, s)| s.is_some())
                .map(|(n, _)| n.as_str())
                .collect();
            let mut err = Error::data(format!(
                "column \"{name}\" is missing from {source}; the fitted pipeline needs it"
            ));
            if let Some(h) = crate::error::did_you_mean(name, known) {
                err = err.with_hint(h);
            }
            return Err(err.for_column(name));
        };
        let data = match (data, ty) {
            (ColumnData::Categorical(v), ColumnType::Numeric) => {
                let mut values = Vec::with_capacity(v.len());
                for (r, x) in v.iter().enumerate() {
                    match x {
                        None => values.push(f64::NAN),
                        Some(s) => match parse_number(s.as_bytes()) {
                            Some(n) => values.push(n),
                            None => {
                                return Err(Error::data(format!(
                                    "column \"{name}\" must be numeric, but line {} of {source} holds \"{s}\"",
                                    lines[r]
                                ))
                                .with_hint("fix the value, or mark it missing with one of the pipeline's na_values")
                                .for_column(name));
                            }
                        },
                    }
                }
                ColumnData::Numeric(values.into())
            }
            (ColumnData::Numeric(v), ColumnType::Categorical) => {
                return Err(Error::internal(format!(
                    "column \"{name}\" was read as numeric ({} rows) although the schema forces categorical",
                    v.len()
                )));
            }
            (data, _) => data,
        };
        out.push(Column {
            name: name.clone(),
            data,
        });
    }
    Ok(Frame {
        columns: out,
        lines,
        source,
        first_row,
    })
}

/// A number as JSON: integral values that fit exactly are written as integers ("1461", not "1461.0").
pub fn json_number(x: f64) -> serde_json::Value {
    #[allow(clippy::cast_possible_truncation)]
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        serde_json::Value::from(x as i64)
    } else {
        serde_json::Number::from_f64(x).map_or(serde_json::Value::Null, serde_json::Value::Number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::read_csv;
    use crate::frame::tests::opts;

    #[test]
    fn conform_reports_text_in_numeric_column() {
        let f = read_csv(b"a\n1\nfoo\n", &opts(&[]), "new.csv").unwrap();
        let err = conform_to_schema(f, &[("a".into(), ColumnType::Numeric)], &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "column \"a\" must be numeric, but line 3 of new.csv holds \"foo\""
        );
    }
}
