//! Top-up (充值) shared by both channels — online payment (`payment.rs`) and recharge cards
//! (`cards.rs`): the receipt, the promotions, and the one crediting step that posts the cash,
//! the promotion's gift, the `topups` receipt row and the confirmation SMS inside the caller's
//! transaction, so a top-up either happens completely or not at all.
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{AnyConnection, Row};

use crate::clock::from_millis;
use crate::domain::{Fen, Msisdn, Status};
use crate::error::{Error, Result};
use crate::hall::Hall;
use crate::service::ledger::{self, Balance, PostError, Posting, Reason};
use crate::service::outbox::{self, SmsKind};
use crate::store::reads::ReadRow;

/// The smallest online top-up.
pub const MIN_PAYMENT: Fen = Fen::yuan(10);
/// The largest online top-up.
pub const MAX_PAYMENT: Fen = Fen::yuan(5000);

/// How the money came in; stored as text in `topups.channel`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TopUpChannel {
    Payment,
    Card,
}

impl TopUpChannel {
    pub fn as_str(self) -> &'static str {
        match self {
            TopUpChannel::Payment => "payment",
            TopUpChannel::Card => "card",
        }
    }

    pub fn zh(self) -> &'static str {
        match self {
            TopUpChannel::Payment => "在线支付",
            TopUpChannel::Card => "充值卡",
        }
    }

    pub fn from_db(s: &str) -> Option<Self> {
        match s {
            "payment" => Some(TopUpChannel::Payment),
            "card" => Some(TopUpChannel::Card),
            _ => None,
        }
    }
}

/// One top-up as its receipt shows it. Either party may read it; a channel showing it to one
/// party should show the other's number masked (`Msisdn::masked`).
#[derive(Clone, Debug, Serialize)]
pub struct TopUpReceipt {
    pub id: i64,
    pub target: Msisdn,
    /// Who paid (the signed-in subscriber or the SMS sender).
    pub payer: Option<Msisdn>,
    pub channel: TopUpChannel,
    /// Cash credited.
    pub amount: Fen,
    /// Gift balance credited by a promotion (spent after cash, never refunded).
    pub gift: Fen,
    /// `pay:{order id}` or `card:{serial}`.
    pub reference: String,
    pub created_at: DateTime<Utc>,
    /// The target's total balance right after the top-up; only on the receipt the top-up
    /// itself returns (history does not keep running balances).
    pub balance_after: Option<Fen>,
}

impl TopUpReceipt {
    /// The payment order number, for an online top-up.
    pub fn order_id(&self) -> Option<&str> {
        self.reference.strip_prefix("pay:")
    }

    /// The card's serial number, for a card top-up (serials are printed on the card; only the
    /// PIN is secret).
    pub fn card_serial(&self) -> Option<&str> {
        self.reference.strip_prefix("card:")
    }

    /// Whether someone other than the target paid.
    pub fn paid_by_other(&self) -> bool {
        self.payer.as_ref().is_some_and(|p| p != &self.target)
    }
}

pub(crate) const RECEIPT_COLUMNS: &str =
    "id, target_msisdn, payer_msisdn, channel, amount, gift, reference, created_at";

pub(crate) fn receipt_from_row(r: &ReadRow) -> Result<TopUpReceipt> {
    let corrupt = |what: &str| Error::Storage(format!("unreadable {what} in topups"));
    let payer: Option<String> = r.try_get(2)?;
    Ok(TopUpReceipt {
        id: r.try_get(0)?,
        target: Msisdn::parse(&r.try_get::<String, _>(1)?).map_err(|_| corrupt("target"))?,
        payer: payer
            .map(|p| Msisdn::parse(&p).map_err(|_| corrupt("payer")))
            .transpose()?,
        channel: TopUpChannel::from_db(&r.try_get::<String, _>(3)?)
            .ok_or_else(|| corrupt("channel"))?,
        amount: Fen::new(r.try_get(4)?),
        gift: Fen::new(r.try_get(5)?),
        reference: r.try_get(6)?,
        created_at: from_millis(r.try_get(7)?),
        balance_after: None,
    })
}

