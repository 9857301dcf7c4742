//! The catalog graph: every entity's references, resolved against what exists, with
//! the reverse relations, group membership, dependency cycles and impact derived from
//! them.
//!
//! Updates are incremental. Each change returns the entities whose view (relations,
//! unresolved references, members, cycle, impact) may have changed, so the controller
//! recomputes and writes only those. Entities are interned to dense ids; relations are
//! kept in both directions so "who points at X" is a lookup, never a scan.
//!
//! An entity is kept while it has a reason to be: its object exists, it references
//! something, or something references it. A deleted entity that others name stays
//! as their dangling reference and goes with the last one; whatever it alone named
//! goes with it. Freed ids are handed out again, so memory follows the largest
//! catalog seen, not the number of objects ever created.

mod index;
mod resolve;
mod view;

use std::collections::{HashMap, HashSet, VecDeque};

pub use view::{EntityView, Unresolved};

use crate::derive::DependencyGraph;
use crate::entity_ref::{EntityRef, Kind};
use crate::refs::Refs;
use crate::relation::RelationType;

pub(crate) type Id = u32;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Edge {
    relation: RelationType,
    other: Id,
}

#[derive(Debug)]
struct Node {
    /// Meaningless in a free slot (see [`Node::free`]).
    entity: EntityRef,
    /// An object of the entity's kind exists.
    exists: bool,
    /// A DeveloperEnvironment of this name exists (for `resource:` entities).
    environment: bool,
    /// Forward relations this entity wrote, sorted and without duplicates.
    out: Vec<Edge>,
    /// References that did not parse, with the field they came from.
    malformed: Vec<(&'static str, String)>,
    /// Reverse index: forward relations of other entities that point here.
    incoming: Vec<Edge>,
}

impl Node {
    fn new(entity: EntityRef) -> Node {
        Node {
            entity,
            exists: false,
            environment: false,
            out: vec![],
            malformed: vec![],
            incoming: vec![],
        }
    }

    /// What a freed slot holds until it is reused: nothing that allocates, and
    /// nothing that exists, so every scan over the nodes passes it by.
    fn free() -> Node {
        Node::new(EntityRef {
            kind: Kind::Other(String::new()),
            namespace: String::new(),
            name: String::new(),
        })
    }

    /// Something a reference can land on: the object, or for a `resource:` an
    /// environment of that name.
    fn present(&self) -> bool {
        self.exists || self.environment
    }

    /// Nothing needs this entity: no object, no references of its own, nobody
    /// referring to it (so no API provider either).
    fn unused(&self) -> bool {
        !self.present()
            && self.out.is_empty()
            && self.malformed.is_empty()
            && self.incoming.is_empty()
    }
}

/// The catalog. See the module documentation.
#[derive(Debug, Default)]
pub struct Catalog {
    /// Every entity held, to its id; freed entities are removed.
    ids: index::Index,
    nodes: Vec<Node>,
    /// Ids of freed slots in `nodes`, reused before `nodes` grows.
    free: Vec<Id>,
    /// Components providing each API, by API id.
    providers: HashMap<Id, u32>,
    /// How many objects of each checked kind (Group, System, Domain, API) each
    /// namespace holds: references into a namespace are checked against a kind
    /// once it holds one (see `resolve`).
    census: HashMap<(String, Kind), u32>,
    derived: DependencyGraph,
}

impl Catalog {
    pub fn new() -> Catalog {
        Catalog::default()
    }

    /// Adds or replaces an entity of any kind. Returns the entities whose view may
    /// have changed.
    pub fn upsert(&mut self, entity: EntityRef, refs: &Refs) -> Vec<EntityRef> {
        let namespace = entity.namespace.clone();
        let id = self.intern(entity);
        let (out, malformed) = self.parse_refs(&namespace, refs);
        self.replace(id, true, out, malformed)
    }

    /// Removes an entity. Returns the entities whose view may have changed.
    pub fn remove(&mut self, entity: &EntityRef) -> Vec<EntityRef> {
        match self.ids.get(&self.nodes, entity) {
            Some(id) => self.replace(id, false, vec![], vec![]),
            None => vec![],
        }
    }

    /// Adds or replaces a Component.
    pub fn upsert_component(&mut self, namespace: &str, name: &str, refs: &Refs) -> Vec<EntityRef> {
        self.upsert(EntityRef::component(namespace, name), refs)
    }

