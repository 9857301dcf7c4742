//! The resource plan: from an environment's request and the operator configuration,
//! the cloud resources it should have, in creation order, with deterministic names and
//! tags. Pure, so the same inputs always give the same plan and the driver can repeat
//! any step after a crash.
//!
//! Decisions written down here:
//! - Names are `pave-<first 8 hex digits of the UID>-<role>`: short enough for every
//!   AWS name limit (RDS identifiers: 63 characters, a letter first, no `--`), readable
//!   in the console, and derivable again from the object alone. Eight hex digits can
//!   collide between two environments of one account (about 1 in 10 000 with a thousand
//!   environments); resources also carry the full UID tag, which is what the driver
//!   and the sweeper match on, so a collision is detected rather than shared.
//! - The VPC block comes from [`allocate_cidr`], once; the operator records it in status
//!   and passes it back to [`plan`] on every reconcile, so changing `cidrPool` later
//!   never moves an existing environment.
//! - The two subnets are the VPC block's first two quarters (a /20 VPC gives two /22
//!   subnets). The second half stays free for subnets a later version may add (public
//!   subnets for a load balancer) without renumbering.
//! - The compute security group always exists, even with no instances: it is what the
//!   database group admits, and what a user attaches to anything they add by hand.
//! - Without `dbSize` there is no database group, subnet group or instance at all.
//! - Instances alternate between the two subnets, so a profile with two or more spans
//!   two availability zones.
//! - The database is called [`DATABASE_NAME`] in every environment: engines differ in
//!   which names and reserved words they accept, a constant is always valid, and the
//!   connection secret carries it.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use crate::config::OperatorConfig;
use crate::model::{Desired, Plan, ResourceKind, ResourceSpec, SecurityGroupRole, tags};
use crate::policy::EnvironmentRequest;

/// How many bits longer a subnet's prefix is than its VPC's: each subnet is a quarter.
pub const SUBNET_PREFIX_EXTRA: u8 = 2;

/// The database created inside every RDS instance.
pub const DATABASE_NAME: &str = "app";

/// The roles in resource names, so the driver and tests name resources the same way.
pub mod roles {
    pub const VPC: &str = "vpc";
    pub const SUBNET_A: &str = "subnet-a";
    pub const SUBNET_B: &str = "subnet-b";
    pub const SG_COMPUTE: &str = "sg-compute";
    pub const SG_DB: &str = "sg-db";
    pub const DB_SUBNETS: &str = "dbsubnets";
    pub const DB: &str = "db";

    /// The `index`th instance: `vm-0`, `vm-1`, …
    pub fn instance(index: u32) -> String {
        format!("vm-{index}")
    }
}

/// Why no plan can be made. Every variant is terminal: the plan is a pure function of
/// the spec and the configuration, so retrying without changing one of them gives the
/// same error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(
        "clusterSize {name:?} has no profile; known sizes: none, {}. Pick one of them, or add profiles.{name} to the operator configuration",
        known.join(", ")
    )]
    UnknownProfile { name: String, known: Vec<String> },

    #[error(
        "no AMI configured for region {region}: set amis.{region} or defaultAmi in the operator configuration"
    )]
    MissingAmi { region: String },

    #[error(
        "uid {uid:?} has fewer than 8 hexadecimal digits, so no cloud names can be derived from it"
    )]
    InvalidUid { uid: String },

    #[error("{0}")]
    InvalidCidr(#[from] CidrError),

    #[error(
        "VPC block {cidr} is a /{prefix}; a VPC needs /16 to /26 here (AWS allows /16 to /28 and each subnet is a quarter of the VPC)"
    )]
    VpcSize { cidr: String, prefix: u8 },

    #[error(
        "a /{prefix} block does not fit in cidrPool {pool}: vpcPrefixLength must lie between the pool's prefix length and 32"
    )]
    PrefixOutsidePool { pool: String, prefix: u8 },

    #[error(
        "cidrPool {pool} has no free /{prefix} block left; widen cidrPool or raise vpcPrefixLength in the operator configuration, or delete environments"
    )]
    PoolExhausted { pool: String, prefix: u8 },
}

