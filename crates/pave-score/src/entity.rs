//! What the engine reads of a Component, and how a condition's `property` names a
//! part of it.
//!
//! Resolution order, first match wins:
//! 1. `$identifier` (name), `$title` (title, else name), `$team` and `$owner` (owner),
//!    `$ownerResolved` (whether the owner is a Group or User the catalog holds: false
//!    while it is missing, and while the org is not imported so nothing checks it),
//!    `$tags`, `$namespace`;
//! 2. any other `$key`: the relation count `key` (`$dependsOn`, `$dependencyOf`,
//!    `$unresolvedRefs`, ...). Backstage's relation names and `unresolvedRefs` count 0
//!    when the operator left them out: having no relations is a count of zero, not an
//!    unknown. Other keys are absent when missing, so a typo does not read as 0;
//! 3. explicit paths `spec.x`, `properties.x`, `annotations.x`, `labels.x`. For
//!    annotations and labels `x` is the whole key (`annotations.pagerduty.com/service-id`).
//!    For spec and properties `x` is first tried as a whole key, then its dots walk into
//!    objects (and, for numeric segments, arrays: `spec.links.0.url`);
//! 4. a bare name: a spec field, then a properties key, then an annotation, then a
//!    label. `null` counts as not there, so the lookup goes on;
//! 5. an annotation alias. Port properties are identifiers like `pagerduty_service_id`
//!    where Backstage has annotations like `pagerduty.com/service-id`. So that the same
//!    scorecard works on both, pave lets the annotation `host.tld/some-key` also answer
//!    to `host_some_key`: the host without its top-level domain, `_`, then the key,
//!    with every `.` and `-` turned into `_` (`github.com/project-slug` →
//!    `github_project_slug`, `backstage.io/techdocs-ref` → `backstage_techdocs_ref`).
//!    If two annotations share an alias, the first in key order answers.
//!
//! A property that resolves to nothing is absent (null).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::value::{List, Val};

/// What the engine reads of one Component. Plain data; the operator and the CLI fill it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Entity {
    /// `$identifier`
    pub name: String,
    /// `$namespace`
    pub namespace: String,
    /// `$title`; the name when `None`.
    pub title: Option<String>,
    /// `$team` and `$owner`
    pub owner: String,
    /// `$ownerResolved`; `None` (null) when nobody looked (no catalog).
    pub owner_resolved: Option<bool>,
    /// `$tags`
    pub tags: Vec<String>,
    /// The Component's spec as JSON, camelCase keys (lifecycle, type, system, dependsOn, ...).
    pub spec: Map<String, Value>,
    /// spec.properties
    pub properties: Map<String, Value>,
    pub annotations: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    /// "dependsOn", "dependencyOf", "unresolvedRefs", ... → `$dependsOn` etc.
    pub relation_counts: BTreeMap<String, i64>,
}

/// Relation counts that are 0 rather than absent when the operator leaves them out.
const ZERO_WHEN_MISSING: [&str; 16] = [
    "ownedBy",
    "ownerOf",
    "dependsOn",
    "dependencyOf",
    "providesApi",
    "apiProvidedBy",
    "consumesApi",
    "apiConsumedBy",
    "partOf",
    "hasPart",
    "childOf",
    "parentOf",
    "memberOf",
    "hasMember",
    "unresolvedRefs",
    "uncheckedRefs",
];

