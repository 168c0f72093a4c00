//! A gateway's writes, gathered: what its link delivered (MO, receipts), what its worker
//! finished (completed MO and their replies) and what its sender got accepted (sent MT), in
//! one transaction.
//!
//! Why (issue 4): on SQLite there is one writer. Written apart, each of these was a
//! transaction of its own, and each paid its turn, its BEGIN and COMMIT, and the pages it
//! touched written to the log again; together they share one of each. A round is all or
//! nothing: on error nothing of it is written (the caller may try the parts apart, each with
//! its own meaning of failure).
use super::inbox::{OnArrival, Replies};
use super::{InboxMo, OutboundSms};
use crate::error::Result;
use crate::hall::Hall;

/// What one round writes. Every part may be empty.
#[derive(Debug, Default)]
pub struct SmsRound {
    /// MT the SMSC accepted: `(outbox id, the parts' message ids)`. Written first, so that a
    /// receipt arriving in the same round finds its message.
    pub sent: Vec<(i64, Vec<String>)>,
    /// Delivery receipts `(message id, stat)`.
    pub receipts: Vec<(String, String)>,
    /// MO to store `(source, destination, text)`.
    pub received: Vec<(String, String, String)>,
    /// What becomes of the stored MO.
    pub on_arrival: Option<OnArrival>,
    /// Handled MO `(inbox id, reply)`, in arrival order.
    pub completed: Vec<(i64, Option<String>)>,
    /// What becomes of their replies.
    pub replies: Option<Replies>,
}

/// What a round wrote, part by part.
#[derive(Debug, Default)]
pub struct SmsRoundDone {
    /// For each of `received`: its inbox id, or `None` for a redelivery.
    pub stored: Vec<Option<i64>>,
    /// The stored MO claimed for the caller ([`OnArrival::Claim`]), in arrival order.
    pub claimed: Vec<InboxMo>,
    /// For each of `receipts`: whether it matched a part the outbox knows.
    pub receipts_matched: Vec<bool>,
    /// What the caller is to send now ([`Replies::Send`]), in id order.
    pub to_send: Vec<OutboundSms>,
}

impl Hall {
    /// Writes a round in one transaction (see the module doc).
    pub async fn sms_round(&self, round: &SmsRound) -> Result<SmsRoundDone> {
        let mut done = SmsRoundDone::default();
        if round.sent.is_empty()
            && round.receipts.is_empty()
            && round.received.is_empty()
            && round.completed.is_empty()
        {
            return Ok(done);
        }
        let now = self.now_ms();
        let mut tx = self.db().begin_write().await?;
        if !round.sent.is_empty() {
            self.outbox_sent_in(&mut tx, &round.sent, now).await?;
        }
        done.receipts_matched = self
            .outbox_receipts_in(&mut tx, &round.receipts, now)
            .await?;
        if !round.received.is_empty() {
            let arrival = round.on_arrival.unwrap_or(OnArrival::Queue);
            (done.stored, done.claimed) = self
                .receive_mo_in(&mut tx, &round.received, arrival, now)
                .await?;
        }
        if !round.completed.is_empty() {
            let replies = round.replies.unwrap_or(Replies::Queue);
            done.to_send = self
                .complete_mo_in(&mut tx, &round.completed, replies, now)
                .await?;
        }
        tx.commit().await?;
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use sqlx::Row;

    use super::*;
    use crate::testing::TestHall;

    #[tokio::test]
    async fn one_round_stores_completes_sends_and_receipts() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 0).await;
        let first = t
            .receive_mo("13800138000", "10086", "CXYE")
            .await
            .unwrap()
            .unwrap();
        t.claim_mo(10).await.unwrap();
        // Round 1: a new MO arrives (claimed for us), the first is completed (reply to send).
        let one = t
            .sms_round(&SmsRound {
                received: vec![("13800138000".into(), "10086".into(), "CXLL".into())],
                on_arrival: Some(OnArrival::Claim),
                completed: vec![(first, Some("余额".into()))],
                replies: Some(Replies::Send(10)),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(one.claimed.len(), 1);
        assert_eq!(one.stored, vec![Some(one.claimed[0].id)]);
        assert_eq!(one.to_send.len(), 1);
        let reply = one.to_send[0].id;
        // Round 2: the reply is accepted and its receipt comes in the same round.
        let two = t
            .sms_round(&SmsRound {
                sent: vec![(reply, vec!["r1".into()])],
                receipts: vec![
                    ("r1".into(), "DELIVRD".into()),
                    ("x".into(), "DELIVRD".into()),
                ],
                received: vec![("13800138000".into(), "10086".into(), "CXLL".into())],
                on_arrival: Some(OnArrival::Claim),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(two.receipts_matched, vec![true, false]);
        assert_eq!(two.stored, vec![None], "a redelivery");
        assert!(two.claimed.is_empty());
        let row = sqlx::query("SELECT status FROM outbox WHERE id = $1")
            .bind(reply)
            .fetch_one(t.db().pool())
            .await
            .unwrap();
        assert_eq!(row.try_get::<String, _>(0).unwrap(), "sent");
        assert!(t.outbox_delivered_at(reply).await.unwrap().is_some());
        assert_eq!(t.outbox_for(&m, 10).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_failed_round_writes_nothing() {
        let t = TestHall::empty().await;
        t.subscriber("13800138000", 0).await;
        let err = t
            .sms_round(&SmsRound {
                received: vec![("13800138000".into(), "10086".into(), "CXYE".into())],
                // The parts of a message that does not exist break the outbox's foreign key:
                // the round fails, and the MO that came with it must not be kept either.
                sent: vec![(987_654, vec!["p".into()])],
                ..Default::default()
            })
            .await;
        assert!(err.is_err());
        assert!(
            t.claim_mo(10).await.unwrap().is_empty(),
            "the MO was not stored"
        );
    }
}
