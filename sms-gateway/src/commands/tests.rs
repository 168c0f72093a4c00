//! The handler against a real service layer (`TestHall`: SQLite or PostgreSQL + Redis, per the
//! environment): every SPEC §4 command gets a sensible reply, and the rules around them hold.
use app::domain::{Fen, Msisdn, ProductCode};
use app::service::usage::{UsageKind, UsageRecord};
use app::testing::TestHall;
use app::Error;
use chrono::Duration;

use super::handle_mo;
use super::queries::{minutes_text, volume_text};

const ME: &str = "13800138000";
const SERIAL: &str = "26000000000000001";
const PIN: &str = "100000000000000001";

async fn say(t: &TestHall, text: &str) -> String {
    handle_mo(&t.hall, ME, text)
        .await
        .unwrap_or_else(|| panic!("no reply to {text:?}"))
}

fn code(c: &str) -> ProductCode {
    ProductCode::parse(c).unwrap()
}

fn assert_has(reply: &str, wanted: &[&str], context: &str) {
    for w in wanted {
        assert!(
            reply.contains(w),
            "reply to {context:?} lacks {w:?}: {reply}"
        );
    }
}

/// An SMS is sent in parts of 67 UCS-2 units: a reply should take a few at most.
fn assert_short(reply: &str, context: &str) {
    let units = reply.encode_utf16().count();
    assert!(
        units <= 3 * 67,
        "reply to {context:?} is {units} units: {reply}"
    );
}

async fn data_used(t: &TestHall, m: &Msisdn, kb: i64) {
    let rec = UsageRecord {
        reference: format!("cdr-{kb}"),
        started_at: t.now() - Duration::hours(1),
        kind: UsageKind::Data { volume_kb: kb },
    };
    t.record_usage(m, &[rec]).await.unwrap();
}

/// A subscriber with 120元 cash, 10元 gift (from an online ¥100 top-up with the 充 100 送 10
/// promotion, so 220元 cash in all), campus WLAN, 1.5 GB used, points of which 500 expire this
/// year, and a recharge card to use.
async fn rich_subscriber(t: &TestHall) -> Msisdn {
    let m = t.subscriber(ME, 12_000).await;
    let order = t.create_payment(&m, &m, Fen::yuan(100)).await.unwrap();
    t.simulate_payment(&m, &order.id, true).await.unwrap();
    t.subscribe(&m, &code("EDU10")).await.unwrap();
    data_used(t, &m, 1536 * 1024).await;
    t.grant_points(&m, 2000, "测试积分", "t-now").await.unwrap();
    t.grant_points_earned(&m, 500, 2025, "去年积分", "t-last")
        .await
        .unwrap();
    t.insert_card(SERIAL, PIN, Fen::yuan(50), "DEMO")
        .await
        .unwrap();
    m
}

