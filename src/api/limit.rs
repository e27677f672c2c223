//! Per-user rate limiting, as Cloudflare's API does it: each user gets `requests` per
//! `window`, refilled evenly (a user who stays under the average never waits, a burst may
//! spend the whole window's allowance at once); and throttling of failed authentications,
//! per client address (an IPv6 client by its /64, and by its /48 too, with [`PER_SITE`] times
//! the allowance). Counted in this process: several processes behind a load balancer each
//! count their own share.

use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock, Reference};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::HashMapStateStore;
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

/// Failed authentications (an unknown email, key or token: a guess, not a credential that
/// is merely disabled, expired or not yet valid), counted per client address and per
/// address and email, and for IPv6 per /48 as well. An address that has failed its
/// allowance's worth, or failed that often for one email, or whose /48 has failed
/// [`PER_SITE`] allowances' worth, is refused with 429 before its credentials are looked
/// at, until the allowance has refilled. Keyed by address, so a guesser shuts out itself
/// and whoever shares its address (or its /48), never a user it guesses at from elsewhere.
pub struct FailureLimiter<C: Clock = DefaultClock> {
    quotas: Quotas,
    clock: C,
    /// Taken by failures alone (a success reads `refused`), so it costs the requests that
    /// succeed nothing; a reset, or too many keys, replaces the counts whole.
    counts: Mutex<Counts<C>>,
    /// Most keys each map of `counts` holds.
    most_counted: usize,
    /// Until when each refused address, site or address asking for an email is refused.
    refused: quick_cache::sync::Cache<Refused, C::Instant>,
}

/// Keys counted at once in each map, and refusals kept: a few hundred bytes each at most
/// (an email is at most 90 characters).
const MOST_COUNTED: usize = 100_000;

/// How many /64s' allowances one IPv6 /48 gets in all. Its holder (a site, RFC 6177) has
/// 65,536 /64s: counted by /64 alone it could guess 65,536 times as often as an IPv4
/// client. Several, not one, so that a few guessing /64s (or an ISP's /56 subscribers
/// sharing a /48) do not at once shut out the rest of the site.
pub const PER_SITE: u32 = 16;

/// What a refusal is for. A site and an address are told apart: a /48's network address is
/// also the network address of its first /64.
#[derive(Clone, PartialEq, Eq, Hash)]
enum Refused {
    Address(IpAddr),
    Site(Ipv6Addr),
    Email(IpAddr, String),
}

type Counter<K, C> = RateLimiter<K, HashMapStateStore<K>, C, StateInformationMiddleware>;

struct Counts<C: Clock> {
    by_address: Counter<IpAddr, C>,
    by_email: Counter<(IpAddr, String), C>,
    by_site: Counter<Ipv6Addr, C>,
}

/// Each map's allowance.
#[derive(Clone, Copy)]
struct Quotas {
    address: Quota,
    email: Quota,
    site: Quota,
}

impl FailureLimiter {
    /// `per_minute` failures from one address, a third of them (at least one) for one email,
    /// [`PER_SITE`] times as many from one IPv6 /48.
    pub fn new(per_minute: NonZeroU32) -> Self {
        FailureLimiter::with_clock(per_minute, DefaultClock::default(), MOST_COUNTED)
    }
}

impl<C: Clock + Clone> FailureLimiter<C> {
    fn with_clock(per_minute: NonZeroU32, clock: C, most_counted: usize) -> Self {
        let per_email = NonZeroU32::new(per_minute.get() / 3).unwrap_or(NonZeroU32::MIN);
        let per_site = per_minute.saturating_mul(NonZeroU32::new(PER_SITE).expect("not zero"));
        let quotas = Quotas {
            address: Quota::per_minute(per_minute),
            email: Quota::per_minute(per_email),
            site: Quota::per_minute(per_site),
        };
        FailureLimiter {
            counts: Mutex::new(Counts::new(quotas, &clock)),
            quotas,
            clock,
            most_counted,
            refused: quick_cache::sync::Cache::new(MOST_COUNTED),
        }
    }

