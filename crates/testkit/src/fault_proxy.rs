//! An HTTP proxy in front of an AWS-compatible endpoint (moto) that takes
//! chosen services down: while down, their requests are answered `503
//! ServiceUnavailable`, as AWS answers during an outage, and the other
//! services' requests pass through. A process pointed at the proxy with
//! `AWS_ENDPOINT_URL` sees an S3 or DynamoDB outage while its queue works.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The service a request is for, as the AWS SDK addresses them on one
/// endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AwsService {
    S3,
    Sqs,
    DynamoDb,
}

impl AwsService {
    /// DynamoDB and SQS (JSON protocol) name their operation in
    /// `X-Amz-Target`; SQS's query protocol posts a form with an `Action`;
    /// everything else on a path-style endpoint is S3.
    fn of(headers: &HeaderMap, body: &[u8]) -> Self {
        let target = headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
        if target.starts_with("DynamoDB") {
            Self::DynamoDb
        } else if target.starts_with("AmazonSQS") || (form && body.starts_with(b"Action=")) {
            Self::Sqs
        } else {
            Self::S3
        }
    }
}

#[derive(Clone)]
struct Shared {
    upstream: String,
    client: reqwest::Client,
    down: Arc<Mutex<HashSet<AwsService>>>,
    refused: Arc<AtomicU64>,
}

/// The proxy; it stops when dropped.
pub struct FaultProxy {
    endpoint: String,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// A proxy on a free loopback port, forwarding to `upstream`
    /// (`http://host:port`).
    pub async fn start(upstream: &str) -> Self {
        let shared = Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("an HTTP client"),
            down: Arc::default(),
            refused: Arc::default(),
        };
        let app = axum::Router::new()
            .fallback(forward)
            .layer(axum::extract::DefaultBodyLimit::disable())
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port for the proxy");
        let endpoint = format!("http://{}", listener.local_addr().expect("its address"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            endpoint,
            shared,
            task,
        }
    }

    /// The URL to give as `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// From now on, `services` answer every request with 503.
    pub fn take_down(&self, services: &[AwsService]) {
        self.down().extend(services.iter().copied());
    }

    /// Every service answers again.
    pub fn restore(&self) {
        self.down().clear();
    }

    /// How many requests were answered with 503 so far.
    pub fn refused(&self) -> u64 {
        self.shared.refused.load(Ordering::SeqCst)
    }

    fn down(&self) -> std::sync::MutexGuard<'_, HashSet<AwsService>> {
        self.shared.down.lock().expect("the proxy's lock")
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(State(shared): State<Shared>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = to_bytes(body, usize::MAX).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let service = AwsService::of(&parts.headers, &body);
    if shared
        .down
        .lock()
        .expect("the proxy's lock")
        .contains(&service)
    {
        shared.refused.fetch_add(1, Ordering::SeqCst);
        return unavailable(service);
    }
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut headers = parts.headers.clone();
    headers.remove(header::HOST);
    headers.remove(header::CONTENT_LENGTH);
    let sent = shared
        .client
        .request(parts.method, format!("{}{path}", shared.upstream))
        .headers(headers)
        .body(body)
        .send()
        .await;
    let Ok(answer) = sent else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let status = answer.status();
    let mut headers = answer.headers().clone();
    headers.remove(header::TRANSFER_ENCODING);
    headers.remove(header::CONTENT_LENGTH);
    let body = answer.bytes().await.unwrap_or_default();
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// What AWS answers during an outage, in each service's error format.
fn unavailable(service: AwsService) -> Response {
    let (content_type, body): (&str, Bytes) = match service {
        AwsService::S3 => (
            "application/xml",
            Bytes::from_static(
                b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>ServiceUnavailable</Code>\
                  <Message>Please reduce your request rate.</Message></Error>",
            ),
        ),
        AwsService::DynamoDb | AwsService::Sqs => (
            "application/x-amz-json-1.0",
            Bytes::from_static(
                b"{\"__type\":\"com.amazonaws.dynamodb.v20120810#ServiceUnavailable\",\
                  \"message\":\"The service is unavailable\"}",
            ),
        ),
    };
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::CONTENT_TYPE, content_type)],
        body,
    )
        .into_response()
}
