//! The emulator's control plane (`serve --emulator`) and `/metrics`, over HTTP: reset,
//! snapshots, the clock, faults and the journal, each as a test suite would use them.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

const MEMBERSHIPS_READ: &str = "05de63ec42a143408bcece00dee847e4";

fn demo_headers() -> [(&'static str, &'static str); 2] {
    [
        ("X-Auth-Email", "user@example.com"),
        ("X-Auth-Key", "144c9defac04969c7bfad8efaa8ea194"),
    ]
}

async fn invite(server: &TestServer, email: &str) -> String {
    server
        .invite(&Creds::demo(), DEMO_ACCOUNT, email, &[DNS_ROLE])
        .await
}

async fn members(server: &TestServer) -> usize {
    server
        .as_user(&Creds::demo())
        .get(&format!("/accounts/{DEMO_ACCOUNT}/members?per_page=50"))
        .await
        .body["result_info"]["total_count"]
        .as_u64()
        .unwrap() as usize
}

/// A reset puts back every row the seed made, and removes every row made since, in one
/// step; the clock, faults and journal go back too.
#[tokio::test]
async fn reset_puts_the_seeded_state_back() {
    let server = TestServer::emulator().await;
    let seeded = server.store.export().await.unwrap();
    let control = server.raw(&[]);
    let before = members(&server).await;
    invite(&server, "guest@example.com").await;
    server
        .as_user(&Creds::demo())
        .delete(&format!("/memberships/{DEMO_MEMBERSHIP}"))
        .await;
    let alice = server.user("alice@example.com").await;
    server.account(&alice, "Alice's").await;
    control
        .post("/_roster/clock", json!({"advance_seconds": 3600}))
        .await
        .result();
    control
        .post(
            "/_roster/faults",
            json!({"path": "/nowhere", "status": 500}),
        )
        .await
        .result();

    let reset = control.post("/_roster/reset", json!({})).await;
    assert_eq!(reset.result()["users"], seeded.users.len());
    assert_eq!(control.get("/_roster/requests").await.result(), &json!([]));
    assert_eq!(server.store.export().await.unwrap(), seeded);
    assert_eq!(members(&server).await, before);
    // The user made since is gone, and their key with them.
    server
        .as_user(&alice)
        .get("/memberships")
        .await
        .expect_error(403, 9103);
    assert_eq!(
        control.get("/_roster/clock").await.result()["offset_seconds"],
        0
    );
    assert_eq!(control.get("/_roster/faults").await.result(), &json!([]));
}

/// A reset gives every user their whole rate-limit allowance back, and every address its
/// allowance of failed authentications: tests after it start as the first did.
#[tokio::test]
async fn reset_restores_the_rate_limits_allowances() {
    let server = TestServer::emulator_with(&roster::api::Limits {
        rate: Some((
            std::num::NonZeroU32::new(2).unwrap(),
            std::time::Duration::from_secs(300),
        )),
        // Nine a minute from an address, three of them for one email.
        failed_auth: std::num::NonZeroU32::new(9),
        ..roster::api::Limits::default()
    })
    .await;
    let demo = server.as_user(&Creds::demo());
    let wrong = server.as_user(&Creds {
        email: "user@example.com".into(),
        key: "0".repeat(37),
    });
    let spend = || async {
        demo.get("/user").await.result();
        demo.get("/user").await.result();
        demo.get("/user").await.expect_error(429, 971);
        // Failures for one email exhaust its allowance at this address (three a minute):
        // from then on its requests are refused before their key is looked at.
        let first = wrong.get("/user").await;
        first.expect_error(403, 9103);
        let mut refused = false;
        for _ in 0..5 {
            let r = wrong.get("/user").await;
            if r.status == 429 {
                r.expect_error(429, 971);
                refused = true;
                break;
            }
            r.expect_error(403, 9103);
        }
        assert!(refused, "the failures were throttled");
    };
    spend().await;
    server
        .raw(&[])
        .post("/_roster/reset", json!({}))
        .await
        .result();
    spend().await;
}

#[tokio::test]
async fn a_snapshot_restores_what_it_saved() {
    let server = TestServer::emulator().await;
    let control = server.raw(&[]);
    invite(&server, "kept@example.com").await;
    let saved = server.store.export().await.unwrap();
    let taken = control
        .post("/_roster/snapshots", json!({"name": "with-kept"}))
        .await;
    assert_eq!(taken.result()["name"], "with-kept");
    assert_eq!(taken.result()["memberships"], saved.memberships.len());
    invite(&server, "later@example.com").await;
    assert_ne!(server.store.export().await.unwrap(), saved);

    control
        .post("/_roster/snapshots/with-kept/restore", json!({}))
        .await
        .result();
    assert_eq!(server.store.export().await.unwrap(), saved);
    // A reset keeps snapshots.
    control.post("/_roster/reset", json!({})).await.result();
    let listed = control.get("/_roster/snapshots").await;
    assert_eq!(listed.result()[0]["name"], "with-kept");

    control
        .post("/_roster/snapshots/missing/restore", json!({}))
        .await
        .expect_error(404, 1003);
    let bad = control
        .post("/_roster/snapshots", json!({"name": "no spaces"}))
        .await;
    bad.expect_error(400, 1002);
    assert!(bad.error_message().contains("name"), "{}", bad.body);
    control
        .post("/_roster/snapshots", json!({}))
        .await
        .expect_error(400, 1002);
    control
        .delete("/_roster/snapshots/with-kept")
        .await
        .result();
    assert_eq!(control.get("/_roster/snapshots").await.result(), &json!([]));
    control
        .delete("/_roster/snapshots/with-kept")
        .await
        .expect_error(404, 1003);
}

