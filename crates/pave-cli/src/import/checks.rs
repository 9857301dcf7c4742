//! The rules an imported Component must pass so the API server accepts it, checked
//! before anything is printed.
//!
//! Most rules are not written here but read from the CRD that `pave-api` generates
//! (patterns, lengths and list sizes of every spec field), so the importer cannot
//! drift from what the API server enforces. What the schema cannot say is here by
//! hand: the Kubernetes name rules (enforced by the API server itself, not by the
//! schema) and the CRD's CEL rules, which would need a CEL interpreter; a test fails
//! when the CRD gains a CEL rule this file does not mirror.

use std::collections::HashMap;
use std::sync::LazyLock;

use pave_api::grammar::{
    ENTITY_REF_PATTERN, NAME_PATTERN, NAMESPACE_PATTERN, OPTIONAL_ENTITY_REF_PATTERN, TAG_PATTERN,
};
use regex::Regex;
use serde_json::Value;

use crate::lines::{FieldPath, Segment};

fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).expect("pave's grammar patterns are valid regular expressions")
}

static BACKSTAGE_NAME: LazyLock<Regex> = LazyLock::new(|| regex(NAME_PATTERN));
static NAMESPACE: LazyLock<Regex> = LazyLock::new(|| regex(NAMESPACE_PATTERN));
/// Kubernetes object names: a lowercase RFC 1123 subdomain (the API server's own rule).
static SUBDOMAIN: LazyLock<Regex> =
    LazyLock::new(|| regex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"));
/// The CEL rule on `Link.url` in the CRD.
static ABSOLUTE_URL: LazyLock<Regex> = LazyLock::new(|| regex("^[a-zA-Z][a-zA-Z0-9+.-]*:.+$"));

/// Longest Backstage name (and so the longest Component name).
const MAX_NAME: usize = 63;
/// Longest Kubernetes object name.
const MAX_SUBDOMAIN: usize = 253;

/// The CEL rules of the Component CRD that this file checks by hand, by their rule
/// text; see `every_cel_rule_of_the_crd_is_mirrored`.
#[cfg(test)]
const MIRRORED_CEL_RULES: [&str; 2] = [
    "self.metadata.name.size() <= 63 && self.metadata.name.matches('^[a-zA-Z0-9]+([-_.][a-zA-Z0-9]+)*$')",
    "self.matches('^[a-zA-Z][a-zA-Z0-9+.-]*:.+$')",
];

/// What is wrong with `name` as a Component's `metadata.name`, if anything. A name must
/// satisfy both Backstage (the CRD's rule) and Kubernetes; names Backstage accepts but
/// Kubernetes refuses (capitals, `_`) get a suggestion, since they are common in
/// existing catalogs.
pub fn name_problem(name: &str) -> Option<String> {
    let backstage_ok = BACKSTAGE_NAME.is_match(name) && name.len() <= MAX_NAME;
    let kubernetes_ok = SUBDOMAIN.is_match(name) && name.len() <= MAX_SUBDOMAIN;
    if backstage_ok && kubernetes_ok {
        return None;
    }
    let suggestion = suggest(name, |s| name_problem(s).is_none());
    if backstage_ok {
        Some(format!(
            "metadata.name {name:?} is valid in Backstage, but Kubernetes refuses it: \
             object names are lowercase letters, digits, '-' and '.'{}",
            suggestion
                .map(|s| format!("; rename it to {s:?} (and update references to it)"))
                .unwrap_or_default()
        ))
    } else {
        Some(format!(
            "metadata.name {name:?} is not a valid Component name: 1-63 lowercase letters \
             and digits in runs separated by single '-' or '.'{}",
            suggestion
                .map(|s| format!("; for example {s:?}"))
                .unwrap_or_default()
        ))
    }
}

/// What is wrong with `namespace` as a Kubernetes namespace, if anything.
pub fn namespace_problem(namespace: &str) -> Option<String> {
    if NAMESPACE.is_match(namespace) && namespace.len() <= MAX_NAME {
        return None;
    }
    let suggestion = suggest(namespace, |s| namespace_problem(s).is_none());
    Some(format!(
        "namespace {namespace:?} is not a Kubernetes namespace name: 1-63 lowercase letters, \
         digits and '-', starting and ending with a letter or digit{}",
        suggestion
            .map(|s| format!("; for example {s:?}"))
            .unwrap_or_default()
    ))
}

/// What is wrong with a link's `url`, if anything (the CRD's CEL rule on it).
pub fn url_problem(url: &str) -> Option<String> {
    (!ABSOLUTE_URL.is_match(url))
        .then(|| format!("{url:?} is not an absolute URL such as https://runbooks/payments"))
}

/// The closest valid spelling of `value` (lowercase, `_` and spaces as `-`), if that
/// one is valid.
fn suggest(value: &str, valid: impl Fn(&str) -> bool) -> Option<String> {
    let candidate: String = value
        .trim()
        .chars()
        .map(|c| match c {
            '_' | ' ' => '-',
            c => c.to_ascii_lowercase(),
        })
        .collect();
    (candidate != value && valid(&candidate)).then_some(candidate)
}

/// A rule of the CRD's schema that a value breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Where, as a path in the pave object's `spec` (`spec.tags[1]`).
    pub path: FieldPath,
    pub message: String,
}

