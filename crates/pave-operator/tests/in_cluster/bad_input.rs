//! Installs that cannot work yet: without the chart's RBAC, and without AWS
//! credentials. Each replica must say so once in its log and in its readiness (what
//! `helm test --logs` prints; a standby checks what it would need to lead, so either
//! replica answers the same), keep running rather than crash-loop, and become ready
//! once it is fixed with `helm upgrade`.

use std::time::Duration;

use serde_json::Value;

use super::{Bed, NAMESPACE, RELEASE, eventually, kubectl};

/// A problem as the operator's log line and `/readyz` word it.
const LEASE_FORBIDDEN: &str = "cannot take part in leader election on Lease pave-system/pave";
const KUBE_SYSTEM_FORBIDDEN: &str = "cannot read the kube-system namespace";
const NO_CREDENTIALS: &str = "no AWS credentials";

pub fn bad_input_is_reported_once_and_fixed_by_upgrades(bed: &Bed) {
    // No --wait: the pods are not expected to become ready. Both replicas, the
    // standby as much as the leader to be, say what they may not do.
    bed.install(&["--set", "rbac.create=false"]);
    let pods = report_once_and_wait(bed, &[LEASE_FORBIDDEN, KUBE_SYSTEM_FORBIDDEN]);
    helm_test_says(bed, LEASE_FORBIDDEN);

    // Granting the roles is enough: the same processes become ready, one leads.
    bed.upgrade(&["--set", "rbac.create=true", "--wait", "--timeout=2m"]);
    let (leader, standby) = super::replicas::one_of_two_replicas_leads(bed);
    let mut after = vec![leader, standby];
    after.sort();
    assert_eq!(after, pods, "the pods were replaced");
    for pod in &pods {
        let obj = pod_named(bed, pod);
        assert_eq!(
            obj["status"]["containerStatuses"][0]["restartCount"], 0,
            "{obj}"
        );
        assert!(
            log_of(bed, pod).contains("resolved"),
            "{}",
            log_of(bed, pod)
        );
    }
    // Passing now, the test replaces the failed run's pod and then removes its own.
    super::helm_test_passes(bed);
    super::uninstall(bed);

    // No credentials at all (no Secret, no role, no instance role on this node).
    bed.install(&["--set", "aws.credentialsSecret="]);
    let pods = report_once_and_wait(bed, &[NO_CREDENTIALS]);
    helm_test_says(bed, NO_CREDENTIALS);
    bed.upgrade(&[
        "--set",
        "aws.credentialsSecret=pave-aws",
        "--wait",
        "--timeout=2m",
    ]);
    let (leader, standby) = super::replicas::one_of_two_replicas_leads(bed);
    assert!(
        !pods.contains(&leader) && !pods.contains(&standby),
        "{pods:?}"
    );
    // Passing now, the test replaces the failed run's pod and then removes its own.
    super::helm_test_passes(bed);
    super::uninstall(bed);
}

/// Waits for both operator pods to log each of `problems`, then checks that, retries
/// later, each has said each exactly once, is running, not ready and never
/// restarted. Returns the pods' names, sorted.
fn report_once_and_wait(bed: &Bed, problems: &[&str]) -> Vec<String> {
    let pods = eventually(
        Duration::from_secs(90),
        &format!("two operator pods logging {problems:?}"),
        || {
            let pods = running_pods(bed);
            let all = pods.len() == 2
                && pods.iter().all(|pod| {
                    let log = log_of(bed, pod);
                    problems.iter().all(|p| log.contains(p))
                });
            all.then_some(pods)
        },
    );
    // The operator retries 1, 2, 4, 8 s apart: several retries, one line.
    std::thread::sleep(Duration::from_secs(16));
    for pod in &pods {
        let log = log_of(bed, pod);
        for problem in problems {
            let lines = log.lines().filter(|l| l.contains(problem)).count();
            assert_eq!(
                lines, 1,
                "'{problem}' logged {lines} times by {pod}:\n{log}"
            );
        }
        let obj = pod_named(bed, pod);
        let status = &obj["status"];
        assert_eq!(status["containerStatuses"][0]["restartCount"], 0, "{obj}");
        assert!(
            status["containerStatuses"][0]["state"]["running"].is_object(),
            "{obj}"
        );
        assert_eq!(status["containerStatuses"][0]["ready"], false, "{obj}");
    }
    pods
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

/// The operator pods not being deleted, by name, sorted.
fn running_pods(bed: &Bed) -> Vec<String> {
    let mut names: Vec<String> = super::operator_pods(bed.env)
        .into_iter()
        .filter(|pod| pod["metadata"]["deletionTimestamp"].is_null())
        .filter_map(|pod| Some(pod["metadata"]["name"].as_str()?.to_owned()))
        .collect();
    names.sort();
    names
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
