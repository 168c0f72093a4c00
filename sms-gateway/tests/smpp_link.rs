//! The ESME against the SMSC simulator over real TCP on 127.0.0.1: binding, MO in every
//! coding and concatenated, long Chinese MT, throttling, faults, unbind and shutdown.
//! Every wait is bounded so a failure never hangs the suite.
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use rusmpp::pdus::{BindTransceiverResp, SubmitSmResp};
use rusmpp::tlvs::MessageDeliveryRequestTlvValue;
use rusmpp::types::{AnyOctetString, COctetString};
use rusmpp::values::{DataCoding, EsmClass, MessagePayload};
use rusmpp::{Command, CommandStatus, Pdu};
use sms_gateway::simulator::{Smsc, SmscConfig, SmscError, SmscHandle, Throttle};
use sms_gateway::smpp::esme::LinkStats;
use sms_gateway::smpp::frame::{self, Inbound, SmppCodec};
use sms_gateway::smpp::status;
use sms_gateway::smpp::text::{encode_mt, encode_mt_with_reference, Segment};
use sms_gateway::smpp::{
    DeliveryReceipt, Esme, EsmeConfig, EsmeHandle, IncomingMo, MoHandler, MoVerdict, SubmitError,
};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::time::timeout;
use tokio_util::codec::Framed;

const WAIT: Duration = Duration::from_secs(5);
const SUBSCRIBER: &str = "13800138000";
const SHORT_CODE: &str = "10086";

/// Records what the ESME hands over; can be told to fail or to be slow.
#[derive(Default)]
struct Recorder {
    mos: Mutex<Vec<IncomingMo>>,
    receipts: Mutex<Vec<DeliveryReceipt>>,
    fail: AtomicBool,
    delay_ms: AtomicU64,
    arrived: Notify,
}

#[async_trait::async_trait]
impl MoHandler for Recorder {
    async fn on_mo(&self, mo: IncomingMo) -> MoVerdict {
        let delay = self.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        if self.fail.load(Ordering::SeqCst) {
            return MoVerdict::TemporaryFailure;
        }
        self.mos.lock().unwrap().push(mo);
        self.arrived.notify_waiters();
        MoVerdict::Accept
    }

    async fn on_receipt(&self, receipt: DeliveryReceipt) -> MoVerdict {
        self.receipts.lock().unwrap().push(receipt);
        self.arrived.notify_waiters();
        MoVerdict::Accept
    }
}

impl Recorder {
    fn mos(&self) -> Vec<IncomingMo> {
        self.mos.lock().unwrap().clone()
    }

    /// Waits until at least `n` MOs were accepted.
    async fn wait_mos(&self, n: usize) -> Vec<IncomingMo> {
        let _ = timeout(WAIT, async {
            loop {
                let notified = self.arrived.notified();
                if self.mos.lock().unwrap().len() >= n {
                    return;
                }
                let _ = timeout(Duration::from_millis(20), notified).await;
            }
        })
        .await;
        self.mos()
    }
}

fn test_config(port: u16) -> EsmeConfig {
    let mut c = EsmeConfig::new("127.0.0.1", port, "openhall", "secret");
    c.enquire_interval = Duration::from_millis(200);
    c.response_timeout = Duration::from_secs(1);
    c.backoff_initial = Duration::from_millis(20);
    c.backoff_max = Duration::from_millis(200);
    c.throttle_backoff = Duration::from_millis(10);
    c.link_wait = Duration::from_secs(3);
    c.unbind_timeout = Duration::from_secs(1);
    c
}

struct Rig {
    smsc: SmscHandle,
    esme: EsmeHandle,
    rec: Arc<Recorder>,
}

