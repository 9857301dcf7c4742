//! Reaching the cluster from the kubectl plugin: the kubeconfig the way kubectl
//! reads it, and the API server's failures in words that say what to do.

use std::error::Error as StdError;

use kube::{Client, Config};

/// A client, the namespace the kubeconfig's context names (or `--namespace`), and
/// the server's URL for messages.
pub struct Cluster {
    pub client: Client,
    pub namespace: String,
    pub server: String,
}

/// Connects as kubectl would: KUBECONFIG, ~/.kube/config or the in-cluster account.
pub async fn connect(namespace: Option<&str>) -> Result<Cluster, String> {
    let config = Config::infer().await.map_err(|e| {
        format!(
            "no Kubernetes configuration found ({}); set KUBECONFIG or create ~/.kube/config, \
             e.g. with your cluster's `get-credentials` command",
            chain(&e)
        )
    })?;
    let namespace = namespace.map_or_else(|| config.default_namespace.clone(), str::to_owned);
    let server = config.cluster_url.to_string();
    let client = Client::try_from(config).map_err(|e| {
        format!(
            "cannot set up a client for the API server at {server} ({}); check the cluster \
             and user entries of your kubeconfig",
            chain(&e)
        )
    })?;
    Ok(Cluster {
        client,
        namespace,
        server,
    })
}

impl Cluster {
    /// What a failed request means; see [`explain`].
    pub fn explain(&self, error: &kube::Error, what: &str, resource: &str) -> String {
        explain(error, what, resource, &self.server)
    }
}

/// What a failed request to `server` means. `what` names the request, verb first
/// ("get developerenvironment ns/name"); `resource` the kind's resource, for RBAC and
/// the missing-CRD case.
pub fn explain(error: &kube::Error, what: &str, resource: &str, server: &str) -> String {
    match error {
        kube::Error::Api(status) if status.code == 404 && status.reason == "NotFound" => {
            format!("{what}: not found")
        }
        // A 404 without that reason comes from a path nobody serves: no CRD.
        kube::Error::Api(status) if status.code == 404 => format!(
            "the API server at {server} does not serve {resource}; install pave's CRDs \
             (`kubectl pave crds | kubectl apply -f -`, or the Helm chart)"
        ),
        kube::Error::Api(status) if status.code == 401 => format!(
            "the API server at {server} did not accept your credentials ({}); log in again \
             or check the user of your kubeconfig's current context",
            status.message
        ),
        kube::Error::Api(status) if status.code == 403 => format!(
            "not allowed to {what} ({}); ask for `{}` on {resource}",
            status.message,
            what.split_whitespace().next().unwrap_or("access")
        ),
        kube::Error::Api(status) => {
            format!("{what} failed: {} ({})", status.message, status.code)
        }
        // Everything else never got an answer from the API server.
        other => unreachable(server, other),
    }
}

/// The message for an API server that did not answer.
pub fn unreachable(server: &str, error: &dyn StdError) -> String {
    format!(
        "cannot reach the API server at {server} ({}); check that the cluster is running and \
         that your kubeconfig's current context (KUBECONFIG or ~/.kube/config) points at it",
        chain(error)
    )
}

/// An error and its causes on one line, skipping causes already in the text (kube
/// repeats its source in its own message).
pub fn chain(error: &dyn StdError) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let message = cause.to_string();
        if !text.contains(&message) {
            text = format!("{text}: {message}");
        }
        source = cause.source();
    }
    text
}
