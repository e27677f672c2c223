//! The SQLite backend: one file in WAL mode, on rusqlite alone. Reads run on a pool of
//! read-only connections, without a transaction; writes run on the one write connection,
//! inside `BEGIN IMMEDIATE`, which takes the file's write lock up front, so a
//! read-check-write transaction never races another writer, in this process or another.
//! Both run on the calling thread (see `conn.rs`); two things would block it for long, and
//! neither happens there:
//! - waiting for another process's write lock: the first try does not wait, and a writer
//!   that finds the lock taken waits on a blocking thread;
//! - checkpointing the write-ahead log into the file (which syncs it): the write connection
//!   never does; a thread of its own does after every [`CHECKPOINT_EVERY`] commits.

use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode};
use tokio::sync::{Mutex, OwnedMutexGuard};

use super::conn::Lite;
use super::credentials::Credentials;
use super::membership_cache::MembershipCache;
use super::sql::{Backend, Lock, SqlStore};
use super::{StoreError, UserMembership, queries};
use crate::domain::Id;

/// How long a writer waits for another process's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Page cache of each read connection (SQLite's default is 2 MiB): at a million users a
/// deep members page and the upper levels of the indexes no longer fitted in 2 MiB
/// (bench/README.md). There are about as many read connections as runtime workers.
const READ_CACHE_KIB: i64 = 16 * 1024;

/// Commits between checkpoints: SQLite's own default is a checkpoint once the log holds
/// 1,000 pages, and a small write adds a few.
const CHECKPOINT_EVERY: u32 = 256;

pub type SqliteStore = SqlStore<Sqlite>;

#[derive(Clone)]
pub struct Sqlite {
    readers: deadpool::managed::Pool<Readers>,
    writer: Arc<Mutex<Writer>>,
    memberships: Arc<MembershipCache>,
}

/// Connections for reads (see [`super::conn`]): an indexed lookup takes microseconds, less
/// than handing it to another thread and back. Reads take no transaction, so a read cut
/// short leaves nothing open.
pub struct Readers(PathBuf);

impl deadpool::managed::Manager for Readers {
    type Type = Lite;
    type Error = rusqlite::Error;

    async fn create(&self) -> Result<Lite, rusqlite::Error> {
        let conn = Connection::open(&self.0)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // A read connection never writes, whatever a bug might send it.
        conn.pragma_update(None, "query_only", true)?;
        conn.pragma_update(None, "cache_size", -READ_CACHE_KIB)?;
        // Room for every statement the reads use; each is prepared once per connection.
        conn.set_prepared_statement_cache_capacity(64);
        Ok(Lite::new(conn))
    }

    async fn recycle(
        &self,
        _: &mut Lite,
        _: &deadpool::managed::Metrics,
    ) -> deadpool::managed::RecycleResult<rusqlite::Error> {
        Ok(())
    }
}

/// The write connection, and what it needs to hand checkpoints off.
pub struct Writer {
    lite: Lite,
    commits: u32,
    checkpoints: SyncSender<()>,
}

/// A transaction on the write connection; the connection is this transaction's until it
/// ends. Dropped uncommitted, it is rolled back.
pub struct Tx {
    writer: Option<OwnedMutexGuard<Writer>>,
}

impl Deref for Tx {
    type Target = Lite;
    fn deref(&self) -> &Lite {
        &self.writer.as_ref().expect("an open transaction").lite
    }
}

impl DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut Lite {
        &mut self.writer.as_mut().expect("an open transaction").lite
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        if let Some(writer) = &mut self.writer
            && !writer.lite.conn.is_autocommit()
            && let Err(e) = writer.lite.conn.execute_batch("ROLLBACK")
        {
            tracing::error!(error = %e, "rolling back a write");
        }
    }
}

