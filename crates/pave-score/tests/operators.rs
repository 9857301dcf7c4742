//! Each operator through the public API: Port's meaning, pave's type coercions, type
//! errors that name the property, operator and offending type, and absent properties.

mod common;

use common::{check, service};
use serde_json::json;

fn ok(property: &str, operator: &str, value: serde_json::Value) -> bool {
    check(&service(), property, operator, Some(value))
        .unwrap_or_else(|e| panic!("{property} {operator}: unexpected error {e}"))
}

fn err(property: &str, operator: &str, value: serde_json::Value) -> String {
    match check(&service(), property, operator, Some(value)) {
        Err(message) => message,
        Ok(passed) => panic!("{property} {operator}: expected a type error, got {passed}"),
    }
}

#[test]
fn equality_compares_by_value_with_number_and_boolean_coercion() {
    assert!(ok("lifecycle", "=", json!("production")));
    assert!(!ok("lifecycle", "=", json!("Production")));
    assert!(ok("coverage", "=", json!(81)));
    assert!(ok("coverage", "=", json!(81.0)));
    assert!(!ok("coverage", "=", json!(80)));
    // A numeric string and a number are the same number, both ways round.
    assert!(ok("coverage", "=", json!("81")));
    assert!(ok("coverage_str", "=", json!(81)));
    assert!(ok("example_replicas", "=", json!(3)));
    // Two strings compare as strings.
    assert!(!ok("coverage_str", "=", json!("81.0")));
    assert!(ok("enabled", "=", json!(true)));
    assert!(!ok("enabled", "=", json!(false)));
    // Annotations are strings; "true" answers a boolean.
    assert!(ok("example_enabled", "=", json!(true)));
    assert!(!ok("enabled", "=", json!(1)));
    assert!(!ok("tier", "=", json!(1)));
    assert!(ok("$tags", "=", json!(["java", "payments"])));
    assert!(!ok("$tags", "=", json!(["payments", "java"])));
    assert!(ok("owners", "=", json!({"primary": "alice"})));

    assert!(ok("lifecycle", "!=", json!("deprecated")));
    assert!(!ok("lifecycle", "!=", json!("production")));
    assert!(ok("coverage", "!=", json!("80")));
}

#[test]
fn ordering_compares_numbers_and_numeric_strings() {
    assert!(ok("coverage", ">", json!(80)));
    assert!(!ok("coverage", ">", json!(81)));
    assert!(ok("coverage", ">=", json!(81)));
    assert!(!ok("coverage", "<", json!(81)));
    assert!(ok("coverage", "<=", json!(81)));
    assert!(ok("coverage", "<", json!(81.5)));
    // The article's case: a string annotation or property against a number.
    assert!(ok("coverage_str", ">", json!(80)));
    assert!(ok("coverage_str", "<", json!(100)));
    assert!(ok("$dependsOn", ">=", json!(2)));
    // A numeric string value is a number too.
    assert!(ok("coverage", ">", json!("80")));
}

#[test]
fn ordering_compares_rfc3339_dates_when_the_value_is_a_date() {
    assert!(ok("released", ">", json!("2024-01-01T00:00:00Z")));
    assert!(ok("released", "<", json!("2024-06-01T00:00:01Z")));
    assert!(ok("released", "<=", json!("2024-06-01T09:00:00+09:00")));
    assert!(ok("released", ">=", json!("2024-06-01")));
    assert!(!ok("released", "<", json!("2024-06-01")));
}

#[test]
fn ordering_a_value_of_the_wrong_type_is_an_error_naming_it() {
    let message = err("tier", ">", json!(80));
    assert!(message.contains("\"tier\""), "{message}");
    assert!(message.contains("\">\""), "{message}");
    assert!(message.contains("a string (\"gold\")"), "{message}");

    let message = err("languages", "<", json!(3));
    assert!(message.contains("an array"), "{message}");
    let message = err("enabled", ">=", json!(1));
    assert!(message.contains("a boolean"), "{message}");
    // A number is not a date, and a non-date string is not one either.
    let message = err("coverage", ">", json!("2024-01-01T00:00:00Z"));
    assert!(
        message.contains("a number (81)") && message.contains("date"),
        "{message}"
    );
    let message = err("tier", "<", json!("2024-01-01"));
    assert!(message.contains("RFC 3339"), "{message}");
}

