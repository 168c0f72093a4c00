//! Subscriptions. The charging rule, shown before every confirmation: an add-on starts at once
//! and this month's full fee is charged then; from next month it renews on the 1st; a
//! cancellation takes effect at the end of the month. A base-plan change takes effect on the
//! 1st of next month, at most one a month, and can be withdrawn until then.
use serde::Serialize;
use sqlx::{AnyConnection, Row};

use crate::clock::from_millis;
use crate::domain::{Fen, Msisdn, Period, ProductCode};
use crate::error::{is_unique_violation, Error, Result};
use crate::hall::Hall;
use crate::service::catalogue::{
    load_product, product_from, product_from_row, product_read, Product, ProductKind,
    PRODUCT_COLUMNS,
};
use crate::service::ledger::{self, Balance, Posting, Reason};
use crate::service::outbox::{self, SmsKind};
use crate::service::subscribers::{load_profile, profile_from, profile_read, require_active};
use crate::store::reads::{Read, ReadRow};

#[derive(Clone, Debug, Serialize)]
pub struct Subscription {
    pub id: i64,
    pub product: Product,
    pub start_period: Period,
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// The last month it is active, once cancelled.
    pub end_period: Option<Period>,
}

/// What an order will cost, stated before the subscriber confirms it.
#[derive(Clone, Debug, Serialize)]
pub struct Quote {
    pub product: Product,
    pub charge_now: Fen,
    pub rule_zh: String,
    pub rule_en: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Subscribed {
    pub subscription_id: i64,
    pub product: Product,
    /// Zero when an add-on cancelled this month is simply kept (its fee was already paid).
    pub charged: Fen,
    pub balance: Balance,
}

#[derive(Clone, Debug, Serialize)]
pub struct PlanChange {
    pub id: i64,
    pub from: ProductCode,
    pub to: ProductCode,
    pub effective: Period,
    pub requested_at: chrono::DateTime<chrono::Utc>,
}

pub fn charging_rule(p: &Product) -> (String, String) {
    match p.kind {
        ProductKind::AddOn => (
            format!(
                "立即生效,本月收取全额月费 {};次月起每月 1 日自动续订并扣费 {},退订次月生效。",
                p.monthly_fee.yuan_text(),
                p.monthly_fee.yuan_text()
            ),
            format!(
                "Starts now; this month's full fee of {} is charged today, then {} on the 1st of each month. A cancellation takes effect at the end of the month.",
                p.monthly_fee, p.monthly_fee
            ),
        ),
        ProductKind::Plan => (
            format!("次月 1 日生效,月费 {};每月只能变更一次,生效前可撤销。", p.monthly_fee.yuan_text()),
            format!(
                "Takes effect on the 1st of next month at {} a month; one change a month, which can be withdrawn until then.",
                p.monthly_fee
            ),
        ),
    }
}

async fn live_subscriptions(
    conn: &mut AnyConnection,
    msisdn: &Msisdn,
    period: Period,
) -> Result<Vec<Subscription>> {
    subscriptions_from(&subscriptions_read(msisdn, period).fetch(conn).await?)
}

/// The read behind [`live_subscriptions`], for a [`crate::store::reads::Reader`].
fn subscriptions_read(msisdn: &Msisdn, period: Period) -> Read {
    let cols = PRODUCT_COLUMNS
        .split(", ")
        .map(|c| format!("p.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    Read::new(format!(
        "SELECT s.id, s.start_period, s.started_at, s.end_period, {cols} FROM subscriptions s \
         JOIN products p ON p.code = s.product_code \
         WHERE s.msisdn = $1 AND s.start_period <= $2 AND (s.end_period IS NULL OR s.end_period >= $2) ORDER BY s.id"
    ))
    .text(msisdn.as_str())
    .text(period.to_string())
}

fn subscriptions_from(rows: &[ReadRow]) -> Result<Vec<Subscription>> {
    let bad = |_| Error::Storage("unreadable period in subscriptions".into());
    rows.iter()
        .map(|r| {
            Ok(Subscription {
                id: r.try_get(0)?,
                start_period: Period::parse(&r.try_get::<String, _>(1)?).map_err(bad)?,
                started_at: from_millis(r.try_get(2)?),
                end_period: r
                    .try_get::<Option<String>, _>(3)?
                    .map(|p| Period::parse(&p))
                    .transpose()
                    .map_err(bad)?,
                product: product_from_row(r, 4)?,
            })
        })
        .collect()
}

impl Hall {
    /// The add-ons active this month, in the order they were ordered (the SMS `0000` menu numbers
    /// them in this order).
    pub async fn subscriptions(&self, msisdn: &Msisdn) -> Result<Vec<Subscription>> {
        let period = Period::containing(self.now());
        let mut rows = self
            .db()
            .read_each([profile_read(msisdn), subscriptions_read(msisdn, period)])
            .await?;
        profile_from(&rows.next())?;
        subscriptions_from(&rows.next())
    }

