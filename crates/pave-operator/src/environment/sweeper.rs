//! The sweeper: deletes what no environment owns any more (a Background deletion, a
//! crash mid-teardown).
//!
//! Deleting a live environment's resources is the one mistake it must never make, so:
//! - which environments exist is read from the API server itself (a list without a
//!   resourceVersion, which etcd answers, not a watch cache), by metadata only, so
//!   an environment this operator cannot deserialize counts as alive;
//! - that read comes *after* the cloud listing: every resource in the listing was
//!   created by a reconcile of an environment that existed then, and if it still
//!   exists the read includes it;
//! - a resource is deleted only once it has looked ownerless for
//!   `sweepGracePeriod`, except for environments this operator released itself;
//! - an environment any of whose resources carries the orphan mark is kept whole
//!   (when in doubt, keep), and so is one abandoned on purpose.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::api::{Api, ListParams};
use pave_api::DeveloperEnvironment;
use pave_cloud::model::tags;
use pave_cloud::{Observed, ResourceKind};
use tracing::{info, warn};

use super::{Cloud, PENDING_POLL, Teardown, owned_by, teardown};
use crate::error::backoff;

/// What the sweeper remembers between rounds about one region's environment UIDs that
/// still have resources there; entries go when their resources do. One per region:
/// each round judges one region's listing, and must not forget what it learnt of the
/// others.
#[derive(Debug, Default)]
pub struct Memory {
    /// Released by this operator (Background): certainly gone once the API server
    /// no longer lists them.
    pub(super) released: BTreeSet<String>,
    /// Released with their resources abandoned on purpose: never swept.
    pub(super) abandoned: BTreeSet<String>,
    /// When each UID was first seen with resources and no environment.
    ownerless_since: HashMap<String, Instant>,
}

/// The environments the API server has: UID → whether it is being deleted.
pub(super) type Living = BTreeMap<String, bool>;

/// What one round decides for one region.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Verdict {
    /// Environment UIDs whose resources are deleted now.
    pub(super) sweep: Vec<String>,
    /// Something will change soon (an environment being deleted): look again in
    /// seconds rather than at the next interval.
    pub(super) soon: bool,
}

/// Decides, from a region's listing and the environments that exist (read after it),
/// whose resources to delete. Pure, so every rule above is tested without a cloud.
pub(super) fn judge(
    inventory: &[(ResourceKind, Observed)],
    living: &Living,
    memory: &mut Memory,
    now: Instant,
    grace: Duration,
) -> Verdict {
    // UID → (resources, resources marked orphaned).
    let mut owners: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for (_, observed) in inventory {
        if let Some(uid) = observed.tags.get(tags::ENVIRONMENT_UID) {
            let entry = owners.entry(uid.as_str()).or_default();
            entry.0 += 1;
            if observed.tags.get(tags::ORPHANED).map(String::as_str) == Some("true") {
                entry.1 += 1;
            }
        }
    }
    memory
        .ownerless_since
        .retain(|uid, _| owners.contains_key(uid.as_str()));
    memory
        .released
        .retain(|uid| owners.contains_key(uid.as_str()));
    memory
        .abandoned
        .retain(|uid| owners.contains_key(uid.as_str()));
    let mut verdict = Verdict::default();
    for (uid, (_, marked)) in owners {
        if let Some(terminating) = living.get(uid) {
            memory.ownerless_since.remove(uid);
            verdict.soon |= *terminating;
            continue;
        }
        if marked > 0 || memory.abandoned.contains(uid) {
            continue;
        }
        if memory.released.contains(uid) {
            verdict.sweep.push(uid.to_owned());
            continue;
        }
        let since = *memory.ownerless_since.entry(uid.to_owned()).or_insert(now);
        if now.duration_since(since) >= grace {
            verdict.sweep.push(uid.to_owned());
        }
    }
    verdict
}

