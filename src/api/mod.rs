//! HTTP: the router, the v4 envelope and the one error type. Every endpoint is listed in
//! [`router`] through its resource module's own `router()`; handlers parse input at the
//! edge (see [`extract`]), let the domain decide, and render with [`views`].

mod accounts;
pub mod error;
mod extract;
mod iam;
mod members;
mod memberships;
mod roles;
mod tokens;
mod user;
mod views;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::OriginalUri;
use axum::extract::connect_info::IntoMakeServiceWithConnectInfo;
use axum::http::{HeaderName, HeaderValue, Method, Request};
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

pub use error::ApiError;

use crate::domain::{AccountState, DomainError, Id};
use crate::store::Store;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
}

impl AppState {
    /// An account's state for a read; a missing account is a 404.
    async fn load_account(&self, id: &Id) -> Result<AccountState, ApiError> {
        self.store
            .load_account(id)
            .await?
            .ok_or(DomainError::NotFound("Account").into())
    }
}

pub const PREFIX: &str = "/client/v4";

pub fn router(store: Arc<dyn Store>) -> Router {
    let v4 = Router::new()
        .merge(memberships::router())
        .merge(members::router())
        .merge(roles::router())
        .merge(iam::router())
        .merge(accounts::router())
        .merge(user::router())
        .merge(tokens::router())
        .method_not_allowed_fallback(method_not_allowed);
    let ray = HeaderName::from_static("cf-ray");
    Router::new()
        .nest(PREFIX, v4)
        .fallback(no_route)
        .with_state(AppState { store })
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Internal("handler panicked".into()).into_response()
        }))
        .layer(PropagateRequestIdLayer::new(ray.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            let ray = req
                .extensions()
                .get::<RequestId>()
                .and_then(|id| id.header_value().to_str().ok())
                .unwrap_or_default();
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), ray)
        })
        .on_response(DefaultOnResponse::new().level(Level::INFO)))
        .layer(SetRequestIdLayer::new(ray, RayId))
}

/// The router as a server runs it: handlers see the client's address (token address
/// conditions need it).
pub fn service(store: Arc<dyn Store>) -> IntoMakeServiceWithConnectInfo<Router, SocketAddr> {
    router(store).into_make_service_with_connect_info::<SocketAddr>()
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

/// Request ids shaped like Cloudflare's `cf-ray` header: 16 hex digits and a location.
#[derive(Clone)]
struct RayId;

impl MakeRequestId for RayId {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let id = Id::generate();
        let value = format!("{}-RST", &id.as_str()[..16]);
        HeaderValue::from_str(&value).ok().map(RequestId::new)
    }
}
