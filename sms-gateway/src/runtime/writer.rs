//! The gateway's one writer: everything the gateway writes goes through it, a round at a time,
//! each round one transaction ([`Hall::sms_round`]).
//!
//! ```text
//!  link: deliver_sm (MO) ──────┐                        ┌──▶ worker (MO claimed as stored)
//!  link: deliver_sm (receipt) ─┤                        │
//!  worker: completed MO ───────┼──▶ Writer ── round ────┤
//!  drainer: accepted MT ───────┘                        └──▶ drainer (replies claimed as queued)
//! ```
//!
//! Throughput (issue 4): on SQLite there is one writer, and the gateway's transactions were
//! what it spent its time on — six for every batch of commands (store, claim, complete, claim
//! the replies, record their sending, record their receipts). Now a round writes whatever has
//! gathered of each while the previous round ran; MO are claimed for the worker as they are
//! stored and replies for the drainer as they are queued, so neither claims them again.
//!
//! Each MO is still acknowledged only after the round holding it has committed (a redelivery
//! the hall recognises is acknowledged too); if storing fails the SMSC is told ESME_RX_T_APPN
//! and delivers it again. A round that fails is written again part by part, so that one part's
//! failure (a receipt, say) does not refuse the MO that came with it.
//!
//! Delivery receipts can overtake the record of their own message's sending (the SMSC answers
//! a submit_sm and reports its delivery at once), so a receipt whose message id is unknown is
//! looked up again, in the next rounds, for `receipt_wait`; its deliver_sm is answered when it
//! is recorded or given up.
//!
//! Hand-offs wait only while the taker keeps up (at most [`HANDOFF_LIMIT`] batches' worth);
//! while the worker is behind, the writer stops taking MO (the SMSC's window fills: back
//! pressure, not memory); while the drainer is behind or the link is down, replies are queued
//! in the outbox and the drainer claims them from there.
use std::sync::Arc;
use std::time::Duration;

use app::service::sms::{InboxMo, OnArrival, OutboundSms, Replies, SmsRound, SmsRoundDone};
use app::Hall;
use tokio::sync::{mpsc, oneshot, watch, Notify};

use super::handoff::Handoff;
use super::{Counters, RuntimeOptions};
use crate::smpp::MoVerdict;

/// Most MO stored in one round.
pub const MO_BATCH: usize = 256;
/// Most other jobs (completed batches, accepted batches, receipts) taken into one round.
pub const JOBS_PER_ROUND: usize = 1024;
/// How many batches' worth may wait at the worker or the drainer.
pub const HANDOFF_LIMIT: usize = 4;
/// How soon a receipt for an unknown message id is looked up again, and how often a writer
/// holding MO back looks whether the worker has caught up.
const AGAIN: Duration = Duration::from_millis(25);

/// Runs the writer until every sender (the inbox, the worker, the drainer) has gone, on a
/// thread and runtime of its own.
///
/// Why (issue 4): the writer's rounds follow one another, each a dozen statements awaited one
/// after the other, and every MO waits for the round that stores it. On the shared runtime
/// each statement's answer waited behind the link's and the handlers' tasks to be polled: a
/// third of a round went to waiting for a turn (measured: 2.6 ms to begin, 18.7 ms a round).
/// Alone on its thread it is polled as soon as the database answers.
pub(crate) fn spawn(writer: Writer) -> WriteRuntime {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let started = runtime.map_err(|e| e.to_string()).and_then(|rt| {
        let handle = rt.handle().clone();
        std::thread::Builder::new()
            .name("gateway-writer".into())
            .spawn(move || rt.block_on(writer.run()))
            .map(|_| handle)
            .map_err(|e| e.to_string())
    });
    WriteRuntime(started.unwrap_or_else(|e| {
        // Without a writer no MO is acknowledged: the link's handlers answer with an error
        // and the SMSC redelivers; say why.
        tracing::error!(error = %e, "the gateway writer could not start");
        tokio::runtime::Handle::current()
    }))
}

/// The writer's runtime, for the gateway's other write transactions (the worker's and the
/// drainer's claims): run there, they hold SQLite's single write turn only as long as their
/// statements take, not also while waiting to be polled on the busy shared runtime — the
/// writer's rounds waited for them.
#[derive(Clone)]
pub(crate) struct WriteRuntime(tokio::runtime::Handle);

impl WriteRuntime {
    /// `write`, run on the writer's runtime.
    pub async fn run<T: Send + 'static>(
        &self,
        write: impl std::future::Future<Output = app::error::Result<T>> + Send + 'static,
    ) -> app::error::Result<T> {
        self.0
            .spawn(write)
            .await
            .map_err(|e| app::error::Error::Storage(format!("the gateway writer stopped: {e}")))?
    }
}

