//! Two `roster serve` processes on one database: SQLite's file, or PostgreSQL when
//! `ROSTER_TEST_DATABASE_URL` is set (`.ci/run` runs both).

mod common;

use std::process::Command;

use serde_json::{Value, json};
use tokio::task::JoinSet;

use common::{Server, TestDatabase, stdout};

const BIN: &str = env!("CARGO_BIN_EXE_roster");
const SUPER_ADMIN: &str = "795df1c379e2469e89ab15cca71e91a0";
const READ_ONLY: &str = "25a6523fbf0a4cdaa8af77b778c7dd19";
/// The demo user is no Super Administrator: what they give is an ordinary role.
const DNS: &str = "87e7860bc4c445faba075646dac38cca";
const ROUNDS: usize = 24;

#[derive(Clone)]
struct Caller {
    http: reqwest::Client,
    email: String,
    key: String,
}

impl Caller {
    async fn send(
        &self,
        base: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method.clone(), format!("{base}{path}"))
            .header("X-Auth-Email", &self.email)
            .header("X-Auth-Key", &self.key);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.expect("request sent");
        let status = res.status().as_u16();
        let body: Value = res.json().await.expect("JSON body");
        assert!(status < 500, "{method} {path}: {status} {body}");
        (status, body)
    }
}

fn key(n: usize) -> String {
    format!("{n:037x}")
}

/// The API key of round `r`'s user `n` (0: a, 1: b, 2: invitee).
fn user_key(r: usize, n: usize) -> String {
    key(1000 * (r + 1) + n)
}

fn id(prefix: u8, n: usize) -> String {
    format!("{prefix:02x}{n:030x}")
}

/// Per round: an account with exactly two Super Administrators, an observer with read-only
/// rights, and an invitee with a pending invitation.
fn fixture() -> Value {
    let mut users = vec![
        json!({"email": "observer@example.com", "api_key": key(1), "two_factor_authentication_enabled": true}),
    ];
    let mut accounts = Vec::new();
    for r in 0..ROUNDS {
        for (n, who) in ["a", "b", "invitee"].iter().enumerate() {
            users.push(json!({"email": format!("{who}{r}@example.com"), "api_key": user_key(r, n), "two_factor_authentication_enabled": true}));
        }
        accounts.push(json!({
            "id": id(0xac, r),
            "name": format!("Race {r}"),
            "members": [
                {"id": id(0xa0, r), "email": format!("a{r}@example.com"), "roles": [SUPER_ADMIN]},
                {"id": id(0xb0, r), "email": format!("b{r}@example.com"), "roles": [SUPER_ADMIN]},
                {"email": "observer@example.com", "roles": [READ_ONLY]},
                {"id": id(0xc0, r), "email": format!("invitee{r}@example.com"), "status": "pending", "roles": [READ_ONLY]},
            ],
        }));
    }
    json!({"users": users, "accounts": accounts})
}

/// Loads `fixture` with `roster seed`.
fn seed(db: &TestDatabase, fixture: &Value) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fixture.json");
    std::fs::write(&file, fixture.to_string()).unwrap();
    let seeded = Command::new(BIN)
        .args(db.args())
        .arg("seed")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        seeded.status.success(),
        "{}",
        String::from_utf8_lossy(&seeded.stderr)
    );
}

