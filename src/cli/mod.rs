//! Command-line front end: arguments → settings → one library command → printed report → exit code.

mod args;
mod describe;
mod printer;
mod progress;

use std::process::ExitCode;

use clap::Parser;

use mlpipe::commands::{check, diff, gc, ledger, log, predict, reproduce, run, serve, show, snapshot, verify};
use mlpipe::tables::Format;
use mlpipe::{Error, ErrorKind};

use args::{CiReports, Cli, Command, LedgerAction};
use printer::Printer;

/// Exit codes: 0 ok; 1 user or data error, or differences found; 2 usage; 3 reproduction mismatch;
/// 101 internal error.
pub const EXIT_DIFFERENT: u8 = 1;
pub const EXIT_MISMATCH: u8 = 3;

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.ci {
        set_ci();
    }
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
        Command::Run {
            pipeline,
            seed,
            report: ci,
            update_lock,
            until,
        } => {
            check_report_paths(&ci, &store)?;
            let progress = progress::StageProgress::new(cli.json);
            let args = run::RunArgs {
                pipeline,
                store,
                seed,
                baseline: ci.baseline.clone(),
                update_lock,
            };
            if let Some(stage) = until {
                let partial = run::run_until(&args, &stage, &progress)?;
                progress.finish();
                printer.partial_run(&partial);
                return Ok(0);
            }
            let report = run::run(&args, &progress)?;
            progress.finish();
            write_reports(&ci, &report, &cli.store)?;
            printer.run(&report);
            Ok(if report.gates_passed() { 0 } else { EXIT_DIFFERENT })
        }
        Command::Lock { pipeline } => {
            let progress = progress::StageProgress::new(cli.json);
            let args = run::RunArgs {
                pipeline,
                store,
                seed: None,
                baseline: None,
                update_lock: true,
            };
            let report = run::run(&args, &progress)?;
            progress.finish();
            printer.run(&report);
            Ok(0)
        }
        Command::Check { pipeline, report: ci } => {
            check_report_paths(&ci, &store)?;
            let progress = progress::StageProgress::new(cli.json);
            let report = check::run(
                &check::CheckArgs {
                    pipeline,
                    store,
                    baseline: ci.baseline.clone(),
                },
                &progress,
            )?;
            progress.finish();
            write_reports(&ci, &report.run, &cli.store)?;
            printer.check(&report);
            Ok(if report.matches && report.run.gates_passed() {
                0
            } else {
                EXIT_DIFFERENT
            })
        }
        Command::Reproduce { hash, ledger, refetch } => {
            let progress = progress::StageProgress::new(cli.json);
            let report = reproduce::run(
                &reproduce::ReproduceArgs {
                    hash,
                    store,
                    ledger: ledger.ledger,
                    refetch,
                },
                &progress,
            )?;
            progress.finish();
            printer.reproduce(&report);
            Ok(if report.mismatch() {
                EXIT_MISMATCH
            } else if report.refetch.as_ref().is_some_and(|f| !f.same()) {
                EXIT_DIFFERENT
            } else {
                0
            })
        }
        Command::Diff { a, b, key, na } => {
            let args = diff::DiffArgs { a, b, store, key, na };
            match diff::run_any(&args)? {
                diff::AnyDiff::Runs(report) => {
                    let report = *report;
                    printer.diff(&report);
                    Ok(if report.differs() { EXIT_DIFFERENT } else { 0 })
                }
                diff::AnyDiff::Snapshots(report) => {
                    printer.data_diff(&report);
                    Ok(if report.differs() { EXIT_DIFFERENT } else { 0 })
                }
            }
        }
        Command::Log => {
            printer.log(&log::run(&log::LogArgs { store })?);
            Ok(0)
        }
        Command::Report { hash, output } => {
            let out = mlpipe::commands::report::run(&mlpipe::commands::report::ReportArgs { hash, store, output })?;
            printer.report(&out);
            Ok(0)
        }
        Command::Export {
            hash,
            format: _,
            output,
            verify,
        } => {
            let out = mlpipe::commands::export::export(&mlpipe::commands::export::ExportArgs {
                store,
                run: hash,
                output,
                verify,
            })?;
            printer.export(&out);
            Ok(match &out.verification {
                Some(v) if !v.passed() => EXIT_DIFFERENT,
                _ => 0,
            })
        }
        Command::Show { hash } => {
            printer.show(&show::run(&show::ShowArgs { hash, store })?);
            Ok(0)
        }
        Command::Predict {
            hash,
            input,
            input_format,
            output,
            output_format,
            table,
            stream,
            max_line,
            ledger,
        } => {
            if max_line.is_some() && !stream {
                usage_error(
                    clap::error::ErrorKind::MissingRequiredArgument,
                    "--max-line needs --stream (it limits a stream's lines)",
                );
            }
            let args = predict::PredictArgs {
                run: hash,
                input: input.unwrap_or_else(|| "-".into()),
                input_format: input_format.as_deref().map(Format::parse).transpose()?,
                output,
                output_format: output_format.as_deref().map(Format::parse).transpose()?,
                table,
                ledger: ledger.ledger,
                store,
                max_line: max_line.map_or(predict::DEFAULT_MAX_LINE, |n| usize::try_from(n).unwrap_or(usize::MAX)),
            };
            // The library reads and writes only the streams it is handed.
            let (stdin, stdout) = (std::io::stdin(), std::io::stdout());
            let (mut input, mut output) = (stdin.lock(), stdout.lock());
            let mut stdio = predict::Stdio {
                input: &mut input,
                output: &mut output,
            };
            if stream {
                let report = predict::stream(&args, &mut stdio)?;
                drop(output);
                printer.stream(&report);
                return Ok(0);
            }
            let report = predict::run(&args, &mut stdio)?;
            drop(output);
            printer.predict(&report);
            Ok(0)
        }
        Command::Serve {
            hash,
            addr,
            public,
            shadow,
            token_file,
            token,
            allow_anonymous,
            max_body,
            body_timeout,
            threads,
            ledger,
        } => {
            use clap::error::ErrorKind::ArgumentConflict;
            if token.is_some() && token_file.is_some() {
                usage_error(
                    ArgumentConflict,
                    "a token is given twice: by --token or MLPIPE_TOKEN, and by --token-file; give one of --token, \
                     --token-file (unset MLPIPE_TOKEN to use --token-file)",
                );
            }
            if allow_anonymous && !public {
                usage_error(
                    ArgumentConflict,
                    "--allow-anonymous is only for --public (a loopback address is served without a token anyway)",
                );
            }
            if allow_anonymous && (token.is_some() || token_file.is_some()) {
                usage_error(
                    ArgumentConflict,
                    "--allow-anonymous serves without a token, but a token is given (by --token, MLPIPE_TOKEN or \
                     --token-file); give one or the other",
                );
            }
            let args = serve::ServeArgs {
                run: hash,
                shadow,
                addr,
                public,
                token,
                token_file,
                allow_anonymous,
                ledger: ledger.ledger,
                store,
                max_body,
                body_timeout: std::time::Duration::from_secs(body_timeout),
                threads,
            };
            let report = serve::run(&args, |ready| printer.serving(ready))?;
            printer.served(&report);
            Ok(0)
        }
        Command::Ledger { action, filter, ledger } => {
            let args = ledger::LedgerArgs {
                store,
                ledger: ledger.ledger,
            };
            match action.unwrap_or(LedgerAction::List) {
                LedgerAction::List => {
                    let filter = mlpipe::ledger::Filter {
                        prediction: filter.prediction,
                        run: filter.run,
                        channel: filter
                            .channel
                            .as_deref()
                            .map(mlpipe::ledger::Channel::parse)
                            .transpose()?,
                        role: filter.role,
                        since: filter
                            .since
                            .as_deref()
                            .map(|t| ledger::check_time(t, "--since"))
                            .transpose()?,
                        until: filter
                            .until
                            .as_deref()
                            .map(|t| ledger::check_time(t, "--until"))
                            .transpose()?,
                        limit: Some(filter.limit),
                    };
                    printer.ledger(&ledger::list(&args, &filter)?);
                }
                LedgerAction::Compare { tolerance } => {
                    let since = filter
                        .since
                        .as_deref()
                        .map(|t| ledger::check_time(t, "--since"))
                        .transpose()?;
                    printer.ledger_compare(&ledger::compare(&args, since, tolerance)?);
                }
                LedgerAction::Prune { before } => printer.ledger_prune(&ledger::prune(&args, &before)?),
                LedgerAction::Head { at } => printer.ledger_head(&ledger::head(&args, at)?),
            }
            Ok(0)
        }
        Command::Snapshot {
            source,
            hash_only,
            table,
            query,
            as_of,
            updated_at,
            key,
            valid_from,
            valid_to,
            order_by,
            na,
            export,
            format,
            column,
        } => {
            let args = snapshot::SnapshotArgs {
                source,
                store,
                hash_only,
                database: snapshot::DatabaseArgs {
                    table,
                    query,
                    as_of,
                    updated_at,
                    key,
                    valid_from,
                    valid_to,
                    order_by,
                    na,
                },
                export,
                format,
                columns: column,
            };
            printer.snapshot(&snapshot::run(&args)?);
            Ok(0)
        }
        Command::Verify { ledger, repair } => {
            let report = verify::run(&verify::VerifyArgs {
                store,
                ledger: ledger.ledger,
                repair,
            })?;
            printer.verify(&report);
            Ok(if report.problems.is_empty() { 0 } else { EXIT_DIFFERENT })
        }
        Command::Gc { dry_run, ledger } => {
            printer.gc(&gc::run(&gc::GcArgs {
                store,
                dry_run,
                ledger: ledger.ledger,
            })?);
            Ok(0)
        }
    }
}

