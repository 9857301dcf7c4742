//! The environment controller (field manager `pave-environments`): provisions a
//! DeveloperEnvironment's VPC, subnets, security groups, database and instances on
//! AWS, keeps them in line with the spec, and tears them down when it is deleted.
//!
//! A reconcile is a pipeline: read the spec → check guardrails and tenancy (pure,
//! `pave_cloud::policy`) → plan (pure, `pave_cloud::plan`) → bring each planned
//! resource into existence in order, recording its id in status as soon as the cloud
//! gives one → write status. Every step is safe to repeat after a crash: resources are
//! found by their deterministic name tag before anything is created, instances carry a
//! client token, and the database password is in the connection secret before the
//! database exists.
//!
//! Deletion is driven by a finalizer: `Foreground` keeps the object in phase
//! Deleting, removing resources in reverse order and waiting for each kind to be gone;
//! `Background` releases the object at once and wakes the sweeper, which deletes
//! tagged resources whose environment no longer exists (and so also repairs leaks
//! after a crash); `Orphan` tags the resources so the sweeper leaves them alone.
//!
//! While the cloud works (an instance starting, a database creating or being deleted)
//! the environment is looked at again with a backoff (1, 2, 4, 8, then every 15 s),
//! which starts over when something moved.
//!
//! At rest nothing is polled per environment: the drift check lists each region once
//! per resync interval (one describe per resource type) and reconciles only the
//! environments whose resources drifted. Every listing of a region (drift check,
//! sweeper, deletions, the first address-block allocation) goes through one shared
//! listing at a time, so 200 environments deleted at once share listings instead of
//! making one each. `status.lastDriftCheck` moves when a
//! reconcile corrects drift (each correction is also an Event), not on every resync:
//! a resync that finds nothing writes nothing.
//!
//! One file per concern, in the order a reconcile meets them:
//! - `prerequisites`: the cluster id and AWS credentials, waited for at start;
//! - `guardrails`: the request as the policy check sees it, and the cluster facts it needs;
//! - `addresses`: the environment's address block;
//! - `secret`: the connection secret (password before the database, endpoint after);
//! - `apply`: provisioning, the pipeline itself; `progress`: the status it builds;
//! - `teardown`: deletion under the finalizer; `sweeper`: what no environment owns;
//! - `gitops`: the Argo CD Application, created once the cloud is ready and removed
//!   before it is torn down;
//! - `drift`: the per-resync comparison of the cloud with each plan;
//! - `cloud`: AWS clients and the shared per-region inventory.

mod addresses;
mod apply;
mod cloud;
mod drift;
pub mod gitops;
mod guardrails;
mod prerequisites;
mod progress;
mod secret;
mod sweeper;
mod teardown;

use addresses::{CIDR_TAG, cidr_for};
use apply::apply;
use cloud::Cloud;
use drift::drift_check;
use guardrails::{policy_context, request_of};
use progress::Progress;
use secret::{connection_secret, fill_connection_secret};
use sweeper::sweeper;
use teardown::{Teardown, cleanup, owned_by, teardown};

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::channel::mpsc;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::ResourceExt;
use kube::api::{Api, DynamicObject};
use kube::core::DeserializeGuard;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use pave_api::DeveloperEnvironment;
use pave_api::environment::Phase;
use pave_cloud::config::OperatorConfig;
use tokio::sync::{Mutex, Notify};

use crate::controller::{self, Context, Observed as ObservedStatus, Shared};
use crate::error::Error;
use crate::metrics::EnvironmentCensus;

pub const NAME: &str = "pave-environments";

/// The kind's resource, as RBAC and messages name it.
pub const RESOURCE: &str = "developerenvironments.platform.pave.dev";

pub use pave_api::environment::{ABANDON, ACCEPT_SECRETS, FINALIZER};

/// How many environments are reconciled at once.
const CONCURRENCY: u16 = 16;

