//! The store's caches, each answering some reads before the database, each with the one
//! signal that says when what it holds may no longer be used. The storage below knows
//! nothing of them; every one reports the same figures to `/metrics` (`roster_cache_*`,
//! [`figures`]).
//!
//! | cache | holds | keyed by | used while | cleared or replaced when |
//! |---|---|---|---|---|
//! | [`credentials::Credentials`] | a verified API key's user and digest; a token and its user | folded email; token digest | younger than `--credential-cache` (5 s) | this process changes a user or a token (after the commit), or another process announces one (PostgreSQL `NOTIFY roster_credentials`); a generation counter keeps a read that raced a change from being kept |
//! | [`catalogs::Catalogs`] | an account's custom roles, resource and user groups | account id | the account's row carries the stamp it was read at (`accounts.catalog_stamp`, read in the same statement) | never cleared: a change writes a new stamp in its own transaction |
//! | [`memberships::MembershipCache`] (SQLite, on a file) | a user's memberships with their accounts | folded email | SQLite's `PRAGMA data_version` has not moved since it was read (no commit by any connection, of this process or another) | the version moves |
//!
//! Only the first needs clearing; the other two are checked on every use against a value
//! the database keeps, so no write has to remember them.

pub(super) mod catalogs;
pub(super) mod credentials;
pub(super) mod memberships;

/// A cache's figures: entries held, lookups answered from it and not.
fn figures(cache: &'static str, entries: usize, hits: u64, misses: u64) -> Vec<super::Figure> {
    vec![
        super::Figure::gauge(
            "roster_cache_entries",
            "Entries a cache holds.",
            entries as u64,
        )
        .label("cache", cache),
        super::Figure::counter("roster_cache_hits_total", "Lookups a cache answered.", hits)
            .label("cache", cache),
        super::Figure::counter(
            "roster_cache_misses_total",
            "Lookups a cache could not answer.",
            misses,
        )
        .label("cache", cache),
    ]
}
