//! The catalog graph: every Component's references, resolved against what exists, with
//! the reverse relations, dependency cycles and impact derived from them.
//!
//! Updates are incremental. Each change returns the Components whose view (relations,
//! unresolved references, cycle, impact) may have changed, so the controller
//! recomputes and writes only those. Entities are interned to dense ids; relations are
//! kept in both directions so "who points at X" is a lookup, never a scan.
//!
//! An entity is kept while it has a reason to be: its object exists, it references
//! something, or something references it. A deleted Component that others name
//! stays as their dangling reference and goes with the last one; whatever it alone
//! named goes with it. Freed ids are handed out again, so memory follows the largest
//! catalog seen, not the number of objects ever created.

use std::collections::{HashMap, HashSet, VecDeque};

use crate::derive::DependencyGraph;
use crate::entity_ref::{EntityRef, Kind};

/// What the catalog reads from one Component: the reference fields as written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ComponentRefs {
    pub owner: String,
    pub system: Option<String>,
    pub subcomponent_of: Option<String>,
    pub depends_on: Vec<String>,
    pub provides_apis: Vec<String>,
    pub consumes_apis: Vec<String>,
}

/// A relation type, as Backstage names it; each has its reverse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RelationType {
    OwnedBy,
    OwnerOf,
    DependsOn,
    DependencyOf,
    ProvidesApi,
    ApiProvidedBy,
    ConsumesApi,
    ApiConsumedBy,
    PartOf,
    HasPart,
}

impl RelationType {
    pub fn as_str(self) -> &'static str {
        match self {
            RelationType::OwnedBy => "ownedBy",
            RelationType::OwnerOf => "ownerOf",
            RelationType::DependsOn => "dependsOn",
            RelationType::DependencyOf => "dependencyOf",
            RelationType::ProvidesApi => "providesApi",
            RelationType::ApiProvidedBy => "apiProvidedBy",
            RelationType::ConsumesApi => "consumesApi",
            RelationType::ApiConsumedBy => "apiConsumedBy",
            RelationType::PartOf => "partOf",
            RelationType::HasPart => "hasPart",
        }
    }

    /// The same relation seen from the other end.
    pub fn reverse(self) -> RelationType {
        match self {
            RelationType::OwnedBy => RelationType::OwnerOf,
            RelationType::OwnerOf => RelationType::OwnedBy,
            RelationType::DependsOn => RelationType::DependencyOf,
            RelationType::DependencyOf => RelationType::DependsOn,
            RelationType::ProvidesApi => RelationType::ApiProvidedBy,
            RelationType::ApiProvidedBy => RelationType::ProvidesApi,
            RelationType::ConsumesApi => RelationType::ApiConsumedBy,
            RelationType::ApiConsumedBy => RelationType::ConsumesApi,
            RelationType::PartOf => RelationType::HasPart,
            RelationType::HasPart => RelationType::PartOf,
        }
    }
}

/// One relation of an entity.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Relation {
    pub relation: RelationType,
    pub target: EntityRef,
    pub resolved: bool,
}

/// Everything the catalog can say about one Component.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ComponentView {
    /// Sorted by type, then target.
    pub relations: Vec<Relation>,
    /// Each reference that names nothing, or does not parse, with the reason.
    pub unresolved: Vec<Unresolved>,
    /// A dependency cycle through this component, starting and ending with it.
    pub cycle: Option<Vec<EntityRef>>,
    /// How many components depend on this one, directly or transitively.
    pub impact: u32,
}

/// A reference that does not resolve.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Unresolved {
    /// The field it was written in (`spec.dependsOn`, …).
    pub field: &'static str,
    /// The reference, fully qualified where it parsed, as written where it did not.
    pub reference: String,
    /// Why it does not resolve.
    pub reason: String,
}

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
    /// A Component or DeveloperEnvironment object exists for this entity.
    exists: bool,
    /// Forward relations this Component wrote, sorted and without duplicates.
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

    /// Nothing needs this entity: no object, no references of its own, nobody
    /// referring to it (so no API provider either).
    fn unused(&self) -> bool {
        !self.exists && self.out.is_empty() && self.malformed.is_empty() && self.incoming.is_empty()
    }
}

/// The catalog. See the module documentation.
#[derive(Debug, Default)]
pub struct Catalog {
    /// Every entity held, to its id; freed entities are removed.
    ids: HashMap<EntityRef, Id>,
    nodes: Vec<Node>,
    /// Ids of freed slots in `nodes`, reused before `nodes` grows.
    free: Vec<Id>,
    /// Components providing each API, by API id (an API exists while this is non-zero).
    providers: HashMap<Id, u32>,
    derived: DependencyGraph,
}

impl Catalog {
    pub fn new() -> Catalog {
        Catalog::default()
    }

    /// Adds or replaces a Component. Returns the Components whose view may have changed.
    pub fn upsert_component(
        &mut self,
        namespace: &str,
        name: &str,
        refs: &ComponentRefs,
    ) -> Vec<EntityRef> {
        let id = self.intern(EntityRef::component(namespace, name));
        let (out, malformed) = self.parse_refs(namespace, refs);
        self.replace(id, true, out, malformed)
    }

