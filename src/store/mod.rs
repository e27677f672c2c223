//! Persistence: the one [`Store`] trait the API talks to, and its backends. A write is a
//! closure over the account's state, run inside one transaction: the store loads the
//! state, the domain decides the [`Change`]s, the store applies them and commits. Unique
//! indexes back up the rules (one live membership per account and email).
//!
//! The layout: `sql.rs` implements [`Store`] once, over a small `Backend` trait that
//! `sqlite/` (rusqlite) and `postgres.rs` (sqlx; the host it connects to is `failover.rs`'s,
//! among those `pg_url.rs` reads from the URL) implement; `queries.rs` holds the reads,
//! `writes.rs` what a write does to the rows, and `conn.rs` how a statement runs on either
//! driver. Three caches sit in front of the
//! database: `cache/credentials.rs` (who a key or token is; exact about this process's own
//! writes, other processes' seen within a time to live or when announced),
//! `cache/catalogs.rs` (each account's roles and groups, used only while the account's row,
//! read in the same statement, carries the stamp they were read at: exact in every
//! process) and, on SQLite, `cache/memberships.rs` (a user's memberships, used only while
//! nothing was committed since: exact in every process); `cache/mod.rs` has their table.
//!
//! Each operation, per backend: the connection it runs on, its isolation, what it locks,
//! and what answers before the database. In memory (`:memory:`) SQLite has one connection,
//! which reads too (see `sqlite/mod.rs`), and no memberships cache. On PostgreSQL behind a
//! transaction pooler (`Pooler`), statements go unnamed and each `Singles` statement runs
//! between `BEGIN` and `COMMIT` of its own (see `postgres.rs`); the pooled transactions
//! below are unchanged. A connection not free within the pool's wait is a 503
//! ([`StoreError::unavailable`]).
//!
//! | operation | SQLite | PostgreSQL | cache |
//! |---|---|---|---|
//! | `load_account` | a reader: one statement (the account, its stamp and the members the focus names), and a second for the catalog when the one kept is not at that stamp (then the first again if it picked administrators by roles that changed) | `Singles`, the same statements | catalogs, checked against the stamp |
//! | `member_page` | a reader, no transaction: the account with its kept counts and the caller, then the page (statements may straddle a commit; the views skip what a write removed) | `Singles`, the same | catalogs, checked against the stamp |
//! | `group_member_page` | a reader, no transaction: the account, the caller and the group's count, then the page, both from `membership_groups` (kept from `memberships.group_ids` by triggers in the write's own transaction) | `Singles`, the same | catalogs, checked against the stamp |
//! | `user_memberships`, `user_membership` | a reader, no transaction | a single-statement connection (`Singles`), no transaction | SQLite: memberships, checked against `data_version`; both: catalogs, checked against the stamp |
//! | `user_membership_page` | a reader, no transaction: in id or status order, one statement (the email's kept count, kept by triggers in each write's own transaction, and the page from the email's index); by account name, the user's memberships narrow, then the page's rows | `Singles`, the same | SQLite: a user's kept memberships, when 100 or fewer, are paged in memory; both: catalogs, checked against the stamp |
//! | `user_by_email`, `token_by_hash` | a reader | `Singles` | credentials, for the time to live |
//! | `user`, `tokens` (a user's or an account's), `audit_log`, `ping` | a reader | `Singles` | none |
//! | `token_page` | a reader, no transaction: the tokens that may have expired (a partial index), then the owner's kept count (triggers, in each write's own transaction) and the page from the owner's index in the list's order | `Singles`, the same | none |
//! | `write_account`, `create_account` | the writer: a savepoint in the batch's `BEGIN IMMEDIATE` (the file's write lock; writes arriving together share one commit, see `sqlite/writer.rs`) | pooled, `READ COMMITTED`, account row `FOR UPDATE`, this process's writers queued per account | reads the catalog as `load_account` does; a change to it writes a new stamp; the account's membership counts take the write's changes in one statement before them; clears nothing (memberships and catalogs are checked on read), except deleting an account: credentials, as its tokens went with it |
//! | `edit_user`, `edit_token`, `delete_token` | the writer, a savepoint in the batch | pooled, `READ COMMITTED`, the owner's row (user or account) `FOR UPDATE`, queued per owner; `edit_token` and `delete_token` with `TokenRules` decide them on the account as read there | clears credentials once a row changed (a missing token deleted changes none); PostgreSQL tells other processes (`NOTIFY`) |
//! | `insert_user`, `insert_token`, `touch_token` | the writer, a savepoint in the batch | pooled, `READ COMMITTED`, the rows written (a token only while its owner's row exists; an account's token with `TokenRules`: the account row `FOR UPDATE`, the rules decided on the account as read there) | `touch_token` updates its entry; inserts clear nothing (a refusal is never kept) |
//! | every write above but `touch_token` (a use, not a change) | also writes its audit entries (`audit_logs`), in its own transaction: a refused or rolled-back change leaves none | the same | none |
//! | `insert_session`, `touch_session`, `end_session` | the writer, a savepoint in the batch | pooled, `READ COMMITTED`, the row written (an insert also deletes sessions past the absolute expiry) | none |
//! | `session` | a reader | `Singles` | none |
//! | `export` | the writer, after committing its batch: `BEGIN` (one snapshot; this process's writes wait), committed once read | pooled, `REPEATABLE READ READ ONLY`, committed once read | none |
//! | `import`, `restore` | the writer, a savepoint in the batch | pooled, `READ COMMITTED`, every table `EXCLUSIVE` | clears credentials; PostgreSQL tells other processes; every account gets a new catalog stamp and its memberships counted |

