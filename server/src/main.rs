//! `server`: the web hall and staff console, plus the operator's commands
//! (`server seed`, `server migrate`, `server close-month YYYY-MM`).
use clap::Parser;
use server::cli;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .init();
    match cli::run(cli::Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("server: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