#[tokio::test]
async fn every_command_gets_a_sensible_reply() {
    let t = TestHall::empty().await;
    let m = rich_subscriber(&t).await;
    // After EDU10 (10元): 210元 cash + 10元 gift.
    let cz = format!("CZ{PIN}");
    let script: &[(&str, &[&str])] = &[
        (
            "CXYE",
            &["220.00元", "其中赠送余额 10.00元", "号码状态:正常"],
        ),
        ("YE", &["220.00元"]),
        ("余额", &["220.00元"]),
        (
            "CXZD",
            &["2026年11月", "10.00元", "增值业务费", "上月账单尚未出账"],
        ),
        ("ZD", &["2026年11月"]),
        ("话费", &["2026年11月"]),
        (
            "CXTC",
            &[
                "全球通 88 元套餐",
                "88.00元",
                "校园 WLAN 10 元包 10.00元/月",
            ],
        ),
        ("套餐", &["全球通 88 元套餐"]),
        (
            "CXLL",
            &["共 10GB", "已用 1.5GB", "剩余 8.5GB", "校园WLAN共 40小时"],
        ),
        ("流量", &["已用 1.5GB"]),
        (
            "CXJF",
            &["2500 分", "500 分将于2026年12月31日到期", "DHHF5"],
        ),
        ("JF", &["2500 分"]),
        ("积分", &["2500 分"]),
        (
            "KTJTCL",
            &["集团彩铃", "5.00元", "是", "Y", "10分钟", "QXJTCL", "10086"],
        ),
        ("是", &["成功订购集团彩铃", "5.00元", "215.00元"]),
        (
            "0000",
            &[
                "1.校园 WLAN 10 元包 10.00元/月",
                "2.集团彩铃 5.00元/月",
                "TD1",
            ],
        ),
        ("00000", &["1.校园 WLAN 10 元包", "2.集团彩铃"]),
        ("TD2", &["已退订集团彩铃", "11月底失效"]),
        ("QXEDU10", &["已退订校园 WLAN 10 元包", "11月底失效"]),
        ("TDEDU10", &["已退订"]),
        ("0000", &["没有可退订的包月业务"]),
        ("DHHF5", &["5 元话费", "400", "是", "Y", "10分钟"]),
        (
            "y",
            &["400 积分", "5 元话费", "5.00元已存入", "剩余积分 2100 分"],
        ),
        (&cz, &["充值成功", "50.00元", "270.00元"]),
        (
            "BZ",
            &[
                "CXYE", "CXZD", "CXTC", "CXLL", "CXJF", "KT", "QX", "0000", "DH", "CZ",
            ],
        ),
        ("HELP", &["CXYE"]),
        ("?", &["CXYE"]),
        ("帮助", &["CXYE"]),
        ("你好", &["CXYE", "BZ"]),
        ("", &["CXYE", "BZ"]),
        ("CZ123", &["18位数字"]),
    ];
    for (text, wanted) in script {
        // Stay under the per-number limit (30 in 10 minutes) and inside the prompts' window.
        t.clock.advance(Duration::seconds(20));
        let reply = say(&t, text).await;
        assert_has(&reply, wanted, text);
        assert_short(&reply, text);
        assert!(!reply.contains(PIN), "a PIN in a reply");
    }
    assert_eq!(
        t.balance(&m).await.unwrap().total(),
        Fen::yuan(270),
        "220 − 5 (JTCL) + 5 (HF5) + 50 (card)"
    );
}

#[tokio::test]
async fn the_kt_prompt_alone_changes_nothing() {
    let t = TestHall::empty().await;
    let m = t.subscriber(ME, 12_000).await;
    let prompt = say(&t, "KTEDU10").await;
    assert_has(
        &prompt,
        &[
            "校园 WLAN 10 元包",
            "10.00元",
            "是",
            "Y",
            "10分钟",
            "QXEDU10",
        ],
        "KTEDU10",
    );
    assert!(t.subscriptions(&m).await.unwrap().is_empty());
    assert_eq!(t.balance(&m).await.unwrap().total(), Fen::yuan(120));
    // Anything but a yes applies nothing, and help reminds of the waiting prompt.
    let other = say(&t, "好的").await;
    assert_has(&other, &["待确认", "是"], "好的");
    assert!(t.subscriptions(&m).await.unwrap().is_empty());
    // The window closes.
    t.clock.advance(Duration::minutes(10));
    let late = say(&t, "是").await;
    assert_eq!(late, Error::NoPendingConfirmation.zh());
    assert!(t.subscriptions(&m).await.unwrap().is_empty());
    assert_eq!(t.balance(&m).await.unwrap().total(), Fen::yuan(120));
}

