//! Fitted models and their pure predictions: the stored [`Model`] (linear, trees, classifier, k-means
//! clusters or an ensemble of these) and what it computes for rows. Fitting lives in `fit.rs`; this is
//! what a stored train state holds and the predict path reads.

use serde::{Deserialize, Deserializer, Serialize};

use super::gram::Col;
use super::{kmeans, logistic, tree};
use crate::error::{Error, Result};
use crate::frame::{ColumnData, Frame};

/// A fitted model: a classifier, or a regressor that is linear (coefficients) or trees, k-means clusters,
/// or an ensemble of these.
///
/// Stored as the variant's struct alone, with no tag (`untagged`: the bytes of every stored model stay as
/// they were). Reading one back does not try the variants in order: it looks at which of the fields only
/// one shape has are present, and the document must have exactly one of them:
///
/// | field          | shape                    |
/// |----------------|--------------------------|
/// | `members`      | [`Model::Ensemble`]      |
/// | `centres`      | [`Model::Clusters`]      |
/// | `scores`       | [`Model::Classifier`]    |
/// | `coefficients` | [`Model::Linear`]        |
/// | `trees`        | [`Model::Trees`]         |
///
/// None of them, or more than one, is an error naming the fields found; the chosen shape then reads the
/// document by its own rules (the ensemble, clusters and classifier deny unknown fields).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Model {
    Ensemble(EnsembleModel),
    Clusters(ClusterModel),
    Classifier(ClassifierModel),
    Linear(LinearModel),
    Trees(TreeModel),
}

/// The field that tells each shape of a stored [`Model`] apart (see there), and the shape's name.
const SHAPES: [(&str, &str); 5] = [
    ("members", "ensemble"),
    ("centres", "clusters"),
    ("scores", "classifier"),
    ("coefficients", "linear"),
    ("trees", "trees"),
];

impl<'de> Deserialize<'de> for Model {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let value = serde_json::Value::deserialize(deserializer)?;
        let serde_json::Value::Object(fields) = &value else {
            let kind = match value {
                serde_json::Value::Null => "null",
                serde_json::Value::Bool(_) => "a boolean",
                serde_json::Value::Number(_) => "a number",
                serde_json::Value::String(_) => "a string",
                serde_json::Value::Array(_) => "an array",
                serde_json::Value::Object(_) => "an object",
            };
            return Err(D::Error::custom(format!(
                "a stored model must be an object, found {kind}"
            )));
        };
        let found: Vec<&str> = SHAPES
            .iter()
            .map(|(field, _)| *field)
            .filter(|field| fields.contains_key(*field))
            .collect();
        let model = match found.as_slice() {
            ["members"] => serde_json::from_value(value).map(Model::Ensemble),
            ["centres"] => serde_json::from_value(value).map(Model::Clusters),
            ["scores"] => serde_json::from_value(value).map(Model::Classifier),
            ["coefficients"] => serde_json::from_value(value).map(Model::Linear),
            ["trees"] => serde_json::from_value(value).map(Model::Trees),
            _ => {
                let expected: Vec<String> = SHAPES.iter().map(|(f, s)| format!("`{f}` ({s})")).collect();
                let keys: Vec<&str> = fields.keys().map(String::as_str).collect();
                return Err(D::Error::custom(format!(
                    "a stored model has exactly one of {}; this one has {} (fields: {})",
                    expected.join(", "),
                    if found.is_empty() {
                        "none".to_string()
                    } else {
                        found.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(" and ")
                    },
                    keys.join(", ")
                )));
            }
        };
        model.map_err(D::Error::custom)
    }
}

/// What a model computes for some rows: values (a regressor, before any inverse target transform) or
/// row-major class probabilities (a classifier).
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    Values(Vec<f64>),
    Proba(Vec<f64>),
}

impl Model {
    pub fn estimator(&self) -> &str {
        match self {
            Model::Ensemble(m) => &m.estimator,
            Model::Clusters(m) => &m.estimator,
            Model::Classifier(m) => &m.estimator,
            Model::Linear(m) => &m.estimator,
            Model::Trees(m) => &m.estimator,
        }
    }

    pub fn features(&self) -> &[String] {
        match self {
            Model::Ensemble(m) => &m.features,
            Model::Clusters(m) => &m.features,
            Model::Classifier(m) => &m.features,
            Model::Linear(m) => &m.features,
            Model::Trees(m) => &m.features,
        }
    }

