//! The path policy towards other peers, sans-IO: which connection to keep,
//! when to try a direct WebRTC path, when to fall back to the relay.
//!
//! Peers meet through the relay (a relayed connection), then the peer with
//! the smaller PeerId (the *initiator*; the driver says which side it is)
//! dials `/webrtc` through that connection. The rules:
//!
//! - **Relayed first.** A new connection of either path is usable for
//!   transfers at once ([`PathAction::Usable`]); an initiator whose peer is
//!   only relayed dials direct ([`PathAction::DialDirect`]), one dial at a
//!   time.
//! - **Direct wins.** Once a direct connection is up, the side that dialed
//!   it closes the relayed ones ([`PathAction::Close`]): file bytes never
//!   cross the relay when a direct path exists. (The answerer is done first;
//!   closing then would cut the dialer's signaling.) A relayed connection
//!   that arrives while the initiator is direct is closed at once and not
//!   used.
//! - **Retries.** A failed direct dial is retried on
//!   [`Policy::DIRECT`](crate::backoff::Policy::DIRECT) (2 s doubling to
//!   60 s, with jitter) for as long as the peer stays relayed; a direct
//!   connection that dies while a relayed one carries on is retried soon.
//! - **Fallback.** When a peer's last connection closes it is
//!   [`Gone`](PathAction::Gone), and redialed through the relay
//!   ([`PathAction::RedialRelayed`], if the relay is connected): it may only
//!   have lost its direct path. The first redial is immediate, further ones
//!   follow [`Policy::DIRECT`](crate::backoff::Policy::DIRECT) until the
//!   peer is direct again, so a peer that keeps refusing us (a full tab)
//!   is not redialed in a loop, nor dialed when discovery lists it again
//!   while its redial waits ([`PathManager::backing_off`]). Otherwise the
//!   remaining connection carries on ([`PathAction::Usable`] again, so
//!   transfers reopen on it).
//!
//! (How many peers a tab connects to at all is [`crate::peer_limit`]'s
//! rule, applied before a connection reaches this.)
//!
//! Inputs, `now` and random numbers (for jitter) in; [`PathAction`]s out.

use std::collections::VecDeque;

use crate::vecmap::VecMap;
use std::time::Duration;

use crate::backoff::{Backoff, Policy};

/// How a connection reaches the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    Direct,
    Relayed,
}

/// What the driver does next. `P` names a peer, `C` a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathAction<P, C> {
    /// Dial `/webrtc` to the peer through the relay; report the outcome with
    /// [`PathManager::direct_dial_started`] or
    /// [`PathManager::direct_dial_refused`].
    DialDirect(P),
    /// Close this connection.
    Close(C),
    /// Dial the peer through the relay.
    RedialRelayed(P),
    /// Transfers may (re)open sessions to the peer now.
    Usable(P),
    /// No connection to the peer is left.
    Gone(P),
}

#[derive(Debug)]
struct PeerPaths<C> {
    connections: VecMap<C, Path>,
    initiator: bool,
    /// Our pending direct dial.
    dialing: Option<C>,
    /// When to dial direct again, while the peer is only relayed.
    retry: Option<Backoff>,
}

impl<C> PeerPaths<C> {
    fn has_direct(&self) -> bool {
        self.connections.values().any(|p| *p == Path::Direct)
    }

    /// Connected through the relay only.
    fn needs_direct(&self) -> bool {
        !self.connections.is_empty() && !self.has_direct()
    }
}

/// The path policy for every peer (module docs).
#[derive(Debug)]
pub struct PathManager<P, C> {
    peers: VecMap<P, PeerPaths<C>>,
    /// Redials through the relay after a peer's last connection closed.
    redials: VecMap<P, Backoff>,
    actions: VecDeque<PathAction<P, C>>,
}

impl<P: Clone + Ord, C: Clone + Ord> Default for PathManager<P, C> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: Clone + Ord, C: Clone + Ord> PathManager<P, C> {
    pub fn new() -> Self {
        Self {
            peers: VecMap::new(),
            redials: VecMap::new(),
            actions: VecDeque::new(),
        }
    }