    pub async fn quote(&self, msisdn: &Msisdn, code: &ProductCode) -> Result<Quote> {
        let mut rows = self
            .db()
            .read_each([profile_read(msisdn), product_read(code)])
            .await?;
        let profile = profile_from(&rows.next())?;
        let product = product_from(&rows.next())?;
        let charge_now = match product.kind {
            ProductKind::AddOn => product.monthly_fee,
            ProductKind::Plan if product.is_plan_of(profile.brand) => Fen::ZERO,
            ProductKind::Plan => return Err(Error::WrongProductKind),
        };
        let (rule_zh, rule_en) = charging_rule(&product);
        Ok(Quote {
            product,
            charge_now,
            rule_zh,
            rule_en,
        })
    }

    /// Orders an add-on. The caller has already obtained the subscriber's confirmation (an SMS
    /// reply, the web second factor, or the code read out to an agent).
    pub async fn subscribe(&self, msisdn: &Msisdn, code: &ProductCode) -> Result<Subscribed> {
        let now = self.now();
        let now_ms = self.now_ms();
        let period = Period::containing(now);
        let mut tx = self.db().begin().await?;
        // Lock first: two concurrent orders of one number queue here and the second sees the first.
        ledger::lock_account(&mut tx, msisdn).await?;
        require_active(&mut tx, msisdn).await?;
        let product = load_product(&mut tx, code).await?;
        if product.kind != ProductKind::AddOn {
            return Err(Error::WrongProductKind);
        }
        let existing = live_subscriptions(&mut tx, msisdn, period)
            .await?
            .into_iter()
            .find(|s| s.product.code == *code);
        if let Some(s) = existing {
            if s.end_period.is_none() {
                return Err(Error::AlreadySubscribed);
            }
            // Cancelled this month but still running: keep it; this month is already paid.
            sqlx::query(
                "UPDATE subscriptions SET end_period = NULL, cancelled_at = NULL WHERE id = $1",
            )
            .bind(s.id)
            .execute(&mut *tx)
            .await?;
            let body = format!(
                "【中国移动】您已恢复订购{},下月起继续按月收取 {}。",
                product.name_zh,
                product.monthly_fee.yuan_text()
            );
            if self.change_notices() {
                outbox::queue(&mut tx, now_ms, msisdn, SmsKind::Subscription, &body).await?;
            }
            let balance = ledger::lock_account(&mut tx, msisdn).await?;
            tx.commit().await?;
            return Ok(Subscribed {
                subscription_id: s.id,
                product,
                charged: Fen::ZERO,
                balance,
            });
        }
        let id: i64 = sqlx::query(
            "INSERT INTO subscriptions (msisdn, product_code, start_period, started_at) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(msisdn.as_str())
        .bind(code.as_str())
        .bind(period.to_string())
        .bind(now_ms)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| if is_unique_violation(&e) { Error::AlreadySubscribed } else { e.into() })?
        .try_get(0)?;
        let reference = format!("addon:{id}:{period}");
        let item = format!("{}({})", product.name_zh, period.zh());
        sqlx::query(
            "INSERT INTO charges (msisdn, period, category, item, amount, reference, created_at) \
             VALUES ($1, $2, 'addon', $3, $4, $5, $6)",
        )
        .bind(msisdn.as_str())
        .bind(period.to_string())
        .bind(&item)
        .bind(product.monthly_fee.get())
        .bind(&reference)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        let balance = ledger::post(
            &mut tx,
            now_ms,
            Posting {
                msisdn,
                amount: -product.monthly_fee,
                to_gift: false,
                allow_negative: false,
                reason: Reason::Charge,
                memo: &item,
                reference: &reference,
            },
        )
        .await?;
        let body =
            format!(
            "【中国移动】您已成功订购{},{}本月已扣费 {},当前余额 {}。退订请发送 QX{} 至 10086。",
            product.name_zh,
            product.description_zh.split(';').next().unwrap_or_default().to_owned() + ",",
            product.monthly_fee.yuan_text(),
            balance.total().yuan_text(),
            product.code
        );
        if self.change_notices() {
            outbox::queue(&mut tx, now_ms, msisdn, SmsKind::Subscription, &body).await?;
        }
        tx.commit().await?;
        let charged = product.monthly_fee;
        // The fee counts towards this month's spend: it may cross the high-bill threshold.
        // The order is committed: a failed check must not report it as failed.
        if let Err(e) = self.check_bill_alert(msisdn).await {
            tracing::warn!(error = %e, "high-bill alert check failed after a subscription");
        }
        Ok(Subscribed {
            subscription_id: id,
            product,
            charged,
            balance,
        })
    }

