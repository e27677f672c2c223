//! `TestServer`: the real router on a fresh SQLite file, served over TCP on a free port,
//! with typed helpers that read like the API's user. Every response any test receives is
//! validated against the OpenAPI contract (see `schema`).

use std::net::SocketAddr;
use std::sync::Arc;

use reqwest::Method;
use roster::api::Limits;
use roster::auth::{generate_api_key, generate_token, hash_secret};
use roster::domain::types::now;
use roster::domain::{Email, Id, User, catalog, tokens};
use roster::store::{DEFAULT_CREDENTIAL_TTL, PgStore, SqliteStore, Store};
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::schema;

pub const DEMO_ACCOUNT: &str = "023e105f4ecef8ad9ca31a8372d0c353";
pub const DEMO_MEMBERSHIP: &str = "4536bcfad5faccb111b47003c79917fa";
pub const SUPER_ADMIN: &str = catalog::SUPER_ADMINISTRATOR;
/// The built-in "DNS" role: what the demo user (no Super Administrator) may give.
pub const DNS_ROLE: &str = "87e7860bc4c445faba075646dac38cca";

pub struct TestServer {
    pub addr: SocketAddr,
    pub store: Arc<dyn Store>,
    http: reqwest::Client,
    _dir: TempDir,
    /// On PostgreSQL, the schema this server's database is, dropped with the server.
    pub schema: Option<Schema>,
}

#[derive(Clone, Debug)]
pub struct Creds {
    pub email: String,
    pub key: String,
}

impl Creds {
    pub fn demo() -> Creds {
        Creds {
            email: "user@example.com".into(),
            key: "144c9defac04969c7bfad8efaa8ea194".into(),
        }
    }
}

impl TestServer {
    /// A fresh, empty database: a SQLite file in a temporary directory, or, when
    /// `ROSTER_TEST_DATABASE_URL` is set, a new schema of that PostgreSQL database.
    pub async fn start() -> TestServer {
        TestServer::start_with(&Limits::default()).await
    }