    /// A connection to `peer` is up. `dialer`: this side dialed it;
    /// `initiator`: this side starts WebRTC with this peer.
    pub fn connection_opened(
        &mut self,
        peer: P,
        conn: C,
        path: Path,
        dialer: bool,
        initiator: bool,
    ) {
        let entry = self.peers.entry(peer.clone()).or_insert_with(|| PeerPaths {
            connections: VecMap::new(),
            initiator,
            dialing: None,
            retry: None,
        });
        if entry.dialing.as_ref() == Some(&conn) {
            entry.dialing = None;
        }
        let was_direct = entry.has_direct();
        entry.connections.insert(conn.clone(), path);
        match path {
            Path::Direct => {
                entry.retry = None;
                self.redials.remove(&peer);
                if dialer {
                    for (id, p) in &entry.connections {
                        if *p == Path::Relayed {
                            self.actions.push_back(PathAction::Close(id.clone()));
                        }
                    }
                }
                self.actions.push_back(PathAction::Usable(peer));
            }
            Path::Relayed if entry.initiator && was_direct => {
                // A late relayed connection (both sides redialed through the
                // relay when a direct path died) to a peer that is direct again.
                self.actions.push_back(PathAction::Close(conn));
            }
            Path::Relayed => {
                self.actions.push_back(PathAction::Usable(peer.clone()));
                self.dial_if_needed(&peer);
            }
        }
    }

    fn dial_if_needed(&mut self, peer: &P) {
        if let Some(entry) = self.peers.get(peer) {
            if entry.initiator && entry.needs_direct() && entry.dialing.is_none() {
                self.actions.push_back(PathAction::DialDirect(peer.clone()));
            }
        }
    }

    /// The driver started the direct dial asked for; `conn` names it.
    pub fn direct_dial_started(&mut self, peer: &P, conn: C) {
        if let Some(entry) = self.peers.get_mut(peer) {
            entry.dialing = Some(conn);
        }
    }

    /// The driver could not start the direct dial: retried later.
    pub fn direct_dial_refused(&mut self, peer: &P, now: Duration, random: f64) {
        if let Some(entry) = self.peers.get_mut(peer) {
            entry
                .retry
                .get_or_insert_with(|| Backoff::new(Policy::DIRECT))
                .failed(now, random);
        }
    }

    /// An outgoing connection failed. Returns the peer if it was our direct
    /// dial (then retried on the schedule; `Some` also for logging).
    pub fn dial_failed(&mut self, conn: &C, now: Duration, random: f64) -> Option<P> {
        let (peer, entry) = self
            .peers
            .iter_mut()
            .find(|(_, e)| e.dialing.as_ref() == Some(conn))?;
        entry.dialing = None;
        entry
            .retry
            .get_or_insert_with(|| Backoff::new(Policy::DIRECT))
            .failed(now, random);
        Some(peer.clone())
    }

    /// Whether a redial of `peer` through the relay is waiting on its
    /// backoff: the driver does not dial it on its own meanwhile (a peer
    /// listed at each discovery that keeps refusing us is dialed on the
    /// schedule, not at each discovery).
    pub fn backing_off(&self, peer: &P) -> bool {
        self.redials
            .get(peer)
            .is_some_and(|b| b.poll_timeout().is_some())
    }

    /// When the next direct retry of `peer` is due.
    pub fn next_retry(&self, peer: &P) -> Option<Duration> {
        self.peers.get(peer)?.retry.as_ref()?.poll_timeout()
    }

    /// A connection to `peer` closed. `relay_connected`: whether the relay
    /// can carry a redial now.
    pub fn connection_closed(
        &mut self,
        peer: &P,
        conn: &C,
        relay_connected: bool,
        now: Duration,
        random: f64,
    ) {
        let Some(entry) = self.peers.get_mut(peer) else {
            return;
        };
        entry.connections.remove(conn);
        if entry.connections.is_empty() {
            self.peers.remove(peer);
            self.actions.push_back(PathAction::Gone(peer.clone()));
            match self.redials.get_mut(peer) {
                // Lost again before it was direct: on the schedule.
                Some(redial) => {
                    if redial.poll_timeout().is_none() {
                        redial.failed(now, random);
                    }
                }
                None => {
                    self.redials
                        .insert(peer.clone(), Backoff::new(Policy::DIRECT));
                    if relay_connected {
                        self.actions
                            .push_back(PathAction::RedialRelayed(peer.clone()));
                    }
                }
            }
            return;
        }
        // Another connection carries on: sessions that ended with this one
        // reopen there.
        self.actions.push_back(PathAction::Usable(peer.clone()));
        if entry.initiator && entry.needs_direct() {
            // The direct path died and the relayed one carries on: try again soon.
            let backoff = entry
                .retry
                .get_or_insert_with(|| Backoff::new(Policy::DIRECT));
            if backoff.poll_timeout().is_none() {
                backoff.failed(now, random);
            }
        }
    }

