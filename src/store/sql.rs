//! The store, written once for both backends: [`SqlStore`] runs the shared SQL (portable:
//! numbered parameters, `ON CONFLICT`, partial unique indexes) over a [`Backend`], which
//! says only how to get a connection, how to begin and commit a write and what it locks,
//! and what the backend adds (SQLite's membership cache, PostgreSQL's announcements).
//! The reads themselves are in [`super::queries`]; what a write does to the rows (a change
//! applied, its audit entries, the member counts) in [`super::writes`].

use std::ops::DerefMut;
use std::sync::Arc;

use async_trait::async_trait;

use super::cache::catalogs::Catalogs;
use super::cache::credentials::Credentials;
use super::conn::{Arg, Conn};
use super::export::{Export, FORMAT, Progress, Row};
use super::queries::{self, AccountJoin};
use super::writes::{
    CountChange, Violation, apply, changes_catalog, count_changes, count_members, count_slot,
    put_account, put_membership, record, unique_violation, violation,
};
use super::{
    ConsoleSession, Decide, EditToken, EditUser, MemberPage, MemberQuery, OwnMembershipQuery,
    Store, StoreError, TokenQuery, UserMembership, Written,
};
use crate::domain::audit;
use crate::domain::list::Page;
use crate::domain::tokens::{Owner, Token};
use crate::domain::*;

pub(super) fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

pub(super) fn json<T: serde::de::DeserializeOwned>(raw: &str, what: &str) -> Result<T, StoreError> {
    serde_json::from_str(raw).map_err(|e| corrupt(what, e))
}

pub(super) fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("domain values always serialize")
}

impl<'a> From<&'a Id> for Arg<'a> {
    fn from(id: &'a Id) -> Self {
        Arg::Text(Some(id.as_str()))
    }
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
    a.managed_by AS a_managed_by, a.catalog_stamp AS a_catalog_stamp";

pub(super) const MEMBERSHIP_COLUMNS: &str = "m.id AS m_id, m.account_id AS m_account_id, m.email AS m_email, \
    m.status AS m_status, m.grants AS m_grants, m.code AS m_code, \
    m.api_access_enabled AS m_api_access_enabled, m.created_on AS m_created_on, \
    m.modified_on AS m_modified_on, m.group_ids AS m_group_ids";

pub(super) const TOKEN_COLUMNS: &str = "t.id AS t_id, t.user_id AS t_user_id, \
    t.account_id AS t_account_id, t.creator_email AS t_creator_email, t.name AS t_name, \
    t.status AS t_status, t.policies AS t_policies, t.not_before AS t_not_before, \
    t.expires_on AS t_expires_on, t.request_ip AS t_request_ip, t.created_on AS t_created_on, \
    t.modified_on AS t_modified_on, t.last_used_on AS t_last_used_on";

