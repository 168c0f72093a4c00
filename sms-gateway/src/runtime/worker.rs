//! Handles stored MO: claim a batch, run the command handler on its MO, and complete the
//! batch with the replies in one call (the hall queues the replies in the same transaction as
//! it marks the MO handled, so an MO is answered once even if this process dies half-way).
//!
//! Throughput (issue 4): a batch's senders are handled concurrently (at most
//! [`HANDLER_CONCURRENCY`] at once), each sender's MO one after the other in the order they
//! arrived — `KTEDU10` then `是` must run in that order — and the whole batch is completed in
//! one transaction — by a completer task, batch after batch, while the next batch is handled.
//!
//! A handler that panics or runs past [`RuntimeOptions::handler_timeout`] does not stop the
//! loop: the MO is left claimed, and the hall hands it out again when the claim expires. After
//! [`RuntimeOptions::max_handler_failures`] such failures on one MO it is completed without a
//! reply. A storage error is logged and the loop carries on after the poll interval.
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use app::service::sms::InboxMo;
use app::Hall;
use futures::{FutureExt, StreamExt};
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

use super::{is_for_short_code, masked, CommandHandler, Counters, RuntimeOptions};

/// In-process memory of handler failures is capped (ids of MO that another instance finished
/// would otherwise stay forever).
const FAILURE_MEMORY: usize = 10_000;
/// Most senders whose commands run at once.
pub const HANDLER_CONCURRENCY: usize = 64;

pub(crate) struct Worker {
    pub hall: Hall,
    pub handler: Arc<dyn CommandHandler>,
    pub options: RuntimeOptions,
    pub mo_arrived: Arc<Notify>,
    pub outbox_ready: Arc<Notify>,
    pub counters: Arc<Counters>,
    pub stop: CancellationToken,
}

/// A handled batch: `(inbox id, reply)` in arrival order, and when each was received.
type Completion = (
    Vec<(i64, Option<String>)>,
    Vec<chrono::DateTime<chrono::Utc>>,
);

/// Marks handled batches done and queues their replies, one batch after the other.
async fn complete(
    hall: Hall,
    mut completions: mpsc::Receiver<Completion>,
    counters: Arc<Counters>,
    outbox_ready: Arc<Notify>,
) {
    while let Some((done, received)) = completions.recv().await {
        match hall.complete_mo_batch(&done).await {
            Ok(()) => {
                // Stored → answered (reply queued), the part of a reply's latency that is ours.
                let now = chrono::Utc::now();
                for at in &received {
                    let secs = (now - *at).num_microseconds().unwrap_or(0).max(0) as f64 / 1e6;
                    metrics::histogram!("openhall_mo_reply_seconds").record(secs);
                }
                for (_, reply) in &done {
                    Counters::bump(&counters.mo_handled);
                    if reply.is_some() {
                        Counters::bump(&counters.replies_queued);
                    }
                }
                // The handlers may also have queued other messages (a subscription notice).
                outbox_ready.notify_one();
            }
            Err(e) => {
                tracing::warn!(count = done.len(), error = %e.operator_detail(),
                    "cannot complete a batch of MO; they will be handled again when their claim expires");
            }
        }
    }
}

enum Outcome {
    Reply(Option<String>),
    /// Panicked or timed out: leave the MO claimed for a later try.
    Failed,
}

