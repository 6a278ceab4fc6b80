//! The rules of a `/shoal/blocks` session ([`Session`]) fed untrusted bytes,
//! as acceptor or opener: the handshake establishes only on a valid proof,
//! nothing but handshake messages before it, nothing after the close, the
//! manifest answered once, and the handshake deadline holds.

use std::time::Duration;

use shoal_share::handshake::{Ends, Nonce, ShareKey, NONCE_LEN};
use shoal_share::limits::HANDSHAKE_TIMEOUT;
use shoal_share::session::{CloseReason, Event, Role, Session};
use shoal_share::{Message, ShareId};

use crate::{pieces, split_seed};

/// The local and remote PeerIds' bytes in every run.
pub const LOCAL: &[u8] = b"\x00\x24fuzz-local-peer";
pub const REMOTE: &[u8] = b"\x00\x24fuzz-remote-peer";
/// The opener's nonce when the local side opens.
pub const NONCE: Nonce = Nonce([0x5a; NONCE_LEN]);

/// The shares the local side holds; the first is the one it opens about.
pub fn shares() -> [ShareId; 2] {
    [ShareId::from_bytes([1; 32]), ShareId::from_bytes([2; 32])]
}

/// Seed for a run: `role` 0 accepts, 1 opens.
pub fn input(seed: u8, role: u8, stream: &[u8]) -> Vec<u8> {
    let mut out = vec![seed, role];
    out.extend_from_slice(stream);
    out
}

pub fn check(data: &[u8]) {
    let (seed, rest) = split_seed(data);
    let (role, stream) = split_seed(rest);
    let keys: Vec<ShareKey> = shares().iter().map(ShareKey::new).collect();
    let role = if role & 1 == 0 {
        Role::Acceptor
    } else {
        Role::Opener
    };
    let mut session = match role {
        Role::Acceptor => Session::accept(LOCAL, REMOTE, Duration::ZERO),
        Role::Opener => Session::open(keys[0].clone(), LOCAL, REMOTE, NONCE, Duration::ZERO),
    };
    let ends = match role {
        Role::Acceptor => Ends {
            opener: REMOTE,
            acceptor: LOCAL,
        },
        Role::Opener => Ends {
            opener: LOCAL,
            acceptor: REMOTE,
        },
    };
    if role == Role::Opener {
        let hello = session.poll_transmit();
        let want = keys[0].opener_proof(ends, &NONCE);
        assert_eq!(
            hello,
            Some(Message::Hello {
                nonce: NONCE,
                proof: want
            })
        );
    }
    assert_eq!(session.poll_timeout(), Some(HANDSHAKE_TIMEOUT));

    let mut established = false;
    let mut closed = false;
    // Whether the manifest had been sent before the current input: only a
    // GetManifest read after that is a second ask (the driver answers, and
    // calls `manifest_sent`, after the input that asked).
    let mut manifest_sent = false;
    for piece in pieces(seed, stream) {
        let sent_before = manifest_sent;
        session.handle_input(piece);
        while let Some(event) = session.poll_event() {
            assert!(!closed, "{event:?} after the close");
            match event {
                Event::Hello => {
                    assert_eq!(role, Role::Acceptor);
                    assert!(!established);
                    if session.is_closed() {
                        // Something followed the Hello before our answer.
                        assert_eq!(session.hello(), None);
                        assert_eq!(session.answer(&keys), None);
                        continue;
                    }
                    let (nonce, proof) = session.hello().expect("the Hello");
                    let knows = keys
                        .iter()
                        .find(|k| k.opener_proof(ends, &nonce) == proof)
                        .map(|k| *k.share());
                    assert_eq!(session.answer(&keys), knows);
                    match (knows, session.poll_transmit()) {
                        (Some(share), Some(Message::Welcome(ours))) => {
                            let key = ShareKey::new(&share);
                            assert_eq!(ours, key.acceptor_proof(ends, &nonce));
                        }
                        (None, Some(Message::Unknown)) => {}
                        other => panic!("answered {other:?}"),
                    }
                }
                Event::Established { share } => {
                    assert!(!established, "established twice");
                    established = true;
                    if !session.is_closed() {
                        assert_eq!(session.share(), Some(&share));
                        assert!(session.is_established());
                    }
                    assert_eq!(session.poll_timeout(), None);
                    if role == Role::Opener {
                        assert_eq!(share, shares()[0]);
                    }
                }
                Event::Received(message) => {
                    assert!(established, "{message:?} before the handshake");
                    assert!(!matches!(
                        message,
                        Message::Hello { .. } | Message::Welcome(_)
                    ));
                    if message == Message::GetManifest {
                        assert!(!sent_before, "GetManifest after the manifest was sent");
                        manifest_sent = true;
                        session.manifest_sent();
                    }
                }
                Event::Closed(reason) => {
                    closed = true;
                    assert!(session.is_closed());
                    if matches!(reason, CloseReason::ManifestAskedAgain) {
                        assert!(sent_before, "closed for a manifest never sent");
                    }
                    if matches!(reason, CloseReason::BadProof) {
                        assert_eq!(role, Role::Opener);
                    }
                }
            }
        }
    }
    if !closed && !established {
        session.handle_timeout(HANDSHAKE_TIMEOUT);
        assert_eq!(
            session.poll_event(),
            Some(Event::Closed(CloseReason::HandshakeTimeout))
        );
    }
    assert_eq!(session.poll_event(), None);
}
