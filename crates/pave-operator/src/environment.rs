//! The environment controller (field manager `pave-environments`) for DeveloperEnvironments.
//!
//! This version only acknowledges each generation. It adds no finalizer: nothing
//! exists outside the cluster to clean up until provisioning arrives with `pave-cloud`.

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use kube::core::DeserializeGuard;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use pave_api::DeveloperEnvironment;

use crate::controller::{self, Context, Observed, Shared, not_implemented};
use crate::error::Error;

pub const NAME: &str = "pave-environments";

const NOT_IMPLEMENTED: &str = "pave-operator 0.1 records environments but does not provision cloud \
    resources, connection secrets or Argo CD applications yet";

impl Observed for DeveloperEnvironment {
    fn observed(&self) -> (Option<i64>, &[Condition]) {
        self.status
            .as_ref()
            .map_or((None, &[]), |s| (s.observed_generation, &s.conditions))
    }
}

pub async fn run(shared: Shared) {
    controller::run::<DeveloperEnvironment, _, _>(shared, NAME, reconcile).await;
}

async fn reconcile(
    obj: Arc<DeserializeGuard<DeveloperEnvironment>>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let environment = ctx.accept(&obj).await?;
    // The API server always sets the namespace of a namespaced kind.
    let api = Api::<DeveloperEnvironment>::namespaced(
        ctx.client.clone(),
        &environment.namespace().unwrap_or_default(),
    );
    let ready = not_implemented(
        environment.meta().generation,
        NOT_IMPLEMENTED,
        Timestamp::now(),
    );
    ctx.write_status(&api, environment, vec![ready]).await?;
    // Nothing outside the object can change the answer yet, so no periodic requeue.
    Ok(Action::await_change())
}
