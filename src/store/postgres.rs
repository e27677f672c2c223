//! The PostgreSQL backend (also for PostgreSQL-wire engines such as CockroachDB), on sqlx.
//! Writes run READ COMMITTED and first lock the row their rules depend on (`FOR UPDATE` on
//! the account, or the user): writers to one account take turns, whichever process they
//! run in, and see each other's commits, so a rule that spans rows (the last
//! administrator) holds; writers to different accounts never wait for each other, and no
//! writer is aborted and retried for touching a table another one touched.
//! Every connection goes to the host of `--database-url` that [`Failover`] says fits now
//! (`pg_url.rs` reads the URL's host list).

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgConnection, PgListener, PgPoolOptions};
use sqlx::{Connection, PgPool, Postgres as Pg, Transaction};
use tokio::sync::oneshot;

use super::cache::credentials::Credentials;
use super::conn::{Arg, Cols, Conn};
use super::failover::Failover;
use super::pg_url::PgUrl;
use super::queries::AccountJoin;
use super::sql::{Backend, Lock, SqlStore};
use super::{StoreError, WriteGate};

/// A connection idle for longer is pinged before it is used again: a firewall or a server
/// restart may have dropped it.
const IDLE_PING: Duration = Duration::from_secs(30);

pub type PgStore = SqlStore<Postgres>;

/// The connections one process takes of the server's `max_connections`, and how long a
/// request waits for one of them before it is answered 503.
#[derive(Debug, Clone, Copy)]
pub struct PoolBudget {
    /// For requests, at least 2: three parts for transactions (writes, and reads that need
    /// a snapshot) to one for single-statement reads. One more connection, outside it,
    /// listens for other processes' credential changes, and with failover (several hosts)
    /// another watches the current host ([`Failover::watch`]).
    pub size: u32,
    pub wait: Duration,
}

impl Default for PoolBudget {
    /// 24 connections (16 and 8, as before there was a budget) and 10 s.
    fn default() -> Self {
        PoolBudget {
            size: 24,
            wait: Duration::from_secs(10),
        }
    }
}

impl PoolBudget {
    /// (transactions, single reads).
    pub fn split(&self) -> (u32, u32) {
        let size = self.size.max(2);
        let singles = (size / 3).max(1);
        (size - singles, singles)
    }
}

#[derive(Clone)]
pub struct Postgres {
    pool: PgPool,
    singles: deadpool::managed::Pool<Singles>,
    gate: Arc<WriteGate>,
    failover: Arc<Failover>,
    /// Dropped with the last clone of the store, which ends [`follow_changes`] and the
    /// failover's watcher.
    _following: Arc<oneshot::Sender<()>>,
}

/// How this process reaches PostgreSQL: directly (each connection a session of its own), or
/// through a transaction-mode pooler such as pgbouncer, which hands each transaction
/// whichever server connection is free, so that nothing may outlive a transaction.
#[derive(Clone, Default)]
pub struct Pooler {
    /// Through a transaction-mode pooler: statements are sent unnamed (a named one, cached
    /// per connection as sqlx does, collides with another client's of the same name on the
    /// shared server connection), and no session is relied on.
    pub transaction: bool,
    /// A direct connection, past the pooler, for what needs a session: the migrations
    /// (their advisory lock) and LISTEN for other processes' credential changes. Without
    /// one, the migrations must have been applied (`roster migrate` on a direct URL) and
    /// other processes' credential changes reach this one within the credential cache's
    /// time to live.
    pub direct: Option<PgConnectOptions>,
}

