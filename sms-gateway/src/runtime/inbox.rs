//! What the SMSC delivers, made durable before it is acknowledged.
//!
//! An MO is stored in the hall's inbox and only then answered ESME_ROK. A redelivery the hall
//! recognises (same sender and text within its dedupe window: the SMSC resending a
//! deliver_sm whose response it never saw) is acknowledged without being stored again, so it
//! is handled once. If storing fails (database down) the answer is ESME_RX_T_APPN and the SMSC
//! delivers the message again later: nothing is lost and nothing is handled that was not
//! stored. MO to numbers other than the short code are stored the same way; the worker
//! completes them without a reply.
//!
//! Throughput (issue 4): MO are stored by group commit. Each `on_mo` hands its MO to one
//! storing task and waits for its own answer; that task takes whatever has queued up (at most
//! [`MO_BATCH`]) and stores it in one transaction, so while one batch is being written the
//! next gathers, and a busy link pays one commit for hundreds of MO. Each MO is still
//! acknowledged only after the transaction holding it has committed; if it fails, every MO of
//! that batch is answered ESME_RX_T_APPN.
//!
//! Delivery receipts are recorded the same way, by one task in batches, against the outbox
//! message they report on. A receipt can overtake the record of its own message's sending
//! (the SMSC answers a submit_sm and reports its delivery at once, while the drainer records
//! the message ids when the batch is accepted), so a receipt whose message id is unknown is
//! looked up again, in the next batches, for `receipt_wait`; its deliver_sm is answered when it
//! is recorded or given up.
use std::sync::Arc;
use std::time::Duration;

use app::domain::Msisdn;
use app::Hall;
use tokio::sync::{mpsc, oneshot, Notify};

use super::{masked, Counters};
use crate::smpp::{DeliveryReceipt, IncomingMo, MoHandler, MoVerdict};

/// Most MO stored in one transaction.
pub const MO_BATCH: usize = 256;

/// An MO waiting to be stored, and where its outcome goes (the error as the operator sees it).
type Pending = (
    (String, String, String),
    oneshot::Sender<std::result::Result<Option<i64>, String>>,
);

/// Most receipts recorded in one transaction.
pub const RECEIPT_BATCH: usize = 512;

/// A receipt waiting to be recorded: `(message id, stat)`, when to give up looking for its
/// message, and where the verdict goes.
struct PendingReceipt {
    receipt: (String, String),
    give_up_at: tokio::time::Instant,
    /// Not looked up again before this.
    next_try: tokio::time::Instant,
    verdict: oneshot::Sender<MoVerdict>,
}

/// The SMPP link's [`MoHandler`]: stores MO in the hall's inbox, records receipts.
pub struct Inbox {
    /// To the storing task (see the module doc).
    to_store: mpsc::Sender<Pending>,
    /// To the receipt task.
    to_record: mpsc::Sender<PendingReceipt>,
    counters: Arc<Counters>,
    /// How long a receipt for a message id not (yet) recorded keeps being looked up.
    receipt_wait: Duration,
}

impl Inbox {
    pub(crate) fn new(
        hall: Hall,
        mo_arrived: Arc<Notify>,
        counters: Arc<Counters>,
        receipt_wait: Duration,
    ) -> Self {
        // Bounded: when storing falls behind, the link's handlers wait here (and the SMSC's
        // window fills) instead of memory growing.
        let (to_store, rx) = mpsc::channel(MO_BATCH * 8);
        // Ends when the inbox (the only sender) is dropped.
        tokio::spawn(store_batches(hall.clone(), rx, mo_arrived));
        let (to_record, receipts) = mpsc::channel(RECEIPT_BATCH * 8);
        tokio::spawn(record_receipts(hall, receipts, counters.clone()));
        Inbox {
            to_store,
            to_record,
            counters,
            receipt_wait,
        }
    }
}

/// The receipt task: records what has queued up in one transaction; receipts whose message
/// id is unknown go round again a little later until they match or their time is up.
async fn record_receipts(
    hall: Hall,
    mut rx: mpsc::Receiver<PendingReceipt>,
    counters: Arc<Counters>,
) {
    const AGAIN: Duration = Duration::from_millis(25);
    let mut batch: Vec<PendingReceipt> = Vec::with_capacity(RECEIPT_BATCH);
    let mut later: Vec<PendingReceipt> = Vec::new();
    let mut open = true;
    loop {
        if later.is_empty() {
            if !open || rx.recv_many(&mut batch, RECEIPT_BATCH).await == 0 {
                return;
            }
        } else if open {
            tokio::select! {
                n = rx.recv_many(&mut batch, RECEIPT_BATCH) => open = n > 0,
                _ = tokio::time::sleep(AGAIN) => {}
            }
        } else {
            tokio::time::sleep(AGAIN).await;
        }
        // `later` is in the order receipts were put off, so the due ones come first.
        let now = tokio::time::Instant::now();
        let due = later.iter().take_while(|p| p.next_try <= now).count();
        let room = RECEIPT_BATCH.saturating_sub(batch.len()).min(due);
        batch.extend(later.drain(..room));
        if batch.is_empty() {
            continue;
        }
        let receipts: Vec<(String, String)> = batch.iter().map(|p| p.receipt.clone()).collect();
        match hall.outbox_receipt_batch(&receipts).await {
            Ok(matched) => {
                let now = tokio::time::Instant::now();
                for (p, matched) in batch.drain(..).zip(matched) {
                    if matched {
                        Counters::bump(&counters.receipts_matched);
                        let _ = p.verdict.send(MoVerdict::Accept);
                    } else if now < p.give_up_at {
                        later.push(PendingReceipt {
                            next_try: now + AGAIN,
                            ..p
                        });
                    } else {
                        // Another system's message, or one whose sending was never recorded.
                        Counters::bump(&counters.receipts_unmatched);
                        tracing::info!(message_id = %p.receipt.0, stat = %p.receipt.1,
                            "delivery receipt for a message id the outbox does not know");
                        let _ = p.verdict.send(MoVerdict::Accept);
                    }
                }
            }
            Err(e) => {
                tracing::warn!(count = batch.len(), error = %e.operator_detail(),
                    "cannot record delivery receipts; asking for redelivery");
                for p in batch.drain(..) {
                    let _ = p.verdict.send(MoVerdict::TemporaryFailure);
                }
            }
        }
    }
}

