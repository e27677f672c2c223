//! The write connection: writes that arrive together share one transaction and its commit
//! (each in a savepoint of its own), and the log is restarted after [`CHECKPOINT_AFTER`]
//! writes once the [`super::copier::Copier`] has copied it (see `sqlite/mod.rs`).

use super::copier::{COPIED, COPYING, Copier, IDLE};
use super::*;

/// Writes between restarts of the log: SQLite's own default is a checkpoint once the log
/// holds 1,000 pages, and a write adds a few (a row and its index entries).
pub(super) const CHECKPOINT_AFTER: usize = 1024;

/// Writes after a restart of the log when the [`Copier`] starts copying it into the file.
pub(super) const COPY_AFTER: usize = CHECKPOINT_AFTER / 2;

/// Writes one commit holds at most, so that the first of them is not kept waiting long.
pub(super) const BATCH: usize = 64;

/// How long a write whose batch is open waits before committing it itself: only a write
/// that was queued and then abandoned leaves a batch without anyone to commit it.
pub(super) const BATCH_WAIT: Duration = Duration::from_millis(10);

/// The write connection, the transaction open on it, and when it checkpoints next.
pub struct Writer {
    pub(super) lite: Lite,
    /// `None` in memory, where there is no log.
    pub(super) copier: Option<Arc<Copier>>,
    pub(super) batch: Option<Batch>,
    /// Commits made, each of a batch of writes.
    pub(super) commits: u32,
    /// Writes committed since the last checkpoint.
    pub(super) unchecked: usize,
}

/// The transaction open on the write connection: how many writes it holds, and how those
/// that wait for its commit learn the outcome.
pub(super) struct Batch {
    pub(super) writes: usize,
    pub(super) outcome: watch::Sender<Option<Result<(), String>>>,
}

impl Writer {
    /// Opens a transaction for a batch unless one is open.
    pub(super) fn open(&mut self) -> rusqlite::Result<()> {
        if self.batch.is_none() {
            self.lite.conn.execute_batch("BEGIN IMMEDIATE")?;
            self.batch = Some(Batch {
                writes: 0,
                outcome: watch::channel(None).0,
            });
        }
        Ok(())
    }

    /// Ends the open batch, if SQLite rolled its transaction back by itself (it may, on
    /// an I/O error or a full disk): its writes are told they were not made.
    pub(super) fn lost(&mut self) {
        if self.lite.conn.is_autocommit()
            && let Some(batch) = self.batch.take()
        {
            batch
                .outcome
                .send_replace(Some(Err(crate::store::ROLLED_BACK_BY_SQLITE.into())));
        }
    }

    /// Commits the open batch, if any, and tells its writes.
    pub(super) fn finish(&mut self) -> Result<(), StoreError> {
        let Some(batch) = self.batch.take() else {
            return Ok(());
        };
        let committed = self.lite.conn.execute_batch("COMMIT");
        if committed.is_err() && !self.lite.conn.is_autocommit() {
            let _ = self.lite.conn.execute_batch("ROLLBACK");
        }
        batch.outcome.send_replace(Some(
            committed.as_ref().map(|_| ()).map_err(|e| e.to_string()),
        ));
        committed?;
        self.commits = self.commits.wrapping_add(1);
        self.unchecked += batch.writes.max(1);
        Ok(())
    }

    /// Starts the copy of the log when it is due, and says whether this connection's
    /// checkpoint is (to run before it takes another write).
    pub(super) fn after_commit(&mut self) -> bool {
        let Some(copier) = &self.copier else {
            return false;
        };
        if self.unchecked >= COPY_AFTER
            && copier
                .state
                .compare_exchange(IDLE, COPYING, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        {
            let copier = Arc::clone(copier);
            tokio::task::spawn_blocking(move || copier.copy());
        }
        let copied = copier.state.load(Ordering::SeqCst) == COPIED;
        let due = self.unchecked >= CHECKPOINT_AFTER && copied;
        due || self.unchecked >= 2 * CHECKPOINT_AFTER
    }

    /// Copies what is left of the log into the database file and waits until no reader uses
    /// the log, so that the next commit writes it from its start again. Blocks: off the
    /// runtime.
    pub(super) fn checkpoint(&mut self) {
        self.unchecked = 0;
        // A copy under way ends first: SQLite lets one checkpoint at a time run on a log and
        // refuses the others rather than waiting.
        let copier = self.copier.as_ref().map(|copier| {
            let copying = copier.conn.lock().unwrap_or_else(|e| e.into_inner());
            copier.state.store(IDLE, Ordering::SeqCst);
            copying
        });
        let conn = &self.lite.conn;
        let done = conn
            .busy_timeout(BUSY_TIMEOUT)
            .and_then(|()| conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(())))
            .and_then(|()| conn.busy_timeout(Duration::ZERO));
        if let Err(e) = done {
            tracing::warn!(error = %e, "checkpointing the write-ahead log");
        }
        drop(copier);
    }
}

/// A write on the write connection, inside a savepoint of the open batch; the connection
/// is this write's until it ends. Dropped uncommitted, it is rolled back.
pub struct Tx {
    pub(super) writer: Option<OwnedMutexGuard<Writer>>,
    pub(super) queued: Arc<AtomicUsize>,
    /// A snapshot (an export) runs a transaction of its own rather than a savepoint.
    pub(super) snapshot: bool,
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
        let Some(writer) = &mut self.writer else {
            return;
        };
        if self.snapshot {
            if let Err(e) = writer.lite.conn.execute_batch("ROLLBACK") {
                tracing::error!(error = %e, "ending a read transaction");
            }
            return;
        }
        let undone = writer
            .lite
            .conn
            .execute_batch("ROLLBACK TO write; RELEASE write");
        if let Err(e) = undone {
            tracing::error!(error = %e, "rolling back a write");
        }
        writer.lost();
        // The others in the batch wait for a commit; with nobody queued, it is now.
        if self.queued.load(Ordering::SeqCst) == 0
            && let Err(e) = writer.finish()
        {
            tracing::error!(error = %e, "committing a batch of writes");
        }
    }
}

/// Counts a write as queued for the write connection until it has it (or is abandoned).
pub(super) struct Queued(Arc<AtomicUsize>);

impl Queued {
    pub(super) fn new(queued: &Arc<AtomicUsize>) -> Queued {
        queued.fetch_add(1, Ordering::SeqCst);
        Queued(Arc::clone(queued))
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

pub(super) fn busy(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy)
}
