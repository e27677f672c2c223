//! API tokens: the caller's own (`/user/tokens`) and an account's (`/accounts/{id}/tokens`),
//! served by the same handlers for either owner. A token's secret is shown when it is made
//! and when it is rolled, never again; another owner's token answers like a missing one.
//! With a token, managing a user's tokens needs the "API Tokens Read" or "API Tokens Write"
//! group; an account's tokens need the "Account API Tokens" groups on that account, which a
//! member holds as Super Administrator or through a policy (`AccountState::authorize_account_tokens`).

use crate::domain::clock;
use std::collections::BTreeMap;

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, put};
use serde::Deserialize;
use serde_json::json;

use super::extract::{Auth, Body, Ids, Params, Ref, not_null};
use super::{ApiError, AppState, views};
use crate::auth::{AuthError, BAD_AUTHORIZATION, generate_token, hash_secret};
use crate::domain::tokens::{self, Effect, IpCondition, Owner, Resource, TokenInput, TokenStatus};
use crate::domain::types::now;
use crate::domain::{AccountState, Caller, Direction, DomainError, Focus, Gift, Id, Need, catalog};
use crate::store::TokenQuery;
use crate::store::{TokenCheck, TokenRules};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(v4!("/user/tokens"), get(list).post(create))
        .route(
            v4!("/user/tokens/permission_groups"),
            get(permission_groups),
        )
        .route(v4!("/user/tokens/verify"), get(verify))
        .route(
            v4!("/user/tokens/{token_id}"),
            get(details).put(update).delete(remove),
        )
        .route(v4!("/user/tokens/{token_id}/value"), put(roll))
        .route(v4!("/accounts/{account_id}/tokens"), get(list).post(create))
        .route(
            v4!("/accounts/{account_id}/tokens/permission_groups"),
            get(permission_groups),
        )
        .route(v4!("/accounts/{account_id}/tokens/verify"), get(verify))
        .route(
            v4!("/accounts/{account_id}/tokens/{token_id}"),
            get(details).put(update).delete(remove),
        )
        .route(
            v4!("/accounts/{account_id}/tokens/{token_id}/value"),
            put(roll),
        )
}

/// The permission groups that manage a user's own tokens.
const AREA: &str = "API Tokens";

#[derive(Deserialize)]
struct PolicyBody {
    #[serde(default, deserialize_with = "not_null")]
    id: Option<String>,
    effect: Effect,
    permission_groups: Vec<Ref>,
    resources: BTreeMap<String, Resource>,
}

#[derive(Deserialize)]
struct RequestIpBody {
    #[serde(rename = "in", default)]
    allowed: Vec<String>,
    #[serde(default)]
    not_in: Vec<String>,
}

#[derive(Deserialize)]
struct ConditionBody {
    /// The SDKs send `request_ip`; the 2024 schema says `request.ip`.
    #[serde(default, deserialize_with = "not_null", alias = "request.ip")]
    request_ip: Option<RequestIpBody>,
}

/// A create or update body. Update bodies may echo the read-only fields (`id`,
/// `issued_on`, ...); they are ignored.
#[derive(Deserialize)]
struct TokenBody {
    name: String,
    policies: Vec<PolicyBody>,
    #[serde(default, deserialize_with = "not_null")]
    condition: Option<ConditionBody>,
    #[serde(default, deserialize_with = "not_null")]
    not_before: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    expires_on: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    status: Option<TokenStatus>,
}

fn nets(raw: &[String], field: &str) -> Result<Vec<ipnet::IpNet>, DomainError> {
    raw.iter()
        .map(|n| {
            tokens::parse_net(n).ok_or_else(|| {
                DomainError::invalid(
                    field,
                    format!("{field}: {n:?} is not an IP address or CIDR range"),
                )
            })
        })
        .collect()
}

impl TokenBody {
    fn input(self) -> Result<(TokenInput, Option<TokenStatus>), DomainError> {
        let policies = self
            .policies
            .into_iter()
            .map(|p| {
                Ok(tokens::PolicyInput {
                    id: p
                        .id
                        .map(|id| crate::domain::Id::parse_field(&id, "policies.id"))
                        .transpose()?,
                    effect: p.effect,
                    permission_groups: p
                        .permission_groups
                        .iter()
                        .map(|g| g.parse("policies.permission_groups"))
                        .collect::<Result<_, _>>()?,
                    resources: p.resources,
                })
            })
            .collect::<Result<_, DomainError>>()?;
        let request_ip = self
            .condition
            .and_then(|c| c.request_ip)
            .map(|r| {
                Ok::<_, DomainError>(IpCondition {
                    allowed: nets(&r.allowed, "condition.request_ip.in")?,
                    not_in: nets(&r.not_in, "condition.request_ip.not_in")?,
                })
            })
            .transpose()?;
        let input = TokenInput {
            name: self.name,
            policies,
            not_before: self.not_before,
            expires_on: self.expires_on,
            request_ip,
        };
        Ok((input, self.status))
    }
}

