//! Per-user rate limiting, as Cloudflare's API does it: each user gets `requests` per
//! `window`, refilled evenly (a user who stays under the average never waits, a burst may
//! spend the whole window's allowance at once). Counted in this process: several processes
//! behind a load balancer each count their own share.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

pub struct UserLimiter {
    limiter: DefaultKeyedRateLimiter<String>,
    checks: AtomicU64,
}

impl UserLimiter {
    pub fn new(requests: NonZeroU32, window: Duration) -> Self {
        let period = window / requests.get();
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(requests))
            .allow_burst(requests);
        UserLimiter {
            limiter: RateLimiter::keyed(quota),
            checks: AtomicU64::new(0),
        }
    }

    /// Counts a request of `user`: Ok, or the whole seconds until they may try again.
    pub fn check(&self, user: &str) -> Result<(), u64> {
        // Users who went quiet are forgotten now and then, so the map stays small.
        if self.checks.fetch_add(1, Ordering::Relaxed) % 10_000 == 9_999 {
            self.limiter.retain_recent();
        }
        self.limiter.check_key(&user.to_string()).map_err(|wait| {
            let millis = wait
                .wait_time_from(DefaultClock::default().now())
                .as_millis();
            u64::try_from(millis.div_ceil(1000))
                .unwrap_or(u64::MAX)
                .max(1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_user_has_their_own_allowance() {
        let limiter = UserLimiter::new(NonZeroU32::new(3).unwrap(), Duration::from_secs(300));
        for _ in 0..3 {
            assert_eq!(limiter.check("a"), Ok(()));
        }
        let wait = limiter.check("a").unwrap_err();
        assert!(
            (99..=100).contains(&wait),
            "one request's share of the window: {wait}"
        );
        assert_eq!(limiter.check("b"), Ok(()));
    }
}
