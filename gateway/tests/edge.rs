//! The HTTP edge against hostile or broken peers: clients that never finish
//! their headers, bodies sent without the secret, oversized or trickled
//! bodies, and a Bot API file endpoint that sends more than it said.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::Uri;
use axum::response::IntoResponse;
use polybot_gateway::messenger::{Messenger, MessengerError, TelegramMessenger};
use polybot_gateway::{Gateway, GatewayConfig};
use secrecy::SecretString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod support;

const SECRET: &str = "edge-test-webhook-secret-0123456789abcdef";

async fn start(dir: &std::path::Path, header: Duration, request: Duration) -> Gateway {
    let config = GatewayConfig {
        webhook_secret: Some(support::webhook_secret(SECRET)),
        header_read_timeout: header,
        request_timeout: request,
        ..GatewayConfig::default()
    };
    support::start_offline(dir, config)
        .await
        .expect("gateway starts")
}

/// Reads until the server answers or closes; `None` if it does neither in `within`.
async fn read_answer(stream: &mut TcpStream, within: Duration) -> Option<String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(String::from_utf8_lossy(&got).into_owned()),
            Ok(Ok(n)) => {
                got.extend_from_slice(&buf[..n]);
                if got.windows(4).any(|w| w == b"\r\n\r\n") {
                    return Some(String::from_utf8_lossy(&got).into_owned());
                }
            }
        }
    }
}

fn webhook_head(addr: SocketAddr, secret: &str, length: usize) -> String {
    format!(
        "POST /telegram/webhook HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         X-Telegram-Bot-Api-Secret-Token: {secret}\r\nContent-Length: {length}\r\n\r\n"
    )
}

#[tokio::test]
async fn connections_that_never_finish_their_headers_are_closed_after_the_header_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gateway = start(
        dir.path(),
        Duration::from_millis(500),
        Duration::from_secs(30),
    )
    .await;
    let addr = gateway.http_addr();

    // Half-open clients: some send nothing, some stop in the middle.
    let mut clients = Vec::new();
    for i in 0..100 {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        if i % 2 == 0 {
            stream
                .write_all(b"POST /telegram/webhook HTTP/1.1\r\nHost: x\r\n")
                .await
                .expect("write");
        }
        clients.push(stream);
    }
    let started = Instant::now();
    for stream in &mut clients {
        let answer = read_answer(stream, Duration::from_secs(5)).await;
        assert!(
            answer.is_some(),
            "a half-open connection was still held {:?} after the 500 ms header timeout",
            started.elapsed()
        );
    }
    // The server is still there for well-behaved clients.
    let health = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_wrong_secret_is_refused_before_the_body_is_sent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gateway = start(dir.path(), Duration::from_secs(10), Duration::from_secs(30)).await;
    let addr = gateway.http_addr();

    for secret in ["wrong", "", &SECRET[..SECRET.len() - 1]] {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        // Announce a megabyte, send none of it: the answer must not wait for it.
        stream
            .write_all(webhook_head(addr, secret, 1_000_000).as_bytes())
            .await
            .expect("write");
        let answer = read_answer(&mut stream, Duration::from_secs(5))
            .await
            .expect("answered without the body");
        assert!(
            answer.starts_with("HTTP/1.1 401"),
            "secret {secret:?}: {answer}"
        );
    }
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_body_announced_over_the_limit_gets_413_without_being_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gateway = start(dir.path(), Duration::from_secs(10), Duration::from_secs(30)).await;
    let addr = gateway.http_addr();
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(webhook_head(addr, SECRET, 50 * 1024 * 1024).as_bytes())
        .await
        .expect("write");
    let answer = read_answer(&mut stream, Duration::from_secs(5))
        .await
        .expect("answered without the body");
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_trickled_body_is_cut_off_with_408_at_the_request_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gateway = start(dir.path(), Duration::from_secs(10), Duration::from_secs(1)).await;
    let addr = gateway.http_addr();
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(webhook_head(addr, SECRET, 100).as_bytes())
        .await
        .expect("write");
    stream.write_all(b"{\"update_id\":").await.expect("write");
    let started = Instant::now();
    let answer = read_answer(&mut stream, Duration::from_secs(10))
        .await
        .expect("answered at the request timeout");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(5));
    gateway.shutdown().await;
}

/// A Bot API whose `getFile` says the file has 1 000 bytes and whose file
/// endpoint then streams without end. Counts what it managed to send.
async fn lying_bot_api() -> (SocketAddr, Arc<AtomicU64>) {
    let sent = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&sent);
    let app = axum::Router::new().fallback(move |uri: Uri| {
        let counter = Arc::clone(&counter);
        async move {
            let path = uri.path();
            if path.ends_with("/getFile") {
                return axum::Json(serde_json::json!({
                    "ok": true,
                    "result": {"file_id": "f", "file_unique_id": "u",
                               "file_size": 1000, "file_path": "photos/lie.jpg"}
                }))
                .into_response();
            }
            let chunk = Bytes::from(vec![0u8; 64 * 1024]);
            let endless = futures::stream::repeat_with(move || {
                counter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                Ok::<_, Infallible>(chunk.clone())
            });
            Body::from_stream(endless).into_response()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, sent)
}

fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

#[tokio::test]
async fn a_download_that_sends_more_than_getfile_said_stops_at_the_limit() {
    const LIMIT: u64 = 4 * 1024 * 1024;
    let (addr, sent) = lying_bot_api().await;
    let telegram = TelegramMessenger::new(
        &SecretString::from("1:lying".to_owned()),
        format!("http://{addr}").parse().expect("url"),
    );
    let before = resident_bytes();
    let refused = tokio::time::timeout(Duration::from_secs(30), telegram.download("f", LIMIT))
        .await
        .expect("the download ends");
    match refused {
        Err(MessengerError::TooLarge { size, limit }) => {
            assert_eq!(limit, LIMIT);
            assert!(
                size > LIMIT && size <= LIMIT + 64 * 1024,
                "stopped at {size}"
            );
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    // The connection was dropped: the server stops being able to send.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let settled = sent.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sent.load(Ordering::Relaxed), settled, "still streaming");
    // What was sent is the limit plus what sockets buffer, not gigabytes.
    assert!(settled < LIMIT + 32 * 1024 * 1024, "server sent {settled}");
    let grown = resident_bytes().saturating_sub(before);
    assert!(
        grown < 128 * 1024 * 1024,
        "resident memory grew {grown} bytes"
    );
}

#[tokio::test]
async fn the_gateway_binary_refuses_a_short_webhook_secret_at_start_up_without_echoing_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_gateway"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TELEGRAM_TOKEN", "1:unused")
        .env("TELEGRAM_WEBHOOK_SECRET", "hunter2hunter2")
        .env(
            "POLYBOT_RESULTS_TOKEN",
            "edge-results-token-0123456789abcdefghij",
        )
        .env("TELEGRAM_API_URL", "http://127.0.0.1:9")
        .env("POLYBOT_BACKEND", "local")
        .env("POLYBOT_DATA_DIR", dir.path())
        .env("POLYBOT_HTTP_LISTEN", "127.0.0.1:0")
        .env("POLYBOT_GRPC_LISTEN", "127.0.0.1:0")
        .output();
    let output = tokio::time::timeout(Duration::from_secs(30), output)
        .await
        .expect("exits promptly")
        .expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "started with a short secret");
    assert!(
        stderr.contains("TELEGRAM_WEBHOOK_SECRET") && stderr.contains("at least 32"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("hunter2"),
        "the secret was echoed: {stderr}"
    );
}
