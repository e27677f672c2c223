//! The time every rule reads: token windows (`not_before`, `expires_on`), timestamps written
//! on changes. It is the system's, unless the emulator's control plane moved it
//! (`POST /_roster/clock`): then each request of that server runs inside [`Clock::scope`]
//! and reads the moved time.
//!
//! A task-local rather than a clock argument on every rule: a moved clock is a test
//! double's concern, and threading it through every signature would make the rules about
//! it. Work a request hands to a task of its own does not see a moved clock (none does).
//! Several servers in one process (the tests) each keep their own clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use time::{Duration, OffsetDateTime};

tokio::task_local! {
    static CURRENT: Arc<Clock>;
}

/// How far a server's clock stands from the system's.
#[derive(Debug, Default)]
pub struct Clock {
    offset_ns: AtomicI64,
}

/// How far the clock can stand from the system's time, either way: its offset is held in
/// 64-bit nanoseconds (about 292 years).
pub const REACH: Duration = Duration::nanoseconds(i64::MAX);

/// A move that would take the clock further than [`REACH`] from the system's time: refused
/// rather than wrapped (three 100-year advances once read 1742) or cut short silently.
#[derive(Debug, thiserror::Error)]
#[error("the clock can stand at most about 292 years from the system's time")]
pub struct OutOfReach;

impl Clock {
    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + Duration::nanoseconds(self.offset_ns.load(Ordering::SeqCst))
    }

    pub fn offset(&self) -> Duration {
        Duration::nanoseconds(self.offset_ns.load(Ordering::SeqCst))
    }

    /// Moves the clock by `by` (forward when positive), unless that takes it out of reach.
    pub fn advance(&self, by: Duration) -> Result<(), OutOfReach> {
        let by = nanoseconds(by)?;
        self.offset_ns
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |ns| ns.checked_add(by))
            .map(drop)
            .map_err(|_| OutOfReach)
    }

    /// Sets the clock to read `at` now, unless `at` is out of reach.
    pub fn set(&self, at: OffsetDateTime) -> Result<(), OutOfReach> {
        let by = nanoseconds(at - OffsetDateTime::now_utc())?;
        self.offset_ns.store(by, Ordering::SeqCst);
        Ok(())
    }

    /// Back to the system's time.
    pub fn reset(&self) {
        self.offset_ns.store(0, Ordering::SeqCst);
    }

    /// Runs `work` reading this clock.
    pub async fn scope<F: Future>(self: Arc<Self>, work: F) -> F::Output {
        CURRENT.scope(self, work).await
    }
}

/// `by` in whole nanoseconds, if 64 bits hold it.
fn nanoseconds(by: Duration) -> Result<i64, OutOfReach> {
    i64::try_from(by.whole_nanoseconds()).map_err(|_| OutOfReach)
}

/// The time now, as the rules see it.
pub fn now_utc() -> OffsetDateTime {
    CURRENT
        .try_with(|clock| clock.now())
        .unwrap_or_else(|_| OffsetDateTime::now_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_moved_clock_is_read_only_inside_its_scope() {
        let clock = Arc::new(Clock::default());
        clock.advance(Duration::days(30)).unwrap();
        let inside = clock.clone().scope(async { now_utc() }).await;
        let outside = now_utc();
        assert!(inside - outside > Duration::days(29));
        clock.set(OffsetDateTime::UNIX_EPOCH).unwrap();
        let inside = clock.clone().scope(async { now_utc() }).await;
        assert!(inside < OffsetDateTime::UNIX_EPOCH + Duration::minutes(1));
        clock.reset();
        let inside = clock.scope(async { now_utc() }).await;
        assert!((inside - now_utc()).abs() < Duration::minutes(1));
    }

    #[test]
    fn a_move_out_of_reach_is_refused_and_changes_nothing() {
        let clock = Clock::default();
        let century = Duration::days(100 * 365);
        clock.advance(century).unwrap();
        clock.advance(century).unwrap();
        assert!(clock.advance(century).is_err(), "a third century wraps");
        assert_eq!(clock.offset(), century * 2);
        let year = |y| OffsetDateTime::UNIX_EPOCH.replace_year(y).unwrap();
        for far in [year(0), year(1700), year(2400), year(9999)] {
            assert!(clock.set(far).is_err(), "{far}");
        }
        assert_eq!(clock.offset(), century * 2);
        clock.set(year(2300)).unwrap();
        assert_eq!(clock.now().year(), 2300);
        assert!(clock.advance(century).is_err());
        assert_eq!(clock.now().year(), 2300);
    }
}