/// Whether statements are sent unnamed ([`Pooler::transaction`]). Process-wide: a process
/// reaches its one database one way, and the store's statements are built far from the
/// connection that runs them (`conn.rs`).
static UNNAMED_STATEMENTS: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Whether statements go unnamed: sqlx's `persistent(false)`.
pub(super) fn unnamed_statements() -> bool {
    UNNAMED_STATEMENTS.load(std::sync::atomic::Ordering::Relaxed)
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
        Self::open_sized(
            options.into(),
            credential_ttl,
            PoolBudget::default(),
            Pooler::default(),
        )
        .await
    }

    /// [`PgStore::open_with`] on the URL's hosts (the first that fits, and whichever fits
    /// after a failover: see [`Failover`]), within `budget`'s connections and wait, reached
    /// as `pooler` says.
    pub async fn open_sized(
        mut url: PgUrl,
        credential_ttl: Duration,
        budget: PoolBudget,
        pooler: Pooler,
    ) -> Result<Self, StoreError> {
        let (transactions, singles) = budget.split();
        if pooler.transaction {
            UNNAMED_STATEMENTS.store(true, std::sync::atomic::Ordering::Relaxed);
            for host in &mut url.hosts {
                host.options = host.options.clone().statement_cache_capacity(0);
            }
        }
        let failover = Failover::new(url);
        // What needs a session, past the pooler, when one is given.
        let session = match &pooler.direct {
            Some(direct) => Some(
                PgPoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(budget.wait)
                    .connect_with(direct.clone())
                    .await?,
            ),
            None => None,
        };
        // One connection first: a server that refuses or does not exist is reported at
        // once (the pool would retry until its acquire timeout, 10 s, and report that).
        // With several hosts, the first that fits; it then watches for a failover.
        let first = failover.first().await?;
        let options = failover.options();
        let probe = if failover.fails_over() {
            Some(first)
        } else {
            first.close().await?;
            None
        };
        // sqlx pings every connection it hands out by default: a round trip to the server
        // per request. Ping only connections that sat idle long enough for a firewall or a
        // server restart to have dropped them.
        // One more for the listener below, which keeps a connection of this pool.
        // After a failover, a connection made before it may be to the old host, gone or
        // read-only: dropped rather than handed out. A new one is checked as the URL asks
        // (refused when read-only: the pool tries again, by then on the host that fits).
        // Weak: the failover holds the pool (to move it), which would otherwise hold the
        // failover in these, and neither would ever be dropped, nor its connections closed.
        let before = Arc::downgrade(&failover);
        let after = Arc::downgrade(&failover);
        let pool = PgPoolOptions::new()
            .max_connections(transactions + 1)
            .acquire_timeout(budget.wait)
            .test_before_acquire(false)
            .before_acquire(move |conn, meta| {
                let failover = before.upgrade();
                Box::pin(async move {
                    let born = Instant::now().checked_sub(meta.age);
                    if let Some(failover) = failover
                        && born.is_none_or(|born| failover.moved_since(born))
                    {
                        return Ok(false);
                    }
                    if meta.idle_for > IDLE_PING {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .after_connect(move |conn, _| {
                let failover = after.upgrade();
                Box::pin(async move {
                    let Some(failover) = failover else {
                        return Ok(());
                    };
                    if failover.fails_over() && !failover.fits(conn).await? {
                        failover.suspect();
                        return Err(failover.unfit(failover.host()));
                    }
                    Ok(())
                })
            })
            .connect_with(options.clone())
            .await?;
        failover.follow(pool.clone());
        match (&session, pooler.transaction) {
            (Some(session), _) => sqlx::migrate!("./migrations/postgres").run(session).await?,
            (None, false) => sqlx::migrate!("./migrations/postgres").run(&pool).await?,
            (None, true) => schema_is_current(&pool).await?,
        }
        // Few: each holds a connection for one read, and the server's connections are
        // shared by every process (a hundred by default).
        let singles = deadpool::managed::Pool::builder(Singles(failover.clone()))
            .max_size(singles as usize)
            .wait_timeout(Some(budget.wait))
            .create_timeout(Some(Duration::from_secs(10)))
            // A ping the network swallows: the connection is dropped, not waited for.
            .recycle_timeout(Some(Duration::from_secs(10)))
            .runtime(deadpool::Runtime::Tokio1)
            .build()
            .expect("a pool with a runtime builds");
        let credentials = Arc::new(Credentials::new(credential_ttl));
        let (following, stop) = oneshot::channel();
        let listen_through = match (&session, pooler.transaction) {
            (Some(session), _) => Some(session),
            (None, false) => Some(&pool),
            // LISTEN needs a session, which the pooler does not give.
            (None, true) => None,
        };
        // The failover's watcher, on the first connection.
        let watch = probe.map(|probe| failover.clone().watch(Some(probe)));
        if let Some(through) = listen_through {
            let listener = listen(through).await?;
            tokio::spawn(follow_changes(
                listener,
                through.clone(),
                credentials.clone(),
                failover.clone(),
                watch,
                stop,
            ));
        } else {
            if let Some(watch) = watch {
                tokio::spawn(async move {
                    tokio::select! {
                        _ = stop => {}
                        () = watch => {}
                    }
                });
            }
            tracing::info!(
                "behind a transaction pooler without --database-listen-url: other processes' \
                 credential changes reach this one within --credential-cache"
            );
        }
        Ok(SqlStore::new(
            Postgres {
                pool,
                singles,
                gate: Arc::default(),
                failover,
                _following: Arc::new(following),
            },
            credentials,
        ))
    }
}

impl Postgres {
    /// `e`, having told the failover's watcher to look at the host now when `e` is the
    /// database's state (a connection lost or refused, a read-only session): new
    /// connections move sooner than its next look.
    fn lost(&self, e: StoreError) -> StoreError {
        if e.unavailable().is_some() {
            self.failover.suspect();
        }
        e
    }
}

/// A transaction, with this process's turn at what it locks (see [`WriteGate`]).
pub struct Tx {
    tx: Transaction<'static, Pg>,
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Deref for Tx {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        &self.tx
    }
}

impl DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.tx
    }
}

impl Backend for Postgres {
    type Single = deadpool::managed::Object<Singles>;
    type Snapshot = deadpool::managed::Object<Singles>;
    type Tx = Tx;

    /// Sort text bytewise, as SQLite and Rust do, whatever the database's locale.
    const COLLATE: &'static str = r#" COLLATE "C""#;

    const ACCOUNT_JOIN: AccountJoin = AccountJoin::Lateral;

    const NEW_STAMP: &'static str = "md5(random()::text || clock_timestamp()::text || id)";

    /// A connection for one statement, which needs no snapshot.
    async fn single(&self) -> Result<Self::Single, StoreError> {
        use deadpool::managed::PoolError;
        self.singles.get().await.map_err(|e| {
            self.lost(
                match e {
                    PoolError::Backend(e) => e,
                    PoolError::Timeout(_) => sqlx::Error::PoolTimedOut,
                    _ => sqlx::Error::PoolClosed,
                }
                .into(),
            )
        })
    }

    /// Reads of several statements take no transaction either, as on SQLite: BEGIN and
    /// COMMIT were two of an account read's five round trips, and a read spanning a commit
    /// sees at worst a reference the write removed, which the views skip.
    async fn snapshot(&self) -> Result<Self::Snapshot, StoreError> {
        self.single().await
    }

    /// This process's writers queue per account or user before they take a connection
    /// (colliding in the database, each would hold one while it waits for the row lock).
    async fn begin(&self, lock: Lock<'_>) -> Result<Tx, StoreError> {
        let (key, row_lock, begin) = match lock {
            Lock::Account(id) => (
                Some(id.as_str()),
                Some("SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE"),
                "BEGIN",
            ),
            Lock::User(id) => (
                Some(id.as_str()),
                Some("SELECT 1 FROM users WHERE id = $1 FOR UPDATE"),
                "BEGIN",
            ),
            Lock::Rows => (None, None, "BEGIN"),
            // An import writes every table, and refuses unless they are empty: no other
            // writer may add rows meanwhile.
            Lock::Everything => (
                None,
                Some(
                    "LOCK TABLE users, accounts, account_roles, resource_groups, user_groups, \
                     memberships, tokens, audit_logs IN EXCLUSIVE MODE",
                ),
                "BEGIN",
            ),
            Lock::Snapshot => (
                None,
                None,
                "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
            ),
        };
        let turn = match key {
            Some(key) => Some(self.gate.enter(key).await),
            None => None,
        };
        let mut tx = Tx {
            tx: self
                .failover
                .while_one_fits(self.pool.begin_with(begin))
                .await
                .map_err(|e| self.lost(e.into()))?,
            _turn: turn,
        };
        if let Some(sql) = row_lock {
            let args: Vec<Arg<'_>> = key.map(Arg::from).into_iter().collect();
            tx.rows(sql, &args, |_| Ok(())).await?;
        }
        Ok(tx)
    }

    async fn commit(&self, tx: Tx) -> Result<(), StoreError> {
        tx.tx.commit().await.map_err(|e| self.lost(e.into()))
    }

    /// Deadlocks (40P01), and serialization failures (40001), which only engines that run
    /// every transaction serializable (CockroachDB) report here: the transaction did
    /// nothing.
    fn retryable(e: &StoreError) -> bool {
        matches!(e, StoreError::Database(sqlx::Error::Database(d)) if matches!(d.code().as_deref(), Some("40001" | "40P01")))
    }

    /// A process that reads between the commit and the announcement may keep the old row,
    /// and a failed announcement leaves the others with theirs: for at most the time to
    /// live either way, which is no reason to report the change as failed.
    async fn announce_credentials(&self) {
        // One simple-protocol message: nothing prepared, so nothing a pooler could split.
        let announced = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "SELECT pg_notify('{CREDENTIALS_CHANNEL}', '')"
        )))
        .execute(&self.pool)
        .await;
        if let Err(e) = announced {
            tracing::warn!(error = %e, "announcing a credential change");
        }
    }

    fn figures(&self) -> Vec<super::Figure> {
        use super::Figure;
        let singles = self.singles.status();
        vec![
            Figure::gauge(
                "roster_db_connections",
                "Database connections open.",
                self.pool.size().into(),
            )
            .label("pool", "write"),
            Figure::gauge(
                "roster_db_connections_idle",
                "Database connections open and unused.",
                self.pool.num_idle() as u64,
            )
            .label("pool", "write"),
            Figure::gauge(
                "roster_db_connections",
                "Database connections open.",
                singles.size as u64,
            )
            .label("pool", "read"),
            Figure::gauge(
                "roster_db_connections_idle",
                "Database connections open and unused.",
                singles.available as u64,
            )
            .label("pool", "read"),
        ]
    }

    /// Fresh statistics, or the planner scans where an index serves; and the visibility
    /// map, without which index-only scans (counting an account's members) visit every
    /// row. `analyze` false leaves both to autovacuum, as in a database grown through the
    /// API.
    async fn after_import(&self, analyze: bool) -> Result<(), StoreError> {
        if analyze {
            sqlx::raw_sql("VACUUM ANALYZE").execute(&self.pool).await?;
        }
        Ok(())
    }
}

