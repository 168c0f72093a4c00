//! Top-up (SPEC §2, §3): online payment (through the payment provider) or recharge card, for
//! this number or another; the receipt; the history.
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use serde::{Deserialize, Serialize};

use crate::domain::Fen;
use crate::ui::codec::page_resource;
use crate::ui::i18n::tr;
use crate::ui::layout::Layout;
#[cfg(feature = "ssr")]
use crate::ui::server::web;
use crate::ui::widgets::{use_refresh, ActionError, CsrfField, DoneNotice, ErrorBox, Loading};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ReceiptView {
    pub id: i64,
    pub target: String,
    pub paid_by_other: bool,
    pub channel: String,
    pub amount: Fen,
    pub gift: Fen,
    pub reference: String,
    pub time: String,
    pub balance_after: Option<Fen>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TopUpData {
    pub msisdn: String,
    pub balance: Fen,
    pub promotions: Vec<String>,
    pub history: Vec<ReceiptView>,
}

#[cfg(feature = "ssr")]
fn receipt_view(
    lang: crate::ui::i18n::Lang,
    me: &crate::domain::Msisdn,
    r: &crate::service::topup::TopUpReceipt,
) -> ReceiptView {
    use crate::service::topup::TopUpChannel;
    ReceiptView {
        id: r.id,
        target: if &r.target == me {
            r.target.as_str().to_owned()
        } else {
            r.target.masked()
        },
        paid_by_other: r.payer.as_ref().is_some_and(|p| p != &r.target),
        channel: match r.channel {
            TopUpChannel::Payment => lang.pick("在线支付", "Online payment"),
            TopUpChannel::Card => lang.pick("充值卡", "Recharge card"),
        }
        .to_owned(),
        amount: r.amount,
        gift: r.gift,
        reference: r
            .order_id()
            .or(r.card_serial())
            .unwrap_or_default()
            .to_owned(),
        time: r
            .created_at
            .with_timezone(&crate::domain::shanghai())
            .format("%Y-%m-%d %H:%M:%S")
            .to_string(),
        balance_after: r.balance_after,
    }
}

#[server(input = server_fn::codec::GetUrl, endpoint = "topup")]
pub async fn load_topup() -> Result<TopUpData, ServerFnError> {
    let web = web().await?;
    let msisdn = web.subscriber()?;
    let lang = web.lang;
    let balance = web.check(web.hall.balance(&msisdn).await)?;
    let promotions = web
        .check(web.hall.active_promotions().await)?
        .into_iter()
        .map(|p| lang.pick(&p.name_zh, &p.name_en).to_owned())
        .collect();
    let history = web
        .check(web.hall.topup_history(&msisdn, 20).await)?
        .iter()
        .map(|r| receipt_view(lang, &msisdn, r))
        .collect();
    Ok(TopUpData {
        msisdn: msisdn.as_str().to_owned(),
        balance: balance.total(),
        promotions,
        history,
    })
}

/// The number to top up: another number when given, else the signed-in one.
#[cfg(feature = "ssr")]
fn target_of(
    web: &crate::ui::session::Web,
    me: &crate::domain::Msisdn,
    target: &str,
) -> Result<crate::domain::Msisdn, ServerFnError> {
    let t = target.trim();
    if t.is_empty() {
        Ok(me.clone())
    } else {
        crate::domain::Msisdn::parse(t).map_err(|e| web.fail(e.into()))
    }
}

#[server(endpoint = "pay_online")]
pub async fn pay_online(csrf: String, target: String, yuan: String) -> Result<(), ServerFnError> {
    let _ = csrf;
    let web = web().await?;
    let me = web.subscriber()?;
    let target = target_of(&web, &me, &target)?;
    let amount = Fen::parse_yuan(yuan.trim()).map_err(|e| web.fail(e.into()))?;
    let order = web.check(web.hall.create_payment(&me, &target, amount).await)?;
    let url = order
        .checkout_url
        .unwrap_or_else(|| format!("/pay/sim/{}", order.id));
    leptos_axum::redirect(&url);
    Ok(())
}

#[server(endpoint = "top_up_card")]
pub async fn top_up_card(
    csrf: String,
    target: String,
    pin: String,
    serial: String,
) -> Result<(), ServerFnError> {
    let _ = csrf;
    let web = web().await?;
    let me = web.subscriber()?;
    let target = target_of(&web, &me, &target)?;
    let serial = Some(serial.trim()).filter(|s| !s.is_empty());
    let receipt = web.check(
        web.hall
            .top_up_by_card(&me, &target, pin.trim(), serial)
            .await,
    )?;
    leptos_axum::redirect(&format!("/topup/receipt/{}", receipt.id));
    Ok(())
}

#[component]
pub fn TopUpPage() -> impl IntoView {
    let refresh = use_refresh();
    let data = page_resource(move || refresh.get(), |_| load_topup());
    let pay = ServerAction::<PayOnline>::new();
    let card = ServerAction::<TopUpCard>::new();
    view! {
        <Layout title="充值缴费" title_en="Top up">
            <DoneNotice messages=&[
                ("payment_failed", "支付未完成,未扣款也未到账。", "The payment did not go through; nothing was charged or credited."),
                ("already", "该订单已处理。", "That order was already settled."),
            ] />
            <Suspense fallback=Loading>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <ErrorBox err=e /> }.into_any(),
                        Ok(d) => { let (m1, m2) = (d.msisdn.clone(), d.msisdn.clone()); view! {
                            <p>{tr("当前余额", "Balance")} " " <strong id="topup-balance">{d.balance.to_string()}</strong></p>
                            {(!d.promotions.is_empty()).then(|| view! {
                                <p class="alert ok">{tr("优惠活动:", "Promotions: ")} {d.promotions.join(" · ")}</p>
                            })}
                            <section class="grid">
                                <div class="card">
                                    <h2>{tr("在线支付充值", "Pay online")}</h2>
                                    <ActionForm action=pay attr:id="pay-form">
                                        <CsrfField />
                                        <label>{tr("充值号码(留空为本机)", "Number (empty: this one)")}
                                            <input type="tel" name="target" inputmode="numeric" maxlength="11" placeholder=m1 />
                                        </label>
                                        <label>{tr("金额(元,10–5000)", "Amount (yuan, 10–5000)")}
                                            <input type="text" name="yuan" inputmode="decimal" required />
                                        </label>
                                        <ActionError value=pay.value() />
                                        <button type="submit" class="primary">{tr("去支付", "Pay")}</button>
                                    </ActionForm>
                                </div>
                                <div class="card">
                                    <h2>{tr("充值卡充值", "Recharge card")}</h2>
                                    <ActionForm action=card attr:id="card-form">
                                        <CsrfField />
                                        <label>{tr("充值号码(留空为本机)", "Number (empty: this one)")}
                                            <input type="tel" name="target" inputmode="numeric" maxlength="11" placeholder=m2 />
                                        </label>
                                        <label>{tr("卡号(17 位,可不填)", "Serial (17 digits, optional)")}
                                            <input type="text" name="serial" inputmode="numeric" maxlength="17" />
                                        </label>
                                        <label>{tr("密码(18 位)", "PIN (18 digits)")}
                                            <input type="text" name="pin" inputmode="numeric" maxlength="18" required autocomplete="off" />
                                        </label>
                                        <ActionError value=card.value() />
                                        <button type="submit" class="primary">{tr("充值", "Top up")}</button>
                                    </ActionForm>
                                </div>
                            </section>
                            <section class="card">
                                <h2>{tr("充值记录", "History")}</h2>
                                <div class="table-wrap">
                                    <table id="topup-history">
                                        <thead><tr><th>{tr("时间", "Time")}</th><th>{tr("号码", "Number")}</th><th>{tr("方式", "Channel")}</th><th class="num">{tr("金额", "Amount")}</th><th></th></tr></thead>
                                        <tbody>
                                            {d.history.into_iter().map(|r| view! {
                                                <tr>
                                                    <td>{r.time}</td><td>{r.target}</td><td>{r.channel}</td>
                                                    <td class="num">{r.amount.to_string()}</td>
                                                    <td><a href=format!("/topup/receipt/{}", r.id)>{tr("回执", "Receipt")}</a></td>
                                                </tr>
                                            }).collect_view()}
                                        </tbody>
                                    </table>
                                </div>
                            </section>
                        }.into_any() }
                    }
                })}
            </Suspense>
        </Layout>
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PaymentView {
    pub id: String,
    pub target: String,
    pub amount: Fen,
    pub promotion: Option<String>,
    pub pending: bool,
}

