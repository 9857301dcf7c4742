//! The AWS driver against moto's real server (started by the test bed): every
//! resource of an environment created, found, created again without duplicates,
//! changed in place, inventoried and deleted; crash-recovery and drift repair of the
//! database security group; refusal of an RDS name held by another environment;
//! classification of real error answers; a hung endpoint that must not block; and an
//! inventory whose full-size pages are too slow, behind the fault proxy.
//!
//! Every test uses its own environment uid and cluster id, and the inventory filters by
//! cluster id, so tests share moto without resetting it (a reset would pull resources
//! from under the tests running beside).

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pave_cloud::aws::{Aws, Credentials, attr};
use pave_cloud::model::tags;
use pave_cloud::{
    CloudError, Desired, Observed, Plan, ResourceKind, ResourceSpec, SecurityGroupRole,
};
use pave_testenv::TestEnv;
use pave_testenv::fault_proxy::{Fault, FaultProxy, Rule, When};

const REGION: &str = "ap-northeast-2";
/// An AMI moto 5.2.5 ships in every region (moto/ec2/resources/amis.json.gz).
const AMI: &str = "ami-04681a1dbd79675a5";
const PASSWORD: &str = "Never-Log-Me-7f3a9c";

fn credentials() -> Credentials {
    Credentials::new("testing", "testing", None, None, "pave-tests")
}

async fn driver() -> Aws {
    let env = TestEnv::shared();
    Aws::connect_with_credentials(REGION, Some(&env.moto_endpoint()), credentials()).await
}

/// Plain SDK clients, to check what the driver did without going through the driver.
async fn raw() -> (aws_sdk_ec2::Client, aws_sdk_rds::Client) {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .endpoint_url(TestEnv::shared().moto_endpoint())
        .credentials_provider(credentials())
        .load()
        .await;
    (
        aws_sdk_ec2::Client::new(&config),
        aws_sdk_rds::Client::new(&config),
    )
}

/// A short id unique to this test run and call.
fn unique() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{:x}{:02x}",
        (nanos / 1000) & 0xff_ffff,
        COUNTER.fetch_add(1, Ordering::Relaxed) & 0xff
    )
}

/// One environment's plan, written by hand the way `plan.rs` shapes it.
struct Env {
    uid: String,
    cluster: String,
    plan: Plan,
}

impl Env {
    fn new() -> Env {
        let short = unique();
        let uid = format!("{short}-0000-4000-8000-000000000000");
        let cluster = format!("test-cluster-{short}");
        let n = |role: &str| format!("pave-{short}-{role}");
        let tags = BTreeMap::from([
            (tags::ENVIRONMENT_UID.to_owned(), uid.clone()),
            (
                tags::ENVIRONMENT.to_owned(),
                "team-payments/feature-payment-v2-env".to_owned(),
            ),
            (tags::CLUSTER.to_owned(), cluster.clone()),
        ]);
        let resources = vec![
            Desired {
                kind: ResourceKind::Vpc,
                name: n("vpc"),
                spec: ResourceSpec::Vpc {
                    cidr: "10.64.0.0/20".into(),
                },
            },
            Desired {
                kind: ResourceKind::Subnet,
                name: n("subnet-a"),
                spec: ResourceSpec::Subnet {
                    vpc: n("vpc"),
                    cidr: "10.64.0.0/24".into(),
                    availability_zone: format!("{REGION}a"),
                },
            },
            Desired {
                kind: ResourceKind::Subnet,
                name: n("subnet-b"),
                spec: ResourceSpec::Subnet {
                    vpc: n("vpc"),
                    cidr: "10.64.1.0/24".into(),
                    availability_zone: format!("{REGION}b"),
                },
            },
            Desired {
                kind: ResourceKind::SecurityGroup,
                name: n("compute"),
                spec: ResourceSpec::SecurityGroup {
                    vpc: n("vpc"),
                    role: SecurityGroupRole::Compute,
                    db_port: None,
                    compute_group: None,
                },
            },
            Desired {
                kind: ResourceKind::SecurityGroup,
                name: n("database"),
                spec: ResourceSpec::SecurityGroup {
                    vpc: n("vpc"),
                    role: SecurityGroupRole::Database,
                    db_port: Some(5432),
                    compute_group: Some(n("compute")),
                },
            },
            Desired {
                kind: ResourceKind::DbSubnetGroup,
                name: n("db-subnets"),
                spec: ResourceSpec::DbSubnetGroup {
                    subnets: vec![n("subnet-a"), n("subnet-b")],
                },
            },
            Desired {
                kind: ResourceKind::DbInstance,
                name: n("db"),
                spec: ResourceSpec::DbInstance {
                    class: "db.t3.micro".into(),
                    engine: "postgres".into(),
                    engine_version: Some("16.3".into()),
                    storage_gib: 20,
                    subnet_group: n("db-subnets"),
                    security_group: n("database"),
                    database_name: "app".into(),
                    username: "pave".into(),
                },
            },
            Desired {
                kind: ResourceKind::Instance,
                name: n("vm-0"),
                spec: ResourceSpec::Instance {
                    instance_type: "t3.small".into(),
                    image_id: AMI.into(),
                    subnet: n("subnet-a"),
                    security_group: n("compute"),
                },
            },
        ];
        Env {
            uid,
            cluster,
            plan: Plan {
                region: REGION.into(),
                tags,
                resources,
            },
        }
    }

