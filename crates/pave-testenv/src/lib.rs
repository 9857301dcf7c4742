//! pave's test bed: a real local Kubernetes control plane (etcd, kube-apiserver,
//! kube-controller-manager with the garbage collector and namespace controllers) and
//! moto's AWS server, started on free loopback ports the way controller-runtime's
//! envtest does it. Shared by the integration tests, the benchmarks and `make demo`.
//!
//! ```no_run
//! let env = pave_testenv::TestEnv::shared();
//! let ns = env.namespace("demo");
//! let status = env.kubectl().args(["create", "configmap", "x", "-n", &ns]).status().unwrap();
//! assert!(status.success());
//! ```

pub mod argocd;
pub mod fault_proxy;
pub mod git_daemon;
pub mod node;
mod pki;
pub mod pod_usage;
mod process;

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime};
use std::{env, fs, io, thread};

pub use fault_proxy::FaultProxy;
use pki::Pki;
pub use process::spawn_tied;
use process::{Process, free_ports, http, http_at, stop_all};

const BUILD_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/build-testbed.sh");
/// moto_server with indexed tag look-ups, run as `python -c` ([`Options::moto_tag_index`]).
const MOTO_TAG_INDEX: &str = include_str!("moto_tag_index.py");
const INSTALL_MOTO_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/install-moto.sh");
const INSTALL_NODE_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/install-node.sh");
/// The API server's ClusterIP, the first address of the Service range.
const SERVICE_CIDR: &str = "10.0.0.0/24";
const KUBERNETES_SERVICE_IP: &str = "10.0.0.1";
/// With a node, the API server records every request a service account makes, so a
/// test can compare what a pod used with what its role grants.
const AUDIT_POLICY: &str = "apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  userGroups: [\"system:serviceaccounts\"]
- level: None
";
const REPO_CRDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../crds");
const STATE_DIR_PREFIX: &str = "pave-testenv-";
/// How long [`TestEnv::restart_apiserver`] lets kube-apiserver shut down by itself
/// before SIGKILL: a kubelet's default termination grace period.
pub const APISERVER_GRACE: Duration = Duration::from_secs(30);
/// Marks a state dir that must survive its owner (Options::keep_state_dir).
const KEEP_MARKER: &str = ".keep";

/// Everything that can go wrong while starting or using the test bed. Each message
/// says what failed and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A binary or tool is missing and could not be built or installed; the message
    /// comes from the build script and already says what to do.
    #[error("{0}")]
    Prerequisite(String),
    /// The action names the path involved, and the cause says what the OS refused.
    #[error("could not {action}: {cause}")]
    Io { action: String, cause: io::Error },
    #[error(
        "{component} exited unexpectedly ({status}); the last lines of {log}:\n{tail}\n\
         fix the cause shown there and run again"
    )]
    Exited {
        component: &'static str,
        status: String,
        log: PathBuf,
        tail: String,
    },
    #[error(
        "{component} was not ready within {}s (last check: {problem}); the last lines of {log}:\n{tail}\n\
         if the machine is busy, run fewer tests at once and run again",
        .waited.as_secs()
    )]
    NotReady {
        component: &'static str,
        waited: Duration,
        problem: String,
        log: PathBuf,
        tail: String,
    },
    /// Setting up the node tier's network or runtime failed.
    #[error("the node tier could not start: {0}")]
    Node(String),
    /// git, or the test bed's git server, failed.
    #[error("git: {0}")]
    Git(String),
    #[error("`kubectl {args}` failed: {stderr}")]
    Kubectl { args: String, stderr: String },
    #[error(
        "generating the test bed's certificates failed: {0} (a bug in pave-testenv: report it)"
    )]
    Certificates(#[from] rcgen::Error),
    #[error("building a kube client from {path} failed: {message}")]
    Client { path: PathBuf, message: String },
    #[error("moto at {endpoint} failed to {action}: {message}")]
    Moto {
        endpoint: String,
        action: &'static str,
        message: String,
    },
}

fn write_file(path: &Path, text: &str) -> Result<(), Error> {
    fs::write(path, text).map_err(io_error(format!("write {}", path.display())))
}

fn io_error(action: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
    let action = action.into();
    move |cause| Error::Io { action, cause }
}

/// How to start a [`TestEnv`].
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// CustomResourceDefinition manifests (`*.yaml`, `*.yml`, `*.json`) installed before
    /// kube-controller-manager starts, because its garbage collector reads discovery
    /// only every 30 s. A directory without manifests is fine.
    pub crd_dir: Option<PathBuf>,
    /// Where certificates, the kubeconfig, etcd's data and the logs go; a fresh
    /// directory under the system temp dir when unset.
    pub state_dir: Option<PathBuf>,
    /// Leave the state dir behind on drop (it is always left behind when start fails,
    /// so its logs can be read).
    pub keep_state_dir: bool,
    /// Run moto with EC2's per-resource tag look-up indexed (`moto_tag_index.py`):
    /// the same answers, at a cost that follows the resources a describe looks at
    /// instead of those times every tag in the account. For benchmarks of hundreds
    /// of environments, where moto 5.2.5's own look-up, not the code under test, is
    /// what the time goes into (testbed.md). Off by default: tests see moto as
    /// released.
    pub moto_tag_index: bool,
    /// A real node as well ([`node`]): containerd, runc, the kubelet, kube-scheduler and
    /// kube-proxy in a network namespace, and a control plane configured as a real
    /// cluster's is for pods (ServiceAccount admission, the Node authorizer, every
    /// default controller). Needs root; one node tier runs at a time per machine.
    pub node: bool,
    /// An audit policy (YAML, `audit.k8s.io/v1` Policy) for the API server, which then
    /// writes what it matches to [`TestEnv::audit_log`] as JSON lines. Unset, there is
    /// an audit log only with a node (every request a service account makes).
    pub audit_policy: Option<String>,
}

