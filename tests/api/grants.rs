//! No one gives what they do not hold, and an explicit deny overrides every allow: every way
//! of giving rights (a member's roles or policies, a user group's policies or members, an
//! account token made, changed or rolled) by every kind of caller (a member by key, a member
//! through a narrower token of theirs, the account's own token), beyond the caller's rights,
//! is refused with 403/9109 and changes nothing.

use serde_json::{Value, json};

use crate::helpers::*;

const SETTINGS_READ: &str = "15b972a8f4cb43e78efbafb322f7dee5";
const SETTINGS_WRITE: &str = "bcc19b668966402dadd900f2b4243d2e";
const TOKENS_READ: &str = "4a1c3e0b7d2f4c8e9b6a5d3f2e1c0b9a";
const TOKENS_WRITE: &str = "8b2d4f6a1c3e4e7a9c0b2d4f6a8c1e3b";
const DNS_WRITE: &str = "c04f21e7c9484120a60314ba1d079cec";
const USER_TOKENS_READ: &str = "0cc3a61731504c89b99ec1be78b77aa0";
const USER_TOKENS_WRITE: &str = "686d18d5ac6c441c867cbf6771e58a0a";
const MEMBERSHIPS_READ: &str = "05de63ec42a143408bcece00dee847e4";
const MEMBERSHIPS_WRITE: &str = "d1e5ea4d88a94a42bd357447aca341d9";

fn on(account: &str) -> String {
    format!("com.cloudflare.api.account.{account}")
}

fn groups(ids: &[&str]) -> Vec<Value> {
    ids.iter().map(|g| json!({"id": g})).collect()
}

/// A token body with one policy per (effect, groups, resources).
fn token_body(name: &str, policies: &[(&str, &[&str], Value)]) -> Value {
    let policies: Vec<Value> = policies
        .iter()
        .map(|(effect, ids, resources)| {
            json!({"effect": effect, "permission_groups": groups(ids), "resources": resources})
        })
        .collect();
    json!({"name": name, "policies": policies})
}

/// An account of a Super Administrator, with a resource group over all of it.
struct Account {
    server: TestServer,
    owner: Creds,
    id: String,
    everything: String,
}

impl Account {
    async fn new() -> Account {
        let server = TestServer::start().await;
        let owner = server.user("owner@example.com").await;
        let id = server.account(&owner, "Guarded").await;
        let everything = server.whole_account_group(&owner, &id, Some("all")).await;
        Account {
            server,
            owner,
            id,
            everything,
        }
    }

    fn path(&self, rest: &str) -> String {
        format!("/accounts/{}{rest}", self.id)
    }

    fn policy(&self, access: &str, ids: &[&str]) -> Value {
        json!({"access": access, "permission_groups": groups(ids),
               "resource_groups": [{"id": self.everything}]})
    }

    /// An accepted member holding these allow policies; their credentials and member id.
    async fn member(&self, email: &str, allowed: &[&str]) -> (Creds, String) {
        let who = self.server.user(email).await;
        let id = self
            .server
            .as_user(&self.owner)
            .post(
                &self.path("/members"),
                json!({"email": email, "policies": [self.policy("allow", allowed)]}),
            )
            .await
            .result()["id"]
            .as_str()
            .unwrap()
            .to_string();
        self.server
            .as_user(&who)
            .put(&format!("/memberships/{id}"), json!({"status": "accepted"}))
            .await
            .result();
        (who, id)
    }

    /// Makes an account token through `client`; (id, secret).
    async fn account_token(&self, client: &Client, body: Value) -> (String, String) {
        let r = client.post(&self.path("/tokens"), body).await;
        let result = r.result();
        (
            result["id"].as_str().unwrap().to_string(),
            result["value"].as_str().unwrap().to_string(),
        )
    }

    /// Makes a user token of `who`; its secret.
    async fn user_token(&self, who: &Creds, body: Value) -> String {
        let r = self.server.as_user(who).post("/user/tokens", body).await;
        r.result()["value"].as_str().unwrap().to_string()
    }

    /// What the owner sees of the account's members, groups and tokens.
    async fn snapshot(&self) -> Value {
        let owner = self.server.as_user(&self.owner);
        let mut tokens = owner.get(&self.path("/tokens")).await.result().clone();
        // Rolling changes `modified_on`; a refused roll must not.
        for t in tokens.as_array_mut().unwrap() {
            t.as_object_mut().unwrap().remove("last_used_on");
        }
        json!({
            "members": owner.get(&self.path("/members?per_page=50")).await.result(),
            "groups": owner.get(&self.path("/iam/user_groups")).await.result(),
            "tokens": tokens,
        })
    }
}

