//! What the gateway's offline test binaries share: a gateway on the local
//! backend and loopback ports, whose bot never reaches Telegram.

use std::path::Path;

use polybot_gateway::messenger::TelegramMessenger;
use polybot_gateway::secret::WebhookSecret;
use polybot_gateway::{Gateway, GatewayConfig, GatewayError};
use polybot_storage::config::BackendArgs;
use secrecy::SecretString;

/// A webhook secret from test text.
pub fn webhook_secret(secret: &str) -> WebhookSecret {
    WebhookSecret::parse(SecretString::from(secret.to_owned())).expect("a valid secret")
}

/// Starts a gateway with `config` on the local backend in `dir`.
pub async fn start_offline(dir: &Path, config: GatewayConfig) -> Result<Gateway, GatewayError> {
    let backends = BackendArgs::local(dir.join("data"))
        .connect()
        .await
        .expect("local backend");
    // Never called in these tests: nothing reaches Telegram.
    let telegram = TelegramMessenger::new(
        &SecretString::from("1:unused".to_owned()),
        "http://127.0.0.1:9".parse().expect("url"),
    );
    let (messenger, control) = telegram.ports();
    let bind = || tokio::net::TcpListener::bind("127.0.0.1:0");
    let (http, grpc) = (bind().await.expect("bind"), bind().await.expect("bind"));
    Gateway::start(config, backends, messenger, control, http, grpc).await
}
