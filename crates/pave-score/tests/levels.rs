//! Level semantics: cumulative levels (Port's rule), rules on the lowest level,
//! next_level and blocking, broken rules, and the filter.

mod common;

use common::service;
use pave_score::{Entity, Evaluation, Scorecard, evaluate, selects};
use serde_json::{Value, json};

fn rule(identifier: &str, level: &str, passes: bool) -> Value {
    // `$identifier` is always set on the test entity.
    let operator = if passes { "isNotEmpty" } else { "isEmpty" };
    json!({
        "identifier": identifier,
        "level": level,
        "query": {"combinator": "and", "rules": [{"property": "$identifier", "operator": operator}]},
    })
}

fn port_levels() -> Value {
    json!([
        {"title": "Basic", "color": "paleBlue"},
        {"title": "Bronze", "color": "bronze"},
        {"title": "Silver", "color": "silver"},
        {"title": "Gold", "color": "gold"},
    ])
}

fn score(rules: Vec<Value>) -> Evaluation {
    let scorecard =
        Scorecard::from_value(json!({"levels": port_levels(), "rules": rules})).unwrap();
    evaluate(&scorecard, &service())
}

#[test]
fn ports_documented_example_failing_bronze_stays_basic_despite_silver() {
    let evaluation = score(vec![
        rule("bronze-1", "Bronze", true),
        rule("bronze-2", "Bronze", false),
        rule("silver-1", "Silver", true),
        rule("silver-2", "Silver", true),
        rule("gold-1", "Gold", true),
    ]);
    assert_eq!(evaluation.level.as_deref(), Some("Basic"));
    assert_eq!(evaluation.next_level.as_deref(), Some("Bronze"));
    assert_eq!(evaluation.blocking, ["bronze-2"]);
    let passed: Vec<bool> = evaluation.rules.iter().map(|r| r.passed).collect();
    assert_eq!(passed, [true, false, true, true, true]);
}

#[test]
fn passing_everything_reaches_the_top_with_no_next_level() {
    let evaluation = score(vec![
        rule("bronze-1", "Bronze", true),
        rule("silver-1", "Silver", true),
        rule("gold-1", "Gold", true),
    ]);
    assert_eq!(evaluation.level.as_deref(), Some("Gold"));
    assert_eq!(evaluation.next_level, None);
    assert!(evaluation.blocking.is_empty());
}

#[test]
fn a_lowest_level_without_rules_is_reached_by_everyone() {
    let evaluation = score(vec![rule("bronze-1", "Bronze", false)]);
    assert_eq!(evaluation.level.as_deref(), Some("Basic"));
    let evaluation = score(vec![]);
    assert_eq!(evaluation.level.as_deref(), Some("Gold"));
}

#[test]
fn failing_a_rule_on_the_lowest_level_means_no_level() {
    let evaluation = score(vec![
        rule("basic-1", "Basic", false),
        rule("basic-2", "Basic", true),
        rule("bronze-1", "Bronze", false),
        rule("gold-1", "Gold", false),
    ]);
    assert_eq!(evaluation.level, None);
    assert_eq!(evaluation.next_level.as_deref(), Some("Basic"));
    assert_eq!(evaluation.blocking, ["basic-1"]);
}

#[test]
fn blocking_lists_failures_at_or_below_the_next_level_in_scorecard_order() {
    // A Silver component whose Gold is blocked; failures above Gold would not count.
    let evaluation = score(vec![
        rule("gold-1", "Gold", false),
        rule("bronze-1", "Bronze", true),
        rule("silver-1", "Silver", true),
        rule("gold-2", "Gold", false),
        rule("gold-3", "Gold", true),
    ]);
    assert_eq!(evaluation.level.as_deref(), Some("Silver"));
    assert_eq!(evaluation.next_level.as_deref(), Some("Gold"));
    assert_eq!(evaluation.blocking, ["gold-1", "gold-2"]);

    // A lower failure and the next level's failures both block; higher ones don't.
    let evaluation = score(vec![
        rule("silver-1", "Silver", false),
        rule("gold-1", "Gold", false),
        rule("bronze-1", "Bronze", true),
    ]);
    assert_eq!(evaluation.level.as_deref(), Some("Bronze"));
    assert_eq!(evaluation.next_level.as_deref(), Some("Silver"));
    assert_eq!(evaluation.blocking, ["silver-1"]);
}

