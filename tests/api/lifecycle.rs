//! The invitation lifecycle and re-invite rules of DESIGN.md.

use serde_json::{Value, json};

use crate::helpers::*;

const ADMIN_RO: &str = "25a6523fbf0a4cdaa8af77b778c7dd19"; // Administrator Read Only
const DNS: &str = "87e7860bc4c445faba075646dac38cca";

async fn setup() -> (TestServer, Creds, String) {
    let server = TestServer::start().await;
    let owner = server.user("owner@example.com").await;
    let account = server.account(&owner, "Lifecycle").await;
    (server, owner, account)
}

#[tokio::test]
async fn an_invitation_is_the_invitees_at_once_whatever_the_case_of_the_email() {
    let (server, owner, account) = setup().await;
    let alice = server
        .user_with("Alice@Example.com", Some("Alice"), Some("Liddell"), true)
        .await;
    let r = server
        .as_user(&owner)
        .post(
            &format!("/accounts/{account}/members"),
            json!({"email": "alice@EXAMPLE.com", "roles": [DNS]}),
        )
        .await;
    let member = r.result();
    assert_eq!(member["status"], "pending");
    // The invitee's profile is not shown to the account before they accept.
    assert_eq!(
        member["user"],
        json!({"email": "alice@EXAMPLE.com", "first_name": null, "last_name": null, "two_factor_authentication_enabled": false})
    );
    assert_eq!(member["roles"][0]["name"], "DNS");
    let id = member["id"].as_str().unwrap();

    let mine = server
        .as_user(&alice)
        .get(&format!("/memberships/{id}"))
        .await;
    let m = mine.result();
    assert_eq!(m["status"], "pending");
    assert_eq!(m["account"]["id"], account.as_str());
    assert_eq!(m["roles"], json!(["DNS"]));
    assert_eq!(
        m["permissions"]["dns"],
        json!({"read": true, "write": true})
    );
    assert_eq!(
        m["code"].as_str().unwrap().len(),
        64,
        "invitee sees the activation code"
    );
    // The account's view never shows the code.
    let seen = server
        .as_user(&owner)
        .get(&format!("/accounts/{account}/members/{id}"))
        .await;
    assert!(seen.result().get("code").is_none());
    // Once accepted, the account sees who the member is.
    server
        .as_user(&alice)
        .put(&format!("/memberships/{id}"), json!({"status": "accepted"}))
        .await
        .result();
    let seen = server
        .as_user(&owner)
        .get(&format!("/accounts/{account}/members/{id}"))
        .await;
    assert_eq!(seen.result()["user"]["first_name"], "Alice");
    assert_eq!(seen.result()["user"]["email"], "Alice@Example.com");
}

#[tokio::test]
async fn an_invitation_before_sign_up_attaches_to_the_user_created_later() {
    let (server, owner, account) = setup().await;
    let id = server
        .invite(&owner, &account, "later@example.com", &[DNS])
        .await;
    let before = server
        .as_user(&owner)
        .get(&format!("/accounts/{account}/members/{id}"))
        .await;
    assert!(before.result()["user"].get("id").is_none());
    let later = server.user("LATER@example.com").await;
    let list = server.as_user(&later).get("/memberships").await;
    assert_eq!(list.result()[0]["id"], id.as_str());
    server
        .as_user(&later)
        .put(&format!("/memberships/{id}"), json!({"status": "accepted"}))
        .await
        .result();
    let after = server
        .as_user(&owner)
        .get(&format!("/accounts/{account}/members/{id}"))
        .await;
    assert_eq!(after.result()["status"], "accepted");
    assert_eq!(after.result()["user"]["first_name"], "Test");
}

#[tokio::test]
async fn accept_is_idempotent_and_only_pending_changes() {
    let (server, owner, account) = setup().await;
    let bob = server.user("bob@example.com").await;
    let id = server.invite(&owner, &account, &bob.email, &[DNS]).await;
    let client = server.as_user(&bob);
    let path = format!("/memberships/{id}");
    assert_eq!(
        client
            .put(&path, json!({"status": "accepted"}))
            .await
            .result()["status"],
        "accepted"
    );
    assert_eq!(
        client
            .put(&path, json!({"status": "accepted"}))
            .await
            .result()["status"],
        "accepted"
    );
    let r = client.put(&path, json!({"status": "rejected"})).await;
    r.expect_error(409, 1005);
    assert!(
        r.error_message().contains("accepted"),
        "{}",
        r.error_message()
    );
    assert_eq!(client.get(&path).await.result()["status"], "accepted");
}