/// A member who may only manage the account's tokens cannot roll a stronger token and take
/// its secret; nor can an account token holding the tokens groups.
#[tokio::test]
async fn rolling_a_token_is_capped_by_the_rollers_rights() {
    let a = Account::new().await;
    let owner = a.server.as_user(&a.owner);
    let (strong, strong_secret) = a
        .account_token(
            &owner,
            token_body(
                "settings",
                &[("allow", &[SETTINGS_WRITE], json!({on(&a.id): "*"}))],
            ),
        )
        .await;
    let (tokener, _) = a.member("tokener@example.com", &[TOKENS_WRITE]).await;
    let (_, minter) = a
        .account_token(
            &owner,
            token_body(
                "minter",
                &[("allow", &[TOKENS_WRITE], json!({on(&a.id): "*"}))],
            ),
        )
        .await;
    let before = a.snapshot().await;
    let roll = a.path(&format!("/tokens/{strong}/value"));
    for client in [a.server.as_user(&tokener), a.server.with_token(&minter)] {
        let r = client.put(&roll, json!({})).await;
        r.expect_error(403, 9109);
        assert!(r.body["result"].is_null(), "no secret: {}", r.body);
    }
    assert_eq!(a.snapshot().await, before, "nothing changed");
    // The old secret still works; the owner, who holds the rights, may roll it.
    a.server
        .with_token(&strong_secret)
        .get(&a.path("/members"))
        .await
        .result();
    let rolled = owner.put(&roll, json!({})).await;
    assert_eq!(rolled.result().as_str().unwrap().len(), 40);
    // A token within the tokener's rights she rolls.
    let (own, _) = a
        .account_token(
            &a.server.as_user(&tokener),
            token_body(
                "mine",
                &[("allow", &[TOKENS_READ], json!({on(&a.id): "*"}))],
            ),
        )
        .await;
    a.server
        .as_user(&tokener)
        .put(&a.path(&format!("/tokens/{own}/value")), json!({}))
        .await
        .result();
}

/// Adding the only administrator to a group that denies their rights is refused, as
/// replacing the group's members is.
#[tokio::test]
async fn adding_the_last_administrator_to_a_denying_group_is_refused() {
    let a = Account::new().await;
    let owner = a.server.as_user(&a.owner);
    let group = owner
        .post(
            &a.path("/iam/user_groups"),
            json!({"name": "no settings", "policies": [a.policy("deny", &[SETTINGS_WRITE])]}),
        )
        .await
        .result()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let me = owner.get("/memberships").await.result()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let before = a.snapshot().await;
    let members = a.path(&format!("/iam/user_groups/{group}/members"));
    owner
        .post(&members, json!([{"id": me}]))
        .await
        .expect_error(409, 1007);
    owner
        .post(&members, json!({"members": [{"id": me}]}))
        .await
        .expect_error(409, 1007);
    assert_eq!(a.snapshot().await, before, "nothing changed");
    // Someone else may join it.
    let (_, reader) = a.member("reader@example.com", &[SETTINGS_READ]).await;
    owner.post(&members, json!([{"id": reader}])).await.result();
}