/// How a restart of one component went ([`TestEnv::restart_apiserver`],
/// [`TestEnv::restart_moto`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restart {
    /// From the signal until the old process was gone.
    pub stopped_in: Duration,
    /// Whether it was still running after its grace period and had to be killed.
    pub killed: bool,
    /// From the signal until the new process answered its readiness check.
    pub down_for: Duration,
}

/// A running test bed. Dropping it stops every process and removes its state dir.
#[derive(Debug)]
pub struct TestEnv {
    bin_dir: PathBuf,
    state_dir: PathBuf,
    kubeconfig: PathBuf,
    moto_port: u16,
    /// moto's server program, for starting it again ([`TestEnv::restart_moto`]).
    moto_server: PathBuf,
    /// Where etcd and the API server listen, so the API server can be started again
    /// on its port, against the same etcd ([`TestEnv::restart_apiserver`]).
    etcd_port: u16,
    apiserver_port: u16,
    /// The API server's audit policy, if it has one ([`Options::audit_policy`]).
    audit_policy: Option<String>,
    /// The Python of moto's virtualenv, which has boto3: tests use it to look at what
    /// moto holds with a client that is not pave's.
    moto_python: PathBuf,
    /// [`Options::moto_tag_index`].
    moto_tag_index: bool,
    keep_state_dir: bool,
    /// Where the API server and moto listen: loopback, or the host end of the node's
    /// veth pair, which pods reach too.
    host_ip: &'static str,
    /// The node tier's network namespace and lock, when there is a node.
    node: Option<node::Node>,
    /// Whether start created the state dir; one given by the caller that already
    /// existed is never removed as a whole, only what start put in it.
    created_state_dir: bool,
    /// Behind a lock so that a component can be restarted through a shared reference
    /// (a test holds its [`TestNamespace`], which borrows the environment, meanwhile).
    processes: Mutex<Vec<Process>>,
}

impl TestEnv {
    /// Starts etcd, kube-apiserver, the CRDs, kube-controller-manager and moto, in that
    /// order, and returns once each is ready. Blocks; builds or installs what is
    /// missing first (`PAVE_TESTBED_BIN` and `PAVE_MOTO_SERVER` skip that).
    pub fn start(options: Options) -> Result<Self, Error> {
        let target = if options.node {
            "node"
        } else {
            "control-plane"
        };
        let bin_dir = match env::var_os("PAVE_TESTBED_BIN") {
            Some(dir) => PathBuf::from(dir),
            None => PathBuf::from(run_script(BUILD_SCRIPT, &[target])?),
        };
        let mut needed = vec![
            "etcd",
            "kube-apiserver",
            "kube-controller-manager",
            "kubectl",
        ];
        if options.node {
            needed.extend([
                "kubelet",
                "kube-scheduler",
                "kube-proxy",
                node::PAUSE_ARCHIVE,
            ]);
            run_script(INSTALL_NODE_SCRIPT, &[])?;
        }
        for bin in needed {
            if !bin_dir.join(bin).is_file() {
                return Err(Error::Prerequisite(format!(
                    "{bin} is missing from {}: unset PAVE_TESTBED_BIN, or run {BUILD_SCRIPT} {target}",
                    bin_dir.display()
                )));
            }
        }
        let moto_server = match env::var_os("PAVE_MOTO_SERVER") {
            Some(path) => PathBuf::from(path),
            None => PathBuf::from(run_script(INSTALL_MOTO_SCRIPT, &[])?),
        };

        let state_dir = match &options.state_dir {
            Some(dir) => dir.clone(),
            None => {
                remove_abandoned_state_dirs();
                env::temp_dir().join(format!(
                    "{STATE_DIR_PREFIX}{}-{}",
                    std::process::id(),
                    random_suffix()
                ))
            }
        };
        let created_state_dir = !state_dir.exists();
        fs::create_dir_all(state_dir.join("pki"))
            .map_err(io_error(format!("create {}", state_dir.display())))?;
        if options.keep_state_dir {
            write_file(&state_dir.join(KEEP_MARKER), "")?;
        }
        let mut env = TestEnv {
            bin_dir,
            moto_python: moto_server.with_file_name("python"),
            kubeconfig: state_dir.join("kubeconfig"),
            state_dir,
            moto_port: 0,
            moto_server: moto_server.clone(),
            etcd_port: 0,
            apiserver_port: 0,
            audit_policy: match (&options.audit_policy, options.node) {
                (Some(policy), _) => Some(policy.clone()),
                (None, true) => Some(AUDIT_POLICY.to_owned()),
                (None, false) => None,
            },
            moto_tag_index: options.moto_tag_index,
            keep_state_dir: options.keep_state_dir,
            host_ip: if options.node {
                node::HOST_IP
            } else {
                "127.0.0.1"
            },
            node: None,
            created_state_dir,
            processes: Mutex::new(Vec::new()),
        };
        // On failure, drop stops whatever did start; the logs stay for reading.
        env.boot(&options)
            .inspect_err(|_| env.keep_state_dir = true)?;
        Ok(env)
    }