impl Worker {
    pub(crate) async fn run(self) {
        let (to_complete, completions) = mpsc::channel(2);
        let completer = tokio::spawn(complete(
            self.hall.clone(),
            completions,
            self.counters.clone(),
            self.outbox_ready.clone(),
        ));
        let mut failures: HashMap<i64, u32> = HashMap::new();
        // Set once stopping: MO already stored (and so acknowledged) are still handled, until
        // none is left or this deadline passes; the rest wait for the next gateway.
        let mut deadline: Option<tokio::time::Instant> = None;
        loop {
            if self.stop.is_cancelled() {
                let d = *deadline.get_or_insert_with(|| {
                    tokio::time::Instant::now() + self.options.shutdown_timeout
                });
                if tokio::time::Instant::now() >= d {
                    break;
                }
            }
            let batch = match self.hall.claim_mo(self.options.mo_batch).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e.operator_detail(), "cannot claim stored MO");
                    Vec::new()
                }
            };
            let full = batch.len() as i64 >= self.options.mo_batch;
            // A claimed batch is finished even when stopping: each MO is quick, and leaving
            // them claimed would delay their answers by the claim timeout.
            self.handle_batch(batch, &mut failures, &to_complete).await;
            if full {
                continue;
            }
            if self.stop.is_cancelled() {
                break;
            }
            tokio::select! {
                _ = self.stop.cancelled() => {}
                _ = self.mo_arrived.notified() => {}
                _ = tokio::time::sleep(self.options.poll) => {}
            }
        }
        drop(to_complete);
        let _ = completer.await;
        tracing::debug!("MO worker stopped");
    }

    /// Runs the handler over a claimed batch (senders concurrently, each sender in order),
    /// then completes every MO that got an answer in one call.
    async fn handle_batch(
        &self,
        batch: Vec<InboxMo>,
        failures: &mut HashMap<i64, u32>,
        to_complete: &mpsc::Sender<Completion>,
    ) {
        if batch.is_empty() {
            return;
        }
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut senders: Vec<Vec<InboxMo>> = Vec::new();
        for mo in batch {
            match index.get(&mo.source) {
                Some(&i) => senders[i].push(mo),
                None => {
                    index.insert(mo.source.clone(), senders.len());
                    senders.push(vec![mo]);
                }
            }
        }
        let outcomes: Vec<(InboxMo, Outcome)> = futures::stream::iter(senders)
            .map(|mos| async move {
                let mut out = Vec::with_capacity(mos.len());
                for mo in mos {
                    let outcome = self.outcome(&mo).await;
                    out.push((mo, outcome));
                }
                out
            })
            .buffer_unordered(HANDLER_CONCURRENCY)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .flatten()
            .collect();
        let mut done: Vec<(i64, Option<String>)> = Vec::with_capacity(outcomes.len());
        let mut received: Vec<chrono::DateTime<chrono::Utc>> = Vec::with_capacity(outcomes.len());
        for (mo, outcome) in outcomes {
            let id = mo.id;
            match outcome {
                Outcome::Reply(r) => {
                    received.push(mo.received_at);
                    done.push((id, r));
                }
                Outcome::Failed => {
                    Counters::bump(&self.counters.handler_failures);
                    if failures.len() >= FAILURE_MEMORY {
                        failures.clear();
                    }
                    let n = failures.entry(id).or_insert(0);
                    *n += 1;
                    if *n < self.options.max_handler_failures {
                        tracing::error!(id, from = %masked(&mo.source), failures = *n,
                            "command handler failed; the MO will be tried again when its claim expires");
                        continue;
                    }
                    tracing::error!(id, from = %masked(&mo.source), failures = *n,
                        "command handler keeps failing on this MO; completing it without a reply");
                    done.push((id, None));
                }
            }
        }
        if done.is_empty() {
            return;
        }
        // In arrival order, so each sender's replies are queued (and sent) in order.
        done.sort_by_key(|(id, _)| *id);
        for (id, _) in &done {
            failures.remove(id);
        }
        // Completed by the completer while this loop handles the next batch; one batch after
        // the other, so replies keep their order across batches too.
        if to_complete.send((done, received)).await.is_err() {
            tracing::error!(
                "the MO completer stopped; the batch will be handled again when its claim expires"
            );
        }
    }

    async fn outcome(&self, mo: &InboxMo) -> Outcome {
        if is_for_short_code(&mo.destination, &self.options.short_code) {
            self.run_handler(mo).await
        } else {
            Counters::bump(&self.counters.mo_not_for_us);
            tracing::debug!(
                id = mo.id,
                "MO not addressed to the short code: stored, not answered"
            );
            Outcome::Reply(None)
        }
    }

    async fn run_handler(&self, mo: &InboxMo) -> Outcome {
        let work = self.handler.handle(&self.hall, &mo.source, &mo.body);
        let guarded = AssertUnwindSafe(work).catch_unwind();
        match tokio::time::timeout(self.options.handler_timeout, guarded).await {
            Ok(Ok(reply)) => Outcome::Reply(reply),
            Ok(Err(_)) => {
                tracing::error!(id = mo.id, "command handler panicked");
                Outcome::Failed
            }
            Err(_) => {
                tracing::error!(id = mo.id, timeout = ?self.options.handler_timeout, "command handler timed out");
                Outcome::Failed
            }
        }
    }
}
