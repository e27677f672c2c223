//! Bad input (DESIGN.md "Lists" and "Errors"): every malformed query, body or path gets a
//! 4xx with the exact code and a message naming the parameter or field, a rejected write
//! changes nothing that the API can show, and lengths count characters, not bytes. The
//! harness already fails any 5xx.

use reqwest::Method;
use roster::api::error::codes;
use serde_json::{Value, json};

use crate::helpers::*;

const DNS: &str = "87e7860bc4c445faba075646dac38cca";
const BILLING: &str = "462131c6e56c4a3894166a1f9b47cf9e";
const ZONE_READ: &str = "c8fed203ed3043cba015a93ad1616f1f";
const UNKNOWN: &str = "0123456789abcdef0123456789abcdef";

/// Asserts a one-error failure with this status and code whose message contains `needle`.
fn assert_rejected(r: &Resp, status: u16, code: u32, needle: &str, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.body);
    assert_eq!(r.error_code(), i64::from(code), "{what}: {}", r.body);
    assert_eq!(r.body["messages"], json!([]), "{what}");
    assert_eq!(
        r.body["errors"].as_array().map(Vec::len),
        Some(1),
        "{what}: {}",
        r.body
    );
    let message = r.error_message();
    assert!(
        message.contains(needle),
        "{what}: message {message:?} should name {needle:?}"
    );
}

fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// An account with its owner, an accepted member (alice, DNS), a pending invitee (bob,
/// Billing) and one resource group.
struct World {
    server: TestServer,
    owner: Creds,
    alice: Creds,
    bob: Creds,
    account: String,
    alice_member: String,
    bob_member: String,
    group: String,
}

impl World {
    async fn new() -> World {
        let server = TestServer::start().await;
        let owner = server.user("owner@example.com").await;
        let account = server.account(&owner, "Input Co").await;
        let alice = server
            .user_with("alice@example.com", Some("Alice"), Some("Liddell"), true)
            .await;
        let alice_member = server.add_member(&owner, &account, &alice, &[DNS]).await;
        let bob = server
            .user_with("bob@example.com", Some("Bob"), Some("Builder"), true)
            .await;
        let bob_member = server
            .invite(&owner, &account, "bob@example.com", &[BILLING])
            .await;
        let r = server
            .as_user(&owner)
            .post(
                &format!("/accounts/{account}/iam/resource_groups"),
                json!({"name": "Zones", "scope": World::scope(&account)}),
            )
            .await;
        let group = r.result()["id"].as_str().unwrap().to_string();
        World {
            server,
            owner,
            alice,
            bob,
            account,
            alice_member,
            bob_member,
            group,
        }
    }

    fn scope(account: &str) -> Value {
        json!({
            "key": format!("com.cloudflare.api.account.{account}"),
            "objects": [{"key": "com.cloudflare.api.account.zone.23f8d65290b24279ba6f44721b3eaad5"}],
        })
    }

    fn owner(&self) -> Client {
        self.server.as_user(&self.owner)
    }

    /// Everything the three users can read about their world.
    async fn snapshot(&self) -> Value {
        let a = &self.account;
        let owner = self.owner();
        let mut state = json!({
            "account": owner.get(&format!("/accounts/{a}")).await.result(),
            "members": owner.get(&format!("/accounts/{a}/members?per_page=50")).await.result(),
            "groups": owner.get(&format!("/accounts/{a}/iam/resource_groups?per_page=50")).await.result(),
        });
        for (name, who) in [
            ("owner", &self.owner),
            ("alice", &self.alice),
            ("bob", &self.bob),
        ] {
            let client = self.server.as_user(who);
            state[name] = json!({
                "user": client.get("/user").await.result(),
                "accounts": client.get("/accounts?per_page=50").await.result(),
                "memberships": client.get("/memberships?per_page=50").await.result(),
            });
        }
        assert_eq!(state["members"].as_array().unwrap().len(), 3);
        state
    }

    async fn send_raw(&self, who: &Creds, method: Method, path: &str, body: &str) -> Resp {
        self.server
            .as_user(who)
            .send(method, path, Some(body.to_string()))
            .await
    }
}

/// The list endpoints a caller can page through, for `world`'s owner, with each one's
/// documented `per_page` bounds; `user_group` is a group of the world's account.
fn list_paths(w: &World, user_group: &str) -> Vec<(String, u32, u32)> {
    let a = &w.account;
    vec![
        ("/memberships".into(), 5, 50),
        ("/accounts".into(), 5, 50),
        (format!("/accounts/{a}/members"), 5, 50),
        (format!("/accounts/{a}/roles"), 5, 50),
        (format!("/accounts/{a}/iam/permission_groups"), 5, 50),
        (format!("/accounts/{a}/iam/resource_groups"), 5, 50),
        ("/user/tokens".into(), 5, 50),
        (format!("/accounts/{a}/tokens"), 5, 50),
        // Cloudflare's reference: 1 to 500 for user groups and their members.
        (format!("/accounts/{a}/iam/user_groups"), 1, 500),
        (
            format!("/accounts/{a}/iam/user_groups/{user_group}/members"),
            1,
            500,
        ),
    ]
}

#[tokio::test]
async fn page_and_per_page_out_of_range_are_400s_naming_the_parameter() {
    let w = World::new().await;
    let owner = w.owner();
    let user_group = owner
        .post(
            &format!("/accounts/{}/iam/user_groups", w.account),
            json!({"name": "Readers"}),
        )
        .await;
    let user_group = user_group.result()["id"].as_str().unwrap().to_string();
    for (path, min, max) in list_paths(&w, &user_group) {
        let (below, above) = ((min - 1).to_string(), (max + 1).to_string());
        for value in [below.as_str(), above.as_str(), "0", "1e9"] {
            let r = owner.get(&format!("{path}?per_page={value}")).await;
            assert_rejected(
                &r,
                400,
                codes::INVALID_INPUT,
                &format!("per_page must be between {min} and {max}"),
                &format!("{path} per_page={value}"),
            );
        }
        for value in ["-1", "abc", "2.5", "", "5x", "NaN", "inf", "99999999999"] {
            let r = owner.get(&format!("{path}?per_page={value}")).await;
            assert_rejected(
                &r,
                400,
                codes::INVALID_INPUT,
                "per_page",
                &format!("{path} per_page={value}"),
            );
        }
        for value in ["0", "x", "-1", "1.5", "", "-0"] {
            let what = format!("{path} page={value}");
            let r = owner.get(&format!("{path}?page={value}&per_page=10")).await;
            assert_rejected(&r, 400, codes::INVALID_INPUT, "page", &what);
            assert!(
                !r.error_message().contains("per_page"),
                "{what}: {}",
                r.body
            );
        }
        // The bounds themselves are fine.
        for (query, per_page) in [
            (format!("per_page={min}"), min),
            (format!("per_page={max}"), max),
            (format!("per_page={max}.0"), max),
            (format!("page=1&per_page={min}"), min),
        ] {
            let r = owner.get(&format!("{path}?{query}")).await;
            assert!(r.result().is_array(), "{path}?{query}");
            assert_eq!(
                r.body["result_info"]["per_page"], per_page,
                "{path}?{query}"
            );
        }
    }
}

