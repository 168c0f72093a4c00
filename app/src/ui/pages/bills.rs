//! Bills (SPEC §3): the last six closed months and this month so far, itemised, with a chart.
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::domain::Fen;
use crate::ui::codec::page_resource;
use crate::ui::i18n::tr;
use crate::ui::layout::Layout;
#[cfg(feature = "ssr")]
use crate::ui::server::web;
use crate::ui::widgets::{use_refresh, ErrorBox, Loading};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BillLine {
    pub category: String,
    pub item: String,
    pub amount: Fen,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BillView {
    pub period: String,
    pub total: Fen,
    pub closed: bool,
    pub points_earned: i64,
    pub subtotals: Vec<(String, Fen)>,
    pub lines: Vec<BillLine>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BillsData {
    /// This month so far first, then closed months newest first.
    pub bills: Vec<BillView>,
}

#[cfg(feature = "ssr")]
pub(crate) fn bill_view(
    lang: crate::ui::i18n::Lang,
    period: crate::domain::Period,
    total: Fen,
    closed: bool,
    points_earned: i64,
    items: &[crate::service::billing::BillItem],
    subtotals: &[crate::service::billing::CategoryTotal],
) -> BillView {
    BillView {
        period: period.to_string(),
        total,
        closed,
        points_earned,
        subtotals: subtotals
            .iter()
            .filter(|c| c.amount != Fen::ZERO)
            .map(|c| {
                (
                    lang.pick(c.category.zh(), c.category.en()).to_owned(),
                    c.amount,
                )
            })
            .collect(),
        lines: items
            .iter()
            .map(|i| BillLine {
                category: lang.pick(i.category.zh(), i.category.en()).to_owned(),
                item: i.item.clone(),
                amount: i.amount,
            })
            .collect(),
    }
}

#[server(input = server_fn::codec::GetUrl, endpoint = "bills")]
pub async fn load_bills() -> Result<BillsData, ServerFnError> {
    let web = web().await?;
    let msisdn = web.subscriber()?;
    let lang = web.lang;
    let mtd = web.check(web.hall.month_to_date(&msisdn).await)?;
    let closed = web.check(web.hall.bills(&msisdn, 6).await)?;
    let mut bills = vec![bill_view(
        lang,
        mtd.period,
        mtd.total,
        false,
        0,
        &mtd.items,
        &mtd.by_category,
    )];
    bills.extend(closed.iter().map(|b| {
        bill_view(
            lang,
            b.period,
            b.total,
            true,
            b.points_earned,
            &b.items,
            &b.by_category(),
        )
    }));
    Ok(BillsData { bills })
}

#[component]
pub fn BillsPage() -> impl IntoView {
    let refresh = use_refresh();
    let data = page_resource(move || refresh.get(), |_| load_bills());
    view! {
        <Layout title="账单查询" title_en="Bills">
            <Suspense fallback=Loading>
                {move || Suspend::new(async move {
                    match data.await {
                        Err(e) => view! { <ErrorBox err=e /> }.into_any(),
                        Ok(d) => view! {
                            <section class="card">
                                <h2>{tr("近六个月消费", "Spending, last six months")}</h2>
                                <SpendingChart bills=d.bills.clone() />
                            </section>
                            {d.bills.into_iter().map(|b| view! { <BillCard b /> }).collect_view()}
                        }.into_any(),
                    }
                })}
            </Suspense>
        </Layout>
    }
}

/// Bars for the closed months, oldest left, and a lighter bar for this month so far.
#[component]
fn SpendingChart(bills: Vec<BillView>) -> impl IntoView {
    let mut bars: Vec<BillView> = bills.into_iter().rev().collect();
    bars.truncate(7);
    let max = bars
        .iter()
        .map(|b| b.total.get().max(0))
        .max()
        .unwrap_or(0)
        .max(1);
    let (w, h, top, bottom) = (60.0_f64, 200.0_f64, 20.0_f64, 36.0_f64);
    let width = w * bars.len().max(1) as f64;
    let plot = h - top - bottom;
    let summary = bars
        .iter()
        .map(|b| format!("{} {}", b.period, b.total))
        .collect::<Vec<_>>()
        .join(", ");
    view! {
        <svg class="chart" id="spending-chart" viewBox=format!("0 0 {width} {h}") role="img" aria-label=summary>
            {bars.into_iter().enumerate().map(|(i, b)| {
                let value = b.total.get().max(0) as f64;
                let bh = (value / max as f64 * plot).max(1.0);
                let x = i as f64 * w + 12.0;
                let y = top + plot - bh;
                let class = if b.closed { "bar" } else { "bar current" };
                view! {
                    <g>
                        <rect class=class x=x y=y width=w - 24.0 height=bh></rect>
                        <text x=x + (w - 24.0) / 2.0 y=y - 4.0 text-anchor="middle">{b.total.plain()}</text>
                        <text x=x + (w - 24.0) / 2.0 y=h - bottom + 16.0 text-anchor="middle">{b.period.clone()}</text>
                    </g>
                }
            }).collect_view()}
        </svg>
        <p class="muted small">{tr("浅色为本月截至目前的费用。", "The light bar is this month so far.")}</p>
    }
}

#[component]
fn BillCard(b: BillView) -> impl IntoView {
    let id = format!("bill-{}", b.period);
    view! {
        <section class="card bill" id=id>
            <h2>
                {b.period.clone()} " "
                {if b.closed { tr("月账单", "bill") } else { tr("(本月截至目前)", "(this month so far)") }}
            </h2>
            <p class="big">{b.total.to_string()}</p>
            {b.closed.then(|| view! { <p class="muted small">{tr("本月积分", "Points earned")} " " {b.points_earned}</p> })}
            <div class="table-wrap">
                <table>
                    <thead><tr><th>{tr("类别", "Category")}</th><th>{tr("项目", "Item")}</th><th class="num">{tr("金额", "Amount")}</th></tr></thead>
                    <tbody>
                        {b.lines.into_iter().map(|l| view! {
                            <tr><td>{l.category}</td><td>{l.item}</td><td class="num">{l.amount.to_string()}</td></tr>
                        }).collect_view()}
                    </tbody>
                    <tfoot>
                        {b.subtotals.into_iter().map(|(c, a)| view! {
                            <tr><th colspan="2">{c}</th><td class="num">{a.to_string()}</td></tr>
                        }).collect_view()}
                        <tr><th colspan="2">{tr("合计", "Total")}</th><td class="num">{b.total.to_string()}</td></tr>
                    </tfoot>
                </table>
            </div>
        </section>
    }
}