    fn boot(&mut self, options: &Options) -> Result<(), Error> {
        let node_identity = options.node.then_some((node::NODE_NAME, node::NODE_IP));
        let pki = Pki::generate(&[self.host_ip, KUBERNETES_SERVICE_IP], node_identity)?;
        let mut files = vec![
            ("ca.crt", &pki.ca_cert),
            ("apiserver.crt", &pki.serving_cert),
            ("apiserver.key", &pki.serving_key),
            ("service-account.key", &pki.service_account_key),
            ("service-account.pub", &pki.service_account_public_key),
        ];
        if let Some(certs) = &pki.node {
            files.extend([
                ("kubelet-client.crt", &certs.kubelet_client_cert),
                ("kubelet-client.key", &certs.kubelet_client_key),
                ("kubelet.crt", &certs.kubelet_serving_cert),
                ("kubelet.key", &certs.kubelet_serving_key),
                (
                    "apiserver-kubelet-client.crt",
                    &certs.apiserver_kubelet_client_cert,
                ),
                (
                    "apiserver-kubelet-client.key",
                    &certs.apiserver_kubelet_client_key,
                ),
            ]);
        }
        for (file, pem) in files {
            write_file(&self.state_dir.join("pki").join(file), pem)?;
        }
        // The network namespace first: the API server and moto listen on its veth.
        if options.node {
            self.node = Some(node::Node::prepare(&self.state_dir)?);
        }
        // moto takes a few seconds to import; let it do so while the control plane starts.
        let mut early_moto = Some(self.spawn_moto()?);
        self.etcd_port = self.with_port_retries(Self::start_etcd)?;
        self.apiserver_port = self.with_port_retries(|env| env.start_apiserver(&pki))?;
        self.write_env_file()?;
        if let Some(dir) = &options.crd_dir {
            self.install_crds(dir)?;
        }
        self.start_controller_manager()?;
        if let Some(certs) = &pki.node {
            self.start_node(&pki, certs, self.apiserver_port)?;
        }
        self.moto_port = self.with_port_retries(|env| {
            let port = match early_moto.take() {
                Some(port) => port,
                None => env.spawn_moto()?,
            };
            env.wait_for_moto(port)?;
            Ok(port)
        })?;
        self.write_env_file()
    }

    /// Another process can take a picked port before the component binds it; then the
    /// component exits and is started again on new ports.
    fn with_port_retries<T>(
        &mut self,
        mut start: impl FnMut(&mut Self) -> Result<T, Error>,
    ) -> Result<T, Error> {
        for attempt in 1.. {
            match start(self) {
                Err(Error::Exited {
                    component, tail, ..
                }) if attempt < 3 && tail.to_lowercase().contains("address already in use") => {
                    self.processes().retain(|p| p.name != component);
                }
                result => return result,
            }
        }
        unreachable!()
    }

    fn start_etcd(&mut self) -> Result<u16, Error> {
        let [client, peer] = free_ports().map_err(io_error("pick free ports for etcd"))?;
        let data_dir = self.state_dir.join("etcd-data");
        // A failed attempt leaves a member with the old peer URL behind.
        let _ = fs::remove_dir_all(&data_dir);
        let (client_url, peer_url) = (
            format!("http://127.0.0.1:{client}"),
            format!("http://127.0.0.1:{peer}"),
        );
        let mut cmd = Command::new(self.bin_dir.join("etcd"));
        cmd.arg("--name=default")
            .arg(format!("--data-dir={}", data_dir.display()))
            .arg(format!("--listen-client-urls={client_url}"))
            .arg(format!("--advertise-client-urls={client_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=default={peer_url}"))
            .arg("--unsafe-no-fsync=true")
            .arg(format!("--quota-backend-bytes={}", 8u64 << 30));
        self.spawn("etcd", cmd)?;
        self.wait_until("etcd", Duration::from_secs(30), |_| {
            match http("GET", client, "/health", "") {
                Ok((200, _)) => Ok(()),
                Ok((status, body)) => Err(format!("GET /health answered {status}: {body}")),
                Err(e) => Err(format!("GET /health: {e}")),
            }
        })?;
        Ok(client)
    }

    fn start_apiserver(&mut self, pki: &Pki) -> Result<u16, Error> {
        let [port] = free_ports().map_err(io_error("pick a free port for kube-apiserver"))?;
        let server = format!("https://{}:{port}", self.host_ip);
        let kubeconfig =
            pki::render_kubeconfig(&server, &pki.ca_cert, &pki.admin_cert, &pki.admin_key);
        write_file(&self.kubeconfig, &kubeconfig)?;
        if let Some(policy) = &self.audit_policy {
            write_file(&self.state_dir.join("audit-policy.yaml"), policy)?;
        }
        let cmd = self.apiserver_command(port);
        self.spawn("kube-apiserver", cmd)?;
        self.wait_for_apiserver()?;
        Ok(port)
    }

