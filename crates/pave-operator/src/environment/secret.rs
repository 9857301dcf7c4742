//! The connection secret: the database password, stored before the database exists,
//! and where to connect once it does.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use pave_api::DeveloperEnvironment;
use pave_cloud::{Observed, Plan, ResourceKind};

use super::uid_of;
use crate::controller::Context;
use crate::error::Error;

/// The connection secret's coordinates and the database password in it.
pub(super) struct ConnectionSecret {
    pub(super) name: String,
    pub(super) namespace: String,
    pub(super) password: String,
}

/// The label that says which environment (by UID) a connection secret belongs to.
/// pave reads and writes only Secrets that carry it (or, for secrets made before the
/// label existed, an owner reference to the environment).
pub(super) use pave_api::environment::ENVIRONMENT_UID_LABEL;

/// What became of the connection secret.
pub(super) enum SecretOutcome {
    Ready(ConnectionSecret),
    /// A Secret of that name exists and pave did not create it for this environment:
    /// `namespace/name`. It is never read or written.
    Foreign(String),
}

/// Whether `secret` was created by pave for the environment `uid`.
fn belongs_to(secret: &Secret, uid: &str) -> bool {
    secret
        .labels()
        .get(ENVIRONMENT_UID_LABEL)
        .map(String::as_str)
        == Some(uid)
        || secret.owner_references().iter().any(|o| o.uid == uid)
}

fn password_of(secret: &Secret) -> Option<String> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get("password"))
        .map(|p| String::from_utf8_lossy(&p.0).into_owned())
        .filter(|p| !p.is_empty())
}

/// Where the environment's connection secret lives: `(namespace, name)`.
pub(super) fn coordinates(env: &DeveloperEnvironment) -> (String, String) {
    let namespace = env
        .spec
        .write_connection_secrets_to_namespace
        .clone()
        .unwrap_or_else(|| env.namespace().unwrap_or_default());
    (namespace, format!("{}-connection", env.name_any()))
}

/// Finds or creates the connection secret; a new one gets a generated password. One
/// that exists but is not this environment's is reported, never adopted: its password
/// would become the database's and its data would be overwritten.
pub(super) async fn connection_secret(
    env: &DeveloperEnvironment,
    ctx: &Context,
    plan: &Plan,
) -> Result<SecretOutcome, Error> {
    let own = env.namespace().unwrap_or_default();
    let uid = uid_of(env);
    let (namespace, name) = coordinates(env);
    let api = Api::<Secret>::namespaced(ctx.client.clone(), &namespace);
    let kube = |action| move |source| Error::Kube { action, source };
    let found = |existing: Secret| -> Result<SecretOutcome, Error> {
        if !belongs_to(&existing, &uid) {
            return Ok(SecretOutcome::Foreign(format!("{namespace}/{name}")));
        }
        match password_of(&existing) {
            Some(password) => Ok(SecretOutcome::Ready(ConnectionSecret {
                name: name.clone(),
                namespace: namespace.clone(),
                password,
            })),
            // Ours but without a password: nothing can have used it yet, since the
            // database is created only after the password is stored. Not guessed at.
            None => Err(Error::Pending(format!(
                "the connection secret {namespace}/{name} has no password yet"
            ))),
        }
    };
    if let Some(existing) = api
        .get_opt(&name)
        .await
        .map_err(kube("read the connection secret"))?
    {
        return found(existing);
    }
    let password = generate_password();
    let mut data = BTreeMap::new();
    data.insert("password".to_owned(), password.clone());
    data.insert("username".to_owned(), plan_username(plan));
    data.insert(
        "engine".to_owned(),
        serde_json::to_value(env.spec.parameters.db_engine)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
    );
    let mut secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(namespace.clone()),
            labels: Some(BTreeMap::from([
                ("platform.pave.dev/environment".to_owned(), env.name_any()),
                (ENVIRONMENT_UID_LABEL.to_owned(), uid.clone()),
            ])),
            ..Default::default()
        },
        string_data: Some(data),
        type_: Some("Opaque".into()),
        ..Default::default()
    };
    // Owned (and garbage-collected with the environment) when in the same namespace;
    // owner references cannot cross namespaces, so teardown deletes the others.
    if namespace == own {
        secret.metadata.owner_references = Some(vec![owner_reference(env)]);
    }
    match api.create(&PostParams::default(), &secret).await {
        Ok(_) => Ok(SecretOutcome::Ready(ConnectionSecret {
            name,
            namespace,
            password,
        })),
        // Created a moment ago, by another reconcile or by someone else: look again.
        Err(kube::Error::Api(status)) if status.code == 409 => {
            let existing = api
                .get(&name)
                .await
                .map_err(kube("read the connection secret"))?;
            found(existing)
        }
        Err(source) => Err(Error::Kube {
            action: "create the connection secret",
            source,
        }),
    }
}

/// The environment's connection secret as it is now, with the API and name to act
/// on it; `None` when there is none.
async fn read_connection_secret(
    env: &DeveloperEnvironment,
    ctx: &Context,
) -> Result<(Api<Secret>, String, Option<Secret>), Error> {
    let (namespace, name) = coordinates(env);
    let api = Api::<Secret>::namespaced(ctx.client.clone(), &namespace);
    let secret = api.get_opt(&name).await.map_err(|source| Error::Kube {
        action: "read the connection secret",
        source,
    })?;
    Ok((api, name, secret))
}

