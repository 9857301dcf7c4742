//! Read → guardrails and tenancy: the request as the policy check sees it, and what
//! it needs to know about the cluster.

use k8s_openapi::api::core::v1::Namespace;
use kube::ResourceExt;
use kube::api::Api;
use pave_api::DeveloperEnvironment;
use pave_cloud::policy::{self, NamespaceState, PolicyContext};

use super::{ACCEPT_SECRETS, Cloud, uid_of};
use crate::controller::Context;
use crate::error::Error;

pub(super) fn request_of(env: &DeveloperEnvironment) -> policy::EnvironmentRequest {
    let p = &env.spec.parameters;
    policy::EnvironmentRequest {
        namespace: env.namespace().unwrap_or_default(),
        name: env.name_any(),
        uid: uid_of(env),
        region: p.region.clone(),
        db_size: p.db_size.clone(),
        db_engine: match p.db_engine {
            pave_api::environment::DbEngine::Postgres => policy::DbEngine::Postgres,
            pave_api::environment::DbEngine::Mysql => policy::DbEngine::Mysql,
        },
        db_engine_version: p.db_engine_version.clone(),
        db_storage_gib: p.db_storage_gib,
        cluster_size: serde_json::to_value(p.cluster_size)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        ttl: env.spec.ttl.clone(),
        connection_secret_namespace: env.spec.write_connection_secrets_to_namespace.clone(),
        gitops: env.spec.gitops.as_ref().map(|g| policy::GitOpsRequest {
            repo_url: g.repo_url.clone(),
            project: g.project.clone(),
            destination_namespace: g.destination_namespace.clone(),
        }),
    }
}

/// What the policy check needs to know about the cluster.
pub(super) async fn policy_context(
    env: &DeveloperEnvironment,
    ctx: &Context,
    cloud: &Cloud,
) -> Result<PolicyContext, Error> {
    let namespace = env.namespace().unwrap_or_default();
    let others = cloud
        .store
        .state()
        .iter()
        .filter_map(|g| g.0.as_ref().ok())
        .filter(|e| e.namespace().as_deref() == Some(namespace.as_str()) && e.uid() != env.uid())
        .filter(|e| e.metadata.deletion_timestamp.is_none())
        // Only those created before this one count: the newest are the ones refused,
        // and a verdict never flips because a newer environment appeared.
        .filter(|e| created_before(e, env))
        .count();
    let secret_namespace = env.spec.write_connection_secrets_to_namespace.clone();
    let accepts = match &secret_namespace {
        Some(target) if *target != namespace => {
            let namespaces = Api::<Namespace>::all(ctx.client.clone());
            namespaces
                .get_opt(target)
                .await
                .map_err(|source| Error::Kube {
                    action: "read the connection secret's namespace",
                    source,
                })?
                .and_then(|ns| ns.annotations().get(ACCEPT_SECRETS).cloned())
        }
        _ => None,
    };
    let destination_namespace = match &env.spec.gitops {
        None => NamespaceState::Absent,
        Some(gitops) => {
            let destination = super::gitops::destination_of(env, gitops);
            match super::gitops::namespace_owner(ctx, &destination).await? {
                None => NamespaceState::Absent,
                Some(Some(uid)) if uid == uid_of(env) => NamespaceState::OwnedByThis,
                Some(Some(_)) => NamespaceState::OwnedByOther,
                Some(None) => NamespaceState::Unowned,
            }
        }
    };
    Ok(PolicyContext {
        other_environments_in_namespace: others as u32,
        secret_namespace_accepts: accepts,
        destination_namespace,
    })
}

/// Whether `a` was created before `b` (by creation time, then name).
pub(super) fn created_before(a: &DeveloperEnvironment, b: &DeveloperEnvironment) -> bool {
    let key = |e: &DeveloperEnvironment| {
        (
            e.metadata.creation_timestamp.clone().map(|t| t.0),
            e.name_any(),
        )
    };
    key(a) < key(b)
}
