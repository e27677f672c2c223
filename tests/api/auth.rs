//! Authentication and authorization: Cloudflare's codes for missing, malformed and wrong
//! credentials; tokens limited by their permission groups; nothing leaks across users.

use serde_json::json;

use crate::helpers::*;

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

    let writer = server.token(&demo, &["Account Settings Write"]).await;
    let client = server.with_token(&writer);
    client
        .post(
            &format!("/accounts/{DEMO_ACCOUNT}/members"),
            json!({"email": "x@example.com", "roles": [SUPER_ADMIN]}),
        )
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
