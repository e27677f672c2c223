//! The PostgreSQL backend (also for PostgreSQL-wire engines such as CockroachDB). Writes run
//! SERIALIZABLE and are retried on serialization failures, so rules that span rows (the
//! last administrator) hold across server processes sharing the database.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::{StoreError, WriteGate};

#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    gate: Arc<WriteGate>,
}

impl PgStore {
    /// Connects and migrates. Several processes may start at once: the migrator takes an
    /// advisory lock.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options: PgConnectOptions = url.parse()?;
        Self::open_with(options).await
    }

    pub async fn open_with(options: PgConnectOptions) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(PgStore {
            pool,
            gate: Arc::default(),
        })
    }

    /// A read-only snapshot, so the account, its members and its catalog agree; dropping
    /// it ends it.
    async fn read(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
    }

    async fn snapshot(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.read().await
    }

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.pool
            .begin_with("BEGIN ISOLATION LEVEL SERIALIZABLE")
            .await
    }

    /// Sort text bytewise, as SQLite and Rust do, whatever the database's locale.
    const COLLATE: &'static str = r#" COLLATE "C""#;

    /// Writers to different accounts do not conflict, so each account has its own queue.
    fn gate_key(account: &str) -> &str {
        account
    }

    /// Serialization failures (40001) and deadlocks (40P01) mean "try again": the
    /// transaction did nothing.
    fn retryable(e: &sqlx::Error) -> bool {
        matches!(e, sqlx::Error::Database(d) if matches!(d.code().as_deref(), Some("40001" | "40P01")))
    }
}

super::sql::sql_store!(PgStore, sqlx::postgres::PgConnection, sqlx::postgres::PgRow);
