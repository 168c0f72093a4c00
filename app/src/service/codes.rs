//! One-time SMS codes (SPEC §6): six digits, stored hashed in the short-lived store, bound to a
//! purpose, valid `OPENHALL_CODE_TTL_SECS`, voided after 5 wrong tries, a resend replaces the
//! code, at most 1 a minute, 5 an hour and 10 a day per number. An unknown number gets the same
//! answer and costs the same work; it just receives nothing.
use std::time::Duration;

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::{Msisdn, SmsCode};
use crate::error::{Error, Result};
use crate::hall::Hall;
use crate::service::outbox::{self, SmsKind};
use crate::store::RateDecision;

const MAX_WRONG: i64 = 5;
const MINUTE_MS: i64 = 60_000;
const LIMITS: [(i64, i64); 3] = [
    (MINUTE_MS, 1),
    (60 * MINUTE_MS, 5),
    (24 * 60 * MINUTE_MS, 10),
];

/// What a code may be used for; a code issued for one purpose never passes for another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CodePurpose {
    SignIn,
    /// The web hall's second factor (detail records, suspend/resume, password, invoices).
    SecondFactor,
    ProductChange,
    Redemption,
    /// Read out by the subscriber to a customer-care agent acting for them.
    StaffAssist,
}

impl CodePurpose {
    fn key(self) -> &'static str {
        match self {
            CodePurpose::SignIn => "signin",
            CodePurpose::SecondFactor => "2fa",
            CodePurpose::ProductChange => "product",
            CodePurpose::Redemption => "redeem",
            CodePurpose::StaffAssist => "staff",
        }
    }

    fn sms(self, code: &str, minutes: u64) -> String {
        match self {
            CodePurpose::SignIn => format!("【中国移动】您的网上营业厅登录验证码为 {code},{minutes}分钟内有效。请勿向任何人透露。"),
            CodePurpose::SecondFactor => format!("【中国移动】您正在办理需二次验证的业务,验证码为 {code},{minutes}分钟内有效。请勿向任何人透露。"),
            CodePurpose::ProductChange => format!("【中国移动】您正在办理业务变更,验证码为 {code},{minutes}分钟内有效。如非本人操作,请忽略。"),
            CodePurpose::Redemption => format!("【中国移动】您正在兑换积分,验证码为 {code},{minutes}分钟内有效。如非本人操作,请忽略。"),
            CodePurpose::StaffAssist => format!(
                "【中国移动】客服人员正在为您办理业务,验证码为 {code},{minutes}分钟内有效。仅在您同意办理时告诉客服人员。"
            ),
        }
    }
}

/// The same for every number, existing or not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct CodeSent {
    pub valid_for_secs: u64,
    pub resend_after_secs: u64,
}

#[derive(Serialize, Deserialize)]
struct StoredCode {
    /// hex SHA-256 of salt ‖ code
    hash: String,
    salt: String,
    issued_ms: i64,
    /// Distinguishes this code from the one a resend replaces, for the wrong-try counter.
    id: String,
}

fn digest(salt: &str, code: &str) -> String {
    hex::encode(Sha256::digest(format!("{salt}:{code}")))
}

fn code_key(purpose: CodePurpose, m: &Msisdn) -> String {
    format!("code:{}:{}", purpose.key(), m.as_str())
}

