//! The IAM policy the chart ships (`charts/pave/aws-iam-policy.json`, printed by
//! `kubectl pave iam-policy`) grants exactly what pave calls. One scenario walks every
//! path that reaches AWS, behind the fault proxy: the sweeper's first look at every
//! region, provisioning with a database and an instance, a storage change, an
//! out-of-band rule revoked, a smaller cluster, an Orphan deletion (tags) and a
//! Foreground one (every delete). The actions the proxy saw must be the policy's, no
//! more and no fewer.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::devenv::{
    cloud, condition, delete, get_environment, patch_spec, ready_environment, wait_gone,
};
use common::proxy::{ProxyLogOnPanic, start_behind};
use common::{LogOnPanic, eventually};
use pave_testenv::TestEnv;
use pave_testenv::fault_proxy::FaultProxy;
use serde_json::{Value, json};

/// Any region (so the sweeper asks for the account's regions), quick drift checks.
const CONFIG: &str = "resyncInterval: 3s\nsweepInterval: 5s\n";

fn policy_actions() -> BTreeSet<String> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../charts/pave/aws-iam-policy.json"
    ))
    .unwrap();
    let policy: Value = serde_json::from_str(&text).unwrap();
    policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["Action"].as_array().unwrap().clone())
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

/// Waits until the environment has acted on its latest generation and is Ready.
fn settled(env: &TestEnv, ns: &str, name: &str) -> Value {
    eventually(
        Duration::from_secs(60),
        &format!("{name} Ready again"),
        || {
            let obj = get_environment(env, ns, name)?;
            let ready = condition(&obj, "Ready")?;
            (ready["status"] == "True"
                && ready["observedGeneration"] == obj["metadata"]["generation"])
                .then_some(obj)
        },
    )
}

#[test]
fn the_iam_policy_grants_exactly_what_pave_calls() {
    let _log = LogOnPanic;
    let env = TestEnv::shared();
    let proxy = FaultProxy::start(&env.moto_endpoint()).expect("start the fault proxy");
    let _proxy_log = ProxyLogOnPanic(&proxy);
    let _operator = start_behind(env, &proxy, Some(CONFIG));
    let ns = env.namespace("iam");
    let ns = ns.name();
    let parameters =
        json!({"region": "us-east-1", "dbSize": "db.t3.micro", "clusterSize": "small"});

    let uid = ready_environment(
        env,
        ns,
        "full",
        parameters.clone(),
        json!({"compositeDeletePolicy": "Foreground"}),
    );
    patch_spec(env, ns, "full", json!({"parameters": {"dbStorageGiB": 30}}));
    settled(env, ns, "full");
    // A rule opened out of band on the database's group is revoked by the drift check.
    let groups = cloud(env, "us-east-1", &uid)["SecurityGroup"].clone();
    let db_group = groups
        .as_array()
        .unwrap()
        .iter()
        .find(|g| {
            g["tags"]["pave.dev/name"]
                .as_str()
                .is_some_and(|n| n.ends_with("-db"))
        })
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    env.boto3(&format!(
        r#"
import boto3
boto3.client("ec2", region_name="us-east-1").authorize_security_group_ingress(GroupId={db_group:?}, IpPermissions=[{{
    "IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "IpRanges": [{{"CidrIp": "0.0.0.0/0"}}]}}])
"#
    ))
    .unwrap();
    eventually(Duration::from_secs(30), "the open rule revoked", || {
        proxy
            .requests()
            .iter()
            .any(|s| {
                s.action == "RevokeSecurityGroupIngress"
                    && s.param("GroupId") == Some(db_group.as_str())
            })
            .then_some(())
    });
    patch_spec(
        env,
        ns,
        "full",
        json!({"parameters": {"clusterSize": "none"}}),
    );
    settled(env, ns, "full");

    ready_environment(
        env,
        ns,
        "kept",
        parameters,
        json!({"deletionPolicy": "Orphan"}),
    );
    delete(env, ns, "kept");
    delete(env, ns, "full");
    wait_gone(env, ns, "kept", Duration::from_secs(60));
    wait_gone(env, ns, "full", Duration::from_secs(120));

    let called: BTreeSet<String> = proxy
        .requests()
        .iter()
        .map(|s| format!("{}:{}", s.service, s.action))
        .collect();
    let granted = policy_actions();
    let missing: Vec<&String> = called.difference(&granted).collect();
    let unused: Vec<&String> = granted.difference(&called).collect();
    assert!(
        missing.is_empty(),
        "called but not in the policy: {missing:?}"
    );
    assert!(
        unused.is_empty(),
        "in the policy but never called: {unused:?}"
    );
}
