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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::channel::mpsc;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, OwnerReference, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::core::DeserializeGuard;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use pave_api::DeveloperEnvironment;
use pave_api::conditions::{self, READY, RECOVERABLE, SYNCED, Status, TERMINAL};
use pave_api::environment::{
    CloudResourceStatus, CompositeDeletePolicy, DeletionPolicy, DeveloperEnvironmentStatus, Phase,
    SecretRef,
};
use pave_cloud::aws::{Aws, attr};
use pave_cloud::config::OperatorConfig;
use pave_cloud::model::tags;
use pave_cloud::policy::{self, PolicyContext, RefusalReason};
use pave_cloud::{CloudError, Observed, Plan, ResourceKind};
use tokio::sync::{Mutex, Notify};
use tracing::{info, warn};

use crate::controller::{self, Context, Observed as ObservedStatus, Shared};
use crate::error::Error;

pub const NAME: &str = "pave-environments";

/// The finalizer that keeps an environment until its cloud resources are handled.
pub const FINALIZER: &str = "platform.pave.dev/cloud-resources";

/// The annotation a namespace sets to accept connection secrets from others.
pub const ACCEPT_SECRETS: &str = "platform.pave.dev/accept-connection-secrets-from";

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

/// What every environment reconcile shares.
pub struct Cloud {
    config: Arc<OperatorConfig>,
    cluster_id: String,
    endpoint: Option<String>,
    clients: Mutex<HashMap<String, Arc<Aws>>>,
    /// Each region's latest inventory (see [`Cloud::inventory`]).
    inventories: Mutex<HashMap<String, Arc<Mutex<Option<Listing>>>>>,
    /// The address blocks in use, by region and environment UID (see `cidr_for`).
    cidrs: Mutex<HashMap<String, BTreeMap<String, String>>>,
    /// Regions that have (or had) environments: where the sweeper and drift check look.
    regions: std::sync::Mutex<BTreeSet<String>>,
    /// Wakes the sweeper (a Background deletion wants it now).
    sweep_now: Notify,
    /// Environments (by UID) the drift check found out of line: their next reconcile
    /// looks at the cloud again instead of trusting status.
    drifted: std::sync::Mutex<BTreeSet<String>>,
    store: Store<DeserializeGuard<DeveloperEnvironment>>,
}

/// A region's cloud resources of this cluster, by kind in creation order.
type Inventory = Arc<Vec<(ResourceKind, Observed)>>;

/// One inventory of a region, and when it was asked of the cloud.
struct Listing {
    started: Instant,
    result: Result<Inventory, CloudError>,
}

impl Cloud {
    async fn client(&self, region: &str) -> Arc<Aws> {
        let mut clients = self.clients.lock().await;
        if let Some(client) = clients.get(region) {
            return client.clone();
        }
        let client = Arc::new(Aws::connect(region, self.endpoint.as_deref()).await);
        clients.insert(region.to_owned(), client.clone());
        self.regions
            .lock()
            .expect("not poisoned")
            .insert(region.to_owned());
        client
    }

    /// Every resource of this cluster in `region` (see [`Aws::inventory`]), as listed
    /// by a listing that started no earlier than this call: as fresh as a listing of
    /// one's own, but shared. Listings of a region run one at a time, and everyone who
    /// asked while one was running shares the next; so 200 environments being deleted
    /// at once cost one listing per round, not one each, and moto (which lists in time
    /// proportional to the account's size) stays responsive.
    async fn inventory(&self, region: &str) -> Result<Inventory, CloudError> {
        let asked = Instant::now();
        let slot = self
            .inventories
            .lock()
            .await
            .entry(region.to_owned())
            .or_default()
            .clone();
        let mut latest = slot.lock().await;
        if let Some(listing) = latest.as_ref()
            && listing.started >= asked
        {
            return listing.result.clone();
        }
        let started = Instant::now();
        let aws = self.client(region).await;
        let result = aws.inventory(&self.cluster_id).await.map(Arc::new);
        *latest = Some(Listing {
            started,
            result: result.clone(),
        });
        result
    }

    /// Every environment the cluster has, by UID.
    fn environment_uids(&self) -> BTreeSet<String> {
        self.store
            .state()
            .iter()
            .filter_map(|g| g.0.as_ref().ok().and_then(|e| e.uid()))
            .collect()
    }
}

