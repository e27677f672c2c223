//! The access log: one line per request, written once its answer is ready, with the
//! request's ray id, query string, caller (a user or token id, never a secret), status,
//! the Cloudflare error code of a failed answer, and latency; an internal error's detail
//! (never shown to the client) goes on the same line. `--log-json` keeps each as a field.
//! The same middleware counts the request in the metrics (see `metrics.rs`).
//!
//! One event and no span per request: tower-http's `TraceLayer` opened a span per request,
//! formatted its fields, entered and left it at every poll and formatted a second event;
//! together a seventh of a one-row read's CPU.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use tower_http::request_id::RequestId;

use super::metrics::Metrics;

/// Put on an answer by [`super::ApiError`] for this log to write; the client sees only
/// "Internal error".
#[derive(Clone)]
pub struct InternalDetail(pub String);

/// Put on a 503 by [`super::ApiError::Unavailable`]: why the database cannot serve.
/// With the error itself, for the log line that says so (the client sees only the cause).
#[derive(Clone)]
pub struct DatabaseUnavailable(pub &'static str, pub String);

/// Whether the database served the last answers, as the answers show it: a 503 for an
/// unavailable database marks it down, with its cause, and the next success of the API
/// marks it up (for a cause that stops only writes, such as a full disk, the
/// next write's: reads go on meanwhile). Each change is one log line, however many
/// requests see it.
#[derive(Default)]
pub struct DatabaseState {
    down: std::sync::atomic::AtomicBool,
    cause: std::sync::Mutex<Option<&'static str>>,
}

impl DatabaseState {
    fn unavailable(&self, cause: &'static str, detail: &str) {
        let mut held = self.cause.lock().unwrap_or_else(|e| e.into_inner());
        if *held != Some(cause) {
            tracing::error!(
                cause,
                detail,
                "database unavailable: answering 503 with Retry-After until it serves again"
            );
            *held = Some(cause);
            self.down.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn served(&self, wrote: bool) {
        // One load on every answer while it is up.
        if self.down.load(std::sync::atomic::Ordering::Relaxed) {
            let mut held = self.cause.lock().unwrap_or_else(|e| e.into_inner());
            if held.is_some_and(|cause| !wrote && crate::store::WRITE_CAUSES.contains(&cause)) {
                return;
            }
            if let Some(cause) = held.take() {
                tracing::info!(was = cause, "database serving again");
            }
            self.down.store(false, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// Put on a failed answer by [`super::ApiError`]: its first error's code.
#[derive(Clone, Copy)]
pub struct ErrorCode(pub u32);

/// What the handler's extractors learn that this log needs: who called ("user <id>" or
/// "token <id>", from the authentication extractor) and the route template the request
/// matched. The request carries it in, and this log reads it once the answer is ready.
#[derive(Clone, Default)]
pub struct Notes(pub Arc<NotesInner>);

#[derive(Default)]
pub struct NotesInner {
    pub caller: OnceLock<String>,
    pub route: OnceLock<MatchedPath>,
}

impl Notes {
    /// Notes the route the request matched (the router put it on the request). Done by
    /// the extractors every API handler runs first rather than by a layer on each route:
    /// such a layer costs every request a layer's dispatch (`bench/instructions`; figures
    /// in bench/README.md, "Figures behind the code").
    pub fn route(extensions: &axum::http::Extensions) {
        if let (Some(notes), Some(route)) =
            (extensions.get::<Notes>(), extensions.get::<MatchedPath>())
        {
            let _ = notes.0.route.set(route.clone());
        }
    }
}

pub async fn log(State(metrics): State<Arc<Metrics>>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = super::error::shown(req.uri().path()).into_owned();
    let query = super::error::shown(req.uri().query().unwrap_or_default()).into_owned();
    let notes = Notes::default();
    req.extensions_mut().insert(notes.clone());
    // The request's id: the one it came with, or a new one, on the request (where the
    // journal and the console read it) and on its answer. Set here rather than by
    // tower-http's two request-id layers, each a future and a service clone more per
    // request (`bench/instructions`).
    let ray_header = match req.headers().get(&super::CF_RAY) {
        Some(given) => given.clone(),
        None => {
            let made = super::new_ray();
            req.headers_mut()
                .insert(super::CF_RAY.clone(), made.clone());
            made
        }
    };
    req.extensions_mut()
        .insert(RequestId::new(ray_header.clone()));
    let ray = ray_header.to_str().unwrap_or_default().to_owned();
    // The changes a request makes are audited with it (the caller is noted once known);
    // this line reads the same ray id and path back from it. Only a method that may change
    // something runs in the audit's scope, boxed: the scope around every request, held
    // inline, made every read's future larger and dearer to poll (`bench/instructions`;
    // figures in bench/README.md, "Figures behind the code").
    let request = crate::domain::audit::Request::new(ray, method_name(&method), path);
    let mut response = if matches!(method, Method::GET | Method::HEAD | Method::OPTIONS) {
        next.run(req).await
    } else {
        Box::pin(request.clone().scope(next.run(req))).await
    };
    let (ray, path) = (request.ray.as_str(), request.uri.as_str());
    // Microseconds: most answers take less than a millisecond.
    let latency = started.elapsed();
    let latency_us = latency.as_micros() as u64;
    let status = response.status().as_u16();
    let route = notes.0.route.get().map_or("unmatched", MatchedPath::as_str);
    metrics.record(route, &method, status, latency);
    let caller = notes.0.caller.get().map_or("-", String::as_str);
    let code = response.extensions().get::<ErrorCode>().map(|c| c.0);
    match response.extensions().get::<DatabaseUnavailable>() {
        Some(DatabaseUnavailable(cause, detail)) => metrics.database.unavailable(cause, detail),
        // A success of the API's: it read (or, not a GET, wrote) the database.
        None if (200..300).contains(&status) && route.starts_with(crate::api::PREFIX) => {
            metrics.database.served(!matches!(
                method,
                Method::GET | Method::HEAD | Method::OPTIONS
            ))
        }
        None => {}
    }
    match response.extensions().get() {
        Some(InternalDetail(detail)) => tracing::error!(
            %method, path, query, caller, ray, status, code, latency_us, %detail, "internal error"
        ),
        None if status >= 500 && status != 503 => {
            tracing::error!(%method, path, query, caller, ray, status, code, latency_us, "request failed")
        }
        None => {
            tracing::info!(%method, path, query, caller, ray, status, code, latency_us, "request")
        }
    }
    if !response.headers().contains_key(&super::CF_RAY) {
        response
            .headers_mut()
            .insert(super::CF_RAY.clone(), ray_header);
    }
    response
}

/// A method's name, without an allocation for the standard ones.
fn method_name(method: &Method) -> std::borrow::Cow<'static, str> {
    let name = match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => return std::borrow::Cow::Owned(method.to_string()),
    };
    std::borrow::Cow::Borrowed(name)
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::body::Body;
    use axum::http::StatusCode;
    use axum::routing::get;
    use tower::ServiceExt;

    use crate::api::ApiError;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn an_internal_error_is_logged_with_its_request_and_kept_from_the_client() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let app = Router::new()
            .route(
                "/boom",
                get(|| async { ApiError::Internal("disk on fire".into()) }),
            )
            .route("/fine", get(|| async { "ok" }))
            .layer(axum::middleware::from_fn_with_state(
                Arc::default(),
                super::log,
            ));
        for (path, status) in [
            ("/boom", StatusCode::INTERNAL_SERVER_ERROR),
            ("/fine", StatusCode::OK),
        ] {
            let request = axum::http::Request::get(path).body(Body::empty()).unwrap();
            let response = app.clone().oneshot(request).await.unwrap();
            assert_eq!(response.status(), status);
            let body = axum::body::to_bytes(response.into_body(), 1 << 16)
                .await
                .unwrap();
            assert!(!String::from_utf8_lossy(&body).contains("disk on fire"));
        }
        let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines.len(), 2, "one line per request:\n{log}");
        assert!(
            lines[0].contains("ERROR")
                && lines[0].contains(r#"path="/boom""#)
                && lines[0].contains("status=500")
                && lines[0].contains("detail=disk on fire"),
            "{log}"
        );
        assert!(
            lines[1].contains("INFO") && lines[1].contains(r#"path="/fine""#),
            "{log}"
        );
    }
}
