//! A strict reader over TOML tables that keeps every span, so each error points at `file:line:col`.
//!
//! Every key a table has must be read by the schema; `finish` reports the ones nobody asked for.

use std::collections::BTreeSet;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::error::{Error, Location, Result, did_you_mean};

/// The file being read: its path (as given) and text.
pub struct Source<'s> {
    pub path: PathBuf,
    pub text: &'s str,
}

impl Source<'_> {
    /// The place of `span`, its line shown with any URL's password masked (an error can sit on the line
    /// of `source = "postgres://…"`).
    pub fn location(&self, span: Range<usize>) -> Location {
        let mut location = Location::from_span(&self.path, self.text, span);
        crate::error::redact_location(&mut location);
        location
    }

    pub fn error(&self, span: Range<usize>, message: impl Into<String>) -> Error {
        Error::spec(message, Some(self.location(span)))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// A value with the place it came from.
#[derive(Debug, Clone)]
pub struct At<T> {
    pub value: T,
    pub location: Location,
}

pub struct TableReader<'a, 's> {
    src: &'a Source<'s>,
    table: &'a DeTable<'s>,
    span: Range<usize>,
    /// How the table is named in messages: "[train]", "[[impute]] #2".
    pub name: String,
    used: BTreeSet<String>,
}

fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

impl<'a, 's> TableReader<'a, 's> {
    pub fn new(src: &'a Source<'s>, table: &'a DeTable<'s>, span: Range<usize>, name: impl Into<String>) -> Self {
        TableReader {
            src,
            table,
            span,
            name: name.into(),
            used: BTreeSet::new(),
        }
    }

    pub fn source(&self) -> &'a Source<'s> {
        self.src
    }

    /// The location of the table header (or of its first line).
    pub fn location(&self) -> Location {
        self.src.location(self.span.clone())
    }

    /// The table's name for messages.
    fn label(&self) -> &str {
        if self.name.is_empty() {
            "the pipeline file"
        } else {
            &self.name
        }
    }

    pub fn has(&self, key: &str) -> bool {
        self.table.contains_key(key)
    }

    /// The kind of value under `key` ("a string", "an integer", …), for keys that take several.
    pub fn kind(&self, key: &str) -> Option<&'static str> {
        self.table.get(key).map(|v| type_name(v.get_ref()))
    }

    fn get(&mut self, key: &str) -> Option<&'a Spanned<DeValue<'s>>> {
        self.used.insert(key.to_string());
        self.table.get(key)
    }

    fn wrong_type(&self, key: &str, v: &Spanned<DeValue<'_>>, expected: &str) -> Error {
        self.src.error(
            v.span(),
            format!(
                "`{key}` in {} must be {expected}, found {}",
                self.label(),
                type_name(v.get_ref())
            ),
        )
    }

    pub fn missing(&self, key: &str, what: &str) -> Error {
        self.src
            .error(self.span.clone(), format!("{} needs `{key}` ({what})", self.label()))
            .with_hint(format!("add `{key} = …` to {}", self.label()))
    }

    pub fn str(&mut self, key: &str) -> Result<Option<At<String>>> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        match v.get_ref() {
            DeValue::String(s) => Ok(Some(At {
                value: s.to_string(),
                location: self.src.location(v.span()),
            })),
            _ => Err(self.wrong_type(key, v, "a string")),
        }
    }

    pub fn req_str(&mut self, key: &str, what: &str) -> Result<At<String>> {
        self.str(key)?.ok_or_else(|| self.missing(key, what))
    }

    /// A string that must be one of `choices`.
    pub fn choice(&mut self, key: &str, choices: &[&str]) -> Result<Option<At<String>>> {
        let Some(v) = self.str(key)? else {
            return Ok(None);
        };
        if choices.contains(&v.value.as_str()) {
            return Ok(Some(v));
        }
        let mut err = Error::spec(
            format!(
                "`{key}` in {} must be one of {}, found \"{}\"",
                self.label(),
                quoted(choices),
                v.value
            ),
            Some(v.location.clone()),
        );
        if let Some(h) = did_you_mean(&v.value, choices.iter().copied()) {
            err = err.with_hint(h);
        }
        Err(err)
    }

    pub fn f64(&mut self, key: &str) -> Result<Option<At<f64>>> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        let value = match v.get_ref() {
            DeValue::Float(f) => f.as_str().replace('_', "").parse::<f64>().ok(),
            DeValue::Integer(i) => i64::from_str_radix(&i.as_str().replace('_', ""), i.radix())
                .ok()
                .map(|x| x as f64),
            _ => return Err(self.wrong_type(key, v, "a number")),
        };
        match value {
            Some(x) if x.is_finite() => Ok(Some(At {
                value: x,
                location: self.src.location(v.span()),
            })),
            _ => Err(self
                .src
                .error(v.span(), format!("`{key}` in {} must be a finite number", self.label()))),
        }
    }

    pub fn u64(&mut self, key: &str) -> Result<Option<At<u64>>> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        let DeValue::Integer(i) = v.get_ref() else {
            return Err(self.wrong_type(key, v, "a non-negative integer"));
        };
        match u64::from_str_radix(&i.as_str().replace('_', ""), i.radix()) {
            Ok(x) => Ok(Some(At {
                value: x,
                location: self.src.location(v.span()),
            })),
            Err(_) => Err(self.src.error(
                v.span(),
                format!("`{key}` in {} must be a non-negative integer", self.label()),
            )),
        }
    }

    pub fn bool(&mut self, key: &str) -> Result<Option<bool>> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        match v.get_ref() {
            DeValue::Boolean(b) => Ok(Some(*b)),
            _ => Err(self.wrong_type(key, v, "true or false")),
        }
    }

    /// An array of strings.
    pub fn str_list(&mut self, key: &str) -> Result<Option<Vec<At<String>>>> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        let DeValue::Array(items) = v.get_ref() else {
            return Err(self.wrong_type(key, v, "an array of strings"));
        };
        items
            .iter()
            .map(|item| match item.get_ref() {
                DeValue::String(s) => Ok(At {
                    value: s.to_string(),
                    location: self.src.location(item.span()),
                }),
                other => Err(self.src.error(
                    item.span(),
                    format!(
                        "`{key}` in {} must hold strings, found {}",
                        self.label(),
                        type_name(other)
                    ),
                )),
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    /// A raw value, for keys whose type depends on others (e.g. `fill_value`).
    pub fn raw(&mut self, key: &str) -> Option<&'a Spanned<DeValue<'s>>> {
        self.get(key)
    }

    pub fn table(&mut self, key: &str) -> Result<Option<TableReader<'a, 's>>> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        match v.get_ref() {
            DeValue::Table(t) => {
                let name = if self.name.is_empty() {
                    format!("[{key}]")
                } else {
                    format!("{}.{key}", self.name)
                };
                Ok(Some(TableReader::new(self.src, t, v.span(), name)))
            }
            _ => Err(self.wrong_type(key, v, "a table")),
        }
    }

    /// An array of tables (`[[impute]]`), each with its own reader.
    pub fn table_list(&mut self, key: &str) -> Result<Vec<TableReader<'a, 's>>> {
        let Some(v) = self.get(key) else {
            return Ok(Vec::new());
        };
        let DeValue::Array(items) = v.get_ref() else {
            return Err(self.wrong_type(key, v, "an array of tables ([[…]])"));
        };
        items
            .iter()
            .enumerate()
            .map(|(i, item)| match item.get_ref() {
                DeValue::Table(t) => Ok(TableReader::new(
                    self.src,
                    t,
                    item.span(),
                    format!("[[{key}]] #{}", i + 1),
                )),
                other => Err(self.src.error(
                    item.span(),
                    format!("`{key}` must hold tables, found {}", type_name(other)),
                )),
            })
            .collect()
    }

    /// A copy of this table with some keys set to other values (a grid search's candidates). The
    /// values keep their own spans, so an error in one points at it.
    pub fn with_values(&self, values: &[(&str, &'a Spanned<DeValue<'s>>)]) -> DeTable<'s> {
        let mut table = self.table.clone();
        for (key, value) in values {
            let existing = table.keys().find(|k| k.get_ref().as_ref() == *key).cloned();
            let key =
                existing.unwrap_or_else(|| Spanned::new(value.span(), std::borrow::Cow::Owned((*key).to_string())));
            table.insert(key, (*value).clone());
        }
        table
    }

    /// A reader of another table under this one's name and place (see `with_values`).
    pub fn over<'b>(&self, table: &'b DeTable<'s>) -> TableReader<'b, 's>
    where
        'a: 'b,
    {
        TableReader::new(self.src, table, self.span.clone(), self.name.clone())
    }

    /// The keys of this table with their locations, for free-form maps (`dtypes`).
    pub fn entries(&mut self) -> Vec<(At<String>, &'a Spanned<DeValue<'s>>)> {
        self.table
            .iter()
            .map(|(k, v)| {
                self.used.insert(k.get_ref().to_string());
                (
                    At {
                        value: k.get_ref().to_string(),
                        location: self.src.location(k.span()),
                    },
                    v,
                )
            })
            .collect()
    }

    /// Fails on the first key that the schema did not read.
    pub fn finish(&self, known: &[&str]) -> Result<()> {
        for (k, _) in self.table {
            let key = k.get_ref().as_ref();
            if !self.used.contains(key) {
                let mut err = self.src.error(
                    k.span(),
                    format!(
                        "unknown key `{key}` in {} (expected one of: {})",
                        self.label(),
                        known.join(", ")
                    ),
                );
                if let Some(h) = did_you_mean(key, known.iter().copied()) {
                    err = err.with_hint(h);
                }
                return Err(err);
            }
        }
        Ok(())
    }
}

pub fn quoted(choices: &[&str]) -> String {
    choices
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses TOML text, turning syntax errors into located spec errors.
pub fn parse_document<'s>(src: &Source<'s>) -> Result<Spanned<DeTable<'s>>> {
    DeTable::parse(src.text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let message = e.message().trim().to_string();
        src.error(span, format!("{} is not valid TOML: {message}", src.path.display()))
    })
}
