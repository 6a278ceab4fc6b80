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
//!   used, unless it shows the direct one stale (next rule).
//! - **Stale direct paths.** A peer dials us only when it has no connection
//!   to us (through the relay after discovery or after its last connection
//!   closed; the initiator dials direct only while it has no direct path).
//!   So a connection the peer dialed tells us that every connection of ours
//!   it could not have known of when it started is dead on its side, even if
//!   ours has not noticed (a remote tab that closed its `RTCPeerConnection`
//!   without its goodbye arriving). Such connections are closed at once
//!   instead of waiting for ICE or pings to give up on them:
//!   - a direct connection the peer dialed makes every older direct one
//!     stale (the initiator dials one at a time);
//!   - a relayed one the peer dialed makes stale every direct one that was
//!     already up before the peer's dial began: one older than
//!     [`DIAL_TIMEOUT`] plus [`ARRIVAL_SLACK`] (a dial takes no longer), or one that was
//!     up when we closed an earlier relayed connection of the peer as late
//!     (the peer dials one at a time, and not while connected, so this dial
//!     began after that close). A younger one may just have overtaken the
//!     peer's dial; the initiator closes such a late relayed connection.
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

/// Bound on any dial of a peer, through the relay or direct, handshakes
/// included: no dial stays pending forever (the Swarm refuses new dials to a
/// peer it is still dialing), and the stale-path rule (module docs) relies on
/// the peer's dials taking no longer than this.
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(20);

/// How much later than its dialer the listening side may see a connection
/// complete (its last handshake message in flight on a loaded machine).
pub const ARRIVAL_SLACK: Duration = Duration::from_secs(5);

/// How a connection reaches the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    Direct,
    Relayed,
}

/// Why [`PathAction::Close`] closes a connection (for the driver's log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// A relayed connection, now that a direct one is up.
    Relayed,
    /// A relayed connection that arrived while direct (module docs).
    Late,
    /// A connection the peer's own dial shows dead on its side.
    Stale,
}

/// What the driver does next. `P` names a peer, `C` a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathAction<P, C> {
    /// Dial `/webrtc` to the peer through the relay; report the outcome with
    /// [`PathManager::direct_dial_started`] or
    /// [`PathManager::direct_dial_refused`].
    DialDirect(P),
    /// Close this connection, for this reason.
    Close(C, Why),
    /// Dial the peer through the relay.
    RedialRelayed(P),
    /// Transfers may (re)open sessions to the peer now.
    Usable(P),
    /// No connection to the peer is left.
    Gone(P),
}

#[derive(Debug)]
struct Conn {
    path: Path,
    /// When it opened.
    since: Duration,
}

#[derive(Debug)]
struct PeerPaths<C> {
    connections: VecMap<C, Conn>,
    initiator: bool,
    /// Our pending direct dial.
    dialing: Option<C>,
    /// When to dial direct again, while the peer is only relayed.
    retry: Option<Backoff>,
    /// When we last closed a relayed connection of the peer's as late.
    closed_late: Option<Duration>,
}

impl<C: Clone + Ord> PeerPaths<C> {
    fn has_direct(&self) -> bool {
        self.connections.values().any(|c| c.path == Path::Direct)
    }