    /// Cancels an add-on at the end of this month. A suspended number may cancel too: stopping
    /// a charge is never refused.
    pub async fn cancel(&self, msisdn: &Msisdn, code: &ProductCode) -> Result<Period> {
        let now_ms = self.now_ms();
        let period = Period::containing(self.now());
        let mut tx = self.db().begin().await?;
        load_profile(&mut tx, msisdn).await?;
        let live = live_subscriptions(&mut tx, msisdn, period).await?;
        let Some(s) = live.into_iter().find(|s| s.product.code == *code) else {
            return Err(Error::NotSubscribed);
        };
        if s.end_period.is_some() {
            return Err(Error::AlreadyCancelled);
        }
        let done = sqlx::query(
            "UPDATE subscriptions SET end_period = $1, cancelled_at = $2 WHERE id = $3 AND end_period IS NULL",
        )
        .bind(period.to_string())
        .bind(now_ms)
        .bind(s.id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if done == 0 {
            return Err(Error::AlreadyCancelled);
        }
        let body = format!(
            "【中国移动】您已退订{},{}月底前仍可使用,下月起不再收费。",
            s.product.name_zh,
            period.month()
        );
        if self.change_notices() {
            outbox::queue(&mut tx, now_ms, msisdn, SmsKind::Subscription, &body).await?;
        }
        tx.commit().await?;
        Ok(period)
    }

    /// Asks for a base-plan change on the 1st of next month.
    pub async fn request_plan_change(
        &self,
        msisdn: &Msisdn,
        to: &ProductCode,
    ) -> Result<PlanChange> {
        let now_ms = self.now_ms();
        let period = Period::containing(self.now());
        let mut tx = self.db().begin().await?;
        let profile = require_active(&mut tx, msisdn).await?;
        let product = load_product(&mut tx, to).await?;
        if !product.is_plan_of(profile.brand) {
            return Err(Error::WrongProductKind);
        }
        if profile.plan == *to {
            return Err(Error::SamePlan);
        }
        if pending_change(&mut tx, msisdn).await?.is_some() {
            return Err(Error::PlanChangePending);
        }
        let id: i64 = sqlx::query(
            "INSERT INTO plan_changes (msisdn, from_code, to_code, requested_period, effective_period, status, created_at) \
             VALUES ($1, $2, $3, $4, $5, 'pending', $6) RETURNING id",
        )
        .bind(msisdn.as_str())
        .bind(profile.plan.as_str())
        .bind(to.as_str())
        .bind(period.to_string())
        .bind(period.next().to_string())
        .bind(now_ms)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| if is_unique_violation(&e) { Error::PlanChangeLimit } else { e.into() })?
        .try_get(0)?;
        let body = format!(
            "【中国移动】您已申请将套餐变更为{},将于 {} 1 日生效,月费 {}。生效前可在网上营业厅撤销。",
            product.name_zh,
            period.next().zh(),
            product.monthly_fee.yuan_text()
        );
        outbox::queue(&mut tx, now_ms, msisdn, SmsKind::Subscription, &body).await?;
        tx.commit().await?;
        Ok(PlanChange {
            id,
            from: profile.plan,
            to: to.clone(),
            effective: period.next(),
            requested_at: from_millis(now_ms),
        })
    }

