//! An environment's Argo CD Application, against the real Application CRD from Argo
//! CD's module (no Argo CD running: these tests write the Application's status and
//! remove its finalizer the way Argo CD's controller does, to see what pave makes of
//! it). What real Argo CD does with the Application is `tests/argocd.rs` at the
//! workspace root.
//!
//! - The Application is created with the exact spec, labels and finalizer, and the
//!   destination namespace and a copy of the connection secret exist before it.
//! - Argo CD's view is mirrored into status and conditions, and decides Ready; at rest
//!   neither object is written.
//! - Deletion: the Application goes first, and no cloud delete is made until it is
//!   gone (seen in the fault proxy's log). Removing `spec.gitops` removes it too.
//! - A tenancy refusal creates nothing: no Application, no namespace, no cloud call.

mod common;

use std::sync::OnceLock;
use std::time::Duration;

use common::application::{
    application, operation, release, report, synced_and_healthy, wait_for_application,
};
use common::devenv::{condition, environment, get, get_environment, wait_phase};
use common::proxy::{DELETES, ProxyLogOnPanic, named_by_delete, start_behind};
use common::{LogOnPanic, Operator, eventually, holds_for, kubectl_apply};
use pave_testenv::TestEnv;
use pave_testenv::fault_proxy::FaultProxy;
use serde_json::{Value, json};

const REPO: &str = "file:///srv/environments";

const CONFIG: &str = "
allowedRegions: [us-east-1]
resyncInterval: 3s
gitops:
  allowedProjects: [default]
  allowedRepoPrefixes: ['file:///srv/environments']
";

/// The operator of this binary, behind a fault proxy that sees every AWS call, with
/// Argo CD's CRDs and namespace in place first.
fn operator() -> &'static (FaultProxy, Operator) {
    static OPERATOR: OnceLock<(FaultProxy, Operator)> = OnceLock::new();
    OPERATOR.get_or_init(|| {
        let env = TestEnv::shared();
        pave_testenv::argocd::install_crds(env).expect("install Argo CD's CRDs");
        kubectl_apply(
            env,
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "argocd"}}),
        );
        let proxy = FaultProxy::start(&env.moto_endpoint()).expect("start the fault proxy");
        let operator = start_behind(env, &proxy, Some(CONFIG));
        (proxy, operator)
    })
}

fn gitops(destination: &str) -> Value {
    json!({"gitops": {
        "repoURL": REPO, "path": "apps/payments", "targetRevision": "main",
        "project": "default", "destinationNamespace": destination,
        "automated": {"prune": true, "selfHeal": false},
    }})
}

fn wait_condition(env: &TestEnv, ns: &str, name: &str, type_: &str, status: &str) -> Value {
    eventually(
        Duration::from_secs(30),
        &format!("{name}: {type_}={status}"),
        || {
            let obj = get_environment(env, ns, name)?;
            (condition(&obj, type_)?["status"] == status).then_some(obj)
        },
    )
}

fn namespace(env: &TestEnv, name: &str) -> Option<Value> {
    get(env, &["get", "namespace", name, "-o", "json"])
}

fn secret(env: &TestEnv, ns: &str, name: &str) -> Option<Value> {
    get(env, &["get", "secret", name, "-n", ns, "-o", "json"])
}

/// An environment with an Application that Argo CD (this test) reported Synced and
/// Healthy; returns its uid and the Application's name.
fn ready_with_application(
    env: &TestEnv,
    ns: &str,
    name: &str,
    destination: &str,
) -> (String, String) {
    kubectl_apply(
        env,
        &environment(
            ns,
            name,
            json!({"region": "us-east-1"}),
            gitops(destination),
        ),
    );
    let app = format!("{ns}.{name}");
    wait_for_application(env, &app);
    report(env, &app, synced_and_healthy("1111111"));
    let obj = wait_phase(env, ns, name, "Ready");
    (obj["metadata"]["uid"].as_str().unwrap().to_owned(), app)
}

