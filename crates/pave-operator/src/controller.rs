//! What the three controllers share: the run loop around kube-runtime's `Controller`,
//! the guard against malformed objects, status writes that happen only on change,
//! metrics and per-object retry backoff.

use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use futures::{Stream, StreamExt};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::core::DeserializeGuard;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{Lookup, ObjectRef};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use pave_api::conditions::{self, READY, Status};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::error::{Error, backoff};
use crate::last_write::LastWrites;
use crate::metrics::Metrics;
use crate::queue::{ObjectKey, QueueDepth};
use crate::readiness::Readiness;

/// The action of an Event about the object as a whole.
const RECONCILE: &str = "Reconcile";

/// The longest wait between looks at work under way in the cloud.
const PENDING_CAP: std::time::Duration = std::time::Duration::from_secs(15);

/// Resolves once when the operator is asked to stop; every task holds a clone.
pub type ShutdownSignal = futures::future::Shared<BoxFuture<'static, ()>>;

/// What the controllers have in common, created once by `lib::run`.
#[derive(Clone)]
pub struct Shared {
    pub client: Client,
    pub metrics: Arc<Metrics>,
    pub readiness: Arc<Readiness>,
    pub shutdown: ShutdownSignal,
}

/// A pave kind whose status carries `observedGeneration` and `conditions`.
pub trait Observed {
    /// The current `status.observedGeneration` and `status.conditions`.
    fn observed(&self) -> (Option<i64>, &[Condition]);
}

/// The reconcile context of one controller.
pub struct Context {
    pub client: Client,
    /// The controller's identity: field manager, event reporter and metrics label.
    pub name: &'static str,
    metrics: Arc<Metrics>,
    recorder: Recorder,
    failures: Mutex<Failures>,
    last_writes: LastWrites,
    queue: Arc<QueueDepth>,
}

fn key_of<K: Lookup + ?Sized>(object: &ObjectRef<K>) -> ObjectKey {
    (object.namespace.clone(), object.name.clone())
}

/// Consecutive transient failures per object and the last one's message, from which
/// the next retry's backoff follows. The count starts over on a different failure: a
/// new error means the last retry got further, and waiting longer for it would only
/// slow progress down.
///
/// An entry lives only while its object keeps failing. It goes when the object is
/// reconciled, fails for good (that waits for a change, not a retry), or is gone: a
/// failed object always has a retry scheduled, and the controller reports a retry of
/// an object no longer in its store as `ObjectNotFound`, so even a deletion nobody
/// watches for is noticed by the next retry at the latest.
#[derive(Debug, Default)]
struct Failures(HashMap<ObjectKey, (u32, String)>);

impl Failures {
    /// Records a transient failure; returns which consecutive one it is (0 for the
    /// first).
    fn failed(&mut self, key: ObjectKey, message: String) -> u32 {
        let (count, last) = self.0.entry(key).or_insert((0, String::new()));
        if *last != message {
            (*count, *last) = (0, message);
        }
        *count += 1;
        *count - 1
    }

    fn forget(&mut self, key: &ObjectKey) {
        self.0.remove(key);
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

impl Context {
    /// The typed object, or, for one that does not match pave's types, a warning in
    /// the log and an Event on the object, and an error that waits for a change.
    pub async fn accept<'a, K>(&self, obj: &'a DeserializeGuard<K>) -> Result<&'a K, Error>
    where
        K: Resource<DynamicType = ()>,
    {
        let error = match typed(obj) {
            Ok(typed) => return Ok(typed),
            Err(error) => error,
        };
        warn!(controller = self.name, %error, "skipping an object pave cannot read");
        let event = Event {
            type_: EventType::Warning,
            reason: "InvalidObject".into(),
            // The API server rejects notes over 1 KiB.
            note: Some(error.to_string().chars().take(1000).collect()),
            action: "Reconcile".into(),
            secondary: None,
        };
        // Best effort: the warning above is already the record of the problem.
        if let Err(e) = self.recorder.publish(&event, &obj.object_ref(&())).await {
            warn!(controller = self.name, error = %e, "cannot publish an event");
        }
        Err(error)
    }

    /// Records a transient failure of `key`; returns which consecutive one it is.
    fn failed(&self, key: ObjectKey, message: String) -> u32 {
        let mut failures = self.failures.lock().expect("not poisoned");
        let attempt = failures.failed(key, message);
        self.metrics.set_retrying(self.name, failures.len());
        attempt
    }

    /// Forgets `key`'s failures: it was reconciled, failed for good, or is gone.
    fn forget_failures(&self, key: &ObjectKey) {
        let mut failures = self.failures.lock().expect("not poisoned");
        failures.forget(key);
        self.metrics.set_retrying(self.name, failures.len());
    }

    /// Applies the wanted conditions and `observedGeneration` to `obj`'s status with
    /// this controller's field manager, unless they are already there. Returns whether
    /// it wrote.
    pub async fn write_status<K>(
        &self,
        api: &Api<K>,
        obj: &K,
        wanted: Vec<Condition>,
    ) -> Result<bool, Error>
    where
        K: Resource<DynamicType = ()> + Observed + Clone + DeserializeOwned + Debug,
    {
        let (observed_generation, current) = obj.observed();
        let generation = obj.meta().generation;
        let Some(status) = status_patch(observed_generation, current, generation, wanted) else {
            debug!(controller = self.name, object = %describe(obj), "status unchanged");
            return Ok(false);
        };
        self.apply_status(api, obj, status).await?;
        Ok(true)
    }
}

impl Context {
    /// Publishes a Normal Event on `obj` (best effort: a failure is only logged).
    pub async fn event<K: Resource<DynamicType = ()>>(&self, obj: &K, reason: &str, note: String) {
        self.publish(obj, EventType::Normal, reason, RECONCILE, note)
            .await;
    }

