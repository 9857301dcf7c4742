//! A real Argo CD on the test bed, for end-to-end GitOps tests: the upstream
//! application-controller and repo-server, Redis, and local git repositories.
//!
//! What is real, and what is not:
//!
//! - **The binaries are upstream's.** `scripts/build-argocd.sh` builds
//!   `github.com/argoproj/argo-cd/v3` v3.2.11 from the Go module proxy into the cache
//!   (minutes, once). It is one binary; the role comes from `ARGOCD_BINARY_NAME`
//!   (`argocd-application-controller`, `argocd-repo-server`). v3.2.11 is the release
//!   whose every dependency the proxy serves (v3.2.12 does not compile from it, v3.3
//!   and later are refused); it is built against k8s.io/client-go v0.34, the minor
//!   of the test bed's kube-apiserver.
//! - **Only two of its components run.** The application-controller (reconciles
//!   Applications, diffs, syncs, judges health) and the repo-server (clones the repository
//!   and renders manifests), with Redis as their cache. No argocd-server (API, UI,
//!   webhooks), no Dex, no ApplicationSet or notifications controller. What the server
//!   would do is done here directly: [`ArgoCd::start`] creates the `default`
//!   AppProject (which argocd-server creates on its first start, and nothing else does),
//!   and [`ArgoCd::refresh`] sets the `argocd.argoproj.io/refresh` annotation, which is
//!   what a git webhook makes the server do.
//! - **Out of cluster.** The processes run on this machine, not in pods.
//!   `ARGOCD_FAKE_IN_CLUSTER=true` with `KUBECONFIG` makes the in-cluster destination
//!   `https://kubernetes.default.svc` mean the test bed's API server, as the admin
//!   user (`system:masters`), not a ServiceAccount with Argo CD's RBAC.
//! - **Settings are the real ConfigMaps.** `argocd-cm`, `argocd-rbac-cm` and
//!   `argocd-secret` in the Argo CD namespace, labelled
//!   `app.kubernetes.io/part-of=argocd` (Argo CD ignores them without the label).
//!   [`ArgoOptions::cm_data`] is merged into `argocd-cm`: that is where Lua health checks
//!   of custom resources go, as `resource.customizations.health.<group>_<Kind>` keys.
//! - **The CRDs are upstream's** (`manifests/crds/` of the same module, copied into the
//!   cache at run time, never into this repository). The Application CRD is over 256 KiB,
//!   more than client-side apply's last-applied annotation can hold, so it is applied
//!   server-side; and it has **no status subresource**: Argo CD writes `status` with
//!   ordinary updates and patches of the whole object, so a test reading an
//!   Application's status sees what the controller wrote, and anything that writes the
//!   object may race with it. [`install_crds`] needs no Go build and is cheap enough for
//!   tests that only create Applications.
//! - **Repositories are local git repositories** ([`GitRepo`]): `file:///...` repoURLs
//!   are accepted as they are, and the repo-server clones them with the `git` CLI.
//!   Nothing here polls: the controller looks at the repository on each resync
//!   ([`ArgoOptions::app_resync`], 10 s by default against upstream's 3 minutes) or at
//!   once after [`ArgoCd::refresh`].
//! - **Redis is Debian's `redis-server`**, on a free loopback port, with no persistence.
//!
//! Measured by `tests/argocd.rs` on two busy cores (polling with kubectl every 0.1 s):
//! an automated Application is Synced and Healthy 0.8–1.9 s after it is created, and a
//! new commit is applied 0.5–1.4 s after it was made and the refresh annotation set.
//! Starting Argo CD adds a few seconds to a test bed's start. With one Application the
//! controller takes about 170 MiB and the repo-server about 100 MiB; with more
//! resources in the cluster the controller's cache grows.
//!
//! ```no_run
//! use pave_testenv::{Options, TestEnv, argocd::{ArgoCd, ArgoOptions, GitRepo}};
//! let env = TestEnv::start(Options::default()).unwrap();
//! let argo = ArgoCd::start(&env, ArgoOptions::default()).unwrap();
//! let repo = GitRepo::init(env.state_dir().join("repo")).unwrap();
//! repo.write("deploy/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n").unwrap();
//! let sha = repo.commit("first").unwrap();
//! // ... create an Application with repoURL repo.url() and path deploy ...
//! argo.refresh("my-app").unwrap();
//! ```

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use std::{env, fs, io, thread};

