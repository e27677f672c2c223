//! The measured requests. Callers rotate over the whole user base where the scenario allows,
//! so a large dataset is not measured through a handful of hot rows; `membership_hot` draws
//! them from a skewed distribution instead, as real callers come back. The `*_big` and
//! `*_small` scenarios make the same requests as an administrator of the 10,000-member
//! account and of a 12-member one, so their ratio is what an account's size costs.
//! The `*_many` scenarios read what grows with a user or an account (5,000 accounts, 2,000
//! tokens, 1,000 user groups) and [`SCALE_PAIRS`] names each one's small case, the same
//! request by a caller shaped alike with a few: their ratio is what holding many costs a
//! page that shows twenty. These lists are checked for their exact `total_count`.

use std::sync::Arc;

use hyper::Method;

use crate::dataset::{Caller, Layout, Portfolio};
use crate::load::{Scenario, Step};

/// Deep enough into the big account that every earlier member is sorted and skipped.
pub const DEEP_PAGE: u64 = 150;

pub const NAMES: [&str; 30] = [
    "membership",
    "membership_hot",
    "memberships",
    "members_deep",
    "invite_accept",
    "invite",
    "auth_mix",
    "roles_big",
    "roles_small",
    "roles_group",
    "member_big",
    "member_small",
    "account_gets_big",
    "account_gets_small",
    "audit_big",
    "audit_small",
    "audit_v2_big",
    "group_members_big",
    "members_page_big",
    "console_members_big",
    "memberships_many",
    "memberships_few",
    "accounts_many",
    "accounts_few",
    "tokens_many",
    "tokens_none",
    "groups_many",
    "groups_one",
    "roles_groups_many",
    "roles_groups_one",
];

/// Each `*_many` scenario and the small case it is measured against (the report's scale).
/// `roles_groups_many` has two: the one-group account (the same caller and shape) and
/// `roles_small`, the ordinary reading of roles.
pub const SCALE_PAIRS: [(&str, &str); 6] = [
    ("memberships_many", "memberships_few"),
    ("accounts_many", "accounts_few"),
    ("tokens_many", "tokens_none"),
    ("groups_many", "groups_one"),
    ("roles_groups_many", "roles_groups_one"),
    ("roles_groups_many", "roles_small"),
];

/// `per_page` when a request names none: Cloudflare's documented default for these lists.
const DEFAULT_PER_PAGE: u64 = 20;

/// Whether a scenario's pages are the console's, which need a signed-in session.
pub fn needs_console(name: &str) -> bool {
    name.starts_with("console_")
}

/// `console`: the big account's administrator's console session cookie, for the console's
/// scenarios.
pub fn by_name(
    name: &str,
    layout: Arc<Layout>,
    console: Option<String>,
) -> Option<Arc<dyn Scenario>> {
    let scenario: Arc<dyn Scenario> = match name {
        "membership" => Arc::new(Membership(layout)),
        "membership_hot" => Arc::new(MembershipHot(layout)),
        "memberships" => Arc::new(Memberships(layout)),
        "members_deep" => Arc::new(MembersDeep(layout)),
        "invite_accept" => Arc::new(InviteAccept(layout)),
        "auth_mix" => Arc::new(AuthMix(layout)),
        "invite" => Arc::new(Invite(layout)),
        "roles_big" => Arc::new(AccountGet(layout, Size::Big, Some(0))),
        "roles_small" => Arc::new(AccountGet(layout, Size::Small, Some(0))),
        "roles_group" => Arc::new(AccountGet(layout, Size::Grouped, Some(0))),
        "member_big" => Arc::new(AccountGet(layout, Size::Big, Some(1))),
        "member_small" => Arc::new(AccountGet(layout, Size::Small, Some(1))),
        "account_gets_big" => Arc::new(AccountGet(layout, Size::Big, None)),
        "account_gets_small" => Arc::new(AccountGet(layout, Size::Small, None)),
        "audit_big" => Arc::new(AuditNewest(layout, Size::Big, false)),
        "audit_small" => Arc::new(AuditNewest(layout, Size::Small, false)),
        "audit_v2_big" => Arc::new(AuditNewest(layout, Size::Big, true)),
        "group_members_big" => Arc::new(GroupMembers(layout)),
        "members_page_big" => Arc::new(MembersPage(layout, None)),
        "console_members_big" => Arc::new(MembersPage(layout, Some(console?))),
        "memberships_many" => memberships_of(&layout, Portfolio::Agency),
        "memberships_few" => memberships_of(&layout, Portfolio::Few),
        "accounts_many" => accounts_of(&layout, Portfolio::Agency),
        "accounts_few" => accounts_of(&layout, Portfolio::Few),
        "tokens_many" => Arc::new(Fixed {
            path: "/client/v4/user/tokens?per_page=20".into(),
            caller: layout.tokens_user(),
            page: Some((crate::dataset::USER_TOKENS, 20)),
        }),
        "tokens_none" => Arc::new(Fixed {
            path: "/client/v4/user/tokens?per_page=20".into(),
            caller: layout.no_tokens_user(),
            page: Some((0, 20)),
        }),
        "groups_many" => groups_of(&layout, true),
        "groups_one" => groups_of(&layout, false),
        "roles_groups_many" | "roles_groups_one" => {
            let (account, _) = layout.groups_account(name == "roles_groups_many");
            Arc::new(Fixed {
                path: format!("/client/v4/accounts/{account}/roles"),
                caller: layout.groups_admin(),
                page: None,
            })
        }
        _ => return None,
    };
    Some(scenario)
}

