//! `/user/tokens`: making, reading, changing, rolling and deleting tokens, and every reason a
//! token is refused: status, time window, client address, policies (deny wins), and never
//! more than its owner has.

use roster::auth::hash_secret;
use roster::domain::catalog;
use roster::domain::tokens;
use serde_json::{Value, json};

use crate::helpers::*;

const MEMBERSHIPS_READ: &str = "05de63ec42a143408bcece00dee847e4";
const MEMBERSHIPS_WRITE: &str = "d1e5ea4d88a94a42bd357447aca341d9";
const SETTINGS_READ: &str = "15b972a8f4cb43e78efbafb322f7dee5";
const SETTINGS_WRITE: &str = "bcc19b668966402dadd900f2b4243d2e";
const TOKENS_READ: &str = "0cc3a61731504c89b99ec1be78b77aa0";
const TOKENS_WRITE: &str = "686d18d5ac6c441c867cbf6771e58a0a";
const ADMIN_RO: &str = "25a6523fbf0a4cdaa8af77b778c7dd19";

async fn user_id(server: &TestServer, creds: &Creds) -> String {
    server.as_user(creds).get("/user").await.result()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `GET /user/tokens` of `creds`' user once their one token's use is recorded, which
/// happens after the request that used it has been answered.
async fn use_recorded(server: &TestServer, creds: &Creds) -> Resp {
    for _ in 0..1_000 {
        let listed = server.as_user(creds).get("/user/tokens").await;
        if listed.result()[0]["last_used_on"].is_string() {
            return listed;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the token's use is never recorded");
}

fn policy(effect: &str, groups: &[&str], resources: &[&str]) -> Value {
    json!({
        "effect": effect,
        "permission_groups": groups.iter().map(|g| json!({"id": g})).collect::<Vec<_>>(),
        "resources": resources.iter().map(|r| (r.to_string(), json!("*"))).collect::<serde_json::Map<_, _>>(),
    })
}

/// Makes a token through the API and returns (id, secret).
async fn create(server: &TestServer, creds: &Creds, body: Value) -> (String, String) {
    let r = server.as_user(creds).post("/user/tokens", body).await;
    let result = r.result();
    (
        result["id"].as_str().unwrap().to_string(),
        result["value"]
            .as_str()
            .expect("the value, once")
            .to_string(),
    )
}

async fn token_count(server: &TestServer, creds: &Creds) -> usize {
    server
        .as_user(creds)
        .get("/user/tokens?include_expired=true")
        .await
        .result()
        .as_array()
        .unwrap()
        .len()
}

#[tokio::test]
async fn a_token_made_through_the_api_works_and_its_secret_is_shown_once() {
    let server = TestServer::start().await;
    let alice = server.user("alice@example.com").await;
    let me = format!("com.cloudflare.api.user.{}", user_id(&server, &alice).await);
    let (id, secret) = create(
        &server,
        &alice,
        json!({"name": "readonly", "policies": [policy("allow", &[MEMBERSHIPS_READ], &[&me])],
               "expires_on": "2999-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(secret.len(), 40);

    let shown = server
        .as_user(&alice)
        .get(&format!("/user/tokens/{id}"))
        .await;
    let token = shown.result();
    assert!(
        token.get("value").is_none(),
        "the secret is never shown again"
    );
    assert_eq!(token["name"], "readonly");
    assert_eq!(token["status"], "active");
    assert_eq!(token["expires_on"], "2999-01-01T00:00:00Z");
    assert_eq!(
        token["policies"][0]["permission_groups"][0]["name"],
        "Memberships Read"
    );
    assert_eq!(token["policies"][0]["resources"][&me], "*");
    assert!(token.get("last_used_on").is_none());
    assert!(
        !serde_json::to_string(&shown.body)
            .unwrap()
            .contains(&hash_secret(&secret))
    );

    server
        .with_token(&secret)
        .get("/memberships")
        .await
        .result();
    let listed = use_recorded(&server, &alice).await;
    assert_eq!(listed.result()[0]["id"], id.as_str());
    assert_eq!(listed.body["result_info"]["total_count"], 1);

    // The token's policies hold nothing beyond reading memberships.
    server
        .with_token(&secret)
        .get("/user")
        .await
        .expect_error(403, 9109);
    let verified = server.with_token(&secret).get("/user/tokens/verify").await;
    assert_eq!(verified.result()["id"], id.as_str());
    assert_eq!(verified.result()["status"], "active");
    assert_eq!(verified.body["messages"][0]["code"], 10000);
    // Only a bearer token can be verified.
    server
        .as_user(&alice)
        .get("/user/tokens/verify")
        .await
        .expect_error(400, 6003);
}

#[tokio::test]
async fn inactive_tokens_are_refused_with_10000() {
    let server = TestServer::start().await;
    let alice = server.user("alice@example.com").await;
    let me = format!("com.cloudflare.api.user.{}", user_id(&server, &alice).await);
    let read = policy("allow", &[MEMBERSHIPS_READ], &[&me]);

    let (id, disabled) = create(&server, &alice, json!({"name": "d", "policies": [read]})).await;
    server
        .with_token(&disabled)
        .get("/memberships")
        .await
        .result();
    let r = server
        .as_user(&alice)
        .put(
            &format!("/user/tokens/{id}"),
            json!({"name": "d", "policies": [read], "status": "disabled"}),
        )
        .await;
    assert_eq!(r.result()["status"], "disabled");
    let refused = server.with_token(&disabled).get("/memberships").await;
    refused.expect_error(403, 10000);
    assert_eq!(refused.error_message(), "Authentication error");

    let (_, early) = create(
        &server,
        &alice,
        json!({"name": "early", "policies": [read], "not_before": "2999-01-01T00:00:00Z"}),
    )
    .await;
    server
        .with_token(&early)
        .get("/memberships")
        .await
        .expect_error(403, 10000);

    // An expiry can only be set in the future, so this one is stored as time passed it.
    let user = server
        .store
        .user_by_email("alice@example.com")
        .await
        .unwrap()
        .unwrap()
        .0;
    let group = catalog::permission_group_named("Memberships Read")
        .unwrap()
        .id
        .clone();
    let mut expired = tokens::simple_token(&user.id, "old".into(), vec![group], None).unwrap();
    expired.expires_on = Some("2020-01-01T00:00:00Z".into());
    let secret = "expiredtoken000000000000000000000000000x";
    server
        .store
        .insert_token(&expired, &hash_secret(secret), None)
        .await
        .unwrap();
    server
        .with_token(secret)
        .get("/memberships")
        .await
        .expect_error(403, 10000);
    // Expired tokens are listed only when asked for, as expired.
    let listed = server.as_user(&alice).get("/user/tokens").await;
    assert_eq!(listed.result().as_array().unwrap().len(), 2);
    let all = server
        .as_user(&alice)
        .get("/user/tokens?include_expired=true")
        .await;
    let old = all
        .result()
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "old")
        .expect("listed");
    assert_eq!(old["status"], "expired");
}

/// For each (condition, works): a token of `who`'s with policy `read` and that address
/// condition reads their memberships from 127.0.0.1, or is refused naming that address.
async fn address_conditions_hold(
    server: &TestServer,
    who: &Creds,
    read: &Value,
    cases: &[(Value, bool)],
) {
    for (condition, works) in cases {
        let (_, secret) = create(
            server,
            who,
            json!({"name": "ip", "policies": [read], "condition": {"request_ip": condition}}),
        )
        .await;
        let r = server.with_token(&secret).get("/memberships").await;
        if *works {
            r.result();
        } else {
            r.expect_error(403, 9109);
            assert_eq!(
                r.error_message(),
                "Cannot use the access token from location: 127.0.0.1"
            );
        }
    }
}

#[tokio::test]
async fn address_conditions_limit_where_a_token_works() {
    let server = TestServer::start().await;
    let alice = server.user("alice@example.com").await;
    let me = format!("com.cloudflare.api.user.{}", user_id(&server, &alice).await);
    let read = policy("allow", &[MEMBERSHIPS_READ], &[&me]);
    let cases = [
        (json!({"in": ["192.0.2.0/24"]}), false),
        (
            json!({"in": ["127.0.0.0/8"], "not_in": ["127.0.0.1"]}),
            false,
        ),
        (json!({"not_in": ["10.0.0.0/8"]}), true),
        (json!({"in": ["127.0.0.1/32", "2001:db8::/32"]}), true),
    ];
    address_conditions_hold(&server, &alice, &read, &cases).await;
    // The schema's spelling of the condition is read too.
    let (id, _) = create(
        &server,
        &alice,
        json!({"name": "ip", "policies": [read], "condition": {"request.ip": {"in": ["192.0.2.1"]}}}),
    )
    .await;
    let shown = server
        .as_user(&alice)
        .get(&format!("/user/tokens/{id}"))
        .await;
    assert_eq!(
        shown.result()["condition"]["request_ip"]["in"][0],
        "192.0.2.1/32"
    );
}

#[tokio::test]
async fn policies_scope_tokens_to_accounts_and_deny_wins() {
    let server = TestServer::start().await;
    let alice = server.user("alice@example.com").await;
    let a = server.account(&alice, "A").await;
    let b = server.account(&alice, "B").await;
    let members = |account: &str| format!("/accounts/{account}/members");

    // Allowed on A only.
    let (_, only_a) = create(
        &server,
        &alice,
        json!({"name": "a", "policies": [policy("allow", &[SETTINGS_READ], &[&format!("com.cloudflare.api.account.{a}")])]}),
    )
    .await;
    server.with_token(&only_a).get(&members(&a)).await.result();
    server
        .with_token(&only_a)
        .get(&members(&b))
        .await
        .expect_error(403, 9109);
    // Reading does not let it write.
    server
        .with_token(&only_a)
        .post(
            &members(&a),
            json!({"email": "x@example.com", "roles": [ADMIN_RO]}),
        )
        .await
        .expect_error(403, 9109);

    // Everywhere but B: denying a group's read takes the area away.
    let (_, not_b) = create(
        &server,
        &alice,
        json!({"name": "not b", "policies": [
            policy("allow", &[SETTINGS_WRITE], &["com.cloudflare.api.account.*"]),
            policy("deny", &[SETTINGS_READ], &[&format!("com.cloudflare.api.account.{b}")]),
        ]}),
    )
    .await;
    server.with_token(&not_b).get(&members(&a)).await.result();
    server
        .with_token(&not_b)
        .get(&members(&b))
        .await
        .expect_error(403, 9109);
    // Denying the write group leaves reading, as deny policies on members do.
    let (_, read_b) = create(
        &server,
        &alice,
        json!({"name": "read b", "policies": [
            policy("allow", &[SETTINGS_WRITE], &["com.cloudflare.api.account.*"]),
            policy("deny", &[SETTINGS_WRITE], &[&format!("com.cloudflare.api.account.{b}")]),
        ]}),
    )
    .await;
    server.with_token(&read_b).get(&members(&b)).await.result();
    server
        .with_token(&read_b)
        .post(
            &members(&b),
            json!({"email": "x@example.com", "roles": [ADMIN_RO]}),
        )
        .await
        .expect_error(403, 9109);
    // What it gives on A it must carry there: organization rights, not every key's.
    let whole_a = server.whole_account_group(&alice, &a, None).await;
    server
        .with_token(&read_b)
        .post(
            &members(&a),
            json!({"email": "x@example.com", "roles": [ADMIN_RO]}),
        )
        .await
        .expect_error(403, 9109);
    server
        .with_token(&read_b)
        .post(
            &members(&a),
            json!({"email": "x@example.com", "policies": [{"access": "allow",
                "permission_groups": [{"id": SETTINGS_READ}], "resource_groups": [{"id": whole_a}]}]}),
        )
        .await
        .result();
    // GET /accounts lists only where the token reaches.
    let listed = server.with_token(&not_b).get("/accounts").await;
    let ids: Vec<&str> = listed
        .result()
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [a.as_str()]);
}

#[tokio::test]
async fn a_token_never_grants_more_than_its_owner_has() {
    let server = TestServer::start().await;
    let owner = server.user("owner@example.com").await;
    let reader = server.user("reader@example.com").await;
    let account = server.account(&owner, "Acme").await;
    server
        .add_member(&owner, &account, &reader, &[ADMIN_RO])
        .await;
    let (_, secret) = create(
        &server,
        &reader,
        json!({"name": "wide", "policies": [policy("allow", &[SETTINGS_WRITE], &["com.cloudflare.api.account.*"])]}),
    )
    .await;
    let members = format!("/accounts/{account}/members");
    server.with_token(&secret).get(&members).await.result();
    server
        .with_token(&secret)
        .post(
            &members,
            json!({"email": "x@example.com", "roles": [ADMIN_RO]}),
        )
        .await
        .expect_error(403, 9109);
    // An account the owner is not in stays invisible.
    let other = server.account(&owner, "Other").await;
    server
        .with_token(&secret)
        .get(&format!("/accounts/{other}/members"))
        .await
        .expect_error(404, 1003);
}

#[tokio::test]
async fn rolling_replaces_the_secret_and_deleting_ends_the_token() {
    let server = TestServer::start().await;
    let alice = server.user("alice@example.com").await;
    let me = format!("com.cloudflare.api.user.{}", user_id(&server, &alice).await);
    let (id, old) = create(
        &server,
        &alice,
        json!({"name": "r", "policies": [policy("allow", &[MEMBERSHIPS_READ], &[&me])]}),
    )
    .await;
    let rolled = server
        .as_user(&alice)
        .put(&format!("/user/tokens/{id}/value"), json!({}))
        .await;
    let new = rolled.result().as_str().expect("the new value").to_string();
    assert_ne!(new, old);
    server
        .with_token(&old)
        .get("/memberships")
        .await
        .expect_error(403, 10000);
    server.with_token(&new).get("/memberships").await.result();

    let deleted = server
        .as_user(&alice)
        .delete(&format!("/user/tokens/{id}"))
        .await;
    assert_eq!(deleted.result()["id"], id.as_str());
    server
        .with_token(&new)
        .get("/memberships")
        .await
        .expect_error(403, 10000);
    server
        .as_user(&alice)
        .get(&format!("/user/tokens/{id}"))
        .await
        .expect_error(404, 1003);
}

#[tokio::test]
async fn another_users_token_answers_like_a_missing_one() {
    let server = TestServer::start().await;
    let alice = server.user("alice@example.com").await;
    let bob = server.user("bob@example.com").await;
    let me = format!("com.cloudflare.api.user.{}", user_id(&server, &alice).await);
    let body = json!({"name": "mine", "policies": [policy("allow", &[MEMBERSHIPS_READ], &[&me])]});
    let (id, secret) = create(&server, &alice, body.clone()).await;
    let path = format!("/user/tokens/{id}");
    let as_bob = server.as_user(&bob);
    let missing = as_bob.get(&path).await;
    missing.expect_error(404, 1003);
    let other = as_bob
        .get("/user/tokens/0123456789abcdef0123456789abcdef")
        .await;
    assert_eq!(missing.body, other.body);
    as_bob.put(&path, body).await.expect_error(404, 1003);
    as_bob
        .put(&format!("{path}/value"), json!({}))
        .await
        .expect_error(404, 1003);
    as_bob.delete(&path).await.expect_error(404, 1003);
    assert_eq!(
        as_bob
            .get("/user/tokens")
            .await
            .result()
            .as_array()
            .unwrap()
            .len(),
        0
    );
    // Alice's token still works, unchanged.
    server
        .with_token(&secret)
        .get("/memberships")
        .await
        .result();
    // Bob cannot name Alice as a token's resource.
    as_bob
        .post(
            "/user/tokens",
            json!({"name": "x", "policies": [policy("allow", &[MEMBERSHIPS_READ], &[&me])]}),
        )
        .await
        .expect_error(400, 1002);
}

#[tokio::test]
async fn managing_tokens_with_a_token_needs_the_api_tokens_groups() {
    let server = TestServer::start().await;
    let alice = server.user("alice@example.com").await;
    let me = format!("com.cloudflare.api.user.{}", user_id(&server, &alice).await);
    let body = json!({"name": "n", "policies": [policy("allow", &[MEMBERSHIPS_READ], &[&me])]});
    let none = server.token(&alice, &["Memberships Read"]).await;
    server
        .with_token(&none)
        .get("/user/tokens")
        .await
        .expect_error(403, 9109);
    let read = server.token(&alice, &["API Tokens Read"]).await;
    server.with_token(&read).get("/user/tokens").await.result();
    server
        .with_token(&read)
        .get("/user/tokens/permission_groups")
        .await
        .result();
    server
        .with_token(&read)
        .post("/user/tokens", body.clone())
        .await
        .expect_error(403, 9109);
    let write = server.token(&alice, &["API Tokens Write"]).await;
    let r = server.with_token(&write).post("/user/tokens", body).await;
    assert_eq!(r.result()["value"].as_str().unwrap().len(), 40);
}

#[tokio::test]
async fn bad_token_bodies_are_refused_and_change_nothing() {
    let server = TestServer::start().await;
    let alice = server.user("alice@example.com").await;
    let me = format!("com.cloudflare.api.user.{}", user_id(&server, &alice).await);
    let good = policy("allow", &[MEMBERSHIPS_READ], &[&me]);
    let (id, _) = create(&server, &alice, json!({"name": "keep", "policies": [good]})).await;
    let cases: Vec<(Value, &str)> = vec![
        (json!({"policies": [good]}), "name"),
        (
            json!({"name": "", "policies": [good]}),
            "name must be between 1 and 120",
        ),
        (
            json!({"name": "x".repeat(121), "policies": [good]}),
            "name must be between 1 and 120",
        ),
        (json!({"name": "n", "policies": []}), "at least one policy"),
        (
            json!({"name": "n", "policies": [policy("maybe", &[MEMBERSHIPS_READ], &[&me])]}),
            "policies.effect must be one of",
        ),
        (
            json!({"name": "n", "policies": [policy("allow", &["0123456789abcdef0123456789abcdef"], &[&me])]}),
            "unknown permission group",
        ),
        (
            json!({"name": "n", "policies": [policy("allow", &["nope"], &[&me])]}),
            "32-character hex",
        ),
        (
            json!({"name": "n", "policies": [policy("allow", &[MEMBERSHIPS_READ], &[])]}),
            "at least one resource",
        ),
        (
            json!({"name": "n", "policies": [policy("allow", &[MEMBERSHIPS_READ], &["com.example.everything"])]}),
            "not a resource",
        ),
        (
            json!({"name": "n", "policies": [{"effect": "allow", "permission_groups": [{"id": MEMBERSHIPS_READ}], "resources": {me.clone(): "read"}}]}),
            "must map to",
        ),
        (
            json!({"name": "n", "policies": [good], "expires_on": "tomorrow"}),
            "expires_on must be an RFC 3339 time",
        ),
        (
            json!({"name": "n", "policies": [good], "expires_on": "2020-01-01T00:00:00Z"}),
            "in the future",
        ),
        (
            json!({"name": "n", "policies": [good], "not_before": "2999-06-01T00:00:00Z", "expires_on": "2999-01-01T00:00:00Z"}),
            "after not_before",
        ),
        (
            json!({"name": "n", "policies": [good], "condition": {"request_ip": {"in": ["300.1.1.1/8"]}}}),
            "not an IP address",
        ),
        (
            json!({"name": "n", "policies": [good], "status": "paused"}),
            "status must be one of",
        ),
    ];
    for (body, message) in cases {
        for r in [
            server
                .as_user(&alice)
                .post("/user/tokens", body.clone())
                .await,
            server
                .as_user(&alice)
                .put(&format!("/user/tokens/{id}"), body.clone())
                .await,
        ] {
            r.expect_error(400, 1002);
            assert!(
                r.error_message().contains(message),
                "{message:?} not in {}",
                r.body
            );
        }
    }
    assert_eq!(token_count(&server, &alice).await, 1);
    let kept = server
        .as_user(&alice)
        .get(&format!("/user/tokens/{id}"))
        .await;
    assert_eq!(kept.result()["name"], "keep");
}

#[tokio::test]
async fn token_permission_groups_are_listed_and_filtered() {
    let server = TestServer::start().await;
    let alice = server.user("alice@example.com").await;
    let all = server
        .as_user(&alice)
        .get("/user/tokens/permission_groups")
        .await;
    let groups = all.result().as_array().unwrap();
    assert_eq!(groups.len(), catalog::permission_groups().len());
    let tokens_write = groups.iter().find(|g| g["id"] == TOKENS_WRITE).unwrap();
    assert_eq!(tokens_write["name"], "API Tokens Write");
    assert_eq!(tokens_write["scopes"], json!(["com.cloudflare.api.user"]));
    assert!(
        groups
            .iter()
            .any(|g| g["id"] == TOKENS_READ && g["name"] == "API Tokens Read")
    );
    assert!(groups.iter().any(|g| g["id"] == MEMBERSHIPS_WRITE));
    let named = server
        .as_user(&alice)
        .get("/user/tokens/permission_groups?name=memberships%20read")
        .await;
    assert_eq!(named.result().as_array().unwrap().len(), 1);
    assert_eq!(named.result()[0]["id"], MEMBERSHIPS_READ);
    let scoped = server
        .as_user(&alice)
        .get("/user/tokens/permission_groups?scope=com.cloudflare.api.user")
        .await;
    assert!(
        scoped
            .result()
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["scopes"][0] == "com.cloudflare.api.user")
    );
}

/// On a dual-stack listener (`[::]`) IPv4 clients arrive as `::ffff:a.b.c.d`; address
/// conditions written in IPv4 still apply to them, both ways.
#[tokio::test]
async fn address_conditions_hold_for_ipv4_clients_of_a_dual_stack_listener() {
    let server = TestServer::start_dual_stack().await;
    let alice = server.user("alice@example.com").await;
    let me = format!("com.cloudflare.api.user.{}", user_id(&server, &alice).await);
    let read = policy("allow", &[MEMBERSHIPS_READ], &[&me]);
    let cases = [
        (json!({"in": ["127.0.0.1/32"]}), true),
        (json!({"not_in": ["127.0.0.0/8"]}), false),
    ];
    address_conditions_hold(&server, &alice, &read, &cases).await;
}

/// A use is recorded without the request waiting for it: with the write held back (the
/// token's row locked on PostgreSQL, the database on SQLite), a request with the token is
/// answered, and the use lands once the write may go on.
#[tokio::test]
async fn a_request_does_not_wait_for_its_use_to_be_recorded() {
    let server = TestServer::start().await;
    let alice = server.user("alice@example.com").await;
    let secret = server.token(&alice, &["User Details Read"]).await;
    let mut db = server.database().await;
    db.execute("BEGIN IMMEDIATE", "BEGIN").await;
    db.execute("SELECT 1", "SELECT 1 FROM tokens FOR UPDATE")
        .await;
    // A guard against hanging, not a measure: waiting for the write would be waiting for
    // this test to let it go (SQLite gives up after its busy timeout, 10 s, with a 500).
    let answered = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        server.with_token(&secret).get("/user"),
    )
    .await
    .expect("answered while the use cannot be written");
    assert_eq!(answered.result()["email"], "alice@example.com");
    db.execute("ROLLBACK", "ROLLBACK").await;
    use_recorded(&server, &alice).await;
}

/// Recording a use is best effort: when the database refuses the write, the request that
/// used the token is answered all the same.
#[tokio::test]
async fn a_use_that_cannot_be_recorded_fails_no_request() {
    let server = TestServer::start().await;
    let alice = server.user("alice@example.com").await;
    let secret = server.token(&alice, &["User Details Read"]).await;
    let mut db = server.database().await;
    db.execute(
        "CREATE TRIGGER refuse_use BEFORE UPDATE OF last_used_on ON tokens \
         BEGIN SELECT RAISE(ABORT, 'use refused'); END",
        "CREATE FUNCTION refuse_use() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN RAISE EXCEPTION 'use refused'; END $$",
    )
    .await;
    if server.schema.is_some() {
        db.execute(
            "",
            "CREATE TRIGGER refuse_use BEFORE UPDATE OF last_used_on ON tokens \
             FOR EACH ROW EXECUTE FUNCTION refuse_use()",
        )
        .await;
    }
    for _ in 0..3 {
        let answered = server.with_token(&secret).get("/user").await;
        assert_eq!(answered.result()["email"], "alice@example.com");
    }
}

/// Deleting a token that is not there changes nothing, so it forgets nothing: the verified
/// credentials this process keeps stay (and, on PostgreSQL, no other process is told to
/// forget its own). Deleting one that is there forgets them.
#[tokio::test]
async fn deleting_a_missing_token_keeps_the_credential_cache() {
    let server = TestServer::start().await;
    let alice = server.user("alice@example.com").await;
    let me = server.as_user(&alice);
    let body = json!({"name": "t", "policies": [policy("allow", &[MEMBERSHIPS_READ], &["com.cloudflare.api.account.*"])]});
    let (id, _) = create(&server, &alice, body).await;
    let cached = || async {
        let Value::String(text) = server.raw(&[]).get("/metrics").await.body else {
            panic!("metrics are text");
        };
        let line = text
            .lines()
            .find(|l| l.starts_with(r#"roster_cache_entries{cache="credentials_keys"}"#))
            .unwrap_or_else(|| panic!("no credentials_keys entries in\n{text}"))
            .to_string();
        line.rsplit(' ').next().unwrap().parse::<u64>().unwrap()
    };
    // On PostgreSQL every test's server listens on the one channel, so another test's
    // change may empty this cache at any moment: a try it spoiled is made again. Without
    // the fix every try finds the cache emptied.
    let kept = async {
        for _ in 0..20 {
            me.get("/user").await.result();
            me.delete(&format!("/user/tokens/{}", "0".repeat(32)))
                .await
                .expect_error(404, 1003);
            if cached().await == 1 {
                return true;
            }
        }
        false
    };
    assert!(kept.await, "alice's key is still kept");
    me.delete(&format!("/user/tokens/{id}")).await.result();
    assert_eq!(cached().await, 0, "forgotten");
}

#[tokio::test]
async fn the_demo_user_has_a_token_and_fixtures_refuse_bad_user_tokens() {
    let server = TestServer::demo().await;
    let bearer = server.with_token("RosterDemoUserToken000000000000000000000");
    let verified = bearer.get("/user/tokens/verify").await;
    assert_eq!(verified.result()["id"], "ed17574386854bf78a67040be0a770b0");

    let bad = |token: Value| {
        let fixture = json!({"users": [{"email": "t@example.com", "tokens": [token]}]});
        roster::fixture::parse(&fixture.to_string())
    };
    for (token, complaint) in [
        (
            json!({"name": "t", "value": "short", "permission_groups": ["Zone Read"]}),
            "tokens.value",
        ),
        (
            json!({"name": "t", "value": "x".repeat(40), "permission_groups": ["No Such Group"]}),
            "unknown permission group",
        ),
        (
            json!({"id": "not-hex", "name": "t", "value": "x".repeat(40), "permission_groups": ["Zone Read"]}),
            "tokens.id",
        ),
    ] {
        let fixture = bad(token).expect("well-formed JSON");
        let scratch = TestServer::start().await;
        let e = roster::fixture::load(scratch.store.as_ref(), &fixture)
            .await
            .expect_err("refused");
        assert!(e.to_string().contains(complaint), "{e}");
        assert!(
            e.to_string()
                .contains("users[0] (t@example.com): tokens[t]"),
            "names the entry: {e}"
        );
    }

    // A fixture's user token is made once: loading the file again keeps it as the API left it.
    let fixture = roster::fixture::parse(
        &json!({"users": [{"email": "t@example.com", "tokens": [{"name": "mine",
            "value": "TestUserToken000000000000000000000000000", "permission_groups": ["Zone Read"]}]}]})
        .to_string(),
    )
    .expect("fixture parses");
    let scratch = TestServer::start().await;
    roster::fixture::load(scratch.store.as_ref(), &fixture)
        .await
        .expect("loads");
    let bearer = scratch.with_token("TestUserToken000000000000000000000000000");
    let id = bearer.get("/user/tokens/verify").await.result()["id"]
        .as_str()
        .expect("token id")
        .to_string();
    roster::fixture::load(scratch.store.as_ref(), &fixture)
        .await
        .expect("loads again");
    assert_eq!(bearer.get("/user/tokens/verify").await.result()["id"], id);
}
