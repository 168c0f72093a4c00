//! The audit log's CSV export (`/staff/audit.csv`): a plain download, outside the Leptos
//! pages, with the same filters as `/staff/audit`. Supervisors only; the export is itself
//! audited by the service layer.
use app::error::Error;
use app::ui::i18n::Lang;
use app::ui::staff::api::AuditQuery;
use app::ui::staff::session::{StaffSession, StaffWeb};
use app::Hall;
use axum::extract::{ConnectInfo, Query};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;

pub async fn audit_csv(
    Extension(hall): Extension<Hall>,
    Extension(StaffSession(session)): Extension<StaffSession>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<AuditQuery>,
) -> Response {
    let lang = Lang::from_cookie_header(headers.get(header::COOKIE).and_then(|v| v.to_str().ok()));
    let Ok(web) = StaffWeb::load(hall, session, lang).await else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let Some(me) = web.member.clone() else {
        return Redirect::to("/staff/login").into_response();
    };
    let filter = match q.to_filter() {
        Ok(f) => f,
        Err(e) => return (StatusCode::BAD_REQUEST, message(lang, &e)).into_response(),
    };
    match web
        .hall
        .audit_csv(&me, filter, &peer.ip().to_string())
        .await
    {
        Ok(csv) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"openhall-audit.csv\"",
                ),
            ],
            csv,
        )
            .into_response(),
        Err(e @ Error::Forbidden) => (StatusCode::FORBIDDEN, message(lang, &e)).into_response(),
        Err(e) if e.is_user_error() => (StatusCode::BAD_REQUEST, message(lang, &e)).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn message(lang: Lang, e: &Error) -> String {
    match lang {
        Lang::Zh => e.zh(),
        Lang::En => e.to_string(),
    }
}
