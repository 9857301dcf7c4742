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
    /// When to look again sooner than the next interval: in seconds while an
    /// environment is being deleted, and when the first grace period runs out.
    pub(super) look_again: Option<Duration>,
}

impl Verdict {
    fn sooner(&mut self, wait: Duration) {
        self.look_again = Some(self.look_again.map_or(wait, |w| w.min(wait)));
    }
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
            if *terminating {
                verdict.sooner(PENDING_POLL);
            }
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
        let waited = now.duration_since(since);
        if waited >= grace {
            verdict.sweep.push(uid.to_owned());
        } else {
            verdict.sooner(grace - waited);
        }
    }
    verdict
}

/// Runs at start (after finding the regions to look at), every sweep interval, and at
/// once when woken; keeps stepping while deletions are under way or a grace period is
/// about to run out, and retries a failed round with backoff instead of waiting a
/// whole interval.
pub(super) async fn sweeper(cloud: Arc<Cloud>) {
    let interval = cloud.config.sweep_interval;
    // Which regions environments name is part of what the first round needs.
    if cloud.store.wait_until_ready().await.is_err() {
        return;
    }
    discover_regions(&cloud).await;
    let mut failures = 0;
    loop {
        let regions: Vec<String> = cloud
            .regions
            .lock()
            .expect("not poisoned")
            .iter()
            .cloned()
            .collect();
        let (mut next, mut failed): (Option<Duration>, bool) = (None, false);
        for region in regions {
            match sweep_region(&cloud, &region).await {
                Ok(again) => next = earliest(next, again),
                Err(error) => {
                    warn!(%region, %error, "sweep failed; retrying with backoff");
                    failed = true;
                }
            }
        }
        let wait = if failed {
            failures += 1;
            backoff(failures).min(interval)
        } else {
            failures = 0;
            next.map_or(interval, |next| next.min(interval))
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = cloud.sweep_now.notified() => {}
        }
    }
}

/// Adds to the regions the sweeper looks at every region where resources of this
/// cluster may be, so that a restart forgets none (a Background deletion released
/// just before a crash, a teardown cut short): the allowed regions when the
/// configuration lists them, every region of the account (DescribeRegions) when it
/// allows any or matches by prefix, and every region an environment names. The first
/// round lists each once; those holding nothing of this cluster leave the set again.
async fn discover_regions(cloud: &Cloud) {
    let allowed = &cloud.config.allowed_regions;
    let mut candidates: BTreeSet<String> = cloud
        .store
        .state()
        .iter()
        .filter_map(|g| g.0.as_ref().ok())
        .map(|e| e.spec.parameters.region.clone())
        .collect();
    if !allowed.is_empty() && allowed.iter().all(|r| !r.ends_with('*')) {
        candidates.extend(allowed.iter().cloned());
    } else {
        let home = candidates
            .first()
            .cloned()
            .or_else(|| std::env::var("AWS_REGION").ok())
            .unwrap_or_else(|| "us-east-1".to_owned());
        match cloud.connect(&home).await.regions().await {
            Ok(regions) => candidates.extend(
                regions
                    .into_iter()
                    .filter(|r| pave_cloud::policy::region_allowed(&cloud.config, r)),
            ),
            Err(error) => warn!(
                %error,
                "cannot list the account's regions: after this restart the sweeper looks only \
                 where environments are; allow ec2:DescribeRegions, or list allowedRegions"
            ),
        }
    }
    for region in &candidates {
        cloud.track(region);
    }
}

/// One round in one region; `Ok(Some(wait))` when it should look again that soon.
async fn sweep_region(cloud: &Cloud, region: &str) -> Result<Option<Duration>, String> {
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
    if inventory.is_empty() {
        untrack_if_unused(cloud, region);
        return Ok(verdict.look_again);
    }
    let aws = cloud.client(region).await;
    let mut next = verdict.look_again;
    for uid in verdict.sweep {
        // The inventory above was listed after this round began.
        match teardown(&aws, owned_by(&inventory, &uid)).await {
            Ok(Teardown::Done) => info!(%region, environment_uid = %uid, "swept"),
            Ok(Teardown::Waiting(left)) => {
                next = earliest(next, Some(PENDING_POLL));
                info!(%region, environment_uid = %uid, left = left.len(), "sweeping");
            }
            Err(error) => {
                next = earliest(next, Some(PENDING_POLL));
                warn!(%region, environment_uid = %uid, %error, "sweep step failed; retrying");
            }
        }
    }
    Ok(next)
}

/// The sooner of two optional waits.
fn earliest(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Stops sweeping `region`, which holds nothing of this cluster, unless an
/// environment (or one this operator cannot read, whose region it cannot know) may
/// still act there. Anything that creates there afterwards goes through
/// [`Cloud::client`], which adds it back.
fn untrack_if_unused(cloud: &Cloud, region: &str) {
    let in_use = cloud.store.state().iter().any(|g| match &g.0 {
        Ok(env) => env.spec.parameters.region == region,
        Err(_) => true,
    });
    if !in_use {
        cloud.regions.lock().expect("not poisoned").remove(region);
    }
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
    fn a_waiting_grace_period_asks_for_a_look_when_it_runs_out() {
        let inventory = [resource("gone", false)];
        let mut memory = Memory::default();
        let t0 = Instant::now();
        let first = judge(&inventory, &Living::new(), &mut memory, t0, GRACE);
        assert_eq!(first.look_again, Some(GRACE));
        let later = t0 + Duration::from_secs(200);
        let second = judge(&inventory, &Living::new(), &mut memory, later, GRACE);
        assert_eq!(second.look_again, Some(Duration::from_secs(100)));
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
                look_again: Some(PENDING_POLL)
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
