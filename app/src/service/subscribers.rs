//! Subscribers: registration (real-name), profiles, masking, and suspension by request.
use serde::Serialize;
use sqlx::AnyConnection;

use crate::domain::{Brand, Fen, Msisdn, ProductCode, Status, Tier};
use crate::error::{Error, Result};
use crate::hall::Hall;
use crate::service::outbox::{self, SmsKind};
use crate::service::passwords;
use crate::store::reads::{Read, ReadRow};

pub struct NewSubscriber {
    pub msisdn: Msisdn,
    pub name: String,
    pub id_card: String,
    pub brand: Brand,
    pub plan: ProductCode,
    /// The initial service password handed over at the counter; it must be changed at first
    /// sign-in unless `password_changed` says it already was (demo data).
    pub initial_password: String,
    pub password_changed: bool,
    pub tier: Tier,
}

/// What the subscriber sees about themself.
#[derive(Clone, Debug, Serialize)]
pub struct Profile {
    pub msisdn: Msisdn,
    pub name: String,
    pub id_card: String,
    pub brand: Brand,
    pub status: Status,
    pub tier: Tier,
    pub plan: ProductCode,
    pub alert_threshold: Fen,
    pub must_change_password: bool,
    pub marketing_consent: bool,
}

impl Profile {
    /// The same profile with personal data masked, as customer care sees it.
    pub fn masked(&self) -> Profile {
        Profile {
            name: mask_name(&self.name),
            id_card: mask_id_card(&self.id_card),
            ..self.clone()
        }
    }
}

/// `张三丰` → `张**`: the family name stays, so care staff can address the customer.
pub fn mask_name(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => std::iter::once(first).chain(chars.map(|_| '*')).collect(),
        None => String::new(),
    }
}

/// `320102199001011234` → `320102********1234`.
pub fn mask_id_card(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() <= 10 {
        return "*".repeat(chars.len());
    }
    let n = chars.len();
    chars[..6]
        .iter()
        .chain(std::iter::repeat_n(&'*', n - 10))
        .chain(chars[n - 4..].iter())
        .collect()
}

/// A profile's columns as [`profile_from_row`] reads them (a macro: see `product_columns`).
macro_rules! profile_columns {
    () => {
        "msisdn, name, id_card, brand, status, tier, plan_code, alert_threshold, \
         must_change_password, marketing_consent"
    };
}

fn profile_from_row(r: &ReadRow) -> Result<Profile> {
    let text = |i: usize| -> Result<String> { r.try_get::<String, _>(i) };
    let corrupt = |what: &str| Error::Storage(format!("unreadable {what} in subscribers"));
    Ok(Profile {
        msisdn: Msisdn::parse(&text(0)?).map_err(|_| corrupt("msisdn"))?,
        name: text(1)?,
        id_card: text(2)?,
        brand: Brand::from_db(&text(3)?).ok_or_else(|| corrupt("brand"))?,
        status: Status::from_db(&text(4)?).ok_or_else(|| corrupt("status"))?,
        tier: Tier::from_db(&text(5)?).ok_or_else(|| corrupt("tier"))?,
        plan: ProductCode::parse(&text(6)?).map_err(|_| corrupt("plan"))?,
        alert_threshold: Fen::new(r.try_get(7)?),
        must_change_password: r.try_get::<i64, _>(8)? != 0,
        marketing_consent: r.try_get::<i64, _>(9)? != 0,
    })
}

pub(crate) async fn load_profile(conn: &mut AnyConnection, msisdn: &Msisdn) -> Result<Profile> {
    profile_from(&profile_read(msisdn).fetch(conn).await?)
}

/// The read behind [`load_profile`], for a batch ([`crate::store::reads`]).
pub(crate) fn profile_read(msisdn: &Msisdn) -> Read {
    Read::new(concat!(
        "SELECT ",
        profile_columns!(),
        " FROM subscribers WHERE msisdn = $1"
    ))
    .text(msisdn.as_str())
    .at_most_one()
}

pub(crate) fn profile_from(rows: &[ReadRow]) -> Result<Profile> {
    profile_from_row(rows.first().ok_or(Error::UnknownSubscriber)?)
}

/// Refuses changes of service for a number that is not active (queries and top-ups still work).
pub(crate) async fn require_active(conn: &mut AnyConnection, msisdn: &Msisdn) -> Result<Profile> {
    let p = load_profile(conn, msisdn).await?;
    if p.status.is_active() {
        Ok(p)
    } else {
        Err(Error::NotActive)
    }
}

/// The numbers this process has seen to be subscribers: every SMS command asks first, and
/// numbers are never deleted, so only a "yes" is remembered (a stranger is asked again).
/// Bounded: when full it starts over.
#[derive(Default)]
pub struct KnownSubscribers(std::sync::Mutex<std::collections::HashSet<u64>>);

impl KnownSubscribers {
    const MOST: usize = 200_000;

    fn key(m: &Msisdn) -> u64 {
        m.as_str().parse().unwrap_or(0)
    }

    fn contains(&self, m: &Msisdn) -> bool {
        self.0.lock().unwrap().contains(&Self::key(m))
    }

    fn insert(&self, m: &Msisdn) {
        let mut set = self.0.lock().unwrap();
        if set.len() >= Self::MOST {
            set.clear();
        }
        set.insert(Self::key(m));
    }
}

