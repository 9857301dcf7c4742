//! DeveloperEnvironments while the cloud takes its time, as AWS does and moto does
//! not: the real operator binary and control plane, with moto behind
//! `pave_testenv::FaultProxy`, whose slow states make describes report a database
//! `deleting` or an instance `pending` for a while. Deletion shows its progress while
//! RDS deletes; a spec change is followed through while its new instance starts; a
//! deletion SIGKILLed after any of its cloud calls finishes after a restart; and 50
//! environments created while 50 others are deleted, with the sweeper running every
//! second, never lose a resource. What the cloud holds is checked with boto3 straight
//! against moto; which resources each delete named, with the proxy's request log.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use common::devenv::{
    condition, delete, environment, get, get_environment, inventory, patch_spec, resource_ids,
    total, uid_of, wait_gone, wait_phase,
};
use common::proxy::{
    DELETES, ProxyLogOnPanic, describe, named_by_delete, one_operator_at_a_time, start_behind,
};
use common::{devenv, eventually, holds_for, kubectl_apply};
use pave_testenv::TestEnv;
use pave_testenv::fault_proxy::{Fault, FaultProxy, Rule, Seen, SlowState, Transition, When};
use serde_json::{Value, json};

/// The sweeper runs every second with a one-second grace period, so a wrong sweep
/// shows within a test; no limit per namespace, for the race's fifty.
const CONFIG: &str = "
allowedRegions: [us-east-1, us-west-2, eu-west-1, ap-northeast-2]
sweepInterval: 1s
sweepGracePeriod: 1s
environmentsPerNamespace: 0
";

/// How long a database stays `deleting`, or a new instance `pending`, where a test
/// watches the operator wait: ample for a few looks at the object, and over before
/// the operator's third look (its retries are 1, 2 and 4 s apart), so none is wasted.
const SLOW: Duration = Duration::from_secs(5);

/// The calls of a Foreground teardown of an environment with a database and one
/// instance, in the order pave makes them (reverse creation order).
const TEARDOWN: [&str; 8] = [
    "TerminateInstances",
    "DeleteDBInstance",
    "DeleteDBSubnetGroup",
    "DeleteSecurityGroup",
    "DeleteSecurityGroup",
    "DeleteSubnet",
    "DeleteSubnet",
    "DeleteVpc",
];

/// How long the resource a killed call acted on stays on its way out (an instance
/// `shutting-down`, a database `deleting`), for the successor to find it so.
const AFTER_KILL: Duration = Duration::from_secs(3);

/// How many environments the race creates, and how many it deletes meanwhile.
const RACE: usize = 50;

/// The status entries of `kind`.
fn entries<'a>(obj: &'a Value, kind: &str) -> Vec<&'a Value> {
    obj["status"]["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["kind"] == kind)
        .collect()
}

fn state(entry: &Value) -> &str {
    entry["state"].as_str().unwrap_or_default()
}

