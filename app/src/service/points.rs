//! Points (积分). Points live in lots — one per month-close earning or promotional grant — each
//! expiring at the end of the year after the year it was earned. The balance is what remains in
//! unexpired lots, so a lot stops counting the moment it expires, before the expiry job has
//! zeroed it. A redemption burns the earliest-expiring lots first, inside one transaction that
//! starts by locking the account row: concurrent redemptions of one number queue, and the
//! conditional burns can never take a lot below zero.
use chrono::{DateTime, Datelike, TimeZone, Utc};
use serde::Serialize;
use sqlx::{AnyConnection, Row};

use crate::clock::from_millis;
use crate::domain::{shanghai, Fen, Msisdn, Period, Points};
use crate::error::{is_unique_violation, Error, Result};
use crate::hall::Hall;
use crate::service::ledger::{self, PostError, Posting, Reason};
use crate::service::outbox::{self, SmsKind};
use crate::service::subscribers::{load_profile, require_active};
use crate::store::reads::{Read, ReadRow};

/// When points earned in `earned_year` expire: midnight starting 1 January two years later,
/// Shanghai time (the end of the year after), in millis.
pub fn expiry_for(earned_year: i32) -> i64 {
    shanghai()
        .with_ymd_and_hms(earned_year + 2, 1, 1, 0, 0, 0)
        .single()
        .expect("fixed offsets are unambiguous")
        .timestamp_millis()
}

