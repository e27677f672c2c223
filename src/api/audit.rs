//! The audit log, read three ways: Cloudflare's v1 `GET /accounts/{id}/audit_logs` (page
//! numbers) and `GET /user/audit_logs` (the caller's own changes, anywhere), and v2
//! `GET /accounts/{id}/logs/audit` (a time window and a cursor). Reading an account's log
//! needs organization read there ("Account Settings Read"); the user's own, with a token,
//! "User Details Read". The entries are written by the store, in each change's transaction.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};

use super::extract::{Auth, Ids, Params};
use super::{ApiError, AppState, views};
use crate::domain::audit::{self, ActorKind, Entry, Query, Scope};
use crate::domain::{Direction, DomainError, Email, Focus, Id, Need};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/accounts/{account_id}/audit_logs", get(account_v1))
        .route("/accounts/{account_id}/logs/audit", get(account_v2))
        .route("/user/audit_logs", get(user_v1))
}

/// v1 pages: 100 entries unless asked, at most 1,000 (Cloudflare's).
const V1_PER_PAGE: u32 = 100;
/// v2 pages: `limit`, the same bounds.
const MAX_PER_PAGE: u32 = 1000;

/// The filters both versions share, under their own names.
fn filters(q: &mut Query, params: &Params, names: &Names) -> Result<(), DomainError> {
    q.id = params
        .text(names.id, 32)?
        .map(|id| Id::parse_field(&id, names.id))
        .transpose()?;
    q.action = params.text(names.action, 20)?;
    q.actor_email = params
        .text(names.email, 254)?
        .map(|e| Email::parse(&e, names.email).map(|e| e.folded().to_string()))
        .transpose()?;
    q.actor_ip = params
        .text(names.ip, 64)?
        .map(|ip| {
            ip.parse::<std::net::IpAddr>()
                .map(|ip| ip.to_canonical().to_string())
                .map_err(|_| {
                    DomainError::invalid(
                        names.ip,
                        format!(
                            "{} must be one IP address (ranges are not taken here)",
                            names.ip
                        ),
                    )
                })
        })
        .transpose()?;
    let time = |name: &str| {
        params
            .text(name, 64)?
            .map(|raw| {
                audit::parse_when(&raw).ok_or_else(|| {
                    DomainError::invalid(
                        name,
                        format!("{name} must be a date (2026-11-30) or an RFC 3339 time"),
                    )
                })
            })
            .transpose()
    };
    q.since = time("since")?;
    q.before = time("before")?;
    q.oldest_first = params.choice("direction")?.unwrap_or(Direction::Desc) == Direction::Asc;
    Ok(())
}

/// A filter's parameter names in one version of the API.
struct Names {
    id: &'static str,
    action: &'static str,
    email: &'static str,
    ip: &'static str,
}

const V1: Names = Names {
    id: "id",
    action: "action.type",
    email: "actor.email",
    ip: "actor.ip",
};

const V2: Names = Names {
    id: "id",
    action: "action_type",
    email: "actor_email",
    ip: "actor_ip_address",
};

fn per_page(params: &Params, name: &str, default: u32) -> Result<u32, DomainError> {
    match params.number(name)? {
        None => Ok(default),
        Some(n) if (1..=MAX_PER_PAGE).contains(&n) => Ok(n),
        Some(_) => Err(DomainError::invalid(
            name,
            format!("{name} must be between 1 and {MAX_PER_PAGE}"),
        )),
    }
}

/// A v1 page: `page` and `per_page`, answered with how many it holds (a count of the whole
/// log would cost what the log weighs).
async fn v1(app: &AppState, scope: Scope, params: &Params) -> Result<Response, ApiError> {
    let per_page = per_page(params, "per_page", V1_PER_PAGE)?;
    let page = match params.number("page")? {
        None => 1,
        Some(0) => return Err(DomainError::invalid("page", "page starts at 1").into()),
        Some(n) => n,
    };
    let mut q = Query::new(scope, per_page);
    filters(&mut q, params, &V1)?;
    q.offset = u64::from(page - 1) * u64::from(per_page);
    let entries = app.store.audit_log(&q).await?;
    let result: Vec<Value> = entries.iter().map(v1_view).collect();
    let info = json!({ "page": page, "per_page": per_page, "count": result.len() });
    Ok(views::list_with_info(result, info))
}

async fn account_v1(
    State(app): State<AppState>,
    Auth(caller): Auth,
    ids: Ids,
    params: Params,
) -> Result<Response, ApiError> {
    let id = ids.one();
    app.read_account(&id, &Focus::caller(&caller), &caller)
        .await?;
    v1(&app, Scope::Account(id), &params).await
}

