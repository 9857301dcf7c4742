//! DeveloperEnvironment helpers shared by the environment test binaries: manifests,
//! reading objects back with kubectl, waiting for a phase, and what moto holds for an
//! environment (or every environment of a region) as boto3 (moto's own client) sees it.
#![allow(dead_code)] // each test binary uses a different part

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use pave_testenv::TestEnv;
use serde_json::{Value, json};

use super::eventually;

pub fn environment(ns: &str, name: &str, parameters: Value, extra: Value) -> Value {
    let mut env = json!({
        "apiVersion": "platform.pave.dev/v1alpha1", "kind": "DeveloperEnvironment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"parameters": parameters},
    });
    if let (Some(spec), Some(extra)) = (env["spec"].as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    env
}

/// Applies an environment and waits for it to be Ready; returns its UID.
pub fn ready_environment(
    env: &TestEnv,
    ns: &str,
    name: &str,
    parameters: Value,
    extra: Value,
) -> String {
    super::kubectl_apply(env, &environment(ns, name, parameters, extra));
    wait_phase(env, ns, name, "Ready")["metadata"]["uid"]
        .as_str()
        .expect("a uid")
        .to_owned()
}

pub fn get(env: &TestEnv, args: &[&str]) -> Option<Value> {
    serde_json::from_str(&env.run_kubectl(args).ok()?).ok()
}

pub fn wait_phase(env: &TestEnv, ns: &str, name: &str, phase: &str) -> Value {
    eventually(
        Duration::from_secs(60),
        &format!("{name} in phase {phase}"),
        || {
            let obj = get(env, &["get", "devenv", name, "-n", ns, "-o", "json"])?;
            (obj["status"]["phase"] == phase).then_some(obj)
        },
    )
}

/// Every resource moto holds for the environment with this UID, as boto3 sees it:
/// `{kind: [{id, tags, ...}]}`.
pub fn cloud(env: &TestEnv, region: &str, uid: &str) -> Value {
    let program = format!(
        r#"
import json, boto3
region, uid = {region:?}, {uid:?}
ec2 = boto3.client("ec2", region_name=region)
rds = boto3.client("rds", region_name=region)
flt = [{{"Name": "tag:pave.dev/environment-uid", "Values": [uid]}}]
tags = lambda ts: {{t["Key"]: t["Value"] for t in ts or []}}
out = {{
  "VPC": [{{"id": v["VpcId"], "cidr": v["CidrBlock"], "tags": tags(v.get("Tags"))}} for v in ec2.describe_vpcs(Filters=flt)["Vpcs"]],
  "Subnet": [{{"id": s["SubnetId"], "az": s["AvailabilityZone"], "tags": tags(s.get("Tags"))}} for s in ec2.describe_subnets(Filters=flt)["Subnets"]],
  "SecurityGroup": [{{"id": g["GroupId"], "ingress": g["IpPermissions"], "tags": tags(g.get("Tags"))}} for g in ec2.describe_security_groups(Filters=flt)["SecurityGroups"]],
  "Instance": [{{"id": i["InstanceId"], "type": i["InstanceType"], "tags": tags(i.get("Tags"))}}
               for r in ec2.describe_instances(Filters=flt)["Reservations"] for i in r["Instances"]
               if i["State"]["Name"] not in ("terminated", "shutting-down")],
  "DBInstance": [], "DBSubnetGroup": [],
}}
for d in rds.describe_db_instances()["DBInstances"]:
    t = tags(rds.list_tags_for_resource(ResourceName=d["DBInstanceArn"])["TagList"])
    if t.get("pave.dev/environment-uid") == uid:
        out["DBInstance"].append({{"id": d["DBInstanceIdentifier"], "class": d["DBInstanceClass"], "engine": d["Engine"], "version": d["EngineVersion"], "storage": d["AllocatedStorage"], "tags": t}})
for g in rds.describe_db_subnet_groups()["DBSubnetGroups"]:
    t = tags(rds.list_tags_for_resource(ResourceName=g["DBSubnetGroupArn"])["TagList"])
    if t.get("pave.dev/environment-uid") == uid:
        out["DBSubnetGroup"].append({{"id": g["DBSubnetGroupName"], "tags": t}})
print(json.dumps(out))
"#
    );
    serde_json::from_str(&env.boto3(&program).expect("boto3 against moto"))
        .expect("JSON from boto3")
}

pub fn count(cloud: &Value, kind: &str) -> usize {
    cloud[kind].as_array().map_or(0, Vec::len)
}

pub fn total(cloud: &Value) -> usize {
    [
        "VPC",
        "Subnet",
        "SecurityGroup",
        "Instance",
        "DBInstance",
        "DBSubnetGroup",
    ]
    .iter()
    .map(|k| count(cloud, k))
    .sum()
}

pub fn get_environment(env: &TestEnv, ns: &str, name: &str) -> Option<Value> {
    get(env, &["get", "devenv", name, "-n", ns, "-o", "json"])
}

pub fn uid_of(env: &TestEnv, ns: &str, name: &str) -> String {
    eventually(Duration::from_secs(10), "the environment's uid", || {
        get_environment(env, ns, name)?["metadata"]["uid"]
            .as_str()
            .map(str::to_owned)
    })
}

pub fn condition<'a>(obj: &'a Value, type_: &str) -> Option<&'a Value> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

