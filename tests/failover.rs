//! A PostgreSQL failover under a running server: a primary and a synchronous streaming
//! replica, both in `--database-url` (`target_session_attrs=read-write`); the primary dies
//! and the replica is promoted. The server finds the new primary by itself, within seconds,
//! without a restart; meanwhile every refusal is a 503 in the envelope with `Retry-After`,
//! never a 500 or a hang; every write it acknowledged is there afterwards.

mod common;

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::Server;
use common::cluster::{Pg, shared_dir};
use common::raw::{assert_unavailable, invite, member_emails, request, request_as};

/// Longest a request may take: the pool's wait for a connection (10 s by default) and some.
const ANSWER_WITHIN: Duration = Duration::from_secs(15);

/// One request's fate: what, when it was sent and answered, and the answer.
struct Sent {
    email: Option<String>,
    sent: Instant,
    took: Duration,
    answer: std::io::Result<(u16, String, String)>,
}

#[test]
#[ignore = "needs PostgreSQL's binaries (/usr/lib/postgresql/*/bin), run as the postgres user under root: .ci/run's PostgreSQL pass runs it"]
fn a_failover_to_a_promoted_replica_needs_no_restart_and_loses_no_acknowledged_write() {
    let dir = shared_dir();
    let mut primary = Pg::init(dir.path(), "primary");
    primary.start(&["wal_level=replica", "max_wal_senders=4", "fsync=off"]);
    let mut replica = Pg::replica_of(&primary, "replica");
    replica.start(&["fsync=off"]);
    // Synchronous only once the replica streams: before, every commit would wait for it.
    primary.wait_for(
        "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'",
        "1",
    );
    primary.psql("ALTER SYSTEM SET synchronous_standby_names = '*'");
    primary.psql("SELECT pg_reload_conf()");
    primary.wait_for("SELECT sync_state FROM pg_stat_replication", "sync");

    let hosts = |ports: &[u16]| {
        let hosts: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        format!(
            "postgres://roster@{}/postgres?target_session_attrs=read-write",
            hosts.join(",")
        )
    };
    let url = hosts(&[primary.port, replica.port]);
    // Listed first, the standby is passed over for the host that accepts writes.
    let standby_first = Server::start_with(
        &[
            "--database-url".into(),
            hosts(&[replica.port, primary.port]),
        ],
        &["--demo", "--rate-limit", "0"],
    );
    let (status, _, body) = invite(
        &standby_first.addr,
        "past-the-standby@example.com",
        ANSWER_WITHIN,
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    drop(standby_first);

    let server = Server::start_with(
        &["--database-url".into(), url],
        &["--demo", "--rate-limit", "0", "--credential-cache", "600"],
    );
    let addr = server.addr.as_str();

    // A steady flow of invitations, and of reads beside them, until told to stop.
    let stop = AtomicBool::new(false);
    let sent: Mutex<Vec<Sent>> = Mutex::default();
    let (stopped_at, promoted_at) = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            for i in 0.. {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let email = format!("flow{i}@example.com");
                let sent_at = Instant::now();
                let answer = invite(addr, &email, ANSWER_WITHIN * 2);
                sent.lock().unwrap().push(Sent {
                    email: Some(email),
                    sent: sent_at,
                    took: sent_at.elapsed(),
                    answer,
                });
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        let reader = s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                let sent_at = Instant::now();
                let answer = request(addr, "GET", "/client/v4/memberships", "", ANSWER_WITHIN * 2);
                sent.lock().unwrap().push(Sent {
                    email: None,
                    sent: sent_at,
                    took: sent_at.elapsed(),
                    answer,
                });
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        let acknowledged = |after: Instant| {
            sent.lock()
                .unwrap()
                .iter()
                .filter(|s| s.email.is_some() && s.sent >= after)
                .filter(|s| matches!(s.answer, Ok((200, _, _))))
                .count()
        };
        let wait_for_acknowledged = |after: Instant, n: usize, within: Duration| {
            let deadline = after + within;
            while acknowledged(after) < n {
                assert!(
                    Instant::now() < deadline,
                    "fewer than {n} writes acknowledged within {within:?}"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        };
        let started = Instant::now();
        wait_for_acknowledged(started, 20, Duration::from_secs(30));

        let stopped_at = Instant::now();
        primary.stop_immediately();
        replica.promote();
        let promoted_at = Instant::now();
        // Writes acknowledged again within 10 s of the primary's death, without a restart.
        wait_for_acknowledged(stopped_at, 1, Duration::from_secs(10));
        wait_for_acknowledged(stopped_at, 20, Duration::from_secs(30));
        stop.store(true, Ordering::Relaxed);
        writer.join().unwrap();
        reader.join().unwrap();
        (stopped_at, promoted_at)
    });

    let sent = sent.into_inner().unwrap();
    let mut refused = 0;
    for s in &sent {
        let (status, head, body) = s.answer.as_ref().unwrap_or_else(|e| {
            panic!("no answer within {:?}: {e}", ANSWER_WITHIN * 2);
        });
        assert!(
            s.took < ANSWER_WITHIN,
            "answered {status} after {:?}",
            s.took
        );
        match status {
            200 => {}
            503 => {
                refused += 1;
                assert_unavailable(head, body);
            }
            other => panic!("{other}: {body}"),
        }
    }
    // Every acknowledged invitation is there, read back through the API from the new
    // primary.
    let members = member_emails(addr);
    let mut kept = 0;
    for s in &sent {
        if let (Some(email), Ok((200, _, _))) = (&s.email, &s.answer) {
            assert!(members.contains(email), "{email} was acknowledged and lost");
            kept += 1;
        }
    }
    // The window: from the primary's death to the first write acknowledged after it that
    // was sent after it.
    let back = sent
        .iter()
        .filter(|s| s.email.is_some() && s.sent >= stopped_at)
        .filter(|s| matches!(s.answer, Ok((200, _, _))))
        .map(|s| s.sent + s.took)
        .min()
        .unwrap();
    let window = back - stopped_at;
    println!(
        "failover: writes acknowledged again {:.2} s after the primary stopped ({:.2} s after \
         the promotion returned); {kept} invitations acknowledged, {refused} requests refused \
         503 of {}",
        window.as_secs_f64(),
        back.saturating_duration_since(promoted_at).as_secs_f64(),
        sent.len()
    );
    // The listener for other processes' credential changes follows too: a token deleted
    // through another process is refused here at once, though this one's credential cache
    // would trust it for ten minutes.
    let other = Server::start_with(
        &["--database-url".into(), replica.url("")],
        &["--rate-limit", "0"],
    );
    let token = make_token(addr);
    let with_token = |addr: &str| {
        let auth = format!("Authorization: Bearer {}", token.1);
        request_as(
            addr,
            &auth,
            "GET",
            "/client/v4/memberships",
            "",
            ANSWER_WITHIN,
        )
        .unwrap()
        .0
    };
    assert_eq!(with_token(addr), 200);
    let (status, _, body) = request(
        &other.addr,
        "DELETE",
        &format!("/client/v4/user/tokens/{}", token.0),
        "",
        ANSWER_WITHIN,
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let deadline = Instant::now() + Duration::from_secs(2);
    while with_token(addr) == 200 {
        assert!(
            Instant::now() < deadline,
            "a token deleted elsewhere still works after the failover"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // A host that turns read-only (here the new primary, by its settings) is 503s naming
    // that, until it takes writes again: then the same host is served again.
    replica.psql("ALTER SYSTEM SET default_transaction_read_only = on");
    replica.psql("SELECT pg_reload_conf()");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, head, body) = invite(addr, "read-only@example.com", ANSWER_WITHIN).unwrap();
        if status == 503 {
            assert_unavailable(&head, &body);
            assert!(body.contains("the database is read-only"), "{body}");
            break;
        }
        assert_eq!(status, 200, "{body}");
        assert!(
            Instant::now() < deadline,
            "writes still taken 10 s after read-only"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    replica.psql("ALTER SYSTEM RESET default_transaction_read_only");
    replica.psql("SELECT pg_reload_conf()");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, head, body) = invite(addr, "writable@example.com", ANSWER_WITHIN).unwrap();
        if status == 200 {
            break;
        }
        assert_eq!(status, 503, "{body}");
        assert_unavailable(&head, &body);
        assert!(
            Instant::now() < deadline,
            "writes still refused 10 s after read-write"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let log = server.log_once_it_says("new connections go to");
    assert!(
        log.contains(&format!("new connections go to 127.0.0.1:{}", replica.port)),
        "{log}"
    );
    assert!(!log.contains("internal error"), "{log}");
    // No host that takes writes: refused at start, each host's failure named.
    replica.psql("ALTER SYSTEM SET default_transaction_read_only = on");
    replica.psql("SELECT pg_reload_conf()");
    let dead = common::cluster::free_port();
    let error = Server::refused(&["--database-url".into(), hosts(&[dead, replica.port])]);
    assert!(error.contains(&format!("127.0.0.1:{dead}: ")), "{error}");
    assert!(
        error.contains(&format!(
            "127.0.0.1:{}: 127.0.0.1:{} is not a host that accepts writes",
            replica.port, replica.port
        )),
        "{error}"
    );
    assert!(
        error.contains("no host of --database-url accepts writes"),
        "{error}"
    );
}

/// A user token of the demo user's, made through `addr`: (id, value).
fn make_token(addr: &str) -> (String, String) {
    let (status, _, made) = request(
        addr,
        "POST",
        "/client/v4/user/tokens",
        r#"{"name": "failover", "policies": [{"effect": "allow",
            "permission_groups": [{"id": "05de63ec42a143408bcece00dee847e4"}],
            "resources": {"com.cloudflare.api.user.7c5dae5552338874e5053f2534d2767a": "*"}}]}"#,
        ANSWER_WITHIN,
    )
    .unwrap();
    assert_eq!(status, 200, "{made}");
    let made: serde_json::Value = serde_json::from_str(&made).unwrap();
    (
        made["result"]["id"].as_str().unwrap().to_string(),
        made["result"]["value"].as_str().unwrap().to_string(),
    )
}
