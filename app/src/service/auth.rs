//! Subscriber sign-in (SPEC §6): service password or SMS code, the 5-wrong lockout, the forced
//! change of an initial password, password changes and "sign out everywhere".
use serde::Serialize;
use sqlx::Row;

use crate::clock::from_millis;
use crate::domain::{Msisdn, ServicePassword, SmsCode};
use crate::error::{Error, Result};
use crate::hall::Hall;
use crate::service::codes::CodePurpose;
use crate::service::outbox::{self, SmsKind};
use crate::service::passwords;
use crate::store::reads::Read;

const MAX_WRONG_PASSWORDS: i64 = 5;
const LOCKOUT_MS: i64 = 24 * 3600 * 1000;

/// A successful sign-in. Sessions remember `session_epoch`; when it moves on (a password change,
/// "sign out everywhere"), every older session of the number is void.
#[derive(Clone, Debug, Serialize)]
pub struct SignedIn {
    pub msisdn: Msisdn,
    pub must_change_password: bool,
    pub session_epoch: i64,
}

impl Hall {
    pub async fn sign_in_with_password(&self, msisdn: &Msisdn, password: &str) -> Result<SignedIn> {
        let now = self.now_ms();
        let row = sqlx::query(
            "SELECT password_hash, password_locked_until, must_change_password, session_epoch \
             FROM subscribers WHERE msisdn = $1",
        )
        .bind(msisdn.as_str())
        .fetch_optional(self.db().pool())
        .await?;
        let Some(row) = row else {
            // Spend the same time as a real check, then give the same answer as a wrong password.
            passwords::verify(password, passwords::decoy());
            return Err(Error::WrongCredentials);
        };
        let hash: String = row.try_get(0)?;
        let locked_until: Option<i64> = row.try_get(1)?;
        if let Some(until) = locked_until.filter(|u| *u > now) {
            return Err(Error::PasswordLocked {
                until: from_millis(until),
            });
        }
        if !passwords::verify(password, &hash) {
            return Err(self.count_wrong_password(msisdn, now).await?);
        }
        sqlx::query("UPDATE subscribers SET failed_password_count = 0, password_locked_until = NULL WHERE msisdn = $1")
            .bind(msisdn.as_str())
            .execute(self.db().pool())
            .await?;
        Ok(SignedIn {
            msisdn: msisdn.clone(),
            must_change_password: row.try_get::<i64, _>(2)? != 0,
            session_epoch: row.try_get(3)?,
        })
    }

    /// Counts a wrong password atomically (concurrent guesses all count) and locks password
    /// sign-in for 24 hours at the fifth in a row. Returns the error to show.
    async fn count_wrong_password(&self, msisdn: &Msisdn, now: i64) -> Result<Error> {
        let mut tx = self.db().begin().await?;
        let count: i64 = sqlx::query(
            "UPDATE subscribers SET failed_password_count = failed_password_count + 1 WHERE msisdn = $1 \
             RETURNING failed_password_count",
        )
        .bind(msisdn.as_str())
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
        let outcome = if count >= MAX_WRONG_PASSWORDS {
            let until = now + LOCKOUT_MS;
            sqlx::query("UPDATE subscribers SET failed_password_count = 0, password_locked_until = $1 WHERE msisdn = $2")
                .bind(until)
                .bind(msisdn.as_str())
                .execute(&mut *tx)
                .await?;
            outbox::queue(
                &mut tx,
                now,
                msisdn,
                SmsKind::Account,
                "【中国移动】您的服务密码已连续输错 5 次,网上营业厅密码登录已锁定 24 小时,可使用短信验证码登录。如非本人操作,请及时修改服务密码。",
            )
            .await?;
            Error::PasswordLocked {
                until: from_millis(until),
            }
        } else {
            Error::WrongCredentials
        };
        tx.commit().await?;
        Ok(outcome)
    }

