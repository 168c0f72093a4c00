//! Short-lived state — SMS codes, rate limits, confirmation prompts — behind one trait: in
//! process for the embedded default, Redis when several instances must agree.
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use redis::AsyncCommands;

use crate::error::Result;

/// The outcome of one hit on a sliding-window limiter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateDecision {
    Allowed,
    /// Refused; the earliest moment another hit would pass, in milliseconds from now.
    Limited {
        retry_after_ms: i64,
    },
}

/// Times are passed in (`now_ms`) rather than read, so the rules follow the service clock; the
/// stores' own expiry (`ttl`) is only housekeeping.
#[async_trait]
pub trait Ephemeral: Send + Sync + 'static {
    async fn put(&self, key: &str, value: &str, ttl: Duration) -> Result<()>;
    async fn get(&self, key: &str) -> Result<Option<String>>;
    /// Reads and deletes in one step: of two concurrent callers only one gets the value.
    async fn take(&self, key: &str) -> Result<Option<String>>;
    async fn delete(&self, key: &str) -> Result<()>;
    /// Adds one and returns the new count; the key lives `ttl` from its first increment.
    async fn incr(&self, key: &str, ttl: Duration) -> Result<i64>;
    /// Records a hit at `now_ms` if every `(window_ms, limit)` still has room, atomically.
    async fn rate_hit(
        &self,
        key: &str,
        now_ms: i64,
        windows: &[(i64, i64)],
    ) -> Result<RateDecision>;
}

/// Decides a sliding-window hit over ascending hit times; shared by both stores' logic tests.
fn decide(hits: &[i64], now_ms: i64, windows: &[(i64, i64)]) -> RateDecision {
    for &(window, limit) in windows {
        let in_window: Vec<i64> = hits
            .iter()
            .copied()
            .filter(|&t| t > now_ms - window)
            .collect();
        if in_window.len() as i64 >= limit {
            let must_expire = in_window[in_window.len() - limit as usize];
            return RateDecision::Limited {
                retry_after_ms: must_expire + window - now_ms,
            };
        }
    }
    RateDecision::Allowed
}

// ----------------------------------------------------------------------------------------------

#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<MemoryInner>,
}

#[derive(Default)]
struct MemoryInner {
    values: HashMap<String, (String, Instant)>,
    hits: HashMap<String, (VecDeque<i64>, Instant)>,
    writes: u64,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut MemoryInner) -> T) -> T {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.writes += 1;
        if g.writes.is_multiple_of(1024) {
            let now = Instant::now();
            g.values.retain(|_, (_, exp)| *exp > now);
            g.hits.retain(|_, (_, exp)| *exp > now);
        }
        f(&mut g)
    }
}

impl MemoryInner {
    fn live(&mut self, key: &str) -> Option<&mut (String, Instant)> {
        let now = Instant::now();
        if self.values.get(key).is_some_and(|(_, exp)| *exp <= now) {
            self.values.remove(key);
        }
        self.values.get_mut(key)
    }
}

#[async_trait]
impl Ephemeral for MemoryStore {
    async fn put(&self, key: &str, value: &str, ttl: Duration) -> Result<()> {
        self.with(|m| {
            m.values
                .insert(key.into(), (value.into(), Instant::now() + ttl))
        });
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<String>> {
        Ok(self.with(|m| m.live(key).map(|(v, _)| v.clone())))
    }

    async fn take(&self, key: &str) -> Result<Option<String>> {
        Ok(self.with(|m| {
            m.live(key)?;
            m.values.remove(key).map(|(v, _)| v)
        }))
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.with(|m| m.values.remove(key));
        Ok(())
    }

    async fn incr(&self, key: &str, ttl: Duration) -> Result<i64> {
        Ok(self.with(|m| {
            let n = m
                .live(key)
                .and_then(|(v, _)| v.parse::<i64>().ok())
                .unwrap_or(0)
                + 1;
            match m.live(key) {
                Some(entry) => entry.0 = n.to_string(),
                None => {
                    m.values
                        .insert(key.into(), (n.to_string(), Instant::now() + ttl));
                }
            }
            n
        }))
    }

    async fn rate_hit(
        &self,
        key: &str,
        now_ms: i64,
        windows: &[(i64, i64)],
    ) -> Result<RateDecision> {
        let longest = windows.iter().map(|w| w.0).max().unwrap_or(0);
        Ok(self.with(|m| {
            let entry = m
                .hits
                .entry(key.into())
                .or_insert_with(|| (VecDeque::new(), Instant::now()));
            entry.0.retain(|&t| t > now_ms - longest);
            let hits: Vec<i64> = entry.0.iter().copied().collect();
            let d = decide(&hits, now_ms, windows);
            if d == RateDecision::Allowed {
                entry.0.push_back(now_ms);
                entry.1 = Instant::now() + Duration::from_millis(longest.max(0) as u64);
            }
            d
        }))
    }
}

// ----------------------------------------------------------------------------------------------

/// Redis, through a connection manager that reconnects by itself. Every key carries a prefix so
/// that tests (and several deployments) can share one server.
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
}

