//! The web console: HTML pages for people, served by `roster serve` under `/console/`
//! (`--no-console` leaves it out). It owns sign-in sessions, the pages' templates and
//! their assets, and nothing else: every page is a client of the API. A page asks the
//! API, in process, on the signed-in caller's behalf (`client.rs`), so authentication's
//! outcome, every rule, the rate limits and the audit log are the API's own, with no
//! second copy to drift; what the API refuses, the page shows with the API's message.
//!
//! - `session.rs`: sign-in and sign-out, the session cookie and its expiry, CSRF.
//! - `client.rs`: the in-process API call and its envelope.
//! - `pages.rs`: one handler per page or form, each naming the API calls it makes;
//!   `tokens.rs` the same for API tokens, `groups.rs` for user and resource groups,
//!   `emulator.rs` for the emulator's control plane.
//! - `assets.rs`: htmx (vendored), the stylesheet and the script, by content hash.
//!
//! Pages are ordinary forms and links; htmx (`hx-boost`) only swaps the body in place.
//! Every answer carries a `Content-Security-Policy` that allows no inline script or style
//! and no framing.

mod assets;
mod client;
mod emulator;
mod groups;
mod pages;
mod session;
mod tokens;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

pub use client::Api;

use crate::api::AppState;

/// Pages, forms and assets, each in one place.
pub fn router(state: ConsoleState) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/console/") }))
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route("/console/assets/{name}", get(assets::serve))
        .route(
            "/console/sign-in",
            get(session::sign_in_page).post(session::sign_in),
        )
        .route("/console/sign-out", post(session::sign_out))
        .route("/console/", get(pages::accounts))
        .route("/console/invitations", get(pages::invitations))
        .route(
            "/console/memberships/{membership_id}",
            post(pages::answer_invitation),
        )
        .route(
            "/console/accounts/{account_id}/members",
            get(pages::members),
        )
        .route(
            "/console/accounts/{account_id}/members.csv",
            get(pages::members_csv),
        )
        .route(
            "/console/accounts/{account_id}/members/find",
            get(pages::find_member),
        )
        .route(
            "/console/accounts/{account_id}/members/invite",
            get(pages::invite_form).post(pages::invite),
        )
        .route(
            "/console/accounts/{account_id}/members/{member_id}",
            get(pages::member).post(pages::change_member),
        )
        .route(
            "/console/accounts/{account_id}/members/{member_id}/remove",
            get(pages::confirm_remove).post(pages::remove),
        )
        .route("/console/accounts/{account_id}/roles", get(pages::roles))
        .route(
            "/console/emulator",
            get(emulator::emulator).post(emulator::act),
        )
        .route("/console/emulator/journal", get(emulator::journal_part))
        .route(
            "/console/accounts/{account_id}/groups",
            get(groups::groups).post(groups::create_group),
        )
        .route(
            "/console/accounts/{account_id}/groups/{group_id}",
            get(groups::group).post(groups::change_group),
        )
        .route(
            "/console/tokens",
            get(tokens::user_tokens).post(tokens::create_user_token),
        )
        .route(
            "/console/tokens/{token_id}",
            post(tokens::change_user_token),
        )
        .route(
            "/console/accounts/{account_id}/tokens",
            get(tokens::account_tokens).post(tokens::create_account_token),
        )
        .route(
            "/console/accounts/{account_id}/tokens/{token_id}",
            post(tokens::change_account_token),
        )
        .route("/console/accounts/{account_id}/audit", get(pages::audit))
        .layer(middleware::from_fn(protect))
        .layer(tower_http::compression::CompressionLayer::new())
        .with_state(state)
}

/// What the console's handlers share: the API's state (the store, the throttles) and the
/// API itself, to call.
#[derive(Clone)]
pub struct ConsoleState {
    pub app: AppState,
    pub api: Router,
    /// Whether the emulator's control plane is served (its page is offered).
    pub emulator: bool,
}

/// The headers every console answer carries: no inline script or style, no framing, no
/// sniffing, no referrer, and pages never cached (assets set their own caching).
async fn protect(req: Request, next: Next) -> Response {
    let mut response = if session::embedded_elsewhere(req.headers()) {
        (
            axum::http::StatusCode::FORBIDDEN,
            "The console's pages are not served to other sites' pages.",
        )
            .into_response()
    } else {
        next.run(req).await
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// A template rendered as a page; a template that fails to render is an internal error.
fn html(page: impl askama::Template) -> Response {
    match page.render() {
        Ok(body) => axum::response::Html(body).into_response(),
        Err(e) => {
            crate::api::ApiError::Internal(format!("rendering a console page: {e}")).into_response()
        }
    }
}