/// How soon the sweeper looks again at resources still being deleted.
const PENDING_POLL: Duration = Duration::from_secs(3);

impl ObservedStatus for DeveloperEnvironment {
    fn observed(&self) -> (Option<i64>, &[Condition]) {
        self.status
            .as_ref()
            .map_or((None, &[]), |s| (s.observed_generation, &s.conditions))
    }
}

/// The cluster id once it and AWS credentials are settled (see `prerequisites`);
/// `None` when the stop signal came first.
pub async fn prerequisites(shared: &Shared, cluster_id: Option<String>) -> Option<String> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").ok();
    prerequisites::prerequisites(shared, cluster_id, endpoint.as_deref()).await
}

/// Runs the controller, its sweeper and its drift check until the stop signal, once
/// its [`prerequisites`] are settled: until then the catalog and scorecards work and
/// environments wait.
pub async fn run(shared: Shared, config: Arc<OperatorConfig>, cluster_id: Option<String>) {
    let Some(cluster_id) = prerequisites(&shared, cluster_id).await else {
        return;
    };
    let endpoint = std::env::var("AWS_ENDPOINT_URL").ok();
    let (reader, writer) = reflector::store::<DeserializeGuard<DeveloperEnvironment>>();
    let events = watcher(
        Api::<DeserializeGuard<DeveloperEnvironment>>::all(shared.client.clone()),
        controller::watch_config(),
    )
    .default_backoff();
    shared.metrics.count_environments({
        let reader = reader.clone();
        move |census| count(&reader, census)
    });
    let environments = controller::report_watch(events, shared.readiness.clone(), RESOURCE)
        .reflect(writer)
        .touched_objects();
    // Argo CD's Applications of pave's environments, watched (not polled): a change
    // of sync or health reconciles the environment, which mirrors it from this store.
    // Without Argo CD's CRD the watch retries with backoff and the store stays empty.
    let application = gitops::application_resource();
    let application_writer = reflector::store::Writer::<DynamicObject>::new(application.clone());
    let applications = application_writer.as_reader();
    let application_changes =
        watcher(
            Api::<DynamicObject>::namespaced_with(
                shared.client.clone(),
                &config.gitops.namespace,
                &application,
            ),
            watcher::Config::default().labels(pave_api::environment::ENVIRONMENT_UID_LABEL),
        )
        .default_backoff()
        .reflect(application_writer)
        .touched_objects()
        .filter_map(|touched| {
            std::future::ready(touched.ok().and_then(|app| {
                gitops::environment_of::<DeserializeGuard<DeveloperEnvironment>>(&app)
            }))
        });
    let cloud = Arc::new(Cloud {
        config,
        cluster_id,
        endpoint,
        clients: Mutex::default(),
        calls: shared.metrics.aws_calls(),
        inventories: Mutex::default(),
        cidrs: Mutex::default(),
        regions: std::sync::Mutex::default(),
        sweep_now: Notify::new(),
        drifted: std::sync::Mutex::default(),
        store: reader.clone(),
        applications,
        sweep: std::sync::Mutex::default(),
        kube: shared.client.clone(),
    });
    let (drifted_tx, drifted) =
        mpsc::unbounded::<ObjectRef<DeserializeGuard<DeveloperEnvironment>>>();
    // Bounded, so a burst of new environments does not flood the cloud's API.
    let queue = shared.metrics.queue(NAME);
    let controller = Controller::for_stream(queue.track(environments), reader)
        .reconcile_on(queue.track_refs(drifted))
        .reconcile_on(queue.track_refs(application_changes))
        .with_config(kube::runtime::controller::Config::default().concurrency(CONCURRENCY));
    let reconcile = {
        let cloud = cloud.clone();
        move |obj: Arc<DeserializeGuard<DeveloperEnvironment>>, ctx: Arc<Context>| {
            let cloud = cloud.clone();
            async move { reconcile(obj, ctx, cloud).await }
        }
    };
    let background = async move {
        tokio::select! {
            () = sweeper(cloud.clone()) => {}
            () = drift_check(cloud.clone(), drifted_tx) => {}
        }
    };
    controller::run_with_background(shared, NAME, controller, reconcile, background).await;
}

