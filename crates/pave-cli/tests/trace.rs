//! `kubectl pave trace devenv` against a real API server (the shared test bed): the
//! environment, its status as the operator would write it, its connection secret and
//! an events.k8s.io event are created with kubectl, and the built binary must show
//! them the way a user asking "why is it not ready?" needs to see them.
//!
//! No operator runs here: the status is written with `kubectl patch --subresource=status`,
//! so the test controls exactly what trace has to explain.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use k8s_openapi::jiff::Timestamp;
use pave_testenv::TestEnv;
use serde_json::{Value, json};

const DB_ERROR: &str = "CreateDBInstance pave-t-db: InvalidParameterCombination: \
                        RDS does not offer db.t3.micro for postgres 9.6";

fn trace(kubeconfig: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kubectl-pave"))
        .arg("trace")
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        // Only the kubeconfig named above may decide where trace connects.
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT")
        .output()
        .expect("kubectl-pave starts")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn kubectl_stdin(env: &TestEnv, args: &[&str], input: &str) {
    let out = env.kubectl_with_input(args, input.as_bytes());
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}\n{input}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A DeveloperEnvironment with the status of a failed database create, its
/// connection secret, and one event about it; returns its uid.
fn failing_environment(env: &TestEnv, namespace: &str, name: &str) -> String {
    let manifest = json!({
        "apiVersion": "platform.pave.dev/v1alpha1",
        "kind": "DeveloperEnvironment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"parameters": {"region": "us-east-1", "dbSize": "db.t3.micro"}},
    });
    kubectl_stdin(env, &["create", "-f", "-"], &manifest.to_string());

    let secret = format!("{name}-connection");
    env.run_kubectl(&[
        "create",
        "secret",
        "generic",
        &secret,
        "-n",
        namespace,
        "--from-literal=password=hunter2-never-printed",
    ])
    .unwrap();

    let status = json!({"status": {
        "observedGeneration": 1,
        "phase": "Provisioning",
        "conditions": [
            {"type": "Ready", "status": "False", "reason": "Provisioning",
             "message": "DBInstance pave-t-db is creating", "observedGeneration": 1,
             "lastTransitionTime": "2025-01-01T00:00:00Z"},
            {"type": "Recoverable", "status": "True", "reason": "InvalidParameterCombination",
             "message": DB_ERROR, "observedGeneration": 1,
             "lastTransitionTime": "2025-01-01T00:00:00Z"},
        ],
        "resources": [
            {"kind": "VPC", "name": "pave-t-vpc", "id": "vpc-0abc123", "state": "available"},
            {"kind": "Subnet", "name": "pave-t-subnet-a", "id": "subnet-0aa", "state": "available"},
            {"kind": "DBInstance", "name": "pave-t-db", "state": "creating", "message": DB_ERROR},
        ],
        "connectionSecretRef": {"name": secret, "namespace": namespace},
    }});
    env.run_kubectl(&[
        "patch",
        "developerenvironment",
        name,
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        &status.to_string(),
    ])
    .unwrap();

    let uid = env
        .run_kubectl(&[
            "get",
            "developerenvironment",
            name,
            "-n",
            namespace,
            "-o",
            "jsonpath={.metadata.uid}",
        ])
        .unwrap();
    // One event about this environment and one about something else, which must
    // not show up: events are matched by uid, not by name.
    let now = format!("{}.000000Z", Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S"));
    for (event, about_uid, reason) in [
        ("mine", uid.as_str(), "CreateFailed"),
        (
            "other",
            "00000000-0000-0000-0000-000000000000",
            "SomeoneElses",
        ),
    ] {
        let manifest = json!({
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {"name": format!("{name}.{event}"), "namespace": namespace},
            "eventTime": now,
            "reportingController": "platform.pave.dev/pave-operator",
            "reportingInstance": "pave-operator-test",
            "action": "Reconcile",
            "type": "Warning",
            "reason": reason,
            "note": format!("{reason}: the database could not be created"),
            "regarding": {
                "apiVersion": "platform.pave.dev/v1alpha1",
                "kind": "DeveloperEnvironment",
                "name": name,
                "namespace": namespace,
                "uid": about_uid,
            },
        });
        kubectl_stdin(env, &["create", "-f", "-"], &manifest.to_string());
    }
    uid
}

#[test]
fn tree_shows_each_resource_its_id_and_the_failure() {
    let env = TestEnv::shared();
    let namespace = env.namespace("trace");
    let ns = namespace.name();
    failing_environment(env, ns, "feature-env");

    let output = trace(env.kubeconfig_path(), &["devenv", "feature-env", "-n", ns]);
    let text = stdout(&output);
    assert!(output.status.success(), "{}\n{text}", stderr(&output));
    assert!(stderr(&output).is_empty(), "{}", stderr(&output));

    let first = text.lines().next().unwrap();
    assert_eq!(
        first,
        format!(
            "DeveloperEnvironment {ns}/feature-env   phase Provisioning   \
             Ready=False (Provisioning: DBInstance pave-t-db is creating)"
        )
    );
    assert!(
        text.contains(&format!(
            "  ↻ Recoverable (InvalidParameterCombination): {DB_ERROR}; the operator retries with backoff"
        )),
        "{text}"
    );
    let line = |kind: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("├─ {kind} ")))
            .unwrap_or_else(|| panic!("no {kind} row:\n{text}"))
            .to_owned()
    };
    let vpc = line("VPC");
    assert!(
        vpc.contains("pave-t-vpc") && vpc.contains("vpc-0abc123") && vpc.ends_with("available"),
        "{vpc}"
    );
    let db = line("DBInstance");
    assert!(db.contains("pave-t-db"), "{db}");
    assert!(db.ends_with(&format!("creating   ✗ {DB_ERROR}")), "{db}");
    // The id column is aligned: the subnet's id starts where the VPC's does.
    assert_eq!(
        line("Subnet").find("subnet-0aa"),
        vpc.find("vpc-0abc123"),
        "{text}"
    );
    let secret = line("Secret");
    assert!(
        secret.contains(&format!("{ns}/feature-env-connection")) && secret.ends_with("exists"),
        "{secret}"
    );
    assert!(!text.contains("hunter2"), "secret data leaked:\n{text}");
    assert!(text.contains("└─ Argo CD "), "{text}");
    assert!(text.contains("(no gitops)"), "{text}");

    let events: Vec<&str> = text
        .lines()
        .skip_while(|l| *l != "recent events:")
        .skip(1)
        .collect();
    assert_eq!(events.len(), 1, "{text}");
    assert!(
        events[0]
            .contains("Warning  CreateFailed  CreateFailed: the database could not be created"),
        "{text}"
    );

    // -o json: the same facts, for scripts.
    let output = trace(
        env.kubeconfig_path(),
        &["devenv", "feature-env", "-n", ns, "-o", "json"],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let json: Value = serde_json::from_slice(&output.stdout).expect("-o json prints JSON");
    assert_eq!(json["environment"], format!("{ns}/feature-env"));
    assert_eq!(json["phase"], "Provisioning");
    assert_eq!(json["resources"][2]["message"], DB_ERROR);
    assert_eq!(json["resources"][2]["failed"], true);
    assert_eq!(json["resources"][0]["id"], "vpc-0abc123");
    assert_eq!(json["secret"]["exists"], true);
    assert_eq!(json["events"].as_array().unwrap().len(), 1);
    assert_eq!(json["events"][0]["reason"], "CreateFailed");
    assert!(json["gitops"].is_null());
}

