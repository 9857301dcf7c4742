//! `Resource`: infrastructure a Component needs at run time (a database, a bucket, a
//! queue), as Backstage's catalog describes it. A DeveloperEnvironment is pave's own
//! kind of resource; a `resource:` reference resolves to either.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::entity::{About, EntityStatus};
use crate::grammar::{ENTITY_REF_PATTERN, OPTIONAL_ENTITY_REF_PATTERN};

/// A piece of infrastructure in the catalog.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "platform.pave.dev",
    version = "v1alpha1",
    kind = "Resource",
    namespaced,
    status = "EntityStatus",
    category = "pave",
    category = "catalog",
    derive = "PartialEq",
    doc = "A catalog Resource (Backstage's kind: Resource): infrastructure such as a database, with its owner and system.",
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.type"),
    printcolumn(name = "Owner", type_ = "string", json_path = ".spec.owner"),
    printcolumn(name = "System", type_ = "string", json_path = ".spec.system"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp", priority = 1),
    validation = Rule::new(crate::entity::NAME_RULE).message(crate::entity::NAME_MESSAGE)
)]
#[serde(rename_all = "camelCase")]
pub struct ResourceSpec {
    /// Title, description, tags and links (Backstage's `metadata`).
    #[serde(flatten)]
    pub about: About,

    /// Kind of resource: `database`, `s3-bucket`, `cluster`, … (free-form).
    #[serde(rename = "type")]
    #[schemars(length(min = 1, max = 63))]
    pub type_: String,

    /// Owning group or user (default kind `group`).
    #[schemars(regex(pattern = ENTITY_REF_PATTERN), length(max = 253))]
    pub owner: String,

    /// The system this resource belongs to (default kind `system`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = OPTIONAL_ENTITY_REF_PATTERN), length(max = 253))]
    pub system: Option<String>,

    /// Components and resources this one depends on (default kind `component`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(regex(pattern = ENTITY_REF_PATTERN), length(max = 253)))]
    pub depends_on: Vec<String>,

    /// Components and resources that depend on this one (default kind `component`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(regex(pattern = ENTITY_REF_PATTERN), length(max = 253)))]
    pub dependency_of: Vec<String>,
}