    /// Every address's full allowance again, nobody refused (the emulator's reset).
    pub fn reset(&self) {
        *self.lock() = Counts::new(self.quotas, &self.clock);
        self.refused.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts<C>> {
        // A panic while counting leaves counts that are still counts.
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a request from `address` (for `email`) may be authenticated now; if not, the
    /// whole seconds until it may.
    pub fn check(&self, address: IpAddr, email: Option<&str>) -> Result<(), u64> {
        // Every authenticated request asks: with nobody refused, nothing to look up.
        if self.refused.is_empty() {
            return Ok(());
        }
        let address = guesser(address);
        let now = self.clock.now();
        let until = |key| self.refused.get(&key).filter(|until| *until > now);
        let until = until(Refused::Address(address))
            .max(site(address).and_then(|s| until(Refused::Site(s))))
            .max(email.and_then(|e| until(Refused::Email(address, e.to_lowercase()))));
        match until {
            Some(until) => {
                let wait = Duration::from(until.duration_since(now));
                Err(wait.as_secs_f64().ceil().max(1.0) as u64)
            }
            None => Ok(()),
        }
    }

    /// Counts a failed authentication from `address` (for `email`).
    pub fn failed(&self, address: IpAddr, email: Option<&str>) {
        let address = guesser(address);
        let now = self.clock.now();
        let mut counts = self.lock();
        counts.make_room(self.most_counted, || Counts::new(self.quotas, &self.clock));
        if let Some(wait) = spent(&counts.by_address, &address, now) {
            self.refused
                .insert(Refused::Address(address), now + wait.into());
        }
        if let Some(site) = site(address)
            && let Some(wait) = spent(&counts.by_site, &site, now)
        {
            self.refused.insert(Refused::Site(site), now + wait.into());
        }
        // Folded as addresses are looked up, so that a case variant is the same email.
        if let Some(email) = email.map(str::to_lowercase) {
            let key = (address, email);
            if let Some(wait) = spent(&counts.by_email, &key, now) {
                self.refused
                    .insert(Refused::Email(key.0, key.1), now + wait.into());
            }
        }
    }

    #[cfg(test)]
    fn counted(&self) -> (usize, usize, usize) {
        let counts = self.lock();
        (
            counts.by_address.len(),
            counts.by_email.len(),
            counts.by_site.len(),
        )
    }
}

/// Who is guessing, as far as an address can tell: an IPv4 address, or an IPv6 address's
/// /64, which one subscriber holds whole (RFC 6177), so that each of its addresses is not a
/// fresh allowance.
fn guesser(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(prefix.into())
        }
        v4 => v4,
    }
}

/// An IPv6 address's /48, which one site holds whole (RFC 6177); none for IPv4.
fn site(address: IpAddr) -> Option<Ipv6Addr> {
    match address {
        IpAddr::V6(v6) => Some((u128::from(v6) & !((1u128 << 80) - 1)).into()),
        IpAddr::V4(_) => None,
    }
}

/// Counts one failure of `key`: if that spent `limiter`'s allowance for it, how long until
/// the allowance holds one again. The last failure allowed is thus the one that refuses
/// what follows, and exactly the allowance's worth of failures is answered.
fn spent<K: Hash + Eq + Clone, C: Clock>(
    limiter: &Counter<K, C>,
    key: &K,
    now: C::Instant,
) -> Option<Duration> {
    match limiter.check_key(key) {
        Ok(state) if state.remaining_burst_capacity() > 0 => None,
        // The next failure is allowed within one interval: at its end when the failures
        // came at once, sooner when they were spread out. Refusing for the whole interval
        // errs on the side of the user guessed at.
        Ok(state) => Some(state.quota().replenish_interval()),
        // Failures that raced past the refusal.
        Err(refused) => Some(refused.wait_time_from(now)),
    }
}

impl<C: Clock + Clone> Counts<C> {
    fn new(quotas: Quotas, clock: &C) -> Self {
        Counts {
            by_address: RateLimiter::hashmap_with_clock(quotas.address, clock.clone())
                .with_middleware(),
            by_email: RateLimiter::hashmap_with_clock(quotas.email, clock.clone())
                .with_middleware(),
            by_site: RateLimiter::hashmap_with_clock(quotas.site, clock.clone()).with_middleware(),
        }
    }

