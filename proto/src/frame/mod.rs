//! Data-channel framing of the libp2p WebRTC spec (`webrtc/README.md`), one
//! libp2p stream per `RTCDataChannel`.
//!
//! - `codec`: [`Frame`] — a varint length, then protobuf
//!   `Message { optional Flag flag = 1; optional bytes message = 2; }` with
//!   `Flag { FIN = 0; STOP_SENDING = 1; RESET_STREAM = 2; FIN_ACK = 3; }`
//!   (`message.proto`, encoded by `prost`) — and [`FrameReader`], the crate's
//!   [`PrefixedReader`](crate::prefixed::PrefixedReader) for frames, which
//!   reassembles them from a byte stream.
//! - `stream`: [`StreamState`], the per-channel state machine (half-close
//!   with FIN / FIN_ACK, STOP_SENDING, RESET) behind the driver's
//!   `AsyncRead`/`AsyncWrite`.
//!
//! js-libp2p sends a frame's length prefix and its body as two separate
//! data-channel messages, and a message may hold several frames, so channel
//! messages are only ever treated as a byte stream ([`FrameReader`]). On
//! send, [`StreamState::poll_transmit`] yields whole frames and the peer's
//! driver packs as many as fit into one channel message of up to 64 KiB
//! (Chromium's SCTP limit is 256 KiB); a frame is never split.

mod codec;
mod stream;

use crate::prefixed::PrefixError;
pub use codec::{Flag, Frame, FrameReader};
pub use stream::{ReadOutcome, StreamError, StreamState, WriteError};

/// Largest frame, length prefix included (16 KiB, as js-libp2p and the spec).
pub const MAX_FRAME_LEN: usize = 16384;

/// Largest payload that fits in a frame that also carries a flag:
/// prefix (2 bytes, the body is ≥ 128) + flag field (2) + message tag (1) +
/// message length (2 bytes, the payload is < 16384) + payload = 16384.
pub const MAX_PAYLOAD: usize = MAX_FRAME_LEN - 2 - 2 - 1 - 2;

/// Why bytes from the channel did not decode into frames.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The length prefix is invalid, or prefix plus body is over
    /// [`MAX_FRAME_LEN`] (`len` is the announced body).
    #[error(transparent)]
    Prefix(#[from] PrefixError),
    /// The body is not a protobuf `Message`.
    #[error("malformed frame: {0}")]
    Protobuf(#[from] prost::DecodeError),
    /// A flag value outside FIN, STOP_SENDING, RESET_STREAM, FIN_ACK.
    #[error("unknown flag {0}")]
    UnknownFlag(u64),
}
