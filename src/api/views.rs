//! The wire shapes: how domain records look in Cloudflare's JSON, and the v4 envelope.
//! Where the 2024 schema and today's official SDKs disagree, these follow the SDKs (see the
//! README's compatibility notes).

use crate::domain::clock;
use std::cell::RefCell;

use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::value::RawValue;

use crate::domain::list::Page;
use crate::domain::permissions::Permissions;
use crate::domain::tokens::{Effect, IpCondition, Resource, Token, TokenStatus};
use crate::domain::*;

#[derive(Serialize)]
struct Envelope<T: Serialize, I: Serialize = ResultInfo> {
    success: bool,
    errors: [(); 0],
    messages: Vec<Message>,
    result: T,
    #[serde(skip_serializing_if = "Option::is_none")]
    result_info: Option<I>,
}

/// A list whose paging is not by total count (the audit log's): `result_info` as given.
pub fn list_with_info<V: Serialize, I: Serialize>(result: Vec<V>, result_info: I) -> Response {
    let capacity = SINGLE_BYTES + ITEM_BYTES * result.len();
    respond(
        &Envelope {
            success: true,
            errors: [],
            messages: Vec::new(),
            result,
            result_info: Some(result_info),
        },
        capacity,
    )
}

/// Room made for an answer before it is written: one result or a list's envelope, and each
/// list item. Written into a buffer that grew from nothing, a one-membership answer was
/// copied four times over as it doubled (`bench/instructions`).
const SINGLE_BYTES: usize = 4096;
const ITEM_BYTES: usize = 2048;

/// `value` as the answer's JSON body.
fn respond(value: &impl Serialize, capacity: usize) -> Response {
    let mut body = Vec::with_capacity(capacity);
    match serde_json::to_writer(&mut body, value) {
        Ok(()) => (
            [(
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response(),
        Err(e) => super::ApiError::Internal(format!("writing the answer: {e}")).into_response(),
    }
}

#[derive(Serialize)]
struct ResultInfo {
    page: u32,
    per_page: u32,
    count: usize,
    total_count: usize,
    total_pages: usize,
}

#[derive(Serialize)]
struct Message {
    code: u32,
    message: &'static str,
}

pub fn single<T: Serialize>(result: T) -> Response {
    respond(
        &Envelope::<T> {
            success: true,
            errors: [],
            messages: Vec::new(),
            result,
            result_info: None,
        },
        SINGLE_BYTES,
    )
}

pub fn list<'a, T, V: Serialize>(page: &'a Page<T>, view: impl Fn(&'a T) -> V) -> Response {
    let result_info = ResultInfo {
        page: page.request.page,
        per_page: page.request.per_page,
        count: page.items.len(),
        total_count: page.total_count,
        total_pages: page.total_pages(),
    };
    list_with_info(page.items.iter().map(view).collect(), result_info)
}

#[derive(Serialize)]
pub struct IdOnly<'a> {
    pub id: &'a Id,
}

#[derive(Serialize)]
pub struct AccountView<'a> {
    id: &'a Id,
    name: &'a str,
    #[serde(rename = "type")]
    account_type: AccountType,
    created_on: &'a str,
    settings: SettingsView<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    managed_by: Option<&'a ManagedBy>,
}

#[derive(Serialize)]
struct SettingsView<'a> {
    enforce_twofactor: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    abuse_contact_email: Option<&'a str>,
    default_nameservers: &'static str,
    use_account_custom_ns_by_default: bool,
}

pub fn account(a: &Account) -> AccountView<'_> {
    AccountView {
        id: &a.id,
        name: &a.name,
        account_type: a.account_type,
        created_on: &a.created_on,
        settings: SettingsView {
            enforce_twofactor: a.settings.enforce_twofactor,
            abuse_contact_email: a.settings.abuse_contact_email.as_deref(),
            default_nameservers: a.settings.default_nameservers.as_str(),
            use_account_custom_ns_by_default: a.settings.use_account_custom_ns_by_default,
        },
        managed_by: a.managed_by.as_ref(),
    }
}

#[derive(Serialize)]
pub struct RoleView<'a> {
    id: &'a Id,
    name: &'a str,
    description: &'a str,
    permissions: Box<RawValue>,
}

pub fn role(r: &Role) -> RoleView<'_> {
    RoleView {
        id: &r.id,
        name: &r.name,
        description: &r.description,
        permissions: permissions_json(r.permissions),
    }
}

#[derive(Serialize)]
pub struct PermissionGroupView<'a> {
    id: &'a Id,
    name: &'a str,
    meta: PermissionGroupMeta<'a>,
}

