//! Points (SPEC §2, §3): balance, what expires this year, history, rewards, and redemption
//! behind the second factor.
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

use crate::domain::Fen;
use crate::ui::codec::page_resource;
use crate::ui::gate::SecondFactorGate;
use crate::ui::i18n::tr;
use crate::ui::layout::Layout;
#[cfg(feature = "ssr")]
use crate::ui::server::web;
use crate::ui::widgets::{
    refreshing, use_refresh, ActionError, CsrfField, DoneNotice, ErrorBox, Loading,
};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RewardView {
    pub code: String,
    pub name: String,
    pub cost: i64,
    pub credit: Fen,
    pub data_mb: i64,
    pub affordable: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct HistoryRow {
    pub time: String,
    pub delta: i64,
    pub reason: String,
    pub memo: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PointsData {
    pub balance: i64,
    pub expiring: i64,
    /// (points, expiry date) of each lot, spent earliest-expiring first.
    pub lots: Vec<(i64, String)>,
    pub rewards: Vec<RewardView>,
    pub history: Vec<HistoryRow>,
    /// Identifies this redemption form, so a resubmitted form never redeems twice.
    pub reference: String,
}

#[server(input = server_fn::codec::GetUrl, endpoint = "points")]
pub async fn load_points() -> Result<PointsData, ServerFnError> {
    let web = web().await?;
    let msisdn = web.subscriber()?;
    let lang = web.lang;
    let hall = &web.hall;
    let summary = web.check(hall.points(&msisdn).await)?;
    let rewards = web.check(hall.rewards().await)?;
    let history = web.check(hall.points_history(&msisdn, 30).await)?;
    let shanghai = crate::domain::shanghai();
    Ok(PointsData {
        balance: summary.balance.get(),
        expiring: summary.expiring_this_year.get(),
        lots: summary
            .lots
            .iter()
            .map(|l| {
                (
                    l.remaining,
                    l.expires_at
                        .with_timezone(&shanghai)
                        .format("%Y-%m-%d")
                        .to_string(),
                )
            })
            .collect(),
        rewards: rewards
            .into_iter()
            .map(|r| RewardView {
                affordable: r.cost.get() <= summary.balance.get(),
                code: r.code.clone(),
                name: lang.pick(&r.name_zh, &r.name_en).to_owned(),
                cost: r.cost.get(),
                credit: r.credit,
                data_mb: r.data_mb,
            })
            .collect(),
        history: history
            .iter()
            .map(|h| HistoryRow {
                time: h
                    .created_at
                    .with_timezone(&shanghai)
                    .format("%Y-%m-%d")
                    .to_string(),
                delta: h.delta,
                reason: lang.pick(h.reason_zh(), &h.reason).to_owned(),
                memo: h.memo.clone(),
            })
            .collect(),
        reference: crate::ui::session::new_token(),
    })
}

/// Redeems a reward; like any change it needs the second factor (SPEC §3).
#[server(endpoint = "redeem")]
pub async fn redeem(csrf: String, reward: String, reference: String) -> Result<(), ServerFnError> {
    let _ = csrf;
    let web = web().await?;
    let msisdn = web.subscriber_with_second_factor()?;
    if reference.len() < 16
        || reference.len() > 64
        || !reference.chars().all(|c| c.is_ascii_alphanumeric())
    {
        return Err(crate::ui::server::refuse(
            web.lang,
            http::StatusCode::BAD_REQUEST,
            "请刷新页面后重试。",
            "Please reload the page and try again.",
        ));
    }
    let r = web.check(
        web.hall
            .redeem(&msisdn, &reward, &format!("web:{reference}"))
            .await,
    )?;
    leptos_axum::redirect(&format!("/points?done=redeemed&n={}", r.points.get()));
    Ok(())
}

#[component]
pub fn PointsPage() -> impl IntoView {
    let refresh = use_refresh();
    let data = page_resource(move || refresh.get(), |_| load_points());
    view! {
        <Layout title="积分" title_en="Points" gated=true>
            <DoneNotice messages=&[("redeemed", "兑换成功。", "Redeemed.")] />
            <Suspense fallback=Loading>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <ErrorBox err=e /> }.into_any(),
                        Ok(d) => view! { <PointsView d /> }.into_any(),
                    }
                })}
            </Suspense>
        </Layout>
    }
}

