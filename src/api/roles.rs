//! `/accounts/{account_id}/roles`: the built-in role catalog plus the account's own roles.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;

use super::extract::{Auth, Ids, Params};
use super::{ApiError, AppState, views};
use crate::domain::list::paginate;
use crate::domain::{Direction, DomainError, Focus};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(v4!("/accounts/{account_id}/roles"), get(list))
        .route(v4!("/accounts/{account_id}/roles/{role_id}"), get(details))
}

async fn list(
    State(app): State<AppState>,
    Auth(caller): Auth,
    ids: Ids,
    params: Params,
) -> Result<Response, ApiError> {
    let page = params.page()?;
    let state = app
        .read_account(&ids.one(), &Focus::caller(&caller), &caller)
        .await?;
    let roles = state.catalog.roles().enumerate().collect();
    // The catalog's own order (Super Administrator first) is the order people expect.
    let page = paginate(
        roles,
        page,
        Direction::Asc,
        |(i, _)| *i,
        |(_, r)| r.id.as_str(),
    );
    Ok(views::list(&page, |(_, r)| views::role(r)))
}

async fn details(
    State(app): State<AppState>,
    Auth(caller): Auth,
    ids: Ids,
) -> Result<Response, ApiError> {
    let (account_id, role_id) = ids.two();
    let state = app
        .read_account(&account_id, &Focus::caller(&caller), &caller)
        .await?;
    let role = state
        .catalog
        .role(&role_id)
        .ok_or(DomainError::NotFound("Role"))?;
    Ok(views::single(views::role(role)))
}
