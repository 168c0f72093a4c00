//! The ESME: our side of the SMPP 3.4 link, bound as a transceiver to the SMSC.
//!
//! [`Esme::connect`] starts a supervisor task that connects, binds, runs the session and,
//! whenever the session ends for any reason other than [`EsmeHandle::shutdown`], reconnects
//! with exponential back-off (`backoff_initial` doubling to `backoff_max`, forever).
//!
//! In a session:
//! - enquire_link every `enquire_interval`; no answer within `response_timeout` means the
//!   link is dead: it is dropped and re-established.
//! - The SMSC's enquire_link is answered; its unbind is answered with unbind_resp, then the
//!   link is closed and re-bound.
//! - MO (deliver_sm): the text is decoded and, for a concatenated message, collected until
//!   complete. The [`MoHandler`] is called once per complete message, and the deliver_sm_resp
//!   is sent only after it returns: `Accept` → ESME_ROK, `TemporaryFailure` → ESME_RX_T_APPN
//!   so that the SMSC delivers it again. The parts before the last are acknowledged as soon as
//!   they are buffered (in memory, across reconnects): if the process dies in between, those
//!   parts are lost and the message cannot complete — the SMSC only redelivers what was not
//!   acknowledged. An MO that cannot be decoded is answered ESME_RX_P_APPN (redelivery cannot
//!   help). Handlers run in their own tasks, so a slow handler never stalls the link; a
//!   handler that panics counts as a temporary failure.
//! - Delivery receipts (esm_class type 0x04) go to [`MoHandler::on_receipt`], acknowledged
//!   the same way.
//! - MT: [`EsmeHandle::submit`] encodes and segments the text and sends each part as a
//!   submit_sm, at most `window` outstanding across all callers. ESME_RTHROTTLED and
//!   ESME_RMSGQFUL are retried after a back-off (doubling from `throttle_backoff`, also pausing
//!   other submits) up to `throttle_retries` times. If the link drops before a part is answered,
//!   the part is sent again once the link is back (so it may reach the handset twice — SMPP
//!   offers no better); if the link is not up within `link_wait`, submit fails with
//!   [`SubmitError::NotBound`] for the caller to retry later.
//! - [`EsmeHandle::shutdown`] lets running handlers finish (bounded), sends unbind, waits for
//!   unbind_resp (bounded) and stops reconnecting.
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures::{FutureExt, SinkExt, StreamExt};
use rusmpp::pdus::{BindTransceiver, DeliverSm, DeliverSmResp};
use rusmpp::types::COctetString;
use rusmpp::values::{InterfaceVersion, Npi, Ton};
use rusmpp::{Command, CommandStatus, Pdu};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::{sleep, sleep_until, timeout, Instant};
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;

use super::frame::{self, Inbound, Outgoing, Sequence, SmppCodec};
use super::reassembly::{Added, Reassembler};
use super::text::{decode_mo, encode_mt, Segment};
use super::udh::ConcatInfo;
use super::{receipt, status};

/// How to reach and behave towards the SMSC.
#[derive(Debug, Clone)]
pub struct EsmeConfig {
    pub host: String,
    pub port: u16,
    /// At most 15 characters (SMPP's limit).
    pub system_id: String,
    /// At most 8 characters (SMPP's limit).
    pub password: String,
    /// Sent in the bind; usually empty.
    pub system_type: String,
    /// Most submit_sm awaiting their response at once.
    pub window: usize,
    /// Time between our enquire_link requests.
    pub enquire_interval: Duration,
    /// How long to wait for any response (bind, enquire_link, submit_sm) and for the TCP
    /// connection itself.
    pub response_timeout: Duration,
    /// First reconnection delay; doubles after each failed attempt up to `backoff_max`.
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// First delay after ESME_RTHROTTLED / ESME_RMSGQFUL; doubles up to `backoff_max`.
    pub throttle_backoff: Duration,
    /// How many throttled answers one segment may get before submit gives up.
    pub throttle_retries: u32,
    /// How long submit waits for the link to be bound before failing with NotBound.
    pub link_wait: Duration,
    /// How long the parts of an incomplete concatenated MO are kept.
    pub reassembly_timeout: Duration,
    /// Ask the SMSC for a delivery receipt for every segment.
    pub request_receipts: bool,
    /// How long shutdown waits for running handlers, and then for unbind_resp.
    pub unbind_timeout: Duration,
}

