//! Extractors that turn a request into parsed domain values or a Cloudflare error: the
//! caller, path identifiers, query parameters and JSON bodies.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::{ApiError, AppState};
use crate::auth::{AuthError, Presented};
use crate::domain::list::{PageRequest, PerPage, SCHEMA_PER_PAGE};
use crate::domain::{Caller, DomainError, Id};

/// The authenticated caller.
pub struct Auth(pub Arc<Caller>);

/// A caller the console already authenticated from its session, on the request it makes
/// to the API on their behalf: the API takes it in place of the headers (and still
/// notes, audits and rate-limits it). Only the server puts extensions on a request.
#[derive(Clone)]
pub(crate) struct SignedIn(pub Arc<Caller>);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        super::access::Notes::route(&parts.extensions);
        // The peer address, for tokens limited to some; behind a proxy that is the proxy.
        let client = client_address(&parts.extensions);
        let caller = match parts.extensions.get::<SignedIn>() {
            Some(signed_in) => Arc::clone(&signed_in.0),
            None => Arc::new(state.authenticate(&parts.headers, client).await?.0),
        };
        crate::domain::audit::note_caller(&caller, client);
        if let Some(notes) = parts.extensions.get::<super::access::Notes>() {
            let (kind, id) = caller.principal();
            let mut noted = String::with_capacity(kind.len() + 1 + id.as_str().len());
            noted.extend([kind, " ", id.as_str()]);
            let _ = notes.0.caller.set(noted);
        }
        if let Some(limiter) = &state.limiter {
            // A user's allowance, whatever credential they came with; an account token's own.
            let key = caller.user.as_ref().map_or(caller.principal().1, |u| &u.id);
            limiter.check(key.as_str()).map_err(ApiError::Busy)?;
        }
        Ok(Auth(caller))
    }
}

/// The address a request came from, when the server knows it.
pub(crate) fn client_address(extensions: &axum::http::Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_canonical())
}

impl AppState {
    /// The caller a credential presented earlier is now (a console session's).
    pub(crate) async fn verify(
        &self,
        presented: &Presented,
        client: Option<IpAddr>,
    ) -> Result<Caller, ApiError> {
        Ok(crate::auth::verify(&self.store, &self.uses, presented, client).await?)
    }

    /// The caller whose credentials `headers` carry, from `client`, and the credential as
    /// presented. Failed guesses count against the client's address (and the email
    /// guessed for); a client past its allowance is refused before anything is checked.
    pub(crate) async fn authenticate(
        &self,
        headers: &HeaderMap,
        client: Option<IpAddr>,
    ) -> Result<(Caller, Presented), ApiError> {
        // A request with a token guesses at no email, whatever else it carries (the SDKs
        // send every credential they were given): its `X-Auth-Email` is neither refused
        // nor counted.
        let email = headers
            .get(&crate::auth::X_AUTH_EMAIL)
            .filter(|_| !headers.contains_key(axum::http::header::AUTHORIZATION))
            .and_then(|v| v.to_str().ok())
            .map(str::trim);
        let failures = self.failures.as_deref().zip(client);
        if let Some((failures, address)) = failures {
            failures
                .check(address, email)
                .map_err(ApiError::GuessedTooOften)?;
        }
        let verified = match Presented::from_headers(headers) {
            Ok(presented) => crate::auth::verify(&self.store, &self.uses, &presented, client)
                .await
                .map(|caller| (caller, presented)),
            Err(e) => Err(e),
        };
        verified.map_err(|e| {
            // Only guesses count. An email is counted with the key guessed for it; a
            // token's request guesses at no email, whatever headers it carries.
            if let Some((failures, address)) = failures {
                match &e {
                    AuthError::UnknownKey => failures.failed(address, email),
                    AuthError::BadToken => failures.failed(address, None),
                    _ => {}
                }
            }
            e.into()
        })
    }
}

/// The request path as the client sent it (no router is nested: the one it has).
pub fn original_path(parts: &Parts) -> String {
    parts.uri.path().to_string()
}

/// The path's identifiers, in order, with their names in the route. One that is not 32
/// hex characters makes the whole path unroutable, as Cloudflare answers it.
pub struct Ids(Vec<(String, Id)>);

impl FromRequestParts<AppState> for Ids {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        super::access::Notes::route(&parts.extensions);
        let ids = match Path::<Vec<(String, String)>>::from_request_parts(parts, state).await {
            Ok(Path(raw)) => raw
                .into_iter()
                .map(|(name, v)| Id::parse(&v).map(|id| (name, id)))
                .collect(),
            Err(_) => None,
        };
        ids.map(Ids)
            .ok_or_else(|| ApiError::NoRoute(original_path(parts)))
    }
}

impl Ids {
    pub fn one(self) -> Id {
        self.0.into_iter().next().expect("route has one id").1
    }

    pub fn three(self) -> (Id, Id, Id) {
        let mut it = self.0.into_iter();
        let mut next = || it.next().expect("route has three ids").1;
        (next(), next(), next())
    }

    pub fn two(self) -> (Id, Id) {
        let mut it = self.0.into_iter();
        let mut next = || it.next().expect("route has two ids").1;
        (next(), next())
    }

