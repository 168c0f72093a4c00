//! The outbox as the gateway drains it: claim, sent, retry, delivery receipts. Several
//! gateways may share one database: claims are conditional updates.
use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};

use sqlx::Row;

use super::round::SmsRound;
use super::{OutboundSms, CLAIM_TIMEOUT_MS, MAX_ATTEMPTS, SENT_CODE_PLACEHOLDER};
use crate::clock::from_millis;
use crate::error::Result;
use crate::hall::Hall;
use crate::store::db::{placeholders, runs};
use crate::store::reads::{Read, ReadRow};
use crate::store::WriteTx;

impl OutboundSms {
    /// From a row of `id, msisdn, kind, body, attempts`.
    pub(crate) fn from_row(r: &ReadRow) -> Result<Self> {
        Ok(OutboundSms {
            id: r.try_get(0)?,
            msisdn: r.try_get(1)?,
            kind: r.try_get(2)?,
            body: r.try_get(3)?,
            attempts: r.try_get(4)?,
        })
    }
}

/// Claims for sending, in one status, the messages due at `$1` (`$2`: when the claim runs
/// out, `$3`: how many at most). A claimed message's `next_attempt_at` is when its claim runs
/// out, so the expired claims are a range of the index `outbox_due` as the due queued
/// messages are, read in order from it and stopping at the limit. Why (issue 4): found by
/// `claimed_at`, which no index holds, and sorted by id, every claim read every message in
/// flight and every one queued; under load, with thousands of each, the gateway's claims of
/// the outbox cost more than all its other writes together.
///
/// The subquery names `status IN (…)`, the condition of the partial index; the outer check
/// (for a concurrent claim on PostgreSQL) does not, so SQLite finds the rows by id instead of
/// reading that range again.
const CLAIM_QUEUED: &str = "UPDATE outbox SET status = 'sending', claimed_at = $1, \
       next_attempt_at = $2, attempts = attempts + 1 \
     WHERE id IN (SELECT id FROM outbox WHERE status IN ('queued', 'sending') \
       AND status = 'queued' AND next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $3) \
     AND status = 'queued' AND next_attempt_at <= $1 \
     RETURNING id, msisdn, kind, body, attempts";

/// [`CLAIM_QUEUED`] for claims that ran out.
const CLAIM_EXPIRED: &str = "UPDATE outbox SET status = 'sending', claimed_at = $1, \
       next_attempt_at = $2, attempts = attempts + 1 \
     WHERE id IN (SELECT id FROM outbox WHERE status IN ('queued', 'sending') \
       AND status = 'sending' AND next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $3) \
     AND status = 'sending' AND next_attempt_at <= $1 \
     RETURNING id, msisdn, kind, body, attempts";

async fn claim_due(
    tx: &mut WriteTx,
    claim: &'static str,
    limit: i64,
    now: i64,
) -> Result<Vec<OutboundSms>> {
    let rows = tx
        .fetch(
            Read::new(claim)
                .int(now)
                .int(now + CLAIM_TIMEOUT_MS)
                .int(limit),
        )
        .await?;
    rows.iter().map(OutboundSms::from_row).collect()
}

impl Hall {
    /// Claims up to `limit` due outbox messages for sending: ones another sender claimed and
    /// did not finish in time, then queued ones whose time has come; each in the order they
    /// fell due, by id among equals.
    pub async fn claim_outbox(&self, limit: i64) -> Result<Vec<OutboundSms>> {
        let now = self.now_ms();
        let mut tx = self.db().begin_write().await?;
        let mut out = claim_due(&mut tx, CLAIM_EXPIRED, limit, now).await?;
        let left = limit - out.len() as i64;
        if left > 0 {
            out.extend(claim_due(&mut tx, CLAIM_QUEUED, left, now).await?);
        }
        tx.commit().await?;
        out.sort_by_key(|m| m.id);
        Ok(out)
    }

    /// Claims up to `limit` queued messages whose time has come, inside the caller's
    /// transaction (claims that expired are left to [`Hall::claim_outbox`]).
    pub(crate) async fn claim_queued_in(
        &self,
        tx: &mut WriteTx,
        limit: i64,
        now: i64,
    ) -> Result<Vec<OutboundSms>> {
        claim_due(tx, CLAIM_QUEUED, limit, now).await
    }

