//! The catalog kinds around Components, as a user meets them: owners checked once the
//! org is known, transitive members, API entities, Resources next to environments,
//! and `dependencyOf`.

use pave_catalog::{Catalog, EntityRef, Kind, Refs, RelationType};

fn group(ns: &str, name: &str) -> EntityRef {
    EntityRef::new(Kind::Group, ns, name)
}

fn user(ns: &str, name: &str) -> EntityRef {
    EntityRef::new(Kind::User, ns, name)
}

fn owned_by(owner: &str) -> Refs {
    Refs {
        owner: owner.into(),
        ..Default::default()
    }
}

fn unresolved(catalog: &Catalog, entity: &EntityRef) -> Vec<(String, String)> {
    let view = catalog.view_of(entity).unwrap();
    view.unresolved
        .into_iter()
        .map(|u| (u.reference, u.reason))
        .collect()
}

#[test]
fn owners_are_unchecked_until_the_namespace_has_a_group_then_checked() {
    let mut catalog = Catalog::new();
    catalog.upsert_component("team", "svc", &owned_by("payments-tema"));
    let view = catalog.view("team", "svc").unwrap();
    assert!(view.unresolved.is_empty());
    assert_eq!(view.unchecked.len(), 1);
    assert_eq!(view.unchecked[0].reference, "group:team/payments-tema");
    assert!(
        view.unchecked[0]
            .reason
            .contains("namespace team has no Group yet")
    );
    assert!(
        !view.relations[0].resolved,
        "an owner nobody checked did not resolve"
    );

    // The first Group makes owners in its namespace checked: the typo dangles.
    let affected = catalog.upsert(group("team", "payments-team"), &Refs::default());
    assert!(affected.contains(&EntityRef::component("team", "svc")));
    assert_eq!(
        unresolved(&catalog, &EntityRef::component("team", "svc")),
        [(
            "group:team/payments-tema".to_owned(),
            "no Group payments-tema in namespace team".to_owned()
        )]
    );
    // An org elsewhere checks nothing here.
    catalog.upsert_component("other", "svc", &owned_by("nobody"));
    assert_eq!(catalog.view("other", "svc").unwrap().unchecked.len(), 1);

    // Fixed, it resolves, and the Group sees what it owns.
    catalog.upsert_component("team", "svc", &owned_by("payments-team"));
    let view = catalog.view("team", "svc").unwrap();
    assert!(view.unresolved.is_empty() && view.unchecked.is_empty());
    let owner = catalog.view_of(&group("team", "payments-team")).unwrap();
    assert!(
        owner
            .relations
            .iter()
            .any(|r| r.relation == RelationType::OwnerOf
                && r.target == EntityRef::component("team", "svc"))
    );

    // The Group deleted while the org has another: it dangles again.
    catalog.upsert(group("team", "platform"), &Refs::default());
    let affected = catalog.remove(&group("team", "payments-team"));
    assert!(affected.contains(&EntityRef::component("team", "svc")));
    assert_eq!(
        unresolved(&catalog, &EntityRef::component("team", "svc")).len(),
        1
    );
    // The last Group gone: unchecked again.
    catalog.remove(&group("team", "platform"));
    let view = catalog.view("team", "svc").unwrap();
    assert!(view.unresolved.is_empty());
    assert_eq!(view.unchecked.len(), 1);
}

#[test]
fn a_group_has_every_member_below_it() {
    let mut catalog = Catalog::new();
    catalog.upsert(
        group("org", "acme"),
        &Refs {
            children: vec!["infra".into()],
            ..Default::default()
        },
    );
    catalog.upsert(
        group("org", "infra"),
        &Refs {
            parent: Some("acme".into()),
            ..Default::default()
        },
    );
    // One declared from the child's side only, one listed by the group.
    catalog.upsert(
        group("org", "team-a"),
        &Refs {
            parent: Some("infra".into()),
            members: vec!["breanna".into()],
            ..Default::default()
        },
    );
    catalog.upsert(user("org", "breanna"), &Refs::default());
    let affected = catalog.upsert(
        user("org", "janelle"),
        &Refs {
            member_of: vec!["team-a".into()],
            ..Default::default()
        },
    );
    for g in ["acme", "infra", "team-a"] {
        assert!(
            affected.contains(&group("org", g)),
            "{g} not told of a new member"
        );
        let members = catalog.view_of(&group("org", g)).unwrap().members;
        assert_eq!(
            members,
            [user("org", "breanna"), user("org", "janelle")],
            "{g}"
        );
    }
    let infra = catalog.view_of(&group("org", "infra")).unwrap();
    let kinds: Vec<_> = infra
        .relations
        .iter()
        .map(|r| (r.relation, r.target.name.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            (RelationType::ChildOf, "acme"),
            (RelationType::ParentOf, "team-a")
        ],
        "parent and children say it once each"
    );
    // A member who does not exist is not a member, and is reported by the group.
    catalog.upsert(
        group("org", "team-a"),
        &Refs {
            parent: Some("infra".into()),
            members: vec!["breanna".into(), "ghost".into()],
            ..Default::default()
        },
    );
    assert_eq!(
        unresolved(&catalog, &group("org", "team-a")),
        [(
            "user:org/ghost".to_owned(),
            "no User ghost in namespace org".to_owned()
        )]
    );
    assert_eq!(
        catalog
            .view_of(&group("org", "acme"))
            .unwrap()
            .members
            .len(),
        2
    );
}

