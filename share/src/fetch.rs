//! Fetching a share's manifest, sans-IO.
//!
//! Every peer that proves it holds the share (a holder) may have the
//! manifest. [`ManifestFetch`] asks up to [`MANIFEST_PARALLEL_ASKS`] holders
//! at once, each bounded by [`MANIFEST_ASK_TIMEOUT`], and the first
//! manifest that hashes to the share id wins. A holder that answers
//! `Unknown` (it has no manifest yet), sends a wrong manifest, leaves or
//! stays silent frees its slot for the next holder at once: one silent peer
//! can delay the fetch by one timeout at most, never stall it. A holder that
//! said `Unknown` or timed out is asked again once it sends a new bitfield
//! (it may have the manifest now), or one ask timeout later, after holders
//! not yet asked: a holder that was silent once may answer later, and a
//! fetch whose every holder was silent must not give up. A holder that sent
//! a wrong manifest is not asked again until it leaves (the driver ends its
//! sessions) and comes back.
//!
//! Inputs and `now` in; [`FetchAction`]s out, like [`crate::Scheduler`].

use std::collections::VecDeque;

use shoal_proto::vecmap::VecMap;
use std::time::Duration;

use crate::limits::{MANIFEST_ASK_TIMEOUT, MANIFEST_PARALLEL_ASKS};
use crate::manifest::{Manifest, ManifestError, ShareId};

/// What the driver does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchAction<P> {
    /// Send `GetManifest` to this holder.
    Ask(P),
    /// This holder sent a manifest that does not match the link: end the
    /// session with it.
    Refuse(P),
}

/// Why [`ManifestFetch::manifest_received`] did not finish the fetch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    #[error("a peer sent a manifest that does not match the link: {0}")]
    Mismatch(ManifestError),
    #[error("a manifest from a peer that was not asked, or already refused")]
    Unasked,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holder {
    /// Not asked yet (or again since a new bitfield).
    Fresh,
    /// Asked; answer due by the deadline.
    Asked { deadline: Duration },
    /// Said `Unknown` or timed out; asked again after a new bitfield, or
    /// from `retry_at` on (when it is known).
    Tried { retry_at: Option<Duration> },
    /// Sent a wrong manifest: never asked again.
    Refused,
}

/// The manifest fetch of one download (module docs). `P` names a peer.
#[derive(Debug)]
pub struct ManifestFetch<P> {
    share: ShareId,
    holders: VecMap<P, Holder>,
    /// Order in which fresh holders joined: asked first come, first served.
    queue: VecDeque<P>,
    max_parallel: usize,
    ask_timeout: Duration,
    actions: VecDeque<FetchAction<P>>,
    done: bool,
}

impl<P: Clone + Ord> ManifestFetch<P> {
    pub fn new(share: ShareId) -> Self {
        Self::with_limits(share, MANIFEST_PARALLEL_ASKS, MANIFEST_ASK_TIMEOUT)
    }

    /// With other limits (tests); `max_parallel` of 0 counts as 1.
    pub fn with_limits(share: ShareId, max_parallel: usize, ask_timeout: Duration) -> Self {
        Self {
            share,
            holders: VecMap::new(),
            queue: VecDeque::new(),
            max_parallel: max_parallel.max(1),
            ask_timeout,
            actions: VecDeque::new(),
            done: false,
        }
    }

    /// A peer proved it holds the share, or sent a new bitfield.
    pub fn holder_joined(&mut self, peer: P) {
        match self.holders.get(&peer) {
            None | Some(Holder::Tried { .. }) => {
                self.holders.insert(peer.clone(), Holder::Fresh);
                self.queue.retain(|p| *p != peer);
                self.queue.push_back(peer);
            }
            Some(Holder::Fresh | Holder::Asked { .. } | Holder::Refused) => {}
        }
    }

    /// The peer's last session ended.
    pub fn holder_left(&mut self, peer: &P) {
        self.holders.remove(peer);
        self.queue.retain(|p| p != peer);
    }