#[server(input = server_fn::codec::GetUrl, endpoint = "payment")]
pub async fn load_payment(order: String) -> Result<PaymentView, ServerFnError> {
    use crate::service::payment::PaymentStatus;
    let web = web().await?;
    let me = web.subscriber()?;
    let o = web.check(web.hall.payment_order(&me, &order).await)?;
    Ok(PaymentView {
        id: o.id.clone(),
        target: o.target.masked(),
        amount: o.amount,
        promotion: o
            .promotion
            .map(|p| web.lang.pick(&p.name_zh, &p.name_en).to_owned()),
        pending: o.status == PaymentStatus::Pending,
    })
}

/// The simulated provider's pay page acts: pay (or cancel), then its callback credits.
#[server(endpoint = "complete_payment")]
pub async fn complete_payment(
    csrf: String,
    order: String,
    approve: String,
) -> Result<(), ServerFnError> {
    let _ = csrf;
    use crate::service::payment::CallbackOutcome;
    let web = web().await?;
    let me = web.subscriber()?;
    let outcome = web.check(web.hall.simulate_payment(&me, &order, approve == "1").await)?;
    let to = match outcome {
        CallbackOutcome::Credited(r) => format!("/topup/receipt/{}", r.id),
        CallbackOutcome::MarkedFailed => "/topup?done=payment_failed".into(),
        CallbackOutcome::AlreadyApplied => "/topup?done=already".into(),
    };
    leptos_axum::redirect(&to);
    Ok(())
}