    /// Sign-in with an SMS code; it works while password sign-in is locked.
    pub async fn sign_in_with_code(&self, msisdn: &Msisdn, code: &SmsCode) -> Result<SignedIn> {
        self.verify_code(msisdn, CodePurpose::SignIn, code).await?;
        let row = sqlx::query(
            "SELECT must_change_password, session_epoch FROM subscribers WHERE msisdn = $1",
        )
        .bind(msisdn.as_str())
        .fetch_optional(self.db().pool())
        .await?
        // A code can only have been delivered to a subscriber; this is for a number removed since.
        .ok_or(Error::CodeExpired)?;
        Ok(SignedIn {
            msisdn: msisdn.clone(),
            must_change_password: row.try_get::<i64, _>(0)? != 0,
            session_epoch: row.try_get(1)?,
        })
    }

    /// Changes the service password. The current one must be given (a wrong one counts towards
    /// the lockout), the new one must follow every rule and differ from the current one. Every
    /// other session of the number ends; the new epoch is returned for the caller's session.
    pub async fn change_password(&self, msisdn: &Msisdn, current: &str, new: &str) -> Result<i64> {
        let new = ServicePassword::new(new, msisdn)?;
        let signed = self.sign_in_with_password(msisdn, current).await?;
        if new.expose() == current {
            return Err(Error::PasswordUnchanged);
        }
        let hash = passwords::hash(new.expose())?;
        let now = self.now_ms();
        let mut tx = self.db().begin().await?;
        let epoch: i64 = sqlx::query(
            "UPDATE subscribers SET password_hash = $1, must_change_password = 0, session_epoch = session_epoch + 1 \
             WHERE msisdn = $2 RETURNING session_epoch",
        )
        .bind(hash)
        .bind(msisdn.as_str())
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
        outbox::queue(
            &mut tx,
            now,
            msisdn,
            SmsKind::Account,
            "【中国移动】您的服务密码已修改成功。如非本人操作,请立即致电 10086。",
        )
        .await?;
        tx.commit().await?;
        debug_assert!(epoch > signed.session_epoch);
        Ok(epoch)
    }

    /// Ends every session of the number, this one included.
    pub async fn sign_out_everywhere(&self, msisdn: &Msisdn) -> Result<i64> {
        Ok(sqlx::query("UPDATE subscribers SET session_epoch = session_epoch + 1 WHERE msisdn = $1 RETURNING session_epoch")
            .bind(msisdn.as_str())
            .fetch_optional(self.db().pool())
            .await?
            .ok_or(Error::UnknownSubscriber)?
            .try_get(0)?)
    }

