//! The resource plan as the operator uses it: the article's environment under the
//! default configuration, and what changes with the spec and the configuration.

use pave_cloud::config::OperatorConfig;
use pave_cloud::model::{ResourceKind, ResourceSpec, SecurityGroupRole, tags};
use pave_cloud::plan::{PlanError, allocate_cidr, plan, resource_name};
use pave_cloud::policy::{DbEngine, EnvironmentRequest};

const UID: &str = "3f2a9c1e-7b4d-4e8a-9f10-2c3d4e5f6a7b";

/// `examples/staging-env.yaml`, as the operator hands it to the plan.
fn article_request() -> EnvironmentRequest {
    EnvironmentRequest {
        namespace: "team-payments".into(),
        name: "feature-payment-v2-env".into(),
        uid: UID.into(),
        region: "ap-northeast-2".into(),
        db_size: Some("db.t3.medium".into()),
        db_engine: DbEngine::Postgres,
        db_engine_version: Some("16".into()),
        db_storage_gib: 20,
        cluster_size: "small".into(),
        ttl: Some("72h".into()),
        connection_secret_namespace: None,
        gitops: None,
    }
}

fn names(plan: &pave_cloud::Plan) -> Vec<(ResourceKind, &str)> {
    plan.resources
        .iter()
        .map(|r| (r.kind, r.name.as_str()))
        .collect()
}

#[test]
fn the_articles_environment_has_every_resource_in_creation_order() {
    let config = OperatorConfig::default();
    let p = plan(&article_request(), &config, "10.64.16.0/20", "test-cluster").unwrap();

    use ResourceKind::*;
    assert_eq!(
        names(&p),
        [
            (Vpc, "pave-3f2a9c1e-vpc"),
            (Subnet, "pave-3f2a9c1e-subnet-a"),
            (Subnet, "pave-3f2a9c1e-subnet-b"),
            (SecurityGroup, "pave-3f2a9c1e-sg-compute"),
            (SecurityGroup, "pave-3f2a9c1e-sg-db"),
            (DbSubnetGroup, "pave-3f2a9c1e-dbsubnets"),
            (DbInstance, "pave-3f2a9c1e-db"),
            (Instance, "pave-3f2a9c1e-vm-0"),
        ]
    );
    // The order never goes backwards in the model's creation order, so teardown can
    // run the list in reverse.
    let rank = |k| ResourceKind::CREATION_ORDER.iter().position(|c| *c == k);
    assert!(
        p.resources
            .windows(2)
            .all(|w| rank(w[0].kind) <= rank(w[1].kind))
    );

    assert_eq!(p.region, "ap-northeast-2");
    assert_eq!(p.tags[tags::ENVIRONMENT_UID], UID);
    assert_eq!(
        p.tags[tags::ENVIRONMENT],
        "team-payments/feature-payment-v2-env"
    );
    assert_eq!(p.tags[tags::CLUSTER], "test-cluster");
    assert_eq!(p.tags.len(), 3);

    let spec = |i: usize| &p.resources[i].spec;
    assert_eq!(
        spec(0),
        &ResourceSpec::Vpc {
            cidr: "10.64.16.0/20".into()
        }
    );
    assert_eq!(
        spec(1),
        &ResourceSpec::Subnet {
            vpc: "pave-3f2a9c1e-vpc".into(),
            cidr: "10.64.16.0/22".into(),
            availability_zone: "ap-northeast-2a".into(),
        }
    );
    assert_eq!(
        spec(2),
        &ResourceSpec::Subnet {
            vpc: "pave-3f2a9c1e-vpc".into(),
            cidr: "10.64.20.0/22".into(),
            availability_zone: "ap-northeast-2b".into(),
        }
    );
    assert_eq!(
        spec(3),
        &ResourceSpec::SecurityGroup {
            vpc: "pave-3f2a9c1e-vpc".into(),
            role: SecurityGroupRole::Compute,
            db_port: None,
            compute_group: None,
        }
    );
    // The database is reachable on its engine's port, and only from compute.
    assert_eq!(
        spec(4),
        &ResourceSpec::SecurityGroup {
            vpc: "pave-3f2a9c1e-vpc".into(),
            role: SecurityGroupRole::Database,
            db_port: Some(5432),
            compute_group: Some("pave-3f2a9c1e-sg-compute".into()),
        }
    );
    assert_eq!(
        spec(5),
        &ResourceSpec::DbSubnetGroup {
            subnets: vec![
                "pave-3f2a9c1e-subnet-a".into(),
                "pave-3f2a9c1e-subnet-b".into()
            ]
        }
    );
    assert_eq!(
        spec(6),
        &ResourceSpec::DbInstance {
            class: "db.t3.medium".into(),
            engine: "postgres".into(),
            engine_version: Some("16".into()),
            storage_gib: 20,
            subnet_group: "pave-3f2a9c1e-dbsubnets".into(),
            security_group: "pave-3f2a9c1e-sg-db".into(),
            database_name: "app".into(),
            username: "pave".into(),
        }
    );
    assert_eq!(
        spec(7),
        &ResourceSpec::Instance {
            instance_type: "t3.small".into(),
            image_id: pave_cloud::config::EMULATOR_AMI.into(),
            subnet: "pave-3f2a9c1e-subnet-a".into(),
            security_group: "pave-3f2a9c1e-sg-compute".into(),
        }
    );
}