fn shanghai_year(at: DateTime<Utc>) -> i32 {
    at.with_timezone(&shanghai()).year()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RewardKind {
    BillCredit,
    DataPack,
    Gift,
}

impl RewardKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RewardKind::BillCredit => "bill_credit",
            RewardKind::DataPack => "data_pack",
            RewardKind::Gift => "gift",
        }
    }

    pub fn from_db(s: &str) -> Option<Self> {
        match s {
            "bill_credit" => Some(RewardKind::BillCredit),
            "data_pack" => Some(RewardKind::DataPack),
            "gift" => Some(RewardKind::Gift),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Reward {
    pub code: String,
    pub name_zh: String,
    pub name_en: String,
    pub cost: Points,
    pub kind: RewardKind,
    /// For bill credits: the amount credited.
    pub credit: Fen,
    /// For data packs: MB added to this month's allowance.
    pub data_mb: i64,
}

const REWARD_COLUMNS: &str = "code, name_zh, name_en, cost, kind, credit_fen, data_mb";

fn reward_from_row(r: &ReadRow) -> Result<Reward> {
    let corrupt = || Error::Storage("unreadable reward".into());
    Ok(Reward {
        code: r.try_get(0)?,
        name_zh: r.try_get(1)?,
        name_en: r.try_get(2)?,
        cost: Points::new(r.try_get(3)?).ok_or_else(corrupt)?,
        kind: RewardKind::from_db(&r.try_get::<String, _>(4)?).ok_or_else(corrupt)?,
        credit: Fen::new(r.try_get(5)?),
        data_mb: r.try_get(6)?,
    })
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PointsLot {
    pub id: i64,
    pub earned_year: i32,
    pub expires_at: DateTime<Utc>,
    pub amount: i64,
    pub remaining: i64,
    /// `bill` (earned at month close) or `promotion`.
    pub source: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct PointsSummary {
    pub balance: Points,
    /// Points that expire at the end of this year (Shanghai time).
    pub expiring_this_year: Points,
    /// Unexpired lots with points left, earliest-expiring first (the order they are spent in).
    pub lots: Vec<PointsLot>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PointsEntry {
    pub delta: i64,
    /// `earn`, `promotion`, `redeem` or `expire`.
    pub reason: String,
    pub memo: String,
    pub created_at: DateTime<Utc>,
}

impl PointsEntry {
    pub fn reason_zh(&self) -> &'static str {
        match self.reason.as_str() {
            "earn" => "消费积分",
            "promotion" => "赠送积分",
            "redeem" => "积分兑换",
            "expire" => "积分到期",
            _ => "其他",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Redemption {
    pub id: i64,
    pub reward: Reward,
    pub points: Points,
    pub period: Period,
    pub reference: String,
    pub created_at: DateTime<Utc>,
    /// The points balance after this redemption (now, when a retry returns an earlier one).
    pub balance_after: Points,
}

/// Adds a lot and its history row; `Ok(false)` if the reference was used before.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn add_lot(
    conn: &mut AnyConnection,
    now_ms: i64,
    msisdn: &Msisdn,
    amount: i64,
    earned_year: i32,
    source: &str,
    memo: &str,
    reference: &str,
) -> Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO points_lots (msisdn, earned_year, expires_at, amount, remaining, source, reference, created_at) \
         VALUES ($1, $2, $3, $4, $4, $5, $6, $7) ON CONFLICT (reference) DO NOTHING",
    )
    .bind(msisdn.as_str())
    .bind(earned_year as i64)
    .bind(expiry_for(earned_year))
    .bind(amount)
    .bind(source)
    .bind(reference)
    .bind(now_ms)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    if inserted {
        let reason = if source == "bill" {
            "earn"
        } else {
            "promotion"
        };
        history(conn, now_ms, msisdn, amount, reason, memo, reference).await?;
    }
    Ok(inserted)
}

async fn history(
    conn: &mut AnyConnection,
    now_ms: i64,
    msisdn: &Msisdn,
    delta: i64,
    reason: &str,
    memo: &str,
    reference: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO points_history (msisdn, delta, reason, memo, reference, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(msisdn.as_str())
    .bind(delta)
    .bind(reason)
    .bind(memo)
    .bind(reference)
    .bind(now_ms)
    .execute(conn)
    .await?;
    Ok(())
}

/// Unexpired lots with points left, in spending order: earliest expiry, then oldest.
async fn live_lots(
    conn: &mut AnyConnection,
    msisdn: &Msisdn,
    now_ms: i64,
) -> Result<Vec<PointsLot>> {
    lots_from(&lots_read(msisdn, now_ms).fetch(conn).await?)
}

/// The read behind [`live_lots`], for a batch ([`crate::store::reads`]).
/// A number's lots that still count at a moment: unexpired, with points left ($1 the
/// number, $2 the moment in milliseconds). The summary lists them and the totals sum them.
/// A literal, so that both statements stay `&'static str` (they run on every page view).
macro_rules! live_lots {
    () => {
        "msisdn = $1 AND expires_at > $2 AND remaining > 0"
    };
}

/// The expiry of the lots that end this year (Shanghai time): those earned last year.
fn end_of_this_year(now: DateTime<Utc>) -> i64 {
    expiry_for(shanghai_year(now) - 1)
}

fn lots_read(msisdn: &Msisdn, now_ms: i64) -> Read {
    Read::new(concat!(
        "SELECT id, earned_year, expires_at, amount, remaining, source FROM points_lots WHERE ",
        live_lots!(),
        " ORDER BY expires_at, id"
    ))
    .text(msisdn.as_str())
    .int(now_ms)
}

fn lots_from(rows: &[ReadRow]) -> Result<Vec<PointsLot>> {
    rows.iter()
        .map(|r| {
            Ok(PointsLot {
                id: r.try_get(0)?,
                earned_year: r.try_get::<i64, _>(1)? as i32,
                expires_at: from_millis(r.try_get(2)?),
                amount: r.try_get(3)?,
                remaining: r.try_get(4)?,
                source: r.try_get(5)?,
            })
        })
        .collect()
}

/// The points of a number already known to be a subscriber, at `now`.
pub(crate) async fn summary_of_known(
    conn: &mut AnyConnection,
    msisdn: &Msisdn,
    now: DateTime<Utc>,
) -> Result<PointsSummary> {
    summary_from(&summary_read(msisdn, now).fetch(conn).await?, now)
}

/// The read behind [`summary_of_known`], for a batch ([`crate::store::reads`]).
pub(crate) fn summary_read(msisdn: &Msisdn, now: DateTime<Utc>) -> Read {
    lots_read(msisdn, now.timestamp_millis())
}

/// The two sums of a [`PointsSummary`] without its lots: what the home page shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PointsTotals {
    pub balance: Points,
    /// Points that expire at the end of this year (Shanghai time).
    pub expiring_this_year: Points,
}

/// [`PointsTotals`] as one aggregate row, for a batch: the lots the summary would list,
/// summed by the database instead of read one by one.
pub(crate) fn totals_read(msisdn: &Msisdn, now: DateTime<Utc>) -> Read {
    Read::new(concat!(
        "SELECT CAST(COALESCE(SUM(remaining), 0) AS BIGINT), \
         CAST(COALESCE(SUM(CASE WHEN expires_at = $3 THEN remaining ELSE 0 END), 0) AS BIGINT) \
         FROM points_lots WHERE ",
        live_lots!()
    ))
    .text(msisdn.as_str())
    .int(now.timestamp_millis())
    .int(end_of_this_year(now))
    .at_most_one()
}

pub(crate) fn totals_from(rows: &[ReadRow]) -> Result<PointsTotals> {
    let row = rows
        .first()
        .ok_or_else(|| Error::Storage("no points totals row".into()))?;
    let points = |i: usize| -> Result<Points> {
        Points::new(row.try_get(i)?).ok_or_else(|| Error::Storage("negative points".into()))
    };
    Ok(PointsTotals {
        balance: points(0)?,
        expiring_this_year: points(1)?,
    })
}

pub(crate) fn summary_from(rows: &[ReadRow], now: DateTime<Utc>) -> Result<PointsSummary> {
    let lots = lots_from(rows)?;
    let ends_this_year = end_of_this_year(now);
    let sum = |it: &mut dyn Iterator<Item = &PointsLot>| {
        Points::new(it.map(|l| l.remaining).sum()).unwrap_or_default()
    };
    Ok(PointsSummary {
        balance: sum(&mut lots.iter()),
        expiring_this_year: sum(&mut lots
            .iter()
            .filter(|l| l.expires_at.timestamp_millis() == ends_this_year)),
        lots,
    })
}

async fn balance_in(conn: &mut AnyConnection, msisdn: &Msisdn, now_ms: i64) -> Result<Points> {
    let n: i64 = sqlx::query(
        "SELECT CAST(COALESCE(SUM(remaining), 0) AS BIGINT) FROM points_lots \
         WHERE msisdn = $1 AND expires_at > $2",
    )
    .bind(msisdn.as_str())
    .bind(now_ms)
    .fetch_one(conn)
    .await?
    .try_get(0)?;
    Points::new(n).ok_or_else(|| Error::Storage("negative points balance".into()))
}

async fn load_redemption(
    conn: &mut AnyConnection,
    reference: &str,
) -> Result<Option<(String, Redemption)>> {
    let cols = REWARD_COLUMNS
        .split(", ")
        .map(|c| format!("w.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let row = sqlx::query(&format!(
        "SELECT r.id, r.msisdn, r.points, r.period, r.reference, r.created_at, {cols} \
         FROM redemptions r JOIN rewards w ON w.code = r.reward_code WHERE r.reference = $1"
    ))
    .bind(reference)
    .fetch_optional(conn)
    .await?;
    let Some(r) = row else { return Ok(None) };
    let corrupt = || Error::Storage("unreadable redemption".into());
    let reward_row_offset = 6;
    let reward = Reward {
        code: r.try_get(reward_row_offset)?,
        name_zh: r.try_get(reward_row_offset + 1)?,
        name_en: r.try_get(reward_row_offset + 2)?,
        cost: Points::new(r.try_get(reward_row_offset + 3)?).ok_or_else(corrupt)?,
        kind: RewardKind::from_db(&r.try_get::<String, _>(reward_row_offset + 4)?)
            .ok_or_else(corrupt)?,
        credit: Fen::new(r.try_get(reward_row_offset + 5)?),
        data_mb: r.try_get(reward_row_offset + 6)?,
    };
    Ok(Some((
        r.try_get(1)?,
        Redemption {
            id: r.try_get(0)?,
            reward,
            points: Points::new(r.try_get(2)?).ok_or_else(corrupt)?,
            period: Period::parse(&r.try_get::<String, _>(3)?).map_err(|_| corrupt())?,
            reference: r.try_get(4)?,
            created_at: from_millis(r.try_get(5)?),
            balance_after: Points::ZERO,
        },
    )))
}

fn redemption_text(reward: &Reward, cost: Points, left: Points) -> String {
    let effect = match reward.kind {
        RewardKind::BillCredit => format!("{}已存入您的话费账户", reward.credit.yuan_text()),
        RewardKind::DataPack => format!("{}MB 流量已加入您本月的套餐,当月有效", reward.data_mb),
        RewardKind::Gift => "礼品将在 7 个工作日内寄出".to_owned(),
    };
    format!(
        "【积分兑换】您已使用 {cost} 积分成功兑换「{}」,{effect}。当前剩余积分 {left} 分。",
        reward.name_zh
    )
}

impl Hall {
    /// The points balance, what expires this year, and the lots.
    pub async fn points(&self, msisdn: &Msisdn) -> Result<PointsSummary> {
        let mut conn = self.db().pool().acquire().await?;
        load_profile(&mut conn, msisdn).await?;
        summary_of_known(&mut conn, msisdn, self.now()).await
    }

    /// Points earned and spent, newest first.
    pub async fn points_history(&self, msisdn: &Msisdn, limit: i64) -> Result<Vec<PointsEntry>> {
        let rows = self
            .db()
            .read(
                Read::new(
                    "SELECT delta, reason, memo, created_at FROM points_history WHERE msisdn = $1 \
                     ORDER BY created_at DESC, id DESC LIMIT $2",
                )
                .text(msisdn.as_str())
                .int(limit.max(0)),
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(PointsEntry {
                    delta: r.try_get(0)?,
                    reason: r.try_get(1)?,
                    memo: r.try_get(2)?,
                    created_at: from_millis(r.try_get(3)?),
                })
            })
            .collect()
    }

    /// Promotional points earned this year (so they expire at the end of next year). The
    /// reference makes a grant happen once: `Ok(false)` if it was granted before.
    pub async fn grant_points(
        &self,
        msisdn: &Msisdn,
        amount: i64,
        memo: &str,
        reference: &str,
    ) -> Result<bool> {
        let year = shanghai_year(self.now());
        self.grant_points_earned(msisdn, amount, year, memo, reference)
            .await
    }

    /// Promotional points counted as earned in `earned_year` (demo data: points that expire at
    /// the end of this year were earned last year).
    pub async fn grant_points_earned(
        &self,
        msisdn: &Msisdn,
        amount: i64,
        earned_year: i32,
        memo: &str,
        reference: &str,
    ) -> Result<bool> {
        if amount <= 0 || amount > 100_000_000 {
            return Err(Error::InvalidPoints);
        }
        let now_ms = self.now_ms();
        let mut tx = self.db().begin().await?;
        ledger::lock_account(&mut tx, msisdn).await?;
        let done = add_lot(
            &mut tx,
            now_ms,
            msisdn,
            amount,
            earned_year,
            "promotion",
            memo,
            &format!("grant:{reference}"),
        )
        .await?;
        tx.commit().await?;
        Ok(done)
    }

    /// The rewards on offer, cheapest first as the catalogue orders them.
    pub async fn rewards(&self) -> Result<Vec<Reward>> {
        let rows = self
            .db()
            .read(Read::new(format!(
                "SELECT {REWARD_COLUMNS} FROM rewards WHERE active = 1 ORDER BY sort_order, code"
            )))
            .await?;
        rows.iter().map(reward_from_row).collect()
    }

    /// Redeems a reward, atomically. `reference` identifies the request (the channel makes one
    /// per confirmed order): a retry with the same reference returns the first redemption and
    /// never burns points twice.
    pub async fn redeem(
        &self,
        msisdn: &Msisdn,
        reward_code: &str,
        reference: &str,
    ) -> Result<Redemption> {
        let code = reward_code.trim().to_ascii_uppercase();
        let now = self.now();
        let now_ms = self.now_ms();
        let period = Period::containing(now);
        let mut tx = self.db().begin().await?;
        // Lock first: concurrent redemptions (and other money or points changes) of this number
        // queue here, so each sees the lots as the previous one left them.
        ledger::lock_account(&mut tx, msisdn).await?;
        if let Some((owner, mut done)) = load_redemption(&mut tx, reference).await? {
            if owner != msisdn.as_str() || done.reward.code != code {
                return Err(Error::RedemptionConflict);
            }
            done.balance_after = balance_in(&mut tx, msisdn, now_ms).await?;
            return Ok(done);
        }
        require_active(&mut tx, msisdn).await?;
        let reward = sqlx::query(&format!(
            "SELECT {REWARD_COLUMNS} FROM rewards WHERE code = $1 AND active = 1"
        ))
        .bind(&code)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(Error::UnknownReward)?;
        let reward = reward_from_row(&ReadRow::Any(reward))?;
        let cost = reward.cost.get();
        let lots = live_lots(&mut tx, msisdn, now_ms).await?;
        let available: i64 = lots.iter().map(|l| l.remaining).sum();
        if available < cost {
            return Err(Error::InsufficientPoints {
                needed: cost,
                available,
            });
        }
        let mut due = cost;
        for lot in &lots {
            if due == 0 {
                break;
            }
            let take = due.min(lot.remaining);
            // Conditional: even if something bypassed the lock, a lot never goes below zero.
            let burnt = sqlx::query(
                "UPDATE points_lots SET remaining = remaining - $1 WHERE id = $2 AND remaining >= $1",
            )
            .bind(take)
            .bind(lot.id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if burnt != 1 {
                return Err(Error::Storage(
                    "points lot changed during redemption".into(),
                ));
            }
            due -= take;
        }
        let id: i64 = sqlx::query(
            "INSERT INTO redemptions (msisdn, reward_code, points, period, reference, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(msisdn.as_str())
        .bind(&reward.code)
        .bind(cost)
        .bind(period.to_string())
        .bind(reference)
        .bind(now_ms)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| {
            // Only reachable if the lock above was bypassed; nothing of this attempt remains.
            if is_unique_violation(&e) {
                Error::RedemptionConflict
            } else {
                e.into()
            }
        })?
        .try_get(0)?;
        let ledger_ref = format!("redeem:{reference}");
        history(
            &mut tx,
            now_ms,
            msisdn,
            -cost,
            "redeem",
            &reward.name_zh,
            &ledger_ref,
        )
        .await?;
        if reward.kind == RewardKind::BillCredit && reward.credit.get() > 0 {
            let memo = format!("积分兑换:{}", reward.name_zh);
            ledger::post(
                &mut tx,
                now_ms,
                Posting {
                    msisdn,
                    amount: reward.credit,
                    to_gift: false,
                    allow_negative: false,
                    reason: Reason::BillCredit,
                    memo: &memo,
                    reference: &ledger_ref,
                },
            )
            .await
            .map_err(|e| match e {
                PostError::Duplicate => Error::RedemptionConflict,
                PostError::Other(e) => e,
            })?;
        }
        let left = Points::new(available - cost).unwrap_or_default();
        if self.change_notices() {
            outbox::queue(
                &mut tx,
                now_ms,
                msisdn,
                SmsKind::Account,
                &redemption_text(&reward, reward.cost, left),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(Redemption {
            id,
            reward,
            points: Points::new(cost).unwrap_or_default(),
            period,
            reference: reference.to_owned(),
            created_at: from_millis(now_ms),
            balance_after: left,
        })
    }

    /// Zeroes lots past their expiry, writing one history row per lot. Safe to run any number
    /// of times, on several instances at once: a lot is zeroed only from the value read, and its
    /// history reference is unique. Returns the number of lots expired by this run.
    pub async fn expire_points(&self) -> Result<u64> {
        let now_ms = self.now_ms();
        let rows = sqlx::query(
            "SELECT id, msisdn, remaining, earned_year FROM points_lots \
             WHERE expires_at <= $1 AND remaining > 0 ORDER BY id",
        )
        .bind(now_ms)
        .fetch_all(self.db().pool())
        .await?;
        let mut expired = 0;
        for r in &rows {
            let id: i64 = r.try_get(0)?;
            let msisdn = Msisdn::parse(&r.try_get::<String, _>(1)?)
                .map_err(|_| Error::Storage("unreadable msisdn in points_lots".into()))?;
            let remaining: i64 = r.try_get(2)?;
            let year: i64 = r.try_get(3)?;
            let mut tx = self.db().begin().await?;
            ledger::lock_account(&mut tx, &msisdn).await?;
            let zeroed = sqlx::query(
                "UPDATE points_lots SET remaining = 0 WHERE id = $1 AND remaining = $2 AND expires_at <= $3",
            )
            .bind(id)
            .bind(remaining)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if zeroed == 1 {
                history(
                    &mut tx,
                    now_ms,
                    &msisdn,
                    -remaining,
                    "expire",
                    &format!("{year} 年积分到期清零"),
                    &format!("expire:{id}"),
                )
                .await?;
                tx.commit().await?;
                expired += 1;
            }
        }
        Ok(expired)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestHall;
    use chrono::Duration;

    async fn lots_remaining(t: &TestHall, m: &Msisdn) -> Vec<i64> {
        sqlx::query("SELECT remaining FROM points_lots WHERE msisdn = $1 ORDER BY id")
            .bind(m.as_str())
            .fetch_all(t.db().pool())
            .await
            .unwrap()
            .iter()
            .map(|r| r.try_get(0).unwrap())
            .collect()
    }

    async fn history_sum(t: &TestHall, m: &Msisdn) -> i64 {
        sqlx::query(
            "SELECT CAST(COALESCE(SUM(delta), 0) AS BIGINT) FROM points_history WHERE msisdn = $1",
        )
        .bind(m.as_str())
        .fetch_one(t.db().pool())
        .await
        .unwrap()
        .try_get(0)
        .unwrap()
    }

    async fn count(t: &TestHall, sql: &str) -> i64 {
        sqlx::query(sql)
            .fetch_one(t.db().pool())
            .await
            .unwrap()
            .try_get(0)
            .unwrap()
    }

    #[test]
    fn points_expire_at_the_end_of_the_following_year() {
        // Earned in 2026 → gone from 2028-01-01 00:00 Shanghai (2027-12-31 16:00 UTC).
        assert_eq!(
            from_millis(expiry_for(2026)),
            Utc.with_ymd_and_hms(2027, 12, 31, 16, 0, 0).unwrap()
        );
    }

    #[tokio::test]
    async fn two_hundred_concurrent_redemptions_never_overspend() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 0).await;
        // 1,000 points in four lots, so burns cross lot boundaries.
        for (i, n) in [250, 250, 300, 200].into_iter().enumerate() {
            t.grant_points(&m, n, "测试", &format!("g{i}"))
                .await
                .unwrap();
        }
        sqlx::query(
            "INSERT INTO rewards (code, name_zh, name_en, cost, kind) VALUES ('T10', '测试礼品', 'Test', 10, 'gift')",
        )
        .execute(t.db().pool())
        .await
        .unwrap();
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let h = t.hall.clone();
                let m = m.clone();
                tokio::spawn(async move { h.redeem(&m, "T10", &format!("r{i}")).await })
            })
            .collect();
        let (mut ok, mut short) = (0, 0);
        for task in tasks {
            match task.await.unwrap() {
                Ok(r) => {
                    assert_eq!(r.points.get(), 10);
                    ok += 1;
                }
                Err(Error::InsufficientPoints { needed: 10, .. }) => short += 1,
                Err(e) => panic!("unexpected error: {e:?}"),
            }
        }
        assert_eq!((ok, short), (100, 100));
        assert_eq!(t.points(&m).await.unwrap().balance, Points::ZERO);
        assert!(lots_remaining(&t, &m).await.iter().all(|&r| r == 0));
        assert_eq!(history_sum(&t, &m).await, 0);
        assert_eq!(count(&t, "SELECT COUNT(*) FROM redemptions").await, 100);
        assert_eq!(
            count(
                &t,
                "SELECT CAST(COALESCE(SUM(points), 0) AS BIGINT) FROM redemptions"
            )
            .await,
            1000
        );
        assert_eq!(
            count(
                &t,
                "SELECT COUNT(*) FROM points_history WHERE reason = 'redeem'"
            )
            .await,
            100
        );
    }

    #[tokio::test]
    async fn redemption_burns_the_earliest_expiring_lot_first() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 0).await;
        // Granted in this order: this year's lot first, then last year's (expiring sooner).
        t.grant_points(&m, 500, "今年", "new").await.unwrap();
        t.grant_points_earned(&m, 300, 2025, "去年", "old")
            .await
            .unwrap();
        let s = t.points(&m).await.unwrap();
        assert_eq!(s.balance.get(), 800);
        assert_eq!(s.expiring_this_year.get(), 300);
        assert_eq!(s.lots[0].earned_year, 2025, "spending order");
        t.redeem(&m, "HF5", "r1").await.unwrap(); // 400 points
                                                  // The 2025 lot is used up; the rest came from the 2026 lot.
        assert_eq!(lots_remaining(&t, &m).await, vec![400, 0]);
        let s = t.points(&m).await.unwrap();
        assert_eq!((s.balance.get(), s.expiring_this_year.get()), (400, 0));
    }

    /// The home page's aggregate read says what the summary's lots add up to: with a lot
    /// expiring this year, a spent lot, and, a year on, an expired one.
    #[tokio::test]
    async fn the_totals_are_the_sums_of_the_summary() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 0).await;
        let agree = |expected: (i64, i64)| {
            let t = &t;
            let m = m.clone();
            async move {
                let now = t.now();
                let mut conn = t.db().pool().acquire().await.unwrap();
                let rows = totals_read(&m, now).fetch(&mut conn).await.unwrap();
                let totals = totals_from(&rows).unwrap();
                let whole = t.points(&m).await.unwrap();
                assert_eq!(totals.balance, whole.balance);
                assert_eq!(totals.expiring_this_year, whole.expiring_this_year);
                assert_eq!(
                    (totals.balance.get(), totals.expiring_this_year.get()),
                    expected
                );
            }
        };
        agree((0, 0)).await;
        t.grant_points(&m, 500, "今年", "new").await.unwrap();
        t.grant_points_earned(&m, 300, 2025, "去年", "old")
            .await
            .unwrap();
        agree((800, 300)).await;
        t.redeem(&m, "HF5", "r1").await.unwrap(); // 400: the 2025 lot spent, 100 of this year's
        agree((400, 0)).await;
        t.clock
            .set(from_millis(expiry_for(2025)) + Duration::seconds(1));
        agree((400, 400)).await;
        t.clock
            .set(from_millis(expiry_for(2026)) + Duration::seconds(1));
        agree((0, 0)).await;
    }

    #[tokio::test]
    async fn bill_credit_redemption_credits_once_per_reference() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 1_000).await;
        t.grant_points(&m, 2_000, "测试", "g").await.unwrap();
        let r = t.redeem(&m, "hf27", "req-1").await.unwrap();
        assert_eq!(r.reward.code, "HF27");
        assert_eq!(r.balance_after.get(), 200);
        assert_eq!(t.balance(&m).await.unwrap().cash, Fen::new(1_000 + 2_700));
        // A retry returns the same redemption and burns nothing.
        let again = t.redeem(&m, "HF27", "req-1").await.unwrap();
        assert_eq!(again.id, r.id);
        assert_eq!(again.balance_after.get(), 200);
        assert_eq!(t.balance(&m).await.unwrap().cash, Fen::new(3_700));
        assert_eq!(history_sum(&t, &m).await, 200);
        // The same reference for another reward is refused, not redeemed.
        assert!(matches!(
            t.redeem(&m, "HF5", "req-1").await,
            Err(Error::RedemptionConflict)
        ));
        let sms = t.outbox_for(&m, 10).await.unwrap();
        assert_eq!(sms.len(), 1);
        assert!(sms[0].body.contains("27.00元"), "{}", sms[0].body);
        let hist = t.points_history(&m, 10).await.unwrap();
        assert_eq!(
            hist.iter().map(|h| h.delta).collect::<Vec<_>>(),
            vec![-1800, 2000]
        );
    }

    #[tokio::test]
    async fn a_refused_redemption_changes_nothing() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 500).await;
        t.grant_points(&m, 1_000, "测试", "g").await.unwrap();
        let ledger_rows = |t: &TestHall| {
            let pool = t.db().pool().clone();
            async move {
                sqlx::query("SELECT COUNT(*) FROM ledger")
                    .fetch_one(&pool)
                    .await
                    .unwrap()
                    .try_get::<i64, _>(0)
                    .unwrap()
            }
        };
        let before = (ledger_rows(&t).await, t.balance(&m).await.unwrap());
        assert!(matches!(
            t.redeem(&m, "HF27", "x").await,
            Err(Error::InsufficientPoints {
                needed: 1800,
                available: 1000
            })
        ));
        assert!(matches!(
            t.redeem(&m, "NOPE", "y").await,
            Err(Error::UnknownReward)
        ));
        assert_eq!(
            (ledger_rows(&t).await, t.balance(&m).await.unwrap()),
            before
        );
        assert_eq!(lots_remaining(&t, &m).await, vec![1000]);
        assert_eq!(history_sum(&t, &m).await, 1000);
        assert_eq!(count(&t, "SELECT COUNT(*) FROM redemptions").await, 0);
        assert!(t.outbox_for(&m, 10).await.unwrap().is_empty());
        // A suspended number cannot redeem either.
        t.suspend_by_request(&m).await.unwrap();
        assert!(matches!(
            t.redeem(&m, "HF5", "z").await,
            Err(Error::NotActive)
        ));
        assert_eq!(lots_remaining(&t, &m).await, vec![1000]);
    }

    #[tokio::test]
    async fn expired_points_cannot_be_redeemed_and_expiry_runs_once() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 0).await;
        t.grant_points_earned(&m, 1_500, 2025, "去年", "old")
            .await
            .unwrap();
        t.grant_points(&m, 200, "今年", "new").await.unwrap();
        // New Year's Day 2027, 00:00:01 Shanghai: the 2025 lot has expired, the job not yet run.
        t.clock
            .set(from_millis(expiry_for(2025)) + Duration::seconds(1));
        let s = t.points(&m).await.unwrap();
        assert_eq!(s.balance.get(), 200);
        assert_eq!(
            s.expiring_this_year.get(),
            200,
            "the 2026 lot ends this year now"
        );
        assert!(matches!(
            t.redeem(&m, "HF5", "r").await,
            Err(Error::InsufficientPoints {
                needed: 400,
                available: 200
            })
        ));
        assert_eq!(t.expire_points().await.unwrap(), 1);
        assert_eq!(t.expire_points().await.unwrap(), 0);
        assert_eq!(lots_remaining(&t, &m).await, vec![0, 200]);
        assert_eq!(history_sum(&t, &m).await, 200);
        let hist = t.points_history(&m, 10).await.unwrap();
        assert_eq!(hist[0].reason, "expire");
        assert_eq!(hist[0].delta, -1_500);
    }

    #[tokio::test]
    async fn grants_are_idempotent_and_positive() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 0).await;
        assert!(t.grant_points(&m, 100, "活动", "p1").await.unwrap());
        assert!(!t.grant_points(&m, 100, "活动", "p1").await.unwrap());
        assert_eq!(t.points(&m).await.unwrap().balance.get(), 100);
        assert!(matches!(
            t.grant_points(&m, 0, "活动", "p2").await,
            Err(Error::InvalidPoints)
        ));
        assert!(matches!(
            t.grant_points(&Msisdn::parse("13900000000").unwrap(), 5, "活动", "p3")
                .await,
            Err(Error::UnknownSubscriber)
        ));
        assert_eq!(t.rewards().await.unwrap()[0].code, "HF5");
    }
}
