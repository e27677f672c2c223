//! Account-owned API tokens (`../shared/DESIGN.md`, "Account-owned API tokens"): who may
//! manage them, what they reach (their own account, within their policies, and nothing of
//! any user), and that they outlive their maker but not their account.

use serde_json::{Value, json};

use crate::helpers::*;

const SETTINGS_READ: &str = "15b972a8f4cb43e78efbafb322f7dee5";
const SETTINGS_WRITE: &str = "bcc19b668966402dadd900f2b4243d2e";
const ACCOUNT_TOKENS_READ: &str = "4a1c3e0b7d2f4c8e9b6a5d3f2e1c0b9a";
const ACCOUNT_TOKENS_WRITE: &str = "8b2d4f6a1c3e4e7a9c0b2d4f6a8c1e3b";
const MEMBERSHIPS_READ: &str = "05de63ec42a143408bcece00dee847e4";
const ADMINISTRATOR: &str = "93c0b5f28f784adfabec6701f4e37655";

fn on(account: &str) -> String {
    format!("com.cloudflare.api.account.{account}")
}

fn body(name: &str, groups: &[&str], resources: Value) -> Value {
    json!({
        "name": name,
        "policies": [{
            "effect": "allow",
            "permission_groups": groups.iter().map(|g| json!({"id": g})).collect::<Vec<_>>(),
            "resources": resources,
        }],
    })
}

/// Makes an account token through `client` and returns (id, secret).
async fn create(client: &Client, account: &str, body: Value) -> (String, String) {
    let r = client
        .post(&format!("/accounts/{account}/tokens"), body)
        .await;
    let result = r.result();
    (
        result["id"].as_str().unwrap().to_string(),
        result["value"]
            .as_str()
            .expect("the value, once")
            .to_string(),
    )
}

#[tokio::test]
async fn an_account_token_reads_its_account_outlives_its_maker_and_is_no_user() {
    let server = TestServer::start().await;
    let owner = server.user("owner@example.com").await;
    let account = server.account(&owner, "Tokens").await;
    let maker = server.user("maker@example.com").await;
    let maker_membership = server
        .add_member(&owner, &account, &maker, &[SUPER_ADMIN])
        .await;

    let (id, secret) = create(
        &server.as_user(&maker),
        &account,
        body("ci", &[SETTINGS_READ], json!({ on(&account): "*" })),
    )
    .await;
    assert_eq!(secret.len(), 40);
    let shown = server
        .as_user(&owner)
        .get(&format!("/accounts/{account}/tokens/{id}"))
        .await;
    assert_eq!(
        shown.result()["creator_email_at_creation"],
        "maker@example.com"
    );
    assert!(shown.result().get("value").is_none(), "shown once");
    // It is the account's, not the maker's.
    let theirs = server.as_user(&maker).get("/user/tokens").await;
    assert_eq!(theirs.result().as_array().unwrap().len(), 0);

    let bearer = server.with_token(&secret);
    bearer.get(&format!("/accounts/{account}")).await.result();
    bearer
        .get(&format!("/accounts/{account}/members"))
        .await
        .result();
    let listed = bearer.get("/accounts").await;
    let ids: Vec<&str> = listed
        .result()
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [account.as_str()]);
    let verified = bearer
        .get(&format!("/accounts/{account}/tokens/verify"))
        .await;
    assert_eq!(verified.result()["id"], id.as_str());
    assert_eq!(verified.result()["status"], "active");
    // Within its policies: reading only.
    bearer
        .put(&format!("/accounts/{account}"), json!({"name": "Renamed"}))
        .await
        .expect_error(403, 9109);
    bearer
        .post(
            &format!("/accounts/{account}/members"),
            json!({"email": "x@example.com", "roles": [ADMINISTRATOR]}),
        )
        .await
        .expect_error(403, 9109);
    // It acts for no user.
    bearer.get("/user").await.expect_error(403, 9109);
    bearer.get("/memberships").await.expect_error(403, 9109);
    bearer.get("/user/tokens").await.expect_error(403, 9109);
    bearer
        .post("/accounts", json!({"name": "Mine"}))
        .await
        .expect_error(403, 9109);
    bearer
        .get("/user/tokens/verify")
        .await
        .expect_error(403, 10000);

    // The maker leaves: the account's token keeps working, the maker's own token no
    // longer reaches the account.
    let own = server.token(&maker, &["Account Settings Read"]).await;
    server
        .with_token(&own)
        .get(&format!("/accounts/{account}"))
        .await
        .result();
    server
        .as_user(&maker)
        .delete(&format!("/memberships/{maker_membership}"))
        .await
        .result();
    bearer.get(&format!("/accounts/{account}")).await.result();
    server
        .with_token(&own)
        .get(&format!("/accounts/{account}"))
        .await
        .expect_error(404, 1003);
}

