//! The SMS channel's side of the service layer: the MO inbox (persisted before the SMSC is
//! answered, deduplicated against redelivery), the per-number command limit, the one polite
//! refusal for non-subscribers, and the outbox as the gateway drains it (claim, sent, retry,
//! delivery receipts). Several gateways may share one database: claims are conditional updates.
use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::clock::from_millis;
use crate::domain::Msisdn;
use crate::error::Result;
use crate::hall::Hall;
use crate::service::outbox::SmsKind;
use crate::store::db::placeholders;
use crate::store::RateDecision;

/// A redelivery of the same text from the same number within this window is the same MO.
/// SMPP 3.4 gives an MO no id of its own, so content and time are all there is to go on;
/// the window is far shorter than a person needs to read a reply and answer it.
pub const DEDUPE_WINDOW_MS: i64 = 20_000;
/// SPEC §4: 30 commands in 10 minutes per number.
pub const COMMAND_LIMIT: (i64, i64) = (10 * 60_000, 30);
/// A claimed message not finished within this time is taken over by another worker.
const CLAIM_TIMEOUT_MS: i64 = 60_000;
/// What a sent code SMS reads as in the outbox afterwards.
pub const SENT_CODE_PLACEHOLDER: &str = "【验证码短信,已发送,内容不留存】";
/// Retries of an MT before it is given up as failed, with back-off between them.
const MAX_ATTEMPTS: i64 = 8;

#[derive(Clone, Debug, Serialize)]
pub struct InboxMo {
    pub id: i64,
    pub source: String,
    pub destination: String,
    pub body: String,
    pub received_at: chrono::DateTime<chrono::Utc>,
}

/// What the per-number limit says about one more command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandAllowance {
    Allowed,
    /// Over the limit: answer "too frequent" this once…
    TooFrequent,
    /// …and nothing after that until the window has room again.
    Silent,
}

#[derive(Clone, Debug, Serialize)]
pub struct OutboundSms {
    pub id: i64,
    pub msisdn: String,
    pub kind: String,
    pub body: String,
    pub attempts: i64,
}

/// Rows a multi-row statement takes at once (well under both databases' parameter limits).
const CHUNK: usize = 200;

