//! The kinds besides Component: Group, User, System, Domain, API and Resource, each
//! field as pave keeps it, and the errors each kind's CRD makes of bad input.

use pave_api::{CatalogEntity, Definition, Profile};

use super::*;

/// `kind` with `spec`, `metadata.name` `name`, in one document.
fn entity(kind: &str, name: &str, spec: &str) -> String {
    format!("apiVersion: backstage.io/v1alpha1\nkind: {kind}\nmetadata:\n  name: {name}\n{spec}")
}

/// The one object an input valid in itself holds.
fn only(text: &str) -> Entity {
    let outcome = one(text);
    assert_eq!(outcome.errors(), 0, "{:#?}", outcome.diagnostics);
    let [entity] = outcome.entities.as_slice() else {
        panic!("expected one object: {:#?}", outcome.entities);
    };
    entity.clone()
}

#[test]
fn a_group_keeps_its_metadata_profile_and_relations() {
    let text = "\
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: team-a
  title: Team A
  description: The A team
  tags: [web]
  links:
    - url: https://wiki/team-a
      title: Wiki
  labels: {tier: web}
spec:
  type: team
  profile:
    displayName: Team A
    email: team-a@example.com
    picture: https://pictures/a.png
  parent: backstage
  children: [team-a-web]
  members: [user:breanna.davison, janelle.dawe]
";
    let Entity::Group(group) = only(text) else {
        panic!("not a Group");
    };
    assert_eq!(group.metadata.name.as_deref(), Some("team-a"));
    assert_eq!(
        group.metadata.labels,
        Some(BTreeMap::from([("tier".to_owned(), "web".to_owned())]))
    );
    let spec = &group.spec;
    assert_eq!(spec.about.title.as_deref(), Some("Team A"));
    assert_eq!(spec.about.description.as_deref(), Some("The A team"));
    assert_eq!(spec.about.tags, ["web"]);
    assert_eq!(spec.about.links[0].url, "https://wiki/team-a");
    assert_eq!(spec.about.links[0].title.as_deref(), Some("Wiki"));
    assert_eq!(spec.type_, "team");
    assert_eq!(
        spec.profile,
        Some(Profile {
            display_name: Some("Team A".to_owned()),
            email: Some("team-a@example.com".to_owned()),
            picture: Some("https://pictures/a.png".to_owned()),
        })
    );
    assert_eq!(spec.parent.as_deref(), Some("backstage"));
    assert_eq!(spec.children, ["team-a-web"]);
    assert_eq!(spec.members, ["user:breanna.davison", "janelle.dawe"]);
}

#[test]
fn a_user_keeps_its_profile_and_groups_and_may_leave_out_its_spec() {
    let text = entity(
        "User",
        "jane",
        "spec:\n  profile: {displayName: Jane, email: jane@example.com}\n  \
         memberOf: [team-a, group:default/ops]\n",
    );
    let Entity::User(user) = only(&text) else {
        panic!("not a User");
    };
    assert_eq!(
        user.spec.profile.and_then(|p| p.display_name).as_deref(),
        Some("Jane")
    );
    assert_eq!(user.spec.member_of, ["team-a", "group:default/ops"]);
    // pave's User requires nothing, so a bare one is a User too.
    let Entity::User(bare) = only(&entity("User", "guest", "")) else {
        panic!("not a User");
    };
    assert_eq!(bare.spec.member_of, Vec::<String>::new());
}

#[test]
fn systems_domains_and_resources_keep_their_fields() {
    let system = entity(
        "System",
        "audio-playback",
        "spec:\n  owner: team-c\n  domain: playback\n  type: feature-set\n",
    );
    let Entity::System(system) = only(&system) else {
        panic!("not a System");
    };
    assert_eq!(system.spec.owner, "team-c");
    assert_eq!(system.spec.domain.as_deref(), Some("playback"));
    assert_eq!(system.spec.type_.as_deref(), Some("feature-set"));

    let domain = entity(
        "Domain",
        "playback",
        "spec:\n  owner: user:frank.tiernan\n  subdomainOf: audio\n  type: product-area\n",
    );
    let Entity::Domain(domain) = only(&domain) else {
        panic!("not a Domain");
    };
    assert_eq!(domain.spec.owner, "user:frank.tiernan");
    assert_eq!(domain.spec.subdomain_of.as_deref(), Some("audio"));
    assert_eq!(domain.spec.type_.as_deref(), Some("product-area"));

    let resource = entity(
        "Resource",
        "artists-db",
        "spec:\n  type: database\n  owner: team-a\n  system: artist-engagement-portal\n  \
         dependsOn: [resource:disks]\n  dependencyOf: [component:artist-lookup]\n",
    );
    let Entity::Resource(resource) = only(&resource) else {
        panic!("not a Resource");
    };
    assert_eq!(resource.spec.type_, "database");
    assert_eq!(
        resource.spec.system.as_deref(),
        Some("artist-engagement-portal")
    );
    assert_eq!(resource.spec.depends_on, ["resource:disks"]);
    assert_eq!(resource.spec.dependency_of, ["component:artist-lookup"]);
}

