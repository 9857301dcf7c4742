//! The operator while what it depends on restarts under it: the API server in the
//! middle of a burst of status writes, and moto (all its state lost) in the middle of
//! provisioning. The real operator binary, a real kube-apiserver restarted with
//! SIGTERM on the same port and etcd, and a real moto server killed and started
//! again; nothing is mocked.
//!
//! Each test starts its own test bed, since restarting a component of the shared one
//! would disturb every other test of the binary.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::devenv::{
    cloud, condition, delete, environment, events_about, get_environment, ready_environment,
    resource_ids, total, wait_gone,
};
use common::proxy::{ProxyLogOnPanic, start_behind};
use common::refusal::RefuseStatusWrites;
use common::{CATALOG, Operator, eventually, holds_for, kubectl_apply};
use k8s_openapi::jiff::Timestamp;
use pave_testenv::fault_proxy::{FaultProxy, SlowState, Transition};
use pave_testenv::{Options, TestEnv};
use serde_json::{Value, json};

const CRDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../crds");
const WRITES: &str = "pave_operator_status_writes_total";

/// Every status write to a Component, from each of its stages (a request the restart
/// cut off would show as received and never completed), with what was sent and the
/// object it made (so a second write shows what it changed, if anything).
const COMPONENT_STATUS_AUDIT: &str = "apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: RequestResponse
  resources: [{group: platform.pave.dev, resources: [components/status]}]
  verbs: [create, update, patch]
- level: None
";

fn start_test_bed(audit_policy: Option<&str>) -> TestEnv {
    TestEnv::start(Options {
        crd_dir: Some(CRDS.into()),
        audit_policy: audit_policy.map(str::to_owned),
        ..Options::default()
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

fn component(ns: &str, name: &str, held: bool) -> Value {
    let mut c = json!({
        "apiVersion": "platform.pave.dev/v1alpha1",
        "kind": "Component",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"type": "service", "lifecycle": "production", "owner": "team"},
    });
    if held {
        c["metadata"]["labels"] = json!({"resilience.pave.dev/held": "true"});
    }
    c
}

/// One status request to a Component as the audit log tells it.
#[derive(Debug, Clone)]
struct StatusRequest {
    audit_id: String,
    name: String,
    stage: String,
    code: Option<i64>,
    field_manager: String,
    received: String,
    /// The status sent, and the resourceVersion the API server answered with.
    sent: Value,
    resource_version: String,
}

impl StatusRequest {
    /// One line for a failure message: when, which stage, the answer, who.
    fn line(&self) -> String {
        format!(
            "{} {} {} {} {:?} resourceVersion {} (audit id {}) sent {}",
            self.received,
            self.name,
            self.stage,
            self.field_manager,
            self.code,
            self.resource_version,
            self.audit_id,
            self.sent
        )
    }
}

fn lines<'a>(requests: impl IntoIterator<Item = &'a StatusRequest>) -> String {
    requests
        .into_iter()
        .map(|r| format!("\n  {}", r.line()))
        .collect()
}

fn status_requests(env: &TestEnv, ns: &str) -> Vec<StatusRequest> {
    let text = std::fs::read_to_string(env.audit_log()).unwrap_or_default();
    text.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|event| {
            event["objectRef"]["namespace"] == ns
                && event["objectRef"]["resource"] == "components"
                && event["objectRef"]["subresource"] == "status"
        })
        .map(|event| {
            let uri = event["requestURI"].as_str().unwrap_or_default();
            let field_manager = uri
                .split_once('?')
                .map_or("", |(_, query)| query)
                .split('&')
                .find_map(|kv| kv.strip_prefix("fieldManager="))
                .unwrap_or_default()
                .to_owned();
            let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
            StatusRequest {
                audit_id: text(&event["auditID"]),
                name: text(&event["objectRef"]["name"]),
                stage: text(&event["stage"]),
                code: event["responseStatus"]["code"].as_i64(),
                field_manager,
                received: text(&event["requestReceivedTimestamp"]),
                sent: event["requestObject"]["status"].clone(),
                resource_version: text(&event["responseObject"]["metadata"]["resourceVersion"]),
            }
        })
        .collect()
}

