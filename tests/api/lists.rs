//! Paging and ordering (DESIGN.md "Lists"): walking every page of a list yields each item
//! exactly once, in the requested order with the id as tie-break, and `result_info` is
//! complete and right on every page, including the empty page past the end.

use std::collections::{BTreeMap, HashSet};

use roster::domain::catalog;
use serde_json::{Value, json};

use crate::helpers::*;

const DNS: &str = "87e7860bc4c445faba075646dac38cca";
const BILLING: &str = "462131c6e56c4a3894166a1f9b47cf9e";

/// Fetches `path` page by page with `per_page` until the empty page past the end, checks
/// `result_info` on every page (that one included) and returns the items in order.
async fn walk(client: &Client, path: &str, per_page: usize) -> Vec<Value> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut items = Vec::new();
    let mut total = None;
    let mut page = 1;
    loop {
        let r = client
            .get(&format!("{path}{sep}page={page}&per_page={per_page}"))
            .await;
        let result = r.result().as_array().expect("a list").clone();
        let info = &r.body["result_info"];
        let total_count = info["total_count"].as_u64().expect("total_count") as usize;
        match total {
            None => total = Some(total_count),
            Some(t) => assert_eq!(t, total_count, "{path}: total_count changed on page {page}"),
        }
        let count = total_count
            .saturating_sub((page - 1) * per_page)
            .min(per_page);
        let expected = json!({
            "page": page,
            "per_page": per_page,
            "count": count,
            "total_count": total_count,
            "total_pages": total_count.div_ceil(per_page),
        });
        assert_eq!(info, &expected, "{path} page {page} per_page {per_page}");
        assert_eq!(
            result.len(),
            count,
            "{path} page {page} per_page {per_page}"
        );
        if result.is_empty() {
            assert!(
                page > total_count.div_ceil(per_page),
                "{path}: empty page {page} before the end"
            );
            break;
        }
        items.extend(result);
        page += 1;
    }
    assert_eq!(
        items.len(),
        total.unwrap_or_default(),
        "{path}: walked count"
    );
    let ids: HashSet<&str> = items
        .iter()
        .map(|i| i["id"].as_str().expect("id"))
        .collect();
    assert_eq!(
        ids.len(),
        items.len(),
        "{path} per_page {per_page}: an item appears twice"
    );
    items
}

fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

/// The sort key the rules give text: missing first, case does not matter.
fn text_key(value: Option<&str>) -> (bool, String) {
    (value.is_some(), value.unwrap_or_default().to_lowercase())
}

/// `items` (key, id) sorted by key then id, the whole order reversed for `desc`.
fn expected_order(mut items: Vec<((bool, String), String)>, desc: bool) -> Vec<String> {
    items.sort();
    if desc {
        items.reverse();
    }
    items.into_iter().map(|(_, id)| id).collect()
}

#[derive(Clone, Debug)]
struct Person {
    first: Option<String>,
    last: Option<String>,
    status: &'static str,
}

impl Person {
    /// The names the account sees: an invitee's profile shows once they have accepted.
    fn shown(&self) -> (Option<&str>, Option<&str>) {
        match self.status {
            "accepted" => (self.first.as_deref(), self.last.as_deref()),
            _ => (None, None),
        }
    }
}

/// Capitals outside ASCII ("Élodie") fold as Unicode says on both backends, so "éa" sorts
/// before "Élodie" as it does in Rust.
const FIRST_NAMES: [Option<&str>; 8] = [
    Some("Alice"),
    Some("alice"),
    Some("Bob"),
    None,
    Some("Zoë"),
    Some("carol"),
    Some("Élodie"),
    Some("éa"),
];
const LAST_NAMES: [Option<&str>; 5] = [
    Some("Smith"),
    Some("smith"),
    None,
    Some("Jones"),
    Some("Adams"),
];
const STATUSES: [&str; 3] = ["accepted", "pending", "rejected"];

