//! DeveloperEnvironments when things go wrong: the real operator binary and the real
//! control plane, with moto behind `pave_testenv::FaultProxy`. The operator is
//! SIGKILLed right after each cloud create in turn, and separately has to work through
//! throttling, server errors, dropped connections, lost answers and slow answers.
//! What the cloud holds is checked with boto3 straight against moto, region-wide, so an
//! untagged leftover would show too.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use common::devenv::{condition, get_environment, uid_of};
use common::proxy::{ProxyLogOnPanic, one_operator_at_a_time, start_behind};
use common::{eventually, kubectl_apply};
use pave_testenv::TestEnv;
use pave_testenv::fault_proxy::{Fault, FaultProxy, Rule, Seen, When};
use serde_json::{Value, json};

/// The calls that make something in the cloud, in the order pave makes them.
const CREATES: [&str; 6] = [
    "CreateVpc",
    "CreateSubnet",
    "CreateSecurityGroup",
    "CreateDBSubnetGroup",
    "CreateDBInstance",
    "RunInstances",
];

/// The article's environment: what it has of each kind, and which create makes it.
const EXPECTED: [(&str, &str, usize); 6] = [
    ("VPC", "CreateVpc", 1),
    ("Subnet", "CreateSubnet", 2),
    ("SecurityGroup", "CreateSecurityGroup", 2),
    ("DBSubnetGroup", "CreateDBSubnetGroup", 1),
    ("DBInstance", "CreateDBInstance", 1),
    ("Instance", "RunInstances", 1),
];

/// VPC, 2 subnets, 2 security groups, DB subnet group, DB instance, 1 instance.
const CREATES_IN_ENVIRONMENT: usize = 8;

/// The regions listed, as a platform team would: with any region allowed, the
/// sweeper's first round would list every region of the account through the faults.
const REGIONS: &str = "allowedRegions: [ap-northeast-2, eu-west-1]\n";

fn environment(ns: &str, name: &str, region: &str) -> Value {
    json!({
        "apiVersion": "platform.pave.dev/v1alpha1", "kind": "DeveloperEnvironment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "parameters": {"region": region, "dbSize": "db.t3.micro", "clusterSize": "small"},
            "compositeDeletePolicy": "Foreground",
        },
    })
}

/// What moto holds in `region`, as boto3 sees it: `all` lists every VPC, subnet,
/// security group, live instance, DB instance and DB subnet group whoever made it
/// (`{kind, id, vpc, group, uid}`), and `mine` those tagged with `uid`, by kind.
fn cloud(env: &TestEnv, region: &str, uid: &str) -> Value {
    let program = format!(
        r#"
import json, boto3
region, uid = {region:?}, {uid:?}
ec2 = boto3.client("ec2", region_name=region)
rds = boto3.client("rds", region_name=region)
tags = lambda ts: {{t["Key"]: t["Value"] for t in ts or []}}
every = []
def add(kind, id, ts, vpc=None, group=None):
    every.append({{"kind": kind, "id": id, "vpc": vpc, "group": group,
                  "uid": ts.get("pave.dev/environment-uid"), "name": ts.get("pave.dev/name")}})
for v in ec2.describe_vpcs()["Vpcs"]:
    add("VPC", v["VpcId"], tags(v.get("Tags")))
for s in ec2.describe_subnets()["Subnets"]:
    add("Subnet", s["SubnetId"], tags(s.get("Tags")), s["VpcId"])
for g in ec2.describe_security_groups()["SecurityGroups"]:
    add("SecurityGroup", g["GroupId"], tags(g.get("Tags")), g.get("VpcId"), g["GroupName"])
for r in ec2.describe_instances()["Reservations"]:
    for i in r["Instances"]:
        if i["State"]["Name"] != "terminated":
            add("Instance", i["InstanceId"], tags(i.get("Tags")), i.get("VpcId"))
for d in rds.describe_db_instances()["DBInstances"]:
    t = tags(rds.list_tags_for_resource(ResourceName=d["DBInstanceArn"])["TagList"])
    add("DBInstance", d["DBInstanceIdentifier"], t)
for g in rds.describe_db_subnet_groups()["DBSubnetGroups"]:
    t = tags(rds.list_tags_for_resource(ResourceName=g["DBSubnetGroupArn"])["TagList"])
    add("DBSubnetGroup", g["DBSubnetGroupName"], t, g.get("VpcId"))
mine = {{}}
for r in every:
    if r["uid"] == uid:
        mine.setdefault(r["kind"], []).append(r)
print(json.dumps({{"all": every, "mine": mine}}))
"#
    );
    serde_json::from_str(&env.boto3(&program).expect("boto3 against moto"))
        .expect("JSON from boto3")
}

