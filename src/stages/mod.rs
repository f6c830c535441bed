//! Operators: each learns a state on train rows (`fit`, seeded) and applies it unchanged (`apply`, pure).
//!
//! Adding an operator: one file here with its params (parsed from TOML), its fitted state, `fit` and
//! `apply`; then one variant in [`Operator`] and [`Fitted`] and one line in [`Operator::parse`].

pub mod analyse;
pub mod cap;
pub mod combine;
pub mod count_frequency;
pub mod datetime;
pub mod discretise;
pub mod end_tail;
pub mod impute;
pub mod mean_target;
pub mod mutual_info;
pub mod one_hot;
pub mod ordinal;
pub mod power_transform;
pub mod random_sample;
pub mod rare_label;
pub mod rows;
pub mod scale;
pub mod select;
pub mod split;
pub mod transform;
pub mod woe;
pub mod wrapper;

use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::frame::{ColumnType, Frame};
use crate::spec::reader::{At, TableReader, quoted};
use crate::spec::{ColumnKind, Columns, Step};

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
    pub fn operators(self) -> &'static [&'static str] {
        match self {
            Group::Impute => &[
                "median",
                "mean",
                "most_frequent",
                "constant",
                "end_tail",
                "random_sample",
                "missing_indicator",
                "drop_missing_rows",
            ],
            Group::Encode => &[
                "rare_label",
                "one_hot",
                "ordinal",
                "count_frequency",
                "mean_target",
                "woe",
            ],
            Group::Select => &[
                "drop_constant",
                "drop_duplicates",
                "drop_correlated",
                "drop_missing",
                "select_k_best",
                "rfe",
                "forward_selection",
                "select_from_model",
            ],
            Group::Transform => &[
                "standard_scaler",
                "min_max_scaler",
                "robust_scaler",
                "log",
                "power",
                "reciprocal",
                "cap",
                "discretise",
                "combine",
                "relative",
                "box_cox",
                "yeo_johnson",
                "trim",
                "datetime_features",
                "datetime_difference",
            ],
        }
    }
}

/// A step's operator and its checked parameters (serialised canonically into the stage key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "operator", rename_all = "snake_case")]
pub enum Operator {
    Median(impute::Params),
    Mean(impute::Params),
    MostFrequent(impute::Params),
    Constant(impute::Params),
    RareLabel(rare_label::Params),
    OneHot(one_hot::Params),
    Ordinal(ordinal::Params),
    StandardScaler(scale::Params),
    MinMaxScaler(scale::Params),
    RobustScaler(scale::Params),
    Log(transform::Function),
    Power(transform::Function),
    Reciprocal(transform::Function),
    Cap(cap::Params),
    EndTail(end_tail::Params),
    CountFrequency(count_frequency::Params),
    MeanTarget(mean_target::Params),
    DropConstant(select::Rule),
    DropDuplicates(select::Rule),
    DropCorrelated(select::Rule),
    DropMissing(select::Rule),
    SelectKBest(select::Rule),
    Discretise(discretise::Params),
    Combine(combine::CombineParams),
    Relative(combine::RelativeParams),
    BoxCox,
    YeoJohnson,
    MissingIndicator,
    DropMissingRows(rows::MissingParams),
    Trim(rows::TrimParams),
    Rfe(wrapper::Params),
    ForwardSelection(wrapper::Params),
    RandomSample(random_sample::Params),
    DatetimeFeatures(datetime::FeatureParams),
    DatetimeDifference(datetime::DifferenceParams),
    SelectFromModel(wrapper::ModelParams),
    Woe(woe::Params),
}