/// Checks a pave `spec`, as JSON, against the schema of `spec` in the Component CRD.
pub struct SpecSchema {
    schema: Value,
    patterns: HashMap<String, Regex>,
}

impl SpecSchema {
    /// The schema of `spec` in the Component CRD that pave-api generates.
    pub fn component() -> Self {
        Self::new(spec_schema())
    }

    fn new(schema: Value) -> Self {
        let mut patterns = HashMap::new();
        collect_patterns(&schema, &mut patterns);
        Self { schema, patterns }
    }

    /// Every rule `spec` breaks; at most one per value, and none under a path for
    /// which `skip` says a problem was already reported.
    pub fn violations(&self, spec: &Value, skip: impl Fn(&FieldPath) -> bool) -> Vec<Violation> {
        let mut found = Vec::new();
        self.walk(
            spec,
            &self.schema,
            FieldPath::of(&["spec"]),
            &skip,
            &mut found,
        );
        found
    }

    fn walk(
        &self,
        value: &Value,
        schema: &Value,
        path: FieldPath,
        skip: &impl Fn(&FieldPath) -> bool,
        found: &mut Vec<Violation>,
    ) {
        if skip(&path) {
            return;
        }
        if let Some(message) = self.problem(value, schema) {
            found.push(Violation { path, message });
            return;
        }
        match value {
            Value::Object(fields) => {
                for (key, field) in fields {
                    if let Some(inner) = schema.pointer(&format!("/properties/{key}")) {
                        self.walk(field, inner, path.key(key), skip, found);
                    }
                }
            }
            Value::Array(items) => {
                if let Some(inner) = schema.get("items") {
                    for (index, item) in items.iter().enumerate() {
                        self.walk(item, inner, path.index(index), skip, found);
                    }
                }
            }
            _ => {}
        }
    }

    /// The first rule of `schema` (this level only) that `value` breaks.
    fn problem(&self, value: &Value, schema: &Value) -> Option<String> {
        let limit = |key: &str| schema.get(key).and_then(Value::as_u64);
        match value {
            Value::String(text) => {
                // The API server counts characters, not bytes.
                let length = text.chars().count() as u64;
                if let Some(min) = limit("minLength")
                    && length < min
                {
                    return Some(if text.is_empty() {
                        "must not be empty".to_owned()
                    } else {
                        format!("{text:?} is too short: at least {min} characters")
                    });
                }
                if let Some(max) = limit("maxLength")
                    && length > max
                {
                    return Some(format!(
                        "is {length} characters long; the most pave accepts is {max}"
                    ));
                }
                let pattern = schema.get("pattern").and_then(Value::as_str)?;
                (!self.patterns[pattern].is_match(text)).then(|| pattern_problem(pattern, text))
            }
            Value::Array(items) => {
                let count = items.len() as u64;
                if let Some(max) = limit("maxItems")
                    && count > max
                {
                    return Some(format!(
                        "has {count} entries; the most pave accepts is {max}"
                    ));
                }
                None
            }
            _ => None,
        }
    }
}

