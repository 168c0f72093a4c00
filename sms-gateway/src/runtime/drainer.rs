//! Sends the outbox: every SMS the hall queued (command replies, codes, notices), from the
//! short code, over the SMPP link.
//!
//! While the link is bound: take a batch (replies handed over by the writer as it queued them,
//! or due messages claimed from the outbox: codes and notices, retries, claims another
//! gateway left, replies queued while this drainer was behind), send them with up to `window`
//! messages in flight (the link's own window also bounds segments), and record each outcome:
//! accepted → `outbox_sent` with the SMSC's message ids (receipts are matched against them);
//! link down, timed out or still throttled after the link's retries → `outbox_failed`, retried
//! later with the hall's back-off; rejected by the SMSC → failed for good. Messages to one
//! number go one after the other, so a handset gets its replies in order.
//!
//! Throughput (issue 4): the sends of a batch that the SMSC accepted are recorded together,
//! once the batch's submits are done (failures, rare, one by one), by the gateway's writer
//! while the next batch is sent.
//!
//! Nothing is claimed while the link is down, so an outage does not burn attempts (replies
//! handed over then are given back). If this
//! process dies with messages claimed, the hall hands them to another sender when the claim
//! expires; a message that had reached the SMSC then goes twice (SMPP offers no better).
use std::collections::HashMap;
use std::sync::Arc;

use app::service::sms::OutboundSms;
use app::Hall;
use futures::StreamExt;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio_util::sync::CancellationToken;

use super::handoff::{Handed, Lookout};
use super::writer::{Job, WriteRuntime};
use super::{masked, Counters, RuntimeOptions};
use crate::smpp::{EsmeHandle, SubmitError};

pub(crate) struct Drainer {
    pub hall: Hall,
    pub writes: WriteRuntime,
    pub esme: EsmeHandle,
    pub options: RuntimeOptions,
    /// Most messages in flight at once (the link's window).
    pub window: usize,
    pub outbox_ready: Arc<Notify>,
    pub handed: Handed<OutboundSms>,
    pub to_writer: mpsc::Sender<Job>,
    pub counters: Arc<Counters>,
    pub stop: CancellationToken,
}

/// Groups a claimed batch by number, keeping the claim order within each number and the order
/// of first appearance across numbers.
pub(crate) fn by_number(batch: Vec<OutboundSms>) -> Vec<Vec<OutboundSms>> {
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut groups: Vec<Vec<OutboundSms>> = Vec::new();
    for sms in batch {
        match index.get(&sms.msisdn) {
            Some(&i) => groups[i].push(sms),
            None => {
                index.insert(sms.msisdn.clone(), groups.len());
                groups.push(vec![sms]);
            }
        }
    }
    groups
}

impl Drainer {
    pub(crate) async fn run(mut self) {
        let mut bound = self.esme.bound_watch();
        // Set once stopping: what is due (the worker's last replies among it) is still sent
        // while the link is up, until nothing is left or this deadline passes.
        let mut deadline: Option<tokio::time::Instant> = None;
        let mut lookout = Lookout::new(self.options.poll);
        let mut writer_gone = false;
        loop {
            let stopping = self.stop.is_cancelled();
            if stopping {
                let d = *deadline.get_or_insert_with(|| {
                    // One last look in the database, whenever the last one was.
                    lookout.wake();
                    tokio::time::Instant::now() + self.options.shutdown_timeout
                });
                if tokio::time::Instant::now() >= d {
                    break;
                }
            }
            if !*bound.borrow_and_update() {
                self.give_back().await;
                if stopping {
                    break;
                }
                tokio::select! {
                    _ = self.stop.cancelled() => {}
                    _ = bound.changed() => {}
                    _ = tokio::time::sleep(self.options.poll) => {}
                }
                lookout.wake();
                continue;
            }
            let limit = self.options.outbox_batch;
            let batch = lookout
                .next_batch(
                    &mut self.handed,
                    limit,
                    self.writes.run({
                        let hall = self.hall.clone();
                        async move { hall.claim_outbox(limit).await }
                    }),
                    "the outbox",
                )
                .await;
            if batch.is_empty() {
                if stopping {
                    break;
                }
                tokio::select! {
                    _ = self.stop.cancelled() => {}
                    b = self.handed.next(), if !writer_gone => match b {
                        Some(b) => {
                            if self.send_batch(b).await {
                                break;
                            }
                        }
                        None => writer_gone = true,
                    },
                    _ = self.outbox_ready.notified() => lookout.wake(),
                    _ = tokio::time::sleep(self.options.poll) => lookout.wake(),
                    _ = bound.changed() => {}
                }
                continue;
            }
            if self.send_batch(batch).await {
                break;
            }
        }
        self.give_back().await;
        // What the SMSC accepted is recorded before the link is let go.
        let (flushed, wait) = oneshot::channel();
        if self.to_writer.send(Job::Flush(flushed)).await.is_ok() {
            let _ = wait.await;
        }
        tracing::debug!("outbox drainer stopped");
    }