    /// As [`Context::event`], for one of several things an object has (a cloud
    /// resource): `action` names it. kube-runtime's recorder folds Events of the same
    /// type, reason and action on an object into one series that keeps the first note,
    /// so without it "Subnet a created" would hide "Subnet b created".
    pub async fn event_on<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        reason: &str,
        action: &str,
        note: String,
    ) {
        self.publish(obj, EventType::Normal, reason, action, note)
            .await;
    }

    /// Publishes a Warning Event on `obj`: something the user must act on.
    pub async fn warning<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        reason: &str,
        note: String,
    ) {
        self.publish(obj, EventType::Warning, reason, RECONCILE, note)
            .await;
    }

    async fn publish<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let event = Event {
            type_,
            reason: reason.into(),
            note: Some(note.chars().take(1000).collect()),
            // The API server allows 128 characters.
            action: action.chars().take(128).collect(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, &obj.object_ref(&())).await {
            warn!(controller = self.name, error = %e, "cannot publish an event");
        }
    }

    /// Writes `status` (the fields this controller owns) with server-side apply under
    /// this controller's field manager. Fields it owned before and leaves out are
    /// removed, which is how an empty list or a cleared value is written.
    pub async fn apply_status<K>(
        &self,
        api: &Api<K>,
        obj: &K,
        status: impl Serialize + Debug,
    ) -> Result<(), Error>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
    {
        let key = key_of(&ObjectRef::from_obj(obj));
        let version = obj.meta().resource_version.as_deref();
        if self.last_writes.repeats(&key, version, &status) {
            debug!(object = %describe(obj), "status written already; the store is behind");
            return Ok(());
        }
        let body = StatusApply {
            api_version: &K::api_version(&()),
            kind: &K::kind(&()),
            status,
        };
        let params = PatchParams::apply(self.name).force();
        api.patch_status(&obj.name_any(), &params, &Patch::Apply(&body))
            .await
            .map_err(|source| Error::WriteStatus {
                object: describe(obj),
                source,
            })?;
        self.last_writes.wrote(key, version, &body.status);
        self.metrics.status_written(self.name);
        debug!(controller = self.name, object = %describe(obj), "status written");
        Ok(())
    }
}

/// The object as pave's type, or why it does not match.
fn typed<K: Resource<DynamicType = ()>>(obj: &DeserializeGuard<K>) -> Result<&K, Error> {
    obj.0.as_ref().map_err(|invalid| Error::InvalidObject {
        object: describe(obj),
        reason: invalid.error.clone(),
    })
}

/// The part of status one controller owns, as sent with server-side apply.
#[derive(Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusPatch {
    pub observed_generation: Option<i64>,
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusApply<'a, S> {
    api_version: &'a str,
    kind: &'a str,
    status: S,
}

