//! The gateway's HTTP side for operators, at `OPENHALL_GATEWAY_HTTP_ADDR` (default
//! `127.0.0.1:3001`, `off` for none):
//!
//! - `/healthz`: 200 `ok` while the process runs;
//! - `/readyz`: 200 `ready` when the SMPP link is bound and the database answers, else 503
//!   with the reason;
//! - `/metrics`: the process's Prometheus recorder (what the runtime records with the
//!   `metrics` macros, e.g. `openhall_mo_reply_seconds`) plus, read at each scrape, the
//!   runtime's and the link's counters ([`GatewayStats`]) and the outbox depth.
//!
//! Failing to listen is not fatal: the gateway's job is the SMPP link, and several gateways
//! (tests, or two instances on one machine without their own addresses) may start at once.
use std::net::SocketAddr;
use std::time::Duration;

use app::Hall;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::task::JoinHandle;

use crate::runtime::{GatewayHandle, GatewayStats};

/// How long the readiness check waits for the database.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone)]
struct Observed {
    hall: Hall,
    gateway: GatewayHandle,
}

/// The operators' routes over a running gateway.
pub fn router(hall: Hall, gateway: GatewayHandle) -> Router {
    app::telemetry::metrics();
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(scrape))
        .with_state(Observed { hall, gateway })
}

/// The listener serving [`router`].
#[derive(Debug)]
pub struct Listening {
    pub local_addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Listening {
    pub fn stop(self) {
        self.task.abort();
    }
}

/// Listens at `addr` and serves [`router`] in the background. When the address cannot be had
/// it logs a warning and returns `None`: the gateway runs on without these endpoints.
pub async fn serve(addr: SocketAddr, hall: Hall, gateway: GatewayHandle) -> Option<Listening> {
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(%addr, error = %e,
                "cannot listen for health checks and metrics (OPENHALL_GATEWAY_HTTP_ADDR); running without them");
            return None;
        }
    };
    let local_addr = listener.local_addr().unwrap_or(addr);
    tracing::info!(%local_addr, "gateway health and metrics at http://{local_addr}/metrics");
    let app = router(hall, gateway);
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "the gateway's health and metrics listener stopped");
        }
    });
    Some(Listening { local_addr, task })
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(o): State<Observed>) -> (StatusCode, &'static str) {
    if !o.gateway.is_bound() {
        return (StatusCode::SERVICE_UNAVAILABLE, "SMPP link not bound");
    }
    match tokio::time::timeout(READY_TIMEOUT, o.hall.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "database unreachable"),
    }
}

async fn scrape(State(o): State<Observed>) -> Response {
    record_stats(&o.gateway.stats());
    (
        [(header::CONTENT_TYPE, app::telemetry::METRICS_CONTENT_TYPE)],
        app::telemetry::render_metrics(&o.hall).await,
    )
        .into_response()
}

