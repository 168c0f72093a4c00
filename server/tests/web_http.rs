//! The web hall over real HTTP, in-process with a fresh database and a settable clock: sign-in,
//! CSRF, the idle timeout, the second-factor window, and isolation between subscribers.
mod support;

use app::domain::Msisdn;
use reqwest::StatusCode;
use support::Site;

const PAGES: &[&str] = &[
    "/",
    "/bills",
    "/details",
    "/topup",
    "/products",
    "/products/EDU10",
    "/points",
    "/account",
    "/invoices",
    "/invoices/2026-10",
    "/topup/receipt/1",
    "/pay/sim/P1",
    "/password",
];

/// Every server function that changes something, with plausible arguments.
const WRITES: &[(&str, &[(&str, &str)])] = &[
    ("send_code", &[("purpose", "2fa")]),
    ("verify_second_factor", &[("code", "123456")]),
    ("change_product", &[("code", "EDU10"), ("op", "subscribe")]),
    ("pay_online", &[("target", ""), ("yuan", "50")]),
    (
        "top_up_card",
        &[
            ("target", ""),
            ("pin", "100000000000000001"),
            ("serial", ""),
        ],
    ),
    ("complete_payment", &[("order", "P1"), ("approve", "1")]),
    (
        "redeem",
        &[("reward", "HF27"), ("reference", "abcdefabcdefabcdef")],
    ),
    (
        "change_password",
        &[
            ("current", "902468"),
            ("new", "135790"),
            ("repeat", "135790"),
        ],
    ),
    (
        "change_initial_password",
        &[
            ("current", "902468"),
            ("new", "135790"),
            ("repeat", "135790"),
        ],
    ),
    ("set_alert_threshold", &[("yuan", "300")]),
    ("suspend_or_resume", &[("action", "suspend")]),
    ("sign_out_everywhere", &[]),
];