impl Operator {
    pub fn parse(
        group: Group,
        name: &At<String>,
        t: &mut TableReader<'_, '_>,
        task: crate::spec::Task,
    ) -> Result<Operator> {
        let op = name.value.as_str();
        if !group.operators().contains(&op) {
            let home = Group::ALL.into_iter().find(|g| g.operators().contains(&op));
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
        }
        Ok(match op {
            "median" => Operator::Median(impute::Params::parse(t, impute::Strategy::Median)?),
            "mean" => Operator::Mean(impute::Params::parse(t, impute::Strategy::Mean)?),
            "most_frequent" => Operator::MostFrequent(impute::Params::parse(t, impute::Strategy::MostFrequent)?),
            "constant" => Operator::Constant(impute::Params::parse(t, impute::Strategy::Constant)?),
            "rare_label" => Operator::RareLabel(rare_label::Params::parse(t)?),
            "one_hot" => Operator::OneHot(one_hot::Params::parse(t)?),
            "ordinal" => Operator::Ordinal(ordinal::Params::parse(t)?),
            "standard_scaler" => Operator::StandardScaler(scale::Params::parse(t, scale::Kind::Standard)?),
            "min_max_scaler" => Operator::MinMaxScaler(scale::Params::parse(t, scale::Kind::MinMax)?),
            "robust_scaler" => Operator::RobustScaler(scale::Params::parse(t, scale::Kind::Robust)?),
            "log" => Operator::Log(transform::Function::parse_log(t)?),
            "power" => Operator::Power(transform::Function::parse_power(t)?),
            "reciprocal" => Operator::Reciprocal(transform::Function::Reciprocal),
            "end_tail" => Operator::EndTail(end_tail::Params::parse(t)?),
            "count_frequency" => Operator::CountFrequency(count_frequency::Params::parse(t)?),
            "mean_target" => Operator::MeanTarget(mean_target::Params::parse(t)?),
            "drop_constant" => Operator::DropConstant(select::Rule::parse(t, op)?),
            "drop_duplicates" => Operator::DropDuplicates(select::Rule::parse(t, op)?),
            "drop_correlated" => Operator::DropCorrelated(select::Rule::parse(t, op)?),
            "drop_missing" => Operator::DropMissing(select::Rule::parse(t, op)?),
            "select_k_best" => Operator::SelectKBest(select::Rule::parse(t, op)?),
            "discretise" => Operator::Discretise(discretise::Params::parse(t)?),
            "combine" => Operator::Combine(combine::CombineParams::parse(t)?),
            "relative" => Operator::Relative(combine::RelativeParams::parse(t)?),
            "box_cox" => Operator::BoxCox,
            "yeo_johnson" => Operator::YeoJohnson,
            "missing_indicator" => Operator::MissingIndicator,
            "drop_missing_rows" => Operator::DropMissingRows(rows::MissingParams::parse(t)?),
            "trim" => Operator::Trim(rows::TrimParams::parse(t)?),
            "rfe" => Operator::Rfe(wrapper::Params::parse(t, false)?),
            "select_from_model" => Operator::SelectFromModel(wrapper::ModelParams::parse(t, task)?),
            "woe" => Operator::Woe(woe::Params::parse(t)?),
            "random_sample" => Operator::RandomSample(random_sample::Params::parse(t)?),
            "datetime_features" => Operator::DatetimeFeatures(datetime::FeatureParams::parse(t)?),
            "datetime_difference" => Operator::DatetimeDifference(datetime::DifferenceParams::parse(t)?),
            "forward_selection" => Operator::ForwardSelection(wrapper::Params::parse(t, true)?),
            _ => Operator::Cap(cap::Params::parse(t)?),
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Operator::Median(_) => "median",
            Operator::Mean(_) => "mean",
            Operator::MostFrequent(_) => "most_frequent",
            Operator::Constant(_) => "constant",
            Operator::RareLabel(_) => "rare_label",
            Operator::OneHot(_) => "one_hot",
            Operator::Ordinal(_) => "ordinal",
            Operator::StandardScaler(_) => "standard_scaler",
            Operator::MinMaxScaler(_) => "min_max_scaler",
            Operator::RobustScaler(_) => "robust_scaler",
            Operator::Log(_) => "log",
            Operator::Power(_) => "power",
            Operator::Reciprocal(_) => "reciprocal",
            Operator::Cap(_) => "cap",
            Operator::EndTail(_) => "end_tail",
            Operator::CountFrequency(_) => "count_frequency",
            Operator::MeanTarget(_) => "mean_target",
            Operator::DropConstant(_) => "drop_constant",
            Operator::DropDuplicates(_) => "drop_duplicates",
            Operator::DropCorrelated(_) => "drop_correlated",
            Operator::DropMissing(_) => "drop_missing",
            Operator::SelectKBest(_) => "select_k_best",
            Operator::Discretise(_) => "discretise",
            Operator::Combine(_) => "combine",
            Operator::Relative(_) => "relative",
            Operator::BoxCox => "box_cox",
            Operator::YeoJohnson => "yeo_johnson",
            Operator::MissingIndicator => "missing_indicator",
            Operator::DropMissingRows(_) => "drop_missing_rows",
            Operator::Trim(_) => "trim",
            Operator::Rfe(_) => "rfe",
            Operator::ForwardSelection(_) => "forward_selection",
            Operator::RandomSample(_) => "random_sample",
            Operator::DatetimeFeatures(_) => "datetime_features",
            Operator::DatetimeDifference(_) => "datetime_difference",
            Operator::SelectFromModel(_) => "select_from_model",
            Operator::Woe(_) => "woe",
        }
    }

    pub fn param_names(&self) -> Vec<&'static str> {
        match self {
            Operator::Median(_) | Operator::Mean(_) | Operator::MostFrequent(_) => {
                vec!["add_indicator"]
            }
            Operator::Constant(_) => vec!["add_indicator", "fill_value"],
            Operator::RareLabel(_) => rare_label::Params::NAMES.to_vec(),
            Operator::OneHot(_) => one_hot::Params::NAMES.to_vec(),
            Operator::Ordinal(_) => ordinal::Params::NAMES.to_vec(),
            Operator::StandardScaler(_)
            | Operator::RobustScaler(_)
            | Operator::Reciprocal(_)
            | Operator::BoxCox
            | Operator::YeoJohnson
            | Operator::MissingIndicator => vec![],
            Operator::DropMissingRows(_) => vec!["at_predict"],
            Operator::Trim(_) => rows::TrimParams::NAMES.to_vec(),
            Operator::Rfe(p) => p.param_names(false),
            Operator::ForwardSelection(p) => p.param_names(true),
            Operator::RandomSample(_) => vec!["seed_by"],
            Operator::DatetimeFeatures(_) => datetime::FeatureParams::NAMES.to_vec(),
            Operator::DatetimeDifference(_) => datetime::DifferenceParams::NAMES.to_vec(),
            Operator::SelectFromModel(p) => p.param_names(),
            Operator::Woe(_) => woe::Params::NAMES.to_vec(),
            Operator::MinMaxScaler(_) => scale::Params::NAMES.to_vec(),
            Operator::Log(_) => vec!["base", "offset"],
            Operator::Power(_) => vec!["exp"],
            Operator::Cap(_) => cap::Params::NAMES.to_vec(),
            Operator::EndTail(_) => end_tail::Params::NAMES.to_vec(),
            Operator::CountFrequency(_) => count_frequency::Params::NAMES.to_vec(),
            Operator::MeanTarget(_) => mean_target::Params::NAMES.to_vec(),
            Operator::DropConstant(r)
            | Operator::DropDuplicates(r)
            | Operator::DropCorrelated(r)
            | Operator::DropMissing(r)
            | Operator::SelectKBest(r) => r.param_names(),
            Operator::Discretise(_) => discretise::Params::NAMES.to_vec(),
            Operator::Combine(_) => combine::CombineParams::NAMES.to_vec(),
            Operator::Relative(_) => combine::RelativeParams::NAMES.to_vec(),
        }
    }

