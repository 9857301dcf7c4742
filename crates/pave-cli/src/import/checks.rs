//! The rules an imported object must pass so the API server accepts it, checked
//! before anything is printed.
//!
//! Most rules are not written here but read from the CRD that `pave-api` generates
//! for the object's kind (which spec fields exist and are required, their types,
//! patterns, lengths and list sizes), so the importer cannot drift from what the API
//! server enforces. What the schema cannot say is here by hand: the Kubernetes rules
//! for names, labels and annotations (enforced by the API server itself, not by the
//! schema), the CRDs' CEL rules, which would need a CEL interpreter (a test fails when
//! a catalog CRD gains a CEL rule this file does not mirror), and the shape of an
//! API's definition, which the CRD leaves open.

use std::collections::HashMap;
use std::sync::LazyLock;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use pave_api::api_entity::DEFINITION_PLACEHOLDERS;
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
/// A label value, or the name part of a label or annotation key (Kubernetes' rule;
/// Backstage's is the same).
static QUALIFIED_NAME: LazyLock<Regex> =
    LazyLock::new(|| regex("^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$"));
/// The CEL rule on `Link.url` in the CRD.
static ABSOLUTE_URL: LazyLock<Regex> = LazyLock::new(|| regex("^[a-zA-Z][a-zA-Z0-9+.-]*:.+$"));

/// Longest Backstage name (and so the longest name of a catalog object).
const MAX_NAME: usize = 63;
/// Longest Kubernetes object name.
const MAX_SUBDOMAIN: usize = 253;
/// Most bytes all of an object's annotations may take, keys and values together.
const MAX_ANNOTATIONS: usize = 256 * 1024;
/// Longest inline API definition, in characters (the API CRD's CEL rule).
const MAX_DEFINITION: usize = 1_048_576;
/// Longest path or URL a definition placeholder may hold (the same rule).
const MAX_DEFINITION_REFERENCE: usize = 2048;

/// The CEL rules of the catalog CRDs that this file checks by hand, by their rule
/// text; see `every_cel_rule_of_the_catalog_crds_is_mirrored`.
#[cfg(test)]
const MIRRORED_CEL_RULES: [&str; 2] = [
    // `name_problem`
    "self.metadata.name.size() <= 63 && self.metadata.name.matches('^[a-zA-Z0-9]+([-_.][a-zA-Z0-9]+)*$')",
    // `url_problem`
    "self.matches('^[a-zA-Z][a-zA-Z0-9+.-]*:.+$')",
];

/// What is wrong with `name` as the `metadata.name` of a `kind`, if anything. A name
/// must satisfy both Backstage (the CRD's rule) and Kubernetes; names Backstage
/// accepts but Kubernetes refuses (capitals, `_`) get a suggestion, since they are
/// common in existing catalogs.
pub fn name_problem(name: &str, kind: &str) -> Option<String> {
    let backstage_ok = BACKSTAGE_NAME.is_match(name) && name.len() <= MAX_NAME;
    let kubernetes_ok = SUBDOMAIN.is_match(name) && name.len() <= MAX_SUBDOMAIN;
    if backstage_ok && kubernetes_ok {
        return None;
    }
    let suggestion = suggest(name, |s| name_problem(s, kind).is_none());
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
            "metadata.name {name:?} is not a valid {kind} name: 1-63 lowercase letters \
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

/// What is wrong with `key` as a label or annotation key, if anything: an optional
/// DNS subdomain and `/`, then a name of 1-63 characters. The API server refuses the
/// whole object for one bad key, so the import says which.
pub fn key_problem(key: &str) -> Option<String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    let prefix_ok = prefix.is_none_or(|p| SUBDOMAIN.is_match(p) && p.len() <= MAX_SUBDOMAIN);
    let name_ok = QUALIFIED_NAME.is_match(name) && name.len() <= MAX_NAME;
    (!(prefix_ok && name_ok)).then(|| {
        format!(
            "{key:?} is not a Kubernetes key: an optional DNS prefix and '/' \
             (example.com/), then 1-63 letters, digits, '-', '_' and '.', starting and \
             ending with a letter or digit"
        )
    })
}

/// What is wrong with `value` as a label value, if anything.
pub fn label_value_problem(value: &str) -> Option<String> {
    let ok = value.is_empty() || (QUALIFIED_NAME.is_match(value) && value.len() <= MAX_NAME);
    (!ok).then(|| {
        format!(
            "{value:?} is not a Kubernetes label value: at most 63 letters, digits, '-', \
             '_' and '.', starting and ending with a letter or digit; keep free text in an \
             annotation"
        )
    })
}

/// What is wrong with the size of all of an object's annotations, if anything.
pub fn annotations_problem<'a>(
    entries: impl Iterator<Item = (&'a String, &'a String)>,
) -> Option<String> {
    let size: usize = entries.map(|(k, v)| k.len() + v.len()).sum();
    (size > MAX_ANNOTATIONS)
        .then(|| format!("take {size} bytes; Kubernetes accepts at most {MAX_ANNOTATIONS} in all"))
}

