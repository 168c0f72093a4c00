//! Write transactions on the caller's own thread, for SQLite: what [`LocalReads`] does for
//! reads, for the SMS gateway's rounds (issue 4). Through sqlx each statement of a write
//! transaction was a hand-off to the connection's thread and back, and its arguments and rows
//! were converted twice on the way; the gateway writes a round of a few statements for every
//! batch of messages, and those hand-offs were a tenth of its time under load.
//!
//! Writers still take turns: a [`LocalTx`] holds the process's writer turn (the same one
//! sqlx's write transactions take, [`crate::store::Db::begin`]), so the two never wait on
//! SQLite's lock for each other. Another process may hold the lock (a second gateway on the
//! same file): then `BEGIN IMMEDIATE` is tried again after an asynchronous pause, never in
//! SQLite's busy handler, which would sleep on — and stall — the caller's thread.
//!
//! [`LocalReads`]: crate::store::local_reads::LocalReads
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode};
use tokio::sync::OwnedSemaphorePermit;

use crate::error::{Error, Result};
use crate::store::local_reads::{open, run, storage};
use crate::store::reads::{Read, ReadRow};

/// Once a transaction holds the write lock a statement only waits while SQLite recovers a
/// log after a crash; this bounds that.
const BUSY: Duration = Duration::from_secs(5);

/// The pauses between tries for the write lock another process holds, and how long in all.
const FIRST_PAUSE: Duration = Duration::from_millis(1);
const LONGEST_PAUSE: Duration = Duration::from_millis(50);

/// The one connection this process writes through outside sqlx, kept between transactions.
pub(crate) struct LocalWriter {
    path: PathBuf,
    idle: Mutex<Option<Connection>>,
}

impl std::fmt::Debug for LocalWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalWriter")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl LocalWriter {
    /// Writes to the SQLite file at `path` (already in WAL mode: sqlx's connections set it).
    pub(crate) fn new(path: PathBuf) -> LocalWriter {
        LocalWriter {
            path,
            idle: Mutex::new(None),
        }
    }

    fn open(&self) -> Result<Connection> {
        // As sqlx's connections have them (see `Db::connect_with`).
        open(
            &self.path,
            "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
             PRAGMA wal_autocheckpoint = 0;",
        )
    }

    fn put_back(&self, conn: Connection) {
        *self.idle.lock().expect("local writer lock") = Some(conn);
    }

    /// A write transaction (`BEGIN IMMEDIATE`), run while `turn` is held, waiting at most
    /// `wait` for another process to let go of the write lock.
    pub(crate) async fn begin(
        self: &Arc<Self>,
        turn: OwnedSemaphorePermit,
        wait: Duration,
    ) -> Result<LocalTx> {
        let kept = self.idle.lock().expect("local writer lock").take();
        let conn = match kept {
            Some(c) => c,
            None => self.open()?,
        };
        let deadline = Instant::now() + wait;
        let mut pause = FIRST_PAUSE;
        loop {
            conn.busy_timeout(Duration::ZERO).map_err(storage)?;
            match conn.execute_batch("BEGIN IMMEDIATE") {
                Ok(()) => break,
                Err(e) if is_busy(&e) && Instant::now() < deadline => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(LONGEST_PAUSE);
                }
                Err(e) => {
                    self.put_back(conn);
                    return Err(if is_busy(&e) {
                        Error::Storage(format!(
                            "the database is busy (no write lock in {} s)",
                            wait.as_secs()
                        ))
                    } else {
                        storage(e)
                    });
                }
            }
        }
        conn.busy_timeout(BUSY).map_err(storage)?;
        Ok(LocalTx {
            home: self.clone(),
            conn: Some(conn),
            _turn: turn,
        })
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error_code(), Some(ErrorCode::DatabaseBusy))
}

/// A write transaction on [`LocalWriter`]'s connection, on the caller's thread. Dropped
/// without [`LocalTx::commit`], it rolls back.
pub(crate) struct LocalTx {
    home: Arc<LocalWriter>,
    /// Taken back home when the transaction ends.
    conn: Option<Connection>,
    _turn: OwnedSemaphorePermit,
}