/// The demo user, an "Account Administrator" with every right but no Super Administrator,
/// cannot make themselves Super Administrator, nor give themselves the tokens groups by any
/// road.
#[tokio::test]
async fn an_administrator_cannot_make_themselves_super_administrator() {
    let server = TestServer::demo().await;
    let demo = server.as_user(&Creds::demo());
    let account = format!("/accounts/{DEMO_ACCOUNT}");
    let me = format!("{account}/members/{DEMO_MEMBERSHIP}");
    let members_before = demo.get(&format!("{account}/members?per_page=50")).await;
    demo.put(&me, json!({"roles": [SUPER_ADMIN]}))
        .await
        .expect_error(403, 9109);
    demo.post(
        &format!("{account}/members"),
        json!({"email": "friend@example.com", "roles": [SUPER_ADMIN]}),
    )
    .await
    .expect_error(403, 9109);
    // The demo account's resource group, as in Cloudflare's examples.
    let rg = "6d7f2f5f5b1d4a0e9081fdc98d432fd1";
    let tokens_policy = json!({"access": "allow", "permission_groups": groups(&[TOKENS_WRITE]),
                               "resource_groups": [{"id": rg}]});
    let keeps_settings = json!({"access": "allow", "permission_groups": groups(&[SETTINGS_WRITE]),
                                "resource_groups": [{"id": rg}]});
    demo.put(
        &me,
        json!({"policies": [tokens_policy.clone(), keeps_settings]}),
    )
    .await
    .expect_error(403, 9109);
    demo.post(
        &format!("{account}/iam/user_groups"),
        json!({"name": "tokens", "policies": [tokens_policy]}),
    )
    .await
    .expect_error(403, 9109);
    let after = demo.get(&format!("{account}/members?per_page=50")).await;
    assert_eq!(after.result(), members_before.result(), "nothing changed");
    // Still no way to the account's tokens, nor to deleting the account.
    demo.get(&format!("{account}/tokens"))
        .await
        .expect_error(403, 9109);
    demo.delete(&account).await.expect_error(403, 9109);
    // What they hold, they give.
    demo.post(
        &format!("{account}/members"),
        json!({"email": "friend@example.com", "roles": [DNS_ROLE]}),
    )
    .await
    .result();
}

/// Putting someone in a group gives them its policies: only a caller who holds them may.
#[tokio::test]
async fn joining_a_group_gives_its_rights_and_is_capped() {
    let a = Account::new().await;
    let owner = a.server.as_user(&a.owner);
    let tokens_group = owner
        .post(
            &a.path("/iam/user_groups"),
            json!({"name": "tokens", "policies": [a.policy("allow", &[TOKENS_WRITE])]}),
        )
        .await
        .result()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (admin, admin_id) = a.member("admin@example.com", &[SETTINGS_WRITE]).await;
    let admin_c = a.server.as_user(&admin);
    let members = a.path(&format!("/iam/user_groups/{tokens_group}/members"));
    admin_c
        .post(&members, json!([{"id": admin_id}]))
        .await
        .expect_error(403, 9109);
    admin_c
        .put(&members, json!([{"id": admin_id}]))
        .await
        .expect_error(403, 9109);
    // Nor may they change a group's policies beyond their rights, or make such a group.
    let empty = admin_c
        .post(&a.path("/iam/user_groups"), json!({"name": "mine"}))
        .await
        .result()["id"]
        .as_str()
        .unwrap()
        .to_string();
    admin_c
        .put(
            &a.path(&format!("/iam/user_groups/{empty}")),
            json!({"policies": [a.policy("allow", &[TOKENS_WRITE])]}),
        )
        .await
        .expect_error(403, 9109);
    admin_c
        .put(
            &a.path(&format!("/iam/user_groups/{empty}")),
            json!({"policies": [a.policy("allow", &[DNS_WRITE])]}),
        )
        .await
        .expect_error(403, 9109);
    admin_c
        .get(&a.path("/tokens"))
        .await
        .expect_error(403, 9109);
    // The owner may put them in.
    owner
        .post(&members, json!([{"id": admin_id}]))
        .await
        .result();
    admin_c.get(&a.path("/tokens")).await.result();
}

/// An account token's zone grants count as well as the account's: a member without DNS
/// rights mints no "DNS Write", on every zone or on one.
#[tokio::test]
async fn an_account_token_gives_no_zone_rights_its_maker_lacks() {
    let a = Account::new().await;
    let (tokener, _) = a
        .member("tokener@example.com", &[TOKENS_WRITE, SETTINGS_READ])
        .await;
    let client = a.server.as_user(&tokener);
    let zone = "com.cloudflare.api.account.zone.0123456789abcdef0123456789abcdef";
    for resources in [
        json!({on(&a.id): {"com.cloudflare.api.account.zone.*": "*"}}),
        json!({zone: "*"}),
    ] {
        client
            .post(
                &a.path("/tokens"),
                token_body("dns", &[("allow", &[DNS_WRITE], resources)]),
            )
            .await
            .expect_error(403, 9109);
    }
    // Their owner, with every right, may.
    a.account_token(
        &a.server.as_user(&a.owner),
        token_body(
            "dns",
            &[(
                "allow",
                &[DNS_WRITE],
                json!({on(&a.id): {"com.cloudflare.api.account.zone.*": "*"}}),
            )],
        ),
    )
    .await;
}

