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
/// Resource groups an account holds at most. Their list is answered whole (as the SDKs read
/// it, unpaged) and every request's catalog holds them all, so their number is bounded.
pub const MAX_RESOURCE_GROUPS: usize = 1_000;

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

/// Whether `c` is shown as nothing or changes how the text around it is shown: a control
/// character, a default-ignorable code point (Unicode's `Default_Ignorable_Code_Point`:
/// zero-width characters, variation selectors, fillers such as U+3164, tags, the soft
/// hyphen, the byte order mark) or a bidirectional control (`Bidi_Control`: embeddings,
/// overrides, isolates, marks). Text holding one can look like other text, so an address
/// or a name holding one could pass for another. The properties come from ICU4X's compiled
/// Unicode data rather than a table here, so they follow Unicode's versions.
pub fn unseen(c: char) -> bool {
    use icu_properties::props::{BidiControl, BinaryProperty, DefaultIgnorableCodePoint};
    // No ASCII character is default-ignorable or a bidi control: the tables' lookup, a
    // twentieth of a one-row read when done for each character of the caller's email, is
    // for the rest (bench/README.md, "Figures behind the code").
    if c.is_ascii() {
        return c.is_ascii_control();
    }
    c.is_control() || DefaultIgnorableCodePoint::for_char(c) || BidiControl::for_char(c)
}

/// Whether a name holds an [`unseen`] character other than a joiner or a variation
/// selector where writing needs one, by the contexts of RFC 5892 (CONTEXTJ) and emoji:
/// a zero-width non-joiner or joiner between a virama and a letter, a non-joiner between
/// letters that join (Persian, Arabic), a joiner between two pictographs (an emoji
/// sequence), an emoji presentation selector after an emoji, an ideographic variation
/// selector after an ideograph. Anywhere else they could make
/// two names look alike. An email allows none of them.
fn hides_something(value: &str) -> bool {
    use icu_properties::CodePointMapData;
    use icu_properties::props::{
        BinaryProperty, CanonicalCombiningClass, Emoji, ExtendedPictographic, Ideographic,
        JoiningType,
    };
    let chars: Vec<char> = value.chars().collect();
    let virama = |c: char| {
        CodePointMapData::<CanonicalCombiningClass>::new().get(c) == CanonicalCombiningClass::Virama
    };
    let joining = |c: char| CodePointMapData::<JoiningType>::new().get(c);
    let letter = |c: char| c.is_alphabetic();
    let selector = |c: char| matches!(c, '\u{FE00}'..='\u{FE0F}' | '\u{E0100}'..='\u{E01EF}');
    // A pictograph, or one followed by its variation selector.
    let pictograph_ends_at = |i: usize| {
        ExtendedPictographic::for_char(chars[i])
            || (selector(chars[i]) && i >= 1 && ExtendedPictographic::for_char(chars[i - 1]))
    };
    chars.iter().enumerate().any(|(i, &c)| {
        if !unseen(c) {
            return false;
        }
        let before = i.checked_sub(1).map(|j| chars[j]);
        let after = chars.get(i + 1).copied();
        let placed = match c {
            '\u{200C}' => {
                (before.is_some_and(virama) && after.is_some_and(letter))
                    || (before.is_some_and(|b| {
                        matches!(
                            joining(b),
                            JoiningType::DualJoining | JoiningType::LeftJoining
                        )
                    }) && after.is_some_and(|a| {
                        matches!(
                            joining(a),
                            JoiningType::DualJoining | JoiningType::RightJoining
                        )
                    }))
            }
            '\u{200D}' => {
                (before.is_some_and(virama) && after.is_some_and(letter))
                    || (i >= 1
                        && pictograph_ends_at(i - 1)
                        && after.is_some_and(ExtendedPictographic::for_char))
            }
            // Text or emoji presentation of an emoji; an ideograph's variant.
            '\u{FE0E}' | '\u{FE0F}' => before.is_some_and(|b| !b.is_ascii() && Emoji::for_char(b)),
            '\u{E0100}'..='\u{E01EF}' => before.is_some_and(Ideographic::for_char),
            _ => false,
        };
        !placed
    })
}

