//! `/accounts/{account_id}/iam/user_groups`: named sets of the account's members whose
//! policies each member holds on top of their own (`../shared/DESIGN.md`, "User groups").
//! Reads need organization read, changes organization write, like the rest of the account.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;

use super::extract::{Auth, Body, Ids, ListBody, Params, not_null};
use super::members::{PolicyInput, parse_policies};
use super::{ApiError, AppState, views};
use crate::domain::list::{USER_GROUPS_PER_PAGE, page_in_order, same_name};
use crate::domain::*;
use crate::store::{GroupMemberQuery, Written};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            v4!("/accounts/{account_id}/iam/user_groups"),
            get(list).post(create),
        )
        .route(
            v4!("/accounts/{account_id}/iam/user_groups/{user_group_id}"),
            get(details).put(update).delete(remove),
        )
        .route(
            v4!("/accounts/{account_id}/iam/user_groups/{user_group_id}/members"),
            get(list_members).post(add_members).put(replace_members),
        )
        .route(
            v4!("/accounts/{account_id}/iam/user_groups/{user_group_id}/members/{member_id}"),
            get(member_details).delete(remove_member),
        )
}

/// A query parameter the SDKs send under a camel-case alias (`fuzzyName`), taken under
/// either spelling.
fn either(params: &Params, names: [&str; 2], max: usize) -> Result<Option<String>, DomainError> {
    match params.text(names[0], max)? {
        Some(value) => Ok(Some(value)),
        None => params.text(names[1], max),
    }
}

fn contains_folded(text: &str, part: &str) -> bool {
    text.to_lowercase().contains(&part.to_lowercase())
}

/// The groups, by name (`direction`); filters `id`, `name` (the whole name, any case) and
/// `fuzzy_name` (a part of it).
async fn list(
    State(app): State<AppState>,
    Auth(caller): Auth,
    ids: Ids,
    params: Params,
) -> Result<Response, ApiError> {
    let page = params.page_within(USER_GROUPS_PER_PAGE)?;
    let direction = params.choice("direction")?.unwrap_or(Direction::Asc);
    let id = params
        .text("id", 32)?
        .map(|raw| Id::parse_field(&raw, "id"))
        .transpose()?;
    let name = params.text("name", 200)?;
    let fuzzy = either(&params, ["fuzzy_name", "fuzzyName"], 200)?;
    let state = app
        .read_account(&ids.one(), &Focus::caller(&caller), &caller)
        .await?;
    let groups = state
        .catalog
        .user_groups_by_name()
        .into_iter()
        .filter(|g| id.as_ref().is_none_or(|id| &g.id == id))
        .filter(|g| name.as_ref().is_none_or(|n| same_name(&g.name, n)))
        .filter(|g| fuzzy.as_ref().is_none_or(|f| contains_folded(&g.name, f)))
        .collect();
    let page = page_in_order(groups, page, direction);
    Ok(views::list(&page, |g| views::user_group(g, &state.catalog)))
}

async fn details(
    State(app): State<AppState>,
    Auth(caller): Auth,
    ids: Ids,
) -> Result<Response, ApiError> {
    let (account_id, group_id) = ids.two();
    let state = app
        .read_account(&account_id, &Focus::caller(&caller), &caller)
        .await?;
    let group = state.user_group(&group_id)?;
    Ok(views::single(views::user_group(group, &state.catalog)))
}

#[derive(Deserialize)]
struct CreateGroup {
    name: String,
    #[serde(default, deserialize_with = "not_null")]
    policies: Option<Vec<PolicyInput>>,
}

async fn create(
    State(app): State<AppState>,
    Auth(caller): Auth,
    ids: Ids,
    Body(body): Body<CreateGroup>,
) -> Result<Response, ApiError> {
    let policies = parse_policies(body.policies.unwrap_or_default())?;
    let written = app
        .change_account(&ids.one(), &Focus::caller(&caller), &caller, |state| {
            Ok(vec![state.create_user_group(
                &body.name,
                policies.clone(),
                Some(&caller),
            )?])
        })
        .await?;
    show_group(&written)
}

/// What is absent is kept.
#[derive(Deserialize)]
struct UpdateGroup {
    #[serde(default, deserialize_with = "not_null")]
    name: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    policies: Option<Vec<PolicyInput>>,
}

async fn update(
    State(app): State<AppState>,
    Auth(caller): Auth,
    ids: Ids,
    Body(body): Body<UpdateGroup>,
) -> Result<Response, ApiError> {
    let (account_id, group_id) = ids.two();
    let policies = body.policies.map(parse_policies).transpose()?;
    // New policies may take the account's last administrator's rights away.
    let focus = Focus::caller(&caller)
        .administrators()
        .group_members(&group_id);
    let written = app
        .change_account(&account_id, &focus, &caller, |state| {
            Ok(vec![state.update_user_group(
                &group_id,
                body.name.as_deref(),
                policies.clone(),
                &caller,
            )?])
        })
        .await?;
    show_group(&written)
}

async fn remove(
    State(app): State<AppState>,
    Auth(caller): Auth,
    ids: Ids,
) -> Result<Response, ApiError> {
    let (account_id, group_id) = ids.two();
    let focus = Focus::caller(&caller)
        .administrators()
        .group_members(&group_id);
    app.change_account(&account_id, &focus, &caller, |state| {
        state.delete_user_group(&group_id, &caller)
    })
    .await?;
    Ok(views::single(views::IdOnly { id: &group_id }))
}