/// What a write transaction holds until it ends, beside the rows it writes. Rules that
/// span rows (the last administrator, one live membership per email) are decided on what
/// the transaction read, so a writer that could change those rows must wait its turn.
#[derive(Debug, Clone, Copy)]
pub enum Lock<'a> {
    /// The account: its row, and through it its memberships, roles and groups.
    Account(&'a Id),
    /// The user: their row, and through it their tokens.
    User(&'a Id),
    /// Nothing beyond the rows written: one statement that decides nothing.
    Rows,
    /// Every table, for an import into an empty database.
    Everything,
    /// Nothing: reads only, all from one snapshot (an export).
    Snapshot,
}

impl<'a> Lock<'a> {
    /// What a token's owner's rows are locked through: the user's row or the account's.
    fn owner(owner: &'a Owner) -> Lock<'a> {
        match owner {
            Owner::User(user) => Lock::User(user),
            Owner::Account(account) => Lock::Account(account),
        }
    }
}

/// What a database engine must provide for [`SqlStore`]. Each backend's module doc says
/// what its connections, transactions and locks are; `super` has the table.
pub trait Backend: Send + Sync + 'static {
    /// A connection for a read of one statement.
    type Single: DerefMut<Target: Conn + Sized> + Send;
    /// A connection for a read of several statements.
    type Snapshot: DerefMut<Target: Conn + Sized> + Send;
    /// A transaction; dropped without [`Backend::commit`], it is rolled back.
    type Tx: DerefMut<Target: Conn + Sized> + Send;

    /// Written after a text expression to sort it bytewise, as Rust's `str` does.
    const COLLATE: &'static str;

    /// How a statement reaches a membership's account (see [`AccountJoin`]).
    const ACCOUNT_JOIN: AccountJoin;

    /// An expression giving each row a new random catalog stamp (see `cache/catalogs.rs`).
    const NEW_STAMP: &'static str;

    fn single(&self) -> impl Future<Output = Result<Self::Single, StoreError>> + Send;

    fn snapshot(&self) -> impl Future<Output = Result<Self::Snapshot, StoreError>> + Send;

    fn begin(&self, lock: Lock<'_>) -> impl Future<Output = Result<Self::Tx, StoreError>> + Send;

    fn commit(&self, tx: Self::Tx) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Whether a failed write did nothing and is worth trying again.
    fn retryable(e: &StoreError) -> bool;

    /// Tells other processes sharing the database that users or tokens changed, where the
    /// backend can.
    fn announce_credentials(&self) -> impl Future<Output = ()> + Send;

    /// The figures of its connections (and caches of its own), for `/metrics`.
    fn figures(&self) -> Vec<super::Figure>;

    /// What the database needs after an import: the rows on disk and, with `analyze`,
    /// statistics for the planner.
    fn after_import(&self, analyze: bool) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Every membership of the user with this folded email, with its account.
    fn own_memberships(
        &self,
        catalogs: &Catalogs,
        email_folded: &str,
    ) -> impl Future<Output = Result<Arc<Vec<Arc<UserMembership>>>, StoreError>> + Send {
        async move {
            let mut conn = self.single().await?;
            let found =
                queries::user_memberships(&mut *conn, catalogs, Self::ACCOUNT_JOIN, email_folded)
                    .await?;
            Ok(Arc::new(found))
        }
    }

    /// One page of the memberships of the user with this folded email.
    fn own_membership_page(
        &self,
        catalogs: &Catalogs,
        email_folded: &str,
        query: &OwnMembershipQuery,
    ) -> impl Future<Output = Result<Page<Arc<UserMembership>>, StoreError>> + Send {
        async move {
            let mut conn = self.single().await?;
            queries::own_membership_page(
                &mut *conn,
                catalogs,
                Self::ACCOUNT_JOIN,
                email_folded,
                query,
            )
            .await
        }
    }

    fn own_membership(
        &self,
        catalogs: &Catalogs,
        email_folded: &str,
        id: &Id,
    ) -> impl Future<Output = Result<Option<Arc<UserMembership>>, StoreError>> + Send {
        async move {
            let mut conn = self.single().await?;
            queries::user_membership(&mut *conn, catalogs, Self::ACCOUNT_JOIN, email_folded, id)
                .await
        }
    }
}

/// The [`Store`] over one backend, with the credentials cache in front of its user and
/// token lookups (see `cache/credentials.rs`) and the accounts' catalogs (`cache/catalogs.rs`).
#[derive(Clone)]
pub struct SqlStore<B> {
    pub(super) backend: B,
    pub(super) credentials: Arc<Credentials>,
    pub(super) catalogs: Arc<Catalogs>,
}

impl<B> SqlStore<B> {
    /// `credentials` is shared with whatever clears it from outside (PostgreSQL's
    /// announcements).
    pub(super) fn new(backend: B, credentials: Arc<Credentials>) -> Self {
        SqlStore {
            backend,
            credentials,
            catalogs: Arc::default(),
        }
    }
}

/// A table's columns, from its row type (see `export.rs`), which goes to and from the
/// database through its serde form: these tables hold text and booleans only, which is what
/// [`Cols::value`] and [`Arg`] carry; and which of them are booleans.
struct Table {
    name: &'static str,
    columns: Vec<String>,
    flags: Vec<String>,
}

impl Table {
    fn of<R: Row>() -> Table {
        let sample = serde_json::to_value(R::default()).expect("export rows serialize");
        let fields = sample.as_object().expect("export rows are structs");
        Table {
            name: R::TABLE,
            columns: fields.keys().cloned().collect(),
            flags: fields
                .iter()
                .filter(|(name, value)| {
                    value.is_boolean() || R::NULLABLE_FLAGS.contains(&name.as_str())
                })
                .map(|(name, _)| name.clone())
                .collect(),
        }
    }
}

/// A column's value as a statement parameter.
fn arg(value: &serde_json::Value, flag: bool) -> Arg<'_> {
    match value {
        serde_json::Value::String(text) => Arg::Text(Some(text)),
        serde_json::Value::Bool(flag) => Arg::Flag(Some(*flag)),
        _ if flag => Arg::Flag(None),
        _ => Arg::Text(None),
    }
}

impl Table {
    async fn read_all<R: Row>(conn: &mut impl Conn) -> Result<Vec<R>, StoreError> {
        let table = Table::of::<R>();
        let sql = format!("SELECT {} FROM {}", table.columns.join(", "), table.name);
        conn.rows(&sql, &[], |row| {
            let fields = table
                .columns
                .iter()
                .map(|c| Ok((c.to_string(), row.value(c)?)))
                .collect::<Result<serde_json::Map<_, _>, StoreError>>()?;
            serde_json::from_value(fields.into()).map_err(|e| corrupt(table.name, e))
        })
        .await
    }

    /// Inserts `rows` many to a statement: a row per statement made a million-user import
    /// take minutes. A statement the database refuses is replayed row by row, each under a
    /// savepoint (PostgreSQL aborts a transaction at its first error), to name the row.
    async fn insert_all<R: Row>(
        conn: &mut impl Conn,
        rows: &[R],
        progress: &Progress,
    ) -> Result<(), StoreError> {
        let table = &Table::of::<R>();
        // Within both backends' limits on parameters a statement (12 columns here at most:
        // 6,000 of SQLite's 32,766).
        const ROWS: usize = 500;
        let width = table.columns.len();
        let statement = |count: usize| {
            let values: Vec<String> = (0..count)
                .map(|r| {
                    let row: Vec<String> =
                        (1..=width).map(|c| format!("${}", r * width + c)).collect();
                    format!("({})", row.join(", "))
                })
                .collect();
            format!(
                "INSERT INTO {} ({}) VALUES {}",
                table.name,
                table.columns.join(", "),
                values.join(", ")
            )
        };
        let fields = |row: &R| serde_json::to_value(row).expect("export rows serialize");
        fn args<'f>(table: &Table, fields: &'f [serde_json::Value]) -> Vec<Arg<'f>> {
            let column = |f: &'f serde_json::Value, c: &String| arg(&f[c], table.flags.contains(c));
            fields
                .iter()
                .flat_map(|f| table.columns.iter().map(move |c| column(f, c)))
                .collect()
        }
        for chunk in rows.chunks(ROWS) {
            let chunk: Vec<serde_json::Value> = chunk.iter().map(fields).collect();
            conn.execute("SAVEPOINT chunk", &[]).await?;
            let first = match conn
                .execute(&statement(chunk.len()), &args(table, &chunk))
                .await
            {
                Ok(_) => {
                    conn.execute("RELEASE SAVEPOINT chunk", &[]).await?;
                    progress.add(chunk.len());
                    continue;
                }
                Err(e) => e,
            };
            conn.execute("ROLLBACK TO SAVEPOINT chunk", &[]).await?;
            for row in &chunk {
                let one = std::slice::from_ref(row);
                if let Err(e) = conn.execute(&statement(1), &args(table, one)).await {
                    return Err(match violation(&e) {
                        Some(v) => StoreError::Import(format!(
                            "{}[{}]: {}",
                            table.name,
                            row["id"].as_str().unwrap_or_default(),
                            v.message
                        )),
                        None => e,
                    });
                }
            }
            return Err(first);
        }
        Ok(())
    }
}