/// [`Target::rules`]'s check, for `caller`; `always`: whether an unchanged token is checked
/// too (a roll hands out a new secret).
fn maker_rules(
    caller: &Caller,
    always: bool,
) -> impl Fn(&AccountState, Option<&tokens::Token>, Option<&tokens::Token>) -> Result<(), DomainError>
+ Send
+ Sync
+ '_ {
    move |state, before, after| {
        state.authorize_account_tokens(caller, Need::Write)?;
        // Deleting a token gives nothing: managing the account's tokens is all it takes.
        let Some(after) = after else {
            return Ok(());
        };
        if always || before.is_none_or(|b| tokens::widens(b, after)) {
            state.check_gives(caller, &Gift::of_token(after))?;
            if let Some(own) = &caller.token
                && !tokens::within_bounds_of(own, after)
            {
                return Err(DomainError::BeyondOwnRights(
                    "a token that works longer, sooner or from other addresses than the one you came with".into(),
                ));
            }
        }
        Ok(())
    }
}

/// What a request is about, once the caller may `need` it.
struct Target {
    /// The account's tokens on `/accounts/{account_id}/tokens`, the caller's own on
    /// `/user/tokens`.
    owner: Owner,
    /// The token the path names, if any.
    token: Option<Id>,
}

impl Target {
    fn token(&self) -> &Id {
        self.token.as_ref().expect("the route names a token")
    }

    /// The rules a write of an account's token passes inside its own transaction (`None`
    /// for a user's token, which its user caps whenever it is used): the caller still
    /// manages the account's tokens (to delete one too), and the token gives at most what
    /// they hold there (as Cloudflare limits an account token to its creator's access)
    /// wherever the write widens it (made, a new secret, which is as good as a new token, or
    /// changed policies, window, condition or status back to active; renaming, disabling or
    /// deleting gives nothing).
    fn rules<'a>(&self, focus: &'a Focus, check: &'a TokenCheck<'a>) -> Option<TokenRules<'a>> {
        matches!(self.owner, Owner::Account(_)).then_some(TokenRules { focus, check })
    }
}

async fn target(
    app: &AppState,
    caller: &Caller,
    ids: &Ids,
    need: Need,
) -> Result<Target, ApiError> {
    let token = ids.named("token_id").cloned();
    match ids.named("account_id") {
        Some(account) => {
            let state = app.load_account(account, &Focus::caller(caller)).await?;
            state.authorize_account_tokens(caller, need)?;
            Ok(Target {
                owner: Owner::Account(account.clone()),
                token,
            })
        }
        None => {
            caller.require_token_group(AREA, need)?;
            Ok(Target {
                owner: Owner::User(caller.user()?.id.clone()),
                token,
            })
        }
    }
}

async fn list(
    State(app): State<AppState>,
    Auth(caller): Auth,
    ids: Ids,
    params: Params,
) -> Result<Response, ApiError> {
    let target = target(&app, &caller, &ids, Need::Read).await?;
    let page = params.page()?;
    let direction = params.choice("direction")?.unwrap_or(Direction::Asc);
    let include_expired = match params.text("include_expired", 5)?.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(DomainError::invalid(
                "include_expired",
                "include_expired must be true or false",
            )
            .into());
        }
    };
    let query = TokenQuery {
        include_expired,
        at: clock::now_utc(),
        direction,
        page,
    };
    let page = app.store.token_page(&target.owner, &query).await?;
    Ok(views::list(&page, |t| views::token(t, None)))
}

async fn create(
    State(app): State<AppState>,
    Auth(caller): Auth,
    ids: Ids,
    Body(body): Body<TokenBody>,
) -> Result<Response, ApiError> {
    let target = target(&app, &caller, &ids, Need::Write).await?;
    let (input, status) = body.input()?;
    let creator = caller.user.as_ref().map(|u| u.email.as_str().to_string());
    let mut token = tokens::new_token(target.owner.clone(), input, creator)?;
    if let Some(status) = status {
        token.status = status;
    }
    let secret = generate_token();
    let (focus, check) = (Focus::caller(&caller), maker_rules(&caller, false));
    app.store
        .insert_token(&token, &hash_secret(&secret), target.rules(&focus, &check))
        .await?;
    Ok(views::single(views::token(&token, Some(&secret))))
}