mod cache;
mod conn;
pub mod export;
mod failover;
mod pg_url;
mod postgres;
mod queries;
mod sql;
mod sqlite;
mod writes;

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use async_trait::async_trait;

use crate::domain::audit;
use crate::domain::list::{Page, PageRequest};
use crate::domain::tokens::{Owner, Token};
use crate::domain::types::{Direction, MemberOrder, MembershipOrder, Status};
use crate::domain::{
    Account, AccountCatalog, AccountState, Change, DomainError, Focus, Id, Membership, User,
};

pub use cache::credentials::DEFAULT_TTL as DEFAULT_CREDENTIAL_TTL;
pub use pg_url::{PgUrl, SessionAttrs, UrlError};
pub use postgres::{PgStore, PoolBudget, Pooler};
pub use queries::GroupMemberQuery;
pub use sql::SqlStore;
pub use sqlite::{SqliteStore, in_memory as sqlite_in_memory};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// Concurrent writers kept colliding past the retry budget; the caller may try later.
    #[error("too much write contention on one account")]
    Contention,
    /// A commit failed: none of the writes it held were made.
    #[error("database error: committing: {0}")]
    Commit(String),
    /// An import refused before anything was written.
    #[error("cannot import: {0}")]
    Import(String),
    /// The database is not set up for this build to serve from, and this build cannot set
    /// it up itself (the message says what to do).
    #[error("{0}")]
    Unready(String),
}

/// Causes of [`StoreError::unavailable`] that stop writes only: reads go on meanwhile, so
/// only a write that succeeds shows them gone.
pub const WRITE_CAUSES: &[&str] = &[
    DISK_FULL,
    READ_ONLY_FILE,
    DISK_FAILING,
    DISK_FULL_OR_FAILING,
    SERVER_DISK_FULL,
    READ_ONLY_SERVER,
];
const DISK_FULL: &str = "the disk is full";
const READ_ONLY_FILE: &str = "the database file became read-only or was moved";
const DISK_FULL_OR_FAILING: &str = "the disk is full or failing";
/// What a batch's other writes are told when SQLite rolled the batch back by itself.
pub(crate) const ROLLED_BACK_BY_SQLITE: &str =
    "the transaction was rolled back by SQLite itself (the disk is full or failing)";
const DISK_FAILING: &str = "the disk failed a read or a write";
const SERVER_DISK_FULL: &str = "the database server's disk is full";
const READ_ONLY_SERVER: &str = "the database is read-only (a standby, or a failover under way)";

impl StoreError {
    /// Why the database cannot serve now, when this error is the server's state rather than
    /// a fault of the request or a bug: connections exhausted or lost, the server going
    /// away or read-only, the disk full or failing. The API answers these 503 with
    /// `Retry-After` (clients retry), not 500.
    pub fn unavailable(&self) -> Option<&'static str> {
        use rusqlite::ErrorCode;
        match self {
            StoreError::Database(sqlx::Error::PoolTimedOut) => {
                Some("no database connection came free in time (every one is busy)")
            }
            StoreError::Database(sqlx::Error::Io(_) | sqlx::Error::PoolClosed) => {
                Some("the database cannot be reached")
            }
            StoreError::Database(sqlx::Error::Database(db)) => {
                match db.code().as_deref().unwrap_or_default() {
                    // Not 08P01, a protocol violation: a bug, not the server's state.
                    "08000" | "08001" | "08003" | "08004" | "08006" => {
                        Some("the database cannot be reached")
                    }
                    "57P01" | "57P02" | "57P03" => {
                        Some("the database server is shutting down or starting up")
                    }
                    "53300" => Some("the database server has no connection to spare"),
                    "25006" => {
                        Some("the database is read-only (a standby, or a failover under way)")
                    }
                    "53100" => Some("the database server's disk is full"),
                    _ => None,
                }
            }
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(failure, _)) => match failure.code {
                ErrorCode::DiskFull => Some(DISK_FULL),
                // Only the extended codes of a file's state: plain SQLITE_READONLY is also
                // a reader connection refusing a write (query_only), which is a bug.
                ErrorCode::ReadOnly if failure.extended_code != rusqlite::ffi::SQLITE_READONLY => {
                    Some(READ_ONLY_FILE)
                }
                ErrorCode::SystemIoFailure => Some(DISK_FAILING),
                ErrorCode::CannotOpen => Some("the database file cannot be opened"),
                _ => None,
            },
            // A batched commit's outcome is shared with every write of the batch as SQLite's
            // own message for its error code.
            StoreError::Commit(message) if message.contains("database or disk is full") => {
                Some(DISK_FULL)
            }
            StoreError::Commit(message) if message == ROLLED_BACK_BY_SQLITE => {
                Some(DISK_FULL_OR_FAILING)
            }
            StoreError::Commit(message) if message.contains("disk I/O error") => Some(DISK_FAILING),
            _ => None,
        }
    }
}

/// The newest migration this build knows, which `open` brings a database to.
pub fn schema_version() -> (i64, String) {
    let migrator = sqlx::migrate!("./migrations");
    let last = migrator.iter().last().expect("at least one migration");
    (last.version, last.description.to_string())
}

pub type EditUser<'a> = &'a (dyn Fn(&mut User) -> Result<(), DomainError> + Send + Sync);

pub type EditToken<'a> = &'a (dyn Fn(&mut Token) -> Result<(), DomainError> + Send + Sync);

/// The rules an account token's write must pass, decided on the account as that write's
/// transaction reads it (the account's row held, as a change to memberships holds it): the
/// account with the memberships `focus` names, the token before (none when it is new) and
/// after (none when it is deleted). A change to the writer's rights committed since the
/// request was authorized is seen, not missed.
pub struct TokenRules<'a> {
    pub focus: &'a Focus,
    pub check: &'a TokenCheck<'a>,
}

