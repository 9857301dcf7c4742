//! The one error type of every reconcile, and how each variant is retried.

use std::time::Duration;

/// Why a reconcile did not finish. Each message names the object and what failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object exists but does not match pave's types, e.g. it was stored under an
    /// older schema. Nothing can be done with it until someone changes it.
    #[error("{object} does not match pave's schema ({reason}); fix or re-apply it")]
    InvalidObject { object: String, reason: String },

    /// The API server refused or did not answer the status write.
    #[error("cannot write the status of {object}: {source}")]
    WriteStatus {
        object: String,
        #[source]
        source: kube::Error,
    },

    /// Another request to the API server failed.
    #[error("cannot {action}: {source}")]
    Kube {
        action: &'static str,
        #[source]
        source: kube::Error,
    },

    /// Adding or removing the finalizer failed.
    #[error("finalizer: {0}")]
    Finalizer(String),

    /// A transient cloud failure (throttling, 5xx, timeouts), retried with backoff.
    #[error(transparent)]
    Cloud(pave_cloud::CloudError),

    /// Work under way in the cloud (a deletion in progress): looked at again soon.
    #[error("{0}")]
    Pending(String),

    /// A deletion step failed; the object stays until it succeeds or is released on
    /// purpose. Retried with the doubling backoff, Terminal causes included: they are
    /// fixed outside the object (a permission granted, protection switched off).
    #[error("deletion blocked: {0}")]
    DeletionBlocked(String),
}

impl Error {
    /// A short label that stays the same across releases, for the failures metric.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::InvalidObject { .. } => "invalid_object",
            Error::WriteStatus { .. } => "write_status",
            Error::Kube { .. } => "kube_api",
            Error::Finalizer(_) => "finalizer",
            Error::Cloud(_) => "cloud",
            Error::Pending(_) => "pending",
            Error::DeletionBlocked(_) => "deletion_blocked",
        }
    }

    /// Permanent errors wait for the object to change; retrying would fail the same way.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Error::InvalidObject { .. })
    }
}

/// Delay before retry number `attempt` (0-based) of a transient failure: doubling from
/// one second, capped at five minutes so a long outage still gets retried regularly.
pub fn backoff(attempt: u32) -> Duration {
    const CAP: Duration = Duration::from_secs(300);
    Duration::from_secs(1)
        .checked_mul(2u32.saturating_pow(attempt))
        .map_or(CAP, |d| d.min(CAP))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_then_caps() {
        let delays: Vec<u64> = (0..12).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        assert_eq!(backoff(u32::MAX), Duration::from_secs(300));
    }

    #[test]
    fn labels_are_stable() {
        let invalid = Error::InvalidObject {
            object: "Component team-a/web".into(),
            reason: "invalid type".into(),
        };
        assert_eq!(invalid.metric_label(), "invalid_object");
        assert!(invalid.is_permanent());
        assert!(invalid.to_string().contains("Component team-a/web"));
    }
}