#[tokio::test]
async fn only_holders_of_the_account_tokens_groups_manage_them() {
    let server = TestServer::start().await;
    let owner = server.user("owner@example.com").await;
    let account = server.account(&owner, "Tokens").await;
    let admin = server.user("admin@example.com").await;
    server
        .add_member(&owner, &account, &admin, &[ADMINISTRATOR])
        .await;
    let stranger = server.user("stranger@example.com").await;
    let path = format!("/accounts/{account}/tokens");
    let new = body("t", &[SETTINGS_READ], json!({ on(&account): "*" }));

    // An Administrator (all but memberships and billing) holds no token groups.
    server
        .as_user(&admin)
        .get(&path)
        .await
        .expect_error(403, 9109);
    server
        .as_user(&admin)
        .post(&path, new.clone())
        .await
        .expect_error(403, 9109);
    server
        .as_user(&stranger)
        .get(&path)
        .await
        .expect_error(404, 1003);

    // A user group's policy gives the read group: listing, not making.
    let everything = server
        .whole_account_group(&owner, &account, Some("everything"))
        .await;
    let group = server
        .as_user(&owner)
        .post(
            &format!("/accounts/{account}/iam/user_groups"),
            json!({"name": "token readers", "policies": [{"access": "allow",
                "permission_groups": [{"id": ACCOUNT_TOKENS_READ}],
                "resource_groups": [{"id": everything}]}]}),
        )
        .await;
    let group = group.result()["id"].as_str().unwrap().to_string();
    let admin_id = server
        .as_user(&owner)
        .get(&format!("{path}/../members?per_page=50"))
        .await;
    let admin_member = admin_id
        .result()
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user"]["email"] == "admin@example.com")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    server
        .as_user(&owner)
        .post(
            &format!("/accounts/{account}/iam/user_groups/{group}/members"),
            json!([{"id": admin_member}]),
        )
        .await
        .result();
    server.as_user(&admin).get(&path).await.result();
    server
        .as_user(&admin)
        .post(&path, new.clone())
        .await
        .expect_error(403, 9109);

    // A user token of the Super Administrator needs the groups on this account too.
    let plain = server.token(&owner, &["Account Settings Read"]).await;
    server
        .with_token(&plain)
        .get(&path)
        .await
        .expect_error(403, 9109);
    let able = server
        .token(
            &owner,
            &["Account API Tokens Write", "Account Settings Read"],
        )
        .await;
    let (_, made) = create(&server.with_token(&able), &account, new.clone()).await;

    // An account token with only settings read cannot see tokens; one with the write
    // group can make another.
    server
        .with_token(&made)
        .get(&path)
        .await
        .expect_error(403, 9109);
    let (_, minter) = create(
        &server.as_user(&owner),
        &account,
        body(
            "minter",
            &[ACCOUNT_TOKENS_WRITE, SETTINGS_READ],
            json!({ on(&account): "*" }),
        ),
    )
    .await;
    let (_, minted) = create(&server.with_token(&minter), &account, new.clone()).await;
    server
        .with_token(&minted)
        .get(&format!("/accounts/{account}"))
        .await
        .result();
    let listed = server.with_token(&minter).get(&path).await;
    assert_eq!(listed.result().as_array().unwrap().len(), 3);
    let minted_shown = listed
        .result()
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "t" && t.get("creator_email_at_creation").is_none())
        .cloned();
    assert!(
        minted_shown.is_some(),
        "a token made by a token has no creator email"
    );

    // The account's permission groups are account and zone groups, none of a user's.
    let groups = server
        .as_user(&owner)
        .get(&format!("{path}/permission_groups"))
        .await;
    let names: Vec<&str> = groups
        .result()
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"Account API Tokens Write"));
    assert!(!names.contains(&"Memberships Read"));
    assert!(!names.contains(&"API Tokens Write"));
}