#[test]
fn between_is_inclusive_over_numbers_and_dates() {
    assert!(ok("coverage", "between", json!({"from": 80, "to": 90})));
    assert!(ok("coverage", "between", json!({"from": 81, "to": 81})));
    assert!(!ok("coverage", "between", json!({"from": 82, "to": 90})));
    assert!(ok("coverage_str", "between", json!({"from": 0, "to": 100})));
    assert!(ok(
        "released",
        "between",
        json!({"from": "2024-01-01T00:00:00Z", "to": "2024-12-31T23:59:59Z"})
    ));
    assert!(!ok(
        "released",
        "between",
        json!({"from": "2025-01-01", "to": "2025-12-31"})
    ));
    let message = err("tier", "between", json!({"from": 0, "to": 100}));
    assert!(
        message.contains("\"between\"") && message.contains("a string"),
        "{message}"
    );
}

#[test]
fn contains_looks_into_strings_and_arrays() {
    assert!(ok("runbook_url", "contains", json!("runbooks")));
    assert!(!ok("runbook_url", "contains", json!("wiki")));
    assert!(ok("languages", "contains", json!("kotlin")));
    assert!(!ok("languages", "contains", json!("kot")));
    assert!(ok("$tags", "contains", json!("java")));
    assert!(ok("dependsOn", "contains", json!("component:user-service")));
    assert!(ok("languages", "doesNotContains", json!("go")));
    assert!(!ok("languages", "doesNotContains", json!("java")));
    assert!(ok("runbook_url", "doesNotContains", json!("wiki")));

    let message = err("coverage", "contains", json!("8"));
    assert!(
        message.contains("\"contains\"") && message.contains("a number"),
        "{message}"
    );
    let message = err("owners", "doesNotContains", json!("alice"));
    assert!(message.contains("an object"), "{message}");
    let message = err("tier", "contains", json!(1));
    assert!(message.contains("string value"), "{message}");
}

#[test]
fn contains_any_matches_any_listed_element() {
    assert!(ok("languages", "containsAny", json!(["go", "java"])));
    assert!(!ok("languages", "containsAny", json!(["go", "rust"])));
    assert!(ok("$tags", "containsAny", json!(["payments"])));
    assert!(!ok("$tags", "containsAny", json!([])));
    assert!(ok(
        "runbook_url",
        "containsAny",
        json!(["wiki", "runbooks"])
    ));
    assert!(!ok(
        "runbook_url",
        "containsAny",
        json!(["wiki", "confluence"])
    ));
    let message = err("coverage", "containsAny", json!([81]));
    assert!(message.contains("a number"), "{message}");
}

#[test]
fn begins_and_ends_with_read_strings() {
    assert!(ok("runbook_url", "beginsWith", json!("https://")));
    assert!(!ok("runbook_url", "beginsWith", json!("http://")));
    assert!(ok("runbook_url", "doesNotBeginsWith", json!("http://")));
    assert!(!ok("runbook_url", "doesNotBeginsWith", json!("https://")));
    assert!(ok("runbook_url", "endsWith", json!("/payments")));
    assert!(!ok("runbook_url", "endsWith", json!("/users")));
    assert!(ok("runbook_url", "doesNotEndsWith", json!("/users")));
    assert!(!ok("runbook_url", "doesNotEndsWith", json!("/payments")));
    assert!(ok("github_project_slug", "beginsWith", json!("my-org/")));

    for operator in [
        "beginsWith",
        "doesNotBeginsWith",
        "endsWith",
        "doesNotEndsWith",
    ] {
        let message = err("coverage", operator, json!("8"));
        assert!(
            message.contains(&format!("\"{operator}\"")) && message.contains("a number"),
            "{message}"
        );
    }
    let message = err("languages", "beginsWith", json!("j"));
    assert!(message.contains("an array"), "{message}");
}

