//! Deletion under the finalizer: Orphan, Background and Foreground.

use std::collections::{BTreeMap, BTreeSet};

use kube::runtime::controller::Action;
use pave_api::DeveloperEnvironment;
use pave_api::conditions::{READY, RECOVERABLE, Status, TERMINAL};
use pave_api::environment::{CloudResourceStatus, CompositeDeletePolicy, DeletionPolicy, Phase};
use pave_cloud::aws::Aws;
use pave_cloud::model::tags;
use pave_cloud::policy::{self};
use pave_cloud::{CloudError, Observed, ResourceKind};
use tracing::{info, warn};

use super::secret::{delete_connection_secret_elsewhere, keep_connection_secret};
use super::{ABANDON, Cloud, Progress, gitops, uid_of};
use crate::controller::{self, Context};
use crate::error::Error;
use kube::ResourceExt;

/// Deletion under the finalizer. The object is released only once its deletion
/// policy is fully carried out (resources gone, or marked orphaned and their secret
/// kept); any error, Terminal ones included, keeps it in phase Deleting with a
/// condition that says what is in the way, retried with backoff, until it succeeds or
/// an administrator releases it on purpose with [`ABANDON`].
pub(super) async fn cleanup(
    env: &DeveloperEnvironment,
    ctx: &Context,
    cloud: &Cloud,
) -> Result<Action, Error> {
    let uid = uid_of(env);
    let region = env.spec.parameters.region.clone();
    // A drift flag is for apply; a deleted environment never gets there to clear it.
    cloud.drifted.lock().expect("not poisoned").remove(&uid);
    if env.annotations().get(ABANDON).map(String::as_str) == Some("true") {
        return abandon(env, ctx, cloud).await;
    }
    // The Argo CD Application goes first, with what it deployed, and is awaited: the
    // application must not outlive the database it reads.
    let mut progress = Progress::new(env, ctx);
    // Written at once the first time, so the phase (and its Event) shows even when the
    // cloud takes everything away within this reconcile; later ones leave the
    // condition to the step they are waiting on.
    if progress.status.phase != Some(Phase::Deleting) {
        progress.status.phase = Some(Phase::Deleting);
        progress.condition(READY, Status::False, "Deleting", "deletion started");
        progress.save().await?;
    }
    let gitops_status = env.status.as_ref().and_then(|s| s.gitops.as_ref());
    if env.spec.gitops.is_some() || gitops_status.is_some() {
        let destination = gitops_status
            .and_then(|g| g.destination_namespace.clone())
            .or_else(|| {
                env.spec
                    .gitops
                    .as_ref()
                    .map(|g| gitops::destination_of(env, g))
            });
        let cascade = env.spec.deletion_policy != DeletionPolicy::Orphan;
        match gitops::remove(env, ctx, &cloud.config, destination.as_deref(), cascade).await {
            Ok(gitops::Removal::Done) => {}
            Ok(gitops::Removal::Waiting(line)) => {
                progress.clear(TERMINAL);
                progress.clear(RECOVERABLE);
                progress.condition(READY, Status::False, "Deleting", line.clone());
                progress.save().await?;
                return Err(Error::Pending(format!(
                    "{}: {line}",
                    controller::describe(env)
                )));
            }
            Err(error) => return blocked(&mut progress, ctx, error.to_string(), false).await,
        }
    }
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
    if env.spec.deletion_policy == DeletionPolicy::Orphan {
        if let Err(error) = mark_orphaned(cloud, &region, &uid).await {
            return blocked(&mut progress, ctx, error.to_string(), error.is_terminal()).await;
        }
        if let Err(error) = keep_connection_secret(env, ctx).await {
            return blocked(&mut progress, ctx, error.to_string(), false).await;
        }
        info!(environment = %controller::describe(env), "deleted; its cloud resources and connection secret are kept (deletionPolicy Orphan)");
        let note = "its cloud resources and connection secret are kept (deletionPolicy Orphan)";
        ctx.event(env, "Orphaned", note.to_owned()).await;
        return Ok(Action::await_change());
    }
    if env.spec.composite_delete_policy == CompositeDeletePolicy::Background {
        if let Err(error) = delete_connection_secret_elsewhere(env, ctx).await {
            return blocked(&mut progress, ctx, error.to_string(), false).await;
        }
        // Released at once; the sweeper deletes what no environment owns any more,
        // this one without a grace period, since it is certainly gone.
        cloud.released(&region, &uid);
        return Ok(Action::await_change());
    }
    let recorded = env.status.as_ref().map_or(&[][..], |s| &s.resources[..]);
    match teardown_step(cloud, &region, &uid, recorded).await {
        Ok(Teardown::Done) => {
            if let Err(error) = delete_connection_secret_elsewhere(env, ctx).await {
                return blocked(&mut progress, ctx, error.to_string(), false).await;
            }
            info!(environment = %controller::describe(env), "every cloud resource deleted; releasing");
            let note = "every cloud resource deleted; the environment goes".to_owned();
            ctx.event(env, "Deleted", note).await;
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
            progress.clear(TERMINAL);
            progress.clear(RECOVERABLE);
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
        Err(error) => blocked(&mut progress, ctx, error.to_string(), error.is_terminal()).await,
    }
}

/// Marks every resource of environment `uid` with the orphan tag.
async fn mark_orphaned(cloud: &Cloud, region: &str, uid: &str) -> Result<usize, CloudError> {
    let inventory = cloud.inventory(region).await?;
    let aws = cloud.client(region).await;
    let orphan = BTreeMap::from([(tags::ORPHANED.to_owned(), "true".to_owned())]);
    let mine = owned_by(&inventory, uid);
    for (kind, observed) in &mine {
        // A DB subnet group's tags in the inventory are its VPC's (its describe has
        // none), so its mark cannot be read there: after a crash that had marked the
        // VPC it would look marked. It is always tagged; tagging is idempotent.
        let known_marked = *kind != ResourceKind::DbSubnetGroup
            && observed.tags.get(tags::ORPHANED).map(String::as_str) == Some("true");
        if !known_marked {
            aws.tag(*kind, observed, &orphan).await?;
        }
    }
    Ok(mine.len())
}

/// A deletion step that failed: the object stays, phase Deleting, with the error and
/// the way out in its Ready condition and a Warning Event; retried with backoff.
async fn blocked(
    progress: &mut Progress<'_>,
    ctx: &Context,
    error: String,
    terminal: bool,
) -> Result<Action, Error> {
    let message = format!(
        "{error}. pave keeps this environment until its deletion policy is carried out and \
         retries by itself once the cause is fixed; to release it now and leave its cloud \
         resources in place, annotate it {ABANDON}=true"
    );
    let (reason, kind) = if terminal {
        ("DeletionBlocked", TERMINAL)
    } else {
        ("Deleting", RECOVERABLE)
    };
    progress.condition(READY, Status::False, reason, message.clone());
    progress.condition(kind, Status::True, reason, error.clone());
    progress.save().await?;
    ctx.warning(progress.env, reason, message).await;
    Err(Error::DeletionBlocked(format!(
        "{}: {error}",
        controller::describe(progress.env)
    )))
}

/// Releases the environment on an administrator's request, leaving its resources in
/// the cloud: marked orphaned where the cloud allows it, never swept by this
/// operator, their connection secret kept; an Event lists what was left.
async fn abandon(
    env: &DeveloperEnvironment,
    ctx: &Context,
    cloud: &Cloud,
) -> Result<Action, Error> {
    let uid = uid_of(env);
    let region = env.spec.parameters.region.clone();
    cloud.abandoned(&region, &uid);
    let left: Vec<String> = match cloud.inventory(&region).await {
        Ok(inventory) => owned_by(&inventory, &uid)
            .iter()
            .map(|(kind, o)| format!("{kind} {}", o.id))
            .collect(),
        Err(_) => env
            .status
            .iter()
            .flat_map(|s| &s.resources)
            .filter_map(|r| Some(format!("{} {}", r.kind, r.id.as_ref()?)))
            .collect(),
    };
    let marked = match mark_orphaned(cloud, &region, &uid).await {
        Ok(_) => "marked orphaned".to_owned(),
        Err(error) => format!("not all marked orphaned ({error})"),
    };
    if let Err(error) = keep_connection_secret(env, ctx).await {
        warn!(environment = %controller::describe(env), %error, "cannot keep the connection secret of an abandoned environment");
    }
    // Abandoning is the way out when something (Argo CD among them) does not answer,
    // so the Application is not waited for either: it is left as it is, and said so.
    let application = env
        .status
        .as_ref()
        .and_then(|s| s.gitops.as_ref())
        .and_then(|g| g.application.as_ref())
        .map(|app| format!("; Argo CD Application {app} left in place"))
        .unwrap_or_default();
    let note = format!(
        "released on request ({ABANDON}); left in the cloud, {marked}: {}{application}",
        if left.is_empty() {
            "nothing".to_owned()
        } else {
            left.join(", ")
        }
    );
    warn!(environment = %controller::describe(env), %note, "abandoned");
    ctx.warning(env, "Abandoned", note).await;
    Ok(Action::await_change())
}

/// What an environment has in the cloud beyond its plan, after [`remove_unplanned`].
#[derive(Debug, Default)]
pub(super) struct Beyond {
    /// Kept on purpose, by kind and name: the database and what it needs, when
    /// `dbSize` was removed under `deletionPolicy: Orphan`.
    pub(super) kept: Vec<(ResourceKind, String)>,
    /// Still on their way out, as `kind name is state` lines for the Ready condition.
    pub(super) deleting: Vec<String>,
}

/// Removes what environment `env` has in the cloud and its plan no longer names: the
/// instances beyond a smaller `clusterSize`, and after `dbSize` was removed its
/// database, DB subnet group and database security group. That is the user's own
/// request, carried out by the environment's `deletionPolicy`: Delete deletes them the
/// way a teardown does (reverse creation order, waiting for each kind to be gone);
/// Orphan deletes only instances, which hold no data, and keeps the rest, which the
/// Synced condition then says. One step, like [`teardown`]: what is still going is
/// reported, and the next reconcile continues.
pub(super) async fn remove_unplanned(
    env: &DeveloperEnvironment,
    aws: &Aws,
    inventory: &[(ResourceKind, Observed)],
    planned: &BTreeSet<&str>,
) -> Result<Beyond, CloudError> {
    let name_of = |o: &Observed| o.tags.get(tags::NAME).cloned().unwrap_or_default();
    let (remove, kept): (Vec<_>, Vec<_>) = owned_by(inventory, &uid_of(env))
        .into_iter()
        .filter(|(_, o)| !planned.contains(name_of(o).as_str()))
        .partition(|(kind, _)| {
            *kind == ResourceKind::Instance || env.spec.deletion_policy != DeletionPolicy::Orphan
        });
    for (kind, observed) in &remove {
        info!(environment = %controller::describe(env), resource = %name_of(observed), %kind, "removing: no longer in the spec");
    }
    let deleting = match teardown(aws, remove).await? {
        Teardown::Done => Vec::new(),
        Teardown::Waiting(left) => left
            .iter()
            .map(|(kind, o)| {
                format!(
                    "{kind} {} is being deleted (no longer in the spec)",
                    name_of(o)
                )
            })
            .collect(),
    };
    Ok(Beyond {
        kept: kept.iter().map(|(kind, o)| (*kind, name_of(o))).collect(),
        deleting,
    })
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
/// a crash kept out of status; and from the ids status recorded, so a resource whose
/// tags were removed out of band is deleted too, not left to hold up its VPC. Each
/// delete confirms its own resource gone by id.
pub(super) async fn teardown_step(
    cloud: &Cloud,
    region: &str,
    uid: &str,
    recorded: &[CloudResourceStatus],
) -> Result<Teardown, CloudError> {
    let inventory = cloud.inventory(region).await?;
    let aws = cloud.client(region).await;
    let mut mine = owned_by(&inventory, uid);
    mine.extend(recorded_untagged(&inventory, recorded));
    teardown(&aws, mine).await
}

/// The resources status recorded for an environment that the inventory does not
/// attribute to it (their tags were removed or changed), as far as a delete needs
/// them: kind, id and name. Not those confirmed deleted by an earlier step, and never
/// one the inventory attributes to another environment.
fn recorded_untagged(
    inventory: &[(ResourceKind, Observed)],
    recorded: &[CloudResourceStatus],
) -> Vec<(ResourceKind, Observed)> {
    recorded
        .iter()
        .filter(|r| r.state.as_deref() != Some("deleted"))
        .filter_map(|r| {
            let id = r.id.as_ref()?;
            let kind = ResourceKind::parse(&r.kind)?;
            let listed = inventory.iter().find(|(_, o)| &o.id == id);
            if listed.is_some_and(|(_, o)| o.tags.contains_key(tags::ENVIRONMENT_UID)) {
                // Listed as this environment's (already in `owned_by`) or another's.
                return None;
            }
            let observed = Observed {
                id: id.clone(),
                tags: BTreeMap::from([(tags::NAME.to_owned(), r.name.clone())]),
                ..Observed::default()
            };
            Some((kind, observed))
        })
        .collect()
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
