//! Fixture files: users, accounts (with their own roles and resource groups) and
//! memberships in one JSON document, loaded by `roster seed FILE` and `roster serve --demo`.
//! The whole file is checked against the same rules as the API before anything is written.
//! Ids are optional; given ones are kept, so a fixture loads to the same ids every time.
//! Loading again is idempotent: existing users are kept, accounts and their roles and groups
//! updated, and members matched by id or email; a member whose email already holds another
//! live membership (made through the API since) is left as the API made it.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;

use crate::auth::{generate_api_key, hash_secret};
use crate::domain::permissions::Permissions;
use crate::domain::tokens;
use crate::domain::types::{Access, DefaultNameservers, now};
use crate::domain::*;
use crate::store::export::{Export, Progress};
use crate::store::{SqliteStore, Store, StoreError};

/// The documentation's demo data (see DESIGN.md), in the fixture format.
pub const DEMO: &str = include_str!("../demo/demo.json");

/// The demo's first user and their API key, as the README shows them.
pub fn demo_credentials() -> (String, String) {
    let demo = parse(DEMO).expect("the demo fixture is valid");
    let user = &demo.users[0];
    let key = user.api_key.clone().expect("the demo user has a key");
    (user.email.clone(), key)
}

/// The demo account the demo user administers (the README's and the documentation's).
pub fn demo_account_id() -> String {
    let demo = parse(DEMO).expect("the demo fixture is valid");
    demo.accounts[0]
        .id
        .clone()
        .expect("the demo account has an id")
}

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
    /// The user's own API tokens, each allowing its permission groups on all the user's
    /// accounts (as a token made with `roster token` does).
    #[serde(default)]
    pub tokens: Vec<TokenFixture>,
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
    #[serde(default)]
    pub user_groups: Vec<UserGroupFixture>,
    #[serde(default)]
    pub tokens: Vec<TokenFixture>,
}

/// An API token allowing its permission groups (ids or names): an account's on the account,
/// a user's on all the user's accounts. Its secret is kept as given, so that examples can
/// hard-code it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenFixture {
    pub id: Option<String>,
    pub name: String,
    pub value: String,
    pub permission_groups: Vec<String>,
}

/// A user group, its policies (permission groups by id or name) and its members (by the
/// email of one of the account's members in this file).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserGroupFixture {
    pub id: Option<String>,
    pub name: String,
    #[serde(default)]
    pub policies: Vec<PolicyFixture>,
    #[serde(default)]
    pub members: Vec<String>,
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

/// What loading did: the API keys generated for new users who had none in the file, and
/// the members left alone because the API has changed them since.
#[derive(Debug, Default)]
pub struct Loaded {
    pub generated_keys: BTreeMap<String, String>,
    pub skipped: Vec<String>,
}

pub fn parse(text: &str) -> Result<Fixture, String> {
    serde_json::from_str(text).map_err(|e| format!("invalid fixture: {e}"))
}

/// `e` with the fixture entry it is about in front of its message.
fn entry(e: DomainError, at: &str) -> DomainError {
    match e {
        DomainError::Invalid { field, message } => DomainError::Invalid {
            field,
            message: format!("{at}: {message}"),
        },
        e => e,
    }
}

/// A stable id for what a fixture names without one.
fn derived_id(seed: &str) -> Id {
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(seed.as_bytes()));
    Id::parse(&digest[..32]).expect("32 hex characters are an id")
}

fn optional_id(raw: &Option<String>, field: &str) -> Result<Option<Id>, DomainError> {
    raw.as_deref()
        .map(|id| Id::parse_field(id, field))
        .transpose()
}

fn optional_name(raw: &Option<String>, field: &str) -> Result<Option<String>, DomainError> {
    raw.as_deref()
        .map(|n| types::bounded(n, field, 0, 60))
        .transpose()
}

/// A fixture checked in full, ready to write.
struct Plan {
    users: Vec<PlannedUser>,
    accounts: Vec<PlannedAccount>,
}

