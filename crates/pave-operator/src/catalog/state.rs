//! What the catalog controllers know: the catalog, how far each watch has listed,
//! the generation each object was fed at, the Scorecards and every Component's last
//! evaluation.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Namespace;
use kube::core::{DeserializeGuard, PartialObjectMeta};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use pave_api::{DeveloperEnvironment, Scorecard};
use pave_catalog::{Catalog, EntityRef, EntityView, Kind};
use tracing::info;

use super::Key;
use super::kinds::{CatalogKind, KINDS};
use super::trim::lists_digest;
use crate::scoring::{self, Outcome, ParsedScorecard};

/// The catalog and what the controllers know about how current it is.
pub(super) struct State {
    pub catalog: Catalog,
    /// Every object of a catalog kind, as last fed into the catalog.
    fed: HashMap<EntityRef, Fed>,
    /// Each catalog kind's listing.
    listings: HashMap<Kind, KindListing>,
    environments: Listing,
    /// Every Scorecard, parsed, in the order their scores appear on a Component.
    scorecards: BTreeMap<String, Arc<ParsedScorecard>>,
    pub ordered_scorecards: Arc<Vec<Arc<ParsedScorecard>>>,
    scorecard_listing: Listing,
    /// Each Component's last evaluation, from which the Scorecards' summaries are
    /// counted without evaluating anything again.
    pub outcomes: HashMap<Key, Vec<Outcome>>,
    /// Scorecards whose summary is out of date.
    pub stale_summaries: BTreeSet<String>,
    /// Every namespace's labels, for Scorecards' `namespaceSelector`.
    pub namespace_labels: HashMap<String, Arc<BTreeMap<String, String>>>,
    namespace_listing: Listing,
    pub synced: bool,
}

/// An object of a catalog kind as the catalog has it.
struct Fed {
    /// Its generation: a reconcile writes only when its object is that generation.
    generation: i64,
    /// Seen by the relist under way (meaningless while none is).
    listed: bool,
    /// The digest of the lists in its status, which the store does not keep (see
    /// `trim`).
    lists: u64,
}

/// A catalog kind's listing progress. The objects a relist has seen are marked in
/// `fed` rather than kept in a set of their own: at 100,000 Components a second
/// copy of every name is megabytes.
#[derive(Default)]
struct KindListing {
    done_once: bool,
}

/// One watch's listing progress: what a (re)list has seen so far, so objects deleted
/// while the watch was down are removed when the relist ends.
#[derive(Default)]
struct Listing {
    done_once: bool,
    known: HashSet<Key>,
    relisting: Option<HashSet<Key>>,
}

pub(super) fn key_of<K: Resource>(obj: &K) -> Key {
    (obj.namespace().unwrap_or_default(), obj.name_any())
}

