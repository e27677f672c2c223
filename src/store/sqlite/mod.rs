//! The SQLite backend: one file in WAL mode, on rusqlite alone. Reads run on a pool of
//! read-only connections, without a transaction; writes run on the one write connection,
//! inside `BEGIN IMMEDIATE`, which takes the file's write lock up front, so a
//! read-check-write transaction never races another writer, in this process or another.
//! Both run on the calling thread (see `conn.rs`); two things would block it for long, and
//! neither happens there:
//! - waiting for another process's write lock: the first try does not wait, and a writer
//!   that finds the lock taken waits on a blocking thread;
//! - checkpointing the write-ahead log into the file (which syncs it and waits for readers
//!   to leave the log). A [`Copier`] copies the log into the file on a connection and a
//!   blocking thread of its own, beside the writes, from [`COPY_AFTER`] writes on; the
//!   write connection then restarts the log at its first commit after [`CHECKPOINT_AFTER`]
//!   writes and the copy (at the latest after twice as many), on a blocking thread, while
//!   the writes that arrive meanwhile queue: what is left to copy then is what was written
//!   during the copy. Left to a connection of its own, a checkpoint never caught up with a
//!   writer that never stops, and the log grew by gigabytes a minute: the log is only
//!   written from its start again by a writer that finds it copied whole and no reader in
//!   it. Holding the writes for the whole checkpoint was a fifth of the time under a flood
//!   of invitations (bench/README.md).
//!
//! Writes that arrive together commit together. Each write runs inside a savepoint of the
//! transaction open on the write connection; when it ends and other writes are queued for
//! the connection, it leaves the transaction open for them and waits for the one commit
//! that ends it: a commit writes every page it changed to the log and makes every reader
//! drop its page cache, which cost more than the write itself (bench/README.md and its
//! history). A write that fails is rolled back to its savepoint and does not touch the
//! others; each request is answered after the commit that holds its write. A request
//! abandoned while it waits (its client went away) still has its write committed, as if it
//! had been abandoned just after its own commit.
//!
//! In memory (`--database :memory:`, `serve --ephemeral`) there is one connection: an
//! in-memory database belongs to the connection that opened it. Reads then take the write
//! connection in turn, after committing any batch open on it, and the membership cache is
//! off (a connection is not told of its own commits).
//!
//! Layout: this file opens the store and implements [`Backend`]; `writer.rs` holds the
//! write connection and its batches, `copier.rs` the log copier, `schema.rs` the write
//! connection's setup and the migrations.

use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode};
use tokio::sync::{Mutex, OwnedMutexGuard, watch};

use super::cache::catalogs::Catalogs;
use super::cache::credentials::Credentials;
use super::cache::memberships::MembershipCache;
use super::conn::Lite;
use super::queries::AccountJoin;
use super::sql::{Backend, Lock, SqlStore};
use super::{OwnMembershipQuery, StoreError, UserMembership, queries};
use crate::domain::Id;
use crate::domain::list::Page;

mod copier;
mod schema;
mod writer;

use copier::Copier;
use schema::{unicode_lower, write_connection};
use writer::{BATCH, BATCH_WAIT, Queued, Tx, Writer, busy};

/// How long a writer waits for another process's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Page cache of each connection (SQLite's default is 2 MiB): at a million users a deep
/// members page and the upper levels of the indexes no longer fitted in 2 MiB, and the
/// write connection read index pages back from the OS for every batch (bench/README.md history).
/// There are about as many read connections as runtime workers, and one writer.
const CACHE_KIB: i64 = 16 * 1024;

/// A user's kept memberships up to this many are paged in memory; more, and only the
/// page is read (sorting thousands for each page cost what the user holds).
const PAGED_IN_MEMORY: usize = 100;

pub type SqliteStore = SqlStore<Sqlite>;