/// The storing task: one transaction per gathered batch, then each waiter gets its answer.
async fn store_batches(hall: Hall, mut rx: mpsc::Receiver<Pending>, mo_arrived: Arc<Notify>) {
    let mut batch: Vec<Pending> = Vec::with_capacity(MO_BATCH);
    while rx.recv_many(&mut batch, MO_BATCH).await > 0 {
        let (mos, waiters): (Vec<_>, Vec<_>) = std::mem::take(&mut batch).into_iter().unzip();
        match hall.receive_mo_batch(&mos).await {
            Ok(ids) => {
                if ids.iter().any(Option::is_some) {
                    mo_arrived.notify_one();
                }
                for (waiter, id) in waiters.into_iter().zip(ids) {
                    let _ = waiter.send(Ok(id));
                }
            }
            Err(e) => {
                let detail = e.operator_detail();
                for waiter in waiters {
                    let _ = waiter.send(Err(detail.clone()));
                }
            }
        }
    }
}

/// The sender as the hall knows it: a mainland mobile number in any of the forms an SMSC
/// reports (`+86…`, `86…`, `0086…`) becomes its bare 11 digits, so that dedupe, the reply's
/// address and the command handler all see one form. Anything else is kept as given.
pub fn normalise_source(source: &str) -> String {
    match Msisdn::parse(source) {
        Ok(m) => m.as_str().to_owned(),
        Err(_) => source.trim().to_owned(),
    }
}

#[async_trait::async_trait]
impl MoHandler for Inbox {
    async fn on_mo(&self, mo: IncomingMo) -> MoVerdict {
        let source = normalise_source(&mo.source);
        let (tx, rx) = oneshot::channel();
        let item = (source.clone(), mo.destination.trim().to_owned(), mo.text);
        let stored = match self.to_store.send((item, tx)).await {
            Ok(()) => rx
                .await
                .unwrap_or_else(|_| Err("the MO storing task stopped".to_owned())),
            Err(_) => Err("the MO storing task stopped".to_owned()),
        };
        match stored {
            Ok(Some(id)) => {
                Counters::bump(&self.counters.mo_stored);
                tracing::debug!(id, from = %masked(&source), parts = mo.parts, "MO stored");
                MoVerdict::Accept
            }
            Ok(None) => {
                Counters::bump(&self.counters.mo_redelivered);
                tracing::info!(from = %masked(&source), "MO redelivered by the SMSC; already stored");
                MoVerdict::Accept
            }
            Err(e) => {
                Counters::bump(&self.counters.mo_refused);
                tracing::warn!(from = %masked(&source), error = %e,
                    "cannot store an MO; the SMSC is asked to deliver it again (ESME_RX_T_APPN)");
                MoVerdict::TemporaryFailure
            }
        }
    }

    async fn on_receipt(&self, receipt: DeliveryReceipt) -> MoVerdict {
        if receipt.message_id.is_empty() {
            // Nothing to match it with; redelivery would not change that.
            tracing::debug!(stat = %receipt.stat, "delivery receipt without a message id");
            return MoVerdict::Accept;
        }
        let (verdict, answer) = oneshot::channel();
        let pending = PendingReceipt {
            receipt: (receipt.message_id, receipt.stat),
            give_up_at: tokio::time::Instant::now() + self.receipt_wait,
            next_try: tokio::time::Instant::now(),
            verdict,
        };
        if self.to_record.send(pending).await.is_err() {
            return MoVerdict::TemporaryFailure;
        }
        answer.await.unwrap_or(MoVerdict::TemporaryFailure)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn senders_are_stored_in_one_form() {
        assert_eq!(normalise_source("+8613800138000"), "13800138000");
        assert_eq!(normalise_source("008613800138000"), "13800138000");
        assert_eq!(normalise_source("13800138000"), "13800138000");
        assert_eq!(normalise_source(" 10658 "), "10658");
    }
}
