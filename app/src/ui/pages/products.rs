//! Products (SPEC §3): the catalogue, subscribe, cancel, change plan and the pending change.
//! Every change shows its charging rule first and needs the second factor (an SMS code passed
//! within the last 10 minutes) before the subscriber confirms it.
use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};
use serde::{Deserialize, Serialize};

use crate::domain::Fen;
use crate::ui::codec::page_resource;
use crate::ui::gate::SecondFactorGate;
use crate::ui::i18n::tr;
use crate::ui::layout::Layout;
#[cfg(feature = "ssr")]
use crate::ui::server::web;
use crate::ui::widgets::{use_refresh, ActionError, CsrfField, DoneNotice, ErrorBox, Loading};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ProductItem {
    pub code: String,
    pub name: String,
    pub fee: Fen,
    pub description: String,
    /// Subscribed and not cancelled.
    pub active: bool,
    /// Cancelled: stays until the end of `ends`.
    pub ends: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ProductsData {
    pub plan: ProductItem,
    /// (target plan's name, target code, effective month)
    pub pending: Option<(String, String, String)>,
    pub plans: Vec<ProductItem>,
    pub add_ons: Vec<ProductItem>,
}

#[cfg(feature = "ssr")]
fn item(lang: crate::ui::i18n::Lang, p: &crate::service::catalogue::Product) -> ProductItem {
    ProductItem {
        code: p.code.to_string(),
        name: lang.pick(&p.name_zh, &p.name_en).to_owned(),
        fee: p.monthly_fee,
        description: lang.pick(&p.description_zh, &p.description_en).to_owned(),
        active: false,
        ends: None,
    }
}

#[server(input = server_fn::codec::GetUrl, endpoint = "products")]
pub async fn load_products() -> Result<ProductsData, ServerFnError> {
    use crate::service::catalogue::ProductKind;
    let web = web().await?;
    let msisdn = web.subscriber()?;
    let hall = &web.hall;
    let lang = web.lang;
    let profile = web.check(hall.profile_as(web.actor(), &msisdn).await)?;
    let catalogue = web.check(hall.catalogue().await)?;
    let subs = web.check(hall.subscriptions(&msisdn).await)?;
    let pending = web.check(hall.pending_plan_change(&msisdn).await)?;
    let plan = web.check(hall.product(&profile.plan).await)?;
    let mut plan_item = item(lang, &plan);
    plan_item.active = true;
    let plans = catalogue
        .iter()
        .filter(|p| p.is_plan_of(profile.brand))
        .map(|p| {
            let mut i = item(lang, p);
            i.active = p.code == profile.plan;
            i
        })
        .collect();
    let add_ons = catalogue
        .iter()
        .filter(|p| p.kind == ProductKind::AddOn)
        .map(|p| {
            let mut i = item(lang, p);
            if let Some(s) = subs.iter().find(|s| s.product.code == p.code) {
                i.active = s.end_period.is_none();
                i.ends = s.end_period.map(|e| e.to_string());
            }
            i
        })
        .collect();
    let pending = match pending {
        Some(c) => {
            let to = web.check(hall.product(&c.to).await)?;
            Some((
                lang.pick(&to.name_zh, &to.name_en).to_owned(),
                c.to.to_string(),
                c.effective.to_string(),
            ))
        }
        None => None,
    };
    Ok(ProductsData {
        plan: plan_item,
        pending,
        plans,
        add_ons,
    })
}

#[component]
pub fn ProductsPage() -> impl IntoView {
    let refresh = use_refresh();
    let data = page_resource(move || refresh.get(), |_| load_products());
    view! {
        <Layout title="业务办理" title_en="Products">
            <DoneNotice messages=&[
                ("subscribed", "订购成功,业务已生效。", "Subscribed: the product is active now."),
                ("cancelled", "退订成功,业务将于本月底失效。", "Cancelled: the product ends at the end of this month."),
                ("plan_change", "套餐变更已受理,将于下月 1 日生效。", "Plan change accepted: it takes effect on the 1st of next month."),
                ("withdrawn", "已撤销待生效的套餐变更。", "The pending plan change has been withdrawn."),
            ] />
            <Suspense fallback=Loading>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <ErrorBox err=e /> }.into_any(),
                        Ok(d) => view! { <ProductsView d /> }.into_any(),
                    }
                })}
            </Suspense>
        </Layout>
    }
}

