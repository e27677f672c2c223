//! Limits that keep one client from hurting the others: the per-user rate limit (429 with
//! `Retry-After`, as Cloudflare's), slow requests (408), and many connections at once.

use std::num::NonZeroU32;
use std::time::Duration;

use roster::api::Limits;
use roster::api::error::codes;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;

const DNS: &str = "87e7860bc4c445faba075646dac38cca";

fn limits(rate: Option<u32>) -> Limits {
    Limits {
        rate: rate.map(|n| (NonZeroU32::new(n).unwrap(), Duration::from_secs(300))),
        ..Limits::default()
    }
}

#[tokio::test]
async fn over_the_rate_limit_is_429_with_retry_after_and_changes_nothing() {
    let server = TestServer::start_with(&limits(Some(4))).await;
    let owner = server.user("owner@example.com").await;
    let other = server.user("other@example.com").await;
    let account = server.account(&owner, "Acme").await;
    for _ in 0..3 {
        server.as_user(&owner).get("/user").await.result();
    }
    let members = format!("/accounts/{account}/members");
    let r = server
        .as_user(&owner)
        .post(
            &members,
            json!({"email": "new@example.com", "roles": [DNS]}),
        )
        .await;
    r.expect_error(429, i64::from(codes::RATE_LIMITED));
    assert_eq!(
        r.error_message(),
        "Please wait and consider throttling your request speed"
    );
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    // One request's share of 300 s.
    assert!((1..=75).contains(&retry), "Retry-After {retry}");
    // Waiting is what this one asks: the SDKs may retry it.
    assert!(!r.headers.contains_key("x-should-retry"));
    // Another user is not held back, and the refused invitation was not made.
    server.as_user(&other).get("/user").await.result();
    server
        .as_user(&owner)
        .get(&members)
        .await
        .expect_error(429, i64::from(codes::RATE_LIMITED));
    let fresh = TestServer::start_with(&limits(None)).await;
    let admin = fresh.user("admin@example.com").await;
    for _ in 0..50 {
        fresh.as_user(&admin).get("/user").await.result();
    }
    drop(fresh);
    let invited = server
        .store
        .user_memberships("new@example.com")
        .await
        .unwrap();
    assert!(invited.is_empty(), "a rate-limited write changes nothing");
}

#[tokio::test]
async fn a_request_slower_than_the_timeout_is_408() {
    let server = TestServer::start_with(&Limits {
        request_timeout: Duration::from_secs(1),
        ..Limits::default()
    })
    .await;
    let owner = server.user("owner@example.com").await;
    let account = server.account(&owner, "Acme").await;
    let body = json!({"email": "slow@example.com", "roles": [DNS]}).to_string();
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /client/v4/accounts/{account}/members HTTP/1.1\r\nHost: x\r\nX-Auth-Email: {}\r\n\
         X-Auth-Key: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        owner.email,
        owner.key,
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // Half the body, then nothing.
    stream.write_all(&body.as_bytes()[..10]).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&answer).contains("\"success\":false") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed without an answer");
            answer.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("answered within the timeout");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains(&format!("\"code\":{}", codes::TIMEOUT)),
        "{answer}"
    );
    assert!(
        server
            .store
            .user_memberships("slow@example.com")
            .await
            .unwrap()
            .is_empty(),
        "the slow invitation was not made"
    );
}

#[tokio::test]
async fn two_hundred_concurrent_connections_are_all_answered() {
    let server = TestServer::start_with(&limits(None)).await;
    let owner = server.user("owner@example.com").await;
    let account = server.account(&owner, "Acme").await;
    let url = server.url(&format!("/accounts/{account}/members"));
    let mut tasks = Vec::new();
    for _ in 0..200 {
        // One client each, so each holds its own connection.
        let http = reqwest::Client::new();
        let (url, owner) = (url.clone(), owner.clone());
        tasks.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            for _ in 0..3 {
                let res = http
                    .get(&url)
                    .header("X-Auth-Email", &owner.email)
                    .header("X-Auth-Key", &owner.key)
                    .send()
                    .await
                    .expect("answered");
                statuses.push(res.status().as_u16());
            }
            statuses
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), [200, 200, 200]);
    }
}

