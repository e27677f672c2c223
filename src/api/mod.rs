//! HTTP: the router, the v4 envelope and the one error type. Every endpoint is listed in
//! [`router`] through its resource module's own `router()`; handlers parse input at the
//! edge (see [`extract`]), let the domain decide, and render with [`views`].

/// An API path: the version's prefix and `$path`. The routes are written whole rather than
/// nested under the prefix: a nested router rebuilt each request's URI without it, a
/// twenty-fifth of a one-row read (`bench/instructions`).
macro_rules! v4 {
    ($path:literal) => {
        concat!("/client/v4", $path)
    };
}

mod access;
mod accounts;
mod audit;
mod control;
pub mod emulator;
pub mod error;
mod extract;
mod iam;
mod invites;
mod limit;
mod members;
mod memberships;
mod metrics;
mod roles;
mod tokens;
mod user;
mod user_groups;
mod views;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::OriginalUri;
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;

pub(crate) use access::InternalDetail;
pub use error::ApiError;
pub(crate) use extract::{SignedIn, client_address};

use crate::domain::{AccountState, Caller, DomainError, Focus, Id, Need};
use crate::store::Store;

/// What an operator tunes about serving (`roster serve` flags); the defaults are
/// Cloudflare's.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Requests per user per window; `None` switches rate limiting off.
    pub rate: Option<(NonZeroU32, Duration)>,
    /// Request bodies over this many bytes are refused with 413.
    pub max_body_bytes: usize,
    /// A request (reading its body included) that takes longer is answered 408.
    pub request_timeout: Duration,
    /// Failed authentications allowed per client address per minute (a third of them for
    /// one email); `None` switches the throttling off.
    pub failed_auth: Option<NonZeroU32>,
    /// How long an invitation can be accepted after it was made.
    pub invitation_ttl: Duration,
    /// Serve the web console under `/console/` (`serve --no-console` leaves it out).
    pub console: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            rate: Some((
                NonZeroU32::new(1200).expect("non-zero"),
                Duration::from_secs(300),
            )),
            max_body_bytes: 1 << 20,
            request_timeout: Duration::from_secs(60),
            failed_auth: NonZeroU32::new(60),
            invitation_ttl: Duration::from_secs(7 * 86_400),
            console: true,
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    limiter: Option<Arc<limit::UserLimiter>>,
    failures: Option<Arc<limit::FailureLimiter>>,
    uses: Arc<crate::auth::Uses>,
    max_body_bytes: usize,
    invitation_ttl: Duration,
    emulator: Option<Arc<emulator::Emulator>>,
    metrics: Arc<metrics::Metrics>,
}

impl AppState {
    /// An account's state for a read, with the memberships `focus` names (the caller's, to
    /// authorize them); a missing account is a 404.
    async fn load_account(&self, id: &Id, focus: &Focus) -> Result<AccountState, ApiError> {
        self.store
            .load_account(id, focus)
            .await?
            .ok_or(DomainError::NotFound("Account").into())
    }

    /// The same, for `caller`, who must be allowed to read the account (`focus` must hold
    /// their membership).
    pub(crate) async fn read_account(
        &self,
        id: &Id,
        focus: &Focus,
        caller: &Caller,
    ) -> Result<AccountState, ApiError> {
        let state = self.load_account(id, focus).await?;
        state.authorize(caller, Need::Read)?;
        Ok(state)
    }

    /// A change to an account by `caller`, who must be allowed to write to it (`focus` must
    /// hold their membership): `decide` runs on the account as the write's transaction
    /// reads it, after the caller is authorized there, and its changes are stored together.
    /// Every account write goes through here, so none can forget to authorize.
    async fn change_account(
        &self,
        id: &Id,
        focus: &Focus,
        caller: &Caller,
        decide: impl Fn(&AccountState) -> Result<Vec<crate::domain::Change>, DomainError> + Send + Sync,
    ) -> Result<crate::store::Written, ApiError> {
        let written = self
            .store
            .write_account(id, focus, &|state| {
                state.authorize(caller, Need::Write)?;
                decide(state)
            })
            .await?;
        Ok(written)
    }
}

/// Where the API is served: every route is under it.
pub const PREFIX: &str = v4!("");

/// The longest request target (path and query) answered: Cloudflare's edge refuses URLs
/// over 16 KB with 414.
pub const MAX_TARGET_BYTES: usize = 16 * 1024;

/// The most header bytes (names and values) a request may carry: Cloudflare's edge refuses
/// more than 32 KB with 431. (Past hyper's own buffer, about 400 KB, or past 100 headers,
/// hyper answers 431 itself, before the router sees the request: with an empty body.)
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

