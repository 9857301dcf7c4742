//! Deletion under the finalizer: Orphan, Background and Foreground.

use std::collections::{BTreeMap, BTreeSet};

use kube::runtime::controller::Action;
use pave_api::DeveloperEnvironment;
use pave_api::conditions::{READY, Status};
use pave_api::environment::{CompositeDeletePolicy, DeletionPolicy, Phase};
use pave_cloud::aws::Aws;
use pave_cloud::model::tags;
use pave_cloud::policy::{self};
use pave_cloud::{CloudError, Observed, ResourceKind};
use tracing::info;

use super::{Cloud, Progress, uid_of};
use crate::controller::{self, Context};
use crate::error::Error;

pub(super) async fn cleanup(
    env: &DeveloperEnvironment,
    ctx: &Context,
    cloud: &Cloud,
) -> Result<Action, Error> {
    let uid = uid_of(env);
    let region = env.spec.parameters.region.clone();
    // A region the guardrails refuse, and no cloud id ever recorded: apply refuses
    // before creating anything, so nothing can exist there. Asking a region that may
    // not even exist would hold the object forever; a broken spec never blocks
    // deletion. (With a region that was allowed once, status holds the ids.)
    let recorded = env
        .status
        .as_ref()
        .is_some_and(|s| s.resources.iter().any(|r| r.id.is_some()));
    if !recorded && !policy::region_allowed(&cloud.config, &region) {
        info!(environment = %controller::describe(env), %region, "nothing was created (region refused); releasing");
        return Ok(Action::await_change());
    }
    let aws = cloud.client(&region).await;
    let mut progress = Progress::new(env, ctx);
    if env.spec.deletion_policy == DeletionPolicy::Orphan {
        let inventory = match cloud.inventory(&region).await {
            Ok(inventory) => inventory,
            Err(error) => return progress.failed(error).await,
        };
        let orphan = BTreeMap::from([(tags::ORPHANED.to_owned(), "true".to_owned())]);
        for (kind, observed) in inventory
            .iter()
            .filter(|(_, o)| o.tags.get(tags::ENVIRONMENT_UID) == Some(&uid))
        {
            if let Err(error) = aws.tag(*kind, observed, &orphan).await {
                return progress.failed(error).await;
            }
        }
        info!(environment = %controller::describe(env), "deleted; its cloud resources are kept (deletionPolicy Orphan)");
        return Ok(Action::await_change());
    }
    if env.spec.composite_delete_policy == CompositeDeletePolicy::Background {
        // Released at once; the sweeper deletes what no environment owns any more.
        cloud.sweep_now.notify_one();
        return Ok(Action::await_change());
    }
    progress.status.phase = Some(Phase::Deleting);
    match teardown_step(cloud, &region, &uid).await {
        Ok(Teardown::Done) => {
            info!(environment = %controller::describe(env), "every cloud resource deleted; releasing");
            Ok(Action::await_change())
        }
        Ok(Teardown::Waiting(left)) => {
            for (kind, observed) in &left {
                let name = observed
                    .tags
                    .get(tags::NAME)
                    .cloned()
                    .unwrap_or_else(|| observed.id.clone());
                progress.resource(*kind, &name, Some(observed), Some("deleting".into()));
            }
            let left_names: BTreeSet<String> = left
                .iter()
                .filter_map(|(_, o)| o.tags.get(tags::NAME).cloned())
                .collect();
            for r in &mut progress.status.resources {
                if !left_names.contains(&r.name) {
                    r.state = Some("deleted".into());
                }
            }
            progress.condition(
                READY,
                Status::False,
                "Deleting",
                format!("{} cloud resources left to delete", left.len()),
            );
            progress.save().await?;
            // Keeps the finalizer until the next look.
            Err(Error::Pending(format!(
                "{} cloud resources of {} still exist",
                left.len(),
                controller::describe(env)
            )))
        }
        Err(error) => progress.failed(error).await,
    }
}

/// Where a teardown stands.
pub(super) enum Teardown {
    Done,
    Waiting(Vec<(ResourceKind, Observed)>),
}

/// Deletes an environment's resources in reverse creation order, one kind after the
/// other, as far as it can without waiting: a kind whose deletes the cloud confirms at
/// once (a VPC, a subnet) is followed straight away by the kind before it; a kind still
/// on its way out (a database `deleting`, an instance `shutting-down`) ends the step,
/// and the next one looks again. Reports what is left.
///
/// What exists comes from the region's shared inventory, listed after this step began,
/// so it holds everything the environment ever created, including a resource whose id
/// a crash kept out of status; each delete confirms its own resource gone by id.
pub(super) async fn teardown_step(
    cloud: &Cloud,
    region: &str,
    uid: &str,
) -> Result<Teardown, CloudError> {
    let inventory = cloud.inventory(region).await?;
    let aws = cloud.client(region).await;
    teardown(&aws, owned_by(&inventory, uid)).await
}

/// The resources in `inventory` that environment `uid` owns.
pub(super) fn owned_by(
    inventory: &[(ResourceKind, Observed)],
    uid: &str,
) -> Vec<(ResourceKind, Observed)> {
    inventory
        .iter()
        .filter(|(_, o)| o.tags.get(tags::ENVIRONMENT_UID).map(String::as_str) == Some(uid))
        .cloned()
        .collect()
}

/// [`teardown_step`] on resources already listed.
pub(super) async fn teardown(
    aws: &Aws,
    mut mine: Vec<(ResourceKind, Observed)>,
) -> Result<Teardown, CloudError> {
    while let Some(last_kind) = mine.iter().map(|(k, _)| *k).max() {
        let mut all_gone = true;
        for (kind, observed) in mine.iter().filter(|(k, _)| *k == last_kind) {
            if !aws.delete(*kind, observed).await? {
                all_gone = false;
            }
        }
        if !all_gone {
            return Ok(Teardown::Waiting(mine));
        }
        mine.retain(|(k, _)| *k != last_kind);
    }
    Ok(Teardown::Done)
}