/// An API of `type` with `definition` (the YAML after `definition:`) as the last field.
fn api(type_: &str, definition: &str) -> String {
    entity(
        "API",
        "petstore",
        &format!(
            "spec:\n  type: {type_}\n  lifecycle: experimental\n  owner: team-c\n{definition}"
        ),
    )
}

#[test]
fn an_apis_text_reference_is_kept_as_written_with_a_note() {
    let text = api("openapi", "  definition:\n    $text: ./petstore.oas.yaml\n");
    let outcome = one(&text);
    assert_eq!(
        messages(&outcome),
        [
            "catalog-info.yaml:9: api:default/petstore: definition is a $text reference to \
             ./petstore.oas.yaml, kept as written (not fetched)"
        ]
    );
    let [Entity::Api(api)] = outcome.entities.as_slice() else {
        panic!("not one API: {:#?}", outcome.entities);
    };
    assert_eq!(
        api.spec.definition,
        Definition::Reference(BTreeMap::from([(
            "$text".to_owned(),
            "./petstore.oas.yaml".to_owned()
        )]))
    );
    assert_eq!(
        api.spec.definition.reference(),
        Some(("$text", "./petstore.oas.yaml"))
    );
    // The namespace in the note is the one the object goes to.
    let outcome = import(&[source("catalog-info.yaml", &text)], Some("shop"));
    assert_has(
        &messages(&outcome),
        "api:shop/petstore: definition is a $text",
    );
}

#[test]
fn an_inline_definition_is_kept_as_text() {
    let text = api(
        "openapi",
        "  definition: |\n    openapi: 3.0.0\n    info: {title: Petstore}\n",
    );
    let outcome = one(&text);
    assert_eq!(messages(&outcome), Vec::<String>::new());
    let [Entity::Api(api)] = outcome.entities.as_slice() else {
        panic!("not one API: {:#?}", outcome.entities);
    };
    assert_eq!(
        api.spec.definition,
        Definition::Text("openapi: 3.0.0\ninfo: {title: Petstore}\n".to_owned())
    );
}

#[test]
fn a_definition_must_be_text_or_one_placeholder() {
    let two = api(
        "openapi",
        "  definition: {$text: ./a.yaml, $url: https://b}\n",
    );
    let messages = errors(&two);
    assert_eq!(messages.len(), 1, "{messages:#?}");
    assert!(
        messages[0].starts_with("catalog-info.yaml:9: spec.definition: a definition given as"),
        "{}",
        messages[0]
    );
    let list = api("openapi", "  definition:\n    - a\n");
    assert_has(
        &errors(&list),
        "catalog-info.yaml:9: spec.definition: expected the definition's text",
    );
    let missing = api("openapi", "");
    assert_eq!(
        errors(&missing),
        ["catalog-info.yaml:5: spec.definition is missing; an API needs one"]
    );
}

#[test]
fn an_mcp_server_api_needs_no_definition_as_in_backstage() {
    let text = api(
        "mcp-server",
        "  remotes:\n    - type: streamable-http\n      url: http://localhost:7007/api/mcp/v1\n",
    );
    let outcome = one(&text);
    assert_eq!(
        messages(&outcome),
        [
            "catalog-info.yaml:5: api:default/petstore: an mcp-server API has no definition \
             in Backstage; pave needs one, so it is left empty",
            "catalog-info.yaml:9: warning: spec.remotes: pave has no field for it, so it is \
             left out",
        ]
    );
    let [Entity::Api(api)] = outcome.entities.as_slice() else {
        panic!("not one API: {:#?}", outcome.entities);
    };
    assert_eq!(api.spec.definition, Definition::Text(String::new()));
}

