//! Environments never lose data: the paths where pave could delete what it must keep,
//! keep what it must delete, or get stuck. The real operator, the real control plane,
//! moto for AWS; what the cloud holds is checked with boto3, not with pave's driver.
//!
//! Each test here failed on the operator before these paths were fixed.

mod common;

use std::time::Duration;

use common::devenv::{
    cloud, condition, delete, environment, get, get_environment, inventory, ready_environment,
    total, uid_of, wait_gone, wait_phase,
};
use common::{LogOnPanic, Operator, eventually, holds_for, kubectl_apply, operator_with_config};
use pave_testenv::TestEnv;
use serde_json::{Value, json};

/// The sweeper runs every second, so a wrong sweep shows within a test.
const CONFIG: &str = "
allowedRegions: [us-east-1, eu-west-1, ap-northeast-2]
sweepInterval: 1s
resyncInterval: 3s
";

const ABANDON: &str = "platform.pave.dev/abandon-cloud-resources";

fn operator() -> &'static Operator {
    operator_with_config(Some(CONFIG))
}

fn secret(env: &TestEnv, ns: &str, name: &str) -> Option<Value> {
    get(env, &["get", "secret", name, "-n", ns, "-o", "json"])
}

fn decoded(secret: &Value, key: &str) -> Option<String> {
    let b64 = secret["data"][key].as_str()?;
    let out = std::process::Command::new("base64")
        .arg("-d")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(b64.as_bytes())?;
            child.wait_with_output()
        })
        .ok()?;
    String::from_utf8(out.stdout).ok()
}

/// Restores the CRD from `crds/` when dropped, so a test that loosened it cannot
/// leave the next test a schema it did not expect.
struct RestoreCrd<'a>(&'a TestEnv);

impl Drop for RestoreCrd<'_> {
    fn drop(&mut self) {
        let crd = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../crds/developerenvironments.platform.pave.dev.yaml");
        let _ = self.0.run_kubectl(&[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            crd.to_str().unwrap(),
        ]);
    }
}

/// An environment stored under a schema this operator cannot read (an older operator
/// after a rollback, a newer CRD) still exists: the sweeper must not take it for gone
/// and delete its resources.
#[test]
fn an_environment_the_operator_cannot_read_keeps_its_resources() {
    let _log = LogOnPanic;
    operator();
    let env = TestEnv::shared();
    let ns = env.namespace("devenv-unreadable");
    let ns = ns.name();
    let region = "eu-west-1";
    let uid = ready_environment(env, ns, "unreadable", json!({"region": region}), json!({}));
    let before = inventory(&cloud(env, region, &uid));
    assert_eq!(
        before.len(),
        4,
        "VPC, 2 subnets, a security group: {before:?}"
    );

    // A schema without clusterSize's enum, as a newer pave might have; then a value
    // this operator's types do not know.
    let _restore = RestoreCrd(env);
    env.run_kubectl(&[
        "patch",
        "crd",
        "developerenvironments.platform.pave.dev",
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/parameters/properties/clusterSize/enum"}]"#,
    ])
    .expect("loosen the CRD");
    eventually(
        Duration::from_secs(20),
        "the API server accepting clusterSize huge",
        || {
            env.run_kubectl(&[
                "patch",
                "devenv",
                "unreadable",
                "-n",
                ns,
                "--type=merge",
                "-p",
                r#"{"spec":{"parameters":{"clusterSize":"huge"}}}"#,
            ])
            .ok()
        },
    );
    let unreadable = format!("DeveloperEnvironment {ns}/unreadable does not match pave's schema");
    eventually(
        Duration::from_secs(20),
        "the operator seeing an object it cannot read",
        || {
            operator()
                .log
                .lock()
                .unwrap()
                .contains(&unreadable)
                .then_some(())
        },
    );
    holds_for(
        Duration::from_secs(6),
        "the unreadable environment's resources",
        || {
            let now = inventory(&cloud(env, region, &uid));
            (now == before).then_some(()).ok_or(format!("{now:?}"))
        },
    );

    // Readable again, it is deleted like any other.
    env.run_kubectl(&[
        "patch",
        "devenv",
        "unreadable",
        "-n",
        ns,
        "--type=merge",
        "-p",
        r#"{"spec":{"parameters":{"clusterSize":"none"}}}"#,
    ])
    .expect("make it readable again");
    drop(_restore);
    delete(env, ns, "unreadable");
    wait_gone(env, ns, "unreadable", Duration::from_secs(60));
    eventually(Duration::from_secs(30), "nothing left in the cloud", || {
        (total(&cloud(env, region, &uid)) == 0).then_some(())
    });
}

