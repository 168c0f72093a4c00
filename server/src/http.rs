//! The web server's router and listener, with the operators' endpoints: `/healthz`,
//! `/readyz` and `/metrics`.
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use app::Hall;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use tower_sessions::session::Id;
use tower_sessions::session_store::SessionStore;

use crate::handset::{self, Handset};
use crate::metrics;
use crate::sessions::SessionStores;

/// How long a readiness check waits for each store.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone)]
struct Probe {
    hall: Hall,
    sessions: SessionStores,
}

pub fn router(
    hall: Hall,
    handset: Option<Handset>,
    sessions: SessionStores,
    secure_cookies: bool,
) -> Router {
    let phone = Router::new()
        .route("/phone", get(handset::page).post(handset::send))
        .route("/style/phone.css", get(handset::stylesheet))
        .with_state(handset);
    // Installs the process's recorder if `main` has not (the in-process test harness).
    app::telemetry::metrics();
    let probes = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(Probe {
            hall: hall.clone(),
            sessions: sessions.clone(),
        });
    Router::new()
        .route("/metrics", get(metrics::scrape))
        .with_state(hall.clone())
        .merge(probes)
        .merge(phone)
        .merge(crate::web::router(hall, sessions, secure_cookies))
        // Outermost and after every route: it sees each request's matched route.
        .layer(axum::middleware::from_fn(every_request))
}

/// Every request's metrics and every response's security headers, in one middleware: axum
/// clones a route's layers beneath each middleware on every request (see `web::hall_rules`).
async fn every_request(req: Request, next: Next) -> Response {
    let timer = metrics::RequestTimer::start(&req);
    let res = crate::web::security_headers(req, next).await;
    timer.finish(&res);
    res
}

/// The process is up.
async fn healthz() -> &'static str {
    "ok"
}

/// The process can reach its database and, when sessions live in Redis, Redis.
async fn readyz(State(p): State<Probe>) -> (StatusCode, &'static str) {
    let db = tokio::time::timeout(READY_TIMEOUT, p.hall.ping()).await;
    if !matches!(db, Ok(Ok(()))) {
        return (StatusCode::SERVICE_UNAVAILABLE, "database unreachable");
    }
    if let SessionStores::Redis(_) = &p.sessions {
        // One read of a random key: a round trip to the same Redis as the hall's stores.
        let redis = tokio::time::timeout(READY_TIMEOUT, p.sessions.load(&Id::default())).await;
        if !matches!(redis, Ok(Ok(_))) {
            return (StatusCode::SERVICE_UNAVAILABLE, "redis unreachable");
        }
    }
    (StatusCode::OK, "ready")
}

pub async fn serve(
    hall: Hall,
    handset: Option<Handset>,
    sessions: SessionStores,
    secure_cookies: bool,
    addr: SocketAddr,
) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!("web hall listening on http://{addr}");
    let app = router(hall, handset, sessions, secure_cookies);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
