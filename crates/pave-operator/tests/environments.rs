//! DeveloperEnvironments against the real test bed: the real operator binary, the
//! real control plane, and moto's server for AWS. What pave created is checked with
//! boto3 (moto's own client), not with pave's driver.

mod common;

use std::sync::OnceLock;
use std::time::Duration;

use common::devenv::{
    cloud, count, environment, events_about, get, ready_environment, total, wait_phase,
};
use common::{Operator, eventually, kubectl_apply};
use pave_testenv::TestEnv;
use serde_json::{Value, json};

/// Short intervals so the sweeper and drift check act within a test.
const CONFIG: &str = "
allowedRegions: [ap-northeast-2, us-east-1, eu-west-1]
sweepInterval: 2s
sweepGracePeriod: 2s
resyncInterval: 3s
";

static OPERATOR: OnceLock<Operator> = OnceLock::new();

fn operator() -> &'static Operator {
    OPERATOR.get_or_init(|| {
        let operator = Operator::start_with_config(TestEnv::shared(), Some(CONFIG));
        eventually(Duration::from_secs(30), "/readyz answering 200", || {
            (operator.get("/readyz").0 == 200).then_some(())
        });
        operator
    })
}

/// Prints the operator's log when a test fails.
struct LogOnPanic;

impl Drop for LogOnPanic {
    fn drop(&mut self) {
        // Never starts an operator: this runs while a test is already failing.
        if let (true, Some(operator)) = (std::thread::panicking(), OPERATOR.get()) {
            let log = operator.log.lock().unwrap();
            let lines: Vec<&str> = log.lines().collect();
            eprintln!("---- pave-operator log (last 60 lines) ----");
            for line in &lines[lines.len().saturating_sub(60)..] {
                eprintln!("{line}");
            }
        }
    }
}

