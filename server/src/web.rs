//! The web hall inside the axum server: Leptos routes and server functions, sessions, the
//! CSRF check, the signed-out redirect and the security headers.
use std::sync::Arc;

use app::service::audit::{action, AuditRecord, Outcome};
use app::ui::i18n::Lang;
use app::ui::session::{Access, RequestChecks, Web};
use app::ui::staff::session::{StaffSession, StaffWeb};
use app::ui::staff::STAFF_PAGES;
use app::ui::{shell, App, CspNonce, SUBSCRIBER_PAGES};
use app::Hall;
use axum::body::{to_bytes, Body};
use axum::extract::{Path, Query, Request};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Extension, Router};
use leptos::config::LeptosOptions;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tower_sessions::cookie::time::Duration as CookieDuration;
use tower_sessions::{Expiry, Session, SessionManagerLayer};

use crate::home_memo::{HomeMemo, Step};
use crate::sessions::SessionStores;

/// Where the built site (`pkg/` with the wasm bundle and the stylesheet) is: cargo-leptos's
/// `LEPTOS_SITE_ROOT` when it runs the server, else `OPENHALL_SITE_ROOT`, else `target/site`.
pub fn leptos_options() -> LeptosOptions {
    let site_root = std::env::var("LEPTOS_SITE_ROOT")
        .or_else(|_| std::env::var("OPENHALL_SITE_ROOT"))
        .unwrap_or_else(|_| "target/site".into());
    LeptosOptions::builder()
        .output_name(Arc::<str>::from("openhall"))
        .site_root(Arc::<str>::from(site_root))
        .site_pkg_dir(Arc::<str>::from("pkg"))
        .build()
}

/// Form bodies larger than this are refused before the CSRF check reads them.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// The Leptos routes' state. leptos_axum clones the state into every request's context, and
/// the options are five reference-counted strings and more: behind one `Arc`, a page view
/// clones one pointer instead.
#[derive(Clone)]
struct SiteState(Arc<LeptosOptions>);

impl axum::extract::FromRef<SiteState> for LeptosOptions {
    fn from_ref(state: &SiteState) -> Self {
        (*state.0).clone()
    }
}

pub fn router(hall: Hall, stores: SessionStores, secure_cookies: bool) -> Router {
    let site = SiteState(Arc::new(leptos_options()));
    let routes = generate_route_list(App);
    let leptos = Router::new()
        .leptos_routes(&site, routes, {
            let options = site.0.clone();
            move || shell(&options)
        })
        .fallback(leptos_axum::file_and_error_handler::<SiteState, _>(
            |options| shell(&options),
        ))
        .with_state(site);
    // Two cookies, two sessions: the subscriber hall's and the staff console's, so one browser
    // can hold both and neither reads the other's.
    let cookie = |name: &'static str| {
        SessionManagerLayer::new(stores.clone())
            .with_name(name)
            .with_http_only(true)
            .with_same_site(tower_sessions::cookie::SameSite::Lax)
            .with_secure(secure_cookies)
            .with_expiry(Expiry::OnInactivity(CookieDuration::minutes(15)))
    };
    Router::new()
        .route("/lang/{lang}", get(switch_language))
        .route("/staff/audit.csv", get(crate::staff::audit_csv))
        .merge(leptos)
        .layer(middleware::from_fn(hall_rules))
        .layer(cookie("openhall_session"))
        .layer(middleware::from_fn(stash_staff_session))
        .layer(cookie("openhall_staff"))
        .layer(Extension(hall))
        .layer(Extension(HomeMemo::default()))
}

/// The outer session layer's `Session` is the staff console's: renamed here, before the
/// subscriber hall's layer adds its own.
async fn stash_staff_session(mut req: Request, next: Next) -> Response {
    if let Some(s) = req.extensions_mut().remove::<Session>() {
        req.extensions_mut().insert(StaffSession(s));
    }
    next.run(req).await
}

/// The hall's rules for each request, in the order they apply: one [`RequestChecks`] for the
/// request, shared by the rules and the page's server functions; the CSRF check; the page
/// guard; the audit of customer care acting; the kept home page; the status of a server
/// function's bad arguments.
/// One middleware, not five: axum clones a route's whole stack of layers under a middleware
/// on every request, so each layer cost every layer beneath it again. Each rule takes and
/// gives back the request it awaits with: a borrowed request would not be `Send`.
async fn hall_rules(mut req: Request, next: Next) -> Response {
    req.extensions_mut().insert(RequestChecks::default());
    let req = match check_csrf(req).await {
        Ok(req) => req,
        Err(refused) => return refused,
    };
    let req = match guard_pages(req).await {
        Ok(req) => req,
        Err(answer) => return answer,
    };
    let api = req.uri().path().starts_with("/api/");
    let (req, acting) = match audit_acting(req).await {
        Ok(went_on) => went_on,
        Err(refused) => return refused,
    };
    let (req, pending) = match home_page(req).await {
        Step::Served(page) => return page,
        Step::Render(req, pending) => (req, pending),
    };
    let mut res = next.run(req).await;
    if let Some(pending) = pending {
        res = pending.keep(res).await;
    }
    if api {
        res = bad_arguments(res).await;
    }
    if let Some(action) = acting {
        action.record(failed(&res)).await;
    }
    res
}

