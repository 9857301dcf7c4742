//! The AWS driver: makes the cloud match a [`Desired`] resource, one resource at a
//! time, so that every call is safe to repeat after a crash at any line
//! (docs/design.md: every cloud call is safe to repeat).
//!
//! How each kind stays idempotent:
//! - VPC and subnet: EC2 has no client token for these, so they are looked up by their
//!   `pave.dev/name` + environment-uid tags before any create, and tagged atomically
//!   at creation (TagSpecifications): a crash after the create leaves a resource the
//!   next look-up finds. Because a retried create could duplicate, the SDK's own
//!   retries are switched off for exactly these two calls; the operator's next
//!   reconcile (look-up first) is the retry.
//! - Security group: the group name is the deterministic name and EC2 refuses a second
//!   group of that name in the VPC (`InvalidGroup.Duplicate`), which is read as
//!   "found". The database group's single ingress rule is (re)applied on every create
//!   and reconcile, so a crash between creating the group and authorising the rule
//!   heals itself.
//! - DB subnet group and DB instance: the RDS identifier IS the deterministic name, so a
//!   second create answers `...AlreadyExists`, read as "found" (after checking that the
//!   existing one belongs to the same environment).
//! - EC2 instance: RunInstances with `ClientToken` = the deterministic name, after a
//!   look-up by tag.
//!
//! Every SDK failure goes through [`classify`] into a [`CloudError`]: Terminal (the
//! spec must change) or Recoverable (retry with backoff). "Not found" is never an
//! error here: `find` answers `None` and `delete` answers `Ok(true)`.

mod calls;
mod ec2;
mod error;
mod paging;
mod rds;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_ec2::config::Region;
use aws_sdk_ec2::types::Filter;

pub use aws_sdk_ec2::config::Credentials;
pub use calls::{CallObserver, CallOutcome};
pub use error::{ErrorClass, classify, classify_code};

use self::calls::CallCounter;
use crate::model::{CloudError, Desired, Observed, ResourceKind, ResourceSpec, tags};

/// Attempts per API call, the first included. Enough to ride out a throttling burst or
/// a dropped connection; anything longer is the controller's business (its backoff is
/// per object and visible in status), not a reconcile task silently stuck in the SDK.
const MAX_ATTEMPTS: u32 = 3;
/// Cap on the SDK's exponential backoff between those attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A loopback or regional endpoint that does not accept a TCP connection in this long
/// is down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// One attempt, request to full response. The slowest calls pave makes (RunInstances,
/// CreateDBInstance) answer in a few seconds: they start work, they do not wait for it.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(8);
/// One API call, retries included. Without it a hung endpoint (accepting connections,
/// never answering) would hold a reconcile, and the controller worker running it,
/// forever; with it the call fails Recoverable (`Timeout`) and the object is retried
/// with backoff like any other transient failure, so one stuck region cannot starve
/// the controller's workers.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(20);
/// One page of an inventory listing, its retries included. A listing as a whole has no
/// timeout: it grows with the region, so any fixed bound is outgrown by some account
/// (docs of `paging`). Each page has this one instead, and a page that exceeds it is
/// asked for again at half the size. As long as one attempt of any other call: an
/// answer that took longer never arrived before either, and a shorter one would halve
/// pages on a loaded but healthy endpoint.
const PAGE_TIMEOUT: Duration = ATTEMPT_TIMEOUT;

/// EC2 and RDS clients for one region, with bounded retries and timeouts.
#[derive(Clone, Debug)]
pub struct Aws {
    ec2: aws_sdk_ec2::Client,
    rds: aws_sdk_rds::Client,
    region: String,
    calls: CallCounter,
    page_timeout: Duration,
}

impl Aws {
    /// Clients for `region`; `endpoint` overrides every service (moto), as
    /// `AWS_ENDPOINT_URL` would. Credentials come from the default chain
    /// (environment, profile, web identity, IMDS).
    pub async fn connect(region: &str, endpoint: Option<&str>) -> Aws {
        Self::load(loader(region, endpoint)).await
    }

