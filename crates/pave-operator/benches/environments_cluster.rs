//! `make bench`: DeveloperEnvironments against a real control plane and moto.
//!
//! 200 environments (`PAVE_BENCH_ENVIRONMENTS`), each with a VPC, two subnets, two
//! security groups, a database and one instance, are applied at once. A proxy in
//! front of moto (`pave_testenv::FaultProxy`, no faults) counts every AWS call by
//! operation. Measured: the time until all are Ready; AWS calls per environment to
//! create, by operation; AWS calls in one resync at rest for all of them (target:
//! O(resource types × regions), independent of the number of environments); status
//! writes at rest (target 0); the operator's peak RSS (target under 150 MiB); and the
//! time to delete all of them with Foreground, and the AWS calls that took.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt, stream};
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};
use pave_api::DeveloperEnvironment;
use pave_api::environment::Phase;
use pave_testenv::FaultProxy;
use serde_json::json;

const RESYNC_SECS: u64 = 20;

fn environment(i: usize) -> DeveloperEnvironment {
    serde_json::from_value(json!({
        "apiVersion": "platform.pave.dev/v1alpha1", "kind": "DeveloperEnvironment",
        "metadata": {"name": format!("env-{i}")},
        "spec": {
            "parameters": {"region": "us-east-1", "dbSize": "db.t3.micro", "clusterSize": "small"},
            "compositeDeletePolicy": "Foreground",
        },
    }))
    .unwrap()
}

async fn phases(api: &Api<DeveloperEnvironment>) -> (usize, usize) {
    let list = api
        .list(&ListParams::default())
        .await
        .expect("list environments");
    let ready = list
        .items
        .iter()
        .filter(|e| e.status.as_ref().and_then(|s| s.phase) == Some(Phase::Ready))
        .count();
    (list.items.len(), ready)
}

fn by_action(proxy: &FaultProxy) -> BTreeMap<String, usize> {
    count(proxy.requests().into_iter().map(|seen| seen.action))
}

fn count(actions: impl IntoIterator<Item = String>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for action in actions {
        *counts.entry(action).or_insert(0) += 1;
    }
    counts
}

/// The calls from one `action` (included) to the next (left out), once the proxy has
/// seen two: one period of something that starts with `action`, whole.
async fn one_period(proxy: &FaultProxy, action: &str) -> Vec<String> {
    let started = Instant::now();
    loop {
        let actions: Vec<String> = proxy.requests().into_iter().map(|r| r.action).collect();
        let starts: Vec<usize> = actions
            .iter()
            .enumerate()
            .filter(|(_, a)| *a == action)
            .map(|(i, _)| i)
            .collect();
        if let [first, second, ..] = starts[..] {
            return actions[first..second].to_vec();
        }
        assert!(
            started.elapsed() < Duration::from_secs(4 * RESYNC_SECS),
            "fewer than two {action} in {} resync periods",
            4
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::main]
async fn main() {
    let n: usize = support::env_number("PAVE_BENCH_ENVIRONMENTS", 200);
    let env = support::start_test_bed();
    let proxy = FaultProxy::start(&env.moto_endpoint()).expect("start the counting proxy");
    let config =
        std::env::temp_dir().join(format!("pave-bench-config-{}.yaml", std::process::id()));
    std::fs::write(
        &config,
        format!("environmentsPerNamespace: 0\nresyncInterval: {RESYNC_SECS}s\nsweepInterval: 1h\n"),
    )
    .unwrap();
    let client = env.client().await.expect("client");
    env.run_kubectl(&["create", "namespace", "bench"]).unwrap();
    let api: Api<DeveloperEnvironment> = Api::namespaced(client, "bench");

    let operator = support::Operator::start_with(&env, Some(&config), &proxy.endpoint());
    let started = Instant::now();
    stream::iter(0..n)
        .map(|i| {
            let api = api.clone();
            async move {
                api.create(&PostParams::default(), &environment(i))
                    .await
                    .map(|_| ())
            }
        })
        .buffer_unordered(support::CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await
        .expect("create the environments");
    loop {
        let (total, ready) = phases(&api).await;
        if total == n && ready == n {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1200),
            "only {ready} of {n} Ready after 20 minutes"
        );
        if started.elapsed().as_secs().is_multiple_of(30) {
            eprintln!(
                "  {ready} of {n} Ready after {:.0} s",
                started.elapsed().as_secs_f64()
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let ready_after = started.elapsed();
    println!(
        "environments on a real control plane and moto: {n} applied at once, all Ready after {:.1} s",
        ready_after.as_secs_f64()
    );
    let calls = by_action(&proxy);
    let total: usize = calls.values().sum();
    println!(
        "AWS calls to create, per environment: {:.1} in all",
        total as f64 / n as f64
    );
    for (action, count) in &calls {
        println!("  {action:<36} {:>6.2}", *count as f64 / n as f64);
    }

    // At rest: from the start of one drift-check listing (its DescribeVpcs) to the
    // start of the next, after the reconciles that followed Ready settled. Everything
    // the operator asks of AWS in one resync period, whole.
    tokio::time::sleep(Duration::from_secs(5)).await;
    proxy.clear_requests();
    let writes = operator.writes_of("pave-environments");
    let period = Instant::now();
    let rest = count(one_period(&proxy, "DescribeVpcs").await);
    println!(
        "at rest, one resync for all {n} (from one listing to the next; {RESYNC_SECS} s configured, {:.1} s watched): {} AWS calls ({}) (target: by resource type and region, not by environment)",
        period.elapsed().as_secs_f64(),
        rest.values().sum::<usize>(),
        rest.iter()
            .map(|(a, c)| format!("{a} {c}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "status writes at rest: {} (target 0)",
        operator.writes_of("pave-environments") - writes
    );
    println!(
        "operator peak RSS: {:.1} MiB (target < 150 MiB)",
        operator.peak_rss_mib()
    );

    proxy.clear_requests();
    let deleting = Instant::now();
    api.delete_collection(&DeleteParams::default(), &ListParams::default())
        .await
        .expect("delete every environment");
    loop {
        let (left, _) = phases(&api).await;
        if left == 0 {
            break;
        }
        if deleting.elapsed().as_secs().is_multiple_of(30) {
            eprintln!(
                "  {left} of {n} left after {:.0} s",
                deleting.elapsed().as_secs_f64()
            );
        }
        assert!(
            deleting.elapsed() < Duration::from_secs(1200),
            "environments still there after 20 minutes"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    println!(
        "deleting all {n} with Foreground took {:.1} s",
        deleting.elapsed().as_secs_f64()
    );
    let calls = by_action(&proxy);
    println!(
        "AWS calls to delete, per environment: {:.1} in all",
        calls.values().sum::<usize>() as f64 / n as f64
    );
    for (action, count) in &calls {
        println!("  {action:<36} {:>6.2}", *count as f64 / n as f64);
    }
    let _ = std::fs::remove_file(config);
}
