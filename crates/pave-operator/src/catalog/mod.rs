//! The catalog controllers: one per catalog kind (Component, Group, User, System,
//! Domain, API, Resource), sharing one `pave_catalog::Catalog`.
//!
//! Each kind's watch, plus a metadata-only watch of DeveloperEnvironments, feeds the
//! catalog. Each change there names the entities whose relations, unresolved
//! references, members, cycle or impact it moved, and only those are reconciled, by
//! their kind's controller: reverse relations reach a target without anyone editing
//! it, and a missing target that appears resolves its referrers at once, with no
//! periodic resync.
//!
//! A kind's watch feeds the catalog *before* its controller sees the event, so a
//! reconcile never reads a catalog older than its object. Nothing is written until
//! every watch has listed everything once: a catalog loaded in any order then gets
//! exactly one status write per object, not one per intermediate state.

mod component;
mod kinds;
mod ready;
mod state;
mod trim;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use futures::channel::mpsc;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use kube::core::{DeserializeGuard, PartialObjectMeta};
use kube::runtime::{WatchStreamExt, watcher};
use pave_api::scorecard::ScorecardStatus;
use pave_api::{DeveloperEnvironment, Scorecard};
use pave_catalog::{EntityRef, Kind};
use tokio::sync::Notify;
use tracing::debug;

use crate::controller::{self, Shared, report_watch};
use crate::environment::RESOURCE as ENVIRONMENTS;
use crate::metrics::Metrics;
use crate::scoring::{self, ParsedScorecard};
pub use kinds::CatalogKind;
use state::State;

/// The Component controller's name (field manager, event reporter, metrics label).
pub const NAME: &str = component::NAME;

/// Every catalog controller's name.
pub const CONTROLLERS: [&str; 7] = [
    component::NAME,
    kinds::GROUPS,
    kinds::USERS,
    kinds::SYSTEMS,
    kinds::DOMAINS,
    kinds::APIS,
    kinds::RESOURCES,
];

/// How long impact recounts are coalesced after a change that reached too far to
/// recount inline: a burst of edits costs one recount.
const IMPACT_COALESCE: Duration = Duration::from_millis(200);

/// How many status writes run at once, per kind.
const CONCURRENCY: u16 = 32;

/// The namespace and name of an object.
type Key = (String, String);

/// What the controllers share: the catalog, the parsed Scorecards and every
/// Component's last evaluation, and the ways to ask for work.
#[derive(Clone)]
pub struct CatalogHandle {
    state: Arc<Mutex<State>>,
    /// Where each kind's controller hears which of its objects to reconcile.
    triggers: Arc<HashMap<Kind, mpsc::UnboundedSender<EntityRef>>>,
    /// Woken when impact needs a recount.
    impact_pending: Arc<Notify>,
    /// Woken when Scorecard summaries went stale.
    pub summaries: Arc<Notify>,
}

/// The streams of objects to reconcile, one per kind, that the handle feeds.
pub struct Triggered(HashMap<Kind, mpsc::UnboundedReceiver<EntityRef>>);

impl Triggered {
    fn take(&mut self, kind: &Kind) -> mpsc::UnboundedReceiver<EntityRef> {
        self.0
            .remove(kind)
            .expect("one stream per kind, taken once")
    }
}

impl CatalogHandle {
    /// The handle, and the streams of objects to reconcile that its users feed.
    pub fn new() -> (CatalogHandle, Triggered) {
        let mut senders = HashMap::new();
        let mut receivers = HashMap::new();
        for kind in kinds::KINDS {
            let (tx, rx) = mpsc::unbounded();
            senders.insert(kind.clone(), tx);
            receivers.insert(kind, rx);
        }
        let handle = CatalogHandle {
            state: Arc::new(Mutex::new(State::new())),
            triggers: Arc::new(senders),
            impact_pending: Arc::new(Notify::new()),
            summaries: Arc::new(Notify::new()),
        };
        (handle, Triggered(receivers))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("not poisoned")
    }

    /// Asks for the given entities to be reconciled by their kinds' controllers.
    fn reconcile(&self, affected: &[EntityRef]) {
        for entity in affected {
            if let Some(trigger) = self.triggers.get(&entity.kind) {
                // Fails only once the controller has stopped.
                let _ = trigger.unbounded_send(entity.clone());
            }
        }
    }