/// What a name looks like, for telling two names apart: its visible characters, in lower
/// case. Names that differ only in a joiner, a selector or case are one name.
pub fn name_key(name: &str) -> String {
    name.chars()
        .filter(|c| !unseen(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

/// An email in lower case, as Unicode folds it: for ASCII (nearly every address) without
/// the per-character case tables.
fn fold(email: &str) -> String {
    if email.is_ascii() {
        email.to_ascii_lowercase()
    } else {
        email.to_lowercase()
    }
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
            && !value.chars().any(|c| c.is_whitespace() || unseen(c));
        if !valid {
            return Err(bad("is not a valid email address"));
        }
        Ok(Email {
            original: value.to_string(),
            folded: fold(value),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.original
    }

    pub fn folded(&self) -> &str {
        &self.folded
    }

    pub fn from_trusted(original: String) -> Self {
        let folded = fold(&original);
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

/// Checks a free-text field: its length in characters, as Cloudflare's limits are, and
/// nothing [`unseen`] in it (a NUL byte cannot even be stored in PostgreSQL text; the rest
/// would let a name pass for another). Text of whitespace and unseen characters alone
/// shows nothing: a field that must hold something refuses it as it refuses "".
pub fn bounded(value: &str, field: &str, min: usize, max: usize) -> Result<String, DomainError> {
    let blank = value.chars().all(|c| c.is_whitespace() || unseen(c));
    let n = if blank { 0 } else { value.chars().count() };
    if n < min || n > max {
        let why = if min == 0 {
            format!("{field} must be at most {max} characters")
        } else {
            format!("{field} must be between {min} and {max} characters")
        };
        return Err(DomainError::invalid(field, why));
    }
    if hides_something(value) {
        return Err(DomainError::invalid(
            field,
            format!("{field} must not contain control, invisible or direction-changing characters"),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Each is invisible, or turns the text around it, in a way a reader cannot see.
    const UNSEEN: [char; 14] = [
        '\u{FE0F}',  // variation selector-16
        '\u{3164}',  // Hangul filler
        '\u{115F}',  // Hangul choseong filler
        '\u{E0020}', // tag space
        '\u{200B}',  // zero width space
        '\u{200D}',  // zero width joiner
        '\u{00AD}',  // soft hyphen
        '\u{FEFF}',  // byte order mark
        '\u{202E}',  // right-to-left override
        '\u{2067}',  // right-to-left isolate
        '\u{200F}',  // right-to-left mark
        '\u{061C}',  // Arabic letter mark
        '\u{0007}',  // bell
        '\u{009B}',  // C1 control sequence introducer
    ];

    #[test]
    fn unseen_characters_are_the_ignorable_the_bidi_controls_and_the_controls() {
        for c in UNSEEN {
            assert!(unseen(c), "U+{:04X}", u32::from(c));
        }
        for c in [
            'a', 'é', 'ß', '中', 'ك', '\u{2764}', ' ', '\u{3000}', '-', '.',
        ] {
            assert!(!unseen(c), "U+{:04X}", u32::from(c));
        }
    }

    #[test]
    fn names_keep_joiners_and_variation_selectors_where_text_uses_them() {
        for name in [
            "\u{0639}\u{0644}\u{06CC}\u{200C}\u{0631}\u{0636}\u{0627}", // Persian, with ZWNJ
            "\u{2764}\u{FE0F}",                                         // a red heart
            "\u{1F9D1}\u{200D}\u{1F4BB}",                               // a technologist
            "\u{1F3F3}\u{FE0F}\u{200D}\u{1F308}",                       // a rainbow flag
        ] {
            assert_eq!(bounded(name, "name", 1, 200).as_deref(), Ok(name));
        }
        for hidden in [
            "\u{200D}lead",
            "trail\u{200C}",
            "a\u{200D} b",
            "\u{FE0F}start",
            "a\u{200D}\u{200D}b",
            "Ad\u{200D}mins",
            "Ad\u{200C}mins",
            "Acme\u{FE0F}",
            "\u{C9}\u{FE0E}quipe", // a selector after a letter that is no emoji
            "\u{0915}\u{094D}\u{200D}", // a joiner after a virama, and nothing
            "x\u{3164}y",
            "x\u{E0020}y",
            "ab\u{202E}cd",
        ] {
            assert!(bounded(hidden, "name", 1, 200).is_err(), "{hidden:?}");
        }
        // An email allows none of them.
        assert!(Email::parse("a\u{200D}b@example.com", "email").is_err());
    }

    #[test]
    fn an_email_holding_an_unseen_character_is_refused() {
        let plain = Email::parse("user@example.com", "email").unwrap();
        for c in UNSEEN {
            for raw in [
                format!("user{c}@example.com"),
                format!("user@exa{c}mple.com"),
            ] {
                let refused = Email::parse(&raw, "email").unwrap_err();
                assert!(
                    refused
                        .to_string()
                        .contains("email is not a valid email address"),
                    "U+{:04X}: {refused}",
                    u32::from(c)
                );
            }
        }
        assert_eq!(plain.folded(), "user@example.com");
        assert!(Email::parse("Ünïcödé@exämple.com", "email").is_ok());
    }

    #[test]
    fn a_name_holding_an_unseen_character_is_refused() {
        for c in UNSEEN {
            let refused = bounded(&format!("Acme{c}Corp"), "name", 1, 100).unwrap_err();
            assert!(
                refused.to_string().contains("name must not contain"),
                "U+{:04X}: {refused}",
                u32::from(c)
            );
        }
        assert_eq!(
            bounded("Acme Corp ❤", "name", 1, 100).unwrap(),
            "Acme Corp ❤"
        );
        assert_eq!(bounded("شركة", "name", 1, 100).unwrap(), "شركة");
    }

    #[test]
    fn a_name_of_only_unseen_characters_and_whitespace_is_empty() {
        for blank in [
            "",
            " ",
            "\u{200B}",
            "\u{3164}\u{3164}",
            " \u{FE0F} ",
            "\u{3000}",
        ] {
            let refused = bounded(blank, "name", 1, 100).unwrap_err();
            assert!(
                refused.to_string().contains("between 1 and 100"),
                "{blank:?}: {refused}"
            );
        }
        // A field that may be empty may be blank, but still holds nothing unseen.
        assert_eq!(bounded("  ", "first_name", 0, 60).unwrap(), "  ");
        assert!(bounded("\u{200B}", "first_name", 0, 60).is_err());
    }
}
