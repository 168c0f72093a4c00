//! The staff audit log (SPEC §5, §6): every staff action — sign-in attempts, account
//! administration, impersonation, each read of customer data, each look at the log itself —
//! appends one row naming when, which staff member, which subscriber, what, the outcome and the
//! client address.
//!
//! The log is append-only, and the DATABASE enforces it: triggers in both migrations refuse
//! `UPDATE` and `DELETE` (and `TRUNCATE` on PostgreSQL) of `audit_log`, so not even a bug here
//! can rewrite history.
//!
//! **What must never be written to `detail`:** a password (staff or service), an SMS or TOTP
//! code, a message body, or other customer data (name, ID number, address, bills, detail
//! records). `detail` says *what kind* of thing happened ("wrong_password", "viewed bills
//! 2026-10"), never the secret or the content itself.
//!
//! Who may read it: supervisors only. Admins manage accounts and are themselves audited, so
//! they do not review the log (separation of duties); agents never see it.
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};

use crate::clock::{from_millis, to_millis};
use crate::domain::{shanghai, Msisdn};
use crate::error::{Error, Result};
use crate::hall::Hall;
use crate::service::impersonation::Impersonation;
use crate::service::staff::{self, Role, StaffMember};

/// The action names this crate writes; channels may add their own in the same `area.verb` form.
pub mod action {
    pub const STAFF_SIGN_IN: &str = "staff.sign_in";
    pub const STAFF_CREATE: &str = "staff.create";
    pub const STAFF_DISABLE: &str = "staff.disable";
    pub const STAFF_ENABLE: &str = "staff.enable";
    pub const STAFF_RESET_PASSWORD: &str = "staff.reset_password";
    pub const STAFF_RESET_TOTP: &str = "staff.reset_totp";
    pub const STAFF_LIST: &str = "staff.list";
    pub const IMPERSONATION_START: &str = "impersonation.start";
    pub const IMPERSONATION_END: &str = "impersonation.end";
    pub const IMPERSONATION_LIST: &str = "impersonation.list";
    pub const CUSTOMER_READ: &str = "customer.read";
    /// A state-changing request made in a subscriber's hall while acting as them.
    pub const CUSTOMER_ACTION: &str = "customer.action";
    pub const AUDIT_VIEW: &str = "audit.view";
    pub const AUDIT_EXPORT: &str = "audit.export";
}

/// How an audited action ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    /// Refused for who was asking: wrong credentials, locked, or not allowed for the role.
    Denied,
    /// Refused for what was asked (bad input, wrong state) or failed in the system.
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Denied => "denied",
            Outcome::Failed => "failed",
        }
    }

    /// The outcome to record for an error an action returned.
    pub fn of(e: &Error) -> Self {
        match e {
            Error::Forbidden | Error::StaffWrongCredentials => Outcome::Denied,
            _ => Outcome::Failed,
        }
    }
}

/// One row to append. Build with [`AuditRecord::new`] and the setters.
#[derive(Clone, Debug)]
pub struct AuditRecord<'a> {
    pub staff_id: Option<i64>,
    pub staff_username: Option<&'a str>,
    pub impersonation_id: Option<i64>,
    pub msisdn: Option<&'a Msisdn>,
    pub action: &'a str,
    pub outcome: Outcome,
    pub client_addr: &'a str,
    /// A short note; see the module documentation for what must never go here.
    pub detail: String,
}

impl<'a> AuditRecord<'a> {
    pub fn new(action: &'a str, outcome: Outcome, client_addr: &'a str) -> Self {
        Self {
            staff_id: None,
            staff_username: None,
            impersonation_id: None,
            msisdn: None,
            action,
            outcome,
            client_addr,
            detail: String::new(),
        }
    }

    pub fn staff(mut self, s: &'a StaffMember) -> Self {
        self.staff_id = Some(s.id);
        self.staff_username = Some(&s.username);
        self
    }

    pub fn msisdn(mut self, m: &'a Msisdn) -> Self {
        self.msisdn = Some(m);
        self
    }

    pub fn impersonation(mut self, id: i64) -> Self {
        self.impersonation_id = Some(id);
        self
    }

