//! The audit log's domain: who is acting (the request's actor, noted once authentication
//! knows it; the operator's CLI otherwise) and the entry each change writes, in the
//! change's own transaction (the store calls [`for_changes`] and the like with what it
//! read and what it writes), with the old and new value and no secret: no key, token
//! secret or digest, and no invitation's activation code.
//!
//! The actor is a task-local, like the clock (`clock.rs`): the API's access-log middleware
//! opens a [`Request`] scope around each request whose method may change something (not
//! around GET, HEAD or OPTIONS, which change nothing: the scope costs a request's future
//! a box) and the authentication extractor notes who called; a change made outside any
//! request (the CLI, fixtures) is the system's.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use serde_json::{Value, json};
use time::OffsetDateTime;

use super::clock;
use super::model::*;
use super::rules::{AccountState, Caller, Change};
use super::tokens::{IpCondition, Owner, Token};
use super::types::Id;

tokio::task_local! {
    static REQUEST: Arc<Request>;
}

/// Who made a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub kind: ActorKind,
    /// The user, when one acted (with their key or one of their tokens).
    pub id: Option<Id>,
    pub email: Option<String>,
    /// Kept as an address: formatting it is left to when an entry is shown.
    pub ip: Option<IpAddr>,
    pub token_id: Option<Id>,
    pub token_name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorKind {
    /// A user, with their global API key.
    UserKey,
    /// A user, with one of their API tokens.
    UserToken,
    /// An account's own token.
    AccountToken,
    /// The operator, through the CLI (or a fixture).
    System,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::UserKey => "user_key",
            ActorKind::UserToken => "user_token",
            ActorKind::AccountToken => "account_token",
            ActorKind::System => "system",
        }
    }

    pub fn parse(raw: &str) -> Option<ActorKind> {
        [
            ActorKind::UserKey,
            ActorKind::UserToken,
            ActorKind::AccountToken,
            ActorKind::System,
        ]
        .into_iter()
        .find(|k| k.as_str() == raw)
    }
}

impl Actor {
    pub fn system() -> Actor {
        Actor {
            kind: ActorKind::System,
            id: None,
            email: None,
            ip: None,
            token_id: None,
            token_name: None,
        }
    }

    /// The caller of a request, from `ip`.
    pub fn of(caller: &Caller, ip: Option<IpAddr>) -> Actor {
        let kind = match (&caller.user, &caller.token) {
            (_, Some(t)) if matches!(t.owner, Owner::Account(_)) => ActorKind::AccountToken,
            (_, Some(_)) => ActorKind::UserToken,
            _ => ActorKind::UserKey,
        };
        Actor {
            kind,
            id: caller.user.as_ref().map(|u| u.id.clone()),
            email: caller.user.as_ref().map(|u| u.email.as_str().to_string()),
            ip: ip.map(|ip| ip.to_canonical()),
            token_id: caller.token.as_ref().map(|t| t.id.clone()),
            token_name: caller.token.as_ref().map(|t| t.name.clone()),
        }
    }
}

/// The request a change is made in: its ray id, method and path (as the access log quotes
/// them) and, once authenticated, its caller, from which an entry's actor is made only when
/// the request changes something (most only read).
#[derive(Debug, Default)]
pub struct Request {
    pub ray: String,
    pub method: Cow<'static, str>,
    pub uri: String,
    caller: OnceLock<(Arc<Caller>, Option<IpAddr>)>,
}

impl Request {
    pub fn new(ray: String, method: Cow<'static, str>, uri: String) -> Arc<Request> {
        Arc::new(Request {
            ray,
            method,
            uri,
            caller: OnceLock::new(),
        })
    }

    /// Runs `work` (the request's handling) as this request.
    pub async fn scope<F: Future>(self: Arc<Self>, work: F) -> F::Output {
        REQUEST.scope(self, work).await
    }
}

