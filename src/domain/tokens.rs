//! API tokens: what a token may do (its policies), when and from where it works, and the
//! rules for making and changing one. A token only ever narrows its owner's rights: account
//! endpoints check the owner's membership first and the token's policies on top, so a token
//! never grants more than its owner has.

use crate::domain::clock;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::DomainError;
use super::catalog;
use super::model::PermissionGroup;
use super::permissions::Permissions;
use super::types::{Id, MAX_GRANTS, MAX_PER_POLICY, at_most, bounded, now};

wire_enum!(
    /// Whether a token policy allows or denies what it names.
    Effect, "policies.effect" {
        Allow => "allow",
        Deny => "deny",
    }
);

wire_enum!(
    TokenStatus, "status" {
        Active => "active",
        Disabled => "disabled",
        Expired => "expired",
    }
);

pub const ACCOUNT_RESOURCE: &str = "com.cloudflare.api.account";
pub const USER_RESOURCE: &str = "com.cloudflare.api.user";
const ZONE_RESOURCE: &str = "com.cloudflare.api.account.zone";

/// What a policy applies to: `"*"` for the named resource itself, or a map of the resources
/// inside it (zones of an account), which does not cover the account itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Resource {
    All(String),
    Within(BTreeMap<String, String>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenPolicy {
    pub id: Id,
    pub effect: Effect,
    pub permission_groups: Vec<Id>,
    pub resources: BTreeMap<String, Resource>,
}

/// Client addresses a token may be used from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpCondition {
    #[serde(rename = "in", default, skip_serializing_if = "Vec::is_empty")]
    pub allowed: Vec<IpNet>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_in: Vec<IpNet>,
}

/// Who a token belongs to: a user (it acts for them, within their rights) or an account
/// (it acts for nobody, within its own policies on that account alone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    User(Id),
    Account(Id),
}

#[derive(Debug, Clone)]
pub struct Token {
    pub id: Id,
    pub owner: Owner,
    /// For an account's token, the email of the user who made it (Cloudflare's
    /// `creator_email_at_creation`); none when an operator or another token made it.
    pub creator_email: Option<String>,
    pub name: String,
    pub status: TokenStatus,
    pub policies: Vec<TokenPolicy>,
    pub not_before: Option<String>,
    pub expires_on: Option<String>,
    pub request_ip: Option<IpCondition>,
    pub issued_on: String,
    pub modified_on: String,
    pub last_used_on: Option<String>,
}

/// Why a presented token may not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Disabled, expired or not valid yet.
    Inactive,
    /// The client's address is outside the token's `request_ip` condition.
    Location(Option<IpAddr>),
}

use super::types::parse_timestamp as parse_time;

/// The status a client sees of a token with this stored status and expiry, at `at`.
pub fn effective_status(
    status: TokenStatus,
    expires_on: Option<&str>,
    at: OffsetDateTime,
) -> TokenStatus {
    let expired = expires_on.and_then(parse_time).is_some_and(|e| e <= at);
    match status {
        TokenStatus::Active if expired => TokenStatus::Expired,
        status => status,
    }
}

impl Token {
    /// The status a client sees: an active token past its expiry is expired.
    pub fn effective_status(&self, at: OffsetDateTime) -> TokenStatus {
        effective_status(self.status, self.expires_on.as_deref(), at)
    }

    /// Checks that the token works now, from `ip` (unknown when the server cannot tell,
    /// which a token with an address condition refuses).
    pub fn check_usable(&self, at: OffsetDateTime, ip: Option<IpAddr>) -> Result<(), Refusal> {
        let early = self
            .not_before
            .as_deref()
            .and_then(parse_time)
            .is_some_and(|nb| at < nb);
        if self.effective_status(at) != TokenStatus::Active || early {
            return Err(Refusal::Inactive);
        }
        if let Some(cond) = &self.request_ip {
            let Some(ip) = ip else {
                return Err(Refusal::Location(None));
            };
            // A dual-stack listener sees IPv4 clients as `::ffff:a.b.c.d`; conditions name
            // them as IPv4.
            let ip = ip.to_canonical();
            let inside = |nets: &[IpNet]| nets.iter().any(|n| n.contains(&ip));
            if (!cond.allowed.is_empty() && !inside(&cond.allowed)) || inside(&cond.not_in) {
                return Err(Refusal::Location(Some(ip)));
            }
        }
        Ok(())
    }

