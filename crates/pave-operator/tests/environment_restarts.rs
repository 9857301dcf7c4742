//! What the operator must learn from what exists and what it recorded rather than keep
//! in memory or trust to tags, so that deleting and restarting lose nothing: address
//! blocks (freed once their VPC is gone, known after a restart), the regions the
//! sweeper looks at (a restarted operator still sweeps a region no environment names
//! any more), and the ids in status (a teardown deletes a resource whose tags were
//! removed out of band). Its own test binary: the
//! pool here is tiny (four blocks), and the sweep interval is an hour, so whatever
//! is swept here was swept because something woke the sweeper, not by the clock.
//!
//! The tests start and restart their own operators, one test at a time.
//!
//! These failed on the operator that only ever added blocks to an in-memory map (and
//! called a full pool Terminal, so an environment waiting for a block never got one),
//! that swept only regions it had acted in since it started, and whose teardown went
//! by tags alone.

mod common;

use std::sync::Mutex;
use std::time::Duration;

use common::devenv::{
    cloud, condition, environment, events_about, get_environment, uid_of, wait_phase,
};
use common::{Operator, eventually, kubectl_apply};
use pave_testenv::TestEnv;
use serde_json::{Value, json};

/// Four /24 blocks in all; a sweep interval no test waits for.
const CONFIG: &str = "
allowedRegions: [us-east-1, eu-west-1]
cidrPool: 10.8.0.0/22
vpcPrefixLength: 24
environmentsPerNamespace: 0
sweepInterval: 1h
sweepGracePeriod: 2s
resyncInterval: 1h
";

/// One operator at a time: two with the same cluster id would both act on every
/// environment.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn start(env: &TestEnv) -> Operator {
    let operator = Operator::start_with_config(env, Some(CONFIG));
    eventually(Duration::from_secs(30), "/readyz answering 200", || {
        (operator.get("/readyz").0 == 200).then_some(())
    });
    operator
}

fn create(env: &TestEnv, ns: &str, name: &str, extra: Value) {
    kubectl_apply(
        env,
        &environment(ns, name, json!({"region": "us-east-1"}), extra),
    );
}

/// The block of the environment's VPC, as the cloud has it.
fn block(env: &TestEnv, ns: &str, name: &str) -> String {
    let vpcs = cloud(env, "us-east-1", &uid_of(env, ns, name))["VPC"].clone();
    assert_eq!(
        vpcs.as_array().map(Vec::len),
        Some(1),
        "{ns}/{name}: {vpcs}"
    );
    vpcs[0]["cidr"].as_str().unwrap().to_owned()
}

/// Waits until the environment says the pool is full, and checks it is still waiting
/// (Recoverable, retried by itself) rather than given up.
fn waits_for_a_block(env: &TestEnv, ns: &str, name: &str) {
    let obj = eventually(
        Duration::from_secs(60),
        &format!("{name} to report the pool full"),
        || {
            let obj = get_environment(env, ns, name)?;
            let ready = condition(&obj, "Ready")?;
            ready["message"]
                .as_str()?
                .contains("CidrPoolExhausted")
                .then_some(obj)
        },
    );
    assert_eq!(
        condition(&obj, "Ready").unwrap()["reason"],
        "RecoverableError",
        "a full pool frees up as environments go: {}",
        obj["status"]
    );
    eventually(Duration::from_secs(10), "a CidrPoolExhausted Event", || {
        let reasons = events_about(env, ns, name, "type=Warning", "reason");
        reasons.contains("CidrPoolExhausted").then_some(())
    });
}

fn delete(env: &TestEnv, ns: &str, name: &str) {
    env.run_kubectl(&["delete", "devenv", name, "-n", ns, "--wait=false"])
        .expect("kubectl delete");
}

fn distinct_blocks(env: &TestEnv, ns: &str, names: &[&str]) {
    let mut blocks: Vec<String> = names.iter().map(|n| block(env, ns, n)).collect();
    blocks.sort();
    blocks.dedup();
    assert_eq!(
        blocks.len(),
        names.len(),
        "{names:?} share blocks: {blocks:?}"
    );
}

#[test]
fn blocks_are_freed_when_environments_go_and_known_after_a_restart() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let env = TestEnv::shared();
    let mut operator = start(env);
    let ns = env.namespace("devenv-cidr");
    let ns = ns.name();

    for name in ["e1", "e3", "e4"] {
        create(env, ns, name, json!({}));
    }
    create(
        env,
        ns,
        "e2",
        json!({"compositeDeletePolicy": "Background"}),
    );
    for name in ["e1", "e2", "e3", "e4"] {
        wait_phase(env, ns, name, "Ready");
    }
    distinct_blocks(env, ns, &["e1", "e2", "e3", "e4"]);

    // A fifth waits, and gets the block of one deleted in the foreground.
    create(env, ns, "e5", json!({}));
    waits_for_a_block(env, ns, "e5");
    delete(env, ns, "e1");
    wait_phase(env, ns, "e5", "Ready");

    // A block freed by the sweeper, after a Background deletion.
    delete(env, ns, "e2");
    create(env, ns, "e6", json!({}));
    wait_phase(env, ns, "e6", "Ready");
    distinct_blocks(env, ns, &["e3", "e4", "e5", "e6"]);

    // A restarted operator finds the pool full, and frees a block as before.
    operator.terminate(Duration::from_secs(10));
    let operator = start(env);
    create(env, ns, "e7", json!({}));
    waits_for_a_block(env, ns, "e7");
    delete(env, ns, "e3");
    wait_phase(env, ns, "e7", "Ready");
    distinct_blocks(env, ns, &["e4", "e5", "e6", "e7"]);

    for name in ["e4", "e5", "e6", "e7"] {
        delete(env, ns, name);
    }
    for name in ["e4", "e5", "e6", "e7"] {
        eventually(Duration::from_secs(60), &format!("{name} gone"), || {
            get_environment(env, ns, name).is_none().then_some(())
        });
    }
    drop(operator);
}