/// A view of the home page: the page kept from the last view when nothing on it has changed
/// (see [`HomeMemo`]).
async fn home_page(req: Request) -> Step {
    if req.method() != Method::GET || req.uri().path() != "/" {
        return Step::Render(req, None);
    }
    let Some(memo) = req.extensions().get::<HomeMemo>().cloned() else {
        return Step::Render(req, None);
    };
    let web = loader(&req).await;
    memo.view(req, web).await
}

/// Headers for every response of the web server.
pub async fn security_headers(mut req: Request, next: Next) -> Response {
    let nonce = app::ui::session::new_token();
    req.extensions_mut().insert(CspNonce(nonce.clone()));
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    let csp = format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
         object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Same-origin: no-JS forms are sent back to the page they came from by the Referer.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    let is_html = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if is_html {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

fn lang_of(req: &Request) -> Lang {
    Lang::from_cookie_header(
        req.headers()
            .get(header::COOKIE)
            .and_then(|v| v.to_str().ok()),
    )
}

/// The session's web state, with the session rules applied. Takes what it needs from the
/// request before awaiting (a request is not `Sync`).
fn loader(req: &Request) -> impl std::future::Future<Output = Option<Web>> + Send + 'static {
    let parts = (
        req.extensions().get::<Hall>().cloned(),
        req.extensions().get::<Session>().cloned(),
        lang_of(req),
        req.extensions()
            .get::<RequestChecks>()
            .cloned()
            .unwrap_or_default(),
    );
    async move {
        let (Some(hall), Some(session), lang, checks) = parts else {
            return None;
        };
        Web::load(hall, session, lang, &checks).await.ok()
    }
}

/// The staff session with its rules applied (see [`loader`]).
fn staff_loader(
    req: &Request,
) -> impl std::future::Future<Output = Option<StaffWeb>> + Send + 'static {
    let parts = (
        req.extensions().get::<Hall>().cloned(),
        req.extensions().get::<StaffSession>().cloned(),
        lang_of(req),
    );
    async move {
        let (Some(hall), Some(StaffSession(session)), lang) = parts else {
            return None;
        };
        StaffWeb::load(hall, session, lang).await.ok()
    }
}

