//! Authentication, as Cloudflare does it: a user's global API key (`X-Auth-Email` +
//! `X-Auth-Key`, all of the user's rights) or an API token (`Authorization: Bearer`, limited
//! to its permission groups). Secrets are stored as SHA-256 digests (they are long random
//! strings, so a slow password hash buys nothing) and compared in constant time.

use crate::domain::clock;
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, HeaderName};
use rand::Rng;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use time::{Duration, OffsetDateTime};

use crate::domain::tokens::Refusal;
use crate::domain::types::{parse_timestamp, timestamp};
use crate::domain::{Caller, Email};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("Missing X-Auth-Key, X-Auth-Email or Authorization headers")]
    Missing,
    /// Header syntax problems: (code, message) for Cloudflare's `error_chain`.
    #[error("Invalid request headers")]
    Malformed(Vec<(u32, &'static str)>),
    #[error("Unknown X-Auth-Key or X-Auth-Email")]
    UnknownKey,
    #[error("Authentication error")]
    BadToken,
    /// A real token, disabled, expired or not yet valid: answered as [`AuthError::BadToken`]
    /// is, but not a guess, so not counted against the client's address.
    #[error("Authentication error")]
    InactiveToken,
    /// The token's address condition excludes the client.
    #[error("Cannot use the access token from location: {}", .0.map_or("unknown".to_string(), |ip| ip.to_string()))]
    Location(Option<IpAddr>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub const BAD_EMAIL: (u32, &str) = (6102, "Invalid format for X-Auth-Email header");
pub const BAD_KEY: (u32, &str) = (6103, "Invalid format for X-Auth-Key header");
pub const BAD_AUTHORIZATION: (u32, &str) = (6111, "Invalid format for Authorization header");

pub fn hash_secret(secret: &str) -> String {
    // Into a buffer: `hex::encode` collects char by char, a third of the cost of hashing.
    let mut digits = [0u8; 64];
    hex::encode_to_slice(Sha256::digest(secret.as_bytes()), &mut digits)
        .expect("a SHA-256 digest is 64 hex digits");
    String::from_utf8(digits.to_vec()).expect("hex digits are ASCII")
}

fn same_digest(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// A new global API key: 37 lowercase hex characters, like Cloudflare's.
pub fn generate_api_key() -> String {
    let bytes: [u8; 19] = rand::rng().random();
    hex::encode(bytes)[..37].to_string()
}

/// A new API token: 40 URL-safe characters, like Cloudflare's.
pub fn generate_token() -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(40)
        .map(char::from)
        .collect()
}

/// Global API keys are 37 hex characters; the documentation's example key (and older keys)
/// are 32.
pub(crate) fn key_format_ok(key: &str) -> bool {
    matches!(key.len(), 32 | 37) && key.bytes().all(|b| b.is_ascii_hexdigit())
}

pub(crate) fn token_format_ok(token: &str) -> bool {
    token.len() == 40
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The credential headers, as names made once: looked up by text, each name was parsed
/// again on every request.
pub static X_AUTH_EMAIL: HeaderName = HeaderName::from_static("x-auth-email");
pub static X_AUTH_KEY: HeaderName = HeaderName::from_static("x-auth-key");

fn header<'a>(
    headers: &'a HeaderMap,
    name: &HeaderName,
    malformed: (u32, &'static str),
) -> Result<Option<&'a str>, AuthError> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(|s| Some(s.trim()))
            .map_err(|_| AuthError::Malformed(vec![malformed])),
    }
}

/// A credential as presented, checked for form and reduced to what is compared: the
/// folded email and the key's digest, or the token's digest. A console session keeps this
/// (never the secret) and presents it again on each page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presented {
    Key {
        email_folded: String,
        digest: String,
    },
    Token {
        digest: String,
    },
}

impl Presented {
    /// The credential a request's headers carry.
    pub fn from_headers(headers: &HeaderMap) -> Result<Presented, AuthError> {
        if let Some(authorization) = header(headers, &AUTHORIZATION, BAD_AUTHORIZATION)? {
            let token = authorization
                .strip_prefix("Bearer ")
                .map(str::trim)
                .filter(|t| token_format_ok(t))
                .ok_or(AuthError::Malformed(vec![BAD_AUTHORIZATION]))?;
            return Ok(Presented::Token {
                digest: hash_secret(token),
            });
        }
        let email = header(headers, &X_AUTH_EMAIL, BAD_EMAIL)?;
        let key = header(headers, &X_AUTH_KEY, BAD_KEY)?;
        let (email, key) = match (email, key) {
            (Some(e), Some(k)) => (e, k),
            _ => return Err(AuthError::Missing),
        };
        let mut chain = Vec::new();
        let parsed = Email::parse(email, "X-Auth-Email");
        if parsed.is_err() {
            chain.push(BAD_EMAIL);
        }
        if !key_format_ok(key) {
            chain.push(BAD_KEY);
        }
        match parsed {
            Ok(email) if chain.is_empty() => Ok(Presented::Key {
                email_folded: email.folded().to_string(),
                digest: hash_secret(&key.to_ascii_lowercase()),
            }),
            _ => Err(AuthError::Malformed(chain)),
        }
    }
}

/// The caller of a request from `client` (the peer address, when the server knows it).
pub async fn authenticate(
    store: &Arc<dyn Store>,
    uses: &Arc<Uses>,
    headers: &HeaderMap,
    client: Option<IpAddr>,
) -> Result<Caller, AuthError> {
    verify(store, uses, &Presented::from_headers(headers)?, client).await
}

/// The caller a credential is, as of now: a key that was changed or a token that was
/// deleted, disabled or expired since it was first presented is refused.
pub async fn verify(
    store: &Arc<dyn Store>,
    uses: &Arc<Uses>,
    presented: &Presented,
    client: Option<IpAddr>,
) -> Result<Caller, AuthError> {
    match presented {
        Presented::Token { digest } => authenticate_token(store, uses, digest, client).await,
        Presented::Key {
            email_folded,
            digest,
        } => match store.user_by_email(email_folded).await? {
            Some((user, stored)) if same_digest(digest, &stored) => Ok(Caller::of_user(user, None)),
            _ => Err(AuthError::UnknownKey),
        },
    }
}

async fn authenticate_token(
    store: &Arc<dyn Store>,
    uses: &Arc<Uses>,
    presented: &str,
    client: Option<IpAddr>,
) -> Result<Caller, AuthError> {
    let Some((record, user)) = store.token_by_hash(presented).await? else {
        return Err(AuthError::BadToken);
    };
    let at = clock::now_utc();
    record.check_usable(at, client).map_err(|r| match r {
        Refusal::Inactive => AuthError::InactiveToken,
        Refusal::Location(ip) => AuthError::Location(ip),
    })?;
    let last = record.last_used_on.as_deref().and_then(parse_timestamp);
    uses.record(store, presented.to_string(), last, at);
    Ok(Caller {
        user,
        token: Some(record),
    })
}

/// Records tokens' uses (`last_used_on`) to the minute, off the requests' path.
///
/// A write per request would cost more than the request, so a use is written only when
/// the token's last recorded use is over a minute old. The request does not wait for it:
/// recording is best effort (a failure is logged, never the caller's error), and on SQLite
/// every write waits its turn on the one write connection, a queue a read has no reason
/// to join. Spawning alone would not do: until the write lands, every request with the
/// token still reads the old `last_used_on` and would start another, so at most one write
/// per token is under way here; once it lands, the cached token and the database say the
/// token was just used. A write that failed, or never finished (its task panicked or was
/// cancelled), is not tried again for a minute, so a failing database is not asked (nor the
/// log written to) on every request. Coalescing what is under way, rather than remembering
/// what was written, keeps no second copy of `last_used_on` that could disagree with the
/// database (the emulator's reset puts back the seeded one, and the next use is recorded
/// again).
#[derive(Default)]
pub struct Uses {
    writing: Mutex<Writing>,
}

/// Tokens (by secret digest) whose use is being written (`None`), or whose last write
/// failed (when). Bounded: a token forgotten here costs at most one more write.
struct Writing(quick_cache::unsync::Cache<String, Option<OffsetDateTime>>);

impl Default for Writing {
    fn default() -> Self {
        Writing(quick_cache::unsync::Cache::new(10_000))
    }
}

impl Uses {
    fn lock(&self) -> std::sync::MutexGuard<'_, Writing> {
        self.writing.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The token with digest `hash`, last recorded as used at `last`, was used `at`.
    fn record(
        self: &Arc<Self>,
        store: &Arc<dyn Store>,
        hash: String,
        last: Option<OffsetDateTime>,
        at: OffsetDateTime,
    ) {
        // Written as the request's clock reads (the emulator may have moved it), which a
        // task of its own would not see.
        let write = |hash: String| {
            let (store, stamp) = (store.clone(), timestamp(at));
            async move { store.touch_token(&hash, &stamp).await }
        };
        self.record_with(hash, last, at, write);
    }

    /// [`Uses::record`], with `write` to record the use; the task writing it, if one was
    /// started.
    fn record_with<W: Future<Output = Result<(), StoreError>> + Send + 'static>(
        self: &Arc<Self>,
        hash: String,
        last: Option<OffsetDateTime>,
        at: OffsetDateTime,
        write: impl FnOnce(String) -> W,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let recent = |then: OffsetDateTime| at - then <= Duration::MINUTE;
        if last.is_some_and(recent) {
            return None;
        }
        {
            let mut writing = self.lock();
            match writing.0.get(&hash) {
                Some(None) => return None,
                Some(Some(failed)) if recent(*failed) => return None,
                _ => writing.0.insert(hash.clone(), None),
            }
        }
        // Held from the moment the token is marked: spawning may fail, and a task may be
        // dropped unstarted (the runtime shutting down) as well as panic.
        let mark = Mark {
            uses: self.clone(),
            hash: hash.clone(),
            at,
            written: false,
        };
        let write = write(hash);
        Some(tokio::spawn(async move { mark.end(write.await) }))
    }
}

