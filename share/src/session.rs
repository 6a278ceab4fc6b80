//! The rules of one `/shoal/blocks/2.0.0` session, sans-IO.
//!
//! A [`Session`] is fed the bytes its stream delivers and a `now`, and hands
//! back the handshake messages to send ([`poll_transmit`](Session::poll_transmit)),
//! what happened ([`poll_event`](Session::poll_event)) and when it next needs
//! the clock ([`poll_timeout`](Session::poll_timeout)). The driver owns the
//! stream, the shares and the download; this decides what is allowed:
//!
//! - **Handshake** ([`crate::handshake`]): the opener sends `Hello`; the
//!   acceptor gets [`Event::Hello`] and calls [`answer`](Session::answer)
//!   with the keys of the shares it holds, which sends `Welcome` or
//!   `Unknown`; the opener checks the `Welcome`'s proof. Only then is the
//!   session [`Established`](Event::Established) and may either side send a
//!   bitfield. Each side has [`HANDSHAKE_TIMEOUT`] for its part.
//! - **Order**: the first message is a handshake message no larger than a
//!   `Hello` (the reader refuses a larger prefix before buffering it); a
//!   second `Hello`/`Welcome`, or any other message before the handshake is
//!   done, ends the session.
//! - **Manifest once**: after the driver has answered `GetManifest` with the
//!   manifest ([`manifest_sent`](Session::manifest_sent)), another
//!   `GetManifest` ends the session: a peer has no use for a second copy,
//!   and each costs up to 8 MiB of sending.
//!
//! Every way a session ends is a [`CloseReason`]; once closed, input is
//! ignored.

use std::collections::VecDeque;
use std::time::Duration;

use crate::handshake::{find_share, Ends, Nonce, ShareKey};
use crate::limits::{HANDSHAKE_TIMEOUT, MAX_HELLO_LEN, MAX_MANIFESTS_PER_SESSION, MAX_WELCOME_LEN};
use crate::manifest::ShareId;
use crate::wire::{Message, MessageReader, WireError};

/// Which side of the stream this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Opened the stream, knows the share, speaks first.
    Opener,
    /// Accepted the stream; learns the share from the opener's proof.
    Acceptor,
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CloseReason {
    #[error("bad bytes: {0}")]
    Wire(#[from] WireError),
    #[error("the handshake did not finish in time")]
    HandshakeTimeout,
    /// Acceptor: the opener's proof matches none of our shares. Opener: the
    /// acceptor does not hold the share.
    #[error("the other peer does not know this share")]
    UnknownShare,
    /// Opener: the acceptor's `Welcome` did not prove the share.
    #[error("the other peer's proof is wrong")]
    BadProof,
    #[error("{got} is not allowed {when}")]
    Unexpected {
        got: MessageKind,
        when: &'static str,
    },
    #[error("the manifest was asked for again after it was sent")]
    ManifestAskedAgain,
}

/// A message's type, for errors (no payload).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    Hello,
    Welcome,
    Bitfield,
    Unknown,
    GetManifest,
    Manifest,
    Have,
    Request,
    Chunk,
    Reject,
    Cancel,
}

impl MessageKind {
    pub fn of(message: &Message) -> Self {
        match message {
            Message::Hello { .. } => Self::Hello,
            Message::Welcome(_) => Self::Welcome,
            Message::Bitfield(_) => Self::Bitfield,
            Message::Unknown => Self::Unknown,
            Message::GetManifest => Self::GetManifest,
            Message::Manifest(_) => Self::Manifest,
            Message::Have(_) => Self::Have,
            Message::Request(_) => Self::Request,
            Message::Chunk { .. } => Self::Chunk,
            Message::Reject(_) => Self::Reject,
            Message::Cancel(_) => Self::Cancel,
        }
    }
}

impl std::fmt::Display for MessageKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// What the driver hears from a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Acceptor: a `Hello` arrived; call [`Session::answer`].
    Hello,
    /// Both sides proved the share: send the bitfield now.
    Established { share: ShareId },
    /// A message of the established session (never `Hello`/`Welcome`).
    Received(Message),
    /// The session is over; close the stream after sending what
    /// [`Session::poll_transmit`] still gives.
    Closed(CloseReason),
}