#[test]
fn an_environment_is_provisioned_updated_and_deleted_in_the_foreground() {
    let _log = LogOnPanic;
    operator();
    let env = TestEnv::shared();
    let ns = env.namespace("devenv-lifecycle");
    let ns = ns.name();
    // The article's environment.
    kubectl_apply(
        env,
        &environment(
            ns,
            "feature-payment-v2-env",
            json!({"region": "ap-northeast-2", "dbSize": "db.t3.medium", "clusterSize": "small"}),
            json!({"compositeDeletePolicy": "Foreground", "writeConnectionSecretsToNamespace": ns}),
        ),
    );
    let obj = wait_phase(env, ns, "feature-payment-v2-env", "Ready");
    let uid = obj["metadata"]["uid"].as_str().unwrap().to_owned();
    let c = cloud(env, "ap-northeast-2", &uid);
    for (kind, n) in [
        ("VPC", 1),
        ("Subnet", 2),
        ("SecurityGroup", 2),
        ("DBSubnetGroup", 1),
        ("DBInstance", 1),
        ("Instance", 1),
    ] {
        assert_eq!(count(&c, kind), n, "{kind} in moto: {c}");
    }
    let db = &c["DBInstance"][0];
    assert_eq!(
        (db["class"].as_str(), db["engine"].as_str()),
        (Some("db.t3.medium"), Some("postgres")),
        "{c}"
    );
    for resources in c.as_object().unwrap().values() {
        for r in resources.as_array().unwrap() {
            assert_eq!(
                r["tags"]["pave.dev/environment"],
                format!("{ns}/feature-payment-v2-env"),
                "{r}"
            );
            assert!(r["tags"]["pave.dev/cluster-id"].is_string(), "{r}");
        }
    }
    // The database port is open only to the compute group.
    let sgs = c["SecurityGroup"].as_array().unwrap();
    let db_group = sgs
        .iter()
        .find(|g| g["ingress"].as_array().is_some_and(|i| !i.is_empty()))
        .expect("a group with ingress");
    let sources = &db_group["ingress"][0]["UserIdGroupPairs"];
    assert_eq!(sources.as_array().map(Vec::len), Some(1), "{db_group}");
    assert!(
        db_group["ingress"][0]["IpRanges"]
            .as_array()
            .is_none_or(|r| r.is_empty()),
        "{db_group}"
    );
    // The status lists every resource with its id, and the secret carries the endpoint.
    let resources = obj["status"]["resources"].as_array().unwrap();
    assert_eq!(resources.len(), 8, "{obj}");
    assert!(resources.iter().all(|r| r["id"].is_string()), "{obj}");
    let secret = get(
        env,
        &[
            "get",
            "secret",
            "feature-payment-v2-env-connection",
            "-n",
            ns,
            "-o",
            "json",
        ],
    )
    .expect("the connection secret");
    for key in [
        "host", "port", "username", "password", "database", "engine", "endpoint", "vpcId",
    ] {
        assert!(
            secret["data"][key].is_string(),
            "secret lacks {key}: {:?}",
            secret["data"]
                .as_object()
                .map(|d| d.keys().collect::<Vec<_>>())
        );
    }
    let status_text = obj["status"].to_string();
    let password = secret["data"]["password"].as_str().unwrap();
    assert!(
        !status_text.contains(password),
        "the password must never be in status"
    );

    // A bigger database and a bigger profile: modified in place, instances added.
    kubectl_apply(
        env,
        &environment(
            ns,
            "feature-payment-v2-env",
            json!({"region": "ap-northeast-2", "dbSize": "db.t3.large", "clusterSize": "medium"}),
            json!({"compositeDeletePolicy": "Foreground", "writeConnectionSecretsToNamespace": ns}),
        ),
    );
    let c = eventually(
        Duration::from_secs(60),
        "the database class and instance count to follow the spec",
        || {
            let c = cloud(env, "ap-northeast-2", &uid);
            (c["DBInstance"][0]["class"] == "db.t3.large" && count(&c, "Instance") == 2)
                .then_some(c)
        },
    );
    assert_eq!(
        count(&c, "DBInstance"),
        1,
        "modified in place, not replaced: {c}"
    );

    // Foreground deletion: the object stays until the cloud is empty.
    env.run_kubectl(&[
        "delete",
        "devenv",
        "feature-payment-v2-env",
        "-n",
        ns,
        "--wait=false",
    ])
    .unwrap();
    eventually(
        Duration::from_secs(90),
        "the environment to be gone",
        || {
            env.run_kubectl(&[
                "get",
                "devenv",
                "feature-payment-v2-env",
                "-n",
                ns,
                "--ignore-not-found",
                "-o",
                "name",
            ])
            .ok()
            .filter(String::is_empty)
        },
    );
    assert_eq!(
        total(&cloud(env, "ap-northeast-2", &uid)),
        0,
        "nothing left behind"
    );
    // Every transition was an Event, which outlives the object. (moto deletes at
    // once, so the steps of a deletion are environment_slow.rs's.)
    let reasons = events_about(env, ns, "feature-payment-v2-env", "", "reason");
    for reason in [
        "Provisioning",
        "Created",
        "Ready",
        "Updating",
        "Deleting",
        "Deleted",
    ] {
        assert!(
            reasons.split_whitespace().any(|r| r == reason),
            "no {reason} Event in {reasons}"
        );
    }
    // One per resource created: the 8 of a small environment, and the medium one's
    // second instance.
    let created = events_about(env, ns, "feature-payment-v2-env", "reason=Created", "note");
    assert_eq!(created.matches(" created: ").count(), 9, "{created}");
}

