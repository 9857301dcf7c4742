//! The test bed against the real binaries: what integration tests rely on is checked
//! here, so a broken control plane fails in one obvious place.

use std::time::{Duration, Instant};

use pave_testenv::{Options, TestEnv};

fn kubectl(env: &TestEnv, args: &[&str]) -> String {
    env.run_kubectl(args).unwrap_or_else(|e| panic!("{e}"))
}

/// `kubectl create -f` of one object; returns what kubectl prints (`extra` args
/// such as `-o json` are passed on).
fn create(env: &TestEnv, object: &serde_json::Value, extra: &[&str]) -> String {
    let file = std::env::temp_dir().join(format!("pave-testenv-{}.json", uuid_like()));
    std::fs::write(&file, object.to_string()).unwrap();
    let path = file.to_string_lossy().into_owned();
    let out = kubectl(env, &[&["create", "-f", path.as_str()], extra].concat());
    std::fs::remove_file(&file).unwrap();
    out
}

fn uuid_like() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    format!("{:016x}", h.finish())
}

/// Polls `check` for up to `within`; a test that waits for a controller must not hang.
fn eventually(within: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(
            started.elapsed() < within,
            "{what} did not happen within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn server_reports_the_pinned_kubernetes_version() {
    let env = TestEnv::shared();
    let version: serde_json::Value =
        serde_json::from_str(&kubectl(env, &["version", "-o", "json"])).unwrap();
    assert_eq!(
        version["serverVersion"]["gitVersion"], "v1.34.4",
        "{version}"
    );
    assert_eq!(
        version["clientVersion"]["gitVersion"], "v1.34.4",
        "{version}"
    );
}

#[test]
fn namespaces_are_created_and_deleted() {
    let env = TestEnv::shared();
    let name = {
        let ns = env.namespace("testenv");
        assert!(ns.starts_with("testenv-"));
        kubectl(env, &["get", "namespace", &ns]);
        ns.name().to_owned()
    };
    // The namespace controller in kube-controller-manager finishes the deletion.
    eventually(Duration::from_secs(60), "namespace deletion", || {
        env.run_kubectl(&["get", "namespace", &name]).is_err()
    });
}

#[test]
fn garbage_collector_deletes_dependents_of_a_deleted_owner() {
    let env = TestEnv::shared();
    let ns = env.namespace("gc");
    kubectl(env, &["create", "configmap", "owner", "-n", &ns]);
    let owner_uid = kubectl(
        env,
        &[
            "get",
            "configmap",
            "owner",
            "-n",
            &ns,
            "-o",
            "jsonpath={.metadata.uid}",
        ],
    );
    let dependent = serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "dependent", "namespace": &*ns, "ownerReferences": [{
            "apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner_uid,
            "blockOwnerDeletion": true}]},
    });
    create(env, &dependent, &[]);

    kubectl(
        env,
        &[
            "delete",
            "configmap",
            "owner",
            "-n",
            &ns,
            "--cascade=foreground",
            "--wait=false",
        ],
    );
    // Foreground deletion only completes when the garbage collector has removed the
    // dependent and then the owner's foregroundDeletion finalizer.
    eventually(
        Duration::from_secs(60),
        "foreground deletion by the garbage collector",
        || {
            let left = kubectl(env, &["get", "configmaps", "-n", &ns, "-o", "name"]);
            !left.contains("configmap/owner") && !left.contains("configmap/dependent")
        },
    );
}

#[test]
fn service_account_tokens_can_be_requested() {
    let env = TestEnv::shared();
    let ns = env.namespace("token");
    kubectl(env, &["create", "serviceaccount", "robot", "-n", &ns]);
    let token = kubectl(env, &["create", "token", "robot", "-n", &ns]);
    assert_eq!(token.trim().split('.').count(), 3, "not a JWT: {token}");
    // The apiserver must accept the token it signed: --service-account-key-file
    // verifies what --service-account-signing-key-file signed.
    let review = serde_json::json!({
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
        "spec": {"token": token.trim()},
    });
    let user = create(env, &review, &["-o", "jsonpath={.status.user.username}"]);
    assert_eq!(user, format!("system:serviceaccount:{}:robot", &*ns));
}

#[test]
fn kube_client_talks_to_the_apiserver_as_admin() {
    let env = TestEnv::shared();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = env.client().await.unwrap();
        let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(client);
        assert!(namespaces.get_opt("default").await.unwrap().is_some());
    });
}

#[test]
fn moto_serves_ec2_and_resets() {
    let env = TestEnv::shared();
    let endpoint = env.moto_endpoint();
    let port: u16 = endpoint.rsplit(':').next().unwrap().parse().unwrap();
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let body = "Action=DescribeRegions&Version=2016-11-15";
    use std::io::{Read, Write};
    write!(
        stream,
        "POST / HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=test/20250101/us-east-1/ec2/aws4_request, \
         SignedHeaders=host, Signature=0\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200"),
        "{response:.300}"
    );
    assert!(
        response.contains("<regionName>us-east-1</regionName>"),
        "{response:.300}"
    );
    env.reset_moto().unwrap();
}

#[test]
fn logs_tail_names_every_component() {
    let env = TestEnv::shared();
    let logs = env.logs_tail(5);
    for component in ["etcd", "kube-apiserver", "kube-controller-manager", "moto"] {
        assert!(logs.contains(&format!("==> {component} (")), "{logs}");
    }
    let sourced = std::fs::read_to_string(env.env_file()).unwrap();
    assert!(
        sourced.contains(&format!(
            "export AWS_ENDPOINT_URL='{}'",
            env.moto_endpoint()
        )),
        "{sourced}"
    );
}

