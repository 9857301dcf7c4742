//! Turns SDK failures into [`CloudError`]s, the way ACK classifies them: Terminal
//! (the request cannot succeed as written; the spec or the operator's setup must
//! change) or Recoverable (retry with backoff).
//!
//! The decision is a pure function of the AWS error code and the HTTP status
//! ([`classify_code`]), so it is tested without a network. Rules, first match wins:
//! 1. codes known to be transient: throttling, capacity, AWS internal errors, expired
//!    credentials (they rotate), and states that pass on their own (DependencyViolation
//!    while instances shut down, InvalidDBInstanceState while RDS works);
//! 2. codes naming something the spec chose (`InvalidAMIID.*`) are Terminal, even the
//!    `.NotFound` ones;
//! 3. any other `NotFound`: Recoverable. Callers handle "not found" as absence where it
//!    means that (find, delete); when it reaches here it is a *reference* that is not
//!    visible yet, which on EC2 is usually eventual consistency right after a create;
//! 4. HTTP 5xx: Recoverable;
//! 5. anything else, in particular every unknown 4xx: Terminal. A 4xx is the service
//!    saying the request is wrong; sending it again unchanged gets the same answer and
//!    burns the account's API rate limit, which other environments share. The SDK has
//!    already retried the codes it knows to be transient. The cost of this choice is
//!    that an unlisted transient 4xx waits for the next spec change (or the operator's
//!    periodic resync) instead of being retried: add it to [`RECOVERABLE_CODES`].
//!
//! Errors that never reached the service (timeouts, refused or dropped connections,
//! unparseable responses) are Recoverable; a request the SDK could not even build is
//! Terminal (a bug or bad input, and repeating it changes nothing).

use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::model::CloudError;

/// Which way an error goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    Terminal,
    Recoverable,
}

/// Throttling, as EC2, RDS and the SDKs spell it: AWS asks the caller to slow down.
/// Recoverable, and counted apart in the call metrics. Exact matches.
pub const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "SlowDown",
    "EC2ThrottledException",
    "BandwidthLimitExceeded",
    "PriorRequestNotComplete",
];

/// The other AWS error codes that pass on their own. Exact matches.
pub const RECOVERABLE_CODES: &[&str] = &[
    // The region is out of a kind of capacity right now.
    "InsufficientInstanceCapacity",
    "InsufficientHostCapacity",
    "InsufficientCapacity",
    "InsufficientDBInstanceCapacity",
    "InsufficientStorageClusterCapacity",
    // AWS's own trouble.
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "ServiceUnavailable",
    "Unavailable",
    "RequestTimeout",
    "RequestTimeoutException",
    // Credentials that rotate (web identity, instance roles) or a skewed clock.
    "ExpiredToken",
    "ExpiredTokenException",
    "RequestExpired",
    // Waiting on something else to finish: instances still shutting down in a
    // subnet or security group, RDS busy modifying or backing up.
    "DependencyViolation",
    "IncorrectState",
    "IncorrectInstanceState",
    "InvalidDBInstanceState",
    "InvalidDBInstanceStateFault",
    "InvalidDBSubnetGroupStateFault",
    "InvalidSubnetStateFault",
];

/// Terminal or Recoverable, from the AWS error code and the HTTP status (when a
/// response arrived). See the module documentation for the rules.
pub fn classify_code(code: &str, http_status: Option<u16>) -> ErrorClass {
    if THROTTLING_CODES.contains(&code) || RECOVERABLE_CODES.contains(&code) {
        return ErrorClass::Recoverable;
    }
    if code.starts_with("InvalidAMIID.") {
        return ErrorClass::Terminal;
    }
    if is_not_found(code) {
        return ErrorClass::Recoverable;
    }
    match http_status {
        Some(status) if status >= 500 => ErrorClass::Recoverable,
        _ => ErrorClass::Terminal,
    }
}

/// Whether `code` says the resource does not exist (`InvalidVpcID.NotFound`,
/// `DBInstanceNotFound`, `DBSubnetGroupNotFoundFault`, …).
pub(crate) fn is_not_found(code: &str) -> bool {
    code.ends_with("NotFound") || code.ends_with("NotFoundFault") || code.ends_with(".NotFound")
}

/// The AWS error code of a service error, if this is one.
pub(crate) fn service_code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<&str> {
    err.as_service_error().and_then(|e| e.code())
}

