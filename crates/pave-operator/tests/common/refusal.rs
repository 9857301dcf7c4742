//! The API server refusing status writes to Components, with a
//! ValidatingAdmissionPolicy, while a guard lives: what it does when it will not take
//! a write, or a way to hold some writes back until a test lets them through.
#![allow(dead_code)] // each test binary uses a different part

use std::time::Duration;

use pave_testenv::TestEnv;
use serde_json::json;

use super::{eventually, kubectl_apply};

/// The message every refused write carries.
const MESSAGE: &str = "status writes refused by the test";

pub struct RefuseStatusWrites<'a> {
    env: &'a TestEnv,
    name: String,
}

impl<'a> RefuseStatusWrites<'a> {
    /// Refuses status writes to the Components of namespace `ns`; with `labelled`
    /// (`key`, `value`), only to those carrying that label.
    pub fn new(
        env: &'a TestEnv,
        ns: &str,
        labelled: Option<(&str, &str)>,
    ) -> RefuseStatusWrites<'a> {
        let name = format!("refuse-status-{ns}");
        let mut constraints = json!({
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}},
            "resourceRules": [{"apiGroups": ["platform.pave.dev"], "apiVersions": ["*"],
                               "operations": ["UPDATE"], "resources": ["components/status"]}],
        });
        if let Some((key, value)) = labelled {
            constraints["objectSelector"] = json!({"matchLabels": {key: value}});
        }
        kubectl_apply(
            env,
            &json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": name},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": constraints,
                "validations": [{"expression": "false", "message": MESSAGE}],
            }}),
        );
        kubectl_apply(
            env,
            &json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
                    "metadata": {"name": name},
                    "spec": {"policyName": name, "validationActions": ["Deny"]}}),
        );
        RefuseStatusWrites { env, name }
    }

    /// Waits until the API server enforces the policy on `component` (one it
    /// matches): the API server applies a policy once it has loaded it, and a server
    /// dry run of a status patch shows when that is.
    pub fn wait_enforced(&self, ns: &str, component: &str) {
        eventually(Duration::from_secs(30), "status writes refused", || {
            let refused = self.env.run_kubectl(&[
                "patch",
                "component",
                component,
                "-n",
                ns,
                "--subresource=status",
                "--type=merge",
                "--dry-run=server",
                "-p",
                r#"{"status":{"impact":0}}"#,
            ]);
            refused
                .is_err_and(|e| e.to_string().contains(MESSAGE))
                .then_some(())
        });
    }

    /// Lets the writes through: the policy goes with the guard.
    pub fn release(self) {}
}

impl Drop for RefuseStatusWrites<'_> {
    fn drop(&mut self) {
        let _ = self.env.run_kubectl(&[
            "delete",
            &format!("validatingadmissionpolicybinding/{}", self.name),
            &format!("validatingadmissionpolicy/{}", self.name),
            "--ignore-not-found",
        ]);
    }
}
