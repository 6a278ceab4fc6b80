//! Who may have a session about which share, sans-IO: swarm membership,
//! bans and session limits, keyed by peer (a PeerId in the browser) and
//! share, so that what is decided about a peer holds across its sessions
//! and reconnects.
//!
//! The driver asks before it opens a stream ([`open`](Admission::open)) and
//! when one arrives ([`accept`](Admission::accept)); tells it when an
//! inbound handshake names a share ([`established`](Admission::established))
//! and when a session ends ([`ended`](Admission::ended)); and filters the
//! shares an opener may prove with [`may_join`](Admission::may_join). A
//! [`ban`](Admission::ban) returns the sessions to close; from then on no
//! session with that peer about that share is opened or accepted. A share
//! started over ([`end_share`](Admission::end_share)) ends every session
//! about it at once, handshakes in progress included: their tasks learn it
//! from [`is_live`](Admission::is_live) and a new attempt is not refused
//! because of them.
//!
//! Rules, with the limits from [`crate::limits`]:
//! - sessions only with members of the swarm (the driver records them);
//! - no session with a peer banned from that share, in either direction;
//! - at most one session opened by us per (peer, share), and
//!   [`MAX_SESSIONS_PER_PEER_AND_SHARE`] in all;
//! - at most [`MAX_SESSIONS_PER_PEER`] with one peer over all shares,
//!   counting handshakes in progress;
//! - at most [`MAX_SESSIONS_PER_SHARE`] about one share;
//! - at most [`MAX_PENDING_HANDSHAKES`] inbound handshakes at once.

use shoal_proto::vecmap::{VecMap, VecSet};

use crate::limits::{
    MAX_PENDING_HANDSHAKES, MAX_SESSIONS_PER_PEER, MAX_SESSIONS_PER_PEER_AND_SHARE,
    MAX_SESSIONS_PER_SHARE,
};

/// Names one session while it lives.
pub type SessionId = u64;

/// Why a session was not allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    #[error("the peer is not a member of this swarm")]
    NotMember,
    #[error("the peer is banned from this share")]
    Banned,
    #[error("a session to this peer about this share is open already")]
    AlreadyOpen,
    #[error("too many sessions with this peer")]
    PeerFull,
    #[error("too many sessions with this peer about this share")]
    PeerShareFull,
    #[error("too many sessions about this share")]
    ShareFull,
    #[error("too many handshakes in progress")]
    HandshakesFull,
    #[error("no such session")]
    UnknownSession,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Opened,
    Accepted,
}

#[derive(Debug, Clone)]
struct Entry<P, S> {
    peer: P,
    /// Known from the start when opened; once the handshake is done when
    /// accepted.
    share: Option<S>,
    direction: Direction,
}

/// What [`Admission::ended`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended<P, S> {
    pub peer: P,
    pub share: Option<S>,
    /// No other session with this peer about this share remains.
    pub last: bool,
}

/// Limits on sessions, tunable for tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    pub per_peer: usize,
    pub per_peer_and_share: usize,
    pub per_share: usize,
    pub pending_handshakes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            per_peer: MAX_SESSIONS_PER_PEER,
            per_peer_and_share: MAX_SESSIONS_PER_PEER_AND_SHARE,
            per_share: MAX_SESSIONS_PER_SHARE,
            pending_handshakes: MAX_PENDING_HANDSHAKES,
        }
    }
}

/// Membership, bans and session limits (module docs).
#[derive(Debug)]
pub struct Admission<P, S> {
    limits: Limits,
    members: VecSet<P>,
    banned: VecSet<(S, P)>,
    sessions: VecMap<SessionId, Entry<P, S>>,
    next: SessionId,
}

