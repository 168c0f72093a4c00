//! The second factor (SPEC §3): detail records, invoices, suspend/resume and a password change
//! need an SMS code passed within the last 10 minutes. The gate shows its children when the
//! window is open and the "send code / enter code" forms when it is not.
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::ui::api::{SendCode, VerifySecondFactor};
use crate::ui::codec::{page_resource, PageResource};
use crate::ui::i18n::tr;
use crate::ui::pages::CodeButton;
#[cfg(feature = "ssr")]
use crate::ui::server::web;
use crate::ui::widgets::{refreshing, use_refresh, ActionError, CsrfField, ErrorBox, Loading};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SecondFactorState {
    pub fresh: bool,
    pub resend_in: i64,
    /// A code was sent in the last five minutes.
    pub sent: bool,
}

#[server(input = server_fn::codec::GetUrl, endpoint = "second_factor")]
pub async fn load_second_factor() -> Result<SecondFactorState, ServerFnError> {
    let web = web().await?;
    web.subscriber()?;
    let sent = web
        .state
        .code_sent_ms
        .get("2fa")
        .is_some_and(|at| web.now_ms() - at < 5 * 60 * 1000);
    Ok(SecondFactorState {
        fresh: web.second_factor_fresh(),
        resend_in: web.resend_in("2fa"),
        sent,
    })
}

pub type SecondFactorResource = PageResource<Result<SecondFactorState, ServerFnError>>;

/// Creates the second factor's state for the page. The layout does it at its top for a page
/// that says it is `gated`: a resource first created inside an awaited block would be
/// numbered differently in the browser than on the server, and the page would not hydrate.
pub fn provide_second_factor() {
    let refresh = use_refresh();
    let state: SecondFactorResource =
        page_resource(move || refresh.get(), |_| load_second_factor());
    provide_context(state);
}

#[component]
pub fn SecondFactorGate(children: ChildrenFn) -> impl IntoView {
    let state = use_context::<SecondFactorResource>()
        .expect("a page with a SecondFactorGate says so: <Layout gated=true>");
    let children = StoredValue::new(children);
    view! {
        <Suspense fallback=Loading>
            {move || Suspend::new(async move {
                match state.await {
                    Err(e) => view! { <ErrorBox err=e /> }.into_any(),
                    Ok(s) if s.fresh => children.with_value(|c| c()).into_any(),
                    Ok(s) => view! { <SecondFactorForms state=s /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn SecondFactorForms(state: SecondFactorState) -> impl IntoView {
    let send = refreshing(ServerAction::<SendCode>::new());
    let verify = refreshing(ServerAction::<VerifySecondFactor>::new());
    view! {
        <section class="card second-factor" id="second-factor">
            <h2>{tr("短信验证", "SMS verification")}</h2>
            <p>{tr(
                "为保护您的信息,此页面需要短信验证码。验证后 10 分钟内无需再次验证。",
                "To protect your information this page needs an SMS code. Once verified, you will not be asked again for 10 minutes.",
            )}</p>
            <ActionForm action=send attr:id="send-2fa-form">
                <CsrfField />
                <input type="hidden" name="purpose" value="2fa" />
                <CodeButton wait=state.resend_in />
                <ActionError value=send.value() />
            </ActionForm>
            {state.sent.then(|| view! {
                <p class="alert ok" role="status">{tr("验证码已发送到您的手机,5 分钟内有效。", "A code was sent to your phone; it is valid for 5 minutes.")}</p>
            })}
            <ActionForm action=verify attr:id="verify-2fa-form">
                <CsrfField />
                <label>{tr("短信验证码", "SMS code")}
                    <input type="text" name="code" inputmode="numeric" maxlength="6" autocomplete="one-time-code" required />
                </label>
                <ActionError value=verify.value() />
                <button type="submit" class="primary">{tr("验证", "Verify")}</button>
            </ActionForm>
        </section>
    }
}
