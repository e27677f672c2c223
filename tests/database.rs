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
