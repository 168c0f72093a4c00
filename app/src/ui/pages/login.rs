//! Sign-in (SPEC §3, §6): service password or SMS code, with the code's cool-down shown.
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

use crate::ui::codec::page_resource;
use crate::ui::i18n::tr;
use crate::ui::layout::LangSwitch;
#[cfg(feature = "ssr")]
use crate::ui::server::web;
use crate::ui::widgets::{refreshing, use_refresh, ActionError, CsrfField, DoneNotice};

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct LoginState {
    /// Seconds before another sign-in code may be requested from this browser.
    pub resend_in: i64,
    /// The previous session timed out.
    pub expired: bool,
    /// Customer care's session as this subscriber has ended (or reached its 30 minutes).
    pub acting_ended: bool,
}

#[server(input = server_fn::codec::GetUrl, endpoint = "login_state")]
pub async fn load_login_state() -> Result<LoginState, ServerFnError> {
    let mut web = web().await?;
    let r = web.take_expired().await;
    let expired = web.check(r)?;
    let r = web.take_acting_ended().await;
    let acting_ended = web.check(r)?;
    Ok(LoginState {
        resend_in: web.resend_in("signin"),
        expired,
        acting_ended,
    })
}

#[cfg(feature = "ssr")]
async fn finish_sign_in(
    web: &mut crate::ui::session::Web,
    signed: crate::service::auth::SignedIn,
) -> Result<(), ServerFnError> {
    let r = web
        .sign_in(
            &signed.msisdn,
            signed.session_epoch,
            signed.must_change_password,
        )
        .await;
    web.check(r)?;
    leptos_axum::redirect(if signed.must_change_password {
        "/password"
    } else {
        "/"
    });
    Ok(())
}

#[server(endpoint = "sign_in_password")]
pub async fn sign_in_password(
    csrf: String,
    msisdn: String,
    password: String,
) -> Result<(), ServerFnError> {
    let _ = csrf;
    let mut web = web().await?;
    let msisdn = crate::domain::Msisdn::parse(&msisdn).map_err(|e| web.fail(e.into()))?;
    let signed = web.check(web.hall.sign_in_with_password(&msisdn, &password).await)?;
    finish_sign_in(&mut web, signed).await
}

#[server(endpoint = "send_sign_in_code")]
pub async fn send_sign_in_code(csrf: String, msisdn: String) -> Result<(), ServerFnError> {
    let _ = csrf;
    use crate::service::codes::CodePurpose;
    let mut web = web().await?;
    let number = crate::domain::Msisdn::parse(&msisdn).map_err(|e| web.fail(e.into()))?;
    web.check(web.hall.send_code(&number, CodePurpose::SignIn).await)?;
    let r = web.note_code_sent("signin").await;
    web.check(r)?;
    leptos_axum::redirect(&format!(
        "/login?mode=code&sent=1&msisdn={}",
        number.as_str()
    ));
    Ok(())
}

#[server(endpoint = "sign_in_code")]
pub async fn sign_in_code(csrf: String, msisdn: String, code: String) -> Result<(), ServerFnError> {
    let _ = csrf;
    let mut web = web().await?;
    let msisdn = crate::domain::Msisdn::parse(&msisdn).map_err(|e| web.fail(e.into()))?;
    let code = crate::domain::SmsCode::parse(&code).map_err(|e| web.fail(e.into()))?;
    let signed = web.check(web.hall.sign_in_with_code(&msisdn, &code).await)?;
    finish_sign_in(&mut web, signed).await
}

