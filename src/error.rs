//! One error type for the library: what went wrong, where (<file:line:col>, stage, column), and what to do.

use std::fmt;
use std::path::PathBuf;

/// A place in a pipeline file, kept so that late errors (found while fitting) still point at the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
    /// The whole source line, shown with a caret under the offending text.
    pub line_text: String,
    /// Width of the offending text, in characters (at least 1).
    pub width: usize,
}

impl Location {
    /// Turns a byte span of `source` into a line/column location.
    pub fn from_span(file: &std::path::Path, source: &str, span: std::ops::Range<usize>) -> Self {
        let start = span.start.min(source.len());
        let before = &source[..start];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line_end = source[start..].find('\n').map_or(source.len(), |i| start + i);
        let col = source[line_start..start].chars().count() + 1;
        let end = span.end.clamp(start, line_end);
        let width = source[start..end].chars().count().max(1);
        Location {
            file: file.to_path_buf(),
            line,
            col,
            line_text: source[line_start..line_end].trim_end_matches('\r').to_string(),
            width,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)
    }
}

/// How the CLI should treat an error: it decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad pipeline, bad data, bad argument: the user can fix it (exit 1).
    User,
    /// A re-execution produced different bytes (exit 3).
    Mismatch,
    /// A bug or an environment failure we did not foresee (exit 101).
    Internal,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An error in a pipeline file, with its position.
    #[error("{message}{}", StageSuffix(stage.as_deref()))]
    Spec {
        message: String,
        location: Option<Box<Location>>,
        hint: Option<String>,
        /// The stage it happened in, once known ([`Error::in_stage`]); shown after the message.
        /// (Boxed to keep `Error` small: results carry it by value.)
        stage: Option<Box<str>>,
    },

    /// Bad data: a missing column, text where a number was needed, an unseen category.
    #[error("{message}{}", StageSuffix(stage.as_deref()))]
    Data {
        message: String,
        location: Option<Box<Location>>,
        hint: Option<String>,
        /// The data column at fault, when there is one (REST error bodies name it as `field`).
        column: Option<String>,
        /// The stage it happened in, once known ([`Error::in_stage`]); shown after the message.
        /// (Boxed to keep `Error` small: results carry it by value.)
        stage: Option<Box<str>>,
    },

    /// Reading or writing a file failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    /// A store object whose bytes no longer hash to its id.
    #[error("store object {id} is corrupt: its bytes hash to {actual} ({})", path.display())]
    Corrupt { id: String, actual: String, path: PathBuf },

    /// A hash (or prefix) that names nothing, or more than one thing.
    #[error("{message}")]
    Lookup { message: String, hint: Option<String> },

    /// A reproduction that did not give the recorded bytes.
    #[error("{message}")]
    Mismatch { message: String },

    #[error("{message}")]
    Internal { message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// ` (stage NAME)` after a message, or nothing while the stage is unknown.
struct StageSuffix<'a>(Option<&'a str>);