/// What is wrong with a link's `url`, if anything (the CRD's CEL rule on it).
pub fn url_problem(url: &str) -> Option<String> {
    (!ABSOLUTE_URL.is_match(url))
        .then(|| format!("{url:?} is not an absolute URL such as https://runbooks/payments"))
}

/// What is wrong with an API's `definition`, as JSON, if anything: the text itself,
/// or exactly one placeholder naming a path or URL, as pave-api describes the field.
/// The CRD cannot check this (the field has no type, and the API server refuses CEL
/// on such a field), so the import is where the shape is checked; the limits are
/// the ones the CRD's rule had.
pub fn definition_problem(definition: &Value) -> Option<String> {
    let placeholders = DEFINITION_PLACEHOLDERS.join(", ");
    match definition {
        Value::String(text) => {
            let length = text.chars().count();
            (length > MAX_DEFINITION).then(|| {
                format!(
                    "is {length} characters long; the most pave accepts inline is \
                     {MAX_DEFINITION}: keep it in a file and write `$text: ./FILE`"
                )
            })
        }
        Value::Object(map) => {
            let mut entries = map.iter();
            let (Some((key, value)), None) = (entries.next(), entries.next()) else {
                return Some(format!(
                    "a definition given as a mapping holds exactly one of {placeholders}; \
                     found {} keys",
                    map.len()
                ));
            };
            if !DEFINITION_PLACEHOLDERS.contains(&key.as_str()) {
                return Some(format!(
                    "{key:?} is not a placeholder Backstage resolves: write the \
                     definition's text, or one of {placeholders}"
                ));
            }
            match value {
                Value::String(target) if target.chars().count() > MAX_DEFINITION_REFERENCE => {
                    Some(format!(
                        "{key} is {} characters long; the most pave accepts is \
                         {MAX_DEFINITION_REFERENCE}",
                        target.chars().count()
                    ))
                }
                Value::String(_) => None,
                _ => Some(format!("{key}: expected a path or URL as a string")),
            }
        }
        _ => Some(format!(
            "expected the definition's text, or one of {placeholders} with a path or URL"
        )),
    }
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

/// The schema of `spec` in the CRD of one kind: which fields there are and which are
/// required, and the checks of a pave `spec`, as JSON, against it.
pub struct SpecSchema {
    kind: String,
    schema: Value,
    required: Vec<String>,
    patterns: HashMap<String, Regex>,
}

impl SpecSchema {
    /// The schema of `spec` in `crd`, as pave-api generates it (`pave_api::Group::crd()`).
    pub fn of(crd: &CustomResourceDefinition) -> Self {
        let kind = crd.spec.names.kind.clone();
        let schema = serde_json::to_value(crd)
            .expect("a CRD always serialises to JSON")
            .pointer("/spec/versions/0/schema/openAPIV3Schema/properties/spec")
            .cloned()
            .unwrap_or_else(|| panic!("the {kind} CRD has a schema for spec"));
        let required = schema["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|name| name.as_str().map(str::to_owned))
            .collect();
        let mut patterns = HashMap::new();
        collect_patterns(&schema, &mut patterns);
        Self {
            kind,
            schema,
            required,
            patterns,
        }
    }

    /// The kind, as the CRD names it (`Component`, `API`).
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The spec fields the CRD requires.
    pub fn required(&self) -> &[String] {
        &self.required
    }

    /// The schema of the spec field `name`, if the CRD has one.
    pub fn field(&self, name: &str) -> Option<&Value> {
        self.schema.get("properties")?.get(name)
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

/// Whether the strings `schema` describes are entity references.
pub fn is_reference(schema: &Value) -> bool {
    schema
        .get("pattern")
        .and_then(Value::as_str)
        .is_some_and(|p| p == ENTITY_REF_PATTERN || p == OPTIONAL_ENTITY_REF_PATTERN)
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
    use kube::CustomResourceExt;
    use pave_api::{ApiEntity, Component, Domain, Group, Resource, System, User};
    use serde_json::json;

    #[test]
    fn names_must_satisfy_backstage_and_kubernetes() {
        assert_eq!(name_problem("payment-service", "Component"), None);
        assert_eq!(name_problem("payments.v2", "Component"), None);

        let capitals = name_problem("PaymentService", "Component").unwrap();
        assert!(capitals.contains("valid in Backstage"), "{capitals}");
        assert!(
            capitals.contains("rename it to \"paymentservice\""),
            "{capitals}"
        );

        let underscore = name_problem("payment_service", "Component").unwrap();
        assert!(underscore.contains("Kubernetes refuses it"), "{underscore}");
        assert!(underscore.contains("\"payment-service\""), "{underscore}");

        let long = "a".repeat(64);
        assert!(name_problem(&long, "Component").unwrap().contains("1-63"));
        assert!(
            name_problem("a--b", "Component")
                .unwrap()
                .contains("not a valid Component name")
        );
        assert!(name_problem("-a", "Component").is_some());
        assert!(name_problem("", "Component").is_some());
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
    fn label_and_annotation_keys_and_values_follow_kubernetes() {
        assert_eq!(key_problem("tier"), None);
        assert_eq!(key_problem("backstage.io/techdocs-ref"), None);
        assert_eq!(key_problem("goVersion"), None);
        assert!(key_problem("Example.com/x").is_some());
        assert!(key_problem("a/b/c").is_some());
        assert!(key_problem("-tier").is_some());
        assert!(key_problem(&"a".repeat(64)).is_some());
        assert_eq!(label_value_problem(""), None);
        assert_eq!(label_value_problem("go1.15.3"), None);
        assert!(
            label_value_problem("two words")
                .unwrap()
                .contains("annotation")
        );
        let big = ("k".to_owned(), "v".repeat(MAX_ANNOTATIONS));
        assert!(annotations_problem([(&big.0, &big.1)].into_iter()).is_some());
    }

    #[test]
    fn link_urls_must_be_absolute() {
        assert_eq!(url_problem("https://runbooks/payments"), None);
        assert!(url_problem("/runbooks").unwrap().contains("absolute URL"));
    }

    #[test]
    fn the_spec_schema_finds_bad_tags_refs_and_lengths() {
        let schema = SpecSchema::of(&Component::crd());
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
        let schema = SpecSchema::of(&Component::crd());
        let spec = json!({"type": "", "lifecycle": "", "owner": "x"});
        let found = schema.violations(&spec, |path| path.to_string() == "spec.type");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].path.to_string(), "spec.lifecycle");
    }

    #[test]
    fn list_sizes_come_from_the_schema() {
        let schema = SpecSchema::of(&Component::crd());
        let tags: Vec<String> = (0..65).map(|i| format!("t{i}")).collect();
        let found = schema.violations(&json!({"tags": tags}), |_| false);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].message.contains("65 entries"));
    }

    #[test]
    fn every_cel_rule_of_the_catalog_crds_is_mirrored() {
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
        for crd in [
            Component::crd(),
            Group::crd(),
            User::crd(),
            System::crd(),
            Domain::crd(),
            ApiEntity::crd(),
            Resource::crd(),
        ] {
            rules(&serde_json::to_value(crd).unwrap(), &mut found);
        }
        found.sort();
        found.dedup();
        let mut mirrored = MIRRORED_CEL_RULES.map(str::to_owned).to_vec();
        mirrored.sort();
        assert_eq!(
            found, mirrored,
            "a catalog CRD's CEL rules changed: mirror the new ones in import/checks.rs"
        );
    }

    #[test]
    fn definitions_are_text_or_one_placeholder() {
        assert_eq!(definition_problem(&json!("openapi: 3.0.0")), None);
        assert_eq!(definition_problem(&json!({"$text": "./api.yaml"})), None);
        assert_eq!(
            definition_problem(&json!({"$url": "https://x/api.yaml"})),
            None
        );
        let two = definition_problem(&json!({"$text": "a", "$url": "b"})).unwrap();
        assert!(
            two.contains("exactly one of $text, $json, $yaml, $url"),
            "{two}"
        );
        let other = definition_problem(&json!({"$openapi": "./a.yaml"})).unwrap();
        assert!(other.contains("not a placeholder"), "{other}");
        let not_text = definition_problem(&json!({"$text": 3})).unwrap();
        assert!(not_text.contains("as a string"), "{not_text}");
        let long = definition_problem(&json!("x".repeat(MAX_DEFINITION + 1))).unwrap();
        assert!(long.contains("$text: ./FILE"), "{long}");
        assert!(definition_problem(&json!(["a"])).is_some());
    }

    #[test]
    fn the_schema_of_each_kind_says_what_it_requires() {
        assert_eq!(
            SpecSchema::of(&Component::crd()).required(),
            ["lifecycle", "owner", "type"]
        );
        assert_eq!(SpecSchema::of(&Group::crd()).required(), ["type"]);
        assert!(SpecSchema::of(&User::crd()).required().is_empty());
        let api = SpecSchema::of(&ApiEntity::crd());
        assert_eq!(api.kind(), "API");
        assert!(api.required().contains(&"definition".to_owned()));
        // `about` is flattened into the spec of every new kind.
        for field in ["title", "description", "tags", "links"] {
            assert!(
                SpecSchema::of(&System::crd()).field(field).is_some(),
                "{field}"
            );
        }
        assert!(is_reference(
            SpecSchema::of(&Group::crd()).field("parent").unwrap()
        ));
        assert!(!is_reference(
            SpecSchema::of(&Group::crd()).field("type").unwrap()
        ));
    }

    #[test]
    fn backstage_keeps_title_description_tags_and_links_in_metadata() {
        let tag = FieldPath::of(&["spec", "tags"]).index(0);
        assert_eq!(backstage_path(&tag).to_string(), "metadata.tags[0]");
        let owner = FieldPath::of(&["spec", "owner"]);
        assert_eq!(backstage_path(&owner), owner);
    }
}
