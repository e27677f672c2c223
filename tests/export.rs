//! `roster export` and `roster import`: a deployment moves from SQLite to the backend under
//! test and back with nothing lost, and a bad or misdirected import writes nothing.

mod common;

use serde_json::{Value, json};

use common::{Server, TestDatabase, roster, stdout, try_roster};

const ACCOUNTS: usize = 30;
const MEMBERS_PER_ACCOUNT: usize = 70;
const USERS: usize = 300;

/// A few thousand rows: users, accounts with their own role and resource group, and members
/// of every status holding roles or policies; some invitees have no user yet.
fn fixture() -> Value {
    let users: Vec<Value> = (0..USERS)
        .map(|u| {
            json!({
                "email": format!("User{u}@Example.com"),
                "first_name": format!("First{u}"),
                "last_name": format!("Last{}", u % 17),
                "two_factor_authentication_enabled": u % 3 == 0,
                "api_key": format!("{u:037x}"),
            })
        })
        .collect();
    let accounts: Vec<Value> = (0..ACCOUNTS)
        .map(|a| {
            let id = format!("{:032x}", 0xc000 + a);
            let group = format!("{:032x}", 0xa000 + a);
            let members: Vec<Value> = (0..MEMBERS_PER_ACCOUNT)
                .map(|m| {
                    // Users 0..300 and invitees without a user, spread over the accounts.
                    let email = format!("user{}@example.com", (a * 7 + m * 5) % (USERS + 60));
                    let status = ["accepted", "pending", "rejected"][(a + m) % 3];
                    if m == 0 {
                        json!({"email": format!("owner{a}@example.com"), "roles": ["Super Administrator - All Privileges"]})
                    } else if m % 4 == 0 {
                        json!({"email": email, "status": status, "policies": [{
                            "access": if m % 8 == 0 { "deny" } else { "allow" },
                            "permission_groups": ["Account Settings Read", "Billing Read"],
                            "resource_groups": [group],
                        }]})
                    } else {
                        {
                        let role = ["Administrator", "DNS", "Custom"][m % 3];
                        json!({"email": email, "status": status, "roles": [role]})
                    }
                    }
                })
                .collect();
            json!({
                "id": id,
                "name": format!("Account {a}"),
                "type": if a % 2 == 0 { "standard" } else { "enterprise" },
                "enforce_twofactor": a % 5 == 0,
                "abuse_contact_email": format!("abuse{a}@example.com"),
                "managed_by": {"parent_org_id": format!("{:032x}", a), "parent_org_name": "Parent"},
                "roles": [{"id": format!("{:032x}", 0xb000 + a), "name": "Custom", "description": "Ours",
                           "permissions": {"dns": {"read": true, "write": false}}}],
                "resource_groups": [{"id": group, "scope": {
                    "key": format!("com.cloudflare.api.account.{id}"),
                    "objects": [{"key": format!("com.cloudflare.api.account.zone.{:032x}", a)}]}}],
                "members": members,
            })
        })
        .collect();
    json!({"users": users, "accounts": accounts})
}

fn export(db: &TestDatabase) -> Value {
    serde_json::from_str(&stdout(&roster(db, &["export"]))).expect("export is JSON")
}

fn import(db: &TestDatabase, data: &Value) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("export.json");
    std::fs::write(&file, data.to_string()).unwrap();
    try_roster(db, &["import", file.to_str().unwrap()])
}

/// Imports `data` into `db`, which must accept it.
/// Imports `data` into `db`, which must accept it. Not on a terminal, the import says what
/// it starts (every row counted) and how it ended.
fn import_ok(db: &TestDatabase, data: &Value) {
    let out = import(db, data);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    let lines: Vec<&str> = said.lines().collect();
    assert!(
        lines[0].starts_with(&format!("importing {} rows from ", rows(data))),
        "{said}"
    );
    let last = lines.last().unwrap();
    assert!(
        last.starts_with("imported ") && last.ends_with(" s"),
        "{said}"
    );
}

fn rows(data: &Value) -> usize {
    data.as_object()
        .unwrap()
        .values()
        .filter_map(Value::as_array)
        .map(Vec::len)
        .sum()
}

