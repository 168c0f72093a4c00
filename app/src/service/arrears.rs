//! Arrears (欠费停机): a number whose balance has stayed below zero for longer than the grace
//! period is suspended and told so by SMS. A top-up that brings it back above zero resumes it;
//! that half lives in `ledger::post`, in the same transaction as the credit.
use sqlx::Row;

use crate::domain::{Fen, Msisdn, Status};
use crate::error::{Error, Result};
use crate::hall::Hall;
use crate::service::ledger;
use crate::service::outbox::{self, SmsKind};

impl Hall {
    /// Suspends every active number that has been below zero since before `now − grace`, and
    /// returns how many it suspended. Safe to run at any time, as often as liked, from several
    /// instances: each number is re-checked under its account lock and changed by a
    /// conditional UPDATE, so a concurrent top-up wins and nobody is suspended twice.
    pub async fn enforce_arrears(&self) -> Result<u64> {
        let now_ms = self.now_ms();
        let grace_ms = i64::try_from(self.settings().arrears_grace.as_millis()).unwrap_or(i64::MAX);
        let cutoff = now_ms.saturating_sub(grace_ms);
        let candidates: Vec<String> = sqlx::query(
            "SELECT a.msisdn FROM accounts a JOIN subscribers s ON s.msisdn = a.msisdn \
             WHERE s.status = $1 AND a.negative_since IS NOT NULL AND a.negative_since < $2 \
             ORDER BY a.msisdn",
        )
        .bind(Status::Active.as_str())
        .bind(cutoff)
        .fetch_all(self.db().pool())
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;

        let mut suspended = 0;
        for m in candidates {
            let m = Msisdn::parse(&m)
                .map_err(|_| Error::Storage("unreadable msisdn in accounts".into()))?;
            if self.suspend_for_arrears(&m, cutoff, now_ms).await? {
                suspended += 1;
            }
        }
        Ok(suspended)
    }