impl EsmeConfig {
    /// Production defaults: window 10, enquire_link every 30 s, 10 s response timeout,
    /// reconnect from 100 ms doubling to 30 s, throttling retried from 1 s up to 10 times,
    /// submit waits 10 s for the link, MO parts kept 10 minutes, receipts requested.
    pub fn new(host: &str, port: u16, system_id: &str, password: &str) -> Self {
        EsmeConfig {
            host: host.to_owned(),
            port,
            system_id: system_id.to_owned(),
            password: password.to_owned(),
            system_type: String::new(),
            window: 10,
            enquire_interval: Duration::from_secs(30),
            response_timeout: Duration::from_secs(10),
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(30),
            throttle_backoff: Duration::from_secs(1),
            throttle_retries: 10,
            link_wait: Duration::from_secs(10),
            reassembly_timeout: Duration::from_secs(600),
            request_receipts: true,
            unbind_timeout: Duration::from_secs(3),
        }
    }
}

/// A complete message from a subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingMo {
    /// The subscriber's number as the SMSC gave it.
    pub source: String,
    /// The service number it was sent to (e.g. 10086).
    pub destination: String,
    pub text: String,
    /// data_coding of the (last) part.
    pub data_coding: u8,
    /// 1, or how many parts it was reassembled from.
    pub parts: u8,
    /// The sender's concatenation reference, for a reassembled message.
    pub concat_reference: Option<u16>,
    /// sequence_number of the deliver_sm that completed it (unique per session only).
    pub sequence_number: u32,
    pub received_at: SystemTime,
}

/// A delivery receipt for an MT segment we submitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReceipt {
    /// The message id the SMSC returned in submit_sm_resp (from the receipted_message_id
    /// TLV, else the text's `id:`); empty if the SMSC gave neither.
    pub message_id: String,
    /// DELIVRD, EXPIRED, DELETED, UNDELIV, ACCEPTD, UNKNOWN, REJECTD or ENROUTE.
    pub stat: String,
    pub err: Option<String>,
    /// The handset the MT went to.
    pub source: String,
    /// Our address the MT came from.
    pub destination: String,
    /// The receipt text as received.
    pub text: String,
}

impl DeliveryReceipt {
    /// Whether the SMSC reports the segment delivered.
    pub fn delivered(&self) -> bool {
        self.stat.eq_ignore_ascii_case("DELIVRD")
    }
}

/// What became of an MO or a receipt in the handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoVerdict {
    /// Safely stored: acknowledge (ESME_ROK).
    Accept,
    /// Could not be stored now: ask the SMSC to deliver it again (ESME_RX_T_APPN).
    TemporaryFailure,
}

/// Receives what the SMSC delivers. Called from its own task per message; the answer to the
/// SMSC waits for the returned verdict, so store before returning `Accept`.
#[async_trait::async_trait]
pub trait MoHandler: Send + Sync + 'static {
    /// A complete (reassembled) subscriber message.
    async fn on_mo(&self, mo: IncomingMo) -> MoVerdict;

    /// A delivery receipt. The default accepts and ignores it.
    async fn on_receipt(&self, receipt: DeliveryReceipt) -> MoVerdict {
        let _ = receipt;
        MoVerdict::Accept
    }
}

/// Why a submit failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    #[error("the SMPP link is not bound")]
    NotBound,
    #[error("the SMPP link kept dropping before the SMSC answered")]
    LinkLost,
    #[error("the SMSC did not answer submit_sm in time")]
    Timeout,
    #[error("the SMSC kept throttling (status {status:#x}) after {attempts} attempts")]
    Throttled { status: u32, attempts: u32 },
    #[error("the SMSC rejected part {part} with status {status:#x}")]
    Rejected { status: u32, part: usize },
    #[error("the ESME is shutting down")]
    ShuttingDown,
}

/// Link counters, for logs and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Successful binds (1 + reconnections).
    pub binds: u64,
    /// Segments the SMSC accepted.
    pub segments_submitted: u64,
    /// Throttled answers received.
    pub throttled: u64,
    /// Complete MO messages handed to the handler.
    pub mo_received: u64,
    /// Delivery receipts handed to the handler.
    pub receipts_received: u64,
}

