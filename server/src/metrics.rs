//! The web server's Prometheus metrics: every request counted and timed by route template
//! (never the raw path, which may carry numbers and periods), and `/metrics` itself.
//!
//! - `openhall_http_requests_total{method,route,status}`
//! - `openhall_http_request_duration_seconds{method,route}` (histogram)
//! - `openhall_outbox_depth` (read from the database at each scrape), `openhall_up`
//! - whatever else the process records through the `metrics` macros
use std::time::Instant;

use app::Hall;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method};
use axum::response::{IntoResponse, Response};

/// The route label of a request that matched no route.
pub const UNMATCHED: &str = "other";

/// Counts and times one request, from the request as routed (its matched route's template is
/// known) to its response.
pub struct RequestTimer {
    method: &'static str,
    route: String,
    started: Instant,
}

impl RequestTimer {
    pub fn start(req: &Request) -> Self {
        RequestTimer {
            method: method_label(req.method()),
            route: route_label(
                req.extensions()
                    .get::<MatchedPath>()
                    .map(MatchedPath::as_str),
                req.uri().path(),
            ),
            started: Instant::now(),
        }
    }

    pub fn finish(self, res: &Response) {
        let elapsed = self.started.elapsed().as_secs_f64();
        metrics::counter!(
            "openhall_http_requests_total",
            "method" => self.method,
            "route" => self.route.clone(),
            "status" => res.status().as_str().to_owned(),
        )
        .increment(1);
        metrics::histogram!(
            "openhall_http_request_duration_seconds",
            "method" => self.method,
            "route" => self.route,
        )
        .record(elapsed);
    }
}

/// The route's template (`/products/{code}`); the static bundle as `/pkg`; anything else that
/// matched no route as [`UNMATCHED`], so that labels stay few and carry no personal data.
pub fn route_label(matched: Option<&str>, path: &str) -> String {
    match matched {
        Some(m) if m.starts_with("/pkg/") => "/pkg".into(),
        Some(m) => m.to_owned(),
        None if path == "/pkg" || path.starts_with("/pkg/") => "/pkg".into(),
        None => UNMATCHED.into(),
    }
}

/// The standard methods by name, anything else as `other`.
pub fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// `GET /metrics`: the process's metrics in the Prometheus text format.
pub async fn scrape(State(hall): State<Hall>) -> Response {
    (
        [(header::CONTENT_TYPE, app::telemetry::METRICS_CONTENT_TYPE)],
        app::telemetry::render_metrics(&hall).await,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_templates_never_raw_paths() {
        assert_eq!(
            route_label(Some("/products/{code}"), "/products/EDU10"),
            "/products/{code}"
        );
        assert_eq!(route_label(None, "/pkg/openhall.wasm"), "/pkg");
        assert_eq!(route_label(None, "/13800138000"), UNMATCHED);
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(
            method_label(&Method::from_bytes(b"PROPFIND").unwrap()),
            "other"
        );
    }
}