/// `kind id` of every resource in a [`cloud`] answer.
fn ids(cloud: &Value) -> BTreeSet<String> {
    cloud["all"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r["kind"].as_str().unwrap(),
                r["id"].as_str().unwrap()
            )
        })
        .collect()
}

fn mine(cloud: &Value, kind: &str) -> usize {
    cloud["mine"][kind].as_array().map_or(0, Vec::len)
}

fn mine_total(cloud: &Value) -> usize {
    cloud["mine"].as_object().map_or(0, |m| {
        m.values().filter_map(Value::as_array).map(Vec::len).sum()
    })
}

/// Exactly one of each of the environment's resources, and nothing else new in the
/// region but the default security group EC2 gives every new VPC; the ids in status
/// are the ones in the cloud.
fn assert_exactly_one_of_each(before: &Value, after: &Value, status: &Value, what: &str) {
    for (kind, _, n) in EXPECTED {
        assert_eq!(
            mine(after, kind),
            n,
            "{what}: {kind} in moto: {}",
            after["mine"]
        );
    }
    let names: BTreeSet<&str> = after["mine"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|rs| rs.as_array().unwrap())
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(
        names.len(),
        8,
        "{what}: one resource per pave name: {}",
        after["mine"]
    );
    let vpc = after["mine"]["VPC"][0]["id"].as_str().unwrap();
    let old = ids(before);
    let unexplained: Vec<&Value> = after["all"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            let key = format!(
                "{} {}",
                r["kind"].as_str().unwrap(),
                r["id"].as_str().unwrap()
            );
            !old.contains(&key)
        })
        .filter(|r| r["uid"].is_null())
        .filter(|r| !(r["kind"] == "SecurityGroup" && r["group"] == "default" && r["vpc"] == vpc))
        .collect();
    assert!(
        unexplained.is_empty(),
        "{what}: new in the region but not the environment's: {unexplained:?}"
    );
    let in_cloud: BTreeSet<&str> = after["mine"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|rs| rs.as_array().unwrap())
        .filter_map(|r| r["id"].as_str())
        .collect();
    let in_status: BTreeSet<&str> = status["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert_eq!(in_status, in_cloud, "{what}: ids in status vs in moto");
}

/// Deletes the environment in the foreground and checks the region is as it was.
fn delete_and_check_nothing_left(
    env: &TestEnv,
    ns: &str,
    name: &str,
    region: &str,
    uid: &str,
    before: &Value,
) {
    env.run_kubectl(&["delete", "devenv", name, "-n", ns, "--wait=false"])
        .unwrap();
    eventually(
        Duration::from_secs(90),
        "the environment to be gone",
        || get_environment(env, ns, name).is_none().then_some(()),
    );
    let after = cloud(env, region, uid);
    assert_eq!(mine_total(&after), 0, "left behind: {}", after["mine"]);
    assert_eq!(ids(&after), ids(before), "the region is as it was before");
}

/// Forwarded creates by action.
fn creates_reaching_moto(seen: &[Seen]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for s in seen
        .iter()
        .filter(|s| s.forwarded && CREATES.contains(&s.action.as_str()))
    {
        *counts.entry(s.action.clone()).or_insert(0) += 1;
    }
    counts
}

