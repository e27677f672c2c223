//! API tokens in the console: the signed-in user's (`/user/tokens`) and an account's
//! (`/accounts/{id}/tokens`), listed, made (the secret shown once), rolled, disabled or
//! enabled, and deleted, each through the API's own endpoint for it.

use askama::Template;
use axum::extract::Path;
use axum::http::Method;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{Map, Value, json};

use super::client::Api;
use super::html;
use super::pages::{account_name, every_page, id, no_page, problem, text};
use super::session::{Chrome, Posted, Visitor};

/// Whose tokens a page shows: the user's, or an account's.
#[derive(Clone)]
enum Owner {
    User,
    Account { id: String, name: String },
}

impl Owner {
    fn api_path(&self) -> String {
        match self {
            Owner::User => "/user/tokens".into(),
            Owner::Account { id, .. } => format!("/accounts/{id}/tokens"),
        }
    }

    fn page_path(&self) -> String {
        match self {
            Owner::User => "/console/tokens".into(),
            Owner::Account { id, .. } => format!("/console/accounts/{id}/tokens"),
        }
    }
}

struct TokenRow {
    id: String,
    name: String,
    status: String,
    groups: String,
    expires_on: String,
    last_used_on: String,
}

struct GroupChoice {
    id: String,
    name: String,
    /// `account` or `user`: which resource a policy of it names.
    scope: &'static str,
}

struct AccountChoice {
    id: String,
    name: String,
}

#[derive(Template)]
#[template(path = "console/tokens.html")]
struct TokensPage {
    chrome: Chrome,
    /// The account's, for an account's tokens; empty for the user's.
    account_id: String,
    account_name: String,
    page_path: String,
    tokens: Vec<TokenRow>,
    groups: Vec<GroupChoice>,
    accounts: Vec<AccountChoice>,
    /// A secret just made or rolled, shown this once.
    secret: Option<(String, String)>,
    notice: Option<String>,
}

fn token_row(t: &Value) -> TokenRow {
    let groups: Vec<String> = t["policies"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| {
            let effect = text(&p["effect"]);
            p["permission_groups"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |g| match effect.as_str() {
                    "deny" => format!("not {}", text(&g["name"])),
                    _ => text(&g["name"]),
                })
        })
        .collect();
    TokenRow {
        id: text(&t["id"]),
        name: text(&t["name"]),
        status: text(&t["status"]),
        groups: groups.join(", "),
        expires_on: text(&t["expires_on"]),
        last_used_on: text(&t["last_used_on"]),
    }
}

async fn owner_of(api: &Api, account: Option<String>) -> Result<Owner, super::client::Refused> {
    match account {
        None => Ok(Owner::User),
        Some(id) => {
            let name = account_name(api, &id).await?;
            Ok(Owner::Account { id, name })
        }
    }
}

/// `GET /user/tokens` (or an account's), the permission groups a token may hold, and
/// the user's accounts (for where a user token's account groups apply).
async fn tokens_page(
    visitor: Visitor,
    owner: Owner,
    secret: Option<(String, String)>,
    notice: Option<String>,
) -> Response {
    let Visitor { api, chrome } = visitor;
    let tokens = match every_page(&api, &owner.api_path()).await {
        Ok(tokens) => tokens,
        Err(refused) => return problem(chrome, "API tokens", &refused),
    };
    let groups_path = format!("{}/permission_groups", owner.api_path());
    let groups = every_page(&api, &groups_path).await.unwrap_or_default();
    let groups = groups
        .iter()
        .filter_map(|g| {
            let scopes = g["scopes"].as_array()?;
            let scope = if scopes.iter().any(|s| s == "com.cloudflare.api.account") {
                "account"
            } else if matches!(owner, Owner::User)
                && scopes.iter().any(|s| s == "com.cloudflare.api.user")
            {
                "user"
            } else {
                // Zone groups need zones picked, which this form does not offer.
                return None;
            };
            Some(GroupChoice {
                id: text(&g["id"]),
                name: text(&g["name"]),
                scope,
            })
        })
        .collect();
    let accounts = match &owner {
        Owner::User => every_page(&api, "/accounts")
            .await
            .unwrap_or_default()
            .iter()
            .map(|a| AccountChoice {
                id: text(&a["id"]),
                name: text(&a["name"]),
            })
            .collect(),
        Owner::Account { .. } => Vec::new(),
    };
    let (account_id, account_name) = match &owner {
        Owner::User => (String::new(), String::new()),
        Owner::Account { id, name } => (id.clone(), name.clone()),
    };
    html(TokensPage {
        chrome,
        account_id,
        account_name,
        page_path: owner.page_path(),
        tokens: tokens.iter().map(token_row).collect(),
        groups,
        accounts,
        secret,
        notice,
    })
}

pub async fn user_tokens(visitor: Visitor) -> Response {
    tokens_page(visitor, Owner::User, None, None).await
}

pub async fn account_tokens(Path(raw): Path<String>, visitor: Visitor) -> Response {
    let Some(account) = id(&raw) else {
        return no_page();
    };
    match owner_of(&visitor.api, Some(account)).await {
        Ok(owner) => tokens_page(visitor, owner, None, None).await,
        Err(refused) => problem(visitor.chrome, "API tokens", &refused),
    }
}