fn client_ip(req: &Request) -> String {
    req.extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn is_subscriber_page(path: &str) -> bool {
    SUBSCRIBER_PAGES.contains(&path)
        || ["/topup/", "/products/", "/invoices/", "/pay/"]
            .iter()
            .any(|p| path.starts_with(p))
}

/// A signed-out request for a subscriber page goes to `/login`; a subscriber who still has
/// the initial password goes to `/password` first (`Err`: where the request is sent instead).
async fn guard_pages(req: Request) -> Result<Request, Response> {
    let path = req.uri().path().to_owned();
    if req.method() == Method::GET && (path == "/staff" || path.starts_with("/staff/")) {
        if path == "/staff/login" || path == "/staff/audit.csv" {
            return Ok(req);
        }
        let Some(staff) = staff_loader(&req).await else {
            return Err(StatusCode::SERVICE_UNAVAILABLE.into_response());
        };
        let Some(role) = staff.role() else {
            return Err(Redirect::to("/staff/login").into_response());
        };
        let allowed = STAFF_PAGES
            .iter()
            .find(|(p, _)| *p == path)
            .is_none_or(|(_, roles)| roles.contains(&role.as_str()));
        if !allowed {
            let lang = lang_of(&req);
            return Err((
                StatusCode::FORBIDDEN,
                lang.pick(
                    "您的角色无权访问此页面。",
                    "Your role cannot open this page.",
                ),
            )
                .into_response());
        }
        return Ok(req);
    }
    if req.method() == Method::GET && is_subscriber_page(&path) {
        let Some(web) = loader(&req).await else {
            return Err(StatusCode::SERVICE_UNAVAILABLE.into_response());
        };
        match web.access() {
            Access::SignedOut => return Err(Redirect::to("/login").into_response()),
            Access::MustChangePassword(_) if path != "/password" => {
                return Err(Redirect::to("/password").into_response())
            }
            Access::SignedIn(_) if path == "/password" => {
                return Err(Redirect::to("/").into_response())
            }
            _ => {}
        }
    }
    Ok(req)
}

/// Every state-changing request (a POST to a server function) carries the session's CSRF
/// token in its form body; anything else is refused before it runs (`Err`: the refusal).
async fn check_csrf(req: Request) -> Result<Request, Response> {
    if req.method() != Method::POST || !req.uri().path().starts_with("/api/") {
        return Ok(req);
    }
    let lang = lang_of(&req);
    let expected = if req.uri().path().starts_with("/api/staff/") {
        staff_loader(&req).await.map(|w| w.state.csrf)
    } else {
        loader(&req).await.map(|w| w.state.csrf)
    };
    let (parts, body) = req.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_FORM_BYTES).await else {
        return Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            lang.pick("表单过大。", "Form too large."),
        )
            .into_response());
    };
    let given = form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.into_owned());
    let ok = matches!((&expected, &given), (Some(e), Some(g)) if !e.is_empty() && constant_time_eq(e.as_bytes(), g.as_bytes()));
    if !ok {
        tracing::warn!(path = %parts.uri.path(), "request refused: missing or wrong CSRF token");
        return Err((
            StatusCode::FORBIDDEN,
            lang.pick(
                "页面已过期,请刷新页面后重试。",
                "This page has expired; please reload it and try again.",
            ),
        )
            .into_response());
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// While customer care acts as a subscriber, every page view and every action in the
/// subscriber's hall is audited with both identities, the impersonation (and its reason) and
/// the client address. A page view is recorded before it is served (`Err`: it could not be,
/// and is refused); an action after it ran, with its outcome ([`ActingAction::record`]).
async fn audit_acting(req: Request) -> Result<(Request, Option<ActingAction>), Response> {
    let path = req.uri().path().to_owned();
    let is_page = req.method() == Method::GET && is_subscriber_page(&path);
    let is_action = req.method() == Method::POST
        && path.starts_with("/api/")
        && !path.starts_with("/api/staff/");
    if !is_page && !is_action {
        return Ok((req, None));
    }
    let Some(web) = loader(&req).await else {
        return Ok((req, None));
    };
    let Some(imp) = web.acting.clone() else {
        return Ok((req, None));
    };
    let addr = client_ip(&req);
    let hall = web.hall.clone();
    let Ok(Some(staff)) = hall.staff_by_id(imp.staff_id).await else {
        return Ok((req, None));
    };
    if is_page {
        // Fail closed: no page view that is not on record.
        if let Err(e) = hall
            .audit_read(
                &staff,
                Some(&imp),
                &imp.msisdn,
                &format!("page {path}; reason: {}", imp.reason),
                &addr,
            )
            .await
        {
            tracing::error!(error = %e, "could not audit a page view while acting");
            return Err(StatusCode::SERVICE_UNAVAILABLE.into_response());
        }
        return Ok((req, None));
    }
    let endpoint = path.trim_start_matches("/api/").to_owned();
    Ok((
        req,
        Some(ActingAction {
            hall,
            staff,
            imp,
            addr,
            endpoint,
        }),
    ))
}

/// An action customer care takes as the subscriber, to be audited once it has run.
struct ActingAction {
    hall: Hall,
    staff: app::service::staff::StaffMember,
    imp: app::service::impersonation::Impersonation,
    addr: String,
    endpoint: String,
}

/// Whether an action's answer says it failed: a no-JS form answers with a redirect that
/// carries `__err` on failure; a fetch gets the error's status.
fn failed(res: &Response) -> bool {
    !(res.status().is_success() || res.status().is_redirection())
        || res
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|l| l.contains("__err"))
}

impl ActingAction {
    async fn record(self, failed: bool) {
        let rec = AuditRecord::new(
            action::CUSTOMER_ACTION,
            if failed { Outcome::Failed } else { Outcome::Ok },
            &self.addr,
        )
        .staff(&self.staff)
        .msisdn(&self.imp.msisdn)
        .impersonation(self.imp.id)
        .detail(format!("{}; reason: {}", self.endpoint, self.imp.reason));
        if let Err(e) = self.hall.audit(&rec).await {
            tracing::error!(error = %e, "could not audit an action while acting");
        }
    }
}

/// A server function called with missing or malformed fields is the caller's mistake: 400,
/// not the 500 the framework answers (the body, which the browser's client decodes, stays).
async fn bad_arguments(res: Response) -> Response {
    if res.status() != StatusCode::INTERNAL_SERVER_ERROR {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_FORM_BYTES).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    if [&b"Args|"[..], b"MissingArg|", b"Deserialization|"]
        .iter()
        .any(|p| bytes.starts_with(p))
    {
        parts.status = StatusCode::BAD_REQUEST;
    }
    Response::from_parts(parts, Body::from(bytes))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(serde::Deserialize)]
struct Back {
    back: Option<String>,
}

/// `/lang/en?back=/bills`: remembers the language and returns to the page.
async fn switch_language(Path(lang): Path<String>, Query(q): Query<Back>) -> Response {
    let lang = Lang::from_tag(&lang);
    let back = q
        .back
        .filter(|b| b.starts_with('/') && !b.starts_with("//") && !b.contains('\\'))
        .unwrap_or_else(|| "/".into());
    let cookie = format!(
        "lang={}; Path=/; Max-Age=31536000; SameSite=Lax",
        if lang == Lang::En { "en" } else { "zh" }
    );
    let mut res = Redirect::to(&back).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}
