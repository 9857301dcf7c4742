//! `make bench`: scorecards against a real control plane.
//!
//! 10,000 Components (`PAVE_BENCH_COMPONENTS`) with varied properties and 5
//! Scorecards are created; then the operator starts. Measured: the time until every
//! Component carries 5 scores, the Component status writes it took (catalog and
//! scores go in one write: target one per Component); then one Scorecard edit that
//! moves the level of about 10% of the Components, and the writes it causes
//! (target: at most 1,000, not 10,000); the writes in the following 60 s at rest
//! (target 0, `PAVE_BENCH_REST_SECS`); and the operator's peak RSS (target under
//! 150 MiB).

mod support;

use std::time::{Duration, Instant};

use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use pave_api::{Component, ComponentSpec, Scorecard};
use pave_catalog::sample::Rng;
use serde_json::{Value, json};

/// Component `c{i}`: coverage `i % 100`, a runbook on even ones, a PagerDuty service
/// on every third, production or experimental, and tags.
fn component(i: usize, rng: &mut Rng) -> Component {
    let mut spec = ComponentSpec::new(
        "service",
        if i.is_multiple_of(4) {
            "experimental"
        } else {
            "production"
        },
        &format!("team-{}", i % 200),
    );
    spec.tags = vec![["java", "go", "rust", "python"][i % 4].to_owned()];
    let mut properties = serde_json::Map::new();
    properties.insert("coverage".into(), json!(i % 100));
    if i.is_multiple_of(2) {
        properties.insert(
            "runbook_url".into(),
            json!(format!("https://runbooks/c{i}")),
        );
    }
    properties.insert("tier".into(), json!(rng.below(3) + 1));
    spec.properties = Some(properties);
    let mut component = Component::new(&format!("c{i}"), spec);
    if i.is_multiple_of(3) {
        component.metadata.annotations =
            Some([("pagerduty.com/service-id".to_owned(), format!("P{i}"))].into());
    }
    component
}

fn rule(identifier: &str, level: &str, property: &str, operator: &str, value: Value) -> Value {
    json!({"identifier": identifier, "level": level,
           "query": {"combinator": "and", "rules": [{"property": property, "operator": operator, "value": value}]}})
}

fn scorecards() -> Vec<Value> {
    let levels = json!([{"title": "Basic"}, {"title": "Silver"}, {"title": "Gold"}]);
    let specs = [
        (
            "maturity",
            vec![
                rule("has-owner", "Basic", "$team", "isNotEmpty", Value::Null),
                rule(
                    "has-runbook",
                    "Silver",
                    "runbook_url",
                    "isNotEmpty",
                    Value::Null,
                ),
                rule(
                    "has-alerting",
                    "Gold",
                    "pagerduty_service_id",
                    "isNotEmpty",
                    Value::Null,
                ),
            ],
        ),
        (
            "coverage",
            vec![
                rule("some-tests", "Silver", "coverage", ">=", json!(50)),
                rule("well-tested", "Gold", "coverage", ">=", json!(90)),
            ],
        ),
        (
            "production-ready",
            vec![
                rule(
                    "is-production",
                    "Silver",
                    "lifecycle",
                    "=",
                    json!("production"),
                ),
                rule("tier-one-or-two", "Gold", "tier", "<=", json!(2)),
            ],
        ),
        (
            "languages",
            vec![
                rule(
                    "known-language",
                    "Silver",
                    "$tags",
                    "containsAny",
                    json!(["java", "go", "rust"]),
                ),
                rule("rust", "Gold", "$tags", "contains", json!("rust")),
            ],
        ),
        (
            "naming",
            vec![
                rule("named", "Silver", "$identifier", "beginsWith", json!("c")),
                rule(
                    "short",
                    "Gold",
                    "$identifier",
                    "in",
                    json!(["c1", "c2", "c3"]),
                ),
            ],
        ),
    ];
    specs
        .into_iter()
        .map(|(name, rules)| {
            let rules: Vec<Value> = rules
                .into_iter()
                .map(|mut r| {
                    if r["query"]["rules"][0]["value"].is_null() {
                        r["query"]["rules"][0]
                            .as_object_mut()
                            .unwrap()
                            .remove("value");
                    }
                    r
                })
                .collect();
            json!({"apiVersion": "platform.pave.dev/v1alpha1", "kind": "Scorecard",
                   "metadata": {"name": name}, "spec": {"levels": levels, "rules": rules}})
        })
        .collect()
}