impl State {
    pub fn new() -> State {
        let mut catalog = Catalog::new();
        // Loading: derive cycles and impact once, when every listing is complete.
        catalog.defer();
        State {
            catalog,
            fed: HashMap::new(),
            listings: KINDS
                .into_iter()
                .map(|k| (k, KindListing::default()))
                .collect(),
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

    fn listing(&mut self, kind: &Kind) -> &mut KindListing {
        self.listings
            .get_mut(kind)
            .expect("a listing per catalog kind")
    }

    /// Takes in an event of a catalog kind's watch. Returns the entities to reconcile.
    pub fn on_entity<K: CatalogKind>(
        &mut self,
        event: &watcher::Event<DeserializeGuard<K>>,
    ) -> Vec<EntityRef> {
        match event {
            watcher::Event::Init => {
                for (entity, fed) in &mut self.fed {
                    if entity.kind == K::KIND {
                        fed.listed = false;
                    }
                }
                vec![]
            }
            watcher::Event::InitApply(obj) | watcher::Event::Apply(obj) => {
                // An object pave cannot read keeps whatever the catalog had for it; the
                // controller reports it on the object.
                let Ok(object) = &obj.0 else { return vec![] };
                let key = key_of(object);
                let entity = EntityRef::new(K::KIND, &key.0, &key.1);
                let fed = Fed {
                    generation: object.meta().generation.unwrap_or_default(),
                    listed: true,
                    lists: lists_digest(object.status()),
                };
                self.fed.insert(entity.clone(), fed);
                self.catalog.upsert(entity, &object.refs())
            }
            watcher::Event::Delete(obj) => {
                let key = (obj.namespace().unwrap_or_default(), obj.name_any());
                self.forget(&K::KIND, &key)
            }
            watcher::Event::InitDone => {
                let mut affected = vec![];
                let gone: Vec<Key> = self
                    .fed
                    .iter()
                    .filter(|(entity, fed)| entity.kind == K::KIND && !fed.listed)
                    .map(|(entity, _)| (entity.namespace.clone(), entity.name.clone()))
                    .collect();
                for key in gone {
                    affected.extend(self.forget(&K::KIND, &key));
                }
                self.listing(&K::KIND).done_once = true;
                affected.extend(self.finish_loading());
                affected
            }
        }
    }

    fn forget(&mut self, kind: &Kind, key: &Key) -> Vec<EntityRef> {
        let entity = EntityRef::new(kind.clone(), &key.0, &key.1);
        self.fed.remove(&entity);
        if *kind == Kind::Component
            && let Some(outcomes) = self.outcomes.remove(key)
        {
            self.stale_summaries
                .extend(outcomes.into_iter().map(|o| o.scorecard));
        }
        self.catalog.remove(&entity)
    }

    pub fn on_environment(
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

    /// Once every kind is listed: derive everything and reconcile every object.
    fn finish_loading(&mut self) -> Vec<EntityRef> {
        let listed = self.listings.values().all(|l| l.done_once)
            && self.environments.done_once
            && self.scorecard_listing.done_once;
        if self.synced || !listed {
            return vec![];
        }
        self.catalog.recompute();
        self.synced = true;
        info!(
            components = self.catalog.component_count(),
            entities = self.fed.len(),
            environments = self.environments.known.len(),
            "catalog loaded"
        );
        self.catalog.entities().cloned().collect()
    }

    /// Takes in a Scorecard event. Returns the Components to re-score: all of them
    /// when a Scorecard changed (or when this completes the first listing).
    pub fn on_scorecard(
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
    pub fn on_namespace(
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
    /// A Component no Scorecard selects keeps no entry.
    pub fn record_outcomes(&mut self, key: Key, outcomes: Vec<Outcome>) -> bool {
        let old = self.outcomes.get(&key).map_or(&[][..], Vec::as_slice);
        if old == outcomes.as_slice() {
            return false;
        }
        let touched = old
            .iter()
            .chain(&outcomes)
            .map(|o| o.scorecard.clone())
            .collect::<Vec<_>>();
        self.stale_summaries.extend(touched);
        if outcomes.is_empty() {
            self.outcomes.remove(&key);
        } else {
            self.outcomes.insert(key, outcomes);
        }
        true
    }

    /// The view to write for `object`, if the catalog is current for it, and the
    /// digest of the lists its status has.
    pub fn view_for<K: CatalogKind>(&self, object: &K) -> Option<(EntityView, u64)> {
        let entity = EntityRef::new(
            K::KIND,
            &object.namespace().unwrap_or_default(),
            &object.name_any(),
        );
        let fed = self.fed.get(&entity)?;
        if !self.synced || Some(fed.generation) != object.meta().generation {
            return None;
        }
        Some((self.catalog.view_of(&entity)?, fed.lists))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pave_api::{ApiEntity, Component, ComponentSpec, Domain, Group, Resource, System, User};

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

    fn list_nothing<K: CatalogKind>(state: &mut State) -> Vec<EntityRef> {
        state.on_entity::<K>(&watcher::Event::Init);
        state.on_entity::<K>(&watcher::Event::InitDone)
    }

    /// Lists every watch but Components' and environments', with nothing in them.
    fn list_the_rest(state: &mut State) {
        for kind in [
            list_nothing::<Group>,
            list_nothing::<User>,
            list_nothing::<System>,
            list_nothing::<Domain>,
            list_nothing::<ApiEntity>,
            list_nothing::<Resource>,
        ] {
            assert!(kind(state).is_empty());
        }
        state.on_scorecard(&watcher::Event::Init);
        state.on_scorecard(&watcher::Event::InitDone);
        state.on_namespace(&watcher::Event::Init);
        state.on_namespace(&watcher::Event::InitDone);
    }

    #[test]
    fn nothing_is_written_before_every_kind_is_listed() {
        let mut state = State::new();
        let a = component("a", &["b"], 1);
        state.on_entity::<Component>(&watcher::Event::Init);
        state.on_entity::<Component>(&watcher::Event::InitApply(guard(&a)));
        assert!(
            state
                .on_entity::<Component>(&watcher::Event::InitDone)
                .is_empty()
        );
        list_the_rest(&mut state);
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
            state.on_entity::<Component>(&event);
        }
        state.on_environment(&watcher::Event::Init);
        state.on_environment(&watcher::Event::InitDone);
        list_the_rest(&mut state);
        assert!(state.view_for(&a).unwrap().0.unresolved.is_empty());
        state.on_entity::<Component>(&watcher::Event::Init);
        state.on_entity::<Component>(&watcher::Event::InitApply(guard(&a)));
        let affected = state.on_entity::<Component>(&watcher::Event::InitDone);
        assert!(affected.contains(&EntityRef::component("ns", "a")));
        assert_eq!(state.view_for(&a).unwrap().0.unresolved.len(), 1);
    }
}