/// Behind a transaction pooler with no direct connection to migrate through: the database
/// must already be at this build's newest migration, which a direct `roster migrate` applies.
async fn schema_is_current(pool: &PgPool) -> Result<(), StoreError> {
    let newest = sqlx::migrate!("./migrations/postgres")
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap_or_default();
    // In a transaction, which a transaction pooler keeps on one server connection.
    let mut tx = pool.begin().await?;
    let applied: Option<i64> =
        match sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
            .persistent(false)
            .fetch_one(&mut *tx)
            .await
        {
            Ok(applied) => applied,
            // Never migrated: no table of migrations yet.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P01") => None,
            Err(e) => return Err(e.into()),
        };
    tx.rollback().await?;
    if applied.unwrap_or_default() < newest {
        return Err(StoreError::Unready(format!(
            "the database is at migration {}, this build needs {newest}: behind a transaction \
             pooler, apply them with `roster migrate` on a direct --database-url, or give \
             --database-listen-url (a direct connection) to migrate through",
            applied.unwrap_or_default()
        )));
    }
    Ok(())
}

/// A listener on [`CREDENTIALS_CHANNEL`], on a connection of `pool`.
async fn listen(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CREDENTIALS_CHANNEL).await?;
    Ok(listener)
}

/// Clears the credentials cache whenever a process sharing the database announces a change,
/// and whenever the connection that listens was lost and listens again (announcements may
/// have been missed meanwhile); polls the failover's watcher, when there is one, as long.
async fn follow_changes(
    listener: PgListener,
    pool: PgPool,
    credentials: Arc<Credentials>,
    failover: Arc<Failover>,
    watch: Option<impl Future<Output = ()>>,
    mut stop: oneshot::Receiver<()>,
) {
    let watch = async move {
        match watch {
            Some(watch) => watch.await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = &mut stop => {}
        () = watch => {}
        () = listen_on(listener, pool, credentials, failover) => {}
    }
}

async fn listen_on(
    mut listener: PgListener,
    pool: PgPool,
    credentials: Arc<Credentials>,
    failover: Arc<Failover>,
) {
    loop {
        match listener.try_recv().await {
            Ok(Some(_)) => credentials.clear(),
            // Lost, and listening again on a new connection (sqlx reconnects first).
            Ok(None) => {
                failover.suspect();
                credentials.clear();
                tracing::info!("listening for credential changes again, after a lost connection");
            }
            Err(e) => {
                failover.suspect();
                // A listener whose connection failed otherwise may keep it: a new one. Said
                // once, not once a second for as long as the database is away.
                tracing::warn!(error = %e, "listening for credential changes; trying again each second");
                listener = loop {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    match listen(&pool).await {
                        Ok(listener) => break listener,
                        Err(_) => failover.suspect(),
                    }
                };
                credentials.clear();
                tracing::info!("listening for credential changes again");
            }
        }
    }
}

/// Connections for reads, kept by deadpool rather than by sqlx's pool: sqlx pings every
/// connection it takes back, a round trip to the server after every request (a seventh of a
/// one-query read's CPU in perf, and the server's share besides), to flush what a dropped
/// transaction or a statement cut short left behind. These run no transactions, and only
/// one whose statement did not finish, or that sat idle, is pinged before its next use (and
/// dropped if the ping fails or takes 10 s).
pub struct Singles(Arc<Failover>);

pub struct Single {
    conn: PgConnection,
    /// Whether its last statement ran to the end.
    finished: bool,
    /// When it was made: one made before a failover is dropped.
    born: Instant,
}

impl deadpool::managed::Manager for Singles {
    type Type = Single;
    type Error = sqlx::Error;

    async fn create(&self) -> Result<Single, sqlx::Error> {
        Ok(Single {
            conn: self.0.connect().await?,
            finished: true,
            born: Instant::now(),
        })
    }

    async fn recycle(
        &self,
        single: &mut Single,
        metrics: &deadpool::managed::Metrics,
    ) -> deadpool::managed::RecycleResult<sqlx::Error> {
        if self.0.moved_since(single.born) {
            return Err(deadpool::managed::RecycleError::message(
                "made before a failover",
            ));
        }
        if !single.finished && unnamed_statements() {
            // A read dropped between its BEGIN and COMMIT (a request timed out, a client
            // went away) left its transaction open: ended here, or the pooler keeps the
            // server connection pinned and, once aborted, every later BEGIN fails.
            sqlx::raw_sql("ROLLBACK").execute(&mut single.conn).await?;
        }
        if !single.finished || metrics.last_used() > IDLE_PING {
            single.conn.ping().await?;
            single.finished = true;
        }
        Ok(())
    }
}

/// Behind a transaction pooler, each single statement runs in a transaction of its own:
/// sqlx ends a statement's preparation with a Sync, at which a transaction-mode pooler
/// may hand the server connection to another client, and the statement's execution would
/// then run on a server connection that holds another client's unnamed statement.
/// Within `BEGIN` ... `COMMIT` the pooler keeps the one server connection.
impl Conn for Single {
    async fn rows<T: Send>(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
        map: impl Fn(&dyn Cols) -> Result<T, StoreError> + Send,
    ) -> Result<Vec<T>, StoreError> {
        let pooled = unnamed_statements();
        let conn = &mut self.conn;
        to_the_end(&mut self.finished, async move {
            begin_if(pooled, conn).await?;
            let answer = conn.rows(sql, args, map).await;
            end_if(pooled, conn, answer.is_ok()).await?;
            answer
        })
        .await
    }

    async fn row<T: Send>(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
        map: impl Fn(&dyn Cols) -> Result<T, StoreError> + Send,
    ) -> Result<Option<T>, StoreError> {
        let pooled = unnamed_statements();
        let conn = &mut self.conn;
        to_the_end(&mut self.finished, async move {
            begin_if(pooled, conn).await?;
            let answer = conn.row(sql, args, map).await;
            end_if(pooled, conn, answer.is_ok()).await?;
            answer
        })
        .await
    }

    async fn execute(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<u64, StoreError> {
        let pooled = unnamed_statements();
        let conn = &mut self.conn;
        to_the_end(&mut self.finished, async move {
            begin_if(pooled, conn).await?;
            let answer = conn.execute(sql, args).await;
            end_if(pooled, conn, answer.is_ok()).await?;
            answer
        })
        .await
    }
}

async fn begin_if(pooled: bool, conn: &mut PgConnection) -> Result<(), StoreError> {
    if pooled {
        sqlx::raw_sql("BEGIN").execute(conn).await?;
    }
    Ok(())
}

async fn end_if(pooled: bool, conn: &mut PgConnection, ok: bool) -> Result<(), StoreError> {
    if pooled {
        let end = if ok { "COMMIT" } else { "ROLLBACK" };
        sqlx::raw_sql(sqlx::AssertSqlSafe(end))
            .execute(conn)
            .await?;
    }
    Ok(())
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

    /// The server `.ci/run`'s PostgreSQL pass names.
    fn test_database() -> PgConnectOptions {
        std::env::var("ROSTER_TEST_DATABASE_URL")
            .expect("ROSTER_TEST_DATABASE_URL names a PostgreSQL database")
            .parse()
            .expect("ROSTER_TEST_DATABASE_URL is a PostgreSQL URL")
    }

    /// A user's memberships, their page and one of them are read through the email's index
    /// and each account by its key, on a database that never ran `ANALYZE` (as one grown
    /// through the API is): a plain join was planned as a hash of every account.
    #[tokio::test]
    #[ignore = "needs PostgreSQL: .ci/run's PostgreSQL pass runs it with ROSTER_TEST_DATABASE_URL and --include-ignored"]
    async fn a_users_memberships_are_read_by_key_without_statistics() {
        use crate::domain::list::PageRequest;
        use crate::domain::types::{Direction, MembershipOrder, Status};
        use crate::store::OwnMembershipQuery;
        use crate::store::queries::{own_memberships_narrow, own_page_statement};

        let options = test_database();
        let mut conn = PgConnection::connect_with(&options).await.unwrap();
        let schema = format!("plans_{}", crate::domain::Id::generate().as_str());
        let run = |sql: String| sqlx::raw_sql(sqlx::AssertSqlSafe(sql));
        run(format!(
            "CREATE SCHEMA {schema}; SET search_path TO {schema}"
        ))
        .execute(&mut conn)
        .await
        .unwrap();
        sqlx::migrate!("./migrations/postgres")
            .run(&mut conn)
            .await
            .unwrap();
        run(
            "INSERT INTO accounts (id, name, type, created_on, catalog_stamp) \
             SELECT md5(i::text), 'Account ' || i, 'standard', '2024-01-01T00:00:00Z', 's' \
             FROM generate_series(1, 6000) i; \
             INSERT INTO memberships (id, account_id, email, email_lower, status, grants, code, \
             created_on, modified_on) SELECT md5('m' || i), md5((1 + i % 6000)::text), e, e, \
             CASE WHEN i % 3 = 0 THEN 'pending' ELSE 'accepted' END, '{\"roles\":[]}', 'c', \
             '2024-01-01T00:00:00Z', '2024-01-01T00:00:00Z' FROM generate_series(1, 20000) i, \
             LATERAL (SELECT CASE WHEN i <= 3 THEN 'few@example.com' \
             WHEN i <= 5000 THEN 'many@example.com' ELSE 'user' || i || '@example.com' END AS e) \
             email"
                .into(),
        )
        .execute(&mut conn)
        .await
        .unwrap();
        let mut statements = vec![
            AccountJoin::Lateral.own_memberships().to_string(),
            AccountJoin::Lateral.own_membership().to_string(),
            own_memberships_narrow(AccountJoin::Lateral),
        ];
        for order in [MembershipOrder::Id, MembershipOrder::Status] {
            for status in [None, Some(Status::Accepted)] {
                statements.push(own_page_statement(&OwnMembershipQuery {
                    status,
                    account_names: Vec::new(),
                    order,
                    direction: Direction::Desc,
                    page: PageRequest::new(Some(3), Some(20)).unwrap(),
                }));
            }
        }
        for (n, sql) in statements.iter().enumerate() {
            let parameters = if sql.contains("$2") {
                "(text, text)"
            } else {
                "(text)"
            };
            let arguments = if sql.contains("$2") {
                "('many@example.com', 'accepted')"
            } else {
                "('many@example.com')"
            };
            run(format!("PREPARE plan_{n} {parameters} AS {sql}"))
                .execute(&mut conn)
                .await
                .unwrap();
            let plan: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "EXPLAIN EXECUTE plan_{n} {arguments}"
            )))
            .fetch_all(&mut conn)
            .await
            .unwrap();
            let plan = plan.join("\n");
            assert!(
                !plan.contains("Seq Scan") && !plan.contains("Hash"),
                "{sql}\n{plan}"
            );
        }
        run(format!("DROP SCHEMA {schema} CASCADE"))
            .execute(&mut conn)
            .await
            .unwrap();
    }

    /// A store dropped closes every connection it opened, with failover (its watcher, the
    /// pool the failover moves) and without: the test suites open hundreds of stores
    /// against one server's hundred connections.
    #[tokio::test]
    #[ignore = "needs PostgreSQL: .ci/run's PostgreSQL pass runs it with ROSTER_TEST_DATABASE_URL and --include-ignored"]
    async fn a_store_dropped_closes_its_connections() {
        let url = std::env::var("ROSTER_TEST_DATABASE_URL")
            .expect("ROSTER_TEST_DATABASE_URL names a PostgreSQL database");
        let options = test_database();
        let mut admin = PgConnection::connect_with(&options).await.unwrap();
        let schema = format!("leak_{}", crate::domain::Id::generate().as_str());
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut admin)
            .await
            .unwrap();
        for attrs in ["any", "read-write"] {
            let name = format!("{schema}_{attrs}");
            let separator = if url.contains('?') { '&' } else { '?' };
            let store_url: PgUrl = format!(
                "{url}{separator}application_name={name}&options[search_path]={schema}\
                 &target_session_attrs={attrs}"
            )
            .parse()
            .unwrap();
            assert_eq!(store_url.fails_over(), attrs != "any");
            let store = PgStore::open_sized(
                store_url,
                Duration::from_secs(5),
                PoolBudget::default(),
                Pooler::default(),
            )
            .await
            .unwrap();
            let open = || {
                sqlx::query_scalar::<_, i64>(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                )
                .bind(&name)
            };
            assert!(open().fetch_one(&mut admin).await.unwrap() >= 2, "{attrs}");
            drop(store);
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            loop {
                let left = open().fetch_one(&mut admin).await.unwrap();
                if left == 0 {
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "{attrs}: {left} connections still open 10 s after the store was dropped"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .execute(&mut admin)
            .await
            .unwrap();
    }

    #[tokio::test]
    #[ignore = "needs PostgreSQL: .ci/run's PostgreSQL pass runs it with ROSTER_TEST_DATABASE_URL and --include-ignored"]
    async fn a_connection_lost_during_its_statement_is_not_handed_out_again() {
        let options = test_database();
        let singles: deadpool::managed::Pool<Singles> =
            deadpool::managed::Pool::builder(Singles(Failover::new(options.clone().into())))
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
        let answer = again.row("SELECT $1 AS t", &["after".into()], text).await;
        assert_eq!(answer.unwrap().as_deref(), Some("after"));
    }
}

#[cfg(test)]
mod budget_tests {
    use super::PoolBudget;

    #[test]
    fn a_budget_splits_three_to_one_and_never_below_one_each() {
        let split = |size| {
            PoolBudget {
                size,
                ..PoolBudget::default()
            }
            .split()
        };
        assert_eq!(PoolBudget::default().split(), (16, 8));
        assert_eq!(split(2), (1, 1));
        assert_eq!(split(0), (1, 1));
        assert_eq!(split(3), (2, 1));
        assert_eq!(split(10), (7, 3));
    }
}
