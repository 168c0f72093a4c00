//! Charges and bills. The charging model: an add-on is charged its full monthly fee when it is
//! ordered; recurring fees (plan, live add-ons) are charged at the start of the month they cover,
//! by the close of the month before; overage is charged when its month closes. Every charge is a
//! `charges` row of its period plus a ledger debit with the same reference. A month's bill is
//! all charges of that period, frozen at close (see `month_close.rs`). Month-to-date is the
//! charges so far plus the overage rated so far, and drives the one high-bill alert a month.
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{AnyConnection, Row};

use crate::clock::from_millis;
use crate::domain::{Fen, Msisdn, Period};
use crate::error::{Error, Result};
use crate::hall::Hall;
use crate::service::month_events;
use crate::service::outbox::{self, SmsKind};
use crate::service::rating::{self, Allowances, Rating, KB_PER_MB};
use crate::service::subscribers::{load_profile, profile_from, profile_read, Profile};
use crate::store::reads::{Read, ReadRow, Reader, Rows};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChargeCategory {
    Plan,
    Addon,
    Overage,
    Oneoff,
    Discount,
}

impl ChargeCategory {
    pub const ALL: &'static [ChargeCategory] = &[
        ChargeCategory::Plan,
        ChargeCategory::Addon,
        ChargeCategory::Overage,
        ChargeCategory::Oneoff,
        ChargeCategory::Discount,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChargeCategory::Plan => "plan",
            ChargeCategory::Addon => "addon",
            ChargeCategory::Overage => "overage",
            ChargeCategory::Oneoff => "oneoff",
            ChargeCategory::Discount => "discount",
        }
    }

    pub fn from_db(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| c.as_str() == s)
    }

    pub fn zh(self) -> &'static str {
        match self {
            ChargeCategory::Plan => "套餐月费",
            ChargeCategory::Addon => "增值业务费",
            ChargeCategory::Overage => "套餐外费用",
            ChargeCategory::Oneoff => "一次性费用",
            ChargeCategory::Discount => "优惠减免",
        }
    }

    pub fn en(self) -> &'static str {
        match self {
            ChargeCategory::Plan => "Plan fee",
            ChargeCategory::Addon => "Add-ons",
            ChargeCategory::Overage => "Beyond allowance",
            ChargeCategory::Oneoff => "One-off charges",
            ChargeCategory::Discount => "Discounts",
        }
    }
}

/// One line of a bill or of the month so far.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BillItem {
    pub category: ChargeCategory,
    pub item: String,
    pub amount: Fen,
}

/// A category's subtotal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct CategoryTotal {
    pub category: ChargeCategory,
    pub amount: Fen,
}

fn subtotals(items: &[BillItem]) -> Vec<CategoryTotal> {
    ChargeCategory::ALL
        .iter()
        .filter_map(|&category| {
            let of: Vec<Fen> = items
                .iter()
                .filter(|i| i.category == category)
                .map(|i| i.amount)
                .collect();
            (!of.is_empty()).then(|| CategoryTotal {
                category,
                amount: of.into_iter().sum(),
            })
        })
        .collect()
}

/// A closed month's bill: immutable once written.
#[derive(Clone, Debug, Serialize)]
pub struct Bill {
    pub msisdn: Msisdn,
    pub period: Period,
    pub total: Fen,
    pub points_earned: i64,
    pub closed_at: DateTime<Utc>,
    /// In category order (plan, add-ons, overage, one-off, discounts).
    pub items: Vec<BillItem>,
}

impl Bill {
    pub fn by_category(&self) -> Vec<CategoryTotal> {
        subtotals(&self.items)
    }
}

/// This month so far.
#[derive(Clone, Debug, Serialize)]
pub struct MonthToDate {
    pub period: Period,
    /// Charges already recorded, then the overage rated so far.
    pub items: Vec<BillItem>,
    pub by_category: Vec<CategoryTotal>,
    pub total: Fen,
    /// Allowances used and left, for the home page and `CXLL`.
    pub rating: Rating,
}