    /// Keeps each map under `most` keys, as [`UserLimiter`] keeps its own small: once one is
    /// full, the keys whose allowance has refilled are dropped. If that leaves one more than
    /// half full (that many addresses guessing within a minute), every count starts over:
    /// that gives the guessers nothing their many addresses did not already give them, and
    /// the refusals already made stand. Pruning only when full, and then leaving at least
    /// half free, makes one pass over a map per that many new keys, never one per failure.
    fn make_room(&mut self, most: usize, fresh: impl FnOnce() -> Self) {
        let lens = |c: &Self| [c.by_address.len(), c.by_email.len(), c.by_site.len()];
        if lens(self).iter().all(|&n| n < most) {
            return;
        }
        self.by_address.retain_recent();
        self.by_email.retain_recent();
        self.by_site.retain_recent();
        if lens(self).iter().any(|&n| n > most / 2) {
            *self = fresh();
        } else {
            self.by_address.shrink_to_fit();
            self.by_email.shrink_to_fit();
            self.by_site.shrink_to_fit();
        }
    }
}

/// Refuses what Cloudflare's edge refuses (see [`refuse_oversized`]), then answers 408 for
/// a request not answered within `timeout`: one layer, where each layer of its own boxed
/// its future and cloned the service within on every request.
pub async fn bounded(max_body: usize, timeout: Duration, req: Request, next: Next) -> Response {
    if let Err(refused) = refuse_oversized(max_body, &req) {
        return refused.into_response();
    }
    match tokio::time::timeout(timeout, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout(timeout.as_secs()).into_response(),
    }
}