    /// Replies handed over that this drainer will not send now (the link is down, or it is
    /// stopping) are queued again, for whichever sender is up.
    async fn give_back(&mut self) {
        let mut left: Vec<i64> = Vec::new();
        while let Some(b) = self.handed.try_next() {
            left.extend(b.iter().map(|m| m.id));
        }
        if self.stop.is_cancelled() {
            left.extend(self.handed.close().iter().map(|m| m.id));
        }
        if let Err(e) = self.hall.release_outbox(&left).await {
            tracing::warn!(count = left.len(), error = %e.operator_detail(),
                "cannot give back claimed replies; they are sent when the claim expires");
        }
    }

    /// Sends a batch, messages to one number in order, up to the window at once, and hands
    /// what the SMSC accepted to the writer. Returns whether to give up (stopping, and the
    /// batch did not finish in time).
    async fn send_batch(&self, batch: Vec<OutboundSms>) -> bool {
        // A batch in hand is finished even when stopping, within shutdown_timeout: the
        // link stays up until the drainer returns.
        let this = self;
        let accepted: std::sync::Mutex<Vec<(i64, Vec<String>)>> = Default::default();
        let accepted = &accepted;
        let send = futures::stream::iter(by_number(batch)).for_each_concurrent(
            self.window,
            |group| async move {
                for sms in group {
                    if let Some(sent) = this.send(sms).await {
                        accepted.lock().unwrap().push(sent);
                    }
                }
            },
        );
        tokio::pin!(send);
        let mut give_up = false;
        tokio::select! {
            _ = &mut send => {}
            _ = self.stop.cancelled() => {
                if tokio::time::timeout(self.options.shutdown_timeout, &mut send).await.is_err() {
                    tracing::warn!("stopping with outbox messages still in flight; they will be sent again when their claim expires");
                    give_up = true;
                }
            }
        }
        let accepted = std::mem::take(&mut *accepted.lock().unwrap());
        // Recorded by the writer while the next batch is sent.
        if !accepted.is_empty() && self.to_writer.send(Job::Sent(accepted)).await.is_err() {
            tracing::error!("the gateway writer stopped; accepted MT will be sent again when their claim expires");
        }
        give_up
    }

    /// Sends one message. Accepted: returns it with its message ids, to be recorded with the
    /// rest of the batch. Not: records the failure now.
    async fn send(&self, sms: OutboundSms) -> Option<(i64, Vec<String>)> {
        let to = masked(&sms.msisdn);
        let result = self
            .esme
            .submit(&sms.msisdn, &self.options.short_code, &sms.body)
            .await;
        let recorded = match result {
            Ok(ids) => {
                tracing::debug!(id = sms.id, to = %to, kind = %sms.kind, parts = ids.len(), "MT accepted by the SMSC");
                return Some((sms.id, ids));
            }
            Err(e) => {
                let permanent = matches!(e, SubmitError::Rejected { .. });
                if permanent {
                    tracing::warn!(id = sms.id, to = %to, kind = %sms.kind, error = %e, "MT rejected by the SMSC; given up");
                } else {
                    tracing::info!(id = sms.id, to = %to, kind = %sms.kind, error = %e, "MT not sent; will retry");
                }
                let recorded = self
                    .hall
                    .outbox_failed(sms.id, &e.to_string(), permanent)
                    .await;
                // Counted once recorded, so whoever reads the counters finds the outbox agreeing.
                if recorded.is_ok() {
                    Counters::bump(if permanent {
                        &self.counters.mt_failed
                    } else {
                        &self.counters.mt_retry_later
                    });
                }
                recorded
            }
        };
        if let Err(e) = recorded {
            // Left claimed: the hall hands it out again when the claim expires, so a message
            // the SMSC accepted may go twice — better than one never sent.
            tracing::error!(id = sms.id, error = %e.operator_detail(),
                "cannot record the failure of an MT");
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sms(id: i64, to: &str) -> OutboundSms {
        OutboundSms {
            id,
            msisdn: to.into(),
            kind: "reply".into(),
            body: String::new(),
            attempts: 1,
        }
    }

    #[test]
    fn a_batch_is_grouped_by_number_in_order() {
        let groups = by_number(vec![
            sms(1, "13800138000"),
            sms(2, "13900139000"),
            sms(3, "13800138000"),
            sms(4, "15000150000"),
            sms(5, "13900139000"),
        ]);
        let ids: Vec<Vec<i64>> = groups
            .iter()
            .map(|g| g.iter().map(|s| s.id).collect())
            .collect();
        assert_eq!(ids, vec![vec![1, 3], vec![2, 5], vec![4]]);
    }
}
