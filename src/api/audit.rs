//! The audit log, read three ways: Cloudflare's v1 `GET /accounts/{id}/audit_logs` (page
//! numbers) and `GET /user/audit_logs` (the caller's own changes, anywhere), and v2
//! `GET /accounts/{id}/logs/audit` (a time window and a cursor), with the history of the
//! resource an entry changed and the product categories its filter takes. Reading an account's log
//! needs organization read there ("Account Settings Read"); the user's own, with a token,
//! "User Details Read". The entries are written by the store, in each change's transaction.

use axum::Router;
use axum::extract::{OriginalUri, Path, State};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};

use super::extract::{Auth, Ids, Params};
use super::{ApiError, AppState, views};
use crate::domain::audit::{self, ActorKind, Entry, Field, Filter, Query, Scope};
use crate::domain::{Direction, DomainError, Email, Focus, Id, Need};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(v4!("/accounts/{account_id}/audit_logs"), get(account_v1))
        .route(v4!("/accounts/{account_id}/logs/audit"), get(account_v2))
        .route(
            v4!("/accounts/{account_id}/logs/audit/product_categories"),
            get(product_categories),
        )
        .route(
            v4!("/accounts/{account_id}/logs/audit/{audit_log_id}/history"),
            get(history),
        )
        .route(v4!("/user/audit_logs"), get(user_v1))
}

/// v1 pages: 100 entries unless asked, at most 1,000 (Cloudflare's).
const V1_PER_PAGE: u32 = 100;
/// v2 pages: `limit`, the same bounds.
const MAX_PER_PAGE: u32 = 1000;
/// The longest value a text filter takes.
const MAX_VALUE: usize = 255;

/// The time window and order both versions share.
fn window(q: &mut Query, params: &Params) -> Result<(), DomainError> {
    q.since = time(params, "since")?;
    q.before = time(params, "before")?;
    q.oldest_first = params.choice("direction")?.unwrap_or(Direction::Desc) == Direction::Asc;
    Ok(())
}

fn time(params: &Params, name: &str) -> Result<Option<String>, DomainError> {
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
}

/// How a filter's value is read, named by its parameter.
type Parse = fn(&str, &str) -> Result<String, DomainError>;

fn as_sent(_: &str, value: &str) -> Result<String, DomainError> {
    Ok(value.to_string())
}

fn entry_id(_: &str, value: &str) -> Result<String, DomainError> {
    Ok(audit::entry_id(value))
}

fn folded_email(name: &str, value: &str) -> Result<String, DomainError> {
    Email::parse(value, name).map(|e| e.folded().to_string())
}

fn ip_address(name: &str, value: &str) -> Result<String, DomainError> {
    value
        .parse::<std::net::IpAddr>()
        .map(|ip| ip.to_canonical().to_string())
        .map_err(|_| {
            DomainError::invalid(
                name,
                format!("{name} must be one IP address (ranges are not taken here)"),
            )
        })
}

fn user_id(name: &str, value: &str) -> Result<String, DomainError> {
    Id::parse_field(value, name).map(|id| id.as_str().to_string())
}

/// Token ids are Roster's hex ids, matched in any case; other text names no token.
fn token_id(_: &str, value: &str) -> Result<String, DomainError> {
    Ok(Id::parse(value).map_or_else(|| value.to_string(), |id| id.as_str().to_string()))
}

fn method(_: &str, value: &str) -> Result<String, DomainError> {
    Ok(value.to_ascii_uppercase())
}

/// `value` if it is one of `allowed`, a 400 naming the parameter otherwise.
fn one_of(name: &str, value: &str, allowed: &[&str]) -> Result<(), DomainError> {
    if allowed.contains(&value) {
        return Ok(());
    }
    Err(DomainError::invalid(
        name,
        format!("{name} must be one of: {}", allowed.join(", ")),
    ))
}

fn action_type(name: &str, value: &str) -> Result<String, DomainError> {
    one_of(name, value, &["create", "delete", "view", "update"])?;
    Ok(value.to_string())
}