/// The status writes pave's field managers made that the API server took, by
/// Component.
fn pave_writes(requests: &[StatusRequest]) -> BTreeMap<String, Vec<StatusRequest>> {
    let mut by_name: BTreeMap<String, Vec<StatusRequest>> = BTreeMap::new();
    for r in requests.iter().filter(|r| {
        r.field_manager.starts_with("pave-")
            && r.stage == "ResponseComplete"
            && r.code.is_some_and(|c| (200..300).contains(&c))
    }) {
        by_name.entry(r.name.clone()).or_default().push(r.clone());
    }
    by_name
}

/// For each status write after a Component's first: when it came relative to the
/// restart, and whether it sent the same status and left the object as it was (the
/// API server answered with the resourceVersion of the write before), which is what
/// a write decided on a cached copy older than the operator's own last write does.
fn explain_repeats(
    writes: &BTreeMap<String, Vec<StatusRequest>>,
    restart_began: Timestamp,
    restart_ended: Timestamp,
) -> String {
    let (mut repeats, mut unchanged, mut lines) = (0, 0, String::new());
    let mut when: BTreeMap<&str, usize> = BTreeMap::new();
    for (name, ws) in writes.iter().filter(|(_, w)| w.len() > 1) {
        for pair in ws.windows(2) {
            let (first, again) = (&pair[0], &pair[1]);
            let at = |r: &StatusRequest| r.received.parse::<Timestamp>().ok();
            let phase = match at(again) {
                Some(t) if t < restart_began => "before the restart",
                Some(t) if t <= restart_ended => "during the restart",
                Some(_) => "after the restart",
                None => "at an unknown time",
            };
            let gap = at(first).zip(at(again)).map_or("?".to_owned(), |(a, b)| {
                format!("{:?}", b.duration_since(a))
            });
            let same = first.sent == again.sent && first.resource_version == again.resource_version;
            let only_time =
                without_transition_times(&first.sent) == without_transition_times(&again.sent);
            repeats += 1;
            unchanged += usize::from(same);
            *when.entry(phase).or_default() += 1;
            lines += &format!(
                "\n  {name}: again {gap} after its previous write, {phase}; {}",
                if same {
                    "the same status, and the object did not change (same resourceVersion)"
                } else if only_time {
                    "the same status but for a new lastTransitionTime, as if decided on a copy \
                     without the previous write; the object changed (new resourceVersion)"
                } else {
                    "a different status"
                }
            );
        }
    }
    format!(
        "{repeats} repeated writes ({when:?}; restart {restart_began} .. {restart_ended}), \
         {unchanged} of them sending the same status and changing nothing:{lines}"
    )
}

/// `status` with its conditions' lastTransitionTime left out.
fn without_transition_times(status: &Value) -> Value {
    let mut status = status.clone();
    for c in status["conditions"].as_array_mut().into_iter().flatten() {
        if let Some(c) = c.as_object_mut() {
            c.remove("lastTransitionTime");
        }
    }
    status
}

/// The Components of `ns` whose status describes their generation with Ready True,
/// Resolved (an owner group and nothing else to resolve), and those that do not yet.
fn converged(env: &TestEnv, ns: &str) -> (BTreeSet<String>, BTreeMap<String, Value>) {
    let list: Value = serde_json::from_str(
        &env.run_kubectl(&["get", "components", "-n", ns, "-o", "json"])
            .unwrap_or_else(|e| panic!("{e}")),
    )
    .expect("JSON from kubectl");
    let (mut done, mut not) = (BTreeSet::new(), BTreeMap::new());
    for obj in list["items"].as_array().into_iter().flatten() {
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let ready = obj["status"]["conditions"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == "Ready"));
        let ok = obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
            && ready.is_some_and(|r| r["status"] == "True" && r["reason"] == "Resolved");
        if ok {
            done.insert(name);
        } else {
            not.insert(name, obj["status"].clone());
        }
    }
    (done, not)
}