    pub fn detail(mut self, d: impl Into<String>) -> Self {
        self.detail = d.into();
        self
    }

    /// The same record with another outcome (and the error's English text as detail when it
    /// has none): how a refused action is recorded.
    pub fn failed_with(mut self, e: &Error) -> Self {
        self.outcome = Outcome::of(e);
        // Error texts carry no secrets or customer data (see error.rs).
        let why = e.to_string();
        self.detail = if self.detail.is_empty() {
            why
        } else {
            format!("{}; {why}", self.detail)
        };
        self
    }
}

/// Keeps stored text bounded: the log must not become a place to dump data.
fn clip(s: &str, max_chars: usize) -> String {
    s.chars()
        .filter(|c| !c.is_control() || *c == '\n')
        .take(max_chars)
        .collect()
}

/// Appends one row on the given connection — inside the caller's transaction when the row must
/// stand or fall with the change it records. Returns the row's id.
pub async fn append(conn: &mut AnyConnection, now_ms: i64, rec: &AuditRecord<'_>) -> Result<i64> {
    let row = sqlx::query(
        "INSERT INTO audit_log (at, staff_id, staff_username, impersonation_id, msisdn, action, \
         outcome, client_addr, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
    )
    .bind(now_ms)
    .bind(rec.staff_id)
    .bind(rec.staff_username.map(str::to_owned))
    .bind(rec.impersonation_id)
    .bind(rec.msisdn.map(|m| m.as_str().to_owned()))
    .bind(clip(rec.action, 64))
    .bind(rec.outcome.as_str())
    .bind(clip(rec.client_addr, 128))
    .bind(clip(&rec.detail, 500))
    .fetch_one(conn)
    .await?;
    Ok(row.try_get(0)?)
}

/// One row of the log as read back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub staff_id: Option<i64>,
    pub staff_username: Option<String>,
    pub impersonation_id: Option<i64>,
    pub msisdn: Option<String>,
    pub action: String,
    pub outcome: String,
    pub client_addr: String,
    pub detail: String,
}

/// What to read. Every field narrows; `from` is inclusive, `to` exclusive. Newest first.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AuditFilter {
    pub staff_id: Option<i64>,
    pub staff_username: Option<String>,
    pub msisdn: Option<Msisdn>,
    /// Exact action name, e.g. `impersonation.start`; a name ending in `.` (e.g.
    /// `impersonation.`) matches every action of that area.
    pub action: Option<String>,
    pub outcome: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Rows per page: default 100, at most 1000 on screen (10 000 for CSV).
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

impl AuditFilter {
    /// The filter as a short note for the audit row that records this read.
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(v) = self.staff_id {
            parts.push(format!("staff_id={v}"));
        }
        if let Some(v) = &self.staff_username {
            parts.push(format!("staff={}", clip(v, 32)));
        }
        if let Some(v) = &self.msisdn {
            parts.push(format!("msisdn={v}"));
        }
        if let Some(v) = &self.action {
            parts.push(format!("action={}", clip(v, 64)));
        }
        if let Some(v) = &self.outcome {
            parts.push(format!("outcome={}", clip(v, 16)));
        }
        if let Some(v) = self.from {
            parts.push(format!("from={}", shanghai_iso(v)));
        }
        if let Some(v) = self.to {
            parts.push(format!("to={}", shanghai_iso(v)));
        }
        if let Some(v) = self.offset {
            parts.push(format!("offset={v}"));
        }
        parts.join(" ")
    }
}

enum Arg {
    I(i64),
    S(String),
}

/// Query parameters in order; `add` returns the placeholder (`$n`) to write into the SQL.
struct Params(Vec<Arg>);

impl Params {
    fn add(&mut self, a: Arg) -> String {
        self.0.push(a);
        format!("${}", self.0.len())
    }
}

const DEFAULT_LIMIT: i64 = 100;
const MAX_SCREEN_LIMIT: i64 = 1000;
const MAX_CSV_LIMIT: i64 = 10_000;