/// The ordered resources of one environment. `cidr` is the VPC block the operator
/// allocated with [`allocate_cidr`] and recorded in status; `cluster_id` identifies this
/// operator's cluster in the tags.
pub fn plan(
    request: &EnvironmentRequest,
    config: &OperatorConfig,
    cidr: &str,
    cluster_id: &str,
) -> Result<Plan, PlanError> {
    let prefix = uid_prefix(&request.uid)?;
    let name = |role: &str| format!("pave-{prefix}-{role}");

    let vpc_block: Ipv4Cidr = cidr.parse()?;
    if !(16..=28 - SUBNET_PREFIX_EXTRA).contains(&vpc_block.prefix()) {
        return Err(PlanError::VpcSize {
            cidr: vpc_block.to_string(),
            prefix: vpc_block.prefix(),
        });
    }
    let [subnet_a_block, subnet_b_block] = subnet_blocks(vpc_block);

    // Resolve everything that can fail before building anything, so an error is about
    // the request, never about a half-built plan.
    let profile = if request.cluster_size == "none" {
        None
    } else {
        Some(config.profiles.get(&request.cluster_size).ok_or_else(|| {
            PlanError::UnknownProfile {
                name: request.cluster_size.clone(),
                known: config.profiles.keys().cloned().collect(),
            }
        })?)
    };
    let instances = profile.map_or(0, |p| p.count);
    let image_id = if instances > 0 {
        Some(
            config
                .ami_for(&request.region)
                .ok_or_else(|| PlanError::MissingAmi {
                    region: request.region.clone(),
                })?,
        )
    } else {
        None
    };

    let [zone_a, zone_b] =
        [0, 1].map(|i| format!("{}{}", request.region, config.availability_zone_suffixes[i]));
    let vpc = name(roles::VPC);
    let subnet_a = name(roles::SUBNET_A);
    let subnet_b = name(roles::SUBNET_B);
    let sg_compute = name(roles::SG_COMPUTE);

    let mut resources = vec![
        Desired {
            kind: ResourceKind::Vpc,
            name: vpc.clone(),
            spec: ResourceSpec::Vpc {
                cidr: vpc_block.to_string(),
            },
        },
        Desired {
            kind: ResourceKind::Subnet,
            name: subnet_a.clone(),
            spec: ResourceSpec::Subnet {
                vpc: vpc.clone(),
                cidr: subnet_a_block.to_string(),
                availability_zone: zone_a,
            },
        },
        Desired {
            kind: ResourceKind::Subnet,
            name: subnet_b.clone(),
            spec: ResourceSpec::Subnet {
                vpc: vpc.clone(),
                cidr: subnet_b_block.to_string(),
                availability_zone: zone_b,
            },
        },
        Desired {
            kind: ResourceKind::SecurityGroup,
            name: sg_compute.clone(),
            spec: ResourceSpec::SecurityGroup {
                vpc: vpc.clone(),
                role: SecurityGroupRole::Compute,
                db_port: None,
                compute_group: None,
            },
        },
    ];

    if let Some(class) = &request.db_size {
        let sg_db = name(roles::SG_DB);
        let db_subnets = name(roles::DB_SUBNETS);
        resources.extend([
            Desired {
                kind: ResourceKind::SecurityGroup,
                name: sg_db.clone(),
                spec: ResourceSpec::SecurityGroup {
                    vpc: vpc.clone(),
                    role: SecurityGroupRole::Database,
                    db_port: Some(request.db_engine.port()),
                    compute_group: Some(sg_compute.clone()),
                },
            },
            Desired {
                kind: ResourceKind::DbSubnetGroup,
                name: db_subnets.clone(),
                spec: ResourceSpec::DbSubnetGroup {
                    subnets: vec![subnet_a.clone(), subnet_b.clone()],
                },
            },
            Desired {
                kind: ResourceKind::DbInstance,
                name: name(roles::DB),
                spec: ResourceSpec::DbInstance {
                    class: class.clone(),
                    engine: request.db_engine.as_str().to_owned(),
                    engine_version: request.db_engine_version.clone(),
                    storage_gib: request.db_storage_gib,
                    subnet_group: db_subnets,
                    security_group: sg_db,
                    database_name: DATABASE_NAME.to_owned(),
                    username: config.db_username.clone(),
                },
            },
        ]);
    }

    if let (Some(profile), Some(image_id)) = (profile, image_id) {
        resources.extend((0..instances).map(|i| {
            let subnet = if i % 2 == 0 { &subnet_a } else { &subnet_b };
            Desired {
                kind: ResourceKind::Instance,
                name: name(&roles::instance(i)),
                spec: ResourceSpec::Instance {
                    instance_type: profile.instance_type.clone(),
                    image_id: image_id.to_owned(),
                    subnet: subnet.clone(),
                    security_group: sg_compute.clone(),
                },
            }
        }));
    }

    Ok(Plan {
        region: request.region.clone(),
        tags: environment_tags(request, cluster_id),
        resources,
    })
}

