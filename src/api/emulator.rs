//! The emulator's control plane (`serve --emulator`, which `--demo` implies;
//! `../shared/DESIGN.md`, "Control plane"): what a test suite asks of a Roster it uses as
//! a test double. Reset to the seeded state, named snapshots, the clock the rules read,
//! faults injected into the API's answers (an error, a delay or a stubbed body), the
//! journal of the requests received, and users a test makes for itself.
//! Without `--emulator` none of these routes exist: they answer 404 like any unknown path.
//!
//! Everything here but the data is this process's own: with several processes on one
//! PostgreSQL database, a reset or a restore replaces the shared data in one transaction
//! (the others wait for it, then see the new state), while each process keeps its own
//! snapshots, clock, faults and journal.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{OriginalUri, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::access::Notes;
use super::extract::{Body as JsonBody, Params, not_null};
use super::{ApiError, AppState, views};
use crate::auth::hash_secret;
use crate::domain::DomainError;
use crate::domain::clock::{Clock, REACH};
use crate::domain::types::{parse_timestamp, timestamp};
use crate::store::export::Export;

/// Requests the journal keeps; the oldest go first.
const JOURNAL: usize = 1000;

/// The most of a request body the journal keeps (a longer one is kept as `null`).
const JOURNAL_BODY: usize = 64 * 1024;

/// Faults held at once: each request is matched against every one, and each is kept in
/// memory until removed.
const MAX_FAULTS: usize = 1000;

/// Snapshots held at once: each is a whole copy of the data, in memory.
const MAX_SNAPSHOTS: usize = 100;

/// Headers whose values are secrets: the journal shows that they were sent, not what.
const SECRET_HEADERS: [&str; 5] = [
    "x-auth-key",
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-auth-user-service-key",
];

pub struct Emulator {
    seed: Export,
    clock: Arc<Clock>,
    snapshots: Mutex<BTreeMap<String, Snapshot>>,
    faults: Mutex<Faults>,
    journal: Mutex<VecDeque<Value>>,
}

struct Snapshot {
    taken_on: String,
    data: Arc<Export>,
}

#[derive(Default)]
struct Faults {
    next_id: u64,
    list: Vec<Fault>,
}

/// One injected fault, as the client described it, and what is left of it.
#[derive(Clone, Serialize)]
struct Fault {
    id: String,
    #[serde(flatten)]
    spec: FaultSpec,
    /// `spec.path`, compiled once when the fault is added.
    #[serde(skip)]
    path: Option<glob::Pattern>,
    /// Matching requests answered so far.
    hits: u64,
}

impl Fault {
    fn matches(&self, method: &str, path: &str, caller: &[String]) -> bool {
        let spec = &self.spec;
        spec.method
            .as_ref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self.path.as_ref().is_none_or(|p| path_matches(p, path))
            && spec
                .caller
                .as_ref()
                .is_none_or(|c| caller.iter().any(|k| k.eq_ignore_ascii_case(c)))
    }
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultSpec {
    /// An HTTP method; any when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    method: Option<String>,
    /// A glob over the whole path (`*` within one segment, `**` across), e.g.
    /// `/client/v4/accounts/*/members`; any when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    /// The `X-Auth-Email` a request presents, or the id of the API token it presents; any
    /// caller when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    caller: Option<String>,
    /// The status to answer with instead of the API's answer (200 when only `body` is
    /// given); none: the request goes on (after `delay_ms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    /// A body to answer verbatim, as a stub: any JSON value, `null` included.
    #[serde(
        default,
        deserialize_with = "any_json",
        skip_serializing_if = "Option::is_none"
    )]
    body: Option<Value>,
    /// The error code and message in the answer's body; Cloudflare's for the status when
    /// absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    code: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    /// Seconds, sent as `Retry-After`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retry_after: Option<u32>,
    /// Milliseconds to wait before answering (or before the request goes on).
    #[serde(default)]
    delay_ms: u64,
    /// How many matching requests the fault takes; every one when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    times: Option<u64>,
    /// The chance that a matching request is taken.
    #[serde(default = "always")]
    probability: f64,
}

