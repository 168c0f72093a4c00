//! Configuration from the environment of SPEC §8, parsed once at start-up, and from an
//! optional TOML file named by `OPENHALL_CONFIG` whose keys are the variables' names in lower
//! case without the `OPENHALL_` prefix (`database_url`, `http_addr`, `code_ttl_secs` …). A
//! variable set in the environment wins over the file.
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Config {
    pub database_url: String,
    /// Most database connections this process opens (`OPENHALL_DB_CONNECTIONS`); `None`: 8 on
    /// SQLite, 16 on PostgreSQL. Several instances share one PostgreSQL and its
    /// `max_connections`.
    pub db_connections: Option<u32>,
    /// Most submit_sm the gateway has outstanding at once (`OPENHALL_SMPP_WINDOW`, default
    /// 10): what the SMSC's operator allows. Past a few thousand replies a second, 10 in
    /// flight is what limits them.
    pub smpp_window: u32,
    pub redis_url: Option<String>,
    /// Put before every key this process writes to Redis (several deployments, or test runs,
    /// may share one Redis).
    pub redis_prefix: String,
    pub http_addr: SocketAddr,
    pub smsc: Option<SmscAddress>,
    /// Where `server` hosts the built-in SMSC simulator when no `OPENHALL_SMSC` is set, and
    /// where `sms-gateway` then binds.
    pub sim_addr: SocketAddr,
    pub short_code: String,
    pub demo: bool,
    /// Where `sms-gateway` serves `/healthz`, `/readyz` and `/metrics`; `None` (`off`): nowhere.
    pub gateway_http_addr: Option<SocketAddr>,
    /// How both binaries write their logs.
    pub log_format: LogFormat,
    pub settings: Settings,
}

/// `OPENHALL_LOG_FORMAT`: human-readable lines, or one JSON object a line for log shippers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
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
    /// The config file cannot be read, is not TOML, has an unknown key or a bad value.
    #[error("config file {path}: {reason}")]
    File { path: String, reason: String },
}

/// A whole number from 1 to 1000, when given.
fn one_to_1000(var: &'static str, raw: Option<String>) -> Result<Option<u32>, ConfigError> {
    raw.map(|v| {
        v.parse::<u32>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or(ConfigError::Invalid(
                var,
                "expected a whole number from 1 to 1000",
            ))
    })
    .transpose()
}

/// The variable naming the optional config file.
pub const CONFIG_FILE_VAR: &str = "OPENHALL_CONFIG";

/// The settings a config file may hold: its key, and the environment variable it stands for.
pub const FILE_KEYS: &[(&str, &str)] = &[
    ("database_url", "DATABASE_URL"),
    ("db_connections", "OPENHALL_DB_CONNECTIONS"),
    ("smpp_window", "OPENHALL_SMPP_WINDOW"),
    ("redis_url", "REDIS_URL"),
    ("redis_prefix", "OPENHALL_REDIS_PREFIX"),
    ("http_addr", "OPENHALL_HTTP_ADDR"),
    ("smsc", "OPENHALL_SMSC"),
    ("short_code", "OPENHALL_SHORT_CODE"),
    ("demo", "OPENHALL_DEMO"),
    ("code_ttl_secs", "OPENHALL_CODE_TTL_SECS"),
    ("confirm_ttl_secs", "OPENHALL_CONFIRM_TTL_SECS"),
    ("sim_addr", "OPENHALL_SIM_ADDR"),
    ("gateway_http_addr", "OPENHALL_GATEWAY_HTTP_ADDR"),
    ("log_format", "OPENHALL_LOG_FORMAT"),
];

/// A parsed config file: the values it gives, by environment variable.
#[derive(Clone, Debug, Default)]
pub struct ConfigFile {
    path: String,
    values: HashMap<&'static str, String>,
}

impl ConfigFile {
    /// Reads and checks the file: TOML, known keys only, each a string, an integer or a boolean
    /// (the values themselves are checked with the rest of the configuration).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
            path: path.display().to_string(),
            reason: format!("cannot read it: {e}"),
        })?;
        Self::parse(&path.display().to_string(), &text)
    }

    /// Parses the text of a file called `path` (used in error messages).
    pub fn parse(path: &str, text: &str) -> Result<Self, ConfigError> {
        let bad = |reason: String| ConfigError::File {
            path: path.to_owned(),
            reason,
        };
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| bad(format!("not valid TOML: {}", e.message())))?;
        let mut values = HashMap::new();
        for (key, value) in table {
            let Some(&(_, var)) = FILE_KEYS.iter().find(|(k, _)| *k == key) else {
                let known: Vec<&str> = FILE_KEYS.iter().map(|(k, _)| *k).collect();
                return Err(bad(format!(
                    "unknown key `{key}` (known keys: {})",
                    known.join(", ")
                )));
            };
            let text = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                _ => {
                    return Err(bad(format!(
                        "key `{key}` is invalid: expected a string, a whole number or true/false"
                    )))
                }
            };
            values.insert(var, text);
        }
        Ok(Self {
            path: path.to_owned(),
            values,
        })
    }

    /// The value the file gives the environment variable `var`.
    pub fn get(&self, var: &str) -> Option<String> {
        self.values.get(var).cloned()
    }

    pub fn path(&self) -> &str {
        &self.path
    }
}

