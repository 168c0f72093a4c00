//! The console's server functions. Each takes the staff member from the staff session, never
//! from the request, and leaves every rule (roles, reasons, caps, masking, audit) to the
//! service layer. Reads are GETs; every POST carries the staff session's CSRF token, checked
//! by the server before any function runs.
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use crate::ui::staff::server::{client_addr, staff_web};

/// What the console's frame needs on every page.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct StaffInfo {
    pub csrf: String,
    pub username: Option<String>,
    pub display_name: String,
    /// `agent`, `supervisor` or `admin`.
    pub role: Option<String>,
    pub role_label: String,
    /// The staff member's open impersonation: (subscriber, ends at HH:MM).
    pub acting: Option<(String, String)>,
    pub expired: bool,
}

#[server(input = server_fn::codec::GetUrl, endpoint = "staff/session")]
pub async fn load_staff_session() -> Result<StaffInfo, ServerFnError> {
    let web = staff_web().await?;
    let mut info = StaffInfo {
        csrf: web.state.csrf.clone(),
        expired: web.state.expired,
        ..StaffInfo::default()
    };
    if let Some(m) = &web.member {
        info.username = Some(m.username.clone());
        info.display_name = m.display_name.clone();
        info.role = Some(m.role.as_str().to_owned());
        info.role_label = web.lang.pick(m.role.zh(), m.role.as_str()).to_owned();
        if let Some(i) = web.check(web.hall.current_impersonation(m.id).await)? {
            let ends = i
                .expires_at
                .with_timezone(&crate::domain::shanghai())
                .format("%H:%M")
                .to_string();
            info.acting = Some((i.msisdn.as_str().to_owned(), ends));
        }
    }
    Ok(info)
}

#[server(endpoint = "staff/sign_in")]
pub async fn staff_sign_in(
    csrf: String,
    username: String,
    password: String,
    totp: Option<String>,
) -> Result<(), ServerFnError> {
    let _ = csrf;
    let mut web = staff_web().await?;
    let member = web.check(
        web.hall
            .staff_sign_in(&username, &password, totp.as_deref(), &client_addr())
            .await,
    )?;
    let r = web.sign_in(member).await;
    web.check(r)?;
    leptos_axum::redirect("/staff");
    Ok(())
}

#[server(endpoint = "staff/sign_out")]
pub async fn staff_sign_out(csrf: String) -> Result<(), ServerFnError> {
    let _ = csrf;
    let mut web = staff_web().await?;
    let r = web.sign_out(&client_addr()).await;
    web.check(r)?;
    leptos_axum::redirect("/staff/login?done=signed_out");
    Ok(())
}

/// A subscriber as the console shows them: always masked.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FoundSubscriber {
    pub msisdn: String,
    pub name: String,
    pub id_card: String,
    pub brand: String,
    pub status: String,
    pub tier: String,
    pub plan: String,
}

#[server(input = server_fn::codec::GetUrl, endpoint = "staff/find")]
pub async fn find_subscriber(q: String) -> Result<Vec<FoundSubscriber>, ServerFnError> {
    use crate::service::staff_search::SubscriberQuery;
    let web = staff_web().await?;
    let me = web.member()?;
    if q.trim().is_empty() {
        return Ok(vec![]);
    }
    let Some(query) = SubscriberQuery::parse(&q) else {
        return Err(web.refuse_input(
            "请输入 11 位手机号码(主管可按姓名查询,如“张*”)。",
            "Enter an 11-digit number (supervisors may search by name, e.g. 张*).",
        ));
    };
    let found = web.check(web.hall.find_subscribers(&me, &query, &client_addr()).await)?;
    let lang = web.lang;
    Ok(found
        .into_iter()
        .map(|p| FoundSubscriber {
            msisdn: p.msisdn.as_str().to_owned(),
            name: p.name,
            id_card: p.id_card,
            brand: lang.pick(p.brand.zh(), p.brand.en()).to_owned(),
            status: lang.pick(p.status.zh(), p.status.en()).to_owned(),
            tier: lang.pick(p.tier.zh(), p.tier.en()).to_owned(),
            plan: p.plan.as_str().to_owned(),
        })
        .collect())
}