/// The ids status records.
fn status_ids(obj: &Value) -> BTreeSet<String> {
    obj["status"]["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["id"].as_str().map(str::to_owned))
        .collect()
}

/// A `kubectl apply`-able list.
fn list(items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": "List", "items": items})
}

/// Every DeveloperEnvironment in `ns` (`None`: all namespaces), by `namespace/name`;
/// `None` if kubectl failed.
fn environments(env: &TestEnv, ns: Option<&str>) -> Option<BTreeMap<String, Value>> {
    let mut args = vec!["get", "devenv", "-o", "json"];
    match ns {
        Some(ns) => args.extend(["-n", ns]),
        None => args.push("-A"),
    }
    let items = get(env, &args)?["items"].as_array()?.clone();
    Some(
        items
            .into_iter()
            .map(|o| {
                let key = format!(
                    "{}/{}",
                    o["metadata"]["namespace"].as_str().unwrap_or_default(),
                    o["metadata"]["name"].as_str().unwrap_or_default()
                );
                (key, o)
            })
            .collect(),
    )
}

/// Waits until there are `n` environments in `ns`, all Ready; names any that are not
/// when time runs out.
fn wait_all_ready(env: &TestEnv, ns: &str, n: usize, within: Duration) -> BTreeMap<String, Value> {
    let started = Instant::now();
    loop {
        let found = environments(env, Some(ns)).unwrap_or_default();
        let waiting: Vec<String> = found
            .iter()
            .filter(|(_, o)| o["status"]["phase"] != "Ready")
            .map(|(name, o)| {
                let ready = condition(o, "Ready").map(|c| c["message"].clone());
                format!("{name}: {} {ready:?}", o["status"]["phase"])
            })
            .collect();
        if found.len() == n && waiting.is_empty() {
            return found;
        }
        assert!(
            started.elapsed() < within,
            "{n} environments in {ns} not all Ready within {within:?} ({} found); not Ready: {waiting:?}",
            found.len()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Deletes an environment (in the foreground) and waits until nothing of it is left.
fn delete_and_check_nothing_left(env: &TestEnv, ns: &str, name: &str, region: &str, uid: &str) {
    delete(env, ns, name);
    wait_gone(env, ns, name, Duration::from_secs(60));
    let left = devenv::cloud(env, region, uid);
    assert_eq!(total(&left), 0, "left behind: {left}");
}

/// Issue 10, 1: a Foreground deletion waits for RDS, and says so while it does: the
/// object stays, phase Deleting, each resource's state in status (the database
/// `deleting`, the instance already `deleted`, the rest still there), and nothing
/// after the database in the teardown is touched until the database is gone.
#[test]
fn foreground_deletion_shows_its_progress_while_the_database_is_deleting() {
    let _turn = one_operator_at_a_time();
    let env = TestEnv::shared();
    let region = "ap-northeast-2";
    let proxy = FaultProxy::start(&env.moto_endpoint()).expect("start the fault proxy");
    let _proxy_log = ProxyLogOnPanic(&proxy);
    let _operator = start_behind(env, &proxy, Some(CONFIG));
    let ns = env.namespace("slow-db-delete");
    let ns = ns.name();
    let name = "patient";
    kubectl_apply(
        env,
        &environment(
            ns,
            name,
            json!({"region": region, "dbSize": "db.t3.micro", "clusterSize": "small"}),
            // Background is the default; Foreground is what keeps the object.
            json!({"compositeDeletePolicy": "Foreground"}),
        ),
    );
    let ready = wait_phase(env, ns, name, "Ready");
    let uid = uid_of(env, ns, name);
    let before = devenv::cloud(env, region, &uid);
    assert_eq!(total(&before), 8, "the whole environment: {before}");
    let database = entries(&ready, "DBInstance")[0]["id"]
        .as_str()
        .expect("the database's identifier in status")
        .to_owned();

    proxy.set_slow_states(vec![
        SlowState::new(Transition::DbDeleting, SLOW).only(database.clone()),
    ]);
    proxy.clear_requests();
    delete(env, ns, name);
    let during = eventually(
        Duration::from_secs(60),
        "phase Deleting with the database deleting in status",
        || {
            let obj = get_environment(env, ns, name)?;
            let db = entries(&obj, "DBInstance")
                .first()
                .map(|e| state(e).to_owned());
            (obj["status"]["phase"] == "Deleting" && db.as_deref() == Some("deleting"))
                .then_some(obj)
        },
    );
    let status = &during["status"];
    assert!(
        during["metadata"]["finalizers"]
            .to_string()
            .contains("platform.pave.dev/cloud-resources"),
        "held by the finalizer: {}",
        during["metadata"]
    );
    let ready_condition = condition(&during, "Ready").expect("a Ready condition");
    assert_eq!(ready_condition["status"], "False", "{status}");
    assert_eq!(ready_condition["reason"], "Deleting", "{status}");
    let instances = entries(&during, "Instance");
    assert_eq!(instances.len(), 1, "{status}");
    assert_eq!(
        state(instances[0]),
        "deleted",
        "the instance goes first: {status}"
    );
    for kind in ["VPC", "Subnet", "SecurityGroup", "DBSubnetGroup"] {
        let shown = entries(&during, kind);
        assert_eq!(
            shown.len(),
            devenv::count(&before, kind),
            "{kind}: {status}"
        );
        for entry in shown {
            assert_ne!(
                state(entry),
                "deleted",
                "{kind} is deleted only after the database: {status}"
            );
            assert!(
                resource_ids(&before).contains(entry["id"].as_str().unwrap_or_default()),
                "{kind} with the id it has in the cloud: {entry}"
            );
        }
    }

    wait_gone(env, ns, name, Duration::from_secs(60));
    let after = devenv::cloud(env, region, &uid);
    assert_eq!(total(&after), 0, "left behind: {after}");
    // Each step was an Event: deletion started, the database being deleted, each
    // resource deleted (one Event per resource), and the end.
    let reasons = devenv::events_about(env, ns, name, "", "reason");
    for reason in ["Deleting", "DeletingResource", "DeletedResource", "Deleted"] {
        assert!(
            reasons.split_whitespace().any(|r| r == reason),
            "no {reason} Event in {reasons}"
        );
    }
    let deleting = devenv::events_about(env, ns, name, "reason=DeletingResource", "note");
    assert!(
        deleting.contains(&format!("DBInstance {database} (")),
        "the database's deletion: {deleting}"
    );
    let deleted = devenv::events_about(env, ns, name, "reason=DeletedResource", "note");
    assert!(
        deleted.matches(") deleted").count() >= 1,
        "resources deleted while the database was: {deleted}"
    );

    let seen = proxy.requests();
    let asked = seen
        .iter()
        .filter(|s| s.action == "DeleteDBInstance" && s.forwarded)
        .count();
    assert_eq!(
        asked, 1,
        "asked RDS once to delete the database, not again while it was deleting"
    );
    let last_deleting = seen
        .iter()
        .rposition(|s| {
            s.reported
                .iter()
                .any(|r| r.resource.eq_ignore_ascii_case(&database) && r.state == "deleting")
        })
        .expect("the proxy reported the database deleting");
    let first_after_db = seen
        .iter()
        .position(|s| {
            [
                "DeleteDBSubnetGroup",
                "RevokeSecurityGroupIngress",
                "DeleteSecurityGroup",
                "DeleteSubnet",
                "DeleteVpc",
            ]
            .contains(&s.action.as_str())
        })
        .expect("the rest deleted");
    assert!(
        first_after_db > last_deleting,
        "{} was sent while the database was still deleting",
        describe(&seen[first_after_db])
    );
}

/// Issue 10, 2 (defect 5): raising clusterSize on a Ready environment is carried out
/// even while the new instance is `pending`: the phase says Updating, never Ready,
/// until it runs, then Ready with the new number of instances in status and in the
/// cloud. The instance already there is kept, and the new one launched once.
#[test]
fn a_cluster_size_change_is_followed_through_while_the_new_instance_is_pending() {
    let _turn = one_operator_at_a_time();
    let env = TestEnv::shared();
    let region = "eu-west-1";
    let proxy = FaultProxy::start(&env.moto_endpoint()).expect("start the fault proxy");
    let _proxy_log = ProxyLogOnPanic(&proxy);
    let _operator = start_behind(env, &proxy, Some(CONFIG));
    let ns = env.namespace("slow-grow");
    let ns = ns.name();
    let name = "growing";
    kubectl_apply(
        env,
        &environment(
            ns,
            name,
            json!({"region": region, "clusterSize": "small"}),
            json!({"compositeDeletePolicy": "Foreground"}),
        ),
    );
    let ready = wait_phase(env, ns, name, "Ready");
    let uid = uid_of(env, ns, name);
    let generation = ready["metadata"]["generation"].as_i64().unwrap();
    let first = entries(&ready, "Instance");
    assert_eq!(first.len(), 1, "small is one instance: {}", ready["status"]);
    let first_id = first[0]["id"].as_str().unwrap().to_owned();
    let first_name = first[0]["name"].as_str().unwrap().to_owned();
    let new_name = first_name
        .strip_suffix("vm-0")
        .map(|prefix| format!("{prefix}vm-1"))
        .unwrap_or_else(|| panic!("instances are named …-vm-N: {first_name}"));

    proxy.set_slow_states(vec![
        SlowState::new(Transition::InstancePending, SLOW).only(new_name.clone()),
    ]);
    proxy.clear_requests();
    patch_spec(
        env,
        ns,
        name,
        json!({"parameters": {"clusterSize": "medium"}}),
    );
    let wanted = generation + 1;
    let mut looks = Vec::new();
    let done = eventually(
        Duration::from_secs(90),
        "Ready for the new generation",
        || {
            let obj = get_environment(env, ns, name)?;
            looks.push(obj.clone());
            let ready = condition(&obj, "Ready")?;
            (obj["status"]["phase"] == "Ready"
                && obj["status"]["observedGeneration"] == wanted
                && ready["status"] == "True"
                && ready["observedGeneration"] == wanted)
                .then_some(obj)
        },
    );

    let pending: Vec<&Value> = looks
        .iter()
        .filter(|o| {
            entries(o, "Instance")
                .iter()
                .any(|e| e["name"] == new_name.as_str() && state(e) == "pending")
        })
        .collect();
    assert!(
        !pending.is_empty(),
        "status showed {new_name} pending at some point; looks: {:?}",
        looks.iter().map(|o| &o["status"]).collect::<Vec<_>>()
    );
    for look in &pending {
        assert_eq!(
            look["status"]["phase"], "Updating",
            "the phase while the new instance is pending: {}",
            look["status"]
        );
        // The Ready condition of the last generation may still show until the
        // reconcile's last write; for this generation it must not say True.
        let ready = condition(look, "Ready").expect("a Ready condition");
        assert!(
            ready["observedGeneration"] != wanted || ready["status"] == "False",
            "not Ready for the new spec while the new instance is pending: {}",
            look["status"]
        );
    }
    for look in &looks {
        if look["status"]["phase"] == "Ready" && look["status"]["observedGeneration"] == wanted {
            let running = entries(look, "Instance")
                .iter()
                .filter(|e| state(e) == "running")
                .count();
            assert_eq!(
                running, 2,
                "Ready for the new spec only with both instances running: {}",
                look["status"]
            );
        }
    }

    let instances = entries(&done, "Instance");
    assert_eq!(
        instances.len(),
        2,
        "medium is two instances: {}",
        done["status"]
    );
    assert!(
        instances.iter().all(|e| state(e) == "running"),
        "{}",
        done["status"]
    );
    assert!(
        instances.iter().any(|e| e["id"] == first_id.as_str()),
        "the first instance is kept: {}",
        done["status"]
    );
    let in_cloud = devenv::cloud(env, region, &uid);
    assert_eq!(devenv::count(&in_cloud, "Instance"), 2, "{in_cloud}");
    assert_eq!(
        status_ids(&done),
        resource_ids(&in_cloud),
        "ids in status vs in moto"
    );
    let launches = proxy
        .requests()
        .iter()
        .filter(|s| s.action == "RunInstances" && s.forwarded)
        .count();
    assert_eq!(launches, 1, "the new instance is launched once");

    proxy.set_slow_states(Vec::new());
    delete_and_check_nothing_left(env, ns, name, region, &uid);
}

/// The delete calls in `seen` (the kill rule's actions), in order.
fn teardown_calls(seen: &[Seen]) -> Vec<&Seen> {
    seen.iter()
        .filter(|s| TEARDOWN.contains(&s.action.as_str()))
        .collect()
}

/// Issue 10, 3: the operator is SIGKILLed right after each delete call of a
/// Foreground teardown in turn (one environment per step); a fresh operator finishes
/// the deletion, and nothing of the environment is left.
#[test]
fn a_deletion_killed_after_any_step_finishes_after_a_restart() {
    let _turn = one_operator_at_a_time();
    let env = TestEnv::shared();
    let region = "us-east-1";
    let proxy = FaultProxy::start(&env.moto_endpoint()).expect("start the fault proxy");
    let _proxy_log = ProxyLogOnPanic(&proxy);
    let mut operator = start_behind(env, &proxy, Some(CONFIG));
    let ns = env.namespace("slow-kill-delete");
    let ns = ns.name();
    let parameters = json!({"region": region, "dbSize": "db.t3.micro", "clusterSize": "small"});
    let manifests: Vec<Value> = (1..=TEARDOWN.len())
        .map(|n| {
            environment(
                ns,
                &format!("kill-{n}"),
                parameters.clone(),
                json!({"compositeDeletePolicy": "Foreground"}),
            )
        })
        .collect();
    kubectl_apply(env, &list(manifests));
    let started = Instant::now();
    let ready = wait_all_ready(env, ns, TEARDOWN.len(), Duration::from_secs(180));
    let mut timings = vec![("ready", started.elapsed())];
    let uid = |name: &str| {
        ready[&format!("{ns}/{name}")]["metadata"]["uid"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let before = devenv::clouds(env, region);
    for name in ready.keys() {
        let name = name.rsplit('/').next().unwrap();
        let mine = before.get(&uid(name)).cloned().unwrap_or_default();
        assert_eq!(total(&mine), 8, "{name} in moto: {mine}");
    }

    for (i, action) in TEARDOWN.iter().enumerate() {
        let n = i + 1;
        let name = format!("kill-{n}");
        let what = format!("step {n} (killed after {action})");
        let mine = &before[&uid(&name)];
        let ids = resource_ids(mine);
        // The killed call leaves its resource on its way out, as AWS would.
        proxy.set_slow_states(match *action {
            "TerminateInstances" => vec![
                SlowState::new(Transition::InstanceShuttingDown, AFTER_KILL)
                    .only(mine["Instance"][0]["id"].as_str().unwrap()),
            ],
            "DeleteDBInstance" => vec![
                SlowState::new(Transition::DbDeleting, AFTER_KILL)
                    .only(mine["DBInstance"][0]["id"].as_str().unwrap()),
            ],
            _ => Vec::new(),
        });
        proxy.clear_requests();
        proxy.set_rules(vec![Rule::new(
            TEARDOWN,
            When::Nth(n),
            Fault::KillAfter {
                pid: operator.pid(),
            },
        )]);
        delete(env, ns, &name);
        let exit = operator.wait_for_exit(Duration::from_secs(60));
        assert_eq!(exit.signal(), Some(libc::SIGKILL), "{what}: {exit}");
        let seen = proxy.requests();
        let calls = teardown_calls(&seen);
        assert_eq!(calls.len(), n, "{what}: delete calls before the kill");
        let killed = calls[n - 1];
        assert_eq!(killed.action, *action, "{what}: the teardown's order");
        assert!(
            killed.forwarded && killed.status.is_none(),
            "{what}: the call reached moto and was never answered: {killed:?}"
        );
        let obj = get_environment(env, ns, &name).expect("still there after the kill");
        assert!(
            !obj["metadata"]["deletionTimestamp"].is_null(),
            "{what}: {obj}"
        );

        proxy.set_rules(Vec::new());
        operator = start_behind(env, &proxy, Some(CONFIG));
        wait_gone(env, ns, &name, Duration::from_secs(90));
        timings.push((action, started.elapsed()));
        // Both operators deleted this environment's resources and nothing else.
        for s in proxy.requests() {
            for named in named_by_delete(&s) {
                assert!(
                    ids.contains(named),
                    "{what}: {} named what is not {name}'s",
                    describe(&s)
                );
            }
        }
    }
    let after = devenv::clouds(env, region);
    for n in 1..=TEARDOWN.len() {
        let name = format!("kill-{n}");
        assert!(
            !after.contains_key(&uid(&name)),
            "step {n}: left behind: {}",
            after[&uid(&name)]
        );
    }
    eprintln!("kill steps (step, since the start): {timings:?}");
    operator.terminate(Duration::from_secs(10));
}

/// Issue 10, 3, with `deletionPolicy: Orphan`: the operator is SIGKILLed after the
/// third resource was marked orphaned; after the restart the object is gone and every
/// resource is still there, none deleted, each marked orphaned in the cloud.
#[test]
fn an_orphaning_killed_midway_keeps_everything_marked_after_a_restart() {
    let _turn = one_operator_at_a_time();
    let env = TestEnv::shared();
    let region = "us-east-1";
    let proxy = FaultProxy::start(&env.moto_endpoint()).expect("start the fault proxy");
    let _proxy_log = ProxyLogOnPanic(&proxy);
    let mut operator = start_behind(env, &proxy, Some(CONFIG));
    let ns = env.namespace("slow-kill-orphan");
    let ns = ns.name();
    kubectl_apply(
        env,
        &environment(
            ns,
            "kept",
            json!({"region": region, "dbSize": "db.t3.micro", "clusterSize": "small"}),
            json!({"deletionPolicy": "Orphan"}),
        ),
    );
    wait_phase(env, ns, "kept", "Ready");
    let kept_uid = uid_of(env, ns, "kept");
    let kept = devenv::cloud(env, region, &kept_uid);
    assert_eq!(total(&kept), 8, "the whole environment: {kept}");
    let kept_ids = resource_ids(&kept);
    let marked = |cloud: &Value| -> Vec<String> {
        let mut out = Vec::new();
        for (kind, items) in cloud.as_object().into_iter().flatten() {
            for item in items.as_array().into_iter().flatten() {
                if item["tags"]["pave.dev/orphaned"] == "true" {
                    out.push(format!("{kind} {}", item["id"].as_str().unwrap_or("?")));
                }
            }
        }
        out.sort();
        out
    };

    proxy.clear_requests();
    proxy.set_rules(vec![Rule::new(
        ["CreateTags", "AddTagsToResource"],
        When::Nth(3),
        Fault::KillAfter {
            pid: operator.pid(),
        },
    )]);
    delete(env, ns, "kept");
    let exit = operator.wait_for_exit(Duration::from_secs(60));
    assert_eq!(exit.signal(), Some(libc::SIGKILL), "{exit}");
    let at_crash = devenv::cloud(env, region, &kept_uid);
    assert_eq!(inventory(&at_crash), inventory(&kept), "at the crash");
    let marked_at_crash = marked(&at_crash).len();
    assert!(
        (1..total(&kept)).contains(&marked_at_crash),
        "killed mid-way through the marking: {marked_at_crash} of {} marked",
        total(&kept)
    );

    proxy.set_rules(Vec::new());
    operator = start_behind(env, &proxy, Some(CONFIG));
    wait_gone(env, ns, "kept", Duration::from_secs(60));
    // The sweeper (every second, one second's grace) has had time to be wrong.
    holds_for(
        Duration::from_secs(4),
        "the orphaned environment, whole",
        || {
            let now = inventory(&devenv::cloud(env, region, &kept_uid));
            (now == inventory(&kept))
                .then_some(())
                .ok_or(format!("{now:?}"))
        },
    );
    for s in proxy.requests() {
        for named in named_by_delete(&s) {
            assert!(
                !kept_ids.contains(named),
                "{} deleted what is kept",
                describe(&s)
            );
        }
    }
    let after = devenv::cloud(env, region, &kept_uid);
    assert_eq!(
        marked(&after),
        inventory(&kept),
        "every resource marked orphaned: {after}"
    );
    operator.terminate(Duration::from_secs(10));
}

/// Issue 10, 4: with the sweeper running every second (one second's grace), 50
/// environments are created while 50 others, Ready until then, are deleted (half
/// Background, half Foreground). Once all settle, no delete call named a resource of
/// an environment that still exists, the 50 new ones are Ready and whole, and nothing
/// of the 50 deleted ones is left.
#[test]
fn creating_fifty_while_deleting_fifty_deletes_nothing_that_lives() {
    let _turn = one_operator_at_a_time();
    let env = TestEnv::shared();
    let region = "us-west-2";
    let proxy = FaultProxy::start(&env.moto_endpoint()).expect("start the fault proxy");
    let _proxy_log = ProxyLogOnPanic(&proxy);
    let _operator = start_behind(env, &proxy, Some(CONFIG));
    let old_ns = env.namespace("slow-race-old");
    let new_ns = env.namespace("slow-race-new");
    let (old_ns, new_ns) = (old_ns.name(), new_ns.name());
    let olds = (0..RACE)
        .map(|i| {
            let policy = if i % 2 == 0 {
                "Background"
            } else {
                "Foreground"
            };
            environment(
                old_ns,
                &format!("old-{i:02}"),
                json!({"region": region}),
                json!({"compositeDeletePolicy": policy}),
            )
        })
        .collect();
    let started = Instant::now();
    kubectl_apply(env, &list(olds));
    let old = wait_all_ready(env, old_ns, RACE, Duration::from_secs(300));
    let mut timings = vec![("old ones Ready", started.elapsed())];
    let old_uids: BTreeSet<String> = old
        .values()
        .map(|o| o["metadata"]["uid"].as_str().unwrap().to_owned())
        .collect();
    let before = devenv::clouds(env, region);
    let mut old_vpcs = BTreeMap::new();
    for uid in &old_uids {
        let mine = before.get(uid).cloned().unwrap_or_default();
        assert_eq!(total(&mine), 4, "VPC, 2 subnets, a security group: {mine}");
        old_vpcs.insert(
            uid.clone(),
            mine["VPC"][0]["id"].as_str().unwrap().to_owned(),
        );
    }

    // At the same time: the new ones applied, the old ones deleted.
    proxy.clear_requests();
    let news = (0..RACE)
        .map(|i| {
            environment(
                new_ns,
                &format!("new-{i:02}"),
                json!({"region": region}),
                json!({}),
            )
        })
        .collect();
    std::thread::scope(|scope| {
        scope.spawn(|| kubectl_apply(env, &list(news)));
        env.run_kubectl(&["delete", "devenv", "--all", "-n", old_ns, "--wait=false"])
            .expect("delete the old environments");
    });

    // Settled: the new ones Ready, the old ones gone, from the cluster and the cloud.
    let new = wait_all_ready(env, new_ns, RACE, Duration::from_secs(300));
    timings.push(("new ones Ready", started.elapsed()));
    eventually(
        Duration::from_secs(180),
        "the old environments gone",
        || environments(env, Some(old_ns))?.is_empty().then_some(()),
    );
    eventually(
        Duration::from_secs(120),
        "nothing of the old environments left in the cloud",
        || {
            let now = devenv::clouds(env, region);
            old_uids
                .iter()
                .all(|uid| !now.contains_key(uid))
                .then_some(())
        },
    );
    timings.push(("old ones gone", started.elapsed()));
    let new_uids: BTreeMap<String, String> = new
        .iter()
        .map(|(key, o)| {
            (
                o["metadata"]["uid"].as_str().unwrap().to_owned(),
                key.clone(),
            )
        })
        .collect();
    // The sweeper has had a few more rounds to be wrong.
    holds_for(
        Duration::from_secs(3),
        "every new environment whole in the cloud",
        || {
            let now = devenv::clouds(env, region);
            for (uid, key) in &new_uids {
                let n = now.get(uid).map_or(0, total);
                if n != 4 {
                    return Err(format!("{key} has {n} resources in moto"));
                }
            }
            Ok(())
        },
    );

    // Every resource of every environment that exists now, in moto or in its status.
    let after = devenv::clouds(env, region);
    let mut living: BTreeMap<String, String> = BTreeMap::new();
    for (key, obj) in environments(env, None).expect("list every environment") {
        let uid = obj["metadata"]["uid"].as_str().unwrap_or_default();
        let from_cloud = after.get(uid).map(resource_ids).unwrap_or_default();
        for id in from_cloud.into_iter().chain(status_ids(&obj)) {
            living.insert(id, key.clone());
        }
    }
    let seen = proxy.requests();
    let wrong: Vec<String> = seen
        .iter()
        .flat_map(|s| {
            named_by_delete(s)
                .into_iter()
                .filter_map(|id| {
                    living
                        .get(id)
                        .map(|owner| format!("{} ({owner})", describe(s)))
                })
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{} delete calls named resources of living environments: {wrong:#?}",
        wrong.len()
    );
    // What the check reads is there: every old environment's VPC was deleted by id.
    let deleted_vpcs: BTreeSet<&str> = seen
        .iter()
        .filter(|s| s.action == "DeleteVpc" && s.forwarded)
        .filter_map(|s| s.param("VpcId"))
        .collect();
    for (uid, vpc) in &old_vpcs {
        assert!(
            deleted_vpcs.contains(vpc.as_str()),
            "no DeleteVpc named {vpc} of environment {uid}"
        );
    }
    assert!(
        seen.iter().any(|s| DELETES.contains(&s.action.as_str())),
        "delete calls in the log"
    );
    for (uid, key) in &new_uids {
        let obj = &new[key];
        assert_eq!(
            status_ids(obj),
            resource_ids(&after[uid]),
            "{key}: ids in status vs in moto"
        );
    }

    timings.push(("checked", started.elapsed()));
    // Nothing left for the next test, whose operator sweeps what no environment owns
    // (and whose proxy counts delete calls): the new ones go too, Background, so the
    // sweeper deletes them.
    env.run_kubectl(&["delete", "devenv", "--all", "-n", new_ns, "--wait=false"])
        .expect("delete the new environments");
    eventually(
        Duration::from_secs(120),
        "the new environments gone",
        || environments(env, Some(new_ns))?.is_empty().then_some(()),
    );
    eventually(
        Duration::from_secs(180),
        "nothing of the new environments left in the cloud",
        || {
            let now = devenv::clouds(env, region);
            new_uids
                .keys()
                .all(|uid| !now.contains_key(uid))
                .then_some(())
        },
    );
    timings.push(("new ones gone", started.elapsed()));
    eprintln!("race (phase, since the start): {timings:?}");
}
