//! The SQL both backends share. The statements are portable (numbered parameters,
//! `ON CONFLICT`, partial unique indexes), so one body of code serves SQLite and PostgreSQL:
//! [`sql_store!`] stamps out the writes for each backend's sqlx connection type, and the
//! reads come from [`super::queries`]. A backend module supplies only how to open its
//! connections, how to begin a write transaction and which errors are worth retrying.

use crate::store::StoreError;

pub(super) fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

pub(super) fn json<T: serde::de::DeserializeOwned>(raw: &str, what: &str) -> Result<T, StoreError> {
    serde_json::from_str(raw).map_err(|e| corrupt(what, e))
}

pub(super) fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("domain values always serialize")
}

pub(super) const USER_COLUMNS: &str = "u.id AS u_id, u.email AS u_email, u.first_name AS u_first_name, \
    u.last_name AS u_last_name, u.telephone AS u_telephone, u.country AS u_country, \
    u.zipcode AS u_zipcode, u.two_factor AS u_two_factor, u.created_on AS u_created_on, \
    u.modified_on AS u_modified_on";

pub(super) const ACCOUNT_COLUMNS: &str = "a.id AS a_id, a.name AS a_name, a.type AS a_type, \
    a.created_on AS a_created_on, a.enforce_twofactor AS a_enforce_twofactor, \
    a.abuse_contact_email AS a_abuse_contact_email, \
    a.default_nameservers AS a_default_nameservers, \
    a.use_account_custom_ns_by_default AS a_use_account_custom_ns_by_default, \
    a.managed_by AS a_managed_by";

pub(super) const MEMBERSHIP_COLUMNS: &str = "m.id AS m_id, m.account_id AS m_account_id, m.email AS m_email, \
    m.status AS m_status, m.grants AS m_grants, m.code AS m_code, \
    m.api_access_enabled AS m_api_access_enabled, m.created_on AS m_created_on, \
    m.modified_on AS m_modified_on";

pub(super) const TOKEN_COLUMNS: &str = "t.id AS t_id, t.user_id AS t_user_id, t.name AS t_name, \
    t.status AS t_status, t.policies AS t_policies, t.not_before AS t_not_before, \
    t.expires_on AS t_expires_on, t.request_ip AS t_request_ip, t.created_on AS t_created_on, \
    t.modified_on AS t_modified_on, t.last_used_on AS t_last_used_on";

/// An account's memberships with their users; `$1` is the account id.
pub(super) static MEMBERS_OF_ACCOUNT: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| {
        format!(
            "SELECT {MEMBERSHIP_COLUMNS}, {USER_COLUMNS} FROM memberships m \
         LEFT JOIN users u ON u.email_lower = m.email_lower WHERE m.account_id = $1"
        )
    });

/// Selects which accounts' catalogs to load: `$1` is an account id or a folded email.
pub(super) const ONE_ACCOUNT: &str = "account_id = $1";
pub(super) const ACCOUNTS_OF_EMAIL: &str =
    "account_id IN (SELECT account_id FROM memberships WHERE email_lower = $1)";

