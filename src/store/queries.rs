//! The reads both backends share, written once over [`Conn`]: rows into domain values.
//! The statements are portable (numbered parameters, `$1`..), so the same text runs on
//! PostgreSQL, on SQLite inside a write transaction (sqlx) and on SQLite's read
//! connections (rusqlite).

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, LazyLock};

use super::cache::catalogs::{Catalogs, Stamped};
use super::conn::{Arg, Cols, Conn};
use super::sql::{ACCOUNT_COLUMNS, MEMBERSHIP_COLUMNS, TOKEN_COLUMNS, USER_COLUMNS, corrupt, json};

/// Selects which accounts' catalogs to load, written after a column holding an account id:
/// `$1` is an account id or a folded email.
const ONE_ACCOUNT: &str = "= $1";
const ACCOUNTS_OF_EMAIL: &str = "IN (SELECT account_id FROM memberships WHERE email_lower = $1)";
use super::{MemberPage, MemberQuery, OwnMembershipQuery, StoreError, TokenQuery, UserMembership};
use crate::domain::audit;
use crate::domain::list::Page;
use crate::domain::tokens::{Owner, Token, TokenStatus};
use crate::domain::types::{DefaultNameservers, Direction, MemberOrder, MembershipOrder};
use crate::domain::*;

pub(super) fn user_from_row(row: &dyn Cols) -> Result<Option<User>, StoreError> {
    let Some(id) = row.maybe_text("u_id")? else {
        return Ok(None);
    };
    Ok(Some(User {
        id: Id::from_trusted(id),
        email: Email::from_trusted(row.text("u_email")?),
        first_name: row.maybe_text("u_first_name")?,
        last_name: row.maybe_text("u_last_name")?,
        telephone: row.maybe_text("u_telephone")?,
        country: row.maybe_text("u_country")?,
        zipcode: row.maybe_text("u_zipcode")?,
        two_factor_authentication_enabled: row.flag("u_two_factor")?,
        created_on: row.text("u_created_on")?,
        modified_on: row.text("u_modified_on")?,
    }))
}

fn account_from_row(row: &dyn Cols) -> Result<Account, StoreError> {
    Ok(Account {
        id: Id::from_trusted(row.text("a_id")?),
        name: row.text("a_name")?,
        account_type: AccountType::from_str(&row.text("a_type")?)?,
        created_on: row.text("a_created_on")?,
        settings: AccountSettings {
            enforce_twofactor: row.flag("a_enforce_twofactor")?,
            abuse_contact_email: row.maybe_text("a_abuse_contact_email")?,
            default_nameservers: DefaultNameservers::from_str(&row.text("a_default_nameservers")?)?,
            use_account_custom_ns_by_default: row.flag("a_use_account_custom_ns_by_default")?,
        },
        managed_by: row
            .maybe_text("a_managed_by")?
            .map(|m| json(&m, "accounts.managed_by"))
            .transpose()?,
    })
}

fn membership_from_row(row: &dyn Cols) -> Result<Membership, StoreError> {
    Ok(Membership {
        id: Id::from_trusted(row.text("m_id")?),
        account_id: Id::from_trusted(row.text("m_account_id")?),
        email: Email::from_trusted(row.text("m_email")?),
        status: Status::from_str(&row.text("m_status")?)?,
        grants: json(&row.text("m_grants")?, "memberships.grants")?,
        code: row.text("m_code")?,
        api_access_enabled: row.maybe_flag("m_api_access_enabled")?,
        created_on: row.text("m_created_on")?,
        modified_on: row.text("m_modified_on")?,
        groups: json(&row.text("m_group_ids")?, "memberships.group_ids")?,
        user: user_from_row(row)?,
    })
}

fn token_from_row(row: &dyn Cols) -> Result<Token, StoreError> {
    Ok(Token {
        id: Id::from_trusted(row.text("t_id")?),
        owner: match (
            row.maybe_text("t_user_id")?,
            row.maybe_text("t_account_id")?,
        ) {
            (Some(user), None) => Owner::User(Id::from_trusted(user)),
            (None, Some(account)) => Owner::Account(Id::from_trusted(account)),
            _ => return Err(corrupt("tokens", "not exactly one owner")),
        },
        creator_email: row.maybe_text("t_creator_email")?,
        name: row.text("t_name")?,
        status: TokenStatus::from_str(&row.text("t_status")?)?,
        policies: json(&row.text("t_policies")?, "tokens.policies")?,
        not_before: row.maybe_text("t_not_before")?,
        expires_on: row.maybe_text("t_expires_on")?,
        request_ip: row
            .maybe_text("t_request_ip")?
            .map(|r| json(&r, "tokens.request_ip"))
            .transpose()?,
        issued_on: row.text("t_created_on")?,
        modified_on: row.text("t_modified_on")?,
        last_used_on: row.maybe_text("t_last_used_on")?,
    })
}

/// The owner's column and id, for a statement's `WHERE`.
pub(super) fn owner_column(owner: &Owner) -> (&'static str, &Id) {
    match owner {
        Owner::User(id) => ("user_id", id),
        Owner::Account(id) => ("account_id", id),
    }
}