/// An account with 260 members: the owner, 230 users and 20 invitees without a user from a
/// fixture, and 9 made through the API. Few distinct names and statuses, so that ties are
/// the rule. Returns the server, the owner, the account and every member by folded email.
async fn big_account() -> (TestServer, Creds, String, BTreeMap<String, Person>) {
    let server = TestServer::start().await;
    let owner = server.user("owner@example.com").await;
    let account = server.account(&owner, "Big").await;
    let mut people = BTreeMap::new();
    people.insert(
        "owner@example.com".to_string(),
        Person {
            first: Some("Test".into()),
            last: Some("User".into()),
            status: "accepted",
        },
    );

    let mut users = Vec::new();
    let mut members = Vec::new();
    for i in 0..230 {
        // Mixed case in the address: ordering by email ignores case.
        let email = if i % 4 == 0 {
            format!("M{i:03}@Example.com")
        } else {
            format!("m{i:03}@example.com")
        };
        let first = FIRST_NAMES[i % FIRST_NAMES.len()];
        let last = LAST_NAMES[(i / 2) % LAST_NAMES.len()];
        let status = STATUSES[(i / 3) % STATUSES.len()];
        users.push(json!({"email": email, "first_name": first, "last_name": last}));
        members.push(json!({"email": email, "status": status, "roles": ["DNS"]}));
        people.insert(
            email.to_lowercase(),
            Person {
                first: first.map(Into::into),
                last: last.map(Into::into),
                status,
            },
        );
    }
    for i in 0..20 {
        let email = format!("ghost{i:02}@example.com");
        let status = STATUSES[i % 2]; // accepted or pending
        members.push(json!({"email": email, "status": status, "roles": ["Billing"]}));
        people.insert(
            email,
            Person {
                first: None,
                last: None,
                status,
            },
        );
    }
    let fixture =
        json!({"users": users, "accounts": [{"id": account, "name": "Big", "members": members}]});
    let fixture = roster::fixture::parse(&fixture.to_string()).expect("fixture parses");
    roster::fixture::load(server.store.as_ref(), &fixture)
        .await
        .expect("fixture loads");

    // Through the API: invitations to existing users, to addresses without a user, and
    // members who accepted.
    for i in 0..4 {
        let email = format!("http{i}@example.com");
        let first = if i % 2 == 0 { "Alice" } else { "Bob" };
        server
            .user_with(&email, Some(first), Some("Smith"), true)
            .await;
        server.invite(&owner, &account, &email, &[DNS]).await;
        people.insert(
            email,
            Person {
                first: Some(first.into()),
                last: Some("Smith".into()),
                status: "pending",
            },
        );
    }
    for i in 0..3 {
        let email = format!("nouser{i}@example.com");
        server.invite(&owner, &account, &email, &[BILLING]).await;
        people.insert(
            email,
            Person {
                first: None,
                last: None,
                status: "pending",
            },
        );
    }
    for i in 0..2 {
        let email = format!("joined{i}@example.com");
        let who = server.user_with(&email, Some("alice"), None, true).await;
        server.add_member(&owner, &account, &who, &[DNS]).await;
        people.insert(
            email,
            Person {
                first: Some("alice".into()),
                last: None,
                status: "accepted",
            },
        );
    }
    assert_eq!(people.len(), 260);
    (server, owner, account, people)
}

/// Checks the members a walk returned against what was created, and returns email -> id.
fn check_members(items: &[Value], people: &BTreeMap<String, Person>) -> BTreeMap<String, String> {
    let mut by_email = BTreeMap::new();
    for m in items {
        let email = m["email"].as_str().unwrap().to_lowercase();
        let p = people
            .get(&email)
            .unwrap_or_else(|| panic!("unexpected member {m}"));
        assert_eq!(m["status"], p.status, "{m}");
        assert_eq!(m["user"]["first_name"].as_str(), p.shown().0, "{m}");
        assert_eq!(m["user"]["last_name"].as_str(), p.shown().1, "{m}");
        by_email.insert(email, m["id"].as_str().unwrap().to_string());
    }
    by_email
}

