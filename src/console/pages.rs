//! The console's pages and forms. Each handler says which API calls it makes; what the API
//! refuses is shown with the API's own message and code, and nothing else decides.

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{Value, json};

use super::client::{Api, Refused};
use super::session::{Chrome, Posted, Visitor};
use super::{ConsoleState, html};
use crate::domain::permissions::{KEYS, Permissions};
use crate::domain::rules::Origin;
use crate::domain::types::Access;
use crate::domain::{Focus, Id};

/// A path id as the API takes it; anything else is no page ([`no_page`]).
pub(super) fn id(raw: &str) -> Option<String> {
    Id::parse(raw).map(|id| id.as_str().to_string())
}

pub(super) fn no_page() -> Response {
    (StatusCode::NOT_FOUND, "There is no such page.").into_response()
}

#[derive(Template)]
#[template(path = "console/problem.html")]
struct Problem {
    chrome: Chrome,
    title: String,
    message: String,
}

/// What the API refused, as a page in the console's frame, with the API's status.
pub(super) fn problem(chrome: Chrome, title: &str, refused: &Refused) -> Response {
    let status = refused.status;
    let mut response = html(Problem {
        chrome,
        title: title.to_string(),
        message: refused.text(),
    });
    *response.status_mut() = status;
    response
}

pub(super) fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// A query string's pairs, to read the console's own filters.
fn query_pairs(query: &Option<String>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.as_deref().unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

fn pick<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

fn encode(pairs: &[(&str, &str)]) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        if !value.is_empty() {
            out.append_pair(name, value);
        }
    }
    out.finish()
}

// ---- Accounts ----------------------------------------------------------------------

struct AccountRow {
    id: String,
    name: String,
}

#[derive(Template)]
#[template(path = "console/accounts.html")]
struct AccountsPage {
    chrome: Chrome,
    accounts: Vec<AccountRow>,
    pending: u64,
    previous: Option<String>,
    next: Option<String>,
}

/// `GET /accounts` (a page of 50) and `GET /memberships?status=pending` (its count).
pub async fn accounts(RawQuery(query): RawQuery, visitor: Visitor) -> Response {
    let Visitor { api, chrome } = visitor;
    let page: u64 = pick(&query_pairs(&query), "page")
        .and_then(|p| p.parse().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1);
    let listed = match api.get(&format!("/accounts?per_page=50&page={page}")).await {
        Ok(listed) => listed,
        Err(refused) => return problem(chrome, "Accounts", &refused),
    };
    let accounts = listed
        .result
        .as_array()
        .map(|all| {
            all.iter()
                .map(|a| AccountRow {
                    id: text(&a["id"]),
                    name: text(&a["name"]),
                })
                .collect()
        })
        .unwrap_or_default();
    let total_pages = listed
        .result_info
        .as_ref()
        .and_then(|i| i["total_pages"].as_u64())
        .unwrap_or(1);
    // An account token has no memberships of its own to answer.
    let pending = match api.get("/memberships?status=pending&per_page=5").await {
        Ok(found) => found
            .result_info
            .as_ref()
            .and_then(|i| i["total_count"].as_u64())
            .unwrap_or(0),
        Err(_) => 0,
    };
    html(AccountsPage {
        chrome,
        accounts,
        pending,
        previous: (page > 1).then(|| format!("/console/?page={}", page - 1)),
        next: (page < total_pages).then(|| format!("/console/?page={}", page + 1)),
    })
}

// ---- My invitations ----------------------------------------------------------------

struct MembershipRow {
    id: String,
    account: String,
    status: String,
    roles: String,
}

#[derive(Template)]
#[template(path = "console/invitations.html")]
struct InvitationsPage {
    chrome: Chrome,
    memberships: Vec<MembershipRow>,
}