/// The config file key of an environment variable.
fn file_key(var: &str) -> &'static str {
    FILE_KEYS
        .iter()
        .find(|(_, v)| *v == var)
        .map_or("?", |(k, _)| k)
}

impl Config {
    /// The environment, over the config file `OPENHALL_CONFIG` names, if any.
    pub fn from_env() -> Result<Self, ConfigError> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let file = env(CONFIG_FILE_VAR)
            .map(|p| ConfigFile::load(Path::new(&p)))
            .transpose()?;
        Self::from_sources(env, file.as_ref())
    }

    /// `get` (the environment) over `file`: a variable `get` gives wins. A bad value from the
    /// file is reported with the file and its key.
    pub fn from_sources(
        get: impl Fn(&str) -> Option<String>,
        file: Option<&ConfigFile>,
    ) -> Result<Self, ConfigError> {
        let Some(file) = file else {
            return Self::from_lookup(get);
        };
        Self::from_lookup(|k| get(k).or_else(|| file.get(k))).map_err(|e| match e {
            ConfigError::Invalid(var, why) if get(var).is_none() && file.get(var).is_some() => {
                ConfigError::File {
                    path: file.path.clone(),
                    reason: format!("key `{}` is invalid: {why}", file_key(var)),
                }
            }
            other => other,
        })
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
            db_connections: one_to_1000("OPENHALL_DB_CONNECTIONS", get("OPENHALL_DB_CONNECTIONS"))?,
            smpp_window: one_to_1000("OPENHALL_SMPP_WINDOW", get("OPENHALL_SMPP_WINDOW"))?
                .unwrap_or(10),
            redis_url: get("REDIS_URL"),
            redis_prefix: get("OPENHALL_REDIS_PREFIX").unwrap_or_else(|| "openhall:".into()),
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
            gateway_http_addr: match get("OPENHALL_GATEWAY_HTTP_ADDR").as_deref() {
                None => Some(SocketAddr::from(([127, 0, 0, 1], 3001))),
                Some("off") => None,
                Some(a) => Some(a.parse().map_err(|_| {
                    ConfigError::Invalid("OPENHALL_GATEWAY_HTTP_ADDR", "expected HOST:PORT or off")
                })?),
            },
            log_format: match get("OPENHALL_LOG_FORMAT").as_deref() {
                None | Some("text") => LogFormat::Text,
                Some("json") => LogFormat::Json,
                Some(_) => {
                    return Err(ConfigError::Invalid(
                        "OPENHALL_LOG_FORMAT",
                        "expected text or json",
                    ))
                }
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
        assert_eq!(
            c.gateway_http_addr.map(|a| a.to_string()).as_deref(),
            Some("127.0.0.1:3001")
        );
        assert_eq!(c.log_format, LogFormat::Text);
    }

    #[test]
    fn the_gateway_listener_and_the_log_format() {
        let c = cfg(&[
            ("OPENHALL_GATEWAY_HTTP_ADDR", "off"),
            ("OPENHALL_LOG_FORMAT", "json"),
        ])
        .unwrap();
        assert_eq!((c.gateway_http_addr, c.log_format), (None, LogFormat::Json));
        let c = cfg(&[("OPENHALL_GATEWAY_HTTP_ADDR", "0.0.0.0:9101")]).unwrap();
        assert_eq!(c.gateway_http_addr.unwrap().port(), 9101);
        assert!(cfg(&[("OPENHALL_GATEWAY_HTTP_ADDR", "3001")]).is_err());
        assert!(cfg(&[("OPENHALL_LOG_FORMAT", "xml")]).is_err());
    }

    #[test]
    fn the_smpp_window() {
        assert_eq!(cfg(&[]).unwrap().smpp_window, 10);
        assert_eq!(
            cfg(&[("OPENHALL_SMPP_WINDOW", "64")]).unwrap().smpp_window,
            64
        );
        for bad in ["0", "1001", "wide"] {
            assert!(matches!(
                cfg(&[("OPENHALL_SMPP_WINDOW", bad)]),
                Err(ConfigError::Invalid("OPENHALL_SMPP_WINDOW", _))
            ));
        }
    }

    #[test]
    fn the_database_connection_limit() {
        assert_eq!(cfg(&[]).unwrap().db_connections, None);
        let c = cfg(&[("OPENHALL_DB_CONNECTIONS", "4")]).unwrap();
        assert_eq!(c.db_connections, Some(4));
        for bad in ["0", "-1", "many", "1001"] {
            assert!(
                matches!(
                    cfg(&[("OPENHALL_DB_CONNECTIONS", bad)]),
                    Err(ConfigError::Invalid("OPENHALL_DB_CONNECTIONS", _))
                ),
                "{bad}"
            );
        }
    }

    const FILE: &str = r#"
        database_url = "postgres://hall@db.example/openhall"
        redis_url = "redis://cache.example:6379"
        http_addr = "0.0.0.0:8080"
        smsc = "smpp://hall:secret@smsc.example:2775"
        short_code = "10086"
        demo = false
        code_ttl_secs = 120
        confirm_ttl_secs = "300"
        sim_addr = "127.0.0.1:2776"
        gateway_http_addr = "off"
        log_format = "json"
    "#;

    fn with_file(vars: &[(&str, &str)], text: &str) -> Result<Config, ConfigError> {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let file = ConfigFile::parse("/etc/openhall.toml", text)?;
        Config::from_sources(|k| m.get(k).cloned(), Some(&file))
    }

    #[test]
    fn a_config_file_gives_every_setting() {
        let c = with_file(&[], FILE).unwrap();
        assert_eq!(c.database_url, "postgres://hall@db.example/openhall");
        assert_eq!(c.redis_url.as_deref(), Some("redis://cache.example:6379"));
        assert_eq!(c.http_addr.to_string(), "0.0.0.0:8080");
        assert_eq!(c.smsc.as_ref().unwrap().host, "smsc.example");
        assert!(!c.demo);
        assert_eq!(c.settings.code_ttl.as_secs(), 120);
        assert_eq!(c.settings.confirm_ttl.as_secs(), 300);
        assert_eq!(c.sim_addr.port(), 2776);
        assert_eq!((c.gateway_http_addr, c.log_format), (None, LogFormat::Json));
        assert!(with_file(&[], "demo = true").unwrap().demo);
        assert!(with_file(&[], "demo = 1").unwrap().demo);
    }

    #[test]
    fn the_environment_wins_over_the_file() {
        let c = with_file(
            &[
                ("OPENHALL_HTTP_ADDR", "127.0.0.1:3100"),
                ("OPENHALL_CODE_TTL_SECS", "60"),
                ("OPENHALL_GATEWAY_HTTP_ADDR", "127.0.0.1:3101"),
            ],
            FILE,
        )
        .unwrap();
        assert_eq!(c.http_addr.port(), 3100);
        assert_eq!(c.settings.code_ttl.as_secs(), 60);
        assert_eq!(c.gateway_http_addr.unwrap().port(), 3101);
        assert_eq!(c.database_url, "postgres://hall@db.example/openhall");
        // A bad file value the environment overrides does not matter.
        let c = with_file(&[("OPENHALL_CODE_TTL_SECS", "60")], "code_ttl_secs = 0").unwrap();
        assert_eq!(c.settings.code_ttl.as_secs(), 60);
    }

    #[test]
    fn a_bad_file_names_the_file_and_the_key() {
        let err = |text: &str| with_file(&[], text).unwrap_err().to_string();
        let e = err("databse_url = \"sqlite://x.db\"");
        assert!(
            e.contains("/etc/openhall.toml") && e.contains("unknown key `databse_url`"),
            "{e}"
        );
        let e = err("code_ttl_secs = 0");
        assert!(
            e.contains("/etc/openhall.toml") && e.contains("key `code_ttl_secs` is invalid"),
            "{e}"
        );
        let e = err("http_addr = \"nowhere\"");
        assert!(e.contains("key `http_addr` is invalid"), "{e}");
        let e = err("demo = \"perhaps\"");
        assert!(e.contains("key `demo` is invalid"), "{e}");
        let e = err("log_format = \"xml\"");
        assert!(e.contains("key `log_format` is invalid"), "{e}");
        let e = err("code_ttl_secs = 1.5");
        assert!(e.contains("key `code_ttl_secs` is invalid"), "{e}");
        let e = err("short_code = [\"10086\"]");
        assert!(e.contains("key `short_code` is invalid"), "{e}");
        let e = err("this is not toml");
        assert!(
            e.contains("/etc/openhall.toml") && e.contains("not valid TOML"),
            "{e}"
        );
        // A bad environment variable is still named as the variable.
        let e = with_file(&[("OPENHALL_DEMO", "maybe")], FILE)
            .unwrap_err()
            .to_string();
        assert!(e.contains("OPENHALL_DEMO"), "{e}");
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let e = ConfigFile::load(Path::new("/nonexistent/openhall.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/nonexistent/openhall.toml") && e.contains("cannot read"),
            "{e}"
        );
    }

    #[test]
    fn a_file_is_read_from_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("openhall.toml");
        std::fs::write(&path, "short_code = 10010\n").unwrap();
        let file = ConfigFile::load(&path).unwrap();
        let c = Config::from_sources(|_| None, Some(&file)).unwrap();
        assert_eq!(c.short_code, "10010");
        assert_eq!(c.settings.short_code, "10010");
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