#[tokio::test]
async fn an_account_token_names_only_its_own_account_and_reaches_no_other() {
    let server = TestServer::start().await;
    let owner = server.user("owner@example.com").await;
    let account = server.account(&owner, "Mine").await;
    let other = server.account(&owner, "Other").await;
    let me = server.as_user(&owner).get("/user").await.result()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/accounts/{account}/tokens");
    let refused = [
        json!({ on(&other): "*" }),
        json!({ "com.cloudflare.api.account.*": "*" }),
        json!({ format!("com.cloudflare.api.user.{me}"): "*" }),
        json!({ "com.cloudflare.api.account.zone.*": "*" }),
        json!({ on(&account): { on(&other): "*" } }),
    ];
    for resources in refused {
        let r = server
            .as_user(&owner)
            .post(&path, body("t", &[SETTINGS_READ], resources.clone()))
            .await;
        r.expect_error(400, 1002);
        assert!(
            r.error_message()
                .contains("an account's token reaches no other account"),
            "{resources}: {}",
            r.body
        );
    }
    assert_eq!(
        server.as_user(&owner).get(&path).await.result(),
        &json!([]),
        "nothing was made"
    );
    // Its own account's zones, nested, and a zone by id.
    create(
        &server.as_user(&owner),
        &account,
        body(
            "zones",
            &[SETTINGS_READ],
            json!({ on(&account): { "com.cloudflare.api.account.zone.*": "*" },
                    "com.cloudflare.api.account.zone.0123456789abcdef0123456789abcdef": "*" }),
        ),
    )
    .await;

    // The owner of both accounts makes a token on one: the other is missing to it.
    let (_, secret) = create(
        &server.as_user(&owner),
        &account,
        body("t", &[SETTINGS_WRITE], json!({ on(&account): "*" })),
    )
    .await;
    let bearer = server.with_token(&secret);
    bearer.get(&format!("/accounts/{account}")).await.result();
    bearer
        .get(&format!("/accounts/{other}"))
        .await
        .expect_error(404, 1003);
    bearer
        .get(&format!("/accounts/{other}/roles"))
        .await
        .expect_error(404, 1003);
    bearer
        .get(&format!("/accounts/{other}/tokens/verify"))
        .await
        .expect_error(403, 10000);
    // Membership reads are a user's: no group of a user's is an account token's.
    let user_groups = body("t", &[MEMBERSHIPS_READ], json!({ on(&account): "*" }));
    let r = server.as_user(&owner).post(&path, user_groups).await;
    r.expect_error(400, 1002);
    assert!(r.error_message().contains("acts for no user"), "{}", r.body);
}

