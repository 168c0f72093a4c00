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
//! Delivery receipts are recorded against the outbox message they report on (waiting a little
//! for a receipt that overtakes the record of its message's sending).
use std::sync::Arc;
use std::time::Duration;

use app::domain::Msisdn;
use app::Hall;
use tokio::sync::Notify;

use super::{masked, Counters};
use crate::smpp::{DeliveryReceipt, IncomingMo, MoHandler, MoVerdict};

/// The SMPP link's [`MoHandler`]: stores MO in the hall's inbox, records receipts.
pub struct Inbox {
    hall: Hall,
    /// Wakes the worker when an MO is stored.
    mo_arrived: Arc<Notify>,
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
        Inbox {
            hall,
            mo_arrived,
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
        match self
            .hall
            .receive_mo(&source, mo.destination.trim(), &mo.text)
            .await
        {
            Ok(Some(id)) => {
                Counters::bump(&self.counters.mo_stored);
                tracing::debug!(id, from = %masked(&source), parts = mo.parts, "MO stored");
                self.mo_arrived.notify_one();
                MoVerdict::Accept
            }
            Ok(None) => {
                Counters::bump(&self.counters.mo_redelivered);
                tracing::info!(from = %masked(&source), "MO redelivered by the SMSC; already stored");
                MoVerdict::Accept
            }
            Err(e) => {
                Counters::bump(&self.counters.mo_refused);
                tracing::warn!(from = %masked(&source), error = %e.operator_detail(),
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