fn hash(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

impl Hall {
    /// Stores an MO. Returns its inbox id, or `None` when it is a redelivery of one already
    /// stored. Only after this returns may the gateway acknowledge the `deliver_sm`.
    pub async fn receive_mo(
        &self,
        source: &str,
        destination: &str,
        text: &str,
    ) -> Result<Option<i64>> {
        let stored = self
            .receive_mo_batch(&[(source.to_owned(), destination.to_owned(), text.to_owned())])
            .await?;
        Ok(stored.into_iter().next().flatten())
    }

    /// Stores MO `(source, destination, text)` in one write transaction (group commit: one
    /// disk sync for the lot). Returns, in order, each one's inbox id, or `None` for a
    /// redelivery — of an MO stored before, or of an earlier one in this same batch. All or
    /// nothing: on error none is stored, and none may be acknowledged.
    pub async fn receive_mo_batch(
        &self,
        mos: &[(String, String, String)],
    ) -> Result<Vec<Option<i64>>> {
        if mos.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.now_ms();
        let mut out: Vec<Option<i64>> = vec![None; mos.len()];
        // The first of each (sender, text) in the batch; a later one is its redelivery.
        let mut fresh: Vec<(usize, String)> = Vec::with_capacity(mos.len());
        let mut in_batch: HashSet<(&str, String)> = HashSet::with_capacity(mos.len());
        for (i, (source, _, text)) in mos.iter().enumerate() {
            let h = hash(text);
            if in_batch.insert((source.as_str(), h.clone())) {
                fresh.push((i, h));
            }
        }
        let mut tx = self.db().begin().await?;
        // A few statements for the whole batch, not two a message: on SQLite each statement
        // is a hand-off to the connection's thread, and that is what a busy link pays for.
        // Looked up by (sender, hash), one index seek each: by sender alone, a busy number's
        // every recent message came back (the costliest statement under load).
        let mut stored_before: HashSet<(String, String)> = HashSet::new();
        for chunk in fresh.chunks(CHUNK) {
            let sql = format!(
                "WITH batch (source, body_hash) AS (VALUES {}) \
                 SELECT i.source, i.body_hash FROM batch \
                 JOIN sms_inbox i ON i.source = batch.source AND i.body_hash = batch.body_hash \
                 WHERE i.received_at > ${}",
                placeholders(1, chunk.len(), 2),
                2 * chunk.len() + 1
            );
            let sql = self.db().batch_sql(&sql);
            let mut q = sqlx::query(&sql);
            for (i, h) in chunk {
                q = q.bind(&mos[*i].0).bind(h);
            }
            q = q.bind(now - DEDUPE_WINDOW_MS);
            for row in q.fetch_all(&mut *tx).await? {
                stored_before.insert((row.try_get(0)?, row.try_get(1)?));
            }
        }
        fresh.retain(|(i, h)| !stored_before.contains(&(mos[*i].0.clone(), h.clone())));
        for chunk in fresh.chunks(CHUNK) {
            let sql = format!(
                "INSERT INTO sms_inbox (source, destination, body, body_hash, received_at) VALUES {} \
                 RETURNING id, source, body_hash",
                placeholders(1, chunk.len(), 5)
            );
            let sql = self.db().batch_sql(&sql);
            let mut q = sqlx::query(&sql);
            for (i, h) in chunk {
                let (source, destination, text) = &mos[*i];
                q = q
                    .bind(source)
                    .bind(destination)
                    .bind(text)
                    .bind(h)
                    .bind(now);
            }
            let mut ids: HashMap<(String, String), i64> = HashMap::with_capacity(chunk.len());
            for row in q.fetch_all(&mut *tx).await? {
                ids.insert((row.try_get(1)?, row.try_get(2)?), row.try_get(0)?);
            }
            for (i, h) in chunk {
                out[*i] = ids.remove(&(mos[*i].0.clone(), h.clone()));
            }
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Claims up to `limit` stored MO to handle, oldest first, including any another worker
    /// claimed and did not finish in time.
    pub async fn claim_mo(&self, limit: i64) -> Result<Vec<InboxMo>> {
        let now = self.now_ms();
        // A write: through the writer's turn like every other (see `Db::begin`).
        let mut tx = self.db().begin().await?;
        let rows = sqlx::query(
            "UPDATE sms_inbox SET status = 'handling', claimed_at = $1 WHERE id IN (\
               SELECT id FROM sms_inbox WHERE status = 'received' OR (status = 'handling' AND claimed_at < $2) \
               ORDER BY id LIMIT $3) \
             AND (status = 'received' OR (status = 'handling' AND claimed_at < $2)) \
             RETURNING id, source, destination, body, received_at",
        )
        .bind(now)
        .bind(now - CLAIM_TIMEOUT_MS)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut out: Vec<InboxMo> = rows
            .iter()
            .map(|r| {
                Ok(InboxMo {
                    id: r.try_get(0)?,
                    source: r.try_get(1)?,
                    destination: r.try_get(2)?,
                    body: r.try_get(3)?,
                    received_at: from_millis(r.try_get(4)?),
                })
            })
            .collect::<Result<_>>()?;
        out.sort_by_key(|m| m.id);
        Ok(out)
    }

    /// Marks an MO handled and queues its reply in one transaction, so a crash in between
    /// leaves the MO to be handled again rather than answered twice.
    pub async fn complete_mo(&self, id: i64, reply: Option<&str>) -> Result<()> {
        self.complete_mo_batch(&[(id, reply.map(str::to_owned))])
            .await
    }

    /// Marks MO handled and queues their replies, all in one transaction (one commit for a
    /// worker's whole batch). Replies are queued in the order given, so a sender's replies go
    /// out in the order of its MO. An MO already handled is skipped (no second reply).
    pub async fn complete_mo_batch(&self, done: &[(i64, Option<String>)]) -> Result<()> {
        if done.is_empty() {
            return Ok(());
        }
        let now = self.now_ms();
        let mut tx = self.db().begin().await?;
        // Which of them this call completes (an MO already handled gets no second reply).
        let mut completed: HashMap<i64, String> = HashMap::with_capacity(done.len());
        let ids: Vec<i64> = done.iter().map(|(id, _)| *id).collect();
        for chunk in ids.chunks(CHUNK) {
            let sql = format!(
                "UPDATE sms_inbox SET status = 'handled', handled_at = $1 WHERE id IN ({}) \
                 AND status <> 'handled' RETURNING id, source",
                placeholders(2, chunk.len(), 1)
            );
            let sql = self.db().batch_sql(&sql);
            let mut q = sqlx::query(&sql).bind(now);
            for id in chunk {
                q = q.bind(id);
            }
            for row in q.fetch_all(&mut *tx).await? {
                completed.insert(row.try_get(0)?, row.try_get(1)?);
            }
        }
        let replies: Vec<(Msisdn, &str)> = done
            .iter()
            .filter_map(|(id, reply)| {
                let to = Msisdn::parse(completed.get(id)?).ok()?;
                Some((to, reply.as_deref()?))
            })
            .collect();
        // In the order given: the outbox is sent in id order, so a sender's replies keep the
        // order of its MO.
        for chunk in replies.chunks(CHUNK) {
            let sql = format!(
                "INSERT INTO outbox (msisdn, kind, body, next_attempt_at, created_at) VALUES {}",
                placeholders(1, chunk.len(), 5)
            );
            let sql = self.db().batch_sql(&sql);
            let mut q = sqlx::query(&sql);
            for (to, body) in chunk {
                q = q
                    .bind(to.as_str())
                    .bind(SmsKind::Reply.as_str())
                    .bind(*body)
                    .bind(now)
                    .bind(now);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Counts one command against the number's limit.
    pub async fn command_allowance(&self, msisdn: &Msisdn) -> Result<CommandAllowance> {
        let now = self.now_ms();
        match self
            .eph()
            .rate_hit(
                &format!("smscmd:{}", msisdn.as_str()),
                now,
                &[COMMAND_LIMIT],
            )
            .await?
        {
            RateDecision::Allowed => Ok(CommandAllowance::Allowed),
            RateDecision::Limited { retry_after_ms } => {
                let ttl = Duration::from_millis(retry_after_ms.max(1) as u64);
                let n = self
                    .eph()
                    .incr(&format!("smscmd:told:{}", msisdn.as_str()), ttl)
                    .await?;
                Ok(if n == 1 {
                    CommandAllowance::TooFrequent
                } else {
                    CommandAllowance::Silent
                })
            }
        }
    }

    /// Whether a sender that is not a subscriber should get the polite refusal: once a day.
    pub async fn refuse_stranger_once(&self, source: &str) -> Result<bool> {
        let day = Duration::from_secs(24 * 3600);
        Ok(self.eph().incr(&format!("stranger:{source}"), day).await? == 1)
    }

    /// Claims up to `limit` due outbox messages for sending.
    pub async fn claim_outbox(&self, limit: i64) -> Result<Vec<OutboundSms>> {
        let now = self.now_ms();
        let mut tx = self.db().begin().await?;
        let due = "(status = 'queued' AND next_attempt_at <= $1) OR (status = 'sending' AND claimed_at < $2)";
        let rows = sqlx::query(&format!(
            "UPDATE outbox SET status = 'sending', claimed_at = $1, attempts = attempts + 1 WHERE id IN (\
               SELECT id FROM outbox WHERE {due} ORDER BY id LIMIT $3) AND ({due}) \
             RETURNING id, msisdn, kind, body, attempts"
        ))
        .bind(now)
        .bind(now - CLAIM_TIMEOUT_MS)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut out: Vec<OutboundSms> = rows
            .iter()
            .map(|r| {
                Ok(OutboundSms {
                    id: r.try_get(0)?,
                    msisdn: r.try_get(1)?,
                    kind: r.try_get(2)?,
                    body: r.try_get(3)?,
                    attempts: r.try_get(4)?,
                })
            })
            .collect::<Result<_>>()?;
        out.sort_by_key(|m| m.id);
        Ok(out)
    }

    /// Records that the SMSC accepted every part of a message.
    pub async fn outbox_sent(&self, id: i64, message_ids: &[String]) -> Result<()> {
        self.outbox_sent_batch(&[(id, message_ids.to_vec())]).await
    }

    /// Records, in one transaction, that the SMSC accepted every part of each message
    /// `(outbox id, the parts' message ids)`.
    pub async fn outbox_sent_batch(&self, sent: &[(i64, Vec<String>)]) -> Result<()> {
        if sent.is_empty() {
            return Ok(());
        }
        let now = self.now_ms();
        let mut tx = self.db().begin().await?;
        for chunk in sent.chunks(CHUNK) {
            // One statement for the chunk: each message gets its own ids through a CASE.
            // A code is a secret: once the SMSC has it, the hall keeps no readable copy.
            let cases: String = (0..chunk.len())
                .map(|i| format!(" WHEN ${} THEN ${}", 3 + 2 * i, 4 + 2 * i))
                .collect();
            let sql = format!(
                "UPDATE outbox SET status = 'sent', sent_at = $1, last_error = NULL, \
                 body = CASE WHEN kind = 'code' THEN $2 ELSE body END, \
                 message_id = CASE id{cases} END WHERE id IN ({})",
                placeholders(3 + 2 * chunk.len(), chunk.len(), 1)
            );
            let sql = self.db().batch_sql(&sql);
            let mut q = sqlx::query(&sql).bind(now).bind(SENT_CODE_PLACEHOLDER);
            for (id, message_ids) in chunk {
                q = q.bind(id).bind(message_ids.join(","));
            }
            for (id, _) in chunk {
                q = q.bind(id);
            }
            q.execute(&mut *tx).await?;
        }
        let parts: Vec<(&str, i64, i64)> = sent
            .iter()
            .flat_map(|(id, mids)| {
                mids.iter()
                    .enumerate()
                    .map(move |(part, mid)| (mid.as_str(), *id, part as i64 + 1))
            })
            .collect();
        for chunk in parts.chunks(CHUNK) {
            let sql = format!(
                "INSERT INTO outbox_parts (message_id, outbox_id, part) VALUES {} \
                 ON CONFLICT (message_id) DO NOTHING",
                placeholders(1, chunk.len(), 3)
            );
            let sql = self.db().batch_sql(&sql);
            let mut q = sqlx::query(&sql);
            for (mid, id, part) in chunk {
                q = q.bind(*mid).bind(*id).bind(*part);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
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
        if receipts.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.now_ms();
        // A receipt repeated within the batch counts with its last status, as it would have
        // one after the other.
        let mut last: HashMap<&str, &str> = HashMap::with_capacity(receipts.len());
        for (message_id, stat) in receipts {
            last.insert(message_id, stat);
        }
        let mut distinct: Vec<(&str, &str)> = last.into_iter().collect();
        // In a fixed order, so that two writers never lock the same parts in opposite orders.
        distinct.sort_unstable();
        let mut tx = self.db().begin().await?;
        let mut known: HashSet<String> = HashSet::with_capacity(distinct.len());
        let mut messages: Vec<i64> = Vec::new();
        for chunk in distinct.chunks(CHUNK) {
            // One statement for the chunk (one round trip, not one a receipt): each part gets
            // its own status through a CASE.
            let cases: String = (0..chunk.len())
                .map(|i| format!(" WHEN ${} THEN ${}", 2 + 2 * i, 3 + 2 * i))
                .collect();
            let sql = format!(
                "UPDATE outbox_parts SET receipt_at = $1, stat = CASE message_id{cases} END \
                 WHERE message_id IN ({}) RETURNING message_id, outbox_id, stat",
                placeholders(2 + 2 * chunk.len(), chunk.len(), 1)
            );
            let sql = self.db().batch_sql(&sql);
            let mut q = sqlx::query(&sql).bind(now);
            for (message_id, stat) in chunk {
                q = q.bind(*message_id).bind(*stat);
            }
            for (message_id, _) in chunk {
                q = q.bind(*message_id);
            }
            for row in q.fetch_all(&mut *tx).await? {
                let stat: String = row.try_get(2)?;
                if stat == "DELIVRD" {
                    messages.push(row.try_get(1)?);
                }
                known.insert(row.try_get(0)?);
            }
        }
        let matched = receipts
            .iter()
            .map(|(message_id, _)| known.contains(message_id))
            .collect();
        messages.sort_unstable();
        messages.dedup();
        for chunk in messages.chunks(500) {
            let list = (0..chunk.len())
                .map(|i| format!("${}", i + 2))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "UPDATE outbox SET delivered_at = $1 WHERE id IN ({list}) AND delivered_at IS NULL AND NOT EXISTS (\
                   SELECT 1 FROM outbox_parts p WHERE p.outbox_id = outbox.id AND (p.stat IS NULL OR p.stat <> 'DELIVRD'))"
            );
            let sql = self.db().batch_sql(&sql);
            let mut q = sqlx::query(&sql).bind(now);
            for id in chunk {
                q = q.bind(id);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(matched)
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
        let at: Option<i64> = sqlx::query("SELECT delivered_at FROM outbox WHERE id = $1")
            .bind(id)
            .fetch_one(t.db().pool())
            .await
            .unwrap()
            .try_get(0)
            .unwrap();
        at.is_some()
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
    async fn a_redelivered_mo_is_stored_once_but_a_later_repeat_is_new() {
        let t = TestHall::empty().await;
        let a = t.receive_mo("13800138000", "10086", "CXYE").await.unwrap();
        assert!(a.is_some());
        assert_eq!(
            t.receive_mo("13800138000", "10086", "CXYE").await.unwrap(),
            None
        );
        assert!(
            t.receive_mo("13900139000", "10086", "CXYE")
                .await
                .unwrap()
                .is_some(),
            "another number"
        );
        t.clock.advance(D::seconds(21));
        assert!(t
            .receive_mo("13800138000", "10086", "CXYE")
            .await
            .unwrap()
            .is_some());
    }

    #[tokio::test]
    async fn a_batch_is_stored_in_order_and_deduplicated_within_itself() {
        let t = TestHall::empty().await;
        t.receive_mo("13800138000", "10086", "CXYE").await.unwrap();
        let mo = |s: &str, x: &str| (s.to_owned(), "10086".to_owned(), x.to_owned());
        let got = t
            .receive_mo_batch(&[
                mo("13800138000", "CXYE"),
                mo("13900139000", "CXYE"),
                mo("13900139000", "CXYE"),
                mo("13900139000", "CXLL"),
            ])
            .await
            .unwrap();
        assert_eq!(got[0], None, "stored before the batch");
        assert_eq!(got[2], None, "the same MO earlier in the batch");
        let (a, b) = (got[1].unwrap(), got[3].unwrap());
        assert!(a < b, "stored in order");
        let claimed: Vec<i64> = t.claim_mo(10).await.unwrap().iter().map(|m| m.id).collect();
        assert_eq!(claimed.len(), 3);
        assert_eq!(&claimed[1..], &[a, b]);
        assert!(t.receive_mo_batch(&[]).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn claimed_mo_are_handled_once_and_replies_queued() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 0).await;
        let id = t
            .receive_mo("13800138000", "10086", "CXYE")
            .await
            .unwrap()
            .unwrap();
        let claimed = t.claim_mo(10).await.unwrap();
        assert_eq!(claimed.len(), 1);
        assert!(t.claim_mo(10).await.unwrap().is_empty(), "claimed once");
        t.complete_mo(id, Some("您的余额为 0.00元")).await.unwrap();
        t.complete_mo(id, Some("again")).await.unwrap();
        let out = t.outbox_for(&m, 10).await.unwrap();
        assert_eq!(
            out.len(),
            1,
            "one reply, however often completion is retried"
        );
        assert_eq!(out[0].kind, "reply");
    }

    #[tokio::test]
    async fn a_batch_is_completed_at_once_with_replies_in_order() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 0).await;
        let a = t
            .receive_mo("13800138000", "10086", "CXYE")
            .await
            .unwrap()
            .unwrap();
        let b = t
            .receive_mo("13800138000", "10086", "CXLL")
            .await
            .unwrap()
            .unwrap();
        let c = t
            .receive_mo("13800138000", "10086", "QUIET")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(t.claim_mo(10).await.unwrap().len(), 3);
        t.complete_mo(a, Some("一")).await.unwrap();
        t.complete_mo_batch(&[(a, Some("again".into())), (b, Some("二".into())), (c, None)])
            .await
            .unwrap();
        let mut bodies: Vec<(i64, String)> = t
            .outbox_for(&m, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|o| (o.id, o.body))
            .collect();
        bodies.sort();
        let bodies: Vec<String> = bodies.into_iter().map(|(_, b)| b).collect();
        assert_eq!(
            bodies,
            vec!["一", "二"],
            "one reply each, in order, none for a repeat"
        );
        t.clock.advance(D::seconds(61));
        assert!(t.claim_mo(10).await.unwrap().is_empty(), "all handled");
    }

    #[tokio::test]
    async fn an_unfinished_claim_is_taken_over() {
        let t = TestHall::empty().await;
        t.receive_mo("13800138000", "10086", "CXYE").await.unwrap();
        assert_eq!(t.claim_mo(10).await.unwrap().len(), 1);
        t.clock.advance(D::seconds(61));
        assert_eq!(t.claim_mo(10).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn thirty_commands_then_one_warning_then_silence() {
        let t = TestHall::empty().await;
        let m = Msisdn::parse("13800138000").unwrap();
        for _ in 0..30 {
            assert_eq!(
                t.command_allowance(&m).await.unwrap(),
                CommandAllowance::Allowed
            );
        }
        assert_eq!(
            t.command_allowance(&m).await.unwrap(),
            CommandAllowance::TooFrequent
        );
        assert_eq!(
            t.command_allowance(&m).await.unwrap(),
            CommandAllowance::Silent
        );
        t.clock.advance(D::minutes(10));
        assert_eq!(
            t.command_allowance(&m).await.unwrap(),
            CommandAllowance::Allowed
        );
    }

    #[tokio::test]
    async fn strangers_are_refused_once() {
        let t = TestHall::empty().await;
        assert!(t.refuse_stranger_once("13999999999").await.unwrap());
        assert!(!t.refuse_stranger_once("13999999999").await.unwrap());
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
        let delivered = |id| {
            let t = &t;
            async move {
                sqlx::query("SELECT delivered_at FROM outbox WHERE id = $1")
                    .bind(id)
                    .fetch_one(t.db().pool())
                    .await
                    .unwrap()
                    .try_get::<Option<i64>, _>(0)
                    .unwrap()
            }
        };
        assert!(delivered(batch[0].id).await.is_none(), "one part of two");
        t.outbox_receipt("m2", "DELIVRD").await.unwrap();
        assert!(delivered(batch[0].id).await.is_some());
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
        assert!(t.outbox_receipt("a1", "DELIVRD").await.unwrap());
        assert!(t.outbox_receipt("b2", "DELIVRD").await.unwrap());
        assert!(t.outbox_sent_batch(&[]).await.is_ok());
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
