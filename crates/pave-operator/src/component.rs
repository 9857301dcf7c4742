//! The catalog controller (field manager `pave-catalog`) for Components.
//!
//! One watch of Components and one metadata-only watch of DeveloperEnvironments feed
//! `pave_catalog::Catalog`. Each change there names the Components whose relations,
//! unresolved references, cycle or impact it moved, and only those are reconciled:
//! reverse relations reach a target without anyone editing it, and a missing target
//! that appears resolves its dependents at once, with no periodic resync.
//!
//! The Component watch feeds the catalog *before* the controller sees the event, so a
//! reconcile never reads a catalog older than its object. Nothing is written until
//! both watches have listed everything once: a catalog loaded in any order then
//! gets exactly one status write per Component, not one per intermediate state.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::channel::mpsc;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use kube::core::{DeserializeGuard, PartialObjectMeta};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use pave_api::component::{ComponentStatus, Relation, Score};
use pave_api::conditions::{self, READY, Status};
use pave_api::scorecard::ScorecardStatus;
use pave_api::{Component, DeveloperEnvironment, Scorecard};
use pave_catalog::{Catalog, EntityRef, EntityView, Refs};
use tokio::sync::Notify;
use tracing::{debug, info};

use crate::controller::{self, Context, Observed, Shared, report_watch, status_patch};
use crate::environment::RESOURCE as ENVIRONMENTS;
use crate::error::Error;
use crate::scoring::{self, Outcome, ParsedScorecard};

pub const NAME: &str = "pave-catalog";

/// How long impact recounts are coalesced after a change that reached too far to
/// recount inline: a burst of edits costs one recount.
const IMPACT_COALESCE: Duration = Duration::from_millis(200);

/// How many status writes run at once.
const CONCURRENCY: u16 = 32;

impl Observed for Component {
    fn observed(&self) -> (Option<i64>, &[Condition]) {
        self.status
            .as_ref()
            .map_or((None, &[]), |s| (s.observed_generation, &s.conditions))
    }
}

type Key = (String, String);
/// A request to reconcile one Component.
pub type Trigger = ObjectRef<DeserializeGuard<Component>>;

/// The catalog and what the controller knows about how current it is.
struct State {
    catalog: Catalog,
    /// The generation of each Component as last fed into the catalog. A reconcile
    /// writes only when its object is that generation.
    fed: HashMap<Key, i64>,
    components: Listing,
    environments: Listing,
    /// Every Scorecard, parsed, in the order their scores appear on a Component.
    scorecards: BTreeMap<String, Arc<ParsedScorecard>>,
    ordered_scorecards: Arc<Vec<Arc<ParsedScorecard>>>,
    scorecard_listing: Listing,
    /// Each Component's last evaluation, from which the Scorecards' summaries are
    /// counted without evaluating anything again.
    outcomes: HashMap<Key, Vec<Outcome>>,
    /// Scorecards whose summary is out of date.
    stale_summaries: BTreeSet<String>,
    /// Every namespace's labels, for Scorecards' `namespaceSelector`.
    namespace_labels: HashMap<String, Arc<BTreeMap<String, String>>>,
    namespace_listing: Listing,
    synced: bool,
}

/// One watch's listing progress: what a (re)list has seen so far, so objects deleted
/// while the watch was down are removed when the relist ends.
#[derive(Default)]
struct Listing {
    done_once: bool,
    known: HashSet<Key>,
    relisting: Option<HashSet<Key>>,
}

impl State {
    fn new() -> State {
        let mut catalog = Catalog::new();
        // Loading: derive cycles and impact once, when both listings are complete.
        catalog.defer();
        State {
            catalog,
            fed: HashMap::new(),
            components: Listing::default(),
            environments: Listing::default(),
            scorecards: BTreeMap::new(),
            ordered_scorecards: Arc::default(),
            scorecard_listing: Listing::default(),
            outcomes: HashMap::new(),
            stale_summaries: BTreeSet::new(),
            namespace_labels: HashMap::new(),
            namespace_listing: Listing::default(),
            synced: false,
        }
    }