/// Every column of every table is in the export: a migration that adds one must teach the
/// export about it, or name it here with why.
fn assert_every_column_exported(db: &TestDatabase, data: &Value) {
    // A cache's validator and counts of other tables' rows: an import makes them anew.
    let not_exported = [
        "accounts.catalog_stamp",
        "accounts.members_pending",
        "accounts.members_accepted",
        "accounts.members_rejected",
    ];
    let path = &db.args()[1];
    for table in [
        "users",
        "accounts",
        "account_roles",
        "resource_groups",
        "memberships",
        "tokens",
    ] {
        let out = std::process::Command::new("python3")
            .args([
                "-c",
                "import sqlite3,sys; print(' '.join(sorted(r[1] for r in sqlite3.connect(sys.argv[1]).execute('PRAGMA table_info(' + sys.argv[2] + ')'))))",
                path,
                table,
            ])
            .output()
            .expect("python3 runs");
        let columns: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .split_whitespace()
            .filter(|c| !not_exported.contains(&format!("{table}.{c}").as_str()))
            .map(String::from)
            .collect();
        let row = data[table][0]
            .as_object()
            .unwrap_or_else(|| panic!("the fixture fills {table}"));
        let mut keys: Vec<&str> = row.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(columns.join(" "), keys.join(" "), "columns of {table}");
    }
}

