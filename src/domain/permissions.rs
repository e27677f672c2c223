//! The twelve account permission keys and their read/write grants. A role carries a full
//! [`Permissions`] map; a member's effective permissions are the union of their roles (or of
//! their policies' permission groups, less what a deny policy takes away).

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde::{Deserialize, Deserializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Analytics,
    Billing,
    CachePurge,
    Dns,
    DnsRecords,
    Lb,
    Logs,
    Organization,
    Ssl,
    Waf,
    ZoneSettings,
    Zones,
}

pub const KEYS: [(Key, &str); 12] = [
    (Key::Analytics, "analytics"),
    (Key::Billing, "billing"),
    (Key::CachePurge, "cache_purge"),
    (Key::Dns, "dns"),
    (Key::DnsRecords, "dns_records"),
    (Key::Lb, "lb"),
    (Key::Logs, "logs"),
    (Key::Organization, "organization"),
    (Key::Ssl, "ssl"),
    (Key::Waf, "waf"),
    (Key::ZoneSettings, "zone_settings"),
    (Key::Zones, "zones"),
];

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, Deserialize)]
pub struct Grant {
    #[serde(default)]
    pub read: bool,
    #[serde(default)]
    pub write: bool,
}

impl Grant {
    pub const NONE: Grant = Grant {
        read: false,
        write: false,
    };
    pub const READ: Grant = Grant {
        read: true,
        write: false,
    };
    pub const WRITE: Grant = Grant {
        read: true,
        write: true,
    };
}

/// A grant for each of the twelve keys, indexed in `KEYS` order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Permissions([Grant; 12]);

impl Permissions {
    pub const fn all(grant: Grant) -> Self {
        Permissions([grant; 12])
    }

    pub fn with(mut self, key: Key, grant: Grant) -> Self {
        self.0[key as usize] = grant;
        self
    }

    pub fn get(&self, key: Key) -> Grant {
        self.0[key as usize]
    }

    pub fn union(mut self, other: &Permissions) -> Self {
        for (mine, theirs) in self.0.iter_mut().zip(other.0.iter()) {
            mine.read |= theirs.read;
            mine.write |= theirs.write;
        }
        self
    }

    /// What a deny policy leaves of these grants: denying a key's write caps it at read,
    /// denying only its read takes the key away entirely (writing implies reading).
    pub fn without(mut self, denied: &Permissions) -> Self {
        for (mine, deny) in self.0.iter_mut().zip(denied.0.iter()) {
            if deny.write {
                mine.write = false;
            } else if deny.read {
                *mine = Grant::NONE;
            }
        }
        self
    }

    /// What both grant.
    pub fn intersect(mut self, other: &Permissions) -> Self {
        for (mine, theirs) in self.0.iter_mut().zip(other.0.iter()) {
            mine.read &= theirs.read || theirs.write;
            mine.write &= theirs.write;
        }
        self
    }

    /// What these grant that `before` did not: reading where it could not read, writing
    /// where it could not write.
    pub fn beyond(mut self, before: &Permissions) -> Self {
        for (mine, old) in self.0.iter_mut().zip(before.0.iter()) {
            let (could_read, could_write) = (old.read || old.write, old.write);
            *mine = Grant {
                read: (mine.read || mine.write) && !could_read,
                write: mine.write && !could_write,
            };
        }
        self
    }

    /// These rights narrowed by a token's (`token`): a right some permission group expresses
    /// (`expressible`) stays only where the token carries it; one none expresses, the token
    /// could never carry, and it stays.
    pub fn narrowed_by(mut self, token: &Permissions, expressible: &Permissions) -> Self {
        for ((mine, t), e) in self
            .0
            .iter_mut()
            .zip(token.0.iter())
            .zip(expressible.0.iter())
        {
            let (read, write) = (mine.read || mine.write, mine.write);
            let read = read && (t.read || t.write || !(e.read || e.write));
            // Writing implies reading: a write the token cannot express stays only where
            // the reading stays.
            *mine = Grant {
                read,
                write: write && read && (t.write || !e.write),
            };
        }
        self
    }