async fn rig_with(smsc_config: SmscConfig, tweak: impl FnOnce(&mut EsmeConfig)) -> Rig {
    let smsc = Smsc::start(smsc_config).await.expect("simulator starts");
    let rec = Arc::new(Recorder::default());
    let mut config = test_config(smsc.local_addr().port());
    tweak(&mut config);
    let esme = Esme::connect(config, rec.clone());
    assert!(esme.wait_bound(WAIT).await, "the ESME binds");
    assert!(smsc.wait_bound(WAIT).await, "the simulator sees the bind");
    Rig { smsc, esme, rec }
}

async fn rig() -> Rig {
    rig_with(SmscConfig::new("openhall", "secret"), |_| {}).await
}

fn chinese(n: usize) -> String {
    "尊敬的客户您好您本月已使用通话分钟国内流量剩余余额为元感谢使用中国移动"
        .chars()
        .cycle()
        .take(n)
        .collect()
}

#[tokio::test]
async fn binds_and_keeps_the_link_alive_with_enquire_link() {
    let r = rig().await;
    assert!(
        r.smsc
            .wait_until(WAIT, || r.smsc.enquire_links() >= 2)
            .await,
        "enquire_link every 200 ms"
    );
    assert!(r.esme.is_bound());
    assert_eq!(
        r.smsc.bind_count(),
        1,
        "no spurious reconnects while enquire_link is answered"
    );
    assert_eq!(r.esme.stats().binds, 1);
}

#[tokio::test]
async fn a_wrong_password_never_binds() {
    let smsc = Smsc::start(SmscConfig::new("openhall", "secret"))
        .await
        .unwrap();
    let mut config = test_config(smsc.local_addr().port());
    config.password = "wrong".into();
    config.link_wait = Duration::from_millis(200);
    let esme = Esme::connect(config, Arc::new(Recorder::default()));
    assert!(!esme.wait_bound(Duration::from_millis(500)).await);
    assert_eq!(smsc.bind_count(), 0);
    assert_eq!(
        esme.submit(SUBSCRIBER, SHORT_CODE, "hi").await,
        Err(SubmitError::NotBound),
        "fails, does not hang"
    );
    timeout(WAIT, esme.shutdown()).await.unwrap();
}

#[tokio::test]
async fn mo_in_ucs2_chinese_and_in_gsm_reach_the_handler() {
    let r = rig().await;
    assert_eq!(
        r.smsc.send_mo(SUBSCRIBER, SHORT_CODE, "余额").await,
        Ok(status::ESME_ROK)
    );
    assert_eq!(
        r.smsc.send_mo(SUBSCRIBER, SHORT_CODE, "KT#EDU10 @€").await,
        Ok(status::ESME_ROK)
    );
    let mos = r.rec.wait_mos(2).await;
    assert_eq!(mos.len(), 2);
    let chinese = mos.iter().find(|m| m.text == "余额").expect("Chinese MO");
    assert_eq!(
        (chinese.source.as_str(), chinese.destination.as_str()),
        (SUBSCRIBER, SHORT_CODE)
    );
    assert_eq!((chinese.data_coding, chinese.parts), (8, 1));
    let gsm = mos
        .iter()
        .find(|m| m.text == "KT#EDU10 @€")
        .expect("GSM MO with escapes");
    assert_eq!(gsm.data_coding, 0);
}

#[tokio::test]
async fn mo_in_latin1_and_in_message_payload_are_decoded() {
    let r = rig().await;
    let latin1 = Segment {
        data_coding: 3,
        esm_class: 0,
        short_message: b"caf\xe9".to_vec(),
        concat: None,
    };
    assert_eq!(
        r.smsc
            .send_segments(SUBSCRIBER, SHORT_CODE, &[latin1])
            .await,
        Ok(vec![status::ESME_ROK])
    );

    let text = chinese(200);
    let empty = Segment {
        data_coding: 8,
        esm_class: 0,
        short_message: Vec::new(),
        concat: None,
    };
    let mut pdu = frame::deliver_sm(SUBSCRIBER, SHORT_CODE, &empty);
    let ucs2: Vec<u8> = text.encode_utf16().flat_map(|u| u.to_be_bytes()).collect();
    pdu.push_tlv(MessageDeliveryRequestTlvValue::MessagePayload(
        MessagePayload::new(AnyOctetString::from_vec(ucs2)),
    ));
    assert_eq!(r.smsc.send_deliver_sm(pdu).await, Ok(status::ESME_ROK));

    let mos = r.rec.wait_mos(2).await;
    assert!(mos.iter().any(|m| m.text == "café"));
    assert!(
        mos.iter().any(|m| m.text == text),
        "200 characters in one message_payload"
    );
}

