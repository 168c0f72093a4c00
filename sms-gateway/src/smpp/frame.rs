//! Framing and PDU helpers shared by the ESME and the SMSC simulator.
//!
//! [`SmppCodec`] wraps rusmpp's `CommandCodec`: it cuts a whole PDU out of the stream by its
//! command_length *before* decoding it, so a PDU rusmpp cannot decode (a bad field, a stray
//! non-ASCII address) becomes [`Inbound::Malformed`] with its header — the session answers it
//! and carries on — instead of a stream error that would drop the link and, with the SMSC
//! redelivering the same PDU, loop forever. Only a nonsensical command_length is fatal: after
//! it the stream cannot be re-synchronised.
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};

use rusmpp::decode::DecodeWithLength;
use rusmpp::pdus::{DeliverSm, SubmitSm};
use rusmpp::tlvs::{Tlv, TlvValue};
use rusmpp::types::{COctetString, OctetString};
use rusmpp::values::{DataCoding, EsmClass, Npi, PriorityFlag, RegisteredDelivery, Ton};
use rusmpp::{Command, CommandStatus};
use tokio_util::bytes::{Buf, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use futures::{Sink, SinkExt};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::text::Segment;

/// The largest PDU we accept (SMPP gives no bound; 64 KiB is far above any real one).
pub const MAX_PDU: usize = 64 * 1024;

/// A PDU read from the peer.
// Each value is moved once from the codec to its handler: boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Inbound {
    Command(Command),
    /// A PDU with a sane length whose body rusmpp could not decode.
    Malformed(Malformed),
}

/// The header of an undecodable PDU, enough to answer it.
#[derive(Debug, Clone)]
pub struct Malformed {
    pub command_id: u32,
    pub command_status: u32,
    pub sequence_number: u32,
    pub error: String,
}

/// Length-delimited SMPP framing over rusmpp's PDU decoder.
#[derive(Debug, Default)]
pub struct SmppCodec {
    inner: rusmpp::tokio_codec::CommandCodec,
}

impl SmppCodec {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Decoder for SmppCodec {
    type Item = Inbound;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Inbound>, io::Error> {
        if src.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([src[0], src[1], src[2], src[3]]) as usize;
        if !(16..=MAX_PDU).contains(&len) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("SMPP command_length {len} out of range"),
            ));
        }
        if src.len() < len {
            src.reserve(len - src.len());
            return Ok(None);
        }
        let mut frame = src.split_to(len);
        let word =
            |i: usize| u32::from_be_bytes([frame[i], frame[i + 1], frame[i + 2], frame[i + 3]]);
        let (command_id, command_status, sequence_number) = (word(4), word(8), word(12));
        frame.advance(4);
        Ok(Some(match Command::decode(&mut frame, len - 4) {
            Ok((command, _)) => Inbound::Command(command),
            Err(e) => Inbound::Malformed(Malformed {
                command_id,
                command_status,
                sequence_number,
                error: e.to_string(),
            }),
        }))
    }
}

impl Encoder<Command> for SmppCodec {
    type Error = io::Error;

    fn encode(&mut self, command: Command, dst: &mut BytesMut) -> Result<(), io::Error> {
        self.inner.encode(&command, dst).map_err(|e| match e {
            rusmpp::tokio_codec::EncodeError::Io(e) => e,
            other => io::Error::other(other.to_string()),
        })
    }
}

/// What a session's writer task is asked to do.
#[allow(clippy::large_enum_variant)] // as for `Inbound`
#[derive(Debug)]
pub enum Outgoing {
    /// Write this PDU.
    Pdu(Command),
    /// Answered once every PDU queued before it has been written and flushed to the socket;
    /// dropped unanswered if the writer stops first (`closed`, a write error).
    Flushed(oneshot::Sender<()>),
    /// Flush, close the write half and stop (after a final unbind / unbind_resp).
    Close,
}

/// Most PDUs written out in one flush (one `write` to the socket).
const PDUS_PER_FLUSH: usize = 256;

