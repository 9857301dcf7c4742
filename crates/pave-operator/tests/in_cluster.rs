//! pave installed with its Helm chart on the test bed's real node, and everything end to
//! end with pave running as the chart's pod: under the chart's ServiceAccount, with
//! its security context, its ConfigMap and AWS settings, reaching moto (through the
//! fault proxy) from the pod network.
//!
//! One release is shared by this binary and its phases depend on each other (the
//! RBAC check reads what the scenarios made pave do), so they run in order in one
//! test; each phase is its own function and says what failed. After the scenarios:
//! the upgrades, `helm test`, `helm uninstall`, and then installs that cannot work yet
//! (no RBAC, no AWS credentials; `in_cluster/bad_input.rs`) fixed by `helm upgrade`.

#[path = "in_cluster/bad_input.rs"]
mod bad_input;
mod common;
#[path = "in_cluster/replicas.rs"]
mod replicas;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::application::{release, report, synced_and_healthy, wait_for_application};
use common::devenv::{cloud, condition, count, get, get_environment, total, wait_phase};
use common::{eventually, kubectl_apply};
use pave_testenv::TestEnv;
use pave_testenv::fault_proxy::FaultProxy;
use serde_json::{Value, json};

const RELEASE: &str = "pave";
const NAMESPACE: &str = "pave-system";
const SERVICE_ACCOUNT: &str = "system:serviceaccount:pave-system:pave";
const IMAGE: &str = "localhost/pave-operator";
const REPO: &str = "file:///srv/environments";
const REPO_ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../charts/pave");

/// The values a platform team would set for moto: where AWS is, the Secret with its
/// keys, the regions its environments use, and the Argo CD tenancy.
fn values(aws_endpoint: &str) -> String {
    format!(
        "image: {{repository: {IMAGE}, pullPolicy: Never}}
logFormat: text
aws:
  region: us-east-1
  endpointUrl: {aws_endpoint}
  credentialsSecret: pave-aws
config:
  allowedRegions: [ap-northeast-2, us-east-1]
  resyncInterval: 3s
  gitops:
    namespace: argocd
    allowedProjects: [default]
    allowedRepoPrefixes: ['{REPO}']
"
    )
}

/// The image `make image` builds, which `make test` passes in `PAVE_IMAGE_ARCHIVE`.
/// The test does not build it itself: a cargo build from inside `cargo test` would
/// wait for the lock the running `cargo test` holds.
fn image_archive() -> PathBuf {
    match std::env::var_os("PAVE_IMAGE_ARCHIVE") {
        Some(archive) => archive.into(),
        None => panic!(
            "PAVE_IMAGE_ARCHIVE is not set: run this test through `make test`, or set it to what \
             `bash crates/pave-testenv/scripts/build-image.sh` prints"
        ),
    }
}

fn helm(env: &TestEnv, args: &[&str]) -> Result<String, String> {
    let out = Command::new(env.bin_dir().join("helm"))
        .arg(format!("--kubeconfig={}", env.kubeconfig_path().display()))
        .args(args)
        .env("HELM_CACHE_HOME", env.state_dir().join("helm/cache"))
        .env("HELM_CONFIG_HOME", env.state_dir().join("helm/config"))
        .env("HELM_DATA_HOME", env.state_dir().join("helm/data"))
        .output()
        .expect("run helm");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    if out.status.success() {
        Ok(text(&out.stdout))
    } else {
        Err(format!(
            "helm {}: {}{}",
            args.join(" "),
            text(&out.stdout),
            text(&out.stderr)
        ))
    }
}

fn kubectl(env: &TestEnv, args: &[&str]) -> String {
    env.run_kubectl(args).unwrap_or_else(|e| panic!("{e}"))
}

/// The operator pod's log, for failures.
fn operator_log(env: &TestEnv) -> String {
    env.run_kubectl(&[
        "logs",
        "-n",
        NAMESPACE,
        "-l",
        "app.kubernetes.io/name=pave",
        "--tail=80",
    ])
    .unwrap_or_else(|e| e.to_string())
}