/// A long path costs the server no more than a short one: past Cloudflare's 16 KB the
/// target is refused with 414 before routing, and below it the 404 quotes at most a few
/// hundred bytes of it. Neither needs credentials, and neither changes anything.
#[tokio::test]
async fn long_request_targets_are_refused_or_quoted_short() {
    let server = TestServer::start().await;
    for (length, status, code) in [
        (60_000, 414, codes::URI_TOO_LONG),
        (roster::api::MAX_TARGET_BYTES + 1, 414, codes::URI_TOO_LONG),
        (10_000, 404, codes::NO_ROUTE),
    ] {
        let path = format!("/{}", "a".repeat(length - "/client/v4/".len()));
        let r = server.anonymous().get(&path).await;
        r.expect_error(status, i64::from(code));
        let body = r.body.to_string();
        assert!(body.len() < 1_000, "{length}: a {} byte answer", body.len());
        assert!(r.headers.contains_key("cf-ray"));
    }
    // Just under the limit, a query string counts with the path.
    let query = "a".repeat(roster::api::MAX_TARGET_BYTES);
    server
        .anonymous()
        .get(&format!("/user?{query}"))
        .await
        .expect_error(414, i64::from(codes::URI_TOO_LONG));
}

/// Wrong credentials again and again from one address get 429 (`Retry-After`) once they
/// have used up the allowance, exactly, before they are even checked, right ones from that
/// address too; the user they guess at still gets in from another address, and another
/// email from the guessing address is counted apart.
#[tokio::test]
async fn failed_authentications_are_throttled_per_address() {
    let server = TestServer::start_with(&Limits {
        // 6 a minute from one address, 2 for one email.
        failed_auth: NonZeroU32::new(6),
        ..Limits::default()
    })
    .await;
    let victim = server.user("victim@example.com").await;
    let other = server.user("other@example.com").await;
    let get_user = |http: reqwest::Client, who: &Creds, key: String| {
        let url = format!("http://{}/client/v4/user", server.addr);
        let email = who.email.clone();
        async move {
            let r = http
                .get(url)
                .header("X-Auth-Email", email)
                .header("X-Auth-Key", key)
                .send()
                .await
                .unwrap();
            let retry = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            let should_retry = r
                .headers()
                .get("x-should-retry")
                .map(|v| v.to_str().unwrap().to_string());
            let status = r.status().as_u16();
            let body: serde_json::Value = r.json().await.unwrap();
            (
                status,
                body["errors"][0]["code"].clone(),
                (retry, should_retry),
            )
        }
    };
    let (guesser, elsewhere) = (from(2), from(3));
    let wrong = "0".repeat(37);
    // Two wrong keys for one email are answered, and that is all.
    for _ in 0..2 {
        let (status, code, _) = get_user(guesser.clone(), &victim, wrong.clone()).await;
        assert_eq!((status, code), (403, json!(9103)));
    }
    let (status, code, (retry, should_retry)) =
        get_user(guesser.clone(), &victim, wrong.clone()).await;
    assert_eq!((status, code), (429, json!(codes::RATE_LIMITED)));
    let retry: u64 = retry.expect("Retry-After").parse().unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    // A wrong key stays wrong: the SDKs are told not to retry (they would, after
    // `Retry-After`, up to ten times).
    assert_eq!(should_retry.as_deref(), Some("false"));
    // The right key from the guessing address waits too: it is not looked at.
    let (status, _, _) = get_user(guesser.clone(), &victim, victim.key.clone()).await;
    assert_eq!(status, 429);
    // The user gets in from elsewhere.
    let (status, _, _) = get_user(elsewhere.clone(), &victim, victim.key.clone()).await;
    assert_eq!(status, 200);
    // Another email from the guessing address is counted on its own...
    let (status, _, _) = get_user(guesser.clone(), &other, other.key.clone()).await;
    assert_eq!(status, 200);
    let (status, _, _) = get_user(guesser.clone(), &other, wrong.clone()).await;
    assert_eq!(status, 403);
    let (status, _, _) = get_user(guesser.clone(), &other, other.key.clone()).await;
    assert_eq!(
        status, 200,
        "one failure for this email, three from the address"
    );
    // ... until the address as a whole has failed its six.
    for n in 0..3 {
        let nobody = Creds {
            email: format!("nobody{n}@example.com"),
            key: wrong.clone(),
        };
        let (status, _, _) = get_user(guesser.clone(), &nobody, wrong.clone()).await;
        assert_eq!(status, 403, "failure {} from the address", 4 + n);
    }
    let (status, _, _) = get_user(guesser.clone(), &other, other.key.clone()).await;
    assert_eq!(status, 429, "six failures from the address");
    let (status, _, _) = get_user(elsewhere, &other, other.key.clone()).await;
    assert_eq!(status, 200);
}