impl Hall {
    pub async fn send_code(&self, msisdn: &Msisdn, purpose: CodePurpose) -> Result<CodeSent> {
        let now = self.now_ms();
        let ttl = self.settings().code_ttl;
        if let RateDecision::Limited { retry_after_ms } = self
            .eph()
            .rate_hit(&format!("codes:{}", msisdn.as_str()), now, &LIMITS)
            .await?
        {
            let secs = (retry_after_ms + 999) / 1000;
            return Err(if retry_after_ms <= MINUTE_MS {
                Error::CodeCooldown {
                    retry_after_secs: secs,
                }
            } else {
                Error::CodeLimit
            });
        }
        let code = SmsCode::generate();
        let mut salt = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut salt);
        let salt = hex::encode(salt);
        let stored = StoredCode {
            hash: digest(&salt, code.expose()),
            salt,
            issued_ms: now,
            id: uuid::Uuid::new_v4().simple().to_string(),
        };
        let value = serde_json::to_string(&stored).map_err(|e| Error::Storage(e.to_string()))?;
        self.eph()
            .put(&code_key(purpose, msisdn), &value, ttl)
            .await?;
        let minutes = ttl.as_secs().div_ceil(60);
        // Unknown numbers get the same reply; they are simply sent nothing.
        if self.is_subscriber(msisdn).await? {
            let mut conn = self.db().pool().acquire().await?;
            outbox::queue(
                &mut conn,
                now,
                msisdn,
                SmsKind::Code,
                &purpose.sms(code.expose(), minutes),
            )
            .await?;
        }
        Ok(CodeSent {
            valid_for_secs: ttl.as_secs(),
            resend_after_secs: 60,
        })
    }

    /// Checks a code and uses it up. Wrong codes count; the fifth wrong try voids the code.
    pub async fn verify_code(
        &self,
        msisdn: &Msisdn,
        purpose: CodePurpose,
        code: &SmsCode,
    ) -> Result<()> {
        let key = code_key(purpose, msisdn);
        let stored: StoredCode = match self.eph().get(&key).await? {
            Some(v) => serde_json::from_str(&v).map_err(|e| Error::Storage(e.to_string()))?,
            None => return Err(Error::CodeExpired),
        };
        let ttl_ms = self.settings().code_ttl.as_millis() as i64;
        if self.now_ms() - stored.issued_ms >= ttl_ms {
            self.eph().delete(&key).await?;
            return Err(Error::CodeExpired);
        }
        if digest(&stored.salt, code.expose()) == stored.hash {
            // `take` is atomic: of two concurrent right answers only one uses the code.
            return match self.eph().take(&key).await? {
                Some(v) if v.contains(&stored.id) => Ok(()),
                _ => Err(Error::CodeExpired),
            };
        }
        let tries_key = format!("codetries:{}", stored.id);
        let wrong = self
            .eph()
            .incr(&tries_key, Duration::from_millis(ttl_ms as u64))
            .await?;
        if wrong >= MAX_WRONG {
            self.eph().delete(&key).await?;
        }
        Err(Error::CodeWrong)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;
    use crate::testing::TestHall;
    use chrono::Duration as D;

    async fn last_code(t: &TestHall, m: &Msisdn) -> SmsCode {
        let body = t.outbox_for(m, 1).await.unwrap().remove(0).body;
        let digits: String = body
            .chars()
            .skip_while(|c| !c.is_ascii_digit())
            .take(6)
            .collect();
        SmsCode::parse(&digits).unwrap()
    }

    fn other_than(c: &SmsCode) -> SmsCode {
        let n: u32 = c.expose().parse().unwrap();
        SmsCode::parse(&format!("{:06}", (n + 1) % 1_000_000)).unwrap()
    }

    #[tokio::test]
    async fn a_code_signs_in_once_and_only_for_its_purpose() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 0).await;
        let sent = t.send_code(&m, CodePurpose::SignIn).await.unwrap();
        assert_eq!(sent.valid_for_secs, 300);
        let c = last_code(&t, &m).await;
        assert!(matches!(
            t.verify_code(&m, CodePurpose::Redemption, &c).await,
            Err(Error::CodeExpired)
        ));
        t.verify_code(&m, CodePurpose::SignIn, &c).await.unwrap();
        assert!(
            matches!(
                t.verify_code(&m, CodePurpose::SignIn, &c).await,
                Err(Error::CodeExpired)
            ),
            "single use"
        );
    }

    #[tokio::test]
    async fn codes_expire_after_the_ttl() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 0).await;
        t.send_code(&m, CodePurpose::SignIn).await.unwrap();
        let c = last_code(&t, &m).await;
        t.clock.advance(D::seconds(300));
        assert!(matches!(
            t.verify_code(&m, CodePurpose::SignIn, &c).await,
            Err(Error::CodeExpired)
        ));
    }

    #[tokio::test]
    async fn the_ttl_follows_the_setting() {
        let settings = Settings {
            code_ttl: std::time::Duration::from_secs(30),
            ..Settings::default()
        };
        let t = TestHall::empty_with(settings).await;
        let m = t.subscriber("13800138000", 0).await;
        t.send_code(&m, CodePurpose::SignIn).await.unwrap();
        let c = last_code(&t, &m).await;
        t.clock.advance(D::seconds(31));
        assert!(matches!(
            t.verify_code(&m, CodePurpose::SignIn, &c).await,
            Err(Error::CodeExpired)
        ));
    }

    #[tokio::test]
    async fn five_wrong_tries_void_the_code() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 0).await;
        t.send_code(&m, CodePurpose::SignIn).await.unwrap();
        let c = last_code(&t, &m).await;
        for _ in 0..5 {
            assert!(matches!(
                t.verify_code(&m, CodePurpose::SignIn, &other_than(&c))
                    .await,
                Err(Error::CodeWrong)
            ));
        }
        assert!(matches!(
            t.verify_code(&m, CodePurpose::SignIn, &c).await,
            Err(Error::CodeExpired)
        ));
    }

    #[tokio::test]
    async fn four_wrong_tries_leave_the_code_usable() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 0).await;
        t.send_code(&m, CodePurpose::SignIn).await.unwrap();
        let c = last_code(&t, &m).await;
        for _ in 0..4 {
            assert!(t
                .verify_code(&m, CodePurpose::SignIn, &other_than(&c))
                .await
                .is_err());
        }
        t.verify_code(&m, CodePurpose::SignIn, &c).await.unwrap();
    }

    #[tokio::test]
    async fn a_resend_replaces_the_code() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 0).await;
        t.send_code(&m, CodePurpose::SignIn).await.unwrap();
        let first = last_code(&t, &m).await;
        t.clock.advance(D::seconds(61));
        t.send_code(&m, CodePurpose::SignIn).await.unwrap();
        let second = last_code(&t, &m).await;
        if first != second {
            assert!(t
                .verify_code(&m, CodePurpose::SignIn, &first)
                .await
                .is_err());
        }
        t.verify_code(&m, CodePurpose::SignIn, &second)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn one_a_minute_five_an_hour_ten_a_day() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 0).await;
        t.send_code(&m, CodePurpose::SignIn).await.unwrap();
        match t.send_code(&m, CodePurpose::SecondFactor).await {
            Err(Error::CodeCooldown { retry_after_secs }) => assert_eq!(retry_after_secs, 60),
            other => panic!("expected a cool-down, got {other:?}"),
        }
        for _ in 0..4 {
            t.clock.advance(D::seconds(60));
            t.send_code(&m, CodePurpose::SignIn).await.unwrap();
        }
        t.clock.advance(D::seconds(60));
        assert!(
            matches!(
                t.send_code(&m, CodePurpose::SignIn).await,
                Err(Error::CodeLimit)
            ),
            "sixth in an hour"
        );
        // A new hour: five more, then the day's ten are spent.
        t.clock.advance(D::minutes(60));
        for _ in 0..5 {
            t.send_code(&m, CodePurpose::SignIn).await.unwrap();
            t.clock.advance(D::seconds(61));
        }
        t.clock.advance(D::minutes(60));
        assert!(
            matches!(
                t.send_code(&m, CodePurpose::SignIn).await,
                Err(Error::CodeLimit)
            ),
            "eleventh in a day"
        );
        t.clock.advance(D::hours(24));
        t.send_code(&m, CodePurpose::SignIn).await.unwrap();
        assert_eq!(t.outbox_for(&m, 100).await.unwrap().len(), 11);
    }

    #[tokio::test]
    async fn unknown_numbers_get_the_same_answer_and_no_sms() {
        let t = TestHall::empty().await;
        let known = t.subscriber("13800138000", 0).await;
        let unknown = Msisdn::parse("13999999999").unwrap();
        let a = t.send_code(&known, CodePurpose::SignIn).await.unwrap();
        let b = t.send_code(&unknown, CodePurpose::SignIn).await.unwrap();
        assert_eq!(a, b);
        assert!(t.outbox_for(&unknown, 10).await.unwrap().is_empty());
        // …and the same limits, so the answer to a second request does not tell them apart either.
        assert!(matches!(
            t.send_code(&unknown, CodePurpose::SignIn).await,
            Err(Error::CodeCooldown { .. })
        ));
    }

    #[tokio::test]
    async fn codes_are_not_stored_in_clear() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 0).await;
        t.send_code(&m, CodePurpose::SignIn).await.unwrap();
        let c = last_code(&t, &m).await;
        let stored = t
            .eph()
            .get(&code_key(CodePurpose::SignIn, &m))
            .await
            .unwrap()
            .unwrap();
        assert!(!stored.contains(c.expose()));
    }
}
