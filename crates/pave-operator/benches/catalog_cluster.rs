//! `make bench`: the catalog controller against a real control plane.
//!
//! 10,000 Components (`PAVE_BENCH_COMPONENTS`) shaped like the pure benchmark's
//! catalog (`pave_catalog::sample`) are created; then the operator starts. Measured: the
//! time until every status is correct, the status writes it took (target: one per
//! Component), the writes in the following 60 s at rest (target: 0,
//! `PAVE_BENCH_REST_SECS`), and the operator's peak RSS (target: under 100 MiB; at
//! `PAVE_BENCH_COMPONENTS=100000`, under 300 MiB). In the same run a bare client
//! applies the same statuses to a second copy of the catalog with the same
//! concurrency, and the ratio of the two times is reported (target: at most 1.1).

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt, stream};
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use pave_api::{Component, ComponentSpec};
use pave_catalog::Refs;
use pave_catalog::sample::{Rng, random_catalog};
use serde_json::{Value, json};

use support::CONCURRENCY;

fn spec(refs: &Refs) -> ComponentSpec {
    ComponentSpec {
        depends_on: refs.depends_on.clone(),
        provides_apis: refs.provides_apis.clone(),
        ..ComponentSpec::new("service", "production", &refs.owner)
    }
}

/// The catalog's answer for every Component, from the pure core: what a correct
/// status must say.
fn expected(namespace: &str, catalog: &[(String, Refs)]) -> BTreeMap<String, (bool, bool, i64)> {
    let mut graph = pave_catalog::Catalog::new();
    graph.defer();
    for (name, refs) in catalog {
        graph.upsert_component(namespace, name, refs);
    }
    graph.recompute();
    catalog
        .iter()
        .map(|(name, _)| {
            let view = graph.view(namespace, name).unwrap();
            (
                name.clone(),
                (
                    view.unresolved.is_empty(),
                    view.cycle.is_some(),
                    i64::from(view.impact),
                ),
            )
        })
        .collect()
}

/// How many Components' statuses say what `expected` does.
async fn correct(api: &Api<Component>, expected: &BTreeMap<String, (bool, bool, i64)>) -> usize {
    let list = api
        .list(&ListParams::default())
        .await
        .expect("list Components");
    list.items
        .iter()
        .filter(|c| {
            let Some(status) = &c.status else {
                return false;
            };
            let Some(&(resolved, cycle, impact)) =
                expected.get(&c.metadata.name.clone().unwrap_or_default())
            else {
                return false;
            };
            let reason =
                pave_api::conditions::find(&status.conditions, "Ready").map(|r| r.reason.as_str());
            let wanted = match (resolved, cycle) {
                (false, _) => "UnresolvedReference",
                (true, true) => "DependencyCycle",
                (true, false) => "Resolved",
            };
            status.observed_generation == c.metadata.generation
                && status.impact == Some(impact)
                && reason == Some(wanted)
        })
        .count()
}

#[tokio::main]
async fn main() {
    let n: usize = support::env_number("PAVE_BENCH_COMPONENTS", 10_000);
    let rest: u64 = support::env_number("PAVE_BENCH_REST_SECS", 60);
    let env = support::start_test_bed();
    let client = env.client().await.expect("client");
    for ns in ["bench", "bench-bare"] {
        env.run_kubectl(&["create", "namespace", ns]).unwrap();
    }
    let catalog = random_catalog(n, &mut Rng(0x9e37_79b9_7f4a_7c15));
    let api: Api<Component> = Api::namespaced(client.clone(), "bench");
    let created = support::create_all(
        &api,
        catalog
            .iter()
            .map(|(name, refs)| Component::new(name, spec(refs)))
            .collect(),
    )
    .await;
    println!(
        "catalog on a real control plane: {n} Components created in {:.1} s",
        created.as_secs_f64()
    );
    let expected = expected("bench", &catalog);

    // Two replicas, as the chart runs them; the time counts from the first one's start
    // (taking the Lease included).
    let started = Instant::now();
    let replicas = support::Replicas::start(&env, None, &env.moto_endpoint());
    let operator = &replicas.leader;
    // Listing 10,000 objects costs the API server as much as a thousand writes, so the
    // statuses are listed only once the operator's write counter says it is done (or
    // has stalled), not on every poll.
    let (mut last_writes, mut last_progress) = (0.0, Instant::now());
    loop {
        let writes = operator.status_writes();
        if writes > last_writes {
            (last_writes, last_progress) = (writes, Instant::now());
        }
        if writes >= n as f64 || last_progress.elapsed() > Duration::from_secs(5) {
            let ok = correct(&api, &expected).await;
            if ok == n {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(600),
                "only {ok} of {n} statuses correct after 10 minutes"
            );
            last_progress = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let converged = started.elapsed();
    let writes = operator.status_writes();
    println!(
        "operator: every status correct {:.1} s after start; {writes} status writes (target {n})",
        converged.as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(rest)).await;
    let at_rest = operator.status_writes() - writes;
    println!("at rest for {rest} s: {at_rest} status writes (target 0)");
    replicas.report_rss(if n >= 100_000 {
        "< 300 MiB"
    } else {
        "< 100 MiB"
    });
    replicas.stop();

    // The bare client: the same statuses, applied to a second copy of the catalog.
    let bare: Api<Component> = Api::namespaced(client.clone(), "bench-bare");
    support::create_all(
        &bare,
        catalog
            .iter()
            .map(|(name, refs)| Component::new(name, spec(refs)))
            .collect(),
    )
    .await;
    let statuses: Vec<(String, Value)> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|c| {
            let mut status = serde_json::to_value(c.status.unwrap()).unwrap();
            status["observedGeneration"] = json!(c.metadata.generation);
            (c.metadata.name.unwrap(), status)
        })
        .collect();
    let statuses = Arc::new(statuses);
    let started = Instant::now();
    stream::iter(0..statuses.len())
        .map(|i| {
            let (bare, statuses) = (bare.clone(), statuses.clone());
            async move {
                let (name, status) = &statuses[i];
                let body = json!({"apiVersion": "platform.pave.dev/v1alpha1", "kind": "Component", "status": status});
                bare.patch_status(name, &PatchParams::apply("bench-bare").force(), &Patch::Apply(&body))
                    .await
                    .map(|_| ())
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await
        .expect("bare status writes");
    let bare_time = started.elapsed();
    println!(
        "bare client: {n} status patches in {:.1} s; operator / bare = {:.2} (target <= 1.1)",
        bare_time.as_secs_f64(),
        converged.as_secs_f64() / bare_time.as_secs_f64()
    );
}