/// An IPv6 client is counted by its /64 and, with several times the allowance, by its /48
/// too: a site that guesses from a fresh /64 each time is refused (429, `Retry-After`) once
/// its /48 has failed that often, the right key from another of its /64s as well, while a
/// client in another /48 still gets in. Played through the router with the peer address the
/// server hands it (as `serve` does): no machine running the tests holds a /48 to connect
/// from.
#[tokio::test]
async fn an_ipv6_site_guessing_from_many_64s_is_throttled_by_its_48() {
    use axum::extract::ConnectInfo;
    use http_body_util::BodyExt;
    use std::net::{Ipv6Addr, SocketAddr};
    use tower::ServiceExt;
    // Each /64 is refused after one failure: every guess below comes from a fresh one.
    let limits = Limits {
        failed_auth: NonZeroU32::new(1),
        ..Limits::default()
    };
    let server = TestServer::start_with(&limits).await;
    let user = server.user("site@example.com").await;
    let app = roster::api::router(server.store.clone(), &limits);
    let send = |peer: Ipv6Addr, key: &str| {
        let request = axum::http::Request::get("/client/v4/user")
            .header("X-Auth-Email", &user.email)
            .header("X-Auth-Key", key)
            .extension(ConnectInfo(SocketAddr::from((peer, 50_000))))
            .body(axum::body::Body::empty())
            .unwrap();
        let app = app.clone();
        async move {
            let response = app.oneshot(request).await.unwrap();
            let status = response.status().as_u16();
            let retry = response.headers().contains_key("retry-after");
            let body = response.into_body().collect().await.unwrap().to_bytes();
            let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
            (status, body["errors"][0]["code"].clone(), retry)
        }
    };
    let in_site = |n: u16| Ipv6Addr::new(0x2001, 0xdb8, 0x48, n, 0, 0, 0, 1);
    let wrong = "0".repeat(37);
    let mut guesses = 0;
    loop {
        assert!(guesses < 1_000, "1,000 /64s of one /48 guessed unrefused");
        let answer = send(in_site(guesses), &wrong).await;
        if answer.0 == 429 {
            assert_eq!(answer.1, json!(codes::RATE_LIMITED));
            assert!(answer.2, "Retry-After");
            break;
        }
        assert_eq!((answer.0, answer.1), (403, json!(9103)), "guess {guesses}");
        guesses += 1;
    }
    assert!(guesses > 1, "more than one /64's allowance: {guesses}");
    let (status, _, _) = send(in_site(0xffff), &user.key).await;
    assert_eq!(status, 429, "another /64 of the /48, with the right key");
    let elsewhere = Ipv6Addr::new(0x2001, 0xdb8, 0x49, 0, 0, 0, 0, 1);
    let (status, _, _) = send(elsewhere, &user.key).await;
    assert_eq!(status, 200, "another /48");
}

/// A client on 127.0.0.`last`.
fn from(last: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, last]))
        .build()
        .unwrap()
}

