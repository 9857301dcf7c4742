//! `kubectl-pave`, the kubectl plugin: `kubectl pave crds` prints or writes the CRDs
//! generated from pave's Rust types; `kubectl pave import` turns a Backstage catalog
//! (every kind pave has, and the files its Locations name) into pave manifests; `kubectl pave score` gives a
//! scorecard's levels offline; `kubectl pave trace devenv NAME` shows an environment's
//! cloud resources, secret and Argo CD application as a tree, with the last error;
//! `kubectl pave argocd-health` prints the `argocd-cm` patch that gives Argo CD a
//! health check for each pave kind; `kubectl pave new TEMPLATE` runs a Backstage
//! Software Template.

mod argocd_health;
mod cluster;
mod iam_policy;
mod import;
mod lines;
mod new;
mod score;
mod trace;

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
    /// Turn a Backstage catalog into pave manifests on stdout.
    ///
    /// Component, API, Group, User, System, Domain and Resource become pave objects;
    /// a Location's targets (paths below the starting file's directory) are read too;
    /// other kinds are skipped with a note on stderr. Nothing is printed unless every
    /// file is valid, so the output can go straight to `kubectl apply -f -`.
    Import {
        /// catalog-info.yaml files (multi-document YAML); `-` reads standard input.
        #[arg(value_name = "FILE", required = true)]
        files: Vec<PathBuf>,
        /// Put every object in this namespace instead of the one its file names, and
        /// point references that name a namespace at it too.
        #[arg(short = 'n', long, value_name = "NS", value_parser = import::parse_namespace)]
        namespace: Option<String>,
    },
    /// Score components against a scorecard offline, e.g. in a pull-request check.
    ///
    /// The scorecard may be a pave Scorecard or a bare Port scorecard; components may
    /// be pave Component objects or Backstage catalog-info.yaml files.
    Score {
        /// The scorecard file.
        #[arg(long, value_name = "SC.yaml")]
        scorecard: PathBuf,
        /// Component or catalog-info files (multi-document YAML).
        #[arg(value_name = "COMPONENT.yaml", required = true)]
        components: Vec<PathBuf>,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value_t = score::Format::Table)]
        output: score::Format,
        /// Exit with 1 when any component is below this level.
        #[arg(long, value_name = "LEVEL")]
        min_level: Option<String>,
    },
    /// Run a Backstage Software Template: parameters, skeleton, a pushed repository,
    /// a registered Component and, with `pave:environment`, an environment.
    ///
    /// Everything is checked before the first step runs; the first step that fails
    /// stops the run, and the report says what was done and what was not.
    New(new::Args),
    /// Show an object and what it manages as a tree, with state and the last error.
    Trace {
        #[command(subcommand)]
        target: trace::Target,
    },
    /// Print the argocd-cm patch that gives Argo CD health checks for pave's kinds.
    ///
    /// Argo CD shows no health for custom resources without a Lua health check. This
    /// prints a ConfigMap `argocd-cm` holding only pave's checks, one key
    /// `resource.customizations.health.platform.pave.dev_<Kind>` per kind, to install
    /// with server-side apply, which adds those keys and leaves the others alone:
    ///
    ///     kubectl pave argocd-health | kubectl apply --server-side --field-manager pave -f -
    ///
    /// Argo CD then reports a DeveloperEnvironment, Component or Scorecard as Healthy
    /// when its Ready condition is True for its current generation, Degraded when it
    /// needs a person (a refused spec, a terminal cloud error, references that dangle,
    /// a rule that cannot be evaluated), and Progressing while pave is still at work.
    ArgocdHealth {
        /// The namespace Argo CD runs in (where its argocd-cm is).
        #[arg(short = 'n', long, value_name = "NS", default_value = argocd_health::DEFAULT_NAMESPACE, value_parser = import::parse_namespace)]
        namespace: String,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value_t = argocd_health::Format::Yaml)]
        output: argocd_health::Format,
    },
    /// Print the AWS IAM policy the operator needs: exactly the EC2 and RDS actions it
    /// calls; those that change or delete are limited to resources tagged with this
    /// cluster's pave.dev/cluster-id.
    IamPolicy {
        /// This cluster's id (PAVE_CLUSTER_ID, or the operator's default `k8s-<uid of
        /// kube-system>`); without it, any pave cluster's resources.
        #[arg(long, value_name = "ID")]
        cluster_id: Option<String>,
    },
}

fn main() -> anyhow::Result<ExitCode> {
    match Cli::parse().command {
        Command::Crds { out } => crds(out).map(|()| ExitCode::SUCCESS),
        Command::Import { files, namespace } => Ok(import::run(&files, namespace.as_deref())),
        Command::Score {
            scorecard,
            components,
            output,
            min_level,
        } => Ok(score::run(
            &scorecard,
            &components,
            output,
            min_level.as_deref(),
        )),
        Command::Trace { target } => Ok(trace::run(target)),
        Command::New(args) => Ok(new::run(args)),
        Command::IamPolicy { cluster_id } => {
            print!("{}", iam_policy::render(cluster_id.as_deref()));
            Ok(ExitCode::SUCCESS)
        }
        Command::ArgocdHealth { namespace, output } => {
            print!("{}", argocd_health::render(&namespace, output));
            Ok(ExitCode::SUCCESS)
        }
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
