use std::net::SocketAddr;

use anyhow::{Context, Result};
use app::Hall;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;

use crate::handset::{self, Handset};
use crate::sessions::SessionStores;

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
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(hall.clone())
        .merge(phone)
        .merge(crate::web::router(hall, sessions, secure_cookies))
        .layer(axum::middleware::from_fn(crate::web::security_headers))
}

/// The process is up.
async fn healthz() -> &'static str {
    "ok"
}

/// The process can reach its database.
async fn readyz(State(hall): State<Hall>) -> (StatusCode, &'static str) {
    match sqlx_ping(&hall).await {
        true => (StatusCode::OK, "ready"),
        false => (StatusCode::SERVICE_UNAVAILABLE, "database unreachable"),
    }
}

async fn sqlx_ping(hall: &Hall) -> bool {
    hall.ping().await.is_ok()
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
