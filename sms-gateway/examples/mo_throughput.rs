//! End-to-end MO throughput benchmark in one process (issue 4): a fresh SQLite database, M
//! generated subscribers, the SMSC simulator and the gateway runtime with the real command
//! handler; N balance queries sent by the load driver of `smpp-load` (`sms_gateway::load`) as
//! fast as they are acknowledged, until N replies are back. One process makes it easy to
//! profile; `bin/smpp-bench` measures the real binaries.
//!
//! ```text
//! cargo run --release -p sms-gateway --example mo_throughput -- --commands 20000 --subscribers 1000
//! ```
//!
//! Options: `--commands N` (20000), `--subscribers M` (1000; keep N/M ≤ 23 and ≤ 30, the
//! per-number limit and the distinct texts available), `--senders C` (512, deliver_sm in flight
//! at once), `--window W` (64, the link's submit window), `--no-receipts`.
use std::sync::Arc;
use std::time::{Duration, Instant};

use app::config::Config;
use app::Hall;
use sms_gateway::load::{self, LoadPlan};
use sms_gateway::runtime::{self, CommandHandler, Gateway, RuntimeOptions};
use sms_gateway::simulator::{Smsc, SmscConfig};
use sms_gateway::smpp::EsmeConfig;

struct Commands;

#[async_trait::async_trait]
impl CommandHandler for Commands {
    async fn handle(&self, hall: &Hall, source: &str, text: &str) -> Option<String> {
        sms_gateway::commands::handle_mo(hall, source, text).await
    }
}

fn arg(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().expect("a number"))
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let commands = arg(&args, "--commands", 20_000);
    let subscribers = arg(&args, "--subscribers", 1_000);
    let senders = arg(&args, "--senders", 512);
    let window = arg(&args, "--window", 64);
    let receipts = !args.iter().any(|a| a == "--no-receipts");
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "error".into()),
        )
        .init();

    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let cfg = Config::from_lookup(|k| (k == "DATABASE_URL").then(|| url.clone()))?;
    let hall = Hall::from_config(&cfg)
        .await
        .map_err(|e| anyhow::anyhow!(e.operator_detail()))?;
    let t = Instant::now();
    app::demo::seed_generated(&hall, subscribers as u64, |_| {})
        .await
        .map_err(|e| anyhow::anyhow!(e.operator_detail()))?;
    println!(
        "seeded {subscribers} subscribers in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let mut sim_config = SmscConfig::new(runtime::SIMULATOR_SYSTEM_ID, runtime::SIMULATOR_PASSWORD);
    sim_config.delivery_receipts = receipts;
    sim_config.response_timeout = Duration::from_secs(60);
    let sim = Smsc::start(sim_config).await?;
    let addr = sim.local_addr();
    let mut esme = EsmeConfig::new(
        &addr.ip().to_string(),
        addr.port(),
        runtime::SIMULATOR_SYSTEM_ID,
        runtime::SIMULATOR_PASSWORD,
    );
    esme.window = window;
    let options = RuntimeOptions::new(&hall.settings().short_code);
    let gateway = Gateway::start_with(hall.clone(), esme, Arc::new(Commands), options, |i| i);
    anyhow::ensure!(sim.wait_bound(Duration::from_secs(10)).await, "not bound");

    let plan = LoadPlan {
        commands,
        subscribers,
        // A fresh database: the generated numbers start at 152 0000 0000.
        first: 152_0000_0000,
        rate: 0.0,
        senders,
        short_code: hall.settings().short_code.clone(),
        reply_wait: Duration::from_secs(30),
        give_up: Duration::from_secs(60),
    };
    let report = load::run(&sim, &plan).await.map_err(anyhow::Error::msg)?;
    println!(
        "{commands} commands from {subscribers} numbers, {senders} senders, window {window}, receipts {}",
        if receipts { "on" } else { "off" }
    );
    println!("{}", report.render());
    println!("gateway: {:?}", gateway.stats());
    gateway.shutdown().await;
    sim.shutdown();
    Ok(())
}
