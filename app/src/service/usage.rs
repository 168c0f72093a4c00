//! Usage records (话单): calls, messages, data sessions and WLAN sessions as the network reports
//! them, and the detail records (详单) the web hall lists. Each record carries the network's own
//! id (`reference`), so importing the same CDR twice records it once.
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::clock::{from_millis, to_millis};
use crate::domain::{Fen, Msisdn, Period};
use crate::error::{Error, Result};
use crate::hall::Hall;
use crate::service::rating::{Event, UsageEvent};
use crate::service::subscribers::load_profile;
use crate::store::db::{placeholders, runs};
use crate::store::reads::{Read, ReadRow};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    In,
    Out,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }

    pub fn from_db(s: &str) -> Option<Self> {
        match s {
            "in" => Some(Direction::In),
            "out" => Some(Direction::Out),
            _ => None,
        }
    }

    /// 主叫/被叫 for calls; the web hall also uses it for messages (发送/接收 reads oddly there).
    pub fn zh(self) -> &'static str {
        match self {
            Direction::In => "被叫",
            Direction::Out => "主叫",
        }
    }
}

/// What a usage record is, with what each kind carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum UsageKind {
    Call {
        other_party: String,
        direction: Direction,
        duration_secs: i64,
    },
    Sms {
        other_party: String,
        direction: Direction,
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

impl UsageKind {
    pub fn usage_type(&self) -> UsageType {
        match self {
            UsageKind::Call { .. } => UsageType::Call,
            UsageKind::Sms { .. } => UsageType::Sms,
            UsageKind::Data { .. } => UsageType::Data,
            UsageKind::Wlan { .. } => UsageType::Wlan,
        }
    }
}

/// The kind alone: the detail records' filter and the stored `kind` column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UsageType {
    Call,
    Sms,
    Data,
    Wlan,
}

impl UsageType {
    pub const ALL: &'static [UsageType] = &[
        UsageType::Call,
        UsageType::Sms,
        UsageType::Data,
        UsageType::Wlan,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            UsageType::Call => "call",
            UsageType::Sms => "sms",
            UsageType::Data => "data",
            UsageType::Wlan => "wlan",
        }
    }

    pub fn from_db(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|t| t.as_str() == s)
    }

    pub fn zh(self) -> &'static str {
        match self {
            UsageType::Call => "通话",
            UsageType::Sms => "短信",
            UsageType::Data => "上网",
            UsageType::Wlan => "WLAN",
        }
    }

    pub fn en(self) -> &'static str {
        match self {
            UsageType::Call => "Calls",
            UsageType::Sms => "SMS",
            UsageType::Data => "Data",
            UsageType::Wlan => "WLAN",
        }
    }
}

/// One record to import.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRecord {
    /// The network's CDR id: unique, so a re-imported record is recorded once.
    pub reference: String,
    pub started_at: DateTime<Utc>,
    pub kind: UsageKind,
}

impl UsageRecord {
    fn check(&self) -> Result<()> {
        let bad = |why: &str| Err(Error::InvalidUsage(format!("{}: {why}", self.reference)));
        if self.reference.is_empty() || self.reference.len() > 128 {
            return bad("reference must be 1–128 characters");
        }
        match &self.kind {
            UsageKind::Call {
                other_party,
                duration_secs,
                ..
            } => {
                if other_party.is_empty() || *duration_secs < 0 {
                    return bad("a call needs the other party and a duration ≥ 0");
                }
            }
            UsageKind::Sms { other_party, .. } => {
                if other_party.is_empty() {
                    return bad("a message needs the other party");
                }
            }
            UsageKind::Data { volume_kb } => {
                if *volume_kb < 0 {
                    return bad("volume must be ≥ 0");
                }
            }
            UsageKind::Wlan {
                duration_secs,
                volume_kb,
                ..
            } => {
                if *duration_secs < 0 || *volume_kb < 0 {
                    return bad("duration and volume must be ≥ 0");
                }
            }
        }
        Ok(())
    }
}

/// One row of the detail records.
#[derive(Clone, Debug, Serialize)]
pub struct DetailRecord {
    pub id: i64,
    pub started_at: DateTime<Utc>,
    pub kind: UsageKind,
    /// What the record cost beyond the allowances (zero when it fell within them). Data and
    /// WLAN show the record's share of the month's overage.
    pub charge: Fen,
}

