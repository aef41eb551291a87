//! The `reporter` binary; everything is in the library (`reporter::cli`).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    reporter::cli::main().await
}
