//! The account rules: who may read or change an account, the invitation lifecycle and the
//! last-administrator guarantee. Every function takes the account's whole state as loaded
//! inside the store's transaction and returns the [`Change`] to write, so a rule is checked
//! against exactly the rows the write will land on.

use super::DomainError;
use super::catalog;
use super::model::*;
use super::permissions::{self, Key, Permissions};
use super::tokens::{self, Token};
use super::types::{
    AccountType, Answer, Email, Id, MAX_GRANTS, MAX_PER_POLICY, MAX_RESOURCE_GROUPS, Status,
    at_most, bounded, name_key, now,
};
use std::sync::Arc;

/// The authenticated caller: a user, and when they came with an API token, that token; or
/// an account's own token, which acts for no user.
#[derive(Debug, Clone)]
pub struct Caller {
    /// `None` exactly when `token` belongs to an account.
    pub user: Option<User>,
    pub token: Option<Token>,
}

/// What an account endpoint needs of the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Read,
    Write,
}

impl Caller {
    pub fn of_user(user: User, token: Option<Token>) -> Caller {
        Caller {
            user: Some(user),
            token,
        }
    }

    /// The user the caller acts for. An account's token acts for none: user endpoints
    /// (`/user`, `/memberships`, ...) refuse it as Cloudflare does.
    pub fn user(&self) -> Result<&User, DomainError> {
        self.user.as_ref().ok_or(DomainError::Forbidden)
    }

    /// The account whose own token the caller came with.
    pub fn token_account(&self) -> Option<&Id> {
        match &self.token {
            Some(Token {
                owner: tokens::Owner::Account(account),
                ..
            }) => Some(account),
            _ => None,
        }
    }

    /// Whose requests these are, for the access log and the rate limiter: the token when
    /// the caller came with one (`"token"`), else the user.
    pub fn principal(&self) -> (&'static str, &Id) {
        match (&self.token, &self.user) {
            (Some(token), _) => ("token", &token.id),
            (None, Some(user)) => ("user", &user.id),
            (None, None) => unreachable!("a caller without a token is a user"),
        }
    }

    /// The folded email of the user the caller acts for.
    pub fn email_folded(&self) -> Option<&str> {
        self.user.as_ref().map(|u| u.email.folded())
    }

    /// Checks a token against the groups of one area (`Memberships`, `User Details`, `API
    /// Tokens`: `{area} Read` or `{area} Write`, a read accepting either) on the resource
    /// those groups are about: the caller themselves for user groups, any account
    /// (`com.cloudflare.api.account.*`) for account groups used outside one account. A
    /// global API key passes always.
    pub fn require_token_group(&self, area: &str, need: Need) -> Result<(), DomainError> {
        // A key caller holds all of the user's rights: no token group to look for.
        if self.token.is_none() {
            return Ok(());
        }
        let Some(scope) =
            catalog::permission_group_named(&format!("{area} Write")).map(|g| g.scopes.as_str())
        else {
            return Err(DomainError::Forbidden);
        };
        let resource = if scope == tokens::USER_RESOURCE {
            tokens::user_resource(&self.user()?.id)
        } else {
            format!("{scope}.*")
        };
        self.require_token_group_on(area, need, &resource)
    }

    /// The same check on one resource (an account, for groups used inside it).
    pub fn require_token_group_on(
        &self,
        area: &str,
        need: Need,
        resource: &str,
    ) -> Result<(), DomainError> {
        let Some(token) = &self.token else {
            return Ok(());
        };
        let names = |effect| move |name: &str| token.names_group(effect, resource, name);
        if area_allows(
            area,
            need,
            names(tokens::Effect::Allow),
            names(tokens::Effect::Deny),
        ) {
            Ok(())
        } else {
            Err(DomainError::Forbidden)
        }
    }

    /// Whether the caller's token, if they came with one, lets them act on `account`.
    pub fn token_allows_account(&self, account: &Id, need: Need) -> bool {
        match &self.token {
            None => true,
            Some(token) => allows(&token.grants_on(&tokens::account_resource(account)), need),
        }
    }
}

/// The permission groups `policies` of one access name.
fn named_groups<'a>(
    policies: &'a [&'a Policy],
    access: super::types::Access,
) -> impl Iterator<Item = &'static PermissionGroup> + 'a {
    policies
        .iter()
        .filter(move |p| p.access == access)
        .flat_map(|p| p.permission_groups.iter())
        .filter_map(catalog::permission_group)
}

/// Whether `need` is met in an area of permission groups (`{area} Read`, `{area} Write`),
/// given which group names are allowed and which denied. Reading takes either group,
/// writing the Write group; an explicit deny overrides every allow, and since writing
/// implies reading, a denied Read takes writing away too.
pub fn area_allows(
    area: &str,
    need: Need,
    allowed: impl Fn(&str) -> bool,
    denied: impl Fn(&str) -> bool,
) -> bool {
    let (read, write) = (format!("{area} Read"), format!("{area} Write"));
    if denied(&read) {
        return false;
    }
    match need {
        Need::Read => allowed(&read) || allowed(&write),
        Need::Write => allowed(&write) && !denied(&write),
    }
}

/// The area of a permission group named `{area} Read` or `{area} Write`, and which of the
/// two it is.
fn area_of(group: &PermissionGroup) -> Option<(&str, Need)> {
    if let Some(area) = group.name.strip_suffix(" Read") {
        Some((area, Need::Read))
    } else {
        group
            .name
            .strip_suffix(" Write")
            .map(|area| (area, Need::Write))
    }
}

/// Whether the membership holds the Super Administrator role itself.
fn is_super_administrator(m: &Membership) -> bool {
    match &m.grants {
        Grants::Roles(roles) => roles
            .iter()
            .any(|r| r.as_str() == catalog::SUPER_ADMINISTRATOR),
        Grants::Policies(_) => false,
    }
}

/// The permission groups that manage an account's own tokens.
pub const ACCOUNT_TOKENS: &str = "Account API Tokens";

fn allows(perms: &Permissions, need: Need) -> bool {
    match need {
        Need::Read => perms.can_read(Key::Organization),
        Need::Write => perms.can_write(Key::Organization),
    }
}

/// Refuses a list naming one id twice.
pub(super) fn no_repeats(ids: &[Id], field: &str) -> Result<(), DomainError> {
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    match ids.iter().find(|id| !seen.insert(*id)) {
        Some(id) => Err(DomainError::invalid(
            field,
            format!("{field}: {id} is named twice"),
        )),
        None => Ok(()),
    }
}

/// An account's own roles and resource groups, beside the built-in catalogs.
#[derive(Debug, Clone, Default)]
pub struct AccountCatalog {
    pub custom_roles: Vec<Role>,
    pub resource_groups: Vec<ResourceGroup>,
    /// Reached through [`AccountCatalog::user_groups`] and, to change them,
    /// [`AccountCatalog::user_groups_mut`], which drops the index below.
    groups: Vec<UserGroup>,
    /// The user groups' orders, made on first use: an account may hold a thousand groups
    /// (SCIM provisions them), and its kept catalog serves every read of it, where sorting
    /// them for each list and walking them for each lookup made every read of the account
    /// cost what its groups number (bench/README.md, "Pages that cost what they hold").
    group_index: GroupIndex,
}

/// Positions in [`AccountCatalog::user_groups`]: by name as lists show them, and by id.
/// Made for the groups as they are when first asked; changing them drops it (the only way
/// to change them takes `&mut`, while no index can be borrowed), and a clone starts
/// without one.
#[derive(Debug, Default)]
struct GroupIndex(std::sync::OnceLock<GroupOrders>);

#[derive(Debug)]
struct GroupOrders {
    by_name: Vec<usize>,
    by_id: Vec<usize>,
}

impl Clone for GroupIndex {
    fn clone(&self) -> Self {
        GroupIndex::default()
    }
}

/// Below this many groups a walk is as cheap as the index.
const INDEXED_GROUPS: usize = 16;

fn group_name_key(group: &UserGroup) -> ((bool, String), Id) {
    (super::list::text_key(Some(&group.name)), group.id.clone())
}

impl AccountCatalog {
    pub fn roles(&self) -> impl Iterator<Item = &Role> {
        catalog::builtin_roles()
            .iter()
            .chain(self.custom_roles.iter())
    }

    pub fn role(&self, id: &Id) -> Option<&Role> {
        self.roles().find(|r| &r.id == id)
    }

    /// Roles that make an accepted member an administrator (organization write).
    pub fn administrator_roles(&self) -> impl Iterator<Item = &Id> {
        self.roles()
            .filter(|r| r.permissions.can_write(Key::Organization))
            .map(|r| &r.id)
    }

    pub fn resource_group(&self, id: &Id) -> Option<&ResourceGroup> {
        self.resource_groups.iter().find(|g| &g.id == id)
    }

    pub fn user_group(&self, id: &Id) -> Option<&UserGroup> {
        if self.groups.len() >= INDEXED_GROUPS {
            let by_id = &self.group_orders().by_id;
            return by_id
                .binary_search_by(|&at| self.groups[at].id.cmp(id))
                .ok()
                .map(|i| &self.groups[by_id[i]]);
        }
        self.groups.iter().find(|g| &g.id == id)
    }

    pub fn user_groups(&self) -> &[UserGroup] {
        &self.groups
    }

    /// The user groups, to change: their index is made again when next needed.
    pub fn user_groups_mut(&mut self) -> &mut Vec<UserGroup> {
        self.group_index = GroupIndex::default();
        &mut self.groups
    }

    /// The user groups by name, case aside, then by id: the order of their list.
    pub fn user_groups_by_name(&self) -> Vec<&UserGroup> {
        let by_name = &self.group_orders().by_name;
        by_name.iter().map(|&at| &self.groups[at]).collect()
    }

    fn group_orders(&self) -> &GroupOrders {
        self.group_index.0.get_or_init(|| {
            let mut by_name: Vec<usize> = (0..self.groups.len()).collect();
            by_name.sort_by_cached_key(|&at| group_name_key(&self.groups[at]));
            let mut by_id: Vec<usize> = (0..self.groups.len()).collect();
            by_id.sort_by(|&a, &b| self.groups[a].id.cmp(&self.groups[b].id));
            GroupOrders { by_name, by_id }
        })
    }

    /// Effective permissions of `grants` in `account`. A policy counts only where one of
    /// its resource groups is scoped to this account; a deny policy removes what it names
    /// even where an allow policy grants it.
    pub fn permissions(&self, account: &Account, grants: &Grants) -> Permissions {
        let (allowed, denied) = self.granted(account, grants, &[]);
        allowed.without(&denied)
    }

    /// Effective permissions of a member: their own roles or policies and the policies of
    /// every user group they are in, a deny in any of them capping all of them.
    pub fn member_permissions(&self, account: &Account, m: &Membership) -> Permissions {
        let (allowed, denied) = self.granted(account, &m.grants, &m.groups);
        allowed.without(&denied)
    }