    /// As [`Aws::connect`], with fixed credentials instead of the default chain (tests
    /// against moto, which accepts any).
    pub async fn connect_with_credentials(
        region: &str,
        endpoint: Option<&str>,
        credentials: Credentials,
    ) -> Aws {
        Self::load(loader(region, endpoint).credentials_provider(credentials)).await
    }

    async fn load(loader: aws_config::ConfigLoader) -> Aws {
        let shared = loader.load().await;
        let region = shared
            .region()
            .map(|r| r.as_ref().to_owned())
            .unwrap_or_default();
        let calls = CallCounter::default();
        let ec2 = aws_sdk_ec2::config::Builder::from(&shared)
            .interceptor(calls.clone())
            .build();
        let rds = aws_sdk_rds::config::Builder::from(&shared)
            .interceptor(calls.clone())
            .build();
        Aws {
            ec2: aws_sdk_ec2::Client::from_conf(ec2),
            rds: aws_sdk_rds::Client::from_conf(rds),
            region,
            calls,
            page_timeout: PAGE_TIMEOUT,
        }
    }

    /// The same clients with another timeout for each page of an inventory listing
    /// (default: 8 s, one attempt's). For tests, which make pages slow on purpose and
    /// should not wait seconds per page to see the listing adapt.
    pub fn with_page_timeout(mut self, timeout: Duration) -> Aws {
        self.page_timeout = timeout;
        self
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    /// The regions this account can use (DescribeRegions: enabled and opt-in-not-required
    /// ones), for finding where this cluster's resources may be when the configuration
    /// allows any region.
    pub async fn regions(&self) -> Result<Vec<String>, CloudError> {
        let out = self
            .ec2
            .describe_regions()
            .send()
            .await
            .map_err(|e| classify("DescribeRegions", "the account's regions", &e))?;
        Ok(out
            .regions()
            .iter()
            .filter_map(|r| r.region_name().map(str::to_owned))
            .collect())
    }

    /// How many API operations these clients have started (retries of one operation
    /// count once). For metrics, and for tests that hold the inventory to one describe
    /// per resource type.
    pub fn api_calls(&self) -> u64 {
        self.calls.operations()
    }

    /// Tells `observer` how each call of these clients ends (for metrics: by
    /// service, operation and outcome). One observer per set of clients; a second is
    /// ignored, and false says so.
    pub fn observe_calls(&self, observer: Arc<dyn CallObserver>) -> bool {
        self.calls.observe(observer)
    }

    /// The resource with this deterministic name (tag `pave.dev/name`) and environment
    /// uid, if it exists. Terminated instances and deleted resources count as absent; a
    /// resource on its way out (`shutting-down`, `deleting`) is reported with that state.
    /// An RDS resource of that name that belongs to another environment is a Terminal
    /// error: its name is taken, and adopting it would hand one tenant another's data.
    /// `ids` (name → cloud id of the resources found so far) narrows an EC2 look-up to
    /// the environment's VPC or subnet; see [`scope`].
    pub async fn find(
        &self,
        desired: &Desired,
        environment_uid: &str,
        ids: &BTreeMap<String, String>,
    ) -> Result<Option<Observed>, CloudError> {
        match desired.kind {
            ResourceKind::Vpc
            | ResourceKind::Subnet
            | ResourceKind::SecurityGroup
            | ResourceKind::Instance => {
                self.find_ec2(
                    desired.kind,
                    &desired.name,
                    environment_uid,
                    scope(desired, ids),
                )
                .await
            }
            ResourceKind::DbSubnetGroup => {
                self.find_db_subnet_group(&desired.name, environment_uid)
                    .await
            }
            ResourceKind::DbInstance => self.find_db_instance(&desired.name, environment_uid).await,
        }
    }

    /// Creates `desired`, or returns it if it already exists. Its tags are `plan_tags`
    /// plus `pave.dev/name` and `Name` (both the deterministic name); references to
    /// other resources (by name) resolve through `ids` (name → cloud id). A reference
    /// not in `ids` yet is a Recoverable `DependencyNotReady`: create the dependency
    /// first. For a DB instance, `password` is the master password; it is never logged
    /// and never appears in an error.
    pub async fn create(
        &self,
        desired: &Desired,
        plan_tags: &BTreeMap<String, String>,
        ids: &BTreeMap<String, String>,
        password: Option<&str>,
    ) -> Result<Observed, CloudError> {
        let uid = plan_tags
            .get(tags::ENVIRONMENT_UID)
            .map(String::as_str)
            .ok_or_else(|| CloudError::Terminal {
                operation: format!("Create{}", desired.kind),
                resource: desired.name.clone(),
                code: "MissingEnvironmentUid".into(),
                message: format!(
                    "the plan's tags have no {}: without it the resource could not be found again after a crash",
                    tags::ENVIRONMENT_UID
                ),
            })?;
        let resource_tags = resource_tags(desired, plan_tags);
        let resolve = |reference: &str| resolve(ids, desired, reference);
        let find_ec2 = || self.find_ec2(desired.kind, &desired.name, uid, scope(desired, ids));
        match &desired.spec {
            ResourceSpec::Vpc { cidr } => {
                if let Some(found) = find_ec2().await? {
                    return Ok(found);
                }
                self.create_vpc(&desired.name, cidr, &resource_tags).await
            }
            ResourceSpec::Subnet {
                vpc,
                cidr,
                availability_zone,
            } => {
                if let Some(found) = find_ec2().await? {
                    return Ok(found);
                }
                let vpc_id = resolve(vpc)?;
                self.create_subnet(
                    &desired.name,
                    vpc_id,
                    cidr,
                    availability_zone,
                    &resource_tags,
                )
                .await
            }
            ResourceSpec::SecurityGroup {
                vpc,
                role,
                db_port,
                compute_group,
            } => {
                let vpc_id = resolve(vpc)?;
                // The database group's rule needs the compute group's id: resolve it
                // before creating anything, so a missing one creates nothing.
                let ingress = match (db_port, compute_group) {
                    (Some(port), Some(compute)) => Some((*port, resolve(compute)?)),
                    _ => None,
                };
                let group = match find_ec2().await? {
                    Some(found) => found,
                    None => {
                        self.create_security_group(&desired.name, vpc_id, *role, &resource_tags)
                            .await?
                    }
                };
                if let Some((port, compute_id)) = ingress {
                    self.ensure_db_ingress(&desired.name, &group.id, compute_id, port)
                        .await?;
                }
                Ok(group)
            }
            ResourceSpec::DbSubnetGroup { subnets } => {
                if let Some(found) = self.find_db_subnet_group(&desired.name, uid).await? {
                    return Ok(found);
                }
                let subnet_ids = subnets
                    .iter()
                    .map(|s| resolve(s).map(str::to_owned))
                    .collect::<Result<Vec<_>, _>>()?;
                self.create_db_subnet_group(&desired.name, &subnet_ids, &resource_tags, uid)
                    .await
            }
            ResourceSpec::DbInstance {
                subnet_group,
                security_group,
                ..
            } => {
                if let Some(found) = self.find_db_instance(&desired.name, uid).await? {
                    return Ok(found);
                }
                let subnet_group = resolve(subnet_group)?;
                let security_group = resolve(security_group)?;
                let Some(password) = password else {
                    return Err(CloudError::Terminal {
                        operation: "CreateDBInstance".into(),
                        resource: desired.name.clone(),
                        code: "MissingPassword".into(),
                        message: "no master password was given; it must be stored in the connection secret before the database is created".into(),
                    });
                };
                self.create_db_instance(
                    desired,
                    subnet_group,
                    security_group,
                    password,
                    &resource_tags,
                    uid,
                )
                .await
            }
            ResourceSpec::Instance {
                instance_type,
                image_id,
                subnet,
                security_group,
            } => {
                if let Some(found) = find_ec2().await?
                    && is_live_instance(&found.state)
                {
                    return Ok(found);
                }
                let subnet_id = resolve(subnet)?;
                let group_id = resolve(security_group)?;
                self.run_instance(
                    &desired.name,
                    instance_type,
                    image_id,
                    subnet_id,
                    group_id,
                    &resource_tags,
                )
                .await
            }
        }
    }

    /// Brings an existing resource in line with `desired` where AWS can do it in place:
    /// a DB instance's class, allocated storage and engine version (ModifyDBInstance,
    /// ApplyImmediately; storage only grows, the version only goes up), the database security group's single ingress rule (any
    /// other ingress on it is revoked: the database port is open only to compute), and
    /// missing or changed tags. Tags pave does not own (and `pave.dev/orphaned`) are
    /// left alone. Returns what changed, human-readable (for Events); empty when nothing.
    ///
    /// Not in place, so not here: CIDRs, availability zones, engine, an instance's type
    /// or image (replacement is the plan's decision), a DB subnet group's subnets.
    pub async fn reconcile(
        &self,
        desired: &Desired,
        observed: &Observed,
        plan_tags: &BTreeMap<String, String>,
    ) -> Result<Vec<String>, CloudError> {
        let mut changes = Vec::new();
        match &desired.spec {
            ResourceSpec::DbInstance {
                class,
                storage_gib,
                engine_version,
                ..
            } => {
                changes.extend(
                    self.modify_db_instance(
                        &desired.name,
                        class,
                        *storage_gib,
                        engine_version.as_deref(),
                    )
                    .await?,
                );
            }
            ResourceSpec::SecurityGroup {
                db_port: Some(port),
                compute_group: Some(compute),
                ..
            } => {
                let uid = observed
                    .tags
                    .get(tags::ENVIRONMENT_UID)
                    .or_else(|| plan_tags.get(tags::ENVIRONMENT_UID))
                    .map(String::as_str)
                    .unwrap_or_default();
                // The compute group lives in the database group's VPC.
                let vpc = observed
                    .attributes
                    .get(attr::VPC_ID)
                    .map(|vpc| ec2::filter("vpc-id", vpc));
                let compute_id = self
                    .find_ec2(ResourceKind::SecurityGroup, compute, uid, vpc)
                    .await?
                    .map(|g| g.id)
                    .ok_or_else(|| CloudError::Recoverable {
                        operation: "AuthorizeSecurityGroupIngress".into(),
                        resource: desired.name.clone(),
                        code: "DependencyNotReady".into(),
                        message: format!("the compute security group {compute} does not exist yet"),
                    })?;
                changes.extend(
                    self.ensure_db_ingress(&desired.name, &observed.id, &compute_id, *port)
                        .await?,
                );
            }
            _ => {}
        }

        let wanted = resource_tags(desired, plan_tags);
        let drifted: BTreeMap<String, String> = wanted
            .into_iter()
            .filter(|(k, v)| observed.tags.get(k) != Some(v))
            .collect();
        if !drifted.is_empty() {
            self.tag_resource(desired.kind, &desired.name, observed, &drifted)
                .await?;
            let keys: Vec<&str> = drifted.keys().map(String::as_str).collect();
            changes.push(format!(
                "{} {}: restored tags {}",
                desired.kind,
                desired.name,
                keys.join(", ")
            ));
        }
        Ok(changes)
    }

    /// Starts or continues deleting; `Ok(true)` once the cloud reports the resource
    /// gone (already gone counts as deleted), `Ok(false)` while AWS is still working on
    /// it (an RDS instance in `deleting`, an instance `shutting-down`). Security groups:
    /// rules in other groups that reference this one are revoked first, since AWS
    /// refuses to delete a referenced group. DB instance: no final snapshot and
    /// automated backups deleted (an environment is disposable; keeping its data is what
    /// `deletionPolicy: Orphan` is for).
    pub async fn delete(
        &self,
        kind: ResourceKind,
        observed: &Observed,
    ) -> Result<bool, CloudError> {
        match kind {
            ResourceKind::Vpc => self.delete_vpc(&observed.id).await,
            ResourceKind::Subnet => self.delete_subnet(&observed.id).await,
            ResourceKind::SecurityGroup => self.delete_security_group(&observed.id).await,
            ResourceKind::Instance => self.terminate_instance(&observed.id).await,
            ResourceKind::DbSubnetGroup => self.delete_db_subnet_group(&observed.id).await,
            ResourceKind::DbInstance => self.delete_db_instance(&observed.id).await,
        }
    }

    /// Every resource tagged with `cluster_id` in this region, by kind (in creation
    /// order), with its tags. One paginated describe per resource type, filtered by tag
    /// on the server where the API allows it (EC2) and on the client where it does not
    /// (DescribeDBInstances returns each instance's tags). RDS subnet groups, whose
    /// describe carries no tags, are attributed through their VPC. The cost is one call
    /// per resource type (and page of the API's largest size), however many
    /// environments there are. Each page has its own timeout, and a page too slow for
    /// it is asked for again in smaller pages, so a listing of any size completes as
    /// long as small pages are answered (see `paging`).
    pub async fn inventory(
        &self,
        cluster_id: &str,
    ) -> Result<Vec<(ResourceKind, Observed)>, CloudError> {
        let mut found = Vec::new();
        let vpcs = self.inventory_vpcs(cluster_id).await?;
        let subnet_groups = self.inventory_db_subnet_groups(cluster_id, &vpcs).await?;
        found.extend(vpcs.into_iter().map(|o| (ResourceKind::Vpc, o)));
        for kind in [ResourceKind::Subnet, ResourceKind::SecurityGroup] {
            found.extend(
                self.inventory_ec2(kind, cluster_id)
                    .await?
                    .into_iter()
                    .map(|o| (kind, o)),
            );
        }
        found.extend(
            subnet_groups
                .into_iter()
                .map(|o| (ResourceKind::DbSubnetGroup, o)),
        );
        found.extend(
            self.inventory_db_instances(cluster_id)
                .await?
                .into_iter()
                .map(|o| (ResourceKind::DbInstance, o)),
        );
        found.extend(
            self.inventory_ec2(ResourceKind::Instance, cluster_id)
                .await?
                .into_iter()
                .map(|o| (ResourceKind::Instance, o)),
        );
        found.sort_by(|(ka, a), (kb, b)| ka.cmp(kb).then_with(|| a.id.cmp(&b.id)));
        Ok(found)
    }

    /// Adds `tags` (e.g. `pave.dev/orphaned=true`) to a resource; other tags stay.
    pub async fn tag(
        &self,
        kind: ResourceKind,
        observed: &Observed,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        self.tag_resource(kind, &observed.id, observed, tags).await
    }

    async fn tag_resource(
        &self,
        kind: ResourceKind,
        name: &str,
        observed: &Observed,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        if tags.is_empty() {
            return Ok(());
        }
        match kind {
            ResourceKind::DbSubnetGroup | ResourceKind::DbInstance => {
                self.tag_rds(kind, name, observed, tags).await
            }
            _ => self.tag_ec2(name, &observed.id, tags).await,
        }
    }

    /// `arn:<partition>:<service>:<region>:<account>:<resource>`, for EC2 resources whose
    /// describe output carries an owner but no ARN.
    fn arn(&self, service: &str, owner: Option<&str>, resource: &str) -> Option<String> {
        let owner = owner?;
        let partition = if self.region.starts_with("cn-") {
            "aws-cn"
        } else if self.region.starts_with("us-gov-") {
            "aws-us-gov"
        } else {
            "aws"
        };
        Some(format!(
            "arn:{partition}:{service}:{}:{owner}:{resource}",
            self.region
        ))
    }
}

/// Asks the default credentials chain (environment, profile, web identity, IMDS) for
/// credentials, as [`Aws::connect`]'s clients will, or why none did. Makes no EC2 or
/// RDS call (web identity asks STS for a session).
pub async fn find_credentials(region: &str, endpoint: Option<&str>) -> Result<(), String> {
    use aws_credential_types::provider::ProvideCredentials;
    let shared = loader(region, endpoint).load().await;
    let provider = shared
        .credentials_provider()
        .ok_or_else(|| "no credentials provider is configured".to_owned())?;
    match provider.provide_credentials().await {
        Ok(_) => Ok(()),
        Err(error) => Err(with_causes(&error)),
    }
}

/// An error and its causes on one line, skipping causes already in the text: the
/// SDK's and kube's top-level messages often say only which step failed ("client
/// error (Connect)").
pub fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let next = e.to_string();
        if !text.contains(&next) {
            text = format!("{text}: {next}");
        }
        cause = e.source();
    }
    text
}

