//! One ESME connection to the simulator: a reader loop that answers the ESME's requests and
//! routes responses to the simulator's own requests (deliver_sm, unbind), and a writer task.
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use rusmpp::pdus::{
    BindReceiverResp, BindTransceiverResp, BindTransmitterResp, DeliverSm, SubmitSm, SubmitSmResp,
};
use rusmpp::tlvs::MessageDeliveryRequestTlvValue;
use rusmpp::types::COctetString;
use rusmpp::values::{DataCoding, EsmClass, MessageState};
use rusmpp::{Command, CommandStatus, Pdu};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;

use super::{MtMessage, Shared, SmscError, SubmittedSegment};
use crate::smpp::frame::{self, Inbound, Outgoing, Sequence, SmppCodec};
use crate::smpp::reassembly::{Added, Reassembler, SetKey};
use crate::smpp::text::{decode_mo, Segment};
use crate::smpp::{receipt, status};

/// How long the simulator keeps the parts of an incomplete MT.
const MT_REASSEMBLY_TIMEOUT: Duration = Duration::from_secs(600);

type Pending = Arc<Mutex<Option<HashMap<u32, oneshot::Sender<u32>>>>>;

/// The simulator's grip on one connection.
#[derive(Debug, Clone)]
pub(super) struct SessionCtl {
    id: u64,
    out: mpsc::Sender<Outgoing>,
    /// Requests we sent and await a response to, by sequence number; `None` once closed.
    pending: Pending,
    seq: Arc<Sequence>,
    bound: Arc<AtomicBool>,
    kill: CancellationToken,
}

impl SessionCtl {
    pub(super) fn is_bound(&self) -> bool {
        self.bound.load(Ordering::Relaxed)
    }

    /// Closes the connection now, without unbind.
    pub(super) fn kill(&self) {
        self.kill.cancel();
    }

    /// Sends a request and waits for the status of its response.
    pub(super) async fn request(&self, pdu: Pdu, timeout: Duration) -> Result<u32, SmscError> {
        let seq = self.seq.next();
        let (tx, rx) = oneshot::channel();
        match self.pending.lock().unwrap().as_mut() {
            Some(map) => map.insert(seq, tx),
            None => return Err(SmscError::ConnectionLost),
        };
        let command = Command::new(CommandStatus::EsmeRok, seq, pdu);
        if self.out.send(Outgoing::Pdu(command)).await.is_err() {
            return Err(SmscError::ConnectionLost);
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(status)) => Ok(status),
            Ok(Err(_)) => Err(SmscError::ConnectionLost),
            Err(_) => {
                if let Some(map) = self.pending.lock().unwrap().as_mut() {
                    map.remove(&seq);
                }
                Err(SmscError::Timeout)
            }
        }
    }

    async fn send(&self, command: Command) {
        // A closed writer means the session is ending; the reader notices on its own.
        let _ = self.out.send(Outgoing::Pdu(command)).await;
    }

    /// Waits until everything queued so far has been written to the socket; false if the
    /// connection closed first (a kill stops the writer with whatever is queued).
    async fn flushed(&self) -> bool {
        let (done, written) = oneshot::channel();
        self.out.send(Outgoing::Flushed(done)).await.is_ok() && written.await.is_ok()
    }

    async fn respond(&self, request: &Command, status: u32, pdu: impl Into<Pdu>) {
        self.send(Command::new(
            CommandStatus::from(status),
            request.sequence_number(),
            pdu,
        ))
        .await;
    }
}

