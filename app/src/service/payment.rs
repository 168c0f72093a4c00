//! Online top-up: a payment order, the payment provider behind a trait (simulated here), and the
//! provider's callback. Providers retry a callback until they get an answer, and may deliver it
//! many times at once, so crediting is decided by the database: a conditional UPDATE of the
//! order picks the one callback that credits, and the ledger's unique `pay:{order}` reference
//! backs it up — both in the transaction that credits.
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rand::Rng;
use serde::Serialize;
use sqlx::Row;

use crate::clock::from_millis;
use crate::domain::{shanghai, Fen, Msisdn};
use crate::error::{is_unique_violation, Error, Result};
use crate::hall::Hall;
use crate::service::ledger::{PostError, Reason};
use crate::service::topup::{
    self, promotion_from_row, Credit, Promotion, TopUpChannel, TopUpReceipt, MAX_PAYMENT,
    MIN_PAYMENT,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    Pending,
    Paid,
    Failed,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Pending => "pending",
            PaymentStatus::Paid => "paid",
            PaymentStatus::Failed => "failed",
        }
    }

    pub fn zh(self) -> &'static str {
        match self {
            PaymentStatus::Pending => "待支付",
            PaymentStatus::Paid => "已支付",
            PaymentStatus::Failed => "支付失败",
        }
    }

    pub fn from_db(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(PaymentStatus::Pending),
            "paid" => Some(PaymentStatus::Paid),
            "failed" => Some(PaymentStatus::Failed),
            _ => None,
        }
    }
}

/// An online top-up order.
#[derive(Clone, Debug, Serialize)]
pub struct PaymentOrder {
    /// The order number: random, so knowing one order tells nothing about another.
    pub id: String,
    pub payer: Option<Msisdn>,
    pub target: Msisdn,
    pub amount: Fen,
    /// The promotion chosen when the order was made; it applies even if it ends before the
    /// payment arrives.
    pub promotion: Option<Promotion>,
    pub status: PaymentStatus,
    pub created_at: DateTime<Utc>,
    pub settled_at: Option<DateTime<Utc>>,
    /// Where to send the payer to pay; only on the order `create_payment` returns.
    pub checkout_url: Option<String>,
}

/// What a provider reports about an order's payment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentCallback {
    pub order_id: String,
    /// The provider's own transaction number; one transaction pays one order.
    pub provider_txn: String,
    pub amount: Fen,
    pub success: bool,
}

/// The answer to a callback. Every one of them is a success for the provider (HTTP 200), so it
/// stops retrying.
#[derive(Clone, Debug)]
pub enum CallbackOutcome {
    /// This callback credited the top-up.
    Credited(TopUpReceipt),
    /// The order is now marked failed; nothing was credited.
    MarkedFailed,
    /// The order was settled before (a retried or concurrent callback); nothing changed.
    AlreadyApplied,
}

/// A payment provider: it takes the payer to a checkout and later reports the outcome through
/// [`Hall::payment_callback`] (the channel that receives its callbacks authenticates them).
#[async_trait]
pub trait PaymentProvider: Send + Sync + 'static {
    /// Starts paying `order`; returns where to send the payer.
    async fn checkout(&self, order: &PaymentOrder) -> Result<String>;

    /// The simulator, when this provider is one: the demo's pay page drives it.
    fn simulator(&self) -> Option<&SimulatedProvider> {
        None
    }
}

/// A provider that pays whatever it is asked to, unless told to fail. Its checkout is a page of
/// our own web hall at [`SimulatedProvider::CHECKOUT_PATH`]`{order id}`.
#[derive(Default)]
pub struct SimulatedProvider {
    failing: AtomicBool,
}

impl SimulatedProvider {
    pub const CHECKOUT_PATH: &'static str = "/pay/sim/";

    pub fn new() -> Self {
        Self::default()
    }

    /// From now on every payment fails (or succeeds again with `false`).
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    pub fn is_failing(&self) -> bool {
        self.failing.load(Ordering::SeqCst)
    }

    /// The callback the provider sends once the payer has approved (or cancelled) `order`.
    pub fn pay(&self, order: &PaymentOrder, approve: bool) -> PaymentCallback {
        PaymentCallback {
            order_id: order.id.clone(),
            provider_txn: format!("SIM{}", uuid::Uuid::new_v4().simple()),
            amount: order.amount,
            success: approve && !self.is_failing(),
        }
    }
}

