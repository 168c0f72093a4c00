//! The MO inbox: stored before the SMSC is answered, deduplicated against redelivery, claimed
//! by a worker, completed with its reply. Several gateways may share one database: claims are
//! conditional updates.
use std::collections::{HashMap, HashSet};

use super::round::SmsRound;
use super::{hash, InboxMo, OutboundSms, CLAIM_TIMEOUT_MS, DEDUPE_WINDOW_MS};
use crate::clock::from_millis;
use crate::domain::Msisdn;
use crate::error::Result;
use crate::hall::Hall;
use crate::service::outbox::SmsKind;
use crate::store::db::{placeholders, runs};
use crate::store::reads::{Read, ReadRow};
use crate::store::WriteTx;

/// What becomes of the MO a call stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnArrival {
    /// Left for any worker to claim.
    Queue,
    /// Claimed at once by the caller, which will handle them (no claim round trip); another
    /// worker takes them over only when the claim expires.
    Claim,
}

/// What becomes of the replies a completion queues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replies {
    /// Queued for any sender to claim.
    Queue,
    /// Claimed at once by the caller, which sends them, together with up to this many other
    /// due messages (so that a notice queued before a reply is not overtaken by it).
    Send(i64),
}

/// Claims stored MO nobody has claimed, oldest first: a range of the index `sms_inbox_due`
/// (status, claimed_at, id), where every such MO has no claim time (migration 0007). The
/// partial index's own condition is repeated for SQLite (see migration 0004).
const CLAIM_RECEIVED: &str = "UPDATE sms_inbox SET status = 'handling', claimed_at = $1 \
     WHERE id IN (SELECT id FROM sms_inbox WHERE status IN ('received', 'handling') \
       AND status = 'received' AND claimed_at IS NULL ORDER BY id LIMIT $2) \
     AND status = 'received' \
     RETURNING id, source, destination, body, received_at";

