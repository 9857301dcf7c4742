//! The RDS half of the driver: the DB subnet group and the DB instance.
//!
//! RDS identifiers are the deterministic names themselves, unique per account and
//! region, so RDS gives idempotency for free: a second create answers
//! `DBInstanceAlreadyExists` / `DBSubnetGroupAlreadyExists`. The catch is that the
//! name could be held by something else; a resource of that name whose
//! `pave.dev/environment-uid` tag is not this environment's is never adopted.

use std::collections::BTreeMap;

use aws_sdk_rds::types::{DbInstance, DbSubnetGroup, Tag};

use super::error::{classify, redact, service_code, unless_not_found};
use super::paging::{self, Page, RDS_PAGES};
use super::{Aws, attr, attributes};
use crate::model::{CloudError, Desired, Observed, ResourceKind, ResourceSpec, tags};

impl Aws {
    pub(super) async fn find_db_subnet_group(
        &self,
        name: &str,
        environment_uid: &str,
    ) -> Result<Option<Observed>, CloudError> {
        let result = self
            .rds
            .describe_db_subnet_groups()
            .db_subnet_group_name(name)
            .send()
            .await;
        let Some(out) = unless_not_found("DescribeDBSubnetGroups", name, result)? else {
            return Ok(None);
        };
        let Some(group) = out.db_subnet_groups().first() else {
            return Ok(None);
        };
        // DescribeDBSubnetGroups carries no tags.
        let tags = self.list_tags(name, group.db_subnet_group_arn()).await?;
        let observed = observe_subnet_group(group, tags);
        check_owner(
            ResourceKind::DbSubnetGroup,
            name,
            &observed,
            environment_uid,
        )?;
        Ok(Some(observed))
    }

    pub(super) async fn create_db_subnet_group(
        &self,
        name: &str,
        subnet_ids: &[String],
        tags: &BTreeMap<String, String>,
        environment_uid: &str,
    ) -> Result<Observed, CloudError> {
        let environment = tags
            .get(tags::ENVIRONMENT)
            .map(String::as_str)
            .unwrap_or("a pave environment");
        let result = self
            .rds
            .create_db_subnet_group()
            .db_subnet_group_name(name)
            .db_subnet_group_description(format!("pave: database subnets of {environment}"))
            .set_subnet_ids(Some(subnet_ids.to_vec()))
            .set_tags(Some(rds_tags(tags)))
            .send()
            .await;
        match result {
            Ok(out) => {
                let group = out
                    .db_subnet_group()
                    .ok_or_else(|| missing("CreateDBSubnetGroup", name, "DBSubnetGroup"))?;
                tracing::info!(name, ?subnet_ids, "created DB subnet group");
                Ok(observe_subnet_group(group, tags.clone()))
            }
            Err(e)
                if service_code(&e)
                    .is_some_and(|c| c.starts_with("DBSubnetGroupAlreadyExists")) =>
            {
                self.find_db_subnet_group(name, environment_uid)
                    .await?
                    .ok_or_else(|| not_visible("CreateDBSubnetGroup", name))
            }
            Err(e) => Err(classify("CreateDBSubnetGroup", name, &e)),
        }
    }

    pub(super) async fn find_db_instance(
        &self,
        name: &str,
        environment_uid: &str,
    ) -> Result<Option<Observed>, CloudError> {
        let Some(instance) = self.describe_db_instance(name).await? else {
            return Ok(None);
        };
        let observed = observe_db_instance(&instance);
        check_owner(ResourceKind::DbInstance, name, &observed, environment_uid)?;
        Ok(Some(observed))
    }

    async fn describe_db_instance(&self, name: &str) -> Result<Option<DbInstance>, CloudError> {
        let result = self
            .rds
            .describe_db_instances()
            .db_instance_identifier(name)
            .send()
            .await;
        Ok(unless_not_found("DescribeDBInstances", name, result)?
            .and_then(|out| out.db_instances().first().cloned()))
    }

