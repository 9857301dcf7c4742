//! The real `pave-operator` binary against the real test bed: it starts, becomes
//! ready, acknowledges a Component applied with kubectl, leaves a steady cluster
//! alone, and stops cleanly on SIGTERM. Startup failures exit with one clear line.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pave_testenv::{Options, TestEnv};
use serde_json::Value;

const CATALOG: &str = "pave-catalog";

/// A running operator. Dropping it kills the process, so a failed assertion never
/// leaves one behind; when the test is panicking its log is printed first.
struct Operator {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl Operator {
    fn start(env: &TestEnv) -> Operator {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pave-operator"))
            .args(["--metrics-addr", "127.0.0.1:0", "--log-format", "text"])
            .env("KUBECONFIG", env.kubeconfig_path())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn pave-operator");
        let log = Arc::new(Mutex::new(String::new()));
        let (addr_tx, addr_rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = listening_address(&line) {
                    let _ = addr_tx.send(addr);
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        match addr_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => Operator { child, addr, log },
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().unwrap();
                panic!(
                    "pave-operator did not start listening ({status}):\n{}",
                    log.lock().unwrap()
                );
            }
        }
    }

    /// `GET path` on the operator's HTTP server: status code and body.
    fn get(&self, path: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(self.addr).expect("connect to the operator");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let code = response
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = response
            .split_once("\r\n\r\n")
            .map_or("", |(_, b)| b)
            .to_owned();
        (code, body)
    }

    /// The value of one counter series, e.g. `pave_operator_status_writes_total`
    /// for `controller="pave-catalog"`.
    fn counter(&self, name: &str, controller: &str) -> f64 {
        let (code, body) = self.get("/metrics");
        assert_eq!(code, 200, "{body}");
        let series = format!("{name}{{controller=\"{controller}\"}} ");
        body.lines()
            .find_map(|line| line.strip_prefix(&series))
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("no {series} in /metrics:\n{body}"))
    }

    /// Sends SIGTERM and waits up to `within` for the process to exit.
    fn terminate(&mut self, within: Duration) -> ExitStatus {
        let pid = i32::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                started.elapsed() < within,
                "pave-operator did not exit within {within:?} of SIGTERM:\n{}",
                self.log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- pave-operator log ----\n{}", self.log.lock().unwrap());
        }
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The address in the operator's `listening on http://ADDR` log line.
fn listening_address(line: &str) -> Option<SocketAddr> {
    let rest = &line[line.find("listening on http://")? + "listening on http://".len()..];
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '"')
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// Polls `check` until it returns `Some`, for at most `within`.
fn eventually<T>(within: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            started.elapsed() < within,
            "{what} did not happen within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn kubectl_apply(env: &TestEnv, manifest: &Value) {
    let mut child = env
        .kubectl()
        .args(["apply", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kubectl");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(manifest.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "kubectl apply: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn component(namespace: &str, description: &str) -> Value {
    serde_json::json!({
        "apiVersion": "platform.pave.dev/v1alpha1",
        "kind": "Component",
        "metadata": {"name": "payment-service", "namespace": namespace},
        "spec": {
            "type": "service",
            "lifecycle": "production",
            "owner": "payments-team",
            "description": description,
        },
    })
}

/// The Component once its status describes its current generation.
fn acknowledged(env: &TestEnv, namespace: &str) -> Value {
    eventually(
        Duration::from_secs(30),
        "status.observedGeneration == metadata.generation",
        || {
            let json = env
                .run_kubectl(&[
                    "get",
                    "component",
                    "payment-service",
                    "-n",
                    namespace,
                    "-o",
                    "json",
                ])
                .ok()?;
            let obj: Value = serde_json::from_str(&json).ok()?;
            let has_ready = obj["status"]["conditions"]
                .as_array()?
                .iter()
                .any(|c| c["type"] == "Ready");
            (obj["status"]["observedGeneration"] == obj["metadata"]["generation"] && has_ready)
                .then_some(obj)
        },
    )
}

#[test]
fn acknowledges_components_writes_only_on_change_and_stops_on_sigterm() {
    let env = TestEnv::shared();
    let namespace = env.namespace("operator");
    let mut operator = Operator::start(env);
    eventually(Duration::from_secs(30), "/readyz answering 200", || {
        (operator.get("/readyz").0 == 200).then_some(())
    });
    assert_eq!(operator.get("/healthz").0, 200);

    kubectl_apply(env, &component(&namespace, "first"));
    let obj = acknowledged(env, &namespace);
    let ready = obj["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap();
    assert_eq!(ready["status"], "Unknown", "{obj}");
    assert_eq!(ready["reason"], "NotImplemented", "{obj}");
    assert!(
        ready["message"].as_str().unwrap().contains("does not"),
        "{obj}"
    );
    assert!(
        obj["status"].get("phase").is_none(),
        "no phase may pretend work was done: {obj}"
    );
    assert!(operator.counter("pave_operator_reconcile_runs_total", CATALOG) > 0.0);

    // The operator's own write triggers one more reconcile; after that, silence.
    std::thread::sleep(Duration::from_secs(1));
    let writes = operator.counter("pave_operator_status_writes_total", CATALOG);
    assert!(writes >= 1.0);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        operator.counter("pave_operator_status_writes_total", CATALOG),
        writes,
        "a steady cluster must cause no status writes"
    );

    // A spec change is a new generation: exactly one write acknowledges it.
    kubectl_apply(env, &component(&namespace, "second"));
    let obj = acknowledged(env, &namespace);
    assert_eq!(obj["metadata"]["generation"], 2, "{obj}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        operator.counter("pave_operator_status_writes_total", CATALOG),
        writes + 1.0
    );

    let status = operator.terminate(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{}", operator.log.lock().unwrap());
}

#[test]
fn missing_configuration_and_unreachable_server_exit_1_with_one_line() {
    let dir = std::env::temp_dir().join(format!("pave-operator-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let unreachable = dir.join("unreachable.kubeconfig");
    std::fs::write(
        &unreachable,
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n\
         clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1', insecure-skip-tls-verify: true}}]\n\
         users: [{name: u, user: {token: not-a-secret}}]\n\
         contexts: [{name: c, context: {cluster: c, user: u}}]\n",
    )
    .unwrap();
    for (kubeconfig, expected) in [
        (
            dir.join("missing.kubeconfig"),
            "pave-operator: cannot load a Kubernetes configuration",
        ),
        (
            unreachable,
            "pave-operator: cannot reach the Kubernetes API server at https://127.0.0.1:1/",
        ),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_pave-operator"))
            .args(["--metrics-addr", "127.0.0.1:0"])
            .env("KUBECONFIG", &kubeconfig)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env("RUST_LOG", "off")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with(expected), "{stderr}");
        assert!(stderr.contains("and start again"), "{stderr}");
        assert!(!stderr.contains("not-a-secret"), "{stderr}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn cluster_without_pave_crds_exits_2_naming_the_fix() {
    // A control plane of its own: the shared one has the CRDs installed.
    let env = TestEnv::start(Options::default()).expect("start a test bed without CRDs");
    let output = Command::new(env!("CARGO_BIN_EXE_pave-operator"))
        .args(["--metrics-addr", "127.0.0.1:0"])
        .env("KUBECONFIG", env.kubeconfig_path())
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        "pave-operator: CRDs components.platform.pave.dev, developerenvironments.platform.pave.dev, \
         scorecards.platform.pave.dev are not installed: install pave's CRDs with \
         'kubectl apply --server-side -f crds/' (or 'kubectl pave crds | kubectl apply --server-side -f -') \
         and start again"
    );
}
