//! Argo CD on the test bed, end to end: a real application-controller and repo-server
//! deploy a local git repository into the test bed's cluster and follow a new commit.
//! What later GitOps tests of pave rely on is checked here, in one obvious place.

use std::thread;
use std::time::{Duration, Instant};

use pave_testenv::argocd::{ArgoCd, ArgoOptions, GitRepo, install_crds};
use pave_testenv::{Options, TestEnv};

const APP: &str = "settings";
const DESTINATION: &str = "gitops-settings";

/// Prints Argo CD's and the control plane's recent logs when the test fails.
struct LogsOnPanic<'a> {
    env: &'a TestEnv,
    argo: &'a ArgoCd,
}

impl Drop for LogsOnPanic<'_> {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!(
                "---- Argo CD logs ----\n{}\n---- test bed logs ----\n{}",
                self.argo.logs_tail(80),
                self.env.logs_tail(30)
            );
        }
    }
}

fn configmap(colour: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  colour: {colour}\n"
    )
}

/// Polls `check` every 100 ms until it returns `Some`, for up to `within`.
fn eventually<T>(within: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            started.elapsed() < within,
            "{what} did not happen within {within:?}"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

fn get_json(env: &TestEnv, args: &[&str]) -> Option<serde_json::Value> {
    let out = env.run_kubectl(&[args, &["-o", "json"]].concat()).ok()?;
    serde_json::from_str(&out).ok()
}

#[test]
fn argocd_deploys_a_git_repository_and_follows_a_new_commit() {
    let started = Instant::now();
    let env = TestEnv::start(Options::default()).unwrap_or_else(|e| panic!("{e}"));
    // Tests of the cheap tier install the CRDs on their own, maybe more than once per
    // test bed; ArgoCd::start installs them again.
    install_crds(&env).unwrap_or_else(|e| panic!("{e}"));
    let argo = ArgoCd::start(&env, ArgoOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let _logs = LogsOnPanic {
        env: &env,
        argo: &argo,
    };
    eprintln!(
        "test bed and Argo CD up after {:.1}s",
        started.elapsed().as_secs_f64()
    );

    let repo = GitRepo::init(env.state_dir().join("gitops")).unwrap();
    repo.write("deploy/settings.yaml", &configmap("blue"))
        .unwrap();
    let first = repo.commit("Settings start out blue").unwrap();

    let application = serde_json::json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": APP, "namespace": argo.namespace()},
        "spec": {
            "project": "default",
            "source": {"repoURL": repo.url(), "targetRevision": "main", "path": "deploy"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": DESTINATION},
            "syncPolicy": {"automated": {}, "syncOptions": ["CreateNamespace=true"]},
        },
    });
    let created = Instant::now();
    let output = env.kubectl_with_input(&["create", "-f", "-"], application.to_string().as_bytes());
    assert!(
        output.status.success(),
        "creating the Application failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    let app_args = [
        "get",
        "application.argoproj.io",
        APP,
        "-n",
        argo.namespace(),
    ];
    let cm_args = ["get", "configmap", "settings", "-n", DESTINATION];
    let synced_at = |revision: &str, colour: &str| {
        let app = get_json(&env, &app_args)?;
        let status = &app["status"];
        let done = status["sync"]["status"] == "Synced"
            && status["health"]["status"] == "Healthy"
            && status["sync"]["revision"] == revision;
        let cm = get_json(&env, &cm_args)?;
        (done && cm["data"]["colour"] == colour).then_some((app, cm))
    };

    let (app, cm) = eventually(Duration::from_secs(60), "the first sync", || {
        synced_at(&first, "blue")
    });
    let first_sync = created.elapsed();
    assert_eq!(app["status"]["sync"]["status"], "Synced", "{app}");
    assert_eq!(app["status"]["health"]["status"], "Healthy", "{app}");
    // Argo CD applied it (its tracking annotation), not anything else.
    let tracking = cm["metadata"]["annotations"]["argocd.argoproj.io/tracking-id"]
        .as_str()
        .unwrap_or_default();
    assert!(
        tracking.starts_with(&format!("{APP}:/ConfigMap:{DESTINATION}/settings")),
        "{cm}"
    );

    repo.write("deploy/settings.yaml", &configmap("green"))
        .unwrap();
    let second = repo.commit("Settings turn green").unwrap();
    let committed = Instant::now();
    argo.refresh(APP).unwrap_or_else(|e| panic!("{e}"));
    let (app, _) = eventually(Duration::from_secs(60), "the second commit's sync", || {
        synced_at(&second, "green")
    });
    let second_sync = committed.elapsed();
    assert_eq!(app["status"]["sync"]["revision"], second.as_str(), "{app}");

    eprintln!(
        "Application created -> Synced and Healthy: {:.2}s; commit + refresh -> applied: {:.2}s; whole test: {:.1}s",
        first_sync.as_secs_f64(),
        second_sync.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}