/// Starts ESMEs.
#[derive(Debug)]
pub struct Esme;

impl Esme {
    /// Starts connecting in the background (call inside a tokio runtime) and returns at once.
    pub fn connect(config: EsmeConfig, handler: Arc<dyn MoHandler>) -> EsmeHandle {
        let (bound_tx, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            window: Semaphore::new(config.window.max(1)),
            reassembler: Mutex::new(Reassembler::new(config.reassembly_timeout)),
            config,
            handler,
            session: Mutex::new(None),
            bound_tx,
            shutdown: CancellationToken::new(),
            throttled_until: Mutex::new(None),
            handlers_running: AtomicUsize::new(0),
            stats: Stats::default(),
            supervisor: Mutex::new(None),
        });
        let task = tokio::spawn(supervise(shared.clone()));
        *shared.supervisor.lock().unwrap() = Some(task);
        EsmeHandle { shared }
    }
}

/// Controls a running ESME. Cheap to clone.
#[derive(Clone)]
pub struct EsmeHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for EsmeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EsmeHandle")
            .field("host", &self.shared.config.host)
            .field("port", &self.shared.config.port)
            .field("bound", &self.is_bound())
            .finish()
    }
}

impl EsmeHandle {
    /// Whether the link is bound right now.
    pub fn is_bound(&self) -> bool {
        *self.shared.bound_tx.borrow()
    }