    /// Gives back claimed messages the caller will not send after all (the link went down,
    /// or it is stopping): queued again at once, the attempt not counted.
    pub async fn release_outbox(&self, ids: &[i64]) -> Result<()> {
        self.update_by_ids(ids, |list| {
            format!(
                "UPDATE outbox SET status = 'queued', next_attempt_at = claimed_at, \
                   claimed_at = NULL, attempts = attempts - 1 \
                 WHERE id IN ({list}) AND status = 'sending'"
            )
        })
        .await
    }

    /// Records that the SMSC accepted every part of a message.
    pub async fn outbox_sent(&self, id: i64, message_ids: &[String]) -> Result<()> {
        self.outbox_sent_batch(&[(id, message_ids.to_vec())]).await
    }

    /// Records, in one transaction, that the SMSC accepted every part of each message
    /// `(outbox id, the parts' message ids)`.
    pub async fn outbox_sent_batch(&self, sent: &[(i64, Vec<String>)]) -> Result<()> {
        let round = SmsRound {
            sent: sent.to_vec(),
            ..Default::default()
        };
        self.sms_round(&round).await.map(drop)
    }

    /// [`Hall::outbox_sent_batch`] inside the caller's transaction.
    pub(crate) async fn outbox_sent_in(
        &self,
        tx: &mut WriteTx,
        sent: &[(i64, Vec<String>)],
        now: i64,
    ) -> Result<()> {
        for chunk in runs(sent) {
            // One statement for the chunk: each message gets its own ids by a join with the
            // chunk's rows. (A CASE choosing each one's ids compared every row with every id:
            // quadratic in the chunk, and a fifth of the gateway's writes at 256 a chunk.)
            // A code is a secret: once the SMSC has it, the hall keeps no readable copy.
            let sql = self.db().batch_statement(chunk.len(), || {
                let n = 2 * chunk.len();
                format!(
                    "WITH sent (id, message_id) AS (VALUES {}) \
                     UPDATE outbox SET status = 'sent', sent_at = ${}, last_error = NULL, \
                     body = CASE WHEN kind = 'code' THEN ${} ELSE body END, \
                     message_id = sent.message_id FROM sent WHERE outbox.id = sent.id",
                    placeholders(1, chunk.len(), 2),
                    n + 1,
                    n + 2
                )
            });
            let mut q = Read::with_capacity(sql, 2 * chunk.len() + 2);
            for (id, message_ids) in chunk {
                q = q.int(*id).text(message_ids.join(","));
            }
            q = q.int(now).text(SENT_CODE_PLACEHOLDER);
            tx.execute(q).await?;
        }
        let parts: Vec<(&str, i64, i64)> = sent
            .iter()
            .flat_map(|(id, mids)| {
                mids.iter()
                    .enumerate()
                    .map(move |(part, mid)| (mid.as_str(), *id, part as i64 + 1))
            })
            .collect();
        for chunk in runs(&parts) {
            let sql = self.db().batch_statement(chunk.len(), || {
                format!(
                    "INSERT INTO outbox_parts (message_id, outbox_id, part) VALUES {} \
                 ON CONFLICT (message_id) DO NOTHING",
                    placeholders(1, chunk.len(), 3)
                )
            });
            let mut q = Read::with_capacity(sql, 3 * chunk.len());
            for (mid, id, part) in chunk {
                q = q.text(*mid).int(*id).int(*part);
            }
            tx.execute(q).await?;
        }
        Ok(())
    }

    /// Records a failed attempt: retried with back-off (30 s, 1 min, 2 min … 30 min), or given
    /// up after `MAX_ATTEMPTS` or when `permanent`.
    pub async fn outbox_failed(&self, id: i64, error: &str, permanent: bool) -> Result<()> {
        let now = self.now_ms();
        let row = sqlx::query("SELECT attempts FROM outbox WHERE id = $1")
            .bind(id)
            .fetch_optional(self.db().pool())
            .await?;
        let Some(row) = row else { return Ok(()) };
        let attempts: i64 = row.try_get(0)?;
        let give_up = permanent || attempts >= MAX_ATTEMPTS;
        let delay = (30_000i64 << (attempts - 1).clamp(0, 6)).min(30 * 60_000);
        sqlx::query("UPDATE outbox SET status = $1, next_attempt_at = $2, last_error = $3 WHERE id = $4 AND status = 'sending'")
            .bind(if give_up { "failed" } else { "queued" })
            .bind(now + delay)
            .bind(error)
            .bind(id)
            .execute(self.db().pool())
            .await?;
        Ok(())
    }