/// A call's answer, with AWS's "no such resource" as an outcome of its own: `None`.
/// For a delete that means already gone, for a describe absent; any other failure is
/// classified ([`classify`]).
pub(crate) fn unless_not_found<T, E>(
    operation: &str,
    resource: &str,
    result: Result<T, SdkError<E, aws_sdk_ec2::config::http::HttpResponse>>,
) -> Result<Option<T>, CloudError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match result {
        Ok(answer) => Ok(Some(answer)),
        Err(e) if service_code(&e).is_some_and(is_not_found) => Ok(None),
        Err(e) => Err(classify(operation, resource, &e)),
    }
}

/// Turns an SDK failure of `operation` on `resource` into a [`CloudError`] carrying the
/// AWS error code and message (callers that sent a secret redact it with
/// [`redact`]).
pub fn classify<E>(
    operation: &str,
    resource: &str,
    err: &SdkError<E, aws_sdk_ec2::config::http::HttpResponse>,
) -> CloudError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let (class, code, message) = match err {
        SdkError::ServiceError(context) => {
            let status = context.raw().status().as_u16();
            let code = context.err().code().unwrap_or("Unknown").to_owned();
            let message = context
                .err()
                .message()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("HTTP {status} without a message"));
            (classify_code(&code, Some(status)), code, message)
        }
        SdkError::TimeoutError(_) => (
            ErrorClass::Recoverable,
            "Timeout".to_owned(),
            "no answer within the operation timeout".to_owned(),
        ),
        SdkError::DispatchFailure(failure) => {
            // "user" means the connector was misconfigured (e.g. a malformed endpoint
            // URL): no retry fixes that.
            let class = if failure.is_user() {
                ErrorClass::Terminal
            } else {
                ErrorClass::Recoverable
            };
            let code = if failure.is_timeout() {
                "Timeout"
            } else {
                "ConnectionFailed"
            };
            (class, code.to_owned(), detail(err))
        }
        SdkError::ResponseError(_) => (
            ErrorClass::Recoverable,
            "InvalidResponse".to_owned(),
            detail(err),
        ),
        SdkError::ConstructionFailure(_) => (
            ErrorClass::Terminal,
            "InvalidRequest".to_owned(),
            detail(err),
        ),
        _ => (ErrorClass::Recoverable, "Unknown".to_owned(), detail(err)),
    };
    build(class, operation, resource, code, message)
}

/// The error's whole source chain, for errors without an AWS message.
fn detail<E: std::error::Error + 'static>(err: &E) -> String {
    DisplayErrorContext(err).to_string()
}

pub(crate) fn build(
    class: ErrorClass,
    operation: &str,
    resource: &str,
    code: String,
    message: String,
) -> CloudError {
    let (operation, resource) = (operation.to_owned(), resource.to_owned());
    match class {
        ErrorClass::Terminal => CloudError::Terminal {
            operation,
            resource,
            code,
            message,
        },
        ErrorClass::Recoverable => CloudError::Recoverable {
            operation,
            resource,
            code,
            message,
        },
    }
}

