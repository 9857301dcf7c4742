//! GitOps end to end, with real Argo CD (application-controller and repo-server built
//! from its Go module, Redis from Debian) and local git repositories, next to the real
//! control plane, moto behind the fault proxy, and the real `pave-operator`:
//!
//! (a) an Application syncing pave's own `examples/` from Git: Argo CD applies the
//!     DeveloperEnvironment, Components and Scorecard, pave reconciles them, and Argo
//!     CD reports the Application Progressing while the environment provisions (the
//!     proxy holds its database in `creating`), then Synced and Healthy, through
//!     pave's Lua health checks as `kubectl pave argocd-health` prints them;
//! (b) an environment with `spec.gitops` gets an Application that Argo CD syncs: a
//!     ConfigMap from the repository lands in the destination namespace next to the
//!     connection secret, the environment is GitOpsSynced and GitOpsHealthy, and a new
//!     commit shows as a new revision in `status.gitops`;
//! (c) deleting that environment removes the ConfigMap (Argo CD's cascade) before any
//!     cloud resource is deleted.
//!
//! Its own test binary: Argo CD's namespace and the examples' `team-payments` are
//! cluster-wide names.

use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use std::{env, fs};

use pave_testenv::TestEnv;
use pave_testenv::argocd::{ArgoCd, ArgoOptions, GitRepo};
use pave_testenv::fault_proxy::{FaultProxy, SlowState, Transition};
use pave_tests::{Operator, kubectl, kubectl_ok, repo_root, wait_for, workspace_binaries};
use serde_json::{Value, json};

/// How long every database stays `creating` (a database's identifier derives from its
/// environment's UID, unknown before it is applied, so not only the examples').
const DB_CREATING: Duration = Duration::from_secs(60);

/// The README's command that installs pave's health checks into Argo CD.
const INSTALL_HEALTH_CHECKS: &str =
    "kubectl pave argocd-health | kubectl apply --server-side --field-manager pave -f -";

const CONFIG: &str = "
allowedRegions: [ap-northeast-2, us-east-1]
resyncInterval: 5s
gitops:
  allowedProjects: [default]
  allowedRepoPrefixes: ['file:///']
";

/// Everything the tests share: the test bed, Argo CD with pave's health checks, and
/// the operator behind a fault proxy.
struct Bed {
    env: &'static TestEnv,
    bin: std::path::PathBuf,
    argo: ArgoCd,
    proxy: FaultProxy,
    operator: Operator,
}

fn bed() -> &'static Bed {
    static BED: OnceLock<Bed> = OnceLock::new();
    BED.get_or_init(|| {
        let env = TestEnv::shared();
        let bin = workspace_binaries(&["pave-operator", "kubectl-pave"]);
        // Argo CD's controller takes health checks in when it starts (its live-state
        // cache keeps a snapshot of the settings), so they are in argocd-cm first, as
        // `kubectl pave argocd-health` prints them ...
        let health = Command::new(bin.join("kubectl-pave"))
            .arg("argocd-health")
            .output()
            .expect("run kubectl pave argocd-health");
        assert!(
            health.status.success(),
            "{}",
            String::from_utf8_lossy(&health.stderr)
        );
        let snippet: Value = serde_yaml::from_slice(&health.stdout).expect("a ConfigMap");
        let cm_data = serde_json::from_value(snippet["data"].clone()).expect("string data");
        let argo = ArgoCd::start(
            env,
            ArgoOptions {
                cm_data,
                ..ArgoOptions::default()
            },
        )
        .expect("start Argo CD");
        // ... and the README's command applies them to a live argocd-cm.
        let readme = fs::read_to_string(repo_root().join("README.md")).unwrap();
        assert!(
            readme.contains(INSTALL_HEALTH_CHECKS),
            "the README no longer shows: {INSTALL_HEALTH_CHECKS}"
        );
        let path = format!(
            "{}:{}:{}",
            bin.display(),
            env.bin_dir().display(),
            env::var("PATH").unwrap_or_default()
        );
        let out = Command::new("bash")
            .args(["-c", INSTALL_HEALTH_CHECKS])
            .env("PATH", path)
            .env("KUBECONFIG", env.kubeconfig_path())
            .output()
            .expect("run bash");
        assert!(
            out.status.success(),
            "{INSTALL_HEALTH_CHECKS}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let cm = get(
            env,
            &[
                "get",
                "configmap",
                "argocd-cm",
                "-n",
                "argocd",
                "-o",
                "json",
            ],
        )
        .unwrap();
        for kind in ["DeveloperEnvironment", "Component", "Scorecard"] {
            let key = format!("resource.customizations.health.platform.pave.dev_{kind}");
            assert!(
                cm["data"].get(&key).is_some(),
                "{key} not in argocd-cm: {cm}"
            );
        }
        let proxy = FaultProxy::start(&env.moto_endpoint()).expect("start the fault proxy");
        let operator = Operator::start(env, &bin, CONFIG, &proxy.endpoint());
        Bed {
            env,
            bin,
            argo,
            proxy,
            operator,
        }
    })
}