async fn details(
    State(app): State<AppState>,
    Auth(caller): Auth,
    ids: Ids,
) -> Result<Response, ApiError> {
    let target = target(&app, &caller, &ids, Need::Read).await?;
    let token = app
        .store
        .tokens(&target.owner)
        .await?
        .into_iter()
        .find(|t| &t.id == target.token())
        .ok_or(DomainError::NotFound("Token"))?;
    Ok(views::single(views::token(&token, None)))
}

async fn update(
    State(app): State<AppState>,
    Auth(caller): Auth,
    ids: Ids,
    Body(body): Body<TokenBody>,
) -> Result<Response, ApiError> {
    let target = target(&app, &caller, &ids, Need::Write).await?;
    let (input, status) = body.input()?;
    let (focus, check) = (Focus::caller(&caller), maker_rules(&caller, false));
    let token = app
        .store
        .edit_token(
            &target.owner,
            target.token(),
            &|t| tokens::update_token(t, input.clone(), status),
            None,
            target.rules(&focus, &check),
        )
        .await?;
    Ok(views::single(views::token(&token, None)))
}

async fn remove(
    State(app): State<AppState>,
    Auth(caller): Auth,
    ids: Ids,
) -> Result<Response, ApiError> {
    let target = target(&app, &caller, &ids, Need::Write).await?;
    let (focus, check) = (Focus::caller(&caller), maker_rules(&caller, false));
    app.store
        .delete_token(&target.owner, target.token(), target.rules(&focus, &check))
        .await?;
    Ok(views::single(json!({ "id": target.token() })))
}

/// A new secret for the token; the old one stops working at once. The request has no
/// body (the SDKs send none; `{}` is fine too).
async fn roll(
    State(app): State<AppState>,
    Auth(caller): Auth,
    ids: Ids,
) -> Result<Response, ApiError> {
    let target = target(&app, &caller, &ids, Need::Write).await?;
    let secret = generate_token();
    let (focus, check) = (Focus::caller(&caller), maker_rules(&caller, true));
    app.store
        .edit_token(
            &target.owner,
            target.token(),
            &|t| {
                t.modified_on = now();
                Ok(())
            },
            Some(&hash_secret(&secret)),
            target.rules(&focus, &check),
        )
        .await?;
    Ok(views::single(secret))
}

/// Answers for the token the request came with; only a bearer token can be verified, and
/// only where it belongs: a user's on `/user/tokens/verify`, an account's on that account's
/// `.../tokens/verify` (elsewhere it is an invalid token, as Cloudflare answers).
async fn verify(Auth(caller): Auth, ids: Ids) -> Result<Response, ApiError> {
    let Some(token) = &caller.token else {
        return Err(AuthError::Malformed(vec![BAD_AUTHORIZATION]).into());
    };
    let belongs = match (&token.owner, ids.named("account_id")) {
        (Owner::User(_), None) => true,
        (Owner::Account(own), Some(account)) => own == account,
        _ => false,
    };
    if !belongs {
        return Err(AuthError::BadToken.into());
    }
    let status = token.effective_status(clock::now_utc());
    let mut result = json!({ "id": token.id, "status": status });
    for (field, value) in [
        ("not_before", &token.not_before),
        ("expires_on", &token.expires_on),
    ] {
        if let Some(value) = value {
            result[field] = value.clone().into();
        }
    }
    Ok(views::single_with_message(
        result,
        10000,
        "This API Token is valid and active",
    ))
}

/// The permission groups a token may name, as the token form lists them: `name` and
/// `scope` filter (exact, case-insensitive name). An account's tokens name account and zone
/// groups only: no user's groups.
async fn permission_groups(
    State(app): State<AppState>,
    Auth(caller): Auth,
    ids: Ids,
    params: Params,
) -> Result<Response, ApiError> {
    let owner = target(&app, &caller, &ids, Need::Read).await?.owner;
    let name = params.text("name", 200)?;
    let scope = params.text("scope", 200)?;
    let groups: Vec<_> = catalog::permission_groups()
        .iter()
        .filter(|g| matches!(owner, Owner::User(_)) || g.scopes != tokens::USER_RESOURCE)
        .filter(|g| name.as_ref().is_none_or(|n| g.name.eq_ignore_ascii_case(n)))
        .filter(|g| scope.as_ref().is_none_or(|s| &g.scopes == s))
        .map(|g| json!({ "id": g.id, "name": g.name, "scopes": [g.scopes] }))
        .collect();
    Ok(views::single(groups))
}