#[test]
fn namespace_defaults_to_the_kubeconfig_context() {
    let env = TestEnv::shared();
    let namespace = env.namespace("trace-ctx");
    let ns = namespace.name();
    failing_environment(env, ns, "ctx-env");

    let kubeconfig = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{ns}.kubeconfig"));
    std::fs::copy(env.kubeconfig_path(), &kubeconfig).unwrap();
    let set = Command::new(env.bin_dir().join("kubectl"))
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .args([
            "config",
            "set-context",
            "--current",
            &format!("--namespace={ns}"),
        ])
        .output()
        .unwrap();
    assert!(set.status.success(), "{}", stderr(&set));

    let output = trace(&kubeconfig, &["devenv", "ctx-env"]);
    let _ = std::fs::remove_file(&kubeconfig);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).starts_with(&format!("DeveloperEnvironment {ns}/ctx-env ")),
        "{}",
        stdout(&output)
    );
}

#[test]
fn missing_environment_exits_1_with_one_line() {
    let env = TestEnv::shared();
    let namespace = env.namespace("trace-missing");
    let ns = namespace.name();

    let output = trace(env.kubeconfig_path(), &["devenv", "nope", "-n", ns]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        format!("kubectl-pave: developerenvironment {ns}/nope not found\n")
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn unreachable_cluster_exits_1_saying_what_to_do() {
    // Needs no test bed: nothing listens on port 1.
    let kubeconfig =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("trace-unreachable.kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1
kind: Config
clusters:
- name: gone
  cluster: {server: 'https://127.0.0.1:1', insecure-skip-tls-verify: true}
users:
- name: someone
  user: {token: not-a-real-token}
contexts:
- name: gone
  context: {cluster: gone, user: someone}
current-context: gone
",
    )
    .unwrap();
    let output = trace(&kubeconfig, &["devenv", "x", "-n", "y"]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(
        message.starts_with("kubectl-pave: cannot reach the API server at https://127.0.0.1:1"),
        "{message}"
    );
    assert!(
        message.contains("check that the cluster is running"),
        "{message}"
    );

    let output = trace(Path::new("/nonexistent/kubeconfig"), &["devenv", "x"]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(
        message.starts_with("kubectl-pave: no Kubernetes configuration found"),
        "{message}"
    );
    assert!(message.contains("set KUBECONFIG"), "{message}");
}
