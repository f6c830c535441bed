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
    #[error("{message}")]
    Spec {
        message: String,
        location: Option<Box<Location>>,
        hint: Option<String>,
    },

    /// Bad data: a missing column, text where a number was needed, an unseen category.
    #[error("{message}")]
    Data {
        message: String,
        location: Option<Box<Location>>,
        hint: Option<String>,
        /// The data column at fault, when there is one (REST error bodies name it as `field`).
        column: Option<String>,
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
            Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                Some("check the path (relative paths in a pipeline are relative to the pipeline file)".into())
            }
            _ => None,
        }
    }

    pub fn spec(message: impl Into<String>, location: Option<Location>) -> Self {
        Error::Spec {
            message: message.into(),
            location: location.map(Box::new),
            hint: None,
        }
    }

    pub fn data(message: impl Into<String>) -> Self {
        Error::Data {
            message: message.into(),
            location: None,
            hint: None,
            column: None,
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
            Some(text) if text.contains("://") => PathBuf::from(crate::database::mask_passwords(text)),
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

    /// Prefixes the message with the stage it happened in.
    #[must_use]
    pub fn in_stage(mut self, stage: &str) -> Self {
        match &mut self {
            Error::Spec { message, .. } | Error::Data { message, .. } if !message.contains(" (stage ") => {
                *message = format!("{message} (stage {stage})");
            }
            _ => {}
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
