//! Properties of the catalog graph on random catalogs: relations come in pairs,
//! cycles and impact agree with brute force, incremental updates agree with a
//! recomputation from scratch, an update names every Component whose view it
//! changed, and the catalog forgets whatever nothing needs any more.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};

use pave_catalog::{Catalog, EntityRef, EntityView, Limits, Refs, RelationType};
use proptest::prelude::*;

const NAMESPACE: &str = "ns";

#[derive(Clone, Debug)]
enum Op {
    Upsert {
        name: u8,
        depends_on: Vec<u8>,
        provides: Vec<u8>,
        consumes: Vec<u8>,
        parent: Option<u8>,
    },
    Remove {
        name: u8,
    },
    Resource {
        name: u8,
        exists: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let small = || prop::collection::vec(0u8..12, 0..4);
    prop_oneof![
        6 => (0u8..12, small(), prop::collection::vec(0u8..4, 0..2), prop::collection::vec(0u8..4, 0..2), prop::option::of(0u8..12))
            .prop_map(|(name, depends_on, provides, consumes, parent)| Op::Upsert { name, depends_on, provides, consumes, parent }),
        1 => (0u8..12).prop_map(|name| Op::Remove { name }),
        1 => (0u8..4, any::<bool>()).prop_map(|(name, exists)| Op::Resource { name, exists }),
    ]
}

fn component(name: u8) -> String {
    format!("c{name}")
}

fn refs(depends_on: &[u8], provides: &[u8], consumes: &[u8], parent: Option<u8>) -> Refs {
    Refs {
        owner: "team".into(),
        subcomponent_of: parent.map(component),
        // Every other dependency goes to a resource, so both kinds are exercised.
        depends_on: depends_on
            .iter()
            .map(|&d| {
                if d % 5 == 4 {
                    format!("resource:r{}", d % 4)
                } else {
                    component(d)
                }
            })
            .collect(),
        provides_apis: provides.iter().map(|a| format!("api-{a}")).collect(),
        consumes_apis: consumes.iter().map(|a| format!("api-{a}")).collect(),
        ..Default::default()
    }
}

/// Applies an update and brings impact up to date, as the controller does.
fn apply(catalog: &mut Catalog, op: &Op) -> Vec<EntityRef> {
    let mut affected = update(catalog, op);
    affected.extend(catalog.refresh_impact());
    affected
}

fn update(catalog: &mut Catalog, op: &Op) -> Vec<EntityRef> {
    match op {
        Op::Upsert {
            name,
            depends_on,
            provides,
            consumes,
            parent,
        } => catalog.upsert_component(
            NAMESPACE,
            &component(*name),
            &refs(depends_on, provides, consumes, *parent),
        ),
        Op::Remove { name } => catalog.remove_component(NAMESPACE, &component(*name)),
        Op::Resource { name, exists } => {
            catalog.set_environment(NAMESPACE, &format!("r{name}"), *exists)
        }
    }
}

/// Updates recount impact themselves within the default limits, and leave it all to
/// `refresh_impact` with none.
fn limits() -> impl Strategy<Value = Limits> {
    prop_oneof![Just(Limits::default()), Just(Limits { region: 0, work: 0 })]
}

fn catalog(limits: Limits) -> Catalog {
    let mut catalog = Catalog::new();
    catalog.set_incremental_limits(limits);
    catalog
}

fn views(catalog: &Catalog) -> BTreeMap<String, EntityView> {
    (0..12)
        .filter_map(|n| {
            catalog
                .view(NAMESPACE, &component(n))
                .map(|v| (component(n), v))
        })
        .collect()
}

/// The dependsOn edges between existing Components, from the views.
fn dependency_edges(views: &BTreeMap<String, EntityView>) -> BTreeMap<String, Vec<String>> {
    views
        .iter()
        .map(|(name, view)| {
            let targets = view
                .relations
                .iter()
                .filter(|r| {
                    r.relation == RelationType::DependsOn
                        && r.target.kind == pave_catalog::Kind::Component
                })
                .map(|r| r.target.name.clone())
                .collect();
            (name.clone(), targets)
        })
        .collect()
}

fn reaches(edges: &BTreeMap<String, Vec<String>>, from: &str, to: &str) -> bool {
    let mut seen = HashSet::new();
    let mut queue = VecDeque::from([from.to_owned()]);
    while let Some(at) = queue.pop_front() {
        for next in edges.get(&at).into_iter().flatten() {
            if next == to {
                return true;
            }
            if seen.insert(next.clone()) {
                queue.push_back(next.clone());
            }
        }
    }
    false
}

/// What exists once `ops` have run: each Component's last upsert, and the resources
/// last said to exist.
fn survivors(ops: &[Op]) -> (BTreeMap<u8, Op>, BTreeSet<u8>) {
    let mut components = BTreeMap::new();
    let mut resources = BTreeSet::new();
    for op in ops {
        match op {
            Op::Upsert { name, .. } => {
                components.insert(*name, op.clone());
            }
            Op::Remove { name } => {
                components.remove(name);
            }
            Op::Resource { name, exists: true } => {
                resources.insert(*name);
            }
            Op::Resource {
                name,
                exists: false,
            } => {
                resources.remove(name);
            }
        }
    }
    (components, resources)
}

/// A view without the cycle's path, which may start its search in another order
/// when the same entities were numbered differently; only whether there is a cycle,
/// and how long it is, belong to the catalog's state.
fn comparable(views: BTreeMap<String, EntityView>) -> BTreeMap<String, EntityView> {
    views
        .into_iter()
        .map(|(name, mut view)| {
            view.cycle = view.cycle.map(|path| vec![path[0].clone(); path.len()]);
            (name, view)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// The catalog keeps nothing of its history: after any sequence of updates it holds
    /// what a fresh catalog fed only the survivors holds, and once everything is removed
    /// it holds nothing.
    #[test]
    fn the_catalog_holds_only_what_exists_and_what_it_references(ops in prop::collection::vec(op(), 1..40), limits in limits()) {
        let mut catalog = catalog(limits);
        for op in &ops {
            apply(&mut catalog, op);
        }
        let (components, resources) = survivors(&ops);
        let mut fresh = self::catalog(limits);
        for &name in &resources {
            apply(&mut fresh, &Op::Resource { name, exists: true });
        }
        for op in components.values() {
            apply(&mut fresh, op);
        }
        prop_assert_eq!(catalog.entity_count(), fresh.entity_count());
        prop_assert_eq!(comparable(views(&catalog)), comparable(views(&fresh)));

        for &name in components.keys() {
            apply(&mut catalog, &Op::Remove { name });
        }
        for &name in &resources {
            apply(&mut catalog, &Op::Resource { name, exists: false });
        }
        prop_assert_eq!(catalog.entity_count(), 0);
        prop_assert_eq!(catalog.components().count(), 0);
        let incremental = catalog.derived_snapshot();
        catalog.recompute();
        prop_assert_eq!(incremental, catalog.derived_snapshot());
    }

    #[test]
    fn every_update_names_what_it_changed(ops in prop::collection::vec(op(), 1..40), limits in limits()) {
        let mut catalog = catalog(limits);
        let mut before = views(&catalog);
        for op in &ops {
            let affected: HashSet<String> = apply(&mut catalog, op).into_iter().map(|r| r.name).collect();
            let after = views(&catalog);
            for name in before.keys().chain(after.keys()) {
                if before.get(name) != after.get(name) {
                    prop_assert!(affected.contains(name), "{op:?} changed {name} without saying so");
                }
            }
            before = after;
        }
    }

    #[test]
    fn incremental_state_equals_recomputation(ops in prop::collection::vec(op(), 1..40), limits in limits()) {
        let mut catalog = catalog(limits);
        for op in &ops {
            apply(&mut catalog, op);
        }
        let incremental = catalog.derived_snapshot();
        catalog.recompute();
        prop_assert_eq!(incremental, catalog.derived_snapshot());
    }

    #[test]
    fn relations_pair_cycles_and_impact_match_brute_force(ops in prop::collection::vec(op(), 1..40), limits in limits()) {
        let mut catalog = catalog(limits);
        for op in &ops {
            apply(&mut catalog, op);
        }
        let views = views(&catalog);
        let edges = dependency_edges(&views);
        for (name, view) in &views {
            // Relations in pairs: each resolved dependsOn/partOf to a Component has its
            // reverse on the target.
            for relation in &view.relations {
                let reverse_expected = matches!(relation.relation, RelationType::DependsOn | RelationType::PartOf)
                    && relation.target.kind == pave_catalog::Kind::Component;
                if reverse_expected && relation.resolved {
                    let target = &views[&relation.target.name];
                    prop_assert!(
                        target.relations.iter().any(|r| r.relation == relation.relation.reverse() && r.target.name == *name),
                        "{name} {:?} {} but not the reverse", relation.relation, relation.target
                    );
                }
                // An unresolved or not yet checked reference is reported, with its reason.
                let reported = view.unresolved.iter().chain(&view.unchecked).any(|u| u.reference == relation.target.to_string());
                let reverse = matches!(relation.relation, RelationType::DependencyOf | RelationType::HasPart);
                prop_assert_eq!(relation.resolved, reverse || !reported, "{} {:?}", name, relation);
            }
            // A cycle exactly when the component reaches itself, and the reported path
            // is made of real edges.
            prop_assert_eq!(view.cycle.is_some(), reaches(&edges, name, name), "cycle through {}", name);
            if let Some(path) = &view.cycle {
                prop_assert_eq!(&path[0].name, name);
                prop_assert_eq!(&path[path.len() - 1].name, name);
                for pair in path.windows(2) {
                    prop_assert!(edges[&pair[0].name].contains(&pair[1].name));
                }
            }
            // Impact: how many other components reach this one.
            let dependents = views.keys().filter(|other| *other != name && reaches(&edges, other, name)).count();
            prop_assert_eq!(view.impact as usize, dependents, "impact of {}", name);
        }
    }
}

#[test]
fn dangling_reference_resolves_when_its_target_appears() {
    let mut catalog = Catalog::new();
    let affected = catalog.upsert_component(
        "team-payments",
        "payment-service",
        &Refs {
            owner: "payments-team".into(),
            depends_on: vec![
                "component:user-service".into(),
                "resource:payments-database".into(),
            ],
            provides_apis: vec!["payment-api".into()],
            ..Default::default()
        },
    );
    assert_eq!(affected.len(), 1);
    let view = catalog.view("team-payments", "payment-service").unwrap();
    let unresolved: Vec<_> = view
        .unresolved
        .iter()
        .map(|u| u.reference.as_str())
        .collect();
    assert_eq!(
        unresolved,
        [
            "component:team-payments/user-service",
            "resource:team-payments/payments-database"
        ]
    );
    assert_eq!(
        view.unresolved[0].reason,
        "no Component user-service in namespace team-payments"
    );

    let affected = catalog.upsert_component(
        "team-payments",
        "user-service",
        &Refs {
            owner: "identity-team".into(),
            ..Default::default()
        },
    );
    let names: Vec<_> = affected.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["payment-service", "user-service"]);
    let user = catalog.view("team-payments", "user-service").unwrap();
    assert!(user.relations.iter().any(|r| r.relation == RelationType::DependencyOf && r.target.name == "payment-service"));
    assert_eq!(user.impact, 1);
    catalog.set_environment("team-payments", "payments-database", true);
    assert!(
        catalog
            .view("team-payments", "payment-service")
            .unwrap()
            .unresolved
            .is_empty()
    );
}

#[test]
fn a_deleted_target_dangles_again_and_an_entity_lives_only_while_needed() {
    let mut catalog = Catalog::new();
    let a = Refs {
        owner: "team".into(),
        depends_on: vec!["b".into(), "resource:db".into()],
        consumes_apis: vec!["orders".into()],
        ..Default::default()
    };
    catalog.upsert_component("ns", "a", &a);
    // a, and what it names: b, the resource, the API and the owning group.
    assert_eq!(catalog.entity_count(), 5);
    let b = Refs {
        owner: "team".into(),
        provides_apis: vec!["orders".into()],
        ..Default::default()
    };
    catalog.upsert_component("ns", "b", &b);
    assert_eq!(catalog.entity_count(), 5, "b was already there, referenced");
    assert_eq!(
        catalog.view("ns", "a").unwrap().unresolved.len(),
        1,
        "only the resource is missing"
    );

    // b goes: a's references to it and to the API it provided dangle again.
    let affected = catalog.remove_component("ns", "b");
    assert!(affected.contains(&EntityRef::component("ns", "a")));
    assert!(catalog.view("ns", "b").is_none());
    let unresolved: Vec<_> = catalog
        .view("ns", "a")
        .unwrap()
        .unresolved
        .into_iter()
        .map(|u| (u.reference, u.reason))
        .collect();
    assert_eq!(
        unresolved,
        [
            (
                "api:ns/orders".to_owned(),
                "no API orders in namespace ns, and no Component there provides it".to_owned()
            ),
            (
                "component:ns/b".to_owned(),
                "no Component b in namespace ns".to_owned()
            ),
            (
                "resource:ns/db".to_owned(),
                "no Resource or DeveloperEnvironment db in namespace ns".to_owned()
            ),
        ]
    );
    assert_eq!(catalog.entity_count(), 5, "a still names b");

    // An environment that exists is kept on its own account, and forgotten once it
    // is gone and nobody names it.
    catalog.set_environment("ns", "cache", true);
    assert_eq!(catalog.entity_count(), 6);
    catalog.set_environment("ns", "cache", false);
    assert_eq!(catalog.entity_count(), 5);
    catalog.set_environment("ns", "never-was", false);
    assert_eq!(catalog.entity_count(), 5);

    // a goes: nothing names anything any more.
    catalog.remove_component("ns", "a");
    assert_eq!(catalog.entity_count(), 0);
    assert_eq!(catalog.components().count(), 0);

    // What was forgotten comes back as new: b exists again, and a resolves it.
    catalog.upsert_component("ns", "b", &b);
    catalog.upsert_component("ns", "a", &a);
    catalog.set_environment("ns", "db", true);
    let a_view = catalog.view("ns", "a").unwrap();
    assert!(a_view.unresolved.is_empty(), "{:?}", a_view.unresolved);
    assert_eq!(catalog.view("ns", "b").unwrap().impact, 1);
    assert_eq!(catalog.entity_count(), 5);
}

#[test]
fn a_cycle_is_reported_with_its_path_and_cleared_when_broken() {
    let mut catalog = Catalog::new();
    let depends = |on: &str| Refs {
        owner: "t".into(),
        depends_on: vec![on.into()],
        ..Default::default()
    };
    catalog.upsert_component("ns", "a", &depends("b"));
    catalog.upsert_component("ns", "b", &depends("c"));
    let affected = catalog.upsert_component("ns", "c", &depends("a"));
    assert_eq!(affected.len(), 3, "every member of the new cycle is told");
    let path: Vec<_> = catalog
        .view("ns", "b")
        .unwrap()
        .cycle
        .unwrap()
        .iter()
        .map(|r| r.name.clone())
        .collect();
    assert_eq!(path, ["b", "c", "a", "b"]);
    let affected = catalog.upsert_component(
        "ns",
        "c",
        &Refs {
            owner: "t".into(),
            ..Default::default()
        },
    );
    assert_eq!(affected.len(), 3);
    assert!(catalog.view("ns", "a").unwrap().cycle.is_none());
}

/// A catalog with more Components that others depend on than one pass of the impact
/// computation takes (1,024), so what carries from one pass to the next is checked
/// too: every impact equals the number of other Components that reach it, found by
/// walking the dependsOn edges backwards.
#[test]
fn impact_matches_brute_force_across_passes() {
    let mut rng = pave_catalog::sample::Rng(0x5eed);
    let components = pave_catalog::sample::random_catalog(3_000, &mut rng);
    let mut catalog = Catalog::new();
    catalog.defer();
    for (name, refs) in &components {
        catalog.upsert_component(NAMESPACE, name, refs);
    }
    catalog.recompute();
    let views: BTreeMap<String, EntityView> = components
        .iter()
        .map(|(name, _)| (name.clone(), catalog.view(NAMESPACE, name).unwrap()))
        .collect();
    let edges = dependency_edges(&views);
    let mut dependents: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (from, targets) in &edges {
        for to in targets {
            dependents
                .entry(to.as_str())
                .or_default()
                .push(from.as_str());
        }
    }
    assert!(
        dependents.len() > 1_100,
        "only {} Components have dependents: one pass would cover them all",
        dependents.len()
    );
    for (name, view) in &views {
        let mut seen = HashSet::from([name.as_str()]);
        let mut queue = VecDeque::from([name.as_str()]);
        while let Some(at) = queue.pop_front() {
            for &next in dependents.get(at).into_iter().flatten() {
                if seen.insert(next) {
                    queue.push_back(next);
                }
            }
        }
        assert_eq!(view.impact as usize, seen.len() - 1, "impact of {name}");
    }
}
