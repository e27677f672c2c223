//! The verified-credentials cache: who a folded email is (with their API key digest) and
//! which token a secret digest is (with its owner), kept for a few seconds so that most
//! requests do not ask the database who is calling. Only what the database answered is
//! kept, never a refusal, so a new user or token works at once.
//!
//! Every change this process makes to a user or a token clears the cache before it
//! returns, so this process never answers from a credential it has itself changed. Another
//! process's change (a second `roster serve` on one PostgreSQL database) is seen once the
//! entry is older than the time to live, or sooner: the PostgreSQL backend announces
//! every such change to the other processes (`NOTIFY`), which clear their caches.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use moka::sync::Cache;

use crate::domain::User;
use crate::domain::tokens::Token;

/// Time to live of a cached credential when the operator does not choose one
/// (`--credential-cache`).
pub const DEFAULT_TTL: Duration = Duration::from_secs(5);

/// Entries per map: a few hundred bytes each.
const CAPACITY: u64 = 100_000;

pub(crate) struct Credentials {
    /// `None` when caching is off (a zero time to live).
    maps: Option<Maps>,
    /// Bumped by every change, so a lookup that raced a change does not keep what it read.
    generation: AtomicU64,
}

struct Maps {
    keys: Cache<String, (User, String)>,
    tokens: Cache<String, (Token, User)>,
}

/// What a lookup saw before it went to the database: its answer is kept only if no change
/// happened meanwhile.
#[derive(Debug)]
pub(crate) struct Lookup(u64);

impl Credentials {
    pub(crate) fn new(ttl: Duration) -> Self {
        Credentials {
            maps: Maps::new(ttl),
            generation: AtomicU64::new(0),
        }
    }

    pub(crate) fn key(&self, email_folded: &str) -> Result<(User, String), Lookup> {
        self.maps
            .as_ref()
            .and_then(|m| m.keys.get(email_folded))
            .ok_or_else(|| self.lookup())
    }

    pub(crate) fn token(&self, hash: &str) -> Result<(Token, User), Lookup> {
        self.maps
            .as_ref()
            .and_then(|m| m.tokens.get(hash))
            .ok_or_else(|| self.lookup())
    }

    fn lookup(&self) -> Lookup {
        Lookup(self.generation.load(Ordering::SeqCst))
    }

    pub(crate) fn keep_key(&self, lookup: Lookup, email_folded: &str, found: &(User, String)) {
        if let Some(m) = &self.maps {
            m.keys.insert(email_folded.to_string(), found.clone());
            // A change between the lookup and now may have cleared the maps before this
            // insert: then what was read may be older than the change.
            if self.generation.load(Ordering::SeqCst) != lookup.0 {
                m.keys.invalidate(email_folded);
            }
        }
    }

    pub(crate) fn keep_token(&self, lookup: Lookup, hash: &str, found: &(Token, User)) {
        if let Some(m) = &self.maps {
            m.tokens.insert(hash.to_string(), found.clone());
            if self.generation.load(Ordering::SeqCst) != lookup.0 {
                m.tokens.invalidate(hash);
            }
        }
    }

    /// The token was used at `at`: the cached copy says so too, so that the next request
    /// does not record the use again.
    pub(crate) fn touched(&self, hash: &str, at: &str) {
        if let Some(m) = &self.maps {
            let lookup = self.lookup();
            if let Some((mut token, user)) = m.tokens.get(hash) {
                token.last_used_on = Some(at.to_string());
                self.keep_token(lookup, hash, &(token, user));
            }
        }
    }

    /// A user or token changed (call after the change is committed), here or, for
    /// PostgreSQL, in another process.
    pub(crate) fn clear(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        if let Some(m) = &self.maps {
            m.keys.invalidate_all();
            m.tokens.invalidate_all();
        }
    }
}

impl Maps {
    fn new(ttl: Duration) -> Option<Maps> {
        (!ttl.is_zero()).then(|| Maps {
            keys: map(ttl),
            tokens: map(ttl),
        })
    }
}

fn map<V: Clone + Send + Sync + 'static>(ttl: Duration) -> Cache<String, V> {
    Cache::builder()
        .max_capacity(CAPACITY)
        .time_to_live(ttl)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Email, Id};

    fn user() -> User {
        User {
            id: Id::generate(),
            email: Email::from_trusted("a@example.com".into()),
            first_name: None,
            last_name: None,
            telephone: None,
            country: None,
            zipcode: None,
            two_factor_authentication_enabled: false,
            created_on: "2024-01-01T00:00:00Z".into(),
            modified_on: "2024-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn keeps_answers_until_a_change() {
        let cache = Credentials::new(DEFAULT_TTL);
        let lookup = cache.key("a@example.com").unwrap_err();
        cache.keep_key(lookup, "a@example.com", &(user(), "digest".into()));
        assert_eq!(cache.key("a@example.com").unwrap().1, "digest");
        cache.clear();
        assert!(cache.key("a@example.com").is_err());
    }

    #[test]
    fn an_answer_read_before_a_change_is_not_kept() {
        let cache = Credentials::new(DEFAULT_TTL);
        let lookup = cache.key("a@example.com").unwrap_err();
        cache.clear();
        cache.keep_key(lookup, "a@example.com", &(user(), "old digest".into()));
        assert!(cache.key("a@example.com").is_err());
    }

    #[test]
    fn a_zero_time_to_live_keeps_nothing() {
        let cache = Credentials::new(Duration::ZERO);
        let lookup = cache.key("a@example.com").unwrap_err();
        cache.keep_key(lookup, "a@example.com", &(user(), "digest".into()));
        assert!(cache.key("a@example.com").is_err());
    }
}
