//! The article's scorecard (`examples/port/service-maturity.yaml`, as Port writes it)
//! on the article's payment-service, and Port's current format.

use std::collections::BTreeMap;

use pave_score::{Entity, Operator, ScoreError, Scorecard, evaluate, selects};
use serde_json::json;

const ARTICLE_SCORECARD: &str = include_str!("../../../examples/port/service-maturity.yaml");

/// The article's catalog-info.yaml, as the operator would fill an Entity. It has no
/// runbook_url.
fn payment_service() -> Entity {
    let spec = json!({
        "type": "service",
        "lifecycle": "production",
        "owner": "payments-team",
        "dependsOn": ["component:user-service", "resource:payments-database"],
        "providesApis": ["payment-api"],
    });
    Entity {
        name: "payment-service".into(),
        namespace: "default".into(),
        owner: "payments-team".into(),
        tags: vec!["java".into(), "payments".into()],
        spec: spec.as_object().unwrap().clone(),
        annotations: BTreeMap::from([
            (
                "github.com/project-slug".into(),
                "my-org/payment-service".into(),
            ),
            ("backstage.io/techdocs-ref".into(), "dir:.".into()),
            ("pagerduty.com/service-id".into(), "P12345".into()),
        ]),
        relation_counts: BTreeMap::from([("dependsOn".into(), 2)]),
        ..Entity::default()
    }
}

#[test]
fn the_article_scorecard_parses_unchanged_and_has_no_problems() {
    let scorecard = Scorecard::from_yaml_str(ARTICLE_SCORECARD).unwrap();
    assert_eq!(scorecard.identifier.as_deref(), Some("service-maturity"));
    assert_eq!(scorecard.title.as_deref(), Some("서비스 운영 성숙도"));
    let levels: Vec<&str> = scorecard.levels.iter().map(|l| l.title.as_str()).collect();
    assert_eq!(levels, ["Basic", "Silver", "Gold"]);
    assert_eq!(scorecard.levels[0].color.as_deref(), Some("red"));
    let rules: Vec<&str> = scorecard
        .rules
        .iter()
        .map(|r| r.identifier.as_str())
        .collect();
    assert_eq!(
        rules,
        [
            "has-catalog-info",
            "has-owner",
            "has-runbook",
            "has-alerting"
        ]
    );
    assert_eq!(
        scorecard.rules[2].query.rules.as_ref().unwrap()[0].operator,
        Operator::IsNotEmpty
    );
    assert_eq!(scorecard.problems(), []);
}

#[test]
fn payment_service_is_basic_and_blocked_on_its_runbook() {
    let scorecard = Scorecard::from_yaml_str(ARTICLE_SCORECARD).unwrap();
    let entity = payment_service();
    assert_eq!(selects(&scorecard, &entity), Ok(true));
    let evaluation = evaluate(&scorecard, &entity);
    assert_eq!(evaluation.level.as_deref(), Some("Basic"));
    assert_eq!(evaluation.next_level.as_deref(), Some("Silver"));
    assert_eq!(evaluation.blocking, ["has-runbook"]);
    let outcome = |id: &str| {
        evaluation
            .rules
            .iter()
            .find(|r| r.identifier == id)
            .unwrap()
    };
    assert!(outcome("has-catalog-info").passed);
    assert!(outcome("has-owner").passed);
    assert!(!outcome("has-runbook").passed);
    assert_eq!(outcome("has-runbook").error, None);
    // pagerduty_service_id is the pagerduty.com/service-id annotation's alias.
    assert!(outcome("has-alerting").passed);
    assert!(evaluation.rules.iter().all(|r| r.error.is_none()));

    // Writing the runbook down earns Gold.
    let mut documented = entity.clone();
    documented
        .properties
        .insert("runbook_url".into(), json!("https://runbooks/payments"));
    let evaluation = evaluate(&scorecard, &documented);
    assert_eq!(evaluation.level.as_deref(), Some("Gold"));
    assert_eq!(evaluation.next_level, None);

    // Without an owner it has no level at all (the article puts rules on Basic).
    let orphan = Entity {
        owner: String::new(),
        ..entity
    };
    let evaluation = evaluate(&scorecard, &orphan);
    assert_eq!(evaluation.level, None);
    assert_eq!(evaluation.next_level.as_deref(), Some("Basic"));
    assert_eq!(evaluation.blocking, ["has-owner"]);
}