    fn on_component(
        &mut self,
        event: &watcher::Event<DeserializeGuard<Component>>,
    ) -> Vec<EntityRef> {
        match event {
            watcher::Event::Init => {
                self.components.relisting = Some(HashSet::new());
                vec![]
            }
            watcher::Event::InitApply(obj) | watcher::Event::Apply(obj) => {
                // An object pave cannot read keeps whatever the catalog had for it; the
                // controller reports it on the object.
                let Ok(component) = &obj.0 else { return vec![] };
                let key = key_of(component);
                if let Some(listed) = &mut self.components.relisting {
                    listed.insert(key.clone());
                }
                self.components.known.insert(key.clone());
                self.fed
                    .insert(key.clone(), component.meta().generation.unwrap_or_default());
                self.catalog
                    .upsert_component(&key.0, &key.1, &refs_of(component))
            }
            watcher::Event::Delete(obj) => {
                let key = (obj.namespace().unwrap_or_default(), obj.name_any());
                self.forget_component(&key)
            }
            watcher::Event::InitDone => {
                let mut affected = vec![];
                let listed = self.components.relisting.take().unwrap_or_default();
                for gone in self
                    .components
                    .known
                    .difference(&listed)
                    .cloned()
                    .collect::<Vec<_>>()
                {
                    self.components.known.remove(&gone);
                    self.fed.remove(&gone);
                    affected.extend(self.catalog.remove_component(&gone.0, &gone.1));
                }
                self.components.done_once = true;
                affected.extend(self.finish_loading());
                affected
            }
        }
    }

    fn on_environment(
        &mut self,
        event: &watcher::Event<PartialObjectMeta<DeveloperEnvironment>>,
    ) -> Vec<EntityRef> {
        match event {
            watcher::Event::Init => {
                self.environments.relisting = Some(HashSet::new());
                vec![]
            }
            watcher::Event::InitApply(obj) | watcher::Event::Apply(obj) => {
                let key = (obj.namespace().unwrap_or_default(), obj.name_any());
                if let Some(listed) = &mut self.environments.relisting {
                    listed.insert(key.clone());
                }
                if self.environments.known.insert(key.clone()) {
                    self.catalog.set_environment(&key.0, &key.1, true)
                } else {
                    vec![]
                }
            }
            watcher::Event::Delete(obj) => {
                let key = (obj.namespace().unwrap_or_default(), obj.name_any());
                self.environments.known.remove(&key);
                self.catalog.set_environment(&key.0, &key.1, false)
            }
            watcher::Event::InitDone => {
                let mut affected = vec![];
                let listed = self.environments.relisting.take().unwrap_or_default();
                for gone in self
                    .environments
                    .known
                    .difference(&listed)
                    .cloned()
                    .collect::<Vec<_>>()
                {
                    self.environments.known.remove(&gone);
                    affected.extend(self.catalog.set_environment(&gone.0, &gone.1, false));
                }
                self.environments.done_once = true;
                affected.extend(self.finish_loading());
                affected
            }
        }
    }

    /// Once both kinds are listed: derive everything and reconcile every Component.
    fn finish_loading(&mut self) -> Vec<EntityRef> {
        let listed = self.components.done_once
            && self.environments.done_once
            && self.scorecard_listing.done_once;
        if self.synced || !listed {
            return vec![];
        }
        self.catalog.recompute();
        self.synced = true;
        info!(
            components = self.catalog.component_count(),
            environments = self.environments.known.len(),
            "catalog loaded"
        );
        self.catalog.components().cloned().collect()
    }

    fn forget_component(&mut self, key: &Key) -> Vec<EntityRef> {
        self.components.known.remove(key);
        self.fed.remove(key);
        if let Some(outcomes) = self.outcomes.remove(key) {
            self.stale_summaries
                .extend(outcomes.into_iter().map(|o| o.scorecard));
        }
        self.catalog.remove_component(&key.0, &key.1)
    }