fn busy(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy)
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database file. A verified credential is
    /// trusted for `credential_ttl` without asking the database again (see
    /// [`Credentials`]); zero asks every time.
    pub async fn open(path: &Path, credential_ttl: Duration) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "journal_mode", "wal")?;
        // In WAL mode a commit is durable once the log is synced at a checkpoint; a power
        // loss may take the last commits, never corrupt the file.
        conn.pragma_update(None, "synchronous", "normal")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        conn.set_prepared_statement_cache_capacity(64);
        let mut lite = Lite::new(conn);
        migrate(&mut lite)?;
        // No waiting on the calling thread from now on (see `begin`).
        lite.conn.busy_timeout(Duration::ZERO)?;
        let (checkpoints, wanted) = mpsc::sync_channel(1);
        let checkpointer = Connection::open(path)?;
        checkpointer.busy_timeout(BUSY_TIMEOUT)?;
        std::thread::Builder::new()
            .name("roster-checkpoint".into())
            .spawn(move || {
                // Ends when the store (the sender) is dropped.
                while wanted.recv().is_ok() {
                    let done =
                        checkpointer.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                    if let Err(e) = done {
                        tracing::warn!(error = %e, "checkpointing the write-ahead log");
                    }
                }
            })
            .map_err(|e| StoreError::Corrupt(format!("starting the checkpoint thread: {e}")))?;
        let readers = deadpool::managed::Pool::builder(Readers(path.to_path_buf()))
            .max_size(8)
            .build()
            .expect("a pool with a runtime-free configuration builds");
        Ok(SqlStore {
            backend: Sqlite {
                readers,
                writer: Arc::new(Mutex::new(Writer {
                    lite,
                    commits: 0,
                    checkpoints,
                })),
                memberships: Arc::new(MembershipCache::new()),
            },
            credentials: Arc::new(Credentials::new(credential_ttl)),
        })
    }
}

/// Applies the migrations this build knows that the file lacks, each in the transaction
/// that records it, and checks that those already applied are the ones this build has.
/// The bookkeeping is sqlx's (`_sqlx_migrations`), which earlier versions of Roster used
/// to migrate this file, so their databases open as they are. `BEGIN IMMEDIATE` makes
/// processes starting together on a new file take turns.
fn migrate(lite: &mut Lite) -> Result<(), StoreError> {
    let conn = &lite.conn;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
            version BIGINT PRIMARY KEY,
            description TEXT NOT NULL,
            installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
            success BOOLEAN NOT NULL,
            checksum BLOB NOT NULL,
            execution_time BIGINT NOT NULL
        )",
    )?;
    for migration in sqlx::migrate!("./migrations").iter() {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let applied: Option<(Vec<u8>, bool)> = conn
            .query_row(
                "SELECT checksum, success FROM _sqlx_migrations WHERE version = ?1",
                [migration.version],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })?;
        let outcome = match applied {
            Some((checksum, true)) if checksum == *migration.checksum => Ok(()),
            Some(_) => Err(StoreError::Corrupt(format!(
                "migration {} was applied in another form (or failed) in this file",
                migration.version
            ))),
            None => conn
                .execute_batch(migration.sql.as_str())
                .and_then(|()| {
                    conn.execute(
                        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
                         VALUES (?1, ?2, TRUE, ?3, -1)",
                        rusqlite::params![
                            migration.version,
                            migration.description.as_ref(),
                            migration.checksum.as_ref()
                        ],
                    )
                })
                .map(|_| ())
                .map_err(Into::into),
        };
        match outcome {
            Ok(()) => conn.execute_batch("COMMIT")?,
            Err(e) => {
                conn.execute_batch("ROLLBACK")?;
                return Err(e);
            }
        }
    }
    Ok(())
}

impl Sqlite {
    async fn reader(&self) -> Result<deadpool::managed::Object<Readers>, StoreError> {
        use deadpool::managed::PoolError;
        self.readers.get().await.map_err(|e| match e {
            PoolError::Backend(e) => e.into(),
            PoolError::Timeout(_) => sqlx::Error::PoolTimedOut.into(),
            _ => sqlx::Error::PoolClosed.into(),
        })
    }