/// Notes who the current request's caller is, from `ip` (nothing outside a request).
pub fn note_caller(caller: &Arc<Caller>, ip: Option<IpAddr>) {
    let _ = REQUEST.try_with(|r| r.caller.set((Arc::clone(caller), ip)));
}

/// The request data an entry keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raw {
    pub ray: String,
    pub method: String,
    pub uri: String,
}

fn current() -> (Actor, Option<Raw>) {
    REQUEST
        .try_with(|r| {
            let actor = r
                .caller
                .get()
                .map_or_else(Actor::system, |(caller, ip)| Actor::of(caller, *ip));
            let raw = Raw {
                ray: r.ray.clone(),
                method: r.method.to_string(),
                uri: r.uri.clone(),
            };
            (actor, Some(raw))
        })
        .unwrap_or_else(|_| (Actor::system(), None))
}

/// One change, as the log keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub id: Id,
    /// The account the change is in (none for a user's own profile or tokens).
    pub account_id: Option<Id>,
    pub actor: Actor,
    pub raw: Option<Raw>,
    /// `create`, `update` or `delete`.
    pub action: String,
    pub description: String,
    pub resource_type: String,
    pub resource_id: String,
    pub old_value: Option<Value>,
    pub new_value: Option<Value>,
    /// [`when`]'s fixed-width form.
    pub when: String,
}

/// A time in the log's fixed-width form (microseconds, `Z`), whose text order is its time
/// order, as keyset paging needs.
pub fn when(at: OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    at.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .expect("UTC times format")
}

/// Reads a filter's time: a date (`2026-11-30`, midnight UTC) or an RFC 3339 time, in the
/// log's form.
pub fn parse_when(raw: &str) -> Option<String> {
    if let Some(at) = super::types::parse_timestamp(raw) {
        return Some(when(at));
    }
    // The SDKs send a naive date-time (no offset) for a `datetime` without a zone: UTC.
    let naive = time::format_description::well_known::Iso8601::DEFAULT;
    if let Ok(at) = time::PrimitiveDateTime::parse(raw, &naive) {
        return Some(when(at.assume_utc()));
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(raw, &format)
        .ok()
        .map(|d| when(d.midnight().assume_utc()))
}

fn entry(
    account_id: Option<&Id>,
    action: &'static str,
    resource_type: &'static str,
    resource_id: &Id,
    old_value: Option<Value>,
    new_value: Option<Value>,
) -> Entry {
    let (actor, raw) = current();
    let noun = resource_type.rsplit('.').next().unwrap_or(resource_type);
    let verb = match action {
        "create" => "Created",
        "delete" => "Deleted",
        _ => "Updated",
    };
    Entry {
        id: Id::generate(),
        account_id: account_id.cloned(),
        actor,
        raw,
        action: action.to_string(),
        description: format!("{verb} {}", noun.replace('_', " ")),
        resource_type: resource_type.to_string(),
        resource_id: resource_id.to_string(),
        old_value,
        new_value,
        when: when(clock::now_utc()),
    }
}

fn change_kind(old: &Option<Value>, new: &Option<Value>) -> &'static str {
    match (old, new) {
        (None, _) => "create",
        (_, None) => "delete",
        _ => "update",
    }
}

fn member(m: &Membership) -> Value {
    let grants = match &m.grants {
        Grants::Roles(roles) => json!({ "roles": roles }),
        Grants::Policies(policies) => json!({ "policies": policies }),
    };
    let mut value = json!({
        "id": m.id,
        "email": m.email.as_str(),
        "status": m.status.as_str(),
        "user_groups": m.groups.iter().map(|g| &g.id).collect::<Vec<_>>(),
    });
    value
        .as_object_mut()
        .expect("an object")
        .extend(grants.as_object().expect("an object").clone());
    value
}

fn account(a: &Account) -> Value {
    json!({
        "id": a.id,
        "name": a.name,
        "type": a.account_type.as_str(),
        "settings": {
            "enforce_twofactor": a.settings.enforce_twofactor,
            "abuse_contact_email": a.settings.abuse_contact_email,
        },
    })
}