/// Prints the operator's and Argo CD's logs when a test fails.
struct LogsOnPanic;

impl Drop for LogsOnPanic {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        if let Some(bed) = BED_FOR_LOGS.get() {
            eprintln!("---- pave-operator log (last 60 lines) ----");
            eprintln!("{}", bed.operator.log_tail(60));
            eprintln!("---- Argo CD ----\n{}", bed.argo.logs_tail(60));
            eprintln!("---- control plane ----\n{}", bed.env.logs_tail(30));
        }
    }
}

static BED_FOR_LOGS: OnceLock<&'static Bed> = OnceLock::new();

fn shared() -> &'static Bed {
    let bed = bed();
    let _ = BED_FOR_LOGS.set(bed);
    bed
}

fn get(env: &TestEnv, args: &[&str]) -> Option<Value> {
    let out = kubectl(env, args, "");
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).ok())
        .flatten()
}

fn application(env: &TestEnv, name: &str) -> Option<Value> {
    get(
        env,
        &[
            "get",
            "applications.argoproj.io",
            name,
            "-n",
            "argocd",
            "-o",
            "json",
        ],
    )
}

fn condition<'a>(obj: &'a Value, type_: &str) -> Option<&'a Value> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

fn apply(env: &TestEnv, manifest: &Value) {
    kubectl_ok(env, &["apply", "-f", "-"], &manifest.to_string());
}

/// Asks Argo CD to look at the repository now, as a webhook does.
fn refresh(env: &TestEnv, app: &str) {
    kubectl_ok(
        env,
        &[
            "annotate",
            "applications.argoproj.io",
            app,
            "-n",
            "argocd",
            "--overwrite",
            "argocd.argoproj.io/refresh=normal",
        ],
        "",
    );
}

/// Writes the repository's `examples/` into `repo` (its top-level manifests: Argo CD
/// does not recurse into `backstage/` and `port/`, which are not Kubernetes objects),
/// each passed through `edit`.
fn copy_examples(repo: &GitRepo, edit: impl Fn(&str) -> String) {
    let examples = repo_root().join("examples");
    for entry in fs::read_dir(&examples).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let name = path.file_name().unwrap().to_str().unwrap();
            let text = edit(&fs::read_to_string(&path).unwrap());
            repo.write(format!("examples/{name}"), &text).unwrap();
        }
    }
}

/// The examples' one reference that dangles (there is no Resource kind yet).
const DANGLING: &str = "    - resource:payments-database\n";

