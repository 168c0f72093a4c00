use std::borrow::Cow;
use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use sqlx::{Any, AnyConnection, AnyPool, Executor, Transaction};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{Error, Result};
use crate::store::local_reads::LocalReads;
use crate::store::local_writes::{LocalTx, LocalWriter};
use crate::store::reads::{Read, ReadRow, Reader, Rows};

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
    /// Where write transactions run ([`Db::begin`]): on SQLite a pool of one connection.
    writes: AnyPool,
    backend: Backend,
    /// SQLite has one writer at a time. Left to itself, a writer that finds the lock taken
    /// sleeps in SQLite's busy handler (1, 2, 5 … 100 ms), which under load costs far more than
    /// the writes; so this process's write transactions queue here, in order, instead.
    writer: Arc<Semaphore>,
    /// While any clone of this `Db` lives, its SQLite checkpointer runs.
    _alive: Arc<()>,
    /// Batch statements' texts by call site and number of rows ([`Db::batch_statement`]).
    statements: Arc<std::sync::Mutex<StatementTexts>>,
    /// On SQLite, reads on the caller's thread ([`Db::reader`]).
    local: Option<Arc<LocalReads>>,
    /// On SQLite, write transactions on the caller's thread ([`Db::begin_write`]).
    local_writer: Option<Arc<LocalWriter>>,
}

/// Batch statements' texts by call site and number of rows.
type StatementTexts = HashMap<(&'static std::panic::Location<'static>, usize), Arc<str>>;

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

/// A write transaction whose statements are [`Read`]s (see [`Db::begin_write`]).
pub(crate) enum WriteTx {
    Local(LocalTx),
    Sqlx(Tx),
}

impl WriteTx {
    /// A statement's rows.
    pub(crate) async fn fetch(&mut self, statement: Read) -> Result<Vec<ReadRow>> {
        match self {
            WriteTx::Local(tx) => tx.fetch(statement),
            WriteTx::Sqlx(tx) => statement.fetch(tx).await,
        }
    }

    /// A statement's count of rows changed.
    pub(crate) async fn execute(&mut self, statement: Read) -> Result<u64> {
        match self {
            WriteTx::Local(tx) => tx.execute(statement),
            WriteTx::Sqlx(tx) => statement.execute(tx).await,
        }
    }

