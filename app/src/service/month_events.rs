//! A month's usage records as rating reads them, kept between ratings. The home page, the
//! bills, the detail records, `CXLL` and the high-bill check after each import all rate the
//! month so far, and reading every record of the month (hundreds by its end) was most of the
//! home page's cost. Records are only ever added — never changed, never deleted — so a month's
//! list is the same while its count and newest id are: one short indexed read tells whether
//! the list kept here still holds, whichever process added records.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::domain::{Msisdn, Period};
use crate::error::Result;
use crate::service::rating::UsageEvent;
use crate::service::usage::{events_from, events_read};
use crate::store::reads::{Read, ReadRow, Reader};

/// What identifies a month's list of records: how many, and the newest one's id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ListKey {
    count: i64,
    newest: i64,
}

impl ListKey {
    /// The key of a list as read.
    fn of(events: &[UsageEvent]) -> ListKey {
        ListKey {
            count: events.len() as i64,
            newest: events.iter().map(|e| e.id).max().unwrap_or(0),
        }
    }
}

pub(crate) fn key_read(msisdn: &Msisdn, period: Period) -> Read {
    Read::new(
        "SELECT COUNT(*), COALESCE(MAX(id), 0) FROM usage_records \
         WHERE msisdn = $1 AND period = $2",
    )
    .text(msisdn.as_str())
    .text(period.to_string())
}

pub(crate) fn key_from(rows: &[ReadRow]) -> Result<ListKey> {
    let row = rows.first().ok_or_else(|| {
        crate::error::Error::Storage("counting a month's usage records gave no row".into())
    })?;
    Ok(ListKey {
        count: row.try_get(0)?,
        newest: row.try_get(1)?,
    })
}

/// Most months kept (about 12 KB each at the end of a busy month): past that the oldest half
/// is let go.
const MOST_MONTHS: usize = 1024;

/// Months' records lately read, by number and month.
#[derive(Default)]
pub(crate) struct MonthEvents {
    months: Mutex<Months>,
}

/// A month's records as kept: their key, the list, and when they were put.
type Kept = (ListKey, Arc<Vec<UsageEvent>>, u64);

#[derive(Default)]
struct Months {
    by_month: HashMap<(Msisdn, Period), Kept>,
    /// Counts puts, to tell the older entries from the newer.
    clock: u64,
}

impl MonthEvents {
    /// The month's records whose key is `key` (read by [`key_read`]): the list kept, or
    /// else read now by `reader` and kept.
    pub(crate) async fn list(
        &self,
        reader: &mut Reader<'_>,
        msisdn: &Msisdn,
        period: Period,
        key: ListKey,
    ) -> Result<Arc<Vec<UsageEvent>>> {
        if let Some(events) = self.get(msisdn, period, key) {
            return Ok(events);
        }
        let events = Arc::new(events_from(
            &reader.fetch(events_read(msisdn, period)).await?,
        )?);
        self.put(msisdn, period, events.clone());
        Ok(events)
    }

    /// The month's records if the list kept is the one `key` describes.
    fn get(&self, msisdn: &Msisdn, period: Period, key: ListKey) -> Option<Arc<Vec<UsageEvent>>> {
        let months = self.months.lock().expect("month events lock");
        let (kept, events, _) = months.by_month.get(&(msisdn.clone(), period))?;
        (*kept == key).then(|| events.clone())
    }

    /// Keeps a month's records as read, under the key they have (not the key read before
    /// them: records added in between are in the list, and its key says so).
    fn put(&self, msisdn: &Msisdn, period: Period, events: Arc<Vec<UsageEvent>>) {
        let mut months = self.months.lock().expect("month events lock");
        if months.by_month.len() >= MOST_MONTHS {
            let mut ages: Vec<u64> = months.by_month.values().map(|v| v.2).collect();
            let (_, middle, _) = ages.select_nth_unstable(MOST_MONTHS / 2);
            let middle = *middle;
            months.by_month.retain(|_, v| v.2 > middle);
        }
        months.clock += 1;
        let now = months.clock;
        months.by_month.insert(
            (msisdn.clone(), period),
            (ListKey::of(&events), events, now),
        );
    }

    /// Whether a list is kept for the number's month.
    #[cfg(test)]
    pub(crate) fn holds(&self, msisdn: &Msisdn, period: Period) -> bool {
        let months = self.months.lock().expect("month events lock");
        months.by_month.contains_key(&(msisdn.clone(), period))
    }

    /// Lets every list go.
    #[cfg(test)]
    pub(crate) fn forget_all(&self) {
        self.months
            .lock()
            .expect("month events lock")
            .by_month
            .clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::rating::Event;

    fn sms(id: i64) -> UsageEvent {
        UsageEvent {
            id,
            started_at_ms: id * 1000,
            event: Event::Sms { outgoing: true },
        }
    }

    #[test]
    fn a_list_is_given_back_only_under_its_own_key() {
        let kept = MonthEvents::default();
        let m = Msisdn::parse("13800138000").unwrap();
        let p = Period::parse("2026-12").unwrap();
        kept.put(&m, p, Arc::new(vec![sms(3), sms(7)]));
        let key = |count, newest| ListKey { count, newest };
        assert_eq!(kept.get(&m, p, key(2, 7)).unwrap().len(), 2);
        assert!(kept.get(&m, p, key(3, 9)).is_none(), "a record was added");
        assert!(
            kept.get(&m, p, key(3, 7)).is_none(),
            "an older id committed late"
        );
        assert!(kept
            .get(&m, Period::parse("2026-11").unwrap(), key(2, 7))
            .is_none());
        let other = Msisdn::parse("13800138001").unwrap();
        assert!(kept.get(&other, p, key(2, 7)).is_none());
        kept.put(&m, p, Arc::new(Vec::new()));
        assert!(kept.get(&m, p, key(0, 0)).is_some(), "an empty month too");
    }

    #[test]
    fn past_the_limit_the_older_half_goes() {
        let kept = MonthEvents::default();
        let p = Period::parse("2026-12").unwrap();
        let numbers: Vec<Msisdn> = (0..MOST_MONTHS + 1)
            .map(|i| Msisdn::parse(&format!("138{:08}", i)).unwrap())
            .collect();
        for m in &numbers {
            kept.put(m, p, Arc::new(vec![sms(1)]));
        }
        let len = kept.months.lock().unwrap().by_month.len();
        assert!(len <= MOST_MONTHS / 2 + 1, "{len} kept");
        let key = ListKey::of(&[sms(1)]);
        assert!(
            kept.get(numbers.last().unwrap(), p, key).is_some(),
            "the newest stays"
        );
        assert!(kept.get(&numbers[0], p, key).is_none(), "the oldest went");
    }
}
