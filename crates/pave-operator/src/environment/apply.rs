//! Provisioning: guardrails → plan (pure) → bring each planned resource into existence
//! → status.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;
use kube::api::DynamicObject;
use kube::api::{Api, DeleteParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use pave_api::DeveloperEnvironment;
use pave_api::conditions::{
    self, GITOPS_HEALTHY, GITOPS_SYNCED, READY, RECOVERABLE, SYNCED, Status, TERMINAL,
};
use pave_api::environment::ENVIRONMENT_UID_LABEL;
use pave_api::environment::{Phase, SecretRef};
use pave_cloud::policy::{self, RefusalReason};
use pave_cloud::{Observed, ResourceKind};
use tracing::{info, warn};

use super::gitops::{self, APPLICATION_NOT_READY};
use super::secret::SecretOutcome;
use super::teardown::{Beyond, remove_unplanned};
use super::{
    CIDR_TAG, Cloud, PENDING_POLL, Progress, cidr_for, connection_secret, fill_connection_secret,
    policy_context, request_of,
};
use crate::controller::{self, Context};
use crate::error::Error;

/// How often an environment refused for a foreign connection secret looks again.
const FOREIGN_SECRET_RECHECK: Duration = Duration::from_secs(30);

pub(super) async fn apply(
    env: &DeveloperEnvironment,
    ctx: &Context,
    cloud: &Cloud,
) -> Result<Action, Error> {
    let mut progress = Progress::new(env, ctx);
    let request = request_of(env);
    let now = Timestamp::now();

    // Guardrails and tenancy, before anything exists in the cloud.
    let policy_context = policy_context(env, ctx, cloud).await?;
    let refusals = policy::check(&request, &cloud.config, &policy_context);
    if let Some(first) = refusals.first() {
        let reason = match first.reason {
            RefusalReason::PolicyViolation => "PolicyViolation",
            RefusalReason::Forbidden => "Forbidden",
            RefusalReason::InvalidSpec => "InvalidSpec",
        };
        let message = refusals
            .iter()
            .map(|r| r.message.clone())
            .collect::<Vec<_>>()
            .join("; ");
        // Once per generation: a refusal waits for a change.
        ctx.warning(env, reason, message.clone()).await;
        progress.condition(READY, Status::False, reason, message);
        if progress.status.resources.is_empty() {
            progress.status.phase = Some(Phase::Failed);
        }
        progress.save().await?;
        // A Forbidden refusal may end without a spec change (the namespace in the way
        // deleted, consent given on it): looked at again now and then. Guardrails
        // change only with the spec or the operator's configuration.
        if refusals
            .iter()
            .any(|r| r.reason == RefusalReason::Forbidden)
        {
            return Ok(Action::requeue(FOREIGN_SECRET_RECHECK));
        }
        return Ok(Action::await_change());
    }

    // TTL: an expired environment deletes itself, by its own policies.
    let mut requeue: Option<Duration> = None;
    progress.status.expires_at = None;
    let created = env
        .metadata
        .creation_timestamp
        .as_ref()
        .map_or(now, |t| t.0);
    // A ttl too long for a timestamp means no expiry, never an immediate one.
    let expires = policy::effective_ttl(env.spec.ttl.as_deref(), &cloud.config)
        .and_then(|ttl| SignedDuration::try_from(ttl).ok())
        .and_then(|ttl| created.checked_add(ttl).ok());
    if let Some(expires) = expires {
        progress.status.expires_at = Some(Time(expires));
        if now >= expires {
            progress.save().await?;
            info!(environment = %controller::describe(env), "ttl ran out; deleting");
            // The Event outlives the environment: whoever finds it gone learns why.
            let note = format!("its ttl ran out at {expires}; deleting it");
            ctx.event(env, "Expired", note).await;
            let api =
                Api::<DeveloperEnvironment>::namespaced(ctx.client.clone(), &request.namespace);
            api.delete(&env.name_any(), &DeleteParams::default())
                .await
                .map_err(|source| Error::Kube {
                    action: "delete the expired environment",
                    source,
                })?;
            return Ok(Action::await_change());
        }
        requeue = Some(Duration::try_from(expires.duration_since(now)).unwrap_or(PENDING_POLL));
    }

    // A Ready environment whose spec was already acted on, and which the drift check
    // has not flagged, needs nothing from the cloud: at rest, nothing is polled per
    // environment (the drift check lists each region once per resync instead).
    let spec_changed = env.metadata.generation != progress.written.observed_generation;
    let drifted = cloud
        .drifted
        .lock()
        .expect("not poisoned")
        .remove(&request.uid);
    // The cloud is at rest when the Ready condition says so for this generation: True,
    // or False only because the Argo CD Application is not Synced and Healthy (set
    // only once every cloud resource is ready). Not the phase alone: a spec change
    // whose new instance is still pending, or a retry after a Recoverable error, must
    // be followed through, not taken for rest.
    let settled = conditions::find(&progress.written.conditions, READY).is_some_and(|c| {
        c.observed_generation == env.metadata.generation
            && (c.status == "True" || c.reason == APPLICATION_NOT_READY)
    });
    if settled && !spec_changed && !drifted {
        cloud.track(&request.region);
        // Only the Application may have moved: mirror it, touch no cloud.
        return finish(&mut progress, cloud, requeue, false).await;
    }
    // Otherwise look at the cloud for every resource, except those status already
    // records as ready while provisioning goes on: they were created moments ago.
    let trust_status = !spec_changed && !drifted;

    let aws = cloud.client(&request.region).await;
    let cidr = match cidr_for(env, cloud).await {
        Ok(cidr) => cidr,
        Err(error) => return progress.failed(error).await,
    };
    let mut plan = match pave_cloud::plan::plan(&request, &cloud.config, &cidr, &cloud.cluster_id) {
        Ok(plan) => plan,
        Err(error) => {
            progress.condition(READY, Status::False, "TerminalError", error.to_string());
            progress.condition(TERMINAL, Status::True, "InvalidPlan", error.to_string());
            progress.status.phase = Some(Phase::Failed);
            progress.save().await?;
            return Ok(Action::await_change());
        }
    };
    plan.tags.insert(CIDR_TAG.to_owned(), cidr);
    // Provisioning until first Ready; Updating while a later spec change is carried
    // out (phase Ready stays only for drift corrections, which change nothing asked).
    let phase = progress.status.phase;
    if phase.is_none()
        || phase == Some(Phase::Failed)
        || (spec_changed && phase == Some(Phase::Ready))
    {
        progress.status.phase = Some(if progress.status.resources.is_empty() {
            Phase::Provisioning
        } else {
            Phase::Updating
        });
    }
    progress.clear(TERMINAL);

    // The database password goes into the connection secret before the database exists.
    let secret = match connection_secret(env, ctx, &plan).await? {
        SecretOutcome::Ready(secret) => secret,
        SecretOutcome::Foreign(which) => {
            let message = format!(
                "Secret {which} exists and was not created by pave for this environment, so \
                 pave will neither read its password nor write into it: delete or rename that \
                 Secret, or choose another writeConnectionSecretsToNamespace"
            );
            warn!(environment = %controller::describe(env), %which, "refused: the connection secret's name is taken");
            ctx.warning(env, "Forbidden", message.clone()).await;
            progress.condition(READY, Status::False, "Forbidden", message);
            if progress.status.resources.is_empty() {
                progress.status.phase = Some(Phase::Failed);
            }
            progress.save().await?;
            // No watch on Secrets: look again now and then, so removing the Secret
            // in the way is enough.
            return Ok(Action::requeue(FOREIGN_SECRET_RECHECK));
        }
    };
    progress.status.connection_secret_ref = Some(SecretRef {
        name: secret.name.clone(),
        namespace: secret.namespace.clone(),
    });

    let mut ids: BTreeMap<String, String> = BTreeMap::new();
    let mut pending = Vec::new();
    let mut database: Option<Observed> = None;
    for desired in &plan.resources {
        // What status says of it: known means it has an id; recorded, also ready.
        let known_as = progress
            .written
            .resources
            .iter()
            .find(|r| r.name == desired.name && r.id.is_some());
        let known = known_as.is_some();
        let recorded = known_as.filter(|r| {
            r.state
                .as_deref()
                .is_some_and(|s| is_ready(desired.kind, s))
        });
        // The database is always looked at: its endpoint fills the secret.
        let from_status =
            trust_status && recorded.is_some() && desired.kind != ResourceKind::DbInstance;
        let found = match recorded {
            Some(r) if from_status => Ok(Some(Observed {
                id: r.id.clone().unwrap_or_default(),
                arn: r.arn.clone(),
                state: r.state.clone().unwrap_or_default(),
                ..Default::default()
            })),
            // Never created as far as status knows: `create` looks it up by tag before
            // creating (a crash may have come between a create and its status write),
            // so looking here as well would only ask the cloud the same thing twice.
            _ if !known => Ok(None),
            _ => aws.find(desired, &request.uid, &ids).await,
        };
        let found = match found {
            Ok(found) => found,
            Err(error) => return progress.failed(error).await,
        };
        let observed = match found {
            Some(observed) if from_status => observed,
            Some(observed) => {
                match aws.reconcile(desired, &observed, &plan.tags).await {
                    Ok(changes) if !changes.is_empty() => {
                        info!(environment = %controller::describe(env), resource = %desired.name, ?changes, "brought in line with the spec");
                        let note =
                            format!("{} {}: {}", desired.kind, desired.name, changes.join(", "));
                        let action = format!("Correct{}/{}", desired.kind, desired.name);
                        ctx.event_on(env, "DriftCorrected", &action, note).await;
                        progress.status.last_drift_check = Some(Time(Timestamp::now()));
                    }
                    Ok(_) => {}
                    Err(error) => return progress.failed(error).await,
                }
                observed
            }
            None => {
                // It had an id before: it was deleted or terminated behind pave's back.
                let lost = progress
                    .status
                    .resources
                    .iter()
                    .any(|r| r.name == desired.name && r.id.is_some());
                if lost && trust_status {
                    // What status records as there may be gone as well (the region
                    // lost its state, someone cleaned the account): every resource is
                    // looked at before anything is created again.
                    cloud
                        .drifted
                        .lock()
                        .expect("not poisoned")
                        .insert(request.uid.clone());
                    return Err(Error::Pending(format!(
                        "{} {} of {} was gone from the cloud; looking at every resource",
                        desired.kind,
                        desired.name,
                        controller::describe(env)
                    )));
                }
                if lost {
                    let note = format!(
                        "{} {} was gone from the cloud; creating it again",
                        desired.kind, desired.name
                    );
                    let action = format!("Recreate{}/{}", desired.kind, desired.name);
                    ctx.event_on(env, "DriftCorrected", &action, note).await;
                    progress.status.last_drift_check = Some(Time(Timestamp::now()));
                }
                let password =
                    (desired.kind == ResourceKind::DbInstance).then_some(secret.password.as_str());
                match aws.create(desired, &plan.tags, &ids, password).await {
                    Ok(observed) => {
                        info!(environment = %controller::describe(env), resource = %desired.name, id = %observed.id, "created (or found, after a crash)");
                        // Recorded at once: a crash after this line loses nothing.
                        progress.resource(desired.kind, &desired.name, Some(&observed), None);
                        progress.save().await?;
                        observed
                    }
                    Err(error) => {
                        progress.resource(
                            desired.kind,
                            &desired.name,
                            None,
                            Some(error.to_string()),
                        );
                        return progress.failed(error).await;
                    }
                }
            }
        };
        if !is_ready(desired.kind, &observed.state) {
            pending.push(format!(
                "{} {} is {}",
                desired.kind, desired.name, observed.state
            ));
        }
        if desired.kind == ResourceKind::DbInstance {
            database = Some(observed.clone());
        }
        ids.insert(desired.name.clone(), observed.id.clone());
        progress.resource(desired.kind, &desired.name, Some(&observed), None);
    }
    // What the cloud has beyond the plan (clusterSize went down, dbSize was removed);
    // only a spec change or drift can leave any, so only then is the region listed.
    let planned: BTreeSet<&str> = plan.resources.iter().map(|d| d.name.as_str()).collect();
    let beyond = if trust_status {
        Beyond::default()
    } else {
        match cloud.inventory(&request.region).await {
            Ok(inventory) => match remove_unplanned(env, &aws, &inventory, &planned).await {
                Ok(beyond) => beyond,
                Err(error) => return progress.failed(error).await,
            },
            Err(error) => return progress.failed(error).await,
        }
    };
    pending.extend(beyond.deleting.iter().cloned());
    progress.status.resources.retain(|r| {
        planned.contains(r.name.as_str()) || beyond.kept.iter().any(|(_, name)| *name == r.name)
    });
    progress.status.resources.sort_by_key(|r| {
        plan.resources
            .iter()
            .position(|d| d.name == r.name)
            .unwrap_or(usize::MAX)
    });

    if let Some(database) = &database {
        fill_connection_secret(ctx, &secret, database, &plan, &ids).await?;
    }
    progress.clear(RECOVERABLE);
    if beyond.kept.is_empty() {
        progress.condition(SYNCED, Status::True, "Synced", "the cloud matches the spec");
    } else {
        let kept: Vec<String> = beyond
            .kept
            .iter()
            .map(|(kind, name)| format!("{kind} {name}"))
            .collect();
        let message = format!(
            "dbSize was removed, but deletionPolicy is Orphan, so pave keeps the database and \
             what it needs ({}): set dbSize again to use it, or set deletionPolicy: Delete to \
             have it deleted",
            kept.join(", ")
        );
        progress.condition(SYNCED, Status::False, "DatabaseKept", message);
    }
    if !pending.is_empty() {
        if env.spec.gitops.is_some() && progress.status.gitops.is_none() {
            for type_ in [GITOPS_SYNCED, GITOPS_HEALTHY] {
                progress.condition(
                    type_,
                    Status::Unknown,
                    "WaitingForCloud",
                    "the Argo CD Application is created once every cloud resource is ready",
                );
            }
        }
        progress.condition(READY, Status::False, "Provisioning", pending.join("; "));
        progress.save().await?;
        // Looked at again with a backoff that restarts whenever the set of pending
        // resources changes (controller::error_policy): a database that takes ten
        // minutes costs a few dozen describes, not two hundred.
        return Err(Error::Pending(format!(
            "{}: {}",
            controller::describe(env),
            pending.join("; ")
        )));
    }
    finish(&mut progress, cloud, requeue, true).await
}

/// Every cloud resource is ready: the Argo CD Application (created, mirrored, or
/// removed when the spec no longer asks for one), then Ready, then status.
/// `cloud_ran`: this reconcile looked at the cloud (so the connection secret may have
/// changed, and its copy in the destination namespace is refreshed).
async fn finish(
    progress: &mut Progress<'_>,
    cloud: &Cloud,
    requeue: Option<Duration>,
    cloud_ran: bool,
) -> Result<Action, Error> {
    let env = progress.env;
    let available = format!(
        "{} cloud resources available",
        progress.status.resources.len()
    );
    let outcome = match gitops_step(progress, cloud, cloud_ran).await {
        Ok(outcome) => outcome,
        Err(error) => {
            // The cloud stays at rest: the retry redoes only this step.
            let message = error.to_string();
            progress.condition(READY, Status::False, APPLICATION_NOT_READY, message.clone());
            progress.condition(RECOVERABLE, Status::True, "ArgoCD", message.clone());
            progress.save().await?;
            progress.ctx.warning(env, "ArgoCD", message).await;
            return Err(error);
        }
    };
    progress.clear(RECOVERABLE);
    let mut action = requeue.map_or_else(Action::await_change, Action::requeue);
    match outcome {
        GitOps::Off => {
            progress.status.phase = Some(Phase::Ready);
            progress.condition(READY, Status::True, "Available", available);
        }
        GitOps::Ready(line) => {
            progress.status.phase = Some(Phase::Ready);
            progress.condition(
                READY,
                Status::True,
                "Available",
                format!("{available}; {line}"),
            );
        }
        // Argo CD's own pace: the watch on Applications brings the next change.
        GitOps::NotReady(line) => {
            progress.condition(
                READY,
                Status::False,
                APPLICATION_NOT_READY,
                format!("{available}; {line}"),
            );
        }
        // A namespace being deleted has no watch here: looked at again soon.
        GitOps::Removing(line) => {
            progress.condition(
                READY,
                Status::False,
                APPLICATION_NOT_READY,
                format!("{available}; {line}"),
            );
            action = Action::requeue(PENDING_POLL);
        }
    }
    progress.save().await?;
    Ok(action)
}

/// Where the environment's Argo CD Application stands after [`gitops_step`].
enum GitOps {
    /// The spec asks for none, and none is left.
    Off,
    /// Synced and Healthy; the line says at which revision.
    Ready(String),
    /// Not (yet) Synced and Healthy, or in the way; the line says why.
    NotReady(String),
    /// An Application no longer wanted (or moved) is still being removed.
    Removing(String),
}

/// Brings the Application in line with `spec.gitops` and mirrors Argo CD's view of it
/// into status.
async fn gitops_step(
    progress: &mut Progress<'_>,
    cloud: &Cloud,
    cloud_ran: bool,
) -> Result<GitOps, Error> {
    let env = progress.env;
    let ctx = progress.ctx;
    let config = &cloud.config;
    let namespace = env.namespace().unwrap_or_default();
    let name = gitops::application_name(&namespace, &env.name_any());
    let shown = format!("{}/{name}", config.gitops.namespace);
    let live = cloud.applications.get(
        &ObjectRef::new_with(&name, gitops::application_resource())
            .within(&config.gitops.namespace),
    );
    let uid = super::uid_of(env);
    let ours = |app: &DynamicObject| app.labels().get(ENVIRONMENT_UID_LABEL) == Some(&uid);
    let wanted = env.spec.gitops.as_ref();
    let destination = wanted.map(|g| gitops::destination_of(env, g));
    let recorded = progress
        .status
        .gitops
        .as_ref()
        .and_then(|g| g.destination_namespace.clone());

    // An Application the spec no longer asks for, or one whose destination moved, is
    // removed (with what it deployed and the namespace pave made) before anything new.
    let moved = wanted.is_some() && recorded.is_some() && recorded != destination;
    let unwanted =
        wanted.is_none() && (progress.status.gitops.is_some() || live.as_deref().is_some_and(ours));
    if moved || unwanted {
        match gitops::remove(env, ctx, config, recorded.as_deref(), true).await? {
            gitops::Removal::Waiting(line) => return Ok(GitOps::Removing(line)),
            gitops::Removal::Done => {
                info!(environment = %controller::describe(env), application = %shown, "Argo CD Application removed");
                progress.status.gitops = None;
                progress.clear(GITOPS_SYNCED);
                progress.clear(GITOPS_HEALTHY);
            }
        }
    }
    let (Some(gitops_spec), Some(destination)) = (wanted, destination) else {
        return Ok(GitOps::Off);
    };
    let live = match live {
        Some(app) if !ours(&app) => {
            let line = if app.metadata.deletion_timestamp.is_some() {
                format!("an earlier Application {shown} is still being deleted")
            } else {
                format!(
                    "Application {shown} exists and was not created by pave for this environment, so pave leaves it alone: delete it, or give this environment another name"
                )
            };
            return Ok(GitOps::NotReady(line));
        }
        other => other,
    };
    if cloud_ran || live.is_none() {
        gitops::prepare_destination(env, ctx, &destination).await?;
    }
    let desired = gitops::desired_application(env, gitops_spec, config);
    let object = gitops::apply_application(ctx, config, &desired, live.as_deref()).await?;
    if live.is_none() {
        info!(environment = %controller::describe(env), application = %shown, "Argo CD Application applied");
    }
    let mirror = gitops::mirror(&shown, &destination, &object);
    let argo = mirror.summary();
    let at = mirror.status.revision.as_deref().unwrap_or("?");
    let views = [
        (
            GITOPS_SYNCED,
            mirror.synced,
            "Synced",
            &mirror.status.sync,
            format!("Application {shown} is synced to revision {at}"),
        ),
        (
            GITOPS_HEALTHY,
            mirror.healthy,
            "Healthy",
            &mirror.status.health,
            format!("Application {shown} is healthy"),
        ),
    ];
    for (type_, good, good_reason, argo_says, good_message) in views {
        if good {
            progress.condition(type_, Status::True, good_reason, good_message);
        } else {
            // Unknown until Argo CD has looked at the Application at all.
            let status = if mirror.reported() {
                Status::False
            } else {
                Status::Unknown
            };
            let reason = argo_says.clone().unwrap_or_else(|| "Pending".to_owned());
            progress.condition(type_, status, &reason, argo.clone());
        }
    }
    progress.status.gitops = Some(mirror.status.clone());
    if mirror.synced && mirror.healthy {
        let at = mirror.status.revision.as_deref().unwrap_or("?");
        Ok(GitOps::Ready(format!(
            "Application {shown} is Synced and Healthy at revision {at}"
        )))
    } else {
        Ok(GitOps::NotReady(argo))
    }
}

/// Whether a resource in this cloud state is usable.
pub(super) fn is_ready(kind: ResourceKind, state: &str) -> bool {
    match kind {
        ResourceKind::DbInstance => state == "available",
        ResourceKind::Instance => state == "running",
        _ => matches!(state, "available" | "Complete" | "" | "created"),
    }
}
