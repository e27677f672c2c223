//! Which of `--database-url`'s hosts this process's new connections go to, and following
//! it when it changes. With several hosts (or `target_session_attrs=read-write`), a host
//! is kept only while its sessions are what the URL asks (accept writes); when it goes away
//! or turns read-only (a failover: the primary died and a standby was promoted), a watcher
//! walks the hosts in order until one is, and points both pools there. Connections made
//! before the move are not handed out again. Meanwhile requests get the pools' errors,
//! which are 503s ([`super::StoreError::unavailable`]).
//!
//! One URL host and `any` (the default) is a plain connection: no check, no watcher.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Connection, PgPool, Row};
use tokio::sync::Notify;

use super::StoreError;
use super::pg_url::{PgUrl, SessionAttrs};

/// How often the watcher asks the current host whether it still fits, when nothing
/// told it sooner (a lost connection or a refused session tells it at once).
const WATCH_EVERY: Duration = Duration::from_secs(1);

/// How long the watcher waits between walks over the hosts while none fits: at first, and
/// at most (doubling in between; each walk is a connection to every host).
const SEARCH_EVERY: (Duration, Duration) = (Duration::from_millis(200), Duration::from_secs(2));

/// One host's connection and check, at most: a host that swallows packets is passed over.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) struct Failover {
    url: PgUrl,
    /// The host new connections go to, an index into `url.hosts`.
    current: AtomicUsize,
    /// When new connections last moved (or came back after a loss), in nanoseconds since
    /// `epoch`: a connection made before then may be to the old host, and is dropped.
    moved_at: AtomicU64,
    epoch: Instant,
    /// The transactions' pool, whose options are changed on a move (the single reads'
    /// pool asks [`Failover::options`] for each connection).
    pool: OnceLock<PgPool>,
    /// Something failed in a way a move would explain: the watcher looks now.
    suspect: Notify,
    /// The current host no longer fits and none other has been found yet.
    searching: tokio::sync::watch::Sender<bool>,
}

impl Failover {
    pub fn new(url: PgUrl) -> Arc<Failover> {
        Arc::new(Failover {
            url,
            current: AtomicUsize::new(0),
            moved_at: AtomicU64::new(0),
            epoch: Instant::now(),
            pool: OnceLock::new(),
            suspect: Notify::new(),
            searching: tokio::sync::watch::Sender::new(false),
        })
    }

    pub fn fails_over(&self) -> bool {
        self.url.fails_over()
    }

    /// The current host's options.
    pub fn options(&self) -> PgConnectOptions {
        self.url.hosts[self.current.load(Ordering::Acquire)]
            .options
            .clone()
    }

    /// The current host, as `host:port`.
    pub fn host(&self) -> &str {
        &self.url.hosts[self.current.load(Ordering::Acquire)].name
    }

    /// The pool to move with the host.
    pub fn follow(&self, pool: PgPool) {
        let _ = self.pool.set(pool);
    }

    /// The first host, in the URL's order, whose session fits, and a connection to it:
    /// where the pools start. With one host, its own error; with several, each one's.
    pub async fn first(&self) -> Result<PgConnection, StoreError> {
        let mut tried = Vec::new();
        for (i, host) in self.url.hosts.iter().enumerate() {
            match self.try_host(i).await {
                Ok(conn) => {
                    self.current.store(i, Ordering::Release);
                    return Ok(conn);
                }
                Err(e) if self.url.hosts.len() == 1 => return Err(e.into()),
                Err(e) => tried.push(format!("{}: {}", host.name, short(&e))),
            }
        }
        Err(StoreError::Unready(format!(
            "no host of --database-url {} ({})",
            self.wanted(),
            tried.join("; ")
        )))
    }

