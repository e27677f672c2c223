//! The built-in catalogs every account sees: Cloudflare's account roles and the permission
//! groups that policies and API tokens refer to. Their ids are fixed here so that they are
//! the same across restarts and databases (clients and fixtures hard-code them).

use std::sync::LazyLock;

use super::model::{PermissionGroup, Role};
use super::permissions::{Grant, Key, Permissions};
use super::types::Id;

const NONE: Permissions = Permissions::all(Grant::NONE);
const READ_ALL: Permissions = Permissions::all(Grant::READ);

pub const SUPER_ADMINISTRATOR: &str = "795df1c379e2469e89ab15cca71e91a0";

/// Every built-in role lets its holder see the account and its members; what differs is
/// what they may change.
fn member_base() -> Permissions {
    NONE.with(Key::Organization, Grant::READ)
}

fn zone_role(keys: &[Key]) -> Permissions {
    keys.iter()
        .fold(member_base().with(Key::Zones, Grant::READ), |p, k| {
            p.with(*k, Grant::WRITE)
        })
}

static ROLES: LazyLock<Vec<Role>> = LazyLock::new(|| {
    let role = |id: &str, name: &str, description: &str, permissions: Permissions| Role {
        id: Id::parse(id).expect("catalog ids are valid"),
        name: name.into(),
        description: description.into(),
        permissions,
    };
    vec![
        role(
            SUPER_ADMINISTRATOR,
            "Super Administrator - All Privileges",
            "Can edit any Cloudflare setting, make purchases, update billing, and manage memberships. Super Administrators can revoke the access of other Super Administrators.",
            Permissions::all(Grant::WRITE),
        ),
        role(
            "93c0b5f28f784adfabec6701f4e37655",
            "Administrator",
            "Can access the full account, except for membership management and billing.",
            Permissions::all(Grant::WRITE)
                .with(Key::Billing, Grant::READ)
                .with(Key::Organization, Grant::READ),
        ),
        role(
            "25a6523fbf0a4cdaa8af77b778c7dd19",
            "Administrator Read Only",
            "Can access the full account in read-only mode.",
            READ_ALL,
        ),
        role(
            "4e8120ca175943b391a9810bad7059b8",
            "Analytics",
            "Can read Analytics.",
            member_base()
                .with(Key::Analytics, Grant::READ)
                .with(Key::Zones, Grant::READ),
        ),
        role(
            "462131c6e56c4a3894166a1f9b47cf9e",
            "Billing",
            "Can edit the account's billing profile and subscriptions.",
            member_base().with(Key::Billing, Grant::WRITE),
        ),
        role(
            "38accead774f438a98a58663e5b613f4",
            "Cache Purge",
            "Can purge the edge cache.",
            zone_role(&[Key::CachePurge]),
        ),
        role(
            "87e7860bc4c445faba075646dac38cca",
            "DNS",
            "Can edit DNS records.",
            zone_role(&[Key::Dns, Key::DnsRecords]),
        ),
        role(
            "e98bc326ebe9429e8fd646e46268817c",
            "Firewall",
            "Can edit WAF, IP Firewall, and Zone Lockdown settings.",
            zone_role(&[Key::Waf]),
        ),
        role(
            "ed5a4e42f65a43beb10644637b6514e7",
            "Load Balancer",
            "Can edit Load Balancers, Pools, Origins, and Health Checks.",
            zone_role(&[Key::Lb]),
        ),
        role(
            "9c22adc1b2824bb788bd723d96914512",
            "Log Share",
            "Can edit Log Share configuration.",
            zone_role(&[Key::Logs]),
        ),
        role(
            "2584cc07186247b68e718cd8f0b1e266",
            "SSL/TLS, Caching, Performance, Page Rules, and Customization",
            "Can edit most Cloudflare settings except for DNS and Firewall.",
            zone_role(&[Key::Ssl, Key::ZoneSettings, Key::CachePurge]),
        ),
    ]
});

pub fn builtin_roles() -> &'static [Role] {
    &ROLES
}

