//! Property resolution: meta properties, relation counts, explicit paths, the bare-name
//! order (spec, properties, annotations, labels) and pave's annotation aliases.

mod common;

use common::{check, service};
use pave_score::Entity;
use serde_json::json;

fn equals(entity: &Entity, property: &str, value: serde_json::Value) -> bool {
    check(entity, property, "=", Some(value)).unwrap()
}

#[test]
fn meta_properties_read_the_component() {
    let entity = service();
    assert!(equals(&entity, "$identifier", json!("payment-service")));
    assert!(equals(&entity, "$namespace", json!("team-payments")));
    assert!(equals(&entity, "$team", json!("payments-team")));
    assert!(equals(&entity, "$owner", json!("payments-team")));
    assert!(equals(&entity, "$tags", json!(["java", "payments"])));
    // The title defaults to the name.
    assert!(equals(&entity, "$title", json!("payment-service")));
    let titled = Entity {
        title: Some("Payments".into()),
        ..service()
    };
    assert!(equals(&titled, "$title", json!("Payments")));
    let unowned = Entity {
        owner: String::new(),
        ..service()
    };
    assert_eq!(check(&unowned, "$team", "isEmpty", None), Ok(true));
}

#[test]
fn relation_counts_are_dollar_properties() {
    let mut entity = service();
    entity.relation_counts.insert("unresolvedRefs".into(), 1);
    entity.relation_counts.insert("impact".into(), 7);
    assert!(equals(&entity, "$dependsOn", json!(2)));
    assert!(equals(&entity, "$unresolvedRefs", json!(1)));
    assert!(equals(&entity, "$impact", json!(7)));
    // Backstage's relations count zero when the operator left them out...
    assert!(equals(&entity, "$dependencyOf", json!(0)));
    assert!(equals(&Entity::default(), "$unresolvedRefs", json!(0)));
    // ...but an unknown key is absent, so a typo does not read as zero.
    assert_eq!(check(&entity, "$dependsOnn", "isEmpty", None), Ok(true));
}

#[test]
fn a_bare_name_resolves_to_spec_then_properties_then_annotations_then_labels() {
    let mut entity = service();
    entity.spec.insert("tier".into(), json!("from-spec"));
    entity
        .properties
        .insert("tier".into(), json!("from-properties"));
    entity
        .annotations
        .insert("tier".into(), "from-annotations".into());
    entity.labels.insert("tier".into(), "from-labels".into());
    assert!(equals(&entity, "tier", json!("from-spec")));
    entity.spec.remove("tier");
    assert!(equals(&entity, "tier", json!("from-properties")));
    entity.properties.remove("tier");
    assert!(equals(&entity, "tier", json!("from-annotations")));
    entity.annotations.remove("tier");
    assert!(equals(&entity, "tier", json!("from-labels")));
    entity.labels.remove("tier");
    assert_eq!(check(&entity, "tier", "isEmpty", None), Ok(true));
}

#[test]
fn a_null_field_does_not_hide_the_next_source() {
    let mut entity = service();
    entity.spec.insert("tier".into(), json!(null));
    assert!(equals(&entity, "tier", json!("gold")));
}

#[test]
fn explicit_paths_skip_the_order() {
    let mut entity = service();
    entity.spec.insert("tier".into(), json!("from-spec"));
    entity
        .annotations
        .insert("tier".into(), "from-annotations".into());
    entity.labels.insert("tier".into(), "from-labels".into());
    assert!(equals(&entity, "spec.tier", json!("from-spec")));
    assert!(equals(&entity, "properties.tier", json!("gold")));
    assert!(equals(
        &entity,
        "annotations.tier",
        json!("from-annotations")
    ));
    assert!(equals(&entity, "labels.tier", json!("from-labels")));
    // Annotation keys keep their dots and slashes.
    assert!(equals(
        &entity,
        "annotations.pagerduty.com/service-id",
        json!("P12345")
    ));
    assert!(equals(&entity, "labels.team", json!("payments")));
    // Dots walk into spec and properties objects, and numbers into arrays...
    assert!(equals(
        &entity,
        "spec.links.0.url",
        json!("https://runbooks/payments")
    ));
    assert!(equals(&entity, "properties.owners.primary", json!("alice")));
    assert_eq!(
        check(&entity, "spec.links.1.url", "isEmpty", None),
        Ok(true)
    );
    assert_eq!(check(&entity, "spec.type.x", "isEmpty", None), Ok(true));
    // ...after a key that itself has the dots.
    assert!(equals(&entity, "properties.a.b", json!("dotted key")));
    // An explicit path does not fall through to another source.
    assert_eq!(check(&entity, "spec.coverage", "isEmpty", None), Ok(true));
    assert_eq!(check(&entity, "labels.tier2", "isEmpty", None), Ok(true));
}

#[test]
fn an_annotation_answers_to_its_port_style_alias() {
    let entity = service();
    assert!(equals(&entity, "pagerduty_service_id", json!("P12345")));
    assert!(equals(
        &entity,
        "github_project_slug",
        json!("my-org/payment-service")
    ));
    // The alias is exact: no partial or differently punctuated names.
    assert_eq!(
        check(&entity, "pagerduty_service", "isEmpty", None),
        Ok(true)
    );
    assert_eq!(
        check(&entity, "pagerduty_service-id", "isEmpty", None),
        Ok(true)
    );
    assert_eq!(
        check(&entity, "pagerduty_com_service_id", "isEmpty", None),
        Ok(true)
    );
    // A real property of that name wins over the alias.
    let mut entity = service();
    entity
        .properties
        .insert("pagerduty_service_id".into(), json!("PREAL"));
    assert!(equals(&entity, "pagerduty_service_id", json!("PREAL")));
    // Multi-label hosts keep all but the top-level domain.
    let mut entity = service();
    entity
        .annotations
        .insert("app.kubernetes.io/part-of".into(), "payments".into());
    assert!(equals(&entity, "app_kubernetes_part_of", json!("payments")));
}