#[tokio::test]
async fn an_undecodable_mo_is_refused_for_good() {
    let r = rig().await;
    let odd = Segment {
        data_coding: 8,
        esm_class: 0,
        short_message: vec![0x4F, 0x59, 0x00],
        concat: None,
    };
    assert_eq!(
        r.smsc.send_segments(SUBSCRIBER, SHORT_CODE, &[odd]).await,
        Ok(vec![status::ESME_RX_P_APPN])
    );
    let mut pdu = frame::deliver_sm(SUBSCRIBER, SHORT_CODE, &encode_mt("x")[0]);
    pdu.data_coding = DataCoding::from(0x04u8);
    assert_eq!(
        r.smsc.send_deliver_sm(pdu).await,
        Ok(status::ESME_RX_P_APPN),
        "8-bit data is not text"
    );
    assert!(r.rec.mos().is_empty());
    assert!(r.esme.is_bound(), "a bad MO does not cost the link");
}

#[tokio::test]
async fn a_long_chinese_mo_in_three_udh_parts_is_reassembled() {
    let r = rig().await;
    let text = chinese(150);
    let parts = encode_mt_with_reference(&text, 77);
    assert_eq!(parts.len(), 3);
    // Out of order, with a repeated part: each is acknowledged, the message is handed over once.
    let order = [
        parts[2].clone(),
        parts[0].clone(),
        parts[0].clone(),
        parts[1].clone(),
    ];
    let statuses = r
        .smsc
        .send_segments(SUBSCRIBER, SHORT_CODE, &order)
        .await
        .unwrap();
    assert_eq!(statuses, vec![status::ESME_ROK; 4]);
    let mos = r.rec.wait_mos(1).await;
    assert_eq!(mos.len(), 1);
    assert_eq!(mos[0].text, text);
    assert_eq!((mos[0].parts, mos[0].concat_reference), (3, Some(77)));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(r.rec.mos().len(), 1, "handed over exactly once");
}

#[tokio::test]
async fn a_300_character_chinese_mt_arrives_as_five_numbered_parts() {
    let r = rig().await;
    let text = chinese(300);
    let ids = timeout(WAIT, r.esme.submit(SUBSCRIBER, SHORT_CODE, &text))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ids.len(), 5);
    let mt = r
        .smsc
        .next_mt(WAIT)
        .await
        .expect("the simulator assembles the MT");
    assert_eq!(mt.text, text);
    assert_eq!(
        (mt.source.as_str(), mt.destination.as_str()),
        (SHORT_CODE, SUBSCRIBER)
    );
    assert_eq!(mt.segments.len(), 5);
    let reference = mt.segments[0].short_message[3];
    for (i, s) in mt.segments.iter().enumerate() {
        assert_eq!(s.esm_class, 0x40, "UDHI on every part");
        assert_eq!(s.data_coding, 0x08, "UCS-2");
        assert_eq!(
            &s.short_message[..6],
            &[0x05, 0x00, 0x03, reference, 5, i as u8 + 1]
        );
        assert!(s.short_message.len() <= 140);
        assert_eq!(s.message_id, ids[i]);
    }
    let joined: String = mt.segments.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(joined, text);
}