#[tokio::test]
async fn account_tokens_roll_change_and_end_with_their_account() {
    let server = TestServer::start().await;
    let owner = server.user("owner@example.com").await;
    let account = server.account(&owner, "Short-lived").await;
    let path = format!("/accounts/{account}/tokens");
    let admin = server.as_user(&owner);
    let (id, secret) = create(
        &admin,
        &account,
        body("ci", &[SETTINGS_READ], json!({ on(&account): "*" })),
    )
    .await;
    server
        .with_token(&secret)
        .get(&format!("/accounts/{account}"))
        .await
        .result();

    let rolled = admin.put(&format!("{path}/{id}/value"), json!({})).await;
    let fresh = rolled.result().as_str().unwrap().to_string();
    server
        .with_token(&secret)
        .get(&format!("/accounts/{account}"))
        .await
        .expect_error(403, 10000);
    server
        .with_token(&fresh)
        .get(&format!("/accounts/{account}"))
        .await
        .result();

    let renamed = admin
        .put(
            &format!("{path}/{id}"),
            json!({"name": "deploys", "status": "disabled",
                   "policies": [{"effect": "allow", "permission_groups": [{"id": SETTINGS_READ}],
                                 "resources": { on(&account): "*" }}]}),
        )
        .await;
    assert_eq!(renamed.result()["name"], "deploys");
    server
        .with_token(&fresh)
        .get(&format!("/accounts/{account}"))
        .await
        .expect_error(403, 10000);

    // Another owner's token (the user's own) is missing here, and this one there.
    let own = admin
        .post(
            "/user/tokens",
            body("mine", &[SETTINGS_READ], json!({ on(&account): "*" })),
        )
        .await;
    let own = own.result()["id"].as_str().unwrap().to_string();
    admin
        .get(&format!("{path}/{own}"))
        .await
        .expect_error(404, 1003);
    admin
        .delete(&format!("/user/tokens/{id}"))
        .await
        .expect_error(404, 1003);

    admin.delete(&format!("{path}/{id}")).await.result();
    admin
        .get(&format!("{path}/{id}"))
        .await
        .expect_error(404, 1003);

    // Deleting the account stops its tokens at once (a cached credential included).
    let (_, last) = create(
        &admin,
        &account,
        body("last", &[SETTINGS_READ], json!({ on(&account): "*" })),
    )
    .await;
    let bearer = server.with_token(&last);
    bearer.get(&format!("/accounts/{account}")).await.result();
    admin.delete(&format!("/accounts/{account}")).await.result();
    bearer
        .get(&format!("/accounts/{account}/tokens/verify"))
        .await
        .expect_error(403, 10000);
}

#[tokio::test]
async fn the_demo_has_an_account_token_and_fixtures_refuse_bad_ones() {
    let server = TestServer::demo().await;
    let bearer = server.with_token("RosterDemoAccountToken000000000000000000");
    let verified = bearer
        .get(&format!("/accounts/{DEMO_ACCOUNT}/tokens/verify"))
        .await;
    assert_eq!(verified.result()["id"], "a7c3e9f1b2d44c6e8f0a1b3c5d7e9f20");
    bearer
        .get(&format!("/accounts/{DEMO_ACCOUNT}/members"))
        .await
        .result();

    let bad = |token: Value| {
        let fixture = json!({"accounts": [{"name": "F", "tokens": [token]}]});
        roster::fixture::parse(&fixture.to_string())
    };
    for (token, complaint) in [
        (
            json!({"name": "t", "value": "short", "permission_groups": ["Account Settings Read"]}),
            "tokens.value",
        ),
        (
            json!({"name": "t", "value": "x".repeat(40), "permission_groups": ["No Such Group"]}),
            "unknown permission group",
        ),
        (
            json!({"name": "t", "value": "x".repeat(40), "permission_groups": ["Memberships Read"]}),
            "acts for no user",
        ),
    ] {
        let fixture = bad(token).expect("well-formed JSON");
        let scratch = TestServer::start().await;
        let e = roster::fixture::load(scratch.store.as_ref(), &fixture)
            .await
            .expect_err("refused");
        assert!(e.to_string().contains(complaint), "{e}");
        assert!(
            e.to_string().contains("accounts[0] (F): tokens[t]"),
            "names the entry: {e}"
        );
    }
}

