//! Leader election on a `coordination.k8s.io/v1` Lease, so that two replicas can run
//! and only one acts.
//!
//! The Lease is kept by kube-lease-manager: a standby sleeps until the holder's lease
//! expires, then takes it; the holder renews it well before it expires. Around it,
//! pave adds what the crate leaves out:
//!
//! - **A watchdog on the holder.** The crate keeps retrying a failed renewal and never
//!   says the lease is lost while the API server does not answer; meanwhile a standby
//!   that can reach the API server takes the lease once it expires. So the holder
//!   reads the Lease itself every `poll`, and steps down when the Lease names another
//!   holder, or when its own last confirmed renewal (`renewTime`, written with this
//!   process's clock) is older than `duration - margin`: before any standby can
//!   consider it expired.
//! - **Fail-stop.** Stepping down is leaving: the process exits with code 1 and
//!   Kubernetes restarts it as a standby. Stopping every controller, the sweeper, the
//!   drift check and address allocation at once is then certain, not a matter of each
//!   of them noticing.
//! - **A released lease is taken at once.** The crate's standby sleeps out the expiry
//!   it saw last, even after the holder released the Lease on a clean stop (a rolling
//!   update); the standby's own look at the Lease every `poll` sees the release and
//!   starts over, taking it within `poll`.
//!
//! Standing by is not a problem: readiness does not depend on holding the lease
//! (`Readiness::set_standby`); the Lease's `holderIdentity` and the
//! `pave_operator_leader` metric say who leads.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;
use kube::{Api, Client};
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder, LeaseParams};
use pave_cloud::aws::with_causes;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::controller::ShutdownSignal;
use crate::readiness::Readiness;

/// What readiness calls a problem with the Lease (e.g. its RBAC missing).
const PROBLEM: &str = "leader lease";

#[derive(Clone, Debug, clap::Args)]
pub struct LeaderArgs {
    /// Take part in leader election: only the replica holding the Lease runs the
    /// controllers. Off, this process acts as the only replica.
    #[arg(long, env = "PAVE_LEADER_ELECT")]
    pub leader_elect: bool,

    /// The Lease's name.
    #[arg(long, env = "PAVE_LEASE_NAME", default_value = "pave-operator")]
    pub lease_name: String,

    /// The Lease's namespace. Default: the pod's (POD_NAMESPACE), else the
    /// kubeconfig's namespace.
    #[arg(long, env = "POD_NAMESPACE")]
    pub lease_namespace: Option<String>,

    /// Seconds a holder's lease lasts without renewal: how long a standby waits for a
    /// holder that died without releasing it. At least 3.
    #[arg(long, env = "PAVE_LEASE_DURATION", default_value_t = 15,
          value_parser = clap::value_parser!(u64).range(3..=3600))]
    pub lease_duration: u64,

    /// Who this replica is in the Lease. Default: the pod's name (POD_NAME), else the
    /// host name and process id. A container restarted in the same pod keeps the
    /// name, and with it a lease its predecessor still held.
    #[arg(long, env = "POD_NAME")]
    pub leader_identity: Option<String>,
}

/// The times derived from the lease duration `d`: renew every `d/3` (the crate
/// renews `grace` before expiry), look at the Lease every `d/6`, and step down once
/// the last confirmed renewal is `d - margin` old.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    pub duration: Duration,
    pub grace: Duration,
    pub poll: Duration,
    pub margin: Duration,
}

impl Timing {
    pub fn new(duration_secs: u64) -> Timing {
        let d = Duration::from_secs(duration_secs);
        Timing {
            duration: d,
            // Whole seconds, as the crate takes them: at least 1, at most d - 1.
            grace: Duration::from_secs((duration_secs * 2 / 3).clamp(1, duration_secs - 1)),
            poll: (d / 6).max(Duration::from_millis(500)),
            margin: (d / 5).max(Duration::from_millis(500)),
        }
    }

