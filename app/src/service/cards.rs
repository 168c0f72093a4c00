//! Recharge cards (充值卡): a 17-digit serial printed on the card and an 18-digit PIN under the
//! scratch panel, worth ¥10/20/30/50/100, usable once. The PIN is never stored: the database
//! keeps a SHA-256 digest of it under a fixed prefix, which still finds a card by PIN alone (the
//! SMS command `CZ<PIN>` gives no serial). 10^18 possible PINs make a plain digest safe from
//! brute force; five wrong PINs a day per payer close card top-up for the rest of that day.
use std::time::Duration;

use chrono::{DateTime, Days, TimeZone, Utc};
use rand::Rng;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::domain::{shanghai, Fen, Msisdn};
use crate::error::{Error, Invalid, Result};
use crate::hall::Hall;
use crate::service::ledger::{self, PostError, Reason};
use crate::service::topup::{self, Credit, TopUpChannel, TopUpReceipt};

/// The face values on sale.
pub const CARD_VALUES: [Fen; 5] = [
    Fen::yuan(10),
    Fen::yuan(20),
    Fen::yuan(30),
    Fen::yuan(50),
    Fen::yuan(100),
];

/// Wrong PINs a payer may enter in one Shanghai calendar day.
pub const WRONG_PINS_PER_DAY: i64 = 5;

const PIN_DIGEST_PREFIX: &str = "openhall/recharge-card-pin/v1:";

/// A freshly issued card; the only moment its PIN exists in clear (to be printed).
#[derive(Clone, Serialize)]
pub struct IssuedCard {
    pub serial: String,
    pub pin: String,
    pub value: Fen,
}

impl std::fmt::Debug for IssuedCard {
    // Debug output ends up in logs: never a PIN there.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCard")
            .field("serial", &self.serial)
            .field("pin", &"******")
            .field("value", &self.value)
            .finish()
    }
}

/// Digits only, with the spaces and dashes people type between groups removed.
fn digits(input: &str, len: usize) -> Option<String> {
    let d: String = input.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    (d.len() == len && d.bytes().all(|b| b.is_ascii_digit())).then_some(d)
}

pub fn parse_pin(input: &str) -> Result<String, Invalid> {
    digits(input, 18).ok_or(Invalid::CardPin)
}

pub fn parse_serial(input: &str) -> Result<String, Invalid> {
    digits(input, 17).ok_or(Invalid::CardSerial)
}

fn pin_digest(pin: &str) -> String {
    hex::encode(Sha256::digest(
        format!("{PIN_DIGEST_PREFIX}{pin}").as_bytes(),
    ))
}

fn random_digits(rng: &mut impl Rng, len: usize) -> String {
    (0..len)
        .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
        .collect()
}

/// The wrong-PIN counter's key for `payer` on the Shanghai day containing `now`, and how long
/// the counter must live (to the end of that day; the day in the key is what resets it).
fn wrong_pin_key(payer: &Msisdn, now: DateTime<Utc>) -> (String, Duration) {
    let local = now.with_timezone(&shanghai());
    let day = local.date_naive();
    let next_midnight = day
        .checked_add_days(Days::new(1))
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .and_then(|t| shanghai().from_local_datetime(&t).single())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(now + chrono::Duration::days(1));
    let left = (next_midnight - now)
        .to_std()
        .unwrap_or(Duration::from_secs(60));
    (
        format!("card_pin_wrong:{}:{}", payer.as_str(), day.format("%Y%m%d")),
        left + Duration::from_secs(60),
    )
}