pub async fn run(shared: Shared, config: Arc<OperatorConfig>, cluster_id: String) {
    let (reader, writer) = reflector::store::<DeserializeGuard<DeveloperEnvironment>>();
    let environments = watcher(
        Api::<DeserializeGuard<DeveloperEnvironment>>::all(shared.client.clone()),
        watcher::Config::default().any_semantic(),
    )
    .default_backoff()
    .reflect(writer)
    .touched_objects();
    let cloud = Arc::new(Cloud {
        config,
        cluster_id,
        endpoint: std::env::var("AWS_ENDPOINT_URL").ok(),
        clients: Mutex::default(),
        inventories: Mutex::default(),
        cidrs: Mutex::default(),
        regions: std::sync::Mutex::default(),
        sweep_now: Notify::new(),
        drifted: std::sync::Mutex::default(),
        store: reader.clone(),
    });
    let (drifted_tx, drifted) =
        mpsc::unbounded::<ObjectRef<DeserializeGuard<DeveloperEnvironment>>>();
    // Bounded, so a burst of new environments does not flood the cloud's API.
    let controller = Controller::for_stream(environments, reader)
        .reconcile_on(drifted)
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
    .map_err(|e| match e {
        kube::runtime::finalizer::Error::ApplyFailed(e)
        | kube::runtime::finalizer::Error::CleanupFailed(e) => e,
        other => Error::Finalizer(other.to_string()),
    })
}

/// The environment's UID; the API server always sets it.
fn uid_of(env: &DeveloperEnvironment) -> String {
    env.uid().unwrap_or_default()
}

fn request_of(env: &DeveloperEnvironment) -> policy::EnvironmentRequest {
    let p = &env.spec.parameters;
    policy::EnvironmentRequest {
        namespace: env.namespace().unwrap_or_default(),
        name: env.name_any(),
        uid: uid_of(env),
        region: p.region.clone(),
        db_size: p.db_size.clone(),
        db_engine: match p.db_engine {
            pave_api::environment::DbEngine::Postgres => policy::DbEngine::Postgres,
            pave_api::environment::DbEngine::Mysql => policy::DbEngine::Mysql,
        },
        db_engine_version: p.db_engine_version.clone(),
        db_storage_gib: p.db_storage_gib,
        cluster_size: serde_json::to_value(p.cluster_size)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        ttl: env.spec.ttl.clone(),
        connection_secret_namespace: env.spec.write_connection_secrets_to_namespace.clone(),
        gitops: env.spec.gitops.as_ref().map(|g| policy::GitOpsRequest {
            repo_url: g.repo_url.clone(),
            project: g.project.clone(),
            destination_namespace: g.destination_namespace.clone(),
        }),
    }
}

/// The status being built during one reconcile, written whenever it says something
/// new (in particular right after each create, so ids are never lost).
struct Progress<'a> {
    env: &'a DeveloperEnvironment,
    ctx: &'a Context,
    written: DeveloperEnvironmentStatus,
    status: DeveloperEnvironmentStatus,
}