    /// Whether a holder whose last confirmed renewal was at `renewed` must step down
    /// at `now`: a standby considers the lease expired at `renewed + duration`.
    pub fn overdue(&self, renewed: Timestamp, now: Timestamp) -> bool {
        let age = now.duration_since(renewed);
        age.is_positive() && age.unsigned_abs() >= self.duration - self.margin
    }
}

/// The election this process takes part in.
pub struct Election {
    api: Api<Lease>,
    client: Client,
    name: String,
    namespace: String,
    identity: String,
    timing: Timing,
}

impl Election {
    pub fn new(client: Client, args: &LeaderArgs) -> Election {
        let namespace = args
            .lease_namespace
            .clone()
            .unwrap_or_else(|| client.default_namespace().to_owned());
        let identity = args
            .leader_identity
            .clone()
            .unwrap_or_else(default_identity);
        Election {
            api: Api::namespaced(client.clone(), &namespace),
            client,
            name: args.lease_name.clone(),
            namespace,
            identity,
            timing: Timing::new(args.lease_duration),
        }
    }

    /// Waits until this replica holds the Lease. `None` if the stop signal came
    /// first. A Lease it may not read or write is a readiness problem, retried.
    pub async fn acquire(
        self,
        readiness: &Readiness,
        shutdown: &ShutdownSignal,
    ) -> Option<Leadership> {
        info!(lease = %self.lease(), identity = %self.identity, "standing by for the leader lease");
        loop {
            let manager = readiness
                .until_ok(PROBLEM, shutdown, || async {
                    self.manager().await.map_err(|e| self.problem(&e))
                })
                .await?;
            let outcome = tokio::select! {
                result = manager.changed() => result,
                () = self.released() => continue,
                () = shutdown.clone() => return None,
            };
            match outcome {
                Ok(true) => {
                    readiness.resolve(PROBLEM);
                    info!(lease = %self.lease(), identity = %self.identity, "acquired the leader lease");
                    let (leading, keeper) = manager.watch().await;
                    return Some(Leadership {
                        election: self,
                        leading,
                        keeper,
                        renewed: Timestamp::now(),
                    });
                }
                Ok(false) => {}
                Err(e) => {
                    readiness.report(PROBLEM, self.problem(&e));
                    tokio::select! {
                        () = tokio::time::sleep(self.timing.poll) => {}
                        () = shutdown.clone() => return None,
                    }
                }
            }
        }
    }

    async fn manager(&self) -> Result<LeaseManager, kube_lease_manager::LeaseManagerError> {
        let secs = self.timing.duration.as_secs();
        LeaseManagerBuilder::new(self.client.clone(), &self.name)
            .with_namespace(&self.namespace)
            .with_parameters(LeaseParams::new(
                self.identity.clone(),
                secs,
                self.timing.grace.as_secs(),
            ))
            .build()
            .await
    }

    /// Resolves when the Lease has no holder (released by a holder that stopped
    /// cleanly), looking every `poll`.
    async fn released(&self) {
        loop {
            tokio::time::sleep(self.timing.poll).await;
            if let Ok(lease) = self.api.get(&self.name).await
                && holder(&lease).is_none()
            {
                return;
            }
        }
    }

