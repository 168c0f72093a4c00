//! `sms-gateway`: the ESME that binds to the operator's SMSC (`OPENHALL_SMSC`) for the 10086
//! SMS business hall. It reads the same environment as `server` and shares its database.
use anyhow::{Context, Result};
use app::config::Config;
use app::store::db::redact;
use app::Hall;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .init();
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sms-gateway: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<()> {
    let cfg = Config::from_env()?;
    let _hall = Hall::from_config(&cfg)
        .await
        .map_err(|e| anyhow::anyhow!(e.operator_detail()))
        .with_context(|| format!("cannot open the database at {}", redact(&cfg.database_url)))?;
    match &cfg.smsc {
        Some(smsc) => {
            tracing::info!(host = %smsc.host, port = smsc.port, system_id = %smsc.system_id, "SMSC configured")
        }
        None => tracing::info!("no OPENHALL_SMSC: the built-in SMSC simulator will be used"),
    }
    // The SMPP session (issue 4) is not built yet: say so plainly rather than pretend to serve.
    anyhow::bail!(
        "the SMPP link is not implemented yet (issue 4); the database is migrated and ready"
    )
}
