//! How the shared SQL asks for rows, whatever connection answers: sqlx's SQLite and
//! PostgreSQL connections (PostgreSQL reads, and every read inside a write transaction) and
//! rusqlite's connection, which SQLite reads use. rusqlite runs a statement on the calling
//! thread; sqlx's SQLite driver hands every statement to the connection's own thread and
//! its rows back over channels, and those thread wake-ups cost more than the indexed
//! lookups they carry (measured in bench/README.md).
//!
//! Running on the calling thread means running on one of the runtime's workers, which is
//! fine for what the reads are: indexed lookups of microseconds, and at worst a deep
//! members page of about a millisecond. None waits for a lock: in WAL mode readers never
//! wait for the writer.

use std::cell::Cell;
use std::future::Future;

use rusqlite::StatementStatus;

use super::StoreError;

/// One row's columns by name, in the few types the tables hold.
pub(super) trait Cols {
    fn text(&self, name: &str) -> Result<String, StoreError>;
    fn maybe_text(&self, name: &str) -> Result<Option<String>, StoreError>;
    fn flag(&self, name: &str) -> Result<bool, StoreError>;
    fn maybe_flag(&self, name: &str) -> Result<Option<bool>, StoreError>;
    fn int(&self, name: &str) -> Result<i64, StoreError>;
}

/// Runs one statement whose parameters are `$1`, `$2`, ... (text, or NULL) and maps each
/// row it returns.
pub(super) trait Fetch: Send {
    fn rows<T: Send>(
        &mut self,
        sql: &str,
        args: &[Option<&str>],
        map: impl Fn(&dyn Cols) -> Result<T, StoreError> + Send,
    ) -> impl Future<Output = Result<Vec<T>, StoreError>> + Send;

    /// The first row, if any.
    fn row<T: Send>(
        &mut self,
        sql: &str,
        args: &[Option<&str>],
        map: impl Fn(&dyn Cols) -> Result<T, StoreError> + Send,
    ) -> impl Future<Output = Result<Option<T>, StoreError>> + Send;
}

/// `sql` with `args` bound to `$1`, `$2`, ... in order, for sqlx.
fn bound<DB: sqlx::Database>(
    sql: &str,
    args: &[Option<&str>],
) -> sqlx::query::Query<'static, DB, DB::Arguments>
where
    for<'a> Option<&'a str>: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let query = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()));
    args.iter().fold(query, |query, arg| query.bind(*arg))
}

macro_rules! sqlx_fetch {
    ($conn:ty, $row:ty) => {
        impl Cols for $row {
            fn text(&self, name: &str) -> Result<String, StoreError> {
                Ok(sqlx::Row::try_get(self, name)?)
            }
            fn maybe_text(&self, name: &str) -> Result<Option<String>, StoreError> {
                Ok(sqlx::Row::try_get(self, name)?)
            }
            fn flag(&self, name: &str) -> Result<bool, StoreError> {
                Ok(sqlx::Row::try_get(self, name)?)
            }
            fn maybe_flag(&self, name: &str) -> Result<Option<bool>, StoreError> {
                Ok(sqlx::Row::try_get(self, name)?)
            }
            fn int(&self, name: &str) -> Result<i64, StoreError> {
                Ok(sqlx::Row::try_get(self, name)?)
            }
        }

        impl Fetch for $conn {
            async fn rows<T: Send>(
                &mut self,
                sql: &str,
                args: &[Option<&str>],
                map: impl Fn(&dyn Cols) -> Result<T, StoreError> + Send,
            ) -> Result<Vec<T>, StoreError> {
                bound(sql, args)
                    .fetch_all(&mut *self)
                    .await?
                    .iter()
                    .map(|r| map(r))
                    .collect()
            }

            async fn row<T: Send>(
                &mut self,
                sql: &str,
                args: &[Option<&str>],
                map: impl Fn(&dyn Cols) -> Result<T, StoreError> + Send,
            ) -> Result<Option<T>, StoreError> {
                bound(sql, args)
                    .fetch_optional(&mut *self)
                    .await?
                    .as_ref()
                    .map(|r| map(r))
                    .transpose()
            }
        }
    };
}

sqlx_fetch!(sqlx::SqliteConnection, sqlx::sqlite::SqliteRow);
sqlx_fetch!(sqlx::PgConnection, sqlx::postgres::PgRow);

/// A statement's column names, copied once: rusqlite's own lookup by name asks SQLite for
/// each column's name (and checks its UTF-8) on every call, which was a tenth of a one-row
/// read, and copying them on every run was still a sixteenth of a request.
struct Names {
    text: String,
    ends: Vec<usize>,
    /// The statement's recompilation count when the names were copied: SQLite recompiles a
    /// statement after a schema change, and a `SELECT *`'s columns change with the table.
    /// (A statement prepared afresh after the statement cache dropped it counts from zero
    /// again, so that check alone would not do for `SELECT *`: the store's statements name
    /// every column, which makes their names a function of their text.)
    compiled: i32,
}