#[async_trait]
impl PaymentProvider for SimulatedProvider {
    async fn checkout(&self, order: &PaymentOrder) -> Result<String> {
        Ok(format!("{}{}", Self::CHECKOUT_PATH, order.id))
    }

    fn simulator(&self) -> Option<&SimulatedProvider> {
        Some(self)
    }
}

/// `P` + the Shanghai date and time + 20 random digits: readable on a receipt, unguessable.
fn new_order_id(now: DateTime<Utc>) -> String {
    let mut rng = rand::thread_rng();
    let random: String = (0..20)
        .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
        .collect();
    format!(
        "P{}{random}",
        now.with_timezone(&shanghai()).format("%Y%m%d%H%M%S")
    )
}

const ORDER_SELECT: &str = "SELECT o.id, o.payer_msisdn, o.target_msisdn, o.amount, o.status, \
     o.created_at, o.settled_at, p.code, p.name_zh, p.name_en, p.min_amount, p.gift \
     FROM payment_orders o LEFT JOIN promotions p ON p.code = o.promotion";

fn order_from_row(r: &sqlx::any::AnyRow) -> Result<PaymentOrder> {
    let corrupt = |what: &str| Error::Storage(format!("unreadable {what} in payment_orders"));
    let payer: Option<String> = r.try_get(1)?;
    let settled: Option<i64> = r.try_get(6)?;
    let promo_code: Option<String> = r.try_get(7)?;
    Ok(PaymentOrder {
        id: r.try_get(0)?,
        payer: payer
            .map(|p| Msisdn::parse(&p).map_err(|_| corrupt("payer")))
            .transpose()?,
        target: Msisdn::parse(&r.try_get::<String, _>(2)?).map_err(|_| corrupt("target"))?,
        amount: Fen::new(r.try_get(3)?),
        status: PaymentStatus::from_db(&r.try_get::<String, _>(4)?)
            .ok_or_else(|| corrupt("status"))?,
        created_at: from_millis(r.try_get(5)?),
        settled_at: settled.map(from_millis),
        promotion: match promo_code {
            Some(_) => Some(promotion_from_row(r, 7)?),
            None => None,
        },
        checkout_url: None,
    })
}

