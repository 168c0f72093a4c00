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
//! Delivery receipts are recorded against the outbox message they report on (waiting a little
//! for a receipt that overtakes the record of its message's sending).
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

/// The SMPP link's [`MoHandler`]: stores MO in the hall's inbox, records receipts.
pub struct Inbox {
    hall: Hall,
    /// To the storing task (see the module doc).
    to_store: mpsc::Sender<Pending>,
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
        Inbox {
            hall,
            to_store,
            counters,
            receipt_wait,
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
        // A receipt can overtake its own bookkeeping: the SMSC answers each part's submit_sm
        // and may report its delivery at once, while the hall records the message ids only
        // when every part is accepted. So an unknown id is looked up again for a while
        // (this runs in its own task; only this receipt's answer waits).
        let deadline = tokio::time::Instant::now() + self.receipt_wait;
        let mut pause = Duration::from_millis(20);
        loop {
            match self
                .hall
                .outbox_receipt(&receipt.message_id, &receipt.stat)
                .await
            {
                Ok(true) => {
                    Counters::bump(&self.counters.receipts_matched);
                    return MoVerdict::Accept;
                }
                Ok(false) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(500));
                }
                Ok(false) => {
                    // Another system's message, or one whose sending was never recorded.
                    Counters::bump(&self.counters.receipts_unmatched);
                    tracing::info!(message_id = %receipt.message_id, stat = %receipt.stat,
                        "delivery receipt for a message id the outbox does not know");
                    return MoVerdict::Accept;
                }
                Err(e) => {
                    tracing::warn!(error = %e.operator_detail(), "cannot record a delivery receipt; asking for redelivery");
                    return MoVerdict::TemporaryFailure;
                }
            }
        }
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
