use std::time::Instant;

use anyhow::{Context, Result};
use app::config::Config;
use app::domain::Period;
use app::store::db::redact;
use app::Hall;
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

/// OpenHall web hall and staff console. Configuration comes from the environment (see README).
#[derive(Parser)]
#[command(name = "server", version)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the web hall (the default).
    Serve,
    /// Bring the database schema up to date, then exit.
    Migrate,
    /// Create the fixed demo data (if missing) and, optionally, N generated subscribers.
    Seed {
        #[arg(long, default_value_t = 0)]
        subscribers: u64,
    },
    /// Close a billing month: immutable bills, points, tiers, next month's fees. Idempotent.
    CloseMonth {
        /// The month to close, YYYY-MM.
        period: String,
    },
}

async fn connect(cfg: &Config) -> Result<Hall> {
    Hall::from_config(cfg)
        .await
        .map_err(operator)
        .with_context(|| format!("cannot open the database at {}", redact(&cfg.database_url)))
}

/// An app error as an operator needs it: with the cause a subscriber would not be shown.
fn operator(e: app::Error) -> anyhow::Error {
    anyhow::anyhow!(e.operator_detail())
}

pub async fn run(cli: Cli) -> Result<()> {
    let cfg = Config::from_env()?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Migrate => {
            connect(&cfg).await?;
            println!("schema up to date ({})", redact(&cfg.database_url));
        }
        Command::Seed { subscribers } => {
            let hall = connect(&cfg).await?;
            seed(&hall, subscribers).await?;
        }
        Command::CloseMonth { period } => {
            let period = Period::parse(&period).map_err(|e| anyhow::anyhow!("{period}: {e}"))?;
            let hall = connect(&cfg).await?;
            let started = Instant::now();
            let report = hall.close_month(period).await.map_err(operator)?;
            println!(
                "closed {period}: {} bills created, {} already closed, {} billed, in {:.1?}",
                report.bills_created,
                report.bills_existing,
                report.total_billed,
                started.elapsed()
            );
        }
        Command::Serve => {
            let hall = connect(&cfg).await?;
            if cfg.demo && app::demo::is_empty(&hall).await.map_err(operator)? {
                seed(&hall, 0).await?;
            }
            crate::jobs::spawn(hall.clone());
            let handset = crate::handset::Handset::start(&cfg).await?;
            let sessions =
                crate::sessions::SessionStores::from_config(cfg.redis_url.as_deref()).await?;
            let secure = std::env::var("OPENHALL_SECURE_COOKIES").is_ok_and(|v| v == "1");
            crate::http::serve(hall, handset, sessions, secure, cfg.http_addr).await?;
        }
    }
    Ok(())
}

async fn seed(hall: &Hall, generated: u64) -> Result<()> {
    let started = Instant::now();
    if app::demo::seed_demo(hall).await.map_err(operator)? {
        println!("demo data created in {:.1?}", started.elapsed());
    } else {
        println!("demo data already present");
    }
    if generated > 0 {
        let started = Instant::now();
        let bar = ProgressBar::new(generated).with_style(
            ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_message("generating subscribers");
        app::demo::seed_generated(hall, generated, |done| bar.set_position(done))
            .await
            .map_err(operator)?;
        bar.finish();
        println!(
            "{generated} generated subscribers in {:.1?}",
            started.elapsed()
        );
    }
    let cards = app::demo::print_cards(hall, 10).await.map_err(operator)?;
    println!("recharge cards printed for this run (serial / PIN / value):");
    for c in cards {
        println!("  {} / {} / {}", c.serial, c.pin, c.value);
    }
    Ok(())
}
