//! IAM user groups (`../shared/DESIGN.md`, "User groups"): their lifecycle, their
//! members, the rights they give, and the last-administrator rule counting them.

use serde_json::{Value, json};

use crate::helpers::*;

const DNS: &str = "87e7860bc4c445faba075646dac38cca";
const ZONE_READ: &str = "c8fed203ed3043cba015a93ad1616f1f";
const SETTINGS_READ: &str = "15b972a8f4cb43e78efbafb322f7dee5";
const SETTINGS_WRITE: &str = "bcc19b668966402dadd900f2b4243d2e";

struct World {
    server: TestServer,
    owner: Creds,
    account: String,
    /// The whole-account resource group policies name.
    everything: String,
}

impl World {
    async fn new() -> World {
        let server = TestServer::start().await;
        let owner = server.user("owner@example.com").await;
        let account = server.account(&owner, "Groups").await;
        let everything = server
            .whole_account_group(&owner, &account, Some("everything"))
            .await;
        World {
            server,
            owner,
            account,
            everything,
        }
    }

    fn path(&self, rest: &str) -> String {
        format!("/accounts/{}/iam/user_groups{rest}", self.account)
    }

    fn policy(&self, access: &str, group: &str) -> Value {
        json!({"access": access, "permission_groups": [{"id": group}],
               "resource_groups": [{"id": self.everything}]})
    }

    /// A new group with these policies; its id.
    async fn group(&self, name: &str, policies: Value) -> String {
        let r = self
            .server
            .as_user(&self.owner)
            .post(&self.path(""), json!({"name": name, "policies": policies}))
            .await;
        r.result()["id"].as_str().unwrap().to_string()
    }

    async fn add(&self, group: &str, members: &[&str]) -> Resp {
        let members: Vec<Value> = members.iter().map(|id| json!({"id": id})).collect();
        self.server
            .as_user(&self.owner)
            .post(
                &self.path(&format!("/{group}/members")),
                json!({"members": members}),
            )
            .await
    }

    /// An accepted member whose own policy reads zones only, not even the account.
    async fn zone_reader(&self, email: &str) -> (Creds, String) {
        let who = self.server.user(email).await;
        let r = self
            .server
            .as_user(&self.owner)
            .post(
                &format!("/accounts/{}/members", self.account),
                json!({"email": email, "policies": [self.policy("allow", ZONE_READ)]}),
            )
            .await;
        let id = r.result()["id"].as_str().unwrap().to_string();
        self.server
            .as_user(&who)
            .put(&format!("/memberships/{id}"), json!({"status": "accepted"}))
            .await
            .result();
        (who, id)
    }
}

#[tokio::test]
async fn a_group_is_created_listed_renamed_and_deleted() {
    let w = World::new().await;
    let owner = w.server.as_user(&w.owner);
    let made = owner
        .post(
            &w.path(""),
            json!({"name": "Readers", "policies": [w.policy("allow", SETTINGS_READ)]}),
        )
        .await;
    let group = made.result().clone();
    let id = group["id"].as_str().unwrap().to_string();
    assert_eq!(group["name"], "Readers");
    assert_eq!(group["created_on"], group["modified_on"]);
    let policy = &group["policies"][0];
    assert_eq!(policy["access"], "allow");
    assert_eq!(policy["permission_groups"][0]["id"], SETTINGS_READ);
    assert_eq!(
        policy["permission_groups"][0]["name"],
        "Account Settings Read"
    );
    assert_eq!(policy["resource_groups"][0]["id"], w.everything.as_str());
    w.group("Writers", json!([])).await;
    w.group("zone people", json!([])).await;

    let names = |r: &Resp| -> Vec<String> {
        r.result();
        crate::results::result_names(&r.body)
    };
    let all = owner.get(&w.path("")).await;
    assert_eq!(names(&all), ["Readers", "Writers", "zone people"]);
    assert_eq!(all.body["result_info"]["total_count"], 3);
    let desc = owner.get(&w.path("?direction=desc")).await;
    assert_eq!(names(&desc), ["zone people", "Writers", "Readers"]);
    assert_eq!(
        names(&owner.get(&w.path("?name=readers")).await),
        ["Readers"]
    );
    assert_eq!(
        names(&owner.get(&w.path("?fuzzyName=ER")).await),
        ["Readers", "Writers"]
    );
    assert_eq!(
        names(&owner.get(&w.path(&format!("?id={id}"))).await),
        ["Readers"]
    );
    assert_eq!(owner.get(&w.path(&format!("/{id}"))).await.result(), &group);

    // A name another group has (any case) is refused; renaming keeps the policies.
    owner
        .post(&w.path(""), json!({"name": "WRITERS"}))
        .await
        .expect_error(409, 1009);
    owner
        .post(&w.path(""), json!({"name": ""}))
        .await
        .expect_error(400, 1002);
    let renamed = owner
        .put(
            &w.path(&format!("/{id}")),
            json!({"name": "Settings readers"}),
        )
        .await;
    assert_eq!(renamed.result()["name"], "Settings readers");
    assert_eq!(renamed.result()["policies"], group["policies"]);
    let unknown = owner
        .post(
            &w.path(""),
            json!({"name": "bad", "policies": [w.policy("allow", "0123456789abcdef0123456789abcdef")]}),
        )
        .await;
    unknown.expect_error(400, 1002);

    // A resource group a group's policy names cannot go.
    owner
        .delete(&format!(
            "/accounts/{}/iam/resource_groups/{}",
            w.account, w.everything
        ))
        .await
        .expect_error(409, 1008);

    owner.delete(&w.path(&format!("/{id}"))).await.result();
    owner
        .get(&w.path(&format!("/{id}")))
        .await
        .expect_error(404, 1003);
    owner
        .delete(&w.path(&format!("/{id}")))
        .await
        .expect_error(404, 1003);
}

