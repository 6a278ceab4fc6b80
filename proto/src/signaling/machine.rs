//! The signaling state machine: one [`Signaling`] per connection attempt, for
//! either role.
//!
//! The driver feeds it local events (`local_offer`, `local_answer`,
//! `local_candidate`), remote bytes and EOF from the stream, the peer
//! connection's `connectionState`, and the time; after each input it drains
//! [`Signaling::poll_output`] and carries the outputs out in order. Outputs
//! that touch the `RTCPeerConnection` are async in the browser: the driver must
//! finish one (e.g. `setRemoteDescription`) before starting the next
//! (`addIceCandidate`).
//!
//! Flow, A dialing B (as js-libp2p `@libp2p/webrtc` 6.x runs it):
//! 1. A: `createOffer` → [`Signaling::local_offer`] → `Send(offer)`; the driver
//!    writes it, then calls `setLocalDescription`.
//! 2. B: offer bytes → `SetRemoteOffer`; the driver sets it, runs
//!    `createAnswer` → [`Signaling::local_answer`] → `Send(answer)`, then
//!    `setLocalDescription`.
//! 3. Both: trickled candidates → `Send`; received candidates →
//!    `AddIceCandidate`; until `connectionState` is `connected` → `Connected`.
//!
//! Deliberate choices:
//! - Local candidates that come before our SDP is sent wait for it.
//! - Remote bytes that reach a dialer before its offer is sent wait in the
//!   reader, so an answer can never be handed out before there is an offer.
//! - EOF from the remote is "no more candidates", not an error (js's answerer
//!   half-closes as soon as it is connected, possibly before we are), except
//!   when the remote SDP has not arrived: then the attempt cannot succeed and
//!   fails at once with [`SignalingError::ClosedBeforeSdp`]. Bytes of an
//!   unfinished message at EOF are dropped like js does with read errors.

use std::collections::VecDeque;
use std::time::Duration;

use super::{Message, MessageReader, MessageType, SignalingError};

/// Which side of the offer/answer exchange we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Dials `/webrtc`, opens the signaling stream and sends the offer.
    Dialer,
    /// Accepts the signaling stream and sends the answer.
    Answerer,
}

/// `RTCPeerConnection.connectionState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PcState {
    New,
    Connecting,
    Connected,
    /// Not terminal: ICE may recover.
    Disconnected,
    Failed,
    Closed,
}

/// What the driver must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Bytes to write on the signaling stream.
    Send(Vec<u8>),
    /// Answerer: `setRemoteDescription({type: 'offer', sdp})`, then `createAnswer`.
    SetRemoteOffer(String),
    /// Dialer: `setRemoteDescription({type: 'answer', sdp})`.
    SetRemoteAnswer(String),
    /// `addIceCandidate(JSON.parse(json))`, as received; failures are only
    /// worth a log line (js does the same).
    AddIceCandidate(String),
    /// Done: close the stream gracefully (the dialer after its `init`
    /// channel has closed).
    Connected,
    /// Done: reset the stream and close the `RTCPeerConnection`.
    Failed(SignalingError),
}

/// One signaling attempt.
#[derive(Debug)]
pub struct Signaling {
    role: Role,
    deadline: Duration,
    reader: MessageReader,
    outputs: VecDeque<Output>,
    /// Candidates gathered before our SDP was sent (encoded messages).
    queued_candidates: Vec<Vec<u8>>,
    local_sdp_sent: bool,
    remote_sdp_received: bool,
    remote_eof: bool,
    /// `Connected` or `Failed` was emitted; every input is ignored from now on.
    done: bool,
}

