//! The model as ONNX: linear models, tree ensembles (ai.onnx.ml `TreeEnsemble`), classifiers'
//! probabilities and labels, k-means, stacking and voting ensembles; then the inverse target transform.

use super::ML;
use super::graph::{Builder, dim, doubles_tensor, expm1, int_attr, log1p, tensor_attr};
use crate::error::{Error, Result};
use crate::export::proto::{AttributeProto, TensorProto, attribute_proto::AttributeType, tensor_proto::DataType};
use crate::fitted::TrainState;
use crate::models::{ClassScores, Model, tree};
use crate::vocab::TargetTransform;

/// The model's inputs side by side: [N, p] float64 in the model's feature order.
fn design(b: &mut Builder, features: &[String]) -> Result<String> {
    let mut parts = Vec::with_capacity(features.len());
    for f in features {
        parts.push(b.numeric(f, "train")?);
    }
    let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
    Ok(b.node("Concat", &refs, "design", vec![int_attr("axis", 1)]))
}

pub(super) type Outputs = Vec<(String, DataType, i64)>;

/// What a model computes, as a tensor: values [N, 1] (before any inverse target transform), class
/// probabilities [N, K], or cluster numbers [N, 1].
enum ModelOut {
    Values(String),
    Proba(String),
    Clusters(String),
}

/// The graph's outputs from the model's: `prediction` (and `probabilities`), and the doc string.
pub(super) fn add_model(b: &mut Builder, train: &TrainState) -> Result<(Outputs, String)> {
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