/// `GET /memberships`: pending ones to accept or reject, accepted ones to leave.
pub async fn invitations(visitor: Visitor) -> Response {
    let Visitor { api, chrome } = visitor;
    let found = match every_page(&api, "/memberships").await {
        Ok(found) => found,
        Err(refused) => return problem(chrome, "My invitations", &refused),
    };
    let memberships = Some(&found)
        .map(|all| {
            all.iter()
                .map(|m| MembershipRow {
                    id: text(&m["id"]),
                    account: text(&m["account"]["name"]),
                    status: text(&m["status"]),
                    roles: m["roles"]
                        .as_array()
                        .map(|r| r.iter().map(text).collect::<Vec<_>>().join(", "))
                        .unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default();
    html(InvitationsPage {
        chrome,
        memberships,
    })
}

/// `PUT /memberships/{id}` (accept, reject) or `DELETE /memberships/{id}` (leave).
pub async fn answer_invitation(Path(raw): Path<String>, posted: Posted) -> Response {
    let Some(membership) = id(&raw) else {
        return no_page();
    };
    let Posted {
        visitor: Visitor { api, chrome },
        fields,
        ..
    } = posted;
    let target = format!("/memberships/{membership}");
    let answered = match fields.one("action") {
        Some("accept") => {
            api.call(Method::PUT, &target, Some(&json!({"status": "accepted"})))
                .await
        }
        Some("reject") => {
            api.call(Method::PUT, &target, Some(&json!({"status": "rejected"})))
                .await
        }
        Some("leave") => api.call(Method::DELETE, &target, None).await,
        _ => return (StatusCode::BAD_REQUEST, "Unknown action").into_response(),
    };
    match answered {
        Ok(_) => Redirect::to("/console/invitations").into_response(),
        Err(refused) => problem(chrome, "My invitations", &refused),
    }
}

// ---- Members -----------------------------------------------------------------------

struct MemberRow {
    id: String,
    email: String,
    name: String,
    status: String,
    roles: String,
    two_factor: bool,
}

fn member_row(m: &Value) -> MemberRow {
    let user = &m["user"];
    let name = [text(&user["first_name"]), text(&user["last_name"])]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let mut roles: Vec<String> = m["roles"]
        .as_array()
        .map(|r| r.iter().map(|r| text(&r["name"])).collect())
        .unwrap_or_default();
    if let Some(policies) = m["policies"].as_array().filter(|p| !p.is_empty()) {
        roles.push(format!(
            "{} polic{}",
            policies.len(),
            if policies.len() == 1 { "y" } else { "ies" }
        ));
    }
    MemberRow {
        id: text(&m["id"]),
        email: text(&m["email"]),
        name,
        status: text(&m["status"]),
        roles: roles.join(", "),
        two_factor: user["two_factor_authentication_enabled"].as_bool() == Some(true),
    }
}

struct RoleChoice {
    id: String,
    name: String,
    description: String,
    checked: bool,
}

/// Every item of a paged list (`target` without paging), 50 at a time: for catalogs,
/// which are short.
pub(super) async fn every_page(api: &Api, target: &str) -> Result<Vec<Value>, Refused> {
    let mut all = Vec::new();
    for page in 1.. {
        let listed = api
            .get(&format!("{target}?per_page=50&page={page}"))
            .await?;
        let items = listed.result.as_array().cloned().unwrap_or_default();
        let total_pages = listed
            .result_info
            .as_ref()
            .and_then(|i| i["total_pages"].as_u64())
            .unwrap_or(1);
        let done = items.is_empty() || page >= total_pages;
        all.extend(items);
        if done {
            break;
        }
    }
    Ok(all)
}

async fn role_choices(
    api: &Api,
    account: &str,
    held: &[String],
) -> Result<Vec<RoleChoice>, Refused> {
    let roles = every_page(api, &format!("/accounts/{account}/roles")).await?;
    Ok(roles
        .iter()
        .map(|r| RoleChoice {
            id: text(&r["id"]),
            name: text(&r["name"]),
            description: text(&r["description"]),
            checked: held.contains(&text(&r["id"])),
        })
        .collect())
}

/// The account's name, as `GET /accounts/{id}` answers it (the caller may read it).
pub(super) async fn account_name(api: &Api, account: &str) -> Result<String, Refused> {
    Ok(text(
        &api.get(&format!("/accounts/{account}")).await?.result["name"],
    ))
}

/// One invited address and what came of it.
struct InviteOutcome {
    email: String,
    sent: bool,
    detail: String,
}

#[derive(Template)]
#[template(path = "console/members.html")]
struct MembersPage {
    chrome: Chrome,
    account_id: String,
    account_name: String,
    members: Vec<MemberRow>,
    status: String,
    order: String,
    direction: String,
    page: u64,
    total_pages: u64,
    total_count: u64,
    previous: Option<String>,
    next: Option<String>,
}

const MEMBER_ORDERS: [&str; 4] = ["user.email", "user.first_name", "user.last_name", "status"];

/// `GET /accounts/{id}` and `GET /accounts/{id}/members` with the page's filters: what the
/// page shows, and no more (the invitation form, with the roles, is a page of its own).
pub async fn members(
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
    visitor: Visitor,
) -> Response {
    let Some(account) = id(&raw) else {
        return no_page();
    };
    let pairs = query_pairs(&query);
    let Visitor { api, chrome } = visitor;
    let status = pick(&pairs, "status")
        .filter(|s| ["pending", "accepted", "rejected"].contains(s))
        .unwrap_or_default()
        .to_string();
    let order = pick(&pairs, "order")
        .filter(|o| MEMBER_ORDERS.contains(o))
        .unwrap_or("user.email")
        .to_string();
    let direction = pick(&pairs, "direction")
        .filter(|d| ["asc", "desc"].contains(d))
        .unwrap_or("asc")
        .to_string();
    let page: u64 = pick(&pairs, "page")
        .and_then(|p| p.parse().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1);
    let page_text = page.to_string();
    let query = encode(&[
        ("status", &status),
        ("order", &order),
        ("direction", &direction),
        ("page", &page_text),
        ("per_page", "25"),
    ]);
    let name = match account_name(&api, &account).await {
        Ok(name) => name,
        Err(refused) => return problem(chrome, "Members", &refused),
    };
    let listed = match api
        .get(&format!("/accounts/{account}/members?{query}"))
        .await
    {
        Ok(listed) => listed,
        Err(refused) => return problem(chrome, "Members", &refused),
    };
    let info = listed.result_info.unwrap_or_default();
    let total_pages = info["total_pages"].as_u64().unwrap_or(1).max(1);
    let total_count = info["total_count"].as_u64().unwrap_or(0);
    let link = |p: u64| {
        let p = p.to_string();
        format!(
            "/console/accounts/{account}/members?{}",
            encode(&[
                ("status", &status),
                ("order", &order),
                ("direction", &direction),
                ("page", &p),
            ])
        )
    };
    html(MembersPage {
        account_name: name,
        members: listed
            .result
            .as_array()
            .map(|all| all.iter().map(member_row).collect())
            .unwrap_or_default(),
        previous: (page > 1).then(|| link(page - 1)),
        next: (page < total_pages).then(|| link(page + 1)),
        account_id: account,
        status,
        order,
        direction,
        page,
        total_pages,
        total_count,
        chrome,
    })
}

/// Finds a member by email (the whole address, any case): to their page, or back to the
/// members page saying there is none.
pub async fn find_member(
    State(state): State<ConsoleState>,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
    visitor: Visitor,
) -> Response {
    let Some(account) = id(&raw) else {
        return no_page();
    };
    let pairs = query_pairs(&query);
    let email = pick(&pairs, "email").unwrap_or_default();
    match super::groups::member_by_email(&state, &visitor.api, &account, email).await {
        Ok(Some(member)) => {
            Redirect::to(&format!("/console/accounts/{account}/members/{member}")).into_response()
        }
        Ok(None) => {
            let missing = Refused {
                status: StatusCode::NOT_FOUND,
                errors: vec![super::client::Message {
                    code: 1003,
                    message: format!("{email} is not a member of this account"),
                }],
            };
            problem(visitor.chrome, "Find a member", &missing)
        }
        Err(e) => problem(visitor.chrome, "Find a member", &Refused::of(e).await),
    }
}

#[derive(Template)]
#[template(path = "console/invite.html")]
struct InvitePage {
    chrome: Chrome,
    account_id: String,
    account_name: String,
    roles: Vec<RoleChoice>,
    outcomes: Vec<InviteOutcome>,
    emails: String,
}

/// The invitation form: `GET /accounts/{id}` and `GET /accounts/{id}/roles`.
pub async fn invite_form(Path(raw): Path<String>, visitor: Visitor) -> Response {
    let Some(account) = id(&raw) else {
        return no_page();
    };
    invite_page(visitor, &account, Vec::new(), String::new(), &[]).await
}

/// The form, with what was sent and what came of it, the roles still checked.
async fn invite_page(
    visitor: Visitor,
    account: &str,
    outcomes: Vec<InviteOutcome>,
    emails: String,
    checked: &[String],
) -> Response {
    let Visitor { api, chrome } = visitor;
    let name = match account_name(&api, account).await {
        Ok(name) => name,
        Err(refused) => return problem(chrome, "Invite members", &refused),
    };
    let roles = match role_choices(&api, account, checked).await {
        Ok(roles) => roles,
        Err(refused) => return problem(chrome, "Invite members", &refused),
    };
    html(InvitePage {
        chrome,
        account_id: account.to_string(),
        account_name: name,
        roles,
        outcomes,
        emails,
    })
}

/// Every page of `GET /accounts/{id}/members`, as CSV.
pub async fn members_csv(Path(raw): Path<String>, visitor: Visitor) -> Response {
    let Some(account) = id(&raw) else {
        return no_page();
    };
    let Visitor { api, chrome } = visitor;
    let mut csv = String::from("id,email,name,status,roles,two_factor\r\n");
    let mut page = 1;
    loop {
        let listed = match api
            .get(&format!(
                "/accounts/{account}/members?per_page=50&order=user.email&page={page}"
            ))
            .await
        {
            Ok(listed) => listed,
            Err(refused) => return problem(chrome, "Members", &refused),
        };
        let rows = listed.result.as_array().cloned().unwrap_or_default();
        for m in rows.iter().map(member_row) {
            let fields = [
                m.id,
                m.email,
                m.name,
                m.status,
                m.roles,
                m.two_factor.to_string(),
            ];
            let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
            csv.push_str(&line.join(","));
            csv.push_str("\r\n");
        }
        let total_pages = listed
            .result_info
            .as_ref()
            .and_then(|i| i["total_pages"].as_u64())
            .unwrap_or(1);
        if rows.is_empty() || page >= total_pages {
            break;
        }
        page += 1;
    }
    let disposition = format!("attachment; filename=\"members-{account}.csv\"");
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&disposition).expect("an id is ASCII"),
            ),
        ],
        csv,
    )
        .into_response()
}

