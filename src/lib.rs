//! mlpipe: reproducible machine-learning pipelines on tabular data.
//!
//! A pipeline file ([`spec`]) becomes a stage graph ([`plan`]); the [`executor`] fits each stage
//! ([`stages`], [`models`]) on train rows and stores its output in a content-addressed [`store`] as the
//! [`fitted`] contract, which the [`predictor`], [`server`], [`export`] and [`report`] only read;
//! [`provenance`] records where a run came from; [`commands`] implement the CLI's verbs without printing.
//!
//! # Layers
//! The modules form a downward stack, bottom first: a module names (`crate::x`) only modules on lines
//! above its own (`tests/layers.rs` checks it).
//! 1. `dburl` `digest` — leaves: database URLs read as libpq reads them and masked; content ids.
//! 2. `error` — every error a user sees, with what to do.
//! 3. `resources` `database` `store` `provenance` — the machine: memory limits, database connections,
//!    the content-addressed store, where a run came from.
//! 4. `frame` `vocab` — the table, and the words pipelines are configured with (task, metric, columns).
//! 5. `ledger` `metrics` `models` `sources` — the prediction ledger, metrics, estimators, data sources.
//! 6. `stages` `tables` — the operators; the files and tables predictions are written to.
//! 7. `spec` — the pipeline file, parsed into the operators and estimators below it.
//! 8. `plan` — stage keys and run ids.
//! 9. `fitted` — the stored contract: stage outputs, train state, predict, and reading runs back.
//! 10. `executor` `predictor` `report` — fitting a run; scoring with a fitted run; the HTML report.
//! 11. `ci` `export` `server` — CI gates and reports, ONNX export, the REST server.
//! 12. `commands` — the CLI's verbs.

// The library has no unsafe code (the binary makes one audited allocator call, src/main.rs).
#![forbid(unsafe_code)]
// Tests compare floats exactly on purpose: bit-exactness is what the product promises.
#![cfg_attr(
    test,
    allow(clippy::float_cmp, clippy::many_single_char_names, clippy::format_push_string)
)]

pub mod ci;
pub mod commands;
pub mod database;
pub mod dburl;
pub mod digest;
pub mod error;
pub mod executor;
pub mod export;
pub mod fitted;
pub mod frame;
pub mod ledger;
pub mod metrics;
pub mod models;
pub mod plan;
pub mod predictor;
pub mod provenance;
pub mod report;
pub mod resources;
pub mod server;
pub mod sources;
pub mod spec;
pub mod stages;
pub mod store;
pub mod tables;
pub mod vocab;

pub use error::{Error, ErrorKind, Result};
