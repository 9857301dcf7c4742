//! The sweeper: deletes what no environment owns any more.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::{Cloud, PENDING_POLL, Teardown, owned_by, teardown};
use pave_cloud::model::tags;
use tracing::{info, warn};

/// Deletes cloud resources whose environment no longer exists (a Background deletion,
/// or a crash mid-teardown), except orphaned ones. Runs every sweep interval, and at
/// once when woken.
pub(super) async fn sweeper(cloud: Arc<Cloud>) {
    let interval = cloud.config.sweep_interval;
    loop {
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = cloud.sweep_now.notified() => {}
        }
        // Keep stepping while deletions are under way, then wait for the next round.
        loop {
            let regions: Vec<String> = cloud
                .regions
                .lock()
                .expect("not poisoned")
                .iter()
                .cloned()
                .collect();
            let living = cloud.environment_uids();
            let mut busy = false;
            for region in regions {
                let aws = cloud.client(&region).await;
                let inventory = match cloud.inventory(&region).await {
                    Ok(inventory) => inventory,
                    Err(error) => {
                        warn!(%region, %error, "sweeper cannot list cloud resources");
                        continue;
                    }
                };
                let abandoned: BTreeSet<String> = inventory
                    .iter()
                    .filter(|(_, o)| o.tags.get(tags::ORPHANED).map(String::as_str) != Some("true"))
                    .filter_map(|(_, o)| o.tags.get(tags::ENVIRONMENT_UID).cloned())
                    .filter(|uid| !living.contains(uid))
                    .collect();
                for uid in abandoned {
                    // The inventory above was listed after this round began.
                    match teardown(&aws, owned_by(&inventory, &uid)).await {
                        Ok(Teardown::Done) => info!(%region, environment_uid = %uid, "swept"),
                        Ok(Teardown::Waiting(left)) => {
                            busy = true;
                            info!(%region, environment_uid = %uid, left = left.len(), "sweeping");
                        }
                        Err(error) => {
                            warn!(%region, environment_uid = %uid, %error, "sweep step failed; retrying next round")
                        }
                    }
                }
            }
            if !busy {
                break;
            }
            tokio::time::sleep(PENDING_POLL).await;
        }
    }
}