/// The health Argo CD reports for `app`'s resources of `kind`.
fn health_of(app: &Value, kind: &str) -> Vec<Value> {
    app["status"]["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["kind"] == kind)
        .map(|r| json!({"name": r["name"], "health": r["health"]}))
        .collect()
}

#[test]
fn argo_cd_syncs_paves_examples_and_shows_their_real_health() {
    let _logs = LogsOnPanic;
    let bed = shared();
    let env = bed.env;
    bed.proxy
        .set_slow_states(vec![SlowState::new(Transition::DbCreating, DB_CREATING)]);
    let dir = env::temp_dir().join(format!("pave-argocd-examples-{}", std::process::id()));
    let repo = GitRepo::init(&dir).unwrap();
    // First the examples with every reference resolving.
    copy_examples(&repo, |text| text.replace(DANGLING, ""));
    repo.commit("pave's examples").unwrap();
    let started = Instant::now();
    apply(
        env,
        &json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": "pave-examples", "namespace": "argocd",
                         "finalizers": ["resources-finalizer.argocd.argoproj.io"]},
            "spec": {
                "project": "default",
                "source": {"repoURL": repo.url(), "path": "examples", "targetRevision": "HEAD"},
                "destination": {"server": "https://kubernetes.default.svc", "namespace": "pave-examples"},
                "syncPolicy": {"automated": {"prune": true, "selfHeal": true}, "syncOptions": ["CreateNamespace=true"]},
            },
        }),
    );
    // While the database is creating, Argo CD says Progressing, from pave's check.
    let progressing = wait_for(
        "the Application Progressing",
        Duration::from_secs(60),
        || {
            let app = application(env, "pave-examples").ok_or("no Application")?;
            let environment = health_of(&app, "DeveloperEnvironment");
            (app["status"]["health"]["status"] == "Progressing"
                && environment
                    .first()
                    .is_some_and(|e| e["health"]["status"] == "Progressing"))
            .then_some(environment)
            .ok_or_else(|| app["status"].to_string())
        },
    );
    assert!(
        started.elapsed() < DB_CREATING,
        "seen Progressing only after the database was available: {progressing:?}"
    );
    let healthy = |app: &Value| {
        app["status"]["sync"]["status"] == "Synced"
            && app["status"]["health"]["status"] == "Healthy"
    };
    let app = wait_for(
        "the Application Synced and Healthy",
        Duration::from_secs(120),
        || {
            let app = application(env, "pave-examples").ok_or("no Application")?;
            healthy(&app)
                .then_some(app.clone())
                .ok_or_else(|| app["status"].to_string())
        },
    );
    eprintln!(
        "examples: Synced and Healthy {:.1?} after the Application was applied",
        started.elapsed()
    );
    // Each of pave's objects has its health from pave's Lua checks.
    for kind in ["DeveloperEnvironment", "Component", "Scorecard"] {
        let ours = health_of(&app, kind);
        assert!(
            !ours.is_empty(),
            "no {kind} among {}",
            app["status"]["resources"]
        );
        for r in ours {
            assert_eq!(r["health"]["status"], "Healthy", "{r}");
        }
    }
    let environment = get(
        env,
        &[
            "get",
            "devenv",
            "feature-payment-v2-env",
            "-n",
            "team-payments",
            "-o",
            "json",
        ],
    )
    .unwrap();
    assert_eq!(environment["status"]["phase"], "Ready");

    // The examples as they are: a reference that dangles is Degraded in Argo CD, with
    // pave's message naming it.
    copy_examples(&repo, str::to_owned);
    repo.commit("payment-service depends on its database")
        .unwrap();
    refresh(env, "pave-examples");
    let app = wait_for("the Application Degraded", Duration::from_secs(60), || {
        let app = application(env, "pave-examples").ok_or("no Application")?;
        (app["status"]["health"]["status"] == "Degraded")
            .then_some(app.clone())
            .ok_or_else(|| app["status"].to_string())
    });
    let components = health_of(&app, "Component");
    let payment = components
        .iter()
        .find(|c| c["name"] == "payment-service")
        .unwrap();
    assert_eq!(payment["health"]["status"], "Degraded", "{components:?}");
    assert!(
        payment["health"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("payments-database")),
        "{payment}"
    );

    // Deleting the Application (with Argo CD's finalizer) removes what it synced;
    // pave tears the environment down.
    kubectl_ok(
        env,
        &[
            "delete",
            "applications.argoproj.io",
            "pave-examples",
            "-n",
            "argocd",
            "--wait=false",
        ],
        "",
    );
    bed.proxy.set_slow_states(Vec::new());
    wait_for(
        "the examples' environment gone",
        Duration::from_secs(120),
        || {
            get(env, &["get", "devenv", "-n", "team-payments", "-o", "json"])
                .filter(|list| list["items"].as_array().is_some_and(|i| !i.is_empty()))
                .map_or(Ok(()), |list| Err(list.to_string()))
        },
    );
    let _ = fs::remove_dir_all(&dir);
}

/// The repository an environment's Application deploys: one ConfigMap.
fn configmap(value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-settings\ndata:\n  greeting: {value}\n"
    )
}

