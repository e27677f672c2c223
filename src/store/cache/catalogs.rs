//! Each account's catalog (its custom roles, resource groups and user groups), kept by
//! account id with the stamp it was read at. An account's row carries a stamp
//! (`accounts.catalog_stamp`, migration 0008) that every change to its catalog replaces
//! with a new random one in the change's own transaction, as an import and a restore do
//! for every account. The reads take the stamp with the account's row, in the statement
//! that reads the members, and use a kept catalog only when its stamp is that one: the
//! catalog the statement's snapshot holds, whichever process changed it, with nothing to
//! clear or announce. A stamp is never reused, so a catalog read inside a write that was
//! then rolled back is kept under a stamp no row will carry.
//!
//! It saves an account read's second statement, a round trip on PostgreSQL (figures in
//! bench/README.md).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use quick_cache::sync::Cache;

use crate::domain::AccountCatalog;

/// Accounts kept: a catalog is usually a few roles and groups, a few kilobytes at most.
const CAPACITY: usize = 16_384;

/// A catalog and the stamp of the account row it was read with.
pub(in crate::store) type Stamped = (String, Arc<AccountCatalog>);

pub struct Catalogs {
    entries: Cache<String, Stamped>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl Default for Catalogs {
    fn default() -> Self {
        Catalogs {
            entries: Cache::new(CAPACITY),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }
}

impl Catalogs {
    /// The account's catalog as last read, whatever its stamp: what a read guesses the
    /// catalog is before its statement says which stamp the account has (the read tallies
    /// whether it was).
    pub(in crate::store) fn last(&self, account: &str) -> Option<Stamped> {
        self.entries.get(account)
    }

    /// The account's catalog if the one kept has this stamp.
    pub(in crate::store) fn at(&self, account: &str, stamp: &str) -> Option<Arc<AccountCatalog>> {
        let found = self
            .entries
            .get(account)
            .filter(|(kept, _)| kept == stamp)
            .map(|(_, catalog)| catalog);
        self.tally(found.is_some());
        found
    }

    /// Counts a use of a kept catalog, or a read because none was kept at the stamp.
    pub(in crate::store) fn tally(&self, hit: bool) {
        let counter = if hit { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(in crate::store) fn keep(&self, account: String, stamped: Stamped) {
        self.entries.insert(account, stamped);
    }

    pub(in crate::store) fn figures(&self) -> Vec<crate::store::Figure> {
        super::figures(
            "catalogs",
            self.entries.len(),
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }
}