    fn desired(&self, kind: ResourceKind, suffix: &str) -> &Desired {
        self.plan
            .resources
            .iter()
            .find(|d| d.kind == kind && d.name.ends_with(suffix))
            .unwrap_or_else(|| panic!("no {kind} *{suffix} in the plan"))
    }

    /// Creates the first `count` resources of the plan in order; returns name → observed
    /// and name → id.
    async fn create(
        &self,
        aws: &Aws,
        count: usize,
    ) -> (BTreeMap<String, Observed>, BTreeMap<String, String>) {
        let mut observed = BTreeMap::new();
        let mut ids = BTreeMap::new();
        for desired in self.plan.resources.iter().take(count) {
            let password = (desired.kind == ResourceKind::DbInstance).then_some(PASSWORD);
            let o = aws
                .create(desired, &self.plan.tags, &ids, password)
                .await
                .unwrap_or_else(|e| panic!("creating {}: {e}", desired.name));
            ids.insert(desired.name.clone(), o.id.clone());
            observed.insert(desired.name.clone(), o);
        }
        (observed, ids)
    }

    /// Deletes whatever of this environment's cluster is left, newest kinds first.
    async fn teardown(&self, aws: &Aws) {
        let mut left = aws.inventory(&self.cluster).await.expect("inventory");
        left.reverse();
        for (kind, o) in left {
            for _ in 0..10 {
                if aws.delete(kind, &o).await.expect("delete") {
                    break;
                }
            }
        }
    }
}