fn always() -> f64 {
    1.0
}

/// A field present with any JSON value, `null` too (serde reads a `null` as absent).
fn any_json<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// A stubbed answer's body at most, as JSON: the journal keeps bodies up to the same size.
const MAX_STUB_BYTES: usize = 64 * 1024;

impl FaultSpec {
    /// Checks every field but `path`, which [`path_pattern`] checks as it compiles it.
    fn check(&self) -> Result<(), DomainError> {
        if self.status.is_none() && self.body.is_none() && self.delay_ms == 0 {
            return Err(DomainError::invalid(
                "status",
                "give a status or a body to answer with, a delay_ms, or both",
            ));
        }
        if self.body.is_some() {
            if self.code.is_some() || self.message.is_some() {
                let field = if self.code.is_some() {
                    "code"
                } else {
                    "message"
                };
                return Err(DomainError::invalid(
                    field,
                    format!(
                        "{field} shapes the error body, which body replaces: give one or the other"
                    ),
                ));
            }
            if let Some(status) = self.status
                && (!(200..=599).contains(&status) || [204, 205, 304].contains(&status))
            {
                return Err(DomainError::invalid(
                    "status",
                    "status must be 200 to 599 with a body, and not 204, 205 or 304 (which carry none)",
                ));
            }
            // Held in memory with up to MAX_FAULTS others, as the journal holds bodies.
            let size = self.body.as_ref().map_or(0, |b| b.to_string().len());
            if size > MAX_STUB_BYTES {
                return Err(DomainError::invalid(
                    "body",
                    format!("body must be at most {MAX_STUB_BYTES} bytes as JSON"),
                ));
            }
        } else if let Some(status) = self.status
            && !(400..=599).contains(&status)
        {
            return Err(DomainError::invalid(
                "status",
                "status must be an error status, 400 to 599 (or give a body to answer)",
            ));
        }
        if let Some(method) = &self.method
            && axum::http::Method::from_bytes(method.as_bytes()).is_err()
        {
            return Err(DomainError::invalid(
                "method",
                "method is not an HTTP method",
            ));
        }
        if self.delay_ms > 30_000 {
            return Err(DomainError::invalid(
                "delay_ms",
                "delay_ms must be at most 30000",
            ));
        }
        if !(self.probability > 0.0 && self.probability <= 1.0) {
            return Err(DomainError::invalid(
                "probability",
                "probability must be more than 0 and at most 1",
            ));
        }
        if self.times == Some(0) {
            return Err(DomainError::invalid("times", "times must be at least 1"));
        }
        if self.retry_after.is_some_and(|s| s > 86_400) {
            return Err(DomainError::invalid(
                "retry_after",
                "retry_after must be at most 86400 seconds",
            ));
        }
        if let Some(message) = &self.message {
            crate::domain::types::bounded(message, "message", 1, 1000)?;
        }
        Ok(())
    }

    /// The answer the fault gives in place of the API's, if it gives one.
    fn answer(&self) -> Option<Response> {
        if let Some(body) = &self.body {
            let status = StatusCode::from_u16(self.status.unwrap_or(200)).unwrap_or(StatusCode::OK);
            let mut response = (status, axum::Json(body)).into_response();
            self.retry_after(&mut response);
            return Some(response);
        }
        let status = StatusCode::from_u16(self.status?).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        let (code, message) = match status {
            StatusCode::TOO_MANY_REQUESTS => (
                super::error::codes::RATE_LIMITED,
                "Please wait and consider throttling your request speed",
            ),
            s if s.is_server_error() => (super::error::codes::INTERNAL, "Internal Server Error"),
            _ => (
                super::error::codes::INVALID_INPUT,
                status.canonical_reason().unwrap_or("Bad Request"),
            ),
        };
        let code = self.code.unwrap_or(code);
        let body = json!({
            "success": false,
            "errors": [{"code": code, "message": self.message.as_deref().unwrap_or(message)}],
            "messages": [],
            "result": null,
        });
        let mut response = (status, axum::Json(body)).into_response();
        self.retry_after(&mut response);
        response
            .extensions_mut()
            .insert(super::access::ErrorCode(code));
        Some(response)
    }

