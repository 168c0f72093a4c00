//! The test harness of the web suites: the real router in-process, over real HTTP, with a
//! fresh database and a settable clock, and a cookie-keeping client per "browser".
#![allow(dead_code)]
use std::net::SocketAddr;
use std::time::Duration;

use app::domain::Msisdn;
use app::testing::TestHall;
use reqwest::redirect::Policy;
use reqwest::{Client, StatusCode};
use server::sessions::SessionStores;

pub struct Site {
    pub t: TestHall,
    pub base: String,
    _one_at_a_time: tokio::sync::MutexGuard<'static, ()>,
}

impl Site {
    /// Starts a site; the tests of one binary take turns. Several Leptos servers in one process
    /// (never the case in production) share the framework's process-wide state, and about
    /// one run in five a page render then waited forever.
    pub async fn start() -> Site {
        static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        let turn = ONE_AT_A_TIME.lock().await;
        // `RUST_LOG=…` shows the server's logs with a failing test's output.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let t = TestHall::empty().await;
        let stores = SessionStores::from_config(None).await.unwrap();
        let app = server::http::router(t.hall.clone(), None, stores, false);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap();
        });
        Site {
            t,
            base: format!("http://{addr}"),
            _one_at_a_time: turn,
        }
    }

    pub fn browser(&self) -> Browser {
        Browser {
            client: Client::builder()
                .cookie_store(true)
                .redirect(Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            base: self.base.clone(),
        }
    }

    pub async fn last_code(&self, m: &Msisdn) -> String {
        let body = self.t.hall.outbox_for(m, 1).await.unwrap().remove(0).body;
        body.chars()
            .skip_while(|c| !c.is_ascii_digit())
            .take(6)
            .collect()
    }

    pub fn advance(&self, minutes: i64) {
        self.t.clock.advance(chrono::Duration::minutes(minutes));
    }
}

pub struct Browser {
    pub client: Client,
    pub base: String,
}

pub struct Answer {
    pub status: StatusCode,
    pub location: Option<String>,
    pub body: String,
}

impl Browser {
    pub async fn get(&self, path: &str) -> Answer {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        answer(r).await
    }

    /// A server function called as the hydrated page calls it (no `Accept: text/html`).
    pub async fn call(&self, endpoint: &str, form: &[(&str, &str)]) -> Answer {
        let r = self
            .client
            .post(format!("{}/api/{endpoint}", self.base))
            .form(form)
            .send()
            .await
            .unwrap();
        answer(r).await
    }

    /// A read function (GET).
    pub async fn read(&self, endpoint: &str, query: &[(&str, &str)]) -> Answer {
        let r = self
            .client
            .get(format!("{}/api/{endpoint}", self.base))
            .query(query)
            .send()
            .await
            .unwrap();
        answer(r).await
    }

    /// The CSRF token the pages of this session carry.
    pub async fn csrf(&self) -> String {
        csrf_of(&self.get("/login").await.body)
    }

    pub async fn call_with_csrf(&self, endpoint: &str, form: &[(&str, &str)]) -> Answer {
        let csrf = self.csrf().await;
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(form);
        self.call(endpoint, &all).await
    }

    pub async fn sign_in(&self, msisdn: &str) {
        let a = self
            .call_with_csrf(
                "sign_in_password",
                &[("msisdn", msisdn), ("password", "902468")],
            )
            .await;
        assert!(
            a.status.is_success() || a.status.is_redirection(),
            "sign-in: {} {}",
            a.status,
            a.body
        );
        assert_eq!(self.get("/").await.status, StatusCode::OK);
    }
}

/// The CSRF token a page's forms carry.
pub fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    page[at..at + 48].to_owned()
}

/// The script nonce of a response's Content-Security-Policy header.
pub fn csp_nonce(headers: &reqwest::header::HeaderMap) -> String {
    let csp = headers["content-security-policy"].to_str().unwrap();
    csp.split("'nonce-")
        .nth(1)
        .and_then(|s| s.split('\'').next())
        .expect("a nonce in the CSP")
        .to_owned()
}

pub async fn answer(r: reqwest::Response) -> Answer {
    Answer {
        status: r.status(),
        location: r
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: r.text().await.unwrap_or_default(),
    }
}
