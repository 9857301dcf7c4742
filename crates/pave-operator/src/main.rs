//! `pave-operator`: parses flags, sets up logging and runs the operator; a fatal error
//! becomes one line on stderr and exit code 1. `pave-operator check` is the chart's
//! `helm test`.

use std::process::ExitCode;

use clap::Parser;
use pave_operator::Command;

#[tokio::main]
async fn main() -> ExitCode {
    let args = pave_operator::Args::parse();
    if let Some(Command::Check(check)) = args.command {
        return match pave_operator::check::run(check).await {
            true => ExitCode::SUCCESS,
            false => ExitCode::FAILURE,
        };
    }
    pave_operator::init_logging(args.log_format);
    match pave_operator::run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(fatal) => {
            eprintln!("pave-operator: {fatal}");
            ExitCode::FAILURE
        }
    }
}