/// A CSV field, quoted as RFC 4180 says, and kept from being read as a formula by a
/// spreadsheet (a leading `=`, `+`, `-`, `@` gets a quote mark, as OWASP advises).
fn csv_field(value: &str) -> String {
    let guarded = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_string()
    };
    if guarded.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

/// `POST /accounts/{id}/members` once per address given (comma- or newline-separated),
/// with the roles checked; then the members page with what was sent and what was refused.
pub async fn invite(Path(raw): Path<String>, posted: Posted) -> Response {
    let Some(account) = id(&raw) else {
        return no_page();
    };
    let Posted {
        visitor, fields, ..
    } = posted;
    let emails: Vec<&str> = fields
        .one("emails")
        .unwrap_or_default()
        .split([',', '\n', '\r', ';'])
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    let roles: Vec<&str> = fields.all("roles");
    let mut outcomes = Vec::new();
    if emails.is_empty() {
        outcomes.push(InviteOutcome {
            email: String::new(),
            sent: false,
            detail: "Give at least one email address.".into(),
        });
    }
    // One request per address, as a client would send them: each is decided (and
    // audited) on its own, and one refusal does not stop the others.
    for email in emails.iter().take(MAX_INVITES) {
        let body = json!({ "email": email, "roles": roles, "status": "pending" });
        let target = format!("/accounts/{account}/members");
        let outcome = match visitor.api.call(Method::POST, &target, Some(&body)).await {
            Ok(_) => InviteOutcome {
                email: email.to_string(),
                sent: true,
                detail: "Invitation sent".into(),
            },
            Err(refused) => InviteOutcome {
                email: email.to_string(),
                sent: false,
                detail: refused.text(),
            },
        };
        outcomes.push(outcome);
    }
    let unsent = emails.get(MAX_INVITES..).unwrap_or_default();
    if !unsent.is_empty() {
        outcomes.push(InviteOutcome {
            email: String::new(),
            sent: false,
            detail: format!(
                "At most {MAX_INVITES} addresses at once: the other {} were not sent and are \
                 left in the field.",
                unsent.len()
            ),
        });
    }
    // What was refused, and what was not sent, stays in the field to correct and send.
    let kept: String = outcomes
        .iter()
        .filter(|o| !o.sent && !o.email.is_empty())
        .map(|o| o.email.as_str())
        .chain(unsent.iter().copied())
        .collect::<Vec<_>>()
        .join("\n");
    let checked: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
    invite_page(visitor, &account, outcomes, kept, &checked).await
}

