//! `Component`: a Backstage catalog Component as a Kubernetes object, with the
//! catalog's answers (relations, unresolved references, impact, scores) in status.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::grammar::{ENTITY_REF_PATTERN, OPTIONAL_ENTITY_REF_PATTERN, TAG_PATTERN};

/// A piece of software in the catalog: who owns it, what it depends on, which APIs it
/// provides and consumes. References are resolved by the catalog controller, and every
/// one that does not resolve is reported instead of dangling silently.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "platform.pave.dev",
    version = "v1alpha1",
    kind = "Component",
    namespaced,
    status = "ComponentStatus",
    shortname = "comp",
    category = "pave",
    category = "catalog",
    derive = "PartialEq",
    doc = "A catalog Component (Backstage's catalog-info.yaml as a Kubernetes object).",
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.type"),
    printcolumn(name = "Lifecycle", type_ = "string", json_path = ".spec.lifecycle"),
    printcolumn(name = "Owner", type_ = "string", json_path = ".spec.owner"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Level", type_ = "string", json_path = ".status.scores[0].level"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp", priority = 1),
    // Backstage names are 1–63 characters of [a-zA-Z0-9] separated by [-_.]; Kubernetes
    // already limits the characters, this adds the length and the separator rule.
    validation = Rule::new("self.metadata.name.size() <= 63 && self.metadata.name.matches('^[a-zA-Z0-9]+([-_.][a-zA-Z0-9]+)*$')")
        .message("metadata.name: a Component name is 1-63 characters of [a-z0-9] separated by single '-', '_' or '.' (Backstage's rule)")
)]
#[serde(rename_all = "camelCase")]
pub struct ComponentSpec {
    /// Kind of component: `service`, `website`, `library`, … (free-form, as in Backstage).
    #[serde(rename = "type")]
    #[schemars(length(min = 1, max = 63))]
    pub type_: String,

    /// Lifecycle stage; well-known values are `experimental`, `production` and
    /// `deprecated`.
    #[schemars(length(min = 1, max = 63))]
    pub lifecycle: String,

    /// Owning group or user, as an entity reference (`payments-team`, `group:ns/team`,
    /// `user:jane`). The default kind is `group`.
    #[schemars(regex(pattern = ENTITY_REF_PATTERN), length(max = 253))]
    pub owner: String,

    /// The system this component belongs to (default kind `system`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = OPTIONAL_ENTITY_REF_PATTERN), length(max = 253))]
    pub system: Option<String>,

    /// A parent component (default kind `component`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = OPTIONAL_ENTITY_REF_PATTERN), length(max = 253))]
    pub subcomponent_of: Option<String>,

    /// Display title; defaults to the name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub title: Option<String>,

    /// What the component does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub description: Option<String>,

    /// Tags: `[a-z0-9:+#]` in runs separated by `-`, at most 63 characters each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(regex(pattern = TAG_PATTERN), length(min = 1, max = 63)))]
    pub tags: Vec<String>,

    /// Links shown with the component (runbooks, dashboards, docs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub links: Vec<Link>,

    /// Components and resources this one depends on (default kind `component`;
    /// `resource:` refers to a DeveloperEnvironment).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(regex(pattern = ENTITY_REF_PATTERN), length(max = 253)))]
    pub depends_on: Vec<String>,

    /// Components and resources that depend on this one (default kind `component`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(regex(pattern = ENTITY_REF_PATTERN), length(max = 253)))]
    pub dependency_of: Vec<String>,

    /// APIs this component provides (default kind `api`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(regex(pattern = ENTITY_REF_PATTERN), length(max = 253)))]
    pub provides_apis: Vec<String>,

    /// APIs this component consumes (default kind `api`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(regex(pattern = ENTITY_REF_PATTERN), length(max = 253)))]
    pub consumes_apis: Vec<String>,

    /// Free-form values for scorecards (`runbook_url`, `coverage`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object")]
    pub properties: Option<serde_json::Map<String, serde_json::Value>>,
}

impl ComponentSpec {
    /// A Component with only the required fields set.
    pub fn new(type_: &str, lifecycle: &str, owner: &str) -> ComponentSpec {
        ComponentSpec {
            type_: type_.to_owned(),
            lifecycle: lifecycle.to_owned(),
            owner: owner.to_owned(),
            system: None,
            subcomponent_of: None,
            title: None,
            description: None,
            tags: vec![],
            links: vec![],
            depends_on: vec![],
            dependency_of: vec![],
            provides_apis: vec![],
            consumes_apis: vec![],
            properties: None,
        }
    }
}

/// An object whose keys and values are the user's own.
fn free_form_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "description": "Free-form values for scorecards (`runbook_url`, `coverage`, …).",
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// A link shown with a component.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Link {
    /// Where the link points.
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new("self.matches('^[a-zA-Z][a-zA-Z0-9+.-]*:.+$')").message("must be an absolute URL such as https://runbooks/payments"))]
    pub url: String,
    /// Text shown for the link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub title: Option<String>,
    /// An icon name, as in Backstage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub icon: Option<String>,
    /// A machine-readable link type, as in Backstage.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub type_: Option<String>,
}

/// What the catalog and the scorecards found.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComponentStatus {
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// `Ready` is `False` with reason `UnresolvedReference` or `DependencyCycle` when
    /// the catalog finds a problem.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::conditions::schema")]
    pub conditions: Vec<Condition>,

    /// Relations to other entities, in both directions, as Backstage names them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relations: Vec<Relation>,

    /// References in the spec that name nothing in the catalog.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unresolved_refs: Vec<String>,

    /// References into a namespace that does not check their kind yet: the owner
    /// before the namespace has a Group (its org), a system or API before it has one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unchecked_refs: Vec<String>,

    /// How many components depend on this one, directly or transitively.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impact: Option<i64>,

    /// One entry per scorecard that evaluates this component.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scores: Vec<Score>,
}

/// A relation from this entity to another.
#[derive(
    Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, schemars::JsonSchema,
)]
pub struct Relation {
    /// `ownedBy`, `ownerOf`, `dependsOn`, `dependencyOf`, `providesApi`,
    /// `apiProvidedBy`, `consumesApi`, `apiConsumedBy`, `partOf` or `hasPart`.
    #[serde(rename = "type")]
    pub type_: String,
    /// The full reference of the other end, `kind:namespace/name`.
    pub target: String,
    /// Whether the other end exists.
    pub resolved: bool,
}

/// A component's result on one scorecard.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Score {
    /// The Scorecard's name.
    pub scorecard: String,
    /// The highest level reached; absent when not even the lowest level is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    /// Each rule and whether it passed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RuleResult>,
    /// The next level up, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_level: Option<String>,
    /// The rules that keep the component from the next level.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocking: Vec<String>,
    /// When the level last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_changed: Option<Time>,
}

/// One rule's result.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
pub struct RuleResult {
    /// The rule's identifier.
    pub identifier: String,
    /// Whether the component passed it.
    pub passed: bool,
}