#[test]
fn required_fields_and_shapes_come_from_each_kinds_crd() {
    let no_type = entity("Group", "team-a", "spec:\n  children: []\n");
    assert_eq!(
        errors(&no_type),
        ["catalog-info.yaml:5: spec.type is missing; a Group needs one"]
    );
    let member_of = entity("User", "jane", "spec:\n  memberOf: 3\n");
    assert_eq!(
        errors(&member_of),
        ["catalog-info.yaml:6: spec.memberOf: expected a list of strings, found a number"]
    );
    let no_owner = entity("System", "podcast", "spec:\n  domain: audio\n");
    assert_eq!(
        errors(&no_owner),
        ["catalog-info.yaml:5: spec.owner is missing; a System needs one"]
    );
    let no_spec = entity("Resource", "db", "");
    assert_eq!(
        errors(&no_spec),
        ["catalog-info.yaml:1: spec is missing; a Resource needs spec.owner and spec.type"]
    );
}

#[test]
fn nested_fields_are_checked_and_unknown_ones_dropped() {
    let text = entity(
        "Group",
        "team-a",
        "spec:\n  type: team\n  profile:\n    email: 3\n    phone: '123'\n  parent: 'team a'\n",
    );
    let outcome = one(&text);
    assert_eq!(
        messages(&outcome),
        [
            "catalog-info.yaml:8: spec.profile.email: expected a string, found a number; \
             write it in quotes: \"3\"",
            "catalog-info.yaml:9: warning: spec.profile.phone: pave has no field for it, so \
             it is left out",
            "catalog-info.yaml:10: spec.parent: \"team a\" is not an entity reference: \
             expected [kind:][namespace/]name, such as payments-team or \
             component:default/user-service",
        ]
    );
}

#[test]
fn metadata_rules_name_the_kind() {
    let long = entity("Domain", &"d".repeat(64), "spec: {owner: team-a}\n");
    assert_has(&errors(&long), "is not a valid Domain name");
    let tags = entity(
        "System",
        "podcast",
        "  tags: [Audio Things]\nspec:\n  owner: team-a\n",
    );
    assert_has(
        &errors(&tags),
        "catalog-info.yaml:5: metadata.tags[0]: \"Audio Things\" is not a valid tag",
    );
    let no_metadata = "apiVersion: backstage.io/v1alpha1\nkind: User\n";
    assert_eq!(
        errors(no_metadata),
        ["catalog-info.yaml:1: metadata is missing; a User needs metadata.name"]
    );
    let lowercase = entity("Group", "a", "spec: {type: team}\n").replace("Group", "group");
    assert_eq!(
        errors(&lowercase),
        ["catalog-info.yaml:2: kind \"group\": Backstage kinds are case-sensitive; write Group"]
    );
    let location = entity("location", "a", "spec: {target: ./a.yaml}\n");
    assert_has(&errors(&location), "write Location");
}

#[test]
fn the_namespace_option_moves_the_references_of_every_kind() {
    let text = [
        entity(
            "Group",
            "team-a",
            "spec:\n  type: team\n  parent: group:default/org\n  children: [default/web]\n  \
             members: [user:default/jane, bob]\n",
        ),
        entity(
            "User",
            "jane",
            "spec:\n  memberOf: [group:default/team-a]\n",
        ),
        entity(
            "System",
            "podcast",
            "spec:\n  owner: group:default/team-a\n  domain: domain:default/audio\n",
        ),
        entity(
            "Domain",
            "audio",
            "spec:\n  owner: team-a\n  subdomainOf: default/media\n",
        ),
        api(
            "openapi",
            "  system: system:default/podcast\n  definition: 'openapi: 3.0.0'\n",
        )
        .replace("owner: team-c", "owner: group:default/team-c"),
        entity(
            "Resource",
            "db",
            "spec:\n  type: database\n  owner: team-a\n  dependsOn: [resource:default/disk]\n  \
             dependencyOf: [component:default/web]\n",
        ),
    ]
    .join("---\n");
    let outcome = import(&[source("catalog-info.yaml", &text)], Some("imported"));
    assert_eq!(outcome.errors(), 0, "{:#?}", outcome.diagnostics);
    assert_eq!(outcome.entities.len(), 6);
    let yaml = to_yaml(&outcome.entities);
    assert!(!yaml.contains("default/"), "{yaml}");
    assert_eq!(yaml.matches("imported/").count(), 11, "{yaml}");
    assert_eq!(yaml.matches("namespace: imported\n").count(), 6, "{yaml}");
    let Entity::Group(group) = &outcome.entities[0] else {
        panic!("not a Group");
    };
    assert_eq!(group.spec.parent.as_deref(), Some("group:imported/org"));
    assert_eq!(group.spec.members, ["user:imported/jane", "bob"]);
}