    /// The linear regressor, when it is one.
    pub fn linear(&self) -> Option<&LinearModel> {
        match self {
            Model::Linear(m) => Some(m),
            _ => None,
        }
    }

    /// The single classifier, when it is one (an ensemble of classifiers is not).
    pub fn classifier(&self) -> Option<&ClassifierModel> {
        match self {
            Model::Classifier(m) => Some(m),
            _ => None,
        }
    }

    /// A classifier's classes (in order) and whether they are numbers.
    pub fn classes(&self) -> Option<(&[String], bool)> {
        match self {
            Model::Classifier(m) => Some((&m.classes, m.numeric_labels)),
            Model::Ensemble(m) => m.classes.as_deref().map(|c| (c, m.numeric_labels)),
            _ => None,
        }
    }

    /// Values or class probabilities for every row of `frame`.
    pub fn output(&self, frame: &Frame) -> Result<Output> {
        match self {
            Model::Classifier(m) => m.predict_proba(frame).map(Output::Proba),
            Model::Ensemble(m) => m.output(frame),
            Model::Clusters(m) => Ok(Output::Values(m.assign(frame)?.into_iter().map(|c| c as f64).collect())),
            Model::Linear(m) => m.predict(frame).map(Output::Values),
            Model::Trees(m) => m.predict(frame).map(Output::Values),
        }
    }

    /// A regressor's predictions (a classifier predicts through `output`).
    pub fn predict(&self, frame: &Frame) -> Result<Vec<f64>> {
        match self.output(frame)? {
            Output::Values(v) => Ok(v),
            Output::Proba(_) => Err(Error::internal("a classifier has no numeric prediction")),
        }
    }

    /// Feature importances of a tree model, under `features()`.
    pub fn importances(&self) -> Option<&[f64]> {
        match self {
            Model::Trees(m) => Some(&m.importances),
            Model::Classifier(m) if !m.importances.is_empty() => Some(&m.importances),
            _ => None,
        }
    }
}

/// A fitted stacking or voting ensemble.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnsembleModel {
    pub estimator: String,
    pub features: Vec<String>,
    /// The base models, fitted on every train row, by name.
    pub members: Vec<(String, Model)>,
    /// Stacking: the model fitted on the members' out-of-fold predictions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_model: Option<Box<Model>>,
    /// Voting: each member's weight.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weights: Vec<f64>,
    /// A classifier ensemble's classes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<Vec<String>>,
    #[serde(default)]
    pub numeric_labels: bool,
}

impl EnsembleModel {
    fn output(&self, frame: &Frame) -> Result<Output> {
        let outputs = self
            .members
            .iter()
            .map(|(_, m)| m.output(frame))
            .collect::<Result<Vec<Output>>>()?;
        let n_classes = self.classes.as_ref().map_or(0, Vec::len);
        if let Some(final_model) = &self.final_model {
            let meta = meta_features(&self.members, &outputs, n_classes);
            let frame = frame_of(meta, frame.n_rows(), frame);
            return final_model.output(&frame);
        }
        // Voting: the weighted mean, summed in member order, divided by the weights' sum (numpy's
        // `average`).
        let total: f64 = self.weights.iter().sum();
        let mut mean: Option<Vec<f64>> = None;
        for (out, w) in outputs.iter().zip(&self.weights) {
            let values = match out {
                Output::Values(v) | Output::Proba(v) => v,
            };
            match &mut mean {
                None => mean = Some(values.iter().map(|v| v * w).collect()),
                Some(m) => {
                    for (a, v) in m.iter_mut().zip(values) {
                        *a += v * w;
                    }
                }
            }
        }
        let mean: Vec<f64> = mean.unwrap_or_default().into_iter().map(|v| v / total).collect();
        Ok(if self.classes.is_some() {
            Output::Proba(mean)
        } else {
            Output::Values(mean)
        })
    }
}

