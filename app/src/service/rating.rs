//! Rating: a month's usage against its allowances. Records are walked in time order; each
//! consumes what is left of its allowance first and only the rest is overage. Pure functions over
//! plain inputs, so every tariff rule here is unit-tested without a database.
use std::collections::HashMap;
use std::ops::Add;

use serde::Serialize;

use crate::domain::Fen;

/// Outgoing calls beyond the allowance: 0.19 元 per started minute, rounded up per call.
pub const CALL_FEN_PER_MINUTE: i64 = 19;
/// Outgoing SMS beyond the allowance: 0.10 元 each.
pub const SMS_FEN_EACH: i64 = 10;
/// Data beyond the allowance: 5 元 per GB, charged on the month's total overage (rounded up to
/// the fen once), not per session.
pub const DATA_FEN_PER_GB: i64 = 500;
pub const KB_PER_MB: i64 = 1024;
pub const KB_PER_GB: i64 = 1024 * 1024;
/// WLAN beyond the allowance, per started minute of a session.
pub const WLAN_CAMPUS_FEN_PER_MINUTE: i64 = 2;
pub const WLAN_OFF_CAMPUS_FEN_PER_MINUTE: i64 = 5;
/// WLAN overage never costs more than 500 元 a month …
pub const WLAN_MONTHLY_CAP: Fen = Fen::yuan(500);
/// … and the WLAN service stops at 40 GB a month.
pub const WLAN_VOLUME_CAP_KB: i64 = 40 * KB_PER_GB;

/// What a month includes: the base plan, every add-on live in the month, and data packs
/// redeemed with points. Data is kept in KB, the unit usage arrives in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Allowances {
    pub voice_minutes: i64,
    pub sms_count: i64,
    pub data_kb: i64,
    pub wlan_minutes: i64,
}

impl Allowances {
    /// From a catalogue row (products store data in MB).
    pub fn from_product(
        voice_minutes: i64,
        data_mb: i64,
        sms_count: i64,
        wlan_minutes: i64,
    ) -> Self {
        Self {
            voice_minutes,
            sms_count,
            data_kb: data_mb * KB_PER_MB,
            wlan_minutes,
        }
    }

    pub fn data_mb(data_mb: i64) -> Self {
        Self {
            data_kb: data_mb * KB_PER_MB,
            ..Self::default()
        }
    }
}

impl Add for Allowances {
    type Output = Allowances;
    fn add(self, o: Allowances) -> Allowances {
        Allowances {
            voice_minutes: self.voice_minutes + o.voice_minutes,
            sms_count: self.sms_count + o.sms_count,
            data_kb: self.data_kb + o.data_kb,
            wlan_minutes: self.wlan_minutes + o.wlan_minutes,
        }
    }
}

/// One usage record as rating sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    Call {
        outgoing: bool,
        duration_secs: i64,
    },
    Sms {
        outgoing: bool,
    },
    Data {
        volume_kb: i64,
    },
    Wlan {
        duration_secs: i64,
        volume_kb: i64,
        on_campus: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UsageEvent {
    /// The record's id, so that per-record charges can be shown in the detail records.
    pub id: i64,
    pub started_at_ms: i64,
    pub event: Event,
}

/// One allowance: how much the month includes, how much was used, and how that use split
/// between the allowance (`within`) and overage (`over`). Units: minutes, messages or KB.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Meter {
    pub allowance: i64,
    pub used: i64,
    pub within: i64,
    pub over: i64,
}

impl Meter {
    fn new(allowance: i64) -> Self {
        Self {
            allowance: allowance.max(0),
            ..Self::default()
        }
    }

    /// Uses `units`, from the allowance while it lasts; returns the units that are overage.
    fn consume(&mut self, units: i64) -> i64 {
        let units = units.max(0);
        let within = units.min(self.remaining());
        self.used += units;
        self.within += within;
        self.over += units - within;
        units - within
    }

    pub fn remaining(&self) -> i64 {
        self.allowance - self.within
    }
}

/// Overage by category.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Overage {
    pub voice: Fen,
    pub sms: Fen,
    pub data: Fen,
    pub wlan: Fen,
}

impl Overage {
    pub fn total(&self) -> Fen {
        self.voice + self.sms + self.data + self.wlan
    }
}