    fn policies_on<'a>(
        &'a self,
        effect: Effect,
        resource: &'a str,
    ) -> impl Iterator<Item = &'static PermissionGroup> + 'a {
        self.policies
            .iter()
            .filter(move |p| p.effect == effect && covers(&p.resources, resource))
            .flat_map(|p| p.permission_groups.iter())
            .filter_map(catalog::permission_group)
    }

    /// Whether a policy of `effect` covering `resource` names the permission group `name`.
    pub fn names_group(&self, effect: Effect, resource: &str, name: &str) -> bool {
        self.policies_on(effect, resource).any(|g| g.name == name)
    }

    /// The account grants the token carries on `resource`: allowed groups' grants without
    /// denied groups' grants.
    pub fn grants_on(&self, resource: &str) -> Permissions {
        let union = |effect| {
            self.policies_on(effect, resource)
                .fold(Permissions::default(), |acc, g| acc.union(&g.grants))
        };
        union(Effect::Allow).without(&union(Effect::Deny))
    }

    /// What the token carries across the whole of `account`, for capping what its bearer
    /// gives there: the groups allowed on the account itself or on every one of its zones,
    /// less what any deny policy that may concern it names (one on the account, any zone,
    /// or a wildcard; not one naming only other accounts or users). A grant on some zones
    /// only does not count: the cap errs on the narrow side.
    pub fn held_in(&self, account: &Id) -> Permissions {
        let whole = account_resource(account);
        // On every zone only a zone's groups count: an account's group granted on zones
        // grants nothing on the account.
        let reaches = |p: &TokenPolicy, g: &PermissionGroup| {
            covers(&p.resources, &whole)
                || (g.scopes == ZONE_RESOURCE && covers_every_zone(&p.resources, &whole))
        };
        let union = |effect, reach: &dyn Fn(&TokenPolicy, &PermissionGroup) -> bool| {
            self.policies
                .iter()
                .filter(|p| p.effect == effect)
                .flat_map(|p| {
                    p.permission_groups
                        .iter()
                        .filter_map(catalog::permission_group)
                        .filter(move |g| reach(p, g))
                })
                .fold(Permissions::default(), |acc, g| acc.union(&g.grants))
        };
        let concerns = |p: &TokenPolicy, _: &PermissionGroup| {
            p.resources
                .keys()
                .any(|key| key.starts_with(ZONE_RESOURCE) || key_covers(key, &whole))
        };
        union(Effect::Allow, &reaches).without(&union(Effect::Deny, &concerns))
    }

    /// The permission groups the token allows anywhere, on any resource: what making it
    /// gives, denies aside (a deny only narrows).
    pub fn allowed_groups(&self) -> impl Iterator<Item = &'static PermissionGroup> + '_ {
        self.policies
            .iter()
            .filter(|p| p.effect == Effect::Allow)
            .flat_map(|p| p.permission_groups.iter())
            .filter_map(catalog::permission_group)
    }
}

/// Whether a resource key covers `resource`: names it, or is a wildcard over its kind
/// (`com.cloudflare.api.account.*`).
fn key_covers(key: &str, resource: &str) -> bool {
    key == resource
        || key.strip_suffix('*').is_some_and(|prefix| {
            resource
                .strip_prefix(prefix)
                .is_some_and(|rest| !rest.contains('.'))
        })
}

