//! Persistence: the one [`Store`] trait the API talks to, and its backends. A write is a
//! closure over the account's state, run inside one transaction: the store loads the
//! state, the domain decides the [`Change`]s, the store applies them and commits. Unique
//! indexes back up the rules (one live membership per account and email).

mod postgres;
mod sql;
mod sqlite;

use async_trait::async_trait;

use crate::domain::{
    Account, AccountCatalog, AccountState, Change, DomainError, Id, Membership, User,
};

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

pub type Decide<'a> = &'a (dyn Fn(&AccountState) -> Result<Vec<Change>, DomainError> + Send + Sync);

/// A user's membership together with the account and catalog needed to show it.
#[derive(Debug, Clone)]
pub struct UserMembership {
    pub account: Account,
    pub membership: Membership,
    pub catalog: AccountCatalog,
}

#[derive(Debug, Clone)]
pub struct Token {
    pub id: Id,
    pub user_id: Id,
    pub name: String,
    pub permission_groups: Vec<Id>,
    pub status: String,
    pub expires_on: Option<String>,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    async fn load_account(&self, id: &Id) -> Result<Option<AccountState>, StoreError>;

    /// Runs `decide` on the account's current state and applies its changes atomically.
    /// Returns the applied changes; a missing account is `NotFound("Account")`.
    async fn write_account(&self, id: &Id, decide: Decide<'_>) -> Result<Vec<Change>, StoreError>;

    /// Inserts a new account with its first member (its creator; fixtures may have none) in
    /// one transaction.
    async fn create_account(
        &self,
        account: &Account,
        owner: Option<&Membership>,
    ) -> Result<(), StoreError>;

    /// Every membership of the user with this folded email, with its account.
    async fn user_memberships(&self, email_folded: &str)
    -> Result<Vec<UserMembership>, StoreError>;

    /// The user and their API key hash.
    async fn user_by_email(&self, email_folded: &str)
    -> Result<Option<(User, String)>, StoreError>;

    async fn token_by_hash(&self, hash: &str) -> Result<Option<(Token, User)>, StoreError>;

    /// A duplicate email is `Duplicate`.
    async fn insert_user(&self, user: &User, api_key_hash: &str) -> Result<(), StoreError>;

    async fn update_user(&self, user: &User) -> Result<(), StoreError>;

    async fn insert_token(
        &self,
        token: &Token,
        hash: &str,
        created_on: &str,
    ) -> Result<(), StoreError>;
}

/// Runs a write transaction, again while it fails for a reason the backend calls passing
/// (a serialization failure under SERIALIZABLE isolation), at most `ATTEMPTS` times with a
/// growing, jittered pause so that colliding writers spread out.
pub(crate) async fn with_retries<T, F, Fut>(
    retryable: fn(&sqlx::Error) -> bool,
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
            Err(StoreError::Database(e)) if tries < ATTEMPTS && retryable(&e) => {
                let ceiling = 2u64 << tries.min(8);
                let pause = rand::Rng::random_range(&mut rand::rng(), 1..=ceiling);
                tracing::debug!(tries, pause_ms = pause, "retrying a serialization failure");
                tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
            }
            other => return other,
        }
    }
}