/// The orphan mark is honoured per environment: when one resource of an orphaned
/// environment has lost its mark (a crash while marking, a tag edited by hand), the
/// sweeper keeps all of them rather than deleting the ones still marked.
#[test]
fn an_orphaned_environment_is_kept_whole_when_one_resource_lost_its_mark() {
    let _log = LogOnPanic;
    operator();
    let env = TestEnv::shared();
    let ns = env.namespace("devenv-orphan-mark");
    let ns = ns.name();
    let region = "ap-northeast-2";
    let uid = ready_environment(
        env,
        ns,
        "kept",
        json!({"region": region}),
        json!({"deletionPolicy": "Orphan"}),
    );
    delete(env, ns, "kept");
    wait_gone(env, ns, "kept", Duration::from_secs(30));
    let orphaned = cloud(env, region, &uid);
    let before = inventory(&orphaned);
    assert_eq!(before.len(), 4, "{before:?}");
    for kind in ["VPC", "Subnet", "SecurityGroup"] {
        for item in orphaned[kind].as_array().unwrap() {
            assert_eq!(item["tags"]["pave.dev/orphaned"], "true", "{kind} {item}");
        }
    }
    let vpc = orphaned["VPC"][0]["id"].as_str().unwrap();
    env.boto3(&format!(
        r#"
import boto3
boto3.client("ec2", region_name={region:?}).delete_tags(Resources=[{vpc:?}], Tags=[{{"Key": "pave.dev/orphaned"}}])
"#
    ))
    .expect("remove the VPC's orphan mark");
    holds_for(
        Duration::from_secs(6),
        "the orphaned environment's resources",
        || {
            let now = inventory(&cloud(env, region, &uid));
            (now == before).then_some(()).ok_or(format!("{now:?}"))
        },
    );
}