    fn retry_after(&self, response: &mut Response) {
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from(seconds));
        }
    }
}

/// A path glob, as faults and the journal's filter take it.
fn path_pattern(raw: &str) -> Result<glob::Pattern, DomainError> {
    if !raw.starts_with('/') {
        return Err(DomainError::invalid(
            "path",
            "path must start with / (e.g. /client/v4/accounts/*/members)",
        ));
    }
    glob::Pattern::new(raw)
        .map_err(|e| DomainError::invalid("path", format!("path is not a glob: {e}")))
}

/// `*` stays within a segment; `**` crosses them.
fn path_matches(pattern: &glob::Pattern, path: &str) -> bool {
    let options = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: false,
    };
    pattern.matches_with(path, options)
}

impl Emulator {
    /// An emulator whose reset goes back to `seed` (see `fixture::seeded_state`).
    pub fn new(seed: Export) -> Emulator {
        Emulator {
            seed,
            clock: Arc::default(),
            snapshots: Mutex::default(),
            faults: Mutex::default(),
            journal: Mutex::default(),
        }
    }

    fn faults(&self) -> MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn journal(&self) -> MutexGuard<'_, VecDeque<Value>> {
        self.journal.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn snapshots(&self) -> MutexGuard<'_, BTreeMap<String, Snapshot>> {
        self.snapshots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The fault that takes this request, if any, counted as used.
    fn take_fault(&self, method: &str, path: &str, caller: &[String]) -> Option<FaultSpec> {
        let mut faults = self.faults();
        let index = faults.list.iter().position(|f| {
            f.matches(method, path, caller)
                && (f.spec.probability >= 1.0 || rand::random::<f64>() < f.spec.probability)
        })?;
        let fault = &mut faults.list[index];
        fault.hits += 1;
        let spec = fault.spec.clone();
        if fault.spec.times.is_some_and(|times| fault.hits >= times) {
            faults.list.remove(index);
        }
        Some(spec)
    }
}

fn emulator(app: &AppState) -> &Emulator {
    app.emulator
        .as_deref()
        .expect("the emulator's routes are served only with an emulator")
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/_roster/reset", post(reset))
        .route("/_roster/snapshots", get(snapshots).post(take_snapshot))
        .route("/_roster/snapshots/{name}", delete(drop_snapshot))
        .route("/_roster/snapshots/{name}/restore", post(restore_snapshot))
        .route("/_roster/clock", get(clock).post(move_clock))
        .route(
            "/_roster/faults",
            get(faults).post(add_fault).delete(clear_faults),
        )
        .route("/_roster/faults/{id}", delete(remove_fault))
        .route("/_roster/requests", get(requests).delete(clear_requests))
        .route("/_roster/users", post(create_user))
        .route_layer(axum::middleware::from_fn(json_only))
}

/// Refuses a request that would change something unless it says `Content-Type:
/// application/json`, with a body or without. A web page can make a browser send a POST
/// cross-site without asking the server first (no CORS preflight) only as `text/plain`,
/// a form or multipart, or with no body and no type: any page a tester opens could reset
/// the data or add faults. JSON cannot be sent so.
async fn json_only(req: Request, next: Next) -> Response {
    let json = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"));
    if req.method().is_safe() || json {
        next.run(req).await
    } else {
        ApiError::NotJson.into_response()
    }
}

/// What a state holds, per table.
fn counts(data: &Export) -> Value {
    json!({
        "users": data.users.len(),
        "accounts": data.accounts.len(),
        "memberships": data.memberships.len(),
        "tokens": data.tokens.len(),
    })
}