    /// Records a delivery receipt for one part; the message counts as delivered when every
    /// part is. Returns false for a message id this hall did not send.
    pub async fn outbox_receipt(&self, message_id: &str, stat: &str) -> Result<bool> {
        let matched = self
            .outbox_receipt_batch(&[(message_id.to_owned(), stat.to_owned())])
            .await?;
        Ok(matched[0])
    }

    /// Records delivery receipts `(message id, stat)` in one transaction; returns, in order,
    /// whether each matched a part the outbox knows. A message counts as delivered when every
    /// one of its parts is.
    pub async fn outbox_receipt_batch(&self, receipts: &[(String, String)]) -> Result<Vec<bool>> {
        let round = SmsRound {
            receipts: receipts.to_vec(),
            ..Default::default()
        };
        Ok(self.sms_round(&round).await?.receipts_matched)
    }

    /// [`Hall::outbox_receipt_batch`] inside the caller's transaction.
    pub(crate) async fn outbox_receipts_in(
        &self,
        tx: &mut WriteTx,
        receipts: &[(String, String)],
        now: i64,
    ) -> Result<Vec<bool>> {
        if receipts.is_empty() {
            return Ok(Vec::new());
        }
        // A receipt repeated within the batch counts with its last status, as it would have
        // one after the other.
        let mut last: HashMap<&str, &str> = HashMap::with_capacity(receipts.len());
        for (message_id, stat) in receipts {
            last.insert(message_id, stat);
        }
        // Grouped by status (nearly all say DELIVRD), so a statement sets one status for many
        // parts: a CASE choosing each part's own status cost a comparison per part for every
        // row, and was the gateway's costliest write under load.
        let mut by_stat: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (message_id, stat) in last {
            by_stat.entry(stat).or_default().push(message_id);
        }
        let mut known: HashSet<String> = HashSet::with_capacity(receipts.len());
        for (stat, ids) in &mut by_stat {
            // In a fixed order, so that two writers never lock the same parts in opposite
            // orders.
            ids.sort_unstable();
            for chunk in runs(ids) {
                let sql = self.db().batch_statement(chunk.len(), || {
                    format!(
                        "UPDATE outbox_parts SET receipt_at = $1, stat = $2 \
                     WHERE message_id IN ({}) RETURNING message_id",
                        placeholders(3, chunk.len(), 1)
                    )
                });
                let mut q = Read::with_capacity(sql, chunk.len() + 2)
                    .int(now)
                    .text(*stat);
                for message_id in chunk {
                    q = q.text(*message_id);
                }
                for row in tx.fetch(q).await? {
                    known.insert(row.try_get(0)?);
                }
            }
        }
        Ok(receipts
            .iter()
            .map(|(message_id, _)| known.contains(message_id))
            .collect())
    }

    /// When a sent message reached the handset: when the last receipt came, once every part's
    /// latest receipt says DELIVRD; `None` before that. Derived from the parts rather than
    /// written with each receipt: the gateway writes receipts by the thousand a second, and
    /// this is read only now and then.
    pub async fn outbox_delivered_at(&self, id: i64) -> Result<Option<DateTime<Utc>>> {
        let rows = self
            .db()
            .read(
                Read::new(
                    "SELECT MAX(receipt_at) FROM outbox_parts WHERE outbox_id = $1 \
                     HAVING COUNT(*) > 0 \
                     AND COUNT(*) = COUNT(CASE WHEN stat = 'DELIVRD' THEN 1 END)",
                )
                .int(id),
            )
            .await?;
        Ok(match rows.first() {
            Some(row) => Some(from_millis(row.try_get(0)?)),
            None => None,
        })
    }

