//! The SMSC side of a load run (`smpp-load`, the fault drills and the two-instance test): the
//! simulator sends N balance queries from M subscribers at a target rate to whatever gateway
//! binds to it, redelivers every MO the gateway did not acknowledge (as an SMSC does), and
//! matches the replies to the commands.
//!
//! Each number's texts are distinct spellings of the balance query (CXYE in any case, YE,
//! 余额 …): the hall takes the same text from the same number within 20 s for a redelivery,
//! and allows 30 commands a number in 10 minutes, so a run sends at most
//! [`TEXTS_PER_NUMBER`] commands from each number.
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::simulator::SmscHandle;
use crate::smpp::status;

/// Distinct spellings of the balance query.
pub const TEXTS_PER_NUMBER: usize = 23;

/// The k-th distinct spelling of the balance query (k < [`TEXTS_PER_NUMBER`]).
pub fn balance_text(k: usize) -> String {
    const WORDS: [&str; 7] = ["YE", "ye", "Ye", "yE", "余额", "查余额", "查询余额"];
    let k = k % TEXTS_PER_NUMBER;
    if k < 16 {
        "CXYE"
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if k & (1 << i) != 0 {
                    c.to_ascii_lowercase()
                } else {
                    c
                }
            })
            .collect()
    } else {
        WORDS[k - 16].to_owned()
    }
}

/// What to send.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    pub commands: usize,
    /// Numbers `first`, `first + 1`, … `first + subscribers - 1` send them, in turn.
    pub subscribers: usize,
    pub first: u64,
    /// Commands a second; 0 sends as fast as the gateway acknowledges.
    pub rate: f64,
    /// deliver_sm in flight at once.
    pub senders: usize,
    pub short_code: String,
    /// How long to wait for the last replies once every MO is acknowledged.
    pub reply_wait: Duration,
    /// An MO not acknowledged after this long (the gateway gone for good) is counted lost.
    pub give_up: Duration,
}

impl LoadPlan {
    pub fn check(&self) -> Result<(), String> {
        if self.subscribers == 0 || self.commands == 0 {
            return Err("--commands and --subscribers must be at least 1".into());
        }
        if self.commands.div_ceil(self.subscribers) > TEXTS_PER_NUMBER {
            return Err(format!(
                "at most {TEXTS_PER_NUMBER} commands a number (distinct texts within the hall's \
                 20 s redelivery window, and 30 commands in 10 minutes): use at least {} subscribers",
                self.commands.div_ceil(TEXTS_PER_NUMBER)
            ));
        }
        Ok(())
    }

    fn number(&self, j: usize) -> String {
        (self.first + (j % self.subscribers) as u64).to_string()
    }
}

/// What came of a run.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    pub commands: usize,
    /// MO the gateway acknowledged with ESME_ROK.
    pub acknowledged: usize,
    /// Deliveries repeated because the first was not acknowledged (link down, timeout,
    /// ESME_RX_T_APPN).
    pub redeliveries: u64,
    /// MO never acknowledged within `give_up`.
    pub lost: usize,
    pub replies: usize,
    /// Commands without a reply at the end.
    pub unanswered: usize,
    /// Replies beyond one a command.
    pub duplicates: usize,
    /// From the first deliver_sm to the last acknowledgement / the last reply.
    pub send_time: Duration,
    pub total_time: Duration,
    /// From the first attempt of each deliver_sm to its reply's submit_sm, sorted.
    pub latencies: Vec<Duration>,
    pub ack_latencies: Vec<Duration>,
}

impl LoadReport {
    pub fn commands_per_second(&self) -> f64 {
        self.replies as f64 / self.total_time.as_secs_f64().max(1e-9)
    }

    pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
        if sorted.is_empty() {
            return Duration::ZERO;
        }
        sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
    }

    /// Lost, unanswered and duplicated all zero.
    pub fn clean(&self) -> bool {
        self.lost == 0 && self.unanswered == 0 && self.duplicates == 0
    }

    /// The human-readable report followed by one `RESULT key=value …` line for scripts.
    pub fn render(&self) -> String {
        let ms = |d: Duration| format!("{:.1}", d.as_secs_f64() * 1000.0);
        let p = |q| ms(Self::percentile(&self.latencies, q));
        let a = |q| ms(Self::percentile(&self.ack_latencies, q));
        format!(
            "commands {}: acknowledged {} in {:.2} s ({:.0}/s), redeliveries {}\n\
             replies {} in {:.2} s: {:.0} commands/s end to end\n\
             reply latency ms (deliver_sm → submit_sm): p50 {} p90 {} p99 {} max {}\n\
             ack latency ms (deliver_sm → deliver_sm_resp): p50 {} p99 {}\n\
             lost MO {}, unanswered {}, duplicate replies {}\n\
             RESULT commands={} acknowledged={} replies={} lost={} unanswered={} duplicates={} \
             redeliveries={} rate={:.0} p50_ms={} p99_ms={}",
            self.commands,
            self.acknowledged,
            self.send_time.as_secs_f64(),
            self.acknowledged as f64 / self.send_time.as_secs_f64().max(1e-9),
            self.redeliveries,
            self.replies,
            self.total_time.as_secs_f64(),
            self.commands_per_second(),
            p(0.5),
            p(0.9),
            p(0.99),
            p(1.0),
            a(0.5),
            a(0.99),
            self.lost,
            self.unanswered,
            self.duplicates,
            self.commands,
            self.acknowledged,
            self.replies,
            self.lost,
            self.unanswered,
            self.duplicates,
            self.redeliveries,
            self.commands_per_second(),
            p(0.5),
            p(0.99),
        )
    }
}

#[derive(Default)]
struct Tally {
    /// Per number: when each of its commands was first sent, oldest first, not yet answered.
    waiting: HashMap<String, VecDeque<Instant>>,
    sent: HashMap<String, usize>,
    replied: HashMap<String, usize>,
    latencies: Vec<Duration>,
    last_reply: Option<Instant>,
}