/// Runs every sweep interval, and at once when woken; keeps stepping while deletions
/// are under way, and retries a failed round with backoff instead of waiting a whole
/// interval.
pub(super) async fn sweeper(cloud: Arc<Cloud>) {
    let interval = cloud.config.sweep_interval;
    loop {
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = cloud.sweep_now.notified() => {}
        }
        let mut failures = 0;
        loop {
            let regions: Vec<String> = cloud
                .regions
                .lock()
                .expect("not poisoned")
                .iter()
                .cloned()
                .collect();
            let (mut soon, mut failed) = (false, false);
            for region in regions {
                match sweep_region(&cloud, &region).await {
                    Ok(again) => soon |= again,
                    Err(error) => {
                        warn!(%region, %error, "sweep failed; retrying with backoff");
                        failed = true;
                    }
                }
            }
            let wait = if failed {
                failures += 1;
                backoff(failures).min(interval)
            } else if soon {
                failures = 0;
                PENDING_POLL
            } else {
                break;
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// One round in one region; `Ok(true)` when it should look again soon.
async fn sweep_region(cloud: &Cloud, region: &str) -> Result<bool, String> {
    let inventory = cloud
        .inventory(region)
        .await
        .map_err(|e| format!("cannot list cloud resources: {e}"))?;
    let living = living(&cloud.kube)
        .await
        .map_err(|e| format!("cannot list environments, so nothing is swept: {e}"))?;
    let verdict = judge(
        &inventory,
        &living,
        cloud
            .sweep
            .lock()
            .expect("not poisoned")
            .entry(region.to_owned())
            .or_default(),
        Instant::now(),
        cloud.config.sweep_grace_period,
    );
    let aws = cloud.client(region).await;
    let mut soon = verdict.soon;
    for uid in verdict.sweep {
        // The inventory above was listed after this round began.
        match teardown(&aws, owned_by(&inventory, &uid)).await {
            Ok(Teardown::Done) => info!(%region, environment_uid = %uid, "swept"),
            Ok(Teardown::Waiting(left)) => {
                soon = true;
                info!(%region, environment_uid = %uid, left = left.len(), "sweeping");
            }
            Err(error) => {
                soon = true;
                warn!(%region, environment_uid = %uid, %error, "sweep step failed; retrying");
            }
        }
    }
    Ok(soon)
}

/// Every environment the API server has, by UID, read by metadata so that one this
/// operator cannot deserialize counts too, and without a resourceVersion so that the
/// answer is etcd's, not a cache's.
async fn living(client: &kube::Client) -> Result<Living, kube::Error> {
    let api = Api::<DeveloperEnvironment>::all(client.clone());
    let mut params = ListParams::default().limit(500);
    let mut living = Living::new();
    loop {
        let page = api.list_metadata(&params).await?;
        for item in &page.items {
            if let Some(uid) = &item.metadata.uid {
                living.insert(uid.clone(), item.metadata.deletion_timestamp.is_some());
            }
        }
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => return Ok(living),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_secs(300);

    fn resource(uid: &str, orphaned: bool) -> (ResourceKind, Observed) {
        let mut tags = BTreeMap::from([(tags::ENVIRONMENT_UID.to_owned(), uid.to_owned())]);
        if orphaned {
            tags.insert(tags::ORPHANED.to_owned(), "true".to_owned());
        }
        let observed = Observed {
            id: format!("vpc-{uid}"),
            tags,
            ..Observed::default()
        };
        (ResourceKind::Vpc, observed)
    }

    #[test]
    fn a_living_environment_is_never_swept_however_long_it_waits() {
        let inventory = [resource("a", false)];
        let living = Living::from([("a".to_owned(), false)]);
        let mut memory = Memory::default();
        let t0 = Instant::now();
        for later in [0, 600, 6000] {
            let verdict = judge(
                &inventory,
                &living,
                &mut memory,
                t0 + Duration::from_secs(later),
                GRACE,
            );
            assert_eq!(verdict, Verdict::default());
        }
    }

    #[test]
    fn an_ownerless_resource_waits_out_the_grace_period() {
        let inventory = [resource("gone", false)];
        let mut memory = Memory::default();
        let t0 = Instant::now();
        let judge_at = |memory: &mut Memory, secs| {
            judge(
                &inventory,
                &Living::new(),
                memory,
                t0 + Duration::from_secs(secs),
                GRACE,
            )
            .sweep
        };
        assert!(judge_at(&mut memory, 0).is_empty());
        assert!(judge_at(&mut memory, 299).is_empty());
        assert_eq!(judge_at(&mut memory, 300), ["gone"]);
    }

    #[test]
    fn reappearing_alive_restarts_the_grace_period() {
        let inventory = [resource("x", false)];
        let mut memory = Memory::default();
        let t0 = Instant::now();
        judge(&inventory, &Living::new(), &mut memory, t0, GRACE);
        let alive = Living::from([("x".to_owned(), false)]);
        judge(
            &inventory,
            &alive,
            &mut memory,
            t0 + Duration::from_secs(200),
            GRACE,
        );
        let verdict = judge(
            &inventory,
            &Living::new(),
            &mut memory,
            t0 + Duration::from_secs(400),
            GRACE,
        );
        assert!(verdict.sweep.is_empty(), "{verdict:?}");
    }

    #[test]
    fn one_orphan_mark_keeps_the_whole_environment() {
        let inventory = [resource("o", true), resource("o", false)];
        let mut memory = Memory::default();
        let t0 = Instant::now();
        for later in [0, 600] {
            let verdict = judge(
                &inventory,
                &Living::new(),
                &mut memory,
                t0 + Duration::from_secs(later),
                GRACE,
            );
            assert!(verdict.sweep.is_empty(), "{verdict:?}");
        }
    }

    #[test]
    fn released_environments_are_swept_once_gone_and_abandoned_ones_never() {
        let inventory = [resource("r", false), resource("a", false)];
        let mut memory = Memory::default();
        memory.released.insert("r".into());
        memory.abandoned.insert("a".into());
        let t0 = Instant::now();
        let terminating = Living::from([("r".to_owned(), true)]);
        let verdict = judge(&inventory, &terminating, &mut memory, t0, GRACE);
        assert_eq!(
            verdict,
            Verdict {
                sweep: vec![],
                soon: true
            }
        );
        let verdict = judge(&inventory, &Living::new(), &mut memory, t0, GRACE);
        assert_eq!(verdict.sweep, ["r"]);
        let verdict = judge(
            &inventory,
            &Living::new(),
            &mut memory,
            t0 + Duration::from_secs(900),
            GRACE,
        );
        assert_eq!(
            verdict.sweep,
            ["r"],
            "the abandoned one is kept: {verdict:?}"
        );
    }

    #[test]
    fn memory_forgets_what_left_the_cloud() {
        let mut memory = Memory::default();
        memory.released.insert("done".into());
        let t0 = Instant::now();
        judge(
            &[resource("gone", false)],
            &Living::new(),
            &mut memory,
            t0,
            GRACE,
        );
        judge(&[], &Living::new(), &mut memory, t0, GRACE);
        assert!(memory.released.is_empty() && memory.ownerless_since.is_empty());
    }
}