/// A policy's resources cover `resource` when they name it, or a wildcard over its kind
/// (`com.cloudflare.api.account.*`), with `"*"`.
fn covers(resources: &BTreeMap<String, Resource>, resource: &str) -> bool {
    resources.iter().any(|(key, value)| {
        key_covers(key, resource) && matches!(value, Resource::All(v) if v == "*")
    })
}

/// Whether a policy's resources cover every zone of the account `account` names: every
/// zone anywhere (`com.cloudflare.api.account.zone.*`), or every zone nested inside an
/// entry that covers the account.
fn covers_every_zone(resources: &BTreeMap<String, Resource>, account: &str) -> bool {
    let every_zone = format!("{ZONE_RESOURCE}.*");
    resources.iter().any(|(key, value)| match value {
        Resource::All(v) => key == &every_zone && v == "*",
        Resource::Within(inner) => {
            key_covers(key, account) && inner.get(&every_zone).is_some_and(|v| v == "*")
        }
    })
}

pub fn account_resource(account: &Id) -> String {
    format!("{ACCOUNT_RESOURCE}.{account}")
}

pub fn user_resource(user: &Id) -> String {
    format!("{USER_RESOURCE}.{user}")
}

/// A token's editable fields as a client sent them, checked by [`TokenInput::check`].
#[derive(Debug, Clone)]
pub struct TokenInput {
    pub name: String,
    pub policies: Vec<PolicyInput>,
    pub not_before: Option<String>,
    pub expires_on: Option<String>,
    pub request_ip: Option<IpCondition>,
}

#[derive(Debug, Clone)]
pub struct PolicyInput {
    pub id: Option<Id>,
    pub effect: Effect,
    pub permission_groups: Vec<Id>,
    pub resources: BTreeMap<String, Resource>,
}

/// A user's token accepts `com.cloudflare.api.account.<id>|*`,
/// `com.cloudflare.api.account.zone.<id>|*` and the owner's own `com.cloudflare.api.user.<id>`.
/// An account's token names only that account and zones: a zone by id at the top level,
/// every zone (`*`) only inside the account's own entry, where it means the account's zones.
fn check_resource_key(
    key: &str,
    owner: &Owner,
    nested: bool,
    field: &str,
) -> Result<(), DomainError> {
    let id_or_star =
        |rest: &str| rest == "*" || Id::parse(rest).is_some_and(|id| id.as_str() == rest);
    let ok = match owner {
        Owner::User(user) => {
            if let Some(rest) = key.strip_prefix(&format!("{ZONE_RESOURCE}.")) {
                id_or_star(rest)
            } else if let Some(rest) = key.strip_prefix(&format!("{ACCOUNT_RESOURCE}.")) {
                id_or_star(rest)
            } else if let Some(rest) = key.strip_prefix(&format!("{USER_RESOURCE}.")) {
                rest == user.as_str() || rest == "*"
            } else {
                false
            }
        }
        Owner::Account(account) => {
            if let Some(rest) = key.strip_prefix(&format!("{ZONE_RESOURCE}.")) {
                (nested && rest == "*") || Id::parse(rest).is_some_and(|id| id.as_str() == rest)
            } else {
                !nested && key == account_resource(account)
            }
        }
    };
    if ok {
        return Ok(());
    }
    let allowed = match owner {
        Owner::User(_) => {
            "com.cloudflare.api.account.<id or *>, com.cloudflare.api.account.zone.<id or *>, or com.cloudflare.api.user.<your user id>"
        }
        Owner::Account(_) => {
            "this account's com.cloudflare.api.account.<account id>, or com.cloudflare.api.account.zone.<zone id>; an account's token reaches no other account and no user"
        }
    };
    Err(DomainError::invalid(
        field,
        format!("{field}: {key:?} is not a resource this token can name ({allowed})"),
    ))
}