#[tokio::test]
async fn unknown_enum_values_in_the_query_are_400s_naming_the_parameter() {
    let w = World::new().await;
    let owner = w.owner();
    let members = format!("/accounts/{}/members", w.account);
    let cases = [
        (
            members.as_str(),
            "order=user.age",
            "order",
            "user.first_name",
        ),
        (members.as_str(), "order=id", "order", "user.last_name"),
        (members.as_str(), "order=", "order", "status"),
        (members.as_str(), "direction=up", "direction", "asc"),
        (members.as_str(), "direction=ASC", "direction", "desc"),
        (members.as_str(), "status=removed", "status", "rejected"),
        (members.as_str(), "status=Pending", "status", "pending"),
        (
            members.as_str(),
            "status=accepted&order=status&direction=sideways",
            "direction",
            "asc",
        ),
        ("/memberships", "order=name", "order", "account.name"),
        ("/memberships", "order=user.email", "order", "id"),
        ("/memberships", "direction=down", "direction", "desc"),
        ("/memberships", "status=removed", "status", "accepted"),
        ("/memberships", "status=", "status", "pending"),
        ("/accounts", "direction=sideways", "direction", "asc"),
    ];
    for (path, query, param, allowed) in cases {
        let what = format!("{path}?{query}");
        let r = owner.get(&what).await;
        assert_rejected(&r, 400, codes::INVALID_INPUT, param, &what);
        assert!(r.error_message().starts_with(param), "{what}: {}", r.body);
        assert!(
            r.error_message().contains(allowed),
            "{what} should list the allowed values: {}",
            r.body
        );
    }
    // Every documented value works.
    for order in ["user.first_name", "user.last_name", "user.email", "status"] {
        owner
            .get(&format!(
                "{members}?order={order}&direction=desc&status=accepted"
            ))
            .await
            .result();
    }
    for order in ["id", "account.name", "status"] {
        owner
            .get(&format!(
                "/memberships?order={order}&direction=asc&status=rejected"
            ))
            .await
            .result();
    }
}

#[tokio::test]
async fn over_long_or_malformed_query_text_is_a_400_naming_the_parameter() {
    let w = World::new().await;
    let owner = w.owner();
    let a = &w.account;
    let long = "x".repeat(101);
    let groups = format!("/accounts/{a}/iam/permission_groups");
    let resources = format!("/accounts/{a}/iam/resource_groups");
    let cases = [
        (
            "/memberships".to_string(),
            format!("account.name={long}"),
            "account.name",
        ),
        ("/memberships".to_string(), format!("name={long}"), "name"),
        (
            "/memberships".to_string(),
            format!("status=pending&account.name={long}&name=ok"),
            "account.name",
        ),
        ("/accounts".to_string(), format!("name={long}"), "name"),
        (groups.clone(), "id=abc".to_string(), "id"),
        (groups.clone(), format!("id={}", "a".repeat(33)), "id"),
        (groups.clone(), format!("id={}", "g".repeat(32)), "id"),
        (groups.clone(), format!("name={}", "n".repeat(201)), "name"),
        (
            groups.clone(),
            format!("label={}", "l".repeat(201)),
            "label",
        ),
        (resources.clone(), "id=abc".to_string(), "id"),
        (
            resources.clone(),
            format!("name={}", "n".repeat(201)),
            "name",
        ),
    ];
    for (path, query, param) in cases {
        let what = format!("{path}?{query}");
        let r = owner.get(&what).await;
        assert_rejected(&r, 400, codes::INVALID_INPUT, param, &what);
        assert!(r.error_message().starts_with(param), "{what}: {}", r.body);
    }
    // At the limit, and counted in characters: 100 two-byte and four-byte characters pass.
    for text in ["x".repeat(100), "é".repeat(100), "😀".repeat(100)] {
        for path in [
            "/memberships?account.name=",
            "/memberships?name=",
            "/accounts?name=",
        ] {
            let r = owner.get(&format!("{path}{}", encode(&text))).await;
            assert_eq!(r.result(), &json!([]));
        }
    }
    for text in ["é".repeat(101), "😀".repeat(101)] {
        let r = owner
            .get(&format!("/memberships?account.name={}", encode(&text)))
            .await;
        assert_rejected(
            &r,
            400,
            codes::INVALID_INPUT,
            "account.name",
            "101 multibyte characters",
        );
    }
}