    async fn suspend_for_arrears(&self, m: &Msisdn, cutoff: i64, now_ms: i64) -> Result<bool> {
        let mut tx = self.db().begin().await?;
        // Lock the account row the way every money change does, then re-read: the list above
        // may be stale by now.
        let balance = ledger::lock_account(&mut tx, m).await?;
        let still_owing = sqlx::query(
            "SELECT 1 FROM accounts WHERE msisdn = $1 AND negative_since IS NOT NULL \
             AND negative_since < $2",
        )
        .bind(m.as_str())
        .bind(cutoff)
        .fetch_optional(&mut *tx)
        .await?
        .is_some();
        if !still_owing || !balance.total().is_negative() {
            return Ok(false);
        }
        let changed =
            sqlx::query("UPDATE subscribers SET status = $1 WHERE msisdn = $2 AND status = $3")
                .bind(Status::SuspendedArrears.as_str())
                .bind(m.as_str())
                .bind(Status::Active.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if changed == 0 {
            return Ok(false);
        }
        let owed: Fen = balance.total().abs();
        let body = format!(
            "您的账户已欠费 {},号码已暂停服务(欠费停机)。充值使余额大于零后将自动恢复,\
             可发送短信或登录网上营业厅充值。",
            owed.yuan_text()
        );
        outbox::queue(&mut tx, now_ms, m, SmsKind::Account, &body).await?;
        tx.commit().await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::payment::PaymentCallback;
    use crate::testing::TestHall;

    async fn pay(t: &TestHall, m: &Msisdn, amount: Fen) {
        let order = t.create_payment(m, m, amount).await.unwrap();
        t.payment_callback(PaymentCallback {
            order_id: order.id.clone(),
            provider_txn: format!("T-{}", order.id),
            amount,
            success: true,
        })
        .await
        .unwrap();
    }

    async fn status(t: &TestHall, m: &Msisdn) -> Status {
        t.profile(m).await.unwrap().status
    }

    #[tokio::test]
    async fn negative_past_the_grace_period_suspends_and_a_top_up_resumes() {
        let t = TestHall::empty().await;
        let owing = t.subscriber("13800138000", 0).await;
        let fine = t.subscriber("13900139000", 500).await;
        let recent = t.subscriber("13700137000", 0).await;
        t.adjust_balance(&owing, -Fen::yuan(30), "测试扣费")
            .await
            .unwrap();
        let grace = chrono::Duration::from_std(t.settings().arrears_grace).unwrap();

        // Not yet: exactly at the grace period nothing happens.
        t.clock.advance(grace);
        t.adjust_balance(&recent, -Fen::yuan(5), "测试扣费")
            .await
            .unwrap();
        assert_eq!(t.enforce_arrears().await.unwrap(), 0);
        assert_eq!(status(&t, &owing).await, Status::Active);

        t.clock.advance(chrono::Duration::seconds(1));
        assert_eq!(t.enforce_arrears().await.unwrap(), 1);
        assert_eq!(status(&t, &owing).await, Status::SuspendedArrears);
        assert_eq!(status(&t, &fine).await, Status::Active);
        assert_eq!(status(&t, &recent).await, Status::Active);
        let sms = t.outbox_for(&owing, 1).await.unwrap();
        assert!(sms[0].body.contains("欠费 30.00元"), "{}", sms[0].body);
        // Idempotent: nobody is suspended (or told) twice.
        assert_eq!(t.enforce_arrears().await.unwrap(), 0);
        assert_eq!(t.outbox_for(&owing, 10).await.unwrap().len(), 1);

        // A top-up that leaves the balance below zero does not resume.
        t.insert_card(
            "26000000000000001",
            "100000000000000001",
            Fen::yuan(10),
            "DEMO",
        )
        .await
        .unwrap();
        t.top_up_by_card(&owing, &owing, "100000000000000001", None)
            .await
            .unwrap();
        assert_eq!(t.balance(&owing).await.unwrap().total(), -Fen::yuan(20));
        assert_eq!(status(&t, &owing).await, Status::SuspendedArrears);

        // One that brings it above zero does, and says so.
        pay(&t, &owing, Fen::yuan(50)).await;
        assert_eq!(t.balance(&owing).await.unwrap().total(), Fen::yuan(30));
        assert_eq!(status(&t, &owing).await, Status::Active);
        let sms = t.outbox_for(&owing, 1).await.unwrap();
        assert!(sms[0].body.contains("已恢复正常使用"), "{}", sms[0].body);
        assert_eq!(t.enforce_arrears().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_number_suspended_by_request_is_left_alone() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 0).await;
        t.adjust_balance(&m, -Fen::yuan(30), "测试扣费")
            .await
            .unwrap();
        t.suspend_by_request(&m).await.unwrap();
        t.clock.advance(chrono::Duration::days(30));
        assert_eq!(t.enforce_arrears().await.unwrap(), 0);
        assert_eq!(status(&t, &m).await, Status::SuspendedByRequest);
        // Topping up never turns a by-request suspension into active.
        pay(&t, &m, Fen::yuan(50)).await;
        assert_eq!(status(&t, &m).await, Status::SuspendedByRequest);
    }

    #[tokio::test]
    async fn exactly_zero_after_a_top_up_stays_suspended() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 0).await;
        t.adjust_balance(&m, -Fen::yuan(10), "测试扣费")
            .await
            .unwrap();
        t.clock.advance(chrono::Duration::days(4));
        assert_eq!(t.enforce_arrears().await.unwrap(), 1);
        t.insert_card(
            "26000000000000001",
            "100000000000000001",
            Fen::yuan(10),
            "DEMO",
        )
        .await
        .unwrap();
        t.top_up_by_card(&m, &m, "100000000000000001", None)
            .await
            .unwrap();
        assert_eq!(t.balance(&m).await.unwrap().total(), Fen::ZERO);
        assert_eq!(status(&t, &m).await, Status::SuspendedArrears);
    }
}
