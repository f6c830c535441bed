//! The ONNX graph under construction: fresh tensor names, nodes, initializers and the columns as they
//! flow; the protobuf attribute, tensor and type helpers; and expm1 and log1p built from standard
//! operators (ONNX has neither), which steps and the inverse target transform share.

use std::collections::BTreeMap;

use super::ML;
use crate::error::{Error, Result};
use crate::export::proto::{
    AttributeProto, NodeProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
    attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto, type_proto,
};

/// A column as it flows through the graph: the tensor holding it ([N, 1]) and whether it is text.
#[derive(Clone)]
pub(super) struct Value {
    pub(super) tensor: String,
    pub(super) text: bool,
}

/// The graph under construction.
pub(super) struct Builder {
    pub(super) nodes: Vec<NodeProto>,
    pub(super) initializers: Vec<TensorProto>,
    pub(super) columns: BTreeMap<String, Value>,
    pub(super) counter: usize,
}

impl Builder {
    pub(super) fn fresh(&mut self, hint: &str) -> String {
        self.counter += 1;
        let clean: String = hint
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        format!("t{}_{clean}", self.counter)
    }

    pub(super) fn node(&mut self, op: &str, inputs: &[&str], hint: &str, attributes: Vec<AttributeProto>) -> String {
        let out = self.fresh(hint);
        self.node_into(op, inputs, &out, attributes, None);
        out
    }

    pub(super) fn node_into(
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

    pub(super) fn constant_doubles(&mut self, hint: &str, dims: &[i64], values: &[f64]) -> String {
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

    pub(super) fn int64s(&mut self, hint: &str, values: &[i64]) -> String {
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

    pub(super) fn constant_strings(&mut self, hint: &str, values: &[&str]) -> String {
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

    pub(super) fn column(&self, name: &str, step: &str) -> Result<Value> {
        self.columns.get(name).cloned().ok_or_else(|| {
            Error::internal(format!(
                "export: step {step} needs column \"{name}\", which is not in the graph"
            ))
        })
    }

    pub(super) fn numeric(&self, name: &str, step: &str) -> Result<String> {
        let v = self.column(name, step)?;
        if v.text {
            return Err(Error::internal(format!(
                "export: step {step} takes \"{name}\" as a number"
            )));
        }
        Ok(v.tensor)
    }

    pub(super) fn text(&self, name: &str, step: &str) -> Result<String> {
        let v = self.column(name, step)?;
        if !v.text {
            return Err(Error::internal(format!("export: step {step} takes \"{name}\" as text")));
        }
        Ok(v.tensor)
    }

    pub(super) fn set(&mut self, name: &str, tensor: String, text: bool) {
        self.columns.insert(name.to_string(), Value { tensor, text });
    }

    /// Where a float64 tensor is NaN: `not (x == x)` (tract types `IsNaN`'s output as its input's type).
    pub(super) fn is_nan_of(&mut self, x: &str, hint: &str) -> String {
        let same = self.node("Equal", &[x, x], hint, vec![]);
        self.node("Not", &[&same], hint, vec![])
    }

    /// A 0/1 float64 column from a boolean tensor.
    pub(super) fn flag(&mut self, boolean: &str, hint: &str) -> String {
        self.node("Cast", &[boolean], hint, vec![int_attr("to", DataType::Double as i64)])
    }

    /// Whether a text column is missing (the empty string).
    pub(super) fn text_missing(&mut self, x: &str, hint: &str) -> String {
        let empty = self.constant_strings("empty", &[""]);
        self.node("Equal", &[x, &empty], hint, vec![])
    }

    /// `LabelEncoder` from text to text: listed keys map to their values, anything else to `default`.
    pub(super) fn relabel(&mut self, x: &str, keys: &[&str], values: &[&str], default: &str, hint: &str) -> String {
        let attributes = vec![
            strings_attr("keys_strings", keys),
            strings_attr("values_strings", values),
            string_attr("default_string", default),
        ];
        self.label_encoder(x, attributes, hint)
    }

    /// `LabelEncoder` from text to float64 (ai.onnx.ml 4+: `values_tensor`), anything else to `default`.
    pub(super) fn codes(&mut self, x: &str, keys: &[&str], values: &[f64], default: f64, hint: &str) -> String {
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
pub(super) fn dim(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(super) fn int_attr(name: &str, v: i64) -> AttributeProto {
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

pub(super) fn tensor_attr(name: &str, t: TensorProto) -> AttributeProto {
    AttributeProto {
        name: Some(name.to_string()),
        r#type: Some(AttributeType::Tensor as i32),
        t: Some(t),
        ..Default::default()
    }
}

pub(super) fn doubles_tensor(dims: &[i64], values: &[f64]) -> TensorProto {
    TensorProto {
        dims: dims.to_vec(),
        data_type: Some(DataType::Double as i32),
        double_data: values.to_vec(),
        ..Default::default()
    }
}

pub(super) fn value_info(name: &str, elem: DataType, dims: &[Option<i64>]) -> ValueInfoProto {
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

/// expm1(x) to a few units in the last place (Kahan: (e − 1)·x / ln e with e = exp(x)); x where
/// e = 1, −1 where e − 1 = −1, and +inf where e overflows. ONNX has no Expm1.
pub(super) fn expm1(b: &mut Builder, x: &str, hint: &str) -> String {
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
pub(super) fn log1p(b: &mut Builder, u: &str, hint: &str) -> String {
    let one = b.constant_doubles("one", &[1], &[1.0]);
    let w = b.node("Add", &[u, &one], hint, vec![]);
    let ln = b.node("Log", &[&w], hint, vec![]);
    let wm1 = b.node("Sub", &[&w, &one], hint, vec![]);
    let ratio = b.node("Div", &[u, &wm1], hint, vec![]);
    let goldberg = b.node("Mul", &[&ln, &ratio], hint, vec![]);
    let is_one = b.node("Equal", &[&w, &one], hint, vec![]);
    b.node("Where", &[&is_one, u, &goldberg], hint, vec![])
}
