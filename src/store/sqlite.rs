//! The SQLite backend: one file in WAL mode. Writers take the database lock up front
//! (`BEGIN IMMEDIATE`), so a read-check-write transaction never races another writer.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::credentials::{Credentials, DEFAULT_TTL};
use super::{StoreError, WriteGate};

#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    gate: Arc<WriteGate>,
    credentials: Arc<Credentials>,
}

impl SqliteStore {
    /// How long a verified credential may be used without asking the database again
    /// (see [`Credentials`]); zero asks every time.
    pub fn with_credential_ttl(self, ttl: Duration) -> Self {
        self.credentials.set_ttl(ttl);
        self
    }

    /// Opens (creating if needed) and migrates the database file.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        // No ping before handing out a connection: the file cannot hang up, and each ping
        // is a round trip to the connection's worker thread (half of a one-query request).
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        // sqlx takes no lock while migrating SQLite, so processes starting together on a
        // new file may collide; the one that lost finds the work done when it tries again.
        let mut tries = 0;
        while let Err(e) = sqlx::migrate!("./migrations").run(&pool).await {
            tries += 1;
            if tries == 5 {
                return Err(e.into());
            }
            tokio::time::sleep(Duration::from_millis(100 * tries)).await;
        }
        Ok(SqliteStore {
            pool,
            gate: Arc::default(),
            credentials: Arc::new(Credentials::new(DEFAULT_TTL)),
        })
    }

    /// Reads take no transaction here: BEGIN and COMMIT cost a third of a members-list
    /// request (measured with `cargo bench`), and writers are serialized, so a read spanning
    /// a commit sees at worst a reference the write removed, which the views skip.
    async fn read(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Sqlite>, sqlx::Error> {
        self.pool.acquire().await
    }

    /// One WAL snapshot for reads that must agree across tables (an export).
    async fn snapshot(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.pool.begin().await
    }

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }

    /// A user or token changed. Another process on the same file is not told: it sees the
    /// change once its cached copy is older than the time to live.
    async fn credentials_changed(&self) {
        self.credentials.clear();
    }

    /// Text sorts bytewise by default, as Rust's `str` does.
    const COLLATE: &'static str = "";

    /// The file has one writer at a time whatever the account.
    fn gate_key(_account: &str) -> &'static str {
        ""
    }

    /// SQLite writers never race (they hold the lock), so nothing is retried.
    fn retryable(_: &sqlx::Error) -> bool {
        false
    }
}

super::sql::sql_store!(
    SqliteStore,
    sqlx::sqlite::SqliteConnection,
    sqlx::sqlite::SqliteRow
);
