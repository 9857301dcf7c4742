//! The EC2 half of the driver: VPC, subnets, security groups and instances.
//!
//! All four are found by tag filters (`tag:pave.dev/name`, `tag:pave.dev/environment-uid`
//! or `tag:pave.dev/cluster-id`), which EC2 evaluates on the server, so a look-up or an
//! inventory is one paginated describe whatever the account holds.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{
    Filter, Instance, InstanceType, IpPermission, ResourceType, SecurityGroup, Subnet, Tag,
    TagSpecification, UserIdGroupPair, Vpc,
};

use super::error::{classify, service_code, unless_not_found};
use super::paging::{self, EC2_PAGES, Page};
use super::{Aws, attr, attributes, is_live_instance};
use crate::model::{CloudError, Observed, ResourceKind, SecurityGroupRole, tags};

/// Instance states a look-up reports. `terminated` is left out: a terminated instance
/// lingers in describes for about an hour but is gone for every purpose of pave's.
const VISIBLE_INSTANCE_STATES: [&str; 5] =
    ["pending", "running", "shutting-down", "stopping", "stopped"];

/// How often RunInstances may answer with an already-dead instance before giving up
/// (see [`Aws::run_instance`]).
const MAX_DEAD_TOKEN_ANSWERS: usize = 3;

/// Results per page of a look-up's describe: EC2's maximum. Without it moto pages by
/// 100, and a look-up matching 200 instances would take two calls where AWS takes
/// one. (Inventory listings page adaptively from the same size: `paging`.)
const PAGE_SIZE: i32 = EC2_PAGES.start;

/// RunInstances' limit on `ClientToken`.
const MAX_CLIENT_TOKEN_LEN: usize = 64;

impl Aws {
    /// The live EC2 resource of `kind` tagged with this name and environment uid.
    /// Several can exist only if something outside pave copied the tags, or AWS's
    /// eventual consistency hid a first create from the look-up before a second; then
    /// the oldest live one by id wins and the others are reported by the sweeper's
    /// inventory once the environment is gone.
    ///
    /// `scope`, when given, is an attribute filter that already narrows the search to
    /// the environment (its VPC's CIDR, its VPC, its subnet). It goes first: EC2
    /// evaluates it from an index, and moto evaluates filters in the order given and
    /// reads a resource's tags by scanning every tag in the account, so a tag filter
    /// applied to the whole account costs O(resources × tags) there (1.7 s per
    /// DescribeSecurityGroups at 200 environments, against 16 ms scoped).
    pub(super) async fn find_ec2(
        &self,
        kind: ResourceKind,
        name: &str,
        environment_uid: &str,
        scope: Option<Filter>,
    ) -> Result<Option<Observed>, CloudError> {
        let filters = scope
            .into_iter()
            .chain([
                tag_filter(tags::NAME, name),
                tag_filter(tags::ENVIRONMENT_UID, environment_uid),
            ])
            .collect();
        let mut found = self.describe_ec2(kind, name, filters).await?;
        // Live before dying, then by id, so the answer is stable between calls.
        found.sort_by(|a, b| {
            is_live_instance(&b.state)
                .cmp(&is_live_instance(&a.state))
                .then_with(|| a.id.cmp(&b.id))
        });
        if found.len() > 1 {
            let ids: Vec<&str> = found.iter().map(|o| o.id.as_str()).collect();
            tracing::warn!(%kind, name, ?ids, "several resources carry the same pave name; using the first");
        }
        Ok(found.into_iter().next())
    }