    /// Waits until the link is bound; false if the time ran out.
    pub async fn wait_bound(&self, within: Duration) -> bool {
        let mut rx = self.shared.bound_tx.subscribe();
        timeout(within, rx.wait_for(|b| *b))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// A watch of the bound state (true while bound), for metrics and health checks.
    pub fn bound_watch(&self) -> watch::Receiver<bool> {
        self.shared.bound_tx.subscribe()
    }

    pub fn stats(&self) -> LinkStats {
        let s = &self.shared.stats;
        LinkStats {
            binds: s.binds.load(Ordering::Relaxed),
            segments_submitted: s.segments_submitted.load(Ordering::Relaxed),
            throttled: s.throttled.load(Ordering::Relaxed),
            mo_received: s.mo_received.load(Ordering::Relaxed),
            receipts_received: s.receipts_received.load(Ordering::Relaxed),
        }
    }

    /// Sends `text` from `source` to `destination`, segmented as needed, and returns the
    /// SMSC's message id for each part once all are accepted.
    pub async fn submit(
        &self,
        destination: &str,
        source: &str,
        text: &str,
    ) -> Result<Vec<String>, SubmitError> {
        self.submit_segments(destination, source, &encode_mt(text))
            .await
    }

    /// Sends ready-made segments (see [`encode_mt`]) in order.
    pub async fn submit_segments(
        &self,
        destination: &str,
        source: &str,
        segments: &[Segment],
    ) -> Result<Vec<String>, SubmitError> {
        let mut ids = Vec::with_capacity(segments.len());
        for (i, segment) in segments.iter().enumerate() {
            ids.push(self.submit_one(destination, source, segment, i + 1).await?);
        }
        Ok(ids)
    }

    async fn submit_one(
        &self,
        destination: &str,
        source: &str,
        segment: &Segment,
        part: usize,
    ) -> Result<String, SubmitError> {
        let shared = &self.shared;
        let config = &shared.config;
        let mut throttled = 0u32;
        let mut lost = 0u32;
        let mut backoff = config.throttle_backoff;
        loop {
            if shared.shutdown.is_cancelled() {
                return Err(SubmitError::ShuttingDown);
            }
            // Wait out a throttling pause (ours or another submit's); shutdown cuts it short.
            let pause = *shared.throttled_until.lock().unwrap();
            if let Some(until) = pause {
                tokio::select! {
                    _ = shared.shutdown.cancelled() => return Err(SubmitError::ShuttingDown),
                    _ = sleep_until(until) => {}
                }
            }
            let link = self
                .wait_link(config.link_wait)
                .await
                .ok_or(SubmitError::NotBound)?;
            let permit = shared
                .window
                .acquire()
                .await
                .map_err(|_| SubmitError::ShuttingDown)?;
            let pdu = frame::submit_sm(source, destination, segment, config.request_receipts);
            let reply = match link
                .request(Pdu::SubmitSm(pdu), config.response_timeout)
                .await
            {
                Ok(reply) => reply,
                Err(RequestError::Timeout) => return Err(SubmitError::Timeout),
                Err(RequestError::Lost) => {
                    drop(permit);
                    lost += 1;
                    if lost > 3 {
                        return Err(SubmitError::LinkLost);
                    }
                    tracing::info!(
                        part,
                        "SMPP link lost before submit_sm_resp; sending again once re-bound"
                    );
                    // Give the supervisor time to notice and clear the dead session.
                    link.closed.cancelled().await;
                    continue;
                }
            };
            drop(permit);
            match reply.status {
                status::ESME_ROK => {
                    shared
                        .stats
                        .segments_submitted
                        .fetch_add(1, Ordering::Relaxed);
                    return Ok(reply.message_id.unwrap_or_default());
                }
                status::ESME_RTHROTTLED | status::ESME_RMSGQFUL => {
                    shared.stats.throttled.fetch_add(1, Ordering::Relaxed);
                    throttled += 1;
                    if throttled > config.throttle_retries {
                        return Err(SubmitError::Throttled {
                            status: reply.status,
                            attempts: throttled,
                        });
                    }
                    tracing::info!(
                        part,
                        status = reply.status,
                        delay_ms = backoff.as_millis() as u64,
                        "SMSC throttled submit_sm; retrying"
                    );
                    {
                        // Every submit waits out the pause (at the top of the loop), not just
                        // this one.
                        let mut until = shared.throttled_until.lock().unwrap();
                        let candidate = Instant::now() + backoff;
                        if until.is_none_or(|u| u < candidate) {
                            *until = Some(candidate);
                        }
                    }
                    backoff = (backoff * 2).min(config.backoff_max);
                }
                other => {
                    return Err(SubmitError::Rejected {
                        status: other,
                        part,
                    })
                }
            }
        }
    }

    /// The current session, waiting up to `within` for one to be bound.
    async fn wait_link(&self, within: Duration) -> Option<Link> {
        let deadline = Instant::now() + within;
        let mut rx = self.shared.bound_tx.subscribe();
        loop {
            if let Some(link) = self.shared.session.lock().unwrap().clone() {
                if !link.closed.is_cancelled() {
                    return Some(link);
                }
            }
            if self.shared.shutdown.is_cancelled() {
                return None;
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                _ => return None,
            }
        }
    }

    /// Unbinds (after letting running handlers finish, bounded) and stops reconnecting.
    /// Returns when the link is closed. Safe to call more than once.
    pub async fn shutdown(&self) {
        self.shared.shutdown.cancel();
        let task = self.shared.supervisor.lock().unwrap().take();
        if let Some(task) = task {
            // Draining handlers and waiting for unbind_resp are each bounded by unbind_timeout.
            let bound = self.shared.config.unbind_timeout * 2 + Duration::from_secs(1);
            if timeout(bound, task).await.is_err() {
                tracing::warn!("SMPP link did not close in time");
            }
        }
    }
}

#[derive(Debug, Default)]
struct Stats {
    binds: AtomicU64,
    segments_submitted: AtomicU64,
    throttled: AtomicU64,
    mo_received: AtomicU64,
    receipts_received: AtomicU64,
}

struct Shared {
    config: EsmeConfig,
    handler: Arc<dyn MoHandler>,
    window: Semaphore,
    /// The bound session, if any.
    session: Mutex<Option<Link>>,
    bound_tx: watch::Sender<bool>,
    shutdown: CancellationToken,
    /// Submits wait until then after a throttled answer.
    throttled_until: Mutex<Option<Instant>>,
    /// Kept across reconnections: parts acknowledged before a drop are not sent again.
    reassembler: Mutex<Reassembler>,
    handlers_running: AtomicUsize,
    stats: Stats,
    supervisor: Mutex<Option<JoinHandle<()>>>,
}

/// A response to one of our requests.
#[derive(Debug)]
struct Reply {
    status: u32,
    message_id: Option<String>,
}

enum RequestError {
    Timeout,
    Lost,
}

type Pending = Arc<Mutex<Option<HashMap<u32, oneshot::Sender<Reply>>>>>;

/// What submitters and handler tasks need of a session.
#[derive(Clone)]
struct Link {
    out: mpsc::Sender<Outgoing>,
    /// Our requests awaiting a response, by sequence number; `None` once the session ended.
    pending: Pending,
    seq: Arc<Sequence>,
    /// Cancelled when the session ends.
    closed: CancellationToken,
}

impl Link {
    fn new(out: mpsc::Sender<Outgoing>, seq: Arc<Sequence>, closed: CancellationToken) -> Self {
        Link {
            out,
            pending: Arc::new(Mutex::new(Some(HashMap::new()))),
            seq,
            closed,
        }
    }