/// A token's use being written. Released when dropped, however the write ended: recorded,
/// failed, or never finished (its task panicked or was cancelled), which counts as failed.
/// Otherwise the token would stay "being written" and its uses never be recorded again.
struct Mark {
    uses: Arc<Uses>,
    hash: String,
    at: OffsetDateTime,
    written: bool,
}

impl Mark {
    /// Taking the mark whole: a task that only set its field would hold a copy of the field
    /// (a closure captures no more than it uses), and the mark would be dropped at once.
    fn end(mut self, written: Result<(), StoreError>) {
        match written {
            Ok(()) => self.written = true,
            Err(e) => tracing::warn!(error = %e, "recording a token's use"),
        }
    }
}

impl Drop for Mark {
    fn drop(&mut self) {
        let hash = std::mem::take(&mut self.hash);
        let mut writing = self.uses.lock();
        if self.written {
            writing.0.remove(&hash);
        } else {
            writing.0.insert(hash, Some(self.at));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: OffsetDateTime = OffsetDateTime::UNIX_EPOCH;

    fn hash() -> String {
        "0".repeat(64)
    }

    fn started(task: Option<tokio::task::JoinHandle<()>>) -> tokio::task::JoinHandle<()> {
        task.expect("a write is started")
    }

    fn writes() -> impl FnOnce(String) -> std::future::Ready<Result<(), StoreError>> {
        |_| std::future::ready(Ok(()))
    }

    #[tokio::test]
    async fn a_write_that_panics_counts_as_failed() {
        let uses = Arc::new(Uses::default());
        let panics = |_| async { panic!("the store panicked") };
        let task = started(uses.record_with(hash(), None, AT, panics));
        assert!(task.await.unwrap_err().is_panic());
        assert!(
            uses.record_with(hash(), None, AT, writes()).is_none(),
            "as after a failed write: not again within the minute"
        );
        let later = AT + Duration::minutes(2);
        started(uses.record_with(hash(), None, later, writes()))
            .await
            .unwrap();
        assert!(uses.lock().0.get(&hash()).is_none(), "recorded");
    }

    #[tokio::test]
    async fn a_cancelled_write_counts_as_failed() {
        let uses = Arc::new(Uses::default());
        let never = |_| std::future::pending();
        let task = started(uses.record_with(hash(), None, AT, never));
        assert!(
            uses.record_with(hash(), None, AT, writes()).is_none(),
            "one write at a time"
        );
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
        let later = AT + Duration::minutes(2);
        started(uses.record_with(hash(), None, later, writes()))
            .await
            .unwrap();
        assert!(uses.lock().0.get(&hash()).is_none(), "recorded");
    }
}
