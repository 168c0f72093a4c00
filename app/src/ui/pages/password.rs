//! The forced change of an initial service password (SPEC §6): until it is done, every other
//! subscriber page sends the person here.
use leptos::prelude::*;

use crate::ui::i18n::tr;
#[cfg(feature = "ssr")]
use crate::ui::server::web;
use crate::ui::widgets::{ActionError, CsrfField, PasswordChangeFields};

#[server(endpoint = "change_initial_password")]
pub async fn change_initial_password(
    csrf: String,
    current: String,
    new: String,
    repeat: String,
) -> Result<(), ServerFnError> {
    let _ = csrf;
    let mut web = web().await?;
    let msisdn = web.subscriber_before_password_change()?;
    web.change_password(&msisdn, &current, &new, &repeat)
        .await?;
    leptos_axum::redirect("/?done=password");
    Ok(())
}

#[component]
pub fn PasswordPage() -> impl IntoView {
    let change = ServerAction::<ChangeInitialPassword>::new();
    view! {
        <leptos_meta::Title text=tr("修改初始密码", "Change your initial password") />
        <main class="narrow">
            <h1>{tr("请修改初始服务密码", "Please change your initial service password")}</h1>
            <p>{tr(
                "为保障账户安全,首次登录须修改初始服务密码。新密码为 6 位数字,不能全部相同、不能连续、不能是手机号码的一部分。",
                "For your account's safety the initial service password must be changed at first sign-in. The new one is 6 digits, not all the same, not consecutive, not part of your number.",
            )}</p>
            <ActionForm action=change attr:class="card" attr:id="initial-password-form">
                <CsrfField />
                <PasswordChangeFields />
                <ActionError value=change.value() />
                <button type="submit" class="primary">{tr("确认修改", "Change password")}</button>
            </ActionForm>
        </main>
    }
}
