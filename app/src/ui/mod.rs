//! The web hall (SPEC §3): Leptos pages rendered on the server and hydrated in the browser.
//! Every page works without JavaScript: forms post to server functions with fixed endpoints
//! and are answered with a redirect. No business rule lives here: server functions call the
//! service layer with the number taken from the session, never from the request.
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{path, SsrMode};

pub mod api;
pub mod codec;
pub mod gate;
pub mod i18n;
pub mod layout;
pub mod pages;
#[cfg(feature = "ssr")]
pub mod server;
#[cfg(feature = "ssr")]
pub mod session;
pub mod staff;
pub mod widgets;

use codec::page_resource;
use i18n::Lang;
use pages::*;
use widgets::{Refresh, SessionResource};

/// The subscriber pages a signed-out request is sent to `/login` from (the server checks
/// this list before rendering).
pub const SUBSCRIBER_PAGES: &[&str] = &[
    "/",
    "/bills",
    "/details",
    "/topup",
    "/products",
    "/points",
    "/account",
    "/invoices",
    "/password",
];

/// The HTML document around the app.
pub fn shell(options: &LeptosOptions) -> impl IntoView + use<> {
    let lang = i18n::detect();
    #[cfg(feature = "ssr")]
    if let Some(nonce) = crate::ui::server::request_extension::<CspNonce>() {
        provide_context(leptos::nonce::Nonce::from_value(nonce.0));
    }
    view! {
        <!DOCTYPE html>
        <html lang=lang.tag()>
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <HydrationScripts options=options.clone() />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// The per-request Content-Security-Policy nonce, put in the request's extensions by the
/// server's header middleware.
#[derive(Clone, Debug)]
pub struct CspNonce(pub String);

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let lang: Lang = i18n::detect();
    provide_context(lang);
    let refresh = RwSignal::new(0u32);
    provide_context(Refresh(refresh));
    view! {
        <Stylesheet id="leptos" href="/pkg/openhall.css" />
        <Router>
            <WithSession>
            <Routes fallback=|| view! { <NotFound /> }>
                <Route path=path!("/login") view=LoginPage ssr=SsrMode::Async />
                <Route path=path!("/password") view=PasswordPage ssr=SsrMode::Async />
                <Route path=path!("/") view=HomePage ssr=SsrMode::Async />
                <Route path=path!("/bills") view=BillsPage ssr=SsrMode::Async />
                <Route path=path!("/details") view=DetailsPage ssr=SsrMode::Async />
                <Route path=path!("/topup") view=TopUpPage ssr=SsrMode::Async />
                <Route path=path!("/pay/sim/:order") view=PaymentPage ssr=SsrMode::Async />
                <Route path=path!("/topup/receipt/:id") view=ReceiptPage ssr=SsrMode::Async />
                <Route path=path!("/products") view=ProductsPage ssr=SsrMode::Async />
                <Route path=path!("/products/:code") view=ProductPage ssr=SsrMode::Async />
                <Route path=path!("/points") view=PointsPage ssr=SsrMode::Async />
                <Route path=path!("/account") view=AccountPage ssr=SsrMode::Async />
                <Route path=path!("/invoices") view=InvoicesPage ssr=SsrMode::Async />
                <Route path=path!("/invoices/:period") view=InvoicePage ssr=SsrMode::Async />
                <Route path=path!("/staff/login") view=staff::StaffLoginPage ssr=SsrMode::Async />
                <Route path=path!("/staff") view=staff::StaffHomePage ssr=SsrMode::Async />
                <Route path=path!("/staff/audit") view=staff::StaffAuditPage ssr=SsrMode::Async />
                <Route path=path!("/staff/admin") view=staff::StaffAdminPage ssr=SsrMode::Async />
            </Routes>
            </WithSession>
        </Router>
    }
}

/// The session's summary (CSRF token, who is signed in), fetched again on every navigation:
/// signing in or out changes both.
#[component]
fn WithSession(children: Children) -> impl IntoView {
    let location = leptos_router::hooks::use_location();
    let refresh = widgets::use_refresh();
    let session: SessionResource = page_resource(
        move || (refresh.get(), location.pathname.get()),
        |_| api::load_session(),
    );
    provide_context(session);
    children()
}

#[component]
fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(res) = use_context::<leptos_axum::ResponseOptions>() {
        res.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <main class="narrow">
            <h1>{i18n::tr("页面不存在", "Page not found")}</h1>
            <p><a href="/">{i18n::tr("返回首页", "Back to home")}</a></p>
        </main>
    }
}