const READS: &[(&str, &[(&str, &str)])] = &[
    ("home", &[]),
    ("bills", &[]),
    ("details", &[("month", ""), ("kind", "all"), ("page", "1")]),
    ("topup", &[]),
    ("products", &[]),
    ("product_order", &[("code", "EDU10"), ("op", "subscribe")]),
    ("points", &[]),
    ("account", &[]),
    ("invoices", &[]),
    ("invoice", &[("period", "2026-10")]),
    ("receipt", &[("id", "1")]),
    ("payment", &[("order", "P1")]),
    ("second_factor", &[]),
    ("code_cooldown", &[("purpose", "2fa")]),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_out_requests_are_refused_everywhere() {
    let site = Site::start().await;
    let m = site.t.subscriber("13800001111", 10_000).await;
    let b = site.browser();
    for page in PAGES {
        let a = b.get(page).await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{page}");
        assert_eq!(a.location.as_deref(), Some("/login"), "{page}");
    }
    for (f, args) in WRITES {
        let a = b.call_with_csrf(f, args).await;
        assert!(a.status.is_client_error(), "{f}: {} {}", a.status, a.body);
    }
    for (f, args) in READS {
        let a = b.read(f, args).await;
        assert!(a.status.is_client_error(), "{f}: {} {}", a.status, a.body);
    }
    // Nothing happened to the subscriber.
    assert_eq!(site.t.hall.balance(&m).await.unwrap().total().get(), 10_000);
    assert!(site.t.hall.outbox_for(&m, 10).await.unwrap().is_empty());
    // The login page itself is open.
    assert_eq!(b.get("/login").await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_wrong_csrf_token_is_refused() {
    let site = Site::start().await;
    site.t.subscriber("13800001111", 0).await;
    let b = site.browser();
    let _ = b.csrf().await;
    let a = b
        .call(
            "sign_in_password",
            &[("msisdn", "13800001111"), ("password", "902468")],
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = b
        .call(
            "sign_in_password",
            &[
                ("csrf", "0".repeat(48).as_str()),
                ("msisdn", "13800001111"),
                ("password", "902468"),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(b.get("/").await.status, StatusCode::SEE_OTHER);
    // Signed in, a state-changing call without the token still fails and changes nothing.
    b.sign_in("13800001111").await;
    let a = b.call("set_alert_threshold", &[("yuan", "999")]).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let m = Msisdn::parse("13800001111").unwrap();
    assert_eq!(
        site.t.hall.profile(&m).await.unwrap().alert_threshold.get(),
        20_000
    );
    // Another browser's token does not pass either.
    let other = site.browser();
    let foreign = other.csrf().await;
    let a = b
        .call(
            "set_alert_threshold",
            &[("csrf", &foreign), ("yuan", "999")],
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = b
        .call_with_csrf("set_alert_threshold", &[("yuan", "999")])
        .await;
    assert!(
        a.status.is_success() || a.status.is_redirection(),
        "{}",
        a.status
    );
    assert_eq!(
        site.t.hall.profile(&m).await.unwrap().alert_threshold.get(),
        99_900
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_idles_out_after_fifteen_minutes() {
    let site = Site::start().await;
    site.t.subscriber("13800001111", 0).await;
    let b = site.browser();
    b.sign_in("13800001111").await;
    // Activity keeps it alive.
    for _ in 0..3 {
        site.advance(14);
        assert_eq!(b.get("/").await.status, StatusCode::OK);
    }
    site.advance(15);
    let a = b.get("/").await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert_eq!(a.location.as_deref(), Some("/login"));
    assert!(
        b.get("/login").await.body.contains("15"),
        "the login page says why"
    );
    assert!(b.read("home", &[]).await.status.is_client_error());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_second_factor_opens_ten_minutes() {
    let site = Site::start().await;
    let m = site.t.subscriber("13800001111", 0).await;
    let b = site.browser();
    b.sign_in("13800001111").await;
    let details = || b.read("details", &[("month", ""), ("kind", "all"), ("page", "1")]);
    assert_eq!(details().await.status, StatusCode::FORBIDDEN);
    // A wrong code does not open it.
    let a = b.call_with_csrf("send_code", &[("purpose", "2fa")]).await;
    assert!(a.status.is_success());
    let code = site.last_code(&m).await;
    let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
    let a = b
        .call_with_csrf("verify_second_factor", &[("code", &wrong)])
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(details().await.status, StatusCode::FORBIDDEN);
    let a = b
        .call_with_csrf("verify_second_factor", &[("code", &code)])
        .await;
    assert!(a.status.is_success(), "{}", a.body);
    assert_eq!(details().await.status, StatusCode::OK);
    site.advance(9);
    assert_eq!(details().await.status, StatusCode::OK);
    site.advance(2);
    assert_eq!(
        details().await.status,
        StatusCode::FORBIDDEN,
        "asked again after 10 minutes"
    );
    // The page shows the code form rather than the records.
    let page = b.get("/details").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("verify-2fa-form"));
    assert!(!page.body.contains("details-table"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_subscriber_cannot_reach_anothers_data() {
    let site = Site::start().await;
    let a_m = site.t.subscriber("13800001111", 50_000).await;
    let b_m = site.t.subscriber("13900002222", 50_000).await;
    let alice = site.browser();
    let bob = site.browser();
    alice.sign_in("13800001111").await;
    bob.sign_in("13900002222").await;

    // Bob makes a payment order and a top-up receipt of his own.
    let a = bob
        .call_with_csrf("pay_online", &[("target", ""), ("yuan", "50")])
        .await;
    assert!(
        a.status.is_success() || a.status.is_redirection(),
        "{} {}",
        a.status,
        a.body
    );
    let order = site
        .t
        .hall
        .create_payment(&b_m, &b_m, app::domain::Fen::yuan(20))
        .await
        .unwrap();
    let receipt = match site
        .t
        .hall
        .simulate_payment(&b_m, &order.id, true)
        .await
        .unwrap()
    {
        app::service::payment::CallbackOutcome::Credited(r) => r,
        other => panic!("{other:?}"),
    };
    let second = site
        .t
        .hall
        .create_payment(&b_m, &b_m, app::domain::Fen::yuan(30))
        .await
        .unwrap();
    let bob_before = site.t.hall.balance(&b_m).await.unwrap().total();

    // Alice tries Bob's identifiers on every route that takes one.
    let id = receipt.id.to_string();
    assert!(alice
        .read("receipt", &[("id", &id)])
        .await
        .status
        .is_client_error());
    assert!(alice
        .read("payment", &[("order", &second.id)])
        .await
        .status
        .is_client_error());
    let a = alice
        .call_with_csrf(
            "complete_payment",
            &[("order", &second.id), ("approve", "1")],
        )
        .await;
    assert!(a.status.is_client_error(), "{}", a.status);
    assert!(!alice
        .get(&format!("/topup/receipt/{id}"))
        .await
        .body
        .contains(&receipt.reference[4..]));
    // Extra identifying fields are ignored: the number always comes from the session.
    let a = alice
        .call_with_csrf(
            "set_alert_threshold",
            &[("yuan", "321"), ("msisdn", "13900002222")],
        )
        .await;
    assert!(
        a.status.is_success() || a.status.is_redirection(),
        "{}",
        a.status
    );
    assert_eq!(
        site.t
            .hall
            .profile(&b_m)
            .await
            .unwrap()
            .alert_threshold
            .get(),
        20_000
    );
    assert_eq!(
        site.t
            .hall
            .profile(&a_m)
            .await
            .unwrap()
            .alert_threshold
            .get(),
        32_100
    );
    for (f, _) in READS {
        let a = alice.read(f, &[("msisdn", "13900002222")]).await;
        assert!(
            !a.body.contains("13900002222") && !a.body.contains("139****2222"),
            "{f} leaked Bob's number"
        );
    }
    // Bob's code does not pass for Alice.
    let a = bob.call_with_csrf("send_code", &[("purpose", "2fa")]).await;
    assert!(a.status.is_success());
    let bobs = site.last_code(&b_m).await;
    let a = alice
        .call_with_csrf("verify_second_factor", &[("code", &bobs)])
        .await;
    assert!(a.status.is_client_error());
    // Bob's session is not Alice's: her home page shows her balance, never his.
    let home = alice.read("home", &[]).await.body;
    assert!(home.contains("13800001111") || home.contains("138****1111"));
    assert_eq!(site.t.hall.balance(&b_m).await.unwrap().total(), bob_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_carry_the_security_headers_and_cookie_rules() {
    let site = Site::start().await;
    let b = site.browser();
    let r = b
        .client
        .get(format!("{}/login", site.base))
        .send()
        .await
        .unwrap();
    let h = r.headers();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'self'"));
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(h.contains_key("referrer-policy"));
    let cookie = h["set-cookie"].to_str().unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let nonce = support::csp_nonce(h);
    let body = r.text().await.unwrap();
    assert!(
        body.contains(&format!("nonce=\"{nonce}\"")),
        "inline scripts carry the nonce"
    );
}