impl LocalTx {
    fn conn(&self) -> &Connection {
        self.conn.as_ref().expect("a transaction's connection")
    }

    /// A statement's rows.
    pub(crate) fn fetch(&mut self, statement: Read) -> Result<Vec<ReadRow>> {
        run(self.conn(), statement)
    }

    /// A statement's count of rows changed.
    pub(crate) fn execute(&mut self, statement: Read) -> Result<u64> {
        run(self.conn(), statement)?;
        Ok(self.conn().changes())
    }

    pub(crate) fn commit(mut self) -> Result<()> {
        let conn = self.conn.take().expect("a transaction's connection");
        let committed = conn.execute_batch("COMMIT").map_err(storage);
        self.conn = Some(conn);
        committed
    }
}

impl Drop for LocalTx {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        // A connection whose transaction could not be ended is not kept: the next
        // transaction opens a fresh one.
        if conn.is_autocommit() || conn.execute_batch("ROLLBACK").is_ok() {
            self.home.put_back(conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::sync::Semaphore;

    use super::*;

    fn turn() -> OwnedSemaphorePermit {
        Arc::new(Semaphore::new(1)).try_acquire_owned().unwrap()
    }

    fn count(path: &std::path::Path) -> i64 {
        Connection::open(path)
            .unwrap()
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap()
    }

    #[tokio::test]
    async fn a_transaction_commits_or_leaves_nothing_and_waits_for_another_processs_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db");
        let setup = Connection::open(&path).unwrap();
        setup
            .execute_batch(
                "PRAGMA journal_mode = WAL; \
                 CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)",
            )
            .unwrap();
        let writer = Arc::new(LocalWriter::new(path.clone()));
        let wait = Duration::from_secs(5);

        let mut tx = writer.begin(turn(), wait).await.unwrap();
        let ids = tx
            .fetch(
                Read::new("INSERT INTO t (v) VALUES (?), (?) RETURNING id")
                    .text("a")
                    .text("b"),
            )
            .unwrap();
        assert_eq!(ids.len(), 2);
        assert_eq!(
            tx.execute(Read::new("UPDATE t SET v = 'c' WHERE v = $1").text("a"))
                .unwrap(),
            1
        );
        tx.commit().unwrap();
        assert_eq!(count(&path), 2);

        // Dropped without a commit, or failed midway: nothing of it stays.
        let mut tx = writer.begin(turn(), wait).await.unwrap();
        tx.execute(Read::new("INSERT INTO t (v) VALUES ('d')"))
            .unwrap();
        assert!(tx
            .execute(Read::new("INSERT INTO t (v) VALUES (NULL)"))
            .is_err());
        drop(tx);
        assert_eq!(count(&path), 2);

        // Another connection (another process, as far as SQLite knows) holds the write
        // lock: the transaction begins once it lets go, without blocking this thread.
        setup.execute_batch("BEGIN IMMEDIATE").unwrap();
        let waiting = tokio::spawn({
            let writer = writer.clone();
            async move {
                let mut tx = writer.begin(turn(), wait).await.unwrap();
                tx.execute(Read::new("INSERT INTO t (v) VALUES ('e')"))
                    .unwrap();
                tx.commit().unwrap();
            }
        });
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(!waiting.is_finished());
        setup.execute_batch("COMMIT").unwrap();
        waiting.await.unwrap();
        assert_eq!(count(&path), 3);

        // …and gives up with a clear error after its wait.
        setup.execute_batch("BEGIN IMMEDIATE").unwrap();
        let err = writer
            .begin(turn(), Duration::from_millis(20))
            .await
            .err()
            .unwrap();
        assert!(format!("{err:?}").contains("busy"), "{err:?}");
        setup.execute_batch("ROLLBACK").unwrap();
        let tx = writer.begin(turn(), wait).await.unwrap();
        drop(tx);
    }
}