/// v1's filters, one value each: `id`, `action.type`, `actor.email`, `actor.ip`.
fn v1_filters(q: &mut Query, params: &Params) -> Result<(), DomainError> {
    let fields: [(&str, Field, Parse); 4] = [
        ("id", Field::Id, entry_id),
        ("action.type", Field::Action, as_sent),
        ("actor.email", Field::ActorEmail, folded_email),
        ("actor.ip", Field::ActorIp, ip_address),
    ];
    for (name, field, parse) in fields {
        if let Some(value) = params.text(name, MAX_VALUE)? {
            q.filters
                .push(Filter::any_of(field, vec![parse(name, &value)?]));
        }
    }
    window(q, params)
}

/// A v2 filter as sent: the values of its plain form (any of them) and of its `.not` form
/// (none of them), each parsed; `None` for a form not sent.
struct Forms {
    any: Option<Vec<String>>,
    none: Option<Vec<String>>,
}

impl Forms {
    fn read(
        params: &Params,
        name: &str,
        parse: impl Fn(&str, &str) -> Result<Vec<String>, DomainError>,
    ) -> Result<Forms, DomainError> {
        let read = |param: &str| -> Result<Option<Vec<String>>, DomainError> {
            let sent = params.texts(param, MAX_VALUE)?;
            if sent.is_empty() {
                return Ok(None);
            }
            let mut values = Vec::new();
            for value in &sent {
                values.extend(parse(param, value)?);
            }
            Ok(Some(values))
        };
        Ok(Forms {
            any: read(name)?,
            none: read(&format!("{name}.not"))?,
        })
    }

    /// Conditions on `field`, one per form sent. Values that name nothing Roster holds
    /// leave an inclusion matching no entry, and an exclusion taking none out.
    fn on(self, field: Field, filters: &mut Vec<Filter>) {
        if let Some(values) = self.any {
            filters.push(Filter::any_of(field, values));
        }
        if let Some(values) = self.none {
            filters.push(Filter::none_of(field, values));
        }
    }

    /// For what every entry holds alike (`holds` says whether values name it): all
    /// entries stay, or none.
    fn on_every_entry(self, holds: impl Fn(&[String]) -> bool, filters: &mut Vec<Filter>) {
        if self.any.is_some_and(|v| !holds(&v)) || self.none.is_some_and(|v| holds(&v)) {
            filters.push(Filter::nothing());
        }
    }
}