/// Walks the big account's members in `order`, both directions, 5, 7 and 50 per page.
async fn members_in_order(order: &str) {
    let (server, owner, account, people) = big_account().await;
    let client = server.as_user(&owner);
    let base = format!("/accounts/{account}/members");

    // Without `order` the list is in id order.
    let all = walk(&client, &base, 50).await;
    assert_eq!(all.len(), 260);
    let id_of = check_members(&all, &people);
    assert_eq!(id_of.len(), 260, "every member once");
    let mut by_id = ids(&all);
    by_id.sort();
    assert_eq!(ids(&all), by_id);

    let keyed: Vec<_> = people
        .iter()
        .map(|(email, p)| {
            let key = match order {
                "user.first_name" => text_key(p.shown().0),
                "user.last_name" => text_key(p.shown().1),
                "user.email" => text_key(Some(email)),
                "status" => text_key(Some(p.status)),
                other => panic!("no order {other}"),
            };
            (key, id_of[email].clone())
        })
        .collect();
    for direction in ["asc", "desc"] {
        let expected = expected_order(keyed.clone(), direction == "desc");
        for per_page in [5, 7, 50] {
            let path = format!("{base}?order={order}&direction={direction}");
            let items = walk(&client, &path, per_page).await;
            check_members(&items, &people);
            assert_eq!(ids(&items), expected, "{path} per_page={per_page}");
        }
    }
}

// One test per order, so that they run in parallel.
#[tokio::test]
async fn members_pages_cover_every_member_once_by_first_name() {
    members_in_order("user.first_name").await;
}

#[tokio::test]
async fn members_pages_cover_every_member_once_by_last_name() {
    members_in_order("user.last_name").await;
}

#[tokio::test]
async fn members_pages_cover_every_member_once_by_email() {
    members_in_order("user.email").await;
}

#[tokio::test]
async fn members_pages_cover_every_member_once_by_status() {
    members_in_order("status").await;
}

#[tokio::test]
async fn members_filters_combine_with_ordering_and_defaults_apply() {
    let (server, owner, account, people) = big_account().await;
    let client = server.as_user(&owner);
    let base = format!("/accounts/{account}/members");
    let all = walk(&client, &base, 50).await;
    let id_of = check_members(&all, &people);

    for status in STATUSES {
        let keyed: Vec<_> = people
            .iter()
            .filter(|(_, p)| p.status == status)
            .map(|(email, p)| (text_key(p.shown().1), id_of[email].clone()))
            .collect();
        assert!(keyed.len() > 20, "enough {status} members to page through");
        let expected = expected_order(keyed, true);
        let path = format!("{base}?status={status}&order=user.last_name&direction=desc");
        let items = walk(&client, &path, 7).await;
        assert!(items.iter().all(|m| m["status"] == status));
        assert_eq!(ids(&items), expected, "{path}");
    }

    // Defaults: page 1, 20 per page, id order.
    let r = client.get(&base).await;
    assert_eq!(
        r.body["result_info"],
        json!({"page": 1, "per_page": 20, "count": 20, "total_count": 260, "total_pages": 13})
    );
    assert_eq!(ids(r.result().as_array().unwrap()), ids(&all[..20]));
    let r = client.get(&format!("{base}?page=2")).await;
    assert_eq!(r.body["result_info"]["per_page"], 20);
    assert_eq!(ids(r.result().as_array().unwrap()), ids(&all[20..40]));
    let r = client.get(&format!("{base}?per_page=5")).await;
    assert_eq!(r.body["result_info"]["page"], 1);
    assert_eq!(ids(r.result().as_array().unwrap()), ids(&all[..5]));
    // SDKs send numbers as floats.
    let r = client.get(&format!("{base}?page=2.0&per_page=5.0")).await;
    assert_eq!(ids(r.result().as_array().unwrap()), ids(&all[5..10]));

    // Past the end: an empty page with the right counts, not an error.
    for (query, page, per_page, total) in [
        ("page=7&per_page=50", 7, 50, 260),
        ("page=14", 14, 20, 260),
        ("page=4294967295&per_page=50", 4_294_967_295u64, 50, 260),
        (
            "page=3&status=rejected&per_page=50",
            3,
            50,
            people.values().filter(|p| p.status == "rejected").count(),
        ),
    ] {
        let r = client.get(&format!("{base}?{query}")).await;
        assert_eq!(r.result(), &json!([]), "{query}");
        assert_eq!(
            r.body["result_info"],
            json!({"page": page, "per_page": per_page, "count": 0, "total_count": total,
                   "total_pages": total.div_ceil(per_page as usize)}),
            "{query}"
        );
    }
    // The last page is partial.
    let r = client.get(&format!("{base}?page=6&per_page=50")).await;
    assert_eq!(r.body["result_info"]["count"], 10);
    assert_eq!(ids(r.result().as_array().unwrap()), ids(&all[250..]));
}

