//! The drift check: one listing per region per resync, and a reconcile for each
//! environment whose resources drifted from its plan.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use futures::channel::mpsc;
use kube::core::DeserializeGuard;
use kube::runtime::reflector::ObjectRef;
use pave_api::DeveloperEnvironment;
use pave_api::environment::Phase;
use pave_cloud::aws::attr;
use pave_cloud::model::tags;
use pave_cloud::{Observed, ResourceKind};
use tracing::{info, warn};

use super::{CIDR_TAG, Cloud, request_of, uid_of};
use crate::controller::{self};

/// Every resync interval: lists each region once, and asks for a reconcile of every
/// environment whose cloud resources drifted from its plan: a resource gone (a
/// terminated instance), all of them gone, a database class or size changed out of
/// band, a rule added to the database group, a tag missing. The check itself calls one describe per resource type per region, however
/// many environments there are; only drifted environments cost more.
pub(super) async fn drift_check(
    cloud: Arc<Cloud>,
    drifted: mpsc::UnboundedSender<ObjectRef<DeserializeGuard<DeveloperEnvironment>>>,
) {
    let interval = cloud.config.resync_interval;
    loop {
        tokio::time::sleep(interval).await;
        let environments: Vec<DeveloperEnvironment> = cloud
            .store
            .state()
            .iter()
            .filter_map(|g| g.0.as_ref().ok().cloned())
            .filter(|e| e.metadata.deletion_timestamp.is_none())
            .filter(|e| {
                e.status
                    .as_ref()
                    .is_some_and(|s| s.phase == Some(Phase::Ready))
            })
            .collect();
        let regions: BTreeSet<String> = environments
            .iter()
            .map(|e| e.spec.parameters.region.clone())
            .collect();
        for region in regions {
            let inventory = match cloud.inventory(&region).await {
                Ok(inventory) => inventory,
                Err(error) => {
                    warn!(%region, %error, "drift check cannot list cloud resources");
                    continue;
                }
            };
            for env in environments
                .iter()
                .filter(|e| e.spec.parameters.region == region)
            {
                if let Some(why) = drift(env, &inventory, &cloud) {
                    info!(environment = %controller::describe(env), %why, "drift found; reconciling");
                    cloud
                        .drifted
                        .lock()
                        .expect("not poisoned")
                        .insert(uid_of(env));
                    let _ = drifted
                        .unbounded_send(ObjectRef::from_obj(&DeserializeGuard(Ok(env.clone()))));
                }
            }
        }
    }
}

/// How `env`'s cloud resources differ from its plan, if they do.
pub(super) fn drift(
    env: &DeveloperEnvironment,
    inventory: &[(ResourceKind, Observed)],
    cloud: &Cloud,
) -> Option<String> {
    let uid = uid_of(env);
    let mine: HashMap<&str, &Observed> = inventory
        .iter()
        .filter(|(_, o)| o.tags.get(tags::ENVIRONMENT_UID) == Some(&uid))
        .filter_map(|(_, o)| o.tags.get(tags::NAME).map(|n| (n.as_str(), o)))
        .collect();
    let Some(cidr) = mine.values().find_map(|o| o.tags.get(CIDR_TAG)) else {
        // Nothing of it left in the cloud, though status says it was created.
        let created = env
            .status
            .as_ref()
            .is_some_and(|s| s.resources.iter().any(|r| r.id.is_some()));
        return created.then(|| "every cloud resource of it is gone".to_owned());
    };
    let mut plan =
        pave_cloud::plan::plan(&request_of(env), &cloud.config, cidr, &cloud.cluster_id).ok()?;
    plan.tags.insert(CIDR_TAG.to_owned(), cidr.clone());
    for desired in &plan.resources {
        let Some(observed) = mine.get(desired.name.as_str()) else {
            return Some(format!("{} {} is gone", desired.kind, desired.name));
        };
        if let Some((key, value)) = plan
            .tags
            .iter()
            .find(|(k, v)| observed.tags.get(*k) != Some(v))
        {
            return Some(format!(
                "{} {} lacks tag {key}={value}",
                desired.kind, desired.name
            ));
        }
        // What a reconcile can set back in place. An instance's type is not compared:
        // changing it means replacing the instance, which is the plan's call, not drift's.
        let wanted: Vec<(&str, String)> = match &desired.spec {
            pave_cloud::ResourceSpec::DbInstance {
                class, storage_gib, ..
            } => {
                vec![
                    (attr::CLASS, class.clone()),
                    (attr::STORAGE, storage_gib.to_string()),
                ]
            }
            // The database port open to the compute group, and nothing else.
            pave_cloud::ResourceSpec::SecurityGroup {
                db_port: Some(port),
                compute_group: Some(compute),
                ..
            } => match mine.get(compute.as_str()) {
                Some(group) => vec![(attr::INGRESS, format!("tcp {port} from {}", group.id))],
                None => vec![],
            },
            _ => vec![],
        };
        for (key, value) in wanted {
            if observed.attributes.get(key).is_some_and(|v| *v != value) {
                return Some(format!(
                    "{} {} has {key} {} instead of {value}",
                    desired.kind, desired.name, observed.attributes[key]
                ));
            }
        }
    }
    None
}