/// Renders the group a write just stored.
fn show_group(written: &Written) -> Result<Response, ApiError> {
    written
        .changes
        .iter()
        .find_map(|c| match c {
            Change::PutUserGroup(g) => {
                Some(views::single(views::user_group(g, &written.state.catalog)))
            }
            _ => None,
        })
        .ok_or_else(|| ApiError::Internal("user group write stored no group".into()))
}

/// The group's members as a write or a read leaves them: the loaded members in it, with
/// the write's changes applied, pending and accepted ones only.
fn members_after<'a>(
    state: &'a AccountState,
    changes: &'a [Change],
    group: &Id,
) -> Vec<&'a Membership> {
    state
        .members
        .iter()
        .map(|m| {
            changes
                .iter()
                .find_map(|c| match c {
                    Change::PutMembership(changed) if changed.id == m.id => Some(changed),
                    _ => None,
                })
                .unwrap_or(m)
        })
        .filter(|m| m.in_group(group) && m.status != Status::Rejected)
        .collect()
}

/// The members, by email (`direction`); `fuzzy_email` keeps those whose email holds it.
async fn list_members(
    State(app): State<AppState>,
    Auth(caller): Auth,
    ids: Ids,
    params: Params,
) -> Result<Response, ApiError> {
    let (account_id, group_id) = ids.two();
    let query = GroupMemberQuery {
        group: group_id.clone(),
        page: params.page_within(USER_GROUPS_PER_PAGE)?,
        direction: params.choice("direction")?.unwrap_or(Direction::Asc),
        fuzzy_email: either(&params, ["fuzzy_email", "fuzzyEmail"], 200)?,
    };
    let found = app
        .store
        .group_member_page(&account_id, caller.email_folded(), &query)
        .await?
        .ok_or(DomainError::NotFound("Account"))?;
    found
        .catalog
        .authorize(&found.account, found.caller.as_ref(), &caller, Need::Read)?;
    if found.catalog.user_group(&group_id).is_none() {
        return Err(DomainError::NotFound("User group").into());
    }
    Ok(views::list(&found.page, |m| {
        views::group_member(m, &group_id)
    }))
}

#[derive(Deserialize)]
struct MemberRef {
    id: String,
}

/// The members to add or set: the SDKs send the array itself, Cloudflare's documentation
/// an object holding it; both are taken.
#[derive(Deserialize)]
#[serde(untagged)]
enum SetMembers {
    List(Vec<MemberRef>),
    Object { members: Vec<MemberRef> },
}

impl SetMembers {
    fn members(&self) -> &[MemberRef] {
        match self {
            SetMembers::List(members) | SetMembers::Object { members } => members,
        }
    }
}

/// Adds the members (one already in stays); answers the group's members.
async fn add_members(
    State(app): State<AppState>,
    Auth(caller): Auth,
    ids: Ids,
    ListBody(body): ListBody<SetMembers>,
) -> Result<Response, ApiError> {
    set_members(app, caller, ids, body, false).await
}

/// Makes the group hold exactly these members; answers them.
async fn replace_members(
    State(app): State<AppState>,
    Auth(caller): Auth,
    ids: Ids,
    ListBody(body): ListBody<SetMembers>,
) -> Result<Response, ApiError> {
    set_members(app, caller, ids, body, true).await
}

async fn set_members(
    app: AppState,
    caller: std::sync::Arc<Caller>,
    ids: Ids,
    body: SetMembers,
    replace: bool,
) -> Result<Response, ApiError> {
    let (account_id, group_id) = ids.two();
    let wanted: Vec<Id> = body
        .members()
        .iter()
        .map(|m| Id::parse_field(&m.id, "members.id"))
        .collect::<Result<_, _>>()?;
    // Adding as well as replacing needs the administrators: a group's deny may take the
    // last one's rights away.
    let mut focus = Focus::caller(&caller)
        .group_members(&group_id)
        .administrators();
    for id in &wanted {
        focus = focus.member(id);
    }
    let written = app
        .change_account(&account_id, &focus, &caller, |state| {
            state.set_group_members(&group_id, &wanted, replace, &caller)
        })
        .await?;
    let mut members = members_after(&written.state, &written.changes, &group_id);
    members.sort_by(|a, b| a.email.folded().cmp(b.email.folded()));
    let shown: Vec<_> = members
        .iter()
        .map(|m| views::group_member(m, &group_id))
        .collect();
    Ok(views::single(shown))
}

async fn member_details(
    State(app): State<AppState>,
    Auth(caller): Auth,
    ids: Ids,
) -> Result<Response, ApiError> {
    let (account_id, group_id, member_id) = ids.three();
    let state = app
        .read_account(
            &account_id,
            &Focus::caller(&caller).member(&member_id),
            &caller,
        )
        .await?;
    state.user_group(&group_id)?;
    let member = state
        .members
        .iter()
        .find(|m| m.id == member_id && m.in_group(&group_id) && m.status != Status::Rejected)
        .ok_or(DomainError::NotFound("Member"))?;
    Ok(views::single(views::group_member(member, &group_id)))
}

async fn remove_member(
    State(app): State<AppState>,
    Auth(caller): Auth,
    ids: Ids,
) -> Result<Response, ApiError> {
    let (account_id, group_id, member_id) = ids.three();
    let focus = Focus::caller(&caller).member(&member_id).administrators();
    let written = app
        .change_account(&account_id, &focus, &caller, |state| {
            Ok(vec![
                state.remove_group_member(&group_id, &member_id, &caller)?,
            ])
        })
        .await?;
    let member = written
        .state
        .members
        .iter()
        .find(|m| m.id == member_id)
        .ok_or_else(|| ApiError::Internal("removed member not loaded".into()))?;
    Ok(views::single(views::group_member_removed(member)))
}