    pub(crate) async fn commit(self) -> Result<()> {
        match self {
            WriteTx::Local(tx) => tx.commit(),
            WriteTx::Sqlx(tx) => Ok(tx.commit().await?),
        }
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

/// A pooled PostgreSQL connection idle for longer than this is checked before it is used.
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(1);

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
        let file = match backend {
            Backend::Sqlite => Some(
                sqlx::sqlite::SqliteConnectOptions::from_str(&url)?
                    .get_filename()
                    .to_owned(),
            ),
            Backend::Postgres => None,
        };
        let local = file.clone().map(|f| Arc::new(LocalReads::new(f)));
        let local_writer = file.map(|f| Arc::new(LocalWriter::new(f)));
        let options = AnyConnectOptions::from_str(&url)?;
        let pool_of = |size: u32| {
            AnyPoolOptions::new()
                .max_connections(size)
                .acquire_timeout(Duration::from_secs(60))
                // A SQLite connection is a file handle in this process: nothing to find dead,
                // and the check is one more hand-off to its thread for every statement outside
                // a transaction. A PostgreSQL connection may have died with its server: check
                // one that has waited a while. Not every one: the check is a round trip, and
                // under load connections wait microseconds (sqlx checks each one given back).
                .test_before_acquire(false)
                .before_acquire(move |conn, meta| {
                    Box::pin(async move {
                        if backend == Backend::Postgres && meta.idle_for > CHECK_AFTER_IDLE {
                            sqlx::Connection::ping(conn).await?;
                        }
                        Ok(true)
                    })
                })
                .after_connect(move |conn, _| {
                    Box::pin(async move {
                        if backend == Backend::Sqlite {
                            // WAL lets readers run beside the single writer; the busy timeout
                            // makes writers queue rather than fail; NORMAL sync is safe under WAL.
                            // No checkpoints at commit: see `checkpoints`.
                            conn.execute(
                                "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 60000; \
                                 PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
                                 PRAGMA wal_autocheckpoint = 0;",
                            )
                            .await?;
                        }
                        Ok(())
                    })
                })
                .connect_with(options.clone())
        };
        let size = max_connections.unwrap_or(match backend {
            Backend::Sqlite => 8,
            Backend::Postgres => 16,
        });
        let pool = pool_of(size).await?;
        let writes = match backend {
            // SQLite writes one transaction at a time anyway: they all go through one
            // connection, whose prepared statements stay warm. Spread over the pool, each
            // connection prepared the batch statements again (see `runs`).
            Backend::Sqlite => pool_of(1).await?,
            Backend::Postgres => pool.clone(),
        };
        let alive = Arc::new(());
        let writer = Arc::new(Semaphore::new(1));
        if backend == Backend::Sqlite {
            tokio::spawn(checkpoints(
                pool.clone(),
                writer.clone(),
                Arc::downgrade(&alive),
            ));
        }
        Ok(Self {
            pool,
            writes,
            backend,
            writer,
            _alive: alive,
            statements: Arc::default(),
            local,
            local_writer,
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

    /// Where reads that need no transaction run: on SQLite on this thread, else on a
    /// connection of the pool (see [`crate::store::reads`]).
    pub(crate) async fn reader(&self) -> Result<Reader<'_>> {
        Ok(match &self.local {
            Some(local) => Reader::Local(local),
            None => Reader::Pooled(self.pool.acquire().await?),
        })
    }

    /// One read that needs no transaction, through [`Db::reader`].
    pub(crate) async fn read(&self, read: Read) -> Result<Vec<ReadRow>> {
        self.reader().await?.fetch(read).await
    }

    /// Several reads that need no transaction, in one batch ([`Reader::fetch_each`]).
    pub(crate) async fn read_each(&self, reads: impl IntoIterator<Item = Read>) -> Result<Rows> {
        self.reader().await?.fetch_each(reads).await
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The statement as this backend binds it fastest. SQLite finds a numbered parameter
    /// (`$7`) by walking its list of names, for each parameter: quadratic in a statement's
    /// parameters, and the SMS batch statements have up to a thousand
    /// (`sqlite3_bind_parameter_name` was the gateway's costliest function of its own under
    /// load). Anonymous `?` are bound by position; so when `$1 … $n` each appear once and in
    /// that order, SQLite gets `?`.
    pub fn sql<'a>(&self, sql: &'a str) -> Cow<'a, str> {
        match self.backend {
            Backend::Sqlite => positional(sql).map_or(Cow::Borrowed(sql), Cow::Owned),
            Backend::Postgres => Cow::Borrowed(sql),
        }
    }

    /// [`Db::sql`] for a statement built to bind by position (a batch's many rows): on SQLite a
    /// statement that does not qualify — a parameter out of order or repeated — fails debug
    /// builds (the tests) instead of silently paying the quadratic lookup again.
    pub fn batch_sql<'a>(&self, sql: &'a str) -> Cow<'a, str> {
        let out = self.sql(sql);
        debug_assert!(
            self.backend != Backend::Sqlite || matches!(out, Cow::Owned(_)),
            "a batch statement's parameters must appear once each, in order: {sql}"
        );
        out
    }

    /// [`Db::batch_sql`] of the statement `make` writes for `rows` rows, made once per call
    /// site and number of rows, then kept. Why (issue 4): writing out a batch statement's
    /// hundreds of placeholders, then turning them into `?`, was a fifth of the SMS gateway's
    /// writer thread — for texts that, cut by [`runs`], are always the same few. Keyed by the
    /// caller's place in the source, so two statements can never share an entry; `make` must
    /// depend on nothing but `rows`.
    #[track_caller]
    pub fn batch_statement(&self, rows: usize, make: impl FnOnce() -> String) -> Arc<str> {
        let site = std::panic::Location::caller();
        let mut known = self.statements.lock().expect("statement texts lock");
        known
            .entry((site, rows))
            .or_insert_with(|| Arc::from(self.batch_sql(&make()).as_ref()))
            .clone()
    }

    /// A transaction that will write. On SQLite it first waits for this process's writer turn,
    /// then takes the write lock at once (`BEGIN IMMEDIATE`): a deferred transaction that reads
    /// first and writes later fails with SQLITE_BUSY under concurrency instead of waiting.
    /// Never begin a second one while holding one: on SQLite it would wait for itself.
    pub async fn begin(&self) -> Result<Tx> {
        Ok(match self.backend {
            Backend::Sqlite => {
                let turn = self.write_turn().await?;
                Tx {
                    tx: self.writes.begin_with("BEGIN IMMEDIATE").await?,
                    _turn: Some(turn),
                }
            }
            Backend::Postgres => Tx {
                tx: self.pool.begin().await?,
                _turn: None,
            },
        })
    }

    /// A write transaction as [`Db::begin`] makes, whose statements are [`Read`]s: on SQLite
    /// it runs on the caller's thread ([`LocalWriter`]), not on sqlx's; elsewhere it is a sqlx
    /// transaction.
    pub(crate) async fn begin_write(&self) -> Result<WriteTx> {
        Ok(match &self.local_writer {
            Some(writer) => {
                let turn = self.write_turn().await?;
                WriteTx::Local(writer.begin(turn, WRITER_WAIT).await?)
            }
            None => WriteTx::Sqlx(self.begin().await?),
        })
    }

    /// This process's turn to write on SQLite (see the field `writer`).
    async fn write_turn(&self) -> Result<OwnedSemaphorePermit> {
        tokio::time::timeout(WRITER_WAIT, self.writer.clone().acquire_owned())
            .await
            .map_err(|_| Error::Storage("the database is busy (no write turn in 60 s)".into()))?
            .map_err(|_| Error::Storage("the database is closing".into()))
    }

    /// Closes the connections: what is under way finishes, and every read or write after
    /// this fails ("the database is closing"), through sqlx or on this process's own SQLite
    /// connections alike.
    pub async fn close(&self) {
        self.writer.close();
        if let Some(local) = &self.local {
            local.close();
        }
        self.pool.close().await;
        self.writes.close().await
    }
}