/// A member holds their group's policies on top of their own: reading the account, then
/// inviting; a deny in any group takes the right away again.
#[tokio::test]
async fn a_group_grants_its_members_rights_and_a_deny_caps_them() {
    let w = World::new().await;
    let (zoe, zoe_id) = w.zone_reader("zoe@example.com").await;
    let account = format!("/accounts/{}", w.account);
    w.server
        .as_user(&zoe)
        .get(&account)
        .await
        .expect_error(403, 9109);

    let readers = w
        .group("readers", json!([w.policy("allow", SETTINGS_READ)]))
        .await;
    let added = w.add(&readers, &[&zoe_id]).await;
    assert_eq!(added.result()[0]["id"], zoe_id.as_str());
    assert!(added.result()[0]["created_at"].is_string());
    assert_eq!(added.result()[0]["user"]["email"], "zoe@example.com");
    w.server.as_user(&zoe).get(&account).await.result();
    // Her membership shows what she may do now.
    let mine = w
        .server
        .as_user(&zoe)
        .get(&format!("/memberships/{zoe_id}"))
        .await;
    assert_eq!(mine.result()["permissions"]["organization"]["read"], true);
    let invite = json!({"email": "guest@example.com", "roles": [DNS]});
    let members = format!("{account}/members");
    w.server
        .as_user(&zoe)
        .post(&members, invite.clone())
        .await
        .expect_error(403, 9109);
    let writers = w
        .group("writers", json!([w.policy("allow", SETTINGS_WRITE)]))
        .await;
    w.add(&writers, &[&zoe_id]).await.result();
    // She invites now, giving no more than she holds: zone reading, not DNS.
    w.server
        .as_user(&zoe)
        .post(&members, invite)
        .await
        .expect_error(403, 9109);
    let invite = json!({"email": "guest@example.com", "policies": [w.policy("allow", ZONE_READ)]});
    w.server.as_user(&zoe).post(&members, invite).await.result();

    let denied = w
        .group("no settings", json!([w.policy("deny", SETTINGS_READ)]))
        .await;
    w.add(&denied, &[&zoe_id]).await.result();
    w.server
        .as_user(&zoe)
        .get(&account)
        .await
        .expect_error(403, 9109);
    // Out of that group, her rights come back.
    w.server
        .as_user(&w.owner)
        .delete(&w.path(&format!("/{denied}/members/{zoe_id}")))
        .await
        .result();
    w.server.as_user(&zoe).get(&account).await.result();
}

