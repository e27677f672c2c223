//! Value types parsed once at the edge: after parsing they are valid by construction, so
//! handlers and the store never re-check them.

use crate::domain::clock;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::DomainError;

/// A Cloudflare object identifier: exactly 32 lowercase hex characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Id(String);

impl Id {
    pub fn generate() -> Self {
        Id(uuid::Uuid::new_v4().simple().to_string())
    }

    /// Parses a caller-supplied identifier; upper-case hex is folded because Cloudflare
    /// identifiers are case-insensitive on input but always lowercase on output.
    pub fn parse(raw: &str) -> Option<Self> {
        (raw.len() == 32 && raw.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| Id(raw.to_ascii_lowercase()))
    }

    pub fn parse_field(raw: &str, field: &str) -> Result<Self, DomainError> {
        Self::parse(raw).ok_or_else(|| {
            DomainError::invalid(
                field,
                format!("{field} must be a 32-character hex identifier"),
            )
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Rebuilds an id read back from our own database, which only ever stores parsed ids.
    pub fn from_trusted(raw: String) -> Self {
        Id(raw)
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Id::parse(&raw)
            .ok_or_else(|| serde::de::Error::custom("expected a 32-character hex identifier"))
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An email address as the user typed it, plus the folded form used for every comparison
/// (equality included).
#[derive(Debug, Clone)]
pub struct Email {
    original: String,
    folded: String,
}

impl PartialEq for Email {
    fn eq(&self, other: &Self) -> bool {
        self.folded == other.folded
    }
}

impl Eq for Email {}

pub const EMAIL_MAX: usize = 90;

/// Bounds on what one request may ask the server to weigh on every later request: a
/// member's roles or policies, a token's policies, and the groups, resources or objects
/// in one policy or resource group. Cloudflare documents none; these are Roster's own,
/// well past what its dashboard makes.
pub const MAX_GRANTS: usize = 50;
pub const MAX_PER_POLICY: usize = 100;

/// Checks that `count` items in `field` are within `most`.
pub fn at_most(count: usize, most: usize, field: &str) -> Result<(), DomainError> {
    if count > most {
        return Err(DomainError::invalid(
            field,
            format!("{field} holds at most {most} entries ({count} given)"),
        ));
    }
    Ok(())
}

/// Characters that change how text is shown without being seen: direction overrides and
/// isolates, zero-width characters, the soft hyphen, the byte order mark. An address
/// holding one can look like another.
fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
    )
}

impl Email {
    pub fn parse(raw: &str, field: &str) -> Result<Self, DomainError> {
        let value = raw.trim();
        let bad = |why: &str| DomainError::invalid(field, format!("{field} {why}"));
        if value.is_empty() {
            return Err(bad("must not be empty"));
        }
        if value.chars().count() > EMAIL_MAX {
            return Err(bad(&format!("must be at most {EMAIL_MAX} characters")));
        }
        let Some((local, domain)) = value.split_once('@') else {
            return Err(bad("is not a valid email address"));
        };
        let valid = !local.is_empty()
            && !domain.is_empty()
            && !domain.contains('@')
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !value
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || invisible(c));
        if !valid {
            return Err(bad("is not a valid email address"));
        }
        Ok(Email {
            original: value.to_string(),
            folded: value.to_lowercase(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.original
    }

    pub fn folded(&self) -> &str {
        &self.folded
    }

    pub fn from_trusted(original: String) -> Self {
        let folded = original.to_lowercase();
        Email { original, folded }
    }
}

macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident, $param:literal { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl FromStr for $name {
            type Err = DomainError;
            fn from_str(s: &str) -> Result<Self, DomainError> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(DomainError::invalid(
                        $param,
                        format!(
                            "{} must be one of: {}",
                            $param,
                            [$($text),+].join(", ")
                        ),
                    )),
                }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                raw.parse().map_err(|e: DomainError| serde::de::Error::custom(e.to_string()))
            }
        }
    };
}

wire_enum!(
    /// Where an invitation stands.
    Status, "status" {
        Pending => "pending",
        Accepted => "accepted",
        Rejected => "rejected",
    }
);

wire_enum!(AccountType, "type" { Standard => "standard", Enterprise => "enterprise" });

wire_enum!(Access, "access" { Allow => "allow", Deny => "deny" });

wire_enum!(Direction, "direction" { Asc => "asc", Desc => "desc" });

wire_enum!(
    DefaultNameservers, "settings.default_nameservers" {
        Standard => "cloudflare.standard",
        CustomAccount => "custom.account",
        CustomTenant => "custom.tenant",
    }
);

/// The current time as Cloudflare writes it (RFC 3339, UTC).
pub fn now() -> String {
    timestamp(clock::now_utc())
}

/// A time as Cloudflare writes it (RFC 3339).
pub fn timestamp(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .expect("UTC timestamps always format")
}

/// A time written as [`timestamp`] writes it, if `raw` is one.
pub fn parse_timestamp(raw: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339).ok()
}

/// Checks a free-text field: its length in characters, as Cloudflare's limits are, and no
/// control characters (a NUL byte cannot even be stored in PostgreSQL text).
pub fn bounded(value: &str, field: &str, min: usize, max: usize) -> Result<String, DomainError> {
    let n = value.chars().count();
    if n < min || n > max {
        let why = if min == 0 {
            format!("{field} must be at most {max} characters")
        } else {
            format!("{field} must be between {min} and {max} characters")
        };
        return Err(DomainError::invalid(field, why));
    }
    if value.chars().any(char::is_control) {
        return Err(DomainError::invalid(
            field,
            format!("{field} must not contain control characters"),
        ));
    }
    Ok(value.to_string())
}

wire_enum!(
    /// Sort fields of `GET /memberships`.
    MembershipOrder, "order" {
        Id => "id",
        AccountName => "account.name",
        Status => "status",
    }
);

wire_enum!(
    /// Sort fields of `GET /accounts/{id}/members`.
    MemberOrder, "order" {
        FirstName => "user.first_name",
        LastName => "user.last_name",
        Email => "user.email",
        Status => "status",
    }
);

wire_enum!(
    /// How an invitee answers an invitation (`PUT /memberships/{id}`).
    Answer, "status" {
        Accepted => "accepted",
        Rejected => "rejected",
    }
);
