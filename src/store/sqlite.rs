//! The SQLite backend: one file in WAL mode. Writers take the database lock up front
//! (`BEGIN IMMEDIATE`), so a read-check-write transaction never races another writer.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::credentials::Credentials;
use super::membership_cache::MembershipCache;
use super::read::Reader;
use super::{StoreError, UserMembership, WriteGate, queries};
use crate::domain::Id;

/// How long a statement waits for the database lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Page cache of each read connection (SQLite's default is 2 MiB). At 1M users a deep
/// members page and the upper levels of the indexes no longer fitted in 2 MiB, and every
/// miss is a `pread` from the OS: 16 MiB took the deep page from 15 to 10.5 ms and
/// `GET /memberships/{id}` from 0.43x to 0.48x of the baseline, for about 30 MB more
/// RSS (there are about as many read connections as runtime workers: reads never wait).
const READ_CACHE_KIB: i64 = 16 * 1024;

#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    gate: Arc<WriteGate>,
    credentials: Arc<Credentials>,
    readers: deadpool::managed::Pool<Readers>,
    memberships: Arc<MembershipCache>,
}

/// Connections for reads, run by rusqlite on the calling thread (see [`super::read`]):
/// an indexed lookup takes microseconds, less than handing it to another thread and back.
/// Reads take no transaction, so a read cut short leaves nothing open.
struct Readers(PathBuf);

impl deadpool::managed::Manager for Readers {
    type Type = Reader;
    type Error = rusqlite::Error;

    async fn create(&self) -> Result<Reader, rusqlite::Error> {
        let conn = rusqlite::Connection::open(&self.0)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // A read connection never writes, whatever a bug might send it.
        conn.pragma_update(None, "query_only", true)?;
        conn.pragma_update(None, "cache_size", -READ_CACHE_KIB)?;
        // Room for every statement the reads use; each is prepared once per connection.
        conn.set_prepared_statement_cache_capacity(64);
        Ok(Reader::new(conn))
    }

    async fn recycle(
        &self,
        _: &mut Reader,
        _: &deadpool::managed::Metrics,
    ) -> deadpool::managed::RecycleResult<rusqlite::Error> {
        Ok(())
    }
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database file. A verified credential is
    /// trusted for `credential_ttl` without asking the database again (see
    /// [`Credentials`]); zero asks every time.
    pub async fn open(path: &Path, credential_ttl: Duration) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        // No ping before handing out a connection: the file cannot hang up, and each ping
        // is a round trip to the connection's worker thread. Writes, exports and imports
        // use this pool; reads use `readers`.
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
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
        let readers = deadpool::managed::Pool::builder(Readers(path.to_path_buf()))
            .max_size(8)
            .build()
            .expect("a pool with a runtime-free configuration builds");
        Ok(SqliteStore {
            pool,
            gate: Arc::default(),
            credentials: Arc::new(Credentials::new(credential_ttl)),
            readers,
            memberships: Arc::new(MembershipCache::new()),
        })
    }

    /// Reads take no transaction here: BEGIN and COMMIT cost a third of a members-list
    /// request (measured with `cargo bench`), and writers are serialized, so a read spanning
    /// a commit sees at worst a reference the write removed, which the views skip.
    async fn read(&self) -> Result<deadpool::managed::Object<Readers>, StoreError> {
        use deadpool::managed::PoolError;
        self.readers.get().await.map_err(|e| match e {
            PoolError::Backend(e) => e.into(),
            PoolError::Timeout(_) => sqlx::Error::PoolTimedOut.into(),
            _ => sqlx::Error::PoolClosed.into(),
        })
    }

    /// A connection for one statement: the same as for any read.
    async fn single(&self) -> Result<deadpool::managed::Object<Readers>, StoreError> {
        self.read().await
    }

    /// Every membership of the user, from the cache when nothing was committed since it
    /// was read (see [`MembershipCache`]).
    async fn own_memberships(
        &self,
        email_folded: &str,
    ) -> Result<Arc<Vec<UserMembership>>, StoreError> {
        let mut reader = self.read().await?;
        match self.cached(&mut reader, email_folded).await? {
            Some(all) => Ok(all),
            None => Ok(Arc::new(
                queries::user_memberships(&mut *reader, email_folded).await?,
            )),
        }
    }

    async fn own_membership(
        &self,
        email_folded: &str,
        id: &Id,
    ) -> Result<Option<UserMembership>, StoreError> {
        let mut reader = self.read().await?;
        match self.cached(&mut reader, email_folded).await? {
            Some(all) => Ok(all.iter().find(|m| &m.membership.id == id).cloned()),
            None => queries::user_membership(&mut *reader, email_folded, id).await,
        }
    }

    /// The user's memberships from the cache, or read whole and kept; `None` when the user
    /// is not worth keeping yet or the database is being written to, and the caller reads
    /// just what it needs. Only a read that uses or fills the cache asks whether the
    /// database changed (a statement of its own).
    async fn cached(
        &self,
        reader: &mut Reader,
        email_folded: &str,
    ) -> Result<Option<Arc<Vec<UserMembership>>>, StoreError> {
        let kept = self.memberships.kept(email_folded);
        if kept.is_none() && !self.memberships.admit(email_folded) {
            return Ok(None);
        }
        let changed = reader.changed()?;
        let stamp = self.memberships.stamp(changed);
        if let Some(all) = stamp.valid(kept) {
            return Ok(Some(all));
        }
        if changed {
            // A commit since this connection last asked: where writes come that often,
            // what is kept dies before it is used again.
            return Ok(None);
        }
        let all = Arc::new(queries::user_memberships(reader, email_folded).await?);
        self.memberships.keep(stamp, email_folded, &all);
        Ok(Some(all))
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

    /// Fresh statistics for the planner (VACUUM would rewrite the whole file for nothing),
    /// and the imported rows moved from the write-ahead log into the file, so that the file
    /// stands alone once `roster import` ends.
    const AFTER_IMPORT: &'static str = "ANALYZE; PRAGMA wal_checkpoint(TRUNCATE)";

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

super::sql::sql_store!(SqliteStore, sqlx::sqlite::SqliteConnection);