struct PlannedUser {
    user: User,
    key: String,
    key_generated: bool,
    id_given: bool,
    /// The user's tokens and the digests of their secrets.
    tokens: Vec<(tokens::Token, String)>,
}

struct PlannedAccount {
    account: Account,
    catalog: AccountCatalog,
    members: Vec<PlannedMember>,
    /// Account tokens and the digests of their secrets.
    tokens: Vec<(tokens::Token, String)>,
}

#[derive(Clone)]
struct PlannedMember {
    id: Option<Id>,
    email: Email,
    status: Status,
    grants: Grants,
    code: Option<String>,
    in_groups: Vec<Id>,
}

fn plan(fixture: &Fixture) -> Result<Plan, DomainError> {
    let mut users = Vec::new();
    for (i, u) in fixture.users.iter().enumerate() {
        let planned = plan_user(u).map_err(|e| entry(e, &format!("users[{i}] ({})", u.email)))?;
        users.push(planned);
    }
    let accounts = fixture
        .accounts
        .iter()
        .enumerate()
        .map(|(i, a)| plan_account(a).map_err(|e| entry(e, &format!("accounts[{i}] ({})", a.name))))
        .collect::<Result<_, _>>()?;
    Ok(Plan { users, accounts })
}

/// Checks a fixture in full without a database: what `roster seed` does before it opens
/// one, so that a bad file leaves nothing behind.
pub fn check(fixture: &Fixture) -> Result<(), DomainError> {
    plan(fixture).map(drop)
}

fn plan_user(u: &UserFixture) -> Result<PlannedUser, DomainError> {
    let (key, generated) = match &u.api_key {
        Some(k) if crate::auth::key_format_ok(k) => (k.to_ascii_lowercase(), false),
        Some(_) => {
            return Err(DomainError::invalid(
                "users.api_key",
                "users.api_key must be 32 or 37 hex characters",
            ));
        }
        None => (generate_api_key(), true),
    };
    let at = now();
    let id = optional_id(&u.id, "users.id")?.unwrap_or_else(Id::generate);
    let tokens = plan_user_tokens(&id, u)?;
    let user = User {
        id,
        email: Email::parse(&u.email, "users.email")?,
        first_name: optional_name(&u.first_name, "users.first_name")?,
        last_name: optional_name(&u.last_name, "users.last_name")?,
        telephone: None,
        country: None,
        zipcode: None,
        two_factor_authentication_enabled: u.two_factor_authentication_enabled,
        created_on: at.clone(),
        modified_on: at,
    };
    Ok(PlannedUser {
        user,
        key,
        key_generated: generated,
        id_given: u.id.is_some(),
        tokens,
    })
}

/// The tokens of user `id` as the fixture gives them.
fn plan_user_tokens(id: &Id, u: &UserFixture) -> Result<Vec<(tokens::Token, String)>, DomainError> {
    u.tokens
        .iter()
        .map(|t| {
            let at = format!("tokens[{}]", t.name);
            plan_token(tokens::Owner::User(id.clone()), t).map_err(|e| entry(e, &at))
        })
        .collect()
}

