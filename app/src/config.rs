//! Configuration from the environment of SPEC §8, parsed once at start-up.
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Config {
    pub database_url: String,
    pub redis_url: Option<String>,
    pub http_addr: SocketAddr,
    pub smsc: Option<SmscAddress>,
    /// Where `server` hosts the built-in SMSC simulator when no `OPENHALL_SMSC` is set, and
    /// where `sms-gateway` then binds.
    pub sim_addr: SocketAddr,
    pub short_code: String,
    pub demo: bool,
    pub settings: Settings,
}

/// The knobs of the rules themselves, shared by every channel.
#[derive(Clone, Debug)]
pub struct Settings {
    /// How long an SMS code stays valid.
    pub code_ttl: Duration,
    /// The 二次确认 window for SMS confirmations.
    pub confirm_ttl: Duration,
    /// How long a balance may stay below zero before the number is suspended for arrears.
    pub arrears_grace: Duration,
    pub short_code: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            code_ttl: Duration::from_secs(300),
            confirm_ttl: Duration::from_secs(600),
            arrears_grace: Duration::from_secs(3 * 24 * 3600),
            short_code: "10086".into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmscAddress {
    pub system_id: String,
    pub password: String,
    pub host: String,
    pub port: u16,
}

impl SmscAddress {
    /// `smpp://SYSTEM_ID:PASSWORD@HOST:PORT`
    pub fn parse(s: &str) -> Result<Self, ConfigError> {
        let bad = || {
            ConfigError::Invalid(
                "OPENHALL_SMSC",
                "expected smpp://SYSTEM_ID:PASSWORD@HOST:PORT",
            )
        };
        let rest = s.strip_prefix("smpp://").ok_or_else(bad)?;
        let (cred, addr) = rest.rsplit_once('@').ok_or_else(bad)?;
        let (system_id, password) = cred.split_once(':').ok_or_else(bad)?;
        let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
        if system_id.is_empty() || host.is_empty() {
            return Err(bad());
        }
        Ok(Self {
            system_id: system_id.into(),
            password: password.into(),
            host: host.into(),
            port: port.parse().map_err(|_| bad())?,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is invalid: {1}")]
    Invalid(&'static str, &'static str),
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let secs = |key: &'static str, default: u64| -> Result<Duration, ConfigError> {
            match get(key) {
                None => Ok(Duration::from_secs(default)),
                Some(v) => v
                    .parse::<u64>()
                    .ok()
                    .filter(|s| *s > 0)
                    .map(Duration::from_secs)
                    .ok_or(ConfigError::Invalid(
                        key,
                        "expected a positive number of seconds",
                    )),
            }
        };
        let short_code = get("OPENHALL_SHORT_CODE").unwrap_or_else(|| "10086".into());
        if short_code.is_empty() || !short_code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ConfigError::Invalid(
                "OPENHALL_SHORT_CODE",
                "expected digits",
            ));
        }
        let settings = Settings {
            code_ttl: secs("OPENHALL_CODE_TTL_SECS", 300)?,
            confirm_ttl: secs("OPENHALL_CONFIRM_TTL_SECS", 600)?,
            short_code: short_code.clone(),
            ..Settings::default()
        };
        Ok(Self {
            database_url: get("DATABASE_URL").unwrap_or_else(|| "sqlite://data/openhall.db".into()),
            redis_url: get("REDIS_URL"),
            http_addr: get("OPENHALL_HTTP_ADDR")
                .unwrap_or_else(|| "127.0.0.1:3000".into())
                .parse()
                .map_err(|_| ConfigError::Invalid("OPENHALL_HTTP_ADDR", "expected HOST:PORT"))?,
            smsc: get("OPENHALL_SMSC")
                .map(|s| SmscAddress::parse(&s))
                .transpose()?,
            sim_addr: get("OPENHALL_SIM_ADDR")
                .unwrap_or_else(|| "127.0.0.1:2775".into())
                .parse()
                .map_err(|_| ConfigError::Invalid("OPENHALL_SIM_ADDR", "expected HOST:PORT"))?,
            short_code,
            demo: match get("OPENHALL_DEMO").as_deref() {
                None | Some("0") | Some("false") => false,
                Some("1") | Some("true") => true,
                Some(_) => return Err(ConfigError::Invalid("OPENHALL_DEMO", "expected 1 or 0")),
            },
            settings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn defaults_match_the_spec() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.database_url, "sqlite://data/openhall.db");
        assert_eq!(c.http_addr.to_string(), "127.0.0.1:3000");
        assert_eq!(c.short_code, "10086");
        assert_eq!(c.sim_addr.to_string(), "127.0.0.1:2775");
        assert!(c.redis_url.is_none() && c.smsc.is_none() && !c.demo);
        assert_eq!(c.settings.code_ttl.as_secs(), 300);
        assert_eq!(c.settings.confirm_ttl.as_secs(), 600);
    }

    #[test]
    fn parses_the_smsc_address() {
        let c = cfg(&[("OPENHALL_SMSC", "smpp://hall:s3cr:t@127.0.0.1:2775")]).unwrap();
        assert_eq!(
            c.smsc,
            Some(SmscAddress {
                system_id: "hall".into(),
                password: "s3cr:t".into(),
                host: "127.0.0.1".into(),
                port: 2775
            })
        );
        assert!(cfg(&[("OPENHALL_SMSC", "http://x")]).is_err());
    }

    #[test]
    fn refuses_bad_values() {
        assert!(cfg(&[("OPENHALL_CODE_TTL_SECS", "0")]).is_err());
        assert!(cfg(&[("OPENHALL_CONFIRM_TTL_SECS", "ten")]).is_err());
        assert!(cfg(&[("OPENHALL_HTTP_ADDR", "nowhere")]).is_err());
        assert!(cfg(&[("OPENHALL_DEMO", "yes please")]).is_err());
    }
}