pub fn router(store: Arc<dyn Store>, limits: &Limits) -> Router {
    router_with(store, limits, None)
}

/// The router, with the emulator's control plane when one is given (`serve --emulator`).
pub fn router_with(
    store: Arc<dyn Store>,
    limits: &Limits,
    emulator: Option<Arc<emulator::Emulator>>,
) -> Router {
    let v4 = Router::new()
        .merge(memberships::router())
        .merge(members::router())
        .merge(roles::router())
        .merge(iam::router())
        .merge(accounts::router())
        .merge(user::router())
        .merge(invites::router())
        .merge(user_groups::router())
        .merge(tokens::router())
        .merge(audit::router())
        .method_not_allowed_fallback(method_not_allowed);
    let state = AppState {
        store,
        limiter: limits
            .rate
            .map(|(requests, window)| Arc::new(limit::UserLimiter::new(requests, window))),
        failures: limits
            .failed_auth
            .map(|n| Arc::new(limit::FailureLimiter::new(n))),
        uses: Arc::default(),
        max_body_bytes: limits.max_body_bytes,
        invitation_ttl: limits.invitation_ttl,
        emulator,
        metrics: Arc::default(),
    };
    let timeout = limits.request_timeout;
    let max_body = limits.max_body_bytes;
    let mut control = control::router();
    if state.emulator.is_some() {
        control = control.merge(emulator::router());
    }
    // The API's extractors note the route for the access log and the metrics; Roster's own
    // few routes take a layer to do it. A wrong method is answered as the API answers it
    // (405/7001 in the envelope), not with axum's empty 405.
    let control = control
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(middleware::from_fn(metrics::note_route));
    let observe = state
        .emulator
        .is_some()
        .then(|| middleware::from_fn_with_state(state.clone(), emulator::observe));
    let keep_body = state
        .emulator
        .is_some()
        .then(|| middleware::from_fn(emulator::keep_body));
    let inject = state
        .emulator
        .is_some()
        .then(|| middleware::from_fn_with_state(state.clone(), emulator::inject));
    let recorded = Arc::clone(&state.metrics);
    let console = limits.console.then(|| {
        // The console calls the API as a client would, in process (see `console`).
        let mut api = v4.clone();
        if state.emulator.is_some() {
            api = api.merge(emulator::router());
        }
        crate::console::router(crate::console::ConsoleState {
            app: state.clone(),
            api: api.with_state(state.clone()),
            emulator: state.emulator.is_some(),
        })
    });
    let mut routes = v4.merge(control).fallback(no_route).with_state(state);
    if let Some(console) = console {
        routes = routes.merge(console);
    }
    if let Some(inject) = inject {
        // Inside the router, where the route a request matched is known; boxed around each
        // route as the comment below says, which only a test double pays.
        routes = routes.layer(inject);
    }
    // The layers wrap the router once, outermost first. `Router::layer` would box each
    // layer around the route, and every request cloned that chain box by box (a twentieth
    // of a one-row read).
    let service = tower::ServiceBuilder::new()
        .layer(middleware::from_fn_with_state(recorded, access::log))
        .option_layer(observe)
        .layer(middleware::from_fn(move |req, next| {
            limit::bounded(max_body, timeout, req, next)
        }))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Internal("handler panicked".into()).into_response()
        }))
        // Within the timeout: the journal's reading of a body counts against it, as the
        // API's own does.
        .option_layer(keep_body)
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .service(routes);
    Router::new().fallback_service(service)
}

async fn no_route(OriginalUri(uri): OriginalUri) -> Response {
    ApiError::NoRoute(uri.path().to_string()).into_response()
}

async fn method_not_allowed(method: Method, OriginalUri(uri): OriginalUri) -> Response {
    ApiError::MethodNotAllowed {
        method: method.to_string(),
        path: uri.path().to_string(),
    }
    .into_response()
}

/// The header that carries a request's id, as Cloudflare's edge sets it.
pub(crate) static CF_RAY: HeaderName = HeaderName::from_static("cf-ray");

/// A request id shaped like Cloudflare's `cf-ray` header: 16 hex digits and a location.
pub(crate) fn new_ray() -> HeaderValue {
    // From the thread's generator: a fresh id from the kernel per request was a system
    // call each time. Written into a buffer: `format!` was a seventieth of a read.
    let mut value = [0u8; 20];
    hex::encode_to_slice(rand::random::<u64>().to_be_bytes(), &mut value[..16])
        .expect("8 bytes are 16 hex digits");
    value[16..].copy_from_slice(b"-RST");
    HeaderValue::from_bytes(&value).expect("hex digits and letters make a header value")
}
