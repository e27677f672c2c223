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
//!
//! Beside them, the same at every size (so a page's cost can be compared with its small
//! case on one server), each measured against a like-shaped small case:
//! - the "agency" user ([`Layout::agency`]) belongs to [`AGENCY_ACCOUNTS`] accounts of
//!   its own, and the "few" user ([`Layout::few`]) to [`FEW_ACCOUNTS`], made by the same
//!   rule ([`portfolio_member`]: a mix of roles, every [`PENDING_EVERY`]th still pending);
//!   the accounts' names are spread over the alphabet out of id order, so ordering by
//!   name is not ordering by id. Ordinary users would not do as the small case: users
//!   below 10,000 are also in the big account, and `invite_accept` invites users 0, 1, ...
//!   to more accounts while a run goes on;
//! - the "tokens" user ([`Layout::tokens_user`]) holds [`USER_TOKENS`] active user API
//!   tokens, whose secrets are [`Layout::user_token`] of their index; the "no tokens"
//!   user ([`Layout::no_tokens_user`]) none (nor do any other users);
//! - the "groups" accounts: one with [`MANY_GROUPS`] user groups and one with a single
//!   group, both with their own "everything" resource group, each group with one policy
//!   over it and [`MEMBERS_PER_GROUP`] members. The groups administrator
//!   ([`Layout::groups_admin`]) is Super Administrator of both. The many-group account's
//!   [`MANY_GROUPS`] members (users of their own, every tenth still pending) are each in
//!   [`MEMBERS_PER_GROUP`] groups; the first [`MEMBERS_PER_GROUP`] of them are also the
//!   one-group account's members, all in its group.
//!
//! None of these changes an id, email or key of the layout above: their ids come after
//! it (accounts, memberships) or are of kinds of their own (users, tokens, groups), so the
//! other scenarios keep their meaning.

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
/// The agency's accounts: the issue's partner managing its clients' accounts.
pub const AGENCY_ACCOUNTS: u64 = 5_000;
/// The few user's accounts: as many as an ordinary user's.
pub const FEW_ACCOUNTS: u64 = 3;
/// In a portfolio, membership `k` is still pending when `k % PENDING_EVERY` is the last.
pub const PENDING_EVERY: u64 = 50;
pub const USER_TOKENS: u64 = 2_000;
pub const MANY_GROUPS: u64 = 1_000;
pub const MEMBERS_PER_GROUP: u64 = 3;
const DNS_READ: &str = "ff6a58c45ccd4aba965f0de1ced77b2c";
const ANALYTICS_READ: &str = "9117e5da093b4e66b569dc785cc6ee75";
/// What the groups' policies allow, in turn: each a read that no role of theirs needs.
const GROUP_PERMISSIONS: [&str; 4] = [SETTINGS_READ, ZONE_READ, DNS_READ, ANALYTICS_READ];
/// First words of generated names. Eleven (a prime) so that `k * 7 % 11` visits every
/// word in an order unrelated to `k`: names sort otherwise than ids.
const WORDS: [&str; 11] = [
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Stark",
    "Wayne",
    "Wonka",
    "Tyrell",
    "Soylent",
    "Cyberdyne",
];

/// The users of kind `0xad` (the admin's), by index: who they are is in the module doc.
const ADMIN: u64 = 0;
const AGENCY: u64 = 1;
const FEW: u64 = 2;
const TOKENS: u64 = 3;
const NO_TOKENS: u64 = 4;
const GROUPS_ADMIN: u64 = 5;
/// The many-group account's members are users `GROUP_MEMBER + k`.
const GROUP_MEMBER: u64 = 6;

/// A user whose memberships are accounts of their own, made by one rule whatever their
/// number ([`portfolio_member`]), so the agency and the few user differ only in how many.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Portfolio {
    Agency,
    Few,
}

impl Portfolio {
    pub fn accounts(self) -> u64 {
        match self {
            Portfolio::Agency => AGENCY_ACCOUNTS,
            Portfolio::Few => FEW_ACCOUNTS,
        }
    }

    /// Where this portfolio's accounts start among the portfolios' accounts.
    fn first(self) -> u64 {
        match self {
            Portfolio::Agency => 0,
            Portfolio::Few => AGENCY_ACCOUNTS,
        }
    }

    /// Memberships (every status) and accepted ones: what `GET /memberships` and
    /// `GET /accounts` count (every role here may read its account).
    pub fn counts(self) -> (u64, u64) {
        let n = self.accounts();
        let accepted = (0..n).filter(|&k| !portfolio_member(k).1).count() as u64;
        (n, accepted)
    }
}

