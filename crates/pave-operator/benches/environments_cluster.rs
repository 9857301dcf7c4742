//! `make bench`: DeveloperEnvironments against a real control plane and moto.
//!
//! 200, then 400 environments (`PAVE_BENCH_ENVIRONMENTS`, a comma-separated list of
//! sizes, each run on a fresh test bed, one after the other), each with a VPC, two
//! subnets, two security groups, a database and one instance, are applied at once. A
//! proxy in front of moto (`pave_testenv::FaultProxy`, no faults) counts every AWS
//! call by operation and times moto's answers. Measured: the time until all are Ready;
//! AWS calls per environment to create, by operation; AWS calls in one resync at rest
//! for all of them (target: O(resource types × regions), independent of the number of
//! environments); status writes at rest (target 0); the operator's peak RSS (target
//! under 150 MiB); and the time to delete all of them with Foreground, and the AWS
//! calls that took. Each phase also says where moto's time went, by action, since
//! moto's cost grows with the account (docs of `pave_cloud`'s `aws::paging`) and at
//! these sizes it, not pave, can be the limit.
//!
//! moto runs with its EC2 tag look-ups indexed (`pave_testenv::Options::moto_tag_index`;
//! `PAVE_BENCH_MOTO_TAG_INDEX=0` runs moto as released). moto 5.2.5 finds each
//! resource's tags by scanning every tag in the account, so each describe costs
//! resources × tags: unindexed, at 200 environments on a loaded two-core machine the
//! inventory's DescribeVpcs and DescribeSecurityGroups already outgrow their 8 s page
//! at every page size (moto ignores MaxResults for them, and goes on working on every
//! page pave gave up on), creating took 17 minutes and deletion, which lists the
//! region, stalled (none of 200 gone after 11 minutes); at 400 one DescribeVpcs takes
//! 13-30 s and one DescribeSecurityGroups over 100 s. Indexed, those take 0.4-0.9 s,
//! and what is measured is pave.
//!
//! Asserted, because a number measured on a broken run means nothing: every
//! environment becomes Ready, every one is deleted, and afterwards moto holds nothing
//! of the run, checked with boto3 (not pave's driver) by listing every resource type
//! the environments create (VPCs, subnets, security groups other than VPCs' default
//! ones, instances not terminated, EBS volumes, DB instances, DB subnet groups).

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt, stream};
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};
use pave_api::DeveloperEnvironment;
use pave_api::environment::Phase;
use pave_testenv::fault_proxy::Seen;
use pave_testenv::{FaultProxy, TestEnv};
use serde_json::json;

const RESYNC_SECS: u64 = 20;

/// How long creating or deleting them all may take: 20 minutes, or 3 s per
/// environment if that is longer (the machine is shared, and moto's time per call
/// grows with the account).
fn patience(n: usize) -> Duration {
    Duration::from_secs(1200.max(3 * n as u64))
}

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

/// Where moto's time went in `seen`, by action, most first: calls, total and slowest
/// answer, and how many the client gave up on before moto answered.
fn moto_time(seen: &[Seen]) -> String {
    let mut by_action: BTreeMap<&str, (usize, Duration, Duration, usize)> = BTreeMap::new();
    for s in seen {
        let entry = by_action.entry(s.action.as_str()).or_default();
        let took = s.moto_time.unwrap_or_default();
        entry.0 += 1;
        entry.1 += took;
        entry.2 = entry.2.max(took);
        entry.3 += usize::from(s.forwarded && s.status.is_none());
    }
    let mut rows: Vec<_> = by_action.into_iter().collect();
    rows.sort_by_key(|(_, row)| std::cmp::Reverse(row.1));
    let total: Duration = rows.iter().map(|(_, r)| r.1).sum();
    let mut out = format!(
        "  moto's time: {:.1} s over {} calls",
        total.as_secs_f64(),
        seen.len()
    );
    for (action, (calls, sum, slowest, gave_up)) in rows.iter().take(8) {
        out.push_str(&format!(
            "\n    {action:<36} {calls:>6} calls {:>8.1} s, slowest {:>5.2} s{}",
            sum.as_secs_f64(),
            slowest.as_secs_f64(),
            if *gave_up > 0 {
                format!(", {gave_up} given up by the client")
            } else {
                String::new()
            }
        ));
    }
    out
}

