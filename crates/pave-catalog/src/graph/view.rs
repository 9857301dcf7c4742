//! What the catalog says about one entity: its relations both ways, the references
//! that land on nothing (or are not checked yet), a Group's transitive members, and
//! a Component's cycle and impact.

use std::collections::{HashSet, VecDeque};

use super::resolve::Resolution;
use super::{Catalog, Id};
use crate::entity_ref::{EntityRef, Kind};
use crate::refs::field_of;
use crate::relation::{Relation, RelationType};

/// Everything the catalog can say about one entity.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EntityView {
    /// Sorted by type, then target.
    pub relations: Vec<Relation>,
    /// Each reference that names nothing, or does not parse, with the reason.
    pub unresolved: Vec<Unresolved>,
    /// Each reference into a namespace that does not check its kind yet (no Group,
    /// System, Domain or API there), with the reason.
    pub unchecked: Vec<Unresolved>,
    /// A dependency cycle through this Component, starting and ending with it.
    pub cycle: Option<Vec<EntityRef>>,
    /// How many Components depend on this one, directly or transitively.
    pub impact: u32,
    /// For a Group: every User who is a member of it or of a group below it.
    pub members: Vec<EntityRef>,
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

impl EntityView {
    /// Whether the entity names an owner and it is a Group or User that exists.
    pub fn owner_resolved(&self) -> bool {
        self.relations
            .iter()
            .any(|r| r.relation == RelationType::OwnedBy && r.resolved)
    }
}

impl Catalog {
    /// What the catalog says about a Component, or `None` if it does not exist.
    pub fn view(&self, namespace: &str, name: &str) -> Option<EntityView> {
        self.view_of(&EntityRef::component(namespace, name))
    }

    /// What the catalog says about an entity, or `None` if its object does not exist.
    pub fn view_of(&self, entity: &EntityRef) -> Option<EntityView> {
        let id = self.ids.get(&self.nodes, entity)?;
        let node = &self.nodes[id as usize];
        if !node.exists {
            return None;
        }
        let mut view = EntityView::default();
        view.relations.reserve(node.out.len() + node.incoming.len());
        for edge in &node.out {
            let target = &self.nodes[edge.other as usize].entity;
            let resolution = self.resolution(edge.other);
            view.relations.push(Relation {
                relation: edge.relation,
                target: target.clone(),
                resolved: resolution == Resolution::Resolved,
            });
            let problem = |reason| Unresolved {
                field: field_of(edge.relation, &node.entity.kind, &target.kind),
                reference: target.to_string(),
                reason,
            };
            match resolution {
                Resolution::Resolved => {}
                Resolution::Unchecked(reason) => view.unchecked.push(problem(reason)),
                Resolution::Missing(reason) => view.unresolved.push(problem(reason)),
            }
        }
        // Sources always exist: absent entities write nothing.
        for edge in &node.incoming {
            view.relations.push(Relation {
                relation: edge.relation.reverse(),
                target: self.nodes[edge.other as usize].entity.clone(),
                resolved: true,
            });
        }
        for (field, text) in &node.malformed {
            view.unresolved.push(Unresolved {
                field,
                reference: text.clone(),
                reason: "not an entity reference of the form [kind:][namespace/]name".into(),
            });
        }
        view.relations.sort();
        // `parent` on one side and `children` on the other say the same thing twice.
        view.relations.dedup();
        view.unresolved.sort();
        view.unchecked.sort();
        if node.entity.kind == Kind::Group {
            view.members = self.members(id);
        }
        view.cycle = self.derived.cycle_through(id).map(|path| {
            path.into_iter()
                .map(|id| self.nodes[id as usize].entity.clone())
                .collect()
        });
        view.impact = self.derived.impact(id);
        Some(view)
    }

    /// Every existing User who is a member of `group` or of a group below it, sorted.
    fn members(&self, group: Id) -> Vec<EntityRef> {
        let mut seen = HashSet::from([group]);
        let mut queue = VecDeque::from([group]);
        let mut users = HashSet::new();
        let is_user = |id: Id| {
            let node = &self.nodes[id as usize];
            node.exists && node.entity.kind == Kind::User
        };
        while let Some(at) = queue.pop_front() {
            let node = &self.nodes[at as usize];
            let listed = node
                .out
                .iter()
                .filter(|e| e.relation == RelationType::HasMember);
            let joined = node
                .incoming
                .iter()
                .filter(|e| e.relation == RelationType::MemberOf);
            users.extend(
                listed
                    .chain(joined)
                    .map(|e| e.other)
                    .filter(|&u| is_user(u)),
            );
            for child in self.child_groups(at) {
                if seen.insert(child) {
                    queue.push_back(child);
                }
            }
        }
        let mut members: Vec<EntityRef> = users
            .into_iter()
            .map(|id| self.nodes[id as usize].entity.clone())
            .collect();
        members.sort();
        members
    }
}
