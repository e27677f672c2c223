//! Fixture files: users, accounts (with their own roles and resource groups) and
//! memberships in one JSON document, loaded by `roster seed FILE` and `roster serve --demo`.
//! Ids are optional; when given they are kept, so a fixture loads to the same ids every
//! time. Loading is idempotent: existing users are kept, existing accounts updated.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::auth::{generate_api_key, hash_secret};
use crate::domain::permissions::Permissions;
use crate::domain::types::{Access, DefaultNameservers, now};
use crate::domain::*;
use crate::store::{Store, StoreError};

/// The documentation's demo data (see DESIGN.md), in the fixture format.
pub const DEMO: &str = include_str!("../demo/demo.json");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixture {
    #[serde(default)]
    pub users: Vec<UserFixture>,
    #[serde(default)]
    pub accounts: Vec<AccountFixture>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserFixture {
    pub id: Option<String>,
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    #[serde(default)]
    pub two_factor_authentication_enabled: bool,
    /// Kept as given (so examples can hard-code it); generated and reported when absent.
    pub api_key: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountFixture {
    pub id: Option<String>,
    pub name: String,
    #[serde(rename = "type", default = "standard")]
    pub account_type: AccountType,
    pub created_on: Option<String>,
    #[serde(default)]
    pub enforce_twofactor: bool,
    pub abuse_contact_email: Option<String>,
    pub managed_by: Option<ManagedBy>,
    #[serde(default)]
    pub roles: Vec<RoleFixture>,
    #[serde(default)]
    pub resource_groups: Vec<ResourceGroupFixture>,
    #[serde(default)]
    pub members: Vec<MemberFixture>,
}

fn standard() -> AccountType {
    AccountType::Standard
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleFixture {
    pub id: String,
    pub name: String,
    pub description: String,
    pub permissions: Permissions,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceGroupFixture {
    pub id: Option<String>,
    pub name: Option<String>,
    pub scope: Scope,
    #[serde(default)]
    pub meta: Meta,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberFixture {
    pub id: Option<String>,
    pub email: String,
    #[serde(default = "accepted")]
    pub status: Status,
    /// Role ids or role names (built-in or the account's own).
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub policies: Vec<PolicyFixture>,
    pub code: Option<String>,
}

fn accepted() -> Status {
    Status::Accepted
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFixture {
    pub id: Option<String>,
    pub access: Access,
    /// Permission group ids or names.
    pub permission_groups: Vec<String>,
    pub resource_groups: Vec<String>,
}

/// What loading did: the API keys generated for users who had none in the file.
#[derive(Debug, Default)]
pub struct Loaded {
    pub generated_keys: BTreeMap<String, String>,
}

fn optional_id(raw: &Option<String>, field: &str) -> Result<Id, DomainError> {
    raw.as_deref()
        .map_or_else(|| Ok(Id::generate()), |id| Id::parse_field(id, field))
}

pub fn parse(text: &str) -> Result<Fixture, String> {
    serde_json::from_str(text).map_err(|e| format!("invalid fixture: {e}"))
}

pub async fn load(store: &dyn Store, fixture: &Fixture) -> Result<Loaded, StoreError> {
    let mut loaded = Loaded::default();
    for u in &fixture.users {
        let email = Email::parse(&u.email, "users.email")?;
        if store.user_by_email(email.folded()).await?.is_some() {
            continue;
        }
        let key = match &u.api_key {
            Some(k) => k.to_ascii_lowercase(),
            None => {
                let k = generate_api_key();
                loaded
                    .generated_keys
                    .insert(email.as_str().to_string(), k.clone());
                k
            }
        };
        let at = now();
        let user = User {
            id: optional_id(&u.id, "users.id")?,
            email,
            first_name: u.first_name.clone(),
            last_name: u.last_name.clone(),
            telephone: None,
            country: None,
            zipcode: None,
            two_factor_authentication_enabled: u.two_factor_authentication_enabled,
            created_on: at.clone(),
            modified_on: at,
        };
        store.insert_user(&user, &hash_secret(&key)).await?;
    }
    for a in &fixture.accounts {
        load_account(store, a).await?;
    }
    Ok(loaded)
}

async fn load_account(store: &dyn Store, a: &AccountFixture) -> Result<(), StoreError> {
    let account = Account {
        id: optional_id(&a.id, "accounts.id")?,
        name: types::bounded(&a.name, "accounts.name", 1, 100)?,
        account_type: a.account_type,
        created_on: a.created_on.clone().unwrap_or_else(now),
        settings: AccountSettings {
            enforce_twofactor: a.enforce_twofactor,
            abuse_contact_email: a.abuse_contact_email.clone(),
            default_nameservers: DefaultNameservers::Standard,
            use_account_custom_ns_by_default: false,
        },
        managed_by: a.managed_by.clone(),
    };
    if store.load_account(&account.id).await?.is_none() {
        store.create_account(&account, None).await?;
    }
    store
        .write_account(&account.id, &|state| fixture_changes(a, &account, state))
        .await?;
    Ok(())
}

/// The writes that make `state` match the fixture. Objects without an id are matched to
/// existing ones (resource groups by name, members by email) so a second load updates them.
fn fixture_changes(
    a: &AccountFixture,
    account: &Account,
    state: &AccountState,
) -> Result<Vec<Change>, DomainError> {
    let mut catalog = AccountCatalog::default();
    let mut changes = vec![Change::PutAccount(account.clone())];
    for r in &a.roles {
        let role = Role {
            id: Id::parse_field(&r.id, "roles.id")?,
            name: r.name.clone(),
            description: r.description.clone(),
            permissions: r.permissions,
        };
        catalog.custom_roles.push(role.clone());
        changes.push(Change::PutCustomRole(role));
    }
    for g in &a.resource_groups {
        let name = g.name.clone().unwrap_or_else(|| g.scope.key.clone());
        let existing = state
            .catalog
            .resource_groups
            .iter()
            .find(|e| e.name == name)
            .map(|e| e.id.clone());
        let group = ResourceGroup {
            id: match &g.id {
                Some(id) => Id::parse_field(id, "resource_groups.id")?,
                None => existing.unwrap_or_else(Id::generate),
            },
            name,
            scope: g.scope.clone(),
            meta: g.meta.clone(),
        };
        catalog.resource_groups.push(group.clone());
        changes.push(Change::PutResourceGroup(group));
    }
    for m in &a.members {
        let email = Email::parse(&m.email, "members.email")?;
        let grants = member_grants(m, &catalog)?;
        catalog.check_grants(&grants)?;
        let existing = state
            .members
            .iter()
            .find(|e| e.email.folded() == email.folded() && e.status != Status::Rejected);
        let at = now();
        changes.push(Change::PutMembership(Membership {
            id: match (&m.id, existing) {
                (Some(id), _) => Id::parse_field(id, "members.id")?,
                (None, Some(e)) => e.id.clone(),
                (None, None) => Id::generate(),
            },
            account_id: account.id.clone(),
            email,
            status: m.status,
            grants,
            code: m
                .code
                .clone()
                .unwrap_or_else(|| format!("{}{}", Id::generate(), Id::generate())),
            api_access_enabled: (account.account_type == AccountType::Enterprise).then_some(true),
            created_on: existing.map_or_else(|| at.clone(), |e| e.created_on.clone()),
            modified_on: at,
            user: None,
        }));
    }
    Ok(changes)
}

fn member_grants(m: &MemberFixture, catalog: &AccountCatalog) -> Result<Grants, DomainError> {
    if !m.policies.is_empty() {
        let policies = m
            .policies
            .iter()
            .map(|p| {
                Ok(Policy {
                    id: optional_id(&p.id, "policies.id")?,
                    access: p.access,
                    permission_groups: p
                        .permission_groups
                        .iter()
                        .map(|g| {
                            Id::parse(g)
                                .or_else(|| {
                                    catalog::permission_group_named(g).map(|pg| pg.id.clone())
                                })
                                .ok_or_else(|| {
                                    DomainError::invalid(
                                        "permission_groups",
                                        format!("unknown permission group {g}"),
                                    )
                                })
                        })
                        .collect::<Result<_, _>>()?,
                    resource_groups: p
                        .resource_groups
                        .iter()
                        .map(|g| Id::parse_field(g, "resource_groups"))
                        .collect::<Result<_, _>>()?,
                })
            })
            .collect::<Result<_, DomainError>>()?;
        return Ok(Grants::Policies(policies));
    }
    let roles = m
        .roles
        .iter()
        .map(|r| {
            Id::parse(r)
                .or_else(|| {
                    catalog
                        .roles()
                        .find(|role| role.name == *r)
                        .map(|role| role.id.clone())
                })
                .ok_or_else(|| DomainError::invalid("roles", format!("unknown role {r}")))
        })
        .collect::<Result<_, _>>()?;
    Ok(Grants::Roles(roles))
}
