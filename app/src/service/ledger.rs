//! The balance ledger: every change to a balance is one entry with a reason and a unique
//! reference; `accounts` holds the running sums, updated in the same transaction.
use std::collections::HashMap;

use sqlx::{AnyConnection, Row};

use crate::domain::{Fen, Msisdn, Status};
use crate::error::{is_unique_violation, Error, Result};
use crate::store::coalesce::padded;
use crate::store::db::placeholders;
use crate::store::reads::{Read, ReadRow};
use crate::store::Db;

/// Why money moved; stored as text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    TopUp,
    Card,
    Promotion,
    Charge,
    BillCredit,
    Adjustment,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::TopUp => "topup",
            Reason::Card => "card",
            Reason::Promotion => "promotion",
            Reason::Charge => "charge",
            Reason::BillCredit => "bill_credit",
            Reason::Adjustment => "adjustment",
        }
    }
}

/// One change to post. `amount` > 0 credits, < 0 debits.
pub(crate) struct Posting<'a> {
    pub msisdn: &'a Msisdn,
    pub amount: Fen,
    /// Credits go to the gift balance (promotions) instead of cash.
    pub to_gift: bool,
    /// Debits may take cash below zero (usage already consumed) instead of being refused.
    pub allow_negative: bool,
    pub reason: Reason,
    pub memo: &'a str,
    pub reference: &'a str,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Balance {
    pub cash: Fen,
    pub gift: Fen,
}

impl Balance {
    pub fn total(self) -> Fen {
        self.cash + self.gift
    }
}

#[derive(Debug)]
pub(crate) enum PostError {
    /// The reference was posted before: the change already happened.
    Duplicate,
    Other(Error),
}

impl From<sqlx::Error> for PostError {
    fn from(e: sqlx::Error) -> Self {
        if is_unique_violation(&e) {
            PostError::Duplicate
        } else {
            PostError::Other(e.into())
        }
    }
}

impl From<Error> for PostError {
    fn from(e: Error) -> Self {
        PostError::Other(e)
    }
}

impl From<PostError> for Error {
    fn from(e: PostError) -> Self {
        match e {
            PostError::Duplicate => Error::Storage("duplicate ledger reference".into()),
            PostError::Other(e) => e,
        }
    }
}

/// Locks the subscriber's account row for the rest of the transaction and reads it. Every
/// change to money or points starts here, so concurrent changes to one subscriber queue up.
pub(crate) async fn lock_account(conn: &mut AnyConnection, msisdn: &Msisdn) -> Result<Balance> {
    let row = sqlx::query(
        "UPDATE accounts SET version = version + 1 WHERE msisdn = $1 RETURNING cash, gift",
    )
    .bind(msisdn.as_str())
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(Error::UnknownSubscriber)?;
    Ok(Balance {
        cash: Fen::new(row.try_get(0)?),
        gift: Fen::new(row.try_get(1)?),
    })
}