/// How often the SQLite checkpointer copies the log back into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

/// Copies SQLite's write-ahead log back into the database file, beside the writers, while
/// `alive` can be upgraded (and the pool is open).
///
/// Why (issue 6): by default the commit that grows the log past 1,000 pages does the
/// checkpoint itself — copying 4 MB and syncing the file to disk while the writer's turn, and
/// every write queued behind it, waits: under load a stall every few seconds. Here the bulk of
/// the copy is a PASSIVE checkpoint on a connection of its own, beside the writers. That
/// alone never catches up with a busy writer, and the log is only started over by a write
/// that finds it all copied; so a second checkpoint, holding this process's write turn,
/// copies the few pages written meanwhile — and the next write starts the log over.
async fn checkpoints(pool: AnyPool, writer: Arc<Semaphore>, alive: std::sync::Weak<()>) {
    async fn checkpoint(conn: &mut AnyConnection) {
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_optional(conn)
            .await
        {
            tracing::debug!(error = %e, "SQLite checkpoint failed; tried again shortly");
        }
    }
    loop {
        tokio::time::sleep(CHECKPOINT_EVERY).await;
        if alive.upgrade().is_none() || pool.is_closed() {
            return;
        }
        // The connection first: the write turn is not held while waiting for one.
        let Ok(mut conn) = pool.acquire().await else {
            continue;
        };
        checkpoint(&mut conn).await;
        let Ok(Ok(_turn)) = tokio::time::timeout(WRITER_WAIT, writer.clone().acquire_owned()).await
        else {
            continue;
        };
        checkpoint(&mut conn).await;
    }
}