/// Starts acting as a subscriber (POST only, with a written reason) and opens their hall in
/// this browser's subscriber session.
#[server(endpoint = "staff/act")]
pub async fn act_as(csrf: String, msisdn: String, reason: String) -> Result<(), ServerFnError> {
    let _ = csrf;
    let staff = staff_web().await?;
    let me = staff.member()?;
    let target = crate::domain::Msisdn::parse(&msisdn).map_err(|e| staff.fail(e.into()))?;
    let imp = staff.check(
        staff
            .hall
            .start_impersonation(&me, &target, &reason, &client_addr())
            .await,
    )?;
    let epoch = staff.check(staff.hall.session_epoch(&target).await)?;
    let mut hall_session = crate::ui::server::web().await?;
    let r = hall_session.start_acting(imp, epoch).await;
    hall_session.check(r)?;
    leptos_axum::redirect("/");
    Ok(())
}

/// An open impersonation, for the supervisor's overview.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ActiveRow {
    pub id: i64,
    pub staff: String,
    pub msisdn: String,
    pub reason: String,
    pub started: String,
    pub ends: String,
}

#[server(input = server_fn::codec::GetUrl, endpoint = "staff/active")]
pub async fn load_active() -> Result<Vec<ActiveRow>, ServerFnError> {
    let web = staff_web().await?;
    let me = web.member()?;
    let rows = web.check(web.hall.active_impersonations(&me, &client_addr()).await)?;
    let hm = |t: chrono::DateTime<chrono::Utc>| {
        t.with_timezone(&crate::domain::shanghai())
            .format("%H:%M")
            .to_string()
    };
    Ok(rows
        .into_iter()
        .map(|i| ActiveRow {
            id: i.id,
            staff: i.staff_username,
            msisdn: i.msisdn.as_str().to_owned(),
            reason: i.reason,
            started: hm(i.started_at),
            ends: hm(i.expires_at),
        })
        .collect())
}

/// A supervisor ends anyone's impersonation; the owner may end their own.
#[server(endpoint = "staff/end")]
pub async fn end_impersonation(csrf: String, id: i64) -> Result<(), ServerFnError> {
    let _ = csrf;
    let web = staff_web().await?;
    let me = web.member()?;
    let r = if me.role == crate::service::staff::Role::Supervisor {
        web.hall
            .end_impersonation_as_supervisor(&me, id, &client_addr())
            .await
    } else {
        web.hall.end_impersonation(&me, id, &client_addr()).await
    };
    web.check(r)?;
    leptos_axum::redirect("/staff?done=ended");
    Ok(())
}

/// The audit page's filters, as typed (dates `YYYY-MM-DD`, both inclusive, Beijing time).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct AuditQuery {
    #[serde(default)]
    pub staff: String,
    #[serde(default)]
    pub msisdn: String,
    #[serde(default)]
    pub action: String,
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AuditRow {
    pub at: String,
    pub staff: String,
    pub msisdn: String,
    pub action: String,
    pub outcome: String,
    pub client_addr: String,
    pub detail: String,
    pub impersonation: Option<i64>,
}

#[server(input = server_fn::codec::GetUrl, endpoint = "staff/audit")]
pub async fn load_audit(
    staff: Option<String>,
    msisdn: Option<String>,
    action: Option<String>,
    from: Option<String>,
    to: Option<String>,
) -> Result<Vec<AuditRow>, ServerFnError> {
    let q = AuditQuery {
        staff: staff.unwrap_or_default(),
        msisdn: msisdn.unwrap_or_default(),
        action: action.unwrap_or_default(),
        from: from.unwrap_or_default(),
        to: to.unwrap_or_default(),
    };
    let web = staff_web().await?;
    let me = web.member()?;
    let filter = q.to_filter().map_err(|e| web.fail(e))?;
    let rows = web.check(web.hall.audit_log(&me, filter, &client_addr()).await)?;
    Ok(rows
        .into_iter()
        .map(|e| AuditRow {
            at: crate::service::audit::shanghai_iso(e.at),
            staff: e.staff_username.unwrap_or_default(),
            msisdn: e.msisdn.unwrap_or_default(),
            action: e.action,
            outcome: e.outcome,
            client_addr: e.client_addr,
            detail: e.detail,
            impersonation: e.impersonation_id,
        })
        .collect())
}

