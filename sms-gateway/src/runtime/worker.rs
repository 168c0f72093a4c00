//! Handles stored MO: take a batch (handed over by the writer as it stored them, or claimed
//! from the inbox: MO another gateway left, or stored while this worker was behind), run the
//! command handler on its MO, and hand the batch with its replies to the writer, which marks
//! them handled and queues the replies in one transaction (so an MO is answered once even if
//! this process dies half-way).
//!
//! Throughput (issue 4): a batch's senders are handled concurrently (at most
//! [`HANDLER_CONCURRENCY`] at once), each sender's MO one after the other in the order they
//! arrived — `KTEDU10` then `是` must run in that order — and the whole batch is completed in
//! one round of the writer while the next batch is handled.
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
use tokio::sync::{mpsc, oneshot, Notify};
use tokio_util::sync::CancellationToken;

use super::handoff::{Handed, Lookout};
use super::writer::{Job, WriteRuntime};
use super::{is_for_short_code, masked, CommandHandler, Counters, RuntimeOptions};

/// In-process memory of handler failures is capped (ids of MO that another instance finished
/// would otherwise stay forever).
const FAILURE_MEMORY: usize = 10_000;
/// Most senders whose commands run at once.
pub const HANDLER_CONCURRENCY: usize = 64;

pub(crate) struct Worker {
    pub hall: Hall,
    pub writes: WriteRuntime,
    pub handler: Arc<dyn CommandHandler>,
    pub options: RuntimeOptions,
    pub mo_arrived: Arc<Notify>,
    pub handed: Handed<InboxMo>,
    pub to_writer: mpsc::Sender<Job>,
    pub counters: Arc<Counters>,
    pub stop: CancellationToken,
}

enum Outcome {
    Reply(Option<String>),
    /// Panicked or timed out: leave the MO claimed for a later try.
    Failed,
}

impl Worker {
    pub(crate) async fn run(mut self) {
        let mut failures: HashMap<i64, u32> = HashMap::new();
        // Set once stopping: MO already stored (and so acknowledged) are still handled, until
        // none is left or this deadline passes; the rest wait for the next gateway.
        let mut deadline: Option<tokio::time::Instant> = None;
        let mut lookout = Lookout::new(self.options.poll);
        let mut writer_gone = false;
        loop {
            if self.stop.is_cancelled() {
                let d = *deadline.get_or_insert_with(|| {
                    // One last look in the database, whenever the last one was.
                    lookout.wake();
                    tokio::time::Instant::now() + self.options.shutdown_timeout
                });
                if tokio::time::Instant::now() >= d {
                    break;
                }
            }
            let limit = self.options.mo_batch;
            let batch = lookout
                .next_batch(
                    &mut self.handed,
                    limit,
                    self.writes.run({
                        let hall = self.hall.clone();
                        async move { hall.claim_mo(limit).await }
                    }),
                    "stored MO",
                )
                .await;
            // A batch in hand is finished even when stopping: each MO is quick, and leaving
            // them claimed would delay their answers by the claim timeout.
            if !batch.is_empty() {
                self.handle_batch(batch, &mut failures).await;
                continue;
            }
            if self.stop.is_cancelled() {
                break;
            }
            tokio::select! {
                _ = self.stop.cancelled() => {}
                b = self.handed.next(), if !writer_gone => match b {
                    Some(b) => self.handle_batch(b, &mut failures).await,
                    None => writer_gone = true,
                },
                _ = self.mo_arrived.notified() => lookout.wake(),
                _ = tokio::time::sleep(self.options.poll) => lookout.wake(),
            }
        }
        // Handed over and not handled: given back for the next gateway at once.
        let left: Vec<i64> = self.handed.close().iter().map(|m| m.id).collect();
        if let Err(e) = self.hall.release_mo(&left).await {
            tracing::warn!(count = left.len(), error = %e.operator_detail(),
                "cannot give back claimed MO; they are handled when the claim expires");
        }
        // The last completions are written before the drainer is told to stop.
        let (flushed, wait) = oneshot::channel();
        if self.to_writer.send(Job::Flush(flushed)).await.is_ok() {
            let _ = wait.await;
        }
        tracing::debug!("MO worker stopped");
    }

    /// Runs the handler over a claimed batch (senders concurrently, each sender in order),
    /// then completes every MO that got an answer in one call.
    async fn handle_batch(&self, batch: Vec<InboxMo>, failures: &mut HashMap<i64, u32>) {
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
        // Completed by the writer while this loop handles the next batch; one batch after
        // the other, so replies keep their order across batches too.
        if self
            .to_writer
            .send(Job::Completed(done, received))
            .await
            .is_err()
        {
            tracing::error!(
                "the gateway writer stopped; the batch will be handled again when its claim expires"
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