#[derive(Clone)]
pub struct Sqlite {
    /// `None` in memory, where the write connection reads too.
    readers: Option<deadpool::managed::Pool<Readers>>,
    writer: Arc<Mutex<Writer>>,
    /// Writes waiting for the write connection.
    queued: Arc<AtomicUsize>,
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
        unicode_lower(&conn)?;
        // A read connection never writes, whatever a bug might send it.
        conn.pragma_update(None, "query_only", true)?;
        conn.pragma_update(None, "cache_size", -CACHE_KIB)?;
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

/// A connection to read on: one of the pool's, or in memory the write connection.
// Every read on a file takes the large variant: boxing it would allocate per read to
// shrink the rare one.
#[allow(clippy::large_enum_variant)]
pub enum Reader {
    Pooled(deadpool::managed::Object<Readers>),
    Writer(OwnedMutexGuard<Writer>),
}

impl Deref for Reader {
    type Target = Lite;
    fn deref(&self) -> &Lite {
        match self {
            Reader::Pooled(lite) => lite,
            Reader::Writer(writer) => &writer.lite,
        }
    }
}

impl DerefMut for Reader {
    fn deref_mut(&mut self) -> &mut Lite {
        match self {
            Reader::Pooled(lite) => lite,
            Reader::Writer(writer) => &mut writer.lite,
        }
    }
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database file. A verified credential is
    /// trusted for `credential_ttl` without asking the database again (see
    /// [`Credentials`]); zero asks every time.
    pub async fn open(path: &Path, credential_ttl: Duration) -> Result<Self, StoreError> {
        // Processes starting together on a new file race to switch it to WAL, which SQLite
        // refuses without waiting (its busy handler is not asked); the one that lost finds
        // the work done when it tries again.
        let mut tries = 0;
        let lite = loop {
            match write_connection(path) {
                Err(StoreError::Sqlite(e)) if busy(&e) && tries < 5 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100 * tries)).await;
                }
                other => break other?,
            }
        };
        // No waiting on the calling thread from now on (see `begin`).
        lite.conn.busy_timeout(Duration::ZERO)?;
        let readers = (!in_memory(path)).then(|| {
            deadpool::managed::Pool::builder(Readers(path.to_path_buf()))
                .max_size(8)
                .build()
                .expect("a pool with a runtime-free configuration builds")
        });
        Ok(SqlStore::new(
            Sqlite {
                readers,
                writer: Arc::new(Mutex::new(Writer {
                    lite,
                    copier: (!in_memory(path))
                        .then(|| Copier::open(path).map(Arc::new))
                        .transpose()?,
                    batch: None,
                    commits: 0,
                    unchecked: 0,
                })),
                queued: Arc::default(),
                memberships: Arc::new(MembershipCache::new()),
            },
            Arc::new(Credentials::new(credential_ttl)),
        ))
    }
}

/// Whether `path` names SQLite's in-memory database rather than a file.
pub fn in_memory(path: &Path) -> bool {
    path.as_os_str() == ":memory:"
}

impl Sqlite {
    async fn reader(&self) -> Result<Reader, StoreError> {
        use deadpool::managed::PoolError;
        let Some(readers) = &self.readers else {
            let mut writer = Arc::clone(&self.writer).lock_owned().await;
            // What the write connection holds uncommitted, no other connection would see.
            writer.finish()?;
            return Ok(Reader::Writer(writer));
        };
        readers
            .get()
            .await
            .map(Reader::Pooled)
            .map_err(|e| match e {
                PoolError::Backend(e) => e.into(),
                PoolError::Timeout(_) => sqlx::Error::PoolTimedOut.into(),
                _ => sqlx::Error::PoolClosed.into(),
            })
    }

    /// The user's memberships if the cache holds them as they are now; never reads them
    /// into it (a page reads what it holds: filling the cache for a user of thousands of
    /// memberships would read them all after every commit).
    fn kept_now(
        &self,
        reader: &mut Lite,
        email_folded: &str,
    ) -> Result<Option<Arc<Vec<Arc<UserMembership>>>>, StoreError> {
        if self.readers.is_none() {
            return Ok(None);
        }
        let Some(kept) = self.memberships.kept(email_folded) else {
            return Ok(None);
        };
        let changed = reader.changed()?;
        Ok(self.memberships.stamp(changed).valid(Some(kept)))
    }

    /// The user's memberships from the cache, or read whole and kept; `None` when the user
    /// is not worth keeping yet or the database is being written to, and the caller reads
    /// just what it needs. Only a read that uses or fills the cache asks whether the
    /// database changed (a statement of its own).
    async fn cached(
        &self,
        reader: &mut Lite,
        catalogs: &Catalogs,
        email_folded: &str,
    ) -> Result<Option<Arc<Vec<Arc<UserMembership>>>>, StoreError> {
        if self.readers.is_none() {
            return Ok(None);
        }
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
        let all = Arc::new(
            queries::user_memberships(reader, catalogs, Self::ACCOUNT_JOIN, email_folded).await?,
        );
        self.memberships.keep(stamp, email_folded, &all);
        Ok(Some(all))
    }
}

impl Backend for Sqlite {
    type Single = Reader;
    type Snapshot = Reader;
    type Tx = Tx;

