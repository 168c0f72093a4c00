//! The queries: `CXYE`, `CXZD`, `CXTC`, `CXLL`, `CXJF`. A suspended number may use all of them.
use app::domain::{Fen, Msisdn, Period};
use app::service::rating::{Meter, KB_PER_GB, KB_PER_MB};
use app::{Error, Hall, Result};

use super::render;
use super::replies::{
    AddOnLine, BalanceReply, BillReply, DataReply, Line, PendingChangeLine, PlanReply, PointsReply,
    RewardLine, WlanLine,
};

pub(super) async fn balance(hall: &Hall, m: &Msisdn) -> Result<String> {
    let (balance, status) = hall.balance_and_status(m).await?;
    let total = balance.total();
    Ok(render(&BalanceReply {
        total: total.yuan_text(),
        gift: (balance.gift != Fen::ZERO).then(|| balance.gift.yuan_text()),
        status: status.zh(),
        in_debt: total.is_negative(),
    }))
}

pub(super) async fn bill(hall: &Hall, m: &Msisdn) -> Result<String> {
    let mtd = hall.month_to_date(m).await?;
    let last = hall.bill(m, mtd.period.prev()).await?;
    Ok(render(&BillReply {
        period: mtd.period.zh(),
        total: mtd.total.yuan_text(),
        items: mtd
            .by_category
            .iter()
            .map(|c| Line {
                label: c.category.zh().to_owned(),
                amount: c.amount.yuan_text(),
            })
            .collect(),
        last: last.map(|b| Line {
            label: b.period.zh(),
            amount: b.total.yuan_text(),
        }),
    }))
}

/// A product's Chinese name, or its code if it is no longer in the catalogue (a subscriber may
/// still be on a plan that is off sale).
async fn product_name(hall: &Hall, code: &app::domain::ProductCode) -> Result<(String, Fen)> {
    match hall.product(code).await {
        Ok(p) => Ok((p.name_zh, p.monthly_fee)),
        Err(Error::UnknownProduct) => Ok((code.to_string(), Fen::ZERO)),
        Err(e) => Err(e),
    }
}

pub(super) async fn plan(hall: &Hall, m: &Msisdn) -> Result<String> {
    let profile = hall.profile(m).await?;
    let (plan, plan_fee) = product_name(hall, &profile.plan).await?;
    let addons = hall
        .subscriptions(m)
        .await?
        .into_iter()
        .map(|s| AddOnLine {
            name: s.product.name_zh,
            fee: s.product.monthly_fee.yuan_text(),
            cancelled: s.end_period.is_some(),
        })
        .collect();
    let change = match hall.pending_plan_change(m).await? {
        Some(c) => Some(PendingChangeLine {
            name: product_name(hall, &c.to).await?.0,
            effective: c.effective.zh(),
        }),
        None => None,
    };
    Ok(render(&PlanReply {
        plan,
        plan_fee: plan_fee.yuan_text(),
        addons,
        change,
    }))
}

pub(super) async fn data(hall: &Hall, m: &Msisdn) -> Result<String> {
    let r = hall.usage_this_month(m).await?;
    let over = |meter: &Meter, text: fn(i64) -> String| (meter.over > 0).then(|| text(meter.over));
    // WLAN only for those who have it (a campus pack) or used it anyway.
    let wlan = (r.wlan.allowance > 0 || r.wlan.used > 0).then(|| WlanLine {
        total: minutes_text(r.wlan.allowance),
        used: minutes_text(r.wlan.used),
        left: minutes_text(r.wlan.remaining()),
        over: over(&r.wlan, minutes_text),
        capped: r.wlan_cap_reached,
    });
    Ok(render(&DataReply {
        total: volume_text(r.data.allowance),
        used: volume_text(r.data.used),
        left: volume_text(r.data.remaining()),
        over: over(&r.data, volume_text),
        wlan,
    }))
}

pub(super) async fn points(hall: &Hall, m: &Msisdn) -> Result<String> {
    let p = hall.points(m).await?;
    let example = hall
        .rewards()
        .await?
        .into_iter()
        .next()
        .map(|r| RewardLine {
            code: r.code,
            name: r.name_zh,
            cost: r.cost.get(),
        });
    Ok(render(&PointsReply {
        balance: p.balance.get(),
        expiring: p.expiring_this_year.get(),
        year: Period::containing(hall.now()).year(),
        example,
    }))
}

/// A data volume in KB as people read it: `10GB`, `1.25GB`, `512MB`, `0.5MB` (at most two
/// decimals, rounded half up, trailing zeros dropped).
pub(crate) fn volume_text(kb: i64) -> String {
    let kb = kb.max(0);
    let (unit, per) = if kb >= KB_PER_GB {
        ("GB", KB_PER_GB)
    } else {
        ("MB", KB_PER_MB)
    };
    let hundredths = (kb * 100 + per / 2) / per;
    let whole = hundredths / 100;
    let frac = hundredths % 100;
    let frac = match (frac, frac % 10) {
        (0, _) => String::new(),
        (f, 0) => format!(".{}", f / 10),
        (f, _) => format!(".{f:02}"),
    };
    format!("{whole}{frac}{unit}")
}

/// Minutes as `40小时`, `1小时5分钟`, `35分钟`.
pub(crate) fn minutes_text(minutes: i64) -> String {
    let minutes = minutes.max(0);
    match (minutes / 60, minutes % 60) {
        (0, m) => format!("{m}分钟"),
        (h, 0) => format!("{h}小时"),
        (h, m) => format!("{h}小时{m}分钟"),
    }
}