    /// The master password goes to AWS and nowhere else: not into logs (the SDK's
    /// Debug output redacts it too) and not into errors ([`redact`]).
    pub(super) async fn create_db_instance(
        &self,
        desired: &Desired,
        subnet_group: &str,
        security_group_id: &str,
        password: &str,
        tags: &BTreeMap<String, String>,
        environment_uid: &str,
    ) -> Result<Observed, CloudError> {
        let ResourceSpec::DbInstance {
            class,
            engine,
            engine_version,
            storage_gib,
            database_name,
            username,
            ..
        } = &desired.spec
        else {
            unreachable!("create_db_instance is called for DB instances only");
        };
        let name = desired.name.as_str();
        let result = self
            .rds
            .create_db_instance()
            .db_instance_identifier(name)
            .db_instance_class(class)
            .engine(engine)
            .set_engine_version(engine_version.clone())
            .allocated_storage(*storage_gib)
            .db_subnet_group_name(subnet_group)
            .vpc_security_group_ids(security_group_id)
            .master_username(username)
            .master_user_password(password)
            .db_name(database_name)
            // Reachable from the compute group inside the VPC only.
            .publicly_accessible(false)
            .set_tags(Some(rds_tags(tags)))
            .send()
            .await;
        match result {
            Ok(out) => {
                let instance = out
                    .db_instance()
                    .ok_or_else(|| missing("CreateDBInstance", name, "DBInstance"))?;
                let mut observed = observe_db_instance(instance);
                if observed.tags.is_empty() {
                    observed.tags = tags.clone();
                }
                tracing::info!(name, class, engine, storage_gib, state = %observed.state, "created DB instance");
                Ok(observed)
            }
            Err(e)
                if service_code(&e).is_some_and(|c| c.starts_with("DBInstanceAlreadyExists")) =>
            {
                self.find_db_instance(name, environment_uid)
                    .await?
                    .ok_or_else(|| not_visible("CreateDBInstance", name))
            }
            Err(e) => Err(redact(classify("CreateDBInstance", name, &e), password)),
        }
    }

    /// Applies a changed class and grown storage at once (ApplyImmediately: a
    /// development environment prefers a short restart now to a surprise in the next
    /// maintenance window). Compares against pending modifications too, so a change
    /// AWS is still applying is not requested twice. An instance that is busy
    /// (`creating`, `modifying`, `backing-up`, …) is left alone: RDS would refuse, and
    /// the next reconcile tries again.
    ///
    /// A `dbEngineVersion` is an upgrade target: `16` is met by any 16.x, `16.4` by
    /// exactly that; a newer one is applied (a major upgrade explicitly allowed, since
    /// the spec asks for it), an older one is Terminal, because RDS cannot downgrade a
    /// database in place and pave does not replace one to get there.
    pub(super) async fn modify_db_instance(
        &self,
        name: &str,
        class: &str,
        storage_gib: i32,
        engine_version: Option<&str>,
    ) -> Result<Vec<String>, CloudError> {
        let Some(instance) = self.describe_db_instance(name).await? else {
            return Err(CloudError::Recoverable {
                operation: "ModifyDBInstance".into(),
                resource: name.into(),
                code: "DBInstanceNotFound".into(),
                message: "the DB instance does not exist (any more); it will be created again"
                    .into(),
            });
        };
        let status = instance.db_instance_status().unwrap_or_default();
        if status != "available" {
            tracing::debug!(name, status, "DB instance busy; modification deferred");
            return Ok(Vec::new());
        }
        let pending = instance.pending_modified_values();
        let current_class = pending
            .and_then(|p| p.db_instance_class())
            .or(instance.db_instance_class())
            .unwrap_or_default();
        let current_storage = pending
            .and_then(|p| p.allocated_storage())
            .or(instance.allocated_storage())
            .unwrap_or_default();

        let mut request = self
            .rds
            .modify_db_instance()
            .db_instance_identifier(name)
            .apply_immediately(true);
        let mut changes = Vec::new();
        if current_class != class {
            request = request.db_instance_class(class);
            changes.push(format!(
                "DBInstance {name}: class {current_class} → {class}"
            ));
        }
        if storage_gib > current_storage {
            request = request.allocated_storage(storage_gib);
            changes.push(format!(
                "DBInstance {name}: storage {current_storage} GiB → {storage_gib} GiB"
            ));
        } else if storage_gib < current_storage {
            // RDS cannot shrink storage; the API rejects such specs, so this is drift
            // made outside pave, and harmless.
            tracing::warn!(
                name,
                current_storage,
                storage_gib,
                "DB storage is larger than the spec; RDS cannot shrink it"
            );
        }
        let current_version = pending
            .and_then(|p| p.engine_version())
            .or(instance.engine_version())
            .unwrap_or_default();
        match engine_version.map(|wanted| (wanted, version_change(wanted, current_version))) {
            None | Some((_, VersionChange::None)) => {}
            Some((wanted, VersionChange::Downgrade)) => {
                return Err(CloudError::Terminal {
                    operation: "ModifyDBInstance".into(),
                    resource: name.into(),
                    code: "EngineVersionDowngrade".into(),
                    message: format!(
                        "dbEngineVersion {wanted} is older than {current_version}, which the \
                         database runs; RDS cannot downgrade a database in place: set \
                         dbEngineVersion to {current_version} or later"
                    ),
                });
            }
            Some((wanted, VersionChange::Upgrade { major })) => {
                request = request
                    .engine_version(wanted)
                    .allow_major_version_upgrade(major);
                changes.push(format!(
                    "DBInstance {name}: engine version {current_version} → {wanted}"
                ));
            }
        }
        if changes.is_empty() {
            return Ok(changes);
        }
        request
            .send()
            .await
            .map_err(|e| classify("ModifyDBInstance", name, &e))?;
        tracing::info!(name, ?changes, "modified DB instance");
        Ok(changes)
    }