/// The final estimator's features: each member's prediction (`name`), or for classes its
/// probabilities (`name`: the positive class's, for two; `name_class` per class, for more), as
/// scikit-learn's stacking passes them on.
pub(super) fn meta_features(
    members: &[(String, Model)],
    outputs: &[Output],
    n_classes: usize,
) -> Vec<(String, Vec<f64>)> {
    let mut meta = Vec::new();
    for ((name, model), out) in members.iter().zip(outputs) {
        match out {
            Output::Values(v) => meta.push((name.clone(), v.clone())),
            Output::Proba(p) if n_classes == 2 => meta.push((name.clone(), p.chunks(2).map(|r| r[1]).collect())),
            Output::Proba(p) => {
                let labels = model.classes().map(|(l, _)| l.to_vec()).unwrap_or_default();
                for (k, label) in labels.iter().enumerate() {
                    meta.push((format!("{name}_{label}"), p.chunks(n_classes).map(|r| r[k]).collect()));
                }
            }
        }
    }
    meta
}

/// A frame of numeric columns, its rows numbered as `like`'s.
fn frame_of(columns: Vec<(String, Vec<f64>)>, rows: usize, like: &Frame) -> Frame {
    Frame {
        columns: columns
            .into_iter()
            .map(|(name, v)| crate::frame::Column {
                name,
                data: ColumnData::Numeric(v.into()),
            })
            .collect(),
        lines: like.lines.iter().copied().take(rows).collect(),
        source: like.source.clone(),
        first_row: like.first_row,
    }
}

/// A fitted tree model: `init + Σ learning_rate × tree(x)` (a single tree: init 0, rate 1), or the mean
/// of the trees (a forest).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TreeModel {
    pub estimator: String,
    pub features: Vec<String>,
    pub init: f64,
    pub learning_rate: f64,
    pub trees: Vec<tree::Tree>,
    /// scikit-learn's `feature_importances_`, under `features`.
    pub importances: Vec<f64>,
    /// A forest: the prediction is the trees' sum divided by their number (as scikit-learn sums them).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub average: bool,
}

impl TreeModel {
    pub fn predict(&self, frame: &Frame) -> Result<Vec<f64>> {
        let columns = model_columns(frame, &self.features)?;
        Ok((0..frame.n_rows())
            .map(|i| {
                if self.average {
                    let sum: f64 = self.trees.iter().map(|t| t.predict_row(|c| columns[c][i])).sum();
                    return sum / self.trees.len() as f64;
                }
                let mut f = self.init;
                for t in &self.trees {
                    f += self.learning_rate * t.predict_row(|c| columns[c][i]);
                }
                f
            })
            .collect())
    }
}

/// How a classifier turns a row into class scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClassScores {
    /// Logistic: one coefficient row for two classes (the second is positive), else one per class.
    Linear {
        coefficients: Vec<Vec<f64>>,
        intercepts: Vec<f64>,
    },
    /// A tree or a forest: the mean of the leaves' class fractions.
    Trees { trees: Vec<tree::Tree> },
    /// Gradient boosting: raw scores `init + Σ learning_rate × tree(x)` per tree slot, then the
    /// logistic link (one slot for two classes, else one per class).
    Boosted {
        init: Vec<f64>,
        learning_rate: f64,
        rounds: Vec<Vec<tree::Tree>>,
    },
}

/// A fitted classifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifierModel {
    pub estimator: String,
    pub features: Vec<String>,
    /// The class labels in order (scikit-learn's `classes_`): numbers sorted as numbers, text as text.
    pub classes: Vec<String>,
    /// Whether the labels are numbers (written back as numbers) or text.
    pub numeric_labels: bool,
    pub scores: ClassScores,
    /// Tree models: scikit-learn's `feature_importances_`, under `features`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub importances: Vec<f64>,
}

