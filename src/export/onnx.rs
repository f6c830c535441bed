//! A run's whole fitted pipeline as one ONNX graph: one input per original column (float64, or text
//! with "" for a missing value), every fitted step as standard operators in float64 (text lookups as
//! ai.onnx.ml `LabelEncoder`), the model, and the inverse target transform. Opset 21, ai.onnx.ml 5,
//! IR version 10. What ONNX cannot express the same way is refused, naming the step and why.

use std::collections::BTreeMap;

use prost::Message;

use super::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto, attribute_proto::AttributeType, tensor_proto::DataType,
    tensor_shape_proto, type_proto,
};
use crate::error::{Error, Result};
use crate::fitted::TrainState;
use crate::frame::ColumnType;
use crate::models::{ClassScores, Model, tree};
use crate::scoring::Scorer;
use crate::spec::TargetTransform;
use crate::stages::{
    self, cap, combine, count_frequency, discretise, impute, one_hot, ordinal, power_transform, rare_label, rows,
    scale, transform,
};

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

/// A column as it flows through the graph: the tensor holding it ([N, 1]) and whether it is text.
#[derive(Clone)]
struct Value {
    tensor: String,
    text: bool,
}

/// The graph under construction.
struct Builder {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    columns: BTreeMap<String, Value>,
    counter: usize,
}

impl Builder {
    fn fresh(&mut self, hint: &str) -> String {
        self.counter += 1;
        let clean: String = hint
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        format!("t{}_{clean}", self.counter)
    }

    fn node(&mut self, op: &str, inputs: &[&str], hint: &str, attributes: Vec<AttributeProto>) -> String {
        let out = self.fresh(hint);
        self.node_into(op, inputs, &out, attributes, None);
        out
    }

    fn node_into(
        &mut self,
        op: &str,
        inputs: &[&str],
        out: &str,
        attributes: Vec<AttributeProto>,
        domain: Option<&str>,
    ) {
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| (*s).to_string()).collect(),
            output: vec![out.to_string()],
            name: Some(format!("n{}", self.nodes.len())),
            op_type: Some(op.to_string()),
            domain: domain.map(str::to_string),
            attribute: attributes,
            ..Default::default()
        });
    }

    fn constant_doubles(&mut self, hint: &str, dims: &[i64], values: &[f64]) -> String {
        let name = self.fresh(hint);
        self.initializers.push(TensorProto {
            dims: dims.to_vec(),
            data_type: Some(DataType::Double as i32),
            double_data: values.to_vec(),
            name: Some(name.clone()),
            ..Default::default()
        });
        name
    }

    fn int64s(&mut self, hint: &str, values: &[i64]) -> String {
        let name = self.fresh(hint);
        self.initializers.push(TensorProto {
            dims: vec![dim(values.len())],
            data_type: Some(DataType::Int64 as i32),
            int64_data: values.to_vec(),
            name: Some(name.clone()),
            ..Default::default()
        });
        name
    }

    fn constant_strings(&mut self, hint: &str, values: &[&str]) -> String {
        let name = self.fresh(hint);
        self.initializers.push(TensorProto {
            dims: vec![dim(values.len())],
            data_type: Some(DataType::String as i32),
            string_data: values.iter().map(|s| s.as_bytes().to_vec()).collect(),
            name: Some(name.clone()),
            ..Default::default()
        });
        name
    }

    fn column(&self, name: &str, step: &str) -> Result<Value> {
        self.columns.get(name).cloned().ok_or_else(|| {
            Error::internal(format!(
                "export: step {step} needs column \"{name}\", which is not in the graph"
            ))
        })
    }

    fn numeric(&self, name: &str, step: &str) -> Result<String> {
        let v = self.column(name, step)?;
        if v.text {
            return Err(Error::internal(format!(
                "export: step {step} takes \"{name}\" as a number"
            )));
        }
        Ok(v.tensor)
    }

    fn text(&self, name: &str, step: &str) -> Result<String> {
        let v = self.column(name, step)?;
        if !v.text {
            return Err(Error::internal(format!("export: step {step} takes \"{name}\" as text")));
        }
        Ok(v.tensor)
    }

    fn set(&mut self, name: &str, tensor: String, text: bool) {
        self.columns.insert(name.to_string(), Value { tensor, text });
    }

    /// Where a float64 tensor is NaN: `not (x == x)` (tract types `IsNaN`'s output as its input's type).
    fn is_nan_of(&mut self, x: &str, hint: &str) -> String {
        let same = self.node("Equal", &[x, x], hint, vec![]);
        self.node("Not", &[&same], hint, vec![])
    }

    /// A 0/1 float64 column from a boolean tensor.
    fn flag(&mut self, boolean: &str, hint: &str) -> String {
        self.node("Cast", &[boolean], hint, vec![int_attr("to", DataType::Double as i64)])
    }

    /// Whether a text column is missing (the empty string).
    fn text_missing(&mut self, x: &str, hint: &str) -> String {
        let empty = self.constant_strings("empty", &[""]);
        self.node("Equal", &[x, &empty], hint, vec![])
    }

    /// `LabelEncoder` from text to text: listed keys map to their values, anything else to `default`.
    fn relabel(&mut self, x: &str, keys: &[&str], values: &[&str], default: &str, hint: &str) -> String {
        let attributes = vec![
            strings_attr("keys_strings", keys),
            strings_attr("values_strings", values),
            string_attr("default_string", default),
        ];
        self.label_encoder(x, attributes, hint)
    }

    /// `LabelEncoder` from text to float64 (ai.onnx.ml 4+: `values_tensor`), anything else to `default`.
    fn codes(&mut self, x: &str, keys: &[&str], values: &[f64], default: f64, hint: &str) -> String {
        let attributes = vec![
            strings_attr("keys_strings", keys),
            tensor_attr("values_tensor", doubles_tensor(&[dim(values.len())], values)),
            tensor_attr("default_tensor", doubles_tensor(&[1], &[default])),
        ];
        self.label_encoder(x, attributes, hint)
    }

    fn label_encoder(&mut self, x: &str, attributes: Vec<AttributeProto>, hint: &str) -> String {
        let out = self.fresh(hint);
        self.node_into("LabelEncoder", &[x], &out, attributes, Some(ML));
        out
    }
}