/// A Terminal error while deleting (here RDS deletion protection, switched on out of
/// band) keeps the environment, in phase Deleting with a condition that says what is
/// wrong and how to release it on purpose; the annotation then releases it and leaves
/// every resource in place, marked so the sweeper keeps it, with an Event saying what
/// was left.
#[test]
fn a_terminal_error_during_deletion_keeps_the_environment_until_released_on_purpose() {
    let _log = LogOnPanic;
    operator();
    let env = TestEnv::shared();
    let ns = env.namespace("devenv-protected");
    let ns = ns.name();
    let region = "us-east-1";
    let uid = ready_environment(
        env,
        ns,
        "protected",
        json!({"region": region, "dbSize": "db.t3.micro"}),
        json!({"compositeDeletePolicy": "Foreground"}),
    );
    let before = cloud(env, region, &uid);
    let database = before["DBInstance"][0]["id"].as_str().unwrap().to_owned();
    env.boto3(&format!(
        r#"
import boto3
boto3.client("rds", region_name={region:?}).modify_db_instance(DBInstanceIdentifier={database:?}, DeletionProtection=True, ApplyImmediately=True)
"#
    ))
    .expect("protect the database");

    delete(env, ns, "protected");
    let blocked = eventually(
        Duration::from_secs(30),
        "the deletion reported blocked",
        || {
            let obj = get_environment(env, ns, "protected")?;
            let ready = condition(&obj, "Ready")?;
            let message = ready["message"].as_str()?;
            (obj["status"]["phase"] == "Deleting" && message.contains("deletion protection"))
                .then_some(obj)
        },
    );
    let message = condition(&blocked, "Ready").unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains(ABANDON),
        "says how to release it: {message}"
    );
    assert!(message.contains(&database), "names the database: {message}");
    holds_for(Duration::from_secs(4), "the blocked environment", || {
        let obj = get_environment(env, ns, "protected").ok_or("released")?;
        let finalizers = obj["metadata"]["finalizers"].to_string();
        finalizers
            .contains("platform.pave.dev/cloud-resources")
            .then_some(())
            .ok_or(finalizers)
    });
    assert_eq!(
        cloud(env, region, &uid)["DBInstance"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    env.run_kubectl(&[
        "annotate",
        "devenv",
        "protected",
        "-n",
        ns,
        &format!("{ABANDON}=true"),
    ])
    .expect("annotate");
    wait_gone(env, ns, "protected", Duration::from_secs(30));
    let events = env
        .run_kubectl(&["get", "events.events.k8s.io", "-n", ns, "-o", "json"])
        .expect("events");
    let events: Value = serde_json::from_str(&events).unwrap();
    let abandoned = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["reason"] == "Abandoned")
        .unwrap_or_else(|| panic!("no Abandoned event: {events}"));
    assert!(
        abandoned["note"]
            .as_str()
            .unwrap_or_default()
            .contains(&database),
        "the event names what was left: {abandoned}"
    );
    let left = inventory(&cloud(env, region, &uid));
    holds_for(Duration::from_secs(5), "the abandoned resources", || {
        let now = inventory(&cloud(env, region, &uid));
        (now == left && now.iter().any(|r| r.starts_with("DBInstance")))
            .then_some(())
            .ok_or(format!("{now:?}"))
    });
}