    pub async fn pending_plan_change(&self, msisdn: &Msisdn) -> Result<Option<PlanChange>> {
        let mut conn = self.db().pool().acquire().await?;
        pending_change(&mut conn, msisdn).await
    }

    pub async fn withdraw_plan_change(&self, msisdn: &Msisdn) -> Result<()> {
        let now_ms = self.now_ms();
        let mut tx = self.db().begin().await?;
        let done = sqlx::query(
            "UPDATE plan_changes SET status = 'withdrawn', decided_at = $1 WHERE msisdn = $2 AND status = 'pending'",
        )
        .bind(now_ms)
        .bind(msisdn.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if done == 0 {
            return Err(Error::NoPendingPlanChange);
        }
        outbox::queue(
            &mut tx,
            now_ms,
            msisdn,
            SmsKind::Subscription,
            "【中国移动】您已撤销套餐变更申请,当前套餐保持不变。",
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

async fn pending_change(conn: &mut AnyConnection, msisdn: &Msisdn) -> Result<Option<PlanChange>> {
    let row = sqlx::query(
        "SELECT id, from_code, to_code, effective_period, created_at FROM plan_changes \
         WHERE msisdn = $1 AND status = 'pending' ORDER BY id DESC LIMIT 1",
    )
    .bind(msisdn.as_str())
    .fetch_optional(conn)
    .await?;
    let bad = || Error::Storage("unreadable plan change".into());
    row.map(|r| {
        Ok(PlanChange {
            id: r.try_get(0)?,
            from: ProductCode::parse(&r.try_get::<String, _>(1)?).map_err(|_| bad())?,
            to: ProductCode::parse(&r.try_get::<String, _>(2)?).map_err(|_| bad())?,
            effective: Period::parse(&r.try_get::<String, _>(3)?).map_err(|_| bad())?,
            requested_at: from_millis(r.try_get(4)?),
        })
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Status;
    use crate::testing::TestHall;

    fn code(c: &str) -> ProductCode {
        ProductCode::parse(c).unwrap()
    }

    async fn ledger_rows(t: &TestHall, m: &Msisdn) -> i64 {
        sqlx::query("SELECT COUNT(*) FROM ledger WHERE msisdn = $1")
            .bind(m.as_str())
            .fetch_one(t.db().pool())
            .await
            .unwrap()
            .try_get(0)
            .unwrap()
    }

    #[tokio::test]
    async fn subscribing_charges_the_full_fee_once() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 5000).await;
        let q = t.quote(&m, &code("EDU10")).await.unwrap();
        assert_eq!(q.charge_now, Fen::yuan(10));
        assert!(q.rule_zh.contains("10.00元"));
        let s = t.subscribe(&m, &code("edu10")).await.unwrap();
        assert_eq!(s.charged, Fen::yuan(10));
        assert_eq!(t.balance(&m).await.unwrap().total(), Fen::yuan(40));
        assert!(matches!(
            t.subscribe(&m, &code("EDU10")).await,
            Err(Error::AlreadySubscribed)
        ));
        assert_eq!(t.subscriptions(&m).await.unwrap().len(), 1);
        let sms = t.outbox_for(&m, 1).await.unwrap().remove(0);
        assert!(sms.body.contains("QXEDU10"), "{}", sms.body);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn one_add_on_ordered_twice_at_once_charges_once() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 10_000).await;
        let tries = (0..20).map(|_| {
            let (h, m) = (t.hall.clone(), m.clone());
            tokio::spawn(async move { h.subscribe(&m, &code("EDU10")).await })
        });
        let results: Vec<_> = futures::future::join_all(tries)
            .await
            .into_iter()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
        assert!(results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|e| matches!(e, Error::AlreadySubscribed)));
        assert_eq!(t.balance(&m).await.unwrap().total(), Fen::yuan(90));
        assert_eq!(
            ledger_rows(&t, &m).await,
            2,
            "the opening credit and one charge"
        );
    }

    #[tokio::test]
    async fn no_money_no_order_and_nothing_left_behind() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 500).await;
        assert!(matches!(
            t.subscribe(&m, &code("EDU10")).await,
            Err(Error::InsufficientBalance { .. })
        ));
        assert!(t.subscriptions(&m).await.unwrap().is_empty());
        assert_eq!(ledger_rows(&t, &m).await, 1);
        let charges: i64 = sqlx::query("SELECT COUNT(*) FROM charges")
            .fetch_one(t.db().pool())
            .await
            .unwrap()
            .try_get(0)
            .unwrap();
        assert_eq!(charges, 0);
        assert_eq!(t.balance(&m).await.unwrap().total(), Fen::new(500));
    }

