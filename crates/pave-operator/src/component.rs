//! The catalog controller (field manager `pave-catalog`) for Components.
//!
//! This version only acknowledges each generation; resolving references, relations,
//! cycles and impact comes with `pave-catalog`.

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use kube::core::DeserializeGuard;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use pave_api::Component;

use crate::controller::{self, Context, Observed, Shared, not_implemented};
use crate::error::Error;

pub const NAME: &str = "pave-catalog";

const NOT_IMPLEMENTED: &str = "pave-operator 0.1 records components but does not resolve their \
    references, relations or impact yet";

impl Observed for Component {
    fn observed(&self) -> (Option<i64>, &[Condition]) {
        self.status
            .as_ref()
            .map_or((None, &[]), |s| (s.observed_generation, &s.conditions))
    }
}

pub async fn run(shared: Shared) {
    controller::run::<Component, _, _>(shared, NAME, reconcile).await;
}

async fn reconcile(
    obj: Arc<DeserializeGuard<Component>>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let component = ctx.accept(&obj).await?;
    // The API server always sets the namespace of a namespaced kind.
    let api = Api::<Component>::namespaced(
        ctx.client.clone(),
        &component.namespace().unwrap_or_default(),
    );
    let ready = not_implemented(
        component.meta().generation,
        NOT_IMPLEMENTED,
        Timestamp::now(),
    );
    ctx.write_status(&api, component, vec![ready]).await?;
    // Nothing outside the object can change the answer yet, so no periodic requeue.
    Ok(Action::await_change())
}
