//! The export format of `roster export` and `roster import`: every table and every column
//! as stored, so that a deployment moves between SQLite and PostgreSQL with nothing lost.
//! That includes the API key and token hashes: an export is as secret as the database.
//! JSON-valued columns stay the strings they are in the database, so an export holds
//! exactly what was stored and nothing is re-encoded on the way through.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::domain::permissions::Permissions;
use crate::domain::tokens::{IpCondition, TokenPolicy, TokenStatus};
use crate::domain::types::DefaultNameservers;
use crate::domain::{
    AccountType, Email, Grants, Id, InGroup, ManagedBy, Meta, Policy, Scope, Status,
};
use crate::store::schema_version;

pub const FORMAT: &str = "roster-export";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Export {
    pub format: String,
    /// The schema (migration) version the rows follow.
    pub version: i64,
    pub users: Vec<UserRow>,
    pub accounts: Vec<AccountRow>,
    pub account_roles: Vec<AccountRoleRow>,
    pub resource_groups: Vec<ResourceGroupRow>,
    /// Absent from exports of schema versions before user groups, which `check` refuses
    /// by their version.
    #[serde(default)]
    pub user_groups: Vec<UserGroupRow>,
    pub memberships: Vec<MembershipRow>,
    pub tokens: Vec<TokenRow>,
    /// The audit log: an import or a reset restores it with the rest.
    #[serde(default)]
    pub audit_logs: Vec<AuditRow>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserRow {
    pub id: String,
    pub email: String,
    pub email_lower: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub telephone: Option<String>,
    pub country: Option<String>,
    pub zipcode: Option<String>,
    pub two_factor: bool,
    pub api_key_hash: String,
    pub created_on: String,
    pub modified_on: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountRow {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub account_type: String,
    pub created_on: String,
    pub enforce_twofactor: bool,
    pub abuse_contact_email: Option<String>,
    pub default_nameservers: String,
    pub use_account_custom_ns_by_default: bool,
    pub managed_by: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountRoleRow {
    pub account_id: String,
    pub id: String,
    pub name: String,
    pub description: String,
    pub permissions: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceGroupRow {
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub scope: String,
    pub meta: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MembershipRow {
    pub id: String,
    pub account_id: String,
    pub email: String,
    pub email_lower: String,
    pub status: String,
    pub grants: String,
    pub code: String,
    pub api_access_enabled: Option<bool>,
    pub created_on: String,
    pub modified_on: String,
    #[serde(default = "no_groups")]
    pub group_ids: String,
}

fn no_groups() -> String {
    "[]".into()
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserGroupRow {
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub policies: String,
    pub created_on: String,
    pub modified_on: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRow {
    pub id: String,
    /// Exactly one of `user_id` and `account_id`.
    pub user_id: Option<String>,
    pub account_id: Option<String>,
    pub creator_email: Option<String>,
    pub name: String,
    pub token_hash: String,
    pub status: String,
    pub policies: String,
    pub not_before: Option<String>,
    pub expires_on: Option<String>,
    pub request_ip: Option<String>,
    pub created_on: String,
    pub modified_on: String,
    pub last_used_on: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRow {
    pub id: String,
    pub account_id: Option<String>,
    pub actor_type: String,
    pub actor_id: Option<String>,
    pub actor_email: Option<String>,
    pub actor_ip: Option<String>,
    pub token_id: Option<String>,
    pub token_name: Option<String>,
    pub action_type: String,
    pub description: String,
    pub resource_type: String,
    pub resource_id: String,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
    pub ray_id: Option<String>,
    pub method: Option<String>,
    pub uri: Option<String>,
    pub created_on: String,
}

/// A table's row as the export holds it: its fields are the table's columns, by name.
pub(super) trait Row:
    Serialize + serde::de::DeserializeOwned + Default + Send + Sync
{
    const TABLE: &'static str;
    /// Boolean columns that may be NULL: a NULL bound to one must say so (PostgreSQL types
    /// parameters); a column that cannot be NULL says so by its default value.
    const NULLABLE_FLAGS: &'static [&'static str] = &[];
}

macro_rules! rows {
    ($($row:ty => $table:literal),* $(,)?) => {
        $(impl Row for $row {
            const TABLE: &'static str = $table;
        })*
    };
}

rows! {
    UserRow => "users",
    AccountRow => "accounts",
    AccountRoleRow => "account_roles",
    ResourceGroupRow => "resource_groups",
    UserGroupRow => "user_groups",
    TokenRow => "tokens",
    AuditRow => "audit_logs",
}

impl Row for MembershipRow {
    const TABLE: &'static str = "memberships";
    const NULLABLE_FLAGS: &'static [&'static str] = &["api_access_enabled"];
}

/// What an export holds, per table, for the operator's summary.
impl std::fmt::Display for Export {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let counts: Vec<String> = self
            .counts()
            .iter()
            .map(|(what, n)| format!("{n} {what}"))
            .collect();
        f.write_str(&counts.join(", "))
    }
}

/// Rows an import has written so far, for a progress display read from another task while
/// the import runs. An import retried from the start begins its count again.
#[derive(Debug, Default)]
pub struct Progress {
    rows: std::sync::atomic::AtomicU64,
}

impl Progress {
    pub fn rows(&self) -> u64 {
        self.rows.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn add(&self, rows: usize) {
        self.rows
            .fetch_add(rows as u64, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn restart(&self) {
        self.rows.store(0, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Export {
    /// Rows in every table together: what an import writes.
    pub fn rows(&self) -> u64 {
        self.counts().iter().map(|(_, n)| *n as u64).sum()
    }

    /// Each table's rows, named for a person.
    fn counts(&self) -> [(&'static str, usize); 8] {
        [
            ("users", self.users.len()),
            ("accounts", self.accounts.len()),
            ("account roles", self.account_roles.len()),
            ("resource groups", self.resource_groups.len()),
            ("user groups", self.user_groups.len()),
            ("memberships", self.memberships.len()),
            ("tokens", self.tokens.len()),
            ("audit log entries", self.audit_logs.len()),
        ]
    }

    /// Puts every table in primary-key order (bytewise, the same on both backends), so
    /// that two exports of the same data are identical.
    pub fn sort(&mut self) {
        self.users.sort_by(|a, b| a.id.cmp(&b.id));
        self.accounts.sort_by(|a, b| a.id.cmp(&b.id));
        self.account_roles
            .sort_by(|a, b| (&a.account_id, &a.id).cmp(&(&b.account_id, &b.id)));
        self.resource_groups.sort_by(|a, b| a.id.cmp(&b.id));
        self.user_groups.sort_by(|a, b| a.id.cmp(&b.id));
        self.memberships.sort_by(|a, b| a.id.cmp(&b.id));
        self.tokens.sort_by(|a, b| a.id.cmp(&b.id));
        self.audit_logs.sort_by(|a, b| a.id.cmp(&b.id));
    }

    /// Checks every value the way Roster itself would have stored it, and that no row's key
    /// is repeated, so a hand-edited or truncated file is refused before anything is
    /// written. The database checks the rest: unique emails and secrets, one live membership
    /// per account and email, references.
    pub fn check(&self) -> Result<(), String> {
        if self.format != FORMAT {
            return Err(format!("not a {FORMAT} file (format {:?})", self.format));
        }
        let (version, _) = schema_version();
        if self.version != version {
            return Err(format!(
                "the export follows schema version {}, this roster's is {version}: import it with the roster version that made it, then upgrade",
                self.version
            ));
        }
        // Before anything reads a table by its ids (the groups below), and said plainly: the
        // database would refuse a repeat only as a row it cannot insert, and the audit log,
        // which keeps no index on its id (see migration 0007), not at all.
        once("users", self.users.iter().map(|r| r.id.as_str()))?;
        once("accounts", self.accounts.iter().map(|r| r.id.as_str()))?;
        // A role's id is its account's: keyed by both.
        once(
            "account_roles",
            self.account_roles
                .iter()
                .map(|r| format!("{} of account {}", r.id, r.account_id)),
        )?;
        once(
            "resource_groups",
            self.resource_groups.iter().map(|r| r.id.as_str()),
        )?;
        once(
            "user_groups",
            self.user_groups.iter().map(|r| r.id.as_str()),
        )?;
        once(
            "memberships",
            self.memberships.iter().map(|r| r.id.as_str()),
        )?;
        once("tokens", self.tokens.iter().map(|r| r.id.as_str()))?;
        once("audit_logs", self.audit_logs.iter().map(|r| r.id.as_str()))?;
        for u in &self.users {
            let at = format!("users[{}]", u.id);
            id(&u.id, &at)?;
            email(&u.email, &u.email_lower, &at)?;
            hex_digest(&u.api_key_hash, &at)?;
            timestamps(&[&u.created_on, &u.modified_on], &at)?;
        }
        for a in &self.accounts {
            let at = format!("accounts[{}]", a.id);
            id(&a.id, &at)?;
            AccountType::from_str(&a.account_type).map_err(|e| format!("{at}: {e}"))?;
            DefaultNameservers::from_str(&a.default_nameservers)
                .map_err(|e| format!("{at}: {e}"))?;
            timestamps(&[&a.created_on], &at)?;
            if let Some(m) = &a.managed_by {
                json::<ManagedBy>(m, &at, "managed_by")?;
            }
        }
        for r in &self.account_roles {
            let at = format!("account_roles[{}]", r.id);
            id(&r.account_id, &at)?;
            id(&r.id, &at)?;
            json::<Permissions>(&r.permissions, &at, "permissions")?;
        }
        for g in &self.resource_groups {
            let at = format!("resource_groups[{}]", g.id);
            id(&g.id, &at)?;
            id(&g.account_id, &at)?;
            json::<Scope>(&g.scope, &at, "scope")?;
            json::<Meta>(&g.meta, &at, "meta")?;
        }
        for m in &self.memberships {
            let at = format!("memberships[{}]", m.id);
            id(&m.id, &at)?;
            id(&m.account_id, &at)?;
            email(&m.email, &m.email_lower, &at)?;
            Status::from_str(&m.status).map_err(|e| format!("{at}: {e}"))?;
            json::<Grants>(&m.grants, &at, "grants")?;
            json::<Vec<InGroup>>(&m.group_ids, &at, "group_ids")?;
            timestamps(&[&m.created_on, &m.modified_on], &at)?;
        }
        // A membership is in groups of its own account, each once: the group index
        // (`membership_groups`, kept from these) counts and pages a group's members by it.
        let groups: std::collections::HashMap<&str, &str> = self
            .user_groups
            .iter()
            .map(|g| (g.id.as_str(), g.account_id.as_str()))
            .collect();
        for m in &self.memberships {
            let at = format!("memberships[{}]", m.id);
            let ins: Vec<InGroup> = serde_json::from_str(&m.group_ids).unwrap_or_default();
            let mut seen = std::collections::HashSet::new();
            for g in &ins {
                if groups.get(g.id.as_str()) != Some(&m.account_id.as_str()) {
                    return Err(format!(
                        "{at}: group_ids names {}, which is no user group of its account",
                        g.id
                    ));
                }
                if !seen.insert(g.id.as_str()) {
                    return Err(format!("{at}: group_ids names {} twice", g.id));
                }
            }
        }
        for g in &self.user_groups {
            let at = format!("user_groups[{}]", g.id);
            id(&g.id, &at)?;
            id(&g.account_id, &at)?;
            json::<Vec<Policy>>(&g.policies, &at, "policies")?;
            timestamps(&[&g.created_on, &g.modified_on], &at)?;
        }
        for e in &self.audit_logs {
            let at = format!("audit_logs[{}]", e.id);
            id(&e.id, &at)?;
            for owner in [&e.account_id, &e.actor_id, &e.token_id]
                .into_iter()
                .flatten()
            {
                id(owner, &at)?;
            }
            if e.actor_ip
                .as_ref()
                .is_some_and(|ip| ip.parse::<std::net::IpAddr>().is_err())
            {
                return Err(format!("{at}: actor_ip is not an IP address"));
            }
            if crate::domain::audit::ActorKind::parse(&e.actor_type).is_none() {
                return Err(format!("{at}: unknown actor_type {:?}", e.actor_type));
            }
            if crate::domain::audit::parse_when(&e.created_on).as_deref() != Some(&e.created_on) {
                return Err(format!(
                    "{at}: created_on must be written as the log writes it"
                ));
            }
            for value in [&e.old_value, &e.new_value].into_iter().flatten() {
                json::<serde_json::Value>(value, &at, "old_value/new_value")?;
            }
        }
        for t in &self.tokens {
            let at = format!("tokens[{}]", t.id);
            id(&t.id, &at)?;
            match (&t.user_id, &t.account_id) {
                (Some(owner), None) | (None, Some(owner)) => id(owner, &at)?,
                _ => {
                    return Err(format!(
                        "{at}: a token has a user_id or an account_id, not both"
                    ));
                }
            }
            hex_digest(&t.token_hash, &at)?;
            json::<Vec<TokenPolicy>>(&t.policies, &at, "policies")?;
            if let Some(r) = &t.request_ip {
                json::<IpCondition>(r, &at, "request_ip")?;
            }
            TokenStatus::from_str(&t.status).map_err(|e| format!("{at}: {e}"))?;
            timestamps(&[&t.created_on, &t.modified_on], &at)?;
            for t in [&t.not_before, &t.expires_on, &t.last_used_on]
                .into_iter()
                .flatten()
            {
                timestamps(&[t], &at)?;
            }
        }
        Ok(())
    }
}

/// Each of `keys` once in `table`.
fn once<K: Eq + std::hash::Hash + std::fmt::Display>(
    table: &str,
    keys: impl ExactSizeIterator<Item = K>,
) -> Result<(), String> {
    let mut seen = std::collections::HashSet::with_capacity(keys.len());
    for key in keys {
        if seen.contains(&key) {
            return Err(format!("{table}: two rows have the id {key}"));
        }
        seen.insert(key);
    }
    Ok(())
}

/// Ids are stored exactly as parsed: lowercase.
fn id(raw: &str, at: &str) -> Result<(), String> {
    match Id::parse(raw) {
        Some(id) if id.as_str() == raw => Ok(()),
        _ => Err(format!(
            "{at}: {raw:?} is not a 32-character lowercase hex id"
        )),
    }
}

fn email(raw: &str, folded: &str, at: &str) -> Result<(), String> {
    let parsed = Email::parse(raw, "email").map_err(|e| format!("{at}: {e}"))?;
    if parsed.folded() != folded {
        return Err(format!(
            "{at}: email_lower {folded:?} does not match email {raw:?}"
        ));
    }
    Ok(())
}

/// A SHA-256 digest in hex, as `auth::hash_secret` stores secrets.
fn hex_digest(raw: &str, at: &str) -> Result<(), String> {
    if raw.len() == 64 && raw.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err(format!(
            "{at}: a secret hash must be 64 lowercase hex characters"
        ))
    }
}

fn timestamps(values: &[&String], at: &str) -> Result<(), String> {
    for v in values {
        time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)
            .map_err(|_| format!("{at}: {v:?} is not an RFC 3339 timestamp"))?;
    }
    Ok(())
}

fn json<T: serde::de::DeserializeOwned>(raw: &str, at: &str, column: &str) -> Result<(), String> {
    serde_json::from_str::<T>(raw)
        .map(|_| ())
        .map_err(|e| format!("{at}: {column} is not valid: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef";
    const OTHER: &str = "fedcba9876543210fedcba9876543210";

    fn empty() -> Export {
        Export {
            format: FORMAT.into(),
            version: schema_version().0,
            users: vec![],
            accounts: vec![],
            account_roles: vec![],
            resource_groups: vec![],
            user_groups: vec![],
            memberships: vec![],
            tokens: vec![],
            audit_logs: vec![],
        }
    }

    #[test]
    fn a_repeated_id_is_refused_naming_its_table_and_id() {
        let twice = |data: Export, table: &str| {
            assert_eq!(
                data.check(),
                Err(format!("{table}: two rows have the id {ID}")),
                "{table}"
            );
        };
        let id = ID.to_string();
        twice(
            Export {
                users: vec![
                    UserRow {
                        id: id.clone(),
                        ..UserRow::default()
                    };
                    2
                ],
                ..empty()
            },
            "users",
        );
        twice(
            Export {
                accounts: vec![
                    AccountRow {
                        id: id.clone(),
                        ..AccountRow::default()
                    };
                    2
                ],
                ..empty()
            },
            "accounts",
        );
        twice(
            Export {
                resource_groups: vec![
                    ResourceGroupRow {
                        id: id.clone(),
                        ..ResourceGroupRow::default()
                    };
                    2
                ],
                ..empty()
            },
            "resource_groups",
        );
        twice(
            Export {
                user_groups: vec![
                    UserGroupRow {
                        id: id.clone(),
                        ..UserGroupRow::default()
                    };
                    2
                ],
                ..empty()
            },
            "user_groups",
        );
        twice(
            Export {
                memberships: vec![
                    MembershipRow {
                        id: id.clone(),
                        ..MembershipRow::default()
                    };
                    2
                ],
                ..empty()
            },
            "memberships",
        );
        twice(
            Export {
                tokens: vec![
                    TokenRow {
                        id: id.clone(),
                        ..TokenRow::default()
                    };
                    2
                ],
                ..empty()
            },
            "tokens",
        );
        twice(
            Export {
                audit_logs: vec![
                    AuditRow {
                        id: id.clone(),
                        ..AuditRow::default()
                    };
                    2
                ],
                ..empty()
            },
            "audit_logs",
        );
    }

    #[test]
    fn a_role_id_is_repeated_only_within_one_account() {
        let role = |account: &str| AccountRoleRow {
            account_id: account.into(),
            id: ID.into(),
            name: "Custom".into(),
            description: String::new(),
            permissions: "{}".into(),
        };
        let roles = |account_roles| Export {
            account_roles,
            ..empty()
        };
        assert_eq!(
            roles(vec![role(OTHER), role(OTHER)]).check(),
            Err(format!(
                "account_roles: two rows have the id {ID} of account {OTHER}"
            ))
        );
        assert_eq!(roles(vec![role(ID), role(OTHER)]).check(), Ok(()));
    }
}
