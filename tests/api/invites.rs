//! `/user/invites` (the caller's invitations, with their expiry) and `DELETE
//! /accounts/{id}` (`../shared/DESIGN.md`, "User invites and invitation expiry" and
//! "Accounts").

use serde_json::json;

use crate::helpers::*;

const ADMINISTRATOR: &str = "93c0b5f28f784adfabec6701f4e37655";
const DNS: &str = "87e7860bc4c445faba075646dac38cca";

fn date(text: &str) -> time::OffsetDateTime {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// An invitation is listed as an invite (Cloudflare's shape, under the membership's id),
/// expires 7 days after it was made, and answered through `PATCH` exactly as through
/// `PUT /memberships/{id}`.
#[tokio::test]
async fn an_invite_is_listed_shown_and_answered_like_the_membership() {
    let server = TestServer::start().await;
    let owner = server.user("owner@example.com").await;
    let alice = server.user("alice@example.com").await;
    let account = server.account(&owner, "Invites").await;
    let id = server.invite(&owner, &account, &alice.email, &[DNS]).await;
    let me = server.as_user(&alice).get("/user").await.result()["id"].clone();

    let listed = server.as_user(&alice).get("/user/invites").await;
    let invites = listed.result().as_array().unwrap();
    assert_eq!(invites.len(), 1, "{}", listed.body);
    let invite = &invites[0];
    assert_eq!(invite["id"], id.as_str());
    assert_eq!(invite["organization_id"], account.as_str());
    assert_eq!(invite["organization_name"], "Invites");
    assert_eq!(invite["invited_member_id"], me);
    assert_eq!(invite["invited_member_email"], "alice@example.com");
    assert_eq!(invite["roles"], json!(["DNS"]));
    assert_eq!(invite["status"], "pending");
    assert_eq!(invite["organization_is_enforcing_twofactor"], false);
    let (on, expires) = (
        date(invite["invited_on"].as_str().unwrap()),
        date(invite["expires_on"].as_str().unwrap()),
    );
    assert_eq!(expires - on, time::Duration::days(7));
    let shown = server
        .as_user(&alice)
        .get(&format!("/user/invites/{id}"))
        .await;
    assert_eq!(shown.result(), invite);
    // Nobody else's: the owner's invites are empty, and alice's invite is not theirs.
    assert_eq!(
        server.as_user(&owner).get("/user/invites").await.result(),
        &json!([])
    );
    server
        .as_user(&owner)
        .get(&format!("/user/invites/{id}"))
        .await
        .expect_error(404, 1003);
    server
        .as_user(&alice)
        .patch(&format!("/user/invites/{id}"), json!({"status": "maybe"}))
        .await
        .expect_error(400, 1002);

    let accepted = server
        .as_user(&alice)
        .patch(
            &format!("/user/invites/{id}"),
            json!({"status": "accepted"}),
        )
        .await;
    assert_eq!(accepted.result()["status"], "accepted");
    assert!(accepted.result().get("expires_on").is_none());
    let membership = server
        .as_user(&alice)
        .get(&format!("/memberships/{id}"))
        .await;
    assert_eq!(membership.result()["status"], "accepted");
    assert_eq!(
        server.as_user(&alice).get("/user/invites").await.result(),
        &json!([])
    );
    // Too late to reject, as through `/memberships`.
    server
        .as_user(&alice)
        .patch(
            &format!("/user/invites/{id}"),
            json!({"status": "rejected"}),
        )
        .await
        .expect_error(409, 1005);
}

/// Once its time has passed (the emulator's clock moved 8 days), an invitation shows as
/// expired and can be rejected, not accepted, through either path.
#[tokio::test]
async fn an_expired_invitation_can_only_be_rejected() {
    let server = TestServer::emulator().await;
    let alice = server.user("alice@example.com").await;
    let id = server
        .invite(&Creds::demo(), DEMO_ACCOUNT, &alice.email, &[DNS])
        .await;
    server
        .raw(&[])
        .post("/_roster/clock", json!({"advance_seconds": 8 * 86_400}))
        .await
        .result();
    let listed = server.as_user(&alice).get("/user/invites").await;
    assert_eq!(listed.result()[0]["status"], "expired");
    let refused = server
        .as_user(&alice)
        .patch(
            &format!("/user/invites/{id}"),
            json!({"status": "accepted"}),
        )
        .await;
    refused.expect_error(409, 1014);
    assert!(
        refused.error_message().contains("expired"),
        "{}",
        refused.body
    );
    server
        .as_user(&alice)
        .put(&format!("/memberships/{id}"), json!({"status": "accepted"}))
        .await
        .expect_error(409, 1014);
    let rejected = server
        .as_user(&alice)
        .patch(
            &format!("/user/invites/{id}"),
            json!({"status": "rejected"}),
        )
        .await;
    assert_eq!(rejected.result()["status"], "rejected");
    // The account may invite again; the new invitation runs from the clock's now.
    let again = server
        .invite(&Creds::demo(), DEMO_ACCOUNT, &alice.email, &[DNS])
        .await;
    server
        .as_user(&alice)
        .patch(
            &format!("/user/invites/{again}"),
            json!({"status": "accepted"}),
        )
        .await
        .result();
}

/// Deleting an account takes everything in it at once: its members' memberships, pending
/// invitations and resource groups; only its Super Administrator may.
#[tokio::test]
async fn deleting_an_account_removes_everything_in_it() {
    let server = TestServer::start().await;
    let owner = server.user("owner@example.com").await;
    let admin = server.user("admin@example.com").await;
    let member = server.user("member@example.com").await;
    let invitee = server.user("invitee@example.com").await;
    let outsider = server.user("outsider@example.com").await;
    let account = server.account(&owner, "Doomed").await;
    let kept = server.account(&owner, "Kept").await;
    server
        .add_member(&owner, &account, &admin, &[ADMINISTRATOR])
        .await;
    server.add_member(&owner, &account, &member, &[DNS]).await;
    server.add_member(&owner, &kept, &member, &[DNS]).await;
    server
        .invite(&owner, &account, &invitee.email, &[DNS])
        .await;
    server
        .whole_account_group(&owner, &account, Some("g"))
        .await;
    let path = format!("/accounts/{account}");

    // An Administrator manages the account but may not delete it; others see less.
    server
        .as_user(&admin)
        .delete(&path)
        .await
        .expect_error(403, 9109);
    server
        .as_user(&member)
        .delete(&path)
        .await
        .expect_error(403, 9109);
    server
        .as_user(&outsider)
        .delete(&path)
        .await
        .expect_error(404, 1003);
    let unrelated = server.token(&owner, &["Billing Read"]).await;
    server
        .with_token(&unrelated)
        .delete(&path)
        .await
        .expect_error(403, 9109);

    let deleted = server.as_user(&owner).delete(&path).await;
    assert_eq!(deleted.result(), &json!({"id": account}));
    server
        .as_user(&owner)
        .get(&path)
        .await
        .expect_error(404, 1003);
    server
        .as_user(&owner)
        .delete(&path)
        .await
        .expect_error(404, 1003);
    for who in [&owner, &admin, &member, &invitee] {
        let memberships = server.as_user(who).get("/memberships").await;
        let names: Vec<&str> = memberships
            .result()
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["account"]["name"].as_str().unwrap())
            .collect();
        assert!(!names.contains(&"Doomed"), "{}: {names:?}", who.email);
    }
    assert_eq!(
        server.as_user(&invitee).get("/user/invites").await.result(),
        &json!([])
    );
    let export = server.store.export().await.unwrap();
    assert!(export.accounts.iter().all(|a| a.id != account));
    assert!(export.memberships.iter().all(|m| m.account_id != account));
    assert!(
        export
            .resource_groups
            .iter()
            .all(|g| g.account_id != account)
    );
    // The other account is untouched.
    let other = server
        .as_user(&member)
        .get(&format!("/accounts/{kept}"))
        .await;
    assert_eq!(other.result()["name"], "Kept");
}
