//! What a subscriber may read back about money: the top-up history and receipts (as the number
//! topped up or as the payer), and the balance history (the ledger).
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::clock::from_millis;
use crate::domain::{Fen, Msisdn};
use crate::error::{Error, Result};
use crate::hall::Hall;
use crate::service::topup::{receipt_from_row, TopUpReceipt, RECEIPT_COLUMNS};
use crate::store::reads::Read;

/// The most rows one history page returns.
const MAX_LIMIT: i64 = 500;

/// One balance change.
#[derive(Clone, Debug, Serialize)]
pub struct LedgerEntry {
    pub id: i64,
    pub cash_delta: Fen,
    pub gift_delta: Fen,
    /// `ledger::Reason::as_str`: topup, card, promotion, charge, bill_credit, adjustment.
    pub reason: String,
    pub memo: String,
    pub reference: String,
    pub created_at: DateTime<Utc>,
}

impl LedgerEntry {
    /// The whole change, cash and gift together.
    pub fn amount(&self) -> Fen {
        self.cash_delta + self.gift_delta
    }

    pub fn reason_zh(&self) -> &'static str {
        match self.reason.as_str() {
            "topup" => "在线充值",
            "card" => "充值卡充值",
            "promotion" => "充值赠送",
            "charge" => "话费扣除",
            "bill_credit" => "积分兑换话费",
            "adjustment" => "账务调整",
            _ => "其他",
        }
    }
}

fn clamp(limit: i64) -> i64 {
    limit.clamp(1, MAX_LIMIT)
}

impl Hall {
    /// Top-ups of `msisdn` and top-ups it paid for others, newest first.
    pub async fn topup_history(&self, msisdn: &Msisdn, limit: i64) -> Result<Vec<TopUpReceipt>> {
        let rows = self
            .db()
            .read(
                Read::new(format!(
                    "SELECT {RECEIPT_COLUMNS} FROM topups \
                     WHERE target_msisdn = $1 OR payer_msisdn = $1 \
                     ORDER BY created_at DESC, id DESC LIMIT $2"
                ))
                .text(msisdn.as_str())
                .int(clamp(limit)),
            )
            .await?;
        rows.iter().map(receipt_from_row).collect()
    }

    /// One receipt, for its target or its payer only; anyone else is told it does not exist.
    pub async fn receipt(&self, msisdn: &Msisdn, id: i64) -> Result<TopUpReceipt> {
        let rows = self
            .db()
            .read(
                Read::new(format!(
                    "SELECT {RECEIPT_COLUMNS} FROM topups \
                     WHERE id = $1 AND (target_msisdn = $2 OR payer_msisdn = $2)"
                ))
                .int(id)
                .text(msisdn.as_str()),
            )
            .await?;
        receipt_from_row(rows.first().ok_or(Error::UnknownReceipt)?)
    }

    /// The balance history, newest first.
    pub async fn ledger_entries(&self, msisdn: &Msisdn, limit: i64) -> Result<Vec<LedgerEntry>> {
        let rows = self
            .db()
            .read(
                Read::new(
                    "SELECT id, cash_delta, gift_delta, reason, memo, reference, created_at \
                     FROM ledger WHERE msisdn = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
                )
                .text(msisdn.as_str())
                .int(clamp(limit)),
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(LedgerEntry {
                    id: r.try_get(0)?,
                    cash_delta: Fen::new(r.try_get(1)?),
                    gift_delta: Fen::new(r.try_get(2)?),
                    reason: r.try_get(3)?,
                    memo: r.try_get(4)?,
                    reference: r.try_get(5)?,
                    created_at: from_millis(r.try_get(6)?),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::payment::PaymentCallback;
    use crate::service::topup::TopUpChannel;
    use crate::testing::TestHall;

    #[tokio::test]
    async fn history_receipts_and_ledger() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 0).await;
        let other = t.subscriber("13900139000", 0).await;
        t.insert_card(
            "26000000000000001",
            "100000000000000001",
            Fen::yuan(50),
            "DEMO",
        )
        .await
        .unwrap();
        t.top_up_by_card(&m, &m, "100000000000000001", None)
            .await
            .unwrap();
        t.clock.advance(chrono::Duration::minutes(1));
        let order = t.create_payment(&m, &m, Fen::yuan(100)).await.unwrap();
        t.payment_callback(PaymentCallback {
            order_id: order.id.clone(),
            provider_txn: "T1".into(),
            amount: order.amount,
            success: true,
        })
        .await
        .unwrap();
        t.clock.advance(chrono::Duration::minutes(1));
        let for_other = t.create_payment(&m, &other, Fen::yuan(20)).await.unwrap();
        t.simulate_payment(&m, &for_other.id, true).await.unwrap();

        let h = t.topup_history(&m, 10).await.unwrap();
        assert_eq!(h.len(), 3, "own top-ups and the one paid for another");
        assert_eq!(h[0].target, other);
        assert_eq!(h[1].order_id(), Some(order.id.as_str()));
        assert_eq!((h[1].amount, h[1].gift), (Fen::yuan(100), Fen::yuan(10)));
        assert_eq!(h[2].channel, TopUpChannel::Card);
        assert_eq!(t.topup_history(&m, 1).await.unwrap().len(), 1);
        let h_other = t.topup_history(&other, 10).await.unwrap();
        assert_eq!(h_other.len(), 1);
        assert!(h_other[0].paid_by_other());

        assert_eq!(t.receipt(&m, h[2].id).await.unwrap().amount, Fen::yuan(50));
        assert!(matches!(
            t.receipt(&other, h[2].id).await,
            Err(Error::UnknownReceipt)
        ));
        assert!(matches!(
            t.receipt(&m, 99_999).await,
            Err(Error::UnknownReceipt)
        ));

        let l = t.ledger_entries(&m, 10).await.unwrap();
        let got: Vec<(&str, Fen)> = l.iter().map(|e| (e.reason.as_str(), e.amount())).collect();
        assert_eq!(
            got,
            vec![
                ("promotion", Fen::yuan(10)),
                ("topup", Fen::yuan(100)),
                ("card", Fen::yuan(50)),
            ]
        );
        assert_eq!(l[0].gift_delta, Fen::yuan(10));
        assert_eq!(l[2].reason_zh(), "充值卡充值");
        assert!(l[2].memo.contains("26000000000000001"));
        assert_eq!(t.ledger_entries(&other, 10).await.unwrap().len(), 1);
    }
}
