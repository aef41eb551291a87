//! The gateway's two servers, each a critical task of its supervisor (the
//! gateway is not ready once one stops before shutdown): gRPC (Results,
//! health and reflection) and HTTP or HTTPS (the webhook, health, metrics).

use std::future::Future;
use std::time::Duration;

use axum::Router;
use polybot_proto::v1::results_server::ResultsServer;
use polybot_telemetry::tasks::Supervisor;
use tokio::net::TcpListener;
use tonic_health::server::HealthReporter;
use tracing::warn;

use crate::config::{GatewayConfig, GatewayError};
use crate::grpc::ResultsService;

/// How long a kept-alive connection may sit between requests: above the
/// ALB's default idle timeout (60 s), as AWS advises for targets.
const KEEP_ALIVE_IDLE: Duration = Duration::from_secs(75);

/// An HTTP server at work, plain or TLS.
type Serving = std::pin::Pin<Box<dyn Future<Output = std::io::Result<()>> + Send>>;

/// How long requests under way get to finish once the gateway stops.
const HTTP_STOP_GRACE: Duration = Duration::from_secs(10);

/// Serves Results, gRPC health and reflection (v1 and v1alpha: grpcurl
/// 1.8 speaks only v1alpha) on `listener`. Returns the health reporter,
/// which starts not serving: readiness publishes to it.
/// The largest request the Results service decodes: a photo of
/// `max_download` bytes and the rest of its message.
fn max_message(max_download: u64) -> usize {
    usize::try_from(max_download)
        .unwrap_or(usize::MAX)
        .saturating_add(64 * 1024)
}

pub async fn serve_grpc(
    supervisor: &Supervisor,
    config: &GatewayConfig,
    results: ResultsService,
    listener: TcpListener,
) -> Result<HealthReporter, GatewayError> {
    let (reporter, health_service) = tonic_health::server::health_reporter();
    // tonic-health starts "" as SERVING; like /readyz, start not-serving
    // until the first backend check passes, so the two always agree.
    reporter
        .set_service_status("", tonic_health::ServingStatus::NotServing)
        .await;
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(polybot_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection().build_v1().map_err(GatewayError::Reflection)?;
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .map_err(GatewayError::Reflection)?;
    // Every Results call is authenticated; health and reflection stay
    // open (they reveal nothing that is not in the public contract).
    let authenticator = config
        .results_credentials
        .authenticator()
        .on_previous_token(crate::metrics::previous_results_token);
    // `Detect` takes a photo as large as Telegram's downloads; tonic's 4 MB
    // default would refuse it before the handler could say why.
    let results = tonic::service::interceptor::InterceptedService::new(
        ResultsServer::new(results).max_decoding_message_size(max_message(config.max_download)),
        authenticator,
    );
    let cancel = supervisor.cancel_token();
    supervisor.spawn_critical("grpc_server", async move {
        let served = tonic::transport::Server::builder()
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(results)
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                cancel.cancelled_owned(),
            )
            .await;
        if let Err(e) = served {
            warn!(error = %e, "gRPC server stopped with an error");
        }
    });
    Ok(reporter)
}

/// Serves `router` on `listener`, over HTTPS when the config names a
/// certificate.
///
/// Both plain HTTP (behind the ALB) and HTTPS run on hyper through
/// axum-server, which lets us bound how long a client may take to send its
/// headers: otherwise half-open connections pile up. The first request is
/// bounded from the accept; later ones on a kept-alive connection by
/// hyper's header timeout, which also bounds the idle time between
/// requests and so must outlast the ALB's idle timeout (60 s): a target
/// that closes first makes the ALB answer 502. HTTP/1.1 only: that is what
/// Telegram and the ALB speak, and it skips protocol sniffing.
pub async fn serve_http(
    supervisor: &Supervisor,
    config: &GatewayConfig,
    router: Router,
    listener: TcpListener,
) -> Result<(), GatewayError> {
    let server = axum_server::from_tcp(listener.into_std()?)?.handle(shutdown_handle(supervisor));
    let service = router.into_make_service();
    let idle = KEEP_ALIVE_IDLE.max(config.header_read_timeout);
    let (serving, what): (Serving, _) = match &config.tls {
        None => {
            let mut server = server
                .http1_only()
                .first_request_timeout(config.header_read_timeout);
            server.http_builder().http1().header_read_timeout(idle);
            (Box::pin(server.serve(service)), "HTTP")
        }
        Some(tls) => {
            let rustls = axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert, &tls.key)
                .await
                .map_err(|e| GatewayError::Tls {
                    cert: tls.cert.clone(),
                    key: tls.key.clone(),
                    source: e,
                })?;
            let mut server = server.acceptor(axum_server::tls_rustls::RustlsAcceptor::new(rustls));
            server.http_builder().http1().header_read_timeout(idle);
            (Box::pin(server.serve(service)), "HTTPS")
        }
    };
    supervisor.spawn_critical("http_server", async move {
        if let Err(e) = serving.await {
            warn!(error = %e, "{what} server stopped with an error");
        }
    });
    Ok(())
}

/// A handle that shuts the HTTP server down gracefully when the
/// supervisor stops.
fn shutdown_handle(supervisor: &Supervisor) -> axum_server::Handle<std::net::SocketAddr> {
    let handle = axum_server::Handle::new();
    let shutdown = handle.clone();
    let cancel = supervisor.cancel_token();
    supervisor.spawn("http_shutdown", async move {
        cancel.cancelled().await;
        shutdown.graceful_shutdown(Some(HTTP_STOP_GRACE));
    });
    handle
}
