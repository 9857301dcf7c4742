//! Scorecards against the real test bed, with the real operator binary: the article's
//! scorecard scores the article's Component, edits move levels, a Scorecard edit
//! re-scores, a deleted Scorecard takes its scores along, and a rule that cannot be
//! evaluated is reported on the Scorecard while the others still count.
//!
//! Scorecards are cluster-scoped, so each test's Scorecard selects only its own
//! namespace with a Port `filter` on `$namespace`.

mod common;

use std::time::Duration;

use common::{LogOnPanic, eventually, kubectl_apply, operator};
use pave_testenv::TestEnv;
use serde_json::{Value, json};

/// The article's scorecard (examples/), renamed and limited to `namespace`.
fn article_scorecard(name: &str, namespace: &str) -> Value {
    let yaml = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/scorecard-service-maturity.yaml"
    ))
    .unwrap();
    let mut scorecard: Value = serde_yaml::from_str(&yaml).unwrap();
    scorecard["metadata"]["name"] = json!(name);
    scorecard["spec"]["filter"] = json!({"combinator": "and", "conditions": [
        {"property": "$namespace", "operator": "=", "value": namespace}]});
    scorecard
}

/// The article's Component (examples/), in `namespace`.
fn article_component(namespace: &str) -> Value {
    let yaml = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/catalog-payment-service.yaml"
    ))
    .unwrap();
    let mut component: Value = serde_yaml::from_str(&yaml).unwrap();
    component["metadata"]["namespace"] = json!(namespace);
    component
}

fn get(env: &TestEnv, args: &[&str]) -> Option<Value> {
    serde_json::from_str(&env.run_kubectl(args).ok()?).ok()
}

/// Waits until the Component's score on `scorecard` satisfies `check`.
fn wait_score(
    env: &TestEnv,
    ns: &str,
    scorecard: &str,
    what: &str,
    check: impl Fn(Option<&Value>) -> bool,
) -> Value {
    eventually(Duration::from_secs(20), what, || {
        let obj = get(
            env,
            &[
                "get",
                "component",
                "payment-service",
                "-n",
                ns,
                "-o",
                "json",
            ],
        )?;
        let score = obj["status"]["scores"]
            .as_array()
            .and_then(|scores| scores.iter().find(|s| s["scorecard"] == scorecard));
        check(score).then(|| score.cloned().unwrap_or_default())
    })
}

fn delete_scorecard(env: &TestEnv, name: &str) {
    let _ = env.run_kubectl(&["delete", "scorecard", name, "--ignore-not-found"]);
}