/// Ends the process as clap does for a command line it refuses: the message, the usage line, exit code 2.
fn usage_error(kind: clap::error::ErrorKind, message: &str) -> ! {
    use clap::CommandFactory as _;
    Cli::command().error(kind, message).exit()
}

fn set_ci() {
    // Read by the progress display; set once, before any other thread exists.
    CI_FLAG.store(true, std::sync::atomic::Ordering::Relaxed);
}

pub static CI_FLAG: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Refuses report paths inside the store before anything runs (a run's stages may take long, and the
/// refusal does not depend on them).
fn check_report_paths(ci: &CiReports, store: &std::path::Path) -> Result<(), Error> {
    for path in ci.junit.iter().chain(&ci.summary) {
        mlpipe::tables::refuse_inside_store(store, path, "the CI report")?;
    }
    Ok(())
}

/// Writes the JUnit and Markdown reports a CI asked for, atomically.
fn write_reports(ci: &CiReports, report: &run::RunReport, store: &std::path::Path) -> Result<(), Error> {
    let write = |path: &std::path::Path, text: String| {
        // A report in the store would replace the store's own files.
        mlpipe::tables::refuse_inside_store(store, path, "the CI report")?;
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        mlpipe::store::write_atomic(dir, path, text.as_bytes())
    };
    if let Some(path) = &ci.junit {
        write(
            path,
            mlpipe::ci::junit(&report.pipeline, &report.run, &report.stages, &report.gates),
        )?;
    }
    if let Some(path) = &ci.summary {
        let text = mlpipe::ci::summary(
            &report.pipeline,
            &report.run,
            &report.metrics,
            report.baseline.as_ref(),
            &report.gates,
            &report.stages,
        );
        write(path, text)?;
    }
    Ok(())
}
