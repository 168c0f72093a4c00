//! Logs and metrics, set up the same way by `server` and `sms-gateway`.
//!
//! - Logs: `OPENHALL_LOG_FORMAT` (`text`, the default, or `json`: one JSON object a line),
//!   filtered by `RUST_LOG` (default `info,sqlx=warn`). Log lines name subscribers only masked
//!   (`138****8000`) and never carry passwords, codes or message bodies.
//! - Metrics: one Prometheus recorder per process, installed by [`metrics`] (idempotent), that
//!   the `metrics::counter!` / `histogram!` / `gauge!` macros anywhere in the process record
//!   into; `/metrics` renders it. Histograms whose names end in `_seconds` have buckets from
//!   1 ms to 10 s, so they render as Prometheus histograms rather than summaries.
use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogFormat};

/// The log filter when `RUST_LOG` is unset.
pub const DEFAULT_LOG_FILTER: &str = "info,sqlx=warn";

/// The content type of `/metrics` (Prometheus text exposition format 0.0.4).
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds of the buckets of every `*_seconds` histogram.
pub const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Installs the process's log subscriber in the format the configuration (environment and
/// `OPENHALL_CONFIG` file) asks for. When the configuration is invalid it logs as text: the
/// binary reports the error itself when it reads its configuration. Does nothing when a
/// subscriber is already installed.
pub fn init_logging() {
    let format = Config::from_env().map(|c| c.log_format).unwrap_or_default();
    init_logging_as(format);
}

/// Installs the log subscriber in `format`; false when one was already installed.
pub fn init_logging_as(format: LogFormat) -> bool {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_FILTER));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Text => builder.try_init().is_ok(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init()
            .is_ok(),
    }
}

static METRICS: OnceLock<PrometheusHandle> = OnceLock::new();

/// The body of `/metrics` for either binary: what is shared by both (`openhall_up`, the outbox
/// depth read now) recorded, then everything rendered.
pub async fn render_metrics(hall: &crate::Hall) -> String {
    ::metrics::gauge!("openhall_up").set(1.0);
    match hall.outbox_depth().await {
        Ok(depth) => ::metrics::gauge!("openhall_outbox_depth").set(depth as f64),
        Err(e) => {
            tracing::warn!(error = %e.operator_detail(), "metrics: cannot read the outbox depth")
        }
    }
    metrics().render()
}

/// The process's Prometheus recorder, installed as the global `metrics` recorder on first use;
/// call it early in `main` so that every metric lands in it. Its `render()` is the body of
/// `/metrics`. Should another global recorder already be installed (never in the binaries),
/// the handle renders only what is recorded through it directly.
pub fn metrics() -> &'static PrometheusHandle {
    METRICS.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
            .expect("the bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics will miss its metrics");
        }
        // Histogram samples wait in the recorder until a scrape (or this upkeep) folds them
        // into the buckets: without a scraper they would pile up.
        let upkeep = handle.clone();
        let _ = std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || loop {
                std::thread::sleep(Duration::from_secs(5));
                upkeep.run_upkeep();
            });
        handle
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_histograms_render_with_buckets() {
        let handle = metrics();
        assert!(std::ptr::eq(handle, metrics()), "installed once");
        ::metrics::histogram!("openhall_test_latency_seconds", "route" => "/x").record(0.003);
        ::metrics::counter!("openhall_test_events_total").increment(2);
        let text = handle.render();
        assert!(
            text.contains("# TYPE openhall_test_latency_seconds histogram"),
            "{text}"
        );
        assert!(
            text.contains("openhall_test_latency_seconds_bucket{route=\"/x\",le=\"0.005\"} 1"),
            "{text}"
        );
        assert!(text.contains("openhall_test_events_total 2"), "{text}");
    }
}
