//! The `mlpipe` binary: parse arguments, run one command, turn the outcome into an exit code.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
