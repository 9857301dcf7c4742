//! The scorecard controller (field manager `pave-scorecards`) for Scorecards.
//!
//! Its watch feeds the parsed Scorecards to the catalog (every Component is re-scored
//! when one changes; see `component`), and it writes each Scorecard's summary: how
//! many Components it evaluated, how many reached each level, each rule's pass rate,
//! and `Ready=False` naming every rule that cannot be evaluated as written. Summaries
//! are counted from the Components' last evaluations, coalesced so a burst of
//! Component changes costs one recount per Scorecard.

use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use futures::channel::mpsc;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use kube::core::DeserializeGuard;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, watcher};
use pave_api::Scorecard;

use crate::catalog::CatalogHandle;
use crate::controller::{self, Context, Observed, Shared, report_watch};
use crate::error::Error;

pub const NAME: &str = "pave-scorecards";

/// How long summary recounts are coalesced after a Component's evaluation changed.
const SUMMARY_COALESCE: Duration = Duration::from_millis(500);

impl Observed for Scorecard {
    fn observed(&self) -> (Option<i64>, &[Condition]) {
        self.status
            .as_ref()
            .map_or((None, &[]), |s| (s.observed_generation, &s.conditions))
    }
}

pub async fn run(shared: Shared, catalog: CatalogHandle) {
    let (reader, writer) = reflector::store::<DeserializeGuard<Scorecard>>();
    let scorecards = {
        let catalog = catalog.clone();
        let events = watcher(
            Api::<DeserializeGuard<Scorecard>>::all(shared.client.clone()),
            controller::watch_config(),
        )
        .default_backoff();
        report_watch(
            events,
            shared.readiness.clone(),
            "scorecards.platform.pave.dev",
        )
        .reflect(writer)
        .inspect_ok(move |event| catalog.on_scorecard(event))
        .touched_objects()
    };
    let (triggers, triggered) = mpsc::unbounded::<ObjectRef<DeserializeGuard<Scorecard>>>();
    let stale = {
        let catalog = catalog.clone();
        async move {
            loop {
                catalog.summaries.notified().await;
                tokio::time::sleep(SUMMARY_COALESCE).await;
                for name in catalog.take_stale_summaries() {
                    let _ = triggers.unbounded_send(ObjectRef::new(&name));
                }
            }
        }
    };
    let queue = shared.metrics.queue(NAME);
    let controller = Controller::for_stream(queue.track(scorecards), reader)
        .reconcile_on(queue.track_refs(triggered));
    let reconcile = move |obj: Arc<DeserializeGuard<Scorecard>>, ctx: Arc<Context>| {
        let catalog = catalog.clone();
        async move { reconcile(obj, ctx, catalog).await }
    };
    controller::run_with_background(shared, NAME, controller, reconcile, stale).await;
}

async fn reconcile(
    obj: Arc<DeserializeGuard<Scorecard>>,
    ctx: Arc<Context>,
    catalog: CatalogHandle,
) -> Result<Action, Error> {
    let scorecard = ctx.accept(&obj).await?;
    if let Some(status) = catalog.summary(scorecard, Timestamp::now()) {
        let api = Api::<Scorecard>::all(ctx.client.clone());
        ctx.apply_status(&api, scorecard, status).await?;
    }
    Ok(Action::await_change())
}
