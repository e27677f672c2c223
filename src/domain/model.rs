//! The records Roster keeps: users, accounts, roles, permission and resource groups and
//! memberships. The wire shapes live in `api::views`; these are the domain's own.

use serde::{Deserialize, Serialize};

use super::permissions::Permissions;
use super::types::{Access, AccountType, DefaultNameservers, Email, Id, Status};

#[derive(Debug, Clone)]
pub struct User {
    pub id: Id,
    pub email: Email,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub telephone: Option<String>,
    pub country: Option<String>,
    pub zipcode: Option<String>,
    pub two_factor_authentication_enabled: bool,
    pub created_on: String,
    pub modified_on: String,
}

#[derive(Debug, Clone)]
pub struct Account {
    pub id: Id,
    pub name: String,
    pub account_type: AccountType,
    pub created_on: String,
    pub settings: AccountSettings,
    pub managed_by: Option<ManagedBy>,
}

impl Account {
    /// The resource-group scope key that names this account.
    pub fn scope_key(&self) -> String {
        format!("com.cloudflare.api.account.{}", self.id)
    }
}

#[derive(Debug, Clone)]
pub struct AccountSettings {
    pub enforce_twofactor: bool,
    pub abuse_contact_email: Option<String>,
    pub default_nameservers: DefaultNameservers,
    pub use_account_custom_ns_by_default: bool,
}

impl Default for AccountSettings {
    fn default() -> Self {
        AccountSettings {
            enforce_twofactor: false,
            abuse_contact_email: None,
            default_nameservers: DefaultNameservers::Standard,
            use_account_custom_ns_by_default: false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManagedBy {
    pub parent_org_id: Option<String>,
    pub parent_org_name: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Role {
    pub id: Id,
    pub name: String,
    pub description: String,
    pub permissions: Permissions,
}

#[derive(Debug, Clone)]
pub struct PermissionGroup {
    pub id: Id,
    pub name: String,
    pub label: String,
    pub scopes: String,
    pub grants: Permissions,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeObject {
    pub key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    pub key: String,
    pub objects: Vec<ScopeObject>,
}

/// A resource group's free-form attributes (`{"key": ..., "value": ...}` in Cloudflare's
/// examples, any string pairs in its schema).
pub type Meta = std::collections::BTreeMap<String, String>;

#[derive(Debug, Clone)]
pub struct ResourceGroup {
    pub id: Id,
    pub name: String,
    pub scope: Scope,
    pub meta: Meta,
}

/// An IAM user group: a named set of the account's members whose policies each of them
/// holds on top of their own roles or policies. Its members are kept on their memberships
/// ([`Membership::groups`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserGroup {
    pub id: Id,
    pub name: String,
    pub policies: Vec<Policy>,
    pub created_on: String,
    pub modified_on: String,
}

/// A membership's place in a user group, and since when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InGroup {
    pub id: Id,
    pub added_on: String,
}

/// A policy as stored: references to groups, resolved against the catalogs when shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub id: Id,
    pub access: Access,
    pub permission_groups: Vec<Id>,
    pub resource_groups: Vec<Id>,
}

/// What a member may do is given either by roles or by policies, never both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grants {
    Roles(Vec<Id>),
    Policies(Vec<Policy>),
}

impl Grants {
    /// Whether showing or weighing these grants needs the account's own roles and resource
    /// groups; built-in roles are the same in every account, so reads of role-only
    /// memberships skip a query.
    pub fn need_account_catalog(&self) -> bool {
        match self {
            Grants::Roles(ids) => ids
                .iter()
                .any(|id| !super::catalog::builtin_roles().iter().any(|r| &r.id == id)),
            Grants::Policies(policies) => !policies.is_empty(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Membership {
    pub id: Id,
    pub account_id: Id,
    pub email: Email,
    pub status: Status,
    pub grants: Grants,
    /// The activation code an invitee would find in their invitation email.
    pub code: String,
    pub api_access_enabled: Option<bool>,
    pub created_on: String,
    pub modified_on: String,
    /// The user groups this membership is in.
    pub groups: Vec<InGroup>,
    /// The user with this membership's email, if one exists yet; memberships attach to
    /// users by email so that an invitation made before sign-up is theirs once they exist.
    pub user: Option<User>,
}

impl Membership {
    /// Whether showing or weighing this membership needs the account's own roles, resource
    /// groups and user groups.
    pub fn needs_account_catalog(&self) -> bool {
        self.grants.need_account_catalog() || !self.groups.is_empty()
    }

    pub fn in_group(&self, group: &Id) -> bool {
        self.groups.iter().any(|g| &g.id == group)
    }

    /// When this membership, as an invitation, stops being acceptable: `ttl` after it was
    /// made. `None` for a membership that is not pending, or whose time does not parse.
    pub fn invitation_expires_on(&self, ttl: std::time::Duration) -> Option<time::OffsetDateTime> {
        let made = super::types::parse_timestamp(&self.created_on)?;
        (self.status == Status::Pending).then(|| made + ttl)
    }

    /// The member's user as the account may see them: only once they have accepted, so
    /// that inviting an address reveals nothing about who has it.
    pub fn visible_user(&self) -> Option<&User> {
        self.user
            .as_ref()
            .filter(|_| self.status == Status::Accepted)
    }
}