#[test]
fn the_articles_scorecard_scores_the_articles_component_and_follows_edits() {
    let _log = LogOnPanic;
    operator();
    let env = TestEnv::shared();
    let ns = env.namespace("score-article");
    let ns = ns.name();
    let name = format!("maturity-{ns}");

    kubectl_apply(env, &article_scorecard(&name, ns));
    kubectl_apply(env, &article_component(ns));
    let score = wait_score(env, ns, &name, "a Basic score", |s| {
        s.is_some_and(|s| s["level"] == "Basic")
    });
    assert_eq!(score["nextLevel"], "Silver", "{score}");
    assert_eq!(score["blocking"], json!(["has-runbook"]), "{score}");
    // The PagerDuty annotation answers Port's pagerduty_service_id.
    let alerting = score["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["identifier"] == "has-alerting")
        .unwrap();
    assert_eq!(alerting["passed"], true, "{score}");
    let level_column = env
        .run_kubectl(&[
            "get",
            "comp",
            "payment-service",
            "-n",
            ns,
            "-o",
            "jsonpath={.status.scores[0].level}",
        ])
        .unwrap();
    assert_eq!(level_column, "Basic");

    // The Scorecard's summary.
    let summary = eventually(Duration::from_secs(20), "the Scorecard's summary", || {
        let sc = get(env, &["get", "scorecard", &name, "-o", "json"])?;
        (sc["status"]["evaluated"] == 1).then_some(sc)
    });
    assert_eq!(
        summary["status"]["levels"][0],
        json!({"level": "Basic", "count": 1}),
        "{summary}"
    );
    let ready = &summary["status"]["conditions"][0];
    assert_eq!(
        (ready["type"].as_str(), ready["status"].as_str()),
        (Some("Ready"), Some("True")),
        "{summary}"
    );

    // Adding a runbook moves the Component to Gold (its alerting rule already passes).
    let mut with_runbook = article_component(ns);
    with_runbook["spec"]["properties"] = json!({"runbook_url": "https://runbooks/payments"});
    kubectl_apply(env, &with_runbook);
    let score = wait_score(env, ns, &name, "a Gold score", |s| {
        s.is_some_and(|s| s["level"] == "Gold")
    });
    assert!(score.get("nextLevel").is_none(), "Gold is the top: {score}");

    // Editing the Scorecard re-scores: a new Gold rule the Component fails.
    let mut stricter = article_scorecard(&name, ns);
    stricter["spec"]["rules"].as_array_mut().unwrap().push(json!({
        "identifier": "has-coverage", "title": "coverage", "level": "Gold",
        "query": {"combinator": "and", "rules": [{"property": "coverage", "operator": ">=", "value": 80}]}}));
    kubectl_apply(env, &stricter);
    let score = wait_score(env, ns, &name, "back to Silver", |s| {
        s.is_some_and(|s| s["level"] == "Silver")
    });
    assert_eq!(score["blocking"], json!(["has-coverage"]), "{score}");

    // Deleting the Scorecard removes its score.
    delete_scorecard(env, &name);
    wait_score(env, ns, &name, "the score to be gone", |s| s.is_none());
}

#[test]
fn a_rule_of_the_wrong_type_is_reported_and_the_others_still_count() {
    let _log = LogOnPanic;
    operator();
    let env = TestEnv::shared();
    let ns = env.namespace("score-types");
    let ns = ns.name();
    let name = format!("typed-{ns}");

    let mut scorecard = article_scorecard(&name, ns);
    // `>` on the lifecycle (a string) cannot be evaluated.
    scorecard["spec"]["rules"].as_array_mut().unwrap().push(json!({
        "identifier": "lifecycle-above-three", "level": "Silver",
        "query": {"combinator": "and", "rules": [{"property": "lifecycle", "operator": ">", "value": 3}]}}));
    kubectl_apply(env, &scorecard);
    kubectl_apply(env, &article_component(ns));

    let score = wait_score(env, ns, &name, "a score", |s| s.is_some());
    assert_eq!(
        score["level"], "Basic",
        "the other Basic rules still pass: {score}"
    );
    let sc = eventually(
        Duration::from_secs(20),
        "Ready=False on the Scorecard",
        || {
            let sc = get(env, &["get", "scorecard", &name, "-o", "json"])?;
            (sc["status"]["conditions"][0]["status"] == "False").then_some(sc)
        },
    );
    let message = sc["status"]["conditions"][0]["message"].as_str().unwrap();
    assert!(message.contains("lifecycle-above-three"), "{message}");
    assert_eq!(
        sc["status"]["conditions"][0]["reason"], "InvalidRule",
        "{sc}"
    );
    delete_scorecard(env, &name);
}

#[test]
fn label_selectors_choose_components_and_namespaces() {
    let _log = LogOnPanic;
    operator();
    let env = TestEnv::shared();
    let ns = env.namespace("score-selectors");
    let ns = ns.name();
    let name = format!("selected-{ns}");

    let mut scorecard = article_scorecard(&name, ns);
    scorecard["spec"]["selector"] = json!({"matchLabels": {"scored": "yes"}});
    scorecard["spec"]["namespaceSelector"] = json!({"matchExpressions": [
        {"key": "pave-test-tier", "operator": "In", "values": ["gold"]}]});
    kubectl_apply(env, &scorecard);
    let mut component = article_component(ns);
    component["metadata"]["labels"] = json!({"scored": "yes"});
    kubectl_apply(env, &component);

    // The namespace does not match yet: the Component is catalogued but not scored.
    eventually(
        Duration::from_secs(20),
        "the Component's catalog status",
        || {
            let obj = get(
                env,
                &[
                    "get",
                    "component",
                    "payment-service",
                    "-n",
                    ns,
                    "-o",
                    "json",
                ],
            )?;
            obj["status"]["observedGeneration"].as_i64().map(|_| ())
        },
    );
    wait_score(
        env,
        ns,
        &name,
        "no score while the namespace does not match",
        |s| s.is_none(),
    );

    // Labelling the namespace re-scores its Components.
    env.run_kubectl(&["label", "namespace", ns, "pave-test-tier=gold"])
        .unwrap();
    wait_score(env, ns, &name, "a score once the namespace matches", |s| {
        s.is_some()
    });

    // A Component whose labels stop matching loses the score.
    component["metadata"]["labels"] = json!({"scored": "no"});
    kubectl_apply(env, &component);
    wait_score(env, ns, &name, "the score gone with the label", |s| {
        s.is_none()
    });
    delete_scorecard(env, &name);
}