/// A top-up promotion such as 预存 600 得 900: paying at least `min_amount` online adds `gift`
/// to the gift balance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Promotion {
    pub code: String,
    pub name_zh: String,
    pub name_en: String,
    pub min_amount: Fen,
    pub gift: Fen,
}

const PROMOTION_COLUMNS: &str = "code, name_zh, name_en, min_amount, gift";

pub(crate) fn promotion_from_row(r: &sqlx::any::AnyRow, at: usize) -> Result<Promotion> {
    Ok(Promotion {
        code: r.try_get(at)?,
        name_zh: r.try_get(at + 1)?,
        name_en: r.try_get(at + 2)?,
        min_amount: Fen::new(r.try_get(at + 3)?),
        gift: Fen::new(r.try_get(at + 4)?),
    })
}

/// The best promotion running at `now_ms` that `amount` qualifies for: the largest gift (then
/// the higher threshold, then the code, so the choice is deterministic).
pub(crate) async fn best_promotion(
    conn: &mut AnyConnection,
    now_ms: i64,
    amount: Fen,
) -> Result<Option<Promotion>> {
    let row = sqlx::query(&format!(
        "SELECT {PROMOTION_COLUMNS} FROM promotions \
         WHERE active = 1 AND starts_at <= $1 AND ends_at > $1 AND min_amount <= $2 AND gift > 0 \
         ORDER BY gift DESC, min_amount DESC, code LIMIT 1"
    ))
    .bind(now_ms)
    .bind(amount.get())
    .fetch_optional(conn)
    .await?;
    row.map(|r| promotion_from_row(&r, 0)).transpose()
}

/// Everything one top-up credits, posted by [`credit`].
pub(crate) struct Credit<'a> {
    pub target: &'a Msisdn,
    pub payer: Option<&'a Msisdn>,
    pub channel: TopUpChannel,
    pub amount: Fen,
    pub reason: Reason,
    pub memo: &'a str,
    /// The ledger's and the receipt's unique reference: the second attempt to post it fails.
    pub reference: &'a str,
    /// The promotion's gift and the reference to post it under.
    pub promotion: Option<(&'a Promotion, &'a str)>,
    /// Whether the target gets the top-up SMS (not when the channel's own reply says it).
    pub notify_target: bool,
}