#[tokio::test]
async fn kt_then_yes_subscribes_once() {
    let t = TestHall::empty().await;
    let m = t.subscriber(ME, 12_000).await;
    say(&t, "kt edu10").await;
    let done = say(&t, "是").await;
    assert_has(
        &done,
        &[
            "成功订购校园 WLAN 10 元包",
            "10.00元",
            "110.00元",
            "QXEDU10",
        ],
        "是",
    );
    let again = say(&t, "是").await;
    assert_eq!(again, Error::NoPendingConfirmation.zh());
    assert_eq!(t.subscriptions(&m).await.unwrap().len(), 1);
    assert_eq!(t.balance(&m).await.unwrap().total(), Fen::yuan(110));
    // Ordering it again is refused before any prompt.
    assert_eq!(say(&t, "KTEDU10").await, Error::AlreadySubscribed.zh());
}

#[tokio::test]
async fn a_cancelled_product_ordered_again_is_kept_without_a_new_charge() {
    let t = TestHall::empty().await;
    let m = t.subscriber(ME, 12_000).await;
    t.subscribe(&m, &code("EDU10")).await.unwrap();
    say(&t, "QXEDU10").await;
    say(&t, "KTEDU10").await;
    let kept = say(&t, "Y").await;
    assert_has(&kept, &["恢复订购", "不再扣费", "110.00元"], "Y");
    assert_eq!(t.balance(&m).await.unwrap().total(), Fen::yuan(110));
}

#[tokio::test]
async fn menu_then_td1_cancels_the_first_add_on() {
    let t = TestHall::empty().await;
    let m = t.subscriber(ME, 12_000).await;
    for c in ["EDU10", "JTCL", "LL10"] {
        t.subscribe(&m, &code(c)).await.unwrap();
    }
    let menu = say(&t, "0000").await;
    assert_has(
        &menu,
        &[
            "1.校园 WLAN 10 元包",
            "2.集团彩铃",
            "3.10 元 1GB 流量包",
            "TD1",
        ],
        "0000",
    );
    let reply = say(&t, "TD1").await;
    assert_has(
        &reply,
        &["已退订校园 WLAN 10 元包", "月底失效", "0000"],
        "TD1",
    );
    let live: Vec<(String, bool)> = t
        .subscriptions(&m)
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.product.code.to_string(), s.end_period.is_some()))
        .collect();
    assert_eq!(
        live,
        [
            ("EDU10".into(), true),
            ("JTCL".into(), false),
            ("LL10".into(), false)
        ]
    );
    // The menu no longer lists it; numbers follow the new list.
    let menu = say(&t, "0000").await;
    assert_has(&menu, &["1.集团彩铃", "2.10 元 1GB 流量包"], "0000");
    assert!(!menu.contains("校园"));
    // Several numbers, one of them not on the menu: one combined reply.
    let reply = say(&t, "TD1，2，5").await;
    assert_has(
        &reply,
        &["集团彩铃", "10 元 1GB 流量包", "序号5不存在", "2 项"],
        "TD1，2，5",
    );
    assert!(t
        .subscriptions(&m)
        .await
        .unwrap()
        .iter()
        .all(|s| s.end_period.is_some()));
    // TD1 still means item 1 of the menu last shown, which is already cancelled.
    let again = say(&t, "TD1").await;
    assert_has(&again, &["集团彩铃", "已退订"], "TD1");
}

#[tokio::test]
async fn an_out_of_range_number_cancels_nothing() {
    let t = TestHall::empty().await;
    let m = t.subscriber(ME, 12_000).await;
    t.subscribe(&m, &code("JTCL")).await.unwrap();
    let reply = say(&t, "TD3").await;
    assert_has(&reply, &["序号3不存在", "1 项", "0000"], "TD3");
    assert!(!reply.contains("已退订"));
    assert!(t.subscriptions(&m).await.unwrap()[0].end_period.is_none());
    assert_has(&say(&t, "TD0").await, &["1至99"], "TD0");
}