/// Runs a page's statement, whose rows each carry the list's count `n` beside a row of the
/// page, or, for a page with none, one row of the count alone (`id_column` NULL): the page
/// and its count from one statement, however far past the end the page is.
async fn counted_rows<T: Send>(
    conn: &mut impl Conn,
    sql: &str,
    args: &[Arg<'_>],
    id_column: &str,
    map: impl Fn(&dyn Cols) -> Result<T, StoreError> + Send + Sync,
) -> Result<(Vec<T>, i64), StoreError> {
    let rows = conn
        .rows(sql, args, |r| {
            let n = r.int("n")?;
            match r.maybe_text(id_column)? {
                Some(_) => Ok((Some(map(r)?), n)),
                None => Ok((None, n)),
            }
        })
        .await?;
    let total = rows.first().map_or(0, |(_, n)| *n);
    Ok((rows.into_iter().filter_map(|(t, _)| t).collect(), total))
}

/// Expired tokens a page leaves out by id, at most; past that it reads them all.
const EXCLUDED_AT_MOST: usize = 1000;

/// One page of the owner's tokens, in two statements at most: the tokens that may have
/// expired (an expiry, or marked expired), read through their partial index when expired
/// ones are left out, and decided here as [`Token::effective_status`] decides; then the
/// owner's kept count and the page, from the index in the list's order, without them. Its
/// cost is the page's and the expiring tokens', whatever the owner's tokens number.
pub(super) async fn token_page(
    conn: &mut impl Conn,
    collate: &str,
    owner: &Owner,
    query: &TokenQuery,
) -> Result<Page<Token>, StoreError> {
    let (column, id) = owner_column(owner);
    let counted_as = match owner {
        Owner::User(id) => format!("user:{id}"),
        Owner::Account(id) => format!("account:{id}"),
    };
    let mut excluded: Vec<String> = Vec::new();
    if !query.include_expired {
        let expiring = conn
            .rows(
                &format!(
                    "SELECT t.id AS t_id, t.status AS t_status, t.expires_on AS t_expires_on \
                     FROM tokens t WHERE t.{column} = $1 \
                     AND (t.expires_on IS NOT NULL OR t.status = 'expired')"
                ),
                &[id.as_str().into()],
                |r| {
                    Ok((
                        r.text("t_id")?,
                        TokenStatus::from_str(&r.text("t_status")?)?,
                        r.maybe_text("t_expires_on")?,
                    ))
                },
            )
            .await?;
        excluded = expiring
            .into_iter()
            .filter(|(_, status, expires_on)| {
                crate::domain::tokens::effective_status(*status, expires_on.as_deref(), query.at)
                    == TokenStatus::Expired
            })
            .map(|(id, _, _)| id)
            .collect();
        if excluded.len() > EXCLUDED_AT_MOST {
            // Left out by name, so many would outgrow a statement's parameters (32,766 on
            // SQLite): the owner's tokens read whole instead, as a page of a list mostly
            // expired costs what the list holds either way.
            return Ok(query.page_of(tokens_of(conn, owner).await?));
        }
    }
    let dir = sql_direction(query.direction);
    let order = format!("t.created_on{collate} {dir}, t.id {dir}");
    let per_page = i64::from(query.page.per_page);
    let offset = (i64::from(query.page.page) - 1) * per_page;
    let not_in = match excluded.len() {
        0 => String::new(),
        n => format!(
            "AND t.id NOT IN ({})",
            (3..n + 3)
                .map(|k| format!("${k}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut args: Vec<Arg<'_>> = vec![id.as_str().into(), counted_as.as_str().into()];
    args.extend(excluded.iter().map(Arg::from));
    let (items, total) = counted_rows(
        conn,
        &format!(
            "SELECT {TOKEN_COLUMNS}, counted.n AS n FROM (SELECT COALESCE((SELECT c.n \
             FROM token_counts c WHERE c.owner = $2), 0) AS n) counted \
             LEFT JOIN (SELECT t.id FROM tokens t WHERE t.{column} = $1 {not_in} \
             ORDER BY {order} LIMIT {per_page} OFFSET {offset}) page ON TRUE \
             LEFT JOIN tokens t ON t.id = page.id ORDER BY {order}"
        ),
        &args,
        "t_id",
        token_from_row,
    )
    .await?;
    let total = total - excluded.len() as i64;
    Ok(Page {
        items,
        request: query.page,
        total_count: usize::try_from(total).unwrap_or_default(),
    })
}

pub(super) async fn fetch_token(
    conn: &mut impl Conn,
    owner: &Owner,
    id: &Id,
) -> Result<Option<Token>, StoreError> {
    let (column, owner) = owner_column(owner);
    let sql = format!("SELECT {TOKEN_COLUMNS} FROM tokens t WHERE t.id = $1 AND t.{column} = $2");
    conn.row(
        &sql,
        &[id.as_str().into(), owner.as_str().into()],
        token_from_row,
    )
    .await
}

pub(super) async fn fetch_user(conn: &mut impl Conn, id: &Id) -> Result<Option<User>, StoreError> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1");
    Ok(conn
        .row(&sql, &[id.as_str().into()], user_from_row)
        .await?
        .flatten())
}

/// The user with this folded email and the digest of their API key.
pub(super) async fn user_by_email(
    conn: &mut impl Conn,
    email_folded: &str,
) -> Result<Option<(User, String)>, StoreError> {
    let sql =
        format!("SELECT {USER_COLUMNS}, u.api_key_hash FROM users u WHERE u.email_lower = $1");
    conn.row(&sql, &[email_folded.into()], |row| {
        let user = user_from_row(row)?.ok_or_else(|| corrupt("users", "missing id"))?;
        Ok((user, row.text("api_key_hash")?))
    })
    .await
}

/// The token with this digest and, for a user's token, its user.
pub(super) async fn token_by_hash(
    conn: &mut impl Conn,
    hash: &str,
) -> Result<Option<(Token, Option<User>)>, StoreError> {
    let sql = format!(
        "SELECT {USER_COLUMNS}, {TOKEN_COLUMNS} FROM tokens t LEFT JOIN users u ON u.id = t.user_id \
         WHERE t.token_hash = $1"
    );
    conn.row(&sql, &[hash.into()], |row| {
        let token = token_from_row(row)?;
        let user = user_from_row(row)?;
        if matches!(token.owner, Owner::User(_)) && user.is_none() {
            return Err(corrupt("tokens", "missing user"));
        }
        Ok((token, user))
    })
    .await
}

/// The tokens of a user or of an account.
pub(super) async fn tokens_of(
    conn: &mut impl Conn,
    owner: &Owner,
) -> Result<Vec<Token>, StoreError> {
    let (column, owner) = owner_column(owner);
    let sql = format!("SELECT {TOKEN_COLUMNS} FROM tokens t WHERE t.{column} = $1");
    conn.rows(&sql, &[owner.as_str().into()], token_from_row)
        .await
}

enum CatalogEntry {
    Stamp(String, String),
    Role(String, Role),
    Group(String, ResourceGroup),
    UserGroup(String, UserGroup),
}

/// The catalogs of the accounts `filter` selects (see [`ONE_ACCOUNT`]), with their stamps,
/// by account id, from one statement (so each with the stamp it has); each is kept in
/// `catalogs` for the reads that come after.
async fn load_catalogs(
    conn: &mut impl Conn,
    catalogs: &Catalogs,
    filter: &'static str,
    param: &str,
) -> Result<HashMap<String, Stamped>, StoreError> {
    // All in one round trip: `a` and `b` are a role's description and permissions, a
    // resource group's scope and meta, or a user group's policies and its two times.
    let sql = format!(
        "SELECT 'stamp' AS kind, id AS account_id, catalog_stamp AS id, '' AS name, '' AS a, \
         '' AS b FROM accounts WHERE id {filter} \
         UNION ALL SELECT 'role' AS kind, account_id, id, name, description AS a, permissions AS b \
         FROM account_roles WHERE account_id {filter} \
         UNION ALL SELECT 'group' AS kind, account_id, id, name, scope AS a, meta AS b \
         FROM resource_groups WHERE account_id {filter} \
         UNION ALL SELECT 'user_group' AS kind, account_id, id, name, policies AS a, \
         created_on || ' ' || modified_on AS b FROM user_groups WHERE account_id {filter} \
         ORDER BY 1, 3"
    );
    let entries = conn
        .rows(&sql, &[param.into()], |r| {
            let (account, kind) = (r.text("account_id")?, r.text("kind")?);
            let (a, b) = (r.text("a")?, r.text("b")?);
            let (id, name) = (r.text("id")?, r.text("name")?);
            Ok(match kind.as_str() {
                "stamp" => CatalogEntry::Stamp(account, id),
                "user_group" => {
                    let (created_on, modified_on) = b
                        .split_once(' ')
                        .ok_or_else(|| corrupt("user_groups", "created_on and modified_on"))?;
                    CatalogEntry::UserGroup(
                        account,
                        UserGroup {
                            id: Id::from_trusted(id),
                            name,
                            policies: json(&a, "user_groups.policies")?,
                            created_on: created_on.to_string(),
                            modified_on: modified_on.to_string(),
                        },
                    )
                }
                "role" => CatalogEntry::Role(
                    account,
                    Role {
                        id: Id::from_trusted(id),
                        name,
                        description: a,
                        permissions: json(&b, "account_roles.permissions")?,
                    },
                ),
                _ => CatalogEntry::Group(
                    account,
                    ResourceGroup {
                        id: Id::from_trusted(id),
                        name,
                        scope: json(&a, "resource_groups.scope")?,
                        meta: json(&b, "resource_groups.meta")?,
                    },
                ),
            })
        })
        .await?;
    let mut found: HashMap<String, (String, AccountCatalog)> = HashMap::new();
    for entry in entries {
        match entry {
            CatalogEntry::Stamp(account, stamp) => found.entry(account).or_default().0 = stamp,
            CatalogEntry::Role(account, role) => {
                found.entry(account).or_default().1.custom_roles.push(role)
            }
            CatalogEntry::Group(account, group) => found
                .entry(account)
                .or_default()
                .1
                .resource_groups
                .push(group),
            CatalogEntry::UserGroup(account, group) => found
                .entry(account)
                .or_default()
                .1
                .user_groups_mut()
                .push(group),
        }
    }
    Ok(found
        .into_iter()
        .map(|(account, (stamp, catalog))| {
            let stamped = (stamp, Arc::new(catalog));
            catalogs.keep(account.clone(), stamped.clone());
            (account, stamped)
        })
        .collect())
}

/// The account's catalog at `stamp`, kept or read; read, it is the newest, which a read
/// outside a transaction may see instead (at worst lacking a group a membership names,
/// which the views skip).
async fn catalog_at(
    conn: &mut impl Conn,
    catalogs: &Catalogs,
    id: &Id,
    stamp: &str,
) -> Result<Arc<AccountCatalog>, StoreError> {
    if let Some(kept) = catalogs.at(id.as_str(), stamp) {
        return Ok(kept);
    }
    let mut read = load_catalogs(conn, catalogs, ONE_ACCOUNT, id.as_str()).await?;
    Ok(read
        .remove(id.as_str())
        .map(|(_, catalog)| catalog)
        .unwrap_or_default())
}

/// The account's own roles and groups when any of `members` needs them to be shown or
/// weighed; built-in roles are the same everywhere, so role-only memberships need none.
async fn catalog_for<'m>(
    conn: &mut impl Conn,
    catalogs: &Catalogs,
    id: &Id,
    stamp: &str,
    mut members: impl Iterator<Item = &'m Membership>,
) -> Result<Arc<AccountCatalog>, StoreError> {
    if members.any(Membership::needs_account_catalog) {
        catalog_at(conn, catalogs, id, stamp).await
    } else {
        Ok(no_catalog())
    }
}

/// The catalog of an account that has none of its own, shared.
fn no_catalog() -> Arc<AccountCatalog> {
    static EMPTY: LazyLock<Arc<AccountCatalog>> = LazyLock::new(Arc::default);
    Arc::clone(&EMPTY)
}

/// A row's account, its catalog's stamp and, where a `LEFT JOIN` found one, a membership.
fn account_and_member(row: &dyn Cols) -> Result<(Account, String, Option<Membership>), StoreError> {
    let member = match row.maybe_text("m_id")? {
        Some(_) => Some(membership_from_row(row)?),
        None => None,
    };
    Ok((account_from_row(row)?, row.text("a_catalog_stamp")?, member))
}

/// The account with the memberships `focus` names (see [`Focus`]), in one statement: the
/// ids and emails through the indexes; the administrators and a group's users by matching
/// the stored grants' text against the roles that confer organization write, any
/// policies, or the group's id (a superset: the rules decide). The catalog comes from
/// `catalogs` when the statement's stamp says it is the one kept, which makes most reads
/// one round trip.
pub(super) async fn load_focused(
    conn: &mut impl Conn,
    catalogs: &Catalogs,
    id: &Id,
    focus: &Focus,
) -> Result<Option<AccountState>, StoreError> {
    // Which members are administrators depends on the catalog's roles: the statement is
    // built on the catalog kept, and run again if the account's stamp says it changed.
    let mut guess = catalogs.last(id.as_str());
    for _ in 0..4 {
        if guess.is_none() && focus.administrators {
            match load_catalogs(conn, catalogs, ONE_ACCOUNT, id.as_str())
                .await?
                .remove(id.as_str())
            {
                Some(read) => guess = Some(read),
                None => return Ok(None),
            }
        }
        let empty = AccountCatalog::default();
        let roles = guess.as_ref().map_or(&empty, |(_, catalog)| &**catalog);
        let (sql, params) = focused_members(id, focus, roles);
        let args: Vec<Arg<'_>> = params.iter().map(|p| p.as_str().into()).collect();
        let rows = conn.rows(&sql, &args, account_and_member).await?;
        let Some((account, stamp, _)) = rows.first().cloned() else {
            return Ok(None);
        };
        let hit = guess.as_ref().is_some_and(|(kept, _)| *kept == stamp);
        catalogs.tally(hit);
        let catalog = match guess {
            Some((kept, catalog)) if kept == stamp => catalog,
            _ => {
                let read = load_catalogs(conn, catalogs, ONE_ACCOUNT, id.as_str())
                    .await?
                    .remove(id.as_str());
                match read {
                    None => return Ok(None),
                    Some((read, catalog)) if read == stamp && !focus.administrators => catalog,
                    other => {
                        guess = other;
                        continue;
                    }
                }
            }
        };
        return Ok(Some(AccountState {
            account,
            members: rows.into_iter().filter_map(|(_, _, m)| m).collect(),
            catalog,
            focus: focus.clone(),
        }));
    }
    // The catalog changed under each of the reads.
    Err(StoreError::Contention)
}

/// The statement reading the account with the members `focus` names, and its parameters
/// (`$1` the account id). Each kind of member wanted is a lookup of its own, joined by
/// `UNION`: an `OR` of them in one join condition is planned, without the statistics that
/// only `ANALYZE` gathers (every database grown through the API), as a walk through every
/// membership of the account, where each lookup alone has an index.
fn focused_members(id: &Id, focus: &Focus, roles: &AccountCatalog) -> (String, Vec<String>) {
    let mut params: Vec<String> = vec![id.as_str().to_string()];
    let place = |value: String, params: &mut Vec<String>| {
        params.push(value);
        format!("${}", params.len())
    };
    let mut wanted: Vec<String> = Vec::new();
    let ids: Vec<String> = focus
        .ids
        .iter()
        .map(|i| place(i.as_str().to_string(), &mut params))
        .collect();
    if !ids.is_empty() {
        wanted.push(format!("id IN ({})", ids.join(", ")));
    }
    let emails: Vec<String> = focus
        .emails
        .iter()
        .map(|e| place(e.clone(), &mut params))
        .collect();
    if !emails.is_empty() {
        wanted.push(format!("email_lower IN ({})", emails.join(", ")));
    }
    if focus.administrators {
        // Members in a user group may be administrators through it.
        let mut grants = vec![
            format!(
                "grants LIKE {}",
                place("%\"policies\"%".into(), &mut params)
            ),
            format!("group_ids <> {}", place("[]".into(), &mut params)),
        ];
        for role in roles.administrator_roles() {
            grants.push(format!(
                "grants LIKE {}",
                place(format!("%{role}%"), &mut params)
            ));
        }
        wanted.push(format!("status = 'accepted' AND ({})", grants.join(" OR ")));
    }
    for group in &focus.mentioning {
        wanted.push(format!(
            "grants LIKE {}",
            place(format!("%{group}%"), &mut params)
        ));
    }
    for group in &focus.groups {
        wanted.push(format!(
            "id IN (SELECT membership_id FROM membership_groups WHERE group_id = {})",
            place(group.as_str().to_string(), &mut params)
        ));
    }
    let members = if focus.everyone {
        "LEFT JOIN memberships m ON m.account_id = $1".to_string()
    } else if wanted.is_empty() {
        // A read that only needs the account and its catalog: a key lookup that finds
        // nothing (a constant false condition is planned as a scan).
        "LEFT JOIN memberships m ON m.id = NULL".to_string()
    } else {
        let lookups: Vec<String> = wanted
            .iter()
            .map(|w| format!("SELECT id FROM memberships WHERE account_id = $1 AND {w}"))
            .collect();
        format!(
            "LEFT JOIN ({}) w ON 1 = 1 LEFT JOIN memberships m ON m.id = w.id",
            lookups.join(" UNION ")
        )
    };
    let sql = format!(
        "SELECT {ACCOUNT_COLUMNS}, {MEMBERSHIP_COLUMNS}, {USER_COLUMNS} FROM accounts a \
         {members} LEFT JOIN users u ON u.email_lower = m.email_lower WHERE a.id = $1"
    );
    (sql, params)
}

/// `ORDER BY`'s word for a direction.
fn sql_direction(direction: Direction) -> &'static str {
    match direction {
        Direction::Asc => "ASC",
        Direction::Desc => "DESC",
    }
}

/// What a page of an account's members needs first, in one statement: the account (`$1`),
/// its catalog's stamp, the caller's accepted membership (`$3`, their folded email) and the
/// page's `count`.
async fn page_head(
    conn: &mut impl Conn,
    count: &str,
    args: &[Arg<'_>],
) -> Result<Option<((Account, String, Option<Membership>), i64)>, StoreError> {
    let head = conn
        .rows(
            &format!(
                "SELECT {ACCOUNT_COLUMNS}, {MEMBERSHIP_COLUMNS}, {USER_COLUMNS}, \
                 {count} AS n \
                 FROM accounts a LEFT JOIN memberships m ON m.account_id = $1 \
                 AND m.email_lower = $3 AND m.status = 'accepted' \
                 LEFT JOIN users u ON u.email_lower = m.email_lower WHERE a.id = $1"
            ),
            args,
            |r| Ok((account_and_member(r)?, r.int("n")?)),
        )
        .await?;
    Ok(head.into_iter().next())
}

/// A members page; `collate` is what makes the backend sort text bytewise.
pub(super) async fn member_page(
    conn: &mut impl Conn,
    catalogs: &Catalogs,
    collate: &str,
    account: &Id,
    caller_email_folded: Option<&str>,
    query: &MemberQuery,
) -> Result<Option<MemberPage>, StoreError> {
    // `$2` is the status filter, written only when there is one: `$2 IS NULL OR ...` made
    // the page read every skipped row for its status, where the index in the page's order
    // has all the page needs (a deep page's cost is in bench/README.md, "Figures behind
    // the code"). `$3` is the caller's folded email, or NULL for an account's own token,
    // which has no membership to find.
    let filter = match query.status {
        Some(_) => "AND m.status = $2",
        None => "",
    };
    let args = [
        account.as_str().into(),
        Arg::Text(query.status.map(|s| s.as_str())),
        Arg::Text(caller_email_folded),
    ];
    // The account, its kept count and the caller in one statement.
    let count = match query.status {
        Some(status) => format!("a.members_{}", status.as_str()),
        None => "a.members_pending + a.members_accepted + a.members_rejected".to_string(),
    };
    let Some(((account_row, stamp, caller), total)) = page_head(conn, &count, &args).await? else {
        return Ok(None);
    };
    // The same order as `list::paginate` with `text_key`: missing values
    // first, case-insensitive, ties by id; an invitee's name counts only once
    // they accept (`Membership::visible_user`).
    // (expression, whether it can be NULL)
    let key = match query.order {
        None => None,
        Some(MemberOrder::FirstName) => Some((
            "CASE WHEN m.status = 'accepted' THEN lower(u.first_name) END",
            true,
        )),
        Some(MemberOrder::LastName) => Some((
            "CASE WHEN m.status = 'accepted' THEN lower(u.last_name) END",
            true,
        )),
        Some(MemberOrder::Email) => Some(("m.email_lower", false)),
        Some(MemberOrder::Status) => Some(("m.status", false)),
    };
    let dir = sql_direction(query.direction);
    // Ids are lowercase hex, which sorts the same in every collation, so
    // the indexes on (account_id, ..., id) serve these orders.
    let order = match key {
        None => format!("m.id {dir}"),
        Some((k, false)) => format!("{k}{collate} {dir}, m.id {dir}"),
        Some((k, true)) => format!("({k}) IS NOT NULL {dir}, ({k}){collate} {dir}, m.id {dir}"),
    };
    let per_page = i64::from(query.page.per_page);
    let offset = (i64::from(query.page.page) - 1) * per_page;
    // The page's ids first, from the memberships index alone where the order
    // allows (a deep page skips thousands of rows), then their rows.
    let join_users = if key.is_some_and(|(_, nullable)| nullable) {
        "LEFT JOIN users u ON u.email_lower = m.email_lower"
    } else {
        ""
    };
    let items = conn
        .rows(
            &format!(
                "SELECT {MEMBERSHIP_COLUMNS}, {USER_COLUMNS} FROM (\
                 SELECT m.id FROM memberships m {join_users} WHERE m.account_id = $1 {filter} \
                 ORDER BY {order} LIMIT {per_page} OFFSET {offset}) page \
                 JOIN memberships m ON m.id = page.id \
                 LEFT JOIN users u ON u.email_lower = m.email_lower ORDER BY {order}"
            ),
            &args,
            membership_from_row,
        )
        .await?;
    let catalog = catalog_for(conn, catalogs, account, &stamp, caller.iter().chain(&items)).await?;
    Ok(Some(MemberPage {
        account: account_row,
        catalog,
        caller,
        page: Page {
            items,
            request: query.page,
            total_count: usize::try_from(total).unwrap_or_default(),
        },
    }))
}

/// What a page of a user group's members asks for.
#[derive(Debug, Clone)]
pub struct GroupMemberQuery {
    pub group: Id,
    /// Keeps the members whose email holds this, folded.
    pub fuzzy_email: Option<String>,
    pub direction: Direction,
    pub page: crate::domain::list::PageRequest,
}

/// A page of a user group's pending and accepted members, by folded email then id, with
/// the account, its catalog and the caller's accepted membership, from the group's own key
/// (`membership_groups`): its cost is the page's, whatever the account's or the group's
/// size. The group may be another account's: the caller checks it is in the catalog, and a
/// group's members are its account's (the page joins memberships by id alone: a second
/// condition on the account is planned, without statistics, as a walk through the
/// account's every membership).
pub(super) async fn group_member_page(
    conn: &mut impl Conn,
    catalogs: &Catalogs,
    collate: &str,
    account: &Id,
    caller_email_folded: Option<&str>,
    query: &GroupMemberQuery,
) -> Result<Option<MemberPage>, StoreError> {
    // `$4` is the fuzzy filter as a LIKE pattern, written only when there is one.
    let pattern = query.fuzzy_email.as_ref().map(|f| {
        let escaped = f
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        format!("%{escaped}%")
    });
    let filter = match pattern {
        Some(_) => "AND g.email_lower LIKE $4 ESCAPE '\\'",
        None => "",
    };
    let args = [
        account.as_str().into(),
        query.group.as_str().into(),
        Arg::Text(caller_email_folded),
        Arg::Text(pattern.as_deref()),
    ];
    // Without a filter the group's kept count; with one, the filtered entries counted.
    let count = match pattern {
        Some(_) => format!(
            "(SELECT COUNT(*) FROM membership_groups g WHERE g.group_id = $2 \
             AND g.status <> 'rejected' {filter})"
        ),
        None => "COALESCE((SELECT live FROM user_group_counts WHERE group_id = $2), 0)".into(),
    };
    let Some(((account_row, stamp, caller), total)) = page_head(conn, &count, &args).await? else {
        return Ok(None);
    };
    let dir = sql_direction(query.direction);
    let per_page = i64::from(query.page.per_page);
    let offset = (i64::from(query.page.page) - 1) * per_page;
    let items = conn
        .rows(
            &format!(
                "SELECT {MEMBERSHIP_COLUMNS}, {USER_COLUMNS} FROM (\
                 SELECT g.membership_id, g.email_lower FROM membership_groups g \
                 WHERE g.group_id = $2 AND g.status <> 'rejected' {filter} \
                 ORDER BY g.email_lower {dir}, g.membership_id {dir} \
                 LIMIT {per_page} OFFSET {offset}) page \
                 JOIN memberships m ON m.id = page.membership_id \
                 LEFT JOIN users u ON u.email_lower = m.email_lower \
                 ORDER BY page.email_lower{collate} {dir}, page.membership_id{collate} {dir}"
            ),
            &args,
            membership_from_row,
        )
        .await?;
    let catalog = catalog_at(conn, catalogs, account, &stamp).await?;
    Ok(Some(MemberPage {
        account: account_row,
        catalog,
        caller,
        page: Page {
            items,
            request: query.page,
            total_count: usize::try_from(total).unwrap_or_default(),
        },
    }))
}

/// How a statement reaches a membership's account. Both read it by its key; PostgreSQL,
/// without the statistics only `ANALYZE` gathers (every database grown through the API),
/// planned the plain join as a hash of every account (1.5 ms for a user of 3 accounts in a
/// database of 5,456): its lateral form, fenced by `OFFSET 0` so that it is not flattened
/// back, reads the account of each membership by key. SQLite has no lateral join and plans
/// the plain one by key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountJoin {
    Keyed,
    Lateral,
}

impl AccountJoin {
    fn sql(self) -> &'static str {
        match self {
            AccountJoin::Keyed => "JOIN accounts a ON a.id = m.account_id",
            AccountJoin::Lateral => {
                "CROSS JOIN LATERAL (SELECT * FROM accounts x WHERE x.id = m.account_id OFFSET 0) a"
            }
        }
    }

    /// A user's memberships with their accounts; `$1` is the folded email. Their user is
    /// the caller, whom the request already has: joining `users` for it again would read a
    /// row the request holds, so `u_id` is NULL and the memberships' `user` is `None`.
    pub(super) fn own_memberships(self) -> &'static str {
        static BOTH: LazyLock<[String; 2]> = LazyLock::new(|| {
            [AccountJoin::Keyed, AccountJoin::Lateral].map(|join| {
                format!(
                    "SELECT {MEMBERSHIP_COLUMNS}, NULL AS u_id, {ACCOUNT_COLUMNS} FROM memberships m \
                     {} WHERE m.email_lower = $1",
                    join.sql()
                )
            })
        });
        &BOTH[self as usize]
    }

    /// One of them; `$2` is its id.
    pub(super) fn own_membership(self) -> &'static str {
        static BOTH: LazyLock<[String; 2]> = LazyLock::new(|| {
            [AccountJoin::Keyed, AccountJoin::Lateral]
                .map(|join| format!("{} AND m.id = $2", join.own_memberships()))
        });
        &BOTH[self as usize]
    }
}

