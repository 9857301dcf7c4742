//! The environment's Argo CD Application: created once the cloud resources are
//! ready, mirrored into status through a watch, and deleted (with what Argo CD
//! deployed) before any cloud resource is torn down.
//!
//! - **Name**: `<namespace>.<name>` of the environment. Namespaces have no dots, so
//!   the first dot splits the pair and no two environments share a name. A pair
//!   longer than 63 characters (Argo CD puts the name into a label value) is cut to 52
//!   and followed by `-` and 10 hex digits of a SHA-256 of the whole pair.
//! - **Write discipline**: server-side apply of metadata (labels, finalizer) and spec
//!   only, with pave's field manager; the Application CRD has no status subresource,
//!   so a PUT or an apply that sent status would wipe what Argo CD wrote. Applied only
//!   when the live object lacks something pave wants: at rest nothing is written.
//! - **Destination namespace**: created by pave, labelled with the environment's UID,
//!   before the Application, so the tenancy rule ("must not exist, or belong to this
//!   environment") can tell it from anybody else's; the connection secret is copied
//!   into it for the deployed application to read. It is deleted with the Application
//!   under `deletionPolicy: Delete`.
//! - **Deletion**: the Application carries Argo CD's `resources-finalizer`, so deleting
//!   it removes what it deployed; pave waits until it is gone. Under `deletionPolicy:
//!   Orphan` the finalizer is dropped first, so Argo CD leaves the deployed objects
//!   (and pave leaves the namespace): Orphan destroys nothing a team may need.
//! - Argo CD's tracking label and annotation are never copied onto anything pave
//!   writes: pave's own labels point back to the environment.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams,
};
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use pave_api::DeveloperEnvironment;
use pave_api::environment::{ENVIRONMENT_UID_LABEL, GitOpsSpec, GitOpsStatus};
use pave_cloud::config::OperatorConfig;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::secret::coordinates;
use super::uid_of;
use crate::controller::Context;
use crate::error::Error;

/// Argo CD's finalizer that deletes what an Application deployed before the
/// Application itself goes.
pub const RESOURCES_FINALIZER: &str = "resources-finalizer.argocd.argoproj.io";
/// The environment's namespace, on its Application.
pub const ENVIRONMENT_NAMESPACE_LABEL: &str = "platform.pave.dev/environment-namespace";
/// The environment's name, on its Application and destination namespace.
pub const ENVIRONMENT_NAME_LABEL: &str = "platform.pave.dev/environment";
/// The cluster Applications deploy to: the one Argo CD runs in.
pub const IN_CLUSTER: &str = "https://kubernetes.default.svc";

/// The Ready reason while the cloud resources are ready and the Application is not
/// (yet) Synced and Healthy. The cloud is at rest then: only the Application moves.
pub const APPLICATION_NOT_READY: &str = "ApplicationNotReady";

/// Argo CD's `Application` kind, which pave knows only by its API.
pub fn application_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("argoproj.io", "v1alpha1", "Application"),
        "applications",
    )
}

/// The Application's name for environment `namespace/name`: stable, distinct for
/// every pair, at most 63 characters.
pub fn application_name(namespace: &str, name: &str) -> String {
    let pair = format!("{namespace}.{name}");
    if pair.len() <= 63 {
        return pair;
    }
    let digest = Sha256::digest(format!("{namespace}/{name}").as_bytes());
    let hex: String = digest.iter().take(5).map(|b| format!("{b:02x}")).collect();
    let mut cut: String = pair.chars().take(52).collect();
    // A name may not end in a dot or dash before the separator either.
    while cut.ends_with(['.', '-']) {
        cut.pop();
    }
    format!("{cut}-{hex}")
}

/// What pave owns of the Application for `env` with `gitops`: metadata and spec, never
/// status.
pub fn desired_application(
    env: &DeveloperEnvironment,
    gitops: &GitOpsSpec,
    config: &OperatorConfig,
) -> Value {
    let namespace = env.namespace().unwrap_or_default();
    let name = env.name_any();
    let project = gitops
        .project
        .clone()
        .unwrap_or_else(|| config.gitops.default_project_for(&namespace).to_owned());
    let mut source = json!({
        "repoURL": gitops.repo_url,
        "targetRevision": gitops.target_revision,
    });
    if let Some(path) = &gitops.path {
        source["path"] = json!(path);
    }
    let mut sync_policy = json!({
        "syncOptions": ["CreateNamespace=true"],
        // Bounded: a broken manifest is reported, not retried forever.
        "retry": {"limit": 5, "backoff": {"duration": "5s", "factor": 2, "maxDuration": "3m"}},
    });
    if let Some(automated) = &gitops.automated {
        sync_policy["automated"] =
            json!({"prune": automated.prune, "selfHeal": automated.self_heal});
    }
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {
            "name": application_name(&namespace, &name),
            "namespace": config.gitops.namespace,
            "labels": labels(env),
            "finalizers": [RESOURCES_FINALIZER],
        },
        "spec": {
            "project": project,
            "source": source,
            "destination": {"server": IN_CLUSTER, "namespace": destination_of(env, gitops)},
            "syncPolicy": sync_policy,
        },
    })
}

