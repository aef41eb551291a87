//! The gateway serves HTTPS itself when given a certificate and key; a
//! self-signed certificate works, as Telegram allows for webhooks.

use std::time::Duration;

use polybot_gateway::{Gateway, GatewayConfig, GatewayError, TlsFiles};

mod support;

async fn start(tls: TlsFiles, dir: &std::path::Path) -> Result<Gateway, GatewayError> {
    let config = GatewayConfig {
        webhook_secret: Some(support::webhook_secret(
            "tls-test-webhook-secret-0123456789abcdef",
        )),
        tls: Some(tls),
        ..GatewayConfig::default()
    };
    support::start_offline(dir, config).await
}

#[tokio::test]
async fn serves_https_with_a_self_signed_certificate_and_checks_the_webhook_secret() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("certificate");
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).expect("write cert");
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).expect("write key");

    let gateway = start(
        TlsFiles {
            cert: cert_path,
            key: key_path,
        },
        dir.path(),
    )
    .await
    .expect("starts with TLS");
    let port = gateway.http_addr().port();
    let root = reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).expect("parse cert");
    let client = reqwest::Client::builder()
        .add_root_certificate(root)
        .resolve("localhost", gateway.http_addr())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let health = client
        .get(format!("https://localhost:{port}/healthz"))
        .send()
        .await
        .expect("https");
    assert_eq!(health.status(), 200);
    let hook = client
        .post(format!("https://localhost:{port}/telegram/webhook"))
        .header("X-Telegram-Bot-Api-Secret-Token", "wrong")
        .body("{}")
        .send()
        .await
        .expect("https");
    assert_eq!(hook.status(), 401);
    // Plain HTTP on the TLS port is refused, not served.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await;
    assert!(plain.map(|r| r.status() != 200).unwrap_or(true));
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_missing_certificate_fails_at_start_up_naming_the_files() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let err = start(
        TlsFiles {
            cert: dir.path().join("nope.pem"),
            key: dir.path().join("nokey.pem"),
        },
        dir.path(),
    )
    .await
    .err()
    .expect("must fail");
    let text = err.to_string();
    assert!(
        text.contains("nope.pem") && text.contains("nokey.pem"),
        "{text}"
    );
}
