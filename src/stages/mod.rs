//! Operators: each learns a state on train rows (`fit`, seeded) and applies it unchanged (`apply`, pure).
//!
//! Adding an operator: one file here with its params (parsed from TOML), its fitted state, `fit` and
//! `apply`; then one line in the `operators!` table below (variant, name, accepted column types, params
//! type, parse call, param names) — the enum, its name, group, parse dispatch and each group's list come
//! from that line — one line in `fitted!` if its state is new, and its arm in [`fit_step`] (the compiler
//! asks for it).

pub mod analyse;
pub mod cap;
pub mod combine;
pub mod count_frequency;
pub mod datetime;
pub mod discretise;
pub mod end_tail;
pub mod expression;
pub mod impute;
pub mod mean_target;
pub mod mutual_info;
pub mod one_hot;
pub mod ordinal;
pub mod power_transform;
pub mod random_sample;
pub mod rare_label;
mod registry;
pub mod rows;
pub mod scale;
pub mod select;
pub mod split;
pub mod transform;
pub mod woe;
pub mod wrapper;

use std::collections::BTreeMap;

use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Location, Result};
use crate::frame::{ColumnType, Frame};
use crate::vocab::reader::{At, TableReader, quoted};
use crate::vocab::{ColumnKind, Columns};
pub use registry::{ParseInput, Registration};
use registry::{fitted, operators};

/// One configured step of the pipeline: the operator, the columns it applies to, and where it was
/// written (for errors only; never hashed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub name: String,
    pub group: Group,
    pub columns: Columns,
    pub exclude: Vec<String>,
    #[serde(flatten)]
    pub operator: Operator,
    #[serde(skip)]
    pub locations: StepLocations,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct StepLocations {
    pub step: Option<Location>,
    pub columns: BTreeMap<String, Location>,
}

/// The stage groups of a pipeline, run in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Group {
    Impute,
    Encode,
    Transform,
    Select,
}

impl Group {
    pub const ALL: [Group; 4] = [Group::Impute, Group::Encode, Group::Transform, Group::Select];
    pub fn name(self) -> &'static str {
        match self {
            Group::Impute => "impute",
            Group::Encode => "encode",
            Group::Transform => "transform",
            Group::Select => "select",
        }
    }
}