/// A Super Administrator who comes with a token holding only the tokens groups makes an
/// account token with at most what that token carries.
#[tokio::test]
async fn the_makers_token_narrows_what_an_account_token_gives() {
    let a = Account::new().await;
    let narrow = a
        .user_token(
            &a.owner,
            token_body(
                "tokens only",
                &[("allow", &[TOKENS_WRITE], json!({on(&a.id): "*"}))],
            ),
        )
        .await;
    let client = a.server.with_token(&narrow);
    client
        .post(
            &a.path("/tokens"),
            token_body(
                "w",
                &[("allow", &[SETTINGS_WRITE], json!({on(&a.id): "*"}))],
            ),
        )
        .await
        .expect_error(403, 9109);
    // Nor by inviting a member with the rights the token lacks.
    client
        .post(
            &a.path("/members"),
            json!({"email": "x@example.com", "roles": [SUPER_ADMIN]}),
        )
        .await
        .expect_error(403, 9109);
    client
        .post(
            &a.path("/tokens"),
            token_body("r", &[("allow", &[TOKENS_READ], json!({on(&a.id): "*"}))]),
        )
        .await
        .result();
}

/// A denied Read group takes reading, and so writing, away, whatever Write group is
/// allowed: for the user's tokens, memberships and the account's tokens.
#[tokio::test]
async fn a_denied_read_group_takes_reading_and_writing_away() {
    let a = Account::new().await;
    let user = on("*");
    let user_resource = |id: &str| format!("com.cloudflare.api.user.{id}");
    let owner_id = a.server.as_user(&a.owner).get("/user").await.result()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let own = user_resource(&owner_id);
    let both = |write: &str, read: &str, resource: &str| {
        token_body(
            "write not read",
            &[
                ("allow", &[write], json!({resource: "*"})),
                ("deny", &[read], json!({resource: "*"})),
            ],
        )
    };
    let tokens = a
        .user_token(&a.owner, both(USER_TOKENS_WRITE, USER_TOKENS_READ, &own))
        .await;
    let c = a.server.with_token(&tokens);
    c.get("/user/tokens").await.expect_error(403, 9109);
    c.post(
        "/user/tokens",
        token_body(
            "new",
            &[("allow", &[SETTINGS_READ], json!({user.clone(): "*"}))],
        ),
    )
    .await
    .expect_error(403, 9109);
    let memberships = a
        .user_token(&a.owner, both(MEMBERSHIPS_WRITE, MEMBERSHIPS_READ, &own))
        .await;
    let c = a.server.with_token(&memberships);
    c.get("/memberships").await.expect_error(403, 9109);
    let id = a
        .server
        .as_user(&a.owner)
        .get("/memberships")
        .await
        .result()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    c.put(&format!("/memberships/{id}"), json!({"status": "accepted"}))
        .await
        .expect_error(403, 9109);
    let account_tokens = a
        .user_token(&a.owner, both(TOKENS_WRITE, TOKENS_READ, &on(&a.id)))
        .await;
    let c = a.server.with_token(&account_tokens);
    c.get(&a.path("/tokens")).await.expect_error(403, 9109);
    // The same through a member's own policies and a group's deny.
    let (reader, reader_id) = a.member("reader@example.com", &[TOKENS_WRITE]).await;
    a.server
        .as_user(&reader)
        .get(&a.path("/tokens"))
        .await
        .result();
    a.server
        .as_user(&a.owner)
        .put(
            &a.path(&format!("/members/{reader_id}")),
            json!({"policies": [a.policy("allow", &[TOKENS_WRITE]), a.policy("deny", &[TOKENS_READ])]}),
        )
        .await
        .result();
    a.server
        .as_user(&reader)
        .get(&a.path("/tokens"))
        .await
        .expect_error(403, 9109);
    // A denied Write leaves reading.
    a.server
        .as_user(&a.owner)
        .put(
            &a.path(&format!("/members/{reader_id}")),
            json!({"policies": [a.policy("allow", &[TOKENS_WRITE]), a.policy("deny", &[TOKENS_WRITE])]}),
        )
        .await
        .result();
    let r = a.server.as_user(&reader);
    r.get(&a.path("/tokens")).await.result();
    r.post(
        &a.path("/tokens"),
        token_body("t", &[("allow", &[TOKENS_READ], json!({on(&a.id): "*"}))]),
    )
    .await
    .expect_error(403, 9109);
}

