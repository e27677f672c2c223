//! The measured requests. Callers rotate over the whole user base where the scenario allows,
//! so a large dataset is not measured through a handful of hot rows.

use std::sync::Arc;

use hyper::Method;

use crate::dataset::Layout;
use crate::load::{Scenario, Step};

/// Deep enough into the big account that every earlier member is sorted and skipped.
pub const DEEP_PAGE: u64 = 150;

pub const NAMES: [&str; 5] = [
    "membership",
    "memberships",
    "members_deep",
    "invite_accept",
    "auth_mix",
];

pub fn by_name(name: &str, layout: Arc<Layout>) -> Option<Arc<dyn Scenario>> {
    let scenario: Arc<dyn Scenario> = match name {
        "membership" => Arc::new(Membership(layout)),
        "memberships" => Arc::new(Memberships(layout)),
        "members_deep" => Arc::new(MembersDeep(layout)),
        "invite_accept" => Arc::new(InviteAccept(layout)),
        "auth_mix" => Arc::new(AuthMix(layout)),
        _ => return None,
    };
    Some(scenario)
}

pub fn describe(name: &str) -> &'static str {
    match name {
        "membership" => "GET /memberships/{id}",
        "memberships" => "GET /memberships?status=accepted",
        "members_deep" => "GET /accounts/{big}/members p150",
        "invite_accept" => "POST members + PUT membership",
        "auth_mix" => "GET /user, many users",
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
