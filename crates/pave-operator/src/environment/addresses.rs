//! Address blocks: which CIDR each environment's VPC gets.

use std::collections::{BTreeMap, BTreeSet};

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
/// Which blocks are taken is derived from what exists, never only remembered: the
/// `pave.dev/cidr` tag (or the CIDR) of every VPC of this cluster in the region, plus
/// the blocks handed out to environments that still exist but whose VPC is not created
/// yet. It is learnt from the cloud on a region's first allocation (so a restarted
/// operator knows it) and kept in memory after that, since this operator is the only
/// one allocating for its cluster id and allocating for a new environment should cost
/// no AWS call. Memory may still hold blocks of environments gone since; so when the
/// pool looks full, what is taken is learnt again from the cloud before anyone is
/// told so. A full pool is Recoverable: it frees up as environments are deleted, and
/// the environment waiting for a block is retried with backoff until it gets one.
pub(super) async fn cidr_for(
    env: &DeveloperEnvironment,
    cloud: &Cloud,
) -> Result<String, CloudError> {
    let uid = uid_of(env);
    let region = env.spec.parameters.region.clone();
    let mut known = cloud.cidrs.lock().await;
    if !known.contains_key(&region) {
        let blocks = in_use(cloud, &region, BTreeMap::new()).await?;
        known.insert(region.clone(), blocks);
    }
    let blocks = known.get_mut(&region).expect("loaded above");
    if let Some(cidr) = blocks.get(&uid) {
        return Ok(cidr.clone());
    }
    let cidr = match allocate(cloud, &uid, blocks) {
        Ok(cidr) => cidr,
        Err(_) => {
            let remembered = std::mem::take(blocks);
            *blocks = in_use(cloud, &region, remembered).await?;
            if let Some(cidr) = blocks.get(&uid) {
                return Ok(cidr.clone());
            }
            allocate(cloud, &uid, blocks).map_err(|e| CloudError::Recoverable {
                operation: "AllocateCidr".into(),
                resource: format!("VPC of {}", controller::describe(env)),
                code: "CidrPoolExhausted".into(),
                message: format!(
                    "{e}; pave allocates one as soon as an environment in this region is gone"
                ),
            })?
        }
    };
    blocks.insert(uid, cidr.clone());
    Ok(cidr)
}

/// A free block for `uid`, given the blocks taken (by environment UID).
fn allocate(
    cloud: &Cloud,
    uid: &str,
    blocks: &BTreeMap<String, String>,
) -> Result<String, pave_cloud::plan::PlanError> {
    let taken: Vec<String> = blocks.values().cloned().collect();
    pave_cloud::plan::allocate_cidr(
        uid,
        &cloud.config.cidr_pool,
        cloud.config.vpc_prefix_length,
        &taken,
    )
}

/// The blocks in use in `region`, by environment UID: every VPC of this cluster there,
/// and of the blocks `handed_out` earlier, those of environments that still exist (in
/// this operator's cache) and have no VPC yet.
async fn in_use(
    cloud: &Cloud,
    region: &str,
    handed_out: BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, CloudError> {
    let inventory = cloud.inventory(region).await?;
    let mut blocks: BTreeMap<String, String> = inventory
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
    if !handed_out.is_empty() {
        let living: BTreeSet<String> = cloud
            .store
            .state()
            .iter()
            .filter_map(|g| g.0.as_ref().ok().map(uid_of))
            .collect();
        for (uid, cidr) in handed_out {
            if living.contains(&uid) {
                blocks.entry(uid).or_insert(cidr);
            }
        }
    }
    Ok(blocks)
}
