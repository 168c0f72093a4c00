//! The web hall in a real browser: headless Chromium (Debian's `chromium` and
//! `chromium-driver`) driven through chromedriver, against the real `server` binary with the
//! demo data. Codes are read from the notification outbox, where they wait for the gateway.
//!
//! Needs the site built by cargo-leptos (`target/site/pkg`). When Chromium, chromedriver or
//! the site is missing the tests say so and pass, unless `OPENHALL_BROWSER_REQUIRED=1`
//! (set by `.ci/run`), when they fail.
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use openhall_tests::{binary, free_port, http_get};

struct Processes(Vec<Child>);

impl Drop for Processes {
    fn drop(&mut self) {
        for c in &mut self.0 {
            // chromedriver runs in its own process group: take Chromium down with it.
            let _ = Command::new("kill")
                .args(["-s", "KILL", "--", &format!("-{}", c.id())])
                .stderr(Stdio::null())
                .status();
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf()
}

fn site_root() -> PathBuf {
    std::env::var("OPENHALL_SITE_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace().join("target/site"))
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|f| f.is_file())
    })
}

/// What is missing to run the browser tests, if anything.
fn missing() -> Option<String> {
    let chromium = which("chromium").or_else(|| which("chromium-browser"));
    if chromium.is_none() || which("chromedriver").is_none() {
        return Some("chromium / chromedriver (apt-get install chromium chromium-driver)".into());
    }
    if !site_root().join("pkg/openhall.wasm").is_file() {
        return Some(format!(
            "the web hall's site at {} (cargo leptos build)",
            site_root().display()
        ));
    }
    None
}

fn skip_or_fail() -> bool {
    match missing() {
        None => false,
        Some(what) if std::env::var("OPENHALL_BROWSER_REQUIRED").is_ok_and(|v| v == "1") => {
            panic!("browser tests required but {what} is missing")
        }
        Some(what) => {
            eprintln!("SKIPPED: browser tests need {what}");
            true
        }
    }
}

async fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

struct Hall {
    port: u16,
    hall: app::Hall,
    _procs: Processes,
    _db: app::testing::TestDbGuard,
}

async fn start_hall() -> Hall {
    let (db, guard) = app::testing::fresh_database_url().await;
    let (http, sim) = (free_port(), free_port());
    let mut cmd = Command::new(binary("server"));
    cmd.arg("serve")
        .env_remove("REDIS_URL")
        .env_remove("OPENHALL_SMSC")
        .env("DATABASE_URL", &db)
        .env("OPENHALL_HTTP_ADDR", format!("127.0.0.1:{http}"))
        .env("OPENHALL_SIM_ADDR", format!("127.0.0.1:{sim}"))
        .env("OPENHALL_DEMO", "1")
        .env("OPENHALL_SITE_ROOT", site_root())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = cmd.spawn().expect("start server");
    let procs = Processes(vec![child]);
    wait_for("the web hall", || http_get(http, "/healthz").is_ok()).await;
    let hall = app::Hall::from_config(&app::config::Config {
        database_url: db,
        ..app::config::Config::from_lookup(|_| None).unwrap()
    })
    .await
    .unwrap();
    Hall {
        port: http,
        hall,
        _procs: procs,
        _db: guard,
    }
}

impl Hall {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The code in the newest SMS to `msisdn` (sent codes stay in the outbox without a gateway).
    async fn last_code(&self, msisdn: &str) -> String {
        let m = app::domain::Msisdn::parse(msisdn).unwrap();
        let body = self.hall.outbox_for(&m, 1).await.unwrap().remove(0).body;
        body.chars()
            .skip_while(|c| !c.is_ascii_digit())
            .take(6)
            .collect()
    }
}

struct Browser {
    client: Client,
    _driver: Processes,
    profile: tempfile::TempDir,
}

async fn browser(javascript: bool) -> Browser {
    use std::os::unix::process::CommandExt;
    let port = free_port();
    let mut driver = Command::new("chromedriver");
    driver
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    let driver = Processes(vec![driver.spawn().expect("start chromedriver")]);
    let profile = tempfile::tempdir().unwrap();
    let mut args = vec![
        "--headless=new".to_owned(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-dev-shm-usage".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        "--no-first-run".into(),
        "--window-size=1280,900".into(),
        format!("--user-data-dir={}", profile.path().display()),
    ];
    if !javascript {
        args.push("--blink-settings=scriptEnabled=false".into());
    }
    let mut caps = serde_json::Map::new();
    let binary = which("chromium")
        .or_else(|| which("chromium-browser"))
        .unwrap();
    let downloads = profile.path().join("downloads");
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "args": args,
            "binary": binary,
            "prefs": {
                "download.default_directory": downloads,
                "download.prompt_for_download": false,
            },
        }),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let client = loop {
        match ClientBuilder::rustls()
            .expect("tls")
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(c) => break c,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Err(e) => panic!("connect to chromedriver: {e}"),
        }
    };
    Browser {
        client,
        _driver: driver,
        profile,
    }
}