    /// Removes a Component.
    pub fn remove_component(&mut self, namespace: &str, name: &str) -> Vec<EntityRef> {
        self.remove(&EntityRef::component(namespace, name))
    }

    /// Records that a DeveloperEnvironment exists or not: a `resource:` of its name
    /// resolves to it. Returns the entities whose view may have changed.
    pub fn set_environment(&mut self, namespace: &str, name: &str, exists: bool) -> Vec<EntityRef> {
        let entity = EntityRef::resource(namespace, name);
        let id = match self.ids.get(&self.nodes, &entity) {
            Some(id) => id,
            None if exists => self.intern(entity),
            None => return vec![],
        };
        let node = &mut self.nodes[id as usize];
        let was = node.present();
        node.environment = exists;
        let mut affected = HashSet::from([id]);
        if was != node.present() {
            affected.extend(node.incoming.iter().map(|e| e.other));
        }
        let result = self.existing(affected);
        self.release_if_unused(id);
        result
    }

    /// How many Components exist.
    pub fn component_count(&self) -> usize {
        self.count(&Kind::Component)
    }

    /// How many objects of `kind` exist.
    pub fn count(&self, kind: &Kind) -> usize {
        self.nodes
            .iter()
            .filter(|n| n.exists && n.entity.kind == *kind)
            .count()
    }

    /// How many entities the graph holds: every object and environment that exists,
    /// and every entity one of them references (the `/metrics` gauge of its size).
    pub fn entity_count(&self) -> usize {
        self.ids.len()
    }

    /// Every existing Component, for a full pass.
    pub fn components(&self) -> impl Iterator<Item = &EntityRef> {
        self.entities().filter(|e| e.kind == Kind::Component)
    }

    /// Every entity whose object exists, for a full pass.
    pub fn entities(&self) -> impl Iterator<Item = &EntityRef> {
        self.nodes.iter().filter(|n| n.exists).map(|n| &n.entity)
    }

    fn intern(&mut self, entity: EntityRef) -> Id {
        if let Some(id) = self.ids.get(&self.nodes, &entity) {
            return id;
        }
        let id = match self.free.pop() {
            Some(id) => {
                self.nodes[id as usize] = Node::new(entity);
                id
            }
            None => {
                let id = Id::try_from(self.nodes.len()).expect("fewer than 2^32 entities");
                self.nodes.push(Node::new(entity));
                id
            }
        };
        self.ids.insert(&self.nodes, id);
        id
    }

    /// Frees `id` if nothing needs it any more. Only a node that lost its object, its
    /// references or a referrer can become unused, so [`Catalog::replace`] asks for
    /// exactly those.
    fn release_if_unused(&mut self, id: Id) {
        let node = &mut self.nodes[id as usize];
        if !node.unused() {
            return;
        }
        let held = self
            .ids
            .remove(&self.nodes, &self.nodes[id as usize].entity);
        debug_assert_eq!(held, Some(id), "a slot is freed once");
        self.nodes[id as usize] = Node::free();
        self.derived.release(id);
        self.free.push(id);
    }