    /// Sends a request and waits for its response.
    async fn request(&self, pdu: Pdu, within: Duration) -> Result<Reply, RequestError> {
        let (seq, rx) = self.register().ok_or(RequestError::Lost)?;
        let command = Command::new(CommandStatus::EsmeRok, seq, pdu);
        if self.out.send(Outgoing::Pdu(command)).await.is_err() {
            return Err(RequestError::Lost);
        }
        match timeout(within, rx).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Err(RequestError::Lost),
            Err(_) => {
                self.forget(seq);
                Err(RequestError::Timeout)
            }
        }
    }

    /// A fresh sequence number with a slot for its response.
    fn register(&self) -> Option<(u32, oneshot::Receiver<Reply>)> {
        let seq = self.seq.next();
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap().as_mut()?.insert(seq, tx);
        Some((seq, rx))
    }

    fn forget(&self, seq: u32) {
        if let Some(map) = self.pending.lock().unwrap().as_mut() {
            map.remove(&seq);
        }
    }

    fn resolve(&self, seq: u32, reply: Reply) -> bool {
        let waiter = self
            .pending
            .lock()
            .unwrap()
            .as_mut()
            .and_then(|m| m.remove(&seq));
        match waiter {
            Some(tx) => {
                let _ = tx.send(reply);
                true
            }
            None => false,
        }
    }

    async fn send(&self, command: Command) {
        // A closed writer means the session is ending; the reader notices by itself.
        let _ = self.out.send(Outgoing::Pdu(command)).await;
    }

    /// Ends the session: nobody may register any more, and waiters learn the link is lost.
    fn close(&self) {
        self.closed.cancel();
        self.pending.lock().unwrap().take();
    }
}