/// Overage lines of a rated month: (reference key, item, amount), zero amounts left out.
pub(crate) fn overage_items(r: &Rating) -> Vec<(&'static str, String, Fen)> {
    let mut out = Vec::new();
    if r.overage.voice.get() > 0 {
        out.push((
            "voice",
            format!("国内主叫超出套餐 {} 分钟", r.voice.over),
            r.overage.voice,
        ));
    }
    if r.overage.sms.get() > 0 {
        out.push((
            "sms",
            format!("短信超出套餐 {} 条", r.sms.over),
            r.overage.sms,
        ));
    }
    if r.overage.data.get() > 0 {
        let mb = (r.data.over + KB_PER_MB - 1) / KB_PER_MB;
        out.push(("data", format!("流量超出套餐 {mb}MB"), r.overage.data));
    }
    if r.overage.wlan.get() > 0 {
        let capped = if r.wlan_fee_capped {
            "(已达每月封顶 500 元)"
        } else {
            ""
        };
        out.push((
            "wlan",
            format!("WLAN 超出套餐 {} 分钟{capped}", r.wlan.over),
            r.overage.wlan,
        ));
    }
    out
}

/// Inserts a charge row; `Ok(false)` when its reference exists (the charge already happened).
/// The caller posts the matching ledger debit only on `Ok(true)`.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn insert_charge(
    conn: &mut AnyConnection,
    now_ms: i64,
    msisdn: &Msisdn,
    period: Period,
    category: ChargeCategory,
    item: &str,
    amount: Fen,
    reference: &str,
) -> Result<bool> {
    let n = sqlx::query(
        "INSERT INTO charges (msisdn, period, category, item, amount, reference, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (reference) DO NOTHING",
    )
    .bind(msisdn.as_str())
    .bind(period.to_string())
    .bind(category.as_str())
    .bind(item)
    .bind(amount.get())
    .bind(reference)
    .bind(now_ms)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// The charges recorded for a period, in category order.
pub(crate) async fn period_charges(
    conn: &mut AnyConnection,
    msisdn: &Msisdn,
    period: Period,
) -> Result<Vec<BillItem>> {
    charges_from(&charges_read(msisdn, period).fetch(conn).await?)
}

/// The read behind [`period_charges`], for a batch ([`crate::store::reads`]).
fn charges_read(msisdn: &Msisdn, period: Period) -> Read {
    Read::new(
        "SELECT category, item, amount FROM charges WHERE msisdn = $1 AND period = $2 ORDER BY id",
    )
    .text(msisdn.as_str())
    .text(period.to_string())
}

fn charges_from(rows: &[ReadRow]) -> Result<Vec<BillItem>> {
    let mut items = rows.iter().map(item_from_row).collect::<Result<Vec<_>>>()?;
    items.sort_by_key(|i| i.category); // stable: keeps time order within a category
    Ok(items)
}

fn item_from_row(r: &ReadRow) -> Result<BillItem> {
    Ok(BillItem {
        category: ChargeCategory::from_db(&r.try_get::<String, _>(0)?)
            .ok_or_else(|| Error::Storage("unreadable charge category".into()))?,
        item: r.try_get(1)?,
        amount: Fen::new(r.try_get(2)?),
    })
}

/// The base plan in force in a period, as SQL (`$1` the number, `$2` the period). The
/// subscriber row holds the current plan; a change applied since the period means the plan
/// then was that change's `from_code`; a change due by the period but not yet applied (its
/// month close has not run) already counts. A macro, so that the month's allowances read is
/// `concat!`ed at compile time rather than formatted on every page view.
macro_rules! plan_in {
    () => {
        "COALESCE( \
    (SELECT from_code FROM plan_changes WHERE msisdn = $1 AND status = 'applied' \
      AND effective_period > $2 ORDER BY effective_period, id LIMIT 1), \
    (SELECT to_code FROM plan_changes WHERE msisdn = $1 AND status = 'pending' \
      AND effective_period <= $2 ORDER BY effective_period DESC, id DESC LIMIT 1), \
    (SELECT plan_code FROM subscribers WHERE msisdn = $1))"
    };
}

/// The base plan in force in a period (see `plan_in!`).
#[cfg(test)]
pub(crate) async fn plan_in(
    conn: &mut AnyConnection,
    msisdn: &Msisdn,
    period: Period,
) -> Result<crate::domain::ProductCode> {
    let code: Option<String> = sqlx::query(concat!("SELECT ", plan_in!()))
        .bind(msisdn.as_str())
        .bind(period.to_string())
        .fetch_one(&mut *conn)
        .await?
        .try_get(0)?;
    let code = code.ok_or(Error::UnknownSubscriber)?;
    crate::domain::ProductCode::parse(&code)
        .map_err(|_| Error::Storage("unreadable plan code".into()))
}

/// A month's allowances: the plan in force, every add-on live in the month, and data packs
/// redeemed with points in the month.
fn allowances_read(msisdn: &Msisdn, period: Period) -> Read {
    // One statement: the plan's row (tagged, to notice a plan missing from the catalogue),
    // every add-on live in the month, the month's redeemed data packs.
    Read::new(concat!(
        "SELECT CAST(1 AS BIGINT), voice_minutes, data_mb, sms_count, wlan_minutes FROM products \
         WHERE code = ",
        plan_in!(),
        " UNION ALL \
         SELECT CAST(0 AS BIGINT), p.voice_minutes, p.data_mb, p.sms_count, p.wlan_minutes \
         FROM subscriptions s JOIN products p ON p.code = s.product_code \
         WHERE s.msisdn = $1 AND s.start_period <= $2 AND (s.end_period IS NULL OR s.end_period >= $2) \
         UNION ALL \
         SELECT CAST(0 AS BIGINT), CAST(0 AS BIGINT), w.data_mb, CAST(0 AS BIGINT), CAST(0 AS BIGINT) \
         FROM redemptions r JOIN rewards w ON w.code = r.reward_code \
         WHERE r.msisdn = $1 AND r.period = $2 AND w.kind = 'data_pack'"
    ))
    .text(msisdn.as_str())
    .text(period.to_string())
}

fn allowances_from(rows: &[ReadRow]) -> Result<Allowances> {
    let mut total = Allowances::default();
    let mut has_plan = false;
    for r in rows {
        let field = |i: usize| -> Result<i64> { r.try_get::<i64, _>(i) };
        has_plan |= field(0)? == 1;
        total = total + Allowances::from_product(field(1)?, field(2)?, field(3)?, field(4)?);
    }
    if !has_plan {
        return Err(Error::Storage(
            "no subscriber, or its plan is not in the catalogue".into(),
        ));
    }
    Ok(total)
}

/// Rates one number's closing month against that month's allowances (month close), its
/// records read afresh and not kept: month close rates every number's month once, and keeping
/// those lists would push out the current month's, which the pages and `CXLL` read again and
/// again.
pub(crate) async fn rate_period(
    reader: &mut Reader<'_>,
    msisdn: &Msisdn,
    period: Period,
) -> Result<Rating> {
    let mut rows = reader
        .fetch_each([
            allowances_read(msisdn, period),
            crate::service::usage::events_read(msisdn, period),
        ])
        .await?;
    let allowances = allowances_from(&rows.next())?;
    let events = crate::service::usage::events_from(&rows.next())?;
    Ok(rating::rate(allowances, &events))
}

/// [`rate_period`] for a number not yet known to be a subscriber: the profile is read in the
/// same batch, and a stranger is [`Error::UnknownSubscriber`].
pub(crate) async fn rate_subscriber(
    hall: &Hall,
    reader: &mut Reader<'_>,
    msisdn: &Msisdn,
    period: Period,
) -> Result<Rating> {
    let mut reads = vec![profile_read(msisdn)];
    reads.extend(rating_reads(msisdn, period));
    let mut rows = reader.fetch_each(reads).await?;
    profile_from(&rows.next())?;
    rating_from(hall, reader, msisdn, period, &mut rows).await
}

/// The reads behind [`rate_period`]: the month's allowances and its usage records' key (the
/// records themselves are read only when the hall does not keep them; see
/// [`crate::service::month_events`]).
fn rating_reads(msisdn: &Msisdn, period: Period) -> [Read; 2] {
    [
        allowances_read(msisdn, period),
        month_events::key_read(msisdn, period),
    ]
}

/// The month rated from the rows of [`rating_reads`], with its usage records as the hall
/// keeps them or read by `reader`.
async fn rating_from(
    hall: &Hall,
    reader: &mut Reader<'_>,
    msisdn: &Msisdn,
    period: Period,
    rows: &mut Rows,
) -> Result<Rating> {
    let allowances = allowances_from(&rows.next())?;
    let key = month_events::key_from(&rows.next())?;
    let events = hall
        .month_events()
        .list(reader, msisdn, period, key)
        .await?;
    Ok(rating::rate(allowances, &events))
}

pub(crate) async fn bill_exists(
    conn: &mut AnyConnection,
    msisdn: &Msisdn,
    period: Period,
) -> Result<bool> {
    Ok(!bill_exists_read(msisdn, period)
        .fetch(conn)
        .await?
        .is_empty())
}

fn bill_exists_read(msisdn: &Msisdn, period: Period) -> Read {
    Read::new("SELECT 1 FROM bills WHERE msisdn = $1 AND period = $2")
        .text(msisdn.as_str())
        .text(period.to_string())
        .at_most_one()
}

/// A number's profile, and its period's charges so far plus, while it is open, the overage
/// rated so far.
async fn statement(
    hall: &Hall,
    reader: &mut Reader<'_>,
    msisdn: &Msisdn,
    period: Period,
) -> Result<(Profile, MonthToDate)> {
    let mut reads = vec![profile_read(msisdn)];
    reads.extend(statement_reads(msisdn, period));
    let mut rows = reader.fetch_each(reads).await?;
    let profile = profile_from(&rows.next())?;
    let mtd = statement_from(hall, reader, msisdn, period, &mut rows).await?;
    Ok((profile, mtd))
}

/// The reads behind [`statement`], for a batch ([`crate::store::reads`]).
pub(crate) fn statement_reads(msisdn: &Msisdn, period: Period) -> [Read; 4] {
    let [allowances, events_key] = rating_reads(msisdn, period);
    [
        charges_read(msisdn, period),
        allowances,
        events_key,
        bill_exists_read(msisdn, period),
    ]
}

/// The statement from the rows of [`statement_reads`] (the usage records read by `reader` if
/// the hall does not keep them).
pub(crate) async fn statement_from(
    hall: &Hall,
    reader: &mut Reader<'_>,
    msisdn: &Msisdn,
    period: Period,
    rows: &mut Rows,
) -> Result<MonthToDate> {
    let items = charges_from(&rows.next())?;
    let rating = rating_from(hall, reader, msisdn, period, rows).await?;
    let closed = !rows.next().is_empty();
    Ok(month_to_date(period, items, rating, closed))
}

fn month_to_date(
    period: Period,
    mut items: Vec<BillItem>,
    rating: Rating,
    closed: bool,
) -> MonthToDate {
    // Once closed, the overage is among the charges already.
    if !closed {
        items.extend(
            overage_items(&rating)
                .into_iter()
                .map(|(_, item, amount)| BillItem {
                    category: ChargeCategory::Overage,
                    item,
                    amount,
                }),
        );
    }
    let total = items.iter().map(|i| i.amount).sum();
    MonthToDate {
        period,
        by_category: subtotals(&items),
        items,
        total,
        rating,
    }
}

async fn load_bill(
    conn: &mut AnyConnection,
    msisdn: &Msisdn,
    period: Period,
) -> Result<Option<Bill>> {
    let Some(row) = sqlx::query(
        "SELECT total, points_earned, closed_at FROM bills WHERE msisdn = $1 AND period = $2",
    )
    .bind(msisdn.as_str())
    .bind(period.to_string())
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    let rows = sqlx::query(
        "SELECT category, item, amount FROM bill_items WHERE msisdn = $1 AND period = $2 ORDER BY id",
    )
    .bind(msisdn.as_str())
    .bind(period.to_string())
    .fetch_all(&mut *conn)
    .await?;
    let mut items = rows
        .into_iter()
        .map(|r| item_from_row(&ReadRow::Any(r)))
        .collect::<Result<Vec<_>>>()?;
    items.sort_by_key(|i| i.category);
    Ok(Some(Bill {
        msisdn: msisdn.clone(),
        period,
        total: Fen::new(row.try_get(0)?),
        points_earned: row.try_get(1)?,
        closed_at: from_millis(row.try_get(2)?),
        items,
    }))
}

/// The high-bill SMS.
fn alert_text(spent: Fen, threshold: Fen) -> String {
    format!(
        "【高额话费提醒】尊敬的客户,您本月截至目前已产生话费 {},超过您设置的提醒额度 {}。\
         如需查询明细,请发送 CXZD 至 10086 或登录网上营业厅;如需调整提醒额度,请登录网上营业厅。",
        spent.yuan_text(),
        threshold.yuan_text()
    )
}

impl Hall {
    /// This month so far: charges recorded for the current period plus the overage rated so
    /// far, itemised by category.
    pub async fn month_to_date(&self, msisdn: &Msisdn) -> Result<MonthToDate> {
        let mut reader = self.db().reader().await?;
        let period = Period::containing(self.now());
        Ok(statement(self, &mut reader, msisdn, period).await?.1)
    }

    /// Allowances used and left in a month (the current one for the home page and `CXLL`).
    pub async fn usage_summary(&self, msisdn: &Msisdn, period: Period) -> Result<Rating> {
        let mut reader = self.db().reader().await?;
        rate_subscriber(self, &mut reader, msisdn, period).await
    }

    /// [`Hall::usage_summary`] for the current month.
    pub async fn usage_this_month(&self, msisdn: &Msisdn) -> Result<Rating> {
        self.usage_summary(msisdn, Period::containing(self.now()))
            .await
    }

    /// The last `n` closed bills, newest first.
    pub async fn bills(&self, msisdn: &Msisdn, n: i64) -> Result<Vec<Bill>> {
        let mut conn = self.db().pool().acquire().await?;
        load_profile(&mut conn, msisdn).await?;
        let periods =
            sqlx::query("SELECT period FROM bills WHERE msisdn = $1 ORDER BY period DESC LIMIT $2")
                .bind(msisdn.as_str())
                .bind(n.max(0))
                .fetch_all(&mut *conn)
                .await?;
        let mut out = Vec::with_capacity(periods.len());
        for r in &periods {
            let p = Period::parse(&r.try_get::<String, _>(0)?)
                .map_err(|_| Error::Storage("unreadable period in bills".into()))?;
            if let Some(b) = load_bill(&mut conn, msisdn, p).await? {
                out.push(b);
            }
        }
        Ok(out)
    }

    /// One closed bill, if that month is closed.
    pub async fn bill(&self, msisdn: &Msisdn, period: Period) -> Result<Option<Bill>> {
        let mut conn = self.db().pool().acquire().await?;
        load_profile(&mut conn, msisdn).await?;
        load_bill(&mut conn, msisdn, period).await
    }

    /// Billed spend over the last 12 closed bills: what the tier is measured on.
    pub async fn annual_spend(&self, msisdn: &Msisdn) -> Result<Fen> {
        let total: i64 = sqlx::query(
            "SELECT CAST(COALESCE(SUM(total), 0) AS BIGINT) FROM \
             (SELECT total FROM bills WHERE msisdn = $1 ORDER BY period DESC LIMIT 12) AS last12",
        )
        .bind(msisdn.as_str())
        .fetch_one(self.db().pool())
        .await?
        .try_get(0)?;
        Ok(Fen::new(total))
    }

    /// Sends the high-bill SMS if this month's spend so far is above the subscriber's alert
    /// threshold and it has not been sent this month. Returns whether it was sent now. Called
    /// after usage is recorded and after a charge.
    pub async fn check_bill_alert(&self, msisdn: &Msisdn) -> Result<bool> {
        let period = Period::containing(self.now());
        // Rate outside the write transaction (it reads a whole month of records); the bill_alerts
        // primary key decides who sends, so a concurrent check cannot send twice.
        let mut reader = self.db().reader().await?;
        let sent = Read::new("SELECT 1 FROM bill_alerts WHERE msisdn = $1 AND period = $2")
            .text(msisdn.as_str())
            .text(period.to_string());
        if !reader.fetch(sent).await?.is_empty() {
            return Ok(false);
        }
        let (profile, mtd) = statement(self, &mut reader, msisdn, period).await?;
        let threshold = profile.alert_threshold;
        drop(reader);
        if mtd.total <= threshold {
            return Ok(false);
        }
        let now_ms = self.now_ms();
        let mut tx = self.db().begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO bill_alerts (msisdn, period, sent_at) VALUES ($1, $2, $3) \
             ON CONFLICT (msisdn, period) DO NOTHING",
        )
        .bind(msisdn.as_str())
        .bind(period.to_string())
        .bind(now_ms)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if inserted {
            outbox::queue(
                &mut tx,
                now_ms,
                msisdn,
                SmsKind::BillAlert,
                &alert_text(mtd.total, threshold),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(inserted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::usage::{Direction, UsageKind, UsageRecord};
    use crate::testing::TestHall;
    use chrono::Duration;

    async fn allowances(conn: &mut AnyConnection, m: &Msisdn, p: Period) -> Result<Allowances> {
        allowances_from(&allowances_read(m, p).fetch(conn).await?)
    }

    /// The statement, the month's usage and its detail records read the profile in their
    /// batch: a number that is not a subscriber is told so, whatever else it has.
    #[tokio::test]
    async fn a_stranger_has_no_statement_usage_or_records() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 12_000).await;
        let period = Period::containing(t.now());
        assert!(t.month_to_date(&m).await.is_ok());
        assert!(t.usage_summary(&m, period).await.is_ok());
        assert!(t.detail_records(&m, period, None, 1, 20).await.is_ok());
        let stranger = Msisdn::parse("13900000001").unwrap();
        assert!(matches!(
            t.month_to_date(&stranger).await,
            Err(Error::UnknownSubscriber)
        ));
        assert!(matches!(
            t.usage_summary(&stranger, period).await,
            Err(Error::UnknownSubscriber)
        ));
        assert!(matches!(
            t.detail_records(&stranger, period, None, 1, 20).await,
            Err(Error::UnknownSubscriber)
        ));
    }

    fn out_call(reference: &str, at: DateTime<Utc>, minutes: i64) -> UsageRecord {
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

    fn data(reference: &str, at: DateTime<Utc>, mb: i64) -> UsageRecord {
        UsageRecord {
            reference: reference.into(),
            started_at: at,
            kind: UsageKind::Data {
                volume_kb: mb * 1024,
            },
        }
    }

    /// Adds an add-on the way the subscription module does (row + charge), without its module.
    pub(crate) async fn add_on(t: &TestHall, m: &Msisdn, code: &str, period: Period) -> i64 {
        let id: i64 = sqlx::query(
            "INSERT INTO subscriptions (msisdn, product_code, start_period, started_at) \
             VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(m.as_str())
        .bind(code)
        .bind(period.to_string())
        .bind(t.now_ms())
        .fetch_one(t.db().pool())
        .await
        .unwrap()
        .try_get(0)
        .unwrap();
        id
    }

    #[tokio::test]
    async fn allowances_add_plan_addons_and_data_rewards() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 0).await;
        let p = Period::containing(t.now());
        let mut conn = t.db().pool().acquire().await.unwrap();
        let plan = allowances(&mut conn, &m, p).await.unwrap();
        assert_eq!(plan, Allowances::from_product(200, 10_240, 200, 0));
        add_on(&t, &m, "EDU10", p).await;
        add_on(&t, &m, "LL10", p).await;
        // An add-on that ended last month and one that starts next month do not count.
        sqlx::query(
            "INSERT INTO subscriptions (msisdn, product_code, start_period, started_at, end_period) \
             VALUES ($1, 'LL30', $2, 0, $2), ($1, 'DX5', $3, 0, NULL)",
        )
        .bind(m.as_str())
        .bind(p.prev().to_string())
        .bind(p.next().to_string())
        .execute(t.db().pool())
        .await
        .unwrap();
        t.grant_points(&m, 1000, "测试", "g1").await.unwrap();
        t.redeem(&m, "LL1G", "r1").await.unwrap();
        let all = allowances(&mut conn, &m, p).await.unwrap();
        assert_eq!(
            all,
            Allowances::from_product(200, 10_240 + 1_024 + 1_024, 200, 2_400)
        );
        // Next month: the live add-ons and DX5 count, the reward (this month's only) does not.
        assert_eq!(
            allowances(&mut conn, &m, p.next()).await.unwrap(),
            Allowances::from_product(200, 10_240 + 1_024, 200 + 200, 2_400)
        );
    }

    #[tokio::test]
    async fn month_to_date_adds_charges_and_overage_so_far() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 100_000).await;
        let p = Period::containing(t.now());
        let id = add_on(&t, &m, "JTCL", p).await;
        let mut conn = t.db().pool().acquire().await.unwrap();
        insert_charge(
            &mut conn,
            t.now_ms(),
            &m,
            p,
            ChargeCategory::Addon,
            "集团彩铃",
            Fen::new(500),
            &format!("addon:{id}:{p}"),
        )
        .await
        .unwrap();
        drop(conn);
        let start = p.start() + Duration::hours(1);
        // 210 minutes on a 200-minute plan, 10,240 + 2,048 MB on a 10 GB plan.
        t.record_usage(
            &m,
            &[
                out_call("c1", start, 210),
                data("d1", start, 10_240),
                data("d2", start + Duration::hours(1), 2_048),
            ],
        )
        .await
        .unwrap();
        let mtd = t.month_to_date(&m).await.unwrap();
        assert_eq!(mtd.period, p);
        assert_eq!(mtd.rating.voice.over, 10);
        assert_eq!(mtd.rating.data.remaining(), 0);
        let expect = [
            (ChargeCategory::Addon, Fen::new(500)),
            (ChargeCategory::Overage, Fen::new(190)),
            (ChargeCategory::Overage, Fen::new(1000)),
        ];
        let got: Vec<_> = mtd.items.iter().map(|i| (i.category, i.amount)).collect();
        assert_eq!(got, expect);
        assert_eq!(mtd.total, Fen::new(1690));
        assert_eq!(
            mtd.by_category,
            vec![
                CategoryTotal {
                    category: ChargeCategory::Addon,
                    amount: Fen::new(500)
                },
                CategoryTotal {
                    category: ChargeCategory::Overage,
                    amount: Fen::new(1190)
                },
            ]
        );
        assert_eq!(t.usage_summary(&m, p).await.unwrap(), mtd.rating);
    }

    #[tokio::test]
    async fn high_bill_alert_is_sent_once_a_month() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 100_000).await;
        t.set_alert_threshold(&m, Fen::yuan(10)).await.unwrap();
        let p = Period::containing(t.now());
        let start = p.start() + Duration::hours(1);
        let alerts = |t: &TestHall, m: Msisdn| {
            let h = t.hall.clone();
            async move {
                h.outbox_for(&m, 100)
                    .await
                    .unwrap()
                    .into_iter()
                    .filter(|o| o.kind == "bill_alert")
                    .collect::<Vec<_>>()
            }
        };
        // 200 free minutes + 50 paid = 9.50 元: not above 10 元.
        t.record_usage(&m, &[out_call("c1", start, 250)])
            .await
            .unwrap();
        assert!(alerts(&t, m.clone()).await.is_empty());
        // One more minute: 9.69 元. Three more: 10.26 元 > 10 元 → one alert.
        t.record_usage(&m, &[out_call("c2", start, 1)])
            .await
            .unwrap();
        assert!(alerts(&t, m.clone()).await.is_empty());
        t.record_usage(&m, &[out_call("c3", start, 3)])
            .await
            .unwrap();
        let sent = alerts(&t, m.clone()).await;
        assert_eq!(sent.len(), 1);
        assert!(
            sent[0].body.starts_with("【高额话费提醒】"),
            "{}",
            sent[0].body
        );
        assert!(sent[0].body.contains("10.26元"), "{}", sent[0].body);
        assert!(sent[0].body.contains("10.00元"), "{}", sent[0].body);
        // More usage, and concurrent checks, send nothing more this month.
        t.record_usage(&m, &[out_call("c4", start, 100)])
            .await
            .unwrap();
        let checks: Vec<_> = (0..8)
            .map(|_| {
                let h = t.hall.clone();
                let m = m.clone();
                tokio::spawn(async move { h.check_bill_alert(&m).await.unwrap() })
            })
            .collect();
        for c in checks {
            assert!(!c.await.unwrap());
        }
        assert_eq!(alerts(&t, m.clone()).await.len(), 1);
        // Next month starts afresh.
        t.clock.set(p.end() + Duration::days(1));
        t.record_usage(&m, &[out_call("c5", p.end() + Duration::hours(2), 300)])
            .await
            .unwrap();
        assert_eq!(alerts(&t, m.clone()).await.len(), 2);
    }

    #[tokio::test]
    async fn concurrent_alert_checks_send_one_sms() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 0).await;
        t.set_alert_threshold(&m, Fen::ZERO).await.unwrap();
        let p = Period::containing(t.now());
        // Insert usage directly so no check has run yet.
        sqlx::query(
            "INSERT INTO usage_records (msisdn, period, kind, started_at, other_party, direction, duration_secs, reference) \
             VALUES ($1, $2, 'call', $3, '10086', 'out', 60000, 'x1')",
        )
        .bind(m.as_str())
        .bind(p.to_string())
        .bind(t.now_ms())
        .execute(t.db().pool())
        .await
        .unwrap();
        let checks: Vec<_> = (0..10)
            .map(|_| {
                let h = t.hall.clone();
                let m = m.clone();
                tokio::spawn(async move { h.check_bill_alert(&m).await.unwrap() })
            })
            .collect();
        let mut sent = 0;
        for c in checks {
            sent += c.await.unwrap() as i32;
        }
        assert_eq!(sent, 1);
        assert_eq!(t.outbox_for(&m, 100).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn the_plan_in_force_follows_plan_changes() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 0).await;
        let p = Period::containing(t.now());
        sqlx::query(
            "INSERT INTO plan_changes (msisdn, from_code, to_code, requested_period, effective_period, status, created_at) \
             VALUES ($1, 'GT88', 'GT128', $2, $3, 'pending', 0)",
        )
        .bind(m.as_str())
        .bind(p.to_string())
        .bind(p.next().to_string())
        .execute(t.db().pool())
        .await
        .unwrap();
        let mut conn = t.db().pool().acquire().await.unwrap();
        assert_eq!(plan_in(&mut conn, &m, p).await.unwrap().as_str(), "GT88");
        assert_eq!(
            plan_in(&mut conn, &m, p.next()).await.unwrap().as_str(),
            "GT128"
        );
        // Once applied, the old month still rates with the old plan.
        sqlx::query("UPDATE plan_changes SET status = 'applied'")
            .execute(&mut *conn)
            .await
            .unwrap();
        sqlx::query("UPDATE subscribers SET plan_code = 'GT128'")
            .execute(&mut *conn)
            .await
            .unwrap();
        assert_eq!(plan_in(&mut conn, &m, p).await.unwrap().as_str(), "GT88");
        assert_eq!(
            plan_in(&mut conn, &m, p.next()).await.unwrap().as_str(),
            "GT128"
        );
    }
}