/// Reads a client's time: RFC 3339, or an ISO 8601 date-time without an offset (the SDKs
/// send naive datetimes that way), taken as UTC and stored in RFC 3339.
fn check_time(raw: &str, field: &str) -> Result<(String, OffsetDateTime), DomainError> {
    if let Some(at) = parse_time(raw) {
        return Ok((raw.to_string(), at));
    }
    time::PrimitiveDateTime::parse(raw, &time::format_description::well_known::Iso8601::DEFAULT)
        .ok()
        .map(|naive| naive.assume_utc())
        .and_then(|at| at.format(&Rfc3339).ok().map(|text| (text, at)))
        .ok_or_else(|| {
            DomainError::invalid(
                field,
                format!("{field} must be an RFC 3339 time, e.g. 2030-01-01T00:00:00Z"),
            )
        })
}

impl TokenInput {
    /// Checks every field and builds the token's policies; a policy without an id gets one.
    fn check(self, owner: &Owner) -> Result<TokenFields, DomainError> {
        let name = bounded(self.name.trim(), "name", 1, 120)?;
        if self.policies.is_empty() {
            return Err(DomainError::invalid(
                "policies",
                "policies must hold at least one policy",
            ));
        }
        at_most(self.policies.len(), MAX_GRANTS, "policies")?;
        let mut policies = Vec::with_capacity(self.policies.len());
        for (i, p) in self.policies.into_iter().enumerate() {
            let field = |what: &str| format!("policies[{i}].{what}");
            at_most(
                p.permission_groups.len(),
                MAX_PER_POLICY,
                &field("permission_groups"),
            )?;
            super::rules::no_repeats(&p.permission_groups, "policies.permission_groups")?;
            let resources = p.resources.len()
                + p.resources
                    .values()
                    .map(|r| match r {
                        Resource::Within(inner) => inner.len(),
                        Resource::All(_) => 0,
                    })
                    .sum::<usize>();
            at_most(resources, MAX_PER_POLICY, &field("resources"))?;
            if p.permission_groups.is_empty() {
                return Err(DomainError::invalid(
                    "policies.permission_groups",
                    format!("policies[{i}].permission_groups must name at least one group"),
                ));
            }
            if let Some(g) = p
                .permission_groups
                .iter()
                .find(|g| catalog::permission_group(g).is_none())
            {
                return Err(DomainError::invalid(
                    "policies.permission_groups",
                    format!("policies[{i}].permission_groups: unknown permission group {g}"),
                ));
            }
            if let (Owner::Account(_), Some(g)) = (
                owner,
                p.permission_groups
                    .iter()
                    .filter_map(catalog::permission_group)
                    .find(|g| g.scopes == USER_RESOURCE),
            ) {
                return Err(DomainError::invalid(
                    "policies.permission_groups",
                    format!(
                        "policies[{i}].permission_groups: {} is a user's permission group; an account's token acts for no user",
                        g.name
                    ),
                ));
            }
            if p.resources.is_empty() {
                return Err(DomainError::invalid(
                    "policies.resources",
                    format!("policies[{i}].resources must name at least one resource"),
                ));
            }
            let field = format!("policies[{i}].resources");
            for (key, value) in &p.resources {
                check_resource_key(key, owner, false, &field)?;
                match value {
                    Resource::All(v) if v == "*" => {}
                    Resource::Within(inner) if !inner.is_empty() => {
                        for (k, v) in inner {
                            check_resource_key(k, owner, true, &field)?;
                            if v != "*" {
                                return Err(DomainError::invalid(
                                    "policies.resources",
                                    format!("{field}: nested resources take \"*\""),
                                ));
                            }
                        }
                    }
                    _ => {
                        return Err(DomainError::invalid(
                            "policies.resources",
                            format!("{field}: {key:?} must map to \"*\" or to a map of resources"),
                        ));
                    }
                }
            }
            policies.push(TokenPolicy {
                id: p.id.unwrap_or_else(Id::generate),
                effect: p.effect,
                permission_groups: p.permission_groups,
                resources: p.resources,
            });
        }
        let not_before = self
            .not_before
            .map(|t| check_time(&t, "not_before"))
            .transpose()?;
        let expires_on = self
            .expires_on
            .map(|t| check_time(&t, "expires_on"))
            .transpose()?;
        if let Some((_, expires)) = &expires_on {
            if *expires <= clock::now_utc() {
                return Err(DomainError::invalid(
                    "expires_on",
                    "expires_on must be in the future",
                ));
            }
            if not_before.as_ref().is_some_and(|(_, nb)| nb >= expires) {
                return Err(DomainError::invalid(
                    "expires_on",
                    "expires_on must be after not_before",
                ));
            }
        }
        Ok(TokenFields {
            name,
            policies,
            not_before: not_before.map(|(t, _)| t),
            expires_on: expires_on.map(|(t, _)| t),
            request_ip: self.request_ip.filter(|c| *c != IpCondition::default()),
        })
    }
}