#[test]
fn emptiness_covers_absent_null_empty_string_array_and_object() {
    let entity = service();
    for empty in [
        "empty_str",
        "empty_list",
        "empty_obj",
        "nothing",
        "no_such_property",
    ] {
        assert_eq!(check(&entity, empty, "isEmpty", None), Ok(true), "{empty}");
        assert_eq!(
            check(&entity, empty, "isNotEmpty", None),
            Ok(false),
            "{empty}"
        );
    }
    for full in [
        "coverage",
        "enabled",
        "tier",
        "languages",
        "owners",
        "$tags",
        "$team",
    ] {
        assert_eq!(check(&entity, full, "isEmpty", None), Ok(false), "{full}");
        assert_eq!(check(&entity, full, "isNotEmpty", None), Ok(true), "{full}");
    }
    // false and 0 are values, not emptiness.
    let mut entity = service();
    entity.properties.insert("zero".into(), json!(0));
    entity.properties.insert("off".into(), json!(false));
    assert_eq!(check(&entity, "zero", "isEmpty", None), Ok(false));
    assert_eq!(check(&entity, "off", "isEmpty", None), Ok(false));
    // A stray value on isEmpty is ignored, as Port does.
    assert_eq!(
        check(&entity, "tier", "isNotEmpty", Some(json!("x"))),
        Ok(true)
    );
}

#[test]
fn in_and_not_in_test_membership() {
    assert!(ok("lifecycle", "in", json!(["production", "experimental"])));
    assert!(!ok("lifecycle", "in", json!(["deprecated"])));
    assert!(ok("coverage", "in", json!([80, 81])));
    assert!(ok("coverage_str", "in", json!([81])));
    assert!(ok("enabled", "in", json!([true])));
    // An array property is in when any element is.
    assert!(ok("languages", "in", json!(["kotlin", "scala"])));
    assert!(!ok("languages", "in", json!(["scala"])));
    assert!(!ok("empty_list", "in", json!(["scala"])));
    assert!(ok("lifecycle", "notIn", json!(["deprecated"])));
    assert!(!ok("lifecycle", "notIn", json!(["production"])));
    assert!(!ok("lifecycle", "in", json!([])));
    let message = err("owners", "in", json!(["alice"]));
    assert!(
        message.contains("\"in\"") && message.contains("an object"),
        "{message}"
    );
}

#[test]
fn absent_properties_make_comparisons_false_and_negations_true() {
    let entity = service();
    let absent = "no_such_property";
    let cases = [
        ("=", json!("x"), false),
        ("!=", json!("x"), true),
        ("<", json!(1), false),
        ("<=", json!(1), false),
        (">", json!(1), false),
        (">=", json!("2024-01-01"), false),
        ("between", json!({"from": 0, "to": 1}), false),
        ("contains", json!("x"), false),
        ("doesNotContains", json!("x"), true),
        ("containsAny", json!(["x"]), false),
        ("beginsWith", json!("x"), false),
        ("doesNotBeginsWith", json!("x"), true),
        ("endsWith", json!("x"), false),
        ("doesNotEndsWith", json!("x"), true),
        ("in", json!(["x"]), false),
        ("notIn", json!(["x"]), true),
    ];
    for (operator, value, expected) in cases {
        for property in [
            absent,
            "nothing",
            "properties.no_such_property",
            "annotations.none",
        ] {
            assert_eq!(
                check(&entity, property, operator, Some(value.clone())),
                Ok(expected),
                "{property} {operator}"
            );
        }
    }
}

#[test]
fn a_value_of_the_wrong_shape_fails_the_rule_with_an_error() {
    let entity = service();
    let cases = [
        ("coverage", "in", Some(json!("81")), "array"),
        (
            "coverage",
            ">",
            Some(json!("high")),
            "number or an RFC 3339 date",
        ),
        ("coverage", "between", Some(json!({"from": 1})), "`to`"),
        ("coverage", "between", Some(json!([1, 2])), "{from, to}"),
        (
            "coverage",
            "between",
            Some(json!({"preset": "lastWeek"})),
            "preset",
        ),
        ("tier", "=", None, "needs a value"),
        ("tier", "beginsWith", Some(json!(1)), "string"),
        ("tier", "contains", Some(json!(["a"])), "containsAny"),
        ("tier", "in", Some(json!([["nested"]])), "element 0"),
    ];
    for (property, operator, value, expected) in cases {
        let message = check(&entity, property, operator, value).unwrap_err();
        assert!(message.contains(expected), "{operator}: {message}");
        assert!(message.contains(property), "{operator}: {message}");
    }
}
