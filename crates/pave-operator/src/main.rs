//! `pave-operator`: parses flags, sets up logging and runs the operator; a fatal error
//! becomes one line on stderr and a non-zero exit code.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let args = pave_operator::Args::parse();
    pave_operator::init_logging(args.log_format);
    match pave_operator::run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(fatal) => {
            eprintln!("pave-operator: {fatal}");
            ExitCode::from(fatal.exit_code())
        }
    }
}