/// The tags every resource of the environment carries.
pub fn environment_tags(
    request: &EnvironmentRequest,
    cluster_id: &str,
) -> BTreeMap<String, String> {
    BTreeMap::from([
        (tags::ENVIRONMENT_UID.to_owned(), request.uid.clone()),
        (
            tags::ENVIRONMENT.to_owned(),
            format!("{}/{}", request.namespace, request.name),
        ),
        (tags::CLUSTER.to_owned(), cluster_id.to_owned()),
    ])
}

/// The deterministic name of an environment's resource: `pave-<uid prefix>-<role>`.
pub fn resource_name(uid: &str, role: &str) -> Result<String, PlanError> {
    Ok(format!("pave-{}-{role}", uid_prefix(uid)?))
}

/// The first 8 hexadecimal digits of a UID, dashes skipped, lower case.
fn uid_prefix(uid: &str) -> Result<String, PlanError> {
    let prefix: String = uid
        .chars()
        .filter(|c| *c != '-')
        .take(8)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if prefix.len() == 8 && prefix.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(prefix)
    } else {
        Err(PlanError::InvalidUid {
            uid: uid.to_owned(),
        })
    }
}

/// The two subnets of a VPC block: its first two quarters.
pub fn subnet_blocks(vpc: Ipv4Cidr) -> [Ipv4Cidr; 2] {
    let prefix = vpc.prefix() + SUBNET_PREFIX_EXTRA;
    [0, 1].map(|n| {
        vpc.nth_block(prefix, n)
            .expect("a VPC of at most /26 has four quarters")
    })
}

