//! The PostgreSQL backend (also for PostgreSQL-wire engines such as CockroachDB). Writes run
//! SERIALIZABLE and are retried on serialization failures, so rules that span rows (the
//! last administrator) hold across server processes sharing the database.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgListener, PgPoolOptions};
use sqlx::{Connection, PgPool};
use tokio::sync::oneshot;

use super::credentials::Credentials;
use super::read::{Cols, Fetch};
use super::{StoreError, UserMembership, WriteGate, queries};
use crate::domain::Id;

/// A connection idle for longer is pinged before it is used again: a firewall or a server
/// restart may have dropped it.
const IDLE_PING: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    singles: deadpool::managed::Pool<Singles>,
    gate: Arc<WriteGate>,
    credentials: Arc<Credentials>,
    /// Dropped with the last clone of the store, which ends [`follow_changes`].
    _following: Arc<oneshot::Sender<()>>,
}

/// The channel on which processes sharing the database announce changed credentials.
const CREDENTIALS_CHANNEL: &str = "roster_credentials";

impl PgStore {
    /// Connects and migrates. Several processes may start at once: the migrator takes an
    /// advisory lock. A verified credential is trusted for `credential_ttl` without asking
    /// the database again (see [`Credentials`]); zero asks every time.
    pub async fn open(url: &str, credential_ttl: Duration) -> Result<Self, StoreError> {
        let options: PgConnectOptions = url.parse()?;
        Self::open_with(options, credential_ttl).await
    }

    pub async fn open_with(
        options: PgConnectOptions,
        credential_ttl: Duration,
    ) -> Result<Self, StoreError> {
        // sqlx pings every connection it hands out by default: a round trip to the server
        // per request. Ping only connections that sat idle long enough for a firewall or a
        // server restart to have dropped them.
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for > IDLE_PING {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        // Few: each holds a connection for one statement, and the server's connections are
        // shared by every process (a hundred by default).
        let singles = deadpool::managed::Pool::builder(Singles(options))
            .max_size(8)
            .wait_timeout(Some(Duration::from_secs(10)))
            .create_timeout(Some(Duration::from_secs(10)))
            // A ping the network swallows: the connection is dropped, not waited for.
            .recycle_timeout(Some(Duration::from_secs(10)))
            .runtime(deadpool::Runtime::Tokio1)
            .build()
            .expect("a pool with a runtime builds");
        let credentials = Arc::new(Credentials::new(credential_ttl));
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(CREDENTIALS_CHANNEL).await?;
        let (following, stop) = oneshot::channel();
        tokio::spawn(follow_changes(listener, credentials.clone(), stop));
        Ok(PgStore {
            pool,
            singles,
            gate: Arc::default(),
            credentials,
            _following: Arc::new(following),
        })
    }

    /// A user or token changed (and is committed): this process forgets what it cached and
    /// tells the others. A process that reads between the commit and the announcement may
    /// keep the old row, and a failed announcement leaves the others with theirs: for at
    /// most the time to live either way, which is no reason to report the change as failed.
    async fn credentials_changed(&self) {
        self.credentials.clear();
        let announced = sqlx::query("SELECT pg_notify($1, '')")
            .bind(CREDENTIALS_CHANNEL)
            .execute(&self.pool)
            .await;
        if let Err(e) = announced {
            tracing::warn!(error = %e, "announcing a credential change");
        }
    }

    /// A read-only snapshot, so the account, its members and its catalog agree; dropping
    /// it ends it.
    async fn read(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
    }

    /// A connection for one statement, which needs no snapshot.
    async fn single(&self) -> Result<deadpool::managed::Object<Singles>, sqlx::Error> {
        use deadpool::managed::PoolError;
        self.singles.get().await.map_err(|e| match e {
            PoolError::Backend(e) => e,
            PoolError::Timeout(_) => sqlx::Error::PoolTimedOut,
            _ => sqlx::Error::PoolClosed,
        })
    }

    /// Every membership of the user. Not cached: PostgreSQL has no cheap way to ask whether
    /// anything changed (see `membership_cache.rs` for SQLite's).
    async fn own_memberships(
        &self,
        email_folded: &str,
    ) -> Result<Arc<Vec<UserMembership>>, StoreError> {
        let found = queries::user_memberships(&mut *self.single().await?, email_folded).await?;
        Ok(Arc::new(found))
    }

    async fn own_membership(
        &self,
        email_folded: &str,
        id: &Id,
    ) -> Result<Option<UserMembership>, StoreError> {
        queries::user_membership(&mut *self.single().await?, email_folded, id).await
    }

    async fn snapshot(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.read().await
    }

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.pool
            .begin_with("BEGIN ISOLATION LEVEL SERIALIZABLE")
            .await
    }

