//! The bench dataset: every id, email and API key is a function of the dataset size and
//! an index, so the generator and the load driver agree without sharing a file.
//!
//! For `users` = N: N users with three memberships each in N/4 small accounts (12 members
//! per account, every third user's third membership still pending); one big account with
//! 10,000 members (the first 10,000 users, plus pending invitations to addresses with no
//! user when N is smaller); and enough empty "invite" accounts that the invite-and-accept
//! scenario never invites the same user to the same account twice. One admin user is Super
//! Administrator of the big account and of every invite account. In the big account, every
//! fourth user member ([`Layout::grouped`]) holds a policy for zone reading only and reads
//! the account through the one user group, whose policy grants Account Settings Read.
//! The audit log holds N entries in the big account (the admin's) and
//! [`SMALL_AUDIT_ENTRIES`] in user 0's small account, so its newest page can be read at
//! each size beside a short log.

use std::io::Write;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const BIG_MEMBERS: u64 = 10_000;
pub const SLOTS: u64 = 3;
pub const SUPER_ADMINISTRATOR: &str = "795df1c379e2469e89ab15cca71e91a0";
pub const ADMINISTRATOR: &str = "93c0b5f28f784adfabec6701f4e37655";
const READ_ONLY: &str = "25a6523fbf0a4cdaa8af77b778c7dd19";
const DNS: &str = "87e7860bc4c445faba075646dac38cca";
const ZONE_READ: &str = "c8fed203ed3043cba015a93ad1616f1f";
const SETTINGS_READ: &str = "15b972a8f4cb43e78efbafb322f7dee5";
const CREATED: &str = "2024-01-01T00:00:00Z";
/// Pairs the invite scenario can make at least; at a few thousand pairs a second this
/// outlasts any run of a minute or less.
const INVITE_PAIRS: u64 = 200_000;
pub const SMALL_AUDIT_ENTRIES: u64 = 100;

pub struct Layout {
    pub users: u64,
    pub small_accounts: u64,
    pub invite_accounts: u64,
}

pub struct Caller {
    pub email: String,
    pub key: String,
}

impl Layout {
    pub fn new(users: u64) -> anyhow::Result<Self> {
        anyhow::ensure!(users >= 12, "a dataset needs at least 12 users");
        Ok(Layout {
            users,
            small_accounts: users / 4,
            invite_accounts: INVITE_PAIRS.div_ceil(users).max(8),
        })
    }

    pub fn accounts(&self) -> u64 {
        1 + self.small_accounts + self.invite_accounts
    }

    pub fn memberships(&self) -> u64 {
        self.users * SLOTS + BIG_MEMBERS + 1 + self.invite_accounts
    }

    pub fn user(&self, i: u64) -> Caller {
        Caller {
            email: format!("user{i}@bench.example"),
            key: format!("be{i:035x}"),
        }
    }

    pub fn admin(&self) -> Caller {
        Caller {
            email: "admin@bench.example".into(),
            key: format!("ad{:035x}", 0),
        }
    }

    pub fn big_account(&self) -> String {
        id(0xa2, 0)
    }

    fn small_account(&self, a: u64) -> String {
        id(0xa2, 1 + a)
    }

    pub fn invite_account(&self, j: u64) -> String {
        id(0xa2, 1 + self.small_accounts + j)
    }

    /// The `k`-th of the big account's members whose reading comes from the user group
    /// (user index `j`, where `j % 4 == 3`).
    pub fn grouped(&self, k: u64) -> Caller {
        let members = self.users.min(BIG_MEMBERS) / 4;
        self.user((k % members.max(1)) * 4 + 3)
    }

    fn big_resource_group(&self) -> String {
        id(0xa5, 0)
    }

    pub fn big_user_group(&self) -> String {
        id(0xa6, 0)
    }

    /// The `j`-th membership of the big account.
    pub fn big_membership(&self, j: u64) -> String {
        id(0xa3, self.users * SLOTS + j)
    }

