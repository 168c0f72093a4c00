//! The gateway end to end over real TCP: the SMSC simulator delivers MO as a handset would,
//! the runtime stores them, a test command handler answers over the real service layer, and
//! the replies come back to the simulator as MT. Also the real `sms-gateway` binary.
//! Every wait is bounded so that a failure never hangs the suite.
mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use app::config::{Config, Settings};
use app::domain::{Fen, Msisdn};
use app::testing::TestHall;
use app::Hall;
use sms_gateway::runtime::{Gateway, GatewayHandle, Inbox, RuntimeOptions};
use sms_gateway::simulator::{MtMessage, Smsc, SmscConfig, SmscError, SmscHandle, Throttle};
use sms_gateway::smpp::{status, DeliveryReceipt, IncomingMo, MoHandler, MoVerdict};
use support::*;
use tokio::time::timeout;

struct Rig {
    t: TestHall,
    smsc: SmscHandle,
    gw: GatewayHandle,
}

type Wrap = Box<dyn FnOnce(Arc<Inbox>) -> Arc<dyn MoHandler>>;

async fn rig_with(settings: Settings, smsc_config: SmscConfig, wrap: Wrap) -> Rig {
    rig_full(settings, smsc_config, |_, _| {}, wrap).await
}

async fn rig_full(
    settings: Settings,
    smsc_config: SmscConfig,
    tweak: impl FnOnce(&mut sms_gateway::smpp::EsmeConfig, &mut RuntimeOptions),
    wrap: Wrap,
) -> Rig {
    let t = TestHall::empty_with(settings).await;
    t.subscriber(SUBSCRIBER, 5000).await;
    let smsc = Smsc::start(smsc_config).await.expect("simulator starts");
    let mut esme = esme_config(smsc.local_addr().port(), "openhall", "secret");
    let mut options = RuntimeOptions::new(SHORT_CODE);
    options.poll = Duration::from_millis(100);
    tweak(&mut esme, &mut options);
    let gw = Gateway::start_with(
        t.hall.clone(),
        esme,
        Arc::new(TestCommands::default()),
        options,
        wrap,
    );
    assert!(gw.esme().wait_bound(WAIT).await, "the gateway binds");
    assert!(smsc.wait_bound(WAIT).await, "the simulator sees the bind");
    Rig { t, smsc, gw }
}

async fn rig() -> Rig {
    rig_with(
        Settings::default(),
        SmscConfig::new("openhall", "secret"),
        Box::new(|inbox| inbox),
    )
    .await
}

