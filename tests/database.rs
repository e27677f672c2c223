//! The server when its database cannot serve: every connection busy, or the database
//! gone. Such an answer is the server's state, not a bug: 503 in the envelope with
//! `Retry-After` (the SDKs retry it), never a 500 and never a hang past the wait, one log
//! line when it starts and one when it ends, and `/_roster/health` saying why.

mod common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Server, TestDatabase};

/// A GET with the demo's key, answered as (status, head, body).
fn demo_get(addr: &str, path: &str) -> (u16, String, String) {
    request(addr, "GET", path, None, "")
}

/// A request with the demo user's key (or, given, a bearer token) and a JSON body,
/// answered as (status, head in lower case, body).
fn request(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, String, String) {
    let auth = match token {
        Some(token) => format!("Authorization: Bearer {token}\r\n"),
        None => {
            "X-Auth-Email: user@example.com\r\nX-Auth-Key: 144c9defac04969c7bfad8efaa8ea194\r\n"
                .to_string()
        }
    };
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    (
        head[9..12].parse().unwrap(),
        head.to_ascii_lowercase(),
        body.to_owned(),
    )
}

#[test]
#[ignore = "needs PostgreSQL: set ROSTER_TEST_DATABASE_URL (.ci/run does)"]
fn every_connection_busy_is_a_503_with_retry_after_never_a_500() {
    let db = TestDatabase::new();
    assert!(
        db.is_postgres(),
        "ROSTER_TEST_DATABASE_URL names the server"
    );
    let server = Server::start(
        &db,
        &[
            "--demo",
            "--credential-cache",
            "0",
            "--rate-limit",
            "0",
            "--database-pool-size",
            "2",
            "--database-pool-wait",
            "1",
        ],
    );
    let (status, _, _) = demo_get(&server.addr, "/client/v4/user");
    assert_eq!(status, 200);

    // Another client of the database holds every row of users: each request that reads
    // them holds its connection until it lets go, and the pool (one connection for
    // transactions, one for single reads) runs dry.
    let url = &db.args()[1];
    let mut holder = Command::new("psql")
        .args([url.as_str(), "-q", "-v", "ON_ERROR_STOP=1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("psql runs");
    let mut sql = holder.stdin.take().unwrap();
    writeln!(
        sql,
        "BEGIN; LOCK TABLE users IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(4); ROLLBACK;"
    )
    .unwrap();
    drop(sql);
    std::thread::sleep(Duration::from_millis(500));
    let (answers, health): (Vec<(u16, String, String)>, _) = std::thread::scope(|s| {
        let asks: Vec<_> = (0..6)
            .map(|_| s.spawn(|| demo_get(&server.addr, "/client/v4/user")))
            .collect();
        let health = s.spawn(|| {
            std::thread::sleep(Duration::from_millis(200));
            demo_get(&server.addr, "/_roster/health")
        });
        (
            asks.into_iter().map(|a| a.join().unwrap()).collect(),
            health.join().unwrap(),
        )
    });
    assert_eq!(health.0, 503, "{}", health.2);
    assert!(health.2.contains("Service unavailable: "), "{}", health.2);
    assert!(holder.wait().unwrap().success());
    let statuses: Vec<u16> = answers.iter().map(|a| a.0).collect();
    assert!(
        statuses.iter().all(|s| [200, 503].contains(s)),
        "{statuses:?}"
    );
    let (_, head, body) = answers
        .iter()
        .find(|a| a.0 == 503)
        .unwrap_or_else(|| panic!("no request waited past the pool's wait: {statuses:?}"));
    assert!(head.contains("\r\nretry-after: 5"), "{head}");
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["success"], false);
    assert_eq!(body["result"], serde_json::Value::Null);
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.starts_with("Service unavailable: no database connection came free in time"),
        "{message}"
    );

    // The lock is gone: served again, and said so once.
    let (status, _, _) = demo_get(&server.addr, "/client/v4/user");
    assert_eq!(status, 200);
    let log = server.log_once_it_says("database serving again");
    assert_eq!(log.matches("database unavailable").count(), 1, "{log}");
    assert_eq!(log.matches("database serving again").count(), 1, "{log}");
    assert!(!log.contains("internal error"), "{log}");
}