    /// The small account in which user `i` is an Administrator, and a membership in it.
    pub fn small_account_of(&self, i: u64) -> (String, String) {
        (
            self.small_account(self.user_slot_account(i, 0)),
            self.user_membership(i, 0),
        )
    }

    /// The membership of user `i` in its `slot`-th small account.
    pub fn user_membership(&self, i: u64, slot: u64) -> String {
        id(0xa3, i * SLOTS + slot)
    }

    fn user_slot_account(&self, i: u64, slot: u64) -> u64 {
        // Offsets a third of the accounts apart keep a user's three accounts distinct.
        let stride = self.small_accounts / 3;
        (i / 4 + slot * stride) % self.small_accounts
    }

    /// Writes the dataset as a `roster import` file.
    pub fn write_export(&self, out: &mut impl Write, schema_version: u32) -> anyhow::Result<()> {
        write!(
            out,
            r#"{{"format":"roster-export","version":{schema_version},"users":["#
        )?;
        let mut rows = Rows::new(out);
        let admin = self.admin();
        rows.put(&user_row(&id(0xad, 0), &admin, "Bench", "Admin"))?;
        for i in 0..self.users {
            rows.put(&user_row(
                &id(0xa1, i),
                &self.user(i),
                "User",
                &i.to_string(),
            ))?;
        }
        rows.next_table("accounts")?;
        rows.put(&account_row(&self.big_account(), "Bench big"))?;
        for a in 0..self.small_accounts {
            rows.put(&account_row(&self.small_account(a), &format!("Bench {a}")))?;
        }
        for j in 0..self.invite_accounts {
            rows.put(&account_row(
                &self.invite_account(j),
                &format!("Bench invite {j}"),
            ))?;
        }
        rows.next_table("account_roles")?;
        rows.next_table("resource_groups")?;
        let (big, everything, group) = (
            self.big_account(),
            self.big_resource_group(),
            self.big_user_group(),
        );
        rows.put(&json!({
            "id": everything, "account_id": big, "name": "everything",
            "scope": json!({"key": format!("com.cloudflare.api.account.{big}"), "objects": [{"key": "*"}]}).to_string(),
            "meta": "{}",
        }))?;
        rows.next_table("user_groups")?;
        rows.put(&json!({
            "id": group, "account_id": big, "name": "Readers",
            "policies": json!([policy(0, SETTINGS_READ, &everything)]).to_string(),
            "created_on": CREATED, "modified_on": CREATED,
        }))?;
        rows.next_table("memberships")?;
        for i in 0..self.users {
            let email = self.user(i).email;
            for slot in 0..SLOTS {
                let pending = slot == 2 && i % 3 == 0;
                let role = [ADMINISTRATOR, READ_ONLY, DNS][slot as usize];
                rows.put(&membership_row(
                    i * SLOTS + slot,
                    &self.small_account(self.user_slot_account(i, slot)),
                    &email,
                    if pending { "pending" } else { "accepted" },
                    role,
                ))?;
            }
        }
        let base = self.users * SLOTS;
        for j in 0..BIG_MEMBERS {
            let (email, status) = if j < self.users {
                (self.user(j).email, "accepted")
            } else {
                (format!("guest{j}@bench.example"), "pending")
            };
            let role = if j % 2 == 0 { READ_ONLY } else { DNS };
            let mut row = membership_row(base + j, &self.big_account(), &email, status, role);
            if j % 4 == 3 && j < self.users {
                row["grants"] = json!({"policies": [policy(1 + j, ZONE_READ, &everything)]})
                    .to_string()
                    .into();
                row["group_ids"] = json!([{"id": group, "added_on": CREATED}])
                    .to_string()
                    .into();
            }
            rows.put(&row)?;
        }
        let base = base + BIG_MEMBERS;
        let admin_of = std::iter::once(self.big_account())
            .chain((0..self.invite_accounts).map(|j| self.invite_account(j)));
        for (k, account) in admin_of.enumerate() {
            rows.put(&membership_row(
                base + k as u64,
                &account,
                &admin.email,
                "accepted",
                SUPER_ADMINISTRATOR,
            ))?;
        }
        rows.next_table("tokens")?;
        rows.next_table("audit_logs")?;
        let (admin_id, user0_id) = (id(0xad, 0), id(0xa1, 0));
        let (small, _) = self.small_account_of(0);
        let logs = [
            (&big, &admin_id, &admin.email, self.users),
            (&small, &user0_id, &self.user(0).email, SMALL_AUDIT_ENTRIES),
        ];
        let mut n = 0;
        for (account, actor, email, count) in logs {
            for k in 0..count {
                rows.put(&audit_row(
                    n,
                    k,
                    account,
                    actor,
                    email,
                    &self.big_membership(k % BIG_MEMBERS),
                ))?;
                n += 1;
            }
        }
        write!(rows.out, "]}}")?;
        Ok(())
    }
}