/// Claims MO whose claim ran out (claimed before `$2`), oldest claim first: also a range of
/// `sms_inbox_due`, so a claim reads only what it takes, not every MO in flight.
const CLAIM_EXPIRED: &str = "UPDATE sms_inbox SET status = 'handling', claimed_at = $1 \
     WHERE id IN (SELECT id FROM sms_inbox WHERE status IN ('received', 'handling') \
       AND status = 'handling' AND claimed_at < $2 ORDER BY claimed_at, id LIMIT $3) \
     AND status = 'handling' AND claimed_at < $2 \
     RETURNING id, source, destination, body, received_at";

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
        let round = SmsRound {
            received: mos.to_vec(),
            ..Default::default()
        };
        Ok(self.sms_round(&round).await?.stored)
    }

    /// [`Hall::receive_mo_batch`] inside the caller's transaction. With [`OnArrival::Claim`]
    /// also returns the stored MO, claimed for the caller, in arrival order.
    pub(crate) async fn receive_mo_in(
        &self,
        tx: &mut WriteTx,
        mos: &[(String, String, String)],
        arrival: OnArrival,
        now: i64,
    ) -> Result<(Vec<Option<i64>>, Vec<InboxMo>)> {
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
        // A few statements for the whole batch, not two a message: on SQLite each statement
        // is a hand-off to the connection's thread, and that is what a busy link pays for.
        // Looked up by (sender, hash), one index seek each: by sender alone, a busy number's
        // every recent message came back (the costliest statement under load).
        let mut stored_before: HashSet<(String, String)> = HashSet::new();
        for chunk in runs(&fresh) {
            let sql = self.db().batch_statement(chunk.len(), || {
                format!(
                    "WITH batch (source, body_hash) AS (VALUES {}) \
                 SELECT i.source, i.body_hash FROM batch \
                 JOIN sms_inbox i ON i.source = batch.source AND i.body_hash = batch.body_hash \
                 WHERE i.received_at > ${}",
                    placeholders(1, chunk.len(), 2),
                    2 * chunk.len() + 1
                )
            });
            let mut q = Read::with_capacity(sql, 2 * chunk.len() + 1);
            for (i, h) in chunk {
                q = q.text(&mos[*i].0).text(h);
            }
            q = q.int(now - DEDUPE_WINDOW_MS);
            for row in tx.fetch(q).await? {
                stored_before.insert((row.try_get(0)?, row.try_get(1)?));
            }
        }
        fresh.retain(|(i, h)| !stored_before.contains(&(mos[*i].0.clone(), h.clone())));
        let (status, claimed_at) = match arrival {
            OnArrival::Queue => ("received", None),
            OnArrival::Claim => ("handling", Some(now)),
        };
        for chunk in runs(&fresh) {
            let sql = self.db().batch_statement(chunk.len(), || {
                format!(
                    "INSERT INTO sms_inbox (source, destination, body, body_hash, received_at, status, claimed_at) \
                     VALUES {} RETURNING id",
                    placeholders(1, chunk.len(), 7)
                )
            });
            let mut q = Read::with_capacity(sql, 7 * chunk.len());
            for (i, h) in chunk {
                let (source, destination, text) = &mos[*i];
                q = q
                    .text(source)
                    .text(destination)
                    .text(text)
                    .text(h)
                    .int(now)
                    .text(status)
                    .opt_int(claimed_at);
            }
            let ids = inserted_ids(tx.fetch(q).await?, chunk.len())?;
            for ((i, _), id) in chunk.iter().zip(ids) {
                out[*i] = Some(id);
            }
        }
        let claimed = match arrival {
            OnArrival::Queue => Vec::new(),
            OnArrival::Claim => mos
                .iter()
                .zip(&out)
                .filter_map(|((source, destination, body), id)| {
                    Some(InboxMo {
                        id: (*id)?,
                        source: source.clone(),
                        destination: destination.clone(),
                        body: body.clone(),
                        received_at: from_millis(now),
                    })
                })
                .collect(),
        };
        Ok((out, claimed))
    }

    /// Claims up to `limit` stored MO to handle: ones another worker claimed and did not
    /// finish in time, oldest claim first, then stored ones, oldest first.
    pub async fn claim_mo(&self, limit: i64) -> Result<Vec<InboxMo>> {
        let now = self.now_ms();
        // A write: through the writer's turn like every other (see `Db::begin`).
        let mut tx = self.db().begin_write().await?;
        let expired = Read::new(CLAIM_EXPIRED)
            .int(now)
            .int(now - CLAIM_TIMEOUT_MS)
            .int(limit);
        let mut rows = tx.fetch(expired).await?;
        let left = limit - rows.len() as i64;
        if left > 0 {
            rows.extend(
                tx.fetch(Read::new(CLAIM_RECEIVED).int(now).int(left))
                    .await?,
            );
        }
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

    /// Gives back claimed MO that the caller will not handle after all (it is stopping), so
    /// that another worker can take them at once instead of when the claim expires.
    pub async fn release_mo(&self, ids: &[i64]) -> Result<()> {
        self.update_by_ids(ids, |list| {
            format!(
                "UPDATE sms_inbox SET status = 'received', claimed_at = NULL \
                 WHERE id IN ({list}) AND status = 'handling'"
            )
        })
        .await
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
        let round = SmsRound {
            completed: done.to_vec(),
            ..Default::default()
        };
        self.sms_round(&round).await.map(drop)
    }

    /// [`Hall::complete_mo_batch`] inside the caller's transaction. With [`Replies::Send`]
    /// returns what the caller is now to send, in id order: the replies and the other due
    /// messages it claimed.
    pub(crate) async fn complete_mo_in(
        &self,
        tx: &mut WriteTx,
        done: &[(i64, Option<String>)],
        replies_are: Replies,
        now: i64,
    ) -> Result<Vec<OutboundSms>> {
        // Which of them this call completes (an MO already handled gets no second reply).
        let mut completed: HashMap<i64, String> = HashMap::with_capacity(done.len());
        let ids: Vec<i64> = done.iter().map(|(id, _)| *id).collect();
        for chunk in runs(&ids) {
            let sql = self.db().batch_statement(chunk.len(), || {
                format!(
                    "UPDATE sms_inbox SET status = 'handled', handled_at = $1 WHERE id IN ({}) \
                 AND status <> 'handled' RETURNING id, source",
                    placeholders(2, chunk.len(), 1)
                )
            });
            let mut q = Read::with_capacity(sql, chunk.len() + 1).int(now);
            for id in chunk {
                q = q.int(*id);
            }
            for row in tx.fetch(q).await? {
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
        let mut to_send: Vec<OutboundSms> = Vec::new();
        if let Replies::Send(others) = replies_are {
            // Claimed before the replies are inserted, so the replies are not claimed twice.
            to_send = self.claim_queued_in(tx, others, now).await?;
        }
        // A claimed message is due again when its claim runs out (see `Hall::claim_outbox`).
        let (status, claimed_at, due, attempts) = match replies_are {
            Replies::Queue => ("queued", None, now, 0i64),
            Replies::Send(_) => ("sending", Some(now), now + CLAIM_TIMEOUT_MS, 1),
        };
        // In the order given: the outbox is sent in id order, so a sender's replies keep the
        // order of its MO.
        for chunk in runs(&replies) {
            let sql = self.db().batch_statement(chunk.len(), || {
                format!(
                    "INSERT INTO outbox (msisdn, kind, body, next_attempt_at, created_at, status, claimed_at, attempts) \
                     VALUES {} RETURNING id",
                    placeholders(1, chunk.len(), 8)
                )
            });
            let mut q = Read::with_capacity(sql, 8 * chunk.len());
            for (to, body) in chunk {
                q = q
                    .text(to.as_str())
                    .text(SmsKind::Reply.as_str())
                    .text(*body)
                    .int(due)
                    .int(now)
                    .text(status)
                    .opt_int(claimed_at)
                    .int(attempts);
            }
            let ids = inserted_ids(tx.fetch(q).await?, chunk.len())?;
            if let Replies::Send(_) = replies_are {
                for ((to, body), id) in chunk.iter().zip(ids) {
                    to_send.push(OutboundSms {
                        id,
                        msisdn: to.as_str().to_owned(),
                        kind: SmsKind::Reply.as_str().to_owned(),
                        body: (*body).to_owned(),
                        attempts,
                    });
                }
            }
        }
        to_send.sort_by_key(|m| m.id);
        Ok(to_send)
    }
}

/// The ids a multi-row `INSERT … VALUES … RETURNING id` assigned, in the order of its rows.
///
/// Why not return the rows' own values to match them up: each returned column is a value
/// converted (and through sqlx handed over from SQLite's thread), and these inserts are most
/// of the SMS gateway's writes. Both databases number one statement's rows in the order of its VALUES
/// (SQLite inserts them one after the other; PostgreSQL takes `nextval` row by row, and a
/// sequence only grows), so the k-th smallest id is the k-th row's, whatever order RETURNING
/// gives them in.
fn inserted_ids(rows: Vec<ReadRow>, expected: usize) -> Result<Vec<i64>> {
    let mut ids = rows
        .iter()
        .map(|r| r.try_get::<i64, _>(0))
        .collect::<Result<Vec<_>>>()?;
    if ids.len() != expected {
        return Err(crate::error::Error::Storage(format!(
            "an insert of {expected} rows returned {} ids",
            ids.len()
        )));
    }
    ids.sort_unstable();
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use sqlx::Row;

    use crate::testing::TestHall;
    use chrono::Duration as D;

    use super::*;

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
    async fn every_id_of_a_large_batch_is_its_own_rows() {
        // 300 MO and their replies: several statements (runs of 256, 32, 8, 4), senders
        // interleaved; each id handed back must be the row made from that very item.
        let t = TestHall::empty().await;
        let senders: Vec<String> = (0..7).map(|i| format!("1380013800{i}")).collect();
        for s in &senders {
            t.subscriber(s, 0).await;
        }
        let mos: Vec<(String, String, String)> = (0..300)
            .map(|k| (senders[k % 7].clone(), "10086".into(), format!("CX{k}")))
            .collect();
        let mut tx = t.db().begin_write().await.unwrap();
        let (ids, claimed) = t
            .receive_mo_in(&mut tx, &mos, OnArrival::Claim, t.now_ms())
            .await
            .unwrap();
        let done: Vec<(i64, Option<String>)> = ids
            .iter()
            .zip(&mos)
            .map(|(id, (_, _, text))| (id.unwrap(), Some(format!("re {text}"))))
            .collect();
        let to_send = t
            .complete_mo_in(&mut tx, &done, Replies::Send(0), t.now_ms())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(claimed.len(), 300);
        for (id, (source, _, text)) in ids.iter().zip(&mos) {
            let row = sqlx::query("SELECT source, body FROM sms_inbox WHERE id = $1")
                .bind(id.unwrap())
                .fetch_one(t.db().pool())
                .await
                .unwrap();
            let stored: (String, String) = (row.try_get(0).unwrap(), row.try_get(1).unwrap());
            assert_eq!(&stored, &(source.clone(), text.clone()));
        }
        assert_eq!(to_send.len(), 300);
        for m in &to_send {
            let row = sqlx::query("SELECT msisdn, body, status FROM outbox WHERE id = $1")
                .bind(m.id)
                .fetch_one(t.db().pool())
                .await
                .unwrap();
            let stored: (String, String, String) = (
                row.try_get(0).unwrap(),
                row.try_get(1).unwrap(),
                row.try_get(2).unwrap(),
            );
            assert_eq!(stored, (m.msisdn.clone(), m.body.clone(), "sending".into()));
        }
        // And the replies are in the order of their MO.
        let bodies: Vec<&str> = to_send.iter().map(|m| m.body.as_str()).collect();
        let expected: Vec<String> = mos.iter().map(|(_, _, x)| format!("re {x}")).collect();
        assert_eq!(bodies, expected);
    }

    #[tokio::test]
    async fn mo_claimed_on_arrival_are_not_claimed_again_until_released_or_expired() {
        let t = TestHall::empty().await;
        let mo = |x: &str| ("13800138000".to_owned(), "10086".to_owned(), x.to_owned());
        let mut tx = t.db().begin_write().await.unwrap();
        let (ids, claimed) = t
            .receive_mo_in(
                &mut tx,
                &[mo("CXYE"), mo("CXYE"), mo("CXLL")],
                OnArrival::Claim,
                t.now_ms(),
            )
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(ids[1], None, "a redelivery within the batch");
        let claimed: Vec<(i64, &str)> = claimed.iter().map(|m| (m.id, m.body.as_str())).collect();
        assert_eq!(
            claimed,
            vec![(ids[0].unwrap(), "CXYE"), (ids[2].unwrap(), "CXLL")]
        );
        assert!(t.claim_mo(10).await.unwrap().is_empty(), "already claimed");
        t.release_mo(&[ids[0].unwrap()]).await.unwrap();
        let again: Vec<i64> = t.claim_mo(10).await.unwrap().iter().map(|m| m.id).collect();
        assert_eq!(again, vec![ids[0].unwrap()], "released");
        t.clock.advance(D::seconds(61));
        assert_eq!(t.claim_mo(10).await.unwrap().len(), 2, "both expired");
    }

    #[tokio::test]
    async fn expired_claims_are_taken_first_oldest_claim_first_then_stored_mo() {
        let t = TestHall::empty().await;
        let mo = |x: &str| ("13800138000".to_owned(), "10086".to_owned(), x.to_owned());
        let waiting = t.receive_mo("13800138000", "10086", "CXJF").await.unwrap();
        let claim = |x: &'static str| {
            let t = &t;
            async move {
                let mut tx = t.db().begin_write().await.unwrap();
                let (ids, _) = t
                    .receive_mo_in(&mut tx, &[mo(x)], OnArrival::Claim, t.now_ms())
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
                ids[0]
            }
        };
        let older = claim("CXYE").await;
        t.clock.advance(D::seconds(10));
        let newer = claim("CXLL").await;
        t.clock.advance(D::seconds(55));
        let t = &t;
        let take = |n| async move {
            let claimed = t.claim_mo(n).await.unwrap();
            claimed.iter().map(|m| Some(m.id)).collect::<Vec<_>>()
        };
        assert_eq!(
            take(1).await,
            vec![older],
            "the expired claim, before the stored MO with a smaller id"
        );
        assert_eq!(
            take(5).await,
            vec![waiting],
            "the newer claim has not run out yet"
        );
        t.clock.advance(D::seconds(10));
        assert_eq!(take(5).await, vec![newer]);
        assert!(take(5).await.is_empty());
        t.release_mo(&[newer.unwrap()]).await.unwrap();
        assert_eq!(
            take(5).await,
            vec![newer],
            "released: stored again, claimable at once"
        );

        // On SQLite each claim is one range of the index, not a scan of every MO in flight.
        if t.db().backend() == crate::store::db::Backend::Sqlite {
            for (sql, args) in [(CLAIM_EXPIRED, 3), (CLAIM_RECEIVED, 2)] {
                let explain = format!("EXPLAIN QUERY PLAN {sql}");
                let mut q = sqlx::query(&explain);
                for _ in 0..args {
                    q = q.bind(0i64);
                }
                let plan: Vec<String> = q
                    .fetch_all(t.db().pool())
                    .await
                    .unwrap()
                    .iter()
                    .map(|r| r.try_get::<String, _>(3).unwrap())
                    .collect();
                assert!(
                    plan.iter()
                        .any(|l| l.contains("INDEX sms_inbox_due (status=? AND claimed_at")),
                    "{sql}: {plan:?}"
                );
                assert!(
                    !plan.iter().any(|l| l.contains("TEMP B-TREE")),
                    "{sql}: {plan:?}"
                );
            }
        }
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
    async fn replies_to_send_now_come_back_claimed_after_the_notices_queued_before_them() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 0).await;
        // A notice queued by a command's effect, before its reply.
        t.suspend_by_request(&m).await.unwrap();
        let id = t
            .receive_mo("13800138000", "10086", "TJ")
            .await
            .unwrap()
            .unwrap();
        t.claim_mo(10).await.unwrap();
        let mut tx = t.db().begin_write().await.unwrap();
        let to_send = t
            .complete_mo_in(
                &mut tx,
                &[(id, Some("已停机".into()))],
                Replies::Send(10),
                t.now_ms(),
            )
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(to_send.len(), 2);
        assert!(to_send[0].id < to_send[1].id, "in id order");
        assert_eq!(
            (
                to_send[1].kind.as_str(),
                to_send[1].body.as_str(),
                to_send[1].attempts
            ),
            ("reply", "已停机", 1)
        );
        assert_ne!(to_send[0].kind, "reply");
        assert!(t.claim_outbox(10).await.unwrap().is_empty(), "both claimed");
        t.clock.advance(D::seconds(61));
        assert_eq!(t.claim_outbox(10).await.unwrap().len(), 2, "until expired");
    }

    #[tokio::test]
    async fn an_unfinished_claim_is_taken_over() {
        let t = TestHall::empty().await;
        t.receive_mo("13800138000", "10086", "CXYE").await.unwrap();
        assert_eq!(t.claim_mo(10).await.unwrap().len(), 1);
        t.clock.advance(D::seconds(61));
        assert_eq!(t.claim_mo(10).await.unwrap().len(), 1);
    }
}