/// What breaking `pattern` means, in the words of the grammar it belongs to.
fn pattern_problem(pattern: &str, value: &str) -> String {
    if pattern == TAG_PATTERN {
        let suggestion = suggest(value, |s| regex(TAG_PATTERN).is_match(s))
            .map(|s| format!("; for example {s:?}"))
            .unwrap_or_default();
        format!(
            "{value:?} is not a valid tag: lowercase letters, digits, ':', '+' and '#', \
             in runs separated by single '-'{suggestion}"
        )
    } else if pattern == ENTITY_REF_PATTERN || pattern == OPTIONAL_ENTITY_REF_PATTERN {
        format!(
            "{value:?} is not an entity reference: expected [kind:][namespace/]name, \
             such as payments-team or component:default/user-service"
        )
    } else {
        format!("{value:?} does not match {pattern}")
    }
}

fn collect_patterns(schema: &Value, patterns: &mut HashMap<String, Regex>) {
    match schema {
        Value::Object(fields) => {
            if let Some(pattern) = fields.get("pattern").and_then(Value::as_str) {
                patterns
                    .entry(pattern.to_owned())
                    .or_insert_with(|| regex(pattern));
            }
            fields
                .values()
                .for_each(|inner| collect_patterns(inner, patterns));
        }
        Value::Array(items) => items
            .iter()
            .for_each(|inner| collect_patterns(inner, patterns)),
        _ => {}
    }
}

/// The Component CRD as plain JSON, so this crate needs no k8s-openapi types.
fn component_crd() -> Value {
    let crd = pave_api::crds()
        .into_iter()
        .find(|crd| crd.spec.names.kind == "Component")
        .expect("pave-api defines the Component CRD");
    serde_json::to_value(crd).expect("a CRD always serialises to JSON")
}

fn spec_schema() -> Value {
    component_crd()
        .pointer("/spec/versions/0/schema/openAPIV3Schema/properties/spec")
        .cloned()
        .expect("the Component CRD has a schema for spec")
}

