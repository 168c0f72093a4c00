//! Shared by the gateway's end-to-end and interoperability tests: a small command handler over
//! the real service layer (the product's command set is tested on its own), link settings
//! that make faults quick to recover from, and waiting helpers.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use app::domain::{Msisdn, ProductCode};
use app::service::prompts::PendingAction;
use app::Hall;
use sms_gateway::runtime::CommandHandler;
use sms_gateway::smpp::EsmeConfig;

pub const WAIT: Duration = Duration::from_secs(10);
pub const SUBSCRIBER: &str = "13800138000";
pub const SHORT_CODE: &str = "10086";
pub const PROMPT_MARK: &str = "回复“是”确认";
pub const SUBSCRIBED: &str = "已为您开通";
pub const HELP: &str = "短信营业厅:发送CXYE查询余额";

/// A Chinese text of `n` characters.
pub fn chinese(n: usize) -> String {
    "尊敬的客户您好您本月已使用通话分钟国内流量剩余余额为元感谢使用中国移动"
        .chars()
        .cycle()
        .take(n)
        .collect()
}

/// - `CXYE` → the balance; `KTEDU10` → a 二次确认 prompt; `是` → confirms;
/// - `LONG` → 300 Chinese characters; `QUIET` → no reply; `ECHO…` → `收到ECHO…`;
/// - `BOOM` → panics the first time, then answers `恢复`; anything else → short help.
#[derive(Default)]
pub struct TestCommands {
    pub boomed: AtomicBool,
}

#[async_trait::async_trait]
impl CommandHandler for TestCommands {
    async fn handle(&self, hall: &Hall, source: &str, text: &str) -> Option<String> {
        let m = Msisdn::parse(source).ok()?;
        let text = text.trim();
        Some(match text {
            "CXYE" => match hall.balance(&m).await {
                Ok(b) => format!("您的余额为{}", b.total().yuan_text()),
                Err(e) => e.zh(),
            },
            "KTEDU10" => {
                let edu10 = PendingAction::Subscribe(ProductCode::parse("EDU10").unwrap());
                match hall.ask_confirmation(&m, edu10).await {
                    Ok(p) => format!(
                        "您将开通{},{}请在{}分钟内{PROMPT_MARK}。",
                        p.name_zh, p.rule_zh, p.valid_minutes
                    ),
                    Err(e) => e.zh(),
                }
            }
            "是" => match hall.confirm(&m).await {
                Ok(_) => format!("{SUBSCRIBED}校园 WLAN 10 元包。"),
                Err(e) => e.zh(),
            },
            "LONG" => chinese(300),
            "QUIET" => return None,
            "BOOM" => {
                if !self.boomed.swap(true, Ordering::SeqCst) {
                    panic!("a command handler bug");
                }
                "恢复".to_owned()
            }
            t if t.starts_with("ECHO") => format!("收到{t}"),
            _ => HELP.to_owned(),
        })
    }
}

/// Quick reconnects and short waits, so that faults recover within a test's patience.
pub fn esme_config(port: u16, system_id: &str, password: &str) -> EsmeConfig {
    let mut c = EsmeConfig::new("127.0.0.1", port, system_id, password);
    c.enquire_interval = Duration::from_millis(500);
    c.response_timeout = Duration::from_secs(2);
    c.backoff_initial = Duration::from_millis(20);
    c.backoff_max = Duration::from_millis(200);
    c.throttle_backoff = Duration::from_millis(10);
    c.link_wait = Duration::from_secs(5);
    c.unbind_timeout = Duration::from_secs(2);
    c
}

/// Polls `cond` every 10 ms until it holds; false if `WAIT` ran out.
pub async fn eventually<F, Fut>(mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if cond().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
