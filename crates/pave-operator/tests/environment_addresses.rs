//! Address blocks are taken from what exists, not from memory: a block is free again
//! once its environment's VPC is gone, whichever way it went (Foreground teardown, the
//! sweeper after a Background deletion), and a restarted operator knows which blocks
//! are taken. Its own test binary, because the pool here is tiny: four blocks.
//!
//! This failed on the operator that only ever added blocks to an in-memory map (and
//! called a full pool Terminal, so an environment waiting for a block never got one).

mod common;

use std::time::Duration;

use common::devenv::{cloud, condition, environment, get_environment, uid_of, wait_phase};
use common::{Operator, eventually, kubectl_apply};
use pave_testenv::TestEnv;
use serde_json::{Value, json};

/// Four /24 blocks in all.
const CONFIG: &str = "
allowedRegions: [us-east-1]
cidrPool: 10.8.0.0/22
vpcPrefixLength: 24
environmentsPerNamespace: 0
sweepInterval: 1s
sweepGracePeriod: 1s
resyncInterval: 3s
";

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