    /// Direct connections that opened before `before`.
    fn direct_before(&self, before: Duration) -> Vec<C> {
        self.connections
            .iter()
            .filter(|(_, c)| c.path == Path::Direct && c.since < before)
            .map(|(id, _)| id.clone())
            .collect()
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

    /// A connection to `peer` is up at `now`. `dialer`: this side dialed
    /// it; `initiator`: this side starts WebRTC with this peer.
    pub fn connection_opened(
        &mut self,
        peer: P,
        conn: C,
        path: Path,
        dialer: bool,
        initiator: bool,
        now: Duration,
    ) {
        let entry = self.peers.entry(peer.clone()).or_insert_with(|| PeerPaths {
            connections: VecMap::new(),
            initiator,
            dialing: None,
            retry: None,
            closed_late: None,
        });
        if entry.dialing.as_ref() == Some(&conn) {
            entry.dialing = None;
        }
        // Connections of ours the peer's dial shows dead on its side.
        let stale = match (path, dialer) {
            (_, true) => Vec::new(),
            (Path::Direct, false) => entry.direct_before(Duration::MAX),
            (Path::Relayed, false) => {
                let dial_began = now.saturating_sub(DIAL_TIMEOUT + ARRIVAL_SLACK);
                entry.direct_before(entry.closed_late.map_or(dial_began, |t| t.max(dial_began)))
            }
        };
        for id in stale {
            // Gone from the rules now; its close is not news later.
            entry.connections.remove(&id);
            self.actions.push_back(PathAction::Close(id, Why::Stale));
        }
        if path == Path::Relayed && entry.initiator && entry.has_direct() {
            // A late relayed connection (both sides redialed through the
            // relay when a direct path died) to a peer that is direct again:
            // never used.
            entry.closed_late = Some(now);
            self.actions.push_back(PathAction::Close(conn, Why::Late));
            return;
        }
        entry
            .connections
            .insert(conn.clone(), Conn { path, since: now });
        match path {
            Path::Direct => {
                entry.retry = None;
                entry.closed_late = None;
                self.redials.remove(&peer);
                if dialer {
                    for (id, c) in &entry.connections {
                        if c.path == Path::Relayed {
                            self.actions
                                .push_back(PathAction::Close(id.clone(), Why::Relayed));
                        }
                    }
                }
                self.actions.push_back(PathAction::Usable(peer));
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
        if entry.connections.remove(conn).is_none() {
            // Already dropped from the rules when we closed it.
            return;
        }
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
        m.connection_opened(7, 1, Path::Relayed, true, true, Duration::ZERO);
        assert_eq!(drain(&mut m), [Usable(7), DialDirect(7)]);
        m.direct_dial_started(&7, 2);
        m.connection_opened(7, 2, Path::Direct, true, true, Duration::ZERO);
        assert_eq!(drain(&mut m), [Close(1, Why::Relayed), Usable(7)]);
        assert_eq!(m.path(&7), Some(Path::Direct));
        m.connection_closed(&7, &1, true, MS, MID);
        assert_eq!(drain(&mut m), [Usable(7)]);
        assert_eq!(m.poll_timeout(), None, "no retry while direct");
    }

    #[test]
    fn the_answerer_neither_dials_nor_closes() {
        let mut m = PathManager::new();
        m.connection_opened(3, 1, Path::Relayed, false, false, Duration::ZERO);
        assert_eq!(drain(&mut m), [Usable(3)]);
        m.connection_opened(3, 2, Path::Direct, false, false, Duration::ZERO);
        assert_eq!(drain(&mut m), [Usable(3)]);
        m.connection_closed(&3, &2, true, MS, MID);
        assert_eq!(drain(&mut m), [Usable(3)]);
        assert_eq!(m.poll_timeout(), None);
    }

    #[test]
    fn a_failed_dial_is_retried_on_the_schedule_one_at_a_time() {
        let mut m = PathManager::new();
        m.connection_opened(7, 1, Path::Relayed, true, true, Duration::ZERO);
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
        m.connection_opened(7, 4, Path::Relayed, false, true, Duration::ZERO);
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
        m.connection_opened(7, 1, Path::Relayed, true, true, Duration::ZERO);
        m.direct_dial_started(&7, 2);
        m.connection_opened(7, 2, Path::Direct, true, true, Duration::ZERO);
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
        m.connection_opened(7, 2, Path::Direct, true, true, Duration::ZERO);
        drain(&mut m);
        m.connection_closed(&7, &2, true, MS, MID);
        assert_eq!(drain(&mut m), [Gone(7), RedialRelayed(7)]);
        assert_eq!(m.path(&7), None);
        m.connection_opened(8, 5, Path::Relayed, false, false, Duration::ZERO);
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
        m.connection_opened(7, 1, Path::Relayed, true, false, Duration::ZERO);
        m.connection_closed(&7, &1, true, Duration::ZERO, MID);
        assert_eq!(drain(&mut m), [Usable(7), Gone(7), RedialRelayed(7)]);
        m.connection_opened(7, 2, Path::Relayed, true, false, Duration::ZERO);
        m.connection_closed(&7, &2, true, 10 * MS, MID);
        assert_eq!(drain(&mut m), [Usable(7), Gone(7)], "not again at once");
        assert!(m.backing_off(&7), "nor when discovery lists it again");
        m.handle_timeout(2009 * MS);
        assert!(drain(&mut m).is_empty());
        m.handle_timeout(2010 * MS);
        assert_eq!(drain(&mut m), [RedialRelayed(7)]);
        assert!(!m.backing_off(&7));
        // And again: 4 s.
        m.connection_opened(7, 4, Path::Relayed, true, false, Duration::ZERO);
        m.connection_closed(&7, &4, true, 3000 * MS, MID);
        drain(&mut m);
        assert_eq!(m.poll_timeout(), Some(7000 * MS));
        assert!(m.backing_off(&7));
        // Direct again: the next loss is redialed at once.
        m.connection_opened(7, 3, Path::Direct, true, false, Duration::ZERO);
        assert!(!m.backing_off(&7));
        m.connection_closed(&7, &3, true, 5000 * MS, MID);
        assert_eq!(drain(&mut m), [Usable(7), Gone(7), RedialRelayed(7)]);
    }

    #[test]
    fn a_late_relayed_connection_to_a_direct_peer_is_closed_unused() {
        let mut m = PathManager::new();
        m.connection_opened(7, 2, Path::Direct, true, true, Duration::ZERO);
        drain(&mut m);
        m.connection_opened(7, 9, Path::Relayed, false, true, Duration::ZERO);
        assert_eq!(drain(&mut m), [Close(9, Why::Late)]);
        // The answerer keeps it (the initiator closes it).
        m.connection_opened(3, 2, Path::Direct, false, false, Duration::ZERO);
        drain(&mut m);
        m.connection_opened(3, 9, Path::Relayed, false, false, Duration::ZERO);
        assert_eq!(drain(&mut m), [Usable(3)]);
    }

    #[test]
    fn a_retry_is_dropped_once_the_peer_is_direct_again() {
        let mut m = PathManager::new();
        m.connection_opened(7, 1, Path::Relayed, true, true, Duration::ZERO);
        drain(&mut m);
        m.direct_dial_started(&7, 2);
        m.dial_failed(&2, MS, MID);
        assert!(m.poll_timeout().is_some());
        // The other side's dial made it (it was not ours to close with).
        m.connection_opened(7, 3, Path::Direct, false, true, Duration::ZERO);
        drain(&mut m);
        m.handle_timeout(Duration::from_secs(100));
        assert!(drain(&mut m).is_empty());
        assert_eq!(m.poll_timeout(), None);
    }

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn a_relayed_dial_from_a_peer_long_direct_closes_the_stale_direct_path() {
        let mut m = PathManager::new();
        m.connection_opened(7, 2, Path::Direct, true, true, Duration::ZERO);
        drain(&mut m);
        // The peer could not have begun this dial before 26 s - 25 s: our
        // direct connection was up then, so the peer had lost it.
        m.connection_opened(7, 9, Path::Relayed, false, true, 26 * S);
        assert_eq!(
            drain(&mut m),
            [Close(2, Why::Stale), Usable(7), DialDirect(7)]
        );
        assert_eq!(m.path(&7), Some(Path::Relayed));
        // Its close is not news: no second Usable, no retry of a dial in flight.
        m.connection_closed(&7, &2, true, 26 * S, MID);
        assert!(drain(&mut m).is_empty());
        // The answerer drops its stale one the same way, and does not dial.
        m.connection_opened(3, 2, Path::Direct, false, false, Duration::ZERO);
        drain(&mut m);
        m.connection_opened(3, 9, Path::Relayed, false, false, 26 * S);
        assert_eq!(drain(&mut m), [Close(2, Why::Stale), Usable(3)]);
    }

    #[test]
    fn a_second_relayed_dial_shows_a_young_direct_path_stale() {
        let mut m = PathManager::new();
        m.connection_opened(7, 2, Path::Direct, true, true, Duration::ZERO);
        drain(&mut m);
        // Possibly a dial that began before the direct path: closed as late.
        m.connection_opened(7, 9, Path::Relayed, false, true, 10 * S);
        assert_eq!(drain(&mut m), [Close(9, Why::Late)]);
        m.connection_closed(&7, &9, true, 10 * S, MID);
        assert!(drain(&mut m).is_empty());
        // The peer dialed again after that close: it has no direct path.
        m.connection_opened(7, 10, Path::Relayed, false, true, 12 * S);
        assert_eq!(
            drain(&mut m),
            [Close(2, Why::Stale), Usable(7), DialDirect(7)]
        );
        // Direct again: a new direct path starts a new count.
        m.direct_dial_started(&7, 11);
        m.connection_opened(7, 11, Path::Direct, true, true, 13 * S);
        assert_eq!(drain(&mut m), [Close(10, Why::Relayed), Usable(7)]);
        m.connection_closed(&7, &10, true, 13 * S, MID);
        drain(&mut m);
        m.connection_opened(7, 12, Path::Relayed, false, true, 14 * S);
        assert_eq!(drain(&mut m), [Close(12, Why::Late)], "late, not stale");
    }

    #[test]
    fn a_direct_dial_from_the_initiator_replaces_the_answerers_older_direct_path() {
        let mut m = PathManager::new();
        m.connection_opened(3, 1, Path::Relayed, false, false, Duration::ZERO);
        m.connection_opened(3, 2, Path::Direct, false, false, S);
        drain(&mut m);
        m.connection_opened(3, 4, Path::Direct, false, false, 2 * S);
        assert_eq!(drain(&mut m), [Close(2, Why::Stale), Usable(3)]);
        assert_eq!(m.path(&3), Some(Path::Direct));
        m.connection_closed(&3, &4, true, 3 * S, MID);
        assert_eq!(drain(&mut m), [Usable(3)]);
        assert_eq!(
            m.path(&3),
            Some(Path::Relayed),
            "the relayed one carries on"
        );
    }

    #[test]
    fn our_own_dials_show_nothing_stale() {
        let mut m = PathManager::new();
        m.connection_opened(7, 2, Path::Direct, true, true, Duration::ZERO);
        drain(&mut m);
        m.connection_opened(7, 9, Path::Relayed, true, true, 60 * S);
        assert_eq!(drain(&mut m), [Close(9, Why::Late)]);
        assert_eq!(m.path(&7), Some(Path::Direct));
    }
}
