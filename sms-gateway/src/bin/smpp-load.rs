//! `smpp-load`: an SMSC-side load generator. It listens like an SMSC, waits for a gateway to
//! bind (`OPENHALL_SMSC=smpp://loadtest:loadtest@127.0.0.1:2776 sms-gateway`), sends N
//! balance queries from M subscribers at a target rate, and reports throughput, reply latency
//! (deliver_sm → the reply's submit_sm) and lost / unanswered / duplicated commands.
//! Exit status 0 when nothing was lost, unanswered or duplicated, 1 otherwise.
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use sms_gateway::load::{self, LoadPlan};
use sms_gateway::simulator::{Smsc, SmscConfig};

const USAGE: &str = "usage: smpp-load [options]
  --listen ADDR        where to listen for the gateway's bind (127.0.0.1:2776)
  --system-id ID       the system id and password the gateway binds with (loadtest)
  --password PW        (loadtest)
  --commands N         balance queries to send (20000)
  --subscribers M      from M numbers (1000; at most 23 commands a number)
  --first K            the first number (15200000000, where `server seed --subscribers` starts)
  --rate R             commands a second; 0 = as fast as the gateway acknowledges (0)
  --senders C          deliver_sm in flight at once (512)
  --short-code S       the service number (10086)
  --no-receipts        no delivery receipts for the replies
  --drop-every SECS    drop the link every SECS seconds (a fault drill)
  --drop-for SECS      …during the first SECS seconds of the run (60)
  --reply-wait SECS    how long to wait for missing replies at the end (30)
  --give-up SECS       count an MO lost when not acknowledged for this long (120)";

struct Args {
    listen: SocketAddr,
    system_id: String,
    password: String,
    plan: LoadPlan,
    receipts: bool,
    drop_every: Option<Duration>,
    drop_for: Duration,
}

fn parse_args() -> Result<Option<Args>> {
    let mut args = Args {
        listen: "127.0.0.1:2776".parse()?,
        system_id: "loadtest".into(),
        password: "loadtest".into(),
        plan: LoadPlan {
            commands: 20_000,
            subscribers: 1_000,
            first: 152_0000_0000,
            rate: 0.0,
            senders: 512,
            short_code: "10086".into(),
            reply_wait: Duration::from_secs(30),
            give_up: Duration::from_secs(120),
        },
        receipts: true,
        drop_every: None,
        drop_for: Duration::from_secs(60),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .with_context(|| format!("{flag} needs a value\n{USAGE}"))
        };
        let secs = |v: String| -> Result<Duration> {
            Ok(Duration::from_secs_f64(
                v.parse().with_context(|| format!("{flag}: seconds"))?,
            ))
        };
        match flag.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(None);
            }
            "--listen" => args.listen = value()?.parse().context("--listen: IP:PORT")?,
            "--system-id" => args.system_id = value()?,
            "--password" => args.password = value()?,
            "--commands" => args.plan.commands = value()?.parse().context("--commands")?,
            "--subscribers" => args.plan.subscribers = value()?.parse().context("--subscribers")?,
            "--first" => args.plan.first = value()?.parse().context("--first")?,
            "--rate" => args.plan.rate = value()?.parse().context("--rate")?,
            "--senders" => args.plan.senders = value()?.parse().context("--senders")?,
            "--short-code" => args.plan.short_code = value()?,
            "--no-receipts" => args.receipts = false,
            "--drop-every" => args.drop_every = Some(secs(value()?)?),
            "--drop-for" => args.drop_for = secs(value()?)?,
            "--reply-wait" => args.plan.reply_wait = secs(value()?)?,
            "--give-up" => args.plan.give_up = secs(value()?)?,
            other => bail!("unknown option {other}\n{USAGE}"),
        }
    }
    args.plan.check().map_err(anyhow::Error::msg)?;
    Ok(Some(args))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    match run().await {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(1),
        Err(e) => {
            eprintln!("smpp-load: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run() -> Result<bool> {
    let Some(args) = parse_args()? else {
        return Ok(true);
    };
    let mut config = SmscConfig::new(&args.system_id, &args.password);
    config.bind_addr = args.listen;
    config.delivery_receipts = args.receipts;
    config.response_timeout = Duration::from_secs(10);
    config.spread_mo = true;
    config.unread_capacity = args.plan.commands * 2 + 10_000;
    let sim = Smsc::start(config)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let plan = &args.plan;
    println!(
        "smpp-load: listening on {}; {} commands from {} numbers ({}…), rate {}, receipts {}",
        sim.local_addr(),
        plan.commands,
        plan.subscribers,
        plan.first,
        if plan.rate > 0.0 {
            format!("{}/s", plan.rate)
        } else {
            "unlimited".into()
        },
        if args.receipts { "on" } else { "off" },
    );
    println!(
        "smpp-load: waiting for a gateway to bind as {}",
        args.system_id
    );
    let dropper = args.drop_every.map(|every| {
        let sim = sim.clone();
        let drop_for = args.drop_for;
        tokio::spawn(async move {
            if !sim.wait_bound(Duration::from_secs(3600)).await {
                return 0;
            }
            let until = tokio::time::Instant::now() + drop_for;
            let mut drops = 0u32;
            loop {
                tokio::time::sleep(every).await;
                if tokio::time::Instant::now() >= until {
                    return drops;
                }
                sim.drop_connection();
                drops += 1;
            }
        })
    });
    let report = load::run(&sim, plan).await.map_err(anyhow::Error::msg)?;
    if let Some(d) = dropper {
        d.abort();
    }
    println!("binds: {}", sim.bind_count());
    println!("{}", report.render());
    sim.shutdown();
    Ok(report.clean())
}