// The operator registry: one line per operator, group by group (each group's operators in the order its
// error messages list them). `Variant = "name", ACCEPTS, ParamsType, parse, param_names;` — `parse`
// reads the step's table (`p.table`; `p.task` and `p.name` are there too), `param_names` names the keys
// that params type reads. An operator without params is `Variant = "name", ACCEPTS;`. See `registry.rs`.
operators! {
    Impute {
        Median = "median", NUMERIC, impute::Params,
            |p| impute::Params::parse(p.table, impute::Strategy::Median), |_| vec!["add_indicator"];
        Mean = "mean", NUMERIC, impute::Params,
            |p| impute::Params::parse(p.table, impute::Strategy::Mean), |_| vec!["add_indicator"];
        MostFrequent = "most_frequent", ANY, impute::Params,
            |p| impute::Params::parse(p.table, impute::Strategy::MostFrequent), |_| vec!["add_indicator"];
        Constant = "constant", ANY, impute::Params,
            |p| impute::Params::parse(p.table, impute::Strategy::Constant), |_| vec!["add_indicator", "fill_value"];
        EndTail = "end_tail", NUMERIC, end_tail::Params,
            |p| end_tail::Params::parse(p.table), |_| end_tail::Params::NAMES.to_vec();
        RandomSample = "random_sample", ANY, random_sample::Params,
            |p| random_sample::Params::parse(p.table), |_| vec!["seed_by"];
        MissingIndicator = "missing_indicator", ANY;
        DropMissingRows = "drop_missing_rows", ANY, rows::MissingParams,
            |p| rows::MissingParams::parse(p.table), |_| vec!["at_predict"];
    }
    Encode {
        RareLabel = "rare_label", CATEGORICAL, rare_label::Params,
            |p| rare_label::Params::parse(p.table), |_| rare_label::Params::NAMES.to_vec();
        OneHot = "one_hot", CATEGORICAL, one_hot::Params,
            |p| one_hot::Params::parse(p.table), |_| one_hot::Params::NAMES.to_vec();
        Ordinal = "ordinal", CATEGORICAL, ordinal::Params,
            |p| ordinal::Params::parse(p.table), |_| ordinal::Params::NAMES.to_vec();
        CountFrequency = "count_frequency", CATEGORICAL, count_frequency::Params,
            |p| count_frequency::Params::parse(p.table), |_| count_frequency::Params::NAMES.to_vec();
        MeanTarget = "mean_target", CATEGORICAL, mean_target::Params,
            |p| mean_target::Params::parse(p.table), |_| mean_target::Params::NAMES.to_vec();
        Woe = "woe", CATEGORICAL, woe::Params,
            |p| woe::Params::parse(p.table), |_| woe::Params::NAMES.to_vec();
    }
    Select {
        DropConstant = "drop_constant", ANY, select::Rule,
            |p| select::Rule::parse(p.table, p.name), select::Rule::param_names;
        DropDuplicates = "drop_duplicates", ANY, select::Rule,
            |p| select::Rule::parse(p.table, p.name), select::Rule::param_names;
        DropCorrelated = "drop_correlated", NUMERIC, select::Rule,
            |p| select::Rule::parse(p.table, p.name), select::Rule::param_names;
        DropMissing = "drop_missing", ANY, select::Rule,
            |p| select::Rule::parse(p.table, p.name), select::Rule::param_names;
        SelectKBest = "select_k_best", NUMERIC, select::Rule,
            |p| select::Rule::parse(p.table, p.name), select::Rule::param_names;
        Rfe = "rfe", NUMERIC, wrapper::Params,
            |p| wrapper::Params::parse(p.table, false), |w| w.param_names(false);
        ForwardSelection = "forward_selection", NUMERIC, wrapper::Params,
            |p| wrapper::Params::parse(p.table, true), |w| w.param_names(true);
        SelectFromModel = "select_from_model", NUMERIC, wrapper::ModelParams,
            |p| wrapper::ModelParams::parse(p.table, p.task), wrapper::ModelParams::param_names;
    }
    Transform {
        StandardScaler = "standard_scaler", NUMERIC, scale::Params,
            |p| scale::Params::parse(p.table, scale::Kind::Standard), |_| Vec::new();
        MinMaxScaler = "min_max_scaler", NUMERIC, scale::Params,
            |p| scale::Params::parse(p.table, scale::Kind::MinMax), |_| scale::Params::NAMES.to_vec();
        RobustScaler = "robust_scaler", NUMERIC, scale::Params,
            |p| scale::Params::parse(p.table, scale::Kind::Robust), |_| Vec::new();
        Log = "log", NUMERIC, transform::Function,
            |p| transform::Function::parse_log(p.table), |_| vec!["base", "offset"];
        Power = "power", NUMERIC, transform::Function,
            |p| transform::Function::parse_power(p.table), |_| vec!["exp"];
        Reciprocal = "reciprocal", NUMERIC, transform::Function,
            |_| Ok(transform::Function::Reciprocal), |_| Vec::new();
        Cap = "cap", NUMERIC, cap::Params,
            |p| cap::Params::parse(p.table), |_| cap::Params::NAMES.to_vec();
        Discretise = "discretise", NUMERIC, discretise::Params,
            |p| discretise::Params::parse(p.table), |_| discretise::Params::NAMES.to_vec();
        Combine = "combine", NUMERIC, combine::CombineParams,
            |p| combine::CombineParams::parse(p.table), |_| combine::CombineParams::NAMES.to_vec();
        Relative = "relative", NUMERIC, combine::RelativeParams,
            |p| combine::RelativeParams::parse(p.table), |_| combine::RelativeParams::NAMES.to_vec();
        BoxCox = "box_cox", NUMERIC;
        YeoJohnson = "yeo_johnson", NUMERIC;
        Trim = "trim", NUMERIC, rows::TrimParams,
            |p| rows::TrimParams::parse(p.table), |_| rows::TrimParams::NAMES.to_vec();
        DatetimeFeatures = "datetime_features", CATEGORICAL, datetime::FeatureParams,
            |p| datetime::FeatureParams::parse(p.table), |_| datetime::FeatureParams::NAMES.to_vec();
        DatetimeDifference = "datetime_difference", CATEGORICAL, datetime::DifferenceParams,
            |p| datetime::DifferenceParams::parse(p.table), |_| datetime::DifferenceParams::NAMES.to_vec();
        Expression = "expression", ANY, expression::Params,
            |p| expression::Params::parse(p.table), |_| expression::Params::NAMES.to_vec();
    }
}