async fn query(
    conn: &mut AnyConnection,
    f: &AuditFilter,
    max_limit: i64,
) -> Result<Vec<AuditEntry>> {
    let mut clauses: Vec<String> = Vec::new();
    let mut p = Params(Vec::new());
    if let Some(v) = f.staff_id {
        clauses.push(format!("staff_id = {}", p.add(Arg::I(v))));
    }
    if let Some(v) = f
        .staff_username
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
    {
        let v = Arg::S(v.to_ascii_lowercase());
        clauses.push(format!("staff_username = {}", p.add(v)));
    }
    if let Some(v) = &f.msisdn {
        clauses.push(format!("msisdn = {}", p.add(Arg::S(v.as_str().into()))));
    }
    if let Some(v) = f.action.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
        if v.ends_with('.') {
            // A prefix match without LIKE, so `_` and `%` in the input mean nothing special.
            // The length is a number we computed, safe to write into the SQL.
            let n = v.chars().count();
            clauses.push(format!(
                "substr(action, 1, {n}) = {}",
                p.add(Arg::S(v.into()))
            ));
        } else {
            clauses.push(format!("action = {}", p.add(Arg::S(v.into()))));
        }
    }
    if let Some(v) = f
        .outcome
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
    {
        clauses.push(format!("outcome = {}", p.add(Arg::S(v.into()))));
    }
    if let Some(v) = f.from {
        clauses.push(format!("at >= {}", p.add(Arg::I(to_millis(v)))));
    }
    if let Some(v) = f.to {
        clauses.push(format!("at < {}", p.add(Arg::I(to_millis(v)))));
    }
    let limit = f.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, max_limit);
    let offset = f.offset.unwrap_or(0).max(0);
    let where_sql = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    let limit_p = p.add(Arg::I(limit));
    let offset_p = p.add(Arg::I(offset));
    let sql = format!(
        "SELECT id, at, staff_id, staff_username, impersonation_id, msisdn, action, outcome, \
         client_addr, detail FROM audit_log {where_sql} ORDER BY at DESC, id DESC \
         LIMIT {limit_p} OFFSET {offset_p}"
    );
    let mut q = sqlx::query(&sql);
    for a in p.0 {
        q = match a {
            Arg::I(v) => q.bind(v),
            Arg::S(v) => q.bind(v),
        };
    }
    let rows = q.fetch_all(conn).await?;
    rows.iter()
        .map(|r| {
            Ok(AuditEntry {
                id: r.try_get(0)?,
                at: from_millis(r.try_get(1)?),
                staff_id: r.try_get(2)?,
                staff_username: r.try_get(3)?,
                impersonation_id: r.try_get(4)?,
                msisdn: r.try_get(5)?,
                action: r.try_get(6)?,
                outcome: r.try_get(7)?,
                client_addr: r.try_get(8)?,
                detail: r.try_get(9)?,
            })
        })
        .collect()
}

