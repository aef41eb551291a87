//! `polybot`: gateway, detector and reporter in one process.

use std::time::Duration;

use clap::Parser;
use polybot::cli::{Cli, Command, UpArgs};
use polybot::{Mesh, MeshOptions};
use polybot_gateway::TelegramMode;
use polybot_gateway::cli::{listen, until_signal};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    match Cli::parse().command {
        Command::Healthcheck { url } => polybot_telemetry::healthcheck(&url)
            .await
            .map_err(anyhow::Error::msg),
        #[cfg(feature = "demo")]
        Command::Demo(args) => {
            // The conversation is the output; logs default to warnings.
            let _telemetry = polybot_telemetry::init_with_filter(
                "polybot",
                polybot_telemetry::LogFormat::Text,
                "warn",
            )?;
            polybot::demo::run(args).await
        }
        Command::Up(args) => up(*args).await,
        Command::Gateway(args) => polybot_gateway::cli::serve(*args).await,
        Command::Detector(args) => {
            if polybot_detector::cli::worker(*args).await? {
                Ok(())
            } else {
                std::process::exit(1)
            }
        }
    }
}

async fn up(args: UpArgs) -> anyhow::Result<()> {
    let telemetry = polybot_telemetry::init_from("polybot", &args.telemetry)?;
    let secrets = args.telegram.secrets(&args.backend).await?;
    let (backends, telegram) = args.telegram.connect(&args.backend, &secrets).await?;
    let operator_configured = secrets.operator_token.is_some();
    // Without configured tokens the in-process detector and the operator get
    // generated ones; the operator's is written to the data folder.
    let mut gateway = args.telegram.gateway_config(secrets)?;
    if !operator_configured && let Some(token) = &gateway.results_credentials.operator {
        let path = polybot::write_operator_token(&args.backend.data_dir, token)?;
        tracing::info!(path = %path.display(), "operator token for GetPrediction/ListPredictions written");
    }
    if gateway.mode == TelegramMode::Webhook && gateway.public_url.is_none() {
        // Without a public URL Telegram cannot reach us: poll instead.
        gateway.mode = TelegramMode::Polling;
    }
    if gateway.mode == TelegramMode::Webhook && gateway.webhook_secret.is_none() {
        // A local run registers its own webhook, so it can make up the secret.
        gateway.webhook_secret = Some(polybot_gateway::secret::WebhookSecret::generate());
    }
    let mesh = Mesh::start(MeshOptions {
        backends,
        telegram,
        gateway,
        http_listener: listen("POLYBOT_HTTP_LISTEN", args.http_listen).await?,
        grpc_listener: listen("POLYBOT_GRPC_LISTEN", args.grpc_listen).await?,
        detector_http_listen: Some(args.detector_http_listen),
        detector: Some(args.model.pool_options()),
        worker: polybot_detector::worker::WorkerConfig {
            shutdown_grace: Duration::from_secs(args.shutdown_grace),
            // The heartbeat follows the queue's real visibility timeout.
            visibility: None,
            ..Default::default()
        },
        reporter_interval: Some(Duration::from_secs(args.report_interval.max(1))),
    })
    .await?;
    until_signal(telemetry, mesh.shutdown()).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn no_subcommand_accepts_a_secret_as_a_flag() {
        for args in [
            &["polybot", "up", "--telegram-token", "123:abc"][..],
            &["polybot", "gateway", "--webhook-secret", "x"],
            &["polybot", "up", "--operator-token", "x"],
            &["polybot", "detector", "--results-token", "x"],
        ] {
            let err = Cli::try_parse_from(args)
                .err()
                .unwrap_or_else(|| panic!("{args:?} was accepted"));
            assert_eq!(
                err.kind(),
                clap::error::ErrorKind::UnknownArgument,
                "{args:?}"
            );
        }
        fn walk(cmd: &clap::Command) {
            for arg in cmd.get_arguments() {
                let long = arg.get_long().unwrap_or_default();
                let secretive = ["token", "secret", "password"]
                    .iter()
                    .any(|w| long.contains(w));
                assert!(
                    !secretive || long.ends_with("-file") || long.ends_with("-secret-id"),
                    "polybot {} has a flag --{long} that could carry a secret",
                    cmd.get_name()
                );
            }
            cmd.get_subcommands().for_each(walk);
        }
        walk(&Cli::command());
    }
}