/// An accepted member who may only manage the account's tokens and read the account,
/// through a policy on `everything`; their credentials and member id.
async fn minter(
    server: &TestServer,
    owner: &Creds,
    account: &str,
    everything: &str,
) -> (Creds, String) {
    let minter = server.user("minter@example.com").await;
    let member = server
        .as_user(owner)
        .post(
            &format!("/accounts/{account}/members"),
            json!({"email": minter.email, "policies": [{"access": "allow",
                "permission_groups": [{"id": SETTINGS_READ}, {"id": ACCOUNT_TOKENS_WRITE}],
                "resource_groups": [{"id": everything}]}]}),
        )
        .await
        .result()["id"]
        .as_str()
        .unwrap()
        .to_string();
    server
        .as_user(&minter)
        .put(
            &format!("/memberships/{member}"),
            json!({"status": "accepted"}),
        )
        .await
        .result();
    (minter, member)
}

#[tokio::test]
async fn an_account_token_gets_at_most_its_makers_rights() {
    let server = TestServer::start().await;
    let owner = server.user("owner@example.com").await;
    let account = server.account(&owner, "Escalation").await;
    let everything = server
        .whole_account_group(&owner, &account, Some("everything"))
        .await;
    // A member who may only manage tokens and read the account.
    let (minter, _) = minter(&server, &owner, &account, &everything).await;
    let path = format!("/accounts/{account}/tokens");
    let writer = body("w", &[SETTINGS_WRITE], json!({ on(&account): "*" }));
    let r = server.as_user(&minter).post(&path, writer.clone()).await;
    r.expect_error(403, 9109);
    assert!(
        r.error_message().contains("at most the rights they hold"),
        "{}",
        r.body
    );
    let (id, reader) = create(
        &server.as_user(&minter),
        &account,
        body("r", &[SETTINGS_READ], json!({ on(&account): "*" })),
    )
    .await;
    // Nor by changing a token it may manage.
    server
        .as_user(&minter)
        .put(&format!("{path}/{id}"), writer.clone())
        .await
        .expect_error(403, 9109);
    // The Super Administrator may give what they hold.
    server
        .as_user(&owner)
        .put(&format!("{path}/{id}"), writer.clone())
        .await
        .result();
    server
        .with_token(&reader)
        .put(&format!("/accounts/{account}"), json!({"name": "Renamed"}))
        .await
        .result();
    // An account token mints within its own grants.
    let (_, minting) = create(
        &server.as_user(&owner),
        &account,
        body(
            "minting",
            &[ACCOUNT_TOKENS_WRITE, SETTINGS_READ],
            json!({ on(&account): "*" }),
        ),
    )
    .await;
    server
        .with_token(&minting)
        .post(&path, writer)
        .await
        .expect_error(403, 9109);
    let listed = server.as_user(&owner).get(&path).await;
    assert_eq!(
        listed.result().as_array().unwrap().len(),
        2,
        "nothing refused was made"
    );
}

/// Making account tokens while the account is deleted: each answers as made (200) or as
/// the account's absence (404), never 500, on either backend; none outlives the account.
#[tokio::test]
async fn making_a_token_races_the_accounts_deletion_cleanly() {
    let server = TestServer::start().await;
    let owner = server.user("owner@example.com").await;
    for round in 0..12 {
        let account = server.account(&owner, &format!("Doomed {round}")).await;
        let client = server.as_user(&owner);
        let path = format!("/accounts/{account}/tokens");
        let makes = (0..4).map(|n| {
            let (client, path) = (client.clone(), path.clone());
            let body = body(
                &format!("t{n}"),
                &[SETTINGS_READ],
                json!({ on(&account): "*" }),
            );
            tokio::spawn(async move { client.post(&path, body).await })
        });
        let makes: Vec<_> = makes.collect();
        let deleted = client.delete(&format!("/accounts/{account}")).await;
        deleted.result();
        for made in makes {
            let r = made.await.unwrap();
            assert!(
                r.status == 200 || (r.status == 404 && r.error_code() == 1003),
                "round {round}: {} {}",
                r.status,
                r.body
            );
        }
        client.get(&path).await.expect_error(404, 1003);
    }
}