impl Hall {
    /// Registers a subscriber with an empty balance. The opening month's plan fee is waived,
    /// as operators do; fees start with the next month.
    pub async fn register_subscriber(&self, s: NewSubscriber) -> Result<()> {
        let hash = passwords::hash(&s.initial_password)?;
        let now = self.now_ms();
        let mut tx = self.db().begin().await?;
        let plan_ok =
            sqlx::query("SELECT 1 FROM products WHERE code = $1 AND kind = 'plan' AND family = $2")
                .bind(s.plan.as_str())
                .bind(s.brand.as_str())
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
        if !plan_ok {
            return Err(Error::WrongProductKind);
        }
        sqlx::query(
            "INSERT INTO subscribers (msisdn, name, id_card, brand, status, tier, plan_code, password_hash, \
             must_change_password, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(s.msisdn.as_str())
        .bind(&s.name)
        .bind(&s.id_card)
        .bind(s.brand.as_str())
        .bind(Status::Active.as_str())
        .bind(s.tier.as_str())
        .bind(s.plan.as_str())
        .bind(hash)
        .bind(!s.password_changed as i64)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO accounts (msisdn) VALUES ($1)")
            .bind(s.msisdn.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn is_subscriber(&self, msisdn: &Msisdn) -> Result<bool> {
        if self.known_subscribers().contains(msisdn) {
            return Ok(true);
        }
        let known = sqlx::query("SELECT 1 FROM subscribers WHERE msisdn = $1")
            .bind(msisdn.as_str())
            .fetch_optional(self.db().pool())
            .await?
            .is_some();
        if known {
            self.known_subscribers().insert(msisdn);
        }
        Ok(known)
    }

    pub async fn profile(&self, msisdn: &Msisdn) -> Result<Profile> {
        profile_from(&self.db().read(profile_read(msisdn)).await?)
    }

    /// Suspension at the subscriber's own request (e.g. a lost phone). Needs the second factor
    /// on the web; the channel checks that before calling.
    pub async fn suspend_by_request(&self, msisdn: &Msisdn) -> Result<()> {
        self.set_status(
            msisdn,
            Status::Active,
            Status::SuspendedByRequest,
            "您的号码已按您的申请办理停机,发送短信或登录网上营业厅可申请复机。",
        )
        .await
    }

    pub async fn resume_by_request(&self, msisdn: &Msisdn) -> Result<()> {
        self.set_status(
            msisdn,
            Status::SuspendedByRequest,
            Status::Active,
            "您的号码已复机,恢复正常使用。",
        )
        .await
    }

    async fn set_status(
        &self,
        msisdn: &Msisdn,
        from: Status,
        to: Status,
        notice: &str,
    ) -> Result<()> {
        let mut tx = self.db().begin().await?;
        let done =
            sqlx::query("UPDATE subscribers SET status = $1 WHERE msisdn = $2 AND status = $3")
                .bind(to.as_str())
                .bind(msisdn.as_str())
                .bind(from.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if done == 0 {
            load_profile(&mut tx, msisdn).await?;
            return Err(Error::StatusUnchanged);
        }
        outbox::queue(&mut tx, self.now_ms(), msisdn, SmsKind::Account, notice).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The threshold above which month-to-date spend triggers the one high-bill SMS.
    pub async fn set_alert_threshold(&self, msisdn: &Msisdn, threshold: Fen) -> Result<()> {
        if threshold.is_negative() || threshold > Fen::yuan(100_000) {
            return Err(crate::error::Invalid::AlertThreshold.into());
        }
        let n = sqlx::query("UPDATE subscribers SET alert_threshold = $1 WHERE msisdn = $2")
            .bind(threshold.get())
            .bind(msisdn.as_str())
            .execute(self.db().pool())
            .await?
            .rows_affected();
        if n == 0 {
            return Err(Error::UnknownSubscriber);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{new_subscriber, TestHall};

    #[test]
    fn masks_personal_data() {
        assert_eq!(mask_name("张三"), "张*");
        assert_eq!(mask_name("欧阳娜娜"), "欧***");
        assert_eq!(mask_id_card("320102199001011234"), "320102********1234");
        assert_eq!(mask_id_card("12345"), "*****");
    }

    #[tokio::test]
    async fn registers_and_reads_back() {
        let h = TestHall::empty().await;
        let m = Msisdn::parse("13912345678").unwrap();
        h.register_subscriber(new_subscriber(&m)).await.unwrap();
        let p = h.profile(&m).await.unwrap();
        assert_eq!(p.status, Status::Active);
        assert!(p.must_change_password);
        assert_eq!(p.masked().name, "测***");
        assert!(
            h.register_subscriber(new_subscriber(&m)).await.is_err(),
            "a number registers once"
        );
        assert!(matches!(
            h.profile(&Msisdn::parse("13900000000").unwrap()).await,
            Err(Error::UnknownSubscriber)
        ));
    }

    #[tokio::test]
    async fn plans_must_belong_to_the_brand() {
        let h = TestHall::empty().await;
        let m = Msisdn::parse("13912345678").unwrap();
        let mut s = new_subscriber(&m);
        s.plan = ProductCode::parse("DG18").unwrap();
        assert!(matches!(
            h.register_subscriber(s).await,
            Err(Error::WrongProductKind)
        ));
    }

    #[tokio::test]
    async fn suspend_and_resume_by_request() {
        let h = TestHall::empty().await;
        let m = Msisdn::parse("13912345678").unwrap();
        h.register_subscriber(new_subscriber(&m)).await.unwrap();
        h.suspend_by_request(&m).await.unwrap();
        assert_eq!(
            h.profile(&m).await.unwrap().status,
            Status::SuspendedByRequest
        );
        assert!(matches!(
            h.suspend_by_request(&m).await,
            Err(Error::StatusUnchanged)
        ));
        h.resume_by_request(&m).await.unwrap();
        assert_eq!(h.profile(&m).await.unwrap().status, Status::Active);
        assert_eq!(h.outbox_for(&m, 10).await.unwrap().len(), 2);
    }
}