/// Posts one change inside the caller's transaction. Debits spend cash first, then gift
/// balance; gift balance never goes below zero. A credit that brings a number suspended for
/// arrears back above zero resumes it.
pub(crate) async fn post(
    conn: &mut AnyConnection,
    now_ms: i64,
    p: Posting<'_>,
) -> Result<Balance, PostError> {
    let before = lock_account(conn, p.msisdn).await?;
    let (cash_delta, gift_delta) = split(before, &p)?;
    sqlx::query(
        "INSERT INTO ledger (msisdn, cash_delta, gift_delta, reason, memo, reference, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(p.msisdn.as_str())
    .bind(cash_delta.get())
    .bind(gift_delta.get())
    .bind(p.reason.as_str())
    .bind(p.memo)
    .bind(p.reference)
    .bind(now_ms)
    .execute(&mut *conn)
    .await?;
    let after = Balance {
        cash: before.cash + cash_delta,
        gift: before.gift + gift_delta,
    };
    let negative = after.total().is_negative();
    sqlx::query(
        "UPDATE accounts SET cash = $1, gift = $2, \
         negative_since = CASE WHEN $3 = 0 THEN NULL ELSE COALESCE(negative_since, $4) END \
         WHERE msisdn = $5",
    )
    .bind(after.cash.get())
    .bind(after.gift.get())
    .bind(negative as i64)
    .bind(now_ms)
    .bind(p.msisdn.as_str())
    .execute(&mut *conn)
    .await?;
    if p.amount.get() > 0 && after.total().get() > 0 {
        sqlx::query("UPDATE subscribers SET status = $1 WHERE msisdn = $2 AND status = $3")
            .bind(Status::Active.as_str())
            .bind(p.msisdn.as_str())
            .bind(Status::SuspendedArrears.as_str())
            .execute(&mut *conn)
            .await?;
    }
    Ok(after)
}

fn split(before: Balance, p: &Posting<'_>) -> Result<(Fen, Fen), PostError> {
    if p.amount.get() >= 0 {
        return Ok(if p.to_gift {
            (Fen::ZERO, p.amount)
        } else {
            (p.amount, Fen::ZERO)
        });
    }
    let need = p.amount.abs();
    let from_cash = need.min(before.cash.max(Fen::ZERO));
    let from_gift = (need - from_cash).min(before.gift);
    let short = need - from_cash - from_gift;
    if short.get() > 0 && !p.allow_negative {
        return Err(PostError::Other(Error::InsufficientBalance {
            needed: need,
            available: before.total().max(Fen::ZERO),
        }));
    }
    Ok((-(from_cash + short), -from_gift))
}

pub(crate) async fn load_balance(conn: &mut AnyConnection, msisdn: &Msisdn) -> Result<Balance> {
    balance_from(&balance_read(msisdn).fetch(conn).await?)
}

/// The read behind [`load_balance`], for a batch ([`crate::store::reads`]).
pub(crate) fn balance_read(msisdn: &Msisdn) -> Read {
    Read::new("SELECT cash, gift FROM accounts WHERE msisdn = $1")
        .text(msisdn.as_str())
        .at_most_one()
}

pub(crate) fn balance_from(rows: &[ReadRow]) -> Result<Balance> {
    let row = rows.first().ok_or(Error::UnknownSubscriber)?;
    Ok(Balance {
        cash: Fen::new(row.try_get(0)?),
        gift: Fen::new(row.try_get(1)?),
    })
}

/// The balance and status of each of `numbers` that is a subscriber.
async fn balances_and_statuses(
    db: Db,
    numbers: Vec<String>,
) -> Result<HashMap<String, (Balance, Status)>> {
    let numbers = padded(numbers);
    let sql = db.batch_statement(numbers.len(), || {
        format!(
            "SELECT a.msisdn, a.cash, a.gift, s.status FROM accounts a \
         JOIN subscribers s ON s.msisdn = a.msisdn WHERE a.msisdn IN ({})",
            placeholders(1, numbers.len(), 1)
        )
    });
    let read = numbers
        .into_iter()
        .fold(Read::new(sql.to_string()), |r, m| r.text(m));
    let rows = db.read(read).await?;
    rows.iter()
        .map(|row| {
            let status: String = row.try_get(3)?;
            let status = Status::from_db(&status)
                .ok_or_else(|| Error::Storage(format!("unknown status {status:?}")))?;
            let balance = Balance {
                cash: Fen::new(row.try_get(1)?),
                gift: Fen::new(row.try_get(2)?),
            };
            Ok((row.try_get(0)?, (balance, status)))
        })
        .collect()
}

impl crate::hall::Hall {
    /// The balance and the number's status in one read (the balance query by SMS, the
    /// gateway's commonest command).
    /// Queries asked at about the same time share one statement
    /// ([`crate::store::coalesce`]).
    pub async fn balance_and_status(&self, msisdn: &Msisdn) -> Result<(Balance, Status)> {
        let db = self.db().clone();
        self.balance_reads()
            .get(msisdn.as_str().to_owned(), move |keys| {
                balances_and_statuses(db.clone(), keys)
            })
            .await?
            .ok_or(Error::UnknownSubscriber)
    }

    pub async fn balance(&self, msisdn: &Msisdn) -> Result<Balance> {
        let mut conn = self.db().pool().acquire().await?;
        load_balance(&mut conn, msisdn).await
    }

    /// An operator's correction or an opening deposit; may take the balance below zero.
    pub async fn adjust_balance(
        &self,
        msisdn: &Msisdn,
        amount: Fen,
        memo: &str,
    ) -> Result<Balance> {
        let now = self.now_ms();
        let reference = format!("adjust:{}", uuid::Uuid::new_v4().simple());
        let mut tx = self.db().begin().await?;
        let after = post(
            &mut tx,
            now,
            Posting {
                msisdn,
                amount,
                to_gift: false,
                allow_negative: true,
                reason: Reason::Adjustment,
                memo,
                reference: &reference,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn posting(amount: i64, allow_negative: bool) -> Posting<'static> {
        static M: std::sync::OnceLock<Msisdn> = std::sync::OnceLock::new();
        Posting {
            msisdn: M.get_or_init(|| Msisdn::parse("13800138000").unwrap()),
            amount: Fen::new(amount),
            to_gift: false,
            allow_negative,
            reason: Reason::Charge,
            memo: "",
            reference: "",
        }
    }

    fn bal(cash: i64, gift: i64) -> Balance {
        Balance {
            cash: Fen::new(cash),
            gift: Fen::new(gift),
        }
    }

    /// Balance queries asked together are read together, and each caller gets its own
    /// number's balance and status (a stranger: unknown subscriber).
    #[tokio::test]
    async fn balances_asked_together_are_each_the_callers_own() {
        let t = crate::testing::TestHall::empty().await;
        let a = t.subscriber("13800138000", 1_000).await;
        let b = t.subscriber("13800138001", 2_500).await;
        t.suspend_by_request(&b).await.unwrap();
        let stranger = Msisdn::parse("13900000001").unwrap();
        let asks = (0..30).map(|i| {
            let m = [&a, &b, &stranger][i % 3].clone();
            let t = &t;
            async move { (m.clone(), t.balance_and_status(&m).await) }
        });
        for (m, got) in futures::future::join_all(asks).await {
            match got {
                Ok((balance, status)) if m == a => {
                    assert_eq!((balance, status), (bal(1_000, 0), Status::Active))
                }
                Ok((balance, status)) if m == b => {
                    assert_eq!(
                        (balance, status),
                        (bal(2_500, 0), Status::SuspendedByRequest)
                    )
                }
                other => assert!(
                    m == stranger && matches!(other, Err(Error::UnknownSubscriber)),
                    "{m}: {other:?}"
                ),
            }
        }
    }

    #[test]
    fn debits_spend_cash_before_gift() {
        assert_eq!(
            split(bal(500, 300), &posting(-600, false)).unwrap(),
            (Fen::new(-500), Fen::new(-100))
        );
        assert_eq!(
            split(bal(500, 300), &posting(-200, false)).unwrap(),
            (Fen::new(-200), Fen::ZERO)
        );
    }

    #[test]
    fn refuses_or_goes_negative_in_cash_only() {
        assert!(matches!(
            split(bal(100, 50), &posting(-200, false)),
            Err(PostError::Other(Error::InsufficientBalance { .. }))
        ));
        assert_eq!(
            split(bal(100, 50), &posting(-200, true)).unwrap(),
            (Fen::new(-150), Fen::new(-50))
        );
        assert_eq!(
            split(bal(-100, 50), &posting(-200, true)).unwrap(),
            (Fen::new(-150), Fen::new(-50))
        );
    }
}
