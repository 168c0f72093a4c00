//! Several instances behave as one (issue 6): two `server` processes and two `sms-gateway`
//! processes share one database — and one Redis when `REDIS_URL` is set (`bin/test
//! --production`) — and one SMSC, which spreads MO over both gateways' binds as operators'
//! SMSCs do.
//!
//! - Every command is answered exactly once, whichever gateway receives it, and an MO the SMSC
//!   redelivers to the *other* gateway is not answered twice.
//! - With Redis: a sign-in code requested through one web server signs in on the other, and
//!   the session is then valid on both.
use std::time::Duration;

use openhall_tests::{free_port, http_get, start, wait_for, Processes};
use sms_gateway::load::{self, LoadPlan};
use sms_gateway::simulator::{Smsc, SmscConfig, SmscHandle};

/// The complete MT messages to `number` that arrive within `within`.
async fn messages_to(sim: &SmscHandle, number: &str, within: Duration) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + within;
    let mut texts = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return texts;
        }
        match sim.next_mt(left).await {
            Some(mt) if mt.destination == number => texts.push(mt.text),
            Some(_) => {}
            None => return texts,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_web_servers_and_two_gateways_behave_as_one() {
    let (db, _guard) = app::testing::fresh_database_url().await;
    let redis = std::env::var("REDIS_URL").ok().filter(|u| !u.is_empty());
    // Its own key prefix in a shared Redis, so that parallel runs do not meet.
    let prefix = format!("oh_two_{}:", std::process::id());

    // The data, seeded once before any instance starts (two servers seeding an empty
    // database at once is not a thing to do in production either).
    let hall = app::Hall::from_config(&app::config::Config {
        database_url: db.clone(),
        ..app::config::Config::from_lookup(|_| None).unwrap()
    })
    .await
    .unwrap();
    app::demo::seed_demo(&hall).await.unwrap();
    app::demo::seed_generated(&hall, 100, |_| {}).await.unwrap();

    let mut config = SmscConfig::new("twoinst", "twoinst");
    config.spread_mo = true;
    config.response_timeout = Duration::from_secs(10);
    config.unread_capacity = 100_000;
    let sim = Smsc::start(config).await.unwrap();
    let smsc = format!("smpp://twoinst:twoinst@{}", sim.local_addr());

    let mut env = vec![
        ("DATABASE_URL", db.clone()),
        ("OPENHALL_SMSC", smsc),
        ("OPENHALL_DEMO", "0".to_string()),
        ("OPENHALL_GATEWAY_HTTP_ADDR", "off".to_string()),
        ("OPENHALL_REDIS_PREFIX", prefix),
    ];
    if let Some(r) = &redis {
        env.push(("REDIS_URL", r.clone()));
    }
    let mut procs = Processes(Vec::new());
    let web: Vec<u16> = (0..2).map(|_| free_port()).collect();
    for port in &web {
        let mut e = env.clone();
        e.push(("OPENHALL_HTTP_ADDR", format!("127.0.0.1:{port}")));
        procs.0.push(start("server", &e, &[]));
    }
    for _ in 0..2 {
        procs.0.push(start("sms-gateway", &env, &[]));
    }
    for port in &web {
        wait_for("a web server", || http_get(*port, "/healthz").is_ok()).await;
    }
    wait_for("both gateways to bind", || sim.bound_sessions() == 2).await;

    // 1. A load spread over both gateways: every command answered once.
    let plan = LoadPlan {
        commands: 1_000,
        subscribers: 100,
        first: 152_0000_0000,
        rate: 0.0,
        senders: 64,
        short_code: "10086".into(),
        reply_wait: Duration::from_secs(20),
        give_up: Duration::from_secs(60),
    };
    let report = load::run(&sim, &plan).await.unwrap();
    assert!(report.clean(), "{}", report.render());
    assert_eq!(
        (report.acknowledged, report.replies),
        (1_000, 1_000),
        "{}",
        report.render()
    );
    assert_eq!(sim.bound_sessions(), 2, "both gateways stayed bound");

    // 2. The SMSC did not see the first deliver_sm_resp and delivers the MO again — the
    //    next MO goes to the other gateway's bind. One reply, not two.
    let number = "13900139000";
    for _ in 0..2 {
        assert_eq!(sim.send_mo(number, "10086", "CXLL").await, Ok(0));
    }
    let replies = messages_to(&sim, number, Duration::from_secs(5)).await;
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert!(replies[0].contains("流量"), "{replies:?}");

    // 3. A code sent through one web server signs in on the other (codes and sessions live
    //    in Redis). Without Redis each server keeps its own: nothing to share.
    if redis.is_none() {
        eprintln!("two_instances: REDIS_URL is unset; the shared-session part runs with bin/test --production");
        return;
    }
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let at = |port: u16, path: &str| format!("http://127.0.0.1:{port}{path}");
    let csrf = |page: String| {
        let at = page.find("name=\"csrf\" value=\"").expect("csrf field") + 19;
        page[at..at + 48].to_owned()
    };
    let number = "13800138000";
    let page = browser
        .get(at(web[0], "/login"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    let token = csrf(page.text().await.unwrap());
    let sent = browser
        .post(at(web[0], "/api/send_sign_in_code"))
        .form(&[("csrf", token.as_str()), ("msisdn", number)])
        .send()
        .await
        .unwrap();
    assert!(sent.status().is_success() || sent.status().is_redirection());
    let mut sms = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while sms.is_none() && tokio::time::Instant::now() < deadline {
        if let Some(mt) = sim.next_mt(Duration::from_secs(1)).await {
            sms = Some(mt.text).filter(|t| mt.destination == number && t.contains("验证码"));
        }
    }
    let code: String = sms
        .expect("the sign-in code SMS")
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take(6)
        .collect();
    let signed = browser
        .post(at(web[1], "/api/sign_in_code"))
        .form(&[
            ("csrf", token.as_str()),
            ("msisdn", number),
            ("code", code.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert!(
        signed.status().is_success() || signed.status().is_redirection(),
        "sign-in on the other server: {}",
        signed.status()
    );
    for port in &web {
        let home = browser
            .get(at(*port, "/"))
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        assert_eq!(home.status(), 200, "signed in on :{port}");
        assert!(home.text().await.unwrap().contains("120.00"));
    }
}
