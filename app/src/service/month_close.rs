//! Month close (月结): turns an ended month into immutable bills. Each subscriber is closed in
//! one transaction of its own — overage charged, bill written, points earned, tier recomputed,
//! next month's plan change applied and next month's recurring fees charged — so a crash leaves
//! whole subscribers done and a re-run (or a second instance running at the same time) finishes
//! the rest without billing anyone twice: the transaction starts by locking the account row
//! and skips a subscriber whose bill exists, and the bills primary key backs that up.
use serde::Serialize;
use sqlx::{AnyConnection, Row};

use crate::domain::{Fen, Msisdn, Period, ProductCode, Tier};
use crate::error::{is_unique_violation, Error, Result};
use crate::hall::Hall;
use crate::service::billing::{
    bill_exists, insert_charge, overage_items, period_charges, rate_period, ChargeCategory,
};
use crate::service::ledger::{self, PostError, Posting, Reason};
use crate::service::points::add_lot;
use crate::service::subscribers::load_profile;
use crate::store::reads::Reader;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CloseReport {
    pub period: Period,
    /// Bills written by this run.
    pub bills_created: u64,
    /// Subscribers whose bill already existed (an earlier or concurrent run closed them).
    pub bills_existing: u64,
    /// Subscribers that failed (logged); a re-run retries exactly these.
    pub failed: u64,
    /// The sum of all bills of the period, whichever run wrote them.
    pub total_billed: Fen,
}

enum Outcome {
    Created,
    Existing,
}

/// Where a step found its work already done: another run got there first.
fn already(e: &sqlx::Error) -> bool {
    is_unique_violation(e)
}

#[allow(clippy::too_many_arguments)]
async fn charge(
    conn: &mut AnyConnection,
    now_ms: i64,
    msisdn: &Msisdn,
    period: Period,
    category: ChargeCategory,
    item: &str,
    amount: Fen,
    reference: &str,
) -> Result<()> {
    if amount.get() == 0 {
        return Ok(());
    }
    if !insert_charge(
        conn, now_ms, msisdn, period, category, item, amount, reference,
    )
    .await?
    {
        // Charged before (e.g. an add-on ordered this month was charged at once).
        return Ok(());
    }
    match ledger::post(
        conn,
        now_ms,
        Posting {
            msisdn,
            amount: -amount,
            to_gift: false,
            // Usage already consumed and the operator's renewal: the arrears rule applies.
            allow_negative: true,
            reason: Reason::Charge,
            memo: item,
            reference,
        },
    )
    .await
    {
        Ok(_) | Err(PostError::Duplicate) => Ok(()),
        Err(PostError::Other(e)) => Err(e),
    }
}

/// Points for a bill: one per whole yuan, times the tier factor, rounded down.
pub fn points_for(total: Fen, tier: Tier) -> i64 {
    if total.get() <= 0 {
        return 0;
    }
    total.whole_yuan() * tier.points_factor_tenths() / 10
}