    /// The user's memberships from the cache, or read whole and kept; `None` when the user
    /// is not worth keeping yet or the database is being written to, and the caller reads
    /// just what it needs. Only a read that uses or fills the cache asks whether the
    /// database changed (a statement of its own).
    async fn cached(
        &self,
        reader: &mut Lite,
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
}

impl Backend for Sqlite {
    type Single = deadpool::managed::Object<Readers>;
    type Snapshot = deadpool::managed::Object<Readers>;
    type Tx = Tx;

    /// Text sorts bytewise by default.
    const COLLATE: &'static str = "";

    async fn single(&self) -> Result<Self::Single, StoreError> {
        self.reader().await
    }

    /// Reads take no transaction here: BEGIN and COMMIT cost a third of a members-list
    /// request (measured with `cargo bench`), and writers are serialized, so a read spanning
    /// a commit sees at worst a reference the write removed, which the views skip.
    async fn snapshot(&self) -> Result<Self::Snapshot, StoreError> {
        self.reader().await
    }

    /// Every write takes the file's one write lock, whatever `lock` names; a snapshot is a
    /// read transaction on the write connection (only exports ask for one).
    async fn begin(&self, lock: Lock<'_>) -> Result<Tx, StoreError> {
        let begin = match lock {
            Lock::Snapshot => "BEGIN",
            _ => "BEGIN IMMEDIATE",
        };
        let mut writer = Arc::clone(&self.writer).lock_owned().await;
        match writer.lite.conn.execute_batch(begin) {
            Ok(()) => {}
            Err(e) if busy(&e) => {
                // Another process writes: wait for it off the runtime's threads.
                writer = tokio::task::spawn_blocking(move || {
                    let conn = &writer.lite.conn;
                    let began = conn
                        .busy_timeout(BUSY_TIMEOUT)
                        .and_then(|()| conn.execute_batch(begin));
                    let reset = conn.busy_timeout(Duration::ZERO);
                    began.and(reset).map(|()| writer)
                })
                .await
                .map_err(|e| StoreError::Corrupt(format!("waiting for the write lock: {e}")))??;
            }
            Err(e) => return Err(e.into()),
        }
        Ok(Tx {
            writer: Some(writer),
        })
    }

    async fn commit(&self, mut tx: Tx) -> Result<(), StoreError> {
        let mut writer = tx.writer.take().expect("an open transaction");
        if let Err(e) = writer.lite.conn.execute_batch("COMMIT") {
            tx.writer = Some(writer);
            return Err(e.into());
        }
        writer.commits = writer.commits.wrapping_add(1);
        if writer.commits.is_multiple_of(CHECKPOINT_EVERY) {
            // Full: a checkpoint is already asked for.
            if let Err(TrySendError::Disconnected(())) = writer.checkpoints.try_send(()) {
                tracing::warn!("the checkpoint thread has stopped");
            }
        }
        Ok(())
    }

    /// SQLite writers never race (they hold the lock), so nothing is retried.
    fn retryable(_: &StoreError) -> bool {
        false
    }

    /// Another process on the same file is not told: it sees the change once its cached
    /// copy is older than the time to live.
    async fn announce_credentials(&self) {}

    /// Fresh statistics for the planner (VACUUM would rewrite the whole file for nothing),
    /// and the imported rows moved from the write-ahead log into the file, so that the file
    /// stands alone once `roster import` ends.
    async fn after_import(&self) -> Result<(), StoreError> {
        let writer = self.writer.lock().await;
        writer
            .lite
            .conn
            .execute_batch("ANALYZE; PRAGMA wal_checkpoint(TRUNCATE)")?;
        Ok(())
    }

    /// Every membership of the user, from the cache when nothing was committed since it
    /// was read (see [`MembershipCache`]).
    async fn own_memberships(
        &self,
        email_folded: &str,
    ) -> Result<Arc<Vec<UserMembership>>, StoreError> {
        let mut reader = self.reader().await?;
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
        let mut reader = self.reader().await?;
        match self.cached(&mut reader, email_folded).await? {
            Some(all) => Ok(all.iter().find(|m| &m.membership.id == id).cloned()),
            None => queries::user_membership(&mut *reader, email_folded, id).await,
        }
    }
}