    pub(super) async fn delete_db_subnet_group(&self, name: &str) -> Result<bool, CloudError> {
        let answer = self
            .rds
            .delete_db_subnet_group()
            .db_subnet_group_name(name)
            .send()
            .await;
        if unless_not_found("DeleteDBSubnetGroup", name, answer)?.is_some() {
            tracing::info!(name, "deleted DB subnet group");
        }
        Ok(true)
    }

    /// Look first, so an instance already `deleting` is not asked again (RDS answers
    /// that with InvalidDBInstanceState); look again after asking, because RDS deletes
    /// asynchronously and only a describe that finds nothing means gone.
    pub(super) async fn delete_db_instance(&self, name: &str) -> Result<bool, CloudError> {
        let Some(instance) = self.describe_db_instance(name).await? else {
            return Ok(true);
        };
        if instance.db_instance_status() != Some("deleting") {
            let answer = self
                .rds
                .delete_db_instance()
                .db_instance_identifier(name)
                .skip_final_snapshot(true)
                .delete_automated_backups(true)
                .send()
                .await;
            if unless_not_found("DeleteDBInstance", name, answer)?.is_none() {
                return Ok(true);
            }
            tracing::info!(name, "deleting DB instance");
        }
        Ok(self.describe_db_instance(name).await?.is_none())
    }

    /// DB instances of the cluster: DescribeDBInstances has no tag filter, but its
    /// answer carries every instance's tags, so one paginated call suffices (pages with
    /// a timeout each, see `paging`).
    pub(super) async fn inventory_db_instances(
        &self,
        cluster_id: &str,
    ) -> Result<Vec<Observed>, CloudError> {
        let what = format!("DB instances of cluster {cluster_id}");
        let what = what.as_str();
        let operation = "DescribeDBInstances";
        paging::list(
            operation,
            what,
            RDS_PAGES,
            self.page_timeout,
            |marker, size, t| {
                let call = self
                    .rds
                    .describe_db_instances()
                    .set_marker(marker)
                    .max_records(size)
                    .customize()
                    .config_override(aws_sdk_rds::config::Builder::default().timeout_config(t));
                async move {
                    let page = call
                        .send()
                        .await
                        .map_err(|e| classify(operation, what, &e))?;
                    Ok(Page {
                        items: page
                            .db_instances()
                            .iter()
                            .map(observe_db_instance)
                            .filter(|o| {
                                o.tags.get(tags::CLUSTER).map(String::as_str) == Some(cluster_id)
                            })
                            .collect(),
                        next: page.marker().map(str::to_owned),
                    })
                }
            },
        )
        .await
    }

