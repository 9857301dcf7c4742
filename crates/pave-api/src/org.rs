//! `Group` and `User`: the organisation Backstage's catalog knows (teams, people and
//! who belongs where), so an owner reference can be checked against it.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::entity::{About, EntityStatus, Profile};
use crate::grammar::{ENTITY_REF_PATTERN, OPTIONAL_ENTITY_REF_PATTERN};

/// A team, department or other organisational unit that can own entities.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "platform.pave.dev",
    version = "v1alpha1",
    kind = "Group",
    namespaced,
    status = "GroupStatus",
    category = "pave",
    category = "catalog",
    derive = "PartialEq",
    doc = "A catalog Group (Backstage's kind: Group): a team or unit, its parent, children and members.",
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.type"),
    printcolumn(name = "Parent", type_ = "string", json_path = ".spec.parent"),
    printcolumn(name = "Members", type_ = "integer", json_path = ".status.memberCount"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp", priority = 1),
    validation = Rule::new(crate::entity::NAME_RULE).message(crate::entity::NAME_MESSAGE)
)]
#[serde(rename_all = "camelCase")]
pub struct GroupSpec {
    /// Title, description, tags and links (Backstage's `metadata`).
    #[serde(flatten)]
    pub about: About,

    /// Kind of unit: `team`, `business-unit`, `product-area`, … (free-form).
    #[serde(rename = "type")]
    #[schemars(length(min = 1, max = 63))]
    pub type_: String,

    /// How the group is shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<Profile>,

    /// The group this one belongs to (default kind `group`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = OPTIONAL_ENTITY_REF_PATTERN), length(max = 253))]
    pub parent: Option<String>,

    /// Groups that belong to this one (default kind `group`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1024), inner(regex(pattern = ENTITY_REF_PATTERN), length(max = 253)))]
    pub children: Vec<String>,

    /// Users that are direct members (default kind `user`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10000), inner(regex(pattern = ENTITY_REF_PATTERN), length(max = 253)))]
    pub members: Vec<String>,
}

/// What the catalog found for a Group: the common status, and every User who belongs
/// to it directly, through `memberOf`, or through a group below it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupStatus {
    #[serde(flatten)]
    pub entity: EntityStatus,

    /// Every User who is a member of this group or of any group below it, as full
    /// references, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<String>,

    /// How many entries `members` has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_count: Option<i64>,
}

/// A person, who can own entities and belongs to groups.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "platform.pave.dev",
    version = "v1alpha1",
    kind = "User",
    namespaced,
    status = "EntityStatus",
    category = "pave",
    category = "catalog",
    derive = "PartialEq",
    doc = "A catalog User (Backstage's kind: User): a person and the groups they belong to.",
    printcolumn(name = "Display Name", type_ = "string", json_path = ".spec.profile.displayName"),
    printcolumn(name = "Email", type_ = "string", json_path = ".spec.profile.email"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp", priority = 1),
    validation = Rule::new(crate::entity::NAME_RULE).message(crate::entity::NAME_MESSAGE)
)]
#[serde(rename_all = "camelCase")]
pub struct UserSpec {
    /// Title, description, tags and links (Backstage's `metadata`).
    #[serde(flatten)]
    pub about: About,

    /// How the person is shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<Profile>,

    /// Groups the person is a member of (default kind `group`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1024), inner(regex(pattern = ENTITY_REF_PATTERN), length(max = 253)))]
    pub member_of: Vec<String>,
}