    /// Takes in a Scorecard event. Returns the Components to re-score: all of them
    /// when a Scorecard changed (or when this completes the first listing).
    fn on_scorecard(
        &mut self,
        event: &watcher::Event<DeserializeGuard<Scorecard>>,
    ) -> Vec<EntityRef> {
        let changed = match event {
            watcher::Event::Init => {
                self.scorecard_listing.relisting = Some(HashSet::new());
                false
            }
            watcher::Event::InitApply(obj) | watcher::Event::Apply(obj) => {
                // An unreadable Scorecard keeps whatever it was; its controller says why.
                let Ok(scorecard) = &obj.0 else { return vec![] };
                let parsed = ParsedScorecard::new(scorecard);
                let key = (String::new(), parsed.name.clone());
                if let Some(listed) = &mut self.scorecard_listing.relisting {
                    listed.insert(key.clone());
                }
                self.scorecard_listing.known.insert(key);
                let same = self.scorecards.get(&parsed.name).is_some_and(|old| {
                    old.generation == parsed.generation && old.primary == parsed.primary
                });
                if !same {
                    self.stale_summaries.insert(parsed.name.clone());
                    self.scorecards
                        .insert(parsed.name.clone(), Arc::new(parsed));
                }
                !same
            }
            watcher::Event::Delete(obj) => {
                let name = obj.name_any();
                self.scorecard_listing
                    .known
                    .remove(&(String::new(), name.clone()));
                self.scorecards.remove(&name).is_some()
            }
            watcher::Event::InitDone => {
                let listed = self.scorecard_listing.relisting.take().unwrap_or_default();
                let gone: Vec<Key> = self
                    .scorecard_listing
                    .known
                    .difference(&listed)
                    .cloned()
                    .collect();
                for key in &gone {
                    self.scorecard_listing.known.remove(key);
                    self.scorecards.remove(&key.1);
                }
                self.scorecard_listing.done_once = true;
                !gone.is_empty()
            }
        };
        if changed {
            let mut ordered: Vec<Arc<ParsedScorecard>> =
                self.scorecards.values().cloned().collect();
            scoring::order(&mut ordered);
            self.ordered_scorecards = Arc::new(ordered);
        }
        let mut affected = if matches!(event, watcher::Event::InitDone) {
            self.finish_loading()
        } else {
            vec![]
        };
        if changed && self.synced && affected.is_empty() {
            affected = self.catalog.components().cloned().collect();
        }
        affected
    }

    /// Takes in a Namespace event. Returns the Components in a namespace whose labels
    /// changed, to be re-scored (Scorecards may select by namespace labels).
    fn on_namespace(
        &mut self,
        event: &watcher::Event<PartialObjectMeta<Namespace>>,
    ) -> Vec<EntityRef> {
        let changed: Vec<String> = match event {
            watcher::Event::Init => {
                self.namespace_listing.relisting = Some(HashSet::new());
                vec![]
            }
            watcher::Event::InitApply(ns) | watcher::Event::Apply(ns) => {
                let name = ns.name_any();
                if let Some(listed) = &mut self.namespace_listing.relisting {
                    listed.insert((name.clone(), String::new()));
                }
                self.namespace_listing
                    .known
                    .insert((name.clone(), String::new()));
                let labels = Arc::new(ns.labels().clone());
                match self.namespace_labels.insert(name.clone(), labels.clone()) {
                    Some(old) if old == labels => vec![],
                    _ => vec![name],
                }
            }
            watcher::Event::Delete(ns) => {
                let name = ns.name_any();
                self.namespace_listing
                    .known
                    .remove(&(name.clone(), String::new()));
                self.namespace_labels.remove(&name);
                vec![]
            }
            watcher::Event::InitDone => {
                let listed = self.namespace_listing.relisting.take().unwrap_or_default();
                let gone: Vec<Key> = self
                    .namespace_listing
                    .known
                    .difference(&listed)
                    .cloned()
                    .collect();
                for key in &gone {
                    self.namespace_listing.known.remove(key);
                    self.namespace_labels.remove(&key.0);
                }
                self.namespace_listing.done_once = true;
                return self.finish_loading();
            }
        };
        if !self.synced || changed.is_empty() {
            return vec![];
        }
        self.catalog
            .components()
            .filter(|c| changed.contains(&c.namespace))
            .cloned()
            .collect()
    }

