//! `mlpipe show HASH`: any object — run, prediction, stage output, pipeline, snapshot — for people
//! and as JSON.

use std::path::PathBuf;

use serde::Serialize;
use serde_json::Value;

use crate::digest::Id;
use crate::error::Result;
use crate::store::{LocalStore, Resolved, Store};

pub struct ShowArgs {
    pub hash: String,
    pub store: PathBuf,
}

#[derive(Debug, Serialize)]
pub struct ShowReport {
    pub id: Id,
    /// "run", "prediction", "stage-output", "pipeline", "data".
    pub kind: String,
    pub size: usize,
    /// The object's JSON, or for data a preview of its first lines.
    pub content: Value,
}

pub fn run(args: &ShowArgs) -> Result<ShowReport> {
    let store = LocalStore::open(&args.store)?;
    let (id, record) = match store.resolve(&args.hash)? {
        Resolved::Run(run) => {
            let r = super::load_run(&store, &run)?;
            (run, Some(serde_json::to_value(r).unwrap_or(Value::Null)))
        }
        Resolved::Prediction(p) => {
            let r = super::load_prediction(&store, &p)?;
            (p, Some(serde_json::to_value(r).unwrap_or(Value::Null)))
        }
        Resolved::Object(o) => (o, None),
    };
    if let Some(mut content) = record {
        let kind = content
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("record")
            .to_string();
        redact_source(&kind, &mut content);
        return Ok(ShowReport {
            id,
            kind,
            size: 0,
            content,
        });
    }
    let bytes = store.get(&id)?;
    let parsed: Option<Value> = serde_json::from_slice(&bytes).ok();
    let (kind, mut content) = match parsed {
        Some(v) if v.get("kind").is_some() => (v["kind"].as_str().unwrap_or("object").to_string(), v),
        Some(v) if v.get("steps").is_some() && v.get("gather").is_some() => ("pipeline".to_string(), v),
        _ => {
            let text = String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]);
            let preview: Vec<Value> = text.lines().take(6).map(|l| Value::String(l.to_string())).collect();
            ("data".to_string(), Value::Array(preview))
        }
    };
    redact_source(&kind, &mut content);
    Ok(ShowReport {
        id,
        kind,
        size: bytes.len(),
        content,
    })
}

/// The data source a record or pipeline names, as it may be shown ([`crate::database::redact_url`]): what
/// mlpipe stores has no password, and one that a store written by an older mlpipe holds is masked here.
fn redact_source(kind: &str, content: &mut Value) {
    let field = match kind {
        "run" | "source-snapshot" => content.get_mut("source"),
        "pipeline" => content.get_mut("gather").and_then(|g| g.get_mut("source")),
        _ => None,
    };
    if let Some(Value::String(source)) = field {
        *source = crate::database::redact_url(source);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_an_older_store_holds_is_not_shown() {
        let mut run = serde_json::json!({"kind": "run", "source": "postgres://etl:S3c/ret?x@127.0.0.1:5432/db"});
        redact_source("run", &mut run);
        assert_eq!(run["source"], "postgres://(not shown: the URL does not parse)");
        let mut pipeline = serde_json::json!({"gather": {"source": "postgres://etl:S3cret@h/db"}, "steps": []});
        redact_source("pipeline", &mut pipeline);
        assert_eq!(pipeline["gather"]["source"], "postgres://etl:***@h/db");
        let mut record = serde_json::json!({"kind": "source-snapshot", "source": "postgres://h/db?password=S3cret"});
        redact_source("source-snapshot", &mut record);
        assert_eq!(record["source"], "postgres://h/db?password=***");
        let mut file = serde_json::json!({"kind": "run", "source": "/data/train.csv"});
        redact_source("run", &mut file);
        assert_eq!(file["source"], "/data/train.csv");
    }
}
