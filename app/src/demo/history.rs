//! Deterministic, believable usage for a demo subscriber in one month: calls, SMS, mobile data
//! and (for students) campus WLAN, shaped by a profile. The same profile, month and seed always
//! give the same records.
use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::domain::{Msisdn, Period};
use crate::service::usage::{Direction, UsageKind, UsageRecord};

/// How a subscriber uses the phone in a month.
#[derive(Clone, Copy, Debug)]
pub struct UsageProfile {
    pub calls: u32,
    /// Mean call length in seconds.
    pub call_secs: i64,
    pub sms: u32,
    pub data_sessions: u32,
    /// Mean mobile data per session, in KB.
    pub data_kb: i64,
    pub wlan_sessions: u32,
}

pub(crate) fn month_of_usage(
    msisdn: &Msisdn,
    period: Period,
    until: DateTime<Utc>,
    p: UsageProfile,
) -> Vec<UsageRecord> {
    let seed = msisdn.as_str().parse::<u64>().unwrap_or(0)
        ^ ((period.year() as u64) << 8 | period.month() as u64);
    let mut rng = StdRng::seed_from_u64(seed);
    let start = period.start();
    let span = (period.end().min(until) - start).num_seconds().max(0);
    if span == 0 {
        return Vec::new();
    }
    // Scale a month's counts to the part of it that has passed (the current month so far).
    let share = |n: u32| ((n as i64 * span) / (period.end() - start).num_seconds()) as u32;
    let at = |rng: &mut StdRng| {
        // People sleep: keep events between 07:00 and 24:00 Shanghai time.
        loop {
            let t = start + Duration::seconds(rng.gen_range(0..span));
            let hour = (t.timestamp() / 3600 + 8).rem_euclid(24);
            if hour >= 7 {
                return t;
            }
        }
    };
    let contacts: Vec<String> = (0..12)
        .map(|_| {
            format!(
                "1{}{:09}",
                rng.gen_range(3..=9),
                rng.gen_range(0..1_000_000_000u64)
            )
        })
        .collect();
    let mut out = Vec::new();
    let mut push = |kind: UsageKind, started_at: DateTime<Utc>, n: usize| {
        out.push(UsageRecord {
            reference: format!("demo:{}:{period}:{n}", msisdn.as_str()),
            started_at,
            kind,
        });
    };
    let mut n = 0;
    for _ in 0..share(p.calls) {
        n += 1;
        let other = contacts[rng.gen_range(0..contacts.len())].clone();
        let direction = if rng.gen_bool(0.55) {
            Direction::Out
        } else {
            Direction::In
        };
        let duration_secs = p.call_secs * rng.gen_range(20..220) / 100 + 5;
        let t = at(&mut rng);
        push(
            UsageKind::Call {
                other_party: other,
                direction,
                duration_secs,
            },
            t,
            n,
        );
    }
    for _ in 0..share(p.sms) {
        n += 1;
        let other = if rng.gen_bool(0.3) {
            "10086".to_string()
        } else {
            contacts[rng.gen_range(0..contacts.len())].clone()
        };
        let direction = if rng.gen_bool(0.5) {
            Direction::Out
        } else {
            Direction::In
        };
        let t = at(&mut rng);
        push(
            UsageKind::Sms {
                other_party: other,
                direction,
            },
            t,
            n,
        );
    }
    for _ in 0..share(p.data_sessions) {
        n += 1;
        let volume_kb = p.data_kb * rng.gen_range(10..190) / 100 + 1;
        let t = at(&mut rng);
        push(UsageKind::Data { volume_kb }, t, n);
    }
    for _ in 0..share(p.wlan_sessions) {
        n += 1;
        let duration_secs = rng.gen_range(600..7200);
        let t = at(&mut rng);
        push(
            UsageKind::Wlan {
                duration_secs,
                volume_kb: duration_secs * 60,
                on_campus: rng.gen_bool(0.85),
            },
            t,
            n,
        );
    }
    out.sort_by_key(|r| r.started_at);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: UsageProfile = UsageProfile {
        calls: 40,
        call_secs: 120,
        sms: 20,
        data_sessions: 30,
        data_kb: 50_000,
        wlan_sessions: 10,
    };

    #[test]
    fn the_same_inputs_give_the_same_month() {
        let m = Msisdn::parse("13800138000").unwrap();
        let p = Period::parse("2026-10").unwrap();
        let a = month_of_usage(&m, p, p.end(), P);
        let b = month_of_usage(&m, p, p.end(), P);
        assert_eq!(a.len(), 100);
        assert_eq!(
            a.iter().map(|r| &r.reference).collect::<Vec<_>>(),
            b.iter().map(|r| &r.reference).collect::<Vec<_>>()
        );
        assert!(a.iter().all(|r| p.contains(r.started_at)));
    }

    #[test]
    fn the_current_month_stops_at_now() {
        let m = Msisdn::parse("13800138000").unwrap();
        let p = Period::parse("2026-11").unwrap();
        let now = p.start() + Duration::days(15);
        let part = month_of_usage(&m, p, now, P);
        assert!(part.len() < 100 && !part.is_empty());
        assert!(part.iter().all(|r| r.started_at < now));
    }
}
