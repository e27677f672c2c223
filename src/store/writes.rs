//! What a write does to the rows: a [`Change`] applied inside the write's transaction
//! (memberships, accounts, catalogs, an account's kept member counts), the audit entries
//! recorded with it, and a refused row's broken rule read off either driver's error.

use std::collections::HashMap;

use super::StoreError;
use super::conn::{Arg, Conn};
use super::sql::to_json;
use crate::domain::audit;
use crate::domain::*;

pub(super) fn unique_violation(e: &StoreError) -> bool {
    violation(e).is_some_and(|v| v.kind == Violation::Unique)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Violation {
    Unique,
    Reference,
    Check,
}

pub(super) struct Refusal {
    pub(super) kind: Violation,
    pub(super) message: String,
}

/// The rule a refused row broke, on either backend.
pub(super) fn violation(e: &StoreError) -> Option<Refusal> {
    match e {
        StoreError::Database(sqlx::Error::Database(d)) => {
            let kind = if d.is_unique_violation() {
                Violation::Unique
            } else if d.is_foreign_key_violation() {
                Violation::Reference
            } else if d.is_check_violation() {
                Violation::Check
            } else {
                return None;
            };
            Some(Refusal {
                kind,
                message: d.message().to_string(),
            })
        }
        StoreError::Sqlite(rusqlite::Error::SqliteFailure(f, message)) => {
            use rusqlite::ffi;
            let kind = match f.extended_code {
                ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                    Violation::Unique
                }
                ffi::SQLITE_CONSTRAINT_FOREIGNKEY => Violation::Reference,
                ffi::SQLITE_CONSTRAINT_CHECK => Violation::Check,
                _ => return None,
            };
            Some(Refusal {
                kind,
                message: message.clone().unwrap_or_else(|| f.to_string()),
            })
        }
        _ => None,
    }
}

/// Inserts or updates a membership. An id taken by another account's membership is refused
/// rather than overwritten.
pub(super) async fn put_membership(conn: &mut impl Conn, m: &Membership) -> Result<(), StoreError> {
    let (grants, groups) = (to_json(&m.grants), to_json(&m.groups));
    let result = conn
        .execute(
            "INSERT INTO memberships (id, account_id, email, email_lower, status, grants, code, \
             api_access_enabled, created_on, modified_on, group_ids) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (id) DO UPDATE SET email = excluded.email, email_lower = excluded.email_lower, \
             status = excluded.status, grants = excluded.grants, \
             api_access_enabled = excluded.api_access_enabled, modified_on = excluded.modified_on, \
             group_ids = excluded.group_ids \
             WHERE memberships.account_id = excluded.account_id",
            &[
                (&m.id).into(),
                (&m.account_id).into(),
                m.email.as_str().into(),
                m.email.folded().into(),
                m.status.as_str().into(),
                (&grants).into(),
                (&m.code).into(),
                m.api_access_enabled.into(),
                (&m.created_on).into(),
                (&m.modified_on).into(),
                (&groups).into(),
            ],
        )
        .await;
    match result {
        Err(e) if unique_violation(&e) => {
            Err(DomainError::AlreadyMember(m.email.as_str().to_string()).into())
        }
        Ok(0) => Err(DomainError::Duplicate(format!("Membership id {}", m.id)).into()),
        other => other.map(|_| ()),
    }
}