#[tokio::test]
async fn dh_then_y_redeems() {
    let t = TestHall::empty().await;
    let m = t.subscriber(ME, 0).await;
    t.grant_points(&m, 2000, "测试积分", "t1").await.unwrap();
    let prompt = say(&t, "DHHF5").await;
    assert_has(&prompt, &["5 元话费", "400", "是", "Y"], "DHHF5");
    assert_eq!(t.points(&m).await.unwrap().balance.get(), 2000);
    let done = say(&t, "Y").await;
    assert_has(&done, &["400 积分", "5.00元已存入", "1600 分"], "Y");
    assert_eq!(t.points(&m).await.unwrap().balance.get(), 1600);
    assert_eq!(t.balance(&m).await.unwrap().total(), Fen::yuan(5));
    assert_eq!(say(&t, "Y").await, Error::NoPendingConfirmation.zh());
    // A data pack words its effect differently.
    say(&t, "DHLL1G").await;
    assert_has(&say(&t, "是").await, &["1024MB流量"], "是");
}

#[tokio::test]
async fn cz_with_a_card_credits_and_never_echoes_the_pin() {
    let t = TestHall::empty().await;
    let m = t.subscriber(ME, 12_000).await;
    t.insert_card(SERIAL, PIN, Fen::yuan(50), "DEMO")
        .await
        .unwrap();
    let done = say(&t, &format!("CZ {PIN}")).await;
    assert_has(&done, &["充值成功", "50.00元", "170.00元"], "CZ");
    assert_eq!(t.balance(&m).await.unwrap().total(), Fen::yuan(170));
    let again = say(&t, &format!("CZ{PIN}")).await;
    assert_eq!(again, Error::CardUsed.zh());
    let wrong = "999999999999999999";
    let reply = say(&t, &format!("CZ{wrong}")).await;
    assert_eq!(reply, Error::CardInvalid.zh());
    assert!(!reply.contains(wrong) && !done.contains(PIN));
    assert_eq!(t.balance(&m).await.unwrap().total(), Fen::yuan(170));
}

#[tokio::test]
async fn a_suspended_number_may_query_and_top_up_only() {
    let t = TestHall::empty().await;
    let m = t.subscriber(ME, 12_000).await;
    t.grant_points(&m, 2000, "测试积分", "t1").await.unwrap();
    t.insert_card(SERIAL, PIN, Fen::yuan(50), "DEMO")
        .await
        .unwrap();
    t.suspend_by_request(&m).await.unwrap();
    assert_has(&say(&t, "CXYE").await, &["120.00元", "申请停机"], "CXYE");
    assert_has(&say(&t, "CXJF").await, &["2000 分"], "CXJF");
    assert_has(
        &say(&t, &format!("CZ{PIN}")).await,
        &["50.00元", "170.00元"],
        "CZ",
    );
    assert_eq!(say(&t, "KTEDU10").await, Error::NotActive.zh());
    assert_eq!(say(&t, "DHHF5").await, Error::NotActive.zh());
    assert_eq!(say(&t, "是").await, Error::NoPendingConfirmation.zh());
    assert!(t.subscriptions(&m).await.unwrap().is_empty());
    assert_eq!(t.points(&m).await.unwrap().balance.get(), 2000);
}

#[tokio::test]
async fn the_31st_command_is_too_frequent_and_the_32nd_silent() {
    let t = TestHall::empty().await;
    t.subscriber(ME, 12_000).await;
    for i in 0..30 {
        let reply = say(&t, "CXYE").await;
        assert!(reply.contains("120.00元"), "command {i}: {reply}");
    }
    let warned = say(&t, "CXYE").await;
    assert_eq!(warned, "您发送指令过于频繁,请10分钟后再试。");
    assert_eq!(handle_mo(&t.hall, ME, "CXYE").await, None);
    assert_eq!(handle_mo(&t.hall, ME, "BZ").await, None);
    t.clock.advance(Duration::minutes(10));
    assert!(say(&t, "CXYE").await.contains("120.00元"));
}