/// Resources of this cluster that no environment owns, in a region no environment
/// names (what a crash just after a Background deletion leaves): `uid`'s VPC, with
/// the orphan mark if `orphaned`. Returns the VPC id.
fn leftover(env: &TestEnv, region: &str, uid: &str, orphaned: bool) -> String {
    let cluster = format!("test-{}", std::process::id());
    let program = format!(
        r#"
import boto3
ec2 = boto3.client("ec2", region_name={region:?})
tags = [{{"Key": "pave.dev/cluster-id", "Value": {cluster:?}}},
        {{"Key": "pave.dev/environment-uid", "Value": {uid:?}}},
        {{"Key": "pave.dev/name", "Value": "pave-" + {uid:?}[:8] + "-vpc"}}]
if {orphaned}:
    tags.append({{"Key": "pave.dev/orphaned", "Value": "true"}})
vpc = ec2.create_vpc(CidrBlock="10.200.0.0/24",
    TagSpecifications=[{{"ResourceType": "vpc", "Tags": tags}}])["Vpc"]["VpcId"]
print(vpc)
"#,
        orphaned = if orphaned { "True" } else { "False" },
    );
    env.boto3(&program)
        .expect("boto3 create_vpc")
        .trim()
        .to_owned()
}

fn vpc_exists(env: &TestEnv, region: &str, id: &str) -> bool {
    let program = format!(
        r#"
import boto3
ec2 = boto3.client("ec2", region_name={region:?})
print(len(ec2.describe_vpcs(Filters=[{{"Name": "vpc-id", "Values": [{id:?}]}}])["Vpcs"]))
"#
    );
    env.boto3(&program).expect("boto3 describe_vpcs").trim() == "1"
}

#[test]
fn a_restarted_operator_sweeps_regions_no_environment_names() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let env = TestEnv::shared();
    let gone = leftover(
        env,
        "eu-west-1",
        "0badc0de-0000-4000-8000-000000000001",
        false,
    );
    let kept = leftover(
        env,
        "eu-west-1",
        "0badc0de-0000-4000-8000-000000000002",
        true,
    );
    let operator = start(env);
    eventually(
        Duration::from_secs(60),
        "the ownerless VPC in eu-west-1 to be swept",
        || (!vpc_exists(env, "eu-west-1", &gone)).then_some(()),
    );
    assert!(
        vpc_exists(env, "eu-west-1", &kept),
        "the VPC marked orphaned is kept"
    );
    drop(operator);
}

#[test]
fn a_teardown_deletes_what_status_recorded_even_without_its_tags() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let env = TestEnv::shared();
    let operator = start(env);
    let ns = env.namespace("devenv-untagged");
    let ns = ns.name();
    create(
        env,
        ns,
        "untagged",
        json!({"compositeDeletePolicy": "Foreground"}),
    );
    wait_phase(env, ns, "untagged", "Ready");
    let uid = uid_of(env, ns, "untagged");
    let before = cloud(env, "us-east-1", &uid);
    let subnet = before["Subnet"][0]["id"].as_str().unwrap().to_owned();
    let vpc = before["VPC"][0]["id"].as_str().unwrap().to_owned();
    // Out of band, one subnet loses the tags pave finds it by. The resync is an hour
    // away, so no drift check puts them back first.
    env.boto3(&format!(
        r#"
import boto3
ec2 = boto3.client("ec2", region_name="us-east-1")
ec2.delete_tags(Resources=[{subnet:?}], Tags=[{{"Key": "pave.dev/environment-uid"}}, {{"Key": "pave.dev/cluster-id"}}])
"#
    ))
    .unwrap();
    delete(env, ns, "untagged");
    eventually(Duration::from_secs(60), "untagged gone", || {
        get_environment(env, ns, "untagged").is_none().then_some(())
    });
    assert!(!vpc_exists(env, "us-east-1", &vpc), "the VPC {vpc} is left");
    let left = env
        .boto3(&format!(
            r#"
import boto3
ec2 = boto3.client("ec2", region_name="us-east-1")
print(len(ec2.describe_subnets(Filters=[{{"Name": "subnet-id", "Values": [{subnet:?}]}}])["Subnets"]))
"#
        ))
        .unwrap();
    assert_eq!(left.trim(), "0", "the untagged subnet {subnet} is left");
    drop(operator);
}