/// Picks a VPC block of `/prefix` from `pool` that overlaps none of `taken` (blocks of
/// any size, inside or outside the pool).
///
/// The first choice is a hash of the UID, so environments created at the same time by
/// two operator replicas or after a lost status write land on the same block, and
/// allocations spread over the pool rather than piling up at its start. When that block
/// is taken, the next free one after it (wrapping around) is used. The result depends
/// only on the UID and on which blocks are taken, and adding a taken block that does not
/// overlap the result never changes it.
///
/// Allocate once, record the block in status, and keep passing it to [`plan`]; `taken`
/// must not include the environment's own block, or a second call would move it.
pub fn allocate_cidr(
    uid: &str,
    pool: &str,
    prefix: u8,
    taken: &[String],
) -> Result<String, PlanError> {
    let pool_block: Ipv4Cidr = pool.parse()?;
    if prefix < pool_block.prefix() || prefix > 32 {
        return Err(PlanError::PrefixOutsidePool {
            pool: pool_block.to_string(),
            prefix,
        });
    }
    let block_size = 1u64 << (32 - prefix);
    let blocks = 1u64 << (prefix - pool_block.prefix());
    let base = pool_block.first();

    // Taken address ranges inside the pool, sorted and merged, so the search can jump
    // over each in one step instead of testing every block against every range.
    let mut ranges = Vec::with_capacity(taken.len());
    for t in taken {
        let t: Ipv4Cidr = t.parse()?;
        if t.overlaps(&pool_block) {
            ranges.push((t.first().max(base), t.last().min(pool_block.last())));
        }
    }
    ranges.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
    for (lo, hi) in ranges {
        match merged.last_mut() {
            Some((_, last_hi)) if lo <= *last_hi + 1 => *last_hi = (*last_hi).max(hi),
            _ => merged.push((lo, hi)),
        }
    }

    // First free block index in `from..to`.
    let first_free = |from: u64, to: u64| {
        let mut index = from;
        let mut next_range = merged.partition_point(|&(_, hi)| hi < base + from * block_size);
        while index < to {
            let lo = base + index * block_size;
            let hi = lo + block_size - 1;
            while next_range < merged.len() && merged[next_range].1 < lo {
                next_range += 1;
            }
            match merged.get(next_range) {
                Some(&(range_lo, range_hi)) if range_lo <= hi => {
                    // Jump to the first block starting after this range.
                    index = (range_hi + 1 - base).div_ceil(block_size);
                }
                _ => return Some(index),
            }
        }
        None
    };

    let start = fnv1a(uid.as_bytes()) % blocks;
    let index = first_free(start, blocks)
        .or_else(|| first_free(0, start))
        .ok_or_else(|| PlanError::PoolExhausted {
            pool: pool_block.to_string(),
            prefix,
        })?;
    let block = pool_block
        .nth_block(prefix, index)
        .expect("the index is below the pool's block count");
    Ok(block.to_string())
}

/// FNV-1a, 64 bits: stable across Rust versions and platforms, unlike `std`'s hasher,
/// so an environment's first-choice block never changes with an operator upgrade.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// An IPv4 CIDR block with no host bits set, e.g. `10.64.0.0/10`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv4Cidr {
    network: u32,
    prefix: u8,
}

/// A string that is not an IPv4 CIDR block.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not an IPv4 CIDR block: {problem}")]
pub struct CidrError {
    pub input: String,
    pub problem: String,
}

impl Ipv4Cidr {
    pub fn new(network: Ipv4Addr, prefix: u8) -> Option<Self> {
        let network = u32::from(network);
        (prefix <= 32 && network & !mask(prefix) == 0).then_some(Ipv4Cidr { network, prefix })
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.network)
    }

    /// First address, widened so a block's end + 1 never overflows.
    pub fn first(&self) -> u64 {
        u64::from(self.network)
    }

    /// Last address.
    pub fn last(&self) -> u64 {
        self.first() + (1u64 << (32 - self.prefix)) - 1
    }

    pub fn contains(&self, other: &Ipv4Cidr) -> bool {
        self.first() <= other.first() && other.last() <= self.last()
    }

    pub fn overlaps(&self, other: &Ipv4Cidr) -> bool {
        self.first() <= other.last() && other.first() <= self.last()
    }

    /// The `n`th block of `/prefix` inside this one, counting from 0; `None` when the
    /// prefix is shorter than this block's or `n` is past its end.
    pub fn nth_block(&self, prefix: u8, n: u64) -> Option<Ipv4Cidr> {
        if prefix < self.prefix || prefix > 32 || n >= 1u64 << (prefix - self.prefix) {
            return None;
        }
        let network = self.first() + n * (1u64 << (32 - prefix));
        Some(Ipv4Cidr {
            network: u32::try_from(network).ok()?,
            prefix,
        })
    }
}