#[tokio::test]
async fn malformed_bodies_are_400s_and_change_nothing() {
    let w = World::new().await;
    let before = w.snapshot().await;
    let a = &w.account;
    let targets = [
        (Method::POST, format!("/accounts/{a}/members"), &w.owner),
        (
            Method::PUT,
            format!("/accounts/{a}/members/{}", w.alice_member),
            &w.owner,
        ),
        (
            Method::PUT,
            format!("/memberships/{}", w.bob_member),
            &w.bob,
        ),
        (Method::PUT, format!("/accounts/{a}"), &w.owner),
        (Method::POST, "/accounts".to_string(), &w.owner),
        (Method::PATCH, "/user".to_string(), &w.alice),
        (
            Method::POST,
            format!("/accounts/{a}/iam/resource_groups"),
            &w.owner,
        ),
        (
            Method::PUT,
            format!("/accounts/{a}/iam/resource_groups/{}", w.group),
            &w.owner,
        ),
    ];
    let bodies = [
        ("", "body"),
        ("  \n", "body"),
        ("{", ""),
        ("{\"email\": ", ""),
        ("{\"status\": \"accepted\",}", ""),
        ("{'status': 'accepted'}", ""),
        ("{\"status\": \"accepted\"} trailing", ""),
        ("{\"status\": \"accepted\"}{}", ""),
        ("[]", ""),
        ("[{\"status\": \"accepted\"}]", ""),
        ("\"accepted\"", ""),
        ("null", ""),
        ("42", ""),
        ("true", ""),
    ];
    for (method, path, who) in &targets {
        for (body, needle) in bodies {
            let r = w.send_raw(who, method.clone(), path, body).await;
            assert_rejected(
                &r,
                400,
                codes::MALFORMED_BODY,
                needle,
                &format!("{method} {path} {body:?}"),
            );
        }
    }
    // Nesting beyond the parser's limit and broken strings.
    let path = format!("/accounts/{a}/members");
    let deep = format!("{{\"email\": {}", "[".repeat(5000));
    let surrogate = r#"{"email": "\ud800@example.com", "roles": []}"#;
    let control = "{\"email\": \"a\u{1}b@example.com\"}";
    for body in [deep.as_str(), surrogate, control] {
        let r = w.send_raw(&w.owner, Method::POST, &path, body).await;
        let what: String = body.chars().take(40).collect();
        assert_rejected(&r, 400, codes::MALFORMED_BODY, "", &what);
    }
    // A body over the size limit (1 MiB by default) is 413, whatever it holds.
    let huge = json!({"email": "c".repeat(1 << 20), "roles": [DNS]}).to_string();
    let r = w.send_raw(&w.owner, Method::POST, &path, &huge).await;
    assert_rejected(
        &r,
        413,
        codes::TOO_LARGE,
        "the limit is 1048576 bytes",
        "huge body",
    );
    let just_under = json!({"email": "c".repeat((1 << 20) - 100), "roles": [DNS]}).to_string();
    assert!(just_under.len() <= 1 << 20);
    let r = w.send_raw(&w.owner, Method::POST, &path, &just_under).await;
    assert_rejected(
        &r,
        400,
        codes::INVALID_INPUT,
        "email",
        "a big body under the limit is read",
    );
    assert_eq!(w.snapshot().await, before);
}

/// Sends each body and asserts the rejection: (body, status, code, needle).
async fn reject_all(
    w: &World,
    who: &Creds,
    method: Method,
    path: &str,
    cases: &[(Value, u16, u32, &str)],
) {
    for (body, status, code, needle) in cases {
        let r = w
            .send_raw(who, method.clone(), path, &body.to_string())
            .await;
        assert_rejected(
            &r,
            *status,
            *code,
            needle,
            &format!("{method} {path} {body}"),
        );
    }
}

