//! The fitted contract: what a run stores for each stage (its state and the digests of the data it
//! hands on), a fitted model's predictions, and the class order of a classifier. The executor fits and
//! writes it; predict, serve, export, report and reproduce only read it. Its JSON is the versioned
//! promise `OUTPUT_FORMAT` names.

pub mod runs;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Id;
use crate::error::{Error, Result};
use crate::frame::{ColumnType, Frame};
pub use crate::models::classes::{Classes, labels_of};
use crate::models::{self, Model};
use crate::stages::{self, analyse, power_transform, split};
use crate::vocab::TargetTransform;

pub const OUTPUT_FORMAT: u32 = 1;

/// Digest and shape of one frame a stage produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameDigest {
    pub rows: usize,
    pub columns: usize,
    pub digest: Id,
}

impl FrameDigest {
    pub fn of(frame: &Frame) -> FrameDigest {
        FrameDigest {
            rows: frame.n_rows(),
            columns: frame.columns.len(),
            digest: frame.digest(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    pub target_transform: TargetTransform,
    /// λ of a Box-Cox or Yeo-Johnson target transform, fitted on the train target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_lambda: Option<f64>,
    pub model: Model,
    /// `[cv]`: the fold scores of the estimator (of each `[grid]` candidate, and which was chosen).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cv: Option<CvReport>,
}

/// Cross-validation on the train rows, as the train stage records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CvReport {
    pub metric: String,
    pub folds: u64,
    pub candidates: Vec<CandidateScore>,
    /// The candidate fitted on all train rows: the best mean score, the first of equals (as
    /// scikit-learn's `GridSearchCV` ranks them).
    pub chosen: usize,
}

/// One candidate's scores: its searched parameters (none without a grid), each fold's score, their mean
/// and population standard deviation (scikit-learn's `mean_test_score`, `std_test_score`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidateScore {
    pub params: BTreeMap<String, serde_json::Value>,
    pub scores: Vec<f64>,
    pub mean: f64,
    pub std: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluateState {
    pub test: BTreeMap<String, f64>,
    pub train: BTreeMap<String, f64>,
    /// Digest of the test predictions' IEEE-754 bits, in row order (a classifier's: its probabilities).
    pub test_predictions: Id,
    /// A classifier's confusion matrix on the test rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confusion: Option<Confusion>,
}

/// `matrix[t][p]`: test rows of true label `labels[t]` predicted as `labels[p]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confusion {
    pub labels: Vec<String>,
    pub matrix: Vec<Vec<u64>>,
}

/// A model's predictions for some rows.
#[derive(Debug, Clone, PartialEq)]
pub enum Predictions {
    /// A regressor's values, on the original target scale.
    Values(Vec<f64>),
    /// A classifier's predicted class (index into its classes) and row-major probabilities.
    Classes {
        predicted: Vec<usize>,
        proba: Vec<f64>,
        n_classes: usize,
    },
}

impl Predictions {
    pub fn len(&self) -> usize {
        match self {
            Predictions::Values(v) => v.len(),
            Predictions::Classes { predicted, .. } => predicted.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes a prediction's content id covers: IEEE-754 bits, little-endian, in row order (a
    /// classifier's probabilities, which decide its classes).
    pub fn to_bytes(&self) -> Vec<u8> {
        let floats = match self {
            Predictions::Values(v) => v,
            Predictions::Classes { proba, .. } => proba,
        };
        floats.iter().flat_map(|p| p.to_le_bytes()).collect()
    }

    /// Appends `other`'s rows (of the same model). Predictions of another kind, or of another number of
    /// classes, are an error: their rows would be dropped or misread.
    pub fn extend(&mut self, other: Predictions) -> Result<()> {
        match (self, other) {
            (Predictions::Values(a), Predictions::Values(b)) => a.extend(b),
            (
                Predictions::Classes {
                    predicted,
                    proba,
                    n_classes,
                },
                Predictions::Classes {
                    predicted: p2,
                    proba: q2,
                    n_classes: n2,
                },
            ) if *n_classes == n2 => {
                predicted.extend(p2);
                proba.extend(q2);
            }
            (this, other) => {
                return Err(Error::internal(format!(
                    "cannot join {} to {}: the predictions of one model have one shape",
                    other.shape(),
                    this.shape()
                )));
            }
        }
        Ok(())
    }

    /// What the predictions are, for messages: "values" or "probabilities of N classes".
    fn shape(&self) -> String {
        match self {
            Predictions::Values(_) => "values".to_string(),
            Predictions::Classes { n_classes, .. } => format!("probabilities of {n_classes} classes"),
        }
    }

    /// Floats per row in `to_bytes`: 1, or a classifier's number of classes.
    pub fn floats_per_row(&self) -> usize {
        match self {
            Predictions::Values(_) => 1,
            Predictions::Classes { n_classes, .. } => *n_classes,
        }
    }

    /// Row `i` alone.
    #[must_use]
    pub fn row(&self, i: usize) -> Predictions {
        match self {
            Predictions::Values(v) => Predictions::Values(vec![v[i]]),
            Predictions::Classes {
                predicted,
                proba,
                n_classes,
            } => Predictions::Classes {
                predicted: vec![predicted[i]],
                proba: proba[i * n_classes..(i + 1) * n_classes].to_vec(),
                n_classes: *n_classes,
            },
        }
    }

    /// Row `i`'s probabilities, for a classifier.
    pub fn row_proba(&self, i: usize) -> Option<&[f64]> {
        match self {
            Predictions::Values(_) => None,
            Predictions::Classes { proba, n_classes, .. } => Some(&proba[i * n_classes..(i + 1) * n_classes]),
        }
    }
}

/// What a stage learned or computed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "stage", rename_all = "snake_case")]
pub enum StageState {
    Gather {
        schema: Vec<(String, ColumnType)>,
        /// Text columns that look numeric but for a few values (warned about on every run). Left out of
        /// the output when empty, so clean data's gather output is what it always was.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        suspect_text: Vec<crate::frame::StrayText>,
    },
    Split(split::Fitted),
    Analyse(analyse::Profile),
    Step(stages::Fitted),
    Train(TrainState),
    Evaluate(EvaluateState),
}

/// A stage's output object: its state and the digests of the data it hands on (`all` before the
/// split, `train` and `test` after).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageOutput {
    pub kind: String,
    pub format: u32,
    pub state: StageState,
    pub data: BTreeMap<String, FrameDigest>,
}

impl StageOutput {
    pub fn new(state: StageState, data: BTreeMap<String, FrameDigest>) -> StageOutput {
        StageOutput {
            kind: "stage-output".into(),
            format: OUTPUT_FORMAT,
            state,
            data,
        }
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self).map_err(|e| Error::internal(format!("cannot serialise stage output: {e}")))
    }

