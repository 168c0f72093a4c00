//! The reply kinds: one askama template per kind under `sms-gateway/templates/`, rendered as
//! plain text (`escape = "none"`: an SMS is not HTML). The structs carry figures already
//! formatted (`12.50元`, `2026年11月`); all wording lives in the templates.
use askama::Template;

use app::service::points::RewardKind;

use crate::grammar::Malformed;

/// A label and an amount, e.g. a bill category and its subtotal.
pub struct Line {
    pub label: String,
    pub amount: String,
}

/// `CXYE`.
#[derive(Template)]
#[template(path = "balance.txt", escape = "none")]
pub struct BalanceReply {
    pub total: String,
    /// Shown only when there is gift balance.
    pub gift: Option<String>,
    pub status: &'static str,
    pub in_debt: bool,
}

/// `CXZD`.
#[derive(Template)]
#[template(path = "bill.txt", escape = "none")]
pub struct BillReply {
    pub period: String,
    pub total: String,
    pub items: Vec<Line>,
    /// Last month's bill (`label` is its month), if it has been issued.
    pub last: Option<Line>,
}

pub struct AddOnLine {
    pub name: String,
    pub fee: String,
    pub cancelled: bool,
}

pub struct PendingChangeLine {
    pub name: String,
    pub effective: String,
}

/// `CXTC`.
#[derive(Template)]
#[template(path = "plan.txt", escape = "none")]
pub struct PlanReply {
    pub plan: String,
    pub plan_fee: String,
    pub addons: Vec<AddOnLine>,
    pub change: Option<PendingChangeLine>,
}

pub struct WlanLine {
    pub total: String,
    pub used: String,
    pub left: String,
    pub over: Option<String>,
    pub capped: bool,
}

/// `CXLL`.
#[derive(Template)]
#[template(path = "data.txt", escape = "none")]
pub struct DataReply {
    pub total: String,
    pub used: String,
    pub left: String,
    pub over: Option<String>,
    pub wlan: Option<WlanLine>,
}

/// `CXJF`.
#[derive(Template)]
#[template(path = "points.txt", escape = "none")]
pub struct PointsReply {
    pub balance: i64,
    pub expiring: i64,
    pub year: i32,
    /// A reward to quote as the `DH` example.
    pub example: Option<RewardLine>,
}

pub struct RewardLine {
    pub code: String,
    pub name: String,
    pub cost: i64,
}

/// `KT<code>`: the 二次确认 prompt.
#[derive(Template)]
#[template(path = "subscribe_prompt.txt", escape = "none")]
pub struct SubscribePrompt {
    pub name: String,
    pub code: String,
    pub fee: Option<String>,
    pub rule: String,
    pub minutes: u64,
    pub short_code: String,
}

/// A confirmed `KT<code>`.
#[derive(Template)]
#[template(path = "subscribed.txt", escape = "none")]
pub struct SubscribedReply {
    pub name: String,
    pub code: String,
    /// None when a product cancelled this month was simply kept (nothing charged).
    pub charged: Option<String>,
    pub balance: String,
    pub short_code: String,
}

/// `DH<reward>`: the 二次确认 prompt.
#[derive(Template)]
#[template(path = "redeem_prompt.txt", escape = "none")]
pub struct RedeemPrompt {
    pub name: String,
    pub rule: String,
    pub minutes: u64,
}

/// A confirmed `DH<reward>`.
#[derive(Template)]
#[template(path = "redeemed.txt", escape = "none")]
pub struct RedeemedReply {
    pub name: String,
    pub points: i64,
    pub kind: RewardKind,
    pub credit: String,
    pub data_mb: i64,
    pub left: i64,
}

/// `QX<code>` / `TD<code>`.
#[derive(Template)]
#[template(path = "cancelled.txt", escape = "none")]
pub struct CancelledReply {
    pub name: String,
    /// The last month it runs, e.g. `11`.
    pub month: u32,
}

pub struct MenuLine {
    pub no: usize,
    pub name: String,
    pub fee: String,
}

/// `0000`.
#[derive(Template)]
#[template(path = "menu.txt", escape = "none")]
pub struct MenuReply {
    pub items: Vec<MenuLine>,
}

pub struct Failure {
    pub name: String,
    pub why: String,
}

/// `TD1,3`: one reply for every number.
#[derive(Template)]
#[template(path = "cancelled_by_number.txt", escape = "none")]
pub struct CancelledByNumberReply {
    pub done: Vec<String>,
    pub month: u32,
    /// Items that could not be cancelled.
    pub failed: Vec<Failure>,
    /// Numbers that are not on the menu.
    pub missing: Vec<u8>,
    /// How many items the menu had.
    pub count: usize,
    /// How many items are left to cancel after this command.
    pub left: usize,
}

/// `CZ<PIN>`.
#[derive(Template)]
#[template(path = "topped_up.txt", escape = "none")]
pub struct ToppedUpReply {
    pub amount: String,
    pub gift: Option<String>,
    pub balance: Option<String>,
}

/// `BZ`.
#[derive(Template)]
#[template(path = "help.txt", escape = "none")]
pub struct HelpReply {
    pub short_code: String,
}

/// Anything unrecognised.
#[derive(Template)]
#[template(path = "short_help.txt", escape = "none")]
pub struct ShortHelpReply {
    /// A confirmation prompt is waiting: remind how to answer it.
    pub pending: bool,
}

/// A known command with an argument that cannot be right.
#[derive(Template)]
#[template(path = "malformed.txt", escape = "none")]
pub struct MalformedReply {
    pub what: Malformed,
}

/// Over the per-number limit (said once).
#[derive(Template)]
#[template(path = "too_frequent.txt", escape = "none")]
pub struct TooFrequentReply {
    pub minutes: i64,
}

/// A sender that is not our subscriber (said once).
#[derive(Template)]
#[template(path = "stranger.txt", escape = "none")]
pub struct StrangerReply {
    pub short_code: String,
}

/// What to suggest after an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hint {
    /// Send `0000` to see what can be cancelled.
    Menu,
    /// Check the product code.
    ProductCode,
    /// Check the reward code.
    RewardCode,
}

/// A refusal from the service layer, in its own customer-facing words (`Error::zh`).
#[derive(Template)]
#[template(path = "error.txt", escape = "none")]
pub struct ErrorReply {
    pub message: String,
    pub hint: Option<Hint>,
}

/// The system failed (storage): nothing about the cause.
#[derive(Template)]
#[template(path = "busy.txt", escape = "none")]
pub struct BusyReply;
