//! A DeveloperEnvironment in the cloud: the plan of resources it should have (pure:
//! from the spec and the operator's configuration) and the AWS driver that makes the
//! cloud match it, idempotently and safe to repeat after a crash at any point.

pub mod aws;
pub mod config;
pub mod model;
pub mod plan;
pub mod policy;

pub use model::{
    CloudError, Desired, Observed, Plan, ResourceKind, ResourceSpec, SecurityGroupRole,
};
