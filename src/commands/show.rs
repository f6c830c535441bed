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
    if let Some(content) = record {
        let kind = content
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("record")
            .to_string();
        return Ok(ShowReport {
            id,
            kind,
            size: 0,
            content,
        });
    }
    let bytes = store.get(&id)?;
    let parsed: Option<Value> = serde_json::from_slice(&bytes).ok();
    let (kind, content) = match parsed {
        Some(v) if v.get("kind").is_some() => (v["kind"].as_str().unwrap_or("object").to_string(), v),
        Some(v) if v.get("steps").is_some() && v.get("gather").is_some() => ("pipeline".to_string(), v),
        _ => {
            let text = String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]);
            let preview: Vec<Value> = text.lines().take(6).map(|l| Value::String(l.to_string())).collect();
            ("data".to_string(), Value::Array(preview))
        }
    };
    Ok(ShowReport {
        id,
        kind,
        size: bytes.len(),
        content,
    })
}