fn resource_group(g: &ResourceGroup) -> Value {
    json!({ "id": g.id, "name": g.name, "scope": g.scope })
}

fn user_group(g: &UserGroup) -> Value {
    json!({ "id": g.id, "name": g.name, "policies": g.policies })
}

fn role(r: &Role) -> Value {
    json!({ "id": r.id, "name": r.name, "description": r.description })
}

fn user(u: &User) -> Value {
    json!({
        "id": u.id,
        "email": u.email.as_str(),
        "first_name": u.first_name,
        "last_name": u.last_name,
        "telephone": u.telephone,
        "country": u.country,
        "zipcode": u.zipcode,
    })
}

/// A token without its secret (which the store never holds in the clear anyway).
fn token(t: &Token) -> Value {
    json!({
        "id": t.id,
        "name": t.name,
        "status": t.status.as_str(),
        "policies": t.policies,
        "not_before": t.not_before,
        "expires_on": t.expires_on,
        "condition": t.request_ip.as_ref().map(|c: &IpCondition| json!({ "request_ip": c })),
    })
}

/// The entries of `changes`, decided on `state` (what the transaction read).
pub fn for_changes(state: &AccountState, changes: &[Change]) -> Vec<Entry> {
    let account_id = &state.account.id;
    let at = Some(account_id);
    let before = |id: &Id| state.members.iter().find(|m| &m.id == id).map(member);
    changes
        .iter()
        .map(|change| match change {
            Change::PutMembership(m) => {
                let (old, new) = (before(&m.id), Some(member(m)));
                entry(
                    at,
                    change_kind(&old, &new),
                    "account.member",
                    &m.id,
                    old,
                    new,
                )
            }
            Change::DeleteMembership(id) => {
                entry(at, "delete", "account.member", id, before(id), None)
            }
            Change::PutResourceGroup(g) => {
                let old = state.catalog.resource_group(&g.id).map(resource_group);
                let new = Some(resource_group(g));
                let kind = change_kind(&old, &new);
                entry(at, kind, "account.resource_group", &g.id, old, new)
            }
            Change::DeleteResourceGroup(id) => {
                let old = state.catalog.resource_group(id).map(resource_group);
                entry(at, "delete", "account.resource_group", id, old, None)
            }
            Change::PutAccount(a) => entry(
                at,
                "update",
                "account",
                account_id,
                Some(account(&state.account)),
                Some(account(a)),
            ),
            Change::PutCustomRole(r) => {
                let old = state.catalog.custom_roles.iter().find(|o| o.id == r.id);
                let (old, new) = (old.map(role), Some(role(r)));
                entry(at, change_kind(&old, &new), "account.role", &r.id, old, new)
            }
            Change::DeleteAccount => entry(
                at,
                "delete",
                "account",
                account_id,
                Some(account(&state.account)),
                None,
            ),
            Change::PutUserGroup(g) => {
                let old = state.catalog.user_group(&g.id).map(user_group);
                let new = Some(user_group(g));
                let kind = change_kind(&old, &new);
                entry(at, kind, "account.user_group", &g.id, old, new)
            }
            Change::DeleteUserGroup(id) => {
                let old = state.catalog.user_group(id).map(user_group);
                entry(at, "delete", "account.user_group", id, old, None)
            }
        })
        .collect()
}

/// A new account, and its founding member if it has one.
pub fn for_new_account(a: &Account, owner: Option<&Membership>) -> Vec<Entry> {
    let at = Some(&a.id);
    let mut entries = vec![entry(
        at,
        "create",
        "account",
        &a.id,
        None,
        Some(account(a)),
    )];
    if let Some(m) = owner {
        entries.push(entry(
            at,
            "create",
            "account.member",
            &m.id,
            None,
            Some(member(m)),
        ));
    }
    entries
}