/// Runs `plan` through the simulator, which must already be listening; waits for the first
/// bind. Replies are every MT to one of the plan's numbers.
pub async fn run(sim: &SmscHandle, plan: &LoadPlan) -> Result<LoadReport, String> {
    plan.check()?;
    if !sim.wait_bound(plan.give_up).await {
        return Err(format!("no gateway bound within {:?}", plan.give_up));
    }
    let tally: Arc<Mutex<Tally>> = Arc::default();
    let acked = Arc::new(AtomicUsize::new(0));
    let done_sending = Arc::new(tokio::sync::Notify::new());

    let collector = {
        let sim = sim.clone();
        let tally = tally.clone();
        let acked = acked.clone();
        let plan = plan.clone();
        let done_sending = done_sending.clone();
        tokio::spawn(async move {
            let mut sending = true;
            let finished = done_sending.notified();
            tokio::pin!(finished);
            loop {
                let wait = if sending {
                    Duration::from_millis(200)
                } else {
                    plan.reply_wait
                };
                let mt = tokio::select! {
                    _ = &mut finished, if sending => { sending = false; continue; }
                    mt = sim.next_mt(wait) => mt,
                };
                let Some(mt) = mt else {
                    if sending {
                        continue;
                    }
                    break;
                };
                let now = Instant::now();
                let mut t = tally.lock().unwrap();
                *t.replied.entry(mt.destination.clone()).or_default() += 1;
                if let Some(at) = t
                    .waiting
                    .get_mut(&mt.destination)
                    .and_then(VecDeque::pop_front)
                {
                    t.latencies.push(now - at);
                }
                t.last_reply = Some(now);
                let answered: usize = t.latencies.len();
                drop(t);
                if !sending && answered >= acked.load(Ordering::Relaxed) {
                    break;
                }
            }
        })
    };

    let next = Arc::new(AtomicUsize::new(0));
    let redeliveries = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(plan.senders);
    for _ in 0..plan.senders.max(1) {
        let sim = sim.clone();
        let plan = plan.clone();
        let next = next.clone();
        let tally = tally.clone();
        let acked = acked.clone();
        let redeliveries = redeliveries.clone();
        tasks.push(tokio::spawn(async move {
            let mut ack_latencies = Vec::new();
            let mut lost = 0usize;
            loop {
                let j = next.fetch_add(1, Ordering::Relaxed);
                if j >= plan.commands {
                    break;
                }
                if plan.rate > 0.0 {
                    let due = start + Duration::from_secs_f64(j as f64 / plan.rate);
                    tokio::time::sleep_until(due.into()).await;
                }
                let number = plan.number(j);
                let text = balance_text(j / plan.subscribers);
                let first_try = Instant::now();
                {
                    let mut t = tally.lock().unwrap();
                    t.waiting
                        .entry(number.clone())
                        .or_default()
                        .push_back(first_try);
                    *t.sent.entry(number.clone()).or_default() += 1;
                }
                let mut attempt = 0u32;
                loop {
                    let tried = Instant::now();
                    match sim.send_mo(&number, &plan.short_code, &text).await {
                        Ok(status::ESME_ROK) => {
                            ack_latencies.push(tried.elapsed());
                            acked.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                        _ if first_try.elapsed() > plan.give_up => {
                            lost += 1;
                            break;
                        }
                        _ => {
                            // Not acknowledged: the SMSC keeps it and delivers it again.
                            attempt += 1;
                            redeliveries.fetch_add(1, Ordering::Relaxed);
                            let pause = Duration::from_millis(20u64 << attempt.min(5));
                            tokio::time::sleep(pause).await;
                        }
                    }
                }
            }
            (ack_latencies, lost)
        }));
    }
    let mut report = LoadReport {
        commands: plan.commands,
        ..LoadReport::default()
    };
    for task in tasks {
        let (acks, lost) = task.await.map_err(|e| e.to_string())?;
        report.ack_latencies.extend(acks);
        report.lost += lost;
    }
    report.send_time = start.elapsed();
    done_sending.notify_one();
    collector.await.map_err(|e| e.to_string())?;

    let t = tally.lock().unwrap();
    report.acknowledged = acked.load(Ordering::Relaxed);
    report.redeliveries = redeliveries.load(Ordering::Relaxed);
    for (number, sent) in &t.sent {
        let replied = t.replied.get(number).copied().unwrap_or(0);
        report.unanswered += sent.saturating_sub(replied);
        report.duplicates += replied.saturating_sub(*sent);
    }
    report.replies = t.replied.values().sum();
    report.total_time = t.last_reply.map_or(report.send_time, |l| l - start);
    report.latencies = t.latencies.clone();
    report.latencies.sort();
    report.ack_latencies.sort();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn the_texts_of_a_number_are_distinct_balance_queries() {
        let texts: HashSet<String> = (0..TEXTS_PER_NUMBER).map(balance_text).collect();
        assert_eq!(texts.len(), TEXTS_PER_NUMBER);
        for t in &texts {
            assert!(
                matches!(crate::grammar::parse(t), crate::grammar::Command::Balance),
                "{t}"
            );
        }
    }

    #[test]
    fn a_plan_keeps_under_the_per_number_limit() {
        let plan = LoadPlan {
            commands: 100,
            subscribers: 4,
            first: 152_0000_0000,
            rate: 0.0,
            senders: 8,
            short_code: "10086".into(),
            reply_wait: Duration::from_secs(1),
            give_up: Duration::from_secs(1),
        };
        assert!(plan.check().is_err());
        assert!(LoadPlan {
            subscribers: 5,
            ..plan.clone()
        }
        .check()
        .is_ok());
        assert_eq!(plan.number(5), "15200000001");
    }
}
