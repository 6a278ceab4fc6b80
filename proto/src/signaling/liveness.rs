//! Whether a connected `RTCPeerConnection` is still alive (sans-IO).
//!
//! Chromium reports `disconnected` a few seconds after ICE consent checks stop
//! getting answers (the path broke: UDP blocked, a network change) and may
//! take half a minute or more to report `failed`, or never. A transfer on such
//! a connection stalls without an error. So a connection that stays out of
//! `connected` for [`Liveness::GRACE`] is declared dead, and its driver closes
//! it; `failed` and `closed` are dead at once. A `disconnected` that recovers
//! within the grace (a brief loss) keeps the connection.

use std::time::Duration;

use super::PcState;

#[derive(Debug, Clone)]
pub struct Liveness {
    grace: Duration,
    /// When it last left `connected`, while it is out of it.
    away_since: Option<Duration>,
    dead: Option<PcState>,
}

impl Liveness {
    /// How long a connection may stay `disconnected` before it is given up.
    pub const GRACE: Duration = Duration::from_secs(5);

    /// A connection that is `connected` now.
    pub fn new(grace: Duration) -> Self {
        Self {
            grace,
            away_since: None,
            dead: None,
        }
    }

    /// The browser reported `state` at `now`.
    pub fn handle_state(&mut self, state: PcState, now: Duration) {
        if self.dead.is_some() {
            return;
        }
        match state {
            PcState::Connected => self.away_since = None,
            PcState::Failed | PcState::Closed => self.dead = Some(state),
            PcState::New | PcState::Connecting | PcState::Disconnected => {
                self.away_since.get_or_insert(now);
            }
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next.
    pub fn poll_timeout(&self) -> Option<Duration> {
        match (self.dead, self.away_since) {
            (None, Some(since)) => Some(since.saturating_add(self.grace)),
            _ => None,
        }
    }

    pub fn handle_timeout(&mut self, now: Duration) {
        if let Some(at) = self.poll_timeout() {
            if now >= at {
                self.dead = Some(PcState::Disconnected);
            }
        }
    }

    /// Dead, and the state that killed it (`Disconnected` after the grace).
    pub fn dead(&self) -> Option<PcState> {
        self.dead
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn a_disconnect_that_outlasts_the_grace_is_fatal() {
        let mut l = Liveness::new(Liveness::GRACE);
        l.handle_state(PcState::Disconnected, s(10));
        assert_eq!(l.poll_timeout(), Some(s(15)));
        l.handle_timeout(s(14));
        assert_eq!(l.dead(), None);
        // A repeated report does not restart the clock.
        l.handle_state(PcState::Disconnected, s(14));
        l.handle_timeout(s(15));
        assert_eq!(l.dead(), Some(PcState::Disconnected));
        assert_eq!(l.poll_timeout(), None);
        // Dead is final.
        l.handle_state(PcState::Connected, s(16));
        assert_eq!(l.dead(), Some(PcState::Disconnected));
    }

    #[test]
    fn a_brief_disconnect_is_forgiven() {
        let mut l = Liveness::new(Liveness::GRACE);
        l.handle_state(PcState::Disconnected, s(10));
        l.handle_state(PcState::Connected, s(12));
        assert_eq!(l.poll_timeout(), None);
        l.handle_timeout(s(100));
        assert_eq!(l.dead(), None);
        // The next disconnect gets a full grace of its own.
        l.handle_state(PcState::Disconnected, s(200));
        assert_eq!(l.poll_timeout(), Some(s(205)));
    }

    #[test]
    fn failed_and_closed_are_fatal_at_once() {
        for state in [PcState::Failed, PcState::Closed] {
            let mut l = Liveness::new(Liveness::GRACE);
            l.handle_state(PcState::Disconnected, s(1));
            l.handle_state(state, s(2));
            assert_eq!(l.dead(), Some(state));
            assert_eq!(l.poll_timeout(), None);
        }
    }
}
