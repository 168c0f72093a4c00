//! Detail records (详单, SPEC §3): calls, SMS, data and WLAN of the last six months, filtered
//! by month and kind, a page at a time. They need the second factor.
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
use crate::ui::widgets::{ErrorBox, Loading};

#[cfg(feature = "ssr")]
const PAGE_SIZE: i64 = 20;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DetailRow {
    pub time: String,
    pub kind: String,
    pub party: String,
    pub direction: String,
    pub amount: String,
    pub charge: Fen,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DetailsData {
    pub month: String,
    pub kind: String,
    pub months: Vec<String>,
    pub page: i64,
    pub pages: i64,
    pub total: i64,
    pub rows: Vec<DetailRow>,
}

#[server(input = server_fn::codec::GetUrl, endpoint = "details")]
pub async fn load_details(
    month: String,
    kind: String,
    page: i64,
) -> Result<DetailsData, ServerFnError> {
    use crate::domain::Period;
    use crate::service::usage::{UsageKind, UsageType};
    use crate::ui::i18n::Lang;
    let web = web().await?;
    let msisdn = web.subscriber_with_second_factor()?;
    let lang = web.lang;
    let current = Period::containing(web.hall.now());
    let months: Vec<Period> = (0..6).map(|n| current.back(n)).collect();
    let period = if month.is_empty() {
        current
    } else {
        Period::parse(&month).map_err(|e| web.fail(e.into()))?
    };
    if !months.contains(&period) {
        return Err(crate::ui::server::refuse(
            lang,
            http::StatusCode::BAD_REQUEST,
            "只能查询最近六个月的详单。",
            "Detail records cover the last six months.",
        ));
    }
    let filter = match kind.as_str() {
        "" | "all" => None,
        k => Some(UsageType::from_db(k).ok_or_else(|| {
            crate::ui::server::refuse(
                lang,
                http::StatusCode::BAD_REQUEST,
                "未知的详单类型。",
                "Unknown record kind.",
            )
        })?),
    };
    let p = web.check(
        web.hall
            .detail_records(&msisdn, period, filter, page.max(1), PAGE_SIZE)
            .await,
    )?;
    let shanghai = crate::domain::shanghai();
    let dir = |d: &crate::service::usage::Direction| match lang {
        Lang::Zh => d.zh().to_owned(),
        Lang::En => format!("{d:?}").to_lowercase(),
    };
    let rows = p
        .records
        .iter()
        .map(|r| {
            let (party, direction, amount) = match &r.kind {
                UsageKind::Call {
                    other_party,
                    direction,
                    duration_secs,
                } => (
                    other_party.clone(),
                    dir(direction),
                    format!("{}:{:02}", duration_secs / 60, duration_secs % 60),
                ),
                UsageKind::Sms {
                    other_party,
                    direction,
                } => (other_party.clone(), dir(direction), "1".into()),
                UsageKind::Data { volume_kb } => (
                    String::new(),
                    String::new(),
                    format!("{:.1} MB", *volume_kb as f64 / 1024.0),
                ),
                UsageKind::Wlan {
                    duration_secs,
                    volume_kb,
                    on_campus,
                } => (
                    lang.pick(
                        if *on_campus { "校园内" } else { "校园外" },
                        if *on_campus {
                            "on campus"
                        } else {
                            "off campus"
                        },
                    )
                    .to_owned(),
                    String::new(),
                    format!(
                        "{} min · {:.1} MB",
                        duration_secs / 60,
                        *volume_kb as f64 / 1024.0
                    ),
                ),
            };
            let t = r.kind.usage_type();
            DetailRow {
                time: r
                    .started_at
                    .with_timezone(&shanghai)
                    .format("%m-%d %H:%M:%S")
                    .to_string(),
                kind: lang.pick(t.zh(), t.en()).to_owned(),
                party,
                direction,
                amount,
                charge: r.charge,
            }
        })
        .collect();
    Ok(DetailsData {
        month: period.to_string(),
        kind: filter
            .map(|k| k.as_str().to_owned())
            .unwrap_or_else(|| "all".into()),
        months: months.iter().map(|m| m.to_string()).collect(),
        page: p.page,
        pages: p.pages(),
        total: p.total,
        rows,
    })
}

#[component]
pub fn DetailsPage() -> impl IntoView {
    view! {
        <Layout title="详单查询" title_en="Detail records" gated=true>
            <SecondFactorGate>
                <DetailsView />
            </SecondFactorGate>
        </Layout>
    }
}

#[component]
fn DetailsView() -> impl IntoView {
    let query = use_query_map();
    let data = page_resource(
        move || {
            let q = query.read();
            (
                q.get("month").unwrap_or_default(),
                q.get("kind").unwrap_or_default(),
                q.get("page")
                    .and_then(|p| p.parse::<i64>().ok())
                    .unwrap_or(1),
            )
        },
        |(month, kind, page)| load_details(month, kind, page),
    );
    view! {
        <Suspense fallback=Loading>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => view! { <ErrorBox err=e /> <p><a href="/details">{tr("返回本月详单", "Back to this month")}</a></p> }.into_any(),
                    Ok(d) => view! { <DetailsTable d /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn DetailsTable(d: DetailsData) -> impl IntoView {
    let kinds: [(&str, &str, &str); 5] = [
        ("all", "全部", "All"),
        ("call", "通话", "Calls"),
        ("sms", "短信", "SMS"),
        ("data", "上网", "Data"),
        ("wlan", "WLAN", "WLAN"),
    ];
    let link = {
        let (month, kind) = (d.month.clone(), d.kind.clone());
        move |page: i64| format!("/details?month={month}&kind={kind}&page={page}")
    };
    view! {
        <form method="get" action="/details" class="card filters" id="details-filter">
            <label>{tr("月份", "Month")}
                <select name="month">
                    {d.months.iter().map(|m| view! { <option value=m.clone() selected=*m == d.month>{m.clone()}</option> }).collect_view()}
                </select>
            </label>
            <label>{tr("类型", "Kind")}
                <select name="kind">
                    {kinds.iter().map(|(k, zh, en)| view! { <option value=*k selected=*k == d.kind>{tr(zh, en)}</option> }).collect_view()}
                </select>
            </label>
            <button type="submit">{tr("查询", "Show")}</button>
        </form>
        <p class="muted" id="details-count">{tr("共", "")} " " {d.total} " " {tr("条记录", "records")}</p>
        <div class="card table-wrap">
            <table id="details-table">
                <thead><tr>
                    <th>{tr("时间", "Time")}</th><th>{tr("类型", "Kind")}</th><th>{tr("对方号码 / 位置", "Other party")}</th>
                    <th>{tr("方向", "Direction")}</th><th>{tr("时长 / 用量", "Duration / volume")}</th><th class="num">{tr("费用", "Charge")}</th>
                </tr></thead>
                <tbody>
                    {d.rows.into_iter().map(|r| view! {
                        <tr><td>{r.time}</td><td>{r.kind}</td><td>{r.party}</td><td>{r.direction}</td><td>{r.amount}</td><td class="num">{r.charge.to_string()}</td></tr>
                    }).collect_view()}
                </tbody>
            </table>
        </div>
        <nav class="pager" aria-label=tr("分页", "Pages")>
            {(d.page > 1).then(|| view! { <a href=link(d.page - 1) rel="prev">{tr("上一页", "Previous")}</a> })}
            <span>{d.page} " / " {d.pages}</span>
            {(d.page < d.pages).then(|| view! { <a href=link(d.page + 1) rel="next">{tr("下一页", "Next")}</a> })}
        </nav>
    }
}
