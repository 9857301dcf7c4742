//! `Scorecard`: a Port scorecard as a cluster-scoped Kubernetes object.
//!
//! The article's scorecard (rules with `query.rules`) goes under `spec` unchanged;
//! Port's current format (`query.conditions`, a `filter`) is accepted too. Levels are
//! listed lowest first; a component reaches a level only by passing every rule of
//! that level and of every lower one.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// A set of rules grouped into levels that every selected Component is scored against.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "platform.pave.dev",
    version = "v1alpha1",
    kind = "Scorecard",
    status = "ScorecardStatus",
    // The design names `sc`, but every cluster already has StorageClass's `sc`, and
    // kubectl prefers the built-in; `scard` is the short name that always works.
    shortname = "sc",
    shortname = "scard",
    category = "pave",
    derive = "PartialEq",
    doc = "A Port-compatible scorecard: levels, and rules each Component is evaluated against.",
    printcolumn(name = "Title", type_ = "string", json_path = ".spec.title"),
    printcolumn(name = "Evaluated", type_ = "integer", json_path = ".status.evaluated"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.rules.all(r, self.levels.exists(l, l.title == r.level))")
    .message("every rule's level must be the title of one of spec.levels")
    .field_path(".rules"))]
pub struct ScorecardSpec {
    /// Port's identifier of the scorecard; defaults to the object's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 100))]
    pub identifier: Option<String>,

    /// Display title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub title: Option<String>,

    /// What the scorecard measures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub description: Option<String>,

    /// Which Components are evaluated (Port's `filter`); all of them when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Query>,

    /// Only Components whose labels match are evaluated (with `filter` and
    /// `namespaceSelector`, all must match).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,

    /// Only Components in namespaces whose labels match are evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,

    /// The levels, lowest first. Titles are unique.
    #[schemars(length(min = 1, max = 16))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["title".into()]))]
    pub levels: Vec<Level>,

    /// The rules. Identifiers are unique.
    #[serde(default)]
    #[schemars(length(max = 128))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["identifier".into()]))]
    pub rules: Vec<ScorecardRule>,
}

/// A level of a scorecard.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
pub struct Level {
    /// The level's name, e.g. `Gold`.
    #[schemars(length(min = 1, max = 63))]
    pub title: String,
    /// Colour shown for the level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    pub color: Option<String>,
}

/// A rule: a query a component must satisfy to reach the rule's level.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
pub struct ScorecardRule {
    /// Unique within the scorecard.
    #[schemars(length(min = 1, max = 100))]
    pub identifier: String,
    /// Display title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub title: Option<String>,
    /// What the rule checks and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub description: Option<String>,
    /// The title of the level this rule belongs to.
    #[schemars(length(min = 1, max = 63))]
    pub level: String,
    /// The condition.
    pub query: Query,
}

/// Conditions joined by `and` or `or`. Port's older format lists them under `rules`,
/// its current one under `conditions`; exactly one of the two is set.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("has(self.rules) != has(self.conditions)")
    .message("set exactly one of rules (Port's older format) and conditions (its current one)"))]
pub struct Query {
    /// How the conditions combine.
    pub combinator: Combinator,
    /// The conditions, in Port's older format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 32))]
    pub rules: Option<Vec<QueryCondition>>,
    /// The conditions, in Port's current format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 32))]
    pub conditions: Option<Vec<QueryCondition>>,
}

/// How a query's conditions combine.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Combinator {
    And,
    Or,
}

/// One condition on a component property.
///
/// Whether `value` is present is not checked at admission: a value of any JSON type is
/// allowed, and CEL cannot see a field without a declared type. The scorecard engine
/// reports a missing or ill-typed value as a condition on the Scorecard instead.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
pub struct QueryCondition {
    /// The property: `$identifier`, `$title`, `$team`, `$owner`, `$tags`, `$namespace`,
    /// a spec field (`lifecycle`, `type`, …), a key of `properties`, an annotation or a
    /// label; or an explicit path `spec.x`, `properties.x`, `annotations.x`,
    /// `labels.x`; or a relation count (`$dependsOn`, `$dependencyOf`,
    /// `$unresolvedRefs`).
    #[schemars(length(min = 1, max = 253))]
    pub property: String,
    /// The comparison.
    pub operator: Operator,
    /// What the property is compared with: a string, number, boolean or list; for
    /// `between`, `{from, to}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_value")]
    pub value: Option<serde_json::Value>,
}

fn any_value(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "description": "What the property is compared with: a string, number, boolean or list; for `between`, `{from, to}`.",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// Port's comparison operators: the scorecard engine's own, so what the API server
/// accepts and what the engine evaluates cannot drift apart.
pub use pave_score::Operator;

/// How the scorecard's components score.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScorecardStatus {
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` is `False` when a rule cannot be evaluated as written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::conditions::schema")]
    pub conditions: Vec<Condition>,
    /// How many components were evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluated: Option<i64>,
    /// How many components reached each level (and `none`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub levels: Vec<LevelCount>,
    /// Each rule's pass rate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RulePassRate>,
}

/// The number of components at one level.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
pub struct LevelCount {
    pub level: String,
    pub count: i64,
}

/// How many evaluated components passed one rule.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
pub struct RulePassRate {
    pub identifier: String,
    pub passed: i64,
    pub failed: i64,
}
