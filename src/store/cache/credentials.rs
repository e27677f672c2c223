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
use std::time::{Duration, Instant};

use quick_cache::sync::Cache;

use crate::domain::User;
use crate::domain::tokens::Token;

/// Time to live of a cached credential when the operator does not choose one
/// (`--credential-cache`).
pub const DEFAULT_TTL: Duration = Duration::from_secs(5);

/// Entries per map: a few hundred bytes each.
const CAPACITY: usize = 100_000;

pub(crate) struct Credentials {
    /// `None` when caching is off (a zero time to live).
    maps: Option<Maps>,
    /// Bumped by every change, so a lookup that raced a change does not keep what it read.
    generation: AtomicU64,
}

/// quick_cache rather than moka: a lookup in moka recorded itself for its eviction policy
/// and its expiry, a tenth of a request's CPU when callers rotate over many users; here an
/// entry carries the time it was kept, and the lookup checks its age.
struct Maps {
    ttl: Duration,
    keys: Cache<String, (Instant, (User, String))>,
    tokens: Cache<String, (Instant, (Token, Option<User>))>,
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
            .and_then(|m| m.fresh(&m.keys, email_folded))
            .ok_or_else(|| self.lookup())
    }

    pub(crate) fn token(&self, hash: &str) -> Result<(Token, Option<User>), Lookup> {
        self.maps
            .as_ref()
            .and_then(|m| m.fresh(&m.tokens, hash))
            .ok_or_else(|| self.lookup())
    }

    fn lookup(&self) -> Lookup {
        Lookup(self.generation.load(Ordering::SeqCst))
    }

    pub(crate) fn keep_key(&self, lookup: Lookup, email_folded: &str, found: &(User, String)) {
        if let Some(m) = &self.maps {
            self.keep(&m.keys, lookup, email_folded, found);
        }
    }

    pub(crate) fn keep_token(&self, lookup: Lookup, hash: &str, found: &(Token, Option<User>)) {
        if let Some(m) = &self.maps {
            self.keep(&m.tokens, lookup, hash, found);
        }
    }

    fn keep<V: Clone>(
        &self,
        map: &Cache<String, (Instant, V)>,
        lookup: Lookup,
        key: &str,
        found: &V,
    ) {
        self.keep_at(map, lookup, key, found, Instant::now());
    }

    /// Keeps `found` as read at `kept`.
    fn keep_at<V: Clone>(
        &self,
        map: &Cache<String, (Instant, V)>,
        lookup: Lookup,
        key: &str,
        found: &V,
        kept: Instant,
    ) {
        map.insert(key.to_string(), (kept, found.clone()));
        // A change between the lookup and now may have cleared the maps before this
        // insert: then what was read may be older than the change.
        if self.generation.load(Ordering::SeqCst) != lookup.0 {
            map.remove(key);
        }
    }

    /// The token was used at `at`: the cached copy says so too, so that the next request
    /// does not record the use again.
    /// The copy keeps the age it had: a use is no news of the token, so it must not make a
    /// copy that may be stale (a missed announcement) live another time to live.
    pub(crate) fn touched(&self, hash: &str, at: &str) {
        if let Some(m) = &self.maps {
            let lookup = self.lookup();
            let kept = m
                .tokens
                .get(hash)
                .filter(|(kept, _)| kept.elapsed() < m.ttl);
            if let Some((kept, (mut token, user))) = kept {
                token.last_used_on = Some(at.to_string());
                self.keep_at(&m.tokens, lookup, hash, &(token, user), kept);
            }
        }
    }

    /// Entries, hits and misses of the two maps, for `/metrics`.
    pub(crate) fn figures(&self) -> Vec<crate::store::Figure> {
        let Some(m) = &self.maps else {
            return Vec::new();
        };
        let mut figures = super::figures(
            "credentials_keys",
            m.keys.len(),
            m.keys.hits(),
            m.keys.misses(),
        );
        figures.extend(super::figures(
            "credentials_tokens",
            m.tokens.len(),
            m.tokens.hits(),
            m.tokens.misses(),
        ));
        figures
    }

    /// A user or token changed (call after the change is committed), here or, for
    /// PostgreSQL, in another process.
    pub(crate) fn clear(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        if let Some(m) = &self.maps {
            m.keys.clear();
            m.tokens.clear();
        }
    }
}

impl Maps {
    fn new(ttl: Duration) -> Option<Maps> {
        (!ttl.is_zero()).then(|| Maps {
            ttl,
            keys: Cache::new(CAPACITY),
            tokens: Cache::new(CAPACITY),
        })
    }

    /// What `map` holds for `key`, if it was kept less than the time to live ago.
    fn fresh<V: Clone>(&self, map: &Cache<String, (Instant, V)>, key: &str) -> Option<V> {
        map.get(key)
            .and_then(|(kept, v)| (kept.elapsed() < self.ttl).then_some(v))
    }
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

    /// Entries are backdated rather than waited for: no test measures time.
    #[test]
    fn an_answer_older_than_the_time_to_live_is_not_used() {
        let ttl = Duration::from_secs(60);
        let cache = Credentials::new(ttl);
        let m = cache.maps.as_ref().unwrap();
        let lookup = cache.key("a@example.com").unwrap_err();
        cache.keep_key(lookup, "a@example.com", &(user(), "digest".into()));
        assert!(cache.key("a@example.com").is_ok());
        let old = Instant::now() - ttl - Duration::from_secs(1);
        let lookup = cache.lookup();
        cache.keep_at(
            &m.keys,
            lookup,
            "a@example.com",
            &(user(), "digest".into()),
            old,
        );
        assert!(cache.key("a@example.com").is_err());
    }

    #[test]
    fn a_use_does_not_make_a_kept_token_younger() {
        let ttl = Duration::from_secs(60);
        let cache = Credentials::new(ttl);
        let m = cache.maps.as_ref().unwrap();
        let group = crate::domain::catalog::permission_group_named("API Tokens Read")
            .unwrap()
            .id
            .clone();
        let token =
            crate::domain::tokens::simple_token(&Id::generate(), "t".into(), vec![group], None)
                .unwrap();
        let nearly = Instant::now() - ttl + Duration::from_secs(1);
        cache.keep_at(&m.tokens, cache.lookup(), "h", &(token, None), nearly);
        cache.touched("h", "2026-01-01T00:00:00Z");
        let (kept, (used, _)) = m.tokens.get("h").unwrap();
        assert_eq!(kept, nearly, "the copy keeps its age");
        assert_eq!(used.last_used_on.as_deref(), Some("2026-01-01T00:00:00Z"));
    }
}