impl<'a> Progress<'a> {
    fn new(env: &'a DeveloperEnvironment, ctx: &'a Context) -> Progress<'a> {
        let current = env.status.clone().unwrap_or_default();
        Progress {
            env,
            ctx,
            written: current.clone(),
            status: current,
        }
    }

    fn condition(&mut self, type_: &str, status: Status, reason: &str, message: impl Into<String>) {
        let condition = conditions::new(
            type_,
            status,
            reason,
            message,
            self.env.meta().generation,
            Timestamp::now(),
        );
        conditions::set(&mut self.status.conditions, condition);
    }

    fn clear(&mut self, type_: &str) {
        conditions::remove(&mut self.status.conditions, type_);
    }

    fn resource(
        &mut self,
        desired_kind: ResourceKind,
        name: &str,
        observed: Option<&Observed>,
        message: Option<String>,
    ) {
        let entry = CloudResourceStatus {
            kind: desired_kind.as_str().to_owned(),
            name: name.to_owned(),
            id: observed.map(|o| o.id.clone()),
            arn: observed.and_then(|o| o.arn.clone()),
            state: observed.map(|o| o.state.clone()),
            message,
        };
        match self.status.resources.iter_mut().find(|r| r.name == name) {
            Some(existing) => *existing = entry,
            None => self.status.resources.push(entry),
        }
    }

    /// Writes the status if it changed since the last write.
    async fn save(&mut self) -> Result<(), Error> {
        self.status.observed_generation = self.env.meta().generation;
        if self.status == self.written {
            return Ok(());
        }
        let api = Api::<DeveloperEnvironment>::namespaced(
            self.ctx.client.clone(),
            &self.env.namespace().unwrap_or_default(),
        );
        self.ctx.apply_status(&api, self.env, &self.status).await?;
        self.written = self.status.clone();
        Ok(())
    }

    /// Records a cloud failure: Terminal waits for a new generation, Recoverable retries.
    async fn failed(&mut self, error: CloudError) -> Result<Action, Error> {
        self.condition(SYNCED, Status::False, "CloudError", error.to_string());
        self.condition(
            READY,
            Status::False,
            if error.is_terminal() {
                "TerminalError"
            } else {
                "RecoverableError"
            },
            error.to_string(),
        );
        if error.is_terminal() {
            self.condition(TERMINAL, Status::True, error.code(), error.to_string());
            self.clear(RECOVERABLE);
            self.status.phase = Some(Phase::Failed);
        } else {
            self.condition(RECOVERABLE, Status::True, error.code(), error.to_string());
            self.clear(TERMINAL);
        }
        self.save().await?;
        if error.is_terminal() {
            Ok(Action::await_change())
        } else {
            Err(Error::Cloud(error))
        }
    }
}

