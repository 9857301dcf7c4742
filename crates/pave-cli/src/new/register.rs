//! What `kubectl pave new` writes to the cluster: `catalog:register` (the new
//! repository's `catalog-info.yaml`, converted as `kubectl pave import` converts it,
//! whatever catalog kinds it holds) and `pave:environment` with `apply: true`. Both
//! use server-side apply as the field manager `kubectl-pave`, and both send every
//! object as a server-side dry run first, so a refusal by the API server (schema,
//! admission policy, RBAC) leaves nothing half-registered.

use std::time::{Duration, Instant};

use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use pave_api::{ApiEntity, Component, DeveloperEnvironment, Domain, Group, System, User};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value as Json, json};

use crate::cluster::{Cluster, connect};
use crate::import::Entity;

pub const FIELD_MANAGER: &str = "kubectl-pave";
const COMPONENTS: &str = "components.platform.pave.dev";
const ENVIRONMENTS: &str = "developerenvironments.platform.pave.dev";

/// How long `catalog:register` waits for pave's status on what it registered.
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
        let client = &self.cluster.client;
        let namespace = &self.cluster.namespace;
        let list = |names: Result<Vec<String>, kube::Error>| names.unwrap_or_default();
        // The org, when the namespace has one: its Groups by name (owner's default
        // kind), its Users as `user:` references.
        let groups = list(self.runtime.block_on(async {
            let api = Api::<pave_api::Group>::namespaced(client.clone(), namespace);
            Ok(api
                .list(&Default::default())
                .await?
                .items
                .into_iter()
                .map(|g| g.name_any())
                .collect())
        }));
        let mut owners = groups;
        if !owners.is_empty() {
            owners.extend(list(self.runtime.block_on(async {
                let api = Api::<pave_api::User>::namespaced(client.clone(), namespace);
                Ok(api
                    .list(&Default::default())
                    .await?
                    .items
                    .into_iter()
                    .map(|u| format!("user:{}", u.name_any()))
                    .collect())
            })));
        } else {
            // No org yet: the owners the namespace's Components name.
            let api = Api::<Component>::namespaced(client.clone(), namespace);
            owners = self
                .runtime
                .block_on(api.list(&Default::default()))
                .map(|list| list.items.into_iter().map(|c| c.spec.owner).collect())
                .unwrap_or_default();
        }
        owners.sort();
        owners.dedup();
        owners
    }

    /// Applies catalog objects of any kind, all of them dry-run first; returns each
    /// one's reference and what pave's status says of it once written (or that it has
    /// not yet).
    pub fn register(&self, entities: &[Entity]) -> Result<Vec<(String, String)>, String> {
        let mut objects = Vec::new();
        for entity in entities {
            let resource = api_resource(entity);
            let namespace = api_namespace_of(entity, &self.cluster.namespace);
            let api = Api::namespaced_with(self.cluster.client.clone(), &namespace, &resource);
            let object: DynamicObject = serde_json::to_value(entity)
                .and_then(serde_json::from_value)
                .map_err(|e| format!("{} is not an object: {e}", entity.kind()))?;
            let plural = format!("{}.{}", resource.plural, resource.group);
            objects.push((api, object, plural, entity.reference(&namespace)));
        }
        let applying: Vec<(Api<DynamicObject>, &DynamicObject, &str)> = objects
            .iter()
            .map(|(api, object, plural, _)| (api.clone(), object, plural.as_str()))
            .collect();
        self.apply_all(&applying)?;
        // One wait for all, so that many objects do not wait many times as long.
        let deadline = Instant::now() + STATUS_WAIT;
        Ok(objects
            .iter()
            .map(|(api, object, _, reference)| {
                let status = self.wait_for_status(api, &object.name_any(), deadline);
                (reference.clone(), status)
            })
            .collect())
    }

    /// Applies one environment (dry-run first); returns its UID.
    pub fn apply_environment(&self, environment: &DeveloperEnvironment) -> Result<String, String> {
        let namespace = api_namespace(environment, &self.cluster.namespace);
        let api = Api::<DeveloperEnvironment>::namespaced(self.cluster.client.clone(), &namespace);
        let applied = self.apply_all(&[(api, environment, ENVIRONMENTS)])?;
        Ok(applied
            .into_iter()
            .next()
            .and_then(|o| o.uid())
            .unwrap_or_default())
    }

    /// Applies each object through its API; `resource` names its kind in messages.
    fn apply_all<K>(&self, objects: &[(Api<K>, &K, &str)]) -> Result<Vec<K>, String>
    where
        K: Resource + Clone + Serialize + DeserializeOwned + std::fmt::Debug,
    {
        let apply = |dry_run: bool| -> Result<Vec<K>, String> {
            let mut params = PatchParams::apply(FIELD_MANAGER);
            params.dry_run = dry_run;
            let mut applied = Vec::new();
            for (api, object, resource) in objects {
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

    /// What the status of the object says, read as JSON so that every kind is read
    /// alike: Components and the other catalog kinds all have `observedGeneration`
    /// and a `Ready` condition.
    fn wait_for_status(&self, api: &Api<DynamicObject>, name: &str, deadline: Instant) -> String {
        loop {
            if let Ok(object) = self.runtime.block_on(api.get(name)) {
                let status = &object.data["status"];
                let observed = status["observedGeneration"].as_i64();
                if observed.is_some() && observed == object.metadata.generation {
                    let ready = status["conditions"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|c| c["type"] == "Ready");
                    let text = |c: &Json, key: &str| c[key].as_str().unwrap_or("").to_owned();
                    return match ready {
                        Some(c) if c["status"] == "True" => "Ready".to_owned(),
                        Some(c) => {
                            format!("not Ready ({}): {}", text(c, "reason"), text(c, "message"))
                        }
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

/// Where the API server serves `entity`'s kind.
fn api_resource(entity: &Entity) -> ApiResource {
    match entity {
        Entity::Component(_) => ApiResource::erase::<Component>(&()),
        Entity::Group(_) => ApiResource::erase::<Group>(&()),
        Entity::User(_) => ApiResource::erase::<User>(&()),
        Entity::System(_) => ApiResource::erase::<System>(&()),
        Entity::Domain(_) => ApiResource::erase::<Domain>(&()),
        Entity::Api(_) => ApiResource::erase::<ApiEntity>(&()),
        Entity::Resource(_) => ApiResource::erase::<pave_api::Resource>(&()),
    }
}

fn api_namespace_of(entity: &Entity, default: &str) -> String {
    entity
        .metadata()
        .namespace
        .clone()
        .unwrap_or_else(|| default.to_owned())
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