    /// Messages waiting to be sent (for metrics and the handset page).
    pub async fn outbox_depth(&self) -> Result<i64> {
        Ok(
            sqlx::query("SELECT COUNT(*) FROM outbox WHERE status IN ('queued', 'sending')")
                .fetch_one(self.db().pool())
                .await?
                .try_get(0)?,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestHall;
    use chrono::Duration as D;

    /// A two-part message sent as `p1` and `p2`: its outbox id.
    async fn sent_in_two_parts(t: &TestHall) -> i64 {
        let m = t.subscriber("13800138000", 0).await;
        t.suspend_by_request(&m).await.unwrap();
        let b = t.claim_outbox(10).await.unwrap();
        t.outbox_sent(b[0].id, &["p1".into(), "p2".into()])
            .await
            .unwrap();
        b[0].id
    }

    async fn delivered(t: &TestHall, id: i64) -> bool {
        t.outbox_delivered_at(id).await.unwrap().is_some()
    }

    #[tokio::test]
    async fn receipts_are_recorded_together_and_unknown_ids_reported() {
        let t = TestHall::empty().await;
        let id = sent_in_two_parts(&t).await;
        let r = |id: &str| (id.to_owned(), "DELIVRD".to_owned());
        assert_eq!(
            t.outbox_receipt_batch(&[r("p1"), r("nope"), r("p2")])
                .await
                .unwrap(),
            vec![true, false, true]
        );
        assert!(delivered(&t, id).await, "both parts in one batch");
    }

    #[tokio::test]
    async fn a_failed_part_keeps_its_message_undelivered_and_a_repeat_counts_its_last_status() {
        let t = TestHall::empty().await;
        let id = sent_in_two_parts(&t).await;
        let r = |id: &str, stat: &str| (id.to_owned(), stat.to_owned());
        let stats = || async {
            let rows =
                sqlx::query("SELECT stat FROM outbox_parts WHERE outbox_id = $1 ORDER BY part")
                    .bind(id)
                    .fetch_all(t.db().pool())
                    .await
                    .unwrap();
            rows.iter()
                .map(|row| row.try_get::<Option<String>, _>(0).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            t.outbox_receipt_batch(&[r("p1", "DELIVRD"), r("p2", "UNDELIV")])
                .await
                .unwrap(),
            vec![true, true]
        );
        assert!(!delivered(&t, id).await, "one part was not delivered");
        assert_eq!(
            stats().await,
            vec![Some("DELIVRD".to_owned()), Some("UNDELIV".to_owned())]
        );
        // The SMSC retried the part and reports twice in one batch: the last report counts.
        assert_eq!(
            t.outbox_receipt_batch(&[r("p2", "ENROUTE"), r("p2", "DELIVRD")])
                .await
                .unwrap(),
            vec![true, true]
        );
        assert_eq!(
            stats().await,
            vec![Some("DELIVRD".to_owned()), Some("DELIVRD".to_owned())]
        );
        assert!(delivered(&t, id).await);
    }

    #[tokio::test]
    async fn the_outbox_is_claimed_sent_retried_and_receipted() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 0).await;
        t.suspend_by_request(&m).await.unwrap();
        t.resume_by_request(&m).await.unwrap();
        let batch = t.claim_outbox(10).await.unwrap();
        assert_eq!(batch.len(), 2);
        assert!(t.claim_outbox(10).await.unwrap().is_empty());
        t.outbox_sent(batch[0].id, &["m1".into(), "m2".into()])
            .await
            .unwrap();
        t.outbox_failed(batch[1].id, "throttled", false)
            .await
            .unwrap();
        assert!(
            t.claim_outbox(10).await.unwrap().is_empty(),
            "not before the back-off"
        );
        t.clock.advance(D::seconds(31));
        let again = t.claim_outbox(10).await.unwrap();
        assert_eq!((again.len(), again[0].attempts), (1, 2));
        assert!(t.outbox_receipt("m1", "DELIVRD").await.unwrap());
        assert!(!t.outbox_receipt("nope", "DELIVRD").await.unwrap());
        assert!(!delivered(&t, batch[0].id).await, "one part of two");
        t.outbox_receipt("m2", "DELIVRD").await.unwrap();
        assert_eq!(
            t.outbox_delivered_at(batch[0].id).await.unwrap(),
            Some(t.now()),
            "when the last part's receipt came"
        );
        assert_eq!(t.outbox_depth().await.unwrap(), 1);
    }

    #[tokio::test]
    async fn a_sent_code_leaves_no_readable_copy() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 0).await;
        t.send_code(&m, crate::service::codes::CodePurpose::SignIn)
            .await
            .unwrap();
        let b = t.claim_outbox(10).await.unwrap();
        assert!(
            b[0].body.chars().filter(char::is_ascii_digit).count() >= 6,
            "the gateway sends the code"
        );
        t.outbox_sent(b[0].id, &["m1".into()]).await.unwrap();
        assert_eq!(
            t.outbox_for(&m, 1).await.unwrap()[0].body,
            SENT_CODE_PLACEHOLDER
        );
    }

    #[tokio::test]
    async fn sent_messages_are_recorded_together() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 0).await;
        t.suspend_by_request(&m).await.unwrap();
        t.resume_by_request(&m).await.unwrap();
        let batch = t.claim_outbox(10).await.unwrap();
        t.outbox_sent_batch(&[
            (batch[0].id, vec!["a1".into()]),
            (batch[1].id, vec!["b1".into(), "b2".into()]),
        ])
        .await
        .unwrap();
        assert_eq!(t.outbox_depth().await.unwrap(), 0);
        for (id, ids) in [(batch[0].id, "a1"), (batch[1].id, "b1,b2")] {
            let row = sqlx::query("SELECT message_id, status FROM outbox WHERE id = $1")
                .bind(id)
                .fetch_one(t.db().pool())
                .await
                .unwrap();
            assert_eq!(row.try_get::<String, _>(0).unwrap(), ids, "its own ids");
            assert_eq!(row.try_get::<String, _>(1).unwrap(), "sent");
        }
        assert!(t.outbox_receipt("a1", "DELIVRD").await.unwrap());
        assert!(t.outbox_receipt("b2", "DELIVRD").await.unwrap());
        assert!(t.outbox_sent_batch(&[]).await.is_ok());
    }

    /// A claim runs out after `CLAIM_TIMEOUT_MS`, whether the outbox was claimed or the
    /// reply claimed as it was queued; then one other sender takes it over, for as long again.
    #[tokio::test]
    async fn a_claim_not_finished_in_time_is_taken_over_once() {
        use crate::service::sms::{Replies, SmsRound};
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 0).await;
        t.suspend_by_request(&m).await.unwrap();
        let notice = t.claim_outbox(10).await.unwrap();
        assert_eq!(notice.len(), 1);
        let mo = t
            .receive_mo("13800138000", "10086", "CXYE")
            .await
            .unwrap()
            .unwrap();
        t.claim_mo(10).await.unwrap();
        let done = t
            .sms_round(&SmsRound {
                completed: vec![(mo, Some("余额".into()))],
                replies: Some(Replies::Send(10)),
                ..Default::default()
            })
            .await
            .unwrap();
        let reply = done.to_send[0].id;
        t.clock.advance(D::milliseconds(CLAIM_TIMEOUT_MS - 1_000));
        assert!(
            t.claim_outbox(10).await.unwrap().is_empty(),
            "still claimed"
        );
        t.clock.advance(D::milliseconds(1_000));
        let taken: Vec<(i64, i64)> = t
            .claim_outbox(10)
            .await
            .unwrap()
            .iter()
            .map(|m| (m.id, m.attempts))
            .collect();
        assert_eq!(taken, vec![(notice[0].id, 2), (reply, 2)]);
        assert!(t.claim_outbox(10).await.unwrap().is_empty(), "taken once");
        t.clock.advance(D::milliseconds(CLAIM_TIMEOUT_MS));
        assert_eq!(t.claim_outbox(10).await.unwrap().len(), 2, "and again");
    }

    #[tokio::test]
    async fn a_message_given_back_is_claimable_at_once_without_an_attempt_counted() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 0).await;
        t.suspend_by_request(&m).await.unwrap();
        let b = t.claim_outbox(10).await.unwrap();
        assert_eq!((b.len(), b[0].attempts), (1, 1));
        t.release_outbox(&[b[0].id]).await.unwrap();
        let again = t.claim_outbox(10).await.unwrap();
        assert_eq!(
            (again.len(), again[0].attempts),
            (1, 1),
            "no back-off, no attempt"
        );
        t.outbox_sent(again[0].id, &["m1".into()]).await.unwrap();
        t.release_outbox(&[again[0].id]).await.unwrap();
        assert!(
            t.claim_outbox(10).await.unwrap().is_empty(),
            "a sent message is not given back"
        );
    }

    #[tokio::test]
    async fn a_message_is_given_up_after_the_last_attempt() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 0).await;
        t.suspend_by_request(&m).await.unwrap();
        for _ in 0..MAX_ATTEMPTS {
            t.clock.advance(D::hours(1));
            let b = t.claim_outbox(10).await.unwrap();
            assert_eq!(b.len(), 1);
            t.outbox_failed(b[0].id, "rejected", false).await.unwrap();
        }
        t.clock.advance(D::hours(1));
        assert!(t.claim_outbox(10).await.unwrap().is_empty());
        assert_eq!(t.outbox_for(&m, 1).await.unwrap()[0].status, "failed");
    }
}