/// [`TokenRules`]' check: the account, the token before (none when new) and after (none
/// when deleted).
pub type TokenCheck<'a> = dyn Fn(&AccountState, Option<&Token>, Option<&Token>) -> Result<(), DomainError>
    + Send
    + Sync
    + 'a;

pub type Decide<'a> = &'a (dyn Fn(&AccountState) -> Result<Vec<Change>, DomainError> + Send + Sync);

/// What a write did: the state it decided on (before its changes) and the changes, which
/// is all a handler needs to render the result without reading the account again.
#[derive(Debug)]
pub struct Written {
    pub state: AccountState,
    pub changes: Vec<Change>,
}

impl Written {
    /// The membership the write stored (for writes that store one).
    pub fn membership(&self) -> Option<&Membership> {
        self.changes.iter().find_map(|c| match c {
            Change::PutMembership(m) => Some(m),
            _ => None,
        })
    }
}

/// How many console sessions one credential keeps (its newest).
pub const SESSIONS_PER_CREDENTIAL: u32 = 20;

/// A web console sign-in, as kept (see migration 0012): the session id's digest, the
/// credential signed in with as it is compared (a key's user by folded email, and the
/// key's digest; or, with no email, the token's digest), and when it was made and last
/// used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSession {
    pub id_hash: String,
    pub email_folded: Option<String>,
    pub credential_hash: String,
    pub created_on: String,
    pub seen_on: String,
}

/// One page of a user's own memberships, as `GET /memberships` asks for it.
#[derive(Debug, Clone)]
pub struct OwnMembershipQuery {
    pub status: Option<Status>,
    /// Keeps the memberships in accounts of these names (each the whole name, any case).
    pub account_names: Vec<String>,
    pub order: MembershipOrder,
    pub direction: Direction,
    pub page: PageRequest,
}

impl OwnMembershipQuery {
    /// Whether `m` passes the filters.
    pub fn keeps(&self, m: &UserMembership) -> bool {
        self.keeps_row(m.membership.status, &m.account.name)
    }

    pub(crate) fn keeps_row(&self, status: Status, account_name: &str) -> bool {
        self.status.is_none_or(|s| status == s)
            && self
                .account_names
                .iter()
                .all(|n| crate::domain::list::same_name(account_name, n))
    }

    /// The sort key of a membership with this id, status and account name.
    pub(crate) fn key(&self, status: Status, account_name: &str) -> (bool, String) {
        use crate::domain::list::text_key;
        match self.order {
            MembershipOrder::Id => (false, String::new()),
            MembershipOrder::AccountName => text_key(Some(account_name)),
            MembershipOrder::Status => text_key(Some(status.as_str())),
        }
    }

    /// The page of `all` (every membership of the user) this asks for.
    pub fn page_of(&self, all: &[Arc<UserMembership>]) -> Page<Arc<UserMembership>> {
        let kept: Vec<&Arc<UserMembership>> = all.iter().filter(|m| self.keeps(m)).collect();
        let page = crate::domain::list::paginate(
            kept,
            self.page,
            self.direction,
            |m| self.key(m.membership.status, &m.account.name),
            |m| m.membership.id.as_str(),
        );
        Page {
            items: page.items.into_iter().cloned().collect(),
            request: page.request,
            total_count: page.total_count,
        }
    }
}

/// One page of an owner's tokens, as `GET /user/tokens` and `GET /accounts/{id}/tokens` ask
/// for it: by issue time (as written: RFC 3339 in UTC), then by id.
#[derive(Debug, Clone)]
pub struct TokenQuery {
    /// Keeps the tokens expired at `at` too.
    pub include_expired: bool,
    pub at: time::OffsetDateTime,
    pub direction: Direction,
    pub page: PageRequest,
}

impl TokenQuery {
    /// Whether a token passes the filter.
    pub fn keeps(&self, token: &Token) -> bool {
        self.include_expired
            || token.effective_status(self.at) != crate::domain::tokens::TokenStatus::Expired
    }

    /// The page of `all` (every token of the owner) this asks for.
    pub fn page_of(&self, all: Vec<Token>) -> Page<Token> {
        let kept: Vec<Token> = all.into_iter().filter(|t| self.keeps(t)).collect();
        crate::domain::list::paginate(
            kept,
            self.page,
            self.direction,
            |t| t.issued_on.clone(),
            |t| t.id.as_str(),
        )
    }
}

/// One page of an account's members, as `GET /accounts/{id}/members` asks for it.
#[derive(Debug, Clone)]
pub struct MemberQuery {
    pub status: Option<Status>,
    pub order: Option<MemberOrder>,
    pub direction: Direction,
    pub page: PageRequest,
}

/// What a members page needs: the account, its catalog, the caller's own accepted
/// membership (to authorize), and the page, read in one snapshot.
#[derive(Debug)]
pub struct MemberPage {
    pub account: Account,
    pub catalog: Arc<AccountCatalog>,
    pub caller: Option<Membership>,
    pub page: Page<Membership>,
}

/// A user's membership together with the account and catalog needed to show it.
/// `membership.user` is not loaded: it is the caller.
#[derive(Debug, Clone)]
pub struct UserMembership {
    pub account: Account,
    pub membership: Membership,
    pub catalog: Arc<AccountCatalog>,
    /// Its JSON as the API shows it, made by the API once (`api::views`): a function of
    /// the three fields above alone, kept as long as they are (a kept user's memberships
    /// until the next commit). Writing it was a tenth of a one-membership read.
    pub shown: std::sync::OnceLock<Box<serde_json::value::RawValue>>,
    /// [`UserMembership::member_reads`], decided once for the same reason.
    reads: std::sync::OnceLock<bool>,
}