/// Where an MO's outcome goes: its inbox id, `None` for a redelivery, or the error as the
/// operator sees it.
pub(crate) type StoredAnswer = oneshot::Sender<std::result::Result<Option<i64>, String>>;

/// An MO to store.
pub(crate) struct StoreJob {
    pub mo: (String, String, String),
    pub answer: StoredAnswer,
}

/// A receipt waiting to be recorded: `(message id, stat)`, when to give up looking for its
/// message, and where the verdict goes.
pub(crate) struct PendingReceipt {
    pub receipt: (String, String),
    pub give_up_at: tokio::time::Instant,
    /// Not looked up again before this.
    pub next_try: tokio::time::Instant,
    pub verdict: oneshot::Sender<MoVerdict>,
}

/// Everything else the writer writes.
pub(crate) enum Job {
    /// A batch the worker handled: `(inbox id, reply)` in arrival order, and when each was
    /// received.
    Completed(
        Vec<(i64, Option<String>)>,
        Vec<chrono::DateTime<chrono::Utc>>,
    ),
    /// MT the SMSC accepted: `(outbox id, the parts' message ids)`.
    Sent(Vec<(i64, Vec<String>)>),
    Receipt(PendingReceipt),
    /// Answered once everything sent before it has been written (or failed).
    Flush(oneshot::Sender<()>),
}

pub(crate) struct Writer {
    pub hall: Hall,
    pub stores: mpsc::Receiver<StoreJob>,
    pub jobs: mpsc::Receiver<Job>,
    pub to_worker: Handoff<InboxMo>,
    pub to_drainer: Handoff<OutboundSms>,
    pub bound: watch::Receiver<bool>,
    pub mo_arrived: Arc<Notify>,
    pub outbox_ready: Arc<Notify>,
    pub counters: Arc<Counters>,
    pub options: RuntimeOptions,
}

/// One part's outcome, its error as the operator sees it.
type Part<T> = std::result::Result<T, String>;

/// A round's outcome, part by part.
struct Written {
    stored: Part<(Vec<Option<i64>>, Vec<InboxMo>)>,
    receipts: Part<Vec<bool>>,
    to_send: Part<Vec<OutboundSms>>,
    sent: Part<()>,
}

impl Writer {
    fn worker_limit(&self) -> usize {
        HANDOFF_LIMIT * self.options.mo_batch.max(1) as usize
    }

    fn drainer_limit(&self) -> usize {
        HANDOFF_LIMIT * self.options.outbox_batch.max(1) as usize
    }

    /// MO are taken while the worker keeps up, or when it has gone (stopping: they are then
    /// stored for the next gateway).
    fn takes_mo(&self) -> bool {
        self.to_worker.taker_gone() || self.to_worker.has_room(self.worker_limit())
    }

    pub(crate) async fn run(mut self) {
        let mut stores: Vec<StoreJob> = Vec::with_capacity(MO_BATCH);
        let mut jobs: Vec<Job> = Vec::with_capacity(JOBS_PER_ROUND);
        let mut later: Vec<PendingReceipt> = Vec::new();
        let (mut stores_open, mut jobs_open) = (true, true);
        loop {
            let take_mo = stores_open && self.takes_mo();
            let wait = !later.is_empty() || (stores_open && !take_mo);
            tokio::select! {
                biased;
                n = self.jobs.recv_many(&mut jobs, JOBS_PER_ROUND), if jobs_open => {
                    jobs_open = n > 0;
                }
                n = self.stores.recv_many(&mut stores, MO_BATCH), if take_mo => {
                    stores_open = n > 0;
                }
                _ = tokio::time::sleep(AGAIN), if wait => {}
                else => break,
            }
            // Whatever else is already there joins this round.
            while jobs_open && jobs.len() < JOBS_PER_ROUND {
                match self.jobs.try_recv() {
                    Ok(j) => jobs.push(j),
                    Err(_) => break,
                }
            }
            while take_mo && stores.len() < MO_BATCH {
                match self.stores.try_recv() {
                    Ok(s) => stores.push(s),
                    Err(_) => break,
                }
            }
            self.round(&mut stores, &mut jobs, &mut later).await;
        }
        tracing::debug!("gateway writer stopped");
    }

