use std::fmt;

use crate::domain::Msisdn;
use crate::error::Invalid;

/// A service password (服务密码) that a subscriber chose, already checked against the rules of
/// SPEC §6: six digits, not all the same, not a run up or down, not part of the number it guards.
/// What people type when signing in is not one of these (it may be an old weak password): only
/// a new password is parsed into this type.
#[derive(Clone, PartialEq, Eq)]
pub struct ServicePassword(String);

impl ServicePassword {
    pub fn new(input: &str, owner: &Msisdn) -> Result<Self, Invalid> {
        let b = input.as_bytes();
        if b.len() != 6 || !b.iter().all(u8::is_ascii_digit) {
            return Err(Invalid::PasswordFormat);
        }
        if b.iter().all(|&d| d == b[0]) {
            return Err(Invalid::PasswordRepeated);
        }
        let steps: Vec<i8> = b.windows(2).map(|w| w[1] as i8 - w[0] as i8).collect();
        if steps.iter().all(|&s| s == 1) || steps.iter().all(|&s| s == -1) {
            return Err(Invalid::PasswordSequential);
        }
        if owner.as_str().contains(input) {
            return Err(Invalid::PasswordInNumber);
        }
        Ok(Self(input.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ServicePassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServicePassword(******)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner() -> Msisdn {
        Msisdn::parse("13800138000").unwrap()
    }

    #[test]
    fn accepts_a_good_password() {
        assert!(ServicePassword::new("147258", &owner()).is_ok());
        assert!(ServicePassword::new("902468", &owner()).is_ok());
    }

    #[test]
    fn every_rule_refuses() {
        let o = owner();
        assert_eq!(
            ServicePassword::new("12345", &o),
            Err(Invalid::PasswordFormat)
        );
        assert_eq!(
            ServicePassword::new("1234567", &o),
            Err(Invalid::PasswordFormat)
        );
        assert_eq!(
            ServicePassword::new("12a456", &o),
            Err(Invalid::PasswordFormat)
        );
        assert_eq!(
            ServicePassword::new("１４７２５８", &o),
            Err(Invalid::PasswordFormat)
        );
        assert_eq!(
            ServicePassword::new("888888", &o),
            Err(Invalid::PasswordRepeated)
        );
        assert_eq!(
            ServicePassword::new("123456", &o),
            Err(Invalid::PasswordSequential)
        );
        assert_eq!(
            ServicePassword::new("345678", &o),
            Err(Invalid::PasswordSequential)
        );
        assert_eq!(
            ServicePassword::new("987654", &o),
            Err(Invalid::PasswordSequential)
        );
        assert_eq!(
            ServicePassword::new("654321", &o),
            Err(Invalid::PasswordSequential)
        );
        // 13800138000 contains 380013, 001380, 138000 …
        assert_eq!(
            ServicePassword::new("380013", &o),
            Err(Invalid::PasswordInNumber)
        );
        assert_eq!(
            ServicePassword::new("138000", &o),
            Err(Invalid::PasswordInNumber)
        );
        assert_eq!(
            ServicePassword::new("800138", &o),
            Err(Invalid::PasswordInNumber)
        );
    }

    #[test]
    fn debug_never_shows_the_digits() {
        let p = ServicePassword::new("147258", &owner()).unwrap();
        assert!(!format!("{p:?}").contains("147258"));
    }
}