#[test]
fn a_deployment_moves_between_backends_with_nothing_lost() {
    let source = TestDatabase::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fixture.json");
    std::fs::write(&file, fixture().to_string()).unwrap();
    roster(&source, &["seed", file.to_str().unwrap()]);
    let owner_key = stdout(&roster(
        &source,
        &["user", "create", "--email", "owner3@example.com"],
    ));
    let token = stdout(&roster(
        &source,
        &[
            "token",
            "create",
            "--email",
            "user1@example.com",
            "--permission-group",
            "Memberships Read",
            "--expires-on",
            "2099-01-01T00:00:00Z",
        ],
    ));
    // Columns only the API writes.
    let server = Server::start(&source, &[]);
    let (status, _) = server.send(
        "PATCH",
        "/user",
        &[
            ("X-Auth-Email", "user2@example.com"),
            ("X-Auth-Key", &format!("{:037x}", 2)),
        ],
        Some(r#"{"telephone": "+1 555 0100", "country": "US", "zipcode": "12345"}"#),
    );
    assert_eq!(status, 200);
    assert!(server.stop().success());

    let original = export(&source);
    assert!(
        rows(&original) > 2000,
        "a few thousand rows: {}",
        rows(&original)
    );
    assert_every_column_exported(&source, &original);

    // There: SQLite to the backend under test (PostgreSQL in the PostgreSQL run).
    let target = TestDatabase::new();
    import_ok(&target, &original);
    assert_eq!(export(&target), original);

    // And back, into a new SQLite file.
    let back = TestDatabase::sqlite();
    import_ok(&back, &export(&target));
    assert_eq!(export(&back), original);
    // The imported file stands alone: nothing is left behind in its write-ahead log.
    let wal = format!("{}-wal", back.args()[1]);
    let left = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert_eq!(left, 0, "{wal} holds {left} bytes after the import");

    // The moved deployment serves the same answers to the same credentials.
    let server = Server::start(&target, &[]);
    let owner = [
        ("X-Auth-Email", "owner3@example.com"),
        ("X-Auth-Key", owner_key.as_str()),
    ];
    let (status, accounts) = server.get("/accounts", &owner);
    assert_eq!(status, 200, "{accounts}");
    let account = accounts["result"][0]["id"].as_str().unwrap().to_string();
    let (status, members) = server.get(&format!("/accounts/{account}/members?per_page=50"), &owner);
    assert_eq!(status, 200, "{members}");
    assert_eq!(members["result_info"]["total_count"], MEMBERS_PER_ACCOUNT);
    let bearer = format!("Bearer {token}");
    let (status, memberships) = server.get("/memberships", &[("Authorization", &bearer)]);
    assert_eq!(status, 200, "{memberships}");
    let (_, me) = server.get(
        "/user",
        &[
            ("X-Auth-Email", "user2@example.com"),
            ("X-Auth-Key", &format!("{:037x}", 2)),
        ],
    );
    assert_eq!(me["result"]["telephone"], "+1 555 0100");
}

#[test]
fn an_import_is_all_or_nothing() {
    let source = TestDatabase::sqlite();
    roster(
        &source,
        &[
            "seed",
            concat!(env!("CARGO_MANIFEST_DIR"), "/demo/demo.json"),
        ],
    );
    let original = export(&source);

    // Into a database that holds data: refused, the data as it was.
    let out = import(&source, &original);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty database"));
    assert_eq!(export(&source), original);

    let target = TestDatabase::new();
    let refused = |data: &Value, expect: &str| {
        let out = import(&target, data);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "accepted: {expect}");
        assert!(stderr.contains(expect), "{expect:?} not in {stderr}");
        assert_eq!(rows(&export(&target)), 0, "a refused import wrote nothing");
    };

    // A value Roster would never have stored.
    let mut bad = original.clone();
    bad["memberships"][3]["grants"] = json!("[\"not an id\"]");
    refused(&bad, "grants is not valid");
    let mut bad = original.clone();
    bad["users"][0]["email_lower"] = json!("someone.else@example.com");
    refused(&bad, "does not match email");
    let mut bad = original.clone();
    bad["accounts"][0]["id"] = json!("023E105F4ECEF8AD9CA31A8372D0C353");
    refused(&bad, "lowercase hex id");
    let mut bad = original.clone();
    bad["version"] = json!(999);
    refused(&bad, "follows schema version 999");
    let mut bad = original.clone();
    bad["users"][0]["password"] = json!("x");
    refused(&bad, "unknown field");
    // A row twice, as a hand-merged file may hold it: named before anything is written.
    for table in ["users", "memberships", "tokens"] {
        let mut bad = original.clone();
        let rows = bad[table].as_array_mut().unwrap();
        let row = rows
            .first()
            .unwrap_or_else(|| panic!("the demo has {table}"))
            .clone();
        rows.push(row.clone());
        let id = row["id"].as_str().unwrap();
        refused(
            &bad,
            &format!("cannot import: {table}: two rows have the id {id}"),
        );
    }
    // A membership in a group of no account of its own, or in one group twice: the group
    // index kept from these would count and page the wrong members.
    let mut bad = original.clone();
    bad["memberships"][0]["group_ids"] =
        json!(r#"[{"id":"cccccccccccccccccccccccccccccccc","added_on":"2026-01-01T00:00:00Z"}]"#);
    refused(&bad, "no user group of its account");
    {
        let group = &original["user_groups"][0];
        assert!(group.is_object(), "the demo has a user group");
        let account = group["account_id"].as_str().unwrap();
        let id = group["id"].as_str().unwrap();
        let mut bad = original.clone();
        let m = bad["memberships"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|m| m["account_id"] == account)
            .expect("a membership in the group's account");
        m["group_ids"] = json!(format!(
            r#"[{{"id":"{id}","added_on":"2026-01-01T00:00:00Z"}},{{"id":"{id}","added_on":"2026-01-01T00:00:00Z"}}]"#
        ));
        refused(&bad, "twice");
    }

    // Rows the database refuses, found after earlier rows went in: none of them stays.
    let mut bad = original.clone();
    let twin = bad["memberships"][0].clone();
    let mut twin = twin.as_object().unwrap().clone();
    twin.insert("id".into(), json!("ffffffffffffffffffffffffffffffff"));
    twin.insert("status".into(), json!("accepted"));
    let first_status = bad["memberships"][0]["status"].clone();
    bad["memberships"][0]["status"] = json!("accepted");
    bad["memberships"]
        .as_array_mut()
        .unwrap()
        .push(Value::Object(twin));
    assert_eq!(
        first_status, "accepted",
        "the fixture's first membership is live"
    );
    refused(&bad, "memberships[ffffffffffffffffffffffffffffffff]");
    let mut bad = original.clone();
    bad["tokens"] = json!([{"id": "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee", "user_id": "dddddddddddddddddddddddddddddddd",
        "name": "orphan", "token_hash": "0".repeat(64), "policies": "[]", "status": "active",
        "not_before": null, "expires_on": null, "request_ip": null, "created_on": "2026-01-01T00:00:00Z",
        "modified_on": "2026-01-01T00:00:00Z", "last_used_on": null}]);
    refused(&bad, "tokens[eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee]");

    // The untouched export still goes in.
    import_ok(&target, &original);
    assert_eq!(export(&target), original);
}

#[test]
fn migrate_brings_a_new_database_to_the_current_schema() {
    let db = TestDatabase::new();
    let newest = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".sql"))
        .max()
        .unwrap();
    let (version, description) = newest.trim_end_matches(".sql").split_once('_').unwrap();
    let out = stdout(&roster(&db, &["migrate"]));
    assert_eq!(
        out,
        format!(
            "database is at migration {} ({})",
            version.parse::<u32>().unwrap(),
            description.replace('_', " ")
        )
    );
    // Migrating again is a no-op, and the database is usable.
    roster(&db, &["migrate"]);
    roster(&db, &["user", "create", "--email", "after@example.com"]);
    assert_eq!(export(&db)["users"].as_array().unwrap().len(), 1);
}

