//! Signing in and out of the console, and the session a page is served in.
//!
//! A session is a random id (256 bits) in a cookie that is `HttpOnly`, `SameSite=Strict`
//! and, behind TLS (`X-Forwarded-Proto: https`), `Secure`; the database keeps only its
//! digest and the credential signed in with, as the API compares it (see migration 0012),
//! so every process serving the console knows it. Each page presents that credential again
//! ([`crate::auth::verify`]): a key changed, or a token deleted, disabled or expired since,
//! ends the session. A session also ends after [`IDLE`] unused and [`LIFETIME`] after it
//! began, by the wall clock (the emulator's clock moves the data's time, not a browser's).
//!
//! Every form carries a CSRF token: the digest of the session id under a label of its own,
//! so it needs no row and changes with the session. The sign-in form, before any session,
//! carries one tied to a cookie of its own (a signed-out browser cannot be signed in as
//! somebody else by another site). A post whose token is missing or wrong is refused (403)
//! before anything is done.

use std::net::SocketAddr;
use std::sync::Arc;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime};
use tower_http::request_id::RequestId;

use super::assets::{self, Links};
use super::client::Api;
use super::{ConsoleState, html};
use crate::auth::{Presented, hash_secret};
use crate::domain::types::{parse_timestamp, timestamp};
use crate::store::ConsoleSession;

/// A session unused this long has ended.
pub const IDLE: Duration = Duration::hours(1);
/// A session this old has ended, used or not.
pub const LIFETIME: Duration = Duration::hours(12);
/// A session's last use is written at most this often (its idle expiry is this coarse).
const TOUCH_EVERY: Duration = Duration::MINUTE;

const SESSION_COOKIE: &str = "roster_session";
const SIGN_IN_COOKIE: &str = "roster_sign_in";

fn random_id() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// The CSRF token of the session (or sign-in form) whose secret is `id`.
fn csrf_of(id: &str) -> String {
    hash_secret(&format!("roster console csrf\0{id}"))
}

fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The cookie `name`, when the request carries exactly one. Two are refused: another
/// service on the same host (cookies ignore ports) or a sibling domain can set a second
/// one, with a longer path that browsers send first, to sign a visitor in as somebody else.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut found = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(n, _)| *n == name)
        .map(|(_, v)| v.to_string());
    match (found.next(), found.next()) {
        (Some(one), None) => Some(one),
        _ => None,
    }
}

/// Whether the browser reached us over TLS (Roster itself serves plain HTTP; a proxy in
/// front that ends TLS says so).
fn over_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