    /// DB subnet groups of the cluster. Their describe has neither tags nor a tag
    /// filter, and asking for each group's tags would make the inventory cost grow with
    /// the number of environments. So a group inside one of the cluster's VPCs is
    /// reported with its VPC's environment tags and its own name: every group pave
    /// creates lives in its environment's VPC. (Its own tags are set at creation and
    /// restored by `reconcile`; drift of a subnet group's tags alone goes unseen here.)
    /// A group whose VPC is gone is not seen: pave deletes a subnet group before the
    /// subnets and the VPC, and AWS will not delete a VPC that still has subnets.
    pub(super) async fn inventory_db_subnet_groups(
        &self,
        cluster_id: &str,
        cluster_vpcs: &[Observed],
    ) -> Result<Vec<Observed>, CloudError> {
        if cluster_vpcs.is_empty() {
            return Ok(Vec::new());
        }
        let what = format!("DB subnet groups of cluster {cluster_id}");
        let what = what.as_str();
        let operation = "DescribeDBSubnetGroups";
        paging::list(
            operation,
            what,
            RDS_PAGES,
            self.page_timeout,
            |marker, size, t| {
                let call = self
                    .rds
                    .describe_db_subnet_groups()
                    .set_marker(marker)
                    .max_records(size)
                    .customize()
                    .config_override(aws_sdk_rds::config::Builder::default().timeout_config(t));
                async move {
                    let page = call
                        .send()
                        .await
                        .map_err(|e| classify(operation, what, &e))?;
                    let mut found = Vec::new();
                    for group in page.db_subnet_groups() {
                        let Some(vpc) = group
                            .vpc_id()
                            .and_then(|v| cluster_vpcs.iter().find(|o| o.id == v))
                        else {
                            continue;
                        };
                        let name = group.db_subnet_group_name().unwrap_or_default();
                        let mut tags = vpc.tags.clone();
                        tags.insert(tags::NAME.to_owned(), name.to_owned());
                        tags.insert(tags::AWS_NAME.to_owned(), name.to_owned());
                        found.push(observe_subnet_group(group, tags));
                    }
                    Ok(Page {
                        items: found,
                        next: page.marker().map(str::to_owned),
                    })
                }
            },
        )
        .await
    }

    async fn list_tags(
        &self,
        name: &str,
        arn: Option<&str>,
    ) -> Result<BTreeMap<String, String>, CloudError> {
        let Some(arn) = arn else {
            return Ok(BTreeMap::new());
        };
        let out = self
            .rds
            .list_tags_for_resource()
            .resource_name(arn)
            .send()
            .await
            .map_err(|e| classify("ListTagsForResource", name, &e))?;
        Ok(tag_map(out.tag_list()))
    }

    /// RDS tags by ARN; an `observed` without one (built by hand) is described first.
    pub(super) async fn tag_rds(
        &self,
        kind: ResourceKind,
        name: &str,
        observed: &Observed,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        let arn = match &observed.arn {
            Some(arn) => arn.clone(),
            None => {
                let arn = match kind {
                    ResourceKind::DbInstance => self
                        .describe_db_instance(&observed.id)
                        .await?
                        .and_then(|i| i.db_instance_arn().map(str::to_owned)),
                    _ => self
                        .rds
                        .describe_db_subnet_groups()
                        .db_subnet_group_name(&observed.id)
                        .send()
                        .await
                        .map_err(|e| classify("DescribeDBSubnetGroups", name, &e))?
                        .db_subnet_groups()
                        .first()
                        .and_then(|g| g.db_subnet_group_arn().map(str::to_owned)),
                };
                arn.ok_or_else(|| not_visible("AddTagsToResource", name))?
            }
        };
        self.rds
            .add_tags_to_resource()
            .resource_name(arn)
            .set_tags(Some(rds_tags(tags)))
            .send()
            .await
            .map_err(|e| classify("AddTagsToResource", name, &e))?;
        Ok(())
    }
}

/// Refuses a resource that holds this name for another environment (or for nobody pave
/// knows): adopting it would give one environment another's database.
fn check_owner(
    kind: ResourceKind,
    name: &str,
    observed: &Observed,
    environment_uid: &str,
) -> Result<(), CloudError> {
    match observed.tags.get(tags::ENVIRONMENT_UID) {
        Some(uid) if uid == environment_uid => Ok(()),
        owner => Err(CloudError::Terminal {
            operation: format!("Find{kind}"),
            resource: name.into(),
            code: "NameConflict".into(),
            message: format!(
                "an RDS {kind} named {name} already exists and belongs to {}; pave will not adopt it. Delete or rename it, or tag it {}={environment_uid} if it really is this environment's",
                match owner {
                    Some(uid) => format!("environment uid {uid}"),
                    None => "no pave environment (it has no environment-uid tag)".to_owned(),
                },
                tags::ENVIRONMENT_UID,
            ),
        }),
    }
}

fn observe_subnet_group(group: &DbSubnetGroup, tags: BTreeMap<String, String>) -> Observed {
    Observed {
        id: group.db_subnet_group_name().unwrap_or_default().to_owned(),
        arn: group.db_subnet_group_arn().map(str::to_owned),
        state: group.subnet_group_status().unwrap_or("Complete").to_owned(),
        endpoint: None,
        tags,
        attributes: attributes([(attr::VPC_ID, group.vpc_id())]),
    }
}