struct Bed {
    env: &'static TestEnv,
    proxy: FaultProxy,
    values: PathBuf,
}

impl Bed {
    fn helm(&self, args: &[&str]) -> String {
        helm(self.env, args).unwrap_or_else(|e| {
            panic!(
                "{e}\n---- operator log ----\n{}\n---- test bed ----\n{}",
                operator_log(self.env),
                self.env.logs_tail(30)
            )
        })
    }

    /// `helm install` of the chart with the test's values and `args`.
    fn install(&self, args: &[&str]) -> String {
        let values = self.values.to_string_lossy();
        let base = ["install", RELEASE, CHART, "-n", NAMESPACE, "-f", &values];
        self.helm(&[&base[..], args].concat())
    }

    /// `helm upgrade --reuse-values` of the chart with `args`.
    fn upgrade(&self, args: &[&str]) -> String {
        let base = ["upgrade", RELEASE, CHART, "-n", NAMESPACE, "--reuse-values"];
        self.helm(&[&base[..], args].concat())
    }

    /// The names of the objects of `kinds` in pave's namespace with the label
    /// `selector`, one per line.
    fn names(&self, kinds: &str, selector: &str) -> String {
        kubectl(
            self.env,
            &["get", kinds, "-n", NAMESPACE, "-l", selector, "-o", "name"],
        )
    }
}

/// The node, the image imported into it, the namespace with the AWS Secret, and Argo
/// CD's CRD and namespace (the chart's Role lives there), all before `helm install`.
fn prepare() -> Bed {
    let env = TestEnv::shared_with_node();
    env.import_image(&image_archive())
        .unwrap_or_else(|e| panic!("{e}"));
    pave_testenv::argocd::install_crds(env).expect("install Argo CD's CRDs");
    for ns in ["argocd", NAMESPACE] {
        kubectl_apply(
            env,
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        );
    }
    kubectl_apply(
        env,
        &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "pave-aws", "namespace": NAMESPACE},
                "stringData": {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}}),
    );
    let proxy =
        FaultProxy::start_on(env.host_ip(), &env.moto_endpoint()).expect("start the fault proxy");
    let values = env.state_dir().join("pave-values.yaml");
    std::fs::write(&values, self::values(&proxy.endpoint())).unwrap();
    Bed { env, proxy, values }
}

#[test]
fn installed_with_helm_pave_runs_every_scenario_as_the_charts_pod() {
    let bed = prepare();
    install(&bed);
    let installed = std::time::Instant::now();
    catalog_and_scorecards(&bed);
    environments(&bed);
    expiry_refusals_and_secrets_elsewhere(&bed);
    the_roles_grant_exactly_what_pave_used(&bed);
    report_usage(&bed, installed.elapsed());
    replicas::the_standby_takes_over_from_a_deleted_leader(&bed);
    replicas::a_leader_killed_on_the_node_is_replaced_within_the_lease(&bed);
    let kept = upgrades_keep_everything(&bed);
    helm_test_passes(&bed);
    uninstall_keeps_everything(&bed, &kept);
    bad_input::bad_input_is_reported_once_and_fixed_by_upgrades(&bed);
}

/// `helm test`: the check pod finds the operator ready and the CRDs served, and is
/// deleted once it passed (helm would never remove it).
fn helm_test_passes(bed: &Bed) {
    let out = bed.helm(&["test", RELEASE, "-n", NAMESPACE, "--timeout=2m"]);
    assert!(out.contains("Phase:          Succeeded"), "{out}");
    eventually(Duration::from_secs(30), "the test pod deleted", || {
        let pods = bed.names("pods", "app.kubernetes.io/component=test");
        pods.trim().is_empty().then_some(())
    });
}

