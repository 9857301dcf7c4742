//! Properties of the catalog over every kind on random catalogs in two namespaces:
//! an update names every entity whose view it changed (through the org's census,
//! transitive members, APIs, environments and dependencyOf), relations come in
//! pairs, and the catalog holds exactly what a fresh one fed the survivors holds.

use std::collections::{BTreeMap, HashSet};

use pave_catalog::{Catalog, EntityRef, EntityView, Kind, Refs};
use proptest::prelude::*;

const KINDS: [Kind; 7] = [
    Kind::Component,
    Kind::Resource,
    Kind::Api,
    Kind::Group,
    Kind::User,
    Kind::System,
    Kind::Domain,
];
const NAMESPACES: [&str; 2] = ["a", "b"];
const NAMES: u8 = 4;

/// An entity: kind, namespace and name, each an index.
type Key = (usize, usize, u8);

#[derive(Clone, Debug)]
enum Op {
    Upsert(Key, Vec<(usize, Key)>),
    Remove(Key),
    Environment(usize, u8, bool),
}

fn entity((kind, ns, name): Key) -> EntityRef {
    EntityRef::new(KINDS[kind].clone(), NAMESPACES[ns], &format!("e{name}"))
}

/// A reference to `target` written from namespace `from`: explicit kind, and the
/// namespace only when it is another one.
fn reference(from: usize, target: Key) -> String {
    let e = entity(target);
    if target.1 == from {
        format!("{}:{}", e.kind.as_str(), e.name)
    } else {
        format!("{}:{}/{}", e.kind.as_str(), e.namespace, e.name)
    }
}

/// Fills the `field`-th reference field (in a fixed order) with `text`.
fn put(refs: &mut Refs, field: usize, text: String) {
    match field % 13 {
        0 => refs.owner = text,
        1 => refs.system = Some(text),
        2 => refs.domain = Some(text),
        3 => refs.subcomponent_of = Some(text),
        4 => refs.subdomain_of = Some(text),
        5 => refs.parent = Some(text),
        6 => refs.children.push(text),
        7 => refs.members.push(text),
        8 => refs.member_of.push(text),
        9 => refs.depends_on.push(text),
        10 => refs.dependency_of.push(text),
        11 => refs.provides_apis.push(text),
        _ => refs.consumes_apis.push(text),
    }
}

fn refs(from: usize, fields: &[(usize, Key)]) -> Refs {
    let mut refs = Refs::default();
    for &(field, target) in fields {
        put(&mut refs, field, reference(from, target));
    }
    refs
}

fn key() -> impl Strategy<Value = Key> {
    (0..KINDS.len(), 0..NAMESPACES.len(), 0..NAMES)
}

/// Groups and Users naming each other (parent, children, members, memberOf), so
/// hierarchies deep enough for transitive members come up often.
fn org_op() -> impl Strategy<Value = Op> {
    let (group, user) = (3usize, 4usize);
    let target = |kind| (0..NAMES).prop_map(move |n| (kind, 0usize, n));
    prop_oneof![
        (
            0..NAMES,
            prop::collection::vec(
                prop_oneof![
                    target(group).prop_map(|t| (5usize, t)),
                    target(group).prop_map(|t| (6usize, t)),
                    target(user).prop_map(|t| (7usize, t)),
                ],
                0..3
            )
        )
            .prop_map(move |(n, f)| Op::Upsert((group, 0, n), f)),
        (
            0..NAMES,
            prop::collection::vec(target(group).prop_map(|t| (8usize, t)), 0..2)
        )
            .prop_map(move |(n, f)| Op::Upsert((user, 0, n), f)),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => org_op(),
        6 => (key(), prop::collection::vec((0usize..13, key()), 0..4)).prop_map(|(k, f)| Op::Upsert(k, f)),
        2 => key().prop_map(Op::Remove),
        1 => (0..NAMESPACES.len(), 0..NAMES, any::<bool>()).prop_map(|(ns, n, e)| Op::Environment(ns, n, e)),
    ]
}

fn apply(catalog: &mut Catalog, op: &Op) -> Vec<EntityRef> {
    let mut affected = match op {
        Op::Upsert(key, fields) => catalog.upsert(entity(*key), &refs(key.1, fields)),
        Op::Remove(key) => catalog.remove(&entity(*key)),
        Op::Environment(ns, name, exists) => {
            catalog.set_environment(NAMESPACES[*ns], &format!("e{name}"), *exists)
        }
    };
    affected.extend(catalog.refresh_impact());
    affected
}

fn all_keys() -> impl Iterator<Item = Key> {
    (0..KINDS.len())
        .flat_map(|k| (0..NAMESPACES.len()).flat_map(move |n| (0..NAMES).map(move |i| (k, n, i))))
}

fn views(catalog: &Catalog) -> BTreeMap<EntityRef, EntityView> {
    all_keys()
        .filter_map(|k| catalog.view_of(&entity(k)).map(|v| (entity(k), v)))
        .map(|(e, mut v)| {
            // The path may start its search elsewhere; only its length is state.
            v.cycle = v.cycle.map(|p| vec![p[0].clone(); p.len()]);
            (e, v)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn every_update_names_what_it_changed(ops in prop::collection::vec(op(), 1..50)) {
        let mut catalog = Catalog::new();
        let mut before = views(&catalog);
        for op in &ops {
            let affected: HashSet<EntityRef> = apply(&mut catalog, op).into_iter().collect();
            let after = views(&catalog);
            for e in before.keys().chain(after.keys()) {
                if before.get(e) != after.get(e) {
                    prop_assert!(affected.contains(e), "{op:?} changed {e} without saying so:\n{:?}\n{:?}", before.get(e), after.get(e));
                }
            }
            before = after;
        }
    }

    #[test]
    fn relations_come_in_pairs_and_the_catalog_forgets_what_nothing_needs(ops in prop::collection::vec(op(), 1..50)) {
        let mut catalog = Catalog::new();
        let mut survivors: BTreeMap<Key, Op> = BTreeMap::new();
        let mut environments: BTreeMap<(usize, u8), bool> = BTreeMap::new();
        for op in &ops {
            apply(&mut catalog, op);
            match op {
                Op::Upsert(k, _) => { survivors.insert(*k, op.clone()); }
                Op::Remove(k) => { survivors.remove(k); }
                Op::Environment(ns, n, e) => { environments.insert((*ns, *n), *e); }
            }
        }
        let views = views(&catalog);
        for (e, view) in &views {
            for r in &view.relations {
                if let Some(target) = views.get(&r.target) {
                    prop_assert!(
                        target.relations.iter().any(|back| back.relation == r.relation.reverse() && back.target == *e),
                        "{e} {:?} {} without the reverse", r.relation, r.target
                    );
                }
            }
        }
        let mut fresh = Catalog::new();
        for (&(ns, n), &e) in &environments {
            if e { apply(&mut fresh, &Op::Environment(ns, n, true)); }
        }
        for op in survivors.values() {
            apply(&mut fresh, op);
        }
        prop_assert_eq!(catalog.entity_count(), fresh.entity_count());
        prop_assert_eq!(&views, &self::views(&fresh));
        for k in survivors.keys() {
            apply(&mut catalog, &Op::Remove(*k));
        }
        for &(ns, n) in environments.keys() {
            apply(&mut catalog, &Op::Environment(ns, n, false));
        }
        prop_assert_eq!(catalog.entity_count(), 0);
    }
}