    /// Every EC2 resource of `kind` tagged with this cluster id, page by page with a
    /// timeout per page (see `paging`). Unlike a look-up, a listing's size grows with
    /// the region, which is what the pages adapt to.
    pub(super) async fn inventory_ec2(
        &self,
        kind: ResourceKind,
        cluster_id: &str,
    ) -> Result<Vec<Observed>, CloudError> {
        let what = format!("{kind}s of cluster {cluster_id}");
        let what = what.as_str();
        let filters = vec![tag_filter(tags::CLUSTER, cluster_id)];
        let timeout = self.page_timeout;
        let timeouts = |t| aws_sdk_ec2::config::Builder::default().timeout_config(t);
        match kind {
            ResourceKind::Vpc => {
                paging::list(
                    "DescribeVpcs",
                    what,
                    EC2_PAGES,
                    timeout,
                    |token, size, t| {
                        let call = self
                            .ec2
                            .describe_vpcs()
                            .set_filters(Some(filters.clone()))
                            .set_next_token(token)
                            .max_results(size)
                            .customize()
                            .config_override(timeouts(t));
                        async move {
                            let page = call
                                .send()
                                .await
                                .map_err(|e| classify("DescribeVpcs", what, &e))?;
                            Ok(Page {
                                items: page.vpcs().iter().map(|v| self.observe_vpc(v)).collect(),
                                next: page.next_token().map(str::to_owned),
                            })
                        }
                    },
                )
                .await
            }
            ResourceKind::Subnet => {
                paging::list(
                    "DescribeSubnets",
                    what,
                    EC2_PAGES,
                    timeout,
                    |token, size, t| {
                        let call = self
                            .ec2
                            .describe_subnets()
                            .set_filters(Some(filters.clone()))
                            .set_next_token(token)
                            .max_results(size)
                            .customize()
                            .config_override(timeouts(t));
                        async move {
                            let page = call
                                .send()
                                .await
                                .map_err(|e| classify("DescribeSubnets", what, &e))?;
                            Ok(Page {
                                items: page.subnets().iter().map(observe_subnet).collect(),
                                next: page.next_token().map(str::to_owned),
                            })
                        }
                    },
                )
                .await
            }
            ResourceKind::SecurityGroup => {
                let operation = "DescribeSecurityGroups";
                paging::list(operation, what, EC2_PAGES, timeout, |token, size, t| {
                    let call = self
                        .ec2
                        .describe_security_groups()
                        .set_filters(Some(filters.clone()))
                        .set_next_token(token)
                        .max_results(size)
                        .customize()
                        .config_override(timeouts(t));
                    async move {
                        let page = call
                            .send()
                            .await
                            .map_err(|e| classify(operation, what, &e))?;
                        Ok(Page {
                            items: page
                                .security_groups()
                                .iter()
                                .map(|g| self.observe_group(g))
                                .collect(),
                            next: page.next_token().map(str::to_owned),
                        })
                    }
                })
                .await
            }
            ResourceKind::Instance => {
                let mut filters = filters;
                filters.push(visible_instances());
                paging::list(
                    "DescribeInstances",
                    what,
                    EC2_PAGES,
                    timeout,
                    |token, size, t| {
                        let call = self
                            .ec2
                            .describe_instances()
                            .set_filters(Some(filters.clone()))
                            .set_next_token(token)
                            .max_results(size)
                            .customize()
                            .config_override(timeouts(t));
                        async move {
                            let page = call
                                .send()
                                .await
                                .map_err(|e| classify("DescribeInstances", what, &e))?;
                            let items = page
                                .reservations()
                                .iter()
                                .flat_map(|r| {
                                    r.instances()
                                        .iter()
                                        .map(|i| self.observe_instance(i, r.owner_id()))
                                })
                                .collect();
                            Ok(Page {
                                items,
                                next: page.next_token().map(str::to_owned),
                            })
                        }
                    },
                )
                .await
            }
            ResourceKind::DbSubnetGroup | ResourceKind::DbInstance => {
                unreachable!("{kind} is an RDS resource")
            }
        }
    }

    pub(super) async fn inventory_vpcs(
        &self,
        cluster_id: &str,
    ) -> Result<Vec<Observed>, CloudError> {
        self.inventory_ec2(ResourceKind::Vpc, cluster_id).await
    }