    /// Writes what has gathered, then gives each its outcome.
    async fn round(
        &self,
        stores: &mut Vec<StoreJob>,
        jobs: &mut Vec<Job>,
        later: &mut Vec<PendingReceipt>,
    ) {
        let mut round = SmsRound::default();
        let mut answers: Vec<StoredAnswer> = Vec::with_capacity(stores.len());
        for s in stores.drain(..) {
            round.received.push(s.mo);
            answers.push(s.answer);
        }
        let mut receipts: Vec<PendingReceipt> = Vec::new();
        let mut received_at: Vec<chrono::DateTime<chrono::Utc>> = Vec::new();
        let mut flushes: Vec<oneshot::Sender<()>> = Vec::new();
        for job in jobs.drain(..) {
            match job {
                Job::Completed(done, at) => {
                    round.completed.extend(done);
                    received_at.extend(at);
                }
                Job::Sent(sent) => round.sent.extend(sent),
                Job::Receipt(r) => receipts.push(r),
                Job::Flush(f) => flushes.push(f),
            }
        }
        // `later` is in the order receipts were put off, so the due ones come first.
        let now = tokio::time::Instant::now();
        let due = later.iter().take_while(|p| p.next_try <= now).count();
        receipts.extend(later.drain(..due));
        round.receipts = receipts.iter().map(|p| p.receipt.clone()).collect();
        let claim_mo = self.to_worker.has_room(self.worker_limit());
        round.on_arrival = Some(if claim_mo {
            OnArrival::Claim
        } else {
            OnArrival::Queue
        });
        let send_now = *self.bound.borrow() && self.to_drainer.has_room(self.drainer_limit());
        round.replies = Some(if send_now {
            Replies::Send(self.drainer_limit() as i64)
        } else {
            Replies::Queue
        });

        let started = std::time::Instant::now();
        let written = self.write(&round).await;
        let took = started.elapsed();
        metrics::histogram!("openhall_gateway_round_seconds").record(took.as_secs_f64());
        tracing::debug!(
            mo = round.received.len(),
            completed = round.completed.len(),
            sent = round.sent.len(),
            receipts = round.receipts.len(),
            ms = took.as_secs_f64() * 1e3,
            "gateway round"
        );
        self.answer_mo(&round, answers, written.stored).await;
        self.answer_receipts(receipts, written.receipts, later);
        self.completed(&round, &received_at, written.to_send).await;
        match written.sent {
            Ok(()) => {
                // Counted once recorded, so whoever reads the counters finds the outbox
                // agreeing.
                for _ in &round.sent {
                    Counters::bump(&self.counters.mt_sent);
                }
            }
            Err(e) => {
                // Left claimed: the hall hands them out again when the claim expires, so
                // messages the SMSC accepted may go twice — better than ones never sent.
                tracing::error!(count = round.sent.len(), error = %e,
                    "cannot record the sending of accepted MT");
            }
        }
        for f in flushes {
            let _ = f.send(());
        }
    }

    /// The round in one transaction; if that fails, each part in its own.
    async fn write(&self, round: &SmsRound) -> Written {
        let parts = [
            !round.received.is_empty(),
            !round.receipts.is_empty(),
            !round.completed.is_empty(),
            !round.sent.is_empty(),
        ];
        match self.hall.sms_round(round).await {
            Ok(done) => return written(Ok(done), [true; 4]),
            Err(e) if parts.iter().filter(|p| **p).count() <= 1 => {
                return written(Err(e.operator_detail()), parts)
            }
            Err(e) => {
                tracing::warn!(error = %e.operator_detail(), "a gateway round failed; writing its parts apart");
            }
        }
        let apart = [
            SmsRound {
                received: round.received.clone(),
                on_arrival: round.on_arrival,
                ..Default::default()
            },
            SmsRound {
                receipts: round.receipts.clone(),
                ..Default::default()
            },
            SmsRound {
                completed: round.completed.clone(),
                replies: round.replies,
                ..Default::default()
            },
            SmsRound {
                sent: round.sent.clone(),
                ..Default::default()
            },
        ];
        let mut each = Vec::with_capacity(4);
        for (i, part) in apart.iter().enumerate() {
            let mut only = [false; 4];
            only[i] = true;
            let result = self
                .hall
                .sms_round(part)
                .await
                .map_err(|e| e.operator_detail());
            each.push(written(result, only));
        }
        let [a, b, c, d]: [Written; 4] = each.try_into().ok().expect("four parts");
        Written {
            stored: a.stored,
            receipts: b.receipts,
            to_send: c.to_send,
            sent: d.sent,
        }
    }

