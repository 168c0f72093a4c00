//! The gateway runtime (issue 4): everything between the SMPP link and the command handler.
//!
//! ```text
//!  SMSC ──deliver_sm──▶ Inbox (MoHandler) ──▶ Writer ──▶ sms_inbox (claimed) ──handed──▶ Worker
//!       ◀─deliver_sm_resp─┘ (only after the round holding the MO has committed)          │
//!                                               CommandHandler::handle ◀───────────────────┘
//!                                     Writer ◀── completed (id, reply)
//!                                       └──▶ outbox (replies claimed) ──handed──▶ Drainer
//!  SMSC ◀──submit_sm── Drainer (also claims from the outbox: codes, notices, retries)
//! ```
//!
//! - The [`writer`] writes all of the gateway's changes in rounds, one transaction each, and
//!   hands what it stored straight to the loop that handles it.
//!
//! - The [`inbox::Inbox`] acknowledges an MO only once the hall has stored it (a redelivery the
//!   hall recognises is acknowledged too); when storing fails the SMSC is told
//!   ESME_RX_T_APPN and delivers it again, so nothing is lost. Receipts go to the outbox.
//! - The [`worker`] takes stored MO, runs the command handler, and completes each MO with its
//!   reply in one transaction. Only MO addressed to the short code (or a sub-address of it,
//!   e.g. `1008601`) are commands; MO to any other number the SMSC routes to us are stored and
//!   completed without a reply.
//! - The [`drainer`] takes due outbox messages and submits them, up to the link's window at
//!   once (messages to one number in order), and records sent / retry / failed.
//!
//! Both loops wake on a [`Notify`] (an MO stored here, a reply queued here) and also poll
//! every [`RuntimeOptions::poll`]: other gateway instances and the web server write the same
//! tables. All coordination between instances goes through the database's claims.
pub(crate) use crate::smpp::masked;

pub mod drainer;
mod handoff;
pub mod inbox;
pub mod worker;
pub mod writer;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use app::Hall;
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::smpp::esme::LinkStats;
use crate::smpp::{Esme, EsmeConfig, EsmeHandle, MoHandler};

pub use inbox::Inbox;

/// Where `server` hosts the built-in SMSC simulator when no `OPENHALL_SMSC` is configured,
/// unless `OPENHALL_SIM_ADDR` says otherwise.
pub const SIMULATOR_ADDR_DEFAULT: &str = "127.0.0.1:2775";
/// The variable that moves the built-in simulator (`IP:PORT`).
pub const SIMULATOR_ADDR_ENV: &str = "OPENHALL_SIM_ADDR";
/// The credentials the built-in simulator accepts and the gateway binds with.
pub const SIMULATOR_SYSTEM_ID: &str = "openhall";
pub const SIMULATOR_PASSWORD: &str = "openhall";

/// The built-in simulator's address: `OPENHALL_SIM_ADDR`, else [`SIMULATOR_ADDR_DEFAULT`].
pub fn simulator_addr_from_env() -> anyhow::Result<SocketAddr> {
    let raw = std::env::var(SIMULATOR_ADDR_ENV)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| SIMULATOR_ADDR_DEFAULT.to_owned());
    raw.parse()
        .map_err(|_| anyhow::anyhow!("{SIMULATOR_ADDR_ENV} is invalid: expected IP:PORT"))
}

/// Answers one subscriber message. `source` is the sender as stored (the bare 11 digits when
/// it is a mainland mobile number), `text` the decoded message. `None` means no reply.
#[async_trait::async_trait]
pub trait CommandHandler: Send + Sync + 'static {
    async fn handle(&self, hall: &Hall, source: &str, text: &str) -> Option<String>;
}

/// The runtime's knobs; [`RuntimeOptions::new`] gives production values.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// The service number: replies come from it, and MO to it (or to a number starting with
    /// it) are commands.
    pub short_code: String,
    /// How many stored MO the worker claims at once.
    pub mo_batch: i64,
    /// How many outbox messages the drainer claims at once.
    pub outbox_batch: i64,
    /// How often both loops look for work nobody woke them for.
    pub poll: Duration,
    /// Longest a command may run; beyond it the MO is left to be claimed again (the hall's
    /// claim timeout is a minute, so this stays well below it).
    pub handler_timeout: Duration,
    /// After this many panics or timeouts on one MO it is completed without a reply, so that
    /// one poisonous message cannot come back for ever.
    pub max_handler_failures: u32,
    /// How long shutdown waits for the loops to finish the work in hand before unbinding.
    pub shutdown_timeout: Duration,
    /// How long a delivery receipt whose message id is not (yet) recorded keeps being
    /// matched: receipts may overtake the record of a multipart message's sending.
    pub receipt_wait: Duration,
}

impl RuntimeOptions {
    pub fn new(short_code: &str) -> Self {
        RuntimeOptions {
            short_code: short_code.to_owned(),
            mo_batch: 256,
            outbox_batch: 256,
            poll: Duration::from_millis(200),
            handler_timeout: Duration::from_secs(30),
            max_handler_failures: 3,
            shutdown_timeout: Duration::from_secs(10),
            receipt_wait: Duration::from_secs(10),
        }
    }
}