    /// kube-apiserver on `port` against this environment's etcd, with the
    /// certificates and audit policy already in the state dir.
    fn apiserver_command(&self, port: u16) -> Command {
        let pki_dir = self.state_dir.join("pki");
        let pki_file = |name: &str| pki_dir.join(name).display().to_string();
        let mut cmd = Command::new(self.bin_dir.join("kube-apiserver"));
        cmd.arg(format!(
            "--etcd-servers=http://127.0.0.1:{}",
            self.etcd_port
        ))
        .arg(format!(
            "--cert-dir={}",
            self.state_dir.join("apiserver-certs").display()
        ))
        .arg(format!("--tls-cert-file={}", pki_file("apiserver.crt")))
        .arg(format!(
            "--tls-private-key-file={}",
            pki_file("apiserver.key")
        ))
        .arg(format!("--client-ca-file={}", pki_file("ca.crt")))
        .arg(format!("--secure-port={port}"))
        .arg(format!("--bind-address={}", self.host_ip))
        .arg(format!("--advertise-address={}", self.host_ip))
        .arg(format!("--service-cluster-ip-range={SERVICE_CIDR}"))
        .arg("--allow-privileged=true")
        // On SIGTERM, what is in flight is answered and watches get 2 s to end;
        // without it the server waits for them until its 60 s request timeout,
        // refusing everything new meanwhile, which makes every restart a minute.
        .arg("--shutdown-watch-termination-grace-period=2s");
        if self.audit_policy.is_some() {
            cmd.arg(format!(
                "--audit-policy-file={}",
                self.state_dir.join("audit-policy.yaml").display()
            ))
            .arg(format!("--audit-log-path={}", self.audit_log().display()))
            .arg("--audit-log-format=json");
        }
        if self.node.is_some() {
            // What a real cluster has for pods: service account tokens, the Node
            // authorizer and NodeRestriction for the kubelet, and a way to the kubelet.
            cmd.args([
                "--authorization-mode=Node,RBAC",
                "--enable-admission-plugins=NodeRestriction",
                "--kubelet-preferred-address-types=InternalIP",
            ])
            .arg(format!(
                "--kubelet-client-certificate={}",
                pki_file("apiserver-kubelet-client.crt")
            ))
            .arg(format!(
                "--kubelet-client-key={}",
                pki_file("apiserver-kubelet-client.key")
            ))
            .arg(format!(
                "--kubelet-certificate-authority={}",
                pki_file("ca.crt")
            ));
        } else {
            // No controller here creates default service accounts for pods to use.
            cmd.args([
                "--authorization-mode=RBAC",
                "--disable-admission-plugins=ServiceAccount",
            ]);
        }
        cmd.arg("--service-account-issuer=https://kubernetes.default.svc.cluster.local")
            .arg(format!(
                "--service-account-key-file={}",
                pki_file("service-account.pub")
            ))
            .arg(format!(
                "--service-account-signing-key-file={}",
                pki_file("service-account.key")
            ));
        cmd
    }

    fn wait_for_apiserver(&self) -> Result<(), Error> {
        self.wait_until("kube-apiserver", Duration::from_secs(90), |env| {
            env.run_kubectl(&["--request-timeout=5s", "get", "--raw", "/readyz"])
                .map(drop)
                .map_err(|e| e.to_string())
        })?;
        self.wait_until("kube-apiserver", Duration::from_secs(30), |env| {
            env.run_kubectl(&["--request-timeout=5s", "get", "namespace", "default"])
                .map(drop)
                .map_err(|e| e.to_string())
        })
    }

    fn install_crds(&mut self, dir: &Path) -> Result<(), Error> {
        let entries = fs::read_dir(dir).map_err(io_error(format!(
            "read the CRD directory {}",
            dir.display()
        )))?;
        let has_manifests = entries.filter_map(Result::ok).any(|e| {
            matches!(
                e.path().extension().and_then(|x| x.to_str()),
                Some("yaml" | "yml" | "json")
            )
        });
        if !has_manifests {
            return Ok(());
        }
        let dir = dir.to_string_lossy();
        self.run_kubectl(&["apply", "--server-side", "-f", &dir])?;
        // Envtest's readiness rule: every plural of every served version is in
        // discovery (Established alone does not mean clients can use it yet).
        let applied: serde_json::Value = serde_json::from_str(
            &self.run_kubectl(&["get", "-f", &dir, "-o", "json"])?,
        )
        .map_err(|e| Error::Kubectl {
            args: format!("get -f {dir} -o json"),
            stderr: format!("unparseable output: {e}"),
        })?;
        let expected = served_resources(&applied);
        self.wait_until("kube-apiserver", Duration::from_secs(30), |env| {
            for (group_version, plural) in &expected {
                let discovery = env
                    .run_kubectl(&["get", "--raw", &format!("/apis/{group_version}")])
                    .map_err(|e| e.to_string())?;
                let listed = serde_json::from_str::<serde_json::Value>(&discovery)
                    .ok()
                    .and_then(|d| d["resources"].as_array().cloned())
                    .is_some_and(|rs| rs.iter().any(|r| r["name"] == plural.as_str()));
                if !listed {
                    return Err(format!(
                        "{plural} is not yet served at /apis/{group_version}"
                    ));
                }
            }
            Ok(())
        })?;
        // kubectl cached discovery while applying, before the CRDs were served; a stale
        // cache makes `kubectl explain devenv` say the type does not exist.
        let _ = fs::remove_dir_all(self.state_dir.join("kubectl-cache"));
        Ok(())
    }