    async fn answer_mo(
        &self,
        round: &SmsRound,
        answers: Vec<StoredAnswer>,
        stored: Part<(Vec<Option<i64>>, Vec<InboxMo>)>,
    ) {
        match stored {
            Ok((ids, claimed)) => {
                let any = ids.iter().any(Option::is_some);
                // Handed over before they are acknowledged: a gateway told to stop right after
                // acknowledging an MO finds it waiting for its worker and answers it.
                let mut give_back: Vec<i64> = Vec::new();
                if round.on_arrival == Some(OnArrival::Claim) {
                    if let Err(back) = self.to_worker.send(claimed) {
                        give_back = back.iter().map(|m| m.id).collect();
                    }
                } else if any {
                    self.mo_arrived.notify_one();
                }
                for (answer, id) in answers.into_iter().zip(ids) {
                    let _ = answer.send(Ok(id));
                }
                // The worker stopped meanwhile: given back for the next gateway (after the
                // acknowledgements, which need not wait for this write).
                if !give_back.is_empty() {
                    if let Err(e) = self.hall.release_mo(&give_back).await {
                        tracing::warn!(count = give_back.len(), error = %e.operator_detail(),
                            "cannot give back claimed MO; they are handled when the claim expires");
                    }
                }
            }
            Err(detail) => {
                for answer in answers {
                    let _ = answer.send(Err(detail.clone()));
                }
            }
        }
    }

    fn answer_receipts(
        &self,
        receipts: Vec<PendingReceipt>,
        matched: Part<Vec<bool>>,
        later: &mut Vec<PendingReceipt>,
    ) {
        match matched {
            Ok(matched) => {
                let now = tokio::time::Instant::now();
                for (p, matched) in receipts.into_iter().zip(matched) {
                    if matched {
                        Counters::bump(&self.counters.receipts_matched);
                        let _ = p.verdict.send(MoVerdict::Accept);
                    } else if now < p.give_up_at {
                        later.push(PendingReceipt {
                            next_try: now + AGAIN,
                            ..p
                        });
                    } else {
                        // Another system's message, or one whose sending was never recorded.
                        Counters::bump(&self.counters.receipts_unmatched);
                        tracing::info!(message_id = %p.receipt.0, stat = %p.receipt.1,
                            "delivery receipt for a message id the outbox does not know");
                        let _ = p.verdict.send(MoVerdict::Accept);
                    }
                }
            }
            Err(detail) => {
                tracing::warn!(count = receipts.len(), error = %detail,
                    "cannot record delivery receipts; asking for redelivery");
                for p in receipts {
                    let _ = p.verdict.send(MoVerdict::TemporaryFailure);
                }
            }
        }
    }

    async fn completed(
        &self,
        round: &SmsRound,
        received_at: &[chrono::DateTime<chrono::Utc>],
        to_send: Part<Vec<OutboundSms>>,
    ) {
        if round.completed.is_empty() {
            return;
        }
        match to_send {
            Ok(to_send) => {
                // Stored → answered (reply queued), the part of a reply's latency that is ours.
                let now = chrono::Utc::now();
                for at in received_at {
                    let secs = (now - *at).num_microseconds().unwrap_or(0).max(0) as f64 / 1e6;
                    metrics::histogram!("openhall_mo_reply_seconds").record(secs);
                }
                for (_, reply) in &round.completed {
                    Counters::bump(&self.counters.mo_handled);
                    if reply.is_some() {
                        Counters::bump(&self.counters.replies_queued);
                    }
                }
                if let Some(Replies::Send(_)) = round.replies {
                    if let Err(back) = self.to_drainer.send(to_send) {
                        // The drainer stopped meanwhile: queue them again for the next one.
                        let ids: Vec<i64> = back.iter().map(|m| m.id).collect();
                        if let Err(e) = self.hall.release_outbox(&ids).await {
                            tracing::warn!(count = ids.len(), error = %e.operator_detail(),
                                "cannot give back claimed replies; they are sent when the claim expires");
                        }
                    }
                } else {
                    self.outbox_ready.notify_one();
                }
            }
            Err(detail) => {
                tracing::warn!(count = round.completed.len(), error = %detail,
                    "cannot complete a batch of MO; they will be handled again when their claim expires");
            }
        }
    }
}

/// Spreads one `sms_round` result over the parts it wrote (`parts`: received, receipts,
/// completed, sent); a part it did not write is an empty success.
fn written(result: std::result::Result<SmsRoundDone, String>, parts: [bool; 4]) -> Written {
    match result {
        Ok(done) => Written {
            stored: Ok((done.stored, done.claimed)),
            receipts: Ok(done.receipts_matched),
            to_send: Ok(done.to_send),
            sent: Ok(()),
        },
        Err(e) => {
            let fail = |i: usize| parts[i].then(|| e.clone());
            Written {
                stored: fail(0).map_or(Ok((Vec::new(), Vec::new())), Err),
                receipts: fail(1).map_or(Ok(Vec::new()), Err),
                to_send: fail(2).map_or(Ok(Vec::new()), Err),
                sent: fail(3).map_or(Ok(()), Err),
            }
        }
    }
}