    fn lease(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    fn problem(&self, error: &kube_lease_manager::LeaseManagerError) -> String {
        format!(
            "cannot take part in leader election on Lease {}: {}: grant the operator's \
             ServiceAccount get and patch on it (and create on leases.coordination.k8s.io \
             in {}, unless it exists; the chart makes it and a Role: rbac.create=true)",
            self.lease(),
            with_causes(error),
            self.namespace
        )
    }
}

/// This replica holds the Lease until `lost` resolves or `release` is called.
pub struct Leadership {
    election: Election,
    leading: watch::Receiver<bool>,
    keeper: JoinHandle<kube_lease_manager::Result<LeaseManager>>,
    /// The last renewal this replica has seen in the Lease, by its own clock.
    renewed: Timestamp,
}

impl Leadership {
    /// Resolves with the reason when this replica no longer holds the Lease, or can no
    /// longer be sure it does before a standby may take it.
    pub async fn lost(&mut self) -> String {
        let timing = self.election.timing;
        loop {
            tokio::select! {
                changed = self.leading.changed() => match changed {
                    Ok(()) if *self.leading.borrow() => {}
                    Ok(()) => return "the lease manager lost the lease".to_owned(),
                    Err(_) => return "the lease manager stopped".to_owned(),
                },
                () = tokio::time::sleep(timing.poll) => {
                    match self.election.api.get(&self.election.name).await {
                        Ok(lease) => match holder(&lease) {
                            Some(holder) if holder == self.election.identity => {
                                if let Some(renewed) = renew_time(&lease) {
                                    self.renewed = self.renewed.max(renewed);
                                }
                            }
                            Some(other) => return format!("the Lease is held by {other}"),
                            None => return "the Lease was released by someone else".to_owned(),
                        },
                        Err(e) => warn!(error = %with_causes(&e), "cannot read the leader Lease"),
                    }
                    if timing.overdue(self.renewed, Timestamp::now()) {
                        return format!(
                            "the Lease was last renewed at {} and a standby may take it at {}",
                            self.renewed,
                            self.renewed.checked_add(timing.duration).unwrap_or(self.renewed)
                        );
                    }
                }
            }
        }
    }

    /// Gives the Lease up, so that a standby takes over without waiting for it to
    /// expire; best effort, within a few seconds.
    pub async fn release(self) {
        let Leadership {
            election,
            leading,
            keeper,
            ..
        } = self;
        // The keeper releases the Lease once nobody listens to it.
        drop(leading);
        match tokio::time::timeout(Duration::from_secs(5), keeper).await {
            Ok(Ok(Ok(_))) => info!(lease = %election.lease(), "released the leader lease"),
            Ok(Ok(Err(e))) => warn!(error = %with_causes(&e), "cannot release the leader lease"),
            Ok(Err(e)) => warn!(error = %e, "the lease manager failed"),
            Err(_) => warn!("the leader lease was not released within 5s; it expires by itself"),
        }
    }
}

fn holder(lease: &Lease) -> Option<&str> {
    lease.spec.as_ref()?.holder_identity.as_deref()
}

fn renew_time(lease: &Lease) -> Option<Timestamp> {
    Some(lease.spec.as_ref()?.renew_time.as_ref()?.0)
}

/// The host name and process id: unique among processes sharing a host.
fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "pave-operator".to_owned());
    format!("{host}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_lookups_and_step_down_fit_inside_the_lease() {
        let t = Timing::new(15);
        assert_eq!(t.grace, Duration::from_secs(10), "renews every 5 s");
        assert_eq!(t.poll, Duration::from_millis(2500));
        assert_eq!(t.margin, Duration::from_secs(3));
        // Renewal at 5 s, seen by 7.5 s at the latest, well before stepping down at 12 s.
        assert!(t.duration - t.grace + t.poll < t.duration - t.margin);
        let short = Timing::new(3);
        assert_eq!(short.grace, Duration::from_secs(2));
        assert_eq!(short.poll, Duration::from_millis(500));
        assert!(short.duration - short.grace + short.poll < short.duration - short.margin);
    }

    #[test]
    fn overdue_before_a_standby_may_take_the_lease() {
        let t = Timing::new(15);
        let renewed = Timestamp::from_second(1_000).unwrap();
        let at = |s: i64| Timestamp::from_second(1_000 + s).unwrap();
        assert!(!t.overdue(renewed, at(0)));
        assert!(!t.overdue(renewed, at(11)));
        assert!(t.overdue(renewed, at(12)));
        assert!(t.overdue(renewed, at(15)));
        // A renewal stamped a little ahead of this clock is not overdue.
        assert!(!t.overdue(renewed, at(-1)));
    }
}