    fn start_controller_manager(&mut self) -> Result<(), Error> {
        let mut cmd = Command::new(self.bin_dir.join("kube-controller-manager"));
        cmd.arg(format!("--kubeconfig={}", self.kubeconfig.display()));
        if self.node.is_some() {
            // Every default controller (Deployments, ReplicaSets, service accounts and
            // their tokens, node lifecycle), signing tokens with the API server's key.
            let pki = self.state_dir.join("pki");
            cmd.arg(format!(
                "--service-account-private-key-file={}",
                pki.join("service-account.key").display()
            ))
            .arg(format!("--root-ca-file={}", pki.join("ca.crt").display()));
        } else {
            cmd.arg("--controllers=garbage-collector-controller,namespace-controller");
        }
        cmd.args([
            "--leader-elect=false",
            "--use-service-account-credentials=false",
        ])
        // No serving port: nothing scrapes it, and it would need delegated authn.
        .arg("--secure-port=0");
        self.spawn("kube-controller-manager", cmd)?;
        let log = self.state_dir.join("kube-controller-manager.log");
        // It has no health endpoint without a port; the garbage collector logs this
        // once its informers cover every resource, which is what tests rely on.
        self.wait_until("kube-controller-manager", Duration::from_secs(60), |_| {
            let text = fs::read_to_string(&log).unwrap_or_default();
            if let Some(fatal) = text.lines().find(|l| is_fatal_log_line(l)) {
                return Err(format!("fatal: {fatal}"));
            }
            if text.contains("all resource monitors have synced") {
                Ok(())
            } else {
                Err("the garbage collector has not synced yet".into())
            }
        })
    }

    fn spawn_moto(&mut self) -> Result<u16, Error> {
        let [port] = free_ports().map_err(io_error("pick a free port for moto"))?;
        let cmd = self.moto_command(port);
        self.spawn("moto", cmd)?;
        Ok(port)
    }

    fn moto_command(&self, port: u16) -> Command {
        let mut cmd = if self.moto_tag_index {
            let mut cmd = Command::new(&self.moto_python);
            cmd.args(["-c", MOTO_TAG_INDEX]);
            cmd
        } else {
            Command::new(&self.moto_server)
        };
        cmd.args(["-H", self.host_ip, "-p", &port.to_string()]);
        cmd
    }

    fn wait_for_moto(&self, port: u16) -> Result<(), Error> {
        self.wait_until("moto", Duration::from_secs(60), |env| {
            match http_at(env.host_ip, "GET", port, "/moto-api/", "") {
                Ok((200, _)) => Ok(()),
                Ok((status, _)) => Err(format!("GET /moto-api/ answered {status}")),
                Err(e) => Err(format!("GET /moto-api/: {e}")),
            }
        })
    }

    fn spawn(&mut self, name: &'static str, cmd: Command) -> Result<(), Error> {
        let log = self.state_dir.join(format!("{name}.log"));
        let action = format!("start {name} from {}", cmd.get_program().to_string_lossy());
        let process = Process::spawn(name, cmd, &log).map_err(io_error(action))?;
        self.processes().push(process);
        Ok(())
    }

    /// Polls `probe` until it succeeds; fails early when the component exits and with
    /// the probe's last complaint when `within` runs out.
    fn wait_until(
        &self,
        component: &'static str,
        within: Duration,
        mut probe: impl FnMut(&Self) -> Result<(), String>,
    ) -> Result<(), Error> {
        let started = Instant::now();
        loop {
            let problem = match probe(self) {
                Ok(()) => return Ok(()),
                Err(problem) => problem,
            };
            let mut processes = self.processes();
            let process = processes
                .iter_mut()
                .rev()
                .find(|p| p.name == component)
                .expect("wait_until is called for a started component");
            if let Some(status) = process.exited() {
                return Err(Error::Exited {
                    component,
                    status: status.to_string(),
                    log: process.log.clone(),
                    tail: process.tail(20),
                });
            }
            if started.elapsed() >= within {
                return Err(Error::NotReady {
                    component,
                    waited: within,
                    problem,
                    log: process.log.clone(),
                    tail: process.tail(20),
                });
            }
            drop(processes);
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// The components' processes (a lock poisoned by a panicking test still guards
    /// them well enough to stop them).
    fn processes(&self) -> MutexGuard<'_, Vec<Process>> {
        self.processes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write_env_file(&self) -> Result<(), Error> {
        let mut text = format!(
            "# source this file to use the pave test bed\nexport KUBECONFIG='{}'\nexport PAVE_TESTBED_BIN='{}'\n",
            self.kubeconfig.display(),
            self.bin_dir.display()
        );
        if self.moto_port != 0 {
            text += &format!("export AWS_ENDPOINT_URL='{}'\n", self.moto_endpoint());
            // moto accepts any credentials; the SDKs insist on having some.
            text += "export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1\n";
        }
        text += &format!(
            "# kube-apiserver: https://{}:{}\n",
            self.host_ip, self.apiserver_port
        );
        write_file(&self.env_file(), &text)
    }

    /// The test bed started on first use and shared by every test in this binary, with
    /// the repository's `crds/` installed. Panics with the start error, in every test
    /// that uses it, when it cannot start.
    pub fn shared() -> &'static TestEnv {
        static SHARED: OnceLock<Result<TestEnv, String>> = OnceLock::new();
        let started = SHARED.get_or_init(|| {
            let options = Options {
                crd_dir: Some(PathBuf::from(REPO_CRDS)),
                ..Options::default()
            };
            TestEnv::start(options).map_err(|e| e.to_string())
        });
        match started {
            Ok(env) => env,
            Err(message) => panic!("the shared pave test bed did not start: {message}"),
        }
    }

    /// Like [`TestEnv::shared`], with a real node ([`Options::node`]) and without
    /// pave's CRDs: what the chart installs is what its tests use. A test binary uses
    /// one or the other: a machine runs one node tier at a time.
    pub fn shared_with_node() -> &'static TestEnv {
        static SHARED: OnceLock<Result<TestEnv, String>> = OnceLock::new();
        let started = SHARED.get_or_init(|| {
            let options = Options {
                node: true,
                ..Options::default()
            };
            let env = TestEnv::start(options).map_err(|e| e.to_string())?;
            // A static is never dropped, and the pods' processes are not the test's
            // children: clear the node at exit instead of leaving it to the next start.
            node::clean_up_at_exit(env.state_dir());
            Ok(env)
        });
        match started {
            Ok(env) => env,
            Err(message) => panic!("the shared pave test bed with a node did not start: {message}"),
        }
    }

