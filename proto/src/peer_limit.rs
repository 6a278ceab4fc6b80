//! The `maxPeers` rule: how many peers a node keeps connections to.
//!
//! A peer counts while it has at least one connection, whichever way it was
//! made (dialed or accepted, relayed or direct). A new connection is admitted
//! when its peer is exempt (the relay), already counted (a second path to a
//! peer we have), or there is room. The driver asks [`PeerLimit::admit`] when
//! a connection is established and reports what the swarm then did with
//! [`PeerLimit::established`] and [`PeerLimit::closed`].

use std::{
    collections::{HashMap, HashSet},
    hash::Hash,
};

/// A connection refused because the node already has its peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("peer limit reached: already connected to {max} peers")]
pub struct PeerLimitReached {
    pub max: usize,
}

#[derive(Debug, Clone)]
pub struct PeerLimit<P> {
    max: usize,
    exempt: HashSet<P>,
    /// Open connections per counted peer (exempt peers are not kept).
    connections: HashMap<P, usize>,
}

impl<P: Eq + Hash + Clone> PeerLimit<P> {
    /// At most `max` peers besides the `exempt` ones.
    pub fn new(max: usize, exempt: impl IntoIterator<Item = P>) -> Self {
        Self {
            max,
            exempt: exempt.into_iter().collect(),
            connections: HashMap::new(),
        }
    }

    /// Whether a new connection to `peer` may stay open.
    pub fn admit(&self, peer: &P) -> Result<(), PeerLimitReached> {
        if self.exempt.contains(peer) || self.connections.contains_key(peer) || !self.is_full() {
            Ok(())
        } else {
            Err(PeerLimitReached { max: self.max })
        }
    }

    /// True when no new peer would be admitted.
    pub fn is_full(&self) -> bool {
        self.connections.len() >= self.max
    }

    /// Peers counted now.
    pub fn peers(&self) -> usize {
        self.connections.len()
    }

    /// A connection to `peer` was established.
    pub fn established(&mut self, peer: P) {
        if !self.exempt.contains(&peer) {
            *self.connections.entry(peer).or_default() += 1;
        }
    }

    /// A connection to `peer` closed.
    pub fn closed(&mut self, peer: &P) {
        if let Some(n) = self.connections.get_mut(peer) {
            *n -= 1;
            if *n == 0 {
                self.connections.remove(peer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RELAY: u32 = 0;

    #[test]
    fn admits_up_to_max_new_peers() {
        let mut l = PeerLimit::new(2, [RELAY]);
        for p in [1, 2] {
            assert_eq!(l.admit(&p), Ok(()));
            l.established(p);
        }
        assert!(l.is_full());
        assert_eq!(l.admit(&3), Err(PeerLimitReached { max: 2 }));
    }

    #[test]
    fn a_second_connection_to_a_counted_peer_is_admitted_and_counted_once() {
        let mut l = PeerLimit::new(1, [RELAY]);
        l.established(1);
        assert_eq!(l.admit(&1), Ok(()), "the direct path to a relayed peer");
        l.established(1);
        assert_eq!(l.peers(), 1);
        l.closed(&1);
        assert_eq!(l.peers(), 1, "one connection is still open");
        assert_eq!(l.admit(&2), Err(PeerLimitReached { max: 1 }));
        l.closed(&1);
        assert_eq!(l.peers(), 0);
        assert_eq!(l.admit(&2), Ok(()));
    }

    #[test]
    fn the_relay_is_never_counted_or_refused() {
        let mut l = PeerLimit::new(0, [RELAY]);
        assert_eq!(l.admit(&RELAY), Ok(()));
        l.established(RELAY);
        assert_eq!(l.peers(), 0);
        assert_eq!(l.admit(&1), Err(PeerLimitReached { max: 0 }));
    }

    #[test]
    fn closing_an_unknown_peer_changes_nothing() {
        let mut l = PeerLimit::new(1, [RELAY]);
        l.closed(&7);
        l.established(1);
        l.closed(&7);
        assert_eq!(l.peers(), 1);
    }
}