    pub fn from_bytes(bytes: &[u8], id: &Id) -> Result<StageOutput> {
        serde_json::from_slice(bytes)
            .map_err(|e| Error::internal(format!("object {id} is not a stage output of this mlpipe version: {e}")))
    }
}

/// Predictions of a fitted model: a regressor's on the original target scale, a classifier's classes
/// and probabilities.
pub fn predict(state: &TrainState, frame: &Frame) -> Result<Predictions> {
    let raw = match state.model.output(frame)? {
        models::Output::Proba(proba) => {
            let n_classes = state.model.classes().map_or(0, |(c, _)| c.len());
            return Ok(Predictions::Classes {
                predicted: models::argmax_rows(&proba, n_classes),
                proba,
                n_classes,
            });
        }
        models::Output::Values(v) => v,
    };
    let lambda = state.target_lambda.unwrap_or(0.0);
    Ok(Predictions::Values(match state.target_transform {
        TargetTransform::None => raw,
        TargetTransform::Log => raw.into_iter().map(f64::exp).collect(),
        TargetTransform::Log1p => raw.into_iter().map(f64::exp_m1).collect(),
        TargetTransform::BoxCox => raw
            .into_iter()
            .map(|v| power_transform::inverse_box_cox(v, lambda))
            .collect(),
        TargetTransform::YeoJohnson => raw
            .into_iter()
            .map(|v| power_transform::inverse_yeo_johnson(v, lambda))
            .collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classes(predicted: Vec<usize>, n_classes: usize) -> Predictions {
        let proba = predicted
            .iter()
            .flat_map(|&p| (0..n_classes).map(move |c| if c == p { 1.0 } else { 0.0 }))
            .collect();
        Predictions::Classes {
            predicted,
            proba,
            n_classes,
        }
    }

    #[test]
    fn mismatched_predictions_are_an_error_not_silently_dropped() {
        let mut values = Predictions::Values(vec![1.0]);
        values.extend(Predictions::Values(vec![2.0, 3.0])).unwrap();
        assert_eq!(values, Predictions::Values(vec![1.0, 2.0, 3.0]));
        let mut two = classes(vec![0], 2);
        two.extend(classes(vec![1], 2)).unwrap();
        assert_eq!(two, classes(vec![0, 1], 2));

        let err = values.extend(classes(vec![1], 2)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot join probabilities of 2 classes to values: the predictions of one model have one shape"
        );
        let err = two.extend(Predictions::Values(vec![4.0])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot join values to probabilities of 2 classes: the predictions of one model have one shape"
        );
        let err = two.extend(classes(vec![2], 3)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot join probabilities of 3 classes to probabilities of 2 classes: the predictions of one model have one shape"
        );
        // Nothing was appended by a refused join.
        assert_eq!(values.len(), 3);
        assert_eq!(two, classes(vec![0, 1], 2));
    }
}
