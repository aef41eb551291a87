//! Turning AWS SDK errors into [`StorageError`]s.
//!
//! The one question callers ask of an error is "will retrying help?", so the
//! mapping is about that: throttling, 5xx answers, timeouts and connection
//! failures are [`StorageError::Unavailable`], and so are expired temporary
//! credentials (they are refreshed); a missing resource or denied
//! access is a configuration problem ([`StorageError::Config`]); any other
//! refusal is [`StorageError::Invalid`]. Callers that expect a particular
//! service error (a failed condition, a missing key) check for it first,
//! with [`service_code`], and map the rest here.

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

use crate::StorageError;

/// Error codes AWS services use for "slow down" or "try again".
const RETRYABLE_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "SlowDown",
    "PriorRequestNotComplete",
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "TransactionInProgressException",
    // S3: a concurrent conditional write to the same key is in progress.
    "ConditionalRequestConflict",
    // SQS: the service is temporarily overloaded.
    "KmsThrottled",
    "AWS.SimpleQueueService.RequestThrottled",
    // Credentials that heal: temporary credentials expire and the SDK's
    // provider fetches fresh ones, so the same call succeeds a moment later.
    "ExpiredToken",
    "ExpiredTokenException",
    "RequestExpired",
    "TokenRefreshRequired",
    "IDPCommunicationError",
];

/// Error codes that mean a resource named in the configuration is missing or
/// not ours to use.
const CONFIG_CODES: &[&str] = &[
    "NoSuchBucket",
    "AccessDenied",
    "AccessDeniedException",
    "AllAccessDisabled",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "AWS.SimpleQueueService.NonExistentQueue",
    "QueueDoesNotExist",
    "ResourceNotFoundException",
];

/// The service's error code, if the service answered with one.
pub(crate) fn service_code<E, R>(err: &SdkError<E, R>) -> Option<&str>
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::ServiceError(e) => e.err().code(),
        _ => None,
    }
}

/// HTTP status of the service's answer, if there was one.
pub(crate) fn status<E>(err: &SdkError<E, HttpResponse>) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

/// Whether retrying the call later could succeed.
pub(crate) fn is_transient<E>(err: &SdkError<E, HttpResponse>) -> bool
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(_) => {
            service_code(err).is_some_and(|c| RETRYABLE_CODES.contains(&c))
                || status(err).is_some_and(|s| s == 429 || s >= 500)
        }
        // Building the request failed: our bug or bad input, not the network.
        _ => false,
    }
}

/// A one-line description: the service's code and message, or the chain
/// of causes (e.g. "dispatch failure: io error: Connection refused").
/// Shorter than the SDK's `DisplayErrorContext`, which appends the whole
/// raw response.
pub fn describe_error<E>(err: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    if let SdkError::ServiceError(s) = err {
        let e = s.err();
        return format!(
            "{} (HTTP {}): {}",
            e.code().unwrap_or("error"),
            s.raw().status().as_u16(),
            e.message().unwrap_or("no message")
        );
    }
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let part = cause.to_string();
        // Wrappers often repeat their cause's text.
        if !text.ends_with(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

/// Maps any SDK error to a [`StorageError`]; `what` says which call on
/// which resource failed, e.g. `"S3 PutObject s3://bucket/key"`.
pub(crate) fn classify<E>(
    backend: &'static str,
    what: &str,
    err: SdkError<E, HttpResponse>,
) -> StorageError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let transient = is_transient(&err);
    let config = service_code(&err).is_some_and(|c| CONFIG_CODES.contains(&c))
        || status(&err).is_some_and(|s| s == 401 || s == 403);
    let source = AwsCallError {
        description: describe_error(&err),
        sdk: Box::new(err),
    };
    if transient {
        StorageError::unavailable(backend, what, source)
    } else if config {
        StorageError::config_from(what, source)
    } else {
        StorageError::invalid_from(what, source)
    }
}

/// An SDK error with the one line [`describe_error`] made of it: the SDK's
/// own `Display` says little ("service error"), so ours says the code,
/// status and message, and the SDK error stays the source.
#[derive(Debug, thiserror::Error)]
#[error("{description}")]
pub struct AwsCallError {
    description: String,
    #[source]
    sdk: crate::BoxError,
}

#[cfg(test)]
mod tests {
    //! Outcomes moto cannot produce on demand (throttling, 5xx, denied
    //! access), built the way the SDK builds them from an HTTP answer.
    use aws_sdk_s3::error::ErrorMetadata;
    use aws_sdk_s3::operation::put_object::PutObjectError;
    use aws_sdk_s3::primitives::SdkBody;

    use super::*;

    fn service_error(status: u16, code: Option<&str>) -> SdkError<PutObjectError, HttpResponse> {
        let mut meta = ErrorMetadata::builder();
        if let Some(code) = code {
            meta = meta.code(code);
        }
        let status = status.try_into().expect("valid status");
        SdkError::service_error(
            PutObjectError::generic(meta.build()),
            HttpResponse::new(status, SdkBody::empty()),
        )
    }

    #[test]
    fn throttling_and_server_errors_are_retryable() {
        for (status, code) in [
            (503, Some("SlowDown")),
            (400, Some("ThrottlingException")),
            (400, Some("RequestTimeout")),
            (500, None),
            (502, Some("BadGateway")),
            (429, None),
        ] {
            let err = classify("S3", "PutObject", service_error(status, code));
            assert!(err.is_retryable(), "{status} {code:?} → {err:?}");
        }
    }

    #[test]
    fn denied_access_and_missing_resources_are_configuration_errors() {
        for (status, code) in [
            (403, Some("AccessDenied")),
            (404, Some("NoSuchBucket")),
            (400, Some("AWS.SimpleQueueService.NonExistentQueue")),
            (400, Some("ResourceNotFoundException")),
            (403, None),
        ] {
            let err = classify("S3", "PutObject", service_error(status, code));
            assert!(
                matches!(err, StorageError::Config { .. }),
                "{status} {code:?} → {err:?}"
            );
        }
    }

    #[test]
    fn expired_credentials_heal_so_they_are_retryable() {
        for (status, code) in [
            (400, Some("ExpiredToken")),
            (403, Some("ExpiredToken")),
            (400, Some("ExpiredTokenException")),
            (403, Some("RequestExpired")),
        ] {
            let err = classify("SQS", "SendMessage", service_error(status, code));
            assert!(err.is_retryable(), "{status} {code:?} → {err:?}");
        }
    }

    #[test]
    fn other_refusals_are_permanent() {
        let err = classify(
            "S3",
            "PutObject",
            service_error(400, Some("InvalidArgument")),
        );
        assert!(matches!(err, StorageError::Invalid { .. }), "{err:?}");
        assert!(!err.is_retryable());
    }

    #[test]
    fn timeouts_and_connection_failures_are_retryable() {
        let timeout: SdkError<PutObjectError, HttpResponse> =
            SdkError::timeout_error("operation timed out");
        assert!(classify("S3", "PutObject", timeout).is_retryable());
    }
}
