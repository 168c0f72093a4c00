//! The frame around every subscriber page: header, navigation, language switch, sign-out and,
//! while customer care acts for the subscriber, the banner.
use leptos::prelude::*;
use leptos_router::hooks::use_location;

use crate::ui::api::{EndActing, SignOut};
use crate::ui::i18n::use_lang;
use crate::ui::widgets::use_session;

const NAV: &[(&str, &str, &str)] = &[
    ("/", "首页", "Home"),
    ("/bills", "账单", "Bills"),
    ("/details", "详单", "Details"),
    ("/topup", "充值", "Top up"),
    ("/products", "业务", "Products"),
    ("/points", "积分", "Points"),
    ("/invoices", "发票", "Invoices"),
    ("/account", "账户", "Account"),
];

/// The language switch: a full page load (`rel=external`) so the server renders the new one.
#[component]
pub fn LangSwitch() -> impl IntoView {
    let lang = use_lang();
    let location = use_location();
    let href = move || {
        let back = format!("{}{}", location.pathname.get(), location.search.get());
        let target = match lang.other() {
            crate::ui::i18n::Lang::En => "en",
            crate::ui::i18n::Lang::Zh => "zh",
        };
        format!("/lang/{target}?back={}", urlencode(&back))
    };
    view! {
        <a class="lang" rel="external" href=href>
            {lang.pick("English", "中文")}
        </a>
    }
}

pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The header: the hall's name, then `who` (the number and its sign-out form, when known)
/// and the language switch.
#[component]
fn TopBar<W: IntoView + 'static>(lang: crate::ui::i18n::Lang, who: Option<W>) -> impl IntoView {
    view! {
        <header class="top">
            <a class="brand" href="/">
                <span class="logo" aria-hidden="true">"◆"</span>
                {lang.pick("网上营业厅", "Online Hall")}
            </a>
            <div class="who">
                {who}
                <LangSwitch />
            </div>
        </header>
    }
}

/// `gated`: the page holds a [`crate::ui::gate::SecondFactorGate`], so the second factor's
/// state is loaded with it (on the other pages it would be fetched, serialized and sent
/// for nothing).
#[component]
pub fn Layout(
    title: &'static str,
    title_en: &'static str,
    #[prop(optional)] gated: bool,
    children: Children,
) -> impl IntoView {
    let session = use_session();
    let location = use_location();
    let sign_out = ServerAction::<SignOut>::new();
    let end_acting = ServerAction::<EndActing>::new();
    // Looked up once: each `tr` walks the owner tree for the language.
    let lang = use_lang();
    let title_text = lang.pick(title, title_en);
    if gated {
        crate::ui::gate::provide_second_factor();
    }
    view! {
        <leptos_meta::Title text=format!("{} · {}", title_text, lang.pick("中国移动网上营业厅", "China Mobile Online Hall")) />
        // One boundary for all the session decides (the banner, the number and its sign-out
        // form): each boundary costs the page an owner, a future and hydration markers. A
        // transition keeps the header while a navigation fetches the session again; before the
        // first fetch (entering the hall from /login) the header shows without the number.
        <Transition fallback=move || view! { <TopBar lang who={ None::<()> } /> }>
            {move || Suspend::new(async move {
                let s = session.await.ok();
                let banner = s.as_ref().and_then(|s| s.banner.clone().map(|b| (b, s.csrf.clone()))).map(|(b, csrf)| view! {
                    <div class="banner" role="alert" id="impersonation-banner">
                        <span>{b}</span>
                        <ActionForm action=end_acting attr:class="inline">
                            <input type="hidden" name="csrf" value=csrf />
                            <button type="submit" id="end-acting">{lang.pick("结束代客操作", "End session")}</button>
                        </ActionForm>
                    </div>
                });
                let who = s.and_then(|s| s.msisdn.map(|m| (m, s.csrf))).map(|(m, csrf)| view! {
                    <span class="msisdn">{m}</span>
                    <ActionForm action=sign_out attr:class="inline">
                        <input type="hidden" name="csrf" value=csrf />
                        <button type="submit" class="link" id="sign-out">{lang.pick("退出", "Sign out")}</button>
                    </ActionForm>
                });
                view! {
                    {banner}
                    <TopBar lang who />
                }
            })}
        </Transition>
        <nav class="main">
            {NAV.iter().map(|(href, zh, en)| {
                let href = *href;
                let current = move || {
                    let p = location.pathname.get();
                    if (href == "/" && p == "/") || (href != "/" && p.starts_with(href)) {
                        Some("page")
                    } else {
                        None
                    }
                };
                view! { <a href=href aria-current=current>{lang.pick(zh, en)}</a> }
            }).collect_view()}
        </nav>
        <main>
            <h1>{title_text}</h1>
            {children()}
        </main>
        <footer>
            <p>{lang.pick("OpenHall 开源网上营业厅 · 客服热线 10086", "OpenHall open online hall · hotline 10086")}</p>
        </footer>
    }
}