impl UserMembership {
    pub fn new(account: Account, membership: Membership, catalog: Arc<AccountCatalog>) -> Self {
        UserMembership {
            account,
            membership,
            catalog,
            shown: std::sync::OnceLock::new(),
            reads: std::sync::OnceLock::new(),
        }
    }

    /// Whether `caller` (this membership's user) may read the account, as
    /// `AccountCatalog::allows` decides it: `GET /accounts` asks it of each of a user's
    /// memberships, and a kept membership decides the member's part once.
    pub fn readable_by(&self, caller: &crate::domain::Caller) -> bool {
        self.member_reads()
            && caller.token_allows_account(&self.account.id, crate::domain::Need::Read)
    }

    /// Whether the member's own rights let them read the account (a token's limits aside).
    fn member_reads(&self) -> bool {
        *self.reads.get_or_init(|| {
            self.catalog
                .member_allows(&self.account, &self.membership, crate::domain::Need::Read)
        })
    }
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The account, its catalog and the memberships `focus` names, for a read: never every
    /// member unless asked (`Focus::everyone`), so authorizing a caller costs the same in a
    /// 12-member and a 10,000-member account.
    async fn load_account(
        &self,
        id: &Id,
        focus: &Focus,
    ) -> Result<Option<AccountState>, StoreError>;

    /// A page of the account's members, ordered and filtered in the database (so its cost
    /// does not grow with the account), with what authorizing the caller needs.
    async fn member_page(
        &self,
        account: &Id,
        caller_email_folded: Option<&str>,
        query: &MemberQuery,
    ) -> Result<Option<MemberPage>, StoreError>;

    /// A page of a user group's pending and accepted members by email, with what
    /// authorizing the caller needs; its cost does not grow with the account or the group.
    async fn group_member_page(
        &self,
        account: &Id,
        caller_email_folded: Option<&str>,
        query: &GroupMemberQuery,
    ) -> Result<Option<MemberPage>, StoreError>;

    /// Runs `decide` on the account's current state, with the memberships `focus` names,
    /// and applies its changes atomically. A missing account is `NotFound("Account")`.
    async fn write_account(
        &self,
        id: &Id,
        focus: &Focus,
        decide: Decide<'_>,
    ) -> Result<Written, StoreError>;

    /// Inserts a new account with its first member (its creator; fixtures may have none) in
    /// one transaction.
    async fn create_account(
        &self,
        account: &Account,
        owner: Option<&Membership>,
    ) -> Result<(), StoreError>;

    /// Every membership of the user with this folded email, with its account. Shared:
    /// SQLite may answer from a cache that is exact (see `cache/memberships.rs`).
    async fn user_memberships(
        &self,
        email_folded: &str,
    ) -> Result<Arc<Vec<Arc<UserMembership>>>, StoreError>;

    /// One membership of the user with this folded email; another user's is `None`, as a
    /// missing one.
    /// One page of the user's memberships, with their accounts: what the page holds is
    /// read, not every membership of the user (see [`queries::own_membership_page`]).
    async fn user_membership_page(
        &self,
        email_folded: &str,
        query: &OwnMembershipQuery,
    ) -> Result<Page<Arc<UserMembership>>, StoreError>;

    async fn user_membership(
        &self,
        email_folded: &str,
        id: &Id,
    ) -> Result<Option<Arc<UserMembership>>, StoreError>;

    /// The user and their API key hash. This and [`Store::token_by_hash`] may answer from a
    /// cache of a few seconds (see `cache/credentials.rs`); this process's own changes clear it.
    async fn user_by_email(&self, email_folded: &str)
    -> Result<Option<(User, String)>, StoreError>;

    /// Whether the database answers (one statement on a read connection).
    async fn ping(&self) -> Result<(), StoreError>;

    /// The user with this id, if any.
    async fn user(&self, id: &Id) -> Result<Option<User>, StoreError>;

    /// The token with this secret hash and, for a user's token, its user.
    async fn token_by_hash(&self, hash: &str) -> Result<Option<(Token, Option<User>)>, StoreError>;

    /// The tokens of a user or of an account, in no particular order.
    async fn tokens(&self, owner: &Owner) -> Result<Vec<Token>, StoreError>;

    /// One page of them: what the page holds is read, not every token of the owner (see
    /// [`queries::token_page`]).
    async fn token_page(
        &self,
        owner: &Owner,
        query: &TokenQuery,
    ) -> Result<Page<Token>, StoreError>;

    /// Applies `edit` to the owner's token in one transaction and, with `new_hash`, replaces
    /// its secret. Another owner's token is `NotFound("Token")`, as a missing one.
    async fn edit_token(
        &self,
        owner: &Owner,
        id: &Id,
        edit: EditToken<'_>,
        new_hash: Option<&str>,
        rules: Option<TokenRules<'_>>,
    ) -> Result<Token, StoreError>;

    /// Another owner's token is `NotFound("Token")`, as a missing one.
    async fn delete_token(
        &self,
        owner: &Owner,
        id: &Id,
        rules: Option<TokenRules<'_>>,
    ) -> Result<(), StoreError>;

    /// Keeps a console session, and forgets those made before `made_before` (past any
    /// session's absolute expiry) and all but the newest [`SESSIONS_PER_CREDENTIAL`] of
    /// its credential's, so that the table holds only live ones, boundedly many.
    async fn insert_session(
        &self,
        session: &ConsoleSession,
        made_before: &str,
    ) -> Result<(), StoreError>;