fn plan_account(a: &AccountFixture) -> Result<PlannedAccount, DomainError> {
    let created_on = match &a.created_on {
        Some(at) => {
            time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
                .map_err(|_| {
                    DomainError::invalid(
                        "accounts.created_on",
                        "accounts.created_on must be RFC 3339",
                    )
                })?;
            at.clone()
        }
        None => now(),
    };
    let abuse_contact_email = a
        .abuse_contact_email
        .as_deref()
        .map(|e| Email::parse(e, "accounts.abuse_contact_email").map(|e| e.as_str().to_string()))
        .transpose()?;
    let account = Account {
        id: optional_id(&a.id, "accounts.id")?.unwrap_or_else(Id::generate),
        name: types::bounded(&a.name, "accounts.name", 1, 100)?,
        account_type: a.account_type,
        created_on,
        settings: AccountSettings {
            enforce_twofactor: a.enforce_twofactor,
            abuse_contact_email,
            default_nameservers: DefaultNameservers::Standard,
            use_account_custom_ns_by_default: false,
        },
        managed_by: a.managed_by.clone(),
    };
    // Resource groups are checked by the same rule as the API's, on the account as the
    // fixture describes it.
    let mut state = AccountState {
        account: account.clone(),
        members: Vec::new(),
        focus: crate::domain::Focus::everyone(),
        catalog: Default::default(),
    };
    for r in &a.roles {
        Arc::make_mut(&mut state.catalog).custom_roles.push(Role {
            id: Id::parse_field(&r.id, "roles.id")?,
            name: types::bounded(&r.name, "roles.name", 1, 120)?,
            description: types::bounded(&r.description, "roles.description", 0, 1000)?,
            permissions: r.permissions,
        });
    }
    for g in &a.resource_groups {
        let group = ResourceGroup {
            id: optional_id(&g.id, "resource_groups.id")?.unwrap_or_else(Id::generate),
            name: g.name.clone().unwrap_or_else(|| g.scope.key.clone()),
            scope: g.scope.clone(),
            meta: g.meta.clone(),
        };
        let put = state.put_resource_group(group).map_err(|e| match e {
            // The id is one the fixture did not give: name the account as the file does.
            DomainError::Invalid { field, .. } if field == "scope.key" && a.id.is_none() => {
                DomainError::invalid(
                    "scope.key",
                    "resource_groups: scope.key must name the account itself \
                     (com.cloudflare.api.account.<its id>); give the account an id to use it here",
                )
            }
            e => entry(e, "resource_groups"),
        })?;
        if let Change::PutResourceGroup(group) = put {
            Arc::make_mut(&mut state.catalog)
                .resource_groups
                .push(group);
        }
    }
    let members = a
        .members
        .iter()
        .map(|m| {
            let planned = || {
                let grants = member_grants(m, &state.catalog)?;
                state.catalog.check_grants(&grants)?;
                Ok(PlannedMember {
                    id: optional_id(&m.id, "members.id")?,
                    email: Email::parse(&m.email, "members.email")?,
                    status: m.status,
                    grants,
                    code: m.code.clone(),
                    in_groups: Vec::new(),
                })
            };
            planned().map_err(|e| entry(e, &format!("members[{}]", m.email)))
        })
        .collect::<Result<Vec<_>, DomainError>>()?;
    let mut members = members;
    for g in &a.user_groups {
        let at = format!("user_groups[{}]", g.name);
        let mut planned = || {
            let policies = fixture_policies(&g.policies)?;
            let put = state.create_user_group(&g.name, policies, None)?;
            let Change::PutUserGroup(mut group) = put else {
                unreachable!("creating a user group puts one");
            };
            // Without an id, one made from the account and the name: loading the file
            // again finds the same group.
            group.id = match optional_id(&g.id, "user_groups.id")? {
                Some(id) => id,
                None => derived_id(&format!(
                    "{}/user_groups/{}",
                    account.id,
                    group.name.to_lowercase()
                )),
            };
            for email in &g.members {
                let email = Email::parse(email, "user_groups.members")?;
                let member = members
                    .iter_mut()
                    .find(|m| m.email == email && m.status != Status::Rejected)
                    .ok_or_else(|| {
                        DomainError::invalid(
                            "user_groups.members",
                            format!(
                                "user_groups.members: {} is not one of this account's members in the file",
                                email.as_str()
                            ),
                        )
                    })?;
                member.in_groups.push(group.id.clone());
            }
            Ok(group)
        };
        let group = planned().map_err(|e| entry(e, &at))?;
        Arc::make_mut(&mut state.catalog)
            .user_groups_mut()
            .push(group);
    }
    let tokens = a
        .tokens
        .iter()
        .map(|t| {
            let at = format!("tokens[{}]", t.name);
            plan_token(tokens::Owner::Account(account.id.clone()), t).map_err(|e| entry(e, &at))
        })
        .collect::<Result<_, _>>()?;
    Ok(PlannedAccount {
        account,
        catalog: Arc::unwrap_or_clone(state.catalog),
        members,
        tokens,
    })
}