/// A user made or changed (their profile).
pub fn for_user(old: Option<&User>, new: &User) -> Entry {
    let (old, new_value) = (old.map(user), Some(user(new)));
    entry(
        None,
        change_kind(&old, &new_value),
        "user",
        &new.id,
        old,
        new_value,
    )
}

/// A token made, changed (`old` and `new`) or deleted (`new` none); the secret is never in
/// the entry.
pub fn for_token(old: Option<&Token>, new: Option<&Token>) -> Entry {
    let t = new.or(old).expect("a token made, changed or deleted");
    let (account, kind) = match &t.owner {
        Owner::Account(a) => (Some(a), "account.token"),
        Owner::User(_) => (None, "user.token"),
    };
    let (old, new) = (old.map(token), new.map(token));
    entry(account, change_kind(&old, &new), kind, &t.id, old, new)
}

/// Whose log a read is of.
#[derive(Debug, Clone)]
pub enum Scope {
    /// Changes in the account.
    Account(Id),
    /// Changes the user made, anywhere.
    Actor(Id),
}

/// What of an entry a filter reads, as the log keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Id,
    Action,
    /// Folded, as the filter's values must be.
    ActorEmail,
    /// In its canonical text form.
    ActorIp,
    ActorId,
    /// [`ActorKind::as_str`].
    ActorKind,
    TokenId,
    TokenName,
    ResourceType,
    ResourceId,
    RayId,
    Method,
    Uri,
}

/// One condition of a read of the log; a read's conditions all hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// The entry's `field` is one of `values`, or (`exclude`) none of them: an entry
    /// without the field is in no set, so excluded by no exclusion. Included among no
    /// values, no entry is; excluded from none, every one.
    In {
        field: Field,
        values: Vec<String>,
        exclude: bool,
    },
    /// Entries made through a request (answered 200: only a committed change is logged),
    /// or, when `false`, those made outside one (the CLI, a fixture).
    Requested(bool),
}

impl Filter {
    pub fn any_of(field: Field, values: Vec<String>) -> Filter {
        Filter::In {
            field,
            values,
            exclude: false,
        }
    }

    pub fn none_of(field: Field, values: Vec<String>) -> Filter {
        Filter::In {
            field,
            values,
            exclude: true,
        }
    }

    /// No entry: for a filter on what Roster's entries never hold (a zone, a failure).
    pub fn nothing() -> Filter {
        Filter::any_of(Field::Id, Vec::new())
    }
}

/// An audit entry id as a client sends it: Cloudflare's are UUIDs, which Roster keeps in
/// their hex form, so a UUID written with hyphens or in capitals names the same entry.
/// Anything else is kept as sent, and names no entry.
pub fn entry_id(raw: &str) -> String {
    uuid::Uuid::try_parse(raw).map_or_else(|_| raw.to_string(), |u| u.simple().to_string())
}

/// A read of the log: newest first unless `oldest_first`, past `after` (a keyset cursor:
/// the `when` and id of the last entry already seen), skipping `offset`, at most `limit`.
#[derive(Debug, Clone)]
pub struct Query {
    pub scope: Scope,
    pub filters: Vec<Filter>,
    /// In the log's form ([`when`]): `since` included, `before` not.
    pub since: Option<String>,
    pub before: Option<String>,
    pub oldest_first: bool,
    pub after: Option<(String, Id)>,
    pub offset: u64,
    pub limit: u32,
}

impl Query {
    pub fn new(scope: Scope, limit: u32) -> Query {
        Query {
            scope,
            filters: Vec::new(),
            since: None,
            before: None,
            oldest_first: false,
            after: None,
            offset: 0,
            limit,
        }
    }
}

/// The product every entry is of: Roster keeps Cloudflare's IAM and nothing else.
pub const PRODUCT: &str = "iam";

/// A set of products the v2 log's `product_category` filter stands for.
#[derive(Debug)]
pub struct ProductCategory {
    pub value: &'static str,
    pub label: &'static str,
    /// Each product's `resource.product` value and label.
    pub products: &'static [(&'static str, &'static str)],
}