pub fn describe(name: &str) -> &'static str {
    match name {
        "membership" => "GET /memberships/{id}",
        "membership_hot" => "GET /memberships/{id}, callers come back",
        "memberships" => "GET /memberships?status=accepted",
        "members_deep" => "GET /accounts/{big}/members p150",
        "invite_accept" => "POST members + PUT membership",
        "auth_mix" => "GET /user, many users",
        "invite" => "POST /accounts/{id}/members",
        "roles_big" => "GET roles, 10,000 members",
        "roles_small" => "GET roles, 12 members",
        "roles_group" => "GET roles, read right from a user group",
        "member_big" => "GET one member, 10,000 members",
        "member_small" => "GET one member, 12 members",
        "account_gets_big" => "every account GET, 10,000 members",
        "account_gets_small" => "every account GET, 12 members",
        "audit_big" => "GET audit_logs newest 50, N entries",
        "audit_small" => "GET audit_logs newest 50, 100 entries",
        "audit_v2_big" => "GET logs/audit (v2) newest 50, N entries",
        "group_members_big" => "GET a 2,500-member user group's members, pages 1-10",
        "members_page_big" => "GET members, 25 by email, pages 1-20, 10,000 members",
        "console_members_big" => "the console's members page, the same pages",
        "memberships_many" => "GET /memberships, a user of 5,000 accounts",
        "memberships_few" => "GET /memberships, a user of 3 accounts",
        "accounts_many" => "GET /accounts, a user of 5,000 accounts",
        "accounts_few" => "GET /accounts, a user of 3 accounts",
        "tokens_many" => "GET /user/tokens 20, a user of 2,000 tokens",
        "tokens_none" => "GET /user/tokens 20, a user of none",
        "groups_many" => "GET user_groups 20, 1,000 groups",
        "groups_one" => "GET user_groups 20, 1 group",
        "roles_groups_many" => "GET roles, 1,000 user groups",
        "roles_groups_one" => "GET roles, 1 user group",
        _ => "",
    }
}

fn get(path: String, email: String, key: String) -> Step {
    Step {
        method: Method::GET,
        path,
        email,
        key,
        body: None,
        cookie: None,
    }
}

/// Each user reads their own first membership.
struct Membership(Arc<Layout>);

impl Scenario for Membership {
    fn step(&self, n: u64, idx: usize, _: &[u8]) -> Option<Step> {
        let i = n % self.0.users;
        let user = self.0.user(i);
        let id = self.0.user_membership(i, 0);
        (idx == 0).then(|| get(format!("/client/v4/memberships/{id}"), user.email, user.key))
    }
}

/// As `Membership`, with callers drawn log-uniformly over the users (the continuous form
/// of Zipf's law with exponent 1): the first few hundred users make half the requests at
/// 100,000 users, and every user is drawn now and then.
struct MembershipHot(Arc<Layout>);

impl Scenario for MembershipHot {
    fn step(&self, n: u64, idx: usize, _: &[u8]) -> Option<Step> {
        let i = skewed(n, self.0.users);
        let user = self.0.user(i);
        let id = self.0.user_membership(i, 0);
        (idx == 0).then(|| get(format!("/client/v4/memberships/{id}"), user.email, user.key))
    }
}

/// A rank in `0..count` for iteration `n`, rank `k` about `1 / (k + 1)` times as likely as
/// rank 0: a uniform draw (a hash of `n`, so both targets get the same callers) mapped
/// through the inverse of `ln(k + 1) / ln(count + 1)`.
fn skewed(n: u64, count: u64) -> u64 {
    // splitmix64's finalizer: consecutive n give unrelated draws.
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    let uniform = (z >> 11) as f64 / (1u64 << 53) as f64;
    let rank = ((count as f64 + 1.0).ln() * uniform).exp() - 1.0;
    (rank as u64).min(count - 1)
}