    /// Records a Component's evaluation; the Scorecards it touches need a new summary.
    fn record_outcomes(&mut self, key: Key, outcomes: Vec<Outcome>) -> bool {
        let old = self.outcomes.get(&key);
        if old == Some(&outcomes) {
            return false;
        }
        let touched = old
            .into_iter()
            .flatten()
            .chain(&outcomes)
            .map(|o| o.scorecard.clone())
            .collect::<Vec<_>>();
        self.stale_summaries.extend(touched);
        self.outcomes.insert(key, outcomes);
        true
    }

    /// The view to write for `component` and the Scorecards to score it on, if the
    /// catalog is current for it.
    fn view_for(&self, component: &Component) -> Option<CurrentView> {
        let key = key_of(component);
        let current = self.synced && self.fed.get(&key) == component.meta().generation.as_ref();
        if !current {
            return None;
        }
        Some(CurrentView {
            view: self.catalog.view(&key.0, &key.1)?,
            scorecards: self.ordered_scorecards.clone(),
            namespace_labels: self
                .namespace_labels
                .get(&key.0)
                .cloned()
                .unwrap_or_default(),
        })
    }
}

/// What a reconcile needs from the shared state, taken in one lock.
struct CurrentView {
    view: EntityView,
    scorecards: Arc<Vec<Arc<ParsedScorecard>>>,
    namespace_labels: Arc<BTreeMap<String, String>>,
}

fn key_of(component: &Component) -> Key {
    (
        component.namespace().unwrap_or_default(),
        component.name_any(),
    )
}

/// The reference fields of a Component, as the catalog reads them.
fn refs_of(component: &Component) -> Refs {
    let spec = &component.spec;
    Refs {
        owner: spec.owner.clone(),
        system: spec.system.clone(),
        subcomponent_of: spec.subcomponent_of.clone(),
        depends_on: spec.depends_on.clone(),
        dependency_of: spec.dependency_of.clone(),
        provides_apis: spec.provides_apis.clone(),
        consumes_apis: spec.consumes_apis.clone(),
        ..Default::default()
    }
}

fn trigger_for(entity: &EntityRef) -> Trigger {
    ObjectRef::new(&entity.name).within(&entity.namespace)
}

/// What the Component and Scorecard controllers share: the catalog, the parsed
/// Scorecards and every Component's last evaluation, and the ways to ask for work.
#[derive(Clone)]
pub struct CatalogHandle {
    state: Arc<Mutex<State>>,
    triggers: mpsc::UnboundedSender<Trigger>,
    /// Woken when Scorecard summaries went stale.
    pub summaries: Arc<Notify>,
}

impl CatalogHandle {
    /// The handle, and the stream of Components to reconcile that its users feed.
    pub fn new() -> (CatalogHandle, mpsc::UnboundedReceiver<Trigger>) {
        let (triggers, triggered) = mpsc::unbounded();
        let handle = CatalogHandle {
            state: Arc::new(Mutex::new(State::new())),
            triggers,
            summaries: Arc::new(Notify::new()),
        };
        (handle, triggered)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("not poisoned")
    }

    /// Asks for the given Components to be reconciled.
    fn reconcile(&self, affected: &[EntityRef]) {
        for entity in affected {
            // Fails only once the controller has stopped.
            let _ = self.triggers.unbounded_send(trigger_for(entity));
        }
    }

    /// Takes in a Scorecard event (the Scorecard controller's watch feeds it).
    pub fn on_scorecard(&self, event: &watcher::Event<DeserializeGuard<Scorecard>>) {
        let affected = self.lock().on_scorecard(event);
        self.reconcile(&affected);
        self.summaries.notify_one();
    }

    /// Takes the Scorecards whose summaries are stale (none before loading finished:
    /// they stay stale until a summary can be counted).
    pub fn take_stale_summaries(&self) -> BTreeSet<String> {
        let mut state = self.lock();
        if !state.synced {
            return BTreeSet::new();
        }
        std::mem::take(&mut state.stale_summaries)
    }