/// A rated month.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Rating {
    /// Outgoing call minutes (incoming calls are free and use no allowance).
    pub voice: Meter,
    /// Outgoing messages.
    pub sms: Meter,
    /// Data in KB.
    pub data: Meter,
    /// WLAN minutes, on and off campus together.
    pub wlan: Meter,
    pub wlan_campus_over_minutes: i64,
    pub wlan_off_campus_over_minutes: i64,
    pub wlan_volume_kb: i64,
    /// The month's WLAN volume reached 40 GB: the service stops until next month.
    pub wlan_cap_reached: bool,
    /// WLAN overage hit the 500 元 monthly cap.
    pub wlan_fee_capped: bool,
    pub overage: Overage,
    /// The overage each record caused, by record id (records within the allowance are absent).
    /// Data and WLAN amounts are the record's share of the month's rounded / capped total, so
    /// the records always add up to the category total.
    #[serde(skip)]
    pub record_charges: HashMap<i64, Fen>,
}

impl Rating {
    pub fn record_charge(&self, id: i64) -> Fen {
        self.record_charges.get(&id).copied().unwrap_or(Fen::ZERO)
    }
}

/// Started minutes: 1–60 seconds is one minute, 61 is two; a call that never connected is none.
pub fn started_minutes(duration_secs: i64) -> i64 {
    (duration_secs.max(0) + 59) / 60
}

/// The data charge for a month's total overage, rounded up to the fen.
pub fn data_fee(over_kb: i64) -> Fen {
    let over = over_kb.max(0);
    Fen::new((over * DATA_FEN_PER_GB + KB_PER_GB - 1) / KB_PER_GB)
}