fn set_cookie(headers: &HeaderMap, name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
    let mut text = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if let Some(seconds) = max_age {
        text.push_str(&format!("; Max-Age={seconds}"));
    }
    if over_tls(headers) {
        text.push_str("; Secure");
    }
    HeaderValue::from_str(&text).expect("cookie text is ASCII")
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// Whether a session kept as `kept` is still live `at`.
fn live(kept: &ConsoleSession, at: OffsetDateTime) -> bool {
    let (Some(made), Some(seen)) = (
        parse_timestamp(&kept.created_on),
        parse_timestamp(&kept.seen_on),
    ) else {
        return false;
    };
    at - made < LIFETIME && at - seen < IDLE
}

fn presented(kept: &ConsoleSession) -> Presented {
    match &kept.email_folded {
        Some(email) => Presented::Key {
            email_folded: email.clone(),
            digest: kept.credential_hash.clone(),
        },
        None => Presented::Token {
            digest: kept.credential_hash.clone(),
        },
    }
}

/// A page's signed-in visitor: the API as they call it, and what every page shows.
pub struct Visitor {
    pub api: Api,
    pub chrome: Chrome,
}

/// What every signed-in page shows around its content.
pub struct Chrome {
    pub links: Links,
    pub csrf: String,
    /// Who is signed in: the user's email, or the token's name.
    pub who: String,
    /// Whether the emulator's page is offered.
    pub emulator: bool,
}

/// Not signed in (or no longer): to the sign-in page.
pub struct SignedOut;

impl IntoResponse for SignedOut {
    fn into_response(self) -> Response {
        let mut response = Redirect::to("/console/sign-in").into_response();
        // htmx follows a redirect inside the page; this makes it load the sign-in page.
        response
            .headers_mut()
            .insert("hx-redirect", HeaderValue::from_static("/console/sign-in"));
        response
    }
}

/// The session a request names, live and with a credential that still verifies.
async fn signed_in(parts: &Parts, state: &ConsoleState) -> Result<(Visitor, String), Response> {
    let id = cookie(&parts.headers, SESSION_COOKIE).ok_or(SignedOut.into_response())?;
    let id_hash = hash_secret(&id);
    let store = &state.app.store;
    let kept = match store.session(&id_hash).await {
        Ok(Some(kept)) => kept,
        Ok(None) => return Err(SignedOut.into_response()),
        Err(e) => return Err(crate::api::ApiError::from(e).into_response()),
    };
    let at = now();
    if !live(&kept, at) {
        let _ = store.end_session(&id_hash).await;
        return Err(SignedOut.into_response());
    }
    let client = crate::api::client_address(&parts.extensions);
    let caller = match state.app.verify(&presented(&kept), client).await {
        Ok(caller) => caller,
        Err(crate::api::ApiError::Auth(_)) => {
            let _ = store.end_session(&id_hash).await;
            return Err(SignedOut.into_response());
        }
        Err(e) => return Err(e.into_response()),
    };
    // The journal's own refresh (htmx, every two seconds) is not a person using the page:
    // an open tab left alone still ends idle.
    let polled = parts
        .headers
        .get("hx-trigger")
        .is_some_and(|v| v.as_bytes() == b"journal");
    if !polled && parse_timestamp(&kept.seen_on).is_none_or(|seen| at - seen >= TOUCH_EVERY) {
        // A failure here costs the session a minute of its idle time at most.
        if let Err(e) = store.touch_session(&id_hash, &timestamp(at)).await {
            tracing::warn!(error = %e, "recording a console session's use");
        }
    }
    let who = match (&caller.user, &caller.token) {
        (Some(user), None) => user.email.as_str().to_string(),
        (Some(user), Some(token)) => format!(
            "{} (token \u{201c}{}\u{201d})",
            user.email.as_str(),
            token.name
        ),
        (None, Some(token)) => format!("account token \u{201c}{}\u{201d}", token.name),
        (None, None) => String::new(),
    };
    let ray = parts
        .extensions
        .get::<RequestId>()
        .and_then(|r| r.header_value().to_str().ok())
        .unwrap_or_default()
        .to_string();
    let connect = parts.extensions.get::<ConnectInfo<SocketAddr>>().copied();
    let api = Api::new(state.api.clone(), Arc::new(caller), connect, ray);
    let chrome = Chrome {
        links: assets::links(),
        csrf: csrf_of(&id),
        who,
        emulator: state.emulator,
    };
    Ok((Visitor { api, chrome }, id_hash))
}

impl FromRequestParts<ConsoleState> for Visitor {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &ConsoleState) -> Result<Self, Response> {
        signed_in(parts, state).await.map(|(visitor, _)| visitor)
    }
}

/// A form's fields, in the order sent (a checkbox list repeats its name).
pub struct Fields(Vec<(String, String)>);

impl Fields {
    fn parse(bytes: &[u8]) -> Fields {
        Fields(url::form_urlencoded::parse(bytes).into_owned().collect())
    }

