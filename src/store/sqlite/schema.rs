//! Opening the write connection on a file brought to this build's schema: its settings,
//! Unicode `lower()`, and the migrations.

use super::*;

/// Replaces SQLite's `lower()`, which folds ASCII letters only, with Rust's, which folds
/// as Unicode says: members pages ordered by name then order as the rest of Roster does
/// (`list::text_key`), and as PostgreSQL does under a UTF-8 locale.
pub(super) fn unicode_lower(conn: &Connection) -> rusqlite::Result<()> {
    use rusqlite::functions::FunctionFlags;
    conn.create_scalar_function(
        "lower",
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            Ok(ctx
                .get::<Option<String>>(0)?
                .map(|text| text.to_lowercase()))
        },
    )
}

/// The write connection, set up, on a file brought to this build's schema.
pub(super) fn write_connection(path: &Path) -> Result<Lite, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    unicode_lower(&conn)?;
    conn.pragma_update(None, "journal_mode", "wal")?;
    // In WAL mode a commit is durable once the log is synced at a checkpoint; a power
    // loss may take the last commits, never corrupt the file.
    conn.pragma_update(None, "synchronous", "normal")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    conn.pragma_update(None, "cache_size", -CACHE_KIB)?;
    conn.set_prepared_statement_cache_capacity(64);
    let mut lite = Lite::new(conn);
    migrate(&mut lite)?;
    Ok(lite)
}

/// Applies the migrations this build knows that the file lacks, each in the transaction
/// that records it, and checks that those already applied are the ones this build has.
/// The bookkeeping is sqlx's (`_sqlx_migrations`), which earlier versions of Roster used
/// to migrate this file, so their databases open as they are. `BEGIN IMMEDIATE` makes
/// processes starting together on a new file take turns.
pub(super) fn migrate(lite: &mut Lite) -> Result<(), StoreError> {
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