fn caller(http: &reqwest::Client, email: String, key: String) -> Caller {
    Caller {
        http: http.clone(),
        email,
        key,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_keep_every_invariant_under_races() {
    // On SQLite too: two processes share the file's one write lock.
    let db = TestDatabase::new();
    seed(&db, &fixture());

    // Both processes migrate the same database at start.
    let (one, two) = (Server::start(&db, &[]), Server::start(&db, &[]));
    let bases = [one.base_url.clone(), two.base_url.clone()];
    let http = reqwest::Client::new();
    let observer = caller(&http, "observer@example.com".into(), key(1));

    let mut set = JoinSet::new();
    let mut requests = 0;
    for r in 0..ROUNDS {
        let account = id(0xac, r);
        let a = caller(&http, format!("a{r}@example.com"), user_key(r, 0));
        let b = caller(&http, format!("b{r}@example.com"), user_key(r, 1));
        let invitee = caller(&http, format!("invitee{r}@example.com"), user_key(r, 2));
        let (a_id, b_id, inv_id) = (id(0xa0, r), id(0xb0, r), id(0xc0, r));
        let p = |n: usize| bases[(r + n) % 2].clone();
        let del = reqwest::Method::DELETE;
        let put = reqwest::Method::PUT;
        let post = reqwest::Method::POST;
        // The last two Super Administrators remove, demote and leave, all at once.
        let race: Vec<(Caller, String, reqwest::Method, String, Option<Value>)> = vec![
            (
                a.clone(),
                p(0),
                del.clone(),
                format!("/accounts/{account}/members/{b_id}"),
                None,
            ),
            (
                b.clone(),
                p(1),
                del.clone(),
                format!("/accounts/{account}/members/{a_id}"),
                None,
            ),
            (
                a.clone(),
                p(1),
                put.clone(),
                format!("/accounts/{account}/members/{a_id}"),
                Some(json!({"roles": [READ_ONLY]})),
            ),
            (
                b.clone(),
                p(0),
                del.clone(),
                format!("/memberships/{b_id}"),
                None,
            ),
            // The same email invited twice, through both processes.
            (
                a.clone(),
                p(0),
                post.clone(),
                format!("/accounts/{account}/members"),
                Some(json!({"email": format!("twice{r}@example.com"), "roles": [READ_ONLY]})),
            ),
            (
                b.clone(),
                p(1),
                post.clone(),
                format!("/accounts/{account}/members"),
                Some(json!({"email": format!("TWICE{r}@example.com"), "roles": [READ_ONLY]})),
            ),
            // One membership accepted and deleted at the same moment.
            (
                invitee.clone(),
                p(0),
                put.clone(),
                format!("/memberships/{inv_id}"),
                Some(json!({"status": "accepted"})),
            ),
            (
                invitee.clone(),
                p(1),
                del.clone(),
                format!("/memberships/{inv_id}"),
                None,
            ),
            (
                a.clone(),
                p(1),
                del.clone(),
                format!("/accounts/{account}/members/{inv_id}"),
                None,
            ),
        ];
        for (who, base, method, path, body) in race {
            requests += 1;
            set.spawn(async move {
                let (status, body) = who.send(&base, method.clone(), &path, body).await;
                (method, path, status, body)
            });
        }
    }
    let mut invites_won: std::collections::HashMap<String, usize> = Default::default();
    let mut succeeded = Vec::new();
    while let Some(done) = set.join_next().await {
        let (method, path, status, body) = done.expect("request task");
        assert!(
            matches!(status, 200 | 403 | 404 | 409),
            "{method} {path}: {status} {body}"
        );
        if method == reqwest::Method::POST && status == 200 {
            *invites_won.entry(path.clone()).or_default() += 1;
        }
        if status == 200 && method != reqwest::Method::POST {
            succeeded.push((method, path));
        }
    }
    assert!(requests >= 200, "a few hundred requests: {requests}");

    for r in 0..ROUNDS {
        let account = id(0xac, r);
        let path = format!("/accounts/{account}/members?per_page=50");
        let (s1, via_one) = observer
            .send(&bases[0], reqwest::Method::GET, &path, None)
            .await;
        let (s2, via_two) = observer
            .send(&bases[1], reqwest::Method::GET, &path, None)
            .await;
        assert_eq!((s1, s2), (200, 200));
        assert_eq!(
            via_one["result"], via_two["result"],
            "both processes see the same members"
        );
        let members = via_one["result"].as_array().unwrap();
        // The kept count went through every racing write.
        assert_eq!(
            via_one["result_info"]["total_count"].as_u64(),
            Some(members.len() as u64),
            "round {r}: total_count is the members listed"
        );
        let admins = members
            .iter()
            .filter(|m| {
                m["status"] == "accepted"
                    && m["roles"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|role| role["id"] == SUPER_ADMIN)
            })
            .count();
        assert!(
            admins >= 1,
            "round {r}: the account lost its last administrator: {members:?}"
        );
        let twice = members
            .iter()
            .filter(|m| {
                m["email"]
                    .as_str()
                    .unwrap()
                    .eq_ignore_ascii_case(&format!("twice{r}@example.com"))
            })
            .count();
        assert_eq!(twice, 1, "round {r}: one live membership per email");
        assert_eq!(
            invites_won.get(&format!("/accounts/{account}/members")),
            Some(&1),
            "round {r}: exactly one invite won"
        );
        // Every successful removal and demotion shows, through either process.
        for (method, path) in succeeded
            .iter()
            .filter(|(_, p)| p.contains(&account) || p.starts_with("/memberships/"))
        {
            let target = path.rsplit('/').next().unwrap();
            let member = members.iter().find(|m| m["id"] == target);
            if *method == reqwest::Method::DELETE {
                assert!(
                    member.is_none(),
                    "round {r}: {path} succeeded but the member is still there"
                );
            } else if let (true, Some(member)) = (path.contains("/members/"), member) {
                // A demotion stands unless a later removal took the member away.
                assert_eq!(
                    member["roles"][0]["id"], READ_ONLY,
                    "round {r}: {path} succeeded but did not stick"
                );
            }
        }
        let invitee = members.iter().find(|m| m["id"] == id(0xc0, r));
        if let Some(m) = invitee {
            assert_eq!(
                m["status"], "accepted",
                "round {r}: a surviving invitation was accepted"
            );
        }
    }
    // The servers stop before the database is dropped.
    drop((one, two));
}

/// One administrator floods an account with invitations through one process while another
/// changes a member's roles through the other: every change is made, none is refused as
/// contention (429). Writers to one account take turns at its row lock (PostgreSQL) or the
/// file's write lock (SQLite); none is aborted for touching what another touched.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_writer_is_not_starved_by_another_process_flooding_the_account() {
    let db = TestDatabase::new();
    let r = 0;
    seed(&db, &fixture());
    let (one, two) = (
        Server::start(&db, &["--rate-limit", "0"]),
        Server::start(&db, &["--rate-limit", "0"]),
    );
    let http = reqwest::Client::new();
    let a = caller(&http, format!("a{r}@example.com"), user_key(r, 0));
    let b = caller(&http, format!("b{r}@example.com"), user_key(r, 1));
    let account = id(0xac, r);

    let mut flood = JoinSet::new();
    for lane in 0..16 {
        let (a, base, account) = (a.clone(), one.base_url.clone(), account.clone());
        flood.spawn(async move {
            for n in 0..25 {
                let body =
                    json!({"email": format!("flood{lane}-{n}@example.com"), "roles": [READ_ONLY]});
                let path = format!("/accounts/{account}/members");
                let (status, body) = a
                    .send(&base, reqwest::Method::POST, &path, Some(body))
                    .await;
                assert_eq!(status, 200, "{body}");
            }
        });
    }
    let invitee = id(0xc0, r);
    for n in 0..20 {
        let role = if n % 2 == 0 { SUPER_ADMIN } else { READ_ONLY };
        let path = format!("/accounts/{account}/members/{invitee}");
        let (status, body) = b
            .send(
                &two.base_url,
                reqwest::Method::PUT,
                &path,
                Some(json!({"roles": [role]})),
            )
            .await;
        assert_eq!(status, 200, "change {n} through the other process: {body}");
        assert_eq!(body["result"]["roles"][0]["id"], role);
    }
    while let Some(done) = flood.join_next().await {
        done.expect("flood lane");
    }
    // Every change answered 200 is in the account's audit log once, with who made it,
    // whichever process wrote it.
    let path =
        format!("/accounts/{account}/logs/audit?since=2000-01-01&before=2999-01-01&limit=1000");
    let (status, log) = a
        .send(&two.base_url, reqwest::Method::GET, &path, None)
        .await;
    assert_eq!(status, 200, "{log}");
    let entries = log["result"].as_array().expect("entries");
    let count = |action: &str, email: &str| {
        entries
            .iter()
            .filter(|e| {
                e["action"]["type"] == action
                    && e["resource"]["type"] == "account.member"
                    && e["actor"]["email"] == email
            })
            .count()
    };
    assert_eq!(count("create", &format!("a{r}@example.com")), 16 * 25);
    assert_eq!(count("update", &format!("b{r}@example.com")), 20);
    drop((one, two));
}

/// A token disabled and a profile changed through one process hold in the other too: at
/// once on PostgreSQL (the change is announced to every process), and on SQLite once the
/// other's cached copy is older than its `--credential-cache` seconds.
#[test]
fn credentials_changed_through_one_process_apply_in_the_other() {
    let db = TestDatabase::new();
    let key = stdout(&common::roster(
        &db,
        &["user", "create", "--email", "u@example.com"],
    ));
    let token = stdout(&common::roster(
        &db,
        &[
            "token",
            "create",
            "--email",
            "u@example.com",
            "--permission-group",
            "User Details Read",
        ],
    ));
    // On PostgreSQL the second process would trust what it verified for ten minutes if
    // nobody told it otherwise.
    let ttl = if db.is_postgres() { "600" } else { "2" };
    let (a, b) = (
        Server::start(&db, &[]),
        Server::start(&db, &["--credential-cache", ttl]),
    );
    let bearer = format!("Bearer {token}");
    let with_token = [("Authorization", bearer.as_str())];
    let with_key = [
        ("X-Auth-Email", "u@example.com"),
        ("X-Auth-Key", key.as_str()),
    ];
    assert_eq!(b.get("/user", &with_token).0, 200);
    assert_eq!(
        b.get("/user", &with_key).1["result"]["first_name"],
        Value::Null
    );

    let (_, tokens) = a.get("/user/tokens", &with_key);
    let listed = &tokens["result"][0];
    let disable =
        json!({"name": listed["name"], "policies": listed["policies"], "status": "disabled"});
    let path = format!("/user/tokens/{}", listed["id"].as_str().unwrap());
    let (status, body) = a.send("PUT", &path, &with_key, Some(&disable.to_string()));
    assert_eq!(status, 200, "{body}");
    let rename = json!({"first_name": "Una"}).to_string();
    let (status, body) = a.send("PATCH", "/user", &with_key, Some(&rename));
    assert_eq!(status, 200, "{body}");

    let started = std::time::Instant::now();
    loop {
        let refused = b.get("/user", &with_token).0 == 403;
        let renamed = b.get("/user", &with_key).1["result"]["first_name"] == "Una";
        if refused && renamed {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "the other process still answers from its old copy: token refused {refused}, renamed {renamed}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// What one process changes in a user's memberships, the other shows on the very next
/// request, although it has just answered the same requests (SQLite answers repeated
/// reads from a cache that any commit to the file, from any process, invalidates).
#[test]
fn memberships_changed_through_one_process_show_at_once_in_the_other() {
    let db = TestDatabase::new();
    let (admin, member) = (key(1), key(2));
    let (staying, leaving, invited) = (id(0xa1, 1), id(0xa2, 2), id(0xa3, 3));
    let accounts: Vec<Value> = [&staying, &leaving, &invited]
        .into_iter()
        .enumerate()
        .map(|(n, membership)| {
            json!({
                "id": id(0xac, n),
                "name": format!("Account {n}"),
                "members": [
                    {"email": "admin@example.com", "roles": [SUPER_ADMIN]},
                    {
                        "id": membership,
                        "email": "u@example.com",
                        "roles": [READ_ONLY],
                        "status": if membership == &invited { "pending" } else { "accepted" },
                    },
                ],
            })
        })
        .collect();
    let fixture = json!({
        "users": [
            {"email": "admin@example.com", "api_key": admin},
            {"email": "u@example.com", "api_key": member},
        ],
        "accounts": accounts,
    });
    seed(&db, &fixture);
    let (a, b) = (Server::start(&db, &[]), Server::start(&db, &[]));
    let with_key = [
        ("X-Auth-Email", "u@example.com"),
        ("X-Auth-Key", member.as_str()),
    ];
    let statuses = |server: &Server| {
        let (status, body) = server.get("/memberships?order=id", &with_key);
        assert_eq!(status, 200, "{body}");
        body["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["id"].as_str().unwrap().to_string(), m["status"].clone()))
            .collect::<Vec<_>>()
    };
    for _ in 0..3 {
        assert_eq!(b.get(&format!("/memberships/{leaving}"), &with_key).0, 200);
        assert_eq!(statuses(&b).len(), 3);
    }

    let (status, body) = a.send(
        "DELETE",
        &format!("/memberships/{leaving}"),
        &with_key,
        None,
    );
    assert_eq!(status, 200, "{body}");
    let accept = json!({"status": "accepted"}).to_string();
    let path = format!("/memberships/{invited}");
    let (status, body) = a.send("PUT", &path, &with_key, Some(&accept));
    assert_eq!(status, 200, "{body}");

    let (status, body) = b.get(&format!("/memberships/{leaving}"), &with_key);
    assert_eq!(
        status, 404,
        "a membership deleted elsewhere is gone at once: {body}"
    );
    assert_eq!(b.get(&path, &with_key).1["result"]["status"], "accepted");
    assert_eq!(
        statuses(&b),
        [
            (staying.clone(), json!("accepted")),
            (invited.clone(), json!("accepted")),
        ]
    );
}

/// A reset through one process replaces the data every process serves: the other answers
/// from the seeded state at once for memberships, and stops accepting a key made since
/// (a credential it had verified and kept) within its cache's notice (PostgreSQL tells it;
/// SQLite's copy expires).
#[test]
fn a_reset_through_one_process_is_what_the_other_serves() {
    let db = TestDatabase::new();
    let a = Server::start(&db, &["--demo"]);
    let ttl = if db.is_postgres() { "600" } else { "2" };
    let b = Server::start(&db, &["--credential-cache", ttl]);
    let demo = [
        ("X-Auth-Email", "user@example.com"),
        ("X-Auth-Key", "144c9defac04969c7bfad8efaa8ea194"),
    ];
    let members = "/accounts/023e105f4ecef8ad9ca31a8372d0c353/members";
    let count = |server: &Server| {
        let (status, body) = server.get(members, &demo);
        assert_eq!(status, 200, "{body}");
        body["result_info"]["total_count"].as_u64().unwrap()
    };
    let seeded = count(&b);
    let invite = json!({"email": "since@example.com", "roles": [DNS]}).to_string();
    let (status, body) = b.send("POST", members, &demo, Some(&invite));
    assert_eq!(status, 200, "{body}");
    assert_eq!(count(&b), seeded + 1);
    let key = stdout(&common::roster(
        &db,
        &["user", "create", "--email", "since@example.com"],
    ));
    let since = [
        ("X-Auth-Email", "since@example.com"),
        ("X-Auth-Key", key.as_str()),
    ];
    assert_eq!(b.get("/user", &since).0, 200);

    let out = Command::new("curl")
        .args([
            "-s",
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            &format!("http://{}/_roster/reset", a.addr),
        ])
        .output()
        .expect("curl runs");
    let reset: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(reset["success"], true, "{reset}");
    assert_eq!(count(&b), seeded);
    let started = std::time::Instant::now();
    while b.get("/user", &since).0 != 403 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "the other process still accepts a key the reset removed"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// The last-administrator rule counting rights from user groups, under races through two
/// processes: per round, an account whose only administrators are two members of one group
/// (by its policy); through both processes at once, each takes the other out of the group,
/// one empties the group, one deletes it, one takes its write policy away. Whatever wins,
/// someone can still manage the account.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_last_administrator_through_a_group_survives_races() {
    const GROUP_ROUNDS: usize = 16;
    const SETTINGS_WRITE: &str = "bcc19b668966402dadd900f2b4243d2e";
    let db = TestDatabase::new();
    let mut users = Vec::new();
    let mut accounts = Vec::new();
    for r in 0..GROUP_ROUNDS {
        for (n, who) in ["o", "a", "b"].iter().enumerate() {
            users.push(json!({"email": format!("g{who}{r}@example.com"), "api_key": key(5000 + 10 * r + n), "two_factor_authentication_enabled": true}));
        }
        accounts.push(json!({
            "id": id(0xad, r),
            "name": format!("Group race {r}"),
            "members": [
                {"email": format!("go{r}@example.com"), "roles": [SUPER_ADMIN]},
                {"id": id(0xa1, r), "email": format!("ga{r}@example.com"), "roles": [READ_ONLY]},
                {"id": id(0xb1, r), "email": format!("gb{r}@example.com"), "roles": [READ_ONLY]},
            ],
        }));
    }
    seed(&db, &json!({"users": users, "accounts": accounts}));
    let (one, two) = (Server::start(&db, &[]), Server::start(&db, &[]));
    let bases = [one.base_url.clone(), two.base_url.clone()];
    let http = reqwest::Client::new();
    let (post, put, del, get) = (
        reqwest::Method::POST,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
        reqwest::Method::GET,
    );

    let mut set = JoinSet::new();
    let mut groups = Vec::new();
    for r in 0..GROUP_ROUNDS {
        let account = id(0xad, r);
        let who = |n: usize, name: &str| {
            caller(
                &http,
                format!("g{name}{r}@example.com"),
                key(5000 + 10 * r + n),
            )
        };
        let (owner, a, b) = (who(0, "o"), who(1, "a"), who(2, "b"));
        let base = &bases[0];
        let (_, rg) = owner
            .send(
                base,
                post.clone(),
                &format!("/accounts/{account}/iam/resource_groups"),
                Some(json!({"name": "all", "scope": {"key": format!("com.cloudflare.api.account.{account}"), "objects": [{"key": "*"}]}})),
            )
            .await;
        let rg = rg["result"]["id"].as_str().unwrap().to_string();
        let write_policy = json!([{"access": "allow", "permission_groups": [{"id": SETTINGS_WRITE}], "resource_groups": [{"id": rg}]}]);
        let (status, made) = owner
            .send(
                base,
                post.clone(),
                &format!("/accounts/{account}/iam/user_groups"),
                Some(json!({"name": "admins", "policies": write_policy})),
            )
            .await;
        assert_eq!(status, 200, "{made}");
        let group = made["result"]["id"].as_str().unwrap().to_string();
        let path = format!("/accounts/{account}/iam/user_groups/{group}");
        let (a_id, b_id) = (id(0xa1, r), id(0xb1, r));
        let (status, body) = owner
            .send(
                base,
                post.clone(),
                &format!("{path}/members"),
                Some(json!([{"id": a_id}, {"id": b_id}])),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        // The owner steps down: the group's two members are the administrators now.
        let (_, mine) = owner.send(base, get.clone(), "/memberships", None).await;
        let owner_id = mine["result"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["account"]["id"] == account.as_str())
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        let (status, body) = owner
            .send(
                base,
                put.clone(),
                &format!("/accounts/{account}/members/{owner_id}"),
                Some(json!({"roles": [READ_ONLY]})),
            )
            .await;
        assert_eq!(status, 200, "{body}");

        let read_only = json!([{"access": "allow", "permission_groups": [{"id": "15b972a8f4cb43e78efbafb322f7dee5"}], "resource_groups": [{"id": rg}]}]);
        let race: Vec<(Caller, usize, reqwest::Method, String, Option<Value>)> = vec![
            (
                a.clone(),
                0,
                del.clone(),
                format!("{path}/members/{b_id}"),
                None,
            ),
            (
                b.clone(),
                1,
                del.clone(),
                format!("{path}/members/{a_id}"),
                None,
            ),
            (
                a.clone(),
                1,
                put.clone(),
                format!("{path}/members"),
                Some(json!({"members": []})),
            ),
            (b.clone(), 0, del.clone(), path.clone(), None),
            (
                a.clone(),
                0,
                put.clone(),
                path.clone(),
                Some(json!({"policies": read_only})),
            ),
        ];
        for (who, process, method, path, body) in race {
            let base = bases[(r + process) % 2].clone();
            set.spawn(async move {
                let (status, body) = who.send(&base, method.clone(), &path, body).await;
                (method, path, status, body)
            });
        }
        groups.push((account, a, b));
    }
    while let Some(done) = set.join_next().await {
        let (method, path, status, body) = done.expect("request task");
        // 403: the caller lost their rights to an earlier winner.
        assert!(
            matches!(status, 200 | 403 | 404 | 409),
            "{method} {path}: {status} {body}"
        );
    }
    for (r, (account, a, b)) in groups.iter().enumerate() {
        let rename = json!({"name": format!("Group race {r}")});
        let mut managers = 0;
        for (who, base) in [(a, &bases[0]), (b, &bases[1])] {
            let (status, _) = who
                .send(
                    base,
                    put.clone(),
                    &format!("/accounts/{account}"),
                    Some(rename.clone()),
                )
                .await;
            if status == 200 {
                managers += 1;
            }
        }
        assert!(
            managers >= 1,
            "round {r}: nobody can manage the account any more"
        );
    }
    drop((one, two));
}

/// An account's catalog is kept by each process (with its stamp): a user group's policy
/// changed through one process applies at once to requests through the other, which read
/// the account's catalog before the change, as do a new and a deleted resource group.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catalogs_changed_through_one_process_apply_at_once_in_the_other() {
    const SETTINGS_WRITE: &str = "bcc19b668966402dadd900f2b4243d2e";
    const SETTINGS_READ: &str = "15b972a8f4cb43e78efbafb322f7dee5";
    let db = TestDatabase::new();
    let account = id(0xae, 0);
    seed(
        &db,
        &json!({
            "users": [
                {"email": "owner@example.com", "api_key": key(7000), "two_factor_authentication_enabled": true},
                {"email": "grouped@example.com", "api_key": key(7001)},
            ],
            "accounts": [{
                "id": account,
                "name": "Catalogs",
                "members": [
                    {"email": "owner@example.com", "roles": [SUPER_ADMIN]},
                    {"id": id(0xa1, 0), "email": "grouped@example.com", "roles": [READ_ONLY]},
                ],
            }],
        }),
    );
    let (one, two) = (Server::start(&db, &[]), Server::start(&db, &[]));
    let (one, two) = (one.base_url.clone(), two.base_url.clone());
    let http = reqwest::Client::new();
    let owner = caller(&http, "owner@example.com".into(), key(7000));
    let grouped = caller(&http, "grouped@example.com".into(), key(7001));
    let (post, put, del, get) = (
        reqwest::Method::POST,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
        reqwest::Method::GET,
    );
    let groups = format!("/accounts/{account}/iam/resource_groups");
    let listed = |body: &Value| -> Vec<String> {
        let mut names = common::results::result_names(body);
        names.sort();
        names
    };
    let settings = format!("/accounts/{account}");
    let rename = |name: &str| Some(json!({"name": name, "settings": {}}));

    // The second process reads the account (and keeps its catalog) before each change.
    let (status, body) = owner.send(&two, get.clone(), &groups, None).await;
    assert_eq!(
        (status, listed(&body)),
        (200, Vec::<String>::new()),
        "{body}"
    );
    let (status, body) = grouped
        .send(&two, put.clone(), &settings, rename("by the member"))
        .await;
    assert_eq!(status, 403, "{body}");

    let scope =
        json!({"key": format!("com.cloudflare.api.account.{account}"), "objects": [{"key": "*"}]});
    let (status, made) = owner
        .send(
            &one,
            post.clone(),
            &groups,
            Some(json!({"name": "all", "scope": scope})),
        )
        .await;
    assert_eq!(status, 200, "{made}");
    let rg = made["result"]["id"].as_str().unwrap().to_string();
    let (status, body) = owner.send(&two, get.clone(), &groups, None).await;
    assert_eq!(
        (status, listed(&body)),
        (200, vec!["all".to_string()]),
        "{body}"
    );

    let policy = |group: &str| json!([{"access": "allow", "permission_groups": [{"id": group}], "resource_groups": [{"id": rg}]}]);
    let (status, made) = owner
        .send(
            &one,
            post.clone(),
            &format!("/accounts/{account}/iam/user_groups"),
            Some(json!({"name": "writers", "policies": policy(SETTINGS_WRITE)})),
        )
        .await;
    assert_eq!(status, 200, "{made}");
    let group = format!(
        "/accounts/{account}/iam/user_groups/{}",
        made["result"]["id"].as_str().unwrap()
    );
    let (status, body) = owner
        .send(
            &one,
            post.clone(),
            &format!("{group}/members"),
            Some(json!([{"id": id(0xa1, 0)}])),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = grouped
        .send(&two, put.clone(), &settings, rename("by the group"))
        .await;
    assert_eq!(
        status, 200,
        "the group's policy, made through the other process: {body}"
    );

    // Only the catalog changes now: the group's policy reads, no longer writes.
    let (status, body) = owner
        .send(
            &one,
            put.clone(),
            &group,
            Some(json!({"name": "writers", "policies": policy(SETTINGS_READ)})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = grouped
        .send(&two, put.clone(), &settings, rename("again"))
        .await;
    assert_eq!(
        status, 403,
        "a policy taken away through the other process: {body}"
    );

    let (status, body) = owner.send(&one, del.clone(), &group, None).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = owner
        .send(&one, del.clone(), &format!("{groups}/{rg}"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = owner.send(&two, get.clone(), &groups, None).await;
    assert_eq!(
        (status, listed(&body)),
        (200, Vec::<String>::new()),
        "{body}"
    );
}