struct TokenFields {
    name: String,
    policies: Vec<TokenPolicy>,
    not_before: Option<String>,
    expires_on: Option<String>,
    request_ip: Option<IpCondition>,
}

/// A new token of `owner`, active from now; `creator_email` is kept for an account's token.
pub fn new_token(
    owner: Owner,
    input: TokenInput,
    creator_email: Option<String>,
) -> Result<Token, DomainError> {
    let f = input.check(&owner)?;
    let at = now();
    let creator_email = match owner {
        Owner::Account(_) => creator_email,
        Owner::User(_) => None,
    };
    Ok(Token {
        id: Id::generate(),
        owner,
        creator_email,
        name: f.name,
        status: TokenStatus::Active,
        policies: f.policies,
        not_before: f.not_before,
        expires_on: f.expires_on,
        request_ip: f.request_ip,
        issued_on: at.clone(),
        modified_on: at,
        last_used_on: None,
    })
}

/// One allow policy of `groups` over `resources` (each with `"*"`).
fn allowing(
    name: String,
    groups: Vec<Id>,
    resources: impl IntoIterator<Item = String>,
    expires_on: Option<String>,
) -> TokenInput {
    TokenInput {
        name,
        policies: vec![PolicyInput {
            id: None,
            effect: Effect::Allow,
            permission_groups: groups,
            resources: resources
                .into_iter()
                .map(|r| (r, Resource::All("*".into())))
                .collect(),
        }],
        not_before: None,
        expires_on,
        request_ip: None,
    }
}

/// A token allowing `groups` on every account its owner can reach and on the owner
/// themselves: what `roster token create` makes.
pub fn simple_token(
    owner: &Id,
    name: String,
    groups: Vec<Id>,
    expires_on: Option<String>,
) -> Result<Token, DomainError> {
    let resources = [format!("{ACCOUNT_RESOURCE}.*"), user_resource(owner)];
    let input = allowing(name, groups, resources, expires_on);
    new_token(Owner::User(owner.clone()), input, None)
}

/// An account's token allowing `groups` on that account: what fixtures make.
pub fn simple_account_token(
    account: &Id,
    name: String,
    groups: Vec<Id>,
) -> Result<Token, DomainError> {
    let input = allowing(name, groups, [account_resource(account)], None);
    new_token(Owner::Account(account.clone()), input, None)
}

/// Whether a token `made` by a caller who came with token `own` keeps within `own`'s
/// bounds: it works no later (an expiry no later than `own`'s), no sooner (a `not_before`
/// no earlier) and from no other addresses (the same address condition) than `own` does.
/// Otherwise a short-lived or fenced token would mint a lasting, open one.
pub fn within_bounds_of(own: &Token, made: &Token) -> bool {
    let time = |t: &Option<String>| t.as_deref().and_then(parse_time);
    let expires = match time(&own.expires_on) {
        None => true,
        Some(limit) => time(&made.expires_on).is_some_and(|e| e <= limit),
    };
    let starts = match time(&own.not_before) {
        None => true,
        Some(limit) => time(&made.not_before).is_some_and(|s| s >= limit),
    };
    let fenced = own.request_ip.is_none() || own.request_ip == made.request_ip;
    expires && starts && fenced
}