/// Each user lists their accepted memberships.
struct Memberships(Arc<Layout>);

impl Scenario for Memberships {
    fn step(&self, n: u64, idx: usize, _: &[u8]) -> Option<Step> {
        let user = self.0.user(n % self.0.users);
        let path = "/client/v4/memberships?status=accepted&per_page=50".to_string();
        (idx == 0).then(|| get(path, user.email, user.key))
    }
}

/// The admin pages deep into the 10,000-member account, ordered by email.
struct MembersDeep(Arc<Layout>);

impl Scenario for MembersDeep {
    fn step(&self, _: u64, idx: usize, _: &[u8]) -> Option<Step> {
        let admin = self.0.admin();
        let path = format!(
            "/client/v4/accounts/{}/members?order=user.email&page={DEEP_PAGE}&per_page=50",
            self.0.big_account()
        );
        (idx == 0).then(|| get(path, admin.email, admin.key))
    }
}

/// The admin invites a user to an invite account and the user accepts. Iteration `n` is a
/// pair no other iteration uses, spread over the accounts so writes do not all queue on one.
struct InviteAccept(Arc<Layout>);

impl Scenario for InviteAccept {
    fn step(&self, n: u64, idx: usize, prev: &[u8]) -> Option<Step> {
        let layout = &self.0;
        let account = layout.invite_account(n % layout.invite_accounts);
        let invitee = n / layout.invite_accounts;
        if invitee >= layout.users {
            return None;
        }
        let user = layout.user(invitee);
        match idx {
            0 => {
                let admin = layout.admin();
                Some(Step {
                    method: Method::POST,
                    path: format!("/client/v4/accounts/{account}/members"),
                    email: admin.email,
                    key: admin.key,
                    body: Some(
                        serde_json::json!({"email": user.email, "roles": [crate::dataset::ADMINISTRATOR]})
                            .to_string(),
                    ),
                    cookie: None,
                })
            }
            1 => {
                // An answer without an id (the baseline's) gets a placeholder: against
                // Roster that is a 404 and counts as an error, as it should.
                let id = serde_json::from_slice::<serde_json::Value>(prev)
                    .ok()
                    .and_then(|v| v["result"]["id"].as_str().map(str::to_string))
                    .unwrap_or_else(|| "0".repeat(32));
                Some(Step {
                    method: Method::PUT,
                    path: format!("/client/v4/memberships/{id}"),
                    email: user.email,
                    key: user.key,
                    body: Some(r#"{"status":"accepted"}"#.to_string()),
                    cookie: None,
                })
            }
            _ => None,
        }
    }
}

/// Every request authenticates as the next user, so the key lookup is never the same row
/// twice in a row.
struct AuthMix(Arc<Layout>);

impl Scenario for AuthMix {
    fn step(&self, n: u64, idx: usize, _: &[u8]) -> Option<Step> {
        // A different stride from the other scenarios, so this is not their cache replayed.
        let user = self.0.user(n.wrapping_mul(7919) % self.0.users);
        (idx == 0).then(|| get("/client/v4/user".to_string(), user.email, user.key))
    }
}

/// The admin invites a new address to an invite account (answered 200): one write per
/// iteration, to compare with the reads' rate on the same server. Addresses come from a
/// range no other scenario uses, so no iteration collides with another.
struct Invite(Arc<Layout>);

impl Scenario for Invite {
    fn step(&self, n: u64, idx: usize, _: &[u8]) -> Option<Step> {
        let layout = &self.0;
        let admin = layout.admin();
        (idx == 0).then(|| Step {
            method: Method::POST,
            path: format!(
                "/client/v4/accounts/{}/members",
                layout.invite_account(n % layout.invite_accounts)
            ),
            email: admin.email,
            key: admin.key,
            body: Some(
                serde_json::json!({"email": format!("new{n}@invite.bench.example"), "roles": [crate::dataset::ADMINISTRATOR]})
                    .to_string(),
            ),
            cookie: None,
        })
    }
}

#[derive(Clone, Copy)]
enum Size {
    /// The 10,000-member account, read by its Super Administrator.
    Big,
    /// A 12-member account, read by one of its Administrators.
    Small,
    /// The 10,000-member account, read by members who may read it through their user group
    /// only.
    Grouped,
}

/// The account-scoped GETs, in the big or a small account: `Some(k)` always the `k`-th,
/// `None` each in turn.
struct AccountGet(Arc<Layout>, Size, Option<u64>);

/// How many GETs `AccountGet` knows.
const ACCOUNT_GETS: u64 = 6;

impl Scenario for AccountGet {
    fn step(&self, n: u64, idx: usize, _: &[u8]) -> Option<Step> {
        let layout = &self.0;
        let (caller, account, member) = match self.1 {
            Size::Big => (
                layout.admin(),
                layout.big_account(),
                layout.big_membership(n % crate::dataset::BIG_MEMBERS),
            ),
            Size::Small => {
                let i = n % layout.users;
                let (account, member) = layout.small_account_of(i);
                (layout.user(i), account, member)
            }
            Size::Grouped => (
                layout.grouped(n),
                layout.big_account(),
                layout.big_membership(n % crate::dataset::BIG_MEMBERS),
            ),
        };
        let base = format!("/client/v4/accounts/{account}");
        let path = match self.2.unwrap_or(n % ACCOUNT_GETS) {
            0 => format!("{base}/roles"),
            1 => format!("{base}/members/{member}"),
            2 => base,
            3 => format!("{base}/roles/{}", crate::dataset::ADMINISTRATOR),
            4 => format!("{base}/iam/permission_groups?per_page=20"),
            _ => format!("{base}/iam/resource_groups"),
        };
        (idx == 0).then(|| get(path, caller.email, caller.key))
    }
}

/// A page of the big account's user group's members (pages 1 to 10 of 20), by its admin.
struct GroupMembers(Arc<Layout>);

impl Scenario for GroupMembers {
    fn step(&self, n: u64, idx: usize, _: &[u8]) -> Option<Step> {
        let layout = &self.0;
        let caller = layout.admin();
        let path = format!(
            "/client/v4/accounts/{}/iam/user_groups/{}/members?per_page=20&page={}",
            layout.big_account(),
            layout.big_user_group(),
            n % 10 + 1
        );
        (idx == 0).then(|| get(path, caller.email, caller.key))
    }
}

/// The newest page of an account's audit log: the big account's (as many entries as the
/// dataset has users) or user 0's small account's ([`crate::dataset::SMALL_AUDIT_ENTRIES`]),
/// through v1 or v2.
struct AuditNewest(Arc<Layout>, Size, bool);

impl Scenario for AuditNewest {
    fn step(&self, _: u64, idx: usize, _: &[u8]) -> Option<Step> {
        let layout = &self.0;
        let (caller, account) = match self.1 {
            Size::Small => (layout.user(0), layout.small_account_of(0).0),
            _ => (layout.admin(), layout.big_account()),
        };
        let path = if self.2 {
            format!(
                "/client/v4/accounts/{account}/logs/audit?since=2000-01-01&before=2999-01-01&limit=50"
            )
        } else {
            format!("/client/v4/accounts/{account}/audit_logs?per_page=50")
        };
        (idx == 0).then(|| get(path, caller.email, caller.key))
    }
}

/// A page (1 to 20) of the big account's members as the console's members page lists them
/// (25 by email), by its administrator: the API's JSON page, or with a console session
/// (`.1`) the console's HTML page (which also asks the API for the account and its roles).
struct MembersPage(Arc<Layout>, Option<String>);

impl Scenario for MembersPage {
    fn step(&self, n: u64, idx: usize, _: &[u8]) -> Option<Step> {
        let layout = &self.0;
        let account = layout.big_account();
        let page = 1 + n % 20;
        let admin = layout.admin();
        let path = match &self.1 {
            None => format!(
                "/client/v4/accounts/{account}/members?page={page}&per_page=25&order=user.email"
            ),
            Some(_) => format!("/console/accounts/{account}/members?page={page}"),
        };
        (idx == 0).then(|| Step {
            cookie: self.1.clone(),
            ..get(path, admin.email, admin.key)
        })
    }
}

/// One request, the same every iteration, by one caller; `page`: the first page of a list
/// that must say it holds exactly `.0` items, `.1` a page.
struct Fixed {
    path: String,
    caller: Caller,
    page: Option<(u64, u64)>,
}

impl Scenario for Fixed {
    fn step(&self, _: u64, idx: usize, _: &[u8]) -> Option<Step> {
        let (email, key) = (self.caller.email.clone(), self.caller.key.clone());
        (idx == 0).then(|| get(self.path.clone(), email, key))
    }

