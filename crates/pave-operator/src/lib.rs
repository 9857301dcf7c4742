//! pave's operator: three controllers (catalog, environments, scorecards) over the
//! `platform.pave.dev/v1alpha1` kinds, plus health and metrics over HTTP.
//!
//! The HTTP server starts first, so the probes answer from the start. What the process
//! cannot get past by itself (no Kubernetes configuration, an API server that does not
//! answer, a port in use) exits with one line that says what to do (exit code 1).
//! What a person fixes in the cluster (CRDs not installed, RBAC missing, no AWS
//! credentials) is reported once in the log and in `/readyz`, and waited for; see
//! `readiness`. SIGTERM or SIGINT stops everything cleanly (exit code 0).

pub mod catalog;
pub mod check;
pub mod controller;
pub mod environment;
pub mod error;
pub mod http;
pub mod last_write;
pub mod leader;
pub mod metrics;
pub mod queue;
pub mod readiness;
pub mod scorecard;
pub mod scoring;

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use kube::Client;
use pave_cloud::aws::with_causes;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tracing::{info, warn};
use tracing_subscriber::EnvFilter;

use crate::controller::{Shared, ShutdownSignal};
use crate::metrics::Metrics;
use crate::readiness::Readiness;

/// Every controller, by the name used as field manager, event reporter and metrics label.
const CONTROLLERS: [&str; 9] = [
    catalog::CONTROLLERS[0],
    catalog::CONTROLLERS[1],
    catalog::CONTROLLERS[2],
    catalog::CONTROLLERS[3],
    catalog::CONTROLLERS[4],
    catalog::CONTROLLERS[5],
    catalog::CONTROLLERS[6],
    environment::NAME,
    scorecard::NAME,
];

/// Plurals of the kinds pave serves, as `kubectl get crd` names them with the group.
pub const KINDS: [&str; 9] = [
    "components",
    "developerenvironments",
    "scorecards",
    "groups",
    "users",
    "systems",
    "domains",
    "apis",
    "resources",
];

/// How long running reconciles and HTTP requests get to finish after a stop signal;
/// well inside Kubernetes' default 30 s termination grace period.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, clap::Parser)]
#[command(name = "pave-operator", version, about = "pave's Kubernetes operator")]
pub struct Args {
    /// Address of the HTTP server for /healthz, /readyz and /metrics.
    #[arg(long, env = "PAVE_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,

    /// Log line format. The filter comes from RUST_LOG (default `info`).
    #[arg(long, env = "PAVE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Names this cluster in the tags of cloud resources, so several clusters can share
    /// an AWS account without taking each other's resources. Default: `k8s-` and the
    /// UID of this cluster's `kube-system` namespace, which is unique per cluster and
    /// stable across restarts (a fixed default would let two clusters on defaults in
    /// one account sweep each other's resources). Operators that tagged resources with
    /// an earlier default keep them by setting it explicitly (`pave` before 0.1).
    #[arg(long, env = "PAVE_CLUSTER_ID")]
    pub cluster_id: Option<String>,

    /// The operator configuration (guardrails, profiles, CIDR pool, intervals) as YAML;
    /// every field has a documented default (examples/operator-config.yaml).
    #[arg(long, env = "PAVE_CONFIG")]
    pub config: Option<std::path::PathBuf>,

    #[command(flatten)]
    pub leader: leader::LeaderArgs,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Check that a running operator is ready and pave's CRDs are served (the chart's
    /// `helm test`); exit code 1 and why when not.
    Check(check::CheckArgs),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Why the operator could not start or stop cleanly; printed as one line.
#[derive(Debug, thiserror::Error)]
pub enum Fatal {
    #[error(
        "cannot load a Kubernetes configuration: {0}: set KUBECONFIG, or run in a pod with a service account, and start again"
    )]
    Config(String),
    #[error(
        "cannot reach the Kubernetes API server at {url}: {error}: check KUBECONFIG (or the pod's network and service account) and start again"
    )]
    Connect { url: String, error: String },
    #[error("cannot listen on {addr}: {error}: choose another --metrics-addr")]
    Listen { addr: SocketAddr, error: String },
    #[error("cannot install the SIGTERM/SIGINT handlers: {0}")]
    Signals(String),
    #[error("did not stop within {}s of the stop signal", SHUTDOWN_GRACE.as_secs())]
    ShutdownTimeout,
    #[error("cannot use the configuration {path}: {error}: fix it and start again")]
    ConfigFile { path: String, error: String },
    #[error(
        "stepping down as leader: {0}; exiting so that nothing this replica started goes on \
         beside the next leader (Kubernetes restarts it as a standby)"
    )]
    LostLease(String),
}

/// `spec` without kube's own warning for each failed watch attempt, unless it names
/// kube's crates itself: pave reports a failing watch once, with the fix, as a
/// readiness problem (`controller::report_watch`), and a warning per retry would bury
/// that line.
fn quiet_watcher(spec: String) -> String {
    if spec.contains("kube_runtime") {
        spec
    } else {
        format!("{spec},kube_runtime::watcher=error")
    }
}