fn with_account(row: &dyn Cols) -> Result<(Account, String, Membership), StoreError> {
    Ok((
        account_from_row(row)?,
        row.text("a_catalog_stamp")?,
        membership_from_row(row)?,
    ))
}

/// Every membership of the user with this folded email, with its account.
pub(super) async fn user_memberships(
    conn: &mut impl Conn,
    catalogs: &Catalogs,
    join: AccountJoin,
    email_folded: &str,
) -> Result<Vec<Arc<UserMembership>>, StoreError> {
    // One statement, or two when a catalog is needed and not kept at the stamp read: a
    // catalog newer than the memberships at worst lacks a group they name, which the views
    // skip.
    let found = conn
        .rows(join.own_memberships(), &[email_folded.into()], with_account)
        .await?;
    let mut kept = HashMap::new();
    let mut missing = false;
    for (account, stamp, membership) in &found {
        if membership.needs_account_catalog() {
            match catalogs.at(account.id.as_str(), stamp) {
                Some(catalog) => {
                    kept.insert(account.id.as_str().to_string(), catalog);
                }
                None => missing = true,
            }
        }
    }
    if missing {
        let read = load_catalogs(conn, catalogs, ACCOUNTS_OF_EMAIL, email_folded).await?;
        kept.extend(read.into_iter().map(|(id, (_, catalog))| (id, catalog)));
    }
    Ok(found
        .into_iter()
        .map(|(account, _, membership)| {
            let catalog = kept
                .get(account.id.as_str())
                .filter(|_| membership.needs_account_catalog())
                .map(Arc::clone)
                .unwrap_or_else(no_catalog);
            Arc::new(UserMembership::new(account, membership, catalog))
        })
        .collect())
}

