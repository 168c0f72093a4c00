//! Time-based one-time passwords (RFC 6238) for supervisors' and admins' second factor: HMAC-SHA1
//! over 30-second steps, 6 digits, secrets in Base32 — what every authenticator app speaks.
//!
//! The functions here are pure; the service clock and the "each code once" rule live in
//! `service/staff.rs`.
use data_encoding::BASE32_NOPAD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha1::Sha1;

use crate::error::Invalid;

/// Seconds per time step (RFC 6238's default, and what authenticator apps assume).
pub const STEP_SECS: i64 = 30;
/// Digits of a sign-in code.
pub const DIGITS: u32 = 6;
/// Steps either side of "now" that still count, for clock drift and typing time.
pub const WINDOW: i64 = 1;
/// The shortest secret we accept: 80 bits (16 Base32 characters), like the demo secret.
const MIN_SECRET_BYTES: usize = 10;

/// Parses a Base32 secret as people type or paste it: any case, spaces and `=` padding ignored.
pub fn decode_secret(secret_b32: &str) -> Result<Vec<u8>, Invalid> {
    let clean: String = secret_b32
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '=' && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let bytes = BASE32_NOPAD
        .decode(clean.as_bytes())
        .map_err(|_| Invalid::TotpSecret)?;
    if bytes.len() < MIN_SECRET_BYTES {
        return Err(Invalid::TotpSecret);
    }
    Ok(bytes)
}

/// The canonical stored form of a secret: upper-case Base32 without padding or spaces.
pub fn normalize_secret(secret_b32: &str) -> Result<String, Invalid> {
    decode_secret(secret_b32).map(|b| BASE32_NOPAD.encode(&b))
}

/// A fresh random secret: 160 bits, the length RFC 4226 recommends (32 Base32 characters).
pub fn generate_secret() -> String {
    let mut key = [0u8; 20];
    rand::rngs::OsRng.fill_bytes(&mut key);
    BASE32_NOPAD.encode(&key)
}

/// The time step containing `unix_secs` (steps before 1970 are clamped to 0).
pub fn step_at(unix_secs: i64) -> u64 {
    unix_secs.max(0).div_euclid(STEP_SECS) as u64
}

/// RFC 4226 HOTP: HMAC-SHA1 of the big-endian counter, dynamically truncated to `digits`.
pub fn hotp(key: &[u8], counter: u64, digits: u32) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(&counter.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let offset = (h[h.len() - 1] & 0x0f) as usize;
    let bin = u32::from_be_bytes([
        h[offset] & 0x7f,
        h[offset + 1],
        h[offset + 2],
        h[offset + 3],
    ]);
    let value = u64::from(bin) % 10u64.pow(digits);
    format!("{value:0width$}", width = digits as usize)
}

/// The code with `digits` digits for the step containing `unix_secs`, from a raw key.
pub fn totp_raw(key: &[u8], unix_secs: i64, digits: u32) -> String {
    hotp(key, step_at(unix_secs), digits)
}

/// The 6-digit code an authenticator app shows at `unix_secs` for a Base32 secret. For tests
/// (and the browser tests that sign in as a supervisor). An undecodable secret gives an empty
/// string, which never verifies.
pub fn code_at(secret_b32: &str, unix_secs: i64) -> String {
    match decode_secret(secret_b32) {
        Ok(key) => totp_raw(&key, unix_secs, DIGITS),
        Err(_) => String::new(),
    }
}

