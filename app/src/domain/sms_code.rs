use std::fmt;

#[cfg(feature = "service")]
use rand::Rng;

use crate::error::Invalid;

/// A six-digit one-time code sent by SMS.
#[derive(Clone, PartialEq, Eq)]
pub struct SmsCode(String);

impl SmsCode {
    #[cfg(feature = "service")]
    pub fn generate() -> Self {
        Self(format!("{:06}", rand::thread_rng().gen_range(0..1_000_000)))
    }

    /// What a person typed: surrounding spaces are forgiven, anything but six ASCII digits is not.
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        let s = input.trim();
        if s.len() == 6 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(s.to_owned()))
        } else {
            Err(Invalid::SmsCode)
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SmsCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SmsCode(******)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_codes_are_six_digits() {
        for _ in 0..1000 {
            let c = SmsCode::generate();
            assert_eq!(SmsCode::parse(c.expose()), Ok(c));
        }
    }

    #[test]
    fn parse_refuses_junk() {
        assert!(SmsCode::parse(" 012345 ").is_ok());
        for bad in ["", "12345", "1234567", "12345a", "１２３４５６"] {
            assert!(SmsCode::parse(bad).is_err(), "{bad}");
        }
    }
}