/// The namespace `gitops` deploys into.
pub fn destination_of(env: &DeveloperEnvironment, gitops: &GitOpsSpec) -> String {
    gitops
        .destination_namespace
        .clone()
        .unwrap_or_else(|| env.name_any())
}

/// pave's labels on the Application and the destination namespace: they point back to
/// the environment.
fn labels(env: &DeveloperEnvironment) -> BTreeMap<String, String> {
    BTreeMap::from([
        (ENVIRONMENT_UID_LABEL.to_owned(), uid_of(env)),
        (
            ENVIRONMENT_NAMESPACE_LABEL.to_owned(),
            env.namespace().unwrap_or_default(),
        ),
        (ENVIRONMENT_NAME_LABEL.to_owned(), env.name_any()),
        ("app.kubernetes.io/managed-by".to_owned(), "pave".to_owned()),
    ])
}

/// The environment an Application of pave's points back to, for the watch.
pub fn environment_of<K: Resource>(application: &DynamicObject) -> Option<ObjectRef<K>>
where
    K::DynamicType: Default,
{
    let labels = application.labels();
    let namespace = labels.get(ENVIRONMENT_NAMESPACE_LABEL)?;
    let name = labels.get(ENVIRONMENT_NAME_LABEL)?;
    Some(ObjectRef::new(name).within(namespace))
}

/// Whether everything in `wanted` is in `live` with the same value (objects compared
/// key by key, anything else exactly): then applying `wanted` would change nothing.
pub fn contains(live: &Value, wanted: &Value) -> bool {
    match (live, wanted) {
        (Value::Object(live), Value::Object(wanted)) => wanted
            .iter()
            .all(|(key, value)| live.get(key).is_some_and(|l| contains(l, value))),
        _ => live == wanted,
    }
}

/// What the Application's status says, as the environment's status shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Mirror {
    pub status: GitOpsStatus,
    /// Argo CD reports Synced.
    pub synced: bool,
    /// Argo CD reports Healthy.
    pub healthy: bool,
}

impl Mirror {
    /// Whether Argo CD has reported on the Application at all.
    pub fn reported(&self) -> bool {
        self.status.sync.is_some() || self.status.health.is_some()
    }

    /// One line for the Ready condition while the Application is not Synced and
    /// Healthy.
    pub fn summary(&self) -> String {
        let application = self.status.application.as_deref().unwrap_or_default();
        if !self.reported() {
            return format!("Argo CD has not reported on Application {application} yet");
        }
        let mut line = format!(
            "Application {application} is {} and {}",
            self.status.sync.as_deref().unwrap_or("Unknown"),
            self.status.health.as_deref().unwrap_or("Unknown")
        );
        if let Some(message) = &self.status.message {
            line += &format!(": {message}");
        }
        line
    }
}

/// Reads Argo CD's view of `application` (`namespace/name`) from its status.
pub fn mirror(application: &str, destination: &str, object: &Value) -> Mirror {
    let status = &object["status"];
    let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_owned);
    let sync = text(&status["sync"]["status"]);
    let health = text(&status["health"]["status"]);
    let operation = &status["operationState"];
    // An error condition (the project does not exist, the repository cannot be read)
    // says more than the operation; a failed operation more than a health message.
    let error = status["conditions"].as_array().and_then(|conditions| {
        conditions.iter().find_map(|c| {
            let kind = c["type"].as_str()?;
            kind.ends_with("Error")
                .then(|| format!("{kind}: {}", c["message"].as_str().unwrap_or_default()))
        })
    });
    let message = error
        .or_else(|| {
            text(&operation["message"]).filter(|_| operation["phase"].as_str() != Some("Succeeded"))
        })
        .or_else(|| text(&status["health"]["message"]));
    Mirror {
        synced: sync.as_deref() == Some("Synced"),
        healthy: health.as_deref() == Some("Healthy"),
        status: GitOpsStatus {
            application: Some(application.to_owned()),
            sync,
            health,
            revision: text(&status["sync"]["revision"]),
            destination_namespace: Some(destination.to_owned()),
            operation_phase: text(&operation["phase"]),
            message,
        },
    }
}

