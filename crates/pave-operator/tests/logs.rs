//! The operator's JSON logs over a full scenario, at debug level for every crate: each
//! line is one JSON object; each line logged inside a reconcile carries the
//! controller, the object, its uid and a reconcile id, including a failure's; and the
//! database password pave generated appears nowhere, not even in the failures of the
//! call that sends it.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::devenv::{delete, environment, uid_of, wait_gone, wait_phase};
use common::proxy::{ProxyLogOnPanic, one_operator_at_a_time};
use common::{Operator, eventually, kubectl_apply};
use pave_testenv::TestEnv;
use pave_testenv::fault_proxy::{Fault, FaultProxy, Rule, When};
use serde_json::{Value, json};

const CONFIG: &str = "allowedRegions: [eu-west-1]\n";
/// Fields pave's reconcile span puts on every line logged inside it.
const SPAN_FIELDS: [&str; 4] = ["controller", "object", "uid", "reconcile_id"];

/// pave's `reconcile` span on a log line, if the line was logged inside one.
fn reconcile_span(line: &Value) -> Option<&Value> {
    line["spans"]
        .as_array()?
        .iter()
        .find(|span| span["name"] == "reconcile")
}

#[test]
fn json_logs_name_the_reconcile_and_never_the_password() {
    let _turn = one_operator_at_a_time();
    let env = TestEnv::shared();
    let ns = env.namespace("logs");
    let proxy = FaultProxy::start(&env.moto_endpoint()).expect("start the fault proxy");
    let _proxy_log = ProxyLogOnPanic(&proxy);
    // The call that carries the password fails through the SDK's three attempts, so
    // the reconcile fails once and its error is logged.
    proxy.set_rules(vec![Rule::new(
        ["CreateDBInstance"],
        When::First(3),
        Fault::ServerError,
    )]);
    let operator = Operator::start_logging(env, Some(CONFIG), &proxy.endpoint(), "json", "debug");
    eventually(Duration::from_secs(30), "/readyz answering 200", || {
        (operator.get("/readyz").0 == 200).then_some(())
    });

    kubectl_apply(
        env,
        &json!({
            "apiVersion": "platform.pave.dev/v1alpha1", "kind": "Component",
            "metadata": {"name": "logged", "namespace": ns.name()},
            "spec": {"type": "service", "lifecycle": "production", "owner": "team"},
        }),
    );
    let parameters =
        json!({"region": "eu-west-1", "dbSize": "db.t3.micro", "clusterSize": "small"});
    kubectl_apply(
        env,
        &environment(
            ns.name(),
            "logged",
            parameters,
            json!({"compositeDeletePolicy": "Foreground"}),
        ),
    );
    let uid = uid_of(env, ns.name(), "logged");
    wait_phase(env, ns.name(), "logged", "Ready");
    let password = env
        .run_kubectl(&[
            "get",
            "secret",
            "logged-connection",
            "-n",
            ns.name(),
            "-o",
            "go-template={{.data.password | base64decode}}",
        ])
        .expect("the connection secret's password");
    assert!(password.len() >= 16, "a generated password: {password:?}");
    delete(env, ns.name(), "logged");
    wait_gone(env, ns.name(), "logged", Duration::from_secs(60));

    let log = operator.log.lock().unwrap().clone();
    assert!(
        !log.contains(&password),
        "the database password is in the operator's log"
    );
    let lines: Vec<Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    assert!(
        lines.len() > 100,
        "debug logs of a whole scenario: {} lines",
        lines.len()
    );

    // Inside a reconcile, every line names it; a reconcile id is one object's.
    let mut objects_by_id: BTreeMap<u64, BTreeSet<String>> = BTreeMap::new();
    let mut controllers = BTreeSet::new();
    for line in &lines {
        let Some(span) = reconcile_span(line) else {
            continue;
        };
        for field in SPAN_FIELDS {
            assert!(!span[field].is_null(), "{field} missing: {line}");
        }
        controllers.insert(span["controller"].as_str().unwrap().to_owned());
        objects_by_id
            .entry(
                span["reconcile_id"]
                    .as_u64()
                    .expect("a numeric reconcile id"),
            )
            .or_default()
            .insert(format!("{} {}", span["object"], span["uid"]));
    }
    assert!(
        controllers.contains("pave-catalog") && controllers.contains("pave-environments"),
        "lines inside each controller's reconciles: {controllers:?}"
    );
    for (id, objects) in &objects_by_id {
        assert_eq!(objects.len(), 1, "reconcile {id} logged about {objects:?}");
    }

    // The failure is logged inside the reconcile that failed, naming the object.
    let failed = lines
        .iter()
        .find(|line| line["message"] == "reconcile failed")
        .expect("the failed reconcile's line");
    let span = reconcile_span(failed).expect("the failure inside its reconcile's span");
    assert_eq!(span["object"], format!("{}/logged", ns.name()), "{failed}");
    assert_eq!(span["uid"], uid.as_str(), "{failed}");
    assert_eq!(span["controller"], "pave-environments", "{failed}");
    assert!(
        failed["error"]
            .as_str()
            .is_some_and(|e| e.contains("CreateDBInstance")),
        "{failed}"
    );
}