/// Whether `after` may do anything `before` could not: other policies (their ids aside),
/// active again, or another validity window or address condition. A rename or a disable
/// gives nothing, so managing a token one could not make stays possible that far.
pub fn widens(before: &Token, after: &Token) -> bool {
    let policies = |t: &Token| -> Vec<(Effect, Vec<Id>, BTreeMap<String, Resource>)> {
        t.policies
            .iter()
            .map(|p| (p.effect, p.permission_groups.clone(), p.resources.clone()))
            .collect()
    };
    policies(before) != policies(after)
        || (after.status == TokenStatus::Active && before.status != TokenStatus::Active)
        || before.not_before != after.not_before
        || before.expires_on != after.expires_on
        || before.request_ip != after.request_ip
}

/// Replaces a token's editable fields (a PUT); a status left out stays as it is.
pub fn update_token(
    token: &mut Token,
    input: TokenInput,
    status: Option<TokenStatus>,
) -> Result<(), DomainError> {
    let f = input.check(&token.owner)?;
    token.name = f.name;
    token.policies = f.policies;
    token.not_before = f.not_before;
    token.expires_on = f.expires_on;
    token.request_ip = f.request_ip;
    if let Some(status) = status {
        token.status = status;
    }
    token.modified_on = now();
    Ok(())
}

