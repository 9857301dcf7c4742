//! Address blocks: which CIDR each environment's VPC gets.

use std::collections::BTreeMap;

use pave_api::DeveloperEnvironment;
use pave_cloud::aws::attr;
use pave_cloud::model::tags;
use pave_cloud::{CloudError, ResourceKind};

use super::{Cloud, uid_of};
use crate::controller::{self};

/// The tag that records an environment's address block on each of its resources.
pub(super) const CIDR_TAG: &str = "pave.dev/cidr";

/// The environment's address block: the one its VPC already has, or a free one.
///
/// The blocks in use are learned once per region from the cloud (the `pave.dev/cidr`
/// tag of each VPC of this cluster) and then kept in memory: this operator is the only
/// one allocating for its cluster id, so after that first look its memory is the
/// authority, and allocating for a new environment costs no AWS call.
pub(super) async fn cidr_for(
    env: &DeveloperEnvironment,
    cloud: &Cloud,
) -> Result<String, CloudError> {
    let uid = uid_of(env);
    let region = env.spec.parameters.region.clone();
    let mut known = cloud.cidrs.lock().await;
    if !known.contains_key(&region) {
        let inventory = cloud.inventory(&region).await?;
        let blocks: BTreeMap<String, String> = inventory
            .iter()
            .filter(|(kind, _)| *kind == ResourceKind::Vpc)
            .filter_map(|(_, o)| {
                let owner = o.tags.get(tags::ENVIRONMENT_UID)?.clone();
                let cidr = o
                    .tags
                    .get(CIDR_TAG)
                    .or_else(|| o.attributes.get(attr::CIDR))?
                    .clone();
                Some((owner, cidr))
            })
            .collect();
        known.insert(region.clone(), blocks);
    }
    let blocks = known.get_mut(&region).expect("loaded above");
    if let Some(cidr) = blocks.get(&uid) {
        return Ok(cidr.clone());
    }
    let taken: Vec<String> = blocks.values().cloned().collect();
    let cidr = pave_cloud::plan::allocate_cidr(
        &uid,
        &cloud.config.cidr_pool,
        cloud.config.vpc_prefix_length,
        &taken,
    )
    .map_err(|e| CloudError::Terminal {
        operation: "AllocateCidr".into(),
        resource: format!("VPC of {}", controller::describe(env)),
        code: "CidrPoolExhausted".into(),
        message: e.to_string(),
    })?;
    blocks.insert(uid, cidr.clone());
    Ok(cidr)
}
