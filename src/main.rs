use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    roster::cli::run(roster::cli::Cli::parse()).await
}
