//! Crash safety on SQLite: `roster serve` is killed with SIGKILL in the middle of a write
//! load (invitations, acceptances, removals). After a restart every change it had answered
//! 2xx for is there, nothing it refused or never answered is half-done, and every invariant
//! holds.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use common::{Server, TestDatabase, roster, stdout};

const USERS: usize = 24;
const ADMIN_RO: &str = "25a6523fbf0a4cdaa8af77b778c7dd19";
const OWNER: (&str, &str) = ("user@example.com", "144c9defac04969c7bfad8efaa8ea194");

/// What the server last confirmed about a membership, and whether a later request on it was
/// sent but never answered (so either outcome is allowed).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Confirmed {
    Pending,
    Accepted,
    Removed,
}

#[derive(Debug, Default)]
struct Ledger {
    last: HashMap<String, (Confirmed, bool)>,
}

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    who: (&str, &str),
    body: Option<Value>,
) -> Option<(u16, Value)> {
    let mut req = http
        .request(method, url)
        .header("X-Auth-Email", who.0)
        .header("X-Auth-Key", who.1);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.ok()?;
    let status = res.status().as_u16();
    let body = res.json().await.ok()?;
    Some((status, body))
}

/// One invitee's loop: invited by the owner, accepts, is removed, again, until the server
/// stops answering.
async fn churn(base: String, account: String, me: (String, String), ledger: Arc<Mutex<Ledger>>) {
    let http = reqwest::Client::new();
    let members = format!("{base}/accounts/{account}/members");
    let me = (me.0.as_str(), me.1.as_str());
    loop {
        let body = json!({"email": me.0, "roles": [ADMIN_RO]});
        let Some((status, r)) = call(
            &http,
            reqwest::Method::POST,
            members.clone(),
            OWNER,
            Some(body),
        )
        .await
        else {
            return;
        };
        assert!(status < 500, "{r}");
        if status != 200 {
            continue;
        }
        let id = r["result"]["id"].as_str().unwrap().to_string();
        ledger
            .lock()
            .unwrap()
            .last
            .insert(id.clone(), (Confirmed::Pending, false));
        for (step, method, url, who, body) in [
            (
                Confirmed::Accepted,
                reqwest::Method::PUT,
                format!("{base}/memberships/{id}"),
                me,
                Some(json!({"status": "accepted"})),
            ),
            (
                Confirmed::Removed,
                reqwest::Method::DELETE,
                format!("{members}/{id}"),
                OWNER,
                None,
            ),
        ] {
            ledger.lock().unwrap().last.get_mut(&id).unwrap().1 = true;
            let Some((status, r)) = call(&http, method, url, who, body).await else {
                return;
            };
            assert_eq!(status, 200, "{r}");
            ledger
                .lock()
                .unwrap()
                .last
                .insert(id.clone(), (step, false));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_change_answered_before_a_sigkill_survives_it() {
    let db = TestDatabase::sqlite();
    let users: Vec<(String, String)> = (0..USERS)
        .map(|i| {
            let email = format!("crash{i}@example.com");
            let key = stdout(&roster(
                &db,
                &["user", "create", "--email", &email, "--two-factor"],
            ));
            (email, key)
        })
        .collect();
    let server = Server::start(&db, &["--demo", "--rate-limit", "0"]);
    let http = reqwest::Client::new();
    let (_, created) = call(
        &http,
        reqwest::Method::POST,
        format!("{}/accounts", server.base_url),
        OWNER,
        Some(json!({"name": "Crash"})),
    )
    .await
    .unwrap();
    let account = created["result"]["id"].as_str().unwrap().to_string();

    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let tasks: Vec<_> = users
        .iter()
        .map(|u| {
            tokio::spawn(churn(
                server.base_url.clone(),
                account.clone(),
                u.clone(),
                ledger.clone(),
            ))
        })
        .collect();
    // The kill comes once the load has had answers that acknowledged changes: what is
    // checked after the restart is that none of those was lost. Counted are memberships
    // whose every step was answered (removed, nothing in flight), which stay so until the
    // kill, whatever else is in flight then.
    let acknowledged = |ledger: &Ledger| {
        ledger
            .last
            .values()
            .filter(|(c, in_flight)| *c == Confirmed::Removed && !in_flight)
            .count()
    };
    // A bound on the wait, not on the speed: a load that is refused forever fails here.
    let give_up = std::time::Instant::now() + Duration::from_secs(120);
    while acknowledged(&ledger.lock().unwrap()) <= 20 {
        assert!(
            !tasks.iter().all(|t| t.is_finished()) && std::time::Instant::now() < give_up,
            "the load changed nothing: {:?}",
            ledger.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::task::spawn_blocking(move || server.kill())
        .await
        .unwrap();
    for task in tasks {
        task.await.expect("no churn task panicked");
    }

    let ledger = Arc::try_unwrap(ledger).unwrap().into_inner().unwrap();
    assert!(
        acknowledged(&ledger) > 20,
        "the load made changes before the kill: {ledger:?}"
    );

    let server = Server::start(&db, &["--rate-limit", "0"]);
    let mut checked = 0;
    for (id, (state, in_flight)) in &ledger.last {
        let (status, body) = call(
            &http,
            reqwest::Method::GET,
            format!("{}/accounts/{account}/members/{id}", server.base_url),
            OWNER,
            None,
        )
        .await
        .unwrap();
        let now = match status {
            404 => Confirmed::Removed,
            200 if body["result"]["status"] == "accepted" => Confirmed::Accepted,
            200 => Confirmed::Pending,
            _ => panic!("{status}: {body}"),
        };
        if *in_flight {
            // The unanswered request may or may not have landed, but nothing in between.
            let next = match state {
                Confirmed::Pending => Confirmed::Accepted,
                _ => Confirmed::Removed,
            };
            assert!(now == *state || now == next, "{id}: {state:?} then {now:?}");
        } else {
            assert_eq!(now, *state, "{id}: confirmed {state:?}, found {now:?}");
            checked += 1;
        }
    }
    assert!(checked > 0);
    eprintln!(
        "{} memberships touched before the kill, {checked} with a confirmed last state checked",
        ledger.last.len()
    );

    // Invariants: one live membership per email, and the owner still administers.
    let (_, members) = call(
        &http,
        reqwest::Method::GET,
        format!("{}/accounts/{account}/members?per_page=50", server.base_url),
        OWNER,
        None,
    )
    .await
    .unwrap();
    let mut live: Vec<&str> = members["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["email"].as_str().unwrap())
        .collect();
    let total = live.len();
    live.sort();
    live.dedup();
    assert_eq!(
        live.len(),
        total,
        "one live membership per email: {members}"
    );
    assert!(live.contains(&OWNER.0));
    let path = &db.args()[1];
    let check = std::process::Command::new("python3")
        .args(["-c", "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('PRAGMA integrity_check').fetchone()[0])", path])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&check.stdout).trim(), "ok");
    assert!(server.stop().success());
}