impl Browser {
    async fn go(&self, url: &str) {
        eprintln!("browser: go {url}");
        self.client.goto(url).await.unwrap();
    }

    async fn el(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(30))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
    }

    async fn fill(&self, css: &str, text: &str) {
        let e = self.el(css).await;
        e.clear().await.unwrap();
        e.send_keys(text).await.unwrap();
    }

    async fn click(&self, css: &str) {
        eprintln!("browser: click {css}");
        self.el(css).await.click().await.unwrap();
    }

    async fn text(&self, css: &str) -> String {
        self.el(css).await.text().await.unwrap()
    }

    async fn url(&self) -> String {
        self.client.current_url().await.unwrap().to_string()
    }

    /// Waits until the current URL contains `part`.
    async fn wait_url(&self, part: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let u = self.url().await;
            if u.contains(part) {
                return;
            }
            if Instant::now() >= deadline {
                self.keep_failure(&format!("url-{part}")).await;
                panic!("expected a URL with {part}, at {u}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the page's source contains `text`.
    async fn wait_text(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let s = self.client.source().await.unwrap();
            if s.contains(text) {
                return;
            }
            if Instant::now() >= deadline {
                self.keep_failure("text").await;
                panic!("expected {text:?} at {}", self.url().await);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the element's text is `want`.
    async fn wait_el_text(&self, css: &str, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = self.text(css).await;
            if got == want {
                return;
            }
            if Instant::now() >= deadline {
                self.keep_failure(css).await;
                panic!("{css}: expected {want:?}, found {got:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Keeps the page that failed a test (source and screenshot) under target/screenshots.
    async fn keep_failure(&self, what: &str) {
        let dir = workspace().join("target/screenshots");
        let _ = std::fs::create_dir_all(&dir);
        let name: String = what
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        if let Ok(src) = self.client.source().await {
            let _ = std::fs::write(dir.join(format!("failed-{name}.html")), src);
        }
        if let Ok(png) = self.client.screenshot().await {
            let _ = std::fs::write(dir.join(format!("failed-{name}.png")), png);
        }
        eprintln!("browser: kept the failed page as target/screenshots/failed-{name}.*");
    }

    /// The page hydrated: the wasm bundle ran.
    async fn hydrated(&self) {
        self.el("html[data-hydrated]").await;
    }

    async fn screenshot(&self, name: &str) {
        eprintln!("browser: screenshot {name}");
        let dir = workspace().join("target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        for (w, h) in [(390, 844), (1280, 900)] {
            self.client.set_window_size(w, h).await.unwrap();
            tokio::time::sleep(Duration::from_millis(300)).await;
            let png = self.client.screenshot().await.unwrap();
            std::fs::write(dir.join(format!("{name}-{w}.png")), png).unwrap();
        }
        self.client.set_window_size(1280, 900).await.unwrap();
    }
}

#[tokio::test]
async fn a_subscriber_uses_the_web_hall_in_a_browser() {
    if skip_or_fail() {
        return;
    }
    let hall = start_hall().await;
    let b = browser(true).await;

    // Sign in with an SMS code.
    b.go(&hall.url("/login?mode=code")).await;
    b.hydrated().await;
    b.fill("#send-code-form input[name=msisdn]", "13800138000")
        .await;
    b.click("#send-code-form button[type=submit]").await;
    b.wait_url("sent=1").await;
    let code = hall.last_code("13800138000").await;
    b.fill("#code-form input[name=code]", &code).await;
    b.click("#code-form button[type=submit]").await;
    b.el("#balance").await;
    assert_eq!(b.text("#balance").await, "¥120.00");
    b.screenshot("home").await;
    b.go(&hall.url("/bills")).await;
    b.el("#spending-chart").await;
    b.screenshot("bills").await;
    b.go(&hall.url("/products")).await;
    b.el("#addon-EDU10").await;
    b.screenshot("products").await;

    // Top up by recharge card.
    b.go(&hall.url("/topup")).await;
    b.hydrated().await;
    b.fill("#card-form input[name=pin]", "100000000000000001")
        .await;
    b.click("#card-form button[type=submit]").await;
    b.el("#receipt-amount").await;
    assert_eq!(b.text("#receipt-amount").await, "¥50.00");
    assert_eq!(b.text("#receipt-balance").await, "¥170.00");

    // Top up by online payment, through the (simulated) provider's page.
    b.go(&hall.url("/topup")).await;
    b.hydrated().await;
    b.fill("#pay-form input[name=yuan]", "30").await;
    b.click("#pay-form button[type=submit]").await;
    b.wait_url("/pay/sim/").await;
    b.click("#pay-confirm-form button[type=submit]").await;
    b.wait_url("/topup/receipt/").await;
    assert_eq!(b.text("#receipt-amount").await, "¥30.00");
    assert_eq!(b.text("#receipt-balance").await, "¥200.00");

    // Sign out.
    b.click("#sign-out").await;
    b.wait_url("/login").await;
    b.go(&hall.url("/")).await;
    b.wait_url("/login").await;

    // Another subscriber, by service password: one second factor covers what follows.
    b.go(&hall.url("/login")).await;
    b.hydrated().await;
    b.fill("#password-form input[name=msisdn]", "18800188000")
        .await;
    b.fill("#password-form input[name=password]", "951753")
        .await;
    b.click("#password-form button[type=submit]").await;
    b.el("#balance").await;

    // Detail records ask for a code first.
    b.go(&hall.url("/details")).await;
    b.hydrated().await;
    b.el("#verify-2fa-form").await;
    assert!(!b.client.source().await.unwrap().contains("details-table"));
    b.click("#send-2fa-form button[type=submit]").await;
    b.wait_text("5 分钟内有效").await;
    let code = hall.last_code("18800188000").await;
    b.fill("#verify-2fa-form input[name=code]", &code).await;
    b.click("#verify-2fa-form button[type=submit]").await;
    b.el("#details-table").await;

    // Subscribe EDU10: the charging rule is shown, then confirmed.
    b.go(&hall.url("/products")).await;
    b.hydrated().await;
    b.click("#addon-EDU10 a.button").await;
    b.wait_url("/products/EDU10").await;
    assert!(b.text("#charging-rule").await.contains("10.00"));
    b.click("#confirm-product-form button[type=submit]").await;
    b.wait_url("done=subscribed").await;
    b.wait_text("已订购").await;
    let who = app::domain::Msisdn::parse("18800188000").unwrap();
    let subs = hall.hall.subscriptions(&who).await.unwrap();
    assert_eq!(
        subs.iter()
            .filter(|s| s.product.code.to_string() == "EDU10")
            .count(),
        1
    );

    // A plan change, then its withdrawal.
    b.click("#plan-GT288 a.button").await;
    b.wait_url("op=change").await;
    b.click("#confirm-product-form button[type=submit]").await;
    b.wait_url("done=plan_change").await;
    b.el("#pending-change").await;
    assert!(hall.hall.pending_plan_change(&who).await.unwrap().is_some());
    b.click("#pending-change a.button").await;
    b.wait_url("op=withdraw").await;
    b.click("#confirm-product-form button[type=submit]").await;
    b.wait_url("done=withdrawn").await;
    assert!(hall.hall.pending_plan_change(&who).await.unwrap().is_none());

    // A points redemption.
    let before = hall.hall.points(&who).await.unwrap().balance.get();
    b.go(&hall.url("/points?redeem=HF5")).await;
    b.hydrated().await;
    b.click("#confirm-redeem-form button[type=submit]").await;
    b.wait_url("done=redeemed").await;
    assert_eq!(
        hall.hall.points(&who).await.unwrap().balance.get(),
        before - 400
    );
    b.wait_el_text("#points-balance", &(before - 400).to_string())
        .await;

    b.click("#sign-out").await;
    b.wait_url("/login").await;
    b.client.clone().close().await.unwrap();
}

#[tokio::test]
async fn the_web_hall_works_without_javascript() {
    if skip_or_fail() {
        return;
    }
    let hall = start_hall().await;
    let b = browser(false).await;
    b.go(&hall.url("/")).await;
    b.wait_url("/login").await;
    b.fill("#password-form input[name=msisdn]", "13900139000")
        .await;
    b.fill("#password-form input[name=password]", "000000")
        .await;
    b.click("#password-form button[type=submit]").await;
    // The error is on the page after the redirect.
    b.wait_text("服务密码错误").await;
    b.fill("#password-form input[name=msisdn]", "13900139000")
        .await;
    b.fill("#password-form input[name=password]", "369258")
        .await;
    b.click("#password-form button[type=submit]").await;
    b.el("#balance").await;
    assert_eq!(b.text("#balance").await, "¥35.00");
    assert!(b
        .client
        .find(Locator::Css("html[data-hydrated]"))
        .await
        .is_err());

    b.go(&hall.url("/topup")).await;
    b.fill("#card-form input[name=pin]", "100000000000000002")
        .await;
    b.click("#card-form button[type=submit]").await;
    b.el("#receipt-amount").await;
    assert_eq!(b.text("#receipt-amount").await, "¥50.00");
    assert_eq!(b.text("#receipt-balance").await, "¥85.00");
    // The same card again: refused with a message, nothing credited.
    b.go(&hall.url("/topup")).await;
    b.fill("#card-form input[name=pin]", "100000000000000002")
        .await;
    b.click("#card-form button[type=submit]").await;
    b.el("#card-form .alert.error").await;
    let who = app::domain::Msisdn::parse("13900139000").unwrap();
    assert_eq!(hall.hall.balance(&who).await.unwrap().total().get(), 8_500);
    b.client.clone().close().await.unwrap();
}

#[tokio::test]
async fn customer_care_acts_for_a_subscriber_in_a_browser() {
    if skip_or_fail() {
        return;
    }
    let hall = start_hall().await;
    let b = browser(true).await;

    // An agent signs in and finds a demo subscriber, masked.
    b.go(&hall.url("/staff")).await;
    b.wait_url("/staff/login").await;
    b.hydrated().await;
    b.fill("#staff-login-form input[name=username]", "agent01")
        .await;
    b.fill("#staff-login-form input[name=password]", "Agent#2026")
        .await;
    b.click("#staff-login-form button[type=submit]").await;
    b.el("#search-form").await;
    b.hydrated().await;
    b.fill("#search-form input[name=q]", "13900139000").await;
    b.click("#search-form button[type=submit]").await;
    assert_eq!(b.text(".found .masked-name").await, "李*");
    assert!(b.text(".found .masked-id").await.contains("********"));

    // Acts as them with a reason: the banner and masked data.
    b.fill(".act-form textarea[name=reason]", "客户来电,协助订购教育包")
        .await;
    b.click(".act-form button[type=submit]").await;
    b.el("#impersonation-banner").await;
    let banner = b.text("#impersonation-banner").await;
    assert!(
        banner.contains("agent01") && banner.contains("13900139000"),
        "{banner}"
    );
    b.el("#balance").await;
    let home = b.client.source().await.unwrap();
    assert!(home.contains("李*") && !home.contains("李娜"));

    // The subscriber reads out the code; the agent opens the second factor with it.
    b.go(&hall.url("/account")).await;
    b.hydrated().await;
    b.click("#send-2fa-form button[type=submit]").await;
    b.wait_text("5 分钟内有效").await;
    let code = hall.last_code("13900139000").await;
    b.fill("#verify-2fa-form input[name=code]", &code).await;
    b.click("#verify-2fa-form button[type=submit]").await;
    // A password change is refused even so.
    b.fill("#password-form input[name=current]", "369258").await;
    b.fill("#password-form input[name=new]", "135790").await;
    b.fill("#password-form input[name=repeat]", "135790").await;
    b.click("#password-form button[type=submit]").await;
    b.wait_text("代客操作时不能修改服务密码").await;

    // Subscribes a product with the subscriber's code.
    b.go(&hall.url("/products")).await;
    b.hydrated().await;
    b.click("#addon-LL20 a.button").await;
    b.wait_url("/products/LL20").await;
    b.click("#confirm-product-form button[type=submit]").await;
    b.wait_url("done=subscribed").await;
    let who = app::domain::Msisdn::parse("13900139000").unwrap();
    assert!(hall
        .hall
        .subscriptions(&who)
        .await
        .unwrap()
        .iter()
        .any(|s| s.product.code.to_string() == "LL20"));

    // Ends the session from the banner.
    b.click("#end-acting").await;
    b.wait_url("/staff").await;
    b.go(&hall.url("/")).await;
    b.wait_url("/login").await;
    b.go(&hall.url("/staff")).await;
    b.hydrated().await;
    b.click("#staff-sign-out").await;
    b.wait_url("/staff/login").await;

    // A supervisor sees each step in the audit log and downloads it.
    b.hydrated().await;
    let totp = app::service::totp::code_at(
        "JBSWY3DPEHPK3PXP",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64,
    );
    b.fill("#staff-login-form input[name=username]", "supervisor01")
        .await;
    b.fill("#staff-login-form input[name=password]", "Super#2026")
        .await;
    b.fill("#staff-login-form input[name=totp]", &totp).await;
    b.click("#staff-login-form button[type=submit]").await;
    b.el("#search-form").await;
    b.go(&hall.url("/staff/audit?staff=agent01")).await;
    b.el("#audit-table").await;
    let log = b.text("#audit-table").await;
    for step in [
        "staff.sign_in",
        "search by number",
        "impersonation.start",
        "page /account",
        "change_password",
        "change_product",
        "impersonation.end",
    ] {
        assert!(
            log.contains(step),
            "{step} missing from the audit log:\n{log}"
        );
    }
    b.hydrated().await;
    b.click("#audit-csv").await;
    let file = b.profile.path().join("downloads/openhall-audit.csv");
    wait_for("the CSV download", || {
        std::fs::read_to_string(&file).is_ok_and(|c| c.contains("impersonation.start"))
    })
    .await;
    let csv = std::fs::read_to_string(&file).unwrap();
    assert!(csv.contains("agent01") && csv.contains("13900139000"));
    b.client.clone().close().await.unwrap();
}