/// Removes every occurrence of `secret` from the error's message. AWS does not echo
/// passwords, but an error is stored in status and Events, where a leak is permanent,
/// so this does not depend on that.
pub(crate) fn redact(err: CloudError, secret: &str) -> CloudError {
    if secret.is_empty() {
        return err;
    }
    let clean = |s: String| s.replace(secret, "[redacted]");
    match err {
        CloudError::Terminal {
            operation,
            resource,
            code,
            message,
        } => CloudError::Terminal {
            operation,
            resource,
            code,
            message: clean(message),
        },
        CloudError::Recoverable {
            operation,
            resource,
            code,
            message,
        } => CloudError::Recoverable {
            operation,
            resource,
            code,
            message: clean(message),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::error::{ConnectorError, ErrorMetadata};
    use aws_sdk_ec2::operation::create_vpc::CreateVpcError;
    use aws_sdk_rds::operation::create_db_instance::CreateDBInstanceError;
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::body::SdkBody;

    fn response(status: u16) -> Response<SdkBody> {
        Response::new(StatusCode::try_from(status).unwrap(), SdkBody::empty())
    }

    fn ec2_error(
        code: &str,
        message: &str,
        status: u16,
    ) -> SdkError<CreateVpcError, Response<SdkBody>> {
        let meta = ErrorMetadata::builder().code(code).message(message).build();
        SdkError::service_error(CreateVpcError::generic(meta), response(status))
    }

    #[test]
    fn throttling_capacity_and_server_errors_are_retried() {
        for code in [
            "Throttling",
            "ThrottlingException",
            "RequestLimitExceeded",
            "TooManyRequestsException",
            "InsufficientInstanceCapacity",
            "DependencyViolation",
        ] {
            let err = classify(
                "CreateVpc",
                "pave-x-vpc",
                &ec2_error(code, "slow down", 400),
            );
            assert!(!err.is_terminal(), "{code} should be recoverable: {err}");
            assert_eq!(err.code(), code);
        }
        let err = classify(
            "CreateVpc",
            "pave-x-vpc",
            &ec2_error("Whatever", "oops", 503),
        );
        assert!(!err.is_terminal(), "a 5xx should be recoverable: {err}");
    }

    #[test]
    fn invalid_requests_are_terminal_and_keep_code_and_message() {
        for code in [
            "InvalidParameterValue",
            "InvalidParameterCombination",
            "InvalidSubnet",
            "InvalidAMIID.NotFound",
            "InvalidAMIID.Malformed",
            "UnauthorizedOperation",
            "VpcLimitExceeded",
            "InstanceQuotaExceeded",
            "SomethingNobodyHasSeen",
        ] {
            let err = classify(
                "RunInstances",
                "pave-x-vm-0",
                &ec2_error(code, "bad input", 400),
            );
            assert!(err.is_terminal(), "{code} should be terminal: {err}");
            assert_eq!(
                err.to_string(),
                format!("RunInstances on pave-x-vm-0: {code}: bad input")
            );
        }
    }

    #[test]
    fn a_reference_not_found_yet_is_retried() {
        let err = classify(
            "RunInstances",
            "pave-x-vm-0",
            &ec2_error(
                "InvalidSubnetID.NotFound",
                "The subnet ID 'subnet-1' does not exist",
                400,
            ),
        );
        assert!(!err.is_terminal());
        assert!(is_not_found("DBInstanceNotFound"));
        assert!(is_not_found("DBSubnetGroupNotFoundFault"));
        assert!(is_not_found("InvalidGroup.NotFound"));
        assert!(!is_not_found("InvalidParameterValue"));
    }

    #[test]
    fn rds_class_not_supported_is_terminal() {
        let meta = ErrorMetadata::builder()
            .code("InvalidParameterCombination")
            .message("RDS does not support creating a DB instance with the following combination: DBInstanceClass=db.x9.huge")
            .build();
        let err = SdkError::service_error(CreateDBInstanceError::generic(meta), response(400));
        let err = classify("CreateDBInstance", "pave-x-db", &err);
        assert!(err.is_terminal());
        assert!(err.to_string().contains("DBInstanceClass=db.x9.huge"));
    }

    #[test]
    fn transport_failures_are_retried() {
        let timeout: SdkError<CreateVpcError, Response<SdkBody>> =
            SdkError::timeout_error("operation timed out");
        let err = classify("CreateVpc", "pave-x-vpc", &timeout);
        assert!(!err.is_terminal());
        assert_eq!(err.code(), "Timeout");

        let refused: SdkError<CreateVpcError, Response<SdkBody>> =
            SdkError::dispatch_failure(ConnectorError::io("connection refused".into()));
        let err = classify("CreateVpc", "pave-x-vpc", &refused);
        assert!(!err.is_terminal());
        assert_eq!(err.code(), "ConnectionFailed");
        assert!(err.to_string().contains("connection refused"), "{err}");
    }

    #[test]
    fn a_request_that_cannot_be_built_is_terminal() {
        let err: SdkError<CreateVpcError, Response<SdkBody>> =
            SdkError::construction_failure("missing required field CidrBlock");
        assert!(classify("CreateVpc", "pave-x-vpc", &err).is_terminal());
    }

    #[test]
    fn redact_removes_the_secret_from_the_message() {
        let err = build(
            ErrorClass::Terminal,
            "CreateDBInstance",
            "pave-x-db",
            "InvalidParameterValue".into(),
            "password hunter2hunter2 is too weak".into(),
        );
        let err = redact(err, "hunter2hunter2");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(err.to_string().contains("[redacted]"));
    }
}