/// Most rows one multi-row statement takes (well under both databases' parameter limits; a
/// gateway round's parts are up to 256 MO, completions or receipts).
pub(crate) const MOST_ROWS: usize = 256;

/// `items` cut for multi-row statements, in order: runs whose lengths are powers of two, at
/// most [`MOST_ROWS`], the longest first (`137` → `128, 8, 1`).
///
/// Why: a connection prepares a statement once per text and keeps it; a batch cut anywhere
/// makes a new text (`VALUES (…), (…)` with one more row) nearly every time, and preparing a
/// statement of a thousand parameters cost more than running it (the gateway's writer spent
/// most of its time in SQLite's parser and allocator). Cut this way, a kind of statement has
/// nine texts, all prepared after the first few batches.
pub(crate) fn runs<T>(items: &[T]) -> impl Iterator<Item = &[T]> {
    let mut rest = items;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let n = MOST_ROWS.min(1 << rest.len().ilog2());
        let (run, after) = rest.split_at(n);
        rest = after;
        Some(run)
    })
}

/// `$first, $first+1, …` for `rows` rows of `width` values: `($1, $2), ($3, $4)` for width 2,
/// or `$1, $2, $3` for width 1 (an IN list).
pub(crate) fn placeholders(first: usize, rows: usize, width: usize) -> String {
    let row = |r: usize| {
        let cols: Vec<String> = (0..width)
            .map(|c| format!("${}", first + r * width + c))
            .collect();
        cols.join(", ")
    };
    let rows: Vec<String> = (0..rows)
        .map(|r| {
            if width == 1 {
                row(r)
            } else {
                format!("({})", row(r))
            }
        })
        .collect();
    rows.join(", ")
}