    /// The field's first value, trimmed; empty counts as absent.
    pub fn one(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// Every value of the field (checked boxes).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// A signed-in visitor's form post, its CSRF token checked: the only way a console form
/// reaches a handler.
pub struct Posted {
    pub visitor: Visitor,
    pub fields: Fields,
    pub session_hash: String,
}

/// The answer to a post without its form's token: nothing was done.
fn forged() -> Response {
    (
        StatusCode::FORBIDDEN,
        axum::response::Html(
            "<!doctype html><title>Refused</title><p>This form did not come from this \
             console page (its security token is missing or stale). Nothing was changed. \
             <a href=\"/console/\">Back to the console</a></p>",
        ),
    )
        .into_response()
}

/// A post that says it comes from another site is refused whatever it carries (a browser
/// sends `Origin` on every post; `SameSite=Strict` already keeps the cookie off such
/// posts).
fn cross_site(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let bare = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .unwrap_or(origin);
    // The host the browser asked for: a proxy in front may rewrite `Host` and say so.
    let asked = ["x-forwarded-host", "host"].map(|name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(',').next().unwrap_or_default().trim())
    });
    !asked.iter().flatten().any(|host| *host == bare)
}

/// A request another site's page makes for a resource of ours (an image, a script, a
/// frame) rather than a person's navigation: refused whatever cookie it carries, so no page
/// of another site (another port of the same host is the same site) can spend a user's
/// rate limit or time on the console's pages. Browsers say so in `Sec-Fetch-*`; requests
/// without them (older browsers, scripts) are judged by the cookie and tokens alone.
pub fn embedded_elsewhere(headers: &HeaderMap) -> bool {
    let value = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let foreign = value("sec-fetch-site").is_some_and(|s| s != "same-origin" && s != "none");
    let navigation = value("sec-fetch-dest").is_none_or(|d| d == "document");
    foreign && !navigation
}

impl FromRequest<ConsoleState> for Posted {
    type Rejection = Response;

    async fn from_request(req: Request, state: &ConsoleState) -> Result<Self, Response> {
        let (parts, body) = req.into_parts();
        if cross_site(&parts.headers) {
            return Err(forged());
        }
        let (visitor, session_hash) = signed_in(&parts, state).await?;
        let req = Request::from_parts(parts, body);
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let fields = Fields::parse(&bytes);
        match fields.one("csrf") {
            Some(token) if same(token, &visitor.chrome.csrf) => Ok(Posted {
                visitor,
                fields,
                session_hash,
            }),
            _ => Err(forged()),
        }
    }
}

#[derive(Template)]
#[template(path = "console/sign_in.html")]
struct SignInPage {
    links: Links,
    csrf: String,
    error: Option<String>,
    email: String,
}

/// The sign-in form, with a token tied to a cookie of its own.
pub async fn sign_in_page(headers: HeaderMap) -> Response {
    sign_in_form(&headers, None, String::new(), StatusCode::OK)
}

fn sign_in_form(
    headers: &HeaderMap,
    error: Option<String>,
    email: String,
    status: StatusCode,
) -> Response {
    // A second sign-in tab keeps the first one's form working: one cookie for both.
    let kept = cookie(headers, SIGN_IN_COOKIE).filter(|id| id.len() == 64);
    let id = kept.unwrap_or_else(random_id);
    let page = SignInPage {
        links: assets::links(),
        csrf: csrf_of(&id),
        error,
        email,
    };
    let mut response = html(page);
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(headers, SIGN_IN_COOKIE, &id, Some(3600)),
    );
    response
}

