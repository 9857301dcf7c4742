//! What each API call came to, seen from inside the SDK: an interceptor on both
//! clients counts every operation and every attempt, and tells an observer (the
//! operator's metrics) how each call ended.
//!
//! The SDK retries throttling and transient errors itself (`MAX_ATTEMPTS`), so the
//! operator never sees a call that succeeded on its second attempt; only here is that
//! visible. The outcome is read from the last attempt's HTTP response: EC2 and RDS
//! both answer errors as XML with a `<Code>`, and the codes that mean throttling are
//! the ones [`super::error`] lists first.

use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use aws_sdk_ec2::config::interceptors::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
    FinalizerInterceptorContextRef,
};
use aws_sdk_ec2::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_ec2::error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_types::config_bag::{Storable, StoreReplace};

use super::error::{THROTTLING_CODES, is_not_found};

/// How one API call ended, its SDK retries included.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallOutcome {
    /// Answered on the first attempt.
    Ok,
    /// Answered after the SDK retried it (throttled, or a transient error).
    Retried,
    /// Answered that the resource does not exist: to a look-up or a delete that is an
    /// answer (absent, already gone), not a failure, though the SDK reports it as an
    /// error.
    NotFound,
    /// Failed, the last answer a throttling error: AWS asks the caller to slow down.
    Throttled,
    /// Failed otherwise: an error answer, a timeout, or no connection.
    Failed,
}

impl CallOutcome {
    /// The label value, as metrics spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            CallOutcome::Ok => "ok",
            CallOutcome::Retried => "retried",
            CallOutcome::NotFound => "not_found",
            CallOutcome::Throttled => "throttled",
            CallOutcome::Failed => "failed",
        }
    }
}

/// Told of every finished call. `service` is `ec2` or `rds`, `operation` the API's
/// name (`DescribeVpcs`), `attempts` how many HTTP requests the call took.
pub trait CallObserver: Debug + Send + Sync {
    fn finished(&self, service: &str, operation: &str, attempts: u32, outcome: CallOutcome);
}

/// The interceptor on both clients: counts operations, and reports each one's outcome
/// to the observer once one is set.
#[derive(Clone, Debug, Default)]
pub(super) struct CallCounter(Arc<Counts>);

#[derive(Debug, Default)]
struct Counts {
    operations: AtomicU64,
    observer: OnceLock<Arc<dyn CallObserver>>,
}

impl CallCounter {
    pub(super) fn operations(&self) -> u64 {
        self.0.operations.load(Ordering::Relaxed)
    }

    /// Sets the observer; returns false if one was set already (it stays).
    pub(super) fn observe(&self, observer: Arc<dyn CallObserver>) -> bool {
        self.0.observer.set(observer).is_ok()
    }
}

/// The attempts of the call in progress, kept in its own config bag.
#[derive(Clone, Copy, Debug, Default)]
struct Attempts {
    count: u32,
    /// What the latest attempt's error answer said, if it was one of these.
    error: Option<ErrorAnswer>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ErrorAnswer {
    Throttled,
    NotFound,
}

impl Storable for Attempts {
    type Storer = StoreReplace<Self>;
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "pave-api-calls"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.operations.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let mut attempts = cfg.load::<Attempts>().copied().unwrap_or_default();
        attempts.count += 1;
        cfg.interceptor_state().store_put(attempts);
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let mut attempts = cfg.load::<Attempts>().copied().unwrap_or_default();
        attempts.error = context
            .response()
            .filter(|response| response.status().as_u16() >= 400)
            .and_then(|response| response.body().bytes())
            .and_then(error_code)
            .and_then(|code| {
                if THROTTLING_CODES.contains(&code) {
                    Some(ErrorAnswer::Throttled)
                } else if is_not_found(code) {
                    Some(ErrorAnswer::NotFound)
                } else {
                    None
                }
            });
        cfg.interceptor_state().store_put(attempts);
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(observer) = self.0.observer.get() else {
            return Ok(());
        };
        let attempts = cfg.load::<Attempts>().copied().unwrap_or_default();
        let succeeded = matches!(context.output_or_error(), Some(Ok(_)));
        let outcome = match (succeeded, attempts.count > 1, attempts.error) {
            (true, false, _) => CallOutcome::Ok,
            (true, true, _) => CallOutcome::Retried,
            (false, _, Some(ErrorAnswer::NotFound)) => CallOutcome::NotFound,
            (false, _, Some(ErrorAnswer::Throttled)) => CallOutcome::Throttled,
            (false, _, None) => CallOutcome::Failed,
        };
        let (service, operation) = cfg
            .load::<Metadata>()
            .map_or(("unknown".to_owned(), "unknown"), |m| {
                (m.service().to_ascii_lowercase(), m.name())
            });
        observer.finished(&service, operation, attempts.count, outcome);
        Ok(())
    }
}

/// The first `<Code>` of an EC2 (`<Response><Errors><Error><Code>`) or RDS
/// (`<ErrorResponse><Error><Code>`) error answer.
fn error_code(body: &[u8]) -> Option<&str> {
    let body = std::str::from_utf8(body).ok()?;
    let start = body.find("<Code>")? + "<Code>".len();
    let len = body[start..].find("</Code>")?;
    Some(&body[start..start + len])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_code_of_both_services_error_answers() {
        let ec2 = b"<Response><Errors><Error><Code>RequestLimitExceeded</Code>\
                    <Message>Request limit exceeded.</Message></Error></Errors></Response>";
        let rds = b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>\
                    <Message>Rate exceeded</Message></Error></ErrorResponse>";
        assert_eq!(error_code(ec2), Some("RequestLimitExceeded"));
        assert_eq!(error_code(rds), Some("Throttling"));
        assert_eq!(error_code(b"<DescribeVpcsResponse/>"), None);
        assert_eq!(error_code(b"\xff<Code>"), None);
    }
}
