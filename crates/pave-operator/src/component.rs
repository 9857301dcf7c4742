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

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::channel::mpsc;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use kube::core::{DeserializeGuard, PartialObjectMeta};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use pave_api::component::{ComponentStatus, Relation};
use pave_api::conditions::{self, READY, Status};
use pave_api::{Component, DeveloperEnvironment};
use pave_catalog::{Catalog, ComponentRefs, ComponentView, EntityRef};
use tokio::sync::Notify;
use tracing::{debug, info};

use crate::controller::{self, Context, Observed, Shared, status_patch};
use crate::error::Error;

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
type Trigger = ObjectRef<DeserializeGuard<Component>>;

/// The catalog and what the controller knows about how current it is.
struct State {
    catalog: Catalog,
    /// The generation of each Component as last fed into the catalog. A reconcile
    /// writes only when its object is that generation.
    fed: HashMap<Key, i64>,
    components: Listing,
    environments: Listing,
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
                self.components.known.remove(&key);
                self.fed.remove(&key);
                self.catalog.remove_component(&key.0, &key.1)
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
                    self.catalog.set_resource(&key.0, &key.1, true)
                } else {
                    vec![]
                }
            }
            watcher::Event::Delete(obj) => {
                let key = (obj.namespace().unwrap_or_default(), obj.name_any());
                self.environments.known.remove(&key);
                self.catalog.set_resource(&key.0, &key.1, false)
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
                    affected.extend(self.catalog.set_resource(&gone.0, &gone.1, false));
                }
                self.environments.done_once = true;
                affected.extend(self.finish_loading());
                affected
            }
        }
    }

    /// Once both kinds are listed: derive everything and reconcile every Component.
    fn finish_loading(&mut self) -> Vec<EntityRef> {
        if self.synced || !(self.components.done_once && self.environments.done_once) {
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

    /// The view to write for `component`, if the catalog is current for it.
    fn view_for(&self, component: &Component) -> Option<ComponentView> {
        let key = key_of(component);
        let current = self.synced && self.fed.get(&key) == component.meta().generation.as_ref();
        if !current {
            return None;
        }
        self.catalog.view(&key.0, &key.1)
    }
}

fn key_of(component: &Component) -> Key {
    (
        component.namespace().unwrap_or_default(),
        component.name_any(),
    )
}

/// The reference fields of a Component, as the catalog reads them.
fn refs_of(component: &Component) -> ComponentRefs {
    let spec = &component.spec;
    ComponentRefs {
        owner: spec.owner.clone(),
        system: spec.system.clone(),
        subcomponent_of: spec.subcomponent_of.clone(),
        depends_on: spec.depends_on.clone(),
        provides_apis: spec.provides_apis.clone(),
        consumes_apis: spec.consumes_apis.clone(),
    }
}

fn trigger_for(entity: &EntityRef) -> Trigger {
    ObjectRef::new(&entity.name).within(&entity.namespace)
}

pub async fn run(shared: Shared) {
    let state = Arc::new(Mutex::new(State::new()));
    let (triggers, triggered) = mpsc::unbounded::<Trigger>();
    let impact_pending = Arc::new(Notify::new());

    // Asks the controller to reconcile what a change affected.
    let send = {
        let (triggers, impact_pending) = (triggers.clone(), impact_pending.clone());
        move |affected: Vec<EntityRef>, pending: bool| {
            if pending {
                impact_pending.notify_one();
            }
            for entity in &affected {
                // Fails only once the controller has stopped.
                let _ = triggers.unbounded_send(trigger_for(entity));
            }
        }
    };
    let (reader, writer) = reflector::store::<DeserializeGuard<Component>>();
    // Feeds the catalog in the stream itself, before the controller sees the object.
    let components = {
        let (state, send) = (state.clone(), send.clone());
        watcher(
            Api::<DeserializeGuard<Component>>::all(shared.client.clone()),
            watcher::Config::default().any_semantic(),
        )
        .default_backoff()
        // The store keeps every Component; managed fields and kubectl's copy of the
        // last applied spec are most of an object's size and nothing here reads them.
        .modify(|obj| {
            obj.managed_fields_mut().clear();
            obj.annotations_mut()
                .remove("kubectl.kubernetes.io/last-applied-configuration");
        })
        .reflect(writer)
        .inspect_ok(move |event| {
            let mut state = state.lock().expect("not poisoned");
            let affected = state.on_component(event);
            let pending = state.catalog.impact_pending();
            drop(state);
            send(affected, pending);
        })
        .touched_objects()
    };
    let environments = {
        let (state, send) = (state.clone(), send.clone());
        watcher(
            Api::<PartialObjectMeta<DeveloperEnvironment>>::all(shared.client.clone()),
            watcher::Config::default().any_semantic(),
        )
        .default_backoff()
        .for_each(move |event| {
            if let Ok(event) = event {
                let mut state = state.lock().expect("not poisoned");
                let affected = state.on_environment(&event);
                let pending = state.catalog.impact_pending();
                drop(state);
                send(affected, pending);
            }
            std::future::ready(())
        })
    };
    let refresh_impact = {
        let (state, triggers, impact_pending) = (state.clone(), triggers, impact_pending);
        async move {
            loop {
                impact_pending.notified().await;
                tokio::time::sleep(IMPACT_COALESCE).await;
                let changed = state.lock().expect("not poisoned").catalog.refresh_impact();
                debug!(changed = changed.len(), "impact recounted");
                for entity in &changed {
                    let _ = triggers.unbounded_send(trigger_for(entity));
                }
            }
        }
    };

    let controller = Controller::for_stream(components, reader)
        .reconcile_on(triggered)
        .with_config(kube::runtime::controller::Config::default().concurrency(CONCURRENCY));
    let reconcile = move |obj: Arc<DeserializeGuard<Component>>, ctx: Arc<Context>| {
        let state = state.clone();
        async move { reconcile(obj, ctx, state).await }
    };
    let shutdown = shared.shutdown.clone();
    let background = async move {
        tokio::select! {
            _ = environments => {}
            _ = refresh_impact => {}
            _ = shutdown => {}
        }
    };
    futures::future::join(
        controller::run_controller(shared, NAME, controller, reconcile),
        background,
    )
    .await;
}

async fn reconcile(
    obj: Arc<DeserializeGuard<Component>>,
    ctx: Arc<Context>,
    state: Arc<Mutex<State>>,
) -> Result<Action, Error> {
    let component = ctx.accept(&obj).await?;
    // Not yet current: the catalog triggers this Component again once it is.
    let Some(view) = state.lock().expect("not poisoned").view_for(component) else {
        return Ok(Action::await_change());
    };
    let current = component.status.clone().unwrap_or_default();
    if let Some(status) = desired_status(
        &current,
        component.meta().generation,
        &view,
        Timestamp::now(),
    ) {
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
    view: &ComponentView,
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
        && current.impact == impact;
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
        scores: vec![],
    })
}

/// `Ready`: `True` when every reference resolves and no dependency cycle runs through
/// the Component; otherwise `False`, naming each missing reference and the cycle.
fn ready_condition(view: &ComponentView, generation: Option<i64>, now: Timestamp) -> Condition {
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
        assert!(state.view_for(&a).unwrap().unresolved.is_empty());
        state.on_component(&watcher::Event::Init);
        state.on_component(&watcher::Event::InitApply(guard(&a)));
        let affected = state.on_component(&watcher::Event::InitDone);
        assert!(affected.contains(&EntityRef::component("ns", "a")));
        assert_eq!(state.view_for(&a).unwrap().unresolved.len(), 1);
    }

    #[test]
    fn status_names_missing_references_and_is_not_rewritten() {
        let mut catalog = Catalog::new();
        catalog.upsert_component(
            "ns",
            "a",
            &ComponentRefs {
                owner: "team".into(),
                depends_on: vec!["b".into()],
                ..Default::default()
            },
        );
        let view = catalog.view("ns", "a").unwrap();
        let status = desired_status(&ComponentStatus::default(), Some(1), &view, at(10)).unwrap();
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
            desired_status(&status, Some(1), &view, at(20)),
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
                &ComponentRefs {
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