fn mask(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

impl FromStr for Ipv4Cidr {
    type Err = CidrError;

    fn from_str(input: &str) -> Result<Self, CidrError> {
        let fail = |problem: String| CidrError {
            input: input.to_owned(),
            problem,
        };
        let (addr, prefix) = input
            .split_once('/')
            .ok_or_else(|| fail("expected address/prefix, e.g. 10.64.0.0/10".to_owned()))?;
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| fail(format!("{addr:?} is not an IPv4 address")))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| fail(format!("prefix length {prefix:?} is not 0 to 32")))?;
        // A block written with host bits set is almost always a typo for a different
        // block; refusing it beats silently using a block nobody wrote.
        Ipv4Cidr::new(addr, prefix).ok_or_else(|| {
            let network = Ipv4Addr::from(u32::from(addr) & mask(prefix));
            fail(format!(
                "host bits are set; did you mean {network}/{prefix}?"
            ))
        })
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network(), self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn cidr(s: &str) -> Ipv4Cidr {
        s.parse().unwrap()
    }

    #[test]
    fn cidrs_parse_strictly() {
        assert_eq!(cidr("10.64.0.0/10").to_string(), "10.64.0.0/10");
        assert_eq!(cidr("0.0.0.0/0").last(), u64::from(u32::MAX));
        assert_eq!(cidr("10.1.2.3/32").first(), cidr("10.1.2.3/32").last());
        for bad in [
            "10.64.0.0",
            "10.64.0.0/33",
            "10.64.0/10",
            "x/8",
            "10.0.0.0/-1",
        ] {
            assert!(bad.parse::<Ipv4Cidr>().is_err(), "{bad}");
        }
        let err = "10.64.1.0/10".parse::<Ipv4Cidr>().unwrap_err();
        assert!(
            err.to_string().contains("did you mean 10.64.0.0/10"),
            "{err}"
        );
    }

    #[test]
    fn cidrs_contain_overlap_and_split() {
        let pool = cidr("10.64.0.0/10");
        assert!(pool.contains(&cidr("10.127.240.0/20")));
        assert!(!pool.contains(&cidr("10.128.0.0/20")));
        assert!(pool.overlaps(&cidr("10.0.0.0/8")));
        assert!(!pool.overlaps(&cidr("10.128.0.0/9")));
        assert_eq!(pool.nth_block(20, 0), Some(cidr("10.64.0.0/20")));
        assert_eq!(pool.nth_block(20, 1), Some(cidr("10.64.16.0/20")));
        assert_eq!(pool.nth_block(20, 1023), Some(cidr("10.127.240.0/20")));
        assert_eq!(pool.nth_block(20, 1024), None);
        assert_eq!(pool.nth_block(8, 0), None);
        assert_eq!(
            subnet_blocks(cidr("10.64.16.0/20")),
            [cidr("10.64.16.0/22"), cidr("10.64.20.0/22")]
        );
    }

    #[test]
    fn the_first_choice_is_used_when_free_and_the_next_block_otherwise() {
        let uid = "3f2a9c1e-7b4d-4e8a-9f10-2c3d4e5f6a7b";
        let first = allocate_cidr(uid, "10.64.0.0/10", 20, &[]).unwrap();
        let next = allocate_cidr(uid, "10.64.0.0/10", 20, std::slice::from_ref(&first)).unwrap();
        assert_ne!(first, next);
        let (first, next) = (cidr(&first), cidr(&next));
        assert_eq!(next.first(), first.last() + 1, "{first} then {next}");
    }

    #[test]
    fn allocation_wraps_around_and_reports_exhaustion() {
        // A /22 pool of four /24s with three taken: only the one left can be chosen.
        let taken = ["10.0.0.0/24", "10.0.2.0/23"].map(String::from);
        for uid in ["00000000", "ffffffff", "12345678", "abcdef01"] {
            assert_eq!(
                allocate_cidr(uid, "10.0.0.0/22", 24, &taken).unwrap(),
                "10.0.1.0/24"
            );
        }
        let all = ["10.0.0.0/16".to_owned()];
        let err = allocate_cidr("00000000", "10.0.0.0/22", 24, &all).unwrap_err();
        assert!(matches!(err, PlanError::PoolExhausted { .. }));
        assert!(err.to_string().contains("cidrPool 10.0.0.0/22"), "{err}");
    }

    #[test]
    fn allocation_refuses_bad_input() {
        assert!(matches!(
            allocate_cidr("00000000", "10.64.0.0/10", 8, &[]),
            Err(PlanError::PrefixOutsidePool { .. })
        ));
        assert!(matches!(
            allocate_cidr("00000000", "10.64.0.0/10", 20, &["10.64.0.1/20".to_owned()]),
            Err(PlanError::InvalidCidr(_))
        ));
    }

    fn arb_block() -> impl Strategy<Value = String> {
        // Inside or next to a small pool, so collisions and exhaustion both happen.
        // Addresses span 10.64.0.0/15, half of it the pool; a /17 covers half the pool.
        (0u32..=0x1FFF, 17u8..=28).prop_map(|(offset, prefix)| {
            let addr = (10u32 << 24) | (64 << 16) | offset << 4;
            let network = addr & mask(prefix);
            format!("{}/{prefix}", Ipv4Addr::from(network))
        })
    }

    proptest! {
        #[test]
        fn allocation_never_overlaps_a_taken_block(
            uid in "[0-9a-f]{8}-[0-9a-f]{4}",
            prefix in 20u8..=24,
            taken in prop::collection::vec(arb_block(), 0..40),
        ) {
            let pool = cidr("10.64.0.0/16");
            match allocate_cidr(&uid, "10.64.0.0/16", prefix, &taken) {
                Ok(block) => {
                    let block = cidr(&block);
                    prop_assert_eq!(block.prefix(), prefix);
                    prop_assert!(pool.contains(&block));
                    for t in &taken {
                        prop_assert!(!block.overlaps(&cidr(t)), "{} overlaps {}", block, t);
                    }
                    // Same inputs, same answer.
                    prop_assert_eq!(
                        allocate_cidr(&uid, "10.64.0.0/16", prefix, &taken).unwrap(),
                        block.to_string()
                    );
                }
                Err(PlanError::PoolExhausted { .. }) => {
                    // Exhausted means exhausted: every block of the pool is hit.
                    for n in 0..(1u64 << (prefix - 16)) {
                        let b = pool.nth_block(prefix, n).unwrap();
                        prop_assert!(taken.iter().any(|t| b.overlaps(&cidr(t))), "{} was free", b);
                    }
                }
                Err(e) => prop_assert!(false, "unexpected error {}", e),
            }
        }

        #[test]
        fn unrelated_allocations_do_not_move_a_block(
            uid in "[0-9a-f]{8}",
            taken in prop::collection::vec(arb_block(), 0..20),
            extra in arb_block(),
        ) {
            if let Ok(block) = allocate_cidr(&uid, "10.64.0.0/16", 22, &taken)
                && !cidr(&block).overlaps(&cidr(&extra))
            {
                let mut more = taken.clone();
                more.push(extra);
                prop_assert_eq!(allocate_cidr(&uid, "10.64.0.0/16", 22, &more).unwrap(), block);
            }
        }

        #[test]
        fn taken_order_does_not_matter(
            uid in "[0-9a-f]{8}",
            mut taken in prop::collection::vec(arb_block(), 0..20),
        ) {
            let before = allocate_cidr(&uid, "10.64.0.0/16", 22, &taken);
            taken.reverse();
            prop_assert_eq!(allocate_cidr(&uid, "10.64.0.0/16", 22, &taken), before);
        }
    }
}