#[derive(Debug)]
enum State {
    /// Acceptor: waiting for `Hello`.
    AwaitHello,
    /// Acceptor: got `Hello`, the driver has to [`Session::answer`].
    AwaitAnswer {
        nonce: Nonce,
        proof: crate::handshake::Proof,
    },
    /// Opener: sent `Hello`, waiting for `Welcome`.
    AwaitWelcome,
    Established,
    Closed,
}

/// One session's rules (module docs).
#[derive(Debug)]
pub struct Session {
    role: Role,
    state: State,
    reader: MessageReader,
    opener: Vec<u8>,
    acceptor: Vec<u8>,
    /// The opener's nonce (chosen, or read from `Hello`).
    nonce: Option<Nonce>,
    key: Option<ShareKey>,
    deadline: Option<Duration>,
    manifests_sent: u32,
    transmit: VecDeque<Message>,
    events: VecDeque<Event>,
}

impl Session {
    /// Opens a session about `key`'s share: queues `Hello`. `local` and
    /// `remote` are the PeerIds' bytes as the transport authenticated them;
    /// `nonce` must be fresh and random.
    pub fn open(key: ShareKey, local: &[u8], remote: &[u8], nonce: Nonce, now: Duration) -> Self {
        let proof = key.opener_proof(
            Ends {
                opener: local,
                acceptor: remote,
            },
            &nonce,
        );
        let mut session = Self::new(Role::Opener, local, remote, now);
        session.nonce = Some(nonce);
        session.key = Some(key);
        session.state = State::AwaitWelcome;
        session.transmit.push_back(Message::Hello { nonce, proof });
        session
    }

    /// Accepts a session the remote opened; waits for its `Hello`.
    pub fn accept(local: &[u8], remote: &[u8], now: Duration) -> Self {
        Self::new(Role::Acceptor, remote, local, now)
    }

