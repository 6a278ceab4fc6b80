//! Wire formats and sans-IO state machines shared by the shoal peer and relay.
//!
//! # Layout
//! - [`info`]: the JSON the relay serves at `/api/info` so that a page learns
//!   the relay's PeerId and where to dial it.
//! - [`varint`] and [`prefixed`]: the one codec layer under every shoal wire
//!   format (below).
//! - [`signaling`]: `/webrtc-signaling/0.0.1` — the protobuf `Message` codec and
//!   the offer/answer/ICE state machine that both roles run.
//! - [`frame`]: data-channel framing of the libp2p WebRTC spec and the
//!   per-stream state machine (FIN / FIN_ACK / STOP_SENDING / RESET).
//! - [`peer_limit`]: the `maxPeers` rule (which new connections a node keeps).
//! - [`backoff`]: retry schedules (exponential backoff with jitter) for
//!   reconnecting to the relay and retrying direct paths.
//! - [`paths`]: the path policy towards each peer: relayed first, a direct
//!   WebRTC dial by the smaller PeerId, the relay closed once direct,
//!   retries, fallback.
//! - [`vecmap`]: ordered maps and sets in one sorted `Vec`, for the state
//!   machines' small collections (less wasm than `BTreeMap`).
//!
//! # One codec layer
//! Signaling messages, data-channel frames and `/shoal/blocks` messages
//! (`shoal-share`) all travel as an unsigned varint body length, then the
//! body, and all of them go through the same two pieces, built on the crates
//! libp2p itself uses:
//! - [`varint`]: `unsigned-varint`, minimal form only, so every value has one
//!   encoding.
//! - [`prefixed::PrefixedReader`]: cuts a byte stream of any chunking into
//!   messages of a type that implements [`prefixed::Decode`], refusing a
//!   prefix over the type's limit before any of its body is kept. A refused
//!   prefix is a [`prefixed::PrefixError`] in every format.
//!
//! The two protobuf messages (signaling `Message`, frame `Message`) are
//! `#[derive(prost::Message)]` structs that mirror the `message.proto` files
//! beside them, as the relay's rendezvous messages do; a malformed body is a
//! `prost::DecodeError` in both. They are written out rather than generated
//! because no `protoc` is installed here and two two-field messages do not
//! earn a build script; a change to a `.proto` needs the same change in its
//! `mod pb`, and the byte-exact vectors in the tests catch a mismatch.
//!
//! # Why shoal frames data channels itself
//! `libp2p-webrtc-utils` exports the spec's framing as `Stream`, but it does
//! not interoperate with js-libp2p for browser-to-browser `/webrtc`: it has no
//! FIN_ACK flag (a js FIN_ACK fails its reads, and it never sends one, so every
//! js `close()` waits 10 s), and it expects one frame per data-channel message
//! while js sends a frame's length prefix and its body as two messages.
//! [`frame::StreamState`] reassembles frames from any split, answers FIN with
//! FIN_ACK, and lets the peer's driver pack several whole frames into one SCTP
//! message of up to 64 KiB on send, for throughput.
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
pub mod vecmap;
