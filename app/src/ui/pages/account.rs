//! Account (SPEC §3): service password (second factor), alert threshold, suspend/resume
//! (second factor) and "sign out everywhere".
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::domain::Fen;
use crate::ui::codec::page_resource;
use crate::ui::gate::SecondFactorGate;
use crate::ui::i18n::tr;
use crate::ui::layout::Layout;
#[cfg(feature = "ssr")]
use crate::ui::server::web;
use crate::ui::widgets::{
    use_refresh, ActionError, CsrfField, DoneNotice, ErrorBox, Loading, PasswordChangeFields,
};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AccountData {
    pub alert_threshold: Fen,
    pub status: String,
    pub suspended_by_request: bool,
    pub suspended_for_arrears: bool,
}

#[server(input = server_fn::codec::GetUrl, endpoint = "account")]
pub async fn load_account() -> Result<AccountData, ServerFnError> {
    use crate::domain::Status;
    let web = web().await?;
    let msisdn = web.subscriber()?;
    let p = web.check(web.hall.profile_as(web.actor(), &msisdn).await)?;
    Ok(AccountData {
        alert_threshold: p.alert_threshold,
        status: web.lang.pick(p.status.zh(), p.status.en()).to_owned(),
        suspended_by_request: p.status == Status::SuspendedByRequest,
        suspended_for_arrears: p.status == Status::SuspendedArrears,
    })
}

#[server(endpoint = "change_password")]
pub async fn change_password(
    csrf: String,
    current: String,
    new: String,
    repeat: String,
) -> Result<(), ServerFnError> {
    let _ = csrf;
    let mut web = web().await?;
    let msisdn = web.subscriber_with_second_factor()?;
    web.change_password(&msisdn, &current, &new, &repeat)
        .await?;
    leptos_axum::redirect("/account?done=password");
    Ok(())
}

#[server(endpoint = "set_alert_threshold")]
pub async fn set_alert_threshold(csrf: String, yuan: String) -> Result<(), ServerFnError> {
    let _ = csrf;
    let web = web().await?;
    let msisdn = web.subscriber()?;
    let amount = Fen::parse_yuan(&yuan).map_err(|e| web.fail(e.into()))?;
    web.check(web.hall.set_alert_threshold(&msisdn, amount).await)?;
    leptos_axum::redirect("/account?done=threshold");
    Ok(())
}

#[server(endpoint = "suspend_or_resume")]
pub async fn suspend_or_resume(csrf: String, action: String) -> Result<(), ServerFnError> {
    let _ = csrf;
    let web = web().await?;
    let msisdn = web.subscriber_with_second_factor()?;
    let done = if action == "resume" {
        web.check(web.hall.resume_by_request(&msisdn).await)?;
        "resumed"
    } else {
        web.check(web.hall.suspend_by_request(&msisdn).await)?;
        "suspended"
    };
    leptos_axum::redirect(&format!("/account?done={done}"));
    Ok(())
}

#[server(endpoint = "sign_out_everywhere")]
pub async fn sign_out_everywhere(csrf: String) -> Result<(), ServerFnError> {
    let _ = csrf;
    let mut web = web().await?;
    let msisdn = web.subscriber()?;
    web.check(web.hall.sign_out_everywhere_as(web.actor(), &msisdn).await)?;
    let r = web.sign_out().await;
    web.check(r)?;
    leptos_axum::redirect("/login?done=signed_out");
    Ok(())
}

#[component]
pub fn AccountPage() -> impl IntoView {
    let refresh = use_refresh();
    let data = page_resource(move || refresh.get(), |_| load_account());
    let threshold = ServerAction::<SetAlertThreshold>::new();
    let everywhere = ServerAction::<SignOutEverywhere>::new();
    view! {
        <Layout title="账户设置" title_en="Account" gated=true>
            <DoneNotice messages=&[
                ("password", "服务密码已修改,其他设备上的登录已退出。", "Password changed; sessions on other devices have ended."),
                ("threshold", "提醒额度已保存。", "Alert threshold saved."),
                ("suspended", "已办理停机。", "Your number is suspended."),
                ("resumed", "已办理复机。", "Your number is active again."),
            ] />
            <Suspense fallback=Loading>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <ErrorBox err=e /> }.into_any(),
                        Ok(d) => view! {
                            <section class="card">
                                <h2>{tr("高额话费提醒", "High-bill alert")}</h2>
                                <p class="muted">{tr("本月消费超过此额度时,将以短信提醒您一次。", "When this month's spend passes this amount you get one SMS.")}</p>
                                <ActionForm action=threshold attr:id="threshold-form" attr:class="row">
                                    <CsrfField />
                                    <label>{tr("提醒额度(元)", "Threshold (yuan)")}
                                        <input type="text" name="yuan" inputmode="decimal" value=d.alert_threshold.plain() required />
                                    </label>
                                    <button type="submit">{tr("保存", "Save")}</button>
                                </ActionForm>
                                <ActionError value=threshold.value() />
                            </section>
                            <SecondFactorGate>
                                <SecuredSettings suspended=d.suspended_by_request arrears=d.suspended_for_arrears />
                            </SecondFactorGate>
                        }.into_any(),
                    }
                })}
            </Suspense>
            <section class="card">
                <h2>{tr("退出所有设备", "Sign out everywhere")}</h2>
                <p class="muted">{tr("结束此号码在所有浏览器上的登录,包括本机。", "Ends every session of this number, this one included.")}</p>
                <ActionForm action=everywhere attr:id="sign-out-everywhere-form">
                    <CsrfField />
                    <button type="submit" class="danger">{tr("退出所有设备", "Sign out everywhere")}</button>
                </ActionForm>
                <ActionError value=everywhere.value() />
            </section>
        </Layout>
    }
}

#[component]
fn SecuredSettings(suspended: bool, arrears: bool) -> impl IntoView {
    let password = ServerAction::<ChangePassword>::new();
    let suspend = ServerAction::<SuspendOrResume>::new();
    view! {
        <section class="card">
            <h2>{tr("修改服务密码", "Change service password")}</h2>
            <ActionForm action=password attr:id="password-form">
                <CsrfField />
                <PasswordChangeFields />
                <ActionError value=password.value() />
                <button type="submit" class="primary">{tr("确认修改", "Change password")}</button>
            </ActionForm>
        </section>
        <section class="card">
            <h2>{tr("停机 / 复机", "Suspend / resume")}</h2>
            {if arrears {
                view! { <p class="muted">{tr("欠费停机将在充值后自动恢复。", "A suspension for arrears ends with a top-up.")}</p> }.into_any()
            } else {
                view! {
                    <ActionForm action=suspend attr:id="suspend-form">
                        <CsrfField />
                        <input type="hidden" name="action" value=if suspended { "resume" } else { "suspend" } />
                        <button type="submit" class=if suspended { "primary" } else { "danger" }>
                            {if suspended { tr("申请复机", "Resume service") } else { tr("申请停机(挂失)", "Suspend (lost phone)") }}
                        </button>
                    </ActionForm>
                    <ActionError value=suspend.value() />
                }.into_any()
            }}
        </section>
    }
}