/// The most addresses one invitation form sends (Cloudflare's dashboard takes a list of
/// about this size).
const MAX_INVITES: usize = 50;

// ---- One member --------------------------------------------------------------------

struct PolicyRow {
    access: String,
    permission_groups: String,
    resource_groups: String,
}

/// One of the twelve permission areas: what the member may do there, and whether a deny
/// took away what an allow gave.
struct AreaRow {
    area: &'static str,
    read: bool,
    write: bool,
    denied: bool,
}

/// A role or policy and what it gives (or, a deny, takes away).
struct SourceRow {
    origin: String,
    access: String,
    permission_groups: String,
    gives: String,
}

#[derive(Template)]
#[template(path = "console/member.html")]
struct MemberPage {
    chrome: Chrome,
    account_id: String,
    account_name: String,
    member: MemberRow,
    roles: Vec<RoleChoice>,
    policies: Vec<PolicyRow>,
    areas: Vec<AreaRow>,
    sources: Vec<SourceRow>,
    notice: Option<String>,
}

/// `GET /accounts/{id}/members/{member_id}` and `GET /accounts/{id}/roles`.
pub async fn member(
    State(state): State<ConsoleState>,
    Path((raw_account, raw_member)): Path<(String, String)>,
    visitor: Visitor,
) -> Response {
    let (Some(account), Some(member)) = (id(&raw_account), id(&raw_member)) else {
        return no_page();
    };
    member_page(&state, visitor, &account, &member, None).await
}