#[tokio::test]
async fn members_status_filter_with_no_match_is_an_empty_first_page() {
    let server = TestServer::start().await;
    let owner = server.user("owner@example.com").await;
    let account = server.account(&owner, "Small").await;
    let r = server
        .as_user(&owner)
        .get(&format!("/accounts/{account}/members?status=rejected"))
        .await;
    assert_eq!(r.result(), &json!([]));
    assert_eq!(
        r.body["result_info"],
        json!({"page": 1, "per_page": 20, "count": 0, "total_count": 0, "total_pages": 0})
    );
}

/// One user with 65 memberships: 60 from a fixture (names repeating in different case,
/// every status), 2 accounts they made, and 3 invitations made through the API.
/// Returns the server, the user and account id -> (name, status) of each membership.
async fn many_memberships() -> (TestServer, Creds, BTreeMap<String, (String, &'static str)>) {
    let server = TestServer::start().await;
    let many = server.user("many@example.com").await;
    let mut expected = BTreeMap::new();
    let names = ["Acme", "acme", "Beta", "ACME", "Zulu", "Gamma", "beta"];
    let mut accounts = Vec::new();
    for i in 0..60 {
        let id = format!("{:032x}", 0xacc0_0000u64 + i as u64);
        let name = if i % 3 == 0 {
            names[i % names.len()].to_string()
        } else {
            format!("Shop {:02}", i % 11)
        };
        let status = STATUSES[(i / 2) % 3];
        accounts.push(json!({
            "id": id,
            "name": name,
            "members": [
                {"email": "many@example.com", "status": status, "roles": ["DNS"]},
                {"email": format!("other{i}@example.com"), "status": "accepted",
                 "roles": ["Super Administrator - All Privileges"]},
            ],
        }));
        expected.insert(id, (name, status));
    }
    let fixture = json!({"accounts": accounts}).to_string();
    let fixture = roster::fixture::parse(&fixture).expect("fixture parses");
    roster::fixture::load(server.store.as_ref(), &fixture)
        .await
        .expect("fixture loads");

    for name in ["Acme", "Own"] {
        let id = server.account(&many, name).await;
        expected.insert(id, (name.to_string(), "accepted"));
    }
    let boss = server.user("boss@example.com").await;
    for (name, answer) in [
        ("acme", None),
        ("Boss Co", Some("accepted")),
        ("Shop 03", Some("rejected")),
    ] {
        let account = server.account(&boss, name).await;
        let id = server
            .invite(&boss, &account, "MANY@example.com", &[DNS])
            .await;
        if let Some(status) = answer {
            server
                .as_user(&many)
                .put(&format!("/memberships/{id}"), json!({"status": status}))
                .await
                .result();
        }
        expected.insert(account, (name.to_string(), answer.unwrap_or("pending")));
    }
    // Memberships of other users never show.
    let stranger = server.user("stranger@example.com").await;
    server.account(&stranger, "Acme").await;
    assert_eq!(expected.len(), 65);
    (server, many, expected)
}

fn check_memberships(items: &[Value], expected: &BTreeMap<String, (String, &'static str)>) {
    for m in items {
        let account = m["account"]["id"].as_str().unwrap();
        let (name, status) = expected
            .get(account)
            .unwrap_or_else(|| panic!("unexpected membership {m}"));
        assert_eq!(m["account"]["name"], name.as_str(), "{m}");
        assert_eq!(m["status"], *status, "{m}");
    }
}

#[tokio::test]
async fn memberships_pages_cover_every_membership_once_in_every_order() {
    let (server, many, expected) = many_memberships().await;
    let client = server.as_user(&many);
    let all = walk(&client, "/memberships", 50).await;
    assert_eq!(all.len(), 65);
    check_memberships(&all, &expected);
    let accounts: HashSet<&str> = all
        .iter()
        .map(|m| m["account"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(accounts.len(), 65);
    let mut by_id = ids(&all);
    by_id.sort();
    assert_eq!(ids(&all), by_id, "the default order is id");

    for order in ["id", "account.name", "status"] {
        let keyed: Vec<_> = all
            .iter()
            .map(|m| {
                let id = m["id"].as_str().unwrap().to_string();
                let (name, status) = &expected[m["account"]["id"].as_str().unwrap()];
                let key = match order {
                    "id" => text_key(Some(&id)),
                    "account.name" => text_key(Some(name)),
                    _ => text_key(Some(status)),
                };
                (key, id)
            })
            .collect();
        for direction in ["asc", "desc"] {
            let want = expected_order(keyed.clone(), direction == "desc");
            for per_page in [5, 7, 50] {
                let path = format!("/memberships?order={order}&direction={direction}");
                let items = walk(&client, &path, per_page).await;
                check_memberships(&items, &expected);
                assert_eq!(ids(&items), want, "{path} per_page={per_page}");
            }
        }
    }
}

#[tokio::test]
async fn memberships_filters_combine_with_and() {
    let (server, many, expected) = many_memberships().await;
    let client = server.as_user(&many);
    let matching = |status: Option<&str>, names: &[&str]| -> HashSet<String> {
        expected
            .iter()
            .filter(|(_, (n, s))| {
                status.is_none_or(|st| st == *s)
                    && names.iter().all(|w| w.to_lowercase() == n.to_lowercase())
            })
            .map(|(id, _)| id.clone())
            .collect()
    };
    let accounts_of = |items: &[Value]| -> HashSet<String> {
        items
            .iter()
            .map(|m| m["account"]["id"].as_str().unwrap().to_string())
            .collect()
    };
    let cases: Vec<(&str, Option<&str>, Vec<&str>)> = vec![
        ("status=pending", Some("pending"), vec![]),
        ("status=rejected", Some("rejected"), vec![]),
        ("status=accepted", Some("accepted"), vec![]),
        ("account.name=acme", None, vec!["acme"]),
        ("name=ACME", None, vec!["ACME"]),
        ("account.name=Acme&name=acme", None, vec!["Acme", "acme"]),
        ("account.name=Acme&name=Beta", None, vec!["Acme", "Beta"]),
        (
            "status=accepted&account.name=acme",
            Some("accepted"),
            vec!["acme"],
        ),
        ("status=pending&name=acme", Some("pending"), vec!["acme"]),
        (
            "status=rejected&account.name=Shop%2003&name=shop+03",
            Some("rejected"),
            vec!["Shop 03"],
        ),
        (
            "status=accepted&account.name=Shop%2003&name=Acme",
            Some("accepted"),
            vec!["Shop 03", "Acme"],
        ),
        ("account.name=Nobody", None, vec!["Nobody"]),
    ];
    for (query, status, names) in cases {
        let want = matching(status, &names);
        let items = walk(
            &client,
            &format!("/memberships?{query}&order=account.name"),
            5,
        )
        .await;
        check_memberships(&items, &expected);
        assert_eq!(accounts_of(&items), want, "{query}");
        if !matches!(
            query,
            "account.name=Acme&name=Beta"
                | "account.name=Nobody"
                | "status=accepted&account.name=Shop%2003&name=Acme"
        ) {
            assert!(!want.is_empty(), "{query} should match something");
        }
    }
    // Past the end of a filtered list.
    let r = client
        .get("/memberships?status=pending&page=9&per_page=5")
        .await;
    assert_eq!(r.result(), &json!([]));
    let pending = matching(Some("pending"), &[]).len();
    assert_eq!(
        r.body["result_info"],
        json!({"page": 9, "per_page": 5, "count": 0, "total_count": pending, "total_pages": pending.div_ceil(5)})
    );
    // Defaults.
    let r = client.get("/memberships").await;
    assert_eq!(
        r.body["result_info"],
        json!({"page": 1, "per_page": 20, "count": 20, "total_count": 65, "total_pages": 4})
    );
}

#[tokio::test]
async fn roles_list_pages_through_the_catalog_and_the_accounts_own_roles() {
    let server = TestServer::start().await;
    let owner = server.user("owner@example.com").await;
    let account = server.account(&owner, "Roles Co").await;
    let custom: Vec<String> = (1..=3)
        .map(|i| format!("{:032x}", 0xe0e0_0000u64 + i))
        .collect();
    let roles: Vec<Value> = custom
        .iter()
        .enumerate()
        .map(|(i, id)| {
            json!({"id": id, "name": format!("Custom {i}"), "description": "mine",
                   "permissions": {"organization": {"read": true}}})
        })
        .collect();
    let fixture =
        json!({"accounts": [{"id": account, "name": "Roles Co", "roles": roles}]}).to_string();
    roster::fixture::load(
        server.store.as_ref(),
        &roster::fixture::parse(&fixture).unwrap(),
    )
    .await
    .unwrap();

    let client = server.as_user(&owner);
    let path = format!("/accounts/{account}/roles");
    let builtin: Vec<String> = catalog::builtin_roles()
        .iter()
        .map(|r| r.id.to_string())
        .collect();
    let want: Vec<String> = builtin.iter().chain(&custom).cloned().collect();
    for per_page in [5, 7, 50] {
        let items = walk(&client, &path, per_page).await;
        assert_eq!(ids(&items), want, "per_page={per_page}");
        assert_eq!(items[0]["name"], "Super Administrator - All Privileges");
    }
    let r = client.get(&path).await;
    assert_eq!(
        r.body["result_info"],
        json!({"page": 1, "per_page": 20, "count": want.len(), "total_count": want.len(), "total_pages": 1})
    );
    // Another account does not see these roles.
    let other = server.account(&owner, "Other").await;
    let items = walk(&client, &format!("/accounts/{other}/roles"), 50).await;
    assert_eq!(ids(&items), builtin);
}

#[tokio::test]
async fn permission_groups_list_pages_and_filters() {
    let server = TestServer::start().await;
    let owner = server.user("owner@example.com").await;
    let account = server.account(&owner, "Groups Co").await;
    let client = server.as_user(&owner);
    let base = format!("/accounts/{account}/iam/permission_groups");
    let groups = catalog::permission_groups();
    let mut keyed: Vec<_> = groups
        .iter()
        .map(|g| (text_key(Some(&g.name)), g.id.to_string()))
        .collect();
    keyed.sort();
    let want: Vec<String> = keyed.into_iter().map(|(_, id)| id).collect();
    for per_page in [5, 7, 50] {
        let items = walk(&client, &base, per_page).await;
        assert_eq!(ids(&items), want, "per_page={per_page}");
    }

    let zone_read = "c8fed203ed3043cba015a93ad1616f1f";
    let dns_write = "c04f21e7c9484120a60314ba1d079cec";
    let cases = [
        (format!("id={zone_read}"), vec![zone_read]),
        (format!("id={}", zone_read.to_uppercase()), vec![zone_read]),
        ("name=Zone%20Read".to_string(), vec![zone_read]),
        ("name=zone+read".to_string(), vec![zone_read]),
        ("label=zone_read".to_string(), vec![zone_read]),
        (
            "name=DNS+Write&label=dns_write".to_string(),
            vec![dns_write],
        ),
        (
            format!("id={zone_read}&name=Zone+Read&label=zone_read"),
            vec![zone_read],
        ),
        (format!("id={zone_read}&name=DNS+Write"), vec![]),
        ("name=Zone+Read&label=dns_write".to_string(), vec![]),
        (format!("id={}", "0".repeat(32)), vec![]),
        ("name=Zone".to_string(), vec![]),
    ];
    for (query, want) in cases {
        let items = walk(&client, &format!("{base}?{query}"), 5).await;
        assert_eq!(ids(&items), want, "{query}");
    }
    let r = client.get(&base).await;
    assert_eq!(r.body["result_info"]["per_page"], 20);
    assert_eq!(r.body["result_info"]["count"], groups.len().min(20));
    assert_eq!(r.body["result_info"]["total_count"], groups.len());
}

#[tokio::test]
async fn resource_groups_list_pages_and_filters() {
    let server = TestServer::start().await;
    let owner = server.user("owner@example.com").await;
    let account = server.account(&owner, "Resources Co").await;
    let client = server.as_user(&owner);
    let base = format!("/accounts/{account}/iam/resource_groups");
    let mut keyed = Vec::new();
    for i in 0..13 {
        let name = if i % 2 == 0 {
            format!("group {:02}", 12 - i)
        } else {
            format!("Group {:02}", 12 - i)
        };
        let body = json!({
            "name": name,
            "scope": {
                "key": format!("com.cloudflare.api.account.{account}"),
                "objects": [{"key": format!("com.cloudflare.api.account.zone.{:032x}", i)}],
            },
        });
        let r = client.post(&base, body).await;
        keyed.push((
            text_key(Some(&name)),
            r.result()["id"].as_str().unwrap().to_string(),
        ));
    }
    // Another account's groups never show.
    let other = server.account(&owner, "Other").await;
    client
        .post(
            &format!("/accounts/{other}/iam/resource_groups"),
            json!({"name": "group 00", "scope": {"key": format!("com.cloudflare.api.account.{other}"),
                   "objects": [{"key": "com.cloudflare.api.account.zone.1"}]}}),
        )
        .await
        .result();
    let want = expected_order(keyed.clone(), false);
    for per_page in [5, 7, 50] {
        let items = walk(&client, &base, per_page).await;
        assert_eq!(ids(&items), want, "per_page={per_page}");
    }
    let (_, some) = &keyed[3];
    let items = walk(&client, &format!("{base}?id={some}"), 5).await;
    assert_eq!(ids(&items), vec![some.clone()]);
    let items = walk(&client, &format!("{base}?name=GROUP+03"), 5).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["name"], "Group 03");
    let items = walk(&client, &format!("{base}?name=Group+03&id={some}"), 5).await;
    assert!(items.is_empty(), "id and name combine with AND");
    let r = client.get(&format!("{base}?page=2")).await;
    assert_eq!(
        r.body["result_info"],
        json!({"page": 2, "per_page": 20, "count": 0, "total_count": 13, "total_pages": 1})
    );
}

/// Today's SDKs read the resource groups as one page and send no paging parameters
/// (issue 25: an account with 23 groups showed 20): without them the list is whole, one
/// page holding every group; with either of them it pages as the 2024 schema's did.
#[tokio::test]
async fn resource_groups_come_whole_without_paging_parameters() {
    let server = TestServer::start().await;
    let owner = server.user("owner@example.com").await;
    let account = server.account(&owner, "Many Groups").await;
    let client = server.as_user(&owner);
    let base = format!("/accounts/{account}/iam/resource_groups");
    let empty = client.get(&base).await;
    assert_eq!(empty.result(), &json!([]));
    assert_eq!(
        empty.body["result_info"],
        json!({"page": 1, "per_page": 0, "count": 0, "total_count": 0, "total_pages": 0})
    );
    for i in 0..23 {
        server
            .whole_account_group(&owner, &account, Some(&format!("group {i:02}")))
            .await;
    }
    let whole = client.get(&base).await;
    assert_eq!(whole.result().as_array().unwrap().len(), 23);
    assert_eq!(
        whole.body["result_info"],
        json!({"page": 1, "per_page": 23, "count": 23, "total_count": 23, "total_pages": 1})
    );
    assert_eq!(whole.result()[22]["name"], "group 22", "by name");
    // The SDKs' filters keep it whole.
    let named = client.get(&format!("{base}?name=GROUP+07")).await;
    assert_eq!(named.result().as_array().unwrap().len(), 1);
    assert_eq!(named.body["result_info"]["per_page"], 1);
    // Paging parameters page, each alone too, with the schema's default of 20.
    for (query, count) in [("page=1", 20), ("page=2", 3), ("per_page=5&page=5", 3)] {
        let paged = client.get(&format!("{base}?{query}")).await;
        assert_eq!(paged.result().as_array().unwrap().len(), count, "{query}");
        assert_eq!(paged.body["result_info"]["total_count"], 23, "{query}");
    }
    assert_eq!(
        client.get(&format!("{base}?per_page=20")).await.body["result_info"]["total_pages"],
        2
    );
}

#[tokio::test]
async fn accounts_list_pages_orders_and_filters_by_name() {
    let server = TestServer::start().await;
    let me = server.user("me@example.com").await;
    let mut keyed = Vec::new();
    let names = [
        "Shop", "shop", "Zeta", "SHOP", "alpha", "Shop", "Mid", "shop", "Beta", "Shop", "Shop",
        "Omega",
    ];
    for name in names {
        let id = server.account(&me, name).await;
        keyed.push((text_key(Some(name)), id));
    }
    // Accepted elsewhere: listed; pending or rejected: not.
    let boss = server.user("boss@example.com").await;
    for (name, answer) in [
        ("Shop", Some("accepted")),
        ("Shop", None),
        ("Shop", Some("rejected")),
    ] {
        let account = server.account(&boss, name).await;
        let id = server
            .invite(&boss, &account, "me@example.com", &[DNS])
            .await;
        if let Some(status) = answer {
            server
                .as_user(&me)
                .put(&format!("/memberships/{id}"), json!({"status": status}))
                .await
                .result();
            if status == "accepted" {
                keyed.push((text_key(Some(name)), account));
            }
        }
    }
    let client = server.as_user(&me);
    for direction in ["asc", "desc"] {
        let want = expected_order(keyed.clone(), direction == "desc");
        for per_page in [5, 7, 50] {
            let items = walk(
                &client,
                &format!("/accounts?direction={direction}"),
                per_page,
            )
            .await;
            assert_eq!(ids(&items), want, "{direction} per_page={per_page}");
        }
    }
    let shops: Vec<_> = keyed
        .iter()
        .filter(|(k, _)| k.1 == "shop")
        .cloned()
        .collect();
    assert_eq!(shops.len(), 8);
    for (query, desc) in [("name=shop", false), ("name=SHOP&direction=desc", true)] {
        let want = expected_order(shops.clone(), desc);
        let items = walk(&client, &format!("/accounts?{query}"), 5).await;
        assert_eq!(ids(&items), want, "{query}");
    }
    let items = walk(&client, "/accounts?name=sho", 5).await;
    assert!(items.is_empty(), "the name filter matches whole names");
    let r = client.get("/accounts").await;
    assert_eq!(
        r.body["result_info"],
        json!({"page": 1, "per_page": 20, "count": 13, "total_count": 13, "total_pages": 1})
    );
    let r = client.get("/accounts?page=2&per_page=7&name=shop").await;
    assert_eq!(
        r.body["result_info"],
        json!({"page": 2, "per_page": 7, "count": 1, "total_count": 8, "total_pages": 2})
    );
    let r = client.get("/accounts?page=3&per_page=7&name=shop").await;
    assert_eq!(r.result(), &json!([]));
    assert_eq!(
        r.body["result_info"],
        json!({"page": 3, "per_page": 7, "count": 0, "total_count": 8, "total_pages": 2})
    );
}

/// A members page's `total_count` follows every kind of change: invitations, answers in
/// both directions, removals, an account's deletion, a reset.
#[tokio::test]
async fn member_totals_follow_every_change() {
    let server = TestServer::emulator().await;
    let owner = server.user("owner@example.com").await;
    let account = server.account(&owner, "Totals").await;
    let admin = server.as_user(&owner);
    let members = format!("/accounts/{account}/members");
    let mut people = Vec::new();
    for i in 0..5 {
        let who = server.user(&format!("p{i}@example.com")).await;
        let id = server.invite(&owner, &account, &who.email, &[DNS]).await;
        people.push((who, id));
    }
    for (who, id) in &people[..2] {
        server
            .as_user(who)
            .put(&format!("/memberships/{id}"), json!({"status": "accepted"}))
            .await
            .result();
    }
    server
        .as_user(&people[2].0)
        .put(
            &format!("/memberships/{}", people[2].1),
            json!({"status": "rejected"}),
        )
        .await
        .result();
    admin
        .delete(&format!("{members}/{}", people[3].1))
        .await
        .result();
    for (status, expected) in [
        ("", 5),
        ("?status=accepted", 3),
        ("?status=pending", 1),
        ("?status=rejected", 1),
    ] {
        let path = format!("{members}{status}");
        let items = walk(&admin, &path, 5).await;
        assert_eq!(items.len(), expected, "{path}");
    }
    // Gone with the account: a new account starts at its founder alone.
    admin.delete(&format!("/accounts/{account}")).await.result();
    let again = server.account(&owner, "Totals again").await;
    let fresh = walk(&admin, &format!("/accounts/{again}/members"), 5).await;
    assert_eq!(fresh.len(), 1);
    // A reset back to the demo counts the demo's members.
    let reset = server.raw(&[]).post("/_roster/reset", json!({})).await;
    assert_eq!(reset.status, 200);
    let demo = server.as_user(&Creds::demo());
    let all = walk(&demo, &format!("/accounts/{DEMO_ACCOUNT}/members"), 5).await;
    let pending = walk(
        &demo,
        &format!("/accounts/{DEMO_ACCOUNT}/members?status=pending"),
        5,
    )
    .await;
    assert!(all.len() > pending.len() && !pending.is_empty());
}
