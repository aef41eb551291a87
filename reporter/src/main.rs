//! The `reporter` binary; everything is in the library (`polybot_reporter::cli`).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    polybot_reporter::cli::main().await
}
