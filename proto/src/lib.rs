//! Wire formats and sans-IO state machines shared by the shoal peer and relay.
//!
//! # Layout
//! - [`info`]: the JSON the relay serves at `/api/info` so that a page learns
//!   the relay's PeerId and where to dial it.
//! - [`varint`]: unsigned LEB128, the length prefix of every libp2p frame.
//! - [`signaling`]: `/webrtc-signaling/0.0.1` — the protobuf `Message` codec and
//!   the offer/answer/ICE state machine that both roles run.
//! - `pb`: the two-field protobuf messages both wire formats use.
//! - [`frame`]: data-channel framing of the libp2p WebRTC spec and the
//!   per-stream state machine (FIN / FIN_ACK / STOP_SENDING / RESET).
//! - [`peer_limit`]: the `maxPeers` rule (which new connections a node keeps).
//! - [`backoff`]: retry schedules (exponential backoff with jitter) for
//!   reconnecting to the relay and retrying direct paths.
//! - [`paths`]: the path policy towards each peer: relayed first, a direct
//!   WebRTC dial by the smaller PeerId, the relay closed once direct,
//!   retries, fallback.
//!
//! Nothing here does I/O or reads a clock: drivers feed bytes and a `now`, and
//! act on what the state machines return. All of it is tested natively.

pub mod backoff;
pub mod frame;
pub mod info;
pub mod paths;
pub mod peer_limit;
pub mod prefixed;
pub mod signaling;
pub mod varint;