    fn new(role: Role, opener: &[u8], acceptor: &[u8], now: Duration) -> Self {
        let first_limit = match role {
            Role::Acceptor => MAX_HELLO_LEN,
            Role::Opener => MAX_WELCOME_LEN,
        };
        Self {
            role,
            state: State::AwaitHello,
            reader: MessageReader::with_first_limit(first_limit),
            opener: opener.to_vec(),
            acceptor: acceptor.to_vec(),
            nonce: None,
            key: None,
            deadline: Some(now.saturating_add(HANDSHAKE_TIMEOUT)),
            manifests_sent: 0,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// The share, once the handshake is done.
    pub fn share(&self) -> Option<&ShareId> {
        match self.state {
            State::Established => self.key.as_ref().map(ShareKey::share),
            _ => None,
        }
    }

    pub fn is_established(&self) -> bool {
        matches!(self.state, State::Established)
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    fn ends(&self) -> Ends<'_> {
        Ends {
            opener: &self.opener,
            acceptor: &self.acceptor,
        }
    }

    /// Bytes the stream delivered.
    pub fn handle_input(&mut self, bytes: &[u8]) {
        if self.is_closed() {
            return;
        }
        self.reader.push(bytes);
        while !self.is_closed() {
            match self.reader.next_message() {
                Ok(Some(message)) => self.on_message(message),
                Ok(None) => break,
                Err(error) => self.close(CloseReason::Wire(error)),
            }
        }
    }

    /// Whether the stream ended with part of a message unread.
    pub fn has_partial(&self) -> bool {
        self.reader.has_partial()
    }

    fn on_message(&mut self, message: Message) {
        let kind = MessageKind::of(&message);
        match (&self.state, message) {
            (State::AwaitHello, Message::Hello { nonce, proof }) => {
                self.state = State::AwaitAnswer { nonce, proof };
                self.events.push_back(Event::Hello);
            }
            (State::AwaitHello, _) => self.unexpected(kind, "before Hello"),
            (State::AwaitAnswer { .. }, _) => self.unexpected(kind, "before our answer to Hello"),
            (State::AwaitWelcome, Message::Welcome(proof)) => {
                let (Some(key), Some(nonce)) = (&self.key, &self.nonce) else {
                    return self.close(CloseReason::BadProof);
                };
                if key.acceptor_proof(self.ends(), nonce) == proof {
                    self.establish();
                } else {
                    self.close(CloseReason::BadProof);
                }
            }
            (State::AwaitWelcome, Message::Unknown) => self.close(CloseReason::UnknownShare),
            (State::AwaitWelcome, _) => self.unexpected(kind, "before Welcome"),
            (State::Established, Message::Hello { .. } | Message::Welcome(_)) => {
                self.unexpected(kind, "after the handshake")
            }
            (State::Established, Message::GetManifest)
                if self.manifests_sent >= MAX_MANIFESTS_PER_SESSION =>
            {
                self.close(CloseReason::ManifestAskedAgain)
            }
            (State::Established, message) => self.events.push_back(Event::Received(message)),
            (State::Closed, _) => {}
        }
    }

    fn establish(&mut self) {
        self.state = State::Established;
        self.deadline = None;
        if let Some(key) = &self.key {
            self.events.push_back(Event::Established {
                share: *key.share(),
            });
        }
    }

    fn unexpected(&mut self, got: MessageKind, when: &'static str) {
        self.close(CloseReason::Unexpected { got, when });
    }

    fn close(&mut self, reason: CloseReason) {
        if self.is_closed() {
            return;
        }
        self.state = State::Closed;
        self.deadline = None;
        self.events.push_back(Event::Closed(reason));
    }

    /// Acceptor, after [`Event::Hello`]: `keys` are the shares this node
    /// holds. Queues `Welcome` and establishes the session if the opener's
    /// proof matches one (returned), else queues `Unknown` and closes.
    pub fn answer<'k>(&mut self, keys: impl IntoIterator<Item = &'k ShareKey>) -> Option<ShareId> {
        let State::AwaitAnswer { nonce, proof } = self.state else {
            return None;
        };
        let found = find_share(keys, self.ends(), &nonce, &proof).cloned();
        match found {
            Some(key) => {
                let proof = key.acceptor_proof(self.ends(), &nonce);
                let share = *key.share();
                self.nonce = Some(nonce);
                self.key = Some(key);
                self.transmit.push_back(Message::Welcome(proof));
                self.establish();
                Some(share)
            }
            None => {
                self.transmit.push_back(Message::Unknown);
                self.close(CloseReason::UnknownShare);
                None
            }
        }
    }

    /// Acceptor, between [`Event::Hello`] and [`answer`](Self::answer): what
    /// the opener sent (for logs and tests; it reveals nothing).
    pub fn hello(&self) -> Option<(Nonce, crate::handshake::Proof)> {
        match self.state {
            State::AwaitAnswer { nonce, proof } => Some((nonce, proof)),
            _ => None,
        }
    }

    /// The driver queued the manifest in answer to `GetManifest`.
    pub fn manifest_sent(&mut self) {
        self.manifests_sent = self.manifests_sent.saturating_add(1);
    }

    /// The next handshake message to send.
    pub fn poll_transmit(&mut self) -> Option<Message> {
        self.transmit.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) has work: the
    /// handshake's deadline, while it runs.
    pub fn poll_timeout(&self) -> Option<Duration> {
        self.deadline
    }

    pub fn handle_timeout(&mut self, now: Duration) {
        if self.deadline.is_some_and(|d| d <= now) {
            self.close(CloseReason::HandshakeTimeout);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bitfield::Bitfield;

    const A: &[u8] = b"peer-a";
    const B: &[u8] = b"peer-b";
    const M: &[u8] = b"mallory";
    const T0: Duration = Duration::ZERO;

    fn id(n: u8) -> ShareId {
        ShareId::from_bytes([n; 32])
    }

    fn key(n: u8) -> ShareKey {
        ShareKey::new(&id(n))
    }

    fn nonce(n: u8) -> Nonce {
        Nonce([n; 16])
    }

    /// Everything `from` has to send, as bytes.
    fn wire(from: &mut Session) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(m) = from.poll_transmit() {
            m.encode(&mut out);
        }
        out
    }

    fn events(s: &mut Session) -> Vec<Event> {
        std::iter::from_fn(|| s.poll_event()).collect()
    }

    fn encode(m: &Message) -> Vec<u8> {
        let mut out = Vec::new();
        m.encode(&mut out);
        out
    }

    #[test]
    fn both_sides_prove_the_share_and_then_talk() {
        let mut a = Session::open(key(1), A, B, nonce(9), T0);
        let mut b = Session::accept(B, A, T0);
        let hello = wire(&mut a);
        b.handle_input(&hello);
        assert_eq!(events(&mut b), [Event::Hello]);
        let keys = [key(2), key(1), key(3)];
        assert_eq!(b.answer(&keys), Some(id(1)));
        assert_eq!(events(&mut b), [Event::Established { share: id(1) }]);
        assert!(b.poll_timeout().is_none());
        let mut answer = wire(&mut b);
        Message::Bitfield(Bitfield::full(3)).encode(&mut answer);
        a.handle_input(&answer);
        assert_eq!(
            events(&mut a),
            [
                Event::Established { share: id(1) },
                Event::Received(Message::Bitfield(Bitfield::full(3)))
            ]
        );
        assert_eq!(a.share(), Some(&id(1)));
        // The id itself never crossed the wire, either way.
        for bytes in [&hello, &answer] {
            assert!(!bytes.windows(32).any(|w| w == id(1).as_bytes()));
        }
    }

    #[test]
    fn a_stranger_without_the_id_gets_unknown_and_nothing_else() {
        // Mallory guesses a share; B holds another.
        let mut m = Session::open(key(7), M, B, nonce(1), T0);
        let mut b = Session::accept(B, M, T0);
        b.handle_input(&wire(&mut m));
        assert_eq!(events(&mut b), [Event::Hello]);
        assert_eq!(b.answer(&[key(1)]), None);
        let answer = wire(&mut b);
        assert_eq!(answer, encode(&Message::Unknown));
        assert_eq!(events(&mut b), [Event::Closed(CloseReason::UnknownShare)]);
        m.handle_input(&answer);
        assert_eq!(events(&mut m), [Event::Closed(CloseReason::UnknownShare)]);
        assert_eq!(m.share(), None);
    }

    #[test]
    fn a_hello_replayed_to_another_peer_is_refused() {
        // A opens to Mallory, who forwards A's hello to B as itself.
        let mut a = Session::open(key(1), A, M, nonce(4), T0);
        let hello = wire(&mut a);
        let mut b = Session::accept(B, M, T0);
        b.handle_input(&hello);
        assert_eq!(events(&mut b), [Event::Hello]);
        assert_eq!(b.answer(&[key(1)]), None);
        assert_eq!(wire(&mut b), encode(&Message::Unknown));
    }

    #[test]
    fn a_wrong_welcome_refuses_the_session_before_any_bitfield() {
        // Mallory does not know the share but answers as if it did, with a
        // guessed proof, a proof for the wrong direction, or a replayed one.
        let forged = [
            crate::handshake::Proof::from_bytes([0; 32]),
            key(1).opener_proof(
                Ends {
                    opener: A,
                    acceptor: M,
                },
                &nonce(3),
            ),
            key(1).acceptor_proof(
                Ends {
                    opener: A,
                    acceptor: B,
                },
                &nonce(3),
            ),
            key(1).acceptor_proof(
                Ends {
                    opener: A,
                    acceptor: M,
                },
                &nonce(4),
            ),
        ];
        for proof in forged {
            let mut a = Session::open(key(1), A, M, nonce(3), T0);
            let _ = wire(&mut a);
            let mut bytes = encode(&Message::Welcome(proof));
            Message::Bitfield(Bitfield::full(3)).encode(&mut bytes);
            a.handle_input(&bytes);
            assert_eq!(events(&mut a), [Event::Closed(CloseReason::BadProof)]);
            assert!(a.share().is_none());
            assert!(a.poll_transmit().is_none());
        }
    }

    #[test]
    fn first_message_larger_than_a_hello_is_refused_at_its_prefix() {
        let mut b = Session::accept(B, A, T0);
        let big = Message::Bitfield(Bitfield::full(10_000));
        b.handle_input(&encode(&big)[..4]);
        assert!(matches!(
            events(&mut b)[..],
            [Event::Closed(CloseReason::Wire(WireError::Prefix(
                shoal_proto::prefixed::PrefixError::TooLong { .. }
            )))]
        ));
        // And the opener's first answer may be no larger than a Welcome.
        let mut a = Session::open(key(1), A, B, nonce(1), T0);
        a.handle_input(&encode(&Message::Manifest(vec![0; 100]))[..3]);
        assert!(matches!(
            events(&mut a)[..],
            [Event::Closed(CloseReason::Wire(WireError::Prefix(
                shoal_proto::prefixed::PrefixError::TooLong { .. }
            )))]
        ));
    }

    #[test]
    fn messages_out_of_order_end_the_session() {
        let cases: Vec<(Role, Vec<Message>, MessageKind)> = vec![
            (
                Role::Acceptor,
                vec![Message::GetManifest],
                MessageKind::GetManifest,
            ),
            (
                Role::Acceptor,
                vec![Message::Request(0)],
                MessageKind::Request,
            ),
            (
                Role::Opener,
                vec![Message::Bitfield(Bitfield::new(1))],
                MessageKind::Bitfield,
            ),
            (Role::Opener, vec![Message::Have(1)], MessageKind::Have),
        ];
        for (role, messages, got) in cases {
            let mut s = match role {
                Role::Acceptor => Session::accept(B, A, T0),
                Role::Opener => Session::open(key(1), A, B, nonce(1), T0),
            };
            let _ = wire(&mut s);
            for m in &messages {
                s.handle_input(&encode(m));
            }
            let ev = events(&mut s);
            assert!(
                matches!(&ev[..], [Event::Closed(CloseReason::Unexpected { got: g, .. })] if *g == got),
                "{role:?} {messages:?}: {ev:?}"
            );
        }
        // A second Hello after the handshake.
        let (mut a, mut b) = established();
        let _ = &mut a;
        let mut hello = Session::open(key(1), A, B, nonce(2), T0);
        b.handle_input(&wire(&mut hello));
        assert!(matches!(
            events(&mut b)[..],
            [Event::Closed(CloseReason::Unexpected {
                got: MessageKind::Hello,
                ..
            })]
        ));
    }

    fn established() -> (Session, Session) {
        let mut a = Session::open(key(1), A, B, nonce(9), T0);
        let mut b = Session::accept(B, A, T0);
        b.handle_input(&wire(&mut a));
        b.answer(&[key(1)]);
        a.handle_input(&wire(&mut b));
        let _ = events(&mut a);
        let _ = events(&mut b);
        (a, b)
    }

    #[test]
    fn the_manifest_is_answered_once_per_session() {
        let (_, mut b) = established();
        b.handle_input(&encode(&Message::GetManifest));
        assert_eq!(events(&mut b), [Event::Received(Message::GetManifest)]);
        // Before any manifest was sent (we had none), asking again is fine.
        b.handle_input(&encode(&Message::GetManifest));
        assert_eq!(events(&mut b), [Event::Received(Message::GetManifest)]);
        b.manifest_sent();
        // A flood after that ends the session at the first extra ask.
        let mut flood = Vec::new();
        for _ in 0..10_000 {
            Message::GetManifest.encode(&mut flood);
        }
        b.handle_input(&flood);
        assert_eq!(
            events(&mut b),
            [Event::Closed(CloseReason::ManifestAskedAgain)]
        );
        assert!(b.is_closed());
    }

    #[test]
    fn a_silent_peer_times_out_the_handshake() {
        let mut b = Session::accept(B, A, Duration::from_secs(5));
        assert_eq!(
            b.poll_timeout(),
            Some(Duration::from_secs(5) + HANDSHAKE_TIMEOUT)
        );
        b.handle_timeout(Duration::from_secs(14));
        assert!(events(&mut b).is_empty());
        b.handle_timeout(Duration::from_secs(15));
        assert_eq!(
            events(&mut b),
            [Event::Closed(CloseReason::HandshakeTimeout)]
        );
        let mut a = Session::open(key(1), A, B, nonce(1), T0);
        a.handle_timeout(HANDSHAKE_TIMEOUT);
        assert_eq!(
            events(&mut a),
            [Event::Closed(CloseReason::HandshakeTimeout)]
        );
        // Established sessions have no deadline.
        let (a, b) = established();
        assert!(a.poll_timeout().is_none() && b.poll_timeout().is_none());
    }

    #[test]
    fn input_after_close_is_ignored() {
        let mut b = Session::accept(B, A, T0);
        b.handle_input(&[
            0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02,
        ]);
        assert_eq!(events(&mut b).len(), 1);
        b.handle_input(&encode(&Message::GetManifest));
        assert!(events(&mut b).is_empty());
    }
}