/// Starts serving one accepted connection.
pub(super) fn spawn(shared: Arc<Shared>, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let (out, rx) = mpsc::channel(256);
    let ctl = SessionCtl {
        id: shared.counters.next_session.fetch_add(1, Ordering::Relaxed),
        out,
        pending: Arc::new(Mutex::new(Some(HashMap::new()))),
        seq: Arc::new(Sequence::new()),
        bound: Arc::new(AtomicBool::new(false)),
        kill: CancellationToken::new(),
    };
    shared.sessions.lock().unwrap().push(ctl.clone());
    tokio::spawn(async move {
        let (sink, mut stream) = Framed::new(stream, SmppCodec::new()).split();
        let writer = frame::spawn_writer(sink, rx, ctl.kill.clone());
        let mut session = Session {
            shared: shared.clone(),
            ctl: ctl.clone(),
        };
        loop {
            tokio::select! {
                _ = ctl.kill.cancelled() => break,
                item = stream.next() => match item {
                    Some(Ok(Inbound::Command(command))) => {
                        if session.handle(command).await == Flow::Close {
                            let _ = ctl.out.send(Outgoing::Close).await;
                            break;
                        }
                    }
                    Some(Ok(Inbound::Malformed(m))) => {
                        tracing::warn!(command_id = m.command_id, error = %m.error, "SMSC simulator: undecodable PDU");
                        if m.command_id & 0x8000_0000 == 0 {
                            ctl.send(Command::new(CommandStatus::from(status::ESME_RSYSERR), m.sequence_number, Pdu::GenericNack)).await;
                        } else {
                            session.resolve(m.sequence_number, m.command_status);
                        }
                    }
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "SMSC simulator: read failed");
                        break;
                    }
                    None => break,
                },
            }
        }
        ctl.bound.store(false, Ordering::Relaxed);
        ctl.pending.lock().unwrap().take();
        shared.sessions.lock().unwrap().retain(|s| s.id != ctl.id);
        // Let a final unbind_resp reach the wire; a killed writer stops at once.
        let _ = tokio::time::timeout(Duration::from_secs(1), writer).await;
        tracing::debug!(session = ctl.id, "SMSC simulator: connection closed");
    });
}

#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Close,
}

struct Session {
    shared: Arc<Shared>,
    ctl: SessionCtl,
}

/// Parts of concatenated MT messages, kept across connections as an SMSC would (an ESME may
/// send part 1 before a reconnect and the rest after). Keyed by "source\0destination".
#[derive(Debug)]
pub(super) struct MtParts {
    parts: Reassembler,
    segments: HashMap<SetKey, Vec<SubmittedSegment>>,
}

impl Default for MtParts {
    fn default() -> Self {
        MtParts {
            parts: Reassembler::new(MT_REASSEMBLY_TIMEOUT),
            segments: HashMap::new(),
        }
    }
}

