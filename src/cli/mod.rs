//! Command-line front end: arguments → settings → one library command → printed report → exit code.

mod args;
mod describe;
mod printer;
mod progress;

use std::process::ExitCode;

use clap::Parser;

use mlpipe::commands::{diff, gc, log, predict, reproduce, run, show, snapshot, verify};
use mlpipe::{Error, ErrorKind};

use args::{Cli, Command};
use printer::Printer;

/// Exit codes: 0 ok; 1 user or data error, or differences found; 2 usage; 3 reproduction mismatch;
/// 101 internal error.
pub const EXIT_DIFFERENT: u8 = 1;
pub const EXIT_MISMATCH: u8 = 3;

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let printer = Printer::new(cli.json);
    match dispatch(cli, &printer) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            printer.error(&e);
            ExitCode::from(match e.kind() {
                ErrorKind::User => 1,
                ErrorKind::Mismatch => EXIT_MISMATCH,
                ErrorKind::Internal => 101,
            })
        }
    }
}

fn dispatch(cli: Cli, printer: &Printer) -> Result<u8, Error> {
    let store = cli.store.clone();
    match cli.command {
        Command::Run { pipeline, seed } => {
            let progress = progress::StageProgress::new(cli.json);
            let report = run::run(&run::RunArgs { pipeline, store, seed }, &progress)?;
            progress.finish();
            printer.run(&report);
            Ok(0)
        }
        Command::Reproduce { hash } => {
            let progress = progress::StageProgress::new(cli.json);
            let report = reproduce::run(&reproduce::ReproduceArgs { hash, store }, &progress)?;
            progress.finish();
            printer.reproduce(&report);
            Ok(if report.diverged.is_some() { EXIT_MISMATCH } else { 0 })
        }
        Command::Diff { a, b } => {
            let report = diff::run(&diff::DiffArgs { a, b, store })?;
            printer.diff(&report);
            Ok(if report.differs() { EXIT_DIFFERENT } else { 0 })
        }
        Command::Log => {
            printer.log(&log::run(&log::LogArgs { store })?);
            Ok(0)
        }
        Command::Show { hash } => {
            printer.show(&show::run(&show::ShowArgs { hash, store })?);
            Ok(0)
        }
        Command::Predict { hash, input, output } => {
            let report = predict::run(&predict::PredictArgs {
                run: hash,
                input,
                output,
                store,
            })?;
            printer.predict(&report);
            Ok(0)
        }
        Command::Snapshot { file, hash_only } => {
            printer.snapshot(&snapshot::run(&snapshot::SnapshotArgs { file, store, hash_only })?);
            Ok(0)
        }
        Command::Verify => {
            let report = verify::run(&verify::VerifyArgs { store })?;
            printer.verify(&report);
            Ok(if report.problems.is_empty() { 0 } else { EXIT_DIFFERENT })
        }
        Command::Gc { dry_run } => {
            printer.gc(&gc::run(&gc::GcArgs { store, dry_run })?);
            Ok(0)
        }
    }
}
