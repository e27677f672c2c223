//! `/user/invites`: the caller's invitations in Cloudflare's invite shape. An invite is a
//! membership of the caller's made by an invitation, under the membership's id, so an
//! invite and `/memberships/{id}` are one thing seen twice; answering it follows exactly the
//! rules of `PUT /memberships/{id}`.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;

use super::extract::{Auth, Body, Ids};
use super::memberships::{answer, own};
use super::{ApiError, AppState, views};
use crate::domain::types::Answer;
use crate::domain::{Need, Status};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(v4!("/user/invites"), get(list))
        .route(v4!("/user/invites/{invite_id}"), get(details).patch(edit))
}

/// The invitations still waiting for an answer, expired ones included (as `expired`), in
/// the order they were made.
async fn list(State(app): State<AppState>, Auth(caller): Auth) -> Result<Response, ApiError> {
    caller.require_token_group("Memberships", Need::Read)?;
    let user = caller.user()?;
    let all = app.store.user_memberships(user.email.folded()).await?;
    let mut pending: Vec<_> = all
        .iter()
        .filter(|m| m.membership.status == Status::Pending)
        .collect();
    pending.sort_by(|a, b| {
        (&a.membership.created_on, a.membership.id.as_str())
            .cmp(&(&b.membership.created_on, b.membership.id.as_str()))
    });
    let invites: Vec<_> = pending
        .iter()
        .map(|m| views::invite(m, user, app.invitation_ttl))
        .collect();
    Ok(views::single(invites))
}

async fn details(
    State(app): State<AppState>,
    Auth(caller): Auth,
    ids: Ids,
) -> Result<Response, ApiError> {
    caller.require_token_group("Memberships", Need::Read)?;
    let m = own(&app, &caller, &ids.one()).await?;
    Ok(views::single(views::invite(
        &m,
        caller.user()?,
        app.invitation_ttl,
    )))
}

#[derive(Deserialize)]
struct Edit {
    status: Answer,
}

async fn edit(
    State(app): State<AppState>,
    Auth(caller): Auth,
    ids: Ids,
    Body(body): Body<Edit>,
) -> Result<Response, ApiError> {
    let id = ids.one();
    answer(&app, &caller, &id, body.status).await?;
    let m = own(&app, &caller, &id).await?;
    Ok(views::single(views::invite(
        &m,
        caller.user()?,
        app.invitation_ttl,
    )))
}
