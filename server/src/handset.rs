//! The built-in SMSC simulator, hosted by `server` when no `OPENHALL_SMSC` is configured, and
//! the `/phone` page: a visitor picks a demo number, texts 10086 through the real SMPP link
//! (simulator → `sms-gateway`) and reads the replies and codes the hall sends back.
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use chrono::Utc;
use serde::Deserialize;
use sms_gateway::runtime::{SIMULATOR_PASSWORD, SIMULATOR_SYSTEM_ID};
use sms_gateway::simulator::{Smsc, SmscConfig, SmscHandle};

use app::config::Config;
use app::domain::{shanghai, Msisdn};

const LOG_LIMIT: usize = 2000;

#[derive(Clone)]
pub struct Handset {
    smsc: SmscHandle,
    log: Arc<Mutex<VecDeque<Entry>>>,
    short_code: String,
}

#[derive(Clone)]
struct Entry {
    number: String,
    direction: &'static str,
    peer: String,
    text: String,
    at: String,
}

fn now_text() -> String {
    Utc::now()
        .with_timezone(&shanghai())
        .format("%H:%M:%S")
        .to_string()
}

impl Handset {
    /// Starts the simulator at `OPENHALL_SIM_ADDR`, or returns None when a real SMSC is
    /// configured (then there is no handset page: texts come from real phones).
    pub async fn start(cfg: &Config) -> Result<Option<Handset>> {
        if cfg.smsc.is_some() {
            return Ok(None);
        }
        let mut sc = SmscConfig::new(SIMULATOR_SYSTEM_ID, SIMULATOR_PASSWORD);
        sc.bind_addr = cfg.sim_addr;
        let smsc = Smsc::start(sc).await.with_context(|| {
            format!(
                "cannot start the SMSC simulator on {} (OPENHALL_SIM_ADDR)",
                cfg.sim_addr
            )
        })?;
        tracing::info!("SMSC simulator listening on {}", smsc.local_addr());
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let mut feed = smsc.subscribe_mt();
        let sink = log.clone();
        tokio::spawn(async move {
            loop {
                match feed.recv().await {
                    Ok(mt) => push(
                        &sink,
                        Entry {
                            number: mt.destination,
                            direction: "in",
                            peer: mt.source,
                            text: mt.text,
                            at: now_text(),
                        },
                    ),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        Ok(Some(Handset {
            smsc,
            log,
            short_code: cfg.short_code.clone(),
        }))
    }
}

fn push(log: &Mutex<VecDeque<Entry>>, e: Entry) {
    let mut l = log.lock().unwrap_or_else(|p| p.into_inner());
    if l.len() >= LOG_LIMIT {
        l.pop_front();
    }
    l.push_back(e);
}

struct Number {
    msisdn: String,
    label: String,
}

struct Line {
    direction: &'static str,
    peer: String,
    text: String,
    at: String,
}

#[derive(Template)]
#[template(path = "phone.html")]
struct PhonePage {
    numbers: Vec<Number>,
    number: String,
    short_code: String,
    bound: bool,
    thread: Vec<Line>,
    error: Option<String>,
    refresh: bool,
    quick: Vec<&'static str>,
}

#[derive(Deserialize)]
pub struct PhoneQuery {
    number: Option<String>,
    error: Option<String>,
    sent: Option<String>,
}

#[derive(Deserialize)]
pub struct PhoneForm {
    number: String,
    text: String,
}

fn demo_numbers() -> Vec<Number> {
    app::demo::SUBSCRIBERS
        .iter()
        .map(|s| Number {
            msisdn: s.msisdn.into(),
            label: format!("{}({})", s.brand.zh(), s.name.chars().next().unwrap_or('*')),
        })
        .collect()
}

pub async fn page(State(h): State<Option<Handset>>, Query(q): Query<PhoneQuery>) -> Response {
    let Some(h) = h else {
        return (
            StatusCode::NOT_FOUND,
            "The handset page exists only with the built-in SMSC simulator.",
        )
            .into_response();
    };
    let number = q
        .number
        .and_then(|n| Msisdn::parse(&n).ok())
        .map(|m| m.to_string())
        .unwrap_or_else(|| app::demo::SUBSCRIBERS[0].msisdn.to_string());
    let thread: Vec<Line> = {
        let l = h.log.lock().unwrap_or_else(|p| p.into_inner());
        l.iter()
            .filter(|e| e.number == number)
            .map(|e| Line {
                direction: e.direction,
                peer: e.peer.clone(),
                text: e.text.clone(),
                at: e.at.clone(),
            })
            .collect()
    };
    let error = match q.error.as_deref() {
        Some("empty") => Some("请输入短信内容。".to_string()),
        Some("unbound") => {
            Some("短信网关未连接到模拟短信中心,短信未发出。请启动 sms-gateway。".to_string())
        }
        Some("refused") => Some("短信网关暂时无法接收,请稍后再试。".to_string()),
        Some(_) => Some("短信未能发出。".to_string()),
        None => None,
    };
    let page = PhonePage {
        numbers: demo_numbers(),
        number,
        short_code: h.short_code.clone(),
        bound: h.smsc.is_bound(),
        thread,
        error,
        refresh: q.sent.is_some(),
        quick: vec![
            "CXYE", "CXZD", "CXTC", "CXLL", "CXJF", "0000", "KTEDU10", "是", "BZ",
        ],
    };
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!("phone page: {e}");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// A form post from another site must not make our demo phone send texts.
fn same_origin(headers: &HeaderMap) -> bool {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    match (
        headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()),
        host,
    ) {
        (Some(origin), Some(host)) => origin.split("://").nth(1) == Some(host),
        (Some(_), None) => false,
        (None, _) => true,
    }
}

pub async fn send(
    State(h): State<Option<Handset>>,
    headers: HeaderMap,
    Form(f): Form<PhoneForm>,
) -> Response {
    let Some(h) = h else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if !same_origin(&headers) {
        return (StatusCode::FORBIDDEN, "cross-site request refused").into_response();
    }
    let Ok(number) = Msisdn::parse(&f.number) else {
        return Redirect::to("/phone?error=number").into_response();
    };
    let text = f.text.trim();
    if text.is_empty() {
        return Redirect::to(&format!("/phone?number={number}&error=empty")).into_response();
    }
    let text: String = text.chars().take(300).collect();
    push(
        &h.log,
        Entry {
            number: number.to_string(),
            direction: "out",
            peer: h.short_code.clone(),
            text: text.clone(),
            at: now_text(),
        },
    );
    let outcome = match h.smsc.send_mo(number.as_str(), &h.short_code, &text).await {
        Ok(0) => format!("/phone?number={number}&sent=1"),
        Ok(_) => format!("/phone?number={number}&error=refused"),
        Err(_) => format!("/phone?number={number}&error=unbound"),
    };
    Redirect::to(&outcome).into_response()
}

pub async fn stylesheet() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../../style/phone.css"),
    )
}
