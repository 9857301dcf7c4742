//! Two replicas of the real `pave-operator` with leader election on the real control
//! plane: exactly one acts, a standby takes over from a killed leader within the
//! lease duration, at once from one that stopped cleanly, and a leader cut off from
//! the API server steps down before a standby may take the lease.

mod common;

use std::io::ErrorKind;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::devenv::{delete, environment, wait_gone, wait_phase};
use common::proxy::one_operator_at_a_time;
use common::{CATALOG, Operator, eventually, holds_for, kubectl_apply};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use pave_testenv::TestEnv;
use serde_json::Value;

const ENVIRONMENTS: &str = "pave-environments";

/// Short, so the test waits seconds, not the chart's 15 s.
const LEASE_SECONDS: u64 = 4;

fn replica(
    env: &TestEnv,
    kubeconfig: &std::path::Path,
    lease: &str,
    ns: &str,
    id: &str,
    seconds: u64,
) -> Operator {
    let duration = seconds.to_string();
    Operator::start_with_args(
        env,
        kubeconfig,
        &[
            "--leader-elect",
            "--lease-name",
            lease,
            "--lease-namespace",
            ns,
            "--lease-duration",
            &duration,
            "--leader-identity",
            id,
        ],
    )
}

/// Every AWS request the replica made (`pave_operator_aws_requests_total`, summed).
fn aws_requests(operator: &Operator) -> f64 {
    let (_, text) = operator.get("/metrics");
    text.lines()
        .filter(|l| l.starts_with("pave_operator_aws_requests_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn leading(operator: &Operator) -> bool {
    operator.metric("pave_operator_leader") == 1.0
}

fn holder(env: &TestEnv, ns: &str, lease: &str) -> Option<String> {
    let json = env
        .run_kubectl(&["get", "lease", lease, "-n", ns, "-o", "json"])
        .ok()?;
    let lease: Value = serde_json::from_str(&json).ok()?;
    lease["spec"]["holderIdentity"].as_str().map(str::to_owned)
}

fn component(ns: &str, name: &str) -> Value {
    serde_json::json!({
        "apiVersion": "platform.pave.dev/v1alpha1",
        "kind": "Component",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"type": "service", "lifecycle": "production", "owner": "team-a"},
    })
}

/// Waits until a Component's status names its generation: some replica reconciled it.
fn acknowledged(env: &TestEnv, ns: &str, name: &str) {
    eventually(
        Duration::from_secs(30),
        "the Component acknowledged",
        || {
            let json = env
                .run_kubectl(&["get", "component", name, "-n", ns, "-o", "json"])
                .ok()?;
            let obj: Value = serde_json::from_str(&json).ok()?;
            (obj["status"]["observedGeneration"] == obj["metadata"]["generation"]).then_some(())
        },
    );
}

fn ready(operator: &Operator) {
    eventually(Duration::from_secs(30), "/readyz answering 200", || {
        (operator.get("/readyz").0 == 200).then_some(())
    });
}

fn kill(operator: &mut Operator) {
    let pid = i32::try_from(operator.pid()).unwrap();
    // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    operator.wait_for_exit(Duration::from_secs(5));
}

#[test]
fn one_replica_acts_and_a_standby_takes_over_from_a_killed_or_stopped_leader() {
    let _turn = one_operator_at_a_time();
    let env = TestEnv::shared();
    let ns = env.namespace("leader");
    let lease = "pave-leader-test";
    let kubeconfig = env.kubeconfig_path();
    let mut a = replica(env, kubeconfig, lease, &ns, "replica-a", LEASE_SECONDS);
    eventually(Duration::from_secs(30), "replica-a leading", || {
        leading(&a).then_some(())
    });
    let b = replica(env, kubeconfig, lease, &ns, "replica-b", LEASE_SECONDS);
    // Readiness does not depend on the lease: the standby is ready too.
    ready(&a);
    ready(&b);
    assert_eq!(holder(env, &ns, lease).as_deref(), Some("replica-a"));
    assert!(!leading(&b));

    kubectl_apply(env, &component(&ns, "web"));
    acknowledged(env, &ns, "web");
    let parameters =
        serde_json::json!({"region": "eu-west-1", "dbSize": "db.t3.micro", "clusterSize": "small"});
    kubectl_apply(
        env,
        &environment(&ns, "env", parameters, serde_json::json!({})),
    );
    wait_phase(env, &ns, "env", "Ready");
    assert!(a.counter("pave_operator_reconciles_total", CATALOG) > 0.0);
    assert!(
        aws_requests(&a) > 0.0,
        "the leader provisioned the environment"
    );
    holds_for(Duration::from_secs(2), "the standby doing nothing", || {
        let runs = b.counter("pave_operator_reconciles_total", CATALOG)
            + b.counter("pave_operator_reconciles_total", ENVIRONMENTS);
        let writes = b.counter("pave_operator_status_writes_total", CATALOG)
            + b.counter("pave_operator_status_writes_total", ENVIRONMENTS);
        match (runs, writes, aws_requests(&b), leading(&b)) {
            (0.0, 0.0, 0.0, false) => Ok(()),
            other => Err(format!("runs, writes, AWS requests, leading: {other:?}")),
        }
    });
    delete(env, &ns, "env");
    wait_gone(env, &ns, "env", Duration::from_secs(60));

    // A leader killed without a chance to release: the standby waits out the lease.
    kill(&mut a);
    let killed = Instant::now();
    eventually(
        Duration::from_secs(LEASE_SECONDS + 10),
        "replica-b leading",
        || leading(&b).then_some(()),
    );
    let takeover = killed.elapsed();
    eprintln!("takeover after SIGKILL: {takeover:?} (lease {LEASE_SECONDS}s)");
    assert!(
        takeover < Duration::from_secs(LEASE_SECONDS + 2),
        "took {takeover:?}\n{}",
        b.log.lock().unwrap()
    );
    assert_eq!(holder(env, &ns, lease).as_deref(), Some("replica-b"));
    kubectl_apply(env, &component(&ns, "api"));
    acknowledged(env, &ns, "api");
}

/// A leader that stops cleanly releases the lease, and a standby takes it at once:
/// here the standby's last look at the Lease saw a fresh renewal, so by itself it
/// would sleep most of a lease before looking again.
#[test]
fn a_standby_takes_a_released_lease_at_once() {
    let _turn = one_operator_at_a_time();
    let env = TestEnv::shared();
    let ns = env.namespace("leader-release");
    let lease = "pave-leader-release";
    let kubeconfig = env.kubeconfig_path();
    let long = 10;
    let mut a = replica(env, kubeconfig, lease, &ns, "replica-a", long);
    eventually(Duration::from_secs(30), "replica-a leading", || {
        leading(&a).then_some(())
    });
    eventually(
        Duration::from_secs(long),
        "a fresh renewal by replica-a",
        || {
            let json = env
                .run_kubectl(&["get", "lease", lease, "-n", &ns, "-o", "json"])
                .ok()?;
            let lease: Value = serde_json::from_str(&json).ok()?;
            let renewed: Timestamp = lease["spec"]["renewTime"].as_str()?.parse().ok()?;
            (Timestamp::now().duration_since(renewed) < SignedDuration::from_millis(500))
                .then_some(())
        },
    );
    let b = replica(env, kubeconfig, lease, &ns, "replica-b", long);
    ready(&b);
    // Past its first look at the Lease, which follows readiness by milliseconds.
    std::thread::sleep(Duration::from_millis(300));
    assert!(!leading(&b));
    // Timed from the signal: the handover includes a's own clean stop.
    let stopped = Instant::now();
    let status = a.terminate(Duration::from_secs(15));
    let log = a.log.lock().unwrap().clone();
    assert!(status.success(), "{status}\n{log}");
    assert!(log.contains("released the leader lease"), "{log}");
    eventually(Duration::from_secs(long + 10), "replica-b leading", || {
        leading(&b).then_some(())
    });
    let handover = stopped.elapsed();
    eprintln!("takeover after SIGTERM: {handover:?} (lease {long}s)");
    assert!(
        handover < Duration::from_secs(long / 2),
        "took {handover:?}"
    );
    assert_eq!(holder(env, &ns, lease).as_deref(), Some("replica-b"));
}

#[test]
fn a_leader_cut_off_from_the_api_server_steps_down_before_its_lease_expires() {
    let _turn = one_operator_at_a_time();
    let env = TestEnv::shared();
    let ns = env.namespace("leader-cut");
    let lease = "pave-leader-cut";
    let proxy = TcpProxy::start(env);
    let mut a = replica(
        env,
        &proxy.kubeconfig,
        lease,
        &ns,
        "replica-a",
        LEASE_SECONDS,
    );
    eventually(Duration::from_secs(30), "replica-a leading", || {
        leading(&a).then_some(())
    });
    let b = replica(
        env,
        env.kubeconfig_path(),
        lease,
        &ns,
        "replica-b",
        LEASE_SECONDS,
    );
    ready(&b);

    proxy.cut();
    let cut = Instant::now();
    let status = a.wait_for_exit(Duration::from_secs(LEASE_SECONDS + 5));
    let stepped_down = cut.elapsed();
    eprintln!("stepped down {stepped_down:?} after the cut (lease {LEASE_SECONDS}s)");
    let log = a.log.lock().unwrap().clone();
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("stepping down as leader"), "{log}");
    assert!(stepped_down < Duration::from_secs(LEASE_SECONDS), "{log}");
    eventually(
        Duration::from_secs(LEASE_SECONDS + 10),
        "replica-b leading",
        || leading(&b).then_some(()),
    );
}