#[test]
fn the_namespace_option_moves_every_field_the_catalog_reads_as_a_reference() {
    // pave-api's CatalogEntity says which fields are references; the import finds
    // them in the CRD's patterns. Every field of every kind, named with a namespace:
    let text = [
        component_with(
            "",
            "  system: system:default/s\n  subcomponentOf: component:default/p\n  \
             dependsOn: [default/a]\n  dependencyOf: [default/b]\n  providesApis: [default/c]\n  \
             consumesApis: [default/d]\n",
        )
        .replace("owner: team-a", "owner: default/o"),
        entity(
            "Group",
            "g",
            "spec:\n  type: team\n  parent: default/p\n  children: [default/c]\n  \
             members: [default/m]\n",
        ),
        entity("User", "u", "spec:\n  memberOf: [default/g]\n"),
        entity(
            "System",
            "s",
            "spec:\n  owner: default/o\n  domain: default/d\n",
        ),
        entity(
            "Domain",
            "d",
            "spec:\n  owner: default/o\n  subdomainOf: default/w\n",
        ),
        api("openapi", "  system: default/s\n  definition: x\n")
            .replace("owner: team-c", "owner: default/o"),
        entity(
            "Resource",
            "r",
            "spec:\n  type: db\n  owner: default/o\n  system: default/s\n  \
             dependsOn: [default/a]\n  dependencyOf: [default/b]\n",
        ),
    ]
    .join("---\n");
    let outcome = import(&[source("catalog-info.yaml", &text)], Some("moved"));
    assert_eq!(outcome.errors(), 0, "{:#?}", outcome.diagnostics);
    assert_eq!(outcome.entities.len(), 7);
    for entity in &outcome.entities {
        let refs = match entity {
            Entity::Component(e) => e.refs(),
            Entity::Group(e) => e.refs(),
            Entity::User(e) => e.refs(),
            Entity::System(e) => e.refs(),
            Entity::Domain(e) => e.refs(),
            Entity::Api(e) => e.refs(),
            Entity::Resource(e) => e.refs(),
        };
        let refs = format!("{refs:?}");
        assert!(!refs.contains("default/"), "{}: {refs}", entity.kind());
        assert!(refs.contains("moved/"), "{}: {refs}", entity.kind());
    }
}

#[test]
fn every_kind_prints_as_its_pave_object() {
    let text = [
        entity("Group", "team-a", "spec: {type: team}\n"),
        entity("User", "jane", "spec: {memberOf: [team-a]}\n"),
        entity("System", "podcast", "spec: {owner: team-a}\n"),
        entity("Domain", "audio", "spec: {owner: team-a}\n"),
        api("grpc", "  definition: 'syntax = \"proto3\";'\n"),
        entity("Resource", "db", "spec: {type: database, owner: team-a}\n"),
        component_with("", ""),
    ]
    .join("---\n");
    let outcome = one(&text);
    let yaml = outcome.manifests().expect("no errors");
    let kinds: Vec<(String, String)> = serde_yaml::Deserializer::from_str(&yaml)
        .map(|document| {
            let value: Value = serde::Deserialize::deserialize(document).unwrap();
            (
                value["apiVersion"].as_str().unwrap().to_owned(),
                value["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [
        "Group",
        "User",
        "System",
        "Domain",
        "API",
        "Resource",
        "Component",
    ]
    .iter()
    .map(|kind| ("platform.pave.dev/v1alpha1".to_owned(), (*kind).to_owned()))
    .collect();
    assert_eq!(kinds, expected);
    let references: Vec<String> = outcome
        .entities
        .iter()
        .map(|e| e.reference("team"))
        .collect();
    assert_eq!(references[4], "api:team/petstore");
}

#[test]
fn one_name_may_be_used_by_several_kinds_but_not_twice_by_one() {
    let component = component_with("", "").replace("name: svc", "name: petstore");
    let text = api("openapi", "  definition: x\n");
    let outcome = import(
        &[source("a.yaml", &text), source("b.yaml", &component)],
        None,
    );
    assert_eq!(outcome.errors(), 0, "{:#?}", outcome.diagnostics);
    assert_eq!(outcome.entities.len(), 2);
    let outcome = import(&[source("a.yaml", &text), source("b.yaml", &text)], None);
    assert_eq!(
        messages(&outcome),
        ["b.yaml:1: API petstore is already defined at a.yaml:1"]
    );
}