/// The operator's warnings and errors from byte `from` of its log on, folded: each
/// distinct message once (object names and numbers made alike), with how often.
fn problems_logged(operator: &Operator, from: usize) -> String {
    let log = operator.log.lock().unwrap();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for line in log.get(from..).unwrap_or_default().lines() {
        let Some(level) = ["WARN", "ERROR"].into_iter().find(|l| line.contains(l)) else {
            continue;
        };
        // After the span (`reconcile{…}: `) or the level: the same for every object.
        let message = match line.split_once("}: ") {
            Some((_, message)) => message,
            None => line.split_once(level).map_or(line, |(_, message)| message),
        };
        let folded: String = message
            .chars()
            .map(|c| if c.is_ascii_digit() { '#' } else { c })
            .take(240)
            .collect();
        *seen.entry(format!("{level} {folded}")).or_default() += 1;
    }
    seen.iter()
        .map(|(message, n)| format!("  {n:>4} x {message}\n"))
        .collect()
}

#[test]
fn api_server_restart_while_reconciling_500_components() {
    const COMPONENTS: usize = 500;
    /// The last HELD Components' status writes are refused until after the restart.
    const HELD: usize = 100;
    /// The restart starts once this many statuses are written: the others are in
    /// flight or queued.
    const RESTART_AT: f64 = 100.0;

    let env = start_test_bed(Some(COMPONENT_STATUS_AUDIT));
    let ns = env.namespace("resilience-apiserver");
    let ns = ns.name();
    let names: Vec<String> = (0..COMPONENTS).map(|i| format!("c{i:03}")).collect();
    let held: BTreeSet<&str> = names[COMPONENTS - HELD..]
        .iter()
        .map(String::as_str)
        .collect();
    // The restart comes while these are still to be written, however fast the
    // others go.
    let hold = RefuseStatusWrites::new(&env, ns, Some(("resilience.pave.dev/held", "true")));

    // All 500 exist before the operator starts: it lists them, loads its catalog and
    // then writes every status at once, at its own pace.
    let started = Instant::now();
    let items: Vec<Value> = names
        .iter()
        .map(|n| component(ns, n, held.contains(n.as_str())))
        .collect();
    let created = env.kubectl_with_input(
        &["create", "-f", "-", "-o", "name"],
        json!({"apiVersion": "v1", "kind": "List", "items": items})
            .to_string()
            .as_bytes(),
    );
    assert!(
        created.status.success(),
        "kubectl create: {}",
        String::from_utf8_lossy(&created.stderr)
    );
    let create_took = started.elapsed();
    hold.wait_enforced(ns, held.first().unwrap());

    let mut operator = Operator::start(&env);
    let pid = operator.pid();
    let started = Instant::now();
    let at_restart = eventually(
        Duration::from_secs(60),
        &format!("{RESTART_AT} status writes"),
        || {
            let writes = operator.counter(WRITES, CATALOG);
            (writes >= RESTART_AT).then_some(writes)
        },
    );
    let writing_took = started.elapsed();
    let log_at_restart = operator.log.lock().unwrap().len();
    let restart_began = Timestamp::now();
    let restart = env.restart_apiserver().unwrap_or_else(|e| panic!("{e}"));
    let restart_ended = Timestamp::now();
    let after_restart = operator.counter(WRITES, CATALOG);
    assert!(
        !restart.killed,
        "kube-apiserver had to be killed: {restart:?}"
    );

    // The operator finds its way back by itself: the Components not held converge.
    let started = Instant::now();
    let unheld = (COMPONENTS - HELD) as f64;
    eventually(
        Duration::from_secs(60),
        "every Component not held written",
        || (operator.counter(WRITES, CATALOG) >= unheld).then_some(()),
    );
    let unheld_took = started.elapsed();
    let (done, not) = converged(&env, ns);
    let unheld_not_done: Vec<&String> = not.keys().filter(|n| !held.contains(n.as_str())).collect();
    assert!(
        unheld_not_done.is_empty() && done.iter().all(|n| !held.contains(n.as_str())),
        "after {unheld} writes, not converged: {unheld_not_done:?}; held but written: {:?}",
        done.iter()
            .filter(|n| held.contains(n.as_str()))
            .collect::<Vec<_>>()
    );

    // Released, the held ones are written on the operator's next retry.
    hold.release();
    let started = Instant::now();
    eventually(
        Duration::from_secs(120),
        "all 500 Components Ready for their generation",
        || {
            let (done, _) = converged(&env, ns);
            (done.len() == COMPONENTS).then_some(())
        },
    );
    let held_took = started.elapsed();

    // Each status was written once, by the catalog's field manager alone; nothing the
    // restart cut off was received and left unanswered.
    let requests = status_requests(&env, ns);
    let writes = pave_writes(&requests);
    let twice: Vec<&StatusRequest> = writes.values().filter(|w| w.len() > 1).flatten().collect();
    let completed: BTreeSet<&str> = requests
        .iter()
        .filter(|r| r.stage == "ResponseComplete" || r.stage == "Panic")
        .map(|r| r.audit_id.as_str())
        .collect();
    let cut_off: Vec<&StatusRequest> = requests
        .iter()
        .filter(|r| r.stage == "RequestReceived" && !completed.contains(r.audit_id.as_str()))
        .collect();
    let managers: BTreeSet<&str> = requests
        .iter()
        .filter(|r| r.field_manager.starts_with("pave-"))
        .map(|r| r.field_manager.as_str())
        .collect();
    let refused = requests
        .iter()
        .filter(|r| {
            r.field_manager.starts_with("pave-")
                && r.stage == "ResponseComplete"
                && !r.code.is_some_and(|c| (200..300).contains(&c))
        })
        .count();
    eprintln!(
        "resilience: created {COMPONENTS} Components in {create_took:?}; {at_restart} statuses \
         written {writing_took:?} after the operator started; kube-apiserver restart \
         {restart:?} ({restart_began} .. {restart_ended}), {after_restart} written by its end; \
         the other {} not held written {unheld_took:?} later; the {HELD} held ones {held_took:?} \
         after their release; {} writes taken, {refused} refused (held), {} cut off; \
         operator problems logged from the restart on:\n{}",
        COMPONENTS - HELD,
        writes.values().map(Vec::len).sum::<usize>(),
        cut_off.len(),
        problems_logged(&operator, log_at_restart)
    );
    assert!(
        twice.is_empty(),
        "status written more than once: {}\nreceived and never answered:{}\n\
         the writes of those written more than once:{}",
        explain_repeats(&writes, restart_began, restart_ended),
        lines(cut_off.iter().copied()),
        lines(twice.iter().copied())
    );
    assert_eq!(
        writes.len(),
        COMPONENTS,
        "Components written: {:?}",
        writes.keys()
    );
    assert!(
        cut_off.is_empty(),
        "received, never answered:{}",
        lines(cut_off.iter().copied())
    );
    assert_eq!(managers, BTreeSet::from(["pave-catalog"]));
    assert_eq!(operator.counter(WRITES, CATALOG), COMPONENTS as f64);

    // At rest, nothing more: no write counted, none received.
    let taken = |env: &TestEnv| {
        pave_writes(&status_requests(env, ns))
            .values()
            .map(Vec::len)
            .sum::<usize>()
    };
    holds_for(Duration::from_secs(5), "no status writes at rest", || {
        let (counted, received) = (operator.counter(WRITES, CATALOG), taken(&env));
        if counted == COMPONENTS as f64 && received == COMPONENTS {
            Ok(())
        } else {
            Err(format!("{counted} writes counted, {received} taken"))
        }
    });

    // The same process all along.
    assert_eq!(operator.exited(), None, "the operator exited");
    assert_eq!(operator.pid(), pid);
    let status = operator.terminate(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{}", operator.log.lock().unwrap());
}

/// A short resync, so that the drift check looks at Ready environments within the
/// test; no sweeps to speak of.
const CONFIG: &str = "
allowedRegions: [us-east-1]
sweepInterval: 1h
resyncInterval: 3s
";

const REGION: &str = "us-east-1";

/// VPC, 2 subnets, 2 security groups, DB subnet group, DB instance, 1 instance.
const RESOURCES: usize = 8;

fn parameters() -> Value {
    json!({"region": REGION, "dbSize": "db.t3.micro", "clusterSize": "small"})
}

/// Deleted only once the cloud is empty, so the test sees the teardown finish.
fn foreground() -> Value {
    json!({"compositeDeletePolicy": "Foreground"})
}

/// The ids status records for the environment's resources, by resource name.
fn recorded_ids(obj: &Value) -> BTreeMap<String, String> {
    obj["status"]["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| Some((r["name"].as_str()?.to_owned(), r["id"].as_str()?.to_owned())))
        .collect()
}

/// Whether the environment is Ready for its generation with every resource it
/// records, and only those, in moto.
fn recreated(env: &TestEnv, ns: &str, name: &str, uid: &str) -> bool {
    let Some(obj) = get_environment(env, ns, name) else {
        return false;
    };
    let ids: BTreeSet<String> = recorded_ids(&obj).into_values().collect();
    condition(&obj, "Ready").is_some_and(|ready| {
        obj["status"]["phase"] == "Ready"
            && ready["status"] == "True"
            && ready["observedGeneration"] == obj["metadata"]["generation"]
    }) && ids.len() == RESOURCES
        && cloud_ids(env, uid) == ids
}

/// What a person would look at to see why an environment is stuck: its phase and
/// conditions, each resource as status records it and whether moto has it, and its
/// Events.
fn describe_environment(env: &TestEnv, ns: &str, name: &str, uid: &str) -> String {
    let Some(obj) = get_environment(env, ns, name) else {
        return format!("{name}: gone");
    };
    let in_moto = cloud_ids(env, uid);
    let mut out = format!("{name}: phase {}", obj["status"]["phase"]);
    for c in obj["status"]["conditions"].as_array().into_iter().flatten() {
        out += &format!(
            "\n  condition {} {} {}: {}",
            c["type"].as_str().unwrap_or("?"),
            c["status"].as_str().unwrap_or("?"),
            c["reason"].as_str().unwrap_or("?"),
            c["message"].as_str().unwrap_or("")
        );
    }
    for r in obj["status"]["resources"].as_array().into_iter().flatten() {
        let id = r["id"].as_str().unwrap_or("-");
        out += &format!(
            "\n  resource {} {} id {id} ({}) state {} {}",
            r["kind"].as_str().unwrap_or("?"),
            r["name"].as_str().unwrap_or("?"),
            if in_moto.contains(id) {
                "in moto"
            } else {
                "NOT in moto"
            },
            r["state"].as_str().unwrap_or("-"),
            r["message"].as_str().unwrap_or("")
        );
    }
    let events = env
        .run_kubectl(&[
            "get",
            "events.events.k8s.io",
            "-n",
            ns,
            "--field-selector",
            &format!("regarding.name={name}"),
            "-o",
            r#"jsonpath={range .items[*]}  event {.type} {.reason} x{.series.count}: {.note}{"\n"}{end}"#,
        ])
        .unwrap_or_else(|e| e.to_string());
    out + "\n" + events.trim_end()
}

/// The ids moto holds for the environment with this UID.
fn cloud_ids(env: &TestEnv, uid: &str) -> BTreeSet<String> {
    resource_ids(&cloud(env, REGION, uid))
}

#[test]
fn moto_restart_mid_provisioning_recreates_missing_resources() {
    let env = start_test_bed(None);
    let proxy = FaultProxy::start(&env.moto_endpoint()).unwrap_or_else(|e| panic!("{e}"));
    let _proxy_log = ProxyLogOnPanic(&proxy);
    let mut operator = start_behind(&env, &proxy, Some(CONFIG));
    let ns = env.namespace("resilience-moto");
    let ns = ns.name();

    // One environment Ready, and one still provisioning: every resource made, its
    // database reported `creating` as AWS would for minutes.
    ready_environment(&env, ns, "ready", parameters(), foreground());
    proxy.set_slow_states(vec![SlowState::new(
        Transition::DbCreating,
        Duration::from_secs(600),
    )]);
    kubectl_apply(
        &env,
        &environment(ns, "provisioning", parameters(), foreground()),
    );
    let provisioning = eventually(
        Duration::from_secs(60),
        "provisioning with every resource made and its database creating",
        || {
            let obj = get_environment(&env, ns, "provisioning")?;
            let resources = obj["status"]["resources"].as_array()?;
            let creating = resources
                .iter()
                .any(|r| r["kind"] == "DBInstance" && r["state"] == "creating");
            (resources.len() == RESOURCES
                && resources.iter().all(|r| r["id"].is_string())
                && creating
                && obj["status"]["phase"] == "Provisioning")
                .then_some(obj)
        },
    );
    let before: BTreeMap<&str, (String, BTreeMap<String, String>)> = [
        ("ready", get_environment(&env, ns, "ready").unwrap()),
        ("provisioning", provisioning),
    ]
    .into_iter()
    .map(|(name, obj)| {
        let uid = obj["metadata"]["uid"].as_str().unwrap().to_owned();
        (name, (uid, recorded_ids(&obj)))
    })
    .collect();
    for (name, (uid, ids)) in &before {
        assert_eq!(
            cloud_ids(&env, uid),
            ids.values().cloned().collect(),
            "{name} before the restart"
        );
    }

    // moto dies and comes back empty; AWS would now take the database straight to
    // available.
    let log_at_restart = operator.log.lock().unwrap().len();
    let restart = env.restart_moto().unwrap_or_else(|e| panic!("{e}"));
    proxy.set_slow_states(vec![]);
    let restarted = Instant::now();
    // Nothing of the old moto is left. EC2's ids are random, so none comes back; the
    // database and its subnet group are named by pave, and may be back already.
    for (name, (uid, ids)) in &before {
        let now = cloud_ids(&env, uid);
        let kept: Vec<&String> = ids
            .values()
            .filter(|id| !id.starts_with("pave-") && now.contains(*id))
            .collect();
        assert!(kept.is_empty(), "{name}: moto kept {kept:?}");
    }

    // Both find their resources missing, say so, and make them again.
    let mut took = BTreeMap::new();
    let deadline = restarted + Duration::from_secs(120);
    while took.len() < before.len() {
        for (name, (uid, _)) in &before {
            if !took.contains_key(name) && recreated(&env, ns, name, uid) {
                took.insert(*name, restarted.elapsed());
                let notes = events_about(&env, ns, name, "reason=DriftCorrected", "note");
                for resource in before[name].1.keys() {
                    assert!(
                        notes.contains(&format!("{resource} was gone from the cloud")),
                        "{name}: no Event says {resource} was gone; DriftCorrected notes: {notes}"
                    );
                }
            }
        }
        if Instant::now() >= deadline {
            let report: Vec<String> = before
                .iter()
                .filter(|(name, _)| !took.contains_key(*name))
                .map(|(name, (uid, _))| describe_environment(&env, ns, name, uid))
                .collect();
            panic!(
                "{} not Ready with all {RESOURCES} resources in the new moto within 120 s of \
                 moto's restart ({restart:?}); those that were: {took:?}\n{}",
                report.len(),
                report.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    for (name, (uid, _)) in &before {
        let c = cloud(&env, REGION, uid);
        assert_eq!(total(&c), RESOURCES, "{name} in the new moto: {c}");
    }
    eprintln!(
        "resilience: moto restart {restart:?}; Ready again after {took:?}; operator problems \
         logged from the restart on:\n{}",
        problems_logged(&operator, log_at_restart)
    );

    // Deleted in the foreground: the new resources go with them.
    for name in before.keys() {
        delete(&env, ns, name);
    }
    for (name, (uid, _)) in &before {
        wait_gone(&env, ns, name, Duration::from_secs(90));
        assert_eq!(total(&cloud(&env, REGION, uid)), 0, "{name} left resources");
    }
    assert_eq!(operator.exited(), None, "the operator exited");
}