/// What the Events about `name` in `ns` say: `field` is `reason` or `note`, and
/// `selector` narrows them further (`reason=DriftCorrected`), space-separated.
pub fn events_about(env: &TestEnv, ns: &str, name: &str, selector: &str, field: &str) -> String {
    let mut fields = format!("regarding.name={name}");
    if !selector.is_empty() {
        fields = format!("{fields},{selector}");
    }
    env.run_kubectl(&[
        "get",
        "events.events.k8s.io",
        "-n",
        ns,
        "--field-selector",
        &fields,
        "-o",
        &format!("jsonpath={{.items[*].{field}}}"),
    ])
    .expect("kubectl get events")
}

/// Merges `spec` into the environment's spec (`kubectl patch --type=merge`).
pub fn patch_spec(env: &TestEnv, ns: &str, name: &str, spec: Value) {
    env.run_kubectl(&[
        "patch",
        "devenv",
        name,
        "-n",
        ns,
        "--type=merge",
        "-p",
        &json!({ "spec": spec }).to_string(),
    ])
    .expect("kubectl patch");
}

pub fn delete(env: &TestEnv, ns: &str, name: &str) {
    env.run_kubectl(&["delete", "devenv", name, "-n", ns, "--wait=false"])
        .expect("kubectl delete");
}

pub fn wait_gone(env: &TestEnv, ns: &str, name: &str, within: Duration) {
    eventually(within, &format!("{ns}/{name} gone"), || {
        get_environment(env, ns, name).is_none().then_some(())
    });
}

/// [`cloud`] for every environment with resources in the region `@REGION@`, grouped
/// by the environment-uid tag, in one look.
const CLOUDS_PROGRAM: &str = r#"
import json, boto3
region = @REGION@
key = "pave.dev/environment-uid"
ec2 = boto3.client("ec2", region_name=region)
rds = boto3.client("rds", region_name=region)
flt = [{"Name": "tag-key", "Values": [key]}]
tags = lambda ts: {t["Key"]: t["Value"] for t in ts or []}
pages = lambda client, op, field, **kw: [x for p in client.get_paginator(op).paginate(**kw) for x in p[field]]
kinds = ["VPC", "Subnet", "SecurityGroup", "Instance", "DBInstance", "DBSubnetGroup"]
out = {}
def add(kind, item):
    uid = item["tags"].get(key)
    if uid is not None:
        out.setdefault(uid, {k: [] for k in kinds})[kind].append(item)
for v in pages(ec2, "describe_vpcs", "Vpcs", Filters=flt):
    add("VPC", {"id": v["VpcId"], "cidr": v["CidrBlock"], "tags": tags(v.get("Tags"))})
for s in pages(ec2, "describe_subnets", "Subnets", Filters=flt):
    add("Subnet", {"id": s["SubnetId"], "az": s["AvailabilityZone"], "tags": tags(s.get("Tags"))})
for g in pages(ec2, "describe_security_groups", "SecurityGroups", Filters=flt):
    add("SecurityGroup", {"id": g["GroupId"], "ingress": g["IpPermissions"], "tags": tags(g.get("Tags"))})
for r in pages(ec2, "describe_instances", "Reservations", Filters=flt):
    for i in r["Instances"]:
        if i["State"]["Name"] not in ("terminated", "shutting-down"):
            add("Instance", {"id": i["InstanceId"], "type": i["InstanceType"], "tags": tags(i.get("Tags"))})
for d in pages(rds, "describe_db_instances", "DBInstances"):
    t = tags(rds.list_tags_for_resource(ResourceName=d["DBInstanceArn"])["TagList"])
    add("DBInstance", {"id": d["DBInstanceIdentifier"], "class": d["DBInstanceClass"], "engine": d["Engine"], "version": d["EngineVersion"], "storage": d["AllocatedStorage"], "tags": t})
for g in pages(rds, "describe_db_subnet_groups", "DBSubnetGroups"):
    t = tags(rds.list_tags_for_resource(ResourceName=g["DBSubnetGroupArn"])["TagList"])
    add("DBSubnetGroup", {"id": g["DBSubnetGroupName"], "tags": t})
print(json.dumps(out))
"#;

/// [`cloud`] for every environment with resources in `region`, by UID, in one look
/// (one boto3 process, however many environments).
pub fn clouds(env: &TestEnv, region: &str) -> BTreeMap<String, Value> {
    let program = CLOUDS_PROGRAM.replace("@REGION@", &format!("{region:?}"));
    serde_json::from_str(&env.boto3(&program).expect("boto3 against moto"))
        .expect("JSON from boto3")
}

/// The resources of a [`cloud`] answer as `kind id` lines, sorted, for comparing
/// before and after.
pub fn inventory(cloud: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for (kind, items) in cloud.as_object().into_iter().flatten() {
        for item in items.as_array().into_iter().flatten() {
            out.push(format!("{kind} {}", item["id"].as_str().unwrap_or("?")));
        }
    }
    out.sort();
    out
}

/// The ids (DB identifiers, DB subnet group names) in a [`cloud`] answer.
pub fn resource_ids(cloud: &Value) -> BTreeSet<String> {
    cloud
        .as_object()
        .into_iter()
        .flatten()
        .flat_map(|(_, items)| items.as_array().into_iter().flatten())
        .filter_map(|item| item["id"].as_str().map(str::to_owned))
        .collect()
}