pub(super) fn unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// The shared store implementation for one backend: `$store` must have `pool`, `gate`
/// and `credentials` fields and `read`, `single`, `snapshot`, `begin_write`,
/// `credentials_changed`, `own_memberships`, `own_membership`, `AFTER_IMPORT`, `COLLATE`,
/// `retryable` and `gate_key` items; `$conn` is the backend's sqlx connection type.
macro_rules! sql_store {
    ($store:ident, $conn:ty) => {
        mod shared {

            use std::sync::Arc;

            use async_trait::async_trait;

            use super::$store;
            use $crate::domain::*;
            use $crate::store::sql::*;
            use $crate::store::queries;
            use $crate::store::export::*;
            use $crate::domain::tokens::Token;
            use $crate::store::{Decide, EditToken, EditUser, MemberPage, MemberQuery, Store, StoreError, UserMembership, Written};

            /// Inserts or updates a membership. An id taken by another account's membership
            /// is refused rather than overwritten.
            async fn put_membership(conn: &mut $conn, m: &Membership) -> Result<(), StoreError> {
                let result = sqlx::query(
                    "INSERT INTO memberships (id, account_id, email, email_lower, status, grants, code, \
                     api_access_enabled, created_on, modified_on) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                     ON CONFLICT (id) DO UPDATE SET email = excluded.email, email_lower = excluded.email_lower, \
                     status = excluded.status, grants = excluded.grants, \
                     api_access_enabled = excluded.api_access_enabled, modified_on = excluded.modified_on \
                     WHERE memberships.account_id = excluded.account_id",
                )
                .bind(m.id.as_str())
                .bind(m.account_id.as_str())
                .bind(m.email.as_str())
                .bind(m.email.folded())
                .bind(m.status.as_str())
                .bind(to_json(&m.grants))
                .bind(&m.code)
                .bind(m.api_access_enabled)
                .bind(&m.created_on)
                .bind(&m.modified_on)
                .execute(&mut *conn)
                .await;
                match result {
                    Err(e) if unique_violation(&e) => {
                        Err(DomainError::AlreadyMember(m.email.as_str().to_string()).into())
                    }
                    Ok(done) if done.rows_affected() == 0 => {
                        Err(DomainError::Duplicate(format!("Membership id {}", m.id)).into())
                    }
                    other => other.map(|_| ()).map_err(Into::into),
                }
            }

            async fn put_account(conn: &mut $conn, a: &Account) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO accounts (id, name, type, created_on, enforce_twofactor, abuse_contact_email, \
                     default_nameservers, use_account_custom_ns_by_default, managed_by) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO UPDATE SET \
                     name = excluded.name, type = excluded.type, enforce_twofactor = excluded.enforce_twofactor, \
                     abuse_contact_email = excluded.abuse_contact_email, \
                     default_nameservers = excluded.default_nameservers, \
                     use_account_custom_ns_by_default = excluded.use_account_custom_ns_by_default, \
                     managed_by = excluded.managed_by",
                )
                .bind(a.id.as_str())
                .bind(&a.name)
                .bind(a.account_type.as_str())
                .bind(&a.created_on)
                .bind(a.settings.enforce_twofactor)
                .bind(&a.settings.abuse_contact_email)
                .bind(a.settings.default_nameservers.as_str())
                .bind(a.settings.use_account_custom_ns_by_default)
                .bind(a.managed_by.as_ref().map(to_json))
                .execute(&mut *conn)
                .await?;
                Ok(())
            }

            async fn apply(
                conn: &mut $conn,
                account_id: &Id,
                change: &Change,
            ) -> Result<(), StoreError> {
                match change {
                    Change::PutMembership(m) => put_membership(conn, m).await?,
                    Change::DeleteMembership(id) => {
                        sqlx::query("DELETE FROM memberships WHERE id = $1 AND account_id = $2")
                            .bind(id.as_str())
                            .bind(account_id.as_str())
                            .execute(&mut *conn)
                            .await?;
                    }
                    Change::PutResourceGroup(g) => {
                        let done = sqlx::query(
                            "INSERT INTO resource_groups (id, account_id, name, scope, meta) VALUES ($1, $2, $3, $4, $5) \
                             ON CONFLICT (id) DO UPDATE SET name = excluded.name, scope = excluded.scope, meta = excluded.meta \
                             WHERE resource_groups.account_id = excluded.account_id",
                        )
                        .bind(g.id.as_str())
                        .bind(account_id.as_str())
                        .bind(&g.name)
                        .bind(to_json(&g.scope))
                        .bind(to_json(&g.meta))
                        .execute(&mut *conn)
                        .await?;
                        if done.rows_affected() == 0 {
                            return Err(DomainError::Duplicate(format!("Resource group id {}", g.id)).into());
                        }
                    }
                    Change::DeleteResourceGroup(id) => {
                        sqlx::query("DELETE FROM resource_groups WHERE id = $1 AND account_id = $2")
                            .bind(id.as_str())
                            .bind(account_id.as_str())
                            .execute(&mut *conn)
                            .await?;
                    }
                    Change::PutAccount(a) => put_account(conn, a).await?,
                    Change::PutCustomRole(r) => {
                        sqlx::query(
                            "INSERT INTO account_roles (account_id, id, name, description, permissions) \
                             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (account_id, id) DO UPDATE SET \
                             name = excluded.name, description = excluded.description, permissions = excluded.permissions",
                        )
                        .bind(account_id.as_str())
                        .bind(r.id.as_str())
                        .bind(&r.name)
                        .bind(&r.description)
                        .bind(to_json(&r.permissions))
                        .execute(&mut *conn)
                        .await?;
                    }
                }
                Ok(())
            }

            /// A row the database refuses (a duplicate id or email, a second live membership,
            /// a reference to nothing) names the table and row; other errors pass through.
            fn refused(table: &str, id: &str, e: sqlx::Error) -> StoreError {
                match &e {
                    sqlx::Error::Database(d)
                        if d.is_unique_violation() || d.is_foreign_key_violation() || d.is_check_violation() =>
                    {
                        StoreError::Import(format!("{table}[{id}]: {}", d.message()))
                    }
                    _ => e.into(),
                }
            }

            type Db = <$conn as sqlx::Connection>::Database;

            /// Inserts `rows` into `table` many to a statement: a row per statement made a
            /// million-user import take minutes, a round trip each. A statement the
            /// database refuses is replayed row by row (under savepoints, as PostgreSQL
            /// aborts a transaction at its first error) to name the row it refuses.
            async fn insert_all<T>(
                conn: &mut $conn,
                table: &str,
                columns: &str,
                rows: &[T],
                id: fn(&T) -> &str,
                bind: fn(&mut sqlx::query_builder::Separated<'_, Db, &'static str>, &T),
            ) -> Result<(), StoreError> {
                // Within both backends' limits on parameters a statement (12 columns here
                // at most: 6,000 of SQLite's 32,766).
                const ROWS: usize = 500;
                let statement = |chunk: &[T]| {
                    let mut q = sqlx::QueryBuilder::<Db>::new(format!("INSERT INTO {table} ({columns}) "));
                    q.push_values(chunk, |mut b, row| bind(&mut b, row));
                    q
                };
                for chunk in rows.chunks(ROWS) {
                    let mut savepoint = sqlx::Connection::begin(&mut *conn).await?;
                    let mut q = statement(chunk);
                    let first = match q.build().execute(&mut *savepoint).await {
                        Ok(_) => {
                            savepoint.commit().await?;
                            continue;
                        }
                        Err(e) => e,
                    };
                    savepoint.rollback().await?;
                    for row in chunk {
                        let mut savepoint = sqlx::Connection::begin(&mut *conn).await?;
                        let mut q = statement(std::slice::from_ref(row));
                        let one = q.build().execute(&mut *savepoint).await;
                        if let Err(e) = one {
                            return Err(refused(table, id(row), e));
                        }
                        savepoint.commit().await?;
                    }
                    return Err(first.into());
                }
                Ok(())
            }

            /// Inserts every row, parents before children, as stored.
            async fn insert_rows(conn: &mut $conn, data: &Export) -> Result<(), StoreError> {
                insert_all(
                    conn,
                    "users",
                    "id, email, email_lower, first_name, last_name, telephone, country, zipcode, \
                     two_factor, api_key_hash, created_on, modified_on",
                    &data.users,
                    |u| &u.id,
                    |b, u| {
                        b.push_bind(&u.id).push_bind(&u.email).push_bind(&u.email_lower)
                            .push_bind(&u.first_name).push_bind(&u.last_name).push_bind(&u.telephone)
                            .push_bind(&u.country).push_bind(&u.zipcode).push_bind(u.two_factor)
                            .push_bind(&u.api_key_hash).push_bind(&u.created_on).push_bind(&u.modified_on);
                    },
                )
                .await?;
                insert_all(
                    conn,
                    "accounts",
                    "id, name, type, created_on, enforce_twofactor, abuse_contact_email, \
                     default_nameservers, use_account_custom_ns_by_default, managed_by",
                    &data.accounts,
                    |a| &a.id,
                    |b, a| {
                        b.push_bind(&a.id).push_bind(&a.name).push_bind(&a.account_type)
                            .push_bind(&a.created_on).push_bind(a.enforce_twofactor)
                            .push_bind(&a.abuse_contact_email).push_bind(&a.default_nameservers)
                            .push_bind(a.use_account_custom_ns_by_default).push_bind(&a.managed_by);
                    },
                )
                .await?;
                insert_all(
                    conn,
                    "account_roles",
                    "account_id, id, name, description, permissions",
                    &data.account_roles,
                    |r| &r.id,
                    |b, r| {
                        b.push_bind(&r.account_id).push_bind(&r.id).push_bind(&r.name)
                            .push_bind(&r.description).push_bind(&r.permissions);
                    },
                )
                .await?;
                insert_all(
                    conn,
                    "resource_groups",
                    "id, account_id, name, scope, meta",
                    &data.resource_groups,
                    |g| &g.id,
                    |b, g| {
                        b.push_bind(&g.id).push_bind(&g.account_id).push_bind(&g.name)
                            .push_bind(&g.scope).push_bind(&g.meta);
                    },
                )
                .await?;
                insert_all(
                    conn,
                    "memberships",
                    "id, account_id, email, email_lower, status, grants, code, api_access_enabled, \
                     created_on, modified_on",
                    &data.memberships,
                    |m| &m.id,
                    |b, m| {
                        b.push_bind(&m.id).push_bind(&m.account_id).push_bind(&m.email)
                            .push_bind(&m.email_lower).push_bind(&m.status).push_bind(&m.grants)
                            .push_bind(&m.code).push_bind(m.api_access_enabled)
                            .push_bind(&m.created_on).push_bind(&m.modified_on);
                    },
                )
                .await?;
                insert_all(
                    conn,
                    "tokens",
                    "id, user_id, name, token_hash, status, policies, not_before, expires_on, \
                     request_ip, created_on, modified_on, last_used_on",
                    &data.tokens,
                    |t| &t.id,
                    |b, t| {
                        b.push_bind(&t.id).push_bind(&t.user_id).push_bind(&t.name)
                            .push_bind(&t.token_hash).push_bind(&t.status).push_bind(&t.policies)
                            .push_bind(&t.not_before).push_bind(&t.expires_on).push_bind(&t.request_ip)
                            .push_bind(&t.created_on).push_bind(&t.modified_on).push_bind(&t.last_used_on);
                    },
                )
                .await?;
                Ok(())
            }

            #[async_trait]
            impl Store for $store {
                async fn load_account(&self, id: &Id, focus: &Focus) -> Result<Option<AccountState>, StoreError> {
                    queries::load_focused(&mut *self.read().await?, id, focus).await
                }

                async fn member_page(
                    &self,
                    account: &Id,
                    caller_email_folded: &str,
                    query: &MemberQuery,
                ) -> Result<Option<MemberPage>, StoreError> {
                    let mut conn = self.read().await?;
                    queries::member_page(&mut *conn, Self::COLLATE, account, caller_email_folded, query).await
                }

                async fn write_account(
                    &self,
                    id: &Id,
                    focus: &Focus,
                    decide: Decide<'_>,
                ) -> Result<Written, StoreError> {
                    let _turn = self.gate.enter(Self::gate_key(id.as_str())).await;
                    $crate::store::with_retries(Self::retryable, || async {
                        let mut tx = self.begin_write().await?;
                        let state = queries::load_focused(&mut *tx, id, focus)
                            .await?
                            .ok_or(DomainError::NotFound("Account"))?;
                        let changes = decide(&state)?;
                        for change in &changes {
                            apply(&mut tx, id, change).await?;
                        }
                        tx.commit().await?;
                        Ok(Written { state, changes })
                    })
                    .await
                }

                async fn create_account(
                    &self,
                    account: &Account,
                    owner: Option<&Membership>,
                ) -> Result<(), StoreError> {
                    let _turn = self.gate.enter(Self::gate_key(account.id.as_str())).await;
                    $crate::store::with_retries(Self::retryable, || async {
                        let mut tx = self.begin_write().await?;
                        let exists = sqlx::query("SELECT 1 FROM accounts WHERE id = $1")
                            .bind(account.id.as_str())
                            .fetch_optional(&mut *tx)
                            .await?;
                        if exists.is_some() {
                            return Err(DomainError::Duplicate(format!("Account {}", account.id)).into());
                        }
                        put_account(&mut tx, account).await?;
                        if let Some(owner) = owner {
                            put_membership(&mut tx, owner).await?;
                        }
                        tx.commit().await?;
                        Ok(())
                    })
                    .await
                }

                async fn user_memberships(
                    &self,
                    email_folded: &str,
                ) -> Result<Arc<Vec<UserMembership>>, StoreError> {
                    self.own_memberships(email_folded).await
                }

                async fn user_membership(
                    &self,
                    email_folded: &str,
                    id: &Id,
                ) -> Result<Option<UserMembership>, StoreError> {
                    self.own_membership(email_folded, id).await
                }

                async fn user_by_email(
                    &self,
                    email_folded: &str,
                ) -> Result<Option<(User, String)>, StoreError> {
                    let lookup = match self.credentials.key(email_folded) {
                        Ok(found) => return Ok(Some(found)),
                        Err(lookup) => lookup,
                    };
                    let found = queries::user_by_email(&mut *self.single().await?, email_folded).await?;
                    if let Some(found) = &found {
                        self.credentials.keep_key(lookup, email_folded, found);
                    }
                    Ok(found)
                }

                async fn token_by_hash(&self, hash: &str) -> Result<Option<(Token, User)>, StoreError> {
                    let lookup = match self.credentials.token(hash) {
                        Ok(found) => return Ok(Some(found)),
                        Err(lookup) => lookup,
                    };
                    let found = queries::token_by_hash(&mut *self.single().await?, hash).await?;
                    if let Some(found) = &found {
                        self.credentials.keep_token(lookup, hash, found);
                    }
                    Ok(found)
                }

                async fn user_tokens(&self, user: &Id) -> Result<Vec<Token>, StoreError> {
                    queries::user_tokens(&mut *self.single().await?, user).await
                }

                async fn edit_token(
                    &self,
                    user: &Id,
                    id: &Id,
                    edit: EditToken<'_>,
                    new_hash: Option<&str>,
                ) -> Result<Token, StoreError> {
                    let _turn = self.gate.enter(Self::gate_key(user.as_str())).await;
                    $crate::store::with_retries(Self::retryable, || async {
                        let mut tx = self.begin_write().await?;
                        let mut token = queries::fetch_token(&mut *tx, user, id)
                            .await?
                            .ok_or(DomainError::NotFound("Token"))?;
                        edit(&mut token)?;
                        sqlx::query(
                            "UPDATE tokens SET name = $2, status = $3, policies = $4, not_before = $5, \
                             expires_on = $6, request_ip = $7, modified_on = $8, \
                             token_hash = COALESCE($9, token_hash) WHERE id = $1",
                        )
                        .bind(token.id.as_str())
                        .bind(&token.name)
                        .bind(token.status.as_str())
                        .bind(to_json(&token.policies))
                        .bind(&token.not_before)
                        .bind(&token.expires_on)
                        .bind(token.request_ip.as_ref().map(to_json))
                        .bind(&token.modified_on)
                        .bind(new_hash)
                        .execute(&mut *tx)
                        .await?;
                        tx.commit().await?;
                        self.credentials_changed().await;
                        Ok(token)
                    })
                    .await
                }

                async fn delete_token(&self, user: &Id, id: &Id) -> Result<(), StoreError> {
                    let done = sqlx::query("DELETE FROM tokens WHERE id = $1 AND user_id = $2")
                        .bind(id.as_str())
                        .bind(user.as_str())
                        .execute(&self.pool)
                        .await?;
                    self.credentials_changed().await;
                    if done.rows_affected() == 0 {
                        return Err(DomainError::NotFound("Token").into());
                    }
                    Ok(())
                }

                async fn touch_token(&self, hash: &str, at: &str) -> Result<(), StoreError> {
                    sqlx::query("UPDATE tokens SET last_used_on = $2 WHERE token_hash = $1")
                        .bind(hash)
                        .bind(at)
                        .execute(&self.pool)
                        .await?;
                    self.credentials.touched(hash, at);
                    Ok(())
                }

                async fn insert_user(&self, user: &User, api_key_hash: &str) -> Result<(), StoreError> {
                    let result = sqlx::query(
                        "INSERT INTO users (id, email, email_lower, first_name, last_name, telephone, country, \
                         zipcode, two_factor, api_key_hash, created_on, modified_on) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                    )
                    .bind(user.id.as_str())
                    .bind(user.email.as_str())
                    .bind(user.email.folded())
                    .bind(&user.first_name)
                    .bind(&user.last_name)
                    .bind(&user.telephone)
                    .bind(&user.country)
                    .bind(&user.zipcode)
                    .bind(user.two_factor_authentication_enabled)
                    .bind(api_key_hash)
                    .bind(&user.created_on)
                    .bind(&user.modified_on)
                    .execute(&self.pool)
                    .await;
                    match result {
                        Err(e) if unique_violation(&e) => {
                            Err(DomainError::Duplicate(format!("User {}", user.email.as_str())).into())
                        }
                        other => other.map(|_| ()).map_err(Into::into),
                    }
                }

                async fn edit_user(&self, id: &Id, edit: EditUser<'_>) -> Result<User, StoreError> {
                    let _turn = self.gate.enter(Self::gate_key(id.as_str())).await;
                    $crate::store::with_retries(Self::retryable, || async {
                        let mut tx = self.begin_write().await?;
                        let mut user = queries::fetch_user(&mut *tx, id)
                            .await?
                            .ok_or(DomainError::NotFound("User"))?;
                        edit(&mut user)?;
                        sqlx::query(
                            "UPDATE users SET first_name = $2, last_name = $3, telephone = $4, country = $5, \
                             zipcode = $6, two_factor = $7, modified_on = $8 WHERE id = $1",
                        )
                        .bind(user.id.as_str())
                        .bind(&user.first_name)
                        .bind(&user.last_name)
                        .bind(&user.telephone)
                        .bind(&user.country)
                        .bind(&user.zipcode)
                        .bind(user.two_factor_authentication_enabled)
                        .bind(&user.modified_on)
                        .execute(&mut *tx)
                        .await?;
                        tx.commit().await?;
                        self.credentials_changed().await;
                        Ok(user)
                    })
                    .await
                }

                async fn insert_token(&self, token: &Token, hash: &str) -> Result<(), StoreError> {
                    sqlx::query(
                        "INSERT INTO tokens (id, user_id, name, token_hash, status, policies, not_before, \
                         expires_on, request_ip, created_on, modified_on, last_used_on) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                    )
                    .bind(token.id.as_str())
                    .bind(token.user_id.as_str())
                    .bind(&token.name)
                    .bind(hash)
                    .bind(token.status.as_str())
                    .bind(to_json(&token.policies))
                    .bind(&token.not_before)
                    .bind(&token.expires_on)
                    .bind(token.request_ip.as_ref().map(to_json))
                    .bind(&token.issued_on)
                    .bind(&token.modified_on)
                    .bind(&token.last_used_on)
                    .execute(&self.pool)
                    .await?;
                    Ok(())
                }

                async fn export(&self) -> Result<Export, StoreError> {
                    let mut tx = self.snapshot().await?;
                    let mut data = Export {
                        format: FORMAT.to_string(),
                        version: $crate::store::schema_version().0,
                        users: sqlx::query_as("SELECT * FROM users").fetch_all(&mut *tx).await?,
                        accounts: sqlx::query_as("SELECT * FROM accounts").fetch_all(&mut *tx).await?,
                        account_roles: sqlx::query_as("SELECT * FROM account_roles").fetch_all(&mut *tx).await?,
                        resource_groups: sqlx::query_as("SELECT * FROM resource_groups").fetch_all(&mut *tx).await?,
                        memberships: sqlx::query_as("SELECT * FROM memberships").fetch_all(&mut *tx).await?,
                        tokens: sqlx::query_as("SELECT * FROM tokens").fetch_all(&mut *tx).await?,
                    };
                    data.sort();
                    Ok(data)
                }

                async fn import(&self, data: &Export) -> Result<(), StoreError> {
                    data.check().map_err(StoreError::Import)?;
                    $crate::store::with_retries(Self::retryable, || async {
                        let mut tx = self.begin_write().await?;
                        let held: i64 = sqlx::query_scalar(
                            "SELECT (SELECT COUNT(*) FROM users) + (SELECT COUNT(*) FROM accounts) \
                             + (SELECT COUNT(*) FROM tokens)",
                        )
                        .fetch_one(&mut *tx)
                        .await?;
                        if held > 0 {
                            return Err(StoreError::Import(
                                "the database already holds users or accounts; import into a new, empty database".into(),
                            ));
                        }
                        insert_rows(&mut tx, data).await?;
                        tx.commit().await?;
                        self.credentials_changed().await;
                        Ok(())
                    })
                    .await?;
                    sqlx::query(Self::AFTER_IMPORT).execute(&self.pool).await?;
                    Ok(())
                }
            }
        }
    };
}

pub(super) use sql_store;