    /// A fresh server with these limits (rate, body size, timeouts).
    pub async fn start_with(limits: &Limits) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        TestServer::start_on(listener, addr, limits, false).await
    }

    /// A fresh server that treats connections as `connections` says (how many, how long
    /// they may be idle).
    pub async fn start_with_connections(connections: roster::server::Connections) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        TestServer::serve_on(listener, addr, &Limits::default(), false, connections).await
    }

    /// A server with the emulator's control plane, seeded with the demo data, as
    /// `roster serve --demo` starts on a new database.
    pub async fn emulator() -> TestServer {
        TestServer::emulator_with(&Limits::default()).await
    }

    pub async fn emulator_with(limits: &Limits) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        TestServer::start_on(listener, addr, limits, true).await
    }

    /// A fresh server listening on every IPv6 and IPv4 address (`[::]`), as a dual-stack
    /// deployment does, reached over IPv4: it sees its clients as IPv4-mapped addresses.
    /// `None` where the machine has no IPv6.
    pub async fn start_dual_stack() -> TestServer {
        let listener = tokio::net::TcpListener::bind("[::]:0")
            .await
            .expect("an IPv6 listener on [::] (the machine needs IPv6, loopback at least)");
        let port = listener.local_addr().expect("addr").port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        TestServer::start_on(listener, addr, &Limits::default(), false).await
    }

    async fn start_on(
        listener: tokio::net::TcpListener,
        addr: SocketAddr,
        limits: &Limits,
        emulator: bool,
    ) -> TestServer {
        let connections = roster::server::Connections::default();
        TestServer::serve_on(listener, addr, limits, emulator, connections).await
    }

    async fn serve_on(
        listener: tokio::net::TcpListener,
        addr: SocketAddr,
        limits: &Limits,
        emulator: bool,
        connections: roster::server::Connections,
    ) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let (store, schema): (Arc<dyn Store>, _) = match std::env::var("ROSTER_TEST_DATABASE_URL") {
            Ok(url) => {
                let (store, schema) = fresh_postgres_schema(&url).await;
                (Arc::new(store), Some(schema))
            }
            Err(_) => (
                Arc::new(
                    SqliteStore::open(&dir.path().join("roster.db"), DEFAULT_CREDENTIAL_TTL)
                        .await
                        .expect("open store"),
                ),
                None,
            ),
        };
        let emulator = match emulator {
            true => {
                let demo = roster::fixture::parse(roster::fixture::DEMO).expect("demo parses");
                let (seed, _) = roster::fixture::seeded_state(&[&demo])
                    .await
                    .expect("the demo seeds");
                store
                    .import(&seed, true, &Default::default())
                    .await
                    .expect("the seed imports");
                Some(Arc::new(roster::api::emulator::Emulator::new(seed)))
            }
            false => None,
        };
        let app = roster::api::router_with(store.clone(), limits, emulator);
        tokio::spawn(roster::server::serve(
            listener,
            app,
            connections,
            std::future::pending(),
        ));
        TestServer {
            addr,
            store,
            http: reqwest::Client::new(),
            _dir: dir,
            schema,
        }
    }

    /// A connection of the test's own to this server's database, to change it behind the
    /// server's back (a lock held, a trigger that refuses a write).
    pub async fn database(&self) -> Database {
        match &self.schema {
            Some(schema) => {
                let options: sqlx::postgres::PgConnectOptions =
                    schema.url.parse().expect("valid ROSTER_TEST_DATABASE_URL");
                let options = options.options([("search_path", schema.name.as_str())]);
                Database::Postgres(
                    sqlx::ConnectOptions::connect(&options)
                        .await
                        .expect("connect to PostgreSQL"),
                )
            }
            None => Database::Sqlite(
                rusqlite::Connection::open(self._dir.path().join("roster.db"))
                    .expect("open the SQLite file"),
            ),
        }
    }

    pub async fn demo() -> TestServer {
        let server = TestServer::start().await;
        let demo = roster::fixture::parse(roster::fixture::DEMO).expect("demo parses");
        roster::fixture::load(server.store.as_ref(), &demo)
            .await
            .expect("demo loads");
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}/client/v4{}", self.addr, path)
    }

    /// A user made through the operator surface, with two-factor authentication on.
    pub async fn user(&self, email: &str) -> Creds {
        self.user_with(email, Some("Test"), Some("User"), true)
            .await
    }

    pub async fn user_with(
        &self,
        email: &str,
        first: Option<&str>,
        last: Option<&str>,
        two_factor: bool,
    ) -> Creds {
        let key = generate_api_key();
        let at = now();
        let user = User {
            id: Id::generate(),
            email: Email::parse(email, "email").expect("valid email"),
            first_name: first.map(str::to_string),
            last_name: last.map(str::to_string),
            telephone: None,
            country: None,
            zipcode: None,
            two_factor_authentication_enabled: two_factor,
            created_on: at.clone(),
            modified_on: at,
        };
        self.store
            .insert_user(&user, &hash_secret(&key))
            .await
            .expect("insert user");
        Creds {
            email: email.to_string(),
            key,
        }
    }

    /// An API token for `creds`' user holding the named permission groups.
    pub async fn token(&self, creds: &Creds, groups: &[&str]) -> String {
        let email = Email::parse(&creds.email, "email").unwrap();
        let (user, _) = self
            .store
            .user_by_email(email.folded())
            .await
            .unwrap()
            .expect("user exists");
        let secret = generate_token();
        let groups = groups
            .iter()
            .map(|n| {
                catalog::permission_group_named(n)
                    .expect("known group")
                    .id
                    .clone()
            })
            .collect();
        let token = tokens::simple_token(&user.id, "test".into(), groups, None).unwrap();
        self.store
            .insert_token(&token, &hash_secret(&secret), None)
            .await
            .unwrap();
        secret
    }

    pub fn anonymous(&self) -> Client {
        self.client(Vec::new())
    }

    pub fn as_user(&self, creds: &Creds) -> Client {
        self.client(vec![
            ("X-Auth-Email".into(), creds.email.clone()),
            ("X-Auth-Key".into(), creds.key.clone()),
        ])
    }

    pub fn with_token(&self, token: &str) -> Client {
        self.client(vec![("Authorization".into(), format!("Bearer {token}"))])
    }

    pub fn with_headers(&self, headers: &[(&str, &str)]) -> Client {
        self.client(
            headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn client(&self, headers: Vec<(String, String)>) -> Client {
        Client {
            base: self.url(""),
            http: self.http.clone(),
            headers,
            api: true,
        }
    }

    /// A client for any path of the server (`/_roster/reset`, `/metrics`, or the API's
    /// under its full path) whose answers are not held to the API's contract: the control
    /// plane's are Roster's own, and an injected fault answers what it was told to. Its
    /// requests that change something say `Content-Type: application/json` even without a
    /// body, as the control plane requires.
    pub fn raw(&self, headers: &[(&str, &str)]) -> Client {
        Client {
            base: format!("http://{}", self.addr),
            http: self.http.clone(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            api: false,
        }
    }

    /// A new account owned (as Super Administrator) by `owner`.
    pub async fn account(&self, owner: &Creds, name: &str) -> String {
        let r = self
            .as_user(owner)
            .post("/accounts", json!({"name": name}))
            .await;
        r.result()["id"].as_str().expect("account id").to_string()
    }

    /// Invites `email` with `roles` (ids) and returns the new member's id.
    pub async fn invite(
        &self,
        admin: &Creds,
        account: &str,
        email: &str,
        roles: &[&str],
    ) -> String {
        let r = self
            .as_user(admin)
            .post(
                &format!("/accounts/{account}/members"),
                json!({"email": email, "roles": roles}),
            )
            .await;
        r.result()["id"].as_str().expect("member id").to_string()
    }

    /// A resource group over the whole account (`name`: absent when `None`); its id.
    pub async fn whole_account_group(
        &self,
        admin: &Creds,
        account: &str,
        name: Option<&str>,
    ) -> String {
        let mut body = json!({"scope": {"key": format!("com.cloudflare.api.account.{account}"), "objects": [{"key": "*"}]}});
        if let Some(name) = name {
            body["name"] = json!(name);
        }
        let r = self
            .as_user(admin)
            .post(&format!("/accounts/{account}/iam/resource_groups"), body)
            .await;
        r.result()["id"].as_str().expect("group id").to_string()
    }

    /// Invites `who` and has them accept: a full accepted member.
    /// Makes `account` enterprise, as an operator does (a fixture, the CLI): through the
    /// API a user creates standard accounts only.
    pub async fn make_enterprise(&self, account: &str) {
        use roster::domain::{AccountType, Change, Focus};
        let id = Id::parse(account).expect("an account id");
        self.store
            .write_account(&id, &Focus::default(), &|state| {
                let mut account = state.account.clone();
                account.account_type = AccountType::Enterprise;
                Ok(vec![Change::PutAccount(account)])
            })
            .await
            .expect("the account exists");
    }

    pub async fn add_member(
        &self,
        admin: &Creds,
        account: &str,
        who: &Creds,
        roles: &[&str],
    ) -> String {
        let id = self.invite(admin, account, &who.email, roles).await;
        self.as_user(who)
            .put(&format!("/memberships/{id}"), json!({"status": "accepted"}))
            .await
            .result();
        id
    }
}

/// See [`TestServer::database`].
pub enum Database {
    Sqlite(rusqlite::Connection),
    Postgres(sqlx::PgConnection),
}

impl Database {
    /// Runs one statement: `sqlite` or `postgres`, as the database is.
    pub async fn execute(&mut self, sqlite: &str, postgres: &str) {
        match self {
            Database::Sqlite(conn) => {
                conn.execute_batch(sqlite).expect(sqlite);
            }
            Database::Postgres(conn) => {
                use sqlx::Executor;
                conn.execute(sqlx::AssertSqlSafe(postgres.to_string()))
                    .await
                    .expect(postgres);
            }
        }
    }
}

/// A PostgreSQL schema a test made, and the database it is in.
pub struct Schema {
    pub url: String,
    pub name: String,
}

impl Drop for Schema {
    /// Each run cleans up exactly what it made (on a thread of its own: drop cannot wait on
    /// the test's runtime).
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(async move {
                    use sqlx::Executor;
                    let options: sqlx::postgres::PgConnectOptions = url.parse().ok()?;
                    let mut admin = sqlx::ConnectOptions::connect(&options).await.ok()?;
                    // Work the server left running (a token's use being recorded) may hold
                    // a transaction open in the schema, and cannot end it: its runtime is
                    // the test's, blocked in this drop. Its sessions go first, or the drop
                    // would wait for them forever. Only those: a lock of this database
                    // (relation ids repeat across databases) held by a session not running
                    // a statement; a statement running finishes by itself, and a test
                    // running beside this one was seen killed (57P01) by a wider match.
                    let stuck = format!(
                        "SELECT pg_terminate_backend(l.pid) FROM pg_locks l \
                         JOIN pg_class c ON c.oid = l.relation \
                         JOIN pg_namespace n ON n.oid = c.relnamespace \
                         JOIN pg_stat_activity a ON a.pid = l.pid \
                         WHERE n.nspname = '{name}' AND l.pid <> pg_backend_pid() \
                         AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                         AND a.state <> 'active'"
                    );
                    admin.execute(sqlx::AssertSqlSafe(stuck)).await.ok()?;
                    let drop = format!("DROP SCHEMA IF EXISTS {name} CASCADE");
                    admin.execute(sqlx::AssertSqlSafe(drop)).await.ok()
                })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("could not drop the test schema {}", self.name);
        }
    }
}

