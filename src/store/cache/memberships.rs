//! The SQLite backend's cache of each user's memberships (folded email -> every membership
//! with its account and catalog), which `GET /memberships` and `GET /memberships/{id}`
//! answer from instead of running their query.
//!
//! It is exact, not eventually right: an entry is served only if nothing at all was
//! committed to the database file since it was read, by this process or any other. SQLite
//! tells each connection so (`PRAGMA data_version` changes when another connection, of any
//! process, committed), and every read that uses or fills the cache asks its connection
//! first ([`Lite::changed`]). When one connection sees a change, the generation goes up and
//! every entry stamped with an older one is dead. Any write anywhere therefore empties the
//! cache, which is right for what it is for: the same users reading their memberships again
//! and again.
//!
//! Why asking one connection is enough: a connection answers "changed" for every commit
//! since its own previous question (or, on its first question, unconditionally), and a
//! connection's questions are sequential. So once a commit has ended, any later question
//! on any connection comes after some question that saw the commit and raised the
//! generation, and an entry read before the commit carries a lower stamp.
//!
//! Only users asked for twice in a short while are kept: a user seen once is read as
//! before (one row for one membership) and nothing is kept, so that callers spread over
//! many users do not pay for filling a cache that would evict them before they return.
//!
//! [`Lite::changed`]: crate::store::conn::Lite::changed

use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use quick_cache::Weighter;
use quick_cache::sync::Cache;

use crate::store::UserMembership;

/// Memberships kept in all (an entry weighs one plus its memberships): each is about a
/// kilobyte with its account, so this bounds the cache near 50 MB.
const CAPACITY: u64 = 50_000;

/// Slots remembering who was asked for recently (a power of two): about as many users as
/// the cache holds, so a user comes back within the time the cache would keep them.
const RECENT: usize = 1 << 14;

/// Memberships and the generation they were read at.
pub(in crate::store) type Entry = (u64, Arc<Vec<Arc<UserMembership>>>);

pub(in crate::store) struct MembershipCache {
    entries: Cache<String, Entry, ByMemberships>,
    generation: AtomicU64,
    /// A hash of the email last asked for, per slot.
    recent: Box<[AtomicU64]>,
    hasher: foldhash::fast::RandomState,
}

/// The generation a read saw when it asked whether the database changed.
#[derive(Debug, Clone, Copy)]
pub(in crate::store) struct Stamp(u64);

impl Stamp {
    /// `kept`'s memberships, if nothing changed between their read and this stamp.
    pub(in crate::store) fn valid(
        self,
        kept: Option<Entry>,
    ) -> Option<Arc<Vec<Arc<UserMembership>>>> {
        kept.and_then(|(read_at, list)| (read_at == self.0).then_some(list))
    }
}

#[derive(Clone)]
struct ByMemberships;

impl Weighter<String, Entry> for ByMemberships {
    fn weight(&self, _: &String, (_, list): &Entry) -> u64 {
        1 + list.len() as u64
    }
}

impl MembershipCache {
    pub(in crate::store) fn new() -> Self {
        MembershipCache {
            entries: Cache::with_weighter(CAPACITY as usize / 4, CAPACITY, ByMemberships),
            generation: AtomicU64::new(0),
            recent: (0..RECENT).map(|_| AtomicU64::new(0)).collect(),
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    /// What is kept for the user, whatever its stamp.
    pub(in crate::store) fn kept(&self, email_folded: &str) -> Option<Entry> {
        self.entries.get(email_folded)
    }

    pub(in crate::store) fn figures(&self) -> Vec<crate::store::Figure> {
        super::figures(
            "memberships",
            self.entries.len(),
            self.entries.hits(),
            self.entries.misses(),
        )
    }

    /// Whether the user is worth keeping: asked for before, and not forgotten since.
    pub(in crate::store) fn admit(&self, email_folded: &str) -> bool {
        let hash = self.hasher.hash_one(email_folded);
        let slot = &self.recent[hash as usize & (RECENT - 1)];
        slot.swap(hash, Ordering::Relaxed) == hash
    }

    /// The stamp for a read whose connection just answered whether the database changed.
    pub(in crate::store) fn stamp(&self, changed: bool) -> Stamp {
        if changed {
            Stamp(self.generation.fetch_add(1, Ordering::SeqCst) + 1)
        } else {
            Stamp(self.generation.load(Ordering::SeqCst))
        }
    }

    /// Keeps what a read stamped `stamp` found, unless the generation has moved on since
    /// (what it read may already be out of date; it would never be served anyway).
    pub(in crate::store) fn keep(
        &self,
        stamp: Stamp,
        email_folded: &str,
        list: &Arc<Vec<Arc<UserMembership>>>,
    ) {
        if self.generation.load(Ordering::SeqCst) == stamp.0 {
            self.entries
                .insert(email_folded.to_string(), (stamp.0, Arc::clone(list)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_served_only_to_reads_that_saw_no_change_since() {
        let cache = MembershipCache::new();
        let get = |stamp: Stamp| stamp.valid(cache.kept("a@example.com"));
        let first = cache.stamp(true);
        cache.keep(first, "a@example.com", &Arc::new(Vec::new()));
        assert!(get(cache.stamp(false)).is_some());
        let after_a_change = cache.stamp(true);
        assert!(get(after_a_change).is_none());
        assert!(get(cache.stamp(false)).is_none());
    }

    #[test]
    fn a_read_overtaken_by_a_change_is_not_kept() {
        let cache = MembershipCache::new();
        let before = cache.stamp(false);
        let _seen_elsewhere = cache.stamp(true);
        cache.keep(before, "a@example.com", &Arc::new(Vec::new()));
        assert!(cache.kept("a@example.com").is_none());
    }

    #[test]
    fn a_user_is_admitted_when_asked_for_again() {
        let cache = MembershipCache::new();
        assert!(!cache.admit("a@example.com"));
        assert!(cache.admit("a@example.com"));
        // Enough other users to overwrite every slot forget the first.
        for n in 0..RECENT * 16 {
            cache.admit(&format!("{n}@example.com"));
        }
        assert!(!cache.admit("a@example.com"));
    }
}
