//! The fixed demo data of SPEC §8, which documentation and tests rely on. A year of history is
//! replayed through the real service functions under a moving clock, so every bill, ledger
//! entry, points lot and SMS is what the product itself would have produced; the last step
//! brings balances and points to the documented figures with ordinary ledger and points entries.
use std::sync::Arc;

use chrono::Duration;

use crate::clock::ManualClock;
use crate::demo::history::{month_of_usage, UsageProfile};
use crate::domain::{Brand, Fen, Msisdn, Period, ProductCode, Status, Tier};
use crate::error::{Error, Result};
use crate::hall::Hall;
use crate::service::staff::{NewStaff, Role};
use crate::service::subscribers::NewSubscriber;
#[cfg(test)]
use sqlx::Row;

pub struct DemoSubscriber {
    pub msisdn: &'static str,
    pub password: &'static str,
    pub name: &'static str,
    pub id_card: &'static str,
    pub brand: Brand,
    pub plan: &'static str,
    pub add_ons: &'static [&'static str],
    /// Monthly online top-up, in yuan (0: none, so the balance runs down).
    pub monthly_top_up: i64,
    pub usage: UsageProfile,
    pub balance: Fen,
    pub points: i64,
}

const OFFICE: UsageProfile = UsageProfile {
    calls: 160,
    call_secs: 150,
    sms: 60,
    data_sessions: 90,
    data_kb: 120_000,
    wlan_sessions: 0,
};
const STUDENT: UsageProfile = UsageProfile {
    calls: 25,
    call_secs: 90,
    sms: 40,
    data_sessions: 80,
    data_kb: 40_000,
    wlan_sessions: 35,
};
const LIGHT: UsageProfile = UsageProfile {
    calls: 30,
    call_secs: 80,
    sms: 15,
    data_sessions: 15,
    data_kb: 20_000,
    wlan_sessions: 0,
};
const HEAVY: UsageProfile = UsageProfile {
    calls: 420,
    call_secs: 240,
    sms: 150,
    data_sessions: 200,
    data_kb: 500_000,
    wlan_sessions: 0,
};

pub const SUBSCRIBERS: [DemoSubscriber; 5] = [
    DemoSubscriber {
        msisdn: "13800138000",
        password: "147258",
        name: "张伟",
        id_card: "110101198503071234",
        brand: Brand::GoTone,
        plan: "GT88",
        // 金卡 whatever the month: 88 + 30 + 10 + 5 = 133 元 of monthly fees alone bill
        // 1,596 元 a year (≥ 1,500), before the usage, which is random by month.
        add_ons: &["LL30", "LL10", "JTCL"],
        monthly_top_up: 200,
        usage: OFFICE,
        balance: Fen::yuan(120),
        points: 5000,
    },
    DemoSubscriber {
        msisdn: "13900139000",
        password: "369258",
        name: "李娜",
        id_card: "320102200309154321",
        brand: Brand::MZone,
        plan: "DG18",
        add_ons: &["EDU10"],
        monthly_top_up: 30,
        usage: STUDENT,
        balance: Fen::yuan(35),
        points: 800,
    },
    DemoSubscriber {
        msisdn: "15000150000",
        password: "258147",
        name: "王芳",
        id_card: "440106196708214567",
        brand: Brand::Easyown,
        plan: "SZX19",
        add_ons: &[],
        monthly_top_up: 20,
        usage: LIGHT,
        balance: Fen::new(320),
        points: 1800,
    },
    DemoSubscriber {
        msisdn: "18800188000",
        password: "951753",
        name: "刘强",
        id_card: "310104197911302468",
        brand: Brand::GoTone,
        plan: "GT388",
        add_ons: &["LL30", "JTCL"],
        monthly_top_up: 500,
        usage: HEAVY,
        balance: Fen::yuan(860),
        points: 12000,
    },
    DemoSubscriber {
        msisdn: "13700137000",
        password: "753951",
        name: "陈静",
        id_card: "510107199212127890",
        brand: Brand::Easyown,
        plan: "SZX8",
        add_ons: &[],
        monthly_top_up: 0,
        usage: LIGHT,
        balance: Fen::new(-1200),
        points: 300,
    },
];

pub struct DemoStaff {
    pub username: &'static str,
    pub password: &'static str,
    pub display_name: &'static str,
    pub role: Role,
    pub msisdn: &'static str,
}

pub const TOTP_SECRET: &str = "JBSWY3DPEHPK3PXP";

pub const STAFF: [DemoStaff; 3] = [
    DemoStaff {
        username: "agent01",
        password: "Agent#2026",
        display_name: "客服 赵敏",
        role: Role::Agent,
        msisdn: "13600136001",
    },
    DemoStaff {
        username: "supervisor01",
        password: "Super#2026",
        display_name: "值班长 孙磊",
        role: Role::Supervisor,
        msisdn: "13600136002",
    },
    DemoStaff {
        username: "admin01",
        password: "Admin#2026",
        display_name: "管理员 周洁",
        role: Role::Admin,
        msisdn: "13600136003",
    },
];