#[tokio::test]
async fn a_rejected_invitation_stays_rejected_and_may_be_reissued() {
    let (server, owner, account) = setup().await;
    let carol = server.user("carol@example.com").await;
    let first = server.invite(&owner, &account, &carol.email, &[DNS]).await;
    let client = server.as_user(&carol);
    let path = format!("/memberships/{first}");
    assert_eq!(
        client
            .put(&path, json!({"status": "rejected"}))
            .await
            .result()["status"],
        "rejected"
    );
    client
        .put(&path, json!({"status": "accepted"}))
        .await
        .expect_error(409, 1005);
    client
        .put(&path, json!({"status": "rejected"}))
        .await
        .expect_error(409, 1005);
    // Re-inviting after a rejection is allowed and makes a new membership.
    let second = server.invite(&owner, &account, &carol.email, &[DNS]).await;
    assert_ne!(first, second);
    let statuses = client.get("/memberships?order=status").await;
    let got: Vec<&str> = statuses
        .result()
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["status"].as_str().unwrap())
        .collect();
    assert_eq!(got, ["pending", "rejected"]);
}

#[tokio::test]
async fn inviting_a_live_member_again_is_a_conflict_until_removed() {
    let (server, owner, account) = setup().await;
    let dan = server.user("dan@example.com").await;
    let admin = server.as_user(&owner);
    let members = format!("/accounts/{account}/members");
    let id = server.invite(&owner, &account, &dan.email, &[DNS]).await;
    admin
        .post(
            &members,
            json!({"email": "DAN@example.com", "roles": [DNS]}),
        )
        .await
        .expect_error(409, 1004);
    server
        .as_user(&dan)
        .put(&format!("/memberships/{id}"), json!({"status": "accepted"}))
        .await
        .result();
    admin
        .post(&members, json!({"email": dan.email, "roles": [DNS]}))
        .await
        .expect_error(409, 1004);
    // The owner is a member too.
    admin
        .post(&members, json!({"email": owner.email, "roles": [DNS]}))
        .await
        .expect_error(409, 1004);
    let removed = admin.delete(&format!("{members}/{id}")).await;
    assert_eq!(removed.result(), &json!({"id": id}));
    admin
        .get(&format!("{members}/{id}"))
        .await
        .expect_error(404, 1003);
    server
        .as_user(&dan)
        .get(&format!("/memberships/{id}"))
        .await
        .expect_error(404, 1003);
    server.invite(&owner, &account, &dan.email, &[DNS]).await;
}

#[tokio::test]
async fn an_inviter_may_add_a_member_directly_as_accepted() {
    let (server, owner, account) = setup().await;
    let eve = server.user("eve@example.com").await;
    let members = format!("/accounts/{account}/members");
    let direct = |email: &str| json!({"email": email, "roles": [ADMIN_RO], "status": "accepted"});
    // Not on a standard account: Direct Add would make anyone a member without consent.
    let r = server
        .as_user(&owner)
        .post(&members, direct(&eve.email))
        .await;
    r.expect_error(400, 1002);
    assert!(r.error_message().contains("enterprise"), "{}", r.body);
    assert_eq!(
        server.as_user(&owner).get(&members).await.body["result_info"]["total_count"],
        1,
        "nothing was written"
    );
    server
        .as_user(&eve)
        .get(&members)
        .await
        .expect_error(404, 1003);
    // On an enterprise account, for a user who exists.
    server.make_enterprise(&account).await;
    server
        .as_user(&owner)
        .post(&members, direct("nobody@example.com"))
        .await
        .expect_error(400, 1002);
    let r = server
        .as_user(&owner)
        .post(&members, direct(&eve.email))
        .await;
    assert_eq!(r.result()["status"], "accepted");
    server.as_user(&eve).get(&members).await.result();
    let mine = server.as_user(&eve).get("/memberships").await;
    assert_eq!(
        mine.result()[0]["api_access_enabled"],
        true,
        "enterprise accounts enable API access"
    );
}

#[tokio::test]
async fn two_factor_enforcement_blocks_accepting_without_it() {
    let (server, owner, account) = setup().await;
    server
        .as_user(&owner)
        .put(
            &format!("/accounts/{account}"),
            json!({"name": "Lifecycle", "settings": {"enforce_twofactor": true}}),
        )
        .await
        .result();
    let no2fa = server
        .user_with("no2fa@example.com", None, None, false)
        .await;
    let id = server.invite(&owner, &account, &no2fa.email, &[DNS]).await;
    let path = format!("/memberships/{id}");
    let r = server
        .as_user(&no2fa)
        .put(&path, json!({"status": "accepted"}))
        .await;
    r.expect_error(403, 1006);
    assert!(r.error_message().contains("two-factor"));
    assert_eq!(
        server.as_user(&no2fa).get(&path).await.result()["status"],
        "pending"
    );
    // Rejecting needs no second factor.
    server
        .as_user(&no2fa)
        .put(&path, json!({"status": "rejected"}))
        .await
        .result();
    // Nor can an admin add such a user directly as accepted (where Direct Add exists).
    server.make_enterprise(&account).await;
    server
        .as_user(&owner)
        .post(
            &format!("/accounts/{account}/members"),
            json!({"email": no2fa.email, "roles": [DNS], "status": "accepted"}),
        )
        .await
        .expect_error(403, 1006);
    // A user with two-factor auth joins fine.
    let with2fa = server.user("with2fa@example.com").await;
    server.add_member(&owner, &account, &with2fa, &[DNS]).await;
}

