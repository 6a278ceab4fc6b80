//! Retry schedules: exponential backoff with jitter, as a small sans-IO
//! state machine.
//!
//! The driver passes `now` (a `Duration` since an epoch of its choosing) and
//! a uniform random number in `[0, 1)`; nothing here reads a clock or a random
//! source, so every schedule is reproducible in tests.
//!
//! ```text
//! failed(now, r) ──► next retry at now + delay(failures, r) ──► handle_timeout(now) == true ──► retry
//!       ▲                                                                                       │
//!       └────────────────────── it failed again (delay doubles, up to max) ◄────────────────────┘
//! reset() after a success: the next failure starts at `initial` again.
//! ```
//!
//! `delay(n, r) = min(initial · 2^(n-1), max) · (1 + jitter · (2r − 1))`: the
//! jitter spreads the retries of many clients (every tab of a restarted relay
//! would otherwise come back in the same instant) and applies at the cap too.
//!
//! The two schedules the peer uses are [`Policy::RELAY`] (reconnecting to a
//! lost relay) and [`Policy::DIRECT`] (trying again for a direct WebRTC path
//! while a peer is only reachable through the relay: a few quick attempts,
//! then about once a minute, for as long as the peer stays relayed).

use std::time::Duration;

/// The shape of a schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// Delay after the first failure (before jitter).
    pub initial: Duration,
    /// Cap on the doubling delay (before jitter).
    pub max: Duration,
    /// Relative spread in `[0, 1)`: a delay `d` becomes one in `[d·(1−j), d·(1+j))`.
    pub jitter: f64,
}

impl Policy {
    /// Reconnecting to the relay: 0.5 s doubling to 30 s, ±20 %.
    pub const RELAY: Policy = Policy {
        initial: Duration::from_millis(500),
        max: Duration::from_secs(30),
        jitter: 0.2,
    };
    /// Retrying a direct path: 2 s, 4 s, 8 s, … doubling to 60 s, ±20 %.
    pub const DIRECT: Policy = Policy {
        initial: Duration::from_secs(2),
        max: Duration::from_secs(60),
        jitter: 0.2,
    };

    /// The delay before retrying after `failures` consecutive failures
    /// (`failures >= 1`; 0 counts as 1). `random` is clamped into `[0, 1]`.
    pub fn delay(&self, failures: u32, random: f64) -> Duration {
        let doublings = failures.saturating_sub(1).min(32);
        let base = self
            .initial
            .saturating_mul(1u32 << doublings.min(31))
            .min(self.max);
        let random = if random.is_finite() {
            random.clamp(0.0, 1.0)
        } else {
            0.5
        };
        let jitter = self.jitter.clamp(0.0, 0.999);
        base.mul_f64(1.0 + jitter * (2.0 * random - 1.0))
    }
}

/// Consecutive failures of one thing (a relay, a peer's direct path) and
/// when to try again.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: Policy,
    failures: u32,
    next: Option<Duration>,
}

impl Backoff {
    pub fn new(policy: Policy) -> Self {
        Self {
            policy,
            failures: 0,
            next: None,
        }
    }

