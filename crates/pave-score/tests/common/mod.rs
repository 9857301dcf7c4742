//! Shared fixtures: a Component rich enough to exercise every kind of property, and a
//! one-rule scorecard to ask a single condition through the public API.

#![allow(dead_code)]

use pave_score::{Entity, Scorecard, evaluate};
use serde_json::{Value, json};

pub fn object(value: Value) -> serde_json::Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

pub fn service() -> Entity {
    Entity {
        name: "payment-service".into(),
        namespace: "team-payments".into(),
        title: None,
        owner: "payments-team".into(),
        owner_resolved: Some(true),
        tags: vec!["java".into(), "payments".into()],
        spec: object(json!({
            "type": "service",
            "lifecycle": "production",
            "owner": "payments-team",
            "system": "payments",
            "dependsOn": ["component:user-service", "resource:payments-database"],
            "links": [{"url": "https://runbooks/payments", "title": "Runbook"}],
        })),
        properties: object(json!({
            "coverage": 81,
            "coverage_str": "81",
            "tier": "gold",
            "runbook_url": "https://runbooks/payments",
            "languages": ["java", "kotlin"],
            "released": "2024-06-01T00:00:00Z",
            "enabled": true,
            "empty_str": "",
            "empty_list": [],
            "empty_obj": {},
            "nothing": null,
            "owners": {"primary": "alice"},
            "a.b": "dotted key",
        })),
        annotations: [
            ("pagerduty.com/service-id", "P12345"),
            ("github.com/project-slug", "my-org/payment-service"),
            ("example.com/enabled", "true"),
            ("example.com/replicas", "3"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect(),
        labels: [("team".to_owned(), "payments".to_owned())].into(),
        relation_counts: [("dependsOn".to_owned(), 2)].into(),
    }
}

/// A scorecard of one level and one rule holding one condition.
pub fn one_condition(property: &str, operator: &str, value: Option<Value>) -> Scorecard {
    let mut condition = json!({"property": property, "operator": operator});
    if let Some(value) = value {
        condition["value"] = value;
    }
    Scorecard::from_value(json!({
        "levels": [{"title": "Basic"}],
        "rules": [{
            "identifier": "r",
            "level": "Basic",
            "query": {"combinator": "and", "conditions": [condition]},
        }],
    }))
    .expect("a valid one-rule scorecard")
}

/// The condition's result on `entity`: `Ok(passed)`, or the rule's error.
pub fn check(
    entity: &Entity,
    property: &str,
    operator: &str,
    value: Option<Value>,
) -> Result<bool, String> {
    let evaluation = evaluate(&one_condition(property, operator, value), entity);
    let outcome = &evaluation.rules[0];
    match &outcome.error {
        Some(error) => {
            assert!(!outcome.passed, "a rule with an error must not pass");
            Err(error.clone())
        }
        None => Ok(outcome.passed),
    }
}