    /// The console session with this id digest.
    async fn session(&self, id_hash: &str) -> Result<Option<ConsoleSession>, StoreError>;

    /// Records that the session was used `at` (for its idle expiry).
    async fn touch_session(&self, id_hash: &str, at: &str) -> Result<(), StoreError>;

    /// Ends a session (signing out); ending one that is not there is no error.
    async fn end_session(&self, id_hash: &str) -> Result<(), StoreError>;

    /// Records that the token with this secret hash was used (best effort, outside any
    /// transaction).
    async fn touch_token(&self, hash: &str, at: &str) -> Result<(), StoreError>;

    /// A duplicate email is `Duplicate`.
    async fn insert_user(&self, user: &User, api_key_hash: &str) -> Result<(), StoreError>;

    /// Applies `edit` to the user as stored now, in one transaction, so that concurrent
    /// edits of different fields both stand.
    async fn edit_user(&self, id: &Id, edit: EditUser<'_>) -> Result<User, StoreError>;

    async fn insert_token(
        &self,
        token: &Token,
        hash: &str,
        rules: Option<TokenRules<'_>>,
    ) -> Result<(), StoreError>;

    /// A page of the audit log.
    async fn audit_log(&self, query: &audit::Query) -> Result<Vec<audit::Entry>, StoreError>;

    /// Every row of every table, from one snapshot.
    async fn export(&self) -> Result<export::Export, StoreError>;

    /// Loads an export into this database, which must hold no data yet, in one
    /// transaction: all of it or, when any row is refused, none. With `analyze`, then
    /// gathers the planner's statistics; without, the database is as one grown through the
    /// API (which benchmarks use: every read must plan well without them).
    /// `progress` counts the rows written as they are.
    async fn import(
        &self,
        data: &export::Export,
        analyze: bool,
        progress: &export::Progress,
    ) -> Result<(), StoreError>;

    /// Puts `data` in place of everything the database holds, in one transaction: other
    /// requests, in this process or another, see the state before or after, never between.
    async fn restore(&self, data: &export::Export) -> Result<(), StoreError>;

    /// Its connections and caches now, for `/metrics`.
    fn figures(&self) -> Vec<Figure>;
}

/// One figure of the store for `/metrics`: a gauge (a level now) or a counter (a total
/// since the process started).
#[derive(Debug, Clone)]
pub struct Figure {
    pub name: &'static str,
    pub help: &'static str,
    pub labels: Vec<(&'static str, &'static str)>,
    pub value: u64,
    pub counter: bool,
}

impl Figure {
    pub fn gauge(name: &'static str, help: &'static str, value: u64) -> Figure {
        Figure {
            name,
            help,
            labels: Vec::new(),
            value,
            counter: false,
        }
    }

    pub fn counter(name: &'static str, help: &'static str, value: u64) -> Figure {
        Figure {
            counter: true,
            ..Figure::gauge(name, help, value)
        }
    }

    pub fn label(mut self, name: &'static str, value: &'static str) -> Figure {
        self.labels.push((name, value));
        self
    }
}

/// Runs a write transaction, again while it fails for a reason the backend calls passing
/// (a deadlock), at most `ATTEMPTS` times with a growing, jittered pause so that colliding
/// writers spread out.
pub(crate) async fn with_retries<T, F, Fut>(
    retryable: fn(&StoreError) -> bool,
    mut attempt: F,
) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    const ATTEMPTS: u32 = 12;
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt().await {
            Err(e) if retryable(&e) && tries >= ATTEMPTS => {
                tracing::warn!(tries, error = %e, "giving up on a contended write");
                return Err(StoreError::Contention);
            }
            Err(e) if retryable(&e) => {
                let ceiling = 2u64 << tries.min(8);
                let pause = rand::Rng::random_range(&mut rand::rng(), 1..=ceiling);
                tracing::debug!(tries, pause_ms = pause, "retrying a serialization failure");
                tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
            }
            other => return other,
        }
    }
}

/// Queues this process's PostgreSQL writers per key (an account or user id) so that they
/// take turns for a connection instead of each holding one while the row lock makes it
/// wait. Writers in other processes wait on the row lock itself.
#[derive(Default)]
pub(crate) struct WriteGate {
    turns: std::sync::Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
}