impl Operator {
    /// Reads a step's operator: `name` must be registered in `group`; its parse reads the rest of `t`.
    pub fn parse(
        group: Group,
        name: &At<String>,
        t: &mut TableReader<'_, '_>,
        task: crate::vocab::Task,
    ) -> Result<Operator> {
        let op = name.value.as_str();
        let Some(registered) = Operator::REGISTERED.iter().find(|r| r.group == group && r.name == op) else {
            let home = Operator::REGISTERED.iter().find(|r| r.name == op).map(|r| r.group);
            let mut err = Error::spec(
                format!(
                    "unknown operator \"{op}\" in [[{}]] (known: {})",
                    group.name(),
                    quoted(group.operators())
                ),
                Some(name.location.clone()),
            );
            if let Some(home) = home {
                err = err.with_hint(format!("\"{op}\" belongs in [[{}]]", home.name()));
            } else if let Some(h) = crate::error::did_you_mean(op, group.operators().iter().copied()) {
                err = err.with_hint(h);
            }
            return Err(err);
        };
        (registered.parse)(ParseInput {
            table: t,
            task,
            name: registered.name,
        })
    }
}

// What fitting a step learned, one line per kind of state (several operators may share one): the `Fitted`
// enum, tagged by the variant's snake_case name, and its `apply`.
fitted! {
    Impute(impute::Fitted),
    RareLabel(rare_label::Fitted),
    OneHot(one_hot::Fitted),
    Ordinal(ordinal::Fitted),
    Scale(scale::Fitted),
    Transform(transform::Fitted),
    Expression(expression::Fitted),
    Cap(cap::Fitted),
    CountFrequency(count_frequency::Fitted),
    MeanTarget(mean_target::Fitted),
    Select(select::Fitted),
    Discretise(discretise::Fitted),
    Combine(combine::Fitted),
    Power(power_transform::Fitted),
    Rows(rows::Fitted),
    RandomSample(random_sample::Fitted),
    Datetime(datetime::Fitted),
    Woe(woe::Fitted),
}

/// What a fit may use besides the data: its own random stream.
pub struct FitContext {
    pub rng: ChaCha20Rng,
    /// The pipeline's task: what a step that fits an estimator fits.
    pub task: crate::vocab::Task,
    /// The target column's name; encoders that learn from the target read it from the train frame.
    pub target: String,
    /// The stage's 32-byte seed (the same one that seeds `rng`), for steps that key pure draws on it.
    pub seed: [u8; 32],
}

impl FitContext {
    /// The train target, complete, for encoders that learn from it.
    pub fn target_values<'f>(&self, train: &'f Frame, step: &str) -> Result<&'f [f64]> {
        let y = match train.numeric(&self.target) {
            Ok(y) => y,
            Err(_) if train.column(&self.target).is_some() => {
                return Err(Error::data(format!(
                    "step {step} learns from a numeric target, but target \"{}\" holds text labels",
                    self.target
                ))
                .with_hint("write a two-class target as 0/1 in the data, or encode with count_frequency or one_hot"));
            }
            Err(e) => return Err(e),
        };
        if let Some(r) = y.iter().position(|v| v.is_nan()) {
            return Err(Error::data(format!(
                "step {step} learns from the target, but \"{}\" is missing at line {} of {}",
                self.target, train.lines[r], train.source
            )));
        }
        Ok(y)
    }
}

impl Fitted {
    /// Applies the state to the train split: as `apply`, except that row filters remove rows there.
    pub fn apply_train(&self, frame: Frame) -> Result<Frame> {
        match self {
            Fitted::Rows(f) => f.apply_train(frame),
            other => other.apply(frame),
        }
    }
}