#[component]
pub fn PaymentPage() -> impl IntoView {
    let params = use_params_map();
    let data = page_resource(
        move || params.read().get("order").unwrap_or_default(),
        load_payment,
    );
    let complete = ServerAction::<CompletePayment>::new();
    view! {
        <Layout title="支付" title_en="Payment">
            <p class="muted">{tr("模拟支付平台:演示环境中由此页面代替第三方支付。", "Simulated payment provider: in the demo this page stands in for the real one.")}</p>
            <Suspense fallback=Loading>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <ErrorBox err=e /> }.into_any(),
                        Ok(p) if !p.pending => view! { <p>{tr("该订单已处理。", "This order is settled.")} " " <a href="/topup">{tr("返回", "Back")}</a></p> }.into_any(),
                        Ok(p) => { let (id1, id2) = (p.id.clone(), p.id.clone()); view! {
                            <section class="card" id="payment">
                                <dl class="facts">
                                    <dt>{tr("订单号", "Order")}</dt><dd>{p.id.clone()}</dd>
                                    <dt>{tr("充值号码", "Number")}</dt><dd>{p.target.clone()}</dd>
                                    <dt>{tr("金额", "Amount")}</dt><dd id="payment-amount">{p.amount.to_string()}</dd>
                                    {p.promotion.clone().map(|pr| view! { <dt>{tr("优惠", "Promotion")}</dt><dd>{pr}</dd> })}
                                </dl>
                                <ActionForm action=complete attr:id="pay-confirm-form">
                                    <CsrfField />
                                    <input type="hidden" name="order" value=id1 />
                                    <input type="hidden" name="approve" value="1" />
                                    <button type="submit" class="primary">{tr("确认支付", "Pay now")}</button>
                                </ActionForm>
                                <ActionForm action=complete attr:id="pay-cancel-form">
                                    <CsrfField />
                                    <input type="hidden" name="order" value=id2 />
                                    <input type="hidden" name="approve" value="0" />
                                    <button type="submit">{tr("取消支付", "Cancel")}</button>
                                </ActionForm>
                                <ActionError value=complete.value() />
                            </section>
                        }.into_any() }
                    }
                })}
            </Suspense>
        </Layout>
    }
}

#[server(input = server_fn::codec::GetUrl, endpoint = "receipt")]
pub async fn load_receipt(id: i64) -> Result<ReceiptView, ServerFnError> {
    let web = web().await?;
    let me = web.subscriber()?;
    let mut r = web.check(web.hall.receipt(&me, id).await)?;
    if r.target == me && r.balance_after.is_none() {
        r.balance_after = Some(web.check(web.hall.balance(&me).await)?.total());
    }
    Ok(receipt_view(web.lang, &me, &r))
}

#[component]
pub fn ReceiptPage() -> impl IntoView {
    let params = use_params_map();
    let data = page_resource(
        move || {
            params
                .read()
                .get("id")
                .and_then(|i| i.parse::<i64>().ok())
                .unwrap_or(0)
        },
        load_receipt,
    );
    view! {
        <Layout title="充值回执" title_en="Receipt">
            <Suspense fallback=Loading>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <ErrorBox err=e /> }.into_any(),
                        Ok(r) => view! {
                            <section class="card" id="receipt">
                                <p class="alert ok" role="status">{tr("充值成功", "Top-up successful")}</p>
                                <dl class="facts">
                                    <dt>{tr("充值号码", "Number")}</dt><dd>{r.target.clone()}</dd>
                                    <dt>{tr("方式", "Channel")}</dt><dd>{r.channel.clone()}</dd>
                                    <dt>{tr("到账金额", "Credited")}</dt><dd id="receipt-amount">{r.amount.to_string()}</dd>
                                    {(r.gift != Fen::ZERO).then(|| view! { <dt>{tr("赠送金额", "Gift")}</dt><dd>{r.gift.to_string()}</dd> })}
                                    <dt>{tr("凭证号", "Reference")}</dt><dd>{r.reference.clone()}</dd>
                                    <dt>{tr("时间", "Time")}</dt><dd>{r.time.clone()}</dd>
                                    {r.balance_after.map(|b| view! { <dt>{tr("当前余额", "Balance now")}</dt><dd id="receipt-balance">{b.to_string()}</dd> })}
                                </dl>
                                <p><a href="/topup">{tr("继续充值", "Top up again")}</a> " · " <a href="/">{tr("返回首页", "Home")}</a></p>
                            </section>
                        }.into_any(),
                    }
                })}
            </Suspense>
        </Layout>
    }
}