#[test]
fn apis_resolve_to_their_entity_once_the_namespace_has_one() {
    let mut catalog = Catalog::new();
    let consumer = Refs {
        owner: "t".into(),
        consumes_apis: vec!["orders".into(), "typo".into()],
        ..Default::default()
    };
    catalog.upsert_component("ns", "web", &consumer);
    catalog.upsert_component(
        "ns",
        "orders-svc",
        &Refs {
            owner: "t".into(),
            provides_apis: vec!["orders".into()],
            ..Default::default()
        },
    );
    // No API entity in ns yet: an API some Component provides resolves.
    let missing: Vec<_> = unresolved(&catalog, &EntityRef::component("ns", "web"))
        .into_iter()
        .map(|u| u.0)
        .collect();
    assert_eq!(missing, ["api:ns/typo"]);
    // The first API entity: APIs in ns are checked against the entities.
    let affected = catalog.upsert(EntityRef::new(Kind::Api, "ns", "payments"), &owned_by("t"));
    assert!(affected.contains(&EntityRef::component("ns", "web")));
    let missing: Vec<_> = unresolved(&catalog, &EntityRef::component("ns", "web"))
        .into_iter()
        .map(|u| u.1)
        .collect();
    assert_eq!(
        missing,
        [
            "no API orders in namespace ns",
            "no API typo in namespace ns"
        ]
    );
    catalog.upsert(EntityRef::new(Kind::Api, "ns", "orders"), &owned_by("t"));
    let api = catalog
        .view_of(&EntityRef::new(Kind::Api, "ns", "orders"))
        .unwrap();
    let relations: Vec<_> = api
        .relations
        .iter()
        .map(|r| (r.relation, r.target.name.as_str()))
        .collect();
    assert!(relations.contains(&(RelationType::ApiProvidedBy, "orders-svc")));
    assert!(relations.contains(&(RelationType::ApiConsumedBy, "web")));
}

#[test]
fn a_resource_reference_resolves_to_a_resource_or_an_environment() {
    let mut catalog = Catalog::new();
    catalog.upsert_component(
        "ns",
        "svc",
        &Refs {
            owner: "t".into(),
            depends_on: vec!["resource:db".into()],
            ..Default::default()
        },
    );
    assert_eq!(
        unresolved(&catalog, &EntityRef::component("ns", "svc"))[0].1,
        "no Resource or DeveloperEnvironment db in namespace ns"
    );
    catalog.set_environment("ns", "db", true);
    assert!(unresolved(&catalog, &EntityRef::component("ns", "svc")).is_empty());
    // A Resource of the same name: the reference stays resolved, and the Resource
    // carries the relations (an environment has no catalog status).
    catalog.upsert(EntityRef::resource("ns", "db"), &owned_by("t"));
    catalog.set_environment("ns", "db", false);
    assert!(unresolved(&catalog, &EntityRef::component("ns", "svc")).is_empty());
    let db = catalog.view_of(&EntityRef::resource("ns", "db")).unwrap();
    assert!(
        db.relations
            .iter()
            .any(|r| r.relation == RelationType::DependencyOf && r.target.name == "svc")
    );
}

#[test]
fn dependency_of_is_a_dependency_seen_from_the_other_end() {
    let mut catalog = Catalog::new();
    catalog.upsert_component(
        "ns",
        "db-client",
        &Refs {
            owner: "t".into(),
            dependency_of: vec!["web".into()],
            ..Default::default()
        },
    );
    catalog.upsert_component("ns", "web", &owned_by("t"));
    let web = catalog.view("ns", "web").unwrap();
    assert!(
        web.relations
            .iter()
            .any(|r| r.relation == RelationType::DependsOn && r.target.name == "db-client")
    );
    assert_eq!(
        catalog.view("ns", "db-client").unwrap().impact,
        1,
        "web depends on it"
    );
    // And it closes cycles like dependsOn does.
    catalog.upsert_component(
        "ns",
        "web",
        &Refs {
            owner: "t".into(),
            dependency_of: vec!["db-client".into()],
            ..Default::default()
        },
    );
    assert!(catalog.view("ns", "web").unwrap().cycle.is_some());
}