    /// Text sorts bytewise by default.
    const COLLATE: &'static str = "";

    const ACCOUNT_JOIN: AccountJoin = AccountJoin::Keyed;

    const NEW_STAMP: &'static str = "lower(hex(randomblob(16)))";

    async fn single(&self) -> Result<Self::Single, StoreError> {
        self.reader().await
    }

    /// Reads take no transaction here: BEGIN and COMMIT are two more statements on every
    /// read (their cost, measured with `cargo bench`, is in bench/README.md, "Figures
    /// behind the code"), and writers are serialized, so a read spanning
    /// a commit sees at worst a reference the write removed, which the views skip.
    async fn snapshot(&self) -> Result<Self::Snapshot, StoreError> {
        self.reader().await
    }

    /// Every write takes the file's one write lock, whatever `lock` names, joining the
    /// batch open on the write connection (see the module doc); a snapshot is a read
    /// transaction of its own on the write connection (only exports ask for one).
    async fn begin(&self, lock: Lock<'_>) -> Result<Tx, StoreError> {
        let snapshot = matches!(lock, Lock::Snapshot);
        let queued = Queued::new(&self.queued);
        let mut writer = Arc::clone(&self.writer).lock_owned().await;
        drop(queued);
        if snapshot {
            writer.finish()?;
        }
        let began = if snapshot {
            writer.lite.conn.execute_batch("BEGIN")
        } else {
            writer.open()
        };
        match began {
            Ok(()) => {}
            Err(e) if busy(&e) => {
                // Another process writes: wait for it off the runtime's threads.
                writer = tokio::task::spawn_blocking(move || {
                    writer.lite.conn.busy_timeout(BUSY_TIMEOUT)?;
                    let began = if snapshot {
                        writer.lite.conn.execute_batch("BEGIN")
                    } else {
                        writer.open()
                    };
                    writer.lite.conn.busy_timeout(Duration::ZERO)?;
                    began.map(|()| writer)
                })
                .await
                .map_err(|e| StoreError::Corrupt(format!("waiting for the write lock: {e}")))??;
            }
            Err(e) => return Err(e.into()),
        }
        if !snapshot {
            writer.lite.run_statement("SAVEPOINT write", &[])?;
        }
        Ok(Tx {
            writer: Some(writer),
            queued: Arc::clone(&self.queued),
            snapshot,
        })
    }

    /// Keeps the write in its batch and commits the batch now if no other write is queued
    /// to join it (or it is full); otherwise waits for the commit that ends it.
    async fn commit(&self, mut tx: Tx) -> Result<(), StoreError> {
        let mut writer = tx.writer.take().expect("an open transaction");
        if tx.snapshot {
            writer.lite.conn.execute_batch("COMMIT")?;
            return Ok(());
        }
        if let Err(e) = writer.lite.run_statement("RELEASE write", &[]) {
            tx.writer = Some(writer);
            return Err(e);
        }
        let batch = writer.batch.as_mut().expect("a write is in a batch");
        batch.writes += 1;
        if batch.writes >= BATCH || self.queued.load(Ordering::SeqCst) == 0 {
            writer.finish()?;
            if writer.after_commit() {
                // The connection stays taken until the checkpoint is done; this write is.
                tokio::task::spawn_blocking(move || writer.checkpoint());
            }
            return Ok(());
        }
        let mut outcome = batch.outcome.subscribe();
        drop(writer);
        loop {
            match tokio::time::timeout(BATCH_WAIT, outcome.wait_for(Option::is_some)).await {
                Ok(Ok(done)) => {
                    return done
                        .clone()
                        .expect("waited for an outcome")
                        .map_err(StoreError::Commit);
                }
                Ok(Err(_)) => return Err(StoreError::Commit("the store was closed".into())),
                Err(_) => {}
            }
            // Nobody committed the batch in time: commit it here, unless it already was.
            let mut writer = self.writer.lock().await;
            let open = writer
                .batch
                .as_ref()
                .is_some_and(|b| outcome.same_channel(&b.outcome.subscribe()));
            if open {
                return writer.finish();
            }
        }
    }

    /// SQLite writers never race (they hold the lock), so nothing is retried.
    fn retryable(_: &StoreError) -> bool {
        false
    }