/// The user's memberships as the name's order and filter need them: id, status, name.
pub(super) fn own_memberships_narrow(join: AccountJoin) -> String {
    format!(
        "SELECT m.id AS m_id, m.status AS m_status, a.name AS a_name \
         FROM memberships m {} WHERE m.email_lower = $1",
        join.sql()
    )
}

/// The statement of a page in id or status order (`$1` the folded email, `$2` the status
/// when filtered): the email's kept count, and the page's memberships with their accounts.
pub(super) fn own_page_statement(query: &OwnMembershipQuery) -> String {
    let dir = sql_direction(query.direction);
    let (filter, count) = match query.status {
        Some(status) => ("AND m.status = $2", format!("c.{}", status.as_str())),
        None => ("", "c.pending + c.accepted + c.rejected".to_string()),
    };
    // Statuses and ids are lowercase ASCII, which sorts the same in every collation, so the
    // email's indexes serve these orders.
    let order = match query.order {
        MembershipOrder::Status => format!("m.status {dir}, m.id {dir}"),
        _ => format!("m.id {dir}"),
    };
    let per_page = i64::from(query.page.per_page);
    let offset = (i64::from(query.page.page) - 1) * per_page;
    // The page's account by key: from the page's few rows, every plan reads it so.
    format!(
        "SELECT {MEMBERSHIP_COLUMNS}, NULL AS u_id, {ACCOUNT_COLUMNS}, counted.n AS n \
         FROM (SELECT COALESCE((SELECT {count} FROM membership_email_counts c \
         WHERE c.email_lower = $1), 0) AS n) counted \
         LEFT JOIN (SELECT m.id FROM memberships m WHERE m.email_lower = $1 {filter} \
         ORDER BY {order} LIMIT {per_page} OFFSET {offset}) page ON TRUE \
         LEFT JOIN memberships m ON m.id = page.id \
         LEFT JOIN accounts a ON a.id = m.account_id ORDER BY {order}"
    )
}