impl Hall {
    /// Closes an ended month for every subscriber who existed in it. Refuses a month that has
    /// not ended. Idempotent: running it again (or twice at once) bills each subscriber once.
    pub async fn close_month(&self, period: Period) -> Result<CloseReport> {
        let now = self.now();
        if now < period.end() {
            return Err(Error::MonthNotOver {
                period,
                closes_from: period.end(),
            });
        }
        // Who existed in the month — or has usage or charges in it (usage back-filled for a
        // number registered later, as the demo data is). A number that joined afterwards with
        // nothing in the month gets no empty bill and no fee for its (waived) opening month.
        let rows = sqlx::query(
            "SELECT s.msisdn FROM subscribers s WHERE s.created_at < $1 \
             OR EXISTS (SELECT 1 FROM usage_records u WHERE u.msisdn = s.msisdn AND u.period = $2) \
             OR EXISTS (SELECT 1 FROM charges c WHERE c.msisdn = s.msisdn AND c.period = $2) \
             ORDER BY s.msisdn",
        )
        .bind(period.end().timestamp_millis())
        .bind(period.to_string())
        .fetch_all(self.db().pool())
        .await?;
        let mut report = CloseReport {
            period,
            bills_created: 0,
            bills_existing: 0,
            failed: 0,
            total_billed: Fen::ZERO,
        };
        for r in &rows {
            let msisdn = Msisdn::parse(&r.try_get::<String, _>(0)?)
                .map_err(|_| Error::Storage("unreadable msisdn in subscribers".into()))?;
            match self.close_subscriber(&msisdn, period).await {
                Ok(Outcome::Created) => report.bills_created += 1,
                Ok(Outcome::Existing) => report.bills_existing += 1,
                Err(e) => {
                    tracing::error!(msisdn = %msisdn.masked(), %period, error = %e, "month close failed for a subscriber");
                    report.failed += 1;
                }
            }
        }
        let total: i64 = sqlx::query(
            "SELECT CAST(COALESCE(SUM(total), 0) AS BIGINT) FROM bills WHERE period = $1",
        )
        .bind(period.to_string())
        .fetch_one(self.db().pool())
        .await?
        .try_get(0)?;
        report.total_billed = Fen::new(total);
        if report.failed == 0 {
            let bills: i64 = sqlx::query("SELECT COUNT(*) FROM bills WHERE period = $1")
                .bind(period.to_string())
                .fetch_one(self.db().pool())
                .await?
                .try_get(0)?;
            sqlx::query(
                "INSERT INTO month_closes (period, closed_at, bills) VALUES ($1, $2, $3) \
                 ON CONFLICT (period) DO NOTHING",
            )
            .bind(period.to_string())
            .bind(self.now_ms())
            .bind(bills)
            .execute(self.db().pool())
            .await?;
        }
        Ok(report)
    }

    /// Whether a month has been closed completely.
    pub async fn month_closed(&self, period: Period) -> Result<bool> {
        Ok(sqlx::query("SELECT 1 FROM month_closes WHERE period = $1")
            .bind(period.to_string())
            .fetch_optional(self.db().pool())
            .await?
            .is_some())
    }