impl Names {
    fn of(statement: &rusqlite::Statement<'_>) -> Names {
        let mut names = Names {
            text: String::new(),
            ends: Vec::with_capacity(statement.column_count()),
            compiled: statement.get_status(StatementStatus::RePrepare),
        };
        for name in statement.column_names() {
            names.text.push_str(name);
            names.ends.push(names.text.len());
        }
        names
    }

    /// `name`'s column, looked for from `from` on and then from the start: row mappings
    /// ask for columns in about the order they are selected, so this is mostly one
    /// comparison where a scan from the start was a dozen.
    fn index(&self, name: &str, from: usize) -> Option<usize> {
        let start = |i: usize| if i == 0 { 0 } else { self.ends[i - 1] };
        let is = |i: usize| &self.text[start(i)..self.ends[i]] == name;
        (from..self.ends.len()).chain(0..from).find(|&i| is(i))
    }
}

/// Statements whose names a reader keeps; past it the kept names are dropped and copied
/// again (member filters by id or email make one statement per list length).
const NAMES_KEPT: usize = 64;

/// A read connection (rusqlite, see the module doc) and the column names of the statements
/// it has run.
pub(super) struct Reader {
    conn: rusqlite::Connection,
    // Keyed by statement text: SipHash over a few hundred bytes cost as much as copying
    // the names, foldhash a tenth of it.
    names: foldhash::HashMap<String, Names>,
    /// `PRAGMA data_version` when [`Reader::changed`] last asked.
    version: Option<i64>,
}

impl Reader {
    pub(super) fn new(conn: rusqlite::Connection) -> Reader {
        Reader {
            conn,
            names: foldhash::HashMap::default(),
            version: None,
        }
    }

    /// Whether any other connection, of this process or another, committed to the database
    /// since this connection last asked; on its first question, always yes.
    pub(super) fn changed(&mut self) -> Result<bool, StoreError> {
        let version = self
            .conn
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |row| row.get(0))?;
        Ok(self.version.replace(version) != Some(version))
    }
}

/// `statement`'s names, copied on its first row ever or after SQLite recompiled it (which
/// happens inside the step that produced the row).
fn names_of<'n>(
    kept: &'n mut foldhash::HashMap<String, Names>,
    sql: &str,
    statement: &rusqlite::Statement<'_>,
) -> &'n Names {
    let compiled = statement.get_status(StatementStatus::RePrepare);
    if !matches!(kept.get(sql), Some(n) if n.compiled == compiled) {
        if kept.len() >= NAMES_KEPT {
            kept.clear();
        }
        kept.insert(sql.to_owned(), Names::of(statement));
    }
    &kept[sql]
}

/// A rusqlite row whose columns are found through [`Names`].
struct Named<'r, 's> {
    row: &'r rusqlite::Row<'s>,
    names: &'r Names,
    /// Where the next lookup starts: after the column found last.
    next: Cell<usize>,
}

impl<'r, 's> Named<'r, 's> {
    fn new(row: &'r rusqlite::Row<'s>, names: &'r Names) -> Self {
        Named {
            row,
            names,
            next: Cell::new(0),
        }
    }

    fn get<T: rusqlite::types::FromSql>(&self, name: &str) -> Result<T, StoreError> {
        let index = self
            .names
            .index(name, self.next.get())
            .ok_or_else(|| rusqlite::Error::InvalidColumnName(name.to_string()))?;
        self.next.set(index + 1);
        Ok(self.row.get(index)?)
    }
}

impl Cols for Named<'_, '_> {
    fn text(&self, name: &str) -> Result<String, StoreError> {
        self.get(name)
    }
    fn maybe_text(&self, name: &str) -> Result<Option<String>, StoreError> {
        self.get(name)
    }
    fn flag(&self, name: &str) -> Result<bool, StoreError> {
        self.get(name)
    }
    fn maybe_flag(&self, name: &str) -> Result<Option<bool>, StoreError> {
        self.get(name)
    }
    fn int(&self, name: &str) -> Result<i64, StoreError> {
        self.get(name)
    }
}

/// Runs `sql` to the end (or to its first row when `first`), mapping each row.
fn run<T>(
    reader: &mut Reader,
    sql: &str,
    args: &[Option<&str>],
    first: bool,
    map: impl Fn(&dyn Cols) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let Reader { conn, names, .. } = reader;
    let mut statement = conn.prepare_cached(sql)?;
    // SQLite numbers `$n` parameters in order of first appearance, not by n: bind by name.
    for index in 1..=statement.parameter_count() {
        let name = statement.parameter_name(index).unwrap_or_default();
        let arg = name
            .strip_prefix('$')
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|n| args.get(n.checked_sub(1)?))
            .ok_or_else(|| rusqlite::Error::InvalidParameterName(format!("{name} in {sql}")))?;
        statement.raw_bind_parameter(index, arg)?;
    }
    let mut rows = statement.raw_query();
    let Some(row) = rows.next()? else {
        return Ok(Vec::new());
    };
    let names = names_of(names, sql, row.as_ref());
    let mut out = vec![map(&Named::new(row, names))?];
    while !first && let Some(row) = rows.next()? {
        out.push(map(&Named::new(row, names))?);
    }
    Ok(out)
}