/// Groups that only gate API tokens on the caller's own records (`/memberships`, `/user`)
/// or the management of an account's tokens carry no account grants.
static PERMISSION_GROUPS: LazyLock<Vec<PermissionGroup>> = LazyLock::new(|| {
    const ACCOUNT: &str = "com.cloudflare.api.account";
    const ZONE: &str = "com.cloudflare.api.account.zone";
    const USER: &str = "com.cloudflare.api.user";
    let group =
        |id: &str, name: &str, label: &str, scopes: &str, grants: Permissions| PermissionGroup {
            id: Id::parse(id).expect("catalog ids are valid"),
            name: name.into(),
            label: label.into(),
            scopes: scopes.into(),
            grants,
        };
    let read = |k: Key| NONE.with(k, Grant::READ);
    let write = |k: Key| NONE.with(k, Grant::WRITE);
    vec![
        group(
            "15b972a8f4cb43e78efbafb322f7dee5",
            "Account Settings Read",
            "account_settings_read",
            ACCOUNT,
            read(Key::Organization),
        ),
        group(
            "bcc19b668966402dadd900f2b4243d2e",
            "Account Settings Write",
            "account_settings_write",
            ACCOUNT,
            write(Key::Organization),
        ),
        group(
            "f113a2797ed3414dbb2cc8f45273fc48",
            "Billing Read",
            "billing_read",
            ACCOUNT,
            read(Key::Billing),
        ),
        group(
            "845c71302fd64396a2835dc7c94417d3",
            "Billing Write",
            "billing_write",
            ACCOUNT,
            write(Key::Billing),
        ),
        group(
            "9117e5da093b4e66b569dc785cc6ee75",
            "Account Analytics Read",
            "account_analytics_read",
            ACCOUNT,
            read(Key::Analytics),
        ),
        group(
            "070072160ea449c1993db4a6b76621ff",
            "Logs Read",
            "logs_read",
            ACCOUNT,
            read(Key::Logs),
        ),
        group(
            "d5bcb82a7ebc4b2c8682aefd3adba0a7",
            "Logs Write",
            "logs_write",
            ACCOUNT,
            write(Key::Logs),
        ),
        group(
            "82e64a83756745bbbb1c9c2701bf816b",
            "Magic Network Monitoring",
            "fbm_user",
            ACCOUNT,
            read(Key::Analytics),
        ),
        group(
            "c8fed203ed3043cba015a93ad1616f1f",
            "Zone Read",
            "zone_read",
            ZONE,
            read(Key::Zones),
        ),
        group(
            "9a15c9deb41547aa820c8b6815900ee1",
            "Zone Write",
            "zone_write",
            ZONE,
            write(Key::Zones),
        ),
        group(
            "917965bd88dc47f78791a7bf452d13e4",
            "Zone Settings Read",
            "zone_settings_read",
            ZONE,
            read(Key::ZoneSettings),
        ),
        group(
            "d7b559e4724643b1a85b443961797961",
            "Zone Settings Write",
            "zone_settings_write",
            ZONE,
            write(Key::ZoneSettings),
        ),
        group(
            "ff6a58c45ccd4aba965f0de1ced77b2c",
            "DNS Read",
            "dns_read",
            ZONE,
            read(Key::Dns).with(Key::DnsRecords, Grant::READ),
        ),
        group(
            "c04f21e7c9484120a60314ba1d079cec",
            "DNS Write",
            "dns_write",
            ZONE,
            write(Key::Dns).with(Key::DnsRecords, Grant::WRITE),
        ),
        group(
            "243c7345945a4c6098e14d04c006bdf0",
            "Cache Purge",
            "cache_purge",
            ZONE,
            write(Key::CachePurge),
        ),
        group(
            "6ef0ef1ad429498e8c1144b148221f32",
            "Firewall Services Read",
            "firewall_services_read",
            ZONE,
            read(Key::Waf),
        ),
        group(
            "0e7efc51ba0749f18ecea35a0c549f7e",
            "Firewall Services Write",
            "firewall_services_write",
            ZONE,
            write(Key::Waf),
        ),
        group(
            "c4983326fd8545f09487165da7f10b0a",
            "Load Balancers Read",
            "load_balancers_read",
            ZONE,
            read(Key::Lb),
        ),
        group(
            "438974399ac34127866c834c6e9d6db5",
            "Load Balancers Write",
            "load_balancers_write",
            ZONE,
            write(Key::Lb),
        ),
        group(
            "71e0bf19834240b3b8c54343f1999342",
            "SSL and Certificates Read",
            "ssl_and_certificates_read",
            ZONE,
            read(Key::Ssl),
        ),
        group(
            "84a76167707c4b12b297bfe560748be6",
            "SSL and Certificates Write",
            "ssl_and_certificates_write",
            ZONE,
            write(Key::Ssl),
        ),
        group(
            "05de63ec42a143408bcece00dee847e4",
            "Memberships Read",
            "memberships_read",
            USER,
            NONE,
        ),
        group(
            "d1e5ea4d88a94a42bd357447aca341d9",
            "Memberships Write",
            "memberships_write",
            USER,
            NONE,
        ),
        group(
            "0cc3a61731504c89b99ec1be78b77aa0",
            "API Tokens Read",
            "api_tokens_read",
            USER,
            NONE,
        ),
        group(
            "686d18d5ac6c441c867cbf6771e58a0a",
            "API Tokens Write",
            "api_tokens_write",
            USER,
            NONE,
        ),
        // Roster's ids: Cloudflare's own for these two are not published.
        group(
            "4a1c3e0b7d2f4c8e9b6a5d3f2e1c0b9a",
            "Account API Tokens Read",
            "account_api_tokens_read",
            ACCOUNT,
            NONE,
        ),
        group(
            "8b2d4f6a1c3e4e7a9c0b2d4f6a8c1e3b",
            "Account API Tokens Write",
            "account_api_tokens_write",
            ACCOUNT,
            NONE,
        ),
        group(
            "6f71d1fb19e54da99e020d58c20622e3",
            "User Details Read",
            "user_details_read",
            USER,
            NONE,
        ),
        group(
            "cd012d1d216f4a2889bae2e5cd703c9b",
            "User Details Write",
            "user_details_write",
            USER,
            NONE,
        ),
    ]
});

