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
    // Made outside any request: no answer, no credential.
    for query in [
        "raw_status_code.not=200",
        "actor_type=system",
        "actor_context.not=api_key&actor_context.not=api_token",
        "actor_email.not=user@example.com",
    ] {
        let v2_log = entries(
            &demo
                .get(&v2(DEMO_ACCOUNT, &format!("limit=1000&{query}")))
                .await,
        );
        assert_eq!(v2_log.len(), log.len(), "{query}");
    }
    for query in [
        "raw_status_code=200",
        "actor_context=api_key",
        "actor_type=user",
    ] {
        let v2_log = entries(&demo.get(&v2(DEMO_ACCOUNT, query)).await);
        assert!(v2_log.is_empty(), "{query}");
    }
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

fn ids_of(list: &[Value]) -> Vec<String> {
    list.iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

/// The hyphenated form of a Roster entry id (Cloudflare writes its entry ids so).
fn hyphenated(id: &str) -> String {
    uuid::Uuid::try_parse(id).unwrap().hyphenated().to_string()
}

/// Cloudflare's audit entry ids are UUIDs: one written with hyphens names the entry Roster
/// keeps in hex, and an id that names no entry (a UUID or any other text: both versions
/// type `id` as a string) is an empty list, not a 400.
#[tokio::test]
async fn an_entry_id_is_taken_as_a_uuid_and_an_unknown_one_finds_nothing() {
    let server = TestServer::start().await;
    let owner = server.user("owner@example.com").await;
    let admin = server.as_user(&owner);
    let account = server.account(&owner, "Ids").await;
    server
        .invite(&owner, &account, "bob@example.com", &[DNS])
        .await;
    let all = ids_of(&entries(&admin.get(&v1(&account, "")).await));
    assert_eq!(all.len(), 3);
    for query in [
        format!("id={}", all[1]),
        format!("id={}", hyphenated(&all[1])),
        format!("id={}", hyphenated(&all[1]).to_uppercase()),
    ] {
        assert_eq!(
            ids_of(&entries(&admin.get(&v1(&account, &query)).await)),
            [all[1].clone()],
            "v1 {query}"
        );
        assert_eq!(
            ids_of(&entries(&admin.get(&v2(&account, &query)).await)),
            [all[1].clone()],
            "v2 {query}"
        );
    }
    for unknown in [
        "f174be97-19b1-40d6-954d-70cd5fbd52db",
        "00000000000000000000000000000000",
        "xyz",
    ] {
        let r = admin.get(&v1(&account, &format!("id={unknown}"))).await;
        assert_eq!(r.result(), &json!([]), "{unknown}");
        assert_eq!(r.body["result_info"]["count"], 0);
        let r = admin.get(&v2(&account, &format!("id={unknown}"))).await;
        assert_eq!(r.result(), &json!([]), "{unknown}");
    }
    let r = admin
        .get(&format!(
            "/user/audit_logs?id={}",
            hyphenated(all.last().unwrap())
        ))
        .await;
    assert_eq!(entries(&r).len(), 1, "the user's own log too");
}

/// An account whose log holds each kind of actor: the owner with their key (the account,
/// an invitation, a token), the account's own token (a rename of the account), the owner
/// with a user token (a second invitation, then its removal), and the invitee accepting.
struct Varied {
    server: TestServer,
    owner: Creds,
    account: String,
    account_token_id: String,
    user_token_name: String,
}

impl Varied {
    async fn new() -> Varied {
        let server = TestServer::start().await;
        let owner = server.user("owner@example.com").await;
        let bob = server.user("bob@example.com").await;
        let admin = server.as_user(&owner);
        let account = server.account(&owner, "Varied").await;
        let bob_member = server.invite(&owner, &account, &bob.email, &[DNS]).await;
        let made = admin
            .post(
                &format!("/accounts/{account}/tokens"),
                json!({"name": "robot", "policies": [{"effect": "allow",
                    "permission_groups": [{"id": SETTINGS_READ}, {"id": "bcc19b668966402dadd900f2b4243d2e"}],
                    "resources": {format!("com.cloudflare.api.account.{account}"): "*"}}]}),
            )
            .await;
        let account_token_id = made.result()["id"].as_str().unwrap().to_string();
        let robot = made.result()["value"].as_str().unwrap().to_string();
        server
            .with_token(&robot)
            .put(
                &format!("/accounts/{account}"),
                json!({"name": "Varied Co"}),
            )
            .await
            .result();
        let token = server
            .token(
                &owner,
                &["Account Settings Write", "DNS Write", "Zone Read"],
            )
            .await;
        let as_token = server.with_token(&token);
        let carol = as_token
            .post(
                &format!("/accounts/{account}/members"),
                json!({"email": "carol@example.com", "roles": [DNS]}),
            )
            .await;
        let carol = carol.result()["id"].as_str().unwrap().to_string();
        as_token
            .delete(&format!("/accounts/{account}/members/{carol}"))
            .await
            .result();
        server
            .as_user(&bob)
            .put(
                &format!("/memberships/{bob_member}"),
                json!({"status": "accepted"}),
            )
            .await
            .result();
        Varied {
            server,
            owner,
            account,
            account_token_id,
            user_token_name: "test".into(),
        }
    }

    /// (action, resource type, actor email) of each entry v2 answers `query` with, oldest
    /// first.
    async fn read(&self, query: &str) -> Vec<(String, String, String)> {
        let r = self
            .server
            .as_user(&self.owner)
            .get(&v2(&self.account, &format!("direction=asc&{query}")))
            .await;
        entries(&r)
            .iter()
            .map(|e| {
                (
                    e["action"]["type"].as_str().unwrap().to_string(),
                    e["resource"]["type"].as_str().unwrap().to_string(),
                    e["actor"]["email"].as_str().unwrap_or("-").to_string(),
                )
            })
            .collect()
    }
}

fn row(action: &str, resource: &str, email: &str) -> (String, String, String) {
    (action.into(), resource.into(), email.into())
}

/// The v2 log's filters (every one of the SDKs' `AuditListParams`): a repeated parameter
/// matches any of its values, its `.not` form leaves out entries matching any of its own,
/// and an entry without the field (the account's token has no email) is left out by no
/// exclusion. They combine with each other, the window and the cursor.
#[tokio::test]
async fn v2_filters_include_any_of_and_exclude_none_of_their_values() {
    let v = Varied::new().await;
    let everything = v.read("").await;
    let owner = "owner@example.com";
    assert_eq!(
        everything,
        [
            row("create", "account", owner),
            row("create", "account.member", owner),
            row("create", "account.member", owner),
            row("create", "account.token", owner),
            row("update", "account", "-"),
            row("create", "account.member", owner),
            row("delete", "account.member", owner),
            row("update", "account.member", "bob@example.com"),
        ]
    );
    let all = everything.len();
    let count = |query: &'static str| {
        let v = &v;
        async move { v.read(query).await.len() }
    };
    // Exclusions, one value and several; an entry without an email stays.
    assert_eq!(
        v.read("actor_email.not=OWNER@example.com").await,
        [
            row("update", "account", "-"),
            row("update", "account.member", "bob@example.com"),
        ]
    );
    assert_eq!(
        v.read("actor_email.not=owner@example.com&actor_email.not=bob@example.com")
            .await,
        [row("update", "account", "-")]
    );
    assert_eq!(
        v.read("action_type.not=create&action_type.not=update")
            .await,
        [row("delete", "account.member", owner)]
    );
    assert_eq!(count("action_type.not=delete").await, all - 1);
    assert_eq!(count("action_type.not=view").await, all);
    assert_eq!(
        v.read("resource_type.not=account.member&resource_type.not=account")
            .await,
        [row("create", "account.token", owner)]
    );
    // Inclusions: any of the values.
    assert_eq!(
        v.read("resource_type=account&resource_type=account.token")
            .await,
        [
            row("create", "account", owner),
            row("create", "account.token", owner),
            row("update", "account", "-"),
        ]
    );
    assert_eq!(
        count("actor_email=bob@example.com&actor_email=owner@example.com").await,
        all - 1
    );
    // Who acted, and with what.
    assert_eq!(
        v.read("actor_type=account").await,
        [row("update", "account", "-")]
    );
    assert_eq!(count("actor_type.not=account").await, all - 1);
    assert_eq!(
        count("actor_type=system&actor_type=cloudflare_admin").await,
        0
    );
    assert_eq!(count("actor_context=api_token").await, 3);
    assert_eq!(count("actor_context.not=api_token").await, all - 3);
    assert_eq!(count("actor_context=dash").await, 0);
    assert_eq!(
        count("actor_context.not=api_key&actor_type.not=account").await,
        2,
        "the user token's two changes"
    );
    let token = format!("actor_token_id.not={}", v.account_token_id);
    assert_eq!(v.read(&token).await.len(), all - 1);
    let named = format!("actor_token_name={}", v.user_token_name);
    assert_eq!(v.read(&named).await.len(), 2);
    assert_eq!(count("actor_token_name.not=robot").await, all - 1);
    assert_eq!(count("actor_ip_address.not=127.0.0.1").await, 0);
    assert_eq!(count("actor_ip_address=127.0.0.1").await, all);
    // The request that made each change.
    assert_eq!(count("raw_method=PUT").await, 2);
    assert_eq!(count("raw_method=put&raw_method=DELETE").await, 3);
    assert_eq!(count("raw_method.not=post&raw_method.not=PUT").await, 1);
    assert_eq!(count("raw_status_code=200").await, all);
    assert_eq!(count("raw_status_code=404&raw_status_code=409").await, 0);
    assert_eq!(count("raw_status_code.not=200").await, 0);
    assert_eq!(count("raw_status_code.not=500").await, all);
    let listed = v
        .server
        .as_user(&v.owner)
        .get(&v2(&v.account, "direction=asc"))
        .await;
    let first = &entries(&listed)[0];
    assert_eq!(first["raw"]["status_code"], 200);
    let ray = format!(
        "raw_cf_ray_id.not={}",
        first["raw"]["cf_ray_id"].as_str().unwrap()
    );
    assert_eq!(
        v.read(&ray).await.len(),
        all - 2,
        "the account and its founder, made by one request"
    );
    let uri = format!(
        "raw_uri={}",
        url::form_urlencoded::byte_serialize(first["raw"]["uri"].as_str().unwrap().as_bytes())
            .collect::<String>()
    );
    assert_eq!(v.read(&uri).await.len(), 2);
    // Ids, the deprecated `audit_log_id` among them.
    let first_id = first["id"].as_str().unwrap().to_string();
    for query in [
        format!("id.not={first_id}"),
        format!("audit_log_id.not={}", hyphenated(&first_id)),
    ] {
        assert_eq!(v.read(&query).await.len(), all - 1, "{query}");
    }
    let resource = format!(
        "resource_id.not={}",
        first["resource"]["id"].as_str().unwrap()
    );
    assert_eq!(
        v.read(&resource).await.len(),
        all - 2,
        "the account's creation and its rename"
    );
    let actor = format!("actor_id.not={}", first["actor"]["id"].as_str().unwrap());
    assert_eq!(v.read(&actor).await.len(), 2, "the account token and bob");
    // What every entry holds alike: the account, success, its scope, IAM, no zone.
    assert_eq!(count("account_name=varied+co").await, all);
    assert_eq!(
        count("account_name=Other&account_name=Varied+Co").await,
        all
    );
    assert_eq!(count("account_name=Other").await, 0);
    assert_eq!(count("account_name.not=Varied+Co").await, 0);
    assert_eq!(count("account_name.not=Other").await, all);
    assert_eq!(count("action_result=failure").await, 0);
    assert_eq!(count("action_result.not=failure").await, all);
    assert_eq!(count("action_result.not=success").await, 0);
    assert_eq!(count("resource_scope=accounts").await, all);
    assert_eq!(count("resource_scope.not=accounts").await, 0);
    assert_eq!(count("resource_scope=zones&resource_scope=user").await, 0);
    assert_eq!(count("resource_product=IAM").await, all);
    assert_eq!(count("resource_product=Stream").await, 0);
    assert_eq!(count("resource_product.not=iam").await, 0);
    assert_eq!(count("resource_product.not=Stream").await, all);
    assert_eq!(count("product_category=IAM").await, all);
    assert_eq!(
        count("product_category=iam&resource_product=Stream").await,
        all,
        "a category's products and those named, together"
    );
    assert_eq!(count("zone_id=023e105f4ecef8ad9ca31a8372d0c353").await, 0);
    assert_eq!(count("zone_name.not=example.com").await, all);
    assert_eq!(count("zone_id.not=x&zone_name.not=y").await, all);
    // With each other, and page by page.
    let query =
        "actor_email.not=bob@example.com&resource_type=account.member&action_type.not=update";
    assert_eq!(v.read(query).await.len(), 4);
    let client = v.server.as_user(&v.owner);
    let mut seen = 0;
    let mut cursor = String::new();
    loop {
        let r = client
            .get(&v2(&v.account, &format!("{query}&limit=1{cursor}")))
            .await;
        let page = entries(&r);
        seen += page.len();
        match r.body["result_info"]["cursors"]["after"].as_str() {
            Some(after) => cursor = format!("&cursor={after}"),
            None => break,
        }
        assert!(seen <= 4);
    }
    assert_eq!(seen, 4, "the cursor walks what the filters keep");
    // Bad values name the parameter, in either form.
    for (query, field) in [
        ("actor_email.not=nobody", "actor_email.not"),
        ("actor_email=nobody", "actor_email"),
        ("action_type.not=login", "action_type.not"),
        ("actor_type=robot", "actor_type"),
        ("actor_context.not=ssh", "actor_context.not"),
        ("action_result=maybe", "action_result"),
        ("resource_scope.not=planet", "resource_scope.not"),
        ("raw_status_code.not=ok", "raw_status_code.not"),
        ("actor_ip_address.not=10.0.0.0/8", "actor_ip_address.not"),
        ("actor_id.not=me", "actor_id.not"),
        ("product_category=zerotrust", "product_category"),
    ] {
        let r = client.get(&v2(&v.account, query)).await;
        r.expect_error(400, 1002);
        assert!(r.error_message().contains(field), "{query}: {}", r.body);
    }
}