/// Back to the seeded state: the data (one transaction), every rate-limit allowance full,
/// the clock, no faults, an empty journal. Snapshots are kept.
async fn reset(State(app): State<AppState>) -> Result<Response, ApiError> {
    let emulator = emulator(&app);
    app.store.restore(&emulator.seed).await?;
    if let Some(limiter) = &app.limiter {
        limiter.reset();
    }
    if let Some(failures) = &app.failures {
        failures.reset();
    }
    emulator.clock.reset();
    emulator.faults().list.clear();
    emulator.journal().clear();
    Ok(views::single(counts(&emulator.seed)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SnapshotName {
    name: String,
}

fn snapshot_name(name: &str) -> Result<(), DomainError> {
    let fine = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if fine {
        Ok(())
    } else {
        Err(DomainError::invalid(
            "name",
            "name must be 1 to 64 letters, digits, '.', '_' or '-'",
        ))
    }
}

fn snapshot_view(name: &str, snapshot: &Snapshot) -> Value {
    let mut view = counts(&snapshot.data);
    view["name"] = json!(name);
    view["taken_on"] = json!(snapshot.taken_on);
    view
}

async fn snapshots(State(app): State<AppState>) -> Response {
    let snapshots = emulator(&app).snapshots();
    let list: Vec<Value> = snapshots
        .iter()
        .map(|(name, s)| snapshot_view(name, s))
        .collect();
    views::single(list)
}

/// Saves the data as it is now under `name`, replacing a snapshot of that name.
async fn take_snapshot(
    State(app): State<AppState>,
    JsonBody(SnapshotName { name }): JsonBody<SnapshotName>,
) -> Result<Response, ApiError> {
    snapshot_name(&name)?;
    // Checked before the export, which is the costly part, and again as it is kept.
    room_for_snapshot(&emulator(&app).snapshots(), &name)?;
    let snapshot = Snapshot {
        taken_on: crate::domain::types::now(),
        data: Arc::new(app.store.export().await?),
    };
    let view = snapshot_view(&name, &snapshot);
    let mut snapshots = emulator(&app).snapshots();
    room_for_snapshot(&snapshots, &name)?;
    snapshots.insert(name, snapshot);
    Ok(views::single(view))
}

/// Whether a snapshot called `name` may be kept: one of that name is replaced, a new one
/// needs a place under [`MAX_SNAPSHOTS`].
fn room_for_snapshot(
    snapshots: &BTreeMap<String, Snapshot>,
    name: &str,
) -> Result<(), DomainError> {
    if snapshots.len() >= MAX_SNAPSHOTS && !snapshots.contains_key(name) {
        return Err(DomainError::invalid(
            "name",
            format!(
                "at most {MAX_SNAPSHOTS} snapshots are kept at once: \
                 delete one (DELETE /_roster/snapshots/{{name}}) or reuse a name"
            ),
        ));
    }
    Ok(())
}

fn find_snapshot(app: &AppState, name: &str) -> Result<Arc<Export>, ApiError> {
    emulator(app)
        .snapshots()
        .get(name)
        .map(|s| Arc::clone(&s.data))
        .ok_or(DomainError::NotFound("Snapshot").into())
}

async fn restore_snapshot(
    State(app): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let data = find_snapshot(&app, &name)?;
    app.store.restore(&data).await?;
    let mut view = counts(&data);
    view["name"] = json!(name);
    Ok(views::single(view))
}

async fn drop_snapshot(
    State(app): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    emulator(&app)
        .snapshots()
        .remove(&name)
        .ok_or(DomainError::NotFound("Snapshot"))?;
    Ok(views::single(json!({"name": name})))
}

fn clock_view(clock: &Clock) -> Value {
    json!({
        "now": timestamp(clock.now()),
        "offset_seconds": clock.offset().whole_seconds(),
    })
}

async fn clock(State(app): State<AppState>) -> Response {
    views::single(clock_view(&emulator(&app).clock))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MoveClock {
    advance_seconds: Option<i64>,
    now: Option<String>,
    /// Back to the system's time.
    #[serde(default)]
    reset: bool,
}

async fn move_clock(
    State(app): State<AppState>,
    JsonBody(to): JsonBody<MoveClock>,
) -> Result<Response, ApiError> {
    let clock = &emulator(&app).clock;
    match (to.advance_seconds, to.now, to.reset) {
        (Some(seconds), None, false) => {
            if !(0..=100 * 365 * 86_400).contains(&seconds) {
                return Err(DomainError::invalid(
                    "advance_seconds",
                    "advance_seconds must be 0 to 100 years; set `now` to move the clock back",
                )
                .into());
            }
            clock
                .advance(time::Duration::seconds(seconds))
                .map_err(|e| {
                    DomainError::invalid(
                        "advance_seconds",
                        format!(
                            "advance_seconds would take the clock out of its range ({e}); \
                         set `now` or reset it first"
                        ),
                    )
                })?;
        }
        (None, Some(now), false) => {
            let at = parse_timestamp(&now).ok_or_else(|| {
                DomainError::invalid(
                    "now",
                    "now must be an RFC 3339 time, e.g. 2030-01-01T00:00:00Z",
                )
            })?;
            clock.set(at).map_err(|e| {
                let system = time::OffsetDateTime::now_utc();
                let year = |t: Option<time::OffsetDateTime>| t.map_or(0, |t| t.year());
                DomainError::invalid(
                    "now",
                    format!(
                        "now must be between the years {} and {} ({e})",
                        year(system.checked_sub(REACH)) + 1,
                        year(system.checked_add(REACH)) - 1,
                    ),
                )
            })?;
        }
        (None, None, true) => clock.reset(),
        _ => {
            return Err(DomainError::invalid(
                "advance_seconds",
                "give one of advance_seconds, now, or reset: true",
            )
            .into());
        }
    }
    Ok(views::single(clock_view(clock)))
}

async fn faults(State(app): State<AppState>) -> Response {
    views::single(emulator(&app).faults().list.clone())
}

async fn add_fault(
    State(app): State<AppState>,
    JsonBody(spec): JsonBody<FaultSpec>,
) -> Result<Response, ApiError> {
    spec.check()?;
    let path = spec.path.as_deref().map(path_pattern).transpose()?;
    let mut faults = emulator(&app).faults();
    if faults.list.len() >= MAX_FAULTS {
        return Err(DomainError::invalid(
            "faults",
            format!(
                "at most {MAX_FAULTS} faults are held at once: remove some \
                 (DELETE /_roster/faults/{{id}}, or DELETE /_roster/faults for all) first"
            ),
        )
        .into());
    }
    faults.next_id += 1;
    let fault = Fault {
        id: faults.next_id.to_string(),
        spec,
        path,
        hits: 0,
    };
    faults.list.push(fault.clone());
    Ok(views::single(fault))
}

async fn clear_faults(State(app): State<AppState>) -> Response {
    let mut faults = emulator(&app).faults();
    let removed = faults.list.len();
    faults.list.clear();
    views::single(json!({"removed": removed}))
}

async fn remove_fault(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let mut faults = emulator(&app).faults();
    let index = faults
        .list
        .iter()
        .position(|f| f.id == id)
        .ok_or(DomainError::NotFound("Fault"))?;
    let fault = faults.list.remove(index);
    Ok(views::single(json!({"id": fault.id})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    email: String,
    #[serde(default, deserialize_with = "not_null")]
    first_name: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    last_name: Option<String>,
    /// The key to give them, as a fixture's `api_key`; a new one when absent.
    #[serde(default, deserialize_with = "not_null")]
    api_key: Option<String>,
    /// Whether they have two-factor authentication, which an account that enforces it
    /// (the demo's does) requires of whoever accepts its invitation.
    #[serde(default)]
    two_factor_authentication_enabled: bool,
}

/// Makes a user with a global API key, as `roster user create` does, so that a test makes
/// its own principals without a fixture: through the store, in one transaction with its
/// audit entry. The key is shown here once. The credential cache keeps no refusal, so the
/// user is known at once.
async fn create_user(
    State(app): State<AppState>,
    JsonBody(body): JsonBody<NewUser>,
) -> Result<Response, ApiError> {
    let name = |value: Option<String>, field: &str| {
        value
            .map(|n| crate::domain::types::bounded(&n, field, 0, 60))
            .transpose()
    };
    let key = match body.api_key {
        Some(key) if crate::auth::key_format_ok(&key) => key.to_ascii_lowercase(),
        Some(_) => {
            return Err(
                DomainError::invalid("api_key", "api_key must be 32 or 37 hex characters").into(),
            );
        }
        None => crate::auth::generate_api_key(),
    };
    let at = crate::domain::types::now();
    let user = crate::domain::User {
        id: crate::domain::Id::generate(),
        email: crate::domain::Email::parse(&body.email, "email")?,
        first_name: name(body.first_name, "first_name")?,
        last_name: name(body.last_name, "last_name")?,
        telephone: None,
        country: None,
        zipcode: None,
        two_factor_authentication_enabled: body.two_factor_authentication_enabled,
        created_on: at.clone(),
        modified_on: at,
    };
    app.store.insert_user(&user, &hash_secret(&key)).await?;
    Ok(views::single(json!({
        "id": user.id,
        "email": user.email.as_str(),
        "first_name": user.first_name,
        "last_name": user.last_name,
        "two_factor_authentication_enabled": user.two_factor_authentication_enabled,
        "api_key": key,
    })))
}

/// The journal, oldest first, filtered by `method`, `path` (a glob, as faults take) and
/// `status`, and cut to the newest `limit` of those.
async fn requests(State(app): State<AppState>, params: Params) -> Result<Response, ApiError> {
    let method = params.text("method", 16)?;
    let path = params
        .text("path", 1024)?
        .map(|p| path_pattern(&p))
        .transpose()?;
    let status = params
        .text("status", 3)?
        .map(|s| {
            s.parse::<u16>()
                .map_err(|_| DomainError::invalid("status", "status must be an HTTP status"))
        })
        .transpose()?;
    // The newest `limit` of those that match (all of them when absent).
    let limit = params.number("limit")?.map_or(usize::MAX, |n| n as usize);
    let journal = emulator(&app).journal();
    let mut list: Vec<&Value> = journal
        .iter()
        .rev()
        .filter(|entry| {
            method.as_ref().is_none_or(|m| {
                entry["method"]
                    .as_str()
                    .is_some_and(|e| e.eq_ignore_ascii_case(m))
            }) && path.as_ref().is_none_or(|pattern| {
                path_matches(pattern, entry["path"].as_str().unwrap_or_default())
            }) && status.is_none_or(|s| entry["status"] == s)
        })
        .take(limit)
        .collect();
    list.reverse();
    Ok(views::single(list))
}

async fn clear_requests(State(app): State<AppState>) -> Response {
    let mut journal = emulator(&app).journal();
    let removed = journal.len();
    journal.clear();
    views::single(json!({"removed": removed}))
}

/// Paths the emulator neither journals nor injects faults into: its own and the
/// operator's, so that a test can always reach them.
/// Roster's own paths, which faults never take and the journal does not keep: the control
/// plane, the metrics and the web console (whose pages a test suite did not send; the
/// console's own calls to the API are made in process and pass neither).
fn own_path(path: &str) -> bool {
    path.starts_with("/_roster/")
        || path == "/metrics"
        || path == "/"
        || path.starts_with("/console")
}

/// Who a request says it is, for matching faults: its `X-Auth-Email`, and the id of the
/// API token it presents.
async fn presented_callers(app: &AppState, headers: &HeaderMap) -> Vec<String> {
    let mut callers = Vec::new();
    if let Some(email) = headers.get("x-auth-email").and_then(|v| v.to_str().ok()) {
        callers.push(email.trim().to_string());
    }
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if let Some(secret) = bearer
        && let Ok(Some((token, _))) = app.store.token_by_hash(&hash_secret(secret.trim())).await
    {
        callers.push(token.id.as_str().to_string());
    }
    callers
}

/// Where [`keep_body`] leaves the body it read for the journal entry [`observe`] writes.
#[derive(Clone, Default)]
struct KeptBody(Arc<std::sync::OnceLock<Value>>);

/// Runs each request with the emulator's clock and journals it with its answer's status
/// (a 408 or a 413 from the layers within included), and its body when [`keep_body`] read
/// one.
pub async fn observe(State(app): State<AppState>, mut req: Request, next: Next) -> Response {
    let emulator = Arc::clone(
        app.emulator
            .as_ref()
            .expect("observed only with an emulator"),
    );
    let path = req.uri().path();
    if own_path(path) {
        return emulator.clock.clone().scope(next.run(req)).await;
    }
    let mut entry = json!({
        "at": timestamp(emulator.clock.now()),
        "method": req.method().as_str(),
        "path": super::error::shown(path),
        "query": req.uri().query().map(|q| super::error::shown(q).into_owned()),
        "headers": headers_shown(req.headers()),
    });
    let notes = req.extensions().get::<Notes>().cloned();
    let ray = req
        .extensions()
        .get::<tower_http::request_id::RequestId>()
        .and_then(|id| id.header_value().to_str().ok())
        .map(str::to_string);
    let kept = KeptBody::default();
    req.extensions_mut().insert(kept.clone());
    let response = emulator.clock.clone().scope(next.run(req)).await;
    entry["body"] = kept.0.get().cloned().unwrap_or(Value::Null);
    entry["status"] = json!(response.status().as_u16());
    entry["caller"] = json!(notes.and_then(|notes| notes.0.caller.get().cloned()));
    entry["ray_id"] = json!(ray);
    let mut journal = emulator.journal();
    if journal.len() == JOURNAL {
        journal.pop_front();
    }
    journal.push_back(entry);
    response
}

/// Reads a request's body for the journal, when it is small and its length declared, so
/// that the API's own limits answer the rest as they would without the emulator. Inside
/// the request timeout: a body that trickles in is answered 408, as without the emulator,
/// rather than holding the connection for as long as the client likes.
pub async fn keep_body(req: Request, next: Next) -> Response {
    let Some(kept) = req.extensions().get::<KeptBody>().cloned() else {
        return next.run(req).await;
    };
    let declared = req
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let req = match declared {
        Some(n) if n <= JOURNAL_BODY => {
            let (parts, body) = req.into_parts();
            let body = match axum::body::to_bytes(body, n).await {
                Ok(bytes) => {
                    let shown = serde_json::from_slice::<Value>(&bytes)
                        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
                    let _ = kept.0.set(shown);
                    Body::from(bytes)
                }
                Err(_) => Body::empty(),
            };
            Request::from_parts(parts, body)
        }
        _ => req,
    };
    next.run(req).await
}

/// Answers a request with an injected fault where one matches (or holds it for the fault's
/// delay first). A layer inside the router, so that a faulted answer is counted and logged
/// under the route template the request matched, as the API's own answer would be.
pub async fn inject(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let emulator = emulator(&app);
    // Nesting strips `/client/v4` from the URI; faults match the path as sent.
    let path = req
        .extensions()
        .get::<OriginalUri>()
        .map_or(req.uri(), |original| &original.0)
        .path();
    if own_path(path) || emulator.faults().list.is_empty() {
        return next.run(req).await;
    }
    let callers = presented_callers(&app, req.headers()).await;
    let taken = emulator.take_fault(req.method().as_str(), path, &callers);
    let Some(fault) = taken else {
        return next.run(req).await;
    };
    if fault.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(fault.delay_ms)).await;
    }
    match fault.answer() {
        Some(answer) => {
            Notes::route(req.extensions());
            answer
        }
        None => next.run(req).await,
    }
}

/// The request's headers, each secret one masked.
fn headers_shown(headers: &HeaderMap) -> Value {
    let mut shown = serde_json::Map::new();
    for (name, value) in headers {
        let value = if SECRET_HEADERS.contains(&name.as_str()) {
            "[masked]".to_string()
        } else {
            super::error::shown(&String::from_utf8_lossy(value.as_bytes())).into_owned()
        };
        shown.insert(name.as_str().to_string(), Value::String(value));
    }
    Value::Object(shown)
}