/// v2's filters (those of the SDKs' `AuditListParams`): each takes its values by
/// repeating the parameter, any of them matching, and its `.not` form leaves out entries
/// matching any of its values. `account_name` is the account's name now.
fn v2_filters(params: &Params, account_name: &str) -> Result<Vec<Filter>, DomainError> {
    let mut filters = Vec::new();
    // What each entry holds.
    let fields: [(&str, Field, Parse); 13] = [
        ("id", Field::Id, entry_id),
        ("audit_log_id", Field::Id, entry_id),
        ("action_type", Field::Action, action_type),
        ("actor_email", Field::ActorEmail, folded_email),
        ("actor_id", Field::ActorId, user_id),
        ("actor_ip_address", Field::ActorIp, ip_address),
        ("actor_token_id", Field::TokenId, token_id),
        ("actor_token_name", Field::TokenName, as_sent),
        ("raw_cf_ray_id", Field::RayId, as_sent),
        ("raw_method", Field::Method, method),
        ("raw_uri", Field::Uri, as_sent),
        ("resource_id", Field::ResourceId, as_sent),
        ("resource_type", Field::ResourceType, as_sent),
    ];
    for (name, field, parse) in fields {
        Forms::read(params, name, |param, value| Ok(vec![parse(param, value)?]))?
            .on(field, &mut filters);
    }
    // Who acted, and with what credential: the kinds of actor each value stands for.
    Forms::read(params, "actor_type", |param, value| {
        one_of(param, value, ACTOR_TYPES)?;
        Ok(actor_kinds(|kind| v2_actor(kind).0 == value))
    })?
    .on(Field::ActorKind, &mut filters);
    Forms::read(params, "actor_context", |param, value| {
        one_of(param, value, ACTOR_CONTEXTS)?;
        Ok(actor_kinds(|kind| v2_actor(kind).1 == Some(value)))
    })?
    .on(Field::ActorKind, &mut filters);
    // What every entry of an account's log holds alike: its account (by the name it has
    // now), a success, the account scope, no zone.
    let alike: [(&str, Option<&str>, &[&str]); 5] = [
        ("account_name", Some(account_name), &[]),
        ("action_result", Some("success"), &["success", "failure"]),
        (
            "resource_scope",
            Some("accounts"),
            &["accounts", "user", "zones", "memberships"],
        ),
        ("zone_id", None, &[]),
        ("zone_name", None, &[]),
    ];
    for (name, held, allowed) in alike {
        let forms = Forms::read(params, name, |param, value| {
            if !allowed.is_empty() {
                one_of(param, value, allowed)?;
            }
            Ok(vec![value.to_string()])
        })?;
        let holds = |values: &[String]| {
            held.is_some_and(|held| {
                values
                    .iter()
                    .any(|v| v.to_lowercase() == held.to_lowercase())
            })
        };
        forms.on_every_entry(holds, &mut filters);
    }
    // The product: those named and those of the categories named, together.
    let mut products = Forms::read(params, "resource_product", |_, value| {
        Ok(vec![value.to_string()])
    })?;
    for category in params.texts("product_category", MAX_VALUE)? {
        let expands = product_category(&category)?.products.iter();
        products
            .any
            .get_or_insert_with(Vec::new)
            .extend(expands.map(|(value, _)| value.to_string()));
    }
    products.on_every_entry(
        |values| {
            values
                .iter()
                .any(|v| v.eq_ignore_ascii_case(audit::PRODUCT))
        },
        &mut filters,
    );
    // Only a committed change is logged, and each made through a request was answered
    // 200; one made outside a request (the CLI, a fixture) has no answer.
    let statuses = Forms::read(params, "raw_status_code", |param, value| {
        let code = value.parse::<u16>().map_err(|_| {
            DomainError::invalid(param, format!("{param} must be an HTTP status code"))
        })?;
        Ok(vec![code.to_string()])
    })?;
    let answered = |values: &[String]| values.iter().any(|code| code == "200");
    if let Some(codes) = statuses.any {
        filters.push(match answered(&codes) {
            true => Filter::Requested(true),
            false => Filter::nothing(),
        });
    }
    if statuses.none.is_some_and(|codes| answered(&codes)) {
        filters.push(Filter::Requested(false));
    }
    Ok(filters)
}

const ACTOR_TYPES: &[&str] = &[
    "account",
    "cloudflare_admin",
    "delegated_service",
    "system",
    "user",
];

const ACTOR_CONTEXTS: &[&str] = &[
    "api",
    "api_key",
    "api_token",
    "dash",
    "oauth",
    "origin_ca_key",
];

/// The category a `product_category` value names (any case); a 400 listing them if none.
fn product_category(value: &str) -> Result<&'static audit::ProductCategory, DomainError> {
    audit::PRODUCT_CATEGORIES
        .iter()
        .find(|c| c.value.eq_ignore_ascii_case(value))
        .ok_or_else(|| {
            let known: Vec<&str> = audit::PRODUCT_CATEGORIES.iter().map(|c| c.value).collect();
            DomainError::invalid(
                "product_category",
                format!(
                    "product_category must be one of: {} (see GET .../logs/audit/product_categories)",
                    known.join(", ")
                ),
            )
        })
}

/// The kinds of actor `matches` picks, by their stored name.
fn actor_kinds(matches: impl Fn(ActorKind) -> bool) -> Vec<String> {
    [
        ActorKind::UserKey,
        ActorKind::UserToken,
        ActorKind::AccountToken,
        ActorKind::System,
    ]
    .into_iter()
    .filter(|kind| matches(*kind))
    .map(|kind| kind.as_str().to_string())
    .collect()
}

/// v2's `actor.type` and `actor.context` of a kind of actor.
fn v2_actor(kind: ActorKind) -> (&'static str, Option<&'static str>) {
    match kind {
        ActorKind::UserKey => ("user", Some("api_key")),
        ActorKind::UserToken => ("user", Some("api_token")),
        ActorKind::AccountToken => ("account", Some("api_token")),
        ActorKind::System => ("system", None),
    }
}

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
    v1_filters(&mut q, params)?;
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