/// A tensor dimension.
fn dim(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn int_attr(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.to_string()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(v),
        ..Default::default()
    }
}

fn string_attr(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: Some(name.to_string()),
        r#type: Some(AttributeType::String as i32),
        s: Some(v.as_bytes().to_vec()),
        ..Default::default()
    }
}

fn strings_attr(name: &str, v: &[&str]) -> AttributeProto {
    AttributeProto {
        name: Some(name.to_string()),
        r#type: Some(AttributeType::Strings as i32),
        strings: v.iter().map(|s| s.as_bytes().to_vec()).collect(),
        ..Default::default()
    }
}

fn tensor_attr(name: &str, t: TensorProto) -> AttributeProto {
    AttributeProto {
        name: Some(name.to_string()),
        r#type: Some(AttributeType::Tensor as i32),
        t: Some(t),
        ..Default::default()
    }
}

fn doubles_tensor(dims: &[i64], values: &[f64]) -> TensorProto {
    TensorProto {
        dims: dims.to_vec(),
        data_type: Some(DataType::Double as i32),
        double_data: values.to_vec(),
        ..Default::default()
    }
}

fn value_info(name: &str, elem: DataType, dims: &[Option<i64>]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| tensor_shape_proto::Dimension {
            value: Some(match d {
                Some(n) => tensor_shape_proto::dimension::Value::DimValue(*n),
                None => tensor_shape_proto::dimension::Value::DimParam("N".into()),
            }),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: Some(name.to_string()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(elem as i32),
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Why a step cannot be exported.
fn refuse(step: &str, why: &str) -> Error {
    Error::data(format!("step {step} cannot be exported to ONNX: {why}"))
        .with_hint("docs/deployment.md lists what exports; the rest is not written yet")
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

fn addstep(b: &mut Builder, step: &stages::Fitted, name: &str) -> Result<()> {
    use stages::Fitted as F;
    match step {
        F::Impute(f) => add_impute(b, f, name),
        F::RareLabel(f) => add_rare(b, f, name),
        F::OneHot(f) => add_one_hot(b, f, name),
        F::Ordinal(f) => add_ordinal(b, f, name),
        F::Scale(f) => add_scale(b, f, name),
        F::Select(f) => {
            for d in &f.dropped {
                b.columns.remove(&d.column);
            }
            Ok(())
        }
        F::Transform(f) => add_transform(b, f, name),
        F::Cap(f) => add_cap(b, f, name),
        F::CountFrequency(f) => add_maps(
            b,
            &f.columns,
            f.rare_label.as_deref(),
            f.unseen_zero.then_some(0.0),
            name,
        ),
        F::MeanTarget(f) => add_maps(
            b,
            &f.columns,
            f.rare_label.as_deref(),
            f.unseen_prior.then_some(f.prior),
            name,
        ),
        F::Woe(f) => add_maps(
            b,
            &f.columns,
            f.rare_label.as_deref(),
            f.unseen_zero.then_some(0.0),
            name,
        ),
        F::Discretise(f) => add_bins(b, f, name),
        F::Power(f) => add_power(b, f, name),
        F::Rows(rows::Fitted::Trim { caps, at_predict, .. }) => match at_predict {
            rows::AtPredict::Cap => add_cap(b, caps, name),
            rows::AtPredict::Keep => Ok(()),
            rows::AtPredict::Error => add_poison_outside(b, caps, name),
        },
        F::Rows(rows::Fitted::Missing { at_predict, .. }) => match at_predict {
            rows::AtPredict::Keep => Ok(()),
            _ => Err(refuse(
                name,
                "at_predict = \"error\" refuses a row with a missing value, which a graph cannot; use at_predict = \"keep\" with an imputer after it",
            )),
        },
        F::Combine(combine::Fitted::Relative {
            reference,
            functions,
            inputs,
        }) => add_relative(b, reference, functions, inputs, name),
        F::Combine(combine::Fitted::Combine {
            function,
            inputs,
            output,
        }) => add_combine(b, function, inputs, output, name),
        F::RandomSample(_) => Err(refuse(
            name,
            "its draws are blake3 of the stage seed and the row, which ONNX has no operator for",
        )),
        F::Datetime(_) => Err(refuse(
            name,
            "date parts are not exported yet (they need the text split into numbers and calendar arithmetic in the graph)",
        )),
    }
}

fn add_impute(b: &mut Builder, f: &impute::Fitted, step: &str) -> Result<()> {
    // Indicators read the values before any fill, as `apply` does.
    let mut flags = Vec::new();
    for col in &f.indicators {
        let v = b.column(col, step)?;
        let missing = if v.text {
            b.text_missing(&v.tensor, &format!("{col}_missing"))
        } else {
            b.is_nan_of(&v.tensor, &format!("{col}_missing"))
        };
        flags.push((format!("{col}_na"), b.flag(&missing, &format!("{col}_na"))));
    }
    for fill in &f.fills {
        match &fill.value {
            impute::Value::Number(x) => {
                let x_in = b.numeric(&fill.column, step)?;
                let missing = b.is_nan_of(&x_in, &format!("{}_missing", fill.column));
                let value = b.constant_doubles("fill", &[1], &[*x]);
                let out = b.node("Where", &[&missing, &value, &x_in], &fill.column, vec![]);
                b.set(&fill.column, out, false);
            }
            impute::Value::Text(s) => {
                let x_in = b.text(&fill.column, step)?;
                let missing = b.text_missing(&x_in, &format!("{}_missing", fill.column));
                let value = b.constant_strings("fill", &[s]);
                let out = b.node("Where", &[&missing, &value, &x_in], &fill.column, vec![]);
                b.set(&fill.column, out, true);
            }
        }
    }
    for (name, tensor) in flags {
        b.set(&name, tensor, false);
    }
    Ok(())
}

fn add_rare(b: &mut Builder, f: &rare_label::Fitted, step: &str) -> Result<()> {
    for g in &f.columns {
        if !g.grouped {
            continue;
        }
        let x = b.text(&g.column, step)?;
        // Frequent labels (and "" — missing stays missing) map to themselves, the rest to the rare label.
        let mut keys: Vec<&str> = g.frequent.iter().map(String::as_str).collect();
        keys.push("");
        let out = b.relabel(&x, &keys, &keys, &f.replace_with, &g.column);
        b.set(&g.column, out, true);
    }
    Ok(())
}

fn add_one_hot(b: &mut Builder, f: &one_hot::Fitted, step: &str) -> Result<()> {
    for enc in &f.columns {
        let x = b.text(&enc.column, step)?;
        // Every train category (with a dummy, dropped, or left out by top_k), missing excluded.
        let mut known: Vec<&str> = enc.categories.iter().map(String::as_str).collect();
        known.extend(enc.dropped.as_deref());
        known.extend(enc.others.iter().map(String::as_str));
        let (x, guard) = match f.unseen {
            one_hot::Unseen::Ignore => (x, None),
            // An unseen or missing value is the rare label's category.
            one_hot::Unseen::Rare => {
                let rare = f.rare_label.as_deref().unwrap_or("Rare");
                (b.relabel(&x, &known, &known, rare, &enc.column), None)
            }
            // mlpipe refuses such a row; a graph cannot, so its dummies (and its prediction) are NaN.
            one_hot::Unseen::Error => {
                let zeros = vec![0.0; known.len()];
                let guard = b.codes(&x, &known, &zeros, f64::NAN, &format!("{}_known", enc.column));
                (x, Some(guard))
            }
        };
        for c in &enc.categories {
            let value = b.constant_strings("category", &[c]);
            let eq = b.node("Equal", &[&x, &value], &format!("{}_{c}_eq", enc.column), vec![]);
            let mut out = b.flag(&eq, &format!("{}_{c}", enc.column));
            if let Some(g) = &guard {
                out = b.node("Add", &[&out, g], &format!("{}_{c}", enc.column), vec![]);
            }
            b.set(&format!("{}_{c}", enc.column), out, false);
        }
        b.columns.remove(&enc.column);
    }
    Ok(())
}

fn add_ordinal(b: &mut Builder, f: &ordinal::Fitted, step: &str) -> Result<()> {
    for m in &f.columns {
        let x = b.text(&m.column, step)?;
        let keys: Vec<&str> = m.categories.iter().map(String::as_str).collect();
        let codes: Vec<f64> = (0..keys.len()).map(|i| i as f64).collect();
        // Unseen (or missing) text: the unknown value, the rare label's code, or — where mlpipe refuses
        // the row — NaN, which carries through to the prediction.
        let unseen = match f.unseen {
            ordinal::Unseen::Encode => f.unknown_value,
            ordinal::Unseen::Error => f64::NAN,
            ordinal::Unseen::Rare => {
                let rare = f.rare_label.as_deref().unwrap_or("Rare");
                keys.iter().position(|k| *k == rare).map_or(f64::NAN, |i| i as f64)
            }
        };
        let out = b.codes(&x, &keys, &codes, unseen, &m.column);
        b.set(&m.column, out, false);
    }
    Ok(())
}

fn add_scale(b: &mut Builder, f: &scale::Fitted, step: &str) -> Result<()> {
    for c in &f.columns {
        let x = b.numeric(&c.column, step)?;
        let out = match f.kind {
            scale::Kind::Standard | scale::Kind::Robust => {
                let center = b.constant_doubles("center", &[1], &[c.center]);
                let spread = b.constant_doubles("scale", &[1], &[c.scale]);
                let d = b.node("Sub", &[&x, &center], &c.column, vec![]);
                b.node("Div", &[&d, &spread], &c.column, vec![])
            }
            scale::Kind::MinMax => {
                let (lo, hi) = f.feature_range;
                let factor = (hi - lo) / c.scale;
                let shift = lo - c.center * factor;
                let factor = b.constant_doubles("factor", &[1], &[factor]);
                let shift = b.constant_doubles("shift", &[1], &[shift]);
                let m = b.node("Mul", &[&x, &factor], &c.column, vec![]);
                b.node("Add", &[&m, &shift], &c.column, vec![])
            }
        };
        b.set(&c.column, out, false);
    }
    Ok(())
}

fn add_transform(b: &mut Builder, f: &transform::Fitted, step: &str) -> Result<()> {
    for c in &f.columns {
        let x = b.numeric(c, step)?;
        // A value outside the function's domain, which mlpipe refuses, gives NaN or ±inf here.
        let out = match f.function {
            transform::Function::Log { base10, offset } => {
                let shift = b.constant_doubles("offset", &[1], &[offset]);
                let shifted = b.node("Add", &[&x, &shift], c, vec![]);
                let ln = b.node("Log", &[&shifted], c, vec![]);
                if base10 {
                    let ln10 = b.constant_doubles("ln10", &[1], &[std::f64::consts::LN_10]);
                    b.node("Div", &[&ln, &ln10], c, vec![])
                } else {
                    ln
                }
            }
            transform::Function::Power { exp } => {
                let e = b.constant_doubles("exponent", &[1], &[exp]);
                b.node("Pow", &[&x, &e], c, vec![])
            }
            transform::Function::Reciprocal => {
                let one = b.constant_doubles("one", &[1], &[1.0]);
                b.node("Div", &[&one, &x], c, vec![])
            }
        };
        b.set(c, out, false);
    }
    Ok(())
}

fn add_cap(b: &mut Builder, f: &cap::Fitted, step: &str) -> Result<()> {
    for c in &f.columns {
        let mut x = b.numeric(&c.column, step)?;
        // As `apply`: the high cap, then the low one; NaN compares false and stays missing.
        if let Some(high) = c.high {
            let h = b.constant_doubles("high", &[1], &[high]);
            let above = b.node("Greater", &[&x, &h], &c.column, vec![]);
            x = b.node("Where", &[&above, &h, &x], &c.column, vec![]);
        }
        if let Some(low) = c.low {
            let l = b.constant_doubles("low", &[1], &[low]);
            let below = b.node("Less", &[&x, &l], &c.column, vec![]);
            x = b.node("Where", &[&below, &l, &x], &c.column, vec![]);
        }
        b.set(&c.column, x, false);
    }
    Ok(())
}

/// `trim` with `at_predict = "error"`: a value beyond a cap makes the row's prediction NaN.
fn add_poison_outside(b: &mut Builder, f: &cap::Fitted, step: &str) -> Result<()> {
    for c in &f.columns {
        let mut x = b.numeric(&c.column, step)?;
        let nan = b.constant_doubles("nan", &[1], &[f64::NAN]);
        for (bound, op) in [(c.high, "Greater"), (c.low, "Less")] {
            if let Some(v) = bound {
                let v = b.constant_doubles("cap", &[1], &[v]);
                let outside = b.node(op, &[&x, &v], &c.column, vec![]);
                x = b.node("Where", &[&outside, &nan, &x], &c.column, vec![]);
            }
        }
        b.set(&c.column, x, false);
    }
    Ok(())
}

/// Bin numbers: how many inner edges lie strictly below the value (right-closed bins).
fn add_bins(b: &mut Builder, f: &discretise::Fitted, step: &str) -> Result<()> {
    for (column, edges) in &f.columns {
        let x = b.numeric(column, step)?;
        let edges_t = b.constant_doubles("edges", &[1, dim(edges.len())], edges);
        let above = b.node("Greater", &[&x, &edges_t], column, vec![]);
        let flags = b.flag(&above, column);
        let axis = b.int64s("axis", &[1]);
        let count = b.node("ReduceSum", &[&flags, &axis], column, vec![int_attr("keepdims", 1)]);
        // A missing value stays missing.
        let missing = b.is_nan_of(&x, column);
        let out = b.node("Where", &[&missing, &x, &count], column, vec![]);
        b.set(column, out, false);
    }
    Ok(())
}

/// Box-Cox and Yeo-Johnson with each column's λ, as `power_transform::box_cox` / `yeo_johnson`
/// (exp(u) − 1 for their expm1(u): the same to a few units in the last place of the result's scale).
fn add_power(b: &mut Builder, f: &power_transform::Fitted, step: &str) -> Result<()> {
    for (column, lambda) in &f.columns {
        let x = b.numeric(column, step)?;
        let out = match f.kind {
            power_transform::Kind::BoxCox => {
                let ln = b.node("Log", &[&x], column, vec![]);
                if lambda.abs() < 1e-19 {
                    ln
                } else {
                    expm1_over(b, &ln, *lambda, column)
                }
            }
            power_transform::Kind::YeoJohnson => {
                let zero = b.constant_doubles("zero", &[1], &[0.0]);
                // x ≥ 0: ((1 + x)^λ − 1)/λ, or ln(1 + x) at λ = 0.
                let ln_up = log1p(b, &x, column);
                let pos = if lambda.abs() < f64::EPSILON {
                    ln_up
                } else {
                    expm1_over(b, &ln_up, *lambda, column)
                };
                // x < 0: −((1 − x)^(2 − λ) − 1)/(2 − λ), or −ln(1 − x) at λ = 2.
                let minus_x = b.node("Neg", &[&x], column, vec![]);
                let ln_down = log1p(b, &minus_x, column);
                let neg = if (lambda - 2.0).abs() > f64::EPSILON {
                    expm1_over(b, &ln_down, 2.0 - lambda, column)
                } else {
                    ln_down
                };
                let neg = b.node("Neg", &[&neg], column, vec![]);
                let nonneg = b.node("GreaterOrEqual", &[&x, &zero], column, vec![]);
                let picked = b.node("Where", &[&nonneg, &pos, &neg], column, vec![]);
                // NaN compares false: keep it missing rather than taking the negative branch's NaN.
                let missing = b.is_nan_of(&x, column);
                b.node("Where", &[&missing, &x, &picked], column, vec![])
            }
        };
        b.set(column, out, false);
    }
    Ok(())
}

/// (exp(λ·u) − 1) / λ, with an accurate expm1.
fn expm1_over(b: &mut Builder, u: &str, lambda: f64, hint: &str) -> String {
    let lam = b.constant_doubles("lambda", &[1], &[lambda]);
    let scaled = b.node("Mul", &[&lam, u], hint, vec![]);
    let less_one = expm1(b, &scaled, hint);
    b.node("Div", &[&less_one, &lam], hint, vec![])
}

/// expm1(x) to a few units in the last place (Kahan: (e − 1)·x / ln e with e = exp(x)); x where
/// e = 1, −1 where e − 1 = −1, and +inf where e overflows. ONNX has no Expm1.
fn expm1(b: &mut Builder, x: &str, hint: &str) -> String {
    let one = b.constant_doubles("one", &[1], &[1.0]);
    let minus_one = b.constant_doubles("minus_one", &[1], &[-1.0]);
    let e = b.node("Exp", &[x], hint, vec![]);
    let em1 = b.node("Sub", &[&e, &one], hint, vec![]);
    let ln = b.node("Log", &[&e], hint, vec![]);
    let ratio = b.node("Div", &[x, &ln], hint, vec![]);
    let kahan = b.node("Mul", &[&em1, &ratio], hint, vec![]);
    let is_one = b.node("Equal", &[&e, &one], hint, vec![]);
    let small = b.node("Where", &[&is_one, x, &kahan], hint, vec![]);
    let is_minus_one = b.node("Equal", &[&em1, &minus_one], hint, vec![]);
    let low = b.node("Where", &[&is_minus_one, &em1, &small], hint, vec![]);
    let inf = b.node("IsInf", &[&e], hint, vec![]);
    b.node("Where", &[&inf, &e, &low], hint, vec![])
}

/// log1p(u) to a few units in the last place (Goldberg: ln w · u / (w − 1) with w = 1 + u); u where
/// w = 1. ONNX has no Log1p.
fn log1p(b: &mut Builder, u: &str, hint: &str) -> String {
    let one = b.constant_doubles("one", &[1], &[1.0]);
    let w = b.node("Add", &[u, &one], hint, vec![]);
    let ln = b.node("Log", &[&w], hint, vec![]);
    let wm1 = b.node("Sub", &[&w, &one], hint, vec![]);
    let ratio = b.node("Div", &[u, &wm1], hint, vec![]);
    let goldberg = b.node("Mul", &[&ln, &ratio], hint, vec![]);
    let is_one = b.node("Equal", &[&w, &one], hint, vec![]);
    b.node("Where", &[&is_one, u, &goldberg], hint, vec![])
}

/// `combine`: one column from several, row by row, as `combine::row_function` (sums in column order;
/// `std` is the sample standard deviation); a missing input gives a missing output.
fn add_combine(b: &mut Builder, function: &str, inputs: &[String], output: &str, step: &str) -> Result<()> {
    let xs = inputs
        .iter()
        .map(|c| b.numeric(c, step))
        .collect::<Result<Vec<String>>>()?;
    let fold = |b: &mut Builder, op: &str| -> String {
        let mut acc = xs[0].clone();
        for x in &xs[1..] {
            acc = b.node(op, &[&acc, x], output, vec![]);
        }
        acc
    };
    let n = b.constant_doubles("count", &[1], &[xs.len() as f64]);
    let sum = fold(b, "Add");
    let value = match function {
        "sum" => sum.clone(),
        "mean" => b.node("Div", &[&sum, &n], output, vec![]),
        "prod" => fold(b, "Mul"),
        "min" => fold(b, "Min"),
        "max" => fold(b, "Max"),
        _ => {
            let mean = b.node("Div", &[&sum, &n], output, vec![]);
            let mut squares: Option<String> = None;
            for x in &xs {
                let d = b.node("Sub", &[x, &mean], output, vec![]);
                let d2 = b.node("Mul", &[&d, &d], output, vec![]);
                squares = Some(match squares {
                    None => d2,
                    Some(acc) => b.node("Add", &[&acc, &d2], output, vec![]),
                });
            }
            let squares = squares.unwrap_or(sum.clone());
            let dof = b.constant_doubles("dof", &[1], &[xs.len() as f64 - 1.0]);
            let var = b.node("Div", &[&squares, &dof], output, vec![]);
            b.node("Sqrt", &[&var], output, vec![])
        }
    };
    // The sum is NaN exactly when an input is missing (or inputs are infinite of both signs).
    let missing = b.is_nan_of(&sum, output);
    let nan = b.constant_doubles("nan", &[1], &[f64::NAN]);
    let out = b.node("Where", &[&missing, &nan, &value], output, vec![]);
    b.set(output, out, false);
    Ok(())
}

/// `relative`: `<column>_<function>_<reference>` per function and column; division by zero, which
/// mlpipe refuses, gives ±inf or NaN here.
fn add_relative(b: &mut Builder, reference: &str, functions: &[String], inputs: &[String], step: &str) -> Result<()> {
    let r = b.numeric(reference, step)?;
    let mut new = Vec::new();
    for f in functions {
        let op = match f.as_str() {
            "sub" => "Sub",
            "add" => "Add",
            "mul" => "Mul",
            _ => "Div",
        };
        for c in inputs {
            let x = b.numeric(c, step)?;
            let name = format!("{c}_{f}_{reference}");
            new.push((name.clone(), b.node(op, &[&x, &r], &name, vec![])));
        }
    }
    for (name, t) in new {
        b.set(&name, t, false);
    }
    Ok(())
}

/// Count, frequency and target-mean encodings: each category's number; an unseen category gets the
/// rare label's number, the fixed one, or NaN where mlpipe refuses it.
fn add_maps(
    b: &mut Builder,
    columns: &[(String, BTreeMap<String, f64>)],
    rare_label: Option<&str>,
    fixed: Option<f64>,
    step: &str,
) -> Result<()> {
    for (column, map) in columns {
        let x = b.text(column, step)?;
        let keys: Vec<&str> = map.keys().map(String::as_str).collect();
        let values: Vec<f64> = map.values().copied().collect();
        let unseen = count_frequency::unseen_value(map, rare_label, fixed).unwrap_or(f64::NAN);
        let out = b.codes(&x, &keys, &values, unseen, column);
        b.set(column, out, false);
    }
    Ok(())
}

/// The model's inputs side by side: [N, p] float64 in the model's feature order.
fn design(b: &mut Builder, features: &[String]) -> Result<String> {
    let mut parts = Vec::with_capacity(features.len());
    for f in features {
        parts.push(b.numeric(f, "train")?);
    }
    let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
    Ok(b.node("Concat", &refs, "design", vec![int_attr("axis", 1)]))
}

type Outputs = Vec<(String, DataType, i64)>;

/// What a model computes, as a tensor: values [N, 1] (before any inverse target transform), class
/// probabilities [N, K], or cluster numbers [N, 1].
enum ModelOut {
    Values(String),
    Proba(String),
    Clusters(String),
}

/// The graph's outputs from the model's: `prediction` (and `probabilities`), and the doc string.
fn add_model(b: &mut Builder, train: &TrainState) -> Result<(Outputs, String)> {
    let model = &train.model;
    let name = model_name(model);
    match model_output(b, model)? {
        ModelOut::Values(raw) => {
            inverse_target(b, train, &raw);
            Ok((
                vec![("prediction".into(), DataType::Double, 1)],
                format!("mlpipe pipeline, {name} model, float64 throughout."),
            ))
        }
        ModelOut::Clusters(c) => {
            b.node_into("Identity", &[&c], "prediction", vec![], None);
            Ok((
                vec![("prediction".into(), DataType::Double, 1)],
                format!("mlpipe pipeline, {name} model: the nearest centre's number, float64 throughout."),
            ))
        }
        ModelOut::Proba(proba) => {
            let (classes, numeric) = model
                .classes()
                .ok_or_else(|| Error::internal("export: class probabilities without classes"))?;
            b.node_into("Identity", &[&proba], "probabilities", vec![], None);
            let index = b.node(
                "ArgMax",
                &[&proba],
                "class",
                vec![int_attr("axis", 1), int_attr("keepdims", 1)],
            );
            let labels: Vec<&str> = classes.iter().map(String::as_str).collect();
            let label_type = if numeric {
                let values: Vec<f64> = classes.iter().map(|c| c.parse::<f64>().unwrap_or(f64::NAN)).collect();
                let t = b.constant_doubles("classes", &[dim(values.len())], &values);
                b.node_into("Gather", &[&t, &index], "prediction", vec![int_attr("axis", 0)], None);
                DataType::Double
            } else {
                let t = b.constant_strings("classes", &labels);
                b.node_into("Gather", &[&t, &index], "prediction", vec![int_attr("axis", 0)], None);
                DataType::String
            };
            Ok((
                vec![
                    ("prediction".into(), label_type, 1),
                    ("probabilities".into(), DataType::Double, dim(classes.len())),
                ],
                format!(
                    "mlpipe pipeline, {name} model over classes [{}] (probabilities in that order), float64 throughout.",
                    labels.join(", ")
                ),
            ))
        }
    }
}

fn model_name(model: &Model) -> String {
    match model {
        Model::Linear(m) => m.estimator.clone(),
        Model::Trees(m) => format!(
            "{} ({} trees; features rounded to float32 as the trees saw them)",
            m.estimator,
            m.trees.len()
        ),
        Model::Classifier(m) => m.estimator.clone(),
        Model::Clusters(m) => format!("{} with {} clusters", m.estimator, m.centres.len()),
        Model::Ensemble(m) => format!(
            "{} of {}",
            m.estimator,
            m.members.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")
        ),
    }
}

// x, w, z, p, k: the design, weights, scores, features and clusters, as in the formulas.
#[allow(clippy::many_single_char_names)]
fn model_output(b: &mut Builder, model: &Model) -> Result<ModelOut> {
    match model {
        Model::Linear(m) => {
            let x = design(b, &m.features)?;
            let w = b.constant_doubles("coefficients", &[dim(m.coefficients.len()), 1], &m.coefficients);
            let intercept = b.constant_doubles("intercept", &[1], &[m.intercept]);
            let xw = b.node("MatMul", &[&x, &w], "score", vec![]);
            Ok(ModelOut::Values(b.node("Add", &[&xw, &intercept], "score", vec![])))
        }
        Model::Trees(m) => {
            let x = design(b, &m.features)?;
            let x = single_precision(b, &x);
            let lr = m.learning_rate;
            let average = m.average;
            let parts: Vec<TreeOut<'_>> = m
                .trees
                .iter()
                .map(|t| TreeOut {
                    tree: t,
                    target: 0,
                    // A forest sums leaf values; boosting sums learning_rate × leaf value, as mlpipe does.
                    weight: if average {
                        Box::new(move |leaf| t.value[leaf])
                    } else {
                        Box::new(move |leaf| lr * t.value[leaf])
                    },
                })
                .collect();
            let sum = tree_ensemble(b, &x, &parts, 1);
            Ok(ModelOut::Values(if average {
                let n = b.constant_doubles("trees", &[1], &[m.trees.len() as f64]);
                b.node("Div", &[&sum, &n], "score", vec![])
            } else {
                let init = b.constant_doubles("init", &[1], &[m.init]);
                b.node("Add", &[&sum, &init], "score", vec![])
            }))
        }
        Model::Classifier(m) => {
            let x = design(b, &m.features)?;
            let k = m.classes.len();
            Ok(ModelOut::Proba(match &m.scores {
                ClassScores::Linear {
                    coefficients,
                    intercepts,
                } => {
                    let rows = coefficients.len();
                    let p = m.features.len();
                    // Wᵀ: [p, rows].
                    let mut wt = vec![0.0; p * rows];
                    for (r, coef) in coefficients.iter().enumerate() {
                        for (j, w) in coef.iter().enumerate() {
                            wt[j * rows + r] = *w;
                        }
                    }
                    let w = b.constant_doubles("coefficients", &[dim(p), dim(rows)], &wt);
                    let bias = b.constant_doubles("intercepts", &[dim(rows)], intercepts);
                    let xw = b.node("MatMul", &[&x, &w], "scores", vec![]);
                    let z = b.node("Add", &[&xw, &bias], "scores", vec![]);
                    link(b, &z, rows)
                }
                ClassScores::Trees { trees } => {
                    let x = single_precision(b, &x);
                    let parts: Vec<TreeOut<'_>> = trees
                        .iter()
                        .flat_map(|t| {
                            (0..k).map(move |class| TreeOut {
                                tree: t,
                                target: class,
                                weight: Box::new(move |leaf| t.leaf_distribution(leaf, k)[class]),
                            })
                        })
                        .collect();
                    let sum = tree_ensemble(b, &x, &parts, k);
                    let n = b.constant_doubles("trees", &[1], &[trees.len() as f64]);
                    b.node("Div", &[&sum, &n], "probabilities", vec![])
                }
                ClassScores::Boosted {
                    init,
                    learning_rate,
                    rounds,
                } => {
                    let x = single_precision(b, &x);
                    let lr = *learning_rate;
                    let parts: Vec<TreeOut<'_>> = rounds
                        .iter()
                        .flat_map(|round| {
                            round.iter().enumerate().map(move |(slot, t)| TreeOut {
                                tree: t,
                                target: slot,
                                weight: Box::new(move |leaf| lr * t.value[leaf]),
                            })
                        })
                        .collect();
                    let sum = tree_ensemble(b, &x, &parts, init.len());
                    let start = b.constant_doubles("init", &[dim(init.len())], init);
                    let z = b.node("Add", &[&sum, &start], "scores", vec![]);
                    link(b, &z, init.len())
                }
            }))
        }
        Model::Clusters(m) => {
            let x = design(b, &m.features)?;
            let k = m.centres.len();
            let p = m.features.len();
            let flat: Vec<f64> = m.centres.iter().flatten().copied().collect();
            let centres = b.constant_doubles("centres", &[1, dim(k), dim(p)], &flat);
            let one = b.int64s("axis1", &[1]);
            let two = b.int64s("axis2", &[2]);
            let rows = b.node("Unsqueeze", &[&x, &one], "rows", vec![]);
            let diff = b.node("Sub", &[&rows, &centres], "diff", vec![]);
            let sq = b.node("Mul", &[&diff, &diff], "squares", vec![]);
            let dist = b.node("ReduceSum", &[&sq, &two], "distances", vec![int_attr("keepdims", 0)]);
            let nearest = b.node(
                "ArgMin",
                &[&dist],
                "nearest",
                vec![int_attr("axis", 1), int_attr("keepdims", 1)],
            );
            Ok(ModelOut::Clusters(b.node(
                "Cast",
                &[&nearest],
                "cluster",
                vec![int_attr("to", DataType::Double as i64)],
            )))
        }
        Model::Ensemble(m) => {
            let n_classes = m.classes.as_ref().map_or(0, Vec::len);
            let mut outputs = Vec::with_capacity(m.members.len());
            for (_, member) in &m.members {
                outputs.push(model_output(b, member)?);
            }
            if let Some(final_model) = &m.final_model {
                // The final estimator's columns, named as `meta_features` names them.
                for ((name, member), out) in m.members.iter().zip(&outputs) {
                    match out {
                        ModelOut::Values(v) | ModelOut::Clusters(v) => b.set(name, v.clone(), false),
                        ModelOut::Proba(p) if n_classes == 2 => {
                            let col = column_of(b, p, 1, name);
                            b.set(name, col, false);
                        }
                        ModelOut::Proba(p) => {
                            let labels = member.classes().map(|(l, _)| l.to_vec()).unwrap_or_default();
                            for (k, label) in labels.iter().enumerate() {
                                let col = column_of(b, p, k, &format!("{name}_{label}"));
                                b.set(&format!("{name}_{label}"), col, false);
                            }
                        }
                    }
                }
                return model_output(b, final_model);
            }
            // Voting: Σ weight × output in member order, divided by the weights' sum.
            let total: f64 = m.weights.iter().sum();
            let mut sum: Option<String> = None;
            for (out, w) in outputs.iter().zip(&m.weights) {
                let (ModelOut::Values(v) | ModelOut::Proba(v) | ModelOut::Clusters(v)) = out;
                let w = b.constant_doubles("weight", &[1], &[*w]);
                let weighted = b.node("Mul", &[v, &w], "weighted", vec![]);
                sum = Some(match sum {
                    None => weighted,
                    Some(acc) => b.node("Add", &[&acc, &weighted], "votes", vec![]),
                });
            }
            let sum = sum.ok_or_else(|| Error::internal("export: a voting ensemble without members"))?;
            let total = b.constant_doubles("weights", &[1], &[total]);
            let mean = b.node("Div", &[&sum, &total], "vote", vec![]);
            Ok(if m.classes.is_some() {
                ModelOut::Proba(mean)
            } else {
                ModelOut::Values(mean)
            })
        }
    }
}

/// Column `k` of a [N, K] tensor, as [N, 1].
fn column_of(b: &mut Builder, t: &str, k: usize, hint: &str) -> String {
    let index = b.int64s("column", &[dim(k)]);
    b.node("Gather", &[t, &index], hint, vec![int_attr("axis", 1)])
}

/// Class probabilities [N, K] from raw scores: the logistic function for one score column (two
/// classes: [1 − p, p]), softmax for more — as mlpipe's `logistic::probabilities`.
fn link(b: &mut Builder, z: &str, columns: usize) -> String {
    if columns == 1 {
        let p1 = b.node("Sigmoid", &[z], "positive", vec![]);
        let one = b.constant_doubles("one", &[1], &[1.0]);
        let p0 = b.node("Sub", &[&one, &p1], "negative", vec![]);
        b.node("Concat", &[&p0, &p1], "probabilities", vec![int_attr("axis", 1)])
    } else {
        b.node("Softmax", &[z], "probabilities", vec![int_attr("axis", 1)])
    }
}

/// Features rounded to float32 and back, as trees see them (scikit-learn grows trees on float32).
fn single_precision(b: &mut Builder, x: &str) -> String {
    let narrow = b.node("Cast", &[x], "single", vec![int_attr("to", DataType::Float as i64)]);
    b.node(
        "Cast",
        &[&narrow],
        "single",
        vec![int_attr("to", DataType::Double as i64)],
    )
}

/// One tree's part in a `TreeEnsemble`: the output column it adds to, and each leaf's weight (by
/// the tree's node number).
struct TreeOut<'t> {
    tree: &'t tree::Tree,
    target: usize,
    weight: Box<dyn Fn(usize) -> f64 + 't>,
}

/// ai.onnx.ml `TreeEnsemble` (ml opset 5, float64 splits and weights): per output column, the sum of
/// its trees' leaf weights. Rows go to the true (left) branch when `x <= split`, as in mlpipe.
fn tree_ensemble(b: &mut Builder, x: &str, parts: &[TreeOut<'_>], n_targets: usize) -> String {
    let (mut features, mut splits, mut modes) = (Vec::new(), Vec::new(), Vec::new());
    let (mut true_ids, mut true_leafs, mut false_ids, mut false_leafs) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut leaf_targets, mut leaf_weights, mut roots) = (Vec::new(), Vec::new(), Vec::new());
    for part in parts {
        let tree = part.tree;
        // Global numbers: split nodes in one list, leaves in another.
        let mut number = vec![0i64; tree.feature.len()];
        let first_split = features.len();
        let mut splits_here = 0;
        for (node, f) in tree.feature.iter().enumerate() {
            if f.is_some() {
                number[node] = dim(first_split + splits_here);
                splits_here += 1;
            } else {
                number[node] = dim(leaf_targets.len());
                leaf_targets.push(dim(part.target));
                leaf_weights.push((part.weight)(node));
            }
        }
        if tree.feature[0].is_none() {
            // A tree that is one leaf: a split whose two branches both reach it.
            roots.push(dim(features.len()));
            features.push(0);
            splits.push(0.0);
            modes.push(0u8);
            true_ids.push(number[0]);
            true_leafs.push(1);
            false_ids.push(number[0]);
            false_leafs.push(1);
            continue;
        }
        roots.push(dim(first_split));
        for (node, f) in tree.feature.iter().enumerate() {
            let Some(feature) = f else { continue };
            let (left, right) = (tree.left[node], tree.right[node]);
            features.push(dim(*feature));
            splits.push(tree.threshold[node]);
            modes.push(0u8); // BRANCH_LEQ
            true_ids.push(number[left]);
            true_leafs.push(i64::from(tree.feature[left].is_none()));
            false_ids.push(number[right]);
            false_leafs.push(i64::from(tree.feature[right].is_none()));
        }
    }
    let out = b.fresh("trees");
    let ints = |name: &str, v: Vec<i64>| AttributeProto {
        name: Some(name.to_string()),
        r#type: Some(AttributeType::Ints as i32),
        ints: v,
        ..Default::default()
    };
    let modes = TensorProto {
        dims: vec![dim(modes.len())],
        data_type: Some(DataType::Uint8 as i32),
        raw_data: Some(modes),
        ..Default::default()
    };
    b.node_into(
        "TreeEnsemble",
        &[x],
        &out,
        vec![
            int_attr("aggregate_function", 1), // SUM
            int_attr("n_targets", dim(n_targets)),
            int_attr("post_transform", 0),
            ints("nodes_featureids", features),
            tensor_attr("nodes_splits", doubles_tensor(&[dim(splits.len())], &splits)),
            tensor_attr("nodes_modes", modes),
            ints("nodes_truenodeids", true_ids),
            ints("nodes_trueleafs", true_leafs),
            ints("nodes_falsenodeids", false_ids),
            ints("nodes_falseleafs", false_leafs),
            ints("leaf_targetids", leaf_targets),
            tensor_attr(
                "leaf_weights",
                doubles_tensor(&[dim(leaf_weights.len())], &leaf_weights),
            ),
            ints("tree_roots", roots),
        ],
        Some(ML),
    );
    out
}

/// The prediction: the raw score through the inverse of the target transform.
fn inverse_target(b: &mut Builder, train: &TrainState, raw: &str) {
    let lambda = train.target_lambda.unwrap_or(0.0);
    match train.target_transform {
        TargetTransform::None => b.node_into("Identity", &[raw], "prediction", vec![], None),
        TargetTransform::Log => b.node_into("Exp", &[raw], "prediction", vec![], None),
        TargetTransform::Log1p => {
            let back = expm1(b, raw, "target");
            b.node_into("Identity", &[&back], "prediction", vec![], None);
        }
        // As `inverse_box_cox`: exp(log1p(λ·y)/λ), or exp(y) at λ = 0.
        TargetTransform::BoxCox if lambda == 0.0 => b.node_into("Exp", &[raw], "prediction", vec![], None),
        TargetTransform::BoxCox => {
            let power = log1p_over(b, raw, lambda);
            b.node_into("Exp", &[&power], "prediction", vec![], None);
        }
        // As `inverse_yeo_johnson`, branch by branch.
        TargetTransform::YeoJohnson => {
            let positive = if lambda.abs() < f64::EPSILON {
                expm1(b, raw, "target")
            } else {
                let power = log1p_over(b, raw, lambda);
                expm1(b, &power, "target")
            };
            let flipped = b.node("Neg", &[raw], "target", vec![]);
            let negative = if (lambda - 2.0).abs() > f64::EPSILON {
                let power = log1p_over(b, &flipped, 2.0 - lambda);
                expm1(b, &power, "target")
            } else {
                expm1(b, &flipped, "target")
            };
            let negative = b.node("Neg", &[&negative], "target", vec![]);
            let zero = b.constant_doubles("zero", &[1], &[0.0]);
            let nonneg = b.node("GreaterOrEqual", &[raw, &zero], "target", vec![]);
            b.node_into("Where", &[&nonneg, &positive, &negative], "prediction", vec![], None);
        }
    }
}

/// log1p(λ·y) / λ.
fn log1p_over(b: &mut Builder, y: &str, lambda: f64) -> String {
    let lam = b.constant_doubles("lambda", &[1], &[lambda]);
    let scaled = b.node("Mul", &[&lam, y], "target", vec![]);
    let logged = log1p(b, &scaled, "target");
    b.node("Div", &[&logged, &lam], "target", vec![])
}