/// The Applications API in Argo CD's namespace.
fn applications(ctx: &Context, config: &OperatorConfig) -> Api<DynamicObject> {
    Api::namespaced_with(
        ctx.client.clone(),
        &config.gitops.namespace,
        &application_resource(),
    )
}

/// Who a namespace belongs to, for the tenancy rule.
pub async fn namespace_owner(ctx: &Context, name: &str) -> Result<Option<Option<String>>, Error> {
    let namespace = Api::<Namespace>::all(ctx.client.clone())
        .get_opt(name)
        .await
        .map_err(|source| Error::Kube {
            action: "read the Argo CD destination namespace",
            source,
        })?;
    Ok(namespace.map(|ns| ns.labels().get(ENVIRONMENT_UID_LABEL).cloned()))
}

/// Creates the destination namespace for `env` (labelled with its UID) and copies the
/// connection secret into it, so the deployed application can read its database.
pub async fn prepare_destination(
    env: &DeveloperEnvironment,
    ctx: &Context,
    destination: &str,
) -> Result<(), Error> {
    let params = PatchParams::apply(ctx.name).force();
    let namespace = json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": destination, "labels": labels(env)},
    });
    Api::<Namespace>::all(ctx.client.clone())
        .patch(destination, &params, &Patch::Apply(&namespace))
        .await
        .map_err(|source| Error::Kube {
            action: "create the Argo CD destination namespace",
            source,
        })?;
    let (secret_namespace, secret_name) = coordinates(env);
    let Some(secret) = Api::<Secret>::namespaced(ctx.client.clone(), &secret_namespace)
        .get_opt(&secret_name)
        .await
        .map_err(|source| Error::Kube {
            action: "read the connection secret",
            source,
        })?
    else {
        return Ok(());
    };
    if secret_namespace == destination {
        return Ok(());
    }
    let copy = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": secret_name, "namespace": destination, "labels": labels(env)},
        "data": secret.data.unwrap_or_default(),
    });
    Api::<Secret>::namespaced(ctx.client.clone(), destination)
        .patch(&secret_name, &params, &Patch::Apply(&copy))
        .await
        .map_err(|source| Error::Kube {
            action: "copy the connection secret into the destination namespace",
            source,
        })?;
    Ok(())
}

/// Applies the Application unless `live` already has everything of `wanted`; returns
/// the object as it now is.
pub async fn apply_application(
    ctx: &Context,
    config: &OperatorConfig,
    wanted: &Value,
    live: Option<&DynamicObject>,
) -> Result<Value, Error> {
    if let Some(live) = live
        && let Ok(live) = serde_json::to_value(live)
        && contains(&live, wanted)
    {
        return Ok(live);
    }
    let name = wanted["metadata"]["name"].as_str().unwrap_or_default();
    let applied = applications(ctx, config)
        .patch(name, &PatchParams::apply(ctx.name).force(), &Patch::Apply(wanted))
        .await
        .map_err(|source| Error::Kube {
            action: "apply the Argo CD Application (is Argo CD installed, with its Application CRD?)",
            source,
        })?;
    Ok(serde_json::to_value(applied).unwrap_or_default())
}

/// Where removing an environment's Application stands.
#[derive(Debug)]
pub enum Removal {
    /// No Application, and the destination namespace handled.
    Done,
    /// Argo CD is still removing it (and what it deployed); the message says so.
    Waiting(String),
}

