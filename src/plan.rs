//! The stage graph of a pipeline and the keys of its stages. No I/O.
//!
//! A stage key is blake3 (derive-key mode, context [`context::STAGE_KEY`]) over, in this order: the stage
//! kind, the stage's canonical params (JSON), the id of its input (the previous stage's output id; the
//! snapshot id for `gather`), its derived 32-byte seed, the mlpipe version and the target triple.
//! Because each output id covers the digest of the data it produced, a key changes whenever anything
//! upstream changes what this stage would see.

use serde::Serialize;

use crate::digest::{Id, KeyBuilder, context, stage_seed};
use crate::provenance::{MLPIPE_VERSION, TARGET};
use crate::spec::{Pipeline, Split, Train};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageKind {
    Gather,
    Split,
    Analyse,
    /// The step at this index of `Pipeline::steps`.
    Step(usize),
    Train,
    Evaluate,
}

#[derive(Debug, Clone)]
pub struct PlannedStage {
    pub name: String,
    pub kind: StageKind,
    /// Kind name as it enters the key and the record ("gather", "impute", …).
    pub kind_name: String,
    pub params: Vec<u8>,
    pub seed: [u8; 32],
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub stages: Vec<PlannedStage>,
}

#[derive(Serialize)]
struct GatherParams<'a> {
    read: &'a crate::frame::ReadOptions,
    id_column: &'a Option<String>,
    target: &'a str,
}

#[derive(Serialize)]
struct SplitParams<'a> {
    split: &'a Split,
}

/// A stage between the split and training, with the columns no step may take as a feature: changing
/// the target or the id column changes what `numeric` / `all` select, so it changes the key.
#[derive(Serialize)]
struct WithProtected<'a, T: Serialize> {
    #[serde(flatten)]
    stage: &'a T,
    target: &'a str,
    id_column: &'a Option<String>,
}

#[derive(Serialize)]
struct TrainParams<'a> {
    train: &'a Train,
    target: &'a str,
    id_column: &'a Option<String>,
}

#[derive(Serialize)]
struct EvaluateParams<'a> {
    metrics: &'a [crate::spec::Metric],
    target: &'a str,
}

fn protected<'a, T: Serialize>(stage: &'a T, p: &'a Pipeline) -> WithProtected<'a, T> {
    WithProtected {
        stage,
        target: &p.target,
        id_column: &p.gather.id_column,
    }
}

fn json<T: Serialize>(v: &T) -> Vec<u8> {
    // infallible: params hold strings, integers, finite floats and ordered maps.
    serde_json::to_vec(v).unwrap_or_default()
}

impl Plan {
    pub fn new(p: &Pipeline) -> Plan {
        let mut stages = Vec::new();
        let mut push = |name: &str, kind: StageKind, kind_name: &str, params: Vec<u8>| {
            stages.push(PlannedStage {
                name: name.to_string(),
                kind,
                kind_name: kind_name.to_string(),
                params,
                seed: stage_seed(p.seed, name),
            });
        };
        let gather = GatherParams {
            read: &p.gather.read,
            id_column: &p.gather.id_column,
            target: &p.target,
        };
        push("gather", StageKind::Gather, "gather", json(&gather));
        push(
            "split",
            StageKind::Split,
            "split",
            json(&SplitParams { split: &p.split }),
        );
        if let Some(a) = &p.analyse {
            push("analyse", StageKind::Analyse, "analyse", json(&protected(a, p)));
        }
        for (i, s) in p.steps.iter().enumerate() {
            push(&s.name, StageKind::Step(i), s.group.name(), json(&protected(s, p)));
        }
        let train = TrainParams {
            train: &p.train,
            target: &p.target,
            id_column: &p.gather.id_column,
        };
        push("train", StageKind::Train, "train", json(&train));
        push(
            "evaluate",
            StageKind::Evaluate,
            "evaluate",
            json(&EvaluateParams {
                metrics: &p.evaluate.metrics,
                target: &p.target,
            }),
        );
        Plan { stages }
    }

    /// The key of stage `index` given the id of its input.
    pub fn key(&self, index: usize, input: &Id) -> Id {
        stage_key(&self.stages[index], input, MLPIPE_VERSION, TARGET)
    }
}

pub fn stage_key(stage: &PlannedStage, input: &Id, version: &str, target: &str) -> Id {
    KeyBuilder::new(context::STAGE_KEY)
        .str(&stage.kind_name)
        .bytes(&stage.params)
        .id(input)
        .bytes(&stage.seed)
        .str(version)
        .str(target)
        .finish()
}

/// The run id: blake3 (derive-key, [`context::RUN_ID`]) over the pipeline's hashed canonical JSON, the
/// snapshot id, the code commit (empty outside git), the dirty flag and diff hash, the master seed and
/// the mlpipe version.
pub fn run_id(pipeline: &Pipeline, snapshot: &Id, code: &crate::provenance::CodeState, version: &str) -> Id {
    KeyBuilder::new(context::RUN_ID)
        .bytes(&pipeline.hashed_bytes())
        .id(snapshot)
        .str(code.commit.as_deref().unwrap_or(""))
        .u64(u64::from(code.dirty))
        .str(&code.diff.map(|d| d.hex()).unwrap_or_default())
        .u64(pipeline.seed)
        .str(version)
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_stage_key() {
        // Pins the documented encoding (docs/hashing.md). If this fails, stored caches no longer match:
        // change the context string instead of the encoding.
        let stage = PlannedStage {
            name: "impute.median".into(),
            kind: StageKind::Step(0),
            kind_name: "impute".into(),
            params: br#"{"operator":"median"}"#.to_vec(),
            seed: stage_seed(42, "impute.median"),
        };
        let input = Id::of_bytes(b"input");
        let golden = crate::digest::tests::golden("stage_key");
        assert_eq!(
            stage_key(&stage, &input, "0.1.0", "x86_64-unknown-linux-gnu").hex(),
            golden
        );
    }
}
