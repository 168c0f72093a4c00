//! End-to-end MO throughput benchmark (issue 4): a fresh SQLite database, M generated
//! subscribers, the SMSC simulator and the gateway runtime with the real command handler; N
//! balance queries sent from the simulator as fast as it allows, until N replies are back.
//!
//! ```text
//! cargo run --release -p sms-gateway --example mo_throughput -- --commands 20000 --subscribers 1000
//! ```
//!
//! Options: `--commands N` (20000), `--subscribers M` (1000; keep N/M ≤ 23 and ≤ 30, the
//! per-number limit and the distinct texts available), `--senders C` (512, deliver_sm in flight
//! at once), `--window W` (64, the link's submit window), `--no-receipts`.
//!
//! Each number's texts are distinct spellings of the balance query (CXYE in any case, YE,
//! 余额 …): the same text from the same number within 20 s is taken for a redelivery.
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use app::config::Config;
use app::Hall;
use sms_gateway::load::balance_text;
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

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
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
    // A fresh database: the generated numbers start at 152 0000 0000.
    let numbers: Vec<String> = (0..subscribers as u64)
        .map(|i| (152_0000_0000u64 + i).to_string())
        .collect();
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

    // When each number's commands went out, oldest first: replies come back in order per
    // number, so the reply's latency is measured against the oldest unanswered command.
    let sent_at: Arc<Mutex<HashMap<String, VecDeque<Instant>>>> = Arc::default();
    let collector = {
        let sim = sim.clone();
        let sent_at = sent_at.clone();
        tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(commands);
            let mut last = Instant::now();
            while latencies.len() < commands {
                match sim.next_mt(Duration::from_secs(30)).await {
                    Some(mt) => {
                        let at = sent_at
                            .lock()
                            .unwrap()
                            .get_mut(&mt.destination)
                            .and_then(|q| q.pop_front());
                        if let Some(at) = at {
                            latencies.push(at.elapsed());
                        }
                        last = Instant::now();
                    }
                    None => break,
                }
            }
            (latencies, last)
        })
    };

    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..senders {
        let sim = sim.clone();
        let next = next.clone();
        let numbers = numbers.clone();
        let sent_at = sent_at.clone();
        tasks.push(tokio::spawn(async move {
            let mut acks = Vec::new();
            let mut failed = 0usize;
            loop {
                let j = next.fetch_add(1, Ordering::Relaxed);
                if j >= commands {
                    break;
                }
                let number = &numbers[j % numbers.len()];
                let text = balance_text(j / numbers.len());
                let t = Instant::now();
                sent_at
                    .lock()
                    .unwrap()
                    .entry(number.clone())
                    .or_default()
                    .push_back(t);
                match sim.send_mo(number, "10086", &text).await {
                    Ok(0) => acks.push(t.elapsed()),
                    _ => failed += 1,
                }
            }
            (acks, failed)
        }));
    }
    let mut acks = Vec::with_capacity(commands);
    let mut failed = 0;
    for t in tasks {
        let (a, f) = t.await?;
        acks.extend(a);
        failed += f;
    }
    let sent_in = start.elapsed();
    let (mut replies, last) = collector.await?;
    let total = last.duration_since(start);
    acks.sort();
    replies.sort();
    let stats = gateway.stats();
    println!(
        "{commands} commands from {subscribers} numbers, {senders} senders, window {window}, receipts {}",
        if receipts { "on" } else { "off" }
    );
    println!(
        "MO accepted: {} ({} not accepted) in {:.2} s = {:.0} MO/s; ack latency p50 {} p99 {}",
        acks.len(),
        failed,
        sent_in.as_secs_f64(),
        acks.len() as f64 / sent_in.as_secs_f64(),
        ms(percentile(&acks, 0.5)),
        ms(percentile(&acks, 0.99)),
    );
    println!(
        "replies: {} in {:.2} s = {:.0} commands/s end to end; reply latency p50 {} p99 {}",
        replies.len(),
        total.as_secs_f64(),
        replies.len() as f64 / total.as_secs_f64(),
        ms(percentile(&replies, 0.5)),
        ms(percentile(&replies, 0.99)),
    );
    println!("gateway: {stats:?}");
    gateway.shutdown().await;
    sim.shutdown();
    Ok(())
}