/// How many Components carry `scores` scores, and how many of those reach Gold on
/// the coverage scorecard.
async fn scored(api: &Api<Component>, scores: usize) -> (usize, usize) {
    let list = api
        .list(&ListParams::default())
        .await
        .expect("list Components");
    let done = list
        .items
        .iter()
        .filter(|c| c.status.as_ref().is_some_and(|s| s.scores.len() == scores))
        .count();
    let gold = list
        .items
        .iter()
        .filter(|c| {
            c.status.as_ref().is_some_and(|s| {
                s.scores
                    .iter()
                    .any(|s| s.scorecard == "coverage" && s.level.as_deref() == Some("Gold"))
            })
        })
        .count();
    (done, gold)
}

/// Waits until the status write counter has not moved for `quiet`; returns it.
async fn settle(operator: &support::Operator, quiet: Duration) -> f64 {
    let (mut last, mut since) = (operator.status_writes(), Instant::now());
    while since.elapsed() < quiet {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = operator.status_writes();
        if now != last {
            (last, since) = (now, Instant::now());
        }
    }
    last
}

#[tokio::main]
async fn main() {
    let n: usize = support::env_number("PAVE_BENCH_COMPONENTS", 10_000);
    let rest: u64 = support::env_number("PAVE_BENCH_REST_SECS", 60);
    let env = support::start_test_bed();
    let client = env.client().await.expect("client");
    env.run_kubectl(&["create", "namespace", "bench"]).unwrap();
    let scorecard_api: Api<Scorecard> = Api::all(client.clone());
    for scorecard in scorecards() {
        let scorecard: Scorecard = serde_json::from_value(scorecard).unwrap();
        scorecard_api
            .create(&PostParams::default(), &scorecard)
            .await
            .expect("create a Scorecard");
    }
    let api: Api<Component> = Api::namespaced(client.clone(), "bench");
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let created = support::create_all(&api, (0..n).map(|i| component(i, &mut rng)).collect()).await;
    println!(
        "scorecards on a real control plane: {n} Components and 5 Scorecards created in {:.1} s",
        created.as_secs_f64()
    );

    let operator = support::Operator::start(&env);
    let started = Instant::now();
    loop {
        if operator.status_writes() >= n as f64 && scored(&api, 5).await.0 == n {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "not converged after 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let converged = started.elapsed();
    let writes = settle(&operator, Duration::from_secs(3)).await;
    println!(
        "operator: {n} Components × 5 Scorecards scored {:.1} s after start; {writes} Component status writes (target {n})",
        converged.as_secs_f64()
    );

    // Lower the coverage scorecard's Gold bar from 90 to 80: coverage 80–89, a tenth of
    // the Components, moves from Silver to Gold.
    let (_, gold_before) = scored(&api, 5).await;
    let edit = json!({"spec": {"rules": [
        rule("some-tests", "Silver", "coverage", ">=", json!(50)),
        rule("well-tested", "Gold", "coverage", ">=", json!(80)),
    ]}});
    let edited = Instant::now();
    scorecard_api
        .patch("coverage", &PatchParams::default(), &Patch::Merge(&edit))
        .await
        .expect("edit the coverage Scorecard");
    let expected_gold = gold_before + n / 10;
    loop {
        if scored(&api, 5).await.1 >= expected_gold {
            break;
        }
        assert!(
            edited.elapsed() < Duration::from_secs(300),
            "the edit did not converge"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let after_edit = settle(&operator, Duration::from_secs(3)).await;
    println!(
        "one Scorecard edit moving {} Components to Gold: converged in {:.1} s with {} writes (target <= {})",
        n / 10,
        edited.elapsed().as_secs_f64(),
        after_edit - writes,
        n / 10
    );

    tokio::time::sleep(Duration::from_secs(rest)).await;
    println!(
        "at rest for {rest} s: {} status writes (target 0)",
        operator.status_writes() - after_edit
    );
    println!(
        "operator peak RSS: {:.1} MiB (target < 150 MiB)",
        operator.peak_rss_mib()
    );
}
