//! What every catalog kind's status says about its references: the relations, the
//! references that land on nothing or are not checked yet, and `Ready`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use pave_api::component::Relation;
use pave_api::conditions::{self, READY, Status};
use pave_api::entity::EntityStatus;
use pave_catalog::{EntityRef, EntityView, Unresolved};

use crate::controller::status_patch;

/// The view's relations as status lists them.
pub fn relations(view: &EntityView) -> Vec<Relation> {
    view.relations
        .iter()
        .map(|r| Relation {
            type_: r.relation.as_str().to_owned(),
            target: r.target.to_string(),
            resolved: r.resolved,
        })
        .collect()
}

/// Full references, `kind:namespace/name`.
pub fn references(entities: &[EntityRef]) -> Vec<String> {
    entities.iter().map(ToString::to_string).collect()
}

fn listed(problems: &[Unresolved]) -> Vec<String> {
    problems.iter().map(|u| u.reference.clone()).collect()
}

fn described(problems: &[Unresolved]) -> String {
    problems
        .iter()
        .map(|u| format!("{} {}: {}", u.field, u.reference, u.reason))
        .collect::<Vec<_>>()
        .join("; ")
}

/// `Ready`: `True` when every reference resolves (or is not checked yet, which the
/// message says) and no dependency cycle runs through the entity; otherwise
/// `False`, naming each missing reference and the cycle.
pub fn ready_condition(view: &EntityView, generation: Option<i64>, now: Timestamp) -> Condition {
    let cycle = view.cycle.as_ref().map(|path| {
        let names: Vec<String> = path
            .iter()
            .map(|e| format!("{}/{}", e.namespace, e.name))
            .collect();
        format!("dependency cycle: {}", names.join(" → "))
    });
    let (status, reason, mut message) = match (view.unresolved.is_empty(), cycle) {
        (true, None) => (
            Status::True,
            "Resolved",
            format!(
                "all {} references resolve",
                view.relations.iter().filter(|r| r.resolved).count()
            ),
        ),
        (true, Some(cycle)) => (Status::False, "DependencyCycle", cycle),
        (false, cycle) => {
            let mut message = format!("unresolved references: {}", described(&view.unresolved));
            if let Some(cycle) = cycle {
                message = format!("{message}; {cycle}");
            }
            (Status::False, "UnresolvedReference", message)
        }
    };
    if !view.unchecked.is_empty() {
        message = format!("{message}; {}", described(&view.unchecked));
    }
    conditions::new(READY, status, reason, message, generation, now)
}

/// The conditions to write: `wanted`, keeping each one's `lastTransitionTime` while
/// its status stays, and nothing else of `current` (other managers own the rest).
pub fn ready_conditions(
    observed_generation: Option<i64>,
    current: &[Condition],
    generation: Option<i64>,
    ready: Condition,
) -> Vec<Condition> {
    match status_patch(observed_generation, current, generation, vec![ready]) {
        Some(patch) => patch.conditions,
        None => current
            .iter()
            .filter(|c| c.type_ == READY)
            .cloned()
            .collect(),
    }
}

/// The common status the catalog wants for an entity.
pub fn entity_status(
    current: &EntityStatus,
    generation: Option<i64>,
    view: &EntityView,
    now: Timestamp,
) -> EntityStatus {
    let ready = ready_condition(view, generation, now);
    EntityStatus {
        observed_generation: generation,
        conditions: ready_conditions(
            current.observed_generation,
            &current.conditions,
            generation,
            ready,
        ),
        relations: relations(view),
        unresolved_refs: listed(&view.unresolved),
        unchecked_refs: listed(&view.unchecked),
    }
}

/// The references in `problems`, as status lists them.
pub fn unresolved_refs(problems: &[Unresolved]) -> Vec<String> {
    listed(problems)
}
