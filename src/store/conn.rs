//! How the store's SQL runs, whatever the backend: [`Conn`] runs one statement whose
//! parameters are `$1`, `$2`, ... and maps each row by column name. One driver per backend:
//! rusqlite for SQLite ([`Lite`]), sqlx for PostgreSQL.
//!
//! rusqlite runs a statement on the calling thread, one of the runtime's workers. sqlx's
//! SQLite driver handed every statement to the connection's own thread and its rows back
//! over channels, and those wake-ups cost more than the indexed lookups and small writes
//! they carried (bench/README.md history). Running on the calling thread is fine for what
//! runs here: indexed lookups and small writes of microseconds, a deep members page of
//! about a millisecond. Readers never wait for the writer in WAL mode, and the writer never
//! sleeps on a worker waiting for another process's lock (see `sqlite/mod.rs`).

use std::cell::Cell;
use std::future::Future;

use rusqlite::StatementStatus;
use rusqlite::types::{ToSqlOutput, Value};

use super::StoreError;

/// A statement's parameter: text or a flag, either of which may be NULL, or a number (the
/// amounts a write adds to an account's member counts).
#[derive(Debug, Clone, Copy)]
pub enum Arg<'a> {
    Text(Option<&'a str>),
    Flag(Option<bool>),
    Int(i64),
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(v: &'a str) -> Self {
        Arg::Text(Some(v))
    }
}

impl<'a> From<&'a String> for Arg<'a> {
    fn from(v: &'a String) -> Self {
        Arg::Text(Some(v))
    }
}

impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Arg::Text(v)
    }
}

impl<'a> From<&'a Option<String>> for Arg<'a> {
    fn from(v: &'a Option<String>) -> Self {
        Arg::Text(v.as_deref())
    }
}

impl From<bool> for Arg<'_> {
    fn from(v: bool) -> Self {
        Arg::Flag(Some(v))
    }
}

impl From<Option<bool>> for Arg<'_> {
    fn from(v: Option<bool>) -> Self {
        Arg::Flag(v)
    }
}

impl rusqlite::ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match *self {
            Arg::Text(Some(v)) => ToSqlOutput::from(v),
            Arg::Flag(Some(v)) => ToSqlOutput::from(v),
            Arg::Int(v) => ToSqlOutput::from(v),
            Arg::Text(None) | Arg::Flag(None) => ToSqlOutput::Owned(Value::Null),
        })
    }
}

/// One row's columns by name, in the few types the tables hold.
pub trait Cols {
    fn text(&self, name: &str) -> Result<String, StoreError>;
    fn maybe_text(&self, name: &str) -> Result<Option<String>, StoreError>;
    fn flag(&self, name: &str) -> Result<bool, StoreError>;
    fn maybe_flag(&self, name: &str) -> Result<Option<bool>, StoreError>;
    fn int(&self, name: &str) -> Result<i64, StoreError>;
    /// Text, a flag or NULL as JSON, for a column whose type the caller does not know
    /// (`sql::Table`): SQLite stores flags as integers, and no such column holds a number.
    fn value(&self, name: &str) -> Result<serde_json::Value, StoreError>;
}

/// A connection that runs one statement at a time.
pub trait Conn: Send {
    /// Every row `sql` returns, each through `map`.
    fn rows<T: Send>(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
        map: impl Fn(&dyn Cols) -> Result<T, StoreError> + Send,
    ) -> impl Future<Output = Result<Vec<T>, StoreError>> + Send;

    /// The first row, if any.
    fn row<T: Send>(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
        map: impl Fn(&dyn Cols) -> Result<T, StoreError> + Send,
    ) -> impl Future<Output = Result<Option<T>, StoreError>> + Send;