/// With `deletionPolicy: Orphan` the database is kept, and so is the only copy of its
/// password: the connection secret loses its owner reference before the environment
/// goes, so garbage collection does not take it.
#[test]
fn orphan_keeps_the_connection_secret() {
    let _log = LogOnPanic;
    operator();
    let env = TestEnv::shared();
    let ns = env.namespace("devenv-orphan-secret");
    let ns = ns.name();
    kubectl_apply(
        env,
        &environment(
            ns,
            "keep",
            json!({"region": "ap-northeast-2", "dbSize": "db.t3.micro"}),
            json!({"deletionPolicy": "Orphan"}),
        ),
    );
    wait_phase(env, ns, "keep", "Ready");
    let password = decoded(&secret(env, ns, "keep-connection").unwrap(), "password").unwrap();
    delete(env, ns, "keep");
    wait_gone(env, ns, "keep", Duration::from_secs(30));
    holds_for(
        Duration::from_secs(6),
        "the orphaned connection secret",
        || {
            let kept = secret(env, ns, "keep-connection").ok_or("deleted")?;
            if kept["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|o| !o.is_empty())
            {
                return Err(format!("still owned: {}", kept["metadata"]));
            }
            (decoded(&kept, "password").as_deref() == Some(password.as_str()))
                .then_some(())
                .ok_or("password changed".into())
        },
    );
}

/// With `deletionPolicy: Delete` a connection secret written to another namespace
/// (which owner references cannot reach) is deleted with the environment.
#[test]
fn delete_removes_a_connection_secret_in_another_namespace() {
    let _log = LogOnPanic;
    operator();
    let env = TestEnv::shared();
    let source = env.namespace("devenv-secret-from");
    let target = env.namespace("devenv-secret-to");
    let (source, target) = (source.name(), target.name());
    env.run_kubectl(&[
        "annotate",
        "namespace",
        target,
        &format!("platform.pave.dev/accept-connection-secrets-from={source}"),
    ])
    .expect("opt in");
    kubectl_apply(
        env,
        &environment(
            source,
            "far",
            json!({"region": "eu-west-1"}),
            json!({"writeConnectionSecretsToNamespace": target, "compositeDeletePolicy": "Foreground"}),
        ),
    );
    wait_phase(env, source, "far", "Ready");
    assert!(secret(env, target, "far-connection").is_some());
    delete(env, source, "far");
    wait_gone(env, source, "far", Duration::from_secs(60));
    eventually(
        Duration::from_secs(10),
        "the far connection secret deleted",
        || {
            secret(env, target, "far-connection")
                .is_none()
                .then_some(())
        },
    );
}

/// A Secret pave did not create for this environment is never read or written: its
/// `password` would otherwise become the database's master password and its data be
/// overwritten. The environment is refused, naming the Secret, and nothing is created.
#[test]
fn a_secret_pave_did_not_create_is_never_adopted() {
    let _log = LogOnPanic;
    operator();
    let env = TestEnv::shared();
    let ns = env.namespace("devenv-foreign-secret");
    let ns = ns.name();
    env.run_kubectl(&[
        "create",
        "secret",
        "generic",
        "taken-connection",
        "-n",
        ns,
        "--from-literal=password=hunter2-not-for-pave",
    ])
    .expect("create the foreign secret");
    kubectl_apply(
        env,
        &environment(
            ns,
            "taken",
            json!({"region": "eu-west-1", "dbSize": "db.t3.micro"}),
            json!({}),
        ),
    );
    let refused = eventually(Duration::from_secs(30), "the environment refused", || {
        let obj = get_environment(env, ns, "taken")?;
        (condition(&obj, "Ready")?["reason"] == "Forbidden").then_some(obj)
    });
    let message = condition(&refused, "Ready").unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains(&format!("{ns}/taken-connection")),
        "{message}"
    );
    let uid = uid_of(env, ns, "taken");
    holds_for(
        Duration::from_secs(3),
        "nothing created, the secret untouched",
        || {
            let created = total(&cloud(env, "eu-west-1", &uid));
            if created != 0 {
                return Err(format!("{created} cloud resources created"));
            }
            let foreign = secret(env, ns, "taken-connection").ok_or("foreign secret gone")?;
            let keys: Vec<&String> = foreign["data"].as_object().unwrap().keys().collect();
            (keys == ["password"]
                && decoded(&foreign, "password").as_deref() == Some("hunter2-not-for-pave"))
            .then_some(())
            .ok_or(format!("secret changed: {keys:?}"))
        },
    );
    delete(env, ns, "taken");
    wait_gone(env, ns, "taken", Duration::from_secs(30));
    assert!(
        secret(env, ns, "taken-connection").is_some(),
        "deleting the environment took the foreign secret"
    );
}

/// `maxTtl` cannot be bypassed by leaving `ttl` out: such an environment gets the
/// maximum (here the default, 168h).
#[test]
fn an_environment_without_ttl_expires_after_the_maximum() {
    let _log = LogOnPanic;
    operator();
    let env = TestEnv::shared();
    let ns = env.namespace("devenv-max-ttl");
    let ns = ns.name();
    kubectl_apply(
        env,
        &environment(ns, "forever", json!({"region": "eu-west-1"}), json!({})),
    );
    let ready = wait_phase(env, ns, "forever", "Ready");
    let created = ready["metadata"]["creationTimestamp"].as_str().unwrap();
    let expires = ready["status"]["expiresAt"]
        .as_str()
        .unwrap_or_else(|| panic!("no expiresAt: {}", ready["status"]));
    let seconds = |t: &str| {
        let out = std::process::Command::new("date")
            .args(["-u", "-d", t, "+%s"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<i64>()
            .unwrap()
    };
    assert_eq!(
        seconds(expires) - seconds(created),
        168 * 3600,
        "{created} → {expires}"
    );
    delete(env, ns, "forever");
    wait_gone(env, ns, "forever", Duration::from_secs(30));
}
