//! `mlpipe report HASH [-o FILE]`: a run's self-contained HTML report (`crate::report`), drawn from
//! the store alone: the snapshot re-read, the recorded split taken, the fitted steps and model applied to
//! the test rows.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::digest::Id;
use crate::error::{Error, Result};
use crate::fitted;
use crate::fitted::StageState;
use crate::frame::ColumnData;
use crate::report::{ReportData, Target, render};
use crate::spec::Task;
use crate::store::{LocalStore, Store};

pub struct ReportArgs {
    pub hash: String,
    pub store: PathBuf,
    pub output: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
pub struct ReportOut {
    pub run: Id,
    pub path: PathBuf,
    pub bytes: usize,
}

/// The target column of `frame` as the report draws it.
fn target_of(frame: &crate::frame::Frame, name: &str, task: Task) -> Target {
    match (frame.column(name).map(|c| &c.data), task) {
        (Some(ColumnData::Numeric(v)), Task::Regression) => Target::Numbers(v.to_vec()),
        (Some(ColumnData::Numeric(v)), _) => {
            Target::Labels(v.iter().map(|x| crate::frame::json_number(*x).to_string()).collect())
        }
        (Some(ColumnData::Categorical(v)), _) => {
            Target::Labels(v.iter().map(|x| x.unwrap_or("").to_string()).collect())
        }
        (None, _) => Target::None,
    }
}

pub fn run(args: &ReportArgs) -> Result<ReportOut> {
    let store = LocalStore::open(&args.store)?;
    let record = {
        let _lock = store.lock(false)?;
        super::resolve_run(&store, &args.hash)?
    };
    let (pipeline, outputs) = super::load_fitted(&store, &record)?;
    let bytes = store.get(&record.snapshot)?;
    let all = crate::frame::read_csv(&bytes, &pipeline.gather.read, &record.source)?;
    let (mut profile, mut split, mut train, mut evaluation, mut steps) = (None, None, None, None, Vec::new());
    for out in &outputs {
        match &out.state {
            StageState::Analyse(p) => profile = Some(p),
            StageState::Split(s) => split = Some(s),
            StageState::Step(f) => steps.push(f),
            StageState::Train(t) => train = Some(t),
            StageState::Evaluate(e) => evaluation = Some(e),
            StageState::Gather { .. } => {}
        }
    }
    let (split, train) = split
        .zip(train)
        .ok_or_else(|| Error::internal("the run has no split or no trained model"))?;
    let raw_test = all.take(&split.test);
    let test_truth = target_of(&raw_test, &pipeline.target, pipeline.task);
    let mut test = raw_test;
    for step in steps {
        test = step.apply(test)?;
    }
    let predictions = fitted::predict(train, &test)?;
    let task = pipeline.task.name();
    let html = render(&ReportData {
        record: &record,
        task,
        target: &pipeline.target,
        profile,
        train_target: target_of(&all.take(&split.train), &pipeline.target, pipeline.task),
        test_truth,
        test_predictions: &predictions,
        model: &train.model,
        evaluation,
        cv: train.cv.as_ref(),
    });
    let path = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("report-{}.html", record.run.short())));
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    crate::tables::refuse_inside_store(store.root(), &path, "the report")?;
    crate::tables::write_file(dir, &path, html.as_bytes())?;
    Ok(ReportOut {
        run: record.run,
        path,
        bytes: html.len(),
    })
}