/// Fits one step on the train frame.
pub fn fit_step(step: &Step, train: &Frame, protected: &[&str], ctx: &mut FitContext) -> Result<Fitted> {
    let columns = resolve_columns(step, train, protected)?;
    let loc_of = |c: &str| step.locations.columns.get(c).or(step.locations.step.as_ref());
    let fitted = match &step.operator {
        Operator::Median(p) => impute_fit(impute::Strategy::Median, p, step, train, &columns)?,
        Operator::Mean(p) => impute_fit(impute::Strategy::Mean, p, step, train, &columns)?,
        Operator::MostFrequent(p) => impute_fit(impute::Strategy::MostFrequent, p, step, train, &columns)?,
        Operator::Constant(p) => impute_fit(impute::Strategy::Constant, p, step, train, &columns)?,
        Operator::RareLabel(p) => Fitted::RareLabel(rare_label::fit(p, train, &columns)?),
        Operator::OneHot(p) => Fitted::OneHot(one_hot::fit(p, train, &columns)?),
        Operator::Ordinal(p) => {
            let y = if p.method == ordinal::Method::TargetMean {
                Some(ctx.target_values(train, &step.name)?)
            } else {
                None
            };
            Fitted::Ordinal(ordinal::fit(p, train, &columns, y).map_err(|e| {
                let at = e.column().and_then(loc_of);
                e.at(at)
            })?)
        }
        Operator::StandardScaler(p) | Operator::MinMaxScaler(p) | Operator::RobustScaler(p) => {
            Fitted::Scale(scale::fit(p, train, &columns)?)
        }
        Operator::Log(f) | Operator::Power(f) | Operator::Reciprocal(f) => {
            Fitted::Transform(transform::fit(f, train, &columns)?)
        }
        Operator::Cap(p) => Fitted::Cap(cap::fit(p, train, &columns)?),
        Operator::EndTail(p) => Fitted::Impute(end_tail::fit(p, train, &columns).map_err(|e| e.in_stage(&step.name))?),
        Operator::CountFrequency(p) => Fitted::CountFrequency(count_frequency::fit(p, train, &columns)?),
        Operator::MeanTarget(p) => Fitted::MeanTarget(mean_target::fit(
            p,
            train,
            &columns,
            ctx.target_values(train, &step.name)?,
        )?),
        Operator::DropConstant(r)
        | Operator::DropDuplicates(r)
        | Operator::DropCorrelated(r)
        | Operator::DropMissing(r) => Fitted::Select(select::fit(r, train, &columns, None, &mut ctx.rng)?),
        Operator::SelectKBest(r) => {
            if ctx.task == crate::vocab::Task::Classification {
                let labels = crate::models::classes::labels_of(train, &ctx.target)?;
                let classes = crate::models::classes::Classes::of(&labels);
                let y: Vec<u32> = classes.codes(&labels)?;
                let target = select::ScoreTarget::Classes {
                    y: &y,
                    n_classes: classes.labels.len(),
                };
                Fitted::Select(select::fit(r, train, &columns, Some(target), &mut ctx.rng)?)
            } else {
                let y = ctx.target_values(train, &step.name)?;
                Fitted::Select(select::fit(
                    r,
                    train,
                    &columns,
                    Some(select::ScoreTarget::Values(y)),
                    &mut ctx.rng,
                )?)
            }
        }
        Operator::Discretise(p) => Fitted::Discretise(discretise::fit(p, train, &columns)?),
        Operator::Combine(p) => Fitted::Combine(combine::fit_combine(p, train, &columns)?),
        Operator::Relative(p) => Fitted::Combine(combine::fit_relative(p, train, &columns)?),
        Operator::BoxCox => Fitted::Power(power_transform::fit(power_transform::Kind::BoxCox, train, &columns)?),
        Operator::YeoJohnson => Fitted::Power(power_transform::fit(
            power_transform::Kind::YeoJohnson,
            train,
            &columns,
        )?),
        Operator::MissingIndicator => Fitted::Impute(impute::indicators_only(train, &columns)?),
        Operator::DropMissingRows(p) => Fitted::Rows(rows::fit_missing(p, train, &columns)?),
        Operator::Trim(p) => Fitted::Rows(rows::fit_trim(p, train, &columns)?),
        Operator::RandomSample(p) => Fitted::RandomSample(random_sample::fit(p, train, &columns, ctx.seed)?),
        Operator::DatetimeFeatures(p) => Fitted::Datetime(datetime::fit_features(p, train, &columns)?),
        Operator::DatetimeDifference(p) => Fitted::Datetime(datetime::fit_difference(p, train, &columns)?),
        Operator::Expression(p) => Fitted::Expression(expression::fit(p, train).map_err(|e| e.in_stage(&step.name))?),
        Operator::Woe(p) => Fitted::Woe(woe::fit(p, train, &columns, ctx.target_values(train, &step.name)?)?),
        Operator::SelectFromModel(p) => Fitted::Select(wrapper::fit_from_model(p, train, &columns, ctx, &step.name)?),
        Operator::Rfe(p) => Fitted::Select(wrapper::fit_rfe(
            p,
            train,
            &columns,
            ctx.target_values(train, &step.name)?,
        )?),
        Operator::ForwardSelection(p) => {
            let y = ctx.target_values(train, &step.name)?.to_vec();
            Fitted::Select(wrapper::fit_forward(p, train, &columns, &y, &mut ctx.rng)?)
        }
    };
    Ok(fitted)
}

fn impute_fit(
    strategy: impute::Strategy,
    p: &impute::Params,
    step: &Step,
    train: &Frame,
    columns: &[String],
) -> Result<Fitted> {
    impute::fit(strategy, p, train, columns)
        .map(Fitted::Impute)
        .map_err(|e| e.in_stage(&step.name).at(step.locations.step.as_ref()))
}

