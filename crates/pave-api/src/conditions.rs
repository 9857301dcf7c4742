//! Conditions in the Kubernetes convention (`metav1.Condition`), shared by all kinds.
//!
//! [`set`] keeps `lastTransitionTime` when only the message or generation changes,
//! so a controller that recomputes the same condition every pass writes nothing new.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

/// `True` once the object is what its spec asks for.
pub const READY: &str = "Ready";
/// The last reconcile reached the cloud without error (DeveloperEnvironment).
pub const SYNCED: &str = "Synced";
/// The spec cannot work as written; nothing is retried until the generation changes.
pub const TERMINAL: &str = "Terminal";
/// A transient failure; retried with backoff.
pub const RECOVERABLE: &str = "Recoverable";
/// Argo CD reports the environment's application as synced.
pub const GITOPS_SYNCED: &str = "GitOpsSynced";
/// Argo CD reports the environment's application as healthy.
pub const GITOPS_HEALTHY: &str = "GitOpsHealthy";

/// The status of a condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    True,
    False,
    Unknown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::True => "True",
            Status::False => "False",
            Status::Unknown => "Unknown",
        }
    }
}

/// Builds a condition observed at `generation`, stamped `now`.
pub fn new(
    type_: &str,
    status: Status,
    reason: &str,
    message: impl Into<String>,
    generation: Option<i64>,
    now: Timestamp,
) -> Condition {
    Condition {
        type_: type_.to_owned(),
        status: status.as_str().to_owned(),
        reason: reason.to_owned(),
        message: message.into(),
        observed_generation: generation,
        last_transition_time: Time(now),
    }
}

/// Inserts or replaces the condition of `new.type_`, keeping the earlier
/// `lastTransitionTime` when the status did not change. Keeps the list sorted by type
/// so the same set of conditions always serialises the same way.
pub fn set(conditions: &mut Vec<Condition>, mut new: Condition) {
    match conditions.iter_mut().find(|c| c.type_ == new.type_) {
        Some(old) => {
            if old.status == new.status {
                new.last_transition_time = old.last_transition_time.clone();
            }
            *old = new;
        }
        None => conditions.push(new),
    }
    conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
}

/// The condition of the given type, if present.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Removes the condition of the given type, if present.
pub fn remove(conditions: &mut Vec<Condition>, type_: &str) {
    conditions.retain(|c| c.type_ != type_);
}

/// The schema of a `conditions` field: `metav1.Condition` items in a list-map keyed
/// by `type`, so server-side apply merges them per type as built-in kinds do.
pub fn schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let item = generator.subschema_for::<Condition>();
    schemars::json_schema!({
        "description": "The latest observations of the object's state, one per type.",
        "type": "array",
        "items": item,
        "maxItems": 32,
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
    }

    #[test]
    fn same_status_keeps_transition_time() {
        let mut list = vec![];
        set(
            &mut list,
            new(READY, Status::False, "Waiting", "a", Some(1), at(10)),
        );
        set(
            &mut list,
            new(READY, Status::False, "Waiting", "b", Some(2), at(20)),
        );
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].last_transition_time, Time(at(10)));
        assert_eq!(list[0].message, "b");
        assert_eq!(list[0].observed_generation, Some(2));
    }

    #[test]
    fn new_status_moves_transition_time() {
        let mut list = vec![];
        set(
            &mut list,
            new(READY, Status::False, "Waiting", "", Some(1), at(10)),
        );
        set(
            &mut list,
            new(READY, Status::True, "Ready", "", Some(1), at(20)),
        );
        assert_eq!(list[0].last_transition_time, Time(at(20)));
        assert_eq!(find(&list, READY).unwrap().status, "True");
    }

    #[test]
    fn list_stays_sorted_by_type() {
        let mut list = vec![];
        set(&mut list, new(SYNCED, Status::True, "Ok", "", None, at(1)));
        set(&mut list, new(READY, Status::True, "Ok", "", None, at(1)));
        let types: Vec<_> = list.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, [READY, SYNCED]);
        remove(&mut list, READY);
        assert!(find(&list, READY).is_none());
    }
}