fn plan_token(
    owner: tokens::Owner,
    t: &TokenFixture,
) -> Result<(tokens::Token, String), DomainError> {
    if !crate::auth::token_format_ok(&t.value) {
        return Err(DomainError::invalid(
            "tokens.value",
            "tokens.value must be 40 letters, digits, '-' or '_'",
        ));
    }
    let permission_groups = t
        .permission_groups
        .iter()
        .map(|g| permission_group_id(g, "tokens.permission_groups"))
        .collect::<Result<_, _>>()?;
    let (mut token, seed) = match &owner {
        tokens::Owner::Account(account) => (
            tokens::simple_account_token(account, t.name.clone(), permission_groups)?,
            format!("{account}/tokens/{}", t.name),
        ),
        tokens::Owner::User(user) => (
            tokens::simple_token(user, t.name.clone(), permission_groups, None)?,
            format!("users/{user}/tokens/{}", t.name),
        ),
    };
    // Loading the file again finds the same token.
    token.id = optional_id(&t.id, "tokens.id")?.unwrap_or_else(|| derived_id(&seed));
    for policy in &mut token.policies {
        policy.id = derived_id(&format!("{}/policy", token.id));
    }
    Ok((token, hash_secret(&t.value)))
}

pub async fn load(store: &dyn Store, fixture: &Fixture) -> Result<Loaded, StoreError> {
    load_counting(store, fixture, &Progress::default()).await
}

/// The steps [`load_counting`] counts: each user is checked, then written; each account
/// written with its members, groups and tokens.
pub fn steps(fixture: &Fixture) -> u64 {
    (2 * fixture.users.len() + fixture.accounts.len()) as u64
}

/// [`load`], counting its [`steps`] in `progress` as they are done (`roster seed` shows it).
pub async fn load_counting(
    store: &dyn Store,
    fixture: &Fixture,
    progress: &Progress,
) -> Result<Loaded, StoreError> {
    let plan = plan(fixture)?;
    let mut loaded = Loaded::default();
    // Users the database holds already are kept; one whose id is another user's is refused,
    // before anything is written.
    for (i, planned) in plan.users.iter().enumerate() {
        let (user, at) = (
            &planned.user,
            format!("users[{i}] ({})", planned.user.email.as_str()),
        );
        let by_email = store
            .user_by_email(user.email.folded())
            .await?
            .map(|(u, _)| u);
        let by_id = store.user(&user.id).await?;
        let conflict = match (&by_email, &by_id) {
            (Some(existing), _) if planned.id_given && existing.id != user.id => Some(format!(
                "{at}: this email's user has id {}, not {}",
                existing.id, user.id
            )),
            (_, Some(other)) if other.email.folded() != user.email.folded() => Some(format!(
                "{at}: id {} belongs to another user ({})",
                user.id,
                other.email.as_str()
            )),
            _ => None,
        };
        if let Some(message) = conflict {
            return Err(DomainError::invalid("users.id", message).into());
        }
        progress.add(1);
    }
    for PlannedUser {
        user,
        key,
        key_generated: generated,
        ..
    } in &plan.users
    {
        match store.insert_user(user, &hash_secret(key)).await {
            Ok(()) if *generated => {
                loaded
                    .generated_keys
                    .insert(user.email.as_str().to_string(), key.clone());
            }
            // Existing users are kept as they are (also when another process loading the
            // same fixture made them a moment ago).
            Ok(()) | Err(StoreError::Domain(DomainError::Duplicate(_))) => {}
            Err(e) => return Err(e),
        }
        progress.add(1);
    }
    for (planned, u) in plan.users.iter().zip(&fixture.users) {
        // A user the file gives no id may have been made by an earlier load: their tokens
        // are that user's.
        let stored = store
            .user_by_email(planned.user.email.folded())
            .await?
            .map(|(user, _)| user.id);
        let id = stored.unwrap_or_else(|| planned.user.id.clone());
        let replanned;
        let planned_tokens = if id == planned.user.id {
            &planned.tokens
        } else {
            replanned = plan_user_tokens(&id, u)?;
            &replanned
        };
        insert_tokens(store, &tokens::Owner::User(id), planned_tokens).await?;
    }
    for planned in &plan.accounts {
        match store.create_account(&planned.account, None).await {
            Ok(()) | Err(StoreError::Domain(DomainError::Duplicate(_))) => {}
            Err(e) => return Err(e),
        }
        let written = store
            .write_account(&planned.account.id, &Focus::everyone(), &|state| {
                Ok(account_changes(planned, state))
            })
            .await?;
        let owner = tokens::Owner::Account(planned.account.id.clone());
        insert_tokens(store, &owner, &planned.tokens).await?;
        let kept = written
            .changes
            .iter()
            .filter(|c| matches!(c, Change::PutMembership(_)))
            .count();
        if kept < planned.members.len() {
            loaded.skipped.extend(
                planned
                    .members
                    .iter()
                    .filter(|m| {
                        !written
                            .changes
                            .iter()
                            .any(|c| matches!(c, Change::PutMembership(w) if w.email == m.email))
                    })
                    .map(|m| {
                        format!(
                            "{} in {}: kept as the API left it",
                            m.email.as_str(),
                            planned.account.name
                        )
                    }),
            );
        }
        progress.add(1);
    }
    Ok(loaded)
}