async fn apply(env: &DeveloperEnvironment, ctx: &Context, cloud: &Cloud) -> Result<Action, Error> {
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
        progress.condition(READY, Status::False, reason, message);
        if progress.status.resources.is_empty() {
            progress.status.phase = Some(Phase::Failed);
        }
        progress.save().await?;
        return Ok(Action::await_change());
    }

    // TTL: an expired environment deletes itself, by its own policies.
    let mut requeue: Option<Duration> = None;
    if let Some(ttl) = &env.spec.ttl {
        let created = env
            .metadata
            .creation_timestamp
            .as_ref()
            .map_or(now, |t| t.0);
        if let Ok(ttl) = pave_cloud::config::parse_duration(ttl) {
            let expires = created + SignedDuration::try_from(ttl).unwrap_or(SignedDuration::ZERO);
            progress.status.expires_at = Some(Time(expires));
            if now >= expires {
                progress.save().await?;
                info!(environment = %controller::describe(env), "ttl ran out; deleting");
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
    let ready = progress.written.phase == Some(Phase::Ready);
    if ready && !spec_changed && !drifted {
        cloud
            .regions
            .lock()
            .expect("not poisoned")
            .insert(request.region.clone());
        progress.save().await?;
        return Ok(requeue.map_or_else(Action::await_change, Action::requeue));
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
    if progress.status.phase.is_none() || progress.status.phase == Some(Phase::Failed) {
        progress.status.phase = Some(if progress.status.resources.is_empty() {
            Phase::Provisioning
        } else {
            Phase::Updating
        });
    }
    progress.clear(TERMINAL);

    // The database password goes into the connection secret before the database exists.
    let secret = match connection_secret(env, ctx, &plan).await {
        Ok(secret) => secret,
        Err(error) => return Err(error),
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
                        ctx.event(env, "DriftCorrected", note).await;
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
                if lost {
                    let note = format!(
                        "{} {} was gone from the cloud; creating it again",
                        desired.kind, desired.name
                    );
                    ctx.event(env, "DriftCorrected", note).await;
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
    // Instances beyond the profile (clusterSize went down) are removed; only a spec
    // change or drift can leave any.
    let planned: BTreeSet<&str> = plan.resources.iter().map(|d| d.name.as_str()).collect();
    let inventory = if trust_status {
        Ok(Inventory::default())
    } else {
        cloud.inventory(&request.region).await
    };
    match inventory {
        Ok(inventory) => {
            for (kind, observed) in inventory.iter() {
                let ours = observed.tags.get(tags::ENVIRONMENT_UID) == Some(&request.uid);
                let name = observed.tags.get(tags::NAME).cloned().unwrap_or_default();
                if ours && *kind == ResourceKind::Instance && !planned.contains(name.as_str()) {
                    match aws.delete(*kind, observed).await {
                        Ok(_) => {
                            info!(environment = %controller::describe(env), resource = %name, "removed: no longer in the profile")
                        }
                        Err(error) => return progress.failed(error).await,
                    }
                }
            }
        }
        Err(error) => return progress.failed(error).await,
    }
    progress
        .status
        .resources
        .retain(|r| planned.contains(r.name.as_str()));
    progress
        .status
        .resources
        .sort_by_key(|r| plan.resources.iter().position(|d| d.name == r.name));

    if let Some(database) = &database {
        fill_connection_secret(ctx, &secret, database, &plan, &ids).await?;
    }
    progress.clear(RECOVERABLE);
    progress.condition(SYNCED, Status::True, "Synced", "the cloud matches the spec");
    if pending.is_empty() {
        progress.status.phase = Some(Phase::Ready);
        progress.condition(
            READY,
            Status::True,
            "Available",
            format!("{} cloud resources available", plan.resources.len()),
        );
    } else {
        progress.condition(READY, Status::False, "Provisioning", pending.join("; "));
    }
    progress.save().await?;
    if !pending.is_empty() {
        // Looked at again with a backoff that restarts whenever the set of pending
        // resources changes (controller::error_policy): a database that takes ten
        // minutes costs a few dozen describes, not two hundred.
        return Err(Error::Pending(format!(
            "{}: {}",
            controller::describe(env),
            pending.join("; ")
        )));
    }
    Ok(requeue.map_or_else(Action::await_change, Action::requeue))
}

/// The tag that records an environment's address block on each of its resources.
const CIDR_TAG: &str = "pave.dev/cidr";

/// The environment's address block: the one its VPC already has, or a free one.
///
/// The blocks in use are learned once per region from the cloud (the `pave.dev/cidr`
/// tag of each VPC of this cluster) and then kept in memory: this operator is the only
/// one allocating for its cluster id, so after that first look its memory is the
/// authority, and allocating for a new environment costs no AWS call.
async fn cidr_for(env: &DeveloperEnvironment, cloud: &Cloud) -> Result<String, CloudError> {
    let uid = uid_of(env);
    let region = env.spec.parameters.region.clone();
    let mut known = cloud.cidrs.lock().await;
    if !known.contains_key(&region) {
        let inventory = cloud.inventory(&region).await?;
        let blocks: BTreeMap<String, String> = inventory
            .iter()
            .filter(|(kind, _)| *kind == ResourceKind::Vpc)
            .filter_map(|(_, o)| {
                let owner = o.tags.get(tags::ENVIRONMENT_UID)?.clone();
                let cidr = o
                    .tags
                    .get(CIDR_TAG)
                    .or_else(|| o.attributes.get(attr::CIDR))?
                    .clone();
                Some((owner, cidr))
            })
            .collect();
        known.insert(region.clone(), blocks);
    }
    let blocks = known.get_mut(&region).expect("loaded above");
    if let Some(cidr) = blocks.get(&uid) {
        return Ok(cidr.clone());
    }
    let taken: Vec<String> = blocks.values().cloned().collect();
    let cidr = pave_cloud::plan::allocate_cidr(
        &uid,
        &cloud.config.cidr_pool,
        cloud.config.vpc_prefix_length,
        &taken,
    )
    .map_err(|e| CloudError::Terminal {
        operation: "AllocateCidr".into(),
        resource: format!("VPC of {}", controller::describe(env)),
        code: "CidrPoolExhausted".into(),
        message: e.to_string(),
    })?;
    blocks.insert(uid, cidr.clone());
    Ok(cidr)
}

/// Whether a resource in this cloud state is usable.
fn is_ready(kind: ResourceKind, state: &str) -> bool {
    match kind {
        ResourceKind::DbInstance => state == "available",
        ResourceKind::Instance => state == "running",
        _ => matches!(state, "available" | "Complete" | "" | "created"),
    }
}

/// What the policy check needs to know about the cluster.
async fn policy_context(
    env: &DeveloperEnvironment,
    ctx: &Context,
    cloud: &Cloud,
) -> Result<PolicyContext, Error> {
    let namespace = env.namespace().unwrap_or_default();
    let others = cloud
        .store
        .state()
        .iter()
        .filter_map(|g| g.0.as_ref().ok())
        .filter(|e| e.namespace().as_deref() == Some(namespace.as_str()) && e.uid() != env.uid())
        .filter(|e| e.metadata.deletion_timestamp.is_none())
        // Only those created before this one count: the newest are the ones refused,
        // and a verdict never flips because a newer environment appeared.
        .filter(|e| created_before(e, env))
        .count();
    let secret_namespace = env.spec.write_connection_secrets_to_namespace.clone();
    let accepts = match &secret_namespace {
        Some(target) if *target != namespace => {
            let namespaces = Api::<Namespace>::all(ctx.client.clone());
            namespaces
                .get_opt(target)
                .await
                .map_err(|source| Error::Kube {
                    action: "read the connection secret's namespace",
                    source,
                })?
                .and_then(|ns| ns.annotations().get(ACCEPT_SECRETS).cloned())
        }
        _ => None,
    };
    Ok(PolicyContext {
        other_environments_in_namespace: others as u32,
        secret_namespace_accepts: accepts,
        // Argo CD applications arrive with the GitOps issue; nothing is deployed yet.
        destination_namespace: policy::NamespaceState::Absent,
    })
}

/// Whether `a` was created before `b` (by creation time, then name).
fn created_before(a: &DeveloperEnvironment, b: &DeveloperEnvironment) -> bool {
    let key = |e: &DeveloperEnvironment| {
        (
            e.metadata.creation_timestamp.clone().map(|t| t.0),
            e.name_any(),
        )
    };
    key(a) < key(b)
}

/// The connection secret's coordinates and the database password in it.
struct ConnectionSecret {
    name: String,
    namespace: String,
    password: String,
}

/// Finds or creates the connection secret; a new one gets a generated password.
async fn connection_secret(
    env: &DeveloperEnvironment,
    ctx: &Context,
    plan: &Plan,
) -> Result<ConnectionSecret, Error> {
    let own = env.namespace().unwrap_or_default();
    let namespace = env
        .spec
        .write_connection_secrets_to_namespace
        .clone()
        .unwrap_or_else(|| own.clone());
    let name = format!("{}-connection", env.name_any());
    let api = Api::<Secret>::namespaced(ctx.client.clone(), &namespace);
    let kube = |action| move |source| Error::Kube { action, source };
    if let Some(existing) = api
        .get_opt(&name)
        .await
        .map_err(kube("read the connection secret"))?
    {
        let password = existing
            .data
            .as_ref()
            .and_then(|d| d.get("password"))
            .map(|p| String::from_utf8_lossy(&p.0).into_owned());
        if let Some(password) = password {
            return Ok(ConnectionSecret {
                name,
                namespace,
                password,
            });
        }
    }
    let password = generate_password();
    let mut data = BTreeMap::new();
    data.insert("password".to_owned(), password.clone());
    data.insert("username".to_owned(), plan_username(plan));
    data.insert(
        "engine".to_owned(),
        serde_json::to_value(env.spec.parameters.db_engine)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
    );
    let mut secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(namespace.clone()),
            labels: Some(BTreeMap::from([(
                "platform.pave.dev/environment".to_owned(),
                env.name_any(),
            )])),
            ..Default::default()
        },
        string_data: Some(data),
        type_: Some("Opaque".into()),
        ..Default::default()
    };
    // Owned (and garbage-collected with the environment) when in the same namespace;
    // owner references cannot cross namespaces.
    if namespace == own {
        secret.metadata.owner_references = Some(vec![owner_reference(env)]);
    }
    match api.create(&PostParams::default(), &secret).await {
        Ok(_) => {}
        // Another reconcile created it a moment ago: read its password instead.
        Err(kube::Error::Api(status)) if status.code == 409 => {
            let existing = api
                .get(&name)
                .await
                .map_err(kube("read the connection secret"))?;
            let password = existing
                .data
                .as_ref()
                .and_then(|d| d.get("password"))
                .map(|p| String::from_utf8_lossy(&p.0).into_owned())
                .unwrap_or_default();
            return Ok(ConnectionSecret {
                name,
                namespace,
                password,
            });
        }
        Err(source) => {
            return Err(Error::Kube {
                action: "create the connection secret",
                source,
            });
        }
    }
    Ok(ConnectionSecret {
        name,
        namespace,
        password,
    })
}

fn plan_username(plan: &Plan) -> String {
    plan.resources
        .iter()
        .find_map(|d| match &d.spec {
            pave_cloud::ResourceSpec::DbInstance { username, .. } => Some(username.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

/// Adds where to connect, once the database has an endpoint.
async fn fill_connection_secret(
    ctx: &Context,
    secret: &ConnectionSecret,
    database: &Observed,
    plan: &Plan,
    ids: &BTreeMap<String, String>,
) -> Result<(), Error> {
    let Some((host, port)) = &database.endpoint else {
        return Ok(());
    };
    let (database_name, engine) = plan
        .resources
        .iter()
        .find_map(|d| match &d.spec {
            pave_cloud::ResourceSpec::DbInstance {
                database_name,
                engine,
                ..
            } => Some((database_name.clone(), engine.clone())),
            _ => None,
        })
        .unwrap_or_default();
    let mut data = BTreeMap::from([
        ("host".to_owned(), host.clone()),
        ("port".to_owned(), port.to_string()),
        ("endpoint".to_owned(), format!("{host}:{port}")),
        ("database".to_owned(), database_name),
        ("engine".to_owned(), engine),
        ("username".to_owned(), plan_username(plan)),
    ]);
    for desired in &plan.resources {
        let key = match desired.kind {
            ResourceKind::Vpc => "vpcId".to_owned(),
            ResourceKind::Subnet => format!(
                "subnetId-{}",
                desired.name.rsplit('-').next().unwrap_or_default()
            ),
            ResourceKind::SecurityGroup => format!(
                "securityGroupId-{}",
                desired.name.rsplit('-').next().unwrap_or_default()
            ),
            ResourceKind::Instance => format!(
                "instanceId-{}",
                desired.name.rsplit('-').next().unwrap_or_default()
            ),
            _ => continue,
        };
        if let Some(id) = ids.get(&desired.name) {
            data.insert(key, id.clone());
        }
    }
    let api = Api::<Secret>::namespaced(ctx.client.clone(), &secret.namespace);
    let current = api.get(&secret.name).await.map_err(|source| Error::Kube {
        action: "read the connection secret",
        source,
    })?;
    let unchanged = data.iter().all(|(k, v)| {
        current
            .data
            .as_ref()
            .and_then(|d| d.get(k))
            .is_some_and(|b| b.0 == v.as_bytes())
    });
    if unchanged {
        return Ok(());
    }
    let patch = serde_json::json!({"stringData": data});
    api.patch(&secret.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|source| Error::Kube {
            action: "fill in the connection secret",
            source,
        })?;
    Ok(())
}

fn owner_reference(env: &DeveloperEnvironment) -> OwnerReference {
    OwnerReference {
        api_version: pave_api::environment::DeveloperEnvironment::api_version(&()).into_owned(),
        kind: "DeveloperEnvironment".into(),
        name: env.name_any(),
        uid: uid_of(env),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// 32 characters from the operating system's random source; RDS accepts letters and
/// digits in every engine.
fn generate_password() -> String {
    use std::io::Read;
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("the OS random source is readable");
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

async fn cleanup(
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
enum Teardown {
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
async fn teardown_step(cloud: &Cloud, region: &str, uid: &str) -> Result<Teardown, CloudError> {
    let inventory = cloud.inventory(region).await?;
    let aws = cloud.client(region).await;
    teardown(&aws, owned_by(&inventory, uid)).await
}

/// The resources in `inventory` that environment `uid` owns.
fn owned_by(inventory: &[(ResourceKind, Observed)], uid: &str) -> Vec<(ResourceKind, Observed)> {
    inventory
        .iter()
        .filter(|(_, o)| o.tags.get(tags::ENVIRONMENT_UID).map(String::as_str) == Some(uid))
        .cloned()
        .collect()
}

/// [`teardown_step`] on resources already listed.
async fn teardown(
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

/// Deletes cloud resources whose environment no longer exists (a Background deletion,
/// or a crash mid-teardown), except orphaned ones. Runs every sweep interval, and at
/// once when woken.
async fn sweeper(cloud: Arc<Cloud>) {
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

/// Every resync interval: lists each region once, and asks for a reconcile of every
/// environment whose cloud resources drifted from its plan: a resource gone (a
/// terminated instance), a database class or size changed out of band, a tag
/// missing. The check itself calls one describe per resource type per region, however
/// many environments there are; only drifted environments cost more.
async fn drift_check(
    cloud: Arc<Cloud>,
    drifted: mpsc::UnboundedSender<ObjectRef<DeserializeGuard<DeveloperEnvironment>>>,
) {
    let interval = cloud.config.resync_interval;
    loop {
        tokio::time::sleep(interval).await;
        let environments: Vec<DeveloperEnvironment> = cloud
            .store
            .state()
            .iter()
            .filter_map(|g| g.0.as_ref().ok().cloned())
            .filter(|e| e.metadata.deletion_timestamp.is_none())
            .filter(|e| {
                e.status
                    .as_ref()
                    .is_some_and(|s| s.phase == Some(Phase::Ready))
            })
            .collect();
        let regions: BTreeSet<String> = environments
            .iter()
            .map(|e| e.spec.parameters.region.clone())
            .collect();
        for region in regions {
            let inventory = match cloud.inventory(&region).await {
                Ok(inventory) => inventory,
                Err(error) => {
                    warn!(%region, %error, "drift check cannot list cloud resources");
                    continue;
                }
            };
            for env in environments
                .iter()
                .filter(|e| e.spec.parameters.region == region)
            {
                if let Some(why) = drift(env, &inventory, &cloud) {
                    info!(environment = %controller::describe(env), %why, "drift found; reconciling");
                    cloud
                        .drifted
                        .lock()
                        .expect("not poisoned")
                        .insert(uid_of(env));
                    let _ = drifted
                        .unbounded_send(ObjectRef::from_obj(&DeserializeGuard(Ok(env.clone()))));
                }
            }
        }
    }
}

/// How `env`'s cloud resources differ from its plan, if they do.
fn drift(
    env: &DeveloperEnvironment,
    inventory: &[(ResourceKind, Observed)],
    cloud: &Cloud,
) -> Option<String> {
    let uid = uid_of(env);
    let mine: HashMap<&str, &Observed> = inventory
        .iter()
        .filter(|(_, o)| o.tags.get(tags::ENVIRONMENT_UID) == Some(&uid))
        .filter_map(|(_, o)| o.tags.get(tags::NAME).map(|n| (n.as_str(), o)))
        .collect();
    let cidr = mine.values().find_map(|o| o.tags.get(CIDR_TAG))?;
    let mut plan =
        pave_cloud::plan::plan(&request_of(env), &cloud.config, cidr, &cloud.cluster_id).ok()?;
    plan.tags.insert(CIDR_TAG.to_owned(), cidr.clone());
    for desired in &plan.resources {
        let Some(observed) = mine.get(desired.name.as_str()) else {
            return Some(format!("{} {} is gone", desired.kind, desired.name));
        };
        if let Some((key, value)) = plan
            .tags
            .iter()
            .find(|(k, v)| observed.tags.get(*k) != Some(v))
        {
            return Some(format!(
                "{} {} lacks tag {key}={value}",
                desired.kind, desired.name
            ));
        }
        // What a reconcile can set back in place. An instance's type is not compared:
        // changing it means replacing the instance, which is the plan's call, not drift's.
        let wanted: Vec<(&str, String)> = match &desired.spec {
            pave_cloud::ResourceSpec::DbInstance {
                class, storage_gib, ..
            } => {
                vec![
                    (attr::CLASS, class.clone()),
                    (attr::STORAGE, storage_gib.to_string()),
                ]
            }
            _ => vec![],
        };
        for (key, value) in wanted {
            if observed.attributes.get(key).is_some_and(|v| *v != value) {
                return Some(format!(
                    "{} {} has {key} {} instead of {value}",
                    desired.kind, desired.name, observed.attributes[key]
                ));
            }
        }
    }
    None
}