/// A restore brings back each account's catalog as saved, though the process kept the
/// catalog it read between two restores (an export carries no catalog stamp: every
/// restore gives each account a new one).
#[tokio::test]
async fn a_restored_catalog_is_the_one_served() {
    let server = TestServer::emulator().await;
    let control = server.raw(&[]);
    let demo = server.as_user(&Creds::demo());
    let groups = format!("/accounts/{DEMO_ACCOUNT}/iam/resource_groups");
    let names = |body: &Value| -> Vec<String> {
        let mut names = crate::results::result_names(body);
        names.sort();
        names
    };
    let before = names(&demo.get(&groups).await.body);
    control
        .post("/_roster/snapshots", json!({"name": "before"}))
        .await
        .result();
    let scope = json!({"key": format!("com.cloudflare.api.account.{DEMO_ACCOUNT}"), "objects": [{"key": "*"}]});
    demo.post(&groups, json!({"name": "restored", "scope": scope}))
        .await
        .result();
    control
        .post("/_roster/snapshots", json!({"name": "after"}))
        .await
        .result();
    let mut after = before.clone();
    after.push("restored".into());
    after.sort();

    for (snapshot, expected) in [("before", &before), ("after", &after), ("before", &before)] {
        control
            .post(&format!("/_roster/snapshots/{snapshot}/restore"), json!({}))
            .await
            .result();
        assert_eq!(
            &names(&demo.get(&groups).await.body),
            expected,
            "{snapshot}"
        );
    }
}

