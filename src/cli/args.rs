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

/// Where the prediction ledger is.
#[derive(clap::Args)]
pub struct LedgerOption {
    // Global, so that it also follows a `ledger` subcommand: `mlpipe ledger head --ledger URL`. The help is
    // an attribute, not a doc comment, so that it shows no Markdown backticks.
    #[arg(
        long,
        env = "MLPIPE_LEDGER",
        hide_env_values = true,
        global = true,
        help = "Ledger database: sqlite:PATH or postgres://user@host/db (default: ledger.sqlite in the store). \
                (--help never shows the variable's value: it may hold a password.)"
    )]
    pub ledger: Option<String>,
}

#[derive(clap::Args)]
pub struct LedgerFilter {
    /// Entries whose prediction id starts with this.
    #[arg(long)]
    pub prediction: Option<String>,
    /// Entries of this run (a prefix is enough).
    #[arg(long)]
    pub run: Option<String>,
    /// batch, serve or stream.
    #[arg(long, value_parser = ["batch", "serve", "stream"])]
    pub channel: Option<String>,
    /// champion or shadow.
    #[arg(long, value_parser = ["champion", "shadow"])]
    pub role: Option<String>,
    /// Entries made at or after this time (RFC 3339).
    #[arg(long)]
    pub since: Option<String>,
    /// Entries made before this time (RFC 3339).
    #[arg(long)]
    pub until: Option<String>,
    /// At most this many entries, newest first.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
}