#[tokio::test]
async fn bad_invitations_name_the_field_and_change_nothing() {
    let w = World::new().await;
    let before = w.snapshot().await;
    let email = "carol@example.com";
    let g = w.group.as_str();
    let policy = |access: Value, pgs: Value, rgs: Value| json!({"email": email, "policies": [{"access": access, "permission_groups": pgs, "resource_groups": rgs}]});
    // Every case is a well-formed object, so a wrong type is an invalid field like any other.
    let (bad, invalid) = (codes::INVALID_INPUT, codes::INVALID_INPUT);
    let cases: Vec<(Value, u16, u32, &str)> = vec![
        // Wrong types.
        (json!({"email": 5, "roles": [DNS]}), 400, bad, "email"),
        (json!({"email": null, "roles": [DNS]}), 400, bad, "email"),
        (json!({"email": [email], "roles": [DNS]}), 400, bad, "email"),
        (json!({"email": email, "roles": "x"}), 400, bad, "roles"),
        (json!({"email": email, "roles": DNS}), 400, bad, "roles"),
        (json!({"email": email, "roles": [5]}), 400, bad, "roles"),
        (
            json!({"email": email, "roles": [{"name": "DNS"}]}),
            400,
            bad,
            "roles",
        ),
        (
            json!({"email": email, "roles": [DNS], "status": 7}),
            400,
            bad,
            "status",
        ),
        (
            json!({"email": email, "policies": {"access": "allow"}}),
            400,
            bad,
            "policies",
        ),
        (
            policy(json!("maybe"), json!([ZONE_READ]), json!([g])),
            400,
            bad,
            "access",
        ),
        (
            policy(json!(true), json!([ZONE_READ]), json!([g])),
            400,
            bad,
            "access",
        ),
        (
            policy(json!("allow"), json!(ZONE_READ), json!([g])),
            400,
            bad,
            "permission_groups",
        ),
        (
            policy(json!("allow"), json!([ZONE_READ]), json!([7])),
            400,
            bad,
            "resource_groups",
        ),
        // Unknown enum values.
        (
            json!({"email": email, "roles": [DNS], "status": "rejected"}),
            400,
            invalid,
            "status",
        ),
        (
            json!({"email": email, "roles": [DNS], "status": "removed"}),
            400,
            bad,
            "status",
        ),
        (
            json!({"email": email, "roles": [DNS], "status": "Accepted"}),
            400,
            bad,
            "status",
        ),
        // Missing fields.
        (json!({}), 400, bad, "email"),
        (json!({"roles": [DNS]}), 400, bad, "email"),
        (json!({"email": email}), 400, invalid, "roles"),
        (
            json!({"email": email, "status": "accepted"}),
            400,
            invalid,
            "roles",
        ),
        (
            json!({"email": email, "policies": [{"access": "allow", "resource_groups": [g]}]}),
            400,
            bad,
            "permission_groups",
        ),
        (
            json!({"email": email, "policies": [{"permission_groups": [ZONE_READ], "resource_groups": [g]}]}),
            400,
            bad,
            "access",
        ),
        // Contradictory or empty grants.
        (
            json!({"email": email, "roles": [DNS], "policies": []}),
            400,
            invalid,
            "roles",
        ),
        (json!({"email": email, "roles": []}), 400, invalid, "roles"),
        (
            json!({"email": email, "policies": []}),
            400,
            invalid,
            "policies",
        ),
        (
            policy(json!("allow"), json!([]), json!([g])),
            400,
            invalid,
            "policies",
        ),
        (
            policy(json!("allow"), json!([ZONE_READ]), json!([])),
            400,
            invalid,
            "policies",
        ),
        // Over-long and invalid emails.
        (
            json!({"email": format!("{}@example.com", "c".repeat(79)), "roles": [DNS]}),
            400,
            invalid,
            "email",
        ),
        (json!({"email": "", "roles": [DNS]}), 400, invalid, "email"),
        (
            json!({"email": "   ", "roles": [DNS]}),
            400,
            invalid,
            "email",
        ),
        (
            json!({"email": "carol", "roles": [DNS]}),
            400,
            invalid,
            "email",
        ),
        (
            json!({"email": "carol@", "roles": [DNS]}),
            400,
            invalid,
            "email",
        ),
        (
            json!({"email": "@example.com", "roles": [DNS]}),
            400,
            invalid,
            "email",
        ),
        (
            json!({"email": "carol@example", "roles": [DNS]}),
            400,
            invalid,
            "email",
        ),
        (
            json!({"email": "carol@@example.com", "roles": [DNS]}),
            400,
            invalid,
            "email",
        ),
        (
            json!({"email": "ca rol@example.com", "roles": [DNS]}),
            400,
            invalid,
            "email",
        ),
        (
            json!({"email": "carol@.example.com", "roles": [DNS]}),
            400,
            invalid,
            "email",
        ),
        (
            json!({"email": "carol@example.com.", "roles": [DNS]}),
            400,
            invalid,
            "email",
        ),
        (
            json!({"email": "carol\u{0}@example.com", "roles": [DNS]}),
            400,
            invalid,
            "email",
        ),
        // Ids that are not 32 hex characters, and well-formed ids nobody knows.
        (
            json!({"email": email, "roles": ["abc"]}),
            400,
            invalid,
            "roles",
        ),
        (
            json!({"email": email, "roles": [{"id": "abc"}]}),
            400,
            invalid,
            "roles",
        ),
        (
            json!({"email": email, "roles": [format!("{DNS}0")]}),
            400,
            invalid,
            "roles",
        ),
        (
            json!({"email": email, "roles": ["g".repeat(32)]}),
            400,
            invalid,
            "roles",
        ),
        (
            json!({"email": email, "roles": [UNKNOWN]}),
            400,
            invalid,
            "roles",
        ),
        (
            json!({"email": email, "roles": [DNS, {"id": UNKNOWN}]}),
            400,
            invalid,
            "roles",
        ),
        (
            policy(json!("allow"), json!(["abc"]), json!([g])),
            400,
            invalid,
            "policies.permission_groups",
        ),
        (
            policy(json!("allow"), json!([{"id": "abc"}]), json!([g])),
            400,
            invalid,
            "policies.permission_groups",
        ),
        (
            policy(json!("allow"), json!([UNKNOWN]), json!([g])),
            400,
            invalid,
            "policies.permission_groups",
        ),
        (
            policy(json!("allow"), json!([ZONE_READ]), json!(["abc"])),
            400,
            invalid,
            "policies.resource_groups",
        ),
        (
            policy(json!("allow"), json!([ZONE_READ]), json!([UNKNOWN])),
            400,
            invalid,
            "policies.resource_groups",
        ),
        (
            json!({"email": email, "policies": [{"id": "abc", "access": "allow",
                   "permission_groups": [ZONE_READ], "resource_groups": [g]}]}),
            400,
            invalid,
            "policies.id",
        ),
    ];
    let path = format!("/accounts/{}/members", w.account);
    reject_all(&w, &w.owner, Method::POST, &path, &cases).await;
    assert_eq!(w.snapshot().await, before);

    // Nothing half-written blocks the email: a good invitation still goes through.
    let r = w
        .owner()
        .post(&path, json!({"email": email, "roles": [DNS]}))
        .await;
    assert_eq!(r.result()["email"], email);
    let r = w
        .owner()
        .post(
            &path,
            policy(json!("allow"), json!([{"id": ZONE_READ}]), json!([g])),
        )
        .await;
    r.expect_error(409, i64::from(codes::ALREADY_MEMBER));
}

