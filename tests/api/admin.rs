//! The last-administrator rule: an account always keeps an accepted member with
//! organization write, also when requests race.

use serde_json::json;

use crate::helpers::*;

const ADMIN_RO: &str = "25a6523fbf0a4cdaa8af77b778c7dd19";

async fn owner_membership(server: &TestServer, owner: &Creds) -> String {
    let r = server.as_user(owner).get("/memberships").await;
    r.result()[0]["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn the_sole_administrator_cannot_be_removed_demoted_or_leave() {
    let server = TestServer::start().await;
    let owner = server.user("owner@example.com").await;
    let account = server.account(&owner, "Solo").await;
    let id = owner_membership(&server, &owner).await;
    let admin = server.as_user(&owner);
    let member = format!("/accounts/{account}/members/{id}");
    admin.delete(&member).await.expect_error(409, 1007);
    admin
        .put(&member, json!({"roles": [ADMIN_RO]}))
        .await
        .expect_error(409, 1007);
    admin
        .delete(&format!("/memberships/{id}"))
        .await
        .expect_error(409, 1007);
    let after = admin.get(&member).await;
    assert_eq!(after.result()["roles"][0]["id"], SUPER_ADMIN);
}

#[tokio::test]
async fn a_pending_administrator_does_not_count() {
    let server = TestServer::start().await;
    let owner = server.user("owner@example.com").await;
    let account = server.account(&owner, "Pending").await;
    server
        .invite(&owner, &account, "next@example.com", &[SUPER_ADMIN])
        .await;
    let id = owner_membership(&server, &owner).await;
    server
        .as_user(&owner)
        .delete(&format!("/accounts/{account}/members/{id}"))
        .await
        .expect_error(409, 1007);
}

#[tokio::test]
async fn with_two_administrators_one_may_go() {
    let server = TestServer::start().await;
    let owner = server.user("owner@example.com").await;
    let second = server.user("second@example.com").await;
    let account = server.account(&owner, "Pair").await;
    let second_id = server
        .add_member(&owner, &account, &second, &[SUPER_ADMIN])
        .await;
    let owner_id = owner_membership(&server, &owner).await;
    // The owner steps down to read-only; the second admin remains.
    server
        .as_user(&owner)
        .put(
            &format!("/accounts/{account}/members/{owner_id}"),
            json!({"roles": [ADMIN_RO]}),
        )
        .await
        .result();
    server
        .as_user(&second)
        .delete(&format!("/memberships/{second_id}"))
        .await
        .expect_error(409, 1007);
    server
        .as_user(&second)
        .delete(&format!("/accounts/{account}/members/{owner_id}"))
        .await
        .result();
}

/// Two admins remove each other at the same moment, many times over: exactly one of each
/// pair of requests may win.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_removals_keep_an_administrator() {
    let server = TestServer::start().await;
    for round in 0..10 {
        let a = server.user(&format!("a{round}@example.com")).await;
        let b = server.user(&format!("b{round}@example.com")).await;
        let account = server.account(&a, &format!("Race {round}")).await;
        let b_id = server.add_member(&a, &account, &b, &[SUPER_ADMIN]).await;
        let a_id = owner_membership(&server, &a).await;
        let (ca, cb) = (server.as_user(&a), server.as_user(&b));
        let (pa, pb) = (
            format!("/accounts/{account}/members/{b_id}"),
            format!("/accounts/{account}/members/{a_id}"),
        );
        let (ra, rb) = tokio::join!(ca.delete(&pa), cb.put(&pb, json!({"roles": [ADMIN_RO]})));
        let wins = [ra.status, rb.status].iter().filter(|s| **s == 200).count();
        assert_eq!(wins, 1, "round {round}: {} / {}", ra.body, rb.body);
        let members = server
            .as_user(&a)
            .get(&format!("/accounts/{account}/members"))
            .await;
        let admins = members
            .result()
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| {
                m["status"] == "accepted"
                    && m["roles"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|r| r["id"] == SUPER_ADMIN)
            })
            .count();
        // The winner is the one administrator left.
        assert_eq!(admins, 1, "round {round}: {}", members.body);
    }
}

/// Writes load only the members their rules need, and find administrators by their grants:
/// one made so by a policy must count.
#[tokio::test]
async fn an_administrator_by_policy_counts() {
    let server = TestServer::start().await;
    let owner = server.user("owner@example.com").await;
    let by_policy = server.user("policy@example.com").await;
    let account = server.account(&owner, "Policies").await;
    let admin = server.as_user(&owner);
    let group = server
        .whole_account_group(&owner, &account, Some("all"))
        .await;
    let policy_id = server
        .add_member(&owner, &account, &by_policy, &[ADMIN_RO])
        .await;
    let settings_write = "bcc19b668966402dadd900f2b4243d2e";
    admin
        .put(
            &format!("/accounts/{account}/members/{policy_id}"),
            json!({"policies": [{"access": "allow", "permission_groups": [{"id": settings_write}], "resource_groups": [{"id": group}]}]}),
        )
        .await
        .result();
    // The owner may go: the policy makes its holder an administrator.
    let owner_id = owner_membership(&server, &owner).await;
    admin
        .delete(&format!("/memberships/{owner_id}"))
        .await
        .result();
    let policy_admin = server.as_user(&by_policy);
    policy_admin
        .delete(&format!("/memberships/{policy_id}"))
        .await
        .expect_error(409, 1007);

    // And the policy is all that keeps it an administrator: demoting it is refused too.
    policy_admin
        .put(
            &format!("/accounts/{account}/members/{policy_id}"),
            json!({"roles": [ADMIN_RO]}),
        )
        .await
        .expect_error(409, 1007);
}
