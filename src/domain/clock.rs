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

impl Clock {
    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + Duration::nanoseconds(self.offset_ns.load(Ordering::SeqCst))
    }

    pub fn offset(&self) -> Duration {
        Duration::nanoseconds(self.offset_ns.load(Ordering::SeqCst))
    }

    /// Moves the clock by `by` (forward when positive).
    pub fn advance(&self, by: Duration) {
        self.offset_ns.fetch_add(nanoseconds(by), Ordering::SeqCst);
    }

    /// Sets the clock to read `at` now.
    pub fn set(&self, at: OffsetDateTime) {
        let by = at - OffsetDateTime::now_utc();
        self.offset_ns.store(nanoseconds(by), Ordering::SeqCst);
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

/// `by` in whole nanoseconds, as far as 64 bits reach (about 292 years either way).
fn nanoseconds(by: Duration) -> i64 {
    by.whole_nanoseconds()
        .clamp(i64::MIN.into(), i64::MAX.into()) as i64
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
        clock.advance(Duration::days(30));
        let inside = clock.clone().scope(async { now_utc() }).await;
        let outside = now_utc();
        assert!(inside - outside > Duration::days(29));
        clock.set(OffsetDateTime::UNIX_EPOCH);
        let inside = clock.clone().scope(async { now_utc() }).await;
        assert!(inside < OffsetDateTime::UNIX_EPOCH + Duration::minutes(1));
        clock.reset();
        let inside = clock.scope(async { now_utc() }).await;
        assert!((inside - now_utc()).abs() < Duration::minutes(1));
    }
}