/// The last administrator may be one through a group: the account keeps one whatever is
/// changed, a member's roles, the group's members or its policies, or the group itself.
#[tokio::test]
async fn the_last_administrator_counts_rights_from_groups() {
    let w = World::new().await;
    let (zoe, zoe_id) = w.zone_reader("zoe@example.com").await;
    let admins = w
        .group("admins", json!([w.policy("allow", SETTINGS_WRITE)]))
        .await;
    w.add(&admins, &[&zoe_id]).await.result();
    // The owner may step down: zoe manages the account through her group.
    let owner_id = w
        .server
        .as_user(&w.owner)
        .get("/memberships")
        .await
        .result()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let me = format!("/accounts/{}/members/{owner_id}", w.account);
    w.server
        .as_user(&w.owner)
        .put(&me, json!({"roles": [DNS]}))
        .await
        .result();

    let zoe_c = w.server.as_user(&zoe);
    // Now every way of taking her group's rights from her is refused.
    zoe_c
        .delete(&w.path(&format!("/{admins}/members/{zoe_id}")))
        .await
        .expect_error(409, 1007);
    zoe_c
        .put(
            &w.path(&format!("/{admins}/members")),
            json!({"members": []}),
        )
        .await
        .expect_error(409, 1007);
    zoe_c
        .put(
            &w.path(&format!("/{admins}")),
            json!({"policies": [w.policy("allow", SETTINGS_READ)]}),
        )
        .await
        .expect_error(409, 1007);
    zoe_c
        .delete(&w.path(&format!("/{admins}")))
        .await
        .expect_error(409, 1007);
    // Renaming is fine; nothing was changed by the refusals.
    zoe_c
        .put(
            &w.path(&format!("/{admins}")),
            json!({"name": "the admins"}),
        )
        .await
        .result();
    let listed = zoe_c.get(&w.path(&format!("/{admins}/members"))).await;
    assert_eq!(listed.body["result_info"]["total_count"], 1);

    // Only a Super Administrator gives that role; she gives what she holds.
    zoe_c
        .put(&me, json!({"roles": [SUPER_ADMIN]}))
        .await
        .expect_error(403, 9109);
    // With the owner an administrator again, the group may go, and zoe's rights with it.
    zoe_c
        .put(
            &me,
            json!({"policies": [w.policy("allow", SETTINGS_WRITE)]}),
        )
        .await
        .result();
    zoe_c.delete(&w.path(&format!("/{admins}"))).await.result();
    zoe_c
        .get(&format!("/accounts/{}", w.account))
        .await
        .expect_error(403, 9109);
}

