//! The operators' endpoints of the web server over real HTTP: `/healthz`, `/readyz` and
//! `/metrics`, whose request counters carry route templates, never raw paths.
mod support;

use reqwest::StatusCode;
use support::Site;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readiness_answer() {
    let site = Site::start().await;
    let b = site.browser();
    let a = b.get("/healthz").await;
    assert_eq!((a.status, a.body.as_str()), (StatusCode::OK, "ok"));
    let a = b.get("/readyz").await;
    assert_eq!((a.status, a.body.as_str()), (StatusCode::OK, "ready"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_by_route_template() {
    let site = Site::start().await;
    let b = site.browser();
    // A templated route (the product code is a path parameter), a fixed one, and no route.
    b.get("/products/EDU10").await;
    b.get("/login").await;
    b.get("/no-such-page/13800138000").await;

    let r = b
        .client
        .get(format!("{}/metrics", site.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let content_type = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = r.text().await.unwrap();

    let count = |route: &str, status: &str| {
        text.lines()
            .filter(|l| l.starts_with("openhall_http_requests_total{"))
            .filter(|l| l.contains(&format!("route=\"{route}\"")))
            .filter(|l| l.contains(&format!("status=\"{status}\"")))
            .filter(|l| l.contains("method=\"GET\""))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum::<f64>()
    };
    // Signed out, the product page redirects to /login; still counted under its template.
    assert!(count("/products/{code}", "303") >= 1.0, "{text}");
    assert!(count("/login", "200") >= 1.0, "{text}");
    assert!(count("other", "404") >= 1.0, "{text}");
    assert!(
        !text.contains("EDU10"),
        "raw paths never become labels:\n{text}"
    );
    assert!(
        !text.contains("13800138000"),
        "no numbers in labels:\n{text}"
    );

    assert!(
        text.contains("# TYPE openhall_http_request_duration_seconds histogram"),
        "{text}"
    );
    assert!(
        text.contains(
            "openhall_http_request_duration_seconds_bucket{method=\"GET\",route=\"/login\",le=\"10\"}"
        ),
        "{text}"
    );
    assert!(text.contains("openhall_up 1"), "{text}");
    assert!(text.contains("openhall_outbox_depth 0"), "{text}");
}
