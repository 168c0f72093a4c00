//! Home (SPEC §3): balance, plan, remaining allowances, points, tier and alerts.
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::domain::Fen;
use crate::ui::codec::page_resource;
use crate::ui::i18n::use_lang;
use crate::ui::layout::Layout;
#[cfg(feature = "ssr")]
use crate::ui::server::web;
use crate::ui::widgets::{use_refresh, DoneNotice, ErrorBox, Loading};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Allowance {
    pub label: String,
    pub used: String,
    pub total: String,
    pub left: String,
    /// 0–100, for the bar.
    pub percent_used: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct HomeData {
    pub name: String,
    pub msisdn: String,
    pub brand: String,
    pub status: String,
    pub active: bool,
    pub tier: String,
    pub plan: String,
    pub cash: Fen,
    pub gift: Fen,
    pub total: Fen,
    pub month_to_date: Fen,
    pub alert_threshold: Fen,
    pub allowances: Vec<Allowance>,
    pub points: i64,
    pub points_expiring: i64,
    pub alerts: Vec<String>,
}

#[cfg(feature = "ssr")]
fn allowance(
    lang: crate::ui::i18n::Lang,
    label: &str,
    m: &crate::service::rating::Meter,
    unit: &str,
    scale: i64,
) -> Option<Allowance> {
    let _ = lang;
    if m.allowance <= 0 {
        return None;
    }
    // Not `format!`: nine of these a view, and the formatting machinery was 2 % of one.
    let show = |v: i64| {
        let mut s = (v / scale).to_string();
        s.push_str(unit);
        s
    };
    Some(Allowance {
        label: label.to_owned(),
        used: show(m.used),
        total: show(m.allowance),
        left: show((m.allowance - m.within).max(0)),
        percent_used: (m.within * 100 / m.allowance).clamp(0, 100),
    })
}

#[server(input = server_fn::codec::GetUrl, endpoint = "home")]
pub async fn load_home() -> Result<HomeData, ServerFnError> {
    if let Some(known) = crate::ui::server::known::<HomeData>() {
        return Ok(known);
    }
    home_data(&web().await?).await
}

/// The home page's data for the session: the page's loader, and the server's memo of the
/// rendered page (which reads it to tell whether the page it rendered last still holds).
#[cfg(feature = "ssr")]
pub async fn home_data(web: &crate::ui::session::Web) -> Result<HomeData, ServerFnError> {
    use crate::domain::Status;
    use crate::ui::i18n::Lang;
    let msisdn = web.subscriber()?;
    let hall = &web.hall;
    let lang = web.lang;
    let crate::service::overview::Overview {
        profile,
        balance,
        month_to_date: mtd,
        points,
        plan,
    } = web.check(hall.overview_as(web.actor(), &msisdn).await)?;
    let r = &mtd.rating;
    let mut allowances = Vec::new();
    allowances.extend(allowance(
        lang,
        lang.pick("国内通话", "Calls"),
        &r.voice,
        lang.pick("分钟", " min"),
        1,
    ));
    allowances.extend(allowance(
        lang,
        lang.pick("国内流量", "Data"),
        &r.data,
        " MB",
        1024,
    ));
    allowances.extend(allowance(
        lang,
        lang.pick("短信", "SMS"),
        &r.sms,
        lang.pick("条", ""),
        1,
    ));
    allowances.extend(allowance(
        lang,
        lang.pick("校园 WLAN", "Campus WLAN"),
        &r.wlan,
        lang.pick("分钟", " min"),
        1,
    ));
    let mut alerts = Vec::new();
    let total = balance.total();
    match profile.status {
        Status::SuspendedArrears => alerts.push(lang.pick("您已欠费停机,充值至余额大于 0 后自动恢复。", "Suspended for arrears: a top-up that brings the balance above zero resumes service.").to_owned()),
        Status::SuspendedByRequest => alerts.push(lang.pick("您的号码已申请停机。", "Your number is suspended at your request.").to_owned()),
        Status::Active if total.is_negative() => alerts.push(lang.pick("您的余额不足,请尽快充值以免停机。", "Your balance is below zero; top up to avoid suspension.").to_owned()),
        Status::Active => {}
    }
    if mtd.total > profile.alert_threshold {
        alerts.push(match lang {
            Lang::Zh => format!(
                "本月消费 {} 已超过提醒额度 {}。",
                mtd.total, profile.alert_threshold
            ),
            Lang::En => format!(
                "This month's spend {} is above your alert threshold {}.",
                mtd.total, profile.alert_threshold
            ),
        });
    }
    if points.expiring_this_year.get() > 0 {
        alerts.push(match lang {
            Lang::Zh => format!(
                "您有 {} 积分将于今年底到期,请及时兑换。",
                points.expiring_this_year.get()
            ),
            Lang::En => format!(
                "{} points expire at the end of this year.",
                points.expiring_this_year.get()
            ),
        });
    }
    Ok(HomeData {
        name: profile.name.clone(),
        msisdn: msisdn.masked(),
        brand: lang.pick(profile.brand.zh(), profile.brand.en()).to_owned(),
        status: lang
            .pick(profile.status.zh(), profile.status.en())
            .to_owned(),
        active: profile.status == Status::Active,
        tier: lang.pick(profile.tier.zh(), profile.tier.en()).to_owned(),
        plan: match lang {
            Lang::Zh => plan.name_zh.clone(),
            Lang::En => plan.name_en.clone(),
        },
        cash: balance.cash,
        gift: balance.gift,
        total,
        month_to_date: mtd.total,
        alert_threshold: profile.alert_threshold,
        allowances,
        points: points.balance.get(),
        points_expiring: points.expiring_this_year.get(),
        alerts,
    })
}

#[component]
pub fn HomePage() -> impl IntoView {
    let refresh = use_refresh();
    let data = page_resource(move || refresh.get(), |_| load_home());
    view! {
        <Layout title="我的账户" title_en="My account">
            <DoneNotice messages=&[("password", "服务密码已修改。", "Your service password has been changed.")] />
            <Suspense fallback=Loading>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <ErrorBox err=e /> }.into_any(),
                        Ok(d) => view! { <HomeView d /> }.into_any(),
                    }
                })}
            </Suspense>
        </Layout>
    }
}

