//! The status each object was last written with, so a reconcile that runs on a copy
//! older than that write does not send it again.
//!
//! A controller decides what to write by comparing with the object in its store, and
//! the store learns of pave's own write only when the watch event arrives, some
//! milliseconds later. An object triggered again in that window (a reference resolved,
//! a watch relisted after the API server came back) is reconciled against the copy
//! from before the write, looks changed, and is written a second time: the same
//! status with a newer `lastTransitionTime`. So each write is remembered with the
//! object's resourceVersion before and after it, and a status is skipped when the
//! object in the store is still the one from before the last write and the status
//! is the same as that write's, timestamps aside. A store that moved on (the write's
//! own event, or anyone else's change) is compared as usual, and its entry goes.
//!
//! Most objects are not reconciled again after their write, so nothing would look
//! at their entry again: entries older than [`STALE`] are swept whenever the map has
//! doubled since the last sweep. A store a minute behind is a watch that is down, and
//! a repeated write then costs one write, not a wrong status; an entry per Component
//! ever written would be 20 MB at 100,000.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use crate::queue::ObjectKey;

/// Fields holding the time pave wrote something, which a repeat of the same status
/// sets anew.
const WRITE_TIMES: [&str; 3] = ["lastTransitionTime", "lastChanged", "lastDriftCheck"];

/// How long after a write its entry may be swept.
const STALE: Duration = Duration::from_secs(60);

/// The fewest entries a sweep looks at.
const SWEEP_FROM: usize = 1024;

#[derive(Debug)]
struct Written {
    /// The object's resourceVersion in the store when the write was decided.
    before: String,
    fingerprint: u64,
    at: Instant,
}

#[derive(Debug, Default)]
struct Entries {
    written: HashMap<ObjectKey, Written>,
    /// How many entries to hold before the next sweep.
    sweep_at: usize,
}

/// The last status write of each object whose store copy may not show it yet.
#[derive(Debug, Default)]
pub struct LastWrites(Mutex<Entries>);

impl LastWrites {
    /// Whether writing `status` to the object, whose copy in the store has
    /// `resource_version`, would repeat the last write: that copy is from before it,
    /// and the status is the same. Forgets the write once the store has moved on.
    pub fn repeats(
        &self,
        key: &ObjectKey,
        resource_version: Option<&str>,
        status: &impl Serialize,
    ) -> bool {
        let written = &mut self.0.lock().expect("not poisoned").written;
        let Some(last) = written.get(key) else {
            return false;
        };
        if resource_version != Some(last.before.as_str()) {
            written.remove(key);
            return false;
        }
        last.fingerprint == fingerprint(status)
    }

    /// Remembers a write of `status` decided on the copy with `resource_version`.
    pub fn wrote(&self, key: ObjectKey, resource_version: Option<&str>, status: &impl Serialize) {
        self.wrote_at(key, resource_version, status, Instant::now());
    }

    fn wrote_at(
        &self,
        key: ObjectKey,
        resource_version: Option<&str>,
        status: &impl Serialize,
        now: Instant,
    ) {
        let Some(before) = resource_version else {
            return;
        };
        let entry = Written {
            before: before.to_owned(),
            fingerprint: fingerprint(status),
            at: now,
        };
        let mut entries = self.0.lock().expect("not poisoned");
        entries.written.insert(key, entry);
        if entries.written.len() >= entries.sweep_at.max(SWEEP_FROM) {
            entries
                .written
                .retain(|_, w| now.saturating_duration_since(w.at) < STALE);
            entries.sweep_at = 2 * entries.written.len();
        }
    }

    /// Forgets the object: it is gone.
    pub fn forget(&self, key: &ObjectKey) {
        self.0.lock().expect("not poisoned").written.remove(key);
    }
}

/// A hash of `status` as JSON without its write times.
fn fingerprint(status: &impl Serialize) -> u64 {
    let mut value = serde_json::to_value(status).unwrap_or(Value::Null);
    strip_write_times(&mut value);
    let mut hasher = DefaultHasher::new();
    value.to_string().hash(&mut hasher);
    hasher.finish()
}

fn strip_write_times(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for key in WRITE_TIMES {
                map.remove(key);
            }
            map.values_mut().for_each(strip_write_times);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_write_times),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key() -> ObjectKey {
        (Some("team".into()), "web".into())
    }

    fn ready(at: &str) -> Value {
        json!({"conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": at}]})
    }

    #[test]
    fn the_same_status_on_the_copy_before_the_write_is_a_repeat() {
        let writes = LastWrites::default();
        assert!(!writes.repeats(&key(), Some("10"), &ready("t1")));
        writes.wrote(key(), Some("10"), &ready("t1"));
        // The store still has resourceVersion 10: a newer time alone is a repeat,
        // anything else is news.
        assert!(writes.repeats(&key(), Some("10"), &ready("t2")));
        let failed = json!({"conditions": [{"type": "Ready", "status": "False"}]});
        assert!(!writes.repeats(&key(), Some("10"), &failed));
        // The store moved on (the write's own event): compared as usual from now on.
        assert!(!writes.repeats(&key(), Some("11"), &ready("t2")));
        assert!(!writes.repeats(&key(), Some("10"), &ready("t2")));
        assert!(writes.0.lock().unwrap().written.is_empty());
    }

    #[test]
    fn entries_nothing_looks_at_again_are_swept_after_a_minute() {
        let writes = LastWrites::default();
        let start = Instant::now();
        let object = |i: usize| (Some("team".to_string()), format!("web-{i}"));
        for i in 0..3 * SWEEP_FROM {
            writes.wrote_at(object(i), Some("10"), &ready("t1"), start);
        }
        let later = start + STALE + Duration::from_secs(1);
        for i in 0..SWEEP_FROM {
            writes.wrote_at(object(10_000 + i), Some("10"), &ready("t1"), later);
        }
        let held = writes.0.lock().unwrap().written.len();
        assert!(held <= SWEEP_FROM, "{held} entries held");
        // A recent write is still a repeat on the copy before it.
        assert!(writes.repeats(&object(10_000), Some("10"), &ready("t2")));
    }

    #[test]
    fn a_forgotten_object_leaves_nothing() {
        let writes = LastWrites::default();
        writes.wrote(key(), Some("10"), &ready("t1"));
        writes.forget(&key());
        assert!(!writes.repeats(&key(), Some("10"), &ready("t1")));
        assert!(writes.0.lock().unwrap().written.is_empty());
    }
}