    /// One paginated describe of `kind` with `filters`; `what` names the query in errors.
    async fn describe_ec2(
        &self,
        kind: ResourceKind,
        what: &str,
        filters: Vec<Filter>,
    ) -> Result<Vec<Observed>, CloudError> {
        let mut found = Vec::new();
        match kind {
            ResourceKind::Vpc => {
                let mut pages = self
                    .ec2
                    .describe_vpcs()
                    .set_filters(Some(filters))
                    .into_paginator()
                    .page_size(PAGE_SIZE)
                    .send();
                while let Some(page) = pages.next().await {
                    let page = page.map_err(|e| classify("DescribeVpcs", what, &e))?;
                    found.extend(page.vpcs().iter().map(|v| self.observe_vpc(v)));
                }
            }
            ResourceKind::Subnet => {
                let mut pages = self
                    .ec2
                    .describe_subnets()
                    .set_filters(Some(filters))
                    .into_paginator()
                    .page_size(PAGE_SIZE)
                    .send();
                while let Some(page) = pages.next().await {
                    let page = page.map_err(|e| classify("DescribeSubnets", what, &e))?;
                    found.extend(page.subnets().iter().map(observe_subnet));
                }
            }
            ResourceKind::SecurityGroup => {
                let mut pages = self
                    .ec2
                    .describe_security_groups()
                    .set_filters(Some(filters))
                    .into_paginator()
                    .page_size(PAGE_SIZE)
                    .send();
                while let Some(page) = pages.next().await {
                    let page = page.map_err(|e| classify("DescribeSecurityGroups", what, &e))?;
                    found.extend(page.security_groups().iter().map(|g| self.observe_group(g)));
                }
            }
            ResourceKind::Instance => {
                let mut filters = filters;
                filters.push(visible_instances());
                let mut pages = self
                    .ec2
                    .describe_instances()
                    .set_filters(Some(filters))
                    .into_paginator()
                    .page_size(PAGE_SIZE)
                    .send();
                while let Some(page) = pages.next().await {
                    let page = page.map_err(|e| classify("DescribeInstances", what, &e))?;
                    for reservation in page.reservations() {
                        found.extend(
                            reservation
                                .instances()
                                .iter()
                                .map(|i| self.observe_instance(i, reservation.owner_id())),
                        );
                    }
                }
            }
            ResourceKind::DbSubnetGroup | ResourceKind::DbInstance => {
                unreachable!("{kind} is an RDS resource")
            }
        }
        Ok(found)
    }