    /// The admin kubeconfig (client certificate in `system:masters`).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// A shell-sourceable file exporting `KUBECONFIG`, `AWS_ENDPOINT_URL` and
    /// `PAVE_TESTBED_BIN`.
    pub fn env_file(&self) -> PathBuf {
        self.state_dir.join("env")
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// Where the API server and moto listen, and what pods on the node reach them by:
    /// `127.0.0.1`, or [`node::HOST_IP`] when there is a node.
    pub fn host_ip(&self) -> &'static str {
        self.host_ip
    }

    /// The API server's audit log (JSON lines): what [`Options::audit_policy`]
    /// matches or, with a node and no policy given, one line per request a service
    /// account made. Written only with a policy or a node; a restarted API server
    /// appends to it.
    pub fn audit_log(&self) -> PathBuf {
        self.state_dir.join("audit.log")
    }

    /// Where etcd, kube-apiserver, kube-controller-manager and kubectl are.
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// The real kubectl, pointed at this environment.
    pub fn kubectl(&self) -> Command {
        let mut cmd = Command::new(self.bin_dir.join("kubectl"));
        cmd.arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            // Keeps discovery caches of throwaway clusters out of ~/.kube.
            .arg(format!(
                "--cache-dir={}",
                self.state_dir.join("kubectl-cache").display()
            ));
        cmd
    }

    /// Runs kubectl with `args`, feeding it `input` (a manifest for `-f -`), and
    /// returns what it did; the caller judges the exit status.
    pub fn kubectl_with_input(&self, args: &[&str], input: &[u8]) -> std::process::Output {
        use std::io::Write;
        let mut child = self
            .kubectl()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl starts");
        child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(input)
            .expect("kubectl reads its input");
        child.wait_with_output().expect("kubectl finishes")
    }