    fn figures(&self) -> Vec<super::Figure> {
        use super::Figure;
        let mut figures = vec![Figure::gauge(
            "roster_db_writes_queued",
            "Writes waiting for the write connection.",
            self.queued.load(Ordering::SeqCst) as u64,
        )];
        if let Some(readers) = &self.readers {
            let status = readers.status();
            figures.push(
                Figure::gauge(
                    "roster_db_connections",
                    "Database connections open.",
                    status.size as u64,
                )
                .label("pool", "read"),
            );
            figures.push(
                Figure::gauge(
                    "roster_db_connections_idle",
                    "Database connections open and unused.",
                    status.available as u64,
                )
                .label("pool", "read"),
            );
            figures.extend(self.memberships.figures());
        }
        figures
    }

    /// Another process on the same file is not told: it sees the change once its cached
    /// copy is older than the time to live.
    async fn announce_credentials(&self) {}

    /// Fresh statistics for the planner (VACUUM would rewrite the whole file for nothing),
    /// and the imported rows moved from the write-ahead log into the file, so that the file
    /// stands alone once `roster import` ends.
    async fn after_import(&self, analyze: bool) -> Result<(), StoreError> {
        let mut writer = Arc::clone(&self.writer).lock_owned().await;
        writer.finish()?;
        // `ANALYZE` takes the file's write lock, which another process starting on the same
        // file may hold (seeding it): wait for it, off the runtime's threads, as `begin`
        // does, rather than fail the start with "database is locked".
        tokio::task::spawn_blocking(move || {
            let conn = &writer.lite.conn;
            conn.busy_timeout(BUSY_TIMEOUT)?;
            let done = (if analyze {
                conn.execute_batch("ANALYZE")
            } else {
                Ok(())
            })
            .and_then(|()| conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)"));
            conn.busy_timeout(Duration::ZERO)?;
            done
        })
        .await
        .map_err(|e| StoreError::Corrupt(format!("waiting for the write lock: {e}")))??;
        Ok(())
    }

    /// Every membership of the user, from the cache when nothing was committed since it
    /// was read (see [`MembershipCache`]).
    async fn own_memberships(
        &self,
        catalogs: &Catalogs,
        email_folded: &str,
    ) -> Result<Arc<Vec<Arc<UserMembership>>>, StoreError> {
        let mut reader = self.reader().await?;
        match self.cached(&mut reader, catalogs, email_folded).await? {
            Some(all) => Ok(all),
            None => Ok(Arc::new(
                queries::user_memberships(&mut *reader, catalogs, Self::ACCOUNT_JOIN, email_folded)
                    .await?,
            )),
        }
    }

    /// From the user's kept memberships when they are few (cutting a page out of a
    /// handful costs less than a statement); otherwise the page's rows alone.
    async fn own_membership_page(
        &self,
        catalogs: &Catalogs,
        email_folded: &str,
        query: &OwnMembershipQuery,
    ) -> Result<Page<Arc<UserMembership>>, StoreError> {
        let mut reader = self.reader().await?;
        match self.kept_now(&mut reader, email_folded)? {
            Some(all) if all.len() <= PAGED_IN_MEMORY => Ok(query.page_of(&all)),
            _ => {
                queries::own_membership_page(
                    &mut *reader,
                    catalogs,
                    Self::ACCOUNT_JOIN,
                    email_folded,
                    query,
                )
                .await
            }
        }
    }