const RATE_HIT: &str = r#"
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[3]))
for i = 4, #ARGV, 2 do
  local w = tonumber(ARGV[i])
  local lim = tonumber(ARGV[i + 1])
  local n = redis.call('ZCOUNT', KEYS[1], '(' .. (now - w), '+inf')
  if n >= lim then
    local e = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. (now - w), '+inf', 'WITHSCORES', 'LIMIT', n - lim, 1)
    return tonumber(e[2]) + w - now
  end
end
redis.call('ZADD', KEYS[1], now, ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 0
"#;

const INCR_TTL: &str = r#"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
"#;

impl RedisStore {
    pub async fn connect(url: &str, prefix: &str) -> Result<Self> {
        let client = redis::Client::open(url)?;
        let conn = ConnectionManager::new(client).await?;
        Ok(Self {
            conn,
            prefix: prefix.into(),
        })
    }

    fn k(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

fn ms(d: Duration) -> u64 {
    d.as_millis().max(1) as u64
}

/// Whether a Redis error is the connection's (Redis restarting, a fail-over), not the command's.
fn transient(e: &redis::RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || e.is_timeout()
}

impl RedisStore {
    /// Runs `op` on a connection; when the connection fails, tries again for about three
    /// seconds while the manager reconnects, so a Redis restart costs a pause rather than an
    /// error for every web page and SMS command of that moment. A command whose answer was lost
    /// may run twice: harmless for these operations (at worst one hit counts twice against a
    /// limit, or a code taken is reported missing).
    async fn patiently<T, F, Fut>(&self, mut op: F) -> redis::RedisResult<T>
    where
        F: FnMut(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let mut pause = Duration::from_millis(100);
        for _ in 0..5 {
            match op(self.conn.clone()).await {
                Err(e) if transient(&e) => {
                    tracing::debug!(error = %e, "Redis connection failed; trying again");
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
                done => return done,
            }
        }
        op(self.conn.clone()).await
    }
}

#[async_trait]
impl Ephemeral for RedisStore {
    async fn put(&self, key: &str, value: &str, ttl: Duration) -> Result<()> {
        let key = self.k(key);
        self.patiently(|mut c| {
            let cmd = redis::cmd("SET")
                .arg(&key)
                .arg(value)
                .arg("PX")
                .arg(ms(ttl))
                .clone();
            async move { cmd.query_async::<()>(&mut c).await }
        })
        .await?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<String>> {
        let key = self.k(key);
        Ok(self
            .patiently(|mut c| {
                let key = key.clone();
                async move { c.get(key).await }
            })
            .await?)
    }

    async fn take(&self, key: &str) -> Result<Option<String>> {
        let key = self.k(key);
        Ok(self
            .patiently(|mut c| {
                let cmd = redis::cmd("GETDEL").arg(&key).clone();
                async move { cmd.query_async(&mut c).await }
            })
            .await?)
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let key = self.k(key);
        self.patiently(|mut c| {
            let key = key.clone();
            async move { c.del::<_, i64>(key).await }
        })
        .await?;
        Ok(())
    }

    async fn incr(&self, key: &str, ttl: Duration) -> Result<i64> {
        let key = self.k(key);
        let script = redis::Script::new(INCR_TTL);
        Ok(self
            .patiently(|mut c| {
                let (script, key) = (&script, &key);
                async move { script.key(key).arg(ms(ttl)).invoke_async(&mut c).await }
            })
            .await?)
    }

    async fn rate_hit(
        &self,
        key: &str,
        now_ms: i64,
        windows: &[(i64, i64)],
    ) -> Result<RateDecision> {
        let key = self.k(key);
        let longest = windows.iter().map(|w| w.0).max().unwrap_or(1);
        let member = format!("{now_ms}-{}", uuid::Uuid::new_v4().simple());
        let script = redis::Script::new(RATE_HIT);
        let retry: i64 = self
            .patiently(|mut c| {
                let (script, key, member) = (&script, &key, &member);
                async move {
                    let mut inv = script.key(key);
                    inv.arg(now_ms).arg(member).arg(longest);
                    for (w, l) in windows {
                        inv.arg(*w).arg(*l);
                    }
                    inv.invoke_async(&mut c).await
                }
            })
            .await?;
        Ok(if retry > 0 {
            RateDecision::Limited {
                retry_after_ms: retry,
            }
        } else {
            RateDecision::Allowed
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sliding_window_decisions() {
        let w = [(60_000, 1), (3_600_000, 5)];
        assert_eq!(decide(&[], 0, &w), RateDecision::Allowed);
        assert_eq!(
            decide(&[0], 30_000, &w),
            RateDecision::Limited {
                retry_after_ms: 30_000
            }
        );
        assert_eq!(decide(&[0], 60_000, &w), RateDecision::Allowed);
        let five = [0, 60_000, 120_000, 180_000, 240_000];
        assert_eq!(
            decide(&five, 300_000, &w),
            RateDecision::Limited {
                retry_after_ms: 3_300_000
            }
        );
    }
}