/// The `k`-th change in an account's log (a microsecond after the one before).
fn audit_row(n: u64, k: u64, account: &str, actor: &str, email: &str, member: &str) -> Value {
    json!({
        "id": id(0xae, n), "account_id": account, "actor_type": "user_key",
        "actor_id": actor, "actor_email": email, "actor_ip": "192.0.2.1",
        "token_id": null, "token_name": null, "action_type": "create",
        "description": "Created member", "resource_type": "account.member",
        "resource_id": member, "old_value": null,
        "new_value": json!({"id": member, "status": "pending"}).to_string(),
        "ray_id": format!("{n:016x}-RST"), "method": "POST",
        "uri": format!("/client/v4/accounts/{account}/members"),
        "created_on": format!("2024-01-01T00:{:02}:{:02}.{:06}Z", k / 60_000_000, k / 1_000_000 % 60, k % 1_000_000),
    })
}

fn id(kind: u8, i: u64) -> String {
    format!("{kind:02x}{i:030x}")
}

fn user_row(id: &str, caller: &Caller, first: &str, last: &str) -> Value {
    json!({
        "id": id, "email": caller.email, "email_lower": caller.email,
        "first_name": first, "last_name": last,
        "telephone": null, "country": null, "zipcode": null, "two_factor": false,
        "api_key_hash": hex::encode(Sha256::digest(caller.key.as_bytes())),
        "created_on": CREATED, "modified_on": CREATED,
    })
}

fn account_row(id: &str, name: &str) -> Value {
    json!({
        "id": id, "name": name, "type": "standard", "created_on": CREATED,
        "enforce_twofactor": false, "abuse_contact_email": null,
        "default_nameservers": "cloudflare.standard",
        "use_account_custom_ns_by_default": false, "managed_by": null,
    })
}

/// An allow policy for one permission group over `resources`.
fn policy(n: u64, permission_group: &str, resources: &str) -> Value {
    json!({"id": id(0xa7, n), "access": "allow", "permission_groups": [permission_group],
           "resource_groups": [resources]})
}

fn membership_row(n: u64, account: &str, email: &str, status: &str, role: &str) -> Value {
    json!({
        "id": id(0xa3, n), "account_id": account, "email": email, "email_lower": email,
        "status": status, "grants": json!({"roles": [role]}).to_string(),
        "code": format!("{n:064x}"), "api_access_enabled": null,
        "created_on": CREATED, "modified_on": CREATED, "group_ids": "[]",
    })
}

/// Streams the rows of one table after another, so a million-user dataset never has to
/// sit in memory as one value.
struct Rows<'a, W: Write> {
    out: &'a mut W,
    first: bool,
}

impl<'a, W: Write> Rows<'a, W> {
    fn new(out: &'a mut W) -> Self {
        Rows { out, first: true }
    }

    fn put(&mut self, row: &Value) -> anyhow::Result<()> {
        if !self.first {
            self.out.write_all(b",")?;
        }
        self.first = false;
        serde_json::to_writer(&mut *self.out, row)?;
        self.out.write_all(b"\n")?;
        Ok(())
    }

    fn next_table(&mut self, name: &str) -> anyhow::Result<()> {
        write!(self.out, r#"],"{name}":["#)?;
        self.first = true;
        Ok(())
    }
}
