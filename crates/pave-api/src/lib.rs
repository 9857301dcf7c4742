//! pave's API: the custom resource types of `platform.pave.dev/v1alpha1`, the
//! conditions they share, and the grammar of names, tags and entity references.
//!
//! No I/O lives here. The schemas generated from these types (with their CEL rules)
//! are the contract the API server enforces; `kubectl pave crds` writes them out.

pub mod component;
pub mod conditions;
pub mod environment;
pub mod grammar;
pub mod scorecard;

pub use component::{Component, ComponentSpec, ComponentStatus};
pub use environment::{DeveloperEnvironment, DeveloperEnvironmentSpec, DeveloperEnvironmentStatus};
pub use scorecard::{Scorecard, ScorecardSpec, ScorecardStatus};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// The API group of every pave kind.
pub const GROUP: &str = "platform.pave.dev";
/// The one served and stored version.
pub const VERSION: &str = "v1alpha1";
/// `kubectl get pave -A` lists every pave object.
pub const CATEGORY: &str = "pave";

/// Every CRD pave installs, in a stable order.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![Component::crd(), DeveloperEnvironment::crd(), Scorecard::crd()]
}
