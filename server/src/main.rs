//! `server`: the web hall and staff console, plus the operator's commands
//! (`server seed`, `server migrate`, `server close-month YYYY-MM`).
use clap::Parser;
use server::cli;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = cli::Cli::parse();
    // Logs in the configured format (OPENHALL_LOG_FORMAT), and the metrics recorder before
    // anything records.
    app::telemetry::init_logging();
    app::telemetry::metrics();
    match cli::run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("server: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
