//! The floor Roster is measured against: an axum server that does nothing but answer
//! `/bytes/{n}` with a JSON body of exactly `n` bytes. It takes the same requests (method,
//! headers, body) as the scenario it stands in for, so the difference to Roster is what
//! Roster does per request: authentication, queries, domain rules and rendering.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::any;
use clap::Parser;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:18081")]
    listen: SocketAddr,
}

/// The body is serialized on every request, as Roster's are, so the baseline pays for
/// building its JSON too; the padding keeps the size exact.
async fn bytes(Path(n): Path<usize>, _body: Bytes) -> impl IntoResponse {
    let frame = serde_json::to_vec(&serde_json::json!({"success": true, "result": ""}))
        .expect("a fixed value serializes");
    let pad = n.saturating_sub(frame.len());
    let body = serde_json::to_vec(&serde_json::json!({"success": true, "result": "x".repeat(pad)}))
        .expect("a string serializes");
    ([(header::CONTENT_TYPE, "application/json")], body)
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let app = Router::new().route("/bytes/{n}", any(bytes));
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .expect("bind the baseline's address");
    axum::serve(listener, app).await.expect("serve");
}
