use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use sqlx::{Any, AnyConnection, AnyPool, Executor, Transaction};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The relational store: SQLite (a file in WAL mode) by default, PostgreSQL in production.
/// Every query is plain runtime SQL that both accept, so one binary serves either.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    /// SQLite has one writer at a time. Left to itself, a writer that finds the lock taken
    /// sleeps in SQLite's busy handler (1, 2, 5 … 100 ms), which under load costs far more than
    /// the writes; so this process's write transactions queue here, in order, instead.
    writer: Arc<Semaphore>,
}

/// Longest a write transaction waits for its turn (as SQLite's busy timeout did before).
const WRITER_WAIT: Duration = Duration::from_secs(60);

/// A write transaction (see [`Db::begin`]): the connection, and on SQLite the writer's turn,
/// held until it commits or is dropped (which rolls back).
pub struct Tx {
    tx: Transaction<'static, Any>,
    _turn: Option<OwnedSemaphorePermit>,
}

impl Tx {
    pub async fn commit(self) -> std::result::Result<(), sqlx::Error> {
        self.tx.commit().await
    }

    pub async fn rollback(self) -> std::result::Result<(), sqlx::Error> {
        self.tx.rollback().await
    }
}

impl Deref for Tx {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        &self.tx
    }
}

impl DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }
}

impl Db {
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, None).await
    }

    pub async fn connect_with(url: &str, max_connections: Option<u32>) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(Error::Storage(format!(
                "DATABASE_URL must be sqlite://… or postgres://…, not {}",
                redact(url)
            )));
        };
        let url = match backend {
            Backend::Sqlite => sqlite_url(url)?,
            Backend::Postgres => url.to_owned(),
        };
        let options = AnyConnectOptions::from_str(&url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections.unwrap_or(match backend {
                Backend::Sqlite => 8,
                Backend::Postgres => 16,
            }))
            .acquire_timeout(Duration::from_secs(60))
            // A SQLite connection is a file handle in this process: nothing to find dead, and
            // the check is one more hand-off to its thread for every statement outside a
            // transaction. A PostgreSQL connection may have died with its server: check it.
            .test_before_acquire(backend == Backend::Postgres)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the single writer; the busy timeout makes
                        // writers queue rather than fail; NORMAL sync is safe under WAL.
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 60000; \
                             PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        Ok(Self {
            pool,
            backend,
            writer: Arc::new(Semaphore::new(1)),
        })
    }

    pub async fn migrate(&self) -> Result<()> {
        let migrator = match self.backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
        };
        migrator
            .run(&self.pool)
            .await
            .map_err(|e| Error::Storage(format!("migration failed: {e}")))
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A transaction that will write. On SQLite it first waits for this process's writer turn,
    /// then takes the write lock at once (`BEGIN IMMEDIATE`): a deferred transaction that reads
    /// first and writes later fails with SQLITE_BUSY under concurrency instead of waiting.
    /// Never begin a second one while holding one: on SQLite it would wait for itself.
    pub async fn begin(&self) -> Result<Tx> {
        Ok(match self.backend {
            Backend::Sqlite => {
                let turn = tokio::time::timeout(WRITER_WAIT, self.writer.clone().acquire_owned())
                    .await
                    .map_err(|_| {
                        Error::Storage("the database is busy (no write turn in 60 s)".into())
                    })?
                    .map_err(|_| Error::Storage("the database is closing".into()))?;
                Tx {
                    tx: self.pool.begin_with("BEGIN IMMEDIATE").await?,
                    _turn: Some(turn),
                }
            }
            Backend::Postgres => Tx {
                tx: self.pool.begin().await?,
                _turn: None,
            },
        })
    }

    pub async fn close(&self) {
        self.pool.close().await
    }
}

/// `sqlite://data/openhall.db` → a URL that creates the file (and its folder) when missing.
fn sqlite_url(url: &str) -> Result<String> {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path == ":memory:" {
        return Err(Error::Storage(
            "an in-memory SQLite database is not supported; give a file path".into(),
        ));
    }
    if let Some(parent) = std::path::Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent)
            .map_err(|e| Error::Storage(format!("cannot create {}: {e}", parent.display())))?;
    }
    let mut q: Vec<&str> = query
        .split('&')
        .filter(|s| !s.is_empty() && !s.starts_with("mode="))
        .collect();
    q.push("mode=rwc");
    Ok(format!("sqlite://{path}?{}", q.join("&")))
}

/// A URL with its password hidden, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let cred = &url[s + 3..at];
            match cred.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_create_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/x.db");
        let u = sqlite_url(&format!("sqlite://{}", path.display())).unwrap();
        assert!(u.ends_with("?mode=rwc"));
        assert!(path.parent().unwrap().exists());
        assert!(sqlite_url("sqlite::memory:").is_err());
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    }
}
