//! A small SMSC (SMPP 3.4 server) on the same rusmpp codec as the ESME: the demo's built-in
//! message centre and the test suite's counterpart.
//!
//! It accepts binds (checking system_id and password), answers enquire_link and unbind,
//! accepts submit_sm (optionally throttling some), records every MT — each raw segment, and
//! each complete message once its parts are in — and sends a delivery receipt per accepted
//! segment if asked to. Through the [`SmscHandle`] a test or the demo sends MO messages as a
//! handset would (UCS-2 for Chinese, GSM otherwise, concatenated when long) and sees the
//! ESME's deliver_sm_resp status; it can also drop the connection or unbind to exercise the
//! ESME's recovery.
mod session;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusmpp::pdus::DeliverSm;
use rusmpp::Pdu;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, Notify};
use tokio_util::sync::CancellationToken;

use crate::smpp::status;
use crate::smpp::text::{encode_mt, Segment};
use crate::smpp::udh::ConcatInfo;

use session::{MtParts, SessionCtl};

/// How the simulator refuses some submits, to exercise the ESME's retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    /// Refuse the first `first` submit_sm of the simulator's life.
    pub first: u32,
    /// Also refuse every `every`-th submit_sm after those (a crude rate limit).
    pub every: Option<u32>,
    /// The status to refuse with: ESME_RTHROTTLED (0x58) or ESME_RMSGQFUL (0x14).
    pub status: u32,
}

impl Throttle {
    /// Refuse the first `n` submits with ESME_RTHROTTLED.
    pub fn first(n: u32) -> Self {
        Throttle {
            first: n,
            every: None,
            status: status::ESME_RTHROTTLED,
        }
    }

    /// Refuse every `n`-th submit with ESME_RTHROTTLED.
    pub fn every(n: u32) -> Self {
        Throttle {
            first: 0,
            every: Some(n.max(1)),
            status: status::ESME_RTHROTTLED,
        }
    }

    /// Refuse with this status instead (e.g. ESME_RMSGQFUL).
    pub fn with_status(self, status: u32) -> Self {
        Throttle { status, ..self }
    }

    /// Whether the `n`-th submit (1-based) is refused.
    fn refuses(&self, n: u64) -> bool {
        n <= self.first as u64
            || self
                .every
                .is_some_and(|e| (n - self.first as u64).is_multiple_of(e as u64))
    }
}

/// The simulator's settings.
#[derive(Debug, Clone)]
pub struct SmscConfig {
    /// Where to listen; port 0 picks a free port (see [`SmscHandle::local_addr`]).
    pub bind_addr: SocketAddr,
    pub system_id: String,
    pub password: String,
    pub throttle: Option<Throttle>,
    /// Send a delivery receipt for each accepted segment that asked for one.
    pub delivery_receipts: bool,
    /// How long [`SmscHandle::send_mo`] waits for each deliver_sm_resp.
    pub response_timeout: Duration,
    /// Answer enquire_link (turn off to play a hung SMSC).
    pub answer_enquire_link: bool,
    /// A fault: on receiving the n-th submit_sm (1-based, over the simulator's life), close
    /// the connection without answering it.
    pub drop_on_submit: Option<u64>,
    /// A fault: close the connection as the n-th submit_sm (1-based) is being answered, so
    /// that its submit_sm_resp never reaches the wire (the ESME must send it again, and the
    /// simulator counts the segment once).
    pub drop_while_answering: Option<u64>,
    /// With several ESMEs bound, deliver MO to each in turn (as an SMSC spreads traffic over
    /// its binds) instead of to the most recently bound one.
    pub spread_mo: bool,
    /// How many complete MT [`SmscHandle::next_mt`] keeps unread before dropping the oldest
    /// (a load generator reading 20,000 a second wants more than the demo's default).
    pub unread_capacity: usize,
}

impl SmscConfig {
    /// Listening on 127.0.0.1 with a free port, no throttling, receipts on.
    pub fn new(system_id: &str, password: &str) -> Self {
        SmscConfig {
            bind_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            system_id: system_id.to_owned(),
            password: password.to_owned(),
            throttle: None,
            delivery_receipts: true,
            response_timeout: Duration::from_secs(5),
            answer_enquire_link: true,
            drop_on_submit: None,
            drop_while_answering: None,
            spread_mo: false,
            unread_capacity: HISTORY,
        }
    }
}

/// One accepted submit_sm, as it came over the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmittedSegment {
    pub source: String,
    pub destination: String,
    pub esm_class: u8,
    pub data_coding: u8,
    pub registered_delivery: u8,
    /// short_message exactly as received (UDH included).
    pub short_message: Vec<u8>,
    /// The message id the simulator answered with.
    pub message_id: String,
    pub sequence_number: u32,
    /// This segment's decoded text (empty if it could not be decoded).
    pub text: String,
    pub concat: Option<ConcatInfo>,
}

/// A complete MT message: all its segments, in part order, and the joined text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MtMessage {
    pub source: String,
    pub destination: String,
    pub text: String,
    pub segments: Vec<SubmittedSegment>,
}