    /// The peer answered `GetManifest` with `Unknown` (at `now`).
    pub fn unknown(&mut self, peer: &P, now: Duration) {
        let retry_at = Some(now.saturating_add(self.ask_timeout));
        if let Some(h @ Holder::Asked { .. }) = self.holders.get_mut(peer) {
            *h = Holder::Tried { retry_at };
        }
    }

    /// A `Manifest` arrived from `peer`: the verified manifest ends the
    /// fetch; a wrong one refuses the peer ([`FetchAction::Refuse`]).
    pub fn manifest_received(&mut self, peer: &P, bytes: &[u8]) -> Result<Manifest, FetchError> {
        match self.holders.get(peer) {
            Some(Holder::Asked { .. }) => {}
            _ => return Err(FetchError::Unasked),
        }
        match Manifest::decode_verified(bytes, &self.share) {
            Ok(manifest) => {
                self.done = true;
                self.actions.clear();
                Ok(manifest)
            }
            Err(e) => {
                self.holders.insert(peer.clone(), Holder::Refused);
                self.actions.push_back(FetchAction::Refuse(peer.clone()));
                Err(FetchError::Mismatch(e))
            }
        }
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Holders being asked now.
    pub fn asking(&self) -> usize {
        self.holders
            .values()
            .filter(|h| matches!(h, Holder::Asked { .. }))
            .count()
    }

    /// Asks that got no answer in time free their slots; holders tried
    /// long enough ago may be asked again.
    pub fn handle_timeout(&mut self, now: Duration) {
        let retry_at = Some(now.saturating_add(self.ask_timeout));
        for (peer, h) in self.holders.iter_mut() {
            match h {
                Holder::Asked { deadline } if *deadline <= now => {
                    *h = Holder::Tried { retry_at };
                }
                Holder::Tried { retry_at: Some(at) } if *at <= now => {
                    *h = Holder::Fresh;
                    self.queue.push_back(peer.clone());
                }
                _ => {}
            }
        }
    }

    /// The earliest deadline of an ask or retry.
    pub fn poll_timeout(&self) -> Option<Duration> {
        self.holders
            .values()
            .filter_map(|h| match h {
                Holder::Asked { deadline } => Some(*deadline),
                Holder::Tried { retry_at } => *retry_at,
                _ => None,
            })
            .min()
    }

    /// The next thing to do; asks made now are due at `now + timeout`.
    pub fn poll_action(&mut self, now: Duration) -> Option<FetchAction<P>> {
        if let Some(action) = self.actions.pop_front() {
            return Some(action);
        }
        if self.done || self.asking() >= self.max_parallel {
            return None;
        }
        while let Some(peer) = self.queue.pop_front() {
            if let Some(h @ Holder::Fresh) = self.holders.get_mut(&peer) {
                *h = Holder::Asked {
                    deadline: now.saturating_add(self.ask_timeout),
                };
                return Some(FetchAction::Ask(peer));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn manifest() -> (Manifest, Vec<u8>) {
        let m = Manifest::new(
            "f.bin".into(),
            String::new(),
            3,
            16 * 1024,
            vec![crate::hash_chunk(b"abc")],
        )
        .expect("valid");
        let bytes = m.encode();
        (m, bytes)
    }

    fn actions(f: &mut ManifestFetch<u32>, now: Duration) -> Vec<FetchAction<u32>> {
        std::iter::from_fn(|| f.poll_action(now)).collect()
    }

    #[test]
    fn asks_several_holders_at_once_but_no_more_than_the_bound() {
        let (m, _) = manifest();
        let mut f = ManifestFetch::with_limits(m.share_id(), 2, 8 * S);
        for p in 1..=5 {
            f.holder_joined(p);
        }
        assert_eq!(
            actions(&mut f, S),
            [FetchAction::Ask(1), FetchAction::Ask(2)]
        );
        assert_eq!(f.poll_timeout(), Some(9 * S));
    }

    #[test]
    fn a_silent_holder_does_not_stall_the_fetch() {
        let (m, bytes) = manifest();
        let mut f = ManifestFetch::with_limits(m.share_id(), 1, 8 * S);
        f.holder_joined(1); // silent
        assert_eq!(actions(&mut f, S), [FetchAction::Ask(1)]);
        f.holder_joined(2); // honest, comes later
        assert!(actions(&mut f, 2 * S).is_empty());
        f.handle_timeout(8 * S);
        assert!(actions(&mut f, 8 * S).is_empty(), "not yet due");
        f.handle_timeout(9 * S);
        assert_eq!(actions(&mut f, 9 * S), [FetchAction::Ask(2)]);
        assert_eq!(f.manifest_received(&2, &bytes), Ok(m.clone()));
        assert!(f.is_done());
        assert!(actions(&mut f, 10 * S).is_empty());
        // A silent holder is asked again after a new bitfield, or one
        // timeout after its ask timed out: one that was silent at first
        // and answers later still ends the fetch.
        let mut g = ManifestFetch::<u32>::with_limits(m.share_id(), 1, S);
        g.holder_joined(1);
        assert_eq!(actions(&mut g, S), [FetchAction::Ask(1)]);
        g.handle_timeout(2 * S);
        assert!(actions(&mut g, 2 * S).is_empty());
        g.holder_joined(1);
        assert_eq!(actions(&mut g, 2 * S), [FetchAction::Ask(1)]);
        g.handle_timeout(3 * S);
        assert_eq!(g.poll_timeout(), Some(4 * S));
        g.handle_timeout(4 * S);
        assert_eq!(actions(&mut g, 4 * S), [FetchAction::Ask(1)]);
        assert_eq!(g.manifest_received(&1, &bytes), Ok(m.clone()));
    }

    #[test]
    fn a_wrong_manifest_refuses_its_sender_and_frees_the_slot() {
        let (m, bytes) = manifest();
        let other = Manifest::new(
            "decoy".into(),
            String::new(),
            3,
            16 * 1024,
            vec![crate::hash_chunk(b"xyz")],
        )
        .expect("valid");
        let mut f = ManifestFetch::with_limits(m.share_id(), 1, 8 * S);
        f.holder_joined(1);
        f.holder_joined(2);
        assert_eq!(actions(&mut f, S), [FetchAction::Ask(1)]);
        assert!(matches!(
            f.manifest_received(&1, &other.encode()),
            Err(FetchError::Mismatch(_))
        ));
        assert_eq!(
            actions(&mut f, S),
            [FetchAction::Refuse(1), FetchAction::Ask(2)]
        );
        // A refused holder is not asked again, even with a new bitfield,
        // and a manifest it sends unasked is not taken.
        f.holder_joined(1);
        assert_eq!(f.manifest_received(&1, &bytes), Err(FetchError::Unasked));
        assert_eq!(f.manifest_received(&2, &bytes), Ok(m));
    }

    #[test]
    fn unknown_and_leaving_free_the_slot() {
        let (m, _) = manifest();
        let mut f = ManifestFetch::with_limits(m.share_id(), 1, 8 * S);
        for p in 1..=3 {
            f.holder_joined(p);
        }
        assert_eq!(actions(&mut f, S), [FetchAction::Ask(1)]);
        f.unknown(&1, S);
        assert_eq!(actions(&mut f, S), [FetchAction::Ask(2)]);
        f.holder_left(&2);
        assert_eq!(actions(&mut f, S), [FetchAction::Ask(3)]);
        f.unknown(&3, S);
        assert!(actions(&mut f, S).is_empty());
        // Holder 1 got the manifest since: its new bitfield makes it askable.
        f.holder_joined(1);
        assert_eq!(actions(&mut f, S), [FetchAction::Ask(1)]);
    }
}
