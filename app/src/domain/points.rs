use std::fmt;
use std::ops::{Add, Sub};

use serde::{Deserialize, Serialize};

/// A count of loyalty points (积分). Never negative: a redemption that would take a balance
/// below zero is refused before it becomes one of these.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(try_from = "i64", into = "i64")]
pub struct Points(i64);

impl Points {
    pub const ZERO: Points = Points(0);

    pub fn new(n: i64) -> Option<Self> {
        (n >= 0).then_some(Self(n))
    }

    pub fn get(self) -> i64 {
        self.0
    }

    pub fn checked_sub(self, o: Points) -> Option<Points> {
        Points::new(self.0 - o.0)
    }
}

impl Add for Points {
    type Output = Points;
    fn add(self, o: Points) -> Points {
        Points(self.0 + o.0)
    }
}

impl Sub for Points {
    type Output = Points;
    /// Saturates at zero; use `checked_sub` where running short is an error.
    fn sub(self, o: Points) -> Points {
        Points((self.0 - o.0).max(0))
    }
}

impl TryFrom<i64> for Points {
    type Error = &'static str;
    fn try_from(n: i64) -> Result<Self, Self::Error> {
        Points::new(n).ok_or("points cannot be negative")
    }
}

impl From<Points> for i64 {
    fn from(p: Points) -> i64 {
        p.0
    }
}

impl fmt::Display for Points {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