/// Parses a CIDR, or a single address as its own /32 or /128.
pub fn parse_net(raw: &str) -> Option<IpNet> {
    IpNet::from_str(raw)
        .ok()
        .or_else(|| IpAddr::from_str(raw).ok().map(IpNet::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(policies: Vec<TokenPolicy>) -> Token {
        Token {
            id: Id::generate(),
            owner: Owner::User(Id::generate()),
            creator_email: None,
            name: "t".into(),
            status: TokenStatus::Active,
            policies,
            not_before: None,
            expires_on: None,
            request_ip: None,
            issued_on: now(),
            modified_on: now(),
            last_used_on: None,
        }
    }

    fn policy(effect: Effect, group: &str, resource: &str) -> TokenPolicy {
        TokenPolicy {
            id: Id::generate(),
            effect,
            permission_groups: vec![catalog::permission_group_named(group).unwrap().id.clone()],
            resources: BTreeMap::from([(resource.to_string(), Resource::All("*".into()))]),
        }
    }

    /// IPv4 clients of a listener on `[::]` arrive as IPv4-mapped IPv6 addresses.
    #[test]
    fn address_conditions_compare_mapped_addresses_as_ipv4() {
        let mut t = token(vec![]);
        t.request_ip = Some(IpCondition {
            allowed: vec!["192.0.2.0/24".parse().unwrap()],
            not_in: vec!["192.0.2.7/32".parse().unwrap()],
        });
        let at = clock::now_utc();
        let mapped = |v4: &str| {
            Some(IpAddr::V6(
                v4.parse::<std::net::Ipv4Addr>().unwrap().to_ipv6_mapped(),
            ))
        };
        assert_eq!(t.check_usable(at, mapped("192.0.2.1")), Ok(()));
        assert_eq!(
            t.check_usable(at, mapped("192.0.2.7")),
            Err(Refusal::Location(Some("192.0.2.7".parse().unwrap())))
        );
        assert!(t.check_usable(at, mapped("198.51.100.1")).is_err());
    }

    #[test]
    fn wildcards_cover_one_level_and_nested_maps_cover_nothing_above_them() {
        let account = format!("{ACCOUNT_RESOURCE}.0123456789abcdef0123456789abcdef");
        let star = BTreeMap::from([(format!("{ACCOUNT_RESOURCE}.*"), Resource::All("*".into()))]);
        assert!(covers(&star, &account));
        assert!(!covers(
            &star,
            &format!("{ZONE_RESOURCE}.0123456789abcdef0123456789abcdef")
        ));
        let nested = BTreeMap::from([(
            account.clone(),
            Resource::Within(BTreeMap::from([(format!("{ZONE_RESOURCE}.*"), "*".into())])),
        )]);
        assert!(!covers(&nested, &account));
    }

    #[test]
    fn an_account_token_names_its_own_account_and_zones_only() {
        let own = Id::parse("0123456789abcdef0123456789abcdef").unwrap();
        let owner = Owner::Account(own.clone());
        let ok = |key: &str, nested| check_resource_key(key, &owner, nested, "r").is_ok();
        assert!(ok(&account_resource(&own), false));
        assert!(ok(&format!("{ZONE_RESOURCE}.{own}"), false));
        assert!(ok(&format!("{ZONE_RESOURCE}.*"), true));
        assert!(
            !ok(&format!("{ZONE_RESOURCE}.*"), false),
            "every zone anywhere"
        );
        assert!(!ok(&format!("{ACCOUNT_RESOURCE}.*"), false));
        assert!(!ok(&account_resource(&Id::generate()), false));
        assert!(!ok(&account_resource(&own), true));
        assert!(!ok(&user_resource(&own), false));
        // A user's token names any account and its own user.
        let user = Owner::User(own.clone());
        assert!(check_resource_key(&format!("{ACCOUNT_RESOURCE}.*"), &user, false, "r").is_ok());
        assert!(check_resource_key(&user_resource(&own), &user, false, "r").is_ok());
    }

    #[test]
    fn deny_wins_over_allow() {
        use crate::domain::permissions::Key;
        let account = format!("{ACCOUNT_RESOURCE}.0123456789abcdef0123456789abcdef");
        let everywhere = format!("{ACCOUNT_RESOURCE}.*");
        let capped = token(vec![
            policy(Effect::Allow, "Account Settings Write", &everywhere),
            policy(Effect::Deny, "Account Settings Write", &account),
        ]);
        let grants = capped.grants_on(&account);
        assert!(grants.can_read(Key::Organization) && !grants.can_write(Key::Organization));
        let other = format!("{ACCOUNT_RESOURCE}.ffffffffffffffffffffffffffffffff");
        assert!(capped.grants_on(&other).can_write(Key::Organization));
        let removed = token(vec![
            policy(Effect::Allow, "Account Settings Write", &everywhere),
            policy(Effect::Deny, "Account Settings Read", &account),
        ]);
        assert_eq!(removed.grants_on(&account), Permissions::default());
    }

    #[test]
    fn naive_times_are_utc() {
        let (text, _) = check_time("2999-01-01T00:00:00", "expires_on").unwrap();
        assert_eq!(text, "2999-01-01T00:00:00Z");
        assert!(check_time("2999-01-01", "expires_on").is_err());
        assert!(check_time("soon", "expires_on").is_err());
    }

    #[test]
    fn address_conditions_and_time_windows() {
        let mut t = token(vec![]);
        t.request_ip = Some(IpCondition {
            allowed: vec![parse_net("10.0.0.0/8").unwrap()],
            not_in: vec![parse_net("10.1.0.0/16").unwrap()],
        });
        let at = clock::now_utc();
        assert_eq!(
            t.check_usable(at, Some("10.2.3.4".parse().unwrap())),
            Ok(())
        );
        assert!(
            t.check_usable(at, Some("10.1.3.4".parse().unwrap()))
                .is_err()
        );
        assert!(
            t.check_usable(at, Some("192.0.2.1".parse().unwrap()))
                .is_err()
        );
        assert!(t.check_usable(at, None).is_err());
        t.request_ip = None;
        t.not_before = Some("2999-01-01T00:00:00Z".into());
        assert_eq!(t.check_usable(at, None), Err(Refusal::Inactive));
        t.not_before = None;
        t.expires_on = Some("2000-01-01T00:00:00Z".into());
        assert_eq!(t.effective_status(at), TokenStatus::Expired);
    }
}