/// What the operator pods (the leader and the standby) used during the scenarios
/// above, for the chart's resource settings: printed, not asserted (tests assert
/// behaviour, not sizes).
fn report_usage(bed: &Bed, over: Duration) {
    let leader = replicas::leader_pod(bed).expect("a leader");
    for pod in operator_pods(bed.env) {
        let name = pod["metadata"]["name"].as_str().unwrap();
        let uid = pod["metadata"]["uid"].as_str().unwrap();
        let usage = bed.env.pod_usage(uid).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            usage.peak_rss_mib > 0.0 && usage.cpu_seconds > 0.0,
            "{usage:?}"
        );
        let role = if name == leader { "leader" } else { "standby" };
        eprintln!(
            "operator pod ({role}) during the scenarios: peak RSS {:.1} MiB (its largest process), \
             RSS now {:.1} MiB, CPU {:.2} s over {:.0} s",
            usage.peak_rss_mib,
            usage.rss_mib,
            usage.cpu_seconds,
            over.as_secs_f64()
        );
    }
}

/// The calls that create or delete something in the cloud.
fn changes(proxy: &FaultProxy, from: usize) -> Vec<String> {
    proxy.requests()[from..]
        .iter()
        .map(|seen| seen.action.clone())
        .filter(|a| {
            ["Create", "Delete", "Run", "Terminate", "Modify"]
                .iter()
                .any(|p| a.starts_with(p))
        })
        .collect()
}

/// The operator's pods, oldest first.
fn operator_pods(env: &TestEnv) -> Vec<Value> {
    let args = [
        "get",
        "pods",
        "-n",
        NAMESPACE,
        "-l",
        "app.kubernetes.io/name=pave",
        "--sort-by=.metadata.creationTimestamp",
        "-o",
        "json",
    ];
    let pods: Value = serde_json::from_str(&kubectl(env, &args)).unwrap();
    pods["items"].as_array().cloned().unwrap_or_default()
}

fn operator_pod(env: &TestEnv) -> Value {
    operator_pods(env).into_iter().next().unwrap_or_default()
}