#[test]
fn a_broken_rule_fails_with_an_error_and_the_others_still_count() {
    let scorecard = Scorecard::from_value(json!({
        "levels": port_levels(),
        "rules": [
            {"identifier": "coverage", "level": "Bronze",
             "query": {"combinator": "or", "conditions": [
                 {"property": "$identifier", "operator": "isNotEmpty"},
                 {"property": "tier", "operator": ">", "value": 3},
             ]}},
            rule("silver-1", "Silver", true),
        ],
    }))
    .unwrap();
    let evaluation = evaluate(&scorecard, &service());
    let broken = &evaluation.rules[0];
    assert!(!broken.passed);
    let error = broken.error.as_deref().unwrap();
    assert!(
        error.contains("\"tier\"") && error.contains("a string"),
        "{error}"
    );
    assert!(evaluation.rules[1].passed);
    assert_eq!(evaluation.level.as_deref(), Some("Basic"));
    assert_eq!(evaluation.blocking, ["coverage"]);
}

#[test]
fn a_rule_on_an_unknown_level_fails_with_an_error_but_blocks_nothing() {
    let evaluation = score(vec![
        rule("platinum-1", "Platinum", true),
        rule("bronze-1", "Bronze", true),
    ]);
    assert!(!evaluation.rules[0].passed);
    assert!(
        evaluation.rules[0]
            .error
            .as_deref()
            .unwrap()
            .contains("Platinum")
    );
    assert_eq!(evaluation.level.as_deref(), Some("Gold"));
    assert!(evaluation.blocking.is_empty());
}

#[test]
fn a_scorecard_without_levels_gives_no_level() {
    let scorecard =
        Scorecard::from_value(json!({"levels": [], "rules": [rule("a", "Basic", true)]})).unwrap();
    let evaluation = evaluate(&scorecard, &service());
    assert_eq!(evaluation.level, None);
    assert_eq!(evaluation.next_level, None);
    assert!(evaluation.blocking.is_empty());
}

#[test]
fn an_empty_query_is_and_of_nothing_or_or_of_nothing() {
    let scorecard = Scorecard::from_value(json!({
        "levels": [{"title": "Basic"}, {"title": "Silver"}],
        "rules": [
            {"identifier": "and", "level": "Basic", "query": {"combinator": "and", "conditions": []}},
            {"identifier": "or", "level": "Silver", "query": {"combinator": "or", "conditions": []}},
        ],
    }))
    .unwrap();
    let evaluation = evaluate(&scorecard, &service());
    assert!(evaluation.rules[0].passed);
    assert!(!evaluation.rules[1].passed);
    assert_eq!(evaluation.level.as_deref(), Some("Basic"));
}

#[test]
fn combinators_join_conditions() {
    let query = |combinator: &str| {
        Scorecard::from_value(json!({
            "levels": [{"title": "Basic"}],
            "rules": [{"identifier": "r", "level": "Basic", "query": {"combinator": combinator, "conditions": [
                {"property": "lifecycle", "operator": "=", "value": "production"},
                {"property": "type", "operator": "=", "value": "website"},
            ]}}],
        }))
        .unwrap()
    };
    assert!(!evaluate(&query("and"), &service()).rules[0].passed);
    assert!(evaluate(&query("or"), &service()).rules[0].passed);
}

#[test]
fn the_filter_selects_components() {
    let scorecard = Scorecard::from_value(json!({
        "filter": {"combinator": "and", "conditions": [
            {"property": "lifecycle", "operator": "=", "value": "production"},
        ]},
        "levels": [{"title": "Basic"}],
    }))
    .unwrap();
    assert_eq!(selects(&scorecard, &service()), Ok(true));
    let mut experimental = service();
    experimental
        .spec
        .insert("lifecycle".into(), json!("experimental"));
    assert_eq!(selects(&scorecard, &experimental), Ok(false));
    assert_eq!(scorecard.compile().selects(&experimental), Ok(false));
    // Without a filter every component is selected.
    let unfiltered = Scorecard {
        filter: None,
        ..scorecard
    };
    assert_eq!(selects(&unfiltered, &Entity::default()), Ok(true));
}

#[test]
fn a_filter_that_cannot_be_evaluated_does_not_select_and_says_why() {
    let scorecard = Scorecard::from_value(json!({
        "filter": {"combinator": "or", "conditions": [
            {"property": "lifecycle", "operator": "=", "value": "production"},
            {"property": "tier", "operator": ">=", "value": 2},
        ]},
        "levels": [{"title": "Basic"}],
    }))
    .unwrap();
    let error = selects(&scorecard, &service()).unwrap_err();
    assert!(
        error.starts_with("filter:") && error.contains("\"tier\""),
        "{error}"
    );
}