/// A rejected member is no member to put in a group.
#[tokio::test]
async fn a_rejected_member_joins_no_group() {
    let a = Account::new().await;
    let owner = a.server.as_user(&a.owner);
    let who = a.server.user("no@example.com").await;
    let id = a
        .server
        .invite(&a.owner, &a.id, &who.email, &[DNS_ROLE])
        .await;
    a.server
        .as_user(&who)
        .put(&format!("/memberships/{id}"), json!({"status": "rejected"}))
        .await
        .result();
    let group = owner
        .post(&a.path("/iam/user_groups"), json!({"name": "g"}))
        .await
        .result()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let members = a.path(&format!("/iam/user_groups/{group}/members"));
    for body in [json!([{"id": id}]), json!({"members": [{"id": id}]})] {
        let r = owner.post(&members, body).await;
        r.expect_error(400, 1002);
        assert!(r.error_message().contains("not a member"), "{}", r.body);
    }
    let listed = owner.get(&members).await;
    assert_eq!(listed.result(), &json!([]));
}

/// Taking a member out from under a deny gives them what it denied: only a caller who holds
/// that may, by any road (leaving the group, replacing its members, deleting it, or
/// changing its policies).
#[tokio::test]
async fn lifting_a_deny_is_giving() {
    let a = Account::new().await;
    let owner = a.server.as_user(&a.owner);
    let deny_group = || async {
        owner
            .post(
                &a.path("/iam/user_groups"),
                json!({"name": format!("no tokens {}", rand_suffix()),
                       "policies": [a.policy("deny", &[TOKENS_READ])]}),
            )
            .await
            .result()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (m, m_id) = a
        .member("m@example.com", &[SETTINGS_WRITE, TOKENS_WRITE])
        .await;
    let mc = a.server.as_user(&m);
    let group = deny_group().await;
    let members = a.path(&format!("/iam/user_groups/{group}/members"));
    owner.post(&members, json!([{"id": m_id}])).await.result();
    mc.get(&a.path("/tokens")).await.expect_error(403, 9109);
    let before = a.snapshot().await;
    mc.delete(&a.path(&format!("/iam/user_groups/{group}/members/{m_id}")))
        .await
        .expect_error(403, 9109);
    mc.put(&members, json!([])).await.expect_error(403, 9109);
    mc.delete(&a.path(&format!("/iam/user_groups/{group}")))
        .await
        .expect_error(403, 9109);
    mc.put(
        &a.path(&format!("/iam/user_groups/{group}")),
        json!({"policies": []}),
    )
    .await
    .expect_error(403, 9109);
    assert_eq!(a.snapshot().await, before, "nothing changed");
    mc.get(&a.path("/tokens")).await.expect_error(403, 9109);
    // The owner, who holds what the deny takes, may lift it.
    owner
        .delete(&a.path(&format!("/iam/user_groups/{group}/members/{m_id}")))
        .await
        .result();
    mc.get(&a.path("/tokens")).await.result();
}

fn rand_suffix() -> String {
    roster::domain::Id::generate().as_str()[..6].to_string()
}

/// A Super Administrator's membership is changed or removed only by a Super
/// Administrator: not by a member who manages memberships, nor by putting them in a group
/// that denies them. Giving it back unchanged is no change.
#[tokio::test]
async fn only_a_super_administrator_touches_a_super_administrator() {
    let a = Account::new().await;
    let owner = a.server.as_user(&a.owner);
    let owner_id = owner.get("/memberships").await.result()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (admin, _) = a.member("admin@example.com", &[SETTINGS_WRITE]).await;
    let ac = a.server.as_user(&admin);
    let before = a.snapshot().await;
    let owner_path = a.path(&format!("/members/{owner_id}"));
    ac.put(&owner_path, json!({"roles": [DNS_ROLE]}))
        .await
        .expect_error(403, 9109);
    ac.delete(&owner_path).await.expect_error(403, 9109);
    let deny_all = ac
        .post(
            &a.path("/iam/user_groups"),
            json!({"name": "deny", "policies": [a.policy("deny", &[SETTINGS_READ])]}),
        )
        .await
        .result()["id"]
        .as_str()
        .unwrap()
        .to_string();
    ac.post(
        &a.path(&format!("/iam/user_groups/{deny_all}/members")),
        json!([{"id": owner_id}]),
    )
    .await
    .expect_error(403, 9109);
    // Re-saving the owner's roles unchanged (as Terraform re-applies a plan) is fine.
    ac.put(&owner_path, json!({"roles": [SUPER_ADMIN]}))
        .await
        .result();
    let after = a.snapshot().await;
    assert_eq!(after["members"], before["members"], "nothing changed");
}

/// A Super Administrator whose token carries every account and zone group gives the Super
/// Administrator role (rights no group expresses, such as analytics write, are not
/// narrowed by a token); an account group granted on zones only carries nothing on the
/// account.
#[tokio::test]
async fn a_token_narrows_by_what_groups_can_say() {
    let a = Account::new().await;
    let every: Vec<&str> = roster::domain::catalog::permission_groups()
        .iter()
        .filter(|g| g.scopes != "com.cloudflare.api.user")
        .map(|g| g.name.as_str())
        .collect();
    let all = a.server.token(&a.owner, &every).await;
    a.server
        .with_token(&all)
        .post(
            &a.path("/members"),
            json!({"email": "second@example.com", "roles": [SUPER_ADMIN]}),
        )
        .await
        .result();
    let billing = roster::domain::catalog::permission_group_named("Billing Write")
        .unwrap()
        .id
        .as_str()
        .to_string();
    let zoned = a
        .user_token(
            &a.owner,
            token_body(
                "zoned billing",
                &[
                    ("allow", &[SETTINGS_WRITE], json!({on(&a.id): "*"})),
                    (
                        "allow",
                        &[billing.as_str()],
                        json!({"com.cloudflare.api.account.zone.*": "*"}),
                    ),
                ],
            ),
        )
        .await;
    // The "Billing" role: organization read and billing write.
    a.server
        .with_token(&zoned)
        .post(
            &a.path("/members"),
            json!({"email": "billing@example.com", "roles": ["462131c6e56c4a3894166a1f9b47cf9e"]}),
        )
        .await
        .expect_error(403, 9109);
}

/// A policy names each group once: a view shows every named resource group whole, so a
/// repeated name would multiply an answer's weight (a denial of service) for nothing.
#[tokio::test]
async fn a_policy_names_each_group_once() {
    let a = Account::new().await;
    let owner = a.server.as_user(&a.owner);
    let twice = json!({"access": "allow", "permission_groups": groups(&[SETTINGS_READ]),
                       "resource_groups": [{"id": a.everything}, {"id": a.everything}]});
    let r = owner
        .post(
            &a.path("/members"),
            json!({"email": "x@example.com", "policies": [twice.clone()]}),
        )
        .await;
    r.expect_error(400, 1002);
    assert!(r.error_message().contains("named twice"), "{}", r.body);
    owner
        .post(
            &a.path("/iam/user_groups"),
            json!({"name": "g", "policies": [twice]}),
        )
        .await
        .expect_error(400, 1002);
    let groups_twice = json!({"access": "allow", "permission_groups": groups(&[SETTINGS_READ, SETTINGS_READ]),
                              "resource_groups": [{"id": a.everything}]});
    owner
        .post(
            &a.path("/members"),
            json!({"email": "x@example.com", "policies": [groups_twice]}),
        )
        .await
        .expect_error(400, 1002);
    owner
        .post(
            &a.path("/members"),
            json!({"email": "x@example.com", "roles": [DNS_ROLE, DNS_ROLE]}),
        )
        .await
        .expect_error(400, 1002);
    owner
        .post(
            &a.path("/tokens"),
            token_body(
                "t",
                &[(
                    "allow",
                    &[SETTINGS_READ, SETTINGS_READ],
                    json!({on(&a.id): "*"}),
                )],
            ),
        )
        .await
        .expect_error(400, 1002);
    let listed = owner.get(&a.path("/members")).await;
    assert_eq!(
        listed.result().as_array().unwrap().len(),
        1,
        "nothing added"
    );
}

/// Renaming or disabling a token gives nothing: a member who manages the account's tokens
/// may do that to one stronger than they could make (a leaked one, say), not widen it,
/// enable it again or roll it. A user group's policies sent again without their ids are
/// no change either.
#[tokio::test]
async fn renaming_or_disabling_gives_nothing() {
    let a = Account::new().await;
    let owner = a.server.as_user(&a.owner);
    let strong_body = token_body(
        "strong",
        &[("allow", &[SETTINGS_WRITE], json!({on(&a.id): "*"}))],
    );
    let (strong, _) = a.account_token(&owner, strong_body.clone()).await;
    let (tokener, _) = a
        .member("tokener@example.com", &[TOKENS_WRITE, SETTINGS_READ])
        .await;
    let tc = a.server.as_user(&tokener);
    let path = a.path(&format!("/tokens/{strong}"));
    let mut renamed = strong_body.clone();
    renamed["name"] = json!("leaked");
    tc.put(&path, renamed.clone()).await.result();
    let mut disabled = renamed.clone();
    disabled["status"] = json!("disabled");
    tc.put(&path, disabled).await.result();
    let mut enabled = renamed.clone();
    enabled["status"] = json!("active");
    tc.put(&path, enabled).await.expect_error(403, 9109);
    let mut expiring = renamed.clone();
    expiring["expires_on"] = json!("2999-01-01T00:00:00Z");
    tc.put(&path, expiring).await.expect_error(403, 9109);
    let mut earlier = renamed;
    earlier["not_before"] = json!("2020-01-01T00:00:00Z");
    tc.put(&path, earlier).await.expect_error(403, 9109);
    tc.put(&format!("{path}/value"), json!({}))
        .await
        .expect_error(403, 9109);
    // Leaving out a token's address condition widens it.
    let mut fenced = strong_body.clone();
    fenced["condition"] = json!({"request_ip": {"in": ["10.0.0.0/8"]}});
    let (fenced_id, _) = a.account_token(&owner, fenced).await;
    tc.put(
        &a.path(&format!("/tokens/{fenced_id}")),
        strong_body.clone(),
    )
    .await
    .expect_error(403, 9109);
    let shown = owner.get(&path).await;
    assert_eq!(shown.result()["name"], "leaked");
    assert_eq!(shown.result()["status"], "disabled");

    // A group holding a right the admin lacks, re-saved unchanged by them.
    let group = owner
        .post(
            &a.path("/iam/user_groups"),
            json!({"name": "dns", "policies": [a.policy("allow", &[DNS_WRITE])]}),
        )
        .await
        .result()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (admin, _) = a.member("admin@example.com", &[SETTINGS_WRITE]).await;
    let ac = a.server.as_user(&admin);
    let group_path = a.path(&format!("/iam/user_groups/{group}"));
    ac.put(
        &group_path,
        json!({"name": "dns", "policies": [a.policy("allow", &[DNS_WRITE])]}),
    )
    .await
    .result();
    ac.put(
        &group_path,
        json!({"policies": [a.policy("allow", &[DNS_WRITE, SETTINGS_READ])]}),
    )
    .await
    .expect_error(403, 9109);
}

/// A token made with a token keeps within that token's bounds: a short-lived or fenced
/// token does not mint a lasting or open one.
#[tokio::test]
async fn a_token_made_with_a_token_keeps_within_its_bounds() {
    let a = Account::new().await;
    let owner = a.server.as_user(&a.owner);
    let mut short = token_body(
        "short",
        &[(
            "allow",
            &[TOKENS_WRITE, SETTINGS_READ],
            json!({on(&a.id): "*"}),
        )],
    );
    short["expires_on"] = json!("2990-01-01T00:00:00Z");
    short["condition"] = json!({"request_ip": {"in": ["127.0.0.0/8"]}});
    let (_, secret) = a.account_token(&owner, short.clone()).await;
    let client = a.server.with_token(&secret);
    let reader = token_body("r", &[("allow", &[SETTINGS_READ], json!({on(&a.id): "*"}))]);
    client
        .post(&a.path("/tokens"), reader.clone())
        .await
        .expect_error(403, 9109);
    let mut later = reader.clone();
    later["expires_on"] = json!("2995-01-01T00:00:00Z");
    later["condition"] = short["condition"].clone();
    client
        .post(&a.path("/tokens"), later)
        .await
        .expect_error(403, 9109);
    let mut open = reader.clone();
    open["expires_on"] = json!("2980-01-01T00:00:00Z");
    client
        .post(&a.path("/tokens"), open.clone())
        .await
        .expect_error(403, 9109);
    let mut within = open;
    within["condition"] = short["condition"].clone();
    client.post(&a.path("/tokens"), within).await.result();
}
