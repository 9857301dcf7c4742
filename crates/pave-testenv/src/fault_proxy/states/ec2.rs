//! The EC2 half of the slow states: instance records of DescribeInstances and
//! RunInstances answers, and the instance-state filters widened towards moto.

use std::time::Instant;

use super::{
    Reported, Slow, Transition, form,
    xml::{Edits, Element},
};

/// EC2 instance state codes (the low byte AWS documents).
const INSTANCE_CODES: [(&str, &str); 6] = [
    ("pending", "0"),
    ("running", "16"),
    ("shutting-down", "32"),
    ("terminated", "48"),
    ("stopping", "64"),
    ("stopped", "80"),
];

pub(super) fn instance_code(state: &str) -> &'static str {
    INSTANCE_CODES
        .iter()
        .find(|(name, _)| *name == state)
        .map_or("0", |(_, code)| code)
}

#[derive(Debug, Default)]
pub(super) struct StateFilters {
    names: Option<Vec<String>>,
    codes: Option<Vec<String>>,
}

impl StateFilters {
    pub(super) fn of(params: &[(String, String)]) -> StateFilters {
        let mut filters = StateFilters::default();
        for filter in form::filters(params, false) {
            match filter.name.as_str() {
                "instance-state-name" => filters.names = Some(filter.values),
                "instance-state-code" => filters.codes = Some(filter.values),
                _ => {}
            }
        }
        filters
    }

    fn admits(&self, state: &str) -> bool {
        self.names
            .as_ref()
            .is_none_or(|names| names.iter().any(|n| n == state))
            && self
                .codes
                .as_ref()
                .is_none_or(|codes| codes.iter().any(|c| c == instance_code(state)))
    }
}

/// The instances of a DescribeInstances or RunInstances answer.
pub(super) fn instances(root: &Element) -> impl Iterator<Item = &Element> {
    let reservations: Vec<&Element> = match root.child("reservationSet") {
        Some(set) => set.children_named("item").collect(),
        None => vec![root],
    };
    reservations
        .into_iter()
        .filter_map(|r| r.child("instancesSet"))
        .flat_map(|set| set.children_named("item"))
}

/// The `Name` tag RunInstances gives its instances (`TagSpecification.N` with
/// `ResourceType=instance`).
pub(super) fn run_instances_name(params: &[(String, String)]) -> Option<String> {
    (1..)
        .map_while(|n| {
            let spec = format!("TagSpecification.{n}");
            let kind = form::get(params, &format!("{spec}.ResourceType"))?;
            Some((spec, kind))
        })
        .filter(|(_, kind)| *kind == "instance")
        .find_map(|(spec, _)| {
            (1..)
                .map_while(|m| {
                    let key = form::get(params, &format!("{spec}.Tag.{m}.Key"))?;
                    Some((m, key))
                })
                .find(|(_, key)| *key == "Name")
                .and_then(|(m, _)| form::get(params, &format!("{spec}.Tag.{m}.Value")))
                .map(str::to_owned)
        })
}

impl Slow {
    /// For a describe that filters on instance state: the filter values to add so
    /// that moto also returns instances whose real state differs from the one the
    /// proxy reports (a `shutting-down` instance is `terminated` in moto, and a
    /// filter for `shutting-down` would not find it there).
    pub(super) fn widen_state_filters(
        &self,
        view: Instant,
        params: &[(String, String)],
    ) -> Vec<String> {
        let reported: Vec<(&str, &str)> = self
            .windows
            .iter()
            .filter(|w| w.open_at(view) && !w.transition.is_db())
            .map(|w| match w.transition {
                Transition::InstancePending => ("pending", "running"),
                _ => ("shutting-down", "terminated"),
            })
            .collect();
        let mut extra = Vec::new();
        for filter in form::filters(params, false) {
            let as_value = |state: &'static str| match filter.name.as_str() {
                "instance-state-name" => Some(state),
                "instance-state-code" => Some(instance_code(state)),
                _ => None,
            };
            let mut next = filter.next_value;
            let mut added: Vec<&str> = Vec::new();
            for (shown, real) in &reported {
                let (Some(shown), Some(real)) = (as_value(shown), as_value(real)) else {
                    continue;
                };
                let has = |v: &str| filter.values.iter().any(|f| f == v) || added.contains(&v);
                if has(shown) && !has(real) {
                    added.push(real);
                    extra.push(form::encode_pair(
                        &format!("Filter.{}.Value.{next}", filter.index),
                        real,
                    ));
                    next += 1;
                }
            }
        }
        extra
    }

    /// Instances of a DescribeInstances or RunInstances answer, as the open windows
    /// say; with `filters` (the caller's instance-state filters), instances whose
    /// reported state they do not admit are left out, and reservations left empty
    /// with them.
    pub(super) fn rewrite_instances(
        &self,
        view: Instant,
        doc: &str,
        root: &Element,
        filters: Option<&StateFilters>,
        edits: &mut Edits,
        reported: &mut Vec<Reported>,
    ) {
        let reservations: Vec<&Element> = match root.child("reservationSet") {
            Some(set) => set.children_named("item").collect(),
            None => vec![root], // RunInstances answers with one reservation.
        };
        for reservation in reservations {
            let mut kept = Vec::new();
            let mut dropped = Vec::new();
            for instance in reservation
                .child("instancesSet")
                .into_iter()
                .flat_map(|set| set.children_named("item"))
            {
                let id = instance.child_text(doc, "instanceId").unwrap_or_default();
                let real = instance
                    .at(&["instanceState", "name"])
                    .map(|n| n.text(doc))
                    .unwrap_or_default();
                let shown = self.window(view, &id, false).map(|w| w.transition.state());
                let state = shown.unwrap_or(&real);
                if filters.is_none_or(|f| f.admits(state)) {
                    kept.push((instance, id, shown));
                } else {
                    dropped.push(instance);
                }
            }
            if kept.is_empty() && !dropped.is_empty() && reservation.span != root.span {
                edits.remove(reservation);
                continue;
            }
            for instance in dropped {
                edits.remove(instance);
            }
            for (instance, id, shown) in kept {
                let Some(state) = shown else { continue };
                let Some(element) = instance.child("instanceState") else {
                    continue;
                };
                if let Some(code) = element.child("code") {
                    edits.set_text(code, instance_code(state));
                }
                if let Some(name) = element.child("name") {
                    edits.set_text(name, state);
                }
                reported.push(Reported {
                    resource: id,
                    state: state.to_owned(),
                });
            }
        }
    }
}