/// The runtime's own counters (the link's are in [`LinkStats`]).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub mo_stored: AtomicU64,
    pub mo_redelivered: AtomicU64,
    pub mo_refused: AtomicU64,
    pub mo_handled: AtomicU64,
    pub mo_not_for_us: AtomicU64,
    pub replies_queued: AtomicU64,
    pub handler_failures: AtomicU64,
    pub receipts_matched: AtomicU64,
    pub receipts_unmatched: AtomicU64,
    pub mt_sent: AtomicU64,
    pub mt_retry_later: AtomicU64,
    pub mt_failed: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// A snapshot of the gateway's state, for logs, health checks and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GatewayStats {
    pub bound: bool,
    pub link: LinkStats,
    /// MO stored in the inbox (and so acknowledged).
    pub mo_stored: u64,
    /// MO the hall recognised as a redelivery of one already stored (acknowledged, not
    /// stored again).
    pub mo_redelivered: u64,
    /// MO answered ESME_RX_T_APPN because storing failed.
    pub mo_refused: u64,
    /// Stored MO completed by the worker (with or without a reply).
    pub mo_handled: u64,
    /// Of those, MO not addressed to the short code (never answered).
    pub mo_not_for_us: u64,
    /// Replies the command handler produced and the hall queued.
    pub replies_queued: u64,
    /// Command handler panics and timeouts.
    pub handler_failures: u64,
    /// Delivery receipts that matched a message in the outbox.
    pub receipts_matched: u64,
    /// Delivery receipts for message ids the outbox does not know.
    pub receipts_unmatched: u64,
    /// Outbox messages the SMSC accepted in full.
    pub mt_sent: u64,
    /// Outbox messages put back for a later attempt (link down, throttled, timed out).
    pub mt_retry_later: u64,
    /// Outbox messages the SMSC rejected for good.
    pub mt_failed: u64,
}

/// Starts gateways.
#[derive(Debug)]
pub struct Gateway;

impl Gateway {
    /// Binds to the SMSC and starts the worker and the drainer, with production options and
    /// the hall's configured short code.
    pub fn start(
        hall: Hall,
        esme_config: EsmeConfig,
        handler: Arc<dyn CommandHandler>,
    ) -> GatewayHandle {
        let options = RuntimeOptions::new(&hall.settings().short_code);
        Self::start_with(hall, esme_config, handler, options, |inbox| inbox)
    }

    /// Like [`Gateway::start`] with explicit options. `wrap` receives the inbox (the SMPP
    /// link's [`MoHandler`]) and returns what the link should call: a caller can observe or
    /// delay deliveries (the tests lose a deliver_sm_resp this way); pass `|inbox| inbox`.
    pub fn start_with(
        hall: Hall,
        esme_config: EsmeConfig,
        handler: Arc<dyn CommandHandler>,
        options: RuntimeOptions,
        wrap: impl FnOnce(Arc<Inbox>) -> Arc<dyn MoHandler>,
    ) -> GatewayHandle {
        let counters = Arc::new(Counters::default());
        let mo_arrived = Arc::new(Notify::new());
        let outbox_ready = Arc::new(Notify::new());
        let stop_worker = CancellationToken::new();
        let stop_drainer = CancellationToken::new();
        let window = esme_config.window.max(1);

        // Bounded: when writing falls behind, the link's handlers wait here (and the SMSC's
        // window fills) instead of memory growing.
        let (to_store, stores) = mpsc::channel(writer::MO_BATCH * 8);
        let (to_writer, jobs) = mpsc::channel(writer::JOBS_PER_ROUND * 4);
        let (to_worker, handed_mo) = handoff::handoff();
        let (to_drainer, handed_mt) = handoff::handoff();
        let inbox = Arc::new(Inbox::new(
            to_store,
            to_writer.clone(),
            counters.clone(),
            options.receipt_wait,
        ));
        let esme = Esme::connect(esme_config, wrap(inbox));
        let writer = writer::Writer {
            hall: hall.clone(),
            stores,
            jobs,
            to_worker,
            to_drainer,
            bound: esme.bound_watch(),
            mo_arrived: mo_arrived.clone(),
            outbox_ready: outbox_ready.clone(),
            counters: counters.clone(),
            options: options.clone(),
        };
        let writes = writer::spawn(writer);

        let worker = worker::Worker {
            hall: hall.clone(),
            writes: writes.clone(),
            handler,
            options: options.clone(),
            mo_arrived,
            handed: handed_mo,
            to_writer: to_writer.clone(),
            counters: counters.clone(),
            stop: stop_worker.clone(),
        };
        let drainer = drainer::Drainer {
            hall,
            writes,
            esme: esme.clone(),
            options,
            window,
            outbox_ready,
            handed: handed_mt,
            to_writer,
            counters: counters.clone(),
            stop: stop_drainer.clone(),
        };
        let tasks = Tasks {
            worker: tokio::spawn(worker.run()),
            drainer: tokio::spawn(drainer.run()),
            link_log: tokio::spawn(log_link_state(esme.bound_watch(), stop_drainer.clone())),
        };
        GatewayHandle {
            esme,
            counters,
            stop_worker,
            stop_drainer,
            tasks: Arc::new(Mutex::new(Some(tasks))),
        }
    }
}