    /// What `grants` and the policies of `groups` allow, and what their policies deny.
    fn granted(
        &self,
        account: &Account,
        grants: &Grants,
        groups: &[InGroup],
    ) -> (Permissions, Permissions) {
        let from_roles = match grants {
            Grants::Roles(ids) => ids
                .iter()
                .filter_map(|id| self.role(id))
                .fold(Permissions::default(), |acc, r| acc.union(&r.permissions)),
            Grants::Policies(_) => Permissions::default(),
        };
        let policies = self.policies_in(account, grants, groups);
        let sum = |access| {
            named_groups(&policies, access)
                .fold(Permissions::default(), |acc, g| acc.union(&g.grants))
        };
        (
            from_roles.union(&sum(super::types::Access::Allow)),
            sum(super::types::Access::Deny),
        )
    }

    /// The policies of `grants` and of `groups` that apply in `account`: those with a
    /// resource group scoped to it.
    fn policies_in<'a>(
        &'a self,
        account: &Account,
        grants: &'a Grants,
        groups: &[InGroup],
    ) -> Vec<&'a Policy> {
        let own = match grants {
            Grants::Policies(policies) => policies.as_slice(),
            Grants::Roles(_) => &[],
        };
        let of_groups = groups
            .iter()
            .filter_map(|g| self.user_group(&g.id))
            .flat_map(|g| g.policies.iter());
        own.iter()
            .chain(of_groups)
            .filter(|p| self.applies_in(account, p))
            .collect()
    }

    /// Whether `policy` counts in `account`: one of its resource groups is scoped to it.
    fn applies_in(&self, account: &Account, policy: &Policy) -> bool {
        let key = account.scope_key();
        policy
            .resource_groups
            .iter()
            .filter_map(|id| self.resource_group(id))
            .any(|g| g.scope.key == key)
    }

    /// Where member `m`'s permissions in `account` come from, one source each: their
    /// roles, and the policies (their own, and each of their user groups') that count
    /// there, with what each allows or denies. [`Self::member_permissions`] is what they
    /// add up to: every allow, less every deny.
    pub fn sources_of(&self, account: &Account, m: &Membership) -> Vec<Source> {
        let mut sources = Vec::new();
        if let Grants::Roles(ids) = &m.grants {
            for role in ids.iter().filter_map(|id| self.role(id)) {
                sources.push(Source {
                    origin: Origin::Role(role.name.clone()),
                    access: super::types::Access::Allow,
                    permission_groups: Vec::new(),
                    grants: role.permissions,
                });
            }
        }
        let own = match &m.grants {
            Grants::Policies(policies) => policies.iter().map(|p| (Origin::OwnPolicy, p)).collect(),
            Grants::Roles(_) => Vec::new(),
        };
        let of_groups = m
            .groups
            .iter()
            .filter_map(|g| self.user_group(&g.id))
            .flat_map(|g| {
                g.policies
                    .iter()
                    .map(|p| (Origin::Group(g.name.clone()), p))
            });
        for (origin, policy) in own.into_iter().chain(of_groups) {
            if !self.applies_in(account, policy) {
                continue;
            }
            let groups: Vec<&'static PermissionGroup> = policy
                .permission_groups
                .iter()
                .filter_map(catalog::permission_group)
                .collect();
            sources.push(Source {
                origin,
                access: policy.access,
                permission_groups: groups.iter().map(|g| g.name.clone()).collect(),
                grants: groups
                    .iter()
                    .fold(Permissions::default(), |acc, g| acc.union(&g.grants)),
            });
        }
        sources
    }

    /// Whether member `m` holds `need` in the permission groups of `area` in `account`: as
    /// Super Administrator (who holds every group), or through an allow policy of their own
    /// or of one of their groups; a deny policy of theirs or of a group overrides either.
    pub fn member_holds_area(
        &self,
        account: &Account,
        m: &Membership,
        area: &str,
        need: Need,
    ) -> bool {
        let policies = self.policies_in(account, &m.grants, &m.groups);
        let names = |access| -> Vec<&str> {
            named_groups(&policies, access)
                .map(|g| g.name.as_str())
                .collect()
        };
        let (allowed, denied) = (
            names(super::types::Access::Allow),
            names(super::types::Access::Deny),
        );
        let everything = is_super_administrator(m);
        area_allows(
            area,
            need,
            |name| everything || allowed.contains(&name),
            |name| denied.contains(&name),
        )
    }

    /// Whether `m`, the caller's own membership of `account`, lets them do `need` there:
    /// it must be accepted, grant the right, and the caller's token (if any) must too.
    /// [`AccountState::authorize`] for a caller whose accepted membership (`mine`) was
    /// loaded on its own, without the account's other members.
    pub fn authorize(
        &self,
        account: &Account,
        mine: Option<&Membership>,
        caller: &Caller,
        need: Need,
    ) -> Result<(), DomainError> {
        if let Some(owner) = caller.token_account() {
            // An account's token reaches its own account alone, with what its policies
            // grant there; to any other account it is a stranger.
            if owner != &account.id {
                return Err(DomainError::NotFound("Account"));
            }
            return if caller.token_allows_account(&account.id, need) {
                Ok(())
            } else {
                Err(DomainError::Forbidden)
            };
        }
        let mine = mine
            .filter(|m| m.status == Status::Accepted)
            .ok_or(DomainError::NotFound("Account"))?;
        if self.allows(account, mine, caller, need) {
            Ok(())
        } else {
            Err(DomainError::Forbidden)
        }
    }

    pub fn allows(&self, account: &Account, m: &Membership, caller: &Caller, need: Need) -> bool {
        self.member_allows(account, m, need) && caller.token_allows_account(&account.id, need)
    }

    /// Whether the member's own rights (a token's limits aside) meet `need`.
    pub fn member_allows(&self, account: &Account, m: &Membership, need: Need) -> bool {
        m.status == Status::Accepted && allows(&self.member_permissions(account, m), need)
    }

    /// Checks that every role or group a request names exists for this account.
    pub fn check_grants(&self, grants: &Grants) -> Result<(), DomainError> {
        match grants {
            Grants::Roles(ids) => {
                at_most(ids.len(), MAX_GRANTS, "roles")?;
                if ids.is_empty() {
                    return Err(DomainError::invalid(
                        "roles",
                        "roles must name at least one role",
                    ));
                }
                no_repeats(ids, "roles")?;
                if let Some(id) = ids.iter().find(|id| self.role(id).is_none()) {
                    return Err(DomainError::invalid(
                        "roles",
                        format!("roles: unknown role {id}"),
                    ));
                }
            }
            Grants::Policies(policies) => {
                at_most(policies.len(), MAX_GRANTS, "policies")?;
                if policies.is_empty() {
                    return Err(DomainError::invalid(
                        "policies",
                        "policies must hold at least one policy",
                    ));
                }
                for p in policies {
                    at_most(
                        p.permission_groups.len(),
                        MAX_PER_POLICY,
                        "policies.permission_groups",
                    )?;
                    at_most(
                        p.resource_groups.len(),
                        MAX_PER_POLICY,
                        "policies.resource_groups",
                    )?;
                    // A view shows each named group whole: a name repeated would multiply
                    // what a member's or a group's answer weighs for nothing.
                    no_repeats(&p.permission_groups, "policies.permission_groups")?;
                    no_repeats(&p.resource_groups, "policies.resource_groups")?;
                    if p.permission_groups.is_empty() || p.resource_groups.is_empty() {
                        return Err(DomainError::invalid(
                            "policies",
                            "policies: each policy needs at least one permission group and one resource group",
                        ));
                    }
                    if let Some(id) = p
                        .permission_groups
                        .iter()
                        .find(|id| catalog::permission_group(id).is_none())
                    {
                        return Err(DomainError::invalid(
                            "policies.permission_groups",
                            format!("policies.permission_groups: unknown permission group {id}"),
                        ));
                    }
                    if let Some(id) = p
                        .resource_groups
                        .iter()
                        .find(|id| self.resource_group(id).is_none())
                    {
                        return Err(DomainError::invalid(
                            "policies.resource_groups",
                            format!("policies.resource_groups: unknown resource group {id}"),
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// What a member may do in an account, as far as giving rights goes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Standing {
    perms: Permissions,
    tokens_read: bool,
    tokens_write: bool,
    super_administrator: bool,
}

impl Standing {
    /// What this standing holds that `before` (none: a new member) did not.
    fn beyond(&self, before: Option<&Standing>) -> Gift {
        let mut gift = Gift {
            perms: self
                .perms
                .beyond(&before.map(|b| b.perms).unwrap_or_default()),
            groups: Vec::new(),
            super_administrator: self.super_administrator
                && !before.is_some_and(|b| b.super_administrator),
        };
        for (now, had, name) in [
            (
                self.tokens_read,
                before.is_some_and(|b| b.tokens_read),
                "Read",
            ),
            (
                self.tokens_write,
                before.is_some_and(|b| b.tokens_write),
                "Write",
            ),
        ] {
            if now && !had {
                gift.groups.extend(catalog::permission_group_named(&format!(
                    "{ACCOUNT_TOKENS} {name}"
                )));
            }
        }
        gift
    }
}

/// The rights some account or zone permission group grants, which a token can carry; the
/// others (a role's analytics write, say) no token carries, so a token does not narrow them.
fn expressible() -> &'static Permissions {
    static EXPRESSIBLE: std::sync::LazyLock<Permissions> = std::sync::LazyLock::new(|| {
        catalog::permission_groups()
            .iter()
            .filter(|g| g.scopes != tokens::USER_RESOURCE)
            .fold(Permissions::default(), |acc, g| acc.union(&g.grants))
    });
    &EXPRESSIBLE
}

/// One source of a member's permissions ([`AccountCatalog::sources_of`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub origin: Origin,
    pub access: super::types::Access,
    /// A policy's permission groups, by name (none for a role).
    pub permission_groups: Vec<String>,
    /// What it allows, or with a deny, takes away.
    pub grants: Permissions,
}

/// Where a [`Source`] is held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Role(String),
    OwnPolicy,
    Group(String),
}

/// What a change gives whoever it applies to: the rights it carries, the permission groups
/// it allows and whether it gives the Super Administrator role.
#[derive(Debug, Clone, Default)]
pub struct Gift {
    pub perms: Permissions,
    pub groups: Vec<&'static PermissionGroup>,
    pub super_administrator: bool,
}

impl Gift {
    fn add_group(&mut self, group: &'static PermissionGroup) {
        self.perms = self.perms.union(&group.grants);
        self.groups.push(group);
    }

    /// What allow policies give, whatever their resource groups (denies only narrow).
    pub fn of_policies<'a>(policies: impl IntoIterator<Item = &'a Policy>) -> Gift {
        let mut gift = Gift::default();
        for p in policies
            .into_iter()
            .filter(|p| p.access == super::types::Access::Allow)
        {
            for group in p
                .permission_groups
                .iter()
                .filter_map(catalog::permission_group)
            {
                gift.add_group(group);
            }
        }
        gift
    }

    /// What an account token gives: every group it allows, on any resource.
    pub fn of_token(token: &Token) -> Gift {
        let mut gift = Gift::default();
        for group in token.allowed_groups() {
            gift.add_group(group);
        }
        gift
    }
}

/// One account with its memberships (and their users) and its catalog, as one transaction
/// sees it: every membership for a read of the account, the ones in `focus` for a write.
#[derive(Debug, Clone)]
pub struct AccountState {
    pub account: Account,
    pub members: Vec<Membership>,
    /// Shared with the store's kept catalogs: an account of a thousand user groups is not
    /// copied for each read.
    pub catalog: Arc<AccountCatalog>,
    pub focus: Focus,
}

/// Which of an account's memberships a write loads. Loading every member would make each
/// write cost as much as the account is big; a rule looks only at a few: the caller's, the
/// one it changes (by id or email), the administrators (the last one must stay), and the
/// members whose policies name a resource group (before that group goes). A rule that finds
/// what it needs missing from the focus panics: that is a bug in the caller's focus, and
/// deciding without those members would break an invariant.
#[derive(Debug, Clone, Default)]
pub struct Focus {
    pub everyone: bool,
    pub ids: Vec<Id>,
    /// Folded emails.
    pub emails: Vec<String>,
    pub administrators: bool,
    /// Resource groups whose users are wanted.
    pub mentioning: Vec<Id>,
    /// User groups whose members are wanted.
    pub groups: Vec<Id>,
}

impl Focus {
    pub fn everyone() -> Focus {
        Focus {
            everyone: true,
            ..Focus::default()
        }
    }

    /// The caller's own membership, which authorizing them needs.
    pub fn caller(caller: &Caller) -> Focus {
        match caller.email_folded() {
            Some(email) => Focus::default().email(email),
            None => Focus::default(),
        }
    }

    pub fn member(mut self, id: &Id) -> Focus {
        self.ids.push(id.clone());
        self
    }

    pub fn email(mut self, folded: &str) -> Focus {
        self.emails.push(folded.to_string());
        self
    }

    pub fn administrators(mut self) -> Focus {
        self.administrators = true;
        self
    }

    pub fn mentioning(mut self, group: &Id) -> Focus {
        self.mentioning.push(group.clone());
        self
    }

    pub fn group_members(mut self, group: &Id) -> Focus {
        self.groups.push(group.clone());
        self
    }

    fn has_group_members(&self, group: &Id) -> bool {
        self.everyone || self.groups.contains(group)
    }

    fn has_id(&self, id: &Id) -> bool {
        self.everyone || self.ids.contains(id)
    }

    fn has_email(&self, folded: &str) -> bool {
        self.everyone || self.emails.iter().any(|e| e == folded)
    }

    fn has_administrators(&self) -> bool {
        self.everyone || self.administrators
    }

    fn has_mentions_of(&self, group: &Id) -> bool {
        self.everyone || self.mentioning.contains(group)
    }
}

fn require_loaded(loaded: bool, what: &str) {
    assert!(loaded, "a write decided without loading {what}");
}

/// A write the store applies inside the transaction that loaded the state.
// A request makes one or two changes, so boxing the large variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Change {
    PutMembership(Membership),
    DeleteMembership(Id),
    PutResourceGroup(ResourceGroup),
    DeleteResourceGroup(Id),
    PutAccount(Account),
    /// Only fixtures and the demo add account roles; the API serves the catalog read-only.
    PutCustomRole(Role),
    /// The account and everything in it.
    DeleteAccount,
    PutUserGroup(UserGroup),
    DeleteUserGroup(Id),
}

/// An invitation as the API receives it, already parsed.
#[derive(Debug, Clone)]
pub struct NewMember {
    pub email: Email,
    pub grants: Grants,
    pub status: Status,
}

/// A 64-hex activation code.
pub fn activation_code() -> String {
    format!("{}{}", Id::generate(), Id::generate())
}

impl Account {
    /// Cloudflare enables API access per member on enterprise accounts only.
    pub fn default_api_access(&self) -> Option<bool> {
        (self.account_type == AccountType::Enterprise).then_some(true)
    }

    /// The creator of a new account: its accepted Super Administrator.
    pub fn founding_member(&self, user: &User) -> Membership {
        Membership {
            id: Id::generate(),
            account_id: self.id.clone(),
            email: user.email.clone(),
            status: Status::Accepted,
            grants: Grants::Roles(vec![
                Id::parse(catalog::SUPER_ADMINISTRATOR).expect("catalog ids are valid"),
            ]),
            code: activation_code(),
            api_access_enabled: self.default_api_access(),
            created_on: self.created_on.clone(),
            modified_on: self.created_on.clone(),
            groups: Vec::new(),
            user: Some(user.clone()),
        }
    }
}

impl AccountState {
    pub fn permissions_of(&self, m: &Membership) -> Permissions {
        self.catalog.member_permissions(&self.account, m)
    }

    pub fn member(&self, id: &Id) -> Result<&Membership, DomainError> {
        require_loaded(self.focus.has_id(id), "the member it changes");
        self.members
            .iter()
            .find(|m| &m.id == id)
            .ok_or(DomainError::NotFound("Member"))
    }

    /// Whether the caller may do `need` in the account: an accepted membership that
    /// allows it (non-members and invitees who have not accepted see the account as
    /// missing, members without the right get 403), or the account's own token.
    pub fn authorize(&self, caller: &Caller, need: Need) -> Result<(), DomainError> {
        self.catalog
            .authorize(&self.account, self.own_membership_of(caller), caller, need)
    }

    /// The caller's accepted membership, when they act for a user.
    fn own_membership_of(&self, caller: &Caller) -> Option<&Membership> {
        let email = caller.email_folded()?;
        require_loaded(self.focus.has_email(email), "the caller's membership");
        self.members
            .iter()
            .find(|m| m.status == Status::Accepted && m.email.folded() == email)
    }

    /// Invites `new` (or adds them, Direct Add), giving at most what `by` holds here; `by`
    /// is `None` for an operator (fixtures, the CLI), who gives anything.
    pub fn invite(
        &self,
        new: NewMember,
        user: Option<User>,
        by: Option<&Caller>,
    ) -> Result<Change, DomainError> {
        self.catalog.check_grants(&new.grants)?;
        require_loaded(
            self.focus.has_email(new.email.folded()),
            "the invitee's memberships",
        );
        let taken = self
            .members
            .iter()
            .any(|m| m.email.folded() == new.email.folded() && m.status != Status::Rejected);
        if taken {
            return Err(DomainError::AlreadyMember(new.email.as_str().to_string()));
        }
        if new.status == Status::Accepted {
            self.check_direct_add(user.as_ref())?;
            self.check_two_factor(user.as_ref())?;
        }
        let at = now();
        let invited = Membership {
            id: Id::generate(),
            account_id: self.account.id.clone(),
            email: new.email,
            status: new.status,
            grants: new.grants,
            code: activation_code(),
            api_access_enabled: self.account.default_api_access(),
            created_on: at.clone(),
            modified_on: at,
            groups: Vec::new(),
            user,
        };
        if let Some(by) = by {
            self.check_change_to(by, &self.catalog, None, Some(&invited))?;
        }
        Ok(Change::PutMembership(invited))
    }

    /// Cloudflare's "Direct Add": a member added as already accepted, without their
    /// consent, only to an enterprise account (which only an operator makes) and only for a
    /// user who exists.
    fn check_direct_add(&self, user: Option<&User>) -> Result<(), DomainError> {
        if self.account.account_type != AccountType::Enterprise {
            return Err(DomainError::invalid(
                "status",
                "status \"accepted\" (Direct Add) is for enterprise accounts only: invite the member instead",
            ));
        }
        if user.is_none() {
            return Err(DomainError::invalid(
                "status",
                "status \"accepted\" (Direct Add) needs a user who already exists: invite the address instead",
            ));
        }
        Ok(())
    }

    fn check_two_factor(&self, user: Option<&User>) -> Result<(), DomainError> {
        let has_2fa = user.is_some_and(|u| u.two_factor_authentication_enabled);
        if self.account.settings.enforce_twofactor && !has_2fa {
            return Err(DomainError::TwoFactorRequired);
        }
        Ok(())
    }

    /// Would the account still have an accepted member with organization write if
    /// membership `id` were replaced by `replacement` (or removed)?
    fn keeps_administrator(&self, id: &Id, replacement: Option<&Membership>) -> bool {
        self.members
            .iter()
            .filter(|m| &m.id != id)
            .chain(replacement)
            .any(|m| self.is_administrator(m))
    }

    fn is_administrator(&self, m: &Membership) -> bool {
        m.status == Status::Accepted && self.permissions_of(m).can_write(Key::Organization)
    }

    /// Refuses a change that would take away the account's last administrator. An account
    /// that has none (a fixture may load one) is not locked by this rule.
    fn guard_administrator(
        &self,
        id: &Id,
        replacement: Option<&Membership>,
    ) -> Result<(), DomainError> {
        require_loaded(self.focus.has_administrators(), "the administrators");
        let had = self.members.iter().any(|m| self.is_administrator(m));
        if had && !self.keeps_administrator(id, replacement) {
            Err(DomainError::LastAdministrator)
        } else {
            Ok(())
        }
    }

    /// Replaces a member's roles or policies; new grants give at most what `by` holds.
    pub fn update_grants(
        &self,
        member_id: &Id,
        grants: Grants,
        by: &Caller,
    ) -> Result<Change, DomainError> {
        self.catalog.check_grants(&grants)?;
        let current = self.member(member_id)?;
        let mut updated = current.clone();
        updated.grants = grants;
        updated.modified_on = now();
        // The account's last administrator is refused as such, whoever asks.
        self.guard_administrator(member_id, Some(&updated))?;
        self.check_change_to(by, &self.catalog, Some(current), Some(&updated))?;
        Ok(Change::PutMembership(updated))
    }

    /// Removes a member; a Super Administrator only by another.
    pub fn remove_member(&self, member_id: &Id, by: &Caller) -> Result<Change, DomainError> {
        let current = self.member(member_id)?;
        self.guard_administrator(member_id, None)?;
        self.check_change_to(by, &self.catalog, Some(current), None)?;
        Ok(Change::DeleteMembership(member_id.clone()))
    }

    /// The user's own membership `id` in this account; anyone else's answers as missing.
    fn own_membership(&self, id: &Id, user: &User) -> Result<&Membership, DomainError> {
        require_loaded(self.focus.has_id(id), "the membership it changes");
        self.members
            .iter()
            .find(|m| &m.id == id && m.email.folded() == user.email.folded())
            .ok_or(DomainError::NotFound("Membership"))
    }

    /// Accepts or rejects an invitation. Accepting an accepted membership again is a no-op.
    /// The invitee's answer. An invitation older than `invitation_ttl` can still be
    /// rejected, no longer accepted.
    pub fn respond(
        &self,
        id: &Id,
        user: &User,
        answer: Answer,
        invitation_ttl: std::time::Duration,
    ) -> Result<Change, DomainError> {
        let current = self.own_membership(id, user)?;
        let status = match (current.status, answer) {
            // Two-factor status as stored now, not as it was when the caller authenticated.
            (Status::Pending, Answer::Accepted) => {
                if let Some(at) = current
                    .invitation_expires_on(invitation_ttl)
                    .filter(|at| *at <= super::clock::now_utc())
                {
                    return Err(DomainError::InvitationExpired(super::types::timestamp(at)));
                }
                self.check_two_factor(current.user.as_ref())?;
                Status::Accepted
            }
            (Status::Pending, Answer::Rejected) => Status::Rejected,
            (Status::Accepted, Answer::Accepted) => {
                return Ok(Change::PutMembership(current.clone()));
            }
            (done, _) => return Err(DomainError::NotPending(done.as_str())),
        };
        let mut updated = current.clone();
        updated.status = status;
        updated.modified_on = now();
        Ok(Change::PutMembership(updated))
    }

    /// Deleting the account: for a member with organization write who is its Super
    /// Administrator (`../shared/DESIGN.md`, Accounts).
    pub fn delete_account(&self, caller: &Caller) -> Result<Change, DomainError> {
        self.authorize(caller, Need::Write)?;
        // An account's token is no Super Administrator: it cannot end its own account.
        match self.own_membership_of(caller) {
            Some(mine) if is_super_administrator(mine) => Ok(Change::DeleteAccount),
            _ => Err(DomainError::Forbidden),
        }
    }

    /// Whether the caller may read or manage the account's own tokens: with the "Account
    /// API Tokens" groups, which a member holds as Super Administrator or through a policy,
    /// and which the caller's token (theirs or the account's) must carry on this account.
    pub fn authorize_account_tokens(&self, caller: &Caller, need: Need) -> Result<(), DomainError> {
        if caller
            .token_account()
            .is_some_and(|owner| owner != &self.account.id)
        {
            return Err(DomainError::NotFound("Account"));
        }
        if caller.token_account().is_none() && self.own_membership_of(caller).is_none() {
            return Err(DomainError::NotFound("Account"));
        }
        if self.holds_area(caller, ACCOUNT_TOKENS, need) {
            Ok(())
        } else {
            Err(DomainError::Forbidden)
        }
    }

    /// Whether the caller holds `need` in an area of account permission groups here: the
    /// account's own token through its policies on the account, a member through their
    /// membership and, when they came with a token, that token's policies too.
    fn holds_area(&self, caller: &Caller, area: &str, need: Need) -> bool {
        let resource = tokens::account_resource(&self.account.id);
        let by_token = caller.require_token_group_on(area, need, &resource).is_ok();
        match caller.token_account() {
            Some(owner) => owner == &self.account.id && by_token,
            None => {
                by_token
                    && self.own_membership_of(caller).is_some_and(|mine| {
                        self.catalog
                            .member_holds_area(&self.account, mine, area, need)
                    })
            }
        }
    }

    /// The rights the caller holds in this account, as far as giving them goes: their
    /// membership's, narrowed by the token they came with, or their account token's own.
    fn held_by(&self, caller: &Caller) -> Permissions {
        let own_token = caller.token.as_ref().map(|t| t.held_in(&self.account.id));
        if caller.token_account().is_some() {
            return own_token.unwrap_or_default();
        }
        let Some(mine) = self.own_membership_of(caller) else {
            return Permissions::default();
        };
        let perms = self.permissions_of(mine);
        match own_token {
            Some(token) => perms.narrowed_by(&token, expressible()),
            None => perms,
        }
    }

    /// What `m`, weighed with `catalog`, may do in the account, as far as giving goes.
    fn standing(&self, catalog: &AccountCatalog, m: &Membership) -> Standing {
        let holds = |need| catalog.member_holds_area(&self.account, m, ACCOUNT_TOKENS, need);
        Standing {
            perms: catalog.member_permissions(&self.account, m),
            tokens_read: holds(Need::Read),
            tokens_write: holds(Need::Write),
            super_administrator: is_super_administrator(m),
        }
    }

    /// Whether the caller is the account's Super Administrator (by their own membership).
    fn caller_is_super_administrator(&self, caller: &Caller) -> bool {
        caller.token_account().is_none()
            && self
                .own_membership_of(caller)
                .is_some_and(is_super_administrator)
    }

    /// Checks a change to one membership (`before` as it is, `None` for a new one; `after`
    /// as the change leaves it, weighed with `catalog`, `None` when it goes): it gives the
    /// member nothing `by` does not hold, and only a Super Administrator changes what a
    /// Super Administrator may do, or removes one (the role "can revoke the access of other
    /// Super Administrators"; no other can).
    fn check_change_to(
        &self,
        by: &Caller,
        catalog: &AccountCatalog,
        before: Option<&Membership>,
        after: Option<&Membership>,
    ) -> Result<(), DomainError> {
        let was = before.map(|m| self.standing(&self.catalog, m));
        let will = after.map(|m| self.standing(catalog, m));
        let touches_super = was.as_ref().is_some_and(|w| w.super_administrator) && was != will;
        if touches_super && !self.caller_is_super_administrator(by) {
            return Err(DomainError::SuperAdministratorsOnly);
        }
        match will {
            Some(will) => self.check_gives(by, &will.beyond(was.as_ref())),
            None => Ok(()),
        }
    }

    /// [`Self::check_change_to`] for each loaded member as `after` (the members a change
    /// leaves, weighed with `catalog`) holds them.
    fn check_changes_to(
        &self,
        by: &Caller,
        catalog: &AccountCatalog,
        after: &[Membership],
    ) -> Result<(), DomainError> {
        for m in after {
            let before = self.members.iter().find(|b| b.id == m.id);
            self.check_change_to(by, catalog, before, Some(m))?;
        }
        Ok(())
    }

    /// Checks that what a change gives (a member's roles or policies, a user group's
    /// policies or its membership, an account token's policies) is no more than the caller
    /// holds in this account: every right a role or an allowed permission group carries,
    /// every "Read"/"Write" group of an area (the account tokens groups, which carry no
    /// right of their own), and the Super Administrator role, which only a Super
    /// Administrator gives, with everything it holds. Denies are left out: they only narrow.
    pub fn check_gives(&self, caller: &Caller, gift: &Gift) -> Result<(), DomainError> {
        let refuse = |what: String| Err(DomainError::BeyondOwnRights(what));
        if gift.super_administrator {
            let is_super = caller.token_account().is_none()
                && self
                    .own_membership_of(caller)
                    .is_some_and(is_super_administrator);
            if !is_super {
                return refuse("the Super Administrator role".into());
            }
        }
        let held = self.held_by(caller);
        if let Some((_, name)) = permissions::KEYS.iter().find(|(key, _)| {
            (gift.perms.can_read(*key) && !held.can_read(*key))
                || (gift.perms.can_write(*key) && !held.can_write(*key))
        }) {
            return refuse(format!("{name} rights"));
        }
        for group in &gift.groups {
            let area = area_of(group).filter(|_| {
                group.grants == Permissions::default() && group.scopes == tokens::ACCOUNT_RESOURCE
            });
            if let Some((area, need)) = area
                && !self.holds_area(caller, area, need)
            {
                return refuse(format!("the permission group \"{}\"", group.name));
            }
        }
        Ok(())
    }

    pub fn leave(&self, id: &Id, user: &User) -> Result<Change, DomainError> {
        self.own_membership(id, user)?;
        self.guard_administrator(id, None)?;
        Ok(Change::DeleteMembership(id.clone()))
    }

    /// Checks a new or changed resource group: scoped to this account, with at least one
    /// object, a name unique in the account, bounded text everywhere, and no more than
    /// [`MAX_RESOURCE_GROUPS`] in the account.
    pub fn put_resource_group(&self, group: ResourceGroup) -> Result<Change, DomainError> {
        let groups = &self.catalog.resource_groups;
        if groups.len() >= MAX_RESOURCE_GROUPS && !groups.iter().any(|g| g.id == group.id) {
            return Err(DomainError::invalid(
                "resource_groups",
                format!(
                    "an account holds at most {MAX_RESOURCE_GROUPS} resource groups: delete one before making another"
                ),
            ));
        }
        let expected = self.account.scope_key();
        if group.scope.key != expected {
            return Err(DomainError::invalid(
                "scope.key",
                format!("scope.key must be {expected}"),
            ));
        }
        at_most(group.scope.objects.len(), MAX_PER_POLICY, "scope.objects")?;
        if group.scope.objects.is_empty() {
            return Err(DomainError::invalid(
                "scope.objects",
                "scope.objects must not be empty",
            ));
        }
        for object in &group.scope.objects {
            bounded(&object.key, "scope.objects.key", 1, 255)?;
        }
        bounded(&group.name, "name", 1, 200)?;
        if group.meta.len() > 32 {
            return Err(DomainError::invalid(
                "meta",
                "meta holds at most 32 entries",
            ));
        }
        for (key, value) in &group.meta {
            bounded(key, "meta", 1, 100)?;
            bounded(value, "meta", 0, 1000)?;
        }
        let taken = self
            .catalog
            .resource_groups
            .iter()
            .any(|g| g.id != group.id && name_key(&g.name) == name_key(&group.name));
        if taken {
            return Err(DomainError::Duplicate(format!(
                "Resource group named {}",
                group.name
            )));
        }
        Ok(Change::PutResourceGroup(group))
    }

    pub fn delete_resource_group(&self, id: &Id) -> Result<Change, DomainError> {
        self.catalog
            .resource_group(id)
            .ok_or(DomainError::NotFound("Resource group"))?;
        require_loaded(self.focus.has_mentions_of(id), "the group's users");
        let in_use = self.members.iter().any(|m| match &m.grants {
            Grants::Policies(ps) => ps.iter().any(|p| p.resource_groups.contains(id)),
            Grants::Roles(_) => false,
        }) || self
            .catalog
            .user_groups()
            .iter()
            .flat_map(|g| g.policies.iter())
            .any(|p| p.resource_groups.contains(id));
        if in_use {
            return Err(DomainError::ResourceGroupInUse);
        }
        Ok(Change::DeleteResourceGroup(id.clone()))
    }

    /// Refuses a change to user groups after which the account would have no accepted
    /// member with organization write, where it had one: `catalog` and `members` are the
    /// account's catalog and the loaded members as the change would leave them.
    fn guard_administrators(
        &self,
        catalog: &AccountCatalog,
        members: &[Membership],
    ) -> Result<(), DomainError> {
        require_loaded(self.focus.has_administrators(), "the administrators");
        let had = self.members.iter().any(|m| self.is_administrator(m));
        let keeps = members.iter().any(|m| {
            m.status == Status::Accepted
                && catalog
                    .member_permissions(&self.account, m)
                    .can_write(Key::Organization)
        });
        if had && !keeps {
            Err(DomainError::LastAdministrator)
        } else {
            Ok(())
        }
    }

    /// The account's user group `id`; a missing one is a 404.
    pub fn user_group(&self, id: &Id) -> Result<&UserGroup, DomainError> {
        self.catalog
            .user_group(id)
            .ok_or(DomainError::NotFound("User group"))
    }

    /// A group's name: bounded, and no other group of the account's has it.
    fn user_group_name(&self, name: &str, id: Option<&Id>) -> Result<String, DomainError> {
        let name = bounded(name.trim(), "name", 1, 200)?;
        let taken = self
            .catalog
            .user_groups()
            .iter()
            .any(|g| Some(&g.id) != id && name_key(&g.name) == name_key(&name));
        if taken {
            return Err(DomainError::Duplicate(format!("User group {name}")));
        }
        Ok(name)
    }

    fn check_group_policies(&self, policies: &[Policy]) -> Result<(), DomainError> {
        if policies.is_empty() {
            return Ok(());
        }
        self.catalog
            .check_grants(&Grants::Policies(policies.to_vec()))
    }

    /// A new group; its policies give at most what `by` holds (`None`: an operator).
    pub fn create_user_group(
        &self,
        name: &str,
        policies: Vec<Policy>,
        by: Option<&Caller>,
    ) -> Result<Change, DomainError> {
        let name = self.user_group_name(name, None)?;
        self.check_group_policies(&policies)?;
        if let Some(by) = by {
            self.check_gives(by, &Gift::of_policies(&policies))?;
        }
        let at = now();
        Ok(Change::PutUserGroup(UserGroup {
            id: Id::generate(),
            name,
            policies,
            created_on: at.clone(),
            modified_on: at,
        }))
    }

    /// Renames a group or replaces its policies; new policies may not leave the account
    /// without an administrator.
    pub fn update_user_group(
        &self,
        id: &Id,
        name: Option<&str>,
        policies: Option<Vec<Policy>>,
        by: &Caller,
    ) -> Result<Change, DomainError> {
        let current = self.user_group(id)?;
        let mut updated = current.clone();
        if let Some(name) = name {
            updated.name = self.user_group_name(name, Some(id))?;
        }
        if let Some(policies) = policies {
            self.check_group_policies(&policies)?;
            // Policies sent again without their ids get new ones: that is no change.
            let terms = |ps: &[Policy]| -> Vec<(super::types::Access, Vec<Id>, Vec<Id>)> {
                ps.iter()
                    .map(|p| {
                        (
                            p.access,
                            p.permission_groups.clone(),
                            p.resource_groups.clone(),
                        )
                    })
                    .collect()
            };
            if terms(&policies) != terms(&current.policies) {
                self.check_gives(by, &Gift::of_policies(&policies))?;
            }
            updated.policies = policies;
        }
        updated.modified_on = now();
        if updated.policies != current.policies {
            require_loaded(self.focus.has_group_members(id), "the group's members");
            let mut catalog = AccountCatalog::clone(&self.catalog);
            catalog.user_groups_mut().retain(|g| &g.id != id);
            catalog.user_groups_mut().push(updated.clone());
            self.guard_administrators(&catalog, &self.members)?;
            // What the new policies do to the group's members.
            let members: Vec<Membership> = self
                .members
                .iter()
                .filter(|m| m.in_group(id))
                .cloned()
                .collect();
            self.check_changes_to(by, &catalog, &members)?;
        }
        Ok(Change::PutUserGroup(updated))
    }

    /// Deletes a group and takes it off every member in it.
    pub fn delete_user_group(&self, id: &Id, by: &Caller) -> Result<Vec<Change>, DomainError> {
        self.user_group(id)?;
        require_loaded(self.focus.has_group_members(id), "the group's members");
        let mut catalog = AccountCatalog::clone(&self.catalog);
        catalog.user_groups_mut().retain(|g| &g.id != id);
        let (after, mut changes) = self.regroup(id, |_, _| false);
        self.guard_administrators(&catalog, &after)?;
        // Without the group, its denies go too.
        self.check_changes_to(by, &catalog, &after)?;
        changes.push(Change::DeleteUserGroup(id.clone()));
        Ok(changes)
    }

    /// Puts the members `ids` in group `id` (`replace`: and takes everyone else out).
    /// Each must be a pending or accepted member of this account; one already in stays.
    /// Putting someone in gives them the group's policies, so `by` must hold those; and
    /// whether adding or replacing, a group's deny may not take the account's last
    /// administrator's rights away.
    pub fn set_group_members(
        &self,
        id: &Id,
        ids: &[Id],
        replace: bool,
        by: &Caller,
    ) -> Result<Vec<Change>, DomainError> {
        self.user_group(id)?;
        at_most(ids.len(), MAX_PER_POLICY, "members")?;
        for wanted in ids {
            require_loaded(self.focus.has_id(wanted), "the members it adds");
            let live = self
                .members
                .iter()
                .any(|m| &m.id == wanted && m.status != Status::Rejected);
            if !live {
                return Err(DomainError::invalid(
                    "members",
                    format!("members: {wanted} is not a member of this account"),
                ));
            }
        }
        if replace {
            require_loaded(self.focus.has_group_members(id), "the group's members");
        }
        let (after, changes) = self.regroup(id, |m, in_group| {
            ids.contains(&m.id) || (in_group && !replace)
        });
        self.guard_administrators(&self.catalog, &after)?;
        self.check_changes_to(by, &self.catalog, &after)?;
        Ok(changes)
    }

    /// Takes one member out of group `id`.
    pub fn remove_group_member(
        &self,
        id: &Id,
        member: &Id,
        by: &Caller,
    ) -> Result<Change, DomainError> {
        self.user_group(id)?;
        require_loaded(self.focus.has_id(member), "the member it removes");
        if !self
            .members
            .iter()
            .any(|m| &m.id == member && m.in_group(id))
        {
            return Err(DomainError::NotFound("Member"));
        }
        let (after, mut changes) = self.regroup(id, |m, in_group| in_group && &m.id != member);
        self.guard_administrators(&self.catalog, &after)?;
        // Out of the group, its denies no longer hold the member back.
        self.check_changes_to(by, &self.catalog, &after)?;
        Ok(changes.remove(0))
    }

    /// The loaded members with group `id` on or off as `keep(member, in it now)` says, and
    /// the changes that store those whose groups changed.
    fn regroup(
        &self,
        id: &Id,
        keep: impl Fn(&Membership, bool) -> bool,
    ) -> (Vec<Membership>, Vec<Change>) {
        let at = now();
        let mut changes = Vec::new();
        let after = self
            .members
            .iter()
            .map(|m| {
                let in_group = m.in_group(id);
                let wanted = keep(m, in_group);
                if wanted == in_group {
                    return m.clone();
                }
                let mut updated = m.clone();
                if wanted {
                    updated.groups.push(InGroup {
                        id: id.clone(),
                        added_on: at.clone(),
                    });
                } else {
                    updated.groups.retain(|g| &g.id != id);
                }
                changes.push(Change::PutMembership(updated.clone()));
                updated
            })
            .collect();
        (after, changes)
    }
}

#[cfg(test)]
mod tests {
    use super::catalog;
    use super::*;
    use crate::domain::testing::user;
    use crate::domain::types::Access;

    const READ_ONLY: &str = "25a6523fbf0a4cdaa8af77b778c7dd19";
    const ADMINISTRATOR: &str = "93c0b5f28f784adfabec6701f4e37655";
    const ACCOUNT_SETTINGS_READ: &str = "15b972a8f4cb43e78efbafb322f7dee5";

    fn id(raw: &str) -> Id {
        Id::parse(raw).unwrap()
    }

    fn caller(email: &str) -> Caller {
        Caller {
            user: Some(user(email, false)),
            token: None,
        }
    }

    fn member(email: &str, status: Status, roles: &[&str]) -> Membership {
        Membership {
            id: Id::generate(),
            account_id: id("ac000000000000000000000000000000"),
            email: Email::parse(email, "email").unwrap(),
            status,
            grants: Grants::Roles(roles.iter().map(|r| id(r)).collect()),
            code: activation_code(),
            api_access_enabled: None,
            created_on: now(),
            modified_on: now(),
            groups: Vec::new(),
            user: None,
        }
    }

    /// An account holding `members`, loaded as if every one of them was asked for.
    fn account(members: Vec<Membership>) -> AccountState {
        AccountState {
            account: Account {
                id: id("ac000000000000000000000000000000"),
                ..crate::domain::testing::account()
            },
            members,
            catalog: Default::default(),
            focus: Focus::everyone(),
        }
    }

    fn new_member(email: &str, status: Status) -> NewMember {
        NewMember {
            email: Email::parse(email, "email").unwrap(),
            grants: Grants::Roles(vec![id(READ_ONLY)]),
            status,
        }
    }

    #[test]
    fn an_account_holds_a_bounded_number_of_resource_groups() {
        let mut state = account(Vec::new());
        let group = |n: usize| ResourceGroup {
            id: id(&format!("{n:032x}")),
            name: format!("group {n}"),
            scope: Scope {
                key: "com.cloudflare.api.account.ac000000000000000000000000000000".into(),
                objects: vec![ScopeObject { key: "*".into() }],
            },
            meta: Meta::new(),
        };
        for n in 0..MAX_RESOURCE_GROUPS {
            Arc::make_mut(&mut state.catalog)
                .resource_groups
                .push(group(n));
        }
        let refused = state
            .put_resource_group(group(MAX_RESOURCE_GROUPS))
            .unwrap_err();
        assert!(
            refused.to_string().contains("at most 1000 resource groups"),
            "{refused}"
        );
        // A group it holds may still change.
        let mut renamed = group(7);
        renamed.name = "renamed".into();
        assert!(state.put_resource_group(renamed).is_ok());
        Arc::make_mut(&mut state.catalog).resource_groups.pop();
        assert!(state.put_resource_group(group(MAX_RESOURCE_GROUPS)).is_ok());
    }

    #[test]
    fn only_accepted_members_with_the_right_see_or_change_the_account() {
        let admin = member(
            "admin@example.com",
            Status::Accepted,
            &[catalog::SUPER_ADMINISTRATOR],
        );
        let reader = member("reader@example.com", Status::Accepted, &[READ_ONLY]);
        let invitee = member(
            "invitee@example.com",
            Status::Pending,
            &[catalog::SUPER_ADMINISTRATOR],
        );
        let state = account(vec![admin, reader, invitee]);
        assert!(
            state
                .authorize(&caller("ADMIN@example.com"), Need::Write)
                .is_ok()
        );
        assert!(
            state
                .authorize(&caller("reader@example.com"), Need::Read)
                .is_ok()
        );
        assert_eq!(
            state
                .authorize(&caller("reader@example.com"), Need::Write)
                .unwrap_err(),
            DomainError::Forbidden
        );
        for stranger in ["invitee@example.com", "nobody@example.com"] {
            assert_eq!(
                state.authorize(&caller(stranger), Need::Read).unwrap_err(),
                DomainError::NotFound("Account")
            );
        }
    }

    #[test]
    fn an_email_holds_one_live_membership_per_account() {
        let mut rejected = member("gone@example.com", Status::Rejected, &[READ_ONLY]);
        rejected.email = Email::parse("Gone@example.com", "email").unwrap();
        let state = account(vec![
            member("here@example.com", Status::Pending, &[READ_ONLY]),
            rejected,
        ]);
        assert_eq!(
            state
                .invite(new_member("HERE@example.com", Status::Pending), None, None)
                .unwrap_err(),
            DomainError::AlreadyMember("HERE@example.com".into())
        );
        // A rejected invitation is history: the address may be invited again.
        assert!(
            state
                .invite(new_member("gone@example.com", Status::Pending), None, None)
                .is_ok()
        );
    }

    #[test]
    fn a_direct_add_needs_an_enterprise_account_and_a_user() {
        let mut state = account(vec![]);
        let new = || new_member("new@example.com", Status::Accepted);
        let existing = || Some(user("new@example.com", true));
        let refused = |r: Result<Change, DomainError>| matches!(r, Err(DomainError::Invalid { field, .. }) if field == "status");
        assert!(
            refused(state.invite(new(), existing(), None)),
            "a standard account"
        );
        state.account.account_type = AccountType::Enterprise;
        assert!(
            refused(state.invite(new(), None, None)),
            "an address without a user"
        );
        assert!(state.invite(new(), existing(), None).is_ok());
    }

    #[test]
    fn a_direct_add_to_an_account_enforcing_two_factor_needs_it() {
        let mut state = account(vec![]);
        state.account.account_type = AccountType::Enterprise;
        state.account.settings.enforce_twofactor = true;
        let new = || new_member("new@example.com", Status::Accepted);
        assert_eq!(
            state
                .invite(new(), Some(user("new@example.com", false)), None)
                .unwrap_err(),
            DomainError::TwoFactorRequired
        );
        assert!(
            state
                .invite(new(), Some(user("new@example.com", true)), None)
                .is_ok()
        );
        // An invitation waits for the invitee to accept, and is checked then.
        assert!(
            state
                .invite(new_member("new@example.com", Status::Pending), None, None)
                .is_ok()
        );
    }

    #[test]
    fn the_last_administrator_stays() {
        let admin = member(
            "admin@example.com",
            Status::Accepted,
            &[catalog::SUPER_ADMINISTRATOR],
        );
        let pending = member(
            "next@example.com",
            Status::Pending,
            &[catalog::SUPER_ADMINISTRATOR],
        );
        let reader = member("reader@example.com", Status::Accepted, &[READ_ONLY]);
        let state = account(vec![admin.clone(), pending, reader.clone()]);
        let demoted = Grants::Roles(vec![id(READ_ONLY)]);
        assert_eq!(
            state
                .remove_member(&admin.id, &caller("admin@example.com"))
                .unwrap_err(),
            DomainError::LastAdministrator
        );
        assert_eq!(
            state
                .update_grants(&admin.id, demoted.clone(), &caller("admin@example.com"))
                .unwrap_err(),
            DomainError::LastAdministrator
        );
        assert_eq!(
            state
                .leave(&admin.id, &user("admin@example.com", false))
                .unwrap_err(),
            DomainError::LastAdministrator
        );
        assert!(
            state
                .remove_member(&reader.id, &caller("admin@example.com"))
                .is_ok()
        );

        // With a second accepted administrator, either may go.
        let second = member(
            "second@example.com",
            Status::Accepted,
            &[catalog::SUPER_ADMINISTRATOR],
        );
        let state = account(vec![admin.clone(), second]);
        assert!(
            state
                .remove_member(&admin.id, &caller("admin@example.com"))
                .is_ok()
        );
        assert!(
            state
                .update_grants(&admin.id, demoted, &caller("admin@example.com"))
                .is_ok()
        );

        // An account without any (a fixture may load one) is not locked by the rule.
        let state = account(vec![reader.clone()]);
        assert!(
            state
                .remove_member(&reader.id, &caller("admin@example.com"))
                .is_ok()
        );
    }

    #[test]
    fn an_invitee_answers_their_own_invitation_once() {
        let invited = member("invitee@example.com", Status::Pending, &[READ_ONLY]);
        let state = account(vec![invited.clone()]);
        let invitee = user("invitee@example.com", false);
        let accepted = match state
            .respond(&invited.id, &invitee, Answer::Accepted, WEEK)
            .unwrap()
        {
            Change::PutMembership(m) => m,
            other => panic!("{other:?}"),
        };
        assert_eq!(accepted.status, Status::Accepted);
        assert_eq!(
            state
                .respond(
                    &invited.id,
                    &user("other@example.com", false),
                    Answer::Accepted,
                    WEEK
                )
                .unwrap_err(),
            DomainError::NotFound("Membership")
        );
        let state = account(vec![accepted.clone()]);
        // Accepting again changes nothing; rejecting now is too late.
        assert!(
            state
                .respond(&accepted.id, &invitee, Answer::Accepted, WEEK)
                .is_ok()
        );
        assert_eq!(
            state
                .respond(&accepted.id, &invitee, Answer::Rejected, WEEK)
                .unwrap_err(),
            DomainError::NotPending("accepted")
        );
    }

    const WEEK: std::time::Duration = std::time::Duration::from_secs(7 * 86_400);

    #[test]
    fn an_expired_invitation_can_be_rejected_not_accepted() {
        let mut invited = member("late@example.com", Status::Pending, &[READ_ONLY]);
        invited.created_on = "2020-01-01T00:00:00Z".into();
        let state = account(vec![invited.clone()]);
        let invitee = user("late@example.com", false);
        assert_eq!(
            state
                .respond(&invited.id, &invitee, Answer::Accepted, WEEK)
                .unwrap_err(),
            DomainError::InvitationExpired("2020-01-08T00:00:00Z".into())
        );
        assert!(matches!(
            state.respond(&invited.id, &invitee, Answer::Rejected, WEEK),
            Ok(Change::PutMembership(m)) if m.status == Status::Rejected
        ));
        // Within its time it is accepted.
        let ten_years = std::time::Duration::from_secs(3650 * 86_400);
        assert!(
            state
                .respond(&invited.id, &invitee, Answer::Accepted, ten_years)
                .is_ok()
        );
    }

    #[test]
    fn only_a_super_administrator_deletes_the_account() {
        let owner = member(
            "owner@example.com",
            Status::Accepted,
            &[catalog::SUPER_ADMINISTRATOR],
        );
        let admin = member("admin@example.com", Status::Accepted, &[ADMINISTRATOR]);
        // An Administrator has organization write too, and still may not.
        let state = account(vec![owner, admin]);
        let caller = |email| Caller {
            user: Some(user(email, false)),
            token: None,
        };
        assert!(matches!(
            state.delete_account(&caller("owner@example.com")),
            Ok(Change::DeleteAccount)
        ));
        assert_eq!(
            state
                .delete_account(&caller("admin@example.com"))
                .unwrap_err(),
            DomainError::Forbidden
        );
        assert_eq!(
            state
                .delete_account(&caller("stranger@example.com"))
                .unwrap_err(),
            DomainError::NotFound("Account")
        );
    }

    /// A state whose catalog has a resource group over the whole account and user groups
    /// holding one policy each (`(name, access, permission group)`).
    fn named_group(name: &str) -> UserGroup {
        UserGroup {
            id: Id::generate(),
            name: name.to_string(),
            policies: Vec::new(),
            created_on: now(),
            modified_on: now(),
        }
    }

    #[test]
    fn a_catalogs_group_index_finds_each_group_and_lists_them_as_a_sort_would() {
        let mut catalog = AccountCatalog::default();
        for n in 0..40 {
            // Names that repeat, differ in case only, and sort apart from their ids.
            let name = ["beta", "Alpha", "alpha", "gamma", "Ärger", "zeta"][n % 6];
            catalog.user_groups_mut().push(named_group(name));
        }
        let sorted = |c: &AccountCatalog| {
            let mut groups: Vec<&UserGroup> = c.user_groups().iter().collect();
            groups.sort_by_cached_key(|g| {
                (super::super::list::text_key(Some(&g.name)), g.id.clone())
            });
            groups.into_iter().map(|g| g.id.clone()).collect::<Vec<_>>()
        };
        let listed = |c: &AccountCatalog| {
            c.user_groups_by_name()
                .into_iter()
                .map(|g| g.id.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(listed(&catalog), sorted(&catalog));
        for g in catalog.user_groups() {
            assert_eq!(catalog.user_group(&g.id).map(|f| &f.name), Some(&g.name));
        }
        assert!(catalog.user_group(&Id::generate()).is_none());
        // Changed after the index was made: it is made again.
        let gone = catalog.user_groups_mut().remove(3).id;
        catalog.user_groups_mut().swap(0, 20);
        catalog.user_groups_mut()[1].name = "renamed".into();
        let added = named_group("aaa");
        catalog.user_groups_mut().push(added.clone());
        assert!(catalog.user_group(&gone).is_none());
        for g in catalog.user_groups() {
            assert_eq!(catalog.user_group(&g.id).map(|f| &f.name), Some(&g.name));
        }
        assert_eq!(listed(&catalog), sorted(&catalog));
        // A clone makes its own index.
        let clone = catalog.clone();
        assert_eq!(listed(&clone), sorted(&clone));
        assert_eq!(clone.user_group(&added.id).map(|g| &g.id), Some(&added.id));
    }

    fn with_user_groups(
        members: Vec<Membership>,
        groups: &[(&str, Access, &str)],
    ) -> (AccountState, Vec<Id>) {
        let mut state = account(members);
        let everything = ResourceGroup {
            id: Id::generate(),
            name: "everything".into(),
            scope: Scope {
                key: state.account.scope_key(),
                objects: vec![ScopeObject { key: "*".into() }],
            },
            meta: Default::default(),
        };
        let mut ids = Vec::new();
        for (name, access, group) in groups {
            let made = UserGroup {
                id: Id::generate(),
                name: name.to_string(),
                policies: vec![Policy {
                    id: Id::generate(),
                    access: *access,
                    permission_groups: vec![id(group)],
                    resource_groups: vec![everything.id.clone()],
                }],
                created_on: now(),
                modified_on: now(),
            };
            ids.push(made.id.clone());
            Arc::make_mut(&mut state.catalog)
                .user_groups_mut()
                .push(made);
        }
        Arc::make_mut(&mut state.catalog)
            .resource_groups
            .push(everything);
        (state, ids)
    }

    fn join(m: &mut Membership, group: &Id) {
        m.groups.push(InGroup {
            id: group.clone(),
            added_on: now(),
        });
    }

    #[test]
    fn a_member_holds_their_groups_policies_and_any_deny_caps_them() {
        const SETTINGS_WRITE: &str = "bcc19b668966402dadd900f2b4243d2e";
        let mut zoe = member("zoe@example.com", Status::Accepted, &[]);
        zoe.grants = Grants::Policies(Vec::new());
        let (mut state, groups) = with_user_groups(
            vec![],
            &[
                ("writers", Access::Allow, SETTINGS_WRITE),
                ("no reading", Access::Deny, ACCOUNT_SETTINGS_READ),
            ],
        );
        let perms = |state: &AccountState, m: &Membership| state.permissions_of(m);
        assert!(!perms(&state, &zoe).can_read(Key::Organization));
        join(&mut zoe, &groups[0]);
        assert!(perms(&state, &zoe).can_write(Key::Organization));
        // A role's rights and a group's add up; a group's deny takes from both.
        let mut reader = member("reader@example.com", Status::Accepted, &[READ_ONLY]);
        assert!(perms(&state, &reader).can_read(Key::Organization));
        join(&mut reader, &groups[1]);
        assert!(!perms(&state, &reader).can_read(Key::Organization));
        join(&mut zoe, &groups[1]);
        assert!(!perms(&state, &zoe).can_write(Key::Organization));
        // A group the catalog no longer has gives nothing.
        Arc::make_mut(&mut state.catalog).user_groups_mut().clear();
        assert!(!perms(&state, &zoe).can_read(Key::Organization));
    }

    /// An account's own token of `account` allowing `group` on it.
    fn account_token(account: &Id, group: &str) -> Caller {
        let token = tokens::simple_account_token(account, "ci".into(), vec![id(group)])
            .expect("a valid token");
        Caller {
            user: None,
            token: Some(token),
        }
    }

    #[test]
    fn an_account_token_reaches_its_own_account_within_its_policies() {
        const SETTINGS_WRITE: &str = "bcc19b668966402dadd900f2b4243d2e";
        let state = account(vec![member(
            "owner@example.com",
            Status::Accepted,
            &[catalog::SUPER_ADMINISTRATOR],
        )]);
        let own = state.account.id.clone();
        let reader = account_token(&own, ACCOUNT_SETTINGS_READ);
        assert_eq!(state.authorize(&reader, Need::Read), Ok(()));
        assert_eq!(
            state.authorize(&reader, Need::Write),
            Err(DomainError::Forbidden)
        );
        assert_eq!(
            state.authorize(&account_token(&own, SETTINGS_WRITE), Need::Write),
            Ok(())
        );
        // Another account's token is a stranger, whatever it allows.
        let other = account_token(&id("bc000000000000000000000000000000"), SETTINGS_WRITE);
        assert_eq!(
            state.authorize(&other, Need::Read),
            Err(DomainError::NotFound("Account"))
        );
        // It is no Super Administrator, and no user.
        let writer = account_token(&own, SETTINGS_WRITE);
        assert_eq!(
            state.delete_account(&writer).unwrap_err(),
            DomainError::Forbidden
        );
        assert_eq!(writer.user().unwrap_err(), DomainError::Forbidden);
    }

    #[test]
    fn an_account_token_gets_at_most_its_makers_rights() {
        const SETTINGS_WRITE: &str = "bcc19b668966402dadd900f2b4243d2e";
        let state = account(vec![
            member(
                "owner@example.com",
                Status::Accepted,
                &[catalog::SUPER_ADMINISTRATOR],
            ),
            member("reader@example.com", Status::Accepted, &[READ_ONLY]),
        ]);
        let own = state.account.id.clone();
        let made = |group| account_token(&own, group).token.unwrap();
        let within = |who: &Caller, group| {
            state
                .check_gives(who, &Gift::of_token(&made(group)))
                .is_ok()
        };
        assert!(within(&caller("owner@example.com"), SETTINGS_WRITE));
        assert!(within(&caller("reader@example.com"), ACCOUNT_SETTINGS_READ));
        assert!(!within(&caller("reader@example.com"), SETTINGS_WRITE));
        // An account token mints what it holds, no more.
        let reading = account_token(&own, ACCOUNT_SETTINGS_READ);
        assert!(within(&reading, ACCOUNT_SETTINGS_READ));
        assert!(!within(&reading, SETTINGS_WRITE));
    }

    #[test]
    fn the_account_tokens_groups_come_from_super_administrator_or_a_policy() {
        const TOKENS_READ: &str = "4a1c3e0b7d2f4c8e9b6a5d3f2e1c0b9a";
        const TOKENS_WRITE: &str = "8b2d4f6a1c3e4e7a9c0b2d4f6a8c1e3b";
        let owner = member(
            "owner@example.com",
            Status::Accepted,
            &[catalog::SUPER_ADMINISTRATOR],
        );
        let mut admin = member("admin@example.com", Status::Accepted, &[ADMINISTRATOR]);
        let (mut state, groups) = with_user_groups(
            vec![],
            &[
                ("token readers", Access::Allow, TOKENS_READ),
                ("no token reading", Access::Deny, TOKENS_READ),
            ],
        );
        state.members = vec![owner, admin.clone()];
        let decide = |state: &AccountState, who: &str, need| {
            state.authorize_account_tokens(&caller(who), need)
        };
        assert_eq!(decide(&state, "owner@example.com", Need::Write), Ok(()));
        assert_eq!(
            decide(&state, "admin@example.com", Need::Read),
            Err(DomainError::Forbidden)
        );
        join(&mut admin, &groups[0]);
        state.members[1] = admin.clone();
        assert_eq!(decide(&state, "admin@example.com", Need::Read), Ok(()));
        assert_eq!(
            decide(&state, "admin@example.com", Need::Write),
            Err(DomainError::Forbidden)
        );
        join(&mut admin, &groups[1]);
        state.members[1] = admin;
        assert_eq!(
            decide(&state, "admin@example.com", Need::Read),
            Err(DomainError::Forbidden),
            "a deny caps the allow"
        );
        assert_eq!(
            decide(&state, "stranger@example.com", Need::Read),
            Err(DomainError::NotFound("Account"))
        );
        // The account's own token needs the group on its account.
        let own = state.account.id.clone();
        let reader = account_token(&own, TOKENS_READ);
        assert_eq!(state.authorize_account_tokens(&reader, Need::Read), Ok(()));
        assert_eq!(
            state.authorize_account_tokens(&reader, Need::Write),
            Err(DomainError::Forbidden)
        );
        assert_eq!(
            state.authorize_account_tokens(&account_token(&own, TOKENS_WRITE), Need::Write),
            Ok(())
        );
    }

    #[test]
    fn the_last_administrator_may_be_one_through_a_group() {
        const SETTINGS_WRITE: &str = "bcc19b668966402dadd900f2b4243d2e";
        let mut zoe = member("zoe@example.com", Status::Accepted, &[READ_ONLY]);
        let (mut state, groups) =
            with_user_groups(vec![], &[("admins", Access::Allow, SETTINGS_WRITE)]);
        join(&mut zoe, &groups[0]);
        state.members.push(zoe.clone());
        let admins = &groups[0];
        assert_eq!(
            state
                .remove_group_member(admins, &zoe.id, &caller("zoe@example.com"))
                .unwrap_err(),
            DomainError::LastAdministrator
        );
        assert_eq!(
            state
                .set_group_members(admins, &[], true, &caller("zoe@example.com"))
                .unwrap_err(),
            DomainError::LastAdministrator
        );
        assert_eq!(
            state
                .delete_user_group(admins, &caller("zoe@example.com"))
                .unwrap_err(),
            DomainError::LastAdministrator
        );
        assert_eq!(
            state
                .update_user_group(admins, None, Some(Vec::new()), &caller("zoe@example.com"))
                .unwrap_err(),
            DomainError::LastAdministrator
        );
        assert_eq!(
            state
                .remove_member(&zoe.id, &caller("zoe@example.com"))
                .unwrap_err(),
            DomainError::LastAdministrator
        );
        // With a second administrator by role, all of it may go.
        state.members.push(member(
            "owner@example.com",
            Status::Accepted,
            &[catalog::SUPER_ADMINISTRATOR],
        ));
        assert!(
            state
                .remove_group_member(admins, &zoe.id, &caller("zoe@example.com"))
                .is_ok()
        );
        let deleted = state
            .delete_user_group(admins, &caller("zoe@example.com"))
            .unwrap();
        assert!(matches!(deleted.last(), Some(Change::DeleteUserGroup(id)) if id == admins));
        assert!(deleted.iter().any(
            |c| matches!(c, Change::PutMembership(m) if m.id == zoe.id && m.groups.is_empty())
        ));
    }

    #[test]
    fn a_deny_policy_takes_away_what_an_allow_policy_grants() {
        let mut state = account(vec![]);
        let group = ResourceGroup {
            id: Id::generate(),
            name: "this account".into(),
            scope: Scope {
                key: state.account.scope_key(),
                objects: vec![ScopeObject { key: "*".into() }],
            },
            meta: Default::default(),
        };
        Arc::make_mut(&mut state.catalog)
            .resource_groups
            .push(group.clone());
        let policy = |access| Policy {
            id: Id::generate(),
            access,
            permission_groups: vec![id(ACCOUNT_SETTINGS_READ)],
            resource_groups: vec![group.id.clone()],
        };
        let allowed = Grants::Policies(vec![policy(Access::Allow)]);
        let denied = Grants::Policies(vec![policy(Access::Allow), policy(Access::Deny)]);
        assert!(
            state
                .catalog
                .permissions(&state.account, &allowed)
                .can_read(Key::Organization)
        );
        assert!(
            !state
                .catalog
                .permissions(&state.account, &denied)
                .can_read(Key::Organization)
        );
        // A group in use by a member's policy cannot go.
        let mut holder = member("holder@example.com", Status::Accepted, &[]);
        holder.grants = allowed;
        state.members.push(holder);
        assert_eq!(
            state.delete_resource_group(&group.id).unwrap_err(),
            DomainError::ResourceGroupInUse
        );
    }

    #[test]
    #[should_panic(expected = "a write decided without loading the administrators")]
    fn a_rule_refuses_to_decide_without_the_members_it_needs() {
        let admin = member(
            "admin@example.com",
            Status::Accepted,
            &[catalog::SUPER_ADMINISTRATOR],
        );
        let mut state = account(vec![admin.clone()]);
        state.focus = Focus::default().member(&admin.id);
        let _ = state.remove_member(&admin.id, &caller("admin@example.com"));
    }

    /// `require_token_group` names groups by area; each must be in the catalog.
    #[test]
    fn every_token_area_has_read_and_write_groups() {
        for area in ["Account Settings", "Memberships", "User Details"] {
            for level in ["Read", "Write"] {
                let name = format!("{area} {level}");
                assert!(catalog::permission_group_named(&name).is_some(), "{name}");
            }
        }
    }

    #[test]
    fn an_explicit_deny_overrides_every_allow_in_an_area() {
        let area = "API Tokens";
        let names = |list: &'static [&'static str]| move |n: &str| list.contains(&n);
        let decide = |allowed, denied, need| area_allows(area, need, names(allowed), names(denied));
        // Writing implies reading.
        assert!(decide(&["API Tokens Write"], &[], Need::Read));
        assert!(decide(&["API Tokens Write"], &[], Need::Write));
        assert!(!decide(&["API Tokens Read"], &[], Need::Write));
        // A denied Read takes reading and writing; a denied Write leaves reading.
        let read_denied: &[&str] = &["API Tokens Read"];
        assert!(!decide(&["API Tokens Write"], read_denied, Need::Read));
        assert!(!decide(&["API Tokens Write"], read_denied, Need::Write));
        let write_denied: &[&str] = &["API Tokens Write"];
        assert!(decide(&["API Tokens Write"], write_denied, Need::Read));
        assert!(!decide(&["API Tokens Write"], write_denied, Need::Write));
        assert!(!decide(&[], &[], Need::Read));
    }

    const TOKENS_READ: &str = "4a1c3e0b7d2f4c8e9b6a5d3f2e1c0b9a";
    const TOKENS_WRITE: &str = "8b2d4f6a1c3e4e7a9c0b2d4f6a8c1e3b";
    const SETTINGS_WRITE_GROUP: &str = "bcc19b668966402dadd900f2b4243d2e";
    const DNS_ROLE: &str = "87e7860bc4c445faba075646dac38cca";
    const DNS_WRITE: &str = "c04f21e7c9484120a60314ba1d079cec";

    /// A member holding every right by a role that is not Super Administrator, the
    /// account's Super Administrator, and a DNS member.
    fn givers() -> AccountState {
        let mut state = account(vec![
            member(
                "owner@example.com",
                Status::Accepted,
                &[catalog::SUPER_ADMINISTRATOR],
            ),
            member(
                "admin@example.com",
                Status::Accepted,
                &["ad000000000000000000000000000000"],
            ),
            member("dns@example.com", Status::Accepted, &[DNS_ROLE]),
        ]);
        Arc::make_mut(&mut state.catalog).custom_roles.push(Role {
            id: id("ad000000000000000000000000000000"),
            name: "Account Administrator".into(),
            description: String::new(),
            permissions: Permissions::all(crate::domain::permissions::Grant::WRITE),
        });
        state
    }

    /// What inviting a member with these roles gives, weighed as an invitation is.
    fn roles(ids: &[&str]) -> Gift {
        let state = givers();
        let invited = member("new@example.com", Status::Pending, ids);
        state.standing(&state.catalog, &invited).beyond(None)
    }

    #[test]
    fn only_a_super_administrator_gives_that_role() {
        let state = givers();
        let gives = |who: &str, gift: &Gift| state.check_gives(&caller(who), gift);
        assert_eq!(
            gives("owner@example.com", &roles(&[catalog::SUPER_ADMINISTRATOR])),
            Ok(())
        );
        assert!(matches!(
            gives("admin@example.com", &roles(&[catalog::SUPER_ADMINISTRATOR])),
            Err(DomainError::BeyondOwnRights(_))
        ));
        // Every right is not the role: the admin gives what they hold, their own role too.
        assert_eq!(
            gives(
                "admin@example.com",
                &roles(&["ad000000000000000000000000000000"])
            ),
            Ok(())
        );
        assert_eq!(gives("dns@example.com", &roles(&[DNS_ROLE])), Ok(()));
        assert!(
            gives("dns@example.com", &roles(&[READ_ONLY])).is_err(),
            "reading every key"
        );
        // The tokens groups carry no right of their own, yet only their holders give them.
        let tokens = Gift::of_policies(&[Policy {
            id: Id::generate(),
            access: Access::Allow,
            permission_groups: vec![id(TOKENS_READ)],
            resource_groups: Vec::new(),
        }]);
        assert_eq!(gives("owner@example.com", &tokens), Ok(()));
        assert!(gives("admin@example.com", &tokens).is_err());
        // A deny gives nothing.
        let deny = Gift::of_policies(&[Policy {
            id: Id::generate(),
            access: Access::Deny,
            permission_groups: vec![id(TOKENS_WRITE)],
            resource_groups: Vec::new(),
        }]);
        assert_eq!(gives("dns@example.com", &deny), Ok(()));
    }

    #[test]
    fn a_token_narrows_what_its_bearer_gives_zones_included() {
        let state = givers();
        let own = state.account.id.clone();
        let user_token = |groups: &[&str]| {
            let mut c = caller("owner@example.com");
            c.token = Some(
                tokens::simple_token(
                    &c.user.as_ref().unwrap().id,
                    "t".into(),
                    groups.iter().map(|g| id(g)).collect(),
                    None,
                )
                .unwrap(),
            );
            c
        };
        let made = |group: &str, resources: serde_json::Value| {
            let mut token =
                tokens::simple_account_token(&own, "m".into(), vec![id(group)]).unwrap();
            token.policies[0].resources = serde_json::from_value(resources).unwrap();
            Gift::of_token(&token)
        };
        let settings = made(
            SETTINGS_WRITE_GROUP,
            serde_json::json!({tokens::account_resource(&own): "*"}),
        );
        // A Super Administrator's token holding only the tokens groups mints no settings.
        let narrow = user_token(&[TOKENS_WRITE]);
        assert!(state.check_gives(&narrow, &settings).is_err());
        assert!(
            state
                .check_gives(&narrow, &roles(&[catalog::SUPER_ADMINISTRATOR]))
                .is_err()
        );
        assert_eq!(
            state.check_gives(
                &user_token(&[TOKENS_WRITE, SETTINGS_WRITE_GROUP]),
                &settings
            ),
            Ok(())
        );
        // DNS on every zone of the account, or on one zone: a grant like any other.
        let every_zone = serde_json::json!({tokens::account_resource(&own):
            {"com.cloudflare.api.account.zone.*": "*"}});
        let one_zone = serde_json::json!({"com.cloudflare.api.account.zone.0123456789abcdef0123456789abcdef": "*"});
        for resources in [every_zone, one_zone] {
            let dns = made(DNS_WRITE, resources);
            assert!(
                state
                    .check_gives(&caller("admin@example.com"), &dns)
                    .is_ok()
            );
            assert!(state.check_gives(&caller("dns@example.com"), &dns).is_ok());
            let reader = member("reader@example.com", Status::Accepted, &[READ_ONLY]);
            let mut with_reader = givers();
            with_reader.members.push(reader);
            assert!(
                with_reader
                    .check_gives(&caller("reader@example.com"), &dns)
                    .is_err()
            );
            assert!(state.check_gives(&narrow, &dns).is_err());
        }
    }

    #[test]
    fn joining_a_group_gives_its_policies_and_keeps_an_administrator() {
        let owner = member(
            "owner@example.com",
            Status::Accepted,
            &[catalog::SUPER_ADMINISTRATOR],
        );
        let admin = member("admin@example.com", Status::Accepted, &[ADMINISTRATOR]);
        let (mut state, groups) = with_user_groups(
            vec![owner.clone(), admin.clone()],
            &[
                ("tokens", Access::Allow, TOKENS_WRITE),
                ("no settings", Access::Deny, SETTINGS_WRITE_GROUP),
            ],
        );
        let by_owner = caller("owner@example.com");
        assert!(
            state
                .set_group_members(
                    &groups[0],
                    std::slice::from_ref(&admin.id),
                    false,
                    &by_owner
                )
                .is_ok()
        );
        // The sole administrator, added to a group denying their rights: refused.
        state.members.truncate(1);
        assert_eq!(
            state
                .set_group_members(
                    &groups[1],
                    std::slice::from_ref(&owner.id),
                    false,
                    &by_owner
                )
                .unwrap_err(),
            DomainError::LastAdministrator
        );
        // Someone holding less cannot add to a group giving more.
        let (state, groups) = with_user_groups(
            vec![owner, admin.clone()],
            &[("tokens", Access::Allow, TOKENS_WRITE)],
        );
        assert!(matches!(
            state.set_group_members(
                &groups[0],
                std::slice::from_ref(&admin.id),
                false,
                &caller("admin@example.com")
            ),
            Err(DomainError::BeyondOwnRights(_))
        ));
    }

    #[test]
    fn a_members_sources_add_up_to_what_they_may_do() {
        let mut admin = member(
            "admin@example.com",
            Status::Accepted,
            &[catalog::SUPER_ADMINISTRATOR],
        );
        let (state, groups) = with_user_groups(
            vec![],
            &[
                ("no settings", Access::Deny, SETTINGS_WRITE_GROUP),
                ("tokens", Access::Allow, TOKENS_WRITE),
            ],
        );
        join(&mut admin, &groups[0]);
        join(&mut admin, &groups[1]);
        let sources = state.catalog.sources_of(&state.account, &admin);
        assert_eq!(sources.len(), 3, "{sources:?}");
        assert_eq!(
            sources[0].origin,
            Origin::Role("Super Administrator - All Privileges".into())
        );
        assert_eq!(sources[1].origin, Origin::Group("no settings".into()));
        assert_eq!(sources[1].access, Access::Deny);
        assert_eq!(sources[1].permission_groups, ["Account Settings Write"]);
        assert!(sources[1].grants.can_write(Key::Organization));
        // Every allow, less every deny: what the rules decide with.
        let allowed = sources
            .iter()
            .filter(|s| s.access == Access::Allow)
            .fold(Permissions::default(), |acc, s| acc.union(&s.grants));
        let denied = sources
            .iter()
            .filter(|s| s.access == Access::Deny)
            .fold(Permissions::default(), |acc, s| acc.union(&s.grants));
        let held = state.catalog.member_permissions(&state.account, &admin);
        assert_eq!(held, allowed.without(&denied));
        assert!(allowed.can_write(Key::Organization) && !held.can_write(Key::Organization));
    }

    #[test]
    fn a_rejected_member_is_no_member_of_a_group() {
        let owner = member(
            "owner@example.com",
            Status::Accepted,
            &[catalog::SUPER_ADMINISTRATOR],
        );
        let gone = member("gone@example.com", Status::Rejected, &[READ_ONLY]);
        let (state, groups) = with_user_groups(
            vec![owner, gone.clone()],
            &[("g", Access::Allow, ACCOUNT_SETTINGS_READ)],
        );
        for replace in [false, true] {
            assert!(matches!(
                state.set_group_members(
                    &groups[0],
                    std::slice::from_ref(&gone.id),
                    replace,
                    &caller("owner@example.com")
                ),
                Err(DomainError::Invalid { .. })
            ));
        }
    }

    #[test]
    fn accepting_into_an_account_enforcing_two_factor_needs_it_as_stored_now() {
        let mut state = account(vec![
            member("no2fa@example.com", Status::Pending, &[READ_ONLY]),
            member("has2fa@example.com", Status::Pending, &[READ_ONLY]),
        ]);
        state.account.settings.enforce_twofactor = true;
        state.members[0].user = Some(user("no2fa@example.com", false));
        state.members[1].user = Some(user("has2fa@example.com", true));
        let ttl = std::time::Duration::from_secs(3600);
        let answer = |state: &AccountState, n: usize, email: &str, two_factor: bool| {
            // The caller's own view of their two-factor status does not count: the
            // membership's user, as stored, does.
            state.respond(
                &state.members[n].id.clone(),
                &user(email, two_factor),
                Answer::Accepted,
                ttl,
            )
        };
        assert_eq!(
            answer(&state, 0, "no2fa@example.com", true).unwrap_err(),
            DomainError::TwoFactorRequired
        );
        assert!(answer(&state, 1, "has2fa@example.com", false).is_ok());
        // Rejecting needs no second factor.
        assert!(
            state
                .respond(
                    &state.members[0].id.clone(),
                    &user("no2fa@example.com", false),
                    Answer::Rejected,
                    ttl
                )
                .is_ok()
        );
        // Without the setting, none is needed.
        state.account.settings.enforce_twofactor = false;
        assert!(answer(&state, 0, "no2fa@example.com", false).is_ok());
    }
}
