//! The test bed's kube-controller-manager runs the garbage collector: a child owned by
//! a DeveloperEnvironment goes away when the environment is deleted in the foreground,
//! as it would in a real cluster. Later issues rely on this for connection secrets and
//! Argo CD applications.

use std::time::Duration;

use pave_testenv::TestEnv;
use pave_tests::{kubectl_ok, wait_for};

#[test]
fn owned_child_is_collected_on_foreground_deletion() {
    let env = TestEnv::shared();
    let ns = env.namespace("gc");
    let ns = ns.name();
    kubectl_ok(
        env,
        &["apply", "-n", ns, "-f", "-"],
        r#"{"apiVersion": "platform.pave.dev/v1alpha1", "kind": "DeveloperEnvironment",
            "metadata": {"name": "owner"}, "spec": {"parameters": {"region": "us-east-1"}}}"#,
    );
    let uid = kubectl_ok(
        env,
        &[
            "get",
            "devenv",
            "owner",
            "-n",
            ns,
            "-o",
            "jsonpath={.metadata.uid}",
        ],
        "",
    );
    let child = serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "child", "ownerReferences": [{
            "apiVersion": "platform.pave.dev/v1alpha1", "kind": "DeveloperEnvironment",
            "name": "owner", "uid": uid, "blockOwnerDeletion": true}]},
        "data": {"k": "v"},
    });
    kubectl_ok(env, &["apply", "-n", ns, "-f", "-"], &child.to_string());

    kubectl_ok(
        env,
        &[
            "delete",
            "devenv",
            "owner",
            "-n",
            ns,
            "--cascade=foreground",
            "--wait=false",
        ],
        "",
    );
    wait_for(
        "the owned ConfigMap to be garbage-collected",
        Duration::from_secs(60),
        || {
            let left = kubectl_ok(
                env,
                &[
                    "get",
                    "configmap",
                    "child",
                    "-n",
                    ns,
                    "--ignore-not-found",
                    "-o",
                    "name",
                ],
                "",
            );
            if left.is_empty() { Ok(()) } else { Err(left) }
        },
    );
    wait_for(
        "the environment to be gone after its child",
        Duration::from_secs(30),
        || {
            let left = kubectl_ok(
                env,
                &[
                    "get",
                    "devenv",
                    "owner",
                    "-n",
                    ns,
                    "--ignore-not-found",
                    "-o",
                    "name",
                ],
                "",
            );
            if left.is_empty() { Ok(()) } else { Err(left) }
        },
    );
}