/// The status patch that brings `current` to `wanted` at `generation`, or `None` when
/// nothing would change. A condition whose status is the same keeps its earlier
/// `lastTransitionTime` (see `conditions::set`), so recomputing the same answer later
/// is not a change. Only the wanted condition types are sent: conditions other
/// field managers own stay theirs.
pub fn status_patch(
    observed_generation: Option<i64>,
    current: &[Condition],
    generation: Option<i64>,
    wanted: Vec<Condition>,
) -> Option<StatusPatch> {
    // `conditions::set` sorts by type; the API server keeps whatever order the
    // managers' applies produced, which must not count as a change.
    let mut before = current.to_vec();
    before.sort_by(|a, b| a.type_.cmp(&b.type_));
    let mut merged = before.clone();
    let types: Vec<String> = wanted.iter().map(|c| c.type_.clone()).collect();
    for condition in wanted {
        conditions::set(&mut merged, condition);
    }
    if observed_generation == generation && merged == before {
        return None;
    }
    merged.retain(|c| types.contains(&c.type_));
    Some(StatusPatch {
        observed_generation: generation,
        conditions: merged,
    })
}

/// `Ready=Unknown` saying plainly what this version of pave does not do yet.
pub fn not_implemented(generation: Option<i64>, message: &str, now: Timestamp) -> Condition {
    conditions::new(
        READY,
        Status::Unknown,
        "NotImplemented",
        message,
        generation,
        now,
    )
}

/// `Kind namespace/name`, as people name objects in messages.
pub fn describe<K: Resource<DynamicType = ()>>(obj: &K) -> String {
    match obj.meta().namespace.as_deref() {
        Some(ns) => format!("{} {ns}/{}", K::kind(&()), obj.name_any()),
        None => format!("{} {}", K::kind(&()), obj.name_any()),
    }
}

/// How every watch lists: in pages of 500 at the most recent resourceVersion. A list
/// at `resourceVersion=0` is cheaper for the API server (its watch cache answers)
/// but comes as one response, and the operator would hold the whole body and every
/// object decoded from it at once: at 100,000 Components that, not the catalog, set
/// the peak memory. A page at a time, a list costs at most a page more than the
/// store it fills. (Streaming lists would cost nothing extra, but need the WatchList
/// feature, off by default in Kubernetes 1.33.)
pub fn watch_config() -> watcher::Config {
    watcher::Config::default().page_size(500)
}

/// `events` (a watcher's, after its backoff) with its failures reported as a
/// readiness problem about `resource` (e.g. `components.platform.pave.dev`) and
/// resolved by the next event that arrives: a watch the operator's RBAC forbids says
/// so once in the log and in `/readyz`, and the operator is ready once it is granted.
pub fn report_watch<S, K>(
    events: S,
    readiness: Arc<Readiness>,
    resource: &'static str,
) -> impl Stream<Item = S::Item>
where
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>>,
{
    let about = format!("watch {resource}");
    events.inspect(move |event| match event {
        // Init only says a list is about to start; it comes before each attempt.
        Ok(watcher::Event::Init) => {}
        Ok(_) => {
            readiness.resolve(&about);
        }
        Err(error) => {
            if let Some(problem) = watch_problem(resource, error) {
                readiness.report(&about, problem);
            }
        }
    })
}

/// What to tell a person about a failed watch, or `None` for the routine expiry of a
/// watch (410 Gone), after which the watcher lists again.
fn watch_problem(resource: &str, error: &watcher::Error) -> Option<String> {
    let status = match error {
        watcher::Error::InitialListFailed(e)
        | watcher::Error::WatchStartFailed(e)
        | watcher::Error::WatchFailed(e) => match e {
            kube::Error::Api(status) => Some((status.code, status.message.clone())),
            _ => None,
        },
        watcher::Error::WatchError(status) => Some((status.code, status.message.clone())),
        watcher::Error::NoResourceVersion => None,
    };
    Some(match status {
        Some((410, _)) => return None,
        Some((403, message)) => format!(
            "cannot list and watch {resource}: {message}: grant the operator's ServiceAccount \
             list and watch on {resource} (the chart's ClusterRole has them: rbac.create=true)"
        ),
        Some((404, _)) => format!(
            "cannot list and watch {resource}: the API server does not serve it: install its CRD"
        ),
        _ => format!("cannot list and watch {resource}: {error}; retrying"),
    })
}

