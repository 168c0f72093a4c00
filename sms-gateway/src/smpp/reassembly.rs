//! Reassembly of concatenated MO messages. Parts are keyed by (sender, reference, part
//! count), may arrive in any order, and a repeated part is ignored. A complete set is handed
//! out but kept until the caller says what became of it: `release` once the message is safely
//! handed over, `retract` when the hand-over failed, so that the SMSC's redelivery of the final
//! part completes the same set again. Incomplete sets expire after a timeout; the clock is a
//! parameter so tests drive it.
use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::udh::ConcatInfo;

/// Identifies one concatenated message being collected.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SetKey {
    pub source: String,
    pub reference: u16,
    pub total: u8,
}

impl SetKey {
    pub fn new(source: &str, concat: ConcatInfo) -> Self {
        SetKey {
            source: source.to_owned(),
            reference: concat.reference,
            total: concat.total,
        }
    }
}

/// What adding a part did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Added {
    /// Stored; more parts are needed.
    Buffered,
    /// This part number was already stored: ignored.
    Duplicate,
    /// This part completed the message; here is its full text.
    Complete(String),
}

#[derive(Debug)]
struct PartialSet {
    /// Parts by number (index = seq - 1), as UTF-16 units.
    parts: Vec<Option<Vec<u16>>>,
    /// When the first part arrived: the set expires `timeout` after it.
    started: Instant,
}

/// Collects MO parts until each message is complete.
#[derive(Debug)]
pub struct Reassembler {
    timeout: Duration,
    sets: HashMap<SetKey, PartialSet>,
}

impl Reassembler {
    pub fn new(timeout: Duration) -> Self {
        Reassembler {
            timeout,
            sets: HashMap::new(),
        }
    }

    /// Adds one part. `units` is the part's text as UTF-16 units (see `MoText::units`).
    pub fn add(
        &mut self,
        source: &str,
        concat: ConcatInfo,
        units: Vec<u16>,
        now: Instant,
    ) -> Added {
        let total = concat.total as usize;
        let idx = concat.seq as usize;
        if total == 0 || idx == 0 || idx > total {
            // Cannot happen for info parsed by `udh::split`; treat as a whole message.
            return Added::Complete(String::from_utf16_lossy(&units));
        }
        let key = SetKey::new(source, concat);
        let set = self.sets.entry(key).or_insert_with(|| PartialSet {
            parts: vec![None; total],
            started: now,
        });
        if set.parts[idx - 1].is_some() {
            // Also when the set is complete but not yet released (its hand-over is under
            // way): a repeat of any part is just a repeat.
            return Added::Duplicate;
        }
        set.parts[idx - 1] = Some(units);
        if set.parts.iter().all(Option::is_some) {
            let units: Vec<u16> = set.parts.iter().flatten().flatten().copied().collect();
            Added::Complete(String::from_utf16_lossy(&units))
        } else {
            Added::Buffered
        }
    }

    /// Forgets a set whose message has been handed over.
    pub fn release(&mut self, source: &str, concat: ConcatInfo) {
        self.sets.remove(&SetKey::new(source, concat));
    }

    /// Forgets just this part (the hand-over of the message it completed failed), so that the
    /// redelivered part completes the set again.
    pub fn retract(&mut self, source: &str, concat: ConcatInfo) {
        if let Some(set) = self.sets.get_mut(&SetKey::new(source, concat)) {
            if let Some(slot) = set.parts.get_mut(concat.seq as usize - 1) {
                *slot = None;
            }
        }
    }

    /// Drops sets that have waited longer than the timeout; returns their keys (to log).
    pub fn expire(&mut self, now: Instant) -> Vec<SetKey> {
        let timeout = self.timeout;
        let expired: Vec<SetKey> = self
            .sets
            .iter()
            .filter(|(_, s)| now.saturating_duration_since(s.started) >= timeout)
            .map(|(k, _)| k.clone())
            .collect();
        for k in &expired {
            self.sets.remove(k);
        }
        expired
    }

    /// How many sets are being collected.
    pub fn pending(&self) -> usize {
        self.sets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(reference: u16, total: u8, seq: u8) -> ConcatInfo {
        ConcatInfo {
            reference,
            total,
            seq,
        }
    }

    fn u(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }

    #[test]
    fn parts_in_any_order_with_duplicates() {
        let now = Instant::now();
        let mut r = Reassembler::new(Duration::from_secs(60));
        assert_eq!(r.add("138", part(5, 3, 3), u("丙"), now), Added::Buffered);
        assert_eq!(r.add("138", part(5, 3, 1), u("甲"), now), Added::Buffered);
        assert_eq!(r.add("138", part(5, 3, 1), u("X"), now), Added::Duplicate);
        // Same reference from another sender is another message.
        assert_eq!(r.add("139", part(5, 3, 2), u("Z"), now), Added::Buffered);
        assert_eq!(
            r.add("138", part(5, 3, 2), u("乙"), now),
            Added::Complete("甲乙丙".into())
        );
        r.release("138", part(5, 3, 2));
        assert_eq!(r.pending(), 1);
    }

    #[test]
    fn a_surrogate_pair_split_across_parts_is_joined() {
        let now = Instant::now();
        let mut r = Reassembler::new(Duration::from_secs(60));
        let units = u("a😀b");
        assert_eq!(
            r.add("1", part(1, 2, 2), units[2..].to_vec(), now),
            Added::Buffered
        );
        assert_eq!(
            r.add("1", part(1, 2, 1), units[..2].to_vec(), now),
            Added::Complete("a😀b".into())
        );
    }

    #[test]
    fn retract_lets_a_redelivered_final_part_complete_again() {
        let now = Instant::now();
        let mut r = Reassembler::new(Duration::from_secs(60));
        r.add("1", part(9, 2, 1), u("前"), now);
        assert_eq!(
            r.add("1", part(9, 2, 2), u("后"), now),
            Added::Complete("前后".into())
        );
        r.retract("1", part(9, 2, 2));
        assert_eq!(
            r.add("1", part(9, 2, 2), u("后"), now),
            Added::Complete("前后".into())
        );
    }

    #[test]
    fn incomplete_sets_expire() {
        let t0 = Instant::now();
        let mut r = Reassembler::new(Duration::from_secs(60));
        r.add("1", part(1, 2, 1), u("a"), t0);
        r.add("2", part(1, 2, 1), u("b"), t0 + Duration::from_secs(30));
        assert!(r.expire(t0 + Duration::from_secs(59)).is_empty());
        let gone = r.expire(t0 + Duration::from_secs(60));
        assert_eq!(
            gone,
            vec![SetKey {
                source: "1".into(),
                reference: 1,
                total: 2
            }]
        );
        assert_eq!(r.pending(), 1);
        // After expiry the missing part starts a new set instead of completing the old one.
        assert_eq!(
            r.add("1", part(1, 2, 2), u("c"), t0 + Duration::from_secs(61)),
            Added::Buffered
        );
    }
}