    pub(super) async fn create_vpc(
        &self,
        name: &str,
        cidr: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<Observed, CloudError> {
        let out = self
            .ec2
            .create_vpc()
            .cidr_block(cidr)
            .tag_specifications(tag_spec(ResourceType::Vpc, tags))
            // No client token exists for CreateVpc: an SDK retry after a lost response
            // would create a second VPC. The caller's next look-up-then-create is the
            // retry instead.
            .customize()
            .config_override(no_retries())
            .send()
            .await
            .map_err(|e| classify("CreateVpc", name, &e))?;
        let vpc = out.vpc().ok_or_else(|| missing("CreateVpc", name, "Vpc"))?;
        let observed = with_tags(self.observe_vpc(vpc), tags);
        tracing::info!(name, id = %observed.id, cidr, "created VPC");
        Ok(observed)
    }

    pub(super) async fn create_subnet(
        &self,
        name: &str,
        vpc_id: &str,
        cidr: &str,
        availability_zone: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<Observed, CloudError> {
        let out = self
            .ec2
            .create_subnet()
            .vpc_id(vpc_id)
            .cidr_block(cidr)
            .availability_zone(availability_zone)
            .tag_specifications(tag_spec(ResourceType::Subnet, tags))
            // As for CreateVpc: no client token, so no blind SDK retry.
            .customize()
            .config_override(no_retries())
            .send()
            .await
            .map_err(|e| classify("CreateSubnet", name, &e))?;
        let subnet = out
            .subnet()
            .ok_or_else(|| missing("CreateSubnet", name, "Subnet"))?;
        let observed = with_tags(observe_subnet(subnet), tags);
        tracing::info!(name, id = %observed.id, vpc_id, cidr, availability_zone, "created subnet");
        Ok(observed)
    }

    /// Creates the group named `name` in `vpc_id`, with no ingress rules (the compute
    /// group never gets any from pave: nothing in the spec asks for inbound access to
    /// instances, and access is the tenant's own decision; the database group's single
    /// rule is added by [`Aws::ensure_db_ingress`]). EC2's default egress (all) stays.
    pub(super) async fn create_security_group(
        &self,
        name: &str,
        vpc_id: &str,
        role: SecurityGroupRole,
        tags: &BTreeMap<String, String>,
    ) -> Result<Observed, CloudError> {
        let environment = tags
            .get(tags::ENVIRONMENT)
            .map(String::as_str)
            .unwrap_or("a pave environment");
        let description = match role {
            SecurityGroupRole::Compute => format!("pave: compute instances of {environment}"),
            SecurityGroupRole::Database => {
                format!("pave: database of {environment}, reachable from its compute group only")
            }
        };
        let result = self
            .ec2
            .create_security_group()
            .group_name(name)
            .description(description)
            .vpc_id(vpc_id)
            .tag_specifications(tag_spec(ResourceType::SecurityGroup, tags))
            .send()
            .await;
        match result {
            Ok(out) => {
                let id = out
                    .group_id()
                    .ok_or_else(|| missing("CreateSecurityGroup", name, "GroupId"))?;
                let mut observed = Observed {
                    id: id.to_owned(),
                    arn: out.security_group_arn().map(str::to_owned),
                    state: "available".to_owned(),
                    endpoint: None,
                    tags: tag_map(out.tags()),
                    attributes: BTreeMap::new(),
                };
                observed = with_tags(observed, tags);
                tracing::info!(name, id, vpc_id, ?role, "created security group");
                Ok(observed)
            }
            // The name is unique per VPC: the group exists but its tags did not match
            // (removed by hand, or not yet visible). Adopt it; reconcile restores tags.
            Err(e) if service_code(&e) == Some("InvalidGroup.Duplicate") => {
                let filters = vec![
                    Filter::builder().name("group-name").values(name).build(),
                    Filter::builder().name("vpc-id").values(vpc_id).build(),
                ];
                let existing = self
                    .describe_ec2(ResourceKind::SecurityGroup, name, filters)
                    .await?;
                existing.into_iter().next().ok_or_else(|| CloudError::Recoverable {
                    operation: "CreateSecurityGroup".into(),
                    resource: name.into(),
                    code: "InvalidGroup.Duplicate".into(),
                    message: format!(
                        "EC2 says a group named {name} exists in {vpc_id} but does not list it yet"
                    ),
                })
            }
            Err(e) => Err(classify("CreateSecurityGroup", name, &e)),
        }
    }

    /// Makes the database group's ingress exactly one rule: TCP `port` from the compute
    /// group (a source group, not a CIDR, so it follows instances as they come and go).
    /// Any other ingress found on it is revoked. Returns what changed.
    pub(super) async fn ensure_db_ingress(
        &self,
        name: &str,
        group_id: &str,
        compute_group_id: &str,
        port: u16,
    ) -> Result<Vec<String>, CloudError> {
        let out = self
            .ec2
            .describe_security_groups()
            .group_ids(group_id)
            .send()
            .await
            .map_err(|e| classify("DescribeSecurityGroups", name, &e))?;
        let Some(group) = out.security_groups().first() else {
            return Err(CloudError::Recoverable {
                operation: "DescribeSecurityGroups".into(),
                resource: name.into(),
                code: "InvalidGroup.NotFound".into(),
                message: format!("security group {group_id} is not visible yet"),
            });
        };
        let port = i32::from(port);
        let mut has_rule = false;
        let mut unwanted = Vec::new();
        for permission in group.ip_permissions() {
            let is_db_port = permission.ip_protocol() == Some("tcp")
                && permission.from_port() == Some(port)
                && permission.to_port() == Some(port);
            let (ours, others): (Vec<&UserIdGroupPair>, Vec<&UserIdGroupPair>) = permission
                .user_id_group_pairs()
                .iter()
                .partition(|pair| is_db_port && pair.group_id() == Some(compute_group_id));
            has_rule |= !ours.is_empty();
            if others.is_empty()
                && permission.ip_ranges().is_empty()
                && permission.ipv6_ranges().is_empty()
                && permission.prefix_list_ids().is_empty()
            {
                continue;
            }
            let pairs = others.into_iter().map(revocable).collect::<Vec<_>>();
            unwanted.push(
                IpPermission::builder()
                    .set_ip_protocol(permission.ip_protocol().map(str::to_owned))
                    .set_from_port(permission.from_port())
                    .set_to_port(permission.to_port())
                    .set_ip_ranges(non_empty(permission.ip_ranges()))
                    .set_ipv6_ranges(non_empty(permission.ipv6_ranges()))
                    .set_prefix_list_ids(non_empty(permission.prefix_list_ids()))
                    .set_user_id_group_pairs((!pairs.is_empty()).then_some(pairs))
                    .build(),
            );
        }

        let mut changes = Vec::new();
        if !unwanted.is_empty() {
            let described: Vec<String> = unwanted.iter().map(describe_permission).collect();
            self.ec2
                .revoke_security_group_ingress()
                .group_id(group_id)
                .set_ip_permissions(Some(unwanted))
                .send()
                .await
                .map_err(|e| classify("RevokeSecurityGroupIngress", name, &e))?;
            tracing::info!(name, group_id, revoked = ?described, "revoked ingress the database group must not have");
            changes.push(format!(
                "SecurityGroup {name}: revoked ingress {} (the database is reachable from the compute group only)",
                described.join(", ")
            ));
        }
        if !has_rule {
            let rule = IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(port)
                .to_port(port)
                .user_id_group_pairs(
                    UserIdGroupPair::builder()
                        .group_id(compute_group_id)
                        .description("pave: database port from the compute group")
                        .build(),
                )
                .build();
            let result = self
                .ec2
                .authorize_security_group_ingress()
                .group_id(group_id)
                .ip_permissions(rule)
                .send()
                .await;
            match result {
                // Someone (a concurrent reconcile) added it since the describe.
                Err(e) if service_code(&e) == Some("InvalidPermission.Duplicate") => {}
                Err(e) => return Err(classify("AuthorizeSecurityGroupIngress", name, &e)),
                Ok(_) => {
                    tracing::info!(
                        name,
                        group_id,
                        port,
                        compute_group_id,
                        "authorized database ingress from compute"
                    );
                    changes.push(format!(
                        "SecurityGroup {name}: allowed TCP {port} from compute group {compute_group_id}"
                    ));
                }
            }
        }
        Ok(changes)
    }

    /// Launches one instance. `ClientToken` = the deterministic name makes a repeated
    /// call (an SDK retry, or a retry after a crash that the tag look-up missed)
    /// answer with the instance already launched instead of a second one. AWS keeps
    /// answering a token with its instance even after that instance terminated; then a
    /// new token derived from the dead instance's id (deterministic again, so a crash
    /// right after still does not duplicate) launches the replacement.
    pub(super) async fn run_instance(
        &self,
        name: &str,
        instance_type: &str,
        image_id: &str,
        subnet_id: &str,
        security_group_id: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<Observed, CloudError> {
        let mut token = name.to_owned();
        for _ in 0..MAX_DEAD_TOKEN_ANSWERS {
            let out = self
                .ec2
                .run_instances()
                .client_token(&token)
                .image_id(image_id)
                .instance_type(InstanceType::from(instance_type))
                .min_count(1)
                .max_count(1)
                .subnet_id(subnet_id)
                .security_group_ids(security_group_id)
                .tag_specifications(tag_spec(ResourceType::Instance, tags))
                // The root volume is billed to the environment too.
                .tag_specifications(tag_spec(ResourceType::Volume, tags))
                .send()
                .await
                .map_err(|e| classify("RunInstances", name, &e))?;
            let instance = out
                .instances()
                .first()
                .ok_or_else(|| missing("RunInstances", name, "Instances"))?;
            let observed = with_tags(self.observe_instance(instance, out.owner_id()), tags);
            if is_live_instance(&observed.state) {
                tracing::info!(name, id = %observed.id, instance_type, image_id, subnet_id, "launched instance");
                return Ok(observed);
            }
            tracing::info!(name, dead = %observed.id, "client token answered with a terminated instance; launching a replacement");
            token = derived_token(name, &observed.id);
        }
        Err(CloudError::Recoverable {
            operation: "RunInstances".into(),
            resource: name.into(),
            code: "InstanceTerminated".into(),
            message: format!(
                "RunInstances answered {MAX_DEAD_TOKEN_ANSWERS} times with an instance that is already shutting down"
            ),
        })
    }

    pub(super) async fn delete_vpc(&self, id: &str) -> Result<bool, CloudError> {
        if unless_not_found(
            "DeleteVpc",
            id,
            self.ec2.delete_vpc().vpc_id(id).send().await,
        )?
        .is_some()
        {
            tracing::info!(id, "deleted VPC");
        }
        Ok(true)
    }

    pub(super) async fn delete_subnet(&self, id: &str) -> Result<bool, CloudError> {
        if unless_not_found(
            "DeleteSubnet",
            id,
            self.ec2.delete_subnet().subnet_id(id).send().await,
        )?
        .is_some()
        {
            tracing::info!(id, "deleted subnet");
        }
        Ok(true)
    }

    /// Revokes every rule in another group that names this one as its source (AWS
    /// refuses to delete a referenced group; pave's database group references the
    /// compute group), then deletes it.
    pub(super) async fn delete_security_group(&self, id: &str) -> Result<bool, CloudError> {
        let referencing = Filter::builder()
            .name("ip-permission.group-id")
            .values(id)
            .build();
        let mut pages = self
            .ec2
            .describe_security_groups()
            .filters(referencing)
            .into_paginator()
            .send();
        let mut referrers: Vec<SecurityGroup> = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("DescribeSecurityGroups", id, &e))?;
            referrers.extend(page.security_groups().iter().cloned());
        }
        for group in referrers {
            let Some(group_id) = group.group_id().filter(|g| *g != id) else {
                continue;
            };
            let permissions: Vec<IpPermission> = group
                .ip_permissions()
                .iter()
                .filter(|p| {
                    p.user_id_group_pairs()
                        .iter()
                        .any(|pair| pair.group_id() == Some(id))
                })
                .map(|p| {
                    IpPermission::builder()
                        .set_ip_protocol(p.ip_protocol().map(str::to_owned))
                        .set_from_port(p.from_port())
                        .set_to_port(p.to_port())
                        .set_user_id_group_pairs(Some(
                            p.user_id_group_pairs()
                                .iter()
                                .filter(|pair| pair.group_id() == Some(id))
                                .map(revocable)
                                .collect(),
                        ))
                        .build()
                })
                .collect();
            if permissions.is_empty() {
                continue;
            }
            let revoked = self
                .ec2
                .revoke_security_group_ingress()
                .group_id(group_id)
                .set_ip_permissions(Some(permissions))
                .send()
                .await;
            if unless_not_found("RevokeSecurityGroupIngress", group_id, revoked)?.is_some() {
                tracing::info!(
                    id,
                    referrer = group_id,
                    "revoked rules that reference the group"
                );
            }
        }
        if unless_not_found(
            "DeleteSecurityGroup",
            id,
            self.ec2.delete_security_group().group_id(id).send().await,
        )?
        .is_some()
        {
            tracing::info!(id, "deleted security group");
        }
        Ok(true)
    }

    /// Terminating is asynchronous (`shutting-down`, then `terminated`), so: look,
    /// terminate unless already on the way out, look again; only `terminated` (or an
    /// id EC2 no longer knows) is gone. The answer of TerminateInstances itself is not
    /// trusted for that: moto 5.2.5 always answers `shutting-down`, even for an
    /// instance that is already terminated.
    pub(super) async fn terminate_instance(&self, id: &str) -> Result<bool, CloudError> {
        match self.instance_state(id).await?.as_deref() {
            None | Some("terminated") => return Ok(true),
            Some("shutting-down") => {}
            Some(_) => {
                let answer = self.ec2.terminate_instances().instance_ids(id).send().await;
                if unless_not_found("TerminateInstances", id, answer)?.is_none() {
                    return Ok(true);
                }
                tracing::info!(id, "terminating instance");
            }
        }
        Ok(matches!(
            self.instance_state(id).await?.as_deref(),
            None | Some("terminated")
        ))
    }

    /// The instance's state, `None` if EC2 does not know the id (any more).
    async fn instance_state(&self, id: &str) -> Result<Option<String>, CloudError> {
        let answer = self.ec2.describe_instances().instance_ids(id).send().await;
        Ok(
            unless_not_found("DescribeInstances", id, answer)?.and_then(|out| {
                out.reservations()
                    .iter()
                    .flat_map(|r| r.instances())
                    .find(|i| i.instance_id() == Some(id))
                    .and_then(|i| i.state())
                    .and_then(|s| s.name())
                    .map(|s| s.as_str().to_owned())
            }),
        )
    }

    pub(super) async fn tag_ec2(
        &self,
        name: &str,
        id: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        self.ec2
            .create_tags()
            .resources(id)
            .set_tags(Some(ec2_tags(tags)))
            .send()
            .await
            .map_err(|e| classify("CreateTags", name, &e))?;
        Ok(())
    }

    fn observe_vpc(&self, vpc: &Vpc) -> Observed {
        let id = vpc.vpc_id().unwrap_or_default().to_owned();
        Observed {
            arn: self.arn("ec2", vpc.owner_id(), &format!("vpc/{id}")),
            state: vpc
                .state()
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
            endpoint: None,
            tags: tag_map(vpc.tags()),
            attributes: attributes([(attr::CIDR, vpc.cidr_block())]),
            id,
        }
    }

    fn observe_group(&self, group: &SecurityGroup) -> Observed {
        let id = group.group_id().unwrap_or_default().to_owned();
        let ingress = ingress_rules(group.ip_permissions());
        Observed {
            arn: group
                .security_group_arn()
                .map(str::to_owned)
                .or_else(|| self.arn("ec2", group.owner_id(), &format!("security-group/{id}"))),
            // Security groups have no lifecycle: existing is all there is.
            state: "available".to_owned(),
            endpoint: None,
            tags: tag_map(group.tags()),
            attributes: attributes([
                (attr::VPC_ID, group.vpc_id()),
                (attr::INGRESS, Some(ingress.as_str())),
            ]),
            id,
        }
    }

    fn observe_instance(&self, instance: &Instance, owner: Option<&str>) -> Observed {
        let id = instance.instance_id().unwrap_or_default().to_owned();
        Observed {
            arn: self.arn("ec2", owner, &format!("instance/{id}")),
            state: instance
                .state()
                .and_then(|s| s.name())
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
            endpoint: None,
            tags: tag_map(instance.tags()),
            attributes: attributes([
                (
                    attr::INSTANCE_TYPE,
                    instance.instance_type().map(|t| t.as_str()),
                ),
                (attr::IMAGE_ID, instance.image_id()),
                (attr::SUBNET_ID, instance.subnet_id()),
            ]),
            id,
        }
    }
}

fn observe_subnet(subnet: &Subnet) -> Observed {
    Observed {
        id: subnet.subnet_id().unwrap_or_default().to_owned(),
        arn: subnet.subnet_arn().map(str::to_owned),
        state: subnet
            .state()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        endpoint: None,
        tags: tag_map(subnet.tags()),
        attributes: attributes([
            (attr::CIDR, subnet.cidr_block()),
            (attr::AVAILABILITY_ZONE, subnet.availability_zone()),
            (attr::VPC_ID, subnet.vpc_id()),
        ]),
    }
}

/// A create's answer may omit the tags it was given (they are applied, but not all
/// APIs echo them); report what was applied then.
fn with_tags(mut observed: Observed, applied: &BTreeMap<String, String>) -> Observed {
    if observed.tags.is_empty() {
        observed.tags = applied.clone();
    }
    observed
}

/// The instance states a look-up or listing reports, as a filter.
fn visible_instances() -> Filter {
    Filter::builder()
        .name("instance-state-name")
        .set_values(Some(VISIBLE_INSTANCE_STATES.map(String::from).to_vec()))
        .build()
}

/// An EC2 describe filter on one attribute.
pub(super) fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

fn tag_filter(key: &str, value: &str) -> Filter {
    Filter::builder()
        .name(format!("tag:{key}"))
        .values(value)
        .build()
}

fn tag_spec(resource_type: ResourceType, tags: &BTreeMap<String, String>) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(resource_type)
        .set_tags(Some(ec2_tags(tags)))
        .build()
}