impl WriteGate {
    pub(crate) async fn enter(&self, key: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let turn = {
            let mut turns = self.turns.lock().expect("gate map is never poisoned");
            turns.retain(|_, t| t.strong_count() > 0);
            match turns.get(key).and_then(Weak::upgrade) {
                Some(turn) => turn,
                None => {
                    let turn = Arc::new(tokio::sync::Mutex::new(()));
                    turns.insert(key.to_string(), Arc::downgrade(&turn));
                    turn
                }
            }
        };
        turn.lock_owned().await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::domain::list::PageRequest;
    use crate::domain::testing::{account, user};
    use crate::domain::types::Direction;
    use crate::domain::{Email, Status};

    use super::sqlite::PAGED_IN_MEMORY;

    /// A store on a new file (which goes with the directory) holding one account, made by
    /// its founder.
    async fn founded() -> (
        tempfile::TempDir,
        SqliteStore,
        crate::domain::User,
        crate::domain::Account,
        crate::domain::Membership,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db"), std::time::Duration::ZERO)
            .await
            .unwrap();
        let owner = user("Owner@example.com", false);
        let account = account();
        let founder = account.founding_member(&owner);
        store
            .create_account(&account, Some(&founder))
            .await
            .unwrap();
        (dir, store, owner, account, founder)
    }

    /// `n` pending guests invited with the founder's grants; their membership ids.
    async fn invite_guests(
        store: &SqliteStore,
        account: &crate::domain::Account,
        founder: &crate::domain::Membership,
        n: usize,
    ) -> Vec<Id> {
        let mut invited = Vec::new();
        for i in 0..n {
            let written = store
                .write_account(&account.id, &Focus::everyone(), &|state| {
                    let new = crate::domain::NewMember {
                        email: Email::parse(&format!("guest{i}@example.com"), "email")?,
                        grants: founder.grants.clone(),
                        status: Status::Pending,
                    };
                    Ok(vec![state.invite(new, None, None)?])
                })
                .await
                .unwrap();
            invited.push(written.membership().unwrap().id.clone());
        }
        invited
    }

    /// A page of a user's memberships never reads them all into SQLite's cache: for a user
    /// of thousands, that would be every membership read again after each commit.
    #[tokio::test]
    async fn a_users_page_reads_the_page_not_every_membership() {
        let (_dir, store, owner, _, _) = founded().await;
        for n in 0..(PAGED_IN_MEMORY + 5) {
            let mut account = account();
            account.name = format!("Account {n}");
            let founder = account.founding_member(&owner);
            store
                .create_account(&account, Some(&founder))
                .await
                .unwrap();
        }
        let query = OwnMembershipQuery {
            status: None,
            account_names: Vec::new(),
            order: MembershipOrder::Id,
            direction: Direction::Asc,
            page: PageRequest {
                page: 1,
                per_page: 20,
            },
        };
        conn::RAN.with_borrow_mut(|ran| *ran = Some(Vec::new()));
        for _ in 0..3 {
            let page = store
                .user_membership_page(owner.email.folded(), &query)
                .await
                .unwrap();
            assert_eq!(page.total_count, PAGED_IN_MEMORY + 6);
            assert_eq!(page.items.len(), 20);
        }
        let ran = conn::RAN.with_borrow_mut(Option::take).unwrap();
        let whole = queries::AccountJoin::Keyed.own_memberships();
        assert!(!ran.iter().any(|sql| sql == whole), "{ran:#?}");
        assert_eq!(ran.len(), 3, "one statement a page: {ran:#?}");
    }

    /// A read loads the memberships its focus names and no others: authorizing a caller
    /// in a big account must not cost what the account's size costs.
    #[tokio::test]
    async fn an_account_read_loads_only_the_memberships_it_names() {
        let (_dir, store, owner, account, founder) = founded().await;
        let invited = invite_guests(&store, &account, &founder, 20).await;
        let load = |focus: Focus| {
            let (store, id) = (store.clone(), account.id.clone());
            async move { store.load_account(&id, &focus).await.unwrap().unwrap() }
        };
        let ids = |state: &AccountState| -> Vec<Id> {
            let mut ids: Vec<Id> = state.members.iter().map(|m| m.id.clone()).collect();
            ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
            ids
        };

        assert_eq!(load(Focus::default()).await.members.len(), 0);
        let caller = Focus::default().email(owner.email.folded());
        assert_eq!(ids(&load(caller.clone()).await), vec![founder.id.clone()]);
        let mut both = vec![founder.id.clone(), invited[7].clone()];
        both.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        assert_eq!(ids(&load(caller.member(&invited[7])).await), both);
        assert_eq!(load(Focus::everyone()).await.members.len(), 21);
        let missing = store
            .load_account(&Id::generate(), &Focus::default())
            .await
            .unwrap();
        assert!(missing.is_none());
    }

    /// Every statement an account read runs finds its rows through an index on a database
    /// that never gathered statistics (`ANALYZE`), as every database grown through the API
    /// is: no table is scanned, and an account's memberships are walked only by a members
    /// page, to its page.
    #[tokio::test]
    async fn account_reads_use_their_indexes_without_statistics() {
        let (dir, store, owner, account, founder) = founded().await;
        let last = invite_guests(&store, &account, &founder, 30)
            .await
            .pop()
            .unwrap();
        let inspect = rusqlite::Connection::open(dir.path().join("db")).unwrap();
        let analyzed: i64 = inspect
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name LIKE 'sqlite_stat%'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(analyzed, 0, "the database has no statistics");

        conn::RAN.with_borrow_mut(|ran| *ran = Some(Vec::new()));
        let email = owner.email.folded();
        let id = &account.id;
        let caller = Focus::default().email(email);
        for focus in [
            Focus::default(),
            caller.clone(),
            caller.clone().member(&last),
            caller.member(&founder.id).member(&last),
        ] {
            store.load_account(id, &focus).await.unwrap().unwrap();
        }
        let orders = [
            None,
            Some(MemberOrder::FirstName),
            Some(MemberOrder::LastName),
            Some(MemberOrder::Email),
            Some(MemberOrder::Status),
        ];
        for order in orders {
            for status in [None, Some(Status::Accepted)] {
                for direction in [Direction::Asc, Direction::Desc] {
                    let query = MemberQuery {
                        status,
                        order,
                        direction,
                        page: PageRequest {
                            page: 2,
                            per_page: 5,
                        },
                    };
                    store.member_page(id, Some(email), &query).await.unwrap();
                    store.member_page(id, None, &query).await.unwrap();
                }
            }
        }
        let group = Id::generate();
        store
            .load_account(id, &Focus::default().email(email).group_members(&group))
            .await
            .unwrap()
            .unwrap();
        for (fuzzy, direction) in [
            (None, Direction::Asc),
            (Some("guest1".into()), Direction::Desc),
        ] {
            let query = GroupMemberQuery {
                group: group.clone(),
                fuzzy_email: fuzzy,
                direction,
                page: PageRequest {
                    page: 2,
                    per_page: 5,
                },
            };
            store
                .group_member_page(id, Some(email), &query)
                .await
                .unwrap();
        }
        // Each page for an email never read before: SQLite reads a user's memberships into
        // memory only for one it has seen, and pages those in memory.
        let mut emails = 0;
        for order in [
            MembershipOrder::Id,
            MembershipOrder::Status,
            MembershipOrder::AccountName,
        ] {
            for status in [None, Some(Status::Accepted)] {
                emails += 1;
                let query = OwnMembershipQuery {
                    status,
                    account_names: Vec::new(),
                    order,
                    direction: Direction::Desc,
                    page: PageRequest {
                        page: 2,
                        per_page: 5,
                    },
                };
                store
                    .user_membership_page(&format!("page{emails}@example.com"), &query)
                    .await
                    .unwrap();
            }
        }
        store.user_memberships(email).await.unwrap();
        store.user_membership(email, &founder.id).await.unwrap();
        store.tokens(&Owner::Account(id.clone())).await.unwrap();
        store.tokens(&Owner::User(owner.id.clone())).await.unwrap();
        for owned in [Owner::Account(id.clone()), Owner::User(owner.id.clone())] {
            for include_expired in [false, true] {
                let query = TokenQuery {
                    include_expired,
                    at: time::OffsetDateTime::now_utc(),
                    direction: Direction::Desc,
                    page: PageRequest {
                        page: 2,
                        per_page: 5,
                    },
                };
                store.token_page(&owned, &query).await.unwrap();
            }
        }
        let log = audit::Query::new(audit::Scope::Account(id.clone()), 20);
        store.audit_log(&log).await.unwrap();
        let ran = conn::RAN.with_borrow_mut(Option::take).unwrap();
        assert!(
            ran.len() > 10,
            "the reads ran their statements here: {ran:?}"
        );

        // Tables read whole only through a subquery's own result (`w`, `page`, `counted`,
        // whose one row is a constant's).
        let derived = ["w", "page", "counted", "CONSTANT"];
        let mut statements = ran;
        statements.sort();
        statements.dedup();
        for sql in statements {
            // Parameters left unbound are NULL: plans without statistics do not depend on
            // the values.
            let mut explain = inspect
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap();
            let mut rows = explain.raw_query();
            let mut plan: Vec<String> = Vec::new();
            while let Some(row) = rows.next().unwrap() {
                plan.push(row.get(3).unwrap());
            }
            for step in &plan {
                let scanned = step
                    .strip_prefix("SCAN ")
                    .map(|rest| rest.split(' ').next().unwrap_or_default());
                let scans = scanned.is_some_and(|t| !derived.contains(&t));
                // Only a members page walks the account's memberships, in its order, to
                // its page.
                let pages_account =
                    sql.contains("WHERE m.account_id = $1") && sql.contains("LIMIT");
                let walks_account = step.contains("INDEX memberships_")
                    && step.contains("(account_id=?)")
                    && !pages_account;
                assert!(
                    !scans && !walks_account,
                    "{step}\nin the plan of {sql}:\n{}",
                    plan.join("\n")
                );
            }
        }
    }

    /// A store keeps each account's catalog by its stamp: another store on the same file
    /// (another process) that changes the catalog is seen by the next read, including which
    /// members a new custom role makes administrators, which the read's statement itself
    /// selects by the roles it believes the account has.
    #[tokio::test]
    async fn a_kept_catalog_is_used_only_while_the_account_has_its_stamp() {
        let (dir, writer, _, account, founder) = founded().await;
        let reader = SqliteStore::open(&dir.path().join("db"), std::time::Duration::ZERO)
            .await
            .unwrap();
        let admins = || {
            let (reader, id) = (reader.clone(), account.id.clone());
            async move {
                let state = reader
                    .load_account(&id, &Focus::default().administrators())
                    .await
                    .unwrap()
                    .unwrap();
                let mut emails: Vec<String> = state
                    .members
                    .iter()
                    .map(|m| m.email.folded().to_string())
                    .collect();
                emails.sort();
                (state.catalog.custom_roles.len(), emails)
            }
        };
        assert_eq!(admins().await, (0, vec!["owner@example.com".to_string()]));
        assert_eq!(reader.catalogs.figures()[0].value, 1, "the catalog is kept");

        // Through the other store: a custom role that confers what Super Administrator
        // does, and a member holding only it.
        let super_admin = crate::domain::catalog::builtin_roles()
            .iter()
            .find(|r| r.id.as_str() == crate::domain::catalog::SUPER_ADMINISTRATOR)
            .unwrap()
            .permissions;
        let custom = crate::domain::Role {
            id: Id::generate(),
            name: "Deputy".into(),
            description: "everything".into(),
            permissions: super_admin,
        };
        let deputy = crate::domain::Membership {
            id: Id::generate(),
            email: Email::parse("deputy@example.com", "email").unwrap(),
            grants: crate::domain::Grants::Roles(vec![custom.id.clone()]),
            user: None,
            ..founder.clone()
        };
        writer
            .write_account(&account.id, &Focus::default(), &|_| {
                Ok(vec![
                    Change::PutCustomRole(custom.clone()),
                    Change::PutMembership(deputy.clone()),
                ])
            })
            .await
            .unwrap();
        assert_eq!(
            admins().await,
            (
                1,
                vec![
                    "deputy@example.com".to_string(),
                    "owner@example.com".to_string()
                ]
            )
        );
        // Kept again: the same answer from the kept catalog, counted as a hit.
        let hits = || reader.catalogs.figures()[1].value;
        let before = hits();
        assert_eq!(admins().await.1.len(), 2);
        assert_eq!(hits(), before + 1);
    }

    /// The kept counts behind a members page's `total_count` follow a write that changes a
    /// membership its decision did not read (a fixture naming an id), and one that adds,
    /// changes the status of and removes memberships in one go.
    #[tokio::test]
    async fn member_counts_follow_writes_that_did_not_read_the_membership() {
        let (_dir, store, _, account, founder) = founded().await;
        let totals = || {
            let (store, id) = (store.clone(), account.id.clone());
            async move {
                let mut totals = Vec::new();
                for status in [None, Some(Status::Pending), Some(Status::Accepted)] {
                    let query = MemberQuery {
                        status,
                        order: None,
                        direction: Direction::Asc,
                        page: PageRequest::new(None, None).unwrap(),
                    };
                    let page = store.member_page(&id, None, &query).await.unwrap();
                    totals.push(page.unwrap().page.total_count);
                }
                totals
            }
        };
        assert_eq!(totals().await, vec![1, 0, 1]);
        let guest = |n: usize, status: Status| crate::domain::Membership {
            id: Id::generate(),
            email: Email::parse(&format!("guest{n}@example.com"), "email").unwrap(),
            status,
            user: None,
            ..founder.clone()
        };
        let (first, second) = (guest(1, Status::Pending), guest(2, Status::Pending));
        let put = |changes: Vec<Change>| {
            let (store, id) = (store.clone(), account.id.clone());
            async move {
                store
                    .write_account(&id, &Focus::default(), &|_| Ok(changes.clone()))
                    .await
                    .unwrap();
            }
        };
        put(vec![
            Change::PutMembership(first.clone()),
            Change::PutMembership(second.clone()),
        ])
        .await;
        assert_eq!(totals().await, vec![3, 2, 1]);
        // Neither is in the state the writes decide on: the store asks for their status.
        let accepted = crate::domain::Membership {
            status: Status::Accepted,
            ..first.clone()
        };
        put(vec![Change::PutMembership(accepted)]).await;
        assert_eq!(totals().await, vec![3, 1, 2]);
        put(vec![
            Change::DeleteMembership(second.id.clone()),
            Change::PutMembership(guest(3, Status::Rejected)),
        ])
        .await;
        assert_eq!(totals().await, vec![3, 0, 2]);
    }

    /// PostgreSQL's migrations may differ from SQLite's in their SQL, never in their
    /// versions: an export names one version, which either backend must import.
    #[test]
    fn both_backends_migrate_through_the_same_versions() {
        let versions = |m: sqlx::migrate::Migrator| -> Vec<(i64, String)> {
            m.iter()
                .map(|m| (m.version, m.description.to_string()))
                .collect()
        };
        assert_eq!(
            versions(sqlx::migrate!("./migrations")),
            versions(sqlx::migrate!("./migrations/postgres"))
        );
    }

    #[tokio::test]
    async fn retries_passing_failures_a_bounded_number_of_times() {
        let tries = AtomicU32::new(0);
        let outcome: Result<(), StoreError> = with_retries(
            |_| true,
            || async {
                tries.fetch_add(1, Ordering::SeqCst);
                Err(StoreError::Database(sqlx::Error::PoolTimedOut))
            },
        )
        .await;
        assert!(matches!(outcome, Err(StoreError::Contention)));
        assert_eq!(tries.load(Ordering::SeqCst), 12);
    }

    #[tokio::test]
    async fn other_failures_are_not_retried() {
        let tries = AtomicU32::new(0);
        let outcome: Result<(), StoreError> = with_retries(
            |_| false,
            || async {
                tries.fetch_add(1, Ordering::SeqCst);
                Err(StoreError::Database(sqlx::Error::PoolTimedOut))
            },
        )
        .await;
        assert!(matches!(outcome, Err(StoreError::Database(_))));
        assert_eq!(tries.load(Ordering::SeqCst), 1);
    }
}

#[cfg(test)]
mod unavailable_tests {
    use super::StoreError;