#[test]
fn an_environments_application_is_synced_mirrored_and_removed_first() {
    let _logs = LogsOnPanic;
    let bed = shared();
    let env = bed.env;
    let ns = env.namespace("argocd-env");
    let ns = ns.name();
    let destination = format!("{ns}-web");
    let dir = env::temp_dir().join(format!("pave-argocd-web-{}", std::process::id()));
    let repo = GitRepo::init(&dir).unwrap();
    repo.write("deploy/settings.yaml", &configmap("hello"))
        .unwrap();
    let first = repo.commit("first").unwrap();
    apply(
        env,
        &json!({
            "apiVersion": "platform.pave.dev/v1alpha1", "kind": "DeveloperEnvironment",
            "metadata": {"name": "web", "namespace": ns},
            "spec": {
                "parameters": {"region": "us-east-1", "dbSize": "db.t3.micro"},
                "compositeDeletePolicy": "Foreground",
                "gitops": {
                    "repoURL": repo.url(), "path": "deploy", "project": "default",
                    "destinationNamespace": destination,
                    "automated": {"prune": true, "selfHeal": true},
                },
            },
        }),
    );
    let devenv = |env: &TestEnv| get(env, &["get", "devenv", "web", "-n", ns, "-o", "json"]);
    let obj = wait_for(
        "web Ready with its Application",
        Duration::from_secs(120),
        || {
            let obj = devenv(env).ok_or("no environment")?;
            let ok = |t| condition(&obj, t).is_some_and(|c| c["status"] == "True");
            (ok("Ready") && ok("GitOpsSynced") && ok("GitOpsHealthy"))
                .then_some(obj.clone())
                .ok_or_else(|| obj["status"].to_string())
        },
    );
    assert_eq!(obj["status"]["gitops"]["revision"], first);
    let cm = get(
        env,
        &[
            "get",
            "configmap",
            "web-settings",
            "-n",
            &destination,
            "-o",
            "json",
        ],
    )
    .expect("the ConfigMap from Git in the destination namespace");
    assert_eq!(cm["data"]["greeting"], "hello");
    let secret = get(
        env,
        &[
            "get",
            "secret",
            "web-connection",
            "-n",
            &destination,
            "-o",
            "json",
        ],
    )
    .expect("the connection secret next to it");
    assert!(secret["data"].get("endpoint").is_some(), "{secret}");
    let app = format!("{ns}.web");

    // A new commit, and the refresh a webhook would ask for: a new revision.
    repo.write("deploy/settings.yaml", &configmap("again"))
        .unwrap();
    let second = repo.commit("second").unwrap();
    let committed = Instant::now();
    refresh(env, &app);
    wait_for(
        "the new revision in status.gitops, synced",
        Duration::from_secs(60),
        || {
            let obj = devenv(env).ok_or("no environment")?;
            let gitops = &obj["status"]["gitops"];
            (gitops["revision"] == second
                && gitops["sync"] == "Synced"
                && gitops["health"] == "Healthy"
                && condition(&obj, "Ready").is_some_and(|c| c["status"] == "True"))
            .then_some(())
            .ok_or_else(|| obj["status"]["gitops"].to_string())
        },
    );
    eprintln!(
        "new commit synced and mirrored {:.1?} after the refresh",
        committed.elapsed()
    );
    // `kubectl pave trace devenv` shows the Application as a row with its state.
    let trace = Command::new(bed.bin.join("kubectl-pave"))
        .args(["trace", "devenv", "-n", ns, "web"])
        .env("KUBECONFIG", env.kubeconfig_path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&trace.stdout);
    let row = text
        .lines()
        .find(|l| l.contains("Argo CD"))
        .unwrap_or_else(|| panic!("no Argo CD row in:\n{text}"));
    for part in [
        format!("argocd/{app}"),
        second.clone(),
        "Synced/Healthy".to_owned(),
    ] {
        assert!(row.contains(&part), "{part} not in {row:?}");
    }
    let cm = get(
        env,
        &[
            "get",
            "configmap",
            "web-settings",
            "-n",
            &destination,
            "-o",
            "json",
        ],
    )
    .unwrap();
    assert_eq!(cm["data"]["greeting"], "again");

    // (c) Deletion: the ConfigMap goes (Argo CD's cascade) before any cloud delete.
    let ids: Vec<String> = obj["status"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["id"].as_str().map(str::to_owned))
        .collect();
    let deletes = || -> Vec<String> {
        bed.proxy
            .requests()
            .iter()
            .filter(|s| s.action.starts_with("Delete") || s.action == "TerminateInstances")
            .filter(|s| s.params.iter().any(|(_, v)| ids.contains(v)))
            .map(|s| s.action.clone())
            .collect()
    };
    kubectl_ok(
        env,
        &["delete", "devenv", "web", "-n", ns, "--wait=false"],
        "",
    );
    wait_for(
        "the ConfigMap gone before the cloud",
        Duration::from_secs(60),
        || {
            // The cloud's log is read first: a delete seen here was made while the
            // ConfigMap below still existed.
            let made = deletes();
            let exists = kubectl(
                env,
                &["get", "configmap", "web-settings", "-n", &destination],
                "",
            )
            .status
            .success();
            match (exists, made.is_empty()) {
                (true, false) => {
                    panic!("cloud deleted while the ConfigMap still existed: {made:?}")
                }
                (true, true) => Err("the ConfigMap still exists".to_owned()),
                (false, _) => Ok(()),
            }
        },
    );
    wait_for("the environment gone", Duration::from_secs(120), || {
        devenv(env).map_or(Ok(()), |obj| Err(obj["status"].to_string()))
    });
    let made = deletes();
    assert!(made.contains(&"DeleteVpc".to_owned()), "{made:?}");
    assert!(application(env, &app).is_none());
    let _ = fs::remove_dir_all(&dir);
}