    /// Removes a Component. Returns the Components whose view may have changed.
    pub fn remove_component(&mut self, namespace: &str, name: &str) -> Vec<EntityRef> {
        match self.ids.get(&EntityRef::component(namespace, name)) {
            Some(&id) => self.replace(id, false, vec![], vec![]),
            None => vec![],
        }
    }

    /// Records that a DeveloperEnvironment (a `resource:`) exists or not. Returns the
    /// Components whose view may have changed.
    pub fn set_resource(&mut self, namespace: &str, name: &str, exists: bool) -> Vec<EntityRef> {
        let id = self.intern(EntityRef::resource(namespace, name));
        self.replace(id, exists, vec![], vec![])
    }

    /// How many Components exist.
    pub fn component_count(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| n.exists && n.entity.kind == Kind::Component)
            .count()
    }

    /// How many entities the graph holds: every Component and environment that exists,
    /// and every entity one of them references (the `/metrics` gauge of its size).
    pub fn entity_count(&self) -> usize {
        self.ids.len()
    }

    /// What the catalog says about a Component, or `None` if it does not exist.
    pub fn view(&self, namespace: &str, name: &str) -> Option<ComponentView> {
        let &id = self.ids.get(&EntityRef::component(namespace, name))?;
        let node = &self.nodes[id as usize];
        if !node.exists {
            return None;
        }
        let mut relations = Vec::with_capacity(node.out.len() + node.incoming.len());
        let mut unresolved = Vec::new();
        for edge in &node.out {
            let target = &self.nodes[edge.other as usize];
            let resolved = self.resolves(edge.other);
            relations.push(Relation {
                relation: edge.relation,
                target: target.entity.clone(),
                resolved,
            });
            if !resolved {
                unresolved.push(Unresolved {
                    field: field_of(edge.relation, &target.entity.kind),
                    reference: target.entity.to_string(),
                    reason: self.why_unresolved(edge.other),
                });
            }
        }
        for edge in &node.incoming {
            // Only relations whose reverse belongs on a Component: a dependent, or a
            // subcomponent. Sources always exist: absent entities write nothing.
            if matches!(
                edge.relation,
                RelationType::DependsOn | RelationType::PartOf
            ) {
                relations.push(Relation {
                    relation: edge.relation.reverse(),
                    target: self.nodes[edge.other as usize].entity.clone(),
                    resolved: true,
                });
            }
        }
        for (field, text) in &node.malformed {
            unresolved.push(Unresolved {
                field,
                reference: text.clone(),
                reason: "not an entity reference of the form [kind:][namespace/]name".into(),
            });
        }
        relations.sort();
        relations.dedup();
        unresolved.sort();
        Some(ComponentView {
            relations,
            unresolved,
            cycle: self.derived.cycle_through(id).map(|path| {
                path.into_iter()
                    .map(|id| self.nodes[id as usize].entity.clone())
                    .collect()
            }),
            impact: self.derived.impact(id),
        })
    }

    /// Every existing Component, for a full pass.
    pub fn components(&self) -> impl Iterator<Item = &EntityRef> {
        self.nodes
            .iter()
            .filter(|n| n.exists && n.entity.kind == Kind::Component)
            .map(|n| &n.entity)
    }

    fn intern(&mut self, entity: EntityRef) -> Id {
        if let Some(&id) = self.ids.get(&entity) {
            return id;
        }
        let id = match self.free.pop() {
            Some(id) => {
                self.nodes[id as usize] = Node::new(entity.clone());
                id
            }
            None => {
                let id = Id::try_from(self.nodes.len()).expect("fewer than 2^32 entities");
                self.nodes.push(Node::new(entity.clone()));
                id
            }
        };
        self.ids.insert(entity, id);
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
        let node = std::mem::replace(node, Node::free());
        let held = self.ids.remove(&node.entity);
        debug_assert_eq!(held, Some(id), "a slot is freed once");
        self.derived.release(id);
        self.free.push(id);
    }

    fn parse_refs(
        &mut self,
        namespace: &str,
        refs: &ComponentRefs,
    ) -> (Vec<Edge>, Vec<(&'static str, String)>) {
        let fields: [(&'static str, RelationType, Kind, Vec<&String>); 6] = [
            (
                "spec.owner",
                RelationType::OwnedBy,
                Kind::Group,
                vec![&refs.owner],
            ),
            (
                "spec.system",
                RelationType::PartOf,
                Kind::System,
                refs.system.iter().collect(),
            ),
            (
                "spec.subcomponentOf",
                RelationType::PartOf,
                Kind::Component,
                refs.subcomponent_of.iter().collect(),
            ),
            (
                "spec.dependsOn",
                RelationType::DependsOn,
                Kind::Component,
                refs.depends_on.iter().collect(),
            ),
            (
                "spec.providesApis",
                RelationType::ProvidesApi,
                Kind::Api,
                refs.provides_apis.iter().collect(),
            ),
            (
                "spec.consumesApis",
                RelationType::ConsumesApi,
                Kind::Api,
                refs.consumes_apis.iter().collect(),
            ),
        ];
        let mut out = Vec::new();
        let mut malformed = Vec::new();
        for (field, relation, default_kind, texts) in fields {
            // Backstage files write `subcomponentOf: ""` for "none".
            for text in texts.into_iter().filter(|t| !t.trim().is_empty()) {
                match EntityRef::parse(text, default_kind.clone(), namespace) {
                    Ok(target) => out.push(Edge {
                        relation,
                        other: self.intern(target),
                    }),
                    Err(_) => malformed.push((field, text.clone())),
                }
            }
        }
        out.sort();
        out.dedup();
        malformed.sort();
        (out, malformed)
    }

    /// Installs a node's new existence and forward relations, keeps the reverse index
    /// and the derived graph in step, and collects every Component that can see the
    /// difference.
    fn replace(
        &mut self,
        id: Id,
        exists: bool,
        out: Vec<Edge>,
        malformed: Vec<(&'static str, String)>,
    ) -> Vec<EntityRef> {
        let node = &mut self.nodes[id as usize];
        let was = node.exists;
        node.exists = exists;
        let old_out = std::mem::replace(&mut node.out, out);
        node.malformed = malformed;
        let new_out = node.out.clone();

        let mut affected: HashSet<Id> = HashSet::new();
        affected.insert(id);
        // Whoever points here sees it appear or disappear.
        if was != exists {
            affected.extend(self.nodes[id as usize].incoming.iter().map(|e| e.other));
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
            if let Some(pos) = incoming.iter().position(|e| {
                *e == Edge {
                    relation: edge.relation,
                    other: id,
                }
            }) {
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

        let old_deps = dependency_targets(&old_out, &self.nodes);
        let new_deps = dependency_targets(&new_out, &self.nodes);
        if old_deps != new_deps {
            let changed = self
                .derived
                .set_dependencies(id, new_deps, self.nodes.len());
            affected.extend(changed);
        }

        let mut result: Vec<EntityRef> = affected
            .into_iter()
            .map(|id| &self.nodes[id as usize])
            .filter(|n| n.exists && n.entity.kind == Kind::Component)
            .map(|n| n.entity.clone())
            .collect();
        // A removed Component has no view, but the controller still wants to know.
        if was && !exists && self.nodes[id as usize].entity.kind == Kind::Component {
            result.push(self.nodes[id as usize].entity.clone());
        }
        result.sort();
        result.dedup();

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

    /// An API exists while at least one Component provides it; its consumers see it
    /// come and go.
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

    fn resolves(&self, id: Id) -> bool {
        let node = &self.nodes[id as usize];
        match node.entity.kind {
            Kind::Component | Kind::Resource => node.exists,
            Kind::Api => self.providers.contains_key(&id),
            Kind::Group | Kind::User | Kind::System => true,
            Kind::Other(_) => false,
        }
    }

    fn why_unresolved(&self, id: Id) -> String {
        let entity = &self.nodes[id as usize].entity;
        match &entity.kind {
            Kind::Component => format!(
                "no Component {} in namespace {}",
                entity.name, entity.namespace
            ),
            Kind::Resource => {
                format!(
                    "no DeveloperEnvironment {} in namespace {}",
                    entity.name, entity.namespace
                )
            }
            Kind::Api => format!(
                "no Component in namespace {} provides API {}",
                entity.namespace, entity.name
            ),
            Kind::Other(kind) => format!("pave has no entities of kind {kind}"),
            Kind::Group | Kind::User | Kind::System => unreachable!("virtual kinds always resolve"),
        }
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
        let mut changed: Vec<EntityRef> = self
            .derived
            .refresh_impact()
            .into_iter()
            .map(|id| &self.nodes[id as usize])
            .filter(|n| n.exists && n.entity.kind == Kind::Component)
            .map(|n| n.entity.clone())
            .collect();
        changed.sort();
        changed
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
        let (Some(&from), Some(&to)) = (self.ids.get(from), self.ids.get(to)) else {
            return false;
        };
        let mut seen = HashSet::from([from]);
        let mut queue = VecDeque::from([from]);
        while let Some(id) = queue.pop_front() {
            for &next in self.derived.dependencies(id) {
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

/// The Components a Component depends on (cycles and impact are about these edges).
fn dependency_targets(out: &[Edge], nodes: &[Node]) -> Vec<Id> {
    out.iter()
        .filter(|e| {
            e.relation == RelationType::DependsOn
                && nodes[e.other as usize].entity.kind == Kind::Component
        })
        .map(|e| e.other)
        .collect()
}

fn field_of(relation: RelationType, kind: &Kind) -> &'static str {
    match relation {
        RelationType::OwnedBy => "spec.owner",
        RelationType::PartOf if *kind == Kind::Component => "spec.subcomponentOf",
        RelationType::PartOf => "spec.system",
        RelationType::DependsOn => "spec.dependsOn",
        RelationType::ProvidesApi => "spec.providesApis",
        RelationType::ConsumesApi => "spec.consumesApis",
        _ => "spec",
    }
}