impl<B: Backend> SqlStore<B> {
    /// Writes an export's rows in one transaction: into an empty database, or (`replace`)
    /// in place of everything the database holds.
    async fn load(
        &self,
        data: &Export,
        replace: bool,
        progress: &Progress,
    ) -> Result<(), StoreError> {
        data.check().map_err(StoreError::Import)?;
        super::with_retries(B::retryable, || async {
            progress.restart();
            let mut tx = self.backend.begin(Lock::Everything).await?;
            let conn = &mut *tx;
            if replace {
                // Children before parents.
                for table in ["audit_logs", "tokens", "memberships", "user_groups", "resource_groups", "account_roles", "accounts", "users"] {
                    conn.execute(&format!("DELETE FROM {table}"), &[]).await?;
                }
            } else {
                let held = conn
                    .row(
                        "SELECT (SELECT COUNT(*) FROM users) + (SELECT COUNT(*) FROM accounts) \
                         + (SELECT COUNT(*) FROM tokens) AS n",
                        &[],
                        |r| r.int("n"),
                    )
                    .await?;
                if held.unwrap_or_default() > 0 {
                    return Err(StoreError::Import(
                        "the database already holds users or accounts; import into a new, empty database".into(),
                    ));
                }
            }
            // Parents before children.
            Table::insert_all(conn, &data.users, progress).await?;
            Table::insert_all(conn, &data.accounts, progress).await?;
            Table::insert_all(conn, &data.account_roles, progress).await?;
            Table::insert_all(conn, &data.resource_groups, progress).await?;
            Table::insert_all(conn, &data.user_groups, progress).await?;
            Table::insert_all(conn, &data.memberships, progress).await?;
            Table::insert_all(conn, &data.tokens, progress).await?;
            Table::insert_all(conn, &data.audit_logs, progress).await?;
            // An export carries no stamps or counts: each catalog gets a stamp no process has
            // kept, and each account its memberships counted.
            let recount = format!(
                "UPDATE accounts SET catalog_stamp = {}, \
                 members_pending = (SELECT COUNT(*) FROM memberships m \
                 WHERE m.account_id = accounts.id AND m.status = 'pending'), \
                 members_accepted = (SELECT COUNT(*) FROM memberships m \
                 WHERE m.account_id = accounts.id AND m.status = 'accepted'), \
                 members_rejected = (SELECT COUNT(*) FROM memberships m \
                 WHERE m.account_id = accounts.id AND m.status = 'rejected')",
                B::NEW_STAMP
            );
            conn.execute(&recount, &[]).await?;
            self.backend.commit(tx).await
        })
        .await?;
        self.credentials_changed().await;
        Ok(())
    }

