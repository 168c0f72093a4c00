//! The kept home page (`server/src/home_memo.rs`) over real HTTP: a view gets the page kept
//! from the last view only while everything the page shows is unchanged, always with its own
//! response's nonce.
mod support;

use app::domain::Fen;
use support::{csp_nonce, csrf_of as csrf, Browser, Site};

/// A view of the home page: the nonce of its Content-Security-Policy header, and its body.
async fn home(b: &Browser) -> (String, String) {
    let r = b
        .client
        .get(format!("{}/", b.base))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    (csp_nonce(r.headers()), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_home_page_is_rendered_again_whenever_what_it_shows_changes() {
    let site = Site::start().await;
    let m = site.t.subscriber("13800001111", 50_000).await;
    let alice = site.browser();
    alice.sign_in("13800001111").await;

    // Viewed twice: the same page, each time with that response's nonce and no other.
    let (n1, p1) = home(&alice).await;
    let (n2, p2) = home(&alice).await;
    assert_ne!(n1, n2);
    assert!(p2.contains(&format!("nonce=\"{n2}\"")), "{p2}");
    assert!(!p2.contains(&n1));
    assert_eq!(p1.replace(&n1, "NONCE"), p2.replace(&n2, "NONCE"));
    assert!(p2.contains(&Fen::new(50_000).to_string()));

    // The balance changes outside this server's pages (as another instance would change it).
    site.t
        .hall
        .adjust_balance(&m, Fen::new(-1_234), "test")
        .await
        .unwrap();
    let (n3, p3) = home(&alice).await;
    assert!(p3.contains(&Fen::new(48_766).to_string()), "{p3}");
    assert!(!p3.contains(&Fen::new(50_000).to_string()));
    assert!(p3.contains(&format!("nonce=\"{n3}\"")));

    // Another language.
    alice.get("/lang/en?back=/").await;
    let (_, p4) = home(&alice).await;
    assert!(p4.contains("Balance") && !p3.contains("Balance"), "{p4}");

    // Another address: the notice after a password change shows on its own address only.
    let notice = "Your service password has been changed.";
    assert!(alice.get("/?done=password").await.body.contains(notice));
    let (_, p5) = home(&alice).await;
    assert!(!p5.contains(notice));

    // A second browser of the same subscriber has a page with its own CSRF token, and the
    // first browser's page still carries the first's.
    let phone = site.browser();
    phone.sign_in("13800001111").await;
    let (_, q) = home(&phone).await;
    assert_ne!(csrf(&q), csrf(&p5));
    let (_, p6) = home(&alice).await;
    assert_eq!(csrf(&p6), csrf(&p5));

    // A change made through the hall's own forms.
    let threshold = Fen::yuan(321).to_string();
    assert!(!p6.contains(&threshold));
    let a = alice
        .call(
            "set_alert_threshold",
            &[("csrf", &csrf(&p6)), ("yuan", "321")],
        )
        .await;
    assert!(
        a.status.is_success() || a.status.is_redirection(),
        "{}",
        a.body
    );
    let (_, p7) = home(&alice).await;
    assert!(p7.contains(&threshold), "{p7}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_out_browser_never_gets_a_kept_page() {
    let site = Site::start().await;
    site.t.subscriber("13800001111", 50_000).await;
    let alice = site.browser();
    alice.sign_in("13800001111").await;
    let (_, page) = home(&alice).await;
    assert!(page.contains("138****1111"));

    let stranger = site.browser();
    let a = stranger.get("/").await;
    assert!(a.status.is_redirection(), "{}", a.status);
    assert_eq!(a.location.as_deref(), Some("/login"));

    let csrf = csrf(&page);
    let out = alice.call("sign_out", &[("csrf", csrf.as_str())]).await;
    assert!(out.status.is_success() || out.status.is_redirection());
    let a = alice.get("/").await;
    assert_eq!(a.location.as_deref(), Some("/login"), "{}", a.status);
}
