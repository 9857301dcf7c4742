//! The Helm chart (`charts/pave`), checked with the real helm from the test bed:
//! lint, rendering with defaults and with every optional block on, the values schema
//! refusing what it must (naming the key), the chart's CRDs being the generated ones,
//! a hardened pod, an operator configuration the operator accepts, and RBAC without
//! wildcards. Installing it on a node is the node tier's work (not here yet).

use std::path::PathBuf;
use std::process::Command;
use std::{env, fs};

use pave_tests::repo_root;
use serde_json::Value;

fn chart() -> PathBuf {
    repo_root().join("charts/pave")
}

/// The test bed's helm (`PAVE_TESTBED_BIN`, else built by the script).
fn helm() -> Command {
    let bin = match env::var_os("PAVE_TESTBED_BIN") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let script = repo_root().join("crates/pave-testenv/scripts/build-testbed.sh");
            let out = Command::new("bash")
                .arg(script)
                .arg("all")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
        }
    };
    Command::new(bin.join("helm"))
}

/// `helm template` with `args`; the rendered objects, or helm's error.
fn template(args: &[&str]) -> Result<Vec<Value>, String> {
    let out = helm()
        .args([
            "template",
            "pave",
            chart().to_str().unwrap(),
            "--namespace",
            "pave-system",
        ])
        .args(args)
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let text = String::from_utf8(out.stdout).unwrap();
    Ok(text
        .split("\n---")
        .filter_map(|doc| serde_yaml::from_str::<Value>(doc).ok())
        .filter(|v| v.is_object())
        .collect())
}

fn of_kind<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

const EVERYTHING_ON: &[&str] = &[
    "--set",
    "metrics.serviceMonitor.enabled=true",
    "--set",
    "podDisruptionBudget.enabled=true",
    "--set",
    "networkPolicy.enabled=true",
    "--set",
    "aws.roleArn=arn:aws:iam::123456789012:role/pave",
    "--set",
    "aws.credentialsSecret=pave-aws",
    "--set",
    "aws.endpointUrl=http://moto.pave-system:5000",
    "--set",
    "clusterId=prod-eu",
];