/// Copies a snapshot of the gateway's counters into the process's recorder.
pub fn record_stats(s: &GatewayStats) {
    use metrics::{counter, gauge};
    gauge!("openhall_up").set(1.0);
    gauge!("openhall_smpp_link_up").set(if s.bound { 1.0 } else { 0.0 });
    counter!("openhall_mo_stored_total").absolute(s.mo_stored);
    counter!("openhall_mo_redelivered_total").absolute(s.mo_redelivered);
    counter!("openhall_mo_refused_total").absolute(s.mo_refused);
    counter!("openhall_mo_handled_total").absolute(s.mo_handled);
    counter!("openhall_mo_not_for_us_total").absolute(s.mo_not_for_us);
    counter!("openhall_replies_queued_total").absolute(s.replies_queued);
    counter!("openhall_handler_failures_total").absolute(s.handler_failures);
    counter!("openhall_receipts_total", "matched" => "true").absolute(s.receipts_matched);
    counter!("openhall_receipts_total", "matched" => "false").absolute(s.receipts_unmatched);
    counter!("openhall_mt_sent_total").absolute(s.mt_sent);
    counter!("openhall_mt_retry_total").absolute(s.mt_retry_later);
    counter!("openhall_mt_failed_total").absolute(s.mt_failed);
    let l = &s.link;
    counter!("openhall_smpp_binds_total").absolute(l.binds);
    counter!("openhall_smpp_segments_submitted_total").absolute(l.segments_submitted);
    counter!("openhall_smpp_throttled_total").absolute(l.throttled);
    counter!("openhall_smpp_mo_received_total").absolute(l.mo_received);
    counter!("openhall_smpp_receipts_received_total").absolute(l.receipts_received);
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use app::testing::TestHall;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::runtime::{CommandHandler, Gateway};
    use crate::simulator::{Smsc, SmscConfig};
    use crate::smpp::EsmeConfig;

    const WAIT: Duration = Duration::from_secs(10);

    struct Echo;

    #[async_trait::async_trait]
    impl CommandHandler for Echo {
        async fn handle(&self, _: &Hall, _: &str, text: &str) -> Option<String> {
            Some(format!("收到{text}"))
        }
    }

    /// A bare HTTP/1.1 GET: (status, body).
    async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut raw = String::new();
        tokio::time::timeout(WAIT, s.read_to_string(&mut raw))
            .await
            .expect("an answer in time")
            .unwrap();
        let status = raw[9..12].parse().unwrap();
        let body = raw.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
        (status, body)
    }

    async fn eventually(mut check: impl AsyncFnMut() -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + WAIT;
        while tokio::time::Instant::now() < deadline {
            if check().await {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    #[tokio::test]
    async fn health_readiness_and_metrics_follow_the_link() {
        let t = TestHall::empty().await;
        t.subscriber("13800138000", 5000).await;
        let smsc = Smsc::start(SmscConfig::new("openhall", "secret"))
            .await
            .unwrap();
        let mut esme = EsmeConfig::new("127.0.0.1", smsc.local_addr().port(), "openhall", "secret");
        esme.backoff_max = Duration::from_millis(200);
        let gw = Gateway::start(t.hall.clone(), esme, Arc::new(Echo));
        let web = serve(([127, 0, 0, 1], 0).into(), t.hall.clone(), gw.clone())
            .await
            .expect("listens");
        let at = web.local_addr;

        assert_eq!(get(at, "/healthz").await, (200, "ok".to_owned()));
        assert!(gw.esme().wait_bound(WAIT).await, "the gateway binds");
        assert_eq!(get(at, "/readyz").await, (200, "ready".to_owned()));

        smsc.send_mo("13800138000", "10086", "CXYE").await.unwrap();
        assert!(smsc.next_mt(WAIT).await.is_some(), "the reply goes out");
        assert!(
            eventually(async || {
                let (status, text) = get(at, "/metrics").await;
                status == 200
                    && text.contains("openhall_smpp_link_up 1")
                    && text.contains("openhall_mo_stored_total 1")
                    && text.contains("openhall_mo_handled_total 1")
                    && text.contains("openhall_mt_sent_total 1")
                    && text.contains("openhall_outbox_depth 0")
                    && text.contains("openhall_receipts_total{matched=\"true\"}")
                    && text.contains("# TYPE openhall_smpp_binds_total counter")
            })
            .await,
            "{}",
            get(at, "/metrics").await.1
        );

        // The link goes: not ready, still healthy.
        smsc.shutdown();
        assert!(
            eventually(async || get(at, "/readyz").await
                == (503, "SMPP link not bound".to_owned()))
            .await
        );
        assert!(get(at, "/metrics")
            .await
            .1
            .contains("openhall_smpp_link_up 0"));
        assert_eq!(get(at, "/healthz").await.0, 200);
        gw.shutdown().await;
        web.stop();
    }

    #[tokio::test]
    async fn an_address_in_use_is_not_fatal() {
        let t = TestHall::empty().await;
        let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let esme = EsmeConfig::new("127.0.0.1", 9, "openhall", "secret");
        let gw = Gateway::start(t.hall.clone(), esme, Arc::new(Echo));
        assert!(
            serve(taken.local_addr().unwrap(), t.hall.clone(), gw.clone())
                .await
                .is_none()
        );
        gw.shutdown().await;
    }
}
