//! The depth of a controller's work queue, for `pave_operator_queue_depth`.
//!
//! kube-runtime's scheduler does not expose its queue, so it is mirrored from
//! outside: an object enters when a trigger names it (a watch event of the main
//! stream, a `reconcile_on` stream) or when a retry pave scheduled falls due, and
//! leaves when its reconcile starts or the controller finds it gone. Both dedupe by
//! object, as the scheduler does, so an object triggered ten times while it waits is
//! one entry. Depth counts the entries that are due: work the controller would do now
//! but has not started, because its concurrency limit is reached or the object's
//! previous reconcile still runs. The periodic requeue after a successful reconcile
//! is not mirrored: it falls due and starts at once, unless the queue is backed up
//! anyway.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use kube::Resource;
use kube::runtime::reflector::ObjectRef;

/// An object by namespace and name: one controller reconciles one kind.
pub type ObjectKey = (Option<String>, String);

/// The objects waiting for one controller, by when each is due.
#[derive(Debug, Default)]
pub struct QueueDepth {
    due: Mutex<HashMap<ObjectKey, Instant>>,
}

impl QueueDepth {
    /// `objects` (the controller's main input), each one entering the queue as it
    /// passes.
    pub fn track<K, E>(
        self: &Arc<Self>,
        objects: impl Stream<Item = Result<K, E>> + Send + 'static,
    ) -> impl Stream<Item = Result<K, E>> + Send + 'static
    where
        K: Resource + Send + 'static,
        E: Send + 'static,
    {
        let queue = Arc::clone(self);
        objects.inspect(move |object| {
            if let Ok(object) = object {
                let meta = object.meta();
                let key = (
                    meta.namespace.clone(),
                    meta.name.clone().unwrap_or_default(),
                );
                queue.enqueue(key, Instant::now());
            }
        })
    }

    /// `refs` (a `reconcile_on` trigger), each one entering the queue as it passes.
    pub fn track_refs<K>(
        self: &Arc<Self>,
        refs: impl Stream<Item = ObjectRef<K>> + Send + 'static,
    ) -> impl Stream<Item = ObjectRef<K>> + Send + 'static
    where
        K: kube::runtime::reflector::Lookup + ?Sized + 'static,
        K::DynamicType: Send,
    {
        let queue = Arc::clone(self);
        refs.inspect(move |r| queue.enqueue((r.namespace.clone(), r.name.clone()), Instant::now()))
    }

    /// The object's retry falls due in `delay`.
    pub fn retry_in(&self, key: ObjectKey, delay: Duration) {
        self.enqueue(key, Instant::now() + delay);
    }

    /// The object's reconcile started, or the object is gone.
    pub fn left(&self, key: &ObjectKey) {
        self.due.lock().expect("not poisoned").remove(key);
    }

    /// Objects due and not started.
    pub fn depth(&self) -> usize {
        let now = Instant::now();
        let due = self.due.lock().expect("not poisoned");
        due.values().filter(|at| **at <= now).count()
    }

    fn enqueue(&self, key: ObjectKey, at: Instant) {
        let mut due = self.due.lock().expect("not poisoned");
        due.entry(key)
            .and_modify(|when| *when = (*when).min(at))
            .or_insert(at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> ObjectKey {
        (Some("team".to_owned()), name.to_owned())
    }

    #[test]
    fn counts_each_waiting_object_once_and_retries_only_when_due() {
        let queue = QueueDepth::default();
        queue.enqueue(key("a"), Instant::now());
        queue.enqueue(key("a"), Instant::now());
        queue.enqueue(key("b"), Instant::now());
        queue.retry_in(key("c"), Duration::from_secs(60));
        assert_eq!(queue.depth(), 2);
        queue.left(&key("a"));
        assert_eq!(queue.depth(), 1);
        // A trigger of an object whose retry waits makes it due now.
        queue.enqueue(key("c"), Instant::now());
        assert_eq!(queue.depth(), 2);
        queue.left(&key("b"));
        queue.left(&key("c"));
        assert_eq!(queue.depth(), 0);
        assert!(queue.due.lock().unwrap().is_empty());
    }
}