/// The role of a portfolio's `k`-th membership, and whether it is still pending.
fn portfolio_member(k: u64) -> (&'static str, bool) {
    let role = [ADMINISTRATOR, READ_ONLY, DNS, SUPER_ADMINISTRATOR][(k % 4) as usize];
    (role, k % PENDING_EVERY == PENDING_EVERY - 1)
}

/// A name for the `k`-th of something, its first word out of step with `k`.
fn varied_name(k: u64, middle: &str) -> String {
    format!("{}{middle} {k:04}", WORDS[(k * 7 % 11) as usize])
}

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
        self.extra_accounts() + AGENCY_ACCOUNTS + FEW_ACCOUNTS + 2
    }

    /// The first account after the original layout's.
    fn extra_accounts(&self) -> u64 {
        1 + self.small_accounts + self.invite_accounts
    }

    pub fn memberships(&self) -> u64 {
        // The portfolios', the groups administrator's two, the groups accounts' members.
        self.extra_memberships()
            + AGENCY_ACCOUNTS
            + FEW_ACCOUNTS
            + 2
            + MANY_GROUPS
            + MEMBERS_PER_GROUP
    }

    /// The first membership number after the original layout's.
    fn extra_memberships(&self) -> u64 {
        self.users * SLOTS + BIG_MEMBERS + 1 + self.invite_accounts
    }

    pub fn user(&self, i: u64) -> Caller {
        Caller {
            email: format!("user{i}@bench.example"),
            key: format!("be{i:035x}"),
        }
    }

    pub fn admin(&self) -> Caller {
        special(ADMIN, "admin@bench.example")
    }

    pub fn portfolio_user(&self, p: Portfolio) -> Caller {
        match p {
            Portfolio::Agency => special(AGENCY, "agency@bench.example"),
            Portfolio::Few => special(FEW, "few@bench.example"),
        }
    }

    fn portfolio_account(&self, p: Portfolio, k: u64) -> String {
        id(0xa2, self.extra_accounts() + p.first() + k)
    }

    pub fn tokens_user(&self) -> Caller {
        special(TOKENS, "tokens@bench.example")
    }

    pub fn no_tokens_user(&self) -> Caller {
        special(NO_TOKENS, "no-tokens@bench.example")
    }

    /// The secret of the tokens user's `t`-th token (40 characters, as Roster's).
    pub fn user_token(&self, t: u64) -> String {
        format!("bt{t:038x}")
    }

    pub fn groups_admin(&self) -> Caller {
        special(GROUPS_ADMIN, "groups-admin@bench.example")
    }

    fn group_member(&self, k: u64) -> Caller {
        special(GROUP_MEMBER + k, &format!("member{k}@groups.bench.example"))
    }

    /// The account with [`MANY_GROUPS`] user groups (`many`) or with one, and how many.
    pub fn groups_account(&self, many: bool) -> (String, u64) {
        let base = self.extra_accounts() + AGENCY_ACCOUNTS + FEW_ACCOUNTS;
        match many {
            true => (id(0xa2, base), MANY_GROUPS),
            false => (id(0xa2, base + 1), 1),
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
        self.extra_users(&mut rows)?;
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
        self.extra_accounts_rows(&mut rows)?;
        rows.next_table("account_roles")?;
        rows.next_table("resource_groups")?;
        let (big, everything, group) = (
            self.big_account(),
            self.big_resource_group(),
            self.big_user_group(),
        );
        rows.put(&everything_row(&everything, &big))?;
        for many in [true, false] {
            rows.put(&everything_row(
                &groups_resource_group(many),
                &self.groups_account(many).0,
            ))?;
        }
        rows.next_table("user_groups")?;
        rows.put(&json!({
            "id": group, "account_id": big, "name": "Readers",
            "policies": json!([policy(id(0xa7, 0), SETTINGS_READ, &everything)]).to_string(),
            "created_on": CREATED, "modified_on": CREATED,
        }))?;
        self.extra_user_groups(&mut rows)?;
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
                row["grants"] =
                    json!({"policies": [policy(id(0xa7, 1 + j), ZONE_READ, &everything)]})
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
        self.extra_memberships_rows(&mut rows)?;
        rows.next_table("tokens")?;
        self.tokens_rows(&mut rows)?;
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

    /// The users of the additions (module doc): the kind `0xad` beside the admin's.
    fn extra_users<W: Write>(&self, rows: &mut Rows<W>) -> anyhow::Result<()> {
        let named = [
            (AGENCY, self.portfolio_user(Portfolio::Agency), "Agency"),
            (FEW, self.portfolio_user(Portfolio::Few), "Few"),
            (TOKENS, self.tokens_user(), "Tokens"),
            (NO_TOKENS, self.no_tokens_user(), "No tokens"),
            (GROUPS_ADMIN, self.groups_admin(), "Groups"),
        ];
        for (k, caller, last) in named {
            rows.put(&user_row(&id(0xad, k), &caller, "Bench", last))?;
        }
        for k in 0..MANY_GROUPS {
            let caller = self.group_member(k);
            rows.put(&user_row(
                &id(0xad, GROUP_MEMBER + k),
                &caller,
                "Member",
                &k.to_string(),
            ))?;
        }
        Ok(())
    }

    fn extra_accounts_rows<W: Write>(&self, rows: &mut Rows<W>) -> anyhow::Result<()> {
        for p in [Portfolio::Agency, Portfolio::Few] {
            for k in 0..p.accounts() {
                rows.put(&account_row(
                    &self.portfolio_account(p, k),
                    &varied_name(k, ""),
                ))?;
            }
        }
        for (many, name) in [(true, "Bench many groups"), (false, "Bench one group")] {
            rows.put(&account_row(&self.groups_account(many).0, name))?;
        }
        Ok(())
    }

    /// The groups accounts' groups, each with one policy over its account's "everything".
    fn extra_user_groups<W: Write>(&self, rows: &mut Rows<W>) -> anyhow::Result<()> {
        for many in [true, false] {
            let (account, count) = self.groups_account(many);
            let everything = groups_resource_group(many);
            for g in 0..count {
                let n = group_number(many, g);
                let permission = GROUP_PERMISSIONS[(g % 4) as usize];
                rows.put(&json!({
                    "id": id(0xa6, n), "account_id": account,
                    "name": varied_name(g, " team"),
                    "policies": json!([policy(id(0xa8, n), permission, &everything)]).to_string(),
                    "created_on": CREATED, "modified_on": CREATED,
                }))?;
            }
        }
        Ok(())
    }

    fn extra_memberships_rows<W: Write>(&self, rows: &mut Rows<W>) -> anyhow::Result<()> {
        let mut n = self.extra_memberships();
        let mut next = || {
            n += 1;
            n - 1
        };
        for p in [Portfolio::Agency, Portfolio::Few] {
            let email = self.portfolio_user(p).email;
            for k in 0..p.accounts() {
                let (role, pending) = portfolio_member(k);
                let status = if pending { "pending" } else { "accepted" };
                let account = self.portfolio_account(p, k);
                rows.put(&membership_row(next(), &account, &email, status, role))?;
            }
        }
        let admin = self.groups_admin().email;
        for many in [true, false] {
            let account = self.groups_account(many).0;
            rows.put(&membership_row(
                next(),
                &account,
                &admin,
                "accepted",
                SUPER_ADMINISTRATOR,
            ))?;
        }
        // Member k of the many-group account is in groups k*M .. k*M + M - 1 (mod the
        // groups): M being prime to their number, every group gets exactly M members.
        let in_groups = |many: bool, groups: &mut dyn Iterator<Item = u64>| {
            let ins: Vec<Value> = groups
                .map(|g| json!({"id": id(0xa6, group_number(many, g)), "added_on": CREATED}))
                .collect();
            Value::from(json!(ins).to_string())
        };
        let (many_account, _) = self.groups_account(true);
        for k in 0..MANY_GROUPS {
            let status = if k % 10 == 9 { "pending" } else { "accepted" };
            let role = if k % 2 == 0 { DNS } else { READ_ONLY };
            let email = self.group_member(k).email;
            let mut row = membership_row(next(), &many_account, &email, status, role);
            let mut groups =
                (0..MEMBERS_PER_GROUP).map(|j| (k * MEMBERS_PER_GROUP + j) % MANY_GROUPS);
            row["group_ids"] = in_groups(true, &mut groups);
            rows.put(&row)?;
        }
        let (one_account, _) = self.groups_account(false);
        for k in 0..MEMBERS_PER_GROUP {
            let email = self.group_member(k).email;
            let mut row = membership_row(next(), &one_account, &email, "accepted", DNS);
            row["group_ids"] = in_groups(false, &mut std::iter::once(0));
            rows.put(&row)?;
        }
        Ok(())
    }

    /// The tokens user's tokens: active, allowing one read each on every account and the
    /// user (as `roster token` makes them); a tenth expire, far from now, so the list has
    /// both kinds of row and every one is still listed.
    fn tokens_rows<W: Write>(&self, rows: &mut Rows<W>) -> anyhow::Result<()> {
        let user = id(0xad, TOKENS);
        for t in 0..USER_TOKENS {
            let token = id(0xa9, t);
            // Issued a second apart: the list orders by issue time.
            let issued = format!(
                "2024-01-01T{:02}:{:02}:{:02}Z",
                t / 3600,
                t / 60 % 60,
                t % 60
            );
            let permission = GROUP_PERMISSIONS[(t % 4) as usize];
            let policies = json!([{
                "id": id(0xaa, t), "effect": "allow", "permission_groups": [permission],
                "resources": {
                    "com.cloudflare.api.account.*": "*",
                    format!("com.cloudflare.api.user.{user}"): "*",
                },
            }]);
            rows.put(&json!({
                "id": token, "user_id": user, "account_id": null, "creator_email": null,
                "name": format!("bench token {t}"),
                "token_hash": hex::encode(Sha256::digest(self.user_token(t).as_bytes())),
                "status": "active", "policies": policies.to_string(),
                "not_before": null,
                "expires_on": (t % 10 == 9).then_some("2099-01-01T00:00:00Z"),
                "request_ip": null, "created_on": issued, "modified_on": issued,
                "last_used_on": null,
            }))?;
        }
        Ok(())
    }
}

/// A user of kind `0xad` (the admin and the additions'): key `ad` + its index.
fn special(k: u64, email: &str) -> Caller {
    Caller {
        email: email.into(),
        key: format!("ad{k:035x}"),
    }
}

fn groups_resource_group(many: bool) -> String {
    id(0xa5, if many { 1 } else { 2 })
}

/// The number of group `g` of a groups account, for its id (`0xa6`) and its policy's
/// (`0xa8`); the big account's one group is number 0.
fn group_number(many: bool, g: u64) -> u64 {
    1 + if many { g } else { MANY_GROUPS + g }
}

/// A resource group over the whole of `account`.
fn everything_row(id: &str, account: &str) -> Value {
    json!({
        "id": id, "account_id": account, "name": "everything",
        "scope": json!({"key": format!("com.cloudflare.api.account.{account}"), "objects": [{"key": "*"}]}).to_string(),
        "meta": "{}",
    })
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
fn policy(id: String, permission_group: &str, resources: &str) -> Value {
    json!({"id": id, "access": "allow", "permission_groups": [permission_group],
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

#[cfg(test)]
mod tests {
    use super::*;

    /// What the driver expects of the dataset (its counts, the lists' totals) is what
    /// the generator writes.
    #[test]
    fn the_layout_counts_what_the_export_holds() {
        let layout = Layout::new(100).unwrap();
        let mut out = Vec::new();
        layout.write_export(&mut out, 12).unwrap();
        let data: Value = serde_json::from_slice(&out).unwrap();
        let rows = |table: &str| data[table].as_array().unwrap().clone();
        assert_eq!(rows("accounts").len() as u64, layout.accounts());
        assert_eq!(rows("memberships").len() as u64, layout.memberships());
        let of = |email: &str| -> Vec<Value> {
            rows("memberships")
                .into_iter()
                .filter(|m| m["email"] == email)
                .collect()
        };
        for p in [Portfolio::Agency, Portfolio::Few] {
            let mine = of(&layout.portfolio_user(p).email);
            let accepted = mine.iter().filter(|m| m["status"] == "accepted").count();
            assert_eq!((mine.len() as u64, accepted as u64), p.counts());
        }
        let tokens = rows("tokens");
        assert_eq!(tokens.len() as u64, USER_TOKENS);
        let secret = layout.user_token(7);
        assert_eq!(secret.len(), 40);
        let digest = hex::encode(Sha256::digest(secret.as_bytes()));
        assert!(tokens.iter().any(|t| t["token_hash"] == digest.as_str()));
        // Each group's members, from the memberships' group lists.
        let mut members = std::collections::HashMap::<String, u64>::new();
        for m in rows("memberships") {
            let ins: Vec<Value> = serde_json::from_str(m["group_ids"].as_str().unwrap()).unwrap();
            for g in ins {
                *members.entry(g["id"].as_str().unwrap().into()).or_default() += 1;
            }
        }
        for many in [true, false] {
            let (account, count) = layout.groups_account(many);
            let groups: Vec<Value> = rows("user_groups")
                .into_iter()
                .filter(|g| g["account_id"] == account.as_str())
                .collect();
            assert_eq!(groups.len() as u64, count);
            for g in &groups {
                let id = g["id"].as_str().unwrap();
                assert_eq!(members.get(id), Some(&MEMBERS_PER_GROUP), "{id}");
            }
        }
    }
}