/// Deletes the Application of `env`, if there is one of this environment's, and once
/// it is gone, the destination namespace pave created for it. `cascade`: whether what
/// the Application deployed goes too (Argo CD's finalizer); without, the finalizer
/// is dropped first and the namespace kept.
pub async fn remove(
    env: &DeveloperEnvironment,
    ctx: &Context,
    config: &OperatorConfig,
    destination: Option<&str>,
    cascade: bool,
) -> Result<Removal, Error> {
    let api = applications(ctx, config);
    let name = application_name(&env.namespace().unwrap_or_default(), &env.name_any());
    let shown = format!("{}/{name}", config.gitops.namespace);
    let kube = |action| move |source| Error::Kube { action, source };
    let found = match api.get_opt(&name).await {
        Ok(found) => found,
        // No Application CRD: Argo CD is not installed, so there is nothing to remove.
        Err(kube::Error::Api(status)) if status.code == 404 => None,
        Err(source) => return Err(kube("read the Argo CD Application")(source)),
    };
    let ours = found
        .as_ref()
        .filter(|app| app.labels().get(ENVIRONMENT_UID_LABEL) == Some(&uid_of(env)));
    if let Some(app) = ours {
        if !cascade && app.finalizers().iter().any(|f| f == RESOURCES_FINALIZER) {
            // Dropping pave's claim on the finalizer removes it: nobody else set it.
            let release = json!({
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "Application",
                "metadata": {"name": name, "namespace": config.gitops.namespace, "finalizers": []},
            });
            api.patch(
                &name,
                &PatchParams::apply(ctx.name).force(),
                &Patch::Apply(&release),
            )
            .await
            .map_err(kube("drop the Argo CD Application's resources finalizer"))?;
        }
        if app.metadata.deletion_timestamp.is_none() {
            delete_exactly(&api, &name, app.uid())
                .await
                .map_err(kube("delete the Argo CD Application"))?;
        }
        let what = if cascade { " and what it deployed" } else { "" };
        return Ok(Removal::Waiting(format!(
            "waiting for Argo CD to delete Application {shown}{what}"
        )));
    }
    if !cascade {
        return Ok(Removal::Done);
    }
    let Some(destination) = destination else {
        return Ok(Removal::Done);
    };
    let namespaces = Api::<Namespace>::all(ctx.client.clone());
    let Some(namespace) = namespaces
        .get_opt(destination)
        .await
        .map_err(kube("read the Argo CD destination namespace"))?
    else {
        return Ok(Removal::Done);
    };
    if namespace.labels().get(ENVIRONMENT_UID_LABEL) != Some(&uid_of(env)) {
        return Ok(Removal::Done); // not (or no longer) this environment's
    }
    if namespace.metadata.deletion_timestamp.is_none() {
        let gone = delete_exactly(&namespaces, destination, namespace.uid())
            .await
            .map_err(kube("delete the Argo CD destination namespace"))?;
        if gone {
            return Ok(Removal::Done);
        }
    }
    Ok(Removal::Waiting(format!(
        "waiting for namespace {destination}, which pave created for Application {shown}, to be deleted"
    )))
}