/// A tmpfs of a few megabytes, unmounted when dropped (mounting needs root).
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(megabytes: u32) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("mount runs");
        assert!(
            out.status.success(),
            "mounting a tmpfs (this test needs root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk { dir }
    }

    /// Writes a file until the disk is full; removing it gives the room back.
    fn fill(&self) -> std::path::PathBuf {
        let filler = self.dir.path().join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 4096];
        while file.write_all(&block).is_ok() {}
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// A demo invitation of `email`, answered as (status, head, body).
fn invite(addr: &str, email: &str) -> (u16, String, String) {
    let body = format!(r#"{{"email": "{email}", "roles": ["87e7860bc4c445faba075646dac38cca"]}}"#);
    request(
        addr,
        "POST",
        "/client/v4/accounts/023e105f4ecef8ad9ca31a8372d0c353/members",
        None,
        &body,
    )
}

/// SQLite on a full disk: writes are refused 503 (the disk is full) and change nothing,
/// reads go on, nothing acknowledged is lost, and writes resume once there is room. The
/// log says it once each way, however many requests met it.
#[test]
#[ignore = "needs root, to mount a small tmpfs (.ci/run runs it)"]
fn a_full_disk_refuses_writes_with_503_while_reads_go_on() {
    let disk = SmallDisk::mount(3);
    let database = disk.dir.path().join("roster.db");
    let server = Server::start_with(
        &["--database".into(), database.display().to_string()],
        &["--demo", "--rate-limit", "0"],
    );
    let mut acknowledged = Vec::new();
    for i in 0..3 {
        let email = format!("before{i}@example.com");
        assert_eq!(invite(&server.addr, &email).0, 200);
        acknowledged.push(email);
    }
    let filler = disk.fill();
    let mut refused = 0;
    for i in 0..20 {
        let email = format!("full{i}@example.com");
        let (status, head, body) = invite(&server.addr, &email);
        match status {
            // A page of the file may still have had room.
            200 => acknowledged.push(email),
            503 => {
                refused += 1;
                assert!(head.contains("\r\nretry-after: 5"), "{head}");
                assert!(
                    body.contains("Service unavailable: the disk is full"),
                    "{body}"
                );
            }
            other => panic!("{other}: {body}"),
        }
        // Reads go on.
        assert_eq!(demo_get(&server.addr, "/client/v4/memberships").0, 200);
    }
    assert!(
        refused >= 15,
        "{refused} of 20 writes refused on a full disk"
    );
    std::fs::remove_file(filler).unwrap();
    for i in 0..3 {
        let email = format!("after{i}@example.com");
        assert_eq!(invite(&server.addr, &email).0, 200, "writes resume");
        acknowledged.push(email);
    }
    let (_, _, members) = demo_get(
        &server.addr,
        "/client/v4/accounts/023e105f4ecef8ad9ca31a8372d0c353/members?per_page=50",
    );
    for email in &acknowledged {
        assert!(
            members.contains(email.as_str()),
            "{email} was acknowledged and lost"
        );
    }
    for i in 0..20 {
        let email = format!("full{i}@example.com");
        assert_eq!(
            members.contains(email.as_str()),
            acknowledged.contains(&email),
            "{email}: refused but kept, or kept but refused"
        );
    }
    let log = server.log_once_it_says("database serving again");
    assert_eq!(log.matches("database unavailable").count(), 1, "{log}");
    assert_eq!(log.matches("database serving again").count(), 1, "{log}");
}

/// [`request`]'s status and body.
fn send(addr: &str, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, String) {
    let (status, _, body) = request(addr, method, path, token, body);
    (status, body)
}

/// pgbouncer 1.18 (Debian's) in transaction mode in front of the test server, on a port
/// of its own; stopped when dropped. Two server connections for all its clients: each is
/// handed from client to client between their transactions, which is what must not mix
/// statements up.
struct Bouncer {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Bouncer {
    fn start(upstream: &url::Url) -> Bouncer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Bouncer::start_on(upstream, port)
    }

    /// SIGKILL to pgbouncer itself (not the runuser before it): every connection through
    /// it drops at once, as when a database server dies. Its port, to start another on.
    fn crash(mut self) -> u16 {
        let pid = std::fs::read_to_string(self._dir.path().join("pgbouncer.pid")).unwrap();
        assert!(
            Command::new("kill")
                .args(["-KILL", pid.trim()])
                .status()
                .unwrap()
                .success()
        );
        let _ = self.child.wait();
        self.port
    }

    fn start_on(upstream: &url::Url, port: u16) -> Bouncer {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        // pgbouncer refuses to run as root: as root, it runs as postgres, which must read
        // its files and write its log here.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let users = dir.path().join("users.txt");
        std::fs::write(&users, format!("\"{}\" \"\"\n", upstream.username())).unwrap();
        let ini = dir.path().join("pgbouncer.ini");
        std::fs::write(
            &ini,
            format!(
                "[databases]\n* = host={} port={}\n[pgbouncer]\nlisten_addr = 127.0.0.1\n\
                 listen_port = {port}\nauth_type = trust\nauth_file = {}\npool_mode = transaction\n\
                 max_client_conn = 500\ndefault_pool_size = 2\n\
                 ignore_startup_parameters = extra_float_digits,options\nunix_socket_dir =\n\
                 logfile = {}\npidfile = {}\n",
                upstream.host_str().unwrap(),
                upstream.port().unwrap_or(5432),
                users.display(),
                dir.path().join("pgbouncer.log").display(),
                dir.path().join("pgbouncer.pid").display()
            ),
        )
        .unwrap();
        for file in [&users, &ini] {
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
        let mut cmd = if root {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--", "pgbouncer"]);
            cmd
        } else {
            Command::new("pgbouncer")
        };
        let child = cmd
            .arg(&ini)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("pgbouncer runs (Debian: apt-get install pgbouncer; .ci/run installs it)");
        let bouncer = Bouncer {
            child,
            port,
            _dir: dir,
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "pgbouncer did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        bouncer
    }
}

/// The test's PostgreSQL database, its direct URL, and pgbouncer in front of it.
fn behind_a_bouncer() -> (TestDatabase, url::Url, Bouncer) {
    let db = TestDatabase::new();
    assert!(
        db.is_postgres(),
        "ROSTER_TEST_DATABASE_URL names the server"
    );
    let direct = url::Url::parse(&db.args()[1]).unwrap();
    let bouncer = Bouncer::start(&direct);
    (db, direct, bouncer)
}

/// A server's database arguments through `bouncer` in transaction mode, with `direct` for
/// migrations and LISTEN when `listen`.
fn pooled_args(direct: &url::Url, bouncer: &Bouncer, listen: bool) -> Vec<String> {
    let mut pooled = direct.clone();
    pooled.set_port(Some(bouncer.port)).unwrap();
    let mut args = vec![
        "--database-url".into(),
        pooled.to_string(),
        "--database-pooler".into(),
        "transaction".into(),
    ];
    if listen {
        args.extend(["--database-listen-url".into(), direct.to_string()]);
    }
    args
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        // runuser passes SIGTERM on; pgbouncer shuts down at once on it.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// Two processes through pgbouncer in transaction mode (one with a direct connection for
/// migrations and LISTEN, one without) and one direct, on one database: reads and writes
/// at once through the pooler never meet another client's statement, a write through one
/// is read through the others, and a deleted token stops working on the pooled processes
/// at once (LISTEN on the direct URL) or within --credential-cache (without).
#[test]
#[ignore = "needs PostgreSQL and pgbouncer: ROSTER_TEST_DATABASE_URL (.ci/run sets it and installs pgbouncer)"]
fn through_a_transaction_pooler_nothing_is_mixed_up() {
    let (db, direct, bouncer) = behind_a_bouncer();
    let listening = Server::start_with(
        &pooled_args(&direct, &bouncer, true),
        &["--demo", "--rate-limit", "0"],
    );
    let unlistening = Server::start_with(
        &pooled_args(&direct, &bouncer, false),
        &["--rate-limit", "0", "--credential-cache", "1"],
    );
    let plain = Server::start(&db, &["--rate-limit", "0"]);
    let members = "/client/v4/accounts/023e105f4ecef8ad9ca31a8372d0c353/members";
    let count = |addr: &str| {
        let (status, body) = send(addr, "GET", &format!("{members}?per_page=5"), None, "");
        assert_eq!(status, 200, "{body}");
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        body["result_info"]["total_count"].as_u64().unwrap()
    };
    let before = count(&plain.addr);

    let pooled_servers = [&listening.addr, &unlistening.addr];
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..6)
            .map(|w| {
                let addr = pooled_servers[w % 2].clone();
                s.spawn(move || {
                    let mut seen = Vec::new();
                    for i in 0..10 {
                        let invite = format!(
                            r#"{{"email": "pooled{w}-{i}@example.com", "roles": ["87e7860bc4c445faba075646dac38cca"]}}"#
                        );
                        seen.push(send(&addr, "POST", members, None, &invite).0);
                        seen.push(send(&addr, "GET", members, None, "").0);
                        seen.push(send(&addr, "GET", "/client/v4/memberships", None, "").0);
                    }
                    seen
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    for addr in [&plain.addr, &listening.addr, &unlistening.addr] {
        assert_eq!(count(addr), before + 60, "every process reads every write");
    }

    // A token made directly, used through both pooled processes, then deleted directly.
    let demo_user = "7c5dae5552338874e5053f2534d2767a";
    let (status, made) = send(
        &plain.addr,
        "POST",
        "/client/v4/user/tokens",
        None,
        &format!(
            r#"{{"name": "pooled", "policies": [{{"effect": "allow",
                "permission_groups": [{{"id": "05de63ec42a143408bcece00dee847e4"}}],
                "resources": {{"com.cloudflare.api.user.{demo_user}": "*"}}}}]}}"#
        ),
    );
    assert_eq!(status, 200, "{made}");
    let made: serde_json::Value = serde_json::from_str(&made).unwrap();
    let (id, value) = (
        made["result"]["id"].as_str().unwrap(),
        made["result"]["value"].as_str().unwrap(),
    );
    for addr in pooled_servers {
        assert_eq!(
            send(addr, "GET", "/client/v4/memberships", Some(value), "").0,
            200
        );
    }
    let (status, _) = send(
        &plain.addr,
        "DELETE",
        &format!("/client/v4/user/tokens/{id}"),
        None,
        "",
    );
    assert_eq!(status, 200);
    let refused =
        |addr: &str| send(addr, "GET", "/client/v4/memberships", Some(value), "").0 != 200;
    // Told through LISTEN on the direct connection: at once, give or take the notice.
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while !refused(&listening.addr) {
        assert!(
            std::time::Instant::now() < deadline,
            "the deleted token still works"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Without it: once its one second in the credential cache is up.
    std::thread::sleep(Duration::from_millis(1100));
    assert!(
        refused(&unlistening.addr),
        "the deleted token still works past the cache"
    );
    for server in [&listening, &unlistening] {
        let log = server.log_text();
        assert!(!log.contains("internal error"), "{log}");
    }
}

/// The database goes away under a running server (everything between them dies at once,
/// as when the server crashes) and comes back: meanwhile every answer is a 503 in the
/// envelope with Retry-After, never a 500, and `/_roster/health` says why; afterwards the
/// server serves again without a restart, and every write it acknowledged is there.
#[test]
#[ignore = "needs PostgreSQL and pgbouncer: ROSTER_TEST_DATABASE_URL (.ci/run sets it and installs pgbouncer)"]
fn a_lost_database_is_503s_until_it_is_back_without_a_restart() {
    let (_db, direct, bouncer) = behind_a_bouncer();
    let server = Server::start_with(
        &pooled_args(&direct, &bouncer, true),
        &[
            "--demo",
            "--rate-limit",
            "0",
            "--credential-cache",
            "0",
            "--database-pool-wait",
            "2",
        ],
    );
    let members = "/client/v4/accounts/023e105f4ecef8ad9ca31a8372d0c353/members";
    let invite = |email: &str| {
        send(
            &server.addr,
            "POST",
            members,
            None,
            &format!(r#"{{"email": "{email}", "roles": ["87e7860bc4c445faba075646dac38cca"]}}"#),
        )
    };
    assert_eq!(invite("before@example.com").0, 200);

    let port = bouncer.crash();
    for path in ["/client/v4/memberships", members] {
        let (status, head, body) = demo_get(&server.addr, path);
        assert_eq!(status, 503, "{path}: {body}");
        assert!(head.contains("\r\nretry-after: 5"), "{head}");
        assert!(body.contains("Service unavailable: "), "{body}");
    }
    let (status, _) = invite("during@example.com");
    assert_eq!(status, 503);
    let (status, _, body) = demo_get(&server.addr, "/_roster/health");
    assert_eq!(status, 503, "{body}");

    let _back = Bouncer::start_on(&direct, port);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (status, _) = invite("after@example.com");
        if status == 200 {
            break;
        }
        assert_eq!(status, 503, "only 503s while it comes back");
        assert!(
            std::time::Instant::now() < deadline,
            "not serving again within 15 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (_, _, body) = demo_get(&server.addr, &format!("{members}?per_page=50"));
    for kept in ["before@example.com", "after@example.com"] {
        assert!(body.contains(kept), "{kept} was acknowledged and lost");
    }
    assert!(
        !body.contains("during@example.com"),
        "a refused write was kept"
    );
    let log = server.log_once_it_says("database serving again");
    assert!(!log.contains("internal error"), "{log}");
}
