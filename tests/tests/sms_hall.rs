//! The whole product as a visitor tries it: `server` (web hall, built-in SMSC simulator, demo
//! data) and `sms-gateway` started as real processes; texts go in through `/phone`, over real
//! SMPP to the gateway, and the answers come back the same way.

use openhall_tests::{free_port, http_get, http_post_form, start, wait_for, Processes};

/// Texts `text` from `number` through the handset page and waits for a reply containing `expect`.
async fn text_10086(port: u16, number: &str, text: &str, expect: &str) -> String {
    let before = thread(port, number).matches("class=\"in\"").count();
    let (status, location) =
        http_post_form(port, "/phone", &[("number", number), ("text", text)]).unwrap();
    assert_eq!(status, 303);
    assert!(
        location.as_deref().is_some_and(|l| l.contains("sent=1")),
        "{text}: {location:?}"
    );
    let mut page = String::new();
    wait_for(&format!("a reply to {text}"), || {
        page = thread(port, number);
        page.matches("class=\"in\"").count() > before
    })
    .await;
    let last = page
        .rsplit("class=\"in\"")
        .next()
        .unwrap_or_default()
        .to_string();
    assert!(
        last.contains(expect),
        "{text}: expected {expect:?} in {last}"
    );
    last
}

fn thread(port: u16, number: &str) -> String {
    http_get(port, &format!("/phone?number={number}"))
        .map(|(_, b)| b)
        .unwrap_or_default()
}

#[tokio::test]
async fn a_visitor_texts_10086_through_the_real_gateway() {
    let (db, _guard) = app::testing::fresh_database_url().await;
    let (http, sim) = (free_port(), free_port());
    let env = [
        ("DATABASE_URL", db.clone()),
        ("OPENHALL_HTTP_ADDR", format!("127.0.0.1:{http}")),
        ("OPENHALL_SIM_ADDR", format!("127.0.0.1:{sim}")),
        ("OPENHALL_DEMO", "1".to_string()),
    ];
    let mut procs = Processes(vec![start("server", &env, &["REDIS_URL", "OPENHALL_SMSC"])]);
    wait_for("the web hall", || http_get(http, "/healthz").is_ok()).await;
    procs
        .0
        .push(start("sms-gateway", &env, &["REDIS_URL", "OPENHALL_SMSC"]));
    wait_for("the gateway to bind", || {
        thread(http, "13800138000").contains("class=\"link up\"")
    })
    .await;

    text_10086(http, "13800138000", "CXYE", "120.00").await;
    text_10086(http, "13800138000", "KTEDU10", "是").await;
    let hall = app::Hall::from_config(&app::config::Config {
        database_url: db.clone(),
        ..app::config::Config::from_lookup(|_| None).unwrap()
    })
    .await
    .unwrap();
    let who = app::domain::Msisdn::parse("13800138000").unwrap();
    let has_edu10 = |subs: &[app::service::subscriptions::Subscription]| {
        subs.iter().any(|s| s.product.code.as_str() == "EDU10")
    };
    assert!(
        !has_edu10(&hall.subscriptions(&who).await.unwrap()),
        "nothing before the confirmation"
    );
    text_10086(http, "13800138000", "是", "EDU10").await;
    assert!(has_edu10(&hall.subscriptions(&who).await.unwrap()));
    assert_eq!(
        hall.balance(&who).await.unwrap().total(),
        app::domain::Fen::yuan(110)
    );
    // Every other command is answered too, through the same real path.
    for (text, expect) in [
        ("CXZD", "元"),
        ("CXTC", "88"),
        ("CXLL", "流量"),
        ("CXJF", "积分"),
        ("0000", "TD"),
        ("DHHF5", "积分"),
        ("Y", "4600"),
        ("CZ100000000000000001", "50.00"),
        ("ｃｘｙｅ", "余额"),
        ("QXEDU10", "月底"),
        ("hello", "BZ"),
    ] {
        text_10086(http, "13800138000", text, expect).await;
    }
    // A long reply (the help) arrives whole, and a code the web hall sends arrives too.
    text_10086(http, "13800138000", "BZ", "CXYE").await;
    hall.send_code(&who, app::service::codes::CodePurpose::SignIn)
        .await
        .unwrap();
    wait_for("the sign-in code on the handset", || {
        thread(http, "13800138000").contains("登录验证码")
    })
    .await;
}