/// Deletes `name`, only if it is still the object with `uid` (not one created again
/// under the same name since it was read). Returns whether it was already gone.
async fn delete_exactly<K>(
    api: &Api<K>,
    name: &str,
    uid: Option<String>,
) -> Result<bool, kube::Error>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let params = DeleteParams {
        preconditions: uid.map(|uid| kube::api::Preconditions {
            uid: Some(uid),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete(name, &params).await {
        Ok(_) => Ok(false),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(true),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pave_api::environment::AutomatedSync;

    fn environment(namespace: &str, name: &str) -> DeveloperEnvironment {
        let mut env: DeveloperEnvironment = serde_json::from_value(json!({
            "apiVersion": "platform.pave.dev/v1alpha1",
            "kind": "DeveloperEnvironment",
            "metadata": {"name": name, "namespace": namespace, "uid": "3f2a9c1e-7b4d-4e8a-9f10-2c3d4e5f6a7b"},
            "spec": {"parameters": {"region": "ap-northeast-2"}},
        }))
        .unwrap();
        env.spec.gitops = Some(GitOpsSpec {
            repo_url: "https://github.com/my-org/environments".into(),
            path: Some("teams/payments/feature-payment-v2".into()),
            target_revision: "HEAD".into(),
            project: None,
            destination_namespace: Some("feature-payment-v2".into()),
            automated: Some(AutomatedSync {
                prune: true,
                self_heal: true,
            }),
        });
        env
    }

    #[test]
    fn names_are_stable_distinct_and_short() {
        assert_eq!(
            application_name("team-payments", "feature-payment-v2-env"),
            "team-payments.feature-payment-v2-env"
        );
        // The split is unambiguous: a namespace has no dot.
        assert_ne!(application_name("a-b", "c"), application_name("a", "b-c"));
        let long_ns = "n".repeat(63);
        let long = application_name(&long_ns, "x");
        assert_eq!(long.len(), 63, "{long}");
        assert_eq!(long, application_name(&long_ns, "x"));
        assert_ne!(long, application_name(&long_ns, "y"));
        let cut = application_name("team", &format!("{}.-{}", "e".repeat(45), "x".repeat(20)));
        assert!(!cut.contains(".-"), "{cut}");
        for name in [long, cut] {
            assert!(name.len() <= 63);
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-'),
                "{name}"
            );
        }
    }

    #[test]
    fn the_application_has_the_spec_and_nothing_of_argo_cds() {
        let env = environment("team-payments", "feature-payment-v2-env");
        let config = OperatorConfig::default();
        let app = desired_application(&env, env.spec.gitops.as_ref().unwrap(), &config);
        assert_eq!(
            app,
            json!({
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "Application",
                "metadata": {
                    "name": "team-payments.feature-payment-v2-env",
                    "namespace": "argocd",
                    "labels": {
                        "app.kubernetes.io/managed-by": "pave",
                        "platform.pave.dev/environment": "feature-payment-v2-env",
                        "platform.pave.dev/environment-namespace": "team-payments",
                        "platform.pave.dev/environment-uid": "3f2a9c1e-7b4d-4e8a-9f10-2c3d4e5f6a7b",
                    },
                    "finalizers": ["resources-finalizer.argocd.argoproj.io"],
                },
                "spec": {
                    "project": "team-payments",
                    "source": {
                        "repoURL": "https://github.com/my-org/environments",
                        "path": "teams/payments/feature-payment-v2",
                        "targetRevision": "HEAD",
                    },
                    "destination": {"server": "https://kubernetes.default.svc", "namespace": "feature-payment-v2"},
                    "syncPolicy": {
                        "automated": {"prune": true, "selfHeal": true},
                        "syncOptions": ["CreateNamespace=true"],
                        "retry": {"limit": 5, "backoff": {"duration": "5s", "factor": 2, "maxDuration": "3m"}},
                    },
                },
            })
        );
        // Manual sync: no automated policy at all.
        let mut gitops = env.spec.gitops.clone().unwrap();
        gitops.automated = None;
        gitops.project = Some("payments-team".into());
        let app = desired_application(&env, &gitops, &config);
        assert!(app["spec"]["syncPolicy"].get("automated").is_none());
        assert_eq!(app["spec"]["project"], "payments-team");
    }

    #[test]
    fn an_application_points_back_to_its_environment() {
        let env = environment("team-payments", "feature-payment-v2-env");
        let app: DynamicObject = serde_json::from_value(desired_application(
            &env,
            env.spec.gitops.as_ref().unwrap(),
            &OperatorConfig::default(),
        ))
        .unwrap();
        let back: ObjectRef<DeveloperEnvironment> = environment_of(&app).unwrap();
        assert_eq!(
            back,
            ObjectRef::new("feature-payment-v2-env").within("team-payments")
        );
    }

    #[test]
    fn contains_compares_what_pave_wants_only() {
        let live = json!({"metadata": {"name": "a", "labels": {"x": "1", "y": "2"}, "resourceVersion": "7"},
                          "spec": {"project": "p", "syncPolicy": {"syncOptions": ["CreateNamespace=true"]}},
                          "status": {"sync": {"status": "Synced"}}});
        assert!(contains(
            &live,
            &json!({"metadata": {"labels": {"x": "1"}}, "spec": {"project": "p"}})
        ));
        assert!(!contains(&live, &json!({"spec": {"project": "q"}})));
        assert!(!contains(
            &live,
            &json!({"metadata": {"finalizers": ["f"]}})
        ));
        assert!(!contains(
            &live,
            &json!({"spec": {"syncPolicy": {"syncOptions": []}}})
        ));
    }

    #[test]
    fn the_mirror_reads_argo_cds_status() {
        let app = json!({"status": {
            "sync": {"status": "Synced", "revision": "0a1b2c"},
            "health": {"status": "Healthy"},
            "operationState": {"phase": "Succeeded", "message": "successfully synced (all tasks run)"},
        }});
        let m = mirror("argocd/team.env", "env", &app);
        assert!(m.synced && m.healthy && m.reported());
        assert_eq!(m.status.revision.as_deref(), Some("0a1b2c"));
        assert_eq!(m.status.operation_phase.as_deref(), Some("Succeeded"));
        assert_eq!(m.status.message, None, "a successful operation is no news");

        let failing = json!({"status": {
            "sync": {"status": "OutOfSync"},
            "health": {"status": "Missing"},
            "conditions": [{"type": "InvalidSpecError", "message": "Application referencing project team which does not exist"}],
            "operationState": {"phase": "Failed", "message": "one or more objects failed to apply"},
        }});
        let m = mirror("argocd/team.env", "env", &failing);
        assert!(!m.synced && !m.healthy);
        assert_eq!(
            m.status.message.as_deref(),
            Some("InvalidSpecError: Application referencing project team which does not exist")
        );
        assert!(
            m.summary()
                .contains("is OutOfSync and Missing: InvalidSpecError"),
            "{}",
            m.summary()
        );

        let fresh = mirror("argocd/team.env", "env", &json!({"metadata": {}}));
        assert!(!fresh.reported());
        assert!(
            fresh.summary().contains("has not reported"),
            "{}",
            fresh.summary()
        );
    }
}