/// Makes the tokens `owner` has not got yet. Tokens the owner has already (from an earlier
/// load, maybe changed since through the API) are left as they are.
async fn insert_tokens(
    store: &dyn Store,
    owner: &tokens::Owner,
    planned: &[(tokens::Token, String)],
) -> Result<(), StoreError> {
    for (token, digest) in planned {
        let has = |held: &[tokens::Token]| held.iter().any(|t| t.id == token.id);
        if has(&store.tokens(owner).await?) {
            continue;
        }
        if let Err(e) = store.insert_token(token, digest, None).await {
            // Another process loading the same file at once made it.
            if !has(&store.tokens(owner).await?) {
                return Err(e);
            }
        }
    }
    Ok(())
}

/// The state `fixtures` make in a new, empty database, as an export: what the emulator's
/// reset goes back to. Built in a database of its own in memory, so the server's own
/// database is not touched.
pub async fn seeded_state(fixtures: &[&Fixture]) -> Result<(Export, Loaded), StoreError> {
    let scratch =
        SqliteStore::open(std::path::Path::new(":memory:"), std::time::Duration::ZERO).await?;
    let mut loaded = Loaded::default();
    for fixture in fixtures {
        let more = load(&scratch, fixture).await?;
        loaded.generated_keys.extend(more.generated_keys);
        loaded.skipped.extend(more.skipped);
    }
    Ok((scratch.export().await?, loaded))
}

/// Loads the demo data unless the demo account is there already: after the first start it
/// belongs to whoever uses the API.
pub async fn load_demo(store: &dyn Store) -> Result<bool, StoreError> {
    let demo = parse(DEMO).expect("the demo fixture is valid");
    let account = demo.accounts[0]
        .id
        .as_deref()
        .and_then(Id::parse)
        .expect("demo account id");
    if store
        .load_account(&account, &Focus::default())
        .await?
        .is_some()
    {
        return Ok(false);
    }
    load(store, &demo).await?;
    Ok(true)
}