#[component]
fn ProductsView(d: ProductsData) -> impl IntoView {
    let has_pending = d.pending.is_some();
    view! {
        <section class="card" id="current-plan">
            <h2>{tr("当前套餐", "Current plan")}</h2>
            <p><strong>{d.plan.name.clone()}</strong> " · " {d.plan.fee.to_string()} {tr("/月", "/month")}</p>
            {d.pending.clone().map(|(name, code, effective)| view! {
                <div class="alert warn" id="pending-change">
                    <p>{tr("待生效变更:", "Pending change: ")} <strong>{name}</strong> " (" {effective} ")"</p>
                    <a class="button" href=format!("/products/{code}?op=withdraw")>{tr("撤销变更", "Withdraw")}</a>
                </div>
            })}
        </section>
        <section>
            <h2>{tr("可选套餐", "Plans")}</h2>
            <div class="products">
                {d.plans.into_iter().map(|p| {
                    let href = format!("/products/{}?op=change", p.code);
                    view! {
                        <div class="card product" id=format!("plan-{}", p.code)>
                            <strong>{p.name.clone()}</strong>
                            <span class="fee">{p.fee.to_string()} {tr("/月", "/month")}</span>
                            <span class="muted small">{p.description.clone()}</span>
                            {if p.active {
                                view! { <span class="tag">{tr("当前套餐", "Current")}</span> }.into_any()
                            } else if has_pending {
                                view! { <span class="muted small">{tr("已有待生效变更", "A change is pending")}</span> }.into_any()
                            } else {
                                view! { <a class="button" href=href>{tr("变更为此套餐", "Change to this plan")}</a> }.into_any()
                            }}
                        </div>
                    }
                }).collect_view()}
            </div>
        </section>
        <section>
            <h2>{tr("增值业务", "Add-ons")}</h2>
            <div class="products">
                {d.add_ons.into_iter().map(|p| {
                    let code = p.code.clone();
                    view! {
                        <div class="card product" id=format!("addon-{}", p.code)>
                            <strong>{p.name.clone()} " " <span class="tag">{p.code.clone()}</span></strong>
                            <span class="fee">{p.fee.to_string()} {tr("/月", "/month")}</span>
                            <span class="muted small">{p.description.clone()}</span>
                            {match (p.active, p.ends.clone()) {
                                (true, _) => view! {
                                    <span class="tag">{tr("已订购", "Subscribed")}</span>
                                    <a class="button danger" href=format!("/products/{code}?op=cancel")>{tr("退订", "Cancel")}</a>
                                }.into_any(),
                                (false, Some(end)) => view! {
                                    <span class="muted small">{tr("已退订,有效期至 ", "Cancelled; active until the end of ")} {end}</span>
                                    <a class="button" href=format!("/products/{code}?op=subscribe")>{tr("重新订购", "Subscribe again")}</a>
                                }.into_any(),
                                (false, None) => view! {
                                    <a class="button primary" href=format!("/products/{code}?op=subscribe")>{tr("订购", "Subscribe")}</a>
                                }.into_any(),
                            }}
                        </div>
                    }
                }).collect_view()}
            </div>
        </section>
    }
}

/// One change about to be made, as the confirmation page shows it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct OrderView {
    pub code: String,
    pub op: String,
    pub name: String,
    pub fee: Fen,
    pub description: String,
    pub charge_now: Fen,
    pub rule: String,
}

#[cfg(feature = "ssr")]
fn parse_op(web: &crate::ui::session::Web, op: &str) -> Result<&'static str, ServerFnError> {
    match op {
        "subscribe" => Ok("subscribe"),
        "cancel" => Ok("cancel"),
        "change" => Ok("change"),
        "withdraw" => Ok("withdraw"),
        _ => Err(crate::ui::server::refuse(
            web.lang,
            http::StatusCode::BAD_REQUEST,
            "未知的操作。",
            "Unknown operation.",
        )),
    }
}