fn loader(region: &str, endpoint: Option<&str>) -> aws_config::ConfigLoader {
    let loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(MAX_ATTEMPTS)
                .with_max_backoff(MAX_BACKOFF),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .operation_timeout(OPERATION_TIMEOUT)
                .build(),
        );
    match endpoint {
        Some(url) => loader.endpoint_url(url),
        None => loader,
    }
}

/// The tags a resource should carry: the plan's, plus its deterministic name twice
/// (`pave.dev/name`, how pave finds it; `Name`, how people find it in the console).
fn resource_tags(
    desired: &Desired,
    plan_tags: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut all = plan_tags.clone();
    all.insert(tags::NAME.to_owned(), desired.name.clone());
    all.insert(tags::AWS_NAME.to_owned(), desired.name.clone());
    all
}

/// The attribute filter that confines an EC2 look-up to where the resource must be, if
/// what it needs is known: a VPC by its CIDR (the environment's own block, tagged
/// `pave.dev/cidr` as well), a subnet or security group by its VPC, an instance by its
/// subnet. A resource cannot exist anywhere else, so the answer is the same as the
/// tag-only look-up, at a cost that does not grow with the account (see
/// [`Aws::find_ec2`]). Without the dependency's id (it does not exist yet, so neither
/// can this) the look-up falls back to tags alone.
fn scope(desired: &Desired, ids: &BTreeMap<String, String>) -> Option<Filter> {
    let (name, value) = match &desired.spec {
        ResourceSpec::Vpc { cidr } => ("cidr", cidr.as_str()),
        ResourceSpec::Subnet { vpc, .. } | ResourceSpec::SecurityGroup { vpc, .. } => {
            ("vpc-id", ids.get(vpc)?.as_str())
        }
        ResourceSpec::Instance { subnet, .. } => ("subnet-id", ids.get(subnet)?.as_str()),
        ResourceSpec::DbSubnetGroup { .. } | ResourceSpec::DbInstance { .. } => return None,
    };
    Some(ec2::filter(name, value))
}