#[test]
fn a_pave_scorecard_object_carries_the_article_under_spec() {
    let port: serde_json::Value = serde_yaml::from_str(ARTICLE_SCORECARD).unwrap();
    let object = json!({
        "apiVersion": "platform.pave.dev/v1alpha1",
        "kind": "Scorecard",
        "metadata": {"name": "service-maturity"},
        "spec": port,
    });
    let from_object = Scorecard::from_value(object).unwrap();
    assert_eq!(
        from_object,
        Scorecard::from_yaml_str(ARTICLE_SCORECARD).unwrap()
    );

    let component =
        json!({"apiVersion": "platform.pave.dev/v1alpha1", "kind": "Component", "spec": {}});
    assert!(matches!(
        Scorecard::from_value(component),
        Err(ScoreError::NotAScorecard(_))
    ));
    let foreign = json!({"apiVersion": "example.com/v1", "kind": "Scorecard", "spec": port});
    assert!(matches!(
        Scorecard::from_value(foreign),
        Err(ScoreError::NotAScorecard(_))
    ));
}

#[test]
fn ports_current_format_with_conditions_and_a_filter() {
    let yaml = r#"
apiVersion: platform.pave.dev/v1alpha1
kind: Scorecard
metadata: {name: service-maturity}
spec:
  identifier: service-maturity
  title: 서비스 운영 성숙도
  filter: {combinator: and, conditions: [{property: lifecycle, operator: "=", value: production}]}
  levels: [{title: Basic, color: red}, {title: Silver, color: gold}, {title: Gold, color: silver}]
  rules:
  - identifier: has-owner
    title: 오너십 지정
    level: Basic
    query: {combinator: and, rules: [{property: $team, operator: isNotEmpty}]}
  - identifier: tested
    level: Silver
    query:
      combinator: or
      conditions:
      - {property: coverage, operator: ">=", value: 80}
      - {property: $tags, operator: contains, value: legacy}
"#;
    let scorecard = Scorecard::from_yaml_str(yaml).unwrap();
    assert_eq!(scorecard.problems(), []);
    assert!(scorecard.rules[1].query.conditions.is_some());

    let mut entity = payment_service();
    entity.annotations.insert("coverage".into(), "81".into());
    assert_eq!(selects(&scorecard, &entity), Ok(true));
    let evaluation = evaluate(&scorecard, &entity);
    assert_eq!(evaluation.level.as_deref(), Some("Gold"));

    entity
        .spec
        .insert("lifecycle".into(), json!("experimental"));
    assert_eq!(selects(&scorecard, &entity), Ok(false));
}

#[test]
fn a_scorecard_serializes_back_to_the_same_shape() {
    let scorecard = Scorecard::from_yaml_str(ARTICLE_SCORECARD).unwrap();
    let value = serde_json::to_value(&scorecard).unwrap();
    assert_eq!(Scorecard::from_value(value.clone()).unwrap(), scorecard);
    // Absent optional fields stay absent rather than becoming nulls.
    assert!(value.get("filter").is_none());
    assert!(value["rules"][0]["query"].get("conditions").is_none());
}

#[test]
fn levels_default_to_ports_when_a_scorecard_names_none() {
    let scorecard = Scorecard::from_value(json!({"identifier": "x"})).unwrap();
    let levels: Vec<&str> = scorecard.levels.iter().map(|l| l.title.as_str()).collect();
    assert_eq!(levels, ["Basic", "Bronze", "Silver", "Gold"]);
}

#[test]
fn a_parse_error_names_the_rule() {
    let error = Scorecard::from_value(json!({
        "levels": [{"title": "Basic"}],
        "rules": [
            {"identifier": "fine", "level": "Basic", "query": {"combinator": "and", "conditions": []}},
            {"identifier": "broken", "level": "Basic", "query": {"combinator": "and", "conditions": [
                {"property": "x", "operator": "~="},
            ]}},
        ],
    }))
    .unwrap_err();
    let message = error.to_string();
    assert!(message.starts_with("rules[1] \"broken\""), "{message}");
    assert!(message.contains("~="), "{message}");

    let error = Scorecard::from_value(
        json!({"levels": [{"title": "Basic"}], "filter": {"combinator": "xor"}}),
    )
    .unwrap_err();
    assert!(error.to_string().starts_with("filter:"), "{error}");
    assert!(matches!(
        Scorecard::from_yaml_str("levels: [unclosed"),
        Err(ScoreError::Yaml(_))
    ));
}