    async fn own_membership(
        &self,
        catalogs: &Catalogs,
        email_folded: &str,
        id: &Id,
    ) -> Result<Option<Arc<UserMembership>>, StoreError> {
        let mut reader = self.reader().await?;
        match self.cached(&mut reader, catalogs, email_folded).await? {
            Some(all) => Ok(all.iter().find(|m| &m.membership.id == id).cloned()),
            None => {
                queries::user_membership(
                    &mut *reader,
                    catalogs,
                    Self::ACCOUNT_JOIN,
                    email_folded,
                    id,
                )
                .await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::copier::{COPIED, IDLE};
    use super::writer::{CHECKPOINT_AFTER, COPY_AFTER};
    use super::*;
    use crate::domain::testing::account;
    use crate::domain::*;
    use crate::store::Store;

    /// A store on a new file; the file goes with the directory.
    async fn fresh() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db"), Duration::ZERO)
            .await
            .unwrap();
        (dir, store)
    }

    /// Writes that arrive together share commits; one refused by a rule takes nothing of
    /// the others with it, and every one that was answered as written is there.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writes_commit_together_and_fail_alone() {
        let (_dir, store) = fresh().await;
        let account = account();
        store.create_account(&account, None).await.unwrap();
        let grants = Grants::Roles(vec![Id::parse(catalog::SUPER_ADMINISTRATOR).unwrap()]);
        // The write connection is held until every write waits for it, so that they arrive
        // together however the test's threads are scheduled.
        let held = store.backend.writer.lock().await;
        let before = held.commits;
        let mut writes = tokio::task::JoinSet::new();
        // 64 invitations to 32 addresses: each address wins once.
        for i in 0..64 {
            let (store, id, grants) = (store.clone(), account.id.clone(), grants.clone());
            writes.spawn(async move {
                let email = format!("guest{}@example.com", i % 32);
                store
                    .write_account(&id, &Focus::default().email(&email), &|state| {
                        let new = NewMember {
                            email: Email::parse(&email, "email")?,
                            grants: grants.clone(),
                            status: Status::Pending,
                        };
                        Ok(vec![state.invite(new, None, None)?])
                    })
                    .await
                    .map(|written| written.membership().unwrap().id.clone())
            });
        }
        tokio::time::timeout(Duration::from_secs(10), async {
            while store.backend.queued.load(Ordering::SeqCst) < 64 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("every write queues for the write connection");
        drop(held);
        let mut written = Vec::new();
        while let Some(outcome) = writes.join_next().await {
            match outcome.unwrap() {
                Ok(id) => written.push(id),
                Err(StoreError::Domain(DomainError::AlreadyMember(_))) => {}
                Err(e) => panic!("unexpected: {e}"),
            }
        }
        assert_eq!(written.len(), 32);
        let commits = (store.backend.writer.lock().await.commits - before) as usize;
        assert!(
            commits < written.len(),
            "{commits} commits for {} writes",
            written.len()
        );
        let state = store
            .load_account(&account.id, &Focus::everyone())
            .await
            .unwrap()
            .unwrap();
        let mut stored: Vec<Id> = state.members.iter().map(|m| m.id.clone()).collect();
        stored.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        written.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        assert_eq!(stored, written);
    }

    /// The log is written from its start again after every `CHECKPOINT_AFTER` writes, so
    /// a writer that never stops does not grow it without end.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_write_ahead_log_stays_bounded() {
        let (dir, store) = fresh().await;
        let wal = || std::fs::metadata(dir.path().join("db-wal")).unwrap().len();
        let mut one_interval = 0;
        for i in 0..3 * CHECKPOINT_AFTER {
            store.create_account(&account(), None).await.unwrap();
            if i == CHECKPOINT_AFTER - 2 {
                one_interval = wal();
            }
        }
        // Waits for a checkpoint under way.
        drop(store.backend.writer.lock().await);
        assert!(
            wal() <= one_interval * 3 / 2,
            "the log grew from {one_interval} to {} bytes",
            wal()
        );
    }

    /// The log is copied into the file beside the writes from `COPY_AFTER` writes on, and
    /// restarted once the copy is done and `CHECKPOINT_AFTER` writes were made, not before.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_log_is_copied_beside_the_writes_before_it_restarts() {
        let (_dir, store) = fresh().await;
        let writer = || store.backend.writer.lock();
        let copier = Arc::clone(writer().await.copier.as_ref().expect("a file has a log"));
        for _ in 0..COPY_AFTER {
            store.create_account(&account(), None).await.unwrap();
        }
        let given_up = std::time::Instant::now() + Duration::from_secs(10);
        while copier.state.load(Ordering::SeqCst) != COPIED {
            assert!(std::time::Instant::now() < given_up, "the copy never ended");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(
            writer().await.unchecked,
            COPY_AFTER,
            "restarted before its time"
        );
        for _ in COPY_AFTER..CHECKPOINT_AFTER {
            store.create_account(&account(), None).await.unwrap();
        }
        // Taking the connection waits for the checkpoint under way.
        assert_eq!(writer().await.unchecked, 0, "the log was not restarted");
        assert_eq!(copier.state.load(Ordering::SeqCst), IDLE);
    }

    /// A write queued behind a batch and then abandoned leaves nobody to commit the batch
    /// as the last of it: the writes waiting in it commit it themselves.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_whose_next_write_was_abandoned_still_commits() {
        let (_dir, store) = fresh().await;
        let account = account();
        // A write queued for the connection that will never take it.
        let abandoned = Queued::new(&store.backend.queued);
        let created =
            tokio::time::timeout(Duration::from_secs(5), store.create_account(&account, None))
                .await;
        drop(abandoned);
        created.expect("the write was answered").unwrap();
        // Committed, not merely answered: a read connection sees it.
        assert!(
            store
                .load_account(&account.id, &Focus::default())
                .await
                .unwrap()
                .is_some()
        );
    }
}
