//! `cargo bench`: request throughput and latency of the real router over TCP, on SQLite
//! (and on PostgreSQL when `ROSTER_TEST_DATABASE_URL` is set). Prints figures; asserts
//! nothing about time. Each scenario runs a fixed number of requests from a fixed number of
//! concurrent clients against a fresh database holding one account with `MEMBERS` members.

use std::sync::Arc;
use std::time::{Duration, Instant};

use roster::store::{DEFAULT_CREDENTIAL_TTL, PgStore, SqliteStore, Store};
use serde_json::{Value, json};

const MEMBERS: usize = 500;
const CLIENTS: usize = 16;
const REQUESTS: usize = 2_000;
const ACCOUNT: &str = "0123456789abcdef0123456789abcdef";
const KEY: &str = "0000000000000000000000000000000000001";

fn fixture() -> Value {
    let members: Vec<Value> = (0..MEMBERS)
        .map(|i| json!({"email": format!("member{i}@example.com"), "roles": ["DNS"], "status": if i % 3 == 0 { "pending" } else { "accepted" }}))
        .chain([json!({"email": "admin@example.com", "roles": ["Super Administrator - All Privileges"]})])
        .collect();
    json!({
        "users": [{"email": "admin@example.com", "api_key": KEY, "two_factor_authentication_enabled": true}],
        "accounts": [{"id": ACCOUNT, "name": "Bench", "members": members}],
    })
}

async fn serve(store: Arc<dyn Store>) -> String {
    let fixture = roster::fixture::parse(&fixture().to_string()).expect("fixture");
    roster::fixture::load(store.as_ref(), &fixture)
        .await
        .expect("seed");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/client/v4", listener.local_addr().unwrap());
    // Rate limiting off: one user makes every request here.
    let limits = roster::api::Limits {
        rate: None,
        ..Default::default()
    };
    let app = roster::api::router(store, &limits);
    tokio::spawn(roster::server::serve(
        listener,
        app,
        roster::server::Connections::default(),
        std::future::pending(),
    ));
    base
}

/// Runs `REQUESTS` requests made by `request(i)` from `CLIENTS` concurrent clients.
async fn scenario<F>(name: &'static str, base: &str, request: F)
where
    F: Fn(&reqwest::Client, &str, usize) -> reqwest::RequestBuilder + Send + Sync + 'static,
{
    let request = Arc::new(request);
    let http = reqwest::Client::new();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let (http, base, request) = (http.clone(), base.to_string(), request.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            for i in (c..REQUESTS).step_by(CLIENTS) {
                let t = Instant::now();
                let res = request(&http, &base, i)
                    .header("X-Auth-Email", "admin@example.com")
                    .header("X-Auth-Key", KEY)
                    .send()
                    .await
                    .expect("request");
                assert!(res.status().is_success(), "{name}: {}", res.status());
                res.bytes().await.expect("body");
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut latencies: Vec<Duration> = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "{name:<40} {:>8.0} req/s   p50 {:>7.2} ms   p99 {:>7.2} ms",
        latencies.len() as f64 / elapsed.as_secs_f64(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
    );
}

async fn run(backend: &str, store: Arc<dyn Store>) {
    println!("-- {backend}: {MEMBERS} members, {CLIENTS} clients, {REQUESTS} requests each");
    let base = serve(store).await;
    scenario("GET /memberships", &base, |h, b, _| {
        h.get(format!("{b}/memberships"))
    })
    .await;
    scenario("GET members (page of 50, by email)", &base, |h, b, i| {
        h.get(format!(
            "{b}/accounts/{ACCOUNT}/members?per_page=50&order=user.email&page={}",
            i % 11 + 1
        ))
    })
    .await;
    scenario("POST invite (distinct emails)", &base, |h, b, i| {
        h.post(format!("{b}/accounts/{ACCOUNT}/members"))
            .json(&json!({"email": format!("new{i}@bench.example"), "roles": ["87e7860bc4c445faba075646dac38cca"]}))
    })
    .await;
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&dir.path().join("bench.db"), DEFAULT_CREDENTIAL_TTL)
        .await
        .expect("sqlite");
    run("SQLite", Arc::new(sqlite)).await;
    if let Ok(url) = std::env::var("ROSTER_TEST_DATABASE_URL") {
        let schema = format!("roster_bench_{}", uuid::Uuid::new_v4().simple());
        let options: sqlx::postgres::PgConnectOptions = url.parse().expect("URL");
        let mut admin = sqlx::ConnectOptions::connect(&options)
            .await
            .expect("connect");
        sqlx::Executor::execute(
            &mut admin,
            sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")),
        )
        .await
        .expect("schema");
        let pg = PgStore::open_with(
            options.clone().options([("search_path", schema.as_str())]),
            DEFAULT_CREDENTIAL_TTL,
        )
        .await
        .expect("postgres");
        run("PostgreSQL", Arc::new(pg)).await;
        sqlx::Executor::execute(
            &mut admin,
            sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")),
        )
        .await
        .expect("drop schema");
    }
}