/// One page of the user's memberships (`$1` the folded email), with their accounts and
/// the catalogs they need.
///
/// Ordered by id or status and filtered by status at most, the page comes from the
/// `(email_lower, id)` or `(email_lower, status, id)` index and its count from the counts
/// kept per email (migration 0013), in one statement: its cost is the page's, whatever the
/// user's memberships number. Ordered or filtered by the account's name, which must fold
/// as the rest of Roster folds it (PostgreSQL's `lower()` follows the database's locale),
/// the user's memberships are read narrow (id, status, account name), filtered and ordered
/// here as [`OwnMembershipQuery::page_of`] does, and only the page's rows read whole.
pub(super) async fn own_membership_page(
    conn: &mut impl Conn,
    catalogs: &Catalogs,
    join: AccountJoin,
    email_folded: &str,
    query: &OwnMembershipQuery,
) -> Result<Page<Arc<UserMembership>>, StoreError> {
    let by_name = !query.account_names.is_empty() || query.order == MembershipOrder::AccountName;
    let (found, total) = if by_name {
        let rows = conn
            .rows(&own_memberships_narrow(join), &[email_folded.into()], |r| {
                Ok((
                    r.text("m_id")?,
                    Status::from_str(&r.text("m_status")?)?,
                    r.text("a_name")?,
                ))
            })
            .await?;
        let kept: Vec<_> = rows
            .into_iter()
            .filter(|(_, status, name)| query.keeps_row(*status, name))
            .collect();
        let page = crate::domain::list::paginate(
            kept,
            query.page,
            query.direction,
            |(_, status, name)| query.key(*status, name),
            |(id, _, _)| id.as_str(),
        );
        let ids: Vec<&str> = page.items.iter().map(|(id, _, _)| id.as_str()).collect();
        let mut found = Vec::with_capacity(ids.len());
        if !ids.is_empty() {
            let listed = (2..ids.len() + 2)
                .map(|n| format!("${n}"))
                .collect::<Vec<_>>()
                .join(", ");
            let mut args: Vec<Arg<'_>> = vec![email_folded.into()];
            args.extend(ids.iter().map(|id| Arg::from(*id)));
            let mut rows = conn
                .rows(
                    &format!("{} AND m.id IN ({listed})", join.own_memberships()),
                    &args,
                    with_account,
                )
                .await?;
            // In the page's order.
            for id in &ids {
                if let Some(at) = rows.iter().position(|(_, _, m)| m.id.as_str() == *id) {
                    found.push(rows.swap_remove(at));
                }
            }
        }
        (found, page.total_count as i64)
    } else {
        counted_rows(
            conn,
            &own_page_statement(query),
            &[
                email_folded.into(),
                Arg::Text(query.status.map(|s| s.as_str())),
            ],
            "m_id",
            with_account,
        )
        .await?
    };
    let mut items = Vec::with_capacity(found.len());
    for row in found {
        items.push(with_catalog(conn, catalogs, row).await?);
    }
    Ok(Page {
        items,
        request: query.page,
        total_count: usize::try_from(total).unwrap_or_default(),
    })
}