impl Signaling {
    /// Starts an attempt at `now` that fails with [`SignalingError::Timeout`]
    /// at `now + timeout`.
    pub fn new(role: Role, now: Duration, timeout: Duration) -> Self {
        Self {
            role,
            deadline: now.checked_add(timeout).unwrap_or(Duration::MAX),
            reader: MessageReader::new(),
            outputs: VecDeque::new(),
            queued_candidates: Vec::new(),
            local_sdp_sent: false,
            remote_sdp_received: false,
            remote_eof: false,
            done: false,
        }
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// Whether `Connected` or `Failed` has been emitted.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Dialer: `createOffer` resolved. Emits `Send(offer)` (and any queued
    /// candidates); the driver writes it, then calls `setLocalDescription`.
    pub fn local_offer(&mut self, sdp: String) {
        if self.done {
            return;
        }
        if self.role != Role::Dialer || self.local_sdp_sent {
            return self.fail(SignalingError::LocalOutOfOrder("local_offer"));
        }
        self.send_local_sdp(MessageType::SdpOffer, sdp);
        // Anything the answerer sent early can be handled now.
        self.process_remote();
    }

    /// Answerer: `createAnswer` resolved (after `SetRemoteOffer`). Emits
    /// `Send(answer)` and any queued candidates; the driver writes them, then
    /// calls `setLocalDescription`.
    pub fn local_answer(&mut self, sdp: String) {
        if self.done {
            return;
        }
        if self.role != Role::Answerer || self.local_sdp_sent || !self.remote_sdp_received {
            return self.fail(SignalingError::LocalOutOfOrder("local_answer"));
        }
        self.send_local_sdp(MessageType::SdpAnswer, sdp);
    }

    /// `onicecandidate` fired with `JSON.stringify(candidate.toJSON())`, or
    /// `None` at the end of gathering. The end, and empty strings, send
    /// nothing: js reads `data: ""` as a parse error and stops reading.
    pub fn local_candidate(&mut self, candidate_json: Option<String>) {
        let Some(json) = candidate_json else { return };
        if self.done || json.is_empty() {
            return;
        }
        let bytes = Message {
            kind: MessageType::IceCandidate,
            data: Some(json),
        }
        .encode();
        if self.local_sdp_sent {
            self.outputs.push_back(Output::Send(bytes));
        } else {
            self.queued_candidates.push(bytes);
        }
    }

    /// Bytes read from the signaling stream, in any chunking.
    pub fn remote_bytes(&mut self, bytes: &[u8]) {
        if self.done || self.remote_eof {
            return;
        }
        self.reader.push(bytes);
        self.process_remote();
    }

    /// The remote closed its write side of the stream.
    pub fn remote_eof(&mut self) {
        if self.done || self.remote_eof {
            return;
        }
        self.remote_eof = true;
        self.process_remote();
    }

    /// `RTCPeerConnection.connectionState` changed.
    pub fn pc_state(&mut self, state: PcState) {
        if self.done {
            return;
        }
        match state {
            PcState::Connected => {
                self.done = true;
                self.queued_candidates.clear();
                self.outputs.push_back(Output::Connected);
            }
            PcState::Failed => self.fail(SignalingError::PeerConnectionFailed),
            PcState::Closed => self.fail(SignalingError::PeerConnectionClosed),
            PcState::New | PcState::Connecting | PcState::Disconnected => {}
        }
    }

    /// The timer returned by [`poll_timeout`](Self::poll_timeout) fired (or
    /// any other moment: early calls do nothing).
    pub fn handle_timeout(&mut self, now: Duration) {
        if !self.done && now >= self.deadline {
            self.fail(SignalingError::Timeout);
        }
    }

    /// When to call [`handle_timeout`](Self::handle_timeout); `None` once done.
    pub fn poll_timeout(&self) -> Option<Duration> {
        (!self.done).then_some(self.deadline)
    }

    /// The next action for the driver, in order.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    fn send_local_sdp(&mut self, kind: MessageType, sdp: String) {
        self.local_sdp_sent = true;
        self.outputs.push_back(Output::Send(
            Message {
                kind,
                data: Some(sdp),
            }
            .encode(),
        ));
        for bytes in self.queued_candidates.drain(..) {
            self.outputs.push_back(Output::Send(bytes));
        }
    }

    fn process_remote(&mut self) {
        // A dialer has nothing to match an answer against until its offer is out.
        if self.role == Role::Dialer && !self.local_sdp_sent {
            return;
        }
        while !self.done {
            match self.reader.next_message() {
                Ok(Some(message)) => self.on_message(message),
                Ok(None) => break,
                Err(error) => self.fail(error),
            }
        }
        if !self.done && self.remote_eof && !self.remote_sdp_received {
            self.fail(SignalingError::ClosedBeforeSdp);
        }
    }