    fn parse_refs(
        &mut self,
        namespace: &str,
        refs: &Refs,
    ) -> (Vec<Edge>, Vec<(&'static str, String)>) {
        let mut out = Vec::new();
        let mut malformed = Vec::new();
        for field in refs.fields() {
            for text in field.texts {
                match EntityRef::parse(text, field.default_kind.clone(), namespace) {
                    Ok(target) => out.push(Edge {
                        relation: field.relation,
                        other: self.intern(target),
                    }),
                    Err(_) => malformed.push((field.name, text.clone())),
                }
            }
        }
        out.sort();
        out.dedup();
        malformed.sort();
        (out, malformed)
    }

    /// Installs a node's new existence and forward relations, keeps the reverse index,
    /// the census and the derived graph in step, and collects every entity that can
    /// see the difference.
    fn replace(
        &mut self,
        id: Id,
        exists: bool,
        out: Vec<Edge>,
        malformed: Vec<(&'static str, String)>,
    ) -> Vec<EntityRef> {
        let node = &mut self.nodes[id as usize];
        let (was, was_present) = (node.exists, node.present());
        node.exists = exists;
        let now_present = node.present();
        let old_out = std::mem::replace(&mut node.out, out);
        node.malformed = malformed;
        let new_out = node.out.clone();

        let mut affected: HashSet<Id> = HashSet::from([id]);
        // Whoever points here sees it appear or disappear.
        if was_present != now_present {
            affected.extend(self.nodes[id as usize].incoming.iter().map(|e| e.other));
        }
        if was != exists {
            self.count_object(id, exists, &mut affected);
        }
        let removed: Vec<Edge> = old_out
            .iter()
            .filter(|e| new_out.binary_search(e).is_err())
            .copied()
            .collect();
        let added: Vec<Edge> = new_out
            .iter()
            .filter(|e| old_out.binary_search(e).is_err())
            .copied()
            .collect();
        for edge in &removed {
            let incoming = &mut self.nodes[edge.other as usize].incoming;
            let reverse = Edge {
                relation: edge.relation,
                other: id,
            };
            if let Some(pos) = incoming.iter().position(|e| *e == reverse) {
                incoming.swap_remove(pos);
            }
        }
        for edge in &added {
            self.nodes[edge.other as usize].incoming.push(Edge {
                relation: edge.relation,
                other: id,
            });
        }
        for edge in removed.iter().chain(&added) {
            affected.insert(edge.other);
            if edge.relation == RelationType::ProvidesApi {
                self.api_provider_changed(edge.other, added.contains(edge), &mut affected);
            }
        }

        // Dependencies: this node's own, and those of the targets its dependencyOf
        // names (`a.dependencyOf: [b]` is b depending on a).
        let mut recount = vec![id];
        recount.extend(
            removed
                .iter()
                .chain(&added)
                .filter(|e| e.relation == RelationType::DependencyOf)
                .map(|e| e.other),
        );
        recount.sort_unstable();
        recount.dedup();
        for node in recount {
            let deps = self.dependency_targets(node);
            if self.derived.dependencies(node) != deps.as_slice() {
                let changed = self.derived.set_dependencies(node, deps, self.nodes.len());
                affected.extend(changed);
            }
        }

        // Transitive members move for every group above one whose membership or
        // hierarchy changed.
        let org_changed = removed.iter().chain(&added).any(|e| e.relation.is_org())
            || (was_present != now_present
                && matches!(
                    self.nodes[id as usize].entity.kind,
                    Kind::Group | Kind::User
                ));
        if org_changed {
            let groups: Vec<Id> = affected
                .iter()
                .copied()
                .filter(|&g| self.nodes[g as usize].entity.kind == Kind::Group)
                .collect();
            affected.extend(self.ancestors(&groups));
        }

        let mut result = self.existing(affected);
        // A removed entity has no view, but the controller still wants to know.
        if was && !exists {
            result.push(self.nodes[id as usize].entity.clone());
            result.sort();
            result.dedup();
        }

        // Last, once nothing above reads them: this node may have lost its object and
        // its references, the targets it stopped naming a referrer. Each once: a target
        // named in two fields (an API provided and consumed) must not be freed twice.
        let mut unneeded: Vec<Id> = removed.iter().map(|e| e.other).chain([id]).collect();
        unneeded.sort_unstable();
        unneeded.dedup();
        for id in unneeded {
            self.release_if_unused(id);
        }
        result
    }

    /// The entities among `ids` whose objects exist, sorted.
    fn existing(&self, ids: HashSet<Id>) -> Vec<EntityRef> {
        let mut result: Vec<EntityRef> = ids
            .into_iter()
            .map(|id| &self.nodes[id as usize])
            .filter(|n| n.exists)
            .map(|n| n.entity.clone())
            .collect();
        result.sort();
        result
    }

    /// Keeps the count of providers of `api`; its consumers see it come and go where
    /// APIs are resolved by their providers (see `resolve`).
    fn api_provider_changed(&mut self, api: Id, added: bool, affected: &mut HashSet<Id>) {
        let count = self.providers.entry(api).or_insert(0);
        let before = *count;
        if added {
            *count += 1;
        } else {
            *count = count.saturating_sub(1);
        }
        if (before == 0) != (*count == 0) {
            affected.extend(self.nodes[api as usize].incoming.iter().map(|e| e.other));
        }
        if *count == 0 {
            self.providers.remove(&api);
        }
    }

    /// The Components an existing Component depends on (cycles and impact are about
    /// these edges): its `dependsOn`, and every Component naming it in `dependencyOf`.
    fn dependency_targets(&self, id: Id) -> Vec<Id> {
        let node = &self.nodes[id as usize];
        if !node.exists || node.entity.kind != Kind::Component {
            return vec![];
        }
        let is_component = |other: Id| self.nodes[other as usize].entity.kind == Kind::Component;
        let mut targets: Vec<Id> = node
            .out
            .iter()
            .filter(|e| e.relation == RelationType::DependsOn && is_component(e.other))
            .chain(
                node.incoming
                    .iter()
                    .filter(|e| e.relation == RelationType::DependencyOf && is_component(e.other)),
            )
            .map(|e| e.other)
            .collect();
        targets.sort_unstable();
        targets.dedup();
        targets
    }

    /// The groups directly below an existing group: its `children`, and the groups
    /// naming it as `parent`.
    fn child_groups(&self, id: Id) -> impl Iterator<Item = Id> + '_ {
        let node = &self.nodes[id as usize];
        let out = node
            .out
            .iter()
            .filter(|e| e.relation == RelationType::ParentOf);
        let incoming = node
            .incoming
            .iter()
            .filter(|e| e.relation == RelationType::ChildOf);
        out.chain(incoming).map(|e| e.other).filter(|&g| {
            self.nodes[g as usize].exists && self.nodes[g as usize].entity.kind == Kind::Group
        })
    }

    /// Every group above `groups` (not including them unless one is above another).
    fn ancestors(&self, groups: &[Id]) -> HashSet<Id> {
        let mut seen: HashSet<Id> = HashSet::new();
        let mut queue: VecDeque<Id> = groups.iter().copied().collect();
        while let Some(at) = queue.pop_front() {
            let node = &self.nodes[at as usize];
            let parents = node
                .out
                .iter()
                .filter(|e| e.relation == RelationType::ChildOf)
                .chain(
                    node.incoming
                        .iter()
                        .filter(|e| e.relation == RelationType::ParentOf),
                )
                .map(|e| e.other);
            for parent in parents {
                if seen.insert(parent) {
                    queue.push_back(parent);
                }
            }
        }
        seen
    }

    /// Stops deriving cycles and impact on every update, for loading a whole catalog:
    /// updates still report relation changes, and [`Catalog::recompute`] derives
    /// everything once at the end.
    pub fn defer(&mut self) {
        self.derived.deferred = true;
    }

    /// Rebuilds cycles and impact from scratch and resumes incremental updates.
    pub fn recompute(&mut self) {
        self.derived.recompute(self.nodes.len());
    }

    /// Whether an update reached too far to recount impact itself; then
    /// [`Catalog::refresh_impact`] brings it up to date. Relations, references and
    /// cycles are always current.
    pub fn impact_pending(&self) -> bool {
        self.derived.impact_stale()
    }

    /// Recomputes impact if it is pending. Returns the Components whose impact changed.
    pub fn refresh_impact(&mut self) -> Vec<EntityRef> {
        let changed: HashSet<Id> = self.derived.refresh_impact().into_iter().collect();
        self.existing(changed)
    }

    /// Sets how much an update may recount of impact itself (tests and benchmarks).
    #[doc(hidden)]
    pub fn set_incremental_limits(&mut self, limits: crate::derive::Limits) {
        self.derived.limits = limits;
    }

    /// Every entity's impact and whether it is on a cycle, for checking the
    /// incremental state against a recomputation from scratch.
    #[doc(hidden)]
    pub fn derived_snapshot(&self) -> (Vec<u32>, Vec<bool>) {
        let n = self.nodes.len() as Id;
        (
            (0..n).map(|id| self.derived.impact(id)).collect(),
            (0..n)
                .map(|id| self.derived.cycle_through(id).is_some())
                .collect(),
        )
    }

    /// Breadth-first search over dependsOn edges (tests and diagnostics).
    #[doc(hidden)]
    pub fn reaches(&self, from: &EntityRef, to: &EntityRef) -> bool {
        let (Some(from), Some(to)) = (
            self.ids.get(&self.nodes, from),
            self.ids.get(&self.nodes, to),
        ) else {
            return false;
        };
        let mut seen = HashSet::from([from]);
        let mut queue = VecDeque::from([from]);
        while let Some(at) = queue.pop_front() {
            for &next in self.derived.dependencies(at) {
                if next == to {
                    return true;
                }
                if seen.insert(next) {
                    queue.push_back(next);
                }
            }
        }
        false
    }
}