/// `helm upgrade` with changed values is picked up (the pod rolls, the new
/// configuration refuses a region it no longer allows); `helm upgrade` to a new image
/// keeps every object as it was, with no cloud call that creates or deletes. Returns
/// the environment kept and what the cloud held for it.
fn upgrades_keep_everything(bed: &Bed) -> (String, Value) {
    let env = bed.env;
    kubectl_apply(
        env,
        &json!({"apiVersion": "platform.pave.dev/v1alpha1", "kind": "DeveloperEnvironment",
            "metadata": {"name": "kept", "namespace": "team-payments"},
            "spec": {"parameters": {"region": "us-east-1", "clusterSize": "small"}}}),
    );
    let uid = wait_phase(env, "team-payments", "kept", "Ready")["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = cloud(env, "us-east-1", &uid);

    // New values: ap-northeast-2 is no longer allowed.
    let first_pod = operator_pod(env)["metadata"]["uid"].clone();
    bed.upgrade(&[
        "--set",
        "config.allowedRegions={us-east-1}",
        "--wait",
        "--timeout=3m",
    ]);
    eventually(
        Duration::from_secs(60),
        "the pod rolled for the new configuration",
        || {
            let pod = operator_pod(env);
            (pod["metadata"]["uid"] != first_pod && pod["metadata"]["deletionTimestamp"].is_null())
                .then_some(())
        },
    );
    kubectl_apply(
        env,
        &json!({"apiVersion": "platform.pave.dev/v1alpha1", "kind": "DeveloperEnvironment",
            "metadata": {"name": "now-refused", "namespace": "team-payments"},
            "spec": {"parameters": {"region": "ap-northeast-2"}}}),
    );
    eventually(
        Duration::from_secs(60),
        "ap-northeast-2 refused by the new configuration",
        || {
            let obj = get_environment(env, "team-payments", "now-refused")?;
            let ready = condition(&obj, "Ready")?;
            (ready["status"] == "False" && ready["message"].as_str()?.contains("ap-northeast-2"))
                .then_some(())
        },
    );
    kubectl(
        env,
        &["delete", "devenv", "now-refused", "-n", "team-payments"],
    );

    // A new image: everything stays as it was.
    let version = env!("CARGO_PKG_VERSION");
    env.tag_image(
        &format!("{IMAGE}:{version}"),
        &format!("{IMAGE}:{version}-next"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let calls = bed.proxy.requests().len();
    bed.upgrade(&[
        "--set",
        &format!("image.tag={version}-next"),
        "--wait",
        "--timeout=3m",
    ]);
    eventually(
        Duration::from_secs(60),
        "the new image's pod running alone",
        || {
            let pod = operator_pod(env);
            let image = pod["spec"]["containers"][0]["image"].as_str()?.to_owned();
            image.ends_with("-next").then_some(())
        },
    );
    // Long enough for the new pod to resync every environment (resyncInterval 3s).
    std::thread::sleep(Duration::from_secs(8));
    let obj = get_environment(env, "team-payments", "kept").unwrap();
    assert_eq!(obj["status"]["phase"], "Ready", "{obj}");
    assert_eq!(
        cloud(env, "us-east-1", &uid),
        before,
        "the cloud changed across the image upgrade"
    );
    let changed = changes(&bed.proxy, calls);
    assert!(
        changed.is_empty(),
        "the image upgrade created or deleted in the cloud: {changed:?}"
    );

    (uid, before)
}

/// `helm uninstall` leaves the CRDs, the custom resources and the cloud resources.
fn uninstall_keeps_everything(bed: &Bed, (uid, before): &(String, Value)) {
    let env = bed.env;
    let calls = bed.proxy.requests().len();
    uninstall(bed);
    let crds = kubectl(env, &["get", "crd", "-o", "name"]);
    for crd in ["components", "scorecards", "developerenvironments"] {
        assert!(crds.contains(&format!("{crd}.platform.pave.dev")), "{crds}");
    }
    assert!(get_environment(env, "team-payments", "kept").is_some());
    get(
        env,
        &[
            "get",
            "component",
            "payment-service",
            "-n",
            "team-payments",
            "-o",
            "json",
        ],
    )
    .expect("the Component kept");
    get(
        env,
        &[
            "get",
            "scorecard",
            "service-maturity",
            "-n",
            "team-payments",
            "-o",
            "json",
        ],
    )
    .expect("the Scorecard kept");
    assert_eq!(
        &cloud(env, "us-east-1", uid),
        before,
        "the cloud changed across uninstall"
    );
    assert!(changes(&bed.proxy, calls).is_empty());
}

/// `helm uninstall`, and then none of the release's objects is left (the pods go a
/// moment after their Deployment).
fn uninstall(bed: &Bed) {
    bed.helm(&[
        "uninstall",
        RELEASE,
        "-n",
        NAMESPACE,
        "--wait",
        "--timeout=2m",
    ]);
    let kinds = "deployment,pod,serviceaccount,configmap,service,lease";
    let selector = format!("app.kubernetes.io/instance={RELEASE}");
    let started = std::time::Instant::now();
    loop {
        let left = bed.names(kinds, &selector);
        if left.trim().is_empty() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "left after helm uninstall:\n{left}\n{}",
            kubectl(bed.env, &["get", "lease", "-n", NAMESPACE, "-o", "yaml"])
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `helm install --wait`: the CRDs come from the chart, and both operator pods become
/// Ready on the node (one node: the anti-affinity is only preferred), one leading.
fn install(bed: &Bed) {
    bed.install(&["--wait", "--timeout=3m"]);
    replicas::one_of_two_replicas_leads(bed);
    for pod in &operator_pods(bed.env) {
        assert_eq!(pod["spec"]["serviceAccountName"], RELEASE, "{pod}");
        assert_eq!(pod["spec"]["nodeName"], pave_testenv::node::NODE_NAME);
    }
    let crds = kubectl(bed.env, &["get", "crd", "-o", "name"]);
    assert!(
        crds.contains("developerenvironments.platform.pave.dev"),
        "{crds}"
    );
}

/// The article's catalog and scorecard: pave resolves the Components' references and
/// scores them, writing both back as status.
fn catalog_and_scorecards(bed: &Bed) {
    let env = bed.env;
    let examples = format!("{REPO_ROOT}/examples");
    for file in [
        "00-namespace.yaml",
        "catalog-org.yaml",
        "catalog-payment-service.yaml",
        "catalog-user-service.yaml",
        "scorecard-service-maturity.yaml",
    ] {
        kubectl(env, &["apply", "-f", &format!("{examples}/{file}")]);
    }
    // Every catalog kind gets its status from its own controller, every reference
    // resolving: the org owns everything.
    for (resource, name) in [
        ("groups", "payments-team"),
        ("users", "minseo"),
        ("systems", "payments"),
        ("domains", "commerce"),
        ("apis", "payment-api"),
        ("resources", "payments-ledger"),
    ] {
        let resource = format!("{resource}.platform.pave.dev");
        let obj = eventually(
            Duration::from_secs(60),
            &format!("{resource} {name} ready"),
            || {
                let obj = get(
                    env,
                    &["get", &resource, name, "-n", "team-payments", "-o", "json"],
                )?;
                condition(&obj, "Ready")?;
                Some(obj)
            },
        );
        let ready = condition(&obj, "Ready").unwrap();
        assert_eq!(ready["status"], "True", "{obj}\n{}", operator_log(env));
    }
    let component = eventually(Duration::from_secs(60), "payment-service scored", || {
        let obj = get(
            env,
            &[
                "get",
                "component",
                "payment-service",
                "-n",
                "team-payments",
                "-o",
                "json",
            ],
        )?;
        obj["status"]["scores"]
            .as_array()
            .filter(|s| !s.is_empty())?;
        Some(obj)
    });
    let refs = condition(&component, "Ready")
        .unwrap_or_else(|| panic!("{component}\n{}", operator_log(env)));
    assert!(refs["status"].is_string(), "{component}");
    let scorecard = eventually(Duration::from_secs(60), "the scorecard evaluated", || {
        let obj = get(
            env,
            &[
                "get",
                "scorecard",
                "service-maturity",
                "-n",
                "team-payments",
                "-o",
                "json",
            ],
        )?;
        obj["status"]["evaluated"]
            .as_u64()
            .filter(|n| *n >= 2)
            .map(|_| obj)
    });
    assert_eq!(scorecard["status"]["evaluated"], 2, "{scorecard}");
}

/// Two environments: the article's, in ap-northeast-2, deleted in the foreground; and
/// one with an Argo CD Application (this test plays Argo CD), for the Role's verbs.
fn environments(bed: &Bed) {
    let env = bed.env;
    kubectl(
        env,
        &[
            "apply",
            "-f",
            &format!("{REPO_ROOT}/examples/staging-env.yaml"),
        ],
    );
    let obj = wait_phase(env, "team-payments", "feature-payment-v2-env", "Ready");
    let uid = obj["metadata"]["uid"].as_str().unwrap().to_owned();
    let resources = cloud(env, "ap-northeast-2", &uid);
    assert_eq!(count(&resources, "DBInstance"), 1, "{resources}");
    assert_eq!(count(&resources, "Instance"), 1, "{resources}");
    get(
        env,
        &[
            "get",
            "secret",
            "feature-payment-v2-env-connection",
            "-n",
            "team-payments",
            "-o",
            "json",
        ],
    )
    .or_else(|| {
        let secrets = kubectl(
            env,
            &["get", "secrets", "-n", "team-payments", "-o", "name"],
        );
        panic!("no connection secret; secrets: {secrets}")
    });

    kubectl_apply(
        env,
        &json!({"apiVersion": "platform.pave.dev/v1alpha1", "kind": "DeveloperEnvironment",
            "metadata": {"name": "shop", "namespace": "team-payments"},
            "spec": {"parameters": {"region": "us-east-1"},
                     "gitops": {"repoURL": REPO, "path": "apps/shop", "targetRevision": "main",
                                "project": "default", "destinationNamespace": "team-payments-shop"}}}),
    );
    let app = "team-payments.shop";
    if std::panic::catch_unwind(|| wait_for_application(env, app)).is_err() {
        panic!(
            "no Application; the environment: {}\n---- operator log ----\n{}",
            get_environment(env, "team-payments", "shop").unwrap_or_default(),
            operator_log(env)
        );
    }
    report(env, app, synced_and_healthy("1111111"));
    wait_phase(env, "team-payments", "shop", "Ready");

    for name in ["feature-payment-v2-env", "shop"] {
        kubectl(
            env,
            &[
                "delete",
                "devenv",
                name,
                "-n",
                "team-payments",
                "--wait=false",
            ],
        );
    }
    eventually(
        Duration::from_secs(30),
        "the Application being deleted",
        || {
            get(
                env,
                &[
                    "get",
                    "applications.argoproj.io",
                    app,
                    "-n",
                    "argocd",
                    "-o",
                    "json",
                ],
            )?["metadata"]["deletionTimestamp"]
                .as_str()
                .map(|_| ())
        },
    );
    release(env, app);
    for name in ["feature-payment-v2-env", "shop"] {
        eventually(Duration::from_secs(120), &format!("{name} gone"), || {
            get_environment(env, "team-payments", name)
                .is_none()
                .then_some(())
        });
    }
    let left = cloud(env, "ap-northeast-2", &uid);
    assert_eq!(total(&left), 0, "left in moto: {left}");
    assert!(
        !bed.proxy.requests().is_empty(),
        "pave's AWS calls go through the fault proxy"
    );
}

/// The verbs the other scenarios leave out: pave deletes an environment whose ttl ran
/// out, and the connection secret it wrote to another (consenting) namespace; it
/// records a refusal as an Event, and a repeated one as a patch of that Event.
fn expiry_refusals_and_secrets_elsewhere(bed: &Bed) {
    let env = bed.env;
    kubectl_apply(
        env,
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-payments-secrets",
            "annotations": {pave_api::environment::ACCEPT_SECRETS: "team-payments"}}}),
    );
    let environment = |name: &str, spec: Value| {
        json!({"apiVersion": "platform.pave.dev/v1alpha1", "kind": "DeveloperEnvironment",
               "metadata": {"name": name, "namespace": "team-payments"}, "spec": spec})
    };
    kubectl_apply(
        env,
        &environment(
            "brief",
            json!({"parameters": {"region": "us-east-1"}, "ttl": "20s",
                                     "writeConnectionSecretsToNamespace": "team-payments-secrets"}),
        ),
    );
    wait_phase(env, "team-payments", "brief", "Ready");
    let secret_elsewhere = || {
        let args = [
            "get",
            "secret",
            "brief-connection",
            "-n",
            "team-payments-secrets",
            "-o",
            "json",
        ];
        get(env, &args)
    };
    eventually(
        Duration::from_secs(30),
        "the secret in the other namespace",
        secret_elsewhere,
    );
    kubectl_apply(
        env,
        &environment("too-far", json!({"parameters": {"region": "eu-west-1"}})),
    );
    // pave's Events about too-far, with how often each was recorded.
    let refusals = || -> Option<Vec<u64>> {
        let events = get(
            env,
            &[
                "get",
                "events.events.k8s.io",
                "-n",
                "team-payments",
                "-o",
                "json",
            ],
        )?;
        let about = events["items"]
            .as_array()?
            .iter()
            .filter(|e| e["regarding"]["name"] == "too-far");
        Some(
            about
                .map(|e| e["series"]["count"].as_u64().unwrap_or(1))
                .collect(),
        )
    };
    eventually(Duration::from_secs(30), "the refusal as an Event", || {
        refusals().filter(|counts| !counts.is_empty()).map(drop)
    });
    // The same refusal again, after a change that does not fix it.
    kubectl(
        env,
        &[
            "patch",
            "devenv",
            "too-far",
            "-n",
            "team-payments",
            "--type=merge",
            "-p",
            r#"{"spec":{"ttl":"48h"}}"#,
        ],
    );
    eventually(
        Duration::from_secs(30),
        "the refusal's Event counted twice",
        || refusals()?.iter().any(|&count| count >= 2).then_some(()),
    );
    eventually(
        Duration::from_secs(120),
        "the expired environment deleted by pave",
        || {
            get_environment(env, "team-payments", "brief")
                .is_none()
                .then_some(())
        },
    );
    eventually(
        Duration::from_secs(30),
        "its secret elsewhere deleted",
        || secret_elsewhere().is_none().then_some(()),
    );
    kubectl(env, &["delete", "devenv", "too-far", "-n", "team-payments"]);
}

/// What the audit log says pave's ServiceAccount did, as `(group, resource, verb)`.
/// A server-side apply that made the object is a `patch` answered 201, which the API
/// server authorised as a `create` too.
fn used_by_pave(audit_log: &Path) -> BTreeSet<(String, String, String)> {
    let text = std::fs::read_to_string(audit_log).expect("the API server's audit log");
    text.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|event| event["user"]["username"] == SERVICE_ACCOUNT)
        .filter_map(|event| {
            let object = event.get("objectRef")?;
            let mut resource = object["resource"].as_str()?.to_owned();
            if let Some(sub) = object["subresource"].as_str() {
                resource = format!("{resource}/{sub}");
            }
            let group = object["apiGroup"].as_str().unwrap_or("").to_owned();
            let verb = event["verb"].as_str()?.to_owned();
            let created = verb == "patch" && event["responseStatus"]["code"] == 201;
            let verbs = if created {
                vec!["patch".to_owned(), "create".to_owned()]
            } else {
                vec![verb]
            };
            Some(
                verbs
                    .into_iter()
                    .map(move |v| (group.clone(), resource.clone(), v)),
            )
        })
        .flatten()
        .collect()
}

/// Every `(group, resource, verb)` a role's rules grant; panics on a wildcard.
fn granted(role: &Value) -> BTreeSet<(String, String, String)> {
    let mut all = BTreeSet::new();
    for rule in role["rules"].as_array().unwrap() {
        let list = |key: &str| -> Vec<String> {
            rule[key]
                .as_array()
                .into_iter()
                .flatten()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect()
        };
        for (group, resource, verb) in
            itertools(&list("apiGroups"), &list("resources"), &list("verbs"))
        {
            assert!(
                ![&group, &resource, &verb].iter().any(|s| s.contains('*')),
                "a wildcard in {role}"
            );
            all.insert((group, resource, verb));
        }
    }
    all
}

fn itertools(a: &[String], b: &[String], c: &[String]) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for x in a {
        for y in b {
            for z in c {
                out.push((x.clone(), y.clone(), z.clone()));
            }
        }
    }
    out
}

