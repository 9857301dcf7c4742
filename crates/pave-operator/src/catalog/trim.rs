//! What the catalog controllers keep of each object in their stores.
//!
//! A store holds every object of its kind for as long as the operator runs, so
//! what it keeps is most of the operator's memory: at 100,000 Components, whole
//! objects with their status were about half of it. Kept is what a reconcile reads:
//! metadata, spec (Scorecards read it), and of the status what is compared field by
//! field (generation, conditions, impact, scores). Dropped:
//! - managed fields and kubectl's copy of the last applied spec, which nothing here
//!   reads;
//! - the status lists the catalog writes (relations, unresolved and unchecked
//!   references, a Group's members): the catalog derives them again on every
//!   reconcile, and only needs to know whether the object already says them. The
//!   watch records a digest of them in the catalog's state before trimming the
//!   object, and a reconcile compares the digest of what it wants with that.

use std::hash::{DefaultHasher, Hash, Hasher};

use kube::ResourceExt;
use kube::core::DeserializeGuard;
use kube::runtime::watcher;
use pave_api::GroupStatus;
use pave_api::component::{ComponentStatus, Relation};
use pave_api::entity::EntityStatus;

use super::kinds::CatalogKind;

/// A catalog kind's status, as the store keeps it.
pub trait CatalogStatus: Clone + Default + PartialEq {
    /// A digest of the lists the catalog writes.
    fn lists_digest(&self) -> u64;
    /// Empties those lists.
    fn clear_lists(&mut self);
}

fn digest(relations: &[Relation], references: &[&[String]]) -> u64 {
    let mut hasher = DefaultHasher::new();
    relations.len().hash(&mut hasher);
    for relation in relations {
        (&relation.type_, &relation.target, relation.resolved).hash(&mut hasher);
    }
    references.hash(&mut hasher);
    hasher.finish()
}

/// Component's and the other kinds' statuses have the same three lists.
macro_rules! catalog_status {
    ($($status:ty),*) => {$(
        impl CatalogStatus for $status {
            fn lists_digest(&self) -> u64 {
                digest(&self.relations, &[&self.unresolved_refs, &self.unchecked_refs])
            }
            fn clear_lists(&mut self) {
                clear(&mut self.relations);
                clear(&mut self.unresolved_refs);
                clear(&mut self.unchecked_refs);
            }
        }
    )*};
}
catalog_status!(ComponentStatus, EntityStatus);

impl CatalogStatus for GroupStatus {
    fn lists_digest(&self) -> u64 {
        digest(
            &self.entity.relations,
            &[
                &self.entity.unresolved_refs,
                &self.entity.unchecked_refs,
                &self.members,
            ],
        )
    }
    fn clear_lists(&mut self) {
        self.entity.clear_lists();
        clear(&mut self.members);
    }
}

/// Empties `list` and gives back its memory.
fn clear<T>(list: &mut Vec<T>) {
    *list = Vec::new();
}

/// The digest of the lists in `status`, absent or not.
pub fn lists_digest<S: CatalogStatus>(status: Option<&S>) -> u64 {
    match status {
        Some(status) => status.lists_digest(),
        None => S::default().lists_digest(),
    }
}

/// Whether `wanted` says something `current` (whose lists' digest is
/// `current_lists`; its lists themselves may be trimmed) does not.
pub fn differs<S: CatalogStatus>(wanted: &S, current: &S, current_lists: u64) -> bool {
    if wanted.lists_digest() != current_lists {
        return true;
    }
    let (mut wanted, mut current) = (wanted.clone(), current.clone());
    wanted.clear_lists();
    current.clear_lists();
    wanted != current
}

/// Trims the object an event carries to what the store keeps.
pub fn trim_event<K: CatalogKind>(event: &mut watcher::Event<DeserializeGuard<K>>) {
    let (watcher::Event::Apply(obj) | watcher::Event::InitApply(obj) | watcher::Event::Delete(obj)) =
        event
    else {
        return;
    };
    obj.managed_fields_mut().clear();
    obj.annotations_mut()
        .remove("kubectl.kubernetes.io/last-applied-configuration");
    if let Ok(object) = &mut obj.0
        && let Some(status) = object.status_mut()
    {
        status.clear_lists();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relation(type_: &str, target: &str) -> Relation {
        Relation {
            type_: type_.into(),
            target: target.into(),
            resolved: true,
        }
    }

    #[test]
    fn a_trimmed_status_is_compared_by_its_lists_digest() {
        let full = EntityStatus {
            observed_generation: Some(2),
            relations: vec![relation("ownedBy", "group:ns/team")],
            unresolved_refs: vec!["component:ns/gone".into()],
            ..EntityStatus::default()
        };
        let lists = full.lists_digest();
        let mut stored = full.clone();
        stored.clear_lists();
        assert!(stored.relations.is_empty() && stored.unresolved_refs.is_empty());
        assert!(!differs(&full, &stored, lists), "the same status");
        let mut resolved = full.clone();
        resolved.unresolved_refs.clear();
        assert!(differs(&resolved, &stored, lists), "a list changed");
        let mut newer = full.clone();
        newer.observed_generation = Some(3);
        assert!(differs(&newer, &stored, lists), "a kept field changed");
        // A reference moved from one list to the other is a change.
        let mut unchecked = full.clone();
        unchecked.unchecked_refs = std::mem::take(&mut unchecked.unresolved_refs);
        assert_ne!(unchecked.lists_digest(), lists);
        assert_eq!(
            lists_digest::<EntityStatus>(None),
            EntityStatus::default().lists_digest()
        );
    }

    #[test]
    fn a_groups_members_are_in_its_digest() {
        let mut group = GroupStatus::default();
        let empty = group.lists_digest();
        group.members = vec!["user:ns/jane".into()];
        assert_ne!(group.lists_digest(), empty);
        group.clear_lists();
        assert_eq!(group.lists_digest(), empty);
    }
}