    /// Fresh statistics, or the planner scans where an index serves; and the visibility
    /// map, without which index-only scans (counting an account's members) visit every
    /// row: right after an import, a members page cost three times as much.
    const AFTER_IMPORT: &'static str = "VACUUM ANALYZE";

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

super::sql::sql_store!(PgStore, sqlx::postgres::PgConnection);

/// Clears the credentials cache whenever a process sharing the database announces a change,
/// and whenever the connection that listens was lost (announcements may have been missed).
async fn follow_changes(
    mut listener: PgListener,
    credentials: Arc<Credentials>,
    mut stop: oneshot::Receiver<()>,
) {
    loop {
        let heard = tokio::select! {
            _ = &mut stop => return,
            heard = listener.try_recv() => heard,
        };
        credentials.clear();
        if let Err(e) = heard {
            tracing::warn!(error = %e, "listening for credential changes");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// Connections for reads of one statement, kept by deadpool rather than by sqlx's pool:
/// sqlx pings every connection it takes back, a round trip to the server after every
/// request (a seventh of a one-query read's CPU in perf, and the server's share besides),
/// to flush what a dropped transaction or a statement cut short left behind. These run
/// no transactions, and only one whose statement did not finish, or that sat idle, is
/// pinged before its next use (and dropped if the ping fails or takes 10 s).
struct Singles(PgConnectOptions);

struct Single {
    conn: PgConnection,
    /// Whether its last statement ran to the end.
    finished: bool,
}

impl deadpool::managed::Manager for Singles {
    type Type = Single;
    type Error = sqlx::Error;

    async fn create(&self) -> Result<Single, sqlx::Error> {
        Ok(Single {
            conn: PgConnection::connect_with(&self.0).await?,
            finished: true,
        })
    }

    async fn recycle(
        &self,
        single: &mut Single,
        metrics: &deadpool::managed::Metrics,
    ) -> deadpool::managed::RecycleResult<sqlx::Error> {
        if !single.finished || metrics.last_used() > IDLE_PING {
            single.conn.ping().await?;
            single.finished = true;
        }
        Ok(())
    }
}

impl Fetch for Single {
    async fn rows<T: Send>(
        &mut self,
        sql: &str,
        args: &[Option<&str>],
        map: impl Fn(&dyn Cols) -> Result<T, StoreError> + Send,
    ) -> Result<Vec<T>, StoreError> {
        to_the_end(&mut self.finished, self.conn.rows(sql, args, map)).await
    }

    async fn row<T: Send>(
        &mut self,
        sql: &str,
        args: &[Option<&str>],
        map: impl Fn(&dyn Cols) -> Result<T, StoreError> + Send,
    ) -> Result<Option<T>, StoreError> {
        to_the_end(&mut self.finished, self.conn.row(sql, args, map)).await
    }
}

/// `statement`'s answer; `finished` says yes only once it has run to the end.
async fn to_the_end<T>(
    finished: &mut bool,
    statement: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    *finished = false;
    let answer = statement.await?;
    *finished = true;
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run by `.ci/run`'s PostgreSQL pass (`ROSTER_TEST_DATABASE_URL`).
    #[tokio::test]
    async fn a_connection_lost_during_its_statement_is_not_handed_out_again() {
        let Ok(url) = std::env::var("ROSTER_TEST_DATABASE_URL") else {
            return;
        };
        let options: PgConnectOptions = url.parse().unwrap();
        let singles: deadpool::managed::Pool<Singles> =
            deadpool::managed::Pool::builder(Singles(options.clone()))
                .max_size(1)
                .runtime(deadpool::Runtime::Tokio1)
                .build()
                .unwrap();
        let text = |row: &dyn Cols| row.text("t");
        let mut single = singles.get().await.unwrap();
        let pid = single
            .row("SELECT pg_backend_pid()::text AS t", &[], text)
            .await
            .unwrap()
            .unwrap();
        let mut admin = PgConnection::connect_with(&options).await.unwrap();
        let terminate = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            sqlx::query("SELECT pg_terminate_backend($1::int)")
                .bind(&pid)
                .execute(&mut admin)
                .await
                .unwrap();
        };
        let (lost, ()) = tokio::join!(
            single.rows("SELECT pg_sleep(5)::text AS t", &[], text),
            terminate
        );
        assert!(lost.is_err());
        drop(single);
        // The pool's one connection: the lost one, unless it was found dead and replaced.
        let mut again = singles.get().await.unwrap();
        let answer = again.row("SELECT $1 AS t", &[Some("after")], text).await;
        assert_eq!(answer.unwrap().as_deref(), Some("after"));
    }
}