    /// Runs kubectl with `args` and returns its stdout, or its stderr as the error.
    pub fn run_kubectl(&self, args: &[&str]) -> Result<String, Error> {
        let output = self
            .kubectl()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(io_error(format!("run {}/kubectl", self.bin_dir.display())))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(Error::Kubectl {
                args: args.join(" "),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            })
        }
    }

    /// A new client for this environment. Each call builds its own, since every
    /// `#[tokio::test]` has its own runtime and a client must not outlive it.
    pub async fn client(&self) -> Result<kube::Client, Error> {
        let failed = |message: String| Error::Client {
            path: self.kubeconfig.clone(),
            message,
        };
        let kubeconfig = kube::config::Kubeconfig::read_from(&self.kubeconfig)
            .map_err(|e| failed(e.to_string()))?;
        let config = kube::Config::from_custom_kubeconfig(
            kubeconfig,
            &kube::config::KubeConfigOptions::default(),
        )
        .await
        .map_err(|e| failed(e.to_string()))?;
        kube::Client::try_from(config).map_err(|e| failed(e.to_string()))
    }

    /// Runs a Python program with boto3 against moto (test credentials, the endpoint
    /// in `AWS_ENDPOINT_URL`) and returns its standard output. For tests that check
    /// the cloud with a client independent of pave's.
    pub fn boto3(&self, program: &str) -> Result<String, Error> {
        let output = Command::new(&self.moto_python)
            .args(["-c", program])
            .env("AWS_ENDPOINT_URL", self.moto_endpoint())
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .stdin(Stdio::null())
            .output()
            .map_err(io_error(format!("run {}", self.moto_python.display())))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(Error::Moto {
                endpoint: self.moto_endpoint(),
                action: "answer a boto3 program",
                message: String::from_utf8_lossy(&output.stderr).into_owned(),
            })
        }
    }

    /// moto's endpoint, for `AWS_ENDPOINT_URL` or aws-config's `endpoint_url`.
    pub fn moto_endpoint(&self) -> String {
        format!("http://{}:{}", self.host_ip, self.moto_port)
    }

    /// Forgets every AWS resource moto holds.
    pub fn reset_moto(&self) -> Result<(), Error> {
        let failed = |message: String| Error::Moto {
            endpoint: self.moto_endpoint(),
            action: "reset (POST /moto-api/reset)",
            message,
        };
        match http_at(self.host_ip, "POST", self.moto_port, "/moto-api/reset", "") {
            Ok((200, _)) => Ok(()),
            Ok((status, body)) => Err(failed(format!("answered {status}: {body}"))),
            Err(e) => Err(failed(format!(
                "{e}; its log is {}",
                self.state_dir.join("moto.log").display()
            ))),
        }
    }

    /// Restarts kube-apiserver the way a control plane's restart does: SIGTERM, up to
    /// [`APISERVER_GRACE`] for it to answer what is in flight and end its watches
    /// (about a second; then SIGKILL), and the
    /// same program again with the same flags, port, certificates, audit log and
    /// etcd, so every object is still there. Returns once `/readyz` answers. Meanwhile
    /// clients see their watches end and their connections refused, as they would.
    pub fn restart_apiserver(&self) -> Result<Restart, Error> {
        let command = self.apiserver_command(self.apiserver_port);
        self.restart(
            "kube-apiserver",
            APISERVER_GRACE,
            command,
            Self::wait_for_apiserver,
        )
    }

    /// Kills moto's server and starts a new one on the same port, as a crash and a
    /// restart would: every AWS resource it held is gone. Returns once it answers.
    pub fn restart_moto(&self) -> Result<Restart, Error> {
        let (command, port) = (self.moto_command(self.moto_port), self.moto_port);
        self.restart("moto", Duration::ZERO, command, |env| {
            env.wait_for_moto(port)
        })
    }

    /// Stops `component` (SIGTERM, `grace`, SIGKILL), starts `command` in its place
    /// with its log appended to, and waits until `ready`.
    fn restart(
        &self,
        component: &'static str,
        grace: Duration,
        command: Command,
        ready: impl FnOnce(&Self) -> Result<(), Error>,
    ) -> Result<Restart, Error> {
        let started = Instant::now();
        let mut processes = self.processes();
        let process = processes
            .iter_mut()
            .find(|p| p.name == component)
            .expect("every component of a started test bed has a process");
        let killed = process.stop(grace);
        let stopped_in = started.elapsed();
        let action = format!(
            "start {component} again from {}",
            command.get_program().to_string_lossy()
        );
        *process = Process::respawn(component, command, &process.log).map_err(io_error(action))?;
        drop(processes);
        ready(self)?;
        Ok(Restart {
            stopped_in,
            killed,
            down_for: started.elapsed(),
        })
    }

    /// The last `lines` lines of every component's log, each headed by its name.
    pub fn logs_tail(&self, lines: usize) -> String {
        self.processes()
            .iter()
            .map(|p| {
                format!(
                    "==> {} ({}) <==\n{}\n",
                    p.name,
                    p.log.display(),
                    p.tail(lines)
                )
            })
            .collect()
    }

    /// Fails if a component has exited since it started (for long-running users such
    /// as `pave-testenv up`).
    pub fn check_running(&self) -> Result<(), Error> {
        for p in self.processes().iter_mut() {
            if let Some(status) = p.exited() {
                return Err(Error::Exited {
                    component: p.name,
                    status: status.to_string(),
                    log: p.log.clone(),
                    tail: p.tail(20),
                });
            }
        }
        Ok(())
    }

    /// A fresh namespace `PREFIX-<random>`, deleted when the returned guard drops.
    /// Panics if it cannot be created: this is for tests.
    pub fn namespace(&self, prefix: &str) -> TestNamespace<'_> {
        let name = format!("{prefix}-{}", random_suffix());
        if let Err(e) = self.run_kubectl(&["create", "namespace", &name]) {
            panic!(
                "creating test namespace {name} failed: {e}\n{}",
                self.logs_tail(30)
            );
        }
        TestNamespace { env: self, name }
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        // Pods and the node's processes first, so that none is restarted or left.
        drop(self.node.take());
        // Each component copes with the others going away, so they stop together.
        let processes = self
            .processes
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        stop_all(processes, Duration::from_secs(3), &["kube-apiserver"]);
        if self.keep_state_dir {
            return;
        }
        if self.created_state_dir {
            let _ = fs::remove_dir_all(&self.state_dir);
            return;
        }
        let logs: Vec<PathBuf> = processes.iter().map(|p| p.log.clone()).collect();
        let dirs = [
            "pki",
            "etcd-data",
            "apiserver-certs",
            "kubectl-cache",
            "containerd",
            "kubelet",
            "cni",
            "cni-ipam",
            "pod-logs",
        ]
        .map(|d| self.state_dir.join(d));
        for dir in dirs {
            let _ = fs::remove_dir_all(dir);
        }
        for file in logs
            .into_iter()
            .chain([self.kubeconfig.clone(), self.env_file()])
        {
            let _ = fs::remove_file(file);
        }
    }
}

