//! `/accounts/{account_id}/iam/...`: the permission-group catalog and the account's
//! resource groups, which member policies refer to.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;

use super::extract::{Auth, Body, Ids, Params};
use super::{ApiError, AppState, views};
use crate::domain::list::{paginate, same_name, text_key};
use crate::domain::types::bounded;
use crate::domain::*;
use crate::store::Written;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/accounts/{account_id}/iam/permission_groups",
            get(list_permission_groups),
        )
        .route(
            "/accounts/{account_id}/iam/permission_groups/{permission_group_id}",
            get(permission_group_details),
        )
        .route(
            "/accounts/{account_id}/iam/resource_groups",
            get(list_resource_groups).post(create_resource_group),
        )
        .route(
            "/accounts/{account_id}/iam/resource_groups/{resource_group_id}",
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
    app.load_account(&ids.one())
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
    app.load_account(&account_id)
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
    let page = params.page()?;
    let id = id_filter(&params)?;
    let name = params.text("name", 200)?;
    let state = app.load_account(&ids.one()).await?;
    state.authorize(&caller, Need::Read)?;
    let groups = state
        .catalog
        .resource_groups
        .iter()
        .filter(|g| id.as_ref().is_none_or(|id| &g.id == id))
        .filter(|g| name.as_ref().is_none_or(|n| same_name(&g.name, n)))
        .collect();
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
    let state = app.load_account(&account_id).await?;
    state.authorize(&caller, Need::Read)?;
    let group = state
        .catalog
        .resource_group(&group_id)
        .ok_or(DomainError::NotFound("Resource group"))?;
    Ok(views::single(views::resource_group(group)))
}

#[derive(Clone, Deserialize)]
struct ResourceGroupInput {
    name: Option<String>,
    scope: Scope,
    meta: Option<Meta>,
}

impl ResourceGroupInput {
    /// Validates the group for `state`'s account; the name defaults to the scope key, as
    /// Cloudflare names groups it creates itself.
    fn into_group(self, id: Id, state: &AccountState) -> Result<ResourceGroup, DomainError> {
        let expected = state.account.scope_key();
        if self.scope.key != expected {
            return Err(DomainError::invalid(
                "scope.key",
                format!("scope.key must be {expected}"),
            ));
        }
        if self.scope.objects.is_empty() {
            return Err(DomainError::invalid(
                "scope.objects",
                "scope.objects must not be empty",
            ));
        }
        for object in &self.scope.objects {
            bounded(&object.key, "scope.objects.key", 1, 255)?;
        }
        let name = bounded(self.name.as_deref().unwrap_or(&expected), "name", 1, 200)?;
        let taken = state
            .catalog
            .resource_groups
            .iter()
            .any(|g| g.id != id && same_name(&g.name, &name));
        if taken {
            return Err(DomainError::Duplicate(format!(
                "Resource group named {name}"
            )));
        }
        Ok(ResourceGroup {
            id,
            name,
            scope: self.scope,
            meta: self.meta.unwrap_or_default(),
        })
    }
}

async fn create_resource_group(
    State(app): State<AppState>,
    Auth(caller): Auth,
    ids: Ids,
    Body(body): Body<ResourceGroupInput>,
) -> Result<Response, ApiError> {
    let account_id = ids.one();
    let id = Id::generate();
    let written = app
        .store
        .write_account(&account_id, &|state| {
            state.authorize(&caller, Need::Write)?;
            Ok(vec![Change::PutResourceGroup(
                body.clone().into_group(id.clone(), state)?,
            )])
        })
        .await?;
    show_resource_group(&written)
}

/// The SDKs make `name` and `scope` optional on update (and send no `meta`): what is
/// missing is kept.
#[derive(Clone, Deserialize)]
struct ResourceGroupUpdate {
    name: Option<String>,
    scope: Option<Scope>,
    meta: Option<Meta>,
}

async fn update_resource_group(
    State(app): State<AppState>,
    Auth(caller): Auth,
    ids: Ids,
    Body(body): Body<ResourceGroupUpdate>,
) -> Result<Response, ApiError> {
    let (account_id, group_id) = ids.two();
    let written = app
        .store
        .write_account(&account_id, &|state| {
            state.authorize(&caller, Need::Write)?;
            let current = state
                .catalog
                .resource_group(&group_id)
                .ok_or(DomainError::NotFound("Resource group"))?;
            let input = ResourceGroupInput {
                name: body.name.clone().or_else(|| Some(current.name.clone())),
                scope: body.scope.clone().unwrap_or_else(|| current.scope.clone()),
                meta: body.meta.clone().or_else(|| Some(current.meta.clone())),
            };
            Ok(vec![Change::PutResourceGroup(
                input.into_group(group_id.clone(), state)?,
            )])
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
    app.store
        .write_account(&account_id, &|state| {
            state.authorize(&caller, Need::Write)?;
            Ok(vec![state.delete_resource_group(&group_id)?])
        })
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
