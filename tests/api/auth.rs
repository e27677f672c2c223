//! Authentication and authorization: Cloudflare's codes for missing, malformed and wrong
//! credentials; tokens limited by their permission groups; nothing leaks across users.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

const ADMIN_RO: &str = "25a6523fbf0a4cdaa8af77b778c7dd19"; // Administrator Read Only
const MISSING_ACCOUNT: &str = "00000000000000000000000000000000";

#[tokio::test]
async fn missing_credentials_are_9106() {
    let server = TestServer::demo().await;
    let r = server.anonymous().get("/memberships").await;
    r.expect_error(400, 9106);
    assert_eq!(
        r.error_message(),
        "Missing X-Auth-Key, X-Auth-Email or Authorization headers"
    );
    // An email alone is still missing a key.
    server
        .with_headers(&[("X-Auth-Email", "user@example.com")])
        .get("/memberships")
        .await
        .expect_error(400, 9106);
}

#[tokio::test]
async fn malformed_headers_are_6003_with_a_chain() {
    let server = TestServer::demo().await;
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [i64]);
    let cases: [Case; 4] = [
        (
            &[
                ("X-Auth-Email", "not-an-email"),
                ("X-Auth-Key", "144c9defac04969c7bfad8efaa8ea194"),
            ],
            &[6102],
        ),
        (
            &[
                ("X-Auth-Email", "user@example.com"),
                ("X-Auth-Key", "short"),
            ],
            &[6103],
        ),
        (
            &[
                ("X-Auth-Email", "nope"),
                ("X-Auth-Key", "zz4c9defac04969c7bfad8efaa8ea194"),
            ],
            &[6102, 6103],
        ),
        (&[("Authorization", "Token abc")], &[6111]),
    ];
    for (headers, chain) in cases {
        let r = server.with_headers(headers).get("/memberships").await;
        r.expect_error(400, 6003);
        assert_eq!(r.error_message(), "Invalid request headers");
        let got: Vec<i64> = r.body["errors"][0]["error_chain"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["code"].as_i64().unwrap())
            .collect();
        assert_eq!(got, chain, "{headers:?}");
    }
}

#[tokio::test]
async fn wrong_key_and_unknown_email_answer_alike() {
    let server = TestServer::demo().await;
    let wrong_key = server
        .with_headers(&[
            ("X-Auth-Email", "user@example.com"),
            ("X-Auth-Key", "244c9defac04969c7bfad8efaa8ea194"),
        ])
        .get("/memberships")
        .await;
    let unknown = server
        .with_headers(&[
            ("X-Auth-Email", "nobody@example.com"),
            ("X-Auth-Key", "144c9defac04969c7bfad8efaa8ea194"),
        ])
        .get("/memberships")
        .await;
    wrong_key.expect_error(403, 9103);
    unknown.expect_error(403, 9103);
    assert_eq!(wrong_key.body, unknown.body);
}

#[tokio::test]
async fn email_and_key_are_case_insensitive() {
    let server = TestServer::demo().await;
    server
        .with_headers(&[
            ("X-Auth-Email", "USER@Example.COM"),
            ("X-Auth-Key", "144C9DEFAC04969C7BFAD8EFAA8EA194"),
        ])
        .get("/user")
        .await
        .result();
}

#[tokio::test]
async fn unknown_token_is_10000() {
    let server = TestServer::demo().await;
    server
        .with_token("abcdefghijabcdefghijabcdefghijabcdefghij")
        .get("/memberships")
        .await
        .expect_error(403, 10000);
}

