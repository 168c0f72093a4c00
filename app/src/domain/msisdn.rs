use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::Invalid;

/// A mainland mobile number: 11 digits, `1[3-9]x…`. Accepts the forms people type or an SMSC
/// reports (`+86…`, `86…`, `0086…`, spaces and dashes) and keeps the bare 11 digits.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Msisdn(String);

impl Msisdn {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        // The stored form, as sessions and rows hold it: checked without copying it twice.
        if Self::is_plain(input.as_bytes()) {
            return Ok(Self(input.to_owned()));
        }
        let digits: String = input
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '+'))
            .collect();
        let digits = digits
            .strip_prefix("0086")
            .or_else(|| digits.strip_prefix("86").filter(|rest| rest.len() == 11))
            .unwrap_or(&digits);
        if Self::is_plain(digits.as_bytes()) {
            Ok(Self(digits.to_owned()))
        } else {
            Err(Invalid::Msisdn)
        }
    }

    /// Eleven digits, a mainland mobile number's `1[3-9]…`.
    fn is_plain(b: &[u8]) -> bool {
        b.len() == 11
            && b.iter().all(u8::is_ascii_digit)
            && b[0] == b'1'
            && (b'3'..=b'9').contains(&b[1])
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `138****8000`: how a number is shown to anyone but its owner.
    pub fn masked(&self) -> String {
        format!("{}****{}", &self.0[..3], &self.0[7..])
    }
}

impl fmt::Display for Msisdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Msisdn {
    // Debug output ends up in logs: never a whole number there.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Msisdn({})", self.masked())
    }
}

impl TryFrom<String> for Msisdn {
    type Error = Invalid;
    fn try_from(s: String) -> Result<Self, Invalid> {
        Self::parse(&s)
    }
}

impl From<Msisdn> for String {
    fn from(m: Msisdn) -> String {
        m.0
    }
}

impl std::str::FromStr for Msisdn {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_usual_forms() {
        for s in [
            "13800138000",
            "+8613800138000",
            "8613800138000",
            "008613800138000",
            "138 0013 8000",
            "138-0013-8000",
        ] {
            assert_eq!(Msisdn::parse(s).unwrap().as_str(), "13800138000", "{s}");
        }
    }

    #[test]
    fn rejects_what_is_not_a_mobile_number() {
        for s in [
            "",
            "1380013800",
            "138001380001",
            "12800138000",
            "23800138000",
            "1380013800a",
            "１３８００１３８０００",
            "10086",
        ] {
            assert_eq!(Msisdn::parse(s), Err(Invalid::Msisdn), "{s}");
        }
    }

    #[test]
    fn masks_the_middle() {
        let m = Msisdn::parse("13800138000").unwrap();
        assert_eq!(m.masked(), "138****8000");
        assert_eq!(format!("{m:?}"), "Msisdn(138****8000)");
    }
}
