//! The app layer's errors. Every variant a person can cause has a message in Chinese (`zh`)
//! and English (`Display`); storage failures say nothing about customer data.
use chrono::{DateTime, Utc};

use crate::domain::{shanghai, Fen, Period};

/// Input that does not parse into a domain type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("Not a valid mobile number (11 digits starting 13–19).")]
    Msisdn,
    #[error("Not a valid amount in yuan (at most two decimals).")]
    Amount,
    #[error("Not a valid product code.")]
    ProductCode,
    #[error("Not a valid month (YYYY-MM).")]
    Period,
    #[error("The service password must be exactly six digits.")]
    PasswordFormat,
    #[error("The service password cannot be one digit repeated.")]
    PasswordRepeated,
    #[error("The service password cannot be consecutive digits such as 123456 or 654321.")]
    PasswordSequential,
    #[error("The service password cannot be part of your mobile number.")]
    PasswordInNumber,
    #[error("The verification code is six digits.")]
    SmsCode,
    #[error("A recharge card PIN is 18 digits.")]
    CardPin,
    #[error("A recharge card serial number is 17 digits.")]
    CardSerial,
    #[error("Please give a reason (at least 4 characters).")]
    Reason,
    #[error("The alert threshold must be between ¥0 and ¥100000.")]
    AlertThreshold,
    #[error("Not a valid staff username.")]
    Username,
    #[error("A staff password needs at least 8 characters with letters and digits.")]
    StaffPassword,
    // --- staff (service/staff.rs, service/totp.rs) ----------------------------------------
    #[error("Not a valid authenticator secret (Base32, at least 16 characters).")]
    TotpSecret,
    #[error("Please give a display name (at most 64 characters).")]
    DisplayName,
    #[error("A date is written YYYY-MM-DD.")]
    Date,
    #[error("The two new passwords differ.")]
    PasswordsDiffer,
}