#[derive(Serialize)]
struct PermissionGroupMeta<'a> {
    label: &'a str,
    scopes: &'a str,
}

pub fn permission_group(g: &PermissionGroup) -> PermissionGroupView<'_> {
    PermissionGroupView {
        id: &g.id,
        name: &g.name,
        meta: PermissionGroupMeta {
            label: &g.label,
            scopes: &g.scopes,
        },
    }
}

/// A single result with one informational message, as `/user/tokens/verify` answers.
pub fn single_with_message<T: Serialize>(result: T, code: u32, message: &'static str) -> Response {
    respond(
        &Envelope::<T> {
            success: true,
            errors: [],
            messages: vec![Message { code, message }],
            result,
            result_info: None,
        },
        SINGLE_BYTES,
    )
}

/// The built-in groups these ids name (an id no longer in the catalog is left out).
fn permission_groups(ids: &[Id]) -> Vec<PermissionGroupView<'static>> {
    ids.iter()
        .filter_map(catalog::permission_group)
        .map(permission_group)
        .collect()
}

#[derive(Serialize)]
pub struct ResourceGroupView<'a> {
    id: &'a Id,
    name: &'a str,
    scope: &'a Scope,
    meta: &'a Meta,
}

pub fn resource_group(g: &ResourceGroup) -> ResourceGroupView<'_> {
    ResourceGroupView {
        id: &g.id,
        name: &g.name,
        scope: &g.scope,
        meta: &g.meta,
    }
}

#[derive(Serialize)]
pub struct PolicyView<'a> {
    id: &'a Id,
    access: types::Access,
    permission_groups: Vec<PermissionGroupView<'a>>,
    resource_groups: Vec<ResourceGroupView<'a>>,
}

fn policies<'a>(grants: &'a Grants, catalog: &'a AccountCatalog) -> Vec<PolicyView<'a>> {
    let Grants::Policies(policies) = grants else {
        return Vec::new();
    };
    policy_views(policies, catalog)
}

fn policy_views<'a>(policies: &'a [Policy], catalog: &'a AccountCatalog) -> Vec<PolicyView<'a>> {
    policies
        .iter()
        .map(|p| PolicyView {
            id: &p.id,
            access: p.access,
            permission_groups: permission_groups(&p.permission_groups),
            resource_groups: p
                .resource_groups
                .iter()
                .filter_map(|id| catalog.resource_group(id))
                .map(resource_group)
                .collect(),
        })
        .collect()
}

fn roles<'a>(grants: &'a Grants, catalog: &'a AccountCatalog) -> Vec<&'a Role> {
    let Grants::Roles(ids) = grants else {
        return Vec::new();
    };
    ids.iter().filter_map(|id| catalog.role(id)).collect()
}

/// The account's view of a membership.
#[derive(Serialize)]
pub struct MemberView<'a> {
    id: &'a Id,
    email: &'a str,
    status: Status,
    user: MemberUser<'a>,
    roles: Vec<RoleView<'a>>,
    policies: Vec<PolicyView<'a>>,
}

#[derive(Serialize)]
struct MemberUser<'a> {
    email: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a Id>,
    first_name: Option<&'a str>,
    last_name: Option<&'a str>,
    two_factor_authentication_enabled: bool,
}

pub fn member<'a>(m: &'a Membership, catalog: &'a AccountCatalog) -> MemberView<'a> {
    let user = m.visible_user();
    MemberView {
        id: &m.id,
        email: m.email.as_str(),
        status: m.status,
        user: MemberUser {
            email: user.map_or(m.email.as_str(), |u| u.email.as_str()),
            id: user.map(|u| &u.id),
            first_name: user.and_then(|u| u.first_name.as_deref()),
            last_name: user.and_then(|u| u.last_name.as_deref()),
            two_factor_authentication_enabled: user
                .is_some_and(|u| u.two_factor_authentication_enabled),
        },
        roles: roles(&m.grants, catalog).into_iter().map(role).collect(),
        policies: policies(&m.grants, catalog),
    }
}

/// A user group as the SDKs' `UserGroupGetResponse` has it.
#[derive(Serialize)]
pub struct UserGroupView<'a> {
    id: &'a Id,
    name: &'a str,
    created_on: &'a str,
    modified_on: &'a str,
    policies: Vec<PolicyView<'a>>,
}

pub fn user_group<'a>(g: &'a UserGroup, catalog: &'a AccountCatalog) -> UserGroupView<'a> {
    UserGroupView {
        id: &g.id,
        name: &g.name,
        created_on: &g.created_on,
        modified_on: &g.modified_on,
        policies: policy_views(&g.policies, catalog),
    }
}