/// One membership of the user with this folded email, with its account.
pub(super) async fn user_membership(
    conn: &mut impl Conn,
    catalogs: &Catalogs,
    join: AccountJoin,
    email_folded: &str,
    id: &Id,
) -> Result<Option<Arc<UserMembership>>, StoreError> {
    // One statement, or two when a catalog is needed and not kept (as above).
    let Some(row) = conn
        .row(
            join.own_membership(),
            &[email_folded.into(), id.as_str().into()],
            with_account,
        )
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(with_catalog(conn, catalogs, row).await?))
}

/// A membership read with its account and the account's stamp, with the catalog it needs.
async fn with_catalog(
    conn: &mut impl Conn,
    catalogs: &Catalogs,
    (account, stamp, membership): (Account, String, Membership),
) -> Result<Arc<UserMembership>, StoreError> {
    let catalog = catalog_for(
        conn,
        catalogs,
        &account.id,
        &stamp,
        std::iter::once(&membership),
    )
    .await?;
    Ok(Arc::new(UserMembership::new(account, membership, catalog)))
}

const AUDIT_COLUMNS: &str = "id, account_id, actor_type, actor_id, actor_email, actor_ip, \
    token_id, token_name, action_type, description, resource_type, resource_id, old_value, \
    new_value, ray_id, method, uri, created_on";