fn ec2_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

fn tag_map(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_owned(),
                t.value().unwrap_or_default().to_owned(),
            ))
        })
        .collect()
}

/// A source-group pair as RevokeSecurityGroupIngress should name it: as described,
/// description included. AWS matches rules without the description, but moto 5.2.5
/// compares the whole pair and answers `InvalidPermission.NotFound` without it.
fn revocable(pair: &UserIdGroupPair) -> UserIdGroupPair {
    UserIdGroupPair::builder()
        .set_group_id(pair.group_id().map(str::to_owned))
        .set_user_id(pair.user_id().map(str::to_owned))
        .set_description(pair.description().map(str::to_owned))
        .build()
}

fn non_empty<T: Clone>(items: &[T]) -> Option<Vec<T>> {
    (!items.is_empty()).then(|| items.to_vec())
}

fn no_retries() -> aws_sdk_ec2::config::Builder {
    aws_sdk_ec2::config::Builder::default()
        .retry_config(aws_sdk_ec2::config::retry::RetryConfig::disabled())
}

/// `name-<dead instance id>`, cut from the left of `name` to fit RunInstances' limit.
fn derived_token(name: &str, dead_instance_id: &str) -> String {
    let room = MAX_CLIENT_TOKEN_LEN.saturating_sub(dead_instance_id.len() + 1);
    let prefix: String = name.chars().take(room).collect();
    format!("{prefix}-{dead_instance_id}")
}