impl Hall {
    /// Issues `count` cards of `value` in `batch` with random serials and PINs, and returns
    /// them for printing (`server seed`). Nothing but the PIN's digest is stored.
    pub async fn issue_cards(
        &self,
        batch: &str,
        count: usize,
        value: Fen,
    ) -> Result<Vec<IssuedCard>> {
        if !CARD_VALUES.contains(&value) || count == 0 || count > 10_000 || batch.is_empty() {
            return Err(Invalid::Amount.into());
        }
        let now = self.now_ms();
        let mut out = Vec::with_capacity(count);
        let mut tx = self.db().begin().await?;
        while out.len() < count {
            let (serial, pin) = {
                let mut rng = rand::thread_rng();
                // Serials start with a non-zero digit so they never lose one as a number.
                let serial = format!("{}{}", rng.gen_range(1..10u8), random_digits(&mut rng, 16));
                (serial, random_digits(&mut rng, 18))
            };
            // A clash of serial or PIN with an existing card inserts nothing: draw again.
            let n = sqlx::query(
                "INSERT INTO recharge_cards (serial, pin_digest, value, batch, created_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            )
            .bind(&serial)
            .bind(pin_digest(&pin))
            .bind(value.get())
            .bind(batch)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 1 {
                out.push(IssuedCard { serial, pin, value });
            }
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Adds one card with a known serial and PIN (the fixed demo cards).
    pub async fn insert_card(
        &self,
        serial: &str,
        pin: &str,
        value: Fen,
        batch: &str,
    ) -> Result<()> {
        let serial = parse_serial(serial)?;
        let pin = parse_pin(pin)?;
        if !CARD_VALUES.contains(&value) {
            return Err(Invalid::Amount.into());
        }
        sqlx::query(
            "INSERT INTO recharge_cards (serial, pin_digest, value, batch, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&serial)
        .bind(pin_digest(&pin))
        .bind(value.get())
        .bind(batch)
        .bind(self.now_ms())
        .execute(self.db().pool())
        .await?;
        Ok(())
    }

    /// Tops up `target` with a recharge card, paid by `payer` (the same number for `CZ<PIN>`).
    /// The serial is optional: the PIN alone identifies a card. A suspended number may top up.
    pub async fn top_up_by_card(
        &self,
        payer: &Msisdn,
        target: &Msisdn,
        pin: &str,
        serial: Option<&str>,
    ) -> Result<TopUpReceipt> {
        let pin = parse_pin(pin)?;
        let serial = serial.map(parse_serial).transpose()?;
        let now = self.now();
        let now_ms = now.timestamp_millis();
        let (wrong_key, wrong_ttl) = wrong_pin_key(payer, now);
        // Checked before the PIN is tried: once blocked, even the right PIN is refused today.
        // (Attempts racing at the fifth may each get one more guess; against 10^18 PINs that
        // is nothing, and it spares counting right PINs as attempts.)
        let wrong_today = self
            .eph()
            .get(&wrong_key)
            .await?
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0);
        if wrong_today >= WRONG_PINS_PER_DAY {
            return Err(Error::CardBlockedToday);
        }

        let digest = pin_digest(&pin);
        let mut tx = self.db().begin().await?;
        // The target's account row first (as every money change does); it also refuses a
        // number that is not ours before the card is touched.
        ledger::lock_account(&mut tx, target).await?;
        // Single use, decided by the database: of two concurrent uses one UPDATE changes the
        // row and the other finds `used_by` set.
        let used = sqlx::query(
            "UPDATE recharge_cards SET used_by = $1, used_at = $2 \
             WHERE pin_digest = $3 AND used_by IS NULL AND ($4 = '' OR serial = $4) \
             RETURNING serial, value",
        )
        .bind(target.as_str())
        .bind(now_ms)
        .bind(&digest)
        .bind(serial.clone().unwrap_or_default())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(card) = used else {
            let exists_used = sqlx::query(
                "SELECT 1 FROM recharge_cards WHERE pin_digest = $1 AND used_by IS NOT NULL \
                 AND ($2 = '' OR serial = $2)",
            )
            .bind(&digest)
            .bind(serial.unwrap_or_default())
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
            drop(tx);
            if exists_used {
                // A right PIN for a spent card is not a guess: it does not count.
                return Err(Error::CardUsed);
            }
            self.eph().incr(&wrong_key, wrong_ttl).await?;
            return Err(Error::CardInvalid);
        };
        let card_serial: String = card.try_get(0)?;
        let value = Fen::new(card.try_get(1)?);

        let reference = format!("card:{card_serial}");
        let memo = match Some(payer).filter(|p| *p != target) {
            Some(p) => format!("充值卡充值(序列号 {card_serial},由 {} 代充)", p.masked()),
            None => format!("充值卡充值(序列号 {card_serial})"),
        };
        let receipt = topup::credit(
            &mut tx,
            now_ms,
            Credit {
                target,
                payer: Some(payer),
                channel: TopUpChannel::Card,
                amount: value,
                reason: Reason::Card,
                memo: &memo,
                reference: &reference,
                promotion: None,
                notify_target: self.change_notices() || payer != target,
            },
        )
        .await
        .map_err(|e| match e {
            // The card row said unused, yet its credit exists: treat it as used.
            PostError::Duplicate => Error::CardUsed,
            PostError::Other(e) => e,
        })?;
        tx.commit().await?;
        Ok(receipt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Status;
    use crate::testing::TestHall;

    const SERIAL: &str = "26000000000000001";
    const PIN: &str = "100000000000000001";

    async fn with_demo_card(t: &TestHall) {
        t.insert_card(SERIAL, PIN, Fen::yuan(50), "DEMO")
            .await
            .unwrap();
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
    fn formats() {
        assert_eq!(parse_pin("1000 0000 0000 0000 01").unwrap(), PIN);
        assert_eq!(parse_pin("10000000000000000"), Err(Invalid::CardPin));
        assert_eq!(parse_pin("1000000000000000011"), Err(Invalid::CardPin));
        assert_eq!(parse_pin("10000000000000000a"), Err(Invalid::CardPin));
        assert_eq!(parse_serial("2600-0000-0000-00001").unwrap(), SERIAL);
        assert_eq!(parse_serial("260000000000000012"), Err(Invalid::CardSerial));
        assert_ne!(pin_digest(PIN), pin_digest("100000000000000002"));
        assert_eq!(pin_digest(PIN).len(), 64);
        assert!(!format!(
            "{:?}",
            IssuedCard {
                serial: SERIAL.into(),
                pin: PIN.into(),
                value: Fen::yuan(50)
            }
        )
        .contains(PIN));
    }

    #[test]
    fn the_wrong_pin_day_is_the_shanghai_day() {
        let m = Msisdn::parse("13800138000").unwrap();
        // 2026-11-15 23:59 and 2026-11-16 00:01 in Shanghai (15:59 / 16:01 UTC).
        let late = Utc.with_ymd_and_hms(2026, 11, 15, 15, 59, 0).unwrap();
        let early = Utc.with_ymd_and_hms(2026, 11, 15, 16, 1, 0).unwrap();
        let (k1, ttl) = wrong_pin_key(&m, late);
        let (k2, _) = wrong_pin_key(&m, early);
        assert!(
            k1.ends_with(":20261115") && k2.ends_with(":20261116"),
            "{k1} {k2}"
        );
        assert_eq!(ttl, Duration::from_secs(120));
    }

    #[tokio::test]
    async fn a_card_tops_up_once() {
        let t = TestHall::empty().await;
        with_demo_card(&t).await;
        let m = t.subscriber("13800138000", 1000).await;
        let r = t.top_up_by_card(&m, &m, PIN, None).await.unwrap();
        assert_eq!((r.amount, r.gift), (Fen::yuan(50), Fen::ZERO));
        assert_eq!(r.channel, TopUpChannel::Card);
        assert_eq!(r.card_serial(), Some(SERIAL));
        assert_eq!(r.balance_after, Some(Fen::yuan(60)));
        assert_eq!(t.balance(&m).await.unwrap().cash, Fen::yuan(60));
        let sms = &t.outbox_for(&m, 1).await.unwrap()[0];
        assert!(sms
            .body
            .starts_with("您已成功充值 50.00元,当前余额 60.00元。"));
        assert!(matches!(
            t.top_up_by_card(&m, &m, PIN, Some(SERIAL)).await,
            Err(Error::CardUsed)
        ));
        assert_eq!(t.balance(&m).await.unwrap().cash, Fen::yuan(60));
        assert_eq!(count(&t, "SELECT COUNT(*) FROM topups").await, 1);
        // The PIN is nowhere in the database.
        assert_eq!(
            count(
                &t,
                "SELECT COUNT(*) FROM recharge_cards WHERE pin_digest LIKE '%100000000000000001%'"
            )
            .await,
            0
        );
    }

    #[tokio::test]
    async fn two_concurrent_uses_credit_once() {
        let t = TestHall::empty().await;
        with_demo_card(&t).await;
        let a = t.subscriber("13800138000", 0).await;
        let b = t.subscriber("13900139000", 0).await;
        let mut set = tokio::task::JoinSet::new();
        for i in 0..20 {
            let hall = t.hall.clone();
            let who = if i % 2 == 0 { a.clone() } else { b.clone() };
            set.spawn(async move { hall.top_up_by_card(&who, &who, PIN, None).await });
        }
        let (mut ok, mut used) = (0, 0);
        while let Some(r) = set.join_next().await {
            match r.unwrap() {
                Ok(_) => ok += 1,
                Err(Error::CardUsed) => used += 1,
                Err(e) => panic!("unexpected {e}"),
            }
        }
        assert_eq!((ok, used), (1, 19));
        let total = t.balance(&a).await.unwrap().cash + t.balance(&b).await.unwrap().cash;
        assert_eq!(total, Fen::yuan(50));
        assert_eq!(count(&t, "SELECT COUNT(*) FROM ledger").await, 1);
        assert_eq!(count(&t, "SELECT COUNT(*) FROM topups").await, 1);
    }

    #[tokio::test]
    async fn five_wrong_pins_block_card_top_up_for_the_day() {
        let t = TestHall::empty().await;
        with_demo_card(&t).await;
        let m = t.subscriber("13800138000", 0).await;
        for i in 0..5 {
            let wrong = format!("99999999999999999{i}");
            assert!(matches!(
                t.top_up_by_card(&m, &m, &wrong, None).await,
                Err(Error::CardInvalid)
            ));
        }
        // The sixth try is refused before the PIN is looked at, even with the right PIN.
        assert!(matches!(
            t.top_up_by_card(&m, &m, PIN, None).await,
            Err(Error::CardBlockedToday)
        ));
        assert_eq!(t.balance(&m).await.unwrap().total(), Fen::ZERO);
        assert_eq!(
            count(
                &t,
                "SELECT COUNT(*) FROM recharge_cards WHERE used_by IS NULL"
            )
            .await,
            1
        );
        // Another payer is not blocked.
        let other = t.subscriber("13900139000", 0).await;
        assert!(matches!(
            t.top_up_by_card(&other, &other, "999999999999999999", None)
                .await,
            Err(Error::CardInvalid)
        ));
        // Still blocked at 23:59 Shanghai time; the next day works again.
        t.clock
            .set(Utc.with_ymd_and_hms(2026, 11, 15, 15, 59, 0).unwrap());
        assert!(matches!(
            t.top_up_by_card(&m, &m, PIN, None).await,
            Err(Error::CardBlockedToday)
        ));
        t.clock.advance(chrono::Duration::minutes(2));
        let r = t.top_up_by_card(&m, &m, PIN, None).await.unwrap();
        assert_eq!(r.amount, Fen::yuan(50));
    }

    #[tokio::test]
    async fn a_used_card_or_a_bad_format_is_not_a_wrong_pin() {
        let t = TestHall::empty().await;
        with_demo_card(&t).await;
        let m = t.subscriber("13800138000", 0).await;
        t.top_up_by_card(&m, &m, PIN, None).await.unwrap();
        for _ in 0..6 {
            assert!(matches!(
                t.top_up_by_card(&m, &m, PIN, None).await,
                Err(Error::CardUsed)
            ));
            assert!(matches!(
                t.top_up_by_card(&m, &m, "12345", None).await,
                Err(Error::Invalid(Invalid::CardPin))
            ));
            assert!(matches!(
                t.top_up_by_card(&m, &m, PIN, Some("123")).await,
                Err(Error::Invalid(Invalid::CardSerial))
            ));
        }
        t.insert_card(
            "26000000000000002",
            "100000000000000002",
            Fen::yuan(50),
            "DEMO",
        )
        .await
        .unwrap();
        t.top_up_by_card(&m, &m, "100000000000000002", None)
            .await
            .expect("not blocked: none of those was a wrong PIN");
    }

    #[tokio::test]
    async fn a_serial_must_match_its_pin() {
        let t = TestHall::empty().await;
        with_demo_card(&t).await;
        let m = t.subscriber("13800138000", 0).await;
        assert!(matches!(
            t.top_up_by_card(&m, &m, PIN, Some("26000000000000009"))
                .await,
            Err(Error::CardInvalid)
        ));
        t.top_up_by_card(&m, &m, PIN, Some(SERIAL)).await.unwrap();
    }

    #[tokio::test]
    async fn cards_for_others_and_for_suspended_numbers() {
        let t = TestHall::empty().await;
        with_demo_card(&t).await;
        let payer = t.subscriber("13900139000", 0).await;
        let target = t.subscriber("13800138000", 0).await;
        t.suspend_by_request(&target).await.unwrap();
        let stranger = Msisdn::parse("13700000000").unwrap();
        assert!(matches!(
            t.top_up_by_card(&payer, &stranger, PIN, None).await,
            Err(Error::UnknownSubscriber)
        ));
        let r = t.top_up_by_card(&payer, &target, PIN, None).await.unwrap();
        assert!(r.paid_by_other());
        assert_eq!(t.balance(&target).await.unwrap().cash, Fen::yuan(50));
        assert_eq!(
            t.profile(&target).await.unwrap().status,
            Status::SuspendedByRequest
        );
        assert!(t.outbox_for(&payer, 1).await.unwrap()[0]
            .body
            .starts_with("您为 138****8000 充值 50.00元 已到账"));
    }

    #[tokio::test]
    async fn issued_cards_work_and_values_are_checked() {
        let t = TestHall::empty().await;
        assert!(t.issue_cards("B1", 3, Fen::yuan(25)).await.is_err());
        let cards = t.issue_cards("B1", 3, Fen::yuan(100)).await.unwrap();
        assert_eq!(cards.len(), 3);
        for c in &cards {
            assert!(parse_serial(&c.serial).is_ok() && parse_pin(&c.pin).is_ok());
        }
        assert_eq!(count(&t, "SELECT COUNT(*) FROM recharge_cards").await, 3);
        let m = t.subscriber("13800138000", 0).await;
        let r = t
            .top_up_by_card(&m, &m, &cards[1].pin, Some(&cards[1].serial))
            .await
            .unwrap();
        assert_eq!(r.amount, Fen::yuan(100));
    }
}