fn audit_from_row(row: &dyn Cols) -> Result<audit::Entry, StoreError> {
    let id = |name: &str| -> Result<Option<Id>, StoreError> {
        Ok(row.maybe_text(name)?.map(Id::from_trusted))
    };
    let value = |name: &str| -> Result<Option<serde_json::Value>, StoreError> {
        row.maybe_text(name)?
            .map(|v| json(&v, "audit_logs.value"))
            .transpose()
    };
    let kind = row.text("actor_type")?;
    let raw = match (
        row.maybe_text("ray_id")?,
        row.maybe_text("method")?,
        row.maybe_text("uri")?,
    ) {
        (Some(ray), Some(method), Some(uri)) => Some(audit::Raw { ray, method, uri }),
        _ => None,
    };
    Ok(audit::Entry {
        id: Id::from_trusted(row.text("id")?),
        account_id: id("account_id")?,
        actor: audit::Actor {
            kind: audit::ActorKind::parse(&kind)
                .ok_or_else(|| corrupt("audit_logs", "unknown actor_type"))?,
            id: id("actor_id")?,
            email: row.maybe_text("actor_email")?,
            ip: row
                .maybe_text("actor_ip")?
                .map(|ip| ip.parse().map_err(|_| corrupt("audit_logs", "actor_ip")))
                .transpose()?,
            token_id: id("token_id")?,
            token_name: row.maybe_text("token_name")?,
        },
        raw,
        action: row.text("action_type")?,
        description: row.text("description")?,
        resource_type: row.text("resource_type")?,
        resource_id: row.text("resource_id")?,
        old_value: value("old_value")?,
        new_value: value("new_value")?,
        when: row.text("created_on")?,
    })
}