/// Installs the global tracing subscriber; logs go to stderr.
pub fn init_logging(format: LogFormat) {
    let spec = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned());
    let filter = EnvFilter::try_new(quiet_watcher(spec)).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        // One object per line: the event's fields at the top (`message`, `error`, …),
        // and `spans`, the fields of every span it is in, outermost first. Inside a
        // reconcile that includes pave's `reconcile` span: `controller`, `object`
        // (`namespace/name`), `uid` and `reconcile_id`; a line a library logs from a
        // span of its own (the AWS SDK, kube's client) still has pave's further up.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .init(),
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
    }
}

/// Runs the operator until SIGTERM or SIGINT.
pub async fn run(args: Args) -> Result<(), Fatal> {
    info!(version = env!("CARGO_PKG_VERSION"), "starting");
    let shutdown = shutdown_signal()?;
    let config = Arc::new(load_config(args.config.as_deref())?);
    let listener = listen(args.metrics_addr).await?;
    let addr = listener.local_addr().map_err(|e| Fatal::Listen {
        addr: args.metrics_addr,
        error: e.to_string(),
    })?;
    // Tests read the port from this line when they ask for port 0.
    info!("listening on http://{addr}");

    let metrics = Arc::new(Metrics::new(&CONTROLLERS));
    let readiness = Arc::new(Readiness::new(&CONTROLLERS));
    let server = tokio::spawn(
        http::serve(
            listener,
            metrics.clone(),
            readiness.clone(),
            shutdown.clone(),
        )
        .map(|result| {
            if let Err(e) = result {
                warn!(error = %e, "HTTP server failed");
            }
        }),
    );
    let operator = operate(
        metrics,
        readiness,
        shutdown.clone(),
        config,
        args.cluster_id,
        args.leader,
    );
    tokio::pin!(operator);
    let ended = tokio::select! {
        result = &mut operator => Some(result),
        () = shutdown => None,
    };
    let stopped = async {
        match ended {
            Some(result) => result?,
            None => operator.await?,
        }
        let _ = server.await;
        Ok(())
    };
    match tokio::time::timeout(SHUTDOWN_GRACE, stopped).await {
        Ok(result) => {
            result?;
            info!("stopped");
            Ok(())
        }
        Err(_) => Err(Fatal::ShutdownTimeout),
    }
}

/// Connects, waits for the CRDs and (with leader election) the leader lease, and runs
/// the controllers until the stop signal, or until the lease is lost.
async fn operate(
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
    shutdown: ShutdownSignal,
    config: Arc<pave_cloud::config::OperatorConfig>,
    cluster_id: Option<String>,
    leader: leader::LeaderArgs,
) -> Result<(), Fatal> {
    // A stop signal while the API server is slow to answer still stops at once.
    let client = tokio::select! {
        client = connect() => client?,
        () = shutdown.clone() => return Ok(()),
    };
    let crds = readiness.until_ok("crds", &shutdown, || check_crds(&client));
    if crds.await.is_none() {
        return Ok(());
    }
    let shared = Shared {
        client,
        metrics,
        readiness,
        shutdown,
    };
    let leadership = if leader.leader_elect {
        let Some(leadership) = stand_by(&shared, &leader, cluster_id.clone()).await else {
            return Ok(());
        };
        Some(leadership)
    } else {
        None
    };
    shared.metrics.set_leader(true);
    let (catalog, triggered) = catalog::CatalogHandle::new();
    let controllers = futures::future::join3(
        catalog::run(shared.clone(), catalog.clone(), triggered),
        environment::run(shared.clone(), config, cluster_id),
        scorecard::run(shared, catalog),
    );
    let Some(mut leadership) = leadership else {
        controllers.await;
        return Ok(());
    };
    // Fail-stop: returning drops every controller and background task at once, and
    // the process exits with the reason.
    tokio::select! {
        _ = controllers => {}
        reason = leadership.lost() => return Err(Fatal::LostLease(reason)),
    }
    leadership.release().await;
    Ok(())
}

/// Waits for the leader lease. Meanwhile the standby checks what the environment
/// controller will need (cluster id, AWS credentials) as readiness problems only, so
/// that a standby is ready when it could take over, and says what is missing like the
/// leader does. `None` if the stop signal came first.
async fn stand_by(
    shared: &Shared,
    leader: &leader::LeaderArgs,
    cluster_id: Option<String>,
) -> Option<leader::Leadership> {
    let readiness = &shared.readiness;
    readiness.set_standby(true);
    let election = leader::Election::new(shared.client.clone(), leader);
    let checks = async {
        environment::prerequisites(shared, cluster_id).await;
        std::future::pending::<()>().await;
    };
    // The leader's environment controller checks again, under the same names, and
    // resolves what is still open here.
    let leadership = tokio::select! {
        leadership = election.acquire(readiness, &shared.shutdown) => leadership?,
        () = checks => unreachable!("the checks never end"),
    };
    readiness.set_standby(false);
    Some(leadership)
}