/// Environments by phase and their cloud resources by kind and state, as the statuses
/// pave wrote show them: the metrics' census at each scrape.
fn count(store: &Store<DeserializeGuard<DeveloperEnvironment>>, census: &EnvironmentCensus<'_>) {
    for guard in store.state() {
        let Ok(env) = &guard.0 else { continue };
        let status = env.status.as_ref();
        census.environment(
            status
                .and_then(|s| s.phase)
                .map_or("Pending", Phase::as_str),
        );
        for resource in status.map_or(&[][..], |s| &s.resources[..]) {
            census.resource(
                &resource.kind,
                resource.state.as_deref().unwrap_or("unknown"),
            );
        }
    }
}

async fn reconcile(
    obj: Arc<DeserializeGuard<DeveloperEnvironment>>,
    ctx: Arc<Context>,
    cloud: Arc<Cloud>,
) -> Result<Action, Error> {
    let environment = ctx.accept(&obj).await?;
    let namespace = environment.namespace().unwrap_or_default();
    let api = Api::<DeveloperEnvironment>::namespaced(ctx.client.clone(), &namespace);
    finalizer(
        &api,
        FINALIZER,
        Arc::new(environment.clone()),
        |event| async {
            match event {
                Finalizer::Apply(env) => apply(&env, &ctx, &cloud).await,
                Finalizer::Cleanup(env) => cleanup(&env, &ctx, &cloud).await,
            }
        },
    )
    .await
    .or_else(finalizer_outcome)
}

/// What a failure of kube-runtime's finalizer helper means for the reconcile.
///
/// The environment being gone when its finalizer is added or removed is success: a
/// reconcile can start from a store that has not yet seen the deletion that the
/// previous reconcile's removal of the finalizer completed, and it then finds nothing
/// left to do. Nothing else is waited for: the deletion event ends the object's
/// reconciles.
fn finalizer_outcome(error: kube::runtime::finalizer::Error<Error>) -> Result<Action, Error> {
    use kube::runtime::finalizer::Error as Failed;
    match error {
        Failed::ApplyFailed(e) | Failed::CleanupFailed(e) => Err(e),
        Failed::AddFinalizer(kube::Error::Api(status))
        | Failed::RemoveFinalizer(kube::Error::Api(status))
            if status.is_not_found() =>
        {
            Ok(Action::await_change())
        }
        other => Err(Error::Finalizer(other.to_string())),
    }
}

/// The environment's UID; the API server always sets it.
fn uid_of(env: &DeveloperEnvironment) -> String {
    env.uid().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;
    use kube::runtime::finalizer::Error as Failed;

    fn api_error(code: u16, reason: &str) -> kube::Error {
        kube::Error::Api(Box::new(Status::failure("refused", reason).with_code(code)))
    }

    #[test]
    fn an_environment_already_gone_when_its_finalizer_is_removed_is_done() {
        let outcome = finalizer_outcome(Failed::RemoveFinalizer(api_error(404, "NotFound")));
        assert_eq!(outcome.unwrap(), Action::await_change());
        let outcome = finalizer_outcome(Failed::AddFinalizer(api_error(404, "NotFound")));
        assert_eq!(outcome.unwrap(), Action::await_change());
    }

    #[test]
    fn other_finalizer_failures_are_retried_errors() {
        let outcome = finalizer_outcome(Failed::RemoveFinalizer(api_error(422, "Invalid")));
        assert!(matches!(outcome, Err(Error::Finalizer(_))), "{outcome:?}");
        let outcome = finalizer_outcome(Failed::CleanupFailed(Error::Pending("busy".into())));
        assert!(matches!(outcome, Err(Error::Pending(_))), "{outcome:?}");
    }
}
