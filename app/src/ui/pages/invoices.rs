//! Invoices (SPEC §2, §3): a monthly consumption invoice for each of the last six closed
//! months, as printable HTML. Opening one needs the second factor.
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use serde::{Deserialize, Serialize};

use crate::domain::Fen;
use crate::ui::codec::page_resource;
use crate::ui::gate::SecondFactorGate;
use crate::ui::i18n::tr;
use crate::ui::layout::Layout;
use crate::ui::pages::bills::BillView;
#[cfg(feature = "ssr")]
use crate::ui::server::web;
use crate::ui::widgets::{ErrorBox, Loading};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct InvoiceRow {
    pub period: String,
    pub total: Fen,
}

#[server(input = server_fn::codec::GetUrl, endpoint = "invoices")]
pub async fn invoice_list() -> Result<Vec<InvoiceRow>, ServerFnError> {
    let web = web().await?;
    let msisdn = web.subscriber()?;
    let bills = web.check(web.hall.bills(&msisdn, 6).await)?;
    Ok(bills
        .into_iter()
        .map(|b| InvoiceRow {
            period: b.period.to_string(),
            total: b.total,
        })
        .collect())
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Invoice {
    pub number: String,
    pub name: String,
    pub msisdn: String,
    pub issued: String,
    pub bill: BillView,
}

#[server(input = server_fn::codec::GetUrl, endpoint = "invoice")]
pub async fn load_invoice(period: String) -> Result<Invoice, ServerFnError> {
    use crate::domain::Period;
    let web = web().await?;
    let msisdn = web.subscriber_with_second_factor()?;
    let period = Period::parse(&period).map_err(|e| web.fail(e.into()))?;
    let current = Period::containing(web.hall.now());
    let Some(bill) = web
        .check(web.hall.bill(&msisdn, period).await)?
        .filter(|_| period < current && period >= current.back(6))
    else {
        return Err(crate::ui::server::refuse(
            web.lang,
            http::StatusCode::NOT_FOUND,
            "只能开具最近六个已出账月份的发票。",
            "Invoices are available for the last six closed months.",
        ));
    };
    let profile = web.check(web.hall.profile_as(web.actor(), &msisdn).await)?;
    let view = crate::ui::pages::bills::bill_view(
        web.lang,
        bill.period,
        bill.total,
        true,
        bill.points_earned,
        &bill.items,
        &bill.by_category(),
    );
    Ok(Invoice {
        number: format!(
            "OH{}{}",
            period.to_string().replace('-', ""),
            &msisdn.as_str()[3..]
        ),
        name: profile.name,
        msisdn: msisdn.masked(),
        issued: bill
            .closed_at
            .with_timezone(&crate::domain::shanghai())
            .format("%Y-%m-%d")
            .to_string(),
        bill: view,
    })
}

#[component]
pub fn InvoicesPage() -> impl IntoView {
    let data = page_resource(|| (), |_| invoice_list());
    view! {
        <Layout title="电子发票" title_en="Invoices">
            <p class="muted">{tr("可开具最近六个已出账月份的月结消费发票。查看发票需要短信验证。", "Monthly consumption invoices for the last six closed months. Opening one needs an SMS code.")}</p>
            <Suspense fallback=Loading>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <ErrorBox err=e /> }.into_any(),
                        Ok(rows) if rows.is_empty() => view! { <p>{tr("暂无已出账月份。", "No closed months yet.")}</p> }.into_any(),
                        Ok(rows) => view! {
                            <div class="card table-wrap">
                                <table id="invoice-list">
                                    <thead><tr><th>{tr("账期", "Month")}</th><th class="num">{tr("金额", "Amount")}</th><th></th></tr></thead>
                                    <tbody>
                                        {rows.into_iter().map(|r| view! {
                                            <tr>
                                                <td>{r.period.clone()}</td>
                                                <td class="num">{r.total.to_string()}</td>
                                                <td><a href=format!("/invoices/{}", r.period)>{tr("查看 / 打印", "View / print")}</a></td>
                                            </tr>
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            </div>
                        }.into_any(),
                    }
                })}
            </Suspense>
        </Layout>
    }
}

#[component]
pub fn InvoicePage() -> impl IntoView {
    let params = use_params_map();
    view! {
        <Layout title="发票" title_en="Invoice" gated=true>
            <SecondFactorGate>
                {move || {
                    let period = params.read().get("period").unwrap_or_default();
                    let data = page_resource(move || period.clone(), load_invoice);
                    view! {
                        <Suspense fallback=Loading>
                            {move || Suspend::new(async move {
                                match data.await {
                                    Err(e) => view! { <ErrorBox err=e /> }.into_any(),
                                    Ok(i) => view! { <InvoiceView i /> }.into_any(),
                                }
                            })}
                        </Suspense>
                    }
                }}
            </SecondFactorGate>
        </Layout>
    }
}

#[component]
fn InvoiceView(i: Invoice) -> impl IntoView {
    let print = move |_| {
        #[cfg(feature = "hydrate")]
        {
            let _ = window().print();
        }
    };
    view! {
        <article class="card invoice" id="invoice">
            <h2>{tr("中国移动通信 月结消费发票", "China Mobile monthly consumption invoice")}</h2>
            <dl class="facts">
                <dt>{tr("发票号码", "Invoice no.")}</dt><dd>{i.number.clone()}</dd>
                <dt>{tr("客户名称", "Customer")}</dt><dd>{i.name.clone()}</dd>
                <dt>{tr("号码", "Number")}</dt><dd>{i.msisdn.clone()}</dd>
                <dt>{tr("账期", "Month")}</dt><dd>{i.bill.period.clone()}</dd>
                <dt>{tr("开具日期", "Issued")}</dt><dd>{i.issued.clone()}</dd>
            </dl>
            <div class="table-wrap">
                <table>
                    <thead><tr><th>{tr("项目", "Item")}</th><th class="num">{tr("金额", "Amount")}</th></tr></thead>
                    <tbody>
                        {i.bill.lines.iter().map(|l| view! {
                            <tr><td>{l.category.clone()} " · " {l.item.clone()}</td><td class="num">{l.amount.to_string()}</td></tr>
                        }).collect_view()}
                    </tbody>
                    <tfoot><tr><th>{tr("价税合计", "Total")}</th><td class="num" id="invoice-total">{i.bill.total.to_string()}</td></tr></tfoot>
                </table>
            </div>
            <p class="no-print">
                <button type="button" class="primary" on:click=print>{tr("打印", "Print")}</button>
                " " <span class="muted small">{tr("也可使用浏览器的打印功能。", "Or use your browser's print command.")}</span>
            </p>
        </article>
    }
}
