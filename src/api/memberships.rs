//! `/memberships`: the caller's own invitations and memberships. Another user's membership
//! id answers exactly like a missing one.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;

use super::extract::{Auth, Body, Ids, Params};
use super::{ApiError, AppState, views};
use crate::domain::types::{Answer, MembershipOrder};
use crate::domain::{Caller, Direction, DomainError, Focus, Id, Need, Status};
use crate::store::{OwnMembershipQuery, UserMembership, Written};

pub fn router() -> Router<AppState> {
    Router::new().route(v4!("/memberships"), get(list)).route(
        v4!("/memberships/{membership_id}"),
        get(details).put(respond).delete(leave),
    )
}

async fn list(
    State(app): State<AppState>,
    Auth(caller): Auth,
    params: Params,
) -> Result<Response, ApiError> {
    caller.require_token_group("Memberships", Need::Read)?;
    let page = params.page()?;
    let status: Option<Status> = params.choice("status")?;
    let order = params.choice("order")?.unwrap_or(MembershipOrder::Id);
    let direction = params.choice("direction")?.unwrap_or(Direction::Asc);
    let names = [params.text("account.name", 100)?, params.text("name", 100)?];
    let query = OwnMembershipQuery {
        status,
        account_names: names.into_iter().flatten().collect(),
        order,
        direction,
        page,
    };
    let page = app
        .store
        .user_membership_page(caller.user()?.email.folded(), &query)
        .await?;
    Ok(views::list(&page, |m| views::own_membership(m)))
}

pub(super) async fn own(
    app: &AppState,
    caller: &Caller,
    id: &Id,
) -> Result<Arc<UserMembership>, ApiError> {
    app.store
        .user_membership(caller.user()?.email.folded(), id)
        .await?
        .ok_or(DomainError::NotFound("Membership").into())
}

async fn details(
    State(app): State<AppState>,
    Auth(caller): Auth,
    ids: Ids,
) -> Result<Response, ApiError> {
    caller.require_token_group("Memberships", Need::Read)?;
    let m = own(&app, &caller, &ids.one()).await?;
    Ok(views::single(views::own_membership(&m)))
}

#[derive(Deserialize)]
struct Respond {
    status: Answer,
}

async fn respond(
    State(app): State<AppState>,
    Auth(caller): Auth,
    ids: Ids,
    Body(body): Body<Respond>,
) -> Result<Response, ApiError> {
    let written = answer(&app, &caller, &ids.one(), body.status).await?;
    let m = written
        .membership()
        .ok_or_else(|| ApiError::Internal("response stored no membership".into()))?;
    let state = &written.state;
    Ok(views::single(views::membership(
        &state.account,
        m,
        &state.catalog,
    )))
}

/// The caller's answer to their invitation `id`, as `PUT /memberships/{id}` and
/// `PATCH /user/invites/{id}` both take it.
pub(super) async fn answer(
    app: &AppState,
    caller: &Caller,
    id: &Id,
    status: Answer,
) -> Result<Written, ApiError> {
    caller.require_token_group("Memberships", Need::Write)?;
    let current = own(app, caller, id).await?;
    let ttl = app.invitation_ttl;
    Ok(app
        .store
        .write_account(
            &current.account.id,
            &Focus::default().member(id),
            &|state| Ok(vec![state.respond(id, caller.user()?, status, ttl)?]),
        )
        .await?)
}

async fn leave(
    State(app): State<AppState>,
    Auth(caller): Auth,
    ids: Ids,
) -> Result<Response, ApiError> {
    caller.require_token_group("Memberships", Need::Write)?;
    let id = ids.one();
    let current = own(&app, &caller, &id).await?;
    app.store
        .write_account(
            &current.account.id,
            &Focus::default().member(&id).administrators(),
            &|state| Ok(vec![state.leave(&id, caller.user()?)?]),
        )
        .await?;
    Ok(views::single(views::IdOnly { id: &id }))
}