#[test]
fn a_private_env_serves_its_crds_to_the_garbage_collector_and_cleans_up() {
    let crds = std::env::temp_dir().join(format!("pave-testenv-crds-{}", uuid_like()));
    std::fs::create_dir_all(&crds).unwrap();
    let widget_crd = serde_json::json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.testenv.pave.dev"},
        "spec": {"group": "testenv.pave.dev", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]},
    });
    std::fs::write(crds.join("widgets.json"), widget_crd.to_string()).unwrap();
    let env = TestEnv::start(Options {
        crd_dir: Some(crds.clone()),
        ..Options::default()
    })
    .unwrap_or_else(|e| panic!("{e}"));
    std::fs::remove_dir_all(&crds).unwrap();

    // Served at once, and known to the garbage collector, which started after it.
    let widget = serde_json::json!({"apiVersion": "testenv.pave.dev/v1", "kind": "Widget",
        "metadata": {"name": "w", "namespace": "default"}});
    create(&env, &widget, &[]);
    let uid = kubectl(
        &env,
        &[
            "get",
            "widget",
            "w",
            "-n",
            "default",
            "-o",
            "jsonpath={.metadata.uid}",
        ],
    );
    let dependent = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "of-w", "namespace": "default", "ownerReferences": [{
            "apiVersion": "testenv.pave.dev/v1", "kind": "Widget", "name": "w", "uid": uid}]}});
    create(&env, &dependent, &[]);
    kubectl(
        &env,
        &["delete", "widget", "w", "-n", "default", "--wait=false"],
    );
    eventually(
        Duration::from_secs(60),
        "background deletion of a custom resource's dependent",
        || {
            env.run_kubectl(&["get", "configmap", "of-w", "-n", "default"])
                .is_err()
        },
    );

    let state_dir = env.state_dir().to_owned();
    let kubeconfig = std::fs::read_to_string(env.kubeconfig_path()).unwrap();
    let apiserver = kubeconfig
        .split("server: https://")
        .nth(1)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_owned();
    drop(env);
    assert!(
        !state_dir.exists(),
        "{} was left behind",
        state_dir.display()
    );
    assert!(
        std::net::TcpStream::connect(&apiserver).is_err(),
        "kube-apiserver still listens on {apiserver}"
    );
}

/// Records who created, changed or deleted ConfigMaps, to see that the log covers
/// both lives of a restarted API server.
const CONFIGMAP_AUDIT: &str = "apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  resources: [{group: \"\", resources: [configmaps]}]
  verbs: [create, update, patch, delete]
- level: None
";

#[test]
fn a_restarted_apiserver_keeps_its_objects_and_a_restarted_moto_forgets_everything() {
    let env = TestEnv::start(Options {
        audit_policy: Some(CONFIGMAP_AUDIT.to_owned()),
        ..Options::default()
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let uid_of = |env: &TestEnv, name: &str| {
        kubectl(
            env,
            &[
                "get",
                "configmap",
                name,
                "-n",
                "default",
                "-o",
                "jsonpath={.metadata.uid}",
            ],
        )
    };
    kubectl(&env, &["create", "configmap", "before", "-n", "default"]);
    let uid = uid_of(&env, "before");
    let kubeconfig = std::fs::read_to_string(env.kubeconfig_path()).unwrap();

    let restart = env.restart_apiserver().unwrap_or_else(|e| panic!("{e}"));
    eprintln!("kube-apiserver restart: {restart:?}");
    assert!(
        !restart.killed,
        "kube-apiserver did not stop within its grace period: {restart:?}"
    );
    // Same address and credentials; the object is the same one, and writes are taken.
    assert_eq!(
        std::fs::read_to_string(env.kubeconfig_path()).unwrap(),
        kubeconfig
    );
    assert_eq!(uid_of(&env, "before"), uid);
    kubectl(&env, &["create", "configmap", "after", "-n", "default"]);
    env.check_running().unwrap_or_else(|e| panic!("{e}"));
    let audit = std::fs::read_to_string(env.audit_log()).unwrap();
    let created: Vec<String> = audit
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|event| event["verb"] == "create" && event["objectRef"]["namespace"] == "default")
        .filter_map(|event| event["objectRef"]["name"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(created, ["before", "after"], "{audit}");

    let endpoint = env.moto_endpoint();
    let vpc = env
        .boto3(
            r#"
import boto3
print(boto3.client("ec2").create_vpc(CidrBlock="10.9.0.0/24")["Vpc"]["VpcId"])
"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let vpcs_named = format!(
        r#"
import boto3
print(len(boto3.client("ec2").describe_vpcs(Filters=[{{"Name": "vpc-id", "Values": [{:?}]}}])["Vpcs"]))
"#,
        vpc.trim()
    );
    assert_eq!(env.boto3(&vpcs_named).unwrap().trim(), "1");
    let restart = env.restart_moto().unwrap_or_else(|e| panic!("{e}"));
    eprintln!("moto restart: {restart:?}");
    assert_eq!(env.moto_endpoint(), endpoint);
    assert_eq!(
        env.boto3(&vpcs_named).unwrap().trim(),
        "0",
        "the new moto still holds {vpc}"
    );
    env.check_running().unwrap_or_else(|e| panic!("{e}"));
    let logs = env.logs_tail(1000);
    for component in ["kube-apiserver", "moto"] {
        assert_eq!(
            logs.matches(&format!("==> {component} (")).count(),
            1,
            "{logs}"
        );
    }
}