/// Turns a step's column selection into names, in frame order. Explicit names must exist and have a
/// type the operator accepts; `numeric` / `categorical` / `all` pick the accepted columns.
pub fn resolve_columns(step: &Step, frame: &Frame, protected: &[&str]) -> Result<Vec<String>> {
    let accepts = step.operator.accepts();
    let loc_of = |c: &str| step.locations.columns.get(c).or(step.locations.step.as_ref());
    let check_known = |name: &str| -> Result<()> {
        if protected.contains(&name) {
            return Err(Error::data(format!(
                "step {} selects \"{name}\", which is the target or the id column",
                step.name
            ))
            .at(loc_of(name))
            .with_hint(if matches!(step.operator, Operator::Expression(_)) {
                "features are computed from features only: the target is not there when predicting, and the id column is not a feature"
            } else {
                "steps transform features only; remove it from `columns`"
            }));
        }
        if frame.column(name).is_none() {
            return Err(frame.missing_column(name).in_stage(&step.name).at(loc_of(name)));
        }
        Ok(())
    };
    for e in &step.exclude {
        check_known(e)?;
    }
    let picked: Vec<String> = match &step.columns {
        Columns::Names(names) => {
            for n in names {
                check_known(n)?;
                let ty = frame.column(n).map(|c| c.data.column_type());
                if let Some(ty) = ty.filter(|t| !accepts.contains(t)) {
                    let what = if ty == ColumnType::Categorical {
                        "text (categorical)"
                    } else {
                        "numeric"
                    };
                    let hint = if ty == ColumnType::Categorical {
                        "use most_frequent or constant for text columns, encode the column first, or fix the data if it should be numbers"
                    } else {
                        "encoders take categorical columns; declare it in [gather] dtypes = { … = \"categorical\" } if its numbers are codes"
                    };
                    return Err(Error::data(format!(
                        "column \"{n}\" is {what}, but the {} operator in step {} needs {} columns",
                        step.operator.name(),
                        step.name,
                        accepts.iter().map(|t| t.name()).collect::<Vec<_>>().join(" or ")
                    ))
                    .at(loc_of(n))
                    .with_hint(hint));
                }
            }
            frame
                .names()
                .filter(|c| names.iter().any(|n| n == c))
                .map(str::to_string)
                .collect()
        }
        Columns::Kind(kind) => frame
            .columns
            .iter()
            .filter(|c| !protected.contains(&c.name.as_str()))
            .filter(|c| {
                let ty = c.data.column_type();
                accepts.contains(&ty)
                    && match kind {
                        ColumnKind::Numeric => ty == ColumnType::Numeric,
                        ColumnKind::Categorical => ty == ColumnType::Categorical,
                        ColumnKind::All => true,
                    }
            })
            .map(|c| c.name.clone())
            .collect(),
    };
    Ok(picked.into_iter().filter(|c| !step.exclude.contains(c)).collect())
}

/// `unseen = "rare"`: the train category that new values are mapped to (`rare_label`, default "Rare").
pub fn parse_rare_label(t: &mut TableReader<'_, '_>, unseen_is_rare: bool) -> Result<Option<String>> {
    let label = t.str("rare_label")?;
    match (unseen_is_rare, label) {
        (true, label) => Ok(Some(label.map_or_else(|| "Rare".to_string(), |l| l.value))),
        (false, Some(l)) => Err(Error::spec(
            "`rare_label` is only used with unseen = \"rare\"",
            Some(l.location),
        )),
        (false, None) => Ok(None),
    }
}

/// With `unseen = "rare"`, the rare label must be a train category of every encoded column.
pub fn check_rare_label<'k>(rare: Option<&str>, column: &str, mut known: impl Iterator<Item = &'k str>) -> Result<()> {
    if let Some(label) = rare
        && !known.any(|k| k == label)
    {
        return Err(Error::data(format!(
            "unseen = \"rare\" maps new values of \"{column}\" to \"{label}\", but train has no such category"
        ))
        .with_hint("group rare labels first (rare_label step), or set rare_label to an existing category")
        .for_column(column));
    }
    Ok(())
}

/// Error for a value the fitted state has never seen.
pub fn unseen_error(step: &str, column: &str, value: &str, line: u64, source: &str, known: usize) -> Error {
    Error::data(format!(
        "unseen category \"{value}\" in column \"{column}\" (line {line} of {source}); {step} learned {known} categories on train"
    ))
    .with_hint("set `unseen` in that step to choose what happens to new categories, or group rare labels before encoding")
    .for_column(column)
}