#[derive(Clone, Debug, Serialize)]
pub struct DetailPage {
    pub period: Period,
    pub kind: Option<UsageType>,
    /// 1-based.
    pub page: i64,
    pub page_size: i64,
    /// Records matching the filter in the whole month.
    pub total: i64,
    /// Newest first.
    pub records: Vec<DetailRecord>,
}

impl DetailPage {
    pub fn pages(&self) -> i64 {
        ((self.total + self.page_size - 1) / self.page_size).max(1)
    }
}

pub const MAX_PAGE_SIZE: i64 = 200;
/// Parameters bound per row (the columns listed in the INSERT).
const USAGE_COLUMNS: usize = 10;

/// A month's records of one number, as rating needs them.
pub(crate) fn events_read(msisdn: &Msisdn, period: Period) -> Read {
    Read::new(
        "SELECT id, kind, started_at, direction, duration_secs, volume_kb, on_campus \
         FROM usage_records WHERE msisdn = $1 AND period = $2 ORDER BY started_at, id",
    )
    .text(msisdn.as_str())
    .text(period.to_string())
}

pub(crate) fn events_from(rows: &[ReadRow]) -> Result<Vec<UsageEvent>> {
    rows.iter()
        .map(|r| {
            let kind: String = r.try_get(1)?;
            let outgoing =
                r.try_get::<Option<String>, _>(3)?.as_deref() == Some(Direction::Out.as_str());
            let duration_secs: i64 = r.try_get(4)?;
            let volume_kb: i64 = r.try_get(5)?;
            let event = match UsageType::from_db(&kind) {
                Some(UsageType::Call) => Event::Call {
                    outgoing,
                    duration_secs,
                },
                Some(UsageType::Sms) => Event::Sms { outgoing },
                Some(UsageType::Data) => Event::Data { volume_kb },
                Some(UsageType::Wlan) => Event::Wlan {
                    duration_secs,
                    volume_kb,
                    on_campus: r.try_get::<i64, _>(6)? != 0,
                },
                None => return Err(Error::Storage("unreadable kind in usage_records".into())),
            };
            Ok(UsageEvent {
                id: r.try_get(0)?,
                started_at_ms: r.try_get(2)?,
                event,
            })
        })
        .collect()
}

fn kind_from_row(r: &ReadRow) -> Result<UsageKind> {
    let corrupt = || Error::Storage("unreadable usage record".into());
    let kind: String = r.try_get(2)?;
    let other: Option<String> = r.try_get(3)?;
    let direction = r
        .try_get::<Option<String>, _>(4)?
        .as_deref()
        .and_then(Direction::from_db);
    let duration_secs: i64 = r.try_get(5)?;
    let volume_kb: i64 = r.try_get(6)?;
    Ok(match UsageType::from_db(&kind).ok_or_else(corrupt)? {
        UsageType::Call => UsageKind::Call {
            other_party: other.unwrap_or_default(),
            direction: direction.ok_or_else(corrupt)?,
            duration_secs,
        },
        UsageType::Sms => UsageKind::Sms {
            other_party: other.unwrap_or_default(),
            direction: direction.ok_or_else(corrupt)?,
        },
        UsageType::Data => UsageKind::Data { volume_kb },
        UsageType::Wlan => UsageKind::Wlan {
            duration_secs,
            volume_kb,
            on_campus: r.try_get::<i64, _>(7)? != 0,
        },
    })
}