#[server(input = server_fn::codec::GetUrl, endpoint = "product_order")]
pub async fn product_order(code: String, op: String) -> Result<OrderView, ServerFnError> {
    use crate::domain::ProductCode;
    use crate::ui::i18n::Lang;
    let web = web().await?;
    let msisdn = web.subscriber()?;
    let op = parse_op(&web, &op)?;
    let code = ProductCode::parse(&code).map_err(|e| web.fail(e.into()))?;
    let lang = web.lang;
    let hall = &web.hall;
    let product = web.check(hall.product(&code).await)?;
    let (charge_now, rule) = match op {
        "subscribe" | "change" => {
            let q = web.check(hall.quote(&msisdn, &code).await)?;
            (
                q.charge_now,
                if lang == Lang::Zh {
                    q.rule_zh
                } else {
                    q.rule_en
                },
            )
        }
        "cancel" => (
            Fen::ZERO,
            lang.pick(
                "退订后本月仍可使用,下月起不再收费。",
                "It stays active until the end of this month and is not charged again.",
            )
            .to_owned(),
        ),
        _ => (
            Fen::ZERO,
            lang.pick(
                "撤销后下月继续使用当前套餐。",
                "Your current plan continues next month.",
            )
            .to_owned(),
        ),
    };
    Ok(OrderView {
        code: code.to_string(),
        op: op.to_owned(),
        name: lang.pick(&product.name_zh, &product.name_en).to_owned(),
        fee: product.monthly_fee,
        description: lang
            .pick(&product.description_zh, &product.description_en)
            .to_owned(),
        charge_now,
        rule,
    })
}

/// Makes the change: the subscriber saw the charging rule and passed the second factor
/// within the last 10 minutes (SPEC §3: "any product change").
#[server(endpoint = "change_product")]
pub async fn change_product(csrf: String, code: String, op: String) -> Result<(), ServerFnError> {
    let _ = csrf;
    use crate::domain::ProductCode;
    let web = web().await?;
    let msisdn = web.subscriber_with_second_factor()?;
    let op = parse_op(&web, &op)?;
    let code = ProductCode::parse(&code).map_err(|e| web.fail(e.into()))?;
    let hall = &web.hall;
    let done = match op {
        "subscribe" => {
            web.check(hall.subscribe(&msisdn, &code).await)?;
            "subscribed"
        }
        "cancel" => {
            web.check(hall.cancel(&msisdn, &code).await)?;
            "cancelled"
        }
        "change" => {
            web.check(hall.request_plan_change(&msisdn, &code).await)?;
            "plan_change"
        }
        _ => {
            web.check(hall.withdraw_plan_change(&msisdn).await)?;
            "withdrawn"
        }
    };
    leptos_axum::redirect(&format!("/products?done={done}"));
    Ok(())
}

#[component]
pub fn ProductPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let refresh = use_refresh();
    let data = page_resource(
        move || {
            (
                refresh.get(),
                params.read().get("code").unwrap_or_default(),
                query.read().get("op").unwrap_or_else(|| "subscribe".into()),
            )
        },
        |(_, code, op)| product_order(code, op),
    );
    view! {
        <Layout title="确认办理" title_en="Confirm" gated=true>
            <Suspense fallback=Loading>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <ErrorBox err=e /> <p><a href="/products">{tr("返回业务列表", "Back to products")}</a></p> }.into_any(),
                        Ok(o) => view! { <OrderForm o /> }.into_any(),
                    }
                })}
            </Suspense>
        </Layout>
    }
}

#[component]
fn OrderForm(o: OrderView) -> impl IntoView {
    let heading = match o.op.as_str() {
        "subscribe" => tr("订购", "Subscribe to"),
        "cancel" => tr("退订", "Cancel"),
        "change" => tr("变更套餐为", "Change plan to"),
        _ => tr("撤销套餐变更", "Withdraw the change to"),
    };
    view! {
        <section class="card" id="order">
            <h2>{heading} " " {o.name.clone()}</h2>
            <dl class="facts">
                <dt>{tr("业务代码", "Code")}</dt><dd>{o.code.clone()}</dd>
                <dt>{tr("月费", "Monthly fee")}</dt><dd>{o.fee.to_string()}</dd>
                <dt>{tr("本次扣费", "Charged now")}</dt><dd id="charge-now">{o.charge_now.to_string()}</dd>
            </dl>
            <p class="muted">{o.description.clone()}</p>
            <p class="alert warn" id="charging-rule">{tr("资费规则:", "Charging rule: ")} {o.rule.clone()}</p>
            <SecondFactorGate>
                <ConfirmOrder code=o.code.clone() op=o.op.clone() />
            </SecondFactorGate>
            <p><a href="/products">{tr("返回", "Back")}</a></p>
        </section>
    }
}

#[component]
fn ConfirmOrder(code: String, op: String) -> impl IntoView {
    let confirm = ServerAction::<ChangeProduct>::new();
    view! {
            <ActionForm action=confirm attr:id="confirm-product-form">
                <CsrfField />
                <input type="hidden" name="code" value=code />
                <input type="hidden" name="op" value=op />
                <ActionError value=confirm.value() />
                <button type="submit" class="primary">{tr("确认办理", "Confirm")}</button>
            </ActionForm>
    }
}