/// Token windows read the moved clock: a token that expires in a day stops working when
/// the clock is moved two days on, and works again when it is set back.
#[tokio::test]
async fn token_windows_and_timestamps_follow_the_clock() {
    let server = TestServer::emulator().await;
    let control = server.raw(&[]);
    let demo = Creds::demo();
    let me = server.as_user(&demo).get("/user").await.result()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let tomorrow = (time::OffsetDateTime::now_utc() + time::Duration::days(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let made = server
        .as_user(&demo)
        .post(
            "/user/tokens",
            json!({"name": "short", "expires_on": tomorrow, "policies": [{
                "effect": "allow",
                "permission_groups": [{"id": MEMBERSHIPS_READ}],
                "resources": {format!("com.cloudflare.api.user.{me}"): "*"},
            }]}),
        )
        .await;
    let secret = made.result()["value"].as_str().unwrap().to_string();
    server
        .with_token(&secret)
        .get("/memberships")
        .await
        .result();

    let moved = control
        .post("/_roster/clock", json!({"advance_seconds": 2 * 86400}))
        .await;
    assert_eq!(moved.result()["offset_seconds"], 2 * 86400);
    server
        .with_token(&secret)
        .get("/memberships")
        .await
        .expect_error(403, 10000);
    // What is written now carries the moved time.
    let later = server
        .as_user(&demo)
        .post(
            "/user/tokens",
            json!({"name": "later", "policies": [{
                "effect": "allow",
                "permission_groups": [{"id": MEMBERSHIPS_READ}],
                "resources": {format!("com.cloudflare.api.user.{me}"): "*"},
            }]}),
        )
        .await;
    let year = time::OffsetDateTime::now_utc().year();
    let on = later.result()["issued_on"].as_str().unwrap().to_string();
    let shown = control.get("/_roster/clock").await.result()["now"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(on[..10], shown[..10], "{on} against the clock's {shown}");

    control
        .post(
            "/_roster/clock",
            json!({"now": format!("{year}-01-01T00:00:00Z")}),
        )
        .await
        .result();
    server
        .with_token(&secret)
        .get("/memberships")
        .await
        .result();
    control
        .post("/_roster/clock", json!({"reset": true}))
        .await
        .result();
    server
        .with_token(&secret)
        .get("/memberships")
        .await
        .result();

    for (body, field) in [
        (json!({"advance_seconds": -5}), "advance_seconds"),
        (json!({"now": "yesterday"}), "now"),
        // Out of the clock's reach (about 292 years either way): refused, not clamped.
        (json!({"now": "0000-01-01T00:00:00Z"}), "now"),
        (json!({"now": "9999-12-31T23:59:59Z"}), "now"),
        (
            json!({"advance_seconds": 5, "now": "2030-01-01T00:00:00Z"}),
            "one of",
        ),
        (json!({}), "one of"),
    ] {
        let refused = control.post("/_roster/clock", body).await;
        refused.expect_error(400, 1002);
        assert!(refused.error_message().contains(field), "{}", refused.body);
    }
    assert_eq!(
        control.get("/_roster/clock").await.result()["offset_seconds"],
        0
    );
}

/// A fault answers the requests it matches (method, path glob, caller) with its status,
/// a Cloudflare error body and `Retry-After`, as many times as it was told; the rest go
/// through.
#[tokio::test]
async fn a_fault_answers_what_it_matches_as_often_as_told() {
    let server = TestServer::emulator().await;
    let control = server.raw(&[]);
    let demo = server.raw(&demo_headers());
    let alice = server.user("alice@example.com").await;
    let as_alice = server.raw(&[("X-Auth-Email", &alice.email), ("X-Auth-Key", &alice.key)]);
    let fault = control
        .post(
            "/_roster/faults",
            json!({"method": "GET", "path": "/client/v4/memberships*", "caller": "USER@example.com",
                   "status": 503, "retry_after": 7, "times": 2}),
        )
        .await;
    let id = fault.result()["id"].as_str().unwrap().to_string();

    // Another caller and another method go through.
    assert_eq!(as_alice.get("/client/v4/memberships").await.status, 200);
    assert_eq!(
        demo.send(Method::POST, "/client/v4/memberships", None)
            .await
            .status,
        405
    );
    for _ in 0..2 {
        let hit = demo.get("/client/v4/memberships?page=1").await;
        assert_eq!(hit.status, 503, "{}", hit.body);
        assert_eq!(hit.headers["retry-after"], "7");
        assert_eq!(hit.body["success"], false);
        assert_eq!(hit.body["errors"][0]["code"], 1000);
        assert!(hit.body["result"].is_null());
    }
    // Used up: gone from the list, and the API answers again.
    assert_eq!(demo.get("/client/v4/memberships").await.status, 200);
    assert_eq!(control.get("/_roster/faults").await.result(), &json!([]));
    control
        .delete(&format!("/_roster/faults/{id}"))
        .await
        .expect_error(404, 1003);

    // Without `times`, until removed; a 429 says Cloudflare's code.
    let limit = control
        .post(
            "/_roster/faults",
            json!({"path": "/client/v4/**", "status": 429}),
        )
        .await;
    let id = limit.result()["id"].as_str().unwrap().to_string();
    for _ in 0..3 {
        let hit = as_alice.get("/client/v4/user").await;
        assert_eq!(hit.status, 429);
        assert_eq!(hit.body["errors"][0]["code"], 971);
    }
    // The control plane itself is never faulted.
    control.get("/_roster/faults").await.result();
    control
        .delete(&format!("/_roster/faults/{id}"))
        .await
        .result();
    assert_eq!(as_alice.get("/client/v4/user").await.status, 200);

    // A delay holds the request, then lets it through.
    control
        .post("/_roster/faults", json!({"delay_ms": 300, "times": 1}))
        .await
        .result();
    let started = std::time::Instant::now();
    assert_eq!(demo.get("/client/v4/memberships").await.status, 200);
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));

    // A token is matched by its id.
    let token = server.token(&Creds::demo(), &["Memberships Read"]).await;
    let token_id = server
        .with_token(&token)
        .get("/user/tokens/verify")
        .await
        .result()["id"]
        .as_str()
        .unwrap()
        .to_string();
    control
        .post(
            "/_roster/faults",
            json!({"caller": token_id, "status": 500}),
        )
        .await
        .result();
    let bearer = format!("Bearer {token}");
    let as_token = server.raw(&[("Authorization", &bearer)]);
    assert_eq!(as_token.get("/client/v4/memberships").await.status, 500);
    assert_eq!(demo.get("/client/v4/memberships").await.status, 200);
    let cleared = control.delete("/_roster/faults").await;
    assert_eq!(cleared.result()["removed"], 1);
    assert_eq!(as_token.get("/client/v4/memberships").await.status, 200);
}

/// A fault with a probability takes about that share of the matching requests (200
/// requests at one half: outside 40 to 160 has a chance below one in 10^17).
#[tokio::test]
async fn a_fault_with_a_probability_takes_a_share_of_the_requests() {
    let server = TestServer::emulator().await;
    let control = server.raw(&[]);
    let demo = server.raw(&demo_headers());
    control
        .post(
            "/_roster/faults",
            json!({"path": "/client/v4/user", "status": 502, "probability": 0.5}),
        )
        .await
        .result();
    let mut faulted = 0;
    for _ in 0..200 {
        match demo.get("/client/v4/user").await.status {
            502 => faulted += 1,
            200 => {}
            other => panic!("answered {other}"),
        }
    }
    assert!((40..=160).contains(&faulted), "{faulted} of 200");
    assert_eq!(
        control.get("/_roster/faults").await.result()[0]["hits"],
        faulted
    );
}

#[tokio::test]
async fn a_fault_is_refused_unless_it_says_something_sensible() {
    let server = TestServer::emulator().await;
    let control = server.raw(&[]);
    for (body, field) in [
        (json!({"path": "/x"}), "status"),
        (json!({"status": 200}), "status"),
        (json!({"status": 503, "probability": 0}), "probability"),
        (json!({"status": 503, "probability": 1.5}), "probability"),
        (json!({"status": 503, "times": 0}), "times"),
        (json!({"status": 503, "path": "client/v4"}), "path"),
        (json!({"status": 503, "path": "/[x"}), "path"),
        (json!({"status": 503, "method": "GE T"}), "method"),
        (json!({"delay_ms": 600000}), "delay_ms"),
        (json!({"status": 503, "colour": "red"}), "colour"),
        (json!({"body": {}, "code": 1000}), "code"),
        (json!({"body": {}, "message": "no"}), "message"),
        (json!({"body": [], "status": 199}), "status"),
        (json!({"body": [], "status": 600}), "status"),
        (json!({"body": [], "status": 204}), "status"),
        (json!({"body": [], "status": 304}), "status"),
        (json!({"body": "x".repeat(64 * 1024)}), "body"),
    ] {
        let refused = control.post("/_roster/faults", body).await;
        refused.expect_error(400, 1002);
        assert!(refused.error_message().contains(field), "{}", refused.body);
    }
    assert_eq!(control.get("/_roster/faults").await.result(), &json!([]));
}

/// The journal holds what clients sent, with their secrets masked, and what they got.
#[tokio::test]
async fn the_journal_shows_what_clients_sent_without_their_secrets() {
    let server = TestServer::emulator().await;
    let control = server.raw(&[]);
    let demo = server.raw(&demo_headers());
    let listed = demo.get("/client/v4/memberships?status=accepted").await;
    let sent = json!({"email": "journal@example.com", "roles": [DNS_ROLE]});
    let invited = demo
        .post(
            &format!("/client/v4/accounts/{DEMO_ACCOUNT}/members"),
            sent.clone(),
        )
        .await;
    assert_eq!(invited.status, 200);
    demo.get("/client/v4/nowhere").await;

    let journal = control.get("/_roster/requests").await;
    let entries = journal.result().as_array().unwrap().clone();
    assert_eq!(
        entries.len(),
        3,
        "control-plane requests are not journaled: {entries:?}"
    );
    let first = &entries[0];
    assert_eq!(first["method"], "GET");
    assert_eq!(first["path"], "/client/v4/memberships");
    assert_eq!(first["query"], "status=accepted");
    assert_eq!(first["status"], 200);
    assert_eq!(first["ray_id"], listed.headers["cf-ray"].to_str().unwrap());
    assert!(first["caller"].as_str().unwrap().starts_with("user "));
    assert_eq!(first["headers"]["x-auth-email"], "user@example.com");
    assert_eq!(first["headers"]["x-auth-key"], "[masked]");
    assert!(
        !journal
            .body
            .to_string()
            .contains("144c9defac04969c7bfad8efaa8ea194")
    );
    assert_eq!(entries[1]["body"], sent);

    assert_eq!(journal_paths(&control, "method=POST").await.len(), 1);
    assert_eq!(
        journal_paths(&control, "status=404").await,
        vec!["/client/v4/nowhere"]
    );
    assert_eq!(
        journal_paths(&control, "path=/client/v4/accounts/*/members")
            .await
            .len(),
        1
    );
    control
        .get("/_roster/requests?status=abc")
        .await
        .expect_error(400, 1002);
    assert_eq!(
        control.delete("/_roster/requests").await.result()["removed"],
        3
    );
    assert_eq!(control.get("/_roster/requests").await.result(), &json!([]));
}

/// Without `--emulator` the control plane does not exist: its paths are unknown routes,
/// whatever the method.
#[tokio::test]
async fn without_the_emulator_the_control_plane_is_not_there() {
    let server = TestServer::demo().await;
    let control = server.raw(&[]);
    for (method, path) in [
        (Method::POST, "/_roster/reset"),
        (Method::GET, "/_roster/reset"),
        (Method::GET, "/_roster/clock"),
        (Method::POST, "/_roster/faults"),
        (Method::GET, "/_roster/requests"),
        (Method::GET, "/_roster/snapshots"),
    ] {
        let r = control.send(method, path, Some("{}".into())).await;
        assert_eq!(r.status, 404, "{path}: {}", r.body);
        assert_eq!(r.body["errors"][0]["code"], 7003);
    }
    // Health and metrics are always there.
    assert_eq!(control.get("/_roster/health").await.status, 200);
    assert_eq!(control.get("/metrics").await.status, 200);
}

/// `/metrics` counts requests by route template (not by id), method and status, times
/// them, and shows the store's figures, in Prometheus's text format.
#[tokio::test]
async fn metrics_count_requests_by_route_and_show_the_store() {
    let server = TestServer::demo().await;
    let demo = server.as_user(&Creds::demo());
    for _ in 0..3 {
        demo.get("/memberships").await.result();
    }
    demo.get(&format!(
        "/accounts/{DEMO_ACCOUNT}/members/{}",
        "0".repeat(32)
    ))
    .await
    .expect_error(404, 1003);
    server.raw(&[]).get("/_roster/health").await;
    let text = match server.raw(&[]).get("/metrics").await.body {
        Value::String(text) => text,
        other => panic!("metrics are text: {other}"),
    };
    let line = |start: &str| {
        text.lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no {start} in\n{text}"))
            .to_string()
    };
    assert!(
        line(r#"roster_http_requests_total{route="/client/v4/memberships",method="GET",status="200"}"#)
            .ends_with(" 3")
    );
    line(
        r#"roster_http_requests_total{route="/client/v4/accounts/{account_id}/members/{member_id}",method="GET",status="404"}"#,
    );
    assert!(
        line(r#"roster_http_request_duration_seconds_count{route="/client/v4/memberships",method="GET"}"#)
            .ends_with(" 3")
    );
    line(
        r#"roster_http_request_duration_seconds_bucket{route="/client/v4/memberships",method="GET",le="0.001"}"#,
    );
    line(r#"roster_http_requests_total{route="/_roster/health",method="GET",status="200"}"#);
    line(r#"roster_cache_hits_total{cache="credentials_keys"}"#);
    line(r#"roster_cache_hits_total{cache="catalogs"}"#);
    line("# TYPE roster_http_request_duration_seconds histogram");
    if server.schema.is_none() {
        line(r#"roster_db_connections{pool="read"}"#);
    }
    assert!(!text.contains(DEMO_ACCOUNT), "ids make no series");
}

/// The `/metrics` text, with a finder for the line that starts with a given series.
async fn metrics_text(server: &TestServer) -> String {
    match server.raw(&[]).get("/metrics").await.body {
        Value::String(text) => text,
        other => panic!("metrics are text: {other}"),
    }
}

/// Any method HTTP does not define counts under one label, `other`: a client may make up
/// as many methods as it likes, and each used to make series of its own for as long as the
/// server ran.
#[tokio::test]
async fn made_up_methods_share_one_metrics_label() {
    let server = TestServer::start().await;
    let client = server.raw(&[]);
    for i in 0..3 {
        let method = Method::from_bytes(format!("MADEUP{i}").as_bytes()).unwrap();
        client.send(method, "/client/v4/user", None).await;
    }
    client.send(Method::PUT, "/client/v4/user", None).await;
    let text = metrics_text(&server).await;
    assert!(!text.contains("MADEUP"), "{text}");
    let others: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("roster_http_requests_total{") && l.contains(r#"method="other""#))
        .collect();
    assert_eq!(others.len(), 1, "{text}");
    assert!(others[0].ends_with(" 3"), "{text}");
    assert!(text.contains(r#"method="PUT""#), "{text}");
}

/// A wrong method on Roster's own routes is answered as the API answers one: 405 in the
/// envelope, code 7001.
#[tokio::test]
async fn a_wrong_method_on_the_control_plane_is_405_in_the_envelope() {
    let server = TestServer::emulator().await;
    let control = server.raw(&[]);
    for (method, path) in [
        (Method::POST, "/metrics"),
        (Method::DELETE, "/_roster/health"),
        (Method::GET, "/_roster/reset"),
        (Method::PUT, "/_roster/clock"),
        (Method::PATCH, "/_roster/faults"),
        (Method::OPTIONS, "/_roster/requests"),
    ] {
        let r = control.send(method.clone(), path, Some("{}".into())).await;
        assert_eq!(r.status, 405, "{method} {path}: {}", r.body);
        assert_eq!(r.error_code(), 7001, "{method} {path}");
        assert!(r.error_message().contains(path), "{}", r.body);
    }
}

/// A faulted answer is counted under the route template the request matched, as the API's
/// own answer would be; a path no route matches stays `unmatched`.
#[tokio::test]
async fn a_faulted_answer_is_counted_under_its_route() {
    let server = TestServer::emulator().await;
    let control = server.raw(&[]);
    let demo = server.raw(&demo_headers());
    for path in ["/client/v4/memberships", "/client/v4/nowhere"] {
        control
            .post(
                "/_roster/faults",
                json!({"path": path, "status": 503, "times": 1}),
            )
            .await
            .result();
        assert_eq!(demo.get(path).await.status, 503);
    }
    let text = metrics_text(&server).await;
    let count = |series: &str| {
        text.lines()
            .find(|l| l.starts_with(series))
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        count(
            r#"roster_http_requests_total{route="/client/v4/memberships",method="GET",status="503"}"#
        ),
        "1"
    );
    assert_eq!(
        count(r#"roster_http_requests_total{route="unmatched",method="GET",status="503"}"#),
        "1"
    );
}

/// The journal reads a body within the request timeout: a body that trickles in is
/// answered 408 as it is without the emulator, and the journal shows that answer.
#[tokio::test]
async fn a_trickling_body_is_timed_out_and_journaled() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::emulator_with(&roster::api::Limits {
        request_timeout: std::time::Duration::from_secs(1),
        ..roster::api::Limits::default()
    })
    .await;
    let body = json!({"email": "slow@example.com", "roles": [SUPER_ADMIN]}).to_string();
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /client/v4/accounts/{DEMO_ACCOUNT}/members HTTP/1.1\r\nHost: x\r\n\
         X-Auth-Email: user@example.com\r\nX-Auth-Key: 144c9defac04969c7bfad8efaa8ea194\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // Part of the body, then nothing.
    stream.write_all(&body.as_bytes()[..10]).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(20), async {
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&answer).contains("\"success\":false") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed without an answer");
            answer.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("answered while the body was still coming");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let journal = server.raw(&[]).get("/_roster/requests").await;
    let entries = journal.result().as_array().unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["status"], 408);
    assert_eq!(entries[0]["body"], Value::Null);
}

/// Every header that carries a credential is masked in the journal, a proxy's too.
#[tokio::test]
async fn the_journal_masks_every_credential_header() {
    let server = TestServer::emulator().await;
    let secrets = [
        ("X-Auth-Key", "secret-one"),
        ("Authorization", "Bearer secret-two"),
        ("Proxy-Authorization", "Basic c2VjcmV0LXRocmVl"),
        ("Cookie", "session=secret-four"),
        ("X-Auth-User-Service-Key", "v1.0-secret-five"),
    ];
    server.raw(&secrets).get("/client/v4/user").await;
    let journal = server.raw(&[]).get("/_roster/requests").await;
    let headers = &journal.result()[0]["headers"];
    for (name, value) in secrets {
        assert_eq!(headers[name.to_ascii_lowercase()], "[masked]", "{name}");
        assert!(!journal.body.to_string().contains(value), "{value}");
    }
}

/// The clock never wraps: advances that would take it out of its reach are refused and
/// leave it where it stood. (Three 100-year advances used to wrap it round to 1742, where
/// an expired invitation could be accepted again.)
#[tokio::test]
async fn the_clock_refuses_to_move_out_of_its_reach() {
    let server = TestServer::emulator().await;
    let control = server.raw(&[]);
    let century = json!({"advance_seconds": 100_i64 * 365 * 86_400});
    control
        .post("/_roster/clock", century.clone())
        .await
        .result();
    let twice = control.post("/_roster/clock", century.clone()).await;
    let stood = twice.result()["now"].as_str().unwrap().to_string();
    let refused = control.post("/_roster/clock", century.clone()).await;
    refused.expect_error(400, 1002);
    assert!(
        refused.error_message().contains("advance_seconds"),
        "{}",
        refused.body
    );
    let now = control.get("/_roster/clock").await.result()["now"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(now[..4], stood[..4], "{now} against {stood}");
}

/// Faults and snapshots are bounded (1,000 and 100 held at once): past that a new one is
/// refused with a 400 that says so, and removing one makes room again. A snapshot that
/// replaces one of its name takes no more room.
#[tokio::test]
async fn faults_and_snapshots_are_bounded() {
    let server = TestServer::emulator().await;
    let control = server.raw(&[]);
    let fault = json!({"path": "/never", "status": 500});
    let mut last = String::new();
    for _ in 0..1000 {
        last = control
            .post("/_roster/faults", fault.clone())
            .await
            .result()["id"]
            .as_str()
            .unwrap()
            .to_string();
    }
    let refused = control.post("/_roster/faults", fault.clone()).await;
    refused.expect_error(400, 1002);
    assert!(refused.error_message().contains("1000"), "{}", refused.body);
    let held = control.get("/_roster/faults").await;
    assert_eq!(held.result().as_array().unwrap().len(), 1000);
    control
        .delete(&format!("/_roster/faults/{last}"))
        .await
        .result();
    control.post("/_roster/faults", fault).await.result();

    for i in 0..100 {
        control
            .post("/_roster/snapshots", json!({"name": format!("s{i}")}))
            .await
            .result();
    }
    let refused = control
        .post("/_roster/snapshots", json!({"name": "one-more"}))
        .await;
    refused.expect_error(400, 1002);
    assert!(refused.error_message().contains("100"), "{}", refused.body);
    control
        .post("/_roster/snapshots", json!({"name": "s7"}))
        .await
        .result();
    control.delete("/_roster/snapshots/s7").await.result();
    control
        .post("/_roster/snapshots", json!({"name": "one-more"}))
        .await
        .result();
    let listed = control.get("/_roster/snapshots").await;
    assert_eq!(listed.result().as_array().unwrap().len(), 100);
}

/// The control plane takes a change only when it says `Content-Type: application/json`,
/// with a body or without: what a web page can make a browser send cross-site without a
/// preflight (`text/plain`, a form, multipart, or no body and no type) is refused with
/// 415 and changes nothing.
#[tokio::test]
async fn the_control_plane_takes_changes_only_as_json() {
    let server = TestServer::emulator().await;
    invite(&server, "kept@example.com").await;
    let changed = server.store.export().await.unwrap();
    let http = reqwest::Client::new();
    let url = |path: &str| format!("http://{}{path}", server.addr);
    let refused = [
        (Method::POST, "/_roster/reset", None, ""),
        (Method::POST, "/_roster/reset", Some("text/plain"), "{}"),
        (
            Method::POST,
            "/_roster/faults",
            Some("text/plain;charset=UTF-8"),
            r#"{"status": 500}"#,
        ),
        (
            Method::POST,
            "/_roster/faults",
            Some("application/x-www-form-urlencoded"),
            "status=500",
        ),
        (
            Method::POST,
            "/_roster/snapshots",
            Some("multipart/form-data; boundary=x"),
            "--x--",
        ),
        (
            Method::POST,
            "/_roster/clock",
            Some("application/jsonp"),
            r#"{"advance_seconds": 60}"#,
        ),
        (Method::DELETE, "/_roster/requests", None, ""),
        (
            Method::POST,
            "/_roster/users",
            Some("text/plain"),
            r#"{"email": "forged@example.com"}"#,
        ),
    ];
    for (method, path, content_type, body) in refused {
        let mut req = http.request(method.clone(), url(path)).body(body);
        if let Some(content_type) = content_type {
            req = req.header("content-type", content_type);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 415, "{method} {path} as {content_type:?}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["success"], false, "{body}");
        assert_eq!(body["errors"][0]["code"], 1015, "{body}");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("application/json"),
            "{body}"
        );
    }
    let control = server.raw(&[]);
    assert_eq!(server.store.export().await.unwrap(), changed);
    assert_eq!(control.get("/_roster/faults").await.result(), &json!([]));
    assert_eq!(control.get("/_roster/snapshots").await.result(), &json!([]));
    assert_eq!(
        control.get("/_roster/clock").await.result()["offset_seconds"],
        0
    );
    // Reads need no type; a change without a body needs only the header.
    let res = http
        .post(url("/_roster/reset"))
        .header("content-type", "Application/JSON; charset=utf-8")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_ne!(server.store.export().await.unwrap(), changed);
}

/// A token's use is recorded again after a reset has put back the seeded token (which
/// was never used), though the token was used a moment before the reset.
#[tokio::test]
async fn a_tokens_use_is_recorded_again_after_a_reset() {
    let server = TestServer::emulator().await;
    let bearer = server.with_token("RosterDemoAccountToken000000000000000000");
    let verify = format!("/accounts/{DEMO_ACCOUNT}/tokens/verify");
    let last_used = || async {
        let data = server.store.export().await.unwrap();
        let token = data
            .tokens
            .into_iter()
            .find(|t| t.id == "a7c3e9f1b2d44c6e8f0a1b3c5d7e9f20")
            .expect("the demo's token");
        token.last_used_on
    };
    // The use is written after the request is answered.
    let recorded = || async {
        for _ in 0..1_000 {
            if last_used().await.is_some() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("the token's use is never recorded");
    };
    bearer.get(&verify).await.result();
    recorded().await;
    server
        .raw(&[])
        .post("/_roster/reset", json!({}))
        .await
        .result();
    assert_eq!(last_used().await, None, "as seeded");
    bearer.get(&verify).await.result();
    recorded().await;
}

/// A fault may answer a body of the test's own, verbatim, as a stub: with its status (200
/// when it gives none), `Content-Type: application/json` and `Retry-After` when asked.
#[tokio::test]
async fn a_fault_answers_a_given_body_as_a_stub() {
    let server = TestServer::emulator().await;
    let control = server.raw(&[]);
    let demo = server.raw(&demo_headers());
    let stub = json!({"success": true, "errors": [], "messages": [],
                      "result": [{"id": "stubbed", "nested": {"n": 1.5, "list": [null, true]}}]});
    let added = control
        .post(
            "/_roster/faults",
            json!({"method": "GET", "path": "/client/v4/memberships", "body": stub, "times": 1}),
        )
        .await;
    assert_eq!(added.result()["body"], stub, "listed as given");
    let hit = demo.get("/client/v4/memberships").await;
    assert_eq!(hit.status, 200);
    assert_eq!(hit.body, stub);
    assert_eq!(hit.headers["content-type"], "application/json");
    assert_eq!(
        demo.get("/client/v4/memberships").await.body["result"][0]["status"],
        "accepted",
        "used up"
    );
    // Any status from 200 to 599, any JSON value, `null` included.
    for (status, body) in [
        (201, json!("just text")),
        (404, json!({"detail": "made up"})),
        (503, json!(null)),
        (299, json!([1, 2, 3])),
    ] {
        control
            .post(
                "/_roster/faults",
                json!({"path": "/client/v4/user", "status": status, "body": body,
                       "retry_after": 3, "times": 1}),
            )
            .await
            .result();
        let hit = demo.get("/client/v4/user").await;
        assert_eq!(hit.status, status);
        assert_eq!(hit.body, body, "{status}");
        assert_eq!(hit.headers["content-type"], "application/json");
        assert_eq!(hit.headers["retry-after"], "3");
    }
    let journal = control.get("/_roster/requests?path=/client/v4/user").await;
    let statuses: Vec<&Value> = journal
        .result()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["status"])
        .collect();
    assert_eq!(statuses, [201, 404, 503, 299], "journaled as answered");
}

/// `POST /_roster/users` makes a user with a global API key (the one given, or a new one
/// shown once), usable at once; a taken email is a 409, a bad field a 400 naming it, and
/// neither changes anything; a reset removes the users made so, as they are not seeded.
#[tokio::test]
async fn a_test_makes_its_own_users() {
    let server = TestServer::emulator().await;
    let control = server.raw(&[]);
    let key = "0123456789abcdef0123456789abcdef01234";
    // A refusal before the user exists is not remembered.
    let as_ripley = server.as_user(&Creds {
        email: "ripley@example.com".into(),
        key: key.into(),
    });
    as_ripley.get("/user").await.expect_error(403, 9103);
    let made = control
        .post(
            "/_roster/users",
            json!({"email": "Ripley@Example.com", "first_name": "Ellen", "last_name": "Ripley",
                   "api_key": key.to_uppercase()}),
        )
        .await;
    let result = made.result().clone();
    let id = result["id"].as_str().unwrap().to_string();
    assert_eq!(
        result,
        json!({"id": id, "email": "Ripley@Example.com", "first_name": "Ellen",
               "last_name": "Ripley", "two_factor_authentication_enabled": false, "api_key": key})
    );
    // Kept as a digest, never as given, and audited as any user made.
    let data = server.store.export().await.unwrap();
    let row = data.users.iter().find(|u| u.id == id).unwrap();
    assert_ne!(row.api_key_hash, key);
    assert!(!serde_json::to_string(&data).unwrap().contains(key));
    let me = as_ripley.get("/user").await;
    assert_eq!(me.result()["id"], id.as_str());
    assert_eq!(me.result()["first_name"], "Ellen");
    // Without a key, a new one, shown once; names are optional.
    let made = control
        .post("/_roster/users", json!({"email": "eve@example.com"}))
        .await;
    let eve = Creds {
        email: "eve@example.com".into(),
        key: made.result()["api_key"].as_str().unwrap().to_string(),
    };
    assert_eq!(eve.key.len(), 37);
    assert!(made.result()["first_name"].is_null());
    server.as_user(&eve).get("/user").await.result();
    server.account(&eve, "Eve's").await;

    let users = || async { server.store.export().await.unwrap().users.len() };
    let before = users().await;
    let taken = control
        .post("/_roster/users", json!({"email": "RIPLEY@example.com"}))
        .await;
    taken.expect_error(409, 1009);
    assert_eq!(taken.headers["x-should-retry"], "false");
    control
        .post("/_roster/users", json!({"email": "dana@example.com"}))
        .await
        .expect_error(409, 1009);
    for (body, field) in [
        (json!({"email": "not an address"}), "email"),
        (
            json!({"email": "x@example.com", "api_key": "abc"}),
            "api_key",
        ),
        (
            json!({"email": "x@example.com", "api_key": "g".repeat(37)}),
            "api_key",
        ),
        (
            json!({"email": "x@example.com", "first_name": "x".repeat(61)}),
            "first_name",
        ),
        (
            json!({"email": "x@example.com", "last_name": null}),
            "last_name",
        ),
        (json!({"email": "x@example.com", "role": "admin"}), "role"),
        (json!({"first_name": "Nobody"}), "email"),
    ] {
        let refused = control.post("/_roster/users", body.clone()).await;
        refused.expect_error(400, 1002);
        assert!(
            refused.error_message().contains(field),
            "{body}: {}",
            refused.body
        );
    }
    assert_eq!(users().await, before, "nothing refused was made");
    let refused = control.send(Method::POST, "/_roster/users", None).await;
    assert_eq!(refused.status, 400, "a body is needed: {}", refused.body);

    // Not in the seeded state: a reset removes them, and their keys with them.
    control.post("/_roster/reset", json!({})).await.result();
    as_ripley.get("/user").await.expect_error(403, 9103);
    server
        .as_user(&eve)
        .get("/user")
        .await
        .expect_error(403, 9103);
    server.as_user(&Creds::demo()).get("/user").await.result();
}

/// A user made with two-factor authentication can join an account that enforces it (the
/// demo's); one made without cannot, as with any user.
#[tokio::test]
async fn a_test_user_with_two_factor_joins_an_account_that_enforces_it() {
    let server = TestServer::emulator().await;
    let control = server.raw(&[]);
    let demo_account = "023e105f4ecef8ad9ca31a8372d0c353";
    let roles = server
        .as_user(&Creds::demo())
        .get(&format!("/accounts/{demo_account}/roles"))
        .await;
    let admin_read_only = roles
        .result()
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "Administrator Read Only")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    for (email, two_factor, answer) in [
        ("with.2fa@example.com", true, 200),
        ("without.2fa@example.com", false, 403),
    ] {
        let made = control
            .post(
                "/_roster/users",
                json!({"email": email, "two_factor_authentication_enabled": two_factor}),
            )
            .await;
        assert_eq!(
            made.result()["two_factor_authentication_enabled"],
            two_factor
        );
        let user = Creds {
            email: email.into(),
            key: made.result()["api_key"].as_str().unwrap().to_string(),
        };
        let member = server
            .invite(&Creds::demo(), demo_account, email, &[&admin_read_only])
            .await;
        let accepted = server
            .as_user(&user)
            .put(
                &format!("/memberships/{member}"),
                json!({"status": "accepted"}),
            )
            .await;
        if answer == 200 {
            assert_eq!(accepted.result()["status"], "accepted");
        } else {
            accepted.expect_error(403, 1006);
        }
    }
    control
        .post(
            "/_roster/users",
            json!({"email": "x@example.com", "two_factor_authentication_enabled": "yes"}),
        )
        .await
        .expect_error(400, 1002);
}

/// The journal's `limit`: only the newest that many of the requests that match, still
/// oldest first.
#[tokio::test]
async fn the_journals_limit_keeps_the_newest_that_match() {
    let server = TestServer::emulator().await;
    let control = server.raw(&[]);
    let demo = server.raw(&demo_headers());
    for path in [
        "/client/v4/user",
        "/client/v4/memberships",
        "/client/v4/user",
        "/client/v4/accounts",
    ] {
        demo.get(path).await;
    }
    assert_eq!(
        journal_paths(&control, "limit=2").await,
        ["/client/v4/user", "/client/v4/accounts"]
    );
    assert_eq!(
        journal_paths(&control, "limit=2&path=/client/v4/user").await,
        ["/client/v4/user", "/client/v4/user"]
    );
    assert_eq!(
        journal_paths(&control, "limit=1&path=/client/v4/m*").await,
        ["/client/v4/memberships"]
    );
    assert_eq!(journal_paths(&control, "limit=10").await.len(), 4);
    assert!(journal_paths(&control, "limit=0").await.is_empty());
    control
        .get("/_roster/requests?limit=-1")
        .await
        .expect_error(400, 1002);
}

/// The paths of the journal's entries that `query` selects, oldest first.
async fn journal_paths(control: &Client, query: &str) -> Vec<String> {
    control
        .get(&format!("/_roster/requests?{query}"))
        .await
        .result()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_string())
        .collect()
}
