//! The Component controller (field manager `pave-catalog`): the catalog's answers
//! (relations, references, cycle, impact) and every Scorecard's score in status.

use std::sync::Arc;

use futures::channel::mpsc;
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use kube::core::DeserializeGuard;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use pave_api::Component;
use pave_api::component::{ComponentStatus, Score};
use pave_catalog::{EntityRef, EntityView};

use super::CatalogHandle;
use super::ready::{ready_condition, ready_conditions, relations, unresolved_refs};
use super::state::key_of;
use super::trim::differs;
use crate::controller::{self, Context, Observed, Shared};
use crate::error::Error;
use crate::scoring;

pub const NAME: &str = "pave-catalog";

impl Observed for Component {
    fn observed(
        &self,
    ) -> (
        Option<i64>,
        &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
    ) {
        self.status
            .as_ref()
            .map_or((None, &[]), |s| (s.observed_generation, &s.conditions))
    }
}

/// Runs the Component controller, with `background` (the watches and timers that
/// feed every catalog controller) beside it.
pub async fn run(
    shared: Shared,
    catalog: CatalogHandle,
    triggered: mpsc::UnboundedReceiver<EntityRef>,
    background: impl std::future::Future<Output = ()>,
) {
    let controller = super::kinds::controller::<Component>(&shared, &catalog, triggered);
    let reconcile = move |obj: Arc<DeserializeGuard<Component>>, ctx: Arc<Context>| {
        let catalog = catalog.clone();
        async move { reconcile(obj, ctx, catalog).await }
    };
    controller::run_with_background(shared, NAME, controller, reconcile, background).await;
}

async fn reconcile(
    obj: Arc<DeserializeGuard<Component>>,
    ctx: Arc<Context>,
    catalog: CatalogHandle,
) -> Result<Action, Error> {
    let component = ctx.accept(&obj).await?;
    // Not yet current: the catalog triggers this Component again once it is.
    let (view, current_lists, scorecards, namespace_labels) = {
        let state = catalog.lock();
        let Some((view, current_lists)) = state.view_for(component) else {
            return Ok(Action::await_change());
        };
        let namespace = component.namespace().unwrap_or_default();
        let labels = state
            .namespace_labels
            .get(&namespace)
            .cloned()
            .unwrap_or_default();
        (
            view,
            current_lists,
            state.ordered_scorecards.clone(),
            labels,
        )
    };
    let outcomes = scoring::evaluate(
        &scoring::entity(component, Some(&view)),
        &scorecards,
        &namespace_labels,
    );
    if catalog
        .lock()
        .record_outcomes(key_of(component), outcomes.clone())
    {
        catalog.summaries.notify_one();
    }
    let current = component.status.clone().unwrap_or_default();
    let now = Timestamp::now();
    let scores = scoring::scores(&outcomes, &current.scores, now);
    let generation = component.meta().generation;
    if let Some(status) = desired_status(&current, current_lists, generation, &view, scores, now) {
        let api = Api::<Component>::namespaced(
            ctx.client.clone(),
            &component.namespace().unwrap_or_default(),
        );
        ctx.apply_status(&api, component, status).await?;
    }
    Ok(Action::await_change())
}

/// The status the catalog wants for a Component (only the fields `pave-catalog` owns),
/// or `None` when `current` (whose lists' digest is `current_lists`) already says it.
fn desired_status(
    current: &ComponentStatus,
    current_lists: u64,
    generation: Option<i64>,
    view: &EntityView,
    scores: Vec<Score>,
    now: Timestamp,
) -> Option<ComponentStatus> {
    let ready = ready_condition(view, generation, now);
    let wanted = ComponentStatus {
        observed_generation: generation,
        conditions: ready_conditions(
            current.observed_generation,
            &current.conditions,
            generation,
            ready,
        ),
        relations: relations(view),
        unresolved_refs: unresolved_refs(&view.unresolved),
        unchecked_refs: unresolved_refs(&view.unchecked),
        impact: Some(i64::from(view.impact)),
        scores,
    };
    differs(&wanted, current, current_lists).then_some(wanted)
}

#[cfg(test)]
mod tests {
    use super::super::trim::CatalogStatus;
    use super::*;
    use pave_api::conditions::{self, READY};
    use pave_catalog::{Catalog, Kind, Refs};

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
    }

    /// The status first written for a Component of generation 1 seen as `view`.
    fn first_status(view: &EntityView) -> ComponentStatus {
        let none = ComponentStatus::default();
        desired_status(&none, none.lists_digest(), Some(1), view, vec![], at(10))
            .expect("a Component without a status is written")
    }

    /// `status` as the store keeps it.
    fn trimmed(status: &ComponentStatus) -> ComponentStatus {
        let mut status = status.clone();
        status.clear_lists();
        status
    }

    /// A catalog whose namespace `ns` has its org: the Group `team`.
    fn with_org() -> Catalog {
        let mut catalog = Catalog::new();
        catalog.upsert(EntityRef::new(Kind::Group, "ns", "team"), &Refs::default());
        catalog
    }

    #[test]
    fn an_owner_nobody_can_check_yet_is_said_so_and_does_not_fail_ready() {
        let mut catalog = Catalog::new();
        catalog.upsert_component(
            "ns",
            "a",
            &Refs {
                owner: "team".into(),
                ..Default::default()
            },
        );
        let view = catalog.view("ns", "a").unwrap();
        let status = first_status(&view);
        let ready = conditions::find(&status.conditions, READY).unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("True", "Resolved")
        );
        assert_eq!(
            ready.message,
            "all 0 references resolve; spec.owner group:ns/team: not checked: namespace ns has no Group yet (owners and members are checked once its org, Groups and Users, is imported)"
        );
        assert_eq!(status.unchecked_refs, ["group:ns/team"]);
        assert!(status.unresolved_refs.is_empty());
    }

    #[test]
    fn status_names_missing_references_and_is_not_rewritten() {
        let mut catalog = with_org();
        catalog.upsert_component(
            "ns",
            "a",
            &Refs {
                owner: "team".into(),
                depends_on: vec!["b".into()],
                ..Default::default()
            },
        );
        let view = catalog.view("ns", "a").unwrap();
        let status = first_status(&view);
        let ready = conditions::find(&status.conditions, READY).unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "UnresolvedReference")
        );
        assert_eq!(
            ready.message,
            "unresolved references: spec.dependsOn component:ns/b: no Component b in namespace ns"
        );
        assert_eq!(status.unresolved_refs, ["component:ns/b"]);
        assert_eq!(
            desired_status(
                &trimmed(&status),
                status.lists_digest(),
                Some(1),
                &view,
                vec![],
                at(20)
            ),
            None,
            "the same answer later is no write"
        );
    }

    #[test]
    fn a_cycle_is_named_with_its_path() {
        let mut catalog = with_org();
        for (name, on) in [("a", "b"), ("b", "a")] {
            catalog.upsert_component(
                "ns",
                name,
                &Refs {
                    owner: "team".into(),
                    depends_on: vec![on.into()],
                    ..Default::default()
                },
            );
        }
        let ready = ready_condition(&catalog.view("ns", "a").unwrap(), Some(1), at(0));
        assert_eq!(ready.reason, "DependencyCycle");
        assert_eq!(ready.message, "dependency cycle: ns/a → ns/b → ns/a");
    }
}
