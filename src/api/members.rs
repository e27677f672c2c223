//! `/accounts/{account_id}/members`: an account's members as its administrators see them.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;

use super::extract::{Auth, Body, Ids, Params, Ref, not_null};
use super::{ApiError, AppState, views};
use crate::domain::types::{Access, MemberOrder};
use crate::domain::*;
use crate::store::{MemberQuery, Written};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            v4!("/accounts/{account_id}/members"),
            get(list).post(create),
        )
        .route(
            v4!("/accounts/{account_id}/members/{member_id}"),
            get(details).put(update).delete(remove),
        )
}

#[derive(Deserialize)]
pub(super) struct PolicyInput {
    #[serde(default, deserialize_with = "not_null")]
    id: Option<String>,
    access: Access,
    permission_groups: Vec<Ref>,
    resource_groups: Vec<Ref>,
}

/// Policies as a member's or a user group's body gives them; a policy without an id gets
/// a new one.
pub(super) fn parse_policies(policies: Vec<PolicyInput>) -> Result<Vec<Policy>, DomainError> {
    policies
        .into_iter()
        .map(|p| {
            Ok(Policy {
                id: match &p.id {
                    Some(id) => Id::parse_field(id, "policies.id")?,
                    None => Id::generate(),
                },
                access: p.access,
                permission_groups: p
                    .permission_groups
                    .iter()
                    .map(|g| g.parse("policies.permission_groups"))
                    .collect::<Result<_, _>>()?,
                resource_groups: p
                    .resource_groups
                    .iter()
                    .map(|g| g.parse("policies.resource_groups"))
                    .collect::<Result<_, _>>()?,
            })
        })
        .collect()
}

fn parse_grants(
    roles: Option<Vec<Ref>>,
    policies: Option<Vec<PolicyInput>>,
) -> Result<Grants, DomainError> {
    match (roles, policies) {
        (Some(roles), None) => Ok(Grants::Roles(
            roles
                .iter()
                .map(|r| r.parse("roles"))
                .collect::<Result<_, _>>()?,
        )),
        (None, Some(policies)) => Ok(Grants::Policies(parse_policies(policies)?)),
        (Some(_), Some(_)) => Err(DomainError::invalid(
            "roles",
            "give either roles or policies, not both",
        )),
        (None, None) => Err(DomainError::invalid(
            "roles",
            "roles or policies is required",
        )),
    }
}

async fn list(
    State(app): State<AppState>,
    Auth(caller): Auth,
    ids: Ids,
    params: Params,
) -> Result<Response, ApiError> {
    let page = params.page()?;
    let status: Option<Status> = params.choice("status")?;
    let order: Option<MemberOrder> = params.choice("order")?;
    let direction = params.choice("direction")?.unwrap_or(Direction::Asc);
    let query = MemberQuery {
        status,
        order,
        direction,
        page,
    };
    let found = app
        .store
        .member_page(&ids.one(), caller.email_folded(), &query)
        .await?
        .ok_or(DomainError::NotFound("Account"))?;
    found
        .catalog
        .authorize(&found.account, found.caller.as_ref(), &caller, Need::Read)?;
    Ok(views::list(&found.page, |m| {
        views::member(m, &found.catalog)
    }))
}

async fn details(
    State(app): State<AppState>,
    Auth(caller): Auth,
    ids: Ids,
) -> Result<Response, ApiError> {
    let (account_id, member_id) = ids.two();
    let state = app
        .read_account(
            &account_id,
            &Focus::caller(&caller).member(&member_id),
            &caller,
        )
        .await?;
    Ok(views::single(views::member(
        state.member(&member_id)?,
        &state.catalog,
    )))
}

#[derive(Deserialize)]
struct CreateMember {
    email: String,
    #[serde(default, deserialize_with = "not_null")]
    roles: Option<Vec<Ref>>,
    #[serde(default, deserialize_with = "not_null")]
    policies: Option<Vec<PolicyInput>>,
    #[serde(default, deserialize_with = "not_null")]
    status: Option<Status>,
}

async fn create(
    State(app): State<AppState>,
    Auth(caller): Auth,
    ids: Ids,
    Body(body): Body<CreateMember>,
) -> Result<Response, ApiError> {
    let account_id = ids.one();
    let status = body.status.unwrap_or(Status::Pending);
    if status == Status::Rejected {
        return Err(
            DomainError::invalid("status", "status must be one of: accepted, pending").into(),
        );
    }
    let new = NewMember {
        email: Email::parse(&body.email, "email")?,
        grants: parse_grants(body.roles, body.policies)?,
        status,
    };
    let invitee = app
        .store
        .user_by_email(new.email.folded())
        .await?
        .map(|(u, _)| u);
    let written = app
        .change_account(
            &account_id,
            &Focus::caller(&caller).email(new.email.folded()),
            &caller,
            |state| {
                Ok(vec![state.invite(
                    new.clone(),
                    invitee.clone(),
                    Some(&caller),
                )?])
            },
        )
        .await?;
    show_member(&written)
}

#[derive(Deserialize)]
struct UpdateMember {
    #[serde(default, deserialize_with = "not_null")]
    roles: Option<Vec<Ref>>,
    #[serde(default, deserialize_with = "not_null")]
    policies: Option<Vec<PolicyInput>>,
}

async fn update(
    State(app): State<AppState>,
    Auth(caller): Auth,
    ids: Ids,
    Body(body): Body<UpdateMember>,
) -> Result<Response, ApiError> {
    let (account_id, member_id) = ids.two();
    // The schema and the SDKs make `roles` optional here: without either, nothing changes.
    let grants = match (&body.roles, &body.policies) {
        (None, None) => None,
        _ => Some(parse_grants(body.roles, body.policies)?),
    };
    let written = app
        .change_account(
            &account_id,
            &Focus::caller(&caller).member(&member_id).administrators(),
            &caller,
            |state| {
                let grants = match &grants {
                    Some(grants) => grants.clone(),
                    None => state.member(&member_id)?.grants.clone(),
                };
                Ok(vec![state.update_grants(&member_id, grants, &caller)?])
            },
        )
        .await?;
    show_member(&written)
}

async fn remove(
    State(app): State<AppState>,
    Auth(caller): Auth,
    ids: Ids,
) -> Result<Response, ApiError> {
    let (account_id, member_id) = ids.two();
    app.change_account(
        &account_id,
        &Focus::caller(&caller).member(&member_id).administrators(),
        &caller,
        |state| Ok(vec![state.remove_member(&member_id, &caller)?]),
    )
    .await?;
    Ok(views::single(views::IdOnly { id: &member_id }))
}

/// Renders the membership a write just stored, as the account sees it.
fn show_member(written: &Written) -> Result<Response, ApiError> {
    let m = written
        .membership()
        .ok_or_else(|| ApiError::Internal("member write stored no membership".into()))?;
    Ok(views::single(views::member(m, &written.state.catalog)))
}
