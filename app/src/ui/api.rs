//! Server functions every page shares: the session's summary, SMS codes, the second factor,
//! sign-out. Reads are GETs; every POST carries the CSRF token (checked by the server's
//! middleware before any function runs).
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use crate::ui::server::web;

/// What the layout needs on every page.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct SessionInfo {
    pub csrf: String,
    /// The signed-in number, masked (`138****8000`).
    pub msisdn: Option<String>,
    pub must_change_password: bool,
    /// Set while a customer-care agent acts as the subscriber.
    pub banner: Option<String>,
}

#[server(input = server_fn::codec::GetUrl, endpoint = "session")]
pub async fn load_session() -> Result<SessionInfo, ServerFnError> {
    if let Some(known) = crate::ui::server::known::<SessionInfo>() {
        return Ok(known);
    }
    Ok(session_info(&web().await?))
}

/// The layout's summary of the session.
#[cfg(feature = "ssr")]
pub fn session_info(web: &crate::ui::session::Web) -> SessionInfo {
    SessionInfo {
        csrf: web.state.csrf.clone(),
        msisdn: web
            .state
            .msisdn
            .as_deref()
            .and_then(|m| crate::domain::Msisdn::parse(m).ok())
            .map(|m| m.masked()),
        must_change_password: web.state.must_change_password,
        banner: web.acting.as_ref().map(|i| match web.lang {
            crate::ui::i18n::Lang::Zh => i.banner_zh(),
            crate::ui::i18n::Lang::En => i.banner_en(),
        }),
    }
}

/// The purposes a signed-in subscriber may ask a code for on the web.
#[cfg(feature = "ssr")]
fn purpose(key: &str) -> Option<crate::service::codes::CodePurpose> {
    use crate::service::codes::CodePurpose;
    match key {
        "2fa" => Some(CodePurpose::SecondFactor),
        "product" => Some(CodePurpose::ProductChange),
        "redeem" => Some(CodePurpose::Redemption),
        _ => None,
    }
}

/// Sends the signed-in subscriber a code for `purpose` (`2fa`, `product`, `redeem`).
#[server(endpoint = "send_code")]
pub async fn send_code(csrf: String, purpose: String) -> Result<(), ServerFnError> {
    let _ = csrf;
    let mut web = web().await?;
    let msisdn = web.subscriber()?;
    let Some(p) = self::purpose(&purpose) else {
        return Err(ServerFnError::new("unknown purpose"));
    };
    web.check(web.hall.send_code(&msisdn, p).await)?;
    let r = web.note_code_sent(&purpose).await;
    web.check(r)?;
    Ok(())
}

/// Seconds before another code of `purpose` may be requested.
#[server(input = server_fn::codec::GetUrl, endpoint = "code_cooldown")]
pub async fn code_cooldown(purpose: String) -> Result<i64, ServerFnError> {
    let web = web().await?;
    web.subscriber()?;
    Ok(web.resend_in(&purpose))
}

/// Passes the second factor: opens the 10-minute window.
#[server(endpoint = "verify_second_factor")]
pub async fn verify_second_factor(csrf: String, code: String) -> Result<(), ServerFnError> {
    let _ = csrf;
    use crate::domain::SmsCode;
    use crate::service::codes::CodePurpose;
    let mut web = web().await?;
    let msisdn = web.subscriber()?;
    let code = SmsCode::parse(&code).map_err(|e| web.fail(e.into()))?;
    web.check(
        web.hall
            .verify_code(&msisdn, CodePurpose::SecondFactor, &code)
            .await,
    )?;
    let r = web.elevate().await;
    web.check(r)?;
    Ok(())
}

#[server(endpoint = "sign_out")]
pub async fn sign_out(csrf: String) -> Result<(), ServerFnError> {
    let _ = csrf;
    let mut web = web().await?;
    if web.acting.is_some() {
        return end_acting_now(web).await;
    }
    let r = web.sign_out().await;
    web.check(r)?;
    leptos_axum::redirect("/login?done=signed_out");
    Ok(())
}

/// The banner's button: customer care ends acting as the subscriber and returns to the console.
#[server(endpoint = "end_acting")]
pub async fn end_acting(csrf: String) -> Result<(), ServerFnError> {
    let _ = csrf;
    end_acting_now(web().await?).await
}

#[cfg(feature = "ssr")]
async fn end_acting_now(mut web: crate::ui::session::Web) -> Result<(), ServerFnError> {
    let addr = crate::ui::server::client_addr();
    let r = web.end_acting(&addr).await;
    web.check(r)?;
    leptos_axum::redirect("/staff?done=ended");
    Ok(())
}
