//! The one error type every handler returns. It always renders Cloudflare's v4 failure
//! envelope; internal errors are logged and never shown to the client.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::auth::AuthError;
use crate::domain::DomainError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error(transparent)]
    Auth(AuthError),
    #[error("Malformed request body: {0}")]
    BadBody(String),
    #[error("no route for {0}")]
    NoRoute(String),
    #[error("method {method} not allowed for {path}")]
    MethodNotAllowed { method: String, path: String },
    #[error("internal error: {0}")]
    Internal(String),
    /// The database cannot serve now (see [`StoreError::unavailable`]): the server's state,
    /// not the request's fault nor a bug. 503 with `Retry-After`, which clients retry.
    /// The cause is shown; the error itself only in the log, once a state change.
    #[error("Service unavailable: {0}; try again shortly")]
    Unavailable(&'static str, String),
    /// Cloudflare's answer when a client should slow down: over the rate limit, or
    /// concurrent writes to one account kept colliding. Carries `Retry-After` in seconds.
    #[error("Please wait and consider throttling your request speed")]
    Busy(u64),
    /// The same answer to a client whose address has failed to authenticate too often.
    /// Retrying cannot help a wrong credential, so the SDKs are told not to.
    #[error("Please wait and consider throttling your request speed")]
    GuessedTooOften(u64),
    #[error("Request body too large: the limit is {0} bytes")]
    TooLarge(usize),
    #[error("Request timed out: the request took longer than {0} seconds")]
    Timeout(u64),
    #[error("Request URI too long: the limit is {0} bytes")]
    UriTooLong(usize),
    #[error("Request header fields too large: the limit is {0} bytes in all")]
    HeadersTooLarge(usize),
    #[error(
        "Unsupported media type: a request that changes something here must say \
         Content-Type: application/json, with a body or without"
    )]
    NotJson,
}

/// Seconds a client is asked to wait after a 503 for an unavailable database: about what a
/// failover or a freed connection takes.
pub const UNAVAILABLE_RETRY: u64 = 5;

/// At most this much of a client's path goes into an answer or a log line: a path is the
/// client's to make as long as the request limit allows, and echoing it whole let one
/// request without credentials write tens of kilobytes twice.
pub const SHOWN: usize = 256;

/// `text` cut to [`SHOWN`] bytes (at a character boundary), marked when cut.
pub fn shown(text: &str) -> std::borrow::Cow<'_, str> {
    if text.len() <= SHOWN {
        return text.into();
    }
    let end = (0..=SHOWN)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    format!("{}…", &text[..end]).into()
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Domain(d) => ApiError::Domain(d),
            StoreError::Contention => ApiError::Busy(1),
            other => match other.unavailable() {
                Some(cause) => ApiError::Unavailable(cause, other.to_string()),
                None => ApiError::Internal(other.to_string()),
            },
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Store(s) => s.into(),
            other => ApiError::Auth(other),
        }
    }
}

/// Roster's own codes, for cases whose real Cloudflare code is not known. Stable: clients
/// may match on them.
pub mod codes {
    pub const INTERNAL: u32 = 1000;
    pub const MALFORMED_BODY: u32 = 1001;
    pub const INVALID_INPUT: u32 = 1002;
    pub const NOT_FOUND: u32 = 1003;
    pub const ALREADY_MEMBER: u32 = 1004;
    pub const NOT_PENDING: u32 = 1005;
    pub const TWO_FACTOR_REQUIRED: u32 = 1006;
    pub const LAST_ADMINISTRATOR: u32 = 1007;
    pub const IN_USE: u32 = 1008;
    pub const DUPLICATE: u32 = 1009;
    pub const TOO_LARGE: u32 = 1010;
    pub const TIMEOUT: u32 = 1011;
    pub const URI_TOO_LONG: u32 = 1012;
    pub const HEADERS_TOO_LARGE: u32 = 1013;
    pub const INVITATION_EXPIRED: u32 = 1014;
    pub const NOT_JSON: u32 = 1015;
    pub const RATE_LIMITED: u32 = 971;
    pub const METHOD_NOT_ALLOWED: u32 = 7001;
    pub const NO_ROUTE: u32 = 7003;
    pub const NO_ROUTE_DETAIL: u32 = 7000;
    pub const MISSING_AUTH: u32 = 9106;
    pub const INVALID_HEADERS: u32 = 6003;
    pub const UNKNOWN_KEY: u32 = 9103;
    pub const UNAUTHORIZED: u32 = 9109;
    pub const AUTHENTICATION_ERROR: u32 = 10000;
}

