//! Backstage's own example catalog (`tests/catalog/backstage-examples`: the acme org,
//! components, APIs, systems, domains and a resource, reached through its Location
//! files) imported with `kubectl pave import`, applied to the shared control plane
//! and resolved by the real operator: every reference resolves except the one that
//! really names nothing in it, which is checked against the file that writes it.
//!
//! Backstage's namespaces are kept as they are (no `--namespace`): its entities live
//! in `default` and one User in `development`, and a reference that names
//! `default/…` must meet them there. This binary has a control plane of its own, so
//! using those namespaces disturbs no other test.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::Duration;

use pave_testenv::TestEnv;
use pave_tests::{Operator, kubectl_ok, repo_root, wait_for, workspace_binaries};
use serde_json::Value;

const CONFIG: &str = "allowedRegions: [us-east-1]\n";

const KINDS: [&str; 7] = [
    "components",
    "groups",
    "users",
    "systems",
    "domains",
    "apis",
    "resources",
];

/// Every reference in the examples that names nothing in them: the entity, the
/// reference, and the file and text that write it.
const REALLY_UNRESOLVED: [(&str, &str, &str, &str); 1] = [(
    "component:default/playback-order",
    "group:default/guest",
    "components/playback-order-component.yaml",
    // The owner field defaults to kind group; the examples have only a User guest.
    "owner: guest",
)];

/// Every object of the catalog kinds, by `kind:namespace/name`.
fn catalog(env: &TestEnv) -> BTreeMap<String, Value> {
    let mut all = BTreeMap::new();
    for kind in KINDS {
        let resource = format!("{kind}.platform.pave.dev");
        let list: Value = serde_json::from_str(&kubectl_ok(
            env,
            &["get", &resource, "-A", "-o", "json"],
            "",
        ))
        .unwrap();
        for item in list["items"].as_array().unwrap() {
            let singular = match kind {
                "apis" => "api".to_owned(),
                k => k.trim_end_matches('s').to_owned(),
            };
            let key = format!(
                "{singular}:{}/{}",
                item["metadata"]["namespace"].as_str().unwrap(),
                item["metadata"]["name"].as_str().unwrap()
            );
            all.insert(key, item.clone());
        }
    }
    all
}

fn current(obj: &Value) -> bool {
    obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
}

fn strings(value: &Value) -> BTreeSet<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