impl<P: Clone + Ord, S: Clone + Ord> Default for Admission<P, S> {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

impl<P: Clone + Ord, S: Clone + Ord> Admission<P, S> {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            members: VecSet::new(),
            banned: VecSet::new(),
            sessions: VecMap::new(),
            next: 0,
        }
    }

    /// `peer` was seen registered in the swarm; true if it is new.
    pub fn member_seen(&mut self, peer: P) -> bool {
        self.members.insert(peer)
    }

    pub fn is_member(&self, peer: &P) -> bool {
        self.members.contains(peer)
    }

    pub fn is_banned(&self, share: &S, peer: &P) -> bool {
        self.banned.contains(&(share.clone(), peer.clone()))
    }

    /// Bans `peer` from `share` for as long as this lives; returns the
    /// sessions with it about that share, to close.
    pub fn ban(&mut self, share: S, peer: P) -> Vec<SessionId> {
        let close = self
            .sessions
            .iter()
            .filter(|(_, e)| e.peer == peer && e.share.as_ref() == Some(&share))
            .map(|(id, _)| *id)
            .collect();
        self.banned.insert((share, peer));
        close
    }

    fn with_peer(&self, peer: &P) -> usize {
        self.sessions.values().filter(|e| e.peer == *peer).count()
    }

    fn about(&self, share: &S) -> impl Iterator<Item = &Entry<P, S>> + '_ {
        let share = share.clone();
        self.sessions
            .values()
            .filter(move |e| e.share.as_ref() == Some(&share))
    }

    fn check_share(&self, peer: &P, share: &S) -> Result<(), Refusal> {
        if !self.is_member(peer) {
            return Err(Refusal::NotMember);
        }
        if self.is_banned(share, peer) {
            return Err(Refusal::Banned);
        }
        if self.about(share).filter(|e| e.peer == *peer).count() >= self.limits.per_peer_and_share {
            return Err(Refusal::PeerShareFull);
        }
        if self.about(share).count() >= self.limits.per_share {
            return Err(Refusal::ShareFull);
        }
        Ok(())
    }

    fn insert(&mut self, entry: Entry<P, S>) -> SessionId {
        let id = self.next;
        self.next += 1;
        self.sessions.insert(id, entry);
        id
    }

    /// May this node open a session to `peer` about `share` now?
    pub fn open(&mut self, peer: P, share: S) -> Result<SessionId, Refusal> {
        self.check_share(&peer, &share)?;
        if self
            .about(&share)
            .any(|e| e.peer == peer && e.direction == Direction::Opened)
        {
            return Err(Refusal::AlreadyOpen);
        }
        if self.with_peer(&peer) >= self.limits.per_peer {
            return Err(Refusal::PeerFull);
        }
        Ok(self.insert(Entry {
            peer,
            share: Some(share),
            direction: Direction::Opened,
        }))
    }

    /// A stream from `peer` arrived: may it be read? (Membership is checked
    /// by [`established`](Self::established): the driver may wait for it.)
    pub fn accept(&mut self, peer: P) -> Result<SessionId, Refusal> {
        if self.with_peer(&peer) >= self.limits.per_peer {
            return Err(Refusal::PeerFull);
        }
        if self.pending_handshakes() >= self.limits.pending_handshakes {
            return Err(Refusal::HandshakesFull);
        }
        Ok(self.insert(Entry {
            peer,
            share: None,
            direction: Direction::Accepted,
        }))
    }

    /// Inbound handshakes in progress.
    pub fn pending_handshakes(&self) -> usize {
        self.sessions.values().filter(|e| e.share.is_none()).count()
    }

    /// Whether `peer` may join a session about `share`: the acceptor offers
    /// the handshake only the shares for which this holds.
    pub fn may_join(&self, peer: &P, share: &S) -> bool {
        self.check_share(peer, share).is_ok()
    }

    /// An accepted session's handshake named `share`. Refused (and
    /// forgotten) if the rules no longer allow it.
    pub fn established(&mut self, id: SessionId, share: S) -> Result<(), Refusal> {
        let peer = match self.sessions.get(&id) {
            Some(e) if e.share.is_none() => e.peer.clone(),
            _ => return Err(Refusal::UnknownSession),
        };
        if let Err(refusal) = self.check_share(&peer, &share) {
            self.sessions.remove(&id);
            return Err(refusal);
        }
        if let Some(e) = self.sessions.get_mut(&id) {
            e.share = Some(share);
        }
        Ok(())
    }

    /// Whether session `id` is still admitted (not ended, refused or
    /// ended with its share).
    pub fn is_live(&self, id: SessionId) -> bool {
        self.sessions.contains_key(&id)
    }

    /// Ends every session about `share` at once, in both directions and
    /// handshakes opened by us included (a download started over: the new
    /// attempt's sessions must not wait for the old ones' tasks to notice).
    /// Returns their ids; ending one of them again later is a no-op.
    pub fn end_share(&mut self, share: &S) -> Vec<SessionId> {
        let mut ended = Vec::new();
        self.sessions.retain(|id, e| {
            let about = e.share.as_ref() == Some(share);
            if about {
                ended.push(*id);
            }
            !about
        });
        ended
    }

    /// Session `id` is over (or never got going).
    pub fn ended(&mut self, id: SessionId) -> Option<Ended<P, S>> {
        let entry = self.sessions.remove(&id)?;
        let last = match &entry.share {
            Some(share) => !self.about(share).any(|e| e.peer == entry.peer),
            None => true,
        };
        Some(Ended {
            peer: entry.peer,
            share: entry.share,
            last,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adm() -> Admission<u8, char> {
        let mut a = Admission::new(Limits {
            per_peer: 3,
            per_peer_and_share: 2,
            per_share: 4,
            pending_handshakes: 2,
        });
        for p in 1..=9 {
            a.member_seen(p);
        }
        a
    }

    #[test]
    fn only_members() {
        let mut a = adm();
        assert_eq!(a.open(42, 'x'), Err(Refusal::NotMember));
        let id = a.accept(42).expect("read the handshake");
        assert_eq!(a.established(id, 'x'), Err(Refusal::NotMember));
        assert!(!a.may_join(&42, &'x'));
        assert!(a.member_seen(42));
        assert!(!a.member_seen(42));
        assert!(a.open(42, 'x').is_ok());
    }

    #[test]
    fn a_ban_closes_sessions_and_holds_across_reconnects() {
        let mut a = adm();
        let out = a.open(1, 'x').expect("open");
        let inb = a.accept(1).expect("accept");
        a.established(inb, 'x').expect("same share");
        let other = a.open(1, 'y').expect("another share");
        let mut close = a.ban('x', 1);
        close.sort_unstable();
        assert_eq!(close, [out, inb]);
        assert!(a.is_banned(&'x', &1));
        // The sessions end; the peer comes back (a reconnect) and tries again.
        assert!(a.ended(out).is_some_and(|e| !e.last));
        assert!(a.ended(inb).is_some_and(|e| e.last));
        assert_eq!(a.open(1, 'x'), Err(Refusal::Banned));
        let again = a.accept(1).expect("its stream is taken for its handshake");
        assert!(!a.may_join(&1, &'x'), "not offered in the handshake");
        assert_eq!(a.established(again, 'x'), Err(Refusal::Banned));
        // Other shares and other peers are not affected.
        assert!(a.is_member(&1) && !a.is_banned(&'y', &1));
        assert!(a.open(2, 'x').is_ok());
        assert!(a.ended(other).is_some_and(|e| e.last));
    }

    #[test]
    fn one_opened_session_per_peer_and_share_and_two_in_all() {
        let mut a = adm();
        let first = a.open(1, 'x').expect("open");
        assert_eq!(a.open(1, 'x'), Err(Refusal::AlreadyOpen));
        let inb = a.accept(1).expect("accept");
        a.established(inb, 'x').expect("one each way");
        let third = a.accept(1).expect("handshake");
        assert!(!a.may_join(&1, &'x'));
        assert_eq!(a.established(third, 'x'), Err(Refusal::PeerShareFull));
        a.ended(first);
        assert!(a.open(1, 'x').is_ok());
    }

    #[test]
    fn per_peer_per_share_and_handshake_limits() {
        let mut a = adm();
        // Per peer: 3 over all shares, handshakes included.
        a.open(1, 'a').expect("1");
        a.open(1, 'b').expect("2");
        a.accept(1).expect("3");
        assert_eq!(a.accept(1), Err(Refusal::PeerFull));
        assert_eq!(a.open(1, 'c'), Err(Refusal::PeerFull));
        // Pending handshakes: 2 in all.
        a.accept(2).expect("second pending");
        assert_eq!(a.accept(3), Err(Refusal::HandshakesFull));
        // Per share: 4.
        let mut b = adm();
        for p in 1..=4 {
            b.open(p, 'x').expect("room");
        }
        assert_eq!(b.open(5, 'x'), Err(Refusal::ShareFull));
        assert!(!b.may_join(&5, &'x'));
    }

    #[test]
    fn ending_a_share_frees_its_handshakes_in_progress() {
        let mut a = adm();
        let pending = a.open(1, 'x').expect("a handshake in progress");
        let inb = a.accept(2).expect("accept");
        a.established(inb, 'x').expect("established");
        let other = a.open(1, 'y').expect("another share");
        let waiting = a
            .accept(3)
            .expect("a handshake that has not named its share");
        assert_eq!(a.open(1, 'x'), Err(Refusal::AlreadyOpen));
        let mut ended = a.end_share(&'x');
        ended.sort_unstable();
        assert_eq!(ended, [pending, inb]);
        assert!(!a.is_live(pending) && !a.is_live(inb));
        assert!(a.is_live(other) && a.is_live(waiting));
        // The new attempt opens at once; the old task's late end changes nothing.
        let again = a.open(1, 'x').expect("not refused for the ended handshake");
        assert_eq!(a.ended(pending), None);
        assert!(a.is_live(again));
        assert_eq!(a.end_share(&'z'), Vec::<SessionId>::new());
    }

    #[test]
    fn ended_reports_the_last_session_with_a_peer_about_a_share() {
        let mut a = adm();
        let pending = a.accept(1).expect("accept");
        assert_eq!(
            a.ended(pending),
            Some(Ended {
                peer: 1,
                share: None,
                last: true
            })
        );
        assert_eq!(a.ended(pending), None);
        assert_eq!(a.established(pending, 'x'), Err(Refusal::UnknownSession));
    }
}
