//! `DeveloperEnvironment`: a self-service cloud environment (network, compute and a
//! database on AWS), optionally deployed to by an Argo CD application.
//!
//! Decisions the design (docs/design.md) leaves to this module:
//! - `clusterSize` defaults to `none` (no instances), like `dbSize`, which means "no
//!   database" when omitted: an environment costs nothing it did not ask for.
//! - `dbStorageGiB` is bounded to 20..=65536, RDS's own limits for gp storage.
//! - `ttl` takes hours, minutes and seconds (`72h`, `1h30m`) and must be positive;
//!   the maximum is operator config, so it is checked by the controller, not here.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::grammar::{DB_CLASS_PATTERN, DURATION_PATTERN, NAMESPACE_PATTERN, REGION_PATTERN};

/// The finalizer pave-operator holds an environment with until its cloud resources are
/// handled by its deletion policy.
pub const FINALIZER: &str = "platform.pave.dev/cloud-resources";

/// The annotation an administrator sets to release an environment whose deletion
/// cannot finish, leaving its cloud resources in place, marked orphaned.
pub const ABANDON: &str = "platform.pave.dev/abandon-cloud-resources";

/// The label on every connection Secret pave creates: the environment's UID. A Secret
/// without it is not pave's to read or write.
pub const ENVIRONMENT_UID_LABEL: &str = "platform.pave.dev/environment-uid";

/// The annotation a namespace sets to accept connection secrets from others.
pub const ACCEPT_SECRETS: &str = "platform.pave.dev/accept-connection-secrets-from";

/// A developer environment: a VPC, two subnets, security groups, an RDS database and
/// EC2 instances in one AWS region, with a connection secret, and optionally an Argo CD
/// Application that deploys into it.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "platform.pave.dev",
    version = "v1alpha1",
    kind = "DeveloperEnvironment",
    namespaced,
    status = "DeveloperEnvironmentStatus",
    shortname = "devenv",
    category = "pave",
    derive = "PartialEq",
    doc = "A self-service cloud environment: VPC, EC2 and RDS in one AWS region, with a connection secret and optional GitOps.",
    printcolumn(
        name = "Region",
        type_ = "string",
        json_path = ".spec.parameters.region"
    ),
    printcolumn(
        name = "DB Size",
        type_ = "string",
        json_path = ".spec.parameters.dbSize"
    ),
    printcolumn(
        name = "Cluster",
        type_ = "string",
        json_path = ".spec.parameters.clusterSize"
    ),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct DeveloperEnvironmentSpec {
    /// What to provision.
    pub parameters: EnvironmentParameters,

    /// Whether deleting the environment waits for the cloud. `Foreground` keeps the
    /// object (phase Deleting, progress in status) until every cloud resource is
    /// confirmed gone; `Background` releases it at once and the operator finishes the
    /// teardown on its own.
    #[serde(default)]
    pub composite_delete_policy: CompositeDeletePolicy,

    /// What happens to the cloud resources when the environment is deleted. `Delete`
    /// removes them; `Orphan` keeps them and marks them so no sweeper touches them.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,

    /// Namespace for the `<name>-connection` secret. Defaults to the environment's own
    /// namespace; another namespace must opt in with the annotation
    /// `platform.pave.dev/accept-connection-secrets-from: <this namespace>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = NAMESPACE_PATTERN), length(max = 63))]
    pub write_connection_secrets_to_namespace: Option<String>,

    /// Delete the environment automatically this long after creation, as a Go
    /// duration in hours, minutes and seconds (`72h`, `1h30m`). The operator's
    /// configuration may set a maximum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN), length(max = 32))]
    #[x_kube(validation = Rule::new("duration(self) > duration('0s')").message("must be a positive duration such as 72h"))]
    pub ttl: Option<String>,

    /// An Argo CD Application that deploys this environment's workloads from Git.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gitops: Option<GitOpsSpec>,
}

/// The cloud resources to provision.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentParameters {
    /// AWS region, e.g. `ap-northeast-2`. Immutable: an environment cannot move.
    #[schemars(regex(pattern = REGION_PATTERN), length(max = 32))]
    #[x_kube(validation = Rule::new("self == oldSelf").message("is immutable: create a new environment in the other region"))]
    pub region: String,

    /// RDS instance class, e.g. `db.t3.medium`. Omit for no database. May change: a
    /// bigger class modifies the instance in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DB_CLASS_PATTERN), length(max = 64))]
    pub db_size: Option<String>,

    /// Database engine. Immutable.
    #[serde(default)]
    #[x_kube(validation = Rule::new("self == oldSelf").message("is immutable: create a new environment for another engine"))]
    pub db_engine: DbEngine,

    /// Engine version, e.g. `"16"`. Omit for the engine's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = "^[0-9]+(\\.[0-9]+)*$"), length(max = 16))]
    pub db_engine_version: Option<String>,

    /// Allocated database storage in GiB. May grow, never shrink.
    #[serde(default = "default_storage", rename = "dbStorageGiB")]
    #[schemars(range(min = 20, max = 65536))]
    #[x_kube(validation = Rule::new("self >= oldSelf").message("may grow but never shrink"))]
    pub db_storage_gib: i32,

    /// Compute profile; the instances of each profile come from the operator's
    /// configuration. `none` provisions no instances.
    #[serde(default)]
    pub cluster_size: ClusterSize,
}