    /// The id the route names `name`, for handlers that serve routes of different shapes.
    pub fn named(&self, name: &str) -> Option<&Id> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, id)| id)
    }
}

/// Query parameters, read strictly: a known parameter with a bad value is a 400 naming it;
/// unknown parameters are ignored, as Cloudflare does. A parameter sent more than once is
/// its last value, except where a list reads every value ([`Params::texts`]).
pub struct Params(HashMap<String, Vec<String>>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        let mut params: HashMap<String, Vec<String>> = HashMap::new();
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()).into_owned() {
            params.entry(name).or_default().push(value);
        }
        Ok(Params(params))
    }
}

impl Params {
    fn get(&self, name: &str) -> Option<&String> {
        self.0.get(name).and_then(|values| values.last())
    }

    pub fn text(&self, name: &str, max: usize) -> Result<Option<String>, DomainError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => bounded_text(name, v, max).map(Some),
        }
    }

    /// Every value of a parameter a list takes by repeating it (`a=1&a=2`), in order.
    pub fn texts(&self, name: &str, max: usize) -> Result<Vec<String>, DomainError> {
        self.0
            .get(name)
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .map(|v| bounded_text(name, v, max))
            .collect()
    }

    /// An enum parameter; the enum's `FromStr` error names the parameter and the allowed
    /// values (each enum is named after the parameter that carries it).
    pub fn choice<T: FromStr<Err = DomainError>>(
        &self,
        name: &str,
    ) -> Result<Option<T>, DomainError> {
        self.get(name).map(|v| v.parse()).transpose()
    }

    pub fn number(&self, name: &str) -> Result<Option<u32>, DomainError> {
        self.get(name)
            .map(|v| {
                // SDKs type these as floats and may send "2.0".
                let parsed = v.parse::<u32>().ok().or_else(|| {
                    v.parse::<f64>()
                        .ok()
                        .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= u32::MAX as f64)
                        .map(|f| f as u32)
                });
                parsed.ok_or_else(|| {
                    DomainError::invalid(name, format!("{name} must be a positive whole number"))
                })
            })
            .transpose()
    }

    /// `page` and `per_page` within the schema's bounds (5 to 50, 20 by default).
    pub fn page(&self) -> Result<PageRequest, DomainError> {
        self.page_within(SCHEMA_PER_PAGE)
    }

    /// `page` and `per_page` within a list's own documented bounds.
    pub fn page_within(&self, bounds: PerPage) -> Result<PageRequest, DomainError> {
        PageRequest::within(self.number("page")?, self.number("per_page")?, bounds)
    }

    /// The page asked for, or none when neither `page` nor `per_page` was sent: a list the
    /// SDKs read as one page is answered whole then.
    pub fn page_if_asked(&self) -> Result<Option<PageRequest>, DomainError> {
        let asked = self.0.contains_key("page") || self.0.contains_key("per_page");
        asked.then(|| self.page()).transpose()
    }
}

fn bounded_text(name: &str, value: &str, max: usize) -> Result<String, DomainError> {
    if value.chars().count() > max {
        return Err(DomainError::invalid(
            name,
            format!("{name} must be at most {max} characters"),
        ));
    }
    Ok(value.to_string())
}

/// A JSON body. Text that is not a JSON object is a malformed body (1001); an object with a
/// bad field (wrong type, unknown enum value, missing field) is an invalid field (1002),
/// named by its path.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        // serde would read a struct from a JSON array too; every body of this API is an
        // object (but for `ListBody`'s).
        read_json(req, state, false).await.map(Body)
    }
}

/// A JSON body that may be an array: the official SDKs send a user group's members as a
/// bare array, where Cloudflare's documentation shows an object holding `members`.
pub struct ListBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ListBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        read_json(req, state, true).await.map(ListBody)
    }
}

async fn read_json<T: DeserializeOwned>(
    req: Request,
    state: &AppState,
    arrays: bool,
) -> Result<T, ApiError> {
    let bytes = Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(state.max_body_bytes)
        } else {
            ApiError::BadBody(e.body_text())
        }
    })?;
    let json: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| ApiError::BadBody(e.to_string()))?;
    if !(json.is_object() || (arrays && json.is_array())) {
        return Err(ApiError::BadBody(
            if arrays {
                "the body must be a JSON object or array"
            } else {
                "the body must be a JSON object"
            }
            .into(),
        ));
    }
    let value = serde_path_to_error::deserialize(json).map_err(|e| {
        let path = e.path().to_string();
        let message = match path.as_str() {
            "." | "" => e.into_inner().to_string(),
            _ => format!("{path}: {}", e.into_inner()),
        };
        DomainError::invalid(&path, message)
    })?;
    Ok(value)
}

/// A role or group reference: Cloudflare accepts a bare id or an object with an `id`.
#[derive(Deserialize)]
#[serde(untagged)]
pub enum Ref {
    Id(String),
    Object { id: String },
}

impl Ref {
    pub fn parse(&self, field: &str) -> Result<Id, DomainError> {
        match self {
            Ref::Id(id) | Ref::Object { id } => Id::parse_field(id, field),
        }
    }
}

/// For optional body fields the schema does not make nullable: absent is fine, an explicit
/// `null` is a wrong type, as for any other field.
pub fn not_null<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}