impl fmt::Display for StageSuffix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(stage) => write!(f, " (stage {stage})"),
            None => Ok(()),
        }
    }
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Mismatch { .. } => ErrorKind::Mismatch,
            Error::Internal { .. } => ErrorKind::Internal,
            _ => ErrorKind::User,
        }
    }

    pub fn location(&self) -> Option<&Location> {
        match self {
            Error::Spec { location, .. } | Error::Data { location, .. } => location.as_deref(),
            _ => None,
        }
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Spec { hint, .. } | Error::Data { hint, .. } | Error::Lookup { hint, .. } => hint.clone(),
            Error::Corrupt { .. } => Some(
                "run `mlpipe verify` to list every damaged object; `mlpipe run` recomputes stage outputs, \
                 and `mlpipe reproduce` restores a run's objects from its snapshot"
                    .into(),
            ),
            Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => Some(
                "check the path (in a pipeline file, a relative path starts at the pipeline file's folder; \
                     on the command line, at the current folder)"
                    .into(),
            ),
            _ => None,
        }
    }

    pub fn spec(message: impl Into<String>, location: Option<Location>) -> Self {
        Error::Spec {
            message: message.into(),
            location: location.map(Box::new),
            hint: None,
            stage: None,
        }
    }

    pub fn data(message: impl Into<String>) -> Self {
        Error::Data {
            message: message.into(),
            location: None,
            hint: None,
            column: None,
            stage: None,
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Error::Internal {
            message: message.into(),
        }
    }

    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        let path = path.into();
        // A user may give a URL where a path belongs (`--input postgres://u:pw@…`): never echo a password.
        let path = match path.to_str() {
            Some(text) if text.contains("://") => PathBuf::from(crate::dburl::mask_passwords(text)),
            _ => path,
        };
        Error::Io { action, path, source }
    }

    /// Adds a hint to errors that carry one.
    #[must_use]
    pub fn with_hint(mut self, text: impl Into<String>) -> Self {
        match &mut self {
            Error::Spec { hint, .. } | Error::Data { hint, .. } | Error::Lookup { hint, .. } => {
                *hint = Some(text.into());
            }
            _ => {}
        }
        self
    }

    /// Names the data column a data error is about.
    #[must_use]
    pub fn for_column(mut self, name: &str) -> Self {
        if let Error::Data { column, .. } = &mut self {
            *column = Some(name.to_string());
        }
        self
    }

    pub fn column(&self) -> Option<&str> {
        match self {
            Error::Data { column, .. } => column.as_deref(),
            _ => None,
        }
    }

    /// The stage a spec or data error happened in, once [`Error::in_stage`] has named it.
    pub fn stage(&self) -> Option<&str> {
        match self {
            Error::Spec { stage, .. } | Error::Data { stage, .. } => stage.as_deref(),
            _ => None,
        }
    }

    /// Attaches a pipeline location to a data error that has none yet (e.g. an unknown column found at fit time).
    #[must_use]
    pub fn at(mut self, loc: Option<&Location>) -> Self {
        if let (Error::Data { location, .. } | Error::Spec { location, .. }, Some(l)) = (&mut self, loc)
            && location.is_none()
        {
            *location = Some(Box::new(l.clone()));
        }
        self
    }

    /// Prefixes a spec or data error's message with what was being done ("base estimator \"gbr\"").
    #[must_use]
    pub fn with_context(mut self, what: impl std::fmt::Display) -> Self {
        if let Error::Spec { message, .. } | Error::Data { message, .. } = &mut self {
            *message = format!("{what}: {message}");
        }
        self
    }

    /// Names the stage a spec or data error happened in (shown after the message as ` (stage NAME)`).
    /// The innermost stage wins: an error that already names one keeps it.
    #[must_use]
    pub fn in_stage(mut self, name: &str) -> Self {
        if let Error::Spec { stage, .. } | Error::Data { stage, .. } = &mut self
            && stage.is_none()
        {
            *stage = Some(name.into());
        }
        self
    }
}

/// Suggests the closest known name for a misspelt one.
pub fn did_you_mean<'a>(wanted: &str, known: impl IntoIterator<Item = &'a str>) -> Option<String> {
    known
        .into_iter()
        .map(|k| {
            (
                strsim::damerau_levenshtein(&wanted.to_lowercase(), &k.to_lowercase()),
                k,
            )
        })
        .filter(|(d, k)| *d <= (k.len().max(wanted.len()) / 3).max(1))
        .min_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)))
        .map(|(_, k)| format!("did you mean \"{k}\"?"))
}