fn observe_db_instance(instance: &DbInstance) -> Observed {
    let endpoint = instance.endpoint().and_then(|e| {
        let port = u16::try_from(e.port()?).ok()?;
        Some((e.address()?.to_owned(), port))
    });
    // A modification RDS is still applying counts as done: drift checks compare with
    // where the instance is going, so they do not ask for the same change twice.
    let pending = instance.pending_modified_values();
    let class = pending
        .and_then(|p| p.db_instance_class())
        .or(instance.db_instance_class());
    let storage = pending
        .and_then(|p| p.allocated_storage())
        .or(instance.allocated_storage())
        .map(|gib| gib.to_string());
    Observed {
        id: instance
            .db_instance_identifier()
            .unwrap_or_default()
            .to_owned(),
        arn: instance.db_instance_arn().map(str::to_owned),
        state: instance.db_instance_status().unwrap_or_default().to_owned(),
        endpoint,
        tags: tag_map(instance.tag_list()),
        attributes: attributes([
            (attr::CLASS, class),
            (attr::STORAGE, storage.as_deref()),
            (attr::ENGINE, instance.engine()),
            (attr::ENGINE_VERSION, instance.engine_version()),
        ]),
    }
}

fn rds_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
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

fn missing(operation: &str, resource: &str, field: &str) -> CloudError {
    CloudError::Recoverable {
        operation: operation.into(),
        resource: resource.into(),
        code: "IncompleteResponse".into(),
        message: format!("the answer has no {field}"),
    }
}

/// RDS said the name exists, then a describe did not find it: eventual consistency,
/// or a delete in between. Either way, the next attempt sorts it out.
fn not_visible(operation: &str, name: &str) -> CloudError {
    CloudError::Recoverable {
        operation: operation.into(),
        resource: name.into(),
        code: "NotVisibleYet".into(),
        message: format!("{name} exists according to RDS but cannot be described yet"),
    }
}

/// What reaching engine version `wanted` from `running` takes.
#[derive(Debug, PartialEq, Eq)]
enum VersionChange {
    /// `running` is `wanted`, or within it (`16.3` is within `16`).
    None,
    Upgrade {
        major: bool,
    },
    Downgrade,
}

/// Compares dotted versions part by part, numerically where both parts are numbers.
fn version_change(wanted: &str, running: &str) -> VersionChange {
    let parts = |v: &str| v.split('.').map(str::to_owned).collect::<Vec<_>>();
    let (wanted_parts, running_parts) = (parts(wanted), parts(running));
    let within = running_parts.len() >= wanted_parts.len()
        && wanted_parts.iter().zip(&running_parts).all(|(w, r)| w == r);
    if within {
        return VersionChange::None;
    }
    let order = wanted_parts
        .iter()
        .zip(&running_parts)
        .map(|(w, r)| match (w.parse::<u64>(), r.parse::<u64>()) {
            (Ok(w), Ok(r)) => w.cmp(&r),
            _ => w.cmp(r),
        })
        .find(|o| o.is_ne())
        .unwrap_or_else(|| wanted_parts.len().cmp(&running_parts.len()));
    if order.is_lt() {
        VersionChange::Downgrade
    } else {
        VersionChange::Upgrade {
            major: wanted_parts.first() != running_parts.first(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_is_met_by_itself_and_by_what_it_contains() {
        assert_eq!(version_change("16", "16.3"), VersionChange::None);
        assert_eq!(version_change("16.3", "16.3"), VersionChange::None);
        assert_eq!(version_change("8.0", "8.0.35"), VersionChange::None);
    }

    #[test]
    fn newer_is_an_upgrade_and_says_whether_major() {
        assert_eq!(
            version_change("16.4", "16.3"),
            VersionChange::Upgrade { major: false }
        );
        assert_eq!(
            version_change("16.10", "16.9"),
            VersionChange::Upgrade { major: false },
            "numerically, not as text"
        );
        assert_eq!(
            version_change("17", "16.3"),
            VersionChange::Upgrade { major: true }
        );
    }

    #[test]
    fn older_is_a_downgrade() {
        assert_eq!(version_change("15.4", "16.3"), VersionChange::Downgrade);
        assert_eq!(version_change("16.2", "16.10"), VersionChange::Downgrade);
        assert_eq!(version_change("16.3", "16.3.1"), VersionChange::None);
    }
}