impl Invalid {
    pub fn zh(self) -> &'static str {
        match self {
            Invalid::Msisdn => "手机号码格式不正确(应为 1 开头的 11 位号码)。",
            Invalid::Amount => "金额格式不正确(以元为单位,最多两位小数)。",
            Invalid::ProductCode => "业务代码不正确。",
            Invalid::Period => "月份格式不正确(YYYY-MM)。",
            Invalid::PasswordFormat => "服务密码须为 6 位数字。",
            Invalid::PasswordRepeated => "服务密码不能是同一数字重复。",
            Invalid::PasswordSequential => "服务密码不能是 123456、654321 这样的连续数字。",
            Invalid::PasswordInNumber => "服务密码不能是手机号码中的一段。",
            Invalid::SmsCode => "验证码为 6 位数字。",
            Invalid::CardPin => "充值卡密码为 18 位数字。",
            Invalid::CardSerial => "充值卡序列号为 17 位数字。",
            Invalid::Reason => "请填写原因(至少 4 个字)。",
            Invalid::AlertThreshold => "提醒额度须在 0 至 100000 元之间。",
            Invalid::Username => "工号格式不正确。",
            Invalid::StaffPassword => "员工密码至少 8 位,须包含字母和数字。",
            // staff
            Invalid::TotpSecret => "动态口令密钥格式不正确(Base32,至少 16 个字符)。",
            Invalid::DisplayName => "请填写姓名(最多 64 个字)。",
            Invalid::Date => "日期格式不正确(YYYY-MM-DD)。",
            Invalid::PasswordsDiffer => "两次输入的新密码不一致。",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Invalid(#[from] Invalid),

    // --- signing in -----------------------------------------------------------------------
    #[error("Wrong mobile number or service password.")]
    WrongCredentials,
    #[error("Password sign-in is locked after 5 wrong attempts until {}; sign in with an SMS code instead.", local(.until))]
    PasswordLocked { until: DateTime<Utc> },
    #[error("Please change your initial service password first.")]
    PasswordChangeRequired,
    #[error("The new service password must differ from the current one.")]
    PasswordUnchanged,

    // --- SMS codes ------------------------------------------------------------------------
    #[error("Wrong verification code.")]
    CodeWrong,
    #[error("The verification code has expired or was used up; please request a new one.")]
    CodeExpired,
    #[error("Please wait {retry_after_secs} seconds before requesting another code.")]
    CodeCooldown { retry_after_secs: i64 },
    #[error("Too many codes requested; please try again later.")]
    CodeLimit,

    // --- subscribers ----------------------------------------------------------------------
    #[error("This number is not an OpenHall subscriber.")]
    UnknownSubscriber,
    #[error("The number is suspended; only queries and top-ups are possible.")]
    NotActive,
    #[error("Suspension or resumption is not possible in this state.")]
    StatusUnchanged,

    // --- money ----------------------------------------------------------------------------
    #[error("Insufficient balance: {needed} needed, {available} available.")]
    InsufficientBalance { needed: Fen, available: Fen },
    #[error("The amount must be between {min} and {max}.")]
    AmountOutOfRange { min: Fen, max: Fen },
    #[error("No such payment order.")]
    UnknownPayment,
    #[error("The payment does not match the order.")]
    PaymentMismatch,
    #[error("Wrong recharge card number or PIN.")]
    CardInvalid,
    #[error("This recharge card has already been used.")]
    CardUsed,
    #[error("Card top-up is blocked for today after 5 wrong PINs; please pay online instead.")]
    CardBlockedToday,

    // --- products -------------------------------------------------------------------------
    #[error("No such product.")]
    UnknownProduct,
    #[error("That product cannot be ordered this way.")]
    WrongProductKind,
    #[error("You already have this product.")]
    AlreadySubscribed,
    #[error("You do not have this product.")]
    NotSubscribed,
    #[error("It is already cancelled; it ends at the end of this month.")]
    AlreadyCancelled,
    #[error("You are already on this plan.")]
    SamePlan,
    #[error("A plan change is already pending; withdraw it first.")]
    PlanChangePending,
    #[error("The plan can be changed only once a month.")]
    PlanChangeLimit,
    #[error("There is no pending plan change.")]
    NoPendingPlanChange,
    #[error("There is nothing waiting for your confirmation, or it has expired.")]
    NoPendingConfirmation,

    // --- points ---------------------------------------------------------------------------
    #[error("No such reward.")]
    UnknownReward,
    #[error("Not enough points: {needed} needed, {available} available.")]
    InsufficientPoints { needed: i64, available: i64 },

    // --- staff ----------------------------------------------------------------------------
    #[error("Wrong username, password or authenticator code.")]
    StaffWrongCredentials,
    #[error("This action is not allowed for your role.")]
    Forbidden,
    #[error("An impersonation session is already active; end it first.")]
    ImpersonationActive,
    #[error("Staff accounts cannot be impersonated.")]
    ImpersonationOfStaff,
    #[error("The impersonation session has ended or expired.")]
    ImpersonationOver,
    #[error("Customer care cannot change the service password or sign-in settings.")]
    NotWhileActing,
    #[error("The username is taken.")]
    UsernameTaken,

    // --- top-up (service/topup.rs, service/history.rs) ----------------------------------------
    #[error("No such top-up record.")]
    UnknownReceipt,
    // --- billing: usage, rating, bills, month close, points (service/usage, billing,
    // month_close, points) ---------------------------------------------------------------
    #[error("{period} has not ended yet; it can be closed from {}.", local(.closes_from))]
    MonthNotOver {
        period: Period,
        closes_from: DateTime<Utc>,
    },
    #[error("Invalid usage record ({0}).")]
    InvalidUsage(String),
    #[error("The number of points must be positive.")]
    InvalidPoints,
    #[error("This request was already used for a different redemption.")]
    RedemptionConflict,
    // --- staff accounts (service/staff.rs) ------------------------------------------------
    #[error("No such staff member.")]
    UnknownStaff,

    // --- infrastructure -------------------------------------------------------------------
    #[error("Storage error; please try again later.")]
    Storage(String),
}

fn local(at: &DateTime<Utc>) -> String {
    at.with_timezone(&shanghai())
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

impl Error {
    pub fn zh(&self) -> String {
        match self {
            Error::Invalid(i) => i.zh().into(),
            Error::WrongCredentials => "手机号码或服务密码错误。".into(),
            Error::PasswordLocked { until } => {
                format!(
                    "服务密码连续输错 5 次,密码登录已锁定至 {},请使用短信验证码登录。",
                    local(until)
                )
            }
            Error::PasswordChangeRequired => "请先修改初始服务密码。".into(),
            Error::PasswordUnchanged => "新服务密码不能与原密码相同。".into(),
            Error::CodeWrong => "验证码错误。".into(),
            Error::CodeExpired => "验证码已失效,请重新获取。".into(),
            Error::CodeCooldown { retry_after_secs } => {
                format!("请 {retry_after_secs} 秒后再获取验证码。")
            }
            Error::CodeLimit => "获取验证码过于频繁,请稍后再试。".into(),
            Error::UnknownSubscriber => "该号码不是本网用户。".into(),
            Error::NotActive => "您的号码处于停机状态,仅可查询和充值。".into(),
            Error::StatusUnchanged => "当前状态下无法办理停开机。".into(),
            Error::InsufficientBalance { needed, available } => {
                format!("余额不足:需要 {needed},可用 {available}。")
            }
            Error::AmountOutOfRange { min, max } => format!("金额须在 {min} 至 {max} 之间。"),
            Error::UnknownPayment => "支付订单不存在。".into(),
            Error::PaymentMismatch => "支付信息与订单不符。".into(),
            Error::CardInvalid => "充值卡卡号或密码错误。".into(),
            Error::CardUsed => "该充值卡已被使用。".into(),
            Error::CardBlockedToday => {
                "今日充值卡密码错误已达 5 次,今日不能再用充值卡充值,请使用在线支付。".into()
            }
            Error::UnknownProduct => "没有这个业务。".into(),
            Error::WrongProductKind => "该业务不能这样办理。".into(),
            Error::AlreadySubscribed => "您已订购该业务。".into(),
            Error::NotSubscribed => "您未订购该业务。".into(),
            Error::AlreadyCancelled => "该业务已退订,将于本月底失效。".into(),
            Error::SamePlan => "您已经是该套餐。".into(),
            Error::PlanChangePending => "已有待生效的套餐变更,请先撤销。".into(),
            Error::PlanChangeLimit => "每月只能变更一次套餐。".into(),
            Error::NoPendingPlanChange => "没有待生效的套餐变更。".into(),
            Error::NoPendingConfirmation => "没有待确认的业务,或已超时。".into(),
            Error::UnknownReward => "没有这个兑换项目。".into(),
            Error::InsufficientPoints { needed, available } => {
                format!("积分不足:需要 {needed} 分,可用 {available} 分。")
            }
            Error::StaffWrongCredentials => "工号、密码或动态口令错误。".into(),
            Error::Forbidden => "您的角色无权进行此操作。".into(),
            Error::ImpersonationActive => "已有进行中的代客操作,请先结束。".into(),
            Error::ImpersonationOfStaff => "不能代员工账号操作。".into(),
            Error::ImpersonationOver => "代客操作已结束或超时。".into(),
            Error::NotWhileActing => "代客操作时不能修改服务密码或登录设置。".into(),
            Error::UsernameTaken => "该工号已存在。".into(),
            // top-up (service/topup.rs, service/history.rs)
            Error::UnknownReceipt => "没有这笔充值记录。".into(),
            // billing
            Error::MonthNotOver {
                period,
                closes_from,
            } => format!(
                "{}尚未结束,{} 起才能月结。",
                period.zh(),
                local(closes_from)
            ),
            Error::InvalidUsage(_) => "话单数据不正确。".into(),
            Error::InvalidPoints => "积分数量须为正数。".into(),
            Error::RedemptionConflict => "该兑换请求已用于另一笔兑换。".into(),
            // staff accounts
            Error::UnknownStaff => "没有这个员工账号。".into(),
            Error::Storage(_) => "系统繁忙,请稍后再试。".into(),
        }
    }

    /// For operators and logs, never for subscribers: the cause behind a storage failure, or the
    /// user-facing message otherwise.
    pub fn operator_detail(&self) -> String {
        match self {
            Error::Storage(detail) => detail.clone(),
            other => other.to_string(),
        }
    }

    /// Whether the person can fix it (a 4xx) rather than the system failing (a 5xx).
    pub fn is_user_error(&self) -> bool {
        !matches!(self, Error::Storage(_))
    }
}

#[cfg(feature = "service")]
impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        tracing::error!(error = %e, "database error");
        Error::Storage(e.to_string())
    }
}

#[cfg(feature = "service")]
impl From<redis::RedisError> for Error {
    fn from(e: redis::RedisError) -> Self {
        tracing::error!(error = %e, "redis error");
        Error::Storage(e.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// True when a database error is a unique-key violation: the database saying "this already
/// happened", which several rules (single use, idempotency) rely on.
#[cfg(feature = "service")]
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}