/// `GET .../logs/audit/product_categories` (the SDKs' `productCategories`): the values the
/// v2 `product_category` filter takes, for whoever reads the account's log.
#[tokio::test]
async fn the_product_categories_are_the_ones_the_filter_takes() {
    let server = TestServer::start().await;
    let owner = server.user("owner@example.com").await;
    let account = server.account(&owner, "Categories").await;
    let path = format!("/accounts/{account}/logs/audit/product_categories");
    let r = server.as_user(&owner).get(&path).await;
    let categories = r.result().as_array().unwrap().clone();
    assert!(!categories.is_empty());
    for category in &categories {
        let value = category["value"].as_str().unwrap();
        assert!(category["label"].is_string());
        assert!(!category["products"].as_array().unwrap().is_empty());
        let filtered = server
            .as_user(&owner)
            .get(&v2(&account, &format!("product_category={value}")))
            .await;
        assert_eq!(entries(&filtered).len(), 2, "{value}");
    }
    let stranger = server.user("stranger@example.com").await;
    server
        .as_user(&stranger)
        .get(&path)
        .await
        .expect_error(404, 1003);
}

/// `GET .../logs/audit/{id}/history` (the SDKs' `history`): every entry about the resource
/// the given entry changed, in the window, paged as the log is, with
/// `result_info.history_status`.
#[tokio::test]
async fn an_entrys_history_is_every_change_to_its_resource() {
    let server = TestServer::start().await;
    let owner = server.user("owner@example.com").await;
    let admin = server.as_user(&owner);
    let account = server.account(&owner, "History").await;
    let bob = server
        .invite(&owner, &account, "bob@example.com", &[DNS])
        .await;
    server
        .invite(&owner, &account, "carol@example.com", &[DNS])
        .await;
    admin
        .put(
            &format!("/accounts/{account}/members/{bob}"),
            json!({"roles": [ADMIN_RO]}),
        )
        .await
        .result();
    admin
        .delete(&format!("/accounts/{account}/members/{bob}"))
        .await
        .result();
    let updates = entries(&admin.get(&v2(&account, "action_type=update")).await);
    let update = &updates[0];
    let id = update["id"].as_str().unwrap();
    let at = update["action"]["time"].as_str().unwrap();
    let history = |entry: String, query: String| {
        let admin = admin.clone();
        let account = account.clone();
        async move {
            admin
                .get(&format!(
                    "/accounts/{account}/logs/audit/{entry}/history?since=2000-01-01&before=2999-01-01&{query}"
                ))
                .await
        }
    };
    for entry in [id.to_string(), hyphenated(id)] {
        let r = history(entry, format!("action_time={at}")).await;
        let list = entries(&r);
        assert_eq!(
            kinds(&list),
            [
                ("delete".to_string(), "account.member".to_string()),
                ("update".to_string(), "account.member".to_string()),
                ("create".to_string(), "account.member".to_string()),
            ],
            "bob's, newest first, and not carol's"
        );
        assert!(list.iter().all(|e| e["resource"]["id"] == bob.as_str()));
        assert_eq!(r.body["result_info"]["history_status"], "exact");
        assert_eq!(r.body["result_info"]["count"], 3);
    }
    // Paged, ordered and windowed as the log is.
    let first = history(id.into(), format!("action_time={at}&limit=2&direction=asc")).await;
    assert_eq!(kinds(&entries(&first))[0].0, "create");
    let after = first.body["result_info"]["cursors"]["after"]
        .as_str()
        .unwrap();
    let rest = history(
        id.into(),
        format!("action_time={at}&limit=2&direction=asc&cursor={after}"),
    )
    .await;
    assert_eq!(
        kinds(&entries(&rest)),
        [("delete".into(), "account.member".into())]
    );
    let none = history(id.into(), format!("action_time={at}&since=2999-01-01")).await;
    assert_eq!(none.result(), &json!([]));
    // What it needs, and whose entries it finds.
    let r = history(id.into(), String::new()).await;
    r.expect_error(400, 1002);
    assert!(r.error_message().contains("action_time"), "{}", r.body);
    let r = history(id.into(), "action_time=soon".into()).await;
    r.expect_error(400, 1002);
    history(
        "f174be97-19b1-40d6-954d-70cd5fbd52db".into(),
        format!("action_time={at}"),
    )
    .await
    .expect_error(404, 1003);
    let elsewhere = server.account(&owner, "Elsewhere").await;
    admin
        .get(&format!(
            "/accounts/{elsewhere}/logs/audit/{id}/history?action_time={at}&since=2000-01-01&before=2999-01-01"
        ))
        .await
        .expect_error(404, 1003);
    let stranger = server.user("stranger@example.com").await;
    server
        .as_user(&stranger)
        .get(&format!(
            "/accounts/{account}/logs/audit/{id}/history?action_time={at}&since=2000-01-01&before=2999-01-01"
        ))
        .await
        .expect_error(404, 1003);
}