fn related(obj: &Value, relation: &str) -> BTreeSet<String> {
    obj["status"]["relations"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["type"] == relation)
        .filter_map(|r| r["target"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn backstages_example_catalog_imports_applies_and_resolves() {
    let env = TestEnv::shared();
    let bin = workspace_binaries(&["pave-operator", "kubectl-pave"]);
    let operator = Operator::start(env, &bin, CONFIG, &env.moto_endpoint());
    let examples = repo_root().join("tests/catalog/backstage-examples");

    let import = Command::new(bin.join("kubectl-pave"))
        .arg("import")
        .arg(examples.join("all.yaml"))
        .arg(examples.join("acme-corp.yaml"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&import.stderr);
    assert!(import.status.success(), "import failed:\n{stderr}");
    let manifests = String::from_utf8(import.stdout).unwrap();
    let mut imported: BTreeMap<String, usize> = BTreeMap::new();
    for doc in serde_yaml::Deserializer::from_str(&manifests) {
        let value: Value = serde::Deserialize::deserialize(doc).unwrap();
        *imported
            .entry(value["kind"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    let expected: BTreeMap<String, usize> = [
        ("API", 10),
        ("Component", 13),
        ("Domain", 3),
        ("Group", 8),
        ("Resource", 1),
        ("System", 3),
        ("User", 17),
    ]
    .into_iter()
    .map(|(k, n)| (k.to_owned(), n))
    .collect();
    assert_eq!(imported, expected, "what the import made of the examples");

    kubectl_ok(env, &["create", "namespace", "development"], "");
    kubectl_ok(env, &["apply", "--server-side", "-f", "-"], &manifests);

    let all = wait_for("every entity's status", Duration::from_secs(60), || {
        let all = catalog(env);
        let stale: Vec<&String> = all
            .iter()
            .filter(|(_, obj)| !current(obj))
            .map(|(k, _)| k)
            .collect();
        if all.len() == 55 && stale.is_empty() {
            Ok(all)
        } else {
            Err(format!(
                "{} objects, {} without a current status: {stale:?}\n{}",
                all.len(),
                stale.len(),
                operator.log_tail(20)
            ))
        }
    });

    // Every reference resolves but the ones that really name nothing.
    let mut unresolved = BTreeSet::new();
    for (key, obj) in &all {
        for reference in strings(&obj["status"]["unresolvedRefs"]) {
            unresolved.insert((key.clone(), reference));
        }
        assert_eq!(
            obj["status"]["uncheckedRefs"],
            Value::Null,
            "{key}: the org is imported, so every owner is checked: {obj}"
        );
    }
    let expected: BTreeSet<(String, String)> = REALLY_UNRESOLVED
        .iter()
        .map(|(entity, reference, _, _)| (entity.to_string(), reference.to_string()))
        .collect();
    assert_eq!(unresolved, expected);
    for (entity, reference, file, text) in REALLY_UNRESOLVED {
        let written = std::fs::read_to_string(examples.join(file)).unwrap();
        assert!(written.contains(text), "{file} does not write {text:?}");
        let name = reference.rsplit('/').next().unwrap();
        assert!(
            !all.contains_key(reference)
                && all
                    .keys()
                    .any(|k| k.ends_with(&format!("/{name}")) && k != reference),
            "{reference} names nothing, though something else is called {name}"
        );
        let ready = all[entity]["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Ready")
            .unwrap()
            .clone();
        assert_eq!(ready["status"], "False", "{ready}");
        assert!(
            ready["message"]
                .as_str()
                .unwrap()
                .contains(&format!("spec.owner {reference}: no Group guest")),
            "{ready}"
        );
    }

    // Relations across kinds, as Backstage draws them. The org: acme-corp above
    // infrastructure above backstage (team-a, team-b) and boxoffice (team-c, team-d),
    // each team's people saying `memberOf` it; a group has every member below it.
    let everyone: BTreeSet<String> = all
        .keys()
        .filter(|k| k.starts_with("user:"))
        .cloned()
        .collect();
    assert_eq!(
        strings(&all["group:default/acme-corp"]["status"]["members"]),
        everyone
    );
    for (group, count) in [
        ("acme-corp", 17),
        ("infrastructure", 17),
        ("backstage", 10),
        ("boxoffice", 7),
        ("team-a", 5),
        ("team-b", 5),
        ("team-c", 5),
        ("team-d", 2),
    ] {
        let obj = &all[&format!("group:default/{group}")];
        assert_eq!(obj["status"]["memberCount"], count, "{group}: {obj}");
        let members = strings(&obj["status"]["members"]);
        let below: BTreeSet<String> = related(obj, "parentOf")
            .iter()
            .flat_map(|child| strings(&all[child]["status"]["members"]))
            .collect();
        assert!(
            below.is_subset(&members),
            "{group} lacks its children's members"
        );
    }
    let artists_db = &all["resource:default/artists-db"];
    assert!(
        !related(artists_db, "dependencyOf").is_empty(),
        "something depends on artists-db: {artists_db}"
    );
    let apis_with_providers = all
        .iter()
        .filter(|(k, obj)| k.starts_with("api:") && !related(obj, "apiProvidedBy").is_empty())
        .count();
    assert!(apis_with_providers >= 5, "APIs resolve to their entities");
    for key in all.keys().filter(|k| k.starts_with("system:")) {
        assert!(
            !related(&all[key], "hasPart").is_empty(),
            "{key} has parts: {}",
            all[key]
        );
    }

    same_levels_offline_and_in_the_cluster(env, &bin, &examples);
}

/// A scorecard that asks whether each owner exists gives the same level offline
/// (`kubectl pave score` over the same files) as the operator gives in the cluster.
fn same_levels_offline_and_in_the_cluster(
    env: &TestEnv,
    bin: &std::path::Path,
    examples: &std::path::Path,
) {
    let scorecard_file = repo_root().join("crates/pave-cli/tests/fixtures/org/owners.yaml");
    let port: Value =
        serde_yaml::from_str(&std::fs::read_to_string(&scorecard_file).unwrap()).unwrap();
    let scorecard = serde_json::json!({
        "apiVersion": "platform.pave.dev/v1alpha1",
        "kind": "Scorecard",
        "metadata": {"name": "owners"},
        "spec": port,
    });
    kubectl_ok(env, &["apply", "-f", "-"], &scorecard.to_string());
    let in_cluster: BTreeMap<String, Option<String>> = wait_for(
        "every Component scored on owners",
        Duration::from_secs(60),
        || {
            let components = catalog(env);
            let mut levels = BTreeMap::new();
            for (key, obj) in components
                .iter()
                .filter(|(k, _)| k.starts_with("component:"))
            {
                let score = obj["status"]["scores"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|s| s["scorecard"] == "owners")
                    .ok_or_else(|| format!("{key} not scored yet"))?;
                let name = key.rsplit('/').next().unwrap().to_owned();
                levels.insert(name, score["level"].as_str().map(str::to_owned));
            }
            Ok(levels)
        },
    );
    let offline = Command::new(bin.join("kubectl-pave"))
        .arg("score")
        .arg("--scorecard")
        .arg(&scorecard_file)
        .arg(examples.join("all.yaml"))
        .arg(examples.join("acme-corp.yaml"))
        .args(["-o", "json"])
        .output()
        .unwrap();
    assert!(
        offline.status.success(),
        "{}",
        String::from_utf8_lossy(&offline.stderr)
    );
    let results: Value = serde_json::from_slice(&offline.stdout).unwrap();
    let offline: BTreeMap<String, Option<String>> = results
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let name = r["component"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_owned();
            (name, r["level"].as_str().map(str::to_owned))
        })
        .collect();
    assert_eq!(offline, in_cluster);
    assert_eq!(
        in_cluster["playback-order"].as_deref(),
        Some("Unowned"),
        "its owner names no Group: {in_cluster:?}"
    );
    assert!(
        in_cluster
            .values()
            .filter(|l| l.as_deref() == Some("Owned"))
            .count()
            == in_cluster.len() - 1,
        "every other owner exists: {in_cluster:?}"
    );
}
