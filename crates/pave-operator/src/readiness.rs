//! Whether the operator is ready, and if not, why: which controllers have not listed
//! their objects yet, and which problems outside the process stop it (CRDs not
//! installed, RBAC missing, no AWS credentials).
//!
//! A problem is something a person fixes outside the pod, so the operator does not
//! exit on one: a crash loop hides the message behind restarts and backoff. It waits,
//! says what is wrong and how to fix it once in the log and in `/readyz`, retries, and
//! carries on by itself once it is fixed.
//!
//! Once means once per problem, not per wording: a retry's message often differs in
//! detail (a timeout one time, a refused connection the next), and a line per change
//! would be the crash loop's noise again. `/readyz` always has the latest wording, and
//! a change is logged at debug level.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tracing::{debug, info, warn};

use crate::controller::ShutdownSignal;

/// The first wait between attempts at something that failed, and the longest.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_CAP: Duration = Duration::from_secs(10);

/// How a report was logged: what a person reading the log sees of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Logged {
    /// The problem opened: a warning.
    Warning,
    /// Still open, in new words: a debug line.
    Debug,
    /// Still open, in the same words: nothing.
    Not,
}

pub struct Readiness {
    controllers: Vec<(&'static str, AtomicBool)>,
    /// A standby (waiting for the leader lease) runs no controllers, and is ready
    /// without their first sync: readiness does not depend on holding the lease.
    standby: AtomicBool,
    /// Open problems by what they are about (e.g. `crds`, `watch components`).
    problems: Mutex<BTreeMap<String, String>>,
}

impl Readiness {
    pub fn new(controllers: &[&'static str]) -> Self {
        let controllers = controllers
            .iter()
            .map(|&name| (name, AtomicBool::new(false)))
            .collect();
        Readiness {
            controllers,
            standby: AtomicBool::new(false),
            problems: Mutex::default(),
        }
    }

    pub fn mark_synced(&self, controller: &str) {
        for (name, synced) in &self.controllers {
            if *name == controller {
                synced.store(true, Ordering::Release);
            }
        }
    }

    /// Whether this replica stands by for the leader lease (see `leader`).
    pub fn set_standby(&self, standby: bool) {
        self.standby.store(standby, Ordering::Release);
    }

    /// The controllers that have not synced yet; empty once the operator is ready,
    /// and while it stands by.
    pub fn waiting_for(&self) -> Vec<&'static str> {
        if self.standby.load(Ordering::Acquire) {
            return Vec::new();
        }
        self.controllers
            .iter()
            .filter(|(_, synced)| !synced.load(Ordering::Acquire))
            .map(|(name, _)| *name)
            .collect()
    }

    /// Records that `about` is broken, as `message` (what is wrong and how to fix it).
    /// Logged as a warning when it opens, however often it is reported until resolved;
    /// returns how it was logged.
    pub fn report(&self, about: &str, message: String) -> Logged {
        let mut problems = self.problems.lock().expect("not poisoned");
        let logged = match problems.get(about) {
            None => Logged::Warning,
            Some(previous) if *previous == message => return Logged::Not,
            Some(_) => Logged::Debug,
        };
        match logged {
            Logged::Warning => warn!(problem = about, "{message}"),
            _ => debug!(problem = about, "{message}"),
        }
        problems.insert(about.to_owned(), message);
        logged
    }

    /// Records that `about` works (again); logged (and `true`) if it was reported
    /// before.
    pub fn resolve(&self, about: &str) -> bool {
        let mut problems = self.problems.lock().expect("not poisoned");
        let was_open = problems.remove(about).is_some();
        if was_open {
            info!(problem = about, "resolved");
        }
        was_open
    }

    /// The open problems' messages, in a stable order.
    pub fn problems(&self) -> Vec<String> {
        let problems = self.problems.lock().expect("not poisoned");
        problems.values().cloned().collect()
    }

    /// `None` when ready; otherwise the reasons, one per line.
    pub fn not_ready(&self) -> Option<String> {
        let mut lines = self.problems();
        let waiting = self.waiting_for();
        if !waiting.is_empty() {
            lines.push(format!(
                "waiting for the first sync of: {}",
                waiting.join(", ")
            ));
        }
        (!lines.is_empty()).then(|| lines.join("\n") + "\n")
    }