/// A namespace for one test. Derefs to its name. Dropping it deletes the namespace
/// without waiting; when the test is panicking it first prints the control plane's
/// recent logs, so a failing test shows what the cluster did.
#[derive(Debug)]
pub struct TestNamespace<'a> {
    env: &'a TestEnv,
    name: String,
}

impl TestNamespace<'_> {
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl std::ops::Deref for TestNamespace<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.name
    }
}

impl AsRef<str> for TestNamespace<'_> {
    fn as_ref(&self) -> &str {
        &self.name
    }
}

impl Drop for TestNamespace<'_> {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!(
                "---- pave test bed logs (test namespace {}) ----\n{}",
                self.name,
                self.env.logs_tail(60)
            );
        }
        let _ = self
            .env
            .run_kubectl(&["delete", "namespace", &self.name, "--wait=false"]);
    }
}

/// Runs one of the scripts and returns the path it prints. Its progress lines are
/// passed on to stderr as they come, since a cold build takes many minutes.
fn run_script(script: &str, args: &[&str]) -> Result<String, Error> {
    let mut child = Command::new("bash")
        .arg(script)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(io_error(format!("run {script} (is bash installed?)")))?;
    let mut last_line = String::new();
    let stderr = child.stderr.take().expect("stderr is piped");
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        let _ = writeln!(io::stderr(), "{line}");
        last_line = line;
    }
    let output = child
        .wait_with_output()
        .map_err(io_error(format!("run {script}")))?;
    let path = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if !output.status.success() || path.is_empty() {
        return Err(Error::Prerequisite(if last_line.is_empty() {
            format!(
                "{script} {} failed ({}): run it by hand to see why",
                args.join(" "),
                output.status
            )
        } else {
            last_line
        }));
    }
    Ok(path)
}

/// `(group/version, plural)` for every served version of every CRD in a `kubectl get
/// -o json` answer (one object or a List).
fn served_resources(objects: &serde_json::Value) -> Vec<(String, String)> {
    let items = match objects["items"].as_array() {
        Some(items) => items.iter().collect(),
        None => vec![objects],
    };
    let mut resources = Vec::new();
    for crd in items
        .into_iter()
        .filter(|o| o["kind"] == "CustomResourceDefinition")
    {
        let spec = &crd["spec"];
        let (Some(group), Some(plural)) =
            (spec["group"].as_str(), spec["names"]["plural"].as_str())
        else {
            continue;
        };
        for version in spec["versions"].as_array().into_iter().flatten() {
            if let (Some(name), true) = (version["name"].as_str(), version["served"] == true) {
                resources.push((format!("{group}/{name}"), plural.to_owned()));
            }
        }
    }
    resources
}

/// klog's fatal lines (`F1126 14:00:00.000000 ...`) and cobra's flag errors.
fn is_fatal_log_line(line: &str) -> bool {
    let klog_fatal = line.starts_with('F') && line[1..].starts_with(|c: char| c.is_ascii_digit());
    klog_fatal || line.starts_with("Error: ") || line.starts_with("unknown flag")
}

fn random_suffix() -> String {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    format!("{:08x}", hasher.finish() as u32)
}

/// A shared test bed is never dropped (statics are not), so its state dir outlives
/// the test binary; the next start removes those whose process is gone.
fn remove_abandoned_state_dirs() {
    let Ok(entries) = fs::read_dir(env::temp_dir()) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(STATE_DIR_PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let path = entry.path();
        if !Path::new(&format!("/proc/{pid}")).exists()
            && !path.join(KEEP_MARKER).exists()
            && path.is_dir()
        {
            node::unmount_under(&path);
            let _ = fs::remove_dir_all(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_resources_lists_only_served_versions_of_crds() {
        let list = serde_json::json!({"kind": "List", "items": [
            {"kind": "CustomResourceDefinition", "spec": {"group": "platform.pave.dev",
              "names": {"plural": "components"},
              "versions": [{"name": "v1alpha1", "served": true}, {"name": "v1alpha0", "served": false}]}},
            {"kind": "ConfigMap", "spec": {}}
        ]});
        assert_eq!(
            served_resources(&list),
            vec![(
                "platform.pave.dev/v1alpha1".to_owned(),
                "components".to_owned()
            )]
        );
        let single = serde_json::json!({"kind": "CustomResourceDefinition", "spec": {"group": "g.dev",
            "names": {"plural": "things"}, "versions": [{"name": "v1", "served": true}]}});
        assert_eq!(
            served_resources(&single),
            vec![("g.dev/v1".to_owned(), "things".to_owned())]
        );
    }

    #[test]
    fn fatal_lines_are_recognised() {
        assert!(is_fatal_log_line(
            "F1126 14:00:00.000000    1 server.go:1] error: boom"
        ));
        assert!(is_fatal_log_line("Error: unknown flag: --nope"));
        assert!(!is_fatal_log_line(
            "I1126 14:00:00.000000    1 gc.go:1] Fine"
        ));
        assert!(!is_fatal_log_line("Failed to do a thing, retrying"));
    }

    #[test]
    fn random_suffixes_are_dns_labels_and_differ() {
        let (a, b) = (random_suffix(), random_suffix());
        assert_ne!(a, b);
        assert!(
            a.len() == 8
                && a.chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
    }
}