impl Hall {
    /// Records usage for one number in one transaction; a record whose `reference` was recorded
    /// before is skipped. Returns how many were new. Then checks the high-bill alert.
    pub async fn record_usage(&self, msisdn: &Msisdn, records: &[UsageRecord]) -> Result<usize> {
        for r in records {
            r.check()?;
        }
        if records.is_empty() {
            return Ok(0);
        }
        let mut tx = self.db().begin().await?;
        load_profile(&mut tx, msisdn).await?;
        let mut inserted = 0u64;
        for chunk in runs(records) {
            let sql = self.db().batch_statement(chunk.len(), || {
                format!(
                    "INSERT INTO usage_records (msisdn, period, kind, started_at, other_party, direction, \
                     duration_secs, volume_kb, on_campus, reference) VALUES {} \
                     ON CONFLICT (reference) DO NOTHING",
                    placeholders(1, chunk.len(), USAGE_COLUMNS)
                )
            });
            let mut q = sqlx::query(&sql);
            for r in chunk {
                let (other, direction, duration, volume, campus) = match &r.kind {
                    UsageKind::Call {
                        other_party,
                        direction,
                        duration_secs,
                    } => (
                        Some(other_party.clone()),
                        Some(direction.as_str()),
                        *duration_secs,
                        0,
                        0,
                    ),
                    UsageKind::Sms {
                        other_party,
                        direction,
                    } => (Some(other_party.clone()), Some(direction.as_str()), 0, 0, 0),
                    UsageKind::Data { volume_kb } => (None, None, 0, *volume_kb, 0),
                    UsageKind::Wlan {
                        duration_secs,
                        volume_kb,
                        on_campus,
                    } => (None, None, *duration_secs, *volume_kb, *on_campus as i64),
                };
                q = q
                    .bind(msisdn.as_str())
                    .bind(Period::containing(r.started_at).to_string())
                    .bind(r.kind.usage_type().as_str())
                    .bind(to_millis(r.started_at))
                    .bind(other)
                    .bind(direction)
                    .bind(duration)
                    .bind(volume)
                    .bind(campus)
                    .bind(r.reference.as_str());
            }
            inserted += q.execute(&mut *tx).await?.rows_affected();
        }
        tx.commit().await?;
        if inserted > 0 {
            self.check_bill_alert(msisdn).await?;
        }
        Ok(inserted as usize)
    }