/// A permission as people read it in an Event: `tcp 5432 from 0.0.0.0/0, sg-123`.
/// A group's ingress as [`attr::INGRESS`] has it: one `protocol ports from source` per
/// source, sorted, `; `-separated, so two descriptions of the same rules compare equal
/// however AWS groups them.
pub(super) fn ingress_rules(permissions: &[IpPermission]) -> String {
    let mut rules: Vec<String> = permissions
        .iter()
        .flat_map(|p| {
            let protocol = p.ip_protocol().unwrap_or("?");
            let ports = ports(p);
            sources(p).map(move |source| format!("{protocol} {ports} from {source}"))
        })
        .collect();
    rules.sort();
    rules.join("; ")
}

fn describe_permission(p: &IpPermission) -> String {
    format!(
        "{} {} from {}",
        p.ip_protocol().unwrap_or("?"),
        ports(p),
        sources(p).collect::<Vec<_>>().join(", ")
    )
}

/// `5432`, `0-65535`, or `all`.
fn ports(p: &IpPermission) -> String {
    match (p.from_port(), p.to_port()) {
        (Some(a), Some(b)) if a == b => a.to_string(),
        (Some(a), Some(b)) => format!("{a}-{b}"),
        _ => "all".to_owned(),
    }
}

/// Every source a rule admits: CIDRs, prefix lists, security groups.
fn sources(p: &IpPermission) -> impl Iterator<Item = &str> {
    p.ip_ranges()
        .iter()
        .filter_map(|r| r.cidr_ip())
        .chain(p.ipv6_ranges().iter().filter_map(|r| r.cidr_ipv6()))
        .chain(
            p.prefix_list_ids()
                .iter()
                .filter_map(|r| r.prefix_list_id()),
        )
        .chain(p.user_id_group_pairs().iter().filter_map(|r| r.group_id()))
}

fn missing(operation: &str, resource: &str, field: &str) -> CloudError {
    CloudError::Recoverable {
        operation: operation.into(),
        resource: resource.into(),
        code: "IncompleteResponse".into(),
        message: format!("the answer has no {field}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_tokens_fit_the_limit_and_differ_per_dead_instance() {
        let long = "pave-".repeat(20);
        let a = derived_token(&long, "i-0123456789abcdef0");
        let b = derived_token(&long, "i-0123456789abcdef1");
        assert!(a.len() <= MAX_CLIENT_TOKEN_LEN, "{a}");
        assert!(a.ends_with("-i-0123456789abcdef0"));
        assert_ne!(a, b);
        assert_eq!(derived_token("pave-ab12-vm-0", "i-1"), "pave-ab12-vm-0-i-1");
    }
}