    fn check(&self, _: u64, _: usize, body: &[u8]) -> Result<(), String> {
        match self.page {
            Some((total, per_page)) => first_page(body, total, per_page),
            None => Ok(()),
        }
    }
}

/// The user's memberships, every status, the first page by default.
fn memberships_of(layout: &Layout, p: Portfolio) -> Arc<dyn Scenario> {
    Arc::new(Fixed {
        path: "/client/v4/memberships".into(),
        caller: layout.portfolio_user(p),
        page: Some((p.counts().0, DEFAULT_PER_PAGE)),
    })
}

/// The accounts the user may read: those of their accepted memberships.
fn accounts_of(layout: &Layout, p: Portfolio) -> Arc<dyn Scenario> {
    Arc::new(Fixed {
        path: "/client/v4/accounts".into(),
        caller: layout.portfolio_user(p),
        page: Some((p.counts().1, DEFAULT_PER_PAGE)),
    })
}

/// The first twenty user groups of the many- or the one-group account, by its Super
/// Administrator.
fn groups_of(layout: &Layout, many: bool) -> Arc<dyn Scenario> {
    let (account, groups) = layout.groups_account(many);
    Arc::new(Fixed {
        path: format!("/client/v4/accounts/{account}/iam/user_groups?per_page=20"),
        caller: layout.groups_admin(),
        page: Some((groups, 20)),
    })
}

/// Whether a list's answer says it is the first page of exactly `total` items, `per_page`
/// a page. Only `result_info` is parsed, found in the body's tail (the envelope writes it
/// last): the driver's one core must not spend on checking what the server spends on
/// answering.
fn first_page(body: &[u8], total: u64, per_page: u64) -> Result<(), String> {
    #[derive(serde::Deserialize)]
    struct Info {
        page: u64,
        count: u64,
        total_count: u64,
    }
    const KEY: &[u8] = b"\"result_info\":";
    let find = |from: usize| {
        body[from..]
            .windows(KEY.len())
            .rposition(|w| w == KEY)
            .map(|at| from + at + KEY.len())
    };
    let start = find(body.len().saturating_sub(256))
        .or_else(|| find(0))
        .ok_or("the answer has no result_info")?;
    let end = body[start..]
        .iter()
        .position(|&b| b == b'}')
        .ok_or("result_info is not closed")?;
    let info: Info = serde_json::from_slice(&body[start..=start + end])
        .map_err(|e| format!("result_info is not as expected: {e}"))?;
    let count = total.min(per_page);
    if (info.page, info.count, info.total_count) != (1, count, total) {
        return Err(format!(
            "result_info says page {} with {} of total_count {}, where the dataset holds {total} (a first page of {count})",
            info.page, info.count, info.total_count
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::first_page;

    fn answer(info: &str) -> Vec<u8> {
        format!(r#"{{"success":true,"errors":[],"messages":[],"result":[{{"id":"x","result_info":"no"}}],"result_info":{info}}}"#)
            .into_bytes()
    }

    #[test]
    fn a_first_page_must_say_the_exact_total_and_count() {
        let right = r#"{"page":1,"per_page":20,"count":20,"total_count":5000,"total_pages":250}"#;
        assert_eq!(first_page(&answer(right), 5000, 20), Ok(()));
        let short = r#"{"page":1,"per_page":20,"count":3,"total_count":3,"total_pages":1}"#;
        assert_eq!(first_page(&answer(short), 3, 20), Ok(()));
        // A server that counts only what it read, or pages wrong, fails.
        let capped = r#"{"page":1,"per_page":20,"count":20,"total_count":20,"total_pages":1}"#;
        assert!(first_page(&answer(capped), 5000, 20).is_err());
        let second = r#"{"page":2,"per_page":20,"count":20,"total_count":5000,"total_pages":250}"#;
        assert!(first_page(&answer(second), 5000, 20).is_err());
        let fewer = r#"{"page":1,"per_page":20,"count":19,"total_count":5000,"total_pages":250}"#;
        assert!(first_page(&answer(fewer), 5000, 20).is_err());
        assert!(first_page(br#"{"success":true,"result":[]}"#, 0, 20).is_err());
    }

    #[test]
    fn result_info_is_found_beyond_the_tail_too() {
        let info = r#"{"page":1,"count":0,"total_count":0}"#;
        let mut body = answer(info);
        // Anything after result_info (a field a later envelope adds) longer than the tail.
        body.pop();
        body.extend_from_slice(format!(r#","padding":"{}"}}"#, "x".repeat(400)).as_bytes());
        assert_eq!(first_page(&body, 0, 20), Ok(()));
    }
}
