//! `System` and `Domain`: how Backstage groups entities above the Component. A System
//! is a collection of Components, APIs and Resources that work together; a Domain
//! groups Systems around a business area.

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::entity::{About, EntityStatus};
use crate::grammar::{ENTITY_REF_PATTERN, OPTIONAL_ENTITY_REF_PATTERN};

/// Components, APIs and Resources that together expose some functionality.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "platform.pave.dev",
    version = "v1alpha1",
    kind = "System",
    namespaced,
    status = "EntityStatus",
    category = "pave",
    category = "catalog",
    derive = "PartialEq",
    doc = "A catalog System (Backstage's kind: System): entities that work together, with an owner and a domain.",
    printcolumn(name = "Owner", type_ = "string", json_path = ".spec.owner"),
    printcolumn(name = "Domain", type_ = "string", json_path = ".spec.domain"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp", priority = 1),
    validation = Rule::new(crate::entity::NAME_RULE).message(crate::entity::NAME_MESSAGE)
)]
#[serde(rename_all = "camelCase")]
pub struct SystemSpec {
    /// Title, description, tags and links (Backstage's `metadata`).
    #[serde(flatten)]
    pub about: About,

    /// Owning group or user (default kind `group`).
    #[schemars(regex(pattern = ENTITY_REF_PATTERN), length(max = 253))]
    pub owner: String,

    /// The domain this system belongs to (default kind `domain`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = OPTIONAL_ENTITY_REF_PATTERN), length(max = 253))]
    pub domain: Option<String>,

    /// Kind of system (free-form).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub type_: Option<String>,
}

/// A business area that Systems belong to.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "platform.pave.dev",
    version = "v1alpha1",
    kind = "Domain",
    namespaced,
    status = "EntityStatus",
    category = "pave",
    category = "catalog",
    derive = "PartialEq",
    doc = "A catalog Domain (Backstage's kind: Domain): a business area grouping Systems.",
    printcolumn(name = "Owner", type_ = "string", json_path = ".spec.owner"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp", priority = 1),
    validation = Rule::new(crate::entity::NAME_RULE).message(crate::entity::NAME_MESSAGE)
)]
#[serde(rename_all = "camelCase")]
pub struct DomainSpec {
    /// Title, description, tags and links (Backstage's `metadata`).
    #[serde(flatten)]
    pub about: About,

    /// Owning group or user (default kind `group`).
    #[schemars(regex(pattern = ENTITY_REF_PATTERN), length(max = 253))]
    pub owner: String,

    /// A wider domain this one belongs to (default kind `domain`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = OPTIONAL_ENTITY_REF_PATTERN), length(max = 253))]
    pub subdomain_of: Option<String>,

    /// Kind of domain (free-form).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub type_: Option<String>,
}