    /// Runs `attempt` until it succeeds, reporting each failure as a problem with
    /// `about` and waiting a little longer after each (up to 10 s). `None` if the stop
    /// signal came first.
    pub async fn until_ok<T, F, Fut>(
        &self,
        about: &str,
        shutdown: &ShutdownSignal,
        mut attempt: F,
    ) -> Option<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, String>>,
    {
        let mut delay = RETRY_FIRST;
        loop {
            let failed = tokio::select! {
                result = attempt() => match result {
                    Ok(value) => {
                        self.resolve(about);
                        return Some(value);
                    }
                    Err(message) => message,
                },
                () = shutdown.clone() => return None,
            };
            self.report(about, failed);
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = shutdown.clone() => return None,
            }
            delay = (delay * 2).min(RETRY_CAP);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    #[test]
    fn problems_come_before_waiting_controllers_and_go_when_resolved() {
        let readiness = Readiness::new(&["pave-catalog"]);
        readiness.report("crds", "CRDs are not installed".into());
        readiness.report("crds", "CRDs are not installed".into());
        readiness.report("aws", "no AWS credentials".into());
        assert_eq!(
            readiness.not_ready().unwrap(),
            "no AWS credentials\nCRDs are not installed\n\
             waiting for the first sync of: pave-catalog\n"
        );
        readiness.resolve("crds");
        readiness.resolve("aws");
        readiness.mark_synced("pave-catalog");
        assert_eq!(readiness.not_ready(), None);
    }

    #[test]
    fn a_standby_is_ready_without_a_sync_but_not_with_a_problem() {
        let readiness = Readiness::new(&["pave-catalog"]);
        readiness.set_standby(true);
        assert_eq!(readiness.not_ready(), None);
        readiness.report("leader lease", "cannot read the Lease".into());
        assert_eq!(readiness.not_ready().unwrap(), "cannot read the Lease\n");
        readiness.resolve("leader lease");
        // Leading: ready once the controllers have listed their objects.
        readiness.set_standby(false);
        assert_eq!(
            readiness.not_ready().unwrap(),
            "waiting for the first sync of: pave-catalog\n"
        );
        readiness.mark_synced("pave-catalog");
        assert_eq!(readiness.not_ready(), None);
    }

    /// What a person reads in the log: a warning when a problem opens, however its
    /// wording changes between retries (those are debug lines), and a line when it is
    /// resolved. Checked on what `report` and `resolve` say they logged, not on a
    /// captured log: tracing's per-callsite interest cache is global, and a test
    /// capturing it races every other test that logs.
    #[test]
    fn a_problem_is_logged_once_while_open_whatever_its_wording() {
        let readiness = Readiness::new(&[]);
        let timed_out = || "no AWS credentials: IMDS timed out".to_string();
        let refused = || "no AWS credentials: IMDS refused".to_string();
        assert_eq!(readiness.report("aws", timed_out()), Logged::Warning);
        assert_eq!(readiness.report("aws", refused()), Logged::Debug);
        assert_eq!(readiness.report("aws", refused()), Logged::Not);
        assert!(readiness.resolve("aws"));
        assert!(!readiness.resolve("aws"), "resolved once");
        assert_eq!(readiness.report("aws", refused()), Logged::Warning);
        assert_eq!(readiness.problems(), [refused()]);
    }

    #[tokio::test(start_paused = true)]
    async fn until_ok_retries_reporting_the_latest_failure_then_resolves() {
        let readiness = Readiness::new(&[]);
        let never: ShutdownSignal = futures::future::pending::<()>().boxed().shared();
        let mut attempts = 0;
        let value = readiness
            .until_ok("thing", &never, || {
                attempts += 1;
                let result = match attempts {
                    1 | 2 => Err(format!("broken ({attempts})")),
                    _ => Ok(attempts),
                };
                async move { result }
            })
            .await;
        assert_eq!(value, Some(3));
        assert_eq!(readiness.not_ready(), None);

        let (stop, stopped) = futures::channel::oneshot::channel::<()>();
        let shutdown: ShutdownSignal = async move {
            let _ = stopped.await;
        }
        .boxed()
        .shared();
        let waiting = readiness.until_ok("thing", &shutdown, || async {
            Err::<(), _>("still broken".to_owned())
        });
        let stopper = async move {
            tokio::time::sleep(Duration::from_secs(30)).await;
            stop.send(()).unwrap();
        };
        let (result, ()) = futures::join!(waiting, stopper);
        assert_eq!(result, None);
        assert_eq!(readiness.problems(), ["still broken"]);
    }
}
