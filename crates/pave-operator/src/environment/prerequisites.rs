//! What the environment controller needs before it watches anything: the cluster id
//! that tags every cloud resource, and AWS credentials. Each is waited for as a
//! readiness problem (see `readiness`) rather than failing at the first environment:
//! without them no environment could be created or deleted, and a missing credential
//! should be read in the pod's log and `/readyz`, not in every environment's status.

use k8s_openapi::api::core::v1::Namespace;
use kube::{Api, Client};
use tracing::info;

use crate::controller::Shared;

/// The cluster id once it and the credentials are settled; `None` when the stop
/// signal came first.
pub(super) async fn prerequisites(
    shared: &Shared,
    cluster_id: Option<String>,
    endpoint: Option<&str>,
) -> Option<String> {
    let cluster_id = match cluster_id {
        Some(id) => id,
        None => {
            let client = &shared.client;
            let lookup = || default_cluster_id(client);
            shared
                .readiness
                .until_ok("cluster id", &shared.shutdown, lookup)
                .await?
        }
    };
    info!(%cluster_id, "cloud resources are tagged with this cluster id");
    // The SDK's own region setting, as the clients for each environment's region use
    // the same credentials chain.
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".to_owned());
    let check = || credentials(&region, endpoint);
    shared
        .readiness
        .until_ok("aws credentials", &shared.shutdown, check)
        .await?;
    info!("AWS credentials found");
    Some(cluster_id)
}

/// `k8s-<uid of kube-system>`: unique per cluster, stable for its lifetime.
async fn default_cluster_id(client: &Client) -> Result<String, String> {
    let fail = |error: String| {
        format!(
            "cannot read the kube-system namespace to name this cluster: {error}: allow the \
             operator to get namespaces (the chart's ClusterRole does), or set PAVE_CLUSTER_ID \
             (the chart's clusterId)"
        )
    };
    let namespace = Api::<Namespace>::all(client.clone())
        .get("kube-system")
        .await
        .map_err(|e| fail(e.to_string()))?;
    namespace
        .metadata
        .uid
        .map(|uid| format!("k8s-{uid}"))
        .ok_or_else(|| fail("it has no uid".into()))
}

/// Whether the default chain gives credentials, or what to do.
async fn credentials(region: &str, endpoint: Option<&str>) -> Result<(), String> {
    pave_cloud::aws::find_credentials(region, endpoint)
        .await
        .map_err(|error| {
            format!(
                "no AWS credentials: {error}: give pave a Secret with AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY (the chart's aws.credentialsSecret) or an IAM role \
                 (aws.roleArn, IRSA); environments wait until then"
            )
        })
}