    fn on_message(&mut self, message: Message) {
        if !self.remote_sdp_received {
            let expected = match self.role {
                Role::Dialer => MessageType::SdpAnswer,
                Role::Answerer => MessageType::SdpOffer,
            };
            if message.kind != expected {
                return self.fail(SignalingError::UnexpectedMessage {
                    expected,
                    received: message.kind,
                });
            }
            let sdp = match message.data {
                Some(sdp) if !sdp.is_empty() => sdp,
                _ => return self.fail(SignalingError::MissingSdp(expected)),
            };
            self.remote_sdp_received = true;
            self.outputs.push_back(match self.role {
                Role::Dialer => Output::SetRemoteAnswer(sdp),
                Role::Answerer => Output::SetRemoteOffer(sdp),
            });
            return;
        }
        if message.kind != MessageType::IceCandidate {
            return self.fail(SignalingError::UnexpectedMessage {
                expected: MessageType::IceCandidate,
                received: message.kind,
            });
        }
        match message.data {
            Some(json) if !is_end_of_candidates(&json) => {
                self.outputs.push_back(Output::AddIceCandidate(json))
            }
            _ => {}
        }
    }

    fn fail(&mut self, error: SignalingError) {
        self.done = true;
        self.queued_candidates.clear();
        self.outputs.push_back(Output::Failed(error));
    }
}