/// "dns: read, write; billing: read": the areas `grants` has any of.
fn areas_text(grants: &Permissions) -> String {
    KEYS.iter()
        .filter_map(
            |(key, name)| match (grants.can_read(*key), grants.can_write(*key)) {
                (_, true) => Some(format!("{name}: read, write")),
                (true, false) => Some(format!("{name}: read")),
                _ => None,
            },
        )
        .collect::<Vec<_>>()
        .join("; ")
}

/// What member `member` may do in `account`, and from where: the account as the API's own
/// reads load it (the caller authorized to read it, as for the member's own page), and the
/// domain's [`AccountCatalog::member_permissions`] and `sources_of` (no rule of the
/// console's own).
async fn effective(
    state: &ConsoleState,
    api: &Api,
    account: &str,
    member: &str,
) -> Result<(Vec<AreaRow>, Vec<SourceRow>), crate::api::ApiError> {
    let (Some(account), Some(member)) = (Id::parse(account), Id::parse(member)) else {
        return Err(crate::domain::DomainError::NotFound("Member").into());
    };
    let caller = api.caller();
    let focus = Focus::caller(caller).member(&member);
    let read = state.app.read_account(&account, &focus, caller).await?;
    let m = read.member(&member)?;
    let held = read.catalog.member_permissions(&read.account, m);
    let sources = read.catalog.sources_of(&read.account, m);
    let allowed = sources
        .iter()
        .filter(|s| s.access == Access::Allow)
        .fold(Permissions::default(), |acc, s| acc.union(&s.grants));
    let areas = KEYS
        .iter()
        .map(|(key, name)| AreaRow {
            area: name,
            read: held.can_read(*key),
            write: held.can_write(*key),
            denied: (allowed.can_write(*key) && !held.can_write(*key))
                || (allowed.can_read(*key) && !held.can_read(*key)),
        })
        .collect();
    let sources = sources
        .iter()
        .map(|s| SourceRow {
            origin: match &s.origin {
                Origin::Role(name) => format!("Role {name}"),
                Origin::OwnPolicy => "Their own policy".into(),
                Origin::Group(name) => format!("User group {name}"),
            },
            access: match s.access {
                Access::Allow => "allows".into(),
                Access::Deny => "denies".into(),
            },
            permission_groups: s.permission_groups.join(", "),
            gives: areas_text(&s.grants),
        })
        .collect();
    Ok((areas, sources))
}

