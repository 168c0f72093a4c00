//! Several reads in one hand-off. sqlx runs each SQLite connection on a thread of its own,
//! and every statement is a trip to that thread and back: two thread wake-ups or more, which
//! for the signed-in home page's short indexed reads cost more than SQLite's own work (a
//! quarter of the web server's time under load went to switching threads). So reads that need
//! no transaction go through a [`Reader`]: on SQLite it runs them on the caller's own thread
//! ([`LocalReads`]); elsewhere a batch goes on one connection, and on a sqlx SQLite connection
//! (inside a write transaction) as one string of statements: sqlx's driver runs them in turn
//! on its thread, binds `$n` by number across the whole string, and ends each statement's rows
//! with its result, which is where the rows are split. PostgreSQL takes one statement at a
//! time with arguments, and every statement is a round trip to the server: there the reads
//! that return at most one row ([`Read::at_most_one`]) go as one statement, each joined to a
//! row of its own ([`merged`]), and the others run one after the other on the same connection.
use std::borrow::Cow;
use std::ops::Deref;
use std::sync::Arc;

use futures::TryStreamExt;
use sqlx::any::AnyRow;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, Either, Executor};

use crate::error::{Error, Result};
use crate::store::local_reads::LocalReads;

/// An argument of a [`Read`].
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Arg {
    Text(String),
    Int(i64),
    Null,
}

/// A statement's text: written in the source, made for the occasion, or one of the batch
/// statements [`crate::store::Db::batch_statement`] keeps (shared, not copied: they run to
/// kilobytes, and the SMS gateway runs them by the thousand a second).
#[derive(Clone, Debug)]
pub(crate) enum Sql {
    Static(&'static str),
    Owned(String),
    Shared(Arc<str>),
}

impl Deref for Sql {
    type Target = str;
    fn deref(&self) -> &str {
        match self {
            Sql::Static(s) => s,
            Sql::Owned(s) => s,
            Sql::Shared(s) => s,
        }
    }
}

impl From<&'static str> for Sql {
    fn from(s: &'static str) -> Sql {
        Sql::Static(s)
    }
}

impl From<String> for Sql {
    fn from(s: String) -> Sql {
        Sql::Owned(s)
    }
}

impl From<Arc<str>> for Sql {
    fn from(s: Arc<str>) -> Sql {
        Sql::Shared(s)
    }
}

impl From<Cow<'static, str>> for Sql {
    fn from(s: Cow<'static, str>) -> Sql {
        match s {
            Cow::Borrowed(s) => Sql::Static(s),
            Cow::Owned(s) => Sql::Owned(s),
        }
    }
}

/// One read — or, in a write transaction ([`crate::store::WriteTx`]), any statement: its
/// text with `$1 … $n` (or a batch statement's `?`) and its arguments.
#[derive(Clone, Debug)]
pub(crate) struct Read {
    pub(crate) sql: Sql,
    pub(crate) args: Vec<Arg>,
    /// Returns at most one row (a key's row, an aggregate): see [`Read::at_most_one`].
    one: bool,
}

impl Read {
    pub(crate) fn new(sql: impl Into<Sql>) -> Read {
        Read {
            sql: sql.into(),
            args: Vec::new(),
            one: false,
        }
    }

    /// With room for `n` arguments (a batch statement's many).
    pub(crate) fn with_capacity(sql: impl Into<Sql>, n: usize) -> Read {
        Read {
            sql: sql.into(),
            args: Vec::with_capacity(n),
            one: false,
        }
    }

    /// This read returns at most one row (it reads by a key, or aggregates): on PostgreSQL the
    /// reads of a batch marked so go as one statement ([`merged`]). One that returns more
    /// makes the batch fail there, not its rows multiply.
    pub(crate) fn at_most_one(mut self) -> Read {
        self.one = true;
        self
    }

    pub(crate) fn opt_int(mut self, v: Option<i64>) -> Read {
        self.args.push(v.map_or(Arg::Null, Arg::Int));
        self
    }

    pub(crate) fn text(mut self, v: impl Into<String>) -> Read {
        self.args.push(Arg::Text(v.into()));
        self
    }

    pub(crate) fn int(mut self, v: i64) -> Read {
        self.args.push(Arg::Int(v));
        self
    }

