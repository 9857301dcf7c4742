//! Spec changes to an environment's database are carried out or refused, never
//! dropped silently: removing `dbSize` deletes the database under `deletionPolicy:
//! Delete` and keeps it (saying so) under `Orphan`; a new `dbEngineVersion` upgrades
//! it in place, and one RDS cannot reach (a downgrade) is refused.
//!
//! Each test here failed on the operator that dropped the database from status but
//! left it running (still saying Synced) and ignored `dbEngineVersion` changes.

mod common;

use std::time::Duration;

use common::devenv::{cloud, condition, count, get_environment, ready_environment, wait_phase};
use common::{LogOnPanic, Operator, eventually, operator_with_config};
use pave_testenv::TestEnv;
use serde_json::{Value, json};

const CONFIG: &str = "
allowedRegions: [us-east-1]
resyncInterval: 3s
";

fn operator() -> &'static Operator {
    operator_with_config(Some(CONFIG))
}

fn patch(env: &TestEnv, ns: &str, name: &str, ops: Value) {
    env.run_kubectl(&[
        "patch",
        "devenv",
        name,
        "-n",
        ns,
        "--type=json",
        "-p",
        &ops.to_string(),
    ])
    .expect("kubectl patch");
}

/// A Ready environment with a database, and its UID.
fn with_database(env: &TestEnv, ns: &str, name: &str, version: &str, extra: Value) -> String {
    let parameters =
        json!({"region": "us-east-1", "dbSize": "db.t3.micro", "dbEngineVersion": version});
    ready_environment(env, ns, name, parameters, extra)
}

/// Waits for the environment to have acted on its latest generation, and returns it.
fn settled(env: &TestEnv, ns: &str, name: &str) -> Value {
    eventually(
        Duration::from_secs(60),
        &format!("{name} to act on its spec"),
        || {
            let obj = get_environment(env, ns, name)?;
            let synced = condition(&obj, "Synced")?;
            (synced["observedGeneration"] == obj["metadata"]["generation"]).then_some(obj)
        },
    )
}

fn status_names(obj: &Value) -> Vec<String> {
    obj["status"]["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["name"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn removing_the_database_deletes_it_under_delete() {
    let _log = LogOnPanic;
    operator();
    let env = TestEnv::shared();
    let ns = env.namespace("devenv-nodb");
    let ns = ns.name();
    let uid = with_database(env, ns, "slim", "16.1", json!({}));
    patch(
        env,
        ns,
        "slim",
        json!([{"op": "remove", "path": "/spec/parameters/dbSize"}]),
    );
    let c = eventually(Duration::from_secs(60), "the database to be gone", || {
        let c = cloud(env, "us-east-1", &uid);
        (count(&c, "DBInstance") == 0 && count(&c, "DBSubnetGroup") == 0).then_some(c)
    });
    assert_eq!(count(&c, "SecurityGroup"), 1, "only compute's is left: {c}");
    wait_phase(env, ns, "slim", "Ready");
    let obj = settled(env, ns, "slim");
    assert_eq!(condition(&obj, "Synced").unwrap()["status"], "True");
    // By role, the name's last part: the id before it is hex, and may hold "db".
    use pave_cloud::plan::roles;
    let database = [roles::DB, roles::SG_DB, roles::DB_SUBNETS].map(|r| format!("-{r}"));
    assert!(
        !status_names(&obj)
            .iter()
            .any(|n| database.iter().any(|r| n.ends_with(r))),
        "{}",
        obj["status"]
    );
}

#[test]
fn removing_the_database_keeps_it_under_orphan_and_says_so() {
    let _log = LogOnPanic;
    operator();
    let env = TestEnv::shared();
    let ns = env.namespace("devenv-keepdb");
    let ns = ns.name();
    let uid = with_database(
        env,
        ns,
        "keeper",
        "16.1",
        json!({"deletionPolicy": "Orphan"}),
    );
    patch(
        env,
        ns,
        "keeper",
        json!([{"op": "remove", "path": "/spec/parameters/dbSize"}]),
    );
    let obj = settled(env, ns, "keeper");
    let synced = condition(&obj, "Synced").unwrap();
    assert_eq!(synced["status"], "False", "{}", obj["status"]);
    assert_eq!(synced["reason"], "DatabaseKept", "{}", obj["status"]);
    let message = synced["message"].as_str().unwrap();
    assert!(
        message.contains("dbSize") && message.contains("deletionPolicy"),
        "says what to do: {message}"
    );
    assert!(
        status_names(&obj).iter().any(|n| n.ends_with("-db")),
        "status still shows the database: {}",
        obj["status"]
    );
    // Given time in which a deletion would show, it is still there.
    std::thread::sleep(Duration::from_secs(5));
    let c = cloud(env, "us-east-1", &uid);
    assert_eq!(count(&c, "DBInstance"), 1, "{c}");
    assert_eq!(count(&c, "DBSubnetGroup"), 1, "{c}");
}

#[test]
fn a_new_engine_version_upgrades_and_a_downgrade_is_refused() {
    let _log = LogOnPanic;
    operator();
    let env = TestEnv::shared();
    let ns = env.namespace("devenv-dbversion");
    let ns = ns.name();
    let uid = with_database(env, ns, "versioned", "16.1", json!({}));
    let version = |env: &TestEnv| cloud(env, "us-east-1", &uid)["DBInstance"][0]["version"].clone();
    assert_eq!(version(env), "16.1");

    let set = |v: &str| {
        patch(
            env,
            ns,
            "versioned",
            json!([{"op": "replace", "path": "/spec/parameters/dbEngineVersion", "value": v}]),
        );
    };
    set("16.3");
    eventually(Duration::from_secs(60), "the upgrade to 16.3", || {
        (version(env) == "16.3").then_some(())
    });
    let obj = settled(env, ns, "versioned");
    assert_eq!(condition(&obj, "Synced").unwrap()["status"], "True");

    // A major version alone ("16") is satisfied by any 16.x.
    set("16");
    let obj = settled(env, ns, "versioned");
    assert_eq!(
        condition(&obj, "Synced").unwrap()["status"],
        "True",
        "{}",
        obj["status"]
    );
    assert_eq!(version(env), "16.3");

    set("15.4");
    let obj = settled(env, ns, "versioned");
    let synced = condition(&obj, "Synced").unwrap();
    assert_eq!(synced["status"], "False", "{}", obj["status"]);
    let message = synced["message"].as_str().unwrap();
    assert!(
        message.contains("15.4") && message.contains("16.3"),
        "{message}"
    );
    assert_eq!(version(env), "16.3", "nothing was asked of RDS");
}