/// A page of the audit log, in the database's order on its `(scope, created_on, id)` index:
/// only the filters asked for are in the statement, and a cursor seeks rather than skips,
/// so the newest page and each next one cost the same however long the log is.
pub(super) async fn audit_log(
    conn: &mut impl Conn,
    collate: &str,
    q: &audit::Query,
) -> Result<Vec<audit::Entry>, StoreError> {
    let (scope_column, scope) = match &q.scope {
        audit::Scope::Account(id) => ("account_id", id.as_str()),
        audit::Scope::Actor(id) => ("actor_id", id.as_str()),
    };
    let at = format!("created_on{collate}");
    let mut values: Vec<&str> = vec![scope];
    let mut sql = format!("SELECT {AUDIT_COLUMNS} FROM audit_logs WHERE {scope_column} = $1");
    for filter in &q.filters {
        sql.push_str(" AND ");
        sql.push_str(&audit_condition(filter, &mut values));
    }
    for (bound, value) in [(">=", &q.since), ("<", &q.before)] {
        if let Some(value) = value {
            values.push(value);
            sql.push_str(&format!(" AND {at} {bound} ${}", values.len()));
        }
    }
    let (order, past) = if q.oldest_first {
        ("ASC", ">")
    } else {
        ("DESC", "<")
    };
    if let Some((when, id)) = &q.after {
        values.push(when);
        values.push(id.as_str());
        let n = values.len();
        sql.push_str(&format!(
            " AND ({at}, id{collate}) {past} (${}, ${n})",
            n - 1
        ));
    }
    sql.push_str(&format!(
        " ORDER BY {at} {order}, id{collate} {order} LIMIT {} OFFSET {}",
        q.limit, q.offset
    ));
    let args: Vec<Arg<'_>> = values.iter().map(|v| Arg::Text(Some(v))).collect();
    conn.rows(&sql, &args, audit_from_row).await
}

/// One filter of an audit read as SQL, its values bound as parameters after `values`.
fn audit_condition<'q>(filter: &'q audit::Filter, values: &mut Vec<&'q str>) -> String {
    use audit::Field;
    match filter {
        audit::Filter::Requested(true) => "ray_id IS NOT NULL".into(),
        audit::Filter::Requested(false) => "ray_id IS NULL".into(),
        audit::Filter::In {
            field,
            values: set,
            exclude,
        } => {
            let column = match field {
                Field::Id => "id",
                Field::Action => "action_type",
                Field::ActorEmail => "lower(actor_email)",
                Field::ActorIp => "actor_ip",
                Field::ActorId => "actor_id",
                Field::ActorKind => "actor_type",
                Field::TokenId => "token_id",
                Field::TokenName => "token_name",
                Field::ResourceType => "resource_type",
                Field::ResourceId => "resource_id",
                Field::RayId => "ray_id",
                Field::Method => "method",
                Field::Uri => "uri",
            };
            if set.is_empty() {
                return if *exclude { "1 = 1" } else { "1 = 0" }.into();
            }
            let placeholders: Vec<String> = set
                .iter()
                .map(|value| {
                    values.push(value);
                    format!("${}", values.len())
                })
                .collect();
            let set = placeholders.join(", ");
            if *exclude {
                // An entry without the field is in no set: no exclusion takes it out.
                format!("({column} IS NULL OR {column} NOT IN ({set}))")
            } else {
                format!("{column} IN ({set})")
            }
        }
    }
}