    /// This statement on a sqlx connection: the count of rows it changed.
    pub(crate) async fn execute(self, conn: &mut AnyConnection) -> Result<u64> {
        Ok(bind(sqlx::query(&self.sql), self.args)
            .execute(conn)
            .await?
            .rows_affected())
    }

    /// This read on its own, on a sqlx connection (a transaction's, say).
    pub(crate) async fn fetch(self, conn: &mut AnyConnection) -> Result<Vec<ReadRow>> {
        Ok(bind(sqlx::query(&self.sql), self.args)
            .fetch_all(conn)
            .await?
            .into_iter()
            .map(ReadRow::Any)
            .collect())
    }
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

fn bind(mut q: AnyQuery<'_>, args: Vec<Arg>) -> AnyQuery<'_> {
    for a in args {
        q = match a {
            Arg::Text(v) => q.bind(v),
            Arg::Int(v) => q.bind(v),
            Arg::Null => q.bind(None::<i64>),
        };
    }
    q
}

/// What sqlx's Any driver calls SQLite (its `Database::NAME`).
const SQLITE: &str = "SQLite";

/// A value as SQLite stores it, read by [`LocalReads`].
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Cell {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// A row read by sqlx, or on the caller's thread by [`LocalReads`]; read by column number
/// with the types the hall's columns have.
pub(crate) enum ReadRow {
    Any(AnyRow),
    Local(Box<[Cell]>),
    /// The columns `start..start + len` of a row several reads share ([`merged`]).
    Part {
        row: Arc<ReadRow>,
        start: usize,
        len: usize,
    },
}

/// A type a column is read as, from either kind of [`ReadRow`].
pub(crate) trait FromCell: Sized + sqlx::Type<Any> + for<'r> sqlx::Decode<'r, Any> {
    fn from_cell(cell: &Cell) -> Option<Self>;
}

impl FromCell for i64 {
    fn from_cell(cell: &Cell) -> Option<Self> {
        match cell {
            Cell::Int(v) => Some(*v),
            _ => None,
        }
    }
}

impl FromCell for String {
    fn from_cell(cell: &Cell) -> Option<Self> {
        match cell {
            Cell::Text(v) => Some(v.clone()),
            _ => None,
        }
    }
}

impl<T: FromCell> FromCell for Option<T>
where
    Option<T>: sqlx::Type<Any> + for<'r> sqlx::Decode<'r, Any>,
{
    fn from_cell(cell: &Cell) -> Option<Self> {
        match cell {
            Cell::Null => Some(None),
            other => T::from_cell(other).map(Some),
        }
    }
}

/// A column's number (as sqlx's `try_get` takes it, so that `try_get(0)` reads the same).
pub(crate) trait ColumnNumber {
    fn number(self) -> usize;
}

impl ColumnNumber for usize {
    fn number(self) -> usize {
        self
    }
}

impl ReadRow {
    /// Column `i` as a `T`; an error when there is no such column or its value is not a `T`.
    pub(crate) fn try_get<T: FromCell, I: ColumnNumber>(&self, i: I) -> Result<T> {
        let i = i.number();
        match self {
            ReadRow::Any(row) => Ok(sqlx::Row::try_get(row, i)?),
            ReadRow::Part { row, start, len } => {
                if i >= *len {
                    return Err(Error::Storage(format!("no column {i} in the row read")));
                }
                row.try_get(start + i)
            }
            ReadRow::Local(cells) => {
                let cell = cells
                    .get(i)
                    .ok_or_else(|| Error::Storage(format!("no column {i} in the row read")))?;
                T::from_cell(cell).ok_or_else(|| {
                    Error::Storage(format!(
                        "column {i} holds {cell:?}, not a {}",
                        std::any::type_name::<T>()
                    ))
                })
            }
        }
    }
}

/// The rows of each read of a batch, in the order the reads were given.
pub(crate) struct Rows(std::vec::IntoIter<Vec<ReadRow>>);

impl Rows {
    /// The next read's rows.
    pub(crate) fn next(&mut self) -> Vec<ReadRow> {
        self.0.next().expect("asked for more results than reads")
    }
}

/// Where reads that need no transaction run: on SQLite on the caller's thread, else on a
/// connection of the pool; or on a connection the caller holds (a write transaction's).
pub(crate) enum Reader<'c> {
    Local(&'c LocalReads),
    Pooled(PoolConnection<Any>),
    Conn(&'c mut AnyConnection),
}

impl Reader<'_> {
    /// Runs `reads` and returns each one's rows, as [`fetch_each`] does.
    pub(crate) async fn fetch_each(
        &mut self,
        reads: impl IntoIterator<Item = Read>,
    ) -> Result<Rows> {
        match self {
            Reader::Local(local) => Ok(Rows(local.fetch_each(reads)?.into_iter())),
            Reader::Pooled(conn) => fetch_each(conn, reads).await,
            Reader::Conn(conn) => fetch_each(conn, reads).await,
        }
    }

    /// One read's rows.
    pub(crate) async fn fetch(&mut self, read: Read) -> Result<Vec<ReadRow>> {
        Ok(self.fetch_each([read]).await?.next())
    }
}

/// Runs `reads` on `conn` (one hand-off on SQLite; on PostgreSQL one round trip for the reads
/// of at most one row, and one for each other read) and returns each one's rows. The reads
/// see the database as plain statements would, in any order: each its own snapshot, or
/// several one (no caller may depend on either).
pub(crate) async fn fetch_each(
    conn: &mut AnyConnection,
    reads: impl IntoIterator<Item = Read>,
) -> Result<Rows> {
    let reads: Vec<Read> = reads.into_iter().collect();
    if conn.backend_name() != SQLITE {
        return fetch_on_server(conn, reads).await;
    }
    if reads.len() < 2 {
        let mut out = Vec::with_capacity(reads.len());
        for r in reads {
            out.push(r.fetch(conn).await?);
        }
        return Ok(Rows(out.into_iter()));
    }
    let n = reads.len();
    let (sql, args) = joined(reads);
    let mut out: Vec<Vec<ReadRow>> = Vec::with_capacity(n);
    let mut current = Vec::new();
    let mut stream = (&mut *conn).fetch_many(bind(sqlx::query(&sql), args));
    while let Some(item) = stream.try_next().await? {
        match item {
            Either::Right(row) => current.push(ReadRow::Any(row)),
            Either::Left(_) => out.push(std::mem::take(&mut current)),
        }
    }
    if out.len() != n {
        return Err(Error::Storage(format!(
            "a batch of {n} reads returned {} results",
            out.len()
        )));
    }
    Ok(Rows(out.into_iter()))
}

/// The reads on a database server: those of at most one row as one statement ([`merged`]),
/// when there are two or more of them, then the others one by one.
async fn fetch_on_server(conn: &mut AnyConnection, reads: Vec<Read>) -> Result<Rows> {
    let merge = reads.iter().filter(|r| r.one).count() > 1;
    let mut out: Vec<Option<Vec<ReadRow>>> = Vec::with_capacity(reads.len());
    let (mut ones, mut places, mut others) = (Vec::new(), Vec::new(), Vec::new());
    for (i, r) in reads.into_iter().enumerate() {
        out.push(None);
        if merge && r.one {
            ones.push(r);
            places.push(i);
        } else {
            others.push((i, r));
        }
    }
    if !ones.is_empty() {
        for (i, rows) in places.into_iter().zip(fetch_merged(conn, ones).await?) {
            out[i] = Some(rows);
        }
    }
    for (i, r) in others {
        out[i] = Some(r.fetch(conn).await?);
    }
    let out: Vec<Vec<ReadRow>> = out
        .into_iter()
        .map(|rows| rows.expect("every read was run"))
        .collect();
    Ok(Rows(out.into_iter()))
}

/// The name of the column that starts read `i`'s columns in [`merged`] (1 when the read
/// returned its row, NULL when it returned none).
const MARK: &str = "openhall_read_";

/// Reads of at most one row as one statement: one row, each read's columns after a mark of
/// its own, left-joined so that a read with no row leaves its mark NULL.
fn merged(reads: Vec<Read>) -> Read {
    use std::fmt::Write;
    let mut select = String::from("SELECT ");
    let mut from = String::from(" FROM (SELECT 1) AS openhall_one");
    let mut args = Vec::new();
    for (i, r) in reads.into_iter().enumerate() {
        if i > 0 {
            select.push_str(", ");
        }
        let sql = renumbered(r.sql.trim().trim_end_matches(';'), args.len());
        let _ = write!(select, "r{i}.*");
        let _ = write!(
            from,
            " LEFT JOIN (SELECT CAST(1 AS BIGINT) AS {MARK}{i}, q.* FROM ({sql}) AS q) AS r{i} ON true"
        );
        args.extend(r.args);
    }
    select.push_str(&from);
    Read {
        sql: Sql::Owned(select),
        args,
        one: true,
    }
}

/// Runs [`merged`] reads and returns each one's rows (none or one).
async fn fetch_merged(conn: &mut AnyConnection, reads: Vec<Read>) -> Result<Vec<Vec<ReadRow>>> {
    let n = reads.len();
    let mut rows = merged(reads).fetch(conn).await?;
    let row = match (rows.pop(), rows.is_empty()) {
        (Some(row), true) => Arc::new(row),
        _ => {
            return Err(Error::Storage(
                "a read of at most one row returned more".into(),
            ))
        }
    };
    let ReadRow::Any(any) = &*row else {
        return Err(Error::Storage(
            "a read through sqlx returned another kind of row".into(),
        ));
    };
    let columns = sqlx::Row::columns(any);
    let marks: Vec<usize> = (0..columns.len())
        .filter(|&i| sqlx::Column::name(&columns[i]).starts_with(MARK))
        .collect();
    if marks.len() != n {
        return Err(Error::Storage(format!(
            "{n} reads in one statement returned {} marks",
            marks.len()
        )));
    }
    let mut out = Vec::with_capacity(n);
    for (k, &mark) in marks.iter().enumerate() {
        let end = marks.get(k + 1).copied().unwrap_or(columns.len());
        let present = row.try_get::<Option<i64>, _>(mark)?.is_some();
        out.push(if present {
            vec![ReadRow::Part {
                row: row.clone(),
                start: mark + 1,
                len: end - mark - 1,
            }]
        } else {
            Vec::new()
        });
    }
    Ok(out)
}

/// The reads as one string of statements, each one's `$k` moved past the arguments of the
/// reads before it, and all their arguments in order.
fn joined(reads: Vec<Read>) -> (String, Vec<Arg>) {
    let mut sql = String::new();
    let mut args = Vec::new();
    for r in reads {
        if !sql.is_empty() {
            sql.push_str(";\n");
        }
        sql.push_str(&renumbered(r.sql.trim().trim_end_matches(';'), args.len()));
        args.extend(r.args);
    }
    (sql, args)
}

/// `sql` with every parameter `$k` written `$(k + offset)` (a `$` followed by digits is a
/// parameter: the hall's SQL has no dollar-quoted text).
fn renumbered(sql: &str, offset: usize) -> String {
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len() + 8);
    let (mut copied, mut i) = (0, 0);
    while i < bytes.len() {
        let digits = if bytes[i] == b'$' {
            bytes[i + 1..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count()
        } else {
            0
        };
        if digits == 0 {
            i += 1;
            continue;
        }
        let k: usize = sql[i + 1..i + 1 + digits].parse().unwrap_or(0);
        out.push_str(&sql[copied..i]);
        out.push('$');
        out.push_str(&(k + offset).to_string());
        i += 1 + digits;
        copied = i;
    }
    out.push_str(&sql[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use sqlx::Row;

    use super::*;
    use crate::store::db::scratch_sqlite;

    #[test]
    fn later_reads_number_their_parameters_after_the_earlier_ones() {
        assert_eq!(
            renumbered("WHERE a = $1 OR b = $1 AND c > $2", 3),
            "WHERE a = $4 OR b = $4 AND c > $5"
        );
        assert_eq!(renumbered("SELECT '$', $10", 0), "SELECT '$', $10");
        let (sql, args) = joined(vec![
            Read::new("SELECT $1;").text("a"),
            Read::new("SELECT 1"),
            Read::new("SELECT $2, $1").int(7).text("b"),
        ]);
        assert_eq!(sql, "SELECT $1;\nSELECT 1;\nSELECT $3, $2");
        assert_eq!(
            args,
            vec![Arg::Text("a".into()), Arg::Int(7), Arg::Text("b".into())]
        );
    }

    /// Reads of at most one row in one statement return what each returns on its own, rows
    /// or none, on the database the tests are configured for (PostgreSQL under
    /// `bin/test --production`, where batches take this path; SQLite otherwise).
    #[tokio::test]
    async fn reads_of_one_row_merged_return_what_each_returns_alone() {
        let (db, _guard) = crate::testing::fresh_db().await;
        let mut conn = db.pool().acquire().await.unwrap();
        sqlx::query("CREATE TABLE t (k TEXT, v BIGINT, w TEXT)")
            .execute(&mut *conn)
            .await
            .unwrap();
        for (k, v, w) in [("a", 1, Some("x")), ("a", 2, None), ("b", 3, Some("y"))] {
            sqlx::query("INSERT INTO t VALUES ($1, $2, $3)")
                .bind(k)
                .bind(v)
                .bind(w)
                .execute(&mut *conn)
                .await
                .unwrap();
        }
        let reads = || {
            vec![
                Read::new("SELECT v, w FROM t WHERE k = $1 AND v = $2")
                    .text("a")
                    .int(2)
                    .at_most_one(),
                Read::new("SELECT w FROM t WHERE k = $1")
                    .text("none")
                    .at_most_one(),
                Read::new("SELECT v FROM t WHERE k = $1 ORDER BY v").text("a"),
                Read::new(
                    "SELECT COUNT(*), CAST(COALESCE(SUM(v), 0) AS BIGINT) FROM t WHERE v > $1",
                )
                .int(1)
                .at_most_one(),
                Read::new("SELECT w, k FROM t WHERE v = $1;")
                    .int(3)
                    .at_most_one(),
            ]
        };
        let check = |mut rows: Rows, what: &str| {
            let r = rows.next();
            assert_eq!(r.len(), 1, "{what}");
            assert_eq!(r[0].try_get::<i64, _>(0).unwrap(), 2);
            assert_eq!(r[0].try_get::<Option<String>, _>(1).unwrap(), None);
            // Not the next read's columns: this read has two.
            assert!(r[0].try_get::<i64, _>(2).is_err(), "{what}");
            assert!(rows.next().is_empty(), "{what}");
            let many: Vec<i64> = rows.next().iter().map(|r| r.try_get(0).unwrap()).collect();
            assert_eq!(many, vec![1, 2], "{what}");
            let r = rows.next();
            assert_eq!(r[0].try_get::<i64, _>(0).unwrap(), 2, "{what}");
            assert_eq!(r[0].try_get::<i64, _>(1).unwrap(), 5, "{what}");
            let r = rows.next();
            assert_eq!(r[0].try_get::<String, _>(0).unwrap(), "y", "{what}");
            assert_eq!(r[0].try_get::<String, _>(1).unwrap(), "b", "{what}");
        };
        let alone = {
            let mut v = Vec::new();
            for r in reads() {
                v.push(r.fetch(&mut conn).await.unwrap());
            }
            Rows(v.into_iter())
        };
        check(alone, "each alone");
        check(fetch_each(&mut conn, reads()).await.unwrap(), "a batch");
        check(db.read_each(reads()).await.unwrap(), "through the reader");
        let ones: Vec<Read> = reads().into_iter().filter(|r| r.one).collect();
        let merged_rows = fetch_merged(&mut conn, ones).await.unwrap();
        assert_eq!(
            merged_rows.iter().map(Vec::len).collect::<Vec<_>>(),
            [1, 0, 1, 1]
        );

        // A read that said one row and found two fails, rather than multiply the others.
        let two = vec![
            Read::new("SELECT v FROM t WHERE k = $1")
                .text("a")
                .at_most_one(),
            Read::new("SELECT v FROM t WHERE k = $1")
                .text("b")
                .at_most_one(),
        ];
        assert!(fetch_merged(&mut conn, two).await.is_err());
    }

    /// What one batch returns is what each read returns on its own, and what the same reads
    /// return on this thread, including reads with no rows, on a real database (SQLite here;
    /// the PostgreSQL path runs them one by one).
    #[tokio::test]
    async fn a_batch_returns_each_reads_rows_as_it_would_alone() {
        let (_dir, db) = scratch_sqlite().await;
        let mut conn = db.pool().acquire().await.unwrap();
        // Else fetch_each would quietly run the reads one by one.
        assert_eq!(conn.backend_name(), SQLITE);
        sqlx::query("CREATE TABLE t (k TEXT, v BIGINT)")
            .execute(&mut *conn)
            .await
            .unwrap();
        for (k, v) in [("a", 1), ("a", 2), ("b", 3)] {
            sqlx::query("INSERT INTO t VALUES ($1, $2)")
                .bind(k)
                .bind(v)
                .execute(&mut *conn)
                .await
                .unwrap();
        }
        let reads = || {
            vec![
                Read::new("SELECT v FROM t WHERE k = $1 ORDER BY v").text("a"),
                Read::new("SELECT v FROM t WHERE k = $1").text("none"),
                Read::new("SELECT k, v FROM t WHERE v > $2 AND k = $1")
                    .text("b")
                    .int(1),
                Read::new("SELECT COUNT(*) FROM t"),
            ]
        };
        let values = |rows: &[ReadRow], col: usize| -> Vec<i64> {
            rows.iter().map(|r| r.try_get(col).unwrap()).collect()
        };
        let batch = fetch_each(&mut conn, reads()).await.unwrap();
        let alone = {
            let mut v = Vec::new();
            for r in reads() {
                v.push(r.fetch(&mut conn).await.unwrap());
            }
            Rows(v.into_iter())
        };
        // The same reads on this thread, outside sqlx.
        let mut local = db.reader().await.unwrap();
        assert!(matches!(local, Reader::Local(_)));
        let here = local.fetch_each(reads()).await.unwrap();
        for mut each in [batch, alone, here] {
            assert_eq!(values(&each.next(), 0), vec![1, 2]);
            assert!(each.next().is_empty());
            let b = each.next();
            assert_eq!(b.len(), 1);
            assert_eq!(b[0].try_get::<String, _>(0).unwrap(), "b");
            assert_eq!(values(&b, 1), vec![3]);
            assert_eq!(values(&each.next(), 0), vec![3]);
        }

        // What sqlx's writer commits, the next read here sees.
        sqlx::query("INSERT INTO t VALUES ('a', NULL)")
            .execute(&mut *conn)
            .await
            .unwrap();
        let rows = local
            .fetch(Read::new("SELECT v, k FROM t WHERE k = $1 ORDER BY v").text("a"))
            .await
            .unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].try_get::<Option<i64>, _>(0).unwrap(), None);
        assert_eq!(rows[1].try_get::<Option<i64>, _>(0).unwrap(), Some(1));
        // A batch statement's anonymous `?` (`Db::batch_sql`) are bound in their order.
        let by_place = local
            .fetch(
                Read::new("SELECT k FROM t WHERE v > ? AND k = ?")
                    .int(2)
                    .text("b"),
            )
            .await
            .unwrap();
        assert_eq!(by_place.len(), 1);
        assert_eq!(by_place[0].try_get::<String, _>(0).unwrap(), "b");
        // A column read as the wrong type, or one past the end, is an error, not a panic.
        assert!(rows[1].try_get::<String, _>(0).is_err());
        assert!(rows[1].try_get::<i64, _>(2).is_err());
        // Reads only: a statement that writes is refused there.
        assert!(local
            .fetch(Read::new("DELETE FROM t RETURNING k"))
            .await
            .is_err());
        drop(local);
        let count = sqlx::query("SELECT COUNT(*) FROM t")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(count.try_get::<i64, _>(0).unwrap(), 4);

        // A failing read fails the batch, either way.
        let bad = || vec![Read::new("SELECT 1"), Read::new("SELECT nope FROM t")];
        assert!(fetch_each(&mut conn, bad()).await.is_err());
        assert!(db.reader().await.unwrap().fetch_each(bad()).await.is_err());

        // The local reads of a batch share one read transaction, over when the batch is, even
        // a failed one: the connection given back does not keep an old snapshot.
        let count = || Read::new("SELECT COUNT(*) FROM t");
        let counted = |mut rows: Rows| -> i64 { rows.next()[0].try_get(0).unwrap() };
        let mut local = db.reader().await.unwrap();
        assert_eq!(
            counted(local.fetch_each([count(), count()]).await.unwrap()),
            4
        );
        let bad_after_a_read = [count(), Read::new("SELECT nope FROM t")];
        assert!(local.fetch_each(bad_after_a_read).await.is_err());
        drop(local);
        sqlx::query("INSERT INTO t VALUES ('c', 5)")
            .execute(&mut *conn)
            .await
            .unwrap();
        let mut local = db.reader().await.unwrap();
        assert_eq!(
            counted(local.fetch_each([count(), count()]).await.unwrap()),
            5
        );
        assert_eq!(counted(local.fetch_each([count()]).await.unwrap()), 5);
    }
}
