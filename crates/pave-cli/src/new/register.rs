//! What `kubectl pave new` writes to the cluster: `catalog:register` (the new
//! repository's `catalog-info.yaml`, converted as `kubectl pave import` converts it)
//! and `pave:environment` with `apply: true`. Both use server-side apply as the
//! field manager `kubectl-pave`, and both send every object as a server-side dry run
//! first, so a refusal by the API server (schema, admission policy, RBAC) leaves
//! nothing half-registered.

use std::time::{Duration, Instant};

use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use pave_api::{Component, DeveloperEnvironment};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value as Json, json};

use crate::cluster::{Cluster, connect};

pub const FIELD_MANAGER: &str = "kubectl-pave";
const COMPONENTS: &str = "components.platform.pave.dev";
const ENVIRONMENTS: &str = "developerenvironments.platform.pave.dev";

/// How long `catalog:register` waits for pave's status on a new Component.
const STATUS_WAIT: Duration = Duration::from_secs(15);

/// The cluster, reached once, from a runtime of its own (the rest of the run is
/// plain blocking work: files and git).
pub struct Target {
    runtime: tokio::runtime::Runtime,
    cluster: Cluster,
}

impl Target {
    /// Reaches the cluster and checks that pave's kinds are served, so a run that
    /// will register stops before its first step when it could not.
    pub fn connect(namespace: Option<&str>, kinds: &[&str]) -> Result<Target, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the async runtime: {e}"))?;
        let cluster = runtime.block_on(connect(namespace))?;
        let target = Target { runtime, cluster };
        for kind in kinds {
            target.check_served(kind)?;
        }
        Ok(target)
    }

    pub fn namespace(&self) -> &str {
        &self.cluster.namespace
    }

    fn check_served(&self, kind: &str) -> Result<(), String> {
        let cluster = &self.cluster;
        let namespace = cluster.namespace.clone();
        let result = match kind {
            "Component" => self
                .runtime
                .block_on(
                    Api::<Component>::namespaced(cluster.client.clone(), &namespace)
                        .list(&Default::default()),
                )
                .map(|_| ()),
            _ => self
                .runtime
                .block_on(
                    Api::<DeveloperEnvironment>::namespaced(cluster.client.clone(), &namespace)
                        .list(&Default::default()),
                )
                .map(|_| ()),
        };
        let resource = if kind == "Component" {
            COMPONENTS
        } else {
            ENVIRONMENTS
        };
        result
            .map_err(|e| cluster.explain(&e, &format!("list {resource} in {namespace}"), resource))
    }

    /// The owners the catalog knows, for an OwnerPicker's question.
    pub fn owners(&self) -> Vec<String> {
        let api =
            Api::<Component>::namespaced(self.cluster.client.clone(), &self.cluster.namespace);
        let mut owners: Vec<String> = self
            .runtime
            .block_on(api.list(&Default::default()))
            .map(|list| list.items.into_iter().map(|c| c.spec.owner).collect())
            .unwrap_or_default();
        owners.sort();
        owners.dedup();
        owners
    }

    /// Applies Components, all of them dry-run first; returns each one's reference
    /// and what pave's status says of it once written (or that it has not yet).
    pub fn register(&self, components: &[Component]) -> Result<Vec<(String, String)>, String> {
        let objects: Vec<(Api<Component>, &Component)> = components
            .iter()
            .map(|c| {
                let namespace = c
                    .namespace()
                    .unwrap_or_else(|| self.cluster.namespace.clone());
                (Api::namespaced(self.cluster.client.clone(), &namespace), c)
            })
            .collect();
        self.apply_all(&objects, COMPONENTS)?;
        Ok(objects
            .iter()
            .map(|(api, c)| {
                let reference = format!(
                    "component:{}/{}",
                    api_namespace(*c, &self.cluster.namespace),
                    c.name_any()
                );
                (reference, self.wait_for_status(api, &c.name_any()))
            })
            .collect())
    }

    /// Applies one environment (dry-run first); returns its UID.
    pub fn apply_environment(&self, environment: &DeveloperEnvironment) -> Result<String, String> {
        let namespace = api_namespace(environment, &self.cluster.namespace);
        let api = Api::<DeveloperEnvironment>::namespaced(self.cluster.client.clone(), &namespace);
        let applied = self.apply_all(&[(api, environment)], ENVIRONMENTS)?;
        Ok(applied
            .into_iter()
            .next()
            .and_then(|o| o.uid())
            .unwrap_or_default())
    }

    fn apply_all<K>(&self, objects: &[(Api<K>, &K)], resource: &str) -> Result<Vec<K>, String>
    where
        K: Resource + Clone + Serialize + DeserializeOwned + std::fmt::Debug,
    {
        let apply = |dry_run: bool| -> Result<Vec<K>, String> {
            let mut params = PatchParams::apply(FIELD_MANAGER);
            params.dry_run = dry_run;
            let mut applied = Vec::new();
            for (api, object) in objects {
                let name = object.name_any();
                let what = format!(
                    "apply {resource} {name}{}",
                    if dry_run { " (dry run)" } else { "" }
                );
                let result =
                    self.runtime
                        .block_on(api.patch(&name, &params, &Patch::Apply(*object)));
                applied.push(result.map_err(|e| self.cluster.explain(&e, &what, resource))?);
            }
            Ok(applied)
        };
        apply(true)?;
        apply(false)
    }

    fn wait_for_status(&self, api: &Api<Component>, name: &str) -> String {
        let deadline = Instant::now() + STATUS_WAIT;
        loop {
            if let Ok(component) = self.runtime.block_on(api.get(name)) {
                let status = component.status.as_ref();
                let observed = status.and_then(|s| s.observed_generation);
                if observed.is_some() && observed == component.metadata.generation {
                    let ready =
                        status.and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"));
                    return match ready {
                        Some(c) if c.status == "True" => "Ready".to_owned(),
                        Some(c) => format!("not Ready ({}): {}", c.reason, c.message),
                        None => "written, without a Ready condition".to_owned(),
                    };
                }
            }
            if Instant::now() >= deadline {
                return format!(
                    "pave has not written its status within {} s; is the operator running?",
                    STATUS_WAIT.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

fn api_namespace<K: Resource>(object: &K, default: &str) -> String {
    object
        .meta()
        .namespace
        .clone()
        .unwrap_or_else(|| default.to_owned())
}

/// The DeveloperEnvironment `pave:environment` describes: `name`, `namespace`,
/// `parameters` and the rest of the spec's fields (`gitops`, `ttl`,
/// `compositeDeletePolicy`, …) as the CRD names them.
pub fn environment(
    input: &Map<String, Json>,
    default_namespace: &str,
) -> Result<DeveloperEnvironment, String> {
    let mut spec = Map::new();
    for (key, value) in input {
        if !["name", "namespace", "targetPath", "apply"].contains(&key.as_str()) {
            spec.insert(key.clone(), value.clone());
        }
    }
    let manifest = json!({
        "apiVersion": "platform.pave.dev/v1alpha1",
        "kind": "DeveloperEnvironment",
        "metadata": {
            "name": input.get("name"),
            "namespace": input.get("namespace").and_then(Json::as_str).unwrap_or(default_namespace),
        },
        "spec": spec,
    });
    let environment: DeveloperEnvironment =
        serde_json::from_value(manifest).map_err(|e| format!("not a DeveloperEnvironment: {e}"))?;
    // serde drops fields it does not know; a misspelt one must not vanish silently.
    let kept = serde_json::to_value(&environment.spec).expect("a spec serialises");
    let unknown: Vec<&String> = spec
        .keys()
        .filter(|k| kept.get(k.as_str()).is_none())
        .collect();
    if !unknown.is_empty() {
        return Err(format!(
            "a DeveloperEnvironment's spec has no field {}",
            unknown
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(environment)
}
