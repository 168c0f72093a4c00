//! The customer-care console over real HTTP (SPEC §5): staff sessions apart from subscriber
//! sessions, roles, every rule of acting as a subscriber, and the append-only audit log.
mod support;

use app::domain::Msisdn;
use app::service::staff::{NewStaff, Role};
use reqwest::StatusCode;
use support::{Answer, Browser, Site};

const PASSWORD: &str = "Staff#2026x";
const SECRET: &str = "JBSWY3DPEHPK3PXP";

async fn staff(site: &Site, username: &str, role: Role, msisdn: Option<&str>) {
    site.t
        .hall
        .bootstrap_staff(NewStaff {
            username: username.into(),
            display_name: format!("{username} name"),
            role,
            password: PASSWORD.into(),
            totp_secret: role.needs_totp().then(|| SECRET.into()),
            msisdn: msisdn.map(|m| Msisdn::parse(m).unwrap()),
        })
        .await
        .unwrap();
}

fn ok(a: &Answer) -> bool {
    a.status.is_success() || a.status.is_redirection()
}

impl Browser {
    async fn staff_csrf(&self) -> String {
        let page = self.get("/staff/login").await.body;
        let at = page.find("name=\"csrf\" value=\"").expect("csrf field") + 19;
        page[at..at + 48].to_owned()
    }

    async fn staff_call(&self, endpoint: &str, form: &[(&str, &str)]) -> Answer {
        let csrf = self.staff_csrf().await;
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(form);
        self.call(&format!("staff/{endpoint}"), &all).await
    }

    async fn staff_sign_in(&self, site: &Site, username: &str) -> Answer {
        let code = app::service::totp::code_at(SECRET, site.t.hall.now().timestamp());
        self.staff_call(
            "sign_in",
            &[
                ("username", username),
                ("password", PASSWORD),
                ("totp", &code),
            ],
        )
        .await
    }

    async fn act(&self, msisdn: &str, reason: &str) -> Answer {
        self.staff_call("act", &[("msisdn", msisdn), ("reason", reason)])
            .await
    }
}