#[component]
pub fn LoginPage() -> impl IntoView {
    let query = use_query_map();
    let refresh = use_refresh();
    let state = page_resource(move || refresh.get(), |_| load_login_state());
    let by_password = ServerAction::<SignInPassword>::new();
    let send = refreshing(ServerAction::<SendSignInCode>::new());
    let by_code = ServerAction::<SignInCode>::new();
    let code_mode = move || query.read().get("mode").as_deref() == Some("code");
    let number = move || query.read().get("msisdn").unwrap_or_default();
    view! {
        <leptos_meta::Title text=tr("登录 · 中国移动网上营业厅", "Sign in · China Mobile Online Hall") />
        <header class="top">
            <span class="brand"><span class="logo" aria-hidden="true">"◆"</span>{tr("网上营业厅", "Online Hall")}</span>
            <div class="who"><LangSwitch /></div>
        </header>
        <main class="narrow login">
            <h1>{tr("登录", "Sign in")}</h1>
            <DoneNotice messages=&[("signed_out", "您已安全退出。", "You have signed out.")] />
            <Suspense fallback=|| ()>
                {move || Suspend::new(async move {
                    state.await.ok().filter(|s| s.expired).map(|_| view! {
                        <p class="alert warn" role="status">{tr("您已超过 15 分钟未操作,请重新登录。", "You were idle for 15 minutes; please sign in again.")}</p>
                    })
                })}
                {move || Suspend::new(async move {
                    state.await.ok().filter(|s| s.acting_ended).map(|_| view! {
                        <p class="alert warn" role="status" id="acting-ended">
                            {tr("代客操作已结束。", "The customer-care session has ended.")}
                            " " <a href="/staff">{tr("返回客服工作台", "Back to the care console")}</a>
                        </p>
                    })
                })}
            </Suspense>
            <div class="tabs" role="tablist">
                <a href="/login" aria-selected=move || (!code_mode()).to_string() role="tab">{tr("服务密码登录", "Service password")}</a>
                <a href="/login?mode=code" aria-selected=move || code_mode().to_string() role="tab">{tr("短信验证码登录", "SMS code")}</a>
            </div>
            <Show when=code_mode fallback=move || view! {
                <ActionForm action=by_password attr:id="password-form" attr:class="card">
                    <CsrfField />
                    <label>{tr("手机号码", "Mobile number")}
                        <input type="tel" name="msisdn" inputmode="numeric" maxlength="11" autocomplete="username" required />
                    </label>
                    <label>{tr("服务密码", "Service password")}
                        <input type="password" name="password" inputmode="numeric" maxlength="6" autocomplete="current-password" required />
                    </label>
                    <ActionError value=by_password.value() />
                    <button type="submit" class="primary">{tr("登录", "Sign in")}</button>
                </ActionForm>
            }>
                <div class="card">
                    <ActionForm action=send attr:id="send-code-form">
                        <CsrfField />
                        <label>{tr("手机号码", "Mobile number")}
                            <input type="tel" name="msisdn" inputmode="numeric" maxlength="11" autocomplete="username" required value=number />
                        </label>
                        <Suspense fallback=|| ()>
                            {move || Suspend::new(async move {
                                let wait = state.await.map(|s| s.resend_in).unwrap_or(0);
                                view! { <CodeButton wait /> }
                            })}
                        </Suspense>
                        <ActionError value=send.value() />
                    </ActionForm>
                    {move || query.read().get("sent").map(|_| view! {
                        <p class="alert ok" role="status">{tr("验证码已发送,5 分钟内有效。", "Code sent; it is valid for 5 minutes.")}</p>
                    })}
                    <ActionForm action=by_code attr:id="code-form">
                        <CsrfField />
                        <input type="hidden" name="msisdn" value=number />
                        <label>{tr("短信验证码", "SMS code")}
                            <input type="text" name="code" inputmode="numeric" maxlength="6" autocomplete="one-time-code" required />
                        </label>
                        <ActionError value=by_code.value() />
                        <button type="submit" class="primary">{tr("登录", "Sign in")}</button>
                    </ActionForm>
                </div>
            </Show>
            <p class="muted small">{tr(
                "连续 5 次输错服务密码将锁定密码登录 24 小时,期间仍可用短信验证码登录。",
                "Five wrong passwords in a row lock password sign-in for 24 hours; SMS-code sign-in still works.",
            )}</p>
        </main>
    }
}

/// "Send code", disabled with a countdown while the cool-down runs (the countdown ticks only
/// with JavaScript; without it the page shows the seconds left when it was drawn).
#[component]
pub fn CodeButton(wait: i64) -> impl IntoView {
    let left = RwSignal::new(wait);
    #[cfg(feature = "hydrate")]
    {
        if wait > 0 {
            let handle = set_interval_with_handle(
                move || left.update(|n| *n = (*n - 1).max(0)),
                std::time::Duration::from_secs(1),
            );
            if let Ok(h) = handle {
                on_cleanup(move || h.clear());
            }
        }
    }
    // A named closure: `a > b` written inside the tag would end the tag.
    let waiting = move || left.get() > 0;
    let label = move || {
        let n = left.get();
        if n > 0 {
            format!("{} ({n}s)", tr("重新获取", "Resend"))
        } else {
            tr("获取验证码", "Send code").to_owned()
        }
    };
    view! {
        <button type="submit" class="secondary send-code" disabled=waiting>{label}</button>
    }
}
