//! The chart's two replicas on the node: both ready, one named by the chart's Lease
//! and acting; the leader's pod deleted and the standby acting at once, because the
//! leader released the Lease as it stopped.
//!
//! A pod deleted (even `--grace-period=0 --force`) is stopped by its kubelet with
//! SIGTERM, so its leader releases the Lease. A leader that dies without releasing is
//! its process SIGKILLed on the node, as the OOM killer would: the kubelet restarts
//! the container, and whichever replica looks first acts again within the lease.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Bed, NAMESPACE, RELEASE, eventually, kubectl, kubectl_apply, operator_pods};
use crate::common::devenv::get;

/// The chart's default `leaderElection.leaseDuration`.
const LEASE_SECONDS: u64 = 15;

/// The pod the chart's Lease names as its holder.
pub fn leader_pod(bed: &Bed) -> Option<String> {
    let lease = get(
        bed.env,
        &["get", "lease", RELEASE, "-n", NAMESPACE, "-o", "json"],
    )?;
    lease["spec"]["holderIdentity"].as_str().map(str::to_owned)
}

fn ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// The operator's pods that are not being deleted, by name.
fn running_pods(bed: &Bed) -> Vec<Value> {
    operator_pods(bed.env)
        .into_iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .collect()
}

/// Both replicas are ready, the standby included, and exactly one leads: the pod the
/// Lease names. Returns the leader's and the standby's names.
pub fn one_of_two_replicas_leads(bed: &Bed) -> (String, String) {
    let pods = eventually(Duration::from_secs(60), "two ready operator pods", || {
        let pods = running_pods(bed);
        (pods.len() == 2 && pods.iter().all(ready)).then_some(pods)
    });
    let names: Vec<String> = pods
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    let leader = eventually(Duration::from_secs(60), "the Lease naming a pod", || {
        leader_pod(bed).filter(|holder| names.contains(holder))
    });
    let standby = names.into_iter().find(|n| *n != leader).unwrap();
    let log = |pod: &str| kubectl(bed.env, &["logs", pod, "-n", NAMESPACE]);
    assert!(
        log(&leader).contains("acquired the leader lease"),
        "{}",
        log(&leader)
    );
    let standby_log = log(&standby);
    assert!(
        standby_log.contains("standing by for the leader lease"),
        "{standby_log}"
    );
    // The standby runs no controller: it never started one.
    assert!(!standby_log.contains("initial sync done"), "{standby_log}");
    (leader, standby)
}

/// Deletes the leader's pod and times how long until another replica holds the Lease
/// and reconciles a new Component: the standby, or the deleted pod's replacement when
/// it starts before the standby's next look at the Lease. Returns that time.
pub fn the_standby_takes_over_from_a_deleted_leader(bed: &Bed) -> Duration {
    let env = bed.env;
    let (leader, standby) = one_of_two_replicas_leads(bed);
    let deleted = Instant::now();
    kubectl(
        env,
        &[
            "delete",
            "pod",
            &leader,
            "-n",
            NAMESPACE,
            "--grace-period=0",
            "--force",
            "--wait=false",
        ],
    );
    // The standby, or the pod that replaces the deleted one if it looks first.
    while leader_pod(bed).is_none_or(|holder| holder == leader) {
        assert!(
            deleted.elapsed() < Duration::from_secs(LEASE_SECONDS + 15),
            "no other replica took the Lease:\n{}\n---- standby ----\n{}",
            kubectl(
                env,
                &["get", "lease", RELEASE, "-n", NAMESPACE, "-o", "yaml"]
            ),
            kubectl(env, &["logs", &standby, "-n", NAMESPACE])
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let takeover = deleted.elapsed();
    apply_probe(bed, "after-failover");
    eventually(
        Duration::from_secs(60),
        "the new leader reconciling",
        || reconciled(bed, "after-failover"),
    );
    let acting = deleted.elapsed();
    eprintln!(
        "failover on the node: another replica ({standby} was standing by) held the Lease \
         {takeover:?} after the leader's pod was deleted, and reconciled a new Component {acting:?} after (lease {LEASE_SECONDS}s)"
    );
    // Released, not expired: well inside the lease.
    assert!(
        takeover < Duration::from_secs(LEASE_SECONDS / 2),
        "took {takeover:?}"
    );
    kubectl(
        env,
        &[
            "delete",
            "component",
            "after-failover",
            "-n",
            "team-payments",
        ],
    );
    // The Deployment replaces the deleted pod with a new standby.
    one_of_two_replicas_leads(bed);
    takeover
}

/// SIGKILLs the leader's operator process on the node (no release) and times how long
/// until a replica reconciles a new Component. The kubelet restarts the container in
/// the same pod, whose identity (the pod name) the Lease still names, so it may take
/// its lease back as it starts; were the restart slower, the standby would take the
/// lease once it expired. Either way within the lease duration and 2 s.
pub fn a_leader_killed_on_the_node_is_replaced_within_the_lease(bed: &Bed) -> Duration {
    let env = bed.env;
    let (leader, _) = one_of_two_replicas_leads(bed);
    let restarts = || {
        let pod = get(env, &["get", "pod", &leader, "-n", NAMESPACE, "-o", "json"])
            .expect("the leader's pod");
        let count = pod["status"]["containerStatuses"][0]["restartCount"].as_u64();
        (pod, count.unwrap_or_default())
    };
    let (pod, before) = restarts();
    let uid = pod["metadata"]["uid"].as_str().expect("a uid").to_owned();
    let killed = Instant::now();
    let pids = env
        .kill_in_pod(&uid, "pave-operator")
        .unwrap_or_else(|e| panic!("{e}"));
    apply_probe(bed, "after-kill");
    eventually(
        Duration::from_secs(LEASE_SECONDS + 30),
        "a replica reconciling after the leader was killed",
        || reconciled(bed, "after-kill"),
    );
    let acting = killed.elapsed();
    let holder = leader_pod(bed);
    eprintln!(
        "leader {leader} SIGKILLed on the node (pids {pids:?}): a new Component reconciled \
         {acting:?} after, the Lease held by {holder:?} (lease {LEASE_SECONDS}s)"
    );
    assert!(
        acting < Duration::from_secs(LEASE_SECONDS + 2),
        "took {acting:?}"
    );
    eventually(
        Duration::from_secs(60),
        "the killed container restarted",
        || (restarts().1 > before).then_some(()),
    );
    kubectl(
        env,
        &["delete", "component", "after-kill", "-n", "team-payments"],
    );
    one_of_two_replicas_leads(bed);
    acting
}

/// Applies the Component `name` in team-payments, for a replica to reconcile.
fn apply_probe(bed: &Bed, name: &str) {
    kubectl_apply(
        bed.env,
        &json!({"apiVersion": "platform.pave.dev/v1alpha1", "kind": "Component",
            "metadata": {"name": name, "namespace": "team-payments"},
            "spec": {"type": "service", "lifecycle": "production", "owner": "payments-team"}}),
    );
}

/// Whether the Component `name` in team-payments has a status for its generation.
fn reconciled(bed: &Bed, name: &str) -> Option<()> {
    let args = [
        "get",
        "component",
        name,
        "-n",
        "team-payments",
        "-o",
        "json",
    ];
    let obj = get(bed.env, &args)?;
    (obj["status"]["observedGeneration"] == obj["metadata"]["generation"]).then_some(())
}