/// Refuses, before routing and before waiting for a body, what Cloudflare's edge refuses:
/// a request target over [`MAX_TARGET_BYTES`] (414), headers over [`MAX_HEADER_BYTES`]
/// (431), and a declared body over `max_body` (413; reading it would end in 413 too, or in
/// 408 if the client never sent it).
fn refuse_oversized(max_body: usize, req: &Request) -> Result<(), ApiError> {
    let target = req.uri().path_and_query().map_or(0, |t| t.as_str().len());
    if target > MAX_TARGET_BYTES {
        return Err(ApiError::UriTooLong(MAX_TARGET_BYTES));
    }
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        return Err(ApiError::HeadersTooLarge(MAX_HEADER_BYTES));
    }
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_body as u64) {
        return Err(ApiError::TooLarge(max_body));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

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

    fn address(n: u32) -> IpAddr {
        IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + n))
    }

    fn failures(
        per_minute: u32,
        most_counted: usize,
    ) -> (FailureLimiter<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        let per_minute = NonZeroU32::new(per_minute).unwrap();
        (
            FailureLimiter::with_clock(per_minute, clock.clone(), most_counted),
            clock,
        )
    }

    #[test]
    fn exactly_the_allowed_failures_are_answered_before_the_address_is_refused() {
        let (limiter, clock) = failures(6, MOST_COUNTED);
        let guesser = address(1);
        for _ in 0..6 {
            assert_eq!(limiter.check(guesser, None), Ok(()));
            limiter.failed(guesser, None);
        }
        assert_eq!(
            limiter.check(guesser, None),
            Err(10),
            "one failure's share of a minute"
        );
        assert_eq!(limiter.check(address(2), None), Ok(()));
        clock.advance(Duration::from_secs(10));
        assert_eq!(limiter.check(guesser, None), Ok(()));
        limiter.failed(guesser, None);
        assert!(
            limiter.check(guesser, None).is_err(),
            "one more, once refilled"
        );
    }

    #[test]
    fn an_ipv6_subscribers_addresses_share_one_allowance() {
        let (limiter, _) = failures(3, MOST_COUNTED);
        let in_64 = |n: u16| IpAddr::from([0x2001, 0xdb8, 0, 1, n, n, n, n]);
        for n in 0..3 {
            assert_eq!(limiter.check(in_64(n), None), Ok(()));
            limiter.failed(in_64(n), None);
        }
        assert!(
            limiter.check(in_64(99), None).is_err(),
            "the /64 is refused"
        );
        let next_64 = IpAddr::from([0x2001, 0xdb8, 0, 2, 0, 0, 0, 1]);
        assert_eq!(limiter.check(next_64, None), Ok(()));
    }

    #[test]
    fn an_ipv6_sites_64s_share_a_larger_allowance() {
        let (limiter, _) = failures(3, MOST_COUNTED);
        let in_48 = |n: u16| IpAddr::from([0x2001, 0xdb8, 7, n, 0, 0, 0, 1]);
        // One failure from each /64, a third of its own allowance.
        for n in 0..3 * PER_SITE as u16 {
            assert_eq!(limiter.check(in_48(n), None), Ok(()), "failure {n}");
            limiter.failed(in_48(n), None);
        }
        assert_eq!(
            limiter.check(in_48(9_999), None),
            Err(2),
            "a fresh /64 of the /48 is refused, for one of its failures' share of a minute (1.25 s)"
        );
        let next_48 = IpAddr::from([0x2001, 0xdb8, 8, 0, 0, 0, 0, 1]);
        assert_eq!(limiter.check(next_48, None), Ok(()));
        // The /64 at the start of a /48 is no stand-in for the /48.
        for _ in 0..3 {
            limiter.failed(next_48, None);
        }
        assert!(limiter.check(next_48, None).is_err());
        let in_next_48 = IpAddr::from([0x2001, 0xdb8, 8, 1, 0, 0, 0, 1]);
        assert_eq!(limiter.check(in_next_48, None), Ok(()));
        let v4 = address(1);
        assert_eq!(limiter.check(v4, None), Ok(()));
    }

    #[test]
    fn an_email_is_counted_folded_as_it_is_looked_up() {
        let (limiter, _) = failures(6, MOST_COUNTED);
        let guesser = address(1);
        limiter.failed(guesser, Some("\u{c9}mile@example.com"));
        limiter.failed(guesser, Some("\u{e9}mile@example.com"));
        assert!(
            limiter
                .check(guesser, Some("\u{e9}MILE@example.com"))
                .is_err(),
            "one email whatever its case, beyond ASCII too"
        );
    }

    #[test]
    fn a_third_of_the_allowance_is_for_one_email() {
        let (limiter, _) = failures(6, MOST_COUNTED);
        let guesser = address(1);
        for _ in 0..2 {
            assert_eq!(limiter.check(guesser, Some("Victim@example.com")), Ok(()));
            limiter.failed(guesser, Some("victim@example.com"));
        }
        assert!(limiter.check(guesser, Some("VICTIM@example.com")).is_err());
        assert_eq!(limiter.check(guesser, Some("other@example.com")), Ok(()));
        assert_eq!(limiter.check(guesser, None), Ok(()));
        assert_eq!(
            limiter.check(address(2), Some("victim@example.com")),
            Ok(())
        );
    }

    #[test]
    fn addresses_whose_allowance_refilled_are_forgotten_once_the_counts_are_full() {
        let (limiter, clock) = failures(6, 10);
        for n in 0..10 {
            limiter.failed(address(n), Some(&format!("u{n}@example.com")));
        }
        assert_eq!(limiter.counted(), (10, 10, 0));
        // Past an email's whole allowance (three failures a minute) and then some.
        clock.advance(Duration::from_secs(60));
        limiter.failed(address(10), None);
        assert_eq!(limiter.counted(), (1, 0, 0), "the refilled were dropped");
    }

    #[test]
    fn counts_stay_bounded_and_refusals_stand_when_many_addresses_guess_at_once() {
        let (limiter, _) = failures(3, 10);
        let guesser = address(1_000);
        for _ in 0..3 {
            limiter.failed(guesser, None);
        }
        assert!(limiter.check(guesser, None).is_err());
        for n in 0..1_000 {
            limiter.failed(address(n), Some(&format!("u{n}@example.com")));
            let (by_address, by_email, _) = limiter.counted();
            assert!(
                by_address <= 10 && by_email <= 10,
                "{by_address} {by_email} after {n}"
            );
        }
        assert!(limiter.check(guesser, None).is_err(), "still refused");
    }
}
