use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::Invalid;

/// A catalogue code as texted after `KT`/`QX`: 2–16 ASCII letters and digits, upper case.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProductCode(String);

impl ProductCode {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        let s = input.trim().to_ascii_uppercase();
        if (2..=16).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric()) {
            Ok(Self(s))
        } else {
            Err(Invalid::ProductCode)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProductCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for ProductCode {
    type Error = Invalid;
    fn try_from(s: String) -> Result<Self, Invalid> {
        Self::parse(&s)
    }
}

impl From<ProductCode> for String {
    fn from(c: ProductCode) -> String {
        c.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_and_rejects_junk() {
        assert_eq!(ProductCode::parse("edu10").unwrap().as_str(), "EDU10");
        for bad in ["", "E", "EDU-10", "EDU 10", "教育10", "ABCDEFGHIJKLMNOPQ"] {
            assert!(ProductCode::parse(bad).is_err(), "{bad}");
        }
    }
}