/// A token that is a real one but not usable now (disabled, expired, not yet valid) is
/// refused as Cloudflare refuses it, but is no guess: however often it is sent, the
/// address is not throttled, and its user's key still works from there. An unknown token
/// is a guess.
#[tokio::test]
async fn unusable_tokens_are_not_counted_as_guesses() {
    let server = TestServer::start_with(&Limits {
        failed_auth: NonZeroU32::new(3),
        ..Limits::default()
    })
    .await;
    let user = server.user("user@example.com").await;
    let (id, _) = server
        .store
        .user_by_email("user@example.com")
        .await
        .unwrap()
        .expect("the user");
    let groups = vec![
        roster::domain::catalog::permission_group_named("User Details Read")
            .unwrap()
            .id
            .clone(),
    ];
    let mut secrets = Vec::new();
    for change in [
        |t: &mut roster::domain::tokens::Token| {
            t.status = roster::domain::tokens::TokenStatus::Disabled;
        },
        |t: &mut roster::domain::tokens::Token| t.expires_on = Some("2020-01-01T00:00:00Z".into()),
        |t: &mut roster::domain::tokens::Token| t.not_before = Some("2999-01-01T00:00:00Z".into()),
    ] {
        let secret = roster::auth::generate_token();
        let mut token =
            roster::domain::tokens::simple_token(&id.id, "unusable".into(), groups.clone(), None)
                .unwrap();
        change(&mut token);
        server
            .store
            .insert_token(&token, &roster::auth::hash_secret(&secret), None)
            .await
            .unwrap();
        secrets.push(secret);
    }
    let client = from(4);
    let get = |secret: &str, key: Option<&str>| {
        let mut r = client.get(format!("http://{}/client/v4/user", server.addr));
        r = match key {
            Some(key) => r
                .header("X-Auth-Email", &user.email)
                .header("X-Auth-Key", key),
            None => r.bearer_auth(secret),
        };
        async move {
            let r = r.send().await.unwrap();
            let status = r.status().as_u16();
            let body: serde_json::Value = r.json().await.unwrap();
            (status, body["errors"][0]["code"].clone())
        }
    };
    for secret in &secrets {
        for _ in 0..5 {
            assert_eq!(
                get(secret, None).await,
                (403, json!(codes::AUTHENTICATION_ERROR))
            );
        }
    }
    assert_eq!(get("", Some(&user.key)).await.0, 200);
    // Unknown tokens are guesses: three are answered, then the address waits.
    let unknown = roster::auth::generate_token();
    for _ in 0..3 {
        assert_eq!(
            get(&unknown, None).await,
            (403, json!(codes::AUTHENTICATION_ERROR))
        );
    }
    assert_eq!(get(&unknown, None).await.0, 429);
    assert_eq!(get("", Some(&user.key)).await.0, 429);
}

/// A body declared larger than the limit is refused at once with 413, not waited for
/// until the request times out (408).
#[tokio::test]
async fn a_body_declared_too_large_is_refused_before_it_is_sent() {
    let server = TestServer::start_with(&Limits {
        max_body_bytes: 1000,
        request_timeout: Duration::from_secs(5),
        ..Limits::default()
    })
    .await;
    let owner = server.user("owner@example.com").await;
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /client/v4/accounts HTTP/1.1\r\nHost: x\r\nX-Auth-Email: {}\r\nX-Auth-Key: {}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000001\r\n\r\n",
        owner.email, owner.key
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // No body follows.
    let mut answer = vec![0u8; 4096];
    let n = stream.read(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer.contains(&format!("\"code\":{}", codes::TOO_LARGE)),
        "{answer}"
    );
}

/// What one request may make every later request weigh is bounded, with a clear 400 and
/// nothing written: a token's policies, a member's policies and a policy's groups. An
/// email holding invisible or direction-changing characters, which can pass for another
/// address, is refused.
#[tokio::test]
async fn unbounded_grants_and_invisible_characters_are_refused() {
    let server = TestServer::start().await;
    let owner = server.user("owner@example.com").await;
    let account = server.account(&owner, "Bounded").await;
    let group = server.whole_account_group(&owner, &account, None).await;
    let me = server.as_user(&owner);
    let settings_read = "15b972a8f4cb43e78efbafb322f7dee5";
    let token_policy = json!({
        "effect": "allow",
        "permission_groups": [{"id": settings_read}],
        "resources": {"com.cloudflare.api.account.*": "*"},
    });
    let r = me
        .post(
            "/user/tokens",
            json!({"name": "many", "policies": vec![token_policy.clone(); 51]}),
        )
        .await;
    r.expect_error(400, i64::from(codes::INVALID_INPUT));
    assert!(r.error_message().contains("at most 50"), "{}", r.body);
    let many_resources: serde_json::Map<String, serde_json::Value> = (0..101)
        .map(|i| (format!("com.cloudflare.api.account.{i:032x}"), json!("*")))
        .collect();
    let mut wide = token_policy.clone();
    wide["resources"] = many_resources.into();
    let r = me
        .post("/user/tokens", json!({"name": "wide", "policies": [wide]}))
        .await;
    r.expect_error(400, i64::from(codes::INVALID_INPUT));
    assert!(r.error_message().contains("at most 100"), "{}", r.body);
    assert_eq!(me.get("/user/tokens").await.result(), &json!([]));

    let members = format!("/accounts/{account}/members");
    let member_policy = json!({"access": "allow", "permission_groups": [{"id": settings_read}], "resource_groups": [{"id": group}]});
    me.post(
        &members,
        json!({"email": "many@example.com", "policies": vec![member_policy.clone(); 51]}),
    )
    .await
    .expect_error(400, i64::from(codes::INVALID_INPUT));
    let mut groups = member_policy.clone();
    groups["permission_groups"] = vec![json!({"id": settings_read}); 101].into();
    let r = me
        .post(
            &members,
            json!({"email": "many@example.com", "policies": [groups]}),
        )
        .await;
    r.expect_error(400, i64::from(codes::INVALID_INPUT));
    assert!(r.error_message().contains("at most 100"), "{}", r.body);
    for email in [
        "evil\u{202E}moc.elpmaxe@example.com",
        "zero\u{200B}width@example.com",
    ] {
        me.post(&members, json!({"email": email, "roles": [DNS]}))
            .await
            .expect_error(400, i64::from(codes::INVALID_INPUT));
    }
    assert_eq!(
        me.get(&members).await.body["result_info"]["total_count"],
        1,
        "nothing was written"
    );
}