/// The writes that make `state` hold the planned account. Members without an id are
/// matched to a live membership with their email; a member whose email holds a live
/// membership under another id is left out.
fn account_changes(planned: &PlannedAccount, state: &AccountState) -> Vec<Change> {
    let mut changes = vec![Change::PutAccount(planned.account.clone())];
    changes.extend(
        planned
            .catalog
            .custom_roles
            .iter()
            .cloned()
            .map(Change::PutCustomRole),
    );
    changes.extend(
        planned
            .catalog
            .resource_groups
            .iter()
            .cloned()
            .map(Change::PutResourceGroup),
    );
    changes.extend(
        planned
            .catalog
            .user_groups()
            .iter()
            .cloned()
            .map(Change::PutUserGroup),
    );
    for m in &planned.members {
        let live = state
            .members
            .iter()
            .find(|e| e.email == m.email && e.status != Status::Rejected);
        let id = match (&m.id, live) {
            (Some(id), Some(e)) if &e.id != id => continue,
            (Some(id), _) => id.clone(),
            (None, Some(e)) => e.id.clone(),
            (None, None) => Id::generate(),
        };
        let at = now();
        changes.push(Change::PutMembership(Membership {
            id,
            account_id: planned.account.id.clone(),
            email: m.email.clone(),
            status: m.status,
            grants: m.grants.clone(),
            code: m.code.clone().unwrap_or_else(activation_code),
            api_access_enabled: planned.account.default_api_access(),
            created_on: live.map_or_else(|| at.clone(), |e| e.created_on.clone()),
            modified_on: at.clone(),
            // The file's groups, and those the API gave the member since.
            groups: {
                let mut groups = live.map(|e| e.groups.clone()).unwrap_or_default();
                for group in &m.in_groups {
                    if !groups.iter().any(|g| &g.id == group) {
                        groups.push(InGroup {
                            id: group.clone(),
                            added_on: at.clone(),
                        });
                    }
                }
                groups
            },
            user: None,
        }));
    }
    changes
}

/// A permission group a fixture names by id or by name.
fn permission_group_id(g: &str, field: &str) -> Result<Id, DomainError> {
    Id::parse(g)
        .or_else(|| catalog::permission_group_named(g).map(|pg| pg.id.clone()))
        .ok_or_else(|| {
            let hint = catalog::nearest_hint(g, &catalog::permission_group_names());
            DomainError::invalid(field, format!("unknown permission group {g}{hint}"))
        })
}

/// Policies as a fixture gives them: permission groups by id or name.
fn fixture_policies(policies: &[PolicyFixture]) -> Result<Vec<Policy>, DomainError> {
    policies
        .iter()
        .map(|p| {
            Ok(Policy {
                id: optional_id(&p.id, "policies.id")?.unwrap_or_else(Id::generate),
                access: p.access,
                permission_groups: p
                    .permission_groups
                    .iter()
                    .map(|g| permission_group_id(g, "permission_groups"))
                    .collect::<Result<_, _>>()?,
                resource_groups: p
                    .resource_groups
                    .iter()
                    .map(|g| Id::parse_field(g, "resource_groups"))
                    .collect::<Result<_, _>>()?,
            })
        })
        .collect::<Result<_, DomainError>>()
}

/// Role and permission-group references may be ids or names (names case-insensitively).
fn member_grants(m: &MemberFixture, catalog: &AccountCatalog) -> Result<Grants, DomainError> {
    if !m.policies.is_empty() && !m.roles.is_empty() {
        return Err(DomainError::invalid(
            "members",
            "give a member roles or policies, not both (a member's rights come from one or the other)",
        ));
    }
    if !m.policies.is_empty() {
        return Ok(Grants::Policies(fixture_policies(&m.policies)?));
    }
    let roles = m
        .roles
        .iter()
        .map(|r| {
            Id::parse(r)
                .or_else(|| {
                    catalog
                        .roles()
                        .find(|role| role.name.eq_ignore_ascii_case(r))
                        .map(|role| role.id.clone())
                })
                .ok_or_else(|| {
                    let hint = catalog::nearest_hint(
                        r,
                        &catalog
                            .roles()
                            .map(|role| role.name.as_str())
                            .collect::<Vec<_>>(),
                    );
                    DomainError::invalid("roles", format!("unknown role {r}{hint}"))
                })
        })
        .collect::<Result<_, _>>()?;
    Ok(Grants::Roles(roles))
}