/// An account token's write decides its rules on the account as its own transaction reads
/// it: a maker whose rights were taken after the request was authorized (a demotion that
/// commits in between) makes, changes, rolls and deletes nothing. The race is played
/// without timing: the store is handed the rules after the demotion committed.
#[tokio::test]
async fn a_token_write_decides_on_the_account_as_it_writes() {
    use roster::domain::{Caller, Focus, Gift, Id, Need, tokens};
    use roster::store::TokenRules;
    let server = TestServer::start().await;
    let owner = server.user("owner@example.com").await;
    let account = server.account(&owner, "Raced").await;
    let everything = server
        .whole_account_group(&owner, &account, Some("everything"))
        .await;
    let (minter, member) = minter(&server, &owner, &account, &everything).await;
    create(
        &server.as_user(&minter),
        &account,
        body("theirs", &[SETTINGS_READ], json!({ on(&account): "*" })),
    )
    .await;
    // Their rights go.
    server
        .as_user(&owner)
        .put(
            &format!("/accounts/{account}/members/{member}"),
            json!({"policies": [{"access": "allow", "permission_groups": [{"id": SETTINGS_READ}],
                   "resource_groups": [{"id": everything}]}]}),
        )
        .await
        .result();
    let (user, _) = server
        .store
        .user_by_email("minter@example.com")
        .await
        .unwrap()
        .unwrap();
    let caller = Caller::of_user(user, None);
    let focus = Focus::caller(&caller);
    let check = |state: &roster::domain::AccountState,
                 _: Option<&tokens::Token>,
                 after: Option<&tokens::Token>| {
        state.authorize_account_tokens(&caller, Need::Write)?;
        after.map_or(Ok(()), |after| {
            state.check_gives(&caller, &Gift::of_token(after))
        })
    };
    let rules = || {
        Some(TokenRules {
            focus: &focus,
            check: &check,
        })
    };
    let id = Id::parse(&account).unwrap();
    let group = roster::domain::catalog::permission_group_named("Account Settings Read")
        .unwrap()
        .id
        .clone();
    let token = tokens::simple_account_token(&id, "late".into(), vec![group]).unwrap();
    let made = server
        .store
        .insert_token(&token, &"0".repeat(64), rules())
        .await;
    assert!(made.is_err(), "made after the demotion: {made:?}");
    let listed = server
        .as_user(&owner)
        .get(&format!("/accounts/{account}/tokens"))
        .await;
    let existing = listed.result()[0]["id"].as_str().unwrap().to_string();
    let rolled = server
        .store
        .edit_token(
            &tokens::Owner::Account(id.clone()),
            &Id::parse(&existing).unwrap(),
            &|_| Ok(()),
            Some(&"1".repeat(64)),
            rules(),
        )
        .await;
    assert!(rolled.is_err(), "rolled after the demotion: {rolled:?}");
    assert_eq!(listed.result().as_array().unwrap().len(), 1, "nothing made");
    let deleted = server
        .store
        .delete_token(
            &tokens::Owner::Account(id.clone()),
            &Id::parse(&existing).unwrap(),
            rules(),
        )
        .await;
    assert!(
        matches!(
            deleted,
            Err(roster::store::StoreError::Domain(
                roster::domain::DomainError::Forbidden
            ))
        ),
        "deleted after the demotion: {deleted:?}"
    );
    let listed = server
        .as_user(&owner)
        .get(&format!("/accounts/{account}/tokens"))
        .await;
    assert_eq!(
        listed.result()[0]["id"].as_str(),
        Some(existing.as_str()),
        "the token stays"
    );
}