/// A TCP proxy in front of the API server that can be cut: every connection closed
/// and no new one accepted, as when a node loses its network.
struct TcpProxy {
    kubeconfig: PathBuf,
    cut: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl TcpProxy {
    fn start(env: &TestEnv) -> TcpProxy {
        let text = std::fs::read_to_string(env.kubeconfig_path()).unwrap();
        let server = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("server: https://"))
            .expect("a server in the kubeconfig")
            .to_owned();
        let listener = TcpListener::bind(format!("{}:0", env.host_ip())).unwrap();
        listener.set_nonblocking(true).unwrap();
        let local = listener.local_addr().unwrap();
        let kubeconfig = env
            .state_dir()
            .join(format!("kubeconfig-proxied-{}", local.port()));
        std::fs::write(
            &kubeconfig,
            text.replace(&format!("https://{server}"), &format!("https://{local}")),
        )
        .unwrap();
        let cut = Arc::new(AtomicBool::new(false));
        let open = Arc::new(Mutex::new(Vec::new()));
        let (stop, streams) = (cut.clone(), open.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let Ok(upstream) = TcpStream::connect(&server) else {
                            continue;
                        };
                        let mut streams = streams.lock().unwrap();
                        streams.push(client.try_clone().unwrap());
                        streams.push(upstream.try_clone().unwrap());
                        pipe(client.try_clone().unwrap(), upstream.try_clone().unwrap());
                        pipe(upstream, client);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(e) => panic!("accept: {e}"),
                }
            }
            // The listener is dropped here: new connections are refused.
        });
        TcpProxy {
            kubeconfig,
            cut,
            open,
        }
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for stream in self.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.cut();
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(Shutdown::Write);
    });
}