impl Session {
    async fn handle(&mut self, command: Command) -> Flow {
        let id = command.id();
        if id.is_response() {
            self.resolve(command.sequence_number(), u32::from(command.status()));
            return Flow::Continue;
        }
        match command.pdu() {
            Some(Pdu::BindTransceiver(b)) => {
                let s = self.check_bind(b.system_id.as_str(), b.password.as_str());
                self.ctl
                    .respond(
                        &command,
                        s,
                        BindTransceiverResp::builder().system_id(sim_id()).build(),
                    )
                    .await;
            }
            Some(Pdu::BindTransmitter(b)) => {
                let s = self.check_bind(b.system_id.as_str(), b.password.as_str());
                self.ctl
                    .respond(
                        &command,
                        s,
                        BindTransmitterResp::builder().system_id(sim_id()).build(),
                    )
                    .await;
            }
            Some(Pdu::BindReceiver(b)) => {
                let s = self.check_bind(b.system_id.as_str(), b.password.as_str());
                self.ctl
                    .respond(
                        &command,
                        s,
                        BindReceiverResp::builder().system_id(sim_id()).build(),
                    )
                    .await;
            }
            Some(Pdu::EnquireLink) => {
                self.shared
                    .counters
                    .enquire_links
                    .fetch_add(1, Ordering::Relaxed);
                if self.shared.config.answer_enquire_link {
                    self.ctl
                        .respond(&command, status::ESME_ROK, Pdu::EnquireLinkResp)
                        .await;
                }
            }
            Some(Pdu::Unbind) => {
                self.shared.counters.unbinds.fetch_add(1, Ordering::Relaxed);
                self.ctl.bound.store(false, Ordering::Relaxed);
                self.ctl
                    .respond(&command, status::ESME_ROK, Pdu::UnbindResp)
                    .await;
                return Flow::Close;
            }
            Some(Pdu::SubmitSm(sm)) => {
                let n = self.shared.counters.submits.fetch_add(1, Ordering::Relaxed) + 1;
                if self.shared.config.drop_on_submit == Some(n) {
                    tracing::info!(
                        n,
                        "SMSC simulator: dropping the connection on this submit_sm (fault)"
                    );
                    self.ctl.kill();
                    return Flow::Continue;
                }
                if self.shared.config.drop_while_answering == Some(n) {
                    tracing::info!(
                        n,
                        "SMSC simulator: dropping the connection while answering this submit_sm (fault)"
                    );
                    self.ctl.kill();
                }
                self.submit(&command, sm, n).await
            }
            Some(Pdu::AlertNotification(_)) | Some(Pdu::Outbind(_)) => {}
            _ => {
                tracing::debug!(?id, "SMSC simulator: unsupported request");
                self.ctl
                    .send(Command::new(
                        CommandStatus::EsmeRinvcmdid,
                        command.sequence_number(),
                        Pdu::GenericNack,
                    ))
                    .await;
            }
        }
        Flow::Continue
    }

    /// Hands a response's status to whoever sent the request.
    fn resolve(&self, seq: u32, status: u32) {
        let waiter = self
            .ctl
            .pending
            .lock()
            .unwrap()
            .as_mut()
            .and_then(|m| m.remove(&seq));
        if let Some(tx) = waiter {
            let _ = tx.send(status);
        }
    }

    fn check_bind(&self, system_id: &str, password: &str) -> u32 {
        let config = &self.shared.config;
        let result = if self.ctl.is_bound() {
            status::ESME_RALYBND
        } else if system_id != config.system_id {
            status::ESME_RINVSYSID
        } else if password != config.password {
            status::ESME_RINVPASWD
        } else {
            self.ctl.bound.store(true, Ordering::Relaxed);
            self.shared.counters.binds.fetch_add(1, Ordering::Relaxed);
            status::ESME_ROK
        };
        tracing::debug!(system_id, status = result, "SMSC simulator: bind");
        result
    }