impl Fetch for Reader {
    fn rows<T: Send>(
        &mut self,
        sql: &str,
        args: &[Option<&str>],
        map: impl Fn(&dyn Cols) -> Result<T, StoreError> + Send,
    ) -> impl Future<Output = Result<Vec<T>, StoreError>> + Send {
        std::future::ready(run(self, sql, args, false, map))
    }

    fn row<T: Send>(
        &mut self,
        sql: &str,
        args: &[Option<&str>],
        map: impl Fn(&dyn Cols) -> Result<T, StoreError> + Send,
    ) -> impl Future<Output = Result<Option<T>, StoreError>> + Send {
        std::future::ready(run(self, sql, args, true, map).map(|rows| rows.into_iter().next()))
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::StatementStatus;

    use super::{Reader, run};

    #[test]
    fn parameters_bind_by_their_number_not_their_place() {
        let mut reader = Reader::new(rusqlite::Connection::open_in_memory().unwrap());
        let sql = "SELECT $2 AS b, $1 AS a, $2 IS NULL AS none";
        let mut row = |args: &[Option<&str>]| {
            run(&mut reader, sql, args, true, |r| {
                Ok((r.maybe_text("a")?, r.maybe_text("b")?, r.flag("none")?))
            })
            .unwrap()
        };
        assert_eq!(
            row(&[Some("x"), Some("y")]),
            [(Some("x".into()), Some("y".into()), false)]
        );
        assert_eq!(row(&[Some("x"), None]), [(Some("x".into()), None, true)]);
        let missing = run(&mut reader, sql, &[Some("x")], true, |r| r.text("a"));
        assert!(
            missing.is_err(),
            "a parameter without an argument is refused"
        );
    }

    /// The bundled SQLite is built as .cargo/config.toml says, whoever builds it.
    #[test]
    fn sqlite_is_built_without_what_slows_reads() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let mut statement = conn.prepare("PRAGMA compile_options").unwrap();
        let options: Vec<String> = statement
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
            "{options:?}"
        );
        for left_out in ["ENABLE_STAT4", "ENABLE_MEMORY_MANAGEMENT"] {
            assert!(
                !options.iter().any(|o| o == left_out),
                "{left_out}: {options:?}"
            );
        }
    }

    /// The build leaves out STAT4 (.cargo/config.toml): with it, a statement on an
    /// analyzed index is compiled again for every new value bound, which tripled the cost
    /// of a one-row read.
    #[test]
    fn a_statement_runs_again_without_being_compiled_again() {
        let mut reader = Reader::new(rusqlite::Connection::open_in_memory().unwrap());
        reader
            .conn
            .execute_batch(
                "CREATE TABLE m (id TEXT PRIMARY KEY, email TEXT NOT NULL);
             CREATE INDEX m_email ON m (email);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
             INSERT INTO m SELECT 'id' || i, 'user' || (i % 50) FROM n;
             ANALYZE;",
            )
            .unwrap();
        for email in ["user1", "user2", "user3"] {
            let found = run(
                &mut reader,
                "SELECT id FROM m WHERE email = $1",
                &[Some(email)],
                false,
                |r| r.text("id"),
            )
            .unwrap();
            assert_eq!(found.len(), 40);
        }
        let statement = reader
            .conn
            .prepare_cached("SELECT id FROM m WHERE email = $1")
            .unwrap();
        assert_eq!(statement.get_status(StatementStatus::RePrepare), 0);
    }

    /// Column names are copied once per statement; a statement SQLite compiles again after
    /// a schema change gets them copied again.
    #[test]
    fn columns_are_found_by_name_after_the_schema_changes() {
        let mut reader = Reader::new(rusqlite::Connection::open_in_memory().unwrap());
        let read = |reader: &mut Reader| {
            run(reader, "SELECT * FROM t", &[], true, |r| {
                Ok((r.text("a")?, r.text("b")?))
            })
            .unwrap()
        };
        let setup = "CREATE TABLE t (a TEXT, b TEXT); INSERT INTO t VALUES ('1', '2');";
        reader.conn.execute_batch(setup).unwrap();
        assert_eq!(read(&mut reader), [("1".to_string(), "2".to_string())]);
        let reordered =
            "DROP TABLE t; CREATE TABLE t (b TEXT, a TEXT); INSERT INTO t VALUES ('2', '1');";
        reader.conn.execute_batch(reordered).unwrap();
        assert_eq!(read(&mut reader), [("1".to_string(), "2".to_string())]);
    }

    /// A reader learns of a commit made through any other connection to the file.
    #[test]
    fn a_reader_is_told_of_commits_made_elsewhere() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let writer = rusqlite::Connection::open(&path).unwrap();
        writer.execute_batch("CREATE TABLE t (a TEXT)").unwrap();
        let mut reader = Reader::new(rusqlite::Connection::open(&path).unwrap());
        assert!(
            reader.changed().unwrap(),
            "the first question is always yes"
        );
        assert!(!reader.changed().unwrap());
        writer.execute("INSERT INTO t VALUES ('1')", []).unwrap();
        assert!(reader.changed().unwrap());
        assert!(!reader.changed().unwrap());
    }
}
