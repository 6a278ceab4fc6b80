//! Proving knowledge of a share without revealing it.
//!
//! The share id is the capability: whoever knows it may fetch the file. So
//! it never goes on the wire. Instead, the peer that opens a session sends a
//! fresh random [`Nonce`] and a [`Proof`]: a BLAKE3 keyed hash whose key is
//! derived from the share id, over a label, both PeerIds (as the transport
//! authenticated them) and the nonce. The acceptor computes the same for
//! each share it holds and answers with its own proof, under a different
//! label, bound to the same PeerIds and nonce — or says `Unknown`.
//!
//! ```text
//! key            = BLAKE3-derive_key(KEY_CONTEXT, share id)
//! opener proof   = BLAKE3-keyed(key, "opener"    ‖ id(opener) ‖ id(acceptor) ‖ nonce)
//! acceptor proof = BLAKE3-keyed(key, "acceptor"  ‖ id(opener) ‖ id(acceptor) ‖ nonce)
//! id(p)          = u16 big-endian length ‖ the PeerId's bytes
//! ```
//!
//! What each side learns:
//! - A peer that does not know the share learns a random-looking nonce and
//!   proof: nothing about the id, and nothing it can reuse. Replayed to a
//!   third peer, the proof is checked against the replayer's own PeerId
//!   (Noise authenticates it) and fails. A fresh nonce per session keeps two
//!   sessions about one share unlinkable.
//! - A peer that knows the share learns that the other knows it too.
//! - An opener that meets a peer without the share learns `Unknown` and
//!   closes; an answer with a wrong proof (a peer pretending to hold it)
//!   ends the session before either side sends a bitfield.
//!
//! Comparisons of proofs run in constant time ([`blake3::Hash`]'s `==`).

use crate::manifest::ShareId;

/// Bytes of a [`Nonce`].
pub const NONCE_LEN: usize = 16;
/// Bytes of a [`Proof`].
pub const PROOF_LEN: usize = 32;

/// The `derive_key` context: globally unique, fixed for this protocol.
pub const KEY_CONTEXT: &str = "shoal 2026-11-30 /shoal/blocks/2.0.0 share handshake key";

const OPENER_LABEL: &[u8] = b"opener";
const ACCEPTOR_LABEL: &[u8] = b"acceptor";

/// The opener's fresh random value for one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nonce(pub [u8; NONCE_LEN]);

/// A keyed hash proving knowledge of a share id (module docs).
#[derive(Clone, Copy)]
pub struct Proof(blake3::Hash);

impl Proof {
    pub fn from_bytes(bytes: [u8; PROOF_LEN]) -> Self {
        Self(blake3::Hash::from_bytes(bytes))
    }

    pub fn as_bytes(&self) -> &[u8; PROOF_LEN] {
        self.0.as_bytes()
    }
}

/// Constant time.
impl PartialEq for Proof {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}
impl Eq for Proof {}

impl std::fmt::Debug for Proof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Proof({})", self.0.to_hex())
    }
}

/// The two ends of a session, as the transport authenticated them: the
/// PeerIds' byte forms. Both sides must agree on who opened.
#[derive(Debug, Clone, Copy)]
pub struct Ends<'a> {
    pub opener: &'a [u8],
    pub acceptor: &'a [u8],
}

/// The handshake key of one share (never the id itself on the wire).
#[derive(Clone)]
pub struct ShareKey {
    share: ShareId,
    key: [u8; 32],
}

impl std::fmt::Debug for ShareKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShareKey")
            .field("share", &self.share)
            .finish_non_exhaustive()
    }
}

impl ShareKey {
    pub fn new(share: &ShareId) -> Self {
        Self {
            share: *share,
            key: blake3::derive_key(KEY_CONTEXT, share.as_bytes()),
        }
    }

    pub fn share(&self) -> &ShareId {
        &self.share
    }

    /// What the opener sends in `Hello`.
    pub fn opener_proof(&self, ends: Ends<'_>, nonce: &Nonce) -> Proof {
        self.proof(OPENER_LABEL, ends, nonce)
    }

    /// What the acceptor sends in `Welcome`.
    pub fn acceptor_proof(&self, ends: Ends<'_>, nonce: &Nonce) -> Proof {
        self.proof(ACCEPTOR_LABEL, ends, nonce)
    }

    fn proof(&self, label: &[u8], ends: Ends<'_>, nonce: &Nonce) -> Proof {
        let mut h = blake3::Hasher::new_keyed(&self.key);
        h.update(label);
        for id in [ends.opener, ends.acceptor] {
            // PeerIds are short multihashes; a longer one is cut to fit,
            // which changes the proof, so it only fails to match.
            let len = u16::try_from(id.len()).unwrap_or(u16::MAX);
            h.update(&len.to_be_bytes());
            h.update(&id[..usize::from(len)]);
        }
        h.update(&nonce.0);
        Proof(h.finalize())
    }
}

