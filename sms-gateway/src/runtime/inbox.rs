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
//! Throughput (issue 4): MO and receipts are written by the gateway's one writer
//! ([`super::writer`]), in rounds; each `on_mo` waits for the round holding its MO to commit.
use std::sync::Arc;
use std::time::Duration;

use app::domain::Msisdn;
use tokio::sync::{mpsc, oneshot};

use super::writer::{Job, PendingReceipt, StoreJob};
use super::{masked, Counters};
use crate::smpp::{DeliveryReceipt, IncomingMo, MoHandler, MoVerdict};

/// The SMPP link's [`MoHandler`]: stores MO in the hall's inbox, records receipts, both
/// through the writer.
pub struct Inbox {
    to_store: mpsc::Sender<StoreJob>,
    to_record: mpsc::Sender<Job>,
    counters: Arc<Counters>,
    /// How long a receipt for a message id not (yet) recorded keeps being looked up.
    receipt_wait: Duration,
}

impl Inbox {
    pub(crate) fn new(
        to_store: mpsc::Sender<StoreJob>,
        to_record: mpsc::Sender<Job>,
        counters: Arc<Counters>,
        receipt_wait: Duration,
    ) -> Self {
        Inbox {
            to_store,
            to_record,
            counters,
            receipt_wait,
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
        let (answer, rx) = oneshot::channel();
        let job = StoreJob {
            mo: (source.clone(), mo.destination.trim().to_owned(), mo.text),
            answer,
        };
        let stored = match self.to_store.send(job).await {
            Ok(()) => rx
                .await
                .unwrap_or_else(|_| Err("the gateway writer stopped".to_owned())),
            Err(_) => Err("the gateway writer stopped".to_owned()),
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
        if self.to_record.send(Job::Receipt(pending)).await.is_err() {
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
