//! Acting as a subscriber (SPEC §5): an agent or supervisor opens a subscriber's hall to help
//! them. The rules, each enforced here or by the database:
//! - a written reason (at least 4 characters after trimming);
//! - agents and supervisors only — admins manage staff and never act as a subscriber;
//! - never on a staff member's own number;
//! - no nesting: one open session per staff member (the partial unique index
//!   `impersonations_one_open` decides between concurrent starts);
//! - at most 30 minutes: `expires_at` is fixed at the start and every check compares it with
//!   the service clock, so the cap holds even if nobody ends the session;
//! - the subscriber gets an SMS notice, queued in the same transaction as the start;
//! - start, end and refusals are audited.
//!
//! "POST only" and the banner on every page are the web layer's part: it calls
//! [`Hall::check_impersonation`] on every request and shows [`Impersonation::banner_zh`].
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{AnyConnection, Row};

use crate::clock::from_millis;
use crate::domain::{shanghai, Msisdn};
use crate::error::{is_unique_violation, Error, Invalid, Result};
use crate::hall::Hall;
use crate::service::audit::{self, action, AuditRecord, Outcome};
use crate::service::outbox::{self, SmsKind};
use crate::service::staff::{authorize, Role, StaffMember};

/// The longest an impersonation lasts.
pub const MAX_MINUTES: i64 = 30;
const MAX_MS: i64 = MAX_MINUTES * 60_000;
/// Shortest and longest reason, in characters after trimming.
const REASON_MIN: usize = 4;
const REASON_MAX: usize = 500;

/// An open impersonation session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Impersonation {
    pub id: i64,
    pub staff_id: i64,
    pub staff_username: String,
    pub msisdn: Msisdn,
    pub reason: String,
    pub started_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

fn hhmm(t: DateTime<Utc>) -> String {
    t.with_timezone(&shanghai()).format("%H:%M").to_string()
}

impl Impersonation {
    /// Time left before the 30-minute cap ends the session (zero once past).
    pub fn remaining(&self, now: DateTime<Utc>) -> chrono::Duration {
        (self.expires_at - now).max(chrono::Duration::zero())
    }

    /// The banner the console shows on every page while acting.
    pub fn banner_zh(&self) -> String {
        format!(
            "代客操作中:员工 {} 正在代客户 {} 操作(原因:{}),{} 自动结束。",
            self.staff_username,
            self.msisdn,
            self.reason,
            hhmm(self.expires_at)
        )
    }

    pub fn banner_en(&self) -> String {
        format!(
            "Acting as a subscriber: staff {} is acting for {} (reason: {}); ends automatically at {}.",
            self.staff_username,
            self.msisdn,
            self.reason,
            hhmm(self.expires_at)
        )
    }
}

/// The SMS a subscriber gets when customer care opens their account.
pub fn notice_sms(staff_username: &str, at: DateTime<Utc>) -> String {
    format!(
        "【中国移动】客服人员(工号 {staff_username})于 {} 受理您的业务,进入了您的网上营业厅账户。如非本人授权,请致电 10086。",
        hhmm(at)
    )
}

/// Trims a reason and checks its length.
pub fn validate_reason(reason: &str) -> Result<String, Invalid> {
    let r = reason.trim();
    let n = r.chars().count();
    if !(REASON_MIN..=REASON_MAX).contains(&n) {
        return Err(Invalid::Reason);
    }
    Ok(r.to_owned())
}

/// A row as stored, open or not.
struct Stored {
    imp: Impersonation,
    ended: bool,
    staff_disabled: bool,
}

const SELECT: &str = "SELECT i.id, i.staff_id, s.username, i.msisdn, i.reason, i.started_at, \
     i.expires_at, i.ended_at, s.disabled FROM impersonations i JOIN staff s ON s.id = i.staff_id";