/// The calls from one `action` (included) to the next (left out), once the proxy has
/// seen two: one period of something that starts with `action`, whole.
async fn one_period(proxy: &FaultProxy, action: &str) -> Vec<Seen> {
    let started = Instant::now();
    loop {
        let seen = proxy.requests();
        let starts: Vec<usize> = seen
            .iter()
            .enumerate()
            .filter(|(_, s)| s.action == action)
            .map(|(i, _)| i)
            .collect();
        if let [first, second, ..] = starts[..] {
            return seen[first..second].to_vec();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10 * RESYNC_SECS),
            "fewer than two {action} in 10 resync periods; the calls seen:\n{}",
            moto_time(&seen)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What moto holds of the run, by resource type, listed with boto3 (not pave's
/// driver) and every page: everything but what moto starts with (the default VPC, its
/// subnets, every VPC's `default` security group). The test bed is fresh, so anything
/// else was made by this run.
const LEFT_IN_MOTO: &str = r#"
import json, boto3
ec2 = boto3.client("ec2")
rds = boto3.client("rds")
def every(client, op, key, **kw):
    for page in client.get_paginator(op).paginate(**kw):
        yield from page[key]
default_vpcs = {v["VpcId"] for v in every(ec2, "describe_vpcs", "Vpcs") if v.get("IsDefault")}
left = {
    "VPC": [v["VpcId"] for v in every(ec2, "describe_vpcs", "Vpcs") if not v.get("IsDefault")],
    "subnet": [s["SubnetId"] for s in every(ec2, "describe_subnets", "Subnets")
               if s.get("VpcId") not in default_vpcs],
    "security group": [g["GroupId"] for g in every(ec2, "describe_security_groups", "SecurityGroups")
                       if g.get("GroupName") != "default"],
    "instance": [i["InstanceId"] for r in every(ec2, "describe_instances", "Reservations")
                 for i in r["Instances"] if i["State"]["Name"] != "terminated"],
    "EBS volume": [v["VolumeId"] for v in every(ec2, "describe_volumes", "Volumes")],
    "DB instance": [d["DBInstanceIdentifier"] for d in every(rds, "describe_db_instances", "DBInstances")],
    "DB subnet group": [g["DBSubnetGroupName"] for g in every(rds, "describe_db_subnet_groups", "DBSubnetGroups")],
}
print(json.dumps(left))
"#;

/// The load average, for reading the timings: the machine may be shared.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".to_owned())
}

#[tokio::main]
async fn main() {
    let sizes = std::env::var("PAVE_BENCH_ENVIRONMENTS").unwrap_or_else(|_| "200,400".into());
    let sizes: Vec<usize> = sizes
        .split(',')
        .map(|n| {
            n.trim()
                .parse()
                .expect("PAVE_BENCH_ENVIRONMENTS: numbers, comma-separated")
        })
        .collect();
    let tag_index = support::env_number("PAVE_BENCH_MOTO_TAG_INDEX", 1) != 0;
    for n in sizes {
        // A fresh control plane and moto for each size: moto's cost grows with what it
        // holds, and the check that nothing is left afterwards reads the whole account.
        let env = support::start_test_bed_with(tag_index);
        println!(
            "environments, {n} (moto {}; load average {}):",
            if tag_index {
                "with its tag look-ups indexed"
            } else {
                "as released"
            },
            load()
        );
        run(&env, n).await;
    }
}

async fn run(env: &TestEnv, n: usize) {
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

    // Two replicas, as the chart runs them.
    let replicas = support::Replicas::start(env, Some(&config), &proxy.endpoint());
    let operator = &replicas.leader;
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
            started.elapsed() < patience(n),
            "only {ready} of {n} Ready after {:?}\n{}",
            patience(n),
            moto_time(&proxy.requests())
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
    println!("{}", moto_time(&proxy.requests()));

    // At rest: from the start of one drift-check listing (its DescribeVpcs) to the
    // start of the next, after the reconciles that followed Ready settled. Everything
    // the operator asks of AWS in one resync period, whole.
    tokio::time::sleep(Duration::from_secs(5)).await;
    proxy.clear_requests();
    let writes = operator.writes_of("pave-environments");
    let period = Instant::now();
    let resync = one_period(&proxy, "DescribeVpcs").await;
    let rest = count(resync.iter().map(|s| s.action.clone()));
    println!(
        "at rest, one resync for all {n} (from one listing to the next; {RESYNC_SECS} s configured, {:.1} s watched): {} AWS calls ({}) (target: by resource type and region, not by environment)",
        period.elapsed().as_secs_f64(),
        rest.values().sum::<usize>(),
        rest.iter()
            .map(|(a, c)| format!("{a} {c}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("{}", moto_time(&resync));
    println!(
        "status writes at rest: {} (target 0)",
        operator.writes_of("pave-environments") - writes
    );
    replicas.report_rss("< 150 MiB");

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
            deleting.elapsed() < patience(n),
            "{left} of {n} environments still there after {:?}\n{}",
            patience(n),
            moto_time(&proxy.requests())
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
    println!("{}", moto_time(&proxy.requests()));

    let left = env.boto3(LEFT_IN_MOTO).expect("list what moto holds");
    let left: BTreeMap<String, Vec<String>> =
        serde_json::from_str(left.trim()).expect("boto3's listing as JSON");
    let leaks: Vec<String> = left
        .iter()
        .filter(|(_, ids)| !ids.is_empty())
        .map(|(kind, ids)| format!("{} {kind}s ({})", ids.len(), ids.join(", ")))
        .collect();
    assert!(
        leaks.is_empty(),
        "left in moto after every environment was deleted: {}",
        leaks.join("; ")
    );
    println!(
        "left in moto afterwards: nothing (listed {}); load average {}",
        left.keys()
            .map(|k| format!("{k}s"))
            .collect::<Vec<_>>()
            .join(", "),
        load()
    );
    replicas.stop();
    let _ = std::fs::remove_file(config);
}
