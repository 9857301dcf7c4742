//! Entity to id, holding each entity once.
//!
//! A `HashMap<EntityRef, Id>` would keep a second copy of every reference (two
//! strings and a kind) beside the one in its node: some 150 bytes per entity, a
//! third of the graph. The table holds only ids, and hashes and compares through
//! the nodes they name.

use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;

use super::{Id, Node};
use crate::entity_ref::EntityRef;

#[derive(Debug, Default)]
pub(super) struct Index {
    table: HashTable<Id>,
    hasher: RandomState,
}

impl Index {
    pub fn get(&self, nodes: &[Node], entity: &EntityRef) -> Option<Id> {
        let hash = self.hasher.hash_one(entity);
        self.table
            .find(hash, |&id| nodes[id as usize].entity == *entity)
            .copied()
    }

    /// Adds `id`, whose node already holds its entity (and no other id does).
    pub fn insert(&mut self, nodes: &[Node], id: Id) {
        let Index { table, hasher } = self;
        let hash = hasher.hash_one(&nodes[id as usize].entity);
        table.insert_unique(hash, id, |&other| {
            hasher.hash_one(&nodes[other as usize].entity)
        });
    }

    /// Removes `entity`, while its node still holds it.
    pub fn remove(&mut self, nodes: &[Node], entity: &EntityRef) -> Option<Id> {
        let hash = self.hasher.hash_one(entity);
        let entry = self
            .table
            .find_entry(hash, |&id| nodes[id as usize].entity == *entity)
            .ok()?;
        Some(entry.remove().0)
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }
}