use crate::process::{Process, free_ports, http, stop_all};
use crate::{Error, TestEnv, io_error, random_suffix, run_script, write_file};

const BUILD_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/build-argocd.sh");
/// The two CRDs the controller needs; the ApplicationSet CRD (1 MiB) is left out, as no
/// ApplicationSet controller runs.
const CRD_FILES: [&str; 2] = ["application-crd.yaml", "appproject-crd.yaml"];
const CRD_NAMES: [&str; 2] = ["applications.argoproj.io", "appprojects.argoproj.io"];
const FIELD_MANAGER: &str = "pave-testenv";

/// Installs Argo CD's `Application` and `AppProject` CRDs (upstream's, from the Go
/// module: `build-argocd.sh crds`, seconds, no compile; `PAVE_ARGOCD_CRDS` names a
/// directory holding them instead) and returns once clients can use them. Idempotent:
/// several tests in one binary may call it on the same test bed.
pub fn install_crds(env: &TestEnv) -> Result<(), Error> {
    let dir = match env::var_os("PAVE_ARGOCD_CRDS") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(run_script(BUILD_SCRIPT, &["crds"])?),
    };
    let mut args = vec![
        "apply".to_owned(),
        "--server-side".to_owned(),
        format!("--field-manager={FIELD_MANAGER}"),
    ];
    for file in CRD_FILES {
        let path = dir.join(file);
        if !path.is_file() {
            return Err(Error::Prerequisite(format!(
                "{} is missing: unset PAVE_ARGOCD_CRDS, or run {BUILD_SCRIPT} crds",
                path.display()
            )));
        }
        args.extend(["-f".to_owned(), path.display().to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    env.run_kubectl(&args)?;
    // Polled here rather than with `kubectl wait`, which fails at once on a CRD so new
    // that it has no conditions yet. Established alone does not mean clients can use
    // them (envtest's rule, as in TestEnv::start): discovery must list both too.
    let started = Instant::now();
    loop {
        let problem = match crds_ready(env) {
            Ok(()) => break,
            Err(problem) => problem,
        };
        if started.elapsed() > Duration::from_secs(60) {
            return Err(Error::Kubectl {
                args: args.join(" "),
                stderr: format!("the CRDs were applied but not usable within 60s: {problem}"),
            });
        }
        thread::sleep(Duration::from_millis(200));
    }
    // kubectl cached discovery while applying, before the types were served.
    let _ = fs::remove_dir_all(env.state_dir().join("kubectl-cache"));
    Ok(())
}

/// `Ok` once both CRDs are Established and served; otherwise what is still missing.
fn crds_ready(env: &TestEnv) -> Result<(), String> {
    for name in CRD_NAMES {
        let crd: serde_json::Value = env
            .run_kubectl(&["get", "crd", name, "-o", "json"])
            .map_err(|e| e.to_string())
            .and_then(|out| serde_json::from_str(&out).map_err(|e| e.to_string()))?;
        let established = crd["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Established" && c["status"] == "True");
        if !established {
            return Err(format!("{name} is not Established yet"));
        }
    }
    let discovery: serde_json::Value = env
        .run_kubectl(&["get", "--raw", "/apis/argoproj.io/v1alpha1"])
        .map_err(|e| e.to_string())
        .and_then(|out| serde_json::from_str(&out).map_err(|e| e.to_string()))?;
    let served = discovery["resources"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for plural in ["applications", "appprojects"] {
        if !served.iter().any(|r| r["name"] == plural) {
            return Err(format!(
                "{plural} is not yet served at /apis/argoproj.io/v1alpha1"
            ));
        }
    }
    Ok(())
}

/// How to start [`ArgoCd`].
#[derive(Debug, Clone)]
pub struct ArgoOptions {
    /// Where Argo CD's settings, the `default` AppProject and the Applications it
    /// reconciles live (`--namespace`). One Argo CD per namespace.
    pub namespace: String,
    /// Merged into `argocd-cm`'s data, e.g. the Lua health checks of pave's kinds as
    /// `resource.customizations.health.platform.pave.dev_<Kind>`.
    pub cm_data: BTreeMap<String, String>,
    /// How often the controller compares every Application with its repository
    /// without being asked (`--app-resync`, whole seconds, no jitter). Upstream's
    /// default is 3 minutes; tests want changes picked up soon even without
    /// [`ArgoCd::refresh`].
    pub app_resync: Duration,
    /// Where the logs and the repo-server's clones go; `argocd-<namespace>` in the
    /// test bed's state dir when unset. Removed on drop.
    pub state_dir: Option<PathBuf>,
}

impl Default for ArgoOptions {
    fn default() -> Self {
        Self {
            namespace: "argocd".into(),
            cm_data: BTreeMap::new(),
            app_resync: Duration::from_secs(10),
            state_dir: None,
        }
    }
}

/// A running Argo CD: Redis, the repo-server and the application-controller, pointed at
/// one [`TestEnv`]. Dropping it stops all three and removes its state dir; it should be
/// dropped before the test bed it runs against.
#[derive(Debug)]
pub struct ArgoCd {
    namespace: String,
    state_dir: PathBuf,
    kubectl: PathBuf,
    kubeconfig: PathBuf,
    kubectl_cache: PathBuf,
    processes: Vec<Process>,
}

impl ArgoCd {
    /// Builds Argo CD if needed (`PAVE_ARGOCD_BIN` names a bin dir built by
    /// `build-argocd.sh build` instead), installs its CRDs, writes its settings and the
    /// `default` AppProject, then starts Redis, the repo-server and the
    /// application-controller and returns once each answers.
    pub fn start(env: &TestEnv, options: ArgoOptions) -> Result<ArgoCd, Error> {
        let bin_dir = match env::var_os("PAVE_ARGOCD_BIN") {
            Some(dir) => PathBuf::from(dir),
            None => PathBuf::from(run_script(BUILD_SCRIPT, &["build"])?),
        };
        for bin in ["argocd", "git-verify-wrapper.sh", "gpg-wrapper.sh"] {
            if !bin_dir.join(bin).is_file() {
                return Err(Error::Prerequisite(format!(
                    "{bin} is missing from {}: unset PAVE_ARGOCD_BIN, or run {BUILD_SCRIPT} build",
                    bin_dir.display()
                )));
            }
        }
        let redis = find_on_path("redis-server").ok_or_else(|| {
            Error::Prerequisite(format!(
                "redis-server is not on PATH: run {BUILD_SCRIPT} build as root (it installs Debian's), or apt-get install redis-server"
            ))
        })?;
        if find_on_path("git").is_none() {
            return Err(Error::Prerequisite(
                "git is not on PATH (the repo-server runs it): apt-get install git".into(),
            ));
        }
        install_crds(env)?;

        let state_dir = options.state_dir.clone().unwrap_or_else(|| {
            env.state_dir()
                .join(format!("argocd-{}", options.namespace))
        });
        fs::create_dir_all(state_dir.join("tmp"))
            .map_err(io_error(format!("create {}", state_dir.display())))?;
        let mut argo = ArgoCd {
            namespace: options.namespace.clone(),
            state_dir,
            kubectl: env.bin_dir().join("kubectl"),
            kubeconfig: env.kubeconfig_path().to_owned(),
            kubectl_cache: env.state_dir().join("kubectl-cache"),
            processes: Vec::new(),
        };
        argo.write_settings(env, &options)?;
        let redis_port = argo.with_port_retries(|argo| argo.start_redis(&redis))?;
        let repo_server_port =
            argo.with_port_retries(|argo| argo.start_repo_server(&bin_dir, redis_port))?;
        argo.with_port_retries(|argo| {
            argo.start_controller(&bin_dir, redis_port, repo_server_port, &options)
        })?;
        Ok(argo)
    }

    /// The namespace Argo CD's settings and Applications are in.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Where the logs and the repo-server's clones are.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// Asks the controller to compare Application `app_name` with its repository now,
    /// as argocd-server does when a git webhook arrives: the
    /// `argocd.argoproj.io/refresh=normal` annotation, which the controller removes
    /// when it has refreshed.
    pub fn refresh(&self, app_name: &str) -> Result<(), Error> {
        let args = [
            "annotate",
            "--overwrite",
            "-n",
            &self.namespace,
            "application.argoproj.io",
            app_name,
            "argocd.argoproj.io/refresh=normal",
        ];
        let output = self
            .kubectl_command()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(io_error(format!("run {}", self.kubectl.display())))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(Error::Kubectl {
                args: args.join(" "),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            })
        }
    }

    /// The last `lines` lines of Redis's, the repo-server's and the controller's logs,
    /// each headed by its name: for printing when a test fails.
    pub fn logs_tail(&self, lines: usize) -> String {
        self.processes
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

    /// Fails if a component has exited since it started.
    pub fn check_running(&mut self) -> Result<(), Error> {
        for p in &mut self.processes {
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

    fn kubectl_command(&self) -> Command {
        let mut cmd = Command::new(&self.kubectl);
        cmd.arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            .arg(format!("--cache-dir={}", self.kubectl_cache.display()));
        cmd
    }

    /// The namespace, `argocd-cm`, `argocd-rbac-cm`, `argocd-secret` and the `default`
    /// AppProject, applied server-side so a second start in the same namespace (after
    /// the first was dropped) takes over what the first wrote.
    fn write_settings(&self, env: &TestEnv, options: &ArgoOptions) -> Result<(), Error> {
        let ns = &self.namespace;
        let labels = serde_json::json!({"app.kubernetes.io/part-of": "argocd"});
        let meta =
            |name: &str| serde_json::json!({"name": name, "namespace": ns, "labels": labels});
        // argocd-server generates the key that signs its session tokens on first start;
        // the controller's settings manager reports an incomplete configuration without it.
        let secret_key: String = (0..4).map(|_| random_suffix()).collect();
        // No `data` at all when there is nothing to merge: an applied empty map would
        // make this field manager own `.data` as a whole, and every later apply of a
        // key by another manager (a platform team's `kubectl pave argocd-health |
        // kubectl apply --server-side`) a conflict.
        let mut argocd_cm = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": meta("argocd-cm")});
        if !options.cm_data.is_empty() {
            argocd_cm["data"] = serde_json::json!(options.cm_data);
        }
        let objects = [
            serde_json::json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": ns}}),
            argocd_cm,
            serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": meta("argocd-rbac-cm"), "data": {}}),
            serde_json::json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": meta("argocd-secret"),
                "stringData": {"server.secretkey": secret_key}}),
            serde_json::json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
            "metadata": {"name": "default", "namespace": ns},
            "spec": {
                "sourceRepos": ["*"],
                "destinations": [{"server": "*", "namespace": "*"}],
                "clusterResourceWhitelist": [{"group": "*", "kind": "*"}],
            }}),
        ];
        let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": objects});
        let args = [
            "apply",
            "--server-side",
            "--force-conflicts",
            &format!("--field-manager={FIELD_MANAGER}"),
            "-f",
            "-",
        ];
        let output = env.kubectl_with_input(&args, list.to_string().as_bytes());
        if output.status.success() {
            Ok(())
        } else {
            Err(Error::Kubectl {
                args: args.join(" "),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            })
        }
    }

    fn start_redis(&mut self, redis: &Path) -> Result<u16, Error> {
        let [port] = free_ports().map_err(io_error("pick a free port for redis-server"))?;
        let mut cmd = Command::new(redis);
        cmd.args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.state_dir);
        self.spawn("redis", cmd)?;
        self.wait_until("redis", Duration::from_secs(30), || redis_ping(port))?;
        Ok(port)
    }

    fn start_repo_server(&mut self, bin_dir: &Path, redis_port: u16) -> Result<u16, Error> {
        let [port, metrics] =
            free_ports().map_err(io_error("pick free ports for the repo-server"))?;
        let mut cmd = self.argocd_command(bin_dir, "argocd-repo-server");
        cmd.args(["--disable-tls", "--logformat", "text"])
            .args(["--redis", &format!("127.0.0.1:{redis_port}")])
            .args(["--address", "127.0.0.1", "--port", &port.to_string()])
            .args(["--metrics-address", "127.0.0.1"])
            .args(["--metrics-port", &metrics.to_string()]);
        self.spawn("argocd-repo-server", cmd)?;
        // `full=true` makes the repo-server call its own gRPC health service, so the
        // answer means the port the controller uses is serving.
        self.wait_until("argocd-repo-server", Duration::from_secs(60), || {
            http_ok(metrics, "/healthz?full=true")
        })?;
        Ok(port)
    }

    fn start_controller(
        &mut self,
        bin_dir: &Path,
        redis_port: u16,
        repo_server_port: u16,
        options: &ArgoOptions,
    ) -> Result<(), Error> {
        let [metrics] = free_ports().map_err(io_error("pick a free port for the controller"))?;
        let mut cmd = self.argocd_command(bin_dir, "argocd-application-controller");
        cmd.arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            .args(["--namespace", &self.namespace, "--logformat", "text"])
            .args(["--redis", &format!("127.0.0.1:{redis_port}")])
            .args(["--repo-server", &format!("127.0.0.1:{repo_server_port}")])
            .arg("--repo-server-plaintext")
            .args(["--metrics-port", &metrics.to_string()])
            .args([
                "--app-resync",
                &options.app_resync.as_secs().max(1).to_string(),
            ])
            .args(["--app-resync-jitter", "0"])
            // Argo CD 3 keeps each resource's health in Redis for argocd-server, which
            // the test bed does not run; persisted, it is in the Application's
            // `status.resources[].health` for tests to read.
            .arg("--persist-resource-health");
        self.spawn("argocd-application-controller", cmd)?;
        self.wait_until(
            "argocd-application-controller",
            Duration::from_secs(60),
            || http_ok(metrics, "/healthz"),
        )
    }

    /// The `argocd` binary in role `role`, out of cluster against the test bed, with
    /// the hack wrappers on PATH and temporary files (the repo-server's clones) in the
    /// state dir.
    fn argocd_command(&self, bin_dir: &Path, role: &str) -> Command {
        let mut cmd = Command::new(bin_dir.join("argocd"));
        let path = env::var_os("PATH").unwrap_or_default();
        let path =
            env::join_paths(std::iter::once(bin_dir.to_owned()).chain(env::split_paths(&path)))
                .unwrap_or(path);
        cmd.env("ARGOCD_BINARY_NAME", role)
            .env("ARGOCD_FAKE_IN_CLUSTER", "true")
            .env("KUBECONFIG", &self.kubeconfig)
            .env("ARGOCD_GPG_ENABLED", "false")
            .env("PATH", path)
            .env("TMPDIR", self.state_dir.join("tmp"))
            .current_dir(&self.state_dir);
        cmd
    }

    fn spawn(&mut self, name: &'static str, cmd: Command) -> Result<(), Error> {
        let log = self.state_dir.join(format!("{name}.log"));
        let action = format!("start {name} from {}", cmd.get_program().to_string_lossy());
        let process = Process::spawn(name, cmd, &log).map_err(io_error(action))?;
        self.processes.push(process);
        Ok(())
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
                    self.processes.retain(|p| p.name != component);
                }
                result => return result,
            }
        }
        unreachable!()
    }

    /// Polls `probe` until it succeeds; fails early when the component exits and with
    /// the probe's last complaint when `within` runs out.
    fn wait_until(
        &mut self,
        component: &'static str,
        within: Duration,
        mut probe: impl FnMut() -> Result<(), String>,
    ) -> Result<(), Error> {
        let started = Instant::now();
        loop {
            let problem = match probe() {
                Ok(()) => return Ok(()),
                Err(problem) => problem,
            };
            let process = self
                .processes
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
            thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for ArgoCd {
    fn drop(&mut self) {
        stop_all(&mut self.processes, Duration::from_secs(3), &[]);
        let _ = fs::remove_dir_all(&self.state_dir);
    }
}

fn http_ok(port: u16, path: &str) -> Result<(), String> {
    match http("GET", port, path, "") {
        Ok((200, _)) => Ok(()),
        Ok((status, body)) => Err(format!("GET {path} answered {status}: {}", body.trim())),
        Err(e) => Err(format!("GET {path}: {e}")),
    }
}

/// Redis's own liveness check: `PING` answered with `+PONG`.
fn redis_ping(port: u16) -> Result<(), String> {
    let ping = || -> io::Result<String> {
        let mut stream =
            TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        stream.write_all(b"PING\r\n")?;
        let mut answer = [0u8; 7];
        let n = stream.read(&mut answer)?;
        Ok(String::from_utf8_lossy(&answer[..n]).into_owned())
    };
    match ping() {
        Ok(answer) if answer.starts_with("+PONG") => Ok(()),
        Ok(answer) => Err(format!("PING answered {answer:?}")),
        Err(e) => Err(format!("PING: {e}")),
    }
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    env::split_paths(&env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}

/// A git repository in a local directory, for Argo CD to deploy from (`file://` URL).
/// Commits are made with the `git` CLI under a fixed author and committer, with the
/// machine's and the user's git configuration ignored, on branch `main`. The directory
/// is not removed on drop: put it in the test bed's state dir.
#[derive(Debug, Clone)]
pub struct GitRepo {
    dir: PathBuf,
}

impl GitRepo {
    /// Creates `dir` if needed and a repository in it with `main` as its branch.
    pub fn init(dir: impl AsRef<Path>) -> Result<GitRepo, Error> {
        let dir = dir.as_ref();
        fs::create_dir_all(dir).map_err(io_error(format!("create {}", dir.display())))?;
        // An absolute path, since the URL is handed to another process.
        let dir = dir
            .canonicalize()
            .map_err(io_error(format!("resolve {}", dir.display())))?;
        let repo = GitRepo { dir };
        repo.git(&["init", "--quiet", "--initial-branch=main"])?;
        Ok(repo)
    }

    /// `file:///...`, as an Application's `spec.source.repoURL`.
    pub fn url(&self) -> String {
        format!("file://{}", self.dir.display())
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Writes `contents` to `relative_path` in the work tree, creating directories.
    pub fn write(&self, relative_path: impl AsRef<Path>, contents: &str) -> Result<(), Error> {
        let path = self.dir.join(relative_path);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(io_error(format!("create {}", parent.display())))?;
        }
        write_file(&path, contents)
    }

    /// Commits everything in the work tree (additions, changes, deletions) and returns
    /// the new commit's full sha, which is what an Application's
    /// `status.sync.revision` shows once it is applied.
    pub fn commit(&self, message: &str) -> Result<String, Error> {
        self.git(&["add", "--all"])?;
        self.git(&["commit", "--quiet", "--allow-empty", "-m", message])?;
        Ok(self.git(&["rev-parse", "HEAD"])?.trim().to_owned())
    }

    fn git(&self, args: &[&str]) -> Result<String, Error> {
        let output = Command::new("git")
            .args(["-c", "commit.gpgsign=false"])
            .args(args)
            .current_dir(&self.dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "pave test bed")
            .env("GIT_AUTHOR_EMAIL", "testbed@pave.dev")
            .env("GIT_COMMITTER_NAME", "pave test bed")
            .env("GIT_COMMITTER_EMAIL", "testbed@pave.dev")
            .stdin(Stdio::null())
            .output()
            .map_err(io_error("run git (is it installed? apt-get install git)"))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(Error::Io {
                action: format!("run git {} in {}", args.join(" "), self.dir.display()),
                cause: io::Error::other(String::from_utf8_lossy(&output.stderr).trim().to_owned()),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_repo_commits_with_a_fixed_identity_on_main() {
        let dir = env::temp_dir().join(format!("pave-testenv-git-{}", random_suffix()));
        let repo = GitRepo::init(&dir).unwrap();
        assert!(repo.url().starts_with("file:///"), "{}", repo.url());
        repo.write("deploy/a.yaml", "a: 1\n").unwrap();
        let first = repo.commit("first").unwrap();
        repo.write("deploy/a.yaml", "a: 2\n").unwrap();
        let second = repo.commit("second").unwrap();
        assert_eq!(first.len(), 40);
        assert_ne!(first, second);
        let log = repo
            .git(&["log", "--format=%an <%ae>|%cn|%s", "main"])
            .unwrap();
        assert_eq!(
            log,
            "pave test bed <testbed@pave.dev>|pave test bed|second\n\
             pave test bed <testbed@pave.dev>|pave test bed|first\n"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
