//! The gateway's `Results` service over gRPC as the worker's
//! [`ResultsSink`]. Every report carries the job's trace context (the
//! interceptor) and the Results token.

use std::time::Duration;

use async_trait::async_trait;
use polybot_proto::Report;
use polybot_proto::v1::results_client::ResultsClient;
use polybot_telemetry::grpc::TraceInterceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tracing::Instrument;

use super::config::REPORT_RPC_TIMEOUT;
use super::error::WorkerError;
use super::ports::{JobProgress, ReportError, ResultsSink};

/// A `Results` client that connects on first use.
pub struct GrpcResults {
    client: ResultsClient<InterceptedService<Channel, TraceInterceptor>>,
    token: Option<secrecy::SecretString>,
}

impl GrpcResults {
    /// A client for the Results service at `url`, presenting `token`.
    pub fn connect_lazy(
        url: &str,
        token: Option<secrecy::SecretString>,
    ) -> Result<Self, WorkerError> {
        let channel = Endpoint::from_shared(url.to_owned())
            .map_err(|e| WorkerError::ResultsUrl {
                url: url.to_owned(),
                source: e,
            })?
            .connect_timeout(Duration::from_secs(5))
            .timeout(REPORT_RPC_TIMEOUT)
            .connect_lazy();
        Ok(Self {
            client: ResultsClient::with_interceptor(channel, TraceInterceptor),
            token,
        })
    }

    async fn send(&self, report: &Report) -> Result<bool, tonic::Status> {
        let span = tracing::info_span!(
            "polybot.v1.Results/ReportResult",
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            rpc.system = "grpc",
            rpc.service = "polybot.v1.Results",
            rpc.method = "ReportResult",
            rpc.grpc.status_code = tracing::field::Empty,
            prediction_id = %report.prediction_id,
        );
        async {
            let request = self.authorized(polybot_proto::v1::ReportResultRequest::from(report))?;
            let mut client = self.client.clone();
            let result = client
                .report_result(request)
                .await
                .map(|r| r.into_inner().duplicate);
            let code = match &result {
                Ok(_) => tonic::Code::Ok,
                Err(status) => status.code(),
            };
            let span = tracing::Span::current();
            span.record("rpc.grpc.status_code", code as i32);
            if code != tonic::Code::Ok {
                span.record("otel.status_code", "ERROR");
            }
            result
        }
        .instrument(span)
        .await
    }
}

impl GrpcResults {
    /// A request carrying the Results token.
    fn authorized<T>(&self, message: T) -> Result<tonic::Request<T>, tonic::Status> {
        let mut request = tonic::Request::new(message);
        if let Some(token) = &self.token {
            let bearer = polybot_proto::auth::bearer(token)
                .map_err(|e| tonic::Status::unauthenticated(e.to_string()))?;
            request
                .metadata_mut()
                .insert(polybot_proto::auth::AUTHORIZATION, bearer);
        }
        Ok(request)
    }
}

#[async_trait]
impl ResultsSink for GrpcResults {
    async fn report(&self, report: &Report) -> Result<bool, ReportError> {
        self.send(report).await.map_err(|status| {
            if report_retryable(status.code()) {
                ReportError::Unavailable(status.into())
            } else {
                ReportError::Refused(status.into())
            }
        })
    }

    async fn progress(&self, progress: &JobProgress) -> Result<(), ReportError> {
        let request = self
            .authorized(polybot_proto::v1::ReportProgressRequest {
                prediction_id: progress.prediction_id.to_string(),
                chat_id: progress.chat_id.0,
                done: progress.done,
                total: progress.total,
                language: progress.language.code().to_owned(),
            })
            .map_err(|status| ReportError::Refused(status.into()))?;
        let mut client = self.client.clone();
        client
            .report_progress(request)
            .instrument(tracing::info_span!(
                "polybot.v1.Results/ReportProgress",
                otel.kind = "client",
                rpc.system = "grpc",
                rpc.service = "polybot.v1.Results",
                rpc.method = "ReportProgress",
            ))
            .await
            .map(|_| ())
            .map_err(|status| ReportError::Unavailable(status.into()))
    }
}

/// Whether a failed `ReportResult` may succeed later: Results restarting
/// or unreachable, a reply still being sent, Telegram failing for now.
fn report_retryable(code: tonic::Code) -> bool {
    use tonic::Code;
    matches!(
        code,
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Unknown
            | Code::Cancelled
            | Code::Aborted
            | Code::ResourceExhausted
            | Code::Internal
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outages_are_retried_and_refusals_are_not() {
        for code in [
            tonic::Code::Unavailable,
            tonic::Code::DeadlineExceeded,
            tonic::Code::Unknown,
        ] {
            assert!(report_retryable(code), "{code:?}");
        }
        for code in [
            tonic::Code::InvalidArgument,
            tonic::Code::FailedPrecondition,
            tonic::Code::NotFound,
        ] {
            assert!(!report_retryable(code), "{code:?}");
        }
    }
}
