//! The console's calls to the API: a request built as a client would send it (path, query,
//! JSON body), handed to the API's router in process with the signed-in caller on it
//! ([`SignedIn`]) instead of credentials. Each call that may change something runs as its
//! own audited request (the console request's ray id, the API method and path), so the
//! audit log reads as if the signed-in user had called the API, which they did.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use serde::Deserialize;
use serde_json::Value;
use tower::ServiceExt;

use crate::api::SignedIn;
use crate::domain::Caller;

/// The API, as one signed-in caller calls it.
#[derive(Clone)]
pub struct Api {
    router: Router,
    caller: Arc<Caller>,
    connect: Option<ConnectInfo<SocketAddr>>,
    ray: String,
}

/// The v4 envelope, as the console reads it.
#[derive(Debug, Deserialize)]
pub struct Envelope {
    pub success: bool,
    #[serde(default)]
    pub errors: Vec<Message>,
    #[serde(default)]
    pub result: Value,
    #[serde(default)]
    pub result_info: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Message {
    pub code: u32,
    pub message: String,
}

/// A call the API refused (or could not answer): its status and errors, as shown.
#[derive(Debug, Clone)]
pub struct Refused {
    pub status: StatusCode,
    pub errors: Vec<Message>,
}

impl Refused {
    /// An API error as a page shows it: the status and errors it answers with.
    pub async fn of(error: crate::api::ApiError) -> Refused {
        use axum::response::IntoResponse;
        let response = error.into_response();
        let status = response.status();
        let errors = match axum::body::to_bytes(response.into_body(), 64 * 1024).await {
            Ok(body) => serde_json::from_slice::<Envelope>(&body)
                .map(|e| e.errors)
                .unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        Refused { status, errors }
    }

    /// One line for a page: each error's message with its code.
    pub fn text(&self) -> String {
        if self.errors.is_empty() {
            return format!("The API answered {}", self.status);
        }
        self.errors
            .iter()
            .map(|e| format!("{} ({})", e.message, e.code))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl Api {
    pub fn new(
        router: Router,
        caller: Arc<Caller>,
        connect: Option<ConnectInfo<SocketAddr>>,
        ray: String,
    ) -> Api {
        Api {
            router,
            caller,
            connect,
            ray,
        }
    }

    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    pub async fn get(&self, target: &str) -> Result<Envelope, Refused> {
        self.call(Method::GET, target, None).await
    }

    /// `method` on `target` (a path under `/client/v4`, or the emulator's `/_roster/...`,
    /// with its query), with a JSON body.
    pub async fn call(
        &self,
        method: Method,
        target: &str,
        body: Option<&Value>,
    ) -> Result<Envelope, Refused> {
        // The emulator's control plane is Roster's own, beside the API, not under it.
        let uri = if target.starts_with("/_roster/") {
            target.to_string()
        } else {
            format!("{}{target}", crate::api::PREFIX)
        };
        let mut request = Request::builder().method(method.clone()).uri(&uri);
        if method != Method::GET {
            // The control plane takes nothing else, with a body or without.
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let body = body.map_or_else(Body::empty, |json| Body::from(json.to_string()));
        let mut request = request.body(body).map_err(|_| Refused {
            status: StatusCode::BAD_REQUEST,
            errors: vec![],
        })?;
        request
            .extensions_mut()
            .insert(SignedIn(Arc::clone(&self.caller)));
        if let Some(connect) = self.connect {
            request.extensions_mut().insert(connect);
        }
        let answer = self.router.clone().oneshot(request);
        let response = if method == Method::GET {
            answer.await
        } else {
            let name: Cow<'static, str> = Cow::Owned(method.to_string());
            crate::domain::audit::Request::new(self.ray.clone(), name, uri)
                .scope(answer)
                .await
        };
        let response = response.unwrap_or_else(|never| match never {});
        let status = response.status();
        if let Some(detail) = response.extensions().get::<crate::api::InternalDetail>() {
            tracing::error!(detail = %detail.0, "the API failed a console call");
        }
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .map_err(|_| Refused {
                status,
                errors: vec![],
            })?;
        let envelope: Envelope = serde_json::from_slice(&bytes).map_err(|_| Refused {
            status,
            errors: vec![],
        })?;
        if envelope.success {
            Ok(envelope)
        } else {
            Err(Refused {
                status,
                errors: envelope.errors,
            })
        }
    }
}