/// js skips candidate data that parses to `null` or `""`; we also skip an
/// empty string, which js would choke on.
fn is_end_of_candidates(json: &str) -> bool {
    // JSON whitespace only: ' ', '\t', '\n', '\r'.
    let trimmed = json.trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r'));
    matches!(trimmed, "" | "null" | "\"\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(10);
    const OFFER: &str = "v=0\r\no=- offer";
    const ANSWER: &str = "v=0\r\no=- answer";

    fn cand(n: u32) -> String {
        format!(
            r#"{{"candidate":"candidate:{n} 1 udp 1 127.0.0.1 {n} typ host","sdpMid":"0","sdpMLineIndex":0}}"#
        )
    }

    fn encoded(kind: MessageType, data: Option<&str>) -> Vec<u8> {
        Message {
            kind,
            data: data.map(str::to_owned),
        }
        .encode()
    }

    fn drain(s: &mut Signaling) -> Vec<Output> {
        std::iter::from_fn(|| s.poll_output()).collect()
    }

    /// Decodes every `Send` back into messages.
    fn sent(outputs: &[Output]) -> Vec<Message> {
        let mut reader = MessageReader::new();
        for output in outputs {
            if let Output::Send(bytes) = output {
                reader.push(bytes);
            }
        }
        std::iter::from_fn(|| reader.next_message().expect("valid")).collect()
    }

    fn dialer_after_offer() -> Signaling {
        let mut d = Signaling::new(Role::Dialer, Duration::ZERO, TIMEOUT);
        d.local_offer(OFFER.into());
        drain(&mut d);
        d
    }

    #[test]
    fn full_exchange_reaches_connected() {
        let mut dialer = Signaling::new(Role::Dialer, Duration::ZERO, TIMEOUT);
        let mut answerer = Signaling::new(Role::Answerer, Duration::ZERO, TIMEOUT);

        dialer.local_offer(OFFER.into());
        let out = drain(&mut dialer);
        assert_eq!(
            out,
            [Output::Send(encoded(MessageType::SdpOffer, Some(OFFER)))]
        );
        dialer.local_candidate(Some(cand(1)));
        let mut to_answerer: Vec<u8> = out
            .iter()
            .chain(&drain(&mut dialer))
            .flat_map(|o| match o {
                Output::Send(b) => b.clone(),
                other => panic!("unexpected {other:?}"),
            })
            .collect();

        // Deliver byte by byte: the chunking must not matter.
        let mut got = Vec::new();
        for byte in to_answerer.drain(..) {
            answerer.remote_bytes(&[byte]);
            got.extend(drain(&mut answerer));
        }
        assert_eq!(
            got,
            [
                Output::SetRemoteOffer(OFFER.into()),
                Output::AddIceCandidate(cand(1))
            ]
        );

        answerer.local_answer(ANSWER.into());
        answerer.local_candidate(Some(cand(2)));
        answerer.local_candidate(None);
        let out = drain(&mut answerer);
        assert_eq!(
            sent(&out),
            [
                Message {
                    kind: MessageType::SdpAnswer,
                    data: Some(ANSWER.into())
                },
                Message {
                    kind: MessageType::IceCandidate,
                    data: Some(cand(2))
                },
            ]
        );
        for o in &out {
            if let Output::Send(bytes) = o {
                dialer.remote_bytes(bytes);
            }
        }
        assert_eq!(
            drain(&mut dialer),
            [
                Output::SetRemoteAnswer(ANSWER.into()),
                Output::AddIceCandidate(cand(2))
            ]
        );

        // js's answerer half-closes once connected, maybe before we are.
        answerer.pc_state(PcState::Connecting);
        answerer.pc_state(PcState::Connected);
        assert_eq!(drain(&mut answerer), [Output::Connected]);
        dialer.remote_eof();
        dialer.pc_state(PcState::Connecting);
        assert_eq!(drain(&mut dialer), []);
        dialer.pc_state(PcState::Connected);
        assert_eq!(drain(&mut dialer), [Output::Connected]);
        assert!(dialer.is_done() && answerer.is_done());
        assert_eq!(dialer.poll_timeout(), None);

        // Nothing more once done.
        dialer.local_candidate(Some(cand(3)));
        dialer.remote_bytes(&[0xff, 0xff]);
        dialer.handle_timeout(TIMEOUT * 2);
        assert_eq!(drain(&mut dialer), []);
    }

    #[test]
    fn candidates_before_sdp_are_queued() {
        let mut a = Signaling::new(Role::Answerer, Duration::ZERO, TIMEOUT);
        a.local_candidate(Some(cand(1)));
        a.remote_bytes(&encoded(MessageType::SdpOffer, Some(OFFER)));
        a.local_candidate(Some(cand(2)));
        assert_eq!(drain(&mut a), [Output::SetRemoteOffer(OFFER.into())]);
        a.local_answer(ANSWER.into());
        let out = drain(&mut a);
        assert_eq!(
            sent(&out),
            [
                Message {
                    kind: MessageType::SdpAnswer,
                    data: Some(ANSWER.into())
                },
                Message {
                    kind: MessageType::IceCandidate,
                    data: Some(cand(1))
                },
                Message {
                    kind: MessageType::IceCandidate,
                    data: Some(cand(2))
                },
            ]
        );
    }

    #[test]
    fn dialer_holds_remote_bytes_until_its_offer_is_sent() {
        let mut d = Signaling::new(Role::Dialer, Duration::ZERO, TIMEOUT);
        d.remote_bytes(&encoded(MessageType::SdpAnswer, Some(ANSWER)));
        assert_eq!(drain(&mut d), []);
        d.local_offer(OFFER.into());
        let out = drain(&mut d);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1], Output::SetRemoteAnswer(ANSWER.into()));
    }

    #[test]
    fn wrong_first_message_fails() {
        let mut a = Signaling::new(Role::Answerer, Duration::ZERO, TIMEOUT);
        a.remote_bytes(&encoded(MessageType::IceCandidate, Some(&cand(1))));
        assert_eq!(
            drain(&mut a),
            [Output::Failed(SignalingError::UnexpectedMessage {
                expected: MessageType::SdpOffer,
                received: MessageType::IceCandidate,
            })]
        );

        let mut d = dialer_after_offer();
        d.remote_bytes(&encoded(MessageType::SdpOffer, Some(OFFER)));
        assert_eq!(
            drain(&mut d),
            [Output::Failed(SignalingError::UnexpectedMessage {
                expected: MessageType::SdpAnswer,
                received: MessageType::SdpOffer,
            })]
        );
    }

    #[test]
    fn second_sdp_fails() {
        let mut d = dialer_after_offer();
        let mut bytes = encoded(MessageType::SdpAnswer, Some(ANSWER));
        bytes.extend(encoded(MessageType::SdpAnswer, Some(ANSWER)));
        bytes.extend(encoded(MessageType::IceCandidate, Some(&cand(1))));
        d.remote_bytes(&bytes);
        assert_eq!(
            drain(&mut d),
            [
                Output::SetRemoteAnswer(ANSWER.into()),
                Output::Failed(SignalingError::UnexpectedMessage {
                    expected: MessageType::IceCandidate,
                    received: MessageType::SdpAnswer,
                }),
            ]
        );
    }

    #[test]
    fn offer_without_sdp_fails() {
        let mut a = Signaling::new(Role::Answerer, Duration::ZERO, TIMEOUT);
        a.remote_bytes(&encoded(MessageType::SdpOffer, None));
        assert_eq!(
            drain(&mut a),
            [Output::Failed(SignalingError::MissingSdp(
                MessageType::SdpOffer
            ))]
        );
    }

    #[test]
    fn garbage_fails() {
        let mut a = Signaling::new(Role::Answerer, Duration::ZERO, TIMEOUT);
        a.remote_bytes(&[0x02, 0x08, 0x07]);
        assert_eq!(
            drain(&mut a),
            [Output::Failed(SignalingError::UnknownType(7))]
        );

        let mut a = Signaling::new(Role::Answerer, Duration::ZERO, TIMEOUT);
        a.remote_bytes(&[0xff; 16]);
        assert_eq!(
            drain(&mut a),
            [Output::Failed(SignalingError::Prefix(
                crate::prefixed::PrefixError::Invalid
            ))]
        );

        let mut a = Signaling::new(Role::Answerer, Duration::ZERO, TIMEOUT);
        a.remote_bytes(&[0x80, 0x80, 0x08]);
        assert!(matches!(
            drain(&mut a)[..],
            [Output::Failed(SignalingError::Prefix(
                crate::prefixed::PrefixError::TooLong { .. }
            ))]
        ));
    }

    #[test]
    fn unknown_fields_in_a_candidate_are_skipped() {
        let mut d = dialer_after_offer();
        d.remote_bytes(&encoded(MessageType::SdpAnswer, Some(ANSWER)));
        // type=2, unknown field 7 (fixed32), data="{}".
        d.remote_bytes(&[0x0b, 0x08, 0x02, 0x3d, 1, 2, 3, 4, 0x12, 0x02, b'{', b'}']);
        assert_eq!(
            drain(&mut d),
            [
                Output::SetRemoteAnswer(ANSWER.into()),
                Output::AddIceCandidate("{}".into())
            ]
        );
    }

    #[test]
    fn null_and_empty_candidates_are_skipped() {
        let mut d = dialer_after_offer();
        d.remote_bytes(&encoded(MessageType::SdpAnswer, Some(ANSWER)));
        for data in [None, Some("null"), Some(" null\n"), Some("\"\""), Some("")] {
            d.remote_bytes(&encoded(MessageType::IceCandidate, data));
        }
        assert_eq!(drain(&mut d), [Output::SetRemoteAnswer(ANSWER.into())]);
        assert!(!d.is_done());
    }

    #[test]
    fn end_of_gathering_sends_nothing() {
        let mut d = dialer_after_offer();
        d.local_candidate(None);
        d.local_candidate(Some(String::new()));
        assert_eq!(drain(&mut d), []);
    }

    #[test]
    fn timeout_fails_once() {
        let start = Duration::from_secs(100);
        let mut d = Signaling::new(Role::Dialer, start, TIMEOUT);
        assert_eq!(d.poll_timeout(), Some(start + TIMEOUT));
        d.handle_timeout(start + TIMEOUT - Duration::from_millis(1));
        assert_eq!(drain(&mut d), []);
        d.handle_timeout(start + TIMEOUT);
        assert_eq!(drain(&mut d), [Output::Failed(SignalingError::Timeout)]);
        d.handle_timeout(start + TIMEOUT * 2);
        d.pc_state(PcState::Connected);
        assert_eq!(drain(&mut d), []);
        assert_eq!(d.poll_timeout(), None);
    }

    #[test]
    fn huge_timeout_does_not_overflow() {
        let d = Signaling::new(Role::Dialer, Duration::from_secs(1), Duration::MAX);
        assert_eq!(d.poll_timeout(), Some(Duration::MAX));
    }

    #[test]
    fn eof_after_sdp_keeps_waiting() {
        let mut d = dialer_after_offer();
        d.remote_bytes(&encoded(MessageType::SdpAnswer, Some(ANSWER)));
        // A half-written message at EOF is dropped, not an error.
        d.remote_bytes(&[0x05, 0x08]);
        d.remote_eof();
        d.remote_bytes(&encoded(MessageType::IceCandidate, Some(&cand(1))));
        assert_eq!(drain(&mut d), [Output::SetRemoteAnswer(ANSWER.into())]);
        assert!(!d.is_done());
        d.local_candidate(Some(cand(2)));
        assert_eq!(
            sent(&drain(&mut d)),
            [Message {
                kind: MessageType::IceCandidate,
                data: Some(cand(2))
            }]
        );
        d.handle_timeout(TIMEOUT);
        assert_eq!(drain(&mut d), [Output::Failed(SignalingError::Timeout)]);
    }

    #[test]
    fn eof_before_sdp_fails() {
        let mut a = Signaling::new(Role::Answerer, Duration::ZERO, TIMEOUT);
        a.remote_eof();
        assert_eq!(
            drain(&mut a),
            [Output::Failed(SignalingError::ClosedBeforeSdp)]
        );

        // A dialer only judges once its offer is out.
        let mut d = Signaling::new(Role::Dialer, Duration::ZERO, TIMEOUT);
        d.remote_bytes(&encoded(MessageType::SdpAnswer, Some(ANSWER)));
        d.remote_eof();
        assert_eq!(drain(&mut d), []);
        d.local_offer(OFFER.into());
        assert_eq!(drain(&mut d)[1..], [Output::SetRemoteAnswer(ANSWER.into())]);
        assert!(!d.is_done());
    }

    #[test]
    fn pc_failure_and_close() {
        let mut d = dialer_after_offer();
        d.pc_state(PcState::Disconnected);
        assert_eq!(drain(&mut d), []);
        d.pc_state(PcState::Failed);
        assert_eq!(
            drain(&mut d),
            [Output::Failed(SignalingError::PeerConnectionFailed)]
        );

        let mut a = Signaling::new(Role::Answerer, Duration::ZERO, TIMEOUT);
        a.pc_state(PcState::Closed);
        assert_eq!(
            drain(&mut a),
            [Output::Failed(SignalingError::PeerConnectionClosed)]
        );
    }

    #[test]
    fn local_calls_out_of_order_fail() {
        let mut a = Signaling::new(Role::Answerer, Duration::ZERO, TIMEOUT);
        a.local_answer(ANSWER.into());
        assert_eq!(
            drain(&mut a),
            [Output::Failed(SignalingError::LocalOutOfOrder(
                "local_answer"
            ))]
        );

        let mut a = Signaling::new(Role::Answerer, Duration::ZERO, TIMEOUT);
        a.local_offer(OFFER.into());
        assert_eq!(
            drain(&mut a),
            [Output::Failed(SignalingError::LocalOutOfOrder(
                "local_offer"
            ))]
        );

        let mut d = dialer_after_offer();
        d.local_offer(OFFER.into());
        assert_eq!(
            drain(&mut d),
            [Output::Failed(SignalingError::LocalOutOfOrder(
                "local_offer"
            ))]
        );
    }

    #[test]
    fn no_candidates_after_connected() {
        let mut d = Signaling::new(Role::Dialer, Duration::ZERO, TIMEOUT);
        d.local_candidate(Some(cand(1)));
        d.pc_state(PcState::Connected);
        d.local_candidate(Some(cand(2)));
        assert_eq!(drain(&mut d), [Output::Connected]);
    }
}