#[test]
fn crash_after_each_create_leaves_exactly_one_of_each() {
    let _turn = one_operator_at_a_time();
    let env = TestEnv::shared();
    let region = "ap-northeast-2";
    let proxy = FaultProxy::start(&env.moto_endpoint()).expect("start the fault proxy");
    let _proxy_log = ProxyLogOnPanic(&proxy);
    let mut timings = Vec::new();
    for n in 1..=CREATES_IN_ENVIRONMENT {
        let started = Instant::now();
        let ns = env.namespace(&format!("crash-{n}"));
        let name = "crashy";
        let before = cloud(env, region, "none");
        proxy.clear_requests();

        // The first operator dies right after moto answered the n-th create.
        let mut doomed = start_behind(env, &proxy, Some(REGIONS));
        proxy.set_rules(vec![Rule::new(
            CREATES,
            When::Nth(n),
            Fault::KillAfter { pid: doomed.pid() },
        )]);
        kubectl_apply(env, &environment(&ns, name, region));
        let uid = uid_of(env, &ns, name);
        let exit = doomed.wait_for_exit(Duration::from_secs(60));
        assert_eq!(
            exit.signal(),
            Some(libc::SIGKILL),
            "round {n}: the operator should have been killed: {exit}"
        );
        let seen = proxy.requests();
        let last_create = seen
            .iter()
            .rfind(|s| CREATES.contains(&s.action.as_str()))
            .expect("a create");
        assert!(
            last_create.forwarded && last_create.status.is_none(),
            "round {n}: the last create reached moto and was never answered: {last_create:?}"
        );
        let at_crash = cloud(env, region, &uid);
        assert_eq!(
            mine_total(&at_crash),
            n,
            "round {n}: moto made the {n} resources asked for before the crash: {}",
            at_crash["mine"]
        );

        // A fresh operator, no faults, finishes the job.
        proxy.set_rules(Vec::new());
        let mut successor = start_behind(env, &proxy, Some(REGIONS));
        let obj = eventually(
            Duration::from_secs(60),
            &format!("round {n}: Ready after the restart"),
            || {
                let obj = get_environment(env, &ns, name)?;
                (obj["status"]["phase"] == "Ready").then_some(obj)
            },
        );
        let after = cloud(env, region, &uid);
        assert_exactly_one_of_each(&before, &after, &obj["status"], &format!("round {n}"));
        // Each create was sent exactly as often as there are resources of its kind:
        // the successor found what its predecessor made instead of asking again.
        let creates = creates_reaching_moto(&proxy.requests());
        for (_, action, count) in EXPECTED {
            assert_eq!(
                creates.get(action).copied().unwrap_or(0),
                count,
                "round {n}: {action} calls that reached moto: {creates:?}"
            );
        }

        delete_and_check_nothing_left(env, &ns, name, region, &uid, &before);
        successor.terminate(Duration::from_secs(10));
        timings.push((n, started.elapsed()));
    }
    eprintln!("crash rounds (n, time): {timings:?}");
}

