//! Per-user rate limiting, as Cloudflare's API does it: each user gets `requests` per
//! `window`, refilled evenly (a user who stays under the average never waits, a burst may
//! spend the whole window's allowance at once); and throttling of failed authentications,
//! per client address. Counted in this process: several processes behind a load balancer
//! each count their own share.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::{ApiError, MAX_HEADER_BYTES, MAX_TARGET_BYTES};

pub struct UserLimiter {
    /// Keyed by the reset generation too: governor's keyed limiter cannot forget every key
    /// at once, and a lock around it would be one more write every request makes to one
    /// place. After a reset the old keys are never asked for again, and `retain_recent`
    /// drops each once its allowance has refilled.
    limiter: DefaultKeyedRateLimiter<(u64, String)>,
    generation: AtomicU64,
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
            generation: AtomicU64::new(0),
            checks: AtomicU64::new(0),
        }
    }

    /// Every user's full allowance again (the emulator's reset).
    pub fn reset(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Counts a request of `user`: Ok, or the whole seconds until they may try again.
    pub fn check(&self, user: &str) -> Result<(), u64> {
        // Users who went quiet are forgotten now and then, so the map stays small.
        if self.checks.fetch_add(1, Ordering::Relaxed) % 10_000 == 9_999 {
            self.limiter.retain_recent();
        }
        let key = (self.generation.load(Ordering::Relaxed), user.to_string());
        self.limiter.check_key(&key).map_err(|wait| {
            let millis = wait
                .wait_time_from(DefaultClock::default().now())
                .as_millis();
            u64::try_from(millis.div_ceil(1000))
                .unwrap_or(u64::MAX)
                .max(1)
        })
    }
}

/// How long `limiter` asks `key` to wait, if it must.
fn wait<K: std::hash::Hash + Eq + Clone>(
    limiter: &DefaultKeyedRateLimiter<K>,
    key: &K,
) -> Option<Duration> {
    limiter
        .check_key(key)
        .err()
        .map(|w| w.wait_time_from(DefaultClock::default().now()))
}

/// Failed authentications (an unknown key, a token that is not one), counted per client
/// address and per address and email. Past its allowance an address, or an address asking
/// for one email, is refused with 429 before its credentials are looked at, until the
/// allowance has refilled. Keyed by address, so a guesser shuts out itself and whoever
/// shares its address, never a user it guesses at from elsewhere.
pub struct FailureLimiter {
    /// Keyed by the reset generation too, as [`UserLimiter`] is.
    by_address: DefaultKeyedRateLimiter<(u64, IpAddr)>,
    by_email: DefaultKeyedRateLimiter<(u64, IpAddr, String)>,
    generation: AtomicU64,
    /// Until when an address (email `None`) or an address asking for an email is refused.
    refused: quick_cache::sync::Cache<(IpAddr, Option<String>), Instant>,
}

impl FailureLimiter {
    /// `per_minute` failures from one address, a third of them (at least one) for one email.
    pub fn new(per_minute: NonZeroU32) -> Self {
        let per_email = NonZeroU32::new(per_minute.get() / 3).unwrap_or(NonZeroU32::MIN);
        FailureLimiter {
            by_address: RateLimiter::keyed(Quota::per_minute(per_minute)),
            by_email: RateLimiter::keyed(Quota::per_minute(per_email)),
            generation: AtomicU64::new(0),
            refused: quick_cache::sync::Cache::new(100_000),
        }
    }

    /// Every address's full allowance again, nobody refused (the emulator's reset).
    pub fn reset(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.refused.clear();
    }

    /// Whether a request from `address` (for `email`) may be authenticated now; if not, the
    /// whole seconds until it may.
    pub fn check(&self, address: IpAddr, email: Option<&str>) -> Result<(), u64> {
        // Every authenticated request asks: with nobody refused, nothing to look up.
        if self.refused.is_empty() {
            return Ok(());
        }
        let now = Instant::now();
        let until = |key| self.refused.get(&key).filter(|until| *until > now);
        let until = until((address, None))
            .max(email.and_then(|e| until((address, Some(e.to_ascii_lowercase())))));
        match until {
            Some(until) => Err((until - now).as_secs().max(1)),
            None => Ok(()),
        }
    }

    /// Counts a failed authentication from `address` (for `email`).
    pub fn failed(&self, address: IpAddr, email: Option<&str>) {
        let now = Instant::now();
        let generation = self.generation.load(Ordering::Relaxed);
        if let Some(wait) = wait(&self.by_address, &(generation, address)) {
            self.refused.insert((address, None), now + wait);
        }
        if let Some(email) = email.map(str::to_ascii_lowercase) {
            let key = (generation, address, email);
            if let Some(wait) = wait(&self.by_email, &key) {
                self.refused.insert((address, Some(key.2)), now + wait);
            }
        }
    }
}

/// Refuses, before routing and before waiting for a body, what Cloudflare's edge refuses:
/// a request target over [`MAX_TARGET_BYTES`] (414), headers over [`MAX_HEADER_BYTES`]
/// (431), and a declared body over `max_body` (413; reading it would end in 413 too, or in
/// 408 if the client never sent it).
pub async fn refuse_oversized(max_body: usize, req: Request, next: Next) -> Response {
    let target = req.uri().path_and_query().map_or(0, |t| t.as_str().len());
    if target > MAX_TARGET_BYTES {
        return ApiError::UriTooLong(MAX_TARGET_BYTES).into_response();
    }
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        return ApiError::HeadersTooLarge(MAX_HEADER_BYTES).into_response();
    }
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_body as u64) {
        return ApiError::TooLarge(max_body).into_response();
    }
    next.run(req).await
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