#[tokio::test]
async fn tokens_are_limited_by_their_permission_groups() {
    let server = TestServer::demo().await;
    let demo = Creds::demo();
    let read_only = server
        .token(&demo, &["Account Settings Read", "Memberships Read"])
        .await;
    let client = server.with_token(&read_only);
    client.get("/memberships").await.result();
    client
        .get(&format!("/accounts/{DEMO_ACCOUNT}/members"))
        .await
        .result();
    client
        .post(
            &format!("/accounts/{DEMO_ACCOUNT}/members"),
            json!({"email": "x@example.com", "roles": [SUPER_ADMIN]}),
        )
        .await
        .expect_error(403, 9109);
    client
        .delete(&format!("/memberships/{DEMO_MEMBERSHIP}"))
        .await
        .expect_error(403, 9109);
    client.get("/user").await.expect_error(403, 9109);
    // The demo user reads two accounts (the third is a pending invitation).
    let accounts = client.get("/accounts").await;
    assert_eq!(accounts.result().as_array().unwrap().len(), 2);
    // A token without an account-settings group sees no accounts at all.
    let memberships_only = server.token(&demo, &["Memberships Read"]).await;
    let listed = server.with_token(&memberships_only).get("/accounts").await;
    assert_eq!(listed.result(), &json!([]));

    // A token gives at most what it carries: "Account Settings Write" alone invites no
    // one with DNS rights, though its user holds them.
    let writer = server.token(&demo, &["Account Settings Write"]).await;
    let dns_member = json!({"email": "x@example.com", "roles": [DNS_ROLE]});
    let members = format!("/accounts/{DEMO_ACCOUNT}/members");
    server
        .with_token(&writer)
        .post(&members, dns_member.clone())
        .await
        .expect_error(403, 9109);
    let writer = server
        .token(&demo, &["Account Settings Write", "DNS Write", "Zone Read"])
        .await;
    server
        .with_token(&writer)
        .post(&members, dns_member)
        .await
        .result();
    // A token never exceeds its user's own rights: Bob is only a Billing member of Acme.
    let bob = Creds {
        email: "bob@example.com".into(),
        key: "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b".into(),
    };
    let bob_token = server.token(&bob, &["Account Settings Write"]).await;
    server
        .with_token(&bob_token)
        .post(
            "/accounts/eb78d65290b24279ba6f44721b3ea3c4/members",
            json!({"email": "y@example.com", "roles": [SUPER_ADMIN]}),
        )
        .await
        .expect_error(403, 9109);
}

#[tokio::test]
async fn another_users_membership_answers_like_a_missing_one() {
    let server = TestServer::demo().await;
    let jane = server.user("someone@example.com").await;
    let client = server.as_user(&jane);
    let theirs = client.get(&format!("/memberships/{DEMO_MEMBERSHIP}")).await;
    let missing = client
        .get("/memberships/00000000000000000000000000000000")
        .await;
    theirs.expect_error(404, 1003);
    missing.expect_error(404, 1003);
    assert_eq!(theirs.body, missing.body);
    for r in [
        client
            .put(
                &format!("/memberships/{DEMO_MEMBERSHIP}"),
                json!({"status": "rejected"}),
            )
            .await,
        client
            .delete(&format!("/memberships/{DEMO_MEMBERSHIP}"))
            .await,
    ] {
        r.expect_error(404, 1003);
    }
    // Still there for its owner.
    server
        .as_user(&Creds::demo())
        .get(&format!("/memberships/{DEMO_MEMBERSHIP}"))
        .await
        .result();
}

#[tokio::test]
async fn non_members_see_the_account_as_missing() {
    let server = TestServer::demo().await;
    let stranger = server.user("stranger@example.com").await;
    let client = server.as_user(&stranger);
    let existing = client
        .get(&format!("/accounts/{DEMO_ACCOUNT}/members"))
        .await;
    let missing = client
        .get("/accounts/00000000000000000000000000000000/members")
        .await;
    existing.expect_error(404, 1003);
    assert_eq!(existing.body, missing.body);
    client
        .get(&format!("/accounts/{DEMO_ACCOUNT}"))
        .await
        .expect_error(404, 1003);
    client
        .get(&format!("/accounts/{DEMO_ACCOUNT}/roles"))
        .await
        .expect_error(404, 1003);
}

#[tokio::test]
async fn pending_invitees_cannot_see_the_account_yet() {
    let server = TestServer::demo().await;
    let jane = Creds {
        email: "jane@example.com".into(),
        key: "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c".into(),
    };
    server
        .as_user(&jane)
        .get(&format!("/accounts/{DEMO_ACCOUNT}/members"))
        .await
        .expect_error(404, 1003);
}

#[tokio::test]
async fn members_without_organization_write_cannot_change_members() {
    let server = TestServer::start().await;
    let owner = server.user("owner@example.com").await;
    let reader = server.user("reader@example.com").await;
    let account = server.account(&owner, "Acct").await;
    let read_only = "25a6523fbf0a4cdaa8af77b778c7dd19"; // Administrator Read Only
    server
        .add_member(&owner, &account, &reader, &[read_only])
        .await;
    let client = server.as_user(&reader);
    client
        .get(&format!("/accounts/{account}/members"))
        .await
        .result();
    client
        .post(
            &format!("/accounts/{account}/members"),
            json!({"email": "z@example.com", "roles": [read_only]}),
        )
        .await
        .expect_error(403, 9109);
    let members = server
        .as_user(&owner)
        .get(&format!("/accounts/{account}/members"))
        .await;
    assert_eq!(members.body["result_info"]["total_count"], 2);
}