/// A schema of its own for one test, so tests run in parallel on one PostgreSQL database:
/// `roster_test_<id>`, dropped when the returned [`Schema`] is.
pub async fn fresh_postgres_schema(url: &str) -> (PgStore, Schema) {
    use sqlx::Executor;
    let schema = format!("roster_test_{}", Id::generate());
    let options: sqlx::postgres::PgConnectOptions =
        url.parse().expect("valid ROSTER_TEST_DATABASE_URL");
    let mut admin = sqlx::ConnectOptions::connect(&options)
        .await
        .expect("connect to PostgreSQL");
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .await
        .expect("create schema");
    let store = PgStore::open_with(
        options.options([("search_path", schema.as_str())]),
        DEFAULT_CREDENTIAL_TTL,
    )
    .await
    .expect("open PostgreSQL store");
    (
        store,
        Schema {
            url: url.to_string(),
            name: schema,
        },
    )
}

#[derive(Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
    headers: Vec<(String, String)>,
    /// Whether answers are checked against the API's contract.
    api: bool,
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Resp {
    /// The result of a successful response; panics with the body otherwise.
    pub fn result(&self) -> &Value {
        assert_eq!(
            self.status, 200,
            "expected 200, got {}: {}",
            self.status, self.body
        );
        assert_eq!(self.body["success"], true, "{}", self.body);
        &self.body["result"]
    }

    /// The first error's code, after checking the failure envelope.
    pub fn error_code(&self) -> i64 {
        assert_eq!(
            self.body["success"], false,
            "expected a failure: {}",
            self.body
        );
        assert!(self.body["result"].is_null(), "{}", self.body);
        self.body["errors"][0]["code"].as_i64().expect("error code")
    }

    pub fn error_message(&self) -> String {
        self.body["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Asserts an error status and code together.
    pub fn expect_error(&self, status: u16, code: i64) -> &Self {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.error_code(), code, "{}", self.body);
        self
    }
}

impl Client {
    pub async fn get(&self, path: &str) -> Resp {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.send(Method::POST, path, Some(body.to_string())).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Resp {
        self.send(Method::PUT, path, Some(body.to_string())).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Resp {
        self.send(Method::PATCH, path, Some(body.to_string())).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.send(Method::DELETE, path, None).await
    }

    /// Sends `body` as is (it need not be valid JSON).
    pub async fn send(&self, method: Method, path: &str, body: Option<String>) -> Resp {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{}", self.base, path));
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        if let Some(body) = body {
            req = req.header("content-type", "application/json").body(body);
        } else if !self.api && !method.is_safe() {
            // The control plane takes a change only when it says JSON, body or not.
            req = req.header("content-type", "application/json");
        }
        let res = req.send().await.expect("request sent");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.expect("body read");
        let body: Value = match self.api {
            true => serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{method} {path}: body is not JSON ({e}): {text}")),
            // `/metrics` answers text.
            false => serde_json::from_str(&text).unwrap_or(Value::String(text)),
        };
        assert!(
            headers.contains_key("cf-ray"),
            "{method} {path}: no cf-ray header"
        );
        if !self.api {
            return Resp {
                status,
                headers,
                body,
            };
        }
        assert!(status < 500, "{method} {path} answered {status}: {body}");
        schema::check(&method, path, status, &body);
        Resp {
            status,
            headers,
            body,
        }
    }
}