    /// What the URL asks of a host, for messages.
    fn wanted(&self) -> &'static str {
        match self.url.attrs {
            SessionAttrs::Any => "accepts a connection",
            SessionAttrs::ReadWrite => "accepts writes (target_session_attrs=read-write)",
            SessionAttrs::Primary => "is a primary (target_session_attrs=primary)",
        }
    }

    /// A connection to host `i`, if its session fits.
    async fn try_host(&self, i: usize) -> Result<PgConnection, sqlx::Error> {
        let host = &self.url.hosts[i];
        let attempt = async {
            let mut conn = PgConnection::connect_with(&host.options).await?;
            if self.fits(&mut conn).await? {
                Ok(conn)
            } else {
                let _ = conn.close().await;
                Err(self.unfit(&host.name))
            }
        };
        tokio::time::timeout(CONNECT_TIMEOUT, attempt)
            .await
            .unwrap_or_else(|_| {
                Err(sqlx::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
                )))
            })
    }

    /// Whether `conn`'s session is what the URL asks: libpq's checks.
    pub async fn fits(&self, conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
        // Simple-protocol queries: nothing prepared, which a transaction pooler could split.
        Ok(match self.url.attrs {
            SessionAttrs::Any => true,
            SessionAttrs::ReadWrite => {
                let row = sqlx::raw_sql("SHOW transaction_read_only")
                    .fetch_one(&mut *conn)
                    .await?;
                row.try_get::<String, _>(0)? == "off"
            }
            SessionAttrs::Primary => {
                let row = sqlx::raw_sql("SELECT pg_is_in_recovery()")
                    .fetch_one(&mut *conn)
                    .await?;
                !row.try_get::<bool, _>(0)?
            }
        })
    }

    /// The error of a session that does not fit: SQLSTATE 25006, as a write to it would
    /// fail, which the API answers 503 (the database is read-only).
    pub fn unfit(&self, host: &str) -> sqlx::Error {
        sqlx::Error::Database(Box::new(Unfit(format!(
            "{host} is not a host that {} (a standby, or a failover under way)",
            self.wanted()
        ))))
    }

    /// `acquire`'s answer, unless no host fits (now, or before it has one): then at once
    /// the error that says so. The pool would keep trying the host that stopped fitting
    /// until its wait ran out, and then blame busy connections; while none fits, a write
    /// can only fail, and failing at once keeps requests from piling up.
    pub async fn while_one_fits<T>(
        &self,
        acquire: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, sqlx::Error> {
        if !self.fails_over() {
            return acquire.await;
        }
        let mut searching = self.searching.subscribe();
        if *searching.borrow_and_update() {
            return Err(self.none_fits());
        }
        tokio::select! {
            answer = acquire => answer,
            _ = searching.wait_for(|s| *s) => Err(self.none_fits()),
        }
    }

    fn none_fits(&self) -> sqlx::Error {
        sqlx::Error::Database(Box::new(Unfit(format!(
            "no host of --database-url {} now (a failover under way?)",
            self.wanted()
        ))))
    }

    /// A new connection for single reads, to the current host, if its session fits.
    pub async fn connect(&self) -> Result<PgConnection, sqlx::Error> {
        let i = self.current.load(Ordering::Acquire);
        let answer = if self.fails_over() {
            self.try_host(i).await
        } else {
            PgConnection::connect_with(&self.url.hosts[i].options).await
        };
        if answer.is_err() {
            self.suspect();
        }
        answer
    }

    /// Whether new connections moved since `born`, so that a connection made then may be
    /// to a host that is gone or read-only.
    pub fn moved_since(&self, born: Instant) -> bool {
        let moved = self.moved_at.load(Ordering::Acquire);
        moved != 0 && Duration::from_nanos(moved) > born.saturating_duration_since(self.epoch)
    }

    /// Tells the watcher to look now (a connection was lost or refused a session).
    pub fn suspect(&self) {
        if self.fails_over() {
            self.suspect.notify_one();
        }
    }

    /// Points new connections at host `i` and retires the connections made before.
    fn move_to(&self, i: usize) {
        let before = self.current.swap(i, Ordering::AcqRel);
        if let Some(pool) = self.pool.get() {
            pool.set_connect_options(self.url.hosts[i].options.clone());
        }
        let now = self.epoch.elapsed().as_nanos().max(1) as u64;
        self.moved_at.store(now, Ordering::Release);
        self.searching.send_replace(false);
        if before != i {
            tracing::warn!(
                host = %self.url.hosts[i].name,
                "database: new connections go to {} (was {})",
                self.url.hosts[i].name,
                self.url.hosts[before].name
            );
        } else {
            tracing::info!(host = %self.url.hosts[i].name, "database: {} fits again", self.url.hosts[i].name);
        }
    }

    /// Follows the host that fits, for as long as the future is polled: asks the current
    /// host every [`WATCH_EVERY`] (or when told to suspect it) on a connection of its own,
    /// and when that fails walks the hosts in order until one fits.
    pub async fn watch(self: Arc<Self>, mut probe: Option<PgConnection>) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(WATCH_EVERY) => {}
                () = self.suspect.notified() => {}
            }
            let current = self.current.load(Ordering::Acquire);
            let host = &self.url.hosts[current].name;
            let unfit = match probe.as_mut() {
                Some(conn) => match tokio::time::timeout(CONNECT_TIMEOUT, self.fits(conn)).await {
                    Ok(Ok(true)) => None,
                    Ok(Ok(false)) => Some(self.unfit(host)),
                    Ok(Err(e)) => Some(e),
                    Err(_) => Some(sqlx::Error::PoolTimedOut),
                },
                None => match self.try_host(current).await {
                    Ok(conn) => {
                        probe = Some(conn);
                        None
                    }
                    Err(e) => Some(e),
                },
            };
            let Some(unfit) = unfit else { continue };
            drop(probe.take());
            self.searching.send_replace(true);
            tracing::warn!(
                %host,
                "database: {host} no longer {} ({}); trying each host of --database-url",
                self.wanted(),
                short(&unfit)
            );
            let mut pause = SEARCH_EVERY.0;
            'search: loop {
                for i in 0..self.url.hosts.len() {
                    if let Ok(conn) = self.try_host(i).await {
                        probe = Some(conn);
                        self.move_to(i);
                        break 'search;
                    }
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(SEARCH_EVERY.1);
            }
        }
    }
}