/// The operator configuration from `path`, or the defaults.
fn load_config(
    path: Option<&std::path::Path>,
) -> Result<pave_cloud::config::OperatorConfig, Fatal> {
    let Some(path) = path else {
        return Ok(pave_cloud::config::OperatorConfig::default());
    };
    let fail = |error: String| Fatal::ConfigFile {
        path: path.display().to_string(),
        error,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    pave_cloud::config::OperatorConfig::from_yaml(&text).map_err(|e| fail(e.to_string()))
}

/// The HTTP listener, bound before anything else so the probes answer at once.
async fn listen(addr: SocketAddr) -> Result<TcpListener, Fatal> {
    TcpListener::bind(addr).await.map_err(|e| Fatal::Listen {
        addr,
        error: e.to_string(),
    })
}

/// A future that resolves on the first SIGTERM or SIGINT. The handlers are installed
/// now, so a signal that arrives during startup is not lost.
fn shutdown_signal() -> Result<ShutdownSignal, Fatal> {
    let mut term = signal(SignalKind::terminate()).map_err(|e| Fatal::Signals(e.to_string()))?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| Fatal::Signals(e.to_string()))?;
    Ok(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        info!("{name} received, shutting down");
    }
    .boxed()
    .shared())
}

/// A client from KUBECONFIG or the in-cluster service account, checked with one request
/// so a wrong configuration fails here rather than as endless watch retries.
async fn connect() -> Result<Client, Fatal> {
    let config = kube::Config::infer()
        .await
        .map_err(|e| Fatal::Config(e.to_string()))?;
    let url = config.cluster_url.to_string();
    let client = Client::try_from(config).map_err(|e| Fatal::Config(e.to_string()))?;
    let version = client
        .apiserver_version()
        .await
        .map_err(|e| Fatal::Connect {
            url: url.clone(),
            error: with_causes(&e),
        })?;
    info!(%url, version = %version.git_version, "connected to the API server");
    Ok(client)
}

/// Asks discovery (which every authenticated user may read) whether the three kinds
/// are served at `v1alpha1`; if not, what is missing and how to install it.
pub(crate) async fn check_crds(client: &Client) -> Result<(), String> {
    let group = format!("{}/{}", pave_api::GROUP, pave_api::VERSION);
    let served: Vec<String> = match client.list_api_group_resources(&group).await {
        Ok(list) => list.resources.into_iter().map(|r| r.name).collect(),
        // The group/version does not exist at all: none of the CRDs is installed.
        Err(kube::Error::Api(status)) if status.code == 404 => Vec::new(),
        Err(e) => {
            return Err(format!(
                "cannot list the API group {group}: {}: check that the API server answers \
                 discovery to the operator's ServiceAccount (the system:discovery role)",
                with_causes(&e)
            ));
        }
    };
    match missing_crds(&served).as_slice() {
        [] => Ok(()),
        missing => Err(crds_missing(missing)),
    }
}

/// What to say when CRDs are not served.
fn crds_missing(missing: &[String]) -> String {
    let list = match missing {
        [one] => format!("CRD {one} is"),
        many => format!("CRDs {} are", many.join(", ")),
    };
    format!(
        "{list} not installed: install pave's CRDs with 'kubectl apply --server-side -f crds/' \
         (or 'kubectl pave crds | kubectl apply --server-side -f -', or the chart without \
         --skip-crds); pave starts once they are served"
    )
}

/// The full CRD names of the kinds absent from a discovery list of resource names.
fn missing_crds(served: &[String]) -> Vec<String> {
    KINDS
        .iter()
        .filter(|kind| !served.iter().any(|s| s == *kind))
        .map(|kind| format!("{kind}.{}", pave_api::GROUP))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_missing_crds_and_ignores_subresources() {
        let served = [
            "components",
            "components/status",
            "scorecards",
            "groups",
            "users",
            "systems",
            "domains",
            "apis",
            "resources",
        ]
        .map(String::from);
        let missing = missing_crds(&served);
        assert_eq!(missing, ["developerenvironments.platform.pave.dev"]);
        assert!(crds_missing(&missing).starts_with(
            "CRD developerenvironments.platform.pave.dev is not installed: install pave's CRDs with 'kubectl apply --server-side -f crds/'"
        ));
        assert!(crds_missing(&missing_crds(&[])).starts_with(
            "CRDs components.platform.pave.dev, developerenvironments.platform.pave.dev, scorecards.platform.pave.dev, groups.platform.pave.dev"
        ));
    }

    #[test]
    fn kubes_watch_warnings_are_off_unless_asked_for() {
        assert_eq!(
            quiet_watcher("info".into()),
            "info,kube_runtime::watcher=error"
        );
        assert_eq!(
            quiet_watcher("kube_runtime=debug".into()),
            "kube_runtime=debug"
        );
    }

    #[test]
    fn flags_have_documented_defaults() {
        use clap::Parser;
        let args = Args::try_parse_from(["pave-operator"]).unwrap();
        assert_eq!(args.metrics_addr, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(args.log_format, LogFormat::Text);
        let args = Args::try_parse_from([
            "pave-operator",
            "--metrics-addr",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ])
        .unwrap();
        assert_eq!(args.metrics_addr.port(), 0);
        assert_eq!(args.log_format, LogFormat::Json);
    }
}