#[tokio::test]
async fn bad_member_updates_keep_the_members_roles() {
    let w = World::new().await;
    let before = w.snapshot().await;
    let g = w.group.as_str();
    // Every case is a well-formed object, so a wrong type is an invalid field like any other.
    let (bad, invalid) = (codes::INVALID_INPUT, codes::INVALID_INPUT);
    let policies = |access: Value, pgs: Value, rgs: Value| json!({"policies": [{"access": access, "permission_groups": pgs, "resource_groups": rgs}]});
    let cases: Vec<(Value, u16, u32, &str)> = vec![
        (json!({"roles": "x"}), 400, bad, "roles"),
        (json!({"roles": [5]}), 400, bad, "roles"),
        (json!({"roles": null, "policies": 3}), 400, bad, "policies"),
        (json!({"roles": []}), 400, invalid, "roles"),
        (json!({"roles": ["abc"]}), 400, invalid, "roles"),
        (json!({"roles": [UNKNOWN]}), 400, invalid, "roles"),
        (json!({"roles": [BILLING, UNKNOWN]}), 400, invalid, "roles"),
        (
            json!({"roles": [BILLING], "policies": []}),
            400,
            invalid,
            "roles",
        ),
        (
            policies(json!("maybe"), json!([ZONE_READ]), json!([g])),
            400,
            bad,
            "access",
        ),
        (
            policies(json!("allow"), json!(["abc"]), json!([g])),
            400,
            invalid,
            "policies.permission_groups",
        ),
        (
            policies(json!("allow"), json!([UNKNOWN]), json!([g])),
            400,
            invalid,
            "policies.permission_groups",
        ),
        (
            policies(json!("allow"), json!([ZONE_READ]), json!(["abc"])),
            400,
            invalid,
            "policies.resource_groups",
        ),
        (
            policies(json!("deny"), json!([ZONE_READ]), json!([UNKNOWN])),
            400,
            invalid,
            "policies.resource_groups",
        ),
        (json!({"policies": []}), 400, invalid, "policies"),
    ];
    for member in [&w.alice_member, &w.bob_member] {
        let path = format!("/accounts/{}/members/{member}", w.account);
        reject_all(&w, &w.owner, Method::PUT, &path, &cases).await;
    }
    assert_eq!(w.snapshot().await, before);
    let alice = w
        .owner()
        .get(&format!(
            "/accounts/{}/members/{}",
            w.account, w.alice_member
        ))
        .await;
    assert_eq!(alice.result()["roles"][0]["id"], DNS);
    assert_eq!(alice.result()["roles"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn bad_answers_to_an_invitation_keep_its_status() {
    let w = World::new().await;
    let before = w.snapshot().await;
    // Every case is a well-formed object, so a wrong type is an invalid field like any other.
    let (bad, invalid) = (codes::INVALID_INPUT, codes::INVALID_INPUT);
    let cases: Vec<(Value, u16, u32, &str)> = vec![
        (json!({}), 400, bad, "status"),
        (json!({"state": "accepted"}), 400, bad, "status"),
        (json!({"status": null}), 400, bad, "status"),
        (json!({"status": 1}), 400, bad, "status"),
        (json!({"status": true}), 400, bad, "status"),
        (json!({"status": ["accepted"]}), 400, bad, "status"),
        (json!({"status": "maybe"}), 400, bad, "status"),
        (json!({"status": "Accepted"}), 400, bad, "status"),
        (json!({"status": ""}), 400, bad, "status"),
        (json!({"status": "pending"}), 400, invalid, "status"),
    ];
    // Bob's invitation is pending, Alice's membership accepted: neither can be set back to
    // pending or to anything unknown.
    reject_all(
        &w,
        &w.bob,
        Method::PUT,
        &format!("/memberships/{}", w.bob_member),
        &cases,
    )
    .await;
    reject_all(
        &w,
        &w.alice,
        Method::PUT,
        &format!("/memberships/{}", w.alice_member),
        &cases,
    )
    .await;
    assert_eq!(w.snapshot().await, before);
    let bob = w
        .server
        .as_user(&w.bob)
        .get(&format!("/memberships/{}", w.bob_member))
        .await;
    assert_eq!(bob.result()["status"], "pending");
}

#[tokio::test]
async fn bad_account_user_and_resource_group_edits_change_nothing() {
    let w = World::new().await;
    let before = w.snapshot().await;
    let a = &w.account;
    // Every case is a well-formed object, so a wrong type is an invalid field like any other.
    let (bad, invalid) = (codes::INVALID_INPUT, codes::INVALID_INPUT);

    let account_cases: Vec<(Value, u16, u32, &str)> = vec![
        (json!({}), 400, bad, "name"),
        (json!({"name": 5}), 400, bad, "name"),
        (json!({"name": null}), 400, bad, "name"),
        (json!({"name": ""}), 400, invalid, "name"),
        (json!({"name": "   "}), 400, invalid, "name"),
        (json!({"name": "n".repeat(101)}), 400, invalid, "name"),
        (
            json!({"name": "Renamed", "settings": "x"}),
            400,
            bad,
            "settings",
        ),
        (
            json!({"name": "Renamed", "settings": {"enforce_twofactor": "yes"}}),
            400,
            bad,
            "settings.enforce_twofactor",
        ),
        (
            json!({"name": "Renamed", "settings": {"abuse_contact_email": "nope"}}),
            400,
            invalid,
            "settings.abuse_contact_email",
        ),
        (
            json!({"name": "Renamed", "settings": {"abuse_contact_email": 5}}),
            400,
            bad,
            "settings.abuse_contact_email",
        ),
        (
            json!({"name": "Renamed", "settings": {"default_nameservers": "x"}}),
            400,
            bad,
            "settings.default_nameservers",
        ),
        (
            json!({"name": "Renamed", "settings": {"use_account_custom_ns_by_default": 1}}),
            400,
            bad,
            "use_account_custom_ns_by_default",
        ),
    ];
    reject_all(
        &w,
        &w.owner,
        Method::PUT,
        &format!("/accounts/{a}"),
        &account_cases,
    )
    .await;

    let create_cases: Vec<(Value, u16, u32, &str)> = vec![
        (json!({}), 400, bad, "name"),
        (json!({"name": 7}), 400, bad, "name"),
        (json!({"name": ""}), 400, invalid, "name"),
        (json!({"name": "n".repeat(101)}), 400, invalid, "name"),
        (json!({"name": "New", "type": "huge"}), 400, bad, "type"),
        (json!({"name": "New", "type": 1}), 400, bad, "type"),
    ];
    reject_all(&w, &w.owner, Method::POST, "/accounts", &create_cases).await;

    let user_cases: Vec<(Value, u16, u32, &str)> = vec![
        (
            json!({"first_name": "f".repeat(61)}),
            400,
            invalid,
            "first_name",
        ),
        (
            json!({"last_name": "l".repeat(61)}),
            400,
            invalid,
            "last_name",
        ),
        (
            json!({"first_name": "Ok", "last_name": "l".repeat(61)}),
            400,
            invalid,
            "last_name",
        ),
        (json!({"first_name": 5}), 400, bad, "first_name"),
        (json!({"last_name": {"x": 1}}), 400, bad, "last_name"),
        (
            json!({"telephone": "1".repeat(21)}),
            400,
            invalid,
            "telephone",
        ),
        (
            json!({"first_name": "Ok", "zipcode": "9".repeat(21)}),
            400,
            invalid,
            "zipcode",
        ),
        (json!({"country": "c".repeat(31)}), 400, invalid, "country"),
    ];
    reject_all(&w, &w.alice, Method::PATCH, "/user", &user_cases).await;

    let scope = World::scope(a);
    let group_cases: Vec<(Value, u16, u32, &str)> = vec![
        (json!({}), 400, bad, "scope"),
        (json!({"name": "G"}), 400, bad, "scope"),
        (json!({"name": "G", "scope": "x"}), 400, bad, "scope"),
        (
            json!({"name": "G", "scope": {"key": scope["key"]}}),
            400,
            bad,
            "objects",
        ),
        (
            json!({"name": "G", "scope": {"key": "com.cloudflare.api.account.x", "objects": scope["objects"]}}),
            400,
            invalid,
            "scope.key",
        ),
        (
            json!({"name": "G", "scope": {"key": scope["key"], "objects": []}}),
            400,
            invalid,
            "scope.objects",
        ),
        (
            json!({"name": "G", "scope": {"key": scope["key"], "objects": [{"key": ""}]}}),
            400,
            invalid,
            "scope.objects.key",
        ),
        (json!({"name": 5, "scope": scope}), 400, bad, "name"),
        (json!({"name": "", "scope": scope}), 400, invalid, "name"),
        (
            json!({"name": "n".repeat(201), "scope": scope}),
            400,
            invalid,
            "name",
        ),
    ];
    reject_all(
        &w,
        &w.owner,
        Method::POST,
        &format!("/accounts/{a}/iam/resource_groups"),
        &group_cases,
    )
    .await;
    // An update may leave out name and scope (they are kept), not get them wrong.
    let group = format!("/accounts/{a}/iam/resource_groups/{}", w.group);
    reject_all(&w, &w.owner, Method::PUT, &group, &group_cases[2..]).await;

    assert_eq!(w.snapshot().await, before);
}

#[tokio::test]
async fn lengths_are_counted_in_characters_not_bytes() {
    let w = World::new().await;
    let owner = w.owner();
    let a = &w.account;
    let invalid = codes::INVALID_INPUT;

    // Account names: 1..100 characters.
    for ch in ["é", "日", "😀"] {
        let name = ch.repeat(100);
        let r = owner
            .put(&format!("/accounts/{a}"), json!({"name": name}))
            .await;
        assert_eq!(r.result()["name"], name.as_str());
        let r = owner.post("/accounts", json!({"name": name})).await;
        assert_eq!(r.result()["name"], name.as_str());
        let found = owner
            .get(&format!("/accounts?name={}", encode(&name)))
            .await;
        assert_eq!(found.result().as_array().unwrap().len(), 2, "{ch}");
        let too_long = ch.repeat(101);
        let r = owner
            .put(&format!("/accounts/{a}"), json!({"name": too_long}))
            .await;
        assert_rejected(
            &r,
            400,
            invalid,
            "name",
            &format!("account name of 101 {ch}"),
        );
        let r = owner.post("/accounts", json!({"name": too_long})).await;
        assert_rejected(
            &r,
            400,
            invalid,
            "name",
            &format!("new account name of 101 {ch}"),
        );
        let r = owner.get(&format!("/accounts/{a}")).await;
        assert_eq!(
            r.result()["name"],
            name.as_str(),
            "a rejected rename keeps the name"
        );
    }

    // User names: at most 60 characters.
    let alice = w.server.as_user(&w.alice);
    let first = "日".repeat(60);
    let last = "😀".repeat(60);
    let r = alice
        .patch("/user", json!({"first_name": first, "last_name": last}))
        .await;
    assert_eq!(r.result()["first_name"], first.as_str());
    for body in [
        json!({"first_name": "日".repeat(61)}),
        json!({"last_name": "é".repeat(61)}),
    ] {
        let r = alice.patch("/user", body.clone()).await;
        let field = body.as_object().unwrap().keys().next().unwrap().clone();
        assert_rejected(&r, 400, invalid, &field, &format!("{body}"));
    }
    let r = alice.get("/user").await;
    assert_eq!(r.result()["first_name"], first.as_str());
    assert_eq!(r.result()["last_name"], last.as_str());
    let members = owner
        .get(&format!("/accounts/{a}/members/{}", w.alice_member))
        .await;
    assert_eq!(members.result()["user"]["last_name"], last.as_str());

    // Emails: at most 90 characters.
    let domain = "@example.com"; // 12 characters
    let path = format!("/accounts/{a}/members");
    for ch in ["ü", "😀"] {
        let email = format!("{}{domain}", ch.repeat(78));
        assert!(email.len() > 90);
        let r = owner
            .post(&path, json!({"email": email, "roles": [DNS]}))
            .await;
        assert_eq!(r.result()["email"], email.as_str());
        let email = format!("{}{domain}", ch.repeat(79));
        let r = owner
            .post(&path, json!({"email": email, "roles": [DNS]}))
            .await;
        assert_rejected(
            &r,
            400,
            invalid,
            "email",
            &format!("91-character email of {ch}"),
        );
    }
    let r = owner.get(&format!("{path}?per_page=50")).await;
    assert_eq!(r.body["result_info"]["total_count"], 5);
}

#[tokio::test]
async fn unroutable_paths_are_404_7003_and_change_nothing() {
    let w = World::new().await;
    let before = w.snapshot().await;
    let a = &w.account;
    let (alice, bob, g) = (&w.alice_member, &w.bob_member, &w.group);
    let mut paths: Vec<(Method, String, &Creds)> = Vec::new();
    let bad_ids = [
        "abc".to_string(),
        "0".repeat(31),
        format!("{a}0"),
        "g".repeat(32),
        "123e4567-e89b-12d3-a456-426614174000".to_string(),
        format!("{}%20", &a[..29]),
    ];
    for x in &bad_ids {
        for method in [Method::GET, Method::PUT, Method::DELETE] {
            paths.push((method.clone(), format!("/memberships/{x}"), &w.bob));
            paths.push((
                method.clone(),
                format!("/accounts/{a}/members/{x}"),
                &w.owner,
            ));
            paths.push((
                method.clone(),
                format!("/accounts/{x}/members/{alice}"),
                &w.owner,
            ));
            paths.push((
                method,
                format!("/accounts/{a}/iam/resource_groups/{x}"),
                &w.owner,
            ));
        }
        paths.push((Method::GET, format!("/accounts/{x}"), &w.owner));
        paths.push((Method::PUT, format!("/accounts/{x}"), &w.owner));
        paths.push((Method::GET, format!("/accounts/{x}/members"), &w.owner));
        paths.push((Method::POST, format!("/accounts/{x}/members"), &w.owner));
        paths.push((Method::GET, format!("/accounts/{x}/roles"), &w.owner));
        paths.push((Method::GET, format!("/accounts/{a}/roles/{x}"), &w.owner));
        paths.push((
            Method::GET,
            format!("/accounts/{a}/iam/permission_groups/{x}"),
            &w.owner,
        ));
        paths.push((
            Method::POST,
            format!("/accounts/{x}/iam/resource_groups"),
            &w.owner,
        ));
    }
    let extra = [
        (Method::GET, format!("/memberships/{bob}/extra")),
        (Method::PUT, format!("/memberships/{bob}/extra")),
        (Method::DELETE, format!("/memberships/{bob}/")),
        (Method::GET, "/memberships/".to_string()),
        (
            Method::DELETE,
            format!("/accounts/{a}/members/{alice}/roles"),
        ),
        (
            Method::PUT,
            format!("/accounts/{a}/members/{alice}/{alice}"),
        ),
        (Method::GET, format!("/accounts/{a}/members/")),
        (Method::GET, format!("/accounts/{a}/nothing")),
        (
            Method::GET,
            format!("/accounts/{a}/roles/{DNS}/permissions"),
        ),
        (
            Method::DELETE,
            format!("/accounts/{a}/iam/resource_groups/{g}/x"),
        ),
        (Method::GET, format!("/accounts/{a}/iam")),
        (Method::GET, "/user/extra".to_string()),
        (Method::GET, "/nothing".to_string()),
        (Method::GET, String::new()),
    ];
    for (method, path) in extra {
        paths.push((method, path, &w.owner));
    }
    for (method, path, who) in paths {
        let body = matches!(method, Method::PUT | Method::POST)
            .then(|| json!({"status": "rejected", "roles": [DNS], "name": "X"}).to_string());
        let r = w
            .server
            .as_user(who)
            .send(method.clone(), &path, body)
            .await;
        let what = format!("{method} {path}");
        assert_eq!(r.status, 404, "{what}: {}", r.body);
        assert_eq!(
            r.error_code(),
            i64::from(codes::NO_ROUTE),
            "{what}: {}",
            r.body
        );
        let errors = r.body["errors"].as_array().unwrap();
        assert_eq!(errors.len(), 2, "{what}: {}", r.body);
        assert_eq!(errors[1]["code"], codes::NO_ROUTE_DETAIL, "{what}");
        assert_eq!(errors[1]["message"], "No route for that URI", "{what}");
        let message = r.error_message();
        let full = format!("/client/v4{path}");
        assert_eq!(
            message,
            format!("Could not route to {full}, perhaps your object identifier is invalid?"),
            "{what}"
        );
    }
    assert_eq!(w.snapshot().await, before);

    // Identifiers are case-insensitive on input.
    let r = w
        .owner()
        .get(&format!(
            "/accounts/{}/members/{}",
            a.to_uppercase(),
            alice.to_uppercase()
        ))
        .await;
    assert_eq!(r.result()["id"], alice.as_str());
}

#[tokio::test]
async fn wrong_methods_are_405_with_the_envelope() {
    let w = World::new().await;
    let before = w.snapshot().await;
    let a = &w.account;
    let (alice, bob, g) = (&w.alice_member, &w.bob_member, &w.group);
    let cases = [
        (Method::PATCH, format!("/accounts/{a}")),
        (Method::POST, format!("/accounts/{a}")),
        (Method::PATCH, "/accounts".to_string()),
        (Method::DELETE, "/accounts".to_string()),
        (Method::POST, "/memberships".to_string()),
        (Method::DELETE, "/memberships".to_string()),
        (Method::PATCH, format!("/memberships/{bob}")),
        (Method::POST, format!("/memberships/{bob}")),
        (Method::PUT, format!("/accounts/{a}/members")),
        (Method::DELETE, format!("/accounts/{a}/members")),
        (Method::PATCH, format!("/accounts/{a}/members/{alice}")),
        (Method::POST, format!("/accounts/{a}/members/{alice}")),
        (Method::POST, format!("/accounts/{a}/roles")),
        (Method::DELETE, format!("/accounts/{a}/roles/{DNS}")),
        (Method::POST, format!("/accounts/{a}/iam/permission_groups")),
        (
            Method::PUT,
            format!("/accounts/{a}/iam/permission_groups/{ZONE_READ}"),
        ),
        (Method::DELETE, format!("/accounts/{a}/iam/resource_groups")),
        (
            Method::PATCH,
            format!("/accounts/{a}/iam/resource_groups/{g}"),
        ),
        (Method::PUT, "/user".to_string()),
        (Method::DELETE, "/user".to_string()),
    ];
    for (method, path) in cases {
        let body = matches!(method, Method::PUT | Method::POST | Method::PATCH)
            .then(|| json!({"status": "accepted", "roles": [BILLING], "name": "X"}).to_string());
        let r = w.owner().send(method.clone(), &path, body).await;
        let what = format!("{method} {path}");
        assert_rejected(&r, 405, codes::METHOD_NOT_ALLOWED, method.as_str(), &what);
        assert!(
            r.error_message().contains(&format!("/client/v4{path}")),
            "{what}: {}",
            r.body
        );
    }
    assert_eq!(w.snapshot().await, before);
}

/// Control characters (a NUL byte above all, which PostgreSQL text cannot hold) are refused
/// in every stored text field, with the field named, on either backend.
#[tokio::test]
async fn control_characters_are_refused_in_stored_text() {
    let w = World::new().await;
    let before = w.snapshot().await;
    let admin = w.server.as_user(&w.owner);
    let groups = format!("/accounts/{}/iam/resource_groups", w.account);
    let scope = json!({"key": format!("com.cloudflare.api.account.{}", w.account), "objects": [{"key": "*"}]});
    for bad in ["a\u{0}b", "tab\there", "line\nbreak"] {
        let r = admin.post("/accounts", json!({"name": bad})).await;
        assert_rejected(&r, 400, codes::INVALID_INPUT, "name", bad);
        let r = admin
            .put(&format!("/accounts/{}", w.account), json!({"name": bad}))
            .await;
        assert_rejected(&r, 400, codes::INVALID_INPUT, "name", bad);
        let r = admin.patch("/user", json!({"first_name": bad})).await;
        assert_rejected(&r, 400, codes::INVALID_INPUT, "first_name", bad);
        let r = admin
            .post(&groups, json!({"name": bad, "scope": scope}))
            .await;
        assert_rejected(&r, 400, codes::INVALID_INPUT, "name", bad);
        let r = admin
            .post(
                &groups,
                json!({"name": "ok", "scope": scope, "meta": {"key": bad}}),
            )
            .await;
        assert_rejected(&r, 400, codes::INVALID_INPUT, "meta", bad);
    }
    assert_eq!(w.snapshot().await, before);
    // The owner's accounts are unchanged too (none was created).
    let accounts = admin.get("/accounts").await;
    assert_eq!(accounts.result().as_array().unwrap().len(), 1);
}

/// Invisible and direction-changing characters (default-ignorable code points such as
/// U+FE0F or the Hangul fillers, bidirectional controls) are refused in an invited email,
/// which could otherwise sit beside the plain address in one account, and in every name;
/// a name of nothing but such characters and spaces is refused as empty. Each refusal
/// names its field and changes nothing.
#[tokio::test]
async fn invisible_characters_are_refused_in_emails_and_names() {
    let w = World::new().await;
    let before = w.snapshot().await;
    let admin = w.server.as_user(&w.owner);
    let account = format!("/accounts/{}", w.account);
    let members = format!("{account}/members");
    for c in [
        '\u{FE0F}',
        '\u{3164}',
        '\u{115F}',
        '\u{E0020}',
        '\u{200B}',
        '\u{202E}',
    ] {
        let email = format!("alice{c}@example.com");
        let r = admin
            .post(&members, json!({"email": email, "roles": [DNS]}))
            .await;
        assert_rejected(&r, 400, codes::INVALID_INPUT, "email", &email);
    }
    let scope = json!({"key": format!("com.cloudflare.api.account.{}", w.account), "objects": [{"key": "*"}]});
    let token_policy = json!({
        "effect": "allow",
        "permission_groups": [{"id": "15b972a8f4cb43e78efbafb322f7dee5"}],
        "resources": {format!("com.cloudflare.api.account.{}", w.account): "*"},
    });
    for (bad, why) in [
        ("Acme\u{202E}Corp", "must not contain"),
        ("Acme\u{2066}Corp\u{2069}", "must not contain"),
        ("Acme\u{FE0F}", "must not contain"),
        ("\u{200B}", "must be between 1 and"),
        ("\u{3164} \u{3164}", "must be between 1 and"),
    ] {
        let what = format!("{bad:?}");
        let name = |field: &str| format!("{field} {why}");
        let r = admin.post("/accounts", json!({"name": bad})).await;
        assert_rejected(&r, 400, codes::INVALID_INPUT, &name("name"), &what);
        let r = admin.put(&account, json!({"name": bad})).await;
        assert_rejected(&r, 400, codes::INVALID_INPUT, &name("name"), &what);
        let r = admin
            .post(
                &format!("{account}/iam/resource_groups"),
                json!({"name": bad, "scope": scope}),
            )
            .await;
        assert_rejected(&r, 400, codes::INVALID_INPUT, &name("name"), &what);
        let r = admin
            .post(&format!("{account}/iam/user_groups"), json!({"name": bad}))
            .await;
        assert_rejected(&r, 400, codes::INVALID_INPUT, &name("name"), &what);
        let r = admin
            .post(
                "/user/tokens",
                json!({"name": bad, "policies": [token_policy]}),
            )
            .await;
        assert_rejected(&r, 400, codes::INVALID_INPUT, &name("name"), &what);
    }
    for bad in ["Al\u{202E}ice", "\u{200B}", "\u{3164}"] {
        for field in ["first_name", "last_name"] {
            let r = admin.patch("/user", json!({field: bad})).await;
            assert_rejected(&r, 400, codes::INVALID_INPUT, field, bad);
        }
    }
    assert_eq!(w.snapshot().await, before);
    assert_eq!(
        admin
            .get("/accounts")
            .await
            .result()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(admin.get("/user/tokens").await.result(), &json!([]));
    let groups = admin.get(&format!("{account}/iam/user_groups")).await;
    assert_eq!(groups.result(), &json!([]));
}

/// A resource group's `meta` keeps whatever string pairs it was given.
#[tokio::test]
async fn resource_group_meta_round_trips() {
    let w = World::new().await;
    let admin = w.server.as_user(&w.owner);
    let groups = format!("/accounts/{}/iam/resource_groups", w.account);
    let scope = json!({"key": format!("com.cloudflare.api.account.{}", w.account), "objects": [{"key": "*"}]});
    let meta = json!({"editable": "false", "key": "team", "value": "edge"});
    let created = admin
        .post(
            &groups,
            json!({"name": "meta", "scope": scope, "meta": meta}),
        )
        .await;
    let id = created.result()["id"].as_str().unwrap().to_string();
    assert_eq!(created.result()["meta"], meta);
    assert_eq!(
        admin.get(&format!("{groups}/{id}")).await.result()["meta"],
        meta
    );
    let r = admin
        .post(
            &groups,
            json!({"name": "bad meta", "scope": scope, "meta": {"n": 5}}),
        )
        .await;
    assert_rejected(&r, 400, codes::INVALID_INPUT, "meta", "meta with a number");
}

/// Optional fields the schema does not make nullable refuse an explicit `null` (absent is
/// fine); only `PATCH /user` reads `null` as "clear this field", as the SDKs send it.
#[tokio::test]
async fn null_is_not_a_value_for_optional_fields() {
    let server = TestServer::start().await;
    let owner = server.user("owner@example.com").await;
    let a = server.account(&owner, "Acme").await;
    let member = server.invite(&owner, &a, "m@example.com", &[DNS]).await;
    let as_owner = server.as_user(&owner);
    let cases = [
        (
            "PUT",
            format!("/accounts/{a}"),
            json!({"name": "Acme", "settings": null}),
            "settings",
        ),
        (
            "PUT",
            format!("/accounts/{a}/members/{member}"),
            json!({"roles": null}),
            "roles",
        ),
        (
            "POST",
            format!("/accounts/{a}/members"),
            json!({"email": "n@example.com", "roles": [DNS], "status": null}),
            "status",
        ),
        (
            "POST",
            format!("/accounts/{a}/iam/resource_groups"),
            json!({"name": null, "scope": {"key": format!("com.cloudflare.api.account.{a}"), "objects": [{"key": "*"}]}}),
            "name",
        ),
        (
            "POST",
            "/user/tokens".to_string(),
            json!({"name": "t", "policies": [], "expires_on": null}),
            "expires_on",
        ),
    ];
    for (method, path, body, field) in cases {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let r = as_owner
            .send(method.clone(), &path, Some(body.to_string()))
            .await;
        assert_rejected(
            &r,
            400,
            codes::INVALID_INPUT,
            field,
            &format!("{method} {path}"),
        );
    }
    let r = as_owner
        .get(&format!("/accounts/{a}/members/{member}"))
        .await;
    assert_eq!(r.result()["roles"][0]["id"], DNS, "nothing changed");
    let cleared = as_owner.patch("/user", json!({"telephone": null})).await;
    assert!(cleared.result()["telephone"].is_null());
}