    /// Which column types the operator accepts.
    fn accepts(&self) -> &'static [ColumnType] {
        match self {
            Operator::RareLabel(_)
            | Operator::OneHot(_)
            | Operator::Ordinal(_)
            | Operator::CountFrequency(_)
            | Operator::MeanTarget(_)
            | Operator::DatetimeFeatures(_)
            | Operator::DatetimeDifference(_)
            | Operator::Woe(_) => &[ColumnType::Categorical],
            Operator::MostFrequent(_)
            | Operator::Constant(_)
            | Operator::DropConstant(_)
            | Operator::DropDuplicates(_)
            | Operator::DropMissing(_)
            | Operator::MissingIndicator
            | Operator::DropMissingRows(_)
            | Operator::RandomSample(_) => &[ColumnType::Numeric, ColumnType::Categorical],
            Operator::Median(_)
            | Operator::Mean(_)
            | Operator::StandardScaler(_)
            | Operator::MinMaxScaler(_)
            | Operator::RobustScaler(_)
            | Operator::Log(_)
            | Operator::Power(_)
            | Operator::Reciprocal(_)
            | Operator::Cap(_)
            | Operator::EndTail(_)
            | Operator::DropCorrelated(_)
            | Operator::SelectKBest(_)
            | Operator::Discretise(_)
            | Operator::Combine(_)
            | Operator::Relative(_)
            | Operator::BoxCox
            | Operator::YeoJohnson
            | Operator::Trim(_)
            | Operator::Rfe(_)
            | Operator::ForwardSelection(_)
            | Operator::SelectFromModel(_) => &[ColumnType::Numeric],
        }
    }
}