#[tokio::test]
async fn environment_lifecycle_against_moto() {
    let aws = driver().await;
    let (ec2, rds) = raw().await;
    let env = Env::new();

    // Nothing exists yet.
    for desired in &env.plan.resources {
        assert_eq!(
            aws.find(desired, &env.uid, &BTreeMap::new()).await.unwrap(),
            None,
            "{}",
            desired.name
        );
    }

    // Create everything, in creation order.
    let (created, ids) = env.create(&aws, env.plan.resources.len()).await;
    let id = |suffix: &str| {
        let desired = env
            .plan
            .resources
            .iter()
            .find(|d| d.name.ends_with(suffix))
            .unwrap();
        ids[&desired.name].clone()
    };
    for desired in &env.plan.resources {
        let o = &created[&desired.name];
        assert_eq!(
            o.tags.get(tags::NAME),
            Some(&desired.name),
            "{}: {o:?}",
            desired.name
        );
        assert_eq!(o.tags.get(tags::AWS_NAME), Some(&desired.name));
        assert_eq!(o.tags.get(tags::ENVIRONMENT_UID), Some(&env.uid));
        assert_eq!(o.tags.get(tags::CLUSTER), Some(&env.cluster));
        // And found again by tag, as after a crash: by tags alone, and within the
        // VPC or subnet its dependencies' ids give.
        for known in [&BTreeMap::new(), &ids] {
            let found = aws
                .find(desired, &env.uid, known)
                .await
                .unwrap()
                .expect("found by tag");
            assert_eq!(found.id, o.id, "{}", desired.name);
            assert_eq!(found.tags.get(tags::NAME), Some(&desired.name));
            assert!(found.arn.is_some(), "{}: no ARN", desired.name);
        }
        if !matches!(
            desired.kind,
            ResourceKind::DbSubnetGroup | ResourceKind::DbInstance
        ) {
            // Another environment's uid does not see it.
            assert_eq!(aws.find(desired, "someone-else", &ids).await.unwrap(), None);
            // Nor does a look-up confined to another VPC or subnet (or CIDR block):
            // the scope is really applied.
            let elsewhere: BTreeMap<String, String> = ids
                .keys()
                .map(|name| (name.clone(), "vpc-00000000".to_owned()))
                .collect();
            let mut moved = desired.clone();
            if let ResourceSpec::Vpc { cidr } = &mut moved.spec {
                *cidr = "10.255.255.0/24".into();
            }
            if let ResourceSpec::Instance { subnet, .. } = &moved.spec {
                let mut elsewhere = elsewhere.clone();
                elsewhere.insert(subnet.clone(), "subnet-00000000".into());
                assert_eq!(aws.find(&moved, &env.uid, &elsewhere).await.unwrap(), None);
            } else {
                assert_eq!(
                    aws.find(&moved, &env.uid, &elsewhere).await.unwrap(),
                    None,
                    "{}",
                    desired.name
                );
            }
        }
    }

    // The VPC and its subnets, as moto holds them.
    let vpc = ec2
        .describe_vpcs()
        .vpc_ids(id("-vpc"))
        .send()
        .await
        .unwrap();
    let vpc = &vpc.vpcs()[0];
    assert_eq!(vpc.cidr_block(), Some("10.64.0.0/20"));
    assert!(vpc.tags().iter().any(|t| t.key() == Some("Name")
        && t.value() == Some(env.desired(ResourceKind::Vpc, "-vpc").name.as_str())));
    let subnets = ec2
        .describe_subnets()
        .subnet_ids(id("-subnet-a"))
        .subnet_ids(id("-subnet-b"))
        .send()
        .await
        .unwrap();
    let mut zones: Vec<(&str, &str, &str)> = subnets
        .subnets()
        .iter()
        .map(|s| {
            (
                s.cidr_block().unwrap(),
                s.availability_zone().unwrap(),
                s.vpc_id().unwrap(),
            )
        })
        .collect();
    zones.sort();
    let vpc_id = id("-vpc");
    assert_eq!(
        zones,
        [
            ("10.64.0.0/24", "ap-northeast-2a", vpc_id.as_str()),
            ("10.64.1.0/24", "ap-northeast-2b", vpc_id.as_str())
        ]
    );
    assert_eq!(
        created[&env.desired(ResourceKind::Subnet, "-subnet-a").name]
            .attributes
            .get(attr::CIDR)
            .map(String::as_str),
        Some("10.64.0.0/24")
    );

    // Security groups: compute has no ingress; the database admits TCP 5432 from the
    // compute group and from nothing else.
    let groups = ec2
        .describe_security_groups()
        .group_ids(id("-compute"))
        .group_ids(id("-database"))
        .send()
        .await
        .unwrap();
    let group = |gid: &str| {
        groups
            .security_groups()
            .iter()
            .find(|g| g.group_id() == Some(gid))
            .unwrap()
            .clone()
    };
    let compute = group(&id("-compute"));
    assert!(
        compute.ip_permissions().is_empty(),
        "{:?}",
        compute.ip_permissions()
    );
    assert_eq!(compute.vpc_id(), Some(vpc_id.as_str()));
    let database = group(&id("-database"));
    assert_eq!(
        database.ip_permissions().len(),
        1,
        "{:?}",
        database.ip_permissions()
    );
    let rule = &database.ip_permissions()[0];
    assert_eq!(rule.ip_protocol(), Some("tcp"));
    assert_eq!((rule.from_port(), rule.to_port()), (Some(5432), Some(5432)));
    assert!(rule.ip_ranges().is_empty() && rule.ipv6_ranges().is_empty());
    let sources: Vec<_> = rule
        .user_id_group_pairs()
        .iter()
        .map(|p| p.group_id().unwrap())
        .collect();
    assert_eq!(sources, [id("-compute").as_str()]);

    // The DB subnet group spans both subnets.
    let subnet_group = rds
        .describe_db_subnet_groups()
        .db_subnet_group_name(id("-db-subnets"))
        .send()
        .await
        .unwrap();
    let subnet_group = &subnet_group.db_subnet_groups()[0];
    assert_eq!(subnet_group.vpc_id(), Some(vpc_id.as_str()));
    let mut members: Vec<_> = subnet_group
        .subnets()
        .iter()
        .map(|s| s.subnet_identifier().unwrap().to_owned())
        .collect();
    members.sort();
    let mut expected = vec![id("-subnet-a"), id("-subnet-b")];
    expected.sort();
    assert_eq!(members, expected);

    // The database, with every parameter the driver sets.
    let db_name = env.desired(ResourceKind::DbInstance, "-db").name.clone();
    let db = rds
        .describe_db_instances()
        .db_instance_identifier(&db_name)
        .send()
        .await
        .unwrap();
    let db = &db.db_instances()[0];
    assert_eq!(db.db_instance_class(), Some("db.t3.micro"));
    assert_eq!(db.engine(), Some("postgres"));
    assert_eq!(db.engine_version(), Some("16.3"));
    assert_eq!(db.allocated_storage(), Some(20));
    assert_eq!(db.master_username(), Some("pave"));
    assert_eq!(db.db_name(), Some("app"));
    assert_eq!(db.publicly_accessible(), Some(false));
    assert_eq!(
        db.db_subnet_group().and_then(|g| g.db_subnet_group_name()),
        Some(id("-db-subnets").as_str())
    );
    let db_groups: Vec<_> = db
        .vpc_security_groups()
        .iter()
        .map(|g| g.vpc_security_group_id().unwrap())
        .collect();
    assert_eq!(db_groups, [id("-database").as_str()]);
    assert!(
        db.tag_list()
            .iter()
            .any(|t| t.key() == Some(tags::ENVIRONMENT_UID) && t.value() == Some(env.uid.as_str()))
    );
    let db_observed = &created[&db_name];
    let (host, port) = db_observed.endpoint.clone().expect("the DB endpoint");
    assert!(!host.is_empty());
    assert_eq!(port, 5432);
    assert_eq!(db_observed.state, "available");
    assert_eq!(
        db_observed.attributes.get(attr::CLASS).map(String::as_str),
        Some("db.t3.micro")
    );
    assert_eq!(
        db_observed
            .attributes
            .get(attr::STORAGE)
            .map(String::as_str),
        Some("20")
    );

    // The instance.
    let reservations = ec2
        .describe_instances()
        .instance_ids(id("-vm-0"))
        .send()
        .await
        .unwrap();
    let instance = &reservations.reservations()[0].instances()[0];
    assert_eq!(
        instance.instance_type().map(|t| t.as_str()),
        Some("t3.small")
    );
    assert_eq!(instance.image_id(), Some(AMI));
    assert_eq!(instance.subnet_id(), Some(id("-subnet-a").as_str()));
    let instance_groups: Vec<_> = instance
        .security_groups()
        .iter()
        .map(|g| g.group_id().unwrap())
        .collect();
    assert_eq!(instance_groups, [id("-compute").as_str()]);
    assert_eq!(
        instance.state().and_then(|s| s.name()).map(|s| s.as_str()),
        Some("running")
    );
    // RunInstances itself answers `pending` (moto too), the describe `running`.
    let vm_state = &created[&env.desired(ResourceKind::Instance, "-vm-0").name].state;
    assert!(
        ["pending", "running"].contains(&vm_state.as_str()),
        "{vm_state}"
    );

    // Creating again answers the same resources and makes no new ones.
    let (again, ids_again) = env.create(&aws, env.plan.resources.len()).await;
    assert_eq!(ids_again, ids, "a second create must find, not duplicate");
    assert_eq!(again[&db_name].endpoint, created[&db_name].endpoint);
    let calls = aws.api_calls();
    let inventory = aws.inventory(&env.cluster).await.unwrap();
    // One describe per type (VPC, subnet, security group, DB subnet group, DB
    // instance, instance), however many environments: RDS subnet groups, whose
    // describe carries no tags, are attributed through their VPC.
    assert_eq!(aws.api_calls() - calls, 6, "inventory API calls");
    let count = |kind| inventory.iter().filter(|(k, _)| *k == kind).count();
    assert_eq!(
        [
            ResourceKind::Vpc,
            ResourceKind::Subnet,
            ResourceKind::SecurityGroup,
            ResourceKind::DbSubnetGroup,
            ResourceKind::DbInstance,
            ResourceKind::Instance
        ]
        .map(count),
        [1, 2, 2, 1, 1, 1],
        "{inventory:#?}"
    );
    let mut inventoried: Vec<String> = inventory.iter().map(|(_, o)| o.id.clone()).collect();
    inventoried.sort();
    let mut all_ids: Vec<String> = ids.values().cloned().collect();
    all_ids.sort();
    assert_eq!(inventoried, all_ids);
    for (kind, o) in &inventory {
        assert_eq!(
            o.tags.get(tags::CLUSTER),
            Some(&env.cluster),
            "{kind} {}",
            o.id
        );
        assert!(
            o.tags.contains_key(tags::NAME),
            "{kind} {} lacks its name tag",
            o.id
        );
    }
    // Kinds come in creation order, so a sweeper can walk the list backwards.
    assert!(inventory.windows(2).all(|w| w[0].0 <= w[1].0));

    // Steady state: nothing to reconcile anywhere.
    for desired in &env.plan.resources {
        let o = aws.find(desired, &env.uid, &ids).await.unwrap().unwrap();
        let changes = aws.reconcile(desired, &o, &env.plan.tags).await.unwrap();
        assert!(changes.is_empty(), "{}: {changes:?}", desired.name);
    }

    // A bigger class and more storage, in place.
    let mut bigger = env.desired(ResourceKind::DbInstance, "-db").clone();
    if let ResourceSpec::DbInstance {
        class, storage_gib, ..
    } = &mut bigger.spec
    {
        *class = "db.t3.small".into();
        *storage_gib = 30;
    }
    let changes = aws
        .reconcile(&bigger, db_observed, &env.plan.tags)
        .await
        .unwrap();
    assert_eq!(
        changes,
        [
            format!("DBInstance {db_name}: class db.t3.micro → db.t3.small"),
            format!("DBInstance {db_name}: storage 20 GiB → 30 GiB"),
        ]
    );
    let db = rds
        .describe_db_instances()
        .db_instance_identifier(&db_name)
        .send()
        .await
        .unwrap();
    assert_eq!(
        db.db_instances()[0].db_instance_class(),
        Some("db.t3.small")
    );
    assert_eq!(db.db_instances()[0].allocated_storage(), Some(30));
    let after = aws.find(&bigger, &env.uid, &ids).await.unwrap().unwrap();
    assert_eq!(after.id, db_observed.id, "modified in place, not replaced");
    assert!(
        aws.reconcile(&bigger, &after, &env.plan.tags)
            .await
            .unwrap()
            .is_empty()
    );

    // A tag removed by hand comes back on the next reconcile.
    rds.remove_tags_from_resource()
        .resource_name(after.arn.clone().expect("DB ARN"))
        .tag_keys(tags::ENVIRONMENT)
        .send()
        .await
        .unwrap();
    let stripped = aws.find(&bigger, &env.uid, &ids).await.unwrap().unwrap();
    assert!(!stripped.tags.contains_key(tags::ENVIRONMENT));
    let changes = aws
        .reconcile(&bigger, &stripped, &env.plan.tags)
        .await
        .unwrap();
    assert_eq!(
        changes,
        [format!(
            "DBInstance {db_name}: restored tags {}",
            tags::ENVIRONMENT
        )]
    );
    let restored = aws.find(&bigger, &env.uid, &ids).await.unwrap().unwrap();
    assert_eq!(
        restored.tags.get(tags::ENVIRONMENT),
        env.plan.tags.get(tags::ENVIRONMENT)
    );

    // Marking everything orphaned adds the tag and keeps the others; reconcile leaves
    // tags it does not own alone.
    let orphaned = BTreeMap::from([(tags::ORPHANED.to_owned(), "true".to_owned())]);
    for (kind, o) in &inventory {
        aws.tag(*kind, o, &orphaned).await.unwrap();
    }
    let marked = aws.inventory(&env.cluster).await.unwrap();
    assert_eq!(marked.len(), inventory.len());
    for (kind, o) in &marked {
        assert_eq!(
            o.tags.get(tags::ORPHANED).map(String::as_str),
            Some("true"),
            "{kind} {}",
            o.id
        );
        assert!(o.tags.contains_key(tags::NAME), "{kind} {}", o.id);
    }
    let vpc_desired = env.desired(ResourceKind::Vpc, "-vpc");
    let vpc_now = aws
        .find(vpc_desired, &env.uid, &BTreeMap::new())
        .await
        .unwrap()
        .unwrap();
    assert!(
        aws.reconcile(vpc_desired, &vpc_now, &env.plan.tags)
            .await
            .unwrap()
            .is_empty()
    );

    // Delete in reverse creation order; a second delete of a gone resource is fine.
    for desired in env.plan.resources.iter().rev() {
        let o = &created[&desired.name];
        let mut gone = false;
        for _ in 0..10 {
            gone = aws
                .delete(desired.kind, o)
                .await
                .unwrap_or_else(|e| panic!("deleting {}: {e}", desired.name));
            if gone {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(gone, "{} never reported gone", desired.name);
        assert!(
            aws.delete(desired.kind, o).await.unwrap(),
            "second delete of {}",
            desired.name
        );
        assert_eq!(
            aws.find(desired, &env.uid, &BTreeMap::new()).await.unwrap(),
            None,
            "{} still found",
            desired.name
        );
    }
    assert_eq!(aws.inventory(&env.cluster).await.unwrap(), []);
}

#[tokio::test]
async fn database_group_rule_is_repaired_after_a_crash_and_drift() {
    let aws = driver().await;
    let (ec2, _) = raw().await;
    let env = Env::new();
    // VPC, two subnets, compute and database groups.
    let (created, ids) = env.create(&aws, 5).await;
    let db_group = env.desired(ResourceKind::SecurityGroup, "-database");
    let db_group_id = ids[&db_group.name].clone();
    let compute_id = ids[&env.desired(ResourceKind::SecurityGroup, "-compute").name].clone();

    let rules =
        |g: aws_sdk_ec2::operation::describe_security_groups::DescribeSecurityGroupsOutput| {
            let mut rules: Vec<String> = g.security_groups()[0]
                .ip_permissions()
                .iter()
                .flat_map(|p| {
                    let port = p.from_port().unwrap_or(-1);
                    p.ip_ranges()
                        .iter()
                        .map(move |r| format!("{port} {}", r.cidr_ip().unwrap()))
                        .chain(
                            p.user_id_group_pairs()
                                .iter()
                                .map(move |r| format!("{port} {}", r.group_id().unwrap())),
                        )
                })
                .collect();
            rules.sort();
            rules
        };
    let describe = || {
        ec2.describe_security_groups()
            .group_ids(&db_group_id)
            .send()
    };

    // A crash between CreateSecurityGroup and AuthorizeSecurityGroupIngress leaves the
    // group without its rule; someone also opened the port to the world.
    ec2.revoke_security_group_ingress()
        .group_id(&db_group_id)
        .ip_permissions(
            aws_sdk_ec2::types::IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(5432)
                .to_port(5432)
                .user_id_group_pairs(
                    aws_sdk_ec2::types::UserIdGroupPair::builder()
                        .group_id(&compute_id)
                        // moto matches the description too (AWS does not).
                        .description("pave: database port from the compute group")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    ec2.authorize_security_group_ingress()
        .group_id(&db_group_id)
        .ip_protocol("tcp")
        .from_port(5432)
        .to_port(5432)
        .cidr_ip("0.0.0.0/0")
        .send()
        .await
        .unwrap();
    assert_eq!(rules(describe().await.unwrap()), ["5432 0.0.0.0/0"]);

    // Creating again (what the operator does after restarting) repairs it.
    let again = aws
        .create(db_group, &env.plan.tags, &ids, None)
        .await
        .unwrap();
    assert_eq!(again.id, db_group_id);
    assert_eq!(
        rules(describe().await.unwrap()),
        [format!("5432 {compute_id}")]
    );

    // Drift on a running environment: an extra rule and a removed tag.
    ec2.authorize_security_group_ingress()
        .group_id(&db_group_id)
        .ip_protocol("tcp")
        .from_port(22)
        .to_port(22)
        .cidr_ip("10.0.0.0/8")
        .send()
        .await
        .unwrap();
    ec2.delete_tags()
        .resources(&db_group_id)
        .tags(
            aws_sdk_ec2::types::Tag::builder()
                .key(tags::ENVIRONMENT)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let observed = aws
        .find(db_group, &env.uid, &BTreeMap::new())
        .await
        .unwrap()
        .unwrap();
    assert!(!observed.tags.contains_key(tags::ENVIRONMENT));
    let changes = aws
        .reconcile(db_group, &observed, &env.plan.tags)
        .await
        .unwrap();
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert!(
        changes[0].contains("revoked ingress tcp 22 from 10.0.0.0/8"),
        "{changes:?}"
    );
    assert!(
        changes[1].contains(&format!("restored tags {}", tags::ENVIRONMENT)),
        "{changes:?}"
    );
    assert_eq!(
        rules(describe().await.unwrap()),
        [format!("5432 {compute_id}")]
    );
    let repaired = aws
        .find(db_group, &env.uid, &BTreeMap::new())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        repaired.tags.get(tags::ENVIRONMENT),
        env.plan.tags.get(tags::ENVIRONMENT)
    );
    assert!(
        aws.reconcile(db_group, &repaired, &env.plan.tags)
            .await
            .unwrap()
            .is_empty()
    );

    // Deleting the compute group first revokes the database group's reference to it.
    let compute = &created[&env.desired(ResourceKind::SecurityGroup, "-compute").name];
    assert!(
        aws.delete(ResourceKind::SecurityGroup, compute)
            .await
            .unwrap()
    );
    assert!(rules(describe().await.unwrap()).is_empty());

    env.teardown(&aws).await;
    assert_eq!(aws.inventory(&env.cluster).await.unwrap(), []);
}

/// A security group whose pave tags were stripped is invisible to the look-up by tag;
/// EC2's unique group name per VPC leads back to it, so a create adopts it instead of
/// making a second one, and reconcile puts the tags back.
#[tokio::test]
async fn a_group_whose_tags_were_lost_is_adopted_not_duplicated() {
    let aws = driver().await;
    let (ec2, _) = raw().await;
    let env = Env::new();
    let (created, ids) = env.create(&aws, 4).await;
    let compute = env.desired(ResourceKind::SecurityGroup, "-compute");
    let id = created[&compute.name].id.clone();

    ec2.delete_tags()
        .resources(&id)
        .tags(aws_sdk_ec2::types::Tag::builder().key(tags::NAME).build())
        .tags(
            aws_sdk_ec2::types::Tag::builder()
                .key(tags::ENVIRONMENT_UID)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        aws.find(compute, &env.uid, &BTreeMap::new()).await.unwrap(),
        None
    );
    let adopted = aws
        .create(compute, &env.plan.tags, &ids, None)
        .await
        .unwrap();
    assert_eq!(adopted.id, id);
    let changes = aws
        .reconcile(compute, &adopted, &env.plan.tags)
        .await
        .unwrap();
    assert_eq!(
        changes,
        [format!(
            "SecurityGroup {}: restored tags {}, {}",
            compute.name,
            tags::ENVIRONMENT_UID,
            tags::NAME
        )]
    );
    assert_eq!(
        aws.find(compute, &env.uid, &BTreeMap::new())
            .await
            .unwrap()
            .unwrap()
            .id,
        id
    );
    let inventory = aws.inventory(&env.cluster).await.unwrap();
    let groups = inventory
        .iter()
        .filter(|(k, _)| *k == ResourceKind::SecurityGroup)
        .count();
    assert_eq!(groups, 1, "{inventory:#?}");

    env.teardown(&aws).await;
    assert_eq!(aws.inventory(&env.cluster).await.unwrap(), []);
}

#[tokio::test]
async fn an_rds_name_held_by_another_environment_is_never_adopted() {
    let aws = driver().await;
    let (_, rds) = raw().await;
    let env = Env::new();
    let (_, ids) = env.create(&aws, 3).await;
    let subnet_group = env.desired(ResourceKind::DbSubnetGroup, "-db-subnets");

    // Someone else's group already holds the deterministic name.
    rds.create_db_subnet_group()
        .db_subnet_group_name(&subnet_group.name)
        .db_subnet_group_description("not pave's")
        .subnet_ids(&ids[&env.desired(ResourceKind::Subnet, "-subnet-a").name])
        .subnet_ids(&ids[&env.desired(ResourceKind::Subnet, "-subnet-b").name])
        .tags(
            aws_sdk_rds::types::Tag::builder()
                .key(tags::ENVIRONMENT_UID)
                .value("another-uid")
                .build(),
        )
        .send()
        .await
        .unwrap();

    let err = aws
        .find(subnet_group, &env.uid, &BTreeMap::new())
        .await
        .unwrap_err();
    assert!(err.is_terminal(), "{err}");
    assert_eq!(err.code(), "NameConflict");
    assert!(err.to_string().contains("another-uid"), "{err}");
    let err = aws
        .create(subnet_group, &env.plan.tags, &ids, None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "NameConflict");

    // The other group survives; pave cleans up only its own.
    rds.delete_db_subnet_group()
        .db_subnet_group_name(&subnet_group.name)
        .send()
        .await
        .unwrap();
    env.teardown(&aws).await;
}

#[tokio::test]
async fn deleting_what_never_existed_succeeds() {
    let aws = driver().await;
    let absent = |id: &str| Observed {
        id: id.into(),
        ..Observed::default()
    };
    for (kind, id) in [
        (ResourceKind::Instance, "i-0123456789abcdef0"),
        (ResourceKind::DbInstance, "pave-never-db"),
        (ResourceKind::DbSubnetGroup, "pave-never-db-subnets"),
        (ResourceKind::SecurityGroup, "sg-0123456789abcdef0"),
        (ResourceKind::Subnet, "subnet-0123456789abcdef0"),
        (ResourceKind::Vpc, "vpc-0123456789abcdef0"),
    ] {
        let gone = aws.delete(kind, &absent(id)).await;
        assert_eq!(gone, Ok(true), "{kind} {id}");
    }
}

#[tokio::test]
async fn invalid_requests_are_terminal_and_never_carry_the_password() {
    let aws = driver().await;
    let env = Env::new();
    // VPC, subnets and both groups, then a database on an engine RDS does not have.
    let (_, mut ids) = env.create(&aws, 5).await;
    let subnet_group = env.desired(ResourceKind::DbSubnetGroup, "-db-subnets");
    let o = aws
        .create(subnet_group, &env.plan.tags, &ids, None)
        .await
        .unwrap();
    ids.insert(subnet_group.name.clone(), o.id);

    let mut db = env.desired(ResourceKind::DbInstance, "-db").clone();
    if let ResourceSpec::DbInstance { engine, .. } = &mut db.spec {
        *engine = format!("postgres-{PASSWORD}");
    }
    let err = aws
        .create(&db, &env.plan.tags, &ids, Some(PASSWORD))
        .await
        .unwrap_err();
    assert!(err.is_terminal(), "{err}");
    assert_eq!(err.code(), "InvalidParameterValue");
    assert!(
        !format!("{err} {err:?}").contains(PASSWORD),
        "the password leaked: {err}"
    );
    assert!(
        err.to_string().starts_with(&format!(
            "CreateDBInstance on {}: InvalidParameterValue: ",
            db.name
        )),
        "{err}"
    );

    // No password at all is refused before anything reaches AWS.
    let err = aws
        .create(
            env.desired(ResourceKind::DbInstance, "-db"),
            &env.plan.tags,
            &ids,
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "MissingPassword");
    assert_eq!(
        aws.find(&db, &env.uid, &BTreeMap::new()).await.unwrap(),
        None
    );

    // A subnet outside its VPC's range: an error code the classifier has no rule for
    // (InvalidSubnet.Range), a 4xx, hence Terminal.
    let mut outside = env.desired(ResourceKind::Subnet, "-subnet-a").clone();
    outside.name.push_str("-outside");
    if let ResourceSpec::Subnet { cidr, .. } = &mut outside.spec {
        *cidr = "10.99.0.0/24".into();
    }
    let err = aws
        .create(&outside, &env.plan.tags, &ids, None)
        .await
        .unwrap_err();
    assert!(err.is_terminal(), "{err}");
    assert_eq!(err.code(), "InvalidSubnet.Range", "{err}");
    assert!(err.to_string().contains("10.99.0.0/24"), "{err}");

    env.teardown(&aws).await;
    assert_eq!(aws.inventory(&env.cluster).await.unwrap(), []);
}

#[tokio::test]
async fn a_missing_reference_is_recoverable_and_creates_nothing() {
    let aws = driver().await;
    let env = Env::new();
    let subnet = env.desired(ResourceKind::Subnet, "-subnet-a");
    let err = aws
        .create(subnet, &env.plan.tags, &BTreeMap::new(), None)
        .await
        .unwrap_err();
    assert!(!err.is_terminal(), "{err}");
    assert_eq!(err.code(), "DependencyNotReady");
    assert!(
        err.to_string()
            .contains(&env.desired(ResourceKind::Vpc, "-vpc").name),
        "{err}"
    );
    assert_eq!(aws.inventory(&env.cluster).await.unwrap(), []);
}

#[tokio::test]
async fn a_hung_endpoint_fails_recoverably_within_the_operation_timeout() {
    // Accepts connections and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    let aws = Aws::connect_with_credentials(REGION, Some(&endpoint), credentials()).await;
    let env = Env::new();
    let started = Instant::now();
    let err: CloudError = aws
        .find(&env.plan.resources[0], &env.uid, &BTreeMap::new())
        .await
        .unwrap_err();
    let waited = started.elapsed();
    assert!(!err.is_terminal(), "{err}");
    assert_eq!(err.code(), "Timeout", "{err}");
    assert!(waited < Duration::from_secs(25), "blocked for {waited:?}");

    // An inventory asks for smaller pages first, and gives up once the smallest one
    // timed out too: after six page timeouts (1000, 500, 250, 125, 62, 50), naming the
    // call.
    let page_timeout = Duration::from_millis(500);
    let aws = aws.with_page_timeout(page_timeout);
    let started = Instant::now();
    let err = aws.inventory(&env.cluster).await.unwrap_err();
    let waited = started.elapsed();
    assert!(!err.is_terminal(), "{err}");
    assert_eq!(err.code(), "Timeout", "{err}");
    let message = err.to_string();
    assert!(
        message.starts_with("DescribeVpcs on ") && message.contains("not even a page of 50"),
        "{message}"
    );
    assert!(waited >= page_timeout * 6, "gave up after {waited:?}");
    assert!(
        waited < page_timeout * 6 + Duration::from_secs(5),
        "blocked for {waited:?}"
    );
}

/// Issue 10, defect 11: at 400 environments one DescribeSecurityGroups outgrew the
/// per-call timeout, so the inventory never completed. Here pages of more than 60
/// groups are slower than the page timeout (the proxy cuts moto's whole answers into
/// pages as AWS does and delays the large ones), and the inventory must still list
/// every group, in pages small enough to answer in time.
#[tokio::test]
async fn an_inventory_whose_full_pages_are_too_slow_completes_in_smaller_pages() {
    const GROUPS: usize = 150;
    const FAST_UP_TO: usize = 60;
    const PAGE_TIMEOUT: Duration = Duration::from_secs(2);
    let moto = TestEnv::shared();
    let proxy = FaultProxy::start(&moto.moto_endpoint()).expect("start the fault proxy");
    proxy.set_aws_paging(true);
    let aws = Aws::connect_with_credentials(REGION, Some(&proxy.endpoint()), credentials())
        .await
        .with_page_timeout(PAGE_TIMEOUT);
    let (ec2, _) = raw().await;
    let env = Env::new();
    let cluster_tags = |kind| {
        aws_sdk_ec2::types::TagSpecification::builder()
            .resource_type(kind)
            .tags(
                aws_sdk_ec2::types::Tag::builder()
                    .key(tags::CLUSTER)
                    .value(&env.cluster)
                    .build(),
            )
            .build()
    };
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.65.0.0/20")
        .tag_specifications(cluster_tags(aws_sdk_ec2::types::ResourceType::Vpc))
        .send()
        .await
        .unwrap()
        .vpc()
        .and_then(|v| v.vpc_id())
        .unwrap()
        .to_owned();
    let mut groups = Vec::new();
    for i in 0..GROUPS {
        let id = ec2
            .create_security_group()
            .group_name(format!("paging-{}-{i}", env.cluster))
            .description("paging")
            .vpc_id(&vpc)
            .tag_specifications(cluster_tags(
                aws_sdk_ec2::types::ResourceType::SecurityGroup,
            ))
            .send()
            .await
            .unwrap()
            .group_id()
            .unwrap()
            .to_owned();
        groups.push(id);
    }
    groups.sort();
    proxy.set_rules(vec![Rule::new(
        ["Describe*"],
        When::Always,
        Fault::SlowPages {
            items_over: FAST_UP_TO,
            delay: Duration::from_secs(60),
        },
    )]);
    proxy.clear_requests();

    let started = Instant::now();
    let inventory = aws
        .inventory(&env.cluster)
        .await
        .expect("the inventory completes");
    let took = started.elapsed();
    let listed: Vec<String> = inventory
        .iter()
        .filter(|(kind, _)| *kind == ResourceKind::SecurityGroup)
        .map(|(_, o)| o.id.clone())
        .collect();
    assert_eq!(listed, groups, "every group, once");
    let vpcs: Vec<&str> = inventory
        .iter()
        .filter(|(kind, _)| *kind == ResourceKind::Vpc)
        .map(|(_, o)| o.id.as_str())
        .collect();
    assert_eq!(vpcs, [vpc.as_str()]);

    // The log: the full page and the halves that were still too large timed out
    // (the driver gave up on them, so nobody was answered), then smaller pages were
    // answered, each within what the proxy answers at once, together every group.
    let pages: Vec<(i32, Option<u16>, Option<usize>)> = proxy
        .requests()
        .iter()
        .filter(|s| s.action == "DescribeSecurityGroups")
        .map(|s| {
            (
                s.param("MaxResults").unwrap().parse().unwrap(),
                s.status,
                s.items,
            )
        })
        .collect();
    let timed_out: Vec<i32> = pages
        .iter()
        .filter(|(_, status, _)| status.is_none())
        .map(|(size, ..)| *size)
        .collect();
    assert_eq!(timed_out[..4], [1000, 500, 250, 125], "{pages:?}");
    let answered: Vec<&(i32, Option<u16>, Option<usize>)> = pages
        .iter()
        .filter(|(_, status, _)| status.is_some())
        .collect();
    assert!(
        answered
            .iter()
            .all(|(size, status, items)| *status == Some(200)
                && *size as usize <= FAST_UP_TO
                && items.is_some_and(|n| n <= FAST_UP_TO)),
        "{pages:?}"
    );
    let total: usize = answered.iter().map(|(.., items)| items.unwrap()).sum();
    assert_eq!(total, GROUPS, "{pages:?}");
    // Each timed-out page cost one page timeout, not a listing's worth of retries.
    assert!(
        took < PAGE_TIMEOUT * (timed_out.len() as u32 + 6),
        "{took:?} for {pages:?}"
    );
    // RDS pages at its own maximum, 100 (MaxRecords must be 20..=100).
    let requests = proxy.requests();
    let rds_sizes: Vec<&str> = requests
        .iter()
        .filter(|s| s.service == "rds")
        .filter_map(|s| s.param("MaxRecords"))
        .collect();
    assert!(
        !rds_sizes.is_empty() && rds_sizes.iter().all(|s| *s == "100"),
        "{rds_sizes:?}"
    );

    for id in &groups {
        ec2.delete_security_group()
            .group_id(id)
            .send()
            .await
            .unwrap();
    }
    ec2.delete_vpc().vpc_id(&vpc).send().await.unwrap();
}