/// `2026-11-15T10:00:00+08:00`: audit times as the operator reads them.
pub fn shanghai_iso(t: DateTime<Utc>) -> String {
    t.with_timezone(&shanghai())
        .format("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

/// One CSV field (RFC 4180): quoted when it holds a comma, quote, CR or LF, quotes doubled.
/// A field that a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR first) gets a
/// leading `'`, because staff write some of this text (reasons) and supervisors open the export
/// in spreadsheet programs.
pub fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// The CSV export's columns, in order.
pub const CSV_HEADER: &str =
    "id,time,staff_id,staff_username,impersonation_id,msisdn,action,outcome,client_addr,detail";

/// Renders entries as RFC 4180 CSV: a header line, CRLF line ends, UTF-8 without a BOM (a
/// download handler may prepend one for spreadsheet programs).
pub fn to_csv(entries: &[AuditEntry]) -> String {
    let mut out = String::with_capacity(64 * (entries.len() + 1));
    out.push_str(CSV_HEADER);
    out.push_str("\r\n");
    let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
    for e in entries {
        let fields = [
            e.id.to_string(),
            shanghai_iso(e.at),
            opt(e.staff_id),
            e.staff_username.clone().unwrap_or_default(),
            opt(e.impersonation_id),
            e.msisdn.clone().unwrap_or_default(),
            e.action.clone(),
            e.outcome.clone(),
            e.client_addr.clone(),
            e.detail.clone(),
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
}

impl Hall {
    /// Appends one row outside any transaction (for reads and refusals; changes append with
    /// [`append`] inside their own transaction).
    pub async fn audit(&self, rec: &AuditRecord<'_>) -> Result<()> {
        let mut conn = self.db().pool().acquire().await?;
        append(&mut conn, self.now_ms(), rec).await?;
        Ok(())
    }

    /// Records a refused action; a failure to write is logged, and the caller returns the
    /// original error either way.
    pub(crate) async fn audit_refusal(&self, rec: AuditRecord<'_>, e: &Error) {
        let action = rec.action;
        if let Err(w) = self.audit(&rec.failed_with(e)).await {
            tracing::error!(error = %w, action, "could not write audit row");
        }
    }

    /// Records that a staff member read customer data (`what`, e.g. "profile", "bills 2026-10",
    /// "detail records"). The console calls this for every such page; `what` names the kind of
    /// data, never the data itself.
    pub async fn audit_read(
        &self,
        staff: &StaffMember,
        impersonation: Option<&Impersonation>,
        msisdn: &Msisdn,
        what: &str,
        client_addr: &str,
    ) -> Result<()> {
        let mut rec = AuditRecord::new(action::CUSTOMER_READ, Outcome::Ok, client_addr)
            .staff(staff)
            .msisdn(msisdn)
            .detail(what);
        if let Some(i) = impersonation {
            rec = rec.impersonation(i.id);
        }
        self.audit(&rec).await
    }

    /// The log, newest first, for a supervisor. The read itself is logged first.
    pub async fn audit_log(
        &self,
        supervisor: &StaffMember,
        filter: AuditFilter,
        client_addr: &str,
    ) -> Result<Vec<AuditEntry>> {
        self.read_log(
            supervisor,
            &filter,
            client_addr,
            action::AUDIT_VIEW,
            MAX_SCREEN_LIMIT,
        )
        .await
    }

    /// The log as RFC 4180 CSV (see [`to_csv`]; times in Asia/Shanghai), for a supervisor. At
    /// most 10 000 rows per export; page with `offset` for more.
    pub async fn audit_csv(
        &self,
        supervisor: &StaffMember,
        filter: AuditFilter,
        client_addr: &str,
    ) -> Result<String> {
        let mut filter = filter;
        filter.limit = Some(filter.limit.unwrap_or(MAX_CSV_LIMIT));
        let rows = self
            .read_log(
                supervisor,
                &filter,
                client_addr,
                action::AUDIT_EXPORT,
                MAX_CSV_LIMIT,
            )
            .await?;
        Ok(to_csv(&rows))
    }

    async fn read_log(
        &self,
        viewer: &StaffMember,
        filter: &AuditFilter,
        client_addr: &str,
        what: &str,
        max_limit: i64,
    ) -> Result<Vec<AuditEntry>> {
        let mut rec = AuditRecord::new(what, Outcome::Ok, client_addr)
            .staff(viewer)
            .detail(filter.describe());
        if let Some(m) = &filter.msisdn {
            rec = rec.msisdn(m);
        }
        let mut conn = self.db().pool().acquire().await?;
        if let Err(e) = staff::authorize(&mut conn, viewer, &[Role::Supervisor]).await {
            drop(conn);
            self.audit_refusal(rec, &e).await;
            return Err(e);
        }
        // Written before the read: a look at the log is on record even if the read fails.
        append(&mut conn, self.now_ms(), &rec).await?;
        query(&mut conn, filter, max_limit).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::staff::tests::{make_staff, staff_pair};
    use crate::store::Backend;
    use crate::testing::TestHall;
    use chrono::Duration;

    fn entry(detail: &str, username: &str) -> AuditEntry {
        AuditEntry {
            id: 7,
            at: crate::testing::default_now(),
            staff_id: Some(3),
            staff_username: Some(username.into()),
            impersonation_id: None,
            msisdn: Some("13800138000".into()),
            action: "customer.read".into(),
            outcome: "ok".into(),
            client_addr: "10.0.0.9".into(),
            detail: detail.into(),
        }
    }

    #[test]
    fn csv_quotes_commas_quotes_and_newlines() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_field("cr\rhere"), "\"cr\rhere\"");
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("-1"), "'-1");
        assert_eq!(csv_field(""), "");

        let csv = to_csv(&[entry("原因:客户来电,要求\"查询\"\n第二行", "agent01")]);
        let mut lines = csv.splitn(2, "\r\n");
        assert_eq!(lines.next().unwrap(), CSV_HEADER);
        assert_eq!(
            lines.next().unwrap(),
            "7,2026-11-15T10:00:00+08:00,3,agent01,,13800138000,customer.read,ok,10.0.0.9,\
             \"原因:客户来电,要求\"\"查询\"\"\n第二行\"\r\n"
        );
    }

    #[test]
    fn times_are_shanghai_iso() {
        assert_eq!(
            shanghai_iso(crate::testing::default_now()),
            "2026-11-15T10:00:00+08:00"
        );
    }

    #[tokio::test]
    async fn the_database_refuses_to_change_or_delete_audit_rows() {
        let h = TestHall::empty().await;
        h.audit(&AuditRecord::new("test.original", Outcome::Ok, "127.0.0.1").detail("kept"))
            .await
            .unwrap();
        let pool = h.db().pool();
        let update = sqlx::query("UPDATE audit_log SET outcome = 'denied', detail = 'rewritten'")
            .execute(pool)
            .await;
        assert!(update.is_err(), "an UPDATE of audit_log must fail");
        let delete = sqlx::query("DELETE FROM audit_log").execute(pool).await;
        assert!(delete.is_err(), "a DELETE from audit_log must fail");
        if h.db().backend() == Backend::Postgres {
            let truncate = sqlx::query("TRUNCATE audit_log").execute(pool).await;
            assert!(truncate.is_err(), "a TRUNCATE of audit_log must fail");
        }
        let rows = sqlx::query("SELECT action, outcome, detail FROM audit_log")
            .fetch_all(pool)
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].try_get::<String, _>(0).unwrap(), "test.original");
        assert_eq!(rows[0].try_get::<String, _>(1).unwrap(), "ok");
        assert_eq!(rows[0].try_get::<String, _>(2).unwrap(), "kept");
    }

    #[tokio::test]
    async fn only_supervisors_read_the_log_and_reading_is_audited() {
        let h = TestHall::empty().await;
        let (agent, supervisor) = staff_pair(&h).await;
        let admin = make_staff(&h, "admin01", Role::Admin, None).await;
        for who in [&agent, &admin] {
            assert!(matches!(
                h.audit_log(who, AuditFilter::default(), "10.0.0.1").await,
                Err(Error::Forbidden)
            ));
            assert!(matches!(
                h.audit_csv(who, AuditFilter::default(), "10.0.0.1").await,
                Err(Error::Forbidden)
            ));
        }
        let denied = h
            .audit_log(
                &supervisor,
                AuditFilter {
                    outcome: Some("denied".into()),
                    ..Default::default()
                },
                "10.0.0.2",
            )
            .await
            .unwrap();
        assert_eq!(
            denied.len(),
            4,
            "each refused read is on record: {denied:?}"
        );
        assert!(denied
            .iter()
            .all(|e| e.action.starts_with("audit.") && e.client_addr == "10.0.0.1"));
        assert!(denied
            .iter()
            .any(|e| e.staff_username.as_deref() == Some("agent01")));
        // The supervisor's own read is on record too.
        let views = h
            .audit_log(
                &supervisor,
                AuditFilter {
                    action: Some(action::AUDIT_VIEW.into()),
                    outcome: Some("ok".into()),
                    ..Default::default()
                },
                "10.0.0.2",
            )
            .await
            .unwrap();
        assert_eq!(views.len(), 2);
        assert_eq!(views[0].staff_id, Some(supervisor.id));
        assert_eq!(views[0].client_addr, "10.0.0.2");
        assert_eq!(views[1].detail, "outcome=denied");
        // A supervisor who was disabled since signing in can no longer read it.
        let admin_view = make_staff(&h, "admin02", Role::Admin, None).await;
        h.disable_staff(&admin_view, supervisor.id, "10.0.0.3")
            .await
            .unwrap();
        assert!(matches!(
            h.audit_log(&supervisor, AuditFilter::default(), "10.0.0.2")
                .await,
            Err(Error::Forbidden)
        ));
    }

    #[tokio::test]
    async fn filters_narrow_the_log() {
        let h = TestHall::empty().await;
        let (agent, supervisor) = staff_pair(&h).await;
        let m1 = h.subscriber("13800138000", 0).await;
        let m2 = h.subscriber("13900139000", 0).await;
        h.audit_read(&agent, None, &m1, "profile", "10.0.0.1")
            .await
            .unwrap();
        h.clock.advance(Duration::minutes(10));
        let mark = h.now();
        h.audit_read(&agent, None, &m2, "bills", "10.0.0.1")
            .await
            .unwrap();
        h.audit_read(&supervisor, None, &m1, "detail records", "10.0.0.2")
            .await
            .unwrap();
        h.clock.advance(Duration::minutes(10));
        let end = h.now();
        h.audit_read(&agent, None, &m1, "points", "10.0.0.1")
            .await
            .unwrap();

        let read = |f: AuditFilter| {
            let h = &h;
            let supervisor = &supervisor;
            async move {
                let f = AuditFilter {
                    action: f.action.or(Some(action::CUSTOMER_READ.into())),
                    ..f
                };
                h.audit_log(supervisor, f, "10.0.0.2")
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|e| e.detail)
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(
            read(AuditFilter::default()).await,
            ["points", "detail records", "bills", "profile"],
            "newest first"
        );
        assert_eq!(
            read(AuditFilter {
                msisdn: Some(m1.clone()),
                ..Default::default()
            })
            .await,
            ["points", "detail records", "profile"]
        );
        assert_eq!(
            read(AuditFilter {
                staff_username: Some("AGENT01".into()),
                ..Default::default()
            })
            .await,
            ["points", "bills", "profile"]
        );
        assert_eq!(
            read(AuditFilter {
                staff_id: Some(supervisor.id),
                ..Default::default()
            })
            .await,
            ["detail records"]
        );
        assert_eq!(
            read(AuditFilter {
                from: Some(mark),
                to: Some(end),
                ..Default::default()
            })
            .await,
            ["detail records", "bills"]
        );
        assert_eq!(
            read(AuditFilter {
                limit: Some(2),
                offset: Some(1),
                ..Default::default()
            })
            .await,
            ["detail records", "bills"]
        );
        assert_eq!(
            read(AuditFilter {
                action: Some("customer.".into()),
                msisdn: Some(m2.clone()),
                ..Default::default()
            })
            .await,
            ["bills"]
        );
        assert!(read(AuditFilter {
            action: Some("custom".into()),
            ..Default::default()
        })
        .await
        .is_empty());
        // The CSV holds the same rows, with a header, in Shanghai time.
        let csv = h
            .audit_csv(
                &supervisor,
                AuditFilter {
                    msisdn: Some(m2.clone()),
                    action: Some(action::CUSTOMER_READ.into()),
                    ..Default::default()
                },
                "10.0.0.2",
            )
            .await
            .unwrap();
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert_eq!(lines.len(), 3, "{csv}");
        assert_eq!(lines[0], CSV_HEADER);
        assert!(
            lines[1].contains(",2026-11-15T10:10:00+08:00,")
                && lines[1].ends_with(",agent01,,13900139000,customer.read,ok,10.0.0.1,bills"),
            "{}",
            lines[1]
        );
        assert_eq!(lines[2], "");
        // The export is on record, with the number it was about.
        let exports = h
            .audit_log(
                &supervisor,
                AuditFilter {
                    action: Some(action::AUDIT_EXPORT.into()),
                    ..Default::default()
                },
                "10.0.0.2",
            )
            .await
            .unwrap();
        assert_eq!(exports.len(), 1);
        assert_eq!(exports[0].msisdn.as_deref(), Some("13900139000"));
    }
}