    /// Applies `update` to the state, then asks for what it affected to be
    /// reconciled.
    fn feed(&self, metrics: &Metrics, update: impl FnOnce(&mut State) -> Vec<EntityRef>) {
        let mut state = self.lock();
        let affected = update(&mut state);
        if state.catalog.impact_pending() {
            self.impact_pending.notify_one();
        }
        metrics.set_catalog_entities(state.catalog.entity_count());
        drop(state);
        self.reconcile(&affected);
    }

    /// Takes in a Scorecard event (the Scorecard controller's watch feeds it).
    pub fn on_scorecard(&self, event: &watcher::Event<DeserializeGuard<Scorecard>>) {
        let affected = self.lock().on_scorecard(event);
        self.reconcile(&affected);
        self.summaries.notify_one();
    }

    /// Takes the Scorecards whose summaries are stale (none before loading finished:
    /// they stay stale until a summary can be counted).
    pub fn take_stale_summaries(&self) -> BTreeSet<String> {
        let mut state = self.lock();
        if !state.synced {
            return BTreeSet::new();
        }
        std::mem::take(&mut state.stale_summaries)
    }

    /// The summary `scorecard` should have, or `None` when its status says it already
    /// (or pave has not finished loading).
    pub fn summary(&self, scorecard: &Scorecard, now: Timestamp) -> Option<ScorecardStatus> {
        let state = self.lock();
        if !state.synced {
            return None;
        }
        let parsed = ParsedScorecard::new(scorecard);
        let current = scorecard.status.clone().unwrap_or_default();
        scoring::summary(&parsed, state.outcomes.values().flatten(), &current, now)
    }
}

/// Runs every catalog controller, and the watches and timers that feed them.
pub async fn run(shared: Shared, catalog: CatalogHandle, mut triggered: Triggered) {
    let readiness = shared.readiness.clone();
    let environments = {
        let (catalog, metrics) = (catalog.clone(), shared.metrics.clone());
        let events = watcher(
            Api::<PartialObjectMeta<DeveloperEnvironment>>::all(shared.client.clone()),
            controller::watch_config(),
        )
        .default_backoff();
        report_watch(events, readiness.clone(), ENVIRONMENTS).for_each(move |event| {
            if let Ok(event) = event {
                catalog.feed(&metrics, |state| state.on_environment(&event));
            }
            std::future::ready(())
        })
    };
    let namespaces = {
        let (catalog, metrics) = (catalog.clone(), shared.metrics.clone());
        let events = watcher(
            Api::<PartialObjectMeta<Namespace>>::all(shared.client.clone()),
            controller::watch_config(),
        )
        .default_backoff();
        report_watch(events, readiness.clone(), "namespaces").for_each(move |event| {
            if let Ok(event) = event {
                catalog.feed(&metrics, |state| state.on_namespace(&event));
            }
            std::future::ready(())
        })
    };
    let refresh_impact = {
        let catalog = catalog.clone();
        async move {
            loop {
                catalog.impact_pending.notified().await;
                tokio::time::sleep(IMPACT_COALESCE).await;
                let changed = catalog.lock().catalog.refresh_impact();
                debug!(changed = changed.len(), "impact recounted");
                catalog.reconcile(&changed);
            }
        }
    };
    let background = async move {
        tokio::select! {
            () = environments => {}
            () = namespaces => {}
            () = refresh_impact => {}
        }
    };
    use pave_api::{ApiEntity, Domain, Group, Resource, System, User};
    tokio::join!(
        component::run(
            shared.clone(),
            catalog.clone(),
            triggered.take(&Kind::Component),
            background
        ),
        kinds::run::<Group>(
            shared.clone(),
            catalog.clone(),
            triggered.take(&Kind::Group)
        ),
        kinds::run::<User>(shared.clone(), catalog.clone(), triggered.take(&Kind::User)),
        kinds::run::<System>(
            shared.clone(),
            catalog.clone(),
            triggered.take(&Kind::System)
        ),
        kinds::run::<Domain>(
            shared.clone(),
            catalog.clone(),
            triggered.take(&Kind::Domain)
        ),
        kinds::run::<ApiEntity>(shared.clone(), catalog.clone(), triggered.take(&Kind::Api)),
        kinds::run::<Resource>(shared, catalog, triggered.take(&Kind::Resource)),
    );
}