    /// Runs one statement that decides nothing and, if it changed a row, records `entries`,
    /// in a transaction of their own; how many rows it changed.
    async fn write_logged(
        &self,
        entries: &[audit::Entry],
        sql: &str,
        args: &[Arg<'_>],
    ) -> Result<u64, StoreError> {
        super::with_retries(B::retryable, || async {
            let mut tx = self.backend.begin(Lock::Rows).await?;
            let changed = tx.execute(sql, args).await?;
            if changed > 0 {
                record(&mut *tx, entries).await?;
            }
            self.backend.commit(tx).await?;
            Ok(changed)
        })
        .await
    }

    /// Runs one statement that decides nothing in a transaction of its own; how many rows
    /// it changed.
    async fn write_one(&self, sql: &str, args: &[Arg<'_>]) -> Result<u64, StoreError> {
        super::with_retries(B::retryable, || async {
            let mut tx = self.backend.begin(Lock::Rows).await?;
            let changed = tx.execute(sql, args).await?;
            self.backend.commit(tx).await?;
            Ok(changed)
        })
        .await
    }

    /// A user or token changed (and is committed): this process forgets what it cached
    /// and tells the others where the backend can.
    async fn credentials_changed(&self) {
        self.credentials.clear();
        self.backend.announce_credentials().await;
    }
}

// Each write spells out begin, its statements and commit inside `with_retries`: a helper
// taking the transaction as an argument to an async closure cannot be proven `Send` for
// every lifetime of that argument, which `async_trait` requires.
#[async_trait]
impl<B: Backend> Store for SqlStore<B> {
    async fn load_account(
        &self,
        id: &Id,
        focus: &Focus,
    ) -> Result<Option<AccountState>, StoreError> {
        let mut conn = self.backend.snapshot().await?;
        queries::load_focused(&mut *conn, &self.catalogs, id, focus).await
    }

    async fn member_page(
        &self,
        account: &Id,
        caller_email_folded: Option<&str>,
        query: &MemberQuery,
    ) -> Result<Option<MemberPage>, StoreError> {
        let mut conn = self.backend.snapshot().await?;
        queries::member_page(
            &mut *conn,
            &self.catalogs,
            B::COLLATE,
            account,
            caller_email_folded,
            query,
        )
        .await
    }

    async fn group_member_page(
        &self,
        account: &Id,
        caller_email_folded: Option<&str>,
        query: &super::GroupMemberQuery,
    ) -> Result<Option<MemberPage>, StoreError> {
        let mut conn = self.backend.snapshot().await?;
        queries::group_member_page(
            &mut *conn,
            &self.catalogs,
            B::COLLATE,
            account,
            caller_email_folded,
            query,
        )
        .await
    }

    async fn write_account(
        &self,
        id: &Id,
        focus: &Focus,
        decide: Decide<'_>,
    ) -> Result<Written, StoreError> {
        let written = super::with_retries(B::retryable, || async {
            let mut tx = self.backend.begin(Lock::Account(id)).await?;
            let state = queries::load_focused(&mut *tx, &self.catalogs, id, focus)
                .await?
                .ok_or(DomainError::NotFound("Account"))?;
            let changes = decide(&state)?;
            count_members(&mut *tx, id, &count_changes(&state, &changes)).await?;
            for change in &changes {
                apply(&mut *tx, id, change).await?;
            }
            if changes.iter().any(changes_catalog) {
                tx.execute(
                    "UPDATE accounts SET catalog_stamp = $2 WHERE id = $1",
                    &[id.into(), (&Id::generate()).into()],
                )
                .await?;
            }
            record(&mut *tx, &audit::for_changes(&state, &changes)).await?;
            self.backend.commit(tx).await?;
            Ok(Written { state, changes })
        })
        .await?;
        // The account's own tokens went with it: no cached copy may outlive them.
        if written
            .changes
            .iter()
            .any(|c| matches!(c, Change::DeleteAccount))
        {
            self.credentials_changed().await;
        }
        Ok(written)
    }

    async fn create_account(
        &self,
        account: &Account,
        owner: Option<&Membership>,
    ) -> Result<(), StoreError> {
        super::with_retries(B::retryable, || async {
            let mut tx = self.backend.begin(Lock::Account(&account.id)).await?;
            put_account(&mut *tx, account, false).await?;
            if let Some(owner) = owner {
                put_membership(&mut *tx, owner).await?;
                let mut counts = [0; 3];
                counts[count_slot(owner.status)] = 1;
                let founder = CountChange {
                    counts,
                    unread: Vec::new(),
                };
                count_members(&mut *tx, &account.id, &founder).await?;
            }
            record(&mut *tx, &audit::for_new_account(account, owner)).await?;
            self.backend.commit(tx).await
        })
        .await
    }

    async fn user_memberships(
        &self,
        email_folded: &str,
    ) -> Result<Arc<Vec<Arc<UserMembership>>>, StoreError> {
        self.backend
            .own_memberships(&self.catalogs, email_folded)
            .await
    }

    async fn user_membership_page(
        &self,
        email_folded: &str,
        query: &OwnMembershipQuery,
    ) -> Result<Page<Arc<UserMembership>>, StoreError> {
        self.backend
            .own_membership_page(&self.catalogs, email_folded, query)
            .await
    }

    async fn user_membership(
        &self,
        email_folded: &str,
        id: &Id,
    ) -> Result<Option<Arc<UserMembership>>, StoreError> {
        self.backend
            .own_membership(&self.catalogs, email_folded, id)
            .await
    }

    async fn user_by_email(
        &self,
        email_folded: &str,
    ) -> Result<Option<(User, String)>, StoreError> {
        let lookup = match self.credentials.key(email_folded) {
            Ok(found) => return Ok(Some(found)),
            Err(lookup) => lookup,
        };
        let found =
            queries::user_by_email(&mut *self.backend.single().await?, email_folded).await?;
        if let Some(found) = &found {
            self.credentials.keep_key(lookup, email_folded, found);
        }
        Ok(found)
    }

    async fn token_by_hash(&self, hash: &str) -> Result<Option<(Token, Option<User>)>, StoreError> {
        let lookup = match self.credentials.token(hash) {
            Ok(found) => return Ok(Some(found)),
            Err(lookup) => lookup,
        };
        let found = queries::token_by_hash(&mut *self.backend.single().await?, hash).await?;
        if let Some(found) = &found {
            self.credentials.keep_token(lookup, hash, found);
        }
        Ok(found)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.backend.single().await?;
        conn.row("SELECT 1 AS n", &[], |_| Ok(())).await?;
        Ok(())
    }

    async fn user(&self, id: &Id) -> Result<Option<User>, StoreError> {
        queries::fetch_user(&mut *self.backend.single().await?, id).await
    }

    async fn audit_log(&self, query: &audit::Query) -> Result<Vec<audit::Entry>, StoreError> {
        queries::audit_log(&mut *self.backend.single().await?, B::COLLATE, query).await
    }

    async fn tokens(&self, owner: &Owner) -> Result<Vec<Token>, StoreError> {
        queries::tokens_of(&mut *self.backend.single().await?, owner).await
    }

    async fn token_page(
        &self,
        owner: &Owner,
        query: &TokenQuery,
    ) -> Result<Page<Token>, StoreError> {
        queries::token_page(&mut *self.backend.single().await?, B::COLLATE, owner, query).await
    }

    async fn edit_token(
        &self,
        owner: &Owner,
        id: &Id,
        edit: EditToken<'_>,
        new_hash: Option<&str>,
        rules: Option<super::TokenRules<'_>>,
    ) -> Result<Token, StoreError> {
        let lock = Lock::owner(owner);
        let token = super::with_retries(B::retryable, || async {
            let mut tx = self.backend.begin(lock).await?;
            let mut token = queries::fetch_token(&mut *tx, owner, id)
                .await?
                .ok_or(DomainError::NotFound("Token"))?;
            let before = token.clone();
            edit(&mut token)?;
            if let (Some(rules), Owner::Account(account)) = (&rules, owner) {
                let state = queries::load_focused(&mut *tx, &self.catalogs, account, rules.focus)
                    .await?
                    .ok_or(DomainError::NotFound("Account"))?;
                (rules.check)(&state, Some(&before), Some(&token))?;
            }
            record(&mut *tx, &[audit::for_token(Some(&before), Some(&token))]).await?;
            let policies = to_json(&token.policies);
            let request_ip = token.request_ip.as_ref().map(to_json);
            tx.execute(
                "UPDATE tokens SET name = $2, status = $3, policies = $4, not_before = $5, \
                     expires_on = $6, request_ip = $7, modified_on = $8, \
                     token_hash = COALESCE($9, token_hash) WHERE id = $1",
                &[
                    (&token.id).into(),
                    (&token.name).into(),
                    token.status.as_str().into(),
                    (&policies).into(),
                    (&token.not_before).into(),
                    (&token.expires_on).into(),
                    (&request_ip).into(),
                    (&token.modified_on).into(),
                    new_hash.into(),
                ],
            )
            .await?;
            self.backend.commit(tx).await?;
            Ok(token)
        })
        .await?;
        self.credentials_changed().await;
        Ok(token)
    }

    async fn delete_token(
        &self,
        owner: &Owner,
        id: &Id,
        rules: Option<super::TokenRules<'_>>,
    ) -> Result<(), StoreError> {
        let lock = Lock::owner(owner);
        let (column, owner_id) = queries::owner_column(owner);
        let deleted = super::with_retries(B::retryable, || async {
            let mut tx = self.backend.begin(lock).await?;
            let Some(token) = queries::fetch_token(&mut *tx, owner, id).await? else {
                return Ok(false);
            };
            if let (Some(rules), Owner::Account(account)) = (&rules, owner) {
                let state = queries::load_focused(&mut *tx, &self.catalogs, account, rules.focus)
                    .await?
                    .ok_or(DomainError::NotFound("Account"))?;
                (rules.check)(&state, Some(&token), None)?;
            }
            tx.execute(
                &format!("DELETE FROM tokens WHERE id = $1 AND {column} = $2"),
                &[id.into(), owner_id.into()],
            )
            .await?;
            record(&mut *tx, &[audit::for_token(Some(&token), None)]).await?;
            self.backend.commit(tx).await?;
            Ok(true)
        })
        .await?;
        // Nothing deleted, nothing to forget: a caller could otherwise empty every
        // process's cache (and make each ask the database again) by deleting what is not
        // there.
        if !deleted {
            return Err(DomainError::NotFound("Token").into());
        }
        self.credentials_changed().await;
        Ok(())
    }

    async fn touch_token(&self, hash: &str, at: &str) -> Result<(), StoreError> {
        self.write_one(
            "UPDATE tokens SET last_used_on = $2 WHERE token_hash = $1",
            &[hash.into(), at.into()],
        )
        .await?;
        self.credentials.touched(hash, at);
        Ok(())
    }

    async fn insert_session(
        &self,
        session: &ConsoleSession,
        made_before: &str,
    ) -> Result<(), StoreError> {
        super::with_retries(B::retryable, || async {
            let mut tx = self.backend.begin(Lock::Rows).await?;
            tx.execute(
                "DELETE FROM console_sessions WHERE created_on < $1",
                &[made_before.into()],
            )
            .await?;
            tx.execute(
                "INSERT INTO console_sessions (id_hash, email_lower, credential_hash, \
                     created_on, seen_on) VALUES ($1, $2, $3, $4, $5)",
                &[
                    session.id_hash.as_str().into(),
                    session.email_folded.as_deref().into(),
                    session.credential_hash.as_str().into(),
                    session.created_on.as_str().into(),
                    session.seen_on.as_str().into(),
                ],
            )
            .await?;
            // A credential keeps its newest few sessions: signing in again and again
            // (a script with a valid key) cannot grow the table without bound.
            tx.execute(
                &format!(
                    "DELETE FROM console_sessions WHERE credential_hash = $1 AND id_hash NOT IN \
                     (SELECT id_hash FROM console_sessions WHERE credential_hash = $1 \
                     ORDER BY created_on DESC, id_hash LIMIT {})",
                    super::SESSIONS_PER_CREDENTIAL
                ),
                &[session.credential_hash.as_str().into()],
            )
            .await?;
            self.backend.commit(tx).await?;
            Ok(())
        })
        .await
    }

    async fn session(&self, id_hash: &str) -> Result<Option<ConsoleSession>, StoreError> {
        let mut conn = self.backend.single().await?;
        conn.row(
            "SELECT id_hash, email_lower, credential_hash, created_on, seen_on \
             FROM console_sessions WHERE id_hash = $1",
            &[id_hash.into()],
            |row| {
                Ok(ConsoleSession {
                    id_hash: row.text("id_hash")?,
                    email_folded: row.maybe_text("email_lower")?,
                    credential_hash: row.text("credential_hash")?,
                    created_on: row.text("created_on")?,
                    seen_on: row.text("seen_on")?,
                })
            },
        )
        .await
    }

    async fn touch_session(&self, id_hash: &str, at: &str) -> Result<(), StoreError> {
        self.write_one(
            "UPDATE console_sessions SET seen_on = $2 WHERE id_hash = $1",
            &[id_hash.into(), at.into()],
        )
        .await?;
        Ok(())
    }

    async fn end_session(&self, id_hash: &str) -> Result<(), StoreError> {
        self.write_one(
            "DELETE FROM console_sessions WHERE id_hash = $1",
            &[id_hash.into()],
        )
        .await?;
        Ok(())
    }

    async fn insert_user(&self, user: &User, api_key_hash: &str) -> Result<(), StoreError> {
        let entry = [audit::for_user(None, user)];
        let result = self
            .write_logged(
                &entry,
                "INSERT INTO users (id, email, email_lower, first_name, last_name, telephone, \
                     country, zipcode, two_factor, api_key_hash, created_on, modified_on) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                &[
                    (&user.id).into(),
                    user.email.as_str().into(),
                    user.email.folded().into(),
                    (&user.first_name).into(),
                    (&user.last_name).into(),
                    (&user.telephone).into(),
                    (&user.country).into(),
                    (&user.zipcode).into(),
                    user.two_factor_authentication_enabled.into(),
                    api_key_hash.into(),
                    (&user.created_on).into(),
                    (&user.modified_on).into(),
                ],
            )
            .await;
        match result {
            Err(e) if unique_violation(&e) => {
                Err(DomainError::Duplicate(format!("User {}", user.email.as_str())).into())
            }
            other => other.map(|_| ()),
        }
    }

    async fn edit_user(&self, id: &Id, edit: EditUser<'_>) -> Result<User, StoreError> {
        let user = super::with_retries(B::retryable, || async {
            let mut tx = self.backend.begin(Lock::User(id)).await?;
            let mut user = queries::fetch_user(&mut *tx, id)
                .await?
                .ok_or(DomainError::NotFound("User"))?;
            let before = user.clone();
            edit(&mut user)?;
            record(&mut *tx, &[audit::for_user(Some(&before), &user)]).await?;
            tx.execute(
                "UPDATE users SET first_name = $2, last_name = $3, telephone = $4, \
                     country = $5, zipcode = $6, two_factor = $7, modified_on = $8 WHERE id = $1",
                &[
                    (&user.id).into(),
                    (&user.first_name).into(),
                    (&user.last_name).into(),
                    (&user.telephone).into(),
                    (&user.country).into(),
                    (&user.zipcode).into(),
                    user.two_factor_authentication_enabled.into(),
                    (&user.modified_on).into(),
                ],
            )
            .await?;
            self.backend.commit(tx).await?;
            Ok(user)
        })
        .await?;
        self.credentials_changed().await;
        Ok(user)
    }

    async fn insert_token(
        &self,
        token: &Token,
        hash: &str,
        rules: Option<super::TokenRules<'_>>,
    ) -> Result<(), StoreError> {
        let policies = to_json(&token.policies);
        let request_ip = token.request_ip.as_ref().map(to_json);
        let (user, account) = match &token.owner {
            Owner::User(user) => (Some(user), None),
            Owner::Account(account) => (None, Some(account)),
        };
        let missing = || -> StoreError {
            DomainError::NotFound(if user.is_some() { "User" } else { "Account" }).into()
        };
        // Only while its owner exists: an account deleted since the request was authorized
        // takes no new token. Under PostgreSQL's read committed, a deletion that commits
        // after this statement's snapshot passes the `EXISTS` and fails the foreign key
        // instead: that too means the owner is gone.
        let entry = [audit::for_token(None, Some(token))];
        // The owner's row is held only where rules are decided on it.
        let lock = match rules {
            Some(_) => Lock::owner(&token.owner),
            None => Lock::Rows,
        };
        let inserted = super::with_retries(B::retryable, || async {
            let mut tx = self.backend.begin(lock).await?;
            if let (Some(rules), Some(account)) = (&rules, account) {
                let state = queries::load_focused(&mut *tx, &self.catalogs, account, rules.focus)
                    .await?
                    .ok_or_else(missing)?;
                (rules.check)(&state, None, Some(token))?;
            }
            let changed = tx
                .execute(
                    "INSERT INTO tokens (id, user_id, account_id, creator_email, name, token_hash, \
                     status, policies, not_before, expires_on, request_ip, created_on, modified_on, \
                     last_used_on) \
                     SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14 \
                     WHERE EXISTS (SELECT 1 FROM users WHERE id = $2) \
                     OR EXISTS (SELECT 1 FROM accounts WHERE id = $3)",
                    &[
                        (&token.id).into(),
                        Arg::Text(user.map(Id::as_str)),
                        Arg::Text(account.map(Id::as_str)),
                        (&token.creator_email).into(),
                        (&token.name).into(),
                        hash.into(),
                        token.status.as_str().into(),
                        (&policies).into(),
                        (&token.not_before).into(),
                        (&token.expires_on).into(),
                        (&request_ip).into(),
                        (&token.issued_on).into(),
                        (&token.modified_on).into(),
                        (&token.last_used_on).into(),
                    ],
                )
                .await;
            let changed = match changed {
                Err(e) if violation(&e).is_some_and(|v| v.kind == Violation::Reference) => 0,
                other => other?,
            };
            if changed > 0 {
                record(&mut *tx, &entry).await?;
            }
            self.backend.commit(tx).await?;
            Ok(changed)
        })
        .await?;
        if inserted == 0 {
            return Err(missing());
        }
        Ok(())
    }

    async fn export(&self) -> Result<Export, StoreError> {
        let mut tx = self.backend.begin(Lock::Snapshot).await?;
        let conn = &mut *tx;
        let mut data = Export {
            format: FORMAT.to_string(),
            version: super::schema_version().0,
            users: Table::read_all(conn).await?,
            accounts: Table::read_all(conn).await?,
            account_roles: Table::read_all(conn).await?,
            resource_groups: Table::read_all(conn).await?,
            user_groups: Table::read_all(conn).await?,
            memberships: Table::read_all(conn).await?,
            tokens: Table::read_all(conn).await?,
            audit_logs: Table::read_all(conn).await?,
        };
        // Ended here rather than by dropping it: PostgreSQL's driver rolls a dropped
        // transaction back only when the connection is next used, and until then the
        // snapshot holds its locks (a schema could not be dropped meanwhile).
        self.backend.commit(tx).await?;
        data.sort();
        Ok(data)
    }

    async fn import(
        &self,
        data: &Export,
        analyze: bool,
        progress: &Progress,
    ) -> Result<(), StoreError> {
        self.load(data, false, progress).await?;
        self.backend.after_import(analyze).await
    }

    async fn restore(&self, data: &Export) -> Result<(), StoreError> {
        self.load(data, true, &Progress::default()).await
    }

    fn figures(&self) -> Vec<super::Figure> {
        let mut figures = self.credentials.figures();
        figures.extend(self.catalogs.figures());
        figures.extend(self.backend.figures());
        figures
    }
}