    #[tokio::test]
    async fn plans_and_suspended_numbers_cannot_order_add_ons() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 5000).await;
        assert!(matches!(
            t.subscribe(&m, &code("GT128")).await,
            Err(Error::WrongProductKind)
        ));
        assert!(matches!(
            t.subscribe(&m, &code("NOPE")).await,
            Err(Error::UnknownProduct)
        ));
        t.suspend_by_request(&m).await.unwrap();
        assert!(matches!(
            t.subscribe(&m, &code("EDU10")).await,
            Err(Error::NotActive)
        ));
        assert_eq!(
            t.profile(&m).await.unwrap().status,
            Status::SuspendedByRequest
        );
    }

    #[tokio::test]
    async fn cancelling_ends_at_month_end_and_can_be_taken_back_free() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 5000).await;
        assert!(matches!(
            t.cancel(&m, &code("EDU10")).await,
            Err(Error::NotSubscribed)
        ));
        t.subscribe(&m, &code("EDU10")).await.unwrap();
        let ends = t.cancel(&m, &code("EDU10")).await.unwrap();
        assert_eq!(ends.to_string(), "2026-11");
        assert!(matches!(
            t.cancel(&m, &code("EDU10")).await,
            Err(Error::AlreadyCancelled)
        ));
        let live = t.subscriptions(&m).await.unwrap();
        assert_eq!(live[0].end_period, Some(ends), "still running this month");
        // Re-ordering in the same month keeps it without a second charge.
        let again = t.subscribe(&m, &code("EDU10")).await.unwrap();
        assert_eq!(again.charged, Fen::ZERO);
        assert_eq!(t.balance(&m).await.unwrap().total(), Fen::yuan(40));
        // Next month a cancelled add-on is gone.
        t.cancel(&m, &code("EDU10")).await.unwrap();
        t.clock.set(Period::parse("2026-12").unwrap().start());
        assert!(t.subscriptions(&m).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn plan_changes_once_a_month_next_month_withdrawable() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 0).await;
        assert!(matches!(
            t.request_plan_change(&m, &code("GT88")).await,
            Err(Error::SamePlan)
        ));
        assert!(matches!(
            t.request_plan_change(&m, &code("DG18")).await,
            Err(Error::WrongProductKind)
        ));
        assert!(matches!(
            t.request_plan_change(&m, &code("EDU10")).await,
            Err(Error::WrongProductKind)
        ));
        let c = t.request_plan_change(&m, &code("GT128")).await.unwrap();
        assert_eq!(c.effective.to_string(), "2026-12");
        assert!(matches!(
            t.request_plan_change(&m, &code("GT188")).await,
            Err(Error::PlanChangePending)
        ));
        assert_eq!(
            t.pending_plan_change(&m).await.unwrap().unwrap().to,
            code("GT128")
        );
        t.withdraw_plan_change(&m).await.unwrap();
        assert!(t.pending_plan_change(&m).await.unwrap().is_none());
        assert!(matches!(
            t.withdraw_plan_change(&m).await,
            Err(Error::NoPendingPlanChange)
        ));
        // A withdrawn change does not use up the month.
        t.request_plan_change(&m, &code("GT188")).await.unwrap();
        assert_eq!(
            t.profile(&m).await.unwrap().plan,
            code("GT88"),
            "nothing changes before the 1st"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_plan_changes_leave_one() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 0).await;
        let tries = ["GT128", "GT188", "GT288", "GT388"].map(|c| {
            let (h, m) = (t.hall.clone(), m.clone());
            tokio::spawn(async move { h.request_plan_change(&m, &code(c)).await })
        });
        let ok = futures::future::join_all(tries)
            .await
            .into_iter()
            .filter(|r| matches!(r, Ok(Ok(_))))
            .count();
        assert_eq!(ok, 1);
    }
}
