//! The console's static files, compiled into the binary and served under names that carry
//! a digest of their content, so a browser may keep each for a year and a new build's
//! pages name new files. htmx 2.0.11 is vendored as published on npm (`htmx.org`, 0BSD;
//! its licence beside it): nothing is fetched at run time.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

struct Asset {
    /// The name pages link to: `stem-<digest>.ext`.
    name: String,
    content_type: &'static str,
    body: &'static [u8],
}

fn asset(stem: &str, ext: &str, content_type: &'static str, body: &'static [u8]) -> Asset {
    let digest = hex::encode(&Sha256::digest(body)[..6]);
    Asset {
        name: format!("{stem}-{digest}.{ext}"),
        content_type,
        body,
    }
}

static ASSETS: LazyLock<[Asset; 3]> = LazyLock::new(|| {
    [
        asset(
            "htmx",
            "js",
            "text/javascript; charset=utf-8",
            include_bytes!("../../assets/console/htmx-2.0.11.min.js"),
        ),
        asset(
            "console",
            "css",
            "text/css; charset=utf-8",
            include_bytes!("../../assets/console/console.css"),
        ),
        asset(
            "console",
            "js",
            "text/javascript; charset=utf-8",
            include_bytes!("../../assets/console/console.js"),
        ),
    ]
});

/// The paths pages link to, by role.
pub struct Links {
    pub htmx: String,
    pub css: String,
    pub js: String,
}

pub fn links() -> Links {
    let path = |i: usize| format!("/console/assets/{}", ASSETS[i].name);
    Links {
        htmx: path(0),
        css: path(1),
        js: path(2),
    }
}

pub async fn serve(Path(name): Path<String>) -> Response {
    let Some(found) = ASSETS.iter().find(|a| a.name == name) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(found.content_type),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        found.body,
    )
        .into_response()
}