/// A v2 read of `account`: `since` and `before` are required; `limit` entries past
/// `cursor`, with `filters`. Answered with the cursor of the last one when more may follow,
/// and `extra` in `result_info`.
async fn v2(
    app: &AppState,
    account: Id,
    params: &Params,
    filters: Vec<Filter>,
    extra: Value,
) -> Result<Response, ApiError> {
    for required in ["since", "before"] {
        if params.text(required, 64)?.is_none() {
            return Err(DomainError::invalid(
                required,
                format!("{required} is required (a date or an RFC 3339 time)"),
            )
            .into());
        }
    }
    let limit = per_page(params, "limit", V1_PER_PAGE)?;
    let mut q = Query::new(Scope::Account(account), limit);
    window(&mut q, params)?;
    q.filters = filters;
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
    let mut info = json!({ "count": result.len(), "cursor": next, "cursors": { "after": next } });
    if let (Value::Object(info), Value::Object(extra)) = (&mut info, extra) {
        info.extend(extra);
    }
    Ok(views::list_with_info(result, info))
}

async fn account_v2(
    State(app): State<AppState>,
    Auth(caller): Auth,
    ids: Ids,
    params: Params,
) -> Result<Response, ApiError> {
    let id = ids.one();
    let state = app
        .read_account(&id, &Focus::caller(&caller), &caller)
        .await?;
    let filters = v2_filters(&params, &state.account.name)?;
    v2(&app, id, &params, filters, json!({})).await
}

/// The change history of the resource an entry changed: the account's entries about that
/// resource (its type and id, which name it exactly) in the `since`/`before` window, paged
/// as the log is. `action_time`, which Cloudflare uses to find the entry, is required and
/// must be a time; Roster finds the entry by its id alone.
async fn history(
    State(app): State<AppState>,
    Auth(caller): Auth,
    OriginalUri(uri): OriginalUri,
    Path((account, entry)): Path<(String, String)>,
    params: Params,
) -> Result<Response, ApiError> {
    let account = Id::parse(&account).ok_or_else(|| ApiError::NoRoute(uri.path().into()))?;
    app.read_account(&account, &Focus::caller(&caller), &caller)
        .await?;
    if time(&params, "action_time")?.is_none() {
        return Err(DomainError::invalid(
            "action_time",
            "action_time is required (the entry's action.time, an RFC 3339 time)",
        )
        .into());
    }
    let mut source = Query::new(Scope::Account(account.clone()), 1);
    source.filters = vec![Filter::any_of(Field::Id, vec![audit::entry_id(&entry)])];
    let found = app.store.audit_log(&source).await?;
    let entry = found.first().ok_or(DomainError::NotFound("Audit log"))?;
    let filters = vec![
        Filter::any_of(Field::ResourceType, vec![entry.resource_type.clone()]),
        Filter::any_of(Field::ResourceId, vec![entry.resource_id.clone()]),
    ];
    v2(
        &app,
        account,
        &params,
        filters,
        json!({ "history_status": "exact" }),
    )
    .await
}

/// The product categories the v2 `product_category` filter takes, and the products each
/// stands for.
async fn product_categories(
    State(app): State<AppState>,
    Auth(caller): Auth,
    ids: Ids,
) -> Result<Response, ApiError> {
    app.read_account(&ids.one(), &Focus::caller(&caller), &caller)
        .await?;
    let categories: Vec<Value> = audit::PRODUCT_CATEGORIES
        .iter()
        .map(|c| {
            json!({
                "value": c.value,
                "label": c.label,
                "products": c.products.iter()
                    .map(|(value, label)| json!({ "value": value, "label": label }))
                    .collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(views::single(categories))
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
    let (kind, context) = v2_actor(e.actor.kind);
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
            "product": audit::PRODUCT,
            "type": e.resource_type,
            "request": e.old_value,
            "response": e.new_value,
        },
    });
    if let Some(account) = &e.account_id {
        view["account"] = json!({ "id": account });
    }
    if let Some(raw) = &e.raw {
        // Only a committed change is logged: the request that made it was answered 200.
        view["raw"] = json!({
            "cf_ray_id": raw.ray,
            "method": raw.method,
            "status_code": 200,
            "uri": raw.uri,
        });
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