#[test]
fn environment_converges_through_throttling_errors_drops_and_delays() {
    let _turn = one_operator_at_a_time();
    let env = TestEnv::shared();
    let region = "eu-west-1";
    let proxy = FaultProxy::start(&env.moto_endpoint()).expect("start the fault proxy");
    let _proxy_log = ProxyLogOnPanic(&proxy);
    let before = cloud(env, region, "none");

    // Rules are tried in order; a request counts only in the rules it reaches.
    let mut rules: Vec<Rule> = CREATES
        .iter()
        .map(|action| Rule::new([*action], When::First(3), Fault::Throttle))
        .collect();
    rules.extend([
        // Answers lost after moto acted, once each for a create without SDK retries
        // (the next reconcile must find it) and one with them (moto then says
        // AlreadyExists).
        Rule::new(["CreateSubnet"], When::First(1), Fault::DropResponse),
        Rule::new(["CreateDBSubnetGroup"], When::First(1), Fault::DropResponse),
        Rule::new(
            ["Describe*"],
            When::Every { n: 4, times: 6 },
            Fault::ServerError,
        ),
        Rule::new(
            ["DescribeSubnets", "DescribeSecurityGroups"],
            When::First(2),
            Fault::Drop,
        ),
        Rule::new(
            ["DescribeDBInstances", "RunInstances", "CreateTags"],
            When::First(3),
            Fault::Delay(Duration::from_secs(2)),
        ),
    ]);
    proxy.set_rules(rules);

    let operator = start_behind(env, &proxy, Some(REGIONS));
    let ns = env.namespace("faults");
    let name = "weathered";
    let started = Instant::now();
    kubectl_apply(env, &environment(&ns, name, region));
    let uid = uid_of(env, &ns, name);
    let mut recoverable_seen = None;
    // About two minutes: CreateVpc and CreateSubnet go out without SDK retries (no
    // client token), so each throttle fails a reconcile, and the per-object backoff
    // doubles over consecutive failed reconciles (1, 2, 4, … 64 s) even when each one
    // created something before failing.
    let obj = eventually(Duration::from_secs(240), "Ready through the faults", || {
        let obj = get_environment(env, &ns, name)?;
        if recoverable_seen.is_none()
            && let Some(c) = condition(&obj, "Recoverable")
        {
            recoverable_seen = Some(c.clone());
        }
        (obj["status"]["phase"] == "Ready").then_some(obj)
    });
    let converged_in = started.elapsed();
    let seen = proxy.requests();
    let after = cloud(env, region, &uid);
    assert_exactly_one_of_each(&before, &after, &obj["status"], "through faults");

    let ready = condition(&obj, "Ready").expect("a Ready condition");
    assert_eq!(ready["status"], "True", "{obj}");
    assert!(
        condition(&obj, "Recoverable").is_none() && condition(&obj, "Terminal").is_none(),
        "no error condition once Ready: {}",
        obj["status"]
    );
    let recoverable = recoverable_seen.expect("a Recoverable condition while faults lasted");
    assert_eq!(recoverable["status"], "True", "{recoverable}");

    // The faults did happen.
    let with = |fault: &dyn Fn(&Fault) -> bool| {
        seen.iter()
            .filter(|s| s.fault.as_ref().is_some_and(fault))
            .count()
    };
    let throttled = with(&|f| *f == Fault::Throttle);
    assert_eq!(throttled, 3 * CREATES.len(), "throttled creates");
    assert_eq!(with(&|f| *f == Fault::ServerError), 6, "server errors");
    assert_eq!(with(&|f| *f == Fault::Drop), 2, "dropped connections");
    assert_eq!(with(&|f| *f == Fault::DropResponse), 2, "lost answers");
    assert_eq!(
        with(&|f| matches!(f, Fault::Delay(_))),
        3,
        "delayed answers"
    );
    // Every create was tried until it got through: three throttles, then moto.
    for action in CREATES {
        let answered = seen
            .iter()
            .filter(|s| s.action == action && s.forwarded)
            .count();
        assert!(answered >= 1, "{action} never reached moto");
    }
    // Retries are bounded: the SDK tries a call at most 3 times, the controller backs
    // off per object, and nothing loops.
    assert!(
        seen.len() < 200,
        "{} requests to converge one environment",
        seen.len()
    );
    let mut by_action: BTreeMap<&str, usize> = BTreeMap::new();
    for s in &seen {
        *by_action.entry(s.action.as_str()).or_insert(0) += 1;
    }
    eprintln!(
        "converged in {converged_in:?} with {} requests ({throttled} throttled): {by_action:?}",
        seen.len()
    );

    proxy.set_rules(Vec::new());
    delete_and_check_nothing_left(env, &ns, name, region, &uid, &before);
    drop(operator);
}

/// An environment the guardrails refuse never reaches the cloud, not even to be
/// deleted: with every AWS request dropped (a region that does not exist, or is
/// unreachable), the refusal is shown and deleting it still finishes at once.
#[test]
fn a_refused_environment_is_deleted_without_asking_an_unreachable_cloud() {
    let _turn = one_operator_at_a_time();
    let env = TestEnv::shared();
    let proxy = FaultProxy::start(&env.moto_endpoint()).expect("start the fault proxy");
    let _proxy_log = ProxyLogOnPanic(&proxy);
    proxy.set_rules(vec![Rule::new(["*"], When::Always, Fault::Drop)]);
    let _operator = start_behind(env, &proxy, Some("allowedRegions: [eu-west-1]\n"));
    let ns = env.namespace("refused-unreachable");
    let ns = ns.name();
    kubectl_apply(env, &environment(ns, "nowhere", "xx-nowhere-1"));
    eventually(
        Duration::from_secs(30),
        "Ready=False PolicyViolation",
        || {
            let obj = get_environment(env, ns, "nowhere")?;
            (condition(&obj, "Ready")?["reason"] == "PolicyViolation").then_some(())
        },
    );

    env.run_kubectl(&["delete", "devenv", "nowhere", "-n", ns, "--wait=false"])
        .expect("delete the environment");
    eventually(Duration::from_secs(20), "the environment gone", || {
        get_environment(env, ns, "nowhere").is_none().then_some(())
    });
    // The sweeper looks at the allowed region at start; the refused one is never asked.
    let asked: Vec<_> = proxy
        .requests()
        .into_iter()
        .filter(|s| s.region != "eu-west-1")
        .map(|s| format!("{} in {:?}", s.action, s.region))
        .collect();
    assert_eq!(
        asked,
        Vec::<String>::new(),
        "a refused environment made AWS requests"
    );
}