/// The scenarios passed as the chart's pod, so the roles are sufficient; they are
/// also minimal: every verb they grant on every resource, pave used.
fn the_roles_grant_exactly_what_pave_used(bed: &Bed) {
    let env = bed.env;
    let role = |kind: &str, name: &str, ns: Option<&str>| -> Value {
        let mut args = vec!["get", kind, name, "-o", "json"];
        if let Some(ns) = ns {
            args.extend(["-n", ns]);
        }
        serde_json::from_str(&kubectl(env, &args)).unwrap()
    };
    let mut grants = granted(&role("clusterrole", RELEASE, None));
    grants.extend(granted(&role(
        "role",
        &format!("{RELEASE}-argocd"),
        Some("argocd"),
    )));
    grants.extend(granted(&role(
        "role",
        &format!("{RELEASE}-leader"),
        Some(NAMESPACE),
    )));
    let used = used_by_pave(&env.audit_log());
    let unused: Vec<_> = grants.difference(&used).collect();
    assert!(
        unused.is_empty(),
        "the chart grants what pave never used in the scenarios: {unused:?}\nused: {used:?}"
    );
    // Secrets are never listed or watched: pave reads one by name, its own.
    assert!(
        !grants
            .iter()
            .any(|(g, r, v)| g.is_empty() && r == "secrets" && (v == "list" || v == "watch")),
        "{grants:?}"
    );
}