fn default_storage() -> i32 {
    20
}

/// A database engine RDS runs.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum DbEngine {
    #[default]
    Postgres,
    Mysql,
}

/// A compute profile.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ClusterSize {
    #[default]
    None,
    Small,
    Medium,
    Large,
}

/// Whether deletion waits for the cloud.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum CompositeDeletePolicy {
    Foreground,
    #[default]
    Background,
}

/// What deletion does to the cloud resources.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum DeletionPolicy {
    #[default]
    Delete,
    Orphan,
}

/// The Argo CD Application for this environment.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GitOpsSpec {
    /// Git repository URL (`https://`, `ssh://`, `git@host:path` or `file://`). The
    /// operator's configuration may restrict which repositories are allowed.
    #[serde(rename = "repoURL")]
    #[schemars(
        regex(pattern = "^((https?|ssh|git|file)://|git@)[^\\s]+$"),
        length(max = 2048)
    )]
    pub repo_url: String,

    /// Directory inside the repository to deploy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    #[x_kube(validation = Rule::new("!self.startsWith('/') && !self.contains('..')").message("must be a relative path inside the repository, without '..'"))]
    pub path: Option<String>,

    /// Branch, tag or commit. Defaults to `HEAD`.
    #[serde(default = "default_revision")]
    #[schemars(length(min = 1, max = 255))]
    pub target_revision: String,

    /// Argo CD project. Defaults to the operator's configured project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = NAMESPACE_PATTERN), length(max = 63))]
    pub project: Option<String>,

    /// Namespace the application deploys into. Defaults to the environment's name. It
    /// must not exist yet or must already belong to this environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = NAMESPACE_PATTERN), length(max = 63))]
    pub destination_namespace: Option<String>,

    /// Automatic sync; omit for manual sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automated: Option<AutomatedSync>,
}

fn default_revision() -> String {
    "HEAD".to_owned()
}

/// Argo CD's automated sync policy.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutomatedSync {
    /// Delete cluster resources that were removed from Git.
    #[serde(default)]
    pub prune: bool,
    /// Put back cluster resources that drifted from Git.
    #[serde(default)]
    pub self_heal: bool,
}

/// The lifecycle phase of an environment.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum Phase {
    Provisioning,
    Ready,
    Updating,
    Deleting,
    Failed,
}

impl Phase {
    /// The phase as status spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Provisioning => "Provisioning",
            Phase::Ready => "Ready",
            Phase::Updating => "Updating",
            Phase::Deleting => "Deleting",
            Phase::Failed => "Failed",
        }
    }
}

/// What the operator observed of the environment.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DeveloperEnvironmentStatus {
    /// The generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Where the environment is in its lifecycle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,

    /// `Ready`, `Synced`, `GitOpsSynced`, `GitOpsHealthy`, and `Terminal` or
    /// `Recoverable` when something failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::conditions::schema")]
    pub conditions: Vec<Condition>,

    /// Every cloud resource of the environment, in creation order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub resources: Vec<CloudResourceStatus>,

    /// Where the connection secret is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_secret_ref: Option<SecretRef>,

    /// The Argo CD application's state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gitops: Option<GitOpsStatus>,

    /// When the `ttl` runs out and the environment is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Time>,

    /// When the cloud was last compared with the plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_drift_check: Option<Time>,
}

/// One cloud resource of an environment.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CloudResourceStatus {
    /// Resource kind, e.g. `VPC`, `Subnet`, `SecurityGroup`, `DBSubnetGroup`,
    /// `DBInstance`, `Instance`.
    pub kind: String,
    /// The operator's deterministic name for it.
    pub name: String,
    /// The cloud's id, once it exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The ARN, where the service has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// The state the cloud reports (`available`, `running`, `deleting`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// The last error or progress message for this resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A reference to a Secret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
pub struct SecretRef {
    pub name: String,
    pub namespace: String,
}

/// The state of the environment's Argo CD Application.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitOpsStatus {
    /// `namespace/name` of the Application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application: Option<String>,
    /// Argo CD's sync status (`Synced`, `OutOfSync`, `Unknown`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<String>,
    /// Argo CD's health status (`Healthy`, `Progressing`, `Degraded`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
    /// The Git revision last synced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// The namespace the Application deploys into, which pave created for this
    /// environment and deletes with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_namespace: Option<String>,
    /// The phase of Argo CD's last sync operation (`Running`, `Succeeded`, `Failed`,
    /// `Error`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_phase: Option<String>,
    /// What Argo CD last said: an error condition of the Application (a project that
    /// does not exist, a repository it cannot read), else the last operation's message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