    /// Whether everything these grant, `held` grants too.
    pub fn within(&self, held: &Permissions) -> bool {
        KEYS.iter().all(|(key, _)| {
            (!self.can_read(*key) || held.can_read(*key))
                && (!self.can_write(*key) || held.can_write(*key))
        })
    }

    pub fn can_read(&self, key: Key) -> bool {
        let g = self.get(key);
        g.read || g.write
    }

    pub fn can_write(&self, key: Key) -> bool {
        self.get(key).write
    }
}

impl Serialize for Permissions {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(KEYS.len()))?;
        for (key, name) in KEYS {
            map.serialize_entry(name, &self.get(key))?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Permissions {
    /// Accepts any subset of the twelve keys (missing ones grant nothing) and refuses
    /// unknown keys, so a typo in a fixture file is caught rather than silently ignored.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = std::collections::BTreeMap::<String, Grant>::deserialize(d)?;
        let mut perms = Permissions::default();
        for (name, grant) in raw {
            let key = KEYS
                .iter()
                .find(|(_, n)| *n == name)
                .map(|(k, _)| *k)
                .ok_or_else(|| {
                    serde::de::Error::custom(format!("unknown permission key {name}"))
                })?;
            perms = perms.with(key, grant);
        }
        Ok(perms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org(grant: Grant) -> Permissions {
        Permissions::default().with(Key::Organization, grant)
    }

    #[test]
    fn a_token_narrows_only_what_a_group_can_express() {
        let analytics = |g| Permissions::default().with(Key::Analytics, g);
        let member = analytics(Grant::WRITE);
        // Reading is expressible, writing is not.
        let expressible = analytics(Grant::READ);
        // A token carrying analytics reading keeps the member's writing, which none carries.
        assert_eq!(
            member.narrowed_by(&analytics(Grant::READ), &expressible),
            analytics(Grant::WRITE)
        );
        // A token carrying none of it keeps nothing: writing implies the reading it lacks.
        let kept = member.narrowed_by(&Permissions::default(), &expressible);
        assert!(!kept.can_read(Key::Analytics) && !kept.can_write(Key::Analytics));
        // Where nothing is expressible, the member's rights stay whole.
        assert_eq!(
            member.narrowed_by(&Permissions::default(), &Permissions::default()),
            member
        );
        // Where everything is, the token's and the member's meet.
        assert_eq!(
            member.narrowed_by(&analytics(Grant::READ), &analytics(Grant::WRITE)),
            analytics(Grant::READ)
        );
    }

    #[test]
    fn within_and_intersect_compare_key_by_key() {
        assert!(org(Grant::READ).within(&org(Grant::WRITE)));
        assert!(!org(Grant::WRITE).within(&org(Grant::READ)));
        assert!(!org(Grant::READ).within(&Permissions::default()));
        assert!(Permissions::default().within(&Permissions::default()));
        let billing = Permissions::default().with(Key::Billing, Grant::READ);
        assert!(!billing.within(&org(Grant::WRITE)));
        assert!(billing.within(&Permissions::all(Grant::READ)));
        assert_eq!(
            org(Grant::WRITE).intersect(&org(Grant::READ)),
            org(Grant::READ)
        );
        assert_eq!(
            org(Grant::WRITE).intersect(&billing),
            Permissions::default()
        );
    }

    #[test]
    fn denying_read_takes_write_away_too() {
        let left = org(Grant::WRITE).without(&org(Grant::READ));
        assert!(!left.can_read(Key::Organization));
        assert!(!left.can_write(Key::Organization));
    }

    #[test]
    fn denying_write_leaves_read() {
        let left = org(Grant::READ).without(&org(Grant::WRITE));
        assert!(left.can_read(Key::Organization));
        assert!(!left.can_write(Key::Organization));
        let left = org(Grant::WRITE).without(&org(Grant::WRITE));
        assert!(left.can_read(Key::Organization));
        assert!(!left.can_write(Key::Organization));
    }

    #[test]
    fn denying_nothing_changes_nothing() {
        assert_eq!(
            org(Grant::WRITE).without(&Permissions::default()),
            org(Grant::WRITE)
        );
    }
}