/// The acceptor's side: which of `keys` the opener's `Hello` proves, if any.
/// Checks every key (no early exit on a match), so the time taken does not
/// say which share matched.
pub fn find_share<'k>(
    keys: impl IntoIterator<Item = &'k ShareKey>,
    ends: Ends<'_>,
    nonce: &Nonce,
    proof: &Proof,
) -> Option<&'k ShareKey> {
    let mut found = None;
    for key in keys {
        if key.opener_proof(ends, nonce) == *proof && found.is_none() {
            found = Some(key);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &[u8] = b"\x00\x24peer-a-0123456789";
    const B: &[u8] = b"\x00\x24peer-b-0123456789";
    const M: &[u8] = b"\x00\x24mallory-012345678";

    fn share(n: u8) -> ShareId {
        ShareId::from_bytes([n; 32])
    }

    fn ends<'a>(opener: &'a [u8], acceptor: &'a [u8]) -> Ends<'a> {
        Ends { opener, acceptor }
    }

    #[test]
    fn vector_is_stable() {
        // Pins the construction: a change here is a protocol change.
        let key = ShareKey::new(&share(0x11));
        let nonce = Nonce([0x22; NONCE_LEN]);
        let p = key.opener_proof(ends(A, B), &nonce);
        let again = ShareKey::new(&share(0x11)).opener_proof(ends(A, B), &nonce);
        assert_eq!(p, again);
        let mut h = blake3::Hasher::new_keyed(&blake3::derive_key(KEY_CONTEXT, &[0x11; 32]));
        h.update(b"opener");
        h.update(&(A.len() as u16).to_be_bytes());
        h.update(A);
        h.update(&(B.len() as u16).to_be_bytes());
        h.update(B);
        h.update(&[0x22; NONCE_LEN]);
        assert_eq!(p.as_bytes(), h.finalize().as_bytes());
    }

    #[test]
    fn acceptor_finds_the_share_the_opener_knows() {
        let keys: Vec<ShareKey> = (1..=5).map(|n| ShareKey::new(&share(n))).collect();
        let nonce = Nonce([7; NONCE_LEN]);
        let proof = ShareKey::new(&share(3)).opener_proof(ends(A, B), &nonce);
        let found = find_share(&keys, ends(A, B), &nonce, &proof).expect("found");
        assert_eq!(found.share(), &share(3));
    }

    #[test]
    fn a_stranger_without_the_id_gets_nothing() {
        let keys = [ShareKey::new(&share(1))];
        let nonce = Nonce([0; NONCE_LEN]);
        // Any proof made without the id: a guess, another share's, the id itself.
        for proof in [
            Proof::from_bytes([0; 32]),
            ShareKey::new(&share(2)).opener_proof(ends(M, B), &nonce),
            Proof::from_bytes(*share(1).as_bytes()),
        ] {
            assert!(find_share(&keys, ends(M, B), &nonce, &proof).is_none());
        }
    }

    #[test]
    fn the_proof_does_not_contain_the_id() {
        let id = share(9);
        let key = ShareKey::new(&id);
        let nonce = Nonce([1; NONCE_LEN]);
        for p in [
            key.opener_proof(ends(A, M), &nonce),
            key.acceptor_proof(ends(A, M), &nonce),
        ] {
            assert_ne!(p.as_bytes(), id.as_bytes());
            assert!(!p.as_bytes().windows(8).any(|w| w == &id.as_bytes()[..8]));
        }
    }

    #[test]
    fn a_replay_to_a_third_peer_fails() {
        // A opens to Mallory; Mallory forwards A's hello to B, as itself.
        let keys = [ShareKey::new(&share(1))];
        let nonce = Nonce([5; NONCE_LEN]);
        let to_mallory = keys[0].opener_proof(ends(A, M), &nonce);
        assert!(find_share(&keys, ends(M, B), &nonce, &to_mallory).is_none());
        // Nor can Mallory pose as A: the transport names Mallory.
        assert!(find_share(&keys, ends(A, B), &nonce, &to_mallory).is_none());
    }

    #[test]
    fn proofs_are_bound_to_role_nonce_and_both_ends() {
        let key = ShareKey::new(&share(1));
        let n1 = Nonce([1; NONCE_LEN]);
        let n2 = Nonce([2; NONCE_LEN]);
        let base = key.opener_proof(ends(A, B), &n1);
        assert_ne!(base, key.acceptor_proof(ends(A, B), &n1), "role");
        assert_ne!(base, key.opener_proof(ends(B, A), &n1), "direction");
        assert_ne!(base, key.opener_proof(ends(A, M), &n1), "acceptor");
        assert_ne!(base, key.opener_proof(ends(M, B), &n1), "opener");
        assert_ne!(base, key.opener_proof(ends(A, B), &n2), "nonce");
        // Length prefixes: moving a byte between the ids changes the proof.
        assert_ne!(
            key.opener_proof(ends(b"ab", b"c"), &n1),
            key.opener_proof(ends(b"a", b"bc"), &n1)
        );
    }
}
