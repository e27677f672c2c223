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
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nX-Auth-Email: user@example.com\r\n\
         X-Auth-Key: 144c9defac04969c7bfad8efaa8ea194\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    let status = head[9..12].parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_owned())
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
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "POST /client/v4/accounts/023e105f4ecef8ad9ca31a8372d0c353/members HTTP/1.1\r\n\
         Host: {addr}\r\nX-Auth-Email: user@example.com\r\n\
         X-Auth-Key: 144c9defac04969c7bfad8efaa8ea194\r\nContent-Type: application/json\r\n\
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
