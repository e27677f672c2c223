//! Shared by the tests that run the `roster` binary: the database a spawned process should
//! use. SQLite by default; a fresh PostgreSQL database when `ROSTER_TEST_DATABASE_URL` is set,
//! so that these tests, too, run on both backends.

// Each test binary that includes this module uses a different part of it.
#![allow(dead_code)]

pub mod cluster;
pub mod openapi;
pub mod raw;
pub mod results;

use sqlx::{ConnectOptions, Executor};
use tempfile::TempDir;

pub struct TestDatabase {
    args: Vec<String>,
    postgres: Option<(String, String)>,
    _dir: TempDir,
}

/// Runs `f` on a runtime of its own, from sync or async tests alike.
fn on_runtime<F: std::future::Future<Output = ()> + Send + 'static>(f: F) {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(f)
    })
    .join()
    .expect("database setup");
}

async fn admin(base: &str) -> sqlx::PgConnection {
    let options: sqlx::postgres::PgConnectOptions =
        base.parse().expect("valid ROSTER_TEST_DATABASE_URL");
    options.connect().await.expect("connect to PostgreSQL")
}

impl TestDatabase {
    /// The backend under test: PostgreSQL when `ROSTER_TEST_DATABASE_URL` is set.
    pub fn new() -> TestDatabase {
        match std::env::var("ROSTER_TEST_DATABASE_URL") {
            Err(_) => TestDatabase::sqlite(),
            Ok(base) => TestDatabase::postgres(base),
        }
    }

    /// A new SQLite file, whatever the backend under test.
    pub fn sqlite() -> TestDatabase {
        let dir = tempfile::tempdir().expect("temp dir");
        TestDatabase {
            args: vec![
                "--database".into(),
                dir.path().join("roster.db").display().to_string(),
            ],
            postgres: None,
            _dir: dir,
        }
    }