    /// The current epoch: a session holding an older one has been signed out.
    pub async fn session_epoch(&self, msisdn: &Msisdn) -> Result<i64> {
        let read = Read::new("SELECT session_epoch FROM subscribers WHERE msisdn = $1")
            .text(msisdn.as_str());
        let rows = self.db().read(read).await?;
        rows.first().ok_or(Error::UnknownSubscriber)?.try_get(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Invalid;
    use crate::testing::{new_subscriber, TestHall};
    use chrono::Duration as D;

    async fn fresh(t: &TestHall) -> Msisdn {
        let m = Msisdn::parse("13800138000").unwrap();
        t.register_subscriber(new_subscriber(&m)).await.unwrap();
        m
    }

    #[tokio::test]
    async fn initial_password_signs_in_but_must_be_changed() {
        let t = TestHall::empty().await;
        let m = fresh(&t).await;
        let s = t.sign_in_with_password(&m, "902468").await.unwrap();
        assert!(s.must_change_password);
        t.change_password(&m, "902468", "147258").await.unwrap();
        assert!(
            !t.sign_in_with_password(&m, "147258")
                .await
                .unwrap()
                .must_change_password
        );
        assert!(matches!(
            t.sign_in_with_password(&m, "902468").await,
            Err(Error::WrongCredentials)
        ));
    }

    #[tokio::test]
    async fn unknown_numbers_and_wrong_passwords_look_alike() {
        let t = TestHall::empty().await;
        let m = fresh(&t).await;
        let a = t.sign_in_with_password(&m, "000001").await.unwrap_err();
        let b = t
            .sign_in_with_password(&Msisdn::parse("13999999999").unwrap(), "902468")
            .await
            .unwrap_err();
        assert_eq!(a.to_string(), b.to_string());
        assert_eq!(a.zh(), b.zh());
    }

    #[tokio::test]
    async fn five_wrong_in_a_row_lock_password_sign_in_for_a_day() {
        let t = TestHall::empty().await;
        let m = fresh(&t).await;
        for _ in 0..4 {
            assert!(matches!(
                t.sign_in_with_password(&m, "111112").await,
                Err(Error::WrongCredentials)
            ));
        }
        assert!(matches!(
            t.sign_in_with_password(&m, "111112").await,
            Err(Error::PasswordLocked { .. })
        ));
        assert!(
            matches!(
                t.sign_in_with_password(&m, "902468").await,
                Err(Error::PasswordLocked { .. })
            ),
            "even the right password is refused while locked"
        );
        // SMS-code sign-in still works.
        t.send_code(&m, CodePurpose::SignIn).await.unwrap();
        let body = t.outbox_for(&m, 1).await.unwrap().remove(0).body;
        let code: String = body
            .chars()
            .skip_while(|c| !c.is_ascii_digit())
            .take(6)
            .collect();
        t.sign_in_with_code(&m, &SmsCode::parse(&code).unwrap())
            .await
            .unwrap();
        t.clock.advance(D::hours(24));
        t.sign_in_with_password(&m, "902468").await.unwrap();
    }

    #[tokio::test]
    async fn a_right_password_resets_the_count() {
        let t = TestHall::empty().await;
        let m = fresh(&t).await;
        for _ in 0..4 {
            t.sign_in_with_password(&m, "111112").await.unwrap_err();
        }
        t.sign_in_with_password(&m, "902468").await.unwrap();
        for _ in 0..4 {
            assert!(matches!(
                t.sign_in_with_password(&m, "111112").await,
                Err(Error::WrongCredentials)
            ));
        }
    }

    #[tokio::test]
    async fn concurrent_wrong_guesses_all_count() {
        let t = TestHall::empty().await;
        let m = fresh(&t).await;
        let guesses = (0..10).map(|_| t.sign_in_with_password(&m, "111112"));
        futures::future::join_all(guesses).await;
        assert!(matches!(
            t.sign_in_with_password(&m, "902468").await,
            Err(Error::PasswordLocked { .. })
        ));
    }

    #[tokio::test]
    async fn every_password_rule_applies_to_a_change() {
        let t = TestHall::empty().await;
        let m = fresh(&t).await;
        for (new, why) in [
            ("12345", Invalid::PasswordFormat),
            ("777777", Invalid::PasswordRepeated),
            ("234567", Invalid::PasswordSequential),
            ("876543", Invalid::PasswordSequential),
            ("380013", Invalid::PasswordInNumber),
        ] {
            match t.change_password(&m, "902468", new).await {
                Err(Error::Invalid(i)) => assert_eq!(i, why, "{new}"),
                other => panic!("{new}: {other:?}"),
            }
        }
        assert!(matches!(
            t.change_password(&m, "902468", "902468").await,
            Err(Error::PasswordUnchanged)
        ));
        assert!(matches!(
            t.change_password(&m, "000001", "147258").await,
            Err(Error::WrongCredentials)
        ));
    }

    #[tokio::test]
    async fn a_password_change_and_sign_out_everywhere_end_old_sessions() {
        let t = TestHall::empty().await;
        let m = fresh(&t).await;
        let old = t
            .sign_in_with_password(&m, "902468")
            .await
            .unwrap()
            .session_epoch;
        let new = t.change_password(&m, "902468", "147258").await.unwrap();
        assert!(new > old);
        assert_eq!(t.session_epoch(&m).await.unwrap(), new);
        let later = t.sign_out_everywhere(&m).await.unwrap();
        assert!(later > new);
        let notices = t.outbox_for(&m, 10).await.unwrap();
        assert!(notices.iter().any(|n| n.body.contains("服务密码已修改")));
    }
}