pub async fn create_user_token(posted: Posted) -> Response {
    create(posted, None).await
}

pub async fn create_account_token(Path(raw): Path<String>, posted: Posted) -> Response {
    let Some(account) = id(&raw) else {
        return no_page();
    };
    create(posted, Some(account)).await
}

/// `POST /user/tokens` (or an account's): one policy for the account groups checked, on
/// the account chosen (an account token's own), and one for the user groups, on the user.
async fn create(posted: Posted, account: Option<String>) -> Response {
    let Posted {
        visitor, fields, ..
    } = posted;
    let owner = match owner_of(&visitor.api, account).await {
        Ok(owner) => owner,
        Err(refused) => return problem(visitor.chrome, "API tokens", &refused),
    };
    let name = fields.one("name").unwrap_or_default().to_string();
    let refs = |name: &str| -> Vec<Value> {
        fields
            .all(name)
            .into_iter()
            .map(|id| json!({ "id": id }))
            .collect()
    };
    let (account_groups, user_groups) = (refs("account_groups"), refs("user_groups"));
    let mut policies = Vec::new();
    if !account_groups.is_empty() {
        let on = match &owner {
            Owner::Account { id, .. } => Some(id.as_str()),
            Owner::User => fields.one("account"),
        };
        let mut resources = Map::new();
        match on {
            Some(account) => {
                resources.insert(format!("com.cloudflare.api.account.{account}"), json!("*"));
            }
            None => {
                let notice = "Choose the account the account permissions apply to.".to_string();
                return tokens_page(visitor, owner, None, Some(notice)).await;
            }
        }
        policies.push(json!({
            "effect": "allow",
            "permission_groups": account_groups,
            "resources": resources,
        }));
    }
    if !user_groups.is_empty() {
        let user = visitor
            .api
            .caller()
            .user
            .as_ref()
            .map(|u| u.id.as_str().to_string())
            .unwrap_or_default();
        policies.push(json!({
            "effect": "allow",
            "permission_groups": user_groups,
            "resources": { format!("com.cloudflare.api.user.{user}"): "*" },
        }));
    }
    let mut body = json!({ "name": name, "policies": policies });
    if let Some(expires) = fields.one("expires_on") {
        body["expires_on"] = json!(format!("{expires}T00:00:00Z"));
    }
    match visitor
        .api
        .call(Method::POST, &owner.api_path(), Some(&body))
        .await
    {
        Ok(made) => {
            let secret = (text(&made.result["name"]), text(&made.result["value"]));
            tokens_page(visitor, owner, Some(secret), None).await
        }
        Err(refused) => {
            let notice = format!("Not made: {}", refused.text());
            tokens_page(visitor, owner, None, Some(notice)).await
        }
    }
}

pub async fn change_user_token(Path(raw): Path<String>, posted: Posted) -> Response {
    let Some(token) = id(&raw) else {
        return no_page();
    };
    change(posted, None, token).await
}

pub async fn change_account_token(
    Path((raw_account, raw_token)): Path<(String, String)>,
    posted: Posted,
) -> Response {
    let (Some(account), Some(token)) = (id(&raw_account), id(&raw_token)) else {
        return no_page();
    };
    change(posted, Some(account), token).await
}

/// One of a token's actions: `roll` (`PUT .../value`), `disable` or `enable` (`PUT` the
/// token as read, with its status changed) or `delete` (`DELETE`).
async fn change(posted: Posted, account: Option<String>, token: String) -> Response {
    let Posted {
        visitor, fields, ..
    } = posted;
    let owner = match owner_of(&visitor.api, account).await {
        Ok(owner) => owner,
        Err(refused) => return problem(visitor.chrome, "API tokens", &refused),
    };
    let target = format!("{}/{token}", owner.api_path());
    let api = &visitor.api;
    let (secret, notice) = match fields.one("action") {
        Some("roll") => match api
            .call(Method::PUT, &format!("{target}/value"), None)
            .await
        {
            Ok(rolled) => {
                let name = fields.one("name").unwrap_or("The token").to_string();
                (Some((name, text(&rolled.result))), None)
            }
            Err(refused) => (None, Some(format!("Not rolled: {}", refused.text()))),
        },
        Some(action @ ("disable" | "enable")) => {
            let status = if action == "disable" {
                "disabled"
            } else {
                "active"
            };
            let changed = match api.get(&target).await {
                Ok(read) => {
                    let mut body = Map::new();
                    for field in ["name", "policies", "condition", "expires_on", "not_before"] {
                        if let Some(v) = read.result.get(field).filter(|v| !v.is_null()) {
                            body.insert(field.into(), v.clone());
                        }
                    }
                    body.insert("status".into(), json!(status));
                    api.call(Method::PUT, &target, Some(&Value::Object(body)))
                        .await
                }
                Err(refused) => Err(refused),
            };
            match changed {
                Ok(_) => (None, Some(format!("Token {status}."))),
                Err(refused) => (None, Some(format!("Not changed: {}", refused.text()))),
            }
        }
        Some("delete") => match api.call(Method::DELETE, &target, None).await {
            Ok(_) => return Redirect::to(&owner.page_path()).into_response(),
            Err(refused) => (None, Some(format!("Not deleted: {}", refused.text()))),
        },
        _ => return no_page(),
    };
    tokens_page(visitor, owner, secret, notice).await
}
