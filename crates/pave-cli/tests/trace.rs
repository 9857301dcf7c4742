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

/// Creates the DeveloperEnvironment `name` with `spec`; returns its uid.
fn create_environment(env: &TestEnv, namespace: &str, name: &str, spec: Value) -> String {
    let manifest = json!({
        "apiVersion": "platform.pave.dev/v1alpha1",
        "kind": "DeveloperEnvironment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    });
    kubectl_stdin(env, &["create", "-f", "-"], &manifest.to_string());
    env.run_kubectl(&[
        "get",
        "developerenvironment",
        name,
        "-n",
        namespace,
        "-o",
        "jsonpath={.metadata.uid}",
    ])
    .unwrap()
}

/// Writes `status` through the status subresource, as the operator would.
fn set_status(env: &TestEnv, namespace: &str, name: &str, status: &Value) {
    env.run_kubectl(&[
        "patch",
        "developerenvironment",
        name,
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        &json!({ "status": status }).to_string(),
    ])
    .unwrap();
}

/// A condition the way the operator writes it (`conditions::new`), at generation 1.
fn condition(type_: &str, status: &str, reason: &str, message: &str) -> Value {
    condition_at(1, type_, status, reason, message)
}

/// A condition the way the operator writes it, observed at `generation`.
fn condition_at(generation: i64, type_: &str, status: &str, reason: &str, message: &str) -> Value {
    json!({"type": type_, "status": status, "reason": reason, "message": message,
           "observedGeneration": generation, "lastTransitionTime": "2025-01-01T00:00:00Z"})
}

/// An events.k8s.io event about the object with `uid`, as pave-operator publishes it;
/// one per reason and object.
fn event(
    env: &TestEnv,
    namespace: &str,
    name: &str,
    uid: &str,
    type_: &str,
    reason: &str,
    note: &str,
) {
    let now = format!("{}.000000Z", Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S"));
    let manifest = json!({
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": format!("{name}.{}", reason.to_ascii_lowercase()), "namespace": namespace},
        "eventTime": now,
        "reportingController": "platform.pave.dev/pave-operator",
        "reportingInstance": "pave-operator-test",
        "action": "Reconcile",
        "type": type_,
        "reason": reason,
        "note": note,
        "regarding": {
            "apiVersion": "platform.pave.dev/v1alpha1",
            "kind": "DeveloperEnvironment",
            "name": name,
            "namespace": namespace,
            "uid": uid,
        },
    });
    kubectl_stdin(env, &["create", "-f", "-"], &manifest.to_string());
}

/// A DeveloperEnvironment with the status of a failed database create, its
/// connection secret, and one event about it; returns its uid.
fn failing_environment(env: &TestEnv, namespace: &str, name: &str) -> String {
    let uid = create_environment(
        env,
        namespace,
        name,
        json!({"parameters": {"region": "us-east-1", "dbSize": "db.t3.micro"}}),
    );
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
    // Labelled the way pave labels the secrets it creates.
    env.run_kubectl(&[
        "label",
        "secret",
        &secret,
        "-n",
        namespace,
        &format!("platform.pave.dev/environment-uid={uid}"),
    ])
    .unwrap();

    set_status(
        env,
        namespace,
        name,
        &json!({
            "observedGeneration": 1,
            "phase": "Provisioning",
            "conditions": [
                condition("Ready", "False", "Provisioning", "DBInstance pave-t-db is creating"),
                condition("Recoverable", "True", "InvalidParameterCombination", DB_ERROR),
            ],
            "resources": [
                {"kind": "VPC", "name": "pave-t-vpc", "id": "vpc-0abc123", "state": "available"},
                {"kind": "Subnet", "name": "pave-t-subnet-a", "id": "subnet-0aa", "state": "available"},
                {"kind": "DBInstance", "name": "pave-t-db", "state": "creating", "message": DB_ERROR},
            ],
            "connectionSecretRef": {"name": secret, "namespace": namespace},
        }),
    );

    // One event about this environment and one about something else, which must
    // not show up: events are matched by uid, not by name.
    for (about_uid, reason) in [
        (uid.as_str(), "CreateFailed"),
        ("00000000-0000-0000-0000-000000000000", "SomeoneElses"),
    ] {
        let note = format!("{reason}: the database could not be created");
        event(env, namespace, name, about_uid, "Warning", reason, &note);
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

/// The tree and the `-o json` trace of `name`, both of which must succeed quietly.
fn trace_both(env: &TestEnv, namespace: &str, name: &str) -> (String, Value) {
    let output = trace(env.kubeconfig_path(), &["devenv", name, "-n", namespace]);
    let text = stdout(&output);
    assert!(output.status.success(), "{}\n{text}", stderr(&output));
    assert!(stderr(&output).is_empty(), "{}", stderr(&output));
    let output = trace(
        env.kubeconfig_path(),
        &["devenv", name, "-n", namespace, "-o", "json"],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let json = serde_json::from_slice(&output.stdout).expect("-o json prints JSON");
    (text, json)
}

/// The explanation lines under the heading.
fn notes_of(text: &str) -> Vec<&str> {
    text.lines()
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .map(str::trim)
        .collect()
}

/// The JSON trace's notes, as strings.
fn json_notes(json: &Value) -> Vec<String> {
    json["notes"]
        .as_array()
        .unwrap_or_else(|| panic!("no notes: {json}"))
        .iter()
        .map(|n| n.as_str().unwrap().to_owned())
        .collect()
}

/// The recent-events lines of the tree.
fn event_lines(text: &str) -> Vec<&str> {
    text.lines()
        .skip_while(|l| *l != "recent events:")
        .skip(1)
        .collect()
}

#[test]
fn a_foreign_connection_secret_is_named_as_in_the_way() {
    let env = TestEnv::shared();
    let namespace = env.namespace("trace-foreign");
    let ns = namespace.name();
    let uid = create_environment(
        env,
        ns,
        "taken",
        json!({"parameters": {"region": "us-east-1", "dbSize": "db.t3.micro"}}),
    );
    // Someone else's Secret, with the name pave would give the connection secret.
    env.run_kubectl(&[
        "create",
        "secret",
        "generic",
        "taken-connection",
        "-n",
        ns,
        "--from-literal=password=not-pave-s-never-printed",
    ])
    .unwrap();
    // What apply.rs writes on SecretOutcome::Foreign, before anything was created.
    let message = format!(
        "Secret {ns}/taken-connection exists and was not created by pave for this environment, \
         so pave will neither read its password nor write into it: delete or rename that \
         Secret, or choose another writeConnectionSecretsToNamespace"
    );
    set_status(
        env,
        ns,
        "taken",
        &json!({
            "observedGeneration": 1,
            "phase": "Failed",
            "conditions": [condition("Ready", "False", "Forbidden", &message)],
        }),
    );
    event(env, ns, "taken", &uid, "Warning", "Forbidden", &message);

    let (text, json) = trace_both(env, ns, "taken");
    assert!(
        text.starts_with(&format!(
            "DeveloperEnvironment {ns}/taken   phase Failed   Ready=False (Forbidden: {message})\n"
        )),
        "{text}"
    );
    assert_eq!(
        notes_of(&text),
        ["✗ refused (Forbidden); nothing is provisioned until what the message names is changed"],
        "{text}"
    );
    // The Secret row says the Secret is there and not pave's, not "not written yet".
    let secret = text.lines().find(|l| l.contains("Secret  ")).unwrap();
    assert!(
        secret.contains(&format!("{ns}/taken-connection")),
        "{secret}"
    );
    assert!(
        secret.ends_with(
            "in the way  ✗ pave did not create it for this environment, so it is never read or written"
        ),
        "{secret}"
    );
    assert!(
        !text.contains("never-printed"),
        "secret data leaked:\n{text}"
    );
    let events = event_lines(&text);
    assert_eq!(events.len(), 1, "{text}");
    assert!(
        events[0].contains(&format!(
            "Warning  Forbidden  Secret {ns}/taken-connection exists"
        )),
        "{text}"
    );

    assert_eq!(
        json_notes(&json),
        [format!(
            "✗ refused (Forbidden): {message}; nothing is provisioned until what the message \
             names is changed"
        )]
    );
    assert_eq!(
        json["secret"],
        json!({"name": "taken-connection", "namespace": ns, "exists": true, "foreign": true,
               "written": false})
    );
    assert_eq!(json["events"][0]["type"], "Warning");
    assert_eq!(json["events"][0]["reason"], "Forbidden");
}

#[test]
fn a_policy_violation_says_what_the_guardrails_refuse() {
    let env = TestEnv::shared();
    let namespace = env.namespace("trace-policy");
    let ns = namespace.name();
    create_environment(
        env,
        ns,
        "too-big",
        json!({"parameters": {"region": "eu-central-1", "dbSize": "db.r5.24xlarge"}}),
    );
    // Every refusal at once, joined with "; ", as apply.rs writes them.
    let message = "region \"eu-central-1\" is not allowed; allowed regions: us-east-1, \
                   ap-northeast-2 (allowedRegions in the operator configuration); database \
                   class \"db.r5.24xlarge\" is not allowed; allowed classes: db.t3.micro, \
                   db.t3.small (allowedDbClasses in the operator configuration)";
    set_status(
        env,
        ns,
        "too-big",
        &json!({
            "observedGeneration": 1,
            "phase": "Failed",
            "conditions": [condition("Ready", "False", "PolicyViolation", message)],
        }),
    );

    let (text, json) = trace_both(env, ns, "too-big");
    assert!(
        text.starts_with(&format!(
            "DeveloperEnvironment {ns}/too-big   phase Failed   Ready=False (PolicyViolation: {message})\n"
        )),
        "{text}"
    );
    let what_to_do = "nothing is provisioned until the spec keeps within the operator's \
                      guardrails, or the platform team changes the configuration the message names";
    assert_eq!(
        notes_of(&text),
        [format!("✗ refused (PolicyViolation); {what_to_do}")],
        "{text}"
    );
    assert_eq!(
        json_notes(&json),
        [format!(
            "✗ refused (PolicyViolation): {message}; {what_to_do}"
        )]
    );
    assert_eq!(json["conditions"][0]["reason"], "PolicyViolation");
}

#[test]
fn a_blocked_deletion_names_the_annotation_that_releases_it() {
    let env = TestEnv::shared();
    let namespace = env.namespace("trace-blocked");
    let ns = namespace.name();
    let uid = create_environment(
        env,
        ns,
        "stuck",
        json!({"parameters": {"region": "us-east-1", "dbSize": "db.t3.micro"},
               "compositeDeletePolicy": "Foreground"}),
    );
    // The operator's finalizer, released at the end so the namespace can go.
    struct Release<'a>(&'a TestEnv, &'a str);
    impl Drop for Release<'_> {
        fn drop(&mut self) {
            let _ = self.0.run_kubectl(&[
                "patch",
                "developerenvironment",
                "stuck",
                "-n",
                self.1,
                "--type=merge",
                "-p",
                r#"{"metadata":{"finalizers":null}}"#,
            ]);
        }
    }
    env.run_kubectl(&[
        "patch",
        "developerenvironment",
        "stuck",
        "-n",
        ns,
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":["platform.pave.dev/cloud-resources"]}}"#,
    ])
    .unwrap();
    let _release = Release(env, ns);
    env.run_kubectl(&[
        "delete",
        "developerenvironment",
        "stuck",
        "-n",
        ns,
        "--wait=false",
    ])
    .unwrap();

    // Deleting an object bumps its generation; the operator's status follows it.
    let generation: i64 = env
        .run_kubectl(&[
            "get",
            "developerenvironment",
            "stuck",
            "-n",
            ns,
            "-o",
            "jsonpath={.metadata.generation}",
        ])
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let condition = |type_: &str, status: &str, reason: &str, message: &str| {
        condition_at(generation, type_, status, reason, message)
    };
    // Teardown under way (teardown.rs, Teardown::Waiting): every resource still in the
    // cloud is marked "deleting" with the state the cloud reports; the instance is gone.
    let left = |kind: &str, name: &str, id: &str, state: &str| json!({"kind": kind, "name": name, "id": id, "state": state, "message": "deleting"});
    set_status(
        env,
        ns,
        "stuck",
        &json!({
            "observedGeneration": generation,
            "phase": "Deleting",
            "conditions": [
                condition("Ready", "False", "Deleting", "3 cloud resources left to delete"),
                condition("Synced", "True", "Synced", "the cloud matches the spec"),
            ],
            "resources": [
                left("VPC", "pave-t-vpc", "vpc-0abc123", "available"),
                left("SecurityGroup", "pave-t-db-sg", "sg-0db", "available"),
                left("DBInstance", "pave-t-db", "pave-t-db", "deleting"),
                {"kind": "Instance", "name": "pave-t-vm-0", "id": "i-0abc", "state": "deleted"},
            ],
        }),
    );
    let (text, json) = trace_both(env, ns, "stuck");
    assert!(
        text.starts_with(&format!(
            "DeveloperEnvironment {ns}/stuck   phase Deleting   \
             Ready=False (Deleting: 3 cloud resources left to delete)\n"
        )),
        "{text}"
    );
    let deletion = notes_of(&text)
        .into_iter()
        .find(|n| n.starts_with("deletion requested at "))
        .unwrap_or_else(|| panic!("no deletion note:\n{text}"))
        .to_owned();
    assert!(
        deletion.ends_with(
            "; waiting for platform.pave.dev/cloud-resources; left in the cloud: VPC pave-t-vpc \
             (available), SecurityGroup pave-t-db-sg (available), DBInstance pave-t-db (deleting)"
        ),
        "{text}"
    );
    assert!(json_notes(&json).contains(&deletion), "{json}");

    // Then the database's deletion is refused: teardown.rs's `blocked`, Terminal.
    let error = "DeleteDBInstance on pave-t-db: AccessDenied: User: \
                 arn:aws:iam::123456789012:user/pave-operator is not authorized to perform: \
                 rds:DeleteDBInstance on resource: arn:aws:rds:us-east-1:123456789012:db:pave-t-db";
    let message = format!(
        "{error}. pave keeps this environment until its deletion policy is carried out and \
         retries by itself once the cause is fixed; to release it now and leave its cloud \
         resources in place, annotate it platform.pave.dev/abandon-cloud-resources=true"
    );
    set_status(
        env,
        ns,
        "stuck",
        &json!({
            "conditions": [
                condition("Ready", "False", "DeletionBlocked", &message),
                condition("Synced", "True", "Synced", "the cloud matches the spec"),
                condition("Terminal", "True", "DeletionBlocked", error),
            ],
        }),
    );
    event(
        env,
        ns,
        "stuck",
        &uid,
        "Warning",
        "DeletionBlocked",
        &message,
    );

    let (text, json) = trace_both(env, ns, "stuck");
    assert!(
        text.starts_with(&format!(
            "DeveloperEnvironment {ns}/stuck   phase Deleting   \
             Ready=False (DeletionBlocked: {message})\n"
        )),
        "{text}"
    );
    let release = format!(
        "pave retries with backoff and releases it once the cause is fixed; to release it now \
         and leave its cloud resources in place: kubectl annotate developerenvironment -n {ns} \
         stuck platform.pave.dev/abandon-cloud-resources=true"
    );
    let notes = notes_of(&text);
    assert_eq!(
        notes[0],
        format!("✗ deletion blocked (DeletionBlocked); {release}"),
        "{text}"
    );
    // A blocked deletion is retried: it is not a spec to change.
    assert!(!text.contains("the spec must change"), "{text}");
    assert!(notes[1].starts_with("deletion requested at "), "{text}");
    let events = event_lines(&text);
    assert_eq!(events.len(), 1, "{text}");
    assert!(
        events[0].contains("Warning  DeletionBlocked  DeleteDBInstance on pave-t-db: AccessDenied"),
        "{text}"
    );

    let notes = json_notes(&json);
    assert_eq!(
        notes[0],
        format!("✗ deletion blocked (DeletionBlocked): {error}; {release}")
    );
    assert_eq!(json["phase"], "Deleting");
    assert!(json["deletionTimestamp"].is_string(), "{json}");
    assert_eq!(json["events"][0]["type"], "Warning");
    assert_eq!(json["events"][0]["reason"], "DeletionBlocked");
}

#[test]
fn a_recoverable_error_says_the_operator_retries() {
    let env = TestEnv::shared();
    let namespace = env.namespace("trace-retry");
    let ns = namespace.name();
    create_environment(
        env,
        ns,
        "no-capacity",
        json!({"parameters": {"region": "us-east-1", "dbSize": "db.t3.micro"}}),
    );
    // progress.rs's `failed` with a Recoverable CloudError.
    let error = "CreateDBInstance on pave-t-db: InsufficientDBInstanceCapacity: Cannot create a \
                 database instance because there is not enough capacity for db.t3.micro in \
                 us-east-1a (will retry)";
    set_status(
        env,
        ns,
        "no-capacity",
        &json!({
            "observedGeneration": 1,
            "phase": "Provisioning",
            "conditions": [
                condition("Ready", "False", "RecoverableError", error),
                condition("Recoverable", "True", "InsufficientDBInstanceCapacity", error),
                condition("Synced", "False", "CloudError", error),
            ],
            "resources": [
                {"kind": "VPC", "name": "pave-t-vpc", "id": "vpc-0abc123", "state": "available"},
                {"kind": "DBInstance", "name": "pave-t-db", "message": error},
            ],
        }),
    );

    let (text, json) = trace_both(env, ns, "no-capacity");
    assert!(
        text.starts_with(&format!(
            "DeveloperEnvironment {ns}/no-capacity   phase Provisioning   \
             Ready=False (RecoverableError: {error})\n"
        )),
        "{text}"
    );
    // One line for the error: Synced's CloudError says the same and is not repeated.
    assert_eq!(
        notes_of(&text),
        ["↻ Recoverable (InsufficientDBInstanceCapacity); the operator retries with backoff"],
        "{text}"
    );
    assert_eq!(
        json_notes(&json),
        [format!(
            "↻ Recoverable (InsufficientDBInstanceCapacity): {error}; the operator retries with backoff"
        )]
    );
    let db = text
        .lines()
        .find(|l| l.starts_with("├─ DBInstance "))
        .unwrap();
    assert!(db.ends_with(&format!("✗ {error}")), "{db}");
}

#[test]
fn a_missing_permission_says_what_to_grant() {
    let env = TestEnv::shared();
    let namespace = env.namespace("trace-denied");
    let ns = namespace.name();
    create_environment(
        env,
        ns,
        "denied",
        json!({"parameters": {"region": "us-east-1"}}),
    );
    // progress.rs's `failed` with a Terminal CloudError on the first create.
    let error = "CreateVpc on pave-t-vpc: UnauthorizedOperation: You are not authorized to \
                 perform this operation. User: arn:aws:iam::123456789012:user/pave-operator is \
                 not authorized to perform: ec2:CreateVpc";
    set_status(
        env,
        ns,
        "denied",
        &json!({
            "observedGeneration": 1,
            "phase": "Failed",
            "conditions": [
                condition("Ready", "False", "TerminalError", error),
                condition("Synced", "False", "CloudError", error),
                condition("Terminal", "True", "UnauthorizedOperation", error),
            ],
            "resources": [{"kind": "VPC", "name": "pave-t-vpc", "message": error}],
        }),
    );

    let (text, json) = trace_both(env, ns, "denied");
    let what_to_do = "a permission is missing: grant the operator's AWS identity the action the \
                      message names; the operator retries when the environment next changes \
                      (any edit, an annotation will do)";
    assert_eq!(
        notes_of(&text),
        [format!("✗ Terminal (UnauthorizedOperation); {what_to_do}")],
        "{text}"
    );
    assert!(!text.contains("the spec must change"), "{text}");
    assert_eq!(
        json_notes(&json),
        [format!(
            "✗ Terminal (UnauthorizedOperation): {error}; {what_to_do}"
        )]
    );
}

#[test]
fn a_kept_database_is_called_out_on_a_ready_environment() {
    let env = TestEnv::shared();
    let namespace = env.namespace("trace-kept");
    let ns = namespace.name();
    // dbSize was removed under deletionPolicy Orphan.
    create_environment(
        env,
        ns,
        "kept",
        json!({"parameters": {"region": "us-east-1"}, "deletionPolicy": "Orphan"}),
    );
    let message = "dbSize was removed, but deletionPolicy is Orphan, so pave keeps the database \
                   and what it needs (DBInstance pave-t-db, DBSubnetGroup pave-t-dbsubnets, \
                   SecurityGroup pave-t-db-sg): set dbSize again to use it, or set \
                   deletionPolicy: Delete to have it deleted";
    set_status(
        env,
        ns,
        "kept",
        &json!({
            "observedGeneration": 1,
            "phase": "Ready",
            "conditions": [
                condition("Ready", "True", "Available", "3 cloud resources available"),
                condition("Synced", "False", "DatabaseKept", message),
            ],
            "resources": [
                {"kind": "VPC", "name": "pave-t-vpc", "id": "vpc-0abc123", "state": "available"},
                {"kind": "Subnet", "name": "pave-t-subnet-a", "id": "subnet-0aa", "state": "available"},
                {"kind": "Subnet", "name": "pave-t-subnet-b", "id": "subnet-0bb", "state": "available"},
                {"kind": "SecurityGroup", "name": "pave-t-db-sg", "id": "sg-0db", "state": "available"},
                {"kind": "DBSubnetGroup", "name": "pave-t-dbsubnets", "id": "pave-t-dbsubnets", "state": "Complete"},
                {"kind": "DBInstance", "name": "pave-t-db", "id": "pave-t-db", "state": "available"},
            ],
        }),
    );

    let (text, json) = trace_both(env, ns, "kept");
    assert!(
        text.starts_with(&format!(
            "DeveloperEnvironment {ns}/kept   phase Ready   Ready=True\n"
        )),
        "{text}"
    );
    let note = format!("! Synced=False (DatabaseKept): {message}");
    assert_eq!(notes_of(&text), [note.as_str()], "{text}");
    assert_eq!(json_notes(&json), [note]);
}
