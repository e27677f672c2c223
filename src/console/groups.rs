//! User groups and resource groups in the console: an account's user groups listed and
//! made; one group renamed, its policies added or removed, its members added (by email)
//! or removed, the group deleted; the account's resource groups listed. Each change is
//! the API's own endpoint for it.

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::Method;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{Value, json};

use super::client::Api;
use super::pages::{account_name, every_page, id, no_page, problem, text};
use super::session::{Chrome, Posted, Visitor};
use super::{ConsoleState, html};
use crate::domain::{Email, Focus, Id};

struct GroupRow {
    id: String,
    name: String,
    policies: usize,
}

struct Named {
    id: String,
    name: String,
}

struct ResourceGroupRow {
    name: String,
    scope: String,
}

#[derive(Template)]
#[template(path = "console/groups.html")]
struct GroupsPage {
    chrome: Chrome,
    account_id: String,
    account_name: String,
    groups: Vec<GroupRow>,
    resource_groups: Vec<ResourceGroupRow>,
    notice: Option<String>,
}

/// `GET .../iam/user_groups` and `GET .../iam/resource_groups`.
pub async fn groups(Path(raw): Path<String>, visitor: Visitor) -> Response {
    let Some(account) = id(&raw) else {
        return no_page();
    };
    groups_page(visitor, &account, None).await
}

async fn groups_page(visitor: Visitor, account: &str, notice: Option<String>) -> Response {
    let Visitor { api, chrome } = visitor;
    let name = match account_name(&api, account).await {
        Ok(name) => name,
        Err(refused) => return problem(chrome, "User groups", &refused),
    };
    let groups = match every_page(&api, &format!("/accounts/{account}/iam/user_groups")).await {
        Ok(groups) => groups,
        Err(refused) => return problem(chrome, "User groups", &refused),
    };
    let resource_groups = every_page(&api, &format!("/accounts/{account}/iam/resource_groups"))
        .await
        .unwrap_or_default();
    html(GroupsPage {
        chrome,
        account_id: account.to_string(),
        account_name: name,
        groups: groups
            .iter()
            .map(|g| GroupRow {
                id: text(&g["id"]),
                name: text(&g["name"]),
                policies: g["policies"].as_array().map_or(0, Vec::len),
            })
            .collect(),
        resource_groups: resource_groups
            .iter()
            .map(|g| ResourceGroupRow {
                name: text(&g["name"]),
                scope: text(&g["scope"]["key"]),
            })
            .collect(),
        notice,
    })
}

/// `POST .../iam/user_groups`: a new group with no policies.
pub async fn create_group(Path(raw): Path<String>, posted: Posted) -> Response {
    let Some(account) = id(&raw) else {
        return no_page();
    };
    let Posted {
        visitor, fields, ..
    } = posted;
    let body = json!({ "name": fields.one("name").unwrap_or_default(), "policies": [] });
    let target = format!("/accounts/{account}/iam/user_groups");
    match visitor.api.call(Method::POST, &target, Some(&body)).await {
        Ok(made) => Redirect::to(&format!(
            "/console/accounts/{account}/groups/{}",
            text(&made.result["id"])
        ))
        .into_response(),
        Err(refused) => {
            let notice = format!("Not made: {}", refused.text());
            groups_page(visitor, &account, Some(notice)).await
        }
    }
}

struct PolicyRow {
    id: String,
    access: String,
    permission_groups: String,
    resource_groups: String,
}

struct GroupMemberRow {
    id: String,
    email: String,
}

#[derive(Template)]
#[template(path = "console/group.html")]
struct GroupPage {
    chrome: Chrome,
    account_id: String,
    account_name: String,
    group_id: String,
    group_name: String,
    policies: Vec<PolicyRow>,
    members: Vec<GroupMemberRow>,
    page: u64,
    total_pages: u64,
    permission_groups: Vec<Named>,
    resource_groups: Vec<Named>,
    notice: Option<String>,
}