/// Spawns the task that owns a session's write half: PDUs go out in the order they were
/// queued. A write error cancels `closed` (the reader then ends the session); `closed` being
/// cancelled stops the writer at once, dropping whatever is queued (an abrupt close).
///
/// Whatever is queued when the writer wakes goes out in one flush: at thousands of PDUs a
/// second, a flush for each was a `write` system call (and a wake-up of the peer's reader)
/// for each, on both ends of the link.
pub fn spawn_writer<S>(
    mut sink: S,
    mut rx: mpsc::Receiver<Outgoing>,
    closed: CancellationToken,
) -> tokio::task::JoinHandle<()>
where
    S: Sink<Command, Error = io::Error> + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut flushed: Vec<oneshot::Sender<()>> = Vec::new();
        loop {
            let next = tokio::select! {
                biased;
                _ = closed.cancelled() => break,
                next = rx.recv() => next,
            };
            let mut close = false;
            let mut written = match next {
                Some(Outgoing::Pdu(command)) => sink.feed(command).await,
                Some(Outgoing::Flushed(done)) => {
                    flushed.push(done);
                    Ok(())
                }
                Some(Outgoing::Close) | None => {
                    let _ = sink.close().await;
                    break;
                }
            };
            let mut fed = 1;
            while written.is_ok() && fed < PDUS_PER_FLUSH {
                match rx.try_recv() {
                    Ok(Outgoing::Pdu(command)) => {
                        written = sink.feed(command).await;
                        fed += 1;
                    }
                    Ok(Outgoing::Flushed(done)) => flushed.push(done),
                    Ok(Outgoing::Close) => {
                        close = true;
                        break;
                    }
                    // Empty, or every sender gone: the latter is seen by `recv` next time.
                    Err(_) => break,
                }
            }
            if close {
                // `close` flushes what was fed first.
                if written.and(sink.close().await).is_ok() {
                    flushed.drain(..).for_each(|done| {
                        let _ = done.send(());
                    });
                }
                break;
            }
            if let Err(e) = written.and(sink.flush().await) {
                tracing::debug!(error = %e, "SMPP write failed");
                closed.cancel();
                break;
            }
            flushed.drain(..).for_each(|done| {
                let _ = done.send(());
            });
        }
    })
}

/// Sequence numbers for one session: 1, 2, … 0x7FFFFFFF, then 1 again (SMPP 3.4 §5.1.4:
/// the range is 0x00000001 to 0x7FFFFFFF).
#[derive(Debug)]
pub struct Sequence(AtomicU32);

impl Default for Sequence {
    fn default() -> Self {
        Sequence(AtomicU32::new(1))
    }
}

impl Sequence {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts at `first` (tests use this to exercise the wrap).
    pub fn starting_at(first: u32) -> Self {
        Sequence(AtomicU32::new(first.clamp(1, 0x7FFF_FFFF)))
    }

    pub fn next(&self) -> u32 {
        let mut current = self.0.load(Ordering::Relaxed);
        loop {
            let following = if current >= 0x7FFF_FFFF {
                1
            } else {
                current + 1
            };
            match self.0.compare_exchange_weak(
                current,
                following,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return current,
                Err(actual) => current = actual,
            }
        }
    }
}

/// A C-octet-string address: printable ASCII only, at most 20 characters (SMPP's limit);
/// anything else is dropped rather than failing the whole message.
pub fn address(s: &str) -> COctetString<1, 21> {
    let clean: String = s
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(20)
        .collect();
    COctetString::from_string(clean).unwrap_or_default()
}

/// An octet string of up to 255 bytes (longer input is cut: segments never exceed 160).
pub fn short_message(bytes: &[u8]) -> OctetString<0, 255> {
    OctetString::from_slice(&bytes[..bytes.len().min(255)]).unwrap_or_default()
}

/// The numeric value of a status (rusmpp keeps unknown ones as `Other`).
pub fn status_code(status: CommandStatus) -> u32 {
    u32::from(status)
}

/// A submit_sm for one segment. esm_class is written from the segment's byte, never from
/// rusmpp's default (which encodes 0x08).
pub fn submit_sm(
    source: &str,
    destination: &str,
    segment: &Segment,
    want_receipt: bool,
) -> SubmitSm {
    SubmitSm::builder()
        .source_addr_ton(Ton::Unknown)
        .source_addr_npi(Npi::Unknown)
        .source_addr(address(source))
        .dest_addr_ton(Ton::Unknown)
        .dest_addr_npi(Npi::Isdn)
        .destination_addr(address(destination))
        .esm_class(EsmClass::from(segment.esm_class))
        .protocol_id(0)
        .priority_flag(PriorityFlag::from(0u8))
        .registered_delivery(RegisteredDelivery::from(u8::from(want_receipt)))
        .data_coding(DataCoding::from(segment.data_coding))
        .short_message(short_message(&segment.short_message))
        .build()
}

/// A deliver_sm carrying one segment of a subscriber's message (the simulator's MO).
pub fn deliver_sm(source: &str, destination: &str, segment: &Segment) -> DeliverSm {
    DeliverSm::builder()
        .source_addr_ton(Ton::Unknown)
        .source_addr_npi(Npi::Isdn)
        .source_addr(address(source))
        .dest_addr_ton(Ton::Unknown)
        .dest_addr_npi(Npi::Unknown)
        .destination_addr(address(destination))
        .esm_class(EsmClass::from(segment.esm_class))
        .priority_flag(PriorityFlag::from(0u8))
        .registered_delivery(RegisteredDelivery::from(0u8))
        .data_coding(DataCoding::from(segment.data_coding))
        .short_message(short_message(&segment.short_message))
        .build()
}

/// The `message_payload` TLV's bytes, if the PDU carries one.
pub fn message_payload(tlvs: &[Tlv]) -> Option<&[u8]> {
    tlvs.iter().find_map(|t| match t.value() {
        Some(TlvValue::MessagePayload(p)) => Some(p.value.as_ref()),
        _ => None,
    })
}