impl ClassifierModel {
    /// Class probabilities, row-major: row i's are `[i·K, (i + 1)·K)`.
    pub fn predict_proba(&self, frame: &Frame) -> Result<Vec<f64>> {
        let columns = model_columns(frame, &self.features)?;
        let k = self.classes.len();
        let n = frame.n_rows();
        let mut out = vec![0.0; n * k];
        match &self.scores {
            ClassScores::Linear {
                coefficients,
                intercepts,
            } => {
                let mut z = vec![0.0; coefficients.len()];
                for (i, row) in out.chunks_mut(k).enumerate() {
                    for (zk, (w, b)) in z.iter_mut().zip(coefficients.iter().zip(intercepts)) {
                        *zk = w.iter().zip(&columns).map(|(w, x)| w * x[i]).sum::<f64>() + b;
                    }
                    logistic::probabilities(&z, row);
                }
            }
            ClassScores::Trees { trees } => {
                for (i, row) in out.chunks_mut(k).enumerate() {
                    for t in trees {
                        let leaf = t.leaf(|c| columns[c][i]);
                        for (o, p) in row.iter_mut().zip(t.leaf_distribution(leaf, k)) {
                            *o += p;
                        }
                    }
                    for o in row.iter_mut() {
                        *o /= trees.len() as f64;
                    }
                }
            }
            ClassScores::Boosted {
                init,
                learning_rate,
                rounds,
            } => {
                let mut z = init.clone();
                for (i, row) in out.chunks_mut(k).enumerate() {
                    z.copy_from_slice(init);
                    for trees in rounds {
                        for (zk, t) in z.iter_mut().zip(trees) {
                            *zk += learning_rate * t.predict_row(|c| columns[c][i]);
                        }
                    }
                    logistic::probabilities(&z, row);
                }
            }
        }
        Ok(out)
    }
}

/// The index of the largest probability in each row of `proba` (the first of equals, as numpy's
/// `argmax`).
pub fn argmax_rows(proba: &[f64], k: usize) -> Vec<usize> {
    proba
        .chunks(k)
        .map(|row| {
            let mut best = 0;
            for (c, p) in row.iter().enumerate() {
                if *p > row[best] {
                    best = c;
                }
            }
            best
        })
        .collect()
}

/// The model's feature columns in its order, numeric and complete. One pass indexes the frame's columns
/// by name: a design has hundreds of features, and a search per feature would dominate single-record
/// scoring.
fn model_columns<'f>(frame: &'f Frame, features: &[String]) -> Result<Vec<&'f [f64]>> {
    Ok(model_inputs(frame, features)?.into_iter().map(Col::values).collect())
}

/// As [`model_columns`], indicator columns left as bits (for the models that read them so).
fn model_inputs<'f>(frame: &'f Frame, features: &[String]) -> Result<Vec<Col<'f>>> {
    let index: crate::frame::FastMap<&str, usize> = frame
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.as_str(), i))
        .collect();
    features
        .iter()
        .map(|name| {
            let x = match index.get(name.as_str()) {
                Some(&i) => match &frame.columns[i].data {
                    crate::frame::ColumnData::Numeric(v) => Col::Column(v),
                    crate::frame::ColumnData::Categorical(_) => Col::Slice(frame.numeric(name)?),
                },
                None => Col::Slice(frame.numeric(name)?),
            };
            if let Some(r) = x.first_missing() {
                return Err(Error::data(format!(
                    "feature \"{name}\" is missing at line {} of {}; the fitted pipeline has no imputer for it",
                    frame.lines[r], frame.source
                ))
                .with_hint("add an [[impute]] step covering this column and re-run the pipeline; for a column a transform step made (an expression dividing by zero), give its missing rows a value in that step, e.g. COALESCE(…, 0)"));
            }
            Ok(x)
        })
        .collect()
}

/// A fitted linear model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearModel {
    pub estimator: String,
    pub features: Vec<String>,
    pub coefficients: Vec<f64>,
    pub intercept: f64,
}

impl LinearModel {
    /// Predictions for every row: intercept, then each feature's term added in feature order.
    pub fn predict(&self, frame: &Frame) -> Result<Vec<f64>> {
        let columns = model_inputs(frame, &self.features)?;
        let mut out = vec![self.intercept; frame.n_rows()];
        for (x, w) in columns.iter().zip(&self.coefficients) {
            match x.bits() {
                Some(bits) => {
                    for (o, bit) in out.iter_mut().zip(bits.iter()) {
                        *o += w * crate::frame::indicator_value(bit);
                    }
                }
                None => {
                    for (o, v) in out.iter_mut().zip(x.values()) {
                        *o += w * v;
                    }
                }
            }
        }
        Ok(out)
    }
}

/// A fitted k-means model: the cluster centres; a row's prediction is its nearest centre's index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterModel {
    pub estimator: String,
    pub features: Vec<String>,
    pub centres: Vec<Vec<f64>>,
    /// The train rows' inertia.
    pub inertia: f64,
}

