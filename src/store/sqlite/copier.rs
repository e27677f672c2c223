//! The log copier: copies the write-ahead log into the database file beside the writes
//! (see `sqlite/mod.rs`).

use super::writer::busy;
use super::*;

/// Copies the write-ahead log into the database file without holding the writes back
/// (`PASSIVE`: it copies what no reader still needs and waits for nobody), so that the
/// write connection's checkpoint, which does, finds little left (see the module doc).
pub struct Copier {
    pub(super) conn: std::sync::Mutex<Connection>,
    /// [`IDLE`], [`COPYING`] or [`COPIED`] (until the write connection's next checkpoint).
    pub(super) state: AtomicU8,
}

pub(super) const IDLE: u8 = 0;
pub(super) const COPYING: u8 = 1;
pub(super) const COPIED: u8 = 2;

impl Copier {
    pub(super) fn open(path: &Path) -> rusqlite::Result<Copier> {
        let conn = Connection::open(path)?;
        Ok(Copier {
            conn: std::sync::Mutex::new(conn),
            state: AtomicU8::new(IDLE),
        })
    }

    /// Blocks: off the runtime. The state says the copy ended before its connection is
    /// free again (see [`Writer::checkpoint`]).
    pub(super) fn copy(&self) {
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            // Another process's checkpoint is copying the same log.
            Err(e) if busy(&e) => {}
            Err(e) => tracing::warn!(error = %e, "copying the write-ahead log into the database"),
            Ok(()) => {}
        }
        let _ = self
            .state
            .compare_exchange(COPYING, COPIED, Ordering::SeqCst, Ordering::SeqCst);
    }
}