/// Open impersonations as the database has them (the cap is checked against the clock).
async fn open_impersonations(site: &Site) -> i64 {
    use sqlx::Row;
    let now = site.t.hall.now().timestamp_millis();
    sqlx::query("SELECT COUNT(*) FROM impersonations WHERE ended_at IS NULL AND expires_at > $1")
        .bind(now)
        .fetch_one(site.t.hall.db().pool())
        .await
        .unwrap()
        .try_get(0)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_pages_refuse_the_signed_out_and_subscribers() {
    let site = Site::start().await;
    site.t.subscriber("13800001111", 5_000).await;
    let subscriber = site.browser();
    subscriber.sign_in("13800001111").await;
    for b in [&site.browser(), &subscriber] {
        for page in ["/staff", "/staff/audit", "/staff/admin"] {
            let a = b.get(page).await;
            assert!(a.status.is_redirection(), "{page}: {}", a.status);
            assert_eq!(a.location.as_deref(), Some("/staff/login"), "{page}");
        }
        assert_eq!(b.get("/staff/login").await.status, StatusCode::OK);
        for (f, q) in [
            ("staff/find", vec![("q", "13800001111")]),
            ("staff/active", vec![]),
            ("staff/audit", vec![]),
            ("staff/accounts", vec![]),
        ] {
            let a = b.read(f, &q).await;
            assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{f}: {}", a.body);
            assert!(!a.body.contains("13800001111"), "{f} leaked");
        }
        let a = b.act("13800001111", "customer asked").await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
        assert!(b.get("/staff/audit.csv").await.status.is_redirection());
    }
    // The subscriber's session is still theirs, and not a staff session.
    assert_eq!(subscriber.get("/").await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_reach_only_their_pages() {
    let site = Site::start().await;
    staff(&site, "agent1", Role::Agent, None).await;
    staff(&site, "super1", Role::Supervisor, None).await;
    staff(&site, "admin1", Role::Admin, None).await;

    let agent = site.browser();
    assert!(ok(&agent.staff_sign_in(&site, "agent1").await));
    assert_eq!(agent.get("/staff").await.status, StatusCode::OK);
    assert_eq!(
        agent.get("/staff/audit").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        agent.get("/staff/admin").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        agent.get("/staff/audit.csv").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        agent.read("staff/audit", &[]).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        agent.read("staff/accounts", &[]).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        agent.read("staff/active", &[]).await.status,
        StatusCode::FORBIDDEN
    );
    let a = agent
        .staff_call(
            "create",
            &[
                ("username", "agent9"),
                ("display_name", "x"),
                ("role", "admin"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);

    // Supervisors need their authenticator code.
    let sup = site.browser();
    let a = sup
        .staff_call(
            "sign_in",
            &[("username", "super1"), ("password", PASSWORD), ("totp", "")],
        )
        .await;
    assert!(a.status.is_client_error(), "{}", a.status);
    assert!(ok(&sup.staff_sign_in(&site, "super1").await));
    assert_eq!(sup.get("/staff/audit").await.status, StatusCode::OK);
    assert_eq!(sup.get("/staff/admin").await.status, StatusCode::FORBIDDEN);

    let admin = site.browser();
    site.advance(1); // a TOTP code counts once
    assert!(ok(&admin.staff_sign_in(&site, "admin1").await));
    assert_eq!(admin.get("/staff/admin").await.status, StatusCode::OK);
    assert_eq!(
        admin.get("/staff/audit").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(admin.get("/staff").await.status, StatusCode::FORBIDDEN);

    // A missing CSRF token is refused before anything runs.
    let a = admin
        .call(
            "staff/create",
            &[
                ("username", "agent9"),
                ("display_name", "x"),
                ("role", "agent"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    // The subscriber session's token is not the staff session's.
    let other = admin.csrf().await;
    let a = admin
        .call(
            "staff/create",
            &[
                ("csrf", &other),
                ("username", "agent9"),
                ("display_name", "x"),
                ("role", "agent"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = admin
        .staff_call(
            "create",
            &[
                ("username", "agent9"),
                ("display_name", "Agent Nine"),
                ("role", "agent"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert!(ok(&a), "{} {}", a.status, a.body);
    assert!(admin.get("/staff/admin").await.body.contains("agent9"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acting_as_a_subscriber_follows_every_rule() {
    let site = Site::start().await;
    let m = site.t.subscriber("13800002222", 10_000).await;
    site.t.subscriber("13800003333", 10_000).await;
    staff(&site, "agent1", Role::Agent, Some("13800003333")).await;
    staff(&site, "admin1", Role::Admin, None).await;
    let agent = site.browser();
    assert!(ok(&agent.staff_sign_in(&site, "agent1").await));

    // The search shows the subscriber masked.
    let found = agent.read("staff/find", &[("q", "13800002222")]).await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.body);
    assert!(found.body.contains("测***"), "{}", found.body);
    assert!(found.body.contains("320102********1234"), "{}", found.body);
    assert!(!found.body.contains("测试用户"));

    // A GET never starts acting; nor does a POST without a reason, or for a staff number.
    let a = agent
        .read(
            "staff/act",
            &[("msisdn", "13800002222"), ("reason", "customer asked")],
        )
        .await;
    assert!(a.status.is_client_error(), "GET act: {}", a.status);
    assert!(agent
        .act("13800002222", "   ")
        .await
        .status
        .is_client_error());
    assert!(agent.act("13800002222", "").await.status.is_client_error());
    assert!(agent
        .act("13800003333", "customer asked")
        .await
        .status
        .is_client_error());
    assert_eq!(open_impersonations(&site).await, 0);
    assert!(
        agent.get("/").await.status.is_redirection(),
        "no hall opened"
    );

    // Admins never act as subscribers.
    let admin = site.browser();
    assert!(ok(&admin.staff_sign_in(&site, "admin1").await));
    assert_eq!(
        admin.act("13800002222", "customer asked").await.status,
        StatusCode::FORBIDDEN
    );

    // With a reason: the hall opens as the subscriber, with the banner and masked data.
    let a = agent.act("13800002222", "customer asked for help").await;
    assert!(ok(&a), "{} {}", a.status, a.body);
    assert_eq!(open_impersonations(&site).await, 1);
    let notice = site.t.hall.outbox_for(&m, 1).await.unwrap().remove(0);
    assert_eq!(notice.kind, "impersonation", "{}", notice.body);
    assert!(notice.body.contains("agent1"));
    let home = agent.get("/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains("impersonation-banner"), "banner");
    assert!(home.body.contains("agent1") && home.body.contains("13800002222"));
    assert!(home.body.contains("测***") && !home.body.contains("测试用户"));

    // No nesting.
    assert!(agent
        .act("13800002222", "second one")
        .await
        .status
        .is_client_error());
    assert_eq!(open_impersonations(&site).await, 1);

    // Never the service password or sign-in settings, even with the subscriber's code.
    agent
        .call_with_csrf("send_code", &[("purpose", "2fa")])
        .await;
    let code = site.last_code(&m).await;
    assert!(ok(&agent
        .call_with_csrf("verify_second_factor", &[("code", &code)])
        .await));
    let a = agent
        .call_with_csrf(
            "change_password",
            &[
                ("current", "902468"),
                ("new", "135790"),
                ("repeat", "135790"),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(
        agent
            .call_with_csrf("sign_out_everywhere", &[])
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    // A product change with the subscriber's code works, and is on record.
    let a = agent
        .call_with_csrf("change_product", &[("code", "EDU10"), ("op", "subscribe")])
        .await;
    assert!(ok(&a), "{} {}", a.status, a.body);
    assert!(site
        .t
        .hall
        .subscriptions(&m)
        .await
        .unwrap()
        .iter()
        .any(|s| s.product.code.to_string() == "EDU10"));

    // The 30-minute cap ends it, whoever forgets.
    site.advance(31);
    let a = agent.get("/").await;
    assert!(a.status.is_redirection(), "{}", a.status);
    assert_eq!(open_impersonations(&site).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_step_is_audited_and_the_log_cannot_be_changed() {
    let site = Site::start().await;
    site.t.subscriber("13800002222", 10_000).await;
    staff(&site, "agent1", Role::Agent, None).await;
    staff(&site, "super1", Role::Supervisor, None).await;
    let agent = site.browser();
    assert!(ok(&agent.staff_sign_in(&site, "agent1").await));
    assert!(ok(&agent
        .act("13800002222", "customer asked for help")
        .await));
    assert_eq!(agent.get("/bills").await.status, StatusCode::OK);
    assert!(ok(&agent
        .call_with_csrf("set_alert_threshold", &[("yuan", "250")])
        .await));
    let a = agent.call_with_csrf("end_acting", &[]).await;
    assert!(ok(&a), "{}", a.status);
    assert!(agent.get("/").await.status.is_redirection(), "hall closed");

    let sup = site.browser();
    assert!(ok(&sup.staff_sign_in(&site, "super1").await));
    let csv = sup
        .get("/staff/audit.csv?staff=agent1&msisdn=&action=&from=&to=")
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    for needle in [
        "staff.sign_in",
        "impersonation.start",
        "reason=customer asked for help",
        "page /bills",
        "customer.action",
        "set_alert_threshold",
        "impersonation.end",
    ] {
        assert!(
            csv.body.contains(needle),
            "{needle} missing from:\n{}",
            csv.body
        );
    }
    assert!(csv.body.contains("13800002222") && csv.body.contains("127.0.0.1"));
    let page = sup.get("/staff/audit?action=impersonation.").await;
    assert!(page.body.contains("impersonation.start"));
    assert!(!page.body.contains("page /bills"), "filtered by action");

    // No route alters or deletes rows.
    let before = sup.get("/staff/audit.csv").await.body;
    let first_line = before.lines().last().unwrap().to_owned();
    for method in [
        reqwest::Method::POST,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
        reqwest::Method::PATCH,
    ] {
        for path in [
            "/staff/audit",
            "/staff/audit.csv",
            "/api/staff/audit",
            "/api/staff/audit_delete",
        ] {
            let r = sup
                .client
                .request(method.clone(), format!("{}{path}", sup.base))
                .form(&[("csrf", sup.staff_csrf().await.as_str()), ("id", "1")])
                .send()
                .await
                .unwrap();
            assert!(!r.status().is_success(), "{method} {path}: {}", r.status());
        }
    }
    let after = sup.get("/staff/audit.csv").await.body;
    assert_eq!(
        after.lines().last().unwrap(),
        first_line,
        "oldest row intact"
    );
    assert!(
        after.lines().count() > before.lines().count(),
        "reads are logged too"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_ends_an_agents_session_and_sign_out_ends_ones_own() {
    let site = Site::start().await;
    site.t.subscriber("13800002222", 10_000).await;
    staff(&site, "agent1", Role::Agent, None).await;
    staff(&site, "super1", Role::Supervisor, None).await;
    let agent = site.browser();
    assert!(ok(&agent.staff_sign_in(&site, "agent1").await));
    assert!(ok(&agent
        .act("13800002222", "customer asked for help")
        .await));
    let sup = site.browser();
    assert!(ok(&sup.staff_sign_in(&site, "super1").await));
    let active = sup.read("staff/active", &[]).await;
    assert!(active.body.contains("agent1"), "{}", active.body);
    let id = active
        .body
        .split("\"id\":")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap()
        .to_owned();
    assert!(ok(&sup.staff_call("end", &[("id", &id)]).await));
    assert_eq!(open_impersonations(&site).await, 0);
    let a = agent.get("/").await;
    assert!(
        a.status.is_redirection(),
        "agent's hall closed: {}",
        a.status
    );

    // Signing out of the console ends one's own session as a subscriber.
    assert!(ok(&agent.act("13800002222", "customer called back").await));
    assert_eq!(open_impersonations(&site).await, 1);
    assert!(ok(&agent.staff_call("sign_out", &[]).await));
    assert_eq!(open_impersonations(&site).await, 0);
    assert!(agent.get("/staff").await.status.is_redirection());
}