fn names(list: &Value) -> String {
    list.as_array()
        .map(|g| {
            g.iter()
                .map(|g| text(&g["name"]))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// `GET .../iam/user_groups/{id}`, a page of its members, and the account's permission
/// and resource groups (for the policy form).
pub async fn group(
    Path((raw_account, raw_group)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    visitor: Visitor,
) -> Response {
    let (Some(account), Some(group)) = (id(&raw_account), id(&raw_group)) else {
        return no_page();
    };
    let page = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(n, _)| n == "page")
        .and_then(|(_, v)| v.parse().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1);
    group_page(visitor, &account, &group, page, None).await
}

async fn group_page(
    visitor: Visitor,
    account: &str,
    group: &str,
    page: u64,
    notice: Option<String>,
) -> Response {
    let Visitor { api, chrome } = visitor;
    let base = format!("/accounts/{account}/iam/user_groups/{group}");
    let name = match account_name(&api, account).await {
        Ok(name) => name,
        Err(refused) => return problem(chrome, "User group", &refused),
    };
    let found = match api.get(&base).await {
        Ok(found) => found.result,
        Err(refused) => return problem(chrome, "User group", &refused),
    };
    let members = match api
        .get(&format!("{base}/members?per_page=50&page={page}"))
        .await
    {
        Ok(members) => members,
        Err(refused) => return problem(chrome, "User group", &refused),
    };
    let catalog = |path: String| {
        let api = api.clone();
        async move {
            every_page(&api, &path)
                .await
                .unwrap_or_default()
                .iter()
                .map(|g| Named {
                    id: text(&g["id"]),
                    name: text(&g["name"]),
                })
                .collect::<Vec<_>>()
        }
    };
    let permission_groups = catalog(format!("/accounts/{account}/iam/permission_groups")).await;
    let resource_groups = catalog(format!("/accounts/{account}/iam/resource_groups")).await;
    html(GroupPage {
        chrome,
        account_id: account.to_string(),
        account_name: name,
        group_id: group.to_string(),
        group_name: text(&found["name"]),
        policies: found["policies"]
            .as_array()
            .map(|all| {
                all.iter()
                    .map(|p| PolicyRow {
                        id: text(&p["id"]),
                        access: text(&p["access"]),
                        permission_groups: names(&p["permission_groups"]),
                        resource_groups: names(&p["resource_groups"]),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        members: members
            .result
            .as_array()
            .map(|all| {
                all.iter()
                    .map(|m| GroupMemberRow {
                        id: text(&m["id"]),
                        email: text(&m["email"]),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        page,
        total_pages: members
            .result_info
            .as_ref()
            .and_then(|i| i["total_pages"].as_u64())
            .unwrap_or(1)
            .max(1),
        permission_groups,
        resource_groups,
        notice,
    })
}

/// The policies as the API took them, to send back changed (each a reference by id).
fn policies_as_sent(group: &Value) -> Vec<Value> {
    let refs = |list: &Value| -> Vec<Value> {
        list.as_array()
            .into_iter()
            .flatten()
            .map(|g| json!({ "id": g["id"] }))
            .collect()
    };
    group["policies"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            json!({
                "id": p["id"],
                "access": p["access"],
                "permission_groups": refs(&p["permission_groups"]),
                "resource_groups": refs(&p["resource_groups"]),
            })
        })
        .collect()
}

/// One of a group's forms, by `action`: `rename` and `add_policy`, `remove_policy`
/// (`PUT` the group as read, changed), `add_member` (the email's membership found as the
/// API's own reads find it, then `POST .../members`), `remove_member` (`DELETE`), and
/// `delete` (`DELETE` the group).
pub async fn change_group(
    State(state): State<ConsoleState>,
    Path((raw_account, raw_group)): Path<(String, String)>,
    posted: Posted,
) -> Response {
    let (Some(account), Some(group)) = (id(&raw_account), id(&raw_group)) else {
        return no_page();
    };
    let Posted {
        visitor, fields, ..
    } = posted;
    let api = &visitor.api;
    let base = format!("/accounts/{account}/iam/user_groups/{group}");
    let outcome = match fields.one("action") {
        Some(action @ ("rename" | "add_policy" | "remove_policy")) => match api.get(&base).await {
            Ok(read) => {
                let mut name = text(&read.result["name"]);
                let mut policies = policies_as_sent(&read.result);
                match action {
                        "rename" => name = fields.one("name").unwrap_or_default().to_string(),
                        "add_policy" => policies.push(json!({
                            "access": fields.one("access").unwrap_or("allow"),
                            "permission_groups": fields.all("permission_groups").iter().map(|id| json!({"id": id})).collect::<Vec<_>>(),
                            "resource_groups": fields.all("resource_groups").iter().map(|id| json!({"id": id})).collect::<Vec<_>>(),
                        })),
                        _ => {
                            // By id, not by place: the list may have changed since the
                            // page was shown, and the wrong one gone could be a deny.
                            let gone = fields.one("policy").unwrap_or_default();
                            let before = policies.len();
                            policies.retain(|p| p["id"].as_str() != Some(gone));
                            if policies.len() == before {
                                return no_page();
                            }
                        }
                    }
                let body = json!({ "name": name, "policies": policies });
                api.call(Method::PUT, &base, Some(&body))
                    .await
                    .map(|_| "Saved.".to_string())
            }
            Err(refused) => Err(refused),
        },
        Some("add_member") => {
            let email = fields.one("email").unwrap_or_default();
            match member_by_email(&state, api, &account, email).await {
                Ok(Some(member)) => api
                    .call(
                        Method::POST,
                        &format!("{base}/members"),
                        Some(&json!([{ "id": member }])),
                    )
                    .await
                    .map(|_| format!("Added {email}.")),
                Ok(None) => Ok(format!("{email} is not a member of this account.")),
                Err(e) => Err(super::client::Refused::of(e).await),
            }
        }
        Some("remove_member") => match fields.one("member").and_then(id) {
            Some(member) => api
                .call(Method::DELETE, &format!("{base}/members/{member}"), None)
                .await
                .map(|_| "Removed from the group.".to_string()),
            None => return no_page(),
        },
        Some("delete") => match api.call(Method::DELETE, &base, None).await {
            Ok(_) => {
                return Redirect::to(&format!("/console/accounts/{account}/groups"))
                    .into_response();
            }
            Err(refused) => Err(refused),
        },
        _ => return no_page(),
    };
    let notice = match outcome {
        Ok(done) => done,
        Err(refused) => format!("Not changed: {}", refused.text()),
    };
    group_page(visitor, &account, &group, 1, Some(notice)).await
}

/// The id of the account's membership for `email`, as the API's reads find one: the
/// account loaded with that email's membership, the caller authorized to read it.
pub(super) async fn member_by_email(
    state: &ConsoleState,
    api: &Api,
    account: &str,
    email: &str,
) -> Result<Option<String>, crate::api::ApiError> {
    let (Some(account), Ok(email)) = (Id::parse(account), Email::parse(email, "email")) else {
        return Ok(None);
    };
    let caller = api.caller();
    let focus = Focus::caller(caller).email(email.folded());
    let read = state.app.read_account(&account, &focus, caller).await?;
    Ok(read
        .members
        .iter()
        .find(|m| m.email.folded() == email.folded())
        .map(|m| m.id.as_str().to_string()))
}