    async fn close_subscriber(&self, msisdn: &Msisdn, period: Period) -> Result<Outcome> {
        let now_ms = self.now_ms();
        let next = period.next();
        let mut tx = self.db().begin().await?;
        // Lock first: a concurrent run closing this subscriber waits here, then sees the bill.
        ledger::lock_account(&mut tx, msisdn).await?;
        if bill_exists(&mut tx, msisdn, period).await? {
            return Ok(Outcome::Existing);
        }
        let profile = load_profile(&mut tx, msisdn).await?;

        // 1. Overage, charged to the month it was used in.
        let rating = rate_period(&mut Reader::Conn(&mut tx), msisdn, period).await?;
        for (key, item, amount) in overage_items(&rating) {
            let reference = format!("overage:{msisdn}:{period}:{key}");
            charge(
                &mut tx,
                now_ms,
                msisdn,
                period,
                ChargeCategory::Overage,
                &item,
                amount,
                &reference,
            )
            .await?;
        }

        // 2. The bill: every charge of the period, frozen.
        let items = period_charges(&mut tx, msisdn, period).await?;
        let total: Fen = items.iter().map(|i| i.amount).sum();
        let points = points_for(total, profile.tier);
        let inserted = sqlx::query(
            "INSERT INTO bills (msisdn, period, total, points_earned, closed_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(msisdn.as_str())
        .bind(period.to_string())
        .bind(total.get())
        .bind(points)
        .bind(now_ms)
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(e) if already(&e) => return Ok(Outcome::Existing),
            Err(e) => return Err(e.into()),
        }
        for i in &items {
            sqlx::query(
                "INSERT INTO bill_items (msisdn, period, category, item, amount) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(msisdn.as_str())
            .bind(period.to_string())
            .bind(i.category.as_str())
            .bind(&i.item)
            .bind(i.amount.get())
            .execute(&mut *tx)
            .await?;
        }

        // 3. Points, at the tier the month was spent at.
        if points > 0 {
            add_lot(
                &mut tx,
                now_ms,
                msisdn,
                points,
                period.year(),
                "bill",
                &format!("{}账单消费积分", period.zh()),
                &format!("bill:{msisdn}:{period}"),
            )
            .await?;
        }

        // 4. Tier from the last twelve bills, this one included.
        let spend: i64 = sqlx::query(
            "SELECT CAST(COALESCE(SUM(total), 0) AS BIGINT) FROM bills \
             WHERE msisdn = $1 AND period >= $2 AND period <= $3",
        )
        .bind(msisdn.as_str())
        .bind(period.back(11).to_string())
        .bind(period.to_string())
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
        let tier = Tier::from_annual_spend(Fen::new(spend));
        sqlx::query("UPDATE subscribers SET tier = $1 WHERE msisdn = $2")
            .bind(tier.as_str())
            .bind(msisdn.as_str())
            .execute(&mut *tx)
            .await?;

        // 5. Plan changes due next month take effect.
        let change = sqlx::query(
            "SELECT id, to_code FROM plan_changes WHERE msisdn = $1 AND status = 'pending' \
             AND effective_period <= $2 ORDER BY effective_period DESC, id DESC LIMIT 1",
        )
        .bind(msisdn.as_str())
        .bind(next.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        let mut plan = profile.plan.clone();
        if let Some(c) = change {
            let id: i64 = c.try_get(0)?;
            plan = ProductCode::parse(&c.try_get::<String, _>(1)?)
                .map_err(|_| Error::Storage("unreadable plan code in plan_changes".into()))?;
            sqlx::query("UPDATE subscribers SET plan_code = $1 WHERE msisdn = $2")
                .bind(plan.as_str())
                .bind(msisdn.as_str())
                .execute(&mut *tx)
                .await?;
            // Any older pending change was overtaken by this one: applied together.
            sqlx::query(
                "UPDATE plan_changes SET status = 'applied', decided_at = $1 \
                 WHERE msisdn = $2 AND status = 'pending' AND effective_period <= $3",
            )
            .bind(now_ms)
            .bind(msisdn.as_str())
            .bind(next.to_string())
            .execute(&mut *tx)
            .await?;
            tracing::debug!(change = id, "plan change applied");
        }

        // 6. Next month's recurring fees, charged up front.
        let fee = sqlx::query("SELECT name_zh, monthly_fee FROM products WHERE code = $1")
            .bind(plan.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| Error::Storage("plan not in the catalogue".into()))?;
        let item = format!("{}({})", fee.try_get::<String, _>(0)?, next.zh());
        charge(
            &mut tx,
            now_ms,
            msisdn,
            next,
            ChargeCategory::Plan,
            &item,
            Fen::new(fee.try_get(1)?),
            &format!("plan:{msisdn}:{next}"),
        )
        .await?;
        let addons = sqlx::query(
            "SELECT s.id, p.name_zh, p.monthly_fee FROM subscriptions s \
             JOIN products p ON p.code = s.product_code \
             WHERE s.msisdn = $1 AND s.end_period IS NULL AND s.start_period <= $2 ORDER BY s.id",
        )
        .bind(msisdn.as_str())
        .bind(next.to_string())
        .fetch_all(&mut *tx)
        .await?;
        for a in &addons {
            let id: i64 = a.try_get(0)?;
            let item = format!("{}({})", a.try_get::<String, _>(1)?, next.zh());
            charge(
                &mut tx,
                now_ms,
                msisdn,
                next,
                ChargeCategory::Addon,
                &item,
                Fen::new(a.try_get(2)?),
                &format!("addon:{id}:{next}"),
            )
            .await?;
        }

        match tx.commit().await {
            Ok(()) => Ok(Outcome::Created),
            Err(e) if already(&e) => Ok(Outcome::Existing),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::billing::BillItem;
    use crate::service::usage::{Direction, UsageKind, UsageRecord};
    use crate::testing::TestHall;
    use chrono::{DateTime, Duration, Utc};

    fn nov() -> Period {
        Period::parse("2026-11").unwrap()
    }

    fn call(reference: &str, at: DateTime<Utc>, minutes: i64) -> UsageRecord {
        UsageRecord {
            reference: reference.into(),
            started_at: at,
            kind: UsageKind::Call {
                other_party: "13912345678".into(),
                direction: Direction::Out,
                duration_secs: minutes * 60,
            },
        }
    }

    async fn scalar(t: &TestHall, sql: &str) -> i64 {
        sqlx::query(sql)
            .fetch_one(t.db().pool())
            .await
            .unwrap()
            .try_get(0)
            .unwrap()
    }

    /// Orders an add-on the way a subscriber does: charged at once, this month.
    async fn add_on(t: &TestHall, m: &Msisdn, code: &str) -> i64 {
        let code = crate::domain::ProductCode::parse(code).unwrap();
        t.subscribe(m, &code).await.unwrap().subscription_id
    }

    /// A GT88 subscriber with 10 paid minutes (1.90 元) and a JTCL add-on (5 元) in November.
    async fn november(t: &TestHall, msisdn: &str) -> Msisdn {
        let m = t.subscriber(msisdn, 50_000).await;
        add_on(t, &m, "JTCL").await;
        t.record_usage(
            &m,
            &[call(
                &format!("{msisdn}-c1"),
                nov().start() + Duration::days(2),
                210,
            )],
        )
        .await
        .unwrap();
        m
    }

    fn december(t: &TestHall) {
        t.clock.set(nov().end() + Duration::hours(1));
    }

    #[tokio::test]
    async fn refuses_a_month_that_has_not_ended() {
        let t = TestHall::empty().await;
        november(&t, "13800138000").await;
        let e = t.close_month(nov()).await.unwrap_err();
        assert!(matches!(e, Error::MonthNotOver { .. }), "{e:?}");
        assert!(e.zh().contains("2026年11月"), "{}", e.zh());
        // One millisecond before the end is still too early.
        t.clock.set(nov().end() - Duration::milliseconds(1));
        assert!(t.close_month(nov()).await.is_err());
        assert_eq!(scalar(&t, "SELECT COUNT(*) FROM bills").await, 0);
        assert!(!t.month_closed(nov()).await.unwrap());
    }

    #[tokio::test]
    async fn closes_a_month_into_an_itemised_bill_and_charges_next_month() {
        let t = TestHall::empty().await;
        let m = november(&t, "13800138000").await;
        december(&t);
        let before = t.balance(&m).await.unwrap().cash;
        let report = t.close_month(nov()).await.unwrap();
        assert_eq!(
            (report.bills_created, report.bills_existing, report.failed),
            (1, 0, 0)
        );
        assert_eq!(report.total_billed, Fen::new(690));
        assert!(t.month_closed(nov()).await.unwrap());
        let bill = t.bill(&m, nov()).await.unwrap().expect("bill");
        assert_eq!(
            bill.items
                .iter()
                .map(|i| (i.category, i.amount))
                .collect::<Vec<_>>(),
            vec![
                (ChargeCategory::Addon, Fen::new(500)),
                (ChargeCategory::Overage, Fen::new(190)),
            ]
        );
        assert_eq!(bill.total, bill.items.iter().map(|i| i.amount).sum::<Fen>());
        assert_eq!(bill.points_earned, 6);
        assert_eq!(t.bills(&m, 6).await.unwrap().len(), 1);
        // Overage (1.90) plus December's plan (88) and add-on (5), once each.
        let after = t.balance(&m).await.unwrap().cash;
        assert_eq!(before - after, Fen::new(190 + 8_800 + 500));
        let dec = t.month_to_date(&m).await.unwrap();
        assert_eq!(
            dec.items
                .iter()
                .map(|i| (i.category, i.amount))
                .collect::<Vec<_>>(),
            vec![
                (ChargeCategory::Plan, Fen::new(8_800)),
                (ChargeCategory::Addon, Fen::new(500)),
            ]
        );
        assert!(
            dec.items[0].item.contains("2026年12月"),
            "{}",
            dec.items[0].item
        );
        // The bill is immutable.
        assert!(sqlx::query("UPDATE bills SET total = 0")
            .execute(t.db().pool())
            .await
            .is_err());
        // Closing again bills nobody twice and charges nothing more.
        let again = t.close_month(nov()).await.unwrap();
        assert_eq!((again.bills_created, again.bills_existing), (0, 1));
        assert_eq!(again.total_billed, Fen::new(690));
        assert_eq!(t.balance(&m).await.unwrap().cash, after);
        assert_eq!(scalar(&t, "SELECT COUNT(*) FROM bills").await, 1);
        assert_eq!(scalar(&t, "SELECT COUNT(*) FROM bill_items").await, 2);
        assert_eq!(scalar(&t, "SELECT COUNT(*) FROM points_lots").await, 1);
    }

    /// Month close rates every number's month once: keeping those lists would push out the
    /// current month's, which the pages read again and again.
    #[tokio::test]
    async fn closing_a_month_keeps_none_of_its_usage_lists() {
        let t = TestHall::empty().await;
        let m = november(&t, "13800138000").await;
        december(&t);
        t.month_events().forget_all();
        let report = t.close_month(nov()).await.unwrap();
        assert_eq!(report.total_billed, Fen::new(690), "November rated in full");
        assert!(!t.month_events().holds(&m, nov()));
        // The current month rated for a page (CXLL) is kept, as before.
        t.usage_summary(&m, nov().next()).await.unwrap();
        assert!(t.month_events().holds(&m, nov().next()));
    }

    #[tokio::test]
    async fn two_concurrent_closes_bill_and_charge_once() {
        let t = TestHall::empty().await;
        let numbers = ["13800138000", "13800138001", "13800138002", "13800138003"];
        let mut ms = Vec::new();
        for n in numbers {
            ms.push(november(&t, n).await);
        }
        december(&t);
        let runs: Vec<_> = (0..2)
            .map(|_| {
                let h = t.hall.clone();
                tokio::spawn(async move { h.close_month(nov()).await.unwrap() })
            })
            .collect();
        let mut created = 0;
        for r in runs {
            let rep = r.await.unwrap();
            assert_eq!(rep.failed, 0);
            assert_eq!(rep.bills_created + rep.bills_existing, 4);
            created += rep.bills_created;
        }
        assert_eq!(created, 4);
        assert_eq!(scalar(&t, "SELECT COUNT(*) FROM bills").await, 4);
        assert_eq!(scalar(&t, "SELECT COUNT(*) FROM bill_items").await, 8);
        assert_eq!(scalar(&t, "SELECT COUNT(*) FROM points_lots").await, 4);
        assert_eq!(scalar(&t, "SELECT COUNT(*) FROM month_closes").await, 1);
        for m in &ms {
            // 500 opening deposit − 5 (JTCL Nov) − 1.90 − 88 − 5.
            assert_eq!(
                t.balance(m).await.unwrap().cash,
                Fen::new(50_000 - 500 - 190 - 8_800 - 500)
            );
        }
        assert_eq!(
            scalar(
                &t,
                "SELECT COUNT(*) FROM ledger WHERE reference LIKE 'plan:%'"
            )
            .await,
            4
        );
    }

    #[tokio::test]
    async fn applies_the_pending_plan_change_and_charges_the_new_plan() {
        let t = TestHall::empty().await;
        let m = november(&t, "13800138000").await;
        sqlx::query(
            "INSERT INTO plan_changes (msisdn, from_code, to_code, requested_period, effective_period, status, created_at) \
             VALUES ($1, 'GT88', 'GT128', '2026-11', '2026-12', 'pending', 0)",
        )
        .bind(m.as_str())
        .execute(t.db().pool())
        .await
        .unwrap();
        december(&t);
        t.close_month(nov()).await.unwrap();
        let p = t.profile(&m).await.unwrap();
        assert_eq!(p.plan.as_str(), "GT128");
        let row = sqlx::query("SELECT status, decided_at FROM plan_changes")
            .fetch_one(t.db().pool())
            .await
            .unwrap();
        assert_eq!(row.try_get::<String, _>(0).unwrap(), "applied");
        assert_eq!(row.try_get::<Option<i64>, _>(1).unwrap(), Some(t.now_ms()));
        let dec = t.month_to_date(&m).await.unwrap();
        assert_eq!(dec.items[0].amount, Fen::new(12_800));
        assert!(dec.items[0].item.contains("128"), "{}", dec.items[0].item);
        // November was still rated on GT88: 10 minutes over its 200.
        let bill = t.bill(&m, nov()).await.unwrap().unwrap();
        assert!(bill.items.contains(&BillItem {
            category: ChargeCategory::Overage,
            item: "国内主叫超出套餐 10 分钟".into(),
            amount: Fen::new(190),
        }));
    }

    #[tokio::test]
    async fn cancelled_add_ons_are_not_renewed() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 50_000).await;
        add_on(&t, &m, "JTCL").await;
        let edu = add_on(&t, &m, "EDU10").await;
        sqlx::query(
            "UPDATE subscriptions SET end_period = '2026-11', cancelled_at = 0 WHERE id = $1",
        )
        .bind(edu)
        .execute(t.db().pool())
        .await
        .unwrap();
        december(&t);
        t.close_month(nov()).await.unwrap();
        let dec = t.month_to_date(&m).await.unwrap();
        assert_eq!(dec.total, Fen::new(8_800 + 500));
        assert_eq!(
            t.bill(&m, nov()).await.unwrap().unwrap().total,
            Fen::new(1_500)
        );
    }

    #[tokio::test]
    async fn points_follow_the_tier_and_the_tier_follows_twelve_months() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 0).await;
        sqlx::query("UPDATE subscribers SET tier = 'gold' WHERE msisdn = $1")
            .bind(m.as_str())
            .execute(t.db().pool())
            .await
            .unwrap();
        // A 1,000.99 元 one-off charge in November.
        sqlx::query(
            "INSERT INTO charges (msisdn, period, category, item, amount, reference, created_at) \
             VALUES ($1, '2026-11', 'oneoff', '补卡费', 100099, 'x1', 0)",
        )
        .bind(m.as_str())
        .execute(t.db().pool())
        .await
        .unwrap();
        december(&t);
        t.close_month(nov()).await.unwrap();
        let bill = t.bill(&m, nov()).await.unwrap().unwrap();
        // Gold earns ×1.2: 1,000 whole yuan → 1,200 points, expiring at the end of 2027.
        assert_eq!(bill.points_earned, 1_200);
        let pts = t.points(&m).await.unwrap();
        assert_eq!(pts.balance.get(), 1_200);
        assert_eq!(pts.lots[0].earned_year, 2026);
        assert_eq!(
            pts.lots[0].expires_at,
            Period::parse("2028-01").unwrap().start()
        );
        // 1,000.99 元 in twelve months is silver (≥ 666), not gold any more.
        assert_eq!(t.profile(&m).await.unwrap().tier, Tier::Silver);
        assert_eq!(t.annual_spend(&m).await.unwrap(), Fen::new(100_099));
        // Bills older than twelve months do not count.
        sqlx::query(
            "INSERT INTO bills (msisdn, period, total, points_earned, closed_at) VALUES ($1, '2025-11', 500000, 0, 0)",
        )
        .bind(m.as_str())
        .execute(t.db().pool())
        .await
        .unwrap();
        t.clock
            .set(Period::parse("2026-12").unwrap().end() + Duration::hours(1));
        t.close_month(Period::parse("2026-12").unwrap())
            .await
            .unwrap();
        // December: the GT88 fee (88 元) → 1,088.99 元 in twelve months: still silver.
        assert_eq!(t.profile(&m).await.unwrap().tier, Tier::Silver);
        let dec = t
            .bill(&m, Period::parse("2026-12").unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(dec.total, Fen::new(8_800));
        assert_eq!(dec.points_earned, 88, "silver earns ×1");
    }

    #[test]
    fn points_round_down_to_whole_yuan_times_factor() {
        assert_eq!(points_for(Fen::new(12_999), Tier::Standard), 129);
        assert_eq!(points_for(Fen::new(12_999), Tier::Gold), 154);
        assert_eq!(points_for(Fen::new(12_999), Tier::Diamond), 193);
        assert_eq!(points_for(Fen::new(99), Tier::Diamond), 0);
        assert_eq!(points_for(Fen::new(-500), Tier::Diamond), 0);
    }

    #[tokio::test]
    async fn only_subscribers_with_something_in_the_month_are_billed() {
        let t = TestHall::empty().await;
        december(&t);
        let m = t.subscriber("13800138000", 0).await;
        let r = t.close_month(nov()).await.unwrap();
        assert_eq!((r.bills_created, r.bills_existing), (0, 0));
        assert!(t.bill(&m, nov()).await.unwrap().is_none());
        assert_eq!(t.month_to_date(&m).await.unwrap().total, Fen::ZERO);
        // Usage back-filled into the month (demo data) does make it billable.
        let late = t.subscriber("13900139000", 0).await;
        t.record_usage(
            &late,
            &[call("late-1", nov().start() + Duration::days(3), 205)],
        )
        .await
        .unwrap();
        let r = t.close_month(nov()).await.unwrap();
        assert_eq!((r.bills_created, r.bills_existing), (1, 0));
        assert_eq!(
            t.bill(&late, nov()).await.unwrap().unwrap().total,
            Fen::new(95)
        );
        assert!(t.bill(&m, nov()).await.unwrap().is_none());
    }
}