    fn sqlite(code: i32) -> StoreError {
        StoreError::Sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(code),
            None,
        ))
    }

    #[test]
    fn the_servers_state_is_told_apart_from_a_bug() {
        use rusqlite::ffi;
        assert_eq!(
            sqlite(ffi::SQLITE_FULL).unavailable(),
            Some("the disk is full")
        );
        assert_eq!(
            sqlite(ffi::SQLITE_READONLY).unavailable(),
            None,
            "query_only's refusal"
        );
        assert!(sqlite(ffi::SQLITE_READONLY_DBMOVED).unavailable().is_some());
        assert!(
            StoreError::Commit(super::ROLLED_BACK_BY_SQLITE.into())
                .unavailable()
                .is_some()
        );
        assert!(sqlite(ffi::SQLITE_IOERR).unavailable().is_some());
        assert_eq!(sqlite(ffi::SQLITE_CONSTRAINT).unavailable(), None);
        assert_eq!(sqlite(ffi::SQLITE_CORRUPT).unavailable(), None);
        // What SQLite says for SQLITE_FULL, as a batch's shared outcome carries it.
        let full = rusqlite::ffi::Error::new(ffi::SQLITE_FULL).to_string();
        assert_eq!(
            StoreError::Commit(full).unavailable(),
            Some("the disk is full")
        );
        assert!(
            StoreError::Database(sqlx::Error::PoolTimedOut)
                .unavailable()
                .is_some()
        );
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(
            StoreError::Database(sqlx::Error::Io(refused)).unavailable(),
            Some("the database cannot be reached")
        );
        assert_eq!(StoreError::Corrupt("x".into()).unavailable(), None);
        assert_eq!(StoreError::Contention.unavailable(), None);
    }
}