#[tokio::test]
async fn every_response_carries_a_ray_id() {
    let server = TestServer::demo().await;
    let a = server.anonymous().get("/memberships").await;
    let b = server.anonymous().get("/memberships").await;
    let ray = |r: &Resp| r.headers["cf-ray"].to_str().unwrap().to_string();
    assert_ne!(ray(&a), ray(&b));
    assert!(ray(&a).ends_with("-RST"));
}

#[tokio::test]
async fn answering_or_leaving_a_membership_needs_memberships_write() {
    let server = TestServer::start().await;
    let owner = server.user("owner@example.com").await;
    let account = server.account(&owner, "Tokens").await;
    let jane = server.user("jane@example.com").await;
    let id = server
        .invite(&owner, &account, &jane.email, &[ADMIN_RO])
        .await;
    let path = format!("/memberships/{id}");
    let reader = server.with_token(&server.token(&jane, &["Memberships Read"]).await);
    let before = reader.get(&path).await.result().clone();
    assert_eq!(before["status"], "pending");
    for status in ["accepted", "rejected"] {
        reader
            .put(&path, json!({"status": status}))
            .await
            .expect_error(403, 9109);
    }
    reader.delete(&path).await.expect_error(403, 9109);
    assert_eq!(reader.get(&path).await.result(), &before);

    let writer = server.with_token(&server.token(&jane, &["Memberships Write"]).await);
    let accepted = writer.put(&path, json!({"status": "accepted"})).await;
    assert_eq!(accepted.result()["status"], "accepted");
    // An accepted membership cannot be left with a read token either.
    reader.delete(&path).await.expect_error(403, 9109);
    assert_eq!(reader.get(&path).await.result()["status"], "accepted");
    assert_eq!(writer.delete(&path).await.result(), &json!({"id": id}));
    reader.get(&path).await.expect_error(404, 1003);
}

#[tokio::test]
async fn editing_the_profile_needs_user_details_write() {
    let server = TestServer::start().await;
    let jane = server.user("jane@example.com").await;
    let reader = server.with_token(&server.token(&jane, &["User Details Read"]).await);
    let before = reader.get("/user").await.result().clone();
    assert_eq!(before["first_name"], "Test");
    reader
        .patch(
            "/user",
            json!({"first_name": "Mallory", "last_name": "Evil"}),
        )
        .await
        .expect_error(403, 9109);
    assert_eq!(reader.get("/user").await.result(), &before);

    let writer = server.with_token(&server.token(&jane, &["User Details Write"]).await);
    let edited = writer.patch("/user", json!({"first_name": "Janet"})).await;
    assert_eq!(edited.result()["first_name"], "Janet");
    assert_eq!(reader.get("/user").await.result()["first_name"], "Janet");
}

/// An account with an accepted member besides its owner and a resource group: something
/// for every write route to hit.
struct Target {
    server: TestServer,
    owner: Creds,
    account: String,
    member: String,
    group: String,
}

impl Target {
    async fn new() -> Target {
        let server = TestServer::start().await;
        let owner = server.user("owner@example.com").await;
        let account = server.account(&owner, "Target").await;
        let mia = server.user("mia@example.com").await;
        let member = server.add_member(&owner, &account, &mia, &[ADMIN_RO]).await;
        let group = server
            .as_user(&owner)
            .post(
                &format!("/accounts/{account}/iam/resource_groups"),
                json!({"name": "Everything", "scope": {
                    "key": format!("com.cloudflare.api.account.{account}"),
                    "objects": [{"key": "*"}]}}),
            )
            .await
            .result()["id"]
            .as_str()
            .unwrap()
            .to_string();
        Target {
            server,
            owner,
            account,
            member,
            group,
        }
    }

    /// Every write route of `account`, as (method, path, valid body), aimed at the real
    /// account's member and resource group.
    fn writes(&self, account: &str) -> Vec<(Method, String, Option<Value>)> {
        let (member, group) = (&self.member, &self.group);
        let scope = json!({
            "key": format!("com.cloudflare.api.account.{}", self.account),
            "objects": [{"key": "*"}],
        });
        vec![
            (
                Method::POST,
                format!("/accounts/{account}/members"),
                Some(json!({"email": "new@example.com", "roles": [SUPER_ADMIN]})),
            ),
            (
                Method::PUT,
                format!("/accounts/{account}/members/{member}"),
                Some(json!({"roles": [SUPER_ADMIN]})),
            ),
            (
                Method::DELETE,
                format!("/accounts/{account}/members/{member}"),
                None,
            ),
            (
                Method::POST,
                format!("/accounts/{account}/iam/resource_groups"),
                Some(json!({"name": "Taken over", "scope": scope})),
            ),
            (
                Method::PUT,
                format!("/accounts/{account}/iam/resource_groups/{group}"),
                Some(json!({"name": "Renamed", "scope": scope})),
            ),
            (
                Method::DELETE,
                format!("/accounts/{account}/iam/resource_groups/{group}"),
                None,
            ),
            (
                Method::PUT,
                format!("/accounts/{account}"),
                Some(json!({"name": "Hijacked", "settings": {"enforce_twofactor": true}})),
            ),
        ]
    }