#[derive(Subcommand)]
pub enum LedgerAction {
    /// List entries, newest first (the default).
    List,
    /// Summarise how shadow models disagree with their champions.
    Compare {
        /// Relative difference above which a pair counts as disagreeing.
        #[arg(long, default_value_t = 0.01)]
        tolerance: f64,
    },
    /// Delete the oldest entries, made before a time, and the stored inputs no remaining entry uses;
    /// the chain then starts from the removed entries' head.
    Prune {
        /// RFC 3339 time with an offset: 2026-12-01T10:00:00Z or 2026-12-01T10:00:00+01:00.
        #[arg(long)]
        before: String,
    },
    /// Print the chain's head (the last entry's digest and the number of entries), to anchor elsewhere.
    Head {
        /// The head as it was when the chain had this many entries (to compare with one anchored then).
        #[arg(long)]
        at: Option<u64>,
    },
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
        /// Run only the stages up to and including this one (e.g. encode.onehot) and store their
        /// outputs for later runs; no run is recorded, so no metrics, gates or lock.
        #[arg(long, conflicts_with = "update_lock")]
        until: Option<String>,
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
        /// Run or prediction id (a unique prefix is enough; a batch row as <prediction-id>/<row>).
        hash: String,
        #[command(flatten)]
        ledger: LedgerOption,
        /// For a run gathered from a database: query it again (as of the recorded time) and report
        /// whether it still yields the same snapshot.
        #[arg(long)]
        refetch: bool,
    },
    /// Show what changed between two runs, or two data snapshots.
    Diff {
        a: String,
        b: String,
        /// For snapshots: the key column that matches rows (position when absent).
        #[arg(long)]
        key: Option<String>,
        /// For snapshots: a missing-value marker (repeatable).
        #[arg(long)]
        na: Vec<String>,
    },
    /// List runs, newest first.
    #[command(visible_alias = "runs")]
    Log,
    /// Show any object: run, prediction, stage output, pipeline, snapshot.
    Show { hash: String },
    /// Write a run's report: one self-contained HTML page with its plots and provenance.
    Report {
        /// Run id (a unique prefix is enough).
        hash: String,
        /// Where to write it (default: report-<run>.html in the current folder).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Export a run's whole fitted pipeline (steps, model, inverse target transform) for another
    /// runtime: ONNX, one input per column.
    Export {
        /// Run id (a unique prefix is enough).
        hash: String,
        #[arg(long, value_parser = ["onnx"], default_value = "onnx")]
        format: String,
        /// The file to write.
        #[arg(long, short)]
        output: PathBuf,
        /// Also run the file in onnxruntime on the run's test rows and compare with mlpipe's
        /// predictions (needs Python with onnx and onnxruntime; `MLPIPE_PYTHON` picks the Python).
        #[arg(long)]
        verify: bool,
    },
    /// Apply a run's fitted pipeline to new rows: a batch file, or a stream of NDJSON records.
    Predict {
        /// Run id (a unique prefix is enough).
        hash: String,
        /// CSV, NDJSON, Parquet or Arrow IPC file with the training data's columns (the target may be absent);
        /// `-` reads standard input.
        #[arg(long, required_unless_present_any = ["stream", "max_line"], conflicts_with = "stream")]
        input: Option<PathBuf>,
        /// Format of the input when its name does not tell: csv, ndjson, parquet or ipc.
        #[arg(long, value_parser = ["csv", "ndjson", "jsonl", "parquet", "ipc"])]
        input_format: Option<String>,
        /// A file (.csv, .ndjson, .parquet, .arrow), `-`, `sqlite:PATH` or `postgres://…` (with --table);
        /// CSV on standard output when absent.
        #[arg(long, short, conflicts_with = "stream")]
        output: Option<String>,
        /// Format of the output when its name does not tell.
        #[arg(long, value_parser = ["csv", "ndjson", "jsonl", "parquet", "ipc"])]
        output_format: Option<String>,
        /// Table to write into, for a database output (created when absent).
        #[arg(long)]
        table: Option<String>,
        /// Read NDJSON records from standard input and write one NDJSON prediction per line, flushed.
        #[arg(long)]
        stream: bool,
        /// With --stream: the longest line taken, in bytes (default 1048576, as serve's --max-body); a
        /// longer line gets an error record and the stream goes on.
        // (Batch input is --input, required without --stream: a conflict with it keeps --max-line to
        // --stream; clap's `requires` takes the flag's default `false` for present.)
        #[arg(long, conflicts_with_all = ["input", "output"], value_parser = clap::value_parser!(u64).range(1..=1 << 40))]
        max_line: Option<u64>,
        #[command(flatten)]
        ledger: LedgerOption,
    },
    /// Serve a run's fitted pipeline over HTTP (POST /v1/predict, GET /v1/model, /healthz, /metrics,
    /// /openapi.json) until SIGTERM or Ctrl-C.
    Serve {
        /// Run id of the champion model (a unique prefix is enough).
        hash: String,
        /// Address to listen on (port 0 picks a free port).
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: std::net::SocketAddr,
        #[arg(
            long,
            help = "Allow an address other than loopback; needs a token (--token-file, MLPIPE_TOKEN or \
                    --token), or --allow-anonymous to serve without one."
        )]
        public: bool,
        /// A challenger: scores every request too; its answers are recorded, never returned.
        #[arg(long)]
        shadow: Option<String>,
        /// File holding a bearer token that every request except /healthz and /openapi.json must carry.
        #[arg(long)]
        token_file: Option<PathBuf>,
        /// The bearer token itself (prefer `MLPIPE_TOKEN` or --token-file: a command line is visible to
        /// other users of the machine).
        #[arg(long, env = "MLPIPE_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// With --public: serve without a token, so that anyone who can reach the address may use it.
        #[arg(long)]
        allow_anonymous: bool,
        /// Largest request body in bytes.
        #[arg(long, default_value_t = 1 << 20)]
        max_body: usize,
        /// Seconds a client may take to send a request's headers (the connection is closed after it) and
        /// then its body (408 after it).
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
        body_timeout: u64,
        /// Worker threads (default: one per core).
        #[arg(long)]
        threads: Option<usize>,
        #[command(flatten)]
        ledger: LedgerOption,
    },
    /// The prediction ledger: list entries, compare a shadow model with its champion, print the chain
    /// head (`ledger head`), prune.
    Ledger {
        #[command(subcommand)]
        action: Option<LedgerAction>,
        #[command(flatten)]
        filter: LedgerFilter,
        #[command(flatten)]
        ledger: LedgerOption,
    },
    /// Put a data file into the store and print its id: the blake3 of its bytes for a CSV file, of the
    /// canonical CSV of its rows for Parquet, Arrow IPC, NDJSON and databases.
    Snapshot {
        /// A data file, or a database: `sqlite:PATH` or `postgres://user@host/db`.
        source: String,
        /// Compute the id only; store nothing.
        #[arg(long)]
        hash_only: bool,
        /// Database: the table to read.
        #[arg(long)]
        table: Option<String>,
        /// Database: a SELECT to read instead of a table.
        #[arg(long)]
        query: Option<String>,
        /// Database: the point in time to read (RFC 3339, or now).
        #[arg(long)]
        as_of: Option<String>,
        /// Database: the column holding each row's last update (or event) time.
        #[arg(long)]
        updated_at: Option<String>,
        /// Database: with --updated-at, the key whose latest version to take (repeatable).
        #[arg(long)]
        key: Vec<String>,
        /// Database: history tables' validity start column (with --valid-to).
        #[arg(long)]
        valid_from: Option<String>,
        /// Database: history tables' validity end column (NULL = still valid).
        #[arg(long)]
        valid_to: Option<String>,
        /// Database: sort by these columns (repeatable); all columns when absent.
        #[arg(long)]
        order_by: Vec<String>,
        /// Database, Parquet, IPC, NDJSON: the text written for a missing value (a pipeline's first
        /// `na_values`); empty when absent.
        #[arg(long, default_value = "")]
        na: String,
        /// Also write the snapshot to this file (for a database, with its record as FILE.source.json).
        #[arg(long)]
        export: Option<PathBuf>,
        /// How the file is written: csv, parquet, ipc or ndjson (by its extension when absent).
        #[arg(long, value_parser = ["csv", "parquet", "ipc", "ndjson"])]
        format: Option<String>,
        /// Parquet, IPC, NDJSON: keep only this column (repeatable), as [gather] columns does.
        #[arg(long)]
        column: Vec<String>,
    },
    /// Re-hash every object in the store, check every reference, and check the prediction ledger.
    ///
    /// Exit codes: 0 when the store is consistent (after --repair: when nothing is left to mend), 1 when
    /// problems remain or the store cannot be read. --repair cannot mend edits of the ledger: restore the ledger from a backup (a head
    /// anchored earlier, `mlpipe ledger head`, tells which backup is good).
    Verify {
        #[command(flatten)]
        ledger: LedgerOption,
        /// Mend what can be mended: move damaged refs, links and misplaced entries aside to
        /// v1/quarantine/ (never deleting them), write refs again from the records the store holds, write
        /// the layout file again; then check again and report what was done.
        #[arg(long)]
        repair: bool,
    },
    /// Remove objects no run, prediction or ledger entry references.
    Gc {
        /// Only report what would be removed.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        ledger: LedgerOption,
    },
}