/// Roster's categories: Cloudflare publishes its list only through its endpoint, and
/// Roster's log holds one product.
pub const PRODUCT_CATEGORIES: &[ProductCategory] = &[ProductCategory {
    value: "iam",
    label: "Identity and Access Management",
    products: &[(PRODUCT, "Identity and Access Management")],
}];

/// A cursor past `entry`, opaque to clients (hex, so it needs no escaping in a URL).
pub fn cursor_after(entry: &Entry) -> String {
    hex::encode(format!("{}|{}", entry.when, entry.id))
}

/// The position a cursor names, if it is one this log made.
pub fn parse_cursor(raw: &str) -> Option<(String, Id)> {
    let text = String::from_utf8(hex::decode(raw).ok()?).ok()?;
    let (at, id) = text.split_once('|')?;
    let id = Id::parse(id)?;
    (parse_when(at).as_deref() == Some(at)).then(|| (at.to_string(), id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_sort_as_text_in_time_order() {
        let a = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let b = a + time::Duration::microseconds(500_000);
        let c = a + time::Duration::seconds(1);
        let (a, b, c) = (when(a), when(b), when(c));
        assert!(a < b && b < c, "{a} {b} {c}");
        assert_eq!(a.len(), b.len());
        assert_eq!(
            parse_when("2023-11-14").unwrap(),
            "2023-11-14T00:00:00.000000Z"
        );
        assert_eq!(
            parse_when("2023-11-14T22:13:20+01:00").unwrap(),
            "2023-11-14T21:13:20.000000Z"
        );
        assert_eq!(
            parse_when("2023-11-14T21:13:20").unwrap(),
            "2023-11-14T21:13:20.000000Z"
        );
        assert!(parse_when("yesterday").is_none());
    }

    #[test]
    fn an_entry_id_is_its_uuid_however_written() {
        let id = Id::generate();
        let uuid = uuid::Uuid::try_parse(id.as_str()).unwrap();
        assert_eq!(entry_id(&uuid.hyphenated().to_string()), id.as_str());
        assert_eq!(
            entry_id(&uuid.hyphenated().to_string().to_uppercase()),
            id.as_str()
        );
        assert_eq!(entry_id(id.as_str()), id.as_str());
        assert_eq!(entry_id("xyz"), "xyz");
    }

    #[test]
    fn a_cursor_names_an_entry_and_nothing_else_passes_for_one() {
        let e = entry(None, "create", "user", &Id::generate(), None, None);
        let parsed = parse_cursor(&cursor_after(&e)).unwrap();
        assert_eq!(parsed, (e.when.clone(), e.id.clone()));
        assert!(parse_cursor("zz").is_none());
        assert!(parse_cursor(&hex::encode("2026-01-01|nothex")).is_none());
        assert!(parse_cursor(&hex::encode(format!("soon|{}", e.id))).is_none());
    }

    #[tokio::test]
    async fn the_actor_is_the_requests_once_noted_and_the_systems_elsewhere() {
        let outside = entry(None, "create", "user", &Id::generate(), None, None);
        assert_eq!(outside.actor, Actor::system());
        assert_eq!(outside.raw, None);
        let request = Request::new("ray".into(), "POST".into(), "/x".into());
        let caller = Arc::new(Caller {
            user: Some(crate::domain::testing::user("a@example.com", false)),
            token: None,
        });
        let inside = request
            .scope(async {
                let before = entry(None, "create", "user", &Id::generate(), None, None);
                note_caller(&caller, Some("192.0.2.1".parse().unwrap()));
                (
                    before,
                    entry(None, "create", "user", &Id::generate(), None, None),
                )
            })
            .await;
        assert_eq!(
            inside.0.actor.kind,
            ActorKind::System,
            "not authenticated yet"
        );
        assert_eq!(inside.1.actor.email.as_deref(), Some("a@example.com"));
        assert_eq!(inside.1.raw.unwrap().ray, "ray");
        assert_eq!(inside.1.description, "Created user");
    }
}