/// Deletes an environment and, playing Argo CD, lets its Application go.
fn delete_with_application(env: &TestEnv, ns: &str, name: &str) {
    env.run_kubectl(&["delete", "devenv", name, "-n", ns, "--wait=false"])
        .unwrap();
    let app = format!("{ns}.{name}");
    eventually(
        Duration::from_secs(30),
        "the Application being deleted",
        || {
            application(env, &app)?["metadata"]["deletionTimestamp"]
                .as_str()
                .map(|_| ())
        },
    );
    release(env, &app);
}

#[test]
fn the_application_has_the_exact_spec_and_its_namespace_comes_first() {
    let _log = LogOnPanic;
    let (proxy, _) = operator();
    let _proxy_log = ProxyLogOnPanic(proxy);
    let env = TestEnv::shared();
    let ns = env.namespace("gitops-spec");
    let ns = ns.name();
    let destination = format!("{ns}-app");
    kubectl_apply(
        env,
        &environment(
            ns,
            "web",
            json!({"region": "us-east-1", "dbSize": "db.t3.micro"}),
            gitops(&destination),
        ),
    );
    let name = format!("{ns}.web");
    let app = wait_for_application(env, &name);
    let uid = get_environment(env, ns, "web").unwrap()["metadata"]["uid"].clone();
    assert_eq!(
        app["spec"],
        json!({
            "project": "default",
            "source": {"repoURL": REPO, "path": "apps/payments", "targetRevision": "main"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": destination},
            "syncPolicy": {
                "automated": {"prune": true, "selfHeal": false},
                "syncOptions": ["CreateNamespace=true"],
                "retry": {"limit": 5, "backoff": {"duration": "5s", "factor": 2, "maxDuration": "3m"}},
            },
        })
    );
    assert_eq!(
        app["metadata"]["finalizers"],
        json!(["resources-finalizer.argocd.argoproj.io"])
    );
    let labels = &app["metadata"]["labels"];
    assert_eq!(labels["platform.pave.dev/environment-uid"], uid);
    assert_eq!(labels["platform.pave.dev/environment-namespace"], ns);
    assert_eq!(labels["platform.pave.dev/environment"], "web");
    assert!(
        labels.get("app.kubernetes.io/instance").is_none(),
        "{labels}"
    );
    // Only pave's field manager wrote it, and never status.
    let with_managers = get(
        env,
        &[
            "get",
            "applications.argoproj.io",
            &name,
            "-n",
            "argocd",
            "-o",
            "json",
            "--show-managed-fields",
        ],
    )
    .unwrap();
    let managers: Vec<&str> = with_managers["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["manager"].as_str().unwrap())
        .collect();
    assert_eq!(managers, ["pave-environments"]);
    assert!(app.get("status").is_none(), "{app}");

    // The destination namespace is pave's, and holds a copy of the connection secret.
    let created = namespace(env, &destination).expect("the destination namespace");
    assert_eq!(
        created["metadata"]["labels"]["platform.pave.dev/environment-uid"],
        uid
    );
    let original = secret(env, ns, "web-connection").expect("the connection secret");
    let copy = secret(env, &destination, "web-connection").expect("its copy");
    assert_eq!(copy["data"], original["data"]);
    for key in ["password", "endpoint", "vpcId"] {
        assert!(copy["data"].get(key).is_some(), "{key} in {}", copy["data"]);
    }
    for annotation in [
        "argocd.argoproj.io/tracking-id",
        "kubectl.kubernetes.io/last-applied-configuration",
    ] {
        assert!(copy["metadata"]["annotations"].get(annotation).is_none());
    }

    // Until Argo CD reports, the environment says it waits for it.
    let obj = wait_condition(env, ns, "web", "GitOpsSynced", "Unknown");
    let ready = condition(&obj, "Ready").unwrap();
    assert_eq!(ready["status"], "False");
    assert_eq!(ready["reason"], "ApplicationNotReady");
    assert!(
        ready["message"]
            .as_str()
            .unwrap()
            .contains("has not reported"),
        "{ready}"
    );
    assert_eq!(obj["status"]["phase"], "Provisioning");
    assert_eq!(
        obj["status"]["gitops"]["application"],
        format!("argocd/{name}")
    );
    delete_with_application(env, ns, "web");
}

#[test]
fn argo_cds_view_is_mirrored_and_decides_ready() {
    let _log = LogOnPanic;
    let (proxy, _) = operator();
    let _proxy_log = ProxyLogOnPanic(proxy);
    let env = TestEnv::shared();
    let ns = env.namespace("gitops-mirror");
    let ns = ns.name();
    let (_, app) = ready_with_application(env, ns, "api", &format!("{ns}-api"));
    let obj = get_environment(env, ns, "api").unwrap();
    assert_eq!(obj["status"]["gitops"]["sync"], "Synced");
    assert_eq!(obj["status"]["gitops"]["health"], "Healthy");
    assert_eq!(obj["status"]["gitops"]["revision"], "1111111");
    assert_eq!(obj["status"]["gitops"]["operationPhase"], "Succeeded");
    for type_ in ["Ready", "GitOpsSynced", "GitOpsHealthy"] {
        assert_eq!(condition(&obj, type_).unwrap()["status"], "True", "{type_}");
    }
    assert!(
        condition(&obj, "Ready").unwrap()["message"]
            .as_str()
            .unwrap()
            .contains("Synced and Healthy at revision 1111111")
    );

    // At rest (resync every 3 s), neither the environment nor the Application is
    // written, and Argo CD's status is never wiped.
    let version = |v: &Value| v["metadata"]["resourceVersion"].clone();
    let (env_version, app_version) = (version(&obj), version(&application(env, &app).unwrap()));
    holds_for(Duration::from_secs(7), "nothing written at rest", || {
        let now = get_environment(env, ns, "api").ok_or("environment gone")?;
        let application = application(env, &app).ok_or("application gone")?;
        if version(&now) != env_version || version(&application) != app_version {
            return Err(format!("written: {now}\n{application}"));
        }
        Ok(())
    });

    // A new revision that degrades: mirrored, and Ready follows.
    report(
        env,
        &app,
        json!({
            "sync": {"status": "Synced", "revision": "2222222"},
            "health": {"status": "Degraded", "message": "Deployment web exceeded its progress deadline"},
            "operationState": operation("2222222", "successfully synced"),
        }),
    );
    let obj = wait_condition(env, ns, "api", "GitOpsHealthy", "False");
    let healthy = condition(&obj, "GitOpsHealthy").unwrap();
    assert_eq!(healthy["reason"], "Degraded");
    assert!(
        healthy["message"]
            .as_str()
            .unwrap()
            .contains("progress deadline"),
        "{healthy}"
    );
    assert_eq!(obj["status"]["gitops"]["revision"], "2222222");
    let ready = condition(&obj, "Ready").unwrap();
    assert_eq!(ready["status"], "False");
    assert_eq!(ready["reason"], "ApplicationNotReady");
    // The Application's status is Argo CD's, untouched by pave's apply.
    let live = application(env, &app).unwrap();
    assert_eq!(live["status"]["health"]["status"], "Degraded");

    report(env, &app, synced_and_healthy("3333333"));
    let obj = wait_condition(env, ns, "api", "Ready", "True");
    assert_eq!(obj["status"]["gitops"]["revision"], "3333333");
    delete_with_application(env, ns, "api");
}

#[test]
fn deletion_waits_for_the_application_before_any_cloud_delete() {
    let _log = LogOnPanic;
    let (proxy, _) = operator();
    let _proxy_log = ProxyLogOnPanic(proxy);
    let env = TestEnv::shared();
    let ns = env.namespace("gitops-delete");
    let ns = ns.name();
    let destination = format!("{ns}-shop");
    kubectl_apply(
        env,
        &environment(
            ns,
            "shop",
            json!({"region": "us-east-1"}),
            json!({"compositeDeletePolicy": "Foreground", "gitops": gitops(&destination)["gitops"]}),
        ),
    );
    let app = format!("{ns}.shop");
    wait_for_application(env, &app);
    report(env, &app, synced_and_healthy("1111111"));
    let obj = wait_phase(env, ns, "shop", "Ready");
    let ids: Vec<String> = obj["status"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["id"].as_str().map(str::to_owned))
        .collect();
    let deletes_of_this = |upto: Option<usize>| -> Vec<String> {
        let seen = proxy.requests();
        let seen = &seen[..upto.unwrap_or(seen.len()).min(seen.len())];
        seen.iter()
            .filter(|s| DELETES.contains(&s.action.as_str()))
            .filter(|s| {
                named_by_delete(s)
                    .iter()
                    .any(|id| ids.iter().any(|i| i == id))
            })
            .map(|s| s.action.clone())
            .collect()
    };

    env.run_kubectl(&["delete", "devenv", "shop", "-n", ns, "--wait=false"])
        .unwrap();
    eventually(
        Duration::from_secs(30),
        "the Application being deleted",
        || {
            application(env, &app)?["metadata"]["deletionTimestamp"]
                .as_str()
                .map(|_| ())
        },
    );
    // Argo CD has not removed what it deployed: the environment waits, says so, and
    // nothing in the cloud is deleted.
    holds_for(
        Duration::from_secs(4),
        "no cloud delete while the Application exists",
        || {
            let deletes = deletes_of_this(None);
            if !deletes.is_empty() {
                return Err(format!("deleted in the cloud first: {deletes:?}"));
            }
            Ok(())
        },
    );
    let obj = get_environment(env, ns, "shop").expect("kept while its Application goes");
    assert_eq!(obj["status"]["phase"], "Deleting");
    let ready = condition(&obj, "Ready").unwrap();
    assert!(
        ready["message"].as_str().unwrap().contains(&format!(
            "waiting for Argo CD to delete Application argocd/{app} and what it deployed"
        )),
        "{ready}"
    );
    let before_release = proxy.requests().len();
    release(env, &app);
    eventually(Duration::from_secs(60), "the environment gone", || {
        get_environment(env, ns, "shop").is_none().then_some(())
    });
    assert!(deletes_of_this(Some(before_release)).is_empty());
    let deletes = deletes_of_this(None);
    assert!(deletes.contains(&"DeleteVpc".to_owned()), "{deletes:?}");
    // The namespace pave made for the Application went with it.
    eventually(
        Duration::from_secs(60),
        "the destination namespace gone",
        || namespace(env, &destination).is_none().then_some(()),
    );
}

#[test]
fn removing_gitops_from_the_spec_removes_the_application() {
    let _log = LogOnPanic;
    let (proxy, _) = operator();
    let _proxy_log = ProxyLogOnPanic(proxy);
    let env = TestEnv::shared();
    let ns = env.namespace("gitops-remove");
    let ns = ns.name();
    let destination = format!("{ns}-cart");
    let (_, app) = ready_with_application(env, ns, "cart", &destination);
    env.run_kubectl(&[
        "patch",
        "devenv",
        "cart",
        "-n",
        ns,
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/spec/gitops"}]"#,
    ])
    .unwrap();
    eventually(
        Duration::from_secs(30),
        "the Application being deleted",
        || {
            application(env, &app)?["metadata"]["deletionTimestamp"]
                .as_str()
                .map(|_| ())
        },
    );
    release(env, &app);
    let obj = eventually(Duration::from_secs(60), "Ready without GitOps", || {
        let obj = get_environment(env, ns, "cart")?;
        let ready = condition(&obj, "Ready")?;
        (ready["status"] == "True" && ready["observedGeneration"] == obj["metadata"]["generation"])
            .then_some(obj)
    });
    assert!(obj["status"].get("gitops").is_none(), "{}", obj["status"]);
    assert!(condition(&obj, "GitOpsSynced").is_none());
    assert!(condition(&obj, "GitOpsHealthy").is_none());
    assert!(application(env, &app).is_none());
    eventually(
        Duration::from_secs(60),
        "the destination namespace gone",
        || namespace(env, &destination).is_none().then_some(()),
    );
    env.run_kubectl(&["delete", "devenv", "cart", "-n", ns])
        .unwrap();
}

#[test]
fn a_tenancy_refusal_creates_nothing() {
    let _log = LogOnPanic;
    let (proxy, _) = operator();
    let _proxy_log = ProxyLogOnPanic(proxy);
    let env = TestEnv::shared();
    let ns = env.namespace("gitops-refused");
    let ns = ns.name();
    // Someone else's namespace as the destination.
    let taken = format!("{ns}-taken");
    kubectl_apply(
        env,
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": taken}}),
    );
    let mut project = gitops(&format!("{ns}-p"));
    project["gitops"]["project"] = json!("payments-admin");
    let mut repository = gitops(&format!("{ns}-r"));
    repository["gitops"]["repoURL"] = json!("https://github.com/somebody-else/envs");
    let cases = [
        ("taken", gitops(&taken), "spec.gitops.destinationNamespace"),
        ("project", project, "gitops.allowedProjects"),
        ("repository", repository, "gitops.allowedRepoPrefixes"),
    ];
    for (name, extra, _) in &cases {
        kubectl_apply(
            env,
            &environment(ns, name, json!({"region": "us-east-1"}), extra.clone()),
        );
    }
    for (name, _, says) in &cases {
        let obj = eventually(Duration::from_secs(30), &format!("{name} refused"), || {
            let obj = get_environment(env, ns, name)?;
            (condition(&obj, "Ready")?["reason"] == "Forbidden").then_some(obj)
        });
        let message = condition(&obj, "Ready").unwrap()["message"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(message.contains(says), "{name}: {message}");
        assert!(
            obj["status"].get("resources").is_none(),
            "{name}: {}",
            obj["status"]
        );
        assert!(
            application(env, &format!("{ns}.{name}")).is_none(),
            "{name}"
        );
    }
    assert!(namespace(env, &format!("{ns}-p")).is_none());
    assert!(namespace(env, &format!("{ns}-r")).is_none());
    // The namespace in the way is left as it was.
    let untouched = namespace(env, &taken).unwrap();
    assert!(
        untouched["metadata"]["labels"]
            .get("platform.pave.dev/environment-uid")
            .is_none()
    );
    // Not one AWS call made for any of them: nothing with their names in the proxy's log.
    let uids: Vec<String> = cases
        .iter()
        .map(|(name, _, _)| {
            get_environment(env, ns, name).unwrap()["metadata"]["uid"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let named: Vec<String> = proxy
        .requests()
        .iter()
        .filter(|s| {
            s.params
                .iter()
                .any(|(_, v)| uids.iter().any(|u| v.contains(u.as_str())))
        })
        .map(|s| s.action.clone())
        .collect();
    assert!(
        named.is_empty(),
        "AWS calls for refused environments: {named:?}"
    );

    // Removing the namespace in the way is enough: the environment goes ahead.
    env.run_kubectl(&["delete", "namespace", &taken]).unwrap();
    eventually(
        Duration::from_secs(90),
        "the Application once the namespace is free",
        || application(env, &format!("{ns}.taken")),
    );
    for (name, _, _) in &cases {
        env.run_kubectl(&["delete", "devenv", name, "-n", ns, "--wait=false"])
            .unwrap();
    }
    release(env, &format!("{ns}.taken"));
}