    /// Answers the `n`-th submit_sm of the simulator's life.
    async fn submit(&mut self, command: &Command, sm: &SubmitSm, n: u64) {
        let counters = &self.shared.counters;
        let empty = SubmitSmResp::builder().build();
        if !self.ctl.is_bound() {
            self.ctl
                .respond(command, status::ESME_RINVBNDSTS, empty)
                .await;
            return;
        }
        if let Some(t) = self.shared.config.throttle.filter(|t| t.refuses(n)) {
            counters.throttled.fetch_add(1, Ordering::Relaxed);
            self.ctl.respond(command, t.status, empty).await;
            return;
        }
        let message_id = self.shared.next_message_id();
        let resp = SubmitSmResp::builder()
            .message_id(COctetString::from_string(message_id.clone()).unwrap_or_default())
            .build();
        self.ctl.respond(command, status::ESME_ROK, resp).await;
        // Accepted only once the submit_sm_resp is on the wire: a drop can stop the writer with
        // it still queued, and the ESME then rightly sends the segment again. Counting it here
        // would make that resend look like a duplicate the SMSC had acknowledged.
        if !self.ctl.flushed().await {
            return;
        }

        let esm_class = u8::from(sm.esm_class);
        let data_coding = u8::from(sm.data_coding);
        let decoded = decode_mo(
            data_coding,
            esm_class,
            sm.short_message(),
            frame::message_payload(sm.tlvs()),
        );
        let (text, concat, units) = match decoded {
            Ok(m) => (m.text, m.concat, m.units),
            Err(e) => {
                tracing::warn!(error = %e, "SMSC simulator: cannot decode an MT segment");
                (String::new(), None, Vec::new())
            }
        };
        let segment = SubmittedSegment {
            source: sm.source_addr.as_str().to_owned(),
            destination: sm.destination_addr.as_str().to_owned(),
            esm_class,
            data_coding,
            registered_delivery: u8::from(sm.registered_delivery),
            short_message: sm.short_message().to_vec(),
            message_id: message_id.clone(),
            sequence_number: command.sequence_number(),
            text: text.clone(),
            concat,
        };
        self.shared.record_segment(segment.clone());
        if self.shared.config.delivery_receipts && segment.registered_delivery & 0x01 != 0 {
            self.send_receipt(&segment).await;
        }

        let Some(c) = concat else {
            self.shared.record_message(MtMessage {
                source: segment.source.clone(),
                destination: segment.destination.clone(),
                text,
                segments: vec![segment],
            });
            return;
        };
        let now = Instant::now();
        let key_source = format!("{}\0{}", segment.source, segment.destination);
        let key = SetKey::new(&key_source, c);
        let complete = {
            let mut mt = self.shared.mt_parts.lock().unwrap();
            for expired in mt.parts.expire(now) {
                mt.segments.remove(&expired);
            }
            match mt.parts.add(&key_source, c, units, now) {
                Added::Buffered => {
                    mt.segments.entry(key).or_default().push(segment);
                    None
                }
                Added::Duplicate => None,
                Added::Complete(text) => {
                    mt.parts.release(&key_source, c);
                    let mut segments = mt.segments.remove(&key).unwrap_or_default();
                    segments.push(segment);
                    segments.sort_by_key(|s| s.concat.map(|c| c.seq));
                    Some((text, segments))
                }
            }
        };
        if let Some((text, segments)) = complete {
            self.shared.record_message(MtMessage {
                source: segments[0].source.clone(),
                destination: segments[0].destination.clone(),
                text,
                segments,
            });
        }
    }

    /// A delivery receipt for one accepted segment: from the handset back to the sender.
    async fn send_receipt(&self, segment: &SubmittedSegment) {
        let now = chrono::Utc::now().format("%y%m%d%H%M").to_string();
        // Receipt text goes out in the default alphabet: keep the excerpt printable ASCII.
        let excerpt: String = segment
            .text
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() || c == ' ' {
                    c
                } else {
                    '?'
                }
            })
            .collect();
        let text = receipt::format(&segment.message_id, "DELIVRD", 0, &now, &now, &excerpt);
        let body = Segment {
            data_coding: 0,
            esm_class: receipt::ESM_DELIVERY_RECEIPT,
            short_message: text.into_bytes(),
            concat: None,
        };
        let mut pdu: DeliverSm = frame::deliver_sm(&segment.destination, &segment.source, &body);
        pdu.esm_class = EsmClass::from(receipt::ESM_DELIVERY_RECEIPT);
        pdu.data_coding = DataCoding::from(0u8);
        if let Ok(id) = COctetString::from_string(segment.message_id.clone()) {
            pdu.push_tlv(MessageDeliveryRequestTlvValue::ReceiptedMessageId(id));
        }
        pdu.push_tlv(MessageDeliveryRequestTlvValue::MessageState(
            MessageState::Delivered,
        ));
        // Nobody waits for this one's deliver_sm_resp: a receipt is best effort here.
        self.ctl
            .send(Command::new(
                CommandStatus::EsmeRok,
                self.ctl.seq.next(),
                pdu,
            ))
            .await;
    }
}

fn sim_id() -> COctetString<1, 16> {
    COctetString::from_string("OPENHALLSIM".to_owned()).unwrap_or_default()
}