    /// An attempt failed at `now`: schedules the next one and returns when it is due.
    pub fn failed(&mut self, now: Duration, random: f64) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let at = now.saturating_add(self.policy.delay(self.failures, random));
        self.next = Some(at);
        at
    }

    /// An attempt succeeded: no retry is pending and the next failure starts
    /// the schedule over.
    pub fn reset(&mut self) {
        self.failures = 0;
        self.next = None;
    }

    /// When the pending retry is due, if one is.
    pub fn poll_timeout(&self) -> Option<Duration> {
        self.next
    }

    /// True once when `now` has reached the pending retry (which is then
    /// consumed): the driver makes its attempt and reports the outcome.
    pub fn handle_timeout(&mut self, now: Duration) -> bool {
        match self.next {
            Some(at) if now >= at => {
                self.next = None;
                true
            }
            _ => false,
        }
    }

    /// Consecutive failures since the last [`reset`](Self::reset).
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A tiny seeded generator (xorshift64*), so that tests inject their randomness.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> f64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    #[test]
    fn relay_schedule_without_jitter_doubles_to_the_cap() {
        // random = 0.5 is the middle of the jitter range: the base delay.
        let delays: Vec<Duration> = (1..=9).map(|n| Policy::RELAY.delay(n, 0.5)).collect();
        assert_eq!(
            delays,
            [
                ms(500),
                ms(1000),
                ms(2000),
                ms(4000),
                ms(8000),
                ms(16_000),
                ms(30_000),
                ms(30_000),
                ms(30_000)
            ]
        );
    }

    #[test]
    fn direct_schedule_starts_quick_and_caps_at_a_minute() {
        let delays: Vec<u64> = (1..=8)
            .map(|n| Policy::DIRECT.delay(n, 0.5).as_secs())
            .collect();
        assert_eq!(delays, [2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[test]
    fn jitter_bounds_are_exact() {
        assert_eq!(Policy::RELAY.delay(1, 0.0), ms(400));
        assert_eq!(Policy::RELAY.delay(1, 1.0), ms(600));
        assert_eq!(Policy::RELAY.delay(50, 0.0), ms(24_000));
        assert_eq!(Policy::RELAY.delay(50, 1.0), ms(36_000));
        // Out-of-range randomness is clamped, never a panic or a negative delay.
        assert_eq!(Policy::RELAY.delay(1, -3.0), ms(400));
        assert_eq!(Policy::RELAY.delay(1, f64::NAN), ms(500));
        assert_eq!(Policy::RELAY.delay(0, 0.5), ms(500));
        assert_eq!(Policy::RELAY.delay(u32::MAX, 0.5), ms(30_000));
    }

    #[test]
    fn a_seeded_run_is_reproducible_and_stays_in_bounds() {
        let run = |seed| {
            let mut rng = Rng(seed);
            let mut b = Backoff::new(Policy::RELAY);
            let mut now = Duration::ZERO;
            let mut delays = Vec::new();
            for _ in 0..12 {
                let at = b.failed(now, rng.next());
                delays.push(at - now);
                assert!(!b.handle_timeout(at - ms(1)), "not due before its time");
                assert!(b.handle_timeout(at), "due at its time");
                assert!(!b.handle_timeout(at), "due only once");
                now = at;
            }
            delays
        };
        let a = run(0x5eed);
        assert_eq!(a, run(0x5eed));
        assert_ne!(a, run(0x5eee), "different seeds spread the retries");
        for (i, d) in a.iter().enumerate() {
            let base = Policy::RELAY.delay(i as u32 + 1, 0.5);
            assert!(
                *d >= base.mul_f64(0.8) && *d <= base.mul_f64(1.2),
                "delay {i}: {d:?} around {base:?}"
            );
        }
    }

    #[test]
    fn reset_starts_over_and_cancels_the_pending_retry() {
        let mut b = Backoff::new(Policy::RELAY);
        for _ in 0..5 {
            b.failed(Duration::ZERO, 0.5);
        }
        assert_eq!(b.failures(), 5);
        b.reset();
        assert_eq!(b.poll_timeout(), None);
        assert!(!b.handle_timeout(Duration::MAX));
        assert_eq!(
            b.failed(Duration::from_secs(100), 0.5),
            Duration::from_secs(100) + ms(500)
        );
        assert_eq!(b.failures(), 1);
    }

    #[test]
    fn a_newer_failure_replaces_the_pending_retry() {
        let mut b = Backoff::new(Policy::DIRECT);
        b.failed(Duration::ZERO, 0.5);
        let second = b.failed(Duration::from_secs(1), 0.5);
        assert_eq!(second, Duration::from_secs(5));
        assert_eq!(b.poll_timeout(), Some(second));
    }

    proptest! {
        #[test]
        fn delays_never_shrink_before_jitter_and_never_exceed_the_jittered_cap(
            failures in 0u32..200, random in 0.0f64..1.0, now in 0u64..u64::MAX / 2,
        ) {
            for p in [Policy::RELAY, Policy::DIRECT] {
                let d = p.delay(failures, random);
                prop_assert!(d >= p.initial.mul_f64(1.0 - p.jitter));
                prop_assert!(d <= p.max.mul_f64(1.0 + p.jitter));
                prop_assert!(p.delay(failures + 1, 0.5) >= p.delay(failures, 0.5));
                let mut b = Backoff::new(p);
                let at = b.failed(Duration::from_nanos(now), random);
                prop_assert!(at >= Duration::from_nanos(now));
            }
        }
    }
}