#[tokio::test]
async fn a_short_mt_has_esm_class_zero_on_the_wire() {
    let r = rig().await;
    r.esme
        .submit(SUBSCRIBER, SHORT_CODE, "您的验证码是123456")
        .await
        .unwrap();
    r.esme
        .submit(SUBSCRIBER, SHORT_CODE, "Code 123456")
        .await
        .unwrap();
    let first = r.smsc.next_mt(WAIT).await.unwrap();
    let second = r.smsc.next_mt(WAIT).await.unwrap();
    assert_eq!(first.segments.len(), 1);
    assert_eq!(
        (first.segments[0].esm_class, first.segments[0].data_coding),
        (0x00, 0x08)
    );
    assert_eq!(first.text, "您的验证码是123456");
    assert_eq!(
        (second.segments[0].esm_class, second.segments[0].data_coding),
        (0x00, 0x00)
    );
    assert_eq!(second.text, "Code 123456");
}

#[tokio::test]
async fn delivery_receipts_reach_the_handler() {
    let r = rig().await;
    let ids = r
        .esme
        .submit(SUBSCRIBER, SHORT_CODE, "到账提醒")
        .await
        .unwrap();
    let got = timeout(WAIT, async {
        loop {
            if let Some(rc) = r.rec.receipts.lock().unwrap().first().cloned() {
                return rc;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("a receipt arrives");
    assert_eq!(got.message_id, ids[0]);
    assert!(got.delivered());
    assert_eq!(got.source, SUBSCRIBER);
    assert!(r.rec.mos().is_empty(), "a receipt is not an MO");
}

#[tokio::test]
async fn throttled_submits_are_retried_until_accepted() {
    let mut config = SmscConfig::new("openhall", "secret");
    config.throttle = Some(Throttle::first(3));
    let r = rig_with(config, |_| {}).await;
    let ids = timeout(WAIT, r.esme.submit(SUBSCRIBER, SHORT_CODE, "余额查询结果"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ids.len(), 1);
    assert_eq!(r.smsc.throttled_count(), 3);
    assert_eq!(r.esme.stats().throttled, 3);
    assert_eq!(r.smsc.next_mt(WAIT).await.unwrap().text, "余额查询结果");
}

#[tokio::test]
async fn a_full_queue_is_retried_and_endless_throttling_gives_up() {
    let mut config = SmscConfig::new("openhall", "secret");
    config.throttle = Some(Throttle::first(2).with_status(status::ESME_RMSGQFUL));
    let r = rig_with(config, |_| {}).await;
    assert!(r.esme.submit(SUBSCRIBER, SHORT_CODE, "ok").await.is_ok());

    let mut config = SmscConfig::new("openhall", "secret");
    config.throttle = Some(Throttle::first(1000));
    let r = rig_with(config, |c| c.throttle_retries = 2).await;
    let err = timeout(WAIT, r.esme.submit(SUBSCRIBER, SHORT_CODE, "never"))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(
        err,
        SubmitError::Throttled {
            status: status::ESME_RTHROTTLED,
            attempts: 3
        }
    );
}

#[tokio::test]
async fn after_the_smsc_drops_the_connection_the_esme_reconnects_and_works() {
    let r = rig().await;
    r.smsc.drop_connection();
    assert!(
        r.smsc
            .wait_until(WAIT, || r.smsc.bind_count() == 2 && r.smsc.is_bound())
            .await,
        "re-bound"
    );
    assert!(r.esme.wait_bound(WAIT).await);
    assert_eq!(
        r.smsc.send_mo(SUBSCRIBER, SHORT_CODE, "流量").await,
        Ok(status::ESME_ROK)
    );
    assert_eq!(r.rec.wait_mos(1).await[0].text, "流量");
    r.esme
        .submit(SUBSCRIBER, SHORT_CODE, "剩余流量 3GB")
        .await
        .unwrap();
    assert_eq!(r.smsc.next_mt(WAIT).await.unwrap().text, "剩余流量 3GB");
    assert_eq!(r.esme.stats().binds, 2);
}

#[tokio::test]
async fn a_reply_in_flight_when_the_connection_drops_is_sent_again() {
    let mut config = SmscConfig::new("openhall", "secret");
    // Part 2 of 3 is never answered: the connection closes under it.
    config.drop_on_submit = Some(2);
    let r = rig_with(config, |_| {}).await;
    let text = chinese(150);
    let ids = timeout(WAIT, r.esme.submit(SUBSCRIBER, SHORT_CODE, &text))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ids.len(), 3);
    let mt = r
        .smsc
        .next_mt(WAIT)
        .await
        .expect("the reply completes after the reconnect");
    assert_eq!(mt.text, text);
    assert_eq!(r.smsc.bind_count(), 2);
}

#[tokio::test]
async fn a_submit_whose_answer_never_left_the_smsc_is_sent_again_and_counted_once() {
    let mut config = SmscConfig::new("openhall", "secret");
    // The connection goes while submit_sm 1 is answered: its submit_sm_resp never goes out.
    config.drop_while_answering = Some(1);
    let r = rig_with(config, |_| {}).await;
    let ids = timeout(WAIT, r.esme.submit(SUBSCRIBER, SHORT_CODE, "余额 12.00元"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ids.len(), 1);
    assert_eq!(r.smsc.next_mt(WAIT).await.unwrap().text, "余额 12.00元");
    assert_eq!(r.smsc.bind_count(), 2, "sent again after the reconnect");
    // Only the answered copy counts: the SMSC never acknowledged the first.
    assert!(r.smsc.next_mt(Duration::from_millis(300)).await.is_none());
    assert_eq!(r.smsc.mt_messages().len(), 1);
    assert_eq!(r.smsc.submitted_segments().len(), 1);
}

#[tokio::test]
async fn an_mo_whose_answer_is_lost_with_the_connection_is_delivered_again() {
    let r = rig().await;
    r.rec.delay_ms.store(300, Ordering::SeqCst);
    let smsc = r.smsc.clone();
    let sending = tokio::spawn(async move { smsc.send_mo(SUBSCRIBER, SHORT_CODE, "话费").await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    r.smsc.drop_connection();
    assert_eq!(
        timeout(WAIT, sending).await.unwrap().unwrap(),
        Err(SmscError::ConnectionLost)
    );
    // The handler finished anyway (it had stored the message)…
    assert_eq!(r.rec.wait_mos(1).await.len(), 1);
    // …and the SMSC, never having seen the answer, delivers it again after the reconnect:
    // the handler sees it twice, which is why the gateway's inbox must dedupe.
    assert!(
        r.smsc
            .wait_until(WAIT, || r.smsc.is_bound() && r.smsc.bind_count() == 2)
            .await
    );
    r.rec.delay_ms.store(0, Ordering::SeqCst);
    assert_eq!(
        r.smsc.send_mo(SUBSCRIBER, SHORT_CODE, "话费").await,
        Ok(status::ESME_ROK)
    );
    let mos = r.rec.wait_mos(2).await;
    assert!(mos.iter().all(|m| m.text == "话费"));
}

#[tokio::test]
async fn mo_parts_acknowledged_before_a_reconnect_still_complete_the_message() {
    let r = rig().await;
    let text = chinese(100);
    let parts = encode_mt_with_reference(&text, 9);
    assert_eq!(
        r.smsc
            .send_segments(SUBSCRIBER, SHORT_CODE, &parts[..1])
            .await,
        Ok(vec![status::ESME_ROK])
    );
    r.smsc.drop_connection();
    assert!(
        r.smsc
            .wait_until(WAIT, || r.smsc.bind_count() == 2 && r.smsc.is_bound())
            .await
    );
    // The SMSC only delivers what was not acknowledged: the second part.
    assert_eq!(
        r.smsc
            .send_segments(SUBSCRIBER, SHORT_CODE, &parts[1..])
            .await,
        Ok(vec![status::ESME_ROK])
    );
    let mos = r.rec.wait_mos(1).await;
    assert_eq!(mos.len(), 1);
    assert_eq!(mos[0].text, text);
}

#[tokio::test]
async fn a_temporary_failure_is_answered_esme_rx_t_appn_and_redelivery_works() {
    let r = rig().await;
    r.rec.fail.store(true, Ordering::SeqCst);
    assert_eq!(
        r.smsc.send_mo(SUBSCRIBER, SHORT_CODE, "余额").await,
        Ok(status::ESME_RX_T_APPN)
    );

    // A concatenated MO whose final part fails: redelivering that part completes it again.
    let text = chinese(100);
    let parts = encode_mt_with_reference(&text, 5);
    assert_eq!(parts.len(), 2);
    let statuses = r
        .smsc
        .send_segments(SUBSCRIBER, SHORT_CODE, &parts)
        .await
        .unwrap();
    assert_eq!(statuses, vec![status::ESME_ROK, status::ESME_RX_T_APPN]);
    r.rec.fail.store(false, Ordering::SeqCst);
    assert_eq!(
        r.smsc
            .send_segments(SUBSCRIBER, SHORT_CODE, &parts[1..])
            .await,
        Ok(vec![status::ESME_ROK])
    );
    let mos = r.rec.wait_mos(1).await;
    assert_eq!(mos.len(), 1);
    assert_eq!(mos[0].text, text);
}

#[tokio::test]
async fn the_smscs_unbind_is_answered_and_the_link_rebinds() {
    let r = rig().await;
    assert_eq!(
        r.smsc.send_unbind().await,
        Ok(status::ESME_ROK),
        "unbind_resp ESME_ROK"
    );
    assert!(
        r.smsc
            .wait_until(WAIT, || r.smsc.bind_count() == 2 && r.smsc.is_bound())
            .await
    );
    assert!(r.esme.wait_bound(WAIT).await);
    assert_eq!(
        r.smsc.send_mo(SUBSCRIBER, SHORT_CODE, "积分").await,
        Ok(status::ESME_ROK)
    );
}

#[tokio::test]
async fn an_unanswered_enquire_link_drops_and_rebuilds_the_link() {
    let mut config = SmscConfig::new("openhall", "secret");
    config.answer_enquire_link = false;
    let r = rig_with(config, |c| c.response_timeout = Duration::from_millis(300)).await;
    // 200 ms interval + 300 ms without an answer: a new bind well within the wait.
    assert!(
        r.smsc.wait_until(WAIT, || r.smsc.bind_count() >= 2).await,
        "the ESME rebinds"
    );
}

#[tokio::test]
async fn shutdown_sends_unbind_and_stops_reconnecting() {
    let r = rig().await;
    timeout(WAIT, r.esme.shutdown())
        .await
        .expect("shutdown is bounded");
    assert_eq!(r.smsc.unbinds_received(), 1);
    assert!(!r.esme.is_bound());
    assert!(r.smsc.wait_until(WAIT, || !r.smsc.is_bound()).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(r.smsc.bind_count(), 1, "no reconnection after shutdown");
    assert_eq!(
        r.esme.submit(SUBSCRIBER, SHORT_CODE, "late").await,
        Err(SubmitError::ShuttingDown)
    );
    let _: LinkStats = r.esme.stats();
}

#[tokio::test]
async fn shutdown_waits_for_a_running_handler_to_answer() {
    let r = rig().await;
    r.rec.delay_ms.store(300, Ordering::SeqCst);
    let smsc = r.smsc.clone();
    let sending = tokio::spawn(async move { smsc.send_mo(SUBSCRIBER, SHORT_CODE, "套餐").await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    timeout(WAIT, r.esme.shutdown()).await.unwrap();
    assert_eq!(
        timeout(WAIT, sending).await.unwrap().unwrap(),
        Ok(status::ESME_ROK),
        "answered before unbind"
    );
    assert_eq!(r.smsc.unbinds_received(), 1);
}

/// A bare SMSC that binds, then holds every submit_sm unanswered: shows the window.
#[tokio::test]
async fn no_more_than_the_window_of_submits_is_outstanding() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (counts_tx, mut counts_rx) = tokio::sync::mpsc::unbounded_channel::<usize>();
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut framed = Framed::new(stream, SmppCodec::new());
        let mut held: Vec<u32> = Vec::new();
        let mut next_id = 0;
        loop {
            match timeout(Duration::from_millis(300), framed.next()).await {
                Ok(Some(Ok(Inbound::Command(c)))) => match c.pdu() {
                    Some(Pdu::BindTransceiver(_)) => {
                        let resp = BindTransceiverResp::builder()
                            .system_id(COctetString::from_string("BARE".into()).unwrap())
                            .build();
                        framed
                            .send(Command::new(
                                CommandStatus::EsmeRok,
                                c.sequence_number(),
                                resp,
                            ))
                            .await
                            .unwrap();
                    }
                    Some(Pdu::EnquireLink) => {
                        framed
                            .send(Command::new(
                                CommandStatus::EsmeRok,
                                c.sequence_number(),
                                Pdu::EnquireLinkResp,
                            ))
                            .await
                            .unwrap();
                    }
                    Some(Pdu::SubmitSm(_)) => held.push(c.sequence_number()),
                    _ => {}
                },
                Ok(_) => return,
                Err(_) => {
                    // Quiet for 300 ms: report how many are outstanding, then answer them all.
                    if held.is_empty() {
                        continue;
                    }
                    counts_tx.send(held.len()).unwrap();
                    for seq in held.drain(..) {
                        next_id += 1;
                        let resp = SubmitSmResp::builder()
                            .message_id(COctetString::from_string(format!("B{next_id}")).unwrap())
                            .build();
                        framed
                            .send(Command::new(CommandStatus::EsmeRok, seq, resp))
                            .await
                            .unwrap();
                    }
                }
            }
        }
    });
    let mut config = test_config(port);
    config.window = 3;
    config.enquire_interval = Duration::from_secs(60);
    config.response_timeout = Duration::from_secs(5);
    let esme = Esme::connect(config, Arc::new(Recorder::default()));
    assert!(esme.wait_bound(WAIT).await);
    let sends: Vec<_> = (0..7)
        .map(|i| {
            let esme = esme.clone();
            tokio::spawn(async move {
                esme.submit(SUBSCRIBER, SHORT_CODE, &format!("msg {i}"))
                    .await
            })
        })
        .collect();
    for send in sends {
        let ids = timeout(Duration::from_secs(10), send)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(ids.len(), 1);
    }
    let mut counts = Vec::new();
    while let Ok(n) = counts_rx.try_recv() {
        counts.push(n);
    }
    assert_eq!(counts, vec![3, 3, 1], "7 submits through a window of 3");
    server.abort();
}

#[tokio::test]
async fn the_esme_skips_a_pdu_it_cannot_decode_and_keeps_the_link() {
    let r = rig().await;
    // esm_class with UDHI but a header longer than the message: decoded by rusmpp, refused by us.
    let bad = Segment {
        data_coding: 8,
        esm_class: 0x40,
        short_message: vec![0x09, 0x00, 0x03],
        concat: None,
    };
    let mut pdu = frame::deliver_sm(SUBSCRIBER, SHORT_CODE, &bad);
    pdu.esm_class = EsmClass::from(0x40u8);
    assert_eq!(
        r.smsc.send_deliver_sm(pdu).await,
        Ok(status::ESME_RX_P_APPN)
    );
    assert_eq!(
        r.smsc.send_mo(SUBSCRIBER, SHORT_CODE, "YE").await,
        Ok(status::ESME_ROK)
    );
}