#[component]
fn PointsView(d: PointsData) -> impl IntoView {
    let query = use_query_map();
    let chosen = query.read_untracked().get("redeem");
    let reward = chosen.and_then(|c| d.rewards.iter().find(|r| r.code == c).cloned());
    view! {
        <section class="grid">
            <div class="card">
                <h2>{tr("可用积分", "Points")}</h2>
                <p class="big" id="points-balance">{d.balance}</p>
            </div>
            <div class="card">
                <h2>{tr("今年底到期", "Expiring this year")}</h2>
                <p class="big" id="points-expiring">{d.expiring}</p>
                <p class="muted small">{tr("积分在获得年度的次年年底到期,兑换时先扣除最早到期的积分。", "Points expire at the end of the year after they were earned; redemption spends the earliest-expiring first.")}</p>
            </div>
        </section>
        {reward.map(|r| view! { <RedeemForm r reference=d.reference.clone() /> })}
        <section class="card">
            <h2>{tr("积分兑换", "Rewards")}</h2>
            <div class="table-wrap">
                <table id="rewards">
                    <thead><tr><th>{tr("礼品", "Reward")}</th><th class="num">{tr("所需积分", "Points")}</th><th></th></tr></thead>
                    <tbody>
                        {d.rewards.into_iter().map(|r| view! {
                            <tr>
                                <td>{r.name.clone()} " " <span class="tag">{r.code.clone()}</span></td>
                                <td class="num">{r.cost}</td>
                                <td>{if r.affordable {
                                    view! { <a class="button" href=format!("/points?redeem={}", r.code)>{tr("兑换", "Redeem")}</a> }.into_any()
                                } else {
                                    view! { <span class="muted small">{tr("积分不足", "Not enough points")}</span> }.into_any()
                                }}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
        </section>
        <section class="card">
            <h2>{tr("积分明细", "History")}</h2>
            <div class="table-wrap">
                <table id="points-history">
                    <thead><tr><th>{tr("日期", "Date")}</th><th>{tr("类型", "Kind")}</th><th>{tr("说明", "Memo")}</th><th class="num">{tr("积分", "Points")}</th></tr></thead>
                    <tbody>
                        {d.history.into_iter().map(|h| view! {
                            <tr><td>{h.time}</td><td>{h.reason}</td><td>{h.memo}</td><td class="num">{format!("{:+}", h.delta)}</td></tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
        </section>
    }
}

#[component]
fn RedeemForm(r: RewardView, reference: String) -> impl IntoView {
    let (code, reference) = (r.code.clone(), reference);
    view! {
        <section class="card" id="redeem">
            <h2>{tr("兑换", "Redeem")} " " {r.name.clone()}</h2>
            <p>{tr("将扣除", "This spends")} " " <strong>{r.cost}</strong> " " {tr("积分。", "points.")}
                {(r.credit != Fen::ZERO).then(|| view! { <span>" " {tr("话费将直接存入账户。", "The credit goes to your balance.")}</span> })}
            </p>
            <SecondFactorGate>
                <ConfirmRedeem code=code.clone() reference=reference.clone() />
            </SecondFactorGate>
            <p><a href="/points">{tr("取消", "Cancel")}</a></p>
        </section>
    }
}

#[component]
fn ConfirmRedeem(code: String, reference: String) -> impl IntoView {
    let confirm = refreshing(ServerAction::<Redeem>::new());
    view! {
        <ActionForm action=confirm attr:id="confirm-redeem-form">
            <CsrfField />
            <input type="hidden" name="reward" value=code />
            <input type="hidden" name="reference" value=reference />
            <ActionError value=confirm.value() />
            <button type="submit" class="primary">{tr("确认兑换", "Confirm")}</button>
        </ActionForm>
    }
}