/// Demo recharge cards: serials 26000000000000001…5, PINs 100000000000000001…5, ¥50 each.
pub fn demo_cards() -> impl Iterator<Item = (String, String)> {
    (1..=5).map(|i| {
        (
            format!("260000000000000{i:02}"),
            format!("1000000000000000{i:02}"),
        )
    })
}

fn m(s: &str) -> Msisdn {
    Msisdn::parse(s).expect("demo numbers are valid")
}

fn code(s: &str) -> ProductCode {
    ProductCode::parse(s).expect("demo product codes are valid")
}

/// Creates the fixed demo data unless it is there already. Returns whether it created it.
pub async fn seed_demo(hall: &Hall) -> Result<bool> {
    if hall.is_subscriber(&m(SUBSCRIBERS[0].msisdn)).await? {
        return Ok(false);
    }
    let now = hall.now();
    let current = Period::containing(now);
    // Thirteen months back: twelve whole billed months before this one feed the tiers.
    let first = current.back(13);
    let clock = ManualClock::at(first.start() + Duration::hours(34));
    let h = hall.with_clock(Arc::new(clock.clone()));

    for s in &SUBSCRIBERS {
        h.register_subscriber(NewSubscriber {
            msisdn: m(s.msisdn),
            name: s.name.into(),
            id_card: s.id_card.into(),
            brand: s.brand,
            plan: code(s.plan),
            initial_password: s.password.into(),
            password_changed: true,
            tier: Tier::Standard,
        })
        .await?;
        h.adjust_balance(&m(s.msisdn), Fen::yuan(100), "开户预存")
            .await?;
        for a in s.add_ons {
            h.subscribe(&m(s.msisdn), &code(a)).await?;
        }
    }
    // Staff phones are subscribers too; care staff may never act on them.
    for st in &STAFF {
        h.register_subscriber(NewSubscriber {
            msisdn: m(st.msisdn),
            name: st
                .display_name
                .chars()
                .skip_while(|c| *c != ' ')
                .skip(1)
                .collect(),
            id_card: "110101199001010011".into(),
            brand: Brand::GoTone,
            plan: code("GT58"),
            initial_password: "902468".into(),
            password_changed: false,
            tier: Tier::Standard,
        })
        .await?;
        h.bootstrap_staff(NewStaff {
            username: st.username.into(),
            display_name: st.display_name.into(),
            role: st.role,
            password: st.password.into(),
            totp_secret: st.role.needs_totp().then(|| TOTP_SECRET.to_string()),
            msisdn: Some(m(st.msisdn)),
        })
        .await?;
    }
    for (serial, pin) in demo_cards() {
        h.insert_card(&serial, &pin, Fen::yuan(50), "DEMO").await?;
    }

    let mut period = first;
    loop {
        let until = if period == current { now } else { period.end() };
        clock.set(period.start() + Duration::days(4) + Duration::hours(3));
        for s in &SUBSCRIBERS {
            let who = m(s.msisdn);
            if s.monthly_top_up > 0 {
                let order = h
                    .create_payment(&who, &who, Fen::yuan(s.monthly_top_up))
                    .await?;
                h.simulate_payment(&who, &order.id, true).await?;
            }
        }
        // Six months of usage before this one, and this month so far.
        if period >= current.back(6) {
            for s in &SUBSCRIBERS {
                let who = m(s.msisdn);
                if h.profile(&who).await?.status == Status::Active {
                    let records = month_of_usage(&who, period, until, s.usage);
                    h.record_usage(&who, &records).await?;
                }
            }
        }
        if period == current {
            break;
        }
        clock.set(period.end() + Duration::hours(2));
        let report = h.close_month(period).await?;
        if report.failed > 0 {
            return Err(Error::Storage(format!(
                "demo: closing {period} failed for {} subscribers",
                report.failed
            )));
        }
        h.enforce_arrears().await?;
        h.expire_points().await?;
        period = period.next();
    }

    // Bring the documented figures about exactly, at today's time.
    clock.set(now);
    for s in &SUBSCRIBERS {
        let who = m(s.msisdn);
        let diff = s.balance - h.balance(&who).await?.total();
        if diff != Fen::ZERO {
            h.adjust_balance(&who, diff, "历史余额结转").await?;
        }
        let summary = h.points(&who).await?;
        let reference = format!("demo:loyalty:{}", who.as_str());
        if who.as_str() == "15000150000" {
            // Points from last year expire at the end of this one.
            let missing = s.points - summary.expiring_this_year.get();
            if missing > 0 {
                h.grant_points_earned(
                    &who,
                    missing,
                    current.year() - 1,
                    "老客户回馈积分",
                    &reference,
                )
                .await?;
            }
        } else {
            let missing = s.points - summary.balance.get();
            if missing > 0 {
                h.grant_points(&who, missing, "老客户回馈积分", &reference)
                    .await?;
            }
        }
    }
    h.enforce_arrears().await?;
    // What the history queued was delivered at the time; the gateway must not send it now.
    sqlx::query("UPDATE outbox SET status = 'sent', sent_at = created_at WHERE status = 'queued'")
        .execute(h.db().pool())
        .await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::totp;
    use crate::testing::TestHall;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_demo_matches_the_documented_table() {
        let t = TestHall::empty().await;
        assert!(seed_demo(&t).await.unwrap());
        assert!(
            !seed_demo(&t).await.unwrap(),
            "seeding twice creates nothing more"
        );

        let expect = [
            ("13800138000", "147258", Tier::Gold, "GT88", Status::Active),
            (
                "13900139000",
                "369258",
                Tier::Standard,
                "DG18",
                Status::Active,
            ),
            (
                "15000150000",
                "258147",
                Tier::Standard,
                "SZX19",
                Status::Active,
            ),
            (
                "18800188000",
                "951753",
                Tier::Diamond,
                "GT388",
                Status::Active,
            ),
            (
                "13700137000",
                "753951",
                Tier::Standard,
                "SZX8",
                Status::SuspendedArrears,
            ),
        ];
        for ((msisdn, password, tier, plan, status), s) in
            expect.into_iter().zip(SUBSCRIBERS.iter())
        {
            let who = m(msisdn);
            let signed = t.sign_in_with_password(&who, password).await.unwrap();
            assert!(!signed.must_change_password, "{msisdn}");
            let p = t.profile(&who).await.unwrap();
            assert_eq!(
                (p.tier, p.plan.as_str(), p.status),
                (tier, plan, status),
                "{msisdn}"
            );
            assert_eq!(
                t.balance(&who).await.unwrap().total(),
                s.balance,
                "{msisdn}"
            );
            assert_eq!(
                t.bills(&who, 12).await.unwrap().len(),
                12,
                "{msisdn}: a year of bills"
            );
        }
        let points = |s: &'static str| {
            let t = &t;
            async move { t.points(&m(s)).await.unwrap() }
        };
        assert_eq!(points("13800138000").await.balance.get(), 5000);
        assert_eq!(points("13900139000").await.balance.get(), 800);
        assert_eq!(points("15000150000").await.expiring_this_year.get(), 1800);

        // Six months of usage for the showcase number, none before.
        let gold = m("13800138000");
        let now = Period::containing(t.now());
        for back in 1..=6 {
            let page = t
                .detail_records(&gold, now.back(back), None, 1, 10)
                .await
                .unwrap();
            assert!(page.total > 100, "{} has usage", now.back(back));
        }
        assert_eq!(
            t.detail_records(&gold, now.back(7), None, 1, 10)
                .await
                .unwrap()
                .total,
            0
        );
        // The diamond number spends a lot: its high-bill alert went out this month.
        let mtd = t.month_to_date(&m("18800188000")).await.unwrap();
        assert!(mtd.total > Fen::yuan(400));

        // Staff sign in as documented; cards top up.
        let at = t.now().timestamp();
        t.staff_sign_in("agent01", "Agent#2026", None, "127.0.0.1")
            .await
            .unwrap();
        let code = totp::code_at(TOTP_SECRET, at);
        t.staff_sign_in("supervisor01", "Super#2026", Some(&code), "127.0.0.1")
            .await
            .unwrap();
        t.top_up_by_card(&gold, &gold, "100000000000000003", None)
            .await
            .unwrap();
        assert_eq!(t.balance(&gold).await.unwrap().total(), Fen::yuan(170));
        // Nothing from the replayed history waits to be sent.
        let queued: i64 =
            sqlx::query("SELECT COUNT(*) FROM outbox WHERE status = 'queued' AND created_at < $1")
                .bind(t.now_ms() - 1)
                .fetch_one(t.db().pool())
                .await
                .unwrap()
                .try_get::<i64, _>(0)
                .unwrap();
        assert_eq!(queued, 0);
    }

    #[tokio::test]
    async fn generated_subscribers_sign_in_and_keep_the_ledger() {
        let t = TestHall::empty().await;
        let mut seen = 0;
        crate::demo::seed_generated(&t, 250, |d| seen = d)
            .await
            .unwrap();
        crate::demo::seed_generated(&t, 10, |_| {}).await.unwrap();
        assert_eq!(seen, 250);
        let last = m("15200000259");
        t.sign_in_with_password(&last, crate::demo::GENERATED_PASSWORD)
            .await
            .unwrap();
        let sums: (i64, i64) = {
            let r = sqlx::query("SELECT CAST(COALESCE(SUM(cash), 0) AS BIGINT), (SELECT CAST(COALESCE(SUM(cash_delta), 0) AS BIGINT) FROM ledger) FROM accounts")
                .fetch_one(t.db().pool())
                .await
                .unwrap();
            (r.try_get(0).unwrap(), r.try_get(1).unwrap())
        };
        assert_eq!(sums.0, sums.1, "every balance is its ledger's sum");
    }
}