    fn postgres(base: String) -> TestDatabase {
        let name = format!("roster_mp_{}", uuid::Uuid::new_v4().simple());
        let (b, n) = (base.clone(), name.clone());
        on_runtime(async move {
            admin(&b)
                .await
                .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {n}")))
                .await
                .expect("create database");
        });
        let mut url = url::Url::parse(&base).expect("ROSTER_TEST_DATABASE_URL is a URL");
        url.set_path(&name);
        TestDatabase {
            args: vec!["--database-url".into(), url.to_string()],
            postgres: Some((base, name)),
            _dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// The arguments that point a `roster` command at this database.
    pub fn args(&self) -> &[String] {
        &self.args
    }

    pub fn is_postgres(&self) -> bool {
        self.postgres.is_some()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some((base, name)) = self.postgres.take() {
            on_runtime(async move {
                let _ = admin(&base)
                    .await
                    .execute(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .await;
            });
        }
    }
}

/// Runs a `roster` command on `db`, whatever its outcome.
pub fn try_roster(db: &TestDatabase, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_roster"))
        .args(db.args())
        .args(args)
        .output()
        .expect("roster runs")
}

/// Runs a `roster` command on `db` that must succeed.
pub fn roster(db: &TestDatabase, args: &[&str]) -> std::process::Output {
    let out = try_roster(db, args);
    assert!(
        out.status.success(),
        "roster {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn stdout(out: &std::process::Output) -> String {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .trim()
        .to_string()
}

/// Where [`Server`] asks `roster serve --ready-file` to say its port, in its directory.
const READY_FILE: &str = "ready.json";

/// A running `roster serve` on a free port, its output in a log file; killed when dropped,
/// also when the test panics.
pub struct Server {
    child: std::process::Child,
    pub addr: String,
    pub base_url: String,
    log: std::path::PathBuf,
    _dir: TempDir,
}

impl Server {
    /// Starts `roster serve` on `db` with `extra` arguments and waits until it answers HTTP.
    pub fn start(db: &TestDatabase, extra: &[&str]) -> Server {
        Server::start_with(db.args(), extra)
    }

    /// Starts `roster serve` with these database arguments (none: the default, or what
    /// `extra` says), in a directory of its own ([`Server::files`]).
    pub fn start_with(db_args: &[String], extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        // Port 0, with the port the OS gave read back from the ready file: no other process
        // can take the port between choosing it and binding it.
        let ready = dir.path().join(READY_FILE);
        let log = dir.path().join("roster.log");
        let log_file = std::fs::File::create(&log).expect("server log file");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_roster"))
            .args(db_args)
            .args(["serve", "--listen", "127.0.0.1:0", "--ready-file"])
            .arg(&ready)
            .current_dir(dir.path())
            .args(extra)
            // The server chooses colours by itself: none, as its output is a file.
            .env_remove("NO_COLOR")
            .env_remove("ROSTER_DATABASE")
            .env_remove("ROSTER_LISTEN")
            .env_remove("DATABASE_URL")
            .stdin(std::process::Stdio::null())
            .stdout(log_file.try_clone().expect("log file"))
            .stderr(log_file)
            .spawn()
            .expect("start the roster binary");
        let mut server = Server {
            child,
            base_url: String::new(),
            addr: String::new(),
            log,
            _dir: dir,
        };
        server.wait_until_ready(&ready);
        server
    }

    /// `roster serve` with these database arguments, which must exit at start (within
    /// 30 s): what it said on stderr.
    pub fn refused(db_args: &[String]) -> String {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_roster"))
            .args(db_args)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .current_dir(dir.path())
            .env_remove("ROSTER_DATABASE")
            .env_remove("DATABASE_URL")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start the roster binary");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait().expect("poll the server process") {
                break status;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("roster serve {db_args:?} still runs after 30 s");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr)
            .expect("its stderr");
        assert!(
            !status.success(),
            "roster serve {db_args:?} started: {stderr}"
        );
        stderr
    }

    /// Waits for the ready file, then until the server answers an HTTP request (any
    /// status), for at most 30 s in all.
    fn wait_until_ready(&mut self, ready: &std::path::Path) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the server process") {
                panic!("roster exited early ({status}):\n{}", self.log_text());
            }
            if self.addr.is_empty()
                && let Ok(text) = std::fs::read_to_string(ready)
            {
                let said: serde_json::Value =
                    serde_json::from_str(&text).expect("the ready file is JSON");
                self.addr = format!("127.0.0.1:{}", said["port"]);
                self.base_url = said["api"].as_str().expect("api").to_owned();
                assert_eq!(self.base_url, format!("http://{}/client/v4", self.addr));
                assert_eq!(said["pid"], self.child.id());
            }
            if !self.addr.is_empty() && self.answers() {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "roster did not answer within 30 s (ready file: {}):\n{}",
                ready.exists(),
                self.log_text()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    fn answers(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut stream) = std::net::TcpStream::connect(&self.addr) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(2)));
        let request = format!(
            "GET /client/v4/user HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        );
        let mut head = [0u8; 12];
        stream.write_all(request.as_bytes()).is_ok()
            && stream.read_exact(&mut head).is_ok()
            && head.starts_with(b"HTTP/1.1 ")
    }

    /// The files in the server's working directory, but for its log.
    pub fn files(&self) -> Vec<String> {
        let dir = self
            .log
            .parent()
            .expect("the log is in the server's directory");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .expect("the server's directory")
            .map(|e| {
                e.expect("an entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .filter(|name| name != "roster.log" && name != READY_FILE)
            .collect();
        files.sort();
        files
    }

    /// The server's log once it holds `text` (lines are written in batches, at the latest
    /// a tenth of a second after they are logged), or after 10 s without it.
    pub fn log_once_it_says(&self, text: &str) -> String {
        let asked = std::time::Instant::now();
        let mut log = self.log_text();
        while !log.contains(text) && asked.elapsed().as_secs() < 10 {
            std::thread::sleep(std::time::Duration::from_millis(20));
            log = self.log_text();
        }
        log
    }

    /// The server's log, its last 100 lines.
    pub fn log_text(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(100)..].join("\n")
    }

    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> (u16, serde_json::Value) {
        self.send("GET", path, headers, None)
    }

    /// A request made with curl, as a user at a shell would: (status, JSON body).
    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> (u16, serde_json::Value) {
        let mut args: Vec<String> = ["-s", "-X", method, "-w", "\n%{http_code}"]
            .map(String::from)
            .to_vec();
        if let Some(body) = body {
            args.extend(["-H", "content-type: application/json", "-d", body].map(String::from));
        }
        for (k, v) in headers {
            args.extend(["-H".to_string(), format!("{k}: {v}")]);
        }
        args.push(format!("{}{path}", self.base_url));
        let out = std::process::Command::new("curl")
            .args(&args)
            .output()
            .expect("curl runs");
        let text = String::from_utf8(out.stdout).expect("UTF-8 answer");
        let (body, code) = text.rsplit_once('\n').expect("status line");
        (
            code.parse().expect("status"),
            serde_json::from_str(body).expect("JSON body"),
        )
    }

    /// SIGKILL: the process dies at once, wherever it was.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }

    /// SIGTERM, and the exit status of the graceful shutdown.
    pub fn stop(mut self) -> std::process::ExitStatus {
        std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the server process") {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "server ignored SIGTERM"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The crate's directory (where `tests/` and `Cargo.toml` are).
pub fn manifest_dir() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Cargo's target directory, where the tests install what they run (SDKs, browsers' tools).
pub fn target_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .map(|p| {
            if p.is_absolute() {
                p
            } else {
                manifest_dir().join(p)
            }
        })
        .unwrap_or_else(|| manifest_dir().join("target"))
}

/// Runs `cmd` to completion, failing the test with its output if it cannot start or fails.
pub fn run(cmd: &mut std::process::Command, what: &str) -> std::process::Output {
    let output = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {:?}: {e}", cmd.get_program()));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}
