//! `make bench`: leader failover on a real control plane, two replicas on the chart's
//! 15 s Lease, five rounds of each way a leader goes:
//! - SIGKILL (a crash, the OOM killer, a node gone): the standby takes over once the
//!   Lease expires (target: under lease duration + 2 s);
//! - SIGTERM (a rollout, a drain): the leader releases the Lease and the standby takes
//!   it within a poll.
//!
//! Each round a Component is created the moment the leader goes; measured: until the
//! other replica leads, and until that Component's status is written. Medians of five
//! (`PAVE_BENCH_FAILOVER_ROUNDS`). The replica that went is started again as the
//! next round's standby.

mod support;

use std::time::{Duration, Instant};

use kube::Api;
use kube::api::PostParams;
use pave_api::{Component, ComponentSpec};
use support::{LEASE_SECONDS, Operator, Replicas, wait_until};

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

async fn reconciled(api: &Api<Component>, name: &str) -> bool {
    api.get(name).await.is_ok_and(|c| {
        c.status.and_then(|s| s.observed_generation).is_some() && c.metadata.generation.is_some()
    })
}

#[tokio::main]
async fn main() {
    let rounds: usize = support::env_number("PAVE_BENCH_FAILOVER_ROUNDS", 5);
    let env = support::start_test_bed();
    let client = env.client().await.expect("client");
    env.run_kubectl(&["create", "namespace", "bench-failover"])
        .unwrap();
    let api: Api<Component> = Api::namespaced(client, "bench-failover");
    let endpoint = env.moto_endpoint();
    let Replicas {
        mut leader,
        mut standby,
    } = Replicas::start(&env, None, &endpoint);
    let mut identities = ("replica-a", "replica-b");

    for how in ["SIGKILL", "SIGTERM"] {
        let (mut to_lead, mut to_reconcile) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            let name = format!("{}-{round}", how.to_lowercase());
            let gone = Instant::now();
            if how == "SIGKILL" {
                leader.kill();
            } else {
                leader.terminate();
            }
            let component =
                Component::new(&name, ComponentSpec::new("service", "production", "team"));
            api.create(&PostParams::default(), &component)
                .await
                .expect("create the probe Component");
            let limit = Duration::from_secs(LEASE_SECONDS * 3);
            wait_until(limit, "the standby leading", || standby.leading());
            to_lead.push(gone.elapsed().as_secs_f64());
            while !reconciled(&api, &name).await {
                assert!(gone.elapsed() < limit, "{name} not reconciled");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            to_reconcile.push(gone.elapsed().as_secs_f64());
            // The one that went comes back as the standby.
            let restarted =
                Operator::start_replica(&env, None, &endpoint, identities.0, LEASE_SECONDS);
            wait_until(
                Duration::from_secs(30),
                "the restarted replica standing by",
                || restarted.metric("pave_operator_leader") == 0.0,
            );
            leader = std::mem::replace(&mut standby, restarted);
            identities = (identities.1, identities.0);
        }
        println!(
            "failover after {how} of the leader ({LEASE_SECONDS} s lease), median of {rounds}: \
             other replica leading after {:.2} s, first reconcile after {:.2} s \
             (target under {} s); each round: {to_lead:.2?} / {to_reconcile:.2?}",
            median(to_lead.clone()),
            median(to_reconcile.clone()),
            LEASE_SECONDS + 2,
        );
    }
    standby.terminate();
    leader.terminate();
}