#[tokio::test]
async fn a_user_may_leave_and_the_row_is_gone() {
    let (server, owner, account) = setup().await;
    let fay = server.user("fay@example.com").await;
    let id = server.add_member(&owner, &account, &fay, &[DNS]).await;
    let r = server
        .as_user(&fay)
        .delete(&format!("/memberships/{id}"))
        .await;
    assert_eq!(r.result(), &json!({"id": id}));
    server
        .as_user(&fay)
        .get(&format!("/memberships/{id}"))
        .await
        .expect_error(404, 1003);
    server
        .as_user(&fay)
        .get(&format!("/accounts/{account}/members"))
        .await
        .expect_error(404, 1003);
    let left = server
        .as_user(&owner)
        .get(&format!("/accounts/{account}/members"))
        .await;
    assert_eq!(left.body["result_info"]["total_count"], 1);
}

#[tokio::test]
async fn updating_roles_and_switching_to_policies() {
    let (server, owner, account) = setup().await;
    let gus = server.user("gus@example.com").await;
    let id = server.add_member(&owner, &account, &gus, &[DNS]).await;
    let admin = server.as_user(&owner);
    let path = format!("/accounts/{account}/members/{id}");
    // Role objects, as the SDKs send them on update.
    let r = admin.put(&path, json!({"roles": [{"id": ADMIN_RO}]})).await;
    assert_eq!(r.result()["roles"][0]["id"], ADMIN_RO);
    let mine = server
        .as_user(&gus)
        .get(&format!("/memberships/{id}"))
        .await;
    assert_eq!(mine.result()["roles"], json!(["Administrator Read Only"]));

    let group_id = server
        .whole_account_group(&owner, &account, Some("whole account"))
        .await;
    let settings_write = "bcc19b668966402dadd900f2b4243d2e";
    let r = admin
        .put(&path, json!({"policies": [{"access": "allow", "permission_groups": [{"id": settings_write}], "resource_groups": [{"id": group_id}]}]}))
        .await;
    let member = r.result();
    assert_eq!(member["roles"], json!([]));
    assert_eq!(
        member["policies"][0]["permission_groups"][0]["name"],
        "Account Settings Write"
    );
    assert_eq!(
        member["policies"][0]["resource_groups"][0]["id"],
        group_id.as_str()
    );
    // The policy grants organization write on this account: Gus may now invite, giving
    // what he holds and no more.
    let members = format!("/accounts/{account}/members");
    server
        .as_user(&gus)
        .post(
            &members,
            json!({"email": "hal@example.com", "roles": [DNS]}),
        )
        .await
        .expect_error(403, 9109);
    server
        .as_user(&gus)
        .post(&members, json!({"email": "hal@example.com", "policies": [{"access": "allow",
            "permission_groups": [{"id": settings_write}], "resource_groups": [{"id": group_id}]}]}))
        .await
        .result();
    let mine = server
        .as_user(&gus)
        .get(&format!("/memberships/{id}"))
        .await;
    assert_eq!(
        mine.result()["permissions"]["organization"],
        json!({"read": true, "write": true})
    );
    // Reads of role-only memberships skip the account's own groups; a policy needs them,
    // in the list as in the single read.
    let listed = server.as_user(&gus).get("/memberships").await;
    let listed = listed.result().as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        listed[0]["permissions"]["organization"],
        json!({"read": true, "write": true})
    );
    assert_eq!(
        listed[0]["policies"][0]["resource_groups"][0]["name"],
        "whole account"
    );
    // A group in use by a policy cannot be deleted.
    admin
        .delete(&format!(
            "/accounts/{account}/iam/resource_groups/{group_id}"
        ))
        .await
        .expect_error(409, 1008);
}