#[component]
fn HomeView(d: HomeData) -> impl IntoView {
    // Looked up once: each `tr` walks the owner tree for the language.
    let lang = use_lang();
    view! {
        {d.alerts.into_iter().map(|a| view! { <p class="alert warn" role="alert">{a}</p> }).collect_view()}
        <section class="grid">
            <div class="card balance" id="balance-card">
                <h2>{lang.pick("账户余额", "Balance")}</h2>
                <p class="big" id="balance">{d.total.to_string()}</p>
                <p class="muted">{lang.pick("现金", "Cash")} " " {d.cash.to_string()} " · " {lang.pick("赠送", "Gift")} " " {d.gift.to_string()}</p>
                <a class="button primary" href="/topup">{lang.pick("充值", "Top up")}</a>
            </div>
            <div class="card">
                <h2>{lang.pick("号码信息", "Number")}</h2>
                <dl class="facts">
                    <dt>{lang.pick("号码", "Number")}</dt><dd>{d.msisdn}</dd>
                    <dt>{lang.pick("姓名", "Name")}</dt><dd>{d.name}</dd>
                    <dt>{lang.pick("品牌", "Brand")}</dt><dd>{d.brand}</dd>
                    <dt>{lang.pick("星级", "Tier")}</dt><dd id="tier">{d.tier}</dd>
                    <dt>{lang.pick("状态", "Status")}</dt><dd class:bad=!d.active>{d.status}</dd>
                    <dt>{lang.pick("套餐", "Plan")}</dt><dd id="plan">{d.plan}</dd>
                </dl>
            </div>
            <div class="card">
                <h2>{lang.pick("本月消费", "This month")}</h2>
                <p class="big">{d.month_to_date.to_string()}</p>
                <p class="muted">{lang.pick("提醒额度", "Alert threshold")} " " {d.alert_threshold.to_string()}</p>
                <a href="/bills">{lang.pick("查看账单", "View bills")}</a>
            </div>
            <div class="card">
                <h2>{lang.pick("积分", "Points")}</h2>
                <p class="big" id="points">{d.points}</p>
                <p class="muted">{lang.pick("今年底到期", "Expiring this year")} " " {d.points_expiring}</p>
                <a href="/points">{lang.pick("积分兑换", "Redeem")}</a>
            </div>
        </section>
        <section class="card">
            <h2>{lang.pick("套餐余量", "Allowances left")}</h2>
            {if d.allowances.is_empty() {
                view! { <p class="muted">{lang.pick("当前套餐不含通用余量。", "Your plan has no allowances.")}</p> }.into_any()
            } else {
                view! {
                    <ul class="meters">
                        {d.allowances.into_iter().map(|a| view! {
                            <li>
                                <span class="label">{a.label}</span>
                                <progress max="100" value=a.percent_used></progress>
                                <span class="value">{lang.pick("剩余", "left")} " " {a.left} " / " {a.total}</span>
                            </li>
                        }).collect_view()}
                    </ul>
                }.into_any()
            }}
        </section>
    }
}
