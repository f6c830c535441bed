//! mlpipe: reproducible machine-learning pipelines on tabular data.
//!
//! A pipeline file ([`spec`]) becomes a stage graph ([`plan`]); the [`executor`] fits each stage
//! ([`stages`], [`models`]) on train rows and stores its output in a content-addressed [`store`];
//! [`provenance`] records where a run came from; [`commands`] implement the CLI's verbs without printing.

// Tests compare floats exactly on purpose: bit-exactness is what the product promises.
#![cfg_attr(
    test,
    allow(clippy::float_cmp, clippy::many_single_char_names, clippy::format_push_string)
)]

pub mod ci;
pub mod commands;
pub mod database;
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
pub mod provenance;
pub mod report;
pub mod resources;
pub mod scoring;
pub mod server;
pub mod sources;
pub mod spec;
pub mod stages;
pub mod store;
pub mod tables;

pub use error::{Error, ErrorKind, Result};
