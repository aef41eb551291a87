//! `tg-emulator` binary: runs the Telegram Bot API emulator until Ctrl-C.

use std::time::Duration;

use clap::Parser;
use tg_emulator::{DEFAULT_TOKEN, Emulator, EmulatorConfig};

/// Telegram Bot API emulator for tests and demos.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on (port 0 picks a free port; the chosen address is printed).
    #[arg(long, env = "TG_EMULATOR_LISTEN", default_value = "127.0.0.1:8081")]
    listen: String,
    /// Bot token to accept.
    #[arg(long, env = "TG_EMULATOR_TOKEN", default_value = DEFAULT_TOKEN)]
    token: String,
    /// Username getMe reports.
    #[arg(
        long,
        env = "TG_EMULATOR_BOT_USERNAME",
        default_value = "polybot_test_bot"
    )]
    bot_username: String,
    /// Pause before the first webhook retry, in milliseconds (doubles each time).
    #[arg(long, env = "TG_EMULATOR_WEBHOOK_BACKOFF_MS", default_value_t = 200)]
    webhook_backoff_ms: u64,
    /// Longest pause between webhook retries, in milliseconds.
    #[arg(
        long,
        env = "TG_EMULATOR_WEBHOOK_MAX_BACKOFF_MS",
        default_value_t = 3000
    )]
    webhook_max_backoff_ms: u64,
    /// Timeout of one webhook POST, in milliseconds.
    #[arg(long, env = "TG_EMULATOR_WEBHOOK_TIMEOUT_MS", default_value_t = 10_000)]
    webhook_timeout_ms: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "tg_emulator=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let config = EmulatorConfig {
        token: args.token,
        bot_username: args.bot_username,
        webhook_initial_backoff: Duration::from_millis(args.webhook_backoff_ms),
        webhook_max_backoff: Duration::from_millis(args.webhook_max_backoff_ms),
        webhook_timeout: Duration::from_millis(args.webhook_timeout_ms),
        ..EmulatorConfig::default()
    };
    let emulator = Emulator::start_with_config(&args.listen, config).await?;
    // One machine-readable line on stdout so scripts can find a port-0 server.
    println!("tg-emulator listening on {}", emulator.base_url());
    tokio::signal::ctrl_c().await?;
    emulator.shutdown().await;
    Ok(())
}
