//! The vocabulary shared by the plan (pure) and the AWS driver: which cloud resources
//! an environment has, what each should look like, and what the cloud says of it.
//!
//! Every resource has a deterministic name derived from the environment's UID, so a
//! crash at any point can be recovered by looking the resource up by its tags before
//! creating anything (docs/design.md: every cloud call is safe to repeat).

use std::collections::BTreeMap;
use std::fmt;

/// The kinds of cloud resource an environment is made of, in creation order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceKind {
    Vpc,
    Subnet,
    SecurityGroup,
    DbSubnetGroup,
    DbInstance,
    Instance,
}

impl ResourceKind {
    /// As `status.resources[].kind` shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::Vpc => "VPC",
            ResourceKind::Subnet => "Subnet",
            ResourceKind::SecurityGroup => "SecurityGroup",
            ResourceKind::DbSubnetGroup => "DBSubnetGroup",
            ResourceKind::DbInstance => "DBInstance",
            ResourceKind::Instance => "Instance",
        }
    }

    /// The kind `status.resources[].kind` names ([`ResourceKind::as_str`]).
    pub fn parse(kind: &str) -> Option<ResourceKind> {
        Self::CREATION_ORDER
            .into_iter()
            .find(|k| k.as_str() == kind)
    }

    /// Creation order; teardown runs it backwards.
    pub const CREATION_ORDER: [ResourceKind; 6] = [
        ResourceKind::Vpc,
        ResourceKind::Subnet,
        ResourceKind::SecurityGroup,
        ResourceKind::DbSubnetGroup,
        ResourceKind::DbInstance,
        ResourceKind::Instance,
    ];
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Tag keys on every cloud resource pave creates.
pub mod tags {
    /// The environment's `metadata.uid`: what the sweeper matches against.
    pub const ENVIRONMENT_UID: &str = "pave.dev/environment-uid";
    /// `namespace/name` of the environment, for people reading the AWS console.
    pub const ENVIRONMENT: &str = "pave.dev/environment";
    /// The operator's cluster id: several clusters can share an account.
    pub const CLUSTER: &str = "pave.dev/cluster-id";
    /// The resource's deterministic name: how a resource is found again after a crash.
    pub const NAME: &str = "pave.dev/name";
    /// Set on every resource of an environment deleted with `deletionPolicy: Orphan`:
    /// the sweeper leaves these alone.
    pub const ORPHANED: &str = "pave.dev/orphaned";
    /// The AWS console's display name.
    pub const AWS_NAME: &str = "Name";
}

/// Which security group: compute instances, or the database (reachable only from
/// compute).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SecurityGroupRole {
    Compute,
    Database,
}

/// What one resource should look like. References to other resources are by their
/// deterministic names; the driver resolves them to cloud ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResourceSpec {
    Vpc {
        cidr: String,
    },
    Subnet {
        vpc: String,
        cidr: String,
        availability_zone: String,
    },
    SecurityGroup {
        vpc: String,
        role: SecurityGroupRole,
        /// For the database group: the port opened to the compute group.
        db_port: Option<u16>,
        /// For the database group: the compute group's name.
        compute_group: Option<String>,
    },
    DbSubnetGroup {
        subnets: Vec<String>,
    },
    DbInstance {
        class: String,
        engine: String,
        engine_version: Option<String>,
        storage_gib: i32,
        subnet_group: String,
        security_group: String,
        database_name: String,
        username: String,
    },
    Instance {
        instance_type: String,
        image_id: String,
        subnet: String,
        security_group: String,
    },
}

/// One cloud resource the environment should have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    pub kind: ResourceKind,
    /// Deterministic, unique within the account: `pave-<uid prefix>-<role>`.
    pub name: String,
    pub spec: ResourceSpec,
}

/// Everything an environment should have in the cloud, in creation order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub region: String,
    /// Tags for every resource (the driver adds [`tags::NAME`] and [`tags::AWS_NAME`]).
    pub tags: BTreeMap<String, String>,
    pub resources: Vec<Desired>,
}

/// What the cloud reports of one resource.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    pub id: String,
    pub arn: Option<String>,
    /// The cloud's own word: `available`, `running`, `creating`, `deleting`, …
    pub state: String,
    /// For a database: where to connect, once known.
    pub endpoint: Option<(String, u16)>,
    pub tags: BTreeMap<String, String>,
    /// What drift checks compare with the plan, by name: `cidr` (VPC, subnet),
    /// `class` and `storage` (DB instance), `instanceType` (instance).
    pub attributes: BTreeMap<String, String>,
}

/// A failure talking to the cloud, classified the way ACK classifies it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CloudError {
    /// The request cannot succeed as written (invalid parameter combination, quota the
    /// spec exceeds): nothing is retried until the spec changes.
    #[error("{operation} on {resource}: {code}: {message}")]
    Terminal {
        operation: String,
        resource: String,
        code: String,
        message: String,
    },
    /// Throttling, 5xx, timeouts, dropped connections: retried with capped backoff.
    #[error("{operation} on {resource}: {code}: {message} (will retry)")]
    Recoverable {
        operation: String,
        resource: String,
        code: String,
        message: String,
    },
}

impl CloudError {
    pub fn is_terminal(&self) -> bool {
        matches!(self, CloudError::Terminal { .. })
    }

    /// The AWS error code (`InvalidParameterCombination`, `Throttling`, …).
    pub fn code(&self) -> &str {
        match self {
            CloudError::Terminal { code, .. } | CloudError::Recoverable { code, .. } => code,
        }
    }
}
