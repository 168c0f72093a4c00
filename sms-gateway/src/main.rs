//! `sms-gateway`: the ESME that binds to the operator's SMSC (`OPENHALL_SMSC`) for the 10086
//! SMS business hall. It reads the same environment as `server` and shares its database.
//!
//! - `OPENHALL_SMSC=smpp://SYSTEM_ID:PASSWORD@HOST:PORT`: bind to that SMSC.
//! - Unset: bind to the built-in SMSC simulator that `server` hosts at `OPENHALL_SIM_ADDR`
//!   (default 127.0.0.1:2775), reconnecting until it is there.
//! - `sms-gateway --with-simulator`: host the simulator in this process instead (at
//!   `OPENHALL_SIM_ADDR`), for running the gateway without `server`.
//!
//! Health checks and metrics (`/healthz`, `/readyz`, `/metrics`) are served at
//! `OPENHALL_GATEWAY_HTTP_ADDR` (default 127.0.0.1:3001; `off`: not at all); when that address
//! is taken the gateway warns and runs without them.
//!
//! SIGTERM or Ctrl-C: finish the work in hand, unbind, exit 0.
use std::sync::Arc;

use anyhow::{Context, Result};
use app::config::Config;
use app::store::db::redact;
use app::Hall;
use sms_gateway::observe;
use sms_gateway::runtime::{self, CommandHandler, Gateway};
use sms_gateway::simulator::{Smsc, SmscConfig};
use sms_gateway::smpp::EsmeConfig;

const USAGE: &str = "usage: sms-gateway [--with-simulator]\n\
  Binds to OPENHALL_SMSC (smpp://SYSTEM_ID:PASSWORD@HOST:PORT), or, when it is unset, to the\n\
  built-in SMSC simulator hosted by `server` at OPENHALL_SIM_ADDR (default 127.0.0.1:2775).\n\
  Serves /healthz, /readyz and /metrics at OPENHALL_GATEWAY_HTTP_ADDR (default 127.0.0.1:3001,\n\
  `off`: none). Settings may also come from the TOML file OPENHALL_CONFIG names.\n\
  --with-simulator  host the simulator in this process (at OPENHALL_SIM_ADDR) and bind to it";

// As the server's: the gateway allocates a little for every PDU and row, from many threads.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // Logs in the configured format (OPENHALL_LOG_FORMAT), and the metrics recorder before the
    // runtime records anything.
    app::telemetry::init_logging();
    app::telemetry::metrics();
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sms-gateway: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The command set the gateway answers with.
struct Commands;

#[async_trait::async_trait]
impl CommandHandler for Commands {
    async fn handle(&self, hall: &Hall, source: &str, text: &str) -> Option<String> {
        sms_gateway::commands::handle_mo(hall, source, text).await
    }
}

async fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let with_simulator = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] => false,
        ["--with-simulator"] => true,
        ["-h"] | ["--help"] => {
            println!("{USAGE}");
            return Ok(());
        }
        _ => anyhow::bail!("unexpected arguments\n{USAGE}"),
    };
    let cfg = Config::from_env()?;
    let hall = Hall::from_config(&cfg)
        .await
        .map_err(|e| anyhow::anyhow!(e.operator_detail()))
        .with_context(|| format!("cannot open the database at {}", redact(&cfg.database_url)))?;

    let mut simulator = None;
    let mut esme_config = match (&cfg.smsc, with_simulator) {
        (Some(_), true) => {
            anyhow::bail!("--with-simulator and OPENHALL_SMSC are both given: choose one")
        }
        (Some(smsc), false) => {
            tracing::info!(host = %smsc.host, port = smsc.port, system_id = %smsc.system_id, "binding to the configured SMSC");
            EsmeConfig::new(&smsc.host, smsc.port, &smsc.system_id, &smsc.password)
        }
        (None, true) => {
            let addr = cfg.sim_addr;
            let mut sim_config =
                SmscConfig::new(runtime::SIMULATOR_SYSTEM_ID, runtime::SIMULATOR_PASSWORD);
            sim_config.bind_addr = addr;
            let sim = Smsc::start(sim_config)
                .await
                .with_context(|| format!("cannot start the SMSC simulator at {addr}"))?;
            let local = sim.local_addr();
            tracing::info!(%local, "SMSC simulator started in this process");
            simulator = Some(sim);
            EsmeConfig::new(
                &local.ip().to_string(),
                local.port(),
                runtime::SIMULATOR_SYSTEM_ID,
                runtime::SIMULATOR_PASSWORD,
            )
        }
        (None, false) => {
            let addr = cfg.sim_addr;
            tracing::info!(%addr, "no OPENHALL_SMSC: binding to the built-in SMSC simulator hosted by `server`");
            EsmeConfig::new(
                &addr.ip().to_string(),
                addr.port(),
                runtime::SIMULATOR_SYSTEM_ID,
                runtime::SIMULATOR_PASSWORD,
            )
        }
    };

    esme_config.window = cfg.smpp_window as usize;
    let gateway = Gateway::start(hall.clone(), esme_config, Arc::new(Commands));
    let observe = match cfg.gateway_http_addr {
        Some(addr) => observe::serve(addr, hall, gateway.clone()).await,
        None => None,
    };
    tracing::info!(short_code = %cfg.short_code, "sms-gateway running");
    wait_for_stop().await?;
    tracing::info!("stopping: finishing work in hand and unbinding");
    gateway.shutdown().await;
    if let Some(listening) = observe {
        listening.stop();
    }
    if let Some(sim) = simulator {
        sim.shutdown();
    }
    Ok(())
}

/// Returns on SIGTERM (how service managers stop us) or Ctrl-C.
async fn wait_for_stop() -> Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
        tokio::select! {
            _ = term.recv() => {}
            r = tokio::signal::ctrl_c() => r.context("cannot listen for Ctrl-C")?,
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .context("cannot listen for Ctrl-C")?;
    Ok(())
}
