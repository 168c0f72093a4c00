//! Customer-care staff accounts (SPEC §5): agents, supervisors and admins; sign-in with a
//! password (argon2) plus a TOTP code for supervisors and admins; lockout after repeated
//! failures; and the admin functions that manage accounts. Every attempt and change is audited.
//!
//! Roles are checked against the database on every call, not trusted from the caller's copy of
//! [`StaffMember`]: a member disabled or re-roled since signing in loses the power at once.
use std::time::Duration;

use serde::Serialize;
use sqlx::{AnyConnection, Row};

use crate::domain::Msisdn;
use crate::error::{is_unique_violation, Error, Invalid, Result};
use crate::hall::Hall;
use crate::service::audit::{self, action, AuditRecord, Outcome};
use crate::service::{passwords, totp};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Searches subscribers, views masked profiles, acts as a subscriber.
    Agent,
    /// An agent who also reads the audit log and ends others' impersonations.
    Supervisor,
    /// Manages staff accounts; never acts as a subscriber.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }

    pub fn from_db(s: &str) -> Option<Self> {
        match s {
            "agent" => Some(Role::Agent),
            "supervisor" => Some(Role::Supervisor),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    pub fn zh(self) -> &'static str {
        match self {
            Role::Agent => "客服代表",
            Role::Supervisor => "值班主管",
            Role::Admin => "系统管理员",
        }
    }

    /// Supervisors and admins sign in with a TOTP code as well as the password.
    pub fn needs_totp(self) -> bool {
        !matches!(self, Role::Agent)
    }
}

/// A staff account as the rest of the hall sees it (no password hash, no TOTP secret).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StaffMember {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    /// The member's own mobile number, if any: it can never be impersonated.
    pub msisdn: Option<Msisdn>,
    pub disabled: bool,
}

/// A new account. `Debug` hides the password and the secret.
#[derive(Clone)]
pub struct NewStaff {
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub password: String,
    /// Base32; generated when a supervisor or admin is created without one.
    pub totp_secret: Option<String>,
    pub msisdn: Option<Msisdn>,
}

impl std::fmt::Debug for NewStaff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewStaff")
            .field("username", &self.username)
            .field("display_name", &self.display_name)
            .field("role", &self.role)
            .field("password", &"***")
            .field("totp_secret", &self.totp_secret.as_ref().map(|_| "***"))
            .field("msisdn", &self.msisdn)
            .finish()
    }
}

/// The created account and its TOTP secret (Base32), to be shown once for enrolment.
#[derive(Clone, Debug)]
pub struct CreatedStaff {
    pub staff: StaffMember,
    pub totp_secret: Option<String>,
}

/// Wrong sign-ins in a row (within two 15-minute windows) that lock a username...
pub const LOCK_AFTER: i64 = 5;
/// ...for this long.
pub const LOCK_MINUTES: i64 = 15;
const LOCK_MS: i64 = LOCK_MINUTES * 60_000;

/// Trims and lower-cases a typed username; valid ones are 3–32 of `[a-z0-9_.]`.
pub fn normalize_username(input: &str) -> Result<String, Invalid> {
    let u = input.trim().to_ascii_lowercase();
    let ok = (3..=32).contains(&u.len())
        && u.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.');
    if ok {
        Ok(u)
    } else {
        Err(Invalid::Username)
    }
}

/// At least 8 characters (at most 128), with at least one letter and one digit.
pub fn validate_staff_password(p: &str) -> Result<(), Invalid> {
    let n = p.chars().count();
    let ok = (8..=128).contains(&n)
        && p.chars().any(|c| c.is_ascii_alphabetic())
        && p.chars().any(|c| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(Invalid::StaffPassword)
    }
}

fn normalize_display_name(s: &str) -> Result<String, Invalid> {
    let d = s.trim();
    if d.is_empty() || d.chars().count() > 64 || d.chars().any(char::is_control) {
        return Err(Invalid::DisplayName);
    }
    Ok(d.to_owned())
}

const MEMBER_COLUMNS: &str = "id, username, display_name, role, msisdn, disabled";

fn member_from_row(r: &sqlx::any::AnyRow) -> Result<StaffMember> {
    let corrupt = |what: &str| Error::Storage(format!("unreadable {what} in staff"));
    let msisdn: Option<String> = r.try_get(4)?;
    Ok(StaffMember {
        id: r.try_get(0)?,
        username: r.try_get(1)?,
        display_name: r.try_get(2)?,
        role: Role::from_db(&r.try_get::<String, _>(3)?).ok_or_else(|| corrupt("role"))?,
        msisdn: msisdn
            .map(|m| Msisdn::parse(&m).map_err(|_| corrupt("msisdn")))
            .transpose()?,
        disabled: r.try_get::<i64, _>(5)? != 0,
    })
}