/// `sql` with `$1 … $n` replaced by `?`, when they appear once each and in that order (a `$`
/// followed by digits is a parameter: the hall's SQL has no dollar-quoted text).
fn positional(sql: &str) -> Option<String> {
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let (mut next, mut copied, mut i) = (1u64, 0, 0);
    while i < bytes.len() {
        if bytes[i] == b'$' {
            let digits = bytes[i + 1..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            if digits > 0 {
                let n: u64 = sql[i + 1..i + 1 + digits].parse().ok()?;
                if n != next {
                    return None;
                }
                next += 1;
                out.push_str(&sql[copied..i]);
                out.push('?');
                i += 1 + digits;
                copied = i;
                continue;
            }
        }
        i += 1;
    }
    if next == 1 {
        return None;
    }
    out.push_str(&sql[copied..]);
    Some(out)
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

/// A database of its own on a fresh SQLite file (kept while the directory lives), for tests
/// of the storage layer that need SQLite whatever `DATABASE_URL` says.
#[cfg(test)]
pub(crate) async fn scratch_sqlite() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::connect(&format!("sqlite://{}", dir.path().join("x.db").display()))
        .await
        .unwrap();
    (dir, db)
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

    /// A SQLite database of its own with a table `t (v TEXT)`, and where its log is.
    async fn sqlite_with_a_table() -> (Db, std::path::PathBuf, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db");
        let db = Db::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        sqlx::query("CREATE TABLE t (v TEXT)")
            .execute(db.pool())
            .await
            .unwrap();
        (db, dir.path().join("x.db-wal"), dir)
    }

    /// A PostgreSQL connection that died while it waited in the pool (its server restarted, or
    /// an administrator ended it) is found out before use: the next reads succeed. Only on
    /// PostgreSQL (`bin/test --production`); a SQLite connection cannot die that way.
    #[tokio::test]
    async fn a_pooled_connection_that_died_while_idle_is_not_used() {
        let (db, _guard) = crate::testing::fresh_db().await;
        if db.backend() != Backend::Postgres {
            return;
        }
        async fn pid_of(c: &mut AnyConnection) -> i32 {
            sqlx::query_scalar("SELECT pg_backend_pid()")
                .fetch_one(c)
                .await
                .unwrap()
        }
        let mut first = db.pool().acquire().await.unwrap();
        let mut second = db.pool().acquire().await.unwrap();
        let doomed = pid_of(&mut first).await;
        drop(first);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let ended: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
            .bind(doomed)
            .fetch_one(&mut *second)
            .await
            .unwrap();
        assert!(ended);
        drop(second);
        tokio::time::sleep(CHECK_AFTER_IDLE + Duration::from_millis(200)).await;
        for _ in 0..3 {
            let mut c = db.pool().acquire().await.unwrap();
            assert_ne!(pid_of(&mut c).await, doomed, "a live connection");
        }
        db.close().await;
    }

    #[tokio::test]
    async fn the_checkpointer_keeps_the_sqlite_log_from_growing() {
        let (db, wal, _dir) = sqlite_with_a_table().await;
        let write_2mb = || async {
            let mut tx = db.begin().await.unwrap();
            for _ in 0..64 {
                sqlx::query("INSERT INTO t (v) VALUES ($1)")
                    .bind("x".repeat(32 * 1024))
                    .execute(&mut *tx)
                    .await
                    .unwrap();
            }
            tx.commit().await.unwrap();
        };
        write_2mb().await;
        let after_one = std::fs::metadata(&wal).unwrap().len();
        assert!(
            after_one > 2_000_000,
            "the log holds the write: {after_one}"
        );
        // Several of the checkpointer's turns: the log is copied back, and the next write
        // starts it over instead of appending (commits no longer checkpoint by themselves).
        tokio::time::sleep(CHECKPOINT_EVERY * 10).await;
        write_2mb().await;
        let after_two = std::fs::metadata(&wal).unwrap().len();
        assert!(
            after_two < after_one + after_one / 2,
            "the log was reused, not grown: {after_one} then {after_two}"
        );
        db.close().await;
    }

    /// Under a writer that never pauses (the gateway under load), a checkpoint beside it never
    /// finds the log all copied when a write begins: only the one taken holding the write turn
    /// lets the log start over. Without it the log grew by everything written.
    #[tokio::test]
    async fn the_log_starts_over_under_a_writer_that_never_pauses() {
        let (db, wal, _dir) = sqlite_with_a_table().await;
        let row = "x".repeat(4 * 1024);
        const WRITE: u64 = 24 << 20;
        let (mut written, mut largest) = (0u64, 0u64);
        // By amount, not by time: a slow machine writes as much, only later. Each transaction
        // holds the write turn a few milliseconds, as a gateway round does, which also keeps a
        // fast machine from writing more between two checkpoints than the bound below.
        while written < WRITE {
            let mut tx = db.begin().await.unwrap();
            for _ in 0..16 {
                sqlx::query("INSERT INTO t (v) VALUES ($1)")
                    .bind(&row)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
            tx.commit().await.unwrap();
            written += 16 * row.len() as u64;
            largest = largest.max(std::fs::metadata(&wal).unwrap().len());
        }
        assert!(
            largest < WRITE / 3,
            "the log started over while {WRITE} bytes were written; it reached {largest}"
        );
        db.close().await;
    }

    /// Closed, the database refuses every read and write, on its own SQLite connections too
    /// (the gateway answers ESME_RX_T_APPN when it cannot store an MO).
    #[tokio::test]
    async fn once_closed_nothing_is_read_or_written() {
        let (_dir, db) = scratch_sqlite().await;
        assert!(db.read(Read::new("SELECT 1")).await.is_ok());
        db.begin_write().await.unwrap().commit().await.unwrap();
        db.close().await;
        assert!(db.read(Read::new("SELECT 1")).await.is_err());
        assert!(db.begin_write().await.is_err());
        assert!(db.begin().await.is_err());
    }

    #[tokio::test]
    async fn batch_statements_are_made_once_per_call_site_and_length() {
        let (db, _guard) = crate::testing::fresh_db().await;
        let made = std::cell::Cell::new(0);
        let make = |what: &str, rows: usize| {
            made.set(made.get() + 1);
            format!("SELECT {what} WHERE 1 IN ({})", placeholders(1, rows, 1))
        };
        let mut texts = Vec::new();
        for rows in [2, 2, 4, 2] {
            texts.push(db.batch_statement(rows, || make("1", rows)));
        }
        assert_eq!(made.get(), 2, "made for 2 rows once, and for 4 once");
        assert_eq!(texts[0], texts[1]);
        assert_eq!(texts[0], texts[3]);
        assert_ne!(texts[0], texts[2]);
        assert_eq!(
            texts[0].as_ref(),
            db.batch_sql(&make("1", 2)).as_ref(),
            "as batch_sql gives it"
        );
        // Another call site with the same number of rows gets a text of its own.
        let elsewhere = db.batch_statement(2, || make("2", 2));
        assert_ne!(elsewhere, texts[0]);
        assert!(elsewhere.starts_with("SELECT 2"));
    }

    #[test]
    fn runs_are_powers_of_two_in_order() {
        let items: Vec<usize> = (0..600).collect();
        let lens = |n: usize| runs(&items[..n]).map(<[usize]>::len).collect::<Vec<_>>();
        assert_eq!(lens(0), Vec::<usize>::new());
        assert_eq!(lens(1), vec![1]);
        assert_eq!(lens(137), vec![128, 8, 1]);
        assert_eq!(lens(255), vec![128, 64, 32, 16, 8, 4, 2, 1]);
        assert_eq!(lens(400), vec![256, 128, 16]);
        assert_eq!(lens(600), vec![256, 256, 64, 16, 8]);
        let joined: Vec<usize> = runs(&items).flatten().copied().collect();
        assert_eq!(joined, items);
    }

    #[test]
    fn placeholders_number_rows_and_lists() {
        assert_eq!(placeholders(1, 2, 2), "($1, $2), ($3, $4)");
        assert_eq!(placeholders(3, 3, 1), "$3, $4, $5");
    }

    #[test]
    fn numbered_parameters_in_order_become_positional_for_sqlite() {
        assert_eq!(
            positional("INSERT INTO t VALUES ($1, $2), ($3, $4)").as_deref(),
            Some("INSERT INTO t VALUES (?, ?), (?, ?)")
        );
        assert_eq!(
            positional("SET a = $1, b = CASE id WHEN $2 THEN $3 END WHERE id IN ($4)").as_deref(),
            Some("SET a = ?, b = CASE id WHEN ? THEN ? END WHERE id IN (?)")
        );
        // Out of order, repeated or none: left as they are (SQLite binds them by number).
        assert_eq!(positional("SET b = $2, a = $1"), None);
        assert_eq!(positional("WHERE a > $1 OR b > $1"), None);
        assert_eq!(positional("SELECT 1"), None);
        assert_eq!(
            positional("SELECT '$' || $1").as_deref(),
            Some("SELECT '$' || ?")
        );
    }

    #[tokio::test]
    async fn a_rewritten_statement_binds_the_same_values() {
        let (_dir, db) = scratch_sqlite().await;
        let sql = "SELECT $1 || '-' || $2 || '-' || $3";
        assert!(matches!(db.sql(sql), Cow::Owned(_)));
        let out_of_order = std::panic::AssertUnwindSafe(|| db.batch_sql("SELECT $2, $1").len());
        assert!(std::panic::catch_unwind(out_of_order).is_err());
        let row = sqlx::query(&db.sql(sql))
            .bind("a")
            .bind("b")
            .bind("c")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(sqlx::Row::try_get::<String, _>(&row, 0).unwrap(), "a-b-c");
    }
}