impl Hall {
    /// Creates an online top-up order of `amount` for `target`, paid by the signed-in `payer`
    /// (who may top up another number), with the best promotion running now, and asks the
    /// provider where the payer should pay.
    pub async fn create_payment(
        &self,
        payer: &Msisdn,
        target: &Msisdn,
        amount: Fen,
    ) -> Result<PaymentOrder> {
        if amount < MIN_PAYMENT || amount > MAX_PAYMENT {
            return Err(Error::AmountOutOfRange {
                min: MIN_PAYMENT,
                max: MAX_PAYMENT,
            });
        }
        // A suspended target may still be topped up: no require_active here.
        if !self.is_subscriber(target).await? {
            return Err(Error::UnknownSubscriber);
        }
        let now = self.now();
        let now_ms = now.timestamp_millis();
        let mut conn = self.db().pool().acquire().await?;
        let promotion = topup::best_promotion(&mut conn, now_ms, amount).await?;
        let id = new_order_id(now);
        sqlx::query(
            "INSERT INTO payment_orders (id, payer_msisdn, target_msisdn, amount, promotion, status, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&id)
        .bind(payer.as_str())
        .bind(target.as_str())
        .bind(amount.get())
        .bind(promotion.as_ref().map(|p| p.code.clone()))
        .bind(PaymentStatus::Pending.as_str())
        .bind(now_ms)
        .execute(&mut *conn)
        .await?;
        drop(conn);
        let mut order = PaymentOrder {
            id,
            payer: Some(payer.clone()),
            target: target.clone(),
            amount,
            promotion,
            status: PaymentStatus::Pending,
            created_at: now,
            settled_at: None,
            checkout_url: None,
        };
        match self.payments().checkout(&order).await {
            Ok(url) => order.checkout_url = Some(url),
            Err(e) => {
                // The payer never reached the provider: the order can never be paid.
                sqlx::query(
                    "UPDATE payment_orders SET status = 'failed', settled_at = $1 \
                     WHERE id = $2 AND status = 'pending'",
                )
                .bind(now_ms)
                .bind(&order.id)
                .execute(self.db().pool())
                .await?;
                return Err(e);
            }
        }
        Ok(order)
    }

    /// An order as its payer or its target may see it (the pay page, the result page).
    pub async fn payment_order(&self, viewer: &Msisdn, order_id: &str) -> Result<PaymentOrder> {
        let order = self.load_order(order_id).await?;
        let allowed = order.target == *viewer || order.payer.as_ref() == Some(viewer);
        if allowed {
            Ok(order)
        } else {
            // The same answer as for an order that does not exist.
            Err(Error::UnknownPayment)
        }
    }

    async fn load_order(&self, order_id: &str) -> Result<PaymentOrder> {
        let row = sqlx::query(&format!("{ORDER_SELECT} WHERE o.id = $1"))
            .bind(order_id)
            .fetch_optional(self.db().pool())
            .await?
            .ok_or(Error::UnknownPayment)?;
        order_from_row(&row)
    }

    /// The provider's report on an order. Idempotent: of any number of identical (or
    /// concurrent) success callbacks exactly one credits; the others get `AlreadyApplied`.
    /// A callback whose amount differs from the order's credits nothing.
    pub async fn payment_callback(&self, cb: PaymentCallback) -> Result<CallbackOutcome> {
        let now_ms = self.now_ms();
        let mut tx = self.db().begin().await?;
        let row = sqlx::query(&format!("{ORDER_SELECT} WHERE o.id = $1"))
            .bind(&cb.order_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(Error::UnknownPayment)?;
        let order = order_from_row(&row)?;
        if cb.amount != order.amount {
            tracing::warn!(order = %order.id, "payment callback amount differs from the order");
            return Err(Error::PaymentMismatch);
        }

        if !cb.success {
            // Only a pending order fails: a late failure report never undoes a payment.
            let n = sqlx::query(
                "UPDATE payment_orders SET status = 'failed', settled_at = $1 \
                 WHERE id = $2 AND status = 'pending'",
            )
            .bind(now_ms)
            .bind(&order.id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            return Ok(if n == 1 {
                CallbackOutcome::MarkedFailed
            } else {
                CallbackOutcome::AlreadyApplied
            });
        }

        // The one callback whose UPDATE changes the row credits. A failed order may still be
        // paid (the payer retried at the provider, which took the money), but never twice.
        let won = sqlx::query(
            "UPDATE payment_orders SET status = 'paid', provider_txn = $1, settled_at = $2 \
             WHERE id = $3 AND status <> 'paid'",
        )
        .bind(&cb.provider_txn)
        .bind(now_ms)
        .bind(&order.id)
        .execute(&mut *tx)
        .await;
        let won = match won {
            Ok(r) => r.rows_affected() == 1,
            // The provider's transaction already paid another order.
            Err(e) if is_unique_violation(&e) => return Err(Error::PaymentMismatch),
            Err(e) => return Err(e.into()),
        };
        if !won {
            return Ok(CallbackOutcome::AlreadyApplied);
        }

        let reference = format!("pay:{}", order.id);
        let gift_reference = format!("promo:{}", order.id);
        let memo = match order.payer.as_ref().filter(|p| **p != order.target) {
            Some(p) => format!("在线充值(订单 {},由 {} 代充)", order.id, p.masked()),
            None => format!("在线充值(订单 {})", order.id),
        };
        let credited = topup::credit(
            &mut tx,
            now_ms,
            Credit {
                target: &order.target,
                payer: order.payer.as_ref(),
                channel: TopUpChannel::Payment,
                amount: order.amount,
                reason: Reason::TopUp,
                memo: &memo,
                reference: &reference,
                promotion: order
                    .promotion
                    .as_ref()
                    .map(|p| (p, gift_reference.as_str())),
                notify_target: true,
            },
        )
        .await;
        match credited {
            Ok(receipt) => {
                tx.commit().await?;
                Ok(CallbackOutcome::Credited(receipt))
            }
            // The ledger already holds this payment: it was credited before.
            Err(PostError::Duplicate) => Ok(CallbackOutcome::AlreadyApplied),
            Err(PostError::Other(e)) => Err(e),
        }
    }

    /// The demo's pay page: the simulated provider "pays" (or, with `approve = false`, the
    /// payer cancels) and delivers its callback. Only the payer or the target may drive it.
    pub async fn simulate_payment(
        &self,
        viewer: &Msisdn,
        order_id: &str,
        approve: bool,
    ) -> Result<CallbackOutcome> {
        let sim = self.payments().simulator().ok_or(Error::UnknownPayment)?;
        let order = self.payment_order(viewer, order_id).await?;
        let cb = sim.pay(&order, approve);
        self.payment_callback(cb).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestHall;

    fn ok_callback(order: &PaymentOrder) -> PaymentCallback {
        PaymentCallback {
            order_id: order.id.clone(),
            provider_txn: format!("TXN-{}", order.id),
            amount: order.amount,
            success: true,
        }
    }

    async fn count(t: &TestHall, sql: &str, m: &Msisdn) -> i64 {
        sqlx::query(sql)
            .bind(m.as_str())
            .fetch_one(t.db().pool())
            .await
            .unwrap()
            .try_get(0)
            .unwrap()
    }

    async fn ledger_rows(t: &TestHall, m: &Msisdn) -> i64 {
        count(t, "SELECT COUNT(*) FROM ledger WHERE msisdn = $1", m).await
    }

    async fn topup_rows(t: &TestHall, m: &Msisdn) -> i64 {
        count(t, "SELECT COUNT(*) FROM topups WHERE target_msisdn = $1", m).await
    }

    #[test]
    fn order_ids_are_random_and_dated() {
        let now = crate::testing::default_now();
        let a = new_order_id(now);
        let b = new_order_id(now);
        assert_ne!(a, b);
        assert_eq!(a.len(), 1 + 14 + 20);
        assert!(a.starts_with("P20261115100000"), "{a}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_thousand_identical_callbacks_credit_once() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 0).await;
        let order = t.create_payment(&m, &m, Fen::yuan(50)).await.unwrap();
        let cb = ok_callback(&order);
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..1000 {
            let hall = t.hall.clone();
            let cb = cb.clone();
            set.spawn(async move { hall.payment_callback(cb).await });
        }
        let (mut credited, mut already) = (0, 0);
        while let Some(r) = set.join_next().await {
            match r.unwrap().expect("no callback may fail") {
                CallbackOutcome::Credited(_) => credited += 1,
                CallbackOutcome::AlreadyApplied => already += 1,
                CallbackOutcome::MarkedFailed => panic!("a success callback marked failed"),
            }
        }
        assert_eq!((credited, already), (1, 999));
        assert_eq!(t.balance(&m).await.unwrap().cash, Fen::yuan(50));
        assert_eq!(ledger_rows(&t, &m).await, 1);
        assert_eq!(topup_rows(&t, &m).await, 1);
        assert_eq!(t.outbox_for(&m, 10).await.unwrap().len(), 1);
        let o = t.payment_order(&m, &order.id).await.unwrap();
        assert_eq!(o.status, PaymentStatus::Paid);
        // A provider retry after the success still gets a success answer.
        assert!(matches!(
            t.payment_callback(cb).await.unwrap(),
            CallbackOutcome::AlreadyApplied
        ));
    }

    #[tokio::test]
    async fn amounts_outside_10_to_5000_yuan_are_refused() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 0).await;
        for bad in [999, 500_001, 0, -1000] {
            assert!(
                matches!(
                    t.create_payment(&m, &m, Fen::new(bad)).await,
                    Err(Error::AmountOutOfRange { .. })
                ),
                "{bad}"
            );
        }
        for good in [1000, 500_000] {
            let o = t.create_payment(&m, &m, Fen::new(good)).await.unwrap();
            assert_eq!(o.status, PaymentStatus::Pending);
            assert_eq!(
                o.checkout_url.as_deref(),
                Some(format!("/pay/sim/{}", o.id).as_str())
            );
        }
        assert_eq!(
            count(
                &t,
                "SELECT COUNT(*) FROM payment_orders WHERE target_msisdn = $1",
                &m
            )
            .await,
            2
        );
    }

    #[tokio::test]
    async fn the_target_must_be_a_subscriber() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 0).await;
        let stranger = Msisdn::parse("13900000000").unwrap();
        assert!(matches!(
            t.create_payment(&m, &stranger, Fen::yuan(50)).await,
            Err(Error::UnknownSubscriber)
        ));
    }

    #[tokio::test]
    async fn a_mismatched_callback_leaves_nothing_behind() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 0).await;
        let order = t.create_payment(&m, &m, Fen::yuan(600)).await.unwrap();
        let mut cb = ok_callback(&order);
        cb.amount = Fen::yuan(6000);
        assert!(matches!(
            t.payment_callback(cb).await,
            Err(Error::PaymentMismatch)
        ));
        assert_eq!(ledger_rows(&t, &m).await, 0);
        assert_eq!(topup_rows(&t, &m).await, 0);
        assert!(t.outbox_for(&m, 10).await.unwrap().is_empty());
        assert_eq!(t.balance(&m).await.unwrap().total(), Fen::ZERO);
        let o = t.payment_order(&m, &order.id).await.unwrap();
        assert_eq!((o.status, o.settled_at), (PaymentStatus::Pending, None));
        // The genuine callback still credits afterwards.
        assert!(matches!(
            t.payment_callback(ok_callback(&order)).await.unwrap(),
            CallbackOutcome::Credited(_)
        ));
    }

    #[tokio::test]
    async fn unknown_orders_are_refused() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 0).await;
        let cb = PaymentCallback {
            order_id: "P2026111510000012345678901234567890".into(),
            provider_txn: "T1".into(),
            amount: Fen::yuan(50),
            success: true,
        };
        assert!(matches!(
            t.payment_callback(cb).await,
            Err(Error::UnknownPayment)
        ));
        assert_eq!(ledger_rows(&t, &m).await, 0);
    }

    #[tokio::test]
    async fn a_failure_callback_marks_the_order_failed() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 0).await;
        let order = t.create_payment(&m, &m, Fen::yuan(50)).await.unwrap();
        let mut cb = ok_callback(&order);
        cb.success = false;
        assert!(matches!(
            t.payment_callback(cb.clone()).await.unwrap(),
            CallbackOutcome::MarkedFailed
        ));
        assert!(matches!(
            t.payment_callback(cb).await.unwrap(),
            CallbackOutcome::AlreadyApplied
        ));
        let o = t.payment_order(&m, &order.id).await.unwrap();
        assert_eq!(o.status, PaymentStatus::Failed);
        assert_eq!(ledger_rows(&t, &m).await, 0);
        assert_eq!(t.balance(&m).await.unwrap().total(), Fen::ZERO);

        // A failure report arriving after the payment never undoes it.
        let paid = t.create_payment(&m, &m, Fen::yuan(20)).await.unwrap();
        t.payment_callback(ok_callback(&paid)).await.unwrap();
        let mut late = ok_callback(&paid);
        late.success = false;
        assert!(matches!(
            t.payment_callback(late).await.unwrap(),
            CallbackOutcome::AlreadyApplied
        ));
        let o = t.payment_order(&m, &paid.id).await.unwrap();
        assert_eq!(o.status, PaymentStatus::Paid);
        assert_eq!(t.balance(&m).await.unwrap().cash, Fen::yuan(20));
    }

    #[tokio::test]
    async fn the_simulator_can_fail_and_succeed() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 0).await;
        let order = t.create_payment(&m, &m, Fen::yuan(30)).await.unwrap();
        let sim = t.payments().simulator().unwrap();
        sim.set_failing(true);
        assert!(matches!(
            t.simulate_payment(&m, &order.id, true).await.unwrap(),
            CallbackOutcome::MarkedFailed
        ));
        sim.set_failing(false);
        // The payer tries again and the provider takes the money this time: it is credited.
        assert!(matches!(
            t.simulate_payment(&m, &order.id, true).await.unwrap(),
            CallbackOutcome::Credited(_)
        ));
        assert_eq!(t.balance(&m).await.unwrap().cash, Fen::yuan(30));
        // Someone else cannot drive (or even see) the order.
        let other = t.subscriber("13900139000", 0).await;
        assert!(matches!(
            t.simulate_payment(&other, &order.id, true).await,
            Err(Error::UnknownPayment)
        ));
    }

    #[tokio::test]
    async fn a_promotion_adds_gift_balance_spent_after_cash() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 0).await;
        let order = t.create_payment(&m, &m, Fen::yuan(600)).await.unwrap();
        assert_eq!(order.promotion.as_ref().unwrap().code, "YC600");
        let CallbackOutcome::Credited(r) = t.payment_callback(ok_callback(&order)).await.unwrap()
        else {
            panic!("not credited")
        };
        assert_eq!((r.amount, r.gift), (Fen::yuan(600), Fen::yuan(300)));
        assert_eq!(r.balance_after, Some(Fen::yuan(900)));
        let b = t.balance(&m).await.unwrap();
        assert_eq!((b.cash, b.gift), (Fen::yuan(600), Fen::yuan(300)));
        let refs: Vec<String> =
            sqlx::query("SELECT reference FROM ledger WHERE msisdn = $1 ORDER BY id")
                .bind(m.as_str())
                .fetch_all(t.db().pool())
                .await
                .unwrap()
                .iter()
                .map(|r| r.try_get(0).unwrap())
                .collect();
        assert_eq!(
            refs,
            vec![format!("pay:{}", order.id), format!("promo:{}", order.id)]
        );
        // Spending ¥650 takes all the cash first, then ¥50 of the gift.
        t.adjust_balance(&m, -Fen::yuan(650), "测试扣费")
            .await
            .unwrap();
        let b = t.balance(&m).await.unwrap();
        assert_eq!((b.cash, b.gift), (Fen::ZERO, Fen::yuan(250)));
        let sms = &t.outbox_for(&m, 1).await.unwrap()[0];
        assert!(
            sms.body
                .starts_with("您已成功充值 600.00元,当前余额 900.00元。"),
            "{}",
            sms.body
        );
        assert!(sms.body.contains("赠送余额 300.00元"), "{}", sms.body);
    }

    #[tokio::test]
    async fn the_promotion_is_the_one_chosen_with_the_order() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 0).await;
        let order = t.create_payment(&m, &m, Fen::yuan(100)).await.unwrap();
        // The promotion ends before the payment arrives: the payer still gets what was shown.
        sqlx::query("UPDATE promotions SET active = 0")
            .execute(t.db().pool())
            .await
            .unwrap();
        t.payment_callback(ok_callback(&order)).await.unwrap();
        assert_eq!(t.balance(&m).await.unwrap().gift, Fen::yuan(10));
        let none = t.create_payment(&m, &m, Fen::yuan(100)).await.unwrap();
        assert!(none.promotion.is_none());
    }

    #[tokio::test]
    async fn topping_up_another_number_tells_both() {
        let t = TestHall::empty().await;
        let payer = t.subscriber("13900139000", 0).await;
        let target = t.subscriber("13800138000", 1000).await;
        let order = t
            .create_payment(&payer, &target, Fen::yuan(50))
            .await
            .unwrap();
        t.payment_callback(ok_callback(&order)).await.unwrap();
        assert_eq!(t.balance(&target).await.unwrap().cash, Fen::yuan(60));
        assert_eq!(t.balance(&payer).await.unwrap().cash, Fen::ZERO);
        let to_target = t.outbox_for(&target, 10).await.unwrap();
        assert_eq!(to_target.len(), 1);
        assert_eq!(to_target[0].kind, "topup");
        assert!(
            to_target[0]
                .body
                .starts_with("您已成功充值 50.00元,当前余额 60.00元。"),
            "{}",
            to_target[0].body
        );
        assert!(to_target[0].body.contains("139****9000"));
        let to_payer = t.outbox_for(&payer, 10).await.unwrap();
        assert_eq!(to_payer.len(), 1);
        assert!(
            to_payer[0]
                .body
                .starts_with("您为 138****8000 充值 50.00元 已到账"),
            "{}",
            to_payer[0].body
        );
        // Both see the receipt; a third number does not.
        let r = t.topup_history(&payer, 10).await.unwrap();
        assert_eq!(r.len(), 1);
        assert!(t.receipt(&target, r[0].id).await.is_ok());
        let third = t.subscriber("13700137000", 0).await;
        assert!(matches!(
            t.receipt(&third, r[0].id).await,
            Err(Error::UnknownReceipt)
        ));
        assert!(matches!(
            t.payment_order(&third, &order.id).await,
            Err(Error::UnknownPayment)
        ));
    }

    #[tokio::test]
    async fn one_provider_transaction_pays_one_order() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 0).await;
        let a = t.create_payment(&m, &m, Fen::yuan(50)).await.unwrap();
        let b = t.create_payment(&m, &m, Fen::yuan(50)).await.unwrap();
        t.payment_callback(ok_callback(&a)).await.unwrap();
        let mut replay = ok_callback(&b);
        replay.provider_txn = ok_callback(&a).provider_txn;
        assert!(matches!(
            t.payment_callback(replay).await,
            Err(Error::PaymentMismatch)
        ));
        assert_eq!(t.balance(&m).await.unwrap().cash, Fen::yuan(50));
        let o = t.payment_order(&m, &b.id).await.unwrap();
        assert_eq!(o.status, PaymentStatus::Pending);
    }
}