/// A rig whose loops look in the database only when this process tells them to, or once an
/// hour: their first looks, at start, are over (they found nothing) when it returns.
async fn rig_looking_hourly() -> Rig {
    let r = rig_full(
        Settings::default(),
        SmscConfig::new("openhall", "secret"),
        |_, o| o.poll = Duration::from_secs(3600),
        Box::new(|i| i),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    r
}

impl Rig {
    fn m(&self) -> Msisdn {
        Msisdn::parse(SUBSCRIBER).unwrap()
    }

    async fn mo(&self, text: &str) -> u32 {
        self.smsc
            .send_mo(SUBSCRIBER, SHORT_CODE, text)
            .await
            .expect("the gateway answers the deliver_sm")
    }

    async fn mt(&self) -> MtMessage {
        self.smsc.next_mt(WAIT).await.expect("an MT arrives")
    }

    /// Shuts the gateway down and asserts that `reply` reached the handset before the unbind
    /// (the simulator holds it already) and that nothing is left to send.
    async fn stops_having_answered(&self, reply: &str) {
        timeout(WAIT, self.gw.shutdown())
            .await
            .expect("shutdown is bounded");
        assert_eq!(self.smsc.unbinds_received(), 1);
        let mt = self
            .smsc
            .next_mt(Duration::from_millis(100))
            .await
            .expect("answered before the unbind");
        assert_eq!(mt.text, reply);
        assert_eq!(self.t.outbox_depth().await.unwrap(), 0);
    }

    /// Asserts nothing more reaches the handset for a while.
    async fn no_more_mt(&self) {
        if let Some(m) = self.smsc.next_mt(Duration::from_millis(600)).await {
            panic!("unexpected MT: {}", m.text);
        }
    }

    /// Waits until nothing is left to send (before moving the hall's clock, so that no claim
    /// in flight expires).
    async fn settle(&self) {
        assert!(
            eventually(|| async { self.t.outbox_depth().await.unwrap() == 0 }).await,
            "the outbox drains"
        );
    }

    async fn balance(&self) -> Fen {
        self.t.balance(&self.m()).await.unwrap().total()
    }

    async fn subscriptions(&self) -> usize {
        self.t.subscriptions(&self.m()).await.unwrap().len()
    }
}

#[tokio::test]
async fn an_mo_gets_its_reply_from_the_short_code() {
    let r = rig().await;
    assert_eq!(r.mo("CXYE").await, status::ESME_ROK);
    let mt = r.mt().await;
    assert_eq!(mt.text, "您的余额为50.00元");
    assert_eq!(
        (mt.source.as_str(), mt.destination.as_str()),
        (SHORT_CODE, SUBSCRIBER)
    );
    r.settle().await;
    let out = r.t.outbox_for(&r.m(), 10).await.unwrap();
    assert_eq!((out.len(), out[0].status.as_str()), (1, "sent"));
    // The simulator's delivery receipt is matched with the sent message.
    assert!(eventually(|| async { r.gw.stats().receipts_matched == 1 }).await);
    let s = r.gw.stats();
    assert_eq!(
        (s.mo_stored, s.mo_handled, s.replies_queued, s.mt_sent),
        (1, 1, 1, 1)
    );
    r.no_more_mt().await;
}

#[tokio::test]
async fn replies_to_one_number_arrive_in_order() {
    let r = rig().await;
    for i in 1..=6 {
        assert_eq!(r.mo(&format!("ECHO{i}")).await, status::ESME_ROK);
    }
    for i in 1..=6 {
        assert_eq!(r.mt().await.text, format!("收到ECHO{i}"));
    }
}

#[tokio::test]
async fn ktedu10_then_yes_subscribes_once() {
    let r = rig().await;
    assert_eq!(r.mo("KTEDU10").await, status::ESME_ROK);
    let prompt = r.mt().await.text;
    assert!(prompt.contains("是"), "a 二次确认 prompt: {prompt}");
    assert_eq!(r.subscriptions().await, 0, "a prompt alone changes nothing");

    assert_eq!(r.mo("是").await, status::ESME_ROK);
    // The hall's subscription notice and the command's reply, in the order they were queued.
    let notice = r.mt().await;
    let reply = r.mt().await;
    assert!(
        reply.text.starts_with(SUBSCRIBED),
        "{} / {}",
        notice.text,
        reply.text
    );
    assert_eq!(r.subscriptions().await, 1);
    assert_eq!(r.balance().await, Fen::yuan(40));

    // A later 是 (past the redelivery window) finds nothing to confirm.
    r.settle().await;
    r.t.clock.advance(chrono::Duration::seconds(30));
    assert_eq!(r.mo("是").await, status::ESME_ROK);
    assert_eq!(r.mt().await.text, app::Error::NoPendingConfirmation.zh());
    assert_eq!(r.subscriptions().await, 1);
    assert_eq!(r.balance().await, Fen::yuan(40));
}

#[tokio::test]
async fn ktedu10_without_a_reply_changes_nothing() {
    let r = rig().await;
    assert_eq!(r.mo("KTEDU10").await, status::ESME_ROK);
    assert!(r.mt().await.text.contains(PROMPT_MARK));
    r.settle().await;
    r.no_more_mt().await;
    assert_eq!(r.subscriptions().await, 0);
    assert_eq!(r.balance().await, Fen::yuan(50));
}

#[tokio::test]
async fn a_reply_after_the_window_changes_nothing() {
    let settings = Settings {
        confirm_ttl: Duration::from_secs(60),
        ..Settings::default()
    };
    let r = rig_with(
        settings,
        SmscConfig::new("openhall", "secret"),
        Box::new(|i| i),
    )
    .await;
    assert_eq!(r.mo("KTEDU10").await, status::ESME_ROK);
    assert!(r.mt().await.text.contains(PROMPT_MARK));
    r.settle().await;
    r.t.clock.advance(chrono::Duration::seconds(61));
    assert_eq!(r.mo("是").await, status::ESME_ROK);
    assert_eq!(r.mt().await.text, app::Error::NoPendingConfirmation.zh());
    r.no_more_mt().await;
    assert_eq!(r.subscriptions().await, 0);
    assert_eq!(r.balance().await, Fen::yuan(50));
}

#[tokio::test]
async fn a_deliver_sm_sent_twice_is_handled_once() {
    let r = rig().await;
    assert_eq!(r.mo("KTEDU10").await, status::ESME_ROK);
    assert!(r.mt().await.text.contains(PROMPT_MARK));
    assert_eq!(r.mo("是").await, status::ESME_ROK);
    assert_eq!(
        r.mo("是").await,
        status::ESME_ROK,
        "the redelivery is acknowledged"
    );
    let _notice = r.mt().await;
    assert!(r.mt().await.text.starts_with(SUBSCRIBED));
    r.no_more_mt().await;
    assert_eq!(r.gw.stats().mo_redelivered, 1);
    assert_eq!(r.subscriptions().await, 1);
    assert_eq!(r.balance().await, Fen::yuan(40));
}

/// Delays the answer to the SMSC after the inbox has stored the MO.
struct SlowAnswer {
    inbox: Arc<Inbox>,
    delay_ms: Arc<AtomicU64>,
}

#[async_trait::async_trait]
impl MoHandler for SlowAnswer {
    async fn on_mo(&self, mo: IncomingMo) -> MoVerdict {
        let verdict = self.inbox.on_mo(mo).await;
        let delay = self.delay_ms.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        verdict
    }

    async fn on_receipt(&self, receipt: DeliveryReceipt) -> MoVerdict {
        self.inbox.on_receipt(receipt).await
    }
}

#[tokio::test]
async fn an_mo_whose_answer_the_connection_lost_is_redelivered_and_handled_once() {
    let delay_ms = Arc::new(AtomicU64::new(0));
    let delay = delay_ms.clone();
    let r = rig_with(
        Settings::default(),
        SmscConfig::new("openhall", "secret"),
        Box::new(move |inbox| {
            Arc::new(SlowAnswer {
                inbox,
                delay_ms: delay,
            })
        }),
    )
    .await;
    assert_eq!(r.mo("KTEDU10").await, status::ESME_ROK);
    assert!(r.mt().await.text.contains(PROMPT_MARK));

    delay_ms.store(2000, Ordering::SeqCst);
    let smsc = r.smsc.clone();
    let sending = tokio::spawn(async move { smsc.send_mo(SUBSCRIBER, SHORT_CODE, "是").await });
    // Stored, not yet answered: the connection goes.
    assert!(eventually(|| async { r.gw.stats().mo_stored == 2 }).await);
    r.smsc.drop_connection();
    assert_eq!(
        timeout(WAIT, sending).await.unwrap().unwrap(),
        Err(SmscError::ConnectionLost)
    );
    delay_ms.store(0, Ordering::SeqCst);
    assert!(
        r.smsc
            .wait_until(WAIT, || r.smsc.bind_count() == 2 && r.smsc.is_bound())
            .await,
        "the gateway binds again"
    );
    // The SMSC never saw the answer, so it delivers the message again.
    assert_eq!(r.mo("是").await, status::ESME_ROK);
    let _notice = r.mt().await;
    assert!(r.mt().await.text.starts_with(SUBSCRIBED));
    r.no_more_mt().await;
    assert_eq!(r.gw.stats().mo_redelivered, 1);
    assert_eq!(r.subscriptions().await, 1);
    assert_eq!(r.balance().await, Fen::yuan(40));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_smsc_closing_the_connection_mid_stream_loses_no_mo_and_no_reply() {
    let r = rig().await;
    let numbers = ["13800138000", "13900139000", "15000150000", "18800188000"];
    for n in &numbers[1..] {
        r.t.subscriber(n, 0).await;
    }
    const N: usize = 24;
    let smsc = r.smsc.clone();
    let sender = tokio::spawn(async move {
        for i in 0..N {
            let from = numbers[i % numbers.len()];
            // As an SMSC does: deliver again until acknowledged.
            let deadline = tokio::time::Instant::now() + WAIT;
            loop {
                match smsc.send_mo(from, SHORT_CODE, &format!("ECHO{i}")).await {
                    Ok(s) if s == status::ESME_ROK => break,
                    other => {
                        assert!(tokio::time::Instant::now() < deadline, "MO {i}: {other:?}");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
            if i == N / 2 {
                smsc.drop_connection();
            }
        }
    });
    let mut seen: Vec<MtMessage> = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT * 2;
    let expected: Vec<(String, String)> = (0..N)
        .map(|i| {
            (
                numbers[i % numbers.len()].to_owned(),
                format!("收到ECHO{i}"),
            )
        })
        .collect();
    while !expected
        .iter()
        .all(|(to, text)| seen.iter().any(|m| &m.destination == to && &m.text == text))
    {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match r.smsc.next_mt(left).await {
            Some(m) => seen.push(m),
            None => panic!(
                "replies missing after {} MT: {:?}",
                seen.len(),
                expected
                    .iter()
                    .filter(|(to, text)| !seen
                        .iter()
                        .any(|m| &m.destination == to && &m.text == text))
                    .collect::<Vec<_>>()
            ),
        }
    }
    timeout(WAIT, sender).await.unwrap().unwrap();
    assert!(r.smsc.bind_count() >= 2, "the connection really was lost");
    // The hall answered every MO exactly once and sent every answer…
    r.settle().await;
    for n in numbers {
        let out =
            r.t.outbox_for(&Msisdn::parse(n).unwrap(), 100)
                .await
                .unwrap();
        assert_eq!(out.len(), N / numbers.len(), "one reply per MO to {n}");
        assert!(out.iter().all(|o| o.status == "sent"));
    }
    assert_eq!(r.gw.stats().mo_stored, N as u64, "each MO stored once");
    // …and the handset got each at least once. A submit in flight when the connection dropped
    // is sent again after the reconnect (SMPP cannot tell whether the SMSC took it), so a
    // handset may see that one twice: at most one per number, since each number's replies go
    // one after the other.
    r.no_more_mt().await;
    assert!(
        seen.len() <= N + numbers.len(),
        "{} MT for {N} MO",
        seen.len()
    );
}

#[tokio::test]
async fn throttled_submits_are_retried() {
    let mut config = SmscConfig::new("openhall", "secret");
    config.throttle = Some(Throttle::first(3));
    let r = rig_with(Settings::default(), config, Box::new(|i| i)).await;
    assert_eq!(r.mo("CXYE").await, status::ESME_ROK);
    assert_eq!(r.mt().await.text, "您的余额为50.00元");
    assert_eq!(r.smsc.throttled_count(), 3);
    r.settle().await;
    // Counted after the outbox records it (a moment after the outbox drains): wait for it,
    // then check that the throttled attempts were not counted too.
    assert!(eventually(|| async { r.gw.stats().mt_sent >= 1 }).await);
    r.no_more_mt().await;
    assert_eq!(r.gw.stats().mt_sent, 1);
}

#[tokio::test]
async fn throttling_beyond_the_links_patience_is_retried_from_the_outbox_later() {
    let mut config = SmscConfig::new("openhall", "secret");
    config.throttle = Some(Throttle::first(2));
    let r = rig_full(
        Settings::default(),
        config,
        |c, _| c.throttle_retries = 1,
        Box::new(|i| i),
    )
    .await;
    assert_eq!(r.mo("CXYE").await, status::ESME_ROK);
    assert!(eventually(|| async { r.gw.stats().mt_retry_later == 1 }).await);
    let out = r.t.outbox_for(&r.m(), 1).await.unwrap();
    assert_eq!(out[0].status, "queued", "put back for later");
    r.no_more_mt().await;
    // The outbox's back-off (30 s after the first attempt) passes: sent.
    r.t.clock.advance(chrono::Duration::seconds(31));
    assert_eq!(r.mt().await.text, "您的余额为50.00元");
    r.settle().await;
}

#[tokio::test]
async fn a_reply_the_smsc_rejects_is_given_up() {
    let mut config = SmscConfig::new("openhall", "secret");
    // ESME_RSUBMITFAIL: not a throttle, so not worth another try.
    config.throttle = Some(Throttle::first(1).with_status(0x45));
    let r = rig_with(Settings::default(), config, Box::new(|i| i)).await;
    assert_eq!(r.mo("CXYE").await, status::ESME_ROK);
    assert!(eventually(|| async { r.gw.stats().mt_failed == 1 }).await);
    assert_eq!(r.t.outbox_for(&r.m(), 1).await.unwrap()[0].status, "failed");
    r.no_more_mt().await;
}

#[tokio::test]
async fn a_300_character_chinese_reply_arrives_as_five_numbered_parts() {
    let r = rig().await;
    assert_eq!(r.mo("LONG").await, status::ESME_ROK);
    let mt = r.mt().await;
    let text = chinese(300);
    assert_eq!(mt.text, text);
    assert_eq!(mt.segments.len(), 5);
    let reference = mt.segments[0].short_message[3];
    for (i, s) in mt.segments.iter().enumerate() {
        assert_eq!((s.esm_class, s.data_coding), (0x40, 0x08));
        assert_eq!(
            &s.short_message[..6],
            &[0x05, 0x00, 0x03, reference, 5, i as u8 + 1]
        );
        assert!(s.short_message.len() <= 140);
    }
    let joined: String = mt.segments.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(joined, text);
    r.settle().await;
    let out = r.t.outbox_for(&r.m(), 1).await.unwrap();
    assert_eq!(out[0].status, "sent");
    // Each part's receipt is matched, even those that overtake the record of the sending.
    assert!(
        eventually(|| async { r.gw.stats().receipts_matched == 5 }).await,
        "{:?}",
        r.gw.stats()
    );
    assert_eq!(r.gw.stats().receipts_unmatched, 0);
}

#[tokio::test]
async fn when_storing_fails_the_smsc_is_asked_to_deliver_again() {
    let r = rig().await;
    r.t.db().close().await;
    assert_eq!(r.mo("CXYE").await, status::ESME_RX_T_APPN);
    assert_eq!(r.gw.stats().mo_refused, 1);
    assert_eq!(r.gw.stats().mo_stored, 0);
    // The loops keep running through the storage errors, and the link stays up.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(r.gw.is_bound());
    assert_eq!(r.mo("CXYE").await, status::ESME_RX_T_APPN);
}

#[tokio::test]
async fn a_handler_panic_does_not_stop_the_worker_and_the_mo_is_tried_again() {
    let r = rig().await;
    assert_eq!(r.mo("BOOM").await, status::ESME_ROK);
    assert!(eventually(|| async { r.gw.stats().handler_failures == 1 }).await);
    assert_eq!(r.mo("CXYE").await, status::ESME_ROK);
    assert_eq!(
        r.mt().await.text,
        "您的余额为50.00元",
        "the worker carries on"
    );
    r.settle().await;
    // The panicked MO's claim expires (a minute): it is handled again.
    r.t.clock.advance(chrono::Duration::seconds(61));
    assert_eq!(r.mt().await.text, "恢复");
    r.no_more_mt().await;
}

#[tokio::test]
async fn only_mo_to_the_short_code_are_answered() {
    let r = rig().await;
    assert_eq!(
        r.smsc.send_mo(SUBSCRIBER, "10010", "CXYE").await,
        Ok(status::ESME_ROK),
        "stored and acknowledged all the same"
    );
    assert_eq!(
        r.smsc.send_mo(SUBSCRIBER, "1008601", "ECHO1").await,
        Ok(status::ESME_ROK)
    );
    assert_eq!(r.mt().await.text, "收到ECHO1", "a sub-address of 10086");
    r.no_more_mt().await;
    let s = r.gw.stats();
    assert_eq!((s.mo_stored, s.mo_handled, s.mo_not_for_us), (2, 2, 1));
}

#[tokio::test]
async fn a_sender_in_international_form_is_answered_at_its_number() {
    let r = rig().await;
    assert_eq!(
        r.smsc.send_mo("8613800138000", SHORT_CODE, "CXYE").await,
        Ok(status::ESME_ROK)
    );
    let mt = r.mt().await;
    assert_eq!(
        (mt.destination.as_str(), mt.text.as_str()),
        (SUBSCRIBER, "您的余额为50.00元")
    );
}

#[tokio::test]
async fn a_silent_command_completes_without_a_reply() {
    let r = rig().await;
    assert_eq!(r.mo("QUIET").await, status::ESME_ROK);
    assert!(eventually(|| async { r.gw.stats().mo_handled == 1 }).await);
    r.no_more_mt().await;
    assert!(r.t.outbox_for(&r.m(), 1).await.unwrap().is_empty());
}

#[tokio::test]
async fn messages_queued_by_the_hall_are_sent_too() {
    let r = rig().await;
    // A notice the web side queues (here: a suspension by request) goes out without any MO.
    r.t.suspend_by_request(&r.m()).await.unwrap();
    let mt = r.mt().await;
    assert_eq!(mt.destination, SUBSCRIBER);
    assert!(!mt.text.is_empty());
    r.settle().await;
}

#[tokio::test]
async fn shutdown_unbinds_and_stops_sending() {
    let r = rig().await;
    timeout(WAIT, r.gw.shutdown())
        .await
        .expect("shutdown is bounded");
    assert_eq!(r.smsc.unbinds_received(), 1);
    assert!(!r.gw.is_bound());
    assert!(r.smsc.wait_until(WAIT, || !r.smsc.is_bound()).await);
    r.t.suspend_by_request(&r.m()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(r.smsc.bind_count(), 1, "no reconnection");
    assert_eq!(
        r.t.outbox_depth().await.unwrap(),
        1,
        "queued, left for the next gateway"
    );
    timeout(WAIT, r.gw.shutdown())
        .await
        .expect("a second shutdown is harmless");
}

#[tokio::test]
async fn an_mo_acknowledged_just_before_shutdown_is_still_answered() {
    let r = rig().await;
    assert_eq!(r.mo("CXYE").await, status::ESME_ROK);
    r.stops_having_answered("您的余额为50.00元").await;
}

/// An MO stored without this gateway being told (by another process, straight into the inbox)
/// and still waiting when the gateway is told to stop: its worker takes one last look in the
/// database, however long ago its last one was, and answers it before the unbind.
#[tokio::test]
async fn an_mo_waiting_in_the_inbox_at_shutdown_is_answered_before_the_unbind() {
    let r = rig_looking_hourly().await;
    r.t.receive_mo(SUBSCRIBER, SHORT_CODE, "CXYE")
        .await
        .unwrap();
    r.stops_having_answered("您的余额为50.00元").await;
}

/// A notice the hall queued without this gateway being told (the web side suspending a
/// number) and still waiting when the gateway is told to stop: its drainer takes one last
/// look in the database, however long ago its last one was, and sends it before the unbind.
#[tokio::test]
async fn a_notice_queued_by_the_hall_at_shutdown_is_sent_before_the_unbind() {
    let r = rig_looking_hourly().await;
    r.t.suspend_by_request(&r.m()).await.unwrap();
    let queued = r.t.outbox_for(&r.m(), 1).await.unwrap();
    assert_eq!(queued.len(), 1, "the notice is queued");
    assert!(
        r.smsc.next_mt(Duration::from_millis(300)).await.is_none(),
        "nobody told the drainer: it has not looked yet"
    );
    r.stops_having_answered(&queued[0].body).await;
}

/// The real binary against a simulator, on a fresh database: it answers, and on SIGTERM it
/// unbinds and exits 0. Its logs carry no full number and no message text.
#[tokio::test]
async fn the_binary_answers_and_unbinds_on_sigterm() {
    let (url, _guard) = app::testing::fresh_database_url().await;
    let redis = std::env::var("REDIS_URL").ok();
    let cfg = Config::from_lookup(|k| match k {
        "DATABASE_URL" => Some(url.clone()),
        "REDIS_URL" => redis.clone(),
        _ => None,
    })
    .unwrap();
    let hall = Hall::from_config(&cfg).await.expect("open and migrate");
    let m = Msisdn::parse(SUBSCRIBER).unwrap();
    let mut s = app::testing::new_subscriber(&m);
    s.password_changed = true;
    hall.register_subscriber(s).await.unwrap();

    let smsc = Smsc::start(SmscConfig::new("gw", "pw")).await.unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_sms-gateway"))
        .env("DATABASE_URL", &url)
        .env(
            "OPENHALL_SMSC",
            format!("smpp://gw:pw@127.0.0.1:{}", smsc.local_addr().port()),
        )
        .env("RUST_LOG", "debug,sqlx=warn")
        .env_remove("OPENHALL_SIM_ADDR")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start sms-gateway");
    // Read its output as it comes, so that a full pipe never blocks it.
    let read_all = |pipe: Option<Box<dyn tokio::io::AsyncRead + Unpin + Send>>| {
        tokio::spawn(async move {
            let mut buf = String::new();
            if let Some(mut pipe) = pipe {
                let _ = tokio::io::AsyncReadExt::read_to_string(&mut pipe, &mut buf).await;
            }
            buf
        })
    };
    let stdout = read_all(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = read_all(child.stderr.take().map(|p| Box::new(p) as _));
    assert!(
        smsc.wait_bound(Duration::from_secs(30)).await,
        "the binary binds"
    );
    assert_eq!(
        smsc.send_mo(SUBSCRIBER, SHORT_CODE, "BZ").await,
        Ok(status::ESME_ROK)
    );
    let mt = smsc.next_mt(WAIT).await.expect("the binary answers");
    assert_eq!(mt.destination, SUBSCRIBER);
    assert!(mt.text.contains("CXYE"), "a help text: {}", mt.text);

    let pid = child.id().expect("running").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let exit = timeout(WAIT, child.wait())
        .await
        .expect("exits soon after SIGTERM")
        .unwrap();
    assert!(exit.success(), "exit status {exit:?}");
    assert_eq!(smsc.unbinds_received(), 1, "unbound before exiting");

    let logs = format!(
        "{}{}",
        timeout(WAIT, stdout).await.unwrap().unwrap(),
        timeout(WAIT, stderr).await.unwrap().unwrap()
    );
    assert!(logs.contains("SMPP link bound"), "{logs}");
    assert!(
        !logs.contains(SUBSCRIBER),
        "a full number in the logs:\n{logs}"
    );
    assert!(!logs.contains(&mt.text), "a message text in the logs");
}
