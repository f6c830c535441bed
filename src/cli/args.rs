//! What the user typed. Commands never see these types: `dispatch` turns them into library args.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "mlpipe",
    version,
    about = "Reproducible machine-learning pipelines on tabular data"
)]
pub struct Cli {
    /// The artifact store (created if missing).
    #[arg(long, global = true, env = "MLPIPE_STORE", default_value = "artifacts")]
    pub store: PathBuf,

    /// Print one JSON object instead of text.
    #[arg(long, global = true)]
    pub json: bool,

    /// Non-interactive: plain progress lines, no bars (also whenever the CI variable is set).
    #[arg(long, global = true)]
    pub ci: bool,

    #[command(subcommand)]
    pub command: Command,
}

/// Options for CI: a baseline for relative gates and report files.
#[derive(clap::Args)]
pub struct CiReports {
    /// Judge relative gates against this run (default: the pipeline's lock file).
    #[arg(long)]
    pub baseline: Option<String>,
    /// Write a JUnit XML report (a test case per stage and per gate).
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Write a Markdown summary (metrics, deltas against the baseline, gates) for a pull request.
    #[arg(long)]
    pub summary: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run a pipeline, reusing every stage already in the store.
    Run {
        /// The pipeline file (TOML).
        pipeline: PathBuf,
        /// Override the pipeline's master seed.
        #[arg(long)]
        seed: Option<u64>,
        #[command(flatten)]
        report: CiReports,
        /// Also write the pipeline's lock file (pipelines/NAME.lock) from this run.
        #[arg(long)]
        update_lock: bool,
    },
    /// Run a pipeline and write its lock file: the expected snapshot, stage outputs and metrics.
    Lock { pipeline: PathBuf },
    /// Run a pipeline (cached where possible) and fail if its results differ from its lock file.
    Check {
        pipeline: PathBuf,
        #[command(flatten)]
        report: CiReports,
    },
    /// Re-execute a run or prediction from scratch and prove its artifacts are bit-for-bit identical.
    Reproduce {
        /// Run or prediction id (a unique prefix is enough).
        hash: String,
    },
    /// Show what changed between two runs.
    Diff { a: String, b: String },
    /// List runs, newest first.
    Log,
    /// Show any object: run, prediction, stage output, pipeline, snapshot.
    Show { hash: String },
    /// Apply a run's fitted pipeline to new rows.
    Predict {
        /// Run id (a unique prefix is enough).
        hash: String,
        /// CSV file with the training data's columns (the target may be absent).
        #[arg(long)]
        input: PathBuf,
        /// Where to write the predictions (CSV); standard output when absent.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Put a data file into the store and print its id (blake3 of its bytes).
    Snapshot {
        file: PathBuf,
        /// Compute the id only; store nothing.
        #[arg(long)]
        hash_only: bool,
    },
    /// Re-hash every object in the store and check every reference.
    Verify,
    /// Remove objects no run or prediction references.
    Gc {
        /// Only report what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
}