/// Rates a month: records in time order (then id), allowances first, then overage.
pub fn rate(allowances: Allowances, events: &[UsageEvent]) -> Rating {
    let mut order: Vec<&UsageEvent> = events.iter().collect();
    order.sort_by_key(|e| (e.started_at_ms, e.id));

    let mut r = Rating {
        voice: Meter::new(allowances.voice_minutes),
        sms: Meter::new(allowances.sms_count),
        data: Meter::new(allowances.data_kb),
        wlan: Meter::new(allowances.wlan_minutes),
        ..Rating::default()
    };
    // WLAN overage before the cap, to attribute the capped total to records.
    let mut wlan_uncapped = Fen::ZERO;
    let charge = |r: &mut Rating, id: i64, fen: Fen| {
        if fen.get() != 0 {
            *r.record_charges.entry(id).or_default() += fen;
        }
    };
    for e in order {
        match e.event {
            Event::Call {
                outgoing: true,
                duration_secs,
            } => {
                let over = r.voice.consume(started_minutes(duration_secs));
                let fee = Fen::new(over * CALL_FEN_PER_MINUTE);
                r.overage.voice += fee;
                charge(&mut r, e.id, fee);
            }
            Event::Sms { outgoing: true } => {
                let over = r.sms.consume(1);
                let fee = Fen::new(over * SMS_FEN_EACH);
                r.overage.sms += fee;
                charge(&mut r, e.id, fee);
            }
            // Incoming calls and messages are free and use no allowance.
            Event::Call {
                outgoing: false, ..
            }
            | Event::Sms { outgoing: false } => {}
            Event::Data { volume_kb } => {
                let before = data_fee(r.data.over);
                r.data.consume(volume_kb);
                let after = data_fee(r.data.over);
                r.overage.data = after;
                charge(&mut r, e.id, after - before);
            }
            Event::Wlan {
                duration_secs,
                volume_kb,
                on_campus,
            } => {
                r.wlan_volume_kb += volume_kb.max(0);
                let over = r.wlan.consume(started_minutes(duration_secs));
                let rate = if on_campus {
                    r.wlan_campus_over_minutes += over;
                    WLAN_CAMPUS_FEN_PER_MINUTE
                } else {
                    r.wlan_off_campus_over_minutes += over;
                    WLAN_OFF_CAMPUS_FEN_PER_MINUTE
                };
                let before = wlan_uncapped.min(WLAN_MONTHLY_CAP);
                wlan_uncapped += Fen::new(over * rate);
                let after = wlan_uncapped.min(WLAN_MONTHLY_CAP);
                r.overage.wlan = after;
                charge(&mut r, e.id, after - before);
            }
        }
    }
    r.wlan_fee_capped = wlan_uncapped >= WLAN_MONTHLY_CAP;
    r.wlan_cap_reached = r.wlan_volume_kb >= WLAN_VOLUME_CAP_KB;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn ev(id: i64, minute: i64, event: Event) -> UsageEvent {
        UsageEvent {
            id,
            started_at_ms: minute * MIN,
            event,
        }
    }

    fn call_out(id: i64, minute: i64, secs: i64) -> UsageEvent {
        ev(
            id,
            minute,
            Event::Call {
                outgoing: true,
                duration_secs: secs,
            },
        )
    }

    fn wlan(id: i64, minute: i64, minutes: i64, on_campus: bool) -> UsageEvent {
        ev(
            id,
            minute,
            Event::Wlan {
                duration_secs: minutes * 60,
                volume_kb: 1024,
                on_campus,
            },
        )
    }

    fn voice(minutes: i64) -> Allowances {
        Allowances {
            voice_minutes: minutes,
            ..Allowances::default()
        }
    }

    fn sum_of_records(r: &Rating) -> Fen {
        r.record_charges.values().copied().sum()
    }

    #[test]
    fn call_minutes_round_up_per_call() {
        assert_eq!(started_minutes(0), 0);
        assert_eq!(started_minutes(1), 1);
        assert_eq!(started_minutes(60), 1);
        assert_eq!(started_minutes(61), 2);
        assert_eq!(started_minutes(-5), 0);
        // Two 61-second calls are four minutes, not three: rounding is per call.
        let r = rate(voice(0), &[call_out(1, 0, 61), call_out(2, 5, 61)]);
        assert_eq!(r.voice.over, 4);
        assert_eq!(r.overage.voice, Fen::new(4 * 19));
    }

    #[test]
    fn allowance_is_consumed_in_time_order_before_overage() {
        // Given out of order: the earlier call (id 2) uses the allowance, the later one pays.
        let events = [call_out(1, 100, 8 * 60), call_out(2, 10, 5 * 60)];
        let r = rate(voice(10), &events);
        assert_eq!(r.voice.used, 13);
        assert_eq!(r.voice.within, 10);
        assert_eq!(r.voice.remaining(), 0);
        assert_eq!(r.voice.over, 3);
        assert_eq!(r.overage.voice, Fen::new(57));
        assert_eq!(r.record_charge(2), Fen::ZERO);
        assert_eq!(r.record_charge(1), Fen::new(57));
        // Within the allowance nothing is charged and the rest remains.
        let r = rate(voice(200), &events);
        assert_eq!(r.overage.total(), Fen::ZERO);
        assert_eq!(r.voice.remaining(), 187);
    }

    #[test]
    fn incoming_calls_and_messages_are_free() {
        let events = [
            ev(
                1,
                0,
                Event::Call {
                    outgoing: false,
                    duration_secs: 3600,
                },
            ),
            ev(2, 1, Event::Sms { outgoing: false }),
        ];
        let r = rate(Allowances::default(), &events);
        assert_eq!(r.overage.total(), Fen::ZERO);
        assert_eq!(r.voice.used, 0);
        assert_eq!(r.sms.used, 0);
    }

    #[test]
    fn sms_beyond_allowance_cost_ten_fen_each() {
        let events: Vec<_> = (0..5)
            .map(|i| ev(i, i, Event::Sms { outgoing: true }))
            .collect();
        let r = rate(
            Allowances {
                sms_count: 2,
                ..Allowances::default()
            },
            &events,
        );
        assert_eq!(r.sms.over, 3);
        assert_eq!(r.overage.sms, Fen::new(30));
        assert_eq!(r.record_charge(0), Fen::ZERO);
        assert_eq!(r.record_charge(4), Fen::new(10));
    }

    #[test]
    fn data_costs_five_yuan_a_gb_on_the_month_total() {
        assert_eq!(data_fee(KB_PER_GB), Fen::new(500));
        assert_eq!(data_fee(1), Fen::new(1), "rounded up");
        assert_eq!(data_fee(0), Fen::ZERO);
        assert_eq!(data_fee(KB_PER_GB / 2), Fen::new(250));
        let allowance = Allowances::data_mb(1024);
        // 1 GB allowance, 2 GB used: 1 GB over = 5 元.
        let r = rate(
            allowance,
            &[
                ev(
                    1,
                    0,
                    Event::Data {
                        volume_kb: KB_PER_GB,
                    },
                ),
                ev(
                    2,
                    1,
                    Event::Data {
                        volume_kb: KB_PER_GB,
                    },
                ),
            ],
        );
        assert_eq!(r.data.over, KB_PER_GB);
        assert_eq!(r.overage.data, Fen::new(500));
        assert_eq!(r.record_charge(1), Fen::ZERO);
        assert_eq!(r.record_charge(2), Fen::new(500));
        // Many tiny overages round once for the month, not once per session.
        let tiny: Vec<_> = (0..10)
            .map(|i| ev(i, i, Event::Data { volume_kb: 1 }))
            .collect();
        let r = rate(Allowances::default(), &tiny);
        assert_eq!(r.overage.data, Fen::new(1));
        assert_eq!(sum_of_records(&r), Fen::new(1));
    }

    #[test]
    fn wlan_rates_differ_on_and_off_campus() {
        let allowance = Allowances {
            wlan_minutes: 60,
            ..Allowances::default()
        };
        // 60 minutes free, then 30 on campus (0.60 元) and 30 off campus (1.50 元).
        let r = rate(
            allowance,
            &[
                wlan(1, 0, 60, true),
                wlan(2, 100, 30, true),
                wlan(3, 200, 30, false),
            ],
        );
        assert_eq!(r.wlan.over, 60);
        assert_eq!(r.wlan_campus_over_minutes, 30);
        assert_eq!(r.wlan_off_campus_over_minutes, 30);
        assert_eq!(r.overage.wlan, Fen::new(30 * 2 + 30 * 5));
        assert_eq!(r.record_charge(1), Fen::ZERO);
        assert_eq!(r.record_charge(2), Fen::new(60));
        assert_eq!(r.record_charge(3), Fen::new(150));
        assert!(!r.wlan_fee_capped);
    }

    #[test]
    fn wlan_overage_is_capped_at_500_yuan() {
        // 20,000 minutes off campus would be 1,000 元; the month pays 500.
        let events: Vec<_> = (0..20).map(|i| wlan(i, i * 2000, 1000, false)).collect();
        let r = rate(Allowances::default(), &events);
        assert_eq!(r.overage.wlan, WLAN_MONTHLY_CAP);
        assert!(r.wlan_fee_capped);
        assert_eq!(sum_of_records(&r), WLAN_MONTHLY_CAP);
        assert_eq!(
            r.record_charge(19),
            Fen::ZERO,
            "after the cap, nothing more"
        );
        // Just under the cap is charged in full.
        let r = rate(Allowances::default(), &[wlan(1, 0, 9_999, false)]);
        assert_eq!(r.overage.wlan, Fen::new(49_995));
        assert!(!r.wlan_fee_capped);
    }

    #[test]
    fn wlan_volume_cap_is_reported_at_40_gb() {
        let big = |id, kb| {
            ev(
                id,
                id,
                Event::Wlan {
                    duration_secs: 60,
                    volume_kb: kb,
                    on_campus: true,
                },
            )
        };
        let r = rate(
            Allowances::default(),
            &[big(1, 20 * KB_PER_GB), big(2, 20 * KB_PER_GB - 1)],
        );
        assert!(!r.wlan_cap_reached);
        let r = rate(
            Allowances::default(),
            &[big(1, 20 * KB_PER_GB), big(2, 20 * KB_PER_GB)],
        );
        assert!(r.wlan_cap_reached);
    }

    #[test]
    fn packs_add_to_the_plan() {
        // GT88 (200 min, 10 GB, 200 SMS) + EDU10 (40 h WLAN) + LL10 (1 GB) + a 1 GB reward.
        let total = Allowances::from_product(200, 10_240, 200, 0)
            + Allowances::from_product(0, 0, 0, 2_400)
            + Allowances::from_product(0, 1_024, 0, 0)
            + Allowances::data_mb(1_024);
        assert_eq!(
            total,
            Allowances {
                voice_minutes: 200,
                sms_count: 200,
                data_kb: 12 * KB_PER_GB,
                wlan_minutes: 2_400,
            }
        );
        // 11.5 GB used fits a 12 GB month; without the packs 1.5 GB would be overage.
        let use_kb = 11 * KB_PER_GB + KB_PER_GB / 2;
        let events = [ev(1, 0, Event::Data { volume_kb: use_kb })];
        assert_eq!(rate(total, &events).overage.data, Fen::ZERO);
        assert_eq!(
            rate(Allowances::from_product(200, 10_240, 200, 0), &events)
                .overage
                .data,
            Fen::new(750)
        );
        // 40 hours of WLAN are free with EDU10, charged without it.
        let w = [wlan(2, 0, 2_400, true)];
        assert_eq!(rate(total, &w).overage.wlan, Fen::ZERO);
        assert_eq!(
            rate(Allowances::default(), &w).overage.wlan,
            Fen::new(4_800)
        );
    }

    #[test]
    fn a_call_straddling_the_allowance_pays_only_the_excess() {
        let r = rate(voice(3), &[call_out(1, 0, 5 * 60 - 30)]);
        assert_eq!((r.voice.within, r.voice.over), (3, 2));
        assert_eq!(r.overage.voice, Fen::new(38));
        assert_eq!(r.overage.total(), sum_of_records(&r));
    }
}
