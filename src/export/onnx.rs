//! A run's whole fitted pipeline as one ONNX graph: one input per original column (float64, or text
//! with "" for a missing value), every fitted step as standard operators in float64 (text lookups as
//! ai.onnx.ml `LabelEncoder`), the model, and the inverse target transform. Opset 21, ai.onnx.ml 5,
//! IR version 10. What ONNX cannot express the same way is refused, naming the step and why.
//!
//! This file writes the model (inputs, metadata, protobuf); `onnx/graph.rs` holds the graph builder,
//! `onnx/steps.rs` the fitted steps' operators and `onnx/model.rs` the model's and the inverse target
//! transform's.

mod expression;
mod graph;
mod model;
mod steps;

use std::collections::BTreeMap;

use prost::Message;

use super::proto::{
    GraphProto, ModelProto, OperatorSetIdProto, StringStringEntryProto, ValueInfoProto, tensor_proto::DataType,
};
use crate::error::Result;
use crate::frame::ColumnType;
use crate::predictor::Scorer;
use graph::{Builder, value_info};
use model::add_model;
use steps::addstep;

const OPSET: i64 = 21;
const ML_OPSET: i64 = 5;
const IR_VERSION: i64 = 10;
const ML: &str = "ai.onnx.ml";

/// What the exported file holds, for `export`'s report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Exported {
    pub bytes: Vec<u8>,
    pub inputs: Vec<(String, &'static str)>,
    pub outputs: Vec<String>,
    pub nodes: usize,
}

/// Builds the ONNX model of a run's fitted pipeline.
pub fn export(scorer: &Scorer, snapshot: &str, version: &str) -> Result<Exported> {
    let mut b = Builder {
        nodes: Vec::new(),
        initializers: Vec::new(),
        columns: BTreeMap::new(),
        counter: 0,
    };
    let mut inputs = Vec::new();
    let mut graph_inputs = Vec::new();
    for (name, kind) in scorer.feature_columns() {
        let text = *kind == ColumnType::Categorical;
        graph_inputs.push(value_info(
            name,
            if text { DataType::String } else { DataType::Double },
            &[None, Some(1)],
        ));
        inputs.push((name.clone(), if text { "string" } else { "double" }));
        b.set(name, name.clone(), text);
    }
    for (step, name) in scorer.steps().iter().zip(scorer.step_names()) {
        addstep(&mut b, step, name)?;
    }
    let (outputs, doc) = add_model(&mut b, scorer.train_state())?;
    let graph_outputs: Vec<ValueInfoProto> = outputs
        .iter()
        .map(|(name, elem, k)| value_info(name, *elem, &[None, Some(*k)]))
        .collect();
    let graph = GraphProto {
        node: std::mem::take(&mut b.nodes),
        name: Some(scorer.pipeline_name.clone()),
        initializer: std::mem::take(&mut b.initializers),
        input: graph_inputs,
        output: graph_outputs,
        doc_string: Some(doc.clone()),
        ..Default::default()
    };
    let nodes = graph.node.len();
    let features: Vec<&str> = inputs.iter().map(|(n, _)| n.as_str()).collect();
    let meta = [
        ("mlpipe.run", scorer.run.hex()),
        ("mlpipe.model", scorer.model.hex()),
        ("mlpipe.snapshot", snapshot.to_string()),
        ("mlpipe.version", version.to_string()),
        ("mlpipe.pipeline", scorer.pipeline_name.clone()),
        ("mlpipe.features", serde_json::to_string(&features).unwrap_or_default()),
        ("mlpipe.missing", "text: the empty string; numbers: NaN".to_string()),
    ];
    let model = ModelProto {
        ir_version: Some(IR_VERSION),
        opset_import: vec![
            OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(OPSET),
            },
            OperatorSetIdProto {
                domain: Some(ML.into()),
                version: Some(ML_OPSET),
            },
        ],
        producer_name: Some("mlpipe".into()),
        producer_version: Some(version.to_string()),
        doc_string: Some(format!(
            "{doc} Run {} (replay with `mlpipe reproduce {}`). Inputs: one per column, float64, or text with \"\" for a missing value.",
            scorer.run.hex(),
            scorer.run.short()
        )),
        graph: Some(graph),
        metadata_props: meta
            .into_iter()
            .map(|(k, v)| StringStringEntryProto {
                key: Some(k.into()),
                value: Some(v),
            })
            .collect(),
        ..Default::default()
    };
    Ok(Exported {
        bytes: model.encode_to_vec(),
        inputs,
        outputs: outputs.into_iter().map(|(n, _, _)| n).collect(),
        nodes,
    })
}
