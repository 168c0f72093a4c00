//! Where web sessions live: in the process by default, in Redis when `REDIS_URL` is set (so
//! that several web servers share them).
use async_trait::async_trait;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};
use tower_sessions::MemoryStore;
use tower_sessions_redis_store::fred::prelude::{ClientLike, Config, Pool, ReconnectPolicy};
use tower_sessions_redis_store::RedisStore;

#[derive(Clone, Debug)]
pub enum SessionStores {
    Memory(MemoryStore),
    Redis(RedisStore<Pool>),
}

impl SessionStores {
    pub async fn from_config(redis_url: Option<&str>) -> anyhow::Result<Self> {
        let Some(url) = redis_url else {
            return Ok(SessionStores::Memory(MemoryStore::default()));
        };
        let config = Config::from_url(url)?;
        // Reconnect for ever (10 ms doubling to 2 s): without a policy the pool never comes
        // back after Redis restarts, and every request needing a session hangs.
        let policy = ReconnectPolicy::new_exponential(0, 10, 2_000, 2);
        let pool = Pool::new(config, None, None, Some(policy), 4)?;
        pool.init().await?;
        Ok(SessionStores::Redis(RedisStore::new(pool)))
    }
}

#[async_trait]
impl SessionStore for SessionStores {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        match self {
            SessionStores::Memory(s) => s.create(record).await,
            SessionStores::Redis(s) => s.create(record).await,
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        match self {
            SessionStores::Memory(s) => s.save(record).await,
            SessionStores::Redis(s) => s.save(record).await,
        }
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        match self {
            SessionStores::Memory(s) => s.load(id).await,
            SessionStores::Redis(s) => s.load(id).await,
        }
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        match self {
            SessionStores::Memory(s) => s.delete(id).await,
            SessionStores::Redis(s) => s.delete(id).await,
        }
    }
}
