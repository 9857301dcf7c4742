//! Installs that cannot work yet: without the chart's RBAC, and without AWS
//! credentials. Each must say so once in the operator's log and in its readiness (what
//! `helm test --logs` prints), keep running rather than crash-loop, and become ready
//! once it is fixed with `helm upgrade`.

use std::time::Duration;

use serde_json::Value;

use super::{Bed, NAMESPACE, RELEASE, eventually, kubectl, operator_pod};

/// A problem as the operator's log line and `/readyz` word it.
const FORBIDDEN: &str = "cannot list and watch components.platform.pave.dev";
const NO_CREDENTIALS: &str = "no AWS credentials";

pub fn bad_input_is_reported_once_and_fixed_by_upgrades(bed: &Bed) {
    // No --wait: the pod is not expected to become ready.
    bed.install(&["--set", "rbac.create=false"]);
    let pod = reports_once_and_waits(bed, FORBIDDEN);
    assert!(
        log_of(bed, &pod).contains("cannot read the kube-system namespace"),
        "{}",
        log_of(bed, &pod)
    );
    helm_test_says(bed, FORBIDDEN);

    // Granting the roles is enough: the same process becomes ready.
    bed.upgrade(&["--set", "rbac.create=true", "--wait", "--timeout=2m"]);
    let after = operator_pod(bed.env);
    assert_eq!(
        after["metadata"]["name"],
        pod.as_str(),
        "the pod was replaced"
    );
    assert_eq!(after["status"]["containerStatuses"][0]["restartCount"], 0);
    assert!(log_of(bed, &pod).contains("resolved"));

    // No credentials at all (no Secret, no role, no instance role on this node).
    bed.upgrade(&["--set", "aws.credentialsSecret="]);
    let pod = reports_once_and_waits(bed, NO_CREDENTIALS);
    helm_test_says(bed, NO_CREDENTIALS);
    bed.upgrade(&[
        "--set",
        "aws.credentialsSecret=pave-aws",
        "--wait",
        "--timeout=2m",
    ]);
    assert_ne!(operator_pod(bed.env)["metadata"]["name"], pod.as_str());
    // Passing now, the test replaces the failed run's pod and then removes its own.
    super::helm_test_passes(bed);
    super::uninstall(bed);
}

/// Waits for the newest operator pod to log `problem`, then checks that, retries
/// later, it has said so exactly once, is running, not ready and never restarted.
/// Returns the pod's name.
fn reports_once_and_waits(bed: &Bed, problem: &str) -> String {
    let pod = eventually(
        Duration::from_secs(90),
        &format!("an operator pod logging '{problem}'"),
        || {
            let pod = newest_pod(bed)?;
            log_of(bed, &pod).contains(problem).then_some(pod)
        },
    );
    // The operator retries 1, 2, 4, 8 s apart: several retries, one line.
    std::thread::sleep(Duration::from_secs(16));
    let log = log_of(bed, &pod);
    let lines = log.lines().filter(|l| l.contains(problem)).count();
    assert_eq!(lines, 1, "'{problem}' logged {lines} times:\n{log}");
    let obj = pod_named(bed, &pod);
    let status = &obj["status"];
    assert_eq!(status["containerStatuses"][0]["restartCount"], 0, "{obj}");
    assert!(
        status["containerStatuses"][0]["state"]["running"].is_object(),
        "{obj}"
    );
    assert_eq!(status["containerStatuses"][0]["ready"], false, "{obj}");
    pod
}

/// `helm test --logs` fails, and what it prints names `problem`: the check pod read
/// it from the operator's `/readyz`.
fn helm_test_says(bed: &Bed, problem: &str) {
    let output = super::helm(
        bed.env,
        &["test", RELEASE, "-n", NAMESPACE, "--logs", "--timeout=2m"],
    );
    let text = output.expect_err("helm test passed on an operator that is not ready");
    assert!(text.contains("is not ready (503)"), "{text}");
    assert!(text.contains(problem), "{text}");
}

/// The newest operator pod not being deleted.
fn newest_pod(bed: &Bed) -> Option<String> {
    let newest = super::operator_pods(bed.env).pop()?;
    if !newest["metadata"]["deletionTimestamp"].is_null() {
        return None;
    }
    Some(newest["metadata"]["name"].as_str()?.to_owned())
}

fn pod_named(bed: &Bed, name: &str) -> Value {
    serde_json::from_str(&kubectl(
        bed.env,
        &["get", "pod", name, "-n", NAMESPACE, "-o", "json"],
    ))
    .unwrap()
}

/// The pod's whole log (empty until its container started).
fn log_of(bed: &Bed, pod: &str) -> String {
    bed.env
        .run_kubectl(&["logs", pod, "-n", NAMESPACE])
        .unwrap_or_default()
}