/// Connects, binds and runs sessions until shutdown.
async fn supervise(shared: Arc<Shared>) {
    let config = shared.config.clone();
    let mut backoff = config.backoff_initial;
    loop {
        let attempt = tokio::select! {
            _ = shared.shutdown.cancelled() => break,
            r = connect_and_bind(&config) => r,
        };
        match attempt {
            Ok((framed, seq)) => {
                backoff = config.backoff_initial;
                shared.stats.binds.fetch_add(1, Ordering::Relaxed);
                tracing::info!(host = %config.host, port = config.port, "SMPP link bound");
                let end = run_session(&shared, framed, seq).await;
                tracing::info!(?end, "SMPP session ended");
                if end == SessionEnd::Shutdown {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(host = %config.host, port = config.port, error = %e, retry_ms = backoff.as_millis() as u64, "SMPP bind failed");
            }
        }
        tokio::select! {
            _ = shared.shutdown.cancelled() => break,
            _ = sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(config.backoff_max);
    }
    let _ = shared.bound_tx.send_replace(false);
}

#[derive(Debug, thiserror::Error)]
enum BindError {
    #[error("connect: {0}")]
    Connect(std::io::Error),
    #[error("no answer to bind in time")]
    Timeout,
    #[error("connection closed during bind")]
    Closed,
    #[error("bind refused with status {0:#x}")]
    Refused(u32),
    #[error("system_id (max 15), password (max 8) or system_type (max 12) too long or not ASCII")]
    BadCredentials,
}

type Transport = Framed<TcpStream, SmppCodec>;

async fn connect_and_bind(config: &EsmeConfig) -> Result<(Transport, Arc<Sequence>), BindError> {
    fn field<const N: usize>(s: &str) -> Result<COctetString<1, N>, BindError> {
        COctetString::from_string(s.to_owned()).map_err(|_| BindError::BadCredentials)
    }
    let bind = BindTransceiver::builder()
        .system_id(field(&config.system_id)?)
        .password(field(&config.password)?)
        .system_type(field(&config.system_type)?)
        .interface_version(InterfaceVersion::Smpp3_4)
        .addr_ton(Ton::Unknown)
        .addr_npi(Npi::Unknown)
        .build();
    let addr = (config.host.as_str(), config.port);
    let stream = match timeout(config.response_timeout, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(BindError::Connect(e)),
        Err(_) => return Err(BindError::Timeout),
    };
    let _ = stream.set_nodelay(true);
    let mut framed = Framed::new(stream, SmppCodec::new());
    let seq = Arc::new(Sequence::new());
    let bind_seq = seq.next();
    framed
        .send(Command::new(CommandStatus::EsmeRok, bind_seq, bind))
        .await
        .map_err(|_| BindError::Closed)?;
    let deadline = Instant::now() + config.response_timeout;
    loop {
        let item = tokio::time::timeout_at(deadline, framed.next())
            .await
            .map_err(|_| BindError::Timeout)?;
        match item {
            Some(Ok(Inbound::Command(c)))
                if c.sequence_number() == bind_seq && c.id().is_response() =>
            {
                let s = frame::status_code(c.status());
                return if s == status::ESME_ROK {
                    Ok((framed, seq))
                } else {
                    Err(BindError::Refused(s))
                };
            }
            Some(Ok(Inbound::Malformed(m))) if m.sequence_number == bind_seq => {
                return if m.command_status == status::ESME_ROK {
                    Ok((framed, seq))
                } else {
                    Err(BindError::Refused(m.command_status))
                };
            }
            Some(Ok(Inbound::Command(c))) if matches!(c.pdu(), Some(Pdu::EnquireLink)) => {
                let resp = Command::new(
                    CommandStatus::EsmeRok,
                    c.sequence_number(),
                    Pdu::EnquireLinkResp,
                );
                framed.send(resp).await.map_err(|_| BindError::Closed)?;
            }
            Some(Ok(_)) => {} // nothing else is meaningful before the bind completes
            Some(Err(_)) | None => return Err(BindError::Closed),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SessionEnd {
    /// The connection closed or failed.
    Lost,
    /// enquire_link went unanswered.
    Dead,
    /// The SMSC unbound us.
    UnboundBySmsc,
    /// We unbound for shutdown.
    Shutdown,
}

/// Where the graceful close is.
enum Closing {
    /// Waiting (until the deadline) for running handlers to answer.
    Draining(Instant),
    /// unbind sent with this sequence number; waiting until the deadline for unbind_resp.
    Unbinding(u32, Instant),
}

async fn run_session(shared: &Arc<Shared>, framed: Transport, seq: Arc<Sequence>) -> SessionEnd {
    let config = &shared.config;
    let (sink, mut stream) = framed.split();
    let (out_tx, out_rx) = mpsc::channel(256);
    let closed = CancellationToken::new();
    let writer = frame::spawn_writer(sink, out_rx, closed.clone());
    let link = Link::new(out_tx, seq, closed.clone());
    *shared.session.lock().unwrap() = Some(link.clone());
    let _ = shared.bound_tx.send_replace(true);

    let mut next_enquire = Instant::now() + config.enquire_interval;
    // (sequence number, deadline) of our unanswered enquire_link.
    let mut enquire: Option<(u32, Instant)> = None;
    let mut closing: Option<Closing> = None;

    let end = loop {
        let wake = match &closing {
            Some(Closing::Draining(deadline)) => {
                (*deadline).min(Instant::now() + Duration::from_millis(10))
            }
            Some(Closing::Unbinding(_, deadline)) => *deadline,
            None => enquire.map(|(_, d)| d).unwrap_or(next_enquire),
        };
        tokio::select! {
            _ = closed.cancelled() => break SessionEnd::Lost,
            _ = shared.shutdown.cancelled(), if closing.is_none() => {
                closing = Some(Closing::Draining(Instant::now() + config.unbind_timeout));
            }
            _ = sleep_until(wake) => match &closing {
                Some(Closing::Draining(deadline)) => {
                    if shared.handlers_running.load(Ordering::SeqCst) == 0 || Instant::now() >= *deadline {
                        // The response is recognised by its sequence number below.
                        let unbind_seq = link.seq.next();
                        link.send(Command::new(CommandStatus::EsmeRok, unbind_seq, Pdu::Unbind)).await;
                        closing = Some(Closing::Unbinding(unbind_seq, Instant::now() + config.unbind_timeout));
                    }
                }
                Some(Closing::Unbinding(..)) => {
                    tracing::warn!("no unbind_resp in time; closing anyway");
                    break SessionEnd::Shutdown;
                }
                None => {
                    if let Some((_, deadline)) = enquire {
                        if Instant::now() >= deadline {
                            tracing::warn!("enquire_link unanswered: the SMPP link is dead");
                            break SessionEnd::Dead;
                        }
                    } else {
                        let s = link.seq.next();
                        link.send(Command::new(CommandStatus::EsmeRok, s, Pdu::EnquireLink)).await;
                        enquire = Some((s, Instant::now() + config.response_timeout));
                    }
                }
            },
            item = stream.next() => match item {
                None => break SessionEnd::Lost,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "SMPP read failed");
                    break SessionEnd::Lost;
                }
                Some(Ok(Inbound::Malformed(m))) => {
                    tracing::warn!(command_id = m.command_id, error = %m.error, "undecodable PDU from the SMSC");
                    if m.command_id & 0x8000_0000 != 0 {
                        link.resolve(m.sequence_number, Reply { status: m.command_status, message_id: None });
                    } else if m.command_id == 0x0000_0005 {
                        // A deliver_sm we cannot read will not become readable by redelivery.
                        respond_deliver(&link, m.sequence_number, status::ESME_RX_P_APPN).await;
                    } else {
                        link.send(Command::new(CommandStatus::from(status::ESME_RSYSERR), m.sequence_number, Pdu::GenericNack)).await;
                    }
                }
                Some(Ok(Inbound::Command(command))) => {
                    let seq = command.sequence_number();
                    if let Some(Closing::Unbinding(unbind_seq, _)) = closing {
                        if seq == unbind_seq && command.id().is_response() {
                            break SessionEnd::Shutdown;
                        }
                    }
                    if enquire.is_some_and(|(s, _)| s == seq) && command.id().is_response() {
                        enquire = None;
                        next_enquire = Instant::now() + config.enquire_interval;
                        continue;
                    }
                    match command.pdu() {
                        Some(Pdu::DeliverSm(dsm)) => on_deliver(shared, &link, seq, dsm).await,
                        Some(Pdu::EnquireLink) => {
                            link.send(Command::new(CommandStatus::EsmeRok, seq, Pdu::EnquireLinkResp)).await;
                        }
                        Some(Pdu::Unbind) => {
                            tracing::info!("the SMSC unbinds us");
                            link.send(Command::new(CommandStatus::EsmeRok, seq, Pdu::UnbindResp)).await;
                            break SessionEnd::UnboundBySmsc;
                        }
                        Some(Pdu::AlertNotification(_)) => {}
                        _ if command.id().is_response() => {
                            let message_id = match command.pdu() {
                                Some(Pdu::SubmitSmResp(r)) => Some(r.message_id().as_str().to_owned()),
                                _ => None,
                            };
                            let reply = Reply { status: frame::status_code(command.status()), message_id };
                            if !link.resolve(seq, reply) {
                                tracing::debug!(seq, id = ?command.id(), "response to nothing we sent");
                            }
                        }
                        _ => {
                            tracing::debug!(id = ?command.id(), "unsupported request from the SMSC");
                            link.send(Command::new(CommandStatus::EsmeRinvcmdid, seq, Pdu::GenericNack)).await;
                        }
                    }
                }
            },
        }
    };

    *shared.session.lock().unwrap() = None;
    let _ = shared.bound_tx.send_replace(false);
    if matches!(end, SessionEnd::UnboundBySmsc | SessionEnd::Shutdown) {
        // Flush the final unbind_resp (or let the unbind exchange end) before closing.
        let _ = link.out.send(Outgoing::Close).await;
        let _ = timeout(Duration::from_secs(1), writer).await;
        link.close();
    } else {
        link.close();
        let _ = timeout(Duration::from_secs(1), writer).await;
    }
    end
}

async fn respond_deliver(link: &Link, seq: u32, status: u32) {
    let resp = Command::new(
        CommandStatus::from(status),
        seq,
        DeliverSmResp::builder().build(),
    );
    link.send(resp).await;
}

/// Handles one deliver_sm: a receipt or (a part of) a subscriber's message.
async fn on_deliver(shared: &Arc<Shared>, link: &Link, seq: u32, dsm: &DeliverSm) {
    let esm_class = u8::from(dsm.esm_class);
    let data_coding = u8::from(dsm.data_coding);
    let source = dsm.source_addr.as_str().to_owned();
    let destination = dsm.destination_addr.as_str().to_owned();
    let payload = frame::message_payload(dsm.tlvs());

    if receipt::is_receipt(esm_class) {
        let text = match decode_mo(data_coding, esm_class & !0x40, dsm.short_message(), payload) {
            Ok(m) => m.text,
            Err(_) => String::from_utf8_lossy(payload.unwrap_or(dsm.short_message())).into_owned(),
        };
        let fields = receipt::parse(&text);
        let message_id = frame::receipted_message_id(dsm.tlvs())
            .or(fields.id)
            .unwrap_or_default();
        let stat = fields
            .stat
            .or_else(|| {
                frame::message_state(dsm.tlvs()).map(|s| receipt::stat_for_state(s).to_owned())
            })
            .unwrap_or_else(|| "UNKNOWN".to_owned());
        let r = DeliveryReceipt {
            message_id,
            stat,
            err: fields.err,
            source,
            destination,
            text,
        };
        shared
            .stats
            .receipts_received
            .fetch_add(1, Ordering::Relaxed);
        let handler = shared.handler.clone();
        spawn_handler(shared, link, seq, None, async move {
            handler.on_receipt(r).await
        });
        return;
    }

    let mo = match decode_mo(data_coding, esm_class, dsm.short_message(), payload) {
        Ok(mo) => mo,
        Err(e) => {
            tracing::warn!(source = %super::masked(&source), data_coding, error = %e, "undecodable MO: refused for good");
            respond_deliver(link, seq, status::ESME_RX_P_APPN).await;
            return;
        }
    };
    let (text, parts, concat_reference, completed) = match mo.concat {
        None => (mo.text, 1, None, None),
        Some(c) => {
            let added = {
                let mut r = shared.reassembler.lock().unwrap();
                for gone in r.expire(std::time::Instant::now()) {
                    tracing::warn!(source = %super::masked(&gone.source), reference = gone.reference, "incomplete concatenated MO expired");
                }
                r.add(&source, c, mo.units, std::time::Instant::now())
            };
            match added {
                Added::Buffered | Added::Duplicate => {
                    respond_deliver(link, seq, status::ESME_ROK).await;
                    return;
                }
                Added::Complete(text) => (text, c.total, Some(c.reference), Some(c)),
            }
        }
    };
    let incoming = IncomingMo {
        source: source.clone(),
        destination,
        text,
        data_coding,
        parts,
        concat_reference,
        sequence_number: seq,
        received_at: SystemTime::now(),
    };
    shared.stats.mo_received.fetch_add(1, Ordering::Relaxed);
    let handler = shared.handler.clone();
    let release = completed.map(|c| (source, c));
    spawn_handler(shared, link, seq, release, async move {
        handler.on_mo(incoming).await
    });
}

/// Runs a handler in its own task and answers the deliver_sm with its verdict. For a
/// reassembled message, `release` says which set to forget (on Accept) or which part to take
/// back (otherwise, so that the redelivered part completes the set again).
fn spawn_handler(
    shared: &Arc<Shared>,
    link: &Link,
    seq: u32,
    release: Option<(String, ConcatInfo)>,
    work: impl std::future::Future<Output = MoVerdict> + Send + 'static,
) {
    let shared = shared.clone();
    let link = link.clone();
    shared.handlers_running.fetch_add(1, Ordering::SeqCst);
    tokio::spawn(async move {
        let verdict = match AssertUnwindSafe(work).catch_unwind().await {
            Ok(v) => v,
            Err(_) => {
                tracing::error!("MO handler panicked; asking the SMSC to redeliver");
                MoVerdict::TemporaryFailure
            }
        };
        if let Some((source, c)) = release {
            let mut r = shared.reassembler.lock().unwrap();
            match verdict {
                MoVerdict::Accept => r.release(&source, c),
                MoVerdict::TemporaryFailure => r.retract(&source, c),
            }
        }
        let status = match verdict {
            MoVerdict::Accept => status::ESME_ROK,
            MoVerdict::TemporaryFailure => status::ESME_RX_T_APPN,
        };
        respond_deliver(&link, seq, status).await;
        shared.handlers_running.fetch_sub(1, Ordering::SeqCst);
    });
}