/// What fitting a step learned. Serialised (canonical JSON) as the stage's output state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "operator", rename_all = "snake_case")]
pub enum Fitted {
    Impute(impute::Fitted),
    RareLabel(rare_label::Fitted),
    OneHot(one_hot::Fitted),
    Ordinal(ordinal::Fitted),
    Scale(scale::Fitted),
    Transform(transform::Fitted),
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
    pub task: crate::spec::Task,
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
    /// Applies the learned state to any frame with the fitted columns: train, test or new rows.
    pub fn apply(&self, frame: Frame) -> Result<Frame> {
        match self {
            Fitted::Impute(f) => f.apply(frame),
            Fitted::RareLabel(f) => f.apply(frame),
            Fitted::OneHot(f) => f.apply(frame),
            Fitted::Ordinal(f) => f.apply(frame),
            Fitted::Scale(f) => f.apply(frame),
            Fitted::Transform(f) => f.apply(frame),
            Fitted::Cap(f) => f.apply(frame),
            Fitted::CountFrequency(f) => f.apply(frame),
            Fitted::MeanTarget(f) => f.apply(frame),
            Fitted::Select(f) => f.apply(frame),
            Fitted::Discretise(f) => f.apply(frame),
            Fitted::Combine(f) => f.apply(frame),
            Fitted::Power(f) => f.apply(frame),
            Fitted::Rows(f) => f.apply(frame),
            Fitted::RandomSample(f) => f.apply(frame),
            Fitted::Datetime(f) => f.apply(frame),
            Fitted::Woe(f) => f.apply(frame),
        }
    }

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
                let col = columns.iter().find(|c| e.to_string().contains(&format!("\"{c}\"")));
                e.at(col.and_then(|c| loc_of(c)))
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
            if ctx.task == crate::spec::Task::Classification {
                let labels = crate::fitted::labels_of(train, &ctx.target)?;
                let classes = crate::fitted::Classes::of(&labels);
                let y: Vec<u32> = labels.iter().map(|l| classes.index(l)).collect();
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
            .with_hint("steps transform features only; remove it from `columns`"));
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
        .with_hint("group rare labels first (rare_label step), or set rare_label to an existing category"));
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