#[test]
fn the_chart_lints() {
    let out = helm()
        .args(["lint", "--strict", chart().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_charts_crds_are_the_generated_ones() {
    let generated = repo_root().join("crds");
    let mut names: Vec<String> = fs::read_dir(&generated)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let mut shipped: Vec<String> = fs::read_dir(chart().join("crds"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    shipped.sort();
    assert_eq!(
        shipped, names,
        "charts/pave/crds/ must hold exactly crds/ (cp crds/*.yaml charts/pave/crds/)"
    );
    for name in names {
        assert_eq!(
            fs::read_to_string(chart().join("crds").join(&name)).unwrap(),
            fs::read_to_string(generated.join(&name)).unwrap(),
            "charts/pave/crds/{name} differs from crds/{name}: cp crds/*.yaml charts/pave/crds/"
        );
    }
}

#[test]
fn defaults_and_every_optional_block_render() {
    let defaults = template(&[]).unwrap();
    let kinds = |objects: &[Value]| {
        let mut kinds: Vec<String> = objects
            .iter()
            .map(|o| o["kind"].as_str().unwrap().to_owned())
            .collect();
        kinds.sort();
        kinds
    };
    assert_eq!(
        kinds(&defaults),
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "ConfigMap",
            "Deployment",
            "Lease",
            // The helm test hook.
            "Pod",
            "PodDisruptionBudget",
            // Argo CD's namespace, and the Lease.
            "Role",
            "Role",
            "RoleBinding",
            "RoleBinding",
            "Service",
            "ServiceAccount"
        ]
    );
    let all = template(EVERYTHING_ON).unwrap();
    for kind in ["ServiceMonitor", "PodDisruptionBudget", "NetworkPolicy"] {
        assert_eq!(of_kind(&all, kind).len(), 1, "{kind}");
    }
    let account = of_kind(&all, "ServiceAccount")[0];
    assert_eq!(
        account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
        "arn:aws:iam::123456789012:role/pave"
    );
    let container = &of_kind(&all, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0];
    let env: Vec<(String, String)> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_owned(),
                e["value"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert!(
        env.contains(&(
            "AWS_ENDPOINT_URL".into(),
            "http://moto.pave-system:5000".into()
        )),
        "{env:?}"
    );
    assert!(
        env.contains(&("PAVE_CLUSTER_ID".into(), "prod-eu".into())),
        "{env:?}"
    );
    assert_eq!(container["envFrom"][0]["secretRef"]["name"], "pave-aws");
}

#[test]
fn the_pods_are_hardened() {
    let objects = template(&[]).unwrap();
    let operator = &of_kind(&objects, "Deployment")[0]["spec"]["template"]["spec"];
    let check = &of_kind(&objects, "Pod")[0]["spec"];
    for pod in [operator, check] {
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"],
            "RuntimeDefault"
        );
        assert_eq!(pod["automountServiceAccountToken"], false);
        let container = &pod["containers"][0];
        let security = &container["securityContext"];
        assert_eq!(security["readOnlyRootFilesystem"], true);
        assert_eq!(security["allowPrivilegeEscalation"], false);
        assert_eq!(security["capabilities"]["drop"], serde_json::json!(["ALL"]));
        assert!(container["resources"]["limits"]["memory"].is_string());
        assert!(container["resources"]["requests"]["cpu"].is_string());
        // The API token is mounted into pave's container only.
        let token = pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == "token")
            .unwrap();
        assert!(token["projected"]["sources"][0]["serviceAccountToken"].is_object());
    }
    let container = &operator["containers"][0];
    let deployment = of_kind(&objects, "Deployment")[0];
    assert_eq!(deployment["spec"]["strategy"]["type"], "RollingUpdate");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
}

/// The helm test pod asks the operator through the metrics Service, which must not
/// count it as one of the operator's pods (nor may the PodDisruptionBudget or the
/// NetworkPolicy), and is gone once it passed: helm never removes hooks itself.
#[test]
fn the_helm_test_checks_the_operator_through_its_service() {
    let objects = template(&["--set", "networkPolicy.enabled=true", "--set-json",
        r#"networkPolicy.metricsFrom=[{"namespaceSelector":{"matchLabels":{"name":"monitoring"}}}]"#]).unwrap();
    let check = of_kind(&objects, "Pod")[0];
    let annotations = &check["metadata"]["annotations"];
    assert_eq!(annotations["helm.sh/hook"], "test");
    assert_eq!(
        annotations["helm.sh/hook-delete-policy"],
        "before-hook-creation,hook-succeeded"
    );
    let service = of_kind(&objects, "Service")[0];
    assert_eq!(service["spec"]["publishNotReadyAddresses"], true);
    let selects_check = |selector: &Value| {
        selector.as_object().is_some_and(|labels| {
            labels
                .iter()
                .all(|(k, v)| check["metadata"]["labels"][k] == *v)
        })
    };
    assert!(!selects_check(&service["spec"]["selector"]));
    let policy = of_kind(&objects, "NetworkPolicy")[0];
    assert!(!selects_check(
        &policy["spec"]["podSelector"]["matchLabels"]
    ));
    // ...but lets it in when scrapes are limited to some sources.
    let from = policy["spec"]["ingress"][0]["from"].as_array().unwrap();
    assert!(
        from.iter()
            .any(|peer| selects_check(&peer["podSelector"]["matchLabels"]))
    );
    let args = &check["spec"]["containers"][0]["args"];
    assert_eq!(
        args,
        &serde_json::json!(["check", "--url=http://$(PAVE_METRICS_SERVICE_HOST):8080"])
    );
}

/// Two replicas behind the chart's own Lease, which only they may read and renew;
/// preferred (not required) apart, so one node is enough; one eviction at a time.
#[test]
fn two_replicas_elect_a_leader_on_the_charts_lease() {
    let objects = template(&[]).unwrap();
    let deployment = of_kind(&objects, "Deployment")[0];
    assert_eq!(deployment["spec"]["replicas"], 2);
    let pod = &deployment["spec"]["template"]["spec"];
    let args: Vec<&str> = pod["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(args.contains(&"--leader-elect"), "{args:?}");
    assert!(args.contains(&"--lease-duration=15"), "{args:?}");
    let lease = of_kind(&objects, "Lease")[0];
    let name = lease["metadata"]["name"].as_str().unwrap();
    assert!(
        args.contains(&format!("--lease-name={name}").as_str()),
        "{args:?}"
    );
    assert!(lease.get("spec").is_none_or(Value::is_null), "{lease}");
    let role = of_kind(&objects, "Role")
        .into_iter()
        .find(|r| r["rules"][0]["resources"][0] == "leases")
        .expect("a Role for the Lease");
    assert_eq!(
        role["metadata"]["namespace"],
        lease["metadata"]["namespace"]
    );
    assert_eq!(role["rules"][0]["resourceNames"], serde_json::json!([name]));
    assert_eq!(
        role["rules"][0]["verbs"],
        serde_json::json!(["get", "patch"])
    );
    let anti = &pod["affinity"]["podAntiAffinity"];
    assert!(anti["requiredDuringSchedulingIgnoredDuringExecution"].is_null());
    assert_eq!(
        anti["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]["topologyKey"],
        "kubernetes.io/hostname"
    );
    let budget = of_kind(&objects, "PodDisruptionBudget")[0];
    assert_eq!(budget["spec"]["maxUnavailable"], 1);

    // One replica without leader election: no Lease, and the old pod goes first.
    let single = template(&[
        "--set",
        "replicaCount=1",
        "--set",
        "leaderElection.enabled=false",
    ])
    .unwrap();
    assert!(of_kind(&single, "Lease").is_empty());
    let deployment = of_kind(&single, "Deployment")[0];
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");
    let args = deployment["spec"]["template"]["spec"]["containers"][0]["args"].to_string();
    assert!(!args.contains("--leader-elect"), "{args}");
}

#[test]
fn rbac_can_be_left_to_another_tool() {
    let objects = template(&["--set", "rbac.create=false"]).unwrap();
    for kind in ["ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"] {
        assert!(of_kind(&objects, kind).is_empty(), "{kind}");
    }
    assert_eq!(of_kind(&objects, "ServiceAccount").len(), 1);
}

#[test]
fn the_rendered_configuration_is_one_the_operator_accepts() {
    let objects = template(&[]).unwrap();
    let config = of_kind(&objects, "ConfigMap")[0]["data"]["config.yaml"]
        .as_str()
        .unwrap()
        .to_owned();
    let parsed = pave_cloud::config::OperatorConfig::from_yaml(&config)
        .unwrap_or_else(|e| panic!("{e}\n{config}"));
    assert!(
        !parsed.allowed_regions.is_empty(),
        "the chart ships a real region list, not any"
    );
    assert!(parsed.allowed_regions.iter().all(|r| !r.contains('*')));
}

#[test]
fn bad_values_are_refused_naming_the_key() {
    for (set, names) in [
        ("config.allowedRegion={us-east-1}", "allowedRegion"),
        ("image.pullPolicy=Sometimes", "pullPolicy"),
        ("metrics.port=http", "port"),
        ("replicaCount=two", "replicaCount"),
        (
            "replicaCount=2,leaderElection.enabled=false",
            "leaderElection/enabled",
        ),
        ("leaderElection.leaseDuration=1", "leaseDuration"),
        ("aws.roleArn=pave-role", "roleArn"),
        ("config.maxTtl=three-days", "maxTtl"),
    ] {
        let error = template(&["--set", set]).expect_err(set);
        assert!(error.contains(names), "{set}: {error}");
    }
}

#[test]
fn rbac_has_no_wildcards_and_never_lists_secrets() {
    let objects = template(&[]).unwrap();
    let roles: Vec<&Value> = objects
        .iter()
        .filter(|o| o["kind"] == "ClusterRole" || o["kind"] == "Role")
        .collect();
    assert_eq!(roles.len(), 3);
    for role in roles {
        for rule in role["rules"].as_array().unwrap() {
            for field in ["apiGroups", "resources", "verbs"] {
                assert!(
                    !rule[field].as_array().unwrap().iter().any(|v| v == "*"),
                    "wildcard in {rule}"
                );
            }
            if rule["resources"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r == "secrets")
            {
                for verb in ["list", "watch"] {
                    assert!(
                        !rule["verbs"].as_array().unwrap().iter().any(|v| v == verb),
                        "{verb} on secrets: {rule}"
                    );
                }
            }
        }
    }
}