    /// Due retries become [`PathAction::DialDirect`]; peers that are direct
    /// again (or gone) drop theirs.
    pub fn handle_timeout(&mut self, now: Duration) {
        let mut due = Vec::new();
        for (peer, entry) in &mut self.peers {
            if !entry.needs_direct() {
                entry.retry = None;
                continue;
            }
            if entry.retry.as_mut().is_some_and(|b| b.handle_timeout(now)) {
                due.push(peer.clone());
            }
        }
        for peer in due {
            self.dial_if_needed(&peer);
        }
        let peers = &self.peers;
        let actions = &mut self.actions;
        for (peer, backoff) in &mut self.redials {
            // A peer that is back (relayed) keeps its count until direct.
            if backoff.handle_timeout(now) && !peers.contains_key(peer) {
                actions.push_back(PathAction::RedialRelayed(peer.clone()));
            }
        }
    }

    /// The earliest retry or redial.
    pub fn poll_timeout(&self) -> Option<Duration> {
        self.peers
            .values()
            .filter_map(|e| e.retry.as_ref()?.poll_timeout())
            .chain(self.redials.values().filter_map(Backoff::poll_timeout))
            .min()
    }

    pub fn poll_action(&mut self) -> Option<PathAction<P, C>> {
        self.actions.pop_front()
    }