#[test]
fn without_db_size_there_are_no_database_resources() {
    let request = EnvironmentRequest {
        db_size: None,
        ..article_request()
    };
    let p = plan(&request, &OperatorConfig::default(), "10.64.16.0/20", "c").unwrap();
    assert!(
        p.resources.iter().all(|r| !matches!(
            r.kind,
            ResourceKind::DbInstance | ResourceKind::DbSubnetGroup
        )),
        "{:#?}",
        p.resources
    );
    assert!(!p.resources.iter().any(|r| r.name.ends_with("-sg-db")));
    assert_eq!(
        p.resources.len(),
        5,
        "VPC, 2 subnets, compute group, 1 instance"
    );
}

#[test]
fn mysql_opens_its_own_port() {
    let request = EnvironmentRequest {
        db_engine: DbEngine::Mysql,
        ..article_request()
    };
    let p = plan(&request, &OperatorConfig::default(), "10.64.16.0/20", "c").unwrap();
    let db_group = p.resources.iter().find(|r| r.name.ends_with("-sg-db"));
    assert!(matches!(
        db_group.map(|r| &r.spec),
        Some(ResourceSpec::SecurityGroup {
            db_port: Some(3306),
            ..
        })
    ));
}

#[test]
fn instances_follow_the_profile_and_alternate_subnets() {
    let request = EnvironmentRequest {
        cluster_size: "large".into(),
        ..article_request()
    };
    let p = plan(&request, &OperatorConfig::default(), "10.64.16.0/20", "c").unwrap();
    let instances: Vec<_> = p
        .resources
        .iter()
        .filter_map(|r| match &r.spec {
            ResourceSpec::Instance {
                instance_type,
                subnet,
                ..
            } => Some((r.name.as_str(), instance_type.as_str(), subnet.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(
        instances,
        [
            ("pave-3f2a9c1e-vm-0", "t3.large", "pave-3f2a9c1e-subnet-a"),
            ("pave-3f2a9c1e-vm-1", "t3.large", "pave-3f2a9c1e-subnet-b"),
            ("pave-3f2a9c1e-vm-2", "t3.large", "pave-3f2a9c1e-subnet-a"),
        ]
    );

    let none = EnvironmentRequest {
        cluster_size: "none".into(),
        ..article_request()
    };
    let p = plan(&none, &OperatorConfig::default(), "10.64.16.0/20", "c").unwrap();
    assert!(!p.resources.iter().any(|r| r.kind == ResourceKind::Instance));
}

#[test]
fn the_regions_ami_wins_over_the_default() {
    let config = OperatorConfig::from_yaml("amis: {ap-northeast-2: ami-0abc}\n").unwrap();
    let p = plan(&article_request(), &config, "10.64.16.0/20", "c").unwrap();
    assert!(p.resources.iter().any(|r| matches!(
        &r.spec,
        ResourceSpec::Instance { image_id, .. } if image_id == "ami-0abc"
    )));
}

#[test]
fn names_are_deterministic_and_derive_from_the_uid() {
    let config = OperatorConfig::default();
    let a = plan(&article_request(), &config, "10.64.16.0/20", "c").unwrap();
    let b = plan(&article_request(), &config, "10.64.16.0/20", "c").unwrap();
    assert_eq!(a, b);

    let other = EnvironmentRequest {
        uid: "ABCDEF01-0000-0000-0000-000000000000".into(),
        ..article_request()
    };
    let c = plan(&other, &config, "10.64.16.0/20", "c").unwrap();
    assert_eq!(c.resources[0].name, "pave-abcdef01-vpc");
    assert_eq!(resource_name(UID, "db").unwrap(), "pave-3f2a9c1e-db");
    assert!(matches!(
        resource_name("not-a-uid", "db"),
        Err(PlanError::InvalidUid { .. })
    ));
}

#[test]
fn an_unknown_profile_says_what_to_configure() {
    let request = EnvironmentRequest {
        cluster_size: "xlarge".into(),
        ..article_request()
    };
    let err = plan(&request, &OperatorConfig::default(), "10.64.16.0/20", "c").unwrap_err();
    let message = err.to_string();
    assert!(message.contains("\"xlarge\""), "{message}");
    assert!(message.contains("none, large, medium, small"), "{message}");
    assert!(message.contains("profiles.xlarge"), "{message}");
}

#[test]
fn a_missing_ami_says_what_to_configure() {
    let config =
        OperatorConfig::from_yaml("defaultAmi: null\namis: {eu-west-1: ami-0abc}\n").unwrap();
    let err = plan(&article_request(), &config, "10.64.16.0/20", "c").unwrap_err();
    assert_eq!(
        err,
        PlanError::MissingAmi {
            region: "ap-northeast-2".into()
        }
    );
    assert!(err.to_string().contains("amis.ap-northeast-2"), "{err}");
    // No instances, no AMI needed.
    let request = EnvironmentRequest {
        cluster_size: "none".into(),
        ..article_request()
    };
    assert!(plan(&request, &config, "10.64.16.0/20", "c").is_ok());
}

#[test]
fn the_vpc_block_must_be_a_usable_cidr() {
    let config = OperatorConfig::default();
    for (cidr, expect) in [
        ("10.64.16.0", "not an IPv4 CIDR block"),
        ("10.64.16.1/20", "host bits"),
        ("10.0.0.0/8", "/16 to /26"),
        ("10.0.0.0/27", "/16 to /26"),
    ] {
        let err = plan(&article_request(), &config, cidr, "c").unwrap_err();
        assert!(err.to_string().contains(expect), "{cidr}: {err}");
    }
}

#[test]
fn an_allocated_block_plans_cleanly() {
    let config = OperatorConfig::default();
    let taken = ["10.64.0.0/20".to_owned(), "10.100.0.0/16".to_owned()];
    let cidr = allocate_cidr(UID, &config.cidr_pool, config.vpc_prefix_length, &taken).unwrap();
    assert_eq!(
        allocate_cidr(UID, &config.cidr_pool, config.vpc_prefix_length, &taken).unwrap(),
        cidr,
        "stable for the same uid and taken set"
    );
    let p = plan(&article_request(), &config, &cidr, "c").unwrap();
    assert_eq!(p.resources[0].spec, ResourceSpec::Vpc { cidr });
}