/// What went wrong sending an MO.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmscError {
    #[error("no ESME is bound to the simulator")]
    NotBound,
    #[error("the ESME did not answer within the time allowed")]
    Timeout,
    #[error("the connection to the ESME closed before it answered")]
    ConnectionLost,
}

/// Most recent MT messages kept for inspection (the demo runs for a long time).
const HISTORY: usize = 10_000;

#[derive(Debug, Default)]
struct Counters {
    binds: AtomicU64,
    enquire_links: AtomicU64,
    unbinds: AtomicU64,
    submits: AtomicU64,
    throttled: AtomicU64,
    next_message_id: AtomicU64,
    next_session: AtomicU64,
    next_mo_session: AtomicU64,
}

#[derive(Debug)]
struct Shared {
    config: SmscConfig,
    counters: Counters,
    sessions: Mutex<Vec<SessionCtl>>,
    segments: Mutex<VecDeque<SubmittedSegment>>,
    messages: Mutex<VecDeque<MtMessage>>,
    unread: Mutex<VecDeque<MtMessage>>,
    mt_parts: Mutex<MtParts>,
    mt_arrived: Notify,
    mt_feed: broadcast::Sender<MtMessage>,
    stop: CancellationToken,
}

/// The running simulator. Cheap to clone; every clone controls the same server.
#[derive(Debug, Clone)]
pub struct SmscHandle {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
}

/// Starts simulators.
#[derive(Debug)]
pub struct Smsc;

impl Smsc {
    /// Listens on `config.bind_addr` and serves ESMEs until [`SmscHandle::shutdown`].
    pub async fn start(config: SmscConfig) -> std::io::Result<SmscHandle> {
        let listener = TcpListener::bind(config.bind_addr).await?;
        let local_addr = listener.local_addr()?;
        let (mt_feed, _) = broadcast::channel(256);
        let shared = Arc::new(Shared {
            config,
            counters: Counters::default(),
            sessions: Mutex::new(Vec::new()),
            segments: Mutex::new(VecDeque::new()),
            messages: Mutex::new(VecDeque::new()),
            unread: Mutex::new(VecDeque::new()),
            mt_parts: Mutex::new(MtParts::default()),
            mt_arrived: Notify::new(),
            mt_feed,
            stop: CancellationToken::new(),
        });
        let accept_shared = shared.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = accept_shared.stop.cancelled() => break,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, peer)) => {
                            tracing::debug!(%peer, "SMSC simulator: connection");
                            session::spawn(accept_shared.clone(), stream);
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "SMSC simulator: accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    },
                }
            }
        });
        tracing::info!(%local_addr, "SMSC simulator listening");
        Ok(SmscHandle { shared, local_addr })
    }
}

impl SmscHandle {
    /// The address the simulator listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Whether an ESME is bound right now.
    pub fn is_bound(&self) -> bool {
        self.shared
            .sessions
            .lock()
            .unwrap()
            .iter()
            .any(|s| s.is_bound())
    }

    /// Waits until an ESME is bound; false if the time ran out.
    pub async fn wait_bound(&self, timeout: Duration) -> bool {
        self.wait_until(timeout, || self.is_bound()).await
    }

    /// Waits until `cond` holds (checked every 5 ms); false if the time ran out.
    pub async fn wait_until(&self, timeout: Duration, cond: impl Fn() -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if cond() {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Successful binds since the start (a reconnecting ESME binds again).
    pub fn bind_count(&self) -> u64 {
        self.shared.counters.binds.load(Ordering::Relaxed)
    }

    /// enquire_link requests received.
    pub fn enquire_links(&self) -> u64 {
        self.shared.counters.enquire_links.load(Ordering::Relaxed)
    }

    /// unbind requests received from ESMEs.
    pub fn unbinds_received(&self) -> u64 {
        self.shared.counters.unbinds.load(Ordering::Relaxed)
    }

    /// submit_sm refused by the throttle rule.
    pub fn throttled_count(&self) -> u64 {
        self.shared.counters.throttled.load(Ordering::Relaxed)
    }

    /// Every accepted submit_sm so far (most recent 10 000).
    pub fn submitted_segments(&self) -> Vec<SubmittedSegment> {
        self.shared
            .segments
            .lock()
            .unwrap()
            .iter()
            .cloned()
            .collect()
    }

    /// Every complete MT message so far (most recent 10 000).
    pub fn mt_messages(&self) -> Vec<MtMessage> {
        self.shared
            .messages
            .lock()
            .unwrap()
            .iter()
            .cloned()
            .collect()
    }

    /// The next complete MT message not yet taken by `next_mt`, waiting up to `timeout`.
    pub async fn next_mt(&self, timeout: Duration) -> Option<MtMessage> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.mt_arrived.notified();
            if let Some(m) = self.shared.unread.lock().unwrap().pop_front() {
                return Some(m);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.shared.unread.lock().unwrap().pop_front();
            }
        }
    }

    /// A live feed of complete MT messages (for the demo's handset page).
    pub fn subscribe_mt(&self) -> broadcast::Receiver<MtMessage> {
        self.shared.mt_feed.subscribe()
    }