/// The cloud id of the resource named `reference`, which must have been created first.
fn resolve<'a>(
    ids: &'a BTreeMap<String, String>,
    desired: &Desired,
    reference: &str,
) -> Result<&'a str, CloudError> {
    ids.get(reference)
        .map(String::as_str)
        .ok_or_else(|| CloudError::Recoverable {
            operation: format!("Create{}", desired.kind),
            resource: desired.name.clone(),
            code: "DependencyNotReady".into(),
            message: format!("{reference} has no cloud id yet; it must be created first"),
        })
}

/// Keys of [`Observed::attributes`], the values drift checks compare with the plan.
pub mod attr {
    /// VPC and subnet CIDR block.
    pub const CIDR: &str = "cidr";
    /// Subnet.
    pub const AVAILABILITY_ZONE: &str = "availabilityZone";
    /// Subnet, security group, DB subnet group.
    pub const VPC_ID: &str = "vpcId";
    /// Security group: its ingress rules, one `protocol ports from source` per source,
    /// sorted and `; `-separated (`tcp 5432 from sg-0abc`).
    pub const INGRESS: &str = "ingress";
    /// DB instance class, including a change RDS is still applying.
    pub const CLASS: &str = "class";
    /// DB instance allocated storage in GiB, including a change RDS is still applying.
    pub const STORAGE: &str = "storage";
    pub const ENGINE: &str = "engine";
    pub const ENGINE_VERSION: &str = "engineVersion";
    /// EC2 instance.
    pub const INSTANCE_TYPE: &str = "instanceType";
    pub const IMAGE_ID: &str = "imageId";
    pub const SUBNET_ID: &str = "subnetId";
}

/// The attributes that have a value.
fn attributes<'a>(
    pairs: impl IntoIterator<Item = (&'static str, Option<&'a str>)>,
) -> BTreeMap<String, String> {
    pairs
        .into_iter()
        .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned())))
        .collect()
}

/// Whether an EC2 instance state is one a new instance would not replace.
fn is_live_instance(state: &str) -> bool {
    !matches!(state, "shutting-down" | "terminated")
}