/// Checks a typed code against the steps within [`WINDOW`] of `unix_secs`. Returns the step it
/// matched, so the caller can refuse a second use of the same code (RFC 6238 §5.2).
pub fn verify(secret_b32: &str, code: &str, unix_secs: i64) -> Option<u64> {
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let key = decode_secret(secret_b32).ok()?;
    let now = step_at(unix_secs) as i64;
    // Check every step in the window without stopping early, so timing says nothing about
    // which step (if any) matched.
    let mut matched = None;
    for step in (now - WINDOW)..=(now + WINDOW) {
        if step < 0 {
            continue;
        }
        let expected = hotp(&key, step as u64, DIGITS);
        if constant_time_eq(expected.as_bytes(), code.as_bytes()) && matched.is_none() {
            matched = Some(step as u64);
        }
    }
    matched
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The `otpauth://` URI an authenticator app scans (as a QR code) to enrol a secret.
pub fn otpauth_uri(secret_b32: &str, username: &str) -> String {
    // Usernames are [a-z0-9_.] (see staff.rs), so they need no percent-encoding.
    format!(
        "otpauth://totp/OpenHall:{username}?secret={secret_b32}&issuer=OpenHall&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_KEY: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc6238_sha1_test_vectors() {
        // RFC 6238 Appendix B, the SHA-1 column.
        for (t, expected) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(totp_raw(RFC_KEY, t, 8), expected, "T={t}");
        }
    }

    #[test]
    fn rfc4226_hotp_test_vectors() {
        // RFC 4226 Appendix D: the same key, counters 0..9, 6 digits.
        let expected = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
            "399871", "520489",
        ];
        for (i, e) in expected.iter().enumerate() {
            assert_eq!(hotp(RFC_KEY, i as u64, 6), *e, "counter {i}");
        }
    }

    #[test]
    fn base32_secrets_decode_like_authenticator_apps() {
        let b32 = BASE32_NOPAD.encode(RFC_KEY);
        assert_eq!(b32, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(code_at(&b32, 59), "287082");
        assert_eq!(
            code_at("gezd gnbv gy3t qojq gezd gnbv gy3t qojq", 59),
            "287082"
        );
        assert_eq!(
            decode_secret("JBSWY3DPEHPK3PXP").unwrap(),
            b"Hello!\xde\xad\xbe\xef"
        );
        assert_eq!(
            normalize_secret("jbsw y3dp ehpk 3pxp").unwrap(),
            "JBSWY3DPEHPK3PXP"
        );
        assert_eq!(
            decode_secret("JBSWY3DP"),
            Err(Invalid::TotpSecret),
            "too short"
        );
        assert_eq!(decode_secret("not base32!"), Err(Invalid::TotpSecret));
        assert_eq!(code_at("not base32!", 59), "");
        let fresh = generate_secret();
        assert_eq!(fresh.len(), 32);
        assert_eq!(decode_secret(&fresh).unwrap().len(), 20);
        assert_ne!(fresh, generate_secret());
    }

    #[test]
    fn verify_accepts_one_step_either_side_and_no_more() {
        let s = "JBSWY3DPEHPK3PXP";
        let t = 1_790_000_000; // some moment; steps are 30 s
        let step = step_at(t);
        assert_eq!(verify(s, &code_at(s, t), t), Some(step));
        assert_eq!(verify(s, &code_at(s, t - 30), t), Some(step - 1));
        assert_eq!(verify(s, &code_at(s, t + 30), t), Some(step + 1));
        assert_eq!(verify(s, &code_at(s, t - 60), t), None, "two steps old");
        assert_eq!(verify(s, &code_at(s, t + 60), t), None, "two steps ahead");
        assert_eq!(verify(s, &format!(" {} ", code_at(s, t)), t), Some(step));
        // Malformed codes never match, whatever the secret.
        for bad in ["", "12345", "1234567", "12345a", "１２３４５６"] {
            assert_eq!(verify(s, bad, t), None, "{bad:?}");
        }
        // A wrong code: flip the last digit of the right one.
        let right = code_at(s, t);
        let mut wrong = right[..5].to_string();
        wrong.push(if right.ends_with('0') { '1' } else { '0' });
        let window: Vec<String> = (-1..=1).map(|k| code_at(s, t + 30 * k)).collect();
        if !window.contains(&wrong) {
            assert_eq!(verify(s, &wrong, t), None);
        }
        assert_eq!(verify("not base32!", &right, t), None);
    }

    #[test]
    fn otpauth_uri_names_the_account() {
        assert_eq!(
            otpauth_uri("JBSWY3DPEHPK3PXP", "supervisor01"),
            "otpauth://totp/OpenHall:supervisor01?secret=JBSWY3DPEHPK3PXP&issuer=OpenHall&algorithm=SHA1&digits=6&period=30"
        );
    }
}
