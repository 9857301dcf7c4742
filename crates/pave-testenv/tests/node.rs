//! The node tier against the real binaries: a hardened pod runs on the kubelet with
//! containerd and runc, the API server reaches the kubelet for its logs, and stopping
//! the test bed leaves no process, mount or network namespace behind.

use std::path::Path;
use std::time::{Duration, Instant};

use pave_testenv::{Options, TestEnv, node};

fn eventually(within: Duration, what: &str, mut check: impl FnMut() -> Result<(), String>) {
    let started = Instant::now();
    loop {
        match check() {
            Ok(()) => return,
            Err(last) if started.elapsed() >= within => {
                panic!("{what} did not happen within {within:?}; last: {last}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(250)),
        }
    }
}

/// The pause image the node tier imports, run as pods must be run in a hardened
/// cluster: non-root, read-only root file system, no capabilities, RuntimeDefault
/// seccomp, and its service account's token projected in by the kubelet.
const HARDENED_POD: &str = r#"{"apiVersion": "v1", "kind": "Pod",
  "metadata": {"name": "hardened"},
  "spec": {"containers": [{"name": "pause", "image": "localhost/pause:testbed",
    "imagePullPolicy": "Never",
    "securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532,
      "readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false,
      "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}}]}}"#;

#[test]
fn a_hardened_pod_runs_and_the_node_is_cleared_on_stop() {
    let env = TestEnv::start(Options {
        node: true,
        ..Options::default()
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let state_dir = env.state_dir().to_owned();
    let kubectl = |args: &[&str], input: &str| {
        let out = env.kubectl_with_input(args, input.as_bytes());
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    };
    let node_ip = kubectl(
        &[
            "get",
            "node",
            node::NODE_NAME,
            "-o",
            "jsonpath={.status.addresses[?(@.type==\"InternalIP\")].address}",
        ],
        "",
    )
    .unwrap();
    assert_eq!(node_ip, node::NODE_IP);

    // ServiceAccount admission needs the namespace's default account, which the
    // controller manager creates shortly after the namespace.
    eventually(
        Duration::from_secs(30),
        "the default service account",
        || kubectl(&["get", "serviceaccount", "default", "-n", "default"], "").map(drop),
    );
    kubectl(&["create", "-n", "default", "-f", "-"], HARDENED_POD).unwrap();
    eventually(Duration::from_secs(90), "the pod to become Ready", || {
        let ready = kubectl(
            &[
                "get",
                "pod",
                "hardened",
                "-n",
                "default",
                "-o",
                "jsonpath={.status.podIP} {.status.conditions[?(@.type==\"Ready\")].status}",
            ],
            "",
        )?;
        if ready.ends_with("True") {
            Ok(())
        } else {
            Err(format!("{ready}\n{}", env.logs_tail(20)))
        }
    });
    let pod_ip = kubectl(
        &[
            "get",
            "pod",
            "hardened",
            "-n",
            "default",
            "-o",
            "jsonpath={.status.podIP}",
        ],
        "",
    )
    .unwrap();
    assert!(
        pod_ip.starts_with("10.214.0."),
        "a pod address from {}: {pod_ip}",
        node::POD_CIDR
    );
    let volumes = kubectl(
        &[
            "get",
            "pod",
            "hardened",
            "-n",
            "default",
            "-o",
            "jsonpath={.spec.volumes[*].projected.sources[*].serviceAccountToken.path}",
        ],
        "",
    )
    .unwrap();
    assert_eq!(
        volumes, "token",
        "ServiceAccount admission projects a token"
    );
    // The API server reaches the kubelet (its serving certificate, the client
    // certificate it presents, the kubelet's webhook authorization).
    kubectl(&["logs", "hardened", "-n", "default"], "").unwrap();

    drop(env);
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    assert!(
        !mounts.contains(&state_dir.display().to_string()),
        "mounts left under {}",
        state_dir.display()
    );
    assert!(
        !Path::new("/run/netns/pave-node").exists(),
        "the node's network namespace is left"
    );
    assert!(!state_dir.exists(), "{} is left", state_dir.display());
    let pause_left = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|p| std::fs::read_to_string(p.path().join("stat")).ok())
        .filter_map(|stat| {
            // "pid (comm) state ...": zombies are gone but for their parent's wait.
            let (comm, rest) = stat.split_once(" (")?.1.rsplit_once(") ")?;
            (!rest.starts_with('Z')).then(|| comm.to_owned())
        })
        .any(|comm| comm == "pause" || comm.starts_with("containerd-shim"));
    assert!(
        !pause_left,
        "a pod's process or a containerd shim is still running"
    );
}
