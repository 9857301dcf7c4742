//! Property tests: no input makes the engine panic, and what it answers is coherent
//! (levels are cumulative, blocking rules failed, compiled and one-shot agree).

use std::collections::BTreeMap;

use pave_score::{Entity, Operator, Scorecard, evaluate, selects};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Strings that mean something to the engine, plus noise.
fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("production".to_owned()),
        Just("81".to_owned()),
        Just("-0.5e3".to_owned()),
        Just("2024-06-01T00:00:00Z".to_owned()),
        Just("2024-06-01".to_owned()),
        Just("true".to_owned()),
        Just(String::new()),
        Just("pagerduty.com/service-id".to_owned()),
        "[a-z$._/-]{0,12}",
        any::<String>(),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        (-100i64..100).prop_map(Value::from),
        word().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(word(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Condition values shaped for the operators often enough to get past compile.
fn condition_value() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None),
        json_value().prop_map(Some),
        (json_value(), json_value()).prop_map(|(from, to)| Some(json!({"from": from, "to": to}))),
        (-100i64..100, -100i64..100)
            .prop_map(|(a, b)| Some(json!({"from": a.min(b), "to": a.max(b)}))),
        prop::collection::vec(word(), 0..4).prop_map(|v| Some(json!(v))),
    ]
}

fn property() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "$identifier", "$title", "$team", "$owner", "$tags", "$namespace", "$dependsOn",
            "$unresolvedRefs", "$", "lifecycle", "coverage", "spec.links.0.url", "spec.",
            "properties.a.b", "annotations.pagerduty.com/service-id", "labels.team",
            "pagerduty_service_id", "",
        ])
        .prop_map(str::to_owned),
        1 => word(),
    ]
}

fn condition() -> impl Strategy<Value = Value> {
    let operator = prop_oneof![
        30 => prop::sample::select(Operator::ALL.to_vec()).prop_map(|o| json!(o.as_str())),
        1 => Just(json!("~=")),
    ];
    (property(), operator, condition_value()).prop_map(|(property, operator, value)| {
        let mut condition = json!({"property": property, "operator": operator});
        if let Some(value) = value {
            condition["value"] = value;
        }
        condition
    })
}

fn query() -> impl Strategy<Value = Value> {
    let list = || prop::option::of(prop::collection::vec(condition(), 0..4));
    (prop::sample::select(vec!["and", "or"]), list(), list()).prop_map(
        |(combinator, rules, conditions)| {
            let mut query = json!({"combinator": combinator});
            if let Some(rules) = rules {
                query["rules"] = json!(rules);
            }
            if let Some(conditions) = conditions {
                query["conditions"] = json!(conditions);
            }
            query
        },
    )
}

const LEVELS: [&str; 5] = ["Basic", "Bronze", "Silver", "Gold", "Platinum"];

fn scorecard_value() -> impl Strategy<Value = Value> {
    let level = prop::sample::select(LEVELS.to_vec());
    let rule = (
        prop::sample::select(vec!["a", "b", "c", "d", ""]),
        level.clone(),
        query(),
    )
        .prop_map(|(id, level, query)| json!({"identifier": id, "level": level, "query": query}));
    (
        prop::option::of(prop::collection::vec(level, 0..5)),
        prop::collection::vec(rule, 0..8),
        prop::option::of(query()),
    )
        .prop_map(|(levels, rules, filter)| {
            let mut scorecard = json!({"identifier": "s", "rules": rules});
            if let Some(levels) = levels {
                scorecard["levels"] = levels.iter().map(|t| json!({"title": t})).collect();
            }
            if let Some(filter) = filter {
                scorecard["filter"] = filter;
            }
            scorecard
        })
}

fn map() -> impl Strategy<Value = Map<String, Value>> {
    let key = prop_oneof![
        3 => prop::sample::select(vec!["lifecycle", "coverage", "links", "a", "a.b", "runbook_url"]).prop_map(str::to_owned),
        1 => word(),
    ];
    prop::collection::btree_map(key, json_value(), 0..5).prop_map(|m| m.into_iter().collect())
}

fn strings() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map(word(), word(), 0..4)
}

fn entity() -> impl Strategy<Value = Entity> {
    (
        (word(), word(), prop::option::of(word()), word()),
        prop::collection::vec(word(), 0..3),
        (map(), map()),
        (strings(), strings()),
        prop::collection::btree_map(word(), any::<i64>(), 0..3),
    )
        .prop_map(
            |(
                (name, namespace, title, owner),
                tags,
                (spec, properties),
                (annotations, labels),
                relation_counts,
            )| Entity {
                name,
                namespace,
                title,
                owner_resolved: Some(owner.len() % 2 == 0),
                owner,
                tags,
                spec,
                properties,
                annotations,
                labels,
                relation_counts,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_json_never_panics(value in json_value()) {
        if let Ok(scorecard) = Scorecard::from_value(value) {
            let _ = scorecard.problems();
            let _ = selects(&scorecard, &Entity::default());
            let _ = evaluate(&scorecard, &Entity::default());
        }
    }

    #[test]
    fn scorecards_and_entities_never_panic_and_answer_coherently(
        value in scorecard_value(),
        entity in entity(),
    ) {
        let Ok(scorecard) = Scorecard::from_value(value) else {
            // Only the invalid operator may make a generated scorecard unparseable.
            return Ok(());
        };
        let _ = scorecard.problems();
        let compiled = scorecard.compile();
        let selected = selects(&scorecard, &entity);
        prop_assert_eq!(&selected, &compiled.selects(&entity));
        let evaluation = evaluate(&scorecard, &entity);
        prop_assert_eq!(&evaluation, &compiled.evaluate(&entity));

        prop_assert_eq!(evaluation.rules.len(), scorecard.rules.len());
        for outcome in &evaluation.rules {
            prop_assert!(!(outcome.passed && outcome.error.is_some()));
        }
        let titles: Vec<&str> = scorecard.levels.iter().map(|l| l.title.as_str()).collect();
        if (1..titles.len()).any(|i| titles[..i].contains(&titles[i])) {
            // Repeated titles are a reported problem, and make titles ambiguous below.
            return Ok(());
        }
        let index = |title: &str| titles.iter().position(|t| *t == title);
        let reached = evaluation.level.as_deref().map(|t| index(t).expect("level is a level"));
        // Every rule at or below the reached level passed...
        for (rule, outcome) in scorecard.rules.iter().zip(&evaluation.rules) {
            if let (Some(level), Some(reached)) = (index(&rule.level), reached)
                && level <= reached
            {
                prop_assert!(outcome.passed, "{} failed below {:?}", rule.identifier, evaluation.level);
            }
        }
        // ...the next level is the one above...
        let next = reached.map_or(0, |r| r + 1);
        prop_assert_eq!(evaluation.next_level.as_deref(), titles.get(next).copied());
        // ...and below the top, something at or below the next level failed.
        if evaluation.next_level.is_some() {
            let failed_at_next = scorecard.rules.iter().zip(&evaluation.rules).any(|(rule, outcome)| {
                !outcome.passed && index(&rule.level).is_some_and(|l| l <= next)
            });
            prop_assert!(failed_at_next);
            prop_assert!(!evaluation.blocking.is_empty());
        }
        for blocked in &evaluation.blocking {
            prop_assert!(evaluation.rules.iter().any(|o| &o.identifier == blocked && !o.passed));
        }

        // A scorecard survives a trip through its own serialization.
        let round_trip = Scorecard::from_value(serde_json::to_value(&scorecard).unwrap());
        prop_assert_eq!(round_trip.as_ref(), Ok(&scorecard));
    }
}