#[tokio::test]
async fn group_members_are_added_replaced_listed_and_removed() {
    let w = World::new().await;
    let (_, ann) = w.zone_reader("ann@example.com").await;
    let (_, bob) = w.zone_reader("bob@example.com").await;
    let pending = w
        .server
        .invite(&w.owner, &w.account, "carl@example.com", &[DNS])
        .await;
    let group = w.group("team", json!([])).await;
    let owner = w.server.as_user(&w.owner);

    // Adding one already in is not an error; a pending member may be added. The body may
    // be the array itself, as the SDKs send it, or an object holding `members`.
    let members = w.path(&format!("/{group}/members"));
    let as_array = format!(r#"[{{"id": "{ann}"}}]"#);
    let r = owner
        .send(reqwest::Method::POST, &members, Some(as_array))
        .await;
    assert_eq!(r.result()[0]["id"], ann.as_str());
    owner
        .send(reqwest::Method::POST, &members, Some("\"ann\"".into()))
        .await
        .expect_error(400, 1001);
    let added = w.add(&group, &[&ann, &pending]).await;
    let emails: Vec<&str> = added
        .result()
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["ann@example.com", "carl@example.com"]);
    // A pending member's profile is not shown.
    assert!(added.result()[1].get("user").is_none(), "{}", added.body);
    assert_eq!(added.result()[1]["status"], "pending");

    // Only this account's members.
    let other = w.server.account(&w.owner, "Other").await;
    let stranger = w
        .server
        .invite(&w.owner, &other, "dan@example.com", &[DNS])
        .await;
    let refused = w.add(&group, &[&stranger]).await;
    refused.expect_error(400, 1002);
    assert!(
        refused.error_message().contains(&stranger),
        "{}",
        refused.body
    );
    w.add(&group, &["nope"]).await.expect_error(400, 1002);

    let list = |query: &'static str| {
        let owner = w.server.as_user(&w.owner);
        let path = w.path(&format!("/{group}/members{query}"));
        async move {
            owner
                .get(&path)
                .await
                .result()
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["email"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list("?direction=desc").await,
        ["carl@example.com", "ann@example.com"]
    );
    assert_eq!(list("?fuzzyEmail=CARL").await, ["carl@example.com"]);

    let replaced = owner
        .put(
            &w.path(&format!("/{group}/members")),
            json!({"members": [{"id": bob}]}),
        )
        .await;
    assert_eq!(replaced.result().as_array().unwrap().len(), 1);
    assert_eq!(list("").await, ["bob@example.com"]);
    let one = owner.get(&w.path(&format!("/{group}/members/{bob}"))).await;
    assert_eq!(one.result()["email"], "bob@example.com");
    owner
        .get(&w.path(&format!("/{group}/members/{ann}")))
        .await
        .expect_error(404, 1003);
    let removed = owner
        .delete(&w.path(&format!("/{group}/members/{bob}")))
        .await;
    assert_eq!(removed.result()["id"], bob.as_str());
    owner
        .delete(&w.path(&format!("/{group}/members/{bob}")))
        .await
        .expect_error(404, 1003);
    assert!(list("").await.is_empty());

    // A member who leaves the account leaves its groups; the account's deletion takes
    // its groups.
    w.add(&group, &[&ann]).await.result();
    owner
        .delete(&format!("/accounts/{}/members/{ann}", w.account))
        .await
        .result();
    assert!(list("").await.is_empty());
    owner
        .delete(&format!("/accounts/{}", w.account))
        .await
        .result();
    let export = w.server.store.export().await.unwrap();
    assert!(export.user_groups.iter().all(|g| g.account_id != w.account));
}

/// The demo has a user group (fixtures may give them); loading the file again keeps one
/// group and the members the API added since.
#[tokio::test]
async fn fixtures_give_user_groups_and_loading_again_keeps_the_apis_changes() {
    let server = TestServer::demo().await;
    let demo = server.as_user(&Creds::demo());
    let groups = format!("/accounts/{DEMO_ACCOUNT}/iam/user_groups");
    let listed = demo.get(&groups).await;
    // "Zone readers", and the group Cloudflare's examples name (docs/api.md).
    assert_eq!(
        listed.result().as_array().unwrap().len(),
        2,
        "{}",
        listed.body
    );
    let group = listed
        .result()
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "Zone readers")
        .expect("the demo's Zone readers group")
        .clone();
    assert_eq!(group["id"], "7e2d3c4b5a6f48e9a0b1c2d3e4f5a6b7");
    assert_eq!(
        group["policies"][0]["permission_groups"][0]["name"],
        "Zone Read"
    );
    let id = group["id"].as_str().unwrap();
    let members = format!("{groups}/{id}/members");
    let emails = |r: Resp| -> Vec<String> {
        r.result()
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["email"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(emails(demo.get(&members).await), ["carlos@example.com"]);
    let hana = demo
        .get(&format!("/accounts/{DEMO_ACCOUNT}/members?per_page=50"))
        .await
        .result()
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["email"] == "hana@example.com")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    demo.post(&members, json!({"members": [{"id": hana}]}))
        .await
        .result();

    let fixture = roster::fixture::parse(roster::fixture::DEMO).unwrap();
    roster::fixture::load(server.store.as_ref(), &fixture)
        .await
        .unwrap();
    assert_eq!(
        demo.get(&groups).await.result().as_array().unwrap().len(),
        2
    );
    assert_eq!(
        emails(demo.get(&members).await),
        ["carlos@example.com", "hana@example.com"]
    );

    // A group member the file does not make a member is refused, naming the entry.
    let bad = roster::fixture::parse(
        &json!({"accounts": [{"name": "Bad", "members": [],
                 "user_groups": [{"name": "g", "members": ["nobody@example.com"]}]}]})
        .to_string(),
    )
    .unwrap();
    let refused = roster::fixture::load(server.store.as_ref(), &bad)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("accounts[0] (Bad): user_groups[g]")
            && refused.contains("nobody@example.com"),
        "{refused}"
    );
}