struct Tasks {
    worker: JoinHandle<()>,
    drainer: JoinHandle<()>,
    link_log: JoinHandle<()>,
}

/// Controls a running gateway. Cheap to clone.
#[derive(Clone)]
pub struct GatewayHandle {
    esme: EsmeHandle,
    counters: Arc<Counters>,
    stop_worker: CancellationToken,
    stop_drainer: CancellationToken,
    tasks: Arc<Mutex<Option<Tasks>>>,
}

impl std::fmt::Debug for GatewayHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayHandle")
            .field("esme", &self.esme)
            .field("stopping", &self.stop_worker.is_cancelled())
            .finish()
    }
}

impl GatewayHandle {
    /// The SMPP link.
    pub fn esme(&self) -> &EsmeHandle {
        &self.esme
    }

    /// Whether the SMPP link is bound right now.
    pub fn is_bound(&self) -> bool {
        self.esme.is_bound()
    }

    /// A watch of the link's bound state.
    pub fn bound_watch(&self) -> watch::Receiver<bool> {
        self.esme.bound_watch()
    }

    pub fn stats(&self) -> GatewayStats {
        let c = &*self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        GatewayStats {
            bound: self.esme.is_bound(),
            link: self.esme.stats(),
            mo_stored: get(&c.mo_stored),
            mo_redelivered: get(&c.mo_redelivered),
            mo_refused: get(&c.mo_refused),
            mo_handled: get(&c.mo_handled),
            mo_not_for_us: get(&c.mo_not_for_us),
            replies_queued: get(&c.replies_queued),
            handler_failures: get(&c.handler_failures),
            receipts_matched: get(&c.receipts_matched),
            receipts_unmatched: get(&c.receipts_unmatched),
            mt_sent: get(&c.mt_sent),
            mt_retry_later: get(&c.mt_retry_later),
            mt_failed: get(&c.mt_failed),
        }
    }

    /// Stops gracefully: the worker handles the MO already stored (they were acknowledged),
    /// then the drainer sends what is due (their replies among it), each bounded by
    /// [`RuntimeOptions::shutdown_timeout`] — what is left stays for the next gateway (a claim
    /// in flight is taken over when it expires) — then the link unbinds. Safe to call twice.
    pub async fn shutdown(&self) {
        let tasks = self.tasks.lock().unwrap().take();
        if let Some(tasks) = tasks {
            self.stop_worker.cancel();
            stop_task("MO worker", tasks.worker).await;
            self.stop_drainer.cancel();
            stop_task("outbox drainer", tasks.drainer).await;
            stop_task("link log", tasks.link_log).await;
        }
        self.esme.shutdown().await;
        tracing::info!("gateway stopped");
    }
}

/// Waits for a loop that was told to stop. The loops bound their own work; this is a last
/// resort against a stuck one.
async fn stop_task(name: &str, mut task: JoinHandle<()>) {
    if tokio::time::timeout(Duration::from_secs(30), &mut task)
        .await
        .is_err()
    {
        tracing::warn!(
            loop_name = name,
            "a gateway loop did not stop in time; aborting it"
        );
        task.abort();
    }
}

/// Warns when the link goes down (the link itself logs each bind and each session's end at
/// info; an outage deserves a warning operators can alert on).
async fn log_link_state(mut bound: watch::Receiver<bool>, stop: CancellationToken) {
    let mut was = *bound.borrow_and_update();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            changed = bound.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
        let now = *bound.borrow_and_update();
        if was && !now {
            tracing::warn!("SMPP link down; reconnecting");
        }
        was = now;
    }
}

/// Whether an MO sent to `destination` is a command for the service number `short_code`:
/// the number itself or a sub-address of it (`1008601`). Other numbers the SMSC routes to us
/// are not commands.
pub fn is_for_short_code(destination: &str, short_code: &str) -> bool {
    let d = destination.trim();
    !short_code.is_empty() && d.starts_with(short_code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_short_code_and_its_sub_addresses_are_ours() {
        assert!(is_for_short_code("10086", "10086"));
        assert!(is_for_short_code("1008601", "10086"));
        assert!(!is_for_short_code("10010", "10086"));
        assert!(!is_for_short_code("1008", "10086"));
        assert!(!is_for_short_code("", "10086"));
    }

    #[test]
    fn senders_are_masked_in_logs() {
        assert_eq!(masked("13800138000"), "138****8000");
        assert_eq!(masked("+8613800138000"), "138****8000");
        assert_eq!(masked("ALERT1234"), "AL****34");
        assert_eq!(masked("123"), "****");
    }

    #[test]
    fn the_simulator_defaults_parse() {
        let addr: SocketAddr = SIMULATOR_ADDR_DEFAULT.parse().unwrap();
        assert_eq!(addr.port(), 2775);
        assert!(SIMULATOR_SYSTEM_ID.len() <= 15 && SIMULATOR_PASSWORD.len() <= 8);
    }
}