    /// The account, its members and its resource groups as the owner sees them.
    async fn snapshot(&self) -> Value {
        let owner = self.server.as_user(&self.owner);
        let a = &self.account;
        json!({
            "account": owner.get(&format!("/accounts/{a}")).await.result(),
            "members": owner.get(&format!("/accounts/{a}/members?per_page=50")).await.result(),
            "groups": owner
                .get(&format!("/accounts/{a}/iam/resource_groups?per_page=50"))
                .await
                .result(),
        })
    }
}

#[tokio::test]
async fn non_members_cannot_tell_an_account_they_write_to_from_a_missing_one() {
    let t = Target::new().await;
    let stranger = t.server.user("stranger@example.com").await;
    // An invitee who has not accepted is no member yet, even with an administrator role.
    let invitee = t.server.user("invitee@example.com").await;
    t.server
        .invite(&t.owner, &t.account, &invitee.email, &[SUPER_ADMIN])
        .await;
    let before = t.snapshot().await;
    for caller in [&stranger, &invitee] {
        let client = t.server.as_user(caller);
        for ((method, path, body), (_, missing_path, _)) in t
            .writes(&t.account)
            .into_iter()
            .zip(t.writes(MISSING_ACCOUNT))
        {
            let body = body.map(|b| b.to_string());
            let existing = client.send(method.clone(), &path, body.clone()).await;
            let missing = client.send(method.clone(), &missing_path, body).await;
            assert_eq!(existing.status, 404, "{method} {path}: {}", existing.body);
            assert_eq!(existing.error_code(), 1003, "{method} {path}");
            assert_eq!(
                existing.body, missing.body,
                "{} {method} {path}",
                caller.email
            );
        }
    }
    assert_eq!(t.snapshot().await, before);
}

#[tokio::test]
async fn members_without_organization_write_are_refused_on_every_write_route() {
    let t = Target::new().await;
    let reader = t.server.user("reader@example.com").await;
    t.server
        .add_member(&t.owner, &t.account, &reader, &[ADMIN_RO])
        .await;
    let before = t.snapshot().await;
    let client = t.server.as_user(&reader);
    // Reading is allowed: the refusals below are about writing.
    client
        .get(&format!("/accounts/{}/members", t.account))
        .await
        .result();
    for (method, path, body) in t.writes(&t.account) {
        let r = client
            .send(method.clone(), &path, body.map(|b| b.to_string()))
            .await;
        assert_eq!(r.status, 403, "{method} {path}: {}", r.body);
        assert_eq!(r.error_code(), 9109, "{method} {path}");
    }
    assert_eq!(t.snapshot().await, before);
}

#[tokio::test]
async fn two_factor_enforcement_refuses_a_direct_add_of_an_email_without_a_user() {
    let server = TestServer::start().await;
    let owner = server.user("owner@example.com").await;
    let account = server.account(&owner, "Strict").await;
    server.make_enterprise(&account).await;
    let admin = server.as_user(&owner);
    admin
        .put(
            &format!("/accounts/{account}"),
            json!({"name": "Strict", "settings": {"enforce_twofactor": true}}),
        )
        .await
        .result();
    let members = format!("/accounts/{account}/members");
    // No user has this email yet: Direct Add needs one (and nobody has shown a second
    // factor).
    let r = admin
        .post(
            &members,
            json!({"email": "ghost@example.com", "roles": [ADMIN_RO], "status": "accepted"}),
        )
        .await;
    r.expect_error(400, 1002);
    assert!(r.error_message().contains("already exists"), "{}", r.body);
    let listed = admin.get(&members).await;
    assert_eq!(
        listed.body["result_info"]["total_count"], 1,
        "{}",
        listed.body
    );
    assert_eq!(listed.result()[0]["email"], owner.email.as_str());
    // No row was left behind: a plain invitation of the same email goes through.
    server
        .invite(&owner, &account, "ghost@example.com", &[ADMIN_RO])
        .await;
}