#[tokio::test]
async fn a_stranger_is_refused_once() {
    let t = TestHall::empty().await;
    t.subscriber(ME, 12_000).await;
    let first = handle_mo(&t.hall, "13999999999", "CXYE").await.unwrap();
    assert_has(&first, &["本网用户"], "stranger");
    assert!(!first.contains("元"), "no figures for strangers");
    assert_eq!(handle_mo(&t.hall, "13999999999", "CXYE").await, None);
    assert_eq!(handle_mo(&t.hall, "13999999999", "BZ").await, None);
    assert_eq!(handle_mo(&t.hall, "+8613999999999", "BZ").await, None);
    // A sender that is not a mobile number at all.
    assert!(handle_mo(&t.hall, "10655", "CXYE").await.is_some());
    assert_eq!(handle_mo(&t.hall, "10655", "CXYE").await, None);
    // The SMSC may report our subscriber in international form.
    let ours = handle_mo(&t.hall, "+8613800138000", "CXYE").await.unwrap();
    assert!(ours.contains("120.00元"), "{ours}");
}

#[tokio::test]
async fn service_refusals_are_passed_on_in_their_own_words() {
    let t = TestHall::empty().await;
    t.subscriber(ME, 500).await;
    let unknown = say(&t, "KTNOPE").await;
    assert!(
        unknown.starts_with(&Error::UnknownProduct.zh()),
        "{unknown}"
    );
    assert_eq!(say(&t, "KTGT128").await, Error::WrongProductKind.zh());
    let not_mine = say(&t, "QXEDU10").await;
    assert!(
        not_mine.starts_with(&Error::NotSubscribed.zh()),
        "{not_mine}"
    );
    assert!(not_mine.contains("0000"), "{not_mine}");
    assert!(say(&t, "DHNOPE")
        .await
        .starts_with(&Error::UnknownReward.zh()));
    assert_eq!(
        say(&t, "DHHF5").await,
        Error::InsufficientPoints {
            needed: 400,
            available: 0
        }
        .zh()
    );
    // The prompt does not check the balance; the charge at confirmation does.
    say(&t, "KTEDU10").await;
    assert_eq!(
        say(&t, "是").await,
        Error::InsufficientBalance {
            needed: Fen::yuan(10),
            available: Fen::yuan(5)
        }
        .zh()
    );
}

#[tokio::test]
async fn malformed_commands_get_a_specific_hint() {
    let t = TestHall::empty().await;
    t.subscriber(ME, 0).await;
    for (text, wanted) in [
        ("KT", "KTEDU10"),
        ("TD", "QXEDU10"),
        ("TD100", "1至99"),
        ("DH", "DHHF5"),
        ("CZ12345", "18位数字"),
    ] {
        assert_has(&say(&t, text).await, &[wanted], text);
    }
}

#[tokio::test]
async fn a_storage_failure_says_busy_and_nothing_more() {
    let t = TestHall::empty().await;
    t.subscriber(ME, 12_000).await;
    t.db().close().await;
    assert_eq!(
        handle_mo(&t.hall, ME, "CXYE").await.as_deref(),
        Some("系统繁忙,请稍后再试。")
    );
}

#[tokio::test]
async fn bill_and_plan_show_last_month_and_a_pending_change() {
    let t = TestHall::empty().await;
    t.clock
        .set(chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 10, 10, 2, 0, 0).unwrap());
    let m = t.subscriber(ME, 30_000).await;
    t.subscribe(&m, &code("JTCL")).await.unwrap();
    t.clock.set(app::testing::default_now());
    t.close_month(app::domain::Period::new(2026, 10).unwrap())
        .await
        .unwrap();
    let bill = say(&t, "CXZD").await;
    assert_has(
        &bill,
        &[
            "2026年11月",
            "套餐月费 88.00元",
            "增值业务费 5.00元",
            "93.00元",
            "2026年10月账单 5.00元",
        ],
        "CXZD",
    );
    t.request_plan_change(&m, &code("GT128")).await.unwrap();
    let plan = say(&t, "CXTC").await;
    assert_has(
        &plan,
        &[
            "全球通 88 元套餐",
            "集团彩铃 5.00元/月",
            "全球通 128 元套餐",
            "2026年12月1日生效",
        ],
        "CXTC",
    );
    say(&t, "QXJTCL").await;
    assert_has(&say(&t, "CXTC").await, &["已退订"], "CXTC");
}