pub fn permission_groups() -> &'static [PermissionGroup] {
    &PERMISSION_GROUPS
}

pub fn permission_group(id: &Id) -> Option<&'static PermissionGroup> {
    permission_groups().iter().find(|g| &g.id == id)
}

/// Looks a group up by its display name, case-insensitively, for the CLI and fixtures.
pub fn permission_group_named(name: &str) -> Option<&'static PermissionGroup> {
    permission_groups()
        .iter()
        .find(|g| g.name.eq_ignore_ascii_case(name))
}

/// Every permission group's name, in the catalog's order.
pub fn permission_group_names() -> Vec<&'static str> {
    permission_groups()
        .iter()
        .map(|g| g.name.as_str())
        .collect()
}

/// What a person who typed `wanted` for a name probably meant: up to three of `names` most
/// like it (Jaro-Winkler, case-insensitive, at least 0.8), the likeliest first. For
/// messages such as "unknown role Adminstrator (nearest: Administrator, ...)": a typo is
/// fixed from the message alone.
pub fn nearest_names<'a>(wanted: &str, names: &[&'a str]) -> Vec<&'a str> {
    let wanted = wanted.to_lowercase();
    let mut scored: Vec<(f64, &str)> = names
        .iter()
        .map(|n| (strsim::jaro_winkler(&wanted, &n.to_lowercase()), *n))
        .filter(|(score, _)| *score >= 0.8)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.into_iter().take(3).map(|(_, n)| n).collect()
}

/// " (nearest: A, B)" for a message about an unknown `wanted`, or " (for example: A, B, C)"
/// when no name is near it; nothing when there are no names.
pub fn nearest_hint(wanted: &str, names: &[&str]) -> String {
    let near = nearest_names(wanted, names);
    if names.is_empty() {
        String::new()
    } else if near.is_empty() {
        format!(" (for example: {})", names[..names.len().min(3)].join(", "))
    } else {
        format!(" (nearest: {})", near.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typo_names_what_was_meant_and_nonsense_gets_examples() {
        let names = permission_group_names();
        assert_eq!(nearest_names("dns wrte", &names)[0], "DNS Write");
        assert!(nearest_names("zzzzqqq", &names).is_empty());
        assert!(nearest_hint("zzzzqqq", &names).starts_with(" (for example: "));
        assert!(nearest_hint("Adminstrator", &["Administrator", "DNS"]).contains("Administrator"));
        assert_eq!(nearest_hint("x", &[]), "");
    }
}