pub(crate) async fn load_member(conn: &mut AnyConnection, id: i64) -> Result<Option<StaffMember>> {
    let row = sqlx::query(&format!("SELECT {MEMBER_COLUMNS} FROM staff WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(member_from_row).transpose()
}

/// Checks, against the database, that `actor` still exists, is enabled and holds one of
/// `allowed`; returns the current record. Anything else is [`Error::Forbidden`].
pub(crate) async fn authorize(
    conn: &mut AnyConnection,
    actor: &StaffMember,
    allowed: &[Role],
) -> Result<StaffMember> {
    match load_member(conn, actor.id).await? {
        Some(m) if !m.disabled && m.username == actor.username && allowed.contains(&m.role) => {
            Ok(m)
        }
        _ => Err(Error::Forbidden),
    }
}

/// What sign-in needs beyond the public record.
struct Credentials {
    member: StaffMember,
    password_hash: String,
    totp_secret: Option<String>,
}

async fn hash_password(password: &str) -> Result<String> {
    let p = password.to_owned();
    tokio::task::spawn_blocking(move || passwords::hash(&p))
        .await
        .map_err(|e| Error::Storage(format!("password hashing failed: {e}")))?
}

/// argon2 is deliberately slow: run it off the async workers.
async fn verify_password(password: &str, hash: String) -> Result<bool> {
    let p = password.to_owned();
    tokio::task::spawn_blocking(move || passwords::verify(&p, &hash))
        .await
        .map_err(|e| Error::Storage(format!("password check failed: {e}")))
}

fn fail_key(username: &str, window: i64) -> String {
    format!("staff:signin:fails:{username}:{window}")
}

fn lock_key(username: &str) -> String {
    format!("staff:signin:lock:{username}")
}

impl Hall {
    /// Creates a staff account. Admins only.
    pub async fn create_staff(
        &self,
        actor: &StaffMember,
        new: NewStaff,
        client_addr: &str,
    ) -> Result<CreatedStaff> {
        self.add_staff(Some(actor), new, client_addr).await
    }

    /// Creates a staff account without an acting admin. **For `server seed` (and tests)
    /// only**: it is how the first admin comes to exist. The console must use
    /// [`Hall::create_staff`].
    pub async fn bootstrap_staff(&self, new: NewStaff) -> Result<CreatedStaff> {
        self.add_staff(None, new, "seed").await
    }

    async fn add_staff(
        &self,
        actor: Option<&StaffMember>,
        new: NewStaff,
        client_addr: &str,
    ) -> Result<CreatedStaff> {
        let mut rec = AuditRecord::new(action::STAFF_CREATE, Outcome::Ok, client_addr);
        if let Some(a) = actor {
            rec = rec.staff(a);
        }
        let result = self.add_staff_tx(actor, &new, client_addr).await;
        match &result {
            Ok(_) => {}
            Err(e) => {
                let name = normalize_username(&new.username).unwrap_or_else(|_| "?".into());
                let rec = rec.detail(format!("new={name} role={}", new.role.as_str()));
                self.audit_refusal(rec, e).await;
            }
        }
        result
    }

    async fn add_staff_tx(
        &self,
        actor: Option<&StaffMember>,
        new: &NewStaff,
        client_addr: &str,
    ) -> Result<CreatedStaff> {
        if let Some(a) = actor {
            // A cheap refusal before any hashing; re-checked inside the transaction.
            let mut conn = self.db().pool().acquire().await?;
            authorize(&mut conn, a, &[Role::Admin]).await?;
        }
        let username = normalize_username(&new.username)?;
        let display_name = normalize_display_name(&new.display_name)?;
        validate_staff_password(&new.password)?;
        let secret = match &new.totp_secret {
            Some(s) => Some(totp::normalize_secret(s)?),
            None if new.role.needs_totp() => Some(totp::generate_secret()),
            None => None,
        };
        let hash = hash_password(&new.password).await?;
        let now = self.now_ms();
        let mut tx = self.db().begin().await?;
        if let Some(a) = actor {
            authorize(&mut tx, a, &[Role::Admin]).await?;
        }
        let inserted = sqlx::query(
            "INSERT INTO staff (username, display_name, role, password_hash, totp_secret, msisdn, \
             disabled, created_at) VALUES ($1, $2, $3, $4, $5, $6, 0, $7) RETURNING id",
        )
        .bind(&username)
        .bind(&display_name)
        .bind(new.role.as_str())
        .bind(hash)
        .bind(secret.clone())
        .bind(new.msisdn.as_ref().map(|m| m.as_str().to_owned()))
        .bind(now)
        .fetch_one(&mut *tx)
        .await;
        let id: i64 = match inserted {
            Ok(row) => row.try_get(0)?,
            Err(e) if is_unique_violation(&e) => return Err(Error::UsernameTaken),
            Err(e) => return Err(e.into()),
        };
        let staff = StaffMember {
            id,
            username,
            display_name,
            role: new.role,
            msisdn: new.msisdn.clone(),
            disabled: false,
        };
        let mut rec =
            AuditRecord::new(action::STAFF_CREATE, Outcome::Ok, client_addr).detail(format!(
                "new={} id={id} role={}{}",
                staff.username,
                staff.role.as_str(),
                if actor.is_none() { " (seed)" } else { "" }
            ));
        if let Some(a) = actor {
            rec = rec.staff(a);
        }
        audit::append(&mut tx, now, &rec).await?;
        tx.commit().await?;
        Ok(CreatedStaff {
            staff,
            totp_secret: secret,
        })
    }

    /// Signs a staff member in: password, then (for supervisors, admins and any account with a
    /// secret) a TOTP code within ±30 s, each code usable once. Every failure — unknown name,
    /// wrong password, disabled, missing/wrong/reused code, locked — is the same
    /// [`Error::StaffWrongCredentials`] after the same argon2 work; the audit row says which.
    /// 5 failures in a row lock the username for 15 minutes (unknown names too, so the lock
    /// does not reveal which names exist).
    pub async fn staff_sign_in(
        &self,
        username: &str,
        password: &str,
        totp_code: Option<&str>,
        client_addr: &str,
    ) -> Result<StaffMember> {
        let now = self.now();
        let now_ms = now.timestamp_millis();
        // An invalid name is never looked up, counted or written to the log (it may be a
        // password typed into the wrong field).
        let name = normalize_username(username).ok();
        let creds = match &name {
            Some(n) => self.load_credentials(n).await?,
            None => None,
        };
        let locked = match &name {
            Some(n) => self.sign_in_locked(n, now_ms).await?,
            None => false,
        };
        let hash = creds
            .as_ref()
            .map(|c| c.password_hash.clone())
            .unwrap_or_else(|| passwords::decoy().to_owned());
        let password_ok = verify_password(password, hash).await?;

        let cause: Option<&str> = match &creds {
            _ if locked => Some("locked"),
            None if name.is_none() => Some("invalid_username"),
            None => Some("unknown_username"),
            Some(_) if !password_ok => Some("wrong_password"),
            Some(c) if c.member.disabled => Some("disabled"),
            Some(c) => self.totp_problem(c, totp_code, now.timestamp()).await?,
        };

        let mut rec = AuditRecord::new(action::STAFF_SIGN_IN, Outcome::Ok, client_addr);
        if let Some(c) = &creds {
            rec = rec.staff(&c.member);
        } else if let Some(n) = &name {
            rec.staff_username = Some(n);
        }
        match (cause, &creds) {
            (None, Some(c)) => {
                if let Some(n) = &name {
                    self.clear_sign_in_failures(n, now_ms).await?;
                }
                // Fail closed: no sign-in that is not on record.
                self.audit(&rec).await?;
                Ok(c.member.clone())
            }
            (cause, _) => {
                let cause = cause.unwrap_or("unknown");
                if let (Some(n), false) = (&name, locked) {
                    if self.note_sign_in_failure(n, now_ms).await? {
                        rec.detail = format!("{cause}; now locked for {LOCK_MINUTES} minutes");
                    } else {
                        rec.detail = cause.to_owned();
                    }
                } else {
                    rec.detail = cause.to_owned();
                }
                rec.outcome = Outcome::Denied;
                self.audit(&rec).await?;
                Err(Error::StaffWrongCredentials)
            }
        }
    }

    async fn load_credentials(&self, username: &str) -> Result<Option<Credentials>> {
        let row = sqlx::query(&format!(
            "SELECT {MEMBER_COLUMNS}, password_hash, totp_secret FROM staff WHERE username = $1"
        ))
        .bind(username)
        .fetch_optional(self.db().pool())
        .await?;
        row.map(|r| {
            Ok(Credentials {
                member: member_from_row(&r)?,
                password_hash: r.try_get(6)?,
                totp_secret: r.try_get(7)?,
            })
        })
        .transpose()
    }

    /// `None` when the second factor is satisfied, else why not.
    async fn totp_problem(
        &self,
        c: &Credentials,
        code: Option<&str>,
        unix_secs: i64,
    ) -> Result<Option<&'static str>> {
        let secret = match &c.totp_secret {
            Some(s) => s,
            None if c.member.role.needs_totp() => return Ok(Some("totp_not_enrolled")),
            None => return Ok(None),
        };
        let Some(code) = code.map(str::trim).filter(|c| !c.is_empty()) else {
            return Ok(Some("totp_missing"));
        };
        let Some(step) = totp::verify(secret, code, unix_secs) else {
            return Ok(Some("totp_wrong"));
        };
        // Each code once (RFC 6238 §5.2): the first to count this step wins, atomically in the
        // shared store; a replay within the window is refused.
        let key = format!("staff:totp:used:{}:{step}", c.member.id);
        let uses = self
            .eph()
            .incr(
                &key,
                Duration::from_secs((totp::STEP_SECS * (2 * totp::WINDOW + 2)) as u64),
            )
            .await?;
        Ok((uses > 1).then_some("totp_reused"))
    }

    async fn sign_in_locked(&self, username: &str, now_ms: i64) -> Result<bool> {
        let until = self.eph().get(&lock_key(username)).await?;
        Ok(until
            .and_then(|u| u.parse::<i64>().ok())
            .is_some_and(|until| now_ms < until))
    }

    /// Counts a failure in the current 15-minute window (by the service clock) and adds the
    /// previous window's count, so a run of failures across a window boundary still counts.
    /// Returns true when this failure locked the username.
    async fn note_sign_in_failure(&self, username: &str, now_ms: i64) -> Result<bool> {
        let window = now_ms.div_euclid(LOCK_MS);
        let keep = Duration::from_millis((2 * LOCK_MS) as u64);
        let here = self.eph().incr(&fail_key(username, window), keep).await?;
        let before = self
            .eph()
            .get(&fail_key(username, window - 1))
            .await?
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0);
        if here + before < LOCK_AFTER {
            return Ok(false);
        }
        let until = now_ms + LOCK_MS;
        self.eph()
            .put(
                &lock_key(username),
                &until.to_string(),
                Duration::from_millis(LOCK_MS as u64),
            )
            .await?;
        self.clear_sign_in_failures(username, now_ms).await?;
        Ok(true)
    }

    async fn clear_sign_in_failures(&self, username: &str, now_ms: i64) -> Result<()> {
        let window = now_ms.div_euclid(LOCK_MS);
        self.eph().delete(&fail_key(username, window)).await?;
        self.eph().delete(&fail_key(username, window - 1)).await?;
        Ok(())
    }

    /// The current record of a staff member (the console reloads it on every request, so a
    /// disabled account's session stops working).
    pub async fn staff_by_id(&self, id: i64) -> Result<Option<StaffMember>> {
        let mut conn = self.db().pool().acquire().await?;
        load_member(&mut conn, id).await
    }

    /// Every staff account, by username. Admins only.
    pub async fn list_staff(
        &self,
        admin: &StaffMember,
        client_addr: &str,
    ) -> Result<Vec<StaffMember>> {
        let rec = AuditRecord::new(action::STAFF_LIST, Outcome::Ok, client_addr).staff(admin);
        let mut conn = self.db().pool().acquire().await?;
        if let Err(e) = authorize(&mut conn, admin, &[Role::Admin]).await {
            drop(conn);
            self.audit_refusal(rec, &e).await;
            return Err(e);
        }
        audit::append(&mut conn, self.now_ms(), &rec).await?;
        let rows = sqlx::query(&format!(
            "SELECT {MEMBER_COLUMNS} FROM staff ORDER BY username"
        ))
        .fetch_all(&mut *conn)
        .await?;
        rows.iter().map(member_from_row).collect()
    }

    /// Disables an account (admins only; not their own). Its open impersonation ends at once.
    pub async fn disable_staff(
        &self,
        admin: &StaffMember,
        staff_id: i64,
        client_addr: &str,
    ) -> Result<StaffMember> {
        self.set_staff_disabled(admin, staff_id, true, client_addr)
            .await
    }

    /// Enables a disabled account again (admins only).
    pub async fn enable_staff(
        &self,
        admin: &StaffMember,
        staff_id: i64,
        client_addr: &str,
    ) -> Result<StaffMember> {
        self.set_staff_disabled(admin, staff_id, false, client_addr)
            .await
    }

    async fn set_staff_disabled(
        &self,
        admin: &StaffMember,
        staff_id: i64,
        disabled: bool,
        client_addr: &str,
    ) -> Result<StaffMember> {
        let act = if disabled {
            action::STAFF_DISABLE
        } else {
            action::STAFF_ENABLE
        };
        let rec = AuditRecord::new(act, Outcome::Ok, client_addr)
            .staff(admin)
            .detail(format!("target_id={staff_id}"));
        let result: Result<StaffMember> = async {
            let now = self.now_ms();
            let mut tx = self.db().begin().await?;
            authorize(&mut tx, admin, &[Role::Admin]).await?;
            if disabled && staff_id == admin.id {
                // An admin cannot lock themself out (and perhaps the hall with them).
                return Err(Error::Forbidden);
            }
            let n = sqlx::query("UPDATE staff SET disabled = $1 WHERE id = $2")
                .bind(disabled as i64)
                .bind(staff_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 0 {
                return Err(Error::UnknownStaff);
            }
            let target = load_member(&mut tx, staff_id)
                .await?
                .ok_or(Error::UnknownStaff)?;
            let mut ended = 0;
            if disabled {
                ended = sqlx::query(
                    "UPDATE impersonations SET ended_at = CASE WHEN expires_at < $1 THEN expires_at \
                     ELSE $1 END, ended_by = $2, end_reason = 'staff_disabled' \
                     WHERE staff_id = $3 AND ended_at IS NULL",
                )
                .bind(now)
                .bind(admin.id)
                .bind(staff_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            }
            let detail = if ended > 0 {
                format!("target={} (open impersonation ended)", target.username)
            } else {
                format!("target={}", target.username)
            };
            audit::append(&mut tx, now, &rec.clone().detail(detail)).await?;
            tx.commit().await?;
            Ok(target)
        }
        .await;
        if let Err(e) = &result {
            self.audit_refusal(rec, e).await;
        }
        result
    }

    /// Sets a new password for an account (admins only) and lifts any sign-in lock on it.
    pub async fn reset_staff_password(
        &self,
        admin: &StaffMember,
        staff_id: i64,
        new_password: &str,
        client_addr: &str,
    ) -> Result<()> {
        let rec = AuditRecord::new(action::STAFF_RESET_PASSWORD, Outcome::Ok, client_addr)
            .staff(admin)
            .detail(format!("target_id={staff_id}"));
        let result: Result<()> = async {
            {
                let mut conn = self.db().pool().acquire().await?;
                authorize(&mut conn, admin, &[Role::Admin]).await?;
            }
            validate_staff_password(new_password)?;
            let hash = hash_password(new_password).await?;
            let now = self.now_ms();
            let mut tx = self.db().begin().await?;
            authorize(&mut tx, admin, &[Role::Admin]).await?;
            let target = load_member(&mut tx, staff_id)
                .await?
                .ok_or(Error::UnknownStaff)?;
            sqlx::query("UPDATE staff SET password_hash = $1 WHERE id = $2")
                .bind(hash)
                .bind(staff_id)
                .execute(&mut *tx)
                .await?;
            let detail = format!("target={}", target.username);
            audit::append(&mut tx, now, &rec.clone().detail(detail)).await?;
            tx.commit().await?;
            self.eph().delete(&lock_key(&target.username)).await?;
            self.clear_sign_in_failures(&target.username, now).await?;
            Ok(())
        }
        .await;
        if let Err(e) = &result {
            self.audit_refusal(rec, e).await;
        }
        result
    }

    /// Replaces an account's TOTP secret (a lost phone; admins only) and returns the new one
    /// (Base32) to enrol, e.g. through [`totp::otpauth_uri`].
    pub async fn reset_staff_totp(
        &self,
        admin: &StaffMember,
        staff_id: i64,
        client_addr: &str,
    ) -> Result<String> {
        let rec = AuditRecord::new(action::STAFF_RESET_TOTP, Outcome::Ok, client_addr)
            .staff(admin)
            .detail(format!("target_id={staff_id}"));
        let result: Result<String> = async {
            let secret = totp::generate_secret();
            let now = self.now_ms();
            let mut tx = self.db().begin().await?;
            authorize(&mut tx, admin, &[Role::Admin]).await?;
            let target = load_member(&mut tx, staff_id)
                .await?
                .ok_or(Error::UnknownStaff)?;
            sqlx::query("UPDATE staff SET totp_secret = $1 WHERE id = $2")
                .bind(&secret)
                .bind(staff_id)
                .execute(&mut *tx)
                .await?;
            let detail = format!("target={}", target.username);
            audit::append(&mut tx, now, &rec.clone().detail(detail)).await?;
            tx.commit().await?;
            Ok(secret)
        }
        .await;
        if let Err(e) = &result {
            self.audit_refusal(rec, e).await;
        }
        result
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::service::audit::{AuditEntry, AuditFilter};
    use crate::testing::TestHall;
    use chrono::Duration as Minutes;

    pub const DEMO_SECRET: &str = "JBSWY3DPEHPK3PXP";
    pub const PASSWORD: &str = "Passw0rd#1";

    pub fn new_staff(username: &str, role: Role, msisdn: Option<&str>) -> NewStaff {
        NewStaff {
            username: username.into(),
            display_name: format!("测试{username}"),
            role,
            password: PASSWORD.into(),
            totp_secret: role.needs_totp().then(|| DEMO_SECRET.into()),
            msisdn: msisdn.map(|m| Msisdn::parse(m).unwrap()),
        }
    }

    /// A seeded account with password [`PASSWORD`] and, for supervisors and admins,
    /// [`DEMO_SECRET`].
    pub async fn make_staff(
        h: &TestHall,
        username: &str,
        role: Role,
        msisdn: Option<&str>,
    ) -> StaffMember {
        h.bootstrap_staff(new_staff(username, role, msisdn))
            .await
            .expect("bootstrap staff")
            .staff
    }

    pub async fn staff_pair(h: &TestHall) -> (StaffMember, StaffMember) {
        (
            make_staff(h, "agent01", Role::Agent, None).await,
            make_staff(h, "supervisor01", Role::Supervisor, None).await,
        )
    }

    /// Every row of the log, oldest first (read directly, bypassing the audited reader).
    pub async fn all_rows(h: &TestHall) -> Vec<AuditEntry> {
        let boss = make_staff(
            h,
            &format!("reader{}", uuid_suffix()),
            Role::Supervisor,
            None,
        )
        .await;
        let mut rows = h
            .audit_log(
                &boss,
                AuditFilter {
                    limit: Some(1000),
                    ..Default::default()
                },
                "test",
            )
            .await
            .unwrap();
        rows.retain(|r| {
            r.staff_username.as_deref() != Some(&boss.username)
                && !r.detail.contains(&boss.username)
        });
        rows.reverse();
        rows
    }

    fn uuid_suffix() -> String {
        uuid::Uuid::new_v4().simple().to_string()[..8].to_owned()
    }

    fn code_now(h: &TestHall, offset_secs: i64) -> String {
        totp::code_at(DEMO_SECRET, h.now().timestamp() + offset_secs)
    }

    fn wrong(res: Result<StaffMember>) -> bool {
        matches!(res, Err(Error::StaffWrongCredentials))
    }

    #[test]
    fn usernames_and_passwords_are_validated() {
        assert_eq!(normalize_username(" Agent01 ").unwrap(), "agent01");
        assert_eq!(normalize_username("li.ming_2").unwrap(), "li.ming_2");
        for bad in [
            "ab",
            "",
            "a b c",
            "agent-01",
            "张三丰",
            &"a".repeat(33),
            "x@y.z",
        ] {
            assert_eq!(normalize_username(bad), Err(Invalid::Username), "{bad:?}");
        }
        assert!(validate_staff_password("Agent#2026").is_ok());
        assert!(validate_staff_password("abcd1234").is_ok());
        for bad in [
            "Ab#123",
            "abcdefgh",
            "12345678",
            "########",
            &"a1".repeat(65),
        ] {
            assert_eq!(
                validate_staff_password(bad),
                Err(Invalid::StaffPassword),
                "{bad:?}"
            );
        }
        let dbg = format!("{:?}", new_staff("agent01", Role::Supervisor, None));
        assert!(
            !dbg.contains(PASSWORD) && !dbg.contains(DEMO_SECRET),
            "{dbg}"
        );
    }

    #[tokio::test]
    async fn only_admins_create_staff_and_input_is_validated() {
        let h = TestHall::empty().await;
        let admin = make_staff(&h, "admin01", Role::Admin, None).await;
        let (agent, supervisor) = staff_pair(&h).await;
        for who in [&agent, &supervisor] {
            assert!(matches!(
                h.create_staff(who, new_staff("newbie", Role::Agent, None), "10.0.0.1")
                    .await,
                Err(Error::Forbidden)
            ));
        }
        let mut bad_name = new_staff("Bad Name!", Role::Agent, None);
        assert!(matches!(
            h.create_staff(&admin, bad_name.clone(), "10.0.0.1").await,
            Err(Error::Invalid(Invalid::Username))
        ));
        bad_name.username = "ok_name".into();
        bad_name.password = "short1".into();
        assert!(matches!(
            h.create_staff(&admin, bad_name.clone(), "10.0.0.1").await,
            Err(Error::Invalid(Invalid::StaffPassword))
        ));
        bad_name.password = "lettersonly".into();
        assert!(matches!(
            h.create_staff(&admin, bad_name.clone(), "10.0.0.1").await,
            Err(Error::Invalid(Invalid::StaffPassword))
        ));
        let mut bad_secret = new_staff("ok_name", Role::Supervisor, None);
        bad_secret.totp_secret = Some("JBSW".into());
        assert!(matches!(
            h.create_staff(&admin, bad_secret, "10.0.0.1").await,
            Err(Error::Invalid(Invalid::TotpSecret))
        ));
        let mut no_name = new_staff("ok_name", Role::Agent, None);
        no_name.display_name = "  ".into();
        assert!(matches!(
            h.create_staff(&admin, no_name, "10.0.0.1").await,
            Err(Error::Invalid(Invalid::DisplayName))
        ));
        assert!(matches!(
            h.create_staff(&admin, new_staff("AGENT01", Role::Agent, None), "10.0.0.1")
                .await,
            Err(Error::UsernameTaken)
        ));

        // A supervisor created without a secret gets one, returned once; an agent gets none.
        let mut sup = new_staff("supervisor02", Role::Supervisor, Some("13700137000"));
        sup.totp_secret = None;
        let created = h.create_staff(&admin, sup, "10.0.0.1").await.unwrap();
        let secret = created.totp_secret.clone().expect("generated secret");
        assert_eq!(totp::decode_secret(&secret).unwrap().len(), 20);
        assert_eq!(created.staff.role, Role::Supervisor);
        assert_eq!(
            created.staff.msisdn.as_ref().unwrap().as_str(),
            "13700137000"
        );
        let now = h.now().timestamp();
        assert!(h
            .staff_sign_in(
                "supervisor02",
                PASSWORD,
                Some(&totp::code_at(&secret, now)),
                "10.0.0.1"
            )
            .await
            .is_ok());
        let agent2 = h
            .create_staff(&admin, new_staff("agent02", Role::Agent, None), "10.0.0.1")
            .await
            .unwrap();
        assert!(agent2.totp_secret.is_none());
        assert_eq!(
            h.staff_by_id(agent2.staff.id).await.unwrap().unwrap(),
            agent2.staff
        );

        // Audited, refusals included, with the acting admin and address; never the password.
        let rows = all_rows(&h).await;
        let creates: Vec<&AuditEntry> = rows
            .iter()
            .filter(|r| r.action == action::STAFF_CREATE && r.client_addr == "10.0.0.1")
            .collect();
        assert_eq!(creates.len(), 10, "{creates:#?}");
        assert_eq!(creates.iter().filter(|r| r.outcome == "denied").count(), 2);
        assert_eq!(creates.iter().filter(|r| r.outcome == "ok").count(), 2);
        assert!(creates
            .iter()
            .filter(|r| r.outcome == "ok")
            .all(|r| r.staff_username.as_deref() == Some("admin01")));
        assert!(rows
            .iter()
            .all(|r| !r.detail.contains(PASSWORD) && !r.detail.contains(&secret)));
    }

    #[tokio::test]
    async fn sign_in_checks_password_totp_and_disabled() {
        let h = TestHall::empty().await;
        let admin = make_staff(&h, "admin01", Role::Admin, None).await;
        let (agent, _supervisor) = staff_pair(&h).await;

        // Agents: password only; the name is case-insensitive.
        let me = h
            .staff_sign_in(" Agent01", PASSWORD, None, "10.0.0.1")
            .await
            .unwrap();
        assert_eq!(me, agent);
        assert!(wrong(
            h.staff_sign_in("agent01", "Passw0rd#2", None, "10.0.0.1")
                .await
        ));
        assert!(wrong(
            h.staff_sign_in("nobody", PASSWORD, None, "10.0.0.1").await
        ));
        assert!(wrong(
            h.staff_sign_in("bad name!", PASSWORD, None, "10.0.0.1")
                .await
        ));

        // Supervisors and admins: TOTP required, wrong or stale codes refused.
        for name in ["supervisor01", "admin01"] {
            assert!(wrong(
                h.staff_sign_in(name, PASSWORD, None, "10.0.0.1").await
            ));
            assert!(wrong(
                h.staff_sign_in(name, PASSWORD, Some(""), "10.0.0.1").await
            ));
            assert!(wrong(
                h.staff_sign_in(name, PASSWORD, Some(&code_now(&h, -90)), "10.0.0.1")
                    .await
            ));
            assert!(wrong(
                h.staff_sign_in(name, PASSWORD, Some(&code_now(&h, 90)), "10.0.0.1")
                    .await
            ));
            // The previous step's code is accepted (clock drift)...
            assert!(h
                .staff_sign_in(name, PASSWORD, Some(&code_now(&h, -30)), "10.0.0.1")
                .await
                .is_ok());
            let good = h
                .staff_sign_in(name, PASSWORD, Some(&code_now(&h, 0)), "10.0.0.1")
                .await
                .unwrap();
            assert_eq!(good.username, name);
            // ...but each code only once: the same code again is a replay.
            assert!(wrong(
                h.staff_sign_in(name, PASSWORD, Some(&code_now(&h, 0)), "10.0.0.1")
                    .await
            ));
            assert!(wrong(
                h.staff_sign_in(name, "Wrong#2026", Some(&code_now(&h, 30)), "10.0.0.1")
                    .await
            ));
            h.clock.advance(Minutes::seconds(30));
        }

        // Disabled accounts are refused even with the right password, and come back when
        // enabled.
        h.disable_staff(&admin, agent.id, "10.0.0.9").await.unwrap();
        assert!(wrong(
            h.staff_sign_in("agent01", PASSWORD, None, "10.0.0.1").await
        ));
        h.enable_staff(&admin, agent.id, "10.0.0.9").await.unwrap();
        assert!(h
            .staff_sign_in("agent01", PASSWORD, None, "10.0.0.1")
            .await
            .is_ok());

        // Every attempt is on record with its cause; the typed name only when valid.
        let rows = all_rows(&h).await;
        let signins: Vec<&AuditEntry> = rows
            .iter()
            .filter(|r| r.action == action::STAFF_SIGN_IN)
            .collect();
        assert_eq!(signins.len(), 4 + 2 * 8 + 2, "{signins:#?}");
        let causes: Vec<&str> = signins.iter().map(|r| r.detail.as_str()).collect();
        for cause in [
            "wrong_password",
            "unknown_username",
            "invalid_username",
            "totp_missing",
            "totp_wrong",
            "totp_reused",
            "disabled",
        ] {
            assert!(causes.contains(&cause), "{cause} in {causes:?}");
        }
        let unknown = signins
            .iter()
            .find(|r| r.detail == "unknown_username")
            .unwrap();
        assert_eq!(unknown.staff_username.as_deref(), Some("nobody"));
        assert_eq!(unknown.staff_id, None);
        let invalid = signins
            .iter()
            .find(|r| r.detail == "invalid_username")
            .unwrap();
        assert_eq!(invalid.staff_username, None);
        assert!(signins.iter().all(|r| r.client_addr == "10.0.0.1"));
        assert_eq!(
            signins.iter().filter(|r| r.outcome == "ok").count(),
            1 + 2 * 2 + 1
        );

        // A supervisor whose secret went missing cannot sign in with the password alone.
        sqlx::query("UPDATE staff SET totp_secret = NULL WHERE username = 'supervisor01'")
            .execute(h.db().pool())
            .await
            .unwrap();
        assert!(wrong(
            h.staff_sign_in("supervisor01", PASSWORD, None, "10.0.0.1")
                .await
        ));
        // An agent given a secret must use it too.
        let mut a2 = new_staff("agent02", Role::Agent, None);
        a2.totp_secret = Some(DEMO_SECRET.into());
        h.bootstrap_staff(a2).await.unwrap();
        assert!(wrong(
            h.staff_sign_in("agent02", PASSWORD, None, "10.0.0.1").await
        ));
        assert!(h
            .staff_sign_in("agent02", PASSWORD, Some(&code_now(&h, 0)), "10.0.0.1")
            .await
            .is_ok());
    }

    #[tokio::test]
    async fn five_wrong_in_a_row_lock_the_username_for_15_minutes() {
        let h = TestHall::empty().await;
        let (agent, _) = staff_pair(&h).await;
        // Four failures, then a success, reset the run.
        for _ in 0..4 {
            assert!(wrong(
                h.staff_sign_in("agent01", "Wrong#2026", None, "10.0.0.1")
                    .await
            ));
        }
        h.staff_sign_in("agent01", PASSWORD, None, "10.0.0.1")
            .await
            .unwrap();
        for _ in 0..4 {
            assert!(wrong(
                h.staff_sign_in("agent01", "Wrong#2026", None, "10.0.0.1")
                    .await
            ));
        }
        // Across a 15-minute window boundary the run still counts.
        h.clock.advance(Minutes::minutes(16));
        assert!(wrong(
            h.staff_sign_in("agent01", "Wrong#2026", None, "10.0.0.1")
                .await
        ));
        // Locked: even the right password is refused, with the same error.
        assert!(wrong(
            h.staff_sign_in("agent01", PASSWORD, None, "10.0.0.1").await
        ));
        h.clock.advance(Minutes::minutes(14));
        assert!(wrong(
            h.staff_sign_in("agent01", PASSWORD, None, "10.0.0.1").await
        ));
        h.clock.advance(Minutes::minutes(1) + Minutes::seconds(1));
        assert_eq!(
            h.staff_sign_in("agent01", PASSWORD, None, "10.0.0.1")
                .await
                .unwrap(),
            agent
        );
        // Unknown names lock the same way, so the lock does not reveal which names exist.
        for _ in 0..5 {
            assert!(wrong(
                h.staff_sign_in("ghost", "Wrong#2026", None, "10.0.0.1")
                    .await
            ));
        }
        let rows = all_rows(&h).await;
        let locked: Vec<&AuditEntry> = rows
            .iter()
            .filter(|r| r.action == action::STAFF_SIGN_IN && r.detail.starts_with("locked"))
            .collect();
        assert_eq!(locked.len(), 2);
        assert_eq!(
            rows.iter()
                .filter(|r| r.detail.contains("now locked for 15 minutes"))
                .count(),
            2
        );
    }

    #[tokio::test]
    async fn a_password_reset_by_an_admin_lifts_the_lock() {
        let h = TestHall::empty().await;
        let admin = make_staff(&h, "admin01", Role::Admin, None).await;
        let (agent, supervisor) = staff_pair(&h).await;
        for _ in 0..5 {
            let _ = h
                .staff_sign_in("agent01", "Wrong#2026", None, "10.0.0.1")
                .await;
        }
        assert!(matches!(
            h.reset_staff_password(&supervisor, agent.id, "NewPass#99", "10.0.0.2")
                .await,
            Err(Error::Forbidden)
        ));
        assert!(matches!(
            h.reset_staff_password(&admin, agent.id, "weak", "10.0.0.2")
                .await,
            Err(Error::Invalid(Invalid::StaffPassword))
        ));
        assert!(matches!(
            h.reset_staff_password(&admin, 9999, "NewPass#99", "10.0.0.2")
                .await,
            Err(Error::UnknownStaff)
        ));
        h.reset_staff_password(&admin, agent.id, "NewPass#99", "10.0.0.2")
            .await
            .unwrap();
        assert!(wrong(
            h.staff_sign_in("agent01", PASSWORD, None, "10.0.0.1").await
        ));
        assert!(h
            .staff_sign_in("agent01", "NewPass#99", None, "10.0.0.1")
            .await
            .is_ok());
        // A new TOTP secret replaces the old one.
        let secret = h
            .reset_staff_totp(&admin, supervisor.id, "10.0.0.2")
            .await
            .unwrap();
        assert!(wrong(
            h.staff_sign_in("supervisor01", PASSWORD, Some(&code_now(&h, 0)), "10.0.0.1")
                .await
        ));
        let now = h.now().timestamp();
        assert!(h
            .staff_sign_in(
                "supervisor01",
                PASSWORD,
                Some(&totp::code_at(&secret, now)),
                "10.0.0.1"
            )
            .await
            .is_ok());
        let rows = all_rows(&h).await;
        let resets: Vec<&AuditEntry> = rows
            .iter()
            .filter(|r| r.action == action::STAFF_RESET_PASSWORD)
            .collect();
        assert_eq!(
            resets
                .iter()
                .map(|r| r.outcome.as_str())
                .collect::<Vec<_>>(),
            ["denied", "failed", "failed", "ok"]
        );
        assert!(resets.iter().all(|r| r.client_addr == "10.0.0.2"));
        assert!(rows.iter().all(|r| !r.detail.contains("NewPass#99")));
    }

    #[tokio::test]
    async fn admin_functions_are_admin_only() {
        let h = TestHall::empty().await;
        let admin = make_staff(&h, "admin01", Role::Admin, None).await;
        let (agent, supervisor) = staff_pair(&h).await;
        for who in [&agent, &supervisor] {
            assert!(matches!(
                h.disable_staff(who, agent.id, "x").await,
                Err(Error::Forbidden)
            ));
            assert!(matches!(
                h.enable_staff(who, agent.id, "x").await,
                Err(Error::Forbidden)
            ));
            assert!(matches!(
                h.list_staff(who, "x").await,
                Err(Error::Forbidden)
            ));
            assert!(matches!(
                h.reset_staff_totp(who, agent.id, "x").await,
                Err(Error::Forbidden)
            ));
        }
        assert!(matches!(
            h.disable_staff(&admin, admin.id, "x").await,
            Err(Error::Forbidden)
        ));
        assert!(matches!(
            h.disable_staff(&admin, 424242, "x").await,
            Err(Error::UnknownStaff)
        ));
        let names: Vec<String> = h
            .list_staff(&admin, "x")
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.username)
            .collect();
        assert_eq!(names, ["admin01", "agent01", "supervisor01"]);
        let off = h.disable_staff(&admin, supervisor.id, "x").await.unwrap();
        assert!(off.disabled);
        // A disabled admin loses the power at once, whatever their copy of the record says.
        let admin2 = make_staff(&h, "admin02", Role::Admin, None).await;
        h.disable_staff(&admin2, admin.id, "x").await.unwrap();
        assert!(matches!(
            h.list_staff(&admin, "x").await,
            Err(Error::Forbidden)
        ));
        assert!(matches!(
            h.create_staff(&admin, new_staff("late", Role::Agent, None), "x")
                .await,
            Err(Error::Forbidden)
        ));
    }
}