/// Masks, in a line of a pipeline file shown under an error, every URL as [`crate::dburl::redact_url`] does, and moves
/// the caret (`col`, `width`, in characters) to stay under the same text.
pub fn redact_location(loc: &mut Location) {
    let line = &loc.line_text;
    let mut edits: Vec<(std::ops::Range<usize>, String)> = Vec::new();
    let mut from = 0;
    while let Some(i) = line[from..].find("://").map(|i| from + i) {
        // The scheme runs back from "://" over letters, digits, '+', '-', '.'.
        let start = line[..i]
            .char_indices()
            .rev()
            .take_while(|(_, c)| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
            .last()
            .map_or(i, |(j, _)| j);
        // The URL ends where its TOML string does (the quote that opened it, unescaped) or at a blank.
        let quote = line[..start].chars().next_back().filter(|c| matches!(c, '"' | '\''));
        let mut end = line.len();
        let mut escaped = false;
        for (j, c) in line[i + 3..].char_indices() {
            let at_end = match quote {
                Some(q) => c == q && !(escaped && q == '"'),
                None => c.is_whitespace() || c == ',' || c == ']' || c == '}',
            };
            if at_end {
                end = i + 3 + j;
                break;
            }
            escaped = c == '\\' && !escaped;
        }
        let token = &line[start..end];
        let shown = crate::dburl::redact_url(token);
        // Text glued to the closing quote (`"postgres://u:p"rest@host/db"`: a quote inside the password)
        // may be the rest of the secret: the line is not valid TOML, and is masked to its end.
        let after = line.get(end + 1..).unwrap_or("");
        let glued = quote.is_some()
            && end < line.len()
            && after.starts_with(|c: char| !c.is_whitespace() && !matches!(c, ',' | ']' | '}' | '#' | ';'));
        if start < i && glued {
            edits.push((start..line.len(), crate::dburl::unshown(token)));
            break;
        }
        if start < i && shown != token {
            edits.push((start..end, shown));
        }
        from = end.max(i + 3);
    }
    // A libpq key/value string (`host=db password=secret`) is no URL: its password value goes.
    let lower = line.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find("password").map(|i| from + i) {
        let after = i + "password".len();
        let rest = &line[after..];
        let Some(eq) = rest.trim_start().strip_prefix('=') else {
            from = after;
            continue;
        };
        let value_start = line.len() - eq.trim_start().len();
        // A quoted libpq value may hold blanks: masked to the line's end; else up to a blank or quote.
        let value_end = if eq.trim_start().starts_with('\'') {
            line.len()
        } else {
            line[value_start..]
                .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\''))
                .map_or(line.len(), |j| value_start + j)
        };
        let range = value_start..value_end;
        if value_end > value_start && !edits.iter().any(|(r, _)| r.start < range.end && range.start < r.end) {
            edits.push((range, "***".to_string()));
        }
        from = value_end.max(after);
    }
    if edits.is_empty() {
        return;
    }
    edits.sort_by_key(|(r, _)| r.start);
    let char_at = |byte: usize| line[..byte].chars().count();
    let caret_start = loc.col.saturating_sub(1);
    let caret_end = caret_start + loc.width;
    let moved = |pos: usize, is_end: bool| {
        let mut shift: isize = 0;
        for (range, shown) in &edits {
            let (a, b) = (char_at(range.start), char_at(range.end));
            let r = shown.chars().count();
            if pos >= b {
                shift += isize::try_from(r).unwrap_or(0) - isize::try_from(b - a).unwrap_or(0);
            } else if pos > a {
                return (a + if is_end { r } else { 0 }).saturating_add_signed(shift);
            }
        }
        pos.saturating_add_signed(shift)
    };
    let (new_start, new_end) = (moved(caret_start, false), moved(caret_end, true));
    let mut text = String::with_capacity(line.len());
    let mut last = 0;
    for (range, shown) in &edits {
        text.push_str(&line[last..range.start]);
        text.push_str(shown);
        last = range.end;
    }
    text.push_str(&line[last..]);
    loc.line_text = text;
    loc.col = new_start + 1;
    loc.width = new_end.saturating_sub(new_start).max(1);
}