impl ApiError {
    fn status_and_errors(&self) -> (StatusCode, Vec<serde_json::Value>) {
        use codes::*;
        let one = |status, code, message: String| {
            (status, vec![json!({"code": code, "message": message})])
        };
        match self {
            ApiError::Domain(d) => {
                let message = d.to_string();
                match d {
                    DomainError::NotFound(_) => one(StatusCode::NOT_FOUND, NOT_FOUND, message),
                    DomainError::Forbidden
                    | DomainError::BeyondOwnRights(_)
                    | DomainError::SuperAdministratorsOnly => {
                        one(StatusCode::FORBIDDEN, UNAUTHORIZED, message)
                    }
                    DomainError::Invalid { .. } => {
                        one(StatusCode::BAD_REQUEST, INVALID_INPUT, message)
                    }
                    DomainError::AlreadyMember(_) => {
                        one(StatusCode::CONFLICT, ALREADY_MEMBER, message)
                    }
                    DomainError::NotPending(_) => one(StatusCode::CONFLICT, NOT_PENDING, message),
                    DomainError::InvitationExpired(_) => {
                        one(StatusCode::CONFLICT, INVITATION_EXPIRED, message)
                    }
                    DomainError::TwoFactorRequired => {
                        one(StatusCode::FORBIDDEN, TWO_FACTOR_REQUIRED, message)
                    }
                    DomainError::LastAdministrator => {
                        one(StatusCode::CONFLICT, LAST_ADMINISTRATOR, message)
                    }
                    DomainError::ResourceGroupInUse => one(StatusCode::CONFLICT, IN_USE, message),
                    DomainError::Duplicate(_) => one(StatusCode::CONFLICT, DUPLICATE, message),
                }
            }
            ApiError::Auth(a) => match a {
                AuthError::Missing => one(StatusCode::BAD_REQUEST, MISSING_AUTH, a.to_string()),
                AuthError::Malformed(chain) => (
                    StatusCode::BAD_REQUEST,
                    vec![json!({
                        "code": INVALID_HEADERS,
                        "message": a.to_string(),
                        "error_chain": chain
                            .iter()
                            .map(|(code, message)| json!({"code": code, "message": message}))
                            .collect::<Vec<_>>(),
                    })],
                ),
                AuthError::UnknownKey => one(StatusCode::FORBIDDEN, UNKNOWN_KEY, a.to_string()),
                AuthError::BadToken | AuthError::InactiveToken => {
                    one(StatusCode::FORBIDDEN, AUTHENTICATION_ERROR, a.to_string())
                }
                AuthError::Location(_) => one(StatusCode::FORBIDDEN, UNAUTHORIZED, a.to_string()),
                AuthError::Store(_) => one(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    INTERNAL,
                    "Internal error".into(),
                ),
            },
            ApiError::BadBody(_) => one(StatusCode::BAD_REQUEST, MALFORMED_BODY, self.to_string()),
            ApiError::NoRoute(path) => (
                StatusCode::NOT_FOUND,
                vec![
                    json!({"code": NO_ROUTE, "message": format!("Could not route to {}, perhaps your object identifier is invalid?", shown(path))}),
                    json!({"code": NO_ROUTE_DETAIL, "message": "No route for that URI"}),
                ],
            ),
            ApiError::MethodNotAllowed { method, path } => one(
                StatusCode::METHOD_NOT_ALLOWED,
                METHOD_NOT_ALLOWED,
                format!("Method {method} not allowed for {}", shown(path)),
            ),
            ApiError::Busy(_) | ApiError::GuessedTooOften(_) => one(
                StatusCode::TOO_MANY_REQUESTS,
                RATE_LIMITED,
                self.to_string(),
            ),
            ApiError::TooLarge(_) => {
                one(StatusCode::PAYLOAD_TOO_LARGE, TOO_LARGE, self.to_string())
            }
            ApiError::Timeout(_) => one(StatusCode::REQUEST_TIMEOUT, TIMEOUT, self.to_string()),
            ApiError::UriTooLong(_) => {
                one(StatusCode::URI_TOO_LONG, URI_TOO_LONG, self.to_string())
            }
            ApiError::HeadersTooLarge(_) => one(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                HEADERS_TOO_LARGE,
                self.to_string(),
            ),
            ApiError::NotJson => one(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                NOT_JSON,
                self.to_string(),
            ),
            ApiError::Internal(_) => one(
                StatusCode::INTERNAL_SERVER_ERROR,
                INTERNAL,
                "Internal error".into(),
            ),
            ApiError::Unavailable(..) => {
                one(StatusCode::SERVICE_UNAVAILABLE, INTERNAL, self.to_string())
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, errors) = self.status_and_errors();
        let final_answer =
            status == StatusCode::CONFLICT || matches!(self, ApiError::GuessedTooOften(_));
        let code = errors
            .first()
            .and_then(|e| e["code"].as_u64())
            .and_then(|c| u32::try_from(c).ok());
        let body = json!({"success": false, "errors": errors, "messages": [], "result": null});
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(code) = code {
            response
                .extensions_mut()
                .insert(super::access::ErrorCode(code));
        }
        if let ApiError::Busy(seconds) | ApiError::GuessedTooOften(seconds) = self {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        match self {
            ApiError::Unavailable(cause, detail) => {
                response
                    .headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, UNAVAILABLE_RETRY.into());
                // The access log says it once per change of state, not once a request.
                response
                    .extensions_mut()
                    .insert(super::access::DatabaseUnavailable(cause, detail));
            }
            ApiError::Internal(detail) => {
                // Logged with the request by the access log.
                response
                    .extensions_mut()
                    .insert(super::access::InternalDetail(detail));
            }
            _ => {}
        }
        if final_answer {
            // The official SDKs retry a 409 as a lock timeout unless told not to; Roster's
            // 409s are final (already a member, last administrator, ...). So is the
            // failed-authentication throttle's 429 to the credential that earned it: retried
            // as the SDKs retry a 429 (after `Retry-After`, Go up to 10 times), a suite with
            // a wrong key would wait minutes to see its error. The rate limit's 429 is left
            // to be retried: waiting is what it asks.
            let no = axum::http::HeaderValue::from_static("false");
            response.headers_mut().insert("x-should-retry", no);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_path_is_shown_cut_and_marked() {
        assert_eq!(shown("/client/v4/x"), "/client/v4/x");
        let long = "é".repeat(400);
        let cut = shown(&long);
        assert!(cut.len() <= SHOWN + '…'.len_utf8(), "{}", cut.len());
        assert!(cut.ends_with('…'));
        assert!(long.starts_with(cut.trim_end_matches('…')));
    }
}
