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

/// A self-signed certificate for `name`, and the files of it and its key
/// in a new folder.
fn self_signed(
    name: &str,
) -> (
    tempfile::TempDir,
    rcgen::CertifiedKey<rcgen::KeyPair>,
    std::path::PathBuf,
    std::path::PathBuf,
) {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = rcgen::generate_simple_self_signed(vec![name.into()]).expect("certificate");
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).expect("write cert");
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).expect("write key");
    (dir, cert, cert_path, key_path)
}

#[tokio::test]
async fn serves_https_with_a_self_signed_certificate_and_checks_the_webhook_secret() {
    let (dir, cert, cert_path, key_path) = self_signed("localhost");

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

/// Telegram reaches a webhook with a self-signed certificate only when the
/// certificate came with `setWebhook`; the emulator, like Telegram, trusts
/// no other, so an answered update proves the upload.
#[tokio::test]
async fn a_self_signed_webhook_uploads_its_certificate_and_updates_arrive_over_https() {
    let (dir, cert, cert_path, key_path) = self_signed("127.0.0.1");
    let emulator = tg_emulator::Emulator::start("127.0.0.1:0")
        .await
        .expect("emulator");
    let client = emulator.client();

    let bind = || tokio::net::TcpListener::bind("127.0.0.1:0");
    let (http, grpc) = (bind().await.expect("bind"), bind().await.expect("bind"));
    let public_url = format!("https://{}/", http.local_addr().expect("addr"))
        .parse()
        .expect("url");
    let config = GatewayConfig {
        webhook_secret: Some(support::webhook_secret(
            "tls-test-webhook-secret-0123456789abcdef",
        )),
        tls: Some(TlsFiles {
            cert: cert_path,
            key: key_path,
        }),
        public_url: Some(public_url),
        ..GatewayConfig::default()
    };
    let backends = polybot_storage::config::BackendArgs::local(dir.path().join("data"))
        .connect()
        .await
        .expect("local backend");
    let telegram = polybot_gateway::messenger::TelegramMessenger::new(
        &secrecy::SecretString::from(emulator.token().to_owned()),
        emulator.base_url().parse().expect("url"),
    );
    let (messenger, control) = telegram.ports();
    let gateway = Gateway::start(config, backends, messenger, control, http, grpc)
        .await
        .expect("gateway starts");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let webhook = loop {
        let webhook = client.webhook().await.expect("webhook state");
        if webhook.url.is_some() || tokio::time::Instant::now() > deadline {
            break webhook;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(webhook.url.is_some(), "the webhook is registered");
    assert_eq!(
        webhook.certificate.as_deref(),
        Some(cert.cert.pem().as_str()),
        "setWebhook uploads the served certificate"
    );
    client.send_user_text(8101, "/start").await.expect("send");
    let answers = client
        .wait_for_messages(8101, 1, Duration::from_secs(20))
        .await
        .expect("the update arrives over HTTPS and is answered");
    assert!(!answers[0].text.as_deref().unwrap_or_default().is_empty());
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