/// Signs in with an email and Global API key, or an API token, as the API authenticates
/// them: a failure counts against the client's failed-authentication allowance.
pub async fn sign_in(State(state): State<ConsoleState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let headers = parts.headers.clone();
    if cross_site(&headers) {
        return forged();
    }
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return forged();
    };
    let fields = Fields::parse(&bytes);
    let tied = cookie(&headers, SIGN_IN_COOKIE).map(|id| csrf_of(&id));
    match (fields.one("csrf"), tied) {
        (Some(token), Some(expected)) if same(token, &expected) => {}
        _ => return forged(),
    }
    let email = fields.one("email").unwrap_or_default().to_string();
    let mut credentials = HeaderMap::new();
    let mut put = |name: &'static str, value: String| match HeaderValue::from_str(&value) {
        Ok(v) => {
            credentials.insert(name, v);
            true
        }
        Err(_) => false,
    };
    let formed = match (fields.one("api_token"), fields.one("api_key")) {
        (Some(token), _) => put("authorization", format!("Bearer {token}")),
        (None, Some(key)) => put("x-auth-email", email.clone()) && put("x-auth-key", key.into()),
        (None, None) => false,
    };
    if !formed {
        return sign_in_form(
            &headers,
            Some("Give your email and Global API key, or an API token.".into()),
            email,
            StatusCode::BAD_REQUEST,
        );
    }
    let client = crate::api::client_address(&parts.extensions);
    let presented = match state.app.authenticate(&credentials, client).await {
        Ok((_, presented)) => presented,
        Err(e) => {
            let response = e.into_response();
            let status = response.status();
            let message = match axum::body::to_bytes(response.into_body(), 64 * 1024).await {
                Ok(body) => serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["errors"][0]["message"].as_str().map(str::to_string)),
                Err(_) => None,
            };
            let message =
                message.unwrap_or_else(|| "Those credentials did not sign you in.".into());
            return sign_in_form(&headers, Some(message), email, status);
        }
    };
    let id = random_id();
    let at = now();
    let (email_folded, credential_hash) = match presented {
        Presented::Key {
            email_folded,
            digest,
        } => (Some(email_folded), digest),
        Presented::Token { digest } => (None, digest),
    };
    let kept = ConsoleSession {
        id_hash: hash_secret(&id),
        email_folded,
        credential_hash,
        created_on: timestamp(at),
        seen_on: timestamp(at),
    };
    if let Err(e) = state
        .app
        .store
        .insert_session(&kept, &timestamp(at - LIFETIME))
        .await
    {
        return crate::api::ApiError::from(e).into_response();
    }
    let mut response = Redirect::to("/console/").into_response();
    let cookies = response.headers_mut();
    cookies.append(
        header::SET_COOKIE,
        set_cookie(&headers, SESSION_COOKIE, &id, None),
    );
    cookies.append(
        header::SET_COOKIE,
        set_cookie(&headers, SIGN_IN_COOKIE, "", Some(0)),
    );
    response
}

/// Ends the session and forgets its cookie.
pub async fn sign_out(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    posted: Posted,
) -> Response {
    if let Err(e) = state.app.store.end_session(&posted.session_hash).await {
        return crate::api::ApiError::from(e).into_response();
    }
    let mut response = Redirect::to("/console/sign-in").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(&headers, SESSION_COOKIE, "", Some(0)),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(made: OffsetDateTime, seen: OffsetDateTime) -> ConsoleSession {
        ConsoleSession {
            id_hash: "h".into(),
            email_folded: None,
            credential_hash: "d".into(),
            created_on: timestamp(made),
            seen_on: timestamp(seen),
        }
    }

    #[test]
    fn a_session_ends_when_idle_or_old() {
        let at = now();
        assert!(live(
            &kept(at - Duration::hours(2), at - Duration::minutes(5)),
            at
        ));
        assert!(!live(&kept(at - Duration::hours(2), at - IDLE), at));
        assert!(!live(&kept(at - LIFETIME, at), at));
    }

    #[test]
    fn the_form_token_is_the_sessions_own() {
        let (a, b) = (random_id(), random_id());
        assert_ne!(csrf_of(&a), csrf_of(&b));
        assert_eq!(csrf_of(&a), csrf_of(&a));
        assert_ne!(
            csrf_of(&a),
            hash_secret(&a),
            "the token must not be the stored digest"
        );
    }

    #[test]
    fn a_post_from_another_origin_is_cross_site() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(!cross_site(&headers));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(!cross_site(&headers));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(cross_site(&headers));
        headers.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(cross_site(&headers));
    }
}
