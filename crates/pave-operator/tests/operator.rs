//! The real `pave-operator` binary against the real test bed: it starts, becomes
//! ready, acknowledges a Component applied with kubectl, leaves a steady cluster
//! alone, and stops cleanly on SIGTERM. What it cannot get past exits with one clear line;
//! what a person fixes in the cluster is waited for and named in `/readyz`.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{CATALOG, Operator, eventually, kubectl_apply};
use pave_testenv::{Options, TestEnv};
use serde_json::Value;

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
    // Its only reference is its owner, a group, which exists once named.
    assert_eq!(ready["status"], "True", "{obj}");
    assert_eq!(ready["reason"], "Resolved", "{obj}");
    assert_eq!(obj["status"]["relations"][0]["type"], "ownedBy", "{obj}");
    assert!(operator.counter("pave_operator_reconciles_total", CATALOG) > 0.0);

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

/// CRDs not installed yet are something a person fixes in the cluster, so the operator
/// waits instead of exiting into a crash loop: it says so once in the log and in
/// `/readyz` (while `/healthz` answers, so a liveness probe leaves it alone), and
/// starts by itself once the CRDs are served.
#[test]
fn cluster_without_pave_crds_waits_naming_the_fix_then_starts() {
    // A control plane of its own: the shared one has the CRDs installed.
    let env = TestEnv::start(Options::default()).expect("start a test bed without CRDs");
    let mut operator = Operator::start(&env);
    let problem = "CRDs components.platform.pave.dev, developerenvironments.platform.pave.dev, \
         scorecards.platform.pave.dev, groups.platform.pave.dev, users.platform.pave.dev, \
         systems.platform.pave.dev, domains.platform.pave.dev, apis.platform.pave.dev, \
         resources.platform.pave.dev are not installed: install pave's CRDs with \
         'kubectl apply --server-side -f crds/' (or 'kubectl pave crds | kubectl apply \
         --server-side -f -', or the chart without --skip-crds); pave starts once they are served";
    eventually(
        Duration::from_secs(30),
        "/readyz naming the missing CRDs",
        || {
            let (code, body) = operator.get("/readyz");
            (code == 503 && body.starts_with(&format!("{problem}\n"))).then_some(())
        },
    );
    assert_eq!(operator.get("/healthz").0, 200);
    // Several retries later (1, 2, 4 s apart), still one line.
    std::thread::sleep(Duration::from_secs(8));
    let log = operator.log.lock().unwrap().clone();
    assert_eq!(log.matches(problem).count(), 1, "{log}");

    let crds = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../crds");
    env.run_kubectl(&["apply", "--server-side", "-f", crds.to_str().unwrap()])
        .expect("install the CRDs");
    eventually(Duration::from_secs(30), "/readyz answering 200", || {
        (operator.get("/readyz").0 == 200).then_some(())
    });
    assert!(operator.log.lock().unwrap().contains("resolved"));
    let status = operator.terminate(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{}", operator.log.lock().unwrap());
}

/// Two clusters on defaults in one AWS account must not sweep each other's resources,
/// so the default cluster id is this cluster's own: the `kube-system` namespace's UID,
/// which lives as long as the cluster and survives restarts. It is logged at start.
#[test]
fn the_default_cluster_id_is_the_kube_system_namespace_uid() {
    // A control plane of its own: nothing else reconciles there, and its kube-system
    // UID is not the shared one's.
    let crds = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../crds");
    let env = TestEnv::start(Options {
        crd_dir: Some(crds),
        ..Options::default()
    })
    .expect("start a test bed");
    let uid = env
        .run_kubectl(&[
            "get",
            "namespace",
            "kube-system",
            "-o",
            "jsonpath={.metadata.uid}",
        ])
        .expect("kube-system exists");
    assert_eq!(uid.trim().len(), 36, "{uid}");
    let expected = format!("cluster_id=k8s-{}", uid.trim());
    for attempt in ["first start", "after a restart"] {
        let mut operator = Operator::start_with_default_cluster_id(&env);
        // Stopped once running: a stop during start-up is another matter.
        eventually(Duration::from_secs(30), "/readyz answering 200", || {
            (operator.get("/readyz").0 == 200).then_some(())
        });
        eventually(Duration::from_secs(10), "the cluster id in the log", || {
            let log = operator.log.lock().unwrap();
            log.lines()
                .any(|line| line.contains(&expected))
                .then_some(())
        });
        let status = operator.terminate(Duration::from_secs(10));
        assert_eq!(status.code(), Some(0), "{attempt}");
    }
}
