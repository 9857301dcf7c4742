//! `Scorecard::problems`: every way a rule can be unusable as written, each naming
//! its rule.

use pave_score::{Problem, Scorecard};
use serde_json::{Value, json};

fn problems_of(rules: Value) -> Vec<Problem> {
    Scorecard::from_value(json!({
        "levels": [{"title": "Basic"}, {"title": "Silver"}],
        "rules": rules,
    }))
    .unwrap()
    .problems()
}

fn rule_with(condition: Value) -> Value {
    json!([{"identifier": "r", "level": "Basic", "query": {"combinator": "and", "conditions": [condition]}}])
}

fn only_problem(problems: &[Problem], rule: &str, needle: &str) {
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].rule.as_deref(), Some(rule));
    assert!(
        problems[0].message.contains(needle),
        "{}",
        problems[0].message
    );
}

#[test]
fn a_rule_on_a_level_that_does_not_exist() {
    let problems = problems_of(json!([
        {"identifier": "gilded", "level": "Gold", "query": {"combinator": "and", "conditions": [
            {"property": "x", "operator": "isEmpty"}]}},
    ]));
    only_problem(&problems, "gilded", "\"Gold\"");
    assert!(problems[0].to_string().starts_with("rule \"gilded\": "));
}

#[test]
fn duplicate_rule_identifiers_and_level_titles() {
    let query =
        json!({"combinator": "and", "conditions": [{"property": "x", "operator": "isEmpty"}]});
    let problems = problems_of(json!([
        {"identifier": "twice", "level": "Basic", "query": query},
        {"identifier": "twice", "level": "Silver", "query": query},
        {"identifier": "twice", "level": "Silver", "query": query},
    ]));
    only_problem(&problems, "twice", "same identifier");

    let scorecard =
        Scorecard::from_value(json!({"levels": [{"title": "Basic"}, {"title": "Basic"}]})).unwrap();
    let problems = scorecard.problems();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].rule, None);
    assert!(
        problems[0]
            .message
            .contains("\"Basic\" appears more than once")
    );

    let scorecard = Scorecard::from_value(json!({"levels": []})).unwrap();
    assert!(scorecard.problems()[0].message.contains("no levels"));
}

#[test]
fn a_query_with_both_or_neither_condition_lists() {
    let condition = json!({"property": "x", "operator": "isEmpty"});
    let problems = problems_of(json!([
        {"identifier": "both", "level": "Basic", "query": {"combinator": "and", "rules": [condition], "conditions": [condition]}},
    ]));
    only_problem(&problems, "both", "both");
    let problems = problems_of(json!([
        {"identifier": "neither", "level": "Basic", "query": {"combinator": "or"}},
    ]));
    only_problem(&problems, "neither", "neither");
    let problems = problems_of(json!([
        {"identifier": "empty", "level": "Basic", "query": {"combinator": "or", "conditions": []}},
    ]));
    only_problem(&problems, "empty", "never passes");
}

#[test]
fn values_missing_or_of_the_wrong_shape() {
    let cases = [
        (json!({"property": "x", "operator": "="}), "needs a value"),
        (
            json!({"property": "x", "operator": "!=", "value": null}),
            "needs a value",
        ),
        (
            json!({"property": "x", "operator": "between", "value": {"from": 1}}),
            "`to`",
        ),
        (
            json!({"property": "x", "operator": "between", "value": {"from": 5, "to": 1}}),
            "after",
        ),
        (
            json!({"property": "x", "operator": "between", "value": {"from": 1, "to": "2024-01-01"}}),
            "one kind",
        ),
        (
            json!({"property": "x", "operator": "between", "value": 3}),
            "{from, to}",
        ),
        (
            json!({"property": "x", "operator": "in", "value": "a"}),
            "array",
        ),
        (
            json!({"property": "x", "operator": "notIn", "value": {"a": 1}}),
            "array",
        ),
        (
            json!({"property": "x", "operator": "containsAny", "value": "a"}),
            "array",
        ),
        (
            json!({"property": "x", "operator": ">", "value": "high"}),
            "number or an RFC 3339 date",
        ),
        (
            json!({"property": "x", "operator": "<=", "value": true}),
            "a boolean",
        ),
        (
            json!({"property": "x", "operator": "beginsWith", "value": 3}),
            "string",
        ),
        (
            json!({"property": "x", "operator": "contains", "value": {"a": 1}}),
            "an object",
        ),
        (json!({"property": "", "operator": "isEmpty"}), "empty"),
        (
            json!({"property": "annotations.", "operator": "isEmpty"}),
            "no key",
        ),
    ];
    for (condition, needle) in cases {
        let problems = problems_of(rule_with(condition.clone()));
        assert_eq!(problems.len(), 1, "{condition}: {problems:?}");
        assert_eq!(problems[0].rule.as_deref(), Some("r"));
        assert!(
            problems[0].message.contains(needle),
            "{condition}: {}",
            problems[0].message
        );
    }
}

#[test]
fn well_formed_values_are_not_problems() {
    let fine = [
        json!({"property": "x", "operator": "=", "value": [1, 2]}),
        json!({"property": "x", "operator": ">", "value": "80"}),
        json!({"property": "x", "operator": "<", "value": "2024-06-01T00:00:00Z"}),
        json!({"property": "x", "operator": "between", "value": {"from": "2024-01-01", "to": "2024-12-31T00:00:00Z"}}),
        json!({"property": "x", "operator": "in", "value": []}),
        json!({"property": "x", "operator": "contains", "value": 3}),
        json!({"property": "$anything", "operator": "isEmpty"}),
    ];
    for condition in fine {
        assert_eq!(problems_of(rule_with(condition.clone())), [], "{condition}");
    }
}

#[test]
fn filter_problems_name_the_filter() {
    let scorecard = Scorecard::from_value(json!({
        "filter": {"combinator": "and", "conditions": [{"property": "lifecycle", "operator": "in", "value": "production"}]},
        "levels": [{"title": "Basic"}],
    }))
    .unwrap();
    let problems = scorecard.problems();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].rule, None);
    assert!(
        problems[0].message.starts_with("filter: "),
        "{}",
        problems[0].message
    );
}
