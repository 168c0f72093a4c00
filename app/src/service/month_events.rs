//! A month's usage records as rating reads them, kept between ratings. The home page, the
//! bills, the detail records, `CXLL` and the high-bill check after each import all rate the
//! month so far, and reading every record of the month (hundreds by its end) was most of the
//! home page's cost. Records are added, never changed or moved to another month (and a delete,
//! should records ever be let go, lowers the count), so a month's list is the same while its
//! count and newest id are. The database keeps both in the records' own transactions
//! (`usage_months`, migration 0008): one row read by its key tells whether the list kept here
//! still holds, whichever process added records. A list is kept under its own key, not the one
//! read before it, so a record committed in between only costs a second read.
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
    Read::new("SELECT records, newest FROM usage_months WHERE msisdn = $1 AND period = $2")
        .text(msisdn.as_str())
        .text(period.to_string())
        .at_most_one()
}

/// The key from [`key_read`]'s row; no row is a month without records.
pub(crate) fn key_from(rows: &[ReadRow]) -> Result<ListKey> {
    let Some(row) = rows.first() else {
        return Ok(ListKey {
            count: 0,
            newest: 0,
        });
    };
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

    /// The key the database keeps is the key of the list as read, however records come and go
    /// (imports, a record added by hand, one let go), and a month without records has one too.
    #[tokio::test]
    async fn the_kept_key_is_the_key_of_the_records_as_read() {
        use crate::service::usage::{Direction, UsageKind, UsageRecord};
        let t = crate::testing::TestHall::empty().await;
        let m = t.subscriber("13800138000", 12_000).await;
        let p = Period::containing(t.now());
        let both = || async {
            let mut reader = t.db().reader().await.unwrap();
            let key = key_from(&reader.fetch(key_read(&m, p)).await.unwrap()).unwrap();
            let events = events_from(&reader.fetch(events_read(&m, p)).await.unwrap()).unwrap();
            (key, ListKey::of(&events))
        };
        let empty = ListKey {
            count: 0,
            newest: 0,
        };
        assert_eq!(both().await, (empty, empty));
        let call = |reference: &str| UsageRecord {
            reference: reference.into(),
            started_at: t.now(),
            kind: UsageKind::Call {
                other_party: "13912345678".into(),
                direction: Direction::Out,
                duration_secs: 60,
            },
        };
        t.record_usage(&m, &[call("c1"), call("c2"), call("c3")])
            .await
            .unwrap();
        // Recorded before: skipped, not counted.
        t.record_usage(&m, &[call("c2"), call("c4")]).await.unwrap();
        let (key, read) = both().await;
        assert_eq!(key, read);
        assert_eq!(key.count, 4);
        sqlx::query(
            "INSERT INTO usage_records (msisdn, period, kind, started_at, other_party, direction, duration_secs, reference) \
             VALUES ($1, $2, 'call', $3, '10086', 'out', 60, 'by-hand')",
        )
        .bind(m.as_str())
        .bind(p.to_string())
        .bind(t.now().timestamp_millis())
        .execute(t.db().pool())
        .await
        .unwrap();
        let (after_insert, read) = both().await;
        assert_eq!(after_insert, read);
        assert_ne!(after_insert, key);
        sqlx::query("DELETE FROM usage_records WHERE reference = 'c1'")
            .execute(t.db().pool())
            .await
            .unwrap();
        let (after_delete, read) = both().await;
        assert_eq!(after_delete, read);
        assert_eq!(after_delete.count, 4);
        let moved =
            sqlx::query("UPDATE usage_records SET period = '2000-01' WHERE reference = 'c2'")
                .execute(t.db().pool())
                .await;
        assert!(moved.is_err(), "a record does not move to another month");
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
