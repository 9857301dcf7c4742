//! The catalog against the real test bed, with the real operator binary: references
//! that dangle are reported and resolve when their target appears, reverse relations
//! reach targets nobody edited, cycles are reported with their path and cleared, and
//! a batch of Components converges, and what is deleted leaves nothing behind in the
//! operator's memory. One operator serves every test of this binary; each test works
//! in its own namespace.

mod common;

use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use common::refusal::RefuseStatusWrites;
use common::{CATALOG, LogOnPanic, eventually, kubectl_apply, operator};
use pave_testenv::TestEnv;
use serde_json::{Value, json};

/// The catalog's size is one number for the whole operator, and every test here
/// changes it: the test that measures it runs alone, the others side by side.
static CATALOG_SIZE: RwLock<()> = RwLock::new(());

fn side_by_side() -> RwLockReadGuard<'static, ()> {
    CATALOG_SIZE.read().unwrap_or_else(PoisonError::into_inner)
}

fn alone() -> RwLockWriteGuard<'static, ()> {
    CATALOG_SIZE.write().unwrap_or_else(PoisonError::into_inner)
}

const ENTITIES: &str = "pave_operator_catalog_entities";
const RETRYING: &str = r#"pave_operator_retrying_objects{controller="pave-catalog"}"#;

fn component(namespace: &str, name: &str, depends_on: &[&str]) -> Value {
    json!({
        "apiVersion": "platform.pave.dev/v1alpha1",
        "kind": "Component",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"type": "service", "lifecycle": "production", "owner": "team", "dependsOn": depends_on},
    })
}

fn status(env: &TestEnv, namespace: &str, name: &str) -> Option<Value> {
    let json = env
        .run_kubectl(&["get", "component", name, "-n", namespace, "-o", "json"])
        .ok()?;
    let obj: Value = serde_json::from_str(&json).ok()?;
    (obj["status"]["observedGeneration"] == obj["metadata"]["generation"])
        .then(|| obj["status"].clone())
}