#[cfg(feature = "ssr")]
impl AuditQuery {
    /// The service's filter; a malformed number or date is the person's error.
    pub fn to_filter(&self) -> Result<crate::service::audit::AuditFilter, crate::error::Error> {
        use crate::error::{Error, Invalid};
        let day = |s: &str, next: bool| -> Result<Option<chrono::DateTime<chrono::Utc>>, Error> {
            let s = s.trim();
            if s.is_empty() {
                return Ok(None);
            }
            let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map_err(|_| Error::Invalid(Invalid::Date))?;
            let d = if next { d.succ_opt().unwrap_or(d) } else { d };
            let local = d
                .and_hms_opt(0, 0, 0)
                .and_then(|t| t.and_local_timezone(crate::domain::shanghai()).single())
                .ok_or(Error::Invalid(Invalid::Date))?;
            Ok(Some(local.with_timezone(&chrono::Utc)))
        };
        let nonempty = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        Ok(crate::service::audit::AuditFilter {
            staff_username: nonempty(&self.staff),
            msisdn: nonempty(&self.msisdn)
                .map(|m| crate::domain::Msisdn::parse(&m))
                .transpose()
                .map_err(Error::from)?,
            action: nonempty(&self.action),
            from: day(&self.from, false)?,
            to: day(&self.to, true)?,
            ..Default::default()
        })
    }
}

/// A staff account, for the admin page.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct StaffRow {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub role: String,
    pub disabled: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AccountsData {
    pub staff: Vec<StaffRow>,
    /// A just-created account's TOTP secret, shown once: (username, secret).
    pub new_secret: Option<(String, String)>,
}

#[server(input = server_fn::codec::GetUrl, endpoint = "staff/accounts")]
pub async fn load_accounts() -> Result<AccountsData, ServerFnError> {
    let mut web = staff_web().await?;
    let me = web.member()?;
    let list = web.check(web.hall.list_staff(&me, &client_addr()).await)?;
    let new_secret = web.state.new_secret.take();
    if new_secret.is_some() {
        let r = web.save().await;
        web.check(r)?;
    }
    let lang = web.lang;
    Ok(AccountsData {
        staff: list
            .into_iter()
            .map(|m| StaffRow {
                id: m.id,
                username: m.username,
                display_name: m.display_name,
                role: lang.pick(m.role.zh(), m.role.as_str()).to_owned(),
                disabled: m.disabled,
            })
            .collect(),
        new_secret,
    })
}

#[server(endpoint = "staff/create")]
pub async fn create_staff_account(
    csrf: String,
    username: String,
    display_name: String,
    role: String,
    password: String,
) -> Result<(), ServerFnError> {
    use crate::service::staff::{NewStaff, Role};
    let _ = csrf;
    let mut web = staff_web().await?;
    let me = web.member()?;
    let Some(role) = Role::from_db(&role) else {
        return Err(web.refuse_input("请选择角色。", "Choose a role."));
    };
    let created = web.check(
        web.hall
            .create_staff(
                &me,
                NewStaff {
                    username,
                    display_name,
                    role,
                    password,
                    totp_secret: None,
                    msisdn: None,
                },
                &client_addr(),
            )
            .await,
    )?;
    if let Some(secret) = created.totp_secret {
        web.state.new_secret = Some((created.staff.username.clone(), secret));
        let r = web.save().await;
        web.check(r)?;
    }
    leptos_axum::redirect("/staff/admin?done=created");
    Ok(())
}

#[server(endpoint = "staff/set_disabled")]
pub async fn set_staff_disabled(
    csrf: String,
    id: i64,
    disabled: String,
) -> Result<(), ServerFnError> {
    let _ = csrf;
    let web = staff_web().await?;
    let me = web.member()?;
    let addr = client_addr();
    if disabled == "1" {
        web.check(web.hall.disable_staff(&me, id, &addr).await)?;
    } else {
        web.check(web.hall.enable_staff(&me, id, &addr).await)?;
    }
    leptos_axum::redirect("/staff/admin?done=saved");
    Ok(())
}

#[server(endpoint = "staff/reset_password")]
pub async fn reset_staff_password(
    csrf: String,
    id: i64,
    password: String,
) -> Result<(), ServerFnError> {
    let _ = csrf;
    let web = staff_web().await?;
    let me = web.member()?;
    web.check(
        web.hall
            .reset_staff_password(&me, id, &password, &client_addr())
            .await,
    )?;
    leptos_axum::redirect("/staff/admin?done=reset");
    Ok(())
}
