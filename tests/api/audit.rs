//! The audit log (`../shared/DESIGN.md`, "Audit log"): every change is in it, with who made
//! it, exactly when it committed and never a secret; refused changes leave nothing; v1
//! pages, v2 cursors and the filters of both; who may read it.

use roster::auth::hash_secret;
use serde_json::{Value, json};

use crate::helpers::*;

const DNS: &str = "87e7860bc4c445faba075646dac38cca";
const ADMIN_RO: &str = "25a6523fbf0a4cdaa8af77b778c7dd19";
const SETTINGS_READ: &str = "15b972a8f4cb43e78efbafb322f7dee5";

fn v1(account: &str, query: &str) -> String {
    format!("/accounts/{account}/audit_logs?{query}")
}

fn v2(account: &str, query: &str) -> String {
    format!("/accounts/{account}/logs/audit?since=2000-01-01&before=2999-01-01&{query}")
}

fn entries(r: &Resp) -> Vec<Value> {
    r.result().as_array().unwrap().clone()
}

/// (action, resource type) of each entry, newest first.
fn kinds(list: &[Value]) -> Vec<(String, String)> {
    list.iter()
        .map(|e| {
            (
                e["action"]["type"].as_str().unwrap().to_string(),
                e["resource"]["type"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn every_change_is_logged_with_its_actor_and_no_secret() {
    let server = TestServer::start().await;
    let owner = server.user("owner@example.com").await;
    let owner_id = server.as_user(&owner).get("/user").await.result()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let admin = server.as_user(&owner);
    let account = server.account(&owner, "Logged").await;
    let member = server
        .invite(&owner, &account, "bob@example.com", &[DNS])
        .await;
    admin
        .put(
            &format!("/accounts/{account}/members/{member}"),
            json!({"roles": [ADMIN_RO]}),
        )
        .await
        .result();
    let made = admin
        .post(
            &format!("/accounts/{account}/tokens"),
            json!({"name": "ci", "policies": [{"effect": "allow",
                "permission_groups": [{"id": SETTINGS_READ}],
                "resources": {format!("com.cloudflare.api.account.{account}"): "*"}}]}),
        )
        .await;
    let token_id = made.result()["id"].as_str().unwrap().to_string();
    let secret = made.result()["value"].as_str().unwrap().to_string();
    let rolled = admin
        .put(
            &format!("/accounts/{account}/tokens/{token_id}/value"),
            json!({}),
        )
        .await;
    let rolled = rolled.result().as_str().unwrap().to_string();
    // The account's token changes something too: it is the actor then.
    server
        .with_token(&rolled)
        .get(&format!("/accounts/{account}"))
        .await
        .result();
    admin
        .patch("/user", json!({"first_name": "Olive"}))
        .await
        .result();

    let log = admin.get(&v1(&account, "per_page=50")).await;
    let list = entries(&log);
    let k = |a: &str, t: &str| (a.to_string(), t.to_string());
    assert_eq!(
        kinds(&list),
        [
            k("update", "account.token"),
            k("create", "account.token"),
            k("update", "account.member"),
            k("create", "account.member"),
            k("create", "account.member"),
            k("create", "account"),
        ],
        "newest first, and the profile change is not the account's"
    );
    let invite = &list[3];
    assert_eq!(invite["actor"]["email"], "owner@example.com");
    assert_eq!(invite["actor"]["id"], owner_id.as_str());
    assert_eq!(invite["actor"]["ip"], "127.0.0.1");
    assert_eq!(invite["resource"]["id"], member.as_str());
    let new: Value = serde_json::from_str(invite["newValue"].as_str().unwrap()).unwrap();
    assert_eq!(new["email"], "bob@example.com");
    let update = &list[2];
    let old: Value = serde_json::from_str(update["oldValue"].as_str().unwrap()).unwrap();
    assert_eq!(old["roles"], json!([DNS]));
    assert!(
        update["metadata"]["ray_id"]
            .as_str()
            .unwrap()
            .ends_with("-RST")
    );

    // No secret anywhere: keys, token values, their digests, activation codes.
    let code = server
        .store
        .export()
        .await
        .unwrap()
        .memberships
        .iter()
        .find(|m| m.id == member)
        .unwrap()
        .code
        .clone();
    let user_log = admin.get("/user/audit_logs?per_page=100").await;
    let v2_log = admin.get(&v2(&account, "limit=100")).await;
    for body in [&log.body, &user_log.body, &v2_log.body] {
        let text = body.to_string();
        for s in [&owner.key, &secret, &rolled, &code] {
            assert!(!text.contains(s.as_str()), "a secret in {text}");
            assert!(!text.contains(&hash_secret(s)), "a digest in {text}");
        }
    }

    // The user's own log: their changes everywhere, their profile included.
    let mine = entries(&user_log);
    assert_eq!(
        kinds(&mine)[0],
        k("update", "user"),
        "the profile change is the newest of the user's"
    );
    assert!(mine.iter().all(|e| e["actor"]["id"] == owner_id.as_str()));
    assert_eq!(mine.len(), 7);
    let value =
        |field: &str| -> Value { serde_json::from_str(mine[0][field].as_str().unwrap()).unwrap() };
    assert_ne!(value("oldValue")["first_name"], "Olive");
    assert_eq!(value("newValue")["first_name"], "Olive");

    // v2 names the actor's credential.
    let v2_list = entries(&v2_log);
    assert_eq!(v2_list[0]["actor"]["context"], "api_key");
    assert_eq!(v2_list[0]["raw"]["method"], "PUT");
    assert_eq!(
        v2_list[0]["resource"]["request"]["name"], "ci",
        "the value before the change"
    );
}

#[tokio::test]
async fn a_refused_change_leaves_no_entry() {
    let server = TestServer::start().await;
    let owner = server.user("owner@example.com").await;
    let reader = server.user("reader@example.com").await;
    let admin = server.as_user(&owner);
    let account = server.account(&owner, "Refusals").await;
    let own = server
        .add_member(&owner, &account, &reader, &[ADMIN_RO])
        .await;
    let count = || async { entries(&admin.get(&v1(&account, "per_page=1000")).await).len() };
    let before = count().await;
    let members = format!("/accounts/{account}/members");
    // A duplicate, a bad body, the last administrator, a member without the right.
    admin
        .post(
            &members,
            json!({"email": "reader@example.com", "roles": [DNS]}),
        )
        .await
        .expect_error(409, 1004);
    admin
        .post(
            &members,
            json!({"email": "x@example.com", "roles": ["nope"]}),
        )
        .await
        .expect_error(400, 1002);
    let mine = admin.get("/memberships").await;
    let owner_membership = entries(&mine)
        .iter()
        .find(|m| m["account"]["id"] == account.as_str())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    admin
        .delete(&format!("/memberships/{owner_membership}"))
        .await
        .expect_error(409, 1007);
    server
        .as_user(&reader)
        .post(&members, json!({"email": "y@example.com", "roles": [DNS]}))
        .await
        .expect_error(403, 9109);
    // A write the database refuses is rolled back with its entry: a second user with a
    // taken email, as a fixture or the CLI would try.
    let taken = roster::domain::User {
        id: roster::domain::Id::generate(),
        email: roster::domain::Email::parse("reader@example.com", "email").unwrap(),
        first_name: None,
        last_name: None,
        telephone: None,
        country: None,
        zipcode: None,
        two_factor_authentication_enabled: false,
        created_on: roster::domain::types::now(),
        modified_on: roster::domain::types::now(),
    };
    assert!(
        server
            .store
            .insert_user(&taken, &hash_secret("k"))
            .await
            .is_err()
    );
    assert_eq!(count().await, before, "nothing refused is logged");
    let export = server.store.export().await.unwrap();
    assert!(
        !export
            .audit_logs
            .iter()
            .any(|e| e.resource_id == taken.id.as_str()),
        "the refused user is in no log"
    );
    // And one that goes through is.
    server
        .as_user(&reader)
        .delete(&format!("/memberships/{own}"))
        .await
        .result();
    assert_eq!(count().await, before + 1);
}

#[tokio::test]
async fn v2_pages_by_cursor_and_both_versions_filter() {
    let server = TestServer::start().await;
    let owner = server.user("owner@example.com").await;
    let admin = server.as_user(&owner);
    let account = server.account(&owner, "Pages").await;
    for i in 0..5 {
        server
            .invite(&owner, &account, &format!("p{i}@example.com"), &[DNS])
            .await;
    }
    // 7 entries: the account, its founder, five invitations.
    let mut seen = Vec::new();
    let mut next = String::new();
    loop {
        let query = if next.is_empty() {
            "limit=3".to_string()
        } else {
            format!("limit=3&cursor={next}")
        };
        let page = admin.get(&v2(&account, &query)).await;
        seen.extend(
            entries(&page)
                .iter()
                .map(|e| e["id"].as_str().unwrap().to_string()),
        );
        match page.body["result_info"]["cursors"]["after"].as_str() {
            Some(after) => next = after.to_string(),
            None => break,
        }
        assert!(seen.len() <= 7, "the cursor ends");
    }
    let all = entries(&admin.get(&v2(&account, "limit=100")).await);
    let ids: Vec<String> = all
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        seen, ids,
        "the pages are the whole log, in order, once each"
    );
    assert_eq!(ids.len(), 7);
    let times: Vec<&str> = all
        .iter()
        .map(|e| e["action"]["time"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");
    let oldest = entries(&admin.get(&v2(&account, "limit=1&direction=asc")).await);
    assert_eq!(oldest[0]["resource"]["type"], "account");

    // Filters.
    let created = entries(&admin.get(&v2(&account, "resource_type=account")).await);
    assert_eq!(created.len(), 1);
    let by_email = entries(
        &admin
            .get(&v1(
                &account,
                "actor.email=OWNER@example.com&action.type=create",
            ))
            .await,
    );
    assert_eq!(by_email.len(), 7);
    let nobody = entries(&admin.get(&v1(&account, "actor.email=x@example.com")).await);
    assert!(nobody.is_empty());
    let one = entries(&admin.get(&v1(&account, &format!("id={}", ids[2]))).await);
    assert_eq!(one.len(), 1);
    let page2 = entries(&admin.get(&v1(&account, "per_page=3&page=2")).await);
    let page2: Vec<&str> = page2.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(
        page2,
        ids[3..6].iter().map(String::as_str).collect::<Vec<_>>()
    );
    let later = entries(&admin.get(&v1(&account, "since=2999-01-01")).await);
    assert!(later.is_empty());
    let by_ip = entries(&admin.get(&v1(&account, "actor.ip=127.0.0.1")).await);
    assert_eq!(by_ip.len(), 7);

    // Bad input names the parameter.
    for (path, field) in [
        (
            format!("/accounts/{account}/logs/audit?before=2999-01-01"),
            "since",
        ),
        (v2(&account, "cursor=abc"), "cursor"),
        (v2(&account, "limit=1001"), "limit"),
        (v1(&account, "per_page=0"), "per_page"),
        (v1(&account, "since=soon"), "since"),
        (v1(&account, "actor.ip=10.0.0.0/8"), "actor.ip"),
        (v1(&account, "direction=up"), "direction"),
        (v1(&account, "id=xyz"), "id"),
    ] {
        let r = admin.get(&path).await;
        r.expect_error(400, 1002);
        assert!(r.error_message().contains(field), "{path}: {}", r.body);
    }
}

#[tokio::test]
async fn the_log_is_read_with_organization_read_and_keeps_a_deleted_accounts_end() {
    let server = TestServer::start().await;
    let owner = server.user("owner@example.com").await;
    let account = server.account(&owner, "Readers").await;
    let zones = server.user("zones@example.com").await;
    let everything = server
        .whole_account_group(&owner, &account, Some("all"))
        .await;
    let invited = server
        .as_user(&owner)
        .post(
            &format!("/accounts/{account}/members"),
            json!({"email": zones.email, "policies": [{"access": "allow",
                "permission_groups": [{"id": "c8fed203ed3043cba015a93ad1616f1f"}],
                "resource_groups": [{"id": everything}]}]}),
        )
        .await;
    let invited = invited.result()["id"].as_str().unwrap().to_string();
    server
        .as_user(&zones)
        .put(
            &format!("/memberships/{invited}"),
            json!({"status": "accepted"}),
        )
        .await
        .result();
    server
        .as_user(&zones)
        .get(&v1(&account, ""))
        .await
        .expect_error(403, 9109);
    let stranger = server.user("stranger@example.com").await;
    server
        .as_user(&stranger)
        .get(&v2(&account, ""))
        .await
        .expect_error(404, 1003);
    // The invitee's acceptance is theirs, in their own log.
    let theirs = entries(&server.as_user(&zones).get("/user/audit_logs").await);
    assert_eq!(kinds(&theirs)[0].0, "update");
    assert_eq!(theirs[0]["resource"]["id"], invited.as_str());

    // Deleting the account: the account's log goes with it, the deleter's keeps the end.
    server
        .as_user(&owner)
        .delete(&format!("/accounts/{account}"))
        .await
        .result();
    let mine = entries(&server.as_user(&owner).get("/user/audit_logs").await);
    assert_eq!(
        (
            mine[0]["action"]["type"].as_str().unwrap(),
            mine[0]["resource"]["type"].as_str().unwrap(),
            mine[0]["resource"]["id"].as_str().unwrap()
        ),
        ("delete", "account", account.as_str())
    );
    server
        .as_user(&owner)
        .get(&v1(&account, ""))
        .await
        .expect_error(404, 1003);
}

#[tokio::test]
async fn the_demo_has_audit_history() {
    let server = TestServer::emulator().await;
    let demo = server.as_user(&Creds::demo());
    let log = entries(&demo.get(&v1(DEMO_ACCOUNT, "per_page=100")).await);
    assert!(
        log.len() > 10,
        "the demo's making is its history: {}",
        log.len()
    );
    assert!(
        log.iter()
            .all(|e| e["actor"]["type"] == "admin" && e["interface"] == "CLI")
    );
    assert_eq!(
        kinds(&log).last().unwrap(),
        &("create".to_string(), "account".to_string())
    );
    // The emulator's reset puts the history back as the demo started.
    server
        .invite(&Creds::demo(), DEMO_ACCOUNT, "later@example.com", &[DNS])
        .await;
    let grown = entries(&demo.get(&v1(DEMO_ACCOUNT, "per_page=100")).await);
    assert_eq!(grown.len(), log.len() + 1);
    let reset = server.raw(&[]).post("/_roster/reset", json!({})).await;
    assert_eq!(reset.status, 200, "{}", reset.body);
    let again = entries(&demo.get(&v1(DEMO_ACCOUNT, "per_page=100")).await);
    assert_eq!(again, log);
}
