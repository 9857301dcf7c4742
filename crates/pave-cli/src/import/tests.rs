//! Tests of `kubectl pave import` as a pure function: what each Backstage field
//! becomes, and the message (with its `FILE:LINE`) for each kind of bad input. This
//! file covers Components and what every kind shares; `tests/kinds.rs` the other
//! kinds, `tests/location.rs` following Locations on disk, and
//! `tests/backstage_examples.rs` Backstage's own example catalog.

mod backstage_examples;
mod kinds;
mod location;

use std::collections::BTreeMap;

use pave_api::ComponentSpec;
use pave_api::component::Link;

use super::*;

const ARTICLE: &str = include_str!("../../../../examples/backstage/catalog-info.yaml");

/// The Components among what an import made.
fn components(outcome: &Outcome) -> Vec<&pave_api::Component> {
    outcome
        .entities
        .iter()
        .filter_map(|entity| match entity {
            Entity::Component(component) => Some(component),
            _ => None,
        })
        .collect()
}

fn source(name: &str, text: &str) -> Source {
    Source {
        name: name.to_owned(),
        text: Ok(text.to_owned()),
    }
}

fn one(text: &str) -> Outcome {
    import(&[source("catalog-info.yaml", text)], None)
}

/// Every diagnostic as the user sees it.
fn messages(outcome: &Outcome) -> Vec<String> {
    outcome
        .diagnostics
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// The diagnostics of an input expected to fail; panics if it does not.
fn errors(text: &str) -> Vec<String> {
    let outcome = one(text);
    assert!(outcome.errors() > 0, "no error for:\n{text}");
    messages(&outcome)
}

fn assert_has(messages: &[String], expected: &str) {
    assert!(
        messages.iter().any(|m| m.contains(expected)),
        "no message contains {expected:?}: {messages:#?}"
    );
}

/// A valid Component with `extra` appended to its spec (`spec:` is the last key).
fn component_with(metadata: &str, spec_extra: &str) -> String {
    format!(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: svc\n{metadata}\
         spec:\n  type: service\n  lifecycle: production\n  owner: team-a\n{spec_extra}"
    )
}

#[test]
fn the_articles_catalog_info_imports_field_by_field() {
    let outcome = one(ARTICLE);
    assert_eq!(messages(&outcome), Vec::<String>::new());
    let components = components(&outcome);
    let [component] = components.as_slice() else {
        panic!("expected one Component: {components:#?}");
    };
    let meta = &component.metadata;
    assert_eq!(meta.name.as_deref(), Some("payment-service"));
    // The file names no namespace, so kubectl's current one applies.
    assert_eq!(meta.namespace, None);
    assert_eq!(meta.labels, None);
    let annotations = meta.annotations.clone().unwrap_or_default();
    let annotation = |key: &str| annotations.get(key).map(String::as_str);
    assert_eq!(annotations.len(), 3, "{annotations:?}");
    assert_eq!(
        annotation("github.com/project-slug"),
        Some("my-org/payment-service")
    );
    assert_eq!(annotation("backstage.io/techdocs-ref"), Some("dir:."));
    assert_eq!(annotation("pagerduty.com/service-id"), Some("P12345"));

    let spec = &component.spec;
    assert_eq!(spec.type_, "service");
    assert_eq!(spec.lifecycle, "production");
    assert_eq!(spec.owner, "payments-team");
    assert_eq!(spec.system, None);
    assert_eq!(spec.subcomponent_of, None);
    assert_eq!(spec.title, None);
    assert_eq!(
        spec.description.as_deref(),
        Some("결제 처리 마이크로서비스")
    );
    assert_eq!(spec.tags, ["java", "payments"]);
    assert_eq!(spec.links, []);
    assert_eq!(
        spec.depends_on,
        ["component:user-service", "resource:payments-database"]
    );
    assert_eq!(spec.provides_apis, ["payment-api"]);
    assert_eq!(spec.consumes_apis, Vec::<String>::new());
    assert_eq!(spec.properties, None);
    assert!(component.status.is_none());
}

#[test]
fn every_backstage_field_reaches_its_pave_field() {
    let text = "\
apiVersion: backstage.io/v1beta1
kind: Component
metadata:
  name: user-service
  namespace: team-identity
  title: User Service
  description: Accounts
  labels: {tier: backend}
  annotations: {backstage.io/techdocs-ref: 'dir:.'}
  tags: [go, c++]
  links:
    - url: https://dashboards/users
      title: Dashboard
      icon: dashboard
      type: grafana
    - url: https://docs/users
spec:
  type: service
  lifecycle: experimental
  owner: group:identity/identity-team
  system: identity
  subcomponentOf: component:platform
  dependsOn: [resource:users-db]
  providesApis: [user-api]
  consumesApis: [api:audit/audit-api]
";
    let outcome = one(text);
    assert_eq!(messages(&outcome), Vec::<String>::new());
    let component = &components(&outcome)[0];
    assert_eq!(
        component.metadata.namespace.as_deref(),
        Some("team-identity")
    );
    assert_eq!(
        component.metadata.labels,
        Some(BTreeMap::from([("tier".to_owned(), "backend".to_owned())]))
    );
    assert_eq!(
        component.metadata.annotations,
        Some(BTreeMap::from([(
            "backstage.io/techdocs-ref".to_owned(),
            "dir:.".to_owned()
        )]))
    );
    let expected = ComponentSpec {
        type_: "service".to_owned(),
        lifecycle: "experimental".to_owned(),
        owner: "group:identity/identity-team".to_owned(),
        system: Some("identity".to_owned()),
        subcomponent_of: Some("component:platform".to_owned()),
        dependency_of: vec![],
        title: Some("User Service".to_owned()),
        description: Some("Accounts".to_owned()),
        tags: vec!["go".to_owned(), "c++".to_owned()],
        links: vec![
            Link {
                url: "https://dashboards/users".to_owned(),
                title: Some("Dashboard".to_owned()),
                icon: Some("dashboard".to_owned()),
                type_: Some("grafana".to_owned()),
            },
            Link {
                url: "https://docs/users".to_owned(),
                title: None,
                icon: None,
                type_: None,
            },
        ],
        depends_on: vec!["resource:users-db".to_owned()],
        provides_apis: vec!["user-api".to_owned()],
        consumes_apis: vec!["api:audit/audit-api".to_owned()],
        properties: None,
    };
    assert_eq!(component.spec, expected);
}

#[test]
fn the_namespace_option_replaces_every_files_namespace() {
    let with_namespace = component_with("  namespace: team-a\n", "");
    let sources = [
        source("a.yaml", &with_namespace),
        source("b.yaml", &component_with("", "").replace("svc", "other")),
    ];
    let outcome = import(&sources, Some("imported"));
    assert_eq!(outcome.errors(), 0, "{:#?}", outcome.diagnostics);
    for component in components(&outcome) {
        assert_eq!(component.metadata.namespace.as_deref(), Some("imported"));
    }
    // Without it, an explicit `default` is kept: the user wrote it.
    let explicit_default = component_with("  namespace: default\n", "");
    let outcome = one(&explicit_default);
    assert_eq!(
        components(&outcome)[0].metadata.namespace.as_deref(),
        Some("default")
    );
}

#[test]
fn kinds_pave_does_not_have_are_skipped_with_a_note_and_do_not_fail() {
    let text = format!(
        "{}---\napiVersion: scaffolder.backstage.io/v1beta3\nkind: Template\nmetadata:\n  \
         name: springboot\n---\n\n# an AI resource\napiVersion: backstage.io/v1alpha1\n\
         kind: AiResource\nmetadata: {{name: prompts}}\n",
        component_with("", "")
    );
    let outcome = one(&text);
    assert_eq!(outcome.entities.len(), 1);
    // A Template's apiVersion is the scaffolder's, not an error.
    assert_eq!(
        messages(&outcome),
        [
            "catalog-info.yaml:10: skipped Template springboot: pave has no kind Template; \
             it imports Components, APIs, Groups, Users, Systems, Domains and Resources, and \
             follows Locations",
            "catalog-info.yaml:17: skipped AiResource prompts: pave has no kind AiResource; \
             it imports Components, APIs, Groups, Users, Systems, Domains and Resources, and \
             follows Locations",
        ]
    );
    assert_eq!(outcome.errors(), 0);
}

#[test]
fn fields_pave_has_no_place_for_are_dropped_with_a_warning() {
    let text = component_with(
        "  uid: 1234\n",
        "  dependencyOf: [component:web]\n  profile: {}\n",
    );
    let outcome = one(&text);
    assert_eq!(outcome.errors(), 0, "{:#?}", outcome.diagnostics);
    assert_eq!(components(&outcome).len(), 1);
    // pave has dependencyOf now, so it is kept rather than dropped.
    assert_eq!(
        components(&outcome)[0].spec.dependency_of,
        ["component:web"]
    );
    let messages = messages(&outcome);
    assert_eq!(
        messages,
        [
            "catalog-info.yaml:5: warning: metadata.uid: pave has no field for it, so it is \
             left out",
            "catalog-info.yaml:11: warning: spec.profile: pave has no field for it, so it is \
             left out",
        ]
    );
}

#[test]
fn pave_only_fields_are_not_read_from_a_backstage_spec() {
    // Backstage keeps title, description, tags and links in metadata; a spec that
    // has them has something Backstage ignores too.
    let text = component_with("", "  title: Svc\n  properties: {coverage: 80}\n");
    let outcome = one(&text);
    assert_eq!(outcome.errors(), 0, "{:#?}", outcome.diagnostics);
    assert_eq!(components(&outcome)[0].spec.title, None);
    assert_eq!(components(&outcome)[0].spec.properties, None);
    let messages = messages(&outcome);
    assert_eq!(messages.len(), 2, "{messages:#?}");
    assert!(messages[0].starts_with("catalog-info.yaml:9: warning: spec.title: "));
    assert!(messages[1].starts_with("catalog-info.yaml:10: warning: spec.properties: "));
}

#[test]
fn the_namespace_option_moves_references_that_name_a_namespace() {
    let text = component_with(
        "  namespace: team-a\n",
        "  system: system:team-a/payments\n  dependsOn:\n    - component:team-b/ledger\n    \
         - resource:db\n  consumesApis: [team-a/audit-api]\n",
    )
    .replace("owner: team-a", "owner: group:default/team-a");
    let outcome = import(&[source("catalog-info.yaml", &text)], Some("imported"));
    assert_eq!(outcome.errors(), 0, "{:#?}", outcome.diagnostics);
    let spec = &components(&outcome)[0].spec;
    assert_eq!(spec.owner, "group:imported/team-a");
    assert_eq!(spec.system.as_deref(), Some("system:imported/payments"));
    assert_eq!(
        spec.depends_on,
        ["component:imported/ledger", "resource:db"]
    );
    assert_eq!(spec.consumes_apis, ["imported/audit-api"]);
    // Without it, references are kept as written, as the namespaces are.
    let outcome = one(&text);
    assert_eq!(components(&outcome)[0].spec.owner, "group:default/team-a");
}

#[test]
fn labels_and_annotations_kubernetes_refuses_are_errors() {
    let text = component_with(
        "  labels:\n    product_name: Random value Generator\n    -tier: backend\n  \
         annotations:\n    example.com/ok: any text at all\n    not a key: x\n",
        "",
    );
    let messages = errors(&text);
    assert_eq!(messages.len(), 3, "{messages:#?}");
    assert!(
        messages[0].starts_with(
            "catalog-info.yaml:6: metadata.labels.product_name: \"Random value Generator\" is \
             not a Kubernetes label value"
        ),
        "{}",
        messages[0]
    );
    assert!(
        messages[1].starts_with(
            "catalog-info.yaml:7: metadata.labels.-tier: \"-tier\" is not a Kubernetes key"
        ),
        "{}",
        messages[1]
    );
    assert!(
        messages[2].starts_with("catalog-info.yaml:10: metadata.annotations.not a key: "),
        "{}",
        messages[2]
    );
}

#[test]
fn syntax_errors_point_at_the_parsers_line_in_the_file() {
    let text = format!(
        "{}---\napiVersion: backstage.io/v1alpha1\nkind: [Component\n",
        component_with("", "")
    );
    let messages = errors(&text);
    assert_eq!(messages.len(), 1, "{messages:#?}");
    // The second document starts on line 9; the parser stops at its end, line 12.
    assert!(
        messages[0].starts_with("catalog-info.yaml:12: not valid YAML: "),
        "{}",
        messages[0]
    );
    assert!(
        messages[0].contains("at line 12 column 1"),
        "{}",
        messages[0]
    );
}

#[test]
fn a_broken_document_does_not_hide_the_others_problems() {
    let text = "a: [\n---\napiVersion: v1\nkind: Component\n";
    let messages = errors(text);
    assert_eq!(messages.len(), 2, "{messages:#?}");
    assert!(messages[0].starts_with("catalog-info.yaml:2: not valid YAML"));
    assert!(messages[1].starts_with("catalog-info.yaml:3: apiVersion \"v1\""));
}

#[test]
fn a_document_must_be_a_mapping() {
    assert_eq!(
        errors("# list\n- a\n- b\n"),
        [
            "catalog-info.yaml:2: expected a Backstage entity (a mapping with apiVersion, \
          kind, metadata and spec), found a list"
        ]
    );
}

#[test]
fn the_api_version_must_be_backstages() {
    assert_eq!(
        errors("kind: Component\nmetadata: {name: a}\n"),
        [
            "catalog-info.yaml:1: apiVersion is missing; expected backstage.io/v1alpha1 or \
          backstage.io/v1beta1"
        ]
    );
    let wrong = errors("kind: Component\napiVersion: backstage.io/v2\n");
    assert_eq!(
        wrong,
        [
            "catalog-info.yaml:2: apiVersion \"backstage.io/v2\": expected \
          backstage.io/v1alpha1 or backstage.io/v1beta1"
        ]
    );
    let pave = errors("apiVersion: platform.pave.dev/v1alpha1\nkind: Component\n");
    assert_has(&pave, "already a pave object");
}

#[test]
fn kinds_are_case_sensitive_as_in_backstage() {
    let text = component_with("", "").replace("kind: Component", "kind: component");
    assert_eq!(
        errors(&text),
        [
            "catalog-info.yaml:2: kind \"component\": Backstage kinds are case-sensitive; \
          write Component"
        ]
    );
}

#[test]
fn owner_type_and_lifecycle_are_required() {
    let text = "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: svc\n\
                spec:\n  type: ''\n  system: payments\n";
    assert_eq!(
        errors(text),
        [
            "catalog-info.yaml:5: spec.lifecycle is missing; a Component needs one",
            "catalog-info.yaml:5: spec.owner is missing; a Component needs one",
            "catalog-info.yaml:6: spec.type is missing; a Component needs one",
        ]
    );
    let no_spec = "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: a}\n";
    assert_eq!(
        errors(no_spec),
        [
            "catalog-info.yaml:1: spec is missing; a Component needs spec.lifecycle, \
          spec.owner and spec.type"
        ]
    );
}

#[test]
fn names_kubernetes_refuses_are_errors_with_a_suggestion() {
    let text = component_with("", "").replace("name: svc", "name: PaymentService");
    assert_eq!(
        errors(&text),
        [
            "catalog-info.yaml:4: metadata.name \"PaymentService\" is valid in Backstage, but \
          Kubernetes refuses it: object names are lowercase letters, digits, '-' and '.'; \
          rename it to \"paymentservice\" (and update references to it)"
        ]
    );
    let long = component_with("", "").replace("name: svc", &format!("name: {}", "a".repeat(64)));
    assert_has(&errors(&long), "catalog-info.yaml:4: metadata.name");
    let missing = component_with("", "").replace("  name: svc\n", "  title: Svc\n");
    assert_eq!(
        errors(&missing),
        // The name cannot be found, so the message points at its parent.
        ["catalog-info.yaml:3: metadata.name is missing; a Component needs one"]
    );
}

#[test]
fn namespaces_kubernetes_refuses_are_errors() {
    let text = component_with("  namespace: Team_A\n", "");
    let messages = errors(&text);
    assert_eq!(messages.len(), 1, "{messages:#?}");
    assert!(messages[0].starts_with("catalog-info.yaml:5: metadata.namespace: "));
    assert!(messages[0].contains("\"team-a\""));
    // `--namespace` replaces it, so it no longer matters.
    let outcome = import(&[source("catalog-info.yaml", &text)], Some("team-a"));
    assert_eq!(outcome.errors(), 0, "{:#?}", outcome.diagnostics);
}

#[test]
fn tags_must_follow_backstages_grammar() {
    let text = component_with("  tags:\n    - java\n    - Spring Boot\n", "");
    assert_eq!(
        errors(&text),
        [
            "catalog-info.yaml:7: metadata.tags[1]: \"Spring Boot\" is not a valid tag: \
          lowercase letters, digits, ':', '+' and '#', in runs separated by single '-'; \
          for example \"spring-boot\""
        ]
    );
}

#[test]
fn references_must_be_entity_references() {
    let text = component_with(
        "",
        "  system: 'payments system'\n  dependsOn:\n    - component:a\n    - component:/b\n",
    )
    .replace("owner: team-a", "owner: group:a/b/c");
    let messages = errors(&text);
    assert_eq!(messages.len(), 3, "{messages:#?}");
    assert!(messages[0].starts_with(
        "catalog-info.yaml:8: spec.owner: \"group:a/b/c\" is not an entity reference"
    ));
    assert!(messages[1].starts_with("catalog-info.yaml:9: spec.system: "));
    assert!(messages[2].starts_with("catalog-info.yaml:12: spec.dependsOn[1]: \"component:/b\""));
}

#[test]
fn links_need_an_absolute_url() {
    let text = component_with(
        "  links:\n    - title: Runbook\n    - url: /runbooks/payments\n",
        "",
    );
    assert_eq!(
        errors(&text),
        [
            "catalog-info.yaml:6: metadata.links[0].url is missing; a link needs one",
            "catalog-info.yaml:7: metadata.links[1].url: \"/runbooks/payments\" is not an \
             absolute URL such as https://runbooks/payments",
        ]
    );
}

#[test]
fn values_yaml_reads_as_numbers_must_be_quoted() {
    let text = component_with("  annotations:\n    pagerduty.com/service-id: 12345\n", "");
    assert_eq!(
        errors(&text),
        [
            "catalog-info.yaml:6: metadata.annotations.pagerduty.com/service-id: expected a \
          string, found a number; write it in quotes: \"12345\""
        ]
    );
    let list = component_with("  tags: java\n", "");
    assert_eq!(
        errors(&list),
        ["catalog-info.yaml:5: metadata.tags: expected a list of strings, found a string"]
    );
}

#[test]
fn lengths_the_crd_limits_are_checked_before_printing() {
    let text =
        component_with("", "").replace("type: service", &format!("type: {}", "x".repeat(64)));
    assert_eq!(
        errors(&text),
        ["catalog-info.yaml:6: spec.type: is 64 characters long; the most pave accepts is 63"]
    );
}

#[test]
fn one_name_twice_is_an_error_across_files() {
    let text = component_with("", "");
    let outcome = import(&[source("a.yaml", &text), source("b.yaml", &text)], None);
    assert_eq!(
        messages(&outcome),
        ["b.yaml:1: Component svc is already defined at a.yaml:1"]
    );
    // In different namespaces they are different objects.
    let other = component_with("  namespace: team-b\n", "");
    let outcome = import(&[source("a.yaml", &text), source("b.yaml", &other)], None);
    assert_eq!(outcome.errors(), 0);
    assert_eq!(components(&outcome).len(), 2);
}

#[test]
fn unreadable_and_empty_files_are_reported_per_file() {
    let sources = [
        Source {
            name: "missing.yaml".to_owned(),
            text: Err("cannot read: No such file or directory (os error 2)".to_owned()),
        },
        source("empty.yaml", "# nothing here\n---\n"),
    ];
    let outcome = import(&sources, None);
    assert_eq!(
        messages(&outcome),
        [
            "missing.yaml: cannot read: No such file or directory (os error 2)",
            "empty.yaml: warning: no YAML documents in this file",
        ]
    );
    assert_eq!(outcome.errors(), 1);
}

#[test]
fn the_output_is_one_yaml_stream_that_reads_back_as_components() {
    let sources = [
        source("a.yaml", ARTICLE),
        source("b.yaml", &component_with("", "")),
    ];
    let outcome = import(&sources, None);
    let yaml = to_yaml(&outcome.entities);
    assert_eq!(yaml.matches("\n---\n").count(), 1, "{yaml}");
    let read_back: Vec<pave_api::Component> = serde_yaml::Deserializer::from_str(&yaml)
        .map(|document| serde::Deserialize::deserialize(document).unwrap())
        .collect();
    assert_eq!(read_back.iter().collect::<Vec<_>>(), components(&outcome));
    assert!(yaml.starts_with("apiVersion: platform.pave.dev/v1alpha1\nkind: Component\n"));
}

#[test]
fn parser_lines_are_moved_to_the_files_lines() {
    assert_eq!(
        in_file_lines(
            "bad at line 2 column 3, while parsing at line 1 column 1",
            10
        ),
        "bad at line 11 column 3, while parsing at line 10 column 1"
    );
}