/// Credits a top-up inside the caller's transaction: cash, then the promotion's gift, the
/// receipt row and the SMS to the target (and to the payer when someone else paid). A credit
/// that lifts a number suspended for arrears above zero resumes it (`ledger::post`).
pub(crate) async fn credit(
    conn: &mut AnyConnection,
    now_ms: i64,
    c: Credit<'_>,
) -> Result<TopUpReceipt, PostError> {
    // Lock first, so the status read below is the one this credit changes.
    ledger::lock_account(conn, c.target).await?;
    let status_before: String = sqlx::query("SELECT status FROM subscribers WHERE msisdn = $1")
        .bind(c.target.as_str())
        .fetch_one(&mut *conn)
        .await?
        .try_get(0)?;
    let mut after: Balance = ledger::post(
        conn,
        now_ms,
        Posting {
            msisdn: c.target,
            amount: c.amount,
            to_gift: false,
            allow_negative: false,
            reason: c.reason,
            memo: c.memo,
            reference: c.reference,
        },
    )
    .await?;
    let mut gift = Fen::ZERO;
    if let Some((promo, gift_reference)) = c.promotion.filter(|(p, _)| p.gift.get() > 0) {
        after = ledger::post(
            conn,
            now_ms,
            Posting {
                msisdn: c.target,
                amount: promo.gift,
                to_gift: true,
                allow_negative: false,
                reason: Reason::Promotion,
                memo: &promo.name_zh,
                reference: gift_reference,
            },
        )
        .await?;
        gift = promo.gift;
    }
    let id: i64 = sqlx::query(
        "INSERT INTO topups (target_msisdn, payer_msisdn, channel, amount, gift, reference, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(c.target.as_str())
    .bind(c.payer.map(|p| p.as_str().to_owned()))
    .bind(c.channel.as_str())
    .bind(c.amount.get())
    .bind(gift.get())
    .bind(c.reference)
    .bind(now_ms)
    .fetch_one(&mut *conn)
    .await?
    .try_get(0)?;

    let total = after.total();
    let resumed = status_before == Status::SuspendedArrears.as_str() && total.get() > 0;
    let by_other = c.payer.filter(|p| *p != c.target);
    let mut body = format!(
        "您已成功充值 {},当前余额 {}。",
        c.amount.yuan_text(),
        total.yuan_text()
    );
    if let Some((promo, _)) = c.promotion.filter(|_| gift.get() > 0) {
        body.push_str(&format!(
            "其中赠送余额 {}({}),在现金余额之后使用。",
            gift.yuan_text(),
            promo.name_zh
        ));
    }
    if let Some(p) = by_other {
        body.push_str(&format!("本次由 {} 为您充值。", p.masked()));
    }
    if resumed {
        body.push_str("您的号码已恢复正常使用。");
    }
    body.push_str("感谢您的使用!");
    if c.notify_target {
        outbox::queue(conn, now_ms, c.target, SmsKind::TopUp, &body).await?;
    }
    if let Some(p) = by_other {
        let body = format!(
            "您为 {} 充值 {} 已到账。感谢您的使用!",
            c.target.masked(),
            c.amount.yuan_text()
        );
        outbox::queue(conn, now_ms, p, SmsKind::TopUp, &body).await?;
    }

    Ok(TopUpReceipt {
        id,
        target: c.target.clone(),
        payer: c.payer.cloned(),
        channel: c.channel,
        amount: c.amount,
        gift,
        reference: c.reference.to_owned(),
        created_at: from_millis(now_ms),
        balance_after: Some(total),
    })
}

impl Hall {
    /// The promotions running now, for the top-up page (largest gift first).
    pub async fn active_promotions(&self) -> Result<Vec<Promotion>> {
        let rows = sqlx::query(&format!(
            "SELECT {PROMOTION_COLUMNS} FROM promotions \
             WHERE active = 1 AND starts_at <= $1 AND ends_at > $1 ORDER BY gift DESC, code"
        ))
        .bind(self.now_ms())
        .fetch_all(self.db().pool())
        .await?;
        rows.iter().map(|r| promotion_from_row(r, 0)).collect()
    }

    /// The promotion an online top-up of `amount` made now would get, to show before paying.
    pub async fn promotion_for(&self, amount: Fen) -> Result<Option<Promotion>> {
        let mut conn = self.db().pool().acquire().await?;
        best_promotion(&mut conn, self.now_ms(), amount).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestHall;

    #[tokio::test]
    async fn the_best_running_promotion_applies() {
        let t = TestHall::empty().await;
        assert_eq!(t.promotion_for(Fen::yuan(99)).await.unwrap(), None);
        assert_eq!(
            t.promotion_for(Fen::yuan(100)).await.unwrap().unwrap().code,
            "YC100"
        );
        let p = t.promotion_for(Fen::yuan(600)).await.unwrap().unwrap();
        assert_eq!((p.code.as_str(), p.gift), ("YC600", Fen::yuan(300)));
        assert_eq!(t.active_promotions().await.unwrap().len(), 2);
        // The seeded promotions end on 2028-01-01 Shanghai time.
        t.clock.set(from_millis(1_830_268_800_000));
        assert_eq!(t.promotion_for(Fen::yuan(600)).await.unwrap(), None);
        assert!(t.active_promotions().await.unwrap().is_empty());
    }
}
