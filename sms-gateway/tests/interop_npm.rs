//! Interoperability: the gateway against an SMSC this project did not write — the npm package
//! `smpp` (node-smpp 0.5.1), driven by tests/interop/smsc.js. The runtime binds to it, answers
//! MO it delivers in UCS-2, and its replies (a long Chinese one in UDH-concatenated parts) and
//! the receipts it sends back must come through intact.
//!
//! Needs `node` and `npm ci --prefix tests/interop`. Without them the test says it is skipped
//! and passes, unless `OPENHALL_INTEROP_REQUIRED=1` (as CI sets it), when it fails.
mod support;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use app::domain::Msisdn;
use app::testing::TestHall;
use serde_json::{json, Value};
use sms_gateway::runtime::{Gateway, RuntimeOptions};
use support::*;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;
use tokio::time::timeout;

fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/interop")
}

/// Whether the node SMSC can run here; prints why not.
fn available() -> bool {
    let node = std::process::Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let modules = interop_dir()
        .join("node_modules/smpp/package.json")
        .exists();
    if node && modules {
        return true;
    }
    let required = std::env::var("OPENHALL_INTEROP_REQUIRED").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "OPENHALL_INTEROP_REQUIRED=1 but node ({node}) or tests/interop/node_modules ({modules}) is missing: run `npm ci --prefix tests/interop`"
    );
    println!("skipped: node or tests/interop/node_modules missing");
    false
}

/// The node SMSC: its JSON events as they come, and its stdin for MO.
struct NodeSmsc {
    child: Child,
    stdin: Option<ChildStdin>,
    events: mpsc::UnboundedReceiver<Value>,
    /// Events read while looking for another.
    seen: Vec<Value>,
}

impl NodeSmsc {
    async fn start() -> Self {
        let mut child = Command::new("node")
            .arg(interop_dir().join("smsc.js"))
            .args(["0", "openhall", "secret"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start node");
        let stdout = child.stdout.take().unwrap();
        let (tx, events) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                match serde_json::from_str::<Value>(&line) {
                    Ok(v) => {
                        let _ = tx.send(v);
                    }
                    Err(_) => eprintln!("node SMSC: {line}"),
                }
            }
        });
        let stdin = child.stdin.take();
        NodeSmsc {
            child,
            stdin,
            events,
            seen: Vec::new(),
        }
    }

    /// The next event named `name` (earlier events of other names are kept in `seen`).
    async fn next(&mut self, name: &str) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        if let Some(i) = self.seen.iter().position(|e| e["event"] == name) {
            return self.seen.remove(i);
        }
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match timeout(left, self.events.recv()).await {
                Ok(Some(e)) if e["event"] == name => return e,
                Ok(Some(e)) => self.seen.push(e),
                Ok(None) => panic!("the node SMSC exited; saw {:?}", self.seen),
                Err(_) => panic!("no {name} from the node SMSC; saw {:?}", self.seen),
            }
        }
    }

    async fn send_mo(&mut self, id: u32, from: &str, to: &str, text: &str) -> i64 {
        let line = json!({"id": id, "from": from, "to": to, "text": text}).to_string() + "\n";
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(line.as_bytes()).await.unwrap();
        stdin.flush().await.unwrap();
        let resp = self.next("deliver_sm_resp").await;
        assert_eq!(resp["id"], id, "{resp}");
        resp["status"]
            .as_i64()
            .unwrap_or_else(|| panic!("no status: {resp}"))
    }

    async fn stop(mut self) {
        drop(self.stdin.take());
        let _ = timeout(WAIT, self.child.wait()).await;
    }
}

#[tokio::test]
async fn the_gateway_works_with_node_smpp_as_the_smsc() {
    if !available() {
        return;
    }
    let t = TestHall::empty().await;
    t.subscriber(SUBSCRIBER, 5000).await;
    let mut node = NodeSmsc::start().await;
    let port = node.next("listening").await["port"].as_u64().unwrap() as u16;

    let mut options = RuntimeOptions::new(SHORT_CODE);
    options.poll = Duration::from_millis(100);
    let gw = Gateway::start_with(
        t.hall.clone(),
        esme_config(port, "openhall", "secret"),
        Arc::new(TestCommands::default()),
        options,
        |inbox| inbox,
    );
    assert!(gw.esme().wait_bound(WAIT).await, "binds to node-smpp");
    assert_eq!(node.next("bound").await["system_id"], "openhall");

    // A short Chinese reply: one UCS-2 submit_sm, no UDH.
    assert_eq!(node.send_mo(1, SUBSCRIBER, SHORT_CODE, "CXYE").await, 0);
    let sm = node.next("submit_sm").await;
    assert_eq!(sm["source"], SHORT_CODE);
    assert_eq!(sm["destination"], SUBSCRIBER);
    assert_eq!(sm["data_coding"], 8);
    assert_eq!(sm["udh"], json!([]));
    assert_eq!(sm["text"], "您的余额为50.00元");

    // node's UCS-2 MO decodes to the same Chinese text.
    assert_eq!(node.send_mo(2, SUBSCRIBER, SHORT_CODE, "ECHO中文").await, 0);
    assert_eq!(node.next("submit_sm").await["text"], "收到ECHO中文");

    // A 300-character reply: five parts that node-smpp splits into UDH and UCS-2 text.
    assert_eq!(node.send_mo(3, SUBSCRIBER, SHORT_CODE, "LONG").await, 0);
    let mut parts = Vec::new();
    for _ in 0..5 {
        parts.push(node.next("submit_sm").await);
    }
    let reference = parts[0]["udh"][0][2].clone();
    let mut by_seq: Vec<(u64, String)> = parts
        .iter()
        .map(|p| {
            assert_eq!(p["data_coding"], 8, "{p}");
            assert_eq!(p["esm_class"].as_u64().unwrap() & 0x40, 0x40, "UDHI: {p}");
            let ie = &p["udh"][0];
            assert_eq!((ie[0].clone(), ie[1].clone()), (json!(0), json!(3)), "{p}");
            assert_eq!(
                (ie[2].clone(), ie[3].clone()),
                (reference.clone(), json!(5))
            );
            (
                ie[4].as_u64().unwrap(),
                p["text"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    by_seq.sort();
    assert_eq!(
        by_seq.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    let joined: String = by_seq.into_iter().map(|(_, t)| t).collect();
    assert_eq!(joined, chinese(300), "reassembles to the original");

    // node's delivery receipts (one per part: 1 + 1 + 5) are matched with the sent messages.
    assert!(
        eventually(|| async { gw.stats().receipts_matched == 7 }).await,
        "receipts: {:?}",
        gw.stats()
    );
    let out = t
        .outbox_for(&Msisdn::parse(SUBSCRIBER).unwrap(), 10)
        .await
        .unwrap();
    assert_eq!(out.len(), 3);
    assert!(out.iter().all(|o| o.status == "sent"));

    timeout(WAIT, gw.shutdown()).await.expect("bounded");
    node.next("unbind").await;
    node.stop().await;
}