/// A database made by the first release, with a token that had only permission groups, is
/// upgraded in place: the token keeps working as it did.
#[test]
fn migrate_upgrades_a_first_release_database() {
    let db = TestDatabase::sqlite();
    let path = &db.args()[1];
    let init = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/0001_init.sql");
    let key = "0123456789abcdef0123456789abcdef01234";
    let token = "firstreleasetoken0000000000000000000000x";
    let script = r#"
import hashlib, sqlite3, sys
path, init, key, token = sys.argv[1:]
sql = open(init, encoding="utf-8").read()
db = sqlite3.connect(path)
db.executescript(sql)
db.execute("CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, "
           "installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, success BOOLEAN NOT NULL, "
           "checksum BLOB NOT NULL, execution_time BIGINT NOT NULL)")
db.execute("INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) "
           "VALUES (1, 'init', 1, ?, 0)", (hashlib.sha384(sql.encode()).digest(),))
db.execute("INSERT INTO users (id, email, email_lower, api_key_hash, created_on, modified_on) VALUES "
           "('00000000000000000000000000000001', 'old@example.com', 'old@example.com', ?, "
           "'2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')", (hashlib.sha256(key.encode()).hexdigest(),))
db.execute("INSERT INTO tokens (id, user_id, name, token_hash, permission_groups, status, created_on) VALUES "
           "('00000000000000000000000000000002', '00000000000000000000000000000001', 'old', ?, "
           "'[\"6f71d1fb19e54da99e020d58c20622e3\"]', 'active', '2026-01-01T00:00:00Z')",
           (hashlib.sha256(token.encode()).hexdigest(),))
# Rows the kept counts of later migrations (0013, 0014) are made from: three accounts, the
# user a member of each (one invitation still pending), and a second token, expired.
for n, status in ((1, "accepted"), (2, "accepted"), (3, "pending")):
    db.execute("INSERT INTO accounts (id, name, type, created_on) VALUES (?, ?, 'standard', "
               "'2026-01-01T00:00:00Z')", (f"{n:032x}", f"Old {n}"))
    db.execute("INSERT INTO memberships (id, account_id, email, email_lower, status, grants, code, "
               "created_on, modified_on) VALUES (?, ?, 'old@example.com', 'old@example.com', ?, "
               "'{\"roles\": [\"795df1c379e2469e89ab15cca71e91a0\"]}', 'c', '2026-01-01T00:00:00Z', "
               "'2026-01-01T00:00:00Z')", (f"{n + 16:032x}", f"{n:032x}", status))
db.execute("INSERT INTO tokens (id, user_id, name, token_hash, permission_groups, status, created_on, "
           "expires_on) VALUES ('00000000000000000000000000000003', '00000000000000000000000000000001', "
           "'gone', ?, '[]', 'active', '2026-01-02T00:00:00Z', '2026-01-03T00:00:00Z')",
           (hashlib.sha256(b"another").hexdigest(),))
db.commit()
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script, path, init, key, token])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    roster(&db, &["migrate"]);
    let server = Server::start(&db, &[]);
    let bearer = format!("Bearer {token}");
    let (status, me) = server.get("/user", &[("Authorization", &bearer)]);
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["result"]["email"], "old@example.com");
    // It held User Details Read only.
    let (status, _) = server.get("/memberships", &[("Authorization", &bearer)]);
    assert_eq!(status, 403);
    let (status, tokens) = server.get(
        "/user/tokens",
        &[("X-Auth-Email", "old@example.com"), ("X-Auth-Key", key)],
    );
    assert_eq!(status, 200, "{tokens}");
    let policy = &tokens["result"][0]["policies"][0];
    assert_eq!(policy["effect"], "allow");
    assert_eq!(policy["permission_groups"][0]["name"], "User Details Read");
    assert_eq!(tokens["result"][0]["modified_on"], "2026-01-01T00:00:00Z");
    // Counted when migrated: the expired token is left out of the count as of the list.
    assert_eq!(tokens["result_info"]["total_count"], 1, "{tokens}");
    let (status, all) = server.get(
        "/user/tokens?include_expired=true",
        &[("X-Auth-Email", "old@example.com"), ("X-Auth-Key", key)],
    );
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["result_info"]["total_count"], 2, "{all}");
    for (query, count) in [("", 3), ("?status=accepted", 2), ("?status=pending", 1)] {
        let (status, page) = server.get(
            &format!("/memberships{query}"),
            &[("X-Auth-Email", "old@example.com"), ("X-Auth-Key", key)],
        );
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["result_info"]["total_count"], count, "{query}: {page}");
    }
}
