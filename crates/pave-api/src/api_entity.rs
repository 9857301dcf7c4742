//! `API`: an interface a Component provides and others consume (Backstage's kind:
//! API), with its definition. The Rust type is `ApiEntity`, so it does not read as
//! kube's `Api` client.

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::entity::{About, EntityStatus};
use crate::grammar::{ENTITY_REF_PATTERN, OPTIONAL_ENTITY_REF_PATTERN};

/// An interface between Components.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "platform.pave.dev",
    version = "v1alpha1",
    kind = "API",
    root = "ApiEntity",
    plural = "apis",
    namespaced,
    status = "EntityStatus",
    category = "pave",
    category = "catalog",
    derive = "PartialEq",
    doc = "A catalog API (Backstage's kind: API): an interface, its owner, lifecycle and definition.",
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.type"),
    printcolumn(name = "Lifecycle", type_ = "string", json_path = ".spec.lifecycle"),
    printcolumn(name = "Owner", type_ = "string", json_path = ".spec.owner"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp", priority = 1),
    validation = Rule::new(crate::entity::NAME_RULE).message(crate::entity::NAME_MESSAGE)
)]
#[serde(rename_all = "camelCase")]
pub struct ApiEntitySpec {
    /// Title, description, tags and links (Backstage's `metadata`).
    #[serde(flatten)]
    pub about: About,

    /// Kind of interface: `openapi`, `asyncapi`, `graphql`, `grpc`, … (free-form).
    #[serde(rename = "type")]
    #[schemars(length(min = 1, max = 63))]
    pub type_: String,

    /// Lifecycle stage; well-known values are `experimental`, `production` and
    /// `deprecated`.
    #[schemars(length(min = 1, max = 63))]
    pub lifecycle: String,

    /// Owning group or user (default kind `group`).
    #[schemars(regex(pattern = ENTITY_REF_PATTERN), length(max = 253))]
    pub owner: String,

    /// The system this API belongs to (default kind `system`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = OPTIONAL_ENTITY_REF_PATTERN), length(max = 253))]
    pub system: Option<String>,

    /// The definition: the text itself, or a reference to it as Backstage writes one
    /// (`$text: ./openapi.yaml`, `$url: https://…`), kept as written and not fetched.
    #[schemars(schema_with = "definition_schema")]
    pub definition: Definition,
}

/// An API's definition as a catalog file writes it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(untagged)]
pub enum Definition {
    /// The definition inline.
    Text(String),
    /// A placeholder Backstage resolves when it reads the file: one of `$text`,
    /// `$json`, `$yaml` (a path or URL whose content is the definition) or `$url`.
    Reference(BTreeMap<String, String>),
}

impl Definition {
    /// The placeholder and what it points at, for a reference.
    pub fn reference(&self) -> Option<(&str, &str)> {
        match self {
            Definition::Text(_) => None,
            Definition::Reference(map) => map.iter().next().map(|(k, v)| (k.as_str(), v.as_str())),
        }
    }
}

/// The placeholders Backstage resolves in a definition.
pub const DEFINITION_PLACEHOLDERS: [&str; 4] = ["$text", "$json", "$yaml", "$url"];

/// A string, or an object with one placeholder key. Structural schemas cannot say
/// "string or object", and the API server refuses CEL rules on a field without a
/// type, so the field keeps whatever it is given: `kubectl pave import` checks the
/// shape, and the controller reports an object whose definition it cannot read
/// (an `InvalidObject` Warning), as for any malformed object.
fn definition_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "description": "The definition: the text itself, or a reference as Backstage writes one ($text, $json, $yaml or $url, e.g. `$text: ./openapi.yaml`), kept as written and not fetched.",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}
