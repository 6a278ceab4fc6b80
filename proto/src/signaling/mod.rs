//! `/webrtc-signaling/0.0.1`: how two browsers exchange SDP and ICE candidates
//! over a libp2p stream (usually a relayed connection) before they can talk
//! directly over WebRTC.
//!
//! - `codec`: the length-prefixed protobuf [`Message`] (`message.proto`,
//!   encoded by `prost`) and [`MessageReader`], the crate's
//!   [`PrefixedReader`](crate::prefixed::PrefixedReader) for it.
//! - `machine`: [`Signaling`], the sans-IO state machine one attempt runs,
//!   for either role. The driver owns the stream, the `RTCPeerConnection` and
//!   the timer; it feeds their events in and carries out each [`Output`].
//! - `liveness`: [`Liveness`], when a connected `RTCPeerConnection` that left
//!   `connected` is given up (Chromium may never report `failed`).
//!
//! Interop with js-libp2p (`@libp2p/webrtc` 6.x): its protocol id, `type`
//! always sent (an absent one is not an offer to js), no `data: ""` as an
//! end-of-candidates marker, and a `null` or absent candidate accepted.

mod codec;
mod liveness;
mod machine;

use crate::prefixed::PrefixError;
pub use codec::{Message, MessageReader, MessageType, MAX_MESSAGE_LEN};
pub use liveness::Liveness;
pub use machine::{Output, PcState, Role, Signaling};

/// The protocol id js-libp2p uses (the spec text says `/webrtc-signaling`).
pub const PROTOCOL: &str = "/webrtc-signaling/0.0.1";

/// Why a signaling attempt failed, or a message did not decode.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignalingError {
    /// The length prefix is invalid or over [`MAX_MESSAGE_LEN`].
    #[error(transparent)]
    Prefix(#[from] PrefixError),
    /// The body is not a protobuf `Message`.
    #[error("malformed signaling message: {0}")]
    Protobuf(#[from] prost::DecodeError),
    /// The message has no `type` field.
    #[error("message has no type")]
    MissingType,
    /// A `type` value outside SDP_OFFER, SDP_ANSWER, ICE_CANDIDATE (a
    /// negative one as its 64-bit two's complement).
    #[error("unknown message type {0}")]
    UnknownType(u64),
    /// `data` is not UTF-8.
    #[error("message data is not UTF-8")]
    InvalidUtf8,
    /// A message out of order: the wrong first message, or an SDP after it.
    #[error("expected {expected:?}, received {received:?}")]
    UnexpectedMessage {
        expected: MessageType,
        received: MessageType,
    },
    /// An offer or answer without an SDP.
    #[error("{0:?} without an SDP")]
    MissingSdp(MessageType),
    /// The remote closed the stream before sending its SDP: it cannot succeed.
    #[error("stream closed before the remote SDP arrived")]
    ClosedBeforeSdp,
    /// The deadline passed before the peer connection was `connected`.
    #[error("signaling timed out")]
    Timeout,
    /// `RTCPeerConnection.connectionState` became `failed`.
    #[error("peer connection failed")]
    PeerConnectionFailed,
    /// `RTCPeerConnection.connectionState` became `closed`.
    #[error("peer connection closed")]
    PeerConnectionClosed,
    /// The driver called a local method that does not fit the role or the
    /// current step (a bug in the driver, not the peer).
    #[error("`{0}` called out of order")]
    LocalOutOfOrder(&'static str),
}