impl From<crate::dburl::UrlError> for Error {
    fn from(e: crate::dburl::UrlError) -> Error {
        let hint = e.hint();
        let error = Error::data(e.message());
        match hint {
            Some(h) => error.with_hint(h),
            None => error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stage_is_a_field_shown_once_after_the_message_whatever_the_message_says() {
        let e = Error::data("column \"a\" holds \"b (stage c)\"").for_column("a");
        assert_eq!(e.stage(), None);
        let e = e.in_stage("encode.ordinal").in_stage("train");
        assert_eq!((e.stage(), e.column()), (Some("encode.ordinal"), Some("a")));
        assert_eq!(
            e.to_string(),
            "column \"a\" holds \"b (stage c)\" (stage encode.ordinal)"
        );
        // Context added later still goes before the message, the stage after it.
        let e = Error::spec("bad", None)
            .in_stage("train")
            .with_context("base estimator \"gbr\"");
        assert_eq!(e.to_string(), "base estimator \"gbr\": bad (stage train)");
        assert_eq!(Error::internal("x").in_stage("train").stage(), None);
    }

    #[test]
    fn a_pipeline_line_under_an_error_shows_no_password_and_keeps_its_caret() {
        let mut loc = Location {
            file: "p.toml".into(),
            line: 2,
            col: 10,
            line_text: r#"source = "postgres://etl:S3c%2Fret@h:5432/db" # the warehouse"#.into(),
            width: 36,
        };
        redact_location(&mut loc);
        assert_eq!(
            loc.line_text,
            r#"source = "postgres://etl:***@h:5432/db" # the warehouse"#
        );
        assert_eq!((loc.col, loc.width), (10, 30));
        let mut loc = Location {
            file: "p.toml".into(),
            line: 2,
            col: 1,
            line_text: r#"source = 'postgres://etl:S3c/ret?x@h/db' ; table = "t""#.into(),
            width: 6,
        };
        redact_location(&mut loc);
        assert_eq!(
            loc.line_text,
            r#"source = 'postgres://(not shown: the URL does not parse)' ; table = "t""#
        );
        assert_eq!((loc.col, loc.width), (1, 6));
        // A caret after the URL moves with the text; one inside it spans what replaced it.
        let line = r#"x = ["postgres://a:S3cret@h/db", "mysql://u:S3cret@h"] oops"#;
        for (col, under) in [(56, "oops"), (45, "mysql://(not shown: the URL does not parse)")] {
            let mut loc = Location {
                file: "p.toml".into(),
                line: 1,
                col,
                line_text: line.into(),
                width: 4,
            };
            redact_location(&mut loc);
            assert_eq!(
                loc.line_text,
                r#"x = ["postgres://a:***@h/db", "mysql://(not shown: the URL does not parse)"] oops"#
            );
            assert_eq!(&loc.line_text[loc.col - 1..loc.col - 1 + loc.width], under);
        }
        let mut plain = Location {
            file: "p.toml".into(),
            line: 1,
            col: 3,
            line_text: r#"source = "sqlite://data/h.db""#.into(),
            width: 2,
        };
        let before = plain.clone();
        redact_location(&mut plain);
        assert_eq!(plain, before);
    }

    #[test]
    fn a_key_value_connection_strings_password_is_masked_in_the_excerpt() {
        for (text, shown) in [
            (
                r#"source = "host=db password=SeKrEt user=bob""#,
                r#"source = "host=db password=*** user=bob""#,
            ),
            (
                r#"source = "host=db PASSWORD = SeKrEt""#,
                r#"source = "host=db PASSWORD = ***""#,
            ),
            (
                r#"source = "host=db password='Se Kr Et' user=bob""#,
                r#"source = "host=db password=***"#,
            ),
        ] {
            let mut loc = Location {
                file: "p.toml".into(),
                line: 7,
                col: 10,
                line_text: text.into(),
                width: text.len() - 9,
            };
            redact_location(&mut loc);
            assert_eq!(loc.line_text, shown);
            assert!(!loc.line_text.contains("SeKrEt") && !loc.line_text.contains("Kr"));
        }
    }
}