impl ClusterModel {
    /// Each row's cluster (the nearest centre, the first of equals).
    pub fn assign(&self, frame: &Frame) -> Result<Vec<usize>> {
        let columns = model_columns(frame, &self.features)?;
        let points = kmeans::Points::from_columns(&columns);
        Ok((0..points.n())
            .map(|i| kmeans::nearest(&self.centres, points.row(i)).0)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linear() -> LinearModel {
        LinearModel {
            estimator: "ridge".into(),
            features: vec!["a".into(), "b".into()],
            coefficients: vec![0.5, -1.25],
            intercept: 3.0,
        }
    }

    fn trees() -> TreeModel {
        TreeModel {
            estimator: "random_forest".into(),
            features: vec!["a".into()],
            init: 0.0,
            learning_rate: 1.0,
            trees: Vec::new(),
            importances: vec![1.0],
            average: true,
        }
    }

    fn every_shape() -> Vec<Model> {
        let classifier = ClassifierModel {
            estimator: "logistic_regression".into(),
            features: vec!["a".into()],
            classes: vec!["x".into(), "y".into()],
            numeric_labels: false,
            scores: ClassScores::Linear {
                coefficients: vec![vec![0.25]],
                intercepts: vec![-0.5],
            },
            importances: Vec::new(),
        };
        let clusters = ClusterModel {
            estimator: "k_means".into(),
            features: vec!["a".into()],
            centres: vec![vec![1.0], vec![2.0]],
            inertia: 0.5,
        };
        let ensemble = EnsembleModel {
            estimator: "stacking".into(),
            features: vec!["a".into(), "b".into()],
            members: vec![
                ("l".into(), Model::Linear(linear())),
                ("t".into(), Model::Trees(trees())),
            ],
            final_model: Some(Box::new(Model::Linear(linear()))),
            weights: Vec::new(),
            classes: None,
            numeric_labels: false,
        };
        vec![
            Model::Ensemble(ensemble),
            Model::Clusters(clusters),
            Model::Classifier(classifier),
            Model::Linear(linear()),
            Model::Trees(trees()),
        ]
    }

    /// Each shape is stored as its struct alone (no tag: the stored bytes did not change) and reads back
    /// as the same shape.
    #[test]
    fn every_model_shape_is_stored_untagged_and_reads_back_as_itself() {
        for model in every_shape() {
            let json = serde_json::to_string(&model).unwrap();
            let alone = match &model {
                Model::Ensemble(m) => serde_json::to_string(m),
                Model::Clusters(m) => serde_json::to_string(m),
                Model::Classifier(m) => serde_json::to_string(m),
                Model::Linear(m) => serde_json::to_string(m),
                Model::Trees(m) => serde_json::to_string(m),
            }
            .unwrap();
            assert_eq!(json, alone);
            assert_eq!(serde_json::from_str::<Model>(&json).unwrap(), model, "{json}");
        }
    }

    /// Before, the variants were tried in order, so a linear model's document that also carried `trees`
    /// read as linear (its extra field ignored): its meaning hung on the order of the variants.
    #[test]
    fn a_model_document_with_two_shapes_is_refused_not_read_by_variant_order() {
        let mut doc = serde_json::to_value(linear()).unwrap();
        doc["trees"] = serde_json::json!([]);
        let err = serde_json::from_value::<Model>(doc).unwrap_err().to_string();
        assert_eq!(
            err,
            "a stored model has exactly one of `members` (ensemble), `centres` (clusters), `scores` (classifier), \
             `coefficients` (linear), `trees` (trees); this one has `coefficients` and `trees` \
             (fields: coefficients, estimator, features, intercept, trees)"
        );
    }

    #[test]
    fn a_model_document_with_no_shape_is_refused_naming_its_fields() {
        let err = serde_json::from_str::<Model>(r#"{"estimator":"ridge","features":["a"]}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with("this one has none (fields: estimator, features)"),
            "{err}"
        );
        let err = serde_json::from_str::<Model>("[1, 2]").unwrap_err().to_string();
        assert_eq!(err, "a stored model must be an object, found an array");
    }

    /// The chosen shape still reads by its own rules: a classifier denies fields it does not know.
    #[test]
    fn a_shape_with_an_unknown_field_is_refused_by_that_shape() {
        let mut doc = serde_json::to_value(&every_shape()[2]).unwrap();
        doc["extra"] = serde_json::json!(1);
        let err = serde_json::from_value::<Model>(doc).unwrap_err().to_string();
        assert!(err.starts_with("unknown field `extra`"), "{err}");
    }
}
