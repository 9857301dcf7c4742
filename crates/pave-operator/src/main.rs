//! `pave-operator`: parses flags, sets up logging and runs the operator; a fatal error
//! becomes one line on stderr and exit code 1. `pave-operator check` is the chart's
//! `helm test`.

use std::process::ExitCode;

use clap::Parser;
use pave_operator::Command;

/// mimalloc rather than glibc's malloc: the operator's memory is a large, long-lived
/// catalog and store built up by many small allocations on several runtime threads,
/// and glibc's per-thread arenas keep what fragmentation leaves behind. Measured
/// with the 100,000-Component benchmark (`make bench`); see docs/design.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
