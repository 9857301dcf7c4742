//! `pave-testenv up`: starts the test bed for `make demo` or for exploring by hand,
//! writes `STATE_DIR/kubeconfig` and a sourceable `STATE_DIR/env`, and keeps it running
//! until SIGINT or SIGTERM.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use pave_testenv::{Options, TestEnv};
use tokio::signal::unix::{SignalKind, signal};

#[derive(Parser)]
#[command(
    version,
    about = "pave's local test bed: Kubernetes control plane and moto"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start etcd, kube-apiserver, the CRDs, kube-controller-manager and moto, and run
    /// until interrupted.
    Up {
        /// Directory of CustomResourceDefinition manifests to install first.
        #[arg(long)]
        crds: Option<PathBuf>,
        /// Where the kubeconfig, env file, certificates, data and logs go.
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// Leave the state dir behind on shutdown.
        #[arg(long)]
        keep: bool,
        /// Also a real node (kubelet, containerd, kube-proxy) in a network namespace,
        /// for pods; needs root.
        #[arg(long)]
        node: bool,
    },
}

fn main() -> anyhow::Result<()> {
    let Cmd::Up {
        crds,
        state_dir,
        keep,
        node,
    } = Cli::parse().command;
    let started = std::time::Instant::now();
    let env = TestEnv::start(Options {
        crd_dir: crds,
        state_dir,
        keep_state_dir: keep,
        node,
        ..Options::default()
    })?;
    println!(
        "pave test bed is up ({:.1}s)\n  kubeconfig:   {}\n  aws endpoint: {}\n  logs:         {}\n  \
         use it with:  source {}\nCtrl-C stops it.",
        started.elapsed().as_secs_f64(),
        env.kubeconfig_path().display(),
        env.moto_endpoint(),
        env.state_dir().display(),
        env.env_file().display(),
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the signal handler's runtime")?;
    let died = runtime.block_on(async {
        let mut interrupt = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
        let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        loop {
            tokio::select! {
                _ = interrupt.recv() => return anyhow::Ok(None),
                _ = terminate.recv() => return Ok(None),
                _ = tick.tick() => if let Err(e) = env.check_running() { return Ok(Some(e)) },
            }
        }
    })?;
    eprintln!("stopping the pave test bed");
    drop(env);
    match died {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}
