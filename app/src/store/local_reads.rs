//! Reads on the caller's own thread, for SQLite. sqlx gives each SQLite connection a thread of
//! its own, so every read there is a hand-off and two thread wake-ups; for the short indexed
//! reads of a page view that cost more than SQLite's own work (the signed-in home page served
//! twice as many requests a second with its reads answered from memory). SQLite itself is a
//! library: here a few connections of its own, in this process, answer the reads directly.
//! Only reads that need no transaction come here; write transactions run on the one
//! connection of [`crate::store::local_writes`] (the SMS rounds and claims) or on sqlx's
//! single writer.
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

use crate::error::{Error, Result};
use crate::store::reads::{Arg, Cell, Read, ReadRow};

/// Connections kept between reads: one per thread that reads at the same moment (the reads
/// never wait on anything else while they hold one), so a few.
const KEPT: usize = 8;

/// Prepared statements kept per connection (the hall has a few dozen distinct reads; the
/// gateway's rounds a few dozen batch statements).
const STATEMENTS: usize = 128;

/// A longer wait only happens while SQLite recovers a log after a crash.
const BUSY: Duration = Duration::from_secs(5);

pub(crate) struct LocalReads {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// Set by [`LocalReads::close`]: no read runs after it.
    closed: AtomicBool,
}

impl std::fmt::Debug for LocalReads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalReads")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// A connection of this process's own to the SQLite file at `path` (already in WAL mode:
/// sqlx's connections set it), set up by the statements `setup`, keeping its prepared
/// statements.
pub(crate) fn open(path: &Path, setup: &str) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(storage)?;
    conn.execute_batch(setup).map_err(storage)?;
    conn.set_prepared_statement_cache_capacity(STATEMENTS);
    Ok(conn)
}

pub(crate) fn storage(e: rusqlite::Error) -> Error {
    Error::Storage(e.to_string())
}

impl LocalReads {
    /// Reads of the SQLite file at `path` (already in WAL mode: sqlx's connections set it).
    pub(crate) fn new(path: PathBuf) -> LocalReads {
        LocalReads {
            path,
            idle: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
        }
    }

    /// Closes the kept connections; every read after this fails, as it would on a closed
    /// sqlx pool.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.idle.lock().expect("local reads lock").clear();
    }

    fn open(&self) -> Result<Connection> {
        // Reads only: a statement that would write fails instead.
        let conn = open(&self.path, "PRAGMA query_only = 1;")?;
        conn.busy_timeout(BUSY).map_err(storage)?;
        Ok(conn)
    }

    /// Runs `reads` in turn, several in one read transaction (one snapshot of the file), and
    /// returns each one's rows. One transaction, not one a statement: in WAL mode each read
    /// transaction takes and gives back a read mark (two `fcntl` calls and the log's index
    /// checked), and a page view makes about ten reads.
    pub(crate) fn fetch_each(
        &self,
        reads: impl IntoIterator<Item = Read>,
    ) -> Result<Vec<Vec<ReadRow>>> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(Error::Storage("the database is closing".into()));
        }
        let popped = self.idle.lock().expect("local reads lock").pop();
        let conn = match popped {
            Some(c) => c,
            None => self.open()?,
        };
        let reads: Vec<Read> = reads.into_iter().collect();
        let begun = if reads.len() > 1 {
            conn.prepare_cached("BEGIN")
                .and_then(|mut s| s.execute([]))
                .map(drop)
                .map_err(storage)
        } else {
            Ok(())
        };
        let out = begun.and_then(|()| {
            reads
                .into_iter()
                .map(|r| run(&conn, r))
                .collect::<Result<Vec<_>>>()
        });
        // A connection is kept only when its transaction is over (`is_autocommit`): the next
        // user must not read an old snapshot.
        let ended = conn.is_autocommit()
            || conn
                .prepare_cached("COMMIT")
                .and_then(|mut s| s.execute([]))
                .is_ok();
        let mut idle = self.idle.lock().expect("local reads lock");
        if ended && idle.len() < KEPT && !self.closed.load(Ordering::SeqCst) {
            idle.push(conn);
        }
        out
    }
}

/// One read: `$k` in the SQL is bound to the read's `k`-th argument, and an anonymous `?` (a
/// batch statement as [`crate::store::Db::batch_sql`] writes it) to the argument in its place.
pub(crate) fn run(conn: &Connection, read: Read) -> Result<Vec<ReadRow>> {
    let mut stmt = conn.prepare_cached(&read.sql).map_err(storage)?;
    for index in 1..=stmt.parameter_count() {
        let k = match stmt.parameter_name(index) {
            None => Some(index),
            Some(name) => name.strip_prefix('$').and_then(|k| k.parse::<usize>().ok()),
        };
        let k = k
            .filter(|k| (1..=read.args.len()).contains(k))
            .ok_or_else(|| {
                Error::Storage(format!("parameter {index} of a read has no argument"))
            })?;
        match &read.args[k - 1] {
            Arg::Text(v) => stmt.raw_bind_parameter(index, v.as_str()),
            Arg::Int(v) => stmt.raw_bind_parameter(index, *v),
            Arg::Null => stmt.raw_bind_parameter(index, rusqlite::types::Null),
        }
        .map_err(storage)?;
    }
    let columns = stmt.column_count();
    let mut rows = stmt.raw_query();
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(storage)? {
        let cells = (0..columns)
            .map(|i| {
                Ok(match row.get_ref(i).map_err(storage)? {
                    ValueRef::Null => Cell::Null,
                    ValueRef::Integer(v) => Cell::Int(v),
                    ValueRef::Real(v) => Cell::Real(v),
                    ValueRef::Text(t) => Cell::Text(
                        std::str::from_utf8(t)
                            .map_err(|e| Error::Storage(format!("text that is not UTF-8: {e}")))?
                            .to_owned(),
                    ),
                    ValueRef::Blob(b) => Cell::Blob(b.to_vec()),
                })
            })
            .collect::<Result<Box<[Cell]>>>()?;
        out.push(ReadRow::Local(cells));
    }
    Ok(out)
}
