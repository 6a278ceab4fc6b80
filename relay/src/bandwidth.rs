//! The relay's total bandwidth cap: one token bucket shared by every libp2p
//! WebSocket, charged for the bytes peers send. Relayed circuits are where
//! those bytes come from in bulk (signaling and control traffic are a few
//! KiB per peer), and the relay cannot tell them apart inside Noise, so the
//! cap applies to the sum; each circuit's own byte and time limits stay
//! in the relay's config.
//!
//! The bucket is sans-IO ([`TokenBucket`]: `now` in, a time to wait out);
//! [`Bandwidth`] shares it between connections. A connection charges what it
//! read and, while the bucket is in debt, reads nothing until it has paid:
//! TCP backpressure then slows the sender, nothing is buffered here.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A token bucket that may go into debt: a read of `n` bytes is charged in
/// full after the fact (its size is only known then), and the next read
/// waits until the balance is back at zero.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    /// Bytes per second added.
    rate: u64,
    /// Most bytes saved up while idle.
    burst: u64,
    /// Bytes available; negative while in debt.
    balance: i128,
    last: Instant,
}

impl TokenBucket {
    /// Starts full. `rate` must be positive (0 means no cap and is handled by
    /// [`Bandwidth::new`]).
    pub fn new(rate: u64, burst: u64, now: Instant) -> Self {
        Self {
            rate: rate.max(1),
            burst,
            balance: i128::from(burst),
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last);
        self.last = self.last.max(now);
        let added = elapsed.as_nanos() * u128::from(self.rate) / 1_000_000_000;
        let added = i128::try_from(added).unwrap_or(i128::MAX);
        self.balance = self
            .balance
            .saturating_add(added)
            .min(i128::from(self.burst));
    }

    /// Charges `bytes` read at `now`.
    pub fn charge(&mut self, bytes: u64, now: Instant) {
        self.refill(now);
        self.balance -= i128::from(bytes);
    }

    /// When the next read may happen: `None` now, else the instant the debt
    /// is paid off.
    pub fn ready_at(&mut self, now: Instant) -> Option<Instant> {
        self.refill(now);
        if self.balance >= 0 {
            return None;
        }
        let debt = u128::try_from(-self.balance).unwrap_or(u128::MAX);
        // Round up, so that the balance is non-negative at that instant.
        let nanos = (debt * 1_000_000_000).div_ceil(u128::from(self.rate));
        let wait = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
        Some(now + wait)
    }
}

/// The shared cap; cheap to clone. `None` inside: no cap.
#[derive(Debug, Clone, Default)]
pub struct Bandwidth {
    bucket: Option<Arc<Mutex<TokenBucket>>>,
}

impl Bandwidth {
    /// At most `bytes_per_sec` on average, with one second's worth as burst;
    /// 0: no cap.
    pub fn new(bytes_per_sec: u64) -> Self {
        if bytes_per_sec == 0 {
            return Self::default();
        }
        let bucket = TokenBucket::new(bytes_per_sec, bytes_per_sec, Instant::now());
        Self {
            bucket: Some(Arc::new(Mutex::new(bucket))),
        }
    }

    pub fn charge(&self, bytes: u64) {
        if let Some(bucket) = &self.bucket {
            let mut b = bucket.lock().unwrap_or_else(PoisonError::into_inner);
            b.charge(bytes, Instant::now());
        }
    }

    pub fn ready_at(&self) -> Option<Instant> {
        let bucket = self.bucket.as_ref()?;
        let mut b = bucket.lock().unwrap_or_else(PoisonError::into_inner);
        b.ready_at(Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn full_burst_then_waits_in_proportion_to_the_debt() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(1000, 1000, t0);
        assert_eq!(b.ready_at(t0), None);
        b.charge(1000, t0);
        assert_eq!(b.ready_at(t0), None, "exactly the burst is not a debt");
        b.charge(500, t0);
        assert_eq!(b.ready_at(t0), Some(t0 + 500 * MS));
        // Half paid after 250 ms.
        assert_eq!(b.ready_at(t0 + 250 * MS), Some(t0 + 500 * MS));
        assert_eq!(b.ready_at(t0 + 500 * MS), None);
    }

    #[test]
    fn idle_time_saves_up_to_the_burst_only() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(1000, 2000, t0);
        b.charge(2000, t0);
        let later = t0 + Duration::from_secs(3600);
        b.charge(2000, later);
        assert_eq!(b.ready_at(later), None);
        b.charge(1, later);
        assert!(
            b.ready_at(later).is_some(),
            "an hour idle saved only the burst"
        );
    }

    #[test]
    fn average_rate_holds_over_many_reads() {
        // 64 KiB reads as fast as allowed for 10 s at 1 MiB/s: about 10 MiB
        // plus the burst, never more.
        let rate = 1 << 20;
        let t0 = Instant::now();
        let mut b = TokenBucket::new(rate, rate, t0);
        let mut now = t0;
        let mut read = 0u64;
        while now < t0 + Duration::from_secs(10) {
            if let Some(at) = b.ready_at(now) {
                now = at;
                continue;
            }
            b.charge(64 << 10, now);
            read += 64 << 10;
        }
        assert!(read <= 11 * rate + (64 << 10), "{read}");
        assert!(read >= 10 * rate, "{read}");
    }

    #[test]
    fn zero_is_no_cap() {
        let b = Bandwidth::new(0);
        b.charge(u64::MAX);
        assert_eq!(b.ready_at(), None);
        let capped = Bandwidth::new(10);
        capped.charge(1_000);
        assert!(capped.ready_at().is_some());
    }

    #[test]
    fn clocks_going_backwards_add_nothing() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut b = TokenBucket::new(1000, 1000, t0);
        b.charge(1500, t0);
        assert_eq!(
            b.ready_at(t0 - Duration::from_secs(5)),
            Some(t0 - Duration::from_secs(5) + 500 * MS)
        );
    }
}