    /// The summary `scorecard` should have, or `None` when its status says it already
    /// (or pave has not finished loading).
    pub fn summary(&self, scorecard: &Scorecard, now: Timestamp) -> Option<ScorecardStatus> {
        let state = self.lock();
        if !state.synced {
            return None;
        }
        let parsed = ParsedScorecard::new(scorecard);
        let current = scorecard.status.clone().unwrap_or_default();
        scoring::summary(&parsed, state.outcomes.values().flatten(), &current, now)
    }
}

pub async fn run(
    shared: Shared,
    catalog: CatalogHandle,
    triggered: mpsc::UnboundedReceiver<Trigger>,
) {
    let impact_pending = Arc::new(Notify::new());
    // Feeds the catalog, then asks for what a change affected to be reconciled.
    let readiness = shared.readiness.clone();
    let feed = {
        let (catalog, impact_pending) = (catalog.clone(), impact_pending.clone());
        let metrics = shared.metrics.clone();
        move |update: &dyn Fn(&mut State) -> Vec<EntityRef>| {
            let mut state = catalog.lock();
            let affected = update(&mut state);
            if state.catalog.impact_pending() {
                impact_pending.notify_one();
            }
            metrics.set_catalog_entities(state.catalog.entity_count());
            drop(state);
            catalog.reconcile(&affected);
        }
    };
    let (reader, writer) = reflector::store::<DeserializeGuard<Component>>();
    // Feeds the catalog in the stream itself, before the controller sees the object.
    let components = {
        let feed = feed.clone();
        let events = watcher(
            Api::<DeserializeGuard<Component>>::all(shared.client.clone()),
            watcher::Config::default().any_semantic(),
        )
        .default_backoff();
        report_watch(events, readiness.clone(), "components.platform.pave.dev")
            // The store keeps every Component; managed fields and kubectl's copy of the
            // last applied spec are most of an object's size and nothing here reads them.
            .modify(|obj| {
                obj.managed_fields_mut().clear();
                obj.annotations_mut()
                    .remove("kubectl.kubernetes.io/last-applied-configuration");
            })
            .reflect(writer)
            .inspect_ok(move |event| feed(&|state| state.on_component(event)))
            .touched_objects()
    };
    let environments = {
        let feed = feed.clone();
        let events = watcher(
            Api::<PartialObjectMeta<DeveloperEnvironment>>::all(shared.client.clone()),
            watcher::Config::default().any_semantic(),
        )
        .default_backoff();
        report_watch(events, readiness.clone(), ENVIRONMENTS).for_each(move |event| {
            if let Ok(event) = event {
                feed(&|state| state.on_environment(&event));
            }
            std::future::ready(())
        })
    };
    let namespaces = {
        let feed = feed.clone();
        let events = watcher(
            Api::<PartialObjectMeta<Namespace>>::all(shared.client.clone()),
            watcher::Config::default().any_semantic(),
        )
        .default_backoff();
        report_watch(events, readiness.clone(), "namespaces").for_each(move |event| {
            if let Ok(event) = event {
                feed(&|state| state.on_namespace(&event));
            }
            std::future::ready(())
        })
    };
    let refresh_impact = {
        let catalog = catalog.clone();
        async move {
            loop {
                impact_pending.notified().await;
                tokio::time::sleep(IMPACT_COALESCE).await;
                let changed = catalog.lock().catalog.refresh_impact();
                debug!(changed = changed.len(), "impact recounted");
                catalog.reconcile(&changed);
            }
        }
    };

    let queue = shared.metrics.queue(NAME);
    let controller = Controller::for_stream(queue.track(components), reader)
        .reconcile_on(queue.track_refs(triggered))
        .with_config(kube::runtime::controller::Config::default().concurrency(CONCURRENCY));
    let reconcile = move |obj: Arc<DeserializeGuard<Component>>, ctx: Arc<Context>| {
        let catalog = catalog.clone();
        async move { reconcile(obj, ctx, catalog).await }
    };
    let background = async move {
        tokio::select! {
            () = environments => {}
            () = namespaces => {}
            () = refresh_impact => {}
        }
    };
    controller::run_with_background(shared, NAME, controller, reconcile, background).await;
}