/// The Backstage path of a field of the pave `spec`: `title`, `description`, `tags`
/// and `links` live under `metadata` in catalog-info.yaml.
pub fn backstage_path(pave: &FieldPath) -> FieldPath {
    let mut segments = pave.0.clone();
    if let [Segment::Key(spec), Segment::Key(field), ..] = segments.as_slice()
        && spec == "spec"
        && ["title", "description", "tags", "links"].contains(&field.as_str())
    {
        segments[0] = Segment::Key("metadata".to_owned());
    }
    FieldPath(segments)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_must_satisfy_backstage_and_kubernetes() {
        assert_eq!(name_problem("payment-service"), None);
        assert_eq!(name_problem("payments.v2"), None);

        let capitals = name_problem("PaymentService").unwrap();
        assert!(capitals.contains("valid in Backstage"), "{capitals}");
        assert!(
            capitals.contains("rename it to \"paymentservice\""),
            "{capitals}"
        );

        let underscore = name_problem("payment_service").unwrap();
        assert!(underscore.contains("Kubernetes refuses it"), "{underscore}");
        assert!(underscore.contains("\"payment-service\""), "{underscore}");

        let long = "a".repeat(64);
        assert!(name_problem(&long).unwrap().contains("1-63"));
        assert!(
            name_problem("a--b")
                .unwrap()
                .contains("not a valid Component name")
        );
        assert!(name_problem("-a").is_some());
        assert!(name_problem("").is_some());
    }

    #[test]
    fn namespaces_are_kubernetes_labels() {
        assert_eq!(namespace_problem("team-payments"), None);
        let dotted = namespace_problem("team.payments").unwrap();
        assert!(
            dotted.contains("not a Kubernetes namespace name"),
            "{dotted}"
        );
        let capital = namespace_problem("Team_Payments").unwrap();
        assert!(
            capital.contains("for example \"team-payments\""),
            "{capital}"
        );
    }

    #[test]
    fn link_urls_must_be_absolute() {
        assert_eq!(url_problem("https://runbooks/payments"), None);
        assert!(url_problem("/runbooks").unwrap().contains("absolute URL"));
    }

    #[test]
    fn the_spec_schema_finds_bad_tags_refs_and_lengths() {
        let schema = SpecSchema::component();
        let spec = json!({
            "type": "x".repeat(64),
            "lifecycle": "",
            "owner": "payments team",
            "system": "",
            "tags": ["java", "Payments"],
            "dependsOn": ["component:ok", "component:not ok"],
        });
        let found: Vec<(String, String)> = schema
            .violations(&spec, |_| false)
            .into_iter()
            .map(|v| (v.path.to_string(), v.message))
            .collect();
        let message = |path: &str| {
            found
                .iter()
                .find(|(p, _)| p == path)
                .map(|(_, m)| m.as_str())
                .unwrap_or_else(|| panic!("no violation at {path}: {found:?}"))
        };
        assert!(message("spec.type").contains("64 characters long; the most pave accepts is 63"));
        assert_eq!(message("spec.lifecycle"), "must not be empty");
        assert!(message("spec.owner").contains("not an entity reference"));
        assert!(message("spec.tags[1]").contains("for example \"payments\""));
        assert!(message("spec.dependsOn[1]").contains("\"component:not ok\""));
        // `system: ""` means "not set" to the CRD.
        assert_eq!(found.len(), 5, "{found:?}");
    }

    #[test]
    fn the_spec_schema_skips_paths_already_reported() {
        let schema = SpecSchema::component();
        let spec = json!({"type": "", "lifecycle": "", "owner": "x"});
        let found = schema.violations(&spec, |path| path.to_string() == "spec.type");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].path.to_string(), "spec.lifecycle");
    }

    #[test]
    fn list_sizes_come_from_the_schema() {
        let schema = SpecSchema::component();
        let tags: Vec<String> = (0..65).map(|i| format!("t{i}")).collect();
        let found = schema.violations(&json!({"tags": tags}), |_| false);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].message.contains("65 entries"));
    }

    #[test]
    fn every_cel_rule_of_the_crd_is_mirrored() {
        fn rules(schema: &Value, found: &mut Vec<String>) {
            match schema {
                Value::Object(fields) => {
                    if let Some(Value::Array(list)) = fields.get("x-kubernetes-validations") {
                        found.extend(
                            list.iter()
                                .filter_map(|rule| rule["rule"].as_str().map(str::to_owned)),
                        );
                    }
                    fields.values().for_each(|inner| rules(inner, found));
                }
                Value::Array(items) => items.iter().for_each(|inner| rules(inner, found)),
                _ => {}
            }
        }
        let mut found = Vec::new();
        rules(&component_crd(), &mut found);
        found.sort();
        let mut mirrored = MIRRORED_CEL_RULES.map(str::to_owned).to_vec();
        mirrored.sort();
        assert_eq!(
            found, mirrored,
            "the Component CRD's CEL rules changed: mirror the new ones in import/checks.rs"
        );
    }

    #[test]
    fn backstage_keeps_title_description_tags_and_links_in_metadata() {
        let tag = FieldPath::of(&["spec", "tags"]).index(0);
        assert_eq!(backstage_path(&tag).to_string(), "metadata.tags[0]");
        let owner = FieldPath::of(&["spec", "owner"]);
        assert_eq!(backstage_path(&owner), owner);
    }
}
