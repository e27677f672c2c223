//! `/accounts/{account_id}/iam/...`: the permission-group catalog and the account's
//! resource groups, which member policies refer to.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;

use super::extract::{Auth, Body, Ids, Params, not_null};
use super::{ApiError, AppState, views};
use crate::domain::list::{PageRequest, paginate, same_name, text_key};
use crate::domain::*;
use crate::store::Written;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            v4!("/accounts/{account_id}/iam/permission_groups"),
            get(list_permission_groups),
        )
        .route(
            v4!("/accounts/{account_id}/iam/permission_groups/{permission_group_id}"),
            get(permission_group_details),
        )
        .route(
            v4!("/accounts/{account_id}/iam/resource_groups"),
            get(list_resource_groups).post(create_resource_group),
        )
        .route(
            v4!("/accounts/{account_id}/iam/resource_groups/{resource_group_id}"),
            get(resource_group_details)
                .put(update_resource_group)
                .delete(delete_resource_group),
        )
}

fn id_filter(params: &Params) -> Result<Option<Id>, DomainError> {
    params
        .text("id", 32)?
        .map(|raw| Id::parse_field(&raw, "id"))
        .transpose()
}

async fn list_permission_groups(
    State(app): State<AppState>,
    Auth(caller): Auth,
    ids: Ids,
    params: Params,
) -> Result<Response, ApiError> {
    let page = params.page()?;
    let id = id_filter(&params)?;
    let name = params.text("name", 200)?;
    let label = params.text("label", 200)?;
    app.load_account(&ids.one(), &Focus::caller(&caller))
        .await?
        .authorize(&caller, Need::Read)?;
    let groups = catalog::permission_groups()
        .iter()
        .filter(|g| id.as_ref().is_none_or(|id| &g.id == id))
        .filter(|g| name.as_ref().is_none_or(|n| same_name(&g.name, n)))
        .filter(|g| label.as_ref().is_none_or(|l| same_name(&g.label, l)))
        .collect();
    let page = paginate(
        groups,
        page,
        Direction::Asc,
        |g| text_key(Some(&g.name)),
        |g| g.id.as_str(),
    );
    Ok(views::list(&page, |g| views::permission_group(g)))
}

async fn permission_group_details(
    State(app): State<AppState>,
    Auth(caller): Auth,
    ids: Ids,
) -> Result<Response, ApiError> {
    let (account_id, group_id) = ids.two();
    app.load_account(&account_id, &Focus::caller(&caller))
        .await?
        .authorize(&caller, Need::Read)?;
    let group =
        catalog::permission_group(&group_id).ok_or(DomainError::NotFound("Permission group"))?;
    Ok(views::single(views::permission_group(group)))
}

async fn list_resource_groups(
    State(app): State<AppState>,
    Auth(caller): Auth,
    ids: Ids,
    params: Params,
) -> Result<Response, ApiError> {
    // Today's SDKs read the list as one page and send no paging parameters; callers
    // written against the 2024 schema, which had them, still get their pages.
    let asked = params.page_if_asked()?;
    let id = id_filter(&params)?;
    let name = params.text("name", 200)?;
    let state = app
        .read_account(&ids.one(), &Focus::caller(&caller), &caller)
        .await?;
    let groups = state
        .catalog
        .resource_groups
        .iter()
        .filter(|g| id.as_ref().is_none_or(|id| &g.id == id))
        .filter(|g| name.as_ref().is_none_or(|n| same_name(&g.name, n)))
        .collect::<Vec<_>>();
    let page = asked.unwrap_or_else(|| PageRequest::whole(groups.len()));
    let page = paginate(
        groups,
        page,
        Direction::Asc,
        |g| text_key(Some(&g.name)),
        |g| g.id.as_str(),
    );
    Ok(views::list(&page, |g| views::resource_group(g)))
}

async fn resource_group_details(
    State(app): State<AppState>,
    Auth(caller): Auth,
    ids: Ids,
) -> Result<Response, ApiError> {
    let (account_id, group_id) = ids.two();
    let state = app
        .read_account(&account_id, &Focus::caller(&caller), &caller)
        .await?;
    let group = state
        .catalog
        .resource_group(&group_id)
        .ok_or(DomainError::NotFound("Resource group"))?;
    Ok(views::single(views::resource_group(group)))
}

/// A resource group as created or replaced. `name` defaults to the scope key, as Cloudflare
/// names the groups it makes itself.
#[derive(Deserialize)]
struct CreateResourceGroup {
    #[serde(default, deserialize_with = "not_null")]
    name: Option<String>,
    scope: Scope,
    #[serde(default, deserialize_with = "not_null")]
    meta: Option<Meta>,
}

async fn create_resource_group(
    State(app): State<AppState>,
    Auth(caller): Auth,
    ids: Ids,
    Body(body): Body<CreateResourceGroup>,
) -> Result<Response, ApiError> {
    let account_id = ids.one();
    let group = ResourceGroup {
        id: Id::generate(),
        name: body.name.unwrap_or_else(|| body.scope.key.clone()),
        scope: body.scope,
        meta: body.meta.unwrap_or_default(),
    };
    let written = app
        .change_account(&account_id, &Focus::caller(&caller), &caller, |state| {
            Ok(vec![state.put_resource_group(group.clone())?])
        })
        .await?;
    show_resource_group(&written)
}

/// The SDKs make `name` and `scope` optional on update (and send no `meta`): what is
/// missing is kept.
#[derive(Deserialize)]
struct UpdateResourceGroup {
    #[serde(default, deserialize_with = "not_null")]
    name: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    scope: Option<Scope>,
    #[serde(default, deserialize_with = "not_null")]
    meta: Option<Meta>,
}

async fn update_resource_group(
    State(app): State<AppState>,
    Auth(caller): Auth,
    ids: Ids,
    Body(body): Body<UpdateResourceGroup>,
) -> Result<Response, ApiError> {
    let (account_id, group_id) = ids.two();
    let written = app
        .change_account(&account_id, &Focus::caller(&caller), &caller, |state| {
            let current = state
                .catalog
                .resource_group(&group_id)
                .ok_or(DomainError::NotFound("Resource group"))?;
            let group = ResourceGroup {
                id: group_id.clone(),
                name: body.name.clone().unwrap_or_else(|| current.name.clone()),
                scope: body.scope.clone().unwrap_or_else(|| current.scope.clone()),
                meta: body.meta.clone().unwrap_or_else(|| current.meta.clone()),
            };
            Ok(vec![state.put_resource_group(group)?])
        })
        .await?;
    show_resource_group(&written)
}

async fn delete_resource_group(
    State(app): State<AppState>,
    Auth(caller): Auth,
    ids: Ids,
) -> Result<Response, ApiError> {
    let (account_id, group_id) = ids.two();
    app.change_account(
        &account_id,
        &Focus::caller(&caller).mentioning(&group_id),
        &caller,
        |state| Ok(vec![state.delete_resource_group(&group_id)?]),
    )
    .await?;
    Ok(views::single(views::IdOnly { id: &group_id }))
}

/// Renders the resource group a write just stored.
fn show_resource_group(written: &Written) -> Result<Response, ApiError> {
    written
        .changes
        .iter()
        .find_map(|c| match c {
            Change::PutResourceGroup(g) => Some(views::single(views::resource_group(g))),
            _ => None,
        })
        .ok_or_else(|| ApiError::Internal("resource group write stored no group".into()))
}