/// A group's members page is cut in the database from the group's own index: every page,
/// in both directions, with and without a filter holding LIKE's wildcards, is the slice of
/// the group's pending and accepted members by email; and that index follows every change
/// of the memberships (a rejection, a removal from the group, a member removed).
#[tokio::test]
async fn group_member_pages_follow_the_group_through_every_change() {
    let w = World::new().await;
    let owner = w.server.as_user(&w.owner);
    let group = w.group("big", json!([])).await;
    let emails: Vec<String> = (0..13)
        .map(|n| match n % 4 {
            0 => format!("a_{n:02}@example.com"),
            1 => format!("b%{n:02}@example.com"),
            2 => format!("Case{n:02}@Example.com"),
            _ => format!("plain{n:02}@example.com"),
        })
        .collect();
    let mut ids = Vec::new();
    for email in &emails {
        ids.push(w.server.invite(&w.owner, &w.account, email, &[DNS]).await);
    }
    // Another group's member and a member of no group are never listed.
    let other = w.group("other", json!([])).await;
    let outsider = w
        .server
        .invite(&w.owner, &w.account, "outsider@example.com", &[DNS])
        .await;
    w.add(&other, &[&outsider]).await.result();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    w.add(&group, &refs).await.result();

    let members = w.path(&format!("/{group}/members"));
    let listed = |query: String| {
        let (owner, members) = (owner.clone(), members.clone());
        async move {
            let r = owner.get(&format!("{members}?{query}")).await;
            let emails: Vec<String> = r
                .result()
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["email"].as_str().unwrap().to_string())
                .collect();
            (
                emails,
                r.body["result_info"]["total_count"].as_u64().unwrap(),
            )
        }
    };
    let check = |live: Vec<String>| {
        let listed = &listed;
        async move {
            for (filter, fuzzy) in [
                ("", None),
                ("&fuzzy_email=_", Some("_")),
                ("&fuzzyEmail=B%25", Some("b%")),
            ] {
                let mut expected: Vec<String> = live
                    .iter()
                    .filter(|e| fuzzy.is_none_or(|f| e.to_lowercase().contains(f)))
                    .cloned()
                    .collect();
                expected.sort_by_key(|e| e.to_lowercase());
                for desc in [false, true] {
                    let mut expected = expected.clone();
                    if desc {
                        expected.reverse();
                    }
                    let direction = if desc { "desc" } else { "asc" };
                    let mut seen = Vec::new();
                    for page in 1..=4 {
                        let (emails, total) = listed(format!(
                            "per_page=5&page={page}&direction={direction}{filter}"
                        ))
                        .await;
                        assert_eq!(total as usize, expected.len(), "{filter}");
                        seen.extend(emails);
                    }
                    assert_eq!(seen, expected, "{direction}{filter}");
                }
            }
        }
    };
    check(emails.clone()).await;

    // The first invitee rejects; the second leaves the group; the third is removed.
    let rejecter = w.server.user(&emails[0]).await;
    w.server
        .as_user(&rejecter)
        .put(
            &format!("/memberships/{}", ids[0]),
            json!({"status": "rejected"}),
        )
        .await
        .result();
    owner
        .delete(&w.path(&format!("/{group}/members/{}", ids[1])))
        .await
        .result();
    owner
        .delete(&format!("/accounts/{}/members/{}", w.account, ids[2]))
        .await
        .result();
    check(emails[3..].to_vec()).await;
    // Replacing the members leaves exactly the new set.
    w.server
        .as_user(&w.owner)
        .put(&members, json!([{"id": ids[5]}, {"id": ids[4]}]))
        .await
        .result();
    check(vec![emails[4].clone(), emails[5].clone()]).await;
    // Another account's group is no group here.
    let elsewhere = w.server.account(&w.owner, "Elsewhere").await;
    owner
        .get(&format!(
            "/accounts/{elsewhere}/iam/user_groups/{group}/members"
        ))
        .await
        .expect_error(404, 1003);
}

/// Two group names that look alike are one name: case, and a joiner or a selector that
/// shows nothing, do not tell them apart.
#[tokio::test]
async fn group_names_that_look_alike_are_one_name() {
    let w = World::new().await;
    let owner = w.server.as_user(&w.owner);
    owner
        .post(&w.path(""), json!({"name": "\u{1F600}\u{1F600} Team"}))
        .await
        .result();
    for twin in [
        "\u{1F600}\u{200D}\u{1F600} team",
        "\u{1F600}\u{FE0F}\u{1F600} TEAM",
    ] {
        owner
            .post(&w.path(""), json!({"name": twin}))
            .await
            .expect_error(409, 1009);
    }
}