async fn user_v1(
    State(app): State<AppState>,
    Auth(caller): Auth,
    params: Params,
) -> Result<Response, ApiError> {
    caller.require_token_group("User Details", Need::Read)?;
    let user = caller.user()?.id.clone();
    v1(&app, Scope::Actor(user), &params).await
}

/// v2: `since` and `before` are required; `limit` entries past `cursor`, and the cursor of
/// the last one when more may follow.
async fn account_v2(
    State(app): State<AppState>,
    Auth(caller): Auth,
    ids: Ids,
    params: Params,
) -> Result<Response, ApiError> {
    let id = ids.one();
    app.read_account(&id, &Focus::caller(&caller), &caller)
        .await?;
    for required in ["since", "before"] {
        if params.text(required, 64)?.is_none() {
            return Err(DomainError::invalid(
                required,
                format!("{required} is required (a date or an RFC 3339 time)"),
            )
            .into());
        }
    }
    let limit = per_page(&params, "limit", V1_PER_PAGE)?;
    let mut q = Query::new(Scope::Account(id), limit);
    filters(&mut q, &params, &V2)?;
    q.actor_id = params
        .text("actor_id", 32)?
        .map(|id| Id::parse_field(&id, "actor_id"))
        .transpose()?;
    q.resource_type = params.text("resource_type", 100)?;
    q.resource_id = params.text("resource_id", 100)?;
    q.after = params
        .text("cursor", 512)?
        .map(|c| {
            audit::parse_cursor(&c).ok_or_else(|| {
                DomainError::invalid("cursor", "cursor is not one this log gave out")
            })
        })
        .transpose()?;
    let entries = app.store.audit_log(&q).await?;
    let next = (entries.len() == limit as usize)
        .then(|| entries.last().map(audit::cursor_after))
        .flatten();
    let result: Vec<Value> = entries.iter().map(v2_view).collect();
    // The SDKs read `cursors.after`; Cloudflare's documentation shows `cursor`.
    let info = json!({ "count": result.len(), "cursor": next, "cursors": { "after": next } });
    Ok(views::list_with_info(result, info))
}

/// Where a change came from, as v1 names it: `user` for anything made through the API
/// (an account's token included), `admin` for the operator's CLI.
fn v1_actor_type(kind: ActorKind) -> &'static str {
    match kind {
        ActorKind::System => "admin",
        _ => "user",
    }
}

fn v1_view(e: &Entry) -> Value {
    json!({
        "id": e.id,
        "action": { "type": e.action, "result": true },
        "actor": {
            "id": e.actor.id,
            "email": e.actor.email,
            "ip": e.actor.ip.map(|ip| ip.to_string()),
            "type": v1_actor_type(e.actor.kind),
        },
        "interface": if e.actor.kind == ActorKind::System { "CLI" } else { "API" },
        "metadata": {
            "description": e.description,
            "ray_id": e.raw.as_ref().map(|r| &r.ray),
            "token_id": e.actor.token_id,
        },
        "newValue": e.new_value.as_ref().map(Value::to_string),
        "oldValue": e.old_value.as_ref().map(Value::to_string),
        "owner": { "id": e.account_id.as_ref().or(e.actor.id.as_ref()) },
        "resource": { "id": e.resource_id, "type": e.resource_type },
        "when": e.when,
    })
}

fn v2_view(e: &Entry) -> Value {
    let (kind, context) = match e.actor.kind {
        ActorKind::UserKey => ("user", Some("api_key")),
        ActorKind::UserToken => ("user", Some("api_token")),
        ActorKind::AccountToken => ("account", Some("api_token")),
        ActorKind::System => ("system", None),
    };
    let mut view = json!({
        "id": e.id,
        "action": {
            "description": e.description,
            "result": "success",
            "time": e.when,
            "type": e.action,
        },
        "actor": {
            "id": e.actor.id,
            "context": context,
            "email": e.actor.email,
            "ip_address": e.actor.ip.map(|ip| ip.to_string()),
            "token_id": e.actor.token_id,
            "token_name": e.actor.token_name,
            "type": kind,
        },
        "resource": {
            "id": e.resource_id,
            "product": "iam",
            "type": e.resource_type,
            "request": e.old_value,
            "response": e.new_value,
        },
    });
    if let Some(account) = &e.account_id {
        view["account"] = json!({ "id": account });
    }
    if let Some(raw) = &e.raw {
        view["raw"] = json!({ "cf_ray_id": raw.ray, "method": raw.method, "uri": raw.uri });
    }
    strip_nulls(&mut view);
    view
}

/// Leaves out what an entry does not have, as the SDKs' optional fields expect: in the
/// view's own objects, not in the recorded values.
fn strip_nulls(view: &mut Value) {
    if let Value::Object(map) = view {
        map.retain(|_, v| !v.is_null());
        for part in map.values_mut() {
            if let Value::Object(fields) = part {
                fields.retain(|_, v| !v.is_null());
            }
        }
    }
}