async fn member_page(
    state: &ConsoleState,
    visitor: Visitor,
    account: &str,
    member: &str,
    notice: Option<String>,
) -> Response {
    let Visitor { api, chrome } = visitor;
    let name = match account_name(&api, account).await {
        Ok(name) => name,
        Err(refused) => return problem(chrome, "Member", &refused),
    };
    let found = match api
        .get(&format!("/accounts/{account}/members/{member}"))
        .await
    {
        Ok(found) => found.result,
        Err(refused) => return problem(chrome, "Member", &refused),
    };
    let held: Vec<String> = found["roles"]
        .as_array()
        .map(|r| r.iter().map(|r| text(&r["id"])).collect())
        .unwrap_or_default();
    let roles = role_choices(&api, account, &held).await.unwrap_or_default();
    let names = |list: &Value, key: &str| {
        list[key]
            .as_array()
            .map(|g| {
                g.iter()
                    .map(|g| text(&g["name"]))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    let policies = found["policies"]
        .as_array()
        .map(|all| {
            all.iter()
                .map(|p| PolicyRow {
                    access: text(&p["access"]),
                    permission_groups: names(p, "permission_groups"),
                    resource_groups: names(p, "resource_groups"),
                })
                .collect()
        })
        .unwrap_or_default();
    let (areas, sources) = match effective(state, &api, account, member).await {
        Ok(found) => found,
        Err(e) => return problem(chrome, "Member", &Refused::of(e).await),
    };
    html(MemberPage {
        chrome,
        account_id: account.to_string(),
        account_name: name,
        member: member_row(&found),
        roles,
        policies,
        areas,
        sources,
        notice,
    })
}

/// `PUT /accounts/{id}/members/{member_id}` with the roles checked.
pub async fn change_member(
    State(state): State<ConsoleState>,
    Path((raw_account, raw_member)): Path<(String, String)>,
    posted: Posted,
) -> Response {
    let (Some(account), Some(member)) = (id(&raw_account), id(&raw_member)) else {
        return no_page();
    };
    let Posted {
        visitor, fields, ..
    } = posted;
    let roles: Vec<&str> = fields.all("roles");
    let target = format!("/accounts/{account}/members/{member}");
    let notice = match visitor
        .api
        .call(Method::PUT, &target, Some(&json!({ "roles": roles })))
        .await
    {
        Ok(_) => "Roles saved.".to_string(),
        Err(refused) => format!("Not saved: {}", refused.text()),
    };
    member_page(&state, visitor, &account, &member, Some(notice)).await
}

#[derive(Template)]
#[template(path = "console/remove.html")]
struct RemovePage {
    chrome: Chrome,
    account_id: String,
    member: MemberRow,
}

/// The confirmation before a removal: `GET /accounts/{id}/members/{member_id}`.
pub async fn confirm_remove(
    Path((raw_account, raw_member)): Path<(String, String)>,
    visitor: Visitor,
) -> Response {
    let (Some(account), Some(member)) = (id(&raw_account), id(&raw_member)) else {
        return no_page();
    };
    let Visitor { api, chrome } = visitor;
    match api
        .get(&format!("/accounts/{account}/members/{member}"))
        .await
    {
        Ok(found) => html(RemovePage {
            chrome,
            account_id: account,
            member: member_row(&found.result),
        }),
        Err(refused) => problem(chrome, "Remove member", &refused),
    }
}

/// `DELETE /accounts/{id}/members/{member_id}`: removes a member, or revokes a pending
/// invitation.
pub async fn remove(
    Path((raw_account, raw_member)): Path<(String, String)>,
    posted: Posted,
) -> Response {
    let (Some(account), Some(member)) = (id(&raw_account), id(&raw_member)) else {
        return no_page();
    };
    let Posted { visitor, .. } = posted;
    let target = format!("/accounts/{account}/members/{member}");
    match visitor.api.call(Method::DELETE, &target, None).await {
        Ok(_) => Redirect::to(&format!("/console/accounts/{account}/members")).into_response(),
        Err(refused) => problem(visitor.chrome, "Remove member", &refused),
    }
}

// ---- Roles -------------------------------------------------------------------------

struct RoleRow {
    name: String,
    description: String,
    grants: String,
}

#[derive(Template)]
#[template(path = "console/roles.html")]
struct RolesPage {
    chrome: Chrome,
    account_id: String,
    account_name: String,
    roles: Vec<RoleRow>,
}

/// `GET /accounts/{id}/roles`: each role and the areas it reads or writes.
pub async fn roles(Path(raw): Path<String>, visitor: Visitor) -> Response {
    let Some(account) = id(&raw) else {
        return no_page();
    };
    let Visitor { api, chrome } = visitor;
    let name = match account_name(&api, &account).await {
        Ok(name) => name,
        Err(refused) => return problem(chrome, "Roles", &refused),
    };
    let listed = match every_page(&api, &format!("/accounts/{account}/roles")).await {
        Ok(listed) => listed,
        Err(refused) => return problem(chrome, "Roles", &refused),
    };
    let roles = listed
        .iter()
        .map(|r| RoleRow {
            name: text(&r["name"]),
            description: text(&r["description"]),
            grants: grants_of(&r["permissions"]),
        })
        .collect();
    html(RolesPage {
        chrome,
        account_id: account,
        account_name: name,
        roles,
    })
}

/// A role's permissions as "area: read, write" lines, the areas it has any of.
fn grants_of(permissions: &Value) -> String {
    let Some(areas) = permissions.as_object() else {
        return String::new();
    };
    areas
        .iter()
        .filter_map(|(area, can)| {
            let read = can["read"].as_bool() == Some(true);
            let write = can["write"].as_bool() == Some(true);
            match (read, write) {
                (true, true) => Some(format!("{area}: read, write")),
                (true, false) => Some(format!("{area}: read")),
                (false, true) => Some(format!("{area}: write")),
                (false, false) => None,
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

// ---- Audit log ---------------------------------------------------------------------

struct EntryRow {
    when: String,
    actor: String,
    action: String,
    description: String,
    resource: String,
    resource_type: String,
    resource_id: String,
    old_value: String,
    new_value: String,
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage {
    chrome: Chrome,
    account_id: String,
    account_name: String,
    entries: Vec<EntryRow>,
    actor: String,
    action: String,
    resource_type: String,
    resource_id: String,
    since: String,
    before: String,
    next: Option<String>,
}

/// `GET /accounts/{id}/logs/audit`, newest first, with the page's filters and cursor.
pub async fn audit(
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
    visitor: Visitor,
) -> Response {
    let Some(account) = id(&raw) else {
        return no_page();
    };
    let Visitor { api, chrome } = visitor;
    let pairs = query_pairs(&query);
    let get = |name| pick(&pairs, name).unwrap_or_default().to_string();
    let (actor, action, resource_type, resource_id) = (
        get("actor_email"),
        get("action_type"),
        get("resource_type"),
        get("resource_id"),
    );
    let (since, before, cursor) = (get("since"), get("before"), get("cursor"));
    let filters = [
        ("actor_email", actor.as_str()),
        ("action_type", action.as_str()),
        ("resource_type", resource_type.as_str()),
        ("resource_id", resource_id.as_str()),
    ];
    // The API asks for a window; the page's default is all of it.
    let window = [
        (
            "since",
            if since.is_empty() {
                "2000-01-01"
            } else {
                since.as_str()
            },
        ),
        (
            "before",
            if before.is_empty() {
                "2100-01-01"
            } else {
                before.as_str()
            },
        ),
    ];
    let mut asked: Vec<(&str, &str)> = filters.iter().chain(&window).copied().collect();
    asked.push(("limit", "50"));
    asked.push(("cursor", cursor.as_str()));
    let name = match account_name(&api, &account).await {
        Ok(name) => name,
        Err(refused) => return problem(chrome, "Audit log", &refused),
    };
    let found = match api
        .get(&format!(
            "/accounts/{account}/logs/audit?{}",
            encode(&asked)
        ))
        .await
    {
        Ok(found) => found,
        Err(refused) => return problem(chrome, "Audit log", &refused),
    };
    let next = found
        .result_info
        .as_ref()
        .and_then(|i| i["cursors"]["after"].as_str())
        .map(|after| {
            let mut kept: Vec<(&str, &str)> = filters.to_vec();
            kept.push(("since", &since));
            kept.push(("before", &before));
            kept.push(("cursor", after));
            format!("/console/accounts/{account}/audit?{}", encode(&kept))
        });
    let shown = |v: &Value| match v {
        Value::Null => String::new(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    };
    let entries = found
        .result
        .as_array()
        .map(|all| {
            all.iter()
                .map(|e| EntryRow {
                    when: text(&e["action"]["time"]),
                    actor: match (
                        e["actor"]["email"].as_str(),
                        e["actor"]["token_name"].as_str(),
                    ) {
                        (Some(email), Some(token)) => format!("{email} (token {token})"),
                        (Some(email), None) => email.to_string(),
                        (None, Some(token)) => format!("token {token}"),
                        (None, None) => text(&e["actor"]["type"]),
                    },
                    action: text(&e["action"]["type"]),
                    description: text(&e["action"]["description"]),
                    resource: format!(
                        "{} {}",
                        text(&e["resource"]["type"]),
                        text(&e["resource"]["id"])
                    ),
                    resource_type: text(&e["resource"]["type"]),
                    resource_id: text(&e["resource"]["id"]),
                    old_value: shown(&e["resource"]["request"]),
                    new_value: shown(&e["resource"]["response"]),
                })
                .collect()
        })
        .unwrap_or_default();
    html(AuditPage {
        chrome,
        account_id: account,
        account_name: name,
        entries,
        actor,
        action,
        resource_type,
        resource_id,
        since,
        before,
        next,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_csv_field_is_quoted_and_never_a_formula() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(csv_field("@SUM(A1)"), "'@SUM(A1)");
    }
}