#[tokio::test]
async fn deny_policies_override_allows() {
    let (server, owner, account) = setup().await;
    server.make_enterprise(&account).await;
    let admin = server.as_user(&owner);
    let group_id = server.whole_account_group(&owner, &account, None).await;
    let (read, write) = (
        "15b972a8f4cb43e78efbafb322f7dee5",
        "bcc19b668966402dadd900f2b4243d2e",
    );
    // (allowed, denied, may read, may write)
    let cases = [
        (read, read, false, false),
        (write, write, true, false),
        (read, write, true, false),
        (write, read, false, false),
    ];
    for (n, (allowed, denied, may_read, may_write)) in cases.into_iter().enumerate() {
        let who = server.user(&format!("policy{n}@example.com")).await;
        admin
            .post(
                &format!("/accounts/{account}/members"),
                json!({"email": who.email, "status": "accepted", "policies": [
                    {"access": "allow", "permission_groups": [{"id": allowed}], "resource_groups": [{"id": group_id}]},
                    {"access": "deny", "permission_groups": [{"id": denied}], "resource_groups": [{"id": group_id}]},
                ]}),
            )
            .await
            .result();
        let client = server.as_user(&who);
        let listed = client.get(&format!("/accounts/{account}/members")).await;
        assert_eq!(listed.status == 200, may_read, "case {n}: {}", listed.body);
        let invited = client
            .post(
                &format!("/accounts/{account}/members"),
                json!({"email": format!("invitee{n}@example.com"), "roles": [DNS]}),
            )
            .await;
        assert_eq!(
            invited.status == 200,
            may_write,
            "case {n}: {}",
            invited.body
        );
        if !may_write {
            invited.expect_error(403, 9109);
        }
    }
}

#[tokio::test]
async fn creating_an_account_makes_the_caller_super_administrator() {
    let server = TestServer::start().await;
    let kim = server.user("kim@example.com").await;
    // An account's type is the operator's: enterprise would unlock Direct Add.
    server
        .as_user(&kim)
        .post("/accounts", json!({"name": "Kim's", "type": "enterprise"}))
        .await
        .expect_error(400, 1002);
    assert_eq!(
        server.as_user(&kim).get("/accounts").await.result(),
        &json!([])
    );
    let r = server
        .as_user(&kim)
        .post("/accounts", json!({"name": "Kim's", "type": "standard"}))
        .await;
    let account = r.result();
    assert_eq!(account["type"], "standard");
    let id = account["id"].as_str().unwrap();
    let members = server
        .as_user(&kim)
        .get(&format!("/accounts/{id}/members"))
        .await;
    let me = &members.result()[0];
    assert_eq!(me["status"], "accepted");
    assert_eq!(me["roles"][0]["id"], SUPER_ADMIN);
    let memberships = server.as_user(&kim).get("/memberships").await;
    assert_eq!(
        memberships.result()[0]["api_access_enabled"],
        Value::Null,
        "standard accounts leave API access unset"
    );
    let listed = server.as_user(&kim).get("/accounts").await;
    assert_eq!(listed.result()[0]["id"], id);
}

#[tokio::test]
async fn account_settings_update() {
    let (server, owner, account) = setup().await;
    let r = server
        .as_user(&owner)
        .put(
            &format!("/accounts/{account}"),
            json!({"id": account, "name": "Renamed", "type": "standard", "settings": {"abuse_contact_email": "abuse@example.com", "default_nameservers": "custom.account"}}),
        )
        .await;
    let a = r.result();
    assert_eq!(a["name"], "Renamed");
    assert_eq!(a["settings"]["abuse_contact_email"], "abuse@example.com");
    assert_eq!(a["settings"]["default_nameservers"], "custom.account");
    let again = server
        .as_user(&owner)
        .get(&format!("/accounts/{account}"))
        .await;
    assert_eq!(again.result()["name"], "Renamed");
}

#[tokio::test]
async fn user_profile_edit() {
    let server = TestServer::start().await;
    let me = server.user("me@example.com").await;
    let client = server.as_user(&me);
    let r = client
        .patch(
            "/user",
            json!({"first_name": "Zoë", "country": "US", "telephone": "+1 555 0100"}),
        )
        .await;
    assert_eq!(r.result()["first_name"], "Zoë");
    let r = client.patch("/user", json!({"country": null})).await;
    assert!(r.result()["country"].is_null());
    let user = client.get("/user").await;
    assert_eq!(user.result()["first_name"], "Zoë");
    assert_eq!(user.result()["last_name"], "User");
    assert_eq!(user.result()["email"], "me@example.com");
}

/// Two edits of different profile fields at the same moment both stand.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_profile_edits_do_not_lose_each_other() {
    let server = TestServer::start().await;
    let me = server.user("racer@example.com").await;
    let (a, b) = (server.as_user(&me), server.as_user(&me));
    for round in 0..15 {
        let (first, zip) = (format!("First{round}"), format!("{round:05}"));
        let (ra, rb) = tokio::join!(
            a.patch("/user", json!({"first_name": first})),
            b.patch("/user", json!({"zipcode": zip})),
        );
        ra.result();
        rb.result();
        let user = a.get("/user").await;
        assert_eq!(user.result()["first_name"], first.as_str(), "round {round}");
        assert_eq!(user.result()["zipcode"], zip.as_str(), "round {round}");
    }
}