async fn reconcile(
    obj: Arc<DeserializeGuard<Component>>,
    ctx: Arc<Context>,
    catalog: CatalogHandle,
) -> Result<Action, Error> {
    let component = ctx.accept(&obj).await?;
    // Not yet current: the catalog triggers this Component again once it is.
    let Some(CurrentView {
        view,
        scorecards,
        namespace_labels,
    }) = catalog.lock().view_for(component)
    else {
        return Ok(Action::await_change());
    };
    let outcomes = scoring::evaluate(
        &scoring::entity(component, Some(&view)),
        &scorecards,
        &namespace_labels,
    );
    if catalog
        .lock()
        .record_outcomes(key_of(component), outcomes.clone())
    {
        catalog.summaries.notify_one();
    }
    let current = component.status.clone().unwrap_or_default();
    let now = Timestamp::now();
    let scores = scoring::scores(&outcomes, &current.scores, now);
    if let Some(status) = desired_status(&current, component.meta().generation, &view, scores, now)
    {
        let api = Api::<Component>::namespaced(
            ctx.client.clone(),
            &component.namespace().unwrap_or_default(),
        );
        ctx.apply_status(&api, component, status).await?;
    }
    Ok(Action::await_change())
}

/// The status the catalog wants for a Component (only the fields `pave-catalog` owns),
/// or `None` when `current` already says it.
fn desired_status(
    current: &ComponentStatus,
    generation: Option<i64>,
    view: &EntityView,
    scores: Vec<Score>,
    now: Timestamp,
) -> Option<ComponentStatus> {
    let relations: Vec<Relation> = view
        .relations
        .iter()
        .map(|r| Relation {
            type_: r.relation.as_str().to_owned(),
            target: r.target.to_string(),
            resolved: r.resolved,
        })
        .collect();
    let unresolved_refs: Vec<String> = view
        .unresolved
        .iter()
        .map(|u| u.reference.clone())
        .collect();
    let impact = Some(i64::from(view.impact));
    let ready = ready_condition(view, generation, now);
    let conditions = status_patch(
        current.observed_generation,
        &current.conditions,
        generation,
        vec![ready],
    );
    let unchanged = conditions.is_none()
        && current.relations == relations
        && current.unresolved_refs == unresolved_refs
        && current.impact == impact
        && current.scores == scores;
    if unchanged {
        return None;
    }
    let conditions = conditions.map_or_else(
        || {
            current
                .conditions
                .iter()
                .filter(|c| c.type_ == READY)
                .cloned()
                .collect()
        },
        |patch| patch.conditions,
    );
    Some(ComponentStatus {
        observed_generation: generation,
        conditions,
        relations,
        unresolved_refs,
        impact,
        scores,
    })
}