fn ready(status: &Value) -> (String, String, String) {
    let ready = status["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
        .cloned()
        .unwrap_or_default();
    let field = |k: &str| ready[k].as_str().unwrap_or_default().to_owned();
    (field("status"), field("reason"), field("message"))
}

/// Waits until `name`'s Ready condition has `reason`, and returns its status.
fn wait_reason(env: &TestEnv, namespace: &str, name: &str, reason: &str) -> Value {
    eventually(
        Duration::from_secs(20),
        &format!("{name} Ready reason {reason}"),
        || status(env, namespace, name).filter(|s| ready(s).1 == reason),
    )
}

fn has_relation(status: &Value, kind: &str, target: &str) -> bool {
    status["relations"].as_array().is_some_and(|rs| {
        rs.iter()
            .any(|r| r["type"] == kind && r["target"] == target)
    })
}

#[test]
fn dangling_reference_is_reported_then_resolved_and_reported_again_on_deletion() {
    let _turn = side_by_side();
    let _log = LogOnPanic;
    operator();
    let env = TestEnv::shared();
    let ns = env.namespace("catalog-dangling");
    let ns = ns.name();

    kubectl_apply(
        env,
        &component(
            ns,
            "payment-service",
            &["component:user-service", "resource:payments-db"],
        ),
    );
    let s = wait_reason(env, ns, "payment-service", "UnresolvedReference");
    let (_, _, message) = ready(&s);
    for missing in [
        format!("component:{ns}/user-service"),
        format!("resource:{ns}/payments-db"),
    ] {
        assert!(message.contains(&missing), "{message}");
        assert!(
            s["unresolvedRefs"]
                .as_array()
                .unwrap()
                .contains(&json!(missing)),
            "{s}"
        );
    }

    // The missing targets appear: the dependent resolves without being touched.
    kubectl_apply(env, &component(ns, "user-service", &[]));
    kubectl_apply(
        env,
        &json!({"apiVersion": "platform.pave.dev/v1alpha1", "kind": "DeveloperEnvironment",
                "metadata": {"name": "payments-db", "namespace": ns},
                "spec": {"parameters": {"region": "us-east-1"}}}),
    );
    let s = wait_reason(env, ns, "payment-service", "Resolved");
    assert_eq!(ready(&s).0, "True");
    assert!(s.get("unresolvedRefs").is_none(), "{s}");
    assert!(
        has_relation(&s, "dependsOn", &format!("component:{ns}/user-service")),
        "{s}"
    );

    // The reverse relation reaches the target, which nobody edited, with its impact.
    let user = eventually(
        Duration::from_secs(20),
        "user-service's dependencyOf",
        || {
            status(env, ns, "user-service").filter(|s| {
                has_relation(
                    s,
                    "dependencyOf",
                    &format!("component:{ns}/payment-service"),
                )
            })
        },
    );
    assert_eq!(user["impact"], 1, "{user}");

    // Deleting the dependency makes the reference dangle again.
    env.run_kubectl(&["delete", "component", "user-service", "-n", ns])
        .unwrap();
    let s = wait_reason(env, ns, "payment-service", "UnresolvedReference");
    assert_eq!(
        s["unresolvedRefs"],
        json!([format!("component:{ns}/user-service")]),
        "{s}"
    );
}

#[test]
fn dependency_cycle_is_reported_with_its_path_then_cleared() {
    let _turn = side_by_side();
    let _log = LogOnPanic;
    operator();
    let env = TestEnv::shared();
    let ns = env.namespace("catalog-cycle");
    let ns = ns.name();

    // The owners' org, so the message is about the cycle alone.
    kubectl_apply(env, &entity("Group", ns, "team", json!({"type": "team"})));
    kubectl_apply(env, &component(ns, "a", &["b"]));
    kubectl_apply(env, &component(ns, "b", &["c"]));
    kubectl_apply(env, &component(ns, "c", &["a"]));
    let s = wait_reason(env, ns, "b", "DependencyCycle");
    assert_eq!(
        ready(&s).2,
        format!("dependency cycle: {ns}/b → {ns}/c → {ns}/a → {ns}/b")
    );
    for name in ["a", "c"] {
        wait_reason(env, ns, name, "DependencyCycle");
    }

    // Breaking one edge clears the cycle on every member.
    kubectl_apply(env, &component(ns, "c", &[]));
    for name in ["a", "b", "c"] {
        assert_eq!(ready(&wait_reason(env, ns, name, "Resolved")).0, "True");
    }
    let c = status(env, ns, "c").unwrap();
    assert_eq!(c["impact"], 2, "a and b depend on c: {c}");
}

#[test]
fn fifty_components_applied_at_once_converge() {
    let _turn = side_by_side();
    let _log = LogOnPanic;
    operator();
    let env = TestEnv::shared();
    let ns = env.namespace("catalog-fifty");
    let ns = ns.name();

    // c0 ← c1 ← … ← c49: each depends on the one before, and c49 also on a missing one.
    let items: Vec<Value> = (0..50)
        .map(|i| {
            let mut deps: Vec<String> = if i > 0 {
                vec![format!("c{}", i - 1)]
            } else {
                vec![]
            };
            if i == 49 {
                deps.push("not-there".into());
            }
            let deps: Vec<&str> = deps.iter().map(String::as_str).collect();
            component(ns, &format!("c{i}"), &deps)
        })
        .collect();
    kubectl_apply(
        env,
        &json!({"apiVersion": "v1", "kind": "List", "items": items}),
    );

    eventually(
        Duration::from_secs(60),
        "all 50 Components with the right impact and readiness",
        || {
            let list: Value = serde_json::from_str(
                &env.run_kubectl(&["get", "components", "-n", ns, "-o", "json"])
                    .ok()?,
            )
            .ok()?;
            let items = list["items"].as_array()?;
            let converged = items.len() == 50
                && items.iter().all(|obj| {
                    let i: i64 = obj["metadata"]["name"].as_str().unwrap()[1..]
                        .parse()
                        .unwrap();
                    let s = &obj["status"];
                    let expected_reason = if i == 49 {
                        "UnresolvedReference"
                    } else {
                        "Resolved"
                    };
                    s["observedGeneration"] == obj["metadata"]["generation"]
                        && s["impact"] == 49 - i
                        && ready(s).1 == expected_reason
                });
            converged.then_some(())
        },
    );
}

#[test]
fn deleted_components_leave_nothing_behind_in_the_catalog() {
    let _turn = alone();
    let _log = LogOnPanic;
    let operator = operator();
    let env = TestEnv::shared();
    // What the other tests created goes with their namespaces, and with it everything
    // the catalog held: with no Components and no environments, it holds nothing.
    eventually(
        Duration::from_secs(120),
        "no Component or environment left by other tests",
        || {
            let left = env
                .run_kubectl(&[
                    "get",
                    "components,developerenvironments",
                    "-A",
                    "-o",
                    "name",
                ])
                .ok()?;
            left.trim().is_empty().then_some(())
        },
    );
    eventually(Duration::from_secs(30), "an empty catalog", || {
        (operator.metric(ENTITIES) == 0.0).then_some(())
    });

    let ns = env.namespace("catalog-memory");
    let ns = ns.name();
    // A chain c0 ← … ← c49 that names every kind of entity: a group (the owner), a
    // missing Component, a missing environment, an API one provides and one consumes.
    let items: Vec<Value> = (0..50)
        .map(|i| {
            let deps: Vec<String> = match i {
                0 => vec!["not-there".into(), "resource:db".into()],
                _ => vec![format!("c{}", i - 1)],
            };
            let deps: Vec<&str> = deps.iter().map(String::as_str).collect();
            let mut c = component(ns, &format!("c{i}"), &deps);
            match i {
                1 => c["spec"]["providesApis"] = json!(["orders"]),
                2 => c["spec"]["consumesApis"] = json!(["orders"]),
                _ => {}
            }
            c
        })
        .collect();
    kubectl_apply(
        env,
        &json!({"apiVersion": "v1", "kind": "List", "items": items}),
    );
    eventually(
        Duration::from_secs(60),
        "50 Components and the 4 entities they name in the catalog",
        || (operator.metric(ENTITIES) == 54.0).then_some(()),
    );

    env.run_kubectl(&["delete", "components", "--all", "-n", ns, "--wait"])
        .unwrap();
    eventually(Duration::from_secs(30), "the catalog back to empty", || {
        (operator.metric(ENTITIES) == 0.0).then_some(())
    });
}

#[test]
fn components_deleted_while_their_status_is_refused_are_forgotten() {
    let _turn = side_by_side();
    let _log = LogOnPanic;
    let operator = operator();
    let env = TestEnv::shared();
    let ns = env.namespace("catalog-refused");
    let ns = ns.name();
    let refusal = RefuseStatusWrites::new(env, ns, None);
    kubectl_apply(env, &component(ns, "probe", &[]));
    refusal.wait_enforced(ns, "probe");

    for i in 0..5 {
        kubectl_apply(env, &component(ns, &format!("c{i}"), &[]));
    }
    eventually(
        Duration::from_secs(30),
        "5 Components waiting to retry their status writes",
        || (operator.metric(RETRYING) >= 5.0).then_some(()),
    );
    let refused = format!(
        r#"pave_operator_reconcile_errors_total{{controller="{CATALOG}",reason="write_status"}}"#
    );
    assert!(
        operator.metric(&refused) >= 5.0,
        "the failures are the refused writes"
    );

    env.run_kubectl(&["delete", "components", "--all", "-n", ns, "--wait"])
        .unwrap();
    eventually(
        Duration::from_secs(30),
        "no Component of the catalog waiting to retry",
        || (operator.metric(RETRYING) == 0.0).then_some(()),
    );
}

fn entity(kind: &str, namespace: &str, name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "platform.pave.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    })
}

/// The status of any catalog kind, once it describes the current generation.
fn status_of(env: &TestEnv, resource: &str, namespace: &str, name: &str) -> Option<Value> {
    let json = env
        .run_kubectl(&["get", resource, name, "-n", namespace, "-o", "json"])
        .ok()?;
    let obj: Value = serde_json::from_str(&json).ok()?;
    (obj["status"]["observedGeneration"] == obj["metadata"]["generation"])
        .then(|| obj["status"].clone())
}

#[test]
fn an_owner_is_checked_once_the_org_is_imported_and_groups_know_their_members() {
    let _turn = side_by_side();
    let _log = LogOnPanic;
    operator();
    let env = TestEnv::shared();
    let ns = env.namespace("catalog-org");
    let ns = ns.name();

    // No org yet: the typo cannot be caught, and the status says why.
    let typo = json!({"type": "service", "lifecycle": "production", "owner": "payments-tema"});
    kubectl_apply(
        env,
        &entity("Component", ns, "payment-service", typo.clone()),
    );
    let s = wait_reason(env, ns, "payment-service", "Resolved");
    assert_eq!(
        s["uncheckedRefs"],
        json!([format!("group:{ns}/payments-tema")]),
        "{s}"
    );
    assert!(ready(&s).2.contains("has no Group yet"), "{s}");

    // The org arrives: a parent group, a team below it, people in it.
    kubectl_apply(
        env,
        &entity(
            "Group",
            ns,
            "payments",
            json!({"type": "department", "children": ["payments-team"]}),
        ),
    );
    kubectl_apply(
        env,
        &entity(
            "Group",
            ns,
            "payments-team",
            json!({"type": "team", "parent": "payments", "members": ["breanna"]}),
        ),
    );
    kubectl_apply(
        env,
        &entity(
            "User",
            ns,
            "breanna",
            json!({"profile": {"displayName": "Breanna Davison"}}),
        ),
    );
    kubectl_apply(
        env,
        &entity(
            "User",
            ns,
            "janelle",
            json!({"memberOf": ["payments-team"]}),
        ),
    );
    let s = wait_reason(env, ns, "payment-service", "UnresolvedReference");
    let (status, _, message) = ready(&s);
    assert_eq!(status, "False");
    assert!(
        message.contains(&format!(
            "spec.owner group:{ns}/payments-tema: no Group payments-tema in namespace {ns}"
        )),
        "{message}"
    );
    let members = [format!("user:{ns}/breanna"), format!("user:{ns}/janelle")];
    let department = eventually(Duration::from_secs(20), "payments has both members", || {
        status_of(env, "groups.platform.pave.dev", ns, "payments").filter(|s| s["memberCount"] == 2)
    });
    assert_eq!(department["members"], json!(members), "{department}");
    assert!(
        has_relation(
            &department,
            "parentOf",
            &format!("group:{ns}/payments-team")
        ),
        "{department}"
    );

    // Fixed, it resolves, and the team sees what it owns.
    let fixed = json!({"type": "service", "lifecycle": "production", "owner": "payments-team"});
    kubectl_apply(env, &entity("Component", ns, "payment-service", fixed));
    let s = wait_reason(env, ns, "payment-service", "Resolved");
    assert!(
        has_relation(&s, "ownedBy", &format!("group:{ns}/payments-team")),
        "{s}"
    );
    assert!(s.get("uncheckedRefs").is_none(), "{s}");
    let team = eventually(
        Duration::from_secs(20),
        "payments-team owns payment-service",
        || {
            status_of(env, "groups.platform.pave.dev", ns, "payments-team")
                .filter(|s| has_relation(s, "ownerOf", &format!("component:{ns}/payment-service")))
        },
    );
    assert_eq!(ready(&team).0, "True", "{team}");

    // The Group deleted (the org is still known): the owner dangles again.
    env.run_kubectl(&[
        "delete",
        "groups.platform.pave.dev",
        "payments-team",
        "-n",
        ns,
    ])
    .unwrap();
    let s = wait_reason(env, ns, "payment-service", "UnresolvedReference");
    assert!(
        ready(&s).2.contains(&format!("group:{ns}/payments-team")),
        "{s}"
    );
    let user = eventually(Duration::from_secs(20), "janelle's group is gone", || {
        status_of(env, "users.platform.pave.dev", ns, "janelle").filter(|s| ready(s).0 == "False")
    });
    assert_eq!(
        user["unresolvedRefs"],
        json!([format!("group:{ns}/payments-team")]),
        "{user}"
    );
}
