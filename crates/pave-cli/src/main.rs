//! `kubectl-pave`, the kubectl plugin: `kubectl pave crds` prints or writes the CRDs
//! generated from pave's Rust types; `kubectl pave import` turns Backstage
//! catalog-info.yaml files into pave Components. Later issues add score and trace.

mod import;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "kubectl-pave", version, about = "pave's kubectl plugin")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print pave's CustomResourceDefinitions as YAML, or write one file per CRD.
    Crds {
        /// Write `<plural>.<group>.yaml` files into this directory instead of printing.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Turn Backstage catalog-info.yaml files into pave Component manifests on stdout.
    ///
    /// Only Components are imported; other kinds are skipped with a note on stderr.
    /// Nothing is printed unless every file is valid, so the output can go straight
    /// to `kubectl apply -f -`.
    Import {
        /// catalog-info.yaml files (multi-document YAML); `-` reads standard input.
        #[arg(value_name = "FILE", required = true)]
        files: Vec<PathBuf>,
        /// Put every Component in this namespace instead of the one its file names.
        #[arg(short = 'n', long, value_name = "NS", value_parser = import::parse_namespace)]
        namespace: Option<String>,
    },
}

fn main() -> anyhow::Result<ExitCode> {
    match Cli::parse().command {
        Command::Crds { out } => crds(out).map(|()| ExitCode::SUCCESS),
        Command::Import { files, namespace } => Ok(import::run(&files, namespace.as_deref())),
    }
}

fn crds(out: Option<PathBuf>) -> anyhow::Result<()> {
    for (file, yaml) in pave_api::crd_files() {
        match &out {
            Some(dir) => {
                let path = dir.join(file);
                std::fs::write(&path, yaml)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            None => print!("---\n{yaml}"),
        }
    }
    Ok(())
}