/// Stores an account's own fields: a new account, or with `replace` an existing one.
pub(super) async fn put_account(
    conn: &mut impl Conn,
    a: &Account,
    replace: bool,
) -> Result<(), StoreError> {
    // A new account's catalog gets its first stamp; replacing the row keeps it.
    let sql = if replace {
        "INSERT INTO accounts (id, name, type, created_on, enforce_twofactor, abuse_contact_email, \
         default_nameservers, use_account_custom_ns_by_default, managed_by, catalog_stamp) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (id) DO UPDATE SET \
         name = excluded.name, type = excluded.type, enforce_twofactor = excluded.enforce_twofactor, \
         abuse_contact_email = excluded.abuse_contact_email, \
         default_nameservers = excluded.default_nameservers, \
         use_account_custom_ns_by_default = excluded.use_account_custom_ns_by_default, \
         managed_by = excluded.managed_by"
    } else {
        "INSERT INTO accounts (id, name, type, created_on, enforce_twofactor, abuse_contact_email, \
         default_nameservers, use_account_custom_ns_by_default, managed_by, catalog_stamp) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    };
    let managed_by = a.managed_by.as_ref().map(to_json);
    let stamp = Id::generate();
    let result = conn
        .execute(
            sql,
            &[
                (&a.id).into(),
                (&a.name).into(),
                a.account_type.as_str().into(),
                (&a.created_on).into(),
                a.settings.enforce_twofactor.into(),
                (&a.settings.abuse_contact_email).into(),
                a.settings.default_nameservers.as_str().into(),
                a.settings.use_account_custom_ns_by_default.into(),
                (&managed_by).into(),
                (&stamp).into(),
            ],
        )
        .await;
    match result {
        Err(e) if unique_violation(&e) => {
            Err(DomainError::Duplicate(format!("Account {}", a.id)).into())
        }
        other => other.map(|_| ()),
    }
}

/// Writes audit entries, in the transaction of the change they record.
pub(super) async fn record(
    conn: &mut impl Conn,
    entries: &[audit::Entry],
) -> Result<(), StoreError> {
    for e in entries {
        let old = e.old_value.as_ref().map(|v| v.to_string());
        let new = e.new_value.as_ref().map(|v| v.to_string());
        let raw = e.raw.as_ref();
        let ip = e.actor.ip.map(|ip| ip.to_string());
        conn.execute(
            "INSERT INTO audit_logs (id, account_id, actor_type, actor_id, actor_email, actor_ip, \
             token_id, token_name, action_type, description, resource_type, resource_id, \
             old_value, new_value, ray_id, method, uri, created_on) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
            &[
                (&e.id).into(),
                Arg::Text(e.account_id.as_ref().map(Id::as_str)),
                e.actor.kind.as_str().into(),
                Arg::Text(e.actor.id.as_ref().map(Id::as_str)),
                (&e.actor.email).into(),
                (&ip).into(),
                Arg::Text(e.actor.token_id.as_ref().map(Id::as_str)),
                (&e.actor.token_name).into(),
                (&e.action).into(),
                (&e.description).into(),
                (&e.resource_type).into(),
                (&e.resource_id).into(),
                (&old).into(),
                (&new).into(),
                Arg::Text(raw.map(|r| r.ray.as_str())),
                Arg::Text(raw.map(|r| r.method.as_str())),
                Arg::Text(raw.map(|r| r.uri.as_str())),
                (&e.when).into(),
            ],
        )
        .await?;
    }
    Ok(())
}

/// How a write changes its account's membership counts (pending, accepted, rejected), from
/// the status each membership it touches had: the one its decision read or, for one it did
/// not read (a new one, or a fixture naming an id), the database's, which
/// [`count_members`] asks for in the statement that adds the counts.
pub(super) struct CountChange {
    pub(super) counts: [i64; 3],
    /// Memberships the decision did not read, counted as new.
    pub(super) unread: Vec<Id>,
}

pub(super) fn count_changes(state: &AccountState, changes: &[Change]) -> CountChange {
    let mut known: HashMap<&Id, Option<Status>> = state
        .members
        .iter()
        .map(|m| (&m.id, Some(m.status)))
        .collect();
    let mut counted = CountChange {
        counts: [0; 3],
        unread: Vec::new(),
    };
    for change in changes {
        let (id, new) = match change {
            Change::PutMembership(m) => (&m.id, Some(m.status)),
            Change::DeleteMembership(id) => (id, None),
            _ => continue,
        };
        let old = known.get(id).copied().unwrap_or_else(|| {
            counted.unread.push(id.clone());
            None
        });
        if let Some(old) = old {
            counted.counts[count_slot(old)] -= 1;
        }
        if let Some(new) = new {
            counted.counts[count_slot(new)] += 1;
        }
        known.insert(id, new);
    }
    counted
}

/// Where a status is counted in the `[pending, accepted, rejected]` a write adds.
pub(super) fn count_slot(status: Status) -> usize {
    match status {
        Status::Pending => 0,
        Status::Accepted => 1,
        Status::Rejected => 2,
    }
}

/// Adds a write's counts to its account's, before its changes are applied: the memberships
/// its decision did not read are looked up in the same statement (a round trip less on
/// PostgreSQL for every invitation), each taken off the count of the status it has.
pub(super) async fn count_members(
    conn: &mut impl Conn,
    account: &Id,
    change: &CountChange,
) -> Result<(), StoreError> {
    if change.counts == [0; 3] && change.unread.is_empty() {
        return Ok(());
    }
    let mut args = vec![
        account.into(),
        Arg::Int(change.counts[0]),
        Arg::Int(change.counts[1]),
        Arg::Int(change.counts[2]),
    ];
    let unread: Vec<String> = (0..change.unread.len())
        .map(|i| format!("${}", i + 5))
        .collect();
    args.extend(change.unread.iter().map(Arg::from));
    let column = |status: &str, n: usize| {
        let stored = if unread.is_empty() {
            String::new()
        } else {
            format!(
                " - (SELECT COUNT(*) FROM memberships m WHERE m.account_id = $1 \
                 AND m.status = '{status}' AND m.id IN ({}))",
                unread.join(", ")
            )
        };
        format!("members_{status} = members_{status} + ${n}{stored}")
    };
    let sql = format!(
        "UPDATE accounts SET {}, {}, {} WHERE id = $1",
        column("pending", 2),
        column("accepted", 3),
        column("rejected", 4)
    );
    conn.execute(&sql, &args).await?;
    Ok(())
}

/// Whether a change alters the account's catalog, whose stamp must then change (see
/// `cache/catalogs.rs`).
pub(super) fn changes_catalog(change: &Change) -> bool {
    match change {
        Change::PutCustomRole(_)
        | Change::PutResourceGroup(_)
        | Change::DeleteResourceGroup(_)
        | Change::PutUserGroup(_)
        | Change::DeleteUserGroup(_) => true,
        Change::PutMembership(_)
        | Change::DeleteMembership(_)
        | Change::PutAccount(_)
        | Change::DeleteAccount => false,
    }
}

pub(super) async fn apply(
    conn: &mut impl Conn,
    account_id: &Id,
    change: &Change,
) -> Result<(), StoreError> {
    match change {
        Change::PutMembership(m) => put_membership(conn, m).await?,
        Change::DeleteMembership(id) => {
            conn.execute(
                "DELETE FROM memberships WHERE id = $1 AND account_id = $2",
                &[id.into(), account_id.into()],
            )
            .await?;
        }
        Change::PutResourceGroup(g) => {
            let (scope, meta) = (to_json(&g.scope), to_json(&g.meta));
            let done = conn
                .execute(
                    "INSERT INTO resource_groups (id, account_id, name, scope, meta) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (id) DO UPDATE SET name = excluded.name, scope = excluded.scope, meta = excluded.meta \
                     WHERE resource_groups.account_id = excluded.account_id",
                    &[(&g.id).into(), account_id.into(), (&g.name).into(), (&scope).into(), (&meta).into()],
                )
                .await?;
            if done == 0 {
                return Err(DomainError::Duplicate(format!("Resource group id {}", g.id)).into());
            }
        }
        Change::DeleteResourceGroup(id) => {
            conn.execute(
                "DELETE FROM resource_groups WHERE id = $1 AND account_id = $2",
                &[id.into(), account_id.into()],
            )
            .await?;
        }
        Change::PutAccount(a) => put_account(conn, a, true).await?,
        Change::PutUserGroup(g) => {
            let policies = to_json(&g.policies);
            let done = conn
                .execute(
                    "INSERT INTO user_groups (id, account_id, name, policies, created_on, modified_on) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
                     policies = excluded.policies, modified_on = excluded.modified_on \
                     WHERE user_groups.account_id = excluded.account_id",
                    &[(&g.id).into(), account_id.into(), (&g.name).into(), (&policies).into(), (&g.created_on).into(), (&g.modified_on).into()],
                )
                .await?;
            if done == 0 {
                return Err(DomainError::Duplicate(format!("User group id {}", g.id)).into());
            }
        }
        Change::DeleteUserGroup(id) => {
            conn.execute(
                "DELETE FROM user_groups WHERE id = $1 AND account_id = $2",
                &[id.into(), account_id.into()],
            )
            .await?;
        }
        Change::DeleteAccount => {
            // Children first: the same whether or not the connection enforces the foreign
            // keys' cascades.
            for table in [
                "tokens",
                "memberships",
                "user_groups",
                "resource_groups",
                "account_roles",
            ] {
                conn.execute(
                    &format!("DELETE FROM {table} WHERE account_id = $1"),
                    &[account_id.into()],
                )
                .await?;
            }
            conn.execute("DELETE FROM accounts WHERE id = $1", &[account_id.into()])
                .await?;
        }
        Change::PutCustomRole(r) => {
            let permissions = to_json(&r.permissions);
            conn.execute(
                "INSERT INTO account_roles (account_id, id, name, description, permissions) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (account_id, id) DO UPDATE SET \
                 name = excluded.name, description = excluded.description, permissions = excluded.permissions",
                &[account_id.into(), (&r.id).into(), (&r.name).into(), (&r.description).into(), (&permissions).into()],
            )
            .await?;
        }
    }
    Ok(())
}