/// A parsed `property`, borrowing from the condition so scoring allocates nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Property<'a> {
    Identifier,
    Title,
    Owner,
    OwnerResolved,
    Tags,
    Namespace,
    Relation(&'a str),
    Spec(&'a str),
    Properties(&'a str),
    Annotation(&'a str),
    Label(&'a str),
    Bare(&'a str),
}

/// Parses a condition's `property`; the error says why the name can never resolve.
pub(crate) fn parse_property<'a>(name: &'a str) -> Result<Property<'a>, String> {
    if name.is_empty() {
        return Err("the property is empty".to_owned());
    }
    if let Some(meta) = name.strip_prefix('$') {
        return match meta {
            "identifier" => Ok(Property::Identifier),
            "title" => Ok(Property::Title),
            "team" | "owner" => Ok(Property::Owner),
            "ownerResolved" => Ok(Property::OwnerResolved),
            "tags" => Ok(Property::Tags),
            "namespace" => Ok(Property::Namespace),
            "" => Err("the property \"$\" names nothing".to_owned()),
            key => Ok(Property::Relation(key)),
        };
    }
    let Some((source, rest)) = name.split_once('.') else {
        return Ok(Property::Bare(name));
    };
    let make: fn(&'a str) -> Property<'a> = match source {
        "spec" => Property::Spec,
        "properties" => Property::Properties,
        "annotations" => Property::Annotation,
        "labels" => Property::Label,
        // A dotted name of no known source is looked up whole, like any bare name.
        _ => return Ok(Property::Bare(name)),
    };
    if rest.is_empty() {
        return Err(format!(
            "the property {name:?} names no key after {source:?}"
        ));
    }
    Ok(make(rest))
}

impl Entity {
    /// Reads a Component object (`metadata`, `spec`) as JSON, the shape pave's
    /// Component has on the wire. Relation counts are what the object itself says:
    /// `dependsOn` counts `spec.dependsOn`; the operator, which has the catalog, sets
    /// the rest.
    pub fn from_object(object: &Value) -> Entity {
        let text = |v: &Value| v.as_str().map(str::to_owned);
        let strings = |v: &Value| -> BTreeMap<String, String> {
            v.as_object()
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| Some((k.clone(), text(v)?)))
                        .collect()
                })
                .unwrap_or_default()
        };
        let metadata = &object["metadata"];
        let spec = object["spec"].as_object().cloned().unwrap_or_default();
        let depends_on = spec
            .get("dependsOn")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        Entity {
            name: text(&metadata["name"]).unwrap_or_default(),
            namespace: text(&metadata["namespace"]).unwrap_or_default(),
            title: spec.get("title").and_then(text),
            owner: spec.get("owner").and_then(text).unwrap_or_default(),
            owner_resolved: None,
            tags: spec
                .get("tags")
                .and_then(Value::as_array)
                .map(|tags| tags.iter().filter_map(text).collect())
                .unwrap_or_default(),
            properties: spec
                .get("properties")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
            annotations: strings(&metadata["annotations"]),
            labels: strings(&metadata["labels"]),
            relation_counts: BTreeMap::from([("dependsOn".to_owned(), depends_on as i64)]),
            spec,
        }
    }

    /// Takes in what the catalog says of this entity, in place of what the object
    /// alone said: each relation by its type, how many references are unresolved and
    /// how many are not checked yet, and whether the owner resolved.
    pub fn set_catalog<'a>(
        &mut self,
        relations: impl IntoIterator<Item = &'a str>,
        unresolved: usize,
        unchecked: usize,
        owner_resolved: bool,
    ) {
        self.relation_counts.clear();
        for relation in relations {
            *self.relation_counts.entry(relation.to_owned()).or_insert(0) += 1;
        }
        self.relation_counts
            .insert("unresolvedRefs".to_owned(), unresolved as i64);
        self.relation_counts
            .insert("uncheckedRefs".to_owned(), unchecked as i64);
        self.owner_resolved = Some(owner_resolved);
    }

    /// The value `property` names on this entity.
    pub(crate) fn resolve<'a>(&'a self, property: Property<'_>) -> Val<'a> {
        match property {
            Property::Identifier => Val::Str(&self.name),
            Property::Title => Val::Str(self.title.as_deref().unwrap_or(&self.name)),
            Property::Owner => Val::Str(&self.owner),
            Property::OwnerResolved => self.owner_resolved.map_or(Val::Null, Val::Bool),
            Property::Tags => Val::List(List::Strings(&self.tags)),
            Property::Namespace => Val::Str(&self.namespace),
            Property::Relation(key) => match self.relation_counts.get(key) {
                Some(&count) => Val::Num(count as f64),
                None if ZERO_WHEN_MISSING.contains(&key) => Val::Num(0.0),
                None => Val::Null,
            },
            Property::Spec(path) => walk(&self.spec, path),
            Property::Properties(path) => walk(&self.properties, path),
            Property::Annotation(key) => string_or_null(self.annotations.get(key)),
            Property::Label(key) => string_or_null(self.labels.get(key)),
            Property::Bare(name) => self.resolve_bare(name),
        }
    }

    fn resolve_bare<'a>(&'a self, name: &str) -> Val<'a> {
        let present = |value: Option<&'a Value>| value.filter(|v| !v.is_null()).map(Val::of);
        if let Some(value) = present(self.spec.get(name)) {
            return value;
        }
        if let Some(value) = present(self.properties.get(name)) {
            return value;
        }
        if let Some(value) = self.annotations.get(name) {
            return Val::Str(value);
        }
        if let Some(value) = self.labels.get(name) {
            return Val::Str(value);
        }
        self.annotations
            .iter()
            .find(|(key, _)| annotation_alias_is(key, name))
            .map_or(Val::Null, |(_, value)| Val::Str(value))
    }
}