    /// The detail records of one month, newest first, optionally of one kind, a page at a time
    /// (`page` is 1-based; `page_size` at most [`MAX_PAGE_SIZE`]). Each row carries the
    /// overage it caused, from rating the whole month.
    pub async fn detail_records(
        &self,
        msisdn: &Msisdn,
        period: Period,
        kind: Option<UsageType>,
        page: i64,
        page_size: i64,
    ) -> Result<DetailPage> {
        let page = page.clamp(1, 1_000_000);
        let page_size = page_size.clamp(1, MAX_PAGE_SIZE);
        let mut reader = self.db().reader().await?;
        let rating =
            crate::service::billing::rate_subscriber(self, &mut reader, msisdn, period).await?;
        let filter = if kind.is_some() { " AND kind = $3" } else { "" };
        let (limit_at, offset_at) = if kind.is_some() { (4, 5) } else { (3, 4) };
        let with_kind = |read: Read| match kind {
            Some(k) => read.text(k.as_str()),
            None => read,
        };
        let count = with_kind(
            Read::new(format!(
                "SELECT COUNT(*) FROM usage_records WHERE msisdn = $1 AND period = $2{filter}"
            ))
            .text(msisdn.as_str())
            .text(period.to_string()),
        );
        let page_rows = with_kind(
            Read::new(format!(
                "SELECT id, started_at, kind, other_party, direction, duration_secs, volume_kb, on_campus \
                 FROM usage_records WHERE msisdn = $1 AND period = $2{filter} \
                 ORDER BY started_at DESC, id DESC LIMIT ${limit_at} OFFSET ${offset_at}"
            ))
            .text(msisdn.as_str())
            .text(period.to_string()),
        )
        .int(page_size)
        .int((page - 1) * page_size);
        let mut read = reader.fetch_each([count, page_rows]).await?;
        let total: i64 = read
            .next()
            .first()
            .ok_or_else(|| Error::Storage("counting usage records gave no row".into()))?
            .try_get(0)?;
        let rows = read.next();
        let records = rows
            .iter()
            .map(|r| {
                let id: i64 = r.try_get(0)?;
                Ok(DetailRecord {
                    id,
                    started_at: from_millis(r.try_get(1)?),
                    kind: kind_from_row(r)?,
                    charge: rating.record_charge(id),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(DetailPage {
            period,
            kind,
            page,
            page_size,
            total,
            records,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestHall;
    use chrono::Duration;

    pub(crate) fn call(reference: &str, at: DateTime<Utc>, secs: i64, out: bool) -> UsageRecord {
        UsageRecord {
            reference: reference.into(),
            started_at: at,
            kind: UsageKind::Call {
                other_party: "13912345678".into(),
                direction: if out { Direction::Out } else { Direction::In },
                duration_secs: secs,
            },
        }
    }

    #[tokio::test]
    async fn the_same_cdr_is_recorded_once() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 10_000).await;
        let now = t.now();
        let batch = vec![call("c1", now, 60, true), call("c2", now, 120, false)];
        assert_eq!(t.record_usage(&m, &batch).await.unwrap(), 2);
        assert_eq!(t.record_usage(&m, &batch).await.unwrap(), 0);
        let more = vec![call("c2", now, 120, false), call("c3", now, 30, true)];
        assert_eq!(t.record_usage(&m, &more).await.unwrap(), 1);
        let page = t
            .detail_records(&m, Period::containing(now), None, 1, 50)
            .await
            .unwrap();
        assert_eq!(page.total, 3);
    }

    #[tokio::test]
    async fn large_batches_are_chunked_and_periods_follow_shanghai_time() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 0).await;
        // 1,201 records straddling the Shanghai month boundary (16:00 UTC on the last day).
        let nov_start = Period::parse("2026-11").unwrap().start();
        let batch: Vec<_> = (0..1201)
            .map(|i| UsageRecord {
                reference: format!("d{i}"),
                started_at: nov_start + Duration::minutes(i - 600),
                kind: UsageKind::Data { volume_kb: 10 },
            })
            .collect();
        assert_eq!(t.record_usage(&m, &batch).await.unwrap(), 1201);
        let oct = t
            .detail_records(&m, Period::parse("2026-10").unwrap(), None, 1, 10)
            .await
            .unwrap();
        let nov = t
            .detail_records(&m, Period::parse("2026-11").unwrap(), None, 1, 10)
            .await
            .unwrap();
        assert_eq!((oct.total, nov.total), (600, 601));
    }

    #[tokio::test]
    async fn detail_records_page_filter_and_show_overage() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 10_000).await;
        let p = Period::containing(t.now());
        let start = p.start();
        // GT88 has 200 minutes: a 200-minute call uses them, the next 3-minute call pays 57 fen.
        let mut batch = vec![
            call("c1", start + Duration::hours(1), 200 * 60, true),
            call("c2", start + Duration::hours(2), 150, true),
            call("c3", start + Duration::hours(3), 600, false),
        ];
        for i in 0..5 {
            batch.push(UsageRecord {
                reference: format!("s{i}"),
                started_at: start + Duration::hours(4 + i),
                kind: UsageKind::Sms {
                    other_party: "10086".into(),
                    direction: Direction::Out,
                },
            });
        }
        t.record_usage(&m, &batch).await.unwrap();
        let calls = t
            .detail_records(&m, p, Some(UsageType::Call), 1, 2)
            .await
            .unwrap();
        assert_eq!(calls.total, 3);
        assert_eq!(calls.pages(), 2);
        let ids: Vec<_> = calls.records.iter().map(|r| r.charge).collect();
        // Newest first: c3 (incoming, free), then c2 (3 minutes over).
        assert_eq!(ids, vec![Fen::ZERO, Fen::new(57)]);
        let second = t
            .detail_records(&m, p, Some(UsageType::Call), 2, 2)
            .await
            .unwrap();
        assert_eq!(second.records.len(), 1);
        assert_eq!(second.records[0].charge, Fen::ZERO);
        let sms = t
            .detail_records(&m, p, Some(UsageType::Sms), 1, 50)
            .await
            .unwrap();
        assert_eq!(sms.total, 5);
        assert!(sms
            .records
            .iter()
            .all(|r| matches!(r.kind, UsageKind::Sms { .. })));
        assert!(t
            .detail_records(&Msisdn::parse("13900000000").unwrap(), p, None, 1, 10)
            .await
            .is_err());
    }

    #[tokio::test]
    async fn bad_records_are_refused_whole() {
        let t = TestHall::empty().await;
        let m = t.subscriber("13800138000", 0).await;
        let now = t.now();
        let batch = vec![call("ok", now, 60, true), call("bad", now, -1, true)];
        assert!(matches!(
            t.record_usage(&m, &batch).await,
            Err(Error::InvalidUsage(_))
        ));
        let page = t
            .detail_records(&m, Period::containing(now), None, 1, 10)
            .await
            .unwrap();
        assert_eq!(page.total, 0);
    }
}