/// Headers past Cloudflare's 32 KB are answered 431 in the v4 envelope, with a ray id,
/// before anything else is looked at.
#[tokio::test]
async fn oversized_headers_get_431_in_the_envelope() {
    let server = TestServer::start().await;
    let r = reqwest::Client::new()
        .get(format!("http://{}/client/v4/user", server.addr))
        .header("X-Padding", "a".repeat(roster::api::MAX_HEADER_BYTES))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 431);
    assert!(r.headers().contains_key("cf-ray"));
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["success"], false);
    assert_eq!(body["errors"][0]["code"], codes::HEADERS_TOO_LARGE);
}

/// While every connection place is taken and a client waits for one, a connection that
/// sits idle on keep-alive gives its place up: clients that keep connections open and send
/// a request now and then cannot shut everyone else out until the header timeout (600 s
/// here) closes them.
#[tokio::test]
async fn an_idle_kept_alive_connection_makes_room_for_a_waiting_one() {
    let server = TestServer::start_with_connections(roster::server::Connections {
        max: 1,
        header_timeout: Duration::from_secs(600),
        idle_yield: Duration::from_millis(100),
    })
    .await;
    let mut holder = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    holder
        .write_all(b"GET /_roster/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&answer).contains("\"success\":true") {
        let n = holder.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed without an answer");
        answer.extend_from_slice(&buf[..n]);
    }
    // Kept alive, and now idle. A second client waits for the only place.
    let url = format!("http://{}/_roster/health", server.addr);
    let waiting = tokio::spawn(async move { reqwest::get(url).await.map(|r| r.status()) });
    let closed = tokio::time::timeout(Duration::from_secs(60), holder.read(&mut buf))
        .await
        .expect("the idle connection gave its place up");
    assert_eq!(closed.unwrap_or(0), 0, "closed, not answered");
    let status = tokio::time::timeout(Duration::from_secs(60), waiting)
        .await
        .expect("the waiting client got the place")
        .unwrap()
        .unwrap();
    assert_eq!(status, 200);
}

/// A request with a token guesses at no email: the `X-Auth-Email` it may also carry (the
/// SDKs send every credential they were given) is neither refused when that email is
/// throttled nor counted.
#[tokio::test]
async fn a_token_request_is_not_held_to_its_email_header() {
    let server = TestServer::start_with(&Limits {
        failed_auth: NonZeroU32::new(6),
        ..Limits::default()
    })
    .await;
    let victim = server.user("victim@example.com").await;
    let token = server.token(&victim, &["User Details Read"]).await;
    let guesser = from(4);
    let url = format!("http://{}/client/v4/user", server.addr);
    let send = |headers: Vec<(&'static str, String)>| {
        let (http, url) = (guesser.clone(), url.clone());
        async move {
            let mut r = http.get(url);
            for (k, v) in headers {
                r = r.header(k, v);
            }
            r.send().await.unwrap().status().as_u16()
        }
    };
    let wrong = "0".repeat(37);
    for _ in 0..2 {
        let status = send(vec![
            ("X-Auth-Email", victim.email.clone()),
            ("X-Auth-Key", wrong.clone()),
        ])
        .await;
        assert_eq!(status, 403);
    }
    let by_key = vec![
        ("X-Auth-Email", victim.email.clone()),
        ("X-Auth-Key", victim.key.clone()),
    ];
    assert_eq!(send(by_key).await, 429, "the email is throttled here");
    let by_token = vec![
        ("X-Auth-Email", victim.email.clone()),
        ("Authorization", format!("Bearer {token}")),
    ];
    assert_eq!(
        send(by_token).await,
        200,
        "a token is no guess at the email"
    );
}