/// An error's gist for a one-line list of hosts: a database error's message without
/// PostgreSQL's source line.
fn short(e: &sqlx::Error) -> Cow<'_, str> {
    match e {
        sqlx::Error::Database(db) => Cow::Borrowed(db.message()),
        other => Cow::Owned(other.to_string()),
    }
}

/// A session that is not what the URL asks for (read-only where writes are wanted), as
/// PostgreSQL reports a write to it: SQLSTATE 25006.
#[derive(Debug)]
struct Unfit(String);

impl std::fmt::Display for Unfit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unfit {}

impl sqlx::error::DatabaseError for Unfit {
    fn message(&self) -> &str {
        &self.0
    }

    fn code(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed("25006"))
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> sqlx::error::ErrorKind {
        sqlx::error::ErrorKind::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_hosts() -> Arc<Failover> {
        Failover::new(
            "postgres://u@h1,h2/db?target_session_attrs=read-write"
                .parse()
                .unwrap(),
        )
    }

    #[test]
    fn a_read_only_session_is_the_databases_state_not_a_bug() {
        let failover = two_hosts();
        let e = StoreError::Database(failover.unfit("h1:5432"));
        assert_eq!(
            e.unavailable(),
            Some("the database is read-only (a standby, or a failover under way)")
        );
        assert!(
            e.to_string()
                .contains("h1:5432 is not a host that accepts writes")
        );
    }

    #[tokio::test]
    async fn while_no_host_fits_a_write_is_refused_at_once_not_after_the_pools_wait() {
        let failover = two_hosts();
        let never = || std::future::pending::<Result<(), sqlx::Error>>();
        // A search that starts while the pool is still trying ends the wait.
        let searching = async {
            tokio::task::yield_now().await;
            failover.searching.send_replace(true);
            std::future::pending::<()>().await
        };
        let refused = tokio::select! {
            refused = failover.while_one_fits(never()) => refused,
            () = searching => unreachable!(),
        };
        let e = StoreError::Database(refused.unwrap_err());
        assert_eq!(
            e.unavailable(),
            Some("the database is read-only (a standby, or a failover under way)")
        );
        // And one that arrives during the search is refused before it waits at all.
        assert!(failover.while_one_fits(never()).await.is_err());
        // Found: served again.
        failover.move_to(1);
        assert!(failover.while_one_fits(async { Ok(()) }).await.is_ok());
    }

    #[test]
    fn connections_made_before_a_move_are_retired_and_later_ones_kept() {
        let failover = two_hosts();
        let before = Instant::now();
        assert!(!failover.moved_since(before), "never moved");
        assert_eq!(failover.host(), "h1:5432");
        failover.move_to(1);
        assert_eq!(failover.host(), "h2:5432");
        assert_eq!(failover.options().get_host(), "h2");
        assert!(failover.moved_since(before));
        assert!(!failover.moved_since(Instant::now()));
    }
}