/// `deletionPolicy: Orphan`: the database stays, so its password must too. The
/// environment's owner reference comes off the connection secret before the
/// environment goes, or garbage collection would delete the only copy.
pub(super) async fn keep_connection_secret(
    env: &DeveloperEnvironment,
    ctx: &Context,
) -> Result<(), Error> {
    let uid = uid_of(env);
    let kube = |action| move |source| Error::Kube { action, source };
    let (api, name, Some(secret)) = read_connection_secret(env, ctx).await? else {
        return Ok(());
    };
    if !secret.owner_references().iter().any(|o| o.uid == uid) {
        return Ok(());
    }
    let others: Vec<&OwnerReference> = secret
        .owner_references()
        .iter()
        .filter(|o| o.uid != uid)
        .collect();
    let patch = serde_json::json!({"metadata": {
        "ownerReferences": others,
        // Guards the patch: it applies only to the version just read.
        "resourceVersion": secret.resource_version(),
    }});
    api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(kube(
            "keep the connection secret (remove its owner reference)",
        ))?;
    Ok(())
}

/// `deletionPolicy: Delete`: a connection secret in another namespace (which owner
/// references cannot reach) is deleted with the environment, if it is this one's.
pub(super) async fn delete_connection_secret_elsewhere(
    env: &DeveloperEnvironment,
    ctx: &Context,
) -> Result<(), Error> {
    if Some(coordinates(env).0.as_str()) == env.namespace().as_deref() {
        return Ok(()); // garbage-collected through its owner reference
    }
    let (api, name, Some(secret)) = read_connection_secret(env, ctx).await? else {
        return Ok(());
    };
    if !belongs_to(&secret, &uid_of(env)) {
        return Ok(());
    }
    let params = kube::api::DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            uid: secret.uid(),
            resource_version: None,
        }),
        ..Default::default()
    };
    match api.delete(&name, &params).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(source) => Err(Error::Kube {
            action: "delete the connection secret",
            source,
        }),
    }
}

pub(super) fn plan_username(plan: &Plan) -> String {
    plan.resources
        .iter()
        .find_map(|d| match &d.spec {
            pave_cloud::ResourceSpec::DbInstance { username, .. } => Some(username.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

/// Adds where to connect, once the database has an endpoint.
pub(super) async fn fill_connection_secret(
    ctx: &Context,
    secret: &ConnectionSecret,
    database: &Observed,
    plan: &Plan,
    ids: &BTreeMap<String, String>,
) -> Result<(), Error> {
    let Some((host, port)) = &database.endpoint else {
        return Ok(());
    };
    let (database_name, engine) = plan
        .resources
        .iter()
        .find_map(|d| match &d.spec {
            pave_cloud::ResourceSpec::DbInstance {
                database_name,
                engine,
                ..
            } => Some((database_name.clone(), engine.clone())),
            _ => None,
        })
        .unwrap_or_default();
    let mut data = BTreeMap::from([
        ("host".to_owned(), host.clone()),
        ("port".to_owned(), port.to_string()),
        ("endpoint".to_owned(), format!("{host}:{port}")),
        ("database".to_owned(), database_name),
        ("engine".to_owned(), engine),
        ("username".to_owned(), plan_username(plan)),
    ]);
    for desired in &plan.resources {
        let key = match desired.kind {
            ResourceKind::Vpc => "vpcId".to_owned(),
            ResourceKind::Subnet => format!(
                "subnetId-{}",
                desired.name.rsplit('-').next().unwrap_or_default()
            ),
            ResourceKind::SecurityGroup => format!(
                "securityGroupId-{}",
                desired.name.rsplit('-').next().unwrap_or_default()
            ),
            ResourceKind::Instance => format!(
                "instanceId-{}",
                desired.name.rsplit('-').next().unwrap_or_default()
            ),
            _ => continue,
        };
        if let Some(id) = ids.get(&desired.name) {
            data.insert(key, id.clone());
        }
    }
    let api = Api::<Secret>::namespaced(ctx.client.clone(), &secret.namespace);
    let current = api.get(&secret.name).await.map_err(|source| Error::Kube {
        action: "read the connection secret",
        source,
    })?;
    let unchanged = data.iter().all(|(k, v)| {
        current
            .data
            .as_ref()
            .and_then(|d| d.get(k))
            .is_some_and(|b| b.0 == v.as_bytes())
    });
    if unchanged {
        return Ok(());
    }
    let patch = serde_json::json!({"stringData": data});
    api.patch(&secret.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|source| Error::Kube {
            action: "fill in the connection secret",
            source,
        })?;
    Ok(())
}

pub(super) fn owner_reference(env: &DeveloperEnvironment) -> OwnerReference {
    OwnerReference {
        api_version: pave_api::environment::DeveloperEnvironment::api_version(&()).into_owned(),
        kind: "DeveloperEnvironment".into(),
        name: env.name_any(),
        uid: uid_of(env),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// 32 characters from the operating system's random source; RDS accepts letters and
/// digits in every engine.
pub(super) fn generate_password() -> String {
    use std::io::Read;
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("the OS random source is readable");
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}