#[test]
fn background_deletion_is_finished_by_the_sweeper_and_orphans_are_kept() {
    let _log = LogOnPanic;
    operator();
    let env = TestEnv::shared();
    let ns = env.namespace("devenv-policies");
    let ns = ns.name();
    let params = json!({"region": "us-east-1", "dbSize": "db.t3.micro", "clusterSize": "small"});
    kubectl_apply(
        env,
        &environment(
            ns,
            "background",
            params.clone(),
            json!({"compositeDeletePolicy": "Background"}),
        ),
    );
    kubectl_apply(
        env,
        &environment(ns, "orphan", params, json!({"deletionPolicy": "Orphan"})),
    );
    let background = wait_phase(env, ns, "background", "Ready")["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_owned();
    let orphan = wait_phase(env, ns, "orphan", "Ready")["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_owned();

    env.run_kubectl(&["delete", "devenv", "background", "orphan", "-n", ns])
        .unwrap();
    eventually(
        Duration::from_secs(60),
        "the sweeper to empty the background environment",
        || (total(&cloud(env, "us-east-1", &background)) == 0).then_some(()),
    );
    let kept = cloud(env, "us-east-1", &orphan);
    assert_eq!(
        total(&kept),
        8,
        "an orphaned environment keeps everything: {kept}"
    );
    for resources in kept.as_object().unwrap().values() {
        for r in resources.as_array().unwrap() {
            assert_eq!(r["tags"]["pave.dev/orphaned"], "true", "{r}");
        }
    }
}

#[test]
fn a_region_outside_the_guardrails_is_refused_and_nothing_is_created() {
    let _log = LogOnPanic;
    operator();
    let env = TestEnv::shared();
    let ns = env.namespace("devenv-refused");
    let ns = ns.name();
    kubectl_apply(
        env,
        &environment(
            ns,
            "far-away",
            json!({"region": "sa-east-1", "dbSize": "db.t3.micro"}),
            json!({}),
        ),
    );
    let obj = eventually(
        Duration::from_secs(30),
        "Ready=False PolicyViolation",
        || {
            let obj = get(env, &["get", "devenv", "far-away", "-n", ns, "-o", "json"])?;
            let ready = obj["status"]["conditions"]
                .as_array()?
                .iter()
                .find(|c| c["type"] == "Ready")?
                .clone();
            (ready["reason"] == "PolicyViolation").then_some(ready)
        },
    );
    let message = obj["message"].as_str().unwrap();
    assert!(
        message.contains("sa-east-1") && message.contains("allowedRegions"),
        "{message}"
    );
    // The refusal is an Event too.
    let notes = eventually(Duration::from_secs(10), "a PolicyViolation Event", || {
        let notes = events_about(env, ns, "far-away", "reason=PolicyViolation", "note");
        (!notes.is_empty()).then_some(notes)
    });
    assert!(notes.contains("allowedRegions"), "{notes}");
    let uid = env
        .run_kubectl(&[
            "get",
            "devenv",
            "far-away",
            "-n",
            ns,
            "-o",
            "jsonpath={.metadata.uid}",
        ])
        .unwrap();
    assert_eq!(total(&cloud(env, "sa-east-1", &uid)), 0);

    // A connection secret for another namespace needs that namespace's consent.
    kubectl_apply(
        env,
        &environment(
            ns,
            "elsewhere",
            json!({"region": "us-east-1"}),
            json!({"writeConnectionSecretsToNamespace": "kube-system"}),
        ),
    );
    eventually(Duration::from_secs(30), "Ready=False Forbidden", || {
        let obj = get(env, &["get", "devenv", "elsewhere", "-n", ns, "-o", "json"])?;
        let ready = obj["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "Ready")?
            .clone();
        (ready["reason"] == "Forbidden"
            && ready["message"]
                .as_str()?
                .contains("platform.pave.dev/accept-connection-secrets-from"))
        .then_some(())
    });
}

#[test]
fn the_sweeper_removes_what_a_vanished_environment_left_behind() {
    let _log = LogOnPanic;
    operator();
    let env = TestEnv::shared();
    // A VPC tagged for this cluster by an environment that does not exist, as a crash
    // in the middle of a teardown would leave it.
    let cluster = format!("test-{}", std::process::id());
    let made = env
        .boto3(&format!(
            r#"
import boto3
ec2 = boto3.client("ec2", region_name="eu-west-1")
v = ec2.create_vpc(CidrBlock="10.99.0.0/20", TagSpecifications=[{{"ResourceType": "vpc", "Tags": [
    {{"Key": "pave.dev/environment-uid", "Value": "00000000-dead-beef-0000-000000000000"}},
    {{"Key": "pave.dev/cluster-id", "Value": {cluster:?}}},
    {{"Key": "pave.dev/name", "Value": "pave-00000000-vpc"}}]}}])
print(v["Vpc"]["VpcId"])
"#
        ))
        .unwrap();
    assert!(made.trim().starts_with("vpc-"), "{made}");
    // The sweeper looks in regions that have environments; give it one in eu-west-1.
    let ns = env.namespace("devenv-sweeper");
    kubectl_apply(
        env,
        &environment(
            ns.name(),
            "anchor",
            json!({"region": "eu-west-1"}),
            json!({}),
        ),
    );
    wait_phase(env, ns.name(), "anchor", "Ready");
    eventually(
        Duration::from_secs(30),
        "the leaked VPC to be swept",
        || {
            (total(&cloud(
                env,
                "eu-west-1",
                "00000000-dead-beef-0000-000000000000",
            )) == 0)
                .then_some(())
        },
    );
}

#[test]
fn drift_is_set_back_and_reported() {
    let _log = LogOnPanic;
    operator();
    let env = TestEnv::shared();
    let ns = env.namespace("devenv-drift");
    let ns = ns.name();
    let uid = ready_environment(
        env,
        ns,
        "drifty",
        json!({"region": "us-east-1", "dbSize": "db.t3.micro", "clusterSize": "small"}),
        json!({}),
    );
    let before = cloud(env, "us-east-1", &uid);
    let instance = before["Instance"][0]["id"].as_str().unwrap().to_owned();

    // Out of band: a bigger database class, a terminated instance, a removed tag.
    env.boto3(&format!(
        r#"
import boto3
rds = boto3.client("rds", region_name="us-east-1")
ec2 = boto3.client("ec2", region_name="us-east-1")
rds.modify_db_instance(DBInstanceIdentifier={db:?}, DBInstanceClass="db.t3.small", ApplyImmediately=True)
ec2.terminate_instances(InstanceIds=[{instance:?}])
ec2.delete_tags(Resources=[{vpc:?}], Tags=[{{"Key": "pave.dev/environment"}}])
"#,
        db = before["DBInstance"][0]["id"].as_str().unwrap(),
        vpc = before["VPC"][0]["id"].as_str().unwrap(),
    ))
    .unwrap();

    let after = eventually(Duration::from_secs(30), "the drift to be set back", || {
        let c = cloud(env, "us-east-1", &uid);
        let fixed = c["DBInstance"][0]["class"] == "db.t3.micro"
            && count(&c, "Instance") == 1
            && c["VPC"][0]["tags"]["pave.dev/environment"] == format!("{ns}/drifty");
        fixed.then_some(c)
    });
    assert_ne!(
        after["Instance"][0]["id"],
        instance.as_str(),
        "a new instance replaced the terminated one"
    );
    let obj = get(env, &["get", "devenv", "drifty", "-n", ns, "-o", "json"]).unwrap();
    assert!(
        obj["status"]["lastDriftCheck"].is_string(),
        "{}",
        obj["status"]
    );
    let events = events_about(env, ns, "drifty", "", "reason");
    assert!(events.contains("DriftCorrected"), "{events}");
}

#[test]
fn an_environment_whose_every_resource_went_out_of_band_is_rebuilt() {
    let _log = LogOnPanic;
    operator();
    let env = TestEnv::shared();
    let ns = env.namespace("devenv-allgone");
    let ns = ns.name();
    let uid = ready_environment(
        env,
        ns,
        "vanished",
        json!({"region": "us-east-1", "clusterSize": "small"}),
        json!({}),
    );
    let before = cloud(env, "us-east-1", &uid);
    let ids = |kind: &str| -> Vec<String> {
        before[kind]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    };
    // Out of band, everything, in the order AWS allows.
    env.boto3(&format!(
        r#"
import boto3
ec2 = boto3.client("ec2", region_name="us-east-1")
ec2.terminate_instances(InstanceIds={instances:?})
for g in {groups:?}: ec2.delete_security_group(GroupId=g)
for s in {subnets:?}: ec2.delete_subnet(SubnetId=s)
for v in {vpcs:?}: ec2.delete_vpc(VpcId=v)
"#,
        instances = ids("Instance"),
        groups = ids("SecurityGroup"),
        subnets = ids("Subnet"),
        vpcs = ids("VPC"),
    ))
    .unwrap();

    let after = eventually(Duration::from_secs(30), "everything to be rebuilt", || {
        let c = cloud(env, "us-east-1", &uid);
        (total(&c) == total(&before)).then_some(c)
    });
    assert_ne!(after["VPC"][0]["id"], before["VPC"][0]["id"], "{after}");
    let events = events_about(env, ns, "vanished", "", "reason");
    assert!(events.contains("DriftCorrected"), "{events}");
    wait_phase(env, ns, "vanished", "Ready");
}

#[test]
fn an_ingress_rule_opened_on_the_database_group_is_revoked() {
    let _log = LogOnPanic;
    operator();
    let env = TestEnv::shared();
    let ns = env.namespace("devenv-ingress");
    let ns = ns.name();
    let uid = ready_environment(
        env,
        ns,
        "guarded",
        json!({"region": "us-east-1", "dbSize": "db.t3.micro"}),
        json!({}),
    );
    let db_group = |c: &Value| -> Value {
        c["SecurityGroup"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| {
                g["tags"]["pave.dev/name"]
                    .as_str()
                    .is_some_and(|n| n.ends_with("-db"))
            })
            .cloned()
            .unwrap_or_else(|| panic!("no database group: {c}"))
    };
    let group = db_group(&cloud(env, "us-east-1", &uid));
    let wanted = group["ingress"].clone();
    env.boto3(&format!(
        r#"
import boto3
ec2 = boto3.client("ec2", region_name="us-east-1")
ec2.authorize_security_group_ingress(GroupId={id:?}, IpPermissions=[{{
    "IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
    "IpRanges": [{{"CidrIp": "0.0.0.0/0"}}]}}])
"#,
        id = group["id"].as_str().unwrap(),
    ))
    .unwrap();
    eventually(
        Duration::from_secs(30),
        "the rule open to the world to be revoked",
        || {
            let ingress = db_group(&cloud(env, "us-east-1", &uid))["ingress"].clone();
            (ingress == wanted).then_some(())
        },
    );
    // It was there (the drift check may take it away before boto3 could look), and
    // the user is told.
    let notes = events_about(env, ns, "guarded", "reason=DriftCorrected", "note");
    assert!(notes.contains("0.0.0.0/0"), "{notes}");
}

#[test]
fn an_expired_environment_deletes_itself() {
    let _log = LogOnPanic;
    operator();
    let env = TestEnv::shared();
    let ns = env.namespace("devenv-ttl");
    let ns = ns.name();
    kubectl_apply(
        env,
        &environment(
            ns,
            "brief",
            json!({"region": "us-east-1"}),
            // The ttl counts from creation, so it must outlast provisioning on a slow,
            // loaded machine: a 6 s ttl once ran out before the environment was Ready.
            json!({"ttl": "25s"}),
        ),
    );
    let obj = wait_phase(env, ns, "brief", "Ready");
    let created: k8s_openapi::jiff::Timestamp = obj["metadata"]["creationTimestamp"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let expires: k8s_openapi::jiff::Timestamp = obj["status"]["expiresAt"]
        .as_str()
        .unwrap_or_else(|| panic!("no expiresAt: {}", obj["status"]))
        .parse()
        .unwrap();
    assert_eq!(expires.duration_since(created).as_secs(), 25);
    let uid = obj["metadata"]["uid"].as_str().unwrap().to_owned();
    eventually(
        Duration::from_secs(60),
        "the environment to delete itself",
        || {
            env.run_kubectl(&[
                "get",
                "devenv",
                "brief",
                "-n",
                ns,
                "--ignore-not-found",
                "-o",
                "name",
            ])
            .ok()
            .filter(String::is_empty)
        },
    );
    eventually(Duration::from_secs(30), "its resources to be swept", || {
        (total(&cloud(env, "us-east-1", &uid)) == 0).then_some(())
    });
    // Whoever finds the environment gone can learn why: the Event outlives it.
    let events = events_about(env, ns, "brief", "", "reason");
    assert!(events.contains("Expired"), "{events}");
}
