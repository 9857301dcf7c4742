//! What every catalog kind shares: the status the catalog controller writes, and the
//! pieces of spec Backstage gives several kinds (a profile, a reference list).
//!
//! Component has its own status (it also carries impact and scores); the other
//! catalog kinds (Group, User, System, Domain, API, Resource) write this one.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

pub use crate::component::{Link, Relation};
use crate::grammar::TAG_PATTERN;

/// The CEL rule every catalog kind puts on its name: Backstage names are 1–63
/// characters of `[a-zA-Z0-9]` separated by `[-_.]`; Kubernetes already limits the
/// characters, this adds the length and the separator rule.
pub const NAME_RULE: &str = "self.metadata.name.size() <= 63 && self.metadata.name.matches('^[a-zA-Z0-9]+([-_.][a-zA-Z0-9]+)*$')";

/// What the catalog found for a Group, User, System, Domain, API or Resource.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EntityStatus {
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// `Ready` is `False` with reason `UnresolvedReference` when a reference in the
    /// spec names nothing in the catalog.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::conditions::schema")]
    pub conditions: Vec<Condition>,

    /// Relations to other entities, in both directions, as Backstage names them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relations: Vec<Relation>,

    /// References in the spec that name nothing in the catalog.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unresolved_refs: Vec<String>,

    /// References into a namespace that does not check their kind yet: owners and
    /// members before the namespace has a Group, systems, domains and APIs before it
    /// has one of those.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unchecked_refs: Vec<String>,
}

/// What Backstage keeps in every entity's `metadata` besides its name: pave keeps
/// it under `spec`, as it does for Components.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct About {
    /// Display title; defaults to the name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub title: Option<String>,

    /// What the entity is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub description: Option<String>,

    /// Tags: `[a-z0-9:+#]` in runs separated by `-`, at most 63 characters each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(regex(pattern = TAG_PATTERN), length(min = 1, max = 63)))]
    pub tags: Vec<String>,

    /// Links shown with the entity.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub links: Vec<Link>,
}

/// How a person or a team is shown (Backstage's `spec.profile`).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// The name shown instead of the entity's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub display_name: Option<String>,
    /// Where to reach the person or team.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub email: Option<String>,
    /// A URL of a picture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub picture: Option<String>,
}

/// The message of [`NAME_RULE`].
pub const NAME_MESSAGE: &str = "metadata.name: a catalog name is 1-63 characters of [a-z0-9] separated by single '-', '_' or '.' (Backstage's rule)";