/// The `receipted_message_id` TLV, if present.
pub fn receipted_message_id(tlvs: &[Tlv]) -> Option<String> {
    tlvs.iter().find_map(|t| match t.value() {
        Some(TlvValue::ReceiptedMessageId(id)) => Some(id.as_str().to_owned()),
        _ => None,
    })
}

/// The `message_state` TLV, if present.
pub fn message_state(tlvs: &[Tlv]) -> Option<u8> {
    tlvs.iter().find_map(|t| match t.value() {
        Some(TlvValue::MessageState(s)) => Some(u8::from(*s)),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smpp::text::encode_mt;
    use proptest::prelude::*;
    use rusmpp::Pdu;

    fn encode(command: Command) -> BytesMut {
        let mut buf = BytesMut::new();
        SmppCodec::new().encode(command, &mut buf).unwrap();
        buf
    }

    #[test]
    fn sequence_wraps_before_0x80000000() {
        let s = Sequence::starting_at(0x7FFF_FFFE);
        assert_eq!(
            [s.next(), s.next(), s.next()],
            [0x7FFF_FFFE, 0x7FFF_FFFF, 1]
        );
    }

    #[test]
    fn esm_class_on_the_wire_is_what_the_segment_says() {
        // Header 16 + service_type 1 + ton/npi 2 + "10086\0" 6 + ton/npi 2 + "13800138000\0" 12.
        let offset = 16 + 1 + 2 + 6 + 2 + 12;
        let single = &encode_mt("hello")[0];
        let wire = encode(Command::new(
            CommandStatus::EsmeRok,
            1,
            submit_sm("10086", "13800138000", single, true),
        ));
        assert_eq!(wire[offset], 0x00, "not rusmpp's default 0x08");
        let long = &encode_mt(&"长".repeat(100))[0];
        let wire = encode(Command::new(
            CommandStatus::EsmeRok,
            1,
            submit_sm("10086", "13800138000", long, true),
        ));
        assert_eq!(wire[offset], 0x40);
    }

    #[test]
    fn a_pdu_rusmpp_rejects_is_reported_not_fatal() {
        // A deliver_sm whose source_addr is not ASCII, followed by a good enquire_link.
        let mut pdu = vec![0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 9];
        pdu.extend_from_slice(&[0, 0, 0, 0xC3, 0xA9, 0]);
        pdu.extend_from_slice(&[0; 20]);
        let len = pdu.len() as u32;
        pdu[..4].copy_from_slice(&len.to_be_bytes());
        let mut buf = BytesMut::from(&pdu[..]);
        buf.extend_from_slice(&encode(Command::new(
            CommandStatus::EsmeRok,
            10,
            Pdu::EnquireLink,
        )));
        let mut codec = SmppCodec::new();
        match codec.decode(&mut buf).unwrap() {
            Some(Inbound::Malformed(m)) => assert_eq!((m.command_id, m.sequence_number), (5, 9)),
            other => panic!("expected a malformed PDU, got {other:?}"),
        }
        match codec.decode(&mut buf).unwrap() {
            Some(Inbound::Command(c)) => assert_eq!(c.sequence_number(), 10),
            other => panic!("expected enquire_link, got {other:?}"),
        }
    }

    #[test]
    fn an_absurd_length_is_fatal() {
        let mut buf = BytesMut::from(&[0u8, 0, 0, 3, 0, 0, 0, 0][..]);
        assert!(SmppCodec::new().decode(&mut buf).is_err());
    }

    #[tokio::test]
    async fn queued_pdus_go_out_in_order_and_a_close_flushes_them_first() {
        use futures::StreamExt;
        use tokio_util::codec::{FramedRead, FramedWrite};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let (tx, rx) = mpsc::channel(1024);
        // More than one flush's worth, all queued before the writer runs.
        let n = PDUS_PER_FLUSH as u32 * 2 + 7;
        for seq in 1..=n {
            tx.send(Outgoing::Pdu(Command::new(
                CommandStatus::EsmeRok,
                seq,
                Pdu::EnquireLink,
            )))
            .await
            .unwrap();
        }
        tx.send(Outgoing::Close).await.unwrap();
        let writer = spawn_writer(
            FramedWrite::new(client, SmppCodec::new()),
            rx,
            CancellationToken::new(),
        );
        let mut read = FramedRead::new(server, SmppCodec::new());
        let mut seen = Vec::new();
        while let Some(frame) = read.next().await {
            match frame.unwrap() {
                Inbound::Command(c) => seen.push(c.sequence_number()),
                Inbound::Malformed(m) => panic!("malformed: {m:?}"),
            }
        }
        assert_eq!(seen, (1..=n).collect::<Vec<_>>(), "all, in order, then EOF");
        writer.await.unwrap();
    }

    proptest! {
        #[test]
        fn the_decoder_never_panics(body in proptest::collection::vec(any::<u8>(), 12..400)) {
            let mut pdu = ((body.len() + 4) as u32).to_be_bytes().to_vec();
            pdu.extend_from_slice(&body);
            let mut buf = BytesMut::from(&pdu[..]);
            let _ = SmppCodec::new().decode(&mut buf);
        }
    }
}