/// A member of a user group (the SDKs' `MemberGetResponse`): the user's details only once
/// they have accepted, as in the members list.
#[derive(Serialize)]
pub struct GroupMemberView<'a> {
    id: &'a Id,
    email: &'a str,
    status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    created_at: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<GroupMemberUser<'a>>,
}

#[derive(Serialize)]
struct GroupMemberUser<'a> {
    id: &'a Id,
    email: &'a str,
    first_name: Option<&'a str>,
    last_name: Option<&'a str>,
}

pub fn group_member<'a>(m: &'a Membership, group: &Id) -> GroupMemberView<'a> {
    GroupMemberView {
        id: &m.id,
        email: m.email.as_str(),
        status: m.status,
        created_at: m
            .groups
            .iter()
            .find(|g| &g.id == group)
            .map(|g| g.added_on.as_str()),
        user: m.visible_user().map(|u| GroupMemberUser {
            id: &u.id,
            email: u.email.as_str(),
            first_name: u.first_name.as_deref(),
            last_name: u.last_name.as_deref(),
        }),
    }
}

/// A member just taken out of a group (the SDKs' `MemberDeleteResponse`).
pub fn group_member_removed(m: &Membership) -> GroupMemberView<'_> {
    GroupMemberView {
        id: &m.id,
        email: m.email.as_str(),
        status: m.status,
        created_at: None,
        user: None,
    }
}

/// The invitee's view of a membership: the account embedded, role names, effective
/// permissions, and the activation code while the invitation is pending.
#[derive(Serialize)]
pub struct MembershipView<'a> {
    id: &'a Id,
    account: AccountView<'a>,
    api_access_enabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'a str>,
    permissions: Box<RawValue>,
    policies: Vec<PolicyView<'a>>,
    roles: Vec<&'a str>,
    status: Status,
}

pub fn membership<'a>(
    a: &'a Account,
    m: &'a Membership,
    catalog: &'a AccountCatalog,
) -> MembershipView<'a> {
    MembershipView {
        id: &m.id,
        account: account(a),
        api_access_enabled: m.api_access_enabled,
        code: (m.status == Status::Pending).then_some(m.code.as_str()),
        permissions: permissions_json(catalog.member_permissions(a, m)),
        policies: policies(&m.grants, catalog),
        roles: roles(&m.grants, catalog)
            .into_iter()
            .map(|r| r.name.as_str())
            .collect(),
        status: m.status,
    }
}

/// A user's own membership as [`membership`] shows it, written once for each kept copy
/// of it (see `UserMembership::shown`).
pub fn own_membership(m: &crate::store::UserMembership) -> &RawValue {
    m.shown.get_or_init(|| {
        serde_json::value::to_raw_value(&membership(&m.account, &m.membership, &m.catalog))
            .expect("a membership serializes")
    })
}

/// Distinct permission sets whose JSON is kept; members' sets are few (one per combination
/// of roles or policies in use), and past this many the rest are serialized each time.
const PERMISSIONS_KEPT: usize = 1024;

/// A member's permissions as JSON, serialized once per distinct set and thread (no lock
/// to share between workers): the twelve keys and their read/write fields were most of the
/// cost of serializing a membership.
fn permissions_json(p: Permissions) -> Box<RawValue> {
    thread_local! {
        static KEPT: RefCell<foldhash::HashMap<Permissions, Box<RawValue>>> = RefCell::default();
    }
    KEPT.with_borrow_mut(|kept| {
        if let Some(json) = kept.get(&p) {
            return json.clone();
        }
        let json = serde_json::value::to_raw_value(&p).expect("permissions serialize");
        if kept.len() < PERMISSIONS_KEPT {
            kept.insert(p, json.clone());
        }
        json
    })
}

/// A membership as an invitation (`/user/invites`): the fields of the SDKs' `Invite`.
/// Roster does not record who sent an invitation, so `invited_by` is left out.
#[derive(Serialize)]
pub struct InviteView<'a> {
    id: &'a Id,
    invited_member_id: &'a Id,
    invited_member_email: &'a str,
    organization_id: &'a Id,
    organization_name: &'a str,
    organization_is_enforcing_twofactor: bool,
    invited_on: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_on: Option<String>,
    roles: Vec<&'a str>,
    status: &'static str,
}

