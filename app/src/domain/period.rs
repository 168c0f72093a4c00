use std::fmt;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Invalid;

/// China Standard Time. Shanghai has kept UTC+8 without daylight saving since 1991, so a fixed
/// offset is exact and spares a time-zone database.
pub fn shanghai() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset")
}

/// A billing period: one calendar month in Asia/Shanghai time, written `YYYY-MM`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Period {
    year: i32,
    month: u32,
}

impl Period {
    pub fn new(year: i32, month: u32) -> Result<Self, Invalid> {
        if (2000..=2999).contains(&year) && (1..=12).contains(&month) {
            Ok(Self { year, month })
        } else {
            Err(Invalid::Period)
        }
    }

    pub fn parse(input: &str) -> Result<Self, Invalid> {
        let s = input.trim();
        let (y, m) = s.split_once('-').ok_or(Invalid::Period)?;
        if y.len() != 4 || m.len() != 2 || !y.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
            return Err(Invalid::Period);
        }
        Self::new(
            y.parse().map_err(|_| Invalid::Period)?,
            m.parse().map_err(|_| Invalid::Period)?,
        )
    }

    /// The period that contains this instant, in Shanghai time.
    pub fn containing(at: DateTime<Utc>) -> Self {
        let local = at.with_timezone(&shanghai());
        Self {
            year: local.year(),
            month: local.month(),
        }
    }

    pub fn year(self) -> i32 {
        self.year
    }

    pub fn month(self) -> u32 {
        self.month
    }

    pub fn next(self) -> Self {
        if self.month == 12 {
            Self {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Self {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    pub fn prev(self) -> Self {
        if self.month == 1 {
            Self {
                year: self.year - 1,
                month: 12,
            }
        } else {
            Self {
                year: self.year,
                month: self.month - 1,
            }
        }
    }

    /// `n` periods back (`back(0)` is this one).
    pub fn back(self, n: u32) -> Self {
        (0..n).fold(self, |p, _| p.prev())
    }

    /// Midnight on the 1st, Shanghai time.
    pub fn start(self) -> DateTime<Utc> {
        let date = NaiveDate::from_ymd_opt(self.year, self.month, 1).expect("valid period");
        shanghai()
            .from_local_datetime(&date.and_hms_opt(0, 0, 0).expect("midnight"))
            .single()
            .expect("fixed offsets are unambiguous")
            .with_timezone(&Utc)
    }

    /// The first instant after the period.
    pub fn end(self) -> DateTime<Utc> {
        self.next().start()
    }

    pub fn contains(self, at: DateTime<Utc>) -> bool {
        self.start() <= at && at < self.end()
    }

    pub fn days(self) -> i64 {
        (self.end() - self.start()).num_days()
    }

    /// `2026年11月`
    pub fn zh(self) -> String {
        format!("{}年{}月", self.year, self.month)
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl TryFrom<String> for Period {
    type Error = Invalid;
    fn try_from(s: String) -> Result<Self, Invalid> {
        Self::parse(&s)
    }
}

impl From<Period> for String {
    fn from(p: Period) -> String {
        p.to_string()
    }
}

impl std::str::FromStr for Period {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn month_boundaries_are_shanghai_time() {
        // 2026-10-31 16:30 UTC is 2026-11-01 00:30 in Shanghai.
        let at = Utc.with_ymd_and_hms(2026, 10, 31, 16, 30, 0).unwrap();
        assert_eq!(Period::containing(at).to_string(), "2026-11");
        let p = Period::parse("2026-11").unwrap();
        assert_eq!(
            p.start(),
            Utc.with_ymd_and_hms(2026, 10, 31, 16, 0, 0).unwrap()
        );
        assert!(p.contains(at));
        assert_eq!(p.days(), 30);
    }

    #[test]
    fn steps_across_years() {
        let p = Period::parse("2026-01").unwrap();
        assert_eq!(p.prev().to_string(), "2025-12");
        assert_eq!(p.prev().next(), p);
        assert_eq!(p.back(13).to_string(), "2024-12");
    }

    #[test]
    fn parses_only_yyyy_mm() {
        for bad in [
            "2026-13", "2026-00", "2026-1", "26-01", "2026/01", "", "abcd-ef",
        ] {
            assert!(Period::parse(bad).is_err(), "{bad}");
        }
    }
}