    /// Runs a statement that returns no rows; how many rows it changed.
    fn execute(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

/// `sql` with `args` bound to `$1`, `$2`, ... in order, for sqlx.
fn bound(
    sql: &str,
    args: &[Arg<'_>],
) -> sqlx::query::Query<'static, sqlx::Postgres, sqlx::postgres::PgArguments> {
    let query = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .persistent(!super::postgres::unnamed_statements());
    args.iter().fold(query, |query, arg| match *arg {
        Arg::Text(v) => query.bind(v),
        Arg::Flag(v) => query.bind(v),
        Arg::Int(v) => query.bind(v),
    })
}

impl Cols for sqlx::postgres::PgRow {
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
    fn value(&self, name: &str) -> Result<serde_json::Value, StoreError> {
        Ok(match self.maybe_text(name) {
            Ok(text) => text.map_or(serde_json::Value::Null, Into::into),
            Err(_) => self
                .maybe_flag(name)?
                .map_or(serde_json::Value::Null, Into::into),
        })
    }
}

impl Conn for sqlx::PgConnection {
    async fn rows<T: Send>(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
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
        args: &[Arg<'_>],
        map: impl Fn(&dyn Cols) -> Result<T, StoreError> + Send,
    ) -> Result<Option<T>, StoreError> {
        bound(sql, args)
            .fetch_optional(&mut *self)
            .await?
            .as_ref()
            .map(|r| map(r))
            .transpose()
    }

    async fn execute(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<u64, StoreError> {
        Ok(bound(sql, args).execute(&mut *self).await?.rows_affected())
    }
}

/// A statement's column names, copied once: rusqlite's own lookup by name asks SQLite for
/// each column's name (and checks its UTF-8) on every call, and copying them on every run
/// still showed in a one-row read's profile (`bench/instructions`; figures in
/// bench/README.md, "Figures behind the code").
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

/// A SQLite connection (rusqlite, see the module doc) and the column names of the
/// statements it has run.
pub struct Lite {
    pub(super) conn: rusqlite::Connection,
    // Keyed by statement text, hashed with foldhash: SipHash over a few hundred bytes cost
    // as much as the copy it saves.
    names: foldhash::HashMap<String, Names>,
    /// `PRAGMA data_version` when [`Lite::changed`] last asked.
    version: Option<i64>,
}

impl Lite {
    pub(super) fn new(conn: rusqlite::Connection) -> Lite {
        Lite {
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

    fn index(&self, name: &str) -> Result<usize, StoreError> {
        let index = self
            .names
            .index(name, self.next.get())
            .ok_or_else(|| rusqlite::Error::InvalidColumnName(name.to_string()))?;
        self.next.set(index + 1);
        Ok(index)
    }

    fn get<T: rusqlite::types::FromSql>(&self, name: &str) -> Result<T, StoreError> {
        Ok(self.row.get(self.index(name)?)?)
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
    fn value(&self, name: &str) -> Result<serde_json::Value, StoreError> {
        use rusqlite::types::ValueRef;
        Ok(match self.row.get_ref(self.index(name)?)? {
            ValueRef::Null => serde_json::Value::Null,
            ValueRef::Integer(flag) => (flag != 0).into(),
            ValueRef::Text(text) => std::str::from_utf8(text)
                .map_err(|e| super::sql::corrupt(name, e))?
                .into(),
            other => {
                return Err(super::sql::corrupt(
                    name,
                    format!("{:?}", other.data_type()),
                ));
            }
        })
    }
}

#[cfg(test)]
thread_local! {
    /// The statements this thread ran on SQLite, while a test records them to read their
    /// query plans (reads run on the task's own thread).
    pub(super) static RAN: std::cell::RefCell<Option<Vec<String>>> =
        const { std::cell::RefCell::new(None) };
}

/// `sql`, prepared once per connection, with `args` bound to its `$n` parameters.
fn prepared<'c>(
    conn: &'c rusqlite::Connection,
    sql: &str,
    args: &[Arg<'_>],
) -> Result<rusqlite::CachedStatement<'c>, StoreError> {
    #[cfg(test)]
    RAN.with_borrow_mut(|ran| {
        if let Some(ran) = ran {
            ran.push(sql.to_string());
        }
    });
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
    Ok(statement)
}

/// Runs `sql` to the end (or to its first row when `first`), mapping each row.
fn run<T>(
    lite: &mut Lite,
    sql: &str,
    args: &[Arg<'_>],
    first: bool,
    map: impl Fn(&dyn Cols) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let Lite { conn, names, .. } = lite;
    let mut statement = prepared(conn, sql, args)?;
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

impl Lite {
    /// [`Conn::execute`], for callers that are not async (the migrations).
    pub(super) fn run_statement(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<u64, StoreError> {
        let mut statement = prepared(&self.conn, sql, args)?;
        Ok(statement.raw_execute()? as u64)
    }
}

impl Conn for Lite {
    fn rows<T: Send>(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
        map: impl Fn(&dyn Cols) -> Result<T, StoreError> + Send,
    ) -> impl Future<Output = Result<Vec<T>, StoreError>> + Send {
        std::future::ready(run(self, sql, args, false, map))
    }

    fn row<T: Send>(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
        map: impl Fn(&dyn Cols) -> Result<T, StoreError> + Send,
    ) -> impl Future<Output = Result<Option<T>, StoreError>> + Send {
        std::future::ready(run(self, sql, args, true, map).map(|rows| rows.into_iter().next()))
    }

    fn execute(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> impl Future<Output = Result<u64, StoreError>> + Send {
        std::future::ready(self.run_statement(sql, args))
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::StatementStatus;

    use super::{Arg, Lite, run};

    #[test]
    fn parameters_bind_by_their_number_not_their_place() {
        let mut reader = Lite::new(rusqlite::Connection::open_in_memory().unwrap());
        let sql = "SELECT $2 AS b, $1 AS a, $2 IS NULL AS none";
        let mut row = |args: &[Arg<'_>]| {
            run(&mut reader, sql, args, true, |r| {
                Ok((r.maybe_text("a")?, r.maybe_text("b")?, r.flag("none")?))
            })
            .unwrap()
        };
        assert_eq!(
            row(&["x".into(), "y".into()]),
            [(Some("x".into()), Some("y".into()), false)]
        );
        assert_eq!(
            row(&["x".into(), Arg::Text(None)]),
            [(Some("x".into()), None, true)]
        );
        let missing = run(&mut reader, sql, &["x".into()], true, |r| r.text("a"));
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
        let mut reader = Lite::new(rusqlite::Connection::open_in_memory().unwrap());
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
                &[email.into()],
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
        let mut reader = Lite::new(rusqlite::Connection::open_in_memory().unwrap());
        let read = |reader: &mut Lite| {
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
        let mut reader = Lite::new(rusqlite::Connection::open(&path).unwrap());
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