/// A golden path with an environment: `kubectl pave new` pushes a repository holding
/// the service's manifests and its DeveloperEnvironment, registers the Component and
/// applies the environment the pushed commit holds; pave provisions it against moto
/// and Argo CD deploys the repository's `deploy/` into it.
#[test]
fn a_golden_path_brings_its_environment_and_argo_cd_deploys_the_new_repository() {
    let _logs = LogsOnPanic;
    let bed = shared();
    let env = bed.env;
    let ns = env.namespace("argocd-new");
    let ns = ns.name();
    let name = format!("{ns}-svc");
    let dir = env::temp_dir().join(format!("pave-argocd-new-{}-{ns}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let remote = format!(
        "file://{}/{name}.git",
        dir.canonicalize().unwrap().display()
    );
    let out = Command::new(bed.bin.join("kubectl-pave"))
        .arg("new")
        .arg(repo_root().join("tests/templates/service-with-environment"))
        .args(["--namespace", ns, "-o", "json"])
        .args(["--set", &format!("name={name}"), "--set", "owner=team-shop"])
        .args(["--set", &format!("repoUrl={remote}")])
        .env("KUBECONFIG", env.kubeconfig_path())
        .env("HOME", &dir)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run kubectl pave new");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    assert_eq!(
        report["output"]["text"][0]["content"],
        format!("{ns}/{name}")
    );

    // The new repository holds the environment's manifest, pointing back at itself.
    let show = |file: &str| {
        let out = Command::new("git")
            .args(["--git-dir", remote.trim_start_matches("file://"), "show"])
            .arg(format!("main:{file}"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let manifest: Value = serde_yaml::from_str(&show("environment.yaml")).unwrap();
    assert_eq!(manifest["kind"], "DeveloperEnvironment");
    assert_eq!(manifest["metadata"]["name"], name.as_str());
    assert_eq!(manifest["spec"]["gitops"]["repoURL"], remote.as_str());
    assert!(show("deploy/settings.yaml").contains("team-shop"));

    // pave provisions it and Argo CD deploys deploy/ into it.
    let destination = format!("{name}-app");
    let obj = wait_for(
        "the new service's environment Ready and synced",
        Duration::from_secs(180),
        || {
            let obj = get(env, &["get", "devenv", &name, "-n", ns, "-o", "json"])
                .ok_or("no environment")?;
            let ok = |t| condition(&obj, t).is_some_and(|c| c["status"] == "True");
            (ok("Ready") && ok("GitOpsSynced") && ok("GitOpsHealthy"))
                .then_some(obj.clone())
                .ok_or_else(|| obj["status"].to_string())
        },
    );
    let pushed = report["steps"][2]["output"]["commitHash"].as_str().unwrap();
    assert_eq!(obj["status"]["gitops"]["revision"], pushed);
    let cm = get(
        env,
        &[
            "get",
            "configmap",
            &format!("{name}-settings"),
            "-n",
            &destination,
            "-o",
            "json",
        ],
    )
    .expect("the repository's ConfigMap in the environment's namespace");
    assert_eq!(cm["data"]["owner"], "team-shop");
    let component = get(env, &["get", "component", &name, "-n", ns, "-o", "json"])
        .expect("the Component registered");
    assert_eq!(component["spec"]["owner"], "team-shop");

    kubectl_ok(
        env,
        &["delete", "devenv", &name, "-n", ns, "--wait=false"],
        "",
    );
    wait_for("the environment gone", Duration::from_secs(120), || {
        get(env, &["get", "devenv", &name, "-n", ns, "-o", "json"])
            .map_or(Ok(()), |o| Err(o["status"].to_string()))
    });
    let _ = fs::remove_dir_all(&dir);
}