    /// Sends a subscriber's message as a handset would: UCS-2 for Chinese, GSM otherwise,
    /// concatenated when long. Returns ESME_ROK if every part was accepted, else the first
    /// other deliver_sm_resp status (e.g. ESME_RX_T_APPN).
    pub async fn send_mo(&self, from: &str, to: &str, text: &str) -> Result<u32, SmscError> {
        let statuses = self.send_segments(from, to, &encode_mt(text)).await?;
        Ok(statuses
            .into_iter()
            .find(|s| *s != status::ESME_ROK)
            .unwrap_or(status::ESME_ROK))
    }

    /// Sends the given segments as deliver_sm, one after the other, each awaiting its
    /// response; returns every status. Stops at the first failure to get an answer.
    pub async fn send_segments(
        &self,
        from: &str,
        to: &str,
        segments: &[Segment],
    ) -> Result<Vec<u32>, SmscError> {
        let mut statuses = Vec::with_capacity(segments.len());
        for segment in segments {
            let pdu = crate::smpp::frame::deliver_sm(from, to, segment);
            statuses.push(self.send_deliver_sm(pdu).await?);
        }
        Ok(statuses)
    }

    /// Sends one deliver_sm as given (tests use this for unusual PDUs) and returns the status
    /// of the ESME's deliver_sm_resp.
    pub async fn send_deliver_sm(&self, pdu: DeliverSm) -> Result<u32, SmscError> {
        let session = self.bound_session().ok_or(SmscError::NotBound)?;
        let reply = session
            .request(Pdu::DeliverSm(pdu), self.shared.config.response_timeout)
            .await?;
        Ok(reply)
    }

    /// Closes every ESME connection at once, without unbind (a network fault).
    pub fn drop_connection(&self) {
        for s in self.shared.sessions.lock().unwrap().iter() {
            s.kill();
        }
    }

    /// Sends unbind to the bound ESME, waits for unbind_resp, then closes the connection.
    /// Returns the unbind_resp status.
    pub async fn send_unbind(&self) -> Result<u32, SmscError> {
        let session = self.bound_session().ok_or(SmscError::NotBound)?;
        let result = session
            .request(Pdu::Unbind, self.shared.config.response_timeout)
            .await;
        session.kill();
        result
    }

    /// Stops listening and closes every connection.
    pub fn shutdown(&self) {
        self.shared.stop.cancel();
        self.drop_connection();
    }

    /// How many ESMEs are bound right now.
    pub fn bound_sessions(&self) -> usize {
        let sessions = self.shared.sessions.lock().unwrap();
        sessions.iter().filter(|s| s.is_bound()).count()
    }

    /// The session an MO goes to: the most recently bound one, or each bound one in turn
    /// with [`SmscConfig::spread_mo`].
    fn bound_session(&self) -> Option<SessionCtl> {
        let sessions = self.shared.sessions.lock().unwrap();
        if self.shared.config.spread_mo {
            let bound: Vec<&SessionCtl> = sessions.iter().filter(|s| s.is_bound()).collect();
            if bound.is_empty() {
                return None;
            }
            let turn = self
                .shared
                .counters
                .next_mo_session
                .fetch_add(1, Ordering::Relaxed);
            return Some(bound[(turn % bound.len() as u64) as usize].clone());
        }
        sessions.iter().rev().find(|s| s.is_bound()).cloned()
    }
}

impl Shared {
    fn next_message_id(&self) -> String {
        let n = self
            .counters
            .next_message_id
            .fetch_add(1, Ordering::Relaxed)
            + 1;
        format!("SIM{n:08}")
    }

    fn record_segment(&self, segment: SubmittedSegment) {
        let mut segments = self.segments.lock().unwrap();
        segments.push_back(segment);
        while segments.len() > HISTORY {
            segments.pop_front();
        }
    }

    fn record_message(&self, message: MtMessage) {
        tracing::debug!(to = %crate::smpp::masked(&message.destination), parts = message.segments.len(), "SMSC simulator: MT complete");
        {
            let mut messages = self.messages.lock().unwrap();
            messages.push_back(message.clone());
            while messages.len() > HISTORY {
                messages.pop_front();
            }
        }
        {
            let mut unread = self.unread.lock().unwrap();
            unread.push_back(message.clone());
            while unread.len() > self.config.unread_capacity {
                unread.pop_front();
            }
        }
        self.mt_arrived.notify_waiters();
        let _ = self.mt_feed.send(message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_rules() {
        let t = Throttle::first(3);
        assert_eq!(
            (1..=5).map(|n| t.refuses(n)).collect::<Vec<_>>(),
            [true, true, true, false, false]
        );
        let t = Throttle::every(2);
        assert_eq!(
            (1..=4).map(|n| t.refuses(n)).collect::<Vec<_>>(),
            [false, true, false, true]
        );
        assert_eq!(
            Throttle::first(1).with_status(status::ESME_RMSGQFUL).status,
            0x14
        );
    }
}