fn string_or_null(value: Option<&String>) -> Val<'_> {
    value.map_or(Val::Null, |s| Val::Str(s))
}

/// `spec.x` / `properties.x`: the whole key first, then a walk along the dots.
fn walk<'a>(map: &'a Map<String, Value>, path: &str) -> Val<'a> {
    if let Some(value) = map.get(path) {
        return Val::of(value);
    }
    let mut segments = path.split('.');
    let Some(mut current) = segments.next().and_then(|first| map.get(first)) else {
        return Val::Null;
    };
    for segment in segments {
        let next = match current {
            Value::Object(object) => object.get(segment),
            Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        };
        match next {
            Some(value) => current = value,
            None => return Val::Null,
        }
    }
    Val::of(current)
}

/// Whether the annotation `key` (`host.tld/some-key`) has the alias `name`
/// (`host_some_key`), compared byte by byte so no alias string is built.
pub(crate) fn annotation_alias_is(key: &str, name: &str) -> bool {
    let Some((host, rest)) = key.split_once('/') else {
        return false;
    };
    let host = host.rfind('.').map_or(host, |dot| &host[..dot]);
    if host.is_empty() || rest.is_empty() {
        return false;
    }
    // `.` and `-` become `_` one byte for one byte, so lengths tell most misses.
    if name.len() != host.len() + 1 + rest.len() {
        return false;
    }
    let normalize = |b: u8| if b == b'.' || b == b'-' { b'_' } else { b };
    host.bytes()
        .map(normalize)
        .chain(std::iter::once(b'_'))
        .chain(rest.bytes().map(normalize))
        .eq(name.bytes())
}

/// The alias an annotation answers to, if it has one (for documentation and the CLI).
pub fn annotation_alias(key: &str) -> Option<String> {
    let (host, rest) = key.split_once('/')?;
    let host = host.rfind('.').map_or(host, |dot| &host[..dot]);
    if host.is_empty() || rest.is_empty() {
        return None;
    }
    let alias = format!("{host}_{rest}").replace(['.', '-'], "_");
    Some(alias)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_drops_the_top_level_domain_and_underscores_the_rest() {
        assert_eq!(
            annotation_alias("pagerduty.com/service-id").as_deref(),
            Some("pagerduty_service_id")
        );
        assert_eq!(
            annotation_alias("github.com/project-slug").as_deref(),
            Some("github_project_slug")
        );
        assert_eq!(
            annotation_alias("backstage.io/techdocs-ref").as_deref(),
            Some("backstage_techdocs_ref")
        );
        assert_eq!(
            annotation_alias("app.kubernetes.io/part-of").as_deref(),
            Some("app_kubernetes_part_of")
        );
        assert_eq!(annotation_alias("no-slash"), None);
        assert_eq!(annotation_alias(".com/x"), None);
        for key in [
            "pagerduty.com/service-id",
            "github.com/project-slug",
            "app.kubernetes.io/part-of",
            "my-org.io/on.call",
        ] {
            let alias = annotation_alias(key).unwrap();
            assert!(annotation_alias_is(key, &alias), "{key} → {alias}");
            assert!(!annotation_alias_is(key, &format!("{alias}x")));
        }
        assert!(!annotation_alias_is(
            "pagerduty.com/service-id",
            "pagerduty_service-id"
        ));
    }

    #[test]
    fn property_names_parse_to_where_they_look() {
        assert_eq!(parse_property("$team"), Ok(Property::Owner));
        assert_eq!(parse_property("$owner"), Ok(Property::Owner));
        assert_eq!(
            parse_property("$dependsOn"),
            Ok(Property::Relation("dependsOn"))
        );
        assert_eq!(
            parse_property("annotations.pagerduty.com/service-id"),
            Ok(Property::Annotation("pagerduty.com/service-id"))
        );
        assert_eq!(
            parse_property("spec.links.0.url"),
            Ok(Property::Spec("links.0.url"))
        );
        assert_eq!(parse_property("lifecycle"), Ok(Property::Bare("lifecycle")));
        assert!(parse_property("").is_err());
        assert!(parse_property("$").is_err());
        assert!(parse_property("labels.").is_err());
    }
}