fn stored_from_row(r: &sqlx::any::AnyRow) -> Result<Stored> {
    let msisdn: String = r.try_get(3)?;
    Ok(Stored {
        imp: Impersonation {
            id: r.try_get(0)?,
            staff_id: r.try_get(1)?,
            staff_username: r.try_get(2)?,
            msisdn: Msisdn::parse(&msisdn)
                .map_err(|_| Error::Storage("unreadable msisdn in impersonations".into()))?,
            reason: r.try_get(4)?,
            started_at: from_millis(r.try_get(5)?),
            expires_at: from_millis(r.try_get(6)?),
        },
        ended: r.try_get::<Option<i64>, _>(7)?.is_some(),
        staff_disabled: r.try_get::<i64, _>(8)? != 0,
    })
}

async fn load(conn: &mut AnyConnection, id: i64) -> Result<Option<Stored>> {
    let row = sqlx::query(&format!("{SELECT} WHERE i.id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(stored_from_row).transpose()
}

/// Ends an open session; a session already past its cap is recorded as ended at `expires_at`
/// with reason `expired`. Returns false when it was already ended (so ending is idempotent and
/// concurrent ends record one end).
async fn end_open(
    conn: &mut AnyConnection,
    id: i64,
    now_ms: i64,
    ended_by: Option<i64>,
    end_reason: &str,
) -> Result<bool> {
    let n = sqlx::query(
        "UPDATE impersonations SET ended_at = CASE WHEN expires_at < $1 THEN expires_at ELSE $1 END, \
         ended_by = $2, end_reason = CASE WHEN expires_at <= $1 THEN 'expired' ELSE $3 END \
         WHERE id = $4 AND ended_at IS NULL",
    )
    .bind(now_ms)
    .bind(ended_by)
    .bind(end_reason)
    .bind(id)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(n == 1)
}

impl Hall {
    /// Opens a subscriber's account for a staff member (see the module rules). The web layer
    /// must call this from a POST only.
    pub async fn start_impersonation(
        &self,
        staff: &StaffMember,
        target: &Msisdn,
        reason: &str,
        client_addr: &str,
    ) -> Result<Impersonation> {
        let result = self
            .start_impersonation_tx(staff, target, reason, client_addr)
            .await;
        if let Err(e) = &result {
            let rec = AuditRecord::new(action::IMPERSONATION_START, Outcome::Ok, client_addr)
                .staff(staff)
                .msisdn(target)
                .detail(format!("reason={}", reason.trim()));
            self.audit_refusal(rec, e).await;
        }
        result
    }

    async fn start_impersonation_tx(
        &self,
        staff: &StaffMember,
        target: &Msisdn,
        reason: &str,
        client_addr: &str,
    ) -> Result<Impersonation> {
        let now = self.now();
        let now_ms = now.timestamp_millis();
        let mut tx = self.db().begin().await?;
        let me = authorize(&mut tx, staff, &[Role::Agent, Role::Supervisor]).await?;
        let reason = validate_reason(reason)?;
        let is_subscriber = sqlx::query("SELECT 1 FROM subscribers WHERE msisdn = $1")
            .bind(target.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if !is_subscriber {
            return Err(Error::UnknownSubscriber);
        }
        let is_staff = sqlx::query("SELECT 1 FROM staff WHERE msisdn = $1")
            .bind(target.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if is_staff {
            return Err(Error::ImpersonationOfStaff);
        }
        // A session past its cap that nobody ended must not block the next one.
        let expired = sqlx::query(
            "UPDATE impersonations SET ended_at = expires_at, end_reason = 'expired' \
             WHERE staff_id = $1 AND ended_at IS NULL AND expires_at <= $2 RETURNING id, msisdn",
        )
        .bind(me.id)
        .bind(now_ms)
        .fetch_all(&mut *tx)
        .await?;
        for row in &expired {
            let id: i64 = row.try_get(0)?;
            let m = Msisdn::parse(&row.try_get::<String, _>(1)?)
                .map_err(|_| Error::Storage("unreadable msisdn in impersonations".into()))?;
            let rec = AuditRecord::new(action::IMPERSONATION_END, Outcome::Ok, client_addr)
                .staff(&me)
                .msisdn(&m)
                .impersonation(id)
                .detail("expired");
            audit::append(&mut tx, now_ms, &rec).await?;
        }
        let expires_ms = now_ms + MAX_MS;
        let inserted = sqlx::query(
            "INSERT INTO impersonations (staff_id, msisdn, reason, client_addr, started_at, \
             expires_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(me.id)
        .bind(target.as_str())
        .bind(&reason)
        .bind(client_addr)
        .bind(now_ms)
        .bind(expires_ms)
        .fetch_one(&mut *tx)
        .await;
        let id: i64 = match inserted {
            Ok(row) => row.try_get(0)?,
            // The partial unique index: this staff member already has an open session (perhaps
            // started a moment ago by a concurrent request).
            Err(e) if is_unique_violation(&e) => return Err(Error::ImpersonationActive),
            Err(e) => return Err(e.into()),
        };
        outbox::queue(
            &mut tx,
            now_ms,
            target,
            SmsKind::Impersonation,
            &notice_sms(&me.username, now),
        )
        .await?;
        let rec = AuditRecord::new(action::IMPERSONATION_START, Outcome::Ok, client_addr)
            .staff(&me)
            .msisdn(target)
            .impersonation(id)
            .detail(format!("reason={reason}"));
        audit::append(&mut tx, now_ms, &rec).await?;
        tx.commit().await?;
        Ok(Impersonation {
            id,
            staff_id: me.id,
            staff_username: me.username,
            msisdn: target.clone(),
            reason,
            started_at: from_millis(now_ms),
            expires_at: from_millis(expires_ms),
        })
    }

    /// The staff member's open session, if any (`None` once ended or past its cap).
    pub async fn current_impersonation(&self, staff_id: i64) -> Result<Option<Impersonation>> {
        let row = sqlx::query(&format!(
            "{SELECT} WHERE i.staff_id = $1 AND i.ended_at IS NULL AND i.expires_at > $2 \
             AND s.disabled = 0"
        ))
        .bind(staff_id)
        .bind(self.now_ms())
        .fetch_optional(self.db().pool())
        .await?;
        Ok(row
            .as_ref()
            .map(stored_from_row)
            .transpose()?
            .map(|s| s.imp))
    }

    /// The session if it is still open: the web layer calls this on every request made while
    /// acting. [`Error::ImpersonationOver`] once it was ended, passed its 30 minutes, or its
    /// staff member was disabled. The first check after the cap records the end.
    pub async fn check_impersonation(&self, impersonation_id: i64) -> Result<Impersonation> {
        let mut conn = self.db().pool().acquire().await?;
        let s = load(&mut conn, impersonation_id)
            .await?
            .ok_or(Error::ImpersonationOver)?;
        drop(conn);
        if s.ended || s.staff_disabled {
            return Err(Error::ImpersonationOver);
        }
        let now_ms = self.now_ms();
        if s.imp.expires_at.timestamp_millis() <= now_ms {
            let mut tx = self.db().begin().await?;
            if end_open(&mut tx, s.imp.id, now_ms, None, "expired").await? {
                let rec = AuditRecord::new(action::IMPERSONATION_END, Outcome::Ok, "system")
                    .msisdn(&s.imp.msisdn)
                    .impersonation(s.imp.id)
                    .detail("expired");
                let rec = AuditRecord {
                    staff_id: Some(s.imp.staff_id),
                    staff_username: Some(&s.imp.staff_username),
                    ..rec
                };
                audit::append(&mut tx, now_ms, &rec).await?;
            }
            tx.commit().await?;
            return Err(Error::ImpersonationOver);
        }
        Ok(s.imp)
    }

    /// Ends the staff member's own session ("end" on the banner). Ending a session that has
    /// already ended is fine; ending someone else's is [`Error::Forbidden`].
    pub async fn end_impersonation(
        &self,
        staff: &StaffMember,
        impersonation_id: i64,
        client_addr: &str,
    ) -> Result<()> {
        self.end_impersonation_as(staff, impersonation_id, client_addr, false)
            .await
    }

    /// A supervisor ends anyone's session. Agents and admins: [`Error::Forbidden`].
    pub async fn end_impersonation_as_supervisor(
        &self,
        supervisor: &StaffMember,
        impersonation_id: i64,
        client_addr: &str,
    ) -> Result<()> {
        self.end_impersonation_as(supervisor, impersonation_id, client_addr, true)
            .await
    }

    async fn end_impersonation_as(
        &self,
        staff: &StaffMember,
        impersonation_id: i64,
        client_addr: &str,
        as_supervisor: bool,
    ) -> Result<()> {
        let mut conn = self.db().pool().acquire().await?;
        let stored = load(&mut conn, impersonation_id).await?;
        drop(conn);
        let mut rec = AuditRecord::new(action::IMPERSONATION_END, Outcome::Ok, client_addr)
            .staff(staff)
            .impersonation(impersonation_id);
        if let Some(s) = &stored {
            rec = rec.msisdn(&s.imp.msisdn);
        }
        let result: Result<()> = async {
            let s = stored.as_ref().ok_or(Error::ImpersonationOver)?;
            let now_ms = self.now_ms();
            let mut tx = self.db().begin().await?;
            let (end_reason, note) = if as_supervisor {
                authorize(&mut tx, staff, &[Role::Supervisor]).await?;
                (
                    "ended_by_supervisor",
                    format!("by supervisor; owner={}", s.imp.staff_username),
                )
            } else {
                // Anyone may end their own session, whatever their role is now.
                if s.imp.staff_id != staff.id {
                    return Err(Error::Forbidden);
                }
                ("ended", "by owner".to_owned())
            };
            let ended = end_open(&mut tx, s.imp.id, now_ms, Some(staff.id), end_reason).await?;
            let detail = if ended {
                note
            } else {
                format!("{note}; already ended")
            };
            audit::append(&mut tx, now_ms, &rec.clone().detail(detail)).await?;
            tx.commit().await?;
            Ok(())
        }
        .await;
        if let Err(e) = &result {
            self.audit_refusal(rec, e).await;
        }
        result
    }

    /// Every open session, oldest first: the supervisor's overview. Supervisors only.
    pub async fn active_impersonations(
        &self,
        supervisor: &StaffMember,
        client_addr: &str,
    ) -> Result<Vec<Impersonation>> {
        let rec = AuditRecord::new(action::IMPERSONATION_LIST, Outcome::Ok, client_addr)
            .staff(supervisor);
        let mut conn = self.db().pool().acquire().await?;
        if let Err(e) = authorize(&mut conn, supervisor, &[Role::Supervisor]).await {
            drop(conn);
            self.audit_refusal(rec, &e).await;
            return Err(e);
        }
        let now_ms = self.now_ms();
        audit::append(&mut conn, now_ms, &rec).await?;
        let rows = sqlx::query(&format!(
            "{SELECT} WHERE i.ended_at IS NULL AND i.expires_at > $1 AND s.disabled = 0 \
             ORDER BY i.started_at, i.id"
        ))
        .bind(now_ms)
        .fetch_all(&mut *conn)
        .await?;
        rows.iter()
            .map(|r| stored_from_row(r).map(|s| s.imp))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::audit::AuditEntry;
    use crate::service::staff::tests::{all_rows, make_staff, staff_pair};
    use crate::testing::TestHall;
    use chrono::Duration;

    const ADDR: &str = "192.0.2.10";

    async fn setup() -> (TestHall, StaffMember, StaffMember, Msisdn, Msisdn) {
        let h = TestHall::empty().await;
        let (agent, supervisor) = staff_pair(&h).await;
        let m1 = h.subscriber("13800138000", 10_000).await;
        let m2 = h.subscriber("15000150000", 10_000).await;
        (h, agent, supervisor, m1, m2)
    }

    #[tokio::test]
    async fn a_reason_is_required() {
        let (h, agent, _, m1, _) = setup().await;
        for bad in ["", "   ", "abc", " ab ", "客户", "\t\n", &"长".repeat(501)] {
            assert!(
                matches!(
                    h.start_impersonation(&agent, &m1, bad, ADDR).await,
                    Err(Error::Invalid(Invalid::Reason))
                ),
                "{bad:?}"
            );
        }
        assert!(h.outbox_for(&m1, 10).await.unwrap().is_empty());
        assert!(h.current_impersonation(agent.id).await.unwrap().is_none());
        let imp = h
            .start_impersonation(&agent, &m1, "  客户来电  ", ADDR)
            .await
            .unwrap();
        assert_eq!(imp.reason, "客户来电", "trimmed");
    }

    #[tokio::test]
    async fn starting_queues_a_notice_and_is_audited() {
        let (h, agent, _, m1, _) = setup().await;
        let imp = h
            .start_impersonation(&agent, &m1, "客户来电咨询套餐", ADDR)
            .await
            .unwrap();
        assert_eq!(imp.staff_id, agent.id);
        assert_eq!(imp.staff_username, "agent01");
        assert_eq!(imp.msisdn, m1);
        assert_eq!(imp.expires_at - imp.started_at, Duration::minutes(30));
        assert_eq!(
            h.current_impersonation(agent.id).await.unwrap(),
            Some(imp.clone())
        );
        assert_eq!(h.check_impersonation(imp.id).await.unwrap(), imp);
        assert!(imp.banner_zh().contains("agent01") && imp.banner_zh().contains("13800138000"));
        assert!(imp.banner_zh().contains("10:30"));

        let sms = h.outbox_for(&m1, 10).await.unwrap();
        assert_eq!(sms.len(), 1);
        assert_eq!(sms[0].kind, "impersonation");
        assert_eq!(
            sms[0].body,
            "【中国移动】客服人员(工号 agent01)于 10:00 受理您的业务,进入了您的网上营业厅账户。如非本人授权,请致电 10086。"
        );

        let rows = all_rows(&h).await;
        let start: Vec<&AuditEntry> = rows
            .iter()
            .filter(|r| r.action == action::IMPERSONATION_START)
            .collect();
        assert_eq!(start.len(), 1);
        let r = start[0];
        assert_eq!(r.staff_id, Some(agent.id));
        assert_eq!(r.staff_username.as_deref(), Some("agent01"));
        assert_eq!(r.msisdn.as_deref(), Some("13800138000"));
        assert_eq!(r.impersonation_id, Some(imp.id));
        assert_eq!(r.client_addr, ADDR);
        assert_eq!(r.outcome, "ok");
        assert_eq!(r.detail, "reason=客户来电咨询套餐");
        assert_eq!(r.at, h.now());
        // Reads while acting are recorded against the session.
        h.audit_read(&agent, Some(&imp), &m1, "bills", ADDR)
            .await
            .unwrap();
        let rows = all_rows(&h).await;
        let read = rows
            .iter()
            .find(|r| r.action == action::CUSTOMER_READ)
            .unwrap();
        assert_eq!(
            (read.staff_id, read.impersonation_id, read.msisdn.as_deref()),
            (Some(agent.id), Some(imp.id), Some("13800138000"))
        );
    }

    #[tokio::test]
    async fn the_30_minute_cap_holds_without_anyone_ending_it() {
        let (h, agent, supervisor, m1, m2) = setup().await;
        let imp = h
            .start_impersonation(&agent, &m1, "客户来电咨询", ADDR)
            .await
            .unwrap();
        h.clock.advance(Duration::minutes(29));
        assert!(h.check_impersonation(imp.id).await.is_ok());
        assert_eq!(imp.remaining(h.now()), Duration::minutes(1));
        assert!(matches!(
            h.start_impersonation(&agent, &m2, "另一位客户", ADDR).await,
            Err(Error::ImpersonationActive)
        ));
        h.clock.advance(Duration::minutes(2));
        assert!(h.current_impersonation(agent.id).await.unwrap().is_none());
        assert!(h
            .active_impersonations(&supervisor, ADDR)
            .await
            .unwrap()
            .is_empty());
        assert!(matches!(
            h.check_impersonation(imp.id).await,
            Err(Error::ImpersonationOver)
        ));
        assert!(matches!(
            h.check_impersonation(imp.id).await,
            Err(Error::ImpersonationOver)
        ));
        // A new one can start.
        let next = h
            .start_impersonation(&agent, &m2, "另一位客户", ADDR)
            .await
            .unwrap();
        assert!(h.check_impersonation(next.id).await.is_ok());
        // The expiry is on record once, as ending at the cap.
        let rows = all_rows(&h).await;
        let ends: Vec<&AuditEntry> = rows
            .iter()
            .filter(|r| r.action == action::IMPERSONATION_END)
            .collect();
        assert_eq!(ends.len(), 1, "{ends:#?}");
        assert_eq!(ends[0].detail, "expired");
        assert_eq!(ends[0].impersonation_id, Some(imp.id));
        let ended_at: i64 = sqlx::query("SELECT ended_at FROM impersonations WHERE id = $1")
            .bind(imp.id)
            .fetch_one(h.db().pool())
            .await
            .unwrap()
            .try_get(0)
            .unwrap();
        assert_eq!(from_millis(ended_at), imp.expires_at);
    }

    #[tokio::test]
    async fn an_expired_session_nobody_checked_does_not_block_the_next() {
        let (h, agent, _, m1, m2) = setup().await;
        let imp = h
            .start_impersonation(&agent, &m1, "客户来电咨询", ADDR)
            .await
            .unwrap();
        h.clock.advance(Duration::minutes(31));
        let next = h
            .start_impersonation(&agent, &m2, "另一位客户", ADDR)
            .await
            .unwrap();
        assert_eq!(h.current_impersonation(agent.id).await.unwrap(), Some(next));
        assert!(matches!(
            h.check_impersonation(imp.id).await,
            Err(Error::ImpersonationOver)
        ));
    }

    #[tokio::test]
    async fn no_nesting_even_when_two_starts_race() {
        let (h, agent, supervisor, m1, m2) = setup().await;
        let first = h
            .start_impersonation(&agent, &m1, "客户来电咨询", ADDR)
            .await
            .unwrap();
        assert!(matches!(
            h.start_impersonation(&agent, &m2, "另一位客户", ADDR).await,
            Err(Error::ImpersonationActive)
        ));
        assert!(matches!(
            h.start_impersonation(&agent, &m1, "同一位客户", ADDR).await,
            Err(Error::ImpersonationActive)
        ));
        // Another staff member may act for the same subscriber meanwhile.
        assert!(h
            .start_impersonation(&supervisor, &m1, "主管复核", ADDR)
            .await
            .is_ok());
        h.end_impersonation(&agent, first.id, ADDR).await.unwrap();
        assert!(h.current_impersonation(agent.id).await.unwrap().is_none());

        for round in 0..3 {
            let (a, b) = tokio::join!(
                h.start_impersonation(&agent, &m1, "并发请求一", ADDR),
                h.start_impersonation(&agent, &m2, "并发请求二", ADDR),
            );
            let winner = match (&a, &b) {
                (Ok(x), Err(_)) | (Err(_), Ok(x)) => x.id,
                _ => panic!("round {round}: exactly one must start: {a:?} {b:?}"),
            };
            let loser = if a.is_ok() { b } else { a };
            assert!(
                matches!(loser, Err(Error::ImpersonationActive)),
                "{loser:?}"
            );
            let open: i64 = sqlx::query(
                "SELECT COUNT(*) FROM impersonations WHERE staff_id = $1 AND ended_at IS NULL",
            )
            .bind(agent.id)
            .fetch_one(h.db().pool())
            .await
            .unwrap()
            .try_get(0)
            .unwrap();
            assert_eq!(open, 1);
            h.end_impersonation(&agent, winner, ADDR).await.unwrap();
        }
    }

    #[tokio::test]
    async fn staff_numbers_admins_and_strangers_are_refused() {
        let (h, agent, _, m1, _) = setup().await;
        // A staff member's own number is a subscriber too, but never a target.
        let staff_number = h.subscriber("13900139000", 0).await;
        make_staff(&h, "agent02", Role::Agent, Some("13900139000")).await;
        assert!(matches!(
            h.start_impersonation(&agent, &staff_number, "客户来电咨询", ADDR)
                .await,
            Err(Error::ImpersonationOfStaff)
        ));
        let own = h.subscriber("13700137000", 0).await;
        let me2 = make_staff(&h, "agent03", Role::Agent, Some("13700137000")).await;
        assert!(matches!(
            h.start_impersonation(&me2, &own, "自己的号码", ADDR).await,
            Err(Error::ImpersonationOfStaff)
        ));
        let admin = make_staff(&h, "admin01", Role::Admin, None).await;
        assert!(matches!(
            h.start_impersonation(&admin, &m1, "客户来电咨询", ADDR)
                .await,
            Err(Error::Forbidden)
        ));
        let stranger = Msisdn::parse("18800188000").unwrap();
        assert!(matches!(
            h.start_impersonation(&agent, &stranger, "客户来电咨询", ADDR)
                .await,
            Err(Error::UnknownSubscriber)
        ));
        // A caller's stale copy of a role does not help: the database's role counts.
        let forged = StaffMember {
            role: Role::Agent,
            ..admin.clone()
        };
        assert!(matches!(
            h.start_impersonation(&forged, &m1, "客户来电咨询", ADDR)
                .await,
            Err(Error::Forbidden)
        ));
        // Nothing started, no notice sent, every refusal on record with both identities.
        for m in [&staff_number, &own, &m1] {
            assert!(h.outbox_for(m, 10).await.unwrap().is_empty());
        }
        let open: i64 = sqlx::query("SELECT COUNT(*) FROM impersonations")
            .fetch_one(h.db().pool())
            .await
            .unwrap()
            .try_get(0)
            .unwrap();
        assert_eq!(open, 0);
        let rows = all_rows(&h).await;
        let refused: Vec<&AuditEntry> = rows
            .iter()
            .filter(|r| r.action == action::IMPERSONATION_START)
            .collect();
        assert_eq!(refused.len(), 5);
        assert!(refused.iter().all(|r| r.outcome != "ok"
            && r.staff_id.is_some()
            && r.msisdn.is_some()
            && r.client_addr == ADDR));
        assert_eq!(refused.iter().filter(|r| r.outcome == "denied").count(), 2);
    }

    #[tokio::test]
    async fn supervisors_end_anyones_session_agents_only_their_own() {
        let (h, agent, supervisor, m1, m2) = setup().await;
        let agent2 = make_staff(&h, "agent02", Role::Agent, None).await;
        let admin = make_staff(&h, "admin01", Role::Admin, None).await;
        let imp = h
            .start_impersonation(&agent, &m1, "客户来电咨询", ADDR)
            .await
            .unwrap();
        let other = h
            .start_impersonation(&agent2, &m2, "客户来电咨询", ADDR)
            .await
            .unwrap();
        // Another agent can neither end it as owner nor as supervisor; nor can an admin.
        assert!(matches!(
            h.end_impersonation(&agent2, imp.id, ADDR).await,
            Err(Error::Forbidden)
        ));
        assert!(matches!(
            h.end_impersonation_as_supervisor(&agent2, imp.id, ADDR)
                .await,
            Err(Error::Forbidden)
        ));
        assert!(matches!(
            h.end_impersonation_as_supervisor(&admin, imp.id, ADDR)
                .await,
            Err(Error::Forbidden)
        ));
        assert!(matches!(
            h.active_impersonations(&agent, ADDR).await,
            Err(Error::Forbidden)
        ));
        assert!(h.check_impersonation(imp.id).await.is_ok());
        let active = h.active_impersonations(&supervisor, ADDR).await.unwrap();
        assert_eq!(active, vec![imp.clone(), other.clone()]);

        h.end_impersonation_as_supervisor(&supervisor, imp.id, ADDR)
            .await
            .unwrap();
        assert!(matches!(
            h.check_impersonation(imp.id).await,
            Err(Error::ImpersonationOver)
        ));
        assert!(h.current_impersonation(agent.id).await.unwrap().is_none());
        // Ending again is harmless.
        h.end_impersonation(&agent, imp.id, ADDR).await.unwrap();
        h.end_impersonation(&agent2, other.id, ADDR).await.unwrap();
        h.end_impersonation(&agent2, other.id, ADDR).await.unwrap();
        assert!(h
            .active_impersonations(&supervisor, ADDR)
            .await
            .unwrap()
            .is_empty());
        assert!(matches!(
            h.end_impersonation(&agent, 987_654, ADDR).await,
            Err(Error::ImpersonationOver)
        ));
        let (by, why): (i64, String) = {
            let r = sqlx::query("SELECT ended_by, end_reason FROM impersonations WHERE id = $1")
                .bind(imp.id)
                .fetch_one(h.db().pool())
                .await
                .unwrap();
            (r.try_get(0).unwrap(), r.try_get(1).unwrap())
        };
        assert_eq!((by, why.as_str()), (supervisor.id, "ended_by_supervisor"));

        let rows = all_rows(&h).await;
        let ends: Vec<(String, Option<String>, String)> = rows
            .iter()
            .filter(|r| r.action == action::IMPERSONATION_END)
            .map(|r| {
                (
                    r.staff_username.clone().unwrap_or_default(),
                    r.msisdn.clone(),
                    r.outcome.clone(),
                )
            })
            .collect();
        let m1s = Some("13800138000".to_string());
        let m2s = Some("15000150000".to_string());
        assert_eq!(
            ends,
            vec![
                ("agent02".into(), m1s.clone(), "denied".into()),
                ("agent02".into(), m1s.clone(), "denied".into()),
                ("admin01".into(), m1s.clone(), "denied".into()),
                ("supervisor01".into(), m1s.clone(), "ok".into()),
                ("agent01".into(), m1s.clone(), "ok".into()),
                ("agent02".into(), m2s.clone(), "ok".into()),
                ("agent02".into(), m2s.clone(), "ok".into()),
                ("agent01".into(), None, "failed".into()),
            ]
        );
    }

    #[tokio::test]
    async fn disabling_an_agent_ends_their_session() {
        let (h, agent, _, m1, _) = setup().await;
        let admin = make_staff(&h, "admin01", Role::Admin, None).await;
        let imp = h
            .start_impersonation(&agent, &m1, "客户来电咨询", ADDR)
            .await
            .unwrap();
        h.disable_staff(&admin, agent.id, ADDR).await.unwrap();
        assert!(matches!(
            h.check_impersonation(imp.id).await,
            Err(Error::ImpersonationOver)
        ));
        assert!(h.current_impersonation(agent.id).await.unwrap().is_none());
        h.enable_staff(&admin, agent.id, ADDR).await.unwrap();
        assert!(matches!(
            h.check_impersonation(imp.id).await,
            Err(Error::ImpersonationOver)
        ));
    }
}