#[tokio::test]
async fn data_without_wlan_says_nothing_of_it() {
    let t = TestHall::empty().await;
    let m = t.subscriber(ME, 0).await;
    data_used(&t, &m, 11 * 1024 * 1024).await;
    let reply = say(&t, "CXLL").await;
    assert_has(&reply, &["已用 11GB", "剩余 0MB", "超出 1GB"], "CXLL");
    assert!(!reply.contains("WLAN"), "{reply}");
}

#[test]
fn figures_are_written_as_people_read_them() {
    assert_eq!(volume_text(0), "0MB");
    assert_eq!(volume_text(512), "0.5MB");
    assert_eq!(volume_text(512 * 1024), "512MB");
    assert_eq!(volume_text(1024 * 1024), "1GB");
    assert_eq!(volume_text(1536 * 1024), "1.5GB");
    assert_eq!(volume_text(1280 * 1024), "1.25GB");
    assert_eq!(volume_text(10 * 1024 * 1024), "10GB");
    assert_eq!(volume_text(-5), "0MB");
    assert_eq!(minutes_text(2400), "40小时");
    assert_eq!(minutes_text(65), "1小时5分钟");
    assert_eq!(minutes_text(35), "35分钟");
}

#[tokio::test]
async fn a_change_by_sms_is_confirmed_by_one_message_not_two() {
    let t = app::testing::TestHall::empty().await;
    let m = t.subscriber("13800138000", 5000).await;
    t.insert_card(
        "26000000000000009",
        "100000000000000009",
        app::domain::Fen::yuan(50),
        "T",
    )
    .await
    .unwrap();
    let before = t.outbox_for(&m, 100).await.unwrap().len();
    for text in ["KTEDU10", "是", "QXEDU10", "CZ100000000000000009"] {
        assert!(
            crate::commands::handle_mo(&t, "13800138000", text)
                .await
                .is_some(),
            "{text}"
        );
    }
    assert_eq!(
        t.outbox_for(&m, 100).await.unwrap().len(),
        before,
        "the replies are the only SMS"
    );
    // The same change on another channel still notifies the subscriber.
    t.cancel(&m, &app::domain::ProductCode::parse("EDU10").unwrap())
        .await
        .unwrap_err();
    t.subscribe(&m, &app::domain::ProductCode::parse("LL10").unwrap())
        .await
        .unwrap();
    assert_eq!(t.outbox_for(&m, 100).await.unwrap().len(), before + 1);
}

#[tokio::test]
async fn td_numbers_mean_the_menu_as_shown_even_after_a_cancel() {
    let t = app::testing::TestHall::empty().await;
    let m = t.subscriber("13800138000", 10_000).await;
    for c in ["EDU10", "LL10", "JTCL"] {
        t.subscribe(&m, &app::domain::ProductCode::parse(c).unwrap())
            .await
            .unwrap();
    }
    crate::commands::handle_mo(&t, "13800138000", "0000")
        .await
        .unwrap();
    crate::commands::handle_mo(&t, "13800138000", "TD1")
        .await
        .unwrap();
    crate::commands::handle_mo(&t, "13800138000", "TD2")
        .await
        .unwrap();
    let live: Vec<String> = t
        .subscriptions(&m)
        .await
        .unwrap()
        .into_iter()
        .filter(|s| s.end_period.is_none())
        .map(|s| s.product.code.to_string())
        .collect();
    assert_eq!(
        live,
        ["JTCL"],
        "TD2 cancelled the second item shown (LL10), not the second one left"
    );
}