/// Runs a prepared controller together with `background`, the tasks that feed it
/// (watches, coalescing timers), which stop with the shutdown signal.
pub async fn run_with_background<K, F, Fut>(
    shared: Shared,
    name: &'static str,
    controller: Controller<DeserializeGuard<K>>,
    reconcile: F,
    background: impl Future<Output = ()>,
) where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    F: Fn(Arc<DeserializeGuard<K>>, Arc<Context>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Action, Error>> + Send + 'static,
{
    let shutdown = shared.shutdown.clone();
    let background = async move {
        tokio::select! {
            () = background => {}
            () = shutdown => {}
        }
    };
    futures::future::join(
        run_controller(shared, name, controller, reconcile),
        background,
    )
    .await;
}

/// Runs a prepared controller (its own input streams, triggers, configuration) with
/// the shared readiness, metrics, backoff and shutdown handling.
pub async fn run_controller<K, F, Fut>(
    shared: Shared,
    name: &'static str,
    controller: Controller<DeserializeGuard<K>>,
    reconcile: F,
) where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    F: Fn(Arc<DeserializeGuard<K>>, Arc<Context>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Action, Error>> + Send + 'static,
{
    let ctx = Arc::new(Context {
        client: shared.client.clone(),
        name,
        metrics: shared.metrics.clone(),
        recorder: Recorder::new(shared.client.clone(), Reporter::from(name)),
        failures: Mutex::default(),
        last_writes: LastWrites::default(),
        queue: shared.metrics.queue(name),
    });
    let controller = controller.graceful_shutdown_on(shared.shutdown);

    let store = controller.store();
    let readiness = shared.readiness;
    // Awaited in this task, joined with the controller, not spawned: the store's
    // readiness is a oneshot that wakes only its last poller, and the controller waits
    // on it too. Sharing one task means whichever waker is registered wakes both.
    let synced = async move {
        // Fails only if the controller stopped before its first list, e.g. at shutdown.
        if store.wait_until_ready().await.is_ok() {
            info!(
                controller = name,
                objects = store.len(),
                "initial sync done"
            );
            readiness.mark_synced(name);
        }
    };

    // Every line logged while reconciling carries the controller, the object and a
    // reconcile id (the span's fields), and so does the outcome: a failure is handled
    // here, inside the span, and handed to kube-runtime as the action it asks for.
    let reconcile = move |obj: Arc<DeserializeGuard<K>>, ctx: Arc<Context>| {
        let timer = ctx.metrics.reconcile_started(name);
        let key = key_of(&ObjectRef::from_obj(&*obj));
        ctx.queue.left(&key);
        let span = reconcile_span(name, obj.meta());
        let run = span.in_scope(|| reconcile(obj, ctx.clone()));
        async move {
            let _timer = timer;
            let action = match run.await {
                Ok(action) => {
                    ctx.forget_failures(&key);
                    action
                }
                Err(error) => ctx.after_failure(key, &error),
            };
            Ok::<_, Error>(action)
        }
        .instrument(span)
    };
    info!(controller = name, "starting");
    let gone = ctx.clone();
    let running = controller
        .run(reconcile, never_fails, ctx)
        .for_each(move |result| {
            match result {
                Ok(_) | Err(controller::Error::ReconcilerFailed(..)) => {}
                // Deleted between the trigger (a watch event, or the retry of a
                // failure) and the reconcile: nothing to do, and nothing to retry.
                Err(controller::Error::ObjectNotFound(obj)) => {
                    debug!(%obj, "object gone");
                    let key = key_of(&obj);
                    gone.queue.left(&key);
                    gone.last_writes.forget(&key);
                    gone.forget_failures(&key);
                }
                // A failing watch is reported once, as a readiness problem, by
                // `report_watch` around the stream; here it would repeat each retry.
                Err(e) => debug!(controller = name, error = %e, "watch failed; retrying"),
            }
            std::future::ready(())
        });
    futures::future::join(running, synced).await;
    info!(controller = name, "stopped");
}

/// The span of one reconcile: `controller`, `object` (`namespace/name`), `uid` and
/// `reconcile_id`, numbered per process (a log stack adds the pod).
fn reconcile_span(controller: &'static str, meta: &ObjectMeta) -> tracing::Span {
    static RECONCILES: AtomicU64 = AtomicU64::new(1);
    let id = RECONCILES.fetch_add(1, Ordering::Relaxed);
    let name = meta.name.as_deref().unwrap_or_default();
    let object = match meta.namespace.as_deref() {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_owned(),
    };
    info_span!(
        "reconcile",
        controller,
        object,
        uid = meta.uid.as_deref().unwrap_or_default(),
        reconcile_id = id
    )
}

/// kube-runtime's error policy, never called: the reconcile wrapper turns every
/// failure into its action ([`Context::after_failure`]) inside the reconcile's span.
fn never_fails<K>(_obj: Arc<DeserializeGuard<K>>, _error: &Error, _ctx: Arc<Context>) -> Action {
    Action::await_change()
}

impl Context {
    /// Counts the failure and decides when to retry: permanent errors wait for the
    /// object to change, transient ones back off per object.
    fn after_failure(&self, key: ObjectKey, error: &Error) -> Action {
        let pending = matches!(error, Error::Pending(_));
        if !pending {
            self.metrics
                .reconcile_failed(self.name, error.metric_label());
        }
        if error.is_permanent() {
            self.forget_failures(&key);
            return Action::await_change();
        }
        let attempt = self.failed(key.clone(), error.to_string());
        let delay = retry_delay(pending, attempt);
        self.queue.retry_in(key, delay);
        if pending {
            debug!(%error, retry_in = ?delay, "waiting");
        } else {
            warn!(%error, retry_in = ?delay, "reconcile failed");
        }
        Action::requeue(delay)
    }
}

/// How long to wait before retry `attempt`. Work under way in the cloud (`pending`)
/// is not a failure: its backoff stays short, since the cloud usually finishes within
/// minutes.
fn retry_delay(pending: bool, attempt: u32) -> std::time::Duration {
    if pending {
        backoff(attempt).min(PENDING_CAP)
    } else {
        backoff(attempt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A forbidden list fails after each `Init`: the problem stays open (and is logged
    /// once) until the list succeeds, and 410 Gone, the routine end of a watch, is no
    /// problem at all.
    #[tokio::test]
    async fn a_failing_watch_is_one_problem_until_a_list_succeeds() {
        let forbidden = || {
            let mut status = kube::core::Status::failure("components is forbidden", "Forbidden");
            status.code = 403;
            Err(watcher::Error::InitialListFailed(kube::Error::Api(
                Box::new(status),
            )))
        };
        let readiness = Arc::new(Readiness::new(&[]));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let events: Vec<Result<watcher::Event<()>, watcher::Error>> = vec![
            Ok(watcher::Event::Init),
            forbidden(),
            Ok(watcher::Event::Init),
            forbidden(),
            Ok(watcher::Event::Init),
            Ok(watcher::Event::InitDone),
            Err(watcher::Error::WatchError(Box::new({
                let mut gone = kube::core::Status::failure("too old", "Expired");
                gone.code = 410;
                gone
            }))),
        ];
        let stream = futures::stream::iter(events);
        let probe = readiness.clone();
        let record = seen.clone();
        report_watch(stream, readiness.clone(), "components.platform.pave.dev")
            .for_each(|_| {
                record.lock().unwrap().push(probe.problems());
                std::future::ready(())
            })
            .await;
        let seen = seen.lock().unwrap();
        let open: Vec<usize> = seen.iter().map(Vec::len).collect();
        assert_eq!(open, [0, 1, 1, 1, 1, 0, 0]);
        assert!(seen[1][0].starts_with(
            "cannot list and watch components.platform.pave.dev: components is forbidden: grant"
        ));
    }

    #[test]
    fn pending_work_is_polled_with_a_short_backoff_that_restarts_on_progress() {
        let mut failures = Failures::default();
        let mut wait = |message: &str| {
            let attempt = failures.failed((None, "env".into()), message.into());
            retry_delay(true, attempt).as_secs()
        };
        let creating: Vec<u64> = (0..7).map(|_| wait("DBInstance db is creating")).collect();
        assert_eq!(creating, [1, 2, 4, 8, 15, 15, 15]);
        // The database became available; now the instance is the one pending.
        assert_eq!(wait("Instance vm-0 is pending"), 1);
        assert_eq!(wait("Instance vm-0 is pending"), 2);
        // Failures keep doubling past the pending cap.
        let failed: Vec<u64> = (0..6)
            .map(|attempt| retry_delay(false, attempt).as_secs())
            .collect();
        assert_eq!(failed, [1, 2, 4, 8, 16, 32]);
    }

    #[test]
    fn a_forgotten_object_leaves_nothing_and_starts_over() {
        let obj: DeserializeGuard<pave_api::Component> =
            serde_json::from_value(serde_json::json!({
                "apiVersion": "platform.pave.dev/v1alpha1",
                "kind": "Component",
                "metadata": {"name": "web", "namespace": "team-a"},
            }))
            .unwrap();
        let typed = ObjectRef::from_obj(&obj);
        // What a reconcile sees, and what `ObjectNotFound` names, are the same object.
        let key = key_of(&typed);
        assert_eq!(key_of(&typed.erase()), key);
        let mut failures = Failures::default();
        assert_eq!(failures.failed(key.clone(), "refused".into()), 0);
        assert_eq!(failures.failed(key.clone(), "refused".into()), 1);
        assert_eq!(failures.len(), 1);
        failures.forget(&key);
        assert_eq!(failures.len(), 0);
        assert_eq!(failures.failed(key, "refused".into()), 0);
    }

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
    }

    const MESSAGE: &str = "does nothing yet";

    #[test]
    fn first_reconcile_writes_generation_and_ready_unknown() {
        let patch = status_patch(
            None,
            &[],
            Some(1),
            vec![not_implemented(Some(1), MESSAGE, at(10))],
        )
        .expect("a new object needs a status");
        assert_eq!(patch.observed_generation, Some(1));
        let ready = conditions::find(&patch.conditions, READY).unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("Unknown", "NotImplemented")
        );
        assert_eq!(ready.observed_generation, Some(1));
    }

    #[test]
    fn same_answer_later_is_not_a_change() {
        let current = vec![not_implemented(Some(1), MESSAGE, at(10))];
        let again = vec![not_implemented(Some(1), MESSAGE, at(99))];
        assert_eq!(status_patch(Some(1), &current, Some(1), again), None);
    }

    #[test]
    fn new_generation_is_written_but_keeps_transition_time() {
        let current = vec![not_implemented(Some(1), MESSAGE, at(10))];
        let patch = status_patch(
            Some(1),
            &current,
            Some(2),
            vec![not_implemented(Some(2), MESSAGE, at(99))],
        )
        .expect("the generation moved");
        assert_eq!(patch.observed_generation, Some(2));
        assert_eq!(patch.conditions[0].observed_generation, Some(2));
        assert_eq!(patch.conditions[0].last_transition_time, Time(at(10)));
    }

    #[test]
    fn missing_observed_generation_alone_is_a_change() {
        let current = vec![not_implemented(Some(3), MESSAGE, at(10))];
        let wanted = vec![not_implemented(Some(3), MESSAGE, at(10))];
        assert!(status_patch(None, &current, Some(3), wanted).is_some());
    }

    #[test]
    fn conditions_of_other_managers_are_not_sent() {
        let theirs = conditions::new("Scored", Status::True, "Evaluated", "", Some(1), at(5));
        let current = vec![theirs.clone()];
        let patch = status_patch(
            Some(1),
            &current,
            Some(1),
            vec![not_implemented(Some(1), MESSAGE, at(10))],
        )
        .expect("Ready is missing");
        let types: Vec<_> = patch.conditions.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, [READY]);
        // Once Ready is there, their condition (listed first) does not make ours look changed.
        let current = vec![theirs, not_implemented(Some(1), MESSAGE, at(10))];
        let wanted = vec![not_implemented(Some(1), MESSAGE, at(20))];
        assert_eq!(status_patch(Some(1), &current, Some(1), wanted), None);
    }

    #[test]
    fn malformed_object_becomes_a_named_permanent_error() {
        let obj: DeserializeGuard<pave_api::Component> =
            serde_json::from_value(serde_json::json!({
                "apiVersion": "platform.pave.dev/v1alpha1",
                "kind": "Component",
                "metadata": {"name": "web", "namespace": "team-a"},
                "spec": {"type": 5, "lifecycle": "production", "owner": "team-a"},
            }))
            .expect("the guard accepts any object with metadata");
        let error = typed(&obj).unwrap_err();
        assert!(error.is_permanent());
        assert!(
            error.to_string().starts_with(
                "Component team-a/web does not match pave's schema (Invalid type integer"
            ),
            "{error}"
        );
    }

    #[test]
    fn serialises_as_kubernetes_status() {
        let patch = status_patch(
            None,
            &[],
            Some(4),
            vec![not_implemented(Some(4), MESSAGE, at(0))],
        )
        .unwrap();
        let json = serde_json::to_value(&patch).unwrap();
        assert_eq!(json["observedGeneration"], 4);
        assert_eq!(json["conditions"][0]["type"], "Ready");
        assert_eq!(
            json["conditions"][0]["lastTransitionTime"],
            "1970-01-01T00:00:00Z"
        );
    }
}