/// `Ready`: `True` when every reference resolves and no dependency cycle runs through
/// the Component; otherwise `False`, naming each missing reference and the cycle.
fn ready_condition(view: &EntityView, generation: Option<i64>, now: Timestamp) -> Condition {
    let cycle = view.cycle.as_ref().map(|path| {
        let names: Vec<String> = path
            .iter()
            .map(|e| format!("{}/{}", e.namespace, e.name))
            .collect();
        format!("dependency cycle: {}", names.join(" → "))
    });
    let missing: Vec<String> = view
        .unresolved
        .iter()
        .map(|u| format!("{} {}: {}", u.field, u.reference, u.reason))
        .collect();
    let (status, reason, message) = match (missing.is_empty(), cycle) {
        (true, None) => (
            Status::True,
            "Resolved",
            format!(
                "all {} references resolve",
                view.relations.iter().filter(|r| r.resolved).count()
            ),
        ),
        (true, Some(cycle)) => (Status::False, "DependencyCycle", cycle),
        (false, cycle) => {
            let mut message = format!("unresolved references: {}", missing.join("; "));
            if let Some(cycle) = cycle {
                message = format!("{message}; {cycle}");
            }
            (Status::False, "UnresolvedReference", message)
        }
    };
    conditions::new(READY, status, reason, message, generation, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pave_api::ComponentSpec;

    fn component(name: &str, depends_on: &[&str], generation: i64) -> Component {
        let mut c = Component::new(
            name,
            ComponentSpec {
                depends_on: depends_on.iter().map(|s| s.to_string()).collect(),
                ..ComponentSpec::new("service", "production", "team")
            },
        );
        c.metadata.namespace = Some("ns".into());
        c.metadata.generation = Some(generation);
        c
    }

    fn guard(c: &Component) -> DeserializeGuard<Component> {
        DeserializeGuard(Ok(c.clone()))
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
    }

    #[test]
    fn nothing_is_written_before_both_kinds_are_listed() {
        let mut state = State::new();
        let a = component("a", &["b"], 1);
        state.on_component(&watcher::Event::Init);
        state.on_component(&watcher::Event::InitApply(guard(&a)));
        assert!(state.on_component(&watcher::Event::InitDone).is_empty());
        assert!(
            state.view_for(&a).is_none(),
            "environments are not listed yet"
        );
        state.on_scorecard(&watcher::Event::Init);
        state.on_scorecard(&watcher::Event::InitDone);
        state.on_namespace(&watcher::Event::Init);
        state.on_namespace(&watcher::Event::InitDone);
        state.on_environment(&watcher::Event::Init);
        let all = state.on_environment(&watcher::Event::InitDone);
        assert_eq!(all, [EntityRef::component("ns", "a")]);
        assert!(state.view_for(&a).is_some());
        // An object newer than what the catalog was fed is not written from it.
        assert!(state.view_for(&component("a", &["b"], 2)).is_none());
    }

    #[test]
    fn a_relist_removes_what_was_deleted_meanwhile() {
        let mut state = State::new();
        let (a, b) = (component("a", &["b"], 1), component("b", &[], 1));
        for event in [
            watcher::Event::Init,
            watcher::Event::InitApply(guard(&a)),
            watcher::Event::InitApply(guard(&b)),
            watcher::Event::InitDone,
        ] {
            state.on_component(&event);
        }
        state.on_environment(&watcher::Event::Init);
        state.on_environment(&watcher::Event::InitDone);
        state.on_scorecard(&watcher::Event::Init);
        state.on_scorecard(&watcher::Event::InitDone);
        state.on_namespace(&watcher::Event::Init);
        state.on_namespace(&watcher::Event::InitDone);
        assert!(state.view_for(&a).unwrap().view.unresolved.is_empty());
        state.on_component(&watcher::Event::Init);
        state.on_component(&watcher::Event::InitApply(guard(&a)));
        let affected = state.on_component(&watcher::Event::InitDone);
        assert!(affected.contains(&EntityRef::component("ns", "a")));
        assert_eq!(state.view_for(&a).unwrap().view.unresolved.len(), 1);
    }

    #[test]
    fn status_names_missing_references_and_is_not_rewritten() {
        let mut catalog = Catalog::new();
        catalog.upsert_component(
            "ns",
            "a",
            &Refs {
                owner: "team".into(),
                depends_on: vec!["b".into()],
                ..Default::default()
            },
        );
        let view = catalog.view("ns", "a").unwrap();
        let status =
            desired_status(&ComponentStatus::default(), Some(1), &view, vec![], at(10)).unwrap();
        let ready = conditions::find(&status.conditions, READY).unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "UnresolvedReference")
        );
        assert_eq!(
            ready.message,
            "unresolved references: spec.dependsOn component:ns/b: no Component b in namespace ns"
        );
        assert_eq!(status.unresolved_refs, ["component:ns/b"]);
        assert_eq!(
            desired_status(&status, Some(1), &view, vec![], at(20)),
            None,
            "the same answer later is no write"
        );
    }

    #[test]
    fn a_cycle_is_named_with_its_path() {
        let mut catalog = Catalog::new();
        for (name, on) in [("a", "b"), ("b", "a")] {
            catalog.upsert_component(
                "ns",
                name,
                &Refs {
                    owner: "team".into(),
                    depends_on: vec![on.into()],
                    ..Default::default()
                },
            );
        }
        let ready = ready_condition(&catalog.view("ns", "a").unwrap(), Some(1), at(0));
        assert_eq!(ready.reason, "DependencyCycle");
        assert_eq!(ready.message, "dependency cycle: ns/a → ns/b → ns/a");
    }
}
