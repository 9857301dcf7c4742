//! Argo CD's side of an Application, played by a test: reading it, writing its status
//! as Argo CD's controller does, and removing its finalizer once "what it deployed" is
//! gone. For the tests that check pave's GitOps step without a running Argo CD.
#![allow(dead_code)] // each test binary uses a different part

use std::time::Duration;

use pave_testenv::TestEnv;
use serde_json::{Value, json};

use super::devenv::get;
use super::eventually;

pub fn application(env: &TestEnv, name: &str) -> Option<Value> {
    get(
        env,
        &[
            "get",
            "applications.argoproj.io",
            name,
            "-n",
            "argocd",
            "-o",
            "json",
        ],
    )
}

/// Writes `status` onto the Application as Argo CD's controller does: the CRD has no
/// status subresource, so it is a patch of the object itself.
pub fn report(env: &TestEnv, name: &str, status: Value) {
    env.run_kubectl(&[
        "patch",
        "applications.argoproj.io",
        name,
        "-n",
        "argocd",
        "--type=merge",
        "--field-manager=argocd-application-controller",
        "-p",
        &json!({ "status": status }).to_string(),
    ])
    .expect("write the Application's status");
}

pub fn synced_and_healthy(revision: &str) -> Value {
    json!({
        "sync": {"status": "Synced", "revision": revision},
        "health": {"status": "Healthy"},
        "operationState": operation(revision, "successfully synced (all tasks run)"),
    })
}

/// A finished sync operation, as the CRD requires it to be written.
pub fn operation(revision: &str, message: &str) -> Value {
    json!({
        "operation": {"sync": {"revision": revision}},
        "startedAt": "2026-12-02T00:00:00Z",
        "finishedAt": "2026-12-02T00:00:01Z",
        "phase": "Succeeded",
        "message": message,
    })
}

/// Removes Argo CD's finalizer, as its controller does once what the Application
/// deployed is gone.
pub fn release(env: &TestEnv, name: &str) {
    env.run_kubectl(&[
        "patch",
        "applications.argoproj.io",
        name,
        "-n",
        "argocd",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
    ])
    .expect("remove the Application's finalizer");
}

pub fn wait_for_application(env: &TestEnv, name: &str) -> Value {
    eventually(
        Duration::from_secs(60),
        &format!("Application {name}"),
        || application(env, name),
    )
}