pub fn invite<'a>(
    m: &'a crate::store::UserMembership,
    invitee: &'a User,
    ttl: std::time::Duration,
) -> InviteView<'a> {
    let membership = &m.membership;
    let expires_on = membership.invitation_expires_on(ttl);
    let status = match expires_on {
        Some(at) if at <= crate::domain::clock::now_utc() => "expired",
        _ => membership.status.as_str(),
    };
    InviteView {
        id: &membership.id,
        invited_member_id: &invitee.id,
        invited_member_email: invitee.email.as_str(),
        organization_id: &m.account.id,
        organization_name: &m.account.name,
        organization_is_enforcing_twofactor: m.account.settings.enforce_twofactor,
        invited_on: &membership.created_on,
        expires_on: expires_on.map(crate::domain::types::timestamp),
        roles: roles(&membership.grants, &m.catalog)
            .into_iter()
            .map(|r| r.name.as_str())
            .collect(),
        status,
    }
}

#[derive(Serialize)]
pub struct UserView<'a> {
    id: &'a Id,
    email: &'a str,
    first_name: Option<&'a str>,
    last_name: Option<&'a str>,
    telephone: Option<&'a str>,
    country: Option<&'a str>,
    zipcode: Option<&'a str>,
    two_factor_authentication_enabled: bool,
    two_factor_authentication_locked: bool,
    suspended: bool,
    has_pro_zones: bool,
    has_business_zones: bool,
    has_enterprise_zones: bool,
    betas: [(); 0],
    created_on: &'a str,
    modified_on: &'a str,
}

pub fn user(u: &User) -> UserView<'_> {
    UserView {
        id: &u.id,
        email: u.email.as_str(),
        first_name: u.first_name.as_deref(),
        last_name: u.last_name.as_deref(),
        telephone: u.telephone.as_deref(),
        country: u.country.as_deref(),
        zipcode: u.zipcode.as_deref(),
        two_factor_authentication_enabled: u.two_factor_authentication_enabled,
        two_factor_authentication_locked: false,
        suspended: false,
        has_pro_zones: false,
        has_business_zones: false,
        has_enterprise_zones: false,
        betas: [],
        created_on: &u.created_on,
        modified_on: &u.modified_on,
    }
}

#[derive(Serialize)]
pub struct TokenView<'a> {
    id: &'a Id,
    name: &'a str,
    status: TokenStatus,
    issued_on: &'a str,
    modified_on: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_used_on: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    not_before: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_on: Option<&'a str>,
    policies: Vec<TokenPolicyView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    condition: Option<ConditionView<'a>>,
    /// An account's token made by a user: who.
    #[serde(skip_serializing_if = "Option::is_none")]
    creator_email_at_creation: Option<&'a str>,
    /// The secret, only right after it was made.
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<&'a str>,
}

#[derive(Serialize)]
pub struct TokenPolicyView<'a> {
    id: &'a Id,
    effect: Effect,
    permission_groups: Vec<PermissionGroupView<'static>>,
    resources: &'a std::collections::BTreeMap<String, Resource>,
}

/// The SDKs read `request_ip`; the 2024 schema names it `request.ip`.
#[derive(Serialize)]
pub struct ConditionView<'a> {
    request_ip: &'a IpCondition,
}

pub fn token<'a>(t: &'a Token, value: Option<&'a str>) -> TokenView<'a> {
    TokenView {
        id: &t.id,
        name: &t.name,
        status: t.effective_status(clock::now_utc()),
        issued_on: &t.issued_on,
        modified_on: &t.modified_on,
        last_used_on: t.last_used_on.as_deref(),
        not_before: t.not_before.as_deref(),
        expires_on: t.expires_on.as_deref(),
        policies: t
            .policies
            .iter()
            .map(|p| TokenPolicyView {
                id: &p.id,
                effect: p.effect,
                permission_groups: permission_groups(&p.permission_groups),
                resources: &p.resources,
            })
            .collect(),
        condition: t
            .request_ip
            .as_ref()
            .map(|r| ConditionView { request_ip: r }),
        creator_email_at_creation: t.creator_email.as_deref(),
        value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::permissions::{Grant, Key};

    /// Each set gets its own JSON, the first time and from the kept copies alike.
    #[test]
    fn permissions_json_is_each_sets_own() {
        let sets = [
            Permissions::all(Grant::READ),
            Permissions::all(Grant::READ).with(Key::Dns, Grant::WRITE),
            Permissions::default(),
        ];
        for _ in 0..2 {
            for set in sets {
                assert_eq!(
                    permissions_json(set).get(),
                    serde_json::to_string(&set).unwrap()
                );
            }
        }
    }
}
