//! Data-channel framing of the libp2p WebRTC spec (`webrtc/README.md`), one
//! libp2p stream per `RTCDataChannel`.
//!
//! - `codec`: [`Frame`] — a varint length, then protobuf
//!   `Message { optional Flag flag = 1; optional bytes message = 2; }` with
//!   `Flag { FIN = 0; STOP_SENDING = 1; RESET_STREAM = 2; FIN_ACK = 3; }` — and
//!   [`FrameReader`], which reassembles frames from a byte stream.
//! - `stream`: [`StreamState`], the per-channel state machine (half-close
//!   with FIN / FIN_ACK, STOP_SENDING, RESET) behind the driver's
//!   `AsyncRead`/`AsyncWrite`.
//!
//! js-libp2p sends a frame's length prefix and its body as two separate
//! data-channel messages, and a message may hold several frames, so channel
//! messages are only ever treated as a byte stream. We send each frame whole
//! in one message. Interop notes: `shared/WEBRTC.md` §2.

mod codec;
mod stream;

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
    /// Prefix plus body over [`MAX_FRAME_LEN`]; `len` is the announced body.
    #[error("frame with a {len}-byte body exceeds {max} bytes")]
    FrameTooLong { len: u64, max: usize },
    /// The length prefix is not a valid unsigned varint.
    #[error("invalid length prefix")]
    InvalidLengthPrefix,
    /// A field runs past the end of the frame.
    #[error("truncated protobuf field")]
    Truncated,
    /// A protobuf varint longer than 10 bytes.
    #[error("invalid protobuf varint")]
    InvalidVarint,
    /// Protobuf field number 0 or out of range.
    #[error("invalid protobuf field number")]
    InvalidFieldNumber,
    /// Protobuf wire type 3, 4 (groups), 6 or 7.
    #[error("unsupported protobuf wire type {0}")]
    UnsupportedWireType(u8),
    /// `flag` or `message` sent with the wrong wire type.
    #[error("field {field} has wire type {wire_type}")]
    WrongWireType { field: u32, wire_type: u8 },
    /// A flag value outside FIN, STOP_SENDING, RESET_STREAM, FIN_ACK.
    #[error("unknown flag {0}")]
    UnknownFlag(u64),
}
