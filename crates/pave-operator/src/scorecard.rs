//! The scorecard controller (field manager `pave-scorecards`) for Scorecards.
//!
//! This version only acknowledges each generation; evaluating components against
//! the rules comes with `pave-score`.

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use kube::api::Api;
use kube::core::DeserializeGuard;
use kube::runtime::controller::Action;
use pave_api::Scorecard;

use crate::controller::{self, Context, Observed, Shared, not_implemented};
use crate::error::Error;

pub const NAME: &str = "pave-scorecards";

const NOT_IMPLEMENTED: &str = "pave-operator 0.1 records scorecards but does not evaluate \
    components against them yet";

impl Observed for Scorecard {
    fn observed(&self) -> (Option<i64>, &[Condition]) {
        self.status
            .as_ref()
            .map_or((None, &[]), |s| (s.observed_generation, &s.conditions))
    }
}

pub async fn run(shared: Shared) {
    controller::run::<Scorecard, _, _>(shared, NAME, reconcile).await;
}

async fn reconcile(
    obj: Arc<DeserializeGuard<Scorecard>>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let scorecard = ctx.accept(&obj).await?;
    let api = Api::<Scorecard>::all(ctx.client.clone());
    let ready = not_implemented(
        scorecard.meta().generation,
        NOT_IMPLEMENTED,
        Timestamp::now(),
    );
    ctx.write_status(&api, scorecard, vec![ready]).await?;
    // Nothing outside the object can change the answer yet, so no periodic requeue.
    Ok(Action::await_change())
}