    /// The best path to `peer` now.
    pub fn path(&self, peer: &P) -> Option<Path> {
        let entry = self.peers.get(peer)?;
        if entry.has_direct() {
            Some(Path::Direct)
        } else if entry.connections.is_empty() {
            None
        } else {
            Some(Path::Relayed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PathAction::*;

    const MS: Duration = Duration::from_millis(1);
    const MID: f64 = 0.5;

    fn drain(m: &mut PathManager<u8, u32>) -> Vec<PathAction<u8, u32>> {
        std::iter::from_fn(|| m.poll_action()).collect()
    }

    #[test]
    fn relayed_first_then_direct_closes_the_relay() {
        let mut m = PathManager::new();
        m.connection_opened(7, 1, Path::Relayed, true, true);
        assert_eq!(drain(&mut m), [Usable(7), DialDirect(7)]);
        m.direct_dial_started(&7, 2);
        m.connection_opened(7, 2, Path::Direct, true, true);
        assert_eq!(drain(&mut m), [Close(1), Usable(7)]);
        assert_eq!(m.path(&7), Some(Path::Direct));
        m.connection_closed(&7, &1, true, MS, MID);
        assert_eq!(drain(&mut m), [Usable(7)]);
        assert_eq!(m.poll_timeout(), None, "no retry while direct");
    }

    #[test]
    fn the_answerer_neither_dials_nor_closes() {
        let mut m = PathManager::new();
        m.connection_opened(3, 1, Path::Relayed, false, false);
        assert_eq!(drain(&mut m), [Usable(3)]);
        m.connection_opened(3, 2, Path::Direct, false, false);
        assert_eq!(drain(&mut m), [Usable(3)]);
        m.connection_closed(&3, &2, true, MS, MID);
        assert_eq!(drain(&mut m), [Usable(3)]);
        assert_eq!(m.poll_timeout(), None);
    }

    #[test]
    fn a_failed_dial_is_retried_on_the_schedule_one_at_a_time() {
        let mut m = PathManager::new();
        m.connection_opened(7, 1, Path::Relayed, true, true);
        drain(&mut m);
        m.direct_dial_started(&7, 2);
        assert_eq!(m.dial_failed(&2, 1000 * MS, MID), Some(7));
        assert_eq!(m.dial_failed(&99, 1000 * MS, MID), None);
        // 2 s (jitter at its middle) after the failure.
        assert_eq!(m.poll_timeout(), Some(3000 * MS));
        m.handle_timeout(2999 * MS);
        assert!(drain(&mut m).is_empty());
        m.handle_timeout(3000 * MS);
        assert_eq!(drain(&mut m), [DialDirect(7)]);
        m.direct_dial_started(&7, 3);
        // Another relayed connection does not start a second dial.
        m.connection_opened(7, 4, Path::Relayed, false, true);
        assert_eq!(drain(&mut m), [Usable(7)]);
        // Second failure: 4 s.
        m.dial_failed(&3, 5000 * MS, MID);
        assert_eq!(m.poll_timeout(), Some(9000 * MS));
        // A refused dial is retried too.
        m.handle_timeout(9000 * MS);
        assert_eq!(drain(&mut m), [DialDirect(7)]);
        m.direct_dial_refused(&7, 9000 * MS, MID);
        assert_eq!(m.poll_timeout(), Some(17_000 * MS));
    }

    #[test]
    fn a_dead_direct_path_falls_back_and_is_retried_soon() {
        let mut m = PathManager::new();
        m.connection_opened(7, 1, Path::Relayed, true, true);
        m.direct_dial_started(&7, 2);
        m.connection_opened(7, 2, Path::Direct, true, true);
        // Suppose the relayed one had not closed yet when the direct one died.
        drain(&mut m);
        m.connection_closed(&7, &2, true, 100 * MS, MID);
        assert_eq!(drain(&mut m), [Usable(7)]);
        assert_eq!(m.path(&7), Some(Path::Relayed));
        assert_eq!(m.poll_timeout(), Some(2100 * MS));
        m.handle_timeout(2100 * MS);
        assert_eq!(drain(&mut m), [DialDirect(7)]);
    }

    #[test]
    fn the_last_connection_closing_redials_through_the_relay() {
        let mut m = PathManager::new();
        m.connection_opened(7, 2, Path::Direct, true, true);
        drain(&mut m);
        m.connection_closed(&7, &2, true, MS, MID);
        assert_eq!(drain(&mut m), [Gone(7), RedialRelayed(7)]);
        assert_eq!(m.path(&7), None);
        m.connection_opened(8, 5, Path::Relayed, false, false);
        drain(&mut m);
        m.connection_closed(&8, &5, false, MS, MID);
        assert_eq!(drain(&mut m), [Gone(8)], "no relay: no redial");
        // A peer that left is redialed once, not again.
        m.handle_timeout(Duration::from_secs(100));
        assert!(drain(&mut m).is_empty());
    }

    #[test]
    fn a_peer_that_keeps_closing_on_us_is_redialed_with_backoff() {
        let mut m = PathManager::new();
        // Connected through the relay, closed at once by the other side (full).
        m.connection_opened(7, 1, Path::Relayed, true, false);
        m.connection_closed(&7, &1, true, Duration::ZERO, MID);
        assert_eq!(drain(&mut m), [Usable(7), Gone(7), RedialRelayed(7)]);
        m.connection_opened(7, 2, Path::Relayed, true, false);
        m.connection_closed(&7, &2, true, 10 * MS, MID);
        assert_eq!(drain(&mut m), [Usable(7), Gone(7)], "not again at once");
        assert!(m.backing_off(&7), "nor when discovery lists it again");
        m.handle_timeout(2009 * MS);
        assert!(drain(&mut m).is_empty());
        m.handle_timeout(2010 * MS);
        assert_eq!(drain(&mut m), [RedialRelayed(7)]);
        assert!(!m.backing_off(&7));
        // And again: 4 s.
        m.connection_opened(7, 4, Path::Relayed, true, false);
        m.connection_closed(&7, &4, true, 3000 * MS, MID);
        drain(&mut m);
        assert_eq!(m.poll_timeout(), Some(7000 * MS));
        assert!(m.backing_off(&7));
        // Direct again: the next loss is redialed at once.
        m.connection_opened(7, 3, Path::Direct, true, false);
        assert!(!m.backing_off(&7));
        m.connection_closed(&7, &3, true, 5000 * MS, MID);
        assert_eq!(drain(&mut m), [Usable(7), Gone(7), RedialRelayed(7)]);
    }

    #[test]
    fn a_late_relayed_connection_to_a_direct_peer_is_closed_unused() {
        let mut m = PathManager::new();
        m.connection_opened(7, 2, Path::Direct, true, true);
        drain(&mut m);
        m.connection_opened(7, 9, Path::Relayed, false, true);
        assert_eq!(drain(&mut m), [Close(9)]);
        // The answerer keeps it (the initiator closes it).
        m.connection_opened(3, 2, Path::Direct, false, false);
        drain(&mut m);
        m.connection_opened(3, 9, Path::Relayed, false, false);
        assert_eq!(drain(&mut m), [Usable(3)]);
    }

    #[test]
    fn a_retry_is_dropped_once_the_peer_is_direct_again() {
        let mut m = PathManager::new();
        m.connection_opened(7, 1, Path::Relayed, true, true);
        drain(&mut m);
        m.direct_dial_started(&7, 2);
        m.dial_failed(&2, MS, MID);
        assert!(m.poll_timeout().is_some());
        // The other side's dial made it (it was not ours to close with).
        m.connection_opened(7, 3, Path::Direct, false, true);
        drain(&mut m);
        m.handle_timeout(Duration::from_secs(100));
        assert!(drain(&mut m).is_empty());
        assert_eq!(m.poll_timeout(), None);
    }
}
